// abft_invariants.h: the checks of the kernels that are not GEMMs (-abft_scope all). A GEMM's
// output can be checked against checksums of its operands; a softmax, a layernorm, GELU, a
// residual add, the loss and the AdamW update have no checksums, but their outputs obey
// invariants that cost almost nothing to test while the values are in registers (the "value
// restriction" of fused fault-tolerant attention):
//
//   softmax    each row of P sums to 1, every entry in [0, 1]              (OP_SOFTMAX)
//   layernorm  each normalized row (x − mean)·rstd, before the affine, has mean 0 and
//              variance 1 − eps·rstd²                                      (OP_LN1, OP_LN2, OP_LNF)
//   GELU       gelu(x) lies between x/2 and x for x >= 0, and between max(x/2, -0.1701)
//              and 0 for x < 0                                             (OP_GELU)
//   residual   y = a + b to within the rounding of the add: |(y − a) − b| <= 2u·(|a| + |b|)
//                                                                          (OP_RES2, OP_RES3)
//   loss       each position's loss lies in [0, (max logit − target logit) + ln V], and
//              exp(−loss) is the target's probability                     (OP_LOSS)
//   dlogits    each row sums to 0, every entry in [−1/(B·T), 1/(B·T)]      (OP_DLOGITS)
//   AdamW      each parameter moves by at most lr times the bound on |m̂|/√v̂ (besides
//              its weight decay), and |m| <= that bound's share of √v      (OP_ADAMW)
//
// Each tolerance is the fp32 rounding error of the kernel's arithmetic, derived in
// docs/ABFT.md ("Invariants of the other kernels"), times the safety factor tau. On a
// violation the kernel recomputes the row (or element) at once, from inputs it still holds:
// a transient fault does not come back. A row that fails again means bad inputs: the
// kernel's verdict then makes the caller climb the ladder (recompute the layer, redo the
// step); AdamW, the last kernel of the step, leaves such a parameter as it was.
//
// Fault injection (-fi op=softmax,...) goes into the kernel's output as it is computed,
// before the check: an AbftKernelFault names the elements of the output, seen as (rows,
// columns), that it hits. Both trainers' kernels take an AbftKernelCheck and use the
// residual functions below (host + device), so the CPU and the GPU judge alike.
//
// Included by abft.cuh after llmc/abft_faults.h.
#pragma once

#include <cfloat>
#include <cmath>

#include "llmc/abft_faults.h"

// ----------------------------------------------------------------------------
// one execution of a checked kernel: its check, its fault, where its verdict goes

// The elements of the output that a fault hits: one, a row, a column or a 2x2 block.
struct AbftKernelFault {
    int type = -1;   // AbftFaultType; -1: no fault in this execution
    int bit = -1;    // bit flips: the bit, -1 the paper's (abft_flip_bit)
    int pattern = PATTERN_0D;
    long i = 0;      // the element's row (0d, row), the block's first row (2d)
    int j = 0;       // its column (0d, col), the block's first column (2d)
    int cols = 1;    // the output's columns: element idx of a flat output is (idx / cols, idx % cols)
    float* probe = nullptr; // host, or null: gets the value before and after (a one-element fault
                            // the CPU trainer logs to LOGDIR/faults.jsonl)
};

struct AbftKernelCheck {
    bool on = false;        // check this execution (abft_due)
    float tau = 2.0f;       // the safety factor of the tolerances
    AbftKernelFault fault;
    AbftKernelFault refault; // what the recompute of a failed row computes with: none, unless a
                             // single fault hits that execution too (-fi count=2 or more: a fault
                             // that stays; rate mode's random faults hit an execution once)
    int* verdict = nullptr; // (2): rows (elements, for the elementwise kernels) that failed the check;
                            // of them, those that failed again after their recompute
    float* residual = nullptr; // (1) the CPU kernels': the largest residual of the rows that passed
    int* gate = nullptr;    // the GPU's deferred pass: a row that fails again writes gate_pass here
    int gate_pass = 0;      // (AbftPassGate), so that the update queued after the pass skips itself
    int op = 0, layer = 0;
};

