// attention_backward.cu: the attention core of GPT-2's backward pass, with and without ABFT.
//
// From the gradient of the attention output datty (B, T, C) and the forward's saved Q, K, V
// (B, NH, T, HS) and P (B, NH, T, T: causal softmax, zeros above the diagonal), it computes
// dqkv (B, T, 3C) (within a row: dq of all heads, then dk, then dv), exactly as
// train_gpt2.cpp's attention_backward does between proj_dx and qkv_dx:
//
//   dY = unpermute_backward(datty)              (B, NH, T, HS)
//   dP = dY · Vᵀ                                (T, T) per head        GEMM OP_PV_DP
//   dV = Pᵀ · dY                                (T, HS) per head       GEMM OP_PV_DV
//   dS = P ⊙ (dP − rowsum(P ⊙ dP)), 0 above the diagonal   (softmax backward)
//   dQ = dS · K / √HS                           (T, HS) per head       GEMM OP_QK_DQ
//   dK = dSᵀ · Q / √HS                          (T, HS) per head       GEMM OP_QK_DK
//   dqkv = permute_backward(dQ, dK, dV)         (B, T, 3C)
//
// Build and run, on a GPU:
//   nvcc -O3 -std=c++17 -I. -arch=sm_90 dev/cuda/attention_backward.cu -o /tmp/attention_backward_gpu -lcublas -lcublasLt
//   /tmp/attention_backward_gpu [version]
// or on the CPU harness (dev/harness/README.md):
//   g++ -x c++ -DCUDA_CPU_HARNESS -O2 -std=c++17 -Wall -Wextra -fstack-clash-protection -I.
//       dev/cuda/attention_backward.cu -o /tmp/attention_backward_cpu -lpthread
//   /tmp/attention_backward_cpu [version]
// With no version every version runs; on a GPU each is then benchmarked against version 2.
// Shapes: GPT-2 124M on a GPU (B=8, NH=12, T=1024, HS=64); small odd ones on the harness
// (B=2, NH=3, T=67, HS=24) so that the whole file runs in seconds.
//
// Versions:
//   1  naive: one plain-loop thread per output row or element, one generic GEMM kernel (no cuBLAS)
//   2  cuBLAS: coalesced unpermute/permute kernels, a warp-per-row softmax backward with
//      shuffles, cublasSgemmStridedBatched for the four GEMMs. The baseline of versions 3, 4.
//   3  version 2 + ABFT on all four GEMMs: after each GEMM, separate kernels encode the
//      column checksums from the operands (e·A, e·|A|, then times B and |B|), verify every
//      output column (sum and absolute sum, abft.cuh's abft_check_columns rule and tolerance,
//      tau = 2), and rebuild the bad elements of flagged batch entries from fp64 checksums
//      (abft_judge/abft_apply): by columns for 0-D and row patterns, by rows for column
//      patterns. Device counters record detections, repairs and failures (2-D patterns are
//      detected but left to a recomputation, which is the trainer's job, not this file's).
//   4  version 3 with dP's verification fused into the softmax backward, which reads dP's
//      rows anyway: row checksums dP·e = dY·(Vᵀe), i.e. the extra column dP would have if V were
//      augmented with the row e·V (a length-HS dot product per row); flagged heads go through
//      the same correct kernel (rows rechecked), then their rows of dS are recomputed.
//
// Validation: every version's dqkv against a plain-loop CPU reference (which computes P itself
// from the random Q, K, so the inputs are consistent), outputs poisoned beforehand. Versions 3
// and 4 also: no alarm when fault-free; every fault type (inf, -inf, nan, nearinf, bitflip) in
// every pattern (0-D, row, column) injected into each of the four GEMM outputs is detected in that
// GEMM only, repaired by the right path, and dqkv still matches the reference; 2-D patterns
// are detected and reported as beyond the checksums.
#include "llmc/cuda_common.h"
#include "dev/cuda/common.h"
#include "abft.cuh"

#include <cstdlib>
#include <vector>

// ----------------------------------------------------------------------------
// the problem and its buffers

struct Shape {
    int B, NH, T, HS;
    int C() const { return NH * HS; }
    int heads() const { return B * NH; }
    long hd() const { return (long)T * HS; } // one head's (T, HS)
    long tt() const { return (long)T * T; }  // one head's (T, T)
};

// The four protected GEMMs, indices into the ABFT counters (OP_PV_DP..OP_QK_DK of abft.cuh)
enum { G_DP, G_DV, G_DQ, G_DK, G_NUM };
static const char* const gemm_names[G_NUM] = {"dP", "dV", "dQ", "dK"};

// Counters per GEMM, on the device: batch entries flagged by the verify kernel, repaired by the
// column checksums, repaired by the row checksums, beyond the checksums.
enum { CNT_DETECTED, CNT_FIXED_BY_COLS, CNT_FIXED_BY_ROWS, CNT_UNFIXED, CNT_NUM };

constexpr float ABFT_TAU = 2.0f;       // abft.cuh's AbftConfig::tau (AbftConfig is host-only)
constexpr float ABFT_EXTREME = 1e10f;  // abft.cuh's AbftConfig::extreme
constexpr int BLOCK = 256;

struct Buffers {
    // inputs
    float* datty;                 // (B, T, C)
    float *q, *k, *v;             // (B, NH, T, HS)
    float* att;                   // (B, NH, T, T) P
    // intermediates
    float* dy;                    // (B, NH, T, HS)
    float *dp, *ds;               // (B, NH, T, T)
    float *dq, *dk, *dv;          // (B, NH, T, HS)
    // output
    float* dqkv;                  // (B, T, 3C)
    // ABFT scratch, sized for the largest GEMM (every dimension is T or HS)
    float *ue, *ua;               // (B*NH, D) e·A and e·|A| over the rows of A (v4's dP: e·V, e·|V|)
    float *expect, *bound;        // (B*NH, D) each column's (v4's dP: row's) expected sum and |A|·|B| bound
    int* flags;                   // (B*NH) bad lines found in each batch entry
    double* work;                 // (B*NH, 12*D) fp64 checksums of the repair
    AbftVerdict* verdicts;        // (B*NH, D) one per line of the repair
    int* counters;                // (G_NUM, CNT_NUM)
    cublasHandle_t handle;
};

static int max_dim(const Shape& s) { return s.T > s.HS ? s.T : s.HS; }

