// harness_gemm.h: the matrix product behind the harness's cuBLAS and cuBLASLt.
//
// run_gemm computes, for each batch b and each column j, the m sums
//     sums[i] = sum over l = 0..k-1 of op(A_b)(i, l) * op(B_b)(l, j)
// in float, l in increasing order (so the result does not depend on the layout or on how
// many workers there are), and hands them to a callback that applies alpha, beta, C and any
// epilogue. Work is split over the worker pool by (batch, block of columns); within a block the
// sums are made by a register-blocked tile kernel over packed copies of A and B ("the batched
// product" below), in the same order of l, so the blocking does not change a bit of them.
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
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
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

// A GEMM's name in the profile (CUDA_HARNESS_PROFILE=1): the API and the shape, "m×n×k x batch".
inline std::string gemm_profile_name(const char* api, GemmShape s) {
    return std::string(api) + " " + std::to_string(s.m) + "x" + std::to_string(s.n) + "x" + std::to_string(s.k) +
           (s.batch > 1 ? " x" + std::to_string(s.batch) : "");
}

// ----------------------------------------------------------------------------
// the tile kernel: an MR×NR tile of sums, held in registers while l runs
//
// The product is blocked as in any textbook BLAS (Goto and van de Geijn, "Anatomy of
// high-performance matrix multiplication", 2008). The innermost unit is a tile of MR rows by
// NR columns of sums: for each l it loads MR elements of A's column l and NR elements of B's row
// l, and adds their MR·NR products to the tile, which stays in vector registers from the first l
// to the last. So each element loaded is used NR (or MR) times, instead of once as in a
// column-at-a-time product, and the loads come from packed panels (below) that are contiguous.
//
// Blocking changes nothing numerically: every sum still starts at +0.0f and adds its products
// one l at a time, in increasing l, each product rounded to float before it is added (a multiply
// and an add, never a fused multiply-add). A tile interrupted between two blocks of l is stored
// to memory as floats and loaded again, which is exact.
//
// The tile is written with GCC's vector extensions (which clang shares): with plain float
// arrays, g++ -O2 keeps the tile on the stack. Vectors are loaded and stored with
// __builtin_memcpy, a plain (unaligned) load or store even where -fno-builtin-memcpy is given,
// as in the sanitizer build. The same template is compiled for the baseline target (SSE2 on
// x86-64) and, on x86-64, for AVX2 and for AVX-512 too, each with a tile that fits that
// register file; the fastest one this CPU runs is chosen at run time (tile_kernels).
//
// No contraction into fused multiply-adds, in any build: g++ contracts `acc + a * b` in C++
// whatever -std says (-ffp-contract=fast is its C++ default; ISO mode turns it off for C only)
// whenever the target has FMA instructions, which AVX-512F does and -march=native may add;
// clang contracts within one expression (-ffp-contract=on). Hence the two pragmas.

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif

typedef float FloatX16 __attribute__((vector_size(64)));
typedef float FloatX8 __attribute__((vector_size(32)));
typedef float FloatX4 __attribute__((vector_size(16)));

// c (a column-major MR×NR tile, leading dimension ldc) = its old values (or zeros, from_zero)
// plus the products of kc columns of an A panel and kc rows of a B panel: a holds kc groups
// of MR values (A(0..MR-1, l) for each l), b kc groups of NR values (B(l, 0..NR-1)).
// MR = VECTORS · the lanes of Vector.
template <typename Vector, int VECTORS, int NR>
[[gnu::always_inline]] inline void multiply_tile(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                                                 bool from_zero) {
#ifdef __clang__
#pragma clang fp contract(off)
#endif
    constexpr int lanes = sizeof(Vector) / sizeof(float), MR = VECTORS * lanes;
    Vector tile[NR][VECTORS];
#pragma GCC unroll 16
    for (int j = 0; j < NR; j++) {
#pragma GCC unroll 16
        for (int v = 0; v < VECTORS; v++) {
            if (from_zero) {
                tile[j][v] = Vector{};
            } else {
                __builtin_memcpy(&tile[j][v], c + j * ldc + v * lanes, sizeof(Vector));
            }
        }
    }
    for (int64_t l = 0; l < kc; l++, a += MR, b += NR) {
        Vector column[VECTORS];
#pragma GCC unroll 16
        for (int v = 0; v < VECTORS; v++) { __builtin_memcpy(&column[v], a + v * lanes, sizeof(Vector)); }
#pragma GCC unroll 16
        for (int j = 0; j < NR; j++) {
#pragma GCC unroll 16
            for (int v = 0; v < VECTORS; v++) {
                const Vector products = column[v] * b[j];
                tile[j][v] = tile[j][v] + products;
            }
        }
    }
#pragma GCC unroll 16
    for (int j = 0; j < NR; j++) {
#pragma GCC unroll 16
        for (int v = 0; v < VECTORS; v++) { __builtin_memcpy(c + j * ldc + v * lanes, &tile[j][v], sizeof(Vector)); }
    }
}

