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
// Build and run (dev/cuda/README.md):
//   cd dev/cuda && make attention_backward && ./attention_backward [version] [block_size]   (GPU)
//   cd dev/cuda && make attention_backward_cpu && ./attention_backward_cpu [version] [block_size]
// With no version every version runs; on a GPU each is then benchmarked against version 2.
// block_size (threads per block of the handwritten kernels, a multiple of 32 up to 1024)
// defaults to 256; without one every size of 64..1024 is validated too (and benchmarked).
// Shapes: GPT-2 124M on a GPU (B=8, NH=12, T=1024, HS=64); small odd ones on the harness
// (B=2, NH=3, T=67, HS=24) so that the whole file runs in seconds.
//
// Versions (the table `versions` at the end of the file):
//   1  naive: one plain-loop thread per output row or element, one generic GEMM kernel (no cuBLAS)
//   2  cuBLAS: coalesced unpermute/permute kernels, a warp-per-row softmax backward with
//      shuffles, cublasSgemmStridedBatched for the four GEMMs. The baseline of versions 3, 4.
//   3  THE TRAINER'S: version 2 + abft.cuh's device path after each of the four GEMMs, called
//      as llmc/abft_gpu.cuh's abft_gpu_verify calls it: abft_gpu_encode_verify (column checksums from the
//      operands against the output's column sums, abft_check_columns' rule and tolerance), and
//      where the device counter says a head is faulty, abft_gpu_repair (fp64 checksums: by
//      columns for 0-D and row patterns, by rows for column patterns) and the check again.
//      2-D patterns are detected and left to a recomputation, the trainer's job, not this file's.
//   4  version 3 with dP's verification fused into the softmax backward, which reads dP's
//      rows anyway: row checksums dP·e = dY·(Vᵀe), i.e. the extra column dP would have if V were
//      augmented with the row e·V (a length-HS dot product per row); flagged heads go through
//      abft_gpu_repair and the check again as in version 3, then dS is recomputed.
//
// Validation: every version's dqkv against a plain-loop CPU reference (which computes P itself
// from the random Q, K, so the inputs are consistent), outputs poisoned beforehand. Versions 3
// and 4 also: no alarm when fault-free; every fault type (inf, -inf, nan, nearinf, bitflip) in
// every pattern (0-D, row, column) injected into each of the four GEMM outputs is detected in that
// GEMM only, repaired by the right path, and dqkv still matches the reference; 2-D patterns
// are detected and reported as beyond the checksums.
#include "dev/cuda/common.h" // and abft.cuh

// ----------------------------------------------------------------------------
// the problem and its buffers

struct Shape {
    int B, NH, T, HS;
    int C() const { return NH * HS; }
    int heads() const { return B * NH; }
    long hd() const { return (long)T * HS; } // one head's (T, HS)
    long tt() const { return (long)T * T; }  // one head's (T, T)
};

// The four protected GEMMs (OP_PV_DP..OP_QK_DK of abft.cuh)
enum { G_DP, G_DV, G_DQ, G_DK, G_NUM };
static const char* const gemm_names[G_NUM] = {"dP", "dV", "dQ", "dK"};

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
    // ABFT
    AbftGpuScratch abft;          // abft.cuh's scratch, as the trainer's
    AbftTally tally[G_NUM];       // what the checks of each GEMM found
    float *vsum, *vabs;           // (B*NH, HS) e·V and e·|V|, version 4's checksum row
    cublasHandle_t handle;
    int block;                    // threads per block of the handwritten kernels
};