// The four GEMMs as the trainers describe them (abft.cuh's row_major/transposed views).
static AbftGemm backward_gemm(const Shape& s, const Buffers& d, int which) {
    const float scale = 1.0f / sqrtf((float)s.HS);
    const int T = s.T, HS = s.HS, BH = s.heads();
    const long hd = s.hd(), tt = s.tt();
    switch (which) {
        case G_DP: return AbftGemm{T, T, HS, BH, row_major(d.dy, HS), hd, transposed(d.v, HS), hd, d.dp, T, tt, 1.0f, nullptr, true};
        case G_DV: return AbftGemm{T, HS, T, BH, transposed(d.att, T), tt, row_major(d.dy, HS), hd, d.dv, HS, hd, 1.0f, nullptr, false};
        case G_DQ: return AbftGemm{T, HS, T, BH, row_major(d.ds, T), tt, row_major(d.k, HS), hd, d.dq, HS, hd, scale, nullptr, false};
        default:   return AbftGemm{T, HS, T, BH, transposed(d.ds, T), tt, row_major(d.q, HS), hd, d.dk, HS, hd, scale, nullptr, false};
    }
}

// ----------------------------------------------------------------------------
// CPU reference: plain loops

// P = causal softmax(Q·Kᵀ/√HS), zeros above the diagonal: the forward's saved probabilities
static void attention_probs_cpu(float* att, const float* q, const float* k, const Shape& s) {
    const float scale = 1.0f / sqrtf((float)s.HS);
    for (int bh = 0; bh < s.heads(); bh++) {
        const float* qh = q + bh * s.hd();
        const float* kh = k + bh * s.hd();
        for (int t = 0; t < s.T; t++) {
            float* p = att + bh * s.tt() + (long)t * s.T;
            float maxval = -INFINITY;
            for (int j = 0; j <= t; j++) {
                float dot = 0.0f;
                for (int i = 0; i < s.HS; i++) { dot += qh[t * s.HS + i] * kh[j * s.HS + i]; }
                p[j] = dot * scale;
                maxval = fmaxf(maxval, p[j]);
            }
            float sum = 0.0f;
            for (int j = 0; j <= t; j++) { p[j] = expf(p[j] - maxval); sum += p[j]; }
            for (int j = 0; j <= t; j++) { p[j] /= sum; }
            for (int j = t + 1; j < s.T; j++) { p[j] = 0.0f; }
        }
    }
}

// C = alpha·A·B for each head, A and B given by their strides (i-k-j order: rows of B and C
// are walked in memory order, which keeps the GPU-sized reference to seconds)
static void gemm_cpu(float* c, long ldc, const float* a, long ars, long acs, const float* b, long brs, long bcs,
                     int M, int N, int K, float alpha) {
    std::vector<float> row(N);
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) { row[j] = 0.0f; }
        for (int kk = 0; kk < K; kk++) {
            const float x = a[i * ars + kk * acs];
            for (int j = 0; j < N; j++) { row[j] += x * b[kk * brs + j * bcs]; }
        }
        for (int j = 0; j < N; j++) { c[i * ldc + j] = alpha * row[j]; }
    }
}

static void attention_backward_cpu(float* dqkv, const float* datty, const float* q, const float* k, const float* v,
                                   const float* att, const Shape& s) {
    const int T = s.T, HS = s.HS, NH = s.NH, C = s.C();
    const float scale = 1.0f / sqrtf((float)HS);
    std::vector<float> dy(s.heads() * s.hd()), dq(dy.size()), dk(dy.size()), dv(dy.size());
    std::vector<float> dp(s.heads() * s.tt()), ds(dp.size());
    for (int b = 0; b < s.B; b++) {               // unpermute backward
        for (int h = 0; h < NH; h++) {
            for (int t = 0; t < T; t++) {
                for (int i = 0; i < HS; i++) { dy[((long)(b * NH + h) * T + t) * HS + i] = datty[((long)b * T + t) * C + h * HS + i]; }
            }
        }
    }
    for (int bh = 0; bh < s.heads(); bh++) {
        const long o = bh * s.hd(), oo = bh * s.tt();
        gemm_cpu(&dp[oo], T, &dy[o], HS, 1, v + o, 1, HS, T, T, HS, 1.0f);      // dP = dY·Vᵀ
        gemm_cpu(&dv[o], HS, att + oo, 1, T, &dy[o], HS, 1, T, HS, T, 1.0f);    // dV = Pᵀ·dY
        for (int t = 0; t < T; t++) {                                           // softmax backward
            const float* p = att + oo + (long)t * T;
            const float* g = &dp[oo + (long)t * T];
            float* out = &ds[oo + (long)t * T];
            float dot = 0.0f;
            for (int j = 0; j <= t; j++) { dot += p[j] * g[j]; }
            for (int j = 0; j < T; j++) { out[j] = j <= t ? p[j] * (g[j] - dot) : 0.0f; }
        }
        gemm_cpu(&dq[o], HS, &ds[oo], T, 1, k + o, HS, 1, T, HS, T, scale);     // dQ = dS·K/√HS
        gemm_cpu(&dk[o], HS, &ds[oo], 1, T, q + o, HS, 1, T, HS, T, scale);     // dK = dSᵀ·Q/√HS
    }
    for (int b = 0; b < s.B; b++) {               // permute backward
        for (int h = 0; h < NH; h++) {
            for (int t = 0; t < T; t++) {
                float* dst = dqkv + ((long)b * T + t) * 3 * C + h * HS;
                const long src = ((long)(b * NH + h) * T + t) * HS;
                for (int i = 0; i < HS; i++) { dst[i] = dq[src + i]; dst[C + i] = dk[src + i]; dst[2 * C + i] = dv[src + i]; }
            }
        }
    }
}

// ----------------------------------------------------------------------------
// version 1: naive kernels, one plain loop per thread

// one thread per (b, h, t) row of dY
__global__ void unpermute_backward_kernel1(float* dy, const float* datty, int B, int T, int NH, int HS) {
    const long row = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= (long)B * NH * T) { return; }
    const int t = (int)(row % T), h = (int)(row / T % NH), b = (int)(row / ((long)T * NH));
    const float* src = datty + ((long)b * T + t) * NH * HS + h * HS;
    for (int i = 0; i < HS; i++) { dy[row * HS + i] = src[i]; }
}

