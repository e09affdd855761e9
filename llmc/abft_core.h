// abft_core.h: the checksum core of ATTNChecker: for one GEMM C = alpha·A·B + bias, how its
// output is checked against checksums of its operands (detect), how a bad element is found
// (locate) and rebuilt (repair), and how far a fault-free checksum may drift (tolerance).
//
// The algorithm (docs/ABFT.md has the derivations). With e = (1,…,1) and w = (1,2,…,n):
//
//   column checksums   e·C = alpha (e·A)·B + M·bias        w·C = alpha (w·A)·B + (M(M+1)/2)·bias
//   row checksums      C·e = alpha A·(B·e) + sum(bias)     C·w = alpha A·(B·w) + w·bias
//
// computed from the operands alone, before the output is looked at. Detect: compare e·C with
// the sums of the computed C, column by column, within the tolerance of fp32 rounding (and
// the absolute sums with their bound, so that extreme values whose signs cancel are caught).
// Locate: in each bad column (row) the bad element is either extreme (INF, NaN, |x| >
// threshold) and visible by itself, or the weighted difference over the plain difference
// gives its index. Repair: it becomes checksum − sum of the other elements. A bad row of C
// (1-D row pattern) has one bad element per column, so the column checksums rebuild it; a bad
// column, the row checksums. Anything else (2-D) is beyond the checksums: the caller recomputes.
//
// This is host code: the CPU trainer runs it (abft.cuh's abft_verify), and the GPU path
// (llmc/abft_gpu.cuh) mirrors it in kernels. The per-line logic (AbftLine, abft_judge,
// abft_apply, abft_tolerance) is host+device, so both paths judge a line the same way.
//
// Contents: the GEMM descriptor; the entry points abft_check_columns (detect) and
// abft_repair (locate + repair); the per-line logic; the tolerance; the column sums.
#pragma once

#include <cfloat>
#include <cmath>
#include <cstdlib>

#include "llmc/precision.h"
#include "llmc/utils.h"

#ifdef __CUDACC__
#define ABFT_HD __host__ __device__
#else
#define ABFT_HD
#endif

// ----------------------------------------------------------------------------
// a protected GEMM: C[b] = alpha · A[b] · B[b] + bias, for b < batch

// A strided matrix view: element (i, j) is p[i*rs + j*cs], read as a float; a transpose swaps
// the strides.
struct MatView {
    const floatX* p = nullptr;
    long rs = 0, cs = 0;
    ABFT_HD float at(long i, long j) const { return (float)p[i * rs + j * cs]; }
};

// the view of a row-major matrix with leading dimension ld, and of its transpose
inline MatView row_major(const floatX* p, long ld) { return MatView{p, ld, 1}; }
inline MatView transposed(const floatX* p, long ld) { return MatView{p, 1, ld}; }

