// harness_cublas.h: the cuBLAS API this project uses (handles, single-precision GEMM,
// strided-batched GEMM, their Ex forms in fp32 and in bf16), on the CPU.
//
// bf16 (the Ex forms with CUDA_R_16BF A and B, C bf16 or fp32, compute type 32F): the operands
// are widened to fp32 exactly, the products summed in fp32 as for fp32 data, then
// C = alpha·sum + beta·C computed in fp32 and, for a bf16 C, rounded once to nearest even.
//
// TF32: a GEMM converts its operands to TF32 (harness_gemm.h) when the handle's math mode is
// CUBLAS_TF32_TENSOR_OP_MATH (Sgemm, and the Ex forms with CUBLAS_COMPUTE_32F), or when an
// Ex form asks for CUBLAS_COMPUTE_32F_FAST_TF32; CUBLAS_COMPUTE_32F_PEDANTIC never does.
//
// Semantics are cuBLAS's: column-major matrices, C = alpha op(A) op(B) + beta C, with op
// N or T, leading dimensions, and C not read when beta is 0 (so NaN in an uninitialized C
// does not leak through). Arguments are checked as cuBLAS checks them (CUBLAS_STATUS_INVALID_VALUE
// for a negative size or a leading dimension below the stored matrix's rows), and, beyond
// what cuBLAS can do, every matrix must lie inside memory a GPU could read (cudaMalloc,
// cudaMallocManaged or cudaMallocHost) or the call fails with CUBLAS_STATUS_EXECUTION_FAILED:
// on a GPU that would have been an illegal memory access.
#pragma once

#include "harness_gemm.h"

CUDA_HARNESS_UNTRACED_BEGIN

// ----------------------------------------------------------------------------
// types, with the real names and values (cublas_api.h)

typedef enum {
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_NOT_INITIALIZED = 1,
    CUBLAS_STATUS_ALLOC_FAILED = 3,
    CUBLAS_STATUS_INVALID_VALUE = 7,
    CUBLAS_STATUS_ARCH_MISMATCH = 8,
    CUBLAS_STATUS_MAPPING_ERROR = 11,
    CUBLAS_STATUS_EXECUTION_FAILED = 13,
    CUBLAS_STATUS_INTERNAL_ERROR = 14,
    CUBLAS_STATUS_NOT_SUPPORTED = 15,
    CUBLAS_STATUS_LICENSE_ERROR = 16,
} cublasStatus_t;

typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_OP_C = 2 } cublasOperation_t;

typedef enum { CUBLAS_POINTER_MODE_HOST = 0, CUBLAS_POINTER_MODE_DEVICE = 1 } cublasPointerMode_t;

typedef enum {
    CUBLAS_DEFAULT_MATH = 0,
    CUBLAS_TENSOR_OP_MATH = 1,
    CUBLAS_PEDANTIC_MATH = 2,
    CUBLAS_TF32_TENSOR_OP_MATH = 3,
    CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION = 16,
} cublasMath_t;

typedef enum {
    CUBLAS_COMPUTE_16F = 64,
    CUBLAS_COMPUTE_16F_PEDANTIC = 65,
    CUBLAS_COMPUTE_32F = 68,
    CUBLAS_COMPUTE_32F_PEDANTIC = 69,
    CUBLAS_COMPUTE_32F_FAST_16F = 74,
    CUBLAS_COMPUTE_32F_FAST_16BF = 75,
    CUBLAS_COMPUTE_32F_FAST_TF32 = 77,
    CUBLAS_COMPUTE_64F = 70,
    CUBLAS_COMPUTE_64F_PEDANTIC = 71,
    CUBLAS_COMPUTE_32I = 72,
    CUBLAS_COMPUTE_32I_PEDANTIC = 73,
} cublasComputeType_t;

typedef enum { CUBLAS_GEMM_DEFAULT = -1, CUBLAS_GEMM_DEFAULT_TENSOR_OP = 99 } cublasGemmAlgo_t;

