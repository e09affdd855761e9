// trainer.h: the training program around a GPT-2 model, shared by the CPU trainer
// (train_gpt2.cpp) and the CUDA trainer (train_gpt2.cu), whose main calls it: flags, the top
// of the ABFT escalation ladder (redo a step), the training loop (learning-rate schedule,
// gradient accumulation and clipping: llmc/optimizer.h) with validation, sampling, the JSONL
// log, checkpoints and resume, Ctrl-C, the checkpoint/restore baseline (-rollback), the ABFT
// on/off benchmark, and text from a model (-sample).
//
// Reading path: main (the trainer's) → run_program → train → train_step → gpt2_train_step →
// gpt2_passes → the trainer's gpt2_forward / gpt2_backward, then its gpt2_update.
//
// Included by a trainer after it has defined the model and its passes, which this file calls:
//   struct GPT2 { GPT2Config config; size_t num_parameters; int B, T; float mean_loss; Abft abft; ... }
//   gpt2_build_from_checkpoint(GPT2*, path)    gpt2_build_from_random(GPT2*, config, seed)
//   gpt2_allocate_activations(GPT2*, B, T)     gpt2_allocate_moments(GPT2*)
//   gpt2_forward(GPT2*, inputs, targets, for_backward), gpt2_backward(GPT2*, micro, micro_steps)
//                                              (false when a fault survived the lower rungs; the
//                                              backward of micro-batch `micro` of a step of
//                                              micro_steps: with several, it adds its gradient
//                                              into the step's sum)
//   gpt2_update(GPT2*, AdamWStep, t, max_norm)  gpt2_free(GPT2*)
//                                              (AdamW on the step's gradient: the last backward's,
//                                              or with micro_steps > 1 the sum's, averaged and
//                                              clipped; on the GPU, skipped on the device when the
//                                              pass before it left a fault: see gpt2_train_step;
//                                              and when max_norm >= 0, skipped where the global
//                                              gradient norm is above it or not finite: the step
//                                              guard's; GUARD_OFF: no skip)
//   HostView gpt2_host_view(GPT2*), gpt2_to_host(GPT2*), gpt2_from_host(GPT2*)
//                                              (host arrays of parameters and AdamW moments)
//   gpt2_logits_row(GPT2*, bt, out)            (the V logits of position bt)
//   gpt2_params_finite(GPT2*), gpt2_describe_backend(out, size)
//   gpt2_has_tf32(), gpt2_set_tf32(GPT2*, on)  (whether the hardware has TF32 tensor cores; use them)
//   gpt2_peak_flops(GPT2*)                     (the device's peak FLOP/s in the precision in use, for
//                                              the MFU; 0 where unknown, and on the CPU)
//   gpt2_synchronize(GPT2*)                    (waits for the device: before a clock read; then
//                                              model->grad_norm and model->update_skipped tell
//                                              the last gpt2_update's norm and guard verdict)
//   gpt2_settle(GPT2*)                         (reads the deferred ABFT verdicts of the pass: false
//                                              when one is beyond the device's repair)
//   MemoryFootprint gpt2_footprint(GPT2*, B, T) (what the model takes at that batch shape)
#pragma once

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cmath>
#include <string>
#include <vector>

#include "abft.cuh"
#include "llmc/bpe.h"
#include "llmc/checkpoint.h"
#include "llmc/dataloader.h"
#include "llmc/gpt2_model.h"
#include "llmc/optimizer.h"
#include "llmc/rand.h"
#include "llmc/ranks.h"
#include "llmc/tokenizer.h"
#include "llmc/utils.h"

static const char* g_program = "./train_gpt2"; // argv[0], for the usage line

// ----------------------------------------------------------------------------
// command line

// -tf32 auto: TF32 tensor-core math where the hardware has it (gpt2_has_tf32: the CUDA trainer
// on a GPU of compute capability 8.0 or later, the CPU trainer never); 1 on, 0 off
static const int TF32_AUTO = -1;

struct Options {
    const char* train_pattern = "data/bible/train_*.bin";
    const char* val_pattern = "data/bible/val_*.bin";
    const char* model = "L4C256H4";
    const char* tokenizer = "data/gpt2_tokenizer.bin";
    const char* log_dir = nullptr;
    const char* fault = nullptr;
    const char* abft_every = nullptr;
    const char* abft_scope = "attn";
    const char* abft_tol = "bound";
    const char* prompt = nullptr; // -sample: the text to continue
    int B = 4, T = 64, steps = 20, val_every = 20, val_batches = 20, sample_every = 20, gen_tokens = 64;
    int total_batch = -1; // tokens per step (-d); -1: B·T, one micro-batch
    int warmup = 0, top_k = 0;
    int abft = 1, abft_quiet = 0, bench = 0, checkpoint_every = 0, resume = 0, rollback = 0, tf32 = TF32_AUTO, memory = 0;
    float lr = 3e-4f, final_frac = 1.0f, weight_decay = 0.0f, grad_clip = 1.0f, temperature = 1.0f;
    float abft_extreme = 1e10f, abft_tau = 2.0f, guard = 0.0f;
    long seed = 1337;
    // micro-batches per step: -d over every rank's B·T (llmc/ranks.h)
    int micro_steps() const { return total_batch < 0 ? 1 : total_batch / (B * T * g_ranks.world); }
};

enum FlagKind { FLAG_INT, FLAG_LONG, FLAG_FLOAT, FLAG_STRING, FLAG_AUTO }; // FLAG_AUTO: an int in [lo, hi] or "auto"
struct Flag {
    const char* name;
    FlagKind kind;
    void* target;
    double lo, hi;
    const char* help;
};

static void print_usage(const Flag* flags, int n) {
    printf("usage: %s [-flag value]...\n", g_program);
    for (int i = 0; i < n; i++) {
        const Flag& f = flags[i];
        char value[64];
        if (f.kind == FLAG_AUTO && *(int*)f.target == TF32_AUTO) { snprintf(value, sizeof(value), "auto"); }
        else if (f.kind == FLAG_INT || f.kind == FLAG_AUTO) { snprintf(value, sizeof(value), "%d", *(int*)f.target); }
        else if (f.kind == FLAG_LONG) { snprintf(value, sizeof(value), "%ld", *(long*)f.target); }
        else if (f.kind == FLAG_FLOAT) { snprintf(value, sizeof(value), "%g", *(float*)f.target); }
        else { snprintf(value, sizeof(value), "%s", *(const char**)f.target ? *(const char**)f.target : "none"); }
        printf("  %-14s %s (default %s)\n", f.name, f.help, value);
    }
    printf("  %-14s %s\n", "-fi", "e.g. op=qk,layer=0,step=3,type=inf,pattern=row,seed=1[,count=2][,rank=R]; or rate=1e-4[,type=..]");
    printf("                 layers and steps count from 0 (step=3 is the 4th training step); with -d, micro=K faults\n");
    printf("                 the K-th micro-batch of the step (from 0; default: the first execution in the step)\n");
    printf("                 ops:");
    for (int op = 0; op < ABFT_NUM_ATTN_OPS; op++) { printf(" %s", abft_op_names[op]); }
    printf("\n                 and, checked with -abft_scope all (the LM head's at layer 0):\n                ");
    for (int op = ABFT_NUM_ATTN_OPS; op < ABFT_NUM_GEMM_OPS; op++) { printf(" %s", abft_op_names[op]); }
    printf("\n                 and the kernels checked by invariants (-abft_scope all; lnf to adamw at layer 0):\n                ");
    for (int op = ABFT_NUM_GEMM_OPS; op < ABFT_NUM_LOCAL_OPS; op++) { printf(" %s", abft_op_names[op]); }
    printf("\n                 and, in a data-parallel run (mpirun; rank=R: that rank only), allreduce (layer 0): the\n");
    printf("                 averaged gradient, as (buckets of 4096 elements, 4096): row a bucket, col an element of each\n");
    printf("                 types: inf -inf nan nearinf bitflip (bit=N: flip bit N of floatX, 0-31; 0-15 in bf16); patterns: 0d row col 2d\n");
    printf("                 with -o, the CPU trainer writes each 0d fault and its check's verdict to LOGDIR/faults.jsonl\n");
}

