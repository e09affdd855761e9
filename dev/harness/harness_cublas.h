// harness_cublas.h: the cuBLAS API this project uses (handles, single-precision GEMM,
// strided-batched GEMM, their Ex forms in fp32), on the CPU.
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

// The bytes a column-major rows×cols matrix with leading dimension ld spans.
inline size_t matrix_span_bytes(int64_t rows, int64_t cols, int64_t ld) {
    if (rows <= 0 || cols <= 0) { return 0; }
    return static_cast<size_t>((cols - 1) * ld + rows) * sizeof(float);
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
    return CUBLAS_STATUS_SUCCESS;
}

// Every matrix of every batch must lie inside memory a GPU could read.
inline bool gemm_operands_ok(const char* api, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                             const float* A, int lda, long long stride_a, const float* B, int ldb, long long stride_b,
                             const float* C, int ldc, long long stride_c, int batch, bool reads_ab) {
    const size_t a_bytes = ta == CUBLAS_OP_N ? matrix_span_bytes(m, k, lda) : matrix_span_bytes(k, m, lda);
    const size_t b_bytes = tb == CUBLAS_OP_N ? matrix_span_bytes(k, n, ldb) : matrix_span_bytes(n, k, ldb);
    const size_t c_bytes = matrix_span_bytes(m, n, ldc);
    for (int i = 0; i < batch; i++) {
        if (reads_ab && (!gpu_operand_ok(api, "A", A + i * stride_a, a_bytes) ||
                         !gpu_operand_ok(api, "B", B + i * stride_b, b_bytes))) {
            return false;
        }
        if (!gpu_operand_ok(api, "C", C + i * stride_c, c_bytes)) { return false; }
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
// written, its FLOPs and bytes counted.
inline void sanitize_gemm(const char* api, const char* file, int line, cublasOperation_t ta, cublasOperation_t tb,
                          int m, int n, int k, bool reads_ab, bool reads_c, const float* A, int lda, long long stride_a,
                          const float* B, int ldb, long long stride_b, const float* C, int ldc, long long stride_c,
                          int batch) {
    for (int i = 0; i < batch; i++) {
        if (reads_ab) {
            san::check_matrix(api, file, line, "matrix A", A + i * stride_a, ta == CUBLAS_OP_N ? m : k,
                              ta == CUBLAS_OP_N ? k : m, lda);
            san::check_matrix(api, file, line, "matrix B", B + i * stride_b, tb == CUBLAS_OP_N ? k : n,
                              tb == CUBLAS_OP_N ? n : k, ldb);
        }
        if (reads_c) { san::check_matrix(api, file, line, "matrix C", C + i * stride_c, m, n, ldc); }
        san::mark_matrix(C + i * stride_c, m, n, ldc);
    }
    const double mn = static_cast<double>(m) * n * batch;
    san::gemm(api, reads_ab ? 2.0 * mn * k : 0.0,
              static_cast<uint64_t>((reads_ab ? (static_cast<double>(m) + n) * k * batch : 0.0) + (reads_c ? mn : 0.0)) *
                  sizeof(float),
              static_cast<uint64_t>(mn) * sizeof(float));
}
#endif

// One strided-batched fp32 GEMM, arguments already checked; tf32: operands converted to TF32.
// file and line: the caller's.
inline cublasStatus_t sgemm_batched(const char* api, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                    const float* alpha, const float* A, int lda, long long stride_a, const float* B,
                                    int ldb, long long stride_b, const float* beta, float* C, int ldc,
                                    long long stride_c, int batch, bool tf32, const char* file, int line) {
    (void)file;
    (void)line;
    if (alpha == nullptr || beta == nullptr) {
        diagnose("%s: NULL alpha or beta", api);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (m == 0 || n == 0 || batch == 0) { return CUBLAS_STATUS_SUCCESS; }
    const float a = *alpha;
    const float b = *beta;
    const bool reads_ab = a != 0.0f && k > 0;  // as in BLAS: alpha = 0 does not read A and B
    if (!gemm_operands_ok(api, ta, tb, m, n, k, A, lda, stride_a, B, ldb, stride_b, C, ldc, stride_c, batch, reads_ab)) {
        return CUBLAS_STATUS_EXECUTION_FAILED;
    }
    CUDA_HARNESS_SAN(sanitize_gemm(api, file, line, ta, tb, m, n, k, reads_ab, b != 0.0f, A, lda, stride_a, B, ldb,
                                   stride_b, C, ldc, stride_c, batch);)
    // C = alpha * sums + beta * C, C unread when beta is 0
    auto store = [&](int64_t batch_index, int64_t j, const float* sums) {
        float* c = C + batch_index * stride_c + j * ldc;
        for (int64_t i = 0; i < m; i++) {
            const float product = reads_ab ? a * sums[i] : 0.0f;
            c[i] = b == 0.0f ? product : product + b * c[i];
        }
    };
    if (!reads_ab) {
        static const float zero = 0.0f;  // sums of nothing
        for (int64_t bi = 0; bi < batch; bi++) {
            for (int64_t j = 0; j < n; j++) { store(bi, j, &zero); }
        }
        return CUBLAS_STATUS_SUCCESS;
    }
    auto operands = [&](int64_t batch_index) {
        return std::make_pair(column_major_op(A + batch_index * stride_a, lda, ta != CUBLAS_OP_N),
                              column_major_op(B + batch_index * stride_b, ldb, tb != CUBLAS_OP_N));
    };
    run_gemm(GemmShape{m, n, k, batch}, operands, store, tf32);
    return CUBLAS_STATUS_SUCCESS;
}

// The Ex forms' compute type: FAST_TF32 always converts, 32F as the handle's math mode says.
inline bool compute_type_tf32(cublasHandle_t handle, cublasComputeType_t compute) {
    return compute == CUBLAS_COMPUTE_32F_FAST_TF32 || (compute == CUBLAS_COMPUTE_32F && math_mode_tf32(handle));
}

// The Ex forms in this harness: fp32 data only.
inline bool ex_types_ok(const char* api, cudaDataType a, cudaDataType b, cudaDataType c, cublasComputeType_t compute) {
    const bool ok = a == CUDA_R_32F && b == CUDA_R_32F && c == CUDA_R_32F &&
                    (compute == CUBLAS_COMPUTE_32F || compute == CUBLAS_COMPUTE_32F_PEDANTIC ||
                     compute == CUBLAS_COMPUTE_32F_FAST_TF32 || compute == CUBLAS_COMPUTE_32F_FAST_16F ||
                     compute == CUBLAS_COMPUTE_32F_FAST_16BF);
    if (!ok) { diagnose("%s: the CPU harness supports fp32 matrices (CUDA_R_32F) with a 32F compute type only", api); }
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
    cublasStatus_t status = cuda_harness::check_gemm_args("cublasSgemm", handle, transa, transb, m, n, k, lda, ldb, ldc, 1);
    if (status != CUBLAS_STATUS_SUCCESS) { return status; }
    return cuda_harness::sgemm_batched("cublasSgemm", transa, transb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta, C,
                                       ldc, 0, 1, cuda_harness::math_mode_tf32(handle), file, line);
}

inline cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa,
                                                cublasOperation_t transb, int m, int n, int k, const float* alpha,
                                                const float* A, int lda, long long int strideA, const float* B, int ldb,
                                                long long int strideB, const float* beta, float* C, int ldc,
                                                long long int strideC, int batchCount,
                                                const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    cublasStatus_t status = cuda_harness::check_gemm_args("cublasSgemmStridedBatched", handle, transa, transb, m, n, k,
                                                          lda, ldb, ldc, batchCount);
    if (status != CUBLAS_STATUS_SUCCESS) { return status; }
    return cuda_harness::sgemm_batched("cublasSgemmStridedBatched", transa, transb, m, n, k, alpha, A, lda, strideA, B,
                                       ldb, strideB, beta, C, ldc, strideC, batchCount,
                                       cuda_harness::math_mode_tf32(handle), file, line);
}

inline cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m,
                                   int n, int k, const void* alpha, const void* A, cudaDataType Atype, int lda,
                                   const void* B, cudaDataType Btype, int ldb, const void* beta, void* C,
                                   cudaDataType Ctype, int ldc, cublasComputeType_t computeType,
                                   cublasGemmAlgo_t /*algo*/, const char* file = __builtin_FILE(),
                                   int line = __builtin_LINE()) {
    if (!cuda_harness::ex_types_ok("cublasGemmEx", Atype, Btype, Ctype, computeType)) { return CUBLAS_STATUS_NOT_SUPPORTED; }
    cublasStatus_t status = cuda_harness::check_gemm_args("cublasGemmEx", handle, transa, transb, m, n, k, lda, ldb, ldc, 1);
    if (status != CUBLAS_STATUS_SUCCESS) { return status; }
    return cuda_harness::sgemm_batched("cublasGemmEx", transa, transb, m, n, k, static_cast<const float*>(alpha),
                                       static_cast<const float*>(A), lda, 0, static_cast<const float*>(B), ldb, 0,
                                       static_cast<const float*>(beta), static_cast<float*>(C), ldc, 0, 1,
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
    const char* api = "cublasGemmStridedBatchedEx";
    if (!cuda_harness::ex_types_ok(api, Atype, Btype, Ctype, computeType)) { return CUBLAS_STATUS_NOT_SUPPORTED; }
    cublasStatus_t status = cuda_harness::check_gemm_args(api, handle, transa, transb, m, n, k, lda, ldb, ldc, batchCount);
    if (status != CUBLAS_STATUS_SUCCESS) { return status; }
    return cuda_harness::sgemm_batched(api, transa, transb, m, n, k, static_cast<const float*>(alpha),
                                       static_cast<const float*>(A), lda, strideA, static_cast<const float*>(B), ldb,
                                       strideB, static_cast<const float*>(beta), static_cast<float*>(C), ldc, strideC,
                                       batchCount, cuda_harness::compute_type_tf32(handle, computeType), file, line);
}

CUDA_HARNESS_UNTRACED_END
