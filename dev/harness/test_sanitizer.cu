// test_sanitizer.cu: the sanitizer's own tests (dev/harness/harness_sanitizer.h). Each test runs
// a kernel with a classic bug, which the right check must report, then the same kernel fixed,
// which must give no report at all.
//
//   make dev/harness/test_sanitizer && dev/harness/test_sanitizer
//
// Built only with clang's load/store instrumentation (CUDA_HARNESS_SANITIZE, see
// dev/harness/Makefile.inc). The reports the bugs provoke are printed on stderr as usual; the
// closing line is "N passed, M failed", and the expected reports do not fail the program.
#include "llmc/cuda_common.h"

#ifndef CUDA_HARNESS_SANITIZE
#error "test_sanitizer.cu needs the sanitizer build (-DCUDA_HARNESS_SANITIZE and clang's -fsanitize-coverage)"
#endif

#include <cstdarg>
#include <string>
#include <vector>

namespace san = cuda_harness::san;

// ----------------------------------------------------------------------------
// checks

static int g_passed = 0, g_failed = 0;

static void check(bool ok, const char* fmt, ...) {
    va_list args;
    va_start(args, fmt);
    printf("%s ", ok ? "PASS" : "FAIL");
    vprintf(fmt, args);
    printf("\n");
    va_end(args);
    (ok ? g_passed : g_failed)++;
    fflush(stdout);
}

// Runs `bug`, which must give at least one report of `check_name` ("racecheck" or
// "initcheck") whose line contains `expect`, and none of the other check; then `fixed`,
// which must give none. The reports so far are forgotten before each (the sanitizer prints a
// report once per pair of code locations): every test counts what its own code provokes.
template <typename Bug, typename Fixed>
static void expect_report(const char* name, const char* check_name, const char* expect, Bug bug, Fixed fixed) {
    const bool race = strcmp(check_name, "racecheck") == 0;
    printf("%s: the next report is expected\n", name);
    fflush(stdout);
    san::forget_reports();
    const unsigned long race_before = san::race_reports(), init_before = san::init_reports();
    bug();
    const unsigned long races = san::race_reports() - race_before, inits = san::init_reports() - init_before;
    const std::string& line = san::last_report();
    check((race ? races : inits) > 0 && (race ? inits : races) == 0 && line.rfind(check_name, 0) == 0 &&
              line.find(expect) != std::string::npos,
          "%s: reported by %s (%lu racecheck, %lu initcheck reports; last: %s)", name, check_name, races, inits,
          line.c_str());
    san::forget_reports();
    const unsigned long race_fixed = san::race_reports(), init_fixed = san::init_reports();
    fixed();
    check(san::race_reports() == race_fixed && san::init_reports() == init_fixed, "%s, fixed: no report", name);
}

// ----------------------------------------------------------------------------
// 1. a block reduction without the __syncthreads between the writes and thread 0's reads

template <bool Sync>
__global__ void block_sum_kernel(float* out, const float* in) {
    __shared__ float part[128];
    part[threadIdx.x] = in[blockIdx.x * 128 + threadIdx.x];
    if (Sync) { __syncthreads(); }
    if (threadIdx.x == 0) {
        float sum = 0.0f;
        for (int i = 0; i < 128; i++) { sum += part[i]; }
        out[blockIdx.x] = sum;
    }
}

// ----------------------------------------------------------------------------
// 2. the pre-Volta warp-synchronous tail of a reduction: lanes read each other's shared
// memory writes with no __syncwarp between (on sm_70 and later, lanes do not run in lockstep)

__global__ void warp_tail_racy_kernel(float* out, const float* in) {
    DYNAMIC_SHARED(float, part);
    const int t = threadIdx.x;
    part[t] = in[blockIdx.x * 64 + t];
    __syncthreads();
    if (t < 32) { part[t] += part[t + 32]; }
    __syncthreads();
    if (t < 32) {
        volatile float* v = part;
        v[t] += v[t + 16];
        v[t] += v[t + 8];
        v[t] += v[t + 4];
        v[t] += v[t + 2];
        v[t] += v[t + 1];
    }
    if (t == 0) { out[blockIdx.x] = part[0]; }
}

