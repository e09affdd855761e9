// train_gpt2.cu: GPT-2 training on one GPU with ATTNChecker inside the attention passes.
//
// The same model, flags, file formats and training program as the CPU trainer
// (train_gpt2.cpp): handwritten kernels for the layers, cuBLASLt for the linear layers (the
// bias fused as an epilogue), cuBLAS strided batched GEMMs for the attention heads, in bf16
// with fp32 accumulation and fp32 master weights (the default build, as llm.c's), or in fp32
// (PRECISION=FP32: TF32 tensor-core math on GPUs that have it, sm_80 and later; -tf32 0 turns
// it off). The 4
// forward and 8 backward GEMMs of every attention layer run under ATTNChecker: abft.cuh's GPU
// path (llmc/abft_gpu.cuh) queues each check in stream order, mostly inside the kernel that
// reads the GEMM's output next (the permute, softmax, unpermute, residual add and layernorm
// backward compare the rows they read with checksums formed upstream), and the kernel that
// finds a faulty row (or column) recomputes its faulty elements in place before it goes on:
// a fault costs no launch. The host reads the verdicts when it waits for the GPU anyway (the
// losses' copy, the step's closing wait: gpt2_settle), and the update queued before that is
// skipped on the device if a fault was left: ABFT adds no wait. A fault that stays after its
// fix makes the pass run again from the same state with every verdict read at once (the
// checksums' repair, abft.cuh's), so that it climbs the ladder
// shared with the CPU trainer: recompute the GEMM, recompute the layer (llmc/gpt2_block.h),
// redo the step (llmc/trainer.h).
//
// Reading path, from the bottom of this file to a repaired GEMM:
//   main → run_program → train → train_step → gpt2_train_step → gpt2_passes (llmc/trainer.h)
//        → gpt2_forward (here) → block_forward → attention_forward (llmc/gpt2_block.h)
//        → protected_gemm (here) → abft_gemm (abft.cuh) → abft_gpu_verify (llmc/abft_gpu.cuh)
//        → the reader (e.g. softmax_forward, here) → abft_reader_check_warp, which fixes a faulty
//          row in place (abft_fix_element: llmc/abft_gpu.cuh); after the step's wait
//          gpt2_settle (here)
//        → abft_gpu_settle
//
//   make train_gpt2cu && ./train_gpt2cu -h
//
// One source, two builds (llmc/cuda_common.h): nvcc for a GPU, and g++ -DCUDA_CPU_HARNESS,
// where every kernel runs on the CPU through dev/harness with CUDA's semantics; that is how
// test_gpt2.cu checks this file in CI, where there is no GPU.
//
// Activations, parameters as the passes read them, their gradients and the GEMMs' operands are
// floatX (llmc/precision.h): __nv_bfloat16 with -DENABLE_BF16, else float. The statistics,
// losses, checksums, AdamW moments and the master parameters (params_memory itself in fp32)
// are float; AdamW writes the floatX copy from the masters.
//
// Every kernel writes its outputs without atomics on floats, so that two runs are
// bit-identical. Parameter gradients are written, not accumulated, as on the CPU; wte is
// written by the LM head and then added to by the embedding backward.
#include "llmc/cuda_common.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "abft.cuh"
#include "llmc/checkpoint.h"
#include "llmc/gpt2_model.h"
#include "llmc/optimizer.h"
#include "llmc/precision.h"
#include "llmc/ranks.h"
#include "llmc/utils.h"

// ----------------------------------------------------------------------------
// small device helpers

constexpr int BLOCK = 256;        // threads per block of the elementwise kernels

static int blocks_for(long n, int per_block) { return (int)((n + per_block - 1) / per_block); }

// Sum (or max) over a block whose size is a multiple of 32 (warp_sum, warp_max: cuda_common.h);
// every thread gets the result.
// A fixed reduction tree, so the result does not depend on timing.
__device__ inline float block_reduce(float x, bool is_max) {
    __shared__ float part[32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    x = is_max ? warp_max(x) : warp_sum(x);
    if (lane == 0) { part[warp] = x; }
    __syncthreads();
    float y = lane < warps ? part[lane] : (is_max ? -INFINITY : 0.0f);
    y = is_max ? warp_max(y) : warp_sum(y);
    __syncthreads(); // part[] is reused by the next call
    return y;
}

// The index of the warp this thread belongs to over the whole grid, and its lane.
__device__ inline long global_warp() { return ((long)blockIdx.x * blockDim.x + threadIdx.x) / 32; }

// A row or value that broke its kernel's invariant again after its recompute: counted, and the
// pass's gate raised (deferred on the GPU: the update queued after the pass must not run).
__device__ void kernel_failed_again(const AbftKernelCheck& k) {
    atomicAdd(&k.verdict[1], 1);
    if (k.gate != nullptr) { atomicExch(k.gate, k.gate_pass); }
}

// A row of a kernel checked by its invariant (llmc/abft_invariants.h), by one warp: row(fault)
// computes it (with the fault, if any) and returns the residual of its invariant; a row beyond
// k.tau is recomputed (without the fault, unless it stays: k.refault). Both go to k's verdict.
template <typename Row>
__device__ void checked_row(const AbftKernelCheck& k, Row row) {
    if (row(k.fault) <= k.tau || !k.on) { return; }
    const bool lane0 = threadIdx.x % 32 == 0;
    if (lane0) { atomicAdd(&k.verdict[0], 1); }
    if (!(row(k.refault) <= k.tau) && lane0) { kernel_failed_again(k); }
}

// The same for element i of an elementwise kernel: compute() gives it, residual(y) judges it.
template <typename Compute, typename Residual>
__device__ float checked_value(const AbftKernelCheck& k, long i, Compute compute, Residual residual) {
    const float y = abft_kernel_fault_apply_at(k.fault, i, compute());
    if (!k.on || residual(y) <= k.tau) { return y; }
    atomicAdd(&k.verdict[0], 1);
    const float again = abft_kernel_fault_apply_at(k.refault, i, compute());
    if (!(residual(again) <= k.tau)) { kernel_failed_again(k); }
    return again;
}

// ----------------------------------------------------------------------------
// kernels: embedding, layernorm, GELU, residual, bias gradient
// B = batch, T = sequence length, C = channels, V = vocab, NH = heads, HS = head size

// out (B,T,C) = wte[inp] + wpe[t]. One thread per element.
__global__ void encoder_forward_kernel(floatX* out, const int* inp, const floatX* wte, const floatX* wpe, int B, int T, int C) {
    const long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)B * T * C) { return; }
    const long bt = idx / C;
    const int c = (int)(idx % C), t = (int)(bt % T);
    out[idx] = (floatX)((float)wte[(long)inp[bt] * C + c] + (float)wpe[(long)t * C + c]);
}

// dwpe (T,C) = Σ_b dout[b,t]: written. One thread per element of dwpe.
__global__ void encoder_backward_wpe_kernel(floatX* dwpe, const floatX* dout, int B, int T, int C) {
    const long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)T * C) { return; }
    float s = 0.0f;
    for (int b = 0; b < B; b++) { s += (float)dout[(long)b * T * C + idx]; }
    dwpe[idx] = (floatX)s;
}

// dwte[token] += Σ dout[p] over the positions p holding the token. Two positions may hold the
// same token: each token's positions are added by one thread per channel, in increasing order,
// so the sums are bit-reproducible without atomics. grid (ceil(C/BLOCK), distinct tokens).
__global__ void encoder_backward_wte_kernel(floatX* dwte, const floatX* dout, const int* tokens, const int* offsets,
                                            const int* positions, int C) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x, u = blockIdx.y;
    if (c >= C) { return; }
    floatX* d = dwte + (long)tokens[u] * C + c;
    float s = (float)*d;
    for (int i = offsets[u]; i < offsets[u + 1]; i++) { s += (float)dout[(long)positions[i] * C + c]; }
    *d = (floatX)s;
}

// Row `row` of out = (x - mean) · rstd · weight + bias, by one warp, with the fault (-fi
// ln1/ln2/lnf) in the normalized values; mean and rstd kept, and, when sums.chk is given, what
// the checks of the GEMMs that read out need (AbftRowSums). The residual of the normalized
// row's invariant (mean 0, variance 1 − eps·rstd²).
__device__ float layernorm_forward_row(floatX* out, float* mean, float* rstd, const floatX* inp, const floatX* weight,
                                       const floatX* bias, long row, int C, const AbftRowSums& sums,
                                       const AbftKernelFault& fault) {
    const int lane = threadIdx.x % 32;
    const float eps = 1e-5f;
    const floatX* x = inp + row * C;
    float s = 0.0f;
    for (int i = lane; i < C; i += 32) { s += (float)x[i]; }
    const float m = warp_sum(s) / C;
    float v = 0.0f;
    for (int i = lane; i < C; i += 32) { float d = (float)x[i] - m; v += d * d; }
    const float r = 1.0f / sqrtf(warp_sum(v) / C + eps);
    floatX* o = out + row * C;
    AbftRowAccumulator acc;
    float sum_n = 0.0f, sum_n2 = 0.0f;
    for (int i = lane; i < C; i += 32) {
        const float n = abft_kernel_fault_apply(fault, row, i, r * ((float)x[i] - m));
        const floatX y = (floatX)(n * (float)weight[i] + (float)bias[i]);
        o[i] = y;
        if (sums.chk != nullptr) { acc.add((float)y, sums, i); } // of what the GEMM reads
        sum_n += n;
        sum_n2 += n * n;
    }
    if (lane == 0) { mean[row] = m; rstd[row] = r; }
    if (sums.chk != nullptr) { acc.store(sums, row); }
    return abft_layernorm_residual(warp_sum(sum_n), warp_sum(sum_n2), m, r, eps, C);
}

// one warp per row of C
__global__ void layernorm_forward_kernel(floatX* out, float* mean, float* rstd, const floatX* inp, const floatX* weight,
                                         const floatX* bias, int rows, int C, AbftRowSums sums, AbftKernelCheck k) {
    const long row = global_warp();
    if (row >= rows) { return; } // whole warps leave together: blockDim is a multiple of 32
    checked_row(k, [&](const AbftKernelFault& fault) {
        return layernorm_forward_row(out, mean, rstd, inp, weight, bias, row, C, sums, fault);
    });
}

// This lane's sums over row `row` for the layernorm backward: Σ weight·dout and Σ weight·dout·norm
// (sums[0], sums[1]), and Σ dout, Σ |dout| for dout's check (sums[2], sums[3]).
__device__ void layernorm_backward_lane_sums(const floatX* d, const floatX* x, const floatX* weight, float m, float s, int C,
                                             float sums[4]) {
    sums[0] = sums[1] = sums[2] = sums[3] = 0.0f;
    for (int i = threadIdx.x % 32; i < C; i += 32) {
        const float dnorm = (float)weight[i] * (float)d[i];
        sums[0] += dnorm;
        sums[1] += dnorm * ((float)x[i] - m) * s;
        sums[2] += (float)d[i];
        sums[3] += fabsf((float)d[i]);
    }
}

// Row `row`, by one warp: dinp += (weight·dout − mean(weight·dout) − norm·mean(weight·dout·norm))·rstd;
// with sums.chk, the row checksums of the GEMM that reads dinp (AbftRowSums). When `check` has
// one, dout's row is first checked against its checksum (dln1's check, left to this reader),
// and fixed in place if it fails, before anything is added.
__device__ void layernorm_backward_dinp_row(floatX* dinp, const floatX* dout, const floatX* inp, const floatX* weight,
                                            const float* mean, const float* rstd, long row, int rows, int C,
                                            const AbftRowSums& sums, const AbftReaderCheck& check) {
    const int lane = threadIdx.x % 32;
    const floatX* d = dout + row * C;
    const floatX* x = inp + row * C;
    const float m = mean[row], s = rstd[row];
    float lane_sums[4];
    layernorm_backward_lane_sums(d, x, weight, m, s, C, lane_sums);
    if (abft_reader_check_warp(check, row, rows, C, lane_sums[2], lane_sums[3])) { // fixed: read it again
        layernorm_backward_lane_sums(d, x, weight, m, s, C, lane_sums);
    }
    const float dnorm_mean = warp_sum(lane_sums[0]) / C, dnorm_norm_mean = warp_sum(lane_sums[1]) / C;
    floatX* di = dinp + row * C;
    AbftRowAccumulator acc;
    for (int i = lane; i < C; i += 32) {
        float norm = ((float)x[i] - m) * s;
        di[i] = (floatX)((float)di[i] + ((float)weight[i] * (float)d[i] - dnorm_mean - norm * dnorm_norm_mean) * s);
        if (sums.chk != nullptr) { acc.add((float)di[i], sums, i); }
    }
    if (sums.chk != nullptr) { acc.store(sums, row); } // of dinp after the addition
}

// Rows [r0, r0 + ABFT_PART_ROWS) per block, a warp per row; then, when sums.part is given, the
// block's partial sums for the check of the weight gradient that reads dinp (AbftRowSums).
__global__ void layernorm_backward_dinp_kernel(floatX* dinp, const floatX* dout, const floatX* inp, const floatX* weight,
                                               const float* mean, const float* rstd, int rows, int C, AbftRowSums sums,
                                               AbftReaderCheck check) {
    const long r0 = (long)blockIdx.x * ABFT_PART_ROWS;
    for (long row = r0 + threadIdx.x / 32; row < r0 + ABFT_PART_ROWS && row < rows; row += blockDim.x / 32) {
        layernorm_backward_dinp_row(dinp, dout, inp, weight, mean, rstd, row, rows, C, sums, check);
    }
    if (sums.part == nullptr) { return; }
    __syncthreads(); // the block's rows of dinp are written
    const long r1 = min(r0 + (long)ABFT_PART_ROWS, (long)rows);
    abft_row_sums_part(sums, [=](long i, int c) { return (float)dinp[i * C + c]; }, r0 / ABFT_PART_ROWS, r0, r1, C);
}

// Sums over the rows of (rows, C) matrices, for the bias and layernorm parameter gradients, in
// two deterministic stages: blocks of (32 columns x ROW_CHUNK rows) write partial sums, then
// one thread per column adds its partials in order. (One thread per column over all the rows
// would leave most of a GPU idle: C is 768 where rows are B·T = 8192.)
constexpr int ROW_CHUNK = 256;

// partial_b[chunk][c] = Σ_r dout[r][c] and, with inp, partial_w[chunk][c] = Σ_r dout[r][c] ·
// (inp[r][c] − mean[r]) · rstd[r] (the layernorm weight gradient), over the chunk's rows.
// grid (ceil(C/32), chunks), block (32, 8).
__global__ void column_sums_partial_kernel(float* partial_w, float* partial_b, const floatX* dout, const floatX* inp,
                                           const float* mean, const float* rstd, int rows, int C) {
    __shared__ float part[2][8][32];
    const int c = blockIdx.x * 32 + threadIdx.x, chunk = blockIdx.y;
    const int r1 = min((chunk + 1) * ROW_CHUNK, rows);
    float sw = 0.0f, sb = 0.0f;
    for (int r = chunk * ROW_CHUNK + threadIdx.y; c < C && r < r1; r += 8) {
        float d = (float)dout[(long)r * C + c];
        sb += d;
        if (inp != nullptr) { sw += ((float)inp[(long)r * C + c] - mean[r]) * rstd[r] * d; }
    }
    part[0][threadIdx.y][threadIdx.x] = sw;
    part[1][threadIdx.y][threadIdx.x] = sb;
    __syncthreads();
    if (threadIdx.y != 0 || c >= C) { return; }
    for (int y = 1; y < 8; y++) { sw += part[0][y][threadIdx.x]; sb += part[1][y][threadIdx.x]; }
    if (inp != nullptr) { partial_w[(long)chunk * C + c] = sw; }
    partial_b[(long)chunk * C + c] = sb;
}

