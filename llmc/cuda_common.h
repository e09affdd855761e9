// cuda_common.h: what every .cu file of the project includes first.
//
// One source, two builds:
//   nvcc ...                        the CUDA headers; kernels run on the GPU
//   g++ -x c++ -DCUDA_CPU_HARNESS   dev/harness/cuda_harness.h; the same kernels run on the
//                                   CPU with CUDA's semantics (dev/harness/README.md)
// For that, device code follows three conventions, the same in both builds:
//   LAUNCH(kernel, grid, block, shared_bytes, stream)(args...);   instead of kernel<<<...>>>(args...)
//                                   (a template kernel with several arguments: LAUNCH((k<A, B>), ...))
//   DYNAMIC_SHARED(float, smem);    instead of extern __shared__ float smem[];
//   cudaCheck(call), cublasCheck(call), cudaCheckLaunch() around every API call and after
//                                   every launch
// Errors end the program with one line, as everywhere in this project:
//     error: <file>:<line>: <call>: <error string> (hint: <what to do>)
#pragma once

#include <cstdio>
#include <cstdlib>

#ifdef CUDA_CPU_HARNESS
#include "dev/harness/cuda_harness.h"
#else
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cooperative_groups.h>
#include <cooperative_groups/reduce.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#ifdef USE_MPI
#include <nccl.h> // data parallel (llmc/ranks.h); the harness has its own (-DCUDA_HARNESS_NCCL)
#endif
#endif

namespace cg = cooperative_groups;

// ----------------------------------------------------------------------------
// kernel launches and dynamic shared memory

#ifdef CUDA_CPU_HARNESS
#define LAUNCH(kernel, grid, block, shared_bytes, stream) \
    ::cuda_harness::make_launch((kernel), (grid), (block), (shared_bytes), (stream), #kernel)
#define DYNAMIC_SHARED(type, name) type* const name = reinterpret_cast<type*>(::cuda_harness::dynamic_shared_memory())
#else
#define LAUNCH(kernel, grid, block, shared_bytes, stream) kernel<<<(grid), (block), (shared_bytes), (stream)>>>
// Declared as bytes, so that kernels (or template instances) using different element types
// do not clash; every DYNAMIC_SHARED array of a kernel starts at the same address.
#define DYNAMIC_SHARED(type, name)                                  \
    extern __shared__ __align__(16) unsigned char name##_bytes_[]; \
    type* const name = reinterpret_cast<type*>(name##_bytes_)
#endif

// ----------------------------------------------------------------------------
// warp reductions (every lane of a full warp takes part and gets the result)

__device__ inline float warp_sum(float x) {
    for (int offset = 16; offset > 0; offset /= 2) { x += __shfl_xor_sync(0xffffffffu, x, offset); }
    return x;
}

__device__ inline float warp_max(float x) {
    for (int offset = 16; offset > 0; offset /= 2) { x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, offset)); }
    return x;
}

// ----------------------------------------------------------------------------
// error checks

inline const char* cuda_error_hint(cudaError_t err) {
    switch (err) {
    case cudaErrorMemoryAllocation:
        return "out of GPU memory: reduce the batch size (-b) or sequence length (-t), or free the GPU (nvidia-smi)";
    case cudaErrorInvalidConfiguration:
        return "check the launch's grid and block: at most 1024 threads per block, no dimension 0";
    case cudaErrorInvalidValue:
        return "check the arguments: sizes, device vs host pointers, the copy direction, and dynamic shared memory "
               "over 48 KiB without cudaFuncSetAttribute";
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorStubLibrary:
        return "run on a machine with an NVIDIA GPU and a current driver, or build the CPU harness version with "
               "-DCUDA_CPU_HARNESS (dev/harness/README.md)";
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorUnsupportedPtxVersion:
        return "the binary was not built for this GPU: rebuild with -arch=sm_XX for its compute capability "
               "(nvidia-smi --query-gpu=compute_cap --format=csv), or update the driver";
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorMisalignedAddress:
        return "a kernel accessed memory out of bounds: run under compute-sanitizer, or the CPU harness build under "
               "-fsanitize=address";
    case cudaErrorLaunchOutOfResources:
        return "too many registers or too much shared memory per block: launch fewer threads per block";
    case cudaErrorAssert:
        return "a device-side assert failed: its message is above";
    default:
        return "rerun with CUDA_LAUNCH_BLOCKING=1 to find the failing call; compute-sanitizer finds kernel faults";
    }
}

inline const char* cublas_status_hint(cublasStatus_t status) {
    switch (status) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "create the handle first (cublasCreate/cublasLtCreate), on a machine with a GPU";
    case CUBLAS_STATUS_ALLOC_FAILED: return "out of GPU memory: reduce the batch size or sequence length";
    case CUBLAS_STATUS_INVALID_VALUE: return "check m, n, k, the leading dimensions (at least the stored rows) and the layouts";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "this combination of data types, layouts and epilogue is not supported";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "the GPU lacks a feature this call needs (tensor cores, TF32): use a newer GPU";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "a kernel failed: check the pointers are device memory of the right size";
    default: return "rerun with CUDA_LAUNCH_BLOCKING=1 to find the failing call";
    }
}

inline void cuda_check_result(cudaError_t err, const char* file, int line, const char* call) {
    if (err == cudaSuccess) { return; }
    fflush(stdout);
    fprintf(stderr, "error: %s:%d: %s: %s (hint: %s)\n", file, line, call, cudaGetErrorString(err),
            cuda_error_hint(err));
    exit(EXIT_FAILURE);
}

inline void cublas_check_result(cublasStatus_t status, const char* file, int line, const char* call) {
    if (status == CUBLAS_STATUS_SUCCESS) { return; }
    fflush(stdout);
    fprintf(stderr, "error: %s:%d: %s: %s (hint: %s)\n", file, line, call, cublasGetStatusString(status),
            cublas_status_hint(status));
    exit(EXIT_FAILURE);
}

#define cudaCheck(call) cuda_check_result((call), __FILE__, __LINE__, #call)
#define cublasCheck(call) cublas_check_result((call), __FILE__, __LINE__, #call)
// After a LAUNCH: a bad configuration is only reported through cudaGetLastError.
#define cudaCheckLaunch() cuda_check_result(cudaGetLastError(), __FILE__, __LINE__, "kernel launch (cudaGetLastError)")

// Ends the program with a clear message when there is no GPU to run on (the harness
// build always has its one CPU "device").
inline void cuda_require_device() {
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err == cudaSuccess && count > 0) { return; }
    fflush(stdout);
    fprintf(stderr,
            "error: no CUDA device found%s%s (hint: run on a machine with an NVIDIA GPU and its driver (nvidia-smi "
            "lists it), or build the CPU harness version with -DCUDA_CPU_HARNESS, see dev/harness/README.md)\n",
            err != cudaSuccess ? ": " : "", err != cudaSuccess ? cudaGetErrorString(err) : "");
    exit(EXIT_FAILURE);
}
