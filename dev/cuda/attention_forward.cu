// attention_forward.cu: the attention core of GPT-2's forward pass, with and without ABFT.
//
// From the fused QKV projection output to the input of the output projection:
//   qkv  (B, T, 3C)      within a row: q of all heads, then k, then v; head h at h*HS..h*HS+HS-1
//   Q, K, V = permute(qkv)                 (B, NH, T, HS) each
//   S = Q·Kᵀ/√HS                           (B, NH, T, T)     protected GEMM "qk"
//   P = causal softmax(S)                  (B, NH, T, T)     row t uses columns 0..t, 0 above
//   Y = P·V                                (B, NH, T, HS)    protected GEMM "pv"
//   atty = unpermute(Y)                    (B, T, C)
// exactly what train_gpt2.cpp's attention_forward does between the qkv GEMM and the projection.
//
// Build and run (from the repository root):
//   CPU harness: g++ -x c++ -DCUDA_CPU_HARNESS -O2 -std=c++17 -Wall -Wextra -fstack-clash-protection -I.
//                    dev/cuda/attention_forward.cu -o /tmp/attention_forward_cpu -lpthread
//                /tmp/attention_forward_cpu [version]
//   GPU:         nvcc -O3 -std=c++17 -I. -arch=sm_90 dev/cuda/attention_forward.cu -o /tmp/attention_forward_gpu
//                    -lcublas -lcublasLt        (sm_80 for an A100)
//                /tmp/attention_forward_gpu [version]
// version 0 (the default) runs all versions. Shapes: on a GPU, GPT-2 124M (B=8, T=1024, NH=12,
// HS=64), validated then benchmarked (median of 20, ratio to version 2); under the harness, a small
// odd shape (B=2, T=37, NH=3, HS=16) and a longer one with GPT-2's head size (B=1, T=131, NH=3,
// HS=64), validated only (about 1 s).
//
// Versions:
//   1 naive: one kernel per step, one thread per output element with a plain loop, no cuBLAS, no ABFT.
//   2 cuBLAS: permute, softmax (one warp per row, shuffles) and unpermute kernels, the two GEMMs
//     with cublasSgemmStridedBatched. The baseline of the ABFT versions.
//   3 version 2 + the naive ABFT, separate checksum kernels after each GEMM: encode the column
//     checksums from the operands (e·A and e·|A|, then times B and |B|), verify every column of
//     the output (the rule of abft.cuh's abft_check_columns), and correct: each flagged column
//     is judged by one thread with fp64 checksums (AbftLine, abft_judge, abft_apply); where a
//     column holds more than one bad element (a column pattern), its batch entry is rebuilt
//     row by row from fp64 row checksums. Detections are counted on the device.
//   4 ATTNChecker-style: the checksums come out of the GEMMs themselves, by augmenting the
//     operands: K gets an extra row e·K per head, so Q·[K; e·K]ᵀ has an extra column S·e (the
//     row checksums of S); V gets extra columns V·e and |V|·e, so P·[V, V·e, |V|·e] has Y's row
//     checksums and, P being non-negative, the exact bound |P|·|V|·e. Separate verify kernels
//     compare each row with its checksum. Detection only (no correction).
//   5 fused: as 4, but the softmax kernel checks each S row before normalizing it and the
//     unpermute kernel checks each Y row while copying it: no extra pass over S or Y.
//
// Every version is validated against a plain-loop CPU reference (atty poisoned before each run);
// the ABFT versions also with faults (inf, -inf, nan, nearinf, bitflip; 0-D, row and column
// patterns) written into S or Y right after the GEMM that produced them, as the trainer's
// injector does: each must be detected (device counter > 0), version 3 must also return the
// fault-free atty, and fault-free runs must raise no alarm. The mismatch tolerance is abft.cuh's
// (abft_tolerance, tau = 2, with the |A|·|B| bound), so fault-free fp32 runs never alarm.
#include "dev/cuda/common.h"
#include "abft.cuh"

#include <cstdlib>

// ----------------------------------------------------------------------------
// constants shared with abft.cuh's host path

constexpr float kExtreme = 1e10f;    // AbftConfig::extreme: |x| above it is bad by itself
constexpr float kTau = 2.0f;         // AbftConfig::tau: safety factor of the mismatch tolerance

// device counters (one int each) of the ABFT versions
enum Counter { CNT_DETECTED, CNT_CORRECTED, CNT_UNFIXABLE, CNT_NUM };

struct Shape {
    int B, T, NH, HS;
    int C() const { return NH * HS; }
    int BNH() const { return B * NH; }
};

// A fault to write into the output of one protected GEMM (op < 0: none).
struct Fault {
    int op;       // OP_QK (into S) or OP_PV (into Y)
    int type;     // AbftFaultType
    int pattern;  // PATTERN_0D, PATTERN_ROW, PATTERN_COL
    int b, i, j;  // batch entry (head), row and column of the faulty element (or line)
};

// ----------------------------------------------------------------------------
// CPU reference: plain loops, straight from qkv

