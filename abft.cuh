// abft.cuh: ATTNChecker, checksum-based fault tolerance for the attention GEMMs.
//
// After "Light-Weight Fault Tolerant Attention for Large Language Model Training"
// (arXiv 2410.11720). A GEMM C = alpha·A·B + bias is protected by checksums computed from its
// operands alone, before the output is looked at:
//
//   column checksums   e·C = alpha (e·A)·B + M·bias        w·C = alpha (w·A)·B + (M(M+1)/2)·bias
//   row checksums      C·e = alpha A·(B·e) + sum(bias)     C·w = alpha A·(B·w) + w·bias
//
// with e = (1,…,1) and w = (1,2,…,n). Comparing them with the sums of the computed C finds
// a bad element in each column (row): either it is extreme (INF, NaN, |x| > threshold) and
// visible by itself, or the weighted difference over the plain difference gives its index.
// It is rebuilt as checksum − sum of the other elements. A bad row of C (1-D row pattern) has
// one bad element per column, so the column checksums rebuild it; a bad column, the row
// checksums. Anything else (2-D) cannot be rebuilt from checksums: the GEMM is recomputed.
//
// Beyond the paper (see DESIGN.md §4): every protected GEMM verifies its own output, so no
// corrupted Q, K, V or S stays in the activations the backward pass reads; all 8 backward
// attention GEMMs are protected too; the mismatch tolerance is the fp32 GEMM error bound
// tol = tau·(K+2)·u·(|alpha|·|A|·|B| + |bias|), computed alongside the checksums, so
// fault-free training raises no alarm whatever the magnitudes and reduction lengths.
//
// This header is shared by the CPU trainer (train_gpt2.cpp) and the CUDA trainer
// (train_gpt2.cu): the per-line logic (what an element is, how a line is judged, what a fault
// does) is host+device; then come the device path (checksum kernels, for CUDA builds and the
// CPU harness) and the host path (the CPU trainer's loops, fault injection, counters).
#pragma once

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "llmc/utils.h"

#ifdef __CUDACC__
#define ABFT_HD __host__ __device__
#else
#define ABFT_HD
#endif

// ----------------------------------------------------------------------------
// the 12 protected GEMMs of one attention layer (DESIGN.md §2)

enum AbftOp {
    // forward
    OP_QKV,      // qkv  = ln1 · Wqkvᵀ + bqkv         (B·T, 3C)
    OP_QK,       // S    = Q · Kᵀ / √HS               (B·NH) × (T, T)
    OP_PV,       // Y    = P · V                      (B·NH) × (T, HS)
    OP_PROJ,     // out  = Y · Wprojᵀ + bproj         (B·T, C)
    // backward
    OP_PROJ_DX,  // dY   = dout · Wproj               (B·T, C)
    OP_PROJ_DW,  // dWproj = doutᵀ · Y                (C, C)
    OP_PV_DP,    // dP   = dY · Vᵀ                    (B·NH) × (T, T)
    OP_PV_DV,    // dV   = Pᵀ · dY                    (B·NH) × (T, HS)
    OP_QK_DQ,    // dQ   = dS · K / √HS               (B·NH) × (T, HS)
    OP_QK_DK,    // dK   = dSᵀ · Q / √HS              (B·NH) × (T, HS)
    OP_QKV_DX,   // dln1 = dqkv · Wqkv                (B·T, C)
    OP_QKV_DW,   // dWqkv = dqkvᵀ · ln1               (3C, C)
    ABFT_NUM_OPS
};

static const char* const abft_op_names[ABFT_NUM_OPS] = {
    "qkv", "qk", "pv", "proj", "proj_dx", "proj_dw", "pv_dp", "pv_dv", "qk_dq", "qk_dk", "qkv_dx", "qkv_dw"};

// ----------------------------------------------------------------------------
// a protected GEMM: C[b] = alpha · A[b] · B[b] + bias, for b < batch

// A strided matrix view: element (i, j) is p[i*rs + j*cs]; a transpose swaps the strides.
struct MatView {
    const float* p;
    long rs, cs;
    ABFT_HD float at(long i, long j) const { return p[i * rs + j * cs]; }
};

struct AbftGemm {
    int M, N, K, batch;
    MatView A; long strideA;  // (M, K) per batch entry
    MatView B; long strideB;  // (K, N)
    float* C; long ldc, strideC; // (M, N), row-major with leading dimension ldc
    float alpha;
    const float* bias;        // (N) added to every row, or nullptr
    bool causal;              // only C[i][j] with j <= i is read downstream (S and dP)
};

// Views and descriptors of the model's GEMMs (row-major buffers), for both trainers.
inline MatView row_major(const float* p, long ld) { return MatView{p, ld, 1}; }
// the transpose of a row-major matrix with leading dimension ld
inline MatView transposed(const float* p, long ld) { return MatView{p, 1, ld}; }

// A linear layer: out (rows, OC) = inp (rows, IC) · weightᵀ + bias, weight (OC, IC).
inline AbftGemm linear_gemm(float* out, const float* inp, const float* weight, const float* bias, int rows, int IC, int OC) {
    return AbftGemm{rows, OC, IC, 1, row_major(inp, IC), 0, transposed(weight, IC), 0, out, OC, 0, 1.0f, bias, false};
}

// its input gradient: dinp (rows, IC) = dout (rows, OC) · weight (OC, IC)
inline AbftGemm linear_dinp_gemm(float* dinp, const float* dout, const float* weight, int rows, int IC, int OC) {
    return AbftGemm{rows, IC, OC, 1, row_major(dout, OC), 0, row_major(weight, IC), 0, dinp, IC, 0, 1.0f, nullptr, false};
}

// its weight gradient: dweight (OC, IC) = doutᵀ (OC, rows) · inp (rows, IC)
inline AbftGemm linear_dweight_gemm(float* dweight, const float* dout, const float* inp, int rows, int IC, int OC) {
    return AbftGemm{OC, IC, rows, 1, transposed(dout, OC), 0, row_major(inp, IC), 0, dweight, IC, 0, 1.0f, nullptr, false};
}

// A batched attention GEMM over the B·NH heads: C[h] = alpha · A[h] · B[h], one matrix per head.
inline AbftGemm heads_gemm(int BNH, int M, int N, int K, MatView A, long sA, MatView Bm, long sB, float* out, long sC,
                           float alpha, bool causal) {
    return AbftGemm{M, N, K, BNH, A, sA, Bm, sB, out, N, sC, alpha, nullptr, causal};
}

// ----------------------------------------------------------------------------
// per-element and per-line logic (host + device)

// The fault model: INF, NaN and near-INF values. Such an element is visibly bad by itself.
ABFT_HD inline bool abft_is_extreme(float x, float threshold) {
    return !(fabsf(x) <= threshold); // true for NaN too
}

// Sums of one line (a column or a row) of C, taken in one pass. Extreme elements are left out
// of the sums so that one INF does not hide the values needed to rebuild it.
struct AbftLine {
    double sum, wsum;  // Σ x_i and Σ (i+1)·x_i over the non-extreme elements
    int n_extreme;     // how many extreme elements
    int extreme_at;    // index of the last one
};

ABFT_HD inline void abft_line_init(AbftLine* line) {
    line->sum = 0.0; line->wsum = 0.0; line->n_extreme = 0; line->extreme_at = -1;
}

ABFT_HD inline void abft_line_add(AbftLine* line, int i, float x, float threshold) {
    if (abft_is_extreme(x, threshold)) {
        line->n_extreme++;
        line->extreme_at = i;
    } else {
        line->sum += x;
        line->wsum += (double)(i + 1) * x;
    }
}

enum AbftVerdictKind { LINE_OK, LINE_FIXABLE, LINE_UNFIXABLE };

struct AbftVerdict {
    int kind;      // AbftVerdictKind
    int index;     // the bad element, when fixable
    bool replace;  // true: the element becomes `value`; false: `value` is added to it
    double value;
};

