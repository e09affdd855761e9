// train_gpt2.cpp: GPT-2 training on the CPU with ATTNChecker inside the attention passes.
//
// The readable executable specification of the project: every layer's forward and backward
// pass in plain loops (OpenMP), the matrix multiplications through one GEMM primitive
// (OpenBLAS sgemm), AdamW, llm.c's file formats. The 4 forward and 8 backward GEMMs of every
// attention layer run under ATTNChecker (abft.cuh): each output is checked against checksums
// of its operands, faults are rebuilt in place, and what checksums cannot rebuild climbs a
// ladder: recompute the GEMM, recompute the layer, redo the step. No step is ever lost.
//
//   make train_gpt2 && ./train_gpt2 -h
//
// What the CUDA trainer (train_gpt2.cu) shares with this file lives in headers: the model's
// definition and memory layout (llmc/gpt2_model.h), the composition of a transformer block
// from the layers below (llmc/gpt2_block.h), ATTNChecker (abft.cuh), and the training program
// around the model: flags, loop, log, checkpoints (llmc/trainer.h). This file is the layers
// themselves, the model's passes, and main.
//
// Reading path, from the bottom of this file to a repaired GEMM:
//   main → run_program → train → train_step → gpt2_train_step → gpt2_passes (llmc/trainer.h)
//        → gpt2_forward (here) → block_forward → attention_forward (llmc/gpt2_block.h)
//        → protected_gemm (here) → abft_gemm → abft_verify (abft.cuh)
//        → abft_check_columns (detect) → abft_repair → abft_judge (locate), abft_apply (llmc/abft_core.h)
//
// Parameter gradients are written, not accumulated (no zeroing pass); the one exception is
// wte, written by the LM head and then added to by the embedding backward. A step of several
// micro-batches (-d) sums them in a buffer of their own (accumulate_grads).
#include <cblas.h>
#include <omp.h>

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
#include "llmc/rand.h"
#include "llmc/utils.h"

// ----------------------------------------------------------------------------
// the GEMM primitive: C[b] = alpha · A[b] · B[b] + bias, every matmul of the model goes here

static void gemm_one(const AbftGemm& g, int b) {
    const MatView A = abft_entry(g.A, g.strideA, b), B = abft_entry(g.B, g.strideB, b);
    float* C = g.C + b * g.strideC;
    float beta = 0.0f;
    if (g.bias != nullptr) { // start from the bias and accumulate: one pass over C
        for (int i = 0; i < g.M; i++) { memcpy(C + (long)i * g.ldc, g.bias, g.N * sizeof(float)); }
        beta = 1.0f;
    }
    CBLAS_TRANSPOSE ta = A.cs == 1 ? CblasNoTrans : CblasTrans;
    CBLAS_TRANSPOSE tb = B.cs == 1 ? CblasNoTrans : CblasTrans;
    int lda = (int)(A.cs == 1 ? A.rs : A.cs), ldb = (int)(B.cs == 1 ? B.rs : B.cs);
    cblas_sgemm(CblasRowMajor, ta, tb, g.M, g.N, g.K, g.alpha, A.p, lda, B.p, ldb, beta, C, (int)g.ldc);
}

static void gemm_cpu(const AbftGemm& g) {
    if (g.batch == 1) { gemm_one(g, 0); return; } // OpenBLAS threads inside
    #pragma omp parallel for schedule(static)
    for (int b = 0; b < g.batch; b++) { gemm_one(g, b); } // one thread per entry
}

// ----------------------------------------------------------------------------
// all the individual layers' forward and backward passes
// B = batch, T = sequence length, C = channels, V = vocab, NH = heads, HS = head size

static void encoder_forward(float* out, const int* inp, const float* wte, const float* wpe, int B, int T, int C) {
    // out (B,T,C), inp (B,T) token ids, wte (V,C), wpe (maxT,C)
    #pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            float* o = out + ((long)b * T + t) * C;
            const float* te = wte + (long)inp[b * T + t] * C;
            const float* pe = wpe + (long)t * C;
            for (int i = 0; i < C; i++) { o[i] = te[i] + pe[i]; }
        }
    }
}

static void encoder_backward(float* dwte, float* dwpe, const float* dout, const int* inp, int B, int T, int C) {
    // dwpe is written; dwte is added to (the LM head wrote it first)
    #pragma omp parallel for
    for (int t = 0; t < T; t++) {
        float* dpe = dwpe + (long)t * C;
        for (int i = 0; i < C; i++) { dpe[i] = 0.0f; }
        for (int b = 0; b < B; b++) {
            const float* d = dout + ((long)b * T + t) * C;
            for (int i = 0; i < C; i++) { dpe[i] += d[i]; }
        }
    }
    for (int bt = 0; bt < B * T; bt++) { // serial: two positions may hold the same token
        float* dte = dwte + (long)inp[bt] * C;
        const float* d = dout + (long)bt * C;
        for (int i = 0; i < C; i++) { dte[i] += d[i]; }
    }
}