// one thread per element of C: C[b](i, j) = alpha · Σ_k A[b](i, k) · B[b](k, j)
__global__ void gemm_kernel1(AbftGemm g) {
    const long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)g.batch * g.M * g.N) { return; }
    const int j = (int)(idx % g.N), i = (int)(idx / g.N % g.M), b = (int)(idx / ((long)g.M * g.N));
    const MatView A{g.A.p + b * g.strideA, g.A.rs, g.A.cs}, Bm{g.B.p + b * g.strideB, g.B.rs, g.B.cs};
    float sum = 0.0f;
    for (int k = 0; k < g.K; k++) { sum += A.at(i, k) * Bm.at(k, j); }
    g.C[b * g.strideC + (long)i * g.ldc + j] = g.alpha * sum;
}

// one thread per row of dS
__global__ void softmax_backward_kernel1(float* ds, const float* dp, const float* att, int rows, int T) {
    const long row = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= rows) { return; }
    const int t = (int)(row % T);
    const float *p = att + row * T, *g = dp + row * T;
    float dot = 0.0f;
    for (int j = 0; j <= t; j++) { dot += p[j] * g[j]; }
    for (int j = 0; j < T; j++) { ds[row * T + j] = j <= t ? p[j] * (g[j] - dot) : 0.0f; }
}

// one thread per (b, h, t) row of dQ, dK, dV
__global__ void permute_backward_kernel1(float* dqkv, const float* dq, const float* dk, const float* dv,
                                         int B, int T, int NH, int HS) {
    const long row = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= (long)B * NH * T) { return; }
    const int t = (int)(row % T), h = (int)(row / T % NH), b = (int)(row / ((long)T * NH));
    const int C = NH * HS;
    float* dst = dqkv + ((long)b * T + t) * 3 * C + h * HS;
    for (int i = 0; i < HS; i++) { dst[i] = dq[row * HS + i]; dst[C + i] = dk[row * HS + i]; dst[2 * C + i] = dv[row * HS + i]; }
}

static int blocks_for(long n, int block) { return (int)((n + block - 1) / block); }

static void gemm1(const AbftGemm& g) {
    LAUNCH(gemm_kernel1, blocks_for((long)g.batch * g.M * g.N, BLOCK), BLOCK, 0, 0)(g);
    cudaCheckLaunch();
}

static void attention_backward1(const Shape& s, const Buffers& d) {
    const long rows = (long)s.heads() * s.T;
    LAUNCH(unpermute_backward_kernel1, blocks_for(rows, BLOCK), BLOCK, 0, 0)(d.dy, d.datty, s.B, s.T, s.NH, s.HS);
    cudaCheckLaunch();
    gemm1(backward_gemm(s, d, G_DP));
    gemm1(backward_gemm(s, d, G_DV));
    LAUNCH(softmax_backward_kernel1, blocks_for(rows, BLOCK), BLOCK, 0, 0)(d.ds, d.dp, d.att, (int)rows, s.T);
    cudaCheckLaunch();
    gemm1(backward_gemm(s, d, G_DQ));
    gemm1(backward_gemm(s, d, G_DK));
    LAUNCH(permute_backward_kernel1, blocks_for(rows, BLOCK), BLOCK, 0, 0)(d.dqkv, d.dq, d.dk, d.dv, s.B, s.T, s.NH, s.HS);
    cudaCheckLaunch();
}

// ----------------------------------------------------------------------------
// version 2: cuBLAS for the GEMMs, coalesced memory kernels, a warp per softmax row

// one thread per element of dY (B, NH, T, HS): consecutive threads read and write consecutive floats
__global__ void unpermute_backward_kernel2(float* dy, const float* datty, int B, int T, int NH, int HS) {
    const long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)B * NH * T * HS) { return; }
    const int i = (int)(idx % HS), t = (int)(idx / HS % T), h = (int)(idx / ((long)HS * T) % NH);
    const int b = (int)(idx / ((long)HS * T * NH));
    dy[idx] = datty[((long)b * T + t) * NH * HS + h * HS + i];
}

// one warp per row of dS: the lanes stride over the row, the dot product is a shuffle reduction
__global__ void softmax_backward_kernel2(float* ds, const float* dp, const float* att, int rows, int T) {
    const int lane = threadIdx.x % 32;
    const long row = (long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    if (row >= rows) { return; } // the whole warp leaves together
    const int t = (int)(row % T);
    const float *p = att + row * T, *g = dp + row * T;
    float dot = 0.0f;
    for (int j = lane; j <= t; j += 32) { dot += p[j] * g[j]; }
    for (int offset = 16; offset > 0; offset /= 2) { dot += __shfl_xor_sync(0xffffffffu, dot, offset); }
    for (int j = lane; j < T; j += 32) { ds[row * T + j] = j <= t ? p[j] * (g[j] - dot) : 0.0f; }
}

// one thread per element of dqkv (B, T, 3C): coalesced writes, reads coalesced within a head
__global__ void permute_backward_kernel2(float* dqkv, const float* dq, const float* dk, const float* dv,
                                         int B, int T, int NH, int HS) {
    const int C = NH * HS;
    const long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)B * T * 3 * C) { return; }
    const int r = (int)(idx % (3 * C)), t = (int)(idx / (3 * C) % T), b = (int)(idx / (3L * C * T));
    const int which = r / C, h = r % C / HS, i = r % HS;
    const float* src = which == 0 ? dq : which == 1 ? dk : dv;
    dqkv[idx] = src[((long)(b * NH + h) * T + t) * HS + i];
}

// cuBLAS is column-major: the row-major C (M, N) it must write is the column-major Cᵀ (N, M),
// and Cᵀ = Bᵀ·Aᵀ. A row-major view with unit column stride (cs = 1, ld = rs) is, read
// column-major, already the transpose cuBLAS needs (op N); a transposed view (rs = 1, ld = cs)
// needs op T.
static void gemm_cublas(cublasHandle_t handle, const AbftGemm& g) {
    const cublasOperation_t opB = g.B.cs == 1 ? CUBLAS_OP_N : CUBLAS_OP_T;
    const cublasOperation_t opA = g.A.cs == 1 ? CUBLAS_OP_N : CUBLAS_OP_T;
    const int ldb = (int)(g.B.cs == 1 ? g.B.rs : g.B.cs), lda = (int)(g.A.cs == 1 ? g.A.rs : g.A.cs);
    const float beta = 0.0f;
    cublasCheck(cublasSgemmStridedBatched(handle, opB, opA, g.N, g.M, g.K, &g.alpha, g.B.p, ldb, g.strideB,
                                          g.A.p, lda, g.strideA, &beta, g.C, (int)g.ldc, g.strideC, g.batch));
}

