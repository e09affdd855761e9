// common.h: what every dev/cuda file shares: random inputs, poisoned outputs, validation against
// a CPU reference, the version table and the command line, the cuBLAS GEMM of an AbftGemm, fault
// injection, ATTNChecker run as the trainer runs it, and a benchmark that runs only on a real GPU.
//
// Each dev/cuda/<op>.cu builds two ways (dev/cuda/README.md; `make` in dev/cuda does both):
//   nvcc -O3 -std=c++17 -I. -arch=sm_90 dev/cuda/<op>.cu -lcublas -lcublasLt     (a GPU)
//   g++ -x c++ -DCUDA_CPU_HARNESS -O2 -std=c++17 -I. dev/cuda/<op>.cu -lpthread   (CPU harness)
// runs as `<op> [version] [block_size]`, and prints one PASS/FAIL line per check, a benchmark
// table on a GPU, and the closing line "N passed, M failed".
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "llmc/cuda_common.h"
#include "llmc/rand.h"
#include "abft.cuh"

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

template <typename T>
inline T* device_copy(const std::vector<T>& host) {
    T* d = nullptr;
    cudaCheck(cudaMalloc(&d, host.size() * sizeof(T)));
    cudaCheck(cudaMemcpy(d, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
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

template <typename T>
inline std::vector<T> host_copy(const T* d, size_t n) {
    std::vector<T> h(n);
    cudaCheck(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
}

// ----------------------------------------------------------------------------
// validation

static int g_passed = 0, g_failed = 0;

// How many elements of a device result miss tol·(1 + |reference|), and the largest absolute error;
// with a name, the first mismatches are printed.
inline size_t count_mismatches(const float* d_result, const std::vector<float>& reference, float tol, double* worst,
                               const char* name = nullptr) {
    std::vector<float> got = host_copy(d_result, reference.size());
    size_t bad = 0;
    *worst = 0.0;
    for (size_t i = 0; i < reference.size(); i++) {
        double err = fabs((double)got[i] - reference[i]);
        double allowed = tol * (1.0 + fabs((double)reference[i]));
        if (!(err <= allowed)) {
            if (name != nullptr && bad < 5) { printf("  %s[%zu]: got %.7g, expected %.7g\n", name, i, got[i], reference[i]); }
            bad++;
        }
        if (!(err <= *worst)) { *worst = err; }
    }
    return bad;
}

// Every element within tol·(1 + |reference|); prints the first mismatches.
inline bool validate_result(const float* d_result, const std::vector<float>& reference, const char* name, float tol) {
    double worst = 0.0;
    bool ok = count_mismatches(d_result, reference, tol, &worst, name) == 0;
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

// ----------------------------------------------------------------------------
// the version table and the command line: ./<file> [version] [block_size]

// How much of ATTNChecker a version runs.
enum AbftLevel { ABFT_NONE, ABFT_DETECTS, ABFT_CORRECTS };

// One row of a file's table of versions. main, the validation and the benchmark loop over the
// table, so that a new version is one function (and its kernels) plus one row. Run is the file's
// signature of a version.
template <typename Run>
struct Version {
    int number;             // the command line's version argument
    const char* name;       // one word: the benchmark table's column
    Run run;
    AbftLevel abft;
    bool takes_block_size;  // false: its kernels need the fixed blocks `what` names
    const char* what;
};

// Threads per block of the handwritten kernels: the default, and the sizes validated (and on a
// GPU benchmarked) when the command line names none.
constexpr int kDefaultBlockSize = 256;
static const int kBlockSizes[] = {64, 128, 256, 512, 1024};

struct Args {
    int version;     // 0: every version
    int block_size;  // the one named, else kDefaultBlockSize
    bool sweep;      // no block size named: also every size of kBlockSizes
};

// Parses `[version] [block_size]` against the file's table; prints the table on a bad argument.
template <typename V, size_t N>
Args parse_args(int argc, char** argv, const V (&versions)[N]) {
    Args a = {0, kDefaultBlockSize, true};
    bool ok = argc <= 3;
    char* end = nullptr;
    if (ok && argc > 1) {
        a.version = (int)strtol(argv[1], &end, 10);
        ok = end != argv[1] && *end == '\0' && a.version >= 0;
        bool known = a.version == 0;
        for (const V& v : versions) { known |= v.number == a.version; }
        ok &= known;
    }
    if (ok && argc > 2) {
        a.block_size = (int)strtol(argv[2], &end, 10);
        a.sweep = false;
        ok = end != argv[2] && *end == '\0' && a.block_size >= 32 && a.block_size <= 1024 && a.block_size % 32 == 0;
    }
    if (!ok) {
        fprintf(stderr, "error: bad arguments (hint: %s [version] [block_size]: version 0 (all, the default) or one of the "
                        "table below; block_size a multiple of 32 from 32 to 1024, default %d)\n", argv[0], kDefaultBlockSize);
        for (const V& v : versions) {
            fprintf(stderr, "  %d %-18s %s%s\n", v.number, v.name, v.what, v.takes_block_size ? "" : " (fixed blocks)");
        }
        exit(EXIT_FAILURE);
    }
    return a;
}

inline bool selected(const Args& a, int number) { return a.version == 0 || a.version == number; }

// The block sizes a version runs at: the one named, or the sweep.
template <typename V>
std::vector<int> block_sizes(const Args& a, const V& v) {
    if (!v.takes_block_size || !a.sweep) { return {a.block_size}; }
    return std::vector<int>(std::begin(kBlockSizes), std::end(kBlockSizes));
}

inline int ceil_div(long a, long b) { return (int)((a + b - 1) / b); }

// The fault-free runs of a version at the sweep's other block sizes, validated in one check:
// run_at(block) runs it with that block size and returns how many alarms its checks raised
// (their sum is returned, for the caller's no-false-alarm check).
template <typename V, typename RunAt>
int validate_other_block_sizes(const Args& a, const V& v, const char* what, const float* d_result,
                               const std::vector<float>& reference, float tol, RunAt run_at) {
    const std::vector<int> sizes = block_sizes(a, v);
    if (sizes.size() <= 1) { return 0; }
    size_t bad = 0;
    double worst = 0.0, w = 0.0;
    int alarms = 0;
    for (int block : sizes) {
        if (block == a.block_size) { continue; }
        alarms += run_at(block);
        bad += count_mismatches(d_result, reference, tol, &w);
        worst = std::max(worst, w);
    }
    char name[320];
    snprintf(name, sizeof(name), "%s at the other block sizes of 64..1024 (max abs error %.2e)", what, worst);
    check(bad == 0, name);
    return alarms;
}

// The benchmark of the chosen versions, at each of their block sizes, against the table's
// baseline version at the block size given: run_at(version, block) runs one, fault-free.
template <typename V, size_t N, typename RunAt>
void benchmark_versions(const char* file, const Args& a, const V (&versions)[N], int baseline, RunAt run_at) {
    const int repeats = 20;
    float base = 0.0f;
    for (const V& v : versions) {
        if (v.number == baseline) { base = benchmark_kernel(repeats, [&] { run_at(v, a.block_size); }); }
    }
    for (const V& v : versions) {
        if (!selected(a, v.number)) { continue; }
        for (int block : block_sizes(a, v)) {
            const float ms = benchmark_kernel(repeats, [&] { run_at(v, block); });
            char label[64];
            snprintf(label, sizeof(label), "%d-%s/b%d", v.number, v.name, block);
            report_benchmark(file, label, ms, base);
        }
    }
}

// ----------------------------------------------------------------------------
// a protected GEMM (abft.cuh's AbftGemm) through cuBLAS, no bias

// cuBLAS is column-major: the row-major C (M, N) it must write is the column-major Cᵀ (N, M),
// and Cᵀ = Bᵀ·Aᵀ. A view with contiguous rows (cs == 1, ld = rs) is, read column-major, already
// the transpose cuBLAS needs (op N); a transposed view (rs == 1, ld = cs) needs op T.
inline void gemm_cublas(cublasHandle_t handle, const AbftGemm& g) {
    const cublasOperation_t opB = g.B.cs == 1 ? CUBLAS_OP_N : CUBLAS_OP_T;
    const cublasOperation_t opA = g.A.cs == 1 ? CUBLAS_OP_N : CUBLAS_OP_T;
    const int ldb = (int)(g.B.cs == 1 ? g.B.rs : g.B.cs), lda = (int)(g.A.cs == 1 ? g.A.rs : g.A.cs);
    const float beta = 0.0f;
    cublasCheck(cublasSgemmStridedBatched(handle, opB, opA, g.N, g.M, g.K, &g.alpha, g.B.p, ldb, g.strideB, g.A.p, lda,
                                          g.strideA, &beta, g.C, (int)g.ldc, g.strideC, g.batch));
}

// ----------------------------------------------------------------------------
// fault injection: what a faulty unit writes into a GEMM's output (abft_inject's patterns)

// Which GEMM (the file's index), the value (AbftFaultType), the pattern (AbftPattern) and where:
// batch entry b, element (i, j) (a row pattern takes row i, a column pattern column j, the 2-D
// pattern the 2x2 block at (i, j)). gemm < 0: no fault.
struct Fault {
    int gemm, type, pattern, b, i, j;
};
constexpr Fault kNoFault = {-1, 0, 0, 0, 0, 0};

__device__ inline void corrupt(float* C, long ldc, int i, int j, int type) {
    C[i * ldc + j] = abft_fault_value(type, -1, C[i * ldc + j]);
}

// One thread: a fault is a handful of elements.
__global__ void inject_fault_kernel(AbftGemm g, Fault f) {
    float* C = g.C + f.b * g.strideC;
    switch (f.pattern) {
        case PATTERN_0D: corrupt(C, g.ldc, f.i, f.j, f.type); break;
        case PATTERN_ROW: for (int j = 0; j < g.N; j++) { corrupt(C, g.ldc, f.i, j, f.type); } break;
        case PATTERN_COL: for (int i = 0; i < g.M; i++) { corrupt(C, g.ldc, i, f.j, f.type); } break;
        default:
            for (int i = f.i; i < f.i + 2 && i < g.M; i++) {
                for (int j = f.j; j < f.j + 2 && j < g.N; j++) { corrupt(C, g.ldc, i, j, f.type); }
            }
    }
}

// Writes the fault into g's output (M x N elements of C) when it targets this GEMM.
inline void inject_fault(const AbftGemm& g, int gemm, const Fault& f) {
    if (f.gemm != gemm) { return; }
    LAUNCH(inject_fault_kernel, 1, 1, 0, 0)(g, f);
    cudaCheckLaunch();
}

// ----------------------------------------------------------------------------
// ATTNChecker as the trainer runs it (llmc/abft_gpu.cuh's abft_gpu_verify): its fast and slow paths

// What the checks of one run found, in batch entries.
struct AbftTally {
    int detected;    // flagged by the verification
    int by_columns;  // rebuilt from the column checksums (0-D and row patterns), clean when checked again
    int by_rows;     // rebuilt from the row checksums (column patterns), clean when checked again
    int unfixed;     // beyond the checksums (2-D), or still flagged: the trainer recomputes the GEMM
    int corrected() const { return by_columns + by_rows; }
    int alarms() const { return detected + corrected() + unfixed; }
};

// For the entries the verification flagged (s->flags): abft.cuh's slow path (correct, check
// again), as the trainer runs it, tallied. Waits for the GPU (only after a detection).
inline void abft_correct_and_recheck(const AbftGemm& g, AbftGpuScratch* s, AbftTally* t) {
    const AbftGpuRepair r = abft_gpu_repair(AbftConfig(), g, s);
    for (int b = 0; b < g.batch; b++) {
        if (r.flagged[b] == 0) { continue; }
        t->detected++;
        if (r.ok(b) && r.status[b] == REPAIR_BY_COLUMNS) {
            t->by_columns++;
        } else if (r.ok(b) && r.status[b] == REPAIR_BY_ROWS) {
            t->by_rows++;
        } else {
            t->unfixed++;
        }
    }
}

// After a protected GEMM (fp32 operands): abft.cuh's fast path, then, where it flagged an
// entry, the slow path. The host reads one counter: the one synchronization a fault-free check
// costs in the trainer.
inline void abft_check_gemm(const AbftGemm& g, AbftGpuScratch* s, AbftTally* t) {
    if (abft_gpu_check(AbftConfig(), g, s) > 0) { abft_correct_and_recheck(g, s, t); }
}