// Judges one line of n elements against its checksums (chk = plain, wchk = weighted) and the
// mismatch tolerance: all good, one element to rebuild, or beyond what this line can repair.
ABFT_HD inline AbftVerdict abft_judge(const AbftLine& line, double chk, double wchk, double tol, int n) {
    AbftVerdict v = {LINE_UNFIXABLE, -1, false, 0.0};
    if (!(fabs(chk) <= DBL_MAX && fabs(wchk) <= DBL_MAX)) { return v; } // the operands themselves are bad
    if (line.n_extreme == 1) {
        v.kind = LINE_FIXABLE;
        v.index = line.extreme_at;
        v.replace = true;
        v.value = chk - line.sum;
        return v;
    }
    if (line.n_extreme > 1) { return v; }
    double d = chk - line.sum;
    if (fabs(d) <= tol) { v.kind = LINE_OK; return v; }
    // one finite element at index r is off by -d, so the weighted difference is (r+1)·d
    double r1 = (wchk - line.wsum) / d;
    double r = floor(r1 + 0.5);
    if (!(fabs(r1 - r) < 0.25) || r < 1.0 || r > (double)n) { return v; }
    v.kind = LINE_FIXABLE;
    v.index = (int)r - 1;
    v.value = d;
    return v;
}

ABFT_HD inline float abft_apply(const AbftVerdict& v, float x) {
    return v.replace ? (float)v.value : (float)((double)x + v.value);
}

// The mismatch tolerance of one line: the fp32 error bound of a length-K dot product, summed
// over the line's n elements and compared with a checksum encoded in fp32 (DESIGN.md §4.4).
// `bound` is |alpha|·Σ(|A|·|B|) + n·|bias| over the line; the floor covers underflow.
// operand_u bounds the relative error of the GEMM's conversion of its operands before they are
// multiplied: 0 in fp32, 2^-10 with TF32 tensor cores (each product then carries up to
// 2·operand_u of error).
ABFT_HD inline float abft_tolerance(float tau, int K, int n, float bound, float operand_u = 0.0f) {
    const float u = FLT_EPSILON * 0.5f; // unit roundoff of fp32
    return tau * ((float)(K + n + 2) * u + 2.0f * operand_u) * bound + (float)(K + n + 2) * FLT_MIN;
}

// TF32 keeps 10 of fp32's 23 fraction bits: 2^-11 if the conversion rounds, 2^-10 if it
// truncates (which hardware may do); the safe one.
constexpr float ABFT_TF32_UNIT_ROUNDOFF = 1.0f / 1024.0f;

// ----------------------------------------------------------------------------
// fault injection (DESIGN.md §5): the same spec and the same faulty values on CPU and GPU

enum AbftFaultType { FAULT_INF, FAULT_NEG_INF, FAULT_NAN, FAULT_NEAR_INF, FAULT_BITFLIP, FAULT_NUM_TYPES };
static const char* const abft_fault_type_names[FAULT_NUM_TYPES] = {"inf", "-inf", "nan", "nearinf", "bitflip"};

enum AbftPattern { PATTERN_0D, PATTERN_ROW, PATTERN_COL, PATTERN_2D, PATTERN_NUM };
static const char* const abft_pattern_names[PATTERN_NUM] = {"0d", "row", "col", "2d"};

constexpr float ABFT_NEAR_INF = 1e20f; // finite, far above the 1e10 extreme threshold

// What a faulty unit writes instead of x. The bit flip is the authors' injector: the top
// exponent bit (bit 30) when |x| < 2, else bit 29, which makes x huge (or INF/NaN).
ABFT_HD inline float abft_fault_value(int type, float x) {
    switch (type) {
        case FAULT_INF: return INFINITY;
        case FAULT_NEG_INF: return -INFINITY;
        case FAULT_NAN: return NAN;
        case FAULT_NEAR_INF: return x < 0.0f ? -ABFT_NEAR_INF : ABFT_NEAR_INF;
        default: {
            uint32_t bits;
            memcpy(&bits, &x, sizeof(bits));
            bits ^= (fabsf(x) < 2.0f) ? (1u << 30) : (1u << 29);
            memcpy(&x, &bits, sizeof(bits));
            return x;
        }
    }
}

// ============================================================================
// Device path: the checksum kernels of the CUDA trainer (and of dev/cuda/abft_checksum.cu,
// which holds the slower variants they were chosen from and validates them against the host
// path above). Detection runs after every protected GEMM; correction only after a detection.
// ============================================================================
#if defined(__CUDACC__) || defined(CUDA_CPU_HARNESS)
#include "llmc/cuda_common.h"

constexpr int ABFT_TILE = 32; // columns per block: one per lane
constexpr int ABFT_ROWS = 8;  // warps per block, each taking every ABFT_ROWS-th row

// Sums (s, sa) over the ABFT_ROWS warps of the block; valid in warp 0 (threadIdx.y == 0).
// Shared memory and not shuffles: the partial sums to combine sit in different warps.
__device__ inline void abft_reduce_over_warps(float* s, float* sa) {
    __shared__ float part[2][ABFT_ROWS][ABFT_TILE];
    part[0][threadIdx.y][threadIdx.x] = *s;
    part[1][threadIdx.y][threadIdx.x] = *sa;
    __syncthreads();
    if (threadIdx.y == 0) {
        for (int r = 1; r < ABFT_ROWS; r++) { *s += part[0][r][threadIdx.x]; *sa += part[1][r][threadIdx.x]; }
    }
    __syncthreads(); // part[] is reused by the next call in the same kernel
}

// What e·C_j must be (chk) and what e·|C_j| may be at most (bound), for column j of C[b]:
// alpha·ue·B_j + M·bias_j and |alpha|·ua·|B_j| + M·|bias_j|. Valid in warp 0.
__device__ inline void abft_column_checksum(const AbftGemm& g, int b, int j, const float* ue, const float* ua,
                                            float* chk, float* bound) {
    MatView B = {g.B.p + b * g.strideB, g.B.rs, g.B.cs};
    float s = 0.0f, sa = 0.0f;
    if (j < g.N) {
        for (int k = threadIdx.y; k < g.K; k += ABFT_ROWS) {
            float x = B.at(k, j);
            s += ue[(long)b * g.K + k] * x;
            sa += ua[(long)b * g.K + k] * fabsf(x);
        }
    }
    abft_reduce_over_warps(&s, &sa);
    const float bias = (g.bias != nullptr && j < g.N) ? g.bias[j] : 0.0f;
    *chk = g.alpha * s + (float)g.M * bias;
    *bound = fabsf(g.alpha) * sa + (float)g.M * fabsf(bias);
}

// Records a failed column of batch entry b: the first failure of an entry bumps the counter.
__device__ inline void abft_report_fault(int* flags, int* counter, int b) {
    if (atomicAdd(&flags[b], 1) == 0) { atomicAdd(counter, 1); }
}

// Column sums of tall matrices in two stages, so that a GEMM with one batch entry and
// thousands of rows (a linear layer: B·T rows) still fills the GPU: blocks of 32 columns x
// ABFT_ROW_CHUNK rows write partial sums, then one thread per column adds them in order.
constexpr int ABFT_ROW_CHUNK = 256;

// part[b][chunk][j] = Σ X_b(i, j), part_abs likewise of |X_b(i, j)|, over the chunk's rows.
// grid (ceil(cols/ABFT_TILE), batch, chunks), block (ABFT_TILE, ABFT_ROWS).
__global__ void abft_colsums_partial_kernel(MatView X, long strideX, int rows, int cols, float* part, float* part_abs) {
    const int j = blockIdx.x * ABFT_TILE + threadIdx.x, b = blockIdx.y, chunk = blockIdx.z;
    const int i1 = min((chunk + 1) * ABFT_ROW_CHUNK, rows);
    const MatView V = {X.p + b * strideX, X.rs, X.cs};
    float s = 0.0f, sa = 0.0f;
    for (int i = chunk * ABFT_ROW_CHUNK + threadIdx.y; j < cols && i < i1; i += ABFT_ROWS) {
        float x = V.at(i, j);
        s += x;
        sa += fabsf(x);
    }
    abft_reduce_over_warps(&s, &sa);
    if (threadIdx.y == 0 && j < cols) {
        const long at = ((long)b * gridDim.z + chunk) * cols + j;
        part[at] = s;
        part_abs[at] = sa;
    }
}