struct cublasContext {
    cudaStream_t stream = nullptr;
    cublasMath_t math_mode = CUBLAS_DEFAULT_MATH;
    cublasPointerMode_t pointer_mode = CUBLAS_POINTER_MODE_HOST;
};
typedef struct cublasContext* cublasHandle_t;

// ----------------------------------------------------------------------------
// status strings (the real library's wording)

inline const char* cublasGetStatusName(cublasStatus_t status) {
    switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}

inline const char* cublasGetStatusString(cublasStatus_t status) {
    switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "the operation completed successfully";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "the functionality requested requires some license";
    }
    return "unknown error";
}

namespace cuda_harness {

// ----------------------------------------------------------------------------
// argument checks shared by cuBLAS and cuBLASLt

// The bytes a column-major rows×cols matrix with leading dimension ld spans, for elements of
// `element` bytes.
inline size_t matrix_span_bytes(int64_t rows, int64_t cols, int64_t ld, size_t element) {
    if (rows <= 0 || cols <= 0) { return 0; }
    return static_cast<size_t>((cols - 1) * ld + rows) * element;
}

// Whether `bytes` at p are memory a GPU kernel could read or write; explains if not.
inline bool gpu_operand_ok(const char* api, const char* name, const void* p, size_t bytes) {
    if (bytes == 0 || (p != nullptr && gpu_accessible(p, bytes))) { return true; }
    diagnose("%s: matrix %s [%p, +%zu bytes) is not inside memory from cudaMalloc (on a GPU: an illegal memory "
             "access); check the pointer, the sizes and the leading dimension", api, name, p, bytes);
    return false;
}

inline bool op_ok(cublasOperation_t op) { return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C; }

// cuBLAS's own checks of a GEMM's sizes and leading dimensions.
inline cublasStatus_t check_gemm_args(const char* api, cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb,
                                      int m, int n, int k, int lda, int ldb, int ldc, int batch) {
    if (handle == nullptr) {
        diagnose("%s: NULL handle (call cublasCreate first)", api);
        return CUBLAS_STATUS_NOT_INITIALIZED;
    }
    if (!op_ok(ta) || !op_ok(tb) || m < 0 || n < 0 || k < 0 || batch < 0) {
        diagnose("%s: invalid operation or negative size (m=%d n=%d k=%d batch=%d)", api, m, n, k, batch);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    const int a_rows = ta == CUBLAS_OP_N ? m : k;
    const int b_rows = tb == CUBLAS_OP_N ? k : n;
    if (lda < std::max(1, a_rows) || ldb < std::max(1, b_rows) || ldc < std::max(1, m)) {
        diagnose("%s: leading dimension below the stored matrix's rows: lda=%d (needs >= %d), ldb=%d (needs >= %d), "
                 "ldc=%d (needs >= %d)", api, lda, std::max(1, a_rows), ldb, std::max(1, b_rows), ldc, std::max(1, m));
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    stream_catch_up(handle->stream); // the GEMM runs next on the handle's stream
    return CUBLAS_STATUS_SUCCESS;
}

// The data and compute types this harness multiplies, as cuBLAS's tables for a 32F compute
// type list them (cublasGemmEx, cublasLtMatmul): fp32 A, B and C with any 32F compute type
// (the FAST_16F/16BF/TF32 ones are for fp32 data only), or bf16 A and B with a bf16 or fp32 C
// and compute type 32F or 32F_PEDANTIC. Scale type (alpha, beta) fp32 in both.
inline bool gemm_types_ok(cudaDataType ab, cudaDataType c, int32_t compute) {
    const bool plain_32f = compute == CUBLAS_COMPUTE_32F || compute == CUBLAS_COMPUTE_32F_PEDANTIC;
    if (ab == CUDA_R_16BF) { return (c == CUDA_R_16BF || c == CUDA_R_32F) && plain_32f; }
    return ab == CUDA_R_32F && c == CUDA_R_32F &&
           (plain_32f || compute == CUBLAS_COMPUTE_32F_FAST_TF32 || compute == CUBLAS_COMPUTE_32F_FAST_16F ||
            compute == CUBLAS_COMPUTE_32F_FAST_16BF);
}

// One matrix of a cuBLAS GEMM: column-major, `ld` elements between columns, `stride` elements
// between the matrices of a batch.
struct GemmMatrix {
    const void* data = nullptr;
    cudaDataType type = CUDA_R_32F;
    int ld = 1;
    long long stride = 0;

    const void* batch(int64_t i) const { return element_at(data, type, i * stride); }
    // The span of one matrix of `rows` (of the stored, untransposed matrix) by `cols`.
    size_t span_bytes(int64_t rows, int64_t cols) const { return matrix_span_bytes(rows, cols, ld, element_bytes(type)); }
};

// The stored shape of op(X) = rows×cols: X itself is cols×rows when transposed.
struct StoredShape {
    int64_t rows, cols;
};
inline StoredShape stored_shape(cublasOperation_t op, int64_t rows, int64_t cols) {
    return op == CUBLAS_OP_N ? StoredShape{rows, cols} : StoredShape{cols, rows};
}

// Every matrix of every batch must lie inside memory a GPU could read.
inline bool gemm_operands_ok(const char* api, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                             const GemmMatrix& a, const GemmMatrix& b, const GemmMatrix& c, int batch, bool reads_ab) {
    const StoredShape sa = stored_shape(ta, m, k), sb = stored_shape(tb, k, n);
    for (int i = 0; i < batch; i++) {
        if (reads_ab && (!gpu_operand_ok(api, "A", a.batch(i), a.span_bytes(sa.rows, sa.cols)) ||
                         !gpu_operand_ok(api, "B", b.batch(i), b.span_bytes(sb.rows, sb.cols)))) {
            return false;
        }
        if (!gpu_operand_ok(api, "C", c.batch(i), c.span_bytes(m, n))) { return false; }
    }
    return true;
}

// Whether the handle's math mode lets fp32 GEMMs use TF32 tensor cores (the mode may carry
// the CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION flag, which is about fp16 sums).
inline bool math_mode_tf32(cublasHandle_t handle) {
    const int mode = handle->math_mode & ~CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION;
    return mode == CUBLAS_TF32_TENSOR_OP_MATH;
}

#ifdef CUDA_HARNESS_SANITIZE
// What the sanitizer sees of a GEMM: initcheck of the operands it reads, its output marked
// written, its FLOPs and bytes counted (each matrix in its own element size).
inline void sanitize_gemm(const char* api, const char* file, int line, cublasOperation_t ta, cublasOperation_t tb,
                          int m, int n, int k, bool reads_ab, bool reads_c, const GemmMatrix& a, const GemmMatrix& b,
                          const GemmMatrix& c, int batch) {
    const StoredShape sa = stored_shape(ta, m, k), sb = stored_shape(tb, k, n);
    for (int i = 0; i < batch; i++) {
        if (reads_ab) {
            san::check_matrix(api, file, line, "matrix A", a.batch(i), sa.rows, sa.cols, a.ld, element_bytes(a.type));
            san::check_matrix(api, file, line, "matrix B", b.batch(i), sb.rows, sb.cols, b.ld, element_bytes(b.type));
        }
        if (reads_c) { san::check_matrix(api, file, line, "matrix C", c.batch(i), m, n, c.ld, element_bytes(c.type)); }
        san::mark_matrix(c.batch(i), m, n, c.ld, element_bytes(c.type));
    }
    const double mn = static_cast<double>(m) * n * batch;
    const double a_bytes = static_cast<double>(m) * k * batch * element_bytes(a.type);
    const double b_bytes = static_cast<double>(n) * k * batch * element_bytes(b.type);
    const double ab_bytes = reads_ab ? a_bytes + b_bytes : 0.0;
    const double c_bytes = mn * element_bytes(c.type);
    san::gemm(api, reads_ab ? 2.0 * mn * k : 0.0, static_cast<uint64_t>(ab_bytes + (reads_c ? c_bytes : 0.0)),
              static_cast<uint64_t>(c_bytes));
}
#endif

// The product of a strided batch, A and B read through views of Element (float or __nv_bfloat16).
template <typename Element, typename Store>
void gemm_product(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const GemmMatrix& a,
                  const GemmMatrix& b, int batch, bool tf32, Store store) {
    auto operands = [&](int64_t batch_index) {
        return std::make_pair(column_major_op(static_cast<const Element*>(a.batch(batch_index)), a.ld, ta != CUBLAS_OP_N),
                              column_major_op(static_cast<const Element*>(b.batch(batch_index)), b.ld, tb != CUBLAS_OP_N));
    };
    run_gemm(GemmShape{m, n, k, batch}, operands, store, tf32);
}

// One strided-batched GEMM, arguments and types already checked: C = alpha op(A) op(B) + beta C,
// computed in fp32, C rounded once if it is bf16; tf32: fp32 operands converted to TF32.
// file and line: the caller's.
inline cublasStatus_t gemm_batched(const char* api, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                   const float* alpha, const GemmMatrix& a, const GemmMatrix& b, const float* beta,
                                   const GemmMatrix& c, int batch, bool tf32, const char* file, int line) {
    (void)file;
    (void)line;
    if (alpha == nullptr || beta == nullptr) {
        diagnose("%s: NULL alpha or beta", api);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (m == 0 || n == 0 || batch == 0) { return CUBLAS_STATUS_SUCCESS; }
    const float alpha_value = *alpha;
    const float beta_value = *beta;
    const bool reads_ab = alpha_value != 0.0f && k > 0;  // as in BLAS: alpha = 0 does not read A and B
    if (!gemm_operands_ok(api, ta, tb, m, n, k, a, b, c, batch, reads_ab)) { return CUBLAS_STATUS_EXECUTION_FAILED; }
    CUDA_HARNESS_SAN(sanitize_gemm(api, file, line, ta, tb, m, n, k, reads_ab, beta_value != 0.0f, a, b, c, batch);)
    // C = alpha * sums + beta * C in fp32, C unread when beta is 0; C is the caller's output
    void* const c_data = const_cast<void*>(c.data);
    auto store = [&](int64_t batch_index, int64_t j, const float* sums) {
        const int64_t column = batch_index * c.stride + j * c.ld;
        for (int64_t i = 0; i < m; i++) {
            const float product = reads_ab ? alpha_value * sums[i] : 0.0f;
            const float x = beta_value == 0.0f ? product : product + beta_value * load_element(c_data, c.type, column + i);
            store_element(c_data, c.type, column + i, x);
        }
    };
    ProfileScope timed([&] { return gemm_profile_name(api, GemmShape{m, n, k, batch}); });
    if (!reads_ab) {
        static const float zero = 0.0f;  // sums of nothing
        for (int64_t bi = 0; bi < batch; bi++) {
            for (int64_t j = 0; j < n; j++) { store(bi, j, &zero); }
        }
    } else if (a.type == CUDA_R_16BF) {
        gemm_product<__nv_bfloat16>(ta, tb, m, n, k, a, b, batch, tf32, store);
    } else {
        gemm_product<float>(ta, tb, m, n, k, a, b, batch, tf32, store);
    }
    return CUBLAS_STATUS_SUCCESS;
}

// The Ex forms' compute type: FAST_TF32 always converts, 32F as the handle's math mode says.
inline bool compute_type_tf32(cublasHandle_t handle, cublasComputeType_t compute) {
    return compute == CUBLAS_COMPUTE_32F_FAST_TF32 || (compute == CUBLAS_COMPUTE_32F && math_mode_tf32(handle));
}

// The Ex forms' types: A and B alike, and a combination of gemm_types_ok.
inline bool ex_types_ok(const char* api, cudaDataType a, cudaDataType b, cudaDataType c, cublasComputeType_t compute) {
    const bool ok = a == b && gemm_types_ok(a, c, compute);
    if (!ok) {
        diagnose("%s: A type %d, B type %d, C type %d, compute type %d: the CPU harness supports fp32 A, B and C "
                 "(CUDA_R_32F) with a 32F compute type, or bf16 A and B (CUDA_R_16BF) with a bf16 or fp32 C and "
                 "compute type CUBLAS_COMPUTE_32F or _PEDANTIC", api, a, b, c, compute);
    }
    return ok;
}

}  // namespace cuda_harness

// ----------------------------------------------------------------------------
// handles

inline cublasStatus_t cublasCreate(cublasHandle_t* handle) {
    if (handle == nullptr) { return CUBLAS_STATUS_INVALID_VALUE; }
    *handle = new cublasContext;
    return CUBLAS_STATUS_SUCCESS;
}

inline cublasStatus_t cublasDestroy(cublasHandle_t handle) {
    if (handle == nullptr) { return CUBLAS_STATUS_NOT_INITIALIZED; }
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}

inline cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
    if (handle == nullptr) { return CUBLAS_STATUS_NOT_INITIALIZED; }
    handle->stream = stream;
    return CUBLAS_STATUS_SUCCESS;
}

inline cublasStatus_t cublasGetStream(cublasHandle_t handle, cudaStream_t* stream) {
    if (handle == nullptr) { return CUBLAS_STATUS_NOT_INITIALIZED; }
    if (stream == nullptr) { return CUBLAS_STATUS_INVALID_VALUE; }
    *stream = handle->stream;
    return CUBLAS_STATUS_SUCCESS;
}

inline cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
    if (handle == nullptr) { return CUBLAS_STATUS_NOT_INITIALIZED; }
    handle->math_mode = mode;
    return CUBLAS_STATUS_SUCCESS;
}

inline cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t* mode) {
    if (handle == nullptr) { return CUBLAS_STATUS_NOT_INITIALIZED; }
    if (mode == nullptr) { return CUBLAS_STATUS_INVALID_VALUE; }
    *mode = handle->math_mode;
    return CUBLAS_STATUS_SUCCESS;
}

