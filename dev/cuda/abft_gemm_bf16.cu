// abft_gemm_bf16.cu: ATTNChecker on a GEMM whose operands and output are bf16.
//
// A bf16 trainer stores activations and GEMM operands in bf16 and accumulates in fp32 (cuBLAS
// with CUDA_R_16BF matrices and CUBLAS_COMPUTE_32F). This file checks such a GEMM,
//     C[b] = alpha·A[b]·B[b] + bias      A (M, K), B (K, N), C (M, N) bf16, bias (N) bf16 or none
// with the rules of the fp32 path (docs/ABFT.md) and one more term in the tolerance:
//   encode   ue = e·A, ua = e·|A| (K), then chk = alpha·ue·B + M·bias and
//            bound = |alpha|·ua·|B| + M·|bias| (N), in fp32 from the bf16 operands: the operands
//            are exact, only the sums round, as in fp32
//   verify   column j of C[b] is faulty when |e·Ĉ_j − chk_j| > tol_j or e·|Ĉ_j| > bound_j + tol_j,
//            tol_j = abft_tolerance(tau, K, M, bound_j, 0, ABFT_BF16_UNIT_ROUNDOFF): storing each
//            element in bf16 (2^-8 relative) adds 2^-8·bound_j to what the column sum may drift
//   locate   for a flagged entry: fp64 plain and weighted checksums of every column, each judged
//            by abft_judge (one bad element per line, its index from the weighted difference);
//            by columns when every column is fixable (0-D, row patterns), else the same by rows
//            (column pattern), else beyond the checksums (2-D: the caller recomputes the GEMM)
//   correct  the versions:
//     1 rebuild    the fp32 path's: the element becomes its line's checksum minus the rest of
//                  the line, rounded to bf16. The rest of the line carries its own roundings to
//                  bf16, up to 2^-8 of the line's bound in all, so on a long line the rebuilt
//                  element can be off by many of its own ulps
//     2 recompute  the located element's dot product, again, from the bf16 operands (K
//                  multiply-adds in fp32, one rounding to bf16): what the GEMM wrote before the
//                  fault, up to the order of the accumulation
// Faults act on the bf16 bits. A widened bf16 is the upper half of an fp32, so flipping bit k of
// the bf16 flips bit 16 + k of the widened value (abft_fault_value), and the paper's injector's
// bits 30/29 are the bf16's top exponent bits 14/13.
//
// What is validated (the harness: small odd shapes; a GPU: the same, then the benchmark):
//   - the bf16 GEMM against plain double loops, within bf16's rounding of the output
//   - no false alarm on fault-free GEMMs: attention and linear shapes, magnitudes 1e-3..1e3, with
//     and without bias, several seeds; the largest residual (|column sum − checksum| in units of
//     the tolerance at tau = 1) is printed
//   - every fault type x pattern detected; 0-D, row and column patterns repaired and clean when
//     checked again: version 2 to within one bf16 ulp of the fault-free C, version 1 within the
//     bound above (the largest error of each, in ulps, is printed); 2-D beyond the checksums
//   - each of the 16 bits of many elements flipped: every flip that moves its element by more
//     than twice its column's tolerance is detected (the detections per bit are printed)
// On a GPU, the benchmark at GPT-2 124M's shapes: the bf16 GEMM alone, then with encode and
// verify as separate kernels (the isolated cost; a trainer fuses these sums into the kernels
// that read C next, as the fp32 trainer does).
//
// Build and run (dev/cuda/README.md):
//   cd dev/cuda && make abft_gemm_bf16 && ./abft_gemm_bf16 [version]               (GPU)
//   cd dev/cuda && make abft_gemm_bf16_cpu && ./abft_gemm_bf16_cpu [version]
#include <string>

#include "dev/cuda/common.h" // and abft.cuh

typedef __nv_bfloat16 bf16;

constexpr float TAU = 2.0f;                         // AbftConfig::tau
constexpr float U_BF16 = ABFT_BF16_UNIT_ROUNDOFF;   // 2^-8
constexpr float EXTREME = 1e10f;                    // AbftConfig::extreme
constexpr int THREADS = 256;

// The relative error of one fp32 accumulation step: 2^-24 where it rounds (the harness); up to
// 4 times that on a GPU, whose tensor cores may truncate and add in another order.
inline double accumulation_u() { return on_real_gpu() ? 0x1p-22 : 0x1p-24; }

// ----------------------------------------------------------------------------
// the GEMM: strided bf16 views, row-major C

struct Bf16Gemm {
    int batch, M, N, K;
    const bf16* A; long a_rs, a_cs, strideA; // element (i, k) of A[b]: A[b·strideA + i·a_rs + k·a_cs]
    const bf16* B; long b_rs, b_cs, strideB; // element (k, j) of B[b]
    bf16* C; long strideC;                   // element (i, j) of C[b]: C[b·strideC + i·N + j]
    const bf16* bias;                        // (N) or null
    float alpha;
};