// One row of the layernorm, with the fault (-fi ln1/ln2/lnf) in its normalized values; the
// residual of their invariant (mean 0, variance 1 − eps·rstd²: llmc/abft_invariants.h).
static float layernorm_forward_row(float* o, float* mean, float* rstd, const float* x, const float* weight,
                                   const float* bias, long row, int C, const AbftKernelFault& fault) {
    const float eps = 1e-5f;
    float m = 0.0f;
    for (int i = 0; i < C; i++) { m += x[i]; }
    m /= C;
    float v = 0.0f;
    for (int i = 0; i < C; i++) { float d = x[i] - m; v += d * d; }
    v /= C;
    float s = 1.0f / sqrtf(v + eps);
    float sum_n = 0.0f, sum_n2 = 0.0f;
    for (int i = 0; i < C; i++) {
        float n = abft_kernel_fault_apply(fault, row, i, s * (x[i] - m));
        o[i] = n * weight[i] + bias[i];
        sum_n += n;
        sum_n2 += n * n;
    }
    mean[row] = m;
    rstd[row] = s;
    return abft_layernorm_residual(sum_n, sum_n2, m, s, eps, C);
}

// out (B,T,C); mean and rstd (B,T) kept for the backward pass. With k.on, a row that breaks the
// invariant is recomputed (k's verdict counts both).
static void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                              const float* bias, int B, int T, int C, const AbftRowSums& /* none here */ = AbftRowSums{},
                              const AbftKernelCheck& k = AbftKernelCheck{}) {
    int failed = 0, still = 0;
    float worst = 0.0f;
    #pragma omp parallel for reduction(+ : failed, still) reduction(max : worst)
    for (int bt = 0; bt < B * T; bt++) {
        const float* x = inp + (long)bt * C;
        float* o = out + (long)bt * C;
        const float r = layernorm_forward_row(o, mean, rstd, x, weight, bias, bt, C, k.fault);
        if (r <= k.tau || !k.on) { worst = fmaxf(worst, r); continue; }
        failed++;
        still += !(layernorm_forward_row(o, mean, rstd, x, weight, bias, bt, C, k.refault) <= k.tau);
    }
    abft_kernel_report(k, failed, still, worst);
}

static void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                               const float* weight, const float* mean, const float* rstd, int B, int T, int C,
                               const AbftRowSums& /* none here */ = AbftRowSums{}) {
    // dinp is added to (the residual stream's gradient has two paths); dweight, dbias are written
    #pragma omp parallel for
    for (int bt = 0; bt < B * T; bt++) {
        const float* d = dout + (long)bt * C;
        const float* x = inp + (long)bt * C;
        float m = mean[bt], s = rstd[bt];
        float dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;
        for (int i = 0; i < C; i++) {
            float dnorm = weight[i] * d[i];
            dnorm_mean += dnorm;
            dnorm_norm_mean += dnorm * (x[i] - m) * s;
        }
        dnorm_mean /= C;
        dnorm_norm_mean /= C;
        float* di = dinp + (long)bt * C;
        for (int i = 0; i < C; i++) {
            float norm = (x[i] - m) * s;
            di[i] += (weight[i] * d[i] - dnorm_mean - norm * dnorm_norm_mean) * s;
        }
    }
    #pragma omp parallel for
    for (int i = 0; i < C; i++) {
        float dw = 0.0f, db = 0.0f;
        for (int bt = 0; bt < B * T; bt++) {
            float d = dout[(long)bt * C + i];
            dw += (inp[(long)bt * C + i] - mean[bt]) * rstd[bt] * d;
            db += d;
        }
        dweight[i] = dw;
        dbias[i] = db;
    }
}

// dbias (OC) = Σ over rows of dout (rows, OC)
static void bias_backward(float* dbias, const float* dout, int rows, int OC) {
    #pragma omp parallel for
    for (int o = 0; o < OC; o++) {
        float s = 0.0f;
        for (int r = 0; r < rows; r++) { s += dout[(long)r * OC + o]; }
        dbias[o] = s;
    }
}

#define GELU_SCALING_FACTOR 0.7978845608028654f // sqrt(2/pi)

static float gelu_of(float x) { return 0.5f * x * (1.0f + tanhf(GELU_SCALING_FACTOR * (x + 0.044715f * x * x * x))); }

