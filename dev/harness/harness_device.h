// harness_device.h: what device code sees: qualifiers, threadIdx and friends, barriers,
// warp intrinsics, atomics and the CUDA math intrinsics, on the CPU.
//
//   __global__ __device__ __host__ __constant__   nothing: kernels are plain functions
//   __shared__                                    static thread_local: one instance per worker
//                                                 OS thread, which runs one block at a time
//   threadIdx blockIdx blockDim gridDim           the running simulated thread's values
//   __syncthreads() and the warp intrinsics       real barriers (harness_scheduler.h)
//   atomics                                       real atomics (blocks run on several OS threads)
//   fast-math intrinsics (__expf, ...)            the accurate libm function: results differ
//                                                 from a GPU's in the last bits
// Barriers and warp operations take the caller's file and line as hidden default arguments
// (__builtin_FILE/__builtin_LINE), so that a deadlock report says where each thread waits.
#pragma once

#include <chrono>
#include <cmath>
#include <cstring>
#include <math.h>
#include <type_traits>

#include "harness_scheduler.h"

CUDA_HARNESS_UNTRACED_BEGIN

// ----------------------------------------------------------------------------
// qualifiers

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static thread_local
#define __constant__
#define __managed__
#define __grid_constant__
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// __restrict__ is a GCC keyword already.

// ----------------------------------------------------------------------------
// built-in variables

namespace cuda_harness {

inline BlockRunner& device_runner(const char* what) {
    BlockRunner* runner = tls_runner;
    if (runner == nullptr) {
        fatal("launch kernels with LAUNCH(kernel, grid, block, shared_bytes, stream)(args...), not by a plain call",
              "%s used outside a kernel launch", what);
    }
    return *runner;
}

inline const uint3& device_thread_idx() { return device_runner("threadIdx").current().thread_idx; }
inline const uint3& device_block_idx() { return device_runner("blockIdx").block().block_idx; }
inline const dim3& device_block_dim() { return device_runner("blockDim").block().block_dim; }
inline const dim3& device_grid_dim() { return device_runner("gridDim").block().grid_dim; }

// The block's dynamic shared memory (DYNAMIC_SHARED in llmc/cuda_common.h).
inline unsigned char* dynamic_shared_memory() { return device_runner("dynamic shared memory").dynamic_shared(); }

}  // namespace cuda_harness

#define threadIdx (::cuda_harness::device_thread_idx())
#define blockIdx (::cuda_harness::device_block_idx())
#define blockDim (::cuda_harness::device_block_dim())
#define gridDim (::cuda_harness::device_grid_dim())
inline constexpr int warpSize = 32;

// ----------------------------------------------------------------------------
// block barriers

inline void __syncthreads(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    cuda_harness::device_runner("__syncthreads").block_barrier({"__syncthreads()", file, line}, 0);
}

inline int __syncthreads_count(int predicate, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    return cuda_harness::device_runner("__syncthreads_count")
        .block_barrier({"__syncthreads_count()", file, line}, predicate);
}

inline int __syncthreads_and(int predicate, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    cuda_harness::BlockRunner& r = cuda_harness::device_runner("__syncthreads_and");
    return static_cast<size_t>(r.block_barrier({"__syncthreads_and()", file, line}, predicate)) == r.thread_count();
}

inline int __syncthreads_or(int predicate, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    return cuda_harness::device_runner("__syncthreads_or").block_barrier({"__syncthreads_or()", file, line}, predicate) > 0;
}

// ----------------------------------------------------------------------------
// warp shuffles: one exchange through the warp's snapshot, then each lane picks its source