// The fix: every step reads, waits for the warp, writes, waits again.
__global__ void warp_tail_synced_kernel(float* out, const float* in) {
    DYNAMIC_SHARED(float, part);
    const int t = threadIdx.x;
    part[t] = in[blockIdx.x * 64 + t];
    __syncthreads();
    if (t < 32) { part[t] += part[t + 32]; }
    __syncthreads();
    if (t < 32) {
        float x = part[t];
        for (int offset = 16; offset > 0; offset /= 2) {
            const float y = part[t + offset];
            __syncwarp();
            x += y;
            part[t] = x;
            __syncwarp();
        }
    }
    if (t == 0) { out[blockIdx.x] = part[0]; }
}

// ----------------------------------------------------------------------------
// 3. block b reads what block b-1 wrote in the same launch (blocks are not ordered)

__global__ void neighbour_racy_kernel(float* slots, float* seen) {
    if (threadIdx.x != 0) { return; }
    slots[blockIdx.x] = (float)blockIdx.x;
    if (blockIdx.x > 0) { seen[blockIdx.x] = slots[blockIdx.x - 1]; }
}

__global__ void write_slots_kernel(float* slots) {
    if (threadIdx.x == 0) { slots[blockIdx.x] = (float)blockIdx.x; }
}

// The fix: the reads in a second launch.
__global__ void read_neighbour_kernel(const float* slots, float* seen) {
    if (threadIdx.x == 0 && blockIdx.x > 0) { seen[blockIdx.x] = slots[blockIdx.x - 1]; }
}

// ----------------------------------------------------------------------------
// 4. reading a cudaMalloc buffer nothing wrote

__global__ void scale_kernel(float* out, const float* in, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) { out[i] = 2.0f * in[i]; }
}

// ----------------------------------------------------------------------------
// 5. a shuffle that reads a lane which has already returned

__global__ void shuffle_returned_kernel(float* out) {
    const int lane = threadIdx.x % 32;
    if (lane >= 16) { return; }
    float v = (float)lane;
    v += __shfl_down_sync(0xffffffffu, v, 8);  // lanes 8-15 read lanes 16-23
    out[lane] = v;
}

// The fix: every lane takes part in the shuffle; only the writes are conditional.
__global__ void shuffle_all_kernel(float* out) {
    const int lane = threadIdx.x % 32;
    float v = lane < 16 ? (float)lane : 0.0f;
    v += __shfl_down_sync(0xffffffffu, v, 8);
    if (lane < 16) { out[lane] = v; }
}

// ----------------------------------------------------------------------------
// 6. bf16: a kernel reads bf16 elements (2-byte accesses, through __nv_bfloat16's operator
// float) that nothing wrote; cuBLAS reads a bf16 matrix of which only part was written

__global__ void widen_kernel(float* out, const __nv_bfloat16* in, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) { out[i] = static_cast<float>(in[i]); }
}

// A bf16 buffer of `count` elements whose first `written` are 1.0 (the rest never written).
static __nv_bfloat16* bf16_written(int count, int written) {
    __nv_bfloat16* d = nullptr;
    cudaCheck(cudaMalloc(&d, count * sizeof(__nv_bfloat16)));
    if (written > 0) {
        const std::vector<__nv_bfloat16> ones(written, __float2bfloat16(1.0f));
        cudaCheck(cudaMemcpy(d, ones.data(), written * sizeof(__nv_bfloat16), cudaMemcpyHostToDevice));
    }
    return d;
}

// C = A B for 16×16 bf16 matrices with cublasGemmEx (bf16 C), reported as called at the
// caller's line (initcheck reports once per call site and operand).
static void bf16_gemm(const __nv_bfloat16* a, const __nv_bfloat16* b, __nv_bfloat16* c, const char* file = __builtin_FILE(),
                      int line = __builtin_LINE()) {
    cublasHandle_t handle;
    cublasCheck(cublasCreate(&handle));
    const float one = 1.0f, zero = 0.0f;
    cublasCheck(cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, 16, 16, 16, &one, a, CUDA_R_16BF, 16, b, CUDA_R_16BF, 16,
                             &zero, c, CUDA_R_16BF, 16, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT, file, line));
    cublasCheck(cublasDestroy(handle));
}