// The builds of the tile: 24 of AVX-512's 32 registers hold a 32×12 tile, 12 of AVX2's 16 a
// 16×6 one, 12 of SSE2's 16 (or of NEON's 32) an 8×6 one. Only "avx512f" and "avx2" are asked
// for, never "fma" (though AVX-512F has fused multiply-adds of its own, which the pragmas above
// keep out).
#ifdef __x86_64__
__attribute__((target("avx512f"))) inline void multiply_tile_avx512(int64_t kc, const float* a, const float* b,
                                                                    float* c, int64_t ldc, bool from_zero) {
    multiply_tile<FloatX16, 2, 12>(kc, a, b, c, ldc, from_zero);
}
__attribute__((target("avx2"))) inline void multiply_tile_avx2(int64_t kc, const float* a, const float* b, float* c,
                                                               int64_t ldc, bool from_zero) {
    multiply_tile<FloatX8, 2, 6>(kc, a, b, c, ldc, from_zero);
}
#endif
inline void multiply_tile_baseline(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool from_zero) {
    multiply_tile<FloatX4, 2, 6>(kc, a, b, c, ldc, from_zero);
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

struct TileKernel {
    const char* name;
    int64_t mr, nr;  // the tile: rows, columns
    void (*multiply)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool from_zero);
};

// The builds of the tile kernel this CPU runs, fastest first (all give the same sums).
inline const std::vector<TileKernel>& tile_kernels() {
    static const std::vector<TileKernel> kernels = [] {
        std::vector<TileKernel> k;
#ifdef __x86_64__
        __builtin_cpu_init();  // needed only before constructors have run; harmless after
        if (__builtin_cpu_supports("avx512f")) { k.push_back({"avx512", 32, 12, multiply_tile_avx512}); }
        if (__builtin_cpu_supports("avx2")) { k.push_back({"avx2", 16, 6, multiply_tile_avx2}); }
#endif
        k.push_back({"baseline", 8, 6, multiply_tile_baseline});
        return k;
    }();
    return kernels;
}

// ----------------------------------------------------------------------------
// scratch memory

// Floats that are reused from one GEMM to the next: the buffer only grows, and is neither
// zero-filled nor freed between calls (64-byte aligned, as a cache line and an AVX-512 vector).
class ScratchBuffer {
public:
    float* floats(size_t count) {
        if (count > capacity_) {
            const size_t bytes = (count * sizeof(float) + 63) / 64 * 64;
            data_.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
            if (!data_) { throw std::bad_alloc(); }
            capacity_ = count;
        }
        return data_.get();
    }

private:
    struct Free {
        void operator()(float* p) const { std::free(p); }
    };
    std::unique_ptr<float, Free> data_;
    size_t capacity_ = 0;
};

// Each OS thread's own scratch: the thread that calls run_gemm packs A into `a`; the worker
// that runs a block of columns packs B into `b` and sums into `sums`. Per thread, so that no
// two threads ever share one, whoever calls.
struct GemmScratch {
    ScratchBuffer a, b, sums;
};

inline GemmScratch& this_thread_gemm_scratch() {
    static thread_local GemmScratch scratch;
    return scratch;
}