// out = gelu(inp) over N values, (rows, 4C); with k.on, a value outside GELU's bounds
// (llmc/abft_invariants.h) is recomputed.
static void gelu_forward(float* out, const float* inp, long N, const AbftKernelCheck& k = AbftKernelCheck{}) {
    int failed = 0, still = 0;
    #pragma omp parallel for reduction(+ : failed, still)
    for (long i = 0; i < N; i++) {
        float x = inp[i];
        float y = abft_kernel_fault_apply_at(k.fault, i, gelu_of(x));
        if (k.on && !(abft_gelu_residual(x, y) <= k.tau)) {
            failed++;
            y = abft_kernel_fault_apply_at(k.refault, i, gelu_of(x));
            still += !(abft_gelu_residual(x, y) <= k.tau);
        }
        out[i] = y;
    }
    abft_kernel_report(k, failed, still, 0.0f); // bounds only: a passing value's residual is 0
}

static void gelu_backward(float* dinp, const float* inp, const float* dout, long N) {
    #pragma omp parallel for
    for (long i = 0; i < N; i++) {
        float x = inp[i];
        float u = GELU_SCALING_FACTOR * (x + 0.044715f * x * x * x);
        float th = tanhf(u);
        float sech2 = 1.0f - th * th;
        float local = 0.5f * (1.0f + th) + 0.5f * x * sech2 * GELU_SCALING_FACTOR * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] = local * dout[i];
    }
}

static void zero_floats(float* p, size_t n) { memset(p, 0, n * sizeof(float)); }

// Row `row` of out = a + b, with the fault (-fi res2/res3); the residual of its invariant (each
// value a + b to rounding).
static float residual_forward_row(float* out, const float* a, const float* b, long row, int C, const AbftKernelFault& fault) {
    float residual = 0.0f;
    for (int c = 0; c < C; c++) {
        const long i = row * C + c;
        out[i] = abft_kernel_fault_apply(fault, row, c, a[i] + b[i]);
        residual = fmaxf(residual, abft_add_residual(a[i], b[i], out[i]));
    }
    return residual;
}

// out = a + b (rows, C); with k.on, a row with a value that is not a + b to rounding is recomputed.
static void residual_forward(float* out, const float* a, const float* b, int rows, int C,
                             const AbftKernelCheck& k = AbftKernelCheck{}) {
    int failed = 0, still = 0;
    float worst = 0.0f;
    #pragma omp parallel for reduction(+ : failed, still) reduction(max : worst)
    for (long row = 0; row < rows; row++) {
        const float r = residual_forward_row(out, a, b, row, C, k.fault);
        if (r <= k.tau || !k.on) { worst = fmaxf(worst, r); continue; }
        failed++;
        still += !(residual_forward_row(out, a, b, row, C, k.refault) <= k.tau);
    }
    abft_kernel_report(k, failed, still, worst);
}

// ----------------------------------------------------------------------------
// attention: the memory ops around the protected GEMMs

// qkv (B,T,3,NH,HS) -> q, k, v (B,NH,T,HS) each, so that every head is a contiguous matrix
static void permute_forward(float* q, float* k, float* v, const float* qkv, int B, int T, int NH, int HS,
                            const AbftLayerSums& /* none here */) {
    const int C = NH * HS;
    #pragma omp parallel for collapse(3)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            for (int t = 0; t < T; t++) {
                const float* src = qkv + ((long)b * T + t) * 3 * C + h * HS;
                long dst = (((long)b * NH + h) * T + t) * HS;
                for (int i = 0; i < HS; i++) {
                    q[dst + i] = src[i];
                    k[dst + i] = src[C + i];
                    v[dst + i] = src[2 * C + i];
                }
            }
        }
    }
}

static void permute_backward(float* dqkv, const float* dq, const float* dk, const float* dv, int B, int T, int NH, int HS,
                             const AbftLayerSums& /* none here */) {
    const int C = NH * HS;
    #pragma omp parallel for collapse(3)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            for (int t = 0; t < T; t++) {
                float* dst = dqkv + ((long)b * T + t) * 3 * C + h * HS;
                long src = (((long)b * NH + h) * T + t) * HS;
                for (int i = 0; i < HS; i++) {
                    dst[i] = dq[src + i];
                    dst[C + i] = dk[src + i];
                    dst[2 * C + i] = dv[src + i];
                }
            }
        }
    }
}

// y (B,NH,T,HS) -> out (B,T,C)
static void unpermute_forward(float* out, const float* y, int B, int T, int NH, int HS, const AbftLayerSums& /* none here */) {
    const int C = NH * HS;
    #pragma omp parallel for collapse(3)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            for (int t = 0; t < T; t++) {
                const float* src = y + (((long)b * NH + h) * T + t) * HS;
                float* dst = out + ((long)b * T + t) * C + h * HS;
                for (int i = 0; i < HS; i++) { dst[i] = src[i]; }
            }
        }
    }
}