inline cublasStatus_t cublasSetPointerMode(cublasHandle_t handle, cublasPointerMode_t mode) {
    if (handle == nullptr) { return CUBLAS_STATUS_NOT_INITIALIZED; }
    handle->pointer_mode = mode;  // alpha and beta are read through the pointer either way
    return CUBLAS_STATUS_SUCCESS;
}

inline cublasStatus_t cublasGetPointerMode(cublasHandle_t handle, cublasPointerMode_t* mode) {
    if (handle == nullptr) { return CUBLAS_STATUS_NOT_INITIALIZED; }
    if (mode == nullptr) { return CUBLAS_STATUS_INVALID_VALUE; }
    *mode = handle->pointer_mode;
    return CUBLAS_STATUS_SUCCESS;
}

inline cublasStatus_t cublasSetWorkspace(cublasHandle_t handle, void* /*workspace*/, size_t /*bytes*/) {
    return handle == nullptr ? CUBLAS_STATUS_NOT_INITIALIZED : CUBLAS_STATUS_SUCCESS;
}

inline cublasStatus_t cublasGetVersion(cublasHandle_t handle, int* version) {
    if (handle == nullptr) { return CUBLAS_STATUS_NOT_INITIALIZED; }
    if (version == nullptr) { return CUBLAS_STATUS_INVALID_VALUE; }
    *version = 130000;
    return CUBLAS_STATUS_SUCCESS;
}

