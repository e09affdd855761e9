// abft_gpu.cuh: ATTNChecker on the GPU: what abft.cuh's protected GEMM (abft_gemm) runs in a
// CUDA build instead of the CPU loops of llmc/abft_core.h, with the same rules in the same
// fp32 arithmetic, so that the GPU and the CPU agree on what is a fault.
//
//   abft_gpu_verify    checks every batch entry of a GEMM's output in GPU memory and repairs
//                      what the checksums can, counting as the CPU path does: abft_gpu_check
//                      (the fast path), then after a detection abft_gpu_repair (the slow path);
//                      dev/cuda's ABFT versions call these two
//   abft_gpu_corrupt   fault injection (-fi) into GPU memory
//
// Below them the two launch sequences they are made of:
//   fast path, after every protected GEMM (abft_gpu_encode_verify): the column sums of A (e·A,
//     e·|A|) and of C, then the column checksums (e·A)·B and the comparison; a faulty batch
//     entry raises its flag and a device counter;
//   slow path, after a detection (abft_gpu_correct): fp64 checksums of the flagged entries,
//     one thread per column and per row judging its line (abft_judge, as abft_repair does),
//     then the rebuild, by columns if every column is fixable, else by rows.
// then the scratch buffers, then the kernels.
//
// Included by abft.cuh in CUDA builds (nvcc, or the CPU harness: llmc/cuda_common.h).
#pragma once

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

// the correction's buffers, for the entries flags[] marks
struct AbftCorrectScratch {      // device buffers
    double* enc;                 // (batch, 6, K): e·A, w·A, e·|A|, B·e, B·w, |B|·e
    double* biasw;               // (batch, 3): Σ bias, Σ (j+1)·bias, Σ |bias|
    double* colchk;              // (batch, N, 3): plain, weighted, bound of each column
    double* rowchk;              // (batch, M, 3): the same for each row
    AbftVerdict* colv;           // (batch, N)
    AbftVerdict* rowv;           // (batch, M)
    int* unfixable;              // (batch, 2): lines beyond one fix, by columns / by rows
    int* status;                 // (batch): REPAIR_*
};

enum AbftRepairStatus { REPAIR_NONE = 0, REPAIR_BY_COLUMNS = 1, REPAIR_BY_ROWS = 2, REPAIR_BEYOND = 3 };

// everything a check needs, grown to the largest GEMM checked so far
struct AbftGpuScratch {
    float *ue, *ua;              // (batch, K)
    float *chk, *bound;          // (batch, N)
    float *csum, *cabs;          // (batch, N) column sums of C and of |C|
    float *part, *part_abs;      // (batch, row chunks, max(K, N)) partial column sums
    int* flags;                  // (batch) failed columns per entry
    int* counter;                // (1) faulty entries detected, cumulative until reset
    AbftCorrectScratch cs;
    long cap_bk, cap_bn, cap_bm, cap_b, cap_part; // capacities: batch·K, batch·N, batch·M, batch, partials
};

inline int abft_row_chunks(int rows) { return (rows + ABFT_ROW_CHUNK - 1) / ABFT_ROW_CHUNK; }

inline int abft_ceil_div(long a, long b) { return (int)((a + b - 1) / b); }

// ----------------------------------------------------------------------------
// contents: the entry points first, then the launch sequences, the scratch, the kernels

inline bool abft_gpu_verify(Abft* abft, const AbftGemm& g, int op, int layer);
inline void abft_gpu_corrupt(const AbftGemm& g, int b, int i, int j, int type);

inline void abft_gpu_encode_verify(const AbftGemm& g, AbftGpuScratch* s, float tau, float operand_u, cudaStream_t stream);
inline void abft_gpu_correct(const AbftGemm& g, AbftGpuScratch* s, float extreme, float tau, float operand_u,
                             cudaStream_t stream);
inline void abft_gpu_colsums(AbftGpuScratch* s, MatView X, long strideX, int batch, int rows, int cols, float* sum,
                             float* abssum, cudaStream_t stream);
