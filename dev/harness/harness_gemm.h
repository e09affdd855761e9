// harness_gemm.h: the matrix product behind the harness's cuBLAS and cuBLASLt.
//
// run_gemm computes, for each batch b and each column j, the m sums
//     sums[i] = sum over l = 0..k-1 of op(A_b)(i, l) * op(B_b)(l, j)
// in float, l in increasing order (so the result does not depend on the layout or on how
// many workers there are), and hands them to a callback that applies alpha, beta, C and any
// epilogue. Work is split over the worker pool by (batch, block of columns).
//
// In TF32 mode (what a GPU's tensor cores do under CUBLAS_TF32_TENSOR_OP_MATH or
// CUBLAS_COMPUTE_32F_FAST_TF32) every element of A and B is first converted to TF32
// (to_tf32); the products and their sums stay fp32.
//
// bf16 operands (CUDA_R_16BF) are widened to fp32, exactly, and then multiplied and summed
// like fp32 ones; the callback rounds what it stores in a bf16 output (store_element), once.
//
// With -DCUDA_HARNESS_OPENBLAS (and -lopenblas) the products come from cblas_sgemm instead:
// much faster for large matrices, in OpenBLAS's summation order.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "harness_bf16.h"
#include "harness_scheduler.h"

#ifdef CUDA_HARNESS_OPENBLAS
#include <cblas.h>
#endif

CUDA_HARNESS_UNTRACED_BEGIN

namespace cuda_harness {

// ----------------------------------------------------------------------------
// TF32

// x converted to TF32: sign, the 8-bit exponent and the top 10 of the 23 fraction bits,
// rounded to nearest with ties away from zero, as the PTX conversion cvt.rna.tf32.f32 does;
// stored as a float whose 13 low fraction bits are zero. Adding half of the 11th fraction
// bit's weight (bit 12) to the magnitude bits and clearing the 13 low bits rounds the
// magnitude half up, which on a sign-magnitude number is ties away from zero; a carry moves
// into the exponent as it should (the largest subnormals round up to the smallest normal,
// the largest finite values overflow to infinity). Subnormals are rounded on the same grid,
// not flushed. Infinities and NaNs pass through unchanged. Tensor cores may instead
// truncate (the ABFT tolerance, ABFT_TF32_UNIT_ROUNDOFF = 2^-10, covers both).
inline float to_tf32(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof(bits));
    if ((bits & 0x7f800000u) == 0x7f800000u) { return x; }
    bits = (bits + 0x1000u) & 0xffffe000u;
    memcpy(&x, &bits, sizeof(x));
    return x;
}

// ----------------------------------------------------------------------------
// elements of the data types the GEMMs take: CUDA_R_32F and CUDA_R_16BF

inline size_t element_bytes(cudaDataType type) { return type == CUDA_R_16BF ? sizeof(__nv_bfloat16) : sizeof(float); }

// The address of element `index` of an array of `type`.
inline const void* element_at(const void* base, cudaDataType type, int64_t index) {
    return static_cast<const char*>(base) + index * static_cast<int64_t>(element_bytes(type));
}
inline void* element_at(void* base, cudaDataType type, int64_t index) {
    return static_cast<char*>(base) + index * static_cast<int64_t>(element_bytes(type));
}

inline float widen(float x) { return x; }
inline float widen(__nv_bfloat16 x) { return bf16_to_float(__bfloat16_as_ushort(x)); }  // exact

// Element `index` of an array of `type`, as a float.
inline float load_element(const void* base, cudaDataType type, int64_t index) {
    if (type == CUDA_R_16BF) { return widen(static_cast<const __nv_bfloat16*>(base)[index]); }
    return static_cast<const float*>(base)[index];
}