// sum[b][j] = Σ_chunk part[b][chunk][j] in order, abssum likewise. grid (ceil(cols/128), batch).
__global__ void abft_colsums_reduce_kernel(const float* part, const float* part_abs, int chunks, int cols, float* sum,
                                           float* abssum) {
    const int j = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    if (j >= cols) { return; }
    float s = 0.0f, sa = 0.0f;
    for (int c = 0; c < chunks; c++) {
        const long at = ((long)b * chunks + c) * cols + j;
        s += part[at];
        sa += part_abs[at];
    }
    sum[(long)b * cols + j] = s;
    abssum[(long)b * cols + j] = sa;
}

// Column sums of a view whose columns are contiguous in memory (rs == 1: the transpose of a
// row-major matrix, e.g. Pᵀ or dSᵀ): one warp per column, its lanes over the column's
// elements, so the reads are coalesced where the row-chunk kernel's would stride by a row.
// grid (ceil(cols/8), batch), block 256.
__global__ void abft_colsums_contiguous_kernel(MatView X, long strideX, int rows, int cols, float* sum, float* abssum) {
    const int j = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32, b = blockIdx.y;
    if (j >= cols) { return; } // whole warps leave together
    const float* col = X.p + b * strideX + j * X.cs;
    float s = 0.0f, sa = 0.0f;
    for (int i = lane; i < rows; i += 32) { s += col[i]; sa += fabsf(col[i]); }
    s = warp_sum(s);
    sa = warp_sum(sa);
    if (lane == 0) { sum[(long)b * cols + j] = s; abssum[(long)b * cols + j] = sa; }
}

// Column j of C[b] against its checksum c and bound bd (computed from the operands), given the
// column sums of C and of |C|: abft_check_columns' rule in the same fp32 arithmetic, so the GPU
// and the CPU agree on what is a fault; NaN fails it. chk/bound are written out (validation).
__device__ inline void abft_compare_column(const AbftGemm& g, int b, int j, float c, float bd, const float* csum,
                                           const float* cabs, float* chk, float* bound, float tau, float operand_u,
                                           int* flags, int* counter) {
    const long at = (long)b * g.N + j;
    chk[at] = c;
    bound[at] = bd;
    const float tol = abft_tolerance(tau, g.K, g.M, bd, operand_u);
    if (!((fabsf(csum[at] - c) <= tol) && (cabs[at] <= bd + tol))) { abft_report_fault(flags, counter, b); }
}

// The checksums of a column tile (alpha·ue·B_j + M·bias_j, from ue = e·A, ua = e·|A|) compared
// with C's column sums, for a B with contiguous rows (cs == 1): lanes over consecutive columns.
// grid (ceil(N/ABFT_TILE), batch), block (ABFT_TILE, ABFT_ROWS).
__global__ void abft_encode_verify_kernel(AbftGemm g, const float* ue, const float* ua, const float* csum, const float* cabs,
                                          float* chk, float* bound, float tau, float operand_u, int* flags, int* counter) {
    int j = blockIdx.x * ABFT_TILE + threadIdx.x, b = blockIdx.y;
    float c = 0.0f, bd = 0.0f;
    abft_column_checksum(g, b, j, ue, ua, &c, &bd);
    if (threadIdx.y != 0 || j >= g.N) { return; }
    abft_compare_column(g, b, j, c, bd, csum, cabs, chk, bound, tau, operand_u, flags, counter);
}

// The same for a B with contiguous columns (rs == 1: Wᵀ of a linear layer, Kᵀ, Vᵀ): one warp
// per column of B, its lanes over k. grid (ceil(N/8), batch), block 256.
__global__ void abft_encode_verify_contiguous_kernel(AbftGemm g, const float* ue, const float* ua, const float* csum,
                                                     const float* cabs, float* chk, float* bound, float tau,
                                                     float operand_u, int* flags, int* counter) {
    const int j = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32, b = blockIdx.y;
    if (j >= g.N) { return; }
    const float* col = g.B.p + b * g.strideB + j * g.B.cs;
    const float* e = ue + (long)b * g.K;
    const float* ea = ua + (long)b * g.K;
    float s = 0.0f, sa = 0.0f;
    for (int k = lane; k < g.K; k += 32) { s += e[k] * col[k]; sa += ea[k] * fabsf(col[k]); }
    s = warp_sum(s);
    sa = warp_sum(sa);
    if (lane != 0) { return; }
    const float bias = g.bias != nullptr ? g.bias[j] : 0.0f;
    const float c = g.alpha * s + (float)g.M * bias, bd = fabsf(g.alpha) * sa + (float)g.M * fabsf(bias);
    abft_compare_column(g, b, j, c, bd, csum, cabs, chk, bound, tau, operand_u, flags, counter);
}

// ----------------------------------------------------------------------------
// correction, for the entries flags[] marks: fp64 checksums, then one thread per line

struct AbftCorrectScratch {      // device buffers
    double* enc;                 // (batch, 6, K): e·A, w·A, e·|A|, B·e, B·w, |B|·e
    double* biasw;               // (batch, 3): Σ bias, Σ (j+1)·bias, Σ |bias|
    double* colchk;              // (batch, N, 3): plain, weighted, bound of each column
    double* rowchk;              // (batch, M, 3): the same for each row
    AbftVerdict* colv;           // (batch, N)
    AbftVerdict* rowv;           // (batch, M)
    int* unfixable;              // (batch, 2): lines beyond one fix, by columns / by rows
    int* status;                 // (batch): REPAIR_*
};

enum AbftRepairStatus { REPAIR_NONE = 0, REPAIR_BY_COLUMNS = 1, REPAIR_BY_ROWS = 2, REPAIR_BEYOND = 3 };

// One thread per k: the operand sums the line checksums are made of. grid (ceil(K/128), batch).
__global__ void abft_correct_encode_kernel(AbftGemm g, const int* flags, AbftCorrectScratch s) {
    int k = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    if (flags[b] == 0 || k >= g.K) { return; }
    MatView A = {g.A.p + b * g.strideA, g.A.rs, g.A.cs}, B = {g.B.p + b * g.strideB, g.B.rs, g.B.cs};
    double ae = 0.0, aw = 0.0, aa = 0.0, be = 0.0, bw = 0.0, ba = 0.0;
    for (int i = 0; i < g.M; i++) { double x = A.at(i, k); ae += x; aw += (i + 1) * x; aa += fabs(x); }
    for (int j = 0; j < g.N; j++) { double x = B.at(k, j); be += x; bw += (j + 1) * x; ba += fabs(x); }
    double* e = s.enc + (long)b * 6 * g.K;
    e[k] = ae; e[g.K + k] = aw; e[2 * g.K + k] = aa; e[3 * g.K + k] = be; e[4 * g.K + k] = bw; e[5 * g.K + k] = ba;
    if (k == 0) {
        double bs = 0.0, bws = 0.0, bas = 0.0;
        for (int j = 0; g.bias && j < g.N; j++) { bs += g.bias[j]; bws += (j + 1.0) * g.bias[j]; bas += fabs(g.bias[j]); }
        s.biasw[b * 3] = bs; s.biasw[b * 3 + 1] = bws; s.biasw[b * 3 + 2] = bas;
    }
}