static std::vector<float> attention_reference(const std::vector<float>& qkv, Shape s) {
    const int B = s.B, T = s.T, NH = s.NH, HS = s.HS, C = s.C();
    const float scale = 1.0f / sqrtf((float)HS);
    std::vector<float> atty((size_t)B * T * C), p(T);
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            for (int t = 0; t < T; t++) {
                const float* q = &qkv[((size_t)b * T + t) * 3 * C + h * HS];
                float maxval = -INFINITY;
                for (int j = 0; j <= t; j++) {
                    const float* k = &qkv[((size_t)b * T + j) * 3 * C + C + h * HS];
                    double dot = 0.0;
                    for (int d = 0; d < HS; d++) { dot += (double)q[d] * k[d]; }
                    p[j] = (float)dot * scale;
                    maxval = fmaxf(maxval, p[j]);
                }
                double sum = 0.0;
                for (int j = 0; j <= t; j++) { p[j] = expf(p[j] - maxval); sum += p[j]; }
                float* y = &atty[((size_t)b * T + t) * C + h * HS];
                for (int d = 0; d < HS; d++) {
                    double acc = 0.0;
                    for (int j = 0; j <= t; j++) { acc += (double)p[j] * qkv[((size_t)b * T + j) * 3 * C + 2 * C + h * HS + d]; }
                    y[d] = (float)(acc / sum);
                }
            }
        }
    }
    return atty;
}

// ----------------------------------------------------------------------------
// small device helpers

// (warp_sum and warp_max: llmc/cuda_common.h)

inline int ceil_div(long a, long b) { return (int)((a + b - 1) / b); }

// The row check of versions 4 and 5: a row is clean when its sum matches the checksum and its
// absolute sum stays within the |A|·|B| bound (abft_check_columns's rule, on rows). K is the
// GEMM's reduction length, n the row length.
__device__ inline bool row_is_clean(float sum, float abssum, float chk, float bound, int K, int n) {
    float tol = abft_tolerance(kTau, K, n, bound);
    return (fabsf(sum - chk) <= tol) && (abssum <= bound + tol); // false on NaN
}

// ----------------------------------------------------------------------------
// memory kernels (all versions)

// qkv (B, T, 3C) -> q (B, NH, T, HS), k (B, NH, T, HS) with a per-head stride k_head (version 4
// leaves room for a checksum row), v (B, NH, T, v_ld) with a row stride v_ld (room for checksum
// columns). One thread per element of q.
__global__ void permute_kernel(float* q, float* k, float* v, const float* qkv, int B, int T, int NH, int HS,
                               long k_head, int v_ld) {
    const long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)B * NH * T * HS) { return; }
    const int d = (int)(idx % HS);
    const int t = (int)((idx / HS) % T);
    const int h = (int)((idx / ((long)HS * T)) % NH);
    const int b = (int)(idx / ((long)HS * T * NH));
    const int C = NH * HS;
    const float* src = qkv + ((long)b * T + t) * 3 * C + h * HS + d;
    const long head = (long)b * NH + h;
    q[idx] = src[0];
    k[head * k_head + (long)t * HS + d] = src[C];
    v[head * T * v_ld + (long)t * v_ld + d] = src[2 * C];
}

// y (B, NH, T, y_ld) -> out (B, T, C). One thread per element of out.
__global__ void unpermute_kernel(float* out, const float* y, int B, int T, int NH, int HS, int y_ld) {
    const long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)B * NH * T * HS) { return; }
    const int C = NH * HS;
    const int c = (int)(idx % C), t = (int)((idx / C) % T), b = (int)(idx / ((long)C * T));
    const int h = c / HS, d = c % HS;
    out[idx] = y[(((long)b * NH + h) * T + t) * y_ld + d];
}

// P = causal softmax(S), one warp per row; S rows have stride s_ld (T, or T+1 with a checksum
// column), P rows stride T. Zeros above the diagonal so P·V can run over whole rows.
__global__ void softmax_warp_kernel(float* P, const float* S, int BNH, int T, int s_ld) {
    const int warp = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
    if (warp >= BNH * T) { return; } // whole warps leave together: blockDim is a multiple of 32
    const int t = warp % T;
    const float* s = S + (long)warp * s_ld;
    float* p = P + (long)warp * T;
    float maxval = -INFINITY;
    for (int j = lane; j <= t; j += 32) { maxval = fmaxf(maxval, s[j]); }
    maxval = warp_max(maxval);
    float sum = 0.0f;
    for (int j = lane; j <= t; j += 32) { sum += expf(s[j] - maxval); }
    const float inv = 1.0f / warp_sum(sum);
    for (int j = lane; j < T; j += 32) { p[j] = j <= t ? expf(s[j] - maxval) * inv : 0.0f; }
}

// ----------------------------------------------------------------------------
// version 1: naive kernels

// S[bh][i][j] = scale · Σ_d Q[bh][i][d]·K[bh][j][d]; one thread per element (the full T×T, as
// the trainer's GEMM).
__global__ void qk_naive_kernel(float* S, const float* Q, const float* K, int BNH, int T, int HS, float scale) {
    const long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)BNH * T * T) { return; }
    const int j = (int)(idx % T), i = (int)((idx / T) % T);
    const long bh = idx / ((long)T * T);
    const float* q = Q + (bh * T + i) * HS;
    const float* k = K + (bh * T + j) * HS;
    float acc = 0.0f;
    for (int d = 0; d < HS; d++) { acc += q[d] * k[d]; }
    S[idx] = acc * scale;
}

// One thread per row: max, exponentials, normalization, zeros above the diagonal.
__global__ void softmax_naive_kernel(float* P, const float* S, int BNH, int T) {
    const long row = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= (long)BNH * T) { return; }
    const int t = (int)(row % T);
    const float* s = S + row * T;
    float* p = P + row * T;
    float maxval = -INFINITY;
    for (int j = 0; j <= t; j++) { maxval = fmaxf(maxval, s[j]); }
    float sum = 0.0f;
    for (int j = 0; j <= t; j++) { p[j] = expf(s[j] - maxval); sum += p[j]; }
    const float inv = 1.0f / sum;
    for (int j = 0; j <= t; j++) { p[j] *= inv; }
    for (int j = t + 1; j < T; j++) { p[j] = 0.0f; }
}

