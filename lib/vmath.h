/* exp, sigmoid and tanh for the elementwise loops (LSTM gates, canvas,
 * loss), written without branches or calls so the compiler vectorises the
 * loops that use them; glibc's expf/tanhf are scalar calls and took ~20% of
 * a DRAW step.
 *
 * vexpf: Cephes' expf (range reduction by ln 2 in two parts, degree-6
 * polynomial), error below 2 ulp for x in [−87.3, 88.3]; outside that the
 * argument is clamped, so the result saturates at ~1.2e-38 and ~2.1e38
 * instead of 0 and inf (no inf/inf or 0·inf further on); NaN stays NaN. The rounding to
 * the nearest integer uses the 1.5·2^23 trick, exact for |x| < 2^22. */
#ifndef DCRW_LIB_VMATH_H
#define DCRW_LIB_VMATH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Hot elementwise kernels are compiled three times, for AVX-512 (x86-64-v4,
 * 16 lanes), AVX2+FMA (8 lanes) and the baseline, and the loader picks one
 * (GNU ifunc): on a given machine always the same one, so the same results.
 * Define DCRW_NO_CLONES to build only the baseline. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) &&       \
    !defined(DCRW_NO_CLONES) && !defined(__SANITIZE_ADDRESS__)
#define DCRW_VECTOR_CLONES                                                                         \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define DCRW_VECTOR_CLONES
#endif

static inline float vexpf(float x0) {
    /* written so that NaN takes the clamp (the integer conversion below of
     * a NaN would be undefined) and is restored at the end */
    float x = x0 > -87.3f ? x0 : -87.3f;
    x = x < 88.3f ? x : 88.3f;
    const float big = 12582912.0f; /* 1.5·2^23 */
    float n = (x * 1.44269504088896341f + big) - big;
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * r * r + r + 1.0f;
    int32_t e = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &e, sizeof scale);
    return x0 != x0 ? x0 : y * scale;
}

/* Σ x in double, in eight running sums, one per lane, added at the end: a
 * fixed order, so the same result every time, and a loop that vectorises
 * where a single running sum is a chain of dependent adds. One body for
 * float and double arrays. */
#define DCRW_DEFINE_SUM_LANES(name, type)                                                          \
    static inline double name(const type *x, size_t n) {                                           \
        double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                                  \
        size_t i = 0;                                                                              \
        for (; i + 8 <= n; i += 8)                                                                 \
            for (int j = 0; j < 8; j++) acc[j] += x[i + j];                                        \
        double s = 0.0;                                                                            \
        for (; i < n; i++) s += x[i];                                                              \
        for (int j = 0; j < 8; j++) s += acc[j];                                                   \
        return s;                                                                                  \
    }
DCRW_DEFINE_SUM_LANES(vsum_floats, float)
DCRW_DEFINE_SUM_LANES(vsum_doubles, double)

/* 1 if x is inf or NaN (its exponent bits all ones), else 0: ORed over a
 * loop, it vectorises where a float sum's order would forbid it */
static inline uint32_t vnonfinite(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return (u & 0x7f800000u) == 0x7f800000u;
}

static inline float vsigmoidf(float x) {
    return 1.0f / (1.0f + vexpf(-x));
}

/* tanh x = 1 − 2/(e^{2x} + 1): absolute error ~1e-7, which is what the
 * LSTM's products see */
static inline float vtanhf(float x) {
    return 1.0f - 2.0f / (vexpf(2.0f * x) + 1.0f);
}

/* log x for positive normal x (Cephes' logf: the mantissa in [√½, √2) and
 * a degree-8 polynomial, ~1 ulp); no checks: the callers' x are in
 * [2^−24, 1]. */
static inline float vlogf(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    float e = (float)((int32_t)(u >> 23) - 126);
    u = (u & 0x007fffffu) | 0x3f000000u; /* the mantissa in [0.5, 1) */
    float m;
    memcpy(&m, &u, sizeof m);
    const int low = m < 0.707106781186547524f;
    e = low ? e - 1.0f : e;
    const float a = (low ? m + m : m) - 1.0f;
    const float z = a * a;
    float p = 7.0376836292e-2f;
    p = p * a - 1.1514610310e-1f;
    p = p * a + 1.1676998740e-1f;
    p = p * a - 1.2420140846e-1f;
    p = p * a + 1.4249322787e-1f;
    p = p * a - 1.6668057665e-1f;
    p = p * a + 2.0000714765e-1f;
    p = p * a - 2.4999993993e-1f;
    p = p * a + 3.3333331174e-1f;
    float y = a * z * p + e * -2.12194440e-4f - 0.5f * z;
    return (a + y) + e * 0.693359375f;
}

/* sin and cos of 2π·t for t in [0, 1): the quadrant j = round(4t) and
 * 4t − j are exact in float, so the only rounding of the reduction is
 * x = (4t − j)·π/2 in [−π/4, π/4]; then Cephes' sinf and cosf
 * polynomials (~1 ulp) and the quadrant's swap and signs. */
static inline void vsincos_turns(float t, float *s, float *c) {
    const float big = 12582912.0f; /* 1.5·2^23: rounds to an integer */
    const float q = 4.0f * t;
    const float jf = (q + big) - big;
    const float x = (q - jf) * 1.57079632679489662f;
    const float z = x * x;
    const float sn =
        ((-1.9515295891e-4f * z + 8.3321608736e-3f) * z - 1.6666654611e-1f) * z * x + x;
    const float cs =
        ((2.443315711809948e-5f * z - 1.388731625493765e-3f) * z + 4.166664568298827e-2f) * z * z -
        0.5f * z + 1.0f;
    const int j = (int)jf & 3;
    const float sv = j & 1 ? cs : sn, cv = j & 1 ? sn : cs;
    *s = j & 2 ? -sv : sv;
    *c = (j + 1) & 2 ? -cv : cv;
}

/* log1p(e^−|v|): softplus v = log(1 + e^v) less max(v, 0), for the
 * Bernoulli loss, which adds max(v, 0) − x·v to it (exact for x = 1, v > 0,
 * where softplus v − v would cancel). log1p(y) for y in (0, 1] is
 * log(u)·y/(u − 1) for the rounded u = 1 + y: Kahan's correction, which
 * keeps small y's relative error at a few ulp where log(u) alone would
 * lose it. */
static inline float vsoftplus_tailf(float v) {
    const float y = vexpf(v > 0.0f ? -v : v);
    const float u = 1.0f + y;
    const float d = u - 1.0f;
    return d != 0.0f ? vlogf(u) * (y / d) : y;
}

#endif
