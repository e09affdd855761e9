// cost_gpt2.cu: what one training step of the CUDA trainer (train_gpt2.cu) costs a GPU, at
// GPT-2 124M shapes (L=12 C=768 NH=12 V=50257 T=1024 B=8), with ATTNChecker off and on:
// launches, bytes moved, FLOPs and the calls that block the host, counted by the CPU
// harness's sanitizer build (harness_sanitizer.h), and a roofline model of the step time on an
// H100 SXM and an H200. Built twice, as the trainer is: fp32 (dev/harness/cost_gpt2) and bf16
// (-DENABLE_BF16, dev/harness/cost_gpt2_bf16: llmc/precision.h's floatX is __nv_bfloat16, so
// activations, gradients and GEMM operands take 2 bytes an element).
//
//   make cost      (builds both with clang's load/store instrumentation, runs both, then
//                   `cost_gpt2 -compare` on their totals; the report is dev/harness/cost_model.txt)
//
//   cost_gpt2 [-totals FILE]               counts this build's step and prints its section;
//                                          -totals also writes the step's figures to FILE and
//                                          leaves the closing lines to -compare
//   cost_gpt2 -compare FP32_FILE BF16_FILE counts nothing: the two builds side by side (bytes,
//                                          launches) and the closing lines over both
//
// Counting: every kernel launch, with the distinct 32-byte sectors it reads and writes (what
// DRAM must move with a perfect L2) and the bytes of all its accesses; every cuBLAS/cuBLASLt
// call with its FLOPs and the bytes of its operands and output (each in its element size: 2
// bytes for bf16); memsets, copies, and the calls that make the host wait. A step is the
// trainer's (gpt2_train_step): forward + backward + AdamW and the closing wait for the device
// that times it, after one warm-up step (first-use allocations); counted with ABFT off, on
// (the default -abft_scope attn) and on for every GEMM (-abft_scope all). A check that fires
// in a counted step (a false alarm: the step has no faults) would add a redone pass to the
// counts, so the program fails on one. Kernels are grouped by name (template arguments
// aside: adamw_kernel<G> is adamw_kernel): GEMMs (cuBLAS/cuBLASLt), attention's other
// kernels (permute, unpermute, softmax), ABFT checks and repairs (kernels named abft_*),
// everything else. A memset or a copy to the device belongs to the group of the launch that
// follows it, a copy to the host or a synchronization to the group of the launch before it.
// ABFT's cost is also listed by kernel: abft on less abft off, per name, which includes what
// the fused checks add to the attention's own kernels.
//
// The full shape is too slow to count on a CPU, so the step is counted at B = 1, 2 and
// L = 1, 2 and extrapolated linearly: at each L, each launch's counts are linear in B (the
// launch sequence does not depend on B), so they are extrapolated launch by launch to B = 8
// and modelled; then the step's figures are linear in L (each layer adds the same launches).
// The same extrapolation is checked against a third size counted directly (B=3, L=3): within
// 1%, or the program fails.
//
// The model (a model, not a measurement): a kernel takes
//     max(FLOPs / (0.7 peak), bytes / (0.8 bandwidth), 2 us)
// with FLOPs those of cuBLAS calls (kernels' own arithmetic is not counted: they are
// memory-bound), bytes the distinct sectors (GEMMs: operands and output); a step is the sum
// over its kernels plus 15 us per blocking host call. Peaks (dense): FP32 on CUDA cores 67
// TFLOP/s, TF32 tensor cores 495 TFLOP/s, BF16 tensor cores with fp32 accumulation 989 TFLOP/s
// (H100 SXM and H200 alike); HBM 3.35 TB/s (H100 SXM), 4.8 TB/s (H200). The fp32 build is
// modelled with its GEMMs at the FP32 peak ("fp32") and at the TF32 one ("tf32", as the
// trainer's -tf32 1); the bf16 build's GEMMs at the BF16 peak ("bf16").
//
// make cost's report ends with two lines per build for every GEMM (prefixed
// "-abft_scope all: "), the overhead line over both builds, then the same for the default scope:
//     abft cost per step, fp32: +X.X% bytes, +X.X% flops, +N launches, +N host syncs
//     abft cost per step, bf16: ...
//     modelled abft overhead: h100-fp32 X.X%, h100-tf32 X.X%, h200-fp32 X.X%, h200-tf32 X.X%, h100-bf16 X.X%, h200-bf16 X.X%
#define TESTING
#include "train_gpt2.cu"

#ifndef CUDA_HARNESS_SANITIZE
#error "cost_gpt2.cu needs the sanitizer build (-DCUDA_HARNESS_SANITIZE and clang's -fsanitize-coverage)"
#endif

#include <array>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>

namespace san = cuda_harness::san;

// ----------------------------------------------------------------------------
// the model's constants

struct Variant {
    const char* name;
    double bandwidth;  // bytes/s
    double gemm_peak;  // FLOP/s of the cuBLAS calls
};

constexpr double kFp32Peak = 67e12;  // CUDA cores: also what kernels' own FLOPs would run at
constexpr double kFlopEfficiency = 0.7, kBandwidthEfficiency = 0.8, kMinKernel = 2e-6, kBlockingCall = 15e-6;
#ifdef ENABLE_BF16
constexpr double kBf16Peak = 989e12;
constexpr const char* kPrecision = "bf16";
constexpr const char* kPrecisionWords = "bf16 (-DENABLE_BF16: activations, parameters' working copies, gradients and GEMM "
                                            "operands in bf16; masters, AdamW moments, statistics and checksums in fp32)";
