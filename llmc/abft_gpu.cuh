// abft_gpu.cuh: ATTNChecker on the GPU: what abft.cuh's protected GEMM (abft_gemm) runs in a
// CUDA build instead of the CPU loops of llmc/abft_core.h, with the same rules in the same
// fp32 arithmetic, so that the GPU and the CPU agree on what is a fault.
//
//   abft_gpu_verify    checks every batch entry of a GEMM's output in GPU memory and repairs
//                      what the checksums can, counting as the CPU path does. In a training
//                      pass (abft.deferred) it only queues the check and the repair in stream
//                      order, and abft_gpu_settle reads all their verdicts once the host waits
//                      for the GPU anyway (the losses' copy, the step's closing wait): no wait
//                      of its own. Work queued before that (the update) is gated on the
//                      device's verdict (abft_gpu_pass_gate). Otherwise it waits for each
//                      (abft_gpu_check, then after a detection abft_gpu_repair; dev/cuda's ABFT
//                      versions call these two)
//   abft_gpu_corrupt   fault injection (-fi) into GPU memory
//   abft_gpu_kernel_check, abft_gpu_kernel_verdict
//                      the kernels checked by an invariant (llmc/abft_invariants.h): where
//                      each execution's verdict goes (two device ints), and its reading: in a
//                      deferred pass by abft_gpu_settle, with the GEMMs' verdicts
//
//   abft_gpu_reader_check
//                      the checks fused into the kernel that reads a GEMM's output next: it
//                      compares the rows it reads with their checksums, and where one fails it
//                      fixes the row in place before it uses it (abft_reader_check_warp)
//
// Below them the launch sequences and kernels they are made of:
//   the check, after every protected GEMM. In a training pass it reads no (T, T) matrix and
//     almost no operand: the kernels the data flowed through have summed what it needs
//     (AbftLayerSums: the CUDA trainer's permute, softmax, layernorm and unpermute kernels).
//     Every GEMM with row checksums from upstream (the linear layers' from the weights' sums,
//     abft_gpu_weight_sums, once per step; P·V's and dQ's from the softmax) is checked by its
//     reader (abft_reader_check_warp); so are S and dP, against causal checksums from Q and K (dO
//     and V) alone (abft_causal_rowsums_kernel, whose pass over dO also forms dV's column
//     checksums). dV's and dK's column sums are taken by their reader, the permute backward,
//     which then launches their check (AbftHeldColumns); the weight gradients compare C's row
//     sums (abft_row_compare_kernel). Otherwise (abft_gpu_encode_verify on
//     a bare GEMM): the column sums of A (e·A, e·|A|) and of C, then the column checksums
//     (e·A)·B and the comparison. A faulty batch entry raises its flag and a device counter;
//   the repair in a training pass, where the check that found a faulty line is the one that
//     fixes it (AbftFixer): the reader's warp its row, the column or row check's threads their
//     line. Each element of the line is recomputed from the operands, replaced where it is
//     farther from that than one element's tolerance (abft_fix_element), and the line checked
//     again; no launch of its own, so a pass without faults pays nothing for it;
//   the repair kernel otherwise (abft_repair_kernel, after a bare GEMM's check, and the
//     synchronous path's), one block per batch entry, which exits at once unless the entry is
//     flagged: fp64 checksums of its lines, each line judged (abft_judge, as abft_repair does),
//     the rebuild, by columns if every column is fixable, else by rows, and the check of the
//     rebuilt entry;
// then the scratch buffers.
//
// Included by abft.cuh in CUDA builds (nvcc, or the CPU harness: llmc/cuda_common.h).
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "llmc/abft_core.h"
#include "llmc/cuda_common.h"

// ----------------------------------------------------------------------------
// the scratch buffers (device memory) and launch shapes

constexpr int ABFT_TILE = 32; // columns per block: one per lane
constexpr int ABFT_ROWS = 8;  // warps per block, each taking every ABFT_ROWS-th row

// Column sums of tall matrices in two stages, so that a GEMM with one batch entry and
// thousands of rows (a linear layer: B·T rows) still fills the GPU: blocks of 32 columns x
// ABFT_ROW_CHUNK rows write partial sums, then one thread per column adds them in order.
constexpr int ABFT_ROW_CHUNK = 256;

// the repair's buffers, for the entries flags[] marks
struct AbftCorrectScratch {      // device buffers
    double* enc;                 // (batch, 6, K): e·A, w·A, e·|A|, B·e, B·w, |B|·e
    double* biasw;               // (batch, 3): Σ bias, Σ (j+1)·bias, Σ |bias|
    double* colchk;              // (batch, N, 3): plain, weighted, bound of each column
    double* rowchk;              // (batch, M, 3): the same for each row
    AbftVerdict* colv;           // (batch, N)
    AbftVerdict* rowv;           // (batch, M)
};

// REPAIR_IN_PLACE: the check that found the fault fixed its lines itself (AbftFixer)
enum AbftRepairStatus { REPAIR_NONE = 0, REPAIR_BY_COLUMNS = 1, REPAIR_BY_ROWS = 2, REPAIR_BEYOND = 3, REPAIR_IN_PLACE = 4 };

// What the repair did to one batch entry. All zero: nothing (a deferred pass's log is zeroed
// before the pass, since a fix in place writes only when it fixes something).
struct AbftOutcome {           // eight ints, no padding: every byte copied back is written
    int status;   // AbftRepairStatus; REPAIR_NONE: the entry was not flagged
    int pattern;  // AbftFixPattern of what the repair kernel rebuilt, -1 beyond the checksums
    int still;    // nonzero: the rebuilt entry still fails its check
    int fixed;    // elements rebuilt (at most M·N of one entry)
    int row, col; // REPAIR_IN_PLACE: the first row and column fixed, plus one
    int rows, cols; // REPAIR_IN_PLACE: nonzero once a second row (column) was fixed
};

// The pattern of what a repair fixed: the repair kernel's own, or, for fixes in place, from
// the rows and columns they touched (as abft_fix_pattern judges a rebuild).
ABFT_HD inline int abft_outcome_pattern(const AbftOutcome& o) {
    if (o.status != REPAIR_IN_PLACE) { return o.pattern; }
    return o.fixed <= 1 ? FIX_0D : o.rows == 0 ? FIX_ROW : o.cols == 0 ? FIX_COL : FIX_SCATTERED;
}

// everything a check needs, grown to the largest GEMM checked so far
struct AbftGpuScratch {
    float *ue, *ua;              // (batch, K)
    float *chk, *bound;          // (batch, N)
    float *csum, *cabs;          // (batch, N) column sums of C and of |C|
    float *part, *part_abs;      // (batch, row chunks, max(K, N)) partial column sums
    int* flags;                  // (batch) failed columns per entry
    int* counter;                // (1) faulty entries detected, cumulative until reset
    AbftCorrectScratch cs;
    AbftOutcome* outcome;        // (batch) the last repair's, when the host drives it
    long cap_bk, cap_bn, cap_bm, cap_b, cap_part; // capacities: batch·K, batch·N, batch·M, batch, partials
};

// A GEMM whose check is left to its reader (AbftGemm::reader_checks) takes that route up to this
// reduction length (an attention head's size); beyond it, the check that reads C itself.
constexpr int ABFT_READER_MAX_K = 512;

// abft_causal_rowsums_kernel's warps for a reduction length K: as many as its shared memory
// (2·warps·K floats) allows within the 48 KB every GPU gives a block, at most 32
inline int abft_prefix_warps(int K) { return std::max(1, std::min(32, 48 * 1024 / (8 * K))); }
inline size_t abft_prefix_shared(int K) { return 2 * (size_t)abft_prefix_warps(K) * K * sizeof(float); }

// The device's verdict on a deferred pass, for the work queued before the host reads the
// pass's verdicts (the AdamW update): a repair that leaves an entry faulty writes the pass's id
// to *failed, and that work skips itself when it finds its own pass's id there. Ids only grow,
// so the word is never cleared. failed null: no gate (the work always runs).
struct AbftPassGate {
    int* failed = nullptr; // (1) device: the id of the last pass with a fault beyond the device's repair
    int pass = 0;
};

// A deferred check's repair in place, by the kernel that checks (abft_fix_element): the GEMM
// whose elements it recomputes, where the outcomes go, and the gate a line still faulty raises.
struct AbftFixer {
    AbftGemm g;
    AbftOutcome* out = nullptr;   // (batch) the pass's log; null: flag the entry instead (a synchronous check)
    AbftPassGate gate = {};
    float tau = 0.0f, operand_u = 0.0f;
};

// A check left to the kernel that reads C next (AbftGemm::reader_checks): what that kernel
// needs to compare each row it reads with its checksum and to fix a faulty one
// (abft_reader_check_warp).
struct AbftReaderCheck {
    const float* chk = nullptr;   // (batch, M, pieces) C's row checksums before alpha and the bias (causal: j <= i)
    const float* bound = nullptr; // (batch, M, pieces) the bounds of the rows' sums of |C|
    const float* bias_sum = nullptr, *bias_abs = nullptr; // (1) Σ bias, Σ |bias|, or null
    AbftFixer fix;                // fix.g: the GEMM; its K and alpha enter the comparison
    int pieces = 1;               // addends of each row's checksum and bound (AbftGemm::row_pieces)
};

// One GEMM's repair, as abft_repair_kernel takes it: the entries flags[] marks, rebuilt and
// then checked against chk/bound (the detection's column checksums; null after a row check:
// the repair's own), out[b] says what was done, and gate hears of an entry left faulty.
struct AbftRepairJob {
    AbftGemm g;
    int* flags = nullptr;
    const float* chk = nullptr;
    const float* bound = nullptr;
    AbftCorrectScratch cs = {};
    AbftOutcome* out = nullptr;
    AbftPassGate gate = {};
};

// The one check waiting for its reader (each reader follows its GEMM with no other reader
// check in between).
struct AbftPendingReader {
    bool pending = false;
    AbftReaderCheck check;
};
static AbftPendingReader g_abft_reader;

// In a training pass dWproj's row compare, which fixes in place, waits for dWqkv's in the same
// layer when that is checked too, so that one launch checks both: dWproj's alone would cost a
// launch more than its bytes. Nothing reads a weight gradient, or overwrites the partial sums
// its check reads, in between. The pair's time counts as dWqkv's.
struct AbftHeldRowCompare {
    bool held = false;
    AbftFixer fix;
};
static AbftHeldRowCompare g_abft_held_rows;

// In a training pass dV's and dK's column checks (AbftGemm::cols_by_reader) wait for the permute
// backward, which takes their column sums as it copies them into dqkv; the trainer then checks
// both in one launch (abft_gpu_take_columns), whose time counts as the later one's.
struct AbftHeldColumns {
    int n = 0;
    AbftFixer fix[2];
    long record[2] = {0, 0}; // their places in the pass's log
};
static AbftHeldColumns g_abft_held_cols;