// Build one with named fields (abft.cuh's linear_gemm and heads_gemm show how).
struct AbftGemm {
    int M = 0, N = 0, K = 0;     // C is (M, N), the reduction runs over K
    int batch = 1;               // independent matrices, e.g. one per attention head
    MatView A; long strideA = 0; // (M, K) per batch entry, entries strideA floats apart
    MatView B; long strideB = 0; // (K, N)
    floatX* C = nullptr;         // (M, N) row-major with leading dimension ldc
    long ldc = 0, strideC = 0;
    float alpha = 1.0f;
    const floatX* bias = nullptr; // (N) added to every row, or nullptr
    bool causal = false;         // only C[i][j] with j <= i is read downstream (S and dP)
    int read_rows = 0;           // only rows i < read_rows and columns j < read_cols matter
    int read_cols = 0;           // downstream (0: all; the vocabulary, not its padding), for -fi
    // Checksum sums computed upstream, by the kernels the data already flowed through (the
    // CUDA trainer's permute and softmax: AbftLayerSums). The GPU's deferred check uses them
    // instead of a pass over A; the other checks ignore them.
    const float* a_sum = nullptr;     // (batch, K) e·A, the column sums of A
    const float* a_abs = nullptr;     // (batch, K) e·|A|
    const float* row_chk = nullptr;   // (batch, M) A·(B·e): what each row of C sums to (no bias)
    const float* row_bound = nullptr; // (batch, M) |A|·(|B|·e): the bound of each row's |C| sum
    int row_pieces = 1;               // addends per row in row_chk and row_bound: (batch, M, row_pieces)
    const float* bias_sum = nullptr;  // (1) Σ bias, added to the row checksums
    const float* bias_abs = nullptr;  // (1) Σ |bias|
    const float* a_part = nullptr;    // (a_parts, M) partial sums of A·(B·e) over chunks of at
    const float* a_part_abs = nullptr; // most ABFT_PART_ROWS of K, and of |A|·(|B|·e), left by A's writer (batch 1)
    int a_parts = 0;                  // 0: ceil(K / ABFT_PART_ROWS)
    const float* col_chk = nullptr;   // (batch, N) (e·A)·B: what each column of C sums to (no bias)
    const float* col_bound = nullptr; // (batch, N) (e·|A|)·|B|
    // With a causal reader check (below), the pass over A that forms its checksums can also sum
    // A's rows weighted by a_row_w: another GEMM's col_chk, when that GEMM reads A as its B and
    // has a_row_w as its e·A (dV = Pᵀ·dO, from dP = dO·Vᵀ's pass over dO).
    const float* a_row_w = nullptr;    // (batch, M)
    const float* a_row_wabs = nullptr; // (batch, M) the weights of |A|'s rows
    float* a_wsum = nullptr;           // (batch, K) Σ_i a_row_w[i]·A[i][k]
    float* a_wabs = nullptr;           // (batch, K) Σ_i a_row_wabs[i]·|A[i][k]|
    // Or the check is left to the kernel that reads C next, which compares the rows it reads
    // with their checksums, then the repair runs: the permute reads qkv (row_chk from the
    // layernorm), the softmax reads S and dP (the deferred check writes their causal row
    // checksums, over j <= i, into reader_chk and reader_bound).
    bool reader_checks = false;
    float* reader_chk = nullptr;      // (batch, M)
    float* reader_bound = nullptr;    // (batch, M)
    // Or the kernel that reads C next takes C's column sums as it reads it, and the column check
    // (against col_chk, or (e·A)·B from a_sum) follows that kernel: dV's and dK's, whose reader is
    // the permute backward (abft_gpu_take_columns).
    bool cols_by_reader = false;
};

// A linear layer's weight checksums, weight (OC, IC), computed once per step (they change only
// with the update) for the row checks of its forward and input-gradient GEMMs.
struct AbftWeightSums {
    const float* row_sum = nullptr;  // (OC) Σ_k W[o][k]: B·e of dinp = dout·W
    const float* row_abs = nullptr;  // (OC) Σ_k |W[o][k]|
    const float* col_sum = nullptr;  // (IC) Σ_o W[o][k]: B·e of out = inp·Wᵀ
    const float* col_abs = nullptr;  // (IC)
    const float* bias_sum = nullptr; // (1) Σ bias
    const float* bias_abs = nullptr; // (1) Σ |bias|
};

// What a kernel that writes a linear layer's input x (B·T, C) leaves for the checks, while each
// row is in registers: its row sums (B·e of the weight gradient's GEMM, kept per layer), and
// their products with a weight's sums (B·e of the GEMM that reads x: the column sums of W for
// the forward GEMM, its row sums for the input gradient's): that GEMM's row checksums.
struct AbftRowSums {
    float* sum = nullptr;         // (B·T) Σ_c x[t][c], or null
    float* abs = nullptr;         // (B·T) Σ_c |x[t][c]|
    const float* w_sum = nullptr; // (C) the weight's sums
    const float* w_abs = nullptr;
    float* chk = nullptr;         // (B·T, pieces) x[t]·w_sum, in pieces that add up to it
    float* bound = nullptr;       // (B·T, pieces) |x[t]|·w_abs
    int pieces = 1;               // one per head for dqkv: its writer can form a head's again alone
    // When x is the dout of a weight gradient doutᵀ·inp: x's columns weighted by inp's row sums
    // (that GEMM's B·e) and summed over each chunk of ABFT_PART_ROWS rows, the partial sums of
    // its row checksums (AbftGemm::a_part)
    const float* row_w = nullptr;    // (B·T) inp's row sums
    const float* row_wabs = nullptr; // (B·T) inp's absolute row sums
    float* part = nullptr;           // (parts, C) Σ_t row_w[t]·x[t][c] over chunks of rows
    float* part_abs = nullptr;       // the same with row_wabs and |x|
    int parts = 0;                   // chunks: ceil(B·T / ABFT_PART_ROWS), or B·ceil(T / ABFT_PART_ROWS) (dqkv's)
};

