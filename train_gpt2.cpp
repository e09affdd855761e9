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
// Parameter gradients are written, not accumulated (no zeroing pass); the one exception is
// wte, written by the LM head and then added to by the embedding backward.
#include <cblas.h>
#include <omp.h>
#include <sys/stat.h>

#include <csignal>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "abft.cuh"
#include "llmc/checkpoint.h"
#include "llmc/dataloader.h"
#include "llmc/rand.h"
#include "llmc/tokenizer.h"
#include "llmc/utils.h"

// ----------------------------------------------------------------------------
// the GEMM primitive: C[b] = alpha · A[b] · B[b] + bias, every matmul of the model goes here

static MatView row_major(const float* p, long ld) { return MatView{p, ld, 1}; }
// the transpose of a row-major matrix with leading dimension ld
static MatView transposed(const float* p, long ld) { return MatView{p, 1, ld}; }

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

// A linear layer's GEMM: out (rows, OC) = inp (rows, IC) · weightᵀ + bias, weight (OC, IC).
static AbftGemm linear_gemm(float* out, const float* inp, const float* weight, const float* bias,
                            int rows, int IC, int OC) {
    return AbftGemm{rows, OC, IC, 1, row_major(inp, IC), 0, transposed(weight, IC), 0, out, OC, 0, 1.0f, bias, false};
}

// dinp (rows, IC) = dout (rows, OC) · weight (OC, IC)
static AbftGemm linear_dinp_gemm(float* dinp, const float* dout, const float* weight, int rows, int IC, int OC) {
    return AbftGemm{rows, IC, OC, 1, row_major(dout, OC), 0, row_major(weight, IC), 0, dinp, IC, 0, 1.0f, nullptr, false};
}

// dweight (OC, IC) = doutᵀ (OC, rows) · inp (rows, IC)
static AbftGemm linear_dweight_gemm(float* dweight, const float* dout, const float* inp, int rows, int IC, int OC) {
    return AbftGemm{OC, IC, rows, 1, transposed(dout, OC), 0, row_major(inp, IC), 0, dweight, IC, 0, 1.0f, nullptr, false};
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

static void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* weight,
                              const float* bias, int B, int T, int C) {
    // out (B,T,C), mean and rstd (B,T) kept for the backward pass
    const float eps = 1e-5f;
    #pragma omp parallel for
    for (int bt = 0; bt < B * T; bt++) {
        const float* x = inp + (long)bt * C;
        float m = 0.0f;
        for (int i = 0; i < C; i++) { m += x[i]; }
        m /= C;
        float v = 0.0f;
        for (int i = 0; i < C; i++) { float d = x[i] - m; v += d * d; }
        v /= C;
        float s = 1.0f / sqrtf(v + eps);
        float* o = out + (long)bt * C;
        for (int i = 0; i < C; i++) { o[i] = (s * (x[i] - m)) * weight[i] + bias[i]; }
        mean[bt] = m;
        rstd[bt] = s;
    }
}

static void layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                               const float* weight, const float* mean, const float* rstd, int B, int T, int C) {
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

static void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int rows, int IC, int OC) {
    gemm_cpu(linear_gemm(out, inp, weight, bias, rows, IC, OC));
}

static void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                            const float* weight, int rows, int IC, int OC) {
    gemm_cpu(linear_dinp_gemm(dinp, dout, weight, rows, IC, OC));
    gemm_cpu(linear_dweight_gemm(dweight, dout, inp, rows, IC, OC));
    if (dbias != nullptr) { bias_backward(dbias, dout, rows, OC); }
}

#define GELU_SCALING_FACTOR 0.7978845608028654f // sqrt(2/pi)

static void gelu_forward(float* out, const float* inp, long N) {
    #pragma omp parallel for
    for (long i = 0; i < N; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + tanhf(GELU_SCALING_FACTOR * (x + 0.044715f * x * x * x)));
    }
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

static void residual_forward(float* out, const float* a, const float* b, long N) {
    #pragma omp parallel for
    for (long i = 0; i < N; i++) { out[i] = a[i] + b[i]; }
}

