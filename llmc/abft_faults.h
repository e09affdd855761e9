// abft_faults.h: what surrounds the checksums in a training run: ATTNChecker's settings and
// counters (Abft), fault injection (-fi), the flags that set them (-fi, -abft_every), and
// the reports: the summary table a person reads and the JSON report that scripts read.
//
// Included by abft.cuh after the table of protected ops (AbftOp, abft_op_names,
// ABFT_NUM_OPS), which it counts and names; include abft.cuh, not this file.
//
// Fault injection writes into a protected GEMM's output right after the GEMM, before any
// check, exactly what a faulty unit would do; the same spec gives the same faulty elements
// and values on the CPU and on the GPU:
//     -fi op=qk,layer=3,step=5,type=inf,pattern=row,seed=1[,count=2]   one fault (count: that
//                                                                      many executions of the op)
//     -fi rate=1e-4[,type=nan][,op=..][,layer=..]                      random faults over a run
//                                                                      (in the ops -abft_scope takes in)
//     -fi ...,type=bitflip,bit=12                                      flip that bit of the value
//                                                                      as floatX (0-31; 0-15 in bf16)
//                                                                      instead of the paper's
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "llmc/abft_core.h"
#include "llmc/rand.h"
#include "llmc/utils.h"

// ----------------------------------------------------------------------------
// settings, fault spec, counters: the state of ATTNChecker in a model

struct AbftConfig {
    bool enabled = true;
    float extreme = 1e10f;   // |x| above this is a fault by itself (the paper's near-INF threshold)
    float tau = 2.0f;        // safety factor over the fp32 error bound of the mismatch tolerance
    float operand_u = 0.0f;  // the GEMMs' operand rounding: ABFT_TF32_UNIT_ROUNDOFF under TF32
    bool verbose = true;     // print every event
    int every[ABFT_NUM_OPS]; // check op only every N-th step (-abft_every); 1: every step
    int scope = 0;           // AbftScope (-abft_scope): which GEMMs are checked
    int tol = 0;             // AbftTol (-abft_tol): tau for every op, or each op's measured one
    AbftConfig() { for (int& n : every) { n = 1; } }
};

// -abft_scope: the attention's GEMMs (ATTNChecker's scope), or every GEMM of the step
enum AbftScope { ABFT_SCOPE_ATTN, ABFT_SCOPE_ALL, ABFT_NUM_SCOPES };
static const char* const abft_scope_names[ABFT_NUM_SCOPES] = {"attn", "all"};

// -abft_tol: the fp32 worst case times tau (-abft_tau) for every op, or each op's measured
// factor (abft_measured_tau) where the GEMMs are fp32 (with TF32 operands, the worst case)
enum AbftTol { ABFT_TOL_BOUND, ABFT_TOL_MEASURED, ABFT_NUM_TOLS };
static const char* const abft_tol_names[ABFT_NUM_TOLS] = {"bound", "measured"};

enum AbftFaultType { FAULT_INF, FAULT_NEG_INF, FAULT_NAN, FAULT_NEAR_INF, FAULT_BITFLIP, FAULT_NUM_TYPES };
static const char* const abft_fault_type_names[FAULT_NUM_TYPES] = {"inf", "-inf", "nan", "nearinf", "bitflip"};

enum AbftPattern { PATTERN_0D, PATTERN_ROW, PATTERN_COL, PATTERN_2D, PATTERN_NUM };
static const char* const abft_pattern_names[PATTERN_NUM] = {"0d", "row", "col", "2d"};

// One fault, or a rate of random faults (the -fi spec above).
struct AbftFaultSpec {
    bool active = false;
    int op = -1, layer = -1, step = -1; // -1: any (rate mode)
    int micro = -1;     // the micro-batch of the step (gradient accumulation); -1: any
    int rank = -1;      // the data-parallel rank whose op faults (llmc/ranks.h); -1: every rank
    int type = FAULT_BITFLIP, pattern = PATTERN_0D;
    int bit = -1;       // bitflip: the bit to flip, 0-31; -1: the paper's (abft_fault_value)
    uint64_t seed = 1;
    int count = 1;      // executions of the op to fault: 2 or more exercise the escalation ladder
    double rate = 0.0;  // > 0: every matching protected GEMM execution faults with this probability
};