__host__ __device__ inline float a_at(const Bf16Gemm& g, int b, int i, int k) {
    return __bfloat162float(g.A[b * g.strideA + i * g.a_rs + k * g.a_cs]);
}
__host__ __device__ inline float b_at(const Bf16Gemm& g, int b, int k, int j) {
    return __bfloat162float(g.B[b * g.strideB + k * g.b_rs + j * g.b_cs]);
}
__host__ __device__ inline bf16* c_ptr(const Bf16Gemm& g, int b, int i, int j) { return g.C + b * g.strideC + (long)i * g.N + j; }
__host__ __device__ inline float bias_at(const Bf16Gemm& g, int j) { return g.bias ? __bfloat162float(g.bias[j]) : 0.0f; }

// ----------------------------------------------------------------------------
// encode and verify: the fast path every protected GEMM takes

// sum[b][j] = Σ_i X(i, j), abssum[b][j] = Σ_i |X(i, j)| over a (rows, cols) view of bf16, in
// fp32; one thread per column (coalesced where rows are contiguous: neighbouring threads read
// neighbouring columns).
__global__ void column_sums_kernel(float* sum, float* abssum, const bf16* X, long rs, long cs, long stride, int rows,
                                   int cols) {
    const int b = blockIdx.y, j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= cols) { return; }
    const bf16* x = X + b * stride + j * cs;
    float s = 0.0f, sa = 0.0f;
    for (int i = 0; i < rows; i++) {
        const float v = __bfloat162float(x[i * rs]);
        s += v;
        sa += fabsf(v);
    }
    sum[b * cols + j] = s;
    abssum[b * cols + j] = sa;
}

// chk[b][j] = alpha·Σ_k ue_k·B(k, j) + M·bias_j, bound[b][j] = |alpha|·Σ_k ua_k·|B(k, j)| + M·|bias_j|
__global__ void checksum_kernel(float* chk, float* bound, const float* ue, const float* ua, Bf16Gemm g) {
    const int b = blockIdx.y, j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= g.N) { return; }
    float s = 0.0f, sa = 0.0f;
    for (int k = 0; k < g.K; k++) {
        const float x = b_at(g, b, k, j);
        s += ue[b * g.K + k] * x;
        sa += ua[b * g.K + k] * fabsf(x);
    }
    const float bias = bias_at(g, j);
    chk[b * g.N + j] = g.alpha * s + (float)g.M * bias;
    bound[b * g.N + j] = fabsf(g.alpha) * sa + (float)g.M * fabsf(bias);
}

// Column j against its checksum (abft_check_columns' rule, with the bf16 term): a failed column
// raises flags[b]; the entry's first failed column bumps the counter, once per faulty entry.
__global__ void verify_kernel(int* flags, int* counter, const float* sum, const float* abssum, const float* chk,
                              const float* bound, Bf16Gemm g) {
    const int b = blockIdx.y, j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= g.N) { return; }
    const long at = b * g.N + j;
    const float tol = abft_tolerance(TAU, g.K, g.M, bound[at], 0.0f, U_BF16);
    const bool clean = fabsf(sum[at] - chk[at]) <= tol && abssum[at] <= bound[at] + tol; // false on NaN
    if (!clean && atomicAdd(&flags[b], 1) == 0) { atomicAdd(counter, 1); }
}

// ----------------------------------------------------------------------------
// locate and correct: the slow path, one block per flagged batch entry

// A line is a column (by_rows false: its elements run over i) or a row of C. Its checksums are
// those of the operand it is encoded from (A's rows for a column, B's columns for a row) dotted
// with the other operand's line.
__device__ inline float enc_operand(const Bf16Gemm& g, int b, bool by_rows, int e, int k) {
    return by_rows ? b_at(g, b, k, e) : a_at(g, b, e, k);
}
__device__ inline float line_operand(const Bf16Gemm& g, int b, bool by_rows, int l, int k) {
    return by_rows ? a_at(g, b, l, k) : b_at(g, b, k, l);
}
__device__ inline bf16* element(const Bf16Gemm& g, int b, bool by_rows, int l, int e) {
    return by_rows ? c_ptr(g, b, l, e) : c_ptr(g, b, e, l);
}

// Element (i, j) of C[b] as the GEMM computes it: fp32 multiply-adds of the bf16 operands.
__device__ inline float recompute_element(const Bf16Gemm& g, int b, int i, int j) {
    float s = 0.0f;
    for (int k = 0; k < g.K; k++) { s += a_at(g, b, i, k) * b_at(g, b, k, j); }
    return g.alpha * s + bias_at(g, j);
}