// Stores x as element `index` of an array of `type`: a bf16 output is rounded here, to
// nearest even, the one rounding of a value computed in fp32.
inline void store_element(void* base, cudaDataType type, int64_t index, float x) {
    if (type == CUDA_R_16BF) {
        static_cast<__nv_bfloat16*>(base)[index] = __ushort_as_bfloat16(float_to_bf16_rn(x));
    } else {
        static_cast<float*>(base)[index] = x;
    }
}

// ----------------------------------------------------------------------------
// matrix views

// A matrix as the product reads it: element (r, c) is data[r * row_stride + c * col_stride],
// as a float.
template <typename Element>
struct StridedMatrix {
    const Element* data = nullptr;
    int64_t row_stride = 1;
    int64_t col_stride = 1;

    float at(int64_t r, int64_t c) const { return widen(data[r * row_stride + c * col_stride]); }
};
using MatrixView = StridedMatrix<float>;  // what the product itself multiplies

// op(X) for a column-major X with leading dimension ld: X itself, or its transpose.
template <typename Element>
StridedMatrix<Element> column_major_op(const Element* data, int64_t ld, bool transpose) {
    return transpose ? StridedMatrix<Element>{data, ld, 1} : StridedMatrix<Element>{data, 1, ld};
}

struct GemmShape {
    int64_t m = 0, n = 0, k = 0, batch = 1;
};

// ----------------------------------------------------------------------------
// one column of a product: y = A x, with A m×k and x of k elements

inline void column_product(int64_t m, int64_t k, MatrixView a, const float* x, float* y) {
    if (a.row_stride == 1) {
        // columns of A are contiguous: y += x[l] * A(:, l), which vectorizes
        std::fill(y, y + m, 0.0f);
        for (int64_t l = 0; l < k; l++) {
            const float* column = a.data + l * a.col_stride;
            const float xl = x[l];
            for (int64_t i = 0; i < m; i++) { y[i] += column[i] * xl; }
        }
    } else {
        // rows of A are contiguous (or neither is): y[i] = A(i, :) · x, same order of sums
        for (int64_t i = 0; i < m; i++) {
            float sum = 0.0f;
            for (int64_t l = 0; l < k; l++) { sum += a.at(i, l) * x[l]; }
            y[i] = sum;
        }
    }
}

// ----------------------------------------------------------------------------
// the batched product

#ifdef CUDA_HARNESS_OPENBLAS
// The product of each batch from cblas_sgemm into a scratch matrix, then handed over by
// column. False when a view is not a plain column-major (transposed or not) matrix.
template <typename Operands, typename ColumnDone>
bool run_gemm_openblas(GemmShape s, Operands operands, ColumnDone column_done) {
    auto as_blas = [](MatrixView v, CBLAS_TRANSPOSE* t, int64_t* ld) {
        if (v.row_stride == 1) { *t = CblasNoTrans; *ld = v.col_stride; return true; }
        if (v.col_stride == 1) { *t = CblasTrans; *ld = v.row_stride; return true; }
        return false;
    };
    std::vector<float> product(static_cast<size_t>(s.m * s.n));
    for (int64_t b = 0; b < s.batch; b++) {
        const auto views = operands(b);
        CBLAS_TRANSPOSE ta, tb;
        int64_t lda, ldb;
        if (!as_blas(views.first, &ta, &lda) || !as_blas(views.second, &tb, &ldb)) { return false; }
        cblas_sgemm(CblasColMajor, ta, tb, s.m, s.n, s.k, 1.0f, views.first.data, std::max<int64_t>(1, lda),
                    views.second.data, std::max<int64_t>(1, ldb), 0.0f, product.data(), s.m);
        for (int64_t j = 0; j < s.n; j++) { column_done(b, j, product.data() + j * s.m); }
    }
    return true;
}
#endif