namespace cuda_harness {

enum class ShuffleMode { Index, Up, Down, Xor };

// The lane whose value `lane` receives, or -1 for its own value, as the CUDA guide defines
// it for segments of `width` lanes: up/down do not cross the segment's ends, xor may read
// earlier segments but not later ones, an index wraps around within the segment.
inline int shuffle_source(ShuffleMode mode, int lane, long long arg, int width) {
    const int start = lane & ~(width - 1);
    switch (mode) {
    case ShuffleMode::Index: return start + static_cast<int>(arg & (width - 1));
    case ShuffleMode::Up: return lane - start - arg >= 0 ? static_cast<int>(lane - arg) : -1;
    case ShuffleMode::Down: return lane - start + arg < width ? static_cast<int>(lane + arg) : -1;
    case ShuffleMode::Xor: {
        const long long source = lane ^ arg;
        return source >= 0 && source < start + width ? static_cast<int>(source) : -1;
    }
    }
    return -1;
}

// Why lane `source` of the running thread's warp did not take part in its warp operation.
inline const char* missing_lane_reason(const BlockRunner& r, int source) {
    const SimThread& me = const_cast<BlockRunner&>(r).current();
    if (me.warp * kWarpSize + static_cast<unsigned>(source) >= r.thread_count()) { return "does not exist (a partial warp)"; }
    return (r.live_lanes(me.warp) & (1u << source)) == 0 ? "has returned" : "is not in the mask";
}

template <typename T>
T shuffle(const char* op, ShuffleMode mode, unsigned mask, T var, long long arg, int width, const char* file, int line) {
    static_assert(std::is_trivially_copyable<T>::value && sizeof(T) <= kWarpValueBytes,
                  "the harness shuffles trivially copyable values of at most 32 bytes");
    if (width < 1 || width > 32 || (width & (width - 1)) != 0) {
        fatal("width must be a power of 2 from 1 to 32", "%s:%d: %s with width %d", file, line, op, width);
    }
    BlockRunner& r = device_runner(op);
    const WarpSnapshot& snapshot = r.warp_exchange({op, file, line}, mask, &var, sizeof(T));
    const SimThread& me = r.current();
    const int source = shuffle_source(mode, static_cast<int>(me.lane), arg, width);
    // A lane outside the exchange (not in the mask, or returned) has no value: undefined on
    // a GPU; the harness returns the caller's own.
    if (source < 0 || source >= 32) { return var; }
    if ((me.exchange_lanes & (1u << source)) == 0) {
        CUDA_HARNESS_SAN(san::undefined_lane(op, file, line, static_cast<unsigned>(source), missing_lane_reason(r, source));)
        return var;
    }
    T out;
    memcpy(&out, snapshot.values[source], sizeof(T));
    return out;
}

// The predicates of the lanes that took part, as a ballot.
inline unsigned vote(const char* op, unsigned mask, int predicate, const char* file, int line) {
    const int p = predicate != 0;
    BlockRunner& r = device_runner(op);
    const WarpSnapshot& snapshot = r.warp_exchange({op, file, line}, mask, &p, sizeof(p));
    const unsigned lanes = r.current().exchange_lanes;
    unsigned ballot = 0;
    for (unsigned lane = 0; lane < kWarpSize; lane++) {
        int value = 0;
        memcpy(&value, snapshot.values[lane], sizeof(value));
        if ((lanes & (1u << lane)) != 0 && value != 0) { ballot |= 1u << lane; }
    }
    return ballot;
}

// __reduce_*_sync: every lane gets op over the values of the lanes that took part.
template <typename T, typename Op>
T warp_reduce(const char* op_name, unsigned mask, T value, Op op, const char* file, int line) {
    BlockRunner& r = device_runner(op_name);
    const WarpSnapshot& snapshot = r.warp_exchange({op_name, file, line}, mask, &value, sizeof(T));
    const unsigned lanes = r.current().exchange_lanes;
    bool first = true;
    T result{};
    for (unsigned lane = 0; lane < kWarpSize; lane++) {
        if ((lanes & (1u << lane)) == 0) { continue; }
        T v;
        memcpy(&v, snapshot.values[lane], sizeof(T));
        result = first ? v : op(result, v);
        first = false;
    }
    return result;
}

}  // namespace cuda_harness

template <typename T>
inline T __shfl_sync(unsigned mask, T var, int srcLane, int width = warpSize, const char* file = __builtin_FILE(),
                     int line = __builtin_LINE()) {
    return cuda_harness::shuffle("__shfl_sync", cuda_harness::ShuffleMode::Index, mask, var, srcLane, width, file, line);
}

template <typename T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned int delta, int width = warpSize,
                        const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    return cuda_harness::shuffle("__shfl_up_sync", cuda_harness::ShuffleMode::Up, mask, var, delta, width, file, line);
}

template <typename T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned int delta, int width = warpSize,
                          const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    return cuda_harness::shuffle("__shfl_down_sync", cuda_harness::ShuffleMode::Down, mask, var, delta, width, file, line);
}

template <typename T>
inline T __shfl_xor_sync(unsigned mask, T var, int laneMask, int width = warpSize, const char* file = __builtin_FILE(),
                         int line = __builtin_LINE()) {
    return cuda_harness::shuffle("__shfl_xor_sync", cuda_harness::ShuffleMode::Xor, mask, var, laneMask, width, file, line);
}

// ----------------------------------------------------------------------------
// warp votes, __syncwarp, warp reductions

inline unsigned __ballot_sync(unsigned mask, int predicate, const char* file = __builtin_FILE(),
                              int line = __builtin_LINE()) {
    return cuda_harness::vote("__ballot_sync", mask, predicate, file, line);
}