// The checksums of one weight of every layer, W (L, OC, IC) and its bias (L, OC), for the row
// checks of its GEMMs (AbftWeightSums, one layer's slice: abft_weight_sums_of). Computed once
// per step by abft_gpu_weight_sums: the weights change only in the update.
struct AbftWeightStack {
    int L = 0, OC = 0, IC = 0;
    float *row_sum = nullptr, *row_abs = nullptr;   // (L, OC)
    float *col_sum = nullptr, *col_abs = nullptr;   // (L, IC)
    float *bias_sum = nullptr, *bias_abs = nullptr; // (L)
    float *part = nullptr, *part_abs = nullptr;     // (L, ceil(OC / ABFT_TILE), IC) partial column sums
};

inline int abft_row_chunks(int rows) { return (rows + ABFT_ROW_CHUNK - 1) / ABFT_ROW_CHUNK; }

inline int abft_ceil_div(long a, long b) { return (int)((a + b - 1) / b); }

// ----------------------------------------------------------------------------
// contents: the entry points first, then the launch sequences, the scratch, the kernels

inline bool abft_gpu_verify(Abft* abft, const AbftGemm& g, int op, int layer);
inline AbftReaderCheck abft_gpu_reader_check();
inline bool abft_gpu_settle(Abft* abft);
inline void abft_gpu_log_fetch();
inline AbftPassGate abft_gpu_pass_gate();
inline AbftKernelCheck abft_gpu_kernel_check(Abft* abft, int op, int layer, const AbftKernelShape& shape);
inline bool abft_gpu_kernel_verdict(Abft* abft, const AbftKernelCheck& k);
inline float abft_gpu_corrupt(const AbftGemm& g, int b, int i, int j, int type, int bit);
inline void abft_gpu_weight_stack_alloc(AbftWeightStack* w, int L, int OC, int IC);
inline void abft_gpu_weight_sums(AbftWeightStack* w, const floatX* W, const floatX* bias);
inline AbftWeightSums abft_weight_sums_of(const AbftWeightStack& w, int l);
inline void abft_gpu_weight_stack_free(AbftWeightStack* w);

inline void abft_gpu_encode_verify(const AbftGemm& g, AbftGpuScratch* s, float tau, float operand_u, cudaStream_t stream);
inline void abft_gpu_row_compares(const AbftFixer& first, const AbftFixer& second, int* flags, int* counter,
                                  cudaStream_t stream);
inline void abft_gpu_row_compare_deferred(const AbftFixer& fix, bool hold);
inline AbftHeldColumns abft_gpu_take_columns();
inline AbftFixer abft_held_column_check(const AbftHeldColumns& h, const floatX* C);
inline void abft_gpu_time_columns(const AbftHeldColumns& h, bool stop);
inline AbftRepairJob abft_repair_job(const AbftGemm& g, AbftGpuScratch* s, AbftOutcome* out, AbftPassGate gate);
inline void abft_gpu_launch_repair(const AbftConfig& cfg, const AbftRepairJob& job, cudaStream_t stream);
inline void abft_gpu_colsums(AbftGpuScratch* s, MatView X, long strideX, int batch, int rows, int cols, float* sum,
                             float* abssum, cudaStream_t stream, const float* w = nullptr, const float* a = nullptr);
inline void abft_gpu_reserve(AbftGpuScratch* s, const AbftGemm& g);
inline void abft_gpu_free(AbftGpuScratch* s);

__global__ void abft_colsums_partial_kernel(MatView X, long strideX, int rows, int cols, const float* w, const float* a,
                                            float* part, float* part_abs);
__global__ void abft_compare_kernel(AbftGemm g, const float* csum, const float* cabs, float* chk, float* bound, float tau,
                                    float operand_u, int* flags, int* counter);
__global__ void abft_colsums_reduce_kernel(const float* part, const float* part_abs, int chunks, int cols, float* sum,
                                           float* abssum);
__global__ void abft_colsums_contiguous_kernel(MatView X, long strideX, int rows, int cols, float* sum, float* abssum);
__global__ void abft_encode_verify_kernel(AbftGemm g, const float* ue, const float* ua, const float* csum, const float* cabs,
                                          float* chk, float* bound, float tau, float operand_u, int* flags, int* counter);
__global__ void abft_encode_verify_contiguous_kernel(AbftGemm g, const float* ue, const float* ua, const float* csum,
                                                     const float* cabs, float* chk, float* bound, float tau,
                                                     float operand_u, int* flags, int* counter);
__global__ void abft_causal_rowsums_kernel(AbftGemm g, float* chk, float* bound);
__global__ void abft_row_compare_kernel(AbftFixer first, AbftFixer second, int* flags, int* counter);
__global__ void abft_stack_sums_kernel(const floatX* W, int rows, int cols, float* row_sum, float* row_abs, float* part,
                                       float* part_abs, const floatX* bias, float* bias_sum, float* bias_abs);
__device__ void abft_repair_entry(const AbftRepairJob& j, int b, float extreme, float tau, float operand_u);
__global__ void abft_repair_kernel(AbftRepairJob job, float extreme, float tau, float operand_u);

// ----------------------------------------------------------------------------
// the entry points

static AbftGpuScratch g_abft_gpu;              // grown to the largest protected GEMM
static cudaEvent_t g_abft_start, g_abft_stop;  // time the synchronous checks on the GPU's clock

// What the slow path did to each batch entry of one GEMM (host copies).
struct AbftGpuRepair {
    std::vector<int> flagged;  // (batch) nonzero: the check failed
    std::vector<int> status;   // (batch) AbftRepairStatus: how the repair went about it
    std::vector<int> pattern;  // (batch) AbftFixPattern of what was rebuilt, -1 beyond the checksums
    std::vector<long> fixed;   // (batch) elements rebuilt
    std::vector<int> still;    // (batch) nonzero: still faulty when checked again
    bool ok(int b) const { return pattern[b] >= 0 && still[b] == 0; }
};

// The deferred verdicts of one pass: one record per protected GEMM execution, whose repair
// kernel wrote an AbftOutcome per batch entry into `device`; the host reads them all at once.
struct AbftGpuRecord {
    int op, layer, batch;
    long offset;                   // its outcomes: device[offset, offset + batch)
    cudaEvent_t start, stop;       // around its check and repair, for the per-op GPU time
    std::string injected;          // the fault messages of its execution, printed with its verdicts
};
struct AbftGpuLog {
    AbftOutcome* device = nullptr; // (capacity)
    AbftOutcome* host = nullptr;   // (capacity) pinned, so the copy back can be queued
    long capacity = 0, used = 0, fetched = 0; // outcomes: room, written, queued for the host
    cudaEvent_t landed = nullptr;  // after the last copy to host queued
    AbftPassGate gate;             // gate.pass: this pass's id (passes settled so far)
    std::vector<AbftGpuRecord> records;
    std::vector<cudaEvent_t> events; // reused from pass to pass
};
static AbftGpuLog g_abft_log;

// The verdicts of the kernels checked by an invariant: two ints per execution (rows that
// failed, rows that failed again after their recompute), zeroed when a pass takes its first.
constexpr int ABFT_KERNEL_SLOTS = 4096; // checked kernel executions in one pass, at most
struct AbftGpuKernelLog {
    int* device = nullptr;                 // (ABFT_KERNEL_SLOTS, 2)
    int* host = nullptr;                   // (ABFT_KERNEL_SLOTS, 2) pinned
    int* now = nullptr;                    // (2) device: a synchronous check's
    int used = 0, fetched = 0;             // executions: logged, queued for the host
    std::vector<AbftKernelCheck> records;  // the deferred executions, in order
};
static AbftGpuKernelLog g_abft_kernels;

inline int abft_gpu_check(const AbftConfig& cfg, const AbftGemm& g, AbftGpuScratch* s, cudaEvent_t done = nullptr);
inline AbftGpuRepair abft_gpu_repair(const AbftConfig& cfg, const AbftGemm& g, AbftGpuScratch* s);
inline bool abft_gpu_verify_now(Abft* abft, const AbftGemm& g, int op, int layer);
inline void abft_gpu_verify_deferred(Abft* abft, const AbftGemm& g, int op, int layer);
inline AbftOutcome* abft_gpu_log_append(AbftGpuLog* log, int op, int layer, int batch, std::string* injected);
inline cudaEvent_t abft_gpu_log_event(AbftGpuLog* log, size_t i);
inline std::vector<int> abft_gpu_ints(const int* device, int n);

// abft_verify's GPU counterpart: checks every batch entry of C and repairs in place what the
// checksums can, counting as the CPU path does. Deferred (abft->deferred), it only queues the
// check and the repair, and returns true: abft_gpu_settle reads the verdicts at the end of the
// pass. Otherwise it waits for them and returns false when an entry is beyond repair (the
// caller recomputes).
inline bool abft_gpu_verify(Abft* abft, const AbftGemm& g, int op, int layer) {
    abft->n.checked[op]++;
    if (abft->deferred) {
        abft_gpu_verify_deferred(abft, g, op, layer);
        return true;
    }
    return abft_gpu_verify_now(abft, g, op, layer);
}

// For the kernel about to read the output of a GEMM whose check was left to it (reader_checks):
// what it compares its rows with and how it fixes them (abft_reader_check_warp); the check is
// then the reader's. Empty (chk null) when none is waiting.
inline AbftReaderCheck abft_gpu_reader_check() {
    if (!g_abft_reader.pending) { return AbftReaderCheck{}; }
    g_abft_reader.pending = false;
    return g_abft_reader.check;
}

// The end of a deferred pass: reads every verdict the pass queued, waiting for the GPU only if
// their copy has not landed yet (a blocking call after abft_gpu_log_fetch, such as the losses'
// copy or the training step's closing wait, has waited for it). When the device repaired every fault
// it found, counts and prints them as abft_gpu_verify_now would have, in order, and returns
// true. Otherwise the pass's later work used a bad output: it returns false, counting and
// printing nothing, and the caller redoes the pass with synchronous checks and the same faults
// (see abft_snapshot), which then tell the story.
inline bool abft_gpu_settle(Abft* abft) {
    AbftGpuLog* log = &g_abft_log;
    if (g_abft_reader.pending) {
        die("ABFT", "a GEMM whose check is left to its reader must be followed by that reader",
            "the pass ended with a check waiting");
    }
    abft_gpu_log_fetch();
    if (log->landed != nullptr) {
        const cudaError_t ready = cudaEventQuery(log->landed);
        if (ready == cudaErrorNotReady) {
            cudaCheck(cudaEventSynchronize(log->landed));
        } else {
            cudaCheck(ready);
        }
    }
    bool all_repaired = true;
    for (long i = 0; i < log->used; i++) {
        const AbftOutcome& o = log->host[i];
        all_repaired &= o.status == REPAIR_NONE || (abft_outcome_pattern(o) >= 0 && o.still == 0);
    }
    AbftGpuKernelLog* kernels = &g_abft_kernels;
    for (int i = 0; i < kernels->used; i++) { // a row bad after its recompute: bad inputs (AdamW's stay as they were)
        all_repaired &= kernels->host[2 * i + 1] == 0 || kernels->records[i].op == OP_ADAMW;
    }
    for (const AbftGpuRecord& r : log->records) {
        if (!all_repaired) { break; }
        fputs(r.injected.c_str(), stdout);
        float ms = 0.0f;
        cudaCheck(cudaEventElapsedTime(&ms, r.start, r.stop));
        abft->n.seconds[r.op] += 1e-3 * ms;
        bool flagged = false;
        for (int b = 0; b < r.batch; b++) {
            const AbftOutcome& o = log->host[r.offset + b];
            if (o.status == REPAIR_NONE) { continue; }
            abft_count_repair(abft, r.op, r.layer, b, true, o.fixed, abft_outcome_pattern(o));
            flagged = true;
        }
        if (flagged) {
            abft->n.detected[r.op]++;
            abft->n.recovery_seconds += 1e-3 * ms; // the check and the repair that followed it
        }
    }
    for (int i = 0; all_repaired && i < kernels->used; i++) {
        abft_kernel_verdict(abft, kernels->records[i], kernels->host + 2 * i, nullptr);
    }
    if (all_repaired) { fputs(abft->pending.c_str(), stdout); } // faults injected into ops not checked now
    abft->pending.clear();
    if (log->used > 0) { cudaCheck(cudaMemsetAsync(log->device, 0, log->used * sizeof(AbftOutcome), 0)); } // for the next pass
    log->records.clear();
    log->used = log->fetched = 0;
    kernels->records.clear();
    kernels->used = kernels->fetched = 0;
    log->gate.pass++;
    return all_repaired;
}