// The batched product of fp32 operands. operands(b) returns the pair of views
// {op(A_b), op(B_b)}; column_done(b, j, sums) gets the m sums of column j of batch b.
// Different columns may be handed over concurrently.
template <typename Operands, typename ColumnDone>
void run_gemm_fp32(GemmShape s, Operands operands, ColumnDone column_done) {
#ifdef CUDA_HARNESS_OPENBLAS
    if (run_gemm_openblas(s, operands, column_done)) { return; }
#endif
    const int64_t workers = worker_pool().size();
    // about four tasks per worker, so that uneven tasks still spread evenly
    const int64_t chunks_per_batch = std::min<int64_t>(s.n, std::max<int64_t>(1, 4 * workers / s.batch));
    const int64_t chunk = (s.n + chunks_per_batch - 1) / chunks_per_batch;
    worker_pool().run(static_cast<size_t>(s.batch * chunks_per_batch), [&](size_t task) {
        const int64_t b = static_cast<int64_t>(task) / chunks_per_batch;
        const int64_t first = static_cast<int64_t>(task) % chunks_per_batch * chunk;
        const auto views = operands(b);
        std::vector<float> x(static_cast<size_t>(s.k));
        std::vector<float> sums(static_cast<size_t>(s.m));
        for (int64_t j = first; j < std::min(s.n, first + chunk); j++) {
            for (int64_t l = 0; l < s.k; l++) { x[l] = views.second.at(l, j); }
            column_product(s.m, s.k, views.first, x.data(), sums.data());
            column_done(b, j, sums.data());
        }
    });
}

// op(A_b) and op(B_b) of every batch as fp32 column-major copies (m×k, k×n), each element
// passed through `convert` on the way: to_tf32 for a TF32 product, nothing for bf16 operands
// (the views widen them). Converting once up front costs m·k + k·n per batch, against m·n·k
// multiply-adds.
struct PackedOperands {
    GemmShape s;
    std::vector<float> a, b;

    template <typename Operands, typename Convert>
    PackedOperands(GemmShape shape, Operands operands, Convert convert)
        : s(shape), a(static_cast<size_t>(shape.batch * shape.m * shape.k)),
          b(static_cast<size_t>(shape.batch * shape.k * shape.n)) {
        worker_pool().run(static_cast<size_t>(s.batch), [&](size_t task) {
            const int64_t batch = static_cast<int64_t>(task);
            const auto views = operands(batch);
            float* ab = a.data() + batch * s.m * s.k;
            float* bb = b.data() + batch * s.k * s.n;
            for (int64_t l = 0; l < s.k; l++) {
                for (int64_t i = 0; i < s.m; i++) { ab[i + l * s.m] = convert(views.first.at(i, l)); }
            }
            for (int64_t j = 0; j < s.n; j++) {
                for (int64_t l = 0; l < s.k; l++) { bb[l + j * s.k] = convert(views.second.at(l, j)); }
            }
        });
    }

    std::pair<MatrixView, MatrixView> operator()(int64_t batch) const {
        return std::make_pair(MatrixView{a.data() + batch * s.m * s.k, 1, s.m},
                              MatrixView{b.data() + batch * s.k * s.n, 1, s.k});
    }
};

// The batched product, in fp32: of fp32 operands as they are or, with tf32, converted to
// TF32; of bf16 operands widened to fp32 (bf16 values are TF32 values already: 7 fraction bits).
template <typename Operands, typename ColumnDone>
void run_gemm(GemmShape s, Operands operands, ColumnDone column_done, bool tf32 = false) {
    if (s.m <= 0 || s.n <= 0 || s.batch <= 0) { return; }
    using View = decltype(operands(0).first);
    if constexpr (!std::is_same<View, MatrixView>::value) {
        run_gemm_fp32(s, PackedOperands(s, operands, [](float x) { return x; }), column_done);
    } else if (tf32) {
        run_gemm_fp32(s, PackedOperands(s, operands, to_tf32), column_done);
    } else {
        run_gemm_fp32(s, operands, column_done);
    }
}

}  // namespace cuda_harness

CUDA_HARNESS_UNTRACED_END
