// harness_cublaslt.h: the cuBLASLt matmul API on the CPU, in fp32 and bf16.
//
//     D = epilogue(alpha op(A) op(B) + beta C)
//
// with descriptors as in the real library: a matmul descriptor (compute and scale type,
// TRANSA/TRANSB, EPILOGUE, BIAS_POINTER, EPILOGUE_AUX_POINTER/LD, batch strides), one layout
// per matrix (rows, cols, ld, column- or row-major, BATCH_COUNT, STRIDED_BATCH_OFFSET), a
// preference, and a heuristic that always offers one algorithm. Attribute setters check the
// value's size as the library does. Epilogues, in cuBLASLt's column-major terms (m = rows of D):
//   DEFAULT, RELU, BIAS, RELU_BIAS    bias[i] added to row i of D, before the activation
//   GELU, GELU_BIAS                   tanh-approximated GELU
//   GELU_AUX, GELU_AUX_BIAS           also store the GELU input in aux (m×n, ld = AUX_LD)
//   DGELU, DGELU_BGRAD                D *= GELU'(aux); BGRAD: bias[i] = sum over j of D(i, j)
//   BGRADA, BGRADB                    bias[i] = sum_l op(A)(i, l); bias[j] = sum_l op(B)(l, j)
// RELU_AUX and DRELU (bit masks) are CUBLAS_STATUS_NOT_SUPPORTED.
// Compute type CUBLAS_COMPUTE_32F_FAST_TF32 converts A and B to TF32 before the product
// (harness_gemm.h); the bias-gradient sums of A or B (BGRADA, BGRADB) read them unconverted.
//
// Types: fp32 A, B, C, D (any 32F compute type), or bf16 A and B with C and D both bf16 or both
// fp32 (compute type 32F or 32F_PEDANTIC), scale type 32F; others are NOT_SUPPORTED. The bias
// vector is of D's type unless BIAS_DATA_TYPE says CUDA_R_32F; aux is of D's type
// (EPILOGUE_AUX_DATA_TYPE may only repeat it). bf16 operands are widened exactly, everything
// is computed in fp32 (the bias added and GELU applied before the one rounding of D), and
// what is stored in bf16 (D, aux, a bias gradient) is rounded to nearest even.
#pragma once

#include <cmath>

#include "harness_cublas.h"

CUDA_HARNESS_UNTRACED_BEGIN

// ----------------------------------------------------------------------------
// enums, with the real names and values (cublasLt.h)

typedef enum {
    CUBLASLT_ORDER_COL = 0,
    CUBLASLT_ORDER_ROW = 1,
    CUBLASLT_ORDER_COL32 = 2,
    CUBLASLT_ORDER_COL4_4R2_8C = 3,
    CUBLASLT_ORDER_COL32_2R_4R4 = 4,
} cublasLtOrder_t;

typedef enum {
    CUBLASLT_MATRIX_LAYOUT_TYPE = 0,
    CUBLASLT_MATRIX_LAYOUT_ORDER = 1,
    CUBLASLT_MATRIX_LAYOUT_ROWS = 2,
    CUBLASLT_MATRIX_LAYOUT_COLS = 3,
    CUBLASLT_MATRIX_LAYOUT_LD = 4,
    CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT = 5,
    CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET = 6,
    CUBLASLT_MATRIX_LAYOUT_PLANE_OFFSET = 7,
    CUBLASLT_MATRIX_LAYOUT_BATCH_MODE = 8,
} cublasLtMatrixLayoutAttribute_t;

typedef enum {
    CUBLASLT_MATMUL_DESC_COMPUTE_TYPE = 0,
    CUBLASLT_MATMUL_DESC_SCALE_TYPE = 1,
    CUBLASLT_MATMUL_DESC_POINTER_MODE = 2,
    CUBLASLT_MATMUL_DESC_TRANSA = 3,
    CUBLASLT_MATMUL_DESC_TRANSB = 4,
    CUBLASLT_MATMUL_DESC_TRANSC = 5,
    CUBLASLT_MATMUL_DESC_FILL_MODE = 6,
    CUBLASLT_MATMUL_DESC_EPILOGUE = 7,
    CUBLASLT_MATMUL_DESC_BIAS_POINTER = 8,
    CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE = 10,
    CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER = 11,
    CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD = 12,
    CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_BATCH_STRIDE = 13,
    CUBLASLT_MATMUL_DESC_ALPHA_VECTOR_BATCH_STRIDE = 14,
    CUBLASLT_MATMUL_DESC_SM_COUNT_TARGET = 15,
    CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_DATA_TYPE = 22,
    CUBLASLT_MATMUL_DESC_FAST_ACCUM = 25,
    CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE = 26,
} cublasLtMatmulDescAttributes_t;

typedef enum {
    CUBLASLT_EPILOGUE_DEFAULT = 1,
    CUBLASLT_EPILOGUE_RELU = 2,
    CUBLASLT_EPILOGUE_RELU_AUX = (CUBLASLT_EPILOGUE_RELU | 128),
    CUBLASLT_EPILOGUE_BIAS = 4,
    CUBLASLT_EPILOGUE_RELU_BIAS = (CUBLASLT_EPILOGUE_RELU | CUBLASLT_EPILOGUE_BIAS),
    CUBLASLT_EPILOGUE_RELU_AUX_BIAS = (CUBLASLT_EPILOGUE_RELU_AUX | CUBLASLT_EPILOGUE_BIAS),
    CUBLASLT_EPILOGUE_DRELU = 8 | 128,
    CUBLASLT_EPILOGUE_DRELU_BGRAD = CUBLASLT_EPILOGUE_DRELU | 16,
    CUBLASLT_EPILOGUE_GELU = 32,
    CUBLASLT_EPILOGUE_GELU_AUX = (CUBLASLT_EPILOGUE_GELU | 128),
    CUBLASLT_EPILOGUE_GELU_BIAS = (CUBLASLT_EPILOGUE_GELU | CUBLASLT_EPILOGUE_BIAS),
    CUBLASLT_EPILOGUE_GELU_AUX_BIAS = (CUBLASLT_EPILOGUE_GELU_AUX | CUBLASLT_EPILOGUE_BIAS),
    CUBLASLT_EPILOGUE_DGELU = 64 | 128,
    CUBLASLT_EPILOGUE_DGELU_BGRAD = CUBLASLT_EPILOGUE_DGELU | 16,
    CUBLASLT_EPILOGUE_BGRADA = 256,
    CUBLASLT_EPILOGUE_BGRADB = 512,
} cublasLtEpilogue_t;