static void parse_flag_value(const Flag& f, const char* value) {
    char* end = nullptr;
    errno = 0;
    if (f.kind == FLAG_STRING) { *(const char**)f.target = value; return; }
    if (f.kind == FLAG_AUTO && strcmp(value, "auto") == 0) { *(int*)f.target = TF32_AUTO; return; }
    double x = f.kind == FLAG_FLOAT ? strtod(value, &end) : (double)strtol(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || !(x >= f.lo && x <= f.hi)) {
        char hint[128];
        snprintf(hint, sizeof(hint), "%s; a %s in [%g, %g]%s", f.help, f.kind == FLAG_FLOAT ? "number" : "whole number", f.lo,
                 f.hi, f.kind == FLAG_AUTO ? " or auto" : "");
        die(f.name, hint, "bad value '%s'", value);
    }
    if (f.kind == FLAG_INT || f.kind == FLAG_AUTO) { *(int*)f.target = (int)x; }
    else if (f.kind == FLAG_LONG) { *(long*)f.target = (long)x; }
    else { *(float*)f.target = (float)x; }
}

// The flags (see -h), validated; argv[0] names the program in the usage line.
static Options parse_options(int argc, char** argv) {
    g_program = argv[0];
    static Options o;
    const Flag flags[] = {
        {"-i", FLAG_STRING, &o.train_pattern, 0, 0, "train token shards (glob)"},
        {"-j", FLAG_STRING, &o.val_pattern, 0, 0, "validation token shards (glob)"},
        {"-e", FLAG_STRING, &o.model, 0, 0, "model: an llm.c .bin file, dN (GPT-2 depth N) or L4C256H4[V..][T..]"},
        {"-z", FLAG_STRING, &o.tokenizer, 0, 0, "tokenizer file for decoding samples"},
        {"-o", FLAG_STRING, &o.log_dir, 0, 0, "log directory (main.jsonl, model.bin)"},
        {"-b", FLAG_INT, &o.B, 1, 1 << 16, "batch size"},
        {"-t", FLAG_INT, &o.T, 1, 1 << 16, "sequence length"},
        {"-d", FLAG_INT, &o.total_batch, -1, 1 << 30, "total batch in tokens, a multiple of B*T*ranks: gradients accumulated over d/(B*T*ranks) micro-batches (-1: B*T*ranks)"},
        {"-l", FLAG_FLOAT, &o.lr, 0, 10, "peak learning rate"},
        {"-u", FLAG_INT, &o.warmup, 0, 1 << 30, "learning rate warmup steps (linear up to -l)"},
        {"-q", FLAG_FLOAT, &o.final_frac, 0, 1, "final learning rate as a fraction of -l, reached by cosine decay after the warmup (1: constant)"},
        {"-c", FLAG_FLOAT, &o.weight_decay, 0, 10, "AdamW weight decay of the 2-D weights (biases and layernorms: none)"},
        {"-clip", FLAG_FLOAT, &o.grad_clip, 0, 1e6, "clip the global gradient norm to this (0: no clipping)"},
        {"-x", FLAG_INT, &o.steps, 0, 1 << 30, "training steps"},
        {"-v", FLAG_INT, &o.val_every, 0, 1 << 30, "validation loss every N steps (0: never)"},
        {"-m", FLAG_INT, &o.val_batches, 1, 1 << 30, "validation batches"},
        {"-s", FLAG_INT, &o.sample_every, 0, 1 << 30, "sample text every N steps (0: never)"},
        {"-g", FLAG_INT, &o.gen_tokens, 1, 1 << 16, "tokens to generate per sample"},
        {"-sample", FLAG_STRING, &o.prompt, 0, 0, "no training: continue this text with the model -e (a .bin file), -g tokens"},
        {"-temp", FLAG_FLOAT, &o.temperature, 1e-3, 100, "sampling temperature"},
        {"-topk", FLAG_INT, &o.top_k, 0, 1 << 20, "sample among the k most likely tokens (0: all)"},
        {"-seed", FLAG_LONG, &o.seed, 0, 1e15, "seed of the random init and of sampling"},
        {"-abft", FLAG_INT, &o.abft, 0, 1, "ATTNChecker on (1) or off (0)"},
        {"-abft_extreme", FLAG_FLOAT, &o.abft_extreme, 1, 3e38, "|x| above this is a fault by itself"},
        {"-abft_tau", FLAG_FLOAT, &o.abft_tau, 1, 1e6, "safety factor over the fp32 error bound of checksums"},
        {"-abft_scope", FLAG_STRING, &o.abft_scope, 0, 0, "which GEMMs are checked: attn (the attention's) or all (also the MLP's and the LM head's)"},
        {"-abft_tol", FLAG_STRING, &o.abft_tol, 0, 0, "checksum tolerance: bound (fp32 worst case x -abft_tau) or measured (per op, fp32)"},
        {"-abft_every", FLAG_STRING, &o.abft_every, 0, 0, "check some ops only every N-th step, e.g. qk=4,pv_dv=8 (others: every step)"},
        {"-abft_quiet", FLAG_INT, &o.abft_quiet, 0, 1, "do not print each ABFT event"},
        {"-n", FLAG_INT, &o.checkpoint_every, 0, 1 << 30, "write a checkpoint to the log directory every N steps (0: never)"},
        {"-y", FLAG_INT, &o.resume, 0, 1, "resume from the newest checkpoint in the log directory (1)"},
        {"-guard", FLAG_FLOAT, &o.guard, 0, 1e6, "step guard: redo a step whose loss or gradient norm is Z std devs above the recent mean (0: off)"},
        {"-rollback", FLAG_INT, &o.rollback, 0, 1, "checkpoint/restore recovery: on a non-finite loss reload the last checkpoint (1)"},
        {"-tf32", FLAG_AUTO, &o.tf32, 0, 1, "TF32 tensor-core GEMMs: 1, 0, or auto (fp32 CUDA trainer: on from sm_80; bf16 build, CPU: off)"},
        {"-bench", FLAG_INT, &o.bench, 0, 1000, "benchmark: N interleaved repeats of a step with ABFT off and on"},
        {"-memory", FLAG_INT, &o.memory, 0, 1, "print the memory footprint at -e, -b, -t and exit, allocating no activations (1)"},
    };
    const int n = sizeof(flags) / sizeof(flags[0]);
    for (int i = 1; i < argc; i += 2) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) { print_usage(flags, n); exit(EXIT_SUCCESS); }
        if (i + 1 >= argc) { die(argv[i], "flags come in pairs: -flag value; see -h", "missing value"); }
        if (strcmp(argv[i], "-fi") == 0) { o.fault = argv[i + 1]; continue; }
        if (strcmp(argv[i], "-w") == 0) { die("-w", "weight decay is -c, as in llm.c", "no such flag"); }
        int f = 0;
        while (f < n && strcmp(argv[i], flags[f].name) != 0) { f++; }
        if (f == n) { die(argv[i], "see -h", "unknown flag"); }
        parse_flag_value(flags[f], argv[i + 1]);
    }
    if ((o.checkpoint_every > 0 || o.resume || o.rollback) && o.log_dir == nullptr) {
        die(o.resume ? "-y" : o.rollback ? "-rollback" : "-n", "give a log directory with -o DIR", "checkpoints live in the log directory");
    }
    if (o.rollback && o.checkpoint_every == 0) { die("-rollback", "give a checkpoint interval with -n N", "rollback needs checkpoints"); }
    const long tokens = (long)o.B * o.T * g_ranks.world;
    if (o.total_batch == 0 || (o.total_batch > 0 && o.total_batch % tokens != 0)) {
        die("-d", "give a multiple of -b x -t x ranks, or -1 for one micro-batch",
            "%d tokens is not a multiple of %d x %d x %d ranks = %ld", o.total_batch, o.B, o.T, g_ranks.world, tokens);
    }
    GPT2Config fresh;
    if (o.prompt != nullptr && parse_model_descriptor(o.model, &fresh)) {
        die("-sample", "give the trained model with -e, e.g. -e log_bible/model.bin", "-e %s is a fresh model, not a trained one", o.model);
    }
    return o;
}

