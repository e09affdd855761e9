// gpt2_model.h: the memory layout of a GPT-2 model, shared by the CPU and CUDA trainers: the
// parameters in one buffer and the activations in another, each cut into tensors by a size
// table, and the slices of one layer.
#pragma once

#include <cstddef>
#include <cstring>

#include "llmc/checkpoint.h"

// ----------------------------------------------------------------------------
// parameters and activations, one buffer each

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
inline void point_tensors(Tensors* t, const size_t* sizes, float* memory) {
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

// probs: whether the (B, T, Vp) probabilities are kept (the CPU trainer); the CUDA trainer's
// fused classifier never stores them.
inline void fill_in_activation_sizes(size_t* sizes, const GPT2Config& cfg, int B, int T, bool probs) {
    const size_t C = cfg.channels, NH = cfg.num_heads, L = cfg.num_layers, Vp = cfg.padded_vocab_size;
    const size_t BT = (size_t)B * T, BTC = BT * C, att = (size_t)B * NH * T * T;
    const size_t table[NUM_ACTIVATION_TENSORS] = {
        BTC, L * BTC, L * BT, L * BT, L * BTC * 3, L * BTC, L * BTC, L * BTC, L * att, L * att, L * BTC,
        L * BTC, L * BTC, L * BTC, L * BTC, L * BT, L * BT, L * BTC * 4, L * BTC * 4, L * BTC, L * BTC,
        BTC, BT, BT, BT * Vp, probs ? BT * Vp : 0};
    memcpy(sizes, table, sizeof(table));
}

// The size table of the parameters; returns their number.
inline size_t layout_parameters(size_t* sizes, const GPT2Config& c) {
    fill_in_parameter_sizes(sizes, c);
    size_t n = 0;
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) { n += sizes[i]; }
    return n;
}

// The size table of the activations for batches of (B, T); returns their number of floats.
inline size_t layout_activations(size_t* sizes, const GPT2Config& c, int B, int T, bool probs) {
    if (T > c.max_seq_len) {
        die("-t", "use a sequence length no longer than the model's", "sequence length %d exceeds the model's maximum %d",
            T, c.max_seq_len);
    }
    fill_in_activation_sizes(sizes, c, B, T, probs);
    size_t n = 0;
    for (int i = 0; i < NUM_ACTIVATION_TENSORS; i++) { n += sizes[i]; }
    return n;
}

// The parameters and AdamW moments as host arrays, for checkpoints and tests: on the CPU the
// model's own memory, on the GPU host copies (m and v null until the optimizer has run).
struct HostView {
    float *params, *m, *v;
};

// The mean of the B·T position losses, summed in double in order (the same on every backend).
inline float mean_loss_of(const float* losses, int n) {
    double sum = 0.0;
    for (int i = 0; i < n; i++) { sum += losses[i]; }
    return (float)(sum / n);
}

// ----------------------------------------------------------------------------
// one layer's slices

// Pointers to one layer's slice of the activations (or of their gradients).
struct LayerActs {
    float *ln1, *ln1_mean, *ln1_rstd, *qkv, *q, *k, *v, *preatt, *att, *yh, *atty, *attproj, *residual2;
    float *ln2, *ln2_mean, *ln2_rstd, *fch, *fch_gelu, *fcproj, *residual3;
};

template <typename Model>
LayerActs layer_acts(const ActivationTensors& a, const Model* model, int l) {
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

inline LayerParams layer_params(const ParameterTensors& p, const GPT2Config& c, int l) {
    const long C = c.channels;
    return LayerParams{p.ln1w + l * C, p.ln1b + l * C, p.qkvw + l * 3 * C * C, p.qkvb + l * 3 * C,
                       p.attprojw + l * C * C, p.attprojb + l * C, p.ln2w + l * C, p.ln2b + l * C,
                       p.fcw + l * 4 * C * C, p.fcb + l * 4 * C, p.fcprojw + l * 4 * C * C, p.fcprojb + l * C};
}


// Every token of inputs (and targets, if any) must be an id of the model's vocabulary.
inline void check_tokens(const int* inputs, const int* targets, int n, int V) {
    for (int i = 0; i < n; i++) {
        if (inputs[i] < 0 || inputs[i] >= V || (targets && (targets[i] < 0 || targets[i] >= V))) {
            die("input tokens", "the data was tokenized for another vocabulary", "token out of range [0, %d) at position %d", V, i);
        }
    }
}