// One cublasLtMatmul with the BIAS epilogue: D (16×8) = A (16×32) B (32×8) + bias, all bf16 but
// the bias, of bias_type.
static void bf16_lt_bias(const __nv_bfloat16* a, const __nv_bfloat16* b, const void* bias, cudaDataType bias_type,
                         __nv_bfloat16* d) {
    cublasLtHandle_t lt;
    cublasCheck(cublasLtCreate(&lt));
    cublasLtMatmulDesc_t desc;
    cublasCheck(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    const int32_t type = bias_type;
    cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)));
    cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &type, sizeof(type)));
    cublasLtMatrixLayout_t la, lb, ld;
    cublasCheck(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, 16, 32, 16));
    cublasCheck(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, 32, 8, 32));
    cublasCheck(cublasLtMatrixLayoutCreate(&ld, CUDA_R_16BF, 16, 8, 16));
    const float one = 1.0f, zero = 0.0f;
    cublasCheck(cublasLtMatmul(lt, desc, &one, a, la, b, lb, &zero, d, ld, d, ld, nullptr, nullptr, 0, 0));
    for (cublasLtMatrixLayout_t l : {la, lb, ld}) { cublasCheck(cublasLtMatrixLayoutDestroy(l)); }
    cublasCheck(cublasLtMatmulDescDestroy(desc));
    cublasCheck(cublasLtDestroy(lt));
}

// The counters of the last recorded op.
static void check_gemm_counters(const char* name, const char* api, double flops, uint64_t read, uint64_t written) {
    const san::Op& op = san::ops().back();
    check(op.name == api && op.flops == flops && op.bytes_read == read && op.bytes_written == written,
          "counters of %s: %s, %.0f FLOPs, %llu bytes read, %llu written (want %.0f, %llu, %llu)", name, op.name.c_str(),
          op.flops, (unsigned long long)op.bytes_read, (unsigned long long)op.bytes_written, flops,
          (unsigned long long)read, (unsigned long long)written);
}

// Doubles n elements of T (what make cost's counters see of a bf16 kernel).
template <typename T>
__global__ void scale_elements_kernel(T* out, const T* in, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) { out[i] = (T)(2.0f * (float)in[i]); }
}

// bf16 GEMMs count 2 bytes per element of A, B and D, and the bias in its own type; a kernel's
// bf16 elements 2 bytes each (128 of them: 8 sectors), under the name LAUNCH was given.
static void test_bf16_counters(float* scratch) {
    __nv_bfloat16 *a = bf16_written(16 * 32, 16 * 32), *b = bf16_written(32 * 16, 32 * 16), *d = bf16_written(16 * 16, 0);
    __nv_bfloat16* bias16 = bf16_written(16, 16);
    san::record(true);
    bf16_gemm(a, b, d);
    san::record(false);
    check_gemm_counters("a 16x16x16 bf16 cublasGemmEx", "cublasGemmEx", 2.0 * 16 * 16 * 16, (16 * 16 + 16 * 16) * 2, 16 * 16 * 2);
    san::record(true);
    bf16_lt_bias(a, b, bias16, CUDA_R_16BF, d);
    san::record(false);
    check_gemm_counters("a 16x8x32 bf16 cublasLtMatmul with a bf16 bias", "cublasLtMatmul", 2.0 * 16 * 8 * 32,
                        (16 * 32 + 32 * 8) * 2 + 16 * 2, 16 * 8 * 2);
    san::record(true);
    bf16_lt_bias(a, b, scratch, CUDA_R_32F, d);
    san::record(false);
    check_gemm_counters("the same with an fp32 bias", "cublasLtMatmul", 2.0 * 16 * 8 * 32, (16 * 32 + 32 * 8) * 2 + 16 * 4,
                        16 * 8 * 2);
    __nv_bfloat16 *x = bf16_written(128, 128), *y = bf16_written(128, 0);
    san::record(true);
    LAUNCH(scale_elements_kernel<__nv_bfloat16>, 1, 128, 0, 0)(y, x, 128);
    cudaCheckLaunch();
    san::record(false);
    const san::Op& op = san::ops().back();
    check(op.name == "scale_elements_kernel<__nv_bfloat16>" && op.sectors_read == 8 && op.sectors_written == 8 &&
              op.bytes_read == 256 && op.bytes_written == 256,
          "counters of a bf16 launch: %s, %llu sectors read, %llu written, %llu bytes read, %llu written", op.name.c_str(),
          (unsigned long long)op.sectors_read, (unsigned long long)op.sectors_written,
          (unsigned long long)op.bytes_read, (unsigned long long)op.bytes_written);
    for (__nv_bfloat16* p : {a, b, d, bias16, x, y}) { cudaCheck(cudaFree(p)); }
}