static void unpermute_backward(float* dy, const float* dout, int B, int T, int NH, int HS) {
    const int C = NH * HS;
    #pragma omp parallel for collapse(3)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            for (int t = 0; t < T; t++) {
                float* dst = dy + (((long)b * NH + h) * T + t) * HS;
                const float* src = dout + ((long)b * T + t) * C + h * HS;
                for (int i = 0; i < HS; i++) { dst[i] = src[i]; }
            }
        }
    }
}

// Row `row` of the causal softmax, with the fault (-fi softmax) in its output; the residual of
// its invariant (sums to 1, every entry in [0, 1]).
static float softmax_forward_row(float* p, const float* s, long row, int T, const AbftKernelFault& fault) {
    const int t = (int)(row % T);
    float maxval = -INFINITY;
    for (int j = 0; j <= t; j++) { maxval = fmaxf(maxval, s[j]); }
    float sum = 0.0f;
    for (int j = 0; j <= t; j++) { p[j] = expf(s[j] - maxval); sum += p[j]; }
    float inv = 1.0f / sum;
    float psum = 0.0f;
    int outside = 0;
    for (int j = 0; j < T; j++) {
        float pj = abft_kernel_fault_apply(fault, row, j, j <= t ? p[j] * inv : 0.0f);
        p[j] = pj;
        psum += pj;
        outside += !abft_unit_interval(pj);
    }
    return abft_softmax_residual(psum, outside, t + 1);
}

// Causal softmax over each row of S (B,NH,T,T): P[i][j] for j <= i; zeros above the diagonal
// so that the next GEMM (P·V) can run over whole rows. With k.on, a row that breaks the
// invariant is recomputed.
static void softmax_forward(float* att, const float* preatt, int B, int NH, int T, const AbftLayerSums& /* none here */,
                            const AbftKernelCheck& k = AbftKernelCheck{}) {
    int failed = 0, still = 0;
    float worst = 0.0f;
    #pragma omp parallel for reduction(+ : failed, still) reduction(max : worst)
    for (long row = 0; row < (long)B * NH * T; row++) {
        float* p = att + row * T;
        const float* s = preatt + row * T;
        const float r = softmax_forward_row(p, s, row, T, k.fault);
        if (r <= k.tau || !k.on) { worst = fmaxf(worst, r); continue; }
        failed++;
        still += !(softmax_forward_row(p, s, row, T, k.refault) <= k.tau);
    }
    abft_kernel_report(k, failed, still, worst);
}

// dS[i][j] = P[i][j] · (dP[i][j] − Σ_k P[i][k]·dP[i][k]) on and below the diagonal, 0 above.
static void softmax_backward(float* dpreatt, const float* datt, const float* att, int B, int NH, int T,
                             const AbftLayerSums& /* none here */) {
    #pragma omp parallel for
    for (long row = 0; row < (long)B * NH * T; row++) {
        const int t = (int)(row % T);
        const float* p = att + row * T;
        const float* dp = datt + row * T;
        float* ds = dpreatt + row * T;
        float dot = 0.0f;
        for (int j = 0; j <= t; j++) { dot += p[j] * dp[j]; }
        for (int j = 0; j <= t; j++) { ds[j] = p[j] * (dp[j] - dot); }
        for (int j = t + 1; j < T; j++) { ds[j] = 0.0f; }
    }
}

// ----------------------------------------------------------------------------
// the classifier: softmax over the V real tokens and cross-entropy, then its backward

// Position bt's probabilities (Vp) and, with targets, its loss, with the fault (-fi loss) in
// the loss; the residual of their invariants (the probabilities a softmax's, the loss in its
// bounds).
static float crossentropy_forward_row(float* p, float* losses, const float* l, const int* targets, long bt, int V, int Vp,
                                      const AbftKernelFault& fault) {
    float maxval = -INFINITY;
    for (int i = 0; i < V; i++) { maxval = fmaxf(maxval, l[i]); }
    float sum = 0.0f;
    for (int i = 0; i < V; i++) { p[i] = expf(l[i] - maxval); sum += p[i]; }
    float psum = 0.0f;
    int outside = 0;
    for (int i = 0; i < V; i++) { p[i] /= sum; psum += p[i]; outside += !abft_unit_interval(p[i]); }
    for (int i = V; i < Vp; i++) { p[i] = 0.0f; }
    if (targets == nullptr) { return abft_softmax_residual(psum, outside, V); }
    const int target = targets[bt];
    losses[bt] = abft_kernel_fault_apply(fault, bt, 0, -logf(p[target]));
    return fmaxf(abft_softmax_residual(psum, outside, V), abft_loss_residual(losses[bt], maxval - l[target], p[target], V));
}

