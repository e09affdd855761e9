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
// Build and run (dev/cuda/README.md):
//   cd dev/cuda && make attention_forward && ./attention_forward [version] [block_size]   (GPU)
//   cd dev/cuda && make attention_forward_cpu && ./attention_forward_cpu [version] [block_size]
// version 0 (the default) runs every version; block_size (threads per block of the handwritten
// kernels, a multiple of 32 up to 1024) defaults to 256, and without one every size of 64..1024
// is validated too (and, on a GPU, benchmarked). Shapes: on a GPU, GPT-2 124M (B=8, T=1024,
// NH=12, HS=64), validated then benchmarked (median of 20, ratio to version 2); under the
// harness, a small odd shape (B=2, T=37, NH=3, HS=16) and a longer one with GPT-2's head size
// (B=1, T=131, NH=3, HS=64), validated only.
//
// Versions (the table `versions` at the end of the file):
//   1 naive: one kernel per step, one thread per output element with a plain loop, no cuBLAS, no ABFT.
//   2 cuBLAS: permute, softmax (one warp per row, shuffles) and unpermute kernels, the two GEMMs
//     with cublasSgemmStridedBatched. The baseline of the ABFT versions.
//   3 THE TRAINER'S: version 2 + abft.cuh's device path after each GEMM, called as llmc/abft_gpu.cuh's
//     abft_gpu_verify calls it: abft_gpu_encode_verify (column checksums from the operands, the
//     output's column sums, the comparison), and where the device counter says an entry is
//     faulty, abft_gpu_repair (fp64 checksums, one element per column or per row rebuilt) and
//     the check again.
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
// injector does: each must be detected, version 3 must also return the fault-free atty, and
// fault-free runs must raise no alarm. The mismatch tolerance is abft.cuh's (abft_tolerance,
// AbftConfig's tau = 2, with the |A|·|B| bound), so fault-free fp32 runs never alarm.
#include "dev/cuda/common.h" // and abft.cuh

// ----------------------------------------------------------------------------
// the problem