constexpr const char* kPeaks = "BF16 tensor 989 TFLOP/s (dense, fp32 accumulation)";
constexpr int kVariants = 2;
const Variant kVariant[kVariants] = {
    {"h100-bf16", 3.35e12, kBf16Peak},
    {"h200-bf16", 4.8e12, kBf16Peak},
};
#else
constexpr double kTf32Peak = 495e12;
constexpr const char* kPrecision = "fp32";
constexpr const char* kPrecisionWords = "fp32";
constexpr const char* kPeaks = "FP32 67 TFLOP/s, TF32 tensor 495 TFLOP/s";
constexpr int kVariants = 4;
const Variant kVariant[kVariants] = {
    {"h100-fp32", 3.35e12, kFp32Peak},
    {"h100-tf32", 3.35e12, kTf32Peak},
    {"h200-fp32", 4.8e12, kFp32Peak},
    {"h200-tf32", 4.8e12, kTf32Peak},
};
#endif

// ----------------------------------------------------------------------------
// one op, its group and its modelled time

enum Group { GEMMS, ATTENTION, ABFT, OTHER, NUM_GROUPS };
const char* const kGroupNames[NUM_GROUPS] = {"GEMMs", "attention's other kernels", "ABFT checks and repairs",
                                             "everything else"};

// An op's counts, as numbers that can be extrapolated.
struct OpCount {
    std::string name;
    san::OpKind kind;
    bool blocking;
    double sectors_read, sectors_written, bytes_read, bytes_written, flops;
};

static OpCount count_of(const san::Op& op) {
    return OpCount{op.name, op.kind, op.blocking, (double)op.sectors_read, (double)op.sectors_written,
                   (double)op.bytes_read, (double)op.bytes_written, op.flops};
}

// Whether the op runs on the device as a launch (a kernel, a GEMM, a memset, a device-to-device copy).
static bool is_launch(const OpCount& op) {
    return op.kind == san::OpKind::Kernel || op.kind == san::OpKind::Gemm || op.kind == san::OpKind::Memset ||
           (op.kind == san::OpKind::Copy && op.bytes_read > 0 && op.bytes_written > 0);
}

// A kernel's name without what LAUNCH's #kernel string adds to it: the parentheses around a
// template with several arguments, LAUNCH((k<A, B>), ...), and the template arguments
// (adamw_kernel<G> is adamw_kernel), so that a kernel is grouped and listed by its name alone.
static std::string base_name(const std::string& launched) {
    std::string name = launched;
    if (!name.empty() && name[0] == '(') { name = name.substr(1); }
    const size_t angle = name.find('<');
    if (angle != std::string::npos) { name = name.substr(0, angle); }
    while (!name.empty() && (name.back() == ')' || name.back() == ' ')) { name.pop_back(); }
    return name;
}

// The group of a launch, from its name.
static Group launch_group(const OpCount& op) {
    if (op.kind == san::OpKind::Gemm) { return GEMMS; }
    if (op.kind != san::OpKind::Kernel) { return OTHER; }
    const std::string name = base_name(op.name);
    if (name.rfind("abft_", 0) == 0) { return ABFT; }
    if (name.find("permute") != std::string::npos || name.find("softmax") != std::string::npos) { return ATTENTION; }
    return OTHER;
}

// The groups of a step's ops: a kernel or a GEMM by its name, a memset or a copy to the device
// by the kernel or GEMM after it, anything else (copies to the host, synchronizations) by the
// one before.
static std::vector<Group> groups_of(const std::vector<OpCount>& ops) {
    const size_t n = ops.size();
    auto named = [](const OpCount& op) { return op.kind == san::OpKind::Kernel || op.kind == san::OpKind::Gemm; };
    std::vector<int> before(n, -1), after(n, -1);
    for (size_t i = 0, last = (size_t)-1; i < n; i++) {
        before[i] = last == (size_t)-1 ? -1 : (int)launch_group(ops[last]);
        if (named(ops[i])) { last = i; }
    }
    for (size_t i = n, next = (size_t)-1; i-- > 0;) {
        after[i] = next == (size_t)-1 ? -1 : (int)launch_group(ops[next]);
        if (named(ops[i])) { next = i; }
    }
    std::vector<Group> groups(n);
    for (size_t i = 0; i < n; i++) {
        const OpCount& op = ops[i];
        const bool forward = op.kind == san::OpKind::Memset || (op.kind == san::OpKind::Copy && op.bytes_written > 0);
        int g = named(op) ? (int)launch_group(op) : forward ? after[i] : before[i];
        if (g < 0) { g = forward ? before[i] : after[i]; }
        groups[i] = g < 0 ? OTHER : (Group)g;
    }
    return groups;
}

// The bytes the model charges an op: distinct sectors for kernels and memsets, operands and
// output for GEMMs, both sides of a device-to-device copy; copies to and from the host are
// not device traffic.
static double model_bytes(const OpCount& op) {
    switch (op.kind) {
    case san::OpKind::Kernel:
    case san::OpKind::Memset: return 32.0 * (op.sectors_read + op.sectors_written);
    case san::OpKind::Gemm: return op.bytes_read + op.bytes_written;
    case san::OpKind::Copy: return is_launch(op) ? op.bytes_read + op.bytes_written : 0.0;
    case san::OpKind::Sync:
    case san::OpKind::Alloc: return 0.0;
    }
    return 0.0;
}

static double model_time(const OpCount& op, const Variant& v) {
    double t = 0.0;
    if (is_launch(op)) {
        const double peak = op.kind == san::OpKind::Gemm ? v.gemm_peak : kFp32Peak;
        t = std::max({op.flops / (kFlopEfficiency * peak), model_bytes(op) / (kBandwidthEfficiency * v.bandwidth),
                      kMinKernel});
    }
    return t + (op.blocking ? kBlockingCall : 0.0);
}

// ----------------------------------------------------------------------------
// a step's cost, by group

struct Cost {
    double launches = 0, bytes = 0, accessed = 0, flops = 0, blocking = 0;
    double time[kVariants] = {};