// probs (B,T,Vp), losses (B,T); the padded logits [V, Vp) take no part. With k.on, a position
// that breaks the invariants is recomputed.
static void softmax_crossentropy_forward(float* probs, float* losses, const float* logits, const int* targets,
                                         int B, int T, int V, int Vp, const AbftKernelCheck& k = AbftKernelCheck{}) {
    int failed = 0, still = 0;
    float worst = 0.0f;
    #pragma omp parallel for reduction(+ : failed, still) reduction(max : worst)
    for (int bt = 0; bt < B * T; bt++) {
        const float* l = logits + (long)bt * Vp;
        float* p = probs + (long)bt * Vp;
        const float r = crossentropy_forward_row(p, losses, l, targets, bt, V, Vp, k.fault);
        if (r <= k.tau || !k.on) { worst = fmaxf(worst, r); continue; }
        failed++;
        still += !(crossentropy_forward_row(p, losses, l, targets, bt, V, Vp, k.refault) <= k.tau);
    }
    abft_kernel_report(k, failed, still, worst);
}

// Position bt's loss gradient (p − onehot)/(B·T), with the fault (-fi dlogits); the residual of
// the row's invariant (sums to 0, every entry within ±1/(B·T)).
static float crossentropy_backward_row(float* d, const float* p, int target, long bt, float dloss, int V, int Vp,
                                       const AbftKernelFault& fault) {
    float sum = 0.0f;
    int outside = 0;
    for (int i = 0; i < V; i++) {
        float di = p[i] * dloss;
        if (i == target) { di -= dloss; }
        di = abft_kernel_fault_apply(fault, bt, i, di);
        d[i] = di;
        sum += di;
        outside += !abft_dlogit_in_range(di, dloss);
    }
    for (int i = V; i < Vp; i++) { d[i] = 0.0f; }
    return abft_dlogits_residual(sum, outside, dloss, V);
}

// The loss is the mean over B·T positions; dlogits may be the logits, overwritten. With k.on,
// a row that breaks the invariant is recomputed.
static void softmax_crossentropy_backward(float* dlogits, const float* probs, const int* targets, int B, int T, int V, int Vp,
                                          const AbftKernelCheck& k = AbftKernelCheck{}) {
    const float dloss = 1.0f / (B * T);
    int failed = 0, still = 0;
    float worst = 0.0f;
    #pragma omp parallel for reduction(+ : failed, still) reduction(max : worst)
    for (int bt = 0; bt < B * T; bt++) {
        const float* p = probs + (long)bt * Vp;
        float* d = dlogits + (long)bt * Vp;
        const float r = crossentropy_backward_row(d, p, targets[bt], bt, dloss, V, Vp, k.fault);
        if (r <= k.tau || !k.on) { worst = fmaxf(worst, r); continue; }
        failed++;
        still += !(crossentropy_backward_row(d, p, targets[bt], bt, dloss, V, Vp, k.refault) <= k.tau);
    }
    abft_kernel_report(k, failed, still, worst);
}

// ----------------------------------------------------------------------------
// the model: config, parameters (one buffer), activations (one buffer), their gradients (one)

struct GPT2 {
    GPT2Config config;
    ParameterTensors params;
    size_t param_sizes[NUM_PARAMETER_TENSORS];
    float* params_memory = nullptr;
    size_t num_parameters = 0;
    ParameterTensors grads;
    float* grads_memory = nullptr;     // the last backward pass's
    float* grad_acc_memory = nullptr;  // the sum over a step's micro-batches (accumulate_grads)
    float* m_memory = nullptr; // AdamW first moments
    float* v_memory = nullptr; // AdamW second moments
    int B = 0, T = 0;          // the batch shape the activations were laid out for
    ActivationTensors acts;
    size_t act_sizes[NUM_ACTIVATION_TENSORS];
    float* acts_memory = nullptr;
    ActivationGradTensors grads_acts; // one layer's, reused by every layer
    size_t grad_act_sizes[NUM_ACTIVATION_GRAD_TENSORS];
    float* grads_acts_memory = nullptr;
    int* inputs = nullptr;     // (B, T)
    int* targets = nullptr;    // (B, T)
    float* losses = nullptr;   // (B, T)
    float mean_loss = -1.0f;   // -1 when the forward pass had no targets
    float grad_norm = -1.0f;   // the last update's global norm of the averaged gradient, before the clip
    bool update_skipped = false; // whether the step guard stopped the last update
    Abft abft;
    int kernel_verdict[2] = {0, 0}; // the last checked kernel's (AbftKernelCheck::verdict,
    float kernel_residual = 0.0f;   // AbftKernelCheck::residual,
    float kernel_probe[2] = {0, 0}; // AbftKernelFault::probe)
};

// ----------------------------------------------------------------------------
// building a model: from an llm.c file, or a fresh GPT-2 init

static void gpt2_allocate_parameters(GPT2* model) {
    model->num_parameters = fill_in_parameter_sizes(model->param_sizes, model->config);
    model->params_memory = (float*)malloc_check(model->num_parameters * sizeof(float), "parameters");
    point_tensors<ParameterTensors, NUM_PARAMETER_TENSORS>(&model->params, model->param_sizes, model->params_memory);
    abft_init(&model->abft);
}