// Queues the copy of the verdicts so far to the host; a blocking call that follows in the
// stream (the loss's copy) then also waits for them, and abft_gpu_settle needs no wait of its own.
inline void abft_gpu_log_fetch() {
    if (g_abft_held_rows.held) { die("ABFT", "internal error", "a pass ended with a row compare held (dWproj's, for dWqkv's)"); }
    if (g_abft_held_cols.n > 0) { die("ABFT", "internal error", "a pass ended with dV's or dK's column check held"); }
    AbftGpuLog* log = &g_abft_log;
    AbftGpuKernelLog* kernels = &g_abft_kernels;
    if (log->fetched == log->used && kernels->fetched == kernels->used) { return; }
    if (log->fetched < log->used) {
        cudaCheck(cudaMemcpyAsync(log->host + log->fetched, log->device + log->fetched,
                                  (log->used - log->fetched) * sizeof(AbftOutcome), cudaMemcpyDeviceToHost, 0));
    }
    if (kernels->fetched < kernels->used) {
        cudaCheck(cudaMemcpyAsync(kernels->host + 2 * kernels->fetched, kernels->device + 2 * kernels->fetched,
                                  2 * (kernels->used - kernels->fetched) * sizeof(int), cudaMemcpyDeviceToHost, 0));
        kernels->fetched = kernels->used;
    }
    if (log->landed == nullptr) { cudaCheck(cudaEventCreateWithFlags(&log->landed, cudaEventDisableTiming)); }
    cudaCheck(cudaEventRecord(log->landed, 0));
    log->fetched = log->used;
}

// The gate of the deferred pass under way, for work queued before abft_gpu_settle (the update).
inline AbftPassGate abft_gpu_pass_gate() {
    AbftGpuLog* log = &g_abft_log;
    if (log->gate.failed == nullptr) { // once: no pass has failed yet
        cudaCheck(cudaMalloc(&log->gate.failed, sizeof(int)));
        cudaCheck(cudaMemset(log->gate.failed, 0xff, sizeof(int)));
    }
    return log->gate;
}

// The check of one execution of a kernel checked by an invariant, with its verdict's place on
// the device: the pass's log when deferred (abft_gpu_settle reads it), else its own two ints.
inline AbftKernelCheck abft_gpu_kernel_check(Abft* abft, int op, int layer, const AbftKernelShape& shape) {
    AbftKernelCheck k = abft_kernel_check(abft, op, layer, shape);
    if (!k.on) { return k; }
    AbftGpuKernelLog* log = &g_abft_kernels;
    if (log->device == nullptr) {
        cudaCheck(cudaMalloc(&log->device, 2 * ABFT_KERNEL_SLOTS * sizeof(int)));
        cudaCheck(cudaMallocHost(&log->host, 2 * ABFT_KERNEL_SLOTS * sizeof(int)));
        cudaCheck(cudaMalloc(&log->now, 2 * sizeof(int)));
    }
    if (!abft->deferred) {
        cudaCheck(cudaMemsetAsync(log->now, 0, 2 * sizeof(int), 0));
        k.verdict = log->now;
        return k;
    }
    if (log->used == ABFT_KERNEL_SLOTS) {
        die("ABFT", "raise ABFT_KERNEL_SLOTS in llmc/abft_gpu.cuh", "more than %d checked kernels in one pass",
            ABFT_KERNEL_SLOTS);
    }
    if (log->used == 0) { cudaCheck(cudaMemsetAsync(log->device, 0, 2 * ABFT_KERNEL_SLOTS * sizeof(int), 0)); }
    k.verdict = log->device + 2 * log->used++;
    const AbftPassGate gate = abft_gpu_pass_gate();
    k.gate = gate.failed;
    k.gate_pass = gate.pass;
    log->records.push_back(k);
    return k;
}

// After that kernel: its verdict, read now when the check is synchronous (false when a row
// failed again after its recompute); a deferred one is read with the pass's (true here).
inline bool abft_gpu_kernel_verdict(Abft* abft, const AbftKernelCheck& k) {
    if (!k.on || abft->deferred) { return true; }
    int verdict[2] = {0, 0};
    cudaCheck(cudaMemcpy(verdict, k.verdict, sizeof(verdict), cudaMemcpyDeviceToHost));
    return abft_kernel_verdict(abft, k, verdict, nullptr);
}

// A fault lands in GPU memory: read the element, write what a faulty unit would have written.
inline float abft_gpu_corrupt(const AbftGemm& g, int b, int i, int j, int type, int bit) {
    floatX* x = g.C + b * g.strideC + (long)i * g.ldc + j;
    floatX before = (floatX)0.0f;
    cudaCheck(cudaMemcpy(&before, x, sizeof(floatX), cudaMemcpyDeviceToHost));
    const floatX value = (floatX)abft_fault_value(type, bit, (float)before);
    cudaCheck(cudaMemcpy(x, &value, sizeof(floatX), cudaMemcpyHostToDevice));
    return (float)before;
}

// Room for the checksums of a weight stack W (L, OC, IC).
inline void abft_gpu_weight_stack_alloc(AbftWeightStack* w, int L, int OC, int IC) {
    w->L = L; w->OC = OC; w->IC = IC;
    const size_t part = (size_t)L * abft_ceil_div(OC, ABFT_TILE) * IC;
    float** ps[] = {&w->row_sum, &w->row_abs, &w->col_sum, &w->col_abs, &w->bias_sum, &w->bias_abs, &w->part, &w->part_abs};
    const size_t sizes[] = {(size_t)L * OC, (size_t)L * OC, (size_t)L * IC, (size_t)L * IC, (size_t)L, (size_t)L, part, part};
    for (int i = 0; i < 8; i++) { cudaCheck(cudaMalloc(ps[i], sizes[i] * sizeof(float))); }
}

inline void abft_gpu_weight_stack_free(AbftWeightStack* w) {
    float* ps[] = {w->row_sum, w->row_abs, w->col_sum, w->col_abs, w->bias_sum, w->bias_abs, w->part, w->part_abs};
    for (float* p : ps) { cudaCheck(cudaFree(p)); }
    *w = AbftWeightStack{};
}

// The row and column sums of every layer's W and the sums of its bias: two launches.
inline void abft_gpu_weight_sums(AbftWeightStack* w, const floatX* W, const floatX* bias) {
    const int chunks = abft_ceil_div(w->OC, ABFT_TILE);
    LAUNCH(abft_stack_sums_kernel, dim3(chunks + 1, w->L), dim3(256), 0, 0)(W, w->OC, w->IC, w->row_sum, w->row_abs, w->part,
                                                                           w->part_abs, bias, w->bias_sum, w->bias_abs);
    cudaCheckLaunch();
    LAUNCH(abft_colsums_reduce_kernel, dim3(abft_ceil_div(w->IC, 128), w->L), dim3(128), 0, 0)(w->part, w->part_abs, chunks,
                                                                                               w->IC, w->col_sum, w->col_abs);
    cudaCheckLaunch();
}

// Layer l's slice.
inline AbftWeightSums abft_weight_sums_of(const AbftWeightStack& w, int l) {
    AbftWeightSums s;
    s.row_sum = w.row_sum + (size_t)l * w.OC; s.row_abs = w.row_abs + (size_t)l * w.OC;
    s.col_sum = w.col_sum + (size_t)l * w.IC; s.col_abs = w.col_abs + (size_t)l * w.IC;
    s.bias_sum = w.bias_sum + l; s.bias_abs = w.bias_abs + l;
    return s;
}

// The check and the repair in stream order, their verdicts to the pass's log: no waiting. The
// check is the reader's, or a kernel that checks a line at a time and fixes a faulty one in
// place (the weight gradients' row compare; dV's and dK's column check, which the permute
// backward launches: AbftHeldColumns), or, for a bare GEMM, the column checksums and the repair
// kernel.
inline void abft_gpu_verify_deferred(Abft* abft, const AbftGemm& g, int op, int layer) {
    if (g_abft_reader.pending && g.reader_checks) {
        die("ABFT", "at most one GEMM's check may wait for its reader", "a check was left waiting before %s",
            abft_op_names[op]);
    }
    const AbftConfig cfg = abft_op_config(abft->cfg, op);
    AbftGpuScratch* s = &g_abft_gpu;
    abft_gpu_reserve(s, g);
    AbftOutcome* out = abft_gpu_log_append(&g_abft_log, op, layer, g.batch, &abft->pending);
    const AbftGpuRecord& r = g_abft_log.records.back();
    const AbftFixer fix = {g, out, abft_gpu_pass_gate(), cfg.tau, cfg.operand_u};
    cudaCheck(cudaEventRecord(r.start, 0));
    if (g.reader_checks && (g.row_chk != nullptr || g.K <= ABFT_READER_MAX_K)) {
        // the checksums now (unless they came from upstream), the comparison and any fix by the reader
        const float* chk = g.row_chk, *bound = g.row_bound;
        if (chk == nullptr) {
            LAUNCH(abft_causal_rowsums_kernel, dim3(g.batch), dim3(32 * abft_prefix_warps(g.K)), abft_prefix_shared(g.K), 0)(
                g, g.reader_chk, g.reader_bound);
            cudaCheckLaunch();
            chk = g.reader_chk;
            bound = g.reader_bound;
        }
        g_abft_reader.pending = true;
        g_abft_reader.check = AbftReaderCheck{chk, bound, g.bias_sum, g.bias_abs, fix, g.row_chk != nullptr ? g.row_pieces : 1};
        abft->fixes_in_place[op] = true;
    } else if (g.cols_by_reader) { // dV's or dK's, after the permute backward has summed their columns
        AbftHeldColumns* h = &g_abft_held_cols;
        if (h->n == 2) { die("ABFT", "internal error", "a third column check held before the permute backward"); }
        h->fix[h->n] = fix;
        h->record[h->n++] = (long)g_abft_log.records.size() - 1;
        abft->fixes_in_place[op] = true;
    } else if (g.a_part != nullptr) { // a weight gradient's: dWproj's and dWqkv's in one launch
        abft_gpu_row_compare_deferred(fix, op == OP_PROJ_DW && abft_due(abft, OP_QKV_DW));
        abft->fixes_in_place[op] = true;
    } else {
        abft_gpu_encode_verify(g, s, cfg.tau, cfg.operand_u, 0);
        abft_gpu_launch_repair(cfg, abft_repair_job(g, s, out, fix.gate), 0);
    }
    cudaCheck(cudaEventRecord(r.stop, 0)); // its time: the check and any repair (a reader's comparison is the reader's)
}