    void add(const Cost& o, double scale) {
        launches += scale * o.launches;
        bytes += scale * o.bytes;
        accessed += scale * o.accessed;
        flops += scale * o.flops;
        blocking += scale * o.blocking;
        for (int v = 0; v < kVariants; v++) { time[v] += scale * o.time[v]; }
    }
};

struct StepCost {
    Cost group[NUM_GROUPS];

    Cost total() const {
        Cost t;
        for (const Cost& g : group) { t.add(g, 1.0); }
        return t;
    }
};

static void add_op(Cost* c, const OpCount& op) {
    c->launches += is_launch(op) ? 1 : 0;
    c->bytes += model_bytes(op);
    c->accessed += op.kind == san::OpKind::Copy ? 0.0 : op.bytes_read + op.bytes_written;
    c->flops += op.flops;
    c->blocking += op.blocking ? 1 : 0;
    for (int v = 0; v < kVariants; v++) { c->time[v] += model_time(op, kVariant[v]); }
}

static StepCost cost_of(const std::vector<OpCount>& ops) {
    StepCost s;
    const std::vector<Group> groups = groups_of(ops);
    for (size_t i = 0; i < ops.size(); i++) { add_op(&s.group[groups[i]], ops[i]); }
    return s;
}

// a + (b - a) * t, field by field
static StepCost lerp(const StepCost& a, const StepCost& b, double t) {
    StepCost s = a;
    for (int g = 0; g < NUM_GROUPS; g++) {
        s.group[g].add(b.group[g], t);
        s.group[g].add(a.group[g], -t);
    }
    return s;
}

// A step's cost by name: kernels by base_name, GEMMs, memsets, copies and synchronizations by
// their API call. What ABFT costs each kernel (abft on less abft off) comes from these.
typedef std::map<std::string, Cost> NamedCost;

static NamedCost cost_by_name(const std::vector<OpCount>& ops) {
    NamedCost named;
    for (const OpCount& op : ops) { add_op(&named[op.kind == san::OpKind::Kernel ? base_name(op.name) : op.name], op); }
    return named;
}

// a + (b - a) * t over the names of both (a name missing from one costs nothing there)
static NamedCost lerp(const NamedCost& a, const NamedCost& b, double t) {
    NamedCost s = a;
    for (const auto& [name, cost] : b) { s[name].add(cost, t); }
    for (const auto& [name, cost] : a) { s[name].add(cost, -t); }
    return s;
}

// ----------------------------------------------------------------------------
// counting a step

// What a step is counted with: ABFT off, on (the attention's GEMMs, the default scope), and
// on for every GEMM (-abft_scope all).
enum Setting { ABFT_OFF, ABFT_ON, ABFT_ALL, NUM_SETTINGS };
const char* const kSettingNames[NUM_SETTINGS] = {"abft off", "abft on ", "abft all"};

// The backward pass in the parts after which the all-reduce can start on their gradients
// (gradient_ready): the LM head with the final layernorm, a layer (each is the same), the
// embeddings.
enum BackwardPart { BACKWARD_HEAD, BACKWARD_LAYER, BACKWARD_EMBEDDINGS, NUM_BACKWARD_PARTS };

struct Counted {
    int B, L;
    std::vector<OpCount> ops[NUM_SETTINGS];  // the ops of one step in each setting
    int allocations[NUM_SETTINGS] = {};      // cudaMalloc and cudaFree calls in the step
    std::vector<OpCount> allreduce_check;    // count_allreduce_check's
    std::vector<OpCount> backward[NUM_BACKWARD_PARTS]; // count_backward_parts' (abft on), when asked for
};

static std::vector<OpCount> count_allreduce_check(GPT2* model);
static void count_backward_parts(GPT2* model, const int* x, const int* y, Counted* c);

// The ops of one step, but cudaMalloc and cudaFree, which are counted apart.
static std::vector<OpCount> counted_step(GPT2* model, const int* x, const int* y, Setting setting, int step,
                                         int* allocations) {
    model->abft.cfg.enabled = setting != ABFT_OFF;
    model->abft.cfg.scope = setting == ABFT_ALL ? ABFT_SCOPE_ALL : ABFT_SCOPE_ATTN;
    model->abft.step = step;
    san::ops().clear();
    san::record(true);
    AdamWStep opt; // the default step: the gradient norm is computed whether or not it clips
    opt.lr = 1e-4f;
    const long detected = abft_total_detected(model->abft.n);
    gpt2_train_step(model, x, y, opt, step + 1);
    san::record(false);
    // the step has no faults: an alarm would add its repair or a redone pass to the counts
    const long alarms = abft_total_detected(model->abft.n) - detected;
    if (alarms != 0) {
        die("cost", "a false alarm: the counts would include its repair; see the checks' tolerances in llmc/abft_core.h",
            "%ld checks fired in a fault-free step (B=%d L=%d, %s)", alarms, model->B, model->config.num_layers,
            setting == ABFT_ALL ? "-abft_scope all" : "abft on");
    }
    std::vector<OpCount> ops;
    for (const san::Op& op : san::ops()) {
        if (op.kind == san::OpKind::Alloc) {
            (*allocations)++;
        } else {
            ops.push_back(count_of(op));
        }
    }
    return ops;
}

constexpr int kT = 1024, kC = 768, kNH = 12, kV = 50257, kVp = 50304;