// out[c] = Σ_chunk partial[chunk][c], for dweight (if given) and dbias: written.
__global__ void column_sums_final_kernel(floatX* dweight, floatX* dbias, const float* partial_w, const float* partial_b,
                                         int chunks, int C) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) { return; }
    float sw = 0.0f, sb = 0.0f;
    for (int k = 0; k < chunks; k++) {
        if (dweight != nullptr) { sw += partial_w[(long)k * C + c]; }
        sb += partial_b[(long)k * C + c];
    }
    if (dweight != nullptr) { dweight[c] = (floatX)sw; }
    dbias[c] = (floatX)sb;
}

#define GELU_SCALING_FACTOR 0.7978845608028654f // sqrt(2/pi)

__device__ inline float gelu_of(float x) {
    return 0.5f * x * (1.0f + tanhf(GELU_SCALING_FACTOR * (x + 0.044715f * x * x * x)));
}

// out = gelu(inp); a value outside GELU's bounds is recomputed (k.on)
__global__ void gelu_forward_kernel(floatX* out, const floatX* inp, long N, AbftKernelCheck k) {
    const long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= N) { return; }
    const float x = (float)inp[i];
    out[i] = (floatX)checked_value(k, i, [=] { return gelu_of(x); }, [=](float y) { return abft_gelu_residual(x, y); });
}

__global__ void gelu_backward_kernel(floatX* dinp, const floatX* inp, const floatX* dout, long N) {
    const long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= N) { return; }
    float x = (float)inp[i];
    float th = tanhf(GELU_SCALING_FACTOR * (x + 0.044715f * x * x * x));
    float sech2 = 1.0f - th * th;
    float local = 0.5f * (1.0f + th) + 0.5f * x * sech2 * GELU_SCALING_FACTOR * (1.0f + 3.0f * 0.044715f * x * x);
    dinp[i] = (floatX)(local * (float)dout[i]);
}

// This lane's share of row `row` of out = a + b, with the fault (-fi res2/res3): the largest
// residual of the row's invariant (each value a + b to rounding), and b's sums (*s, *sa).
__device__ float residual_forward_lane(floatX* out, const floatX* a, const floatX* b, long row, int C,
                                       const AbftKernelFault& fault, float* s, float* sa) {
    float residual = 0.0f;
    *s = 0.0f;
    *sa = 0.0f;
    for (int c = threadIdx.x % 32; c < C; c += 32) {
        const float x = (float)b[row * C + c], ai = (float)a[row * C + c];
        const float y = abft_kernel_fault_apply(fault, row, c, ai + x);
        out[row * C + c] = (floatX)y;
        residual = fmaxf(residual, abft_add_residual(ai, x, y));
        *s += x;
        *sa += fabsf(x);
    }
    return residual;
}

// Row `row` of out = a + b (rows, C), by one warp: the residual of its invariant. While b's row
// is in registers: its check against its checksum, when `check` has one (the attention
// projection's, left to this reader); a row of b that fails it is fixed in place and the row
// added again.
__device__ float residual_forward_row(floatX* out, const floatX* a, const floatX* b, long row, int rows, int C,
                                      const AbftReaderCheck& check, const AbftKernelFault& fault) {
    float s = 0.0f, sa = 0.0f;
    float residual = residual_forward_lane(out, a, b, row, C, fault, &s, &sa);
    if (abft_reader_check_warp(check, row, rows, C, s, sa)) { // fixed: add it again
        residual = residual_forward_lane(out, a, b, row, C, fault, &s, &sa);
    }
    return warp_max(residual);
}

// one warp per row
__global__ void residual_forward_kernel(floatX* out, const floatX* a, const floatX* b, int rows, int C, AbftReaderCheck check,
                                        AbftKernelCheck k) {
    const long row = global_warp();
    if (row >= rows) { return; }
    checked_row(k, [&](const AbftKernelFault& fault) { return residual_forward_row(out, a, b, row, rows, C, check, fault); });
}

// ----------------------------------------------------------------------------
// kernels: attention's memory ops and softmax around the protected GEMMs

// qkv (B,T,3,NH,HS) -> q, k, v (B,NH,T,HS) at position bt = (b, t), by one block: a warp per
// head (h = warp, warp + warps, ...), its lanes over the HS elements, so reads and writes are
// coalesced. When sums.k_sum is given, also the row sums of K and V (dQ's and P·V's
// checksums). Returns this thread's share of the sums of qkv's row and of |qkv| (*s, *sa).
__device__ void permute_forward_copy(floatX* q, floatX* k, floatX* v, const floatX* qkv, long bt, int T, int NH, int HS,
                                     const AbftLayerSums& sums, float* s, float* sa) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32, C = NH * HS;
    const int t = (int)(bt % T), b = (int)(bt / T);
    float row_sum = 0.0f, row_abs = 0.0f; // of this warp's part of qkv's row
    for (int h = warp; h < NH; h += warps) {
        const floatX* src = qkv + bt * 3 * C + h * HS;
        const long row = ((long)b * NH + h) * T + t;
        float ks = 0.0f, ka = 0.0f, vs = 0.0f, va = 0.0f;
        for (int i = lane; i < HS; i += 32) {
            const float qx = (float)src[i], kx = (float)src[C + i], vx = (float)src[2 * C + i];
            q[row * HS + i] = (floatX)qx;
            k[row * HS + i] = (floatX)kx;
            v[row * HS + i] = (floatX)vx;
            ks += kx; ka += fabsf(kx); vs += vx; va += fabsf(vx);
            row_sum += (qx + kx) + vx;
            row_abs += (fabsf(qx) + fabsf(kx)) + fabsf(vx);
        }
        if (sums.k_sum == nullptr) { continue; }
        ks = warp_sum(ks); ka = warp_sum(ka); vs = warp_sum(vs); va = warp_sum(va);
        if (lane == 0) { sums.k_sum[row] = ks; sums.k_abs[row] = ka; sums.v_sum[row] = vs; sums.v_abs[row] = va; }
    }
    *s = row_sum;
    *sa = row_abs;
}

// The permute at position bt, by one block. While qkv's row is in registers: its check against
// its checksum, when `check` has one (after a sum over the block); a row that fails is fixed in
// place and the position permuted again.
__device__ void permute_forward_position(floatX* q, floatX* k, floatX* v, const floatX* qkv, long bt, int T, int NH, int HS,
                                         const AbftLayerSums& sums, const AbftReaderCheck& check) {
    float s = 0.0f, sa = 0.0f;
    permute_forward_copy(q, k, v, qkv, bt, T, NH, HS, sums, &s, &sa);
    if (check.chk == nullptr) { return; }
    __shared__ float part[2][32]; // the warps' sums (blockDim <= 1024)
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    s = warp_sum(s);
    sa = warp_sum(sa);
    if (lane == 0) { part[0][warp] = s; part[1][warp] = sa; }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < (int)blockDim.x / 32; w++) { s += part[0][w]; sa += part[1][w]; }
    }
    if (abft_reader_check_block(check, bt, (int)gridDim.x, 3 * NH * HS, s, sa)) {
        permute_forward_copy(q, k, v, qkv, bt, T, NH, HS, sums, &s, &sa);
    }
}

// one block per position (b, t)
__global__ void permute_forward_kernel(floatX* q, floatX* k, floatX* v, const floatX* qkv, int T, int NH, int HS,
                                       AbftLayerSums sums, AbftReaderCheck check) {
    permute_forward_position(q, k, v, qkv, blockIdx.x, T, NH, HS, sums, check);
}

// Head h's share of row bt of dqkv (B,T,3C), by one warp: its q, k and v parts copied from dq,
// dk, dv (B,NH,T,HS) and, with sums.chk, added to acc (the piece of the row's checksums that is
// head h's).
__device__ void permute_backward_head(floatX* dqkv, const floatX* dq, const floatX* dk, const floatX* dv, long bt, int h,
                                      int T, int NH, int HS, const AbftRowSums& sums, AbftRowAccumulator* acc) {
    const int C = NH * HS;
    const long row = (bt / T * NH + h) * T + bt % T; // of dq, dk, dv
    for (int which = 0; which < 3; which++) {
        const floatX* src = which == 0 ? dq : which == 1 ? dk : dv;
        for (int i = threadIdx.x % 32; i < HS; i += 32) {
            const int r = which * C + h * HS + i;
            const float x = (float)src[row * HS + i];
            dqkv[bt * 3 * C + r] = (floatX)x;
            if (sums.chk != nullptr) { acc->add(x, sums, r); }
        }
    }
}

// dq, dk, dv (B,NH,T,HS) -> the rows (b, t) of dqkv (B,T,3C) with t in chunk k of
// ABFT_PART_ROWS positions, by one block: a warp per row, a head at a time. Each head's row of
// dq is first checked against its checksum when `check` has one (dQ's check, left to this
// reader), and fixed in place if it fails. While the rows are in registers, when sums.chk is
// given: what the checks of the GEMMs that read dqkv need (AbftRowSums: the row checksums of
// dln1's GEMM, a piece per head, and the block's partial sums for dWqkv's); when dkv_part is
// given, dK's and dV's column sums over the chunk (AbftLayerSums::dkv_part), for their checks.
__device__ void permute_backward_chunk(floatX* dqkv, const floatX* dq, const floatX* dk, const floatX* dv, int b, int k,
                                       int T, int NH, int HS, const AbftRowSums& sums, const AbftReaderCheck& check,
                                       float* dkv_part) {
    const int C = NH * HS, chunks = (T + ABFT_PART_ROWS - 1) / ABFT_PART_ROWS;
    const int t0 = k * ABFT_PART_ROWS, t1 = min(T, t0 + ABFT_PART_ROWS);
    for (int t = t0 + threadIdx.x / 32; t < t1; t += blockDim.x / 32) {
        const long bt = (long)b * T + t;
        for (int h = 0; check.chk != nullptr && h < NH; h++) {
            const long row = ((long)b * NH + h) * T + t; // of dq
            float s = 0.0f, sa = 0.0f;
            abft_lane_sums(dq + row * HS, HS, &s, &sa);
            abft_reader_check_warp(check, row, T, HS, s, sa);
        }
        for (int h = 0; h < NH; h++) {
            AbftRowAccumulator acc;
            permute_backward_head(dqkv, dq, dk, dv, bt, h, T, NH, HS, sums, &acc);
            if (sums.chk != nullptr) { acc.store(sums, bt, h); }
        }
    }
    if (sums.part == nullptr && dkv_part == nullptr) { return; }
    __syncthreads(); // rows of dq fixed by the other warps
    const auto source = [=](long bt, int r) { // from the sources the block has just read
        const int which = r / C, h = r % C / HS, i = r % HS;
        const floatX* src = which == 0 ? dq : which == 1 ? dk : dv;
        return (float)src[((bt / T * NH + h) * T + bt % T) * HS + i];
    };
    const long r0 = (long)b * T + t0, r1 = (long)b * T + t1;
    if (sums.part != nullptr) { abft_row_sums_part(sums, source, (long)b * chunks + k, r0, r1, 3 * C); }
    for (int c = threadIdx.x; dkv_part != nullptr && c < 2 * C; c += blockDim.x) { // dk's columns, then dv's
        const int h = c % C / HS, i = c % HS;
        float s = 0.0f, sa = 0.0f;
        for (long bt = r0; bt < r1; bt++) { const float x = source(bt, C + c); s += x; sa += fabsf(x); }
        float* part = dkv_part + ((((long)b * NH + h) * chunks + k) * 4 + 2 * (c / C)) * HS;
        part[i] = s;
        part[HS + i] = sa;
    }
}

// one block per chunk of positions: grid (B·ceil(T / ABFT_PART_ROWS))
__global__ void permute_backward_kernel(floatX* dqkv, const floatX* dq, const floatX* dk, const floatX* dv, int T, int NH,
                                        int HS, AbftRowSums sums, AbftReaderCheck check, float* dkv_part) {
    const int chunks = (T + ABFT_PART_ROWS - 1) / ABFT_PART_ROWS;
    permute_backward_chunk(dqkv, dq, dk, dv, blockIdx.x / chunks, blockIdx.x % chunks, T, NH, HS, sums, check, dkv_part);
}

// dK's and dV's column checks for head (b, h): the column sums the permute backward left
// (dkv_part) against (e·A)·B (col_chk from upstream, or summed here from e·A), by the fixers of
// the checks held for the permute (either may be absent: g.M == 0). A failing column is fixed
// in place by its thread (abft_fix_column); the permute has already copied it, so the block
// then does the permute's work for head h again over every position of b: the head's share of
// dqkv, its piece of the row checksums and the partial sums of its columns for dWqkv. All of
// that belongs to head (b, h) alone: no other block writes it. grid (B·NH), block (ABFT_TILE,
// ABFT_ROWS).
__global__ void dkv_column_check_kernel(AbftFixer dk_check, AbftFixer dv_check, floatX* dqkv, const floatX* dq,
                                        const floatX* dk, const floatX* dv, int T, int NH, int HS, AbftRowSums sums,
                                        const float* dkv_part) {
    __shared__ int fixed;
    const int bh = blockIdx.x, b = bh / NH, h = bh % NH, C = NH * HS, chunks = (T + ABFT_PART_ROWS - 1) / ABFT_PART_ROWS;
    if (threadIdx.x == 0 && threadIdx.y == 0) { fixed = 0; }
    for (int j0 = 0; j0 < 2 * HS; j0 += ABFT_TILE) { // dK's columns, then dV's
        const int j = j0 + threadIdx.x, which = j / HS, d = j % HS;
        const AbftFixer& f = which == 0 ? dk_check : dv_check;
        const bool active = j < 2 * HS && f.g.M > 0;
        float cs = 0.0f, ca = 0.0f;
        for (int k = threadIdx.y; active && k < chunks; k += ABFT_ROWS) {
            const float* part = dkv_part + (((long)bh * chunks + k) * 4 + 2 * which) * HS;
            cs += part[d];
            ca += part[HS + d];
        }
        abft_reduce_over_warps(&cs, &ca);
        float c = 0.0f, bd = 0.0f; // (e·A)·B_d: from upstream, or summed here
        const bool given = f.g.col_chk != nullptr;
        abft_column_checksum(f.g, bh, active && !given ? d : f.g.N, f.g.a_sum, f.g.a_abs, &c, &bd);
        if (threadIdx.y != 0 || !active) { continue; }
        if (given) { c = f.g.alpha * f.g.col_chk[(long)bh * HS + d]; bd = fabsf(f.g.alpha) * f.g.col_bound[(long)bh * HS + d]; }
        const float tol = abft_tolerance(f.tau, f.g.K, f.g.M, bd, f.operand_u);
        if (!abft_line_matches(cs, ca, c, bd, tol)) {
            abft_fix_column(f, bh, d, c, bd, tol);
            atomicExch(&fixed, 1);
        }
    }
    __syncthreads();
    if (!fixed) { return; } // the whole block leaves
    const int warp = threadIdx.y, warps = blockDim.y, threads = blockDim.x * blockDim.y;
    for (int t = warp; t < T; t += warps) {
        const long bt = (long)b * T + t;
        AbftRowAccumulator acc;
        permute_backward_head(dqkv, dq, dk, dv, bt, h, T, NH, HS, sums, &acc);
        if (sums.chk != nullptr) { acc.store(sums, bt, h); }
    }
    if (sums.part == nullptr) { return; }
    __syncthreads(); // head h's share of dqkv is written
    const auto x = [=](long bt, int r) { return (float)dqkv[bt * 3 * C + r]; };
    for (int u = threadIdx.y * blockDim.x + threadIdx.x; u < chunks * 3 * HS; u += threads) {
        const int k = u / (3 * HS), r = u % (3 * HS) / HS * C + h * HS + u % HS; // of dqkv's columns
        const long r0 = (long)b * T + k * ABFT_PART_ROWS, r1 = (long)b * T + min(T, (k + 1) * ABFT_PART_ROWS);
        abft_row_sums_part_column(sums, x, (long)b * chunks + k, r0, r1, r, 3 * C);
    }
}

