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
// With -DCUDA_HARNESS_OPENBLAS (and -lopenblas) the products come from cblas_sgemm instead:
// much faster for large matrices, in OpenBLAS's summation order.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

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
// matrix views

// A matrix as the product reads it: element (r, c) is at data[r * row_stride + c * col_stride].
struct MatrixView {
    const float* data = nullptr;
    int64_t row_stride = 1;
    int64_t col_stride = 1;

    float at(int64_t r, int64_t c) const { return data[r * row_stride + c * col_stride]; }
};

// op(X) for a column-major X with leading dimension ld: X itself, or its transpose.
inline MatrixView column_major_op(const float* data, int64_t ld, bool transpose) {
    return transpose ? MatrixView{data, ld, 1} : MatrixView{data, 1, ld};
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

// op(A_b) and op(B_b) of every batch converted to TF32, as column-major copies (m×k, k×n).
// Converting once up front costs m·k + k·n per batch, against m·n·k multiply-adds.
struct Tf32Operands {
    GemmShape s;
    std::vector<float> a, b;

    template <typename Operands>
    Tf32Operands(GemmShape shape, Operands operands)
        : s(shape), a(static_cast<size_t>(shape.batch * shape.m * shape.k)),
          b(static_cast<size_t>(shape.batch * shape.k * shape.n)) {
        worker_pool().run(static_cast<size_t>(s.batch), [&](size_t task) {
            const int64_t batch = static_cast<int64_t>(task);
            const auto views = operands(batch);
            float* ab = a.data() + batch * s.m * s.k;
            float* bb = b.data() + batch * s.k * s.n;
            for (int64_t l = 0; l < s.k; l++) {
                for (int64_t i = 0; i < s.m; i++) { ab[i + l * s.m] = to_tf32(views.first.at(i, l)); }
            }
            for (int64_t j = 0; j < s.n; j++) {
                for (int64_t l = 0; l < s.k; l++) { bb[l + j * s.k] = to_tf32(views.second.at(l, j)); }
            }
        });
    }

    std::pair<MatrixView, MatrixView> operator()(int64_t batch) const {
        return std::make_pair(MatrixView{a.data() + batch * s.m * s.k, 1, s.m},
                              MatrixView{b.data() + batch * s.k * s.n, 1, s.k});
    }
};

// The batched product, in fp32 or, with tf32, on operands converted to TF32.
template <typename Operands, typename ColumnDone>
void run_gemm(GemmShape s, Operands operands, ColumnDone column_done, bool tf32 = false) {
    if (s.m <= 0 || s.n <= 0 || s.batch <= 0) { return; }
    if (tf32) {
        const Tf32Operands rounded(s, operands);
        run_gemm_fp32(s, rounded, column_done);
    } else {
        run_gemm_fp32(s, operands, column_done);
    }
}

}  // namespace cuda_harness

CUDA_HARNESS_UNTRACED_END