// A step at (B, L) in each setting, the all-reduce's check and, with `parts`, the backward
// pass's parts.
static Counted count(int B, int L, bool parts) {
    const auto start = std::chrono::steady_clock::now();
    GPT2Config config{kT, kV, kVp, L, kNH, kC};
    GPT2 model;
    gpt2_build_from_random(&model, config, 1234);
    gpt2_allocate_activations(&model, B, kT);
    model.abft.cfg.verbose = false;
    uint64_t seed = 42;
    std::vector<int> tokens((size_t)B * kT + 1);
    for (int& t : tokens) { t = (int)(random_u32(&seed) % (uint32_t)kV); }
    const int* x = tokens.data();
    const int* y = tokens.data() + 1;
    Counted c;
    c.B = B;
    c.L = L;
    int warm_up = 0;
    counted_step(&model, x, y, ABFT_ALL, 0, &warm_up);  // first-use allocations
    for (int v = 0; v < NUM_SETTINGS; v++) { c.ops[v] = counted_step(&model, x, y, (Setting)v, 1 + v, &c.allocations[v]); }
    c.allreduce_check = count_allreduce_check(&model);
    if (parts) { count_backward_parts(&model, x, y, &c); }
    gpt2_free(&model);
    fprintf(stderr, "counted B=%d L=%d in %.0f s\n", B, L,
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    return c;
}

// Each op's counts extrapolated linearly in B, from a step counted at B1 and at B2 (the same
// launches in the same order).
static std::vector<OpCount> extrapolate_ops(const std::vector<OpCount>& a, int B1, const std::vector<OpCount>& b,
                                            int B2, int B) {
    if (a.size() != b.size()) {
        die("cost", "the launch sequence must not depend on B", "%zu ops at B=%d, %zu at B=%d", a.size(), B1, b.size(), B2);
    }
    const double t = (double)(B - B1) / (B2 - B1);
    std::vector<OpCount> out = a;
    for (size_t i = 0; i < a.size(); i++) {
        if (a[i].name != b[i].name) {
            die("cost", "the launch sequence must not depend on B", "op %zu is %s at B=%d, %s at B=%d", i,
                a[i].name.c_str(), B1, b[i].name.c_str(), B2);
        }
        auto at = [t](double x, double y) { return x + (y - x) * t; };
        out[i].sectors_read = at(a[i].sectors_read, b[i].sectors_read);
        out[i].sectors_written = at(a[i].sectors_written, b[i].sectors_written);
        out[i].bytes_read = at(a[i].bytes_read, b[i].bytes_read);
        out[i].bytes_written = at(a[i].bytes_written, b[i].bytes_written);
        out[i].flops = at(a[i].flops, b[i].flops);
    }
    return out;
}

// The four counted corners (B1, B2) x (L1, L2), and the step's cost at any (B, L) from them.
struct Corners {
    int B1, B2, L1, L2;
    Counted c11, c21, c12, c22;  // c<b><l>

    StepCost at(int B, int L, Setting v) const {
        const StepCost l1 = cost_of(extrapolate_ops(c11.ops[v], B1, c21.ops[v], B2, B));
        const StepCost l2 = cost_of(extrapolate_ops(c12.ops[v], B1, c22.ops[v], B2, B));
        return lerp(l1, l2, (double)(L - L1) / (L2 - L1));
    }

    NamedCost named(int B, int L, Setting v) const {
        const NamedCost l1 = cost_by_name(extrapolate_ops(c11.ops[v], B1, c21.ops[v], B2, B));
        const NamedCost l2 = cost_by_name(extrapolate_ops(c12.ops[v], B1, c22.ops[v], B2, B));
        return lerp(l1, l2, (double)(L - L1) / (L2 - L1));
    }
};

// ----------------------------------------------------------------------------
// data parallel: the gradient's all-reduce, overlapped with the backward pass (gradient_ready),
// and its check (ranks_reduce), at 8 ranks

constexpr int kRanks = 8;
// Bytes/s per GPU and direction: NVLink 4 through NVSwitch (an 8-GPU H100/H200 SXM node) and
// one InfiniBand NDR port (400 Gb/s) per GPU between nodes; NCCL is modelled at 80% of it, as
// HBM, plus a latency per collective call.
constexpr double kNvlink = 450e9, kInfiniband = 50e9, kNcclCallLatency = 20e-6;

// What a rank's check of the all-reduce adds to its own kernels, counted on this model's
// gradient: the bucket sums of its gradient, and the norm's pass over the averaged gradient with
// and without the buckets' comparison (the sums are this rank's: the comparison passes).
static std::vector<OpCount> count_allreduce_check(GPT2* model) {
    const long n = (long)model->num_parameters, buckets = buckets_of(n);
    float* chk = gpu_alloc(2 * (size_t)buckets, "all-reduce checksums");
    int* flags = nullptr;
    cudaCheck(cudaMalloc(&flags, (buckets + 1) * sizeof(int)));
    const float u = sizeof(floatX) == sizeof(float) ? FP32_UNIT_ROUNDOFF : ABFT_BF16_UNIT_ROUNDOFF;
    const BucketCheck check = {chk, flags, AbftFixer{AbftGemm{}, nullptr, {}, 2.0f, 0.0f}, kRanks, u};
    san::ops().clear();
    san::record(true);
    LAUNCH(bucket_sums_kernel<floatX>, (int)buckets, BLOCK, 0, 0)(chk, flags + buckets, model->grads_memory, n);
    LAUNCH(grad_norm_partial_kernel<floatX>, norm_blocks(n), BLOCK, 0, 0)(model->norm_partial, model->grads_memory, n, check);
    LAUNCH(grad_norm_partial_kernel<floatX>, norm_blocks(n), BLOCK, 0, 0)(model->norm_partial, model->grads_memory, n,
                                                                         BucketCheck{});
    san::record(false);
    cudaCheck(cudaFree(chk));
    cudaCheck(cudaFree(flags));
    std::vector<OpCount> ops;
    for (const san::Op& op : san::ops()) { ops.push_back(count_of(op)); }
    if (ops.size() != 3) { die("cost", "internal error", "%zu ops counted for the all-reduce's check, expected 3", ops.size()); }
    return ops;
}

// The ops of what run() queues, but cudaMalloc and cudaFree.
template <typename Run>
static std::vector<OpCount> ops_of(Run run) {
    san::ops().clear();
    san::record(true);
    run();
    san::record(false);
    std::vector<OpCount> ops;
    for (const san::Op& op : san::ops()) {
        if (op.kind != san::OpKind::Alloc) { ops.push_back(count_of(op)); }
    }
    return ops;
}

// The backward pass of a step with ABFT on (the default scope), as gpt2_backward runs it, in
// its parts (BackwardPart), after a forward pass that is not counted.
static void count_backward_parts(GPT2* model, const int* x, const int* y, Counted* c) {
    model->abft.cfg.enabled = true;
    model->abft.cfg.scope = ABFT_SCOPE_ATTN;
    const long detected = abft_total_detected(model->abft.n);
    gpt2_forward(model, x, y, true);
    const int L = model->config.num_layers;
    c->backward[BACKWARD_HEAD] = ops_of([&] { head_backward(model); });
    c->backward[BACKWARD_LAYER] = ops_of([&] { block_backward(model, L - 1); });
    for (int l = L - 2; l >= 0; l--) { block_backward(model, l); }
    c->backward[BACKWARD_EMBEDDINGS] = ops_of([&] {
        encoder_backward(model->grads.wte, model->grads.wpe, model->grads_acts.residual, model->buckets, model->B, model->T,
                         model->config.channels);
    });
    abft_gpu_log_fetch();
    gpt2_synchronize(model);
    if (!gpt2_settle(model) || abft_total_detected(model->abft.n) != detected) {
        die("cost", "a false alarm: see the checks' tolerances in llmc/abft_core.h",
            "a check fired in the fault-free backward pass counted in parts (B=%d L=%d)", model->B, L);
    }
}

static double time_of(const std::vector<OpCount>& ops, const Variant& v) {
    double t = 0.0;
    for (const OpCount& op : ops) { t += model_time(op, v); }
    return t;
}

// One NCCL ring all-reduce call of `bytes` at link bandwidth bw: each rank sends and receives
// 2(R-1)/R of the buffer.
static double allreduce_seconds(double bytes, double bw) {
    return 2.0 * (kRanks - 1) / kRanks * bytes / (kBandwidthEfficiency * bw) + kNcclCallLatency;
}

// The gradient's all-reduce as the trainer queues it: each part's average on the NCCL stream
// once the backward pass has finished the part, the stream running them one after another.
struct Overlap {
    double backward; // the backward pass's time
    double nccl;     // when the last part's average ends, from the backward pass's start
    double total;    // the averages' time on the NCCL stream, idle gaps aside
};

static Overlap overlap_of(const std::vector<OpCount>* parts, const Variant& v, double bw, int L) {
    GPT2Config one_layer{kT, kV, kVp, 1, kNH, kC}, no_layer{kT, kV, kVp, 0, kNH, kC};
    const double layer = (double)(count_parameters(one_layer) - count_parameters(no_layer)); // its parameters
    const double lnf = 2.0 * kC, embeddings = (double)kVp * kC + (double)kT * kC;
    const double head = time_of(parts[BACKWARD_HEAD], v), block = time_of(parts[BACKWARD_LAYER], v);
    Overlap o{head + L * block + time_of(parts[BACKWARD_EMBEDDINGS], v), 0.0, 0.0};
    auto queue = [&](double ready, double elements) {
        const double t = allreduce_seconds(elements * sizeof(floatX), bw);
        o.nccl = std::max(o.nccl, ready) + t;
        o.total += t;
    };
    queue(head, lnf);
    for (int l = 1; l <= L; l++) { queue(head + l * block, layer); }
    queue(o.backward, embeddings);
    return o;
}

// The all-reduce of a one-micro-batch step at kRanks ranks (the gradient in floatX, as make
// cost's step), overlapped with the backward pass, and what its check adds: the traffic each
// rank sends (and receives) with NCCL's ring, and the modelled time on NVLink and InfiniBand,
// against the step with ABFT on. After the backward pass the compute stream sums its buckets
// while the NCCL stream may still average the last parts; the checksums' average follows both,
// then the update's gate.
static void print_data_parallel(const std::vector<OpCount>& check_ops, const std::vector<OpCount>* parts,
                                const StepCost& on, int L) {
    GPT2Config config{kT, kV, kVp, L, kNH, kC};
    const double n = (double)count_parameters(config), buckets = (double)buckets_of((long)n);
    const double ring = 2.0 * (kRanks - 1) / kRanks; // of the buffer, each rank sends and receives
    const double gradient = ring * n * sizeof(floatX), checksums = ring * buckets * 2 * sizeof(float);
    const double gate = ring * sizeof(int);
    printf("data parallel at %d ranks (a model, not a measurement: the step above on each rank, with NCCL's ring\n"
           "all-reduce of the gradient in %d parts, each queued when the backward pass has finished it (the final\n"
           "layernorm's, the layers', the embeddings'), on one NCCL stream; NCCL at 80%% of NVLink 4 (450 GB/s per GPU\n"
           "and direction, an 8-GPU node) or of one InfiniBand NDR port per GPU (50 GB/s), plus %.0f us per collective\n"
           "call; what NCCL's kernels take from the backward pass's bandwidth is not modelled):\n",
           kRanks, L + 2, 1e6 * kNcclCallLatency);
    printf("  NCCL traffic per rank per step, sent and received each: the gradient %.1f MB (%.0f parameters in %s), "
           "the check's bucket checksums %.3f MB (%.0f buckets x 2 floats), the update gate %.0f B\n",
           gradient / 1e6, n, kPrecision, checksums / 1e6, buckets, gate);
    const OpCount &sums = check_ops[0], &checked = check_ops[1], &plain = check_ops[2];
    printf("  the check's kernels per rank: the bucket sums %.1f MB, the comparison in the norm's pass +%.2f MB\n",
           model_bytes(sums) / 1e6, (model_bytes(checked) - model_bytes(plain)) / 1e6);
    for (int v = 0; v < kVariants; v++) {
        for (const auto& [link, bw] : {std::pair<const char*, double>{"NVLink", kNvlink}, {"InfiniBand", kInfiniband}}) {
            const Overlap o = overlap_of(parts, kVariant[v], bw, L);
            const double exposed = o.nccl - o.backward; // what the update waits for, unchecked
            const double step = on.total().time[v] + exposed;
            const double checked_end = std::max(o.nccl, o.backward + model_time(sums, kVariant[v])) +
                                       allreduce_seconds(checksums / ring, bw);
            const double verify = checked_end - o.nccl + model_time(checked, kVariant[v]) - model_time(plain, kVariant[v]) +
                                  allreduce_seconds(gate / ring, bw);
            printf("  %-10s %-10s all-reduce %6.2f ms, %6.2f ms of it after the backward pass (%5.2f ms); step with it "
                   "%7.2f ms; the verified all-reduce adds %5.1f us: %.2f%%\n",
                   kVariant[v].name, link, 1e3 * o.total, 1e3 * exposed, 1e3 * o.backward, 1e3 * step, 1e6 * verify,
                   100.0 * verify / step);
        }
    }
    printf("\n");
}

// ----------------------------------------------------------------------------
// printing a build's section

static double percent(double a, double b) { return b != 0.0 ? 100.0 * (a / b - 1.0) : 0.0; }

static void print_table(const char* title, const StepCost& s) {
    printf("%s\n", title);
    printf("  %-27s %9s %11s %13s %10s %9s\n", "group", "launches", "MB", "MB accessed", "GFLOP", "blocking");
    auto row = [](const char* name, const Cost& c) {
        printf("  %-27s %9.0f %11.1f %13.1f %10.1f %9.0f\n", name, c.launches, c.bytes / 1e6, c.accessed / 1e6,
               c.flops / 1e9, c.blocking);
    };
    for (int g = 0; g < NUM_GROUPS; g++) { row(kGroupNames[g], s.group[g]); }
    row("total", s.total());
    printf("  modelled time:");
    for (int v = 0; v < kVariants; v++) { printf(" %s %.2f ms%s", kVariant[v].name, 1e3 * s.total().time[v], v + 1 < kVariants ? "," : ""); }
    printf("\n\n");
}

// What ABFT costs each kernel: abft on less abft off, per name, the largest first; a kernel
// that both run (the attention's, whose fused checks add reads) shows what the checks add to
// it. The rows sum to the difference of the totals.
static void print_by_kernel(const char* title, const NamedCost& on, const NamedCost& off) {
    std::vector<std::pair<std::string, Cost>> rows;
    Cost sum;
    for (const auto& [name, cost] : on) {
        Cost d = cost;
        const auto it = off.find(name);
        if (it != off.end()) { d.add(it->second, -1.0); }
        rows.emplace_back(name, d);
    }
    for (const auto& [name, cost] : off) {
        if (on.count(name) == 0) {
            Cost d;
            d.add(cost, -1.0);
            rows.emplace_back(name, d);
        }
    }
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.time[0] > b.second.time[0]; });
    printf("%s\n", title);
    printf("  %-38s %9s %10s %10s", "kernel (or call)", "launches", "MB", "host syncs");
    for (int v = 0; v < kVariants; v++) { printf(" %11s", (std::string(kVariant[v].name) + " us").c_str()); }
    printf("\n");
    auto row = [](const std::string& name, const Cost& c) {
        printf("  %-38s %+9.0f %+10.1f %+10.0f", name.c_str(), c.launches, c.bytes / 1e6, c.blocking);
        for (int v = 0; v < kVariants; v++) { printf(" %+11.1f", 1e6 * c.time[v]); }
        printf("\n");
    };
    for (const auto& [name, d] : rows) {
        // what rounding leaves of an unchanged kernel (its extrapolated counts) is no difference
        const bool differs = fabs(d.launches) > 0.5 || fabs(d.bytes) > 5e4 || fabs(d.blocking) > 0.5 || fabs(d.time[0]) > 5e-8;
        if (differs) { row(name, d); }
        sum.add(d, 1.0);
    }
    row("total", sum);
    printf("\n");
}