inline void abft_gpu_reserve(AbftGpuScratch* s, const AbftGemm& g);
inline void abft_gpu_free(AbftGpuScratch* s);

__global__ void abft_colsums_partial_kernel(MatView X, long strideX, int rows, int cols, float* part, float* part_abs);
__global__ void abft_colsums_reduce_kernel(const float* part, const float* part_abs, int chunks, int cols, float* sum,
                                           float* abssum);
__global__ void abft_colsums_contiguous_kernel(MatView X, long strideX, int rows, int cols, float* sum, float* abssum);
__global__ void abft_encode_verify_kernel(AbftGemm g, const float* ue, const float* ua, const float* csum, const float* cabs,
                                          float* chk, float* bound, float tau, float operand_u, int* flags, int* counter);
__global__ void abft_encode_verify_contiguous_kernel(AbftGemm g, const float* ue, const float* ua, const float* csum,
                                                     const float* cabs, float* chk, float* bound, float tau,
                                                     float operand_u, int* flags, int* counter);
__global__ void abft_correct_encode_kernel(AbftGemm g, const int* flags, AbftCorrectScratch s);
__global__ void abft_correct_checksums_kernel(AbftGemm g, const int* flags, AbftCorrectScratch s);
__global__ void abft_correct_judge_kernel(AbftGemm g, const int* flags, AbftCorrectScratch s, float extreme, float tau,
                                          float operand_u);
__global__ void abft_correct_apply_kernel(AbftGemm g, const int* flags, AbftCorrectScratch s);

// ----------------------------------------------------------------------------
// the entry points

static AbftGpuScratch g_abft_gpu;              // grown to the largest protected GEMM
static cudaEvent_t g_abft_start, g_abft_stop;  // time the checks on the GPU's clock

// What the slow path did to each batch entry of one GEMM (host copies).
struct AbftGpuRepair {
    std::vector<int> flagged;  // (batch) nonzero: the check failed
    std::vector<int> status;   // (batch) AbftRepairStatus: how the correction kernels went about it
    std::vector<int> pattern;  // (batch) AbftFixPattern of what was rebuilt, -1 beyond the checksums
    std::vector<long> fixed;   // (batch) elements rebuilt
    std::vector<int> still;    // (batch) nonzero: still faulty when checked again
    bool ok(int b) const { return pattern[b] >= 0 && still[b] == 0; }
};

inline int abft_gpu_check(const AbftConfig& cfg, const AbftGemm& g, AbftGpuScratch* s);
inline AbftGpuRepair abft_gpu_repair(const AbftConfig& cfg, const AbftGemm& g, AbftGpuScratch* s);
inline int abft_gpu_repaired_pattern(const AbftGemm& g, const AbftGpuScratch* s, int b, int status, long* fixed);
inline std::vector<int> abft_gpu_ints(const int* device, int n);