constexpr int ABFT_PART_ROWS = 32; // rows per partial sum of AbftRowSums::part

// One layer's checksum sums, (B·NH, T) each unless noted, written by the kernels that hold the
// data anyway, so that no check of the attention's GEMMs reads a (T, T) matrix again and the
// linear layers' checks read the GEMM's output and one operand once. All null: none (the CPU
// trainer checks every GEMM from its operands).
struct AbftLayerSums {
    bool readers_check = false; // the softmax checks the rows of S and dP as it reads them
    float* s_chk = nullptr;     // S's causal row checksums, for the softmax (AbftGemm::reader_chk)
    float* s_bound = nullptr;
    float* dp_chk = nullptr;    // dP's, for the softmax backward
    float* dp_bound = nullptr;
    float* k_sum = nullptr;    // Σ_d K[t][d]        permute_forward (kept per layer for dQ)
    float* k_abs = nullptr;    // Σ_d |K[t][d]|
    float* v_sum = nullptr;    // Σ_d V[t][d]        permute_forward
    float* v_abs = nullptr;    // Σ_d |V[t][d]|
    float* p_sum = nullptr;    // Σ_j P[t][j]        softmax_forward (kept per layer): dV's e·A
    float* pv_chk = nullptr;   // P[t]·v_sum         softmax_forward: P·V's row checksums
    float* pv_bound = nullptr; // P[t]·v_abs         (P >= 0)
    float* ds_sum = nullptr;   // Σ_j dS[t][j]       softmax_backward: dK's e·A
    float* ds_abs = nullptr;   // Σ_j |dS[t][j]|
    float* dq_chk = nullptr;   // dS[t]·k_sum        softmax_backward: dQ's row checksums
    float* dq_bound = nullptr; // |dS[t]|·k_abs
    float* dv_chk = nullptr;   // (B·NH, HS) p_sum·dO  dP's check (from its pass over dO): dV's column checksums
    float* dv_bound = nullptr; // (B·NH, HS) p_sum·|dO|
    float* dkv_part = nullptr; // (B·NH, ceil(T / ABFT_PART_ROWS), 4, HS) permute_backward: dK's and dV's
                               // column sums and |.|'s per chunk of positions, for their column checks
    AbftRowSums ln1;           // layernorm_forward's, for qkv's check and dWqkv's
    AbftRowSums atty;          // unpermute_forward's, for attproj's check and dWproj's
    AbftRowSums dres;          // the residual gradient's (layernorm_backward), for dYproj's (no sums)
    AbftRowSums dqkv;          // permute_backward's, for dln1's (no sums)
    AbftWeightSums qkvw, attprojw; // the layer's weights'
};

// batch entry b of a view, and of the output
inline MatView abft_entry(MatView v, long stride, int b) { return MatView{v.p + b * stride, v.rs, v.cs}; }
inline MatView abft_output(const AbftGemm& g, int b) { return MatView{g.C + b * g.strideC, g.ldc, 1}; }

// ----------------------------------------------------------------------------
// the per-line logic and the tolerance (host + device), defined further below

// Sums of one line (a column or a row) of C, taken in one pass. Extreme elements are left out
// of the sums so that one INF does not hide the values needed to rebuild it.
struct AbftLine {
    double sum, wsum;  // Σ x_i and Σ (i+1)·x_i over the non-extreme elements
    int n_extreme;     // how many extreme elements
    int extreme_at;    // index of the last one
};

enum AbftVerdictKind { LINE_OK, LINE_FIXABLE, LINE_UNFIXABLE };

struct AbftVerdict {
    int kind;      // AbftVerdictKind
    int index;     // the bad element, when fixable
    bool replace;  // true: the element becomes `value`; false: `value` is added to it
    double value;
};

