// gpt2_model.h: the GPT-2 model, as both trainers define it: its config (and the short
// descriptors that name one: d12, L4C256H4...), GPT-2's initialization, and its memory
// layout: the parameters in one buffer and the activations in another, each cut into tensors
// by a size table (one labelled line per tensor), plus the slices of one layer.
//
// B = batch, T = sequence length, C = channels, L = layers, NH = heads, HS = C/NH head size,
// V = vocabulary, Vp = V padded to a multiple of 128 (llm.c's layout), maxT = longest sequence.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "llmc/rand.h"
#include "llmc/utils.h"

// ----------------------------------------------------------------------------
// the config

struct GPT2Config {
    int max_seq_len;        // maxT, e.g. 1024
    int vocab_size;         // V, e.g. 50257
    int padded_vocab_size;  // Vp, V rounded up to a multiple of 128
    int num_layers;         // L
    int num_heads;          // NH
    int channels;           // C
};

inline void check_config(const GPT2Config& c, const char* where) {
    const char* hint = "regenerate the model file with scripts/train_gpt2.py";
    if (c.max_seq_len < 1 || c.vocab_size < 1 || c.num_layers < 1 || c.num_heads < 1 || c.channels < 1) {
        die(where, hint, "nonpositive size (maxT %d, V %d, L %d, NH %d, C %d)",
            c.max_seq_len, c.vocab_size, c.num_layers, c.num_heads, c.channels);
    }
    if (c.channels % c.num_heads != 0) { die(where, hint, "channels %d not divisible by heads %d", c.channels, c.num_heads); }
    if (c.padded_vocab_size < c.vocab_size) { die(where, hint, "padded vocab %d < vocab %d", c.padded_vocab_size, c.vocab_size); }
}

// "dN" (GPT-2 shapes of depth N, e.g. d12 = 124M) or "L4C256H4" (optionally followed by
// "V1000T512"). False when s is not a descriptor (then it names a model file).
inline bool parse_model_descriptor(const char* s, GPT2Config* c) {
    *c = GPT2Config{1024, 50257, 0, 0, 0, 0};
    int depth = 0, consumed = 0;
    if (sscanf(s, "d%d%n", &depth, &consumed) == 1 && s[consumed] == '\0') {
        const int presets[][3] = {{6, 384, 6}, {12, 768, 12}, {24, 1024, 16}, {36, 1280, 20}, {48, 1600, 25}};
        for (const auto& pr : presets) {
            if (pr[0] == depth) { c->num_layers = depth; c->channels = pr[1]; c->num_heads = pr[2]; break; }
        }
        if (c->num_layers == 0) {
            die("-e", "GPT-2 depths are d6, d12, d24, d36 and d48; or describe one as L4C256H4", "no preset of depth %d", depth);
        }
    } else {
        if (sscanf(s, "L%dC%dH%d%n", &c->num_layers, &c->channels, &c->num_heads, &consumed) != 3) { return false; }
        const char* rest = s + consumed;
        while (*rest != '\0') {
            int value = 0, n = 0;
            char key = *rest;
            if (sscanf(rest + 1, "%d%n", &value, &n) != 1) { return false; }
            if (key == 'V') { c->vocab_size = value; } else if (key == 'T') { c->max_seq_len = value; } else { return false; }
            rest += 1 + n;
        }
    }
    c->padded_vocab_size = (c->vocab_size + 127) / 128 * 128;
    check_config(*c, "-e");
    return true;
}

// ----------------------------------------------------------------------------
// parameters: one buffer, cut into 16 tensors in llm.c's order (the model file's)

constexpr int NUM_PARAMETER_TENSORS = 16;
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

// The parameters' size table; returns their number (the one place where they are counted).
inline size_t fill_in_parameter_sizes(size_t* sizes, const GPT2Config& cfg) {
    const size_t Vp = cfg.padded_vocab_size, C = cfg.channels, maxT = cfg.max_seq_len, L = cfg.num_layers;
    sizes[0] = Vp * C;           // wte
    sizes[1] = maxT * C;         // wpe
    sizes[2] = L * C;            // ln1w
    sizes[3] = L * C;            // ln1b
    sizes[4] = L * (3 * C) * C;  // qkvw
    sizes[5] = L * (3 * C);      // qkvb
    sizes[6] = L * C * C;        // attprojw
    sizes[7] = L * C;            // attprojb
    sizes[8] = L * C;            // ln2w
    sizes[9] = L * C;            // ln2b
    sizes[10] = L * (4 * C) * C; // fcw
    sizes[11] = L * (4 * C);     // fcb
    sizes[12] = L * C * (4 * C); // fcprojw
    sizes[13] = L * C;           // fcprojb
    sizes[14] = C;               // lnfw
    sizes[15] = C;               // lnfb
    size_t total = 0;
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) { total += sizes[i]; }
    return total;
}

inline size_t count_parameters(const GPT2Config& cfg) {
    size_t sizes[NUM_PARAMETER_TENSORS];
    return fill_in_parameter_sizes(sizes, cfg);
}