// Both inputs of a residual add receive its output gradient (written, not accumulated).
static void residual_backward(float* da, float* db, const float* dout, long N) {
    #pragma omp parallel for
    for (long i = 0; i < N; i++) { da[i] = dout[i]; db[i] = dout[i]; }
}

// ----------------------------------------------------------------------------
// attention: the memory ops around the protected GEMMs

// qkv (B,T,3,NH,HS) -> q, k, v (B,NH,T,HS) each, so that every head is a contiguous matrix
static void permute_forward(float* q, float* k, float* v, const float* qkv, int B, int T, int NH, int HS) {
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

static void permute_backward(float* dqkv, const float* dq, const float* dk, const float* dv, int B, int T, int NH, int HS) {
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
static void unpermute_forward(float* out, const float* y, int B, int T, int NH, int HS) {
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

// Causal softmax over each row of S (B,NH,T,T): P[i][j] for j <= i; zeros above the diagonal
// so that the next GEMM (P·V) can run over whole rows.
static void softmax_forward(float* att, const float* preatt, int B, int NH, int T) {
    #pragma omp parallel for
    for (long row = 0; row < (long)B * NH * T; row++) {
        const int t = (int)(row % T);
        const float* s = preatt + row * T;
        float* p = att + row * T;
        float maxval = -INFINITY;
        for (int j = 0; j <= t; j++) { maxval = fmaxf(maxval, s[j]); }
        float sum = 0.0f;
        for (int j = 0; j <= t; j++) { p[j] = expf(s[j] - maxval); sum += p[j]; }
        float inv = 1.0f / sum;
        for (int j = 0; j <= t; j++) { p[j] *= inv; }
        for (int j = t + 1; j < T; j++) { p[j] = 0.0f; }
    }
}

// dS[i][j] = P[i][j] · (dP[i][j] − Σ_k P[i][k]·dP[i][k]) on and below the diagonal, 0 above.
static void softmax_backward(float* dpreatt, const float* datt, const float* att, int B, int NH, int T) {
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

static void softmax_crossentropy_forward(float* probs, float* losses, const float* logits, const int* targets,
                                         int B, int T, int V, int Vp) {
    // probs (B,T,Vp), losses (B,T); the padded logits [V, Vp) take no part
    #pragma omp parallel for
    for (int bt = 0; bt < B * T; bt++) {
        const float* l = logits + (long)bt * Vp;
        float* p = probs + (long)bt * Vp;
        float maxval = -INFINITY;
        for (int i = 0; i < V; i++) { maxval = fmaxf(maxval, l[i]); }
        float sum = 0.0f;
        for (int i = 0; i < V; i++) { p[i] = expf(l[i] - maxval); sum += p[i]; }
        for (int i = 0; i < V; i++) { p[i] /= sum; }
        for (int i = V; i < Vp; i++) { p[i] = 0.0f; }
        if (targets != nullptr) { losses[bt] = -logf(p[targets[bt]]); }
    }
}

static void softmax_crossentropy_backward(float* dlogits, const float* probs, const int* targets, int B, int T, int V, int Vp) {
    // the loss is the mean over B·T positions
    const float dloss = 1.0f / (B * T);
    #pragma omp parallel for
    for (int bt = 0; bt < B * T; bt++) {
        const float* p = probs + (long)bt * Vp;
        float* d = dlogits + (long)bt * Vp;
        for (int i = 0; i < V; i++) { d[i] = p[i] * dloss; }
        for (int i = V; i < Vp; i++) { d[i] = 0.0f; }
        d[targets[bt]] -= dloss;
    }
}

// ----------------------------------------------------------------------------
// the model: config, parameters (one buffer), activations (one buffer)

struct ParameterTensors {
    float* wte;      // (Vp, C)
    float* wpe;      // (maxT, C)
    float* ln1w;     // (L, C)
    float* ln1b;     // (L, C)
    float* qkvw;     // (L, 3C, C)
    float* qkvb;     // (L, 3C)
    float* attprojw; // (L, C, C)
    float* attprojb; // (L, C)
    float* ln2w;     // (L, C)
    float* ln2b;     // (L, C)
    float* fcw;      // (L, 4C, C)
    float* fcb;      // (L, 4C)
    float* fcprojw;  // (L, C, 4C)
    float* fcprojb;  // (L, C)
    float* lnfw;     // (C)
    float* lnfb;     // (C)
};

// Points the tensors of a struct of float pointers into one buffer, in declaration order.
template <typename Tensors, int N>
static void point_tensors(Tensors* t, const size_t* sizes, float* memory) {
    static_assert(sizeof(Tensors) == N * sizeof(float*), "a tensor struct holds only float pointers");
    float** ptrs = reinterpret_cast<float**>(t);
    for (int i = 0; i < N; i++) { ptrs[i] = memory; memory += sizes[i]; }
}

constexpr int NUM_ACTIVATION_TENSORS = 26;
struct ActivationTensors {
    float* encoded;   // (B, T, C)
    float* ln1;       // (L, B, T, C)
    float* ln1_mean;  // (L, B, T)
    float* ln1_rstd;  // (L, B, T)
    float* qkv;       // (L, B, T, 3C)   protected GEMM output
    float* q;         // (L, B, NH, T, HS)
    float* k;         // (L, B, NH, T, HS)
    float* v;         // (L, B, NH, T, HS)
    float* preatt;    // (L, B, NH, T, T) S, protected GEMM output
    float* att;       // (L, B, NH, T, T) P
    float* yh;        // (L, B, NH, T, HS) protected GEMM output
    float* atty;      // (L, B, T, C)
    float* attproj;   // (L, B, T, C)    protected GEMM output
    float* residual2; // (L, B, T, C)
    float* ln2;       // (L, B, T, C)
    float* ln2_mean;  // (L, B, T)
    float* ln2_rstd;  // (L, B, T)
    float* fch;       // (L, B, T, 4C)
    float* fch_gelu;  // (L, B, T, 4C)
    float* fcproj;    // (L, B, T, C)
    float* residual3; // (L, B, T, C)
    float* lnf;       // (B, T, C)
    float* lnf_mean;  // (B, T)
    float* lnf_rstd;  // (B, T)
    float* logits;    // (B, T, Vp)
    float* probs;     // (B, T, Vp)
};

static void fill_in_activation_sizes(size_t* sizes, const GPT2Config& cfg, int B, int T) {
    const size_t C = cfg.channels, NH = cfg.num_heads, L = cfg.num_layers, Vp = cfg.padded_vocab_size;
    const size_t BT = (size_t)B * T, BTC = BT * C, att = (size_t)B * NH * T * T;
    const size_t table[NUM_ACTIVATION_TENSORS] = {
        BTC, L * BTC, L * BT, L * BT, L * BTC * 3, L * BTC, L * BTC, L * BTC, L * att, L * att, L * BTC,
        L * BTC, L * BTC, L * BTC, L * BTC, L * BT, L * BT, L * BTC * 4, L * BTC * 4, L * BTC, L * BTC,
        BTC, BT, BT, BT * Vp, BT * Vp};
    memcpy(sizes, table, sizeof(table));
}

struct GPT2 {
    GPT2Config config;
    ParameterTensors params;
    size_t param_sizes[NUM_PARAMETER_TENSORS];
    float* params_memory;
    size_t num_parameters;
    ParameterTensors grads;
    float* grads_memory;
    float* m_memory; // AdamW first moments
    float* v_memory; // AdamW second moments
    int B, T;        // the batch shape the activations were laid out for
    ActivationTensors acts;
    size_t act_sizes[NUM_ACTIVATION_TENSORS];
    float* acts_memory;
    ActivationTensors grads_acts;
    float* grads_acts_memory;
    int* inputs;      // (B, T)
    int* targets;     // (B, T)
    float* losses;    // (B, T)
    float mean_loss;  // -1 when the forward pass had no targets
    Abft abft;
};

// ----------------------------------------------------------------------------
// building a model: from an llm.c file, or a fresh GPT-2 init

static void gpt2_allocate_parameters(GPT2* model) {
    fill_in_parameter_sizes(model->param_sizes, model->config);
    model->num_parameters = 0;
    for (size_t s : model->param_sizes) { model->num_parameters += s; }
    model->params_memory = (float*)malloc_check(model->num_parameters * sizeof(float), "parameters");
    point_tensors<ParameterTensors, NUM_PARAMETER_TENSORS>(&model->params, model->param_sizes, model->params_memory);
    model->grads_memory = nullptr;
    model->m_memory = nullptr;
    model->v_memory = nullptr;
    model->acts_memory = nullptr;
    model->grads_acts_memory = nullptr;
    model->inputs = nullptr;
    model->targets = nullptr;
    model->losses = nullptr;
    model->mean_loss = -1.0f;
    model->B = model->T = 0;
    abft_init(&model->abft);
}

static void gpt2_build_from_checkpoint(GPT2* model, const char* path) {
    FILE* f = model_open(path, &model->config);
    gpt2_allocate_parameters(model);
    fread_check(model->params_memory, sizeof(float), model->num_parameters, f, path);
    fclose_check(f, path);
}

static void gpt2_build_from_random(GPT2* model, const GPT2Config& config, uint64_t seed) {
    model->config = config;
    gpt2_allocate_parameters(model);
    gpt2_init_params(model->config, model->params_memory, seed);
}

// ----------------------------------------------------------------------------
// activations and the forward pass

static void gpt2_allocate_activations(GPT2* model, int B, int T) {
    if (T > model->config.max_seq_len) {
        die("-t", "use a sequence length no longer than the model's", "sequence length %d exceeds the model's maximum %d",
            T, model->config.max_seq_len);
    }
    model->B = B;
    model->T = T;
    fill_in_activation_sizes(model->act_sizes, model->config, B, T);
    size_t n = 0;
    for (size_t s : model->act_sizes) { n += s; }
    model->acts_memory = (float*)malloc_check(n * sizeof(float), "activations");
    model->grads_acts_memory = (float*)malloc_check(n * sizeof(float), "activation gradients");
    point_tensors<ActivationTensors, NUM_ACTIVATION_TENSORS>(&model->acts, model->act_sizes, model->acts_memory);
    point_tensors<ActivationTensors, NUM_ACTIVATION_TENSORS>(&model->grads_acts, model->act_sizes, model->grads_acts_memory);
    model->inputs = (int*)malloc_check((size_t)B * T * sizeof(int), "inputs");
    model->targets = (int*)malloc_check((size_t)B * T * sizeof(int), "targets");
    model->losses = (float*)malloc_check((size_t)B * T * sizeof(float), "losses");
}

// Pointers to one layer's slice of the activations (or of their gradients).
struct LayerActs {
    float *ln1, *ln1_mean, *ln1_rstd, *qkv, *q, *k, *v, *preatt, *att, *yh, *atty, *attproj, *residual2;
    float *ln2, *ln2_mean, *ln2_rstd, *fch, *fch_gelu, *fcproj, *residual3;
};

static LayerActs layer_acts(const ActivationTensors& a, const GPT2* model, int l) {
    const long B = model->B, T = model->T, C = model->config.channels, NH = model->config.num_heads;
    const long BT = B * T, BTC = BT * C, att = B * NH * T * T;
    return LayerActs{a.ln1 + l * BTC, a.ln1_mean + l * BT, a.ln1_rstd + l * BT, a.qkv + l * 3 * BTC,
                     a.q + l * BTC, a.k + l * BTC, a.v + l * BTC, a.preatt + l * att, a.att + l * att,
                     a.yh + l * BTC, a.atty + l * BTC, a.attproj + l * BTC, a.residual2 + l * BTC,
                     a.ln2 + l * BTC, a.ln2_mean + l * BT, a.ln2_rstd + l * BT, a.fch + l * 4 * BTC,
                     a.fch_gelu + l * 4 * BTC, a.fcproj + l * BTC, a.residual3 + l * BTC};
}

// Pointers to one layer's slice of the parameters (or of their gradients).
struct LayerParams {
    float *ln1w, *ln1b, *qkvw, *qkvb, *attprojw, *attprojb, *ln2w, *ln2b, *fcw, *fcb, *fcprojw, *fcprojb;
};

static LayerParams layer_params(const ParameterTensors& p, const GPT2Config& c, int l) {
    const long C = c.channels;
    return LayerParams{p.ln1w + l * C, p.ln1b + l * C, p.qkvw + l * 3 * C * C, p.qkvb + l * 3 * C,
                       p.attprojw + l * C * C, p.attprojb + l * C, p.ln2w + l * C, p.ln2b + l * C,
                       p.fcw + l * 4 * C * C, p.fcb + l * 4 * C, p.fcprojw + l * 4 * C * C, p.fcprojb + l * C};
}

// A batched attention GEMM over the B·NH heads: C[h] = alpha · A[h] · B[h], one matrix per head.
static AbftGemm heads_gemm(int BNH, int M, int N, int K, MatView A, long sA, MatView Bm, long sB,
                           float* out, long sC, float alpha, bool causal) {
    return AbftGemm{M, N, K, BNH, A, sA, Bm, sB, out, N, sC, alpha, nullptr, causal};
}

// The attention half of a block, ln1 -> attproj: four protected GEMMs. False when a GEMM stays
// faulty after recomputation (the caller recomputes the layer, then redoes the step).
static bool attention_forward(GPT2* model, int l, const float* residual) {
    const int B = model->B, T = model->T, C = model->config.channels, NH = model->config.num_heads, HS = C / NH;
    const LayerActs a = layer_acts(model->acts, model, l);
    const LayerParams p = layer_params(model->params, model->config, l);
    Abft* abft = &model->abft;
    const long hd = (long)T * HS, tt = (long)T * T; // per-head matrix sizes
    const float scale = 1.0f / sqrtf((float)HS);
    layernorm_forward(a.ln1, a.ln1_mean, a.ln1_rstd, residual, p.ln1w, p.ln1b, B, T, C);
    if (!abft_gemm(abft, gemm_cpu, linear_gemm(a.qkv, a.ln1, p.qkvw, p.qkvb, B * T, C, 3 * C), OP_QKV, l)) { return false; }
    permute_forward(a.q, a.k, a.v, a.qkv, B, T, NH, HS);
    // S = Q·Kᵀ/√HS (T,T) per head
    AbftGemm qk = heads_gemm(B * NH, T, T, HS, row_major(a.q, HS), hd, transposed(a.k, HS), hd, a.preatt, tt, scale, true);
    if (!abft_gemm(abft, gemm_cpu, qk, OP_QK, l)) { return false; }
    softmax_forward(a.att, a.preatt, B, NH, T);
    // Y = P·V (T,HS) per head
    AbftGemm pv = heads_gemm(B * NH, T, HS, T, row_major(a.att, T), tt, row_major(a.v, HS), hd, a.yh, hd, 1.0f, false);
    if (!abft_gemm(abft, gemm_cpu, pv, OP_PV, l)) { return false; }
    unpermute_forward(a.atty, a.yh, B, T, NH, HS);
    return abft_gemm(abft, gemm_cpu, linear_gemm(a.attproj, a.atty, p.attprojw, p.attprojb, B * T, C, C), OP_PROJ, l);
}

static bool block_forward(GPT2* model, int l) {
    const int B = model->B, T = model->T, C = model->config.channels;
    const LayerActs a = layer_acts(model->acts, model, l);
    const LayerParams p = layer_params(model->params, model->config, l);
    const float* residual = l == 0 ? model->acts.encoded : layer_acts(model->acts, model, l - 1).residual3;
    if (!attention_forward(model, l, residual)) { return false; }
    residual_forward(a.residual2, residual, a.attproj, (long)B * T * C);
    layernorm_forward(a.ln2, a.ln2_mean, a.ln2_rstd, a.residual2, p.ln2w, p.ln2b, B, T, C);
    matmul_forward(a.fch, a.ln2, p.fcw, p.fcb, B * T, C, 4 * C);
    gelu_forward(a.fch_gelu, a.fch, (long)B * T * 4 * C);
    matmul_forward(a.fcproj, a.fch_gelu, p.fcprojw, p.fcprojb, B * T, 4 * C, C);
    residual_forward(a.residual3, a.residual2, a.fcproj, (long)B * T * C);
    return true;
}

// Forward pass over inputs (B,T); with targets, also the losses and their mean. False when a
// fault survived the layer's recomputation (the caller redoes the step).
static bool gpt2_forward(GPT2* model, const int* inputs, const int* targets) {
    const GPT2Config& c = model->config;
    const int B = model->B, T = model->T, C = c.channels, L = c.num_layers, V = c.vocab_size, Vp = c.padded_vocab_size;
    for (int i = 0; i < B * T; i++) {
        if (inputs[i] < 0 || inputs[i] >= V || (targets && (targets[i] < 0 || targets[i] >= V))) {
            die("input tokens", "the data was tokenized for another vocabulary", "token out of range [0, %d) at position %d", V, i);
        }
    }
    memcpy(model->inputs, inputs, (size_t)B * T * sizeof(int));
    if (targets != nullptr) { memcpy(model->targets, targets, (size_t)B * T * sizeof(int)); }
    encoder_forward(model->acts.encoded, inputs, model->params.wte, model->params.wpe, B, T, C);
    for (int l = 0; l < L; l++) {
        if (block_forward(model, l)) { continue; }
        model->abft.n.recomputed_layer++;
        if (model->abft.cfg.verbose) { printf("abft: step %d layer %d: recomputing the layer\n", model->abft.step, l); }
        if (!block_forward(model, l)) { return false; }
    }
    const ActivationTensors& a = model->acts;
    const float* residual = layer_acts(a, model, L - 1).residual3;
    layernorm_forward(a.lnf, a.lnf_mean, a.lnf_rstd, residual, model->params.lnfw, model->params.lnfb, B, T, C);
    matmul_forward(a.logits, a.lnf, model->params.wte, nullptr, B * T, C, Vp);
    softmax_crossentropy_forward(a.probs, model->losses, a.logits, targets, B, T, V, Vp);
    model->mean_loss = -1.0f;
    if (targets != nullptr) {
        double sum = 0.0;
        for (int i = 0; i < B * T; i++) { sum += model->losses[i]; }
        model->mean_loss = (float)(sum / (B * T));
    }
    return true;
}

// ----------------------------------------------------------------------------
// the backward pass

// The attention half of a block, backward: dattproj -> dln1, eight protected GEMMs.
// dresidual is added to (through the layernorm), every other gradient is written.
static bool attention_backward(GPT2* model, int l, const float* residual, float* dresidual) {
    const int B = model->B, T = model->T, C = model->config.channels, NH = model->config.num_heads, HS = C / NH;
    const LayerActs a = layer_acts(model->acts, model, l);
    const LayerActs d = layer_acts(model->grads_acts, model, l);
    const LayerParams p = layer_params(model->params, model->config, l);
    const LayerParams dp = layer_params(model->grads, model->config, l);
    Abft* abft = &model->abft;
    const long hd = (long)T * HS, tt = (long)T * T;
    const float scale = 1.0f / sqrtf((float)HS);
    const int BT = B * T;
    // out = Y·Wprojᵀ + b:  dY = dout·Wproj, dWproj = doutᵀ·Y
    if (!abft_gemm(abft, gemm_cpu, linear_dinp_gemm(d.atty, d.attproj, p.attprojw, BT, C, C), OP_PROJ_DX, l)) { return false; }
    if (!abft_gemm(abft, gemm_cpu, linear_dweight_gemm(dp.attprojw, d.attproj, a.atty, BT, C, C), OP_PROJ_DW, l)) { return false; }
    bias_backward(dp.attprojb, d.attproj, BT, C);
    unpermute_backward(d.yh, d.atty, B, T, NH, HS);
    // Y = P·V:  dP = dY·Vᵀ (T,T), dV = Pᵀ·dY (T,HS), per head
    AbftGemm dpg = heads_gemm(B * NH, T, T, HS, row_major(d.yh, HS), hd, transposed(a.v, HS), hd, d.att, tt, 1.0f, true);
    if (!abft_gemm(abft, gemm_cpu, dpg, OP_PV_DP, l)) { return false; }
    AbftGemm dvg = heads_gemm(B * NH, T, HS, T, transposed(a.att, T), tt, row_major(d.yh, HS), hd, d.v, hd, 1.0f, false);
    if (!abft_gemm(abft, gemm_cpu, dvg, OP_PV_DV, l)) { return false; }
    softmax_backward(d.preatt, d.att, a.att, B, NH, T);
    // S = Q·Kᵀ/√HS:  dQ = dS·K/√HS, dK = dSᵀ·Q/√HS, per head
    AbftGemm dqg = heads_gemm(B * NH, T, HS, T, row_major(d.preatt, T), tt, row_major(a.k, HS), hd, d.q, hd, scale, false);
    if (!abft_gemm(abft, gemm_cpu, dqg, OP_QK_DQ, l)) { return false; }
    AbftGemm dkg = heads_gemm(B * NH, T, HS, T, transposed(d.preatt, T), tt, row_major(a.q, HS), hd, d.k, hd, scale, false);
    if (!abft_gemm(abft, gemm_cpu, dkg, OP_QK_DK, l)) { return false; }
    permute_backward(d.qkv, d.q, d.k, d.v, B, T, NH, HS);
    // qkv = ln1·Wqkvᵀ + b:  dln1 = dqkv·Wqkv, dWqkv = dqkvᵀ·ln1
    if (!abft_gemm(abft, gemm_cpu, linear_dinp_gemm(d.ln1, d.qkv, p.qkvw, BT, C, 3 * C), OP_QKV_DX, l)) { return false; }
    if (!abft_gemm(abft, gemm_cpu, linear_dweight_gemm(dp.qkvw, d.qkv, a.ln1, BT, C, 3 * C), OP_QKV_DW, l)) { return false; }
    bias_backward(dp.qkvb, d.qkv, BT, 3 * C);
    layernorm_backward(dresidual, dp.ln1w, dp.ln1b, d.ln1, residual, p.ln1w, a.ln1_mean, a.ln1_rstd, B, T, C);
    return true;
}

static bool block_backward(GPT2* model, int l) {
    const int B = model->B, T = model->T, C = model->config.channels;
    const long BTC = (long)B * T * C;
    const LayerActs a = layer_acts(model->acts, model, l);
    const LayerActs d = layer_acts(model->grads_acts, model, l);
    const LayerParams p = layer_params(model->params, model->config, l);
    const LayerParams dp = layer_params(model->grads, model->config, l);
    const float* residual = l == 0 ? model->acts.encoded : layer_acts(model->acts, model, l - 1).residual3;
    float* dresidual = l == 0 ? model->grads_acts.encoded : layer_acts(model->grads_acts, model, l - 1).residual3;
    residual_backward(d.residual2, d.fcproj, d.residual3, BTC);
    matmul_backward(d.fch_gelu, dp.fcprojw, dp.fcprojb, d.fcproj, a.fch_gelu, p.fcprojw, B * T, 4 * C, C);
    gelu_backward(d.fch, a.fch, d.fch_gelu, BTC * 4);
    matmul_backward(d.ln2, dp.fcw, dp.fcb, d.fch, a.ln2, p.fcw, B * T, C, 4 * C);
    layernorm_backward(d.residual2, dp.ln2w, dp.ln2b, d.ln2, a.residual2, p.ln2w, a.ln2_mean, a.ln2_rstd, B, T, C);
    residual_backward(dresidual, d.attproj, d.residual2, BTC);
    return attention_backward(model, l, residual, dresidual);
}

// Backward pass of the last forward pass (which must have had targets). False when a fault
// survived a GEMM's recomputation (the caller redoes the step).
static bool gpt2_backward(GPT2* model) {
    const GPT2Config& c = model->config;
    const int B = model->B, T = model->T, C = c.channels, L = c.num_layers, V = c.vocab_size, Vp = c.padded_vocab_size;
    if (model->grads_memory == nullptr) {
        model->grads_memory = (float*)calloc_check(model->num_parameters * sizeof(float), "gradients");
        point_tensors<ParameterTensors, NUM_PARAMETER_TENSORS>(&model->grads, model->param_sizes, model->grads_memory);
    }
    const ActivationTensors& a = model->acts;
    const ActivationTensors& d = model->grads_acts;
    softmax_crossentropy_backward(d.logits, a.probs, model->targets, B, T, V, Vp);
    matmul_backward(d.lnf, model->grads.wte, nullptr, d.logits, a.lnf, model->params.wte, B * T, C, Vp);
    float* dresidual = layer_acts(d, model, L - 1).residual3;
    memset(dresidual, 0, (size_t)B * T * C * sizeof(float)); // the layernorm adds into it
    const float* residual = layer_acts(a, model, L - 1).residual3;
    layernorm_backward(dresidual, model->grads.lnfw, model->grads.lnfb, d.lnf, residual, model->params.lnfw,
                       a.lnf_mean, a.lnf_rstd, B, T, C);
    for (int l = L - 1; l >= 0; l--) {
        if (!block_backward(model, l)) { return false; }
    }
    encoder_backward(model->grads.wte, model->grads.wpe, d.encoded, model->inputs, B, T, C);
    return true;
}

// A forward (and, with `backward`, backward) pass under the top of the escalation ladder: a
// pass whose fault survived every lower rung is redone once from the pre-step state (the
// parameters only change in the update that follows). A fault that survives that is not transient.
static void gpt2_run_checked(GPT2* model, const int* inputs, const int* targets, bool backward) {
    for (int attempt = 0;; attempt++) {
        if (gpt2_forward(model, inputs, targets) && (!backward || gpt2_backward(model))) { return; }
        if (attempt == 1) {
            die("abft", "the inputs of a protected GEMM are themselves bad: the model has diverged or memory is failing",
                "step %d still faulty after it was redone", model->abft.step);
        }
        model->abft.n.redone_step++;
        if (model->abft.cfg.verbose) { printf("abft: step %d: redoing the step\n", model->abft.step); }
    }
}

static void gpt2_forward_backward(GPT2* model, const int* inputs, const int* targets) {
    gpt2_run_checked(model, inputs, targets, true);
}

static void gpt2_allocate_moments(GPT2* model) {
    if (model->m_memory != nullptr) { return; }
    model->m_memory = (float*)calloc_check(model->num_parameters * sizeof(float), "AdamW moments");
    model->v_memory = (float*)calloc_check(model->num_parameters * sizeof(float), "AdamW moments");
}

// AdamW (decoupled weight decay on every parameter, as torch.optim.AdamW with one group).
static void gpt2_update(GPT2* model, float lr, float beta1, float beta2, float eps, float weight_decay, int t) {
    gpt2_allocate_moments(model);
    const float bc1 = 1.0f - powf(beta1, (float)t), bc2 = 1.0f - powf(beta2, (float)t);
    #pragma omp parallel for
    for (size_t i = 0; i < model->num_parameters; i++) {
        float p = model->params_memory[i], g = model->grads_memory[i];
        float m = beta1 * model->m_memory[i] + (1.0f - beta1) * g;
        float v = beta2 * model->v_memory[i] + (1.0f - beta2) * g * g;
        model->m_memory[i] = m;
        model->v_memory[i] = v;
        float mhat = m / bc1, vhat = v / bc2;
        model->params_memory[i] = p - lr * (mhat / (sqrtf(vhat) + eps) + weight_decay * p);
    }
}

static void gpt2_free(GPT2* model) {
    free(model->params_memory);
    free(model->grads_memory);
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
// what llmc/trainer.h needs besides the passes: host views, sampling, a finiteness check

// The parameters and AdamW moments as host arrays, for checkpoints: on the CPU, the model's own.
struct HostView {
    float *params, *m, *v;
};
static HostView gpt2_host_view(GPT2* model) { return HostView{model->params_memory, model->m_memory, model->v_memory}; }
static void gpt2_to_host(GPT2*) {}   // the host view is the model itself: nothing to copy
static void gpt2_from_host(GPT2*) {}

// The V logits of position bt of the last forward pass.
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

static void gpt2_describe_backend(char* out, size_t size) { snprintf(out, size, "CPU, %d threads", omp_get_max_threads()); }

// -tf32 is a GPU mode: the CPU computes in fp32
static void gpt2_set_tf32(GPT2*, bool on) {
    if (on) { die("-tf32", "TF32 tensor-core math is for the CUDA trainer (train_gpt2cu); the CPU computes in fp32", "not available on the CPU"); }
}

#ifndef TESTING
#include "llmc/trainer.h"
#endif