// ----------------------------------------------------------------------------
// GEMMs

inline cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m,
                                  int n, int k, const float* alpha, const float* A, int lda, const float* B, int ldb,
                                  const float* beta, float* C, int ldc, const char* file = __builtin_FILE(),
                                  int line = __builtin_LINE()) {
    using cuda_harness::GemmMatrix;
    cublasStatus_t status = cuda_harness::check_gemm_args("cublasSgemm", handle, transa, transb, m, n, k, lda, ldb, ldc, 1);
    if (status != CUBLAS_STATUS_SUCCESS) { return status; }
    return cuda_harness::gemm_batched("cublasSgemm", transa, transb, m, n, k, alpha, GemmMatrix{A, CUDA_R_32F, lda, 0},
                                      GemmMatrix{B, CUDA_R_32F, ldb, 0}, beta, GemmMatrix{C, CUDA_R_32F, ldc, 0}, 1,
                                      cuda_harness::math_mode_tf32(handle), file, line);
}

inline cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa,
                                                cublasOperation_t transb, int m, int n, int k, const float* alpha,
                                                const float* A, int lda, long long int strideA, const float* B, int ldb,
                                                long long int strideB, const float* beta, float* C, int ldc,
                                                long long int strideC, int batchCount,
                                                const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    using cuda_harness::GemmMatrix;
    const char* api = "cublasSgemmStridedBatched";
    cublasStatus_t status = cuda_harness::check_gemm_args(api, handle, transa, transb, m, n, k, lda, ldb, ldc, batchCount);
    if (status != CUBLAS_STATUS_SUCCESS) { return status; }
    return cuda_harness::gemm_batched(api, transa, transb, m, n, k, alpha, GemmMatrix{A, CUDA_R_32F, lda, strideA},
                                      GemmMatrix{B, CUDA_R_32F, ldb, strideB}, beta,
                                      GemmMatrix{C, CUDA_R_32F, ldc, strideC}, batchCount,
                                      cuda_harness::math_mode_tf32(handle), file, line);
}