// The model -e names (a descriptor or a file), with ATTNChecker set up as the flags say; prints
// the model and the memory it will take at the batch shape of the flags.
static void build_model(GPT2* model, const Options& o) {
    GPT2Config config;
    if (parse_model_descriptor(o.model, &config)) {
        gpt2_build_from_random(model, config, (uint64_t)o.seed);
    } else {
        gpt2_build_from_checkpoint(model, o.model);
    }
    gpt2_set_tf32(model, o.tf32 == TF32_AUTO ? gpt2_has_tf32() : o.tf32 != 0);
    model->abft.cfg.enabled = o.abft != 0;
    model->abft.cfg.extreme = o.abft_extreme;
    model->abft.cfg.tau = o.abft_tau;
    model->abft.cfg.verbose = o.abft_quiet == 0;
    model->abft.cfg.scope = abft_lookup(o.abft_scope, abft_scope_names, ABFT_NUM_SCOPES, "scope", "-abft_scope");
    model->abft.cfg.tol = abft_lookup(o.abft_tol, abft_tol_names, ABFT_NUM_TOLS, "tolerance", "-abft_tol");
    if (model->abft.cfg.tol == ABFT_TOL_MEASURED && (model->abft.cfg.operand_u != 0.0f || ABFT_FLOATX_OUTPUT_U != 0.0f)) {
        printf("note: -abft_tol measured is measured for fp32 GEMMs; with TF32 or bf16 the checks keep the bound\n");
    }
    if (o.abft_every != nullptr) { abft_parse_every(o.abft_every, &model->abft.cfg); }
    if (o.fault != nullptr) { model->abft.fault = abft_parse_fault(o.fault); }
    if (model->abft.fault.rank >= g_ranks.world) {
        die("-fi", "ranks count from 0", "rank=%d, but the run has %d ranks", model->abft.fault.rank, g_ranks.world);
    }
    if (model->abft.fault.rank >= 0 && model->abft.fault.rank != g_ranks.rank) { model->abft.fault.active = false; }
    const int fault_op = model->abft.fault.op;
    if (!abft_in_scope(model->abft.cfg, fault_op)) {
        printf("note: -fi op=%s is outside -abft_scope %s: the fault is injected and not checked\n",
               abft_op_names[fault_op], o.abft_scope);
    }
    if (model->abft.fault.layer >= model->config.num_layers) {
        die("-fi", "layers count from 0", "layer %d, but the model has %d", model->abft.fault.layer, model->config.num_layers);
    }
    if (fault_op >= 0 && abft_once_per_step(fault_op) && model->abft.fault.layer > 0) {
        die("-fi", "the LM head, lnf, loss, dlogits and adamw run once a step: give layer=0", "op %s at layer %d",
            abft_op_names[fault_op], model->abft.fault.layer);
    }
    abft_init(&model->abft);
    const GPT2Config& c = model->config;
    printf("model: L=%d NH=%d C=%d maxT=%d V=%d (padded %d), %zu parameters\n", c.num_layers, c.num_heads, c.channels,
           c.max_seq_len, c.vocab_size, c.padded_vocab_size, model->num_parameters);
    MemoryFootprint footprint = gpt2_footprint(model, o.prompt != nullptr ? 1 : o.B, o.T);
    if (o.micro_steps() > 1) { footprint.gradients += model->num_parameters * sizeof(float); } // their float sum over a step's micro-batches
    print_footprint(footprint);
    char backend[256];
    gpt2_describe_backend(backend, sizeof(backend));
    printf("backend: %s\n", backend);
}


// ----------------------------------------------------------------------------
// the step guard (-guard Z): the last line, for what no check sees

// A step whose loss or global gradient norm is not finite, or lies more than Z standard
// deviations above the mean of the last GUARD_WINDOW applied steps, is not applied: it is
// redone from the pre-step state (the parameters change only in the update). A transient
// fault does not come back, so the redone step is clean; a spike that comes back is the
// data's, and is applied. The z-score is the one llm.c's outlier detector logs.
constexpr int GUARD_WINDOW = 64; // steps of history
constexpr int GUARD_WARMUP = 16; // the z-scores need this many; before, only non-finite values fire
constexpr float GUARD_OFF = -1.0f;

struct GuardHistory {
    double x[GUARD_WINDOW];
    long n = 0; // values pushed; the last min(n, GUARD_WINDOW) are kept
};

struct StepGuard {
    float z = 0.0f; // -guard; 0: off
    GuardHistory loss, norm;
    long redone_loss = 0, redone_norm = 0; // steps redone, by what fired
};