// Y[bh][i][d] = Σ_j P[bh][i][j]·V[bh][j][d]; one thread per element.
__global__ void pv_naive_kernel(float* Y, const float* P, const float* V, int BNH, int T, int HS) {
    const long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)BNH * T * HS) { return; }
    const int d = (int)(idx % HS), i = (int)((idx / HS) % T);
    const long bh = idx / ((long)T * HS);
    const float* p = P + (bh * T + i) * T;
    const float* v = V + bh * T * HS + d;
    float acc = 0.0f;
    for (int j = 0; j < T; j++) { acc += p[j] * v[(long)j * HS]; }
    Y[idx] = acc;
}

// ----------------------------------------------------------------------------
// fault injection (versions 3-5): writes into a GEMM output right after the GEMM

// C (batch, M, ldc): one thread per element of the faulty line.
__global__ void inject_fault_kernel(float* C, long strideC, int ldc, int M, int N, Fault f) {
    const int idx = blockIdx.x * blockDim.x + threadIdx.x;
    int i = f.i, j = f.j;
    if (f.pattern == PATTERN_0D) {
        if (idx != 0) { return; }
    } else if (f.pattern == PATTERN_ROW) {
        if (idx >= N) { return; }
        j = idx;
    } else {
        if (idx >= M) { return; }
        i = idx;
    }
    float* x = C + f.b * strideC + (long)i * ldc + j;
    *x = abft_fault_value(f.type, *x);
}

static void inject_fault(const Fault& f, int op, float* C, long strideC, int ldc, int M, int N) {
    if (f.op != op) { return; }
    const int n = M > N ? M : N;
    LAUNCH(inject_fault_kernel, ceil_div(n, 256), 256, 0, 0)(C, strideC, ldc, M, N, f);
    cudaCheckLaunch();
}

// ----------------------------------------------------------------------------
// version 3: column checksums, verification and correction by separate kernels
//
// The GEMM is described by abft.cuh's AbftGemm: C[b] = alpha·A[b]·B[b] with strided views, so the
// same kernels serve S = Q·Kᵀ/√HS and Y = P·V.

// ue[b][k] = Σ_i A(i,k), ua[b][k] = Σ_i |A(i,k)|: one thread per (b, k); fp32 like abft_colsums.
__global__ void encode_a_kernel(float* ue, float* ua, AbftGemm g) {
    const long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)g.batch * g.K) { return; }
    const int k = (int)(idx % g.K), b = (int)(idx / g.K);
    const MatView A{g.A.p + b * g.strideA, g.A.rs, g.A.cs};
    float s = 0.0f, sa = 0.0f;
    for (int i = 0; i < g.M; i++) { float x = A.at(i, k); s += x; sa += fabsf(x); }
    ue[idx] = s;
    ua[idx] = sa;
}

// chk[b][j] = alpha·(e·A)·B(:,j), bound[b][j] = |alpha|·(e·|A|)·|B(:,j)|: one thread per (b, j).
__global__ void encode_b_kernel(float* chk, float* bound, const float* ue, const float* ua, AbftGemm g) {
    const long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)g.batch * g.N) { return; }
    const int j = (int)(idx % g.N), b = (int)(idx / g.N);
    const MatView Bm{g.B.p + b * g.strideB, g.B.rs, g.B.cs};
    float s = 0.0f, sa = 0.0f;
    for (int k = 0; k < g.K; k++) {
        float x = Bm.at(k, j);
        s += ue[(long)b * g.K + k] * x;
        sa += ua[(long)b * g.K + k] * fabsf(x);
    }
    chk[idx] = g.alpha * s;
    bound[idx] = fabsf(g.alpha) * sa;
}

// Sums each column of C and flags it when abft_check_columns would: one thread per (b, j),
// consecutive threads on consecutive columns, so every row read is coalesced.
__global__ void verify_columns_kernel(int* colflag, int* counters, const float* chk, const float* bound, AbftGemm g) {
    const long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)g.batch * g.N) { return; }
    const int j = (int)(idx % g.N), b = (int)(idx / g.N);
    const float* c = g.C + b * g.strideC + j;
    float s = 0.0f, sa = 0.0f;
    for (int i = 0; i < g.M; i++) { float x = c[(long)i * g.ldc]; s += x; sa += fabsf(x); }
    const float tol = abft_tolerance(kTau, g.K, g.M, bound[idx]);
    const bool clean = (fabsf(s - chk[idx]) <= tol) && (sa <= bound[idx] + tol);
    colflag[idx] = clean ? 0 : 1;
    if (!clean) { atomicAdd(&counters[CNT_DETECTED], 1); }
}

// Rebuilds flagged columns: one thread per (b, j); fp64 plain and weighted column checksums of
// this batch entry, recomputed from the operands (the slow path: only flagged columns pay).
// A column beyond repair (more than one bad element) sends its batch entry to the row pass.
__global__ void correct_columns_kernel(int* rowpass, int* counters, const int* colflag, AbftGemm g) {
    const long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)g.batch * g.N || colflag[idx] == 0) { return; }
    const int j = (int)(idx % g.N), b = (int)(idx / g.N);
    const MatView A{g.A.p + b * g.strideA, g.A.rs, g.A.cs}, Bm{g.B.p + b * g.strideB, g.B.rs, g.B.cs};
    double plain = 0.0, weighted = 0.0, bound = 0.0;
    for (int k = 0; k < g.K; k++) {
        double ae = 0.0, aw = 0.0, aa = 0.0;
        for (int i = 0; i < g.M; i++) { double x = A.at(i, k); ae += x; aw += (i + 1.0) * x; aa += fabs(x); }
        const double x = Bm.at(k, j);
        plain += ae * x; weighted += aw * x; bound += aa * fabs(x);
    }
    float* c = g.C + b * g.strideC + j;
    AbftLine line;
    abft_line_init(&line);
    for (int i = 0; i < g.M; i++) { abft_line_add(&line, i, c[(long)i * g.ldc], kExtreme); }
    const AbftVerdict v = abft_judge(line, g.alpha * plain, g.alpha * weighted,
                                     abft_tolerance(kTau, g.K, g.M, (float)(fabs(g.alpha) * bound)), g.M);
    if (v.kind == LINE_FIXABLE) {
        float* x = c + (long)v.index * g.ldc;
        *x = abft_apply(v, *x);
        atomicAdd(&counters[CNT_CORRECTED], 1);
    } else if (v.kind == LINE_UNFIXABLE) {
        rowpass[b] = 1; // benign race: every writer stores 1
    }
}

