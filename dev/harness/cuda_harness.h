// cuda_harness.h: the CPU execution harness, what llmc/cuda_common.h includes instead of
// the CUDA headers when CUDA_CPU_HARNESS is defined.
//
// It lets the project's own .cu files compile with g++ and run on a CPU with CUDA's
// semantics: every block of a launch runs, every CUDA thread is a fiber, __syncthreads and
// the warp intrinsics are real barriers, cuBLAS and cuBLASLt are computed with plain loops.
// dev/harness/README.md says how to build with it and what it cannot catch.
//
// The parts, each usable on top of the ones before it:
//   harness_types.h              cudaError_t, dim3, vector types, enums (real names and values)
//   harness_runtime.h            memory, copies, streams, events, errors, device properties
//   harness_fiber.h              fibers: stacks and context switches
//   harness_scheduler.h          blocks, barriers, warp exchanges, workers, kernel launches
//   harness_device.h             qualifiers, threadIdx..., intrinsics, atomics, math
//   harness_bf16.h               __nv_bfloat16, __nv_bfloat162 and their intrinsics (cuda_bf16.h)
//   harness_cooperative_groups.h cooperative_groups: thread_block, tiles, reduce
//   harness_gemm.h               the matrix product behind cuBLAS and cuBLASLt
//   harness_cublas.h             cuBLAS
//   harness_cublaslt.h           cuBLASLt
//   harness_nccl.h               NCCL over MPI between processes, only with -DCUDA_HARNESS_NCCL
//                                (the build then needs MPI: mpicxx --showme:compile / :link)
#pragma once

#ifdef __CUDACC__
#error "dev/harness/cuda_harness.h is for g++ builds with -DCUDA_CPU_HARNESS, not for nvcc"
#endif

#include "harness_types.h"
#include "harness_runtime.h"
#include "harness_scheduler.h"
#include "harness_device.h"
#include "harness_bf16.h"
#include "harness_cooperative_groups.h"
#include "harness_cublas.h"
#include "harness_cublaslt.h"
#ifdef CUDA_HARNESS_NCCL
#include "harness_nccl.h"
#endif
