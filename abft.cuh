// abft.cuh: ATTNChecker, checksum-based fault tolerance for the attention GEMMs (and, with
// -abft_scope all, for every GEMM of the step): the header a trainer includes.
//
// After "Light-Weight Fault Tolerant Attention for Large Language Model Training"
// (arXiv 2410.11720). Every protected GEMM C = alpha·A·B + bias is checked against checksums
// of its operands right after it runs. A fault (INF, NaN, a huge value, or any element off by
// more than fp32 rounding can explain) is detected, located and rebuilt in place; what the
// checksums cannot rebuild climbs a ladder: recompute the GEMM (here), recompute the layer
// (llmc/gpt2_block.h), redo the step (llmc/trainer.h). No step is lost, no checkpoint reloaded.
// Beyond the paper: the 8 backward GEMMs are protected too, every GEMM verifies its own
// output, so no corrupted Q, K, V or S stays in the activations the backward pass reads, and
// -abft_scope all takes in the MLP's and the LM head's GEMMs with the same checks, and the
// kernels between the GEMMs with invariants of their outputs (llmc/abft_invariants.h).
// docs/ABFT.md has the algorithm and the derivation of its tolerances.
//
// The pieces, one concern each:
//   abft.cuh               the protected GEMMs (the attention's 12 a layer; the MLP's 6 and
//                          the LM head's 3 with -abft_scope all), their descriptors, and the
//                          protected GEMM itself: abft_gemm, abft_verify (this file)
//   llmc/abft_core.h       the checksum core: detect (abft_check_columns), locate and repair
//                          (abft_repair, abft_judge, abft_apply), the tolerance
//   llmc/abft_faults.h     settings and counters (Abft), fault injection (-fi), the flags,
//                          the summary and the JSON report
//   llmc/abft_gpu.cuh      the GPU path (CUDA builds): abft_gpu_verify and its kernels
//   llmc/abft_invariants.h the checks of the kernels that are not GEMMs: softmax, layernorm,
//                          residual adds, GELU, loss, dlogits, AdamW
//
// Reading path: abft_gemm → abft_verify → abft_check_columns (detect) → abft_repair (locate
// with abft_judge, rebuild with abft_apply).
#pragma once

#include "llmc/abft_core.h"

// ----------------------------------------------------------------------------
// the protected ops: 12 GEMMs in each layer's attention (ATTNChecker's scope), 6 in each
// layer's MLP and 3 in the LM head, and 10 kernels checked by invariants (with -abft_scope all:
// every GEMM and kernel of the step)
// B = batch, T = sequence length, C = channels, NH = heads, HS = C/NH, Vp = padded vocabulary