static void unpermute2(const Shape& s, const Buffers& d) {
    LAUNCH(unpermute_backward_kernel2, blocks_for((long)s.heads() * s.hd(), BLOCK), BLOCK, 0, 0)(d.dy, d.datty, s.B, s.T, s.NH, s.HS);
    cudaCheckLaunch();
}

static void softmax_backward2(const Shape& s, const Buffers& d) {
    const long rows = (long)s.heads() * s.T;
    LAUNCH(softmax_backward_kernel2, blocks_for(rows, BLOCK / 32), BLOCK, 0, 0)(d.ds, d.dp, d.att, (int)rows, s.T);
    cudaCheckLaunch();
}

static void permute2(const Shape& s, const Buffers& d) {
    LAUNCH(permute_backward_kernel2, blocks_for((long)s.B * s.T * 3 * s.C(), BLOCK), BLOCK, 0, 0)(d.dqkv, d.dq, d.dk, d.dv, s.B, s.T, s.NH, s.HS);
    cudaCheckLaunch();
}

static void attention_backward2(const Shape& s, const Buffers& d) {
    unpermute2(s, d);
    gemm_cublas(d.handle, backward_gemm(s, d, G_DP));
    gemm_cublas(d.handle, backward_gemm(s, d, G_DV));
    softmax_backward2(s, d);
    gemm_cublas(d.handle, backward_gemm(s, d, G_DQ));
    gemm_cublas(d.handle, backward_gemm(s, d, G_DK));
    permute2(s, d);
}

// ----------------------------------------------------------------------------
// version 3: version 2 + ABFT on the four GEMMs

__device__ inline MatView entry(MatView v, long stride, int b) { return MatView{v.p + b * stride, v.rs, v.cs}; }

// Encoding, step 1: (e·A, e·|A|) of each batch entry, one thread per (b, k). For a row-major A
// (dY, dS) consecutive threads read consecutive floats of each row.
__global__ void abft_encode_kernel(AbftGemm g, float* ue, float* ua) {
    const long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)g.batch * g.K) { return; }
    const int k = (int)(idx % g.K), b = (int)(idx / g.K);
    const MatView A = entry(g.A, g.strideA, b);
    float sum = 0.0f, abssum = 0.0f;
    for (int i = 0; i < g.M; i++) { const float x = A.at(i, k); sum += x; abssum += fabsf(x); }
    ue[idx] = sum;
    ua[idx] = abssum;
}

// The same for a transposed A (Pᵀ, dSᵀ: column k of A is a contiguous row in memory): one warp
// per (b, k), the lanes stride along it and a shuffle reduction adds their sums.
__global__ void abft_encode_transposed_kernel(AbftGemm g, float* ue, float* ua) {
    const int lane = threadIdx.x % 32;
    const long idx = (long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    if (idx >= (long)g.batch * g.K) { return; } // the whole warp leaves together
    const int k = (int)(idx % g.K), b = (int)(idx / g.K);
    const MatView A = entry(g.A, g.strideA, b);
    float sum = 0.0f, abssum = 0.0f;
    for (int i = lane; i < g.M; i += 32) { const float x = A.at(i, k); sum += x; abssum += fabsf(x); }
    for (int offset = 16; offset > 0; offset /= 2) {
        sum += __shfl_xor_sync(0xffffffffu, sum, offset);
        abssum += __shfl_xor_sync(0xffffffffu, abssum, offset);
    }
    if (lane == 0) { ue[idx] = sum; ua[idx] = abssum; }
}

// Is a line of C (n elements x[0], x[step], ...) clean? Its sum must match the checksum and its
// absolute sum stay within the |alpha|·|A|·|B| bound (which catches extreme values whose signs
// cancel): the rule of abft_check_columns, for a column (step = ldc) or a row (step = 1).
__device__ inline bool abft_line_clean(const float* x, long step, int n, int K, float expect, float bnd) {
    float sum = 0.0f, abssum = 0.0f;
    for (int i = 0; i < n; i++) { const float y = x[i * step]; sum += y; abssum += fabsf(y); }
    const float tol = abft_tolerance(ABFT_TAU, K, n, bnd);
    return (fabsf(sum - expect) <= tol) && (abssum <= bnd + tol); // false on NaN
}

// Encoding, step 2, and verification: one thread per (b, j) forms the checksum alpha·(e·A)·B
// and the bound |alpha|·(e·|A|)·|B| of column j, keeps them for the repair, and checks the column.
__global__ void abft_verify_kernel(AbftGemm g, const float* ue, const float* ua, float* expect, float* bound, int* flags) {
    const long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)g.batch * g.N) { return; }
    const int j = (int)(idx % g.N), b = (int)(idx / g.N);
    const MatView Bm = entry(g.B, g.strideB, b);
    const float *u = ue + (long)b * g.K, *a = ua + (long)b * g.K;
    float chk = 0.0f, bnd = 0.0f;
    for (int k = 0; k < g.K; k++) { const float x = Bm.at(k, j); chk += u[k] * x; bnd += a[k] * fabsf(x); }
    chk *= g.alpha;
    bnd *= fabsf(g.alpha);
    expect[idx] = chk;
    bound[idx] = bnd;
    if (!abft_line_clean(g.C + b * g.strideC + j, g.ldc, g.M, g.K, chk, bnd)) { atomicAdd(&flags[b], 1); }
}