// The judgement of line l (abft_judge), from fp64 checksums: enc holds the encoding operand's
// plain, weighted and absolute sums over the line's length, (3, K).
__device__ AbftVerdict judge_line(const Bf16Gemm& g, int b, bool by_rows, int l, const double* enc) {
    const int K = g.K, len = by_rows ? g.N : g.M;
    double chk = 0.0, wchk = 0.0, bnd = 0.0;
    for (int k = 0; k < K; k++) {
        const double x = line_operand(g, b, by_rows, l, k);
        chk += enc[k] * x;
        wchk += enc[K + k] * x;
        bnd += enc[2 * K + k] * fabs(x);
    }
    chk *= g.alpha; wchk *= g.alpha; bnd *= fabs(g.alpha);
    AbftLine line;
    abft_line_init(&line);
    for (int e = 0; e < len; e++) {
        const double bias = bias_at(g, by_rows ? e : l); // the bias runs along a row
        chk += bias;
        wchk += (double)(e + 1) * bias;
        bnd += fabs(bias);
        abft_line_add(&line, e, __bfloat162float(*element(g, b, by_rows, l, e)), EXTREME);
    }
    const float tol = abft_tolerance(TAU, K, len, (float)bnd, 0.0f, U_BF16);
    return abft_judge(line, chk, wchk, tol, len);
}

// Rebuilds element `index` of line l: version 2 recomputes its dot product, version 1 applies
// the verdict (the fp32 path's rebuild from the checksum).
__device__ inline void fix_element(const Bf16Gemm& g, int b, bool by_rows, int l, const AbftVerdict& v, bool recompute) {
    bf16* x = element(g, b, by_rows, l, v.index);
    const int i = by_rows ? l : v.index, j = by_rows ? v.index : l;
    *x = __float2bfloat16(recompute ? recompute_element(g, b, i, j) : abft_apply(v, __bfloat162float(*x)));
}

// For each flagged entry: by columns if every column is fixable, else by rows, else beyond.
// status[b] is an AbftRepairStatus. The lines are judged twice, once to count the unfixable
// ones and once to fix: a thread's line is its own (it reads and writes only that line of C),
// and judging again costs less code than keeping every verdict (this runs only after a fault).
__global__ void repair_kernel(int* status, Bf16Gemm g, const int* flags, double* enc_all, bool recompute) {
    const int b = blockIdx.x, K = g.K;
    if (flags[b] == 0) {
        if (threadIdx.x == 0) { status[b] = REPAIR_NONE; }
        return;
    }
    double* enc = enc_all + (long)b * 3 * K;
    __shared__ int unfixable;
    for (int pass = 0; pass < 2; pass++) {
        const bool by_rows = pass == 1;
        const int n_lines = by_rows ? g.M : g.N, len = by_rows ? g.N : g.M;
        for (int k = threadIdx.x; k < K; k += blockDim.x) {
            double s = 0.0, ws = 0.0, as = 0.0;
            for (int e = 0; e < len; e++) {
                const double x = enc_operand(g, b, by_rows, e, k);
                s += x;
                ws += (double)(e + 1) * x;
                as += fabs(x);
            }
            enc[k] = s; enc[K + k] = ws; enc[2 * K + k] = as;
        }
        if (threadIdx.x == 0) { unfixable = 0; }
        __syncthreads();
        for (int l = threadIdx.x; l < n_lines; l += blockDim.x) {
            if (judge_line(g, b, by_rows, l, enc).kind == LINE_UNFIXABLE) { atomicAdd(&unfixable, 1); }
        }
        __syncthreads();
        if (unfixable == 0) {
            for (int l = threadIdx.x; l < n_lines; l += blockDim.x) {
                const AbftVerdict v = judge_line(g, b, by_rows, l, enc);
                if (v.kind == LINE_FIXABLE) { fix_element(g, b, by_rows, l, v, recompute); }
            }
            if (threadIdx.x == 0) { status[b] = by_rows ? REPAIR_BY_ROWS : REPAIR_BY_COLUMNS; }
            return;
        }
        __syncthreads(); // enc and unfixable are reused by the rows' pass
    }
    if (threadIdx.x == 0) { status[b] = REPAIR_BEYOND; }
}

// ----------------------------------------------------------------------------
// the checker's buffers and its host side

struct Checker {
    float *ue, *ua, *chk, *bound, *sum, *abssum; // (batch, K) and (batch, N)
    int *flags, *counter, *status;               // (batch), (1), (batch)
    double* enc;                                 // (batch, 3, K)
};

static Checker checker_alloc(const Bf16Gemm& g) {
    Checker c;
    const long bk = (long)g.batch * g.K, bn = (long)g.batch * g.N;
    cudaCheck(cudaMalloc(&c.ue, bk * sizeof(float)));
    cudaCheck(cudaMalloc(&c.ua, bk * sizeof(float)));
    for (float** p : {&c.chk, &c.bound, &c.sum, &c.abssum}) { cudaCheck(cudaMalloc(p, bn * sizeof(float))); }
    cudaCheck(cudaMalloc(&c.flags, g.batch * sizeof(int)));
    cudaCheck(cudaMalloc(&c.counter, sizeof(int)));
    cudaCheck(cudaMalloc(&c.status, g.batch * sizeof(int)));
    cudaCheck(cudaMalloc(&c.enc, bk * 3 * sizeof(double)));
    return c;
}

static void checker_free(Checker& c) {
    for (void* p : {(void*)c.ue, (void*)c.ua, (void*)c.chk, (void*)c.bound, (void*)c.sum, (void*)c.abssum,
                    (void*)c.flags, (void*)c.counter, (void*)c.status, (void*)c.enc}) {
        cudaCheck(cudaFree(p));
    }
}