// The row pass, for batch entries with an unfixable column (a column pattern): one thread per
// (b, i) rebuilds row i from fp64 row checksums A(i,:)·(B·e) and A(i,:)·(B·w).
__global__ void correct_rows_kernel(int* counters, const int* rowpass, AbftGemm g) {
    const long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)g.batch * g.M) { return; }
    const int i = (int)(idx % g.M), b = (int)(idx / g.M);
    if (rowpass[b] == 0) { return; }
    const MatView A{g.A.p + b * g.strideA, g.A.rs, g.A.cs}, Bm{g.B.p + b * g.strideB, g.B.rs, g.B.cs};
    double plain = 0.0, weighted = 0.0, bound = 0.0;
    for (int k = 0; k < g.K; k++) {
        double be = 0.0, bw = 0.0, ba = 0.0;
        for (int j = 0; j < g.N; j++) { double x = Bm.at(k, j); be += x; bw += (j + 1.0) * x; ba += fabs(x); }
        const double x = A.at(i, k);
        plain += x * be; weighted += x * bw; bound += fabs(x) * ba;
    }
    float* c = g.C + b * g.strideC + (long)i * g.ldc;
    AbftLine line;
    abft_line_init(&line);
    for (int j = 0; j < g.N; j++) { abft_line_add(&line, j, c[j], kExtreme); }
    const AbftVerdict v = abft_judge(line, g.alpha * plain, g.alpha * weighted,
                                     abft_tolerance(kTau, g.K, g.N, (float)(fabs(g.alpha) * bound)), g.N);
    if (v.kind == LINE_FIXABLE) {
        c[v.index] = abft_apply(v, c[v.index]);
        atomicAdd(&counters[CNT_CORRECTED], 1);
    } else if (v.kind == LINE_UNFIXABLE) {
        atomicAdd(&counters[CNT_UNFIXABLE], 1);
    }
}

// Scratch of version 3, sized for the larger of the two GEMMs.
struct AbftWork {
    float *ue, *ua;    // (BNH, K) e·A, e·|A|
    float *chk, *bnd;  // (BNH, N) expected column sums, |A|·|B| bounds
    int* colflag;      // (BNH, N) 1: the column failed verification
    int* rowpass;      // (BNH) 1: the entry needs the row pass
    int* counters;     // (CNT_NUM)
};

// Encode, verify, correct: everything version 3 runs after a GEMM. The correction kernels
// always launch; their threads return at once unless something was flagged (no host sync).
static void abft_check_gemm(const AbftGemm& g, const AbftWork& w) {
    const int block = 256;
    cudaCheck(cudaMemsetAsync(w.rowpass, 0, g.batch * sizeof(int), 0));
    LAUNCH(encode_a_kernel, ceil_div((long)g.batch * g.K, block), block, 0, 0)(w.ue, w.ua, g);
    cudaCheckLaunch();
    LAUNCH(encode_b_kernel, ceil_div((long)g.batch * g.N, block), block, 0, 0)(w.chk, w.bnd, w.ue, w.ua, g);
    cudaCheckLaunch();
    LAUNCH(verify_columns_kernel, ceil_div((long)g.batch * g.N, block), block, 0, 0)(w.colflag, w.counters, w.chk, w.bnd, g);
    cudaCheckLaunch();
    LAUNCH(correct_columns_kernel, ceil_div((long)g.batch * g.N, block), block, 0, 0)(w.rowpass, w.counters, w.colflag, g);
    cudaCheckLaunch();
    LAUNCH(correct_rows_kernel, ceil_div((long)g.batch * g.M, block), block, 0, 0)(w.counters, w.rowpass, g);
    cudaCheckLaunch();
}

// ----------------------------------------------------------------------------
// versions 4 and 5: checksums computed by the GEMMs from augmented operands

// Kaug (BNH, T+1, HS): row T = Σ_t K[t] (so S gets the column S·e); ka (BNH, HS) = Σ_t |K[t]|
// for the bound. One thread per (bh, d).
__global__ void encode_k_kernel(float* Kaug, float* ka, int BNH, int T, int HS) {
    const long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)BNH * HS) { return; }
    const int d = (int)(idx % HS);
    float* k = Kaug + (idx / HS) * (T + 1) * HS + d;
    float s = 0.0f, sa = 0.0f;
    for (int t = 0; t < T; t++) { float x = k[(long)t * HS]; s += x; sa += fabsf(x); }
    k[(long)T * HS] = s;
    ka[idx] = sa;
}

// Vaug (BNH, T, HS+2): column HS = V·e, column HS+1 = |V|·e. One thread per row (bh, t).
__global__ void encode_v_kernel(float* Vaug, int BNH, int T, int HS) {
    const long row = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= (long)BNH * T) { return; }
    float* v = Vaug + row * (HS + 2);
    float s = 0.0f, sa = 0.0f;
    for (int d = 0; d < HS; d++) { s += v[d]; sa += fabsf(v[d]); }
    v[HS] = s;
    v[HS + 1] = sa;
}