static void gpt2_build_from_checkpoint(GPT2* model, const char* path) {
    ModelFile f = model_open(path, &model->config);
    gpt2_allocate_parameters(model);
    model_read_params(f, model->params_memory, model->num_parameters);
}

static void gpt2_build_from_random(GPT2* model, const GPT2Config& config, uint64_t seed) {
    model->config = config;
    gpt2_allocate_parameters(model);
    gpt2_init_params(model->config, model->params_memory, seed);
}

// ----------------------------------------------------------------------------
// activations and the forward pass

// What this trainer allocates at batch shape (B, T): the probabilities are kept, no workspace.
static MemoryFootprint gpt2_footprint(const GPT2* model, int B, int T) { return model_footprint(model->config, B, T, true, 0); }

static void gpt2_allocate_activations(GPT2* model, int B, int T) {
    const size_t n = fill_in_activation_sizes(model->act_sizes, model->config, B, T, true);
    const size_t dn = fill_in_activation_grad_sizes(model->grad_act_sizes, model->config, B, T);
    model->B = B;
    model->T = T;
    model->acts_memory = (float*)malloc_check(n, "activations");
    model->grads_acts_memory = (float*)malloc_check(dn * sizeof(float), "activation gradients");
    point_activations(&model->acts, model->act_sizes, model->acts_memory);
    point_tensors<ActivationGradTensors, NUM_ACTIVATION_GRAD_TENSORS>(&model->grads_acts, model->grad_act_sizes,
                                                                      model->grads_acts_memory);
    model->inputs = (int*)malloc_check((size_t)B * T * sizeof(int), "inputs");
    model->targets = (int*)malloc_check((size_t)B * T * sizeof(int), "targets");
    model->losses = (float*)malloc_check((size_t)B * T * sizeof(float), "losses");
}

// A GEMM under ATTNChecker (abft.cuh): compute, check, repair from checksums or recompute.
static bool protected_gemm(GPT2* model, const AbftGemm& g, int op, int layer) {
    return abft_gemm(&model->abft, gemm_cpu, g, op, layer);
}

// A kernel checked by its invariant (llmc/abft_invariants.h): its check, then its verdict
// (false when a row failed even its recompute). With a fault log (-fi and -o), a one-element
// fault goes to it with the verdict.
static AbftKernelCheck kernel_check(GPT2* model, int op, int layer, const AbftKernelShape& shape) {
    AbftKernelCheck k = abft_kernel_check(&model->abft, op, layer, shape);
    model->kernel_verdict[0] = model->kernel_verdict[1] = 0;
    model->kernel_residual = 0.0f;
    if (!k.on) { return k; }
    k.verdict = model->kernel_verdict;
    k.residual = &model->kernel_residual;
    if (model->abft.events != nullptr && k.fault.type >= 0 && k.fault.pattern == PATTERN_0D) {
        k.fault.probe = model->kernel_probe;
    }
    return k;
}

static bool kernel_verdict(GPT2* model, const AbftKernelCheck& k) {
    if (k.fault.probe != nullptr) { abft_log_kernel_fault(&model->abft, k, model->kernel_verdict[0] > 0); }
    return abft_kernel_verdict(&model->abft, k, model->kernel_verdict, &model->kernel_residual);
}

// This trainer's checks read the GEMMs' operands (abft_verify): no sums come from upstream.
static AbftLayerSums layer_sums(GPT2*, int) { return AbftLayerSums{}; }

// the transformer block, forward and backward, and the top of the ABFT ladder: shared with the
// CUDA trainer, over the layer functions above
#include "llmc/gpt2_block.h"

// Forward pass over inputs (B,T); with targets, also the losses and their mean. False when a
// fault survived a layer's recomputation, or the LM head's GEMM's (the caller redoes the step).
static bool gpt2_forward(GPT2* model, const int* inputs, const int* targets, bool /*for_backward*/) {
    const GPT2Config& c = model->config;
    const int B = model->B, T = model->T, C = c.channels, V = c.vocab_size, Vp = c.padded_vocab_size;
    check_tokens(inputs, targets, B * T, V);
    memcpy(model->inputs, inputs, (size_t)B * T * sizeof(int));
    if (targets != nullptr) { memcpy(model->targets, targets, (size_t)B * T * sizeof(int)); }
    encoder_forward(model->acts.encoded, inputs, model->params.wte, model->params.wpe, B, T, C);
    if (!blocks_forward(model) || !head_forward(model)) { return false; }
    const ActivationTensors& a = model->acts;
    if (targets == nullptr) {
        softmax_crossentropy_forward(a.probs, model->losses, a.logits, targets, B, T, V, Vp);
    } else if (!checked_kernel(model, OP_LOSS, 0, AbftKernelShape{(long)B * T, 1}, [&](const AbftKernelCheck& k) {
                   softmax_crossentropy_forward(a.probs, model->losses, a.logits, targets, B, T, V, Vp, k);
               })) {
        return false;
    }
    model->mean_loss = targets != nullptr ? mean_loss_of(model->losses, B * T) : -1.0f;
    return true;
}

