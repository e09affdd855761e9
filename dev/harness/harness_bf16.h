// harness_bf16.h: bfloat16 for the CPU harness: the types and intrinsics of cuda_bf16.h that
// mixed-precision code uses, with a GPU's results.
//
// bf16 is the upper half of an fp32: the sign, the same 8-bit exponent, 7 of the 23 fraction
// bits. Widening to float is exact (the 16 bits shifted up). Narrowing drops 16 fraction bits:
//   __float2bfloat16, _rn, the constructor   to nearest, ties to even (what cvt.rn.bf16.f32 does)
//   _rz / _rd / _ru                          toward zero / -infinity / +infinity
// NaN becomes the canonical NaN 0x7FFF (cuda_bf16.hpp's host code says so; a GPU's conversion
// also gives a NaN); ±infinity and ±0 stay; subnormals are rounded on their own grid (multiples
// of 2^-133), never flushed; a value from halfway above the largest finite bf16 (0x7F7F) up
// rounds to infinity under _rn, as IEEE rounding to nearest does.
//
// Arithmetic rounds once, as a GPU's bf16 instructions do (add/mul.bf16, fma.rn.bf16):
//   + - * /    computed in fp32 from the exactly widened operands, then rounded to bf16. The
//              fp32 result is already rounded, and rounding it again is still the correctly
//              rounded bf16: rounding first to q ≥ 2p + 2 bits (fp32: 24 ≥ 2·8 + 2) and then to
//              p bits equals one rounding for + - * / (Figueroa, "When is double rounding
//              innocuous?", 1995). The theorem assumes fp32 does not underflow; below 2^-126,
//              where fp32 keeps fewer bits, it holds too: every bf16 is a multiple of 2^-133, so
//              sums and differences that small are exact; a product (at most 16 significant
//              bits) that has bits below 2^-149 is smaller than 2^-134 and rounds to zero either
//              way; a quotient is exact or more than 2^-144 away from every bf16 midpoint, while
//              fp32's rounding there moves it by at most 2^-150.
//   fma        a·b is exact in double (16 significant bits, exponents within double's range; in
//              fp32 it could overflow or underflow). a·b + c is not always a double, and
//              rounding it to a double first can land exactly on a bf16 midpoint that the exact
//              sum is not on (a·b a midpoint, c tiny), so the sum is rounded to odd instead (the
//              double sum, moved to its neighbour with an odd last bit when inexact), which
//              then rounds correctly to any format with at least 2 bits fewer (Boldo and
//              Melquiond, "When double rounding is odd", 2005).
//   neg, abs   flip or clear the sign bit (a NaN stays a NaN; its payload is unspecified on a GPU)
//   comparisons as fp32 comparisons: == < <= > >= are ordered (false with a NaN), != is
//              unordered (true with a NaN), like the real operators (__heq ... __hneu).
//
// The types are trivially copyable structs of 2 and 4 bytes, aligned like the real ones, so
// shuffles (templates over trivially copyable values), packed 16-byte loads and
// reinterpret_casts work as on a GPU. Ambiguous mixes such as `bf16 * 2.0f` fail to compile, as
// they do with the real header.
//
// The functions that read or write a program's bf16 objects are outside the harness's untraced
// region: in the sanitizer build they are device code's memory accesses, reported at the kernel
// line that called them. The bit-level helpers below only see values.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "harness_types.h"
#include "harness_util.h"

CUDA_HARNESS_UNTRACED_BEGIN