// The |alpha|·|Q(i,:)|·(e·|K|) bound of S row i, by one warp.
__device__ inline float s_row_bound(const float* q, const float* ka, int HS, float scale, int lane) {
    float b = 0.0f;
    for (int d = lane; d < HS; d += 32) { b += fabsf(q[d]) * ka[d]; }
    return fabsf(scale) * warp_sum(b);
}

// Version 4: one warp per S row (stride T+1): Σ_j S(i,j) against the checksum column.
__global__ void verify_s_rows_kernel(int* counters, const float* Saug, const float* Q, const float* ka, int BNH, int T,
                                     int HS, float scale) {
    const int row = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
    if (row >= BNH * T) { return; }
    const float* s = Saug + (long)row * (T + 1);
    float sum = 0.0f, abssum = 0.0f;
    for (int j = lane; j < T; j += 32) { sum += s[j]; abssum += fabsf(s[j]); }
    sum = warp_sum(sum);
    abssum = warp_sum(abssum);
    const float bound = s_row_bound(Q + (long)row * HS, ka + (long)(row / T) * HS, HS, scale, lane);
    if (lane == 0 && !row_is_clean(sum, abssum, s[T], bound, HS, T)) { atomicAdd(&counters[CNT_DETECTED], 1); }
}

// Version 4: one warp per Y row (stride HS+2): Σ_d Y(i,d) against column HS, bound in column HS+1.
__global__ void verify_y_rows_kernel(int* counters, const float* Yaug, int BNH, int T, int HS) {
    const int row = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
    if (row >= BNH * T) { return; }
    const float* y = Yaug + (long)row * (HS + 2);
    float sum = 0.0f, abssum = 0.0f;
    for (int d = lane; d < HS; d += 32) { sum += y[d]; abssum += fabsf(y[d]); }
    sum = warp_sum(sum);
    abssum = warp_sum(abssum);
    if (lane == 0 && !row_is_clean(sum, abssum, y[HS], y[HS + 1], T, HS)) { atomicAdd(&counters[CNT_DETECTED], 1); }
}

// Version 5: the softmax kernel of version 2 reading Saug (stride T+1), which checks the whole
// row against its checksum column before normalizing the causal part.
__global__ void softmax_check_kernel(float* P, int* counters, const float* Saug, const float* Q, const float* ka,
                                     int BNH, int T, int HS, float scale) {
    const int row = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
    if (row >= BNH * T) { return; }
    const int t = row % T;
    const float* s = Saug + (long)row * (T + 1);
    float* p = P + (long)row * T;
    float sum = 0.0f, abssum = 0.0f, maxval = -INFINITY;
    for (int j = lane; j < T; j += 32) {
        const float x = s[j];
        sum += x;
        abssum += fabsf(x);
        if (j <= t) { maxval = fmaxf(maxval, x); }
    }
    sum = warp_sum(sum);
    abssum = warp_sum(abssum);
    maxval = warp_max(maxval);
    const float bound = s_row_bound(Q + (long)row * HS, ka + (long)(row / T) * HS, HS, scale, lane);
    if (lane == 0 && !row_is_clean(sum, abssum, s[T], bound, HS, T)) { atomicAdd(&counters[CNT_DETECTED], 1); }
    float esum = 0.0f;
    for (int j = lane; j <= t; j += 32) { esum += expf(s[j] - maxval); }
    const float inv = 1.0f / warp_sum(esum);
    for (int j = lane; j < T; j += 32) { p[j] = j <= t ? expf(s[j] - maxval) * inv : 0.0f; }
}

// Version 5: unpermute by one warp per Y row (bh, t), checking the row while copying it.
__global__ void unpermute_check_kernel(float* out, int* counters, const float* Yaug, int B, int T, int NH, int HS) {
    const int row = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
    if (row >= B * NH * T) { return; }
    const int t = row % T, h = (row / T) % NH, b = row / (T * NH);
    const float* y = Yaug + (long)row * (HS + 2);
    float* dst = out + ((long)b * T + t) * NH * HS + h * HS;
    float sum = 0.0f, abssum = 0.0f;
    for (int d = lane; d < HS; d += 32) {
        const float x = y[d];
        dst[d] = x;
        sum += x;
        abssum += fabsf(x);
    }
    sum = warp_sum(sum);
    abssum = warp_sum(abssum);
    if (lane == 0 && !row_is_clean(sum, abssum, y[HS], y[HS + 1], T, HS)) { atomicAdd(&counters[CNT_DETECTED], 1); }
}

// ----------------------------------------------------------------------------
// the buffers and the forward passes

struct Buffers {
    float* qkv;          // (B, T, 3C) input
    float *q, *k, *v;    // (B, NH, T, HS); k (B, NH, T+1, HS) and v (B, NH, T, HS+2) in versions 4-5
    float* S;            // (B, NH, T, T); (B, NH, T, T+1) in versions 4-5
    float* P;            // (B, NH, T, T)
    float* Y;            // (B, NH, T, HS); (B, NH, T, HS+2) in versions 4-5
    float* atty;         // (B, T, C) output
    float* ka;           // (B, NH, HS) e·|K|, versions 4-5
    AbftWork work;       // version 3
    cublasHandle_t cublas;
};

static void permute(const Buffers& m, Shape s, long k_head, int v_ld) {
    LAUNCH(permute_kernel, ceil_div((long)s.BNH() * s.T * s.HS, 256), 256, 0, 0)(m.q, m.k, m.v, m.qkv, s.B, s.T, s.NH,
                                                                                  s.HS, k_head, v_ld);
    cudaCheckLaunch();
}