// Checks, waits for the verdict, and repairs what the checksums can after a detection.
inline bool abft_gpu_verify_now(Abft* abft, const AbftGemm& g, int op, int layer) {
    if (g_abft_start == nullptr) {
        cudaCheck(cudaEventCreate(&g_abft_start));
        cudaCheck(cudaEventCreate(&g_abft_stop));
    }
    const AbftConfig cfg = abft_op_config(abft->cfg, op);
    cudaCheck(cudaEventRecord(g_abft_start, 0));
    const int faulty = abft_gpu_check(cfg, g, &g_abft_gpu, g_abft_stop);
    float ms = 0.0f; // the stop event has completed: abft_gpu_check waited for the stream
    cudaCheck(cudaEventElapsedTime(&ms, g_abft_start, g_abft_stop));
    abft->n.seconds[op] += 1e-3 * ms;
    if (faulty == 0) { return true; }
    const double t0 = wall_seconds();
    const AbftGpuRepair r = abft_gpu_repair(cfg, g, &g_abft_gpu);
    bool repaired_all = true;
    for (int b = 0; b < g.batch; b++) {
        if (r.flagged[b] == 0) { continue; }
        abft_count_repair(abft, op, layer, b, r.ok(b), r.fixed[b], r.ok(b) ? r.pattern[b] : 0);
        repaired_all &= r.ok(b);
    }
    abft->n.detected[op]++;
    const double seconds = wall_seconds() - t0;
    abft->n.recovery_seconds += seconds;
    abft->n.seconds[op] += seconds;
    return repaired_all;
}

// The fast path: encodes, checks, and returns the number of faulty batch entries (flagged in
// s->flags). This waits for the GPU. A `done` event, if given, is recorded after the check's
// kernels (it has completed on return).
inline int abft_gpu_check(const AbftConfig& cfg, const AbftGemm& g, AbftGpuScratch* s, cudaEvent_t done) {
    abft_gpu_reserve(s, g);
    cudaCheck(cudaMemsetAsync(s->counter, 0, sizeof(int), 0));
    cudaCheck(cudaMemsetAsync(s->flags, 0, g.batch * sizeof(int), 0));
    abft_gpu_encode_verify(g, s, cfg.tau, cfg.operand_u, 0);
    if (done != nullptr) { cudaCheck(cudaEventRecord(done, 0)); }
    int faulty = 0;
    cudaCheck(cudaMemcpy(&faulty, s->counter, sizeof(int), cudaMemcpyDeviceToHost));
    return faulty;
}

// The slow path, for the entries the last check flagged: rebuild what the checksums can, then
// check again with the fast path.
inline AbftGpuRepair abft_gpu_repair(const AbftConfig& cfg, const AbftGemm& g, AbftGpuScratch* s) {
    AbftGpuRepair r;
    r.flagged = abft_gpu_ints(s->flags, g.batch);
    abft_gpu_launch_repair(cfg, abft_repair_job(g, s, s->outcome, AbftPassGate{}), 0);
    std::vector<AbftOutcome> out(g.batch);
    cudaCheck(cudaMemcpy(out.data(), s->outcome, g.batch * sizeof(AbftOutcome), cudaMemcpyDeviceToHost));
    for (const AbftOutcome& o : out) {
        r.status.push_back(o.status);
        r.pattern.push_back(o.pattern);
        r.fixed.push_back(o.fixed);
    }
    abft_gpu_check(cfg, g, s); // overwrites the flags with the repaired output's
    r.still = abft_gpu_ints(s->flags, g.batch);
    return r;
}

// Room for one more record's outcomes (batch of them); grows the log when needed, keeping what
// it holds. The fault messages waiting in *injected move to the record.
inline AbftOutcome* abft_gpu_log_append(AbftGpuLog* log, int op, int layer, int batch, std::string* injected) {
    if (log->used + batch > log->capacity) {
        const long capacity = 2 * (log->used + batch) > 65536 ? 2 * (log->used + batch) : 65536;
        AbftOutcome *device = nullptr, *host = nullptr;
        cudaCheck(cudaMalloc(&device, capacity * sizeof(AbftOutcome)));
        cudaCheck(cudaMemsetAsync(device, 0, capacity * sizeof(AbftOutcome), 0)); // what no repair writes: nothing done
        cudaCheck(cudaMallocHost(&host, capacity * sizeof(AbftOutcome)));
        if (log->used > 0) { // once per shape at most: waiting here is no cost to speak of
            cudaCheck(cudaMemcpyAsync(device, log->device, log->used * sizeof(AbftOutcome), cudaMemcpyDeviceToDevice, 0));
            cudaCheck(cudaStreamSynchronize(0)); // also completes the copies to log->host queued so far
            memcpy(host, log->host, log->fetched * sizeof(AbftOutcome));
        }
        cudaCheck(cudaFree(log->device));
        cudaCheck(cudaFreeHost(log->host));
        log->device = device;
        log->host = host;
        log->capacity = capacity;
    }
    const size_t i = log->records.size();
    log->records.push_back(AbftGpuRecord{op, layer, batch, log->used, abft_gpu_log_event(log, 2 * i),
                                         abft_gpu_log_event(log, 2 * i + 1), std::string()});
    log->records.back().injected.swap(*injected);
    AbftOutcome* out = log->device + log->used;
    log->used += batch;
    return out;
}

// The i-th event of the log's pool, created on first use.
inline cudaEvent_t abft_gpu_log_event(AbftGpuLog* log, size_t i) {
    while (log->events.size() <= i) {
        cudaEvent_t e;
        cudaCheck(cudaEventCreate(&e));
        log->events.push_back(e);
    }
    return log->events[i];
}

inline std::vector<int> abft_gpu_ints(const int* device, int n) {
    std::vector<int> host(n);
    cudaCheck(cudaMemcpy(host.data(), device, n * sizeof(int), cudaMemcpyDeviceToHost));
    return host;
}

// ----------------------------------------------------------------------------
// the launch sequences

// The fast path, after every protected GEMM; raises flags[b] (which must be clear: the repair
// kernel clears what it handled) and adds the faulty entries to *counter (reset it to read one
// GEMM's). A weight gradient whose dout's writer left partial sums (g.a_part): its rows against
// them. Otherwise the column checksums: e·A and e·|A| (a pass over A), the column sums of C,
// then (e·A)·B and the check. (The checks that fix a line in place: abft_gpu_verify_deferred.)
inline void abft_gpu_encode_verify(const AbftGemm& g, AbftGpuScratch* s, float tau, float operand_u, cudaStream_t stream) {
    abft_gpu_reserve(s, g);
    if (g.a_part != nullptr) { // a weight gradient's: its rows against the partial sums dout's writer left
        abft_gpu_row_compares(AbftFixer{g, nullptr, {}, tau, operand_u}, AbftFixer{}, s->flags, s->counter, stream);
        return;
    }
    abft_gpu_colsums(s, g.A, g.strideA, g.batch, g.M, g.K, s->ue, s->ua, stream);
    abft_gpu_colsums(s, MatView{g.C, g.ldc, 1}, g.strideC, g.batch, g.M, g.N, s->csum, s->cabs, stream);
    if (g.B.rs == 1 && g.B.cs != 1) {
        LAUNCH(abft_encode_verify_contiguous_kernel, dim3(abft_ceil_div(g.N, 8), g.batch), dim3(256), 0, stream)(
            g, s->ue, s->ua, s->csum, s->cabs, s->chk, s->bound, tau, operand_u, s->flags, s->counter);
    } else if (g.K > ABFT_ROW_CHUNK) {
        // a long reduction (a weight gradient's, over B·T): (e·A)·B as B's column sums weighted
        // by e·A, split over chunks of K like any tall column sum, so that it fills the GPU
        abft_gpu_colsums(s, g.B, g.strideB, g.batch, g.K, g.N, s->chk, s->bound, stream, s->ue, s->ua);
        LAUNCH(abft_compare_kernel, dim3(abft_ceil_div(g.N, 128), g.batch), dim3(128), 0, stream)(
            g, s->csum, s->cabs, s->chk, s->bound, tau, operand_u, s->flags, s->counter);
    } else {
        LAUNCH(abft_encode_verify_kernel, dim3(abft_ceil_div(g.N, ABFT_TILE), g.batch), dim3(ABFT_TILE, ABFT_ROWS), 0, stream)(
            g, s->ue, s->ua, s->csum, s->cabs, s->chk, s->bound, tau, operand_u, s->flags, s->counter);
    }
    cudaCheckLaunch();
}

// The row compares of one or two weight gradients (second.g.M == 0: one) in one launch.
inline void abft_gpu_row_compares(const AbftFixer& first, const AbftFixer& second, int* flags, int* counter,
                                  cudaStream_t stream) {
    const int blocks = abft_ceil_div(first.g.M, 8) + abft_ceil_div(second.g.M, 8);
    LAUNCH(abft_row_compare_kernel, dim3(blocks), dim3(256), 0, stream)(first, second, flags, counter);
    cudaCheckLaunch();
}

// A weight gradient's row compare in a training pass: held (hold), or launched with the one held.
inline void abft_gpu_row_compare_deferred(const AbftFixer& fix, bool hold) {
    AbftHeldRowCompare* h = &g_abft_held_rows;
    if (hold) {
        if (h->held) { die("ABFT", "internal error", "a second row compare held before the first was launched"); }
        h->fix = fix;
        h->held = true;
        return;
    }
    abft_gpu_row_compares(h->held ? h->fix : fix, h->held ? fix : AbftFixer{}, nullptr, nullptr, 0);
    h->held = false;
}

// For the permute backward: the column checks held for it (AbftHeldColumns), for it to launch;
// none are held afterwards.
inline AbftHeldColumns abft_gpu_take_columns() {
    const AbftHeldColumns h = g_abft_held_cols;
    g_abft_held_cols = AbftHeldColumns{};
    return h;
}

// The held check of the GEMM that wrote C, or none (out null).
inline AbftFixer abft_held_column_check(const AbftHeldColumns& h, const floatX* C) {
    for (int i = 0; i < h.n; i++) {
        if (h.fix[i].g.C == C) { return h.fix[i]; }
    }
    return AbftFixer{};
}

// Around the launch that checks the held columns: its start (stop false) or end, as the time of
// the later check.
inline void abft_gpu_time_columns(const AbftHeldColumns& h, bool stop) {
    const AbftGpuRecord& r = g_abft_log.records[h.record[h.n - 1]];
    cudaCheck(cudaEventRecord(stop ? r.stop : r.start, 0));
}

