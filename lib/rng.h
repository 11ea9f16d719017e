/* Counter-based random numbers: every draw is a pure function of
 * (key, counter), so a stream can be split across threads, ranks or
 * checkpoints without changing a single number. The mixer is SplitMix64's
 * finaliser (Steele et al. 2014), which passes BigCrush as a counter hash. */
#ifndef DCRW_LIB_RNG_H
#define DCRW_LIB_RNG_H

#include <math.h>
#include <stdint.h>

#include "vmath.h"

static inline uint64_t rng_mix(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A key for a sub-stream: a seed and up to two stream ids. */
static inline uint64_t rng_key(uint64_t seed, uint64_t a, uint64_t b) {
    return rng_mix(rng_mix(rng_mix(seed) ^ a) ^ b);
}

static inline uint64_t rng_u64(uint64_t key, uint64_t counter) {
    return rng_mix(key ^ rng_mix(counter));
}

/* Uniform in [0, 1) with 24 random bits: exactly representable in float. */
static inline float rng_uniform(uint64_t key, uint64_t counter) {
    return (float)(rng_u64(key, counter) >> 40) * (1.0f / 16777216.0f);
}

/* Standard normal by Box-Muller on two 32-bit halves of one draw, in double
 * so the tails are right; (0, 1] avoids log(0). */
static inline float rng_normal(uint64_t key, uint64_t counter) {
    uint64_t u = rng_u64(key, counter);
    double u1 = ((double)(u >> 32) + 1.0) * (1.0 / 4294967296.0);
    double u2 = (double)(u & 0xffffffffu) * (1.0 / 4294967296.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* Two standard normals from one draw (Box-Muller, both branches), in
 * float: half the logarithms of rng_normal, for the bulk noise of a pass,
 * with the branch-free log and sin/cos of lib/vmath.h so a loop of them
 * vectorises. u1 uses 24 bits and is in (0, 1], so the tails reach
 * |z| = 5.8; the angle is 2π·u2 for 24 more bits. */
static inline void rng_normal2(uint64_t key, uint64_t counter, float *z0, float *z1) {
    uint64_t u = rng_u64(key, counter);
    float u1 = ((float)(int32_t)(u >> 40) + 1.0f) * (1.0f / 16777216.0f);
    float u2 = (float)(int32_t)((u >> 8) & 0xffffffu) * (1.0f / 16777216.0f);
    float r = sqrtf(-2.0f * vlogf(u1));
    float s, c;
    vsincos_turns(u2, &s, &c);
    *z0 = r * c;
    *z1 = r * s;
}

#endif