// Points the tensors of a struct of float pointers into one buffer, in declaration order.
template <typename Tensors, int N>
inline void point_tensors(Tensors* t, const size_t* sizes, float* memory) {
    static_assert(sizeof(Tensors) == N * sizeof(float*), "a tensor struct holds only float pointers");
    float** ptrs = reinterpret_cast<float**>(t);
    for (int i = 0; i < N; i++) { ptrs[i] = memory; memory += sizes[i]; }
}

// GPT-2's init into params (laid out by fill_in_parameter_sizes): N(0, 0.02), the residual
// projections scaled by 1/sqrt(2L), zero biases, unit layernorm weights. The padded rows of
// wte stay zero. The same numbers on every backend for a given seed.
inline void gpt2_init_params(const GPT2Config& c, float* params, uint64_t seed) {
    size_t sizes[NUM_PARAMETER_TENSORS];
    memset(params, 0, fill_in_parameter_sizes(sizes, c) * sizeof(float));
    ParameterTensors p;
    point_tensors<ParameterTensors, NUM_PARAMETER_TENSORS>(&p, sizes, params);
    const long L = c.num_layers, C = c.channels;
    const float residual_std = 0.02f / sqrtf(2.0f * L);
    uint64_t rng = seed;
    normal_fill(p.wte, (long)c.vocab_size * C, 0.0f, 0.02f, &rng);
    normal_fill(p.wpe, (long)c.max_seq_len * C, 0.0f, 0.02f, &rng);
    normal_fill(p.qkvw, L * 3 * C * C, 0.0f, 0.02f, &rng);
    normal_fill(p.attprojw, L * C * C, 0.0f, residual_std, &rng);
    normal_fill(p.fcw, L * 4 * C * C, 0.0f, 0.02f, &rng);
    normal_fill(p.fcprojw, L * 4 * C * C, 0.0f, residual_std, &rng);
    for (long i = 0; i < L * C; i++) { p.ln1w[i] = 1.0f; p.ln2w[i] = 1.0f; }
    for (long i = 0; i < C; i++) { p.lnfw[i] = 1.0f; }
}

// ----------------------------------------------------------------------------
// activations: one buffer (and one more of the same layout for their gradients)

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

// The activations' size table for batches of (B, T); returns their number of floats.
// probs: whether the (B, T, Vp) probabilities are kept (the CPU trainer); the CUDA trainer's
// fused classifier never stores them.
inline size_t fill_in_activation_sizes(size_t* sizes, const GPT2Config& cfg, int B, int T, bool probs) {
    if (T > cfg.max_seq_len) {
        die("-t", "use a sequence length no longer than the model's", "sequence length %d exceeds the model's maximum %d",
            T, cfg.max_seq_len);
    }
    const size_t C = cfg.channels, NH = cfg.num_heads, L = cfg.num_layers, Vp = cfg.padded_vocab_size;
    const size_t BT = (size_t)B * T;
    sizes[0] = BT * C;               // encoded
    sizes[1] = L * BT * C;           // ln1
    sizes[2] = L * BT;               // ln1_mean
    sizes[3] = L * BT;               // ln1_rstd
    sizes[4] = L * BT * 3 * C;       // qkv
    sizes[5] = L * BT * C;           // q
    sizes[6] = L * BT * C;           // k
    sizes[7] = L * BT * C;           // v
    sizes[8] = L * B * NH * T * T;   // preatt
    sizes[9] = L * B * NH * T * T;   // att
    sizes[10] = L * BT * C;          // yh
    sizes[11] = L * BT * C;          // atty
    sizes[12] = L * BT * C;          // attproj
    sizes[13] = L * BT * C;          // residual2
    sizes[14] = L * BT * C;          // ln2
    sizes[15] = L * BT;              // ln2_mean
    sizes[16] = L * BT;              // ln2_rstd
    sizes[17] = L * BT * 4 * C;      // fch
    sizes[18] = L * BT * 4 * C;      // fch_gelu
    sizes[19] = L * BT * C;          // fcproj
    sizes[20] = L * BT * C;          // residual3
    sizes[21] = BT * C;              // lnf
    sizes[22] = BT;                  // lnf_mean
    sizes[23] = BT;                  // lnf_rstd
    sizes[24] = BT * Vp;             // logits
    sizes[25] = probs ? BT * Vp : 0; // probs
    size_t total = 0;
    for (int i = 0; i < NUM_ACTIVATION_TENSORS; i++) { total += sizes[i]; }
    return total;
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

// ----------------------------------------------------------------------------
// what both trainers expose to the training program and the tests

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

// Every token of inputs (and targets, if any) must be an id of the model's vocabulary.
inline void check_tokens(const int* inputs, const int* targets, int n, int V) {
    for (int i = 0; i < n; i++) {
        if (inputs[i] < 0 || inputs[i] >= V || (targets && (targets[i] < 0 || targets[i] >= V))) {
            die("input tokens", "the data was tokenized for another vocabulary", "token out of range [0, %d) at position %d", V, i);
        }
    }
}
