// test_gpt2.cpp: the CPU trainer against the PyTorch reference, and the ATTNChecker fault suite.
//
//   make test_gpt2 && ./test_gpt2 [-python /usr/bin/python3] [-seed N] [-quick 1] [-quick_faults 1] [-fault_steps N] [-tf32 1]
//
// 1. Reference checks. For several configs, including odd ones (T not a multiple of 4, NH not
//    a power of two, B=1, V not a multiple of 128) and one drawn at random at test time,
//    scripts/train_gpt2.py writes a model, the logits, loss and every gradient of one batch,
//    and the losses and gradient norms of 10 AdamW steps (warmup, cosine decay, weight decay
//    of the 2-D weights), computed in float64. This program loads the same model and checks
//    its fp32 results against them. Fault-free runs must raise zero ABFT alarms, and ABFT on
//    and off must give bit-identical losses (checking never changes the maths). On one config
//    the 10 steps also clip the gradient norm (at the median of the unclipped run's norms, so
//    that some steps clip and some do not) and run as 2 accumulated micro-batches of half the
//    batch; there a fault in the second micro-batch is repaired, and one that redoes the step
//    redoes both micro-batches.
// 2. Fault suite. Every protected op (the 21 GEMMs and the 10 kernels checked by invariants,
//    with -abft_scope all) x every fault type (5) x every pattern (0-D, row, column, 2-D):
//    with ABFT on the fault is detected and repaired (a GEMM's from checksums, 2-D by
//    recomputation; a kernel's by recomputing the rows that broke its invariant), and the loss,
//    every gradient and the losses of the next 5 steps equal the fault-free run's; with ABFT
//    off the same fault visibly harms the first FAULT_STEPS_OFF steps. Then the upper rungs of
//    the ladder (layer recompute, step redo) and a fault that persists.
//
// -refs DIR keeps the reference files in DIR and reuses them on the next run (with the same
// -seed): so a machine without PyTorch (e.g. a GPU box) can run the tests on references made
// elsewhere. -quick 1 runs a subset for slow builds (AddressSanitizer): the B=1 config, and in the fault
// suite each op once (type and pattern rotating, 2 steps compared) plus the ladder, and the
// micro-batch faults over 2 accumulated steps (not compared with the reference); -quick_faults 1
// takes that fault suite alone, with every reference check; -fault_steps N compares N steps from
// each fault (2 to 20; 6 by default, the quick suite's 2). -tf32 1 (CUDA trainer) runs
// every GEMM on TF32 tensor cores: the float64 comparisons are skipped (their tolerances are
// fp32's); the ABFT checks remain (no false alarm, ABFT on/off bit-identical, the fault suite
// with the TF32 bound TOL_REPAIRED_OUT_TF32). Built in bf16 (test_gpt2cu_bf16_cpu, or test_gpt2cu with
// PRECISION=BF16) every check runs with bounds derived from bf16's unit roundoff (TOL_LOGITS...).
//
// Prints one line per check and ends with "N passed, M failed"; exits non-zero on failure.
//
// test_gpt2.cu runs these same checks against the CUDA trainer: it includes train_gpt2.cu
// and then this file with TEST_CUDA_TRAINER defined. The model is reached only through the
// trainers' common functions (gpt2_host_view, gpt2_copy_grads, gpt2_logits_row...).
#ifndef TEST_CUDA_TRAINER
#define TESTING
#include "train_gpt2.cpp"
#endif

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

// ----------------------------------------------------------------------------
// checks

static int g_passed = 0, g_failed = 0;

static bool check(bool ok, const char* fmt, ...) {
    va_list args;
    va_start(args, fmt);
    printf("%s ", ok ? "PASS" : "FAIL");
    vprintf(fmt, args);
    printf("\n");
    va_end(args);
    (ok ? g_passed : g_failed)++;
    fflush(stdout);
    return ok;
}

// max |a - b| / max |b|: the error of a tensor relative to its own scale, so that elements
// near zero (whose relative error means nothing in fp32) do not dominate
static double scaled_error(const float* a, const float* b, size_t n) {
    double maxdiff = 0.0, maxref = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= maxdiff)) { maxdiff = d; } // NaN propagates
        maxref = fmax(maxref, fabs((double)b[i]));
    }
    return maxref > 0.0 ? maxdiff / maxref : maxdiff;
}

// ----------------------------------------------------------------------------
// the PyTorch reference

struct TestConfig {
    int L, NH, C, maxT, V, B, T;
    int seed;
    std::string why;
};

// the optimizer of the 10 reference steps: a peak lr large enough that the loss moves
// visibly, 3 warmup steps and a cosine decay to a tenth of it, weight decay of the 2-D weights
static const float TEST_LR = 1e-3f, TEST_WD = 0.01f, TEST_FINAL_FRAC = 0.1f;
static const int TEST_STEPS = 10, TEST_WARMUP = 3;

// step `step` (from 0) of the reference's schedule, clipping at grad_clip (0: off)
static AdamWStep test_step(int step, float grad_clip = 0.0f) {
    AdamWStep opt;
    opt.lr = learning_rate_at(TEST_LR, step, TEST_WARMUP, TEST_STEPS, TEST_FINAL_FRAC);
    opt.weight_decay = TEST_WD;
    opt.grad_clip = grad_clip;
    return opt;
}

// the fault suite's steps: constant lr, no clip (its runs compare with each other)
static AdamWStep fault_step() {
    AdamWStep opt;
    opt.lr = TEST_LR;
    opt.weight_decay = TEST_WD;
    return opt;
}

static std::string g_python = "/usr/bin/python3";
static bool g_quick = false; // -quick 1
static bool g_quick_faults = false; // -quick_faults 1, or -quick 1: the fault suite's subset
static bool g_test_tf32 = false; // -tf32 1: the GEMMs on TF32 tensor cores (CUDA trainer)
static std::string g_tmp;
static std::string g_refs; // -refs DIR: keep the reference files there, and reuse them when present

static bool file_exists(const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0;
}

// The reference's files for config c (clipping the gradient norm at grad_clip, 0: off).
static std::string run_reference(const TestConfig& c, const char* name, float grad_clip = 0.0f) {
    char key[192]; // everything the reference depends on, so that a kept one is only reused when it fits
    snprintf(key, sizeof(key), "%s_L%d_NH%d_C%d_maxT%d_V%d_B%d_T%d_seed%d_clip%.9g", name, c.L, c.NH, c.C, c.maxT, c.V, c.B,
             c.T, c.seed, grad_clip);
    std::string dir = (g_refs.empty() ? g_tmp : g_refs) + "/" + key;
    if (!g_refs.empty() && file_exists(dir + "/losses.txt")) { return dir; }
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "%s scripts/train_gpt2.py --out %s --init noisy --layers %d --heads %d --channels %d --max-seq-len %d "
             "--vocab %d --batch %d --seq %d --seed %d --steps %d --lr %.9g --weight-decay %.9g --warmup %d --final-frac %.9g "
             "--grad-clip %.9g > %s.log 2>&1",
             g_python.c_str(), dir.c_str(), c.L, c.NH, c.C, c.maxT, c.V, c.B, c.T, c.seed, TEST_STEPS, TEST_LR, TEST_WD,
             TEST_WARMUP, TEST_FINAL_FRAC, grad_clip, dir.c_str());
    if (system(cmd) != 0) {
        std::string log = dir + ".log";
        die(log.c_str(), "the reference needs PyTorch: apt-get install python3-torch, or pass -python PATH",
            "scripts/train_gpt2.py failed for config %s", name);
    }
    return dir;
}