// The fp64 checksums of one batch entry, as abft_repair computes them: plain, weighted and
// absolute, of every column (from e·A, w·A, e·|A|) and of every row (from B·e, B·w, |B|·e).
__device__ void abft_repair_checksums(const AbftGemm& g, MatView A, MatView Bm, double* work) {
    const int M = g.M, N = g.N, K = g.K;
    double *ae = work, *aw = ae + K, *aa = aw + K, *be = aa + K, *bw = be + K, *ba = bw + K;
    double *col = ba + K, *row = col + 3 * N; // (N, 3) and (M, 3): plain, weighted, bound
    for (int k = threadIdx.x; k < K; k += blockDim.x) {
        double p = 0.0, w = 0.0, a = 0.0;
        for (int i = 0; i < M; i++) { const double x = A.at(i, k); p += x; w += (i + 1.0) * x; a += fabs(x); }
        ae[k] = p; aw[k] = w; aa[k] = a;
        p = 0.0; w = 0.0; a = 0.0;
        for (int j = 0; j < N; j++) { const double x = Bm.at(k, j); p += x; w += (j + 1.0) * x; a += fabs(x); }
        be[k] = p; bw[k] = w; ba[k] = a;
    }
    __syncthreads();
    const double alpha = g.alpha;
    for (int j = threadIdx.x; j < N; j += blockDim.x) {
        double p = 0.0, w = 0.0, a = 0.0;
        for (int k = 0; k < K; k++) { const double x = Bm.at(k, j); p += ae[k] * x; w += aw[k] * x; a += aa[k] * fabs(x); }
        col[3 * j] = alpha * p; col[3 * j + 1] = alpha * w; col[3 * j + 2] = fabs(alpha) * a;
    }
    for (int i = threadIdx.x; i < M; i += blockDim.x) {
        double p = 0.0, w = 0.0, a = 0.0;
        for (int k = 0; k < K; k++) { const double x = A.at(i, k); p += x * be[k]; w += x * bw[k]; a += fabs(x) * ba[k]; }
        row[3 * i] = alpha * p; row[3 * i + 1] = alpha * w; row[3 * i + 2] = fabs(alpha) * a;
    }
    __syncthreads();
}

// Judges every line (columns, or rows) of C against its checksums; true when each is either
// clean or holds one element to rebuild. The verdicts are kept for abft_apply_lines.
__device__ bool abft_judge_lines(const AbftGemm& g, const float* C, bool by_rows, const double* chk, AbftVerdict* verdicts) {
    const int lines = by_rows ? g.M : g.N, len = by_rows ? g.N : g.M;
    int unfixable = 0;
    for (int l = threadIdx.x; l < lines; l += blockDim.x) {
        AbftLine line;
        abft_line_init(&line);
        for (int e = 0; e < len; e++) {
            const float x = by_rows ? C[(long)l * g.ldc + e] : C[(long)e * g.ldc + l];
            abft_line_add(&line, e, x, ABFT_EXTREME);
        }
        const double* c = chk + 3 * l;
        verdicts[l] = abft_judge(line, c[0], c[1], abft_tolerance(ABFT_TAU, g.K, len, (float)c[2]), len);
        unfixable |= verdicts[l].kind == LINE_UNFIXABLE;
    }
    return __syncthreads_or(unfixable) == 0;
}

__device__ void abft_apply_lines(const AbftGemm& g, float* C, bool by_rows, const AbftVerdict* verdicts) {
    const int lines = by_rows ? g.M : g.N;
    for (int l = threadIdx.x; l < lines; l += blockDim.x) {
        const AbftVerdict& v = verdicts[l];
        if (v.kind != LINE_FIXABLE) { continue; }
        float* x = by_rows ? &C[(long)l * g.ldc + v.index] : &C[(long)v.index * g.ldc + l];
        *x = abft_apply(v, *x);
    }
    __syncthreads();
}

// The repair: one block per batch entry, which leaves at once when its entry is clean. Column
// checksums first (0-D and row patterns: one bad element per column), else row checksums
// (column patterns); then the lines are checked again as the verification did: the columns
// (expect, bound: (batch, N)), or with `rows_checked` (version 4) the rows ((batch, M)).
__global__ void abft_correct_kernel(AbftGemm g, const int* flags, const float* expect, const float* bound, bool rows_checked,
                                    double* work, AbftVerdict* verdicts, int work_stride, int* counters) {
    const int b = blockIdx.x;
    if (flags[b] == 0) { return; } // the same for the whole block
    const MatView A = entry(g.A, g.strideA, b), Bm = entry(g.B, g.strideB, b);
    float* C = g.C + b * g.strideC;
    double* w = work + (long)b * 12 * work_stride;
    AbftVerdict* v = verdicts + (long)b * work_stride;
    abft_repair_checksums(g, A, Bm, w);
    const double *col = w + 6 * g.K, *row = col + 3 * g.N;
    int path = CNT_UNFIXED;
    if (abft_judge_lines(g, C, false, col, v)) {
        abft_apply_lines(g, C, false, v);
        path = CNT_FIXED_BY_COLS;
    } else if (abft_judge_lines(g, C, true, row, v)) {
        abft_apply_lines(g, C, true, v);
        path = CNT_FIXED_BY_ROWS;
    }
    int bad = 0;
    const int lines = rows_checked ? g.M : g.N;
    for (int l = threadIdx.x; l < lines; l += blockDim.x) {
        const long idx = (long)b * lines + l;
        bad |= rows_checked ? !abft_line_clean(C + l * g.ldc, 1, g.N, g.K, expect[idx], bound[idx])
                            : !abft_line_clean(C + l, g.ldc, g.M, g.K, expect[idx], bound[idx]);
    }
    if (__syncthreads_or(bad)) { path = CNT_UNFIXED; }
    if (threadIdx.x == 0) {
        atomicAdd(&counters[CNT_DETECTED], 1);
        atomicAdd(&counters[path], 1);
    }
}

// A fault: which GEMM, what value, what pattern, where (b, i, j); the host picks the place.
struct Fault {
    int gemm, type, pattern, b, i, j;
};

__device__ inline void corrupt(float* C, long ldc, int i, int j, int type) {
    C[i * ldc + j] = abft_fault_value(type, C[i * ldc + j]);
}

// Writes the fault into the GEMM's output, as a faulty unit would (abft_inject's patterns)
__global__ void inject_fault_kernel(AbftGemm g, Fault f) {
    float* C = g.C + f.b * g.strideC;
    switch (f.pattern) {
        case PATTERN_0D: corrupt(C, g.ldc, f.i, f.j, f.type); break;
        case PATTERN_ROW: for (int j = 0; j < g.N; j++) { corrupt(C, g.ldc, f.i, j, f.type); } break;
        case PATTERN_COL: for (int i = 0; i < g.M; i++) { corrupt(C, g.ldc, i, f.j, f.type); } break;
        default: // 2x2 block at (i, j)
            for (int i = f.i; i < f.i + 2 && i < g.M; i++) {
                for (int j = f.j; j < f.j + 2 && j < g.N; j++) { corrupt(C, g.ldc, i, j, f.type); }
            }
    }
}