// The output of a kernel, for placing a fault: (rows, cols); causal_T > 0: row i holds
// positions j <= i % causal_T and zeros beyond (the softmax); read_cols > 0: only columns
// below it are live (the vocabulary, not its padding).
struct AbftKernelShape {
    long rows = 0;
    int cols = 0;
    int causal_T = 0;
    int read_cols = 0;
};

ABFT_HD inline bool abft_kernel_fault_hits(const AbftKernelFault& f, long i, int j) {
    if (f.type < 0) { return false; }
    switch (f.pattern) {
        case PATTERN_0D: return i == f.i && j == f.j;
        case PATTERN_ROW: return i == f.i;
        case PATTERN_COL: return j == f.j;
        default: return i >= f.i && i <= f.i + 1 && j >= f.j && j <= f.j + 1;
    }
}

// x as the kernel writes it: faulty where the fault hits (the first computation passes
// AbftKernelCheck::fault, the recompute after a violation its refault: usually none)
ABFT_HD inline float abft_kernel_fault_apply(const AbftKernelFault& f, long i, int j, float x) {
    if (!abft_kernel_fault_hits(f, i, j)) { return x; }
    const float y = abft_fault_value(f.type, f.bit, x);
    if (f.probe != nullptr) { f.probe[0] = x; f.probe[1] = y; }
    return y;
}

// The same for element idx of the output as one flat array.
ABFT_HD inline float abft_kernel_fault_apply_at(const AbftKernelFault& f, long idx, float x) {
    return f.type < 0 ? x : abft_kernel_fault_apply(f, idx / f.cols, (int)(idx % f.cols), x);
}

// Whether op's kernel recomputes (and counts) single elements rather than rows.
inline bool abft_kernel_elementwise(int op) { return op == OP_GELU || op == OP_ADAMW; }

// ----------------------------------------------------------------------------
// the invariants (host + device)
//
// Each returns the residual of its invariant: how far the output is from it, in units of the
// fp32 rounding error the kernel's arithmetic can explain (its worst case), as abft_core.h
// measures a GEMM's checksums. A check passes when the residual is at most tau. INFINITY: a
// value is not finite, or crosses a bound that rounding cannot cross.

constexpr float ABFT_U = FLT_EPSILON * 0.5f; // fp32's unit roundoff

ABFT_HD inline float abft_residual_of(float deviation, float worst) {
    const float r = fabsf(deviation) / worst;
    return r <= FLT_MAX ? r : INFINITY; // NaN too
}

// softmax: a row's n live entries sum to `sum` (to 1, up to the rounding of the exponentials'
// sum, of the products by its inverse and of this sum: (2n + 4)·u); `outside` entries of the
// whole row, the zeros above the diagonal included, are not in [0, 1] (NaN counts)
ABFT_HD inline bool abft_unit_interval(float p) { return p >= 0.0f && p <= 1.0f; }
ABFT_HD inline float abft_softmax_residual(float sum, int outside, int n) {
    return outside > 0 ? INFINITY : abft_residual_of(sum - 1.0f, (2.0f * n + 4.0f) * ABFT_U);
}

// layernorm: over a row of C, sum_n = Σ n_i and sum_n2 = Σ n_i² of the normalized values
// n_i = (x_i − mean)·rstd. The mean's rounding leaves Σ n_i up to (C + 1)·u·rstd·Σ|x| from 0, the
// products' and the sum's another (C + 2)·u·Σ|n|, where Σ|x|·rstd <= C·(|mean|·rstd + 1) and
// Σ|n| <= C (Cauchy–Schwarz: Σ n_i² <= C); Σ n_i² is C·var·rstd² = C·(1 − eps·rstd²) up to the
// rounding of the variance, rstd and the squares' sum.
ABFT_HD inline float abft_layernorm_residual(float sum_n, float sum_n2, float mean, float rstd, float eps, int C) {
    const float worst_mean = ABFT_U * C * ((C + 1.0f) * (fabsf(mean) * rstd + 1.0f) + (C + 2.0f));
    const float mean_r = abft_residual_of(sum_n, worst_mean);
    const float var_r = abft_residual_of(sum_n2 - C * (1.0f - eps * rstd * rstd), ABFT_U * (2.0f * C + 16.0f) * C);
    return fmaxf(mean_r, var_r);
}