struct DebugState {
    int B, T;
    std::vector<int> x, y;
    std::vector<float> logits; // (B, T, V)
    float loss;
    std::vector<float> grads;  // every parameter, in model order
};

static DebugState read_debug_state(const std::string& dir, const GPT2& model) {
    std::string path = dir + "/debug_state.bin";
    FILE* f = fopen_check(path.c_str(), "rb", "run scripts/train_gpt2.py");
    int header[HEADER_INTS];
    read_header_check(f, path.c_str(), header, 20240327, "debug state");
    DebugState s;
    s.B = header[2];
    s.T = header[3];
    const size_t BT = (size_t)s.B * s.T;
    s.x.resize(BT);
    s.y.resize(BT);
    s.logits.resize(BT * model.config.vocab_size);
    s.grads.resize(model.num_parameters);
    fread_check(s.x.data(), sizeof(int), BT, f, path.c_str());
    fread_check(s.y.data(), sizeof(int), BT, f, path.c_str());
    fread_check(s.logits.data(), sizeof(float), s.logits.size(), f, path.c_str());
    fread_check(&s.loss, sizeof(float), 1, f, path.c_str());
    fread_check(s.grads.data(), sizeof(float), s.grads.size(), f, path.c_str());
    fclose_check(f, path.c_str());
    return s;
}

// One reference step: its loss, its gradient's global norm before the clip, its learning rate.
struct RefStep {
    double loss, norm, lr;
};

static std::vector<RefStep> read_history(const std::string& dir) {
    std::string path = dir + "/losses.txt";
    FILE* f = fopen_check(path.c_str(), "r", "run scripts/train_gpt2.py");
    std::vector<RefStep> steps;
    char line[512];
    while (fgets(line, sizeof(line), f) != nullptr) {
        RefStep r;
        if (line[0] == '#') { continue; }
        if (sscanf(line, "%lf %lf %lf", &r.loss, &r.norm, &r.lr) != 3) { die(path.c_str(), "rerun scripts/train_gpt2.py", "bad line '%s'", line); }
        steps.push_back(r);
    }
    fclose_check(f, path.c_str());
    return steps;
}

static const char* const param_names[NUM_PARAMETER_TENSORS] = {
    "wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
    "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb"};

static void load_model(GPT2* model, const std::string& dir, int B, int T) {
    gpt2_build_from_checkpoint(model, (dir + "/model.bin").c_str());
    gpt2_set_tf32(model, g_test_tf32);
    model->abft.cfg.verbose = false;
    model->abft.cfg.scope = ABFT_SCOPE_ALL; // every GEMM: the fault-free runs and the fault suite cover them all
    gpt2_allocate_activations(model, B, T);
}

// host copies of the model's parameters and gradients, and a fresh start of training from params
static std::vector<float> copy_params(GPT2* model) {
    gpt2_to_host(model);
    const float* p = gpt2_host_view(model).params;
    return std::vector<float>(p, p + model->num_parameters);
}

static std::vector<float> copy_grads(GPT2* model) {
    std::vector<float> g(model->num_parameters);
    gpt2_copy_grads(model, g.data());
    return g;
}

static void restart_training(GPT2* model, const std::vector<float>& params) {
    memcpy(gpt2_host_view(model).params, params.data(), params.size() * sizeof(float));
    gpt2_from_host(model);
    gpt2_zero_moments(model);
}

// ----------------------------------------------------------------------------
// 1. reference checks

// Tolerances, against a float64 reference, so that they measure our fp32 arithmetic alone.
// fp32 carries 24 bits (u = 6e-8); the longest reductions here are 4C = 256 terms in the MLP
// and Vp = 384 in the classifier, through up to 3 layers and a layernorm that divides by a
// standard deviation. Measured: logits ≤ 4.5e-7, loss ≤ 1 ulp, gradients ≤ 9e-7 (their
// reductions run over B·T too and their small entries cancel). The bounds leave a ~10x margin
// and stay orders of magnitude below what a real bug (a wrong index, a missed term) causes.
// After 10 AdamW steps at lr 1e-3 the fp32 run drifts from the float64 one: Adam divides by
// sqrt(v), so coordinates with tiny gradients amplify rounding. Measured ≤ 1.5e-7 relative;
// a wrong update rule (or a missing bias correction) moves the losses by ~1e-2.
// The global gradient norm of each of those steps: a sum of squares over every gradient, so its
// relative error is about that of the largest gradients (step 0's ≤ 9e-7 scaled) plus the
// trajectory's drift. Measured ≤ 7.4e-7 (both trainers, every config); a missing tensor, a
// wrong average over micro-batches or an unclipped step moves it by 1e-2 or more.
//
// The CUDA trainer built in bf16 (-DENABLE_BF16) stores every activation, gradient and
// parameter copy in bf16, u = 2^-8 = 3.9e-3 (8 significant bits), while it sums in fp32: its
// error is no longer the reductions' (K·u_fp32 ≤ 2e-5 here) but one rounding per stored tensor,
// each at most u relative, a few of which lie on any path to a logit or a gradient (a logit:
// lnf, wte and itself, on a residual stream that is rounded at every add). So its bounds are
// multiples of u. Measured over the four configs and 40 more drawn as the random one is:
// logits ≤ 1.1e-2 (2.8u), gradients ≤ 2.3e-2 (5.8u, a layernorm weight's over C = 15 channels;
// a gradient's path has about twice a logit's roundings: the backward pass stores its own),
// losses ≤ 6.2e-5 relative (a mean over B·T positions whose errors differ in sign), 10-step
// losses ≤ 2.6e-4, gradient norms ≤ 4.3e-3 (the largest gradients' error, 1.1u). The bounds
// leave ~3x: 8u for logits, 16u for gradients, u/16 for the loss, u/4 for the trajectory, 4u
// for the norms. They check what the bf16 build adds (conversions, the mixed activation
// layout, the working copies AdamW writes from its fp32 masters: a stale copy or a misread
// layout is off by O(1)); the maths itself is checked at fp32's bounds, by the fp32 build of
// the same kernels.
constexpr bool TEST_BF16 = sizeof(floatX) == 2;
static const double U_BF16 = 1.0 / 256.0;
static const double TOL_LOGITS = TEST_BF16 ? 8 * U_BF16 : 5e-6;      // max |diff| / max |logit|
static const double TOL_LOSS = TEST_BF16 ? U_BF16 / 16 : 1e-6;       // relative
static const double TOL_GRAD = TEST_BF16 ? 16 * U_BF16 : 1e-5;       // max |diff| / max |grad| per tensor
static const double TOL_TRAJECTORY = TEST_BF16 ? U_BF16 / 4 : 2e-6;  // relative, each of 10 losses
static const double TOL_NORM = TEST_BF16 ? 4 * U_BF16 : 5e-6;        // relative, each of 10 norms