// One thread per line: t < N is column t, else row t − N (abft_repair's formulas).
// grid (ceil((N+M)/128), batch).
__global__ void abft_correct_checksums_kernel(AbftGemm g, const int* flags, AbftCorrectScratch s) {
    int t = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    if (flags[b] == 0 || t >= g.N + g.M) { return; }
    const double alpha = g.alpha;
    const double* e = s.enc + (long)b * 6 * g.K;
    MatView A = {g.A.p + b * g.strideA, g.A.rs, g.A.cs}, B = {g.B.p + b * g.strideB, g.B.rs, g.B.cs};
    double p = 0.0, w = 0.0, a = 0.0;
    if (t < g.N) {
        const int j = t;
        const double bj = g.bias ? g.bias[j] : 0.0;
        for (int k = 0; k < g.K; k++) { double x = B.at(k, j); p += e[k] * x; w += e[g.K + k] * x; a += e[2 * g.K + k] * fabs(x); }
        double* c = s.colchk + ((long)b * g.N + j) * 3;
        c[0] = alpha * p + g.M * bj;
        c[1] = alpha * w + 0.5 * g.M * (g.M + 1.0) * bj;
        c[2] = fabs(alpha) * a + g.M * fabs(bj);
    } else {
        const int i = t - g.N;
        for (int k = 0; k < g.K; k++) { double x = A.at(i, k); p += x * e[3 * g.K + k]; w += x * e[4 * g.K + k]; a += fabs(x) * e[5 * g.K + k]; }
        double* r = s.rowchk + ((long)b * g.M + i) * 3;
        r[0] = alpha * p + s.biasw[b * 3];
        r[1] = alpha * w + s.biasw[b * 3 + 1];
        r[2] = fabs(alpha) * a + s.biasw[b * 3 + 2];
    }
}

// One thread per column and per row: the line of C, judged against its checksums.
// grid (ceil((N+M)/128), batch), like abft_correct_checksums_kernel.
__global__ void abft_correct_judge_kernel(AbftGemm g, const int* flags, AbftCorrectScratch s, float extreme, float tau,
                                          float operand_u) {
    int t = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    if (flags[b] == 0 || t >= g.N + g.M) { return; }
    const float* C = g.C + b * g.strideC;
    const bool is_col = t < g.N;
    const int l = is_col ? t : t - g.N, len = is_col ? g.M : g.N;
    AbftLine line;
    abft_line_init(&line);
    for (int x = 0; x < len; x++) {
        abft_line_add(&line, x, is_col ? C[(long)x * g.ldc + l] : C[(long)l * g.ldc + x], extreme);
    }
    const double* c = is_col ? s.colchk + ((long)b * g.N + l) * 3 : s.rowchk + ((long)b * g.M + l) * 3;
    AbftVerdict v = abft_judge(line, c[0], c[1], abft_tolerance(tau, g.K, len, (float)c[2], operand_u), len);
    (is_col ? s.colv + (long)b * g.N : s.rowv + (long)b * g.M)[l] = v;
    if (v.kind == LINE_UNFIXABLE) { atomicAdd(&s.unfixable[b * 2 + (is_col ? 0 : 1)], 1); }
}

// Columns if all are fixable, else rows if all are, else nothing. grid (ceil(max(M,N)/128), batch).
__global__ void abft_correct_apply_kernel(AbftGemm g, const int* flags, AbftCorrectScratch s) {
    int t = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    if (flags[b] == 0) { return; }
    const int mode = s.unfixable[b * 2] == 0 ? REPAIR_BY_COLUMNS : s.unfixable[b * 2 + 1] == 0 ? REPAIR_BY_ROWS : REPAIR_BEYOND;
    if (t == 0) { s.status[b] = mode; }
    float* C = g.C + b * g.strideC;
    if (mode == REPAIR_BY_COLUMNS && t < g.N) {
        AbftVerdict v = s.colv[(long)b * g.N + t];
        if (v.kind == LINE_FIXABLE) { float* x = &C[(long)v.index * g.ldc + t]; *x = abft_apply(v, *x); }
    } else if (mode == REPAIR_BY_ROWS && t < g.M) {
        AbftVerdict v = s.rowv[(long)b * g.M + t];
        if (v.kind == LINE_FIXABLE) { float* x = &C[(long)t * g.ldc + v.index]; *x = abft_apply(v, *x); }
    }
}

// ----------------------------------------------------------------------------
// host side of the device path: scratch buffers and the two launch sequences

struct AbftGpuScratch {
    float *ue, *ua;              // (batch, K)
    float *chk, *bound;          // (batch, N)
    float *csum, *cabs;          // (batch, N) column sums of C and of |C|
    float *part, *part_abs;      // (batch, row chunks, max(K, N)) partial column sums
    int* flags;                  // (batch) failed columns per entry
    int* counter;                // (1) faulty entries detected, cumulative until reset
    AbftCorrectScratch cs;
    long cap_bk, cap_bn, cap_bm, cap_b, cap_part; // capacities: batch·K, batch·N, batch·M, batch, partials
};

inline int abft_row_chunks(int rows) { return (rows + ABFT_ROW_CHUNK - 1) / ABFT_ROW_CHUNK; }

inline int abft_ceil_div(long a, long b) { return (int)((a + b - 1) / b); }

inline void abft_gpu_free(AbftGpuScratch* s) {
    if (s->cap_b == 0) { return; }
    void* ps[] = {s->ue, s->ua, s->chk, s->bound, s->csum, s->cabs, s->part, s->part_abs, s->flags, s->counter,
                  s->cs.enc, s->cs.biasw, s->cs.colchk, s->cs.rowchk, s->cs.colv, s->cs.rowv, s->cs.unfixable, s->cs.status};
    for (void* p : ps) { cudaCheck(cudaFree(p)); }
    s->cap_bk = s->cap_bn = s->cap_bm = s->cap_b = s->cap_part = 0;
}

// Grows the scratch to fit g (buffers are only ever reallocated upward).
inline void abft_gpu_reserve(AbftGpuScratch* s, const AbftGemm& g) {
    const long bk = (long)g.batch * g.K, bn = (long)g.batch * g.N, bm = (long)g.batch * g.M, b = g.batch;
    const long part = (long)g.batch * abft_row_chunks(g.M) * (g.K > g.N ? g.K : g.N);
    if (bk <= s->cap_bk && bn <= s->cap_bn && bm <= s->cap_bm && b <= s->cap_b && part <= s->cap_part) { return; }
    if (s->cap_b > 0) { abft_gpu_free(s); }
    s->cap_bk = bk > s->cap_bk ? bk : s->cap_bk;
    s->cap_bn = bn > s->cap_bn ? bn : s->cap_bn;
    s->cap_bm = bm > s->cap_bm ? bm : s->cap_bm;
    s->cap_b = b > s->cap_b ? b : s->cap_b;
    s->cap_part = part > s->cap_part ? part : s->cap_part;
    cudaCheck(cudaMalloc(&s->ue, s->cap_bk * sizeof(float)));
    cudaCheck(cudaMalloc(&s->ua, s->cap_bk * sizeof(float)));
    cudaCheck(cudaMalloc(&s->chk, s->cap_bn * sizeof(float)));
    cudaCheck(cudaMalloc(&s->bound, s->cap_bn * sizeof(float)));
    cudaCheck(cudaMalloc(&s->csum, s->cap_bn * sizeof(float)));
    cudaCheck(cudaMalloc(&s->cabs, s->cap_bn * sizeof(float)));
    cudaCheck(cudaMalloc(&s->part, s->cap_part * sizeof(float)));
    cudaCheck(cudaMalloc(&s->part_abs, s->cap_part * sizeof(float)));
    cudaCheck(cudaMalloc(&s->flags, s->cap_b * sizeof(int)));
    cudaCheck(cudaMalloc(&s->counter, sizeof(int)));
    cudaCheck(cudaMalloc(&s->cs.enc, s->cap_bk * 6 * sizeof(double)));
    cudaCheck(cudaMalloc(&s->cs.biasw, s->cap_b * 3 * sizeof(double)));
    cudaCheck(cudaMalloc(&s->cs.colchk, s->cap_bn * 3 * sizeof(double)));
    cudaCheck(cudaMalloc(&s->cs.rowchk, s->cap_bm * 3 * sizeof(double)));
    cudaCheck(cudaMalloc(&s->cs.colv, s->cap_bn * sizeof(AbftVerdict)));
    cudaCheck(cudaMalloc(&s->cs.rowv, s->cap_bm * sizeof(AbftVerdict)));
    cudaCheck(cudaMalloc(&s->cs.unfixable, s->cap_b * 2 * sizeof(int)));
    cudaCheck(cudaMalloc(&s->cs.status, s->cap_b * sizeof(int)));
}


