// optimizer.h: how a training step turns gradients into an update, as GPT-2 and llm.c train:
// the learning-rate schedule (linear warmup, then cosine decay to a fraction of the peak),
// the global gradient-norm clip, the average over accumulated micro-batches, and AdamW with
// weight decay on the 2-D weights only. Shared by both trainers (their gpt2_update applies it,
// per parameter, with adamw_of from llmc/abft_invariants.h) and by llmc/trainer.h.
#pragma once

#include <cmath>

#include "abft.cuh"
#include "llmc/gpt2_model.h"

// ----------------------------------------------------------------------------
// one step's settings

struct AdamWStep {
    float lr = 3e-4f;          // this step's learning rate (learning_rate_at)
    float weight_decay = 0.0f; // decoupled, on the 2-D weights only (param_decays)
    float grad_clip = 0.0f;    // scale the gradient down to this global norm when above it (0: no clip)
    int micro_steps = 1;       // micro-batches whose gradients the step averages
    float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
};

// ----------------------------------------------------------------------------
// the schedule

// llm.c's: the first `warmup` steps ramp up linearly to `lr` (step 0 already takes lr/warmup),
// then a half cosine takes it down to lr·final_frac, reached one step after the last (steps:
// the run's length; step counts from 0). final_frac 1 keeps the rate constant.
inline float learning_rate_at(float lr, int step, int warmup, int steps, float final_frac) {
    if (step < warmup) { return (float)((double)lr * (step + 1) / warmup); }
    if (steps <= warmup) { return lr; }
    const double decay = (double)(step - warmup) / (steps - warmup); // 0 → 1
    const double min_lr = (double)lr * final_frac;
    return (float)(min_lr + 0.5 * (1.0 + cos(M_PI * decay)) * (lr - min_lr));
}

// ----------------------------------------------------------------------------
// the gradient the update uses

// What multiplies the summed gradient: 1/micro_steps for the average, times the clip
// coefficient, torch.nn.utils.clip_grad_norm_'s (max_norm / (norm + 1e-6), capped at 1).
// norm: the global L2 norm of the averaged gradient.
ABFT_HD inline float grad_scale_of(float norm, float grad_clip, int micro_steps) {
    float scale = 1.0f / micro_steps;
    if (grad_clip > 0.0f) { scale *= fminf(1.0f, grad_clip / (norm + 1e-6f)); }
    return scale;
}

// ----------------------------------------------------------------------------
// weight decay: the 2-D weights (wte, wpe, and each layer's qkvw, attprojw, fcw, fcprojw), not
// the biases and layernorm parameters, as GPT-2 and llm.c

inline bool param_decays(int tensor) {
    return tensor == 0 || tensor == 1 || tensor == 4 || tensor == 6 || tensor == 10 || tensor == 12;
}

// For a loop over the whole parameter buffer: where each tensor ends, and which decay.
struct DecayTable {
    long end[NUM_PARAMETER_TENSORS];
    unsigned decays; // bit i: tensor i decays
};

inline DecayTable decay_table(const size_t* param_sizes) {
    DecayTable d = {{0}, 0u};
    long end = 0;
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) {
        end += (long)param_sizes[i];
        d.end[i] = end;
        if (param_decays(i)) { d.decays |= 1u << i; }
    }
    return d;
}

// The weight decay of parameter i (of the whole buffer).
ABFT_HD inline float decay_at(const DecayTable& d, long i, float weight_decay) {
    int t = 0;
    while (t < NUM_PARAMETER_TENSORS - 1 && i >= d.end[t]) { t++; }
    return (d.decays >> t) & 1u ? weight_decay : 0.0f;
}