// 10 steps' losses and gradient norms against the reference's
static void check_trajectory(const char* name, const char* what, const std::vector<float>& losses,
                             const std::vector<float>& norms, const std::vector<RefStep>& ref) {
    double worst_loss = 0.0, worst_norm = 0.0;
    const bool complete = (int)ref.size() == TEST_STEPS && (int)losses.size() == TEST_STEPS && (int)norms.size() == TEST_STEPS;
    for (int step = 0; complete && step < TEST_STEPS; step++) {
        const double e_loss = fabs(losses[step] - ref[step].loss) / fabs(ref[step].loss);
        const double e_norm = fabs(norms[step] - ref[step].norm) / fabs(ref[step].norm);
        if (!(e_loss <= worst_loss)) { worst_loss = e_loss; }
        if (!(e_norm <= worst_norm)) { worst_norm = e_norm; }
    }
    check(complete && worst_loss <= TOL_TRAJECTORY,
          "%s %s: loss %.6f -> %.6f (reference %.6f -> %.6f), worst rel error %.2e (tol %.1e)", name, what, losses.front(),
          losses.back(), ref.front().loss, ref.back().loss, worst_loss, TOL_TRAJECTORY);
    check(complete && worst_norm <= TOL_NORM, "%s %s: gradient norms %.4f -> %.4f, worst rel error %.2e (tol %.1e)", name,
          what, norms.front(), norms.back(), worst_norm, TOL_NORM);
}

static void test_reference(const TestConfig& c, const char* name) {
    printf("\nconfig %s: L=%d NH=%d C=%d maxT=%d V=%d B=%d T=%d seed=%d (%s)\n", name, c.L, c.NH, c.C, c.maxT, c.V,
           c.B, c.T, c.seed, c.why.c_str());
    std::string dir = run_reference(c, name);
    GPT2 model;
    load_model(&model, dir, c.B, c.T);
    DebugState s = read_debug_state(dir, model);
    const std::vector<RefStep> ref = read_history(dir);
    const int V = c.V;

    // The float64 comparisons' tolerances are fp32's; TF32 (10 fraction bits) is far outside them
    if (!g_test_tf32) {
        // the logits of a forward pass alone: a training pass writes their gradient over them
        gpt2_run_checked(&model, s.x.data(), s.y.data(), false);
        std::vector<float> logits((size_t)c.B * c.T * V);
        for (size_t bt = 0; bt < (size_t)c.B * c.T; bt++) { gpt2_logits_row(&model, (long)bt, &logits[bt * V]); }
        gpt2_forward_backward(&model, s.x.data(), s.y.data());
        const std::vector<float> grads = copy_grads(&model);
        double e = scaled_error(logits.data(), s.logits.data(), logits.size());
        check(e <= TOL_LOGITS, "%s logits: scaled error %.2e (tol %.1e)", name, e, TOL_LOGITS);
        e = fabs(model.mean_loss - s.loss) / fabs(s.loss);
        check(e <= TOL_LOSS, "%s loss: %.7f vs %.7f, rel error %.2e (tol %.1e)", name, model.mean_loss, s.loss, e, TOL_LOSS);
        double worst = 0.0;
        const char* worst_name = "";
        bool all_ok = true;
        size_t offset = 0;
        for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) {
            e = scaled_error(grads.data() + offset, s.grads.data() + offset, model.param_sizes[i]);
            if (!(e <= TOL_GRAD)) { all_ok = false; printf("  gradient %s: scaled error %.2e\n", param_names[i], e); }
            if (!(e <= worst)) { worst = e; worst_name = param_names[i]; }
            offset += model.param_sizes[i];
        }
        check(all_ok, "%s gradients of all 16 tensors: worst scaled error %.2e in %s (tol %.1e)", name, worst, worst_name, TOL_GRAD);
    }

    // 10 steps on the same batch, with ABFT off, on, and on again: all bit-identical (checking
    // never changes the maths, and every kernel is deterministic), and equal to the reference
    const std::vector<float> params0 = copy_params(&model);
    std::vector<float> losses[3], norms;
    for (int run = 0; run < 3; run++) {
        restart_training(&model, params0);
        model.abft.cfg.enabled = run > 0;
        abft_init(&model.abft);
        for (int step = 0; step < TEST_STEPS; step++) {
            model.abft.step = step;
            gpt2_train_step(&model, s.x.data(), s.y.data(), test_step(step), step + 1);
            losses[run].push_back(model.mean_loss);
            if (run == 1) { norms.push_back(model.grad_norm); }
        }
    }
    if (!g_test_tf32) { check_trajectory(name, "10 AdamW steps (warmup, cosine decay)", losses[1], norms, ref); }
    check(losses[0] == losses[1], "%s ABFT on and off give bit-identical losses", name);
    check(losses[1] == losses[2], "%s two identical runs give bit-identical losses (deterministic)", name);
    long alarms = abft_total_detected(model.abft.n);
    long checked = 0;
    for (long n : model.abft.n.checked) { checked += n; }
    long per_step = 0; // each layer's GEMMs and kernels, then the LM head's and the step's
    for (int op = 0; op < ABFT_NUM_LOCAL_OPS; op++) { per_step += abft_once_per_step(op) ? 1 : c.L; } // one process
    check(alarms == 0 && checked == TEST_STEPS * per_step,
          "%s fault-free: %ld GEMM outputs and kernel outputs checked, %ld alarms", name, checked, alarms);
    gpt2_free(&model);
}

// ----------------------------------------------------------------------------
// 2. the fault suite

static int g_fault_steps = 6;         // the faulty step and the 5 after it (-fault_steps N; quick fault suite: 2)
static const int FAULT_STEPS_OFF = 2; // with ABFT off: enough to see the harm in the losses, the
                                      // faulty step's gradients or the parameters after its update

struct Run {
    std::vector<float> losses;     // (steps)
    std::vector<float> grads0;     // every gradient of the faulty step
    std::vector<float> params;     // every parameter after the last step
    std::vector<float> params_off; // the fault-free run's after FAULT_STEPS_OFF steps
    AbftCounters n;
};

// `steps` training steps from params0 on the batch of s, the fault (if any) at step 0.
static Run train_run(GPT2* model, const std::vector<float>& params0, const DebugState& s, bool abft_on,
                     const AbftFaultSpec& fault, int steps = g_fault_steps) {
    restart_training(model, params0);
    model->abft.cfg.enabled = abft_on;
    model->abft.fault = fault;
    abft_init(&model->abft);
    Run r;
    for (int step = 0; step < steps; step++) {
        model->abft.step = step;
        // on the GPU the update is queued before the verdicts are read, and gated on them: a
        // fault beyond the device's repair must leave it undone until the pass is redone
        gpt2_train_step(model, s.x.data(), s.y.data(), fault_step(), step + 1);
        r.losses.push_back(model->mean_loss);
        if (step == 0) { r.grads0 = copy_grads(model); } // the update leaves the gradients as they were
        if (step + 1 == FAULT_STEPS_OFF) { r.params_off = copy_params(model); }
    }
    r.params = copy_params(model);
    r.n = model->abft.n;
    return r;
}