// The repair of g after its check with scratch s: the rebuilt entries are checked against the
// fast path's column checksums (s->chk, s->bound), or after a row check (a weight gradient's
// row compare), which has none, against the repair's own.
inline AbftRepairJob abft_repair_job(const AbftGemm& g, AbftGpuScratch* s, AbftOutcome* out, AbftPassGate gate) {
    const bool rows_checked = g.a_part != nullptr;
    return AbftRepairJob{g, s->flags, rows_checked ? nullptr : s->chk, rows_checked ? nullptr : s->bound, s->cs, out, gate};
}

// One launch for the repair of a GEMM's entries that its flags mark (the others cost nothing);
// the flags are cleared.
inline void abft_gpu_launch_repair(const AbftConfig& cfg, const AbftRepairJob& job, cudaStream_t stream) {
    LAUNCH(abft_repair_kernel, dim3(job.g.batch), dim3(256), 0, stream)(job, cfg.extreme, cfg.tau, cfg.operand_u);
    cudaCheckLaunch();
}

// Column sums of the (rows, cols) views X[b] into sum, abssum (batch, cols), each row weighted
// by w and a when given (w_b[i]·X_b(i, j) and a_b[i]·|X_b(i, j)|): a warp per column when
// columns are contiguous (unweighted), else the two stages over row chunks.
inline void abft_gpu_colsums(AbftGpuScratch* s, MatView X, long strideX, int batch, int rows, int cols, float* sum,
                             float* abssum, cudaStream_t stream, const float* w, const float* a) {
    if (X.rs == 1 && X.cs != 1 && w == nullptr) {
        LAUNCH(abft_colsums_contiguous_kernel, dim3(abft_ceil_div(cols, 8), batch), dim3(256), 0, stream)(X, strideX, rows,
                                                                                                     cols, sum, abssum);
        cudaCheckLaunch();
        return;
    }
    const int chunks = abft_row_chunks(rows);
    LAUNCH(abft_colsums_partial_kernel, dim3(abft_ceil_div(cols, ABFT_TILE), batch, chunks), dim3(ABFT_TILE, ABFT_ROWS), 0,
           stream)(X, strideX, rows, cols, w, a, s->part, s->part_abs);
    cudaCheckLaunch();
    LAUNCH(abft_colsums_reduce_kernel, dim3(abft_ceil_div(cols, 128), batch), dim3(128), 0, stream)(s->part, s->part_abs,
                                                                                                   chunks, cols, sum, abssum);
    cudaCheckLaunch();
}

// ----------------------------------------------------------------------------
// the scratch: allocated on first use, grown upward only

inline void abft_gpu_free(AbftGpuScratch* s) {
    if (s->cap_b == 0) { return; }
    void* ps[] = {s->ue, s->ua, s->chk, s->bound, s->csum, s->cabs, s->part, s->part_abs, s->flags, s->counter,
                  s->cs.enc, s->cs.biasw, s->cs.colchk, s->cs.rowchk, s->cs.colv, s->cs.rowv, s->outcome};
    for (void* p : ps) { cudaCheck(cudaFree(p)); }
    s->cap_bk = s->cap_bn = s->cap_bm = s->cap_b = s->cap_part = 0;
}

// Grows the scratch to fit g (buffers are only ever reallocated upward).
inline void abft_gpu_reserve(AbftGpuScratch* s, const AbftGemm& g) {
    const long bk = (long)g.batch * g.K, bn = (long)g.batch * g.N, bm = (long)g.batch * g.M, b = g.batch;
    const long part_m = (long)abft_row_chunks(g.M) * (g.K > g.N ? g.K : g.N), part_k = (long)abft_row_chunks(g.K) * g.N;
    const long part = (long)g.batch * (part_m > part_k ? part_m : part_k); // column sums over M, or split-K over K
    if (bk <= s->cap_bk && bn <= s->cap_bn && bm <= s->cap_bm && b <= s->cap_b && part <= s->cap_part) { return; }
    // the new capacities cover every GEMM seen so far, so that GEMMs of different shapes do not
    // make each other reallocate (abft_gpu_free forgets the old ones)
    const long cap_bk = std::max(bk, s->cap_bk), cap_bn = std::max(bn, s->cap_bn), cap_bm = std::max(bm, s->cap_bm);
    const long cap_b = std::max(b, s->cap_b), cap_part = std::max(part, s->cap_part);
    abft_gpu_free(s);
    s->cap_bk = cap_bk;
    s->cap_bn = cap_bn;
    s->cap_bm = cap_bm;
    s->cap_b = cap_b;
    s->cap_part = cap_part;
    cudaCheck(cudaMalloc(&s->ue, s->cap_bk * sizeof(float)));
    cudaCheck(cudaMalloc(&s->ua, s->cap_bk * sizeof(float)));
    cudaCheck(cudaMalloc(&s->chk, s->cap_bn * sizeof(float)));
    cudaCheck(cudaMalloc(&s->bound, s->cap_bn * sizeof(float)));
    cudaCheck(cudaMalloc(&s->csum, s->cap_bn * sizeof(float)));
    cudaCheck(cudaMalloc(&s->cabs, s->cap_bn * sizeof(float)));
    cudaCheck(cudaMalloc(&s->part, s->cap_part * sizeof(float)));
    cudaCheck(cudaMalloc(&s->part_abs, s->cap_part * sizeof(float)));
    cudaCheck(cudaMalloc(&s->flags, s->cap_b * sizeof(int)));
    cudaCheck(cudaMemset(s->flags, 0, s->cap_b * sizeof(int))); // then kept clear by the repair kernel
    cudaCheck(cudaMalloc(&s->counter, sizeof(int)));
    cudaCheck(cudaMemset(s->counter, 0, sizeof(int))); // deferred checks add to it without resetting it
    cudaCheck(cudaMalloc(&s->cs.enc, s->cap_bk * 6 * sizeof(double)));
    cudaCheck(cudaMalloc(&s->cs.biasw, s->cap_b * 3 * sizeof(double)));
    cudaCheck(cudaMalloc(&s->cs.colchk, s->cap_bn * 3 * sizeof(double)));
    cudaCheck(cudaMalloc(&s->cs.rowchk, s->cap_bm * 3 * sizeof(double)));
    cudaCheck(cudaMalloc(&s->cs.colv, s->cap_bn * sizeof(AbftVerdict)));
    cudaCheck(cudaMalloc(&s->cs.rowv, s->cap_bm * sizeof(AbftVerdict)));
    cudaCheck(cudaMalloc(&s->outcome, s->cap_b * sizeof(AbftOutcome)));
    // zeroed once, though the repair kernel writes every entry: its zeros after an unflagged
    // entry's first two fields compile to a memset, which the harness's initcheck does not see
    cudaCheck(cudaMemset(s->outcome, 0, s->cap_b * sizeof(AbftOutcome)));
}

// ----------------------------------------------------------------------------
// detection kernels

// Sums (s, sa) over the ABFT_ROWS warps of the block; valid in warp 0 (threadIdx.y == 0).
// Shared memory and not shuffles: the partial sums to combine sit in different warps.
__device__ inline void abft_reduce_over_warps(float* s, float* sa) {
    __shared__ float part[2][ABFT_ROWS][ABFT_TILE];
    part[0][threadIdx.y][threadIdx.x] = *s;
    part[1][threadIdx.y][threadIdx.x] = *sa;
    __syncthreads();
    if (threadIdx.y == 0) {
        for (int r = 1; r < ABFT_ROWS; r++) { *s += part[0][r][threadIdx.x]; *sa += part[1][r][threadIdx.x]; }
    }
    __syncthreads(); // part[] is reused by the next call in the same kernel
}

// What e·C_j must be (chk) and what e·|C_j| may be at most (bound), for column j of C[b]:
// alpha·ue·B_j + M·bias_j and |alpha|·ua·|B_j| + M·|bias_j|. Valid in warp 0.
__device__ inline void abft_column_checksum(const AbftGemm& g, int b, int j, const float* ue, const float* ua,
                                            float* chk, float* bound) {
    MatView B = {g.B.p + b * g.strideB, g.B.rs, g.B.cs};
    float s = 0.0f, sa = 0.0f;
    if (j < g.N) {
        for (int k = threadIdx.y; k < g.K; k += ABFT_ROWS) {
            float x = B.at(k, j);
            s += ue[(long)b * g.K + k] * x;
            sa += ua[(long)b * g.K + k] * fabsf(x);
        }
    }
    abft_reduce_over_warps(&s, &sa);
    const float bias = (g.bias != nullptr && j < g.N) ? (float)g.bias[j] : 0.0f;
    *chk = g.alpha * s + (float)g.M * bias;
    *bound = fabsf(g.alpha) * sa + (float)g.M * fabsf(bias);
}

// Records a failed column of batch entry b: the first failure of an entry bumps the counter.
__device__ inline void abft_report_fault(int* flags, int* counter, int b) {
    if (atomicAdd(&flags[b], 1) == 0) { atomicAdd(counter, 1); }
}

// part[b][chunk][j] = Σ w_b[i]·X_b(i, j), part_abs likewise Σ a_b[i]·|X_b(i, j)|, over the
// chunk's rows (w, a: row weights, (batch, rows); 1 when null).
// grid (ceil(cols/ABFT_TILE), batch, chunks), block (ABFT_TILE, ABFT_ROWS).
__global__ void abft_colsums_partial_kernel(MatView X, long strideX, int rows, int cols, const float* w, const float* a,
                                            float* part, float* part_abs) {
    const int j = blockIdx.x * ABFT_TILE + threadIdx.x, b = blockIdx.y, chunk = blockIdx.z;
    const int i1 = min((chunk + 1) * ABFT_ROW_CHUNK, rows);
    const MatView V = {X.p + b * strideX, X.rs, X.cs};
    const float* wb = w != nullptr ? w + (long)b * rows : nullptr;
    const float* ab = a != nullptr ? a + (long)b * rows : nullptr;
    float s4[4] = {0.0f, 0.0f, 0.0f, 0.0f}, sa4[4] = {0.0f, 0.0f, 0.0f, 0.0f}; // 4 loads in flight per thread
    int i = chunk * ABFT_ROW_CHUNK + threadIdx.y;
    for (; j < cols && i + 3 * ABFT_ROWS < i1; i += 4 * ABFT_ROWS) {
        for (int u = 0; u < 4; u++) {
            const int r = i + u * ABFT_ROWS;
            const float x = V.at(r, j);
            s4[u] += (wb != nullptr ? wb[r] : 1.0f) * x;
            sa4[u] += (ab != nullptr ? ab[r] : 1.0f) * fabsf(x);
        }
    }
    for (; j < cols && i < i1; i += ABFT_ROWS) {
        const float x = V.at(i, j);
        s4[0] += (wb != nullptr ? wb[i] : 1.0f) * x;
        sa4[0] += (ab != nullptr ? ab[i] : 1.0f) * fabsf(x);
    }
    float s = (s4[0] + s4[1]) + (s4[2] + s4[3]), sa = (sa4[0] + sa4[1]) + (sa4[2] + sa4[3]);
    abft_reduce_over_warps(&s, &sa);
    if (threadIdx.y == 0 && j < cols) {
        const long at = ((long)b * gridDim.z + chunk) * cols + j;
        part[at] = s;
        part_abs[at] = sa;
    }
}