// ----------------------------------------------------------------------------
// the backward pass

// After the backward pass of micro-batch `micro` of a step: the step's gradient sum, in
// grad_acc_memory (the first micro-batch's copied, the others added).
static void accumulate_grads(GPT2* model, int micro) {
    const size_t n = model->num_parameters;
    if (model->grad_acc_memory == nullptr) { model->grad_acc_memory = (float*)malloc_check(n * sizeof(float), "gradient sum"); }
    float* acc = model->grad_acc_memory;
    const float* g = model->grads_memory;
    #pragma omp parallel for
    for (size_t i = 0; i < n; i++) { acc[i] = micro == 0 ? g[i] : acc[i] + g[i]; }
}

// Backward pass of the last forward pass (which must have had targets), micro-batch `micro` of
// a step of micro_steps: with several, its gradient is added into the step's sum
// (accumulate_grads). False when a fault survived a GEMM's recomputation (the caller redoes
// the step).
static bool gpt2_backward(GPT2* model, int micro, int micro_steps) {
    const GPT2Config& c = model->config;
    const int B = model->B, T = model->T, C = c.channels, V = c.vocab_size, Vp = c.padded_vocab_size;
    if (model->grads_memory == nullptr) {
        model->grads_memory = (float*)calloc_check(model->num_parameters * sizeof(float), "gradients");
        point_tensors<ParameterTensors, NUM_PARAMETER_TENSORS>(&model->grads, model->param_sizes, model->grads_memory);
    }
    const AbftKernelShape dlogits = {(long)B * T, Vp, 0, V};
    if (!checked_kernel(model, OP_DLOGITS, 0, dlogits, [&](const AbftKernelCheck& k) {
            softmax_crossentropy_backward(model->acts.logits, model->acts.probs, model->targets, B, T, V, Vp, k);
        })) {
        return false;
    }
    if (!head_backward(model) || !blocks_backward(model, [](int) {})) { return false; }
    encoder_backward(model->grads.wte, model->grads.wpe, model->grads_acts.residual, model->inputs, B, T, C);
    if (micro_steps > 1) { accumulate_grads(model, micro); }
    return true;
}

static void gpt2_allocate_moments(GPT2* model) {
    if (model->m_memory != nullptr) { return; }
    model->m_memory = (float*)calloc_check(model->num_parameters * sizeof(float), "AdamW moments");
    model->v_memory = (float*)calloc_check(model->num_parameters * sizeof(float), "AdamW moments");
}

// The global L2 norm of the averaged gradient: of the n summed gradients (in fp64), over micro_steps.
static float grad_norm_of(const float* g, size_t n, int micro_steps) {
    double sum = 0.0;
    #pragma omp parallel for reduction(+ : sum)
    for (size_t i = 0; i < n; i++) { sum += (double)g[i] * g[i]; }
    return (float)sqrt(sum) / micro_steps;
}