// GELU (the tanh approximation): y = x·(1 + tanh(..))/2 with 1 + tanh in [1, 2] for x >= 0 and
// in [0, 1] for x < 0, so y lies between x/2 and x, or between max(x/2, the least value
// -0.170041 at x = -0.7526) and 0; rounding keeps to these bounds (the slack covers a GPU
// tanhf's error). Bounds only: 0 inside, INFINITY outside.
constexpr float ABFT_GELU_MIN = -0.1701f;
ABFT_HD inline float abft_gelu_residual(float x, float y) {
    const float slack = 4.0f * ABFT_U * fabsf(x) + FLT_MIN;
    const float lo = x >= 0.0f ? 0.5f * x : fmaxf(0.5f * x, ABFT_GELU_MIN);
    const float hi = x >= 0.0f ? x : 0.0f;
    return y >= lo - slack && y <= hi + slack ? 0.0f : INFINITY; // NaN: outside
}

// residual add: y = fl(a + b), so (y − a) − b in fp32 is within 2u·(|a| + |b|) of 0
ABFT_HD inline float abft_add_residual(float a, float b, float y) {
    return abft_residual_of((y - a) - b, 2.0f * ABFT_U * (fabsf(a) + fabsf(b)) + FLT_MIN);
}

// loss = ln s − (l_target − max) with s = Σ_v exp(l_v − max) in [1, V], so the loss lies in
// [0, gap + ln V], gap = max − l_target (s's rounding moves ln s by (V + 4)·u, the rest by
// 4u·(gap + ln V)); and exp(−loss) is the target's probability p_target = exp(−gap)/s, from the
// same s, so the two agree up to the roundings of ln, exp, the division and the loss's own:
// (12 + 4·(gap + ln V))·u of p_target.
ABFT_HD inline float abft_loss_residual(float loss, float gap, float p_target, int V) {
    const float hi = gap + logf((float)V);
    const float beyond = loss >= 0.0f ? (loss <= hi ? 0.0f : loss - hi) : -loss; // NaN: -loss
    const float bounds = abft_residual_of(beyond, ABFT_U * ((V + 4.0f) + 4.0f * hi));
    const float agree = abft_residual_of(expf(-loss) - p_target, ABFT_U * (12.0f + 4.0f * hi) * p_target + FLT_MIN);
    return fmaxf(bounds, agree);
}

// dlogits = (p − onehot)·dloss: every entry in [−dloss, dloss] (`outside` of them are not), and
// the row sums to dloss·(Σp − 1) ≈ 0, up to the softmax's (2V + 2)·u, each entry's rounding
// and the sum's over |entries| <= 2·dloss: (5V + 8)·u·dloss
ABFT_HD inline bool abft_dlogit_in_range(float d, float dloss) { return d >= -dloss && d <= dloss; }
ABFT_HD inline float abft_dlogits_residual(float sum, int outside, float dloss, int V) {
    return outside > 0 ? INFINITY : abft_residual_of(sum, (5.0f * V + 8.0f) * ABFT_U * dloss);
}