// ----------------------------------------------------------------------------
// 7. sub-word accesses: a GPU's stores are byte-granular, so threads that write neighbouring
// bf16 or char elements of one 4-byte word do not race, while two threads on the same
// element, or a 4-byte access over another thread's 2-byte write, do. initcheck is per byte.

// Thread t of each block writes element t / Share of row (Row ? blockIdx.x : 0): Share 2,
// two threads on every element; Row false, every block on the same row.
template <typename T, int Share, bool Row>
__global__ void write_elements_kernel(T* out, int n) {
    const int t = threadIdx.x;
    out[(Row ? blockIdx.x * n : 0) + t / Share] = T(t);
}

// Thread t writes bf16 element t, then reads the 4-byte word that holds element t - 1 (written
// by thread t - 1; the other half by t or t - 2), with or without a __syncthreads between.
template <bool Sync>
__global__ void word_after_halves_kernel(float* out, __nv_bfloat16* e) {
    const int t = threadIdx.x;
    e[t] = __float2bfloat16((float)t);
    if (Sync) { __syncthreads(); }
    if (t > 0) { out[t] = (float)reinterpret_cast<const uint32_t*>(e)[(t - 1) / 2]; }
}

// Thread t writes the 4-byte word t, then reads bf16 element 2 t - 2: half of thread t - 1's word.
template <bool Sync>
__global__ void halves_after_word_kernel(float* out, uint32_t* w) {
    const int t = threadIdx.x;
    w[t] = (uint32_t)t;
    if (Sync) { __syncthreads(); }
    if (t > 0) { out[t] = __bfloat162float(reinterpret_cast<const __nv_bfloat16*>(w)[2 * t - 2]); }
}

// Thread 0 writes bf16 element 0 of `half`, thread 1 the first 4-byte word of `word`.
__global__ void half_and_word_kernel(__nv_bfloat16* half, uint32_t* word) {
    if (threadIdx.x == 0) { half[0] = __float2bfloat16(1.0f); }
    if (threadIdx.x == 1) { word[0] = 1u; }
}

// Reads bf16 elements first, first + stride, ... (blockDim.x of them) as bf16, or Word: the
// 4-byte words that hold them.
template <bool Word>
__global__ void read_halves_kernel(float* out, const __nv_bfloat16* e, int first, int stride) {
    const int i = first + stride * threadIdx.x;
    out[threadIdx.x] = Word ? (float)reinterpret_cast<const uint32_t*>(e)[i / 2] : __bfloat162float(e[i]);
}

// Static __shared__ uint16_t: thread t writes element t / Share; then thread t reads the 4-byte
// word that holds element t - 1, after a __syncthreads or (Sync false) not.
template <int Share, bool Sync>
__global__ void shared_halves_kernel(float* out) {
    __shared__ uint16_t part[64];
    const int t = threadIdx.x;
    part[t / Share] = (uint16_t)t;
    if (Sync) { __syncthreads(); }
    if (t > 0) { out[blockIdx.x * blockDim.x + t] = (float)reinterpret_cast<const uint32_t*>(part)[(t - 1) / 2]; }
}