// ----------------------------------------------------------------------------
// the batched product
//
// The loops around the tile kernel, outermost first (for one batch):
//
//   A is packed once, all of it, into panels of MR rows: panel p holds, for l = 0..k-1,
//   the MR elements A(p·MR .. p·MR+MR-1, l), contiguous (rows past m are zeros).
//   for each block of NC columns (a task for the worker pool):
//     B's NC columns are packed into panels of NR columns, in the same way (l-major, NR
//     elements per l, columns past n zeros);
//     for each block of KC values of l:
//       for each block of MC rows:                   A block, MC×KC: stays in L2
//         for each panel of NR columns in the block: B panel, KC×NR: stays in L1
//           for each panel of MR rows in the block:
//             the tile kernel: an MR×NR tile of sums, KC steps of l
//     column_done for each of the NC columns.
//
// Each A block is so used by NC/NR column panels before the next is loaded, and each B panel by
// MC/MR row panels: for m = 50304, k = 256 the A matrix is read from memory n/NC times, not n
// times. The sums of a block of columns (m×NC floats) wait in the worker's scratch until all of
// l is done, and are then handed over column by column, as column_done expects.
//
// Tasks are (batch, block of columns). NC is at most 96, and less where that would give fewer
// than about four tasks per worker; so how many tasks there are, and how wide, depends on the
// number of workers, but no sum depends on either: every sum is made by one tile, in the same
// order of l. Every OS thread packs into scratch of its own (GemmScratch), reused from call to
// call.

constexpr int64_t kGemmBlockK = 256;          // KC
constexpr int64_t kGemmBlockRows = 256;       // MC (a multiple of every MR)
constexpr int64_t kGemmMaxBlockColumns = 96;  // NC at most (a multiple of every NR)

template <typename Operands, typename Convert, typename ColumnDone>
void run_gemm_tiled(GemmShape s, Operands operands, Convert convert, ColumnDone column_done, const TileKernel& kernel) {
    const int64_t mr = kernel.mr, nr = kernel.nr;
    const int64_t panels = (s.m + mr - 1) / mr;
    const int64_t padded_m = panels * mr;
    const int64_t workers = worker_pool().size();

    // A of every batch into panels, converted (to_tf32, or as they are); tasks of whole panels
    float* packed_a = this_thread_gemm_scratch().a.floats(static_cast<size_t>(s.batch * padded_m * s.k));
    const int64_t a_chunks = std::min<int64_t>(panels, 4 * workers);
    worker_pool().run(static_cast<size_t>(s.batch * a_chunks), [&](size_t task) {
        const int64_t batch = static_cast<int64_t>(task) / a_chunks, chunk = static_cast<int64_t>(task) % a_chunks;
        const auto a = operands(batch).first;
        for (int64_t p = chunk * panels / a_chunks; p < (chunk + 1) * panels / a_chunks; p++) {
            float* panel = packed_a + (batch * panels + p) * mr * s.k;
            const int64_t rows = std::min(mr, s.m - p * mr);
            for (int64_t l = 0; l < s.k; l++, panel += mr) {
                for (int64_t r = 0; r < rows; r++) { panel[r] = convert(a.at(p * mr + r, l)); }
                std::fill(panel + rows, panel + mr, 0.0f);
            }
        }
    });

    // blocks of columns, NR wide or a multiple: about four tasks per worker, so that uneven
    // tasks still spread evenly
    const int64_t blocks_wanted = std::max<int64_t>(1, (4 * workers + s.batch - 1) / s.batch);
    const int64_t columns = (s.n + blocks_wanted - 1) / blocks_wanted;
    const int64_t block_columns = std::min(kGemmMaxBlockColumns, (columns + nr - 1) / nr * nr);
    const int64_t blocks = (s.n + block_columns - 1) / block_columns;
    worker_pool().run(static_cast<size_t>(s.batch * blocks), [&](size_t task) {
        const int64_t batch = static_cast<int64_t>(task) / blocks;
        const int64_t first = static_cast<int64_t>(task) % blocks * block_columns;
        const int64_t count = std::min(block_columns, s.n - first);
        const int64_t column_panels = (count + nr - 1) / nr;
        const auto b = operands(batch).second;
        GemmScratch& scratch = this_thread_gemm_scratch();
        float* packed_b = scratch.b.floats(static_cast<size_t>(column_panels * nr * s.k));
        float* sums = scratch.sums.floats(static_cast<size_t>(column_panels * nr * padded_m));
        for (int64_t q = 0; q < column_panels; q++) {
            float* panel = packed_b + q * nr * s.k;
            const int64_t cols = std::min(nr, count - q * nr);
            for (int64_t l = 0; l < s.k; l++, panel += nr) {
                for (int64_t c = 0; c < cols; c++) { panel[c] = convert(b.at(l, first + q * nr + c)); }
                std::fill(panel + cols, panel + nr, 0.0f);
            }
        }
        const float* a = packed_a + batch * panels * mr * s.k;
        // at least once: with k = 0 the tiles are stored as they start, zeros (sums of nothing)
        for (int64_t l0 = 0; l0 == 0 || l0 < s.k; l0 += kGemmBlockK) {
            const int64_t kc = std::min(kGemmBlockK, s.k - l0);
            for (int64_t i0 = 0; i0 < padded_m; i0 += kGemmBlockRows) {
                const int64_t i1 = std::min(padded_m, i0 + kGemmBlockRows);
                for (int64_t q = 0; q < column_panels; q++) {
                    const float* b_panel = packed_b + q * nr * s.k + l0 * nr;
                    float* tiles = sums + q * nr * padded_m;
                    for (int64_t i = i0; i < i1; i += mr) {
                        kernel.multiply(kc, a + i * s.k + l0 * mr, b_panel, tiles + i, padded_m, l0 == 0);
                    }
                }
            }
        }
        for (int64_t c = 0; c < count; c++) { column_done(batch, first + c, sums + c * padded_m); }
    });
}