static bool all_finite(const std::vector<float>& v) {
    for (float x : v) { if (!std::isfinite(x)) { return false; } }
    return true;
}

static double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
    double worst = 0.0;
    for (size_t i = 0; i < a.size(); i++) {
        double d = fabs((double)a[i] - b[i]) / fabs((double)b[i]);
        if (!(d <= worst)) { worst = d; }
    }
    return worst;
}

// How far a repaired run may stray from the fault-free one. A rebuilt element is
// checksum − Σ(other elements) in fp64, so it differs from the fault-free value by about the
// fp32 rounding of the GEMM. Measured: loss and gradient deviations ≤ 3.3e-7 (bound 2e-6).
// Parameters after 6 AdamW steps deviate up to 1.3e-5 scaled, because Adam divides by
// sqrt(v) and so amplifies tiny changes in tiny gradients (bound 1e-4). An unrepaired fault
// moved the parameters by ≥ 3.1e-4 (a near-INF element of wte's gradient, whose AdamW step is
// bounded; ≥ 1.6e-3 in the attention's GEMMs), or made them non-finite: 3x above the bound.
static const double TOL_REPAIRED_OUT = 2e-6;    // losses (relative) and gradients (scaled)
static const double TOL_REPAIRED_PARAMS = 1e-4; // parameters after the run (scaled)

// Under TF32 (-tf32 1) a rebuilt element is the checksum, encoded in fp32 from the unconverted
// operands, minus the other elements of its line, which are TF32 products: it inherits its
// line's whole TF32 error, which the detector admits up to 2·2^-10 (2·ABFT_TF32_UNIT_ROUNDOFF)
// of the line's Σ|A||B|. Losses and gradients depend smoothly on it, so their deviation is
// bounded by that same relative 2^-9 ≈ 2e-3 (measured: ≤ 8e-6 for losses, ≤ 5.9e-4 for
// gradients). Parameters after 6 AdamW steps are not compared: Adam's division by sqrt(v)
// amplifies this error to the size of a small unrepaired fault's (measured 3.9e-3 against
// 6.2e-3), so they would separate nothing; the 5 losses after the fault show the training.
// The ABFT-off run keeps fp32's bounds: it shares the TF32 arithmetic of the fault-free run,
// so any difference beyond them is the fault's.
static const double TOL_REPAIRED_OUT_TF32 = 2e-3;

// In bf16 a located element is recomputed from its operands (ABFT_RECOMPUTE_LOCATED), summed in
// fp32 over k in order. The harness's GEMM sums in that order too, so there a repaired run is
// bit-identical to the fault-free one (measured: every case of the suite) and fp32's bounds
// apply. A GPU's tensor cores sum in another order, which moves the bf16 result by one ulp
// (2u of the element) where the fp32 sum lies near a rounding boundary: there the TF32 case's
// reasoning holds with 2u (7.8e-3) for losses and gradients, parameters not compared.
#if defined(ENABLE_BF16) && !defined(CUDA_CPU_HARNESS)
constexpr bool BF16_ON_GPU = true;
#else
constexpr bool BF16_ON_GPU = false;
#endif
static const double TOL_REPAIRED_OUT_BF16_GPU = 2 * U_BF16;

// The bound on a repaired run's losses and gradients, and whether its parameters are compared.
static double repaired_out_tol() {
    return g_test_tf32 ? TOL_REPAIRED_OUT_TF32 : BF16_ON_GPU ? TOL_REPAIRED_OUT_BF16_GPU : TOL_REPAIRED_OUT;
}
static bool repaired_params_compared() { return !g_test_tf32 && !BF16_ON_GPU; }

// The outcome of one fault case as one short word for the table; details go to the log.
static const char* fault_case(GPT2* model, const std::vector<float>& params0, const DebugState& s, const Run& clean,
                              int op, int type, int pattern, int layer) {
    AbftFaultSpec f;
    f.active = true;
    f.op = op; f.layer = layer; f.step = 0; f.type = type; f.pattern = pattern; f.seed = 1 + op * 31 + type * 7 + pattern;
    Run on = train_run(model, params0, s, true, f);
    Run off = train_run(model, params0, s, false, f, FAULT_STEPS_OFF);
    // ABFT on: detected once, repaired the expected way, and nothing else raised
    const int expect_fix[] = {FIX_0D, FIX_ROW, FIX_COL, FIX_SCATTERED};
    // (on the GPU the repairs happen on the device: where the check's own kernel fixes a faulty
    // line in place, a 2x2 block too, as scattered elements; otherwise a GEMM's recomputation
    // replays the pass; a kernel recomputes its rows itself)
    const bool kernel = op >= ABFT_NUM_GEMM_OPS;
    const bool in_place = model->abft.deferred && model->abft.fixes_in_place[op];
    const bool recomputed = kernel || (pattern == PATTERN_2D && !in_place);
    const long replays = model->abft.deferred && recomputed && !kernel ? 1 : 0;
    bool repaired = recomputed
                        ? on.n.recomputed_op[op] == 1 && abft_total_recomputed(on.n) == 1 && abft_total_corrected(on.n) == 0
                        : on.n.corrected[op][expect_fix[pattern]] == 1 && abft_total_corrected(on.n) == 1 &&
                              on.n.recomputed_op[op] == 0;
    repaired &= on.n.replayed_pass == replays && on.n.held == 0;
    bool detected = on.n.injected == 1 && on.n.detected[op] == 1 && abft_total_detected(on.n) == 1;
    double loss_err = max_rel_diff(on.losses, clean.losses);
    double grad_err = scaled_error(on.grads0.data(), clean.grads0.data(), clean.grads0.size());
    double param_err = scaled_error(on.params.data(), clean.params.data(), clean.params.size());
    bool same = loss_err <= repaired_out_tol() && grad_err <= repaired_out_tol() &&
                (!repaired_params_compared() || param_err <= TOL_REPAIRED_PARAMS);
    // ABFT off: the same fault really harms training
    const std::vector<float> clean_losses(clean.losses.begin(), clean.losses.begin() + FAULT_STEPS_OFF);
    double off_err = scaled_error(off.params.data(), clean.params_off.data(), clean.params_off.size());
    double off_loss = max_rel_diff(off.losses, clean_losses); // a fault in the loss itself moves only this
    double off_grads = scaled_error(off.grads0.data(), clean.grads0.data(), clean.grads0.size());
    bool harmful = !all_finite(off.losses) || !all_finite(off.params) || off_err > TOL_REPAIRED_PARAMS ||
                   off_loss > TOL_REPAIRED_OUT || off_grads > TOL_REPAIRED_OUT;
    bool ok = detected && repaired && same && harmful;
    check(ok, "fault %-9s %-7s %-3s layer %d: detected %d, repaired %d (loss %.1e, grads %.1e, params %.1e); "
              "abft off: %s (params %.1e, losses %.1e, grads %.1e)",
          abft_op_names[op], abft_fault_type_names[type], abft_pattern_names[pattern], layer, detected, repaired,
          loss_err, grad_err, param_err, !all_finite(off.losses) || !all_finite(off.params) ? "non-finite" : "diverged", off_err,
          off_loss, off_grads);
    if (!ok) { return "FAIL"; }
    return recomputed ? "rcmp" : "fix";
}