static void guard_push(GuardHistory* h, double x) { h->x[h->n++ % GUARD_WINDOW] = x; }

// The largest value that passes: mean + z·std of the history, INFINITY until it is long
// enough (then only a non-finite value fires).
static float guard_limit(const GuardHistory& h, float z) {
    const long n = std::min<long>(h.n, GUARD_WINDOW);
    if (n < GUARD_WARMUP) { return INFINITY; }
    double mean = 0.0, var = 0.0;
    for (long i = 0; i < n; i++) { mean += h.x[i]; }
    mean /= n;
    for (long i = 0; i < n; i++) { var += (h.x[i] - mean) * (h.x[i] - mean); }
    return (float)(mean + z * sqrt(var / n));
}

// ----------------------------------------------------------------------------
// the top of the ladder

// One micro-batch of a step: (B, T) inputs and targets (null: no loss), host arrays.
struct MicroBatch {
    const int* inputs;
    const int* targets;
};

static void gpt2_run_synchronous(GPT2* model, const MicroBatch* batches, int n, bool backward);
static void gpt2_replay_synchronous(GPT2* model, const AbftSnapshot& before, const MicroBatch* batches, int n,
                                    bool backward);

// The passes of one step: forward (and, with `backward`, backward) over each of its n
// micro-batches, their gradients summed (by gpt2_backward) when there are several, and
// model->mean_loss their mean. False when a fault survived a pass's lower rungs.
static bool gpt2_passes(GPT2* model, const MicroBatch* batches, int n, bool backward) {
    double loss = 0.0;
    for (int k = 0; k < n; k++) {
        model->abft.micro = k;
        if (!gpt2_forward(model, batches[k].inputs, batches[k].targets, backward) ||
            (backward && !gpt2_backward(model, k, n))) {
            return false;
        }
        loss += model->mean_loss;
    }
    if (n > 1) { model->mean_loss = (float)(loss / n); }
    return true;
}

// A forward (and, with `backward`, backward) pass under the whole escalation ladder. On the
// GPU the checks' verdicts are deferred (abft.deferred): the repairs the checksums can make run
// in stream order, and the host reads what happened once, at the end of the pass
// (gpt2_settle). When that shows a fault the device could not repair, the pass is redone
// (gpt2_replay_synchronous).
// In a data-parallel run model->mean_loss is then the mean over the ranks' slices.
static void gpt2_run_checked(GPT2* model, const int* inputs, const int* targets, bool backward) {
    const MicroBatch batch = {inputs, targets};
    if (!model->abft.deferred) {
        gpt2_run_synchronous(model, &batch, 1, backward);
    } else {
        const AbftSnapshot before = abft_snapshot(&model->abft);
        const bool done = gpt2_passes(model, &batch, 1, backward);
        if (!(gpt2_settle(model) && done)) { gpt2_replay_synchronous(model, before, &batch, 1, backward); }
    }
    model->mean_loss = (float)ranks_mean(model->mean_loss);
}

// One training step over n micro-batches: their forward and backward passes, and the AdamW
// update of their averaged gradient, under the whole ladder, ending with the step's one wait
// for the device (the trainer times steps, so it waits anyway). On the GPU the update is
// queued before the host has read the passes' verdicts: the device skips it when a check found
// a fault it could not repair (gpt2_update's gate), and the host, which reads the verdicts
// after the wait, redoes the step's passes (every micro-batch) and then updates. So ABFT adds
// no wait. With the step guard's limits (GUARD_OFF: none), the update is not applied when the
// loss is above max_loss (the host knows it before it queues the update) or the gradient norm
// above max_norm (the device decides); returns whether it was applied. In a data-parallel run
// the ranks agree on the loss (its mean) and on redoing the passes (when any rank must), and
// the update averages their gradients, so every rank takes the same branches.
static bool gpt2_train_step(GPT2* model, const MicroBatch* batches, int n, AdamWStep opt, int t,
                            float max_loss = GUARD_OFF, float max_norm = GUARD_OFF) {
    opt.micro_steps = n;
    auto update = [&] {
        model->mean_loss = (float)ranks_mean(model->mean_loss);
        const bool loss_ok = max_loss < 0.0f || (std::isfinite(model->mean_loss) && model->mean_loss <= max_loss);
        if (loss_ok) { gpt2_update(model, opt, t, max_norm); }
        return loss_ok;
    };
    if (!model->abft.deferred) {
        gpt2_run_synchronous(model, batches, n, true);
        const bool queued = update();
        gpt2_synchronize(model);
        return queued && !model->update_skipped;
    }
    const AbftSnapshot before = abft_snapshot(&model->abft);
    const bool done = gpt2_passes(model, batches, n, true);
    bool queued = done && update(); // done: always, deferred (the verdicts come with gpt2_settle)
    gpt2_synchronize(model);
    if (ranks_any(!(gpt2_settle(model) && done))) {
        gpt2_replay_synchronous(model, before, batches, n, true); // the update above was skipped
        model->abft.deferred = false; // no pass verdict left to gate it on; its own check read at once
        queued = update();
        model->abft.deferred = true;
        gpt2_synchronize(model);
    }
    return queued && !model->update_skipped;
}

// A step on one batch (the tests' and the benchmark's).
static bool gpt2_train_step(GPT2* model, const int* inputs, const int* targets, const AdamWStep& opt, int t) {
    const MicroBatch batch = {inputs, targets};
    return gpt2_train_step(model, &batch, 1, opt, t);
}

// A training step under the step guard: redone once from the pre-step state when its loss
// or gradient norm fires; applied if the redone step fires again, unless it is not finite
// (then it is not transient, and training stops).
static void gpt2_guarded_step(GPT2* model, StepGuard* guard, const MicroBatch* batches, int n, const AdamWStep& opt,
                              int t) {
    if (guard->z <= 0.0f) {
        gpt2_train_step(model, batches, n, opt, t);
        return;
    }
    const float max_loss = guard_limit(guard->loss, guard->z), max_norm = guard_limit(guard->norm, guard->z);
    if (!gpt2_train_step(model, batches, n, opt, t, max_loss, max_norm)) {
        const bool by_loss = !(std::isfinite(model->mean_loss) && model->mean_loss <= max_loss);
        (by_loss ? guard->redone_loss : guard->redone_norm)++;
        printf("guard: step %d: %s %g above its limit %g; redoing the step\n", model->abft.step,
               by_loss ? "loss" : "gradient norm", by_loss ? model->mean_loss : model->grad_norm, by_loss ? max_loss : max_norm);
        if (!gpt2_train_step(model, batches, n, opt, t, INFINITY, INFINITY)) {
            die("-guard", "the fault is not transient, or the model diverges: lower the learning rate",
                "step %d: loss %g, gradient norm %g: not finite after the step was redone", model->abft.step,
                model->mean_loss, model->grad_norm);
        }
    }
    guard_push(&guard->loss, model->mean_loss);
    guard_push(&guard->norm, model->grad_norm);
}

