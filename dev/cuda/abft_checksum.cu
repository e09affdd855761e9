// abft_checksum.cu: ATTNChecker's checksum kernels for one protected batched GEMM.
//
// The op (abft.cuh, docs/ABFT.md): a GEMM C[b] = alpha·A[b]·B[b] + bias, b < batch, described
// by an AbftGemm (strided MatView operands in either layout, row-major C with ldc), is checked
// by column checksums computed from its operands alone:
//
//   encode   ue = e·A, ua = e·|A|                       (K)   per batch entry
//            chk = alpha·ue·B + M·bias                   (N)   what e·C must be
//            bound = |alpha|·ua·|B| + M·|bias|           (N)   what e·|C| may be at most
//   verify   column j of C[b] is faulty when |e·C_j − chk_j| > tol or e·|C_j| > bound_j + tol,
//            tol = abft_tolerance(tau = 2, K, M, bound_j): exactly abft_check_columns' rule, so
//            the GPU and the CPU agree on what is a fault. Writes flags[b] (columns that failed)
//            and bumps a device counter once per faulty batch entry.
//   correct  for flagged entries only (the slow path): fp64 plain and weighted column and row
//            checksums recomputed from the operands, one thread per column and per row judges
//            its line (abft_line_init/abft_line_add, abft_judge); when every column is fixable they are
//            applied (0-D and row patterns); else the same per row (column pattern); else the
//            entry is reported "beyond checksums" (2-D): the caller recomputes the GEMM.
//
// The reference is abft.cuh's HOST path: abft_verify (detection, via abft_check_columns /
// abft_colsums) and abft_repair (location and correction), plus plain double loops here.
//
// Versions (encode + verify, the table `versions` below the kernels; the correction is abft.cuh's
// abft_gpu_repair for all, called as the trainer calls it: it runs only after a fault, so its
// speed hardly matters):
//   1  naive: one thread per column (per k for e·A) for everything, a strided loop over rows.
//   2  coalesced: a (32, 8) block; the 32 lanes of a warp take 32 consecutive columns and the
//      8 warps split the rows, so each row-major read of a warp is one 128-byte transaction;
//      the 8 partial sums are reduced through shared memory.
//   3  split rows: version 2 gives each 32 columns one block, which leaves most of a GPU idle
//      for a linear layer's GEMM (batch 1, N/32 blocks, each summing B·T = 8192 rows). Here the
//      column sums of A and of C run in two stages (blocks of 32 columns x 256 rows write
//      partial sums, one thread per column adds them in order), then one kernel per column
//      tile computes chk/bound and compares. Operands stored transposed (columns contiguous:
//      Pᵀ, Wᵀ, Kᵀ) are read a warp per column instead, coalesced, where versions 1 and 2 stride
//      by a whole row between lanes. THE TRAINER'S: its kernels, and the repair kernel,
//      live in abft.cuh (abft_gpu_encode_verify, abft_gpu_repair); this file validates and
//      times them next to the slower versions.
//
// Build and run (dev/cuda/README.md):
//   cd dev/cuda && make abft_checksum && ./abft_checksum [version] [block_size]       (GPU)
//   cd dev/cuda && make abft_checksum_cpu && ./abft_checksum_cpu [version] [block_size]
// version 0 (the default) runs every version. block_size (threads per block, a multiple of 32 up
// to 1024, default 256) is taken by version 1 only; without one, version 1's fault-free checks
// also run at every size of 64..1024 (and on a GPU are benchmarked at each).
//
// What is validated (every version, outputs poisoned first):
//   - ue, ua, chk, bound against plain double loops (signed sums within the fp32 summation bound,
//     positive sums within 1e-4 relative), and no alarm on fault-free GEMMs, GPU or CPU: five
//     shapes, odd M, N, K, both operand layouts, with and without bias, magnitudes 1e-3..1e3;
//   - each fault type (inf, -inf, nan, nearinf, bitflip) x pattern (0-D, row, column, 2-D) written
//     into C after the GEMM: detected exactly when the host abft_verify detects it; 0-D/row/col
//     rebuilt to the fault-free C and to the host-repaired C within the line's tolerance, and
//     clean on re-verification; 2-D reported beyond the checksums, as the host reports it;
//   - +1e20 and -1e20 in one column that cancel in the plain sum: only the absolute-sum test
//     sees them (shown on the host path), every version detects them, the rows rebuild them;
//   - the fix in place of a training pass (abft_reader_check_warp, the reader's row check): each
//     fault type x pattern fixed to the fault-free C, the elements the fault missed kept bit for
//     bit, the pattern reported as the rebuild reports it (2-D: scattered), no gate raised;
//     with a bad operand row as well, the row still fails after its fix and raises the gate.
//
// Shapes: GPT-2 124M's attention on a GPU (B=8, NH=12, T=1024, HS=64, C=768); small odd ones
// under the harness (B=2, NH=3, T=37, HS=16, plus GEMMs with M, N, K = 29, 23, 19 and 31, 17, 21).
// On a GPU the validations run first at B=2, T=67 (the references are plain loops), then the
// benchmark at full size: the GEMM alone (cuBLAS, the baseline), then GEMM + encode + verify.
#include <string>

#include "dev/cuda/common.h" // and abft.cuh

constexpr float TAU = 2.0f; // abft.cuh's AbftConfig::tau: the safety factor of the tolerance

// ----------------------------------------------------------------------------
// small device helpers shared by the versions

__device__ inline float bias_at(const float* bias, int j) { return bias ? bias[j] : 0.0f; }

// abft_check_columns' test for one column, in the same fp32 arithmetic. NaN fails it.
__device__ inline bool column_is_clean(float sum, float abssum, float chk, float bound, int K, int M) {
    return abft_line_matches(sum, abssum, chk, bound, abft_tolerance(TAU, K, M, bound));
}

// The expected column checksum and its bound from the two reduced dot products.
__device__ inline void finish_checksum(float s, float sa, float alpha, float bias, int M, float* chk, float* bound) {
    *chk = alpha * s + (float)M * bias;
    *bound = fabsf(alpha) * sa + (float)M * fabsf(bias);
}

// ----------------------------------------------------------------------------
// version 1: naive, one thread per column