// abft_verify's GPU counterpart: checks every batch entry of C and repairs in place what the
// checksums can, counting as the CPU path does. False when an entry is beyond repair (the
// caller recomputes).
inline bool abft_gpu_verify(Abft* abft, const AbftGemm& g, int op, int layer) {
    if (g_abft_start == nullptr) {
        cudaCheck(cudaEventCreate(&g_abft_start));
        cudaCheck(cudaEventCreate(&g_abft_stop));
    }
    cudaCheck(cudaEventRecord(g_abft_start, 0));
    const int faulty = abft_gpu_check(abft->cfg, g, &g_abft_gpu);
    cudaCheck(cudaEventRecord(g_abft_stop, 0));
    cudaCheck(cudaEventSynchronize(g_abft_stop));
    float ms = 0.0f;
    cudaCheck(cudaEventElapsedTime(&ms, g_abft_start, g_abft_stop));
    abft->n.seconds[op] += 1e-3 * ms;
    abft->n.checked[op]++;
    if (faulty == 0) { return true; }
    const double t0 = wall_seconds();
    const AbftGpuRepair r = abft_gpu_repair(abft->cfg, g, &g_abft_gpu);
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

// A fault lands in GPU memory: read the element, write what a faulty unit would have written.
inline void abft_gpu_corrupt(const AbftGemm& g, int b, int i, int j, int type) {
    float* x = g.C + b * g.strideC + (long)i * g.ldc + j;
    float value = 0.0f;
    cudaCheck(cudaMemcpy(&value, x, sizeof(float), cudaMemcpyDeviceToHost));
    value = abft_fault_value(type, value);
    cudaCheck(cudaMemcpy(x, &value, sizeof(float), cudaMemcpyHostToDevice));
}

// The fast path: encodes, checks, and returns the number of faulty batch entries (flagged in
// s->flags). This waits for the GPU: the one synchronization a protected GEMM costs.
inline int abft_gpu_check(const AbftConfig& cfg, const AbftGemm& g, AbftGpuScratch* s) {
    abft_gpu_reserve(s, g);
    cudaCheck(cudaMemsetAsync(s->counter, 0, sizeof(int), 0));
    abft_gpu_encode_verify(g, s, cfg.tau, cfg.operand_u, 0);
    int faulty = 0;
    cudaCheck(cudaMemcpy(&faulty, s->counter, sizeof(int), cudaMemcpyDeviceToHost));
    return faulty;
}

// The slow path, for the entries the last check flagged: rebuild what the checksums can, then
// check again.
inline AbftGpuRepair abft_gpu_repair(const AbftConfig& cfg, const AbftGemm& g, AbftGpuScratch* s) {
    AbftGpuRepair r;
    r.flagged = abft_gpu_ints(s->flags, g.batch);
    abft_gpu_correct(g, s, cfg.extreme, cfg.tau, cfg.operand_u, 0);
    r.status = abft_gpu_ints(s->cs.status, g.batch);
    r.pattern.assign(g.batch, -1);
    r.fixed.assign(g.batch, 0);
    for (int b = 0; b < g.batch; b++) {
        if (r.flagged[b] != 0 && (r.status[b] == REPAIR_BY_COLUMNS || r.status[b] == REPAIR_BY_ROWS)) {
            r.pattern[b] = abft_gpu_repaired_pattern(g, s, b, r.status[b], &r.fixed[b]);
        }
    }
    abft_gpu_check(cfg, g, s); // overwrites the flags with the repaired output's
    r.still = abft_gpu_ints(s->flags, g.batch);
    return r;
}

// The pattern the correction kernels rebuilt in entry b (from their verdicts), for the counters.
inline int abft_gpu_repaired_pattern(const AbftGemm& g, const AbftGpuScratch* s, int b, int status, long* fixed) {
    const bool by_rows = status == REPAIR_BY_ROWS;
    const int lines = by_rows ? g.M : g.N;
    std::vector<AbftVerdict> v(lines);
    const AbftVerdict* src = by_rows ? s->cs.rowv + (long)b * g.M : s->cs.colv + (long)b * g.N;
    cudaCheck(cudaMemcpy(v.data(), src, lines * sizeof(AbftVerdict), cudaMemcpyDeviceToHost));
    return abft_fix_pattern(v.data(), lines, by_rows, fixed);
}

inline std::vector<int> abft_gpu_ints(const int* device, int n) {
    std::vector<int> host(n);
    cudaCheck(cudaMemcpy(host.data(), device, n * sizeof(int), cudaMemcpyDeviceToHost));
    return host;
}

// ----------------------------------------------------------------------------
// the launch sequences

// The fast path, after every protected GEMM: e·A and e·|A|, the column sums of C, then the
// column checksums and the check. Resets flags first; adds the faulty entries to *counter
// (reset it to read one GEMM's).
inline void abft_gpu_encode_verify(const AbftGemm& g, AbftGpuScratch* s, float tau, float operand_u, cudaStream_t stream) {
    abft_gpu_reserve(s, g);
    cudaCheck(cudaMemsetAsync(s->flags, 0, g.batch * sizeof(int), stream));
    abft_gpu_colsums(s, g.A, g.strideA, g.batch, g.M, g.K, s->ue, s->ua, stream);
    abft_gpu_colsums(s, MatView{g.C, g.ldc, 1}, g.strideC, g.batch, g.M, g.N, s->csum, s->cabs, stream);
    if (g.B.rs == 1 && g.B.cs != 1) {
        LAUNCH(abft_encode_verify_contiguous_kernel, dim3(abft_ceil_div(g.N, 8), g.batch), dim3(256), 0, stream)(
            g, s->ue, s->ua, s->csum, s->cabs, s->chk, s->bound, tau, operand_u, s->flags, s->counter);
    } else {
        LAUNCH(abft_encode_verify_kernel, dim3(abft_ceil_div(g.N, ABFT_TILE), g.batch), dim3(ABFT_TILE, ABFT_ROWS), 0, stream)(
            g, s->ue, s->ua, s->csum, s->cabs, s->chk, s->bound, tau, operand_u, s->flags, s->counter);
    }
    cudaCheckLaunch();
}

// The slow path, for the entries flags[] marks: status[b] tells what was done.
inline void abft_gpu_correct(const AbftGemm& g, AbftGpuScratch* s, float extreme, float tau, float operand_u,
                             cudaStream_t stream) {
    cudaCheck(cudaMemsetAsync(s->cs.unfixable, 0, (size_t)g.batch * 2 * sizeof(int), stream));
    cudaCheck(cudaMemsetAsync(s->cs.status, 0, (size_t)g.batch * sizeof(int), stream));
    const int lines = abft_ceil_div(g.N + g.M, 128), longest = abft_ceil_div(g.M > g.N ? g.M : g.N, 128);
    LAUNCH(abft_correct_encode_kernel, dim3(abft_ceil_div(g.K, 128), g.batch), dim3(128), 0, stream)(g, s->flags, s->cs);
    cudaCheckLaunch();
    LAUNCH(abft_correct_checksums_kernel, dim3(lines, g.batch), dim3(128), 0, stream)(g, s->flags, s->cs);
    cudaCheckLaunch();
    LAUNCH(abft_correct_judge_kernel, dim3(lines, g.batch), dim3(128), 0, stream)(g, s->flags, s->cs, extreme, tau, operand_u);
    cudaCheckLaunch();
    LAUNCH(abft_correct_apply_kernel, dim3(longest, g.batch), dim3(128), 0, stream)(g, s->flags, s->cs);
    cudaCheckLaunch();
}

// Column sums of the (rows, cols) views X[b] into sum, abssum (batch, cols): a warp per column
// when columns are contiguous, else the two stages over row chunks.
inline void abft_gpu_colsums(AbftGpuScratch* s, MatView X, long strideX, int batch, int rows, int cols, float* sum,
                             float* abssum, cudaStream_t stream) {
    if (X.rs == 1 && X.cs != 1) {
        LAUNCH(abft_colsums_contiguous_kernel, dim3(abft_ceil_div(cols, 8), batch), dim3(256), 0, stream)(X, strideX, rows,
                                                                                                     cols, sum, abssum);
        cudaCheckLaunch();
        return;
    }
    const int chunks = abft_row_chunks(rows);
    LAUNCH(abft_colsums_partial_kernel, dim3(abft_ceil_div(cols, ABFT_TILE), batch, chunks), dim3(ABFT_TILE, ABFT_ROWS), 0,
           stream)(X, strideX, rows, cols, s->part, s->part_abs);
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
                  s->cs.enc, s->cs.biasw, s->cs.colchk, s->cs.rowchk, s->cs.colv, s->cs.rowv, s->cs.unfixable, s->cs.status};
    for (void* p : ps) { cudaCheck(cudaFree(p)); }
    s->cap_bk = s->cap_bn = s->cap_bm = s->cap_b = s->cap_part = 0;
}