// Column sums of the (rows, cols) views X[b] into sum, abssum (batch, cols): a warp per column
// when columns are contiguous, else the two stages over row chunks.
inline void abft_gpu_colsums(AbftGpuScratch* s, MatView X, long strideX, int batch, int rows, int cols, float* sum,
                             float* abssum, cudaStream_t stream) {
    if (X.rs == 1 && X.cs != 1) {
        LAUNCH(abft_colsums_contiguous_kernel, dim3(abft_ceil_div(cols, 8), batch), dim3(256), 0, stream)(X, strideX, rows,
                                                                                                     cols, sum, abssum);
        cudaCheckLaunch();
        return;
    }
    const int chunks = abft_row_chunks(rows);
    LAUNCH(abft_colsums_partial_kernel, dim3(abft_ceil_div(cols, ABFT_TILE), batch, chunks), dim3(ABFT_TILE, ABFT_ROWS), 0,
           stream)(X, strideX, rows, cols, s->part, s->part_abs);
    cudaCheckLaunch();
    LAUNCH(abft_colsums_reduce_kernel, dim3(abft_ceil_div(cols, 128), batch), dim3(128), 0, stream)(s->part, s->part_abs,
                                                                                                   chunks, cols, sum, abssum);
    cudaCheckLaunch();
}

// The fast path, after every protected GEMM: e·A and e·|A|, the column sums of C, then the
// column checksums and the check. Resets flags first; adds the faulty entries to *counter
// (reset it to read one GEMM's).
inline void abft_gpu_encode_verify(const AbftGemm& g, AbftGpuScratch* s, float tau, float operand_u, cudaStream_t stream) {
    abft_gpu_reserve(s, g);
    cudaCheck(cudaMemsetAsync(s->flags, 0, g.batch * sizeof(int), stream));
    abft_gpu_colsums(s, g.A, g.strideA, g.batch, g.M, g.K, s->ue, s->ua, stream);
    abft_gpu_colsums(s, MatView{g.C, g.ldc, 1}, g.strideC, g.batch, g.M, g.N, s->csum, s->cabs, stream);
    if (g.B.rs == 1 && g.B.cs != 1) {
        LAUNCH(abft_encode_verify_contiguous_kernel, dim3(abft_ceil_div(g.N, 8), g.batch), dim3(256), 0, stream)(
            g, s->ue, s->ua, s->csum, s->cabs, s->chk, s->bound, tau, operand_u, s->flags, s->counter);
    } else {
        LAUNCH(abft_encode_verify_kernel, dim3(abft_ceil_div(g.N, ABFT_TILE), g.batch), dim3(ABFT_TILE, ABFT_ROWS), 0, stream)(
            g, s->ue, s->ua, s->csum, s->cabs, s->chk, s->bound, tau, operand_u, s->flags, s->counter);
    }
    cudaCheckLaunch();
}

// The slow path, for the entries flags[] marks: status[b] tells what was done.
inline void abft_gpu_correct(const AbftGemm& g, AbftGpuScratch* s, float extreme, float tau, float operand_u,
                             cudaStream_t stream) {
    cudaCheck(cudaMemsetAsync(s->cs.unfixable, 0, (size_t)g.batch * 2 * sizeof(int), stream));
    cudaCheck(cudaMemsetAsync(s->cs.status, 0, (size_t)g.batch * sizeof(int), stream));
    const int lines = abft_ceil_div(g.N + g.M, 128), longest = abft_ceil_div(g.M > g.N ? g.M : g.N, 128);
    LAUNCH(abft_correct_encode_kernel, dim3(abft_ceil_div(g.K, 128), g.batch), dim3(128), 0, stream)(g, s->flags, s->cs);
    cudaCheckLaunch();
    LAUNCH(abft_correct_checksums_kernel, dim3(lines, g.batch), dim3(128), 0, stream)(g, s->flags, s->cs);
    cudaCheckLaunch();
    LAUNCH(abft_correct_judge_kernel, dim3(lines, g.batch), dim3(128), 0, stream)(g, s->flags, s->cs, extreme, tau, operand_u);
    cudaCheckLaunch();
    LAUNCH(abft_correct_apply_kernel, dim3(longest, g.batch), dim3(128), 0, stream)(g, s->flags, s->cs);
    cudaCheckLaunch();
}

#endif // __CUDACC__ || CUDA_CPU_HARNESS

// ============================================================================
// Host path: the CPU trainer's checks, and what both trainers share on the host (config,
// fault injection, counters, reports)
// ============================================================================

#include "llmc/rand.h"

// OpenMP where the build has it (the CPU trainer); plain loops elsewhere (e.g. the CUDA harness)
#ifdef _OPENMP
#define ABFT_PARALLEL_FOR_2D _Pragma("omp parallel for collapse(2) schedule(static)")
#else
#define ABFT_PARALLEL_FOR_2D
#endif

// ----------------------------------------------------------------------------
// configuration, fault spec, counters

struct AbftConfig {
    bool enabled = true;
    float extreme = 1e10f; // |x| above this is a fault by itself (the authors' near-INF threshold)
    float tau = 2.0f;      // safety factor over the fp32 error bound of the mismatch tolerance
    bool verbose = true;   // print every event
    int every[ABFT_NUM_OPS] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}; // check op only every N-th step (-abft_every)
};

// One fault, or a rate of random faults: `-fi op=qk,layer=3,step=5,type=inf,pattern=row,seed=1`
struct AbftFaultSpec {
    bool active = false;
    int op = -1, layer = -1, step = -1; // -1: any (rate mode)
    int type = FAULT_BITFLIP, pattern = PATTERN_0D;
    uint64_t seed = 1;
    int count = 1;      // executions of the op to fault: 2 or more exercise the escalation ladder
    double rate = 0.0;  // > 0: every matching protected GEMM execution faults with this probability
};

enum AbftFixPattern { FIX_0D, FIX_ROW, FIX_COL, FIX_SCATTERED, FIX_NUM };
static const char* const abft_fix_names[FIX_NUM] = {"0d", "row", "col", "scattered"};

struct AbftCounters {
    long checked[ABFT_NUM_OPS];            // protected GEMM executions verified
    long detected[ABFT_NUM_OPS];           // executions whose output was faulty
    long corrected[ABFT_NUM_OPS][FIX_NUM]; // batch entries rebuilt from checksums, by pattern
    long recomputed_op[ABFT_NUM_OPS];      // executions redone because checksums could not repair
    long recomputed_layer, redone_step;    // higher rungs of the ladder
    long injected;                         // faults injected (GEMM executions hit)
    double seconds[ABFT_NUM_OPS];          // time spent in checksums, verification and repair
    double recovery_seconds;               // of which repairs and recomputations (faults only)
};

struct Abft {
    AbftConfig cfg;
    AbftFaultSpec fault;
    AbftCounters n;
    int step = 0;             // the training step now running, for fault specs and logs
    int fault_fired = 0;      // executions hit so far by a single-fault spec
    uint64_t fault_rng = 1;   // picks the faulty elements (and, in rate mode, when)
    float* work = nullptr;    // checksum scratch, grown on demand
    size_t work_floats = 0;
};