// The extrapolation against a direct count: every total within 1%.
static bool check_extrapolation(const char* label, const StepCost& predicted, const StepCost& counted) {
    const Cost p = predicted.total(), c = counted.total();
    std::vector<std::string> names = {"launches", "MB", "MB accessed", "GFLOP", "blocking"};
    std::vector<std::array<double, 2>> fields = {{p.launches, c.launches}, {p.bytes, c.bytes}, {p.accessed, c.accessed},
                                                 {p.flops, c.flops}, {p.blocking, c.blocking}};
    std::vector<double> scale = {1, 1e-6, 1e-6, 1e-9, 1};
    for (int v = 0; v < kVariants; v++) {
        names.push_back(std::string(kVariant[v].name) + " ms");
        fields.push_back({p.time[v], c.time[v]});
        scale.push_back(1e3);
    }
    double worst = 0.0;
    printf("  %s:", label);
    for (size_t i = 0; i < fields.size(); i++) {
        const double err = fabs(percent(fields[i][0], fields[i][1]));
        worst = std::max(worst, err);
        printf("%s %s %.2f vs %.2f", i > 0 ? "," : "", names[i].c_str(), fields[i][0] * scale[i], fields[i][1] * scale[i]);
    }
    const bool ok = worst <= 1.0;
    printf("; largest difference %.3f%% (%s)\n", worst, ok ? "within 1%" : "OVER 1%");
    return ok;
}