typedef enum {
    CUBLASLT_MATMUL_PREF_SEARCH_MODE = 0,
    CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1,
    CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK = 3,
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES = 5,
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES = 6,
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES = 7,
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES = 8,
    CUBLASLT_MATMUL_PREF_MAX_WAVES_COUNT = 9,
    CUBLASLT_MATMUL_PREF_IMPL_MASK = 12,
} cublasLtMatmulPreferenceAttributes_t;

typedef enum { CUBLASLT_SEARCH_BEST_FIT = 0, CUBLASLT_SEARCH_LIMITED_BY_ALGO_ID = 1 } cublasLtMatmulSearch_t;

typedef enum { CUBLASLT_POINTER_MODE_HOST = 0, CUBLASLT_POINTER_MODE_DEVICE = 1 } cublasLtPointerMode_t;

// ----------------------------------------------------------------------------
// descriptors: same type names as the real (semi-opaque) ones, with the harness's fields

struct cublasLtContext {
    int unused = 0;
};
typedef struct cublasLtContext* cublasLtHandle_t;

struct cublasLtMatrixLayoutOpaque_t {
    uint32_t type = CUDA_R_32F;
    int32_t order = CUBLASLT_ORDER_COL;
    uint64_t rows = 0;
    uint64_t cols = 0;
    int64_t ld = 0;
    int32_t batch_count = 1;
    int64_t batch_stride = 0;  // elements between consecutive matrices of a batch
    int64_t plane_offset = 0;
    uint32_t batch_mode = 0;
};
typedef cublasLtMatrixLayoutOpaque_t* cublasLtMatrixLayout_t;

struct cublasLtMatmulDescOpaque_t {
    int32_t compute_type = CUBLAS_COMPUTE_32F;
    int32_t scale_type = CUDA_R_32F;
    int32_t pointer_mode = CUBLASLT_POINTER_MODE_HOST;
    int32_t transa = CUBLAS_OP_N;
    int32_t transb = CUBLAS_OP_N;
    int32_t transc = CUBLAS_OP_N;
    int32_t fill_mode = 2;  // CUBLAS_FILL_MODE_FULL
    uint32_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    const void* bias = nullptr;  // input for BIAS epilogues, output for BGRAD ones
    int64_t bias_batch_stride = 0;
    void* aux = nullptr;
    int64_t aux_ld = 0;
    int64_t aux_batch_stride = 0;
    int64_t alpha_vector_batch_stride = 0;
    int32_t sm_count_target = 0;
    int32_t aux_data_type = -1;
    int8_t fast_accum = 0;
    int32_t bias_data_type = -1;
};
typedef cublasLtMatmulDescOpaque_t* cublasLtMatmulDesc_t;

struct cublasLtMatmulPreferenceOpaque_t {
    uint32_t search_mode = CUBLASLT_SEARCH_BEST_FIT;
    uint64_t max_workspace_bytes = 0;
    uint32_t reduction_scheme_mask = 0x7;
    uint32_t min_alignment_bytes[4] = {256, 256, 256, 256};
    float max_waves_count = 0.0f;
    uint64_t impl_mask = ~uint64_t{0};
};
typedef cublasLtMatmulPreferenceOpaque_t* cublasLtMatmulPreference_t;

typedef struct {
    uint64_t data[8];
} cublasLtMatmulAlgo_t;

typedef struct {
    cublasLtMatmulAlgo_t algo;
    size_t workspaceSize;
    cublasStatus_t state;
    float wavesCount;
    int reserved[4];
} cublasLtMatmulHeuristicResult_t;