// Row (b, t) of out (B,T,C) from y (B,NH,T,HS), by one warp, a head at a time. Each head's row
// of y is first checked against its checksum when `check` has one (P·V's check, left to this
// reader), and fixed in place if it fails. While the rows are in registers, when sums.chk is
// given: what the checks of the GEMMs that read out need (AbftRowSums).
__device__ void unpermute_forward_row(floatX* out, const floatX* y, long bt, int T, int NH, int HS, const AbftRowSums& sums,
                                      const AbftReaderCheck& check) {
    const int lane = threadIdx.x % 32, C = NH * HS;
    const int t = (int)(bt % T), b = (int)(bt / T);
    AbftRowAccumulator acc;
    for (int h = 0; h < NH; h++) {
        const long row = ((long)b * NH + h) * T + t; // of y
        if (check.chk != nullptr) {
            float s = 0.0f, sa = 0.0f;
            abft_lane_sums(y + row * HS, HS, &s, &sa);
            abft_reader_check_warp(check, row, T, HS, s, sa);
        }
        for (int i = lane; i < HS; i += 32) {
            const float x = (float)y[row * HS + i];
            out[bt * C + h * HS + i] = (floatX)x;
            if (sums.chk != nullptr) { acc.add(x, sums, h * HS + i); }
        }
    }
    if (sums.chk != nullptr) { acc.store(sums, bt); }
}

// one warp per row (b, t)
__global__ void unpermute_forward_kernel(floatX* out, const floatX* y, int B, int T, int NH, int HS, AbftRowSums sums,
                                         AbftReaderCheck check) {
    const long bt = global_warp();
    if (bt < (long)B * T) { unpermute_forward_row(out, y, bt, T, NH, HS, sums, check); }
}

// Row (b, t) of dout (B,T,C) into dy (B,NH,T,HS), by one warp; this lane's share of the row's
// sums and of |dout| (*s, *sa).
__device__ void unpermute_backward_copy(floatX* dy, const floatX* dout, long bt, int T, int NH, int HS, float* s, float* sa) {
    const int C = NH * HS, t = (int)(bt % T), b = (int)(bt / T);
    *s = 0.0f;
    *sa = 0.0f;
    for (int c = threadIdx.x % 32; c < C; c += 32) {
        const float x = (float)dout[bt * C + c];
        dy[(((long)b * NH + c / HS) * T + t) * HS + c % HS] = (floatX)x;
        *s += x;
        *sa += fabsf(x);
    }
}

// one warp per row (b, t). While the row is in registers: its check against its checksum, when
// `check` has one (dY's, left to this reader); a row that fails is fixed in place and copied again.
__global__ void unpermute_backward_kernel(floatX* dy, const floatX* dout, int B, int T, int NH, int HS,
                                          AbftReaderCheck check) {
    const long bt = global_warp();
    if (bt >= (long)B * T) { return; }
    float s = 0.0f, sa = 0.0f;
    unpermute_backward_copy(dy, dout, bt, T, NH, HS, &s, &sa);
    if (abft_reader_check_warp(check, bt, B * T, NH * HS, s, sa)) { unpermute_backward_copy(dy, dout, bt, T, NH, HS, &s, &sa); }
}

// This lane's share of the maximum of s[0, n) and of the sums of s and |s| (*sum, *abssum).
__device__ float lane_max_and_sums(const floatX* s, int n, float* sum, float* abssum) {
    float maxval = -INFINITY;
    *sum = 0.0f;
    *abssum = 0.0f;
    for (int j = threadIdx.x % 32; j < n; j += 32) {
        const float sj = (float)s[j];
        maxval = fmaxf(maxval, sj);
        *sum += sj;
        *abssum += fabsf(sj);
    }
    return maxval;
}

// P = causal softmax of row `row` of S (B,NH,T,T), by one warp; zeros above the diagonal so
// that P·V can run over whole rows. While the rows are in registers, for the checks: S's row
// against its checksum (when `check` has one; a row that fails is fixed in place and read
// again), and, when sums.p_sum is given, P's row sum (dV's e·A) and its products with V's row
// sums (P·V's row checksums).
__device__ float softmax_forward_row(floatX* att, const floatX* preatt, long row, int T, const AbftLayerSums& sums,
                                     const AbftReaderCheck& check, const AbftKernelFault& fault) {
    const int lane = threadIdx.x % 32, t = (int)(row % T);
    const long head = row - t; // the head's first row: its V row sums start at sums.v_sum[head]
    const floatX* s = preatt + row * T;
    floatX* p = att + row * T;
    float ssum = 0.0f, sabs = 0.0f;
    float maxval = lane_max_and_sums(s, t + 1, &ssum, &sabs);
    if (abft_reader_check_warp(check, row, T, t + 1, ssum, sabs)) { maxval = lane_max_and_sums(s, t + 1, &ssum, &sabs); }
    maxval = warp_max(maxval);
    float sum = 0.0f;
    for (int j = lane; j <= t; j += 32) { sum += expf((float)s[j] - maxval); }
    const float inv = 1.0f / warp_sum(sum);
    const bool encode = sums.p_sum != nullptr;
    float psum = 0.0f, stored_sum = 0.0f, pv = 0.0f, pva = 0.0f, outside = 0.0f;
    for (int j = lane; j < T; j += 32) {
        const float pj = abft_kernel_fault_apply(fault, row, j, j <= t ? expf((float)s[j] - maxval) * inv : 0.0f);
        const floatX stored = (floatX)pj;
        p[j] = stored;
        psum += pj; // the invariant judges what the kernel computed, the checksums what P·V reads
        outside += !abft_unit_interval(pj);
        if (encode) {
            const float pq = (float)stored;
            stored_sum += pq;
            if (j <= t) { pv += pq * sums.v_sum[head + j]; pva += pq * sums.v_abs[head + j]; }
        }
    }
    psum = warp_sum(psum);
    if (encode) {
        stored_sum = warp_sum(stored_sum); pv = warp_sum(pv); pva = warp_sum(pva);
        if (lane == 0) { sums.p_sum[row] = stored_sum; sums.pv_chk[row] = pv; sums.pv_bound[row] = pva; }
    }
    return abft_softmax_residual(psum, (int)warp_sum(outside), t + 1);
}

// This lane's share of Σ p·dp over [0, n) and of the sums of dp and |dp| (*sum, *abssum).
__device__ float lane_dot_and_sums(const floatX* p, const floatX* dp, int n, float* sum, float* abssum) {
    float dot = 0.0f;
    *sum = 0.0f;
    *abssum = 0.0f;
    for (int j = threadIdx.x % 32; j < n; j += 32) {
        const float dpj = (float)dp[j];
        dot += (float)p[j] * dpj;
        *sum += dpj;
        *abssum += fabsf(dpj);
    }
    return dot;
}

// dS = P · (dP − Σ_k P·dP) on and below the diagonal, 0 above, for row `row`, by one warp.
// While the rows are in registers, for the checks: dP's row against its checksum (when `check`
// has one; a row that fails is fixed in place and read again), and, when sums.ds_sum is given,
// dS's row sums (dK's e·A) and its products with K's row sums (dQ's row checksums).
__device__ void softmax_backward_row(floatX* dpreatt, const floatX* datt, const floatX* att, long row, int T,
                                     const AbftLayerSums& sums, const AbftReaderCheck& check) {
    const int lane = threadIdx.x % 32, t = (int)(row % T);
    const long head = row - t; // the head's first row: its K row sums start at sums.k_sum[head]
    const floatX* p = att + row * T;
    const floatX* dp = datt + row * T;
    float dpsum = 0.0f, dpabs = 0.0f;
    float dot = lane_dot_and_sums(p, dp, t + 1, &dpsum, &dpabs);
    if (abft_reader_check_warp(check, row, T, t + 1, dpsum, dpabs)) { dot = lane_dot_and_sums(p, dp, t + 1, &dpsum, &dpabs); }
    dot = warp_sum(dot);
    const bool encode = sums.ds_sum != nullptr;
    float dsum = 0.0f, dabs = 0.0f, dq = 0.0f, dqa = 0.0f;
    for (int j = lane; j < T; j += 32) {
        const floatX dsx = (floatX)(j <= t ? (float)p[j] * ((float)dp[j] - dot) : 0.0f);
        dpreatt[row * T + j] = dsx;
        const float ds = (float)dsx; // dK's and dQ's checksums are of what their GEMMs read
        if (encode && j <= t) {
            dsum += ds; dabs += fabsf(ds);
            dq += ds * sums.k_sum[head + j]; dqa += fabsf(ds) * sums.k_abs[head + j];
        }
    }
    if (!encode) { return; }
    dsum = warp_sum(dsum); dabs = warp_sum(dabs); dq = warp_sum(dq); dqa = warp_sum(dqa);
    if (lane == 0) { sums.ds_sum[row] = dsum; sums.ds_abs[row] = dabs; sums.dq_chk[row] = dq; sums.dq_bound[row] = dqa; }
}

// one warp per row of the (B·NH·T) rows; a row that breaks the softmax's invariant is recomputed (k.on)
__global__ void softmax_forward_kernel(floatX* att, const floatX* preatt, int rows, int T, AbftLayerSums sums,
                                       AbftReaderCheck check, AbftKernelCheck k) {
    const long row = global_warp();
    if (row >= rows) { return; }
    checked_row(k, [&](const AbftKernelFault& fault) {
        return softmax_forward_row(att, preatt, row, T, sums, check, fault);
    });
}

__global__ void softmax_backward_kernel(floatX* dpreatt, const floatX* datt, const floatX* att, int rows, int T,
                                        AbftLayerSums sums, AbftReaderCheck check) {
    const long row = global_warp();
    if (row < rows) { softmax_backward_row(dpreatt, datt, att, row, T, sums, check); }
}

// ----------------------------------------------------------------------------
// kernels: the fused classifier, AdamW, a finiteness check

// The softmax statistics of a row of V logits, by the block: its max and Σ exp(l − max).
__device__ void softmax_stats(const floatX* l, int V, float* maxval, float* sum) {
    float m = -INFINITY;
    for (int i = threadIdx.x; i < V; i += blockDim.x) { m = fmaxf(m, (float)l[i]); }
    m = block_reduce(m, true);
    float s = 0.0f;
    for (int i = threadIdx.x; i < V; i += blockDim.x) { s += expf((float)l[i] - m); }
    *maxval = m;
    *sum = block_reduce(s, false);
}

// Row `row` of the loss gradient (p − onehot)·dloss, by the block, with the fault (-fi
// dlogits); padded columns [V, Vp) get zero. d may be the logits l themselves: each thread
// reads only the logits it overwrites. The residual of the row's invariant (sums to 0, every
// entry within ±dloss: one out of it makes the sum infinite, so one reduction judges both).
__device__ float dlogits_row(floatX* d, const floatX* l, long row, int target, float maxval, float inv, float dloss, int V,
                             int Vp, const AbftKernelFault& fault) {
    float sum = 0.0f;
    for (int i = threadIdx.x; i < Vp; i += blockDim.x) {
        const float p = i < V ? expf((float)l[i] - maxval) * inv : 0.0f;
        const float di = abft_kernel_fault_apply(fault, row, i, (p - (i == target ? 1.0f : 0.0f)) * dloss);
        d[i] = (floatX)di;
        sum += abft_dlogit_in_range(di, dloss) ? di : INFINITY;
    }
    return abft_dlogits_residual(block_reduce(sum, false), 0, dloss, V);
}

// Row `row` of the LM head again, l[v] = lnf[row] · wte[v] for v < V, by the block: what a
// failed row of dlogits, written over its logits, is recomputed from.
__device__ void lm_head_row(floatX* l, const floatX* lnf, const floatX* wte, long row, int C, int V) {
    const floatX* x = lnf + row * C;
    for (int v = threadIdx.x; v < V; v += blockDim.x) {
        float acc = 0.0f;
        for (int c = 0; c < C; c++) { acc += (float)x[c] * (float)wte[(long)v * C + c]; }
        l[v] = (floatX)acc;
    }
    __syncthreads();
}

// One block per position: softmax over the V real logits and the cross-entropy loss, and, when
// dlogits is given, the loss gradient (p − onehot)/(B·T) right away, so that the (B,T,Vp)
// probabilities are never stored. dlogits may be the logits themselves. A loss out of its
// bounds is recomputed (kl.on); a row of dlogits that breaks its invariant (kd.on) too, from
// its row of the logits, recomputed first from lnf and wte when dlogits was written over them.
__global__ void crossentropy_forward_kernel(float* losses, floatX* dlogits, const floatX* logits, const int* targets,
                                            int BT, int V, int Vp, AbftKernelCheck kl, AbftKernelCheck kd,
                                            const floatX* lnf, const floatX* wte, int C) {
    const long row = blockIdx.x;
    const floatX* l = logits + row * Vp;
    const int target = targets[row];
    const float target_logit = (float)l[target]; // before softmax_stats' barriers: dlogits may overwrite it
    float maxval, sum;
    softmax_stats(l, V, &maxval, &sum);
    if (threadIdx.x == 0) {
        const float p_target = expf(target_logit - maxval) / sum;
        losses[row] = checked_value(kl, row, [=] { return logf(sum) - (target_logit - maxval); },
                                    [=](float loss) { return abft_loss_residual(loss, maxval - target_logit, p_target, V); });
    }
    if (dlogits == nullptr) { return; }
    const float dloss = 1.0f / BT;
    floatX* d = dlogits + row * Vp;
    if (dlogits_row(d, l, row, target, maxval, 1.0f / sum, dloss, V, Vp, kd.fault) <= kd.tau || !kd.on) { return; }
    if (threadIdx.x == 0) { atomicAdd(&kd.verdict[0], 1); }
    if (d == l) { lm_head_row(d, lnf, wte, row, C, V); }
    softmax_stats(l, V, &maxval, &sum);
    if (!(dlogits_row(d, l, row, target, maxval, 1.0f / sum, dloss, V, Vp, kd.refault) <= kd.tau) &&
        threadIdx.x == 0) {
        kernel_failed_again(kd);
    }
}

// What the gradient-norm kernels decide, for adamw_kernel and, after the step's wait, the host.
struct GradNorm {
    float norm;  // the global L2 norm of the step's averaged gradient, before the clip
    float scale; // what multiplies the summed gradient (grad_scale_of: the average and the clip)
    int skip;    // 1: the step guard stops the update
};