// A deferred step whose passes left a fault beyond the device's repair, redone from the same
// state with the same faults, this time with a verdict read after every GEMM, so that the lower
// rungs (recompute the GEMM, the layer) apply as on the CPU.
static void gpt2_replay_synchronous(GPT2* model, const AbftSnapshot& before, const MicroBatch* batches, int n,
                                    bool backward) {
    abft_restore(&model->abft, before);
    model->abft.n.replayed_pass++;
    if (model->abft.cfg.verbose) {
        printf("abft: step %d: a fault beyond the checksums; redoing the pass with a check read after every GEMM\n",
               model->abft.step);
    }
    model->abft.deferred = false;
    gpt2_run_synchronous(model, batches, n, backward);
    model->abft.deferred = true;
}

// The step's passes with every check read as soon as it ran: when a fault survived every lower
// rung, the step is redone once from its start (every micro-batch: the parameters only change
// in the update that follows, and the gradient sum starts again). A fault that survives that
// is not transient.
static void gpt2_run_synchronous(GPT2* model, const MicroBatch* batches, int n, bool backward) {
    for (int attempt = 0;; attempt++) {
        if (gpt2_passes(model, batches, n, backward)) { return; }
        if (attempt == 1) {
            die("abft",
                "the inputs of a protected GEMM or kernel are themselves bad: the model has diverged or memory is failing",
                "step %d still faulty after it was redone", model->abft.step);
        }
        model->abft.n.redone_step++;
        if (model->abft.cfg.verbose) { printf("abft: step %d: redoing the step\n", model->abft.step); }
    }
}

// Forward with targets and backward under the whole ladder, without the update (the tests
// compare the gradients it leaves).
static void gpt2_forward_backward(GPT2* model, const int* inputs, const int* targets) {
    gpt2_run_checked(model, inputs, targets, true);
}

// ----------------------------------------------------------------------------
// training

static float train_step(GPT2* model, StepGuard* guard, DataLoader* loader, const Options& o, float lr, int step);
static double model_flops_per_token(const GPT2* model);
static float validation_loss(GPT2* model, DataLoader* loader, int batches);
static void sample_text(GPT2* model, const Tokenizer& tokenizer, int gen_tokens, uint64_t* rng);
static Tokenizer open_tokenizer(const char* path, int vocab_size);
static FILE* open_log(const char* dir, int resume_step);
// One line of main.jsonl.
struct StepRecord {
    int step;
    float loss, val_loss; // val_loss -1: no validation at this step
    float lr, grad_norm;  // the gradient's global norm before the clip
    double ms, tok_s, mfu; // mfu: a fraction of the device's peak; NaN where the peak is unknown
};

static void log_step(FILE* log, const char* dir, const StepRecord& r, const AbftCounters& n);
static void write_abft_report(const char* dir, const Abft& abft, int steps);
static double save_checkpoint(GPT2* model, const char* dir, int step, int previous_step, int micro_steps,
                              const DataLoader* loader, uint64_t sample_rng);
static int load_checkpoint(GPT2* model, const char* dir, int micro_steps, DataLoader* loader, uint64_t* sample_rng,
                           bool restore_faults);
static void on_interrupt(int);
static volatile sig_atomic_t g_interrupted = 0;