struct AbftCounters {
    long checked[ABFT_NUM_OPS];            // protected GEMM executions verified
    long detected[ABFT_NUM_OPS];           // executions whose output was faulty
    long corrected[ABFT_NUM_OPS][FIX_NUM]; // batch entries rebuilt from checksums, by pattern
    long recomputed_op[ABFT_NUM_OPS];      // executions redone because checksums could not repair
    long recomputed_layer, redone_step;    // higher rungs of the ladder
    long replayed_pass;                    // GPU: passes redone with synchronous checks because a
                                           // deferred verdict showed a fault beyond the device's repair
    long injected;                         // faults injected (executions hit)
    long injected_op[ABFT_NUM_OPS];        // the same, by op
    long held;                             // parameters AdamW left unchanged: their update failed its
                                           // check twice (llmc/abft_invariants.h)
    // The fault-free residuals (the CPU path): the largest |column sum - checksum| / bound,
    // where bound is the fp32 worst case (abft_tolerance with tau = 1), over the columns of
    // the checks that found nothing, and how many checks that was.
    float residual[ABFT_NUM_OPS];
    long residual_checks[ABFT_NUM_OPS];
    double seconds[ABFT_NUM_OPS];          // time spent in checksums, verification and repair
    double recovery_seconds;               // of which repairs and recomputations (faults only)
};

// The single-element fault injected last into host memory, until the check after it has
// judged it (abft_verify): what goes to the fault log (Abft::events).
struct AbftProbe {
    bool armed = false;
    int op = -1, layer = -1, b = 0, j = 0, bit = -1; // where: batch entry b, column j
    float before = 0.0f, after = 0.0f;
};

struct Abft {
    AbftConfig cfg;
    AbftFaultSpec fault;
    AbftCounters n;
    int step = 0;             // the training step now running, for fault specs and logs
    int micro = 0;            // its micro-batch now running (gradient accumulation), for fault specs
    int fault_fired = 0;      // executions hit so far by a single-fault spec
    uint64_t fault_rng = 1;   // picks the faulty elements (and, in rate mode, when)
    // Deferred verdicts (the GPU path): checks and repairs run in stream order and the host
    // learns their outcome once per pass (llmc/abft_gpu.cuh); injection messages wait in
    // `pending` until then. False: every check is read as soon as it ran (the CPU path, and
    // a pass redone after a fault the device could not repair).
    bool deferred = false;
    std::string pending;
    bool fixes_in_place[ABFT_NUM_OPS] = {}; // the deferred checks whose kernel fixes a faulty line
                                            // itself, without the checksums' repair (set as they run)
    float* work = nullptr;    // the CPU checks' scratch, grown on demand
    size_t work_floats = 0;
    FILE* events = nullptr;   // the fault log, LOGDIR/faults.jsonl (-fi with -o, where the checks
                              // run on the host): one line per single-element fault, with its verdict
    AbftProbe probe;
};

// What a pass changes in the state: saved before a deferred pass, so that a pass redone after
// it sees the same faults and counts as if the first had not happened.
struct AbftSnapshot {
    AbftCounters n;
    int fault_fired;
    uint64_t fault_rng;
};

// Writes the fault (type, and for a bit flip its bit) into element (i, j) of C[b] and returns
// the value it replaced: abft_corrupt on the host; the GPU path has its own (C in GPU memory).
typedef float (*AbftCorruptFn)(const AbftGemm& g, int b, int i, int j, int type, int bit);