namespace cuda_harness {

// ----------------------------------------------------------------------------
// attributes: where each one is stored and how many bytes it takes

struct AttributeField {
    void* data = nullptr;
    size_t size = 0;
};

template <typename T>
AttributeField field(T& member) {
    return AttributeField{&member, sizeof(T)};
}

inline AttributeField layout_field(cublasLtMatrixLayoutOpaque_t& l, cublasLtMatrixLayoutAttribute_t attr) {
    switch (attr) {
    case CUBLASLT_MATRIX_LAYOUT_TYPE: return field(l.type);
    case CUBLASLT_MATRIX_LAYOUT_ORDER: return field(l.order);
    case CUBLASLT_MATRIX_LAYOUT_ROWS: return field(l.rows);
    case CUBLASLT_MATRIX_LAYOUT_COLS: return field(l.cols);
    case CUBLASLT_MATRIX_LAYOUT_LD: return field(l.ld);
    case CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT: return field(l.batch_count);
    case CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET: return field(l.batch_stride);
    case CUBLASLT_MATRIX_LAYOUT_PLANE_OFFSET: return field(l.plane_offset);
    case CUBLASLT_MATRIX_LAYOUT_BATCH_MODE: return field(l.batch_mode);
    }
    return AttributeField{};
}

inline AttributeField desc_field(cublasLtMatmulDescOpaque_t& d, cublasLtMatmulDescAttributes_t attr) {
    switch (attr) {
    case CUBLASLT_MATMUL_DESC_COMPUTE_TYPE: return field(d.compute_type);
    case CUBLASLT_MATMUL_DESC_SCALE_TYPE: return field(d.scale_type);
    case CUBLASLT_MATMUL_DESC_POINTER_MODE: return field(d.pointer_mode);
    case CUBLASLT_MATMUL_DESC_TRANSA: return field(d.transa);
    case CUBLASLT_MATMUL_DESC_TRANSB: return field(d.transb);
    case CUBLASLT_MATMUL_DESC_TRANSC: return field(d.transc);
    case CUBLASLT_MATMUL_DESC_FILL_MODE: return field(d.fill_mode);
    case CUBLASLT_MATMUL_DESC_EPILOGUE: return field(d.epilogue);
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: return field(d.bias);
    case CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE: return field(d.bias_batch_stride);
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER: return field(d.aux);
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD: return field(d.aux_ld);
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_BATCH_STRIDE: return field(d.aux_batch_stride);
    case CUBLASLT_MATMUL_DESC_ALPHA_VECTOR_BATCH_STRIDE: return field(d.alpha_vector_batch_stride);
    case CUBLASLT_MATMUL_DESC_SM_COUNT_TARGET: return field(d.sm_count_target);
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_DATA_TYPE: return field(d.aux_data_type);
    case CUBLASLT_MATMUL_DESC_FAST_ACCUM: return field(d.fast_accum);
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE: return field(d.bias_data_type);
    }
    return AttributeField{};
}

inline AttributeField preference_field(cublasLtMatmulPreferenceOpaque_t& p, cublasLtMatmulPreferenceAttributes_t attr) {
    switch (attr) {
    case CUBLASLT_MATMUL_PREF_SEARCH_MODE: return field(p.search_mode);
    case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES: return field(p.max_workspace_bytes);
    case CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK: return field(p.reduction_scheme_mask);
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES: return field(p.min_alignment_bytes[0]);
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES: return field(p.min_alignment_bytes[1]);
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES: return field(p.min_alignment_bytes[2]);
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES: return field(p.min_alignment_bytes[3]);
    case CUBLASLT_MATMUL_PREF_MAX_WAVES_COUNT: return field(p.max_waves_count);
    case CUBLASLT_MATMUL_PREF_IMPL_MASK: return field(p.impl_mask);
    }
    return AttributeField{};
}

// The library refuses an unknown attribute or a buffer of the wrong size.
inline cublasStatus_t set_attribute(const char* api, int attr, AttributeField f, const void* buf, size_t size) {
    if (f.data == nullptr) {
        diagnose("%s: attribute %d is not supported by the CPU harness", api, attr);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (buf == nullptr || size != f.size) {
        diagnose("%s: attribute %d takes %zu bytes, given %zu", api, attr, f.size, size);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    memcpy(f.data, buf, size);
    return CUBLAS_STATUS_SUCCESS;
}

inline cublasStatus_t get_attribute(const char* api, int attr, AttributeField f, void* buf, size_t size,
                                    size_t* written) {
    if (f.data == nullptr) {
        diagnose("%s: attribute %d is not supported by the CPU harness", api, attr);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (size == 0 && written != nullptr) {  // asks how many bytes it needs
        *written = f.size;
        return CUBLAS_STATUS_SUCCESS;
    }
    if (buf == nullptr || size != f.size) { return CUBLAS_STATUS_INVALID_VALUE; }
    memcpy(buf, f.data, size);
    if (written != nullptr) { *written = f.size; }
    return CUBLAS_STATUS_SUCCESS;
}

// ----------------------------------------------------------------------------
// epilogues

// The steps an epilogue performs, in order.
struct EpilogueSteps {
    bool add_bias = false;     // x += bias[i]
    bool store_aux = false;    // aux(i, j) = x (the activation's input)
    bool gelu = false;         // x = GELU(x)
    bool relu = false;         // x = max(x, 0)
    bool dgelu = false;        // x *= GELU'(aux(i, j))
    bool bgrad_d = false;      // bias[i] = sum_j D(i, j)
    bool bgrad_a = false;      // bias[i] = sum_l op(A)(i, l)
    bool bgrad_b = false;      // bias[j] = sum_l op(B)(l, j)
};

inline bool epilogue_steps(uint32_t epilogue, EpilogueSteps* s) {
    *s = EpilogueSteps{};
    switch (epilogue) {
    case CUBLASLT_EPILOGUE_DEFAULT: return true;
    case CUBLASLT_EPILOGUE_RELU: s->relu = true; return true;
    case CUBLASLT_EPILOGUE_BIAS: s->add_bias = true; return true;
    case CUBLASLT_EPILOGUE_RELU_BIAS: s->add_bias = s->relu = true; return true;
    case CUBLASLT_EPILOGUE_GELU: s->gelu = true; return true;
    case CUBLASLT_EPILOGUE_GELU_AUX: s->gelu = s->store_aux = true; return true;
    case CUBLASLT_EPILOGUE_GELU_BIAS: s->add_bias = s->gelu = true; return true;
    case CUBLASLT_EPILOGUE_GELU_AUX_BIAS: s->add_bias = s->gelu = s->store_aux = true; return true;
    case CUBLASLT_EPILOGUE_DGELU: s->dgelu = true; return true;
    case CUBLASLT_EPILOGUE_DGELU_BGRAD: s->dgelu = s->bgrad_d = true; return true;
    case CUBLASLT_EPILOGUE_BGRADA: s->bgrad_a = true; return true;
    case CUBLASLT_EPILOGUE_BGRADB: s->bgrad_b = true; return true;
    }
    return false;  // the ReLU bit-mask epilogues
}

// GELU with the tanh approximation, as cuBLASLt's epilogue computes it.
inline float gelu_tanh(float x) {
    const float c = 0.7978845608028654f;  // sqrt(2/pi)
    return 0.5f * x * (1.0f + tanhf(c * (x + 0.044715f * x * x * x)));
}

inline float gelu_tanh_grad(float x) {
    const float c = 0.7978845608028654f;
    const float u = c * (x + 0.044715f * x * x * x);
    const float t = tanhf(u);
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * c * (1.0f + 3.0f * 0.044715f * x * x);
}

// ----------------------------------------------------------------------------
// checking a matmul's descriptors

// What the descriptors describe: D is m×n, op(A) m×k, op(B) k×n, `batch` times, and the types.
struct LtProblem {
    int64_t m = 0, n = 0, k = 0, batch = 1;
    bool transa = false, transb = false;
    EpilogueSteps steps;
    cudaDataType ab_type = CUDA_R_32F;    // A and B
    cudaDataType d_type = CUDA_R_32F;     // C and D
    cudaDataType bias_type = CUDA_R_32F;  // the bias vector, or the bias gradient the epilogue writes
    cudaDataType aux_type = CUDA_R_32F;   // the GELU input the epilogue stores or reads
};

typedef cublasLtMatrixLayoutOpaque_t Layout;

inline cudaDataType layout_type(const Layout& l) { return static_cast<cudaDataType>(l.type); }

inline bool layout_ok(const char* api, const char* name, const Layout& l) {
    if (l.type != CUDA_R_32F && l.type != CUDA_R_16BF) {
        diagnose("%s: matrix %s has data type %u; the CPU harness supports CUDA_R_32F and CUDA_R_16BF", api, name, l.type);
        return false;
    }
    if (l.order != CUBLASLT_ORDER_COL && l.order != CUBLASLT_ORDER_ROW) {
        diagnose("%s: matrix %s has order %d; the CPU harness supports CUBLASLT_ORDER_COL and _ROW", api, name, l.order);
        return false;
    }
    return true;
}

inline bool leading_dimension_ok(const char* api, const char* name, const Layout& l) {
    const uint64_t needed = l.order == CUBLASLT_ORDER_COL ? l.rows : l.cols;
    if (l.ld < 1 || static_cast<uint64_t>(l.ld) < needed) {
        diagnose("%s: matrix %s: ld %lld is below its %s (%llu)", api, name, static_cast<long long>(l.ld),
                 l.order == CUBLASLT_ORDER_COL ? "rows" : "columns", static_cast<unsigned long long>(needed));
        return false;
    }
    return true;
}

inline bool compute_type_ok(int32_t compute) {
    return compute == CUBLAS_COMPUTE_32F || compute == CUBLAS_COMPUTE_32F_PEDANTIC ||
           compute == CUBLAS_COMPUTE_32F_FAST_TF32 || compute == CUBLAS_COMPUTE_32F_FAST_16F ||
           compute == CUBLAS_COMPUTE_32F_FAST_16BF;
}

// The data types of a matmul, as cuBLASLt's tables allow them (gemm_types_ok): A and B alike,
// C and D alike. The bias and aux take D's type unless their attributes say otherwise
// (BIAS_DATA_TYPE, EPILOGUE_AUX_DATA_TYPE, -1 by default); a bias may also be fp32 when D is
// bf16. Fills p's types.
inline bool matmul_types_ok(const char* api, const cublasLtMatmulDescOpaque_t& desc, const Layout& a, const Layout& b,
                            const Layout& c, const Layout& d, LtProblem* p) {
    if (a.type != b.type || c.type != d.type || !gemm_types_ok(layout_type(a), layout_type(d), desc.compute_type)) {
        diagnose("%s: types A %u, B %u, C %u, D %u with compute type %d: the CPU harness supports fp32 matrices with a "
                 "32F compute type, or bf16 A and B (CUDA_R_16BF) with C and D both bf16 or both fp32 and compute type "
                 "CUBLAS_COMPUTE_32F or _PEDANTIC", api, a.type, b.type, c.type, d.type, desc.compute_type);
        return false;
    }
    p->ab_type = layout_type(a);
    p->d_type = layout_type(d);
    p->bias_type = desc.bias_data_type == -1 ? p->d_type : static_cast<cudaDataType>(desc.bias_data_type);
    p->aux_type = desc.aux_data_type == -1 ? p->d_type : static_cast<cudaDataType>(desc.aux_data_type);
    if ((p->bias_type != p->d_type && p->bias_type != CUDA_R_32F) || p->aux_type != p->d_type) {
        diagnose("%s: bias type %d, aux type %d with D of type %d: the CPU harness supports a bias of D's type or "
                 "CUDA_R_32F, and aux of D's type", api, p->bias_type, p->aux_type, p->d_type);
        return false;
    }
    return true;
}

// What cublasLtMatmul and the heuristic both check; fills `p`.
inline cublasStatus_t check_matmul(const char* api, cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                                   cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c,
                                   cublasLtMatrixLayout_t d, LtProblem* p) {
    if (handle == nullptr) {
        diagnose("%s: NULL handle (call cublasLtCreate first)", api);
        return CUBLAS_STATUS_NOT_INITIALIZED;
    }
    if (desc == nullptr || a == nullptr || b == nullptr || c == nullptr || d == nullptr) {
        diagnose("%s: NULL descriptor", api);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (!compute_type_ok(desc->compute_type) || desc->scale_type != CUDA_R_32F || desc->transc != CUBLAS_OP_N ||
        (desc->pointer_mode != CUBLASLT_POINTER_MODE_HOST && desc->pointer_mode != CUBLASLT_POINTER_MODE_DEVICE)) {
        diagnose("%s: the CPU harness supports a 32F compute and scale type, TRANSC = N, and host or device pointer mode",
                 api);
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    if (!epilogue_steps(desc->epilogue, &p->steps)) {
        diagnose("%s: epilogue %u is not supported by the CPU harness", api, desc->epilogue);
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    if (!layout_ok(api, "A", *a) || !layout_ok(api, "B", *b) || !layout_ok(api, "C", *c) || !layout_ok(api, "D", *d) ||
        !matmul_types_ok(api, *desc, *a, *b, *c, *d, p)) {
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    if (!leading_dimension_ok(api, "A", *a) || !leading_dimension_ok(api, "B", *b) ||
        !leading_dimension_ok(api, "C", *c) || !leading_dimension_ok(api, "D", *d)) {
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    p->transa = desc->transa != CUBLAS_OP_N;
    p->transb = desc->transb != CUBLAS_OP_N;
    p->m = static_cast<int64_t>(d->rows);
    p->n = static_cast<int64_t>(d->cols);
    p->k = static_cast<int64_t>(p->transa ? a->rows : a->cols);
    const int64_t a_rows = static_cast<int64_t>(p->transa ? a->cols : a->rows);
    const int64_t b_rows = static_cast<int64_t>(p->transb ? b->cols : b->rows);
    const int64_t b_cols = static_cast<int64_t>(p->transb ? b->rows : b->cols);
    if (a_rows != p->m || b_rows != p->k || b_cols != p->n || static_cast<int64_t>(c->rows) != p->m ||
        static_cast<int64_t>(c->cols) != p->n) {
        diagnose("%s: shapes do not fit: D %lldx%lld, C %llux%llu, op(A) %lldx%lld, op(B) %lldx%lld", api,
                 static_cast<long long>(p->m), static_cast<long long>(p->n), static_cast<unsigned long long>(c->rows),
                 static_cast<unsigned long long>(c->cols), static_cast<long long>(a_rows), static_cast<long long>(p->k),
                 static_cast<long long>(b_rows), static_cast<long long>(b_cols));
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    p->batch = d->batch_count;
    if (p->batch < 1 || a->batch_count != p->batch || b->batch_count != p->batch || c->batch_count != p->batch) {
        diagnose("%s: batch counts differ (A %d, B %d, C %d, D %d)", api, a->batch_count, b->batch_count,
                 c->batch_count, d->batch_count);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if ((p->steps.store_aux || p->steps.dgelu) && desc->aux_ld < p->m) {
        diagnose("%s: the epilogue needs EPILOGUE_AUX_LD >= rows of D (%lld), it is %lld", api,
                 static_cast<long long>(p->m), static_cast<long long>(desc->aux_ld));
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    return CUBLAS_STATUS_SUCCESS;
}

// ----------------------------------------------------------------------------
// running a matmul

// Element (i, j) of matrix `batch` under a layout.
inline int64_t layout_offset(const Layout& l, int64_t batch, int64_t i, int64_t j) {
    const int64_t within = l.order == CUBLASLT_ORDER_COL ? i + j * l.ld : i * l.ld + j;
    return batch * l.batch_stride + within;
}

// Element (i, j) of op(X) of matrix `batch`, as a float.
inline float op_element(const void* base, const Layout& l, int64_t batch, bool transpose, int64_t i, int64_t j) {
    return load_element(base, layout_type(l), transpose ? layout_offset(l, batch, j, i) : layout_offset(l, batch, i, j));
}

// op(X) of matrix `batch` as a view for the product.
template <typename Element>
StridedMatrix<Element> layout_view(const Element* base, const Layout& l, int64_t batch, bool transpose) {
    StridedMatrix<Element> v = l.order == CUBLASLT_ORDER_COL ? StridedMatrix<Element>{base, 1, l.ld}
                                                             : StridedMatrix<Element>{base, l.ld, 1};
    v.data = base + batch * l.batch_stride;
    if (transpose) { std::swap(v.row_stride, v.col_stride); }
    return v;
}

inline size_t layout_span_bytes(const Layout& l) {
    const int64_t outer = static_cast<int64_t>(l.order == CUBLASLT_ORDER_COL ? l.cols : l.rows);
    const int64_t inner = static_cast<int64_t>(l.order == CUBLASLT_ORDER_COL ? l.rows : l.cols);
    return matrix_span_bytes(inner, outer, l.ld, element_bytes(layout_type(l)));
}

// Matrix `batch` of a layout.
inline const void* layout_batch(const void* base, const Layout& l, int64_t batch) {
    return element_at(base, layout_type(l), batch * l.batch_stride);
}

// The bias (or bias gradient) vector of batch b, and the aux matrix of batch b.
inline const void* lt_bias(const LtProblem& p, const cublasLtMatmulDescOpaque_t& desc, int64_t b) {
    return element_at(desc.bias, p.bias_type, b * desc.bias_batch_stride);
}
inline void* lt_aux(const LtProblem& p, const cublasLtMatmulDescOpaque_t& desc, int64_t b) {
    return element_at(desc.aux, p.aux_type, b * desc.aux_batch_stride);
}

// Every matrix and vector the matmul touches must be memory a GPU could use.
inline bool lt_operands_ok(const LtProblem& p, const cublasLtMatmulDescOpaque_t& desc, const void* A, const Layout& la,
                           const void* B, const Layout& lb, const void* C, const Layout& lc, bool reads_c,
                           const void* D, const Layout& ld) {
    const char* api = "cublasLtMatmul";
    const bool uses_bias = p.steps.add_bias || p.steps.bgrad_a || p.steps.bgrad_b || p.steps.bgrad_d;
    const int64_t bias_length = p.steps.bgrad_b ? p.n : p.m;
    for (int64_t b = 0; b < p.batch; b++) {
        const bool ok =
            gpu_operand_ok(api, "A", layout_batch(A, la, b), layout_span_bytes(la)) &&
            gpu_operand_ok(api, "B", layout_batch(B, lb, b), layout_span_bytes(lb)) &&
            (!reads_c || gpu_operand_ok(api, "C", layout_batch(C, lc, b), layout_span_bytes(lc))) &&
            gpu_operand_ok(api, "D", layout_batch(D, ld, b), layout_span_bytes(ld)) &&
            (!uses_bias ||
             gpu_operand_ok(api, "bias", lt_bias(p, desc, b), static_cast<size_t>(bias_length) * element_bytes(p.bias_type))) &&
            (!(p.steps.store_aux || p.steps.dgelu) ||
             gpu_operand_ok(api, "aux", lt_aux(p, desc, b), matrix_span_bytes(p.m, p.n, desc.aux_ld, element_bytes(p.aux_type))));
        if (!ok) { return false; }
    }
    return true;
}

// The bias-gradient epilogues: sums in fp32 into the bias vector (rounded once if it is bf16),
// after D is complete; DGELU_BGRAD sums D as stored.
inline void lt_bias_gradients(const LtProblem& p, const cublasLtMatmulDescOpaque_t& desc, const void* A,
                              const Layout& la, const void* B, const Layout& lb, const void* D, const Layout& ld) {
    if (!p.steps.bgrad_d && !p.steps.bgrad_a && !p.steps.bgrad_b) { return; }
    for (int64_t b = 0; b < p.batch; b++) {
        void* bias = const_cast<void*>(lt_bias(p, desc, b));  // an output here: BIAS_POINTER is the gradient
        if (p.steps.bgrad_d || p.steps.bgrad_a) {
            for (int64_t i = 0; i < p.m; i++) {
                float sum = 0.0f;
                if (p.steps.bgrad_d) {
                    for (int64_t j = 0; j < p.n; j++) { sum += load_element(D, p.d_type, layout_offset(ld, b, i, j)); }
                } else {
                    for (int64_t l = 0; l < p.k; l++) { sum += op_element(A, la, b, p.transa, i, l); }
                }
                store_element(bias, p.bias_type, i, sum);
            }
        }
        if (p.steps.bgrad_b) {
            for (int64_t j = 0; j < p.n; j++) {
                float sum = 0.0f;
                for (int64_t l = 0; l < p.k; l++) { sum += op_element(B, lb, b, p.transb, l, j); }
                store_element(bias, p.bias_type, j, sum);
            }
        }
    }
}

// The product with views of Element (float or __nv_bfloat16), each column handed to finish_column.
template <typename Element, typename ColumnDone>
void lt_product(const LtProblem& p, const void* A, const Layout& la, const void* B, const Layout& lb, bool tf32,
                ColumnDone finish_column) {
    auto operands = [&](int64_t batch) {
        return std::make_pair(layout_view(static_cast<const Element*>(A), la, batch, p.transa),
                              layout_view(static_cast<const Element*>(B), lb, batch, p.transb));
    };
    run_gemm(GemmShape{p.m, p.n, p.k, p.batch}, operands, finish_column, tf32);
}

#ifdef CUDA_HARNESS_SANITIZE
// A matrix of a layout: initcheck of what it reads (write: marks it written instead).
inline void sanitize_layout(const char* file, int line, const char* what, const void* base, const Layout& l,
                            int64_t batches, bool write) {
    const bool col = l.order == CUBLASLT_ORDER_COL;
    const int64_t inner = static_cast<int64_t>(col ? l.rows : l.cols), outer = static_cast<int64_t>(col ? l.cols : l.rows);
    const size_t element = element_bytes(layout_type(l));
    for (int64_t b = 0; b < batches; b++) {
        if (write) {
            san::mark_matrix(layout_batch(base, l, b), inner, outer, l.ld, element);
        } else {
            san::check_matrix("cublasLtMatmul", file, line, what, layout_batch(base, l, b), inner, outer, l.ld, element);
        }
    }
}

// What the sanitizer sees of a matmul: initcheck of its inputs (the epilogue's bias and aux
// included), its outputs marked written, its FLOPs and bytes counted (each in its element size).
inline void sanitize_matmul(const char* file, int line, const LtProblem& p, const cublasLtMatmulDescOpaque_t& desc,
                            const void* A, const Layout& la, const void* B, const Layout& lb, const void* C,
                            const Layout& lc, bool reads_c, const void* D, const Layout& ld) {
    const double mn = static_cast<double>(p.m) * p.n;
    const double ab = static_cast<double>(element_bytes(p.ab_type)), d = static_cast<double>(element_bytes(p.d_type));
    const double bias = static_cast<double>(element_bytes(p.bias_type)), aux = static_cast<double>(element_bytes(p.aux_type));
    double in = (static_cast<double>(p.m) + p.n) * p.k * p.batch * ab, out = mn * p.batch * d;
    if (p.k > 0) {
        sanitize_layout(file, line, "matrix A", A, la, p.batch, false);
        sanitize_layout(file, line, "matrix B", B, lb, p.batch, false);
    }
    if (reads_c) {
        sanitize_layout(file, line, "matrix C", C, lc, p.batch, false);
        in += mn * p.batch * d;
    }
    for (int64_t b = 0; b < p.batch; b++) {
        if (p.steps.add_bias) {
            san::check_read("cublasLtMatmul", file, line, "the bias", lt_bias(p, desc, b),
                            static_cast<size_t>(p.m) * element_bytes(p.bias_type));
            in += static_cast<double>(p.m) * bias;
        }
        if (p.steps.dgelu) {
            san::check_matrix("cublasLtMatmul", file, line, "the epilogue's aux matrix", lt_aux(p, desc, b), p.m, p.n,
                              desc.aux_ld, element_bytes(p.aux_type));
            in += mn * aux;
        }
        if (p.steps.store_aux) {
            san::mark_matrix(lt_aux(p, desc, b), p.m, p.n, desc.aux_ld, element_bytes(p.aux_type));
            out += mn * aux;
        }
        if (p.steps.bgrad_a || p.steps.bgrad_b || p.steps.bgrad_d) {
            const int64_t length = p.steps.bgrad_b ? p.n : p.m;
            san::mark_written(lt_bias(p, desc, b), static_cast<size_t>(length) * element_bytes(p.bias_type));
            out += static_cast<double>(length) * bias;
        }
    }
    sanitize_layout(file, line, "matrix D", D, ld, p.batch, true);
    san::gemm("cublasLtMatmul", 2.0 * mn * p.batch * p.k, static_cast<uint64_t>(in), static_cast<uint64_t>(out));
}
#endif

}  // namespace cuda_harness

// ----------------------------------------------------------------------------
// handles, descriptors, preferences

inline cublasStatus_t cublasLtCreate(cublasLtHandle_t* handle) {
    if (handle == nullptr) { return CUBLAS_STATUS_INVALID_VALUE; }
    *handle = new cublasLtContext;
    return CUBLAS_STATUS_SUCCESS;
}

inline cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle) {
    if (handle == nullptr) { return CUBLAS_STATUS_NOT_INITIALIZED; }
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}

inline size_t cublasLtGetVersion() { return 130000; }
inline const char* cublasLtGetStatusName(cublasStatus_t status) { return cublasGetStatusName(status); }
inline const char* cublasLtGetStatusString(cublasStatus_t status) { return cublasGetStatusString(status); }

inline cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* desc, cublasComputeType_t computeType,
                                               cudaDataType_t scaleType) {
    if (desc == nullptr) { return CUBLAS_STATUS_INVALID_VALUE; }
    *desc = new cublasLtMatmulDescOpaque_t;
    (*desc)->compute_type = computeType;
    (*desc)->scale_type = scaleType;
    return CUBLAS_STATUS_SUCCESS;
}

inline cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc) {
    delete desc;
    return CUBLAS_STATUS_SUCCESS;
}

inline cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr,
                                                     const void* buf, size_t sizeInBytes) {
    if (desc == nullptr) { return CUBLAS_STATUS_INVALID_VALUE; }
    return cuda_harness::set_attribute("cublasLtMatmulDescSetAttribute", attr, cuda_harness::desc_field(*desc, attr),
                                       buf, sizeInBytes);
}

inline cublasStatus_t cublasLtMatmulDescGetAttribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr,
                                                     void* buf, size_t sizeInBytes, size_t* sizeWritten) {
    if (desc == nullptr) { return CUBLAS_STATUS_INVALID_VALUE; }
    return cuda_harness::get_attribute("cublasLtMatmulDescGetAttribute", attr, cuda_harness::desc_field(*desc, attr),
                                       buf, sizeInBytes, sizeWritten);
}

inline cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* layout, cudaDataType type, uint64_t rows,
                                                 uint64_t cols, int64_t ld) {
    if (layout == nullptr) { return CUBLAS_STATUS_INVALID_VALUE; }
    *layout = new cublasLtMatrixLayoutOpaque_t;
    (*layout)->type = type;
    (*layout)->rows = rows;
    (*layout)->cols = cols;
    (*layout)->ld = ld;
    return CUBLAS_STATUS_SUCCESS;
}

inline cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout) {
    delete layout;
    return CUBLAS_STATUS_SUCCESS;
}

inline cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t layout,
                                                       cublasLtMatrixLayoutAttribute_t attr, const void* buf,
                                                       size_t sizeInBytes) {
    if (layout == nullptr) { return CUBLAS_STATUS_INVALID_VALUE; }
    return cuda_harness::set_attribute("cublasLtMatrixLayoutSetAttribute", attr,
                                       cuda_harness::layout_field(*layout, attr), buf, sizeInBytes);
}

inline cublasStatus_t cublasLtMatrixLayoutGetAttribute(cublasLtMatrixLayout_t layout,
                                                       cublasLtMatrixLayoutAttribute_t attr, void* buf,
                                                       size_t sizeInBytes, size_t* sizeWritten) {
    if (layout == nullptr) { return CUBLAS_STATUS_INVALID_VALUE; }
    return cuda_harness::get_attribute("cublasLtMatrixLayoutGetAttribute", attr,
                                       cuda_harness::layout_field(*layout, attr), buf, sizeInBytes, sizeWritten);
}

inline cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* pref) {
    if (pref == nullptr) { return CUBLAS_STATUS_INVALID_VALUE; }
    *pref = new cublasLtMatmulPreferenceOpaque_t;
    return CUBLAS_STATUS_SUCCESS;
}

inline cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
    delete pref;
    return CUBLAS_STATUS_SUCCESS;
}

inline cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                           cublasLtMatmulPreferenceAttributes_t attr, const void* buf,
                                                           size_t sizeInBytes) {
    if (pref == nullptr) { return CUBLAS_STATUS_INVALID_VALUE; }
    return cuda_harness::set_attribute("cublasLtMatmulPreferenceSetAttribute", attr,
                                       cuda_harness::preference_field(*pref, attr), buf, sizeInBytes);
}