inline int __any_sync(unsigned mask, int predicate, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    return cuda_harness::vote("__any_sync", mask, predicate, file, line) != 0;
}

inline int __all_sync(unsigned mask, int predicate, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    const unsigned ballot = cuda_harness::vote("__all_sync", mask, predicate, file, line);
    return ballot == cuda_harness::device_runner("__all_sync").current().exchange_lanes;
}

inline void __syncwarp(unsigned mask = 0xffffffffu, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    const int nothing = 0;
    cuda_harness::device_runner("__syncwarp").warp_exchange({"__syncwarp", file, line}, mask, &nothing, sizeof(nothing));
}

// The lanes of the caller's warp that have not returned. (On a GPU: those converged with
// the caller right now, which the harness does not model.)
inline unsigned __activemask() {
    cuda_harness::BlockRunner& r = cuda_harness::device_runner("__activemask");
    return r.live_lanes(r.current().warp);
}

namespace cuda_harness {

struct Sum { template <typename T> T operator()(T a, T b) const { return a + b; } };
struct Min { template <typename T> T operator()(T a, T b) const { return b < a ? b : a; } };
struct Max { template <typename T> T operator()(T a, T b) const { return a < b ? b : a; } };
struct BitAnd { template <typename T> T operator()(T a, T b) const { return a & b; } };
struct BitOr { template <typename T> T operator()(T a, T b) const { return a | b; } };
struct BitXor { template <typename T> T operator()(T a, T b) const { return a ^ b; } };

}  // namespace cuda_harness