// the helpers, defined below the entry points
inline bool abft_fault_fires(Abft* abft, int op, int layer);
inline int abft_pick(Abft* abft, int n);
inline float abft_corrupt(const AbftGemm& g, int b, int i, int j, int type, int bit);
ABFT_HD inline float abft_fault_value(int type, int bit, float x);
ABFT_HD inline int abft_flip_bit(int bit, float x);
inline int abft_lookup(const char* value, const char* const* names, int count, const char* key, const char* flag = "-fi");
inline long abft_parse_int(const char* key, const char* value, long lo, long hi, const char* flag = "-fi");

// The safety factor of op's tolerance (abft_tolerance's tau). The measured ones were fit on
// fp32 GEMMs: with TF32 operands or bf16 outputs the checks keep the bound's.
inline float abft_op_tau(const AbftConfig& cfg, int op) {
    const bool fp32 = cfg.operand_u == 0.0f && ABFT_FLOATX_OUTPUT_U == 0.0f;
    return cfg.tol == ABFT_TOL_MEASURED && fp32 ? abft_measured_tau[op] : cfg.tau;
}

// The settings op's check runs with: its tau in place of -abft_tau's.
inline AbftConfig abft_op_config(const AbftConfig& cfg, int op) {
    AbftConfig c = cfg;
    c.tau = abft_op_tau(cfg, op);
    return c;
}

// Whether -abft_scope takes op in (whether ATTNChecker is on or not).
inline bool abft_in_scope(const AbftConfig& cfg, int op) {
    return op < ABFT_NUM_ATTN_OPS || op == OP_ALLREDUCE || cfg.scope == ABFT_SCOPE_ALL;
}

// ----------------------------------------------------------------------------
// the state's life cycle

inline void abft_init(Abft* abft) {
    memset(&abft->n, 0, sizeof(abft->n));
    abft->fault_fired = 0;
    abft->fault_rng = abft->fault.seed * 0x9E3779B97F4A7C15ull + 1;
}

inline void abft_free(Abft* abft) { free(abft->work); abft->work = nullptr; abft->work_floats = 0; }

inline AbftSnapshot abft_snapshot(const Abft* abft) { return AbftSnapshot{abft->n, abft->fault_fired, abft->fault_rng}; }

inline void abft_restore(Abft* abft, const AbftSnapshot& s) {
    abft->n = s.n;
    abft->fault_fired = s.fault_fired;
    abft->fault_rng = s.fault_rng;
    abft->pending.clear();
}

// Whether op is checked in the step now running: inside the scope (-abft_scope), and at this
// step (adaptive detection frequency, -abft_every).
inline bool abft_due(const Abft* abft, int op) {
    return abft->cfg.enabled && abft_in_scope(abft->cfg, op) && abft->step % abft->cfg.every[op] == 0;
}

// ----------------------------------------------------------------------------
// fault injection: writes into C right after the GEMM, before any check