// AdamW from zero moments: m_t = (1−β1) Σ_k β1^k g_{t−k} and v_t = (1−β2) Σ_k β2^k g²_{t−k}, so by
// Cauchy–Schwarz |m_t| <= R_t·√v_t with R_t = (1−β1)·sqrt(Σ_{k<t} (β1²/β2)^k / (1−β2)), and the
// bias-corrected |m̂|/√v̂ <= R_t·√(1−β2^t)/(1−β1^t), which is 1 at t = 1 (the update is ±lr).
// Both grow with t, so they also hold for moments with fewer steps behind them (a resumed run,
// a skipped update).
struct AbftAdamBound {
    float moment = 0.0f; // R_t: |m| <= R_t·√v
    float step = 0.0f;   // |m̂|/(√v̂ + eps) <= this
};

// One parameter's AdamW step from (p, g, m, v), as both trainers compute it (and recompute it
// after a failed check); bc1, bc2 are the bias corrections 1 − beta^t.
struct AdamWValue {
    float p, m, v;
};

ABFT_HD inline AdamWValue adamw_of(float p, float g, float m, float v, float lr, float beta1, float beta2, float bc1,
                                   float bc2, float eps, float weight_decay) {
    AdamWValue u;
    u.m = beta1 * m + (1.0f - beta1) * g;
    u.v = beta2 * v + (1.0f - beta2) * g * g;
    float mhat = u.m / bc1, vhat = u.v / bc2;
    u.p = p - lr * (mhat / (sqrtf(vhat) + eps) + weight_decay * p);
    return u;
}

inline AbftAdamBound abft_adam_bound(float beta1, float beta2, int t) {
    const double r = (double)beta1 * beta1 / beta2;
    const double series = r == 1.0 ? (double)t : (1.0 - pow(r, t)) / (1.0 - r);
    const double R = (1.0 - beta1) * sqrt(series / (1.0 - beta2));
    return AbftAdamBound{(float)R, (float)(R * sqrt(1.0 - pow((double)beta2, t)) / (1.0 - pow((double)beta1, t)))};
}

// The bounds hold in exact arithmetic; the moments' fp32 rounding over the steps stays far
// below ABFT_ADAM_SLACK of them (a few u per step, forgotten at the rate 1 − β), and gradients
// below 1e-19 have squares that underflow in v, hence the absolute term. Moments beyond: INFINITY.
// The step: its excess over lr·bound, in units of the update's and this check's rounding,
// 4u·|p| (|p|, not |p_new|: a faulty p_new must not widen it).
constexpr float ABFT_ADAM_SLACK = 1e-3f;
ABFT_HD inline float abft_adamw_residual(float p, float p_new, float m, float v, float lr, float weight_decay,
                                         AbftAdamBound bound) {
    if (!(v >= 0.0f && fabsf(m) <= bound.moment * ((1.0f + ABFT_ADAM_SLACK) * sqrtf(v) + 1e-19f))) { return INFINITY; }
    const float step = (p_new - p) + lr * weight_decay * p; // −lr·m̂/(√v̂ + eps)
    const float excess = fabsf(step) - lr * bound.step * (1.0f + ABFT_ADAM_SLACK);
    return abft_residual_of(excess <= 0.0f ? 0.0f : excess, 4.0f * ABFT_U * fabsf(p) + FLT_MIN); // NaN: excess
}

// ----------------------------------------------------------------------------
// the host's side: begin an execution (its check and fault), count its verdict