enum AbftOp {
    // attention, forward
    OP_QKV,       // qkv  = ln1 · Wqkvᵀ + bqkv         (B·T, 3C)
    OP_QK,        // S    = Q · Kᵀ / √HS               (B·NH) × (T, T)
    OP_PV,        // Y    = P · V                      (B·NH) × (T, HS)
    OP_PROJ,      // out  = Y · Wprojᵀ + bproj         (B·T, C)
    // attention, backward
    OP_PROJ_DX,   // dY   = dout · Wproj               (B·T, C)
    OP_PROJ_DW,   // dWproj = doutᵀ · Y                (C, C)
    OP_PV_DP,     // dP   = dY · Vᵀ                    (B·NH) × (T, T)
    OP_PV_DV,     // dV   = Pᵀ · dY                    (B·NH) × (T, HS)
    OP_QK_DQ,     // dQ   = dS · K / √HS               (B·NH) × (T, HS)
    OP_QK_DK,     // dK   = dSᵀ · Q / √HS              (B·NH) × (T, HS)
    OP_QKV_DX,    // dln1 = dqkv · Wqkv                (B·T, C)
    OP_QKV_DW,    // dWqkv = dqkvᵀ · ln1               (3C, C)
    // MLP (-abft_scope all)
    OP_FC,        // fch  = ln2 · Wfcᵀ + bfc           (B·T, 4C)
    OP_FCPROJ,    // out  = gelu · Wfcprojᵀ + bfcproj  (B·T, C)
    OP_FCPROJ_DX, // dgelu = dout · Wfcproj            (B·T, 4C)
    OP_FCPROJ_DW, // dWfcproj = doutᵀ · gelu           (C, 4C)
    OP_FC_DX,     // dln2 = dfch · Wfc                 (B·T, C)
    OP_FC_DW,     // dWfc = dfchᵀ · ln2                (4C, C)
    // LM head (-abft_scope all), once per step: its layer is 0
    OP_LM,        // logits = lnf · wteᵀ               (B·T, Vp)
    OP_LM_DX,     // dlnf = dlogits · wte              (B·T, C)
    OP_LM_DW,     // dwte = dlogitsᵀ · lnf             (Vp, C)
    // the kernels that are not GEMMs (-abft_scope all), checked by an invariant of their output
    // (llmc/abft_invariants.h); the output a fault lands in, as (rows, columns):
    OP_LN1,       // ln1's normalized rows: mean 0, variance 1   (B·T, C)
    OP_SOFTMAX,   // P = softmax(S): rows sum to 1, in [0, 1]     (B·NH·T, T)
    OP_RES2,      // residual2 = residual + attproj, to rounding (B·T, C)
    OP_LN2,       // ln2's normalized rows                       (B·T, C)
    OP_GELU,      // gelu(x): between x/2 and x, at least -0.17  (B·T, 4C)
    OP_RES3,      // residual3 = residual2 + fcproj             (B·T, C)
    // once per step: their layer is 0
    OP_LNF,       // lnf's normalized rows                       (B·T, C)
    OP_LOSS,      // the losses: in [0, max logit − target logit + ln V]   (B·T, 1)
    OP_DLOGITS,   // dlogits: rows sum to 0, |x| <= 1/(B·T)      (B·T, V)
    OP_ADAMW,     // the update: |step| <= its bias-corrected bound          (params/C, C)
    // across the ranks of a data-parallel run (llmc/ranks.h), once per step: its layer is 0
    OP_ALLREDUCE, // the gradient's average: each bucket sums to the ranks' checksums, averaged
    ABFT_NUM_OPS
};
constexpr int ABFT_NUM_LOCAL_OPS = OP_ALLREDUCE; // the ops of one process
constexpr int ABFT_NUM_ATTN_OPS = OP_FC;  // the attention's, ATTNChecker's own scope
constexpr int ABFT_NUM_GEMM_OPS = OP_LN1; // the GEMMs; the ops after them are kernels

// Whether op runs once per step (the LM head's GEMMs and the kernels around the loss and the
// update), not once per layer.
inline bool abft_once_per_step(int op) { return (op >= OP_LM && op < OP_LN1) || op >= OP_LNF; }

static const char* const abft_op_names[ABFT_NUM_OPS] = {
    "qkv", "qk", "pv", "proj", "proj_dx", "proj_dw", "pv_dp", "pv_dv", "qk_dq", "qk_dk", "qkv_dx", "qkv_dw",
    "fc", "fcproj", "fcproj_dx", "fcproj_dw", "fc_dx", "fc_dw", "lm", "lm_dx", "lm_dw",
    "ln1", "softmax", "res2", "ln2", "gelu", "res3", "lnf", "loss", "dlogits", "adamw", "allreduce"};

// -abft_tol measured: each GEMM's tolerance factor (tau): 20 times the largest fault-free
// residual of its checks that scripts/tolerance_study.py measured (in units of the fp32 worst
// case), rounded down, and at most the bound's 2 (docs/ABFT.md, "Measured tolerances"). fp32
// GEMMs only; the kernels' invariants keep the bound's factor.
static const float abft_measured_tau[ABFT_NUM_OPS] = {
    // qkv   qk     pv     proj   proj_dx proj_dw pv_dp  pv_dv  qk_dq  qk_dk  qkv_dx qkv_dw
    0.72f, 2.0f, 2.0f, 0.92f, 0.89f, 0.12f, 2.0f, 2.0f, 2.0f, 1.2f, 0.34f, 0.23f,
    // fc   fcproj fcproj_dx fcproj_dw fc_dx fc_dw  lm     lm_dx   lm_dw
    0.52f, 0.3f, 1.0f, 0.13f, 0.21f, 0.29f, 1.4f, 0.067f, 0.081f,
    // ln1 softmax res2  ln2   gelu  res3  lnf   loss  dlogits adamw allreduce
    2.0f, 2.0f, 2.0f, 2.0f, 2.0f, 2.0f, 2.0f, 2.0f, 2.0f, 2.0f, 2.0f};

#include "llmc/abft_faults.h"     // counts and names the ops above
#include "llmc/abft_invariants.h" // the kernels' checks
#if defined(__CUDACC__) || defined(CUDA_CPU_HARNESS)
#include "llmc/abft_gpu.cuh"
constexpr bool ABFT_HOST_CHECKS = false; // the checks run on the device (abft_gpu_verify)
#else
constexpr bool ABFT_HOST_CHECKS = true;  // abft_verify: what the fault log (Abft::events) needs
#endif