// Picks where the fault lands: a live element (j <= i where only the causal part is read; i <
// read_rows and j < read_cols where only those are: not the vocabulary's padding; so that the
// fault matters), a whole row, a whole column, or a 2x2 block (2-D).
inline void abft_inject(Abft* abft, const AbftGemm& g, int op, int layer, AbftCorruptFn corrupt = abft_corrupt) {
    if (!abft_fault_fires(abft, op, layer)) { return; }
    const int type = abft->fault.type, bit = abft->fault.bit;
    int b = abft_pick(abft, g.batch);
    const int M = g.read_rows > 0 ? g.read_rows : g.M, N = g.read_cols > 0 ? g.read_cols : g.N;
    int i = abft_pick(abft, M);
    int j = g.causal ? abft_pick(abft, (i < N ? i : N - 1) + 1) : abft_pick(abft, N);
    float before = 0.0f;
    switch (abft->fault.pattern) {
        case PATTERN_0D: before = corrupt(g, b, i, j, type, bit); break;
        case PATTERN_ROW: for (int jj = 0; jj < N; jj++) { corrupt(g, b, i, jj, type, bit); } break;
        case PATTERN_COL: for (int ii = 0; ii < M; ii++) { corrupt(g, b, ii, j, type, bit); } break;
        default: {
            int i0 = M < 3 ? 0 : 1 + abft_pick(abft, M - 2);                   // rows i0, i0+1
            int j0 = g.causal ? abft_pick(abft, i0) : abft_pick(abft, N - 1); // cols j0, j0+1 <= i0
            for (int ii = i0; ii < i0 + 2 && ii < M; ii++) {
                for (int jj = j0; jj < j0 + 2 && jj < N; jj++) { corrupt(g, b, ii, jj, type, bit); }
            }
        }
    }
    abft->n.injected++;
    abft->n.injected_op[op]++;
    const bool single = abft->fault.pattern == PATTERN_0D;
    const float after = abft_fault_value(type, bit, before);
    if (single && abft->events != nullptr && abft_due(abft, op)) { // abft_verify judges it
        abft->probe = AbftProbe{true, op, layer, b, j, abft_flip_bit(bit, before), before, after};
    }
    if (abft->cfg.verbose) {
        char line[320], value[96] = "";
        if (single) { snprintf(value, sizeof(value), " (%.9g -> %.9g)", before, after); }
        snprintf(line, sizeof(line), "fault: step %d layer %d %s: %s %s at batch %d row %d col %d%s\n", abft->step, layer,
                 abft_op_names[op], abft_fault_type_names[type], abft_pattern_names[abft->fault.pattern], b, i, j, value);
        if (abft->deferred) { abft->pending += line; } else { fputs(line, stdout); }
    }
}

// Writes the armed probe's line to the fault log: where the fault went, what it changed, the
// tolerance of the check of its column and whether the check of its GEMM found it.
inline void abft_log_probe(Abft* abft, bool detected, float tolerance) {
    const AbftProbe& p = abft->probe;
    const float error = fabsf(p.after - p.before);
    fprintf(abft->events, "{\"step\": %d, \"layer\": %d, \"op\": \"%s\", \"type\": \"%s\", \"bit\": %d, "
                          "\"before\": %.9g, \"after\": %.9g, \"error\": %.9g, \"tolerance\": %.9g, \"detected\": %s}\n",
            abft->step, p.layer, abft_op_names[p.op], abft_fault_type_names[abft->fault.type], p.bit, p.before, p.after, error,
            tolerance, detected ? "true" : "false");
    abft->probe.armed = false;
}

inline bool abft_fault_fires(Abft* abft, int op, int layer) {
    const AbftFaultSpec& f = abft->fault;
    if (!f.active) { return false; }
    if (f.op >= 0 && f.op != op) { return false; }
    if (f.layer >= 0 && f.layer != layer) { return false; }
    if (f.step >= 0 && f.step != abft->step) { return false; }
    if (f.micro >= 0 && f.micro != abft->micro) { return false; }
    if (f.rate > 0.0) { // random faults hit the ops in the scope, unless the spec names one
        return (f.op >= 0 || abft_in_scope(abft->cfg, op)) && random_f32(&abft->fault_rng) < f.rate;
    }
    if (abft->fault_fired >= f.count) { return false; }
    abft->fault_fired++;
    return true;
}

inline int abft_pick(Abft* abft, int n) { return n <= 1 ? 0 : (int)(random_u32(&abft->fault_rng) % (uint32_t)n); }

inline float abft_corrupt(const AbftGemm& g, int b, int i, int j, int type, int bit) {
    floatX* x = g.C + b * g.strideC + (long)i * g.ldc + j;
    const float before = (float)*x;
    *x = (floatX)abft_fault_value(type, bit, before);
    return before;
}

constexpr float ABFT_NEAR_INF = 1e20f; // finite, far above the 1e10 extreme threshold

// A floatX value's bits within the float it widens to: bf16 is a float's top 16 bits.
constexpr int ABFT_FLOATX_BITS = 8 * (int)sizeof(floatX);
constexpr int ABFT_FLOATX_SHIFT = 32 - ABFT_FLOATX_BITS;