static void unpermute(const Buffers& m, Shape s, int y_ld) {
    LAUNCH(unpermute_kernel, ceil_div((long)s.BNH() * s.T * s.HS, 256), 256, 0, 0)(m.atty, m.Y, s.B, s.T, s.NH, s.HS, y_ld);
    cudaCheckLaunch();
}

// Launch for one warp per row of BNH·T rows.
static int warp_rows_grid(Shape s) { return ceil_div((long)s.BNH() * s.T * 32, 256); }

static void forward1(const Buffers& m, Shape s) {
    const int BNH = s.BNH(), T = s.T, HS = s.HS;
    permute(m, s, (long)T * HS, HS);
    LAUNCH(qk_naive_kernel, ceil_div((long)BNH * T * T, 256), 256, 0, 0)(m.S, m.q, m.k, BNH, T, HS, 1.0f / sqrtf((float)HS));
    cudaCheckLaunch();
    LAUNCH(softmax_naive_kernel, ceil_div((long)BNH * T, 256), 256, 0, 0)(m.P, m.S, BNH, T);
    cudaCheckLaunch();
    LAUNCH(pv_naive_kernel, ceil_div((long)BNH * T * HS, 256), 256, 0, 0)(m.Y, m.P, m.v, BNH, T, HS);
    cudaCheckLaunch();
    unpermute(m, s, HS);
}

// cuBLAS is column-major: the row-major S = Q·Kᵀ (T, T) is the column-major Sᵀ = K·Qᵀ, where the
// row-major K (T, HS) read column-major is Kᵀ (HS, T), hence op(A) = T. The row-major Y = P·V
// is the column-major Yᵀ = Vᵀ·Pᵀ, both operands as stored (N, N). `extra_*` add the checksum
// rows of K / columns of V (versions 4-5: 1 and 2; version 2-3: 0).
static void gemm_qk(const Buffers& m, Shape s, int extra_k) {
    const int T = s.T, HS = s.HS, N = T + extra_k;
    const float alpha = 1.0f / sqrtf((float)HS), beta = 0.0f;
    cublasCheck(cublasSgemmStridedBatched(m.cublas, CUBLAS_OP_T, CUBLAS_OP_N, N, T, HS, &alpha, m.k, HS, (long)N * HS,
                                          m.q, HS, (long)T * HS, &beta, m.S, N, (long)T * N, s.BNH()));
}

static void gemm_pv(const Buffers& m, Shape s, int extra_v) {
    const int T = s.T, N = s.HS + extra_v;
    const float alpha = 1.0f, beta = 0.0f;
    cublasCheck(cublasSgemmStridedBatched(m.cublas, CUBLAS_OP_N, CUBLAS_OP_N, N, T, T, &alpha, m.v, N, (long)T * N,
                                          m.P, T, (long)T * T, &beta, m.Y, N, (long)T * N, s.BNH()));
}

static void softmax_warp(const Buffers& m, Shape s, int s_ld) {
    LAUNCH(softmax_warp_kernel, warp_rows_grid(s), 256, 0, 0)(m.P, m.S, s.BNH(), s.T, s_ld);
    cudaCheckLaunch();
}

static void forward2(const Buffers& m, Shape s) {
    permute(m, s, (long)s.T * s.HS, s.HS);
    gemm_qk(m, s, 0);
    softmax_warp(m, s, s.T);
    gemm_pv(m, s, 0);
    unpermute(m, s, s.HS);
}

// The two protected GEMMs as abft.cuh describes them (the trainer's heads_gemm).
static AbftGemm qk_desc(const Buffers& m, Shape s) {
    const long hd = (long)s.T * s.HS;
    // B(k, j) = K[j][k]: Kᵀ as a strided view
    return AbftGemm{s.T, s.T, s.HS, s.BNH(), MatView{m.q, s.HS, 1}, hd, MatView{m.k, 1, s.HS}, hd,
                    m.S, s.T, (long)s.T * s.T, 1.0f / sqrtf((float)s.HS), nullptr, true};
}

static AbftGemm pv_desc(const Buffers& m, Shape s) {
    const long hd = (long)s.T * s.HS;
    return AbftGemm{s.T, s.HS, s.T, s.BNH(), MatView{m.P, s.T, 1}, (long)s.T * s.T, MatView{m.v, s.HS, 1}, hd,
                    m.Y, s.HS, hd, 1.0f, nullptr, false};
}

static void forward3(const Buffers& m, Shape s, const Fault& f) {
    const int T = s.T, HS = s.HS;
    permute(m, s, (long)T * HS, HS);
    gemm_qk(m, s, 0);
    inject_fault(f, OP_QK, m.S, (long)T * T, T, T, T);
    abft_check_gemm(qk_desc(m, s), m.work);
    softmax_warp(m, s, T);
    gemm_pv(m, s, 0);
    inject_fault(f, OP_PV, m.Y, (long)T * HS, HS, T, HS);
    abft_check_gemm(pv_desc(m, s), m.work);
    unpermute(m, s, HS);
}

// Versions 4-5 up to the first GEMM: Q, the augmented K (checksum row) and V (checksum columns).
static void permute_augmented(const Buffers& m, Shape s) {
    const int BNH = s.BNH(), T = s.T, HS = s.HS;
    permute(m, s, (long)(T + 1) * HS, HS + 2);
    LAUNCH(encode_k_kernel, ceil_div((long)BNH * HS, 256), 256, 0, 0)(m.k, m.ka, BNH, T, HS);
    cudaCheckLaunch();
    LAUNCH(encode_v_kernel, ceil_div((long)BNH * T, 256), 256, 0, 0)(m.v, BNH, T, HS);
    cudaCheckLaunch();
}