// The fast path: encode A's column sums, the checksums, C's column sums, the comparison. No wait.
static void encode_verify(const Bf16Gemm& g, const Checker& c) {
    cudaCheck(cudaMemsetAsync(c.flags, 0, g.batch * sizeof(int)));
    const dim3 grid_k(ceil_div(g.K, THREADS), g.batch), grid_n(ceil_div(g.N, THREADS), g.batch);
    LAUNCH(column_sums_kernel, grid_k, THREADS, 0, 0)(c.ue, c.ua, g.A, g.a_rs, g.a_cs, g.strideA, g.M, g.K);
    LAUNCH(checksum_kernel, grid_n, THREADS, 0, 0)(c.chk, c.bound, c.ue, c.ua, g);
    LAUNCH(column_sums_kernel, grid_n, THREADS, 0, 0)(c.sum, c.abssum, g.C, g.N, 1, g.strideC, g.M, g.N);
    LAUNCH(verify_kernel, grid_n, THREADS, 0, 0)(c.flags, c.counter, c.sum, c.abssum, c.chk, c.bound, g);
    cudaCheckLaunch();
}

// Faulty batch entries found by one encode + verify (waits for the GPU).
static int count_faulty(const Bf16Gemm& g, const Checker& c) {
    cudaCheck(cudaMemset(c.counter, 0, sizeof(int)));
    encode_verify(g, c);
    return host_copy(c.counter, 1)[0];
}

// The slow path for the flagged entries; returns each entry's AbftRepairStatus.
static std::vector<int> repair(const Bf16Gemm& g, const Checker& c, bool recompute) {
    LAUNCH(repair_kernel, g.batch, THREADS, 0, 0)(c.status, g, c.flags, c.enc, recompute);
    cudaCheckLaunch();
    return host_copy(c.status, g.batch);
}

// ----------------------------------------------------------------------------
// problems: random bf16 operands, cuBLAS(Lt) in bf16 with fp32 accumulation, a double reference

struct Problem {
    const char* name;
    Bf16Gemm g;
    bool a_t, b_t;                            // operands stored transposed
    std::vector<bf16> A, B, bias;             // host copies of the operands
    bf16 *dA, *dB, *dC, *dbias;
    std::vector<double> ref, absref;          // alpha·A·B + bias and |alpha|·|A|·|B| + |bias|, exact
};

static std::vector<bf16> make_random_bf16(size_t n, float scale, uint64_t seed) {
    const std::vector<float> x = make_random_float(n, seed);
    std::vector<bf16> y(n);
    for (size_t i = 0; i < n; i++) { y[i] = __float2bfloat16(scale * x[i]); }
    return y;
}

static Problem make_problem(const char* name, int batch, int M, int N, int K, bool a_t, bool b_t, bool bias, float alpha,
                            float scale_a, float scale_b, uint64_t seed) {
    Problem p;
    p.name = name;
    p.a_t = a_t;
    p.b_t = b_t;
    p.A = make_random_bf16((size_t)batch * M * K, scale_a, seed);
    p.B = make_random_bf16((size_t)batch * K * N, scale_b, seed + 1);
    p.dA = device_copy(p.A);
    p.dB = device_copy(p.B);
    p.dbias = nullptr;
    if (bias) {
        p.bias = make_random_bf16(N, scale_a * scale_b, seed + 2);
        p.dbias = device_copy(p.bias);
    }
    cudaCheck(cudaMalloc(&p.dC, (size_t)batch * M * N * sizeof(bf16)));
    Bf16Gemm& g = p.g;
    g = Bf16Gemm{batch, M, N, K, p.dA, a_t ? 1 : K, a_t ? M : 1, (long)M * K, p.dB, b_t ? 1 : N, b_t ? K : 1,
                 (long)K * N, p.dC, (long)M * N, p.dbias, alpha};
    return p;
}

static void free_problem(Problem& p) {
    for (void* d : {(void*)p.dA, (void*)p.dB, (void*)p.dC, (void*)p.dbias}) {
        if (d != nullptr) { cudaCheck(cudaFree(d)); }
    }
}

// The host view of the same GEMM, over the host copies.
static Bf16Gemm host_view(const Problem& p) {
    Bf16Gemm h = p.g;
    h.A = p.A.data();
    h.B = p.B.data();
    h.bias = p.bias.empty() ? nullptr : p.bias.data();
    return h;
}

// The exact result of the bf16 operands (plain double loops: the products of bf16 values and
// their sums of a few hundred terms are exact or nearly so in fp64).
static void compute_reference(Problem& p) {
    const Bf16Gemm h = host_view(p);
    p.ref.assign((size_t)h.batch * h.M * h.N, 0.0);
    p.absref.assign(p.ref.size(), 0.0);
    for (int b = 0; b < h.batch; b++) {
        for (int i = 0; i < h.M; i++) {
            for (int j = 0; j < h.N; j++) {
                double s = 0.0, sa = 0.0;
                for (int k = 0; k < h.K; k++) {
                    s += (double)a_at(h, b, i, k) * b_at(h, b, k, j);
                    sa += fabs((double)a_at(h, b, i, k) * b_at(h, b, k, j));
                }
                const size_t at = ((size_t)b * h.M + i) * h.N + j;
                p.ref[at] = h.alpha * s + bias_at(h, j);
                p.absref[at] = fabs(h.alpha) * sa + fabs(bias_at(h, j));
            }
        }
    }
}