// ----------------------------------------------------------------------------
// a build's totals, as a file: what -compare puts side by side

// One row of a build's figures at B=8 L=12: a group's or the step's (NUM_GROUPS).
struct TotalsRow {
    double launches = 0, bytes = 0, accessed = 0, flops = 0, blocking = 0;
    std::vector<double> time;  // seconds, per variant
};

struct Totals {
    std::string precision;
    std::vector<std::string> variants;
    TotalsRow row[NUM_SETTINGS][NUM_GROUPS + 1];
};

static Totals totals_of(const StepCost (&steps)[NUM_SETTINGS]) {
    Totals t;
    t.precision = kPrecision;
    for (int v = 0; v < kVariants; v++) { t.variants.push_back(kVariant[v].name); }
    for (int s = 0; s < NUM_SETTINGS; s++) {
        for (int g = 0; g <= NUM_GROUPS; g++) {
            const Cost c = g < NUM_GROUPS ? steps[s].group[g] : steps[s].total();
            TotalsRow& r = t.row[s][g];
            r = TotalsRow{c.launches, c.bytes, c.accessed, c.flops, c.blocking, std::vector<double>(c.time, c.time + kVariants)};
        }
    }
    return t;
}

static const char* const kTotalsMagic = "cost_gpt2-totals-1";