// The Ex forms: fp32 data, or bf16 A and B with a bf16 or fp32 C (ex_types_ok); alpha and
// beta are floats (scale type 32F) either way.
inline cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m,
                                   int n, int k, const void* alpha, const void* A, cudaDataType Atype, int lda,
                                   const void* B, cudaDataType Btype, int ldb, const void* beta, void* C,
                                   cudaDataType Ctype, int ldc, cublasComputeType_t computeType,
                                   cublasGemmAlgo_t /*algo*/, const char* file = __builtin_FILE(),
                                   int line = __builtin_LINE()) {
    using cuda_harness::GemmMatrix;
    if (!cuda_harness::ex_types_ok("cublasGemmEx", Atype, Btype, Ctype, computeType)) { return CUBLAS_STATUS_NOT_SUPPORTED; }
    cublasStatus_t status = cuda_harness::check_gemm_args("cublasGemmEx", handle, transa, transb, m, n, k, lda, ldb, ldc, 1);
    if (status != CUBLAS_STATUS_SUCCESS) { return status; }
    return cuda_harness::gemm_batched("cublasGemmEx", transa, transb, m, n, k, static_cast<const float*>(alpha),
                                      GemmMatrix{A, Atype, lda, 0}, GemmMatrix{B, Btype, ldb, 0},
                                      static_cast<const float*>(beta), GemmMatrix{C, Ctype, ldc, 0}, 1,
                                      cuda_harness::compute_type_tf32(handle, computeType), file, line);
}