// ue[b][k] = Σ_i A(i,k), ua[b][k] = Σ_i |A(i,k)|. grid (ceil(K/128), batch), block 128.
__global__ void encode_a_v1(AbftGemm g, float* ue, float* ua) {
    int k = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    if (k >= g.K) { return; }
    MatView A = {g.A.p + b * g.strideA, g.A.rs, g.A.cs};
    float s = 0.0f, sa = 0.0f;
    for (int i = 0; i < g.M; i++) { float x = A.at(i, k); s += x; sa += fabsf(x); }
    ue[(long)b * g.K + k] = s;
    ua[(long)b * g.K + k] = sa;
}

// chk[b][j], bound[b][j] from ue, ua. grid (ceil(N/128), batch), block 128.
__global__ void encode_b_v1(AbftGemm g, const float* ue, const float* ua, float* chk, float* bound) {
    int j = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    if (j >= g.N) { return; }
    MatView B = {g.B.p + b * g.strideB, g.B.rs, g.B.cs};
    float s = 0.0f, sa = 0.0f;
    for (int k = 0; k < g.K; k++) {
        float x = B.at(k, j);
        s += ue[(long)b * g.K + k] * x;
        sa += ua[(long)b * g.K + k] * fabsf(x);
    }
    finish_checksum(s, sa, g.alpha, bias_at(g.bias, j), g.M, &chk[(long)b * g.N + j], &bound[(long)b * g.N + j]);
}

// One thread per column of C[b]. grid (ceil(N/128), batch), block 128.
__global__ void verify_v1(AbftGemm g, const float* chk, const float* bound, int* flags, int* counter) {
    int j = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    if (j >= g.N) { return; }
    const float* C = g.C + b * g.strideC;
    float s = 0.0f, sa = 0.0f;
    for (int i = 0; i < g.M; i++) { float x = C[(long)i * g.ldc + j]; s += x; sa += fabsf(x); }
    if (!column_is_clean(s, sa, chk[(long)b * g.N + j], bound[(long)b * g.N + j], g.K, g.M)) {
        abft_report_fault(flags, counter, b);
    }
}

// ----------------------------------------------------------------------------
// version 2: coalesced, block (32, ABFT_ROWS): lanes over consecutive columns, warps over rows

// abft.cuh has the shared pieces: abft_reduce_over_warps, abft_column_checksum (chk, bound).
constexpr int TILE = ABFT_TILE;

// ue[b][k] = Σ_i A(i,k), ua[b][k] = Σ_i |A(i,k)|: the lanes of a warp take consecutive k, the
// warps split the rows. grid (ceil(K/ABFT_TILE), batch), block (ABFT_TILE, ABFT_ROWS).
__global__ void encode_a_v2(AbftGemm g, float* ue, float* ua) {
    int k = blockIdx.x * ABFT_TILE + threadIdx.x, b = blockIdx.y;
    MatView A = {g.A.p + b * g.strideA, g.A.rs, g.A.cs};
    float s = 0.0f, sa = 0.0f;
    if (k < g.K) { // no early return: every thread must reach the barrier
        for (int i = threadIdx.y; i < g.M; i += ABFT_ROWS) { float x = A.at(i, k); s += x; sa += fabsf(x); }
    }
    abft_reduce_over_warps(&s, &sa);
    if (threadIdx.y == 0 && k < g.K) { ue[(long)b * g.K + k] = s; ua[(long)b * g.K + k] = sa; }
}

// The column sums of C[b] against (chk, bound): abft_check_columns' rule in the same fp32
// arithmetic, so the GPU and the CPU agree on what is a fault. NaN fails it.
__device__ inline void column_check_v2(const AbftGemm& g, int b, int j, float chk, float bound, float tau,
                                       float operand_u, int* flags, int* counter) {
    const float* C = g.C + b * g.strideC;
    float s = 0.0f, sa = 0.0f;
    if (j < g.N) {
        for (int i = threadIdx.y; i < g.M; i += ABFT_ROWS) { float x = C[(long)i * g.ldc + j]; s += x; sa += fabsf(x); }
    }
    abft_reduce_over_warps(&s, &sa);
    if (threadIdx.y == 0 && j < g.N) {
        float tol = abft_tolerance(tau, g.K, g.M, bound, operand_u);
        if (!abft_line_matches(s, sa, chk, bound, tol)) { abft_report_fault(flags, counter, b); }
    }
}

// grid (ceil(N/TILE), batch), block (TILE, ABFT_ROWS)
__global__ void encode_b_v2(AbftGemm g, const float* ue, const float* ua, float* chk, float* bound) {
    int j = blockIdx.x * TILE + threadIdx.x, b = blockIdx.y;
    float c = 0.0f, bd = 0.0f;
    abft_column_checksum(g, b, j, ue, ua, &c, &bd);
    if (threadIdx.y == 0 && j < g.N) { chk[(long)b * g.N + j] = c; bound[(long)b * g.N + j] = bd; }
}

// grid (ceil(N/TILE), batch), block (TILE, ABFT_ROWS)
__global__ void verify_v2(AbftGemm g, const float* chk, const float* bound, int* flags, int* counter) {
    int j = blockIdx.x * TILE + threadIdx.x, b = blockIdx.y;
    float c = 0.0f, bd = 0.0f;
    if (j < g.N) { c = chk[(long)b * g.N + j]; bd = bound[(long)b * g.N + j]; }
    column_check_v2(g, b, j, c, bd, TAU, 0.0f, flags, counter);
}

// ----------------------------------------------------------------------------
// version 3: row-split column sums, then chk/bound and the check per column tile: abft.cuh's
// abft_gpu_encode_verify, the one the trainer runs.
// Correction (all versions): abft.cuh's abft_gpu_repair, fp64 checksums of the flagged
// entries, one block per flagged entry (abft_repair_kernel).

// ----------------------------------------------------------------------------
// the bias of the GEMM (cuBLAS computes alpha·A·B)

// C[b][i][j] += bias[j]. grid (ceil(N/128), M, batch).
__global__ void add_bias(float* C, long ldc, long strideC, const float* bias, int N) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j < N) { C[blockIdx.z * strideC + (long)blockIdx.y * ldc + j] += bias[j]; }
}

// ----------------------------------------------------------------------------
// a reader of C with the check a training pass leaves to it (test_fix_in_place)