// Grows the scratch to fit g (buffers are only ever reallocated upward).
inline void abft_gpu_reserve(AbftGpuScratch* s, const AbftGemm& g) {
    const long bk = (long)g.batch * g.K, bn = (long)g.batch * g.N, bm = (long)g.batch * g.M, b = g.batch;
    const long part = (long)g.batch * abft_row_chunks(g.M) * (g.K > g.N ? g.K : g.N);
    if (bk <= s->cap_bk && bn <= s->cap_bn && bm <= s->cap_bm && b <= s->cap_b && part <= s->cap_part) { return; }
    if (s->cap_b > 0) { abft_gpu_free(s); }
    s->cap_bk = bk > s->cap_bk ? bk : s->cap_bk;
    s->cap_bn = bn > s->cap_bn ? bn : s->cap_bn;
    s->cap_bm = bm > s->cap_bm ? bm : s->cap_bm;
    s->cap_b = b > s->cap_b ? b : s->cap_b;
    s->cap_part = part > s->cap_part ? part : s->cap_part;
    cudaCheck(cudaMalloc(&s->ue, s->cap_bk * sizeof(float)));
    cudaCheck(cudaMalloc(&s->ua, s->cap_bk * sizeof(float)));
    cudaCheck(cudaMalloc(&s->chk, s->cap_bn * sizeof(float)));
    cudaCheck(cudaMalloc(&s->bound, s->cap_bn * sizeof(float)));
    cudaCheck(cudaMalloc(&s->csum, s->cap_bn * sizeof(float)));
    cudaCheck(cudaMalloc(&s->cabs, s->cap_bn * sizeof(float)));
    cudaCheck(cudaMalloc(&s->part, s->cap_part * sizeof(float)));
    cudaCheck(cudaMalloc(&s->part_abs, s->cap_part * sizeof(float)));
    cudaCheck(cudaMalloc(&s->flags, s->cap_b * sizeof(int)));
    cudaCheck(cudaMalloc(&s->counter, sizeof(int)));
    cudaCheck(cudaMalloc(&s->cs.enc, s->cap_bk * 6 * sizeof(double)));
    cudaCheck(cudaMalloc(&s->cs.biasw, s->cap_b * 3 * sizeof(double)));
    cudaCheck(cudaMalloc(&s->cs.colchk, s->cap_bn * 3 * sizeof(double)));
    cudaCheck(cudaMalloc(&s->cs.rowchk, s->cap_bm * 3 * sizeof(double)));
    cudaCheck(cudaMalloc(&s->cs.colv, s->cap_bn * sizeof(AbftVerdict)));
    cudaCheck(cudaMalloc(&s->cs.rowv, s->cap_bm * sizeof(AbftVerdict)));
    cudaCheck(cudaMalloc(&s->cs.unfixable, s->cap_b * 2 * sizeof(int)));
    cudaCheck(cudaMalloc(&s->cs.status, s->cap_b * sizeof(int)));
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
    const float bias = (g.bias != nullptr && j < g.N) ? g.bias[j] : 0.0f;
    *chk = g.alpha * s + (float)g.M * bias;
    *bound = fabsf(g.alpha) * sa + (float)g.M * fabsf(bias);
}