// Verify one GEMM's output and repair it where the checksums can
static void abft_check(const Buffers& d, const AbftGemm& g, int which, int max_d) {
    cudaCheck(cudaMemset(d.flags, 0, g.batch * sizeof(int)));
    if (g.A.rs == 1) {
        LAUNCH(abft_encode_transposed_kernel, blocks_for((long)g.batch * g.K, BLOCK / 32), BLOCK, 0, 0)(g, d.ue, d.ua);
    } else {
        LAUNCH(abft_encode_kernel, blocks_for((long)g.batch * g.K, BLOCK), BLOCK, 0, 0)(g, d.ue, d.ua);
    }
    cudaCheckLaunch();
    LAUNCH(abft_verify_kernel, blocks_for((long)g.batch * g.N, BLOCK), BLOCK, 0, 0)(g, d.ue, d.ua, d.expect, d.bound, d.flags);
    cudaCheckLaunch();
    LAUNCH(abft_correct_kernel, g.batch, BLOCK, 0, 0)(g, d.flags, d.expect, d.bound, false, d.work, d.verdicts, max_d,
                                                      d.counters + which * CNT_NUM);
    cudaCheckLaunch();
}

static void inject(const AbftGemm& g, int which, const Fault* fault) {
    if (fault != nullptr && fault->gemm == which) {
        LAUNCH(inject_fault_kernel, 1, 1, 0, 0)(g, *fault);
        cudaCheckLaunch();
    }
}

static void protected_gemm(const Shape& s, const Buffers& d, int which, const Fault* fault) {
    const AbftGemm g = backward_gemm(s, d, which);
    gemm_cublas(d.handle, g);
    inject(g, which, fault);
    abft_check(d, g, which, max_dim(s));
}

static void attention_backward3(const Shape& s, const Buffers& d, const Fault* fault = nullptr) {
    unpermute2(s, d);
    protected_gemm(s, d, G_DP, fault);
    protected_gemm(s, d, G_DV, fault);
    softmax_backward2(s, d);
    protected_gemm(s, d, G_DQ, fault);
    protected_gemm(s, d, G_DK, fault);
    permute2(s, d);
}

// ----------------------------------------------------------------------------
// version 4: version 3 with the verification of dP fused into the softmax backward
//
// The softmax backward reads every row of dP anyway, so it checks the rows instead of a separate
// kernel checking the columns. Row i of dP = dY·Vᵀ sums to dY_i·(Vᵀe), i.e. the extra column
// dP would have if V were augmented with the row e·V (and the bound the same with |dY|, e·|V|):
// one dot product of length HS per row, where the column path re-reads all of dP. A flagged
// head is repaired by the same correct kernel, then its rows of dS are recomputed.

// (e·V, e·|V|) of each head: the row V would be augmented with. One thread per (b·h, k).
__global__ void abft_vsum_kernel(const float* v, float* vsum, float* vabs, int heads, int T, int HS) {
    const long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)heads * HS) { return; }
    const int k = (int)(idx % HS), bh = (int)(idx / HS);
    const float* vh = v + (long)bh * T * HS;
    float sum = 0.0f, abssum = 0.0f;
    for (int j = 0; j < T; j++) { const float x = vh[(long)j * HS + k]; sum += x; abssum += fabsf(x); }
    vsum[idx] = sum;
    vabs[idx] = abssum;
}