inline void abft_init(Abft* abft) {
    memset(&abft->n, 0, sizeof(abft->n));
    abft->fault_fired = 0;
    abft->fault_rng = abft->fault.seed * 0x9E3779B97F4A7C15ull + 1;
}

inline void abft_free(Abft* abft) { free(abft->work); abft->work = nullptr; abft->work_floats = 0; }

// Whether op is checked in the step now running (adaptive detection frequency, -abft_every).
inline bool abft_due(const Abft* abft, int op) {
    return abft->cfg.enabled && abft->step % abft->cfg.every[op] == 0;
}

// "qk=4,pv_dv=8": check those ops every 4th and every 8th step; the others every step.
inline void abft_parse_every(const char* text, AbftConfig* cfg);

inline long abft_total_detected(const AbftCounters& n) {
    long total = 0;
    for (int op = 0; op < ABFT_NUM_OPS; op++) { total += n.detected[op]; }
    return total;
}

inline long abft_total_corrected(const AbftCounters& n) {
    long total = 0;
    for (int op = 0; op < ABFT_NUM_OPS; op++) {
        for (int p = 0; p < FIX_NUM; p++) { total += n.corrected[op][p]; }
    }
    return total;
}

inline long abft_total_recomputed(const AbftCounters& n) {
    long total = 0;
    for (int op = 0; op < ABFT_NUM_OPS; op++) { total += n.recomputed_op[op]; }
    return total;
}

// ----------------------------------------------------------------------------
// parsing -fi

inline int abft_lookup(const char* value, const char* const* names, int count, const char* key, const char* flag = "-fi") {
    for (int i = 0; i < count; i++) {
        if (strcmp(value, names[i]) == 0) { return i; }
    }
    char hint[256];
    int len = snprintf(hint, sizeof(hint), "%s is one of:", key);
    for (int i = 0; i < count && len < (int)sizeof(hint); i++) {
        len += snprintf(hint + len, sizeof(hint) - len, " %s", names[i]);
    }
    die(flag, hint, "unknown %s '%s'", key, value);
}

inline long abft_parse_int(const char* key, const char* value, long lo, long hi, const char* flag = "-fi") {
    char* end = nullptr;
    errno = 0;
    long x = strtol(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || x < lo || x > hi) {
        die(flag, "see ./train_gpt2 -h", "%s must be an integer in [%ld, %ld], got '%s'", key, lo, hi, value);
    }
    return x;
}

// "op=qk,layer=3,step=5,type=inf,pattern=row,seed=1[,count=2][,rate=1e-4]"
inline AbftFaultSpec abft_parse_fault(const char* text) {
    AbftFaultSpec f;
    f.active = true;
    char buf[512];
    if (strlen(text) >= sizeof(buf)) { die("-fi", "", "spec too long"); }
    strcpy(buf, text);
    for (char* item = strtok(buf, ","); item != nullptr; item = strtok(nullptr, ",")) {
        char* eq = strchr(item, '=');
        if (eq == nullptr) { die("-fi", "write key=value pairs separated by commas", "'%s' has no '='", item); }
        *eq = '\0';
        const char* key = item;
        const char* value = eq + 1;
        if (strcmp(key, "op") == 0) { f.op = abft_lookup(value, abft_op_names, ABFT_NUM_OPS, "op"); }
        else if (strcmp(key, "layer") == 0) { f.layer = (int)abft_parse_int(key, value, 0, 1 << 20); }
        else if (strcmp(key, "step") == 0) { f.step = (int)abft_parse_int(key, value, 0, 1L << 30); }
        else if (strcmp(key, "type") == 0) { f.type = abft_lookup(value, abft_fault_type_names, FAULT_NUM_TYPES, "type"); }
        else if (strcmp(key, "pattern") == 0) { f.pattern = abft_lookup(value, abft_pattern_names, PATTERN_NUM, "pattern"); }
        else if (strcmp(key, "seed") == 0) { f.seed = (uint64_t)abft_parse_int(key, value, 0, 1L << 62); }
        else if (strcmp(key, "count") == 0) { f.count = (int)abft_parse_int(key, value, 1, 1 << 20); }
        else if (strcmp(key, "rate") == 0) {
            char* end = nullptr;
            f.rate = strtod(value, &end);
            if (end == value || *end != '\0' || !(f.rate > 0.0 && f.rate <= 1.0)) {
                die("-fi", "a probability per protected GEMM execution, e.g. rate=1e-4", "rate must be in (0, 1], got '%s'", value);
            }
        } else {
            die("-fi", "keys: op, layer, step, type, pattern, seed, count, rate", "unknown key '%s'", key);
        }
    }
    if (f.rate == 0.0 && (f.op < 0 || f.layer < 0 || f.step < 0)) {
        die("-fi", "e.g. -fi op=qk,layer=0,step=5,type=inf,pattern=row (or give rate=R for random faults)",
            "a single fault needs op, layer and step");
    }
    return f;
}

inline void abft_parse_every(const char* text, AbftConfig* cfg) {
    char buf[512];
    if (strlen(text) >= sizeof(buf)) { die("-abft_every", "", "spec too long"); }
    strcpy(buf, text);
    for (char* item = strtok(buf, ","); item != nullptr; item = strtok(nullptr, ",")) {
        char* eq = strchr(item, '=');
        if (eq == nullptr) { die("-abft_every", "write op=N pairs separated by commas, e.g. qk=4,pv_dv=8", "'%s' has no '='", item); }
        *eq = '\0';
        int op = abft_lookup(item, abft_op_names, ABFT_NUM_OPS, "op", "-abft_every");
        cfg->every[op] = (int)abft_parse_int("interval", eq + 1, 1, 1 << 20, "-abft_every");
    }
}

// ----------------------------------------------------------------------------
// fault injection: writes into C right after the GEMM, before any check

inline int abft_pick(Abft* abft, int n) { return n <= 1 ? 0 : (int)(random_u32(&abft->fault_rng) % (uint32_t)n); }

inline bool abft_fault_fires(Abft* abft, int op, int layer) {
    const AbftFaultSpec& f = abft->fault;
    if (!f.active) { return false; }
    if (f.op >= 0 && f.op != op) { return false; }
    if (f.layer >= 0 && f.layer != layer) { return false; }
    if (f.step >= 0 && f.step != abft->step) { return false; }
    if (f.rate > 0.0) { return random_f32(&abft->fault_rng) < f.rate; }
    if (abft->fault_fired >= f.count) { return false; }
    abft->fault_fired++;
    return true;
}

// Writes the fault into element (i, j) of C[b]; a GPU trainer passes its own (C in GPU memory).
typedef void (*AbftCorruptFn)(const AbftGemm& g, int b, int i, int j, int type);

inline void abft_corrupt(const AbftGemm& g, int b, int i, int j, int type) {
    float* x = g.C + b * g.strideC + (long)i * g.ldc + j;
    *x = abft_fault_value(type, *x);
}

// Picks where the fault lands: a live element (j <= i where only the causal part is read, so
// that the fault matters), a whole row, a whole column, or a 2x2 block (2-D).
inline void abft_inject(Abft* abft, const AbftGemm& g, int op, int layer, AbftCorruptFn corrupt = abft_corrupt) {
    if (!abft_fault_fires(abft, op, layer)) { return; }
    const int type = abft->fault.type;
    int b = abft_pick(abft, g.batch);
    int i = abft_pick(abft, g.M);
    int j = g.causal ? abft_pick(abft, (i < g.N ? i : g.N - 1) + 1) : abft_pick(abft, g.N);
    switch (abft->fault.pattern) {
        case PATTERN_0D: corrupt(g, b, i, j, type); break;
        case PATTERN_ROW: for (int jj = 0; jj < g.N; jj++) { corrupt(g, b, i, jj, type); } break;
        case PATTERN_COL: for (int ii = 0; ii < g.M; ii++) { corrupt(g, b, ii, j, type); } break;
        default: {
            int i0 = g.M < 3 ? 0 : 1 + abft_pick(abft, g.M - 2);      // rows i0, i0+1
            int j0 = g.causal ? abft_pick(abft, i0) : abft_pick(abft, g.N - 1); // cols j0, j0+1 <= i0
            for (int ii = i0; ii < i0 + 2 && ii < g.M; ii++) {
                for (int jj = j0; jj < j0 + 2 && jj < g.N; jj++) { corrupt(g, b, ii, jj, type); }
            }
        }
    }
    abft->n.injected++;
    if (abft->cfg.verbose) {
        printf("fault: step %d layer %d %s: %s %s at batch %d row %d col %d\n", abft->step, layer,
               abft_op_names[op], abft_fault_type_names[type], abft_pattern_names[abft->fault.pattern], b, i, j);
    }
}