// The four GEMMs as the trainers describe them (abft.cuh's row_major/transposed views).
static AbftGemm backward_gemm(const Shape& s, const Buffers& d, int which) {
    const int T = s.T, HS = s.HS;
    const long hd = s.hd(), tt = s.tt();
    AbftGemm g = {};
    g.M = T; g.batch = s.heads(); g.alpha = 1.0f; g.bias = nullptr; g.causal = false;
    switch (which) {
        case G_DP: // dP = dY · Vᵀ
            g.N = T; g.K = HS; g.causal = true;
            g.A = row_major(d.dy, HS); g.strideA = hd;
            g.B = transposed(d.v, HS); g.strideB = hd;
            g.C = d.dp; g.ldc = T; g.strideC = tt;
            break;
        case G_DV: // dV = Pᵀ · dY
            g.N = HS; g.K = T;
            g.A = transposed(d.att, T); g.strideA = tt;
            g.B = row_major(d.dy, HS); g.strideB = hd;
            g.C = d.dv; g.ldc = HS; g.strideC = hd;
            break;
        case G_DQ: // dQ = dS · K / √HS
            g.N = HS; g.K = T; g.alpha = 1.0f / sqrtf((float)HS);
            g.A = row_major(d.ds, T); g.strideA = tt;
            g.B = row_major(d.k, HS); g.strideB = hd;
            g.C = d.dq; g.ldc = HS; g.strideC = hd;
            break;
        default: // dK = dSᵀ · Q / √HS
            g.N = HS; g.K = T; g.alpha = 1.0f / sqrtf((float)HS);
            g.A = transposed(d.ds, T); g.strideA = tt;
            g.B = row_major(d.q, HS); g.strideB = hd;
            g.C = d.dk; g.ldc = HS; g.strideC = hd;
    }
    return g;
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

static void gemm1(const Buffers& d, const AbftGemm& g) {
    LAUNCH(gemm_kernel1, ceil_div((long)g.batch * g.M * g.N, d.block), d.block, 0, 0)(g);
    cudaCheckLaunch();
}

static void attention_backward1(Buffers& d, const Shape& s, const Fault&) {
    const long rows = (long)s.heads() * s.T;
    const int block = d.block;
    LAUNCH(unpermute_backward_kernel1, ceil_div(rows, block), block, 0, 0)(d.dy, d.datty, s.B, s.T, s.NH, s.HS);
    cudaCheckLaunch();
    gemm1(d, backward_gemm(s, d, G_DP));
    gemm1(d, backward_gemm(s, d, G_DV));
    LAUNCH(softmax_backward_kernel1, ceil_div(rows, block), block, 0, 0)(d.ds, d.dp, d.att, (int)rows, s.T);
    cudaCheckLaunch();
    gemm1(d, backward_gemm(s, d, G_DQ));
    gemm1(d, backward_gemm(s, d, G_DK));
    LAUNCH(permute_backward_kernel1, ceil_div(rows, block), block, 0, 0)(d.dqkv, d.dq, d.dk, d.dv, s.B, s.T, s.NH, s.HS);
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

static void unpermute2(const Shape& s, const Buffers& d) {
    LAUNCH(unpermute_backward_kernel2, ceil_div((long)s.heads() * s.hd(), d.block), d.block, 0, 0)(d.dy, d.datty, s.B, s.T,
                                                                                                   s.NH, s.HS);
    cudaCheckLaunch();
}

// one warp per row: block/32 rows per block
static void softmax_backward2(const Shape& s, const Buffers& d) {
    const long rows = (long)s.heads() * s.T;
    LAUNCH(softmax_backward_kernel2, ceil_div(rows, d.block / 32), d.block, 0, 0)(d.ds, d.dp, d.att, (int)rows, s.T);
    cudaCheckLaunch();
}

static void permute2(const Shape& s, const Buffers& d) {
    LAUNCH(permute_backward_kernel2, ceil_div((long)s.B * s.T * 3 * s.C(), d.block), d.block, 0, 0)(d.dqkv, d.dq, d.dk, d.dv,
                                                                                                   s.B, s.T, s.NH, s.HS);
    cudaCheckLaunch();
}

static void attention_backward2(Buffers& d, const Shape& s, const Fault&) {
    unpermute2(s, d);
    gemm_cublas(d.handle, backward_gemm(s, d, G_DP));
    gemm_cublas(d.handle, backward_gemm(s, d, G_DV));
    softmax_backward2(s, d);
    gemm_cublas(d.handle, backward_gemm(s, d, G_DQ));
    gemm_cublas(d.handle, backward_gemm(s, d, G_DK));
    permute2(s, d);
}

// ----------------------------------------------------------------------------
// version 3: version 2 + abft.cuh's check and correction after each GEMM, as the trainer runs them

static void protected_gemm(const Shape& s, Buffers& d, int which, const Fault& f) {
    const AbftGemm g = backward_gemm(s, d, which);
    gemm_cublas(d.handle, g);
    inject_fault(g, which, f);
    abft_check_gemm(g, &d.abft, &d.tally[which]);
}

static void attention_backward3(Buffers& d, const Shape& s, const Fault& f) {
    unpermute2(s, d);
    protected_gemm(s, d, G_DP, f);
    protected_gemm(s, d, G_DV, f);
    softmax_backward2(s, d);
    protected_gemm(s, d, G_DQ, f);
    protected_gemm(s, d, G_DK, f);
    permute2(s, d);
}

// ----------------------------------------------------------------------------
// version 4: version 3 with the verification of dP fused into the softmax backward
//
// The softmax backward reads every row of dP anyway, so it checks the rows instead of a separate
// pass checking the columns. Row i of dP = dY·Vᵀ sums to dY_i·(Vᵀe), i.e. the extra column
// dP would have if V were augmented with the row e·V (and the bound the same with |dY|, e·|V|):
// one dot product of length HS per row, where the column check re-reads all of dP. A flagged
// head goes through abft.cuh's correction and check, as in version 3, then dS is recomputed.

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

// One warp per row of dP: checks the whole row against dY_i·(e·V) (abft_check_columns' rule on a
// row, the sums taken across lanes), flags the head in abft.cuh's flags and counts the row in its
// counter, and writes the row of dS as softmax_backward_kernel2 does.
__global__ void softmax_backward_verify_kernel4(float* ds, const float* dp, const float* att, const float* dy,
                                                const float* vsum, const float* vabs, int* flags, int* counter, int rows,
                                                int T, int HS, float tau) {
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
    const float tol = abft_tolerance(tau, HS, T, bnd);
    const bool clean = abft_line_matches(sum, abssum, chk, bnd, tol);
    if (lane == 0 && !clean) {
        atomicAdd(&flags[bh], 1);
        atomicAdd(counter, 1);
    }
    for (int j = lane; j < T; j += 32) { ds[row * T + j] = j <= t ? p[j] * (g[j] - dot) : 0.0f; }
}

static void attention_backward4(Buffers& d, const Shape& s, const Fault& f) {
    const long rows = (long)s.heads() * s.T;
    unpermute2(s, d);
    const AbftGemm g = backward_gemm(s, d, G_DP);
    gemm_cublas(d.handle, g);
    inject_fault(g, G_DP, f);
    LAUNCH(abft_vsum_kernel, ceil_div((long)s.heads() * s.HS, d.block), d.block, 0, 0)(d.v, d.vsum, d.vabs, s.heads(), s.T,
                                                                                       s.HS);
    cudaCheckLaunch();
    // the flags and the counter abft_gpu_repair and the host read, set by the fused check
    abft_gpu_reserve(&d.abft, g);
    cudaCheck(cudaMemset(d.abft.flags, 0, g.batch * sizeof(int)));
    cudaCheck(cudaMemset(d.abft.counter, 0, sizeof(int)));
    LAUNCH(softmax_backward_verify_kernel4, ceil_div(rows, d.block / 32), d.block, 0, 0)(
        d.ds, d.dp, d.att, d.dy, d.vsum, d.vabs, d.abft.flags, d.abft.counter, (int)rows, s.T, s.HS, AbftConfig().tau);
    cudaCheckLaunch();
    if (host_copy(d.abft.counter, 1)[0] > 0) {
        abft_correct_and_recheck(g, &d.abft, &d.tally[G_DP]);
        softmax_backward2(s, d); // dS again, from the repaired dP
    }
    // dV reads dY and P only, so it can come after the softmax backward
    protected_gemm(s, d, G_DV, f);
    protected_gemm(s, d, G_DQ, f);
    protected_gemm(s, d, G_DK, f);
    permute2(s, d);
}

// ----------------------------------------------------------------------------
// the table of versions: a new version is a function above plus a row here

typedef Version<void (*)(Buffers&, const Shape&, const Fault&)> BackwardVersion;

static const BackwardVersion versions[] = {
    {1, "naive", attention_backward1, ABFT_NONE, true, "plain-loop threads, a generic GEMM kernel, no cuBLAS"},
    {2, "cublas", attention_backward2, ABFT_NONE, true, "cuBLAS GEMMs, warp-per-row softmax backward: the baseline"},
    {3, "abft-trainer", attention_backward3, ABFT_CORRECTS, true,
     "2 + abft.cuh's abft_gpu_check/abft_gpu_repair as the trainer calls them (its kernels: fixed blocks)"},
    {4, "abft-fused-dp", attention_backward4, ABFT_CORRECTS, true, "3 with dP's check fused into the softmax backward"},
};
constexpr int kBaseline = 2; // the benchmark's ratios are to this version

// ----------------------------------------------------------------------------
// validation

// Tolerance: fp32 everywhere, the GPU sums in another order than the reference (reductions
// of length HS and T <= 1024; rounding error grows about as u·√K ≈ 2e-6 relative to the
// magnitudes summed, and dS subtracts nearly equal numbers). 1e-4 of (1 + |ref|) leaves room
// for that yet fails any indexing or transpose mistake, which gives O(1) errors.
constexpr float kTol = 1e-4f;
// A repaired element is rebuilt as checksum − sum of the other M−1 elements of its line, so
// it carries their rounding errors too (about √M times one element's); still far below 1e-3.
constexpr float kTolRepaired = 1e-3f;

// Runs a version with every buffer it writes poisoned first (an element it forgot fails
// validation) and the tallies reset.
static void run(const BackwardVersion& v, Buffers& d, const Shape& s, const Fault& f) {
    const size_t hds = (size_t)s.heads() * s.hd(), tts = (size_t)s.heads() * s.tt();
    for (float* p : {d.dy, d.dq, d.dk, d.dv}) { poison(p, hds); }
    poison(d.dp, tts);
    poison(d.ds, tts);
    poison(d.dqkv, (size_t)s.B * s.T * 3 * s.C());
    for (AbftTally& t : d.tally) { t = AbftTally{}; }
    v.run(d, s, f);
    cudaCheck(cudaDeviceSynchronize());
}

static int alarms(const Buffers& d) {
    int n = 0;
    for (const AbftTally& t : d.tally) { n += t.alarms(); }
    return n;
}

// Where abft_inject would put a fault: a live element (j <= i where only the causal part is read)
static Fault pick_fault(const AbftGemm& g, int which, int type, int pattern, uint64_t* rng) {
    Fault f = {which, type, pattern, 0, 0, 0};
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
static void test_faults(const BackwardVersion& v, Buffers& d, const Shape& s, const std::vector<float>& ref) {
    uint64_t rng = 12345;
    for (int which = 0; which < G_NUM; which++) {
        const AbftGemm g = backward_gemm(s, d, which);
        int runs = 0, good = 0;
        double worst_all = 0.0; // the largest dqkv error after a repair, to compare with the tolerance
        for (int type = 0; type < FAULT_NUM_TYPES; type++) {
            for (int pattern = PATTERN_0D; pattern <= PATTERN_COL; pattern++) {
                const Fault f = pick_fault(g, which, type, pattern, &rng);
                run(v, d, s, f);
                const AbftTally& t = d.tally[which];
                const int by_path = pattern == PATTERN_COL ? t.by_rows : t.by_columns;
                bool ok = t.detected == 1 && by_path == 1 && t.corrected() == 1 && t.unfixed == 0;
                for (int other = 0; other < G_NUM; other++) { ok &= other == which || d.tally[other].detected == 0; }
                double worst = 0.0;
                const bool same = count_mismatches(d.dqkv, ref, kTolRepaired, &worst) == 0;
                if (!(ok && same)) {
                    printf("  %s %s %s at (%d, %d, %d): detected %d, by columns %d, by rows %d, unfixed %d, dqkv %s (max abs error %.2e)\n",
                           gemm_names[which], abft_fault_type_names[type], abft_pattern_names[pattern], f.b, f.i, f.j,
                           t.detected, t.by_columns, t.by_rows, t.unfixed, same ? "matches" : "differs", worst);
                }
                runs++;
                good += ok && same;
                if (!(worst <= worst_all)) { worst_all = worst; }
            }
        }
        char what[200];
        snprintf(what, sizeof(what), "v%d %s: %d/%d faults (5 types x 0-D/row/col) detected, repaired, dqkv matches (max abs error %.2e, tol %.0e)",
                 v.number, gemm_names[which], good, runs, worst_all, kTolRepaired);
        check(good == runs, what);
        // 2-D: beyond the checksums, must be detected and reported, never silently "repaired"
        const Fault f = pick_fault(g, which, FAULT_INF, PATTERN_2D, &rng);
        run(v, d, s, f);
        snprintf(what, sizeof(what), "v%d %s: 2-D fault detected and reported beyond the checksums", v.number, gemm_names[which]);
        check(d.tally[which].detected == 1 && d.tally[which].unfixed == 1, what);
    }
}

static void validate_version(const BackwardVersion& v, Buffers& d, const Shape& s, const std::vector<float>& ref,
                             const Args& a) {
    char name[160];
    d.block = a.block_size;
    run(v, d, s, kNoFault);
    snprintf(name, sizeof(name), "v%d dqkv (block %d)", v.number, d.block);
    validate_result(d.dqkv, ref, name, kTol);
    int n_alarms = alarms(d);
    snprintf(name, sizeof(name), "v%d dqkv", v.number);
    n_alarms += validate_other_block_sizes(a, v, name, d.dqkv, ref, kTol, [&](int block) {
        d.block = block;
        run(v, d, s, kNoFault);
        return alarms(d);
    });
    d.block = a.block_size;
    if (v.abft == ABFT_NONE) { return; }
    snprintf(name, sizeof(name), "v%d: no alarm on the fault-free run", v.number);
    check(n_alarms == 0, name);
    test_faults(v, d, s, ref);
}

// ----------------------------------------------------------------------------
// main

int main(int argc, char** argv) {
    const Args a = parse_args(argc, argv, versions);
    cuda_require_device();
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

    Buffers d = {};
    d.datty = device_copy(datty);
    d.q = device_copy(q); d.k = device_copy(k); d.v = device_copy(v);
    d.att = device_copy(att);
    d.dy = device_alloc(hds); d.dq = device_alloc(hds); d.dk = device_alloc(hds); d.dv = device_alloc(hds);
    d.dp = device_alloc(tts); d.ds = device_alloc(tts);
    d.dqkv = device_alloc(nout);
    d.vsum = device_alloc((size_t)s.heads() * s.HS); d.vabs = device_alloc((size_t)s.heads() * s.HS);
    cublasCheck(cublasCreate(&d.handle));
    d.block = a.block_size;

    for (const BackwardVersion& ver : versions) {
        if (selected(a, ver.number)) { validate_version(ver, d, s, ref, a); }
    }

    if (on_real_gpu()) {
        benchmark_versions("attention_backward", a, versions, kBaseline, [&](const BackwardVersion& ver, int block) {
            d.block = block;
            ver.run(d, s, kNoFault);
        });
    }

    cublasCheck(cublasDestroy(d.handle));
    for (float* p : {d.datty, d.q, d.k, d.v, d.att, d.dy, d.dq, d.dk, d.dv, d.dp, d.ds, d.dqkv, d.vsum, d.vabs}) {
        cudaCheck(cudaFree(p));
    }
    abft_gpu_free(&d.abft);
    return finish();
}