// Records a failed column of batch entry b: the first failure of an entry bumps the counter.
__device__ inline void abft_report_fault(int* flags, int* counter, int b) {
    if (atomicAdd(&flags[b], 1) == 0) { atomicAdd(counter, 1); }
}

// part[b][chunk][j] = Σ X_b(i, j), part_abs likewise of |X_b(i, j)|, over the chunk's rows.
// grid (ceil(cols/ABFT_TILE), batch, chunks), block (ABFT_TILE, ABFT_ROWS).
__global__ void abft_colsums_partial_kernel(MatView X, long strideX, int rows, int cols, float* part, float* part_abs) {
    const int j = blockIdx.x * ABFT_TILE + threadIdx.x, b = blockIdx.y, chunk = blockIdx.z;
    const int i1 = min((chunk + 1) * ABFT_ROW_CHUNK, rows);
    const MatView V = {X.p + b * strideX, X.rs, X.cs};
    float s = 0.0f, sa = 0.0f;
    for (int i = chunk * ABFT_ROW_CHUNK + threadIdx.y; j < cols && i < i1; i += ABFT_ROWS) {
        float x = V.at(i, j);
        s += x;
        sa += fabsf(x);
    }
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
    const float* col = X.p + b * strideX + j * X.cs;
    float s = 0.0f, sa = 0.0f;
    for (int i = lane; i < rows; i += 32) { s += col[i]; sa += fabsf(col[i]); }
    s = warp_sum(s);
    sa = warp_sum(sa);
    if (lane == 0) { sum[(long)b * cols + j] = s; abssum[(long)b * cols + j] = sa; }
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
    if (!((fabsf(csum[at] - c) <= tol) && (cabs[at] <= bd + tol))) { abft_report_fault(flags, counter, b); }
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
    const float* col = g.B.p + b * g.strideB + j * g.B.cs;
    const float* e = ue + (long)b * g.K;
    const float* ea = ua + (long)b * g.K;
    float s = 0.0f, sa = 0.0f;
    for (int k = lane; k < g.K; k += 32) { s += e[k] * col[k]; sa += ea[k] * fabsf(col[k]); }
    s = warp_sum(s);
    sa = warp_sum(sa);
    if (lane != 0) { return; }
    const float bias = g.bias != nullptr ? g.bias[j] : 0.0f;
    const float c = g.alpha * s + (float)g.M * bias, bd = fabsf(g.alpha) * sa + (float)g.M * fabsf(bias);
    abft_compare_column(g, b, j, c, bd, csum, cabs, chk, bound, tau, operand_u, flags, counter);
}

