// common.h: what every dev/cuda file shares: random inputs, poisoned outputs, validation against
// a CPU reference, and a benchmark that runs only on a real GPU.
//
// Each dev/cuda/<op>.cu builds two ways (see its top comment):
//   nvcc -O3 -std=c++17 -I. -arch=sm_90 dev/cuda/<op>.cu -lcublas -lcublasLt     (a GPU)
//   g++ -x c++ -DCUDA_CPU_HARNESS -O2 -std=c++17 -I. dev/cuda/<op>.cu -lpthread   (CPU harness)
// and prints one PASS/FAIL line per validated version, a benchmark table on a GPU, and the
// closing line "N passed, M failed".
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "llmc/cuda_common.h"
#include "llmc/rand.h"

// ----------------------------------------------------------------------------
// inputs and outputs

// n values uniform in [-1, 1), never exactly zero (a zero hides a missing multiplication)
inline std::vector<float> make_random_float(size_t n, uint64_t seed) {
    std::vector<float> v(n);
    for (float& x : v) {
        do { x = 2.0f * random_f32(&seed) - 1.0f; } while (x == 0.0f);
    }
    return v;
}

inline float* device_copy(const std::vector<float>& host) {
    float* d = nullptr;
    cudaCheck(cudaMalloc(&d, host.size() * sizeof(float)));
    cudaCheck(cudaMemcpy(d, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice));
    return d;
}

inline float* device_alloc(size_t n) {
    float* d = nullptr;
    cudaCheck(cudaMalloc(&d, n * sizeof(float)));
    return d;
}

// Fills a device buffer with NaN (all bits set), so that an element a kernel forgot to write fails
// validation instead of passing with a stale value.
inline void poison(float* d, size_t n) { cudaCheck(cudaMemset(d, 0xFF, n * sizeof(float))); }

inline std::vector<float> host_copy(const float* d, size_t n) {
    std::vector<float> h(n);
    cudaCheck(cudaMemcpy(h.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost));
    return h;
}

// ----------------------------------------------------------------------------
// validation

static int g_passed = 0, g_failed = 0;

// Every element within tol·(1 + |reference|); prints the first mismatches.
inline bool validate_result(const float* d_result, const std::vector<float>& reference, const char* name, float tol) {
    std::vector<float> got = host_copy(d_result, reference.size());
    size_t bad = 0;
    double worst = 0.0;
    for (size_t i = 0; i < reference.size(); i++) {
        double err = fabs((double)got[i] - reference[i]);
        double allowed = tol * (1.0 + fabs((double)reference[i]));
        if (!(err <= allowed)) {
            if (bad < 5) { printf("  %s[%zu]: got %.7g, expected %.7g\n", name, i, got[i], reference[i]); }
            bad++;
        }
        if (!(err <= worst)) { worst = err; }
    }
    bool ok = bad == 0;
    printf("%s %s: %zu elements, max abs error %.2e (tol %.0e relative)%s\n", ok ? "PASS" : "FAIL", name,
           reference.size(), worst, tol, ok ? "" : ", mismatches above");
    (ok ? g_passed : g_failed)++;
    return ok;
}

inline bool check(bool ok, const char* what) {
    printf("%s %s\n", ok ? "PASS" : "FAIL", what);
    (ok ? g_passed : g_failed)++;
    return ok;
}

inline int finish() {
    printf("\n%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}

// ----------------------------------------------------------------------------
// benchmark (a real GPU only: the harness's timings mean nothing)

inline bool on_real_gpu() {
#ifdef CUDA_CPU_HARNESS
    return false;
#else
    return true;
#endif
}

// Median milliseconds of `repeats` timed calls of fn (after one warm-up), with CUDA events.
template <typename F>
float benchmark_kernel(int repeats, F&& fn) {
    cudaEvent_t start, stop;
    cudaCheck(cudaEventCreate(&start));
    cudaCheck(cudaEventCreate(&stop));
    fn();
    cudaCheck(cudaDeviceSynchronize());
    std::vector<float> ms(repeats);
    for (int r = 0; r < repeats; r++) {
        cudaCheck(cudaEventRecord(start));
        fn();
        cudaCheck(cudaEventRecord(stop));
        cudaCheck(cudaEventSynchronize(stop));
        cudaCheck(cudaEventElapsedTime(&ms[r], start, stop));
    }
    cudaCheck(cudaEventDestroy(start));
    cudaCheck(cudaEventDestroy(stop));
    std::sort(ms.begin(), ms.end());
    return ms[repeats / 2];
}

// One row of the summary table that scripts/gpu_check.sh collects: "BENCH <file> <version> <ms> <ratio>"
inline void report_benchmark(const char* file, const char* version, float ms, float baseline_ms) {
    printf("BENCH %-22s %-28s %10.4f ms  %6.3fx\n", file, version, ms, ms / baseline_ms);
}