// the patterns a repair can have: one element, one row, one column, or scattered elements
enum AbftFixPattern { FIX_0D, FIX_ROW, FIX_COL, FIX_SCATTERED, FIX_NUM };
static const char* const abft_fix_names[FIX_NUM] = {"0d", "row", "col", "scattered"};

// bf16 keeps 7 fraction bits (8 significant): a conversion that rounds to nearest, as CUDA's
// __float2bfloat16 and cuBLAS(Lt)'s bf16 output do, is off by at most 2^-8 relative.
constexpr float ABFT_BF16_UNIT_ROUNDOFF = 1.0f / 256.0f;

// The rounding of a GEMM's output stored as floatX (abft_tolerance's output_u): none when
// floatX is float.
constexpr float ABFT_FLOATX_OUTPUT_U = sizeof(floatX) == sizeof(float) ? 0.0f : ABFT_BF16_UNIT_ROUNDOFF;

ABFT_HD inline bool abft_is_extreme(float x, float threshold);
ABFT_HD inline void abft_line_init(AbftLine* line);
ABFT_HD inline void abft_line_add(AbftLine* line, int i, float x, float threshold);
ABFT_HD inline AbftVerdict abft_judge(const AbftLine& line, double chk, double wchk, double tol, int n);
ABFT_HD inline float abft_apply(const AbftVerdict& v, float x);
ABFT_HD inline float abft_repaired(const AbftVerdict& v, const AbftGemm& g, MatView A, MatView B, int i, int j, float x);
ABFT_HD inline float abft_tolerance(float tau, int K, int n, float bound, float operand_u = 0.0f,
                                     float output_u = ABFT_FLOATX_OUTPUT_U);
ABFT_HD inline bool abft_line_matches(float sum, float abssum, float chk, float bound, float tol);
inline void abft_colsums(MatView V, int rows, int j0, int j1, const float* w, const float* a, float* sum, float* abssum);
ABFT_HD inline int abft_fix_pattern(const AbftVerdict* verdicts, int lines, bool by_rows, long* n_fixed);

// ----------------------------------------------------------------------------
// detect: column checksums in fp32 (the fast path, taken by every protected GEMM)

// Checks columns [j0, j1) of C[b] given (e·A, e·|A|) = (ue, ua), the column sums of A[b] that
// encode its checksums. A column is clean when its sum matches the checksum within the
// tolerance and its absolute sum stays within the bound |alpha|·|A|·|B| + M·|bias|: the
// second test catches extreme values whose signs cancel in the plain sum. *residual (when not
// null) gets the largest |sum - checksum| over the columns in units of the fp32 worst case
// (abft_tolerance with tau = 1): how close a fault-free check came to its tolerance.
inline bool abft_check_columns(float tau, const AbftGemm& g, int b, int j0, int j1, const float* ue, const float* ua,
                               float* scratch /* 4N */, float* residual = nullptr) {
    float* chk = scratch;            // (N) e·C expected, before alpha and bias
    float* bound = scratch + g.N;    // (N)
    float* sum = scratch + 2 * g.N;  // (N) e·C found
    float* abssum = scratch + 3 * g.N;
    abft_colsums(abft_entry(g.B, g.strideB, b), g.K, j0, j1, ue, ua, chk, bound);
    abft_colsums(abft_output(g, b), g.M, j0, j1, nullptr, nullptr, sum, abssum);
    bool clean = true;
    float worst = 0.0f;
    for (int j = j0; j < j1; j++) {
        float bias = g.bias ? (float)g.bias[j] : 0.0f;
        float expect = g.alpha * chk[j] + (float)g.M * bias;
        float bnd = fabsf(g.alpha) * bound[j] + (float)g.M * fabsf(bias);
        float tol = abft_tolerance(tau, g.K, g.M, bnd);
        clean &= abft_line_matches(sum[j], abssum[j], expect, bnd, tol);
        worst = fmaxf(worst, fabsf(sum[j] - expect) / abft_tolerance(1.0f, g.K, g.M, bnd));
    }
    if (residual != nullptr) { *residual = worst; }
    return clean;
}