static void write_totals(const char* path, const Totals& t) {
    FILE* f = fopen(path, "w");
    if (f == nullptr) { die("cost", "", "cannot write %s", path); }
    fprintf(f, "%s %s %zu", kTotalsMagic, t.precision.c_str(), t.variants.size());
    for (const std::string& v : t.variants) { fprintf(f, " %s", v.c_str()); }
    fprintf(f, "\n");
    for (int s = 0; s < NUM_SETTINGS; s++) {
        for (int g = 0; g <= NUM_GROUPS; g++) {
            const TotalsRow& r = t.row[s][g];
            fprintf(f, "%d %d %.17g %.17g %.17g %.17g %.17g", s, g, r.launches, r.bytes, r.accessed, r.flops, r.blocking);
            for (double x : r.time) { fprintf(f, " %.17g", x); }
            fprintf(f, "\n");
        }
    }
    if (fclose(f) != 0) { die("cost", "", "cannot write %s", path); }
}

static Totals read_totals(const char* path) {
    std::ifstream in(path);
    std::string magic;
    size_t variants = 0;
    Totals t;
    if (!(in >> magic >> t.precision >> variants) || magic != kTotalsMagic) {
        die("cost", "make cost writes them: cost_gpt2 -totals FILE", "%s is not a totals file", path);
    }
    t.variants.resize(variants);
    for (std::string& v : t.variants) { in >> v; }
    for (int s = 0; s < NUM_SETTINGS; s++) {
        for (int g = 0; g <= NUM_GROUPS; g++) {
            int rs = -1, rg = -1;
            TotalsRow& r = t.row[s][g];
            r.time.resize(variants);
            in >> rs >> rg >> r.launches >> r.bytes >> r.accessed >> r.flops >> r.blocking;
            for (double& x : r.time) { in >> x; }
            if (!in || rs != s || rg != g) { die("cost", "make cost writes them: cost_gpt2 -totals FILE", "%s is cut short", path); }
        }
    }
    return t;
}

// ----------------------------------------------------------------------------
// the closing lines, over one build or two

// Per build a line of ABFT's counts per step; then its modelled overhead over every variant of
// every build, on one line.
static void print_overhead(const char* prefix, const std::vector<Totals>& builds, Setting on) {
    for (const Totals& t : builds) {
        const TotalsRow &a = t.row[on][NUM_GROUPS], &o = t.row[ABFT_OFF][NUM_GROUPS];
        printf("%sabft cost per step, %s: %+.1f%% bytes, %+.1f%% flops, %+.0f launches, %+.0f host syncs\n", prefix,
               t.precision.c_str(), percent(a.bytes, o.bytes), percent(a.flops, o.flops), a.launches - o.launches,
               a.blocking - o.blocking);
    }
    printf("%smodelled abft overhead:", prefix);
    const char* sep = "";
    for (const Totals& t : builds) {
        const TotalsRow &a = t.row[on][NUM_GROUPS], &o = t.row[ABFT_OFF][NUM_GROUPS];
        for (size_t v = 0; v < t.variants.size(); v++) {
            printf("%s %s %.1f%%", sep, t.variants[v].c_str(), percent(a.time[v], o.time[v]));
            sep = ",";
        }
    }
    printf("\n");
}

static void print_closing(const std::vector<Totals>& builds) {
    // every GEMM (-abft_scope all) first; the default scope's lines close the output
    print_overhead("-abft_scope all: ", builds, ABFT_ALL);
    print_overhead("", builds, ABFT_ON);
}

// The two builds side by side: what bf16 saves in bytes, group by group, and the closing lines.
static int compare(const char* fp32_path, const char* bf16_path) {
    const Totals f = read_totals(fp32_path), b = read_totals(bf16_path);
    if (f.precision != "fp32" || b.precision != "bf16") {
        die("cost", "cost_gpt2 -compare FP32_TOTALS BF16_TOTALS", "%s is %s, %s is %s", fp32_path, f.precision.c_str(),
            bf16_path, b.precision.c_str());
    }
    printf("bf16 build against fp32 build: bytes per step (MB as the model charges them) and launches, the same step "
           "extrapolated to B=8 L=12\n");
    printf("  %-9s %-27s %11s %11s %10s %14s %14s\n", "setting", "group", "fp32 MB", "bf16 MB", "bf16/fp32",
           "fp32 launches", "bf16 launches");
    for (int s = 0; s < NUM_SETTINGS; s++) {
        for (int g = 0; g <= NUM_GROUPS; g++) {
            const TotalsRow &rf = f.row[s][g], &rb = b.row[s][g];
            char ratio[32] = "-";
            if (rf.bytes > 0) { snprintf(ratio, sizeof ratio, "%.3f", rb.bytes / rf.bytes); }
            printf("  %-9s %-27s %11.1f %11.1f %10s %14.0f %14.0f\n", g == 0 ? kSettingNames[s] : "",
                   g < NUM_GROUPS ? kGroupNames[g] : "total", rf.bytes / 1e6, rb.bytes / 1e6, ratio, rf.launches,
                   rb.launches);
        }
    }
    printf("modelled step time in ms, both builds (a roofline model, not a measurement):\n");
    for (const Totals* t : {&f, &b}) {
        for (size_t v = 0; v < t->variants.size(); v++) {
            printf("  %-10s abft off %8.2f, abft on %8.2f, abft all %8.2f\n", t->variants[v].c_str(),
                   1e3 * t->row[ABFT_OFF][NUM_GROUPS].time[v], 1e3 * t->row[ABFT_ON][NUM_GROUPS].time[v],
                   1e3 * t->row[ABFT_ALL][NUM_GROUPS].time[v]);
        }
    }
    printf("\n");
    print_closing({f, b});
    return 0;
}