namespace cuda_harness {

// ----------------------------------------------------------------------------
// bit-level conversions

constexpr uint16_t kBf16CanonicalNan = 0x7FFF;

inline uint32_t float_bits(float x) { return __builtin_bit_cast(uint32_t, x); }
inline uint64_t double_bits(double x) { return __builtin_bit_cast(uint64_t, x); }

inline float bf16_to_float(uint16_t bits) { return __builtin_bit_cast(float, static_cast<uint32_t>(bits) << 16); }

// Round to nearest, ties to even: adding 0x7FFF plus the last kept bit to the magnitude carries
// into the kept bits exactly when the dropped half is above 0x8000, or equal to it with an odd
// last bit. A carry moves into the exponent as it should (the largest subnormals round up to the
// smallest normal, 0x7F7F + a half up to infinity).
inline uint16_t float_to_bf16_rn(float x) {
    if (std::isnan(x)) { return kBf16CanonicalNan; }
    const uint32_t u = float_bits(x);
    return static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

// Toward zero: drop the 16 low bits of the magnitude.
inline uint16_t float_to_bf16_rz(float x) {
    return std::isnan(x) ? kBf16CanonicalNan : static_cast<uint16_t>(float_bits(x) >> 16);
}

// Away from zero when something was dropped and the sign is `toward`'s: toward -infinity for
// negative numbers, toward +infinity for positive ones (a magnitude one step up; from the
// largest finite bf16 that step is infinity). Infinities drop nothing and stay.
inline uint16_t float_to_bf16_directed(float x, bool negative_up) {
    if (std::isnan(x)) { return kBf16CanonicalNan; }
    const uint32_t u = float_bits(x);
    const bool dropped = (u & 0xFFFFu) != 0;
    const bool negative = (u >> 31) != 0;
    return static_cast<uint16_t>((u >> 16) + (dropped && negative == negative_up ? 1 : 0));
}
inline uint16_t float_to_bf16_rd(float x) { return float_to_bf16_directed(x, true); }
inline uint16_t float_to_bf16_ru(float x) { return float_to_bf16_directed(x, false); }

// A double rounded to bf16, to nearest even. Through float with round-to-odd (the nearest
// float, moved to its neighbour toward x when inexact and even), so that the second rounding,
// to bf16, is correct (24 ≥ 8 + 2 bits; below 2^-126 both formats share fp32's fixed grids,
// 2^-149 and 2^-133). A double beyond the floats becomes ±infinity or ±FLT_MAX here, both
// beyond bf16's rounding bound, so infinity follows.
inline uint16_t double_to_bf16_rn(double x) {
    if (std::isnan(x)) { return kBf16CanonicalNan; }
    float f = static_cast<float>(x);
    if (static_cast<double>(f) != x && (float_bits(f) & 1u) == 0) {
        f = std::nextafter(f, x > static_cast<double>(f) ? INFINITY : -INFINITY);
    }
    return float_to_bf16_rn(f);
}

// x + y rounded to odd in double: the double sum if exact, else its neighbour toward the exact
// sum when the double sum's last bit is even. The error of the double sum is exact by Knuth's
// TwoSum (no overflow: the operands here are below 2^257).
inline double sum_round_to_odd(double x, double y) {
    const double sum = x + y;
    if (!std::isfinite(sum)) { return sum; }
    const double y_part = sum - x;
    const double error = (x - (sum - y_part)) + (y - y_part);
    if (error == 0.0 || (double_bits(sum) & 1u) != 0) { return sum; }
    return std::nextafter(sum, error > 0.0 ? INFINITY : -INFINITY);
}

// a·b + c for widened bf16 values, rounded once to bf16 (see the top of the file).
inline uint16_t fma_to_bf16(float a, float b, float c) {
    const double product = static_cast<double>(a) * static_cast<double>(b);  // exact
    return double_to_bf16_rn(sum_round_to_odd(product, c));
}

// ±magnitude rounded to bf16, to nearest even. A magnitude of up to 32 bits is exact in double;
// below the top 32 bits of a larger one, the bits are folded into a sticky last bit (round to
// odd on 32 bits, then exact in double), so the one rounding that matters still sees them.
inline uint16_t magnitude_to_bf16_rn(bool negative, unsigned long long magnitude) {
    int shift = 0;
    while ((magnitude >> shift) >= (1ull << 32)) { shift++; }
    unsigned long long kept = magnitude >> shift;
    if ((magnitude & ((1ull << shift) - 1)) != 0) { kept |= 1u; }
    const double value = std::ldexp(static_cast<double>(kept), shift);
    return double_to_bf16_rn(negative ? -value : value);
}

// An integer of any type rounded to bf16, to nearest even.
template <typename Integer>
uint16_t integer_to_bf16_rn(Integer i) {
    if constexpr (std::is_signed<Integer>::value) {
        // |i| in unsigned arithmetic, also for the most negative value
        if (i < 0) { return magnitude_to_bf16_rn(true, 0ull - static_cast<unsigned long long>(i)); }
    }
    return magnitude_to_bf16_rn(false, static_cast<unsigned long long>(i));
}

}  // namespace cuda_harness

CUDA_HARNESS_UNTRACED_END

// ----------------------------------------------------------------------------
// the types (cuda_bf16.h's names, layouts and alignments)

// The bits alone, for static initialization.
struct alignas(2) __nv_bfloat16_raw {
    unsigned short x;
};

struct alignas(4) __nv_bfloat162_raw {
    unsigned short x;
    unsigned short y;
};

struct alignas(2) __nv_bfloat16 {
protected:
    unsigned short __x;  // protected, as in cuda_bf16.h: use __bfloat16_as_ushort

public:
    __nv_bfloat16() = default;  // uninitialized, as on a GPU
    constexpr __nv_bfloat16(const __nv_bfloat16_raw& raw) : __x(raw.x) {}
    __nv_bfloat16(float f) : __x(cuda_harness::float_to_bf16_rn(f)) {}
    __nv_bfloat16(double d) : __x(cuda_harness::double_to_bf16_rn(d)) {}
    // Every integer type (so that `= 0` is not ambiguous between float and double), rounded to
    // nearest even as __int2bfloat16_rn and its siblings do.
    template <typename Integer, typename std::enable_if<std::is_integral<Integer>::value, int>::type = 0>
    __nv_bfloat16(Integer i) : __x(cuda_harness::integer_to_bf16_rn(i)) {}