// The GEMMs the ladder's cases fault. The CUDA trainer's deferred checks fix the attention
// GEMMs' faulty lines in place, recomputed from the operands, so a fault there never stays and
// never climbs the ladder: its cases take the MLP's GEMMs, whose faults the checksums' repair
// kernel handles (a 2-D fault is beyond it: the pass is redone and climbs as on the CPU).
#ifdef TEST_CUDA_TRAINER
static const int LADDER_FORWARD = OP_FC, LADDER_FORWARD_2 = OP_FC, LADDER_BACKWARD = OP_FCPROJ_DX;
#else
static const int LADDER_FORWARD = OP_QK, LADDER_FORWARD_2 = OP_PV, LADDER_BACKWARD = OP_QK_DK;
#endif

// A single scripted fault higher up the ladder: `count` executions of op are hit (2-D, so
// every hit needs a recomputation).
static void ladder_case(GPT2* model, const std::vector<float>& params0, const DebugState& s, const Run& clean,
                        int op, int count, long want_layers, long want_steps, const char* what) {
    AbftFaultSpec f;
    f.active = true;
    f.op = op; f.layer = 0; f.step = 0; f.type = FAULT_INF; f.pattern = PATTERN_2D; f.count = count;
    Run on = train_run(model, params0, s, true, f);
    bool same = max_rel_diff(on.losses, clean.losses) <= TOL_REPAIRED_OUT &&
                scaled_error(on.params.data(), clean.params.data(), clean.params.size()) <= TOL_REPAIRED_PARAMS;
    check(same && on.n.recomputed_layer == want_layers && on.n.redone_step == want_steps && on.n.injected == count,
          "ladder: %s (%s hit %d times): %ld layer recomputes, %ld step redos, training unchanged %d", what,
          abft_op_names[op], count, on.n.recomputed_layer, on.n.redone_step, same);
}

// AdamW is the last kernel of the step: a parameter whose update breaks its bound again after
// the recompute is left as it was (2-D: 4 parameters), and training goes on.
static void held_case(GPT2* model, const std::vector<float>& params0, const DebugState& s) {
    AbftFaultSpec f;
    f.active = true;
    f.op = OP_ADAMW; f.layer = 0; f.step = 0; f.type = FAULT_INF; f.pattern = PATTERN_2D; f.count = 2;
    Run on = train_run(model, params0, s, true, f);
    check(on.n.held == 4 && on.n.injected == 2 && all_finite(on.losses) && all_finite(on.params),
          "ladder: adamw faulty after its recompute -> 4 parameters left unchanged (held %ld), training finite %d",
          on.n.held, all_finite(on.losses) && all_finite(on.params));
}

// A fault that never goes away is not transient: the trainer must stop with a clear message.
// Run in a fresh process (this program re-executed with -persistent DIR): a forked copy of
// a process that has used OpenMP cannot start new threads.
static void persistent_fault_run(const std::string& dir) {
    GPT2 model;
    gpt2_build_from_checkpoint(&model, (dir + "/model.bin").c_str());
    gpt2_set_tf32(&model, g_test_tf32);
    model.abft.cfg.scope = ABFT_SCOPE_ALL;
    DebugState s = read_debug_state(dir, model);
    gpt2_allocate_activations(&model, s.B, s.T);
    const std::vector<float> params0 = copy_params(&model);
    AbftFaultSpec f;
    f.active = true;
    f.op = LADDER_FORWARD; f.layer = 0; f.step = 0; f.type = FAULT_NAN; f.pattern = PATTERN_2D; f.count = 1000;
    train_run(&model, params0, s, true, f);
    exit(0); // not reached: the trainer stops first
}