// The tolerance abft_check_columns gives column j of C[b] (for the fault log).
inline float abft_column_tolerance(float tau, const AbftGemm& g, int b, int j, const float* ue, const float* ua) {
    MatView column = abft_entry(g.B, g.strideB, b);
    column.p += j * column.cs;
    float chk[1], bound[1];
    abft_colsums(column, g.K, 0, 1, ue, ua, chk, bound);
    float bias = g.bias ? fabsf((float)g.bias[j]) : 0.0f;
    return abft_tolerance(tau, g.K, g.M, fabsf(g.alpha) * bound[0] + (float)g.M * bias);
}

// ----------------------------------------------------------------------------
// locate and repair: fp64 checksums (the slow path, taken only when a check fails)

struct AbftChecksums {
    double plain, weighted, bound;
};

// Rebuilds the faulty elements of C[b]: first from the column checksums (0-D and row
// patterns), else from the row checksums (column patterns). Returns the pattern repaired
// (AbftFixPattern; the number of elements in *n_fixed), or -1 when the checksums cannot do it
// (2-D, or bad operands).
inline int abft_repair(float tau, float extreme, const AbftGemm& g, int b, long* n_fixed) {
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
    for (int j = 0; g.bias && j < N; j++) {
        const double bj = (float)g.bias[j];
        bias_sum += bj; bias_wsum += (j + 1.0) * bj; bias_abs += fabs(bj);
    }
    AbftChecksums* col = (AbftChecksums*)calloc_check((size_t)(M + N) * sizeof(AbftChecksums), "abft checksums");
    AbftChecksums* row = col + N;
    for (int j = 0; j < N; j++) {
        double bj = g.bias ? (float)g.bias[j] : 0.0;
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
            abft_line_add(&cols[j], i, x, extreme);
            abft_line_add(&rows[i], j, x, extreme);
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
                                     abft_tolerance(tau, K, len, (float)c.bound), len);
            fixable = verdicts[l].kind != LINE_UNFIXABLE;
        }
        if (fixable) {
            for (int l = 0; l < lines; l++) {
                if (verdicts[l].kind != LINE_FIXABLE) { continue; }
                int i = by_rows ? l : verdicts[l].index, j = by_rows ? verdicts[l].index : l;
                floatX* x = g.C + b * g.strideC + (long)i * g.ldc + j;
                *x = (floatX)abft_repaired(verdicts[l], g, A, B, i, j, (float)*x);
            }
            pattern = abft_fix_pattern(verdicts, lines, by_rows, n_fixed);
        }
        free(verdicts);
    }
    free(cols);
    free(col);
    return pattern;
}

