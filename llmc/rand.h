// rand.h: a small deterministic random number generator (xorshift64*), identical on every machine.
//
// Weight initialization and sampling must give the same numbers everywhere, and a run resumed
// from a checkpoint must continue the same sequence, so the whole generator state is one plain
// uint64_t that the caller owns and can save. Only integer arithmetic drives the state;
// floating point is used only to turn the integers into the requested distributions.
#pragma once

#include <cmath>

#include "utils.h"

// ----------------------------------------------------------------------------
// uniform integers

// xorshift64* is stuck at 0 forever when its state is 0, so a 0 state is replaced by this
// fixed value; a seed of 0 then still gives a good (and still deterministic) sequence.
constexpr uint64_t RAND_ZERO_STATE_REPLACEMENT = 0x9E3779B97F4A7C15ull;

inline uint32_t random_u32(uint64_t* state) {
    if (*state == 0) { *state = RAND_ZERO_STATE_REPLACEMENT; }
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    // the multiply scrambles the low-quality low bits; the top 32 bits are the best ones
    return (uint32_t)((*state * 0x2545F4914F6CDD1Dull) >> 32);
}

// ----------------------------------------------------------------------------
// uniform floats

// in [0, 1): 24 random bits fill a float mantissa exactly, so the division is exact and
// can never round up to 1.0
inline float random_f32(uint64_t* state) {
    return (float)(random_u32(state) >> 8) / 16777216.0f;
}

// ----------------------------------------------------------------------------
// normal distribution

// Box-Muller. Each call uses two uniforms and returns one value, throwing the second normal
// away: keeping it would need state beyond the single uint64 a checkpoint saves.
// The math is done in double so that last-bit differences between math libraries
// vanish when the result is rounded to float.
inline float random_normal(uint64_t* state) {
    double u1 = 1.0 - (double)random_f32(state); // in (0, 1], so log(u1) is finite
    double u2 = (double)random_f32(state);
    const double two_pi = 6.283185307179586476925286766559;
    return (float)(sqrt(-2.0 * log(u1)) * cos(two_pi * u2));
}

inline void normal_fill(float* out, long n, float mean, float std, uint64_t* state) {
    for (long i = 0; i < n; i++) { out[i] = mean + std * random_normal(state); }
}

// ----------------------------------------------------------------------------
// sampling

// Returns the first index whose cumulative probability passes coin (coin in [0, 1)).
// When the probabilities sum to slightly less than 1 through rounding, a coin beyond the sum
// returns the last index instead of running off the end.
inline int sample_mult(const float* probs, int n, float coin) {
    if (n <= 0) { die("sample_mult", "this is a bug in the caller", "cannot sample from %d probabilities", n); }
    float cdf = 0.0f;
    for (int i = 0; i < n; i++) {
        cdf += probs[i];
        if (coin < cdf) { return i; }
    }
    return n - 1;
}