// ----------------------------------------------------------------------------
// correction kernels, for the entries flags[] marks: fp64 checksums, then one thread per line

// One thread per k: the operand sums the line checksums are made of. grid (ceil(K/128), batch).
__global__ void abft_correct_encode_kernel(AbftGemm g, const int* flags, AbftCorrectScratch s) {
    int k = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    if (flags[b] == 0 || k >= g.K) { return; }
    MatView A = {g.A.p + b * g.strideA, g.A.rs, g.A.cs}, B = {g.B.p + b * g.strideB, g.B.rs, g.B.cs};
    double ae = 0.0, aw = 0.0, aa = 0.0, be = 0.0, bw = 0.0, ba = 0.0;
    for (int i = 0; i < g.M; i++) { double x = A.at(i, k); ae += x; aw += (i + 1) * x; aa += fabs(x); }
    for (int j = 0; j < g.N; j++) { double x = B.at(k, j); be += x; bw += (j + 1) * x; ba += fabs(x); }
    double* e = s.enc + (long)b * 6 * g.K;
    e[k] = ae; e[g.K + k] = aw; e[2 * g.K + k] = aa; e[3 * g.K + k] = be; e[4 * g.K + k] = bw; e[5 * g.K + k] = ba;
    if (k == 0) {
        double bs = 0.0, bws = 0.0, bas = 0.0;
        for (int j = 0; g.bias && j < g.N; j++) { bs += g.bias[j]; bws += (j + 1.0) * g.bias[j]; bas += fabs(g.bias[j]); }
        s.biasw[b * 3] = bs; s.biasw[b * 3 + 1] = bws; s.biasw[b * 3 + 2] = bas;
    }
}