// The pattern of the elements that the verdicts of `lines` columns (or rows) rebuild: one
// element, one row, one column or scattered; their number goes to n_fixed.
ABFT_HD inline int abft_fix_pattern(const AbftVerdict* verdicts, int lines, bool by_rows, long* n_fixed) {
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

// ----------------------------------------------------------------------------
// the per-line logic (host + device)

// The fault model: INF, NaN and near-INF values. Such an element is visibly bad by itself.
ABFT_HD inline bool abft_is_extreme(float x, float threshold) {
    return !(fabsf(x) <= threshold); // true for NaN too
}

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

// C[b](i, j) computed again from its operands, accumulated in fp32 as the GEMM does.
ABFT_HD inline float abft_recompute(const AbftGemm& g, MatView A, MatView B, int i, int j) {
    float acc = 0.0f;
    for (int k = 0; k < g.K; k++) { acc += A.at(i, k) * B.at(k, j); }
    return g.alpha * acc + (g.bias != nullptr ? (float)g.bias[j] : 0.0f);
}

// Whether a located element is recomputed rather than rebuilt from its line's checksum. When C
// is bf16 a rebuilt element inherits the roundings of the other elements of its line (each off
// by up to 2^-8 of itself: measured 129 to 1,683 bf16 ulps off in lines of 37 to 74), where its
// own dot product gives what the GEMM wrote; in fp32 the rebuild is within the GEMM's rounding.
constexpr bool ABFT_RECOMPUTE_LOCATED = sizeof(floatX) != sizeof(float);

// The repaired value of the located element (i, j) of C[b], now x, that verdict v names.
ABFT_HD inline float abft_repaired(const AbftVerdict& v, const AbftGemm& g, MatView A, MatView B, int i, int j, float x) {
    return ABFT_RECOMPUTE_LOCATED ? abft_recompute(g, A, B, i, j) : abft_apply(v, x);
}

// ----------------------------------------------------------------------------
// the tolerance (host + device)

// How far the sum of a line of n outputs of a length-K fp32 GEMM may be from its checksum
// without a fault (docs/ABFT.md, "The mismatch tolerance"): the rounding of each dot product
// (K·u), of the line's sum (n·u) and of the checksum's encoding (2·u), relative to `bound` =
// |alpha|·Σ(|A|·|B|) + n·|bias| over the line, times the safety factor tau; the FLT_MIN term
// covers underflow. operand_u is the relative error of the GEMM's conversion of its operands
// before they are multiplied: 0 in fp32, ABFT_TF32_UNIT_ROUNDOFF with TF32 tensor cores (each
// product then carries up to 2·operand_u). output_u is the relative error of storing each
// output element in a narrower type than the fp32 accumulator: 0 in fp32,
// ABFT_BF16_UNIT_ROUNDOFF when C is bf16 (one rounding per element, u_out·bound over the line);
// by default the trainer's, ABFT_FLOATX_OUTPUT_U.
ABFT_HD inline float abft_tolerance(float tau, int K, int n, float bound, float operand_u, float output_u) {
    const float u = FLT_EPSILON * 0.5f; // unit roundoff of fp32
    return tau * ((float)(K + n + 2) * u + 2.0f * operand_u + output_u) * bound + (float)(K + n + 2) * FLT_MIN;
}

// The check of one line (a column or a row) of C: its sum within tol of its checksum chk, and
// the sum of its absolute values within bound + tol (which catches extremes whose signs cancel
// in the plain sum). False on NaN.
ABFT_HD inline bool abft_line_matches(float sum, float abssum, float chk, float bound, float tol) {
    return (fabsf(sum - chk) <= tol) && (abssum <= bound + tol);
}

// TF32 keeps 10 of fp32's 23 fraction bits: 2^-11 if the conversion rounds, 2^-10 if it
// truncates (which hardware may do); the safe one.
constexpr float ABFT_TF32_UNIT_ROUNDOFF = 1.0f / 1024.0f;


// ----------------------------------------------------------------------------
// column sums (host): the encoding of the checksums and the sums they are compared with

// For columns j in [j0, j1) of the (rows × ·) view V:
//     sum[j] = Σ_i w_i·V(i,j)        abssum[j] = Σ_i a_i·|V(i,j)|
// with w_i = a_i = 1 when w and a are null. Walks memory in order for either layout of V.
inline void abft_colsums(MatView V, int rows, int j0, int j1, const float* w, const float* a, float* sum, float* abssum) {
    if (V.cs == 1 || V.rs != 1) { // rows are contiguous: accumulate row by row, vectorized over j
        for (int j = j0; j < j1; j++) { sum[j] = 0.0f; abssum[j] = 0.0f; }
        for (int i = 0; i < rows; i++) {
            const float wi = w ? w[i] : 1.0f, ai = a ? a[i] : 1.0f;
            const floatX* row = V.p + i * V.rs;
            for (int j = j0; j < j1; j++) {
                float x = (float)row[j * V.cs];
                sum[j] += wi * x;
                abssum[j] += ai * fabsf(x);
            }
        }
    } else { // columns are contiguous: one dot product per column
        for (int j = j0; j < j1; j++) {
            const floatX* col = V.p + j * V.cs;
            // 16 partial sums: a fixed-order reduction the compiler can keep in vector registers
            float s[16] = {0.0f}, sa[16] = {0.0f};
            int i = 0;
            for (; i + 16 <= rows; i += 16) {
                for (int l = 0; l < 16; l++) {
                    s[l] += (w ? w[i + l] : 1.0f) * (float)col[i + l];
                    sa[l] += (a ? a[i + l] : 1.0f) * fabsf((float)col[i + l]);
                }
            }
            for (; i < rows; i++) {
                s[0] += (w ? w[i] : 1.0f) * (float)col[i];
                sa[0] += (a ? a[i] : 1.0f) * fabsf((float)col[i]);
            }
            float total = 0.0f, abstotal = 0.0f;
            for (int l = 0; l < 16; l++) { total += s[l]; abstotal += sa[l]; }
            sum[j] = total;
            abssum[j] = abstotal;
        }
    }
}