    operator float() const { return cuda_harness::bf16_to_float(__x); }
    constexpr operator __nv_bfloat16_raw() const { return __nv_bfloat16_raw{__x}; }
};

struct alignas(4) __nv_bfloat162 {
    __nv_bfloat16 x;  // the low half
    __nv_bfloat16 y;  // the high half

    __nv_bfloat162() = default;
    constexpr __nv_bfloat162(const __nv_bfloat16& low, const __nv_bfloat16& high) : x(low), y(high) {}
    constexpr __nv_bfloat162(const __nv_bfloat162_raw& raw)
        : x(__nv_bfloat16_raw{raw.x}), y(__nv_bfloat16_raw{raw.y}) {}
    constexpr operator __nv_bfloat162_raw() const {
        return __nv_bfloat162_raw{__nv_bfloat16_raw(x).x, __nv_bfloat16_raw(y).x};
    }
};

typedef __nv_bfloat16 nv_bfloat16;
typedef __nv_bfloat162 nv_bfloat162;

static_assert(sizeof(__nv_bfloat16) == 2 && alignof(__nv_bfloat16) == 2, "bf16 is 2 bytes, as on a GPU");
static_assert(sizeof(__nv_bfloat162) == 4 && alignof(__nv_bfloat162) == 4, "bf16x2 is 4 bytes, as on a GPU");
static_assert(std::is_trivially_copyable<__nv_bfloat16>::value && std::is_trivially_copyable<__nv_bfloat162>::value,
              "shuffles and memcpy need trivially copyable types");

// ----------------------------------------------------------------------------
// bits and constants

constexpr unsigned short __bfloat16_as_ushort(const __nv_bfloat16 h) { return __nv_bfloat16_raw(h).x; }
constexpr __nv_bfloat16 __ushort_as_bfloat16(const unsigned short i) { return __nv_bfloat16(__nv_bfloat16_raw{i}); }

#define CUDART_INF_BF16 __ushort_as_bfloat16((unsigned short)0x7F80U)
#define CUDART_NAN_BF16 __ushort_as_bfloat16((unsigned short)0x7FFFU)
#define CUDART_MIN_DENORM_BF16 __ushort_as_bfloat16((unsigned short)0x0001U)
#define CUDART_MAX_NORMAL_BF16 __ushort_as_bfloat16((unsigned short)0x7F7FU)
#define CUDART_NEG_ZERO_BF16 __ushort_as_bfloat16((unsigned short)0x8000U)
#define CUDART_ZERO_BF16 __ushort_as_bfloat16((unsigned short)0x0000U)
#define CUDART_ONE_BF16 __ushort_as_bfloat16((unsigned short)0x3F80U)

// ----------------------------------------------------------------------------
// conversions

inline __nv_bfloat16 __float2bfloat16(const float a) { return __ushort_as_bfloat16(cuda_harness::float_to_bf16_rn(a)); }
inline __nv_bfloat16 __float2bfloat16_rn(const float a) { return __ushort_as_bfloat16(cuda_harness::float_to_bf16_rn(a)); }
inline __nv_bfloat16 __float2bfloat16_rz(const float a) { return __ushort_as_bfloat16(cuda_harness::float_to_bf16_rz(a)); }
inline __nv_bfloat16 __float2bfloat16_rd(const float a) { return __ushort_as_bfloat16(cuda_harness::float_to_bf16_rd(a)); }
inline __nv_bfloat16 __float2bfloat16_ru(const float a) { return __ushort_as_bfloat16(cuda_harness::float_to_bf16_ru(a)); }
inline __nv_bfloat16 __double2bfloat16(const double a) { return __ushort_as_bfloat16(cuda_harness::double_to_bf16_rn(a)); }
inline float __bfloat162float(const __nv_bfloat16 a) { return cuda_harness::bf16_to_float(__bfloat16_as_ushort(a)); }

inline __nv_bfloat162 make_bfloat162(const __nv_bfloat16 x, const __nv_bfloat16 y) { return __nv_bfloat162(x, y); }
inline __nv_bfloat162 __halves2bfloat162(const __nv_bfloat16 a, const __nv_bfloat16 b) { return __nv_bfloat162(a, b); }
inline __nv_bfloat162 __bfloat162bfloat162(const __nv_bfloat16 a) { return __nv_bfloat162(a, a); }
inline __nv_bfloat16 __low2bfloat16(const __nv_bfloat162 a) { return a.x; }
inline __nv_bfloat16 __high2bfloat16(const __nv_bfloat162 a) { return a.y; }
inline float __low2float(const __nv_bfloat162 a) { return __bfloat162float(a.x); }
inline float __high2float(const __nv_bfloat162 a) { return __bfloat162float(a.y); }
inline __nv_bfloat162 __float2bfloat162_rn(const float a) { return __bfloat162bfloat162(__float2bfloat16_rn(a)); }
inline __nv_bfloat162 __floats2bfloat162_rn(const float a, const float b) {
    return __nv_bfloat162(__float2bfloat16_rn(a), __float2bfloat16_rn(b));
}
inline __nv_bfloat162 __float22bfloat162_rn(const float2 a) { return __floats2bfloat162_rn(a.x, a.y); }
inline float2 __bfloat1622float2(const __nv_bfloat162 a) { return make_float2(__low2float(a), __high2float(a)); }

// ----------------------------------------------------------------------------
// arithmetic (rounding: see the top of the file)

inline __nv_bfloat16 __hadd(const __nv_bfloat16 a, const __nv_bfloat16 b) { return __float2bfloat16_rn(float(a) + float(b)); }
inline __nv_bfloat16 __hsub(const __nv_bfloat16 a, const __nv_bfloat16 b) { return __float2bfloat16_rn(float(a) - float(b)); }
inline __nv_bfloat16 __hmul(const __nv_bfloat16 a, const __nv_bfloat16 b) { return __float2bfloat16_rn(float(a) * float(b)); }
inline __nv_bfloat16 __hdiv(const __nv_bfloat16 a, const __nv_bfloat16 b) { return __float2bfloat16_rn(float(a) / float(b)); }
inline __nv_bfloat16 __hfma(const __nv_bfloat16 a, const __nv_bfloat16 b, const __nv_bfloat16 c) {
    return __ushort_as_bfloat16(cuda_harness::fma_to_bf16(float(a), float(b), float(c)));
}
inline __nv_bfloat16 __hneg(const __nv_bfloat16 a) {
    return __ushort_as_bfloat16(static_cast<unsigned short>(__bfloat16_as_ushort(a) ^ 0x8000u));
}
inline __nv_bfloat16 __habs(const __nv_bfloat16 a) {
    return __ushort_as_bfloat16(static_cast<unsigned short>(__bfloat16_as_ushort(a) & 0x7FFFu));
}

// The packed forms: each half on its own, low (.x) and high (.y).
inline __nv_bfloat162 __hadd2(const __nv_bfloat162 a, const __nv_bfloat162 b) { return {__hadd(a.x, b.x), __hadd(a.y, b.y)}; }
inline __nv_bfloat162 __hsub2(const __nv_bfloat162 a, const __nv_bfloat162 b) { return {__hsub(a.x, b.x), __hsub(a.y, b.y)}; }
inline __nv_bfloat162 __hmul2(const __nv_bfloat162 a, const __nv_bfloat162 b) { return {__hmul(a.x, b.x), __hmul(a.y, b.y)}; }
inline __nv_bfloat162 __h2div(const __nv_bfloat162 a, const __nv_bfloat162 b) { return {__hdiv(a.x, b.x), __hdiv(a.y, b.y)}; }
inline __nv_bfloat162 __hfma2(const __nv_bfloat162 a, const __nv_bfloat162 b, const __nv_bfloat162 c) {
    return {__hfma(a.x, b.x, c.x), __hfma(a.y, b.y, c.y)};
}
inline __nv_bfloat162 __hneg2(const __nv_bfloat162 a) { return {__hneg(a.x), __hneg(a.y)}; }
inline __nv_bfloat162 __habs2(const __nv_bfloat162 a) { return {__habs(a.x), __habs(a.y)}; }

// ----------------------------------------------------------------------------
// comparisons: ordered (false if either is NaN) and unordered (true if either is NaN)

inline bool __hisnan(const __nv_bfloat16 a) { return (__bfloat16_as_ushort(a) & 0x7FFFu) > 0x7F80u; }
// -1 for -infinity, 1 for +infinity, else 0
inline int __hisinf(const __nv_bfloat16 a) {
    const unsigned short bits = __bfloat16_as_ushort(a);
    return bits == 0xFF80u ? -1 : (bits == 0x7F80u ? 1 : 0);
}

inline bool __heq(const __nv_bfloat16 a, const __nv_bfloat16 b) { return float(a) == float(b); }
inline bool __hne(const __nv_bfloat16 a, const __nv_bfloat16 b) { return float(a) < float(b) || float(a) > float(b); }
inline bool __hlt(const __nv_bfloat16 a, const __nv_bfloat16 b) { return float(a) < float(b); }
inline bool __hle(const __nv_bfloat16 a, const __nv_bfloat16 b) { return float(a) <= float(b); }
inline bool __hgt(const __nv_bfloat16 a, const __nv_bfloat16 b) { return float(a) > float(b); }
inline bool __hge(const __nv_bfloat16 a, const __nv_bfloat16 b) { return float(a) >= float(b); }
inline bool __hequ(const __nv_bfloat16 a, const __nv_bfloat16 b) { return !__hne(a, b); }
inline bool __hneu(const __nv_bfloat16 a, const __nv_bfloat16 b) { return !__heq(a, b); }
inline bool __hltu(const __nv_bfloat16 a, const __nv_bfloat16 b) { return !__hge(a, b); }
inline bool __hleu(const __nv_bfloat16 a, const __nv_bfloat16 b) { return !__hgt(a, b); }
inline bool __hgtu(const __nv_bfloat16 a, const __nv_bfloat16 b) { return !__hle(a, b); }
inline bool __hgeu(const __nv_bfloat16 a, const __nv_bfloat16 b) { return !__hlt(a, b); }

// The packed forms that return one bool: true when both halves compare true.
inline bool __hbeq2(const __nv_bfloat162 a, const __nv_bfloat162 b) { return __heq(a.x, b.x) && __heq(a.y, b.y); }
inline bool __hbneu2(const __nv_bfloat162 a, const __nv_bfloat162 b) { return __hneu(a.x, b.x) && __hneu(a.y, b.y); }
inline bool __hblt2(const __nv_bfloat162 a, const __nv_bfloat162 b) { return __hlt(a.x, b.x) && __hlt(a.y, b.y); }
inline bool __hble2(const __nv_bfloat162 a, const __nv_bfloat162 b) { return __hle(a.x, b.x) && __hle(a.y, b.y); }
inline bool __hbgt2(const __nv_bfloat162 a, const __nv_bfloat162 b) { return __hgt(a.x, b.x) && __hgt(a.y, b.y); }
inline bool __hbge2(const __nv_bfloat162 a, const __nv_bfloat162 b) { return __hge(a.x, b.x) && __hge(a.y, b.y); }

// ----------------------------------------------------------------------------
// operators, as cuda_bf16.hpp defines them (in terms of the intrinsics above)

inline __nv_bfloat16 operator+(const __nv_bfloat16& a, const __nv_bfloat16& b) { return __hadd(a, b); }
inline __nv_bfloat16 operator-(const __nv_bfloat16& a, const __nv_bfloat16& b) { return __hsub(a, b); }
inline __nv_bfloat16 operator*(const __nv_bfloat16& a, const __nv_bfloat16& b) { return __hmul(a, b); }
inline __nv_bfloat16 operator/(const __nv_bfloat16& a, const __nv_bfloat16& b) { return __hdiv(a, b); }
inline __nv_bfloat16& operator+=(__nv_bfloat16& a, const __nv_bfloat16& b) { return a = __hadd(a, b); }
inline __nv_bfloat16& operator-=(__nv_bfloat16& a, const __nv_bfloat16& b) { return a = __hsub(a, b); }
inline __nv_bfloat16& operator*=(__nv_bfloat16& a, const __nv_bfloat16& b) { return a = __hmul(a, b); }
inline __nv_bfloat16& operator/=(__nv_bfloat16& a, const __nv_bfloat16& b) { return a = __hdiv(a, b); }
inline __nv_bfloat16& operator++(__nv_bfloat16& h) { return h = __hadd(h, CUDART_ONE_BF16); }
inline __nv_bfloat16& operator--(__nv_bfloat16& h) { return h = __hsub(h, CUDART_ONE_BF16); }
inline __nv_bfloat16 operator++(__nv_bfloat16& h, int) {
    const __nv_bfloat16 old = h;
    ++h;
    return old;
}
inline __nv_bfloat16 operator--(__nv_bfloat16& h, int) {
    const __nv_bfloat16 old = h;
    --h;
    return old;
}
inline __nv_bfloat16 operator+(const __nv_bfloat16& h) { return h; }
inline __nv_bfloat16 operator-(const __nv_bfloat16& h) { return __hneg(h); }
inline bool operator==(const __nv_bfloat16& a, const __nv_bfloat16& b) { return __heq(a, b); }
inline bool operator!=(const __nv_bfloat16& a, const __nv_bfloat16& b) { return __hneu(a, b); }
inline bool operator<(const __nv_bfloat16& a, const __nv_bfloat16& b) { return __hlt(a, b); }
inline bool operator<=(const __nv_bfloat16& a, const __nv_bfloat16& b) { return __hle(a, b); }
inline bool operator>(const __nv_bfloat16& a, const __nv_bfloat16& b) { return __hgt(a, b); }
inline bool operator>=(const __nv_bfloat16& a, const __nv_bfloat16& b) { return __hge(a, b); }

inline __nv_bfloat162 operator+(const __nv_bfloat162& a, const __nv_bfloat162& b) { return __hadd2(a, b); }
inline __nv_bfloat162 operator-(const __nv_bfloat162& a, const __nv_bfloat162& b) { return __hsub2(a, b); }
inline __nv_bfloat162 operator*(const __nv_bfloat162& a, const __nv_bfloat162& b) { return __hmul2(a, b); }
inline __nv_bfloat162 operator/(const __nv_bfloat162& a, const __nv_bfloat162& b) { return __h2div(a, b); }
inline __nv_bfloat162& operator+=(__nv_bfloat162& a, const __nv_bfloat162& b) { return a = __hadd2(a, b); }
inline __nv_bfloat162& operator-=(__nv_bfloat162& a, const __nv_bfloat162& b) { return a = __hsub2(a, b); }
inline __nv_bfloat162& operator*=(__nv_bfloat162& a, const __nv_bfloat162& b) { return a = __hmul2(a, b); }
inline __nv_bfloat162& operator/=(__nv_bfloat162& a, const __nv_bfloat162& b) { return a = __h2div(a, b); }
inline __nv_bfloat162& operator++(__nv_bfloat162& h) { return h = __hadd2(h, __bfloat162bfloat162(CUDART_ONE_BF16)); }
inline __nv_bfloat162& operator--(__nv_bfloat162& h) { return h = __hsub2(h, __bfloat162bfloat162(CUDART_ONE_BF16)); }
inline __nv_bfloat162 operator++(__nv_bfloat162& h, int) {
    const __nv_bfloat162 old = h;
    ++h;
    return old;
}
inline __nv_bfloat162 operator--(__nv_bfloat162& h, int) {
    const __nv_bfloat162 old = h;
    --h;
    return old;
}
inline __nv_bfloat162 operator+(const __nv_bfloat162& h) { return h; }
inline __nv_bfloat162 operator-(const __nv_bfloat162& h) { return __hneg2(h); }
// Both halves must compare true; so a != b is "both halves differ", not !(a == b).
inline bool operator==(const __nv_bfloat162& a, const __nv_bfloat162& b) { return __hbeq2(a, b); }
inline bool operator!=(const __nv_bfloat162& a, const __nv_bfloat162& b) { return __hbneu2(a, b); }
inline bool operator<(const __nv_bfloat162& a, const __nv_bfloat162& b) { return __hblt2(a, b); }
inline bool operator<=(const __nv_bfloat162& a, const __nv_bfloat162& b) { return __hble2(a, b); }
inline bool operator>(const __nv_bfloat162& a, const __nv_bfloat162& b) { return __hbgt2(a, b); }
inline bool operator>=(const __nv_bfloat162& a, const __nv_bfloat162& b) { return __hbge2(a, b); }