static void forward4(const Buffers& m, Shape s, const Fault& f) {
    const int BNH = s.BNH(), T = s.T, HS = s.HS;
    const float scale = 1.0f / sqrtf((float)HS);
    permute_augmented(m, s);
    gemm_qk(m, s, 1);                                                    // Saug (BNH, T, T+1)
    inject_fault(f, OP_QK, m.S, (long)T * (T + 1), T + 1, T, T);
    LAUNCH(verify_s_rows_kernel, warp_rows_grid(s), 256, 0, 0)(m.work.counters, m.S, m.q, m.ka, BNH, T, HS, scale);
    cudaCheckLaunch();
    softmax_warp(m, s, T + 1);
    gemm_pv(m, s, 2);                                                    // Yaug (BNH, T, HS+2)
    inject_fault(f, OP_PV, m.Y, (long)T * (HS + 2), HS + 2, T, HS);
    LAUNCH(verify_y_rows_kernel, warp_rows_grid(s), 256, 0, 0)(m.work.counters, m.Y, BNH, T, HS);
    cudaCheckLaunch();
    unpermute(m, s, HS + 2);
}

static void forward5(const Buffers& m, Shape s, const Fault& f) {
    const int BNH = s.BNH(), T = s.T, HS = s.HS;
    const float scale = 1.0f / sqrtf((float)HS);
    permute_augmented(m, s);
    gemm_qk(m, s, 1);
    inject_fault(f, OP_QK, m.S, (long)T * (T + 1), T + 1, T, T);
    LAUNCH(softmax_check_kernel, warp_rows_grid(s), 256, 0, 0)(m.P, m.work.counters, m.S, m.q, m.ka, BNH, T, HS, scale);
    cudaCheckLaunch();
    gemm_pv(m, s, 2);
    inject_fault(f, OP_PV, m.Y, (long)T * (HS + 2), HS + 2, T, HS);
    LAUNCH(unpermute_check_kernel, warp_rows_grid(s), 256, 0, 0)(m.atty, m.work.counters, m.Y, s.B, T, s.NH, HS);
    cudaCheckLaunch();
}

static void run_version(int version, const Buffers& m, Shape s, const Fault& f) {
    switch (version) {
        case 1: forward1(m, s); break;
        case 2: forward2(m, s); break;
        case 3: forward3(m, s, f); break;
        case 4: forward4(m, s, f); break;
        default: forward5(m, s, f); break;
    }
}

// ----------------------------------------------------------------------------
// validation

// Fault-free: fp32 everywhere against a reference with fp64 dot products; the orders of summation
// differ (cuBLAS, shuffles), so errors are a few ulps times √(reduction length) of values O(1):
// 1e-6 in practice at T = 1024; 1e-4 leaves room without hiding a wrong index (errors O(0.1)).
constexpr float kTol = 1e-4f;
// After a correction: the rebuilt element is a checksum minus the sum of the other elements of
// its line, so it carries the rounding errors of the whole line (n·K·u·|x| at worst, 1e-5 at
// T = 1024 in practice); softmax and P·V pass them on damped. 1e-3 still catches a wrong value.
constexpr float kTolCorrected = 1e-3f;

static const char* const version_names[6] = {"", "1 naive", "2 cublas", "3 abft-separate-kernels",
                                             "4 abft-augmented-gemm", "5 abft-fused-checks"};

static std::vector<int> read_counters(const Buffers& m) {
    std::vector<int> c(CNT_NUM);
    cudaCheck(cudaMemcpy(c.data(), m.work.counters, CNT_NUM * sizeof(int), cudaMemcpyDeviceToHost));
    return c;
}

static void reset_counters(const Buffers& m) { cudaCheck(cudaMemset(m.work.counters, 0, CNT_NUM * sizeof(int))); }

// Where a fault lands: spread over heads and positions by its type and pattern; in S a live
// element (j <= i), as the trainer's injector picks for causal outputs.
static Fault make_fault(int op, int type, int pattern, Shape s) {
    Fault f{op, type, pattern, 0, 0, 0};
    f.b = (3 * type + pattern + 1) % s.BNH();
    f.i = (s.T * (type + 2)) / 8 % s.T;
    const int N = op == OP_QK ? f.i + 1 : s.HS;
    f.j = (7 * type + 3 * pattern + 1) % N;
    return f;
}