// Ranges of the gradient (offsets into the flat parameter order): the whole of it, or what
// one part of the backward pass finishes (grad_part: a layer's slice of each of its 12 tensors).
// The parts, in the order the backward pass finishes them: the final layernorm's
// (GRAD_PART_LNF), layer L-1's, ..., layer 0's (part l), the embeddings'.
constexpr int GRAD_PART_LNF = -1, GRAD_PART_EMBEDDINGS = -2;
struct GradRanges {
    int count = 0;
    long offset[12], length[12];
};

// After the backward pass of micro-batch `micro` of a step: the step's gradient sum in acc,
// over range blockIdx.y of r.
__global__ void accumulate_grads_kernel(float* acc, const floatX* grads, GradRanges r, int micro) {
    const long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= r.length[blockIdx.y]) { return; }
    const long j = r.offset[blockIdx.y] + i;
    acc[j] = micro == 0 ? (float)grads[j] : acc[j] + (float)grads[j];
}

// AdamW (llmc/optimizer.h) on the summed gradient times norm->scale, with decay on the 2-D
// weights (the DecayTable). Skipped when the pass that computed the gradients has failed its
// gate (a fault beyond the device's repair: the host redoes the pass), or when the step guard
// says so. A parameter whose step breaks AdamW's bound is recomputed (k.on), and left as it
// was if it breaks it again (bad gradient or moments). The gradient G is the backward pass's
// (floatX) or the float sum over micro-batches. master: the float parameters AdamW updates;
// params: their floatX working copy, written from them, or null when floatX is float (the
// master is the working copy).
template <typename G>
__global__ void adamw_kernel(float* master, floatX* params, const G* grads, float* m, float* v, long n, AdamWStep s, float bc1,
                             float bc2, DecayTable decay, AbftPassGate gate, const GradNorm* norm, AbftKernelCheck k,
                             AbftAdamBound bound) {
    const long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n || (gate.failed != nullptr && *gate.failed == gate.pass) || norm->skip) { return; }
    const float p = master[i], g = (float)grads[i] * norm->scale, m0 = m[i], v0 = v[i];
    const float wd = decay_at(decay, i, s.weight_decay);
    AdamWValue u = adamw_of(p, g, m0, v0, s.lr, s.beta1, s.beta2, bc1, bc2, s.eps, wd);
    u.p = abft_kernel_fault_apply_at(k.fault, i, u.p);
    if (k.on && !(abft_adamw_residual(p, u.p, u.m, u.v, s.lr, wd, bound) <= k.tau)) {
        atomicAdd(&k.verdict[0], 1);
        u = adamw_of(p, g, m0, v0, s.lr, s.beta1, s.beta2, bc1, bc2, s.eps, wd);
        u.p = abft_kernel_fault_apply_at(k.refault, i, u.p);
        if (!(abft_adamw_residual(p, u.p, u.m, u.v, s.lr, wd, bound) <= k.tau)) {
            atomicAdd(&k.verdict[1], 1);
            return;
        }
    }
    m[i] = u.m;
    v[i] = u.v;
    master[i] = u.p;
    if (params != nullptr) { params[i] = (floatX)u.p; }
}

// The global gradient norm: each of up to NORM_BLOCKS blocks (one per 16·BLOCK gradients, so
// that a small model does not pay for a large grid) sums the squares of its share, a bucket of
// ALLREDUCE_BUCKET gradients at a time, then one block sums those in a fixed order (the norm
// does not depend on timing) and decides the update's gradient scale, and whether the step
// guard stops it. In a data-parallel run the check of the gradient's all-reduce rides in the
// same pass over the averaged gradient (BucketCheck; ranks_reduce).
constexpr int NORM_BLOCKS = 256;
constexpr int ALLREDUCE_BUCKET = 4096;                    // gradients per all-reduce checksum
constexpr float FP32_UNIT_ROUNDOFF = 1.0f / 16777216.0f; // 2^-24

static int norm_blocks(long n) { return (int)std::min<long>(NORM_BLOCKS, std::max<long>(1, n / (16 * BLOCK))); }

__host__ __device__ inline long buckets_of(long n) { return (n + ALLREDUCE_BUCKET - 1) / ALLREDUCE_BUCKET; }

// The check of the averaged gradient of a data-parallel step, when one is due: the ranks' bucket
// checksums, averaged (chk: (buckets, 2), each bucket's Σ and Σ|·|), where the verdicts go
// (flags: (buckets + 1), each bucket's, then how many failed), and with fix.out (a training
// pass) the pass's log and gate.
struct BucketCheck {
    const float* chk = nullptr; // null: no check
    int* flags = nullptr;
    AbftFixer fix;
    int ranks = 1;
    float u = 0.0f;             // the gradient's unit roundoff
};

// How far a bucket of `len` averaged gradients may sum from its averaged checksum, whose |·| is
// abs_chk: each element is `ranks` terms, each premultiplied by 1/ranks and then added in the
// element type (unit roundoff u), each rank's checksum and the bucket's sum are len-term fp32
// sums, and the checksums' average `ranks` fp32 terms: ((2R - 1)·u + (2·len + 2R - 1)·2^-24)·
// abs_chk at most, times tau (docs/ABFT.md, "The gradient all-reduce").
__device__ inline float bucket_tolerance(float abs_chk, int len, int ranks, float u, float tau) {
    return tau * ((2 * ranks - 1) * u + (2.0f * len + 2 * ranks - 1) * FP32_UNIT_ROUNDOFF) * abs_chk;
}

// Bucket b of the averaged gradient, whose sums are (s, sa), against its checksum (thread 0).
__device__ inline void bucket_check(const BucketCheck& c, long b, long buckets, int len, float s, float sa) {
    const float tol = bucket_tolerance(c.chk[2 * b + 1], len, c.ranks, c.u, c.fix.tau);
    const bool ok = abft_line_matches(s, sa, c.chk[2 * b], c.chk[2 * b + 1], tol);
    c.flags[b] = ok ? 0 : 1;
    if (ok) { return; }
    atomicAdd(&c.flags[buckets], 1);
    if (c.fix.out != nullptr) { abft_fix_failed(c.fix, 0); } // logged, and the pass's gate raised
}

template <typename G>
__global__ void grad_norm_partial_kernel(float* partial, const G* grads, long n, BucketCheck check) {
    const long buckets = buckets_of(n);
    float squares = 0.0f; // thread 0's: the block's buckets
    for (long b = blockIdx.x; b < buckets; b += gridDim.x) {
        const long i0 = b * ALLREDUCE_BUCKET, i1 = min(n, i0 + ALLREDUCE_BUCKET);
        float s = 0.0f, sa = 0.0f, sq = 0.0f;
        for (long i = i0 + threadIdx.x; i < i1; i += blockDim.x) {
            const float g = (float)grads[i];
            s += g;
            sa += fabsf(g);
            sq += g * g;
        }
        sq = block_reduce(sq, false);
        if (check.chk != nullptr) {
            s = block_reduce(s, false);
            sa = block_reduce(sa, false);
        }
        if (threadIdx.x != 0) { continue; }
        squares += sq;
        if (check.chk != nullptr) { bucket_check(check, b, buckets, (int)(i1 - i0), s, sa); }
    }
    if (threadIdx.x == 0) { partial[blockIdx.x] = squares; }
}

// norm of the averaged gradient (the sum's / micro_steps); max_norm < 0: no guard
__global__ void grad_norm_decide_kernel(GradNorm* out, const float* partial, int blocks, float grad_clip, int micro_steps,
                                        float max_norm) {
    const float square = (int)threadIdx.x < blocks ? partial[threadIdx.x] : 0.0f; // blockDim.x == NORM_BLOCKS
    const float norm = sqrtf(block_reduce(square, false)) / micro_steps;
    if (threadIdx.x == 0) {
        out->norm = norm;
        out->scale = grad_scale_of(norm, grad_clip, micro_steps);
        out->skip = max_norm >= 0.0f && !(isfinite(norm) && norm <= max_norm);
    }
}

// the floatX working copy of the parameters from their float masters (a bf16 build)
__global__ void to_floatX_kernel(floatX* out, const float* in, long n) {
    const long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) { out[i] = (floatX)in[i]; }
}

__global__ void count_nonfinite_kernel(int* count, const float* x, long n) {
    const long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n && !isfinite(x[i])) { atomicAdd(count, 1); }
}

// ----------------------------------------------------------------------------
// the GPU: handles, and the GEMM primitive every matmul of the model goes through

static cublasHandle_t g_cublas;
static cublasLtHandle_t g_cublaslt;
static void* g_workspace;                        // cuBLASLt's
static const size_t WORKSPACE_BYTES = 32u << 20;
static bool g_tf32 = false;                      // TF32 tensor-core math in every GEMM (gpt2_set_tf32)

static void cuda_init() {
    static bool done = false;
    if (done) { return; }
    done = true;
    cuda_require_device();
    cublasCheck(cublasCreate(&g_cublas));
    cublasCheck(cublasLtCreate(&g_cublaslt));
    cudaCheck(cudaMalloc(&g_workspace, WORKSPACE_BYTES));
}

// The largest power of two (at most 256) that divides the address: cuBLASLt must not pick an
// algorithm that assumes more alignment than a layer's slice of a buffer has.
static uint32_t alignment_of(const void* p) {
    uint32_t a = 256;
    while (a > sizeof(floatX) && (uintptr_t)p % a != 0) { a /= 2; }
    return a;
}

// cuBLAS and cuBLASLt are column-major: the row-major C (M, N) they must write is the
// column-major Cᵀ (N, M) = Bᵀ·Aᵀ. A row-major view with unit column stride (cs = 1, ld = rs)
// is, read column-major, already the transpose needed (op N); a transposed view (rs = 1,
// ld = cs) needs op T.
static cublasOperation_t op_of(const MatView& v) { return v.cs == 1 ? CUBLAS_OP_N : CUBLAS_OP_T; }
static int ld_of(const MatView& v) { return (int)(v.cs == 1 ? v.rs : v.cs); }

// cuBLASLt's plan for each GEMM shape (descriptor, layouts, algorithm), made once: creating
// them and the heuristic query cost more host time than the GEMM's launch, and a training step
// has a dozen distinct shapes. Only the bias pointer changes from call to call.
struct LtKey {
    int M, N, K, lda, ldb, ldc, opA, opB, bias, tf32;
    uint32_t align[4];
};
struct LtPlan {
    LtKey key;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t algo;
};
static std::vector<LtPlan> g_lt_plans;

static const LtPlan& lt_plan(const AbftGemm& g);

// Destroys the plans (at the end of a model's life; a later GEMM makes them again).
static void lt_plans_free() {
    for (LtPlan& p : g_lt_plans) {
        cublasCheck(cublasLtMatrixLayoutDestroy(p.lc));
        cublasCheck(cublasLtMatrixLayoutDestroy(p.la));
        cublasCheck(cublasLtMatrixLayoutDestroy(p.lb));
        cublasCheck(cublasLtMatmulDescDestroy(p.desc));
    }
    g_lt_plans.clear();
}

// One matrix (a linear layer): cuBLASLt, with the bias added by the epilogue.
static void gemm_lt(const AbftGemm& g) {
    const LtPlan& plan = lt_plan(g);
    if (g.bias != nullptr) {
        cublasCheck(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.bias, sizeof(g.bias)));
    }
    const float beta = 0.0f;
    cublasCheck(cublasLtMatmul(g_cublaslt, plan.desc, &g.alpha, g.B.p, plan.lb, g.A.p, plan.la, &beta, g.C, plan.lc, g.C,
                               plan.lc, &plan.algo, g_workspace, WORKSPACE_BYTES, 0));
}

// The plan for g's shape, made on first use.
static const LtPlan& lt_plan(const AbftGemm& g) {
    const cublasOperation_t opB = op_of(g.B), opA = op_of(g.A);
    const LtKey key = {g.M, g.N, g.K, ld_of(g.A), ld_of(g.B), (int)g.ldc, (int)opA, (int)opB, g.bias != nullptr, g_tf32,
                       {alignment_of(g.B.p), alignment_of(g.A.p), alignment_of(g.C), alignment_of(g.C)}};
    for (const LtPlan& p : g_lt_plans) {
        if (memcmp(&p.key, &key, sizeof(key)) == 0) { return p; }
    }
    LtPlan plan;
    plan.key = key;
    cublasCheck(cublasLtMatmulDescCreate(&plan.desc, g_tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasCheck(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_TRANSA, &opB, sizeof(opB)));
    cublasCheck(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_TRANSB, &opA, sizeof(opA)));
    if (g.bias != nullptr) {
        cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
        cublasCheck(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)));
        cublasCheck(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.bias, sizeof(g.bias)));
    }
    // the stored shapes: Bᵀ is (N, K) for op N, else B's memory is (K, N); likewise Aᵀ
    cublasCheck(cublasLtMatrixLayoutCreate(&plan.lb, CUBLAS_LOWP, opB == CUBLAS_OP_N ? g.N : g.K,
                                           opB == CUBLAS_OP_N ? g.K : g.N, ld_of(g.B)));
    cublasCheck(cublasLtMatrixLayoutCreate(&plan.la, CUBLAS_LOWP, opA == CUBLAS_OP_N ? g.K : g.M,
                                           opA == CUBLAS_OP_N ? g.M : g.K, ld_of(g.A)));
    cublasCheck(cublasLtMatrixLayoutCreate(&plan.lc, CUBLAS_LOWP, g.N, g.M, g.ldc));
    cublasLtMatmulPreference_t pref;
    cublasCheck(cublasLtMatmulPreferenceCreate(&pref));
    const cublasLtMatmulPreferenceAttributes_t align_attr[4] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    for (int i = 0; i < 4; i++) {
        cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, align_attr[i], &key.align[i], sizeof(key.align[i])));
    }
    cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &WORKSPACE_BYTES,
                                                     sizeof(WORKSPACE_BYTES)));
    cublasLtMatmulHeuristicResult_t heuristic;
    int found = 0;
    cublasCheck(cublasLtMatmulAlgoGetHeuristic(g_cublaslt, plan.desc, plan.lb, plan.la, plan.lc, plan.lc, pref, 1,
                                               &heuristic, &found));
    if (found == 0) {
        die("cublasLtMatmulAlgoGetHeuristic", "try another batch size (-b) or sequence length (-t), or -tf32 0",
            "no algorithm for a (%d x %d x %d) GEMM%s", g.M, g.N, g.K, g.bias ? " with a bias" : "");
    }
    cublasCheck(cublasLtMatmulPreferenceDestroy(pref));
    plan.algo = heuristic.algo;
    g_lt_plans.push_back(plan);
    return g_lt_plans.back();
}

