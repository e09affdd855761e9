// gpt2_model.h: the GPT-2 model, as both trainers define it: its config (and the short
// descriptors that name one: d12, L4C256H4...), GPT-2's initialization, and its memory
// layout: the parameters in one buffer, the activations in another and their gradients in a
// third, each cut into tensors by a size table (one labelled line per tensor), plus the slices
// of one layer, and the memory footprint these tables add up to.
//
// B = batch, T = sequence length, C = channels, L = layers, NH = heads, HS = C/NH head size,
// V = vocabulary, Vp = V padded to a multiple of 128 (llm.c's layout), maxT = longest sequence.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "llmc/precision.h"
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
// The parameters as the forward and backward passes read them, and their gradients, are
// floatX; in a bf16 build the optimizer keeps float masters of them (ParameterTensorsOf<float>).
template <typename T>
struct ParameterTensorsOf {
    T* wte;      // (Vp, C)
    T* wpe;      // (maxT, C)
    T* ln1w;     // (L, C)
    T* ln1b;     // (L, C)
    T* qkvw;     // (L, 3C, C)
    T* qkvb;     // (L, 3C)
    T* attprojw; // (L, C, C)
    T* attprojb; // (L, C)
    T* ln2w;     // (L, C)
    T* ln2b;     // (L, C)
    T* fcw;      // (L, 4C, C)
    T* fcb;      // (L, 4C)
    T* fcprojw;  // (L, C, 4C)
    T* fcprojb;  // (L, C)
    T* lnfw;     // (C)
    T* lnfb;     // (C)
};
typedef ParameterTensorsOf<floatX> ParameterTensors;

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

// Points the tensors of a struct of pointers to T into one buffer, in declaration order.
template <typename Tensors, int N, typename T>
inline void point_tensors(Tensors* t, const size_t* sizes, T* memory) {
    static_assert(sizeof(Tensors) == N * sizeof(T*), "a tensor struct holds only pointers");
    T** ptrs = reinterpret_cast<T**>(t);
    for (int i = 0; i < N; i++) { ptrs[i] = memory; memory += sizes[i]; }
}