#define CUDA_HARNESS_WARP_REDUCE(name, T, Op)                                                        \
    inline T name(unsigned mask, T value, const char* file = __builtin_FILE(), int line = __builtin_LINE()) { \
        return cuda_harness::warp_reduce(#name, mask, value, cuda_harness::Op{}, file, line);         \
    }
CUDA_HARNESS_WARP_REDUCE(__reduce_add_sync, unsigned, Sum)
CUDA_HARNESS_WARP_REDUCE(__reduce_add_sync, int, Sum)
CUDA_HARNESS_WARP_REDUCE(__reduce_min_sync, unsigned, Min)
CUDA_HARNESS_WARP_REDUCE(__reduce_min_sync, int, Min)
CUDA_HARNESS_WARP_REDUCE(__reduce_max_sync, unsigned, Max)
CUDA_HARNESS_WARP_REDUCE(__reduce_max_sync, int, Max)
CUDA_HARNESS_WARP_REDUCE(__reduce_and_sync, unsigned, BitAnd)
CUDA_HARNESS_WARP_REDUCE(__reduce_or_sync, unsigned, BitOr)
CUDA_HARNESS_WARP_REDUCE(__reduce_xor_sync, unsigned, BitXor)
#undef CUDA_HARNESS_WARP_REDUCE

// ----------------------------------------------------------------------------
// atomics: blocks run in parallel on several OS threads, so these are real atomic
// instructions (relaxed, like CUDA's). Within a block no other thread runs in between.

namespace cuda_harness {

// A compare-and-swap loop on the bit pattern, for what has no atomic instruction (float add...).
template <typename T, typename Update>
T atomic_update(T* address, Update update) {
    static_assert(sizeof(T) == 4 || sizeof(T) == 8, "4- or 8-byte atomics");
    CUDA_HARNESS_SAN(san::AtomicScope exempt(address, sizeof(T));)
    using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
    Bits* bits = reinterpret_cast<Bits*>(address);
    Bits expected = __atomic_load_n(bits, __ATOMIC_RELAXED);
    for (;;) {
        T old;
        memcpy(&old, &expected, sizeof(T));
        const T next = update(old);
        Bits desired;
        memcpy(&desired, &next, sizeof(T));
        if (__atomic_compare_exchange_n(bits, &expected, desired, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
            return old;
        }
    }
}

template <typename T>
T atomic_min(T* address, T value) {
    return atomic_update(address, [value](T old) { return value < old ? value : old; });
}

template <typename T>
T atomic_max(T* address, T value) {
    return atomic_update(address, [value](T old) { return old < value ? value : old; });
}

// The old value, whether or not it was replaced.
template <typename T>
T atomic_cas(T* address, T compare, T value) {
    CUDA_HARNESS_SAN(san::AtomicScope exempt(address, sizeof(T));)
    __atomic_compare_exchange_n(address, &compare, value, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    return compare;
}

}  // namespace cuda_harness

// the integer types with native atomic instructions
#define CUDA_HARNESS_ATOMIC(a) CUDA_HARNESS_SAN(cuda_harness::san::AtomicScope exempt(a, sizeof(*a));)
#define CUDA_HARNESS_NATIVE_ATOMICS(T)                                                                 \
    inline T atomicAdd(T* a, T v) { CUDA_HARNESS_ATOMIC(a) return __atomic_fetch_add(a, v, __ATOMIC_RELAXED); } \
    inline T atomicExch(T* a, T v) { CUDA_HARNESS_ATOMIC(a) return __atomic_exchange_n(a, v, __ATOMIC_RELAXED); } \
    inline T atomicAnd(T* a, T v) { CUDA_HARNESS_ATOMIC(a) return __atomic_fetch_and(a, v, __ATOMIC_RELAXED); } \
    inline T atomicOr(T* a, T v) { CUDA_HARNESS_ATOMIC(a) return __atomic_fetch_or(a, v, __ATOMIC_RELAXED); } \
    inline T atomicXor(T* a, T v) { CUDA_HARNESS_ATOMIC(a) return __atomic_fetch_xor(a, v, __ATOMIC_RELAXED); } \
    inline T atomicMin(T* a, T v) { return cuda_harness::atomic_min(a, v); }                          \
    inline T atomicMax(T* a, T v) { return cuda_harness::atomic_max(a, v); }                          \
    inline T atomicCAS(T* a, T compare, T v) { return cuda_harness::atomic_cas(a, compare, v); }
CUDA_HARNESS_NATIVE_ATOMICS(int)
CUDA_HARNESS_NATIVE_ATOMICS(unsigned)
CUDA_HARNESS_NATIVE_ATOMICS(unsigned long long)
#undef CUDA_HARNESS_NATIVE_ATOMICS

inline int atomicSub(int* a, int v) { CUDA_HARNESS_ATOMIC(a) return __atomic_fetch_sub(a, v, __ATOMIC_RELAXED); }
inline unsigned atomicSub(unsigned* a, unsigned v) { CUDA_HARNESS_ATOMIC(a) return __atomic_fetch_sub(a, v, __ATOMIC_RELAXED); }
inline long long atomicMin(long long* a, long long v) { return cuda_harness::atomic_min(a, v); }
inline long long atomicMax(long long* a, long long v) { return cuda_harness::atomic_max(a, v); }
inline unsigned short atomicCAS(unsigned short* a, unsigned short compare, unsigned short v) {
    return cuda_harness::atomic_cas(a, compare, v);
}

// floating point: a compare-and-swap loop
inline float atomicAdd(float* a, float v) { return cuda_harness::atomic_update(a, [v](float old) { return old + v; }); }
inline double atomicAdd(double* a, double v) { return cuda_harness::atomic_update(a, [v](double old) { return old + v; }); }
inline float atomicExch(float* a, float v) { return cuda_harness::atomic_update(a, [v](float) { return v; }); }

// atomicInc/atomicDec wrap around at `limit`, as CUDA defines them.
inline unsigned atomicInc(unsigned* a, unsigned limit) {
    return cuda_harness::atomic_update(a, [limit](unsigned old) { return old >= limit ? 0u : old + 1; });
}
inline unsigned atomicDec(unsigned* a, unsigned limit) {
    return cuda_harness::atomic_update(a, [limit](unsigned old) { return old == 0 || old > limit ? limit : old - 1; });
}

inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_system() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

// ----------------------------------------------------------------------------
// math intrinsics: the accurate function stands in for the fast approximation

inline float __expf(float x) { return expf(x); }
inline float __exp10f(float x) { return powf(10.0f, x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __log10f(float x) { return log10f(x); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline void __sincosf(float x, float* s, float* c) { *s = sinf(x); *c = cosf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __frsqrt_rn(float x) { return 1.0f / sqrtf(x); }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float normcdff(float x) { return 0.5f * erfcf(-x * 0.70710678118654752f); }
inline float __saturatef(float x) { return x > 0.0f ? (x < 1.0f ? x : 1.0f) : 0.0f; }  // NaN -> 0 too
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }

// bit casts and conversions
inline int __float_as_int(float x) { int i; memcpy(&i, &x, 4); return i; }
inline float __int_as_float(int i) { float x; memcpy(&x, &i, 4); return x; }
inline unsigned __float_as_uint(float x) { unsigned u; memcpy(&u, &x, 4); return u; }
inline float __uint_as_float(unsigned u) { float x; memcpy(&x, &u, 4); return x; }
inline long long __double_as_longlong(double x) { long long i; memcpy(&i, &x, 8); return i; }
inline double __longlong_as_double(long long i) { double x; memcpy(&x, &i, 8); return x; }
inline int __float2int_rn(float x) { return static_cast<int>(nearbyintf(x)); }  // default rounding: to nearest even
inline int __float2int_rz(float x) { return static_cast<int>(x); }
inline int __float2int_rd(float x) { return static_cast<int>(floorf(x)); }
inline int __float2int_ru(float x) { return static_cast<int>(ceilf(x)); }
inline unsigned __float2uint_rn(float x) { return static_cast<unsigned>(nearbyintf(x)); }
inline float __int2float_rn(int i) { return static_cast<float>(i); }
inline float __uint2float_rn(unsigned u) { return static_cast<float>(u); }

// integer intrinsics
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll(static_cast<unsigned long long>(x)); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned __brev(unsigned x) {
    unsigned r = 0;
    for (int i = 0; i < 32; i++) { r |= ((x >> i) & 1u) << (31 - i); }
    return r;
}
inline int __mul24(int a, int b) { return (a << 8 >> 8) * (b << 8 >> 8); }
inline unsigned __umul24(unsigned a, unsigned b) { return (a & 0xFFFFFFu) * (b & 0xFFFFFFu); }
inline int __mulhi(int a, int b) { return static_cast<int>((static_cast<long long>(a) * b) >> 32); }
inline unsigned __umulhi(unsigned a, unsigned b) { return static_cast<unsigned>((static_cast<unsigned long long>(a) * b) >> 32); }

// min and max: CUDA overloads them for device code, mixed signedness included (the result
// is then unsigned, as by the usual arithmetic conversions)
#define CUDA_HARNESS_MIN_MAX(R, A, B)                                                              \
    inline R min(A a, B b) { return static_cast<R>(a) < static_cast<R>(b) ? static_cast<R>(a) : static_cast<R>(b); } \
    inline R max(A a, B b) { return static_cast<R>(a) > static_cast<R>(b) ? static_cast<R>(a) : static_cast<R>(b); }
CUDA_HARNESS_MIN_MAX(int, int, int)
CUDA_HARNESS_MIN_MAX(unsigned, unsigned, unsigned)
CUDA_HARNESS_MIN_MAX(unsigned, int, unsigned)
CUDA_HARNESS_MIN_MAX(unsigned, unsigned, int)
CUDA_HARNESS_MIN_MAX(long, long, long)
CUDA_HARNESS_MIN_MAX(unsigned long, unsigned long, unsigned long)
CUDA_HARNESS_MIN_MAX(unsigned long, long, unsigned long)
CUDA_HARNESS_MIN_MAX(unsigned long, unsigned long, long)
CUDA_HARNESS_MIN_MAX(long long, long long, long long)
CUDA_HARNESS_MIN_MAX(unsigned long long, unsigned long long, unsigned long long)
CUDA_HARNESS_MIN_MAX(unsigned long long, long long, unsigned long long)
CUDA_HARNESS_MIN_MAX(unsigned long long, unsigned long long, long long)
#undef CUDA_HARNESS_MIN_MAX
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }
inline double min(float a, double b) { return fmin(a, b); }
inline double max(float a, double b) { return fmax(a, b); }
inline double min(double a, float b) { return fmin(a, b); }
inline double max(double a, float b) { return fmax(a, b); }

CUDA_HARNESS_UNTRACED_END

// ----------------------------------------------------------------------------
// loads and stores with cache hints: plain loads and stores (device memory accesses: traced
// in the sanitizer build)

template <typename T> inline T __ldg(const T* p) { return *p; }
template <typename T> inline T __ldca(const T* p) { return *p; }
template <typename T> inline T __ldcg(const T* p) { return *p; }
template <typename T> inline T __ldcs(const T* p) { return *p; }
template <typename T> inline T __ldlu(const T* p) { return *p; }
template <typename T> inline T __ldcv(const T* p) { return *p; }
template <typename T> inline void __stwb(T* p, T v) { *p = v; }
template <typename T> inline void __stcg(T* p, T v) { *p = v; }
template <typename T> inline void __stcs(T* p, T v) { *p = v; }
template <typename T> inline void __stwt(T* p, T v) { *p = v; }

CUDA_HARNESS_UNTRACED_BEGIN

// ----------------------------------------------------------------------------
// time and traps

inline long long clock64() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

inline void __nanosleep(unsigned /*ns*/) {}  // no other thread runs meanwhile: spin-waiting cannot work

[[noreturn]] inline void __trap(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    cuda_harness::fatal(nullptr, "%s:%d: __trap() in device code", file, line);
}

CUDA_HARNESS_UNTRACED_END