// What a faulty unit writes instead of x. A bit flip flips `bit` of x as floatX (0-31 in fp32,
// 0-15 in bf16; -1: the paper's choice, abft_flip_bit).
ABFT_HD inline float abft_fault_value(int type, int bit, float x) {
    switch (type) {
        case FAULT_INF: return INFINITY;
        case FAULT_NEG_INF: return -INFINITY;
        case FAULT_NAN: return NAN;
        case FAULT_NEAR_INF: return x < 0.0f ? -ABFT_NEAR_INF : ABFT_NEAR_INF;
        default: {
            uint32_t bits;
            memcpy(&bits, &x, sizeof(bits));
            bits ^= 1u << (abft_flip_bit(bit, x) + ABFT_FLOATX_SHIFT);
            memcpy(&x, &bits, sizeof(bits));
            return x;
        }
    }
}

// The bit of floatX a flip of x hits: `bit`, or when it is -1 the paper's injector, the top
// exponent bit (30 in fp32, 14 in bf16) when |x| < 2, else the next one, which makes x huge
// (or INF/NaN).
ABFT_HD inline int abft_flip_bit(int bit, float x) {
    return bit >= 0 ? bit : (fabsf(x) < 2.0f) ? ABFT_FLOATX_BITS - 2 : ABFT_FLOATX_BITS - 3;
}

// ----------------------------------------------------------------------------
// counting, and the reports

// Counts (and prints) the outcome of one faulty batch entry: rebuilt, or beyond the checksums.
inline void abft_count_repair(Abft* abft, int op, int layer, int b, bool ok, long fixed, int pattern) {
    if (ok) { abft->n.corrected[op][pattern]++; }
    if (!abft->cfg.verbose) { return; }
    if (ok) {
        printf("abft: step %d layer %d %s: fault detected in batch entry %d, corrected %ld element%s (%s pattern)\n",
               abft->step, layer, abft_op_names[op], b, fixed, fixed == 1 ? "" : "s", abft_fix_names[pattern]);
    } else {
        printf("abft: step %d layer %d %s: fault detected in batch entry %d, beyond the checksums (2-D or bad operands)\n",
               abft->step, layer, abft_op_names[op], b);
    }
}

inline long abft_total_detected(const AbftCounters& n) {
    long total = 0;
    for (int op = 0; op < ABFT_NUM_OPS; op++) { total += n.detected[op]; }
    return total;
}

inline long abft_total_corrected(const AbftCounters& n) {
    long total = 0;
    for (int op = 0; op < ABFT_NUM_OPS; op++) {
        for (int p = 0; p < FIX_NUM; p++) { total += n.corrected[op][p]; }
    }
    return total;
}

inline long abft_total_recomputed(const AbftCounters& n) {
    long total = 0;
    for (int op = 0; op < ABFT_NUM_OPS; op++) { total += n.recomputed_op[op]; }
    return total;
}

// The table at the end of a run, for a person.
inline void abft_print_summary(const Abft& abft, int steps) {
    const AbftCounters& n = abft.n;
    printf("abft summary over %d step%s (%s, scope %s):\n", steps, steps == 1 ? "" : "s", abft.cfg.enabled ? "on" : "off",
           abft_scope_names[abft.cfg.scope]);
    printf("  %-9s %8s %8s %6s %6s %6s %6s %8s %10s\n", "op", "checked", "detected", "0d", "row", "col", "scat", "recomp", "ms");
    for (int op = 0; op < ABFT_NUM_OPS; op++) {
        if (!abft_in_scope(abft.cfg, op) || (op == OP_ALLREDUCE && n.checked[op] + n.injected_op[op] == 0)) { continue; }
        printf("  %-9s %8ld %8ld %6ld %6ld %6ld %6ld %8ld %10.3f\n", abft_op_names[op], n.checked[op], n.detected[op],
               n.corrected[op][FIX_0D], n.corrected[op][FIX_ROW], n.corrected[op][FIX_COL], n.corrected[op][FIX_SCATTERED],
               n.recomputed_op[op], 1e3 * n.seconds[op]);
    }
    printf("  injected %ld, layers recomputed %ld, steps redone %ld, passes replayed %ld, time in repairs and\n"
           "  recomputed GEMMs %.3f ms\n", n.injected, n.recomputed_layer, n.redone_step, n.replayed_pass,
           1e3 * n.recovery_seconds);
    if (n.held > 0) { printf("  parameters left unchanged by AdamW (bad gradients or moments): %ld\n", n.held); }
    printf("  (0d/row/col/scat: outputs rebuilt from checksums, by fault pattern; recomp: GEMMs recomputed,\n"
           "   and kernels (from ln1 on) whose invariant failed, recomputed in place; ms: total time in\n"
           "   checksums and checks, including validation and sampling passes; the kernels' checks are\n"
           "   fused into them and not timed)\n");
}