// ----------------------------------------------------------------------------
// the model's GEMMs as descriptors (row-major buffers), for both trainers

// A linear layer: out (rows, OC) = inp (rows, IC) · weightᵀ + bias, weight (OC, IC); ws: the
// bias's sums, for the GPU's row checks.
inline AbftGemm linear_gemm(floatX* out, const floatX* inp, const floatX* weight, const floatX* bias, int rows, int IC,
                            int OC, const AbftWeightSums& ws = AbftWeightSums{}) {
    AbftGemm g;
    g.M = rows; g.N = OC; g.K = IC;
    g.A = row_major(inp, IC);
    g.B = transposed(weight, IC);
    g.C = out; g.ldc = OC;
    g.bias = bias;
    g.bias_sum = ws.bias_sum; g.bias_abs = ws.bias_abs;
    return g;
}

// its input gradient: dinp (rows, IC) = dout (rows, OC) · weight (OC, IC)
inline AbftGemm linear_dinp_gemm(floatX* dinp, const floatX* dout, const floatX* weight, int rows, int IC, int OC) {
    AbftGemm g;
    g.M = rows; g.N = IC; g.K = OC;
    g.A = row_major(dout, OC);
    g.B = row_major(weight, IC);
    g.C = dinp; g.ldc = IC;
    return g;
}

// its weight gradient: dweight (OC, IC) = doutᵀ (OC, rows) · inp (rows, IC)
inline AbftGemm linear_dweight_gemm(floatX* dweight, const floatX* dout, const floatX* inp, int rows, int IC, int OC) {
    AbftGemm g;
    g.M = OC; g.N = IC; g.K = rows;
    g.A = transposed(dout, OC);
    g.B = row_major(inp, IC);
    g.C = dweight; g.ldc = IC;
    return g;
}

// An attention GEMM over the heads: per head (M, N) = (M, K)·(K, N), every head's matrices
// contiguous and packed one after another. The caller sets A, B, C (and alpha, causal).
inline AbftGemm heads_gemm(int heads, int M, int N, int K) {
    AbftGemm g;
    g.M = M; g.N = N; g.K = K; g.batch = heads;
    g.strideA = (long)M * K;
    g.strideB = (long)K * N;
    g.ldc = N; g.strideC = (long)M * N;
    return g;
}

// ----------------------------------------------------------------------------
// the protected GEMM

typedef void (*AbftGemmFn)(const AbftGemm& g);
typedef bool (*AbftVerifyFn)(Abft* abft, const AbftGemm& g, int op, int layer);

inline bool abft_verify(Abft* abft, const AbftGemm& g, int op, int layer); // below
inline float* abft_scratch(Abft* abft, size_t floats);
inline void abft_note_residual(AbftCounters* n, int op, const float* residual, size_t count);

// One protected GEMM: compute, (inject a fault), verify, repair from checksums, and recompute
// once when the checksums cannot repair. Returns false when even the recomputed output is
// faulty: its inputs must be bad, and the caller climbs the ladder (layer, then step).
// The CUDA trainer passes abft_gpu_corrupt and abft_gpu_verify (C in GPU memory).
inline bool abft_gemm(Abft* abft, AbftGemmFn gemm, const AbftGemm& g, int op, int layer,
                      AbftCorruptFn corrupt = abft_corrupt, AbftVerifyFn verify = abft_verify) {
    gemm(g);
    abft_inject(abft, g, op, layer, corrupt);
    if (!abft_due(abft, op) || verify(abft, g, op, layer)) { return true; }
    abft->n.recomputed_op[op]++;
    if (abft->cfg.verbose) { printf("abft: step %d layer %d %s: recomputing the GEMM\n", abft->step, layer, abft_op_names[op]); }
    const double t0 = wall_seconds();
    gemm(g);
    abft->n.recovery_seconds += wall_seconds() - t0; // the check that follows counts itself
    abft_inject(abft, g, op, layer, corrupt);
    return verify(abft, g, op, layer);
}

// OpenMP where the build has it (the CPU trainer); plain loops elsewhere (e.g. the CUDA harness)
#ifdef _OPENMP
#define ABFT_PARALLEL_FOR_2D _Pragma("omp parallel for collapse(2) schedule(static)")
#else
#define ABFT_PARALLEL_FOR_2D
#endif