// The training run the flags describe: the steps, with validation, samples, the log and
// checkpoints along the way; -rollback's checkpoint/restore; at the end the ABFT summary (and
// with -o the final model and LOGDIR/abft.json). Returns the exit status: 130 when a signal
// stopped it (after a checkpoint, with -o).
static int train(GPT2* model, const Options& o) {
    const GPT2Config& c = model->config;
    DataLoader train_loader, val_loader;
    dataloader_init(&train_loader, o.train_pattern, o.B, o.T, c.vocab_size, g_ranks.rank, g_ranks.world);
    const bool have_val = o.val_every > 0;
    if (have_val) { dataloader_init(&val_loader, o.val_pattern, o.B, o.T, c.vocab_size, g_ranks.rank, g_ranks.world); }
    Tokenizer tokenizer = open_tokenizer(o.tokenizer, c.vocab_size);
    uint64_t sample_rng = (uint64_t)o.seed + 7;
    const int micro = o.micro_steps();
    int first_step = o.resume ? load_checkpoint(model, o.log_dir, micro, &train_loader, &sample_rng, true) : 0;
    const bool speaks = g_ranks.rank == 0; // writes the log, checkpoints and the model
    FILE* log = speaks ? open_log(o.log_dir, first_step) : nullptr;
    if (ABFT_HOST_CHECKS && o.fault != nullptr && o.log_dir != nullptr) {
        std::string path = rank_file(o.log_dir, "faults", ".jsonl");
        model->abft.events = fopen_check(path.c_str(), first_step > 0 ? "a" : "w", "choose a writable directory for -o");
    }
    printf("train: %ld tokens, batch %d x %d", train_loader.num_tokens, o.B, o.T);
    if (g_ranks.world > 1) { printf(" on each of %d ranks", g_ranks.world); }
    if (micro > 1) { printf(" x %d micro-batches = %d tokens per step", micro, o.total_batch); }
    printf(", lr %g", o.lr);
    if (o.warmup > 0) { printf(" after %d warmup steps", o.warmup); }
    if (o.final_frac < 1.0f) { printf(", cosine decay to %g", o.lr * o.final_frac); }
    printf(", clip %g, weight decay %g, abft %s\n", o.grad_clip, o.weight_decay, o.abft ? "on" : "off");
    signal(SIGINT, on_interrupt);
    signal(SIGTERM, on_interrupt);
    double checkpoint_seconds = 0.0; // time spent writing checkpoints
    int checkpoints = 0;
    if (o.rollback && checkpoint_latest(o.log_dir) < first_step) { // something to roll back to
        gpt2_allocate_moments(model);
        checkpoint_seconds += save_checkpoint(model, o.log_dir, first_step, -1, micro, &train_loader, sample_rng);
        checkpoints++;
    }
    int done = first_step; // steps completed
    StepGuard guard;
    guard.z = o.guard;
    int rollbacks = 0, rollbacks_in_a_row = 0, steps_redone = 0;
    double rollback_seconds = 0.0; // time lost to rollbacks: the discarded steps and the reloads
    double since_checkpoint = 0.0; // training time since the last checkpoint
    const double peak = gpt2_peak_flops(model); // FLOP/s, for the MFU; 0: unknown
    for (int step = first_step; step < o.steps; step++) {
        const long detected0 = abft_total_detected(model->abft.n);
        gpt2_synchronize(model);
        const double t0 = wall_seconds();
        const float lr = learning_rate_at(o.lr, step, o.warmup, o.steps, o.final_frac);
        const float train_loss = train_step(model, &guard, &train_loader, o, lr, step); // ends with the device idle
        const double ms = 1e3 * (wall_seconds() - t0);
        const double tokens = (double)micro * o.B * o.T * g_ranks.world; // every rank's
        const double tok_s = tokens / (ms * 1e-3);
        const double mfu = peak > 0.0 ? model_flops_per_token(model) * tok_s / peak : NAN;
        since_checkpoint += ms * 1e-3;
        // the checkpoint/restore baseline of ABFT: a non-finite loss, or parameters made non-finite
        // by this step's update (which would otherwise be checkpointed), sends training back
        if (o.rollback && (!std::isfinite(train_loss) || !gpt2_params_finite(model))) {
            if (rollbacks_in_a_row++ == 3) {
                die("-rollback", "the fault is not transient, or the model diverges: lower the learning rate",
                    "still non-finite after 3 rollbacks to step %d", checkpoint_latest(o.log_dir));
            }
            double t1 = wall_seconds();
            int back = load_checkpoint(model, o.log_dir, micro, &train_loader, &sample_rng, false);
            if (speaks) {
                fclose_check(log, o.log_dir);
                log = open_log(o.log_dir, back);
            }
            double lost = since_checkpoint + (wall_seconds() - t1);
            printf("rollback: non-finite loss or parameters at step %d; reloaded the checkpoint of step %d (%d steps and %.2f s lost)\n",
                   step + 1, back, step + 1 - back, lost);
            rollbacks++;
            steps_redone += step + 1 - back;
            rollback_seconds += lost;
            since_checkpoint = 0.0;
            done = back;
            step = back - 1; // the loop's increment resumes at step `back`
            continue;
        }
        rollbacks_in_a_row = 0;
        done = step + 1;
        long events = abft_total_detected(model->abft.n) - detected0;
        char mfu_text[32] = "";
        if (std::isfinite(mfu)) { snprintf(mfu_text, sizeof(mfu_text), ", MFU %.1f%%", 100.0 * mfu); }
        printf("step %4d/%d: train loss %.6f, lr %.3e, norm %.4f (%.1f ms, %.0f tok/s%s)%s\n", done, o.steps, train_loss,
               lr, model->grad_norm, ms, tok_s, mfu_text, events ? "  [abft: faults detected and repaired]" : "");
        const bool last = done == o.steps, stop = ranks_any(g_interrupted != 0); // every rank stops after the same step
        float val_loss = -1.0f; // of the model after this step
        if (have_val && (done % o.val_every == 0 || last)) {
            val_loss = validation_loss(model, &val_loader, o.val_batches);
            printf("val loss %.6f\n", val_loss);
        }
        log_step(log, o.log_dir, StepRecord{done, train_loss, val_loss, lr, model->grad_norm, ms, tok_s, mfu}, model->abft.n);
        if (o.sample_every > 0 && (done % o.sample_every == 0 || last)) {
            sample_text(model, tokenizer, o.gen_tokens, &sample_rng);
        }
        if (o.log_dir != nullptr && ((o.checkpoint_every > 0 && done % o.checkpoint_every == 0) || stop)) {
            checkpoint_seconds += save_checkpoint(model, o.log_dir, done, checkpoint_latest(o.log_dir), micro, &train_loader,
                                                  sample_rng);
            checkpoints++;
            since_checkpoint = 0.0;
        }
        if (stop) {
            printf("interrupted after step %d%s\n", done, o.log_dir ? "; resume with the same flags and -y 1" : "");
            break;
        }
    }
    abft_print_summary(model->abft, done - first_step);
    if (guard.z > 0.0f) {
        printf("step guard (-guard %g): %ld steps redone (%ld for the loss, %ld for the gradient norm)\n", guard.z,
               guard.redone_loss + guard.redone_norm, guard.redone_loss, guard.redone_norm);
    }
    if (o.log_dir != nullptr) { write_abft_report(o.log_dir, model->abft, done - first_step); } // each rank its own
    if (model->abft.events != nullptr) { fclose_check(model->abft.events, o.log_dir); }
    if (o.rollback) {
        printf("rollbacks: %d, steps recomputed %d, time lost %.3f s; %d checkpoints written in %.3f s\n", rollbacks,
               steps_redone, rollback_seconds, checkpoints, checkpoint_seconds);
    }
    if (log != nullptr) {
        fclose_check(log, o.log_dir);
        std::string path = std::string(o.log_dir) + "/model.bin";
        gpt2_to_host(model);
        model_write(path, model->config, gpt2_host_view(model).params);
        printf("wrote %s\n", path.c_str());
    }
    dataloader_free(&train_loader);
    if (have_val) { dataloader_free(&val_loader); }
    tokenizer_free(&tokenizer);
    return g_interrupted ? 130 : 0;
}

// One training step at learning rate lr: the next micro-batches (-d), forward and backward
// under the whole ladder, then AdamW. Returns the step's training loss.
static float train_step(GPT2* model, StepGuard* guard, DataLoader* loader, const Options& o, float lr, int step) {
    model->abft.step = step;
    const int n = o.micro_steps();
    const size_t BT = (size_t)o.B * o.T;
    std::vector<int> tokens(2 * n * BT); // (n, 2, B*T): each micro-batch's inputs, then its targets
    std::vector<MicroBatch> batches(n);
    for (int k = 0; k < n; k++) {
        dataloader_next_batch(loader);
        int* x = tokens.data() + 2 * k * BT;
        memcpy(x, loader->inputs, BT * sizeof(int));
        memcpy(x + BT, loader->targets, BT * sizeof(int));
        batches[k] = MicroBatch{x, x + BT};
    }
    AdamWStep opt;
    opt.lr = lr;
    opt.weight_decay = o.weight_decay;
    opt.grad_clip = o.grad_clip;
    gpt2_guarded_step(model, guard, batches.data(), n, opt, step + 1);
    return model->mean_loss;
}

// The model FLOPs of one token's forward and backward pass, as llm.c counts them for its MFU:
// 6 per parameter (2 forward, 4 backward), plus the attention's two (T, T) matmuls per layer,
// 12·C·T, halved for the causal mask.
static double model_flops_per_token(const GPT2* model) {
    const GPT2Config& c = model->config;
    return 6.0 * (double)model->num_parameters + 6.0 * c.num_layers * c.channels * model->T;
}

// ----------------------------------------------------------------------------
// benchmark: ABFT off vs on, same binary, same batch, interleaved, medians

static double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double timed_step(GPT2* model, const int* x, const int* y, bool abft_on, int step) {
    model->abft.cfg.enabled = abft_on;
    model->abft.step = step;
    gpt2_synchronize(model);
    double t0 = wall_seconds();
    AdamWStep opt;
    opt.lr = 1e-4f;
    gpt2_train_step(model, x, y, opt, step + 1); // returns with the device idle
    return wall_seconds() - t0;
}