inline cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t transa,
                                                 cublasOperation_t transb, int m, int n, int k, const void* alpha,
                                                 const void* A, cudaDataType Atype, int lda, long long int strideA,
                                                 const void* B, cudaDataType Btype, int ldb, long long int strideB,
                                                 const void* beta, void* C, cudaDataType Ctype, int ldc,
                                                 long long int strideC, int batchCount,
                                                 cublasComputeType_t computeType, cublasGemmAlgo_t /*algo*/,
                                                 const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    using cuda_harness::GemmMatrix;
    const char* api = "cublasGemmStridedBatchedEx";
    if (!cuda_harness::ex_types_ok(api, Atype, Btype, Ctype, computeType)) { return CUBLAS_STATUS_NOT_SUPPORTED; }
    cublasStatus_t status = cuda_harness::check_gemm_args(api, handle, transa, transb, m, n, k, lda, ldb, ldc, batchCount);
    if (status != CUBLAS_STATUS_SUCCESS) { return status; }
    return cuda_harness::gemm_batched(api, transa, transb, m, n, k, static_cast<const float*>(alpha),
                                      GemmMatrix{A, Atype, lda, strideA}, GemmMatrix{B, Btype, ldb, strideB},
                                      static_cast<const float*>(beta), GemmMatrix{C, Ctype, ldc, strideC}, batchCount,
                                      cuda_harness::compute_type_tf32(handle, computeType), file, line);
}

CUDA_HARNESS_UNTRACED_END