// ----------------------------------------------------------------------------
// main

static void usage() {
    fprintf(stderr, "usage: cost_gpt2 [-totals FILE] | cost_gpt2 -compare FP32_TOTALS BF16_TOTALS "
                    "(dev/harness/cost_gpt2.cu; make cost runs both)\n");
    exit(EXIT_FAILURE);
}

int main(int argc, char** argv) {
    const char* totals_path = nullptr;
    if (argc == 4 && strcmp(argv[1], "-compare") == 0) { return compare(argv[2], argv[3]); }
    if (argc == 3 && strcmp(argv[1], "-totals") == 0) {
        totals_path = argv[2];
    } else if (argc != 1) {
        usage();
    }
    cuda_require_device();
    san::configure(false, false);  // counting only: no racecheck or initcheck shadow
    const int B = 8, L = 12, BV = 3, LV = 3;
    printf("cost of one training step of the CUDA trainer built in %s (forward, backward, AdamW), GPT-2 124M shapes:\n",
           kPrecision);
    printf("L=%d C=%d NH=%d V=%d T=%d B=%d, %s, counted through the CPU harness (dev/harness/cost_gpt2.cu)\n\n", L,
           kC, kNH, kV, kT, B, kPrecisionWords);

    // the backward pass's parts at L=1 (a layer's are the same at any L)
    const Corners k{1, 2, 1, 2, count(1, 1, true), count(2, 1, true), count(1, 2, false), count(2, 2, false)};
    const Counted direct = count(BV, LV, false);

    printf("extrapolation (counted at B=1,2 x L=1,2; linear in B per launch, then in L), checked against B=%d L=%d "
           "counted directly, extrapolated vs counted:\n", BV, LV);
    bool ok = true;
    for (int v = 0; v < NUM_SETTINGS; v++) {
        ok = check_extrapolation(kSettingNames[v], k.at(BV, LV, (Setting)v), cost_of(direct.ops[v])) && ok;
    }
    printf("\n");

    const StepCost steps[NUM_SETTINGS] = {k.at(B, L, ABFT_OFF), k.at(B, L, ABFT_ON), k.at(B, L, ABFT_ALL)};
    print_table("abft off (extrapolated to B=8 L=12)", steps[ABFT_OFF]);
    print_table("abft on (extrapolated to B=8 L=12)", steps[ABFT_ON]);
    print_table("abft on, -abft_scope all: every GEMM checked (extrapolated to B=8 L=12)", steps[ABFT_ALL]);
    print_by_kernel("abft on less abft off, by kernel (extrapolated to B=8 L=12; modelled time in us)",
                    k.named(B, L, ABFT_ON), k.named(B, L, ABFT_OFF));

    // the check's kernels read the gradient: linear in L, as the step
    std::vector<OpCount> parts[NUM_BACKWARD_PARTS];
    for (int p = 0; p < NUM_BACKWARD_PARTS; p++) { parts[p] = extrapolate_ops(k.c11.backward[p], k.B1, k.c21.backward[p], k.B2, B); }
    print_data_parallel(extrapolate_ops(k.c11.allreduce_check, k.L1, k.c12.allreduce_check, k.L2, L), parts,
                        steps[ABFT_ON], L);
    printf("cudaMalloc and cudaFree calls per step, as counted (outside the model; on a GPU cudaFree also waits for "
           "the device):\n");
    for (const Counted* c : {&k.c11, &k.c21, &k.c12, &k.c22, &direct}) {
        printf("  B=%d L=%d: abft off %d, abft on %d, abft all %d\n", c->B, c->L, c->allocations[ABFT_OFF],
               c->allocations[ABFT_ON], c->allocations[ABFT_ALL]);
    }
    printf("\n");
    printf("modelled step time, %s build (a roofline model, not a measurement: per kernel max(FLOPs/(0.7 peak), "
           "bytes/(0.8 bandwidth), 2 us), plus 15 us per blocking host call;\n", kPrecision);
    printf("peaks %s; HBM 3.35 TB/s (H100 SXM), 4.8 TB/s (H200)):\n", kPeaks);
    for (int v = 0; v < kVariants; v++) {
        printf("  modelled %-10s abft off %8.2f ms, abft on %8.2f ms, abft all %8.2f ms\n", kVariant[v].name,
               1e3 * steps[ABFT_OFF].total().time[v], 1e3 * steps[ABFT_ON].total().time[v],
               1e3 * steps[ABFT_ALL].total().time[v]);
    }
    printf("\n");
    const Totals totals = totals_of(steps);
    if (totals_path != nullptr) {
        write_totals(totals_path, totals);  // the closing lines come from -compare, over both builds
    } else {
        print_closing({totals});
    }
    if (!ok) {
        fprintf(stderr, "error: cost: the extrapolation differs from the direct count by more than 1%%\n");
        return 1;
    }
    return 0;
}