// C[b] = alpha · A[b] · B[b] + bias: cuBLASLt for one matrix, a strided batched cuBLAS GEMM over
// the attention heads (which have no bias). Both accumulate in fp32 (TF32 products with -tf32).
static void gemm_gpu(const AbftGemm& g) {
    if (g.batch == 1) { gemm_lt(g); return; }
    if (g.bias != nullptr) { die("gemm_gpu", "a batched GEMM takes no bias", "internal error"); }
    const float beta = 0.0f;
    cublasCheck(cublasGemmStridedBatchedEx(g_cublas, op_of(g.B), op_of(g.A), g.N, g.M, g.K, &g.alpha, g.B.p, CUBLAS_LOWP,
                                           ld_of(g.B), g.strideB, g.A.p, CUBLAS_LOWP, ld_of(g.A), g.strideA, &beta, g.C,
                                           CUBLAS_LOWP, (int)g.ldc, g.strideC, g.batch,
                                           g_tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

// ----------------------------------------------------------------------------
// the layers: launches with the CPU trainer's signatures (llmc/gpt2_block.h composes them)

static float* g_partials;        // (chunks, 2, widest C) partial column sums
static long g_partials_floats;

// dbias (and, with inp, the layernorm's dweight) from dout (rows, C): the two stages above.
static void column_sums(floatX* dweight, floatX* dbias, const floatX* dout, const floatX* inp, const float* mean,
                        const float* rstd, int rows, int C) {
    const int chunks = blocks_for(rows, ROW_CHUNK);
    if ((long)chunks * 2 * C > g_partials_floats) { // sized for the widest layer on first use
        cudaCheck(cudaFree(g_partials));
        g_partials_floats = (long)chunks * 2 * C;
        cudaCheck(cudaMalloc(&g_partials, g_partials_floats * sizeof(float)));
    }
    float *pw = g_partials, *pb = g_partials + (long)chunks * C;
    LAUNCH(column_sums_partial_kernel, dim3(blocks_for(C, 32), chunks), dim3(32, 8), 0, 0)(pw, pb, dout, inp, mean, rstd, rows, C);
    cudaCheckLaunch();
    LAUNCH(column_sums_final_kernel, blocks_for(C, BLOCK), BLOCK, 0, 0)(dweight, dbias, pw, pb, chunks, C);
    cudaCheckLaunch();
}

static void encoder_forward(floatX* out, const int* inp, const floatX* wte, const floatX* wpe, int B, int T, int C) {
    LAUNCH(encoder_forward_kernel, blocks_for((long)B * T * C, BLOCK), BLOCK, 0, 0)(out, inp, wte, wpe, B, T, C);
    cudaCheckLaunch();
}

// The positions of a batch grouped by token, for the embedding backward: the distinct tokens,
// and for the u-th, positions[offsets[u] .. offsets[u+1]) in increasing order. Built on the host
// from the inputs (B·T ints), uploaded with them.
struct TokenBuckets {
    int* tokens;     // (count) on the GPU
    int* offsets;    // (count + 1)
    int* positions;  // (B·T)
    int count;
};

static void token_buckets_build(TokenBuckets* tb, const int* inputs, int n) {
    std::vector<int> order(n);
    for (int i = 0; i < n; i++) { order[i] = i; }
    std::stable_sort(order.begin(), order.end(), [inputs](int a, int b) { return inputs[a] < inputs[b]; });
    std::vector<int> tokens, offsets;
    for (int i = 0; i < n; i++) {
        if (i == 0 || inputs[order[i]] != inputs[order[i - 1]]) { tokens.push_back(inputs[order[i]]); offsets.push_back(i); }
    }
    offsets.push_back(n);
    tb->count = (int)tokens.size();
    cudaCheck(cudaMemcpy(tb->tokens, tokens.data(), tokens.size() * sizeof(int), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(tb->offsets, offsets.data(), offsets.size() * sizeof(int), cudaMemcpyHostToDevice));
    cudaCheck(cudaMemcpy(tb->positions, order.data(), n * sizeof(int), cudaMemcpyHostToDevice));
}

// dwpe is written; dwte is added to (the LM head wrote it first)
static void encoder_backward(floatX* dwte, floatX* dwpe, const floatX* dout, const TokenBuckets& tb, int B, int T, int C) {
    LAUNCH(encoder_backward_wpe_kernel, blocks_for((long)T * C, BLOCK), BLOCK, 0, 0)(dwpe, dout, B, T, C);
    cudaCheckLaunch();
    LAUNCH(encoder_backward_wte_kernel, dim3(blocks_for(C, BLOCK), tb.count), BLOCK, 0, 0)(dwte, dout, tb.tokens, tb.offsets,
                                                                                           tb.positions, C);
    cudaCheckLaunch();
}

static void layernorm_forward(floatX* out, float* mean, float* rstd, const floatX* inp, const floatX* weight,
                              const floatX* bias, int B, int T, int C, const AbftRowSums& sums = AbftRowSums{},
                              const AbftKernelCheck& k = AbftKernelCheck{}) {
    LAUNCH(layernorm_forward_kernel, blocks_for((long)B * T, BLOCK / 32), BLOCK, 0, 0)(out, mean, rstd, inp, weight, bias,
                                                                                      B * T, C, sums, k);
    cudaCheckLaunch();
}

// dinp is added to (the residual stream's gradient has two paths); dweight, dbias are written
// (with sums: the row sums of dinp, the residual gradient, for the check of the GEMM that reads it).
// When dout's check was left to the layernorm (dln1's), the layernorm compares dout's rows with
// their checksums (from the permute backward) and fixes a faulty one before it adds it, so the
// column sums read a fixed dout.
static void layernorm_backward(floatX* dinp, floatX* dweight, floatX* dbias, const floatX* dout, const floatX* inp,
                               const floatX* weight, const float* mean, const float* rstd, int B, int T, int C,
                               const AbftRowSums& sums = AbftRowSums{}) {
    const AbftReaderCheck check = abft_gpu_reader_check();
    LAUNCH(layernorm_backward_dinp_kernel, blocks_for((long)B * T, ABFT_PART_ROWS), BLOCK, 0, 0)(dinp, dout, inp, weight, mean,
                                                                                               rstd, B * T, C, sums, check);
    cudaCheckLaunch();
    column_sums(dweight, dbias, dout, inp, mean, rstd, B * T, C);
}

static void bias_backward(floatX* dbias, const floatX* dout, int rows, int OC) {
    column_sums(nullptr, dbias, dout, nullptr, nullptr, nullptr, rows, OC);
}

static void gelu_forward(floatX* out, const floatX* inp, long N, const AbftKernelCheck& k = AbftKernelCheck{}) {
    LAUNCH(gelu_forward_kernel, blocks_for(N, BLOCK), BLOCK, 0, 0)(out, inp, N, k);
    cudaCheckLaunch();
}

static void gelu_backward(floatX* dinp, const floatX* inp, const floatX* dout, long N) {
    LAUNCH(gelu_backward_kernel, blocks_for(N, BLOCK), BLOCK, 0, 0)(dinp, inp, dout, N);
    cudaCheckLaunch();
}

static void zero_floats(floatX* p, size_t n) { cudaCheck(cudaMemset(p, 0, n * sizeof(floatX))); }

// When the check of the GEMM that wrote b was left to this add (the attention projection's),
// the add compares b's rows with their checksums (from the unpermute) and fixes a faulty one.
static void residual_forward(floatX* out, const floatX* a, const floatX* b, int rows, int C,
                             const AbftKernelCheck& k = AbftKernelCheck{}) {
    LAUNCH(residual_forward_kernel, blocks_for(rows, BLOCK / 32), BLOCK, 0, 0)(out, a, b, rows, C, abft_gpu_reader_check(), k);
    cudaCheckLaunch();
}

// When qkv's check was left to the permute (llmc/abft_gpu.cuh's reader checks), the permute
// compares qkv's rows with their checksums (from the layernorm) and fixes a faulty one.
static void permute_forward(floatX* q, floatX* k, floatX* v, const floatX* qkv, int B, int T, int NH, int HS,
                            const AbftLayerSums& sums) {
    LAUNCH(permute_forward_kernel, B * T, BLOCK, 0, 0)(q, k, v, qkv, T, NH, HS, sums, abft_gpu_reader_check());
    cudaCheckLaunch();
}

// When dQ's check was left to the permute, the permute compares dq's rows with their checksums
// (from the softmax backward) and fixes a faulty one. When dK's and dV's column checks wait for
// it, it sums their columns as it reads them, and one launch then checks both.
static void permute_backward(floatX* dqkv, const floatX* dq, const floatX* dk, const floatX* dv, int B, int T, int NH,
                             int HS, const AbftLayerSums& s) {
    const AbftHeldColumns held = abft_gpu_take_columns();
    float* dkv_part = held.n > 0 ? s.dkv_part : nullptr;
    LAUNCH(permute_backward_kernel, B * abft_ceil_div(T, ABFT_PART_ROWS), BLOCK, 0, 0)(dqkv, dq, dk, dv, T, NH, HS, s.dqkv,
                                                                                     abft_gpu_reader_check(), dkv_part);
    cudaCheckLaunch();
    if (held.n == 0) { return; }
    abft_gpu_time_columns(held, false);
    LAUNCH(dkv_column_check_kernel, B * NH, dim3(ABFT_TILE, ABFT_ROWS), 0, 0)(abft_held_column_check(held, dk),
                                                                             abft_held_column_check(held, dv), dqkv, dq, dk,
                                                                             dv, T, NH, HS, s.dqkv, dkv_part);
    cudaCheckLaunch();
    abft_gpu_time_columns(held, true);
}

// When P·V's check was left to the unpermute, the unpermute compares its rows with their
// checksums (from the softmax) and fixes a faulty one.
static void unpermute_forward(floatX* out, const floatX* y, int B, int T, int NH, int HS, const AbftLayerSums& sums) {
    LAUNCH(unpermute_forward_kernel, blocks_for((long)B * T, BLOCK / 32), BLOCK, 0, 0)(out, y, B, T, NH, HS, sums.atty,
                                                                                      abft_gpu_reader_check());
    cudaCheckLaunch();
}

// When dY's check was left to the unpermute, the unpermute compares its rows with their
// checksums (from the layernorm backward) and fixes a faulty one.
static void unpermute_backward(floatX* dy, const floatX* dout, int B, int T, int NH, int HS) {
    LAUNCH(unpermute_backward_kernel, blocks_for((long)B * T, BLOCK / 32), BLOCK, 0, 0)(dy, dout, B, T, NH, HS,
                                                                                       abft_gpu_reader_check());
    cudaCheckLaunch();
}

// When S's check was left to the softmax (llmc/abft_gpu.cuh's reader checks), the softmax
// compares S's rows with their checksums and fixes a faulty one before it reads it for good.
static void softmax_forward(floatX* att, const floatX* preatt, int B, int NH, int T, const AbftLayerSums& sums,
                            const AbftKernelCheck& k = AbftKernelCheck{}) {
    const long rows = (long)B * NH * T;
    LAUNCH(softmax_forward_kernel, blocks_for(rows, BLOCK / 32), BLOCK, 0, 0)(att, preatt, (int)rows, T, sums,
                                                                            abft_gpu_reader_check(), k);
    cudaCheckLaunch();
}

// dP's check likewise, when it was left to the softmax backward.
static void softmax_backward(floatX* dpreatt, const floatX* datt, const floatX* att, int B, int NH, int T,
                             const AbftLayerSums& sums) {
    const long rows = (long)B * NH * T;
    LAUNCH(softmax_backward_kernel, blocks_for(rows, BLOCK / 32), BLOCK, 0, 0)(dpreatt, datt, att, (int)rows, T, sums,
                                                                             abft_gpu_reader_check());
    cudaCheckLaunch();
}

// ----------------------------------------------------------------------------
// the model: config, parameters (one GPU buffer), activations (one GPU buffer), their gradients (one)

struct GPT2 {
    GPT2Config config;
    ParameterTensors params;           // what the passes read
    size_t param_sizes[NUM_PARAMETER_TENSORS];
    floatX* params_memory = nullptr;
    float* master_memory = nullptr;    // the float parameters AdamW updates, checkpoints hold; params_memory when floatX is float
    size_t num_parameters = 0;
    ParameterTensors grads;
    floatX* grads_memory = nullptr;    // the last backward pass's
    float* grad_acc_memory = nullptr;  // the sum over a step's micro-batches (accumulate_grads)
    float* m_memory = nullptr; // AdamW first moments
    float* v_memory = nullptr; // AdamW second moments
    int B = 0, T = 0;          // the batch shape the activations were laid out for
    ActivationTensors acts;           // acts.probs is empty: the fused classifier stores none
    size_t act_sizes[NUM_ACTIVATION_TENSORS];
    void* acts_memory = nullptr;      // floatX, the layernorms' statistics float (point_activations)
    ActivationGradTensors grads_acts; // one layer's, reused by every layer
    size_t grad_act_sizes[NUM_ACTIVATION_GRAD_TENSORS];
    floatX* grads_acts_memory = nullptr;
    int* inputs = nullptr;       // (B, T) on the GPU
    int* targets = nullptr;      // (B, T) on the GPU
    float* losses = nullptr;     // (B, T) on the GPU
    float* cpu_losses = nullptr; // (B, T)
    float mean_loss = -1.0f;     // -1 when the forward pass had no targets
    float grad_norm = -1.0f;     // the last update's global norm of the averaged gradient, before the clip
    bool update_skipped = false; // whether the step guard stopped the last update
    GradNorm* norm = nullptr;           // (1) on the GPU: the last update's norm, scale and guard verdict
    GradNorm* norm_host = nullptr;      // (1) pinned: its copy, read after the step's wait
    float* norm_partial = nullptr;      // (NORM_BLOCKS) on the GPU: the norm's partial sums
    TokenBuckets buckets = {};   // the inputs grouped by token, for the embedding backward
    HostView host = {nullptr, nullptr, nullptr}; // host copies of params, m, v (allocated on first use)
    Abft abft;
    float* abft_sums_memory = nullptr; // the checksum sums of layer_sums: L x (3·B·NH·T + 4·B·T) + 12 x B·NH·T + 6 x B·T
                                       // + 2 x B·T·NH, + the partial sums (2 x chunks x 4C, chunks x 4C) + 2 x B·C
    void* reduced_memory = nullptr;    // a data-parallel run's averaged gradient (of the type reduced: ranks_reduce)
    float* bucket_sums = nullptr;      // (2, buckets, 2): each bucket's sum and |sum|, this rank's, then averaged
    int* bucket_flags = nullptr;       // (buckets + 1): the buckets that failed their check, then their count
    bool reducing = false;             // the step's gradient average was started in the backward pass (gradient_ready)
                                       // and the compute stream has not yet waited for it (ranks_reduce)
    AbftWeightStack qkvw_sums, attprojw_sums; // the weights' checksums, once per step (gpt2_forward)
};

// n elements of type T (float, or floatX)
template <typename T = float>
static T* gpu_alloc(size_t n, const char* what) {
    T* p = nullptr;
    const cudaError_t err = cudaMalloc(&p, n * sizeof(T));
    if (err != cudaSuccess) {
        die(what, "reduce the batch size (-b), the sequence length (-t) or the model size; nvidia-smi shows what else uses the GPU",
            "cannot allocate %.1f MiB of GPU memory (%s)", n * sizeof(T) / 1048576.0, cudaGetErrorString(err));
    }
    return p;
}

// ----------------------------------------------------------------------------
// building a model: from an llm.c file, or a fresh GPT-2 init (made on the host, as on the CPU)

static void gpt2_allocate_parameters(GPT2* model) {
    cuda_init();
    model->num_parameters = fill_in_parameter_sizes(model->param_sizes, model->config);
    model->params_memory = gpu_alloc<floatX>(model->num_parameters, "parameters");
#ifdef ENABLE_BF16
    model->master_memory = gpu_alloc(model->num_parameters, "float master parameters");
#else
    model->master_memory = model->params_memory;
#endif
    point_tensors<ParameterTensors, NUM_PARAMETER_TENSORS>(&model->params, model->param_sizes, model->params_memory);
    abft_init(&model->abft);
    model->abft.deferred = true; // checks read once per pass (gpt2_settle), not after every GEMM
    const int L = model->config.num_layers, C = model->config.channels;
    abft_gpu_weight_stack_alloc(&model->qkvw_sums, L, 3 * C, C);
    abft_gpu_weight_stack_alloc(&model->attprojw_sums, L, C, C);
}

static void upload(float* device, const float* host, size_t n) {
    cudaCheck(cudaMemcpy(device, host, n * sizeof(float), cudaMemcpyHostToDevice));
}

// The parameters from host floats: the masters, and the working copy from them.
static void upload_params(GPT2* model, const float* host) {
    const long n = (long)model->num_parameters;
    upload(model->master_memory, host, n);
    if ((void*)model->master_memory == (void*)model->params_memory) { return; } // floatX is float
    LAUNCH(to_floatX_kernel, blocks_for(n, BLOCK), BLOCK, 0, 0)(model->params_memory, model->master_memory, n);
    cudaCheckLaunch();
}

static void gpt2_build_from_checkpoint(GPT2* model, const char* path) {
    ModelFile f = model_open(path, &model->config);
    gpt2_allocate_parameters(model);
    std::vector<float> params(model->num_parameters);
    model_read_params(f, params.data(), params.size());
    upload_params(model, params.data());
}

static void gpt2_build_from_random(GPT2* model, const GPT2Config& config, uint64_t seed) {
    model->config = config;
    gpt2_allocate_parameters(model);
    std::vector<float> params(model->num_parameters);
    gpt2_init_params(model->config, params.data(), seed);
    upload_params(model, params.data());
}

// ----------------------------------------------------------------------------
// activations and the forward pass

// What this trainer allocates on the GPU at batch shape (B, T): no probabilities, and cuBLASLt's
// workspace.
static MemoryFootprint gpt2_footprint(const GPT2* model, int B, int T) {
    return model_footprint(model->config, B, T, false, WORKSPACE_BYTES);
}

static void gpt2_allocate_activations(GPT2* model, int B, int T) {
    const size_t n = fill_in_activation_sizes(model->act_sizes, model->config, B, T, false);
    const size_t dn = fill_in_activation_grad_sizes(model->grad_act_sizes, model->config, B, T);
    model->B = B;
    model->T = T;
    model->acts_memory = gpu_alloc<char>(n, "activations");
    model->grads_acts_memory = gpu_alloc<floatX>(dn, "activation gradients");
    point_activations(&model->acts, model->act_sizes, model->acts_memory);
    point_tensors<ActivationGradTensors, NUM_ACTIVATION_GRAD_TENSORS>(&model->grads_acts, model->grad_act_sizes,
                                                                      model->grads_acts_memory);
    cudaCheck(cudaMalloc(&model->inputs, (size_t)B * T * sizeof(int)));
    cudaCheck(cudaMalloc(&model->buckets.tokens, (size_t)B * T * sizeof(int)));
    cudaCheck(cudaMalloc(&model->buckets.offsets, ((size_t)B * T + 1) * sizeof(int)));
    cudaCheck(cudaMalloc(&model->buckets.positions, (size_t)B * T * sizeof(int)));
    cudaCheck(cudaMalloc(&model->targets, (size_t)B * T * sizeof(int)));
    model->losses = gpu_alloc((size_t)B * T, "losses");
    model->cpu_losses = (float*)malloc_check((size_t)B * T * sizeof(float), "losses");
    const int L = model->config.num_layers;
    const size_t bht = (size_t)B * model->config.num_heads * T, bt = (size_t)B * T;
    const size_t C = model->config.channels;
    const size_t chunks = (size_t)B * abft_ceil_div(T, ABFT_PART_ROWS); // at least ceil(B·T / ABFT_PART_ROWS)
    const size_t parts = 2 * chunks * 4 * C + chunks * 4 * C;          // dqkv's and dres's, then dkv_part
    model->abft_sums_memory = gpu_alloc(L * (3 * bht + 4 * bt) + 12 * bht + 6 * bt + 2 * bht + parts + 2 * B * C,
                                        "ABFT checksum sums");
}

// Where layer l's permute and softmax write the checksum sums of its attention GEMMs (see
// AbftLayerSums): K's row sums and P's are kept per layer for the backward pass, the others
// are used at once. None when the checks that read them will not run: ABFT off, or a pass with
// synchronous checks (abft_gpu_verify_now reads the operands).
static AbftLayerSums layer_sums(GPT2* model, int l) {
    if (!model->abft.cfg.enabled || !model->abft.deferred) { return AbftLayerSums{}; }
    const size_t n = (size_t)model->B * model->config.num_heads * model->T, bt = (size_t)model->B * model->T;
    float* kept = model->abft_sums_memory + (3 * n + 4 * bt) * l;                       // (L, 3·B·NH·T + 4·B·T)
    float* now = model->abft_sums_memory + (3 * n + 4 * bt) * model->config.num_layers; // (12, B·NH·T)
    AbftLayerSums s;
    s.readers_check = true;
    s.k_sum = kept; s.k_abs = kept + n; s.p_sum = kept + 2 * n;
    s.ln1.sum = kept + 3 * n; s.ln1.abs = s.ln1.sum + bt; s.atty.sum = s.ln1.sum + 2 * bt; s.atty.abs = s.ln1.sum + 3 * bt;
    s.v_sum = now; s.v_abs = now + n; s.pv_chk = now + 2 * n; s.pv_bound = now + 3 * n;
    s.ds_sum = now + 4 * n; s.ds_abs = now + 5 * n; s.dq_chk = now + 6 * n; s.dq_bound = now + 7 * n;
    s.s_chk = now + 8 * n; s.s_bound = now + 9 * n; s.dp_chk = now + 10 * n; s.dp_bound = now + 11 * n;
    s.qkvw = abft_weight_sums_of(model->qkvw_sums, l);
    s.attprojw = abft_weight_sums_of(model->attprojw_sums, l);
    float* rows = now + 12 * n; // (6, B·T), then (2, B·T, NH): the linear GEMMs' row checksums
    s.ln1.w_sum = s.qkvw.col_sum; s.ln1.w_abs = s.qkvw.col_abs; s.ln1.chk = rows; s.ln1.bound = rows + bt;
    s.atty.w_sum = s.attprojw.col_sum; s.atty.w_abs = s.attprojw.col_abs; s.atty.chk = rows + 2 * bt; s.atty.bound = rows + 3 * bt;
    s.dres.w_sum = s.attprojw.row_sum; s.dres.w_abs = s.attprojw.row_abs; s.dres.chk = rows + 4 * bt; s.dres.bound = rows + 5 * bt;
    s.dqkv.w_sum = s.qkvw.row_sum; s.dqkv.w_abs = s.qkvw.row_abs; s.dqkv.chk = rows + 6 * bt; s.dqkv.bound = rows + 6 * bt + n;
    s.dqkv.pieces = model->config.num_heads; // a head's piece is formed again when dK's or dV's check fixes a column
    const int per_b = abft_ceil_div(model->T, ABFT_PART_ROWS);
    const size_t chunks = (size_t)model->B * per_b, C = model->config.channels;
    float* parts = rows + 6 * bt + 2 * n; // (2, chunks, 3C) for dqkv, (2, chunks, C) for dres, (chunks, 4C) dkv_part
    s.dqkv.row_w = s.ln1.sum; s.dqkv.row_wabs = s.ln1.abs; s.dqkv.part = parts; s.dqkv.part_abs = parts + chunks * 3 * C;
    s.dqkv.parts = (int)chunks; // a chunk of positions of one sequence each (the permute backward's blocks)
    s.dres.row_w = s.atty.sum; s.dres.row_wabs = s.atty.abs; s.dres.part = parts + chunks * 6 * C;
    s.dres.part_abs = s.dres.part + chunks * C;
    s.dres.parts = abft_ceil_div((long)bt, ABFT_PART_ROWS); // the layernorm backward's blocks
    s.dkv_part = parts + chunks * 8 * C;
    if (C / model->config.num_heads <= ABFT_READER_MAX_K) { // dP's check has a pass over dO to form them in
        s.dv_chk = s.dkv_part + chunks * 4 * C; // (2, B·C)
        s.dv_bound = s.dv_chk + model->B * C;
    }
    return s;
}

// A GEMM under ATTNChecker (abft.cuh): compute, check, repair in GPU memory (llmc/abft_gpu.cuh),
// or recompute.
static bool protected_gemm(GPT2* model, const AbftGemm& g, int op, int layer) {
    return abft_gemm(&model->abft, gemm_gpu, g, op, layer, abft_gpu_corrupt, abft_gpu_verify);
}

// A kernel checked by its invariant (llmc/abft_invariants.h): its check, with the verdict's
// place on the device, then the verdict (read now only when the checks are synchronous).
static AbftKernelCheck kernel_check(GPT2* model, int op, int layer, const AbftKernelShape& shape) {
    return abft_gpu_kernel_check(&model->abft, op, layer, shape);
}

static bool kernel_verdict(GPT2* model, const AbftKernelCheck& k) { return abft_gpu_kernel_verdict(&model->abft, k); }

// the transformer block, forward and backward, and the top of the ABFT ladder: shared with the
// CPU trainer, over the layer functions above
#include "llmc/gpt2_block.h"

// Forward pass over inputs (B,T) (host arrays); with targets, also the losses and their mean,
// and with for_backward the loss gradient dlogits (the fused classifier), written over the
// logits. False when a fault survived a layer's recomputation, or the LM head's GEMM's (the
// caller redoes the step).
static bool gpt2_forward(GPT2* model, const int* inputs, const int* targets, bool for_backward) {
    const GPT2Config& c = model->config;
    const int B = model->B, T = model->T, C = c.channels, V = c.vocab_size, Vp = c.padded_vocab_size;
    check_tokens(inputs, targets, B * T, V);
    cudaCheck(cudaMemcpy(model->inputs, inputs, (size_t)B * T * sizeof(int), cudaMemcpyHostToDevice));
    if (for_backward) { token_buckets_build(&model->buckets, inputs, B * T); }
    if (targets != nullptr) { cudaCheck(cudaMemcpy(model->targets, targets, (size_t)B * T * sizeof(int), cudaMemcpyHostToDevice)); }
    if (model->abft.cfg.enabled && model->abft.deferred) { // the weights' checksums, for layer_sums
        abft_gpu_weight_sums(&model->qkvw_sums, model->params.qkvw, model->params.qkvb);
        abft_gpu_weight_sums(&model->attprojw_sums, model->params.attprojw, model->params.attprojb);
    }
    encoder_forward(model->acts.encoded, model->inputs, model->params.wte, model->params.wpe, B, T, C);
    if (!blocks_forward(model) || !head_forward(model)) { return false; }
    model->mean_loss = -1.0f;
    if (targets == nullptr) { return true; }
    floatX* dlogits = for_backward ? model->acts.logits : nullptr;
    const AbftKernelCheck kl = kernel_check(model, OP_LOSS, 0, AbftKernelShape{(long)B * T, 1});
    const AbftKernelCheck kd = for_backward ? kernel_check(model, OP_DLOGITS, 0, AbftKernelShape{(long)B * T, Vp, 0, V})
                                            : AbftKernelCheck{};
    LAUNCH(crossentropy_forward_kernel, B * T, 512, 0, 0)(model->losses, dlogits, model->acts.logits, model->targets, B * T,
                                                         V, Vp, kl, kd, model->acts.lnf, model->params.wte, C);
    cudaCheckLaunch();
    if (!kernel_verdict(model, kl) || !kernel_verdict(model, kd)) { return false; }
    abft_gpu_log_fetch(); // the deferred ABFT verdicts come back with the losses, in one wait
    cudaCheck(cudaMemcpy(model->cpu_losses, model->losses, (size_t)B * T * sizeof(float), cudaMemcpyDeviceToHost));
    model->mean_loss = mean_loss_of(model->cpu_losses, B * T);
    return true;
}

// ----------------------------------------------------------------------------
// the backward pass

static void gradient_reduce_begin(GPT2* model, bool last_micro);
static void gradient_ready(GPT2* model, int part, int micro, int micro_steps);
static void accumulate_grads(GPT2* model, const GradRanges& r, int micro);
static GradRanges grad_whole(const GPT2* model);

// Backward pass of the last forward pass (which must have had targets and for_backward),
// micro-batch `micro` of a step of micro_steps: with several, its gradient is added into the
// step's sum. As each part of the gradient becomes final (the final layernorm's, each
// layer's, the embeddings'), gradient_ready may start its all-reduce. False when a fault
// survived a GEMM's recomputation (the caller redoes the step).
static bool gpt2_backward(GPT2* model, int micro, int micro_steps) {
    const GPT2Config& c = model->config;
    const int B = model->B, T = model->T, C = c.channels;
    if (model->grads_memory == nullptr) {
        model->grads_memory = gpu_alloc<floatX>(model->num_parameters, "gradients");
        // zeros where no pass writes: the rows of wpe beyond T, and the padded rows of wte
        cudaCheck(cudaMemset(model->grads_memory, 0, model->num_parameters * sizeof(floatX)));
        point_tensors<ParameterTensors, NUM_PARAMETER_TENSORS>(&model->grads, model->param_sizes, model->grads_memory);
    }
    gradient_reduce_begin(model, micro == micro_steps - 1);
    auto ready = [&](int part) { gradient_ready(model, part, micro, micro_steps); };
    if (!head_backward(model)) { return false; }
    ready(GRAD_PART_LNF);
    if (!blocks_backward(model, ready)) { return false; }
    encoder_backward(model->grads.wte, model->grads.wpe, model->grads_acts.residual, model->buckets, B, T, C);
    ready(GRAD_PART_EMBEDDINGS);
    if (micro_steps > 1 && !model->reducing) { accumulate_grads(model, grad_whole(model), micro); }
    abft_gpu_log_fetch(); // the deferred verdicts come back by the step's closing wait (gpt2_train_step)
    return true;
}

// ----------------------------------------------------------------------------
// data parallel (llmc/ranks.h): the ranks' gradients averaged with NCCL

#ifdef USE_MPI
static ncclComm_t g_nccl = nullptr; // every rank's GPU, in an mpirun job (gpus_start)
// Every collective of the trainer runs on this one stream, in the order it was queued: NCCL
// needs each rank to queue a communicator's collectives in the same order, and one stream
// runs them in it. Events hand the work over between it and the compute stream (stream 0).
static cudaStream_t g_nccl_stream = nullptr;
static cudaEvent_t g_compute_done = nullptr, g_nccl_done = nullptr;

inline void nccl_check_result(ncclResult_t r, const char* file, int line, const char* call) {
    if (r == ncclSuccess) { return; }
    fflush(stdout);
    fprintf(stderr, "error: %s:%d: %s: %s (hint: another rank failed, or the ranks called different collectives; "
                    "NCCL_DEBUG=WARN says more)\n", file, line, call, ncclGetErrorString(r));
    exit(EXIT_FAILURE);
}
#define ncclCheck(call) nccl_check_result((call), __FILE__, __LINE__, #call)

template <typename T> ncclDataType_t nccl_type();
template <> ncclDataType_t nccl_type<float>() { return ncclFloat32; }
#ifdef ENABLE_BF16
template <> ncclDataType_t nccl_type<__nv_bfloat16>() { return ncclBfloat16; }
#endif
#endif

// This rank's GPU (its place among the ranks on its machine), and in an mpirun job the ranks'
// NCCL communicator: rank 0's id reaches the others through MPI. (mpirun -np 1 makes one, so
// that one GPU can try the all-reduce's path: scripts/gpu_check.sh.)
static void gpus_start() {
#ifdef USE_MPI
    if (!g_ranks.mpi) { return; }
    int count = 0;
    cudaCheck(cudaGetDeviceCount(&count));
    if (count > 0) { cudaCheck(cudaSetDevice(g_ranks.local % count)); }
    ncclUniqueId id;
    if (g_ranks.rank == 0) { ncclCheck(ncclGetUniqueId(&id)); }
    ranks_share(&id, sizeof(id));
    ncclCheck(ncclCommInitRank(&g_nccl, g_ranks.world, id, g_ranks.rank));
    cudaCheck(cudaStreamCreateWithFlags(&g_nccl_stream, cudaStreamNonBlocking));
    cudaCheck(cudaEventCreateWithFlags(&g_compute_done, cudaEventDisableTiming));
    cudaCheck(cudaEventCreateWithFlags(&g_nccl_done, cudaEventDisableTiming));
#endif
}

static void gpus_end() {
#ifdef USE_MPI
    if (g_nccl == nullptr) { return; }
    cudaCheck(cudaStreamSynchronize(g_nccl_stream));
    ncclCheck(ncclCommDestroy(g_nccl));
    cudaCheck(cudaEventDestroy(g_compute_done));
    cudaCheck(cudaEventDestroy(g_nccl_done));
    cudaCheck(cudaStreamDestroy(g_nccl_stream));
#endif
}

#ifdef USE_MPI
// The collectives queued next start after the compute queued so far.
static void nccl_after_compute() {
    cudaCheck(cudaEventRecord(g_compute_done, 0));
    cudaCheck(cudaStreamWaitEvent(g_nccl_stream, g_compute_done, 0));
}

// The compute queued next starts after the collectives queued so far.
static void compute_after_nccl() {
    cudaCheck(cudaEventRecord(g_nccl_done, g_nccl_stream));
    cudaCheck(cudaStreamWaitEvent(0, g_nccl_done, 0));
}
#endif

// After the backward pass of micro-batch `micro` of a step: the step's gradient sum over the
// ranges r, in grad_acc_memory (the first micro-batch's copied, the others added).
static void accumulate_grads(GPT2* model, const GradRanges& r, int micro) {
    if (model->grad_acc_memory == nullptr) { model->grad_acc_memory = gpu_alloc(model->num_parameters, "gradient sum"); }
    long longest = 0;
    for (int k = 0; k < r.count; k++) { longest = std::max(longest, r.length[k]); }
    LAUNCH(accumulate_grads_kernel, dim3(blocks_for(longest, BLOCK), r.count), BLOCK, 0, 0)(model->grad_acc_memory,
                                                                                           model->grads_memory, r, micro);
    cudaCheckLaunch();
}

// The gradient's ranges that part `part` of the backward pass finishes (GRAD_PART_*, or a
// layer l in 0..L-1: that layer's slice of each of the 12 per-layer tensors).
static GradRanges grad_part(const GPT2* model, int part) {
    GradRanges r;
    const long L = model->config.num_layers;
    long offset = 0;
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) {
        const long size = (long)model->param_sizes[i];
        const bool per_layer = i >= 2 && i < NUM_PARAMETER_TENSORS - 2; // ln1w ... fcprojb: (L, ...)
        const bool embedding = i < 2, final_layernorm = i >= NUM_PARAMETER_TENSORS - 2;
        if (part >= 0 ? per_layer : part == GRAD_PART_EMBEDDINGS ? embedding : final_layernorm) {
            r.offset[r.count] = per_layer ? offset + part * (size / L) : offset;
            r.length[r.count++] = per_layer ? size / L : size;
        }
        offset += size;
    }
    return r;
}

static GradRanges grad_whole(const GPT2* model) {
    GradRanges r;
    r.count = 1;
    r.offset[0] = 0;
    r.length[0] = (long)model->num_parameters;
    return r;
}

// The averaged gradient's buffer and the check's, allocated on first use.
static void reduce_buffers(GPT2* model) {
    if (model->reduced_memory != nullptr) { return; }
    const long buckets = buckets_of((long)model->num_parameters);
    model->reduced_memory = gpu_alloc(model->num_parameters, "averaged gradient"); // float: room for either type
    model->bucket_sums = gpu_alloc(4 * (size_t)buckets, "all-reduce checksums");
    cudaCheck(cudaMalloc(&model->bucket_flags, (buckets + 1) * sizeof(int)));
}

// The average over the ranks (ncclAvg) of grads over the ranges r into reduced, in one group
// on the NCCL stream.
template <typename G>
static void allreduce_ranges(G* grads, G* reduced, const GradRanges& r) {
#ifdef USE_MPI
    ncclCheck(ncclGroupStart());
    for (int k = 0; k < r.count; k++) {
        ncclCheck(ncclAllReduce(grads + r.offset[k], reduced + r.offset[k], (size_t)r.length[k], nccl_type<G>(), ncclAvg,
                                g_nccl, g_nccl_stream));
    }
    ncclCheck(ncclGroupEnd());
#else
    (void)grads, (void)reduced, (void)r;
#endif
}

// The compute stream waits for the average a backward pass started (gradient_ready), if it
// has not already.
static void gradient_reduce_join(GPT2* model) {
#ifdef USE_MPI
    if (model->reducing) { compute_after_nccl(); }
#endif
    model->reducing = false;
}

// At the start of a backward pass (gpt2_backward): an average the last one started, which no
// update waited for, may still read the gradient it overwrites, so the compute stream waits
// for it; then whether this pass starts the step's average: in the last micro-batch of a
// data-parallel step with deferred checks. (With checks read at once, a rank's pass may stop
// half way and be redone, and the ranks would queue different collectives: there the update
// averages the whole gradient, ranks_reduce.)
static void gradient_reduce_begin(GPT2* model, bool last_micro) {
    gradient_reduce_join(model);
#ifdef USE_MPI
    model->reducing = g_nccl != nullptr && model->abft.deferred && last_micro;
#else
    (void)last_micro;
#endif
}

// Part `part` of the gradient is final (gpt2_backward). When this pass starts the step's average
// (gradient_reduce_begin), the part joins the step's sum (with several micro-batches), and its
// average over the ranks starts on the NCCL stream while the backward pass goes on.
static void gradient_ready(GPT2* model, int part, int micro, int micro_steps) {
    if (!model->reducing) { return; }
#ifdef USE_MPI
    const GradRanges r = grad_part(model, part);
    if (micro_steps > 1) { accumulate_grads(model, r, micro); }
    reduce_buffers(model);
    nccl_after_compute();
    if (micro_steps > 1) { allreduce_ranges(model->grad_acc_memory, (float*)model->reduced_memory, r); }
    else { allreduce_ranges(model->grads_memory, (floatX*)model->reduced_memory, r); }
#else
    (void)part, (void)micro, (void)micro_steps;
#endif
}

template <typename G>
static void grad_norm_queue(GPT2* model, const G* grads, const AdamWStep& s, float max_norm, const BucketCheck& check);

// The verified all-reduce. The gradient (n) is seen as buckets of ALLREDUCE_BUCKET elements:
// each rank sums its own buckets (and their |·|), the sums are averaged with the gradient, a few
// floats a bucket, and the average is linear, so each bucket of the averaged gradient must sum
// to its averaged checksum up to the rounding of the two reductions (bucket_tolerance); the
// gradient norm's pass over the average compares them (grad_norm_partial_kernel). The average
// is written out of place, so that a bucket that fails can be reduced again from every rank's
// own gradient.

// Each bucket's sum and |·| sum of x (n): sums (buckets, 2), a block per bucket; block 0 also
// clears the count of failed buckets for the check that follows.
template <typename G>
__global__ void bucket_sums_kernel(float* sums, int* failed_count, const G* x, long n) {
    const long i0 = (long)blockIdx.x * ALLREDUCE_BUCKET, i1 = min(n, i0 + ALLREDUCE_BUCKET);
    float s = 0.0f, sa = 0.0f;
    for (long i = i0 + threadIdx.x; i < i1; i += blockDim.x) {
        const float v = (float)x[i];
        s += v;
        sa += fabsf(v);
    }
    s = block_reduce(s, false);
    sa = block_reduce(sa, false);
    if (threadIdx.x == 0) {
        sums[2 * blockIdx.x] = s;
        sums[2 * blockIdx.x + 1] = sa;
        if (blockIdx.x == 0) { *failed_count = 0; }
    }
}

// -fi op=allreduce: the fault lands in this rank's averaged gradient x (n), seen as (buckets,
// ALLREDUCE_BUCKET): 0d an element, row a bucket, col an element of every bucket, 2d two
// elements of two buckets.
template <typename G>
static void allreduce_inject(Abft* abft, G* x, long n) {
    if (!abft_fault_fires(abft, OP_ALLREDUCE, 0)) { return; }
    const int type = abft->fault.type, bit = abft->fault.bit;
    const long buckets = buckets_of(n);
    auto corrupt = [&](long b, long j) {
        const long i = b * ALLREDUCE_BUCKET + j;
        if (i >= n) { return 0.0f; }
        G v;
        cudaCheck(cudaMemcpy(&v, x + i, sizeof(G), cudaMemcpyDeviceToHost));
        const float before = (float)v;
        v = (G)abft_fault_value(type, bit, before);
        cudaCheck(cudaMemcpy(x + i, &v, sizeof(G), cudaMemcpyHostToDevice));
        return before;
    };
    long b = abft_pick(abft, (int)buckets);
    long j = abft_pick(abft, (int)std::min<long>(ALLREDUCE_BUCKET, n - b * ALLREDUCE_BUCKET));
    float before = 0.0f;
    switch (abft->fault.pattern) {
        case PATTERN_0D: before = corrupt(b, j); break;
        case PATTERN_ROW: for (long jj = 0; jj < ALLREDUCE_BUCKET; jj++) { corrupt(b, jj); } break;
        case PATTERN_COL: for (long bb = 0; bb < buckets; bb++) { corrupt(bb, j); } break;
        default: // buckets b, b + 1 (whole ones), elements j, j + 1
            b = std::max(0L, std::min(b, buckets - 3));
            j = std::min<long>(j, ALLREDUCE_BUCKET - 2);
            for (long bb = b; bb < b + 2 && bb < buckets; bb++) { corrupt(bb, j); corrupt(bb, j + 1); }
    }
    abft->n.injected++;
    abft->n.injected_op[OP_ALLREDUCE]++;
    if (abft->cfg.verbose) {
        char line[256], value[96] = "";
        if (abft->fault.pattern == PATTERN_0D) {
            snprintf(value, sizeof(value), " (%.9g -> %.9g)", before, abft_fault_value(type, bit, before));
        }
        snprintf(line, sizeof(line), "fault: step %d allreduce on rank %d: %s %s at bucket %ld element %ld%s\n", abft->step,
                 g_ranks.rank, abft_fault_type_names[type], abft_pattern_names[abft->fault.pattern], b, j, value);
        if (abft->deferred) { abft->pending += line; } else { fputs(line, stdout); }
    }
}

// The step's gradient averaged over the ranks (ncclAvg) into model->reduced_memory, in stream
// order before the update: started in the backward pass (gradient_ready), or here; with a
// check due (OP_ALLREDUCE), each rank's bucket checksums are averaged with it and *check says
// what grad_norm_queue compares the average with. Returns the averaged gradient (grads itself
// outside an mpirun job, and no check).
template <typename G>
static G* ranks_reduce(GPT2* model, G* grads, const AbftPassGate& gate, BucketCheck* check) {
#ifdef USE_MPI
    if (g_nccl == nullptr) { return grads; }
    Abft* abft = &model->abft;
    const long n = (long)model->num_parameters, buckets = buckets_of(n);
    reduce_buffers(model);
    G* reduced = (G*)model->reduced_memory;
    float *mine = model->bucket_sums, *chk = model->bucket_sums + 2 * buckets;
    const bool due = abft_due(abft, OP_ALLREDUCE);
    if (due) {
        abft->n.checked[OP_ALLREDUCE]++;
        AbftOutcome* out = nullptr;
        if (abft->deferred) {
            out = abft_gpu_log_append(&g_abft_log, OP_ALLREDUCE, 0, 1, &abft->pending);
            cudaCheck(cudaEventRecord(g_abft_log.records.back().start, 0));
        }
        const float u = sizeof(G) == sizeof(float) ? FP32_UNIT_ROUNDOFF : ABFT_BF16_UNIT_ROUNDOFF;
        *check = BucketCheck{chk, model->bucket_flags, AbftFixer{AbftGemm{}, out, gate, abft->cfg.tau, 0.0f}, g_ranks.world, u};
        LAUNCH(bucket_sums_kernel<G>, (int)buckets, BLOCK, 0, 0)(mine, model->bucket_flags + buckets, grads, n);
        cudaCheckLaunch();
    }
    nccl_after_compute();
    ncclCheck(ncclGroupStart()); // the checksums ride with the gradient, unless the backward pass started it
    if (!model->reducing) { allreduce_ranges(grads, reduced, grad_whole(model)); }
    if (due) { ncclCheck(ncclAllReduce(mine, chk, 2 * (size_t)buckets, ncclFloat32, ncclAvg, g_nccl, g_nccl_stream)); }
    ncclCheck(ncclGroupEnd());
    compute_after_nccl();
    model->reducing = false;
    allreduce_inject(abft, reduced, n);
    return reduced;
#else
    (void)model, (void)gate, (void)check;
    return grads;
#endif
}

// After the averaged gradient's norm and check were queued (grad_norm_queue): in a training
// pass the ranks' pass gates are reduced (max), so that a rank whose pass or all-reduce left a
// fault makes every rank skip the update; the host then finds the fault on that rank after the
// step's wait, and every rank redoes the step with its checks read at once. There (no fix.out)
// the buckets that failed on any rank are reduced again, by every rank, from their own
// gradient, and the norm and the check queued again; a bucket still failing is a rank that
// fails for good. Counted on the ranks whose own buckets failed.
template <typename G>
static void ranks_settle_reduce(GPT2* model, G* grads, G* reduced, const AdamWStep& s, float max_norm,
                                const BucketCheck& check, const AbftPassGate& gate) {
#ifdef USE_MPI
    if (g_nccl == nullptr) { return; }
    Abft* abft = &model->abft;
    if (check.chk != nullptr && check.fix.out != nullptr) { cudaCheck(cudaEventRecord(g_abft_log.records.back().stop, 0)); }
    if (gate.failed != nullptr) {
        nccl_after_compute();
        ncclCheck(ncclAllReduce(gate.failed, gate.failed, 1, ncclInt32, ncclMax, g_nccl, g_nccl_stream));
        compute_after_nccl();
    }
    if (check.chk == nullptr || abft->deferred) { return; }
    const long n = (long)model->num_parameters, buckets = buckets_of(n);
    int mine = 0;
    cudaCheck(cudaMemcpy(&mine, check.flags + buckets, sizeof(int), cudaMemcpyDeviceToHost));
    if (!ranks_any(mine > 0)) { return; }
    std::vector<int> failed(buckets);
    cudaCheck(cudaMemcpy(failed.data(), check.flags, buckets * sizeof(int), cudaMemcpyDeviceToHost));
    ranks_union(failed.data(), (int)buckets);
    long elements = 0, count = 0, first = -1;
    nccl_after_compute();
    ncclCheck(ncclGroupStart());
    for (long b = 0; b < buckets; b++) {
        if (!failed[b]) { continue; }
        const long i0 = b * ALLREDUCE_BUCKET, len = std::min<long>(ALLREDUCE_BUCKET, n - i0);
        ncclCheck(ncclAllReduce(grads + i0, reduced + i0, (size_t)len, nccl_type<G>(), ncclAvg, g_nccl, g_nccl_stream));
        elements += len;
        count++;
        if (first < 0) { first = b; }
    }
    ncclCheck(ncclGroupEnd());
    compute_after_nccl();
    cudaCheck(cudaMemset(check.flags + buckets, 0, sizeof(int)));
    grad_norm_queue(model, reduced, s, max_norm, check);
    int still = 0;
    cudaCheck(cudaMemcpy(&still, check.flags + buckets, sizeof(int), cudaMemcpyDeviceToHost));
    if (ranks_any(still > 0)) {
        die("abft", "a rank's network or memory is failing: check the machines (nvidia-smi, NCCL_DEBUG=WARN)",
            "step %d: the gradient's all-reduce still fails its check after its %ld faulty buckets were reduced again",
            abft->step, count);
    }
    if (mine > 0) {
        abft->n.detected[OP_ALLREDUCE]++;
        abft_count_repair(abft, OP_ALLREDUCE, 0, 0, true, (int)elements, count == 1 ? FIX_0D : FIX_SCATTERED);
        if (abft->cfg.verbose) {
            printf("abft: step %d allreduce: %ld bucket%s reduced again from bucket %ld on (every rank)\n", abft->step, count,
                   count == 1 ? "" : "s", first);
        }
    }
#else
    (void)model, (void)grads, (void)reduced, (void)s, (void)max_norm, (void)check, (void)gate;
#endif
}

static void gpt2_allocate_moments(GPT2* model) {
    if (model->m_memory != nullptr) { return; }
    model->m_memory = gpu_alloc(model->num_parameters, "AdamW moments");
    model->v_memory = gpu_alloc(model->num_parameters, "AdamW moments");
    cudaCheck(cudaMemset(model->m_memory, 0, model->num_parameters * sizeof(float)));
    cudaCheck(cudaMemset(model->v_memory, 0, model->num_parameters * sizeof(float)));
}

// Queues the gradient's norm, scale and guard verdict, and their copy to the host; with
// check.chk, the averaged gradient's check in the same pass (ranks_reduce).
template <typename G>
static void grad_norm_queue(GPT2* model, const G* grads, const AdamWStep& s, float max_norm, const BucketCheck& check) {
    if (model->norm == nullptr) {
        cudaCheck(cudaMalloc(&model->norm, sizeof(GradNorm)));
        cudaCheck(cudaMalloc(&model->norm_partial, NORM_BLOCKS * sizeof(float)));
        cudaCheck(cudaMallocHost(&model->norm_host, sizeof(GradNorm)));
    }
    const long n = (long)model->num_parameters;
    const int blocks = norm_blocks(n);
    LAUNCH(grad_norm_partial_kernel<G>, blocks, BLOCK, 0, 0)(model->norm_partial, grads, n, check);
    cudaCheckLaunch();
    LAUNCH(grad_norm_decide_kernel, 1, NORM_BLOCKS, 0, 0)(model->norm, model->norm_partial, blocks, s.grad_clip,
                                                          s.micro_steps, max_norm);
    cudaCheckLaunch();
    cudaCheck(cudaMemcpyAsync(model->norm_host, model->norm, sizeof(GradNorm), cudaMemcpyDeviceToHost, 0));
}

// AdamW (llmc/optimizer.h) on the gradient of the step (averaged over its micro-batches and,
// in a data-parallel run, over the ranks: ranks_reduce; clipped to s.grad_clip), decay on
// the 2-D weights. With max_norm >= 0 (the step guard's
// limit; GUARD_OFF: none), not applied when the gradient's norm is above it or not finite:
// the device decides, the host learns it after the step's wait (gpt2_synchronize).
// grads: the backward pass's (floatX), or their float sum over the step's micro-batches.
template <typename G>
static void gpt2_update_from(GPT2* model, G* grads, const AdamWStep& s, int t, float max_norm) {
    gpt2_allocate_moments(model);
    const float bc1 = 1.0f - powf(s.beta1, (float)t), bc2 = 1.0f - powf(s.beta2, (float)t);
    const long n = (long)model->num_parameters;
    // queued before the host has read the pass's verdicts (gpt2_train_step), so gated on them
    const AbftPassGate gate = model->abft.cfg.enabled && model->abft.deferred ? abft_gpu_pass_gate() : AbftPassGate{};
    BucketCheck check;
    G* avg = ranks_reduce(model, grads, gate, &check);
    grad_norm_queue(model, avg, s, max_norm, check);
    ranks_settle_reduce(model, grads, avg, s, max_norm, check, gate);
    const int C = model->config.channels; // every parameter tensor is a multiple of C long
    const AbftKernelCheck k = kernel_check(model, OP_ADAMW, 0, AbftKernelShape{n / C, C});
    floatX* copy = (void*)model->master_memory == (void*)model->params_memory ? nullptr : model->params_memory;
    LAUNCH(adamw_kernel<G>, blocks_for(n, BLOCK), BLOCK, 0, 0)(model->master_memory, copy, avg, model->m_memory,
                                                                model->v_memory, n, s, bc1, bc2, decay_table(model->param_sizes),
                                                                gate, model->norm, k, abft_adam_bound(s.beta1, s.beta2, t));
    cudaCheckLaunch();
    kernel_verdict(model, k);
    abft_gpu_log_fetch(); // a deferred verdict comes back by the step's closing wait
}

static void gpt2_update(GPT2* model, const AdamWStep& s, int t, float max_norm) {
    if (s.micro_steps > 1) { gpt2_update_from(model, model->grad_acc_memory, s, t, max_norm); }
    else { gpt2_update_from(model, model->grads_memory, s, t, max_norm); }
}

static void gpt2_free(GPT2* model) {
    void* device[] = {model->params_memory, model->master_memory != (void*)model->params_memory ? model->master_memory : nullptr,
                      model->grads_memory, model->grad_acc_memory, model->m_memory, model->v_memory,
                      model->acts_memory, model->grads_acts_memory, model->losses, model->abft_sums_memory,
                      model->reduced_memory, model->bucket_sums, model->bucket_flags};
    for (void* p : device) { cudaCheck(cudaFree(p)); }
    cudaCheck(cudaFree(model->norm));
    cudaCheck(cudaFree(model->norm_partial));
    cudaCheck(cudaFreeHost(model->norm_host));
    cudaCheck(cudaFree(model->inputs));
    cudaCheck(cudaFree(model->buckets.tokens));
    cudaCheck(cudaFree(model->buckets.offsets));
    cudaCheck(cudaFree(model->buckets.positions));
    cudaCheck(cudaFree(model->targets));
    free(model->cpu_losses);
    free(model->host.params);
    free(model->host.m);
    free(model->host.v);
    abft_free(&model->abft);
    abft_gpu_weight_stack_free(&model->qkvw_sums);
    abft_gpu_weight_stack_free(&model->attprojw_sums);
    lt_plans_free();
}

// ----------------------------------------------------------------------------
// what llmc/trainer.h and the tests need besides the passes: host copies, logits, gradients

// Host arrays for the parameters and (once they exist) the moments; their contents are those
// of the last gpt2_to_host, or what the caller writes before gpt2_from_host.
static HostView gpt2_host_view(GPT2* model) {
    HostView& h = model->host;
    const size_t bytes = model->num_parameters * sizeof(float);
    if (h.params == nullptr) { h.params = (float*)malloc_check(bytes, "host copy of the parameters"); }
    if (model->m_memory != nullptr && h.m == nullptr) {
        h.m = (float*)malloc_check(bytes, "host copy of the AdamW moments");
        h.v = (float*)malloc_check(bytes, "host copy of the AdamW moments");
    }
    return h;
}

static void gpt2_to_host(GPT2* model) {
    const HostView h = gpt2_host_view(model);
    const size_t bytes = model->num_parameters * sizeof(float);
    cudaCheck(cudaMemcpy(h.params, model->master_memory, bytes, cudaMemcpyDeviceToHost));
    if (h.m != nullptr) {
        cudaCheck(cudaMemcpy(h.m, model->m_memory, bytes, cudaMemcpyDeviceToHost));
        cudaCheck(cudaMemcpy(h.v, model->v_memory, bytes, cudaMemcpyDeviceToHost));
    }
}

static void gpt2_from_host(GPT2* model) {
    const HostView h = gpt2_host_view(model);
    upload_params(model, h.params);
    if (h.m != nullptr) {
        upload(model->m_memory, h.m, model->num_parameters);
        upload(model->v_memory, h.v, model->num_parameters);
    }
}

// For the tests: the gradients of the last backward pass; a fresh optimizer.
static void gpt2_copy_grads(const GPT2* model, float* out) {
    std::vector<floatX> grads(model->num_parameters);
    cudaCheck(cudaMemcpy(grads.data(), model->grads_memory, grads.size() * sizeof(floatX), cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < grads.size(); i++) { out[i] = (float)grads[i]; }
}

static void gpt2_zero_moments(GPT2* model) {
    if (model->m_memory == nullptr) { return; }
    cudaCheck(cudaMemset(model->m_memory, 0, model->num_parameters * sizeof(float)));
    cudaCheck(cudaMemset(model->v_memory, 0, model->num_parameters * sizeof(float)));
}

// The V logits of position bt of the last forward pass (a training pass overwrites them with
// their gradient), as floats.
static void gpt2_logits_row(const GPT2* model, long bt, float* out) {
    const int V = model->config.vocab_size;
    const floatX* row = model->acts.logits + bt * model->config.padded_vocab_size;
    std::vector<floatX> logits(V);
    cudaCheck(cudaMemcpy(logits.data(), row, V * sizeof(floatX), cudaMemcpyDeviceToHost));
    for (int v = 0; v < V; v++) { out[v] = (float)logits[v]; }
}

// Checked after every step under -rollback: the counter is allocated once.
static bool gpt2_params_finite(const GPT2* model) {
    static int* count = nullptr;
    if (count == nullptr) { cudaCheck(cudaMalloc(&count, sizeof(int))); }
    cudaCheck(cudaMemset(count, 0, sizeof(int)));
    const long n = (long)model->num_parameters;
    LAUNCH(count_nonfinite_kernel, blocks_for(n, BLOCK), BLOCK, 0, 0)(count, model->master_memory, n);
    cudaCheckLaunch();
    int bad = 0;
    cudaCheck(cudaMemcpy(&bad, count, sizeof(int), cudaMemcpyDeviceToHost));
    return bad == 0;
}

// The deferred ABFT verdicts of the pass that just ran (llmc/abft_gpu.cuh): counted and
// printed; false when a fault was beyond the checksums (the caller redoes the pass).
static bool gpt2_settle(GPT2* model) { return abft_gpu_settle(&model->abft); }

// Waits until the GPU has finished all the work launched so far: before every clock read
// that times GPU work (a launch returns long before its kernel ends).
static void gpt2_synchronize(GPT2* model) {
    cudaCheck(cudaDeviceSynchronize());
    model->grad_norm = model->norm_host != nullptr ? model->norm_host->norm : -1.0f;
    model->update_skipped = model->norm_host != nullptr && model->norm_host->skip;
}

static void gpt2_describe_backend(char* out, size_t size) {
    cudaDeviceProp prop;
    cudaCheck(cudaGetDeviceProperties(&prop, 0));
    const char* math = sizeof(floatX) != sizeof(float) ? "bf16 (fp32 masters, accumulation and statistics)"
                       : g_tf32                         ? "fp32, TF32 tensor cores"
                                                        : "fp32";
    snprintf(out, size, "%.120s (sm_%d%d), %s", prop.name, prop.major, prop.minor, math);
}

// TF32 tensor cores exist from compute capability 8.0 (Ampere) on; -tf32 auto uses them there,
// as llm.c does: 10 fraction bits per operand (fp32 accumulation) are well inside training's
// noise, for several times fp32's GEMM throughput. TF32 converts fp32 operands: never in the
// bf16 build, whose GEMMs run on the bf16 tensor cores.
static bool gpt2_has_tf32() {
    if (sizeof(floatX) != sizeof(float)) { return false; }
    cuda_init();
    cudaDeviceProp prop;
    cudaCheck(cudaGetDeviceProperties(&prop, 0));
    return prop.major >= 8;
}

// -tf32: every GEMM takes its compute type per call (gemm_lt, gemm_gpu); the checks widen their
// tolerance by TF32's operand rounding
static void gpt2_set_tf32(GPT2* model, bool on) {
    cuda_init();
    if (on && sizeof(floatX) != sizeof(float)) {
        die("-tf32", "TF32 is for the fp32 build (make train_gpt2cu PRECISION=FP32); this one's GEMMs are bf16 already",
            "-tf32 1 in a bf16 build");
    }
    if (on && !gpt2_has_tf32()) {
        cudaDeviceProp prop;
        cudaCheck(cudaGetDeviceProperties(&prop, 0));
        die("-tf32", "TF32 tensor cores need compute capability 8.0 (Ampere) or later: use -tf32 0, or leave -tf32 at auto",
            "%.120s is sm_%d%d", prop.name, prop.major, prop.minor);
    }
    g_tf32 = on;
    model->abft.cfg.operand_u = on ? ABFT_TF32_UNIT_ROUNDOFF : 0.0f;
}

// The GPU's dense peak in the precision in use, for the MFU (as llm.c's, against the
// datasheet): fp32 on the CUDA cores, TF32 or bf16 (fp32 accumulation) on the tensor cores. 0
// for a card not listed.
static double gpt2_peak_flops(const GPT2*) {
    struct Peak {
        const char* name; // a substring of the device name
        double fp32, tf32, bf16; // TFLOP/s
    };
    static const Peak peaks[] = {
        {"H200", 67.0, 495.0, 989.0},     {"H100 PCIe", 51.2, 378.0, 756.0}, {"H100", 67.0, 495.0, 989.0},
        {"A100", 19.5, 156.0, 312.0},     {"A10G", 31.2, 62.5, 125.0},       {"L40S", 91.6, 183.0, 362.0},
        {"L4", 30.3, 60.0, 121.0},        {"RTX 4090", 82.6, 82.6, 165.2},   {"RTX 3090", 35.6, 35.6, 71.0},
    };
    cudaDeviceProp prop;
    cudaCheck(cudaGetDeviceProperties(&prop, 0));
    for (const Peak& p : peaks) {
        if (strstr(prop.name, p.name) != nullptr) {
            return 1e12 * (sizeof(floatX) != sizeof(float) ? p.bf16 : g_tf32 ? p.tf32 : p.fp32);
        }
    }
    return 0.0;
}

// ----------------------------------------------------------------------------
// main: the training program of llmc/trainer.h on this model

#include "llmc/trainer.h"

#ifndef TESTING
int main(int argc, char** argv) {
    ranks_start(&argc, &argv);
    gpus_start();
    const int status = run_program(parse_options(argc, argv));
    gpus_end();
    ranks_end();
    return status;
}
#endif