// One warp per row of C[b], as a reader reads it: its sums, then the check and, when the row
// fails, its fix. grid (ceil(batch·M / 8)), block 256.
__global__ void reader_check_kernel(AbftReaderCheck c, int batch, int M, int N) {
    const long row = ((long)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    if (row >= (long)batch * M) { return; } // whole warps leave together
    const AbftGemm& g = c.fix.g;
    float s = 0.0f, sa = 0.0f;
    abft_lane_sums(g.C + (row / M) * g.strideC + (row % M) * g.ldc, N, &s, &sa);
    abft_reader_check_warp(c, row, M, N, s, sa);
}

// Everything below is host code (some of it calls abft.cuh's host path, which nvcc's device
// pass, where __CUDA_ARCH__ is defined, does not see).
#ifndef __CUDA_ARCH__

// ----------------------------------------------------------------------------
// host side: buffers and launches of one version

typedef AbftGpuScratch Checker;

static Checker checker_alloc(const AbftGemm& g) {
    Checker c = {};
    abft_gpu_reserve(&c, g);
    return c;
}

static void checker_free(Checker& c) { abft_gpu_free(&c); }

// Encode (e·A, then chk/bound) and verify C: the fast path every protected GEMM takes. Each
// version resets the flags and adds the faulty entries to c.counter.

static void encode_verify_naive(const AbftGemm& g, Checker& c, int block) {
    cudaCheck(cudaMemset(c.flags, 0, g.batch * sizeof(int)));
    LAUNCH(encode_a_v1, dim3(ceil_div(g.K, block), g.batch), dim3(block), 0, 0)(g, c.ue, c.ua);
    cudaCheckLaunch();
    LAUNCH(encode_b_v1, dim3(ceil_div(g.N, block), g.batch), dim3(block), 0, 0)(g, c.ue, c.ua, c.chk, c.bound);
    cudaCheckLaunch();
    LAUNCH(verify_v1, dim3(ceil_div(g.N, block), g.batch), dim3(block), 0, 0)(g, c.chk, c.bound, c.flags, c.counter);
    cudaCheckLaunch();
}

static void encode_verify_coalesced(const AbftGemm& g, Checker& c, int) {
    cudaCheck(cudaMemset(c.flags, 0, g.batch * sizeof(int)));
    const dim3 block(TILE, ABFT_ROWS);
    LAUNCH(encode_a_v2, dim3(ceil_div(g.K, TILE), g.batch), block, 0, 0)(g, c.ue, c.ua);
    cudaCheckLaunch();
    LAUNCH(encode_b_v2, dim3(ceil_div(g.N, TILE), g.batch), block, 0, 0)(g, c.ue, c.ua, c.chk, c.bound);
    cudaCheckLaunch();
    LAUNCH(verify_v2, dim3(ceil_div(g.N, TILE), g.batch), block, 0, 0)(g, c.chk, c.bound, c.flags, c.counter);
    cudaCheckLaunch();
}

// the trainer's path
static void encode_verify_trainer(const AbftGemm& g, Checker& c, int) {
    cudaCheck(cudaMemset(c.flags, 0, g.batch * sizeof(int))); // the trainer's repair kernel keeps them clear
    abft_gpu_encode_verify(g, &c, TAU, 0.0f, 0);
}

// ----------------------------------------------------------------------------
// the table of versions: a new version is a function above (and its kernels) plus a row here

typedef Version<void (*)(const AbftGemm&, Checker&, int)> ChecksumVersion;

static const ChecksumVersion versions[] = {
    {1, "naive", encode_verify_naive, ABFT_CORRECTS, true, "one thread per column, a strided loop over the rows"},
    {2, "coalesced", encode_verify_coalesced, ABFT_CORRECTS, false,
     "blocks of (32, 8): lanes over consecutive columns, warps over the rows"},
    {3, "trainer", encode_verify_trainer, ABFT_CORRECTS, false,
     "abft.cuh's abft_gpu_encode_verify: row-chunked column sums, a warp per contiguous column (its fixed blocks)"},
};

// ----------------------------------------------------------------------------
// the GEMM itself (cuBLAS, common.h) and the bias

static void gemm_with_bias(cublasHandle_t handle, const AbftGemm& g) {
    gemm_cublas(handle, g);
    if (g.bias) {
        LAUNCH(add_bias, dim3(ceil_div(g.N, 128), g.M, g.batch), dim3(128), 0, 0)(g.C, g.ldc, g.strideC, g.bias, g.N);
        cudaCheckLaunch();
    }
}

// ----------------------------------------------------------------------------
// test problems: host operands, their device copies, and plain-loop references

struct Problem {
    const char* name;
    AbftGemm g;                   // device pointers
    AbftGemm h;                   // the same GEMM on host copies (h.C: a host buffer)
    std::vector<float> A, B, bias, Cbuf; // host storage behind h
    float *dA, *dB, *dbias;
    // plain-loop references (double): C, the encode outputs, and the absolute sums that bound
    // each signed sum's fp32 rounding error
    std::vector<double> C_ref, ue_ref, ue_abs, ua_ref, chk_ref, chk_abs, bound_ref;
    std::vector<double> col_tol, row_tol; // abft_tolerance of each column / row of each entry
};

// A GEMM of `batch` entries (M, K)·(K, N); a_t / b_t: the operand is a transposed view of a
// contiguous (K, M) / (N, K) matrix, as Kᵀ in S = Q·Kᵀ or Wᵀ in a linear layer.
static Problem make_problem(const char* name, int batch, int M, int N, int K, bool a_t, bool b_t, bool with_bias,
                            float alpha, float scale_a, float scale_b, uint64_t seed) {
    Problem p;
    p.name = name;
    p.A = make_random_float((size_t)batch * M * K, seed);
    p.B = make_random_float((size_t)batch * K * N, seed + 1);
    for (float& x : p.A) { x *= scale_a; }
    for (float& x : p.B) { x *= scale_b; }
    if (with_bias) {
        p.bias = make_random_float(N, seed + 2);
        for (float& x : p.bias) { x *= scale_a * scale_b; }
    }
    p.Cbuf.assign((size_t)batch * M * N, 0.0f);
    p.dA = device_copy(p.A);
    p.dB = device_copy(p.B);
    p.dbias = with_bias ? device_copy(p.bias) : nullptr;
    AbftGemm g;
    g.M = M; g.N = N; g.K = K; g.batch = batch;
    g.A = a_t ? MatView{p.dA, 1, M} : MatView{p.dA, K, 1}; g.strideA = (long)M * K;
    g.B = b_t ? MatView{p.dB, 1, K} : MatView{p.dB, N, 1}; g.strideB = (long)K * N;
    g.C = device_alloc((size_t)batch * M * N); g.ldc = N; g.strideC = (long)M * N;
    g.alpha = alpha; g.bias = p.dbias; g.causal = false;
    p.g = g;
    p.h = g;
    p.h.A.p = p.A.data(); p.h.B.p = p.B.data(); p.h.bias = with_bias ? p.bias.data() : nullptr; p.h.C = p.Cbuf.data();
    return p;
}

// The plain-loop CPU reference, in double. Only called for the small (harness) problems.
static void compute_reference(Problem& p) {
    const AbftGemm& h = p.h;
    const int M = h.M, N = h.N, K = h.K;
    p.C_ref.assign((size_t)h.batch * M * N, 0.0);
    p.ue_ref.assign((size_t)h.batch * K, 0.0); p.ue_abs = p.ue_ref; p.ua_ref = p.ue_ref;
    p.chk_ref.assign((size_t)h.batch * N, 0.0); p.chk_abs = p.chk_ref; p.bound_ref = p.chk_ref;
    p.col_tol.assign((size_t)h.batch * N, 0.0); p.row_tol.assign((size_t)h.batch * M, 0.0);
    for (int b = 0; b < h.batch; b++) {
        MatView A = abft_entry(h.A, h.strideA, b), B = abft_entry(h.B, h.strideB, b);
        std::vector<double> rowbound(M, 0.0);
        for (int i = 0; i < M; i++) {
            for (int j = 0; j < N; j++) {
                double bj = h.bias ? h.bias[j] : 0.0, s = 0.0, sa = 0.0;
                for (int k = 0; k < K; k++) { s += (double)A.at(i, k) * B.at(k, j); sa += fabs((double)A.at(i, k) * B.at(k, j)); }
                p.C_ref[((size_t)b * M + i) * N + j] = h.alpha * s + bj;
                rowbound[i] += fabs(h.alpha) * sa + fabs(bj);
            }
        }
        for (int k = 0; k < K; k++) {
            for (int i = 0; i < M; i++) {
                double x = A.at(i, k);
                p.ue_ref[(size_t)b * K + k] += x; p.ue_abs[(size_t)b * K + k] += fabs(x); p.ua_ref[(size_t)b * K + k] += fabs(x);
            }
        }
        for (int j = 0; j < N; j++) {
            double bj = h.bias ? h.bias[j] : 0.0, s = 0.0, sa = 0.0, sb = 0.0;
            for (int k = 0; k < K; k++) {
                double x = B.at(k, j);
                s += p.ue_ref[(size_t)b * K + k] * x;
                sa += p.ue_abs[(size_t)b * K + k] * fabs(x);
                sb += p.ua_ref[(size_t)b * K + k] * fabs(x);
            }
            p.chk_ref[(size_t)b * N + j] = h.alpha * s + M * bj;
            p.chk_abs[(size_t)b * N + j] = fabs(h.alpha) * sa + M * fabs(bj);
            p.bound_ref[(size_t)b * N + j] = fabs(h.alpha) * sb + M * fabs(bj);
            p.col_tol[(size_t)b * N + j] = abft_tolerance(TAU, K, M, (float)p.bound_ref[(size_t)b * N + j]);
        }
        for (int i = 0; i < M; i++) { p.row_tol[(size_t)b * M + i] = abft_tolerance(TAU, K, N, (float)rowbound[i]); }
    }
}

static void free_problem(Problem& p) {
    cudaCheck(cudaFree(p.dA)); cudaCheck(cudaFree(p.dB)); cudaCheck(cudaFree(p.g.C));
    if (p.dbias) { cudaCheck(cudaFree(p.dbias)); }
}

// ----------------------------------------------------------------------------
// validation helpers

// A signed fp32 sum of n terms is off by at most about n·u·Σ|terms| (u = 2^-24, any order); a
// factor 2 for the two nested sums of chk, and 1e-30 for underflow. Prints like validate_result.
static bool validate_signed_sum(const float* d, const std::vector<double>& ref, const std::vector<double>& absref,
                                int n_terms, const char* name) {
    std::vector<float> got = host_copy(d, ref.size());
    size_t bad = 0;
    for (size_t i = 0; i < ref.size(); i++) {
        double allowed = 2.0 * (n_terms + 2) * (FLT_EPSILON * 0.5) * absref[i] + 1e-30;
        if (!(fabs(got[i] - ref[i]) <= allowed)) {
            if (bad < 5) { printf("  %s[%zu]: got %.7g, expected %.7g (allowed error %.2g)\n", name, i, got[i], ref[i], allowed); }
            bad++;
        }
    }
    return check(bad == 0, name);
}

// How a version is named in the checks: v1/b256 where it takes the block size, else v2.
static std::string tag(const ChecksumVersion& v, int block) {
    char t[32];
    if (v.takes_block_size) {
        snprintf(t, sizeof(t), "v%d/b%d", v.number, block);
    } else {
        snprintf(t, sizeof(t), "v%d", v.number);
    }
    return t;
}

// The GEMM's fault-free output, computed on the device and kept on the host.
static std::vector<float> run_gemm(cublasHandle_t handle, Problem& p) {
    poison(p.g.C, (size_t)p.g.batch * p.g.M * p.g.N);
    gemm_with_bias(handle, p.g);
    return host_copy(p.g.C, (size_t)p.g.batch * p.g.M * p.g.N);
}

// Fault-free: the encode outputs match the plain-loop reference, no alarm on GPU or CPU.
// Without a version: only the GEMM output against the reference.
static void test_fault_free(cublasHandle_t handle, Problem& p, const ChecksumVersion* v, int block) {
    const AbftGemm& g = p.g;
    char name[160];
    std::vector<float> C = run_gemm(handle, p);
    // cuBLAS's C against the double reference: fp32 dot products of K terms, error ≤ col tolerance
    size_t bad = 0;
    for (int b = 0; b < g.batch; b++) {
        for (int i = 0; i < g.M; i++) {
            for (int j = 0; j < g.N; j++) {
                size_t e = ((size_t)b * g.M + i) * g.N + j;
                if (!(fabs(C[e] - p.C_ref[e]) <= p.col_tol[(size_t)b * g.N + j])) { bad++; }
            }
        }
    }
    snprintf(name, sizeof(name), "%s: GEMM output matches the plain-loop reference", p.name);
    if (v == nullptr) { check(bad == 0, name); return; }
    const std::string version = tag(*v, block);

    Checker c = checker_alloc(g);
    poison(c.ue, (size_t)g.batch * g.K); poison(c.ua, (size_t)g.batch * g.K);
    poison(c.chk, (size_t)g.batch * g.N); poison(c.bound, (size_t)g.batch * g.N);
    cudaCheck(cudaMemset(c.counter, 0, sizeof(int)));
    v->run(g, c, block);
    snprintf(name, sizeof(name), "%s %s: ue = e·A within the fp32 sum bound", version.c_str(), p.name);
    validate_signed_sum(c.ue, p.ue_ref, p.ue_abs, g.M, name);
    // all-positive sums: relative error ≤ (M + K + 2)·u ≈ 1e-5 for these sizes; 1e-4 leaves room
    snprintf(name, sizeof(name), "%s %s: ua = e·|A|", version.c_str(), p.name);
    validate_result(c.ua, std::vector<float>(p.ua_ref.begin(), p.ua_ref.end()), name, 1e-4f);
    snprintf(name, sizeof(name), "%s %s: chk = alpha·ue·B + M·bias within the fp32 sum bound", version.c_str(), p.name);
    validate_signed_sum(c.chk, p.chk_ref, p.chk_abs, g.M + g.K, name);
    snprintf(name, sizeof(name), "%s %s: bound = |alpha|·ua·|B| + M·|bias|", version.c_str(), p.name);
    validate_result(c.bound, std::vector<float>(p.bound_ref.begin(), p.bound_ref.end()), name, 1e-4f);
    std::vector<int> flags = host_copy(c.flags, g.batch), counter = host_copy(c.counter, 1);
    bool gpu_clean = counter[0] == 0 && std::count(flags.begin(), flags.end(), 0) == g.batch;
    // the host path on the same C
    std::copy(C.begin(), C.end(), p.Cbuf.begin());
    Abft abft; abft.cfg.verbose = false; abft_init(&abft);
    abft_verify(&abft, p.h, OP_QK, 0);
    bool cpu_clean = abft.n.detected[OP_QK] == 0;
    abft_free(&abft);
    snprintf(name, sizeof(name), "%s %s: fault-free GEMM raises no alarm (GPU %s, CPU %s)", version.c_str(), p.name,
             gpu_clean ? "clean" : "ALARM", cpu_clean ? "clean" : "ALARM");
    check(gpu_clean && cpu_clean, name);
    checker_free(c);
}

// Where a fault lands: entry b, element (i, j); the 2-D pattern is the 2x2 block at (i, j).
struct FaultSite { int b, i, j; };

static std::vector<std::pair<int, int>> fault_cells(const AbftGemm& g, int pattern, FaultSite s) {
    std::vector<std::pair<int, int>> cells;
    if (pattern == PATTERN_0D) { cells.push_back({s.i, s.j}); }
    if (pattern == PATTERN_ROW) { for (int j = 0; j < g.N; j++) { cells.push_back({s.i, j}); } }
    if (pattern == PATTERN_COL) { for (int i = 0; i < g.M; i++) { cells.push_back({i, s.j}); } }
    if (pattern == PATTERN_2D) { for (int d = 0; d < 4; d++) { cells.push_back({s.i + d / 2, s.j + d % 2}); } }
    return cells;
}

// What the host path (abft_verify, which calls abft_repair) makes of a faulty C.
struct HostOutcome { bool detected, repaired; std::vector<float> C; };

static HostOutcome host_outcome(Problem& p, const std::vector<float>& faulty) {
    std::copy(faulty.begin(), faulty.end(), p.Cbuf.begin());
    Abft abft; abft.cfg.verbose = false; abft_init(&abft);
    bool repaired = abft_verify(&abft, p.h, OP_QK, 0);
    HostOutcome o = {abft.n.detected[OP_QK] > 0, repaired, p.Cbuf};
    abft_free(&abft);
    return o;
}

// Every element of `got` equals `want` within the tolerance of its column or row: a rebuilt
// element is checksum − (the other elements), accurate to the line's fp32 GEMM error bound.
static bool close_to(const Problem& p, const std::vector<float>& got, const std::vector<float>& want, double factor) {
    const AbftGemm& g = p.g;
    for (int b = 0; b < g.batch; b++) {
        for (int i = 0; i < g.M; i++) {
            for (int j = 0; j < g.N; j++) {
                size_t e = ((size_t)b * g.M + i) * g.N + j;
                double allowed = factor * std::max(p.col_tol[(size_t)b * g.N + j], p.row_tol[(size_t)b * g.M + i]);
                if (!(fabs((double)got[e] - want[e]) <= allowed)) { return false; }
            }
        }
    }
    return true;
}

// One faulty C through one version: detect, correct, re-verify; compared with the host path.
// Returns an empty string when all is as it must be, else what went wrong.
static std::string run_fault_case(const ChecksumVersion& v, int block, Problem& p, Checker& c, const std::vector<float>& clean,
                                  const std::vector<float>& faulty, bool repairable) {
    const AbftGemm& g = p.g;
    const size_t n = clean.size();
    HostOutcome host = host_outcome(p, faulty);
    cudaCheck(cudaMemcpy(g.C, faulty.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemset(c.counter, 0, sizeof(int)));
    v.run(g, c, block);
    bool gpu_detected = host_copy(c.counter, 1)[0] > 0;
    std::string why;
    if (gpu_detected != host.detected) { why += gpu_detected ? " GPU-only alarm;" : " missed by the GPU, seen by the CPU;"; }
    if (!host.detected) { why += " the host path missed it;"; }
    if (!gpu_detected) { return why; }
    // the trainer's correction and check again (common.h), then this version's check again too
    const std::vector<int> flags_before = host_copy(c.flags, g.batch);
    AbftTally tally = {};
    abft_correct_and_recheck(g, &c, &tally);
    v.run(g, c, block);
    const std::vector<int> flags_after = host_copy(c.flags, g.batch);
    std::vector<float> got = host_copy(g.C, n);
    bool gpu_repaired = tally.unfixed == 0;
    for (int b = 0; b < g.batch; b++) { gpu_repaired &= flags_before[b] == 0 || flags_after[b] == 0; }
    if (gpu_repaired != host.repaired) { why += " GPU and CPU disagree on repairability;"; }
    if (repairable) {
        if (!gpu_repaired) { why += " not repaired;"; }
        if (!close_to(p, got, clean, 1.0)) { why += " repaired C != fault-free C;"; }
        if (!close_to(p, got, host.C, 2.0)) { why += " repaired C != host-repaired C;"; }
    } else if (gpu_repaired) {
        why += " 2-D fault claimed repaired;";
    }
    return why;
}

// Every fault type x pattern, in one entry of the batch, through one version.
static void test_faults(cublasHandle_t handle, Problem& p, const ChecksumVersion& v, int block, uint64_t seed) {
    const std::string version = tag(v, block);
    const AbftGemm& g = p.g;
    std::vector<float> clean = run_gemm(handle, p);
    Checker c = checker_alloc(g);
    int cases = 0, failures = 0;
    for (int type = 0; type < FAULT_NUM_TYPES; type++) {
        for (int pattern = 0; pattern < PATTERN_NUM; pattern++) {
            FaultSite s = {(int)(random_u32(&seed) % g.batch), (int)(random_u32(&seed) % (g.M - 1)),
                           (int)(random_u32(&seed) % (g.N - 1))};
            std::vector<float> faulty = clean;
            for (auto cell : fault_cells(g, pattern, s)) {
                float& x = faulty[((size_t)s.b * g.M + cell.first) * g.N + cell.second];
                x = abft_fault_value(type, -1, x);
            }
            std::string why = run_fault_case(v, block, p, c, clean, faulty, pattern != PATTERN_2D);
            cases++;
            if (!why.empty()) {
                failures++;
                printf("  %s %s: %s %s at batch %d row %d col %d:%s\n", version.c_str(), p.name, abft_fault_type_names[type],
                       abft_pattern_names[pattern], s.b, s.i, s.j, why.c_str());
            }
        }
    }
    // Two opposite extremes in one column (rows 0 and 1): the column cannot rebuild two
    // elements, the rows can (one each). Exact cancellation is test_cancellation's case.
    FaultSite s = {g.batch - 1, 0, (int)(random_u32(&seed) % g.N)};
    std::vector<float> faulty = clean;
    faulty[((size_t)s.b * g.M + 0) * g.N + s.j] = ABFT_NEAR_INF;
    faulty[((size_t)s.b * g.M + 1) * g.N + s.j] = -ABFT_NEAR_INF;
    std::string why = run_fault_case(v, block, p, c, clean, faulty, true);
    cases++;
    if (!why.empty()) { failures++; printf("  %s %s: opposite extremes in column %d:%s\n", version.c_str(), p.name, s.j, why.c_str()); }
    char name[200];
    snprintf(name, sizeof(name), "%s %s: %d injected faults (%d types x %d patterns + opposite extremes) detected as the "
             "host does, 0-D/row/col repaired, 2-D reported", version.c_str(), p.name, cases, FAULT_NUM_TYPES, PATTERN_NUM);
    check(failures == 0, name);
    checker_free(c);
}

// Two opposite extremes in one column that cancel exactly in the plain sum: rows 0 and 1 of A
// are zero, so C's rows 0 and 1 are exactly 0 and +1e20, −1e20 written there sum to 0 in the
// host's row-ordered sum. The host's plain-sum test passes; only the absolute-sum test sees
// them. Every version must detect them too and rebuild them from the row checksums.
static void test_cancellation(cublasHandle_t handle, const Args& a) {
    Problem p = make_problem("cancel", 1, 33, 20, 12, false, false, false, 1.0f, 1.0f, 1.0f, 99);
    const AbftGemm& h = p.h;
    std::fill(p.A.begin(), p.A.begin() + 2 * h.K, 0.0f); // rows 0 and 1 of the row-major A
    cudaCheck(cudaMemcpy(p.dA, p.A.data(), p.A.size() * sizeof(float), cudaMemcpyHostToDevice));
    compute_reference(p);
    std::vector<float> clean = run_gemm(handle, p), faulty = clean;
    const int j = h.N / 2;
    faulty[j] = ABFT_NEAR_INF;          // row 0
    faulty[h.N + j] = -ABFT_NEAR_INF;   // row 1
    // the host's two tests, taken apart
    std::copy(faulty.begin(), faulty.end(), p.Cbuf.begin());
    std::vector<float> ue(h.K), ua(h.K), chk(h.N), bound(h.N), sum(h.N), abssum(h.N);
    abft_colsums(h.A, h.M, 0, h.K, nullptr, nullptr, ue.data(), ua.data());
    abft_colsums(h.B, h.K, 0, h.N, ue.data(), ua.data(), chk.data(), bound.data());
    abft_colsums(MatView{h.C, h.ldc, 1}, h.M, 0, h.N, nullptr, nullptr, sum.data(), abssum.data());
    float expect = h.alpha * chk[j], bnd = fabsf(h.alpha) * bound[j];
    float tol = abft_tolerance(TAU, h.K, h.M, bnd);
    check(fabsf(sum[j] - expect) <= tol && !(abssum[j] <= bnd + tol),
          "cancel: +1e20/-1e20 in one column pass the host's plain-sum test, fail its absolute-sum test");
    for (const ChecksumVersion& v : versions) {
        if (!selected(a, v.number)) { continue; }
        const std::string version = tag(v, a.block_size);
        Checker c = checker_alloc(p.g);
        std::string why = run_fault_case(v, a.block_size, p, c, clean, faulty, true);
        if (!why.empty()) { printf("  %s cancel:%s\n", version.c_str(), why.c_str()); }
        char name[120];
        snprintf(name, sizeof(name), "%s cancel: cancelling extremes detected as the host does, rebuilt from the rows",
                 version.c_str());
        check(why.empty(), name);
        checker_free(c);
    }
    free_problem(p);
}

// ----------------------------------------------------------------------------
// the fix in place of a training pass: a reader's row checks (abft.cuh's abft_reader_check_warp,
// in reader_check_kernel above)

// What the reader checks compare with: each row's checksum A_i·(B·e) and bound |A_i|·(|B|·e)
// (before alpha and the bias), and Σ bias, Σ |bias|, from the host operands (double, rounded).
struct RowChecksums { float *chk, *bound, *bias_sum, *bias_abs; };

static RowChecksums row_checksums(const Problem& p) {
    const AbftGemm& h = p.h;
    std::vector<float> chk((size_t)h.batch * h.M), bound(chk.size());
    for (int b = 0; b < h.batch; b++) {
        const MatView A = abft_entry(h.A, h.strideA, b), B = abft_entry(h.B, h.strideB, b);
        for (int i = 0; i < h.M; i++) {
            double s = 0.0, sa = 0.0;
            for (int k = 0; k < h.K; k++) {
                double be = 0.0, ba = 0.0;
                for (int j = 0; j < h.N; j++) { be += B.at(k, j); ba += fabs((double)B.at(k, j)); }
                s += (double)A.at(i, k) * be;
                sa += fabs((double)A.at(i, k)) * ba;
            }
            chk[(size_t)b * h.M + i] = (float)s;
            bound[(size_t)b * h.M + i] = (float)sa;
        }
    }
    double bs = 0.0, bsa = 0.0;
    for (int j = 0; h.bias != nullptr && j < h.N; j++) { bs += h.bias[j]; bsa += fabs((double)h.bias[j]); }
    return RowChecksums{device_copy(chk), device_copy(bound), device_copy(std::vector<float>{(float)bs}),
                        device_copy(std::vector<float>{(float)bsa})};
}

// The reader checks on C (already on the device) with fresh outcomes and gate; returns the
// outcomes, and in *gate what the gate holds after (-1: not raised).
static std::vector<AbftOutcome> run_reader_checks(const Problem& p, const RowChecksums& r, AbftOutcome* out, int* failed,
                                                  int* gate) {
    const AbftGemm& g = p.g;
    cudaCheck(cudaMemset(out, 0, g.batch * sizeof(AbftOutcome)));
    cudaCheck(cudaMemset(failed, 0xff, sizeof(int)));
    AbftReaderCheck c = {r.chk, r.bound, g.bias != nullptr ? r.bias_sum : nullptr, g.bias != nullptr ? r.bias_abs : nullptr,
                         AbftFixer{g, out, AbftPassGate{failed, 7}, TAU, 0.0f}};
    LAUNCH(reader_check_kernel, abft_ceil_div((long)g.batch * g.M, 8), 256, 0, 0)(c, g.batch, g.M, g.N);
    cudaCheckLaunch();
    *gate = host_copy(failed, 1)[0];
    return host_copy(out, g.batch);
}

// Every fault type x pattern written into one entry of C, then the reader checks: each is
// fixed in place, to the fault-free C within each line's tolerance, the elements the fault
// missed left bit for bit, the outcome's pattern the fault's (a 2x2 block: scattered), the
// gate not raised. Then a fault whose operand is bad too (a row of A changed after the GEMM,
// as the checksums were formed): the fix recomputes from the bad row, the row still fails, and
// the outcome says so and raises the gate.
static void test_fix_in_place(cublasHandle_t handle, Problem& p, uint64_t seed) {
    const AbftGemm& g = p.g;
    const size_t n = (size_t)g.batch * g.M * g.N;
    const std::vector<float> clean = run_gemm(handle, p);
    const RowChecksums r = row_checksums(p);
    AbftOutcome* out = nullptr;
    int* failed = nullptr;
    cudaCheck(cudaMalloc(&out, g.batch * sizeof(AbftOutcome)));
    cudaCheck(cudaMalloc(&failed, sizeof(int)));
    int gate = 0;
    cudaCheck(cudaMemcpy(g.C, clean.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    std::vector<AbftOutcome> o = run_reader_checks(p, r, out, failed, &gate);
    bool quiet = gate == -1;
    for (const AbftOutcome& e : o) { quiet &= e.status == REPAIR_NONE; }
    char name[240];
    snprintf(name, sizeof(name), "fix in place %s: fault-free, the reader checks raise nothing", p.name);
    check(quiet && host_copy(g.C, n) == clean, name);

    const int want[PATTERN_NUM] = {FIX_0D, FIX_ROW, FIX_COL, FIX_SCATTERED};
    int cases = 0, failures = 0;
    for (int type = 0; type < FAULT_NUM_TYPES; type++) {
        for (int pattern = 0; pattern < PATTERN_NUM; pattern++) {
            const FaultSite f = {(int)(random_u32(&seed) % g.batch), (int)(random_u32(&seed) % (g.M - 1)),
                                 (int)(random_u32(&seed) % (g.N - 1))};
            std::vector<float> faulty = clean;
            std::vector<bool> hit(n, false);
            for (auto cell : fault_cells(g, pattern, f)) {
                const size_t e = ((size_t)f.b * g.M + cell.first) * g.N + cell.second;
                faulty[e] = abft_fault_value(type, -1, faulty[e]);
                hit[e] = true;
            }
            cudaCheck(cudaMemcpy(g.C, faulty.data(), n * sizeof(float), cudaMemcpyHostToDevice));
            o = run_reader_checks(p, r, out, failed, &gate);
            const std::vector<float> got = host_copy(g.C, n);
            bool missed_kept = true;
            for (size_t e = 0; e < n; e++) { missed_kept &= hit[e] || memcmp(&got[e], &clean[e], sizeof(float)) == 0; }
            const AbftOutcome& e = o[f.b];
            bool only_b = true;
            for (int b = 0; b < g.batch; b++) { only_b &= b == f.b || o[b].status == REPAIR_NONE; }
            const bool ok = e.status == REPAIR_IN_PLACE && e.still == 0 && abft_outcome_pattern(e) == want[pattern] &&
                            only_b && gate == -1 && missed_kept && close_to(p, got, clean, 1.0);
            cases++;
            if (!ok) {
                failures++;
                printf("  fix in place %s: %s %s at batch %d row %d col %d: status %d still %d pattern %d (want %d), "
                       "fixed %d, gate %d, others untouched %d, close to fault-free %d\n", p.name,
                       abft_fault_type_names[type], abft_pattern_names[pattern], f.b, f.i, f.j, e.status, e.still,
                       abft_outcome_pattern(e), want[pattern], e.fixed, gate, missed_kept, close_to(p, got, clean, 1.0));
            }
        }
    }
    snprintf(name, sizeof(name), "fix in place %s: %d injected faults (%d types x %d patterns) fixed by the reader check, "
             "their pattern reported, the elements they missed kept", p.name, cases, FAULT_NUM_TYPES, PATTERN_NUM);
    check(failures == 0, name);

    // a bad operand: A's row (or, for a transposed view, column) i of entry b made 4x larger
    const FaultSite f = {g.batch - 1, g.M / 2, g.N / 2};
    std::vector<float> bad_a = p.A;
    for (int k = 0; k < g.K; k++) { bad_a[(size_t)f.b * g.strideA + (long)f.i * g.A.rs + (long)k * g.A.cs] *= 4.0f; }
    cudaCheck(cudaMemcpy(p.dA, bad_a.data(), bad_a.size() * sizeof(float), cudaMemcpyHostToDevice));
    std::vector<float> faulty = clean;
    faulty[((size_t)f.b * g.M + f.i) * g.N + f.j] = INFINITY;
    cudaCheck(cudaMemcpy(g.C, faulty.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    o = run_reader_checks(p, r, out, failed, &gate);
    snprintf(name, sizeof(name), "fix in place %s: a fault whose operand row is bad too: still faulty after the fix "
             "(status %d, still %d), the pass's gate raised (%d)", p.name, o[f.b].status, o[f.b].still, gate);
    check(o[f.b].status == REPAIR_IN_PLACE && o[f.b].still == 1 && gate == 7, name);
    cudaCheck(cudaMemcpy(p.dA, p.A.data(), p.A.size() * sizeof(float), cudaMemcpyHostToDevice));

    for (float* d : {r.chk, r.bound, r.bias_sum, r.bias_abs}) { cudaCheck(cudaFree(d)); }
    cudaCheck(cudaFree(out));
    cudaCheck(cudaFree(failed));
}

// ----------------------------------------------------------------------------
// benchmark (a real GPU only): the GEMM alone, then GEMM + encode + verify per version

static void benchmark(cublasHandle_t handle, Problem& p, const Args& a) {
    const AbftGemm& g = p.g;
    Checker c = checker_alloc(g);
    cudaCheck(cudaMemset(c.counter, 0, sizeof(int)));
    float base = benchmark_kernel(20, [&] { gemm_with_bias(handle, g); });
    char label[64];
    snprintf(label, sizeof(label), "cublas-%s", p.name);
    report_benchmark("abft_checksum", label, base, base);
    for (const ChecksumVersion& v : versions) {
        if (!selected(a, v.number)) { continue; }
        for (int block : block_sizes(a, v)) {
            float ms = benchmark_kernel(20, [&] { gemm_with_bias(handle, g); v.run(g, c, block); });
            snprintf(label, sizeof(label), "%d-%s/b%d-%s", v.number, v.name, block, p.name);
            report_benchmark("abft_checksum", label, ms, base);
        }
    }
    check(host_copy(c.counter, 1)[0] == 0, "benchmark runs raised no alarm");
    checker_free(c);
}

// ----------------------------------------------------------------------------

int main(int argc, char** argv) {
    const Args a = parse_args(argc, argv, versions);
    cuda_require_device();
    cublasHandle_t handle;
    cublasCheck(cublasCreate(&handle));
    const bool gpu = on_real_gpu();
    // attention shapes: GPT-2 124M on a GPU; small and odd (T = 37, NH = 3) under the harness
    const int B = gpu ? 8 : 2, NH = gpu ? 12 : 3, T = gpu ? 1024 : 37, HS = gpu ? 64 : 16, C = NH * HS;
    const float inv_sqrt_hs = 1.0f / sqrtf((float)HS);

    // validation: small problems (references are O(batch·M·N·K) plain loops), magnitudes 1e-3..1e3
    struct Spec { const char* name; int batch, M, N, K; bool a_t, b_t, bias; float alpha, sa, sb; };
    const int vb = gpu ? 2 : B, vt = gpu ? 67 : T; // on a GPU the validation shapes stay small and odd too
    const Spec specs[] = {
        {"qk S=Q·Kᵀ/√HS", vb * NH, vt, vt, HS, false, true, false, inv_sqrt_hs, 1.0f, 1.0f},
        {"pv Y=P·V", vb * NH, vt, HS, vt, false, false, false, 1.0f, 1.0f, 1.0f},
        {"proj Y·Wᵀ+b (1e3)", 1, vb * vt, C, C, false, true, true, 1.0f, 1e3f, 1e3f},
        {"odd Aᵀ·B+b (1e-3)", 3, 29, 23, 19, true, false, true, -0.5f, 1e-3f, 1e-3f},
        {"odd Aᵀ·Bᵀ (1e-3·1e3)", 2, 31, 17, 21, true, true, false, 2.0f, 1e-3f, 1e3f},
        // taller than one row chunk (256 rows): version 3's two-stage column sums
        {"tall linear X·Wᵀ+b, M=600", 1, 600, 40, 24, false, true, true, 1.0f, 1.0f, 1.0f},
        {"tall batched Aᵀ·B, M=300", 2, 300, 20, 16, true, false, false, 0.5f, 1.0f, 1.0f},
        // a reduction longer than one row chunk, B row-major: version 3's split-K encoding (a
        // weight gradient's shape, K = B·T)
        {"long-K dWᵀ-like Aᵀ·B+b, K=600", 1, 24, 40, 600, true, false, true, 1.0f, 1.0f, 1.0f},
    };
    uint64_t seed = 1234;
    for (const Spec& s : specs) {
        Problem p = make_problem(s.name, s.batch, s.M, s.N, s.K, s.a_t, s.b_t, s.bias, s.alpha, s.sa, s.sb, seed += 7);
        compute_reference(p);
        test_fault_free(handle, p, nullptr, 0);
        for (const ChecksumVersion& v : versions) {
            if (!selected(a, v.number)) { continue; }
            for (int block : block_sizes(a, v)) { test_fault_free(handle, p, &v, block); }
            test_faults(handle, p, v, a.block_size, seed * 31 + v.number);
        }
        test_fix_in_place(handle, p, seed * 17);
        free_problem(p);
    }

    test_cancellation(handle, a);

    if (gpu) {
        // the attention GEMMs at full size: S = Q·Kᵀ/√HS, Y = P·V, and the projection with bias
        Problem qk = make_problem("qk", B * NH, T, T, HS, false, true, false, inv_sqrt_hs, 1.0f, 1.0f, 11);
        Problem pv = make_problem("pv", B * NH, T, HS, T, false, false, false, 1.0f, 1.0f, 1.0f, 12);
        Problem proj = make_problem("proj", 1, B * T, C, C, false, true, true, 1.0f, 1.0f, 1.0f, 13);
        for (Problem* p : {&qk, &pv, &proj}) { benchmark(handle, *p, a); free_problem(*p); }
    }
    cublasCheck(cublasDestroy(handle));
    return finish();
}

#endif // !__CUDA_ARCH__