// sum[b][j] = Σ_chunk part[b][chunk][j] in order, abssum likewise. grid (ceil(cols/128), batch).
__global__ void abft_colsums_reduce_kernel(const float* part, const float* part_abs, int chunks, int cols, float* sum,
                                           float* abssum) {
    const int j = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    if (j >= cols) { return; }
    float s = 0.0f, sa = 0.0f;
    for (int c = 0; c < chunks; c++) {
        const long at = ((long)b * chunks + c) * cols + j;
        s += part[at];
        sa += part_abs[at];
    }
    sum[(long)b * cols + j] = s;
    abssum[(long)b * cols + j] = sa;
}

// Column sums of a view whose columns are contiguous in memory (rs == 1: the transpose of a
// row-major matrix, e.g. Pᵀ or dSᵀ): one warp per column, its lanes over the column's
// elements, so the reads are coalesced where the row-chunk kernel's would stride by a row.
// grid (ceil(cols/8), batch), block 256.
__global__ void abft_colsums_contiguous_kernel(MatView X, long strideX, int rows, int cols, float* sum, float* abssum) {
    const int j = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32, b = blockIdx.y;
    if (j >= cols) { return; } // whole warps leave together
    const floatX* col = X.p + b * strideX + j * X.cs;
    float s[4] = {0.0f, 0.0f, 0.0f, 0.0f}, sa[4] = {0.0f, 0.0f, 0.0f, 0.0f}; // 4 loads in flight per lane
    int i = lane;
    for (; i + 96 < rows; i += 128) {
        for (int u = 0; u < 4; u++) { const float x = (float)col[i + 32 * u]; s[u] += x; sa[u] += fabsf(x); }
    }
    for (; i < rows; i += 32) { const float x = (float)col[i]; s[0] += x; sa[0] += fabsf(x); }
    const float st = warp_sum((s[0] + s[1]) + (s[2] + s[3])), sat = warp_sum((sa[0] + sa[1]) + (sa[2] + sa[3]));
    if (lane == 0) { sum[(long)b * cols + j] = st; abssum[(long)b * cols + j] = sat; }
}

// Column j of C[b] against its checksum c and bound bd (computed from the operands), given the
// column sums of C and of |C|: abft_check_columns' rule in the same fp32 arithmetic, so the GPU
// and the CPU agree on what is a fault; NaN fails it. chk/bound are written out (validation).
__device__ inline void abft_compare_column(const AbftGemm& g, int b, int j, float c, float bd, const float* csum,
                                           const float* cabs, float* chk, float* bound, float tau, float operand_u,
                                           int* flags, int* counter) {
    const long at = (long)b * g.N + j;
    chk[at] = c;
    bound[at] = bd;
    const float tol = abft_tolerance(tau, g.K, g.M, bd, operand_u);
    if (!abft_line_matches(csum[at], cabs[at], c, bd, tol)) { abft_report_fault(flags, counter, b); }
}

// The checksums of a column tile (alpha·ue·B_j + M·bias_j, from ue = e·A, ua = e·|A|) compared
// with C's column sums, for a B with contiguous rows (cs == 1): lanes over consecutive columns.
// grid (ceil(N/ABFT_TILE), batch), block (ABFT_TILE, ABFT_ROWS).
__global__ void abft_encode_verify_kernel(AbftGemm g, const float* ue, const float* ua, const float* csum, const float* cabs,
                                          float* chk, float* bound, float tau, float operand_u, int* flags, int* counter) {
    int j = blockIdx.x * ABFT_TILE + threadIdx.x, b = blockIdx.y;
    float c = 0.0f, bd = 0.0f;
    abft_column_checksum(g, b, j, ue, ua, &c, &bd);
    if (threadIdx.y != 0 || j >= g.N) { return; }
    abft_compare_column(g, b, j, c, bd, csum, cabs, chk, bound, tau, operand_u, flags, counter);
}

// The same for a B with contiguous columns (rs == 1: Wᵀ of a linear layer, Kᵀ, Vᵀ): one warp
// per column of B, its lanes over k. grid (ceil(N/8), batch), block 256.
__global__ void abft_encode_verify_contiguous_kernel(AbftGemm g, const float* ue, const float* ua, const float* csum,
                                                     const float* cabs, float* chk, float* bound, float tau,
                                                     float operand_u, int* flags, int* counter) {
    const int j = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32, b = blockIdx.y;
    if (j >= g.N) { return; }
    const floatX* col = g.B.p + b * g.strideB + j * g.B.cs;
    const float* e = ue + (long)b * g.K;
    const float* ea = ua + (long)b * g.K;
    float s = 0.0f, sa = 0.0f;
    for (int k = lane; k < g.K; k += 32) { const float x = (float)col[k]; s += e[k] * x; sa += ea[k] * fabsf(x); }
    s = warp_sum(s);
    sa = warp_sum(sa);
    if (lane != 0) { return; }
    const float bias = g.bias != nullptr ? (float)g.bias[j] : 0.0f;
    const float c = g.alpha * s + (float)g.M * bias, bd = fabsf(g.alpha) * sa + (float)g.M * fabsf(bias);
    abft_compare_column(g, b, j, c, bd, csum, cabs, chk, bound, tau, operand_u, flags, counter);
}

// Column j of C[b] against the column checksums of a split-K encoding: chk and bound hold
// (e·A)·B_j and (e·|A|)·|B_j| and become alpha·chk + M·bias_j and |alpha|·bound + M·|bias_j|
// before the comparison (abft_compare_column). grid (ceil(N/128), batch), block 128.
__global__ void abft_compare_kernel(AbftGemm g, const float* csum, const float* cabs, float* chk, float* bound, float tau,
                                    float operand_u, int* flags, int* counter) {
    const int j = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    if (j >= g.N) { return; }
    const long at = (long)b * g.N + j;
    const float bias = g.bias != nullptr ? (float)g.bias[j] : 0.0f;
    const float c = g.alpha * chk[at] + (float)g.M * bias, bd = fabsf(g.alpha) * bound[at] + (float)g.M * fabsf(bias);
    abft_compare_column(g, b, j, c, bd, csum, cabs, chk, bound, tau, operand_u, flags, counter);
}

// abft_compare_column's rule on a row of n elements: its sums (sum, abssum) against
// alpha·chk + Σ bias and the bound |alpha|·bd + Σ |bias| (bias sums may be null). False when
// the row fails.
__device__ inline bool abft_row_matches(float alpha, const float* bias_sum, const float* bias_abs, float chk, float bd,
                                        float sum, float abssum, float tau, int K, int n, float operand_u) {
    chk = alpha * chk + (bias_sum != nullptr ? *bias_sum : 0.0f);
    bd = fabsf(alpha) * bd + (bias_abs != nullptr ? *bias_abs : 0.0f);
    const float tol = abft_tolerance(tau, K, n, bd, operand_u);
    return abft_line_matches(sum, abssum, chk, bd, tol);
}

// ----------------------------------------------------------------------------
// fixes in place, by the kernel whose check found the fault (AbftFixer)

// Line x seen in a fix: *first keeps the first one (plus one), *more is raised by another.
__device__ inline void abft_note_line(int* first, int* more, int x) {
    const int was = atomicCAS(first, 0, x + 1);
    if (was != 0 && was != x + 1) { atomicExch(more, 1); }
}

// Element (i, j) of C[b] against its dot product recomputed from the operands (abft_recompute's
// order): replaced when farther from it than one element's tolerance, whose bound is that dot
// product's Σ|A||B| (NaN is replaced), and counted in fix.out[b]. Elements of a faulty line
// that the fault missed stay as the GEMM wrote them.
__device__ inline void abft_fix_element(const AbftFixer& f, int b, int i, int j) {
    const AbftGemm& g = f.g;
    const MatView A = {g.A.p + b * g.strideA, g.A.rs, g.A.cs}, B = {g.B.p + b * g.strideB, g.B.rs, g.B.cs};
    float acc = 0.0f, bd = 0.0f;
    for (int k = 0; k < g.K; k++) {
        const float a = A.at(i, k), x = B.at(k, j);
        acc += a * x;
        bd += fabsf(a) * fabsf(x);
    }
    const float bias = g.bias != nullptr ? (float)g.bias[j] : 0.0f;
    const float y = g.alpha * acc + bias;
    bd = fabsf(g.alpha) * bd + fabsf(bias);
    floatX* c = g.C + b * g.strideC + (long)i * g.ldc + j;
    if (fabsf((float)*c - y) <= abft_tolerance(f.tau, g.K, 1, bd, f.operand_u)) { return; }
    *c = (floatX)y;
    AbftOutcome* o = f.out + b;
    atomicExch(&o->status, (int)REPAIR_IN_PLACE);
    atomicAdd(&o->fixed, 1);
    abft_note_line(&o->row, &o->rows, i);
    abft_note_line(&o->col, &o->cols, j);
}

// A line of C[b] that still fails its check after its fix: counted, and the pass's gate
// raised (the update queued after the pass must not run; the pass is redone).
__device__ inline void abft_fix_failed(const AbftFixer& f, int b) {
    AbftOutcome* o = f.out + b;
    atomicExch(&o->status, (int)REPAIR_IN_PLACE);
    atomicExch(&o->still, 1);
    if (f.gate.failed != nullptr) { atomicExch(f.gate.failed, f.gate.pass); }
}

// Row i of C[b], elements [0, n), fixed by a warp (its lanes over j), then summed again: the
// sums (sum, abssum) of the fixed row, in every lane.
__device__ inline void abft_fix_row_warp(const AbftFixer& f, int b, int i, int n, float* sum, float* abssum) {
    const floatX* row = f.g.C + b * f.g.strideC + (long)i * f.g.ldc;
    float s = 0.0f, sa = 0.0f;
    for (int j = threadIdx.x % 32; j < n; j += 32) {
        abft_fix_element(f, b, i, j);
        const float x = (float)row[j]; // what this lane has just written, if anything
        s += x;
        sa += fabsf(x);
    }
    *sum = warp_sum(s);
    *abssum = warp_sum(sa);
}

// Column j of C[b], which failed its check against (c, bd) with tolerance tol, fixed by the one
// thread that checked it (a column's elements are a stride apart: a fault is rare enough that
// one thread may take them all), then checked again.
__device__ inline void abft_fix_column(const AbftFixer& f, int b, int j, float c, float bd, float tol) {
    const floatX* C = f.g.C + b * f.g.strideC;
    float cs = 0.0f, ca = 0.0f;
    for (int i = 0; i < f.g.M; i++) {
        abft_fix_element(f, b, i, j);
        const float x = (float)C[(long)i * f.g.ldc + j];
        cs += x;
        ca += fabsf(x);
    }
    if (!abft_line_matches(cs, ca, c, bd, tol)) { abft_fix_failed(f, b); }
}