// The check of one execution of op's kernel: on when op is due (abft_due); carries the fault
// when a -fi spec fires (placed in `shape` as abft_inject places a GEMM's). The caller sets
// verdict (zeroed) when on.
inline AbftKernelCheck abft_kernel_check(Abft* abft, int op, int layer, const AbftKernelShape& shape) {
    AbftKernelCheck k;
    k.on = abft_due(abft, op);
    k.tau = abft_op_tau(abft->cfg, op);
    k.op = op;
    k.layer = layer;
    if (!abft_fault_fires(abft, op, layer)) { return k; }
    AbftKernelFault& f = k.fault;
    f.type = abft->fault.type;
    f.bit = abft->fault.bit;
    f.pattern = abft->fault.pattern;
    f.cols = shape.cols;
    const int rows = (int)shape.rows, N = shape.read_cols > 0 ? shape.read_cols : shape.cols;
    if (f.pattern == PATTERN_2D) {
        f.i = rows < 3 ? 0 : 1 + abft_pick(abft, rows - 2);
        f.j = shape.causal_T > 0 ? abft_pick(abft, (int)(f.i % shape.causal_T)) : abft_pick(abft, N - 1);
    } else {
        f.i = abft_pick(abft, rows);
        const int live = shape.causal_T > 0 ? (int)(f.i % shape.causal_T) + 1 : N;
        f.j = abft_pick(abft, live < N ? live : N);
    }
    abft->n.injected++;
    abft->n.injected_op[op]++;
    const bool stays = abft->fault.rate == 0.0 && abft_fault_fires(abft, op, layer); // the recompute is an execution too
    if (stays) {
        k.refault = f;
        abft->n.injected++;
        abft->n.injected_op[op]++;
    }
    if (abft->cfg.verbose) {
        char line[256];
        snprintf(line, sizeof(line), "fault: step %d layer %d %s: %s %s at row %ld col %d%s\n", abft->step, layer,
                 abft_op_names[op], abft_fault_type_names[f.type], abft_pattern_names[f.pattern], f.i, f.j,
                 stays ? ", and in its recompute" : "");
        if (abft->deferred) { abft->pending += line; } else { fputs(line, stdout); }
    }
    return k;
}

// A CPU kernel's counts into its verdict, and the largest residual of its rows that passed.
inline void abft_kernel_report(const AbftKernelCheck& k, int failed, int still, float residual) {
    if (k.verdict == nullptr) { return; }
    k.verdict[0] += failed;
    k.verdict[1] += still;
    if (k.residual != nullptr) { *k.residual = fmaxf(*k.residual, residual); }
}

// The fault log's line for a one-element fault in a kernel (AbftKernelFault::probe): as a
// GEMM's (abft_log_probe), without a tolerance of its own (the row's invariant has it).
inline void abft_log_kernel_fault(Abft* abft, const AbftKernelCheck& k, bool detected) {
    const float before = k.fault.probe[0], after = k.fault.probe[1];
    abft->probe = AbftProbe{true, k.op, k.layer, 0, k.fault.j, abft_flip_bit(k.fault.bit, before), before, after};
    abft_log_probe(abft, detected, NAN);
}

// Counts what the execution's check found (verdict: its two counts, on the host; residual: the
// largest of its rows, or null where not recorded: the GPU). False when a row failed again
// after its recompute (its inputs must be bad: the caller climbs the ladder); AdamW's such
// parameters were left as they were (AbftCounters::held).
inline bool abft_kernel_verdict(Abft* abft, const AbftKernelCheck& k, const int* verdict, const float* residual) {
    if (!k.on) { return true; }
    abft->n.checked[k.op]++;
    if (verdict[0] == 0 && residual != nullptr) {
        abft->n.residual[k.op] = fmaxf(abft->n.residual[k.op], *residual);
        abft->n.residual_checks[k.op]++;
    }
    if (verdict[0] == 0) { return true; }
    abft->n.detected[k.op]++;
    abft->n.recomputed_op[k.op]++;
    if (k.op == OP_ADAMW) { abft->n.held += verdict[1]; }
    if (abft->cfg.verbose) {
        const char* unit = abft_kernel_elementwise(k.op) ? "value" : "row";
        printf("abft: step %d layer %d %s: %d %s%s out of bounds, recomputed", abft->step, k.layer, abft_op_names[k.op],
               verdict[0], unit, verdict[0] == 1 ? "" : "s");
        if (verdict[1] > 0) {
            printf("; %d still out of bounds (%s)", verdict[1],
                   k.op == OP_ADAMW ? "their gradients or moments are bad: left unchanged" : "bad inputs");
        }
        printf("\n");
    }
    return verdict[1] == 0 || k.op == OP_ADAMW;
}