// -bench N: the step time with ABFT off and on, and each op's share of it. Returns 0.
static int run_benchmark(GPT2* model, int repeats, uint64_t seed) {
    const int B = model->B, T = model->T, V = model->config.vocab_size;
    std::vector<int> tokens((size_t)B * T + 1);
    for (int& t : tokens) { t = (int)(random_u32(&seed) % (uint32_t)V); }
    const int* x = tokens.data();
    const int* y = tokens.data() + 1;
    char backend[256];
    gpt2_describe_backend(backend, sizeof(backend));
    printf("benchmark: %d repeats, B=%d T=%d, %s\n", repeats, B, T, backend);
    int step = 0;
    timed_step(model, x, y, false, step++); // warm up: first touch of every buffer
    timed_step(model, x, y, true, step++);
    memset(&model->abft.n, 0, sizeof(model->abft.n));
    std::vector<double> off, on;
    for (int r = 0; r < repeats; r++) { // alternate the order so that drift hits both alike
        bool first_on = r % 2 == 1;
        double a = timed_step(model, x, y, first_on, step++);
        double b = timed_step(model, x, y, !first_on, step++);
        (first_on ? on : off).push_back(a);
        (first_on ? off : on).push_back(b);
    }
    double off_ms = 1e3 * median(off), on_ms = 1e3 * median(on);
    printf("step time: abft off %.1f ms, abft on %.1f ms (median of %d)\n", off_ms, on_ms, repeats);
    printf("abft time per step, by op (mean over the ABFT-on steps):\n");
    double total = 0.0;
    for (int op = 0; op < ABFT_NUM_OPS; op++) { // the kernels' checks are fused into them, not timed
        if (!abft_in_scope(model->abft.cfg, op) || (op >= ABFT_NUM_GEMM_OPS && op != OP_ALLREDUCE)) { continue; }
        double ms = 1e3 * model->abft.n.seconds[op] / repeats;
        total += ms;
        printf("  %-9s %8.3f ms  %5.2f%% of the step\n", abft_op_names[op], ms, 100.0 * ms / off_ms);
    }
    printf("  %-9s %8.3f ms  %5.2f%% of the step\n", "all", total, 100.0 * total / off_ms);
    printf("abft overhead: %.1f%%\n", 100.0 * (on_ms / off_ms - 1.0));
    return 0;
}

// ----------------------------------------------------------------------------
// validation and samples

// A token drawn from softmax(logits / temperature) over the top_k largest logits (0: all V).
static int next_token(std::vector<float>& logits, float temperature, int top_k, uint64_t* rng) {
    const int V = (int)logits.size();
    float cut = -INFINITY; // logits below the k-th largest are left out
    if (top_k > 0 && top_k < V) {
        std::vector<float> sorted(logits);
        std::nth_element(sorted.begin(), sorted.begin() + (top_k - 1), sorted.end(), std::greater<float>());
        cut = sorted[top_k - 1];
    }
    float maxval = -INFINITY, sum = 0.0f;
    for (float l : logits) { maxval = fmaxf(maxval, l); }
    for (float& l : logits) {
        l = l < cut ? 0.0f : expf((l - maxval) / temperature);
        sum += l;
    }
    for (float& l : logits) { l /= sum; }
    return sample_mult(logits.data(), V, random_f32(rng));
}

// During training: gen_tokens tokens from the model after <|endoftext|>, in batch row 0.
static void sample_text(GPT2* model, const Tokenizer& tokenizer, int gen_tokens, uint64_t* rng) {
    const int B = model->B, T = model->T, V = model->config.vocab_size;
    const int eot = tokenizer.ok ? tokenizer.eot_token : V - 1;
    std::vector<int> tokens((size_t)B * T, eot);
    std::vector<float> logits(V);
    int n = gen_tokens < T ? gen_tokens : T;
    printf("generating:\n---\n");
    for (int t = 1; t < n; t++) {
        gpt2_run_checked(model, tokens.data(), nullptr, false);
        gpt2_logits_row(model, t - 1, logits.data()); // batch row 0
        int next = next_token(logits, 1.0f, 0, rng);
        tokens[t] = next;
        if (tokenizer.ok) { safe_print(tokenizer_decode(&tokenizer, next)); } else { printf("%d ", next); }
        fflush(stdout);
    }
    printf("\n---\n");
}

// -sample TEXT: the model continues TEXT (encoded with GPT-2's BPE, llmc/bpe.h) by -g tokens,
// each drawn at -temp among the -topk most likely, from -seed; it sees the last -t tokens (the
// activations are laid out for one row of T). Stops early at <|endoftext|>. Returns 0.
static int run_sample(GPT2* model, const Options& o) {
    const int T = model->T, V = model->config.vocab_size;
    Tokenizer tokenizer = open_tokenizer(o.tokenizer, V);
    if (!tokenizer.ok) {
        die(o.tokenizer, "prepare it with scripts/prepare_data.py, or give the right one with -z", "no tokenizer to encode the prompt with");
    }
    std::vector<int> context = bpe_encode(tokenizer, o.prompt);
    if (context.empty()) { die("-sample", "give some text to continue", "the prompt is empty"); }
    if ((int)context.size() >= T) {
        die("-sample", "shorten the prompt, or raise -t (at most the model's maxT)",
            "the prompt is %zu tokens; the context (-t %d) must hold it and one more", context.size(), T);
    }
    printf("sample: %zu prompt tokens, %d new at temperature %g, top-k %d, seed %ld\n---\n%s", context.size(), o.gen_tokens,
           o.temperature, o.top_k, o.seed, o.prompt);
    std::vector<int> window(T, tokenizer.eot_token);
    std::vector<float> logits(V);
    uint64_t rng = (uint64_t)o.seed;
    for (int i = 0; i < o.gen_tokens; i++) {
        const int n = std::min((int)context.size(), T);
        std::copy(context.end() - n, context.end(), window.begin());
        gpt2_run_checked(model, window.data(), nullptr, false);
        gpt2_logits_row(model, n - 1, logits.data());
        const int next = next_token(logits, o.temperature, o.top_k, &rng);
        if (next == tokenizer.eot_token) { break; }
        context.push_back(next);
        safe_print(tokenizer_decode(&tokenizer, next));
        fflush(stdout);
    }
    printf("\n---\n");
    tokenizer_free(&tokenizer);
    return 0;
}

// ----------------------------------------------------------------------------
// the program

// What main runs: the flags' model, then its memory footprint (-memory), text from it
// (-sample), the benchmark (-bench) or the training run. Returns the exit status.
static int run_program(const Options& o) {
    ranks_quiet_output(o.log_dir);
    GPT2 model;
    build_model(&model, o);
    int status = 0;
    if (!o.memory) { // else the footprint is printed, and that is all
        gpt2_allocate_activations(&model, o.prompt != nullptr ? 1 : o.B, o.T);
        status = o.prompt != nullptr ? run_sample(&model, o)
                 : o.bench > 0        ? run_benchmark(&model, o.bench, (uint64_t)o.seed)
                                      : train(&model, o);
    }
    gpt2_free(&model);
    return status;
}

static float validation_loss(GPT2* model, DataLoader* loader, int batches) {
    dataloader_reset(loader);
    double sum = 0.0;
    for (int i = 0; i < batches; i++) {
        dataloader_next_batch(loader);
        gpt2_run_checked(model, loader->inputs, loader->targets, false);
        sum += model->mean_loss;
    }
    return (float)(sum / batches);
}

