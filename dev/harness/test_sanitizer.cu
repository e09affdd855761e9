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
// which must give none.
template <typename Bug, typename Fixed>
static void expect_report(const char* name, const char* check_name, const char* expect, Bug bug, Fixed fixed) {
    const bool race = strcmp(check_name, "racecheck") == 0;
    printf("%s: the next report is expected\n", name);
    fflush(stdout);
    const unsigned long race_before = san::race_reports(), init_before = san::init_reports();
    bug();
    const unsigned long races = san::race_reports() - race_before, inits = san::init_reports() - init_before;
    const std::string& line = san::last_report();
    check((race ? races : inits) > 0 && (race ? inits : races) == 0 && line.rfind(check_name, 0) == 0 &&
              line.find(expect) != std::string::npos,
          "%s: reported by %s (%lu racecheck, %lu initcheck reports; last: %s)", name, check_name, races, inits,
          line.c_str());
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