// GPT-2's init into params (laid out by fill_in_parameter_sizes): N(0, 0.02), the residual
// projections scaled by 1/sqrt(2L), zero biases, unit layernorm weights. The padded rows of
// wte stay zero. The same numbers on every backend for a given seed.
inline void gpt2_init_params(const GPT2Config& c, float* params, uint64_t seed) {
    size_t sizes[NUM_PARAMETER_TENSORS];
    memset(params, 0, fill_in_parameter_sizes(sizes, c) * sizeof(float));
    ParameterTensorsOf<float> p;
    point_tensors<ParameterTensorsOf<float>, NUM_PARAMETER_TENSORS>(&p, sizes, params);
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
// activations: one buffer, cut into 26 tensors, floatX but for the layernorms' statistics
// (float), each starting on a 16-byte boundary
//
// What the backward pass reads is kept for every layer (L, ...). The outputs of qkv, preatt,
// yh, attproj and fcproj are read only by the next op of the same layer's forward pass (the
// permute, the softmax, the unpermute, the residual adds), so one layer's worth of each is
// shared by all layers; recomputing a layer (the ABFT ladder) writes them again from the
// layer's input, the previous layer's residual3, which is kept.

constexpr int NUM_ACTIVATION_TENSORS = 26;
struct ActivationTensors {
    floatX* encoded;   // (B, T, C)
    floatX* ln1;       // (L, B, T, C)
    float* ln1_mean;   // (L, B, T)
    float* ln1_rstd;   // (L, B, T)
    floatX* qkv;       // (B, T, 3C)        protected GEMM output, shared by the layers
    floatX* q;         // (L, B, NH, T, HS)
    floatX* k;         // (L, B, NH, T, HS)
    floatX* v;         // (L, B, NH, T, HS)
    floatX* preatt;    // (B, NH, T, T)     S, protected GEMM output, shared by the layers
    floatX* att;       // (L, B, NH, T, T)  P
    floatX* yh;        // (B, NH, T, HS)    protected GEMM output, shared by the layers
    floatX* atty;      // (L, B, T, C)
    floatX* attproj;   // (B, T, C)         protected GEMM output, shared by the layers
    floatX* residual2; // (L, B, T, C)
    floatX* ln2;       // (L, B, T, C)
    float* ln2_mean;   // (L, B, T)
    float* ln2_rstd;   // (L, B, T)
    floatX* fch;       // (L, B, T, 4C)
    floatX* fch_gelu;  // (L, B, T, 4C)
    floatX* fcproj;    // (B, T, C)         shared by the layers
    floatX* residual3; // (L, B, T, C)
    floatX* lnf;       // (B, T, C)
    float* lnf_mean;   // (B, T)
    float* lnf_rstd;   // (B, T)
    floatX* logits;    // (B, T, Vp)        after a training pass: their gradient, dlogits
    floatX* probs;     // (B, T, Vp)
};

// The element size of activation tensor i: the layernorms' means and reciprocal standard
// deviations are float whatever floatX is (they are sums over a row).
inline size_t activation_elem_bytes(int i) {
    const bool statistic = i == 2 || i == 3 || i == 15 || i == 16 || i == 22 || i == 23;
    return statistic ? sizeof(float) : sizeof(floatX);
}

// Tensor i's bytes in the activations' buffer: rounded up to 16, so that every tensor starts
// aligned for vector loads and cuBLASLt whatever the sizes before it.
inline size_t activation_slot_bytes(const size_t* sizes, int i) { return (sizes[i] * activation_elem_bytes(i) + 15) / 16 * 16; }

inline size_t activation_bytes(const size_t* sizes) {
    size_t bytes = 0;
    for (int i = 0; i < NUM_ACTIVATION_TENSORS; i++) { bytes += activation_slot_bytes(sizes, i); }
    return bytes;
}

// The activations' size table for batches of (B, T), in elements; returns the bytes of the
// buffer that holds them (activation_bytes).
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
    sizes[4] = BT * 3 * C;           // qkv
    sizes[5] = L * BT * C;           // q
    sizes[6] = L * BT * C;           // k
    sizes[7] = L * BT * C;           // v
    sizes[8] = B * NH * T * T;       // preatt
    sizes[9] = L * B * NH * T * T;   // att
    sizes[10] = BT * C;              // yh
    sizes[11] = L * BT * C;          // atty
    sizes[12] = BT * C;              // attproj
    sizes[13] = L * BT * C;          // residual2
    sizes[14] = L * BT * C;          // ln2
    sizes[15] = L * BT;              // ln2_mean
    sizes[16] = L * BT;              // ln2_rstd
    sizes[17] = L * BT * 4 * C;      // fch
    sizes[18] = L * BT * 4 * C;      // fch_gelu
    sizes[19] = BT * C;              // fcproj
    sizes[20] = L * BT * C;          // residual3
    sizes[21] = BT * C;              // lnf
    sizes[22] = BT;                  // lnf_mean
    sizes[23] = BT;                  // lnf_rstd
    sizes[24] = BT * Vp;             // logits
    sizes[25] = probs ? BT * Vp : 0; // probs
    return activation_bytes(sizes);
}

inline void point_activations(ActivationTensors* a, const size_t* sizes, void* memory) {
    static_assert(sizeof(ActivationTensors) == NUM_ACTIVATION_TENSORS * sizeof(void*), "a tensor struct holds only pointers");
    char* next = static_cast<char*>(memory);
    void** ptrs = reinterpret_cast<void**>(a);
    for (int i = 0; i < NUM_ACTIVATION_TENSORS; i++) { ptrs[i] = next; next += activation_slot_bytes(sizes, i); }
}