static void persistent_fault_case(const std::string& dir) {
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) { check(false, "ladder: cannot find this program to re-execute it"); return; }
    self[n] = '\0';
    std::string log = dir + "/persistent.log";
    std::string cmd = std::string(self) + (g_test_tf32 ? " -tf32 1" : "") + " -persistent " + dir + " > " + log + " 2>&1";
    int status = system(cmd.c_str());
    FILE* f = fopen(log.c_str(), "r");
    char text[4096] = "";
    size_t len = f ? fread(text, 1, sizeof(text) - 1, f) : 0;
    text[len] = '\0';
    if (f) { fclose(f); }
    bool message = strstr(text, "error: abft: step 0 still faulty after it was redone") != nullptr;
    check(WIFEXITED(status) && WEXITSTATUS(status) == 1 && message,
          "ladder: a persistent fault stops the trainer with exit 1 and an error naming the step (exit %d)",
          WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

static void test_faults(const TestConfig& c) {
    printf("\nfault suite: L=%d NH=%d C=%d V=%d B=%d T=%d, fault at step 0, %d steps compared\n", c.L, c.NH, c.C, c.V,
           c.B, c.T, g_fault_steps);
    std::string dir = run_reference(c, "faults");
    GPT2 model;
    load_model(&model, dir, c.B, c.T);
    DebugState s = read_debug_state(dir, model);
    const std::vector<float> params0 = copy_params(&model);
    Run clean = train_run(&model, params0, s, true, AbftFaultSpec{});
    check(abft_total_detected(clean.n) == 0, "fault suite: the fault-free run raises no alarm");
#ifdef TEST_CUDA_TRAINER
    int in_place = 0;
    for (int op = 0; op < ABFT_NUM_ATTN_OPS; op++) { in_place += model.abft.fixes_in_place[op]; }
    check(in_place == ABFT_NUM_ATTN_OPS, "fault suite: the kernel that checks each of the attention's %d GEMMs fixes a "
          "faulty line in place (no repair kernel): %d", ABFT_NUM_ATTN_OPS, in_place);
#endif
    // the ops of one process; the all-reduce's faults: scripts/test_ranks.sh, on 2 ranks
    const char* table[ABFT_NUM_LOCAL_OPS][FAULT_NUM_TYPES][PATTERN_NUM];
    for (int op = 0; op < ABFT_NUM_LOCAL_OPS; op++) {
        for (int type = 0; type < FAULT_NUM_TYPES; type++) {
            for (int pattern = 0; pattern < PATTERN_NUM; pattern++) {
                table[op][type][pattern] = "-";
                if (g_quick_faults && (type != op % FAULT_NUM_TYPES || pattern != op % PATTERN_NUM)) { continue; }
                int layer = abft_once_per_step(op) ? 0 : (op + type + pattern) % c.L; // spread over the layers
                table[op][type][pattern] = fault_case(&model, params0, s, clean, op, type, pattern, layer);
            }
        }
    }
    ladder_case(&model, params0, s, clean, LADDER_FORWARD, 2, 1, 0, "forward op faulty after its recompute -> layer recompute");
    ladder_case(&model, params0, s, clean, LADDER_FORWARD_2, 4, 1, 1, "forward op faulty after the layer recompute -> step redo");
    ladder_case(&model, params0, s, clean, LADDER_BACKWARD, 2, 0, 1, "backward op faulty after its recompute -> step redo");
    ladder_case(&model, params0, s, clean, OP_SOFTMAX, 2, 1, 0, "kernel faulty after its rows' recompute -> layer recompute");
    ladder_case(&model, params0, s, clean, OP_GELU, 4, 1, 1, "kernel faulty after the layer recompute -> step redo");
    ladder_case(&model, params0, s, clean, OP_DLOGITS, 2, 0, 1, "loss gradient faulty after its recompute -> step redo");
    // no GEMM reads the losses, so only the kernel's own verdict can stop the update queued after its pass
    ladder_case(&model, params0, s, clean, OP_LOSS, 2, 0, 1, "loss faulty after its recompute -> step redo");
    held_case(&model, params0, s);
    persistent_fault_case(dir);

    printf("\nfault table (fix: detected, located and rebuilt: from the checksums, in bf16 and where the GPU's checking\n"
           "kernel fixes a line in place recomputed from the operands; rcmp: detected, recomputed (a kernel: the rows\n"
           "that broke its invariant); FAIL: see above; -: not run in the quick fault suite)\n");
    printf("%-9s", "op");
    for (int type = 0; type < FAULT_NUM_TYPES; type++) { printf(" | %-19s", abft_fault_type_names[type]); }
    printf("\n%-9s", "");
    for (int type = 0; type < FAULT_NUM_TYPES; type++) { printf(" | %-4s %-4s %-4s %-4s", "0d", "row", "col", "2d"); }
    printf("\n");
    for (int op = 0; op < ABFT_NUM_LOCAL_OPS; op++) {
        printf("%-9s", abft_op_names[op]);
        for (int type = 0; type < FAULT_NUM_TYPES; type++) {
            printf(" |");
            for (int pattern = 0; pattern < PATTERN_NUM; pattern++) { printf(" %-4s", table[op][type][pattern]); }
        }
        printf("\n");
    }
    printf("every case also ran with ABFT off: the same fault made training non-finite, or moved its losses, the\n"
           "faulty step's gradients or the parameters beyond what a repaired run shows.\n");
    gpt2_free(&model);
}

// ----------------------------------------------------------------------------
// 3. clipping and gradient accumulation against the reference

// `steps` steps from params0 on the reference's batch split into `micro` micro-batches of
// B/micro rows, as the schedule says, clipping at grad_clip; the fault (if any) at step 0. The
// model's activations are laid out for B/micro rows.
static Run accumulated_run(GPT2* model, const std::vector<float>& params0, const DebugState& s, int micro, float grad_clip,
                           int steps, const AbftFaultSpec& fault, std::vector<float>* norms) {
    restart_training(model, params0);
    model->abft.cfg.enabled = true;
    model->abft.fault = fault;
    abft_init(&model->abft);
    const size_t rows = (size_t)(s.B / micro) * s.T;
    std::vector<MicroBatch> batches;
    for (int k = 0; k < micro; k++) { batches.push_back(MicroBatch{s.x.data() + k * rows, s.y.data() + k * rows}); }
    Run r;
    for (int step = 0; step < steps; step++) {
        model->abft.step = step;
        gpt2_train_step(model, batches.data(), micro, test_step(step, grad_clip), step + 1);
        r.losses.push_back(model->mean_loss);
        if (norms != nullptr) { norms->push_back(model->grad_norm); }
    }
    r.params = copy_params(model);
    r.n = model->abft.n;
    return r;
}

static void test_clip_and_accumulation(const TestConfig& c) {
    printf("\nclipping and 2 accumulated micro-batches: L=%d NH=%d C=%d V=%d B=%d (2 x %d) T=%d\n", c.L, c.NH, c.C, c.V, c.B,
           c.B / 2, c.T);
    // the clip: the median of the unclipped run's gradient norms
    std::vector<RefStep> unclipped = read_history(run_reference(c, "config0"));
    std::vector<double> sorted;
    for (const RefStep& r : unclipped) { sorted.push_back(r.norm); }
    std::sort(sorted.begin(), sorted.end());
    const float clip = (float)sorted[sorted.size() / 2];
    const std::string dir = run_reference(c, "clipped", clip);
    const std::vector<RefStep> ref = read_history(dir);
    int clipped = 0;
    for (const RefStep& r : ref) { clipped += r.norm > clip; }
    check(clipped > 0 && clipped < (int)ref.size(), "reference clipped at %.4f: %d of %zu steps clip", clip, clipped,
          ref.size());

    GPT2 model;
    load_model(&model, dir, c.B / 2, c.T);
    const DebugState s = read_debug_state(dir, model);
    const std::vector<float> params0 = copy_params(&model);
    // -quick 1 (the sanitizer builds): 2 steps, enough for the faults' paths, no comparison
    const int steps = g_quick ? 2 : TEST_STEPS;
    std::vector<float> norms;
    const Run clean = accumulated_run(&model, params0, s, 2, clip, steps, AbftFaultSpec{}, &norms);
    if (!g_test_tf32 && !g_quick) {
        check_trajectory("clipped", "2 micro-batches of B/2 = one batch of B", clean.losses, norms, ref);
    }
    check(abft_total_detected(clean.n) == 0, "clipped: 2 micro-batches, fault-free: %ld alarms", abft_total_detected(clean.n));

    // A fault in the second micro-batch is repaired from the checksums (qk, a row), or redoes
    // the step (the loss, faulty through its recompute): the step then starts again from its
    // first micro-batch, so the result is the fault-free one
    AbftFaultSpec f;
    f.active = true;
    f.op = OP_QK; f.layer = 0; f.step = 0; f.micro = 1; f.type = FAULT_INF; f.pattern = PATTERN_ROW;
    Run on = accumulated_run(&model, params0, s, 2, clip, steps, f, nullptr);
    double loss_err = max_rel_diff(on.losses, clean.losses);
    double param_err = scaled_error(on.params.data(), clean.params.data(), clean.params.size());
    check(on.n.corrected[OP_QK][FIX_ROW] == 1 && abft_total_detected(on.n) == 1 && loss_err <= repaired_out_tol() &&
              (!repaired_params_compared() || param_err <= TOL_REPAIRED_PARAMS),
          "accumulation: a qk row fault in micro-batch 1 is repaired (corrected %ld), losses %.1e, params %.1e",
          on.n.corrected[OP_QK][FIX_ROW], loss_err, param_err);
    f.op = OP_LOSS; f.pattern = PATTERN_2D; f.count = 2;
    on = accumulated_run(&model, params0, s, 2, clip, steps, f, nullptr);
    check(on.n.redone_step == 1 && on.losses == clean.losses && on.params == clean.params,
          "accumulation: a loss fault in micro-batch 1 that stays through its recompute redoes the step, both micro-batches: "
          "%ld redone, training bit-identical %d", on.n.redone_step, on.losses == clean.losses && on.params == clean.params);
    gpt2_free(&model);
}

// ----------------------------------------------------------------------------
// 4. the checksum core on single GEMMs: cases the training runs do not reach (the CPU path;
//    dev/cuda/abft_checksum.cu runs the device kernels through the same kinds of cases)
#ifndef TEST_CUDA_TRAINER

struct CoreGemm {
    std::vector<float> A, B, bias, C, clean;
    AbftGemm g;
};

// C (M,N) = alpha·A (M,K)·B (K,N) + bias, random operands of the given magnitude
static CoreGemm core_gemm(int M, int N, int K, float magnitude, bool with_bias, uint64_t seed) {
    CoreGemm t;
    t.A.resize((size_t)M * K);
    t.B.resize((size_t)K * N);
    t.bias.resize(N);
    t.C.resize((size_t)M * N);
    for (float& x : t.A) { x = magnitude * random_normal(&seed); }
    for (float& x : t.B) { x = magnitude * random_normal(&seed); }
    for (float& x : t.bias) { x = magnitude * random_normal(&seed); }
    t.g.M = M; t.g.N = N; t.g.K = K;
    t.g.A = row_major(t.A.data(), K);
    t.g.B = row_major(t.B.data(), N);
    t.g.C = t.C.data(); t.g.ldc = N;
    t.g.alpha = 0.7f;
    t.g.bias = with_bias ? t.bias.data() : nullptr;
    gemm_cpu(t.g);
    t.clean = t.C;
    return t;
}

static void core_case(const char* what, CoreGemm& t, int want_pattern) {
    Abft abft;
    abft.cfg.verbose = false;
    abft_init(&abft);
    bool ok = abft_verify(&abft, t.g, OP_QK, 0);
    long fixed = abft_total_corrected(abft.n);
    double err = scaled_error(t.C.data(), t.clean.data(), t.C.size());
    bool right = want_pattern < 0 ? abft.n.detected[OP_QK] == 0
                                  : ok && fixed == 1 && abft.n.corrected[OP_QK][want_pattern] == 1 && err <= TOL_REPAIRED_OUT;
    check(right, "abft core: %s (detected %ld, corrected %ld, error after %.1e)", what, abft.n.detected[OP_QK], fixed, err);
    abft_free(&abft);
}

static void test_abft_core() {
    printf("\nabft core: single GEMMs\n");
    // no false alarm whatever the magnitude and reduction length: the tolerance scales with both
    const float magnitudes[] = {1e-6f, 1.0f, 1e4f};
    for (float mag : magnitudes) {
        for (int K : {3, 1000}) {
            CoreGemm t = core_gemm(37, 29, K, mag, true, 11 + K);
            char what[96];
            snprintf(what, sizeof(what), "fault-free GEMM, |x| ~ %g, K = %d: no alarm", mag, K);
            core_case(what, t, -1);
        }
    }
    {   // two extremes of opposite sign in one column that leave its plain sum exactly as it was:
        // they replace zeros (rows 0 and 1 of A are zero) and cancel before any other value is
        // added. Only the absolute-sum test can see them.
        CoreGemm t = core_gemm(40, 24, 64, 1.0f, false, 5);
        std::fill(t.A.begin(), t.A.begin() + 2 * 64, 0.0f);
        gemm_cpu(t.g);
        t.clean = t.C;
        t.C[0 * 24 + 7] = 1e20f;
        t.C[1 * 24 + 7] = -1e20f;
        core_case("+1e20 and -1e20 in one column (they cancel in its plain sum) -> column pattern", t, FIX_COL);
    }
    {   // a finite, non-extreme error: found by the weighted checksum, not by its size. The
        // tolerance here is 2·(K+M+2)·u·(0.7·Σ|A||B| + M|b|) ≈ 0.015 (Σ|A||B| ≈ 40·64·2/π per
        // column), the worst-case fp32 error; 0.1 is above it, on elements of typical size 6.
        CoreGemm t = core_gemm(40, 24, 64, 1.0f, true, 6);
        t.C[17 * 24 + 5] += 0.1f;
        core_case("an element off by 0.1 (not extreme) is located and corrected", t, FIX_0D);
    }
    {   // finite but above the extreme threshold
        CoreGemm t = core_gemm(40, 24, 64, 1.0f, true, 7);
        t.C[0] = 5e10f;
        core_case("5e10 (finite, above the 1e10 threshold) in a biased GEMM", t, FIX_0D);
    }
    {   // single faults in different rows and columns are each rebuilt by their column
        CoreGemm t = core_gemm(40, 24, 64, 1.0f, false, 8);
        t.C[2 * 24 + 3] = NAN;
        t.C[30 * 24 + 20] = INFINITY;
        core_case("NaN and INF in different rows and columns", t, FIX_SCATTERED);
    }
}

#endif // TEST_CUDA_TRAINER

#ifdef TEST_CUDA_TRAINER
// ----------------------------------------------------------------------------
// the check of the gradient's all-reduce (train_gpt2.cu: bucket_sums_kernel, and the comparison
// in grad_norm_partial_kernel), without NCCL: two ranks' gradients averaged here as ncclAvg
// averages them (each premultiplied by 1/2 in the gradient's type, then added in it), their
// bucket checksums averaged in fp32. The average passes, and each fault type in one element of
// the average fails its bucket and no other, in a whole bucket and in the last, partial one.

static void test_allreduce_check() {
    const int R = 2;
    const long n = 2 * ALLREDUCE_BUCKET + 1234, buckets = buckets_of(n);
    std::vector<floatX> g(R * n), avg(n);
    uint64_t rng = 2024;
    for (long i = 0; i < R * n; i++) { // gradients of mixed scales, as a model's tensors have
        g[i] = (floatX)((2.0f * random_f32(&rng) - 1.0f) * (i % 3 == 0 ? 1e-1f : 1e-4f));
    }
    for (long i = 0; i < n; i++) {
        avg[i] = (floatX)((float)(floatX)((float)g[i] / R) + (float)(floatX)((float)g[n + i] / R));
    }
    floatX *d_g = nullptr, *d_avg = nullptr;
    float *d_sums = nullptr, *d_partial = nullptr;
    int* d_flags = nullptr;
    cudaCheck(cudaMalloc(&d_g, R * n * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_avg, n * sizeof(floatX)));
    cudaCheck(cudaMalloc(&d_sums, (R + 1) * 2 * buckets * sizeof(float))); // each rank's, then their average
    cudaCheck(cudaMalloc(&d_partial, NORM_BLOCKS * sizeof(float)));
    cudaCheck(cudaMalloc(&d_flags, (buckets + 1) * sizeof(int)));
    cudaCheck(cudaMemcpy(d_g, g.data(), R * n * sizeof(floatX), cudaMemcpyHostToDevice));
    for (int r = 0; r < R; r++) {
        LAUNCH(bucket_sums_kernel<floatX>, (int)buckets, BLOCK, 0, 0)(d_sums + r * 2 * buckets, d_flags + buckets, d_g + r * n, n);
        cudaCheckLaunch();
    }
    std::vector<float> sums((R + 1) * 2 * buckets);
    cudaCheck(cudaMemcpy(sums.data(), d_sums, R * 2 * buckets * sizeof(float), cudaMemcpyDeviceToHost));
    float* chk = sums.data() + R * 2 * buckets;
    for (long k = 0; k < 2 * buckets; k++) { chk[k] = sums[k] / R + sums[2 * buckets + k] / R; }
    cudaCheck(cudaMemcpy(d_sums + R * 2 * buckets, chk, 2 * buckets * sizeof(float), cudaMemcpyHostToDevice));
    const float u = sizeof(floatX) == sizeof(float) ? FP32_UNIT_ROUNDOFF : ABFT_BF16_UNIT_ROUNDOFF;
    const BucketCheck bc{d_sums + R * 2 * buckets, d_flags, AbftFixer{AbftGemm{}, nullptr, {}, AbftConfig{}.tau, 0.0f}, R, u};
    // the buckets that fail when the average is x, as a string of 0s and 1s, then their count
    auto verdict = [&](const std::vector<floatX>& x) {
        cudaCheck(cudaMemcpy(d_avg, x.data(), n * sizeof(floatX), cudaMemcpyHostToDevice));
        cudaCheck(cudaMemset(d_flags + buckets, 0, sizeof(int)));
        LAUNCH(grad_norm_partial_kernel<floatX>, norm_blocks(n), BLOCK, 0, 0)(d_partial, d_avg, n, bc);
        cudaCheckLaunch();
        std::vector<int> flags(buckets + 1);
        cudaCheck(cudaMemcpy(flags.data(), d_flags, (buckets + 1) * sizeof(int), cudaMemcpyDeviceToHost));
        std::string out;
        for (long b = 0; b < buckets; b++) { out += flags[b] ? '1' : '0'; }
        return out + " " + std::to_string(flags[buckets]);
    };
    const std::string clean = verdict(avg);
    check(clean == std::string(buckets, '0') + " 0", "all-reduce check: the average of %d ranks passes (%ld buckets, %ld elements): %s",
          R, buckets, n, clean.c_str());
    for (int type = 0; type < FAULT_NUM_TYPES; type++) {
        for (long b : {1L, buckets - 1}) {
            std::vector<floatX> x = avg;
            const long i = b * ALLREDUCE_BUCKET + 17;
            x[i] = (floatX)abft_fault_value(type, -1, (float)x[i]);
            std::string want(buckets, '0');
            want[b] = '1';
            const std::string got = verdict(x);
            check(got == want + " 1", "all-reduce check: %s in bucket %ld of the average fails it alone: %s",
                  abft_fault_type_names[type], b, got.c_str());
        }
    }
    for (void* p : {(void*)d_g, (void*)d_avg, (void*)d_sums, (void*)d_partial, (void*)d_flags}) { cudaCheck(cudaFree(p)); }
}
#endif

// ----------------------------------------------------------------------------

// A config drawn at test time, reproducible from the printed seed: small enough for 2 cores.
static TestConfig random_config(uint64_t seed) {
    uint64_t rng = seed;
    auto pick = [&rng](int lo, int hi) { return lo + (int)(random_u32(&rng) % (uint32_t)(hi - lo + 1)); };
    TestConfig c;
    c.L = pick(1, 3);
    c.NH = pick(1, 5);
    // At least 8 channels: a layernorm over very few channels is ill-conditioned (over 2, its
    // output is ±1 whatever the input, and its backward cancels almost entirely). With C=2,
    // PyTorch's own fp32 gradients differ from its fp64 ones by 4e-5, beyond any fp32 tolerance.
    c.C = c.NH * pick((8 + c.NH - 1) / c.NH > 2 ? (8 + c.NH - 1) / c.NH : 2, 12);
    c.T = pick(1, 24);
    c.maxT = c.T + pick(0, 8);
    c.V = pick(20, 400);
    c.B = pick(1, 3);
    c.seed = pick(0, 1000);
    c.why = "drawn at test time with -seed " + std::to_string(seed);
    return c;
}

int main(int argc, char** argv) {
    uint64_t seed = (uint64_t)time(nullptr);
    int fault_steps = 0; // -fault_steps, set after the flags: -persistent runs as it is parsed
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "-python") == 0) { g_python = argv[i + 1]; }
        else if (strcmp(argv[i], "-seed") == 0) { seed = strtoull(argv[i + 1], nullptr, 10); }
        else if (strcmp(argv[i], "-quick") == 0) { g_quick = g_quick_faults = atoi(argv[i + 1]) != 0; }
        else if (strcmp(argv[i], "-quick_faults") == 0) { g_quick_faults = atoi(argv[i + 1]) != 0; }
        else if (strcmp(argv[i], "-fault_steps") == 0) {
            fault_steps = atoi(argv[i + 1]);
            if (fault_steps < FAULT_STEPS_OFF || fault_steps > 20) {
                die("-fault_steps", "give 2 to 20 (the ABFT-off run compares 2)", "'%s'", argv[i + 1]);
            }
        }
        else if (strcmp(argv[i], "-refs") == 0) { g_refs = argv[i + 1]; }
        else if (strcmp(argv[i], "-tf32") == 0) { g_test_tf32 = atoi(argv[i + 1]) != 0; }
        else if (strcmp(argv[i], "-persistent") == 0) { persistent_fault_run(argv[i + 1]); }
        else { die(argv[i], "flags: -python PATH, -seed N, -quick 1, -quick_faults 1, -fault_steps N, -tf32 1, -refs DIR", "unknown flag"); }
    }
    if (fault_steps != 0) { g_fault_steps = fault_steps; } else if (g_quick_faults) { g_fault_steps = 2; }
    char tmpl[] = "/tmp/test_gpt2_XXXXXX";
    if (mkdtemp(tmpl) == nullptr) { die("/tmp", "check that /tmp is writable", "cannot create a temporary directory"); }
    g_tmp = tmpl;
    if (!g_refs.empty() && mkdir(g_refs.c_str(), 0755) != 0 && errno != EEXIST) {
        die(g_refs.c_str(), "give a writable directory to -refs", "cannot create (%s)", strerror(errno));
    }
    printf("reference: %s scripts/train_gpt2.py (float64), files in %s; random config seed %llu\n", g_python.c_str(),
           g_tmp.c_str(), (unsigned long long)seed);
    const TestConfig configs[] = {
        {2, 4, 64, 64, 256, 4, 32, 1, "plain shapes, V a multiple of 128"},
        {2, 3, 48, 16, 101, 1, 7, 2, "odd: B=1, T=7, NH=3, V=101, T < maxT"},
        {3, 5, 40, 13, 333, 3, 13, 3, "odd: NH=5, T=maxT=13, V=333"},
    };
    char name[32];
    for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++) {
        if (g_quick && i != 1) { continue; }
        snprintf(name, sizeof(name), "config%zu", i);
        test_reference(configs[i], name);
    }
    if (!g_quick) { test_reference(random_config(seed), "random"); }
    test_faults(TestConfig{2, 3, 48, 16, 101, 2, 12, 7, "fault suite"});
    test_clip_and_accumulation(configs[0]);
#ifdef TEST_CUDA_TRAINER
    test_allreduce_check();
#else
    test_abft_core();
#endif
    system(("rm -rf " + g_tmp).c_str());
    printf("\n%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