// Row i of C (batch 1) against A_i·(B·e), whose partial sums over chunks of K the kernel that
// wrote A left (g.a_part (a_parts, M), g.a_part_abs), for the GEMMs of two
// checks (f.g; second.g.M == 0: one). One warp per row; a row that fails is fixed in place by
// its warp (with f.out), else flagged. grid (ceil(first M/8) + ceil(second M/8)), block 256.
__global__ void abft_row_compare_kernel(AbftFixer first, AbftFixer second, int* flags, int* counter) {
    const int first_blocks = (first.g.M + 7) / 8;
    const bool in_first = (int)blockIdx.x < first_blocks;
    const AbftFixer& f = in_first ? first : second;
    const AbftGemm& g = f.g;
    const int block = in_first ? blockIdx.x : blockIdx.x - first_blocks;
    const int i = block * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    const int chunks = g.a_parts > 0 ? g.a_parts : (g.K + ABFT_PART_ROWS - 1) / ABFT_PART_ROWS;
    if (i >= g.M) { return; } // whole warps leave together
    const floatX* row = g.C + (long)i * g.ldc;
    float s = 0.0f, sa = 0.0f, c = 0.0f, bd = 0.0f;
    for (int j = lane; j < g.N; j += 32) { const float x = (float)row[j]; s += x; sa += fabsf(x); }
    for (int k = lane; k < chunks; k += 32) { c += g.a_part[(long)k * g.M + i]; bd += g.a_part_abs[(long)k * g.M + i]; }
    s = warp_sum(s);
    sa = warp_sum(sa);
    c = warp_sum(c);
    bd = warp_sum(bd); // every lane holds the same sums (a butterfly): every lane reaches the same verdict
    if (abft_row_matches(g.alpha, g.bias_sum, g.bias_abs, c, bd, s, sa, f.tau, g.K, g.N, f.operand_u)) { return; }
    if (f.out == nullptr) {
        if (lane == 0) { abft_report_fault(flags, counter, 0); }
        return;
    }
    abft_fix_row_warp(f, 0, i, g.N, &s, &sa);
    if (!abft_row_matches(g.alpha, g.bias_sum, g.bias_abs, c, bd, s, sa, f.tau, g.K, g.N, f.operand_u) && lane == 0) {
        abft_fix_failed(f, 0);
    }
}

// A stack of L matrices W[l] (rows, cols), a weight of every layer, and its biases (L, rows): row
// sums (L, rows) and, per chunk of ABFT_TILE rows, partial column sums (L, chunks, cols) that
// abft_colsums_reduce_kernel adds up; the last block of each layer sums its bias (L). grid
// (ceil(rows/ABFT_TILE) + 1, L), block 256: a warp per row, then a thread per column.
__global__ void abft_stack_sums_kernel(const floatX* W, int rows, int cols, float* row_sum, float* row_abs, float* part,
                                       float* part_abs, const floatX* bias, float* bias_sum, float* bias_abs) {
    const int l = blockIdx.y, lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (blockIdx.x == gridDim.x - 1) { // the bias: one warp (a tiny vector, beside the matrix)
        if (warp != 0) { return; }
        float s = 0.0f, sa = 0.0f;
        for (int j = lane; j < rows; j += 32) { const float x = (float)bias[(long)l * rows + j]; s += x; sa += fabsf(x); }
        s = warp_sum(s);
        sa = warp_sum(sa);
        if (lane == 0) { bias_sum[l] = s; bias_abs[l] = sa; }
        return;
    }
    const int i0 = blockIdx.x * ABFT_TILE, i1 = min(i0 + ABFT_TILE, rows);
    const floatX* Wl = W + (long)l * rows * cols;
    for (int i = i0 + warp; i < i1; i += blockDim.x / 32) {
        float s = 0.0f, sa = 0.0f;
        for (int j = lane; j < cols; j += 32) { const float x = (float)Wl[(long)i * cols + j]; s += x; sa += fabsf(x); }
        s = warp_sum(s);
        sa = warp_sum(sa);
        if (lane == 0) { row_sum[(long)l * rows + i] = s; row_abs[(long)l * rows + i] = sa; }
    }
    for (int j = threadIdx.x; j < cols; j += blockDim.x) {
        float s = 0.0f, sa = 0.0f;
        for (int i = i0; i < i1; i++) { const float x = (float)Wl[(long)i * cols + j]; s += x; sa += fabsf(x); }
        const long at = ((long)l * (gridDim.x - 1) + blockIdx.x) * cols + j;
        part[at] = s;
        part_abs[at] = sa;
    }
}

// A warp's running sums over a row x that it writes, for AbftRowSums: add() each lane's
// elements (col: the column), then store() adds them over the warp and lane 0 writes them.
struct AbftRowAccumulator {
    float s = 0.0f, sa = 0.0f, c = 0.0f, ca = 0.0f;
    __device__ void add(float x, const AbftRowSums& r, int col) {
        s += x;
        sa += fabsf(x);
        c += x * r.w_sum[col];
        ca += fabsf(x) * r.w_abs[col];
    }
    // the row's sums, or its checksum's piece `piece` (of r.pieces); sums only where r has room for them
    __device__ void store(const AbftRowSums& r, long row, int piece = 0) {
        s = warp_sum(s); sa = warp_sum(sa); c = warp_sum(c); ca = warp_sum(ca);
        if (threadIdx.x % 32 != 0) { return; }
        if (r.sum != nullptr) { r.sum[row] = s; r.abs[row] = sa; }
        r.chk[row * r.pieces + piece] = c;
        r.bound[row * r.pieces + piece] = ca;
    }
};

// Column c of chunk `chunk` of AbftRowSums::part, over the rows [r0, r1) of x (rows, cols),
// whose element (i, c) x(i, c) returns, in order.
template <typename Element>
__device__ inline void abft_row_sums_part_column(const AbftRowSums& r, Element x, long chunk, long r0, long r1, int c,
                                                 int cols) {
    float p = 0.0f, pa = 0.0f;
    for (long i = r0; i < r1; i++) {
        const float v = x(i, c);
        p += r.row_w[i] * v;
        pa += r.row_wabs[i] * fabsf(v);
    }
    r.part[chunk * cols + c] = p;
    r.part_abs[chunk * cols + c] = pa;
}

// Chunk `chunk` of AbftRowSums::part, over the rows [r0, r1) of x: a thread per column. Call
// from the whole (1-D) block; x should read what the block has read or written already (a
// cache hit).
template <typename Element>
__device__ inline void abft_row_sums_part(const AbftRowSums& r, Element x, long chunk, long r0, long r1, int cols) {
    for (int c = threadIdx.x; c < cols; c += blockDim.x) { abft_row_sums_part_column(r, x, chunk, r0, r1, c, cols); }
}

// The reader's side of a reader check: whether row `row` of C (its index in (batch, M)), whose
// first n elements sum to (sum, abssum), matches its checksum: abft_compare_column's rule on a row.
__device__ inline bool abft_reader_row_ok(const AbftReaderCheck& c, long row, int n, float sum, float abssum) {
    float chk = 0.0f, bound = 0.0f;
    for (int p = 0; p < c.pieces; p++) { chk += c.chk[row * c.pieces + p]; bound += c.bound[row * c.pieces + p]; }
    return abft_row_matches(c.fix.g.alpha, c.bias_sum, c.bias_abs, chk, bound, sum, abssum, c.fix.tau, c.fix.g.K, n,
                            c.fix.operand_u);
}

// This lane's share (j = lane, lane + 32, ...) of the sums of x[0, n) and of |x|: what a warp
// passes to abft_reader_check_warp for a row it reads whole.
__device__ inline void abft_lane_sums(const floatX* x, int n, float* sum, float* abssum) {
    float s = 0.0f, sa = 0.0f;
    for (int j = threadIdx.x % 32; j < n; j += 32) { const float v = (float)x[j]; s += v; sa += fabsf(v); }
    *sum = s;
    *abssum = sa;
}

// The reader check of row `row` of C (M rows per batch entry) by the warp that reads it, whose
// lanes hold partial sums of its first n elements: when the row fails, the warp fixes it in
// place (abft_fix_row_warp) and checks it again; a row still failing raises the pass's gate.
// True (in every lane) when the row was fixed: the reader must read it again. No check: false.
__device__ inline bool abft_reader_check_warp(const AbftReaderCheck& c, long row, int M, int n, float sum, float abssum) {
    // every lane holds the same sums (a butterfly), so every lane reaches the same verdict
    if (c.chk == nullptr || abft_reader_row_ok(c, row, n, warp_sum(sum), warp_sum(abssum))) { return false; }
    const int b = (int)(row / M), i = (int)(row % M);
    float s = 0.0f, sa = 0.0f;
    abft_fix_row_warp(c.fix, b, i, n, &s, &sa);
    if (!abft_reader_row_ok(c, row, n, s, sa) && threadIdx.x % 32 == 0) { abft_fix_failed(c.fix, b); }
    return true;
}

// The same by a whole block that reads the row alone, with the row's sums in thread 0: the
// block's threads fix the row's elements, thread 0 checks it again. Call from every thread.
__device__ inline bool abft_reader_check_block(const AbftReaderCheck& c, long row, int M, int n, float sum, float abssum) {
    if (c.chk == nullptr) { return false; }
    if (!__syncthreads_or(threadIdx.x == 0 && !abft_reader_row_ok(c, row, n, sum, abssum))) { return false; }
    const int b = (int)(row / M), i = (int)(row % M);
    for (int j = threadIdx.x; j < n; j += blockDim.x) { abft_fix_element(c.fix, b, i, j); }
    __syncthreads(); // the fixed row, for thread 0's sums and the reader's second read
    if (threadIdx.x != 0) { return true; }
    const floatX* x = c.fix.g.C + b * c.fix.g.strideC + (long)i * c.fix.g.ldc;
    float s = 0.0f, sa = 0.0f;
    for (int j = 0; j < n; j++) { s += (float)x[j]; sa += fabsf((float)x[j]); }
    if (!abft_reader_row_ok(c, row, n, s, sa)) { abft_fix_failed(c.fix, b); }
    return true;
}