// ----------------------------------------------------------------------------
// activation gradients: one buffer, cut into 14 tensors, one layer's worth
//
// The backward pass of layer l reads only that layer's activation gradients and the residual
// stream's gradient, so one set of buffers serves every layer, written anew by each (nothing
// reads one before the layer's backward has written it). The residual stream's gradient is a
// single (B, T, C) buffer, accumulated in place from the top of the model down to the
// embedding: both branches of a residual add read it as their output's gradient, and each
// layernorm adds its input's gradient into it. The gradient of the logits needs no buffer of
// its own: it is written over the logits, which nothing reads after the loss.

constexpr int NUM_ACTIVATION_GRAD_TENSORS = 14;
struct ActivationGradTensors {
    floatX* residual; // (B, T, C)       the residual stream's, accumulated in place
    floatX* lnf;      // (B, T, C)
    floatX* fch_gelu; // (B, T, 4C)
    floatX* fch;      // (B, T, 4C)
    floatX* ln2;      // (B, T, C)
    floatX* atty;     // (B, T, C)       protected GEMM output
    floatX* yh;       // (B, NH, T, HS)
    floatX* att;      // (B, NH, T, T)   dP, protected GEMM output
    floatX* preatt;   // (B, NH, T, T)   dS
    floatX* q;        // (B, NH, T, HS)  protected GEMM output
    floatX* k;        // (B, NH, T, HS)  protected GEMM output
    floatX* v;        // (B, NH, T, HS)  protected GEMM output
    floatX* qkv;      // (B, T, 3C)
    floatX* ln1;      // (B, T, C)       protected GEMM output
};

// The activation gradients' size table for batches of (B, T), in elements (floatX); returns
// their number (independent of the number of layers).
inline size_t fill_in_activation_grad_sizes(size_t* sizes, const GPT2Config& cfg, int B, int T) {
    const size_t C = cfg.channels, NH = cfg.num_heads;
    const size_t BT = (size_t)B * T;
    sizes[0] = BT * C;           // residual
    sizes[1] = BT * C;           // lnf
    sizes[2] = BT * 4 * C;       // fch_gelu
    sizes[3] = BT * 4 * C;       // fch
    sizes[4] = BT * C;           // ln2
    sizes[5] = BT * C;           // atty
    sizes[6] = BT * C;           // yh
    sizes[7] = B * NH * T * T;   // att
    sizes[8] = B * NH * T * T;   // preatt
    sizes[9] = BT * C;           // q
    sizes[10] = BT * C;          // k
    sizes[11] = BT * C;          // v
    sizes[12] = BT * 3 * C;      // qkv
    sizes[13] = BT * C;          // ln1
    size_t total = 0;
    for (int i = 0; i < NUM_ACTIVATION_GRAD_TENSORS; i++) { total += sizes[i]; }
    return total;
}

// ----------------------------------------------------------------------------
// one layer's slices

// Pointers to one layer's slice of the activations; the shared tensors are the same for all.
struct LayerActs {
    floatX* ln1;
    float *ln1_mean, *ln1_rstd;
    floatX *qkv, *q, *k, *v, *preatt, *att, *yh, *atty, *attproj, *residual2, *ln2;
    float *ln2_mean, *ln2_rstd;
    floatX *fch, *fch_gelu, *fcproj, *residual3;
};

template <typename Model>
LayerActs layer_acts(const ActivationTensors& a, const Model* model, int l) {
    const long B = model->B, T = model->T, C = model->config.channels, NH = model->config.num_heads;
    const long BT = B * T, BTC = BT * C, att = B * NH * T * T;
    return LayerActs{a.ln1 + l * BTC, a.ln1_mean + l * BT, a.ln1_rstd + l * BT, a.qkv,
                     a.q + l * BTC, a.k + l * BTC, a.v + l * BTC, a.preatt, a.att + l * att,
                     a.yh, a.atty + l * BTC, a.attproj, a.residual2 + l * BTC,
                     a.ln2 + l * BTC, a.ln2_mean + l * BT, a.ln2_rstd + l * BT, a.fch + l * 4 * BTC,
                     a.fch_gelu + l * 4 * BTC, a.fcproj, a.residual3 + l * BTC};
}