#ifdef CUDA_HARNESS_OPENBLAS
// ----------------------------------------------------------------------------
// the product from OpenBLAS

// The product of each batch from cblas_sgemm into a scratch matrix, then handed over by
// column. False when a view is not a plain column-major (transposed or not) matrix.
template <typename Operands, typename ColumnDone>
bool cblas_product(GemmShape s, Operands operands, ColumnDone column_done) {
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

// op(A_b) and op(B_b) of every batch as fp32 column-major copies (m×k, k×n), each element
// passed through `convert` on the way: what cblas_sgemm multiplies for bf16 or TF32 operands.
struct ColumnMajorOperands {
    GemmShape s;
    std::vector<float> a, b;

    template <typename Operands, typename Convert>
    ColumnMajorOperands(GemmShape shape, Operands operands, Convert convert)
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

// The product from OpenBLAS, in its summation order: of fp32 views as they are (false when one
// is not a plain matrix), or of column-major copies of TF32 or bf16 operands.
template <typename Operands, typename ColumnDone>
bool run_gemm_openblas(GemmShape s, Operands operands, ColumnDone column_done, bool tf32) {
    using View = decltype(operands(0).first);
    if constexpr (std::is_same<View, MatrixView>::value) {
        if (!tf32) { return cblas_product(s, operands, column_done); }
        return cblas_product(s, ColumnMajorOperands(s, operands, [](float x) { return to_tf32(x); }), column_done);
    } else {
        return cblas_product(s, ColumnMajorOperands(s, operands, [](float x) { return x; }), column_done);
    }
}
#endif

// ----------------------------------------------------------------------------
// run_gemm

// The batched product, in fp32: of fp32 operands as they are or, with tf32, converted to
// TF32; of bf16 operands widened to fp32 (bf16 values are TF32 values already: 7 fraction bits).
// operands(b) returns the pair of views {op(A_b), op(B_b)}; column_done(b, j, sums) gets the m
// sums of column j of batch b, and may be called for different columns concurrently.
// kernel: the build of the tile kernel to use (tests); by default the fastest, or OpenBLAS
// where the harness is built with it.
template <typename Operands, typename ColumnDone>
void run_gemm(GemmShape s, Operands operands, ColumnDone column_done, bool tf32 = false,
              const TileKernel* kernel = nullptr) {
    if (s.m <= 0 || s.n <= 0 || s.batch <= 0) { return; }
#ifdef CUDA_HARNESS_OPENBLAS
    if (kernel == nullptr && run_gemm_openblas(s, operands, column_done, tf32)) { return; }
#endif
    if (kernel == nullptr) { kernel = &tile_kernels().front(); }
    using View = decltype(operands(0).first);
    if constexpr (std::is_same<View, MatrixView>::value) {
        if (tf32) {
            run_gemm_tiled(s, operands, [](float x) { return to_tf32(x); }, column_done, *kernel);
            return;
        }
    }
    run_gemm_tiled(s, operands, [](float x) { return x; }, column_done, *kernel);
}

}  // namespace cuda_harness

CUDA_HARNESS_UNTRACED_END