// The same counters as one JSON object, for scripts and tests (the trainer writes it to
// LOGDIR/abft.json): {"steps": S, "enabled": true, "ops": {"qkv": {"checked": .., "detected": ..,
// "repaired": {"0d": .., "row": .., "col": .., "scattered": ..}, "recomputed": .., "injected": ..,
// "tau": .., "residual": .., "residual_checks": .., "ms": ..}, ..},
// "injected": .., "layers_recomputed": .., "steps_redone": .., "passes_replayed": .., "params_held": ..,
// "recovery_ms": ..}
inline void abft_write_report(FILE* f, const Abft& abft, int steps) {
    const AbftCounters& n = abft.n;
    fprintf(f, "{\"steps\": %d, \"enabled\": %s, \"ops\": {", steps, abft.cfg.enabled ? "true" : "false");
    for (int op = 0; op < ABFT_NUM_OPS; op++) {
        fprintf(f, "%s\n  \"%s\": {\"checked\": %ld, \"detected\": %ld, \"repaired\": {", op ? "," : "", abft_op_names[op],
                n.checked[op], n.detected[op]);
        for (int p = 0; p < FIX_NUM; p++) { fprintf(f, "%s\"%s\": %ld", p ? ", " : "", abft_fix_names[p], n.corrected[op][p]); }
        fprintf(f, "}, \"recomputed\": %ld, \"injected\": %ld, \"tau\": %g, \"residual\": %.6g, \"residual_checks\": %ld, "
                   "\"ms\": %.3f}",
                n.recomputed_op[op], n.injected_op[op], abft_op_tau(abft.cfg, op), n.residual[op], n.residual_checks[op],
                1e3 * n.seconds[op]);
    }
    fprintf(f, "},\n \"injected\": %ld, \"layers_recomputed\": %ld, \"steps_redone\": %ld, \"passes_replayed\": %ld, "
               "\"params_held\": %ld, \"recovery_ms\": %.3f}\n",
            n.injected, n.recomputed_layer, n.redone_step, n.replayed_pass, n.held, 1e3 * n.recovery_seconds);
}

// ----------------------------------------------------------------------------
// the flags: -fi and -abft_every