struct Shape {
    int B, T, NH, HS;
    int C() const { return NH * HS; }
    int BNH() const { return B * NH; }
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

// The row check of versions 4 and 5: a row is clean when its sum matches the checksum and its
// absolute sum stays within the |A|·|B| bound (abft_check_columns's rule, on rows). K is the
// GEMM's reduction length, n the row length.
__device__ inline bool row_is_clean(float sum, float abssum, float chk, float bound, int K, int n, float tau) {
    return abft_line_matches(sum, abssum, chk, bound, abft_tolerance(tau, K, n, bound));
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
__global__ void verify_s_rows_kernel(int* alarms, const float* Saug, const float* Q, const float* ka, int BNH, int T,
                                     int HS, float scale, float tau) {
    const int row = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
    if (row >= BNH * T) { return; }
    const float* s = Saug + (long)row * (T + 1);
    float sum = 0.0f, abssum = 0.0f;
    for (int j = lane; j < T; j += 32) { sum += s[j]; abssum += fabsf(s[j]); }
    sum = warp_sum(sum);
    abssum = warp_sum(abssum);
    const float bound = s_row_bound(Q + (long)row * HS, ka + (long)(row / T) * HS, HS, scale, lane);
    if (lane == 0 && !row_is_clean(sum, abssum, s[T], bound, HS, T, tau)) { atomicAdd(alarms, 1); }
}

// Version 4: one warp per Y row (stride HS+2): Σ_d Y(i,d) against column HS, bound in column HS+1.
__global__ void verify_y_rows_kernel(int* alarms, const float* Yaug, int BNH, int T, int HS, float tau) {
    const int row = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
    if (row >= BNH * T) { return; }
    const float* y = Yaug + (long)row * (HS + 2);
    float sum = 0.0f, abssum = 0.0f;
    for (int d = lane; d < HS; d += 32) { sum += y[d]; abssum += fabsf(y[d]); }
    sum = warp_sum(sum);
    abssum = warp_sum(abssum);
    if (lane == 0 && !row_is_clean(sum, abssum, y[HS], y[HS + 1], T, HS, tau)) { atomicAdd(alarms, 1); }
}

// Version 5: the softmax kernel of version 2 reading Saug (stride T+1), which checks the whole
// row against its checksum column before normalizing the causal part.
__global__ void softmax_check_kernel(float* P, int* alarms, const float* Saug, const float* Q, const float* ka,
                                     int BNH, int T, int HS, float scale, float tau) {
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
    if (lane == 0 && !row_is_clean(sum, abssum, s[T], bound, HS, T, tau)) { atomicAdd(alarms, 1); }
    float esum = 0.0f;
    for (int j = lane; j <= t; j += 32) { esum += expf(s[j] - maxval); }
    const float inv = 1.0f / warp_sum(esum);
    for (int j = lane; j < T; j += 32) { p[j] = j <= t ? expf(s[j] - maxval) * inv : 0.0f; }
}

// Version 5: unpermute by one warp per Y row (bh, t), checking the row while copying it.
__global__ void unpermute_check_kernel(float* out, int* alarms, const float* Yaug, int B, int T, int NH, int HS,
                                       float tau) {
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
    if (lane == 0 && !row_is_clean(sum, abssum, y[HS], y[HS + 1], T, HS, tau)) { atomicAdd(alarms, 1); }
}

// ----------------------------------------------------------------------------
// the buffers and the forward passes

struct Buffers {
    float* qkv;           // (B, T, 3C) input
    float *q, *k, *v;     // (B, NH, T, HS); k (B, NH, T+1, HS) and v (B, NH, T, HS+2) in versions 4-5
    float* S;             // (B, NH, T, T); (B, NH, T, T+1) in versions 4-5
    float* P;             // (B, NH, T, T)
    float* Y;             // (B, NH, T, HS); (B, NH, T, HS+2) in versions 4-5
    float* atty;          // (B, T, C) output
    float* ka;            // (B, NH, HS) e·|K|, versions 4-5
    int* alarms;          // (1) rows flagged by the checks of versions 4-5
    AbftGpuScratch abft;  // version 3: abft.cuh's scratch, as the trainer's
    AbftTally tally;      // version 3: what its checks found
    cublasHandle_t cublas;
    int block;            // threads per block of the handwritten kernels
};

static void permute(const Buffers& m, Shape s, long k_head, int v_ld) {
    LAUNCH(permute_kernel, ceil_div((long)s.BNH() * s.T * s.HS, m.block), m.block, 0, 0)(m.q, m.k, m.v, m.qkv, s.B, s.T,
                                                                                          s.NH, s.HS, k_head, v_ld);
    cudaCheckLaunch();
}

static void unpermute(const Buffers& m, Shape s, int y_ld) {
    LAUNCH(unpermute_kernel, ceil_div((long)s.BNH() * s.T * s.HS, m.block), m.block, 0, 0)(m.atty, m.Y, s.B, s.T, s.NH,
                                                                                            s.HS, y_ld);
    cudaCheckLaunch();
}

// Blocks for one warp per row of BNH·T rows.
static int warp_rows_grid(const Buffers& m, Shape s) { return ceil_div((long)s.BNH() * s.T * 32, m.block); }

static void forward1(Buffers& m, Shape s, const Fault&) {
    const int BNH = s.BNH(), T = s.T, HS = s.HS, block = m.block;
    permute(m, s, (long)T * HS, HS);
    LAUNCH(qk_naive_kernel, ceil_div((long)BNH * T * T, block), block, 0, 0)(m.S, m.q, m.k, BNH, T, HS, 1.0f / sqrtf((float)HS));
    cudaCheckLaunch();
    LAUNCH(softmax_naive_kernel, ceil_div((long)BNH * T, block), block, 0, 0)(m.P, m.S, BNH, T);
    cudaCheckLaunch();
    LAUNCH(pv_naive_kernel, ceil_div((long)BNH * T * HS, block), block, 0, 0)(m.Y, m.P, m.v, BNH, T, HS);
    cudaCheckLaunch();
    unpermute(m, s, HS);
}

// The two protected GEMMs as abft.cuh describes them (the trainer's heads_gemm). `extra_k` adds
// the checksum row of K, so that S (T, T+1) gets the column S·e (versions 4-5: 1, else 0).
static AbftGemm qk_gemm(const Buffers& m, Shape s, int extra_k) {
    const int N = s.T + extra_k;
    AbftGemm g = {};
    g.M = s.T; g.N = N; g.K = s.HS; g.batch = s.BNH();
    g.A = row_major(m.q, s.HS); g.strideA = (long)s.T * s.HS;
    g.B = transposed(m.k, s.HS); g.strideB = (long)N * s.HS;  // B(k, j) = K[j][k]
    g.C = m.S; g.ldc = N; g.strideC = (long)s.T * N;
    g.alpha = 1.0f / sqrtf((float)s.HS);
    g.bias = nullptr;
    g.causal = true;
    return g;
}

// `extra_v` adds the checksum columns V·e and |V|·e, so that Y (T, HS+2) gets Y·e and its bound
// (versions 4-5: 2, else 0).
static AbftGemm pv_gemm(const Buffers& m, Shape s, int extra_v) {
    const int N = s.HS + extra_v;
    AbftGemm g = {};
    g.M = s.T; g.N = N; g.K = s.T; g.batch = s.BNH();
    g.A = row_major(m.P, s.T); g.strideA = (long)s.T * s.T;
    g.B = row_major(m.v, N); g.strideB = (long)s.T * N;
    g.C = m.Y; g.ldc = N; g.strideC = (long)s.T * N;
    g.alpha = 1.0f;
    g.bias = nullptr;
    g.causal = false;
    return g;
}

// An augmented GEMM's output without its checksum columns: where a fault may land.
static AbftGemm data_columns(AbftGemm g, int n) {
    g.N = n;
    return g;
}

static void softmax_warp(const Buffers& m, Shape s, int s_ld) {
    LAUNCH(softmax_warp_kernel, warp_rows_grid(m, s), m.block, 0, 0)(m.P, m.S, s.BNH(), s.T, s_ld);
    cudaCheckLaunch();
}

static void forward2(Buffers& m, Shape s, const Fault&) {
    permute(m, s, (long)s.T * s.HS, s.HS);
    gemm_cublas(m.cublas, qk_gemm(m, s, 0));
    softmax_warp(m, s, s.T);
    gemm_cublas(m.cublas, pv_gemm(m, s, 0));
    unpermute(m, s, s.HS);
}

// The trainer's: each GEMM, then abft.cuh's check and, on a detection, its correction.
static void forward3(Buffers& m, Shape s, const Fault& f) {
    permute(m, s, (long)s.T * s.HS, s.HS);
    const AbftGemm qk = qk_gemm(m, s, 0);
    gemm_cublas(m.cublas, qk);
    inject_fault(qk, OP_QK, f);
    abft_check_gemm(qk, &m.abft, &m.tally);
    softmax_warp(m, s, s.T);
    const AbftGemm pv = pv_gemm(m, s, 0);
    gemm_cublas(m.cublas, pv);
    inject_fault(pv, OP_PV, f);
    abft_check_gemm(pv, &m.abft, &m.tally);
    unpermute(m, s, s.HS);
}

// Versions 4-5 up to the first GEMM: Q, the augmented K (checksum row) and V (checksum columns).
static void permute_augmented(const Buffers& m, Shape s) {
    const int BNH = s.BNH(), T = s.T, HS = s.HS;
    permute(m, s, (long)(T + 1) * HS, HS + 2);
    LAUNCH(encode_k_kernel, ceil_div((long)BNH * HS, m.block), m.block, 0, 0)(m.k, m.ka, BNH, T, HS);
    cudaCheckLaunch();
    LAUNCH(encode_v_kernel, ceil_div((long)BNH * T, m.block), m.block, 0, 0)(m.v, BNH, T, HS);
    cudaCheckLaunch();
}

static void forward4(Buffers& m, Shape s, const Fault& f) {
    const int BNH = s.BNH(), T = s.T, HS = s.HS;
    const float scale = 1.0f / sqrtf((float)HS), tau = AbftConfig().tau;
    permute_augmented(m, s);
    const AbftGemm qk = qk_gemm(m, s, 1);                                       // Saug (BNH, T, T+1)
    gemm_cublas(m.cublas, qk);
    inject_fault(data_columns(qk, T), OP_QK, f);
    LAUNCH(verify_s_rows_kernel, warp_rows_grid(m, s), m.block, 0, 0)(m.alarms, m.S, m.q, m.ka, BNH, T, HS, scale, tau);
    cudaCheckLaunch();
    softmax_warp(m, s, T + 1);
    const AbftGemm pv = pv_gemm(m, s, 2);                                       // Yaug (BNH, T, HS+2)
    gemm_cublas(m.cublas, pv);
    inject_fault(data_columns(pv, HS), OP_PV, f);
    LAUNCH(verify_y_rows_kernel, warp_rows_grid(m, s), m.block, 0, 0)(m.alarms, m.Y, BNH, T, HS, tau);
    cudaCheckLaunch();
    unpermute(m, s, HS + 2);
}

static void forward5(Buffers& m, Shape s, const Fault& f) {
    const int BNH = s.BNH(), T = s.T, HS = s.HS;
    const float scale = 1.0f / sqrtf((float)HS), tau = AbftConfig().tau;
    permute_augmented(m, s);
    const AbftGemm qk = qk_gemm(m, s, 1);
    gemm_cublas(m.cublas, qk);
    inject_fault(data_columns(qk, T), OP_QK, f);
    LAUNCH(softmax_check_kernel, warp_rows_grid(m, s), m.block, 0, 0)(m.P, m.alarms, m.S, m.q, m.ka, BNH, T, HS, scale, tau);
    cudaCheckLaunch();
    const AbftGemm pv = pv_gemm(m, s, 2);
    gemm_cublas(m.cublas, pv);
    inject_fault(data_columns(pv, HS), OP_PV, f);
    LAUNCH(unpermute_check_kernel, warp_rows_grid(m, s), m.block, 0, 0)(m.atty, m.alarms, m.Y, s.B, T, s.NH, HS, tau);
    cudaCheckLaunch();
}

// ----------------------------------------------------------------------------
// the table of versions: a new version is a function above plus a row here

typedef Version<void (*)(Buffers&, Shape, const Fault&)> ForwardVersion;

static const ForwardVersion versions[] = {
    {1, "naive", forward1, ABFT_NONE, true, "one plain-loop kernel per step, no cuBLAS"},
    {2, "cublas", forward2, ABFT_NONE, true, "cuBLAS GEMMs, warp-per-row softmax: the baseline"},
    {3, "abft-trainer", forward3, ABFT_CORRECTS, true,
     "2 + abft.cuh's abft_gpu_check/abft_gpu_repair as the trainer calls them (its kernels: fixed blocks)"},
    {4, "abft-augmented", forward4, ABFT_DETECTS, true, "checksums from augmented K and V, row checks by separate kernels"},
    {5, "abft-fused", forward5, ABFT_DETECTS, true, "4 with the row checks fused into softmax and unpermute"},
};
constexpr int kBaseline = 2; // the benchmark's ratios are to this version

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

// What the checks of one run found: version 3's tally, or the rows versions 4-5 flagged.
static AbftTally read_alarms(const Buffers& m) {
    AbftTally t = m.tally;
    t.detected += host_copy(m.alarms, 1)[0];
    return t;
}

static void run(const ForwardVersion& v, Buffers& m, Shape s, const Fault& f) {
    m.tally = AbftTally{};
    cudaCheck(cudaMemset(m.alarms, 0, sizeof(int)));
    poison(m.atty, (size_t)s.B * s.T * s.C());
    v.run(m, s, f);
    cudaCheck(cudaDeviceSynchronize());
}

// Where a fault lands: spread over heads and positions by its type and pattern; in S a live
// element (j <= i), as the trainer's injector picks for causal outputs.
static Fault make_fault(int op, int type, int pattern, Shape s) {
    Fault f = {op, type, pattern, 0, 0, 0};
    f.b = (3 * type + pattern + 1) % s.BNH();
    f.i = (s.T * (type + 2)) / 8 % s.T;
    const int N = op == OP_QK ? f.i + 1 : s.HS;
    f.j = (7 * type + 3 * pattern + 1) % N;
    return f;
}

static void validate_version(const ForwardVersion& v, Buffers& m, Shape s, const std::vector<float>& ref, const Args& a) {
    char name[200];
    m.block = a.block_size;
    run(v, m, s, kNoFault);
    snprintf(name, sizeof(name), "version %d %s atty (block %d)", v.number, v.name, m.block);
    validate_result(m.atty, ref, name, kTol);
    int alarms = read_alarms(m).alarms();
    snprintf(name, sizeof(name), "version %d %s atty", v.number, v.name);
    alarms += validate_other_block_sizes(a, v, name, m.atty, ref, kTol, [&](int block) {
        m.block = block;
        run(v, m, s, kNoFault);
        return read_alarms(m).alarms();
    });
    m.block = a.block_size;
    if (v.abft == ABFT_NONE) { return; }
    snprintf(name, sizeof(name), "version %d %s: no alarm on a fault-free run (alarms %d)", v.number, v.name, alarms);
    check(alarms == 0, name);
    // faults: every type and pattern, into S and into Y
    for (int op : {OP_QK, OP_PV}) {
        for (int pattern : {PATTERN_0D, PATTERN_ROW, PATTERN_COL}) {
            int detected_all = 1, corrected_all = 1, runs = 0;
            for (int type = 0; type < FAULT_NUM_TYPES; type++) {
                const Fault f = make_fault(op, type, pattern, s);
                run(v, m, s, f);
                const AbftTally c = read_alarms(m);
                const bool detected = c.detected > 0;
                bool corrected = true;
                if (v.abft == ABFT_CORRECTS) { // atty must be the fault-free one
                    double worst = 0.0;
                    corrected = count_mismatches(m.atty, ref, kTolCorrected, &worst) == 0;
                    corrected &= c.corrected() > 0 && c.unfixed == 0;
                }
                if (!detected || !corrected) {
                    printf("  %s %s fault in %s at head %d row %d col %d: detected %d, corrected %d, unfixable %d%s\n",
                           abft_fault_type_names[type], abft_pattern_names[pattern], abft_op_names[op], f.b, f.i, f.j,
                           c.detected, c.corrected(), c.unfixed, corrected ? "" : ", atty differs from the reference");
                }
                detected_all &= detected;
                corrected_all &= corrected;
                runs++;
            }
            snprintf(name, sizeof(name), "version %d %s: %s faults in %s (%d types) %s", v.number, v.name,
                     abft_pattern_names[pattern], abft_op_names[op], runs,
                     v.abft == ABFT_CORRECTS ? "detected and corrected, atty within 1e-3" : "detected");
            check(detected_all && corrected_all, name);
        }
    }
}

// ----------------------------------------------------------------------------
// main

// Validates the chosen versions on one shape, then (a real GPU) benchmarks them.
static void run_shape(Shape s, const Args& a, bool bench) {
    const int BNH = s.BNH(), T = s.T, HS = s.HS;
    printf("attention forward: B=%d T=%d NH=%d HS=%d (C=%d)\n", s.B, T, s.NH, HS, s.C());

    const std::vector<float> qkv = make_random_float((size_t)s.B * T * 3 * s.C(), 42 + T);
    const std::vector<float> ref = attention_reference(qkv, s);

    // sized for the augmented layouts of versions 4-5, which the others fit in
    Buffers m = {};
    m.qkv = device_copy(qkv);
    m.q = device_alloc((size_t)BNH * T * HS);
    m.k = device_alloc((size_t)BNH * (T + 1) * HS);
    m.v = device_alloc((size_t)BNH * T * (HS + 2));
    m.S = device_alloc((size_t)BNH * T * (T + 1));
    m.P = device_alloc((size_t)BNH * T * T);
    m.Y = device_alloc((size_t)BNH * T * (HS + 2));
    m.atty = device_alloc((size_t)s.B * T * s.C());
    m.ka = device_alloc((size_t)BNH * HS);
    cudaCheck(cudaMalloc(&m.alarms, sizeof(int)));
    cublasCheck(cublasCreate(&m.cublas));
    m.block = a.block_size;

    for (const ForwardVersion& v : versions) {
        if (selected(a, v.number)) { validate_version(v, m, s, ref, a); }
    }

    if (bench) {
        benchmark_versions("attention_forward", a, versions, kBaseline, [&](const ForwardVersion& v, int block) {
            m.block = block;
            v.run(m, s, kNoFault);
        });
    }

    cublasCheck(cublasDestroy(m.cublas));
    for (float* p : {m.qkv, m.q, m.k, m.v, m.S, m.P, m.Y, m.atty, m.ka}) { cudaCheck(cudaFree(p)); }
    cudaCheck(cudaFree(m.alarms));
    abft_gpu_free(&m.abft);
}

int main(int argc, char** argv) {
    const Args a = parse_args(argc, argv, versions);
    cuda_require_device();
    if (on_real_gpu()) {
        run_shape(Shape{8, 1024, 12, 64}, a, true); // GPT-2 124M: B=8, T=1024, 12 heads of 64
    } else {
        // the harness: small and odd (T not a multiple of 4 or 32, NH = 3), then GPT-2's head size
        // with a longer T, so the tolerances meet longer reductions
        run_shape(Shape{2, 37, 3, 16}, a, false);
        run_shape(Shape{1, 131, 3, 64}, a, false);
    }
    return finish();
}