// cuBLAS and cuBLASLt are column-major: the row-major C (M, N) is the column-major Cᵀ = Bᵀ·Aᵀ.
// A row-major operand (not transposed) is, read column-major, already the transpose needed.
struct LtGemm {
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t algo;
};
static void* g_workspace = nullptr;
constexpr size_t WORKSPACE_BYTES = 32u << 20;

// A linear layer (batch 1, bias): cuBLASLt with the bias epilogue, bf16 bias (its default type
// when D is bf16), compute and scale in fp32.
static LtGemm lt_plan(cublasLtHandle_t lt, const Problem& p) {
    const Bf16Gemm& g = p.g;
    LtGemm q;
    const cublasOperation_t opB = p.b_t ? CUBLAS_OP_T : CUBLAS_OP_N, opA = p.a_t ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasCheck(cublasLtMatmulDescCreate(&q.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasCheck(cublasLtMatmulDescSetAttribute(q.desc, CUBLASLT_MATMUL_DESC_TRANSA, &opB, sizeof(opB)));
    cublasCheck(cublasLtMatmulDescSetAttribute(q.desc, CUBLASLT_MATMUL_DESC_TRANSB, &opA, sizeof(opA)));
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    cublasCheck(cublasLtMatmulDescSetAttribute(q.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)));
    cublasCheck(cublasLtMatmulDescSetAttribute(q.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.bias, sizeof(g.bias)));
    const int ldb = p.b_t ? g.K : g.N, lda = p.a_t ? g.M : g.K;
    cublasCheck(cublasLtMatrixLayoutCreate(&q.lb, CUDA_R_16BF, p.b_t ? g.K : g.N, p.b_t ? g.N : g.K, ldb));
    cublasCheck(cublasLtMatrixLayoutCreate(&q.la, CUDA_R_16BF, p.a_t ? g.M : g.K, p.a_t ? g.K : g.M, lda));
    cublasCheck(cublasLtMatrixLayoutCreate(&q.lc, CUDA_R_16BF, g.N, g.M, g.N));
    cublasLtMatmulPreference_t pref;
    cublasCheck(cublasLtMatmulPreferenceCreate(&pref));
    cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &WORKSPACE_BYTES,
                                                     sizeof(WORKSPACE_BYTES)));
    cublasLtMatmulHeuristicResult_t heuristic;
    int found = 0;
    cublasCheck(cublasLtMatmulAlgoGetHeuristic(lt, q.desc, q.lb, q.la, q.lc, q.lc, pref, 1, &heuristic, &found));
    if (found == 0) { die("cublasLtMatmulAlgoGetHeuristic", "another shape", "no bf16 algorithm for %s", p.name); }
    cublasCheck(cublasLtMatmulPreferenceDestroy(pref));
    q.algo = heuristic.algo;
    return q;
}

static void lt_free(LtGemm& q) {
    cublasCheck(cublasLtMatrixLayoutDestroy(q.la));
    cublasCheck(cublasLtMatrixLayoutDestroy(q.lb));
    cublasCheck(cublasLtMatrixLayoutDestroy(q.lc));
    cublasCheck(cublasLtMatmulDescDestroy(q.desc));
}

struct Handles {
    cublasHandle_t blas;
    cublasLtHandle_t lt;
};

// C = alpha·A·B (+ bias), bf16 in and out, fp32 accumulation: cuBLASLt for a linear layer, a
// strided batched cuBLAS GEMM for the attention heads.
static void run_gemm(const Handles& h, const Problem& p, const LtGemm* plan) {
    const Bf16Gemm& g = p.g;
    const float beta = 0.0f;
    if (plan != nullptr) {
        cublasCheck(cublasLtMatmul(h.lt, plan->desc, &g.alpha, g.B, plan->lb, g.A, plan->la, &beta, g.C, plan->lc, g.C,
                                   plan->lc, &plan->algo, g_workspace, WORKSPACE_BYTES, 0));
        return;
    }
    const cublasOperation_t opB = p.b_t ? CUBLAS_OP_T : CUBLAS_OP_N, opA = p.a_t ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasCheck(cublasGemmStridedBatchedEx(h.blas, opB, opA, g.N, g.M, g.K, &g.alpha, g.B, CUDA_R_16BF,
                                           p.b_t ? g.K : g.N, g.strideB, g.A, CUDA_R_16BF, p.a_t ? g.M : g.K, g.strideA,
                                           &beta, g.C, CUDA_R_16BF, g.N, g.strideC, g.batch, CUBLAS_COMPUTE_32F,
                                           CUBLAS_GEMM_DEFAULT));
}

// ----------------------------------------------------------------------------
// the checks