// One warp per row of dP: checks the whole row against dY_i·(e·V) (abft_line_clean's rule, the
// sums taken across lanes), keeps the checksum for the recheck after a repair, flags the head,
// and writes the row of dS as softmax_backward_kernel2 does.
__global__ void softmax_backward_verify_kernel4(float* ds, const float* dp, const float* att, const float* dy,
                                                const float* vsum, const float* vabs, float* expect, float* bound,
                                                int* flags, int rows, int T, int HS) {
    const int lane = threadIdx.x % 32;
    const long row = (long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    if (row >= rows) { return; } // the whole warp leaves together
    const int t = (int)(row % T);
    const long bh = row / T;
    const float *p = att + row * T, *g = dp + row * T, *y = dy + row * HS;
    float chk = 0.0f, bnd = 0.0f;
    for (int k = lane; k < HS; k += 32) { chk += y[k] * vsum[bh * HS + k]; bnd += fabsf(y[k]) * vabs[bh * HS + k]; }
    float dot = 0.0f, sum = 0.0f, abssum = 0.0f;
    for (int j = lane; j < T; j += 32) {
        const float x = g[j];
        sum += x;
        abssum += fabsf(x);
        if (j <= t) { dot += p[j] * x; }
    }
    chk = warp_sum(chk); bnd = warp_sum(bnd);
    dot = warp_sum(dot); sum = warp_sum(sum); abssum = warp_sum(abssum);
    const float tol = abft_tolerance(ABFT_TAU, HS, T, bnd);
    const bool clean = (fabsf(sum - chk) <= tol) && (abssum <= bnd + tol); // false on NaN
    if (lane == 0) {
        expect[row] = chk;
        bound[row] = bnd;
        if (!clean) { atomicAdd(&flags[bh], 1); }
    }
    for (int j = lane; j < T; j += 32) { ds[row * T + j] = j <= t ? p[j] * (g[j] - dot) : 0.0f; }
}

// After a repair: the rows of dS of the flagged heads again, from the repaired dP
__global__ void softmax_backward_redo_kernel4(float* ds, const float* dp, const float* att, const int* flags, int rows, int T) {
    const int lane = threadIdx.x % 32;
    const long row = (long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    if (row >= rows || flags[row / T] == 0) { return; } // uniform over the warp
    const int t = (int)(row % T);
    const float *p = att + row * T, *g = dp + row * T;
    float dot = 0.0f;
    for (int j = lane; j <= t; j += 32) { dot += p[j] * g[j]; }
    dot = warp_sum(dot);
    for (int j = lane; j < T; j += 32) { ds[row * T + j] = j <= t ? p[j] * (g[j] - dot) : 0.0f; }
}

static void attention_backward4(const Shape& s, const Buffers& d, const Fault* fault = nullptr) {
    const long rows = (long)s.heads() * s.T;
    unpermute2(s, d);
    const AbftGemm g = backward_gemm(s, d, G_DP);
    gemm_cublas(d.handle, g);
    inject(g, G_DP, fault);
    // e·V and e·|V| go in the ue, ua scratch ((B·NH, HS) <= (B·NH, D))
    LAUNCH(abft_vsum_kernel, blocks_for((long)s.heads() * s.HS, BLOCK), BLOCK, 0, 0)(d.v, d.ue, d.ua, s.heads(), s.T, s.HS);
    cudaCheckLaunch();
    cudaCheck(cudaMemset(d.flags, 0, s.heads() * sizeof(int)));
    LAUNCH(softmax_backward_verify_kernel4, blocks_for(rows, BLOCK / 32), BLOCK, 0, 0)(
        d.ds, d.dp, d.att, d.dy, d.ue, d.ua, d.expect, d.bound, d.flags, (int)rows, s.T, s.HS);
    cudaCheckLaunch();
    LAUNCH(abft_correct_kernel, g.batch, BLOCK, 0, 0)(g, d.flags, d.expect, d.bound, true, d.work, d.verdicts, max_dim(s),
                                                      d.counters + G_DP * CNT_NUM);
    cudaCheckLaunch();
    LAUNCH(softmax_backward_redo_kernel4, blocks_for(rows, BLOCK / 32), BLOCK, 0, 0)(d.ds, d.dp, d.att, d.flags, (int)rows, s.T);
    cudaCheckLaunch();
    // dV reads dY and P only, so it can come after the softmax backward
    protected_gemm(s, d, G_DV, fault);
    protected_gemm(s, d, G_DQ, fault);
    protected_gemm(s, d, G_DK, fault);
    permute2(s, d);
}

// ----------------------------------------------------------------------------
// validation

static void run_version(int version, const Shape& s, const Buffers& d) {
    switch (version) {
        case 1: attention_backward1(s, d); break;
        case 2: attention_backward2(s, d); break;
        case 3: attention_backward3(s, d); break;
        default: attention_backward4(s, d); break;
    }
}

// Poisons every buffer a version writes, so that an element it forgot fails validation
static void poison_outputs(const Shape& s, const Buffers& d) {
    const size_t hds = (size_t)s.heads() * s.hd(), tts = (size_t)s.heads() * s.tt();
    for (float* p : {d.dy, d.dq, d.dk, d.dv}) { poison(p, hds); }
    poison(d.dp, tts);
    poison(d.ds, tts);
    poison(d.dqkv, (size_t)s.B * s.T * 3 * s.C());
}

static std::vector<int> read_counters(const Buffers& d) {
    std::vector<int> n(G_NUM * CNT_NUM);
    cudaCheck(cudaMemcpy(n.data(), d.counters, n.size() * sizeof(int), cudaMemcpyDeviceToHost));
    return n;
}

static void reset_counters(const Buffers& d) { cudaCheck(cudaMemset(d.counters, 0, G_NUM * CNT_NUM * sizeof(int))); }

// Quiet comparison (the same rule as validate_result), for the many fault runs
static bool matches(const float* d_result, const std::vector<float>& ref, float tol, double* worst) {
    std::vector<float> got = host_copy(d_result, ref.size());
    bool ok = true;
    *worst = 0.0;
    for (size_t i = 0; i < ref.size(); i++) {
        const double err = fabs((double)got[i] - ref[i]);
        ok &= err <= tol * (1.0 + fabs((double)ref[i]));
        if (!(err <= *worst)) { *worst = err; }
    }
    return ok;
}

// Where abft_inject would put a fault: a live element (j <= i where only the causal part is read)
static Fault pick_fault(const AbftGemm& g, int which, int type, int pattern, uint64_t* rng) {
    Fault f{which, type, pattern, 0, 0, 0};
    f.b = (int)(random_u32(rng) % (uint32_t)g.batch);
    if (pattern == PATTERN_2D) {
        f.i = 1 + (int)(random_u32(rng) % (uint32_t)(g.M - 2));
        f.j = g.causal ? (int)(random_u32(rng) % (uint32_t)f.i) : (int)(random_u32(rng) % (uint32_t)(g.N - 1));
        return f;
    }
    f.i = (int)(random_u32(rng) % (uint32_t)g.M);
    const int cols = g.causal ? (f.i < g.N ? f.i : g.N - 1) + 1 : g.N;
    f.j = (int)(random_u32(rng) % (uint32_t)cols);
    return f;
}

// Every fault type in every pattern the checksums repair, in each GEMM: detected there and
// only there, repaired by the expected path, and dqkv as fault-free. Then 2-D: detected and
// reported unrepaired.
static void run_abft(int version, const Shape& s, const Buffers& d, const Fault* fault) {
    if (version == 3) { attention_backward3(s, d, fault); } else { attention_backward4(s, d, fault); }
}

static void test_faults(int version, const Shape& s, const Buffers& d, const std::vector<float>& ref, float tol) {
    uint64_t rng = 12345;
    for (int which = 0; which < G_NUM; which++) {
        const AbftGemm g = backward_gemm(s, d, which);
        int runs = 0, good = 0;
        double worst_all = 0.0; // the largest dqkv error after a repair, to compare with tol
        for (int type = 0; type < FAULT_NUM_TYPES; type++) {
            for (int pattern = PATTERN_0D; pattern <= PATTERN_COL; pattern++) {
                const Fault f = pick_fault(g, which, type, pattern, &rng);
                poison_outputs(s, d);
                reset_counters(d);
                run_abft(version, s, d, &f);
                const std::vector<int> c = read_counters(d);
                const int path = pattern == PATTERN_COL ? CNT_FIXED_BY_ROWS : CNT_FIXED_BY_COLS;
                bool ok = true;
                for (int other = 0; other < G_NUM; other++) {
                    const int* co = &c[other * CNT_NUM];
                    ok &= other == which ? (co[CNT_DETECTED] == 1 && co[path] == 1 && co[CNT_UNFIXED] == 0)
                                         : co[CNT_DETECTED] == 0;
                }
                double worst = 0.0;
                const bool same = matches(d.dqkv, ref, tol, &worst);
                if (!(ok && same)) {
                    printf("  %s %s %s at (%d, %d, %d): detected %d, by columns %d, by rows %d, unfixed %d, dqkv %s (max abs error %.2e)\n",
                           gemm_names[which], abft_fault_type_names[type], abft_pattern_names[pattern], f.b, f.i, f.j,
                           c[which * CNT_NUM + CNT_DETECTED], c[which * CNT_NUM + CNT_FIXED_BY_COLS],
                           c[which * CNT_NUM + CNT_FIXED_BY_ROWS], c[which * CNT_NUM + CNT_UNFIXED],
                           same ? "matches" : "differs", worst);
                }
                runs++;
                good += ok && same;
                if (!(worst <= worst_all)) { worst_all = worst; }
            }
        }
        char what[160];
        snprintf(what, sizeof(what), "v%d %s: %d/%d faults (5 types x 0-D/row/col) detected, repaired, dqkv matches (max abs error %.2e, tol %.0e)",
                 version, gemm_names[which], good, runs, worst_all, tol);
        check(good == runs, what);
        // 2-D: beyond the checksums, must be detected and reported, never silently "repaired"
        const Fault f = pick_fault(g, which, FAULT_INF, PATTERN_2D, &rng);
        reset_counters(d);
        run_abft(version, s, d, &f);
        const std::vector<int> c = read_counters(d);
        snprintf(what, sizeof(what), "v%d %s: 2-D fault detected and reported beyond the checksums", version, gemm_names[which]);
        check(c[which * CNT_NUM + CNT_DETECTED] == 1 && c[which * CNT_NUM + CNT_UNFIXED] == 1, what);
    }
}

// ----------------------------------------------------------------------------
// main

int main(int argc, char** argv) {
    cuda_require_device();
    int only = 0;
    if (argc > 1) {
        only = atoi(argv[1]);
        if (only < 1 || only > 4) {
            fprintf(stderr, "error: version must be 1, 2, 3 or 4, got '%s' (hint: %s [version])\n", argv[1], argv[0]);
            return 1;
        }
    }
    const Shape s = on_real_gpu() ? Shape{8, 12, 1024, 64} : Shape{2, 3, 67, 24};
    printf("attention backward: B=%d NH=%d T=%d HS=%d\n", s.B, s.NH, s.T, s.HS);
    const size_t hds = (size_t)s.heads() * s.hd(), tts = (size_t)s.heads() * s.tt();
    const size_t nout = (size_t)s.B * s.T * 3 * s.C();

    // inputs: random datty, Q, K, V; P computed from Q, K so that it is a real causal softmax
    std::vector<float> datty = make_random_float((size_t)s.B * s.T * s.C(), 1);
    std::vector<float> q = make_random_float(hds, 2), k = make_random_float(hds, 3), v = make_random_float(hds, 4);
    std::vector<float> att(tts), ref(nout);
    attention_probs_cpu(att.data(), q.data(), k.data(), s);
    attention_backward_cpu(ref.data(), datty.data(), q.data(), k.data(), v.data(), att.data(), s);

    Buffers d;
    d.datty = device_copy(datty);
    d.q = device_copy(q); d.k = device_copy(k); d.v = device_copy(v);
    d.att = device_copy(att);
    d.dy = device_alloc(hds); d.dq = device_alloc(hds); d.dk = device_alloc(hds); d.dv = device_alloc(hds);
    d.dp = device_alloc(tts); d.ds = device_alloc(tts);
    d.dqkv = device_alloc(nout);
    const int D = max_dim(s);
    d.ue = device_alloc((size_t)s.heads() * D); d.ua = device_alloc((size_t)s.heads() * D);
    d.expect = device_alloc((size_t)s.heads() * D); d.bound = device_alloc((size_t)s.heads() * D);
    cudaCheck(cudaMalloc(&d.flags, s.heads() * sizeof(int)));
    cudaCheck(cudaMalloc(&d.work, (size_t)s.heads() * 12 * D * sizeof(double)));
    cudaCheck(cudaMalloc(&d.verdicts, (size_t)s.heads() * D * sizeof(AbftVerdict)));
    cudaCheck(cudaMalloc(&d.counters, G_NUM * CNT_NUM * sizeof(int)));
    cublasCheck(cublasCreate(&d.handle));

    // Tolerance: fp32 everywhere, the GPU sums in another order than the reference (reductions
    // of length HS and T <= 1024; rounding error grows about as u·√K ≈ 2e-6 relative to the
    // magnitudes summed, and dS subtracts nearly equal numbers). 1e-4 of (1 + |ref|) leaves room
    // for that yet fails any indexing or transpose mistake, which gives O(1) errors.
    const float tol = 1e-4f;
    // A repaired element is rebuilt as checksum − sum of the other M−1 elements of its line, so
    // it carries their rounding errors too (about √M times one element's); still far below 1e-3.
    const float fault_tol = 1e-3f;

    for (int version = 1; version <= 4; version++) {
        if (only != 0 && only != version) { continue; }
        poison_outputs(s, d);
        reset_counters(d);
        run_version(version, s, d);
        cudaCheck(cudaDeviceSynchronize());
        char name[64];
        snprintf(name, sizeof(name), "v%d dqkv", version);
        validate_result(d.dqkv, ref, name, tol);
        if (version >= 3) {
            const std::vector<int> c = read_counters(d);
            int alarms = 0;
            for (int x : c) { alarms += x; }
            snprintf(name, sizeof(name), "v%d: no alarm on the fault-free run", version);
            check(alarms == 0, name);
            test_faults(version, s, d, ref, fault_tol);
        }
    }

    if (on_real_gpu()) {
        const int repeats = 20;
        const float base = benchmark_kernel(repeats, [&] { attention_backward2(s, d); });
        for (int version = 1; version <= 4; version++) {
            if (only != 0 && only != version) { continue; }
            const float ms = benchmark_kernel(repeats, [&] { run_version(version, s, d); });
            const char* names[] = {"", "1 naive", "2 cublas", "3 cublas+abft", "4 abft, dP check fused"};
            report_benchmark("attention_backward", names[version], ms, base);
        }
    }

    cublasCheck(cublasDestroy(d.handle));
    for (float* p : {d.datty, d.q, d.k, d.v, d.att, d.dy, d.dq, d.dk, d.dv, d.dp, d.ds, d.dqkv, d.ue, d.ua, d.expect, d.bound}) {
        cudaCheck(cudaFree(p));
    }
    cudaCheck(cudaFree(d.flags));
    cudaCheck(cudaFree(d.work));
    cudaCheck(cudaFree(d.verdicts));
    cudaCheck(cudaFree(d.counters));
    return finish();
}