// AdamW (llmc/optimizer.h) on the gradient of the step (averaged over its micro-batches,
// clipped to s.grad_clip), decay on the 2-D weights. With max_norm >= 0 (the step guard's
// limit; GUARD_OFF: none), not applied when the gradient's norm is above it or not finite.
// With -abft_scope all, a parameter whose step breaks AdamW's bound (llmc/abft_invariants.h)
// is recomputed, and left as it was if it breaks it again (bad gradient or moments).
static void gpt2_update(GPT2* model, const AdamWStep& s, int t, float max_norm) {
    gpt2_allocate_moments(model);
    const float* grads = s.micro_steps > 1 ? model->grad_acc_memory : model->grads_memory;
    model->grad_norm = grad_norm_of(grads, model->num_parameters, s.micro_steps);
    model->update_skipped = max_norm >= 0.0f && !(std::isfinite(model->grad_norm) && model->grad_norm <= max_norm);
    if (model->update_skipped) { return; }
    const float scale = grad_scale_of(model->grad_norm, s.grad_clip, s.micro_steps);
    const float bc1 = 1.0f - powf(s.beta1, (float)t), bc2 = 1.0f - powf(s.beta2, (float)t);
    const int C = model->config.channels; // every parameter tensor is a multiple of C long
    const AbftKernelCheck k = kernel_check(model, OP_ADAMW, 0, AbftKernelShape{(long)(model->num_parameters / C), C});
    const AbftAdamBound bound = abft_adam_bound(s.beta1, s.beta2, t);
    const DecayTable decay = decay_table(model->param_sizes);
    float *params = model->params_memory, *m = model->m_memory, *v = model->v_memory;
    int failed = 0, held = 0;
    float worst = 0.0f;
    #pragma omp parallel for reduction(+ : failed, held) reduction(max : worst)
    for (size_t i = 0; i < model->num_parameters; i++) {
        const float p = params[i], g = grads[i] * scale, wd = decay_at(decay, (long)i, s.weight_decay);
        AdamWValue u = adamw_of(p, g, m[i], v[i], s.lr, s.beta1, s.beta2, bc1, bc2, s.eps, wd);
        u.p = abft_kernel_fault_apply_at(k.fault, (long)i, u.p);
        const float r = abft_adamw_residual(p, u.p, u.m, u.v, s.lr, wd, bound);
        if (k.on && !(r <= k.tau)) {
            failed++;
            u = adamw_of(p, g, m[i], v[i], s.lr, s.beta1, s.beta2, bc1, bc2, s.eps, wd);
            u.p = abft_kernel_fault_apply_at(k.refault, (long)i, u.p);
            if (!(abft_adamw_residual(p, u.p, u.m, u.v, s.lr, wd, bound) <= k.tau)) { held++; continue; }
        } else {
            worst = fmaxf(worst, r);
        }
        m[i] = u.m;
        v[i] = u.v;
        params[i] = u.p;
    }
    abft_kernel_report(k, failed, held, worst);
    kernel_verdict(model, k);
}

static void gpt2_free(GPT2* model) {
    free(model->params_memory);
    free(model->grads_memory);
    free(model->grad_acc_memory);
    free(model->m_memory);
    free(model->v_memory);
    free(model->acts_memory);
    free(model->grads_acts_memory);
    free(model->inputs);
    free(model->targets);
    free(model->losses);
    abft_free(&model->abft);
}

// ----------------------------------------------------------------------------
// what llmc/trainer.h and the tests need besides the passes: host views, logits, gradients

// The host view (llmc/gpt2_model.h) is the model's own memory: nothing to copy.
static HostView gpt2_host_view(GPT2* model) { return HostView{model->params_memory, model->m_memory, model->v_memory}; }
static void gpt2_to_host(GPT2*) {}
static void gpt2_from_host(GPT2*) {}

// For the tests: the gradients of the last backward pass; a fresh optimizer.
static void gpt2_copy_grads(const GPT2* model, float* out) {
    memcpy(out, model->grads_memory, model->num_parameters * sizeof(float));
}

static void gpt2_zero_moments(GPT2* model) {
    if (model->m_memory == nullptr) { return; }
    memset(model->m_memory, 0, model->num_parameters * sizeof(float));
    memset(model->v_memory, 0, model->num_parameters * sizeof(float));
}

// The V logits of position bt of the last forward pass (a training pass overwrites them with
// their gradient).
static void gpt2_logits_row(const GPT2* model, long bt, float* out) {
    memcpy(out, model->acts.logits + bt * model->config.padded_vocab_size, model->config.vocab_size * sizeof(float));
}

static bool gpt2_params_finite(const GPT2* model) {
    bool ok = true;
    const float* x = model->params_memory;
    #pragma omp parallel for reduction(&& : ok)
    for (size_t i = 0; i < model->num_parameters; i++) { ok = ok && std::isfinite(x[i]); }
    return ok;
}

// Every check's verdict was read as it ran (abft_verify): nothing deferred to settle.
static bool gpt2_settle(GPT2*) { return true; }

// The CPU's work is done when a call returns: nothing to wait for before reading a clock.
static void gpt2_synchronize(GPT2*) {}

static void gpt2_describe_backend(char* out, size_t size) { snprintf(out, size, "CPU, %d threads", omp_get_max_threads()); }

// -tf32 is a GPU mode: the CPU computes in fp32 (so -tf32 auto means off here)
static bool gpt2_has_tf32() { return false; }

static void gpt2_set_tf32(GPT2*, bool on) {
    if (on) { die("-tf32", "TF32 tensor-core math is for the CUDA trainer (train_gpt2cu); the CPU computes in fp32", "not available on the CPU"); }
}

// The MFU is a GPU figure: a CPU's peak depends on its vector units and clocks (0: not shown)
static double gpt2_peak_flops(const GPT2*) { return 0.0; }

// ----------------------------------------------------------------------------
// main: the training program of llmc/trainer.h on this model

#include "llmc/trainer.h"

#ifndef TESTING
int main(int argc, char** argv) {
    ranks_start(&argc, &argv); // one process: this trainer has no data parallelism (llmc/ranks.h)
    const int status = run_program(parse_options(argc, argv));
    ranks_end();
    return status;
}
#endif