// ----------------------------------------------------------------------------
// detection (the fast path, taken by every protected GEMM): column checksums in fp32

// For columns j in [j0, j1) of the (rows × ·) view V:
//     sum[j] = Σ_i w_i·V(i,j)        abssum[j] = Σ_i a_i·|V(i,j)|
// with w_i = a_i = 1 when w and a are null. Walks memory in order for either layout of V.
inline void abft_colsums(MatView V, int rows, int j0, int j1, const float* w, const float* a,
                         float* sum, float* abssum) {
    if (V.cs == 1 || V.rs != 1) { // rows are contiguous: accumulate row by row, vectorized over j
        for (int j = j0; j < j1; j++) { sum[j] = 0.0f; abssum[j] = 0.0f; }
        for (int i = 0; i < rows; i++) {
            const float wi = w ? w[i] : 1.0f, ai = a ? a[i] : 1.0f;
            const float* row = V.p + i * V.rs;
            for (int j = j0; j < j1; j++) {
                float x = row[j * V.cs];
                sum[j] += wi * x;
                abssum[j] += ai * fabsf(x);
            }
        }
    } else { // columns are contiguous: one dot product per column
        for (int j = j0; j < j1; j++) {
            const float* col = V.p + j * V.cs;
            // 16 partial sums: a fixed-order reduction the compiler can keep in vector registers
            float s[16] = {0.0f}, sa[16] = {0.0f};
            int i = 0;
            for (; i + 16 <= rows; i += 16) {
                for (int l = 0; l < 16; l++) {
                    s[l] += (w ? w[i + l] : 1.0f) * col[i + l];
                    sa[l] += (a ? a[i + l] : 1.0f) * fabsf(col[i + l]);
                }
            }
            for (; i < rows; i++) {
                s[0] += (w ? w[i] : 1.0f) * col[i];
                sa[0] += (a ? a[i] : 1.0f) * fabsf(col[i]);
            }
            float total = 0.0f, abstotal = 0.0f;
            for (int l = 0; l < 16; l++) { total += s[l]; abstotal += sa[l]; }
            sum[j] = total;
            abssum[j] = abstotal;
        }
    }
}

inline MatView abft_entry(MatView v, long stride, int b) { return MatView{v.p + b * stride, v.rs, v.cs}; }
inline MatView abft_output(const AbftGemm& g, int b) { return MatView{g.C + b * g.strideC, g.ldc, 1}; }

// Checks columns [j0, j1) of C[b] given (e·A, e·|A|) = (ue, ua). A column is clean when its sum
// matches the checksum and its absolute sum stays within the bound |alpha|·|A|·|B| + M·|bias|:
// the second test catches extreme values whose signs cancel in the plain sum.
inline bool abft_check_columns(const AbftConfig& cfg, const AbftGemm& g, int b, int j0, int j1,
                               const float* ue, const float* ua, float* scratch /* 4*N */) {
    float* chk = scratch;            // (N) e·C expected
    float* bound = scratch + g.N;    // (N)
    float* sum = scratch + 2 * g.N;  // (N) e·C found
    float* abssum = scratch + 3 * g.N;
    abft_colsums(abft_entry(g.B, g.strideB, b), g.K, j0, j1, ue, ua, chk, bound);
    abft_colsums(abft_output(g, b), g.M, j0, j1, nullptr, nullptr, sum, abssum);
    bool clean = true;
    for (int j = j0; j < j1; j++) {
        float bias = g.bias ? g.bias[j] : 0.0f;
        float expect = g.alpha * chk[j] + (float)g.M * bias;
        float bnd = fabsf(g.alpha) * bound[j] + (float)g.M * fabsf(bias);
        float tol = abft_tolerance(cfg.tau, g.K, g.M, bnd);
        clean &= (fabsf(sum[j] - expect) <= tol) && (abssum[j] <= bnd + tol); // false on NaN
    }
    return clean;
}

// ----------------------------------------------------------------------------
// location and correction (the slow path, taken only when a check fails): fp64 checksums

struct AbftChecksums {
    double plain, weighted, bound;
};

// The pattern of the elements that the verdicts of `lines` columns (or rows) rebuild: one
// element, one row, one column or scattered; their number goes to n_fixed.
inline int abft_fix_pattern(const AbftVerdict* verdicts, int lines, bool by_rows, long* n_fixed) {
    long fixed = 0;
    int first_i = -1, first_j = -1;
    bool same_row = true, same_col = true;
    for (int l = 0; l < lines; l++) {
        if (verdicts[l].kind != LINE_FIXABLE) { continue; }
        int i = by_rows ? l : verdicts[l].index, j = by_rows ? verdicts[l].index : l;
        if (fixed == 0) { first_i = i; first_j = j; }
        same_row &= (i == first_i);
        same_col &= (j == first_j);
        fixed++;
    }
    *n_fixed = fixed;
    return fixed <= 1 ? FIX_0D : same_row ? FIX_ROW : same_col ? FIX_COL : FIX_SCATTERED;
}