// The tokenizer for decoding samples. A missing default one only means samples print token
// ids; one given with -z that does not match the model is an error.
static Tokenizer open_tokenizer(const char* path, int vocab_size) {
    Tokenizer tokenizer;
    tokenizer_init(&tokenizer, path);
    if (tokenizer.ok && tokenizer.vocab_size != vocab_size) {
        if (strcmp(path, Options().tokenizer) != 0) {
            die(path, "use the tokenizer the data was prepared with", "vocab size %d, the model's is %d",
                tokenizer.vocab_size, vocab_size);
        }
        fprintf(stderr, "warning: %s: vocab size %d, the model's is %d; samples will print token ids (hint: give the right one with -z)\n",
                path, tokenizer.vocab_size, vocab_size);
        tokenizer_free(&tokenizer);
        tokenizer.ok = false;
    }
    return tokenizer;
}

// ----------------------------------------------------------------------------
// log, checkpoints, resume, interruption

// Opens DIR/main.jsonl. On resume, keeps the records of steps up to the checkpoint and drops
// those a killed run wrote after it, which the resumed run is about to redo.
static FILE* open_log(const char* dir, int resume_step) {
    if (dir == nullptr) { return nullptr; }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) { die(dir, "choose a writable directory for -o", "cannot create (%s)", strerror(errno)); }
    std::string path = std::string(dir) + "/main.jsonl";
    std::string kept;
    FILE* old = resume_step > 0 ? fopen(path.c_str(), "r") : nullptr;
    if (old != nullptr) {
        char line[1024];
        int step = 0;
        while (fgets(line, sizeof(line), old) != nullptr) {
            if (sscanf(line, "{\"step\": %d", &step) == 1 && step <= resume_step) { kept += line; }
        }
        fclose(old);
    }
    FILE* f = fopen_check(path.c_str(), "w", "choose a writable directory for -o");
    fwrite_check(kept.data(), 1, kept.size(), f, path.c_str());
    return f;
}

static void log_step(FILE* log, const char* dir, const StepRecord& r, const AbftCounters& n) {
    if (log == nullptr) { return; }
    char val[32] = "null"; // a non-finite loss prints as nan
    if (r.val_loss != -1.0f) { snprintf(val, sizeof(val), "%.6f", r.val_loss); }
    char mfu[32] = "null";
    if (std::isfinite(r.mfu)) { snprintf(mfu, sizeof(mfu), "%.4f", r.mfu); }
    fprintf(log, "{\"step\": %d, \"loss\": %.6f, \"val_loss\": %s, \"lr\": %.6e, \"grad_norm\": %.6f, \"ms\": %.2f, "
                 "\"tok_s\": %.1f, \"mfu\": %s, \"abft_detected\": %ld, \"abft_corrected\": %ld, \"abft_recomputed\": %ld}\n",
            r.step, r.loss, val, r.lr, r.grad_norm, r.ms, r.tok_s, mfu, abft_total_detected(n), abft_total_corrected(n),
            abft_total_recomputed(n));
    if (fflush(log) != 0) { die(dir, "check free disk space", "cannot write the log"); }
}

// LOGDIR/abft.json: the run's ABFT counters per op (abft_write_report), for scripts and tests
// (rank r > 0 of a data-parallel run: abft_rank<r>.json, its own).
static void write_abft_report(const char* dir, const Abft& abft, int steps) {
    std::string path = rank_file(dir, "abft", ".json");
    FILE* f = fopen_check(path.c_str(), "w", "choose a writable directory for -o");
    abft_write_report(f, abft, steps);
    fclose_check(f, path.c_str());
}

// Writes the checkpoint of `step` and keeps it and the one before it (previous_step), no older.
// Every rank calls it; rank 0 writes. The fault injector's state it keeps is the rank's whose
// injector runs (-fi ...,rank=R; without rank=, every rank's draws the same). Returns the
// seconds it took.
static double save_checkpoint(GPT2* model, const char* dir, int step, int previous_step, int micro_steps,
                              const DataLoader* loader, uint64_t sample_rng) {
    uint64_t injector[2] = {model->abft.fault_rng, (uint64_t)model->abft.fault_fired};
    ranks_share(injector, sizeof(injector), std::max(model->abft.fault.rank, 0));
    if (g_ranks.rank != 0) { return 0.0; }
    const double t0 = wall_seconds();
    DataLoaderState ds = dataloader_get_state(loader);
    TrainState s{(int64_t)model->num_parameters, ds.shard, ds.position, sample_rng, injector[0], (int64_t)injector[1]};
    gpt2_to_host(model);
    const HostView h = gpt2_host_view(model);
    model_write(checkpoint_path(dir, "model", step), model->config, h.params);
    state_write(checkpoint_path(dir, "state", step), step, model->B, model->T, micro_steps, g_ranks.world, s, h.m, h.v);
    checkpoint_mark_done(dir, step);
    checkpoint_remove_older(dir, previous_step >= 0 ? previous_step : step);
    const double seconds = wall_seconds() - t0;
    printf("checkpoint: step %d written to %s (%.2f s)\n", step, dir, seconds);
    return seconds;
}

// Loads the newest complete checkpoint of dir into the model; returns its step. A resume also
// restores the fault injector; a rollback does not (a transient fault does not come back).
static int load_checkpoint(GPT2* model, const char* dir, int micro_steps, DataLoader* loader, uint64_t* sample_rng,
                           bool restore_faults) {
    int step = checkpoint_latest(dir);
    if (step < 0) { die(dir, "train with -o DIR -n N first, then resume with the same -o", "no complete checkpoint to resume from"); }
    std::string model_path = checkpoint_path(dir, "model", step), state_path = checkpoint_path(dir, "state", step);
    GPT2Config config;
    ModelFile f = model_open(model_path.c_str(), &config);
    if (memcmp(&config, &model->config, sizeof(config)) != 0) {
        die(model_path.c_str(), "resume with the same -e as the run that wrote it", "the checkpoint holds another model shape");
    }
    gpt2_allocate_moments(model);
    const HostView h = gpt2_host_view(model);
    model_read_params(f, h.params, model->num_parameters);
    TrainState s;
    int state_step = state_read(state_path.c_str(), model->num_parameters, model->B, model->T, micro_steps, g_ranks.world,
                                &s, h.m, h.v);
    gpt2_from_host(model);
    if (state_step != step) { die(state_path.c_str(), "the checkpoint files are mixed up", "holds step %d, expected %d", state_step, step); }
    dataloader_set_state(loader, DataLoaderState{(long)s.train_shard, (long)s.train_position});
    *sample_rng = s.sample_rng;
    if (restore_faults) {
        model->abft.fault_rng = s.fault_rng;
        model->abft.fault_fired = (int)s.fault_fired;
        printf("resumed from step %d (%s)\n", step, dir);
    }
    return step;
}

// Ctrl-C or a TERM signal: finish the step under way, write a checkpoint, stop.
static void on_interrupt(int) { g_interrupted = 1; }