// One thread per line: t < N is column t, else row t − N (abft_repair's formulas).
// grid (ceil((N+M)/128), batch).
__global__ void abft_correct_checksums_kernel(AbftGemm g, const int* flags, AbftCorrectScratch s) {
    int t = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    if (flags[b] == 0 || t >= g.N + g.M) { return; }
    const double alpha = g.alpha;
    const double* e = s.enc + (long)b * 6 * g.K;
    MatView A = {g.A.p + b * g.strideA, g.A.rs, g.A.cs}, B = {g.B.p + b * g.strideB, g.B.rs, g.B.cs};
    double p = 0.0, w = 0.0, a = 0.0;
    if (t < g.N) {
        const int j = t;
        const double bj = g.bias ? g.bias[j] : 0.0;
        for (int k = 0; k < g.K; k++) { double x = B.at(k, j); p += e[k] * x; w += e[g.K + k] * x; a += e[2 * g.K + k] * fabs(x); }
        double* c = s.colchk + ((long)b * g.N + j) * 3;
        c[0] = alpha * p + g.M * bj;
        c[1] = alpha * w + 0.5 * g.M * (g.M + 1.0) * bj;
        c[2] = fabs(alpha) * a + g.M * fabs(bj);
    } else {
        const int i = t - g.N;
        for (int k = 0; k < g.K; k++) { double x = A.at(i, k); p += x * e[3 * g.K + k]; w += x * e[4 * g.K + k]; a += fabs(x) * e[5 * g.K + k]; }
        double* r = s.rowchk + ((long)b * g.M + i) * 3;
        r[0] = alpha * p + s.biasw[b * 3];
        r[1] = alpha * w + s.biasw[b * 3 + 1];
        r[2] = fabs(alpha) * a + s.biasw[b * 3 + 2];
    }
}

// One thread per column and per row: the line of C, judged against its checksums.
// grid (ceil((N+M)/128), batch), like abft_correct_checksums_kernel.
__global__ void abft_correct_judge_kernel(AbftGemm g, const int* flags, AbftCorrectScratch s, float extreme, float tau,
                                          float operand_u) {
    int t = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    if (flags[b] == 0 || t >= g.N + g.M) { return; }
    const float* C = g.C + b * g.strideC;
    const bool is_col = t < g.N;
    const int l = is_col ? t : t - g.N, len = is_col ? g.M : g.N;
    AbftLine line;
    abft_line_init(&line);
    for (int x = 0; x < len; x++) {
        abft_line_add(&line, x, is_col ? C[(long)x * g.ldc + l] : C[(long)l * g.ldc + x], extreme);
    }
    const double* c = is_col ? s.colchk + ((long)b * g.N + l) * 3 : s.rowchk + ((long)b * g.M + l) * 3;
    AbftVerdict v = abft_judge(line, c[0], c[1], abft_tolerance(tau, g.K, len, (float)c[2], operand_u), len);
    (is_col ? s.colv + (long)b * g.N : s.rowv + (long)b * g.M)[l] = v;
    if (v.kind == LINE_UNFIXABLE) { atomicAdd(&s.unfixable[b * 2 + (is_col ? 0 : 1)], 1); }
}

// Columns if all are fixable, else rows if all are, else nothing. grid (ceil(max(M,N)/128), batch).
__global__ void abft_correct_apply_kernel(AbftGemm g, const int* flags, AbftCorrectScratch s) {
    int t = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    if (flags[b] == 0) { return; }
    const int mode = s.unfixable[b * 2] == 0 ? REPAIR_BY_COLUMNS : s.unfixable[b * 2 + 1] == 0 ? REPAIR_BY_ROWS : REPAIR_BEYOND;
    if (t == 0) { s.status[b] = mode; }
    float* C = g.C + b * g.strideC;
    if (mode == REPAIR_BY_COLUMNS && t < g.N) {
        AbftVerdict v = s.colv[(long)b * g.N + t];
        if (v.kind == LINE_FIXABLE) { float* x = &C[(long)v.index * g.ldc + t]; *x = abft_apply(v, *x); }
    } else if (mode == REPAIR_BY_ROWS && t < g.M) {
        AbftVerdict v = s.rowv[(long)b * g.M + t];
        if (v.kind == LINE_FIXABLE) { float* x = &C[(long)t * g.ldc + v.index]; *x = abft_apply(v, *x); }
    }
}