// one ulp of a bf16 at |x| (the spacing of bf16 values there; subnormal spacing below)
static double bf16_ulp(double x) {
    const double m = std::max(fabs(x), 1.1754943508222875e-38);
    return ldexp(1.0, (int)floor(log2(m)) - 7);
}

// The fault-free GEMM: within bf16's rounding of the exact product, and no alarm. Returns the
// largest residual of its columns, in units of the tolerance at tau = 1.
static double check_clean(const Handles& h, Problem& p, const LtGemm* plan, Checker& c, std::vector<bf16>* clean,
                          int* bad_elements, int* alarms) {
    const Bf16Gemm& g = p.g;
    run_gemm(h, p, plan);
    *clean = host_copy(g.C, p.ref.size());
    for (size_t i = 0; i < p.ref.size(); i++) {
        // one rounding to bf16 of an fp32 result whose accumulation is within K·accumulation_u()
        const double got = __bfloat162float((*clean)[i]);
        const double allowed =
            U_BF16 * fabs(p.ref[i]) + (g.K + 2) * accumulation_u() * p.absref[i] * (1.0 + U_BF16) + 1e-37;
        *bad_elements += !(fabs(got - p.ref[i]) <= allowed);
    }
    *alarms += count_faulty(g, c);
    const std::vector<float> sum = host_copy(c.sum, (size_t)g.batch * g.N), chk = host_copy(c.chk, sum.size()),
                             bound = host_copy(c.bound, sum.size());
    double worst = 0.0;
    for (size_t j = 0; j < sum.size(); j++) {
        worst = std::max(worst, fabs((double)sum[j] - chk[j]) / abft_tolerance(1.0f, g.K, g.M, bound[j], 0.0f, U_BF16));
    }
    return worst;
}

// What a faulty unit writes into element (i, j) of C[b]: a fault on the bf16 bits. bit: 0-15,
// or -1 for the paper's choice (the top exponent bits, 14 or 13).
__host__ __device__ inline bf16 faulty_value(bf16 x, int type, int bit) {
    return __float2bfloat16(abft_fault_value(type, bit < 0 ? -1 : bit + 16, __bfloat162float(x)));
}

__global__ void inject_bf16_fault_kernel(Bf16Gemm g, Fault f, int bit) {
    auto corrupt = [&](int i, int j) { *c_ptr(g, f.b, i, j) = faulty_value(*c_ptr(g, f.b, i, j), f.type, bit); };
    switch (f.pattern) {
        case PATTERN_0D: corrupt(f.i, f.j); break;
        case PATTERN_ROW: for (int j = 0; j < g.N; j++) { corrupt(f.i, j); } break;
        case PATTERN_COL: for (int i = 0; i < g.M; i++) { corrupt(i, f.j); } break;
        default:
            for (int i = f.i; i < f.i + 2 && i < g.M; i++) {
                for (int j = f.j; j < f.j + 2 && j < g.N; j++) { corrupt(i, j); }
            }
    }
}

static void put_clean(const Problem& p, const std::vector<bf16>& clean) {
    cudaCheck(cudaMemcpy(p.dC, clean.data(), clean.size() * sizeof(bf16), cudaMemcpyHostToDevice));
}

// The largest error of the repaired C against the fault-free one, in ulps of the fault-free
// values, and whether every element is within `bound_of(element)`.
template <typename Bound>
static double repaired_error_ulps(const Problem& p, const std::vector<bf16>& clean, Bound bound_of, bool* within) {
    const std::vector<bf16> got = host_copy(p.dC, clean.size());
    double worst = 0.0;
    *within = true;
    for (size_t i = 0; i < clean.size(); i++) {
        const double c = __bfloat162float(clean[i]), x = __bfloat162float(got[i]), err = fabs(x - c);
        *within &= err <= bound_of(i);
        worst = std::max(worst, err / bf16_ulp(c));
    }
    return worst;
}

// The bound of a rebuilt element's error (version 1): its line's tolerance at tau = 1 (the other
// elements' roundings and the fp32 sums), plus its own rounding to bf16. The line is a column
// for the 0-D and row patterns, a row for the column pattern.
static double rebuild_bound(const Problem& p, size_t at, bool by_rows) {
    const Bf16Gemm& g = p.g;
    const int b = (int)(at / ((size_t)g.M * g.N)), i = (int)(at / g.N % g.M), j = (int)(at % g.N);
    double line = 0.0;
    const int len = by_rows ? g.N : g.M;
    for (int e = 0; e < len; e++) {
        line += p.absref[((size_t)b * g.M + (by_rows ? i : e)) * g.N + (by_rows ? e : j)];
    }
    return abft_tolerance(1.0f, g.K, len, (float)line, 0.0f, U_BF16) + U_BF16 * fabs(p.ref[at]) + 1e-37;
}