// Checks every batch entry of C on the CPU; repairs what the checksums can. Returns false when
// an entry is beyond repair (the caller recomputes).
inline bool abft_verify(Abft* abft, const AbftGemm& g, int op, int layer) {
    const double t0 = wall_seconds();
    const int chunk = 64; // columns per work item
    const int kchunks = (g.K + chunk - 1) / chunk, nchunks = (g.N + chunk - 1) / chunk;
    float* work = abft_scratch(abft, (size_t)g.batch * (2 * g.K + 4 * g.N + 1 + nchunks));
    float* ue = work;                                       // (batch, K) e·A
    float* ua = work + (size_t)g.batch * g.K;               // (batch, K) e·|A|
    float* scratch = work + (size_t)g.batch * 2 * g.K;      // (batch, 4N)
    float* bad = scratch + (size_t)g.batch * 4 * g.N;       // (batch) 1 when the entry failed
    float* residual = bad + g.batch;                        // (batch, nchunks) abft_check_columns'
    const float tau = abft_op_tau(abft->cfg, op);
    // encode: the column sums of A, from which abft_check_columns makes the checksums
    ABFT_PARALLEL_FOR_2D
    for (int b = 0; b < g.batch; b++) {
        for (int c = 0; c < kchunks; c++) {
            int k1 = (c + 1) * chunk < g.K ? (c + 1) * chunk : g.K;
            abft_colsums(abft_entry(g.A, g.strideA, b), g.M, c * chunk, k1, nullptr, nullptr,
                         ue + (size_t)b * g.K, ua + (size_t)b * g.K);
        }
    }
    // detect
    for (int b = 0; b < g.batch; b++) { bad[b] = 0.0f; }
    ABFT_PARALLEL_FOR_2D
    for (int b = 0; b < g.batch; b++) {
        for (int c = 0; c < nchunks; c++) {
            int j1 = (c + 1) * chunk < g.N ? (c + 1) * chunk : g.N;
            if (!abft_check_columns(tau, g, b, c * chunk, j1, ue + (size_t)b * g.K, ua + (size_t)b * g.K,
                                    scratch + (size_t)b * 4 * g.N, residual + (size_t)b * nchunks + c)) {
                bad[b] = 1.0f; // benign race: every writer stores the same value
            }
        }
    }
    abft->n.checked[op]++;
    const bool probed = abft->probe.armed && abft->probe.op == op && abft->probe.layer == layer;
    const float probe_tol = probed ? abft_column_tolerance(tau, g, abft->probe.b, abft->probe.j,
                                                           ue + (size_t)abft->probe.b * g.K, ua + (size_t)abft->probe.b * g.K)
                                   : 0.0f;
    // locate and repair the faulty entries, then check them again
    bool repaired_all = true, detected = false;
    const double t_repair = wall_seconds();
    for (int b = 0; b < g.batch; b++) {
        if (bad[b] == 0.0f) { continue; }
        detected = true;
        long fixed = 0;
        int pattern = abft_repair(tau, abft->cfg.extreme, g, b, &fixed);
        bool ok = pattern >= 0 && abft_check_columns(tau, g, b, 0, g.N, ue + (size_t)b * g.K,
                                                     ua + (size_t)b * g.K, scratch + (size_t)b * 4 * g.N);
        abft_count_repair(abft, op, layer, b, ok, fixed, pattern);
        repaired_all &= ok;
    }
    if (detected) {
        abft->n.detected[op]++;
        abft->n.recovery_seconds += wall_seconds() - t_repair;
    } else {
        abft_note_residual(&abft->n, op, residual, (size_t)g.batch * nchunks);
    }
    if (probed) { abft_log_probe(abft, detected, probe_tol); }
    abft->n.seconds[op] += wall_seconds() - t0;
    return repaired_all;
}

// A check that found nothing: its largest residual joins the op's (AbftCounters::residual).
inline void abft_note_residual(AbftCounters* n, int op, const float* residual, size_t count) {
    for (size_t k = 0; k < count; k++) { n->residual[op] = fmaxf(n->residual[op], residual[k]); }
    n->residual_checks[op]++;
}

inline float* abft_scratch(Abft* abft, size_t floats) {
    if (floats > abft->work_floats) {
        free(abft->work);
        abft->work = (float*)malloc_check(floats * sizeof(float), "abft scratch");
        abft->work_floats = floats;
    }
    return abft->work;
}