// Rebuilds the faulty elements of C[b]: first from the column checksums (0-D and row
// patterns), else from the row checksums (column patterns). Returns the pattern repaired, or
// -1 when the checksums cannot do it (2-D, or bad operands).
inline int abft_repair(const AbftConfig& cfg, const AbftGemm& g, int b, long* n_fixed) {
    const int M = g.M, N = g.N, K = g.K;
    const MatView A = abft_entry(g.A, g.strideA, b), B = abft_entry(g.B, g.strideB, b);
    const MatView C = abft_output(g, b);
    const double alpha = g.alpha;
    // encode: e·A, w·A, e·|A| (length K) and B·e, B·w, |B|·e (length K)
    double* enc = (double*)calloc_check(6 * (size_t)K * sizeof(double), "abft checksums");
    double *ae = enc, *aw = enc + K, *aa = enc + 2 * K, *be = enc + 3 * K, *bw = enc + 4 * K, *ba = enc + 5 * K;
    for (int i = 0; i < M; i++) {
        for (int k = 0; k < K; k++) { double x = A.at(i, k); ae[k] += x; aw[k] += (i + 1) * x; aa[k] += fabs(x); }
    }
    for (int k = 0; k < K; k++) {
        for (int j = 0; j < N; j++) { double x = B.at(k, j); be[k] += x; bw[k] += (j + 1) * x; ba[k] += fabs(x); }
    }
    double bias_sum = 0.0, bias_wsum = 0.0, bias_abs = 0.0;
    for (int j = 0; g.bias && j < N; j++) { bias_sum += g.bias[j]; bias_wsum += (j + 1.0) * g.bias[j]; bias_abs += fabs(g.bias[j]); }
    AbftChecksums* col = (AbftChecksums*)calloc_check((size_t)(M + N) * sizeof(AbftChecksums), "abft checksums");
    AbftChecksums* row = col + N;
    for (int j = 0; j < N; j++) {
        double bj = g.bias ? g.bias[j] : 0.0;
        double p = 0.0, w = 0.0, a = 0.0;
        for (int k = 0; k < K; k++) { double x = B.at(k, j); p += ae[k] * x; w += aw[k] * x; a += aa[k] * fabs(x); }
        col[j] = {alpha * p + M * bj, alpha * w + 0.5 * M * (M + 1.0) * bj, fabs(alpha) * a + M * fabs(bj)};
    }
    for (int i = 0; i < M; i++) {
        double p = 0.0, w = 0.0, a = 0.0;
        for (int k = 0; k < K; k++) { double x = A.at(i, k); p += x * be[k]; w += x * bw[k]; a += fabs(x) * ba[k]; }
        row[i] = {alpha * p + bias_sum, alpha * w + bias_wsum, fabs(alpha) * a + bias_abs};
    }
    free(enc);
    // the lines of C, extreme elements set apart
    AbftLine* cols = (AbftLine*)malloc_check((size_t)(M + N) * sizeof(AbftLine), "abft lines");
    AbftLine* rows = cols + N;
    for (int j = 0; j < N; j++) { abft_line_init(&cols[j]); }
    for (int i = 0; i < M; i++) {
        abft_line_init(&rows[i]);
        for (int j = 0; j < N; j++) {
            float x = C.at(i, j);
            abft_line_add(&cols[j], i, x, cfg.extreme);
            abft_line_add(&rows[i], j, x, cfg.extreme);
        }
    }
    // judge every column; if each bad column holds one bad element, rebuild them all; else rows
    int pattern = -1;
    for (int by_rows = 0; by_rows < 2 && pattern < 0; by_rows++) {
        const int lines = by_rows ? M : N, len = by_rows ? N : M;
        AbftVerdict* verdicts = (AbftVerdict*)malloc_check((size_t)lines * sizeof(AbftVerdict), "abft verdicts");
        bool fixable = true;
        for (int l = 0; l < lines && fixable; l++) {
            const AbftChecksums& c = by_rows ? row[l] : col[l];
            verdicts[l] = abft_judge(by_rows ? rows[l] : cols[l], c.plain, c.weighted,
                                     abft_tolerance(cfg.tau, K, len, (float)c.bound), len);
            fixable = verdicts[l].kind != LINE_UNFIXABLE;
        }
        if (fixable) {
            for (int l = 0; l < lines; l++) {
                if (verdicts[l].kind != LINE_FIXABLE) { continue; }
                int i = by_rows ? l : verdicts[l].index, j = by_rows ? verdicts[l].index : l;
                float* x = g.C + b * g.strideC + (long)i * g.ldc + j;
                *x = abft_apply(verdicts[l], *x);
            }
            pattern = abft_fix_pattern(verdicts, lines, by_rows, n_fixed);
        }
        free(verdicts);
    }
    free(cols);
    free(col);
    return pattern;
}

// ----------------------------------------------------------------------------
// verification of one GEMM execution, and the protected GEMM itself

inline float* abft_scratch(Abft* abft, size_t floats) {
    if (floats > abft->work_floats) {
        free(abft->work);
        abft->work = (float*)malloc_check(floats * sizeof(float), "abft scratch");
        abft->work_floats = floats;
    }
    return abft->work;
}

// Counts (and prints) the outcome of one faulty batch entry: rebuilt, or beyond the checksums.
inline void abft_count_repair(Abft* abft, int op, int layer, int b, bool ok, long fixed, int pattern) {
    if (ok) { abft->n.corrected[op][pattern]++; }
    if (!abft->cfg.verbose) { return; }
    if (ok) {
        printf("abft: step %d layer %d %s: fault detected in batch entry %d, corrected %ld element%s (%s pattern)\n",
               abft->step, layer, abft_op_names[op], b, fixed, fixed == 1 ? "" : "s", abft_fix_names[pattern]);
    } else {
        printf("abft: step %d layer %d %s: fault detected in batch entry %d, beyond the checksums (2-D or bad operands)\n",
               abft->step, layer, abft_op_names[op], b);
    }
}

// Checks every batch entry of C; repairs what the checksums can. Returns false when an entry is
// beyond repair (the caller recomputes).
inline bool abft_verify(Abft* abft, const AbftGemm& g, int op, int layer) {
    const double t0 = wall_seconds();
    const int chunk = 64; // columns per work item
    const int kchunks = (g.K + chunk - 1) / chunk, nchunks = (g.N + chunk - 1) / chunk;
    float* work = abft_scratch(abft, (size_t)g.batch * (2 * g.K + 4 * g.N + 1));
    float* ue = work;                                       // (batch, K) e·A
    float* ua = work + (size_t)g.batch * g.K;               // (batch, K) e·|A|
    float* scratch = work + (size_t)g.batch * 2 * g.K;      // (batch, 4N)
    float* bad = scratch + (size_t)g.batch * 4 * g.N;       // (batch) 1 when the entry failed
    ABFT_PARALLEL_FOR_2D
    for (int b = 0; b < g.batch; b++) {
        for (int c = 0; c < kchunks; c++) {
            int k1 = (c + 1) * chunk < g.K ? (c + 1) * chunk : g.K;
            abft_colsums(abft_entry(g.A, g.strideA, b), g.M, c * chunk, k1, nullptr, nullptr,
                         ue + (size_t)b * g.K, ua + (size_t)b * g.K);
        }
    }
    for (int b = 0; b < g.batch; b++) { bad[b] = 0.0f; }
    ABFT_PARALLEL_FOR_2D
    for (int b = 0; b < g.batch; b++) {
        for (int c = 0; c < nchunks; c++) {
            int j1 = (c + 1) * chunk < g.N ? (c + 1) * chunk : g.N;
            if (!abft_check_columns(abft->cfg, g, b, c * chunk, j1, ue + (size_t)b * g.K, ua + (size_t)b * g.K,
                                    scratch + (size_t)b * 4 * g.N)) {
                bad[b] = 1.0f; // benign race: every writer stores the same value
            }
        }
    }
    abft->n.checked[op]++;
    bool repaired_all = true, detected = false;
    const double t_repair = wall_seconds();
    for (int b = 0; b < g.batch; b++) {
        if (bad[b] == 0.0f) { continue; }
        detected = true;
        long fixed = 0;
        int pattern = abft_repair(abft->cfg, g, b, &fixed);
        bool ok = pattern >= 0 && abft_check_columns(abft->cfg, g, b, 0, g.N, ue + (size_t)b * g.K,
                                                     ua + (size_t)b * g.K, scratch + (size_t)b * 4 * g.N);
        abft_count_repair(abft, op, layer, b, ok, fixed, pattern);
        repaired_all &= ok;
    }
    if (detected) {
        abft->n.detected[op]++;
        abft->n.recovery_seconds += wall_seconds() - t_repair;
    }
    abft->n.seconds[op] += wall_seconds() - t0;
    return repaired_all;
}

typedef void (*AbftGemmFn)(const AbftGemm& g);
typedef bool (*AbftVerifyFn)(Abft* abft, const AbftGemm& g, int op, int layer);

// One protected GEMM: compute, (inject a fault), verify, repair from checksums, and recompute
// once when the checksums cannot repair. Returns false when even the recomputed output is
// faulty: its inputs must be bad, and the caller climbs the ladder (layer, then step).
// The CUDA trainer passes its own corrupt and verify (C in GPU memory, checks in kernels).
inline bool abft_gemm(Abft* abft, AbftGemmFn gemm, const AbftGemm& g, int op, int layer,
                      AbftCorruptFn corrupt = abft_corrupt, AbftVerifyFn verify = abft_verify) {
    gemm(g);
    abft_inject(abft, g, op, layer, corrupt);
    if (!abft_due(abft, op) || verify(abft, g, op, layer)) { return true; }
    abft->n.recomputed_op[op]++;
    if (abft->cfg.verbose) { printf("abft: step %d layer %d %s: recomputing the GEMM\n", abft->step, layer, abft_op_names[op]); }
    const double t0 = wall_seconds();
    gemm(g);
    abft->n.recovery_seconds += wall_seconds() - t0; // the check that follows counts itself
    abft_inject(abft, g, op, layer, corrupt);
    return verify(abft, g, op, layer);
}