// Every fault type x pattern into a copy of the fault-free C: detected; 0-D/row/column repaired
// by the version and clean when checked again, 2-D beyond the checksums.
static void test_faults(Problem& p, const std::vector<bf16>& clean, Checker& c, const Version<bool>& v, uint64_t seed) {
    const Bf16Gemm& g = p.g;
    uint64_t rng = seed;
    int failures = 0, cases = 0;
    double worst_ulps = 0.0;
    for (int type = 0; type < FAULT_NUM_TYPES; type++) {
        for (int pattern = 0; pattern < PATTERN_NUM; pattern++) {
            // the 2-D pattern's 2x2 block lies inside C: on its last row or column it would be a line
            const Fault f = {0, type, pattern, (int)(random_u32(&rng) % g.batch), (int)(random_u32(&rng) % (g.M - 1)),
                             (int)(random_u32(&rng) % (g.N - 1))};
            put_clean(p, clean);
            LAUNCH(inject_bf16_fault_kernel, 1, 1, 0, 0)(g, f, -1);
            cudaCheckLaunch();
            cases++;
            std::string why;
            if (count_faulty(g, c) != 1) { why = "not detected (or more than one entry)"; }
            const int status = repair(g, c, v.run)[f.b];
            if (pattern == PATTERN_2D) {
                if (status != REPAIR_BEYOND) { why += " 2-D not reported beyond the checksums;"; }
            } else {
                const bool by_rows = pattern == PATTERN_COL;
                if (status != (by_rows ? REPAIR_BY_ROWS : REPAIR_BY_COLUMNS)) { why += " not repaired by the expected lines;"; }
                if (count_faulty(g, c) != 0) { why += " still faulty after the repair;"; }
                bool within = false;
                const double ulps = repaired_error_ulps(p, clean, [&](size_t at) {
                    const double c0 = __bfloat162float(clean[at]);
                    // a recompute in another order than the GEMM's may round to the neighbouring bf16
                    const double order = (g.K + 2) * accumulation_u() * p.absref[at];
                    return v.run ? bf16_ulp(c0) + order : rebuild_bound(p, at, by_rows);
                }, &within);
                worst_ulps = std::max(worst_ulps, ulps);
                if (!within) { why += v.run ? " not within one ulp of the fault-free C;" : " beyond the rebuild's bound;"; }
            }
            if (!why.empty()) {
                printf("  %s %s %s %s:%s\n", v.name, p.name, abft_fault_type_names[type], abft_pattern_names[pattern],
                       why.c_str());
                failures++;
            }
        }
    }
    char name[200];
    snprintf(name, sizeof(name), "%d-%s %s: %d faults (5 types x 4 patterns) detected and handled; repaired C within "
             "%.1f ulps of the fault-free one", v.number, v.name, p.name, cases, worst_ulps);
    check(failures == 0, name);
}

// Every bit of `samples` random elements flipped, one at a time: each flip that moves its element
// by more than twice its column's tolerance must be detected. Prints the detections per bit.
static void test_bit_flips(Problem& p, const std::vector<bf16>& clean, Checker& c, int samples, uint64_t seed) {
    const Bf16Gemm& g = p.g;
    const std::vector<float> bound = host_copy(c.bound, (size_t)g.batch * g.N); // from the fault-free check
    uint64_t rng = seed;
    int detected[16] = {0}, missed_big = 0;
    for (int s = 0; s < samples; s++) {
        const int b = (int)(random_u32(&rng) % g.batch), i = (int)(random_u32(&rng) % g.M), j = (int)(random_u32(&rng) % g.N);
        const size_t at = ((size_t)b * g.M + i) * g.N + j;
        const float tol = abft_tolerance(TAU, g.K, g.M, bound[(size_t)b * g.N + j], 0.0f, U_BF16);
        for (int bit = 0; bit < 16; bit++) {
            std::vector<bf16> faulty = clean;
            faulty[at] = faulty_value(clean[at], FAULT_BITFLIP, bit);
            put_clean(p, faulty);
            const bool seen = count_faulty(g, c) > 0;
            const float delta = fabsf(__bfloat162float(faulty[at]) - __bfloat162float(clean[at]));
            detected[bit] += seen;
            missed_big += !seen && !(delta <= 2.0f * tol); // NaN and INF count as big
        }
    }
    printf("  %s: bit flips detected of %d per bit (15 sign, 14-7 exponent, 6-0 fraction):", p.name, samples);
    for (int bit = 15; bit >= 0; bit--) { printf(" %d:%d", bit, detected[bit]); }
    printf("\n");
    char name[160];
    snprintf(name, sizeof(name), "%s: every bit flip that moves an element by more than twice the tolerance is detected "
             "(%d flips)", p.name, 16 * samples);
    check(missed_big == 0, name);
}

// ----------------------------------------------------------------------------

static const Version<bool> versions[] = {
    {1, "rebuild", false, ABFT_CORRECTS, false, "detect, locate, rebuild from the checksum (the fp32 path's)"},
    {2, "recompute", true, ABFT_CORRECTS, false, "detect, locate, recompute the located elements' dot products"},
};

struct Spec { const char* name; int batch, M, N, K; bool a_t, b_t, bias; float alpha, sa, sb; };