static void validate_version(int version, const Buffers& m, Shape s, const std::vector<float>& ref) {
    const size_t n = (size_t)s.B * s.T * s.C();
    const Fault none{-1, 0, 0, 0, 0, 0};
    char name[160];
    poison(m.atty, n);
    reset_counters(m);
    run_version(version, m, s, none);
    cudaCheck(cudaDeviceSynchronize());
    snprintf(name, sizeof(name), "version %s atty", version_names[version]);
    validate_result(m.atty, ref, name, kTol);
    if (version < 3) { return; }
    std::vector<int> c = read_counters(m);
    snprintf(name, sizeof(name), "version %s: no alarm on a fault-free run (detected %d)", version_names[version],
             c[CNT_DETECTED]);
    check(c[CNT_DETECTED] == 0 && c[CNT_CORRECTED] == 0 && c[CNT_UNFIXABLE] == 0, name);
    // faults: every type and pattern, into S and into Y
    for (int op : {OP_QK, OP_PV}) {
        for (int pattern : {PATTERN_0D, PATTERN_ROW, PATTERN_COL}) {
            int detected_all = 1, corrected_all = 1, runs = 0;
            for (int type = 0; type < FAULT_NUM_TYPES; type++) {
                const Fault f = make_fault(op, type, pattern, s);
                poison(m.atty, n);
                reset_counters(m);
                run_version(version, m, s, f);
                cudaCheck(cudaDeviceSynchronize());
                c = read_counters(m);
                const bool detected = c[CNT_DETECTED] > 0;
                bool corrected = true;
                if (version == 3) { // the only correcting version: atty must be the fault-free one
                    std::vector<float> got = host_copy(m.atty, n);
                    for (size_t e = 0; e < n && corrected; e++) {
                        corrected = fabsf(got[e] - ref[e]) <= kTolCorrected * (1.0f + fabsf(ref[e]));
                    }
                    corrected &= c[CNT_CORRECTED] > 0 && c[CNT_UNFIXABLE] == 0;
                }
                if (!detected || !corrected) {
                    printf("  %s %s fault in %s at head %d row %d col %d: detected %d, corrected %d, unfixable %d%s\n",
                           abft_fault_type_names[type], abft_pattern_names[pattern], abft_op_names[op], f.b, f.i, f.j,
                           c[CNT_DETECTED], c[CNT_CORRECTED], c[CNT_UNFIXABLE],
                           corrected ? "" : ", atty differs from the reference");
                }
                detected_all &= detected;
                corrected_all &= corrected;
                runs++;
            }
            snprintf(name, sizeof(name), "version %s: %s faults in %s (%d types) %s", version_names[version],
                     abft_pattern_names[pattern], abft_op_names[op], runs,
                     version == 3 ? "detected and corrected, atty within 1e-3" : "detected");
            check(detected_all && corrected_all, name);
        }
    }
}

// ----------------------------------------------------------------------------
// main

// Validates the chosen versions on one shape, then (a real GPU) benchmarks them.
static void run_shape(Shape s, int only, bool bench) {
    const int BNH = s.BNH(), T = s.T, HS = s.HS;
    printf("attention forward: B=%d T=%d NH=%d HS=%d (C=%d)\n", s.B, T, s.NH, HS, s.C());

    const std::vector<float> qkv = make_random_float((size_t)s.B * T * 3 * s.C(), 42 + T);
    const std::vector<float> ref = attention_reference(qkv, s);

    // sized for the augmented layouts of versions 4-5, which the others fit in
    Buffers m;
    m.qkv = device_copy(qkv);
    m.q = device_alloc((size_t)BNH * T * HS);
    m.k = device_alloc((size_t)BNH * (T + 1) * HS);
    m.v = device_alloc((size_t)BNH * T * (HS + 2));
    m.S = device_alloc((size_t)BNH * T * (T + 1));
    m.P = device_alloc((size_t)BNH * T * T);
    m.Y = device_alloc((size_t)BNH * T * (HS + 2));
    m.atty = device_alloc((size_t)s.B * T * s.C());
    m.ka = device_alloc((size_t)BNH * HS);
    const int maxKN = T > HS ? T : HS;
    m.work.ue = device_alloc((size_t)BNH * maxKN);
    m.work.ua = device_alloc((size_t)BNH * maxKN);
    m.work.chk = device_alloc((size_t)BNH * maxKN);
    m.work.bnd = device_alloc((size_t)BNH * maxKN);
    cudaCheck(cudaMalloc(&m.work.colflag, (size_t)BNH * maxKN * sizeof(int)));
    cudaCheck(cudaMalloc(&m.work.rowpass, (size_t)BNH * sizeof(int)));
    cudaCheck(cudaMalloc(&m.work.counters, CNT_NUM * sizeof(int)));
    cublasCheck(cublasCreate(&m.cublas));

    for (int version = 1; version <= 5; version++) {
        if (only == 0 || only == version) { validate_version(version, m, s, ref); }
    }

    if (bench) {
        const Fault none{-1, 0, 0, 0, 0, 0};
        float ms[6] = {0};
        for (int version = 1; version <= 5; version++) {
            if (only == 0 || only == version || version == 2) {
                ms[version] = benchmark_kernel(20, [&] { run_version(version, m, s, none); });
            }
        }
        for (int version = 1; version <= 5; version++) {
            if (only == 0 || only == version) { report_benchmark("attention_forward", version_names[version], ms[version], ms[2]); }
        }
    }

    cublasCheck(cublasDestroy(m.cublas));
    for (float* p : {m.qkv, m.q, m.k, m.v, m.S, m.P, m.Y, m.atty, m.ka, m.work.ue, m.work.ua, m.work.chk, m.work.bnd}) {
        cudaCheck(cudaFree(p));
    }
    cudaCheck(cudaFree(m.work.colflag));
    cudaCheck(cudaFree(m.work.rowpass));
    cudaCheck(cudaFree(m.work.counters));
}

int main(int argc, char** argv) {
    cuda_require_device();
    int only = 0;
    if (argc > 1) {
        char* end = nullptr;
        only = (int)strtol(argv[1], &end, 10);
        if (end == argv[1] || *end != '\0' || only < 0 || only > 5) {
            fprintf(stderr, "error: version must be 0 (all) or 1-5, got '%s' (hint: ./attention_forward [version])\n", argv[1]);
            return 1;
        }
    }
    if (on_real_gpu()) {
        run_shape(Shape{8, 1024, 12, 64}, only, true); // GPT-2 124M: B=8, T=1024, 12 heads of 64
    } else {
        // the harness: small and odd (T not a multiple of 4 or 32, NH = 3), then GPT-2's head size
        // with a longer T, so the tolerances meet longer reductions
        run_shape(Shape{2, 37, 3, 16}, only, false);
        run_shape(Shape{1, 131, 3, 64}, only, false);
    }
    return finish();
}