// Pointers to one layer's slice of the parameters (or of their gradients).
struct LayerParams {
    floatX *ln1w, *ln1b, *qkvw, *qkvb, *attprojw, *attprojb, *ln2w, *ln2b, *fcw, *fcb, *fcprojw, *fcprojb;
};

inline LayerParams layer_params(const ParameterTensors& p, const GPT2Config& c, int l) {
    const long C = c.channels;
    return LayerParams{p.ln1w + l * C, p.ln1b + l * C, p.qkvw + l * 3 * C * C, p.qkvb + l * 3 * C,
                       p.attprojw + l * C * C, p.attprojb + l * C, p.ln2w + l * C, p.ln2b + l * C,
                       p.fcw + l * 4 * C * C, p.fcb + l * 4 * C, p.fcprojw + l * 4 * C * C, p.fcprojb + l * C};
}

// ----------------------------------------------------------------------------
// the memory footprint

// What a trainer allocates for the model at batch shape (B, T), in bytes, as the size tables
// say (besides a few (B, T) arrays of tokens and losses, ABFT's check scratch, which grows on
// first use, and the CUDA trainer's checksum sums (layer_sums in train_gpt2.cu): 27 MB at GPT-2
// 124M, B=8, T=1024).
struct MemoryFootprint {
    size_t parameters, masters, gradients, moments; // masters: the float parameters of a bf16 build; moments: AdamW's m and v
    size_t activations, activation_grads;
    size_t workspace;                               // the GPU's GEMM workspace; 0 on the CPU
    size_t total() const { return parameters + masters + gradients + moments + activations + activation_grads + workspace; }
};

inline MemoryFootprint model_footprint(const GPT2Config& cfg, int B, int T, bool probs, size_t workspace) {
    size_t params[NUM_PARAMETER_TENSORS], acts[NUM_ACTIVATION_TENSORS], grads[NUM_ACTIVATION_GRAD_TENSORS];
    const size_t n = fill_in_parameter_sizes(params, cfg), p = n * sizeof(floatX);
    const size_t masters = sizeof(floatX) == sizeof(float) ? 0 : n * sizeof(float);
    return MemoryFootprint{p, masters, p, 2 * n * sizeof(float), fill_in_activation_sizes(acts, cfg, B, T, probs),
                           fill_in_activation_grad_sizes(grads, cfg, B, T) * sizeof(floatX), workspace};
}

// "474.7 MiB", "14.2 GiB"
inline std::string format_bytes(size_t bytes) {
    char s[32];
    if (bytes >= (size_t)1 << 30) { snprintf(s, sizeof(s), "%.1f GiB", bytes / 1073741824.0); }
    else { snprintf(s, sizeof(s), "%.1f MiB", bytes / 1048576.0); }
    return s;
}

inline void print_footprint(const MemoryFootprint& m) {
    std::string workspace = m.workspace > 0 ? ", cuBLASLt workspace " + format_bytes(m.workspace) : "";
    std::string masters = m.masters > 0 ? " (+ float masters " + format_bytes(m.masters) + ")" : "";
    printf("memory: parameters %s%s, gradients %s, AdamW moments %s, activations %s,\n"
           "        activation gradients %s%s: total %s (%.2f GB), ABFT's scratch aside\n",
           format_bytes(m.parameters).c_str(), masters.c_str(), format_bytes(m.gradients).c_str(), format_bytes(m.moments).c_str(),
           format_bytes(m.activations).c_str(), format_bytes(m.activation_grads).c_str(), workspace.c_str(),
           format_bytes(m.total()).c_str(), m.total() / 1e9);
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
