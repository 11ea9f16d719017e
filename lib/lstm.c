/* LSTM cell, forward and backward over a batch: one branch-free row kernel
 * each (vmath.h), which the compiler vectorises, cloned for AVX2+FMA where
 * the CPU has it.
 *
 * Only the elementwise cell lives here. The matrix products that feed it
 * (x·W_ihᵀ, h·W_hhᵀ) and their gradients are in lib/forward.c and
 * lib/backward.c, on purpose: there they share one sgemm with the bias or a
 * hoisted input product, and the weight gradients of all T steps are one
 * sgemm over T·B rows after the backward loop, which a per-step LSTM layer
 * here could not do. */
#include <stddef.h>

#include "lstm.h"
#include "vmath.h"

DCRW_VECTOR_CLONES
static void cell_row(int S, float *restrict q, const float *restrict a, const float *restrict sp,
                     float *restrict s, float *restrict th, float *restrict h) {
    for (int k = 0; k < S; k++) {
        float i = vsigmoidf(q[k] + a[k]), f = vsigmoidf(q[S + k] + a[S + k]),
              g = vtanhf(q[2 * S + k] + a[2 * S + k]), o = vsigmoidf(q[3 * S + k] + a[3 * S + k]);
        float sn = i * g + f * sp[k];
        float t = vtanhf(sn);
        q[k] = i;
        q[S + k] = f;
        q[2 * S + k] = g;
        q[3 * S + k] = o;
        s[k] = sn;
        th[k] = t;
        h[k] = o * t;
    }
}

void dcrw_lstm_cell_forward(int B, int S, float *gates, const float *add, int ld_add,
                            const float *s_prev, float *s, float *tanh_s, float *h) {
    for (int b = 0; b < B; b++) {
        const size_t r = (size_t)b * S;
        cell_row(S, gates + 4 * r, add + (size_t)b * ld_add, s_prev + r, s + r, tanh_s + r, h + r);
    }
}

DCRW_VECTOR_CLONES
static void cell_row_backward(int S, float *restrict q, const float *restrict sp,
                              const float *restrict th, const float *restrict dh,
                              float *restrict ds) {
    for (int k = 0; k < S; k++) {
        float i = q[k], f = q[S + k], g = q[2 * S + k], o = q[3 * S + k], t = th[k];
        float dst = dh[k] * o * (1.0f - t * t) + ds[k];
        q[k] = dst * g * i * (1.0f - i);
        q[S + k] = dst * sp[k] * f * (1.0f - f);
        q[2 * S + k] = dst * i * (1.0f - g * g);
        q[3 * S + k] = dh[k] * t * o * (1.0f - o);
        ds[k] = dst * f;
    }
}

void dcrw_lstm_cell_backward(int B, int S, float *gates, const float *s_prev, const float *tanh_s,
                             const float *dh, float *ds) {
    for (int b = 0; b < B; b++) {
        const size_t r = (size_t)b * S;
        cell_row_backward(S, gates + 4 * r, s_prev + r, tanh_s + r, dh + r, ds + r);
    }
}