int main(int argc, char** argv) {
    const Args a = parse_args(argc, argv, versions);
    cuda_require_device();
    Handles h;
    cublasCheck(cublasCreate(&h.blas));
    cublasCheck(cublasLtCreate(&h.lt));
    cudaCheck(cudaMalloc(&g_workspace, WORKSPACE_BYTES));
    const bool gpu = on_real_gpu();
    // attention shapes, small and odd on both (the references are plain loops), and linear ones
    const int NH = 3, T = 37, HS = 16, C = NH * HS, B = 2;
    const float inv_sqrt_hs = 1.0f / sqrtf((float)HS);
    const Spec specs[] = {
        {"qk S=Q·Kᵀ/√HS", B * NH, T, T, HS, false, true, false, inv_sqrt_hs, 1.0f, 1.0f},
        {"pv Y=P·V", B * NH, T, HS, T, false, false, false, 1.0f, 1.0f, 1.0f},
        {"proj Y·Wᵀ+b (1e3)", 1, B * T, C, C, false, true, true, 1.0f, 1e3f, 1e3f},
        {"fc X·Wᵀ+b (1e-3)", 1, B * T, 4 * C, C, false, true, true, 1.0f, 1e-3f, 1e-3f},
        {"dW dYᵀ·X, K=B·T", 1, C, 40, B * T, true, false, false, 1.0f, 1.0f, 1.0f},
        {"odd Aᵀ·Bᵀ (1e-3·1e3)", 2, 31, 17, 21, true, true, false, 2.0f, 1e-3f, 1e3f},
    };
    const int seeds = 5;
    uint64_t seed = 4321;
    for (const Spec& s : specs) {
        double worst = 0.0;
        int bad = 0, alarms = 0;
        for (int r = 0; r < seeds; r++) {
            Problem p = make_problem(s.name, s.batch, s.M, s.N, s.K, s.a_t, s.b_t, s.bias, s.alpha, s.sa, s.sb, seed += 7);
            LtGemm plan;
            if (s.bias) { plan = lt_plan(h.lt, p); }
            compute_reference(p);
            Checker c = checker_alloc(p.g);
            std::vector<bf16> clean;
            worst = std::max(worst, check_clean(h, p, s.bias ? &plan : nullptr, c, &clean, &bad, &alarms));
            if (r == 0) { // the faults on the first seed's GEMM
                for (const Version<bool>& v : versions) {
                    if (selected(a, v.number)) { test_faults(p, clean, c, v, seed * 31 + v.number); }
                }
                if (s.batch > 1 || !s.bias) { test_bit_flips(p, clean, c, 24, seed); }
            }
            checker_free(c);
            if (s.bias) { lt_free(plan); }
            free_problem(p);
        }
        char name[200];
        snprintf(name, sizeof(name), "%s: %d bf16 GEMMs within bf16 rounding of the exact product (%d elements off)",
                 s.name, seeds, bad);
        check(bad == 0, name);
        snprintf(name, sizeof(name), "%s: no false alarm in %d fault-free checks; largest residual %.3f of the "
                 "tolerance at tau = 1", s.name, seeds, worst);
        check(alarms == 0, name);
    }

    if (gpu) { // GPT-2 124M (B = 8, T = 1024): the GEMM alone, then with encode + verify
        const int b = 8, nh = 12, t = 1024, hs = 64, c = nh * hs;
        const Spec full[] = {
            {"qk", b * nh, t, t, hs, false, true, false, 0.125f, 1.0f, 1.0f},
            {"pv", b * nh, t, hs, t, false, false, false, 1.0f, 1.0f, 1.0f},
            {"proj", 1, b * t, c, c, false, true, true, 1.0f, 1.0f, 1.0f},
            {"fc", 1, b * t, 4 * c, c, false, true, true, 1.0f, 1.0f, 1.0f},
        };
        for (const Spec& s : full) {
            Problem p = make_problem(s.name, s.batch, s.M, s.N, s.K, s.a_t, s.b_t, s.bias, s.alpha, s.sa, s.sb, 77);
            LtGemm plan;
            if (s.bias) { plan = lt_plan(h.lt, p); }
            const LtGemm* pl = s.bias ? &plan : nullptr;
            Checker c = checker_alloc(p.g);
            cudaCheck(cudaMemset(c.counter, 0, sizeof(int)));
            const float base = benchmark_kernel(20, [&] { run_gemm(h, p, pl); });
            const float with = benchmark_kernel(20, [&] { run_gemm(h, p, pl); encode_verify(p.g, c); });
            char label[64];
            snprintf(label, sizeof(label), "bf16-gemm-%s", s.name);
            report_benchmark("abft_gemm_bf16", label, base, base);
            snprintf(label, sizeof(label), "bf16-gemm+check-%s", s.name);
            report_benchmark("abft_gemm_bf16", label, with, base);
            char name[120];
            snprintf(name, sizeof(name), "%s at full size: no alarm over the benchmark's checks", s.name);
            check(host_copy(c.counter, 1)[0] == 0, name);
            checker_free(c);
            if (s.bias) { lt_free(plan); }
            free_problem(p);
        }
    }
    cudaCheck(cudaFree(g_workspace));
    cublasCheck(cublasLtDestroy(h.lt));
    cublasCheck(cublasDestroy(h.blas));
    return finish();
}