// Dynamic shared memory of chars: thread t writes char t / Share; then, after a __syncthreads,
// thread 0 sums them.
template <int Share>
__global__ void shared_chars_kernel(float* out) {
    DYNAMIC_SHARED(unsigned char, part);
    const int t = threadIdx.x;
    part[t / Share] = (unsigned char)t;
    __syncthreads();
    if (t == 0) {
        float sum = 0.0f;
        for (int i = 0; i < (int)blockDim.x / Share; i++) { sum += part[i]; }
        out[blockIdx.x] = sum;
    }
}

// ----------------------------------------------------------------------------

static float* device_filled(int n, float value) {
    std::vector<float> host(n, value);
    float* d = nullptr;
    cudaCheck(cudaMalloc(&d, n * sizeof(float)));
    cudaCheck(cudaMemcpy(d, host.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    return d;
}

int main() {
    cuda_require_device();
    float* in = device_filled(4 * 128, 1.0f);
    float* out = device_filled(4 * 128, 0.0f);

    expect_report("block reduction without __syncthreads", "racecheck", "hazard on shared memory", [&] {
        LAUNCH(block_sum_kernel<false>, 4, 128, 0, 0)(out, in);
        cudaCheckLaunch();
    }, [&] {
        LAUNCH(block_sum_kernel<true>, 4, 128, 0, 0)(out, in);
        cudaCheckLaunch();
    });

    expect_report("warp-synchronous tail without __syncwarp", "racecheck", "hazard on shared memory (dynamic)", [&] {
        LAUNCH(warp_tail_racy_kernel, 4, 64, 64 * sizeof(float), 0)(out, in);
        cudaCheckLaunch();
    }, [&] {
        LAUNCH(warp_tail_synced_kernel, 4, 64, 64 * sizeof(float), 0)(out, in);
        cudaCheckLaunch();
    });

    float* slots = device_filled(8, 0.0f);
    float* seen = device_filled(8, 0.0f);
    expect_report("block b reads block b-1's write", "racecheck", "read-after-write hazard on buffer", [&] {
        LAUNCH(neighbour_racy_kernel, 8, 32, 0, 0)(slots, seen);
        cudaCheckLaunch();
    }, [&] {
        LAUNCH(write_slots_kernel, 8, 32, 0, 0)(slots);
        LAUNCH(read_neighbour_kernel, 8, 32, 0, 0)(slots, seen);
        cudaCheckLaunch();
    });

    expect_report("a kernel reads an uninitialized cudaMalloc buffer", "initcheck", "read of uninitialized global memory",
                  [&] {
        float* fresh = nullptr;
        cudaCheck(cudaMalloc(&fresh, 256 * sizeof(float)));
        LAUNCH(scale_kernel, 2, 128, 0, 0)(out, fresh, 256);
        cudaCheckLaunch();
        cudaCheck(cudaFree(fresh));
    }, [&] {
        float* fresh = nullptr;
        cudaCheck(cudaMalloc(&fresh, 256 * sizeof(float)));
        cudaCheck(cudaMemset(fresh, 0, 256 * sizeof(float)));
        LAUNCH(scale_kernel, 2, 128, 0, 0)(out, fresh, 256);
        cudaCheckLaunch();
        cudaCheck(cudaFree(fresh));
    });

    expect_report("a copy to the host of an uninitialized buffer", "initcheck", "cudaMemcpy at", [&] {
        float* fresh = nullptr;
        std::vector<float> host(64);
        cudaCheck(cudaMalloc(&fresh, 64 * sizeof(float)));
        LAUNCH(scale_kernel, 1, 32, 0, 0)(fresh, in, 32);  // writes half of it
        cudaCheck(cudaMemcpy(host.data(), fresh, 64 * sizeof(float), cudaMemcpyDeviceToHost));
        cudaCheck(cudaFree(fresh));
    }, [&] {
        float* fresh = nullptr;
        std::vector<float> host(64);
        cudaCheck(cudaMalloc(&fresh, 64 * sizeof(float)));
        LAUNCH(scale_kernel, 1, 64, 0, 0)(fresh, in, 64);
        cudaCheck(cudaMemcpy(host.data(), fresh, 64 * sizeof(float), cudaMemcpyDeviceToHost));
        cudaCheck(cudaFree(fresh));
    });

    expect_report("a cuBLAS call reads an uninitialized matrix", "initcheck", "cublasSgemm at", [&] {
        cublasHandle_t handle;
        cublasCheck(cublasCreate(&handle));
        float* a = nullptr;
        cudaCheck(cudaMalloc(&a, 16 * 16 * sizeof(float)));
        const float one = 1.0f, zero = 0.0f;
        cublasCheck(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, 16, 16, 16, &one, a, 16, in, 16, &zero, out, 16));
        cudaCheck(cudaFree(a));
        cublasCheck(cublasDestroy(handle));
    }, [&] {
        cublasHandle_t handle;
        cublasCheck(cublasCreate(&handle));
        const float one = 1.0f, zero = 0.0f;
        cublasCheck(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, 16, 16, 16, &one, in, 16, in, 16, &zero, out, 16));
        cublasCheck(cublasDestroy(handle));
    });

    expect_report("a shuffle reads a lane that has returned", "initcheck", "which has returned", [&] {
        LAUNCH(shuffle_returned_kernel, 1, 32, 0, 0)(out);
        cudaCheckLaunch();
    }, [&] {
        LAUNCH(shuffle_all_kernel, 1, 32, 0, 0)(out);
        cudaCheckLaunch();
    });

    // reported at the kernel's line, not inside harness_bf16.h's operator float, which reads the element
    expect_report("a kernel reads bf16 elements nothing wrote", "initcheck", "thread (64,0,0) at test_sanitizer.cu:", [&] {
        __nv_bfloat16* half = bf16_written(128, 64);
        LAUNCH(widen_kernel, 1, 128, 0, 0)(out, half, 128);
        cudaCheckLaunch();
        cudaCheck(cudaFree(half));
    }, [&] {
        __nv_bfloat16* half = bf16_written(128, 64);
        LAUNCH(widen_kernel, 1, 64, 0, 0)(out, half, 64);
        cudaCheckLaunch();
        cudaCheck(cudaFree(half));
    });

    // the matrix is the first 256 elements of 512; only what a bf16 GEMM reads must be written
    expect_report("a bf16 cuBLAS call reads a partly written matrix", "initcheck", "cublasGemmEx at", [&] {
        __nv_bfloat16 *a = bf16_written(512, 128), *c = bf16_written(256, 0);
        bf16_gemm(a, a, c);
        for (__nv_bfloat16* p : {a, c}) { cudaCheck(cudaFree(p)); }
    }, [&] {
        __nv_bfloat16 *a = bf16_written(512, 256), *c = bf16_written(256, 0);
        bf16_gemm(a, a, c);
        for (__nv_bfloat16* p : {a, c}) { cudaCheck(cudaFree(p)); }
    });


    // 7. sub-word accesses (section 7 above), in global memory
    expect_report("two threads write one bf16 element", "racecheck", "write-after-write hazard on buffer", [&] {
        __nv_bfloat16* e = bf16_written(64, 0);
        LAUNCH((write_elements_kernel<__nv_bfloat16, 2, true>), 2, 64, 0, 0)(e, 32);
        cudaCheckLaunch();
        cudaCheck(cudaFree(e));
    }, [&] {  // neighbouring elements, one word, different threads: no race on a GPU
        __nv_bfloat16* e = bf16_written(128, 0);
        LAUNCH((write_elements_kernel<__nv_bfloat16, 1, true>), 2, 64, 0, 0)(e, 64);
        cudaCheckLaunch();
        cudaCheck(cudaFree(e));
    });

    // thread t of both blocks writes element t: by the time block 1 comes, element 0's word was
    // last written by thread 1 (element 1), so one record per word would miss this
    expect_report("two blocks write one bf16 row", "racecheck", "write-after-write hazard on buffer", [&] {
        __nv_bfloat16* e = bf16_written(64, 0);
        LAUNCH((write_elements_kernel<__nv_bfloat16, 1, false>), 2, 64, 0, 0)(e, 64);
        cudaCheckLaunch();
        cudaCheck(cudaFree(e));
    }, [&] {
        __nv_bfloat16* e = bf16_written(128, 0);
        LAUNCH((write_elements_kernel<__nv_bfloat16, 1, true>), 2, 64, 0, 0)(e, 64);
        cudaCheckLaunch();
        cudaCheck(cudaFree(e));
    });

    expect_report("two threads write one char", "racecheck", "write-after-write hazard on buffer", [&] {
        char* c = nullptr;
        cudaCheck(cudaMalloc(&c, 64));
        LAUNCH((write_elements_kernel<char, 2, true>), 2, 62, 0, 0)(c, 31);
        cudaCheckLaunch();
        cudaCheck(cudaFree(c));
    }, [&] {  // row 1 starts at byte 62: the word of bytes 60-63 is written by both blocks
        char* c = nullptr;
        cudaCheck(cudaMalloc(&c, 124));
        LAUNCH((write_elements_kernel<char, 1, true>), 2, 62, 0, 0)(c, 62);
        cudaCheckLaunch();
        cudaCheck(cudaFree(c));
    });

    expect_report("a 4-byte read of another thread's bf16 write", "racecheck", "read-after-write hazard on buffer", [&] {
        __nv_bfloat16* e = bf16_written(64, 0);
        LAUNCH(word_after_halves_kernel<false>, 1, 64, 0, 0)(out, e);
        cudaCheckLaunch();
        cudaCheck(cudaFree(e));
    }, [&] {
        __nv_bfloat16* e = bf16_written(64, 0);
        LAUNCH(word_after_halves_kernel<true>, 1, 64, 0, 0)(out, e);
        cudaCheckLaunch();
        cudaCheck(cudaFree(e));
    });

    expect_report("a bf16 read of another thread's 4-byte write", "racecheck", "read-after-write hazard on buffer", [&] {
        uint32_t* w = nullptr;
        cudaCheck(cudaMalloc(&w, 64 * sizeof(uint32_t)));
        cudaCheck(cudaMemset(w, 0, 64 * sizeof(uint32_t)));
        LAUNCH(halves_after_word_kernel<false>, 1, 64, 0, 0)(out, w);
        cudaCheckLaunch();
        cudaCheck(cudaFree(w));
    }, [&] {
        uint32_t* w = nullptr;
        cudaCheck(cudaMalloc(&w, 64 * sizeof(uint32_t)));
        cudaCheck(cudaMemset(w, 0, 64 * sizeof(uint32_t)));
        LAUNCH(halves_after_word_kernel<true>, 1, 64, 0, 0)(out, w);
        cudaCheckLaunch();
        cudaCheck(cudaFree(w));
    });

    // the sanitizer keeps per-byte records of a word for the launch that accessed it in part;
    // in the next launch, the word's own records serve again, whatever other words split
    expect_report("a 4-byte write over another thread's bf16 write", "racecheck", "write-after-write hazard on buffer", [&] {
        __nv_bfloat16* y = bf16_written(2, 0);
        LAUNCH(half_and_word_kernel, 1, 2, 0, 0)(y, reinterpret_cast<uint32_t*>(y));
        cudaCheckLaunch();
        cudaCheck(cudaFree(y));
    }, [&] {  // x's word was written in halves by the launch before: no record of it in this one
        __nv_bfloat16 *x = bf16_written(2, 0), *y = bf16_written(2, 0);
        LAUNCH((write_elements_kernel<__nv_bfloat16, 1, true>), 1, 2, 0, 0)(x, 2);
        LAUNCH(half_and_word_kernel, 1, 2, 0, 0)(y, reinterpret_cast<uint32_t*>(x));
        cudaCheckLaunch();
        for (__nv_bfloat16* p : {x, y}) { cudaCheck(cudaFree(p)); }
    });

    // a kernel writes the even bf16 elements (2-byte stores): the odd ones, the other halves of
    // the words, stay unwritten; the report names the first unwritten byte (+ 0x2)
    auto even_written = [&]() {
        __nv_bfloat16* e = bf16_written(128, 0);
        LAUNCH((write_elements_kernel<__nv_bfloat16, 1, true>), 64, 1, 0, 0)(e, 2);  // block b: element 2 b
        cudaCheckLaunch();
        return e;
    };
    expect_report("a kernel reads the unwritten half of a word", "initcheck", "+ 0x2: by block (0,0,0) thread (0,0,0)", [&] {
        __nv_bfloat16* e = even_written();
        LAUNCH(read_halves_kernel<false>, 1, 64, 0, 0)(out, e, 1, 2);
        cudaCheckLaunch();
        cudaCheck(cudaFree(e));
    }, [&] {
        __nv_bfloat16* e = even_written();
        LAUNCH(read_halves_kernel<false>, 1, 64, 0, 0)(out, e, 0, 2);
        cudaCheckLaunch();
        cudaCheck(cudaFree(e));
    });

    expect_report("a 4-byte read of a half-written word", "initcheck", "+ 0x2: by block (0,0,0) thread (0,0,0)", [&] {
        __nv_bfloat16* e = even_written();
        LAUNCH(read_halves_kernel<true>, 1, 64, 0, 0)(out, e, 0, 2);
        cudaCheckLaunch();
        cudaCheck(cudaFree(e));
    }, [&] {  // once the odd elements are written too
        __nv_bfloat16* e = even_written();
        LAUNCH((write_elements_kernel<__nv_bfloat16, 1, true>), 64, 1, 0, 0)(e + 1, 2);
        LAUNCH(read_halves_kernel<true>, 1, 64, 0, 0)(out, e, 0, 2);
        cudaCheckLaunch();
        cudaCheck(cudaFree(e));
    });

    // ... and in shared memory (static and dynamic; initcheck does not cover shared memory)
    expect_report("two threads write one uint16_t of __shared__ memory", "racecheck",
                  "write-after-write hazard on shared memory (static", [&] {
        LAUNCH((shared_halves_kernel<2, true>), 2, 64, 0, 0)(out);
        cudaCheckLaunch();
    }, [&] {
        LAUNCH((shared_halves_kernel<1, true>), 2, 64, 0, 0)(out);
        cudaCheckLaunch();
    });

    expect_report("a 4-byte read of another thread's uint16_t write to __shared__ memory", "racecheck",
                  "read-after-write hazard on shared memory (static", [&] {
        LAUNCH((shared_halves_kernel<1, false>), 2, 64, 0, 0)(out);
        cudaCheckLaunch();
    }, [&] {
        LAUNCH((shared_halves_kernel<1, true>), 2, 64, 0, 0)(out);
        cudaCheckLaunch();
    });

    expect_report("two threads write one char of dynamic shared memory", "racecheck",
                  "write-after-write hazard on shared memory (dynamic)", [&] {
        LAUNCH(shared_chars_kernel<2>, 2, 62, 31, 0)(out);
        cudaCheckLaunch();
    }, [&] {
        LAUNCH(shared_chars_kernel<1>, 2, 62, 62, 0)(out);
        cudaCheckLaunch();
    });

    test_bf16_counters(in);

    // the counters: a launch that reads 128 floats and writes 128 moves 16 sectors each way
    san::record(true);
    LAUNCH(scale_kernel, 1, 128, 0, 0)(out, in, 128);
    cudaCheckLaunch();
    san::record(false);
    const san::Op& op = san::ops().back();
    check(op.name == "scale_kernel" && op.sectors_read == 16 && op.sectors_written == 16 && op.bytes_read == 512 &&
              op.bytes_written == 512,
          "counters of a launch: %s, %llu sectors read, %llu written, %llu bytes read, %llu written", op.name.c_str(),
          (unsigned long long)op.sectors_read, (unsigned long long)op.sectors_written,
          (unsigned long long)op.bytes_read, (unsigned long long)op.bytes_written);

    cudaCheck(cudaFree(slots));
    cudaCheck(cudaFree(seen));
    cudaCheck(cudaFree(in));
    cudaCheck(cudaFree(out));
    san::forget_reports();  // every report above was expected
    printf("\n%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