inline cublasStatus_t cublasLtMatmulPreferenceGetAttribute(cublasLtMatmulPreference_t pref,
                                                           cublasLtMatmulPreferenceAttributes_t attr, void* buf,
                                                           size_t sizeInBytes, size_t* sizeWritten) {
    if (pref == nullptr) { return CUBLAS_STATUS_INVALID_VALUE; }
    return cuda_harness::get_attribute("cublasLtMatmulPreferenceGetAttribute", attr,
                                       cuda_harness::preference_field(*pref, attr), buf, sizeInBytes, sizeWritten);
}

// ----------------------------------------------------------------------------
// the heuristic (one algorithm, no workspace) and the matmul

inline cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t operationDesc,
                                                     cublasLtMatrixLayout_t Adesc, cublasLtMatrixLayout_t Bdesc,
                                                     cublasLtMatrixLayout_t Cdesc, cublasLtMatrixLayout_t Ddesc,
                                                     cublasLtMatmulPreference_t preference, int requestedAlgoCount,
                                                     cublasLtMatmulHeuristicResult_t heuristicResultsArray[],
                                                     int* returnAlgoCount) {
    const char* api = "cublasLtMatmulAlgoGetHeuristic";
    if (preference == nullptr || requestedAlgoCount < 1 || heuristicResultsArray == nullptr || returnAlgoCount == nullptr) {
        cuda_harness::diagnose("%s: NULL preference, result array or count, or requestedAlgoCount < 1", api);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    *returnAlgoCount = 0;
    cuda_harness::LtProblem problem;
    cublasStatus_t status = cuda_harness::check_matmul(api, handle, operationDesc, Adesc, Bdesc, Cdesc, Ddesc, &problem);
    if (status != CUBLAS_STATUS_SUCCESS) { return status; }
    cublasLtMatmulHeuristicResult_t& result = heuristicResultsArray[0];
    memset(&result, 0, sizeof(result));
    result.algo.data[0] = 1;  // the harness's one algorithm
    result.workspaceSize = 0;
    result.state = CUBLAS_STATUS_SUCCESS;
    result.wavesCount = 1.0f;
    *returnAlgoCount = 1;
    return CUBLAS_STATUS_SUCCESS;
}

inline cublasStatus_t cublasLtMatmul(cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t computeDesc,
                                     const void* alpha, const void* A, cublasLtMatrixLayout_t Adesc, const void* B,
                                     cublasLtMatrixLayout_t Bdesc, const void* beta, const void* C,
                                     cublasLtMatrixLayout_t Cdesc, void* D, cublasLtMatrixLayout_t Ddesc,
                                     const cublasLtMatmulAlgo_t* /*algo*/, void* /*workspace*/,
                                     size_t /*workspaceSizeInBytes*/, cudaStream_t stream,
                                     const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    (void)file;
    (void)line;
    using namespace cuda_harness;
    const char* api = "cublasLtMatmul";
    LtProblem p;
    cublasStatus_t status = check_matmul(api, lightHandle, computeDesc, Adesc, Bdesc, Cdesc, Ddesc, &p);
    if (status != CUBLAS_STATUS_SUCCESS) { return status; }
    if (alpha == nullptr || beta == nullptr || !stream_ok(stream, api)) {
        diagnose("%s: NULL alpha or beta, or a bad stream", api);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    stream_catch_up(stream);
    const cublasLtMatmulDescOpaque_t& desc = *computeDesc;
    const float a = *static_cast<const float*>(alpha);
    const float b = *static_cast<const float*>(beta);
    const bool needs_bias = p.steps.add_bias || p.steps.bgrad_a || p.steps.bgrad_b || p.steps.bgrad_d;
    if ((needs_bias && desc.bias == nullptr) || ((p.steps.store_aux || p.steps.dgelu) && desc.aux == nullptr)) {
        diagnose("%s: the epilogue needs BIAS_POINTER or EPILOGUE_AUX_POINTER, which is NULL", api);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (!lt_operands_ok(p, desc, A, *Adesc, B, *Bdesc, C, *Cdesc, b != 0.0f, D, *Ddesc)) {
        return CUBLAS_STATUS_EXECUTION_FAILED;
    }
    CUDA_HARNESS_SAN(sanitize_matmul(file, line, p, desc, A, *Adesc, B, *Bdesc, C, *Cdesc, b != 0.0f, D, *Ddesc);)
    // alpha, beta C, then the epilogue's steps in order, element by element, in fp32; what goes
    // into a bf16 matrix or vector (D, aux) is rounded once, there
    auto finish_column = [&](int64_t batch, int64_t j, const float* sums) {
        const void* bias = p.steps.add_bias ? lt_bias(p, desc, batch) : nullptr;
        void* aux = p.steps.store_aux || p.steps.dgelu ? lt_aux(p, desc, batch) : nullptr;
        for (int64_t i = 0; i < p.m; i++) {
            const int64_t aux_at = i + j * desc.aux_ld;
            float x = p.k > 0 ? a * sums[i] : 0.0f;
            if (b != 0.0f) { x += b * load_element(C, p.d_type, layout_offset(*Cdesc, batch, i, j)); }
            if (p.steps.add_bias) { x += load_element(bias, p.bias_type, i); }
            if (p.steps.store_aux) { store_element(aux, p.aux_type, aux_at, x); }
            if (p.steps.gelu) { x = gelu_tanh(x); }
            if (p.steps.relu) { x = x > 0.0f ? x : 0.0f; }
            if (p.steps.dgelu) { x *= gelu_tanh_grad(load_element(aux, p.aux_type, aux_at)); }
            store_element(D, p.d_type, layout_offset(*Ddesc, batch, i, j), x);
        }
    };
    const bool tf32 = desc.compute_type == CUBLAS_COMPUTE_32F_FAST_TF32;
    ProfileScope timed([&p, api] { return gemm_profile_name(api, GemmShape{p.m, p.n, p.k, p.batch}); });
    if (p.k == 0) {
        const float none = 0.0f;
        for (int64_t batch = 0; batch < p.batch; batch++) {
            for (int64_t j = 0; j < p.n; j++) { finish_column(batch, j, &none); }
        }
    } else if (p.ab_type == CUDA_R_16BF) {
        lt_product<__nv_bfloat16>(p, A, *Adesc, B, *Bdesc, tf32, finish_column);
    } else {
        lt_product<float>(p, A, *Adesc, B, *Bdesc, tf32, finish_column);
    }
    lt_bias_gradients(p, desc, A, *Adesc, B, *Bdesc, D, *Ddesc);
    return CUBLAS_STATUS_SUCCESS;
}

CUDA_HARNESS_UNTRACED_END