// The causal row checksums of C[b] = A·B (alpha aside), over j <= i: chk[i] = A_i·(Σ_{j<=i} B's
// column j) and bound[i] = |A_i|·(Σ_{j<=i} |B's column j|), from prefix sums of B's columns: one
// pass over A and B, none over C. One block per batch entry, its warps over consecutive chunks
// of rows, a lane per k (k = lane, lane + 32, ...; K <= ABFT_READER_MAX_K), so that every warp
// has a chunk of independent loads in flight: first each warp sums B's columns over its chunk
// (into shared memory: 2·warps·K floats), then each warp starts from the sums of the chunks
// before it and goes down its rows again (B's reads are the same sectors: L2, not DRAM), a warp
// sum per row. With g.a_wsum, it also sums A's rows weighted by a_row_w into g.a_wsum (and |A|
// by a_row_wabs into a_wabs): the column checksums of a GEMM that reads A later (dV = Pᵀ·dO
// from dP's A = dO). grid (batch), block abft_prefix_warps(K)·32, dynamic shared memory
// abft_prefix_shared(K).
__global__ void abft_causal_rowsums_kernel(AbftGemm g, float* chk, float* bound) {
    DYNAMIC_SHARED(float, part); // (2, warps, K): per chunk, B's column sums and |B|'s
    constexpr int KS = ABFT_READER_MAX_K / 32; // k per lane, at most
    const int b = blockIdx.x, lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32, K = g.K;
    const MatView A = {g.A.p + b * g.strideA, g.A.rs, g.A.cs}, B = {g.B.p + b * g.strideB, g.B.rs, g.B.cs};
    const float* w = g.a_wsum != nullptr ? g.a_row_w + (long)b * g.M : nullptr;
    const float* wa = g.a_wsum != nullptr ? g.a_row_wabs + (long)b * g.M : nullptr;
    const int chunk = (g.M + warps - 1) / warps, i0 = min(g.M, warp * chunk), i1 = min(g.M, i0 + chunk);
    float* sum = part + (long)warp * K;
    float* sum_abs = part + (long)(warps + warp) * K;
    // B's columns j <= i are summed for row i; only j < N exist
    for (int u = 0; u < KS && lane + 32 * u < K; u++) {
        const int k = lane + 32 * u;
        float s = 0.0f, sa = 0.0f;
        for (int i = i0; i < min(i1, g.N); i++) { const float x = B.at(k, i); s += x; sa += fabsf(x); }
        sum[k] = s;
        sum_abs[k] = sa;
    }
    __syncthreads();
    float pre[KS], pre_abs[KS], ws[KS], wsa[KS];
    for (int u = 0; u < KS; u++) {
        const int k = lane + 32 * u;
        pre[u] = 0.0f; pre_abs[u] = 0.0f; ws[u] = 0.0f; wsa[u] = 0.0f;
        for (int c = 0; c < warp && k < K; c++) { pre[u] += part[(long)c * K + k]; pre_abs[u] += part[(long)(warps + c) * K + k]; }
    }
    for (int i = i0; i < i1; i++) {
        float p = 0.0f, pa = 0.0f;
        for (int u = 0; u < KS && lane + 32 * u < K; u++) {
            const int k = lane + 32 * u;
            if (i < g.N) { const float x = B.at(k, i); pre[u] += x; pre_abs[u] += fabsf(x); }
            const float a = A.at(i, k);
            p += a * pre[u];
            pa += fabsf(a) * pre_abs[u];
            if (w != nullptr) { ws[u] += w[i] * a; wsa[u] += wa[i] * fabsf(a); }
        }
        p = warp_sum(p);
        pa = warp_sum(pa);
        if (lane == 0) { chk[(long)b * g.M + i] = p; bound[(long)b * g.M + i] = pa; }
    }
    if (w == nullptr) { return; }
    __syncthreads(); // part[] now takes each warp's weighted sums, added in warp order
    for (int u = 0; u < KS && lane + 32 * u < K; u++) { sum[lane + 32 * u] = ws[u]; sum_abs[lane + 32 * u] = wsa[u]; }
    __syncthreads();
    for (int k = threadIdx.x; k < K; k += blockDim.x) {
        float s = 0.0f, sa = 0.0f;
        for (int c = 0; c < warps; c++) { s += part[(long)c * K + k]; sa += part[(long)(warps + c) * K + k]; }
        g.a_wsum[(long)b * K + k] = s;
        g.a_wabs[(long)b * K + k] = sa;
    }
}

// ----------------------------------------------------------------------------
// the repair kernel, for the entries flags[] marks

// Batch entry b, by one block; an entry the check did not flag leaves at once, so that the
// kernel can follow every check in stream order at the cost of a launch. A flagged entry is handled by
// its block from start to end, in abft_repair's order: the fp64 operand sums, the checksums of
// every column and row, each line judged (abft_judge), the rebuild by columns if every column
// is fixable, else by rows if every row is; then the rebuilt entry is checked again against the
// fast path's column checksums (chk, bound; null: the fp64 ones just computed), and its flag
// cleared. out[b] says what happened; an entry left faulty also fails the pass's gate.
// One block per entry is slow for a large entry (a linear layer's), but it only runs after a
// fault.
__device__ void abft_repair_entry(const AbftRepairJob& j, int b, float extreme, float tau, float operand_u) {
    const AbftGemm& g = j.g;
    int* flags = j.flags;
    const float *chk = j.chk, *bound = j.bound;
    const AbftCorrectScratch& s = j.cs;
    AbftOutcome* out = j.out;
    if (flags[b] == 0) {
        if (threadIdx.x == 0) { out[b] = AbftOutcome{REPAIR_NONE, -1, 0, 0, 0, 0, 0, 0}; }
        return; // the whole block leaves: no barrier is skipped by part of it
    }
    __shared__ int unfixable[2]; // lines beyond one fix: by columns, by rows
    __shared__ int still;
    if (threadIdx.x == 0) { unfixable[0] = 0; unfixable[1] = 0; still = 0; }
    const MatView A = {g.A.p + b * g.strideA, g.A.rs, g.A.cs}, B = {g.B.p + b * g.strideB, g.B.rs, g.B.cs};
    floatX* C = g.C + b * g.strideC;
    const double alpha = g.alpha;
    double* e = s.enc + (long)b * 6 * g.K;
    double* biasw = s.biasw + (long)b * 3;
    double* colchk = s.colchk + (long)b * g.N * 3;
    double* rowchk = s.rowchk + (long)b * g.M * 3;
    AbftVerdict* colv = s.colv + (long)b * g.N;
    AbftVerdict* rowv = s.rowv + (long)b * g.M;
    // encode: e·A, w·A, e·|A| and B·e, B·w, |B|·e, one k per thread
    for (int k = threadIdx.x; k < g.K; k += blockDim.x) {
        double ae = 0.0, aw = 0.0, aa = 0.0, be = 0.0, bw = 0.0, ba = 0.0;
        for (int i = 0; i < g.M; i++) { double x = A.at(i, k); ae += x; aw += (i + 1) * x; aa += fabs(x); }
        for (int j = 0; j < g.N; j++) { double x = B.at(k, j); be += x; bw += (j + 1) * x; ba += fabs(x); }
        e[k] = ae; e[g.K + k] = aw; e[2 * g.K + k] = aa; e[3 * g.K + k] = be; e[4 * g.K + k] = bw; e[5 * g.K + k] = ba;
    }
    if (threadIdx.x == 0) {
        double bs = 0.0, bws = 0.0, bas = 0.0;
        for (int j = 0; g.bias && j < g.N; j++) {
            const double bj = (float)g.bias[j];
            bs += bj; bws += (j + 1.0) * bj; bas += fabs(bj);
        }
        biasw[0] = bs; biasw[1] = bws; biasw[2] = bas;
    }
    __syncthreads();
    // the checksums of every line: t < N is column t, else row t − N
    for (int t = threadIdx.x; t < g.N + g.M; t += blockDim.x) {
        double p = 0.0, w = 0.0, a = 0.0;
        if (t < g.N) {
            const double bj = g.bias ? (float)g.bias[t] : 0.0;
            for (int k = 0; k < g.K; k++) { double x = B.at(k, t); p += e[k] * x; w += e[g.K + k] * x; a += e[2 * g.K + k] * fabs(x); }
            double* c = colchk + (long)t * 3;
            c[0] = alpha * p + g.M * bj;
            c[1] = alpha * w + 0.5 * g.M * (g.M + 1.0) * bj;
            c[2] = fabs(alpha) * a + g.M * fabs(bj);
        } else {
            const int i = t - g.N;
            for (int k = 0; k < g.K; k++) { double x = A.at(i, k); p += x * e[3 * g.K + k]; w += x * e[4 * g.K + k]; a += fabs(x) * e[5 * g.K + k]; }
            double* r = rowchk + (long)i * 3;
            r[0] = alpha * p + biasw[0];
            r[1] = alpha * w + biasw[1];
            r[2] = fabs(alpha) * a + biasw[2];
        }
    }
    __syncthreads();
    // judge every line of C against its checksums
    for (int t = threadIdx.x; t < g.N + g.M; t += blockDim.x) {
        const bool is_col = t < g.N;
        const int l = is_col ? t : t - g.N, len = is_col ? g.M : g.N;
        AbftLine line;
        abft_line_init(&line);
        for (int x = 0; x < len; x++) {
            abft_line_add(&line, x, (float)(is_col ? C[(long)x * g.ldc + l] : C[(long)l * g.ldc + x]), extreme);
        }
        const double* c = is_col ? colchk + (long)l * 3 : rowchk + (long)l * 3;
        AbftVerdict v = abft_judge(line, c[0], c[1], abft_tolerance(tau, g.K, len, (float)c[2], operand_u), len);
        (is_col ? colv : rowv)[l] = v;
        if (v.kind == LINE_UNFIXABLE) { atomicAdd(&unfixable[is_col ? 0 : 1], 1); }
    }
    __syncthreads();
    // rebuild: by columns if all are fixable, else by rows if all are, else nothing
    const int mode = unfixable[0] == 0 ? REPAIR_BY_COLUMNS : unfixable[1] == 0 ? REPAIR_BY_ROWS : REPAIR_BEYOND;
    if (mode == REPAIR_BY_COLUMNS) {
        for (int j = threadIdx.x; j < g.N; j += blockDim.x) {
            if (colv[j].kind == LINE_FIXABLE) {
                floatX* x = &C[(long)colv[j].index * g.ldc + j];
                *x = (floatX)abft_repaired(colv[j], g, A, B, colv[j].index, j, (float)*x);
            }
        }
    } else if (mode == REPAIR_BY_ROWS) {
        for (int i = threadIdx.x; i < g.M; i += blockDim.x) {
            if (rowv[i].kind == LINE_FIXABLE) {
                floatX* x = &C[(long)i * g.ldc + rowv[i].index];
                *x = (floatX)abft_repaired(rowv[i], g, A, B, i, rowv[i].index, (float)*x);
            }
        }
    }
    __syncthreads();
    // check the rebuilt entry: every column against the fast path's checksum (else the fp64
    // one), its rule
    for (int j = threadIdx.x; mode != REPAIR_BEYOND && j < g.N; j += blockDim.x) {
        float sum = 0.0f, abssum = 0.0f;
        for (int i = 0; i < g.M; i++) { float x = (float)C[(long)i * g.ldc + j]; sum += x; abssum += fabsf(x); }
        const long at = (long)b * g.N + j;
        const float c = chk != nullptr ? chk[at] : (float)colchk[(long)j * 3];
        const float bd = bound != nullptr ? bound[at] : (float)colchk[(long)j * 3 + 2];
        const float tol = abft_tolerance(tau, g.K, g.M, bd, operand_u);
        if (!abft_line_matches(sum, abssum, c, bd, tol)) { atomicAdd(&still, 1); }
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        flags[b] = 0; // handled: the next check starts clear
        AbftOutcome o = {mode, -1, mode == REPAIR_BEYOND || still != 0, 0, 0, 0, 0, 0};
        if (mode != REPAIR_BEYOND) {
            const bool by_rows = mode == REPAIR_BY_ROWS;
            long fixed = 0;
            o.pattern = abft_fix_pattern(by_rows ? rowv : colv, by_rows ? g.M : g.N, by_rows, &fixed);
            o.fixed = (int)fixed;
        }
        out[b] = o;
        if (o.still != 0 && j.gate.failed != nullptr) { atomicExch(j.gate.failed, j.gate.pass); } // blocks may race
    }
}

// One block per batch entry. grid (job.g.batch), block 256.
__global__ void abft_repair_kernel(AbftRepairJob job, float extreme, float tau, float operand_u) {
    abft_repair_entry(job, blockIdx.x, extreme, tau, operand_u);
}