// "op=qk,layer=3,step=5,type=inf,pattern=row,seed=1[,count=2][,rate=1e-4][,rank=1]"
inline AbftFaultSpec abft_parse_fault(const char* text) {
    AbftFaultSpec f;
    f.active = true;
    char buf[512];
    if (strlen(text) >= sizeof(buf)) { die("-fi", "", "spec too long"); }
    strcpy(buf, text);
    for (char* item = strtok(buf, ","); item != nullptr; item = strtok(nullptr, ",")) {
        char* eq = strchr(item, '=');
        if (eq == nullptr) { die("-fi", "write key=value pairs separated by commas", "'%s' has no '='", item); }
        *eq = '\0';
        const char* key = item;
        const char* value = eq + 1;
        if (strcmp(key, "op") == 0) { f.op = abft_lookup(value, abft_op_names, ABFT_NUM_OPS, "op"); }
        else if (strcmp(key, "layer") == 0) { f.layer = (int)abft_parse_int(key, value, 0, 1 << 20); }
        else if (strcmp(key, "step") == 0) { f.step = (int)abft_parse_int(key, value, 0, 1L << 30); }
        else if (strcmp(key, "micro") == 0) { f.micro = (int)abft_parse_int(key, value, 0, 1 << 20); }
        else if (strcmp(key, "rank") == 0) { f.rank = (int)abft_parse_int(key, value, 0, 1 << 20); }
        else if (strcmp(key, "type") == 0) { f.type = abft_lookup(value, abft_fault_type_names, FAULT_NUM_TYPES, "type"); }
        else if (strcmp(key, "pattern") == 0) { f.pattern = abft_lookup(value, abft_pattern_names, PATTERN_NUM, "pattern"); }
        else if (strcmp(key, "seed") == 0) { f.seed = (uint64_t)abft_parse_int(key, value, 0, 1L << 62); }
        else if (strcmp(key, "count") == 0) { f.count = (int)abft_parse_int(key, value, 1, 1 << 20); }
        else if (strcmp(key, "bit") == 0) { f.bit = (int)abft_parse_int(key, value, 0, ABFT_FLOATX_BITS - 1); }
        else if (strcmp(key, "rate") == 0) {
            char* end = nullptr;
            f.rate = strtod(value, &end);
            if (end == value || *end != '\0' || !(f.rate > 0.0 && f.rate <= 1.0)) {
                die("-fi", "a probability per protected GEMM execution, e.g. rate=1e-4", "rate must be in (0, 1], got '%s'", value);
            }
        } else {
            die("-fi", "keys: op, layer, step, micro, rank, type, pattern, seed, count, rate, bit", "unknown key '%s'", key);
        }
    }
    if (f.bit >= 0 && f.type != FAULT_BITFLIP) {
        die("-fi", "bit=N goes with type=bitflip", "bit=%d with type=%s", f.bit, abft_fault_type_names[f.type]);
    }
    if (f.rate == 0.0 && (f.op < 0 || f.layer < 0 || f.step < 0)) {
        die("-fi", "e.g. -fi op=qk,layer=0,step=5,type=inf,pattern=row (or give rate=R for random faults)",
            "a single fault needs op, layer and step");
    }
    return f;
}

// "qk=4,pv_dv=8": check those ops every 4th and every 8th step; the others every step.
inline void abft_parse_every(const char* text, AbftConfig* cfg) {
    char buf[512];
    if (strlen(text) >= sizeof(buf)) { die("-abft_every", "", "spec too long"); }
    strcpy(buf, text);
    for (char* item = strtok(buf, ","); item != nullptr; item = strtok(nullptr, ",")) {
        char* eq = strchr(item, '=');
        if (eq == nullptr) { die("-abft_every", "write op=N pairs separated by commas, e.g. qk=4,pv_dv=8", "'%s' has no '='", item); }
        *eq = '\0';
        int op = abft_lookup(item, abft_op_names, ABFT_NUM_OPS, "op", "-abft_every");
        cfg->every[op] = (int)abft_parse_int("interval", eq + 1, 1, 1 << 20, "-abft_every");
    }
}

inline int abft_lookup(const char* value, const char* const* names, int count, const char* key, const char* flag) {
    for (int i = 0; i < count; i++) {
        if (strcmp(value, names[i]) == 0) { return i; }
    }
    char hint[256];
    int len = snprintf(hint, sizeof(hint), "%s is one of:", key);
    for (int i = 0; i < count && len < (int)sizeof(hint); i++) {
        len += snprintf(hint + len, sizeof(hint) - len, " %s", names[i]);
    }
    die(flag, hint, "unknown %s '%s'", key, value);
}

inline long abft_parse_int(const char* key, const char* value, long lo, long hi, const char* flag) {
    char* end = nullptr;
    errno = 0;
    long x = strtol(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || x < lo || x > hi) {
        die(flag, "see ./train_gpt2 -h", "%s must be an integer in [%ld, %ld], got '%s'", key, lo, hi, value);
    }
    return x;
}
