/* The canvas's elementwise work of §4-5: σ(c), x̂ = x − σ(c), and the
 * Bernoulli loss. */
#include <math.h>
#include <stddef.h>

#include "canvas.h"
#include "vmath.h"

/* The terms in a vector loop, then their sum in double in order (a
 * vectorised sum would reassociate it). */
DCRW_VECTOR_CLONES
static void bernoulli_terms(int P, const float *restrict c, const float *restrict x,
                            float *restrict out) {
    for (int p = 0; p < P; p++) {
        const float v = c[p];
        out[p] = ((v > 0.0f ? v : 0.0f) - x[p] * v) + vsoftplus_tailf(v);
    }
}

void dcrw_bernoulli_loss(int B, int P, const float *c, const float *x, double *lx) {
    float terms[256];
    for (int b = 0; b < B; b++) {
        const float *cb = c + (size_t)b * P, *xb = x + (size_t)b * P;
        double acc = 0.0;
        for (int p0 = 0; p0 < P; p0 += 256) {
            const int n = P - p0 < 256 ? P - p0 : 256;
            bernoulli_terms(n, cb + p0, xb + p0, terms);
            for (int p = 0; p < n; p++) acc += terms[p];
        }
        lx[b] += acc;
    }
}

void dcrw_bernoulli_backward(size_t n, const float *c, const float *x, float scale, float *dc) {
    for (size_t i = 0; i < n; i++) dc[i] = scale * (vsigmoidf(c[i]) - x[i]);
}

DCRW_VECTOR_CLONES
static void sigmoid_kernel(size_t n, const float *restrict in, float *restrict out) {
    for (size_t i = 0; i < n; i++) out[i] = vsigmoidf(in[i]);
}

void dcrw_sigmoid_array(size_t n, const float *in, float *out) {
    sigmoid_kernel(n, in, out);
}

DCRW_VECTOR_CLONES
static void xhat_row(int P, const float *restrict x, const float *restrict c, float *restrict out) {
    for (int i = 0; i < P; i++) out[i] = x[i] - vsigmoidf(c[i]);
}

void dcrw_xhat_rows(int B, int P, const float *x, const float *c, float *xhat, int ldo) {
    for (int b = 0; b < B; b++)
        xhat_row(P, x + (size_t)b * P, c + (size_t)b * P, xhat + (size_t)b * ldo);
}

/* The backward's x̂ and σ′(c) = σ(1 − σ) from one σ: the read's backward
 * needs x̂ and the canvas's needs σ′, and the exponential and division of
 * σ are most of the cost of either. */
DCRW_VECTOR_CLONES
static void xhat_row_deriv(int P, const float *restrict x, const float *restrict c,
                           float *restrict out, float *restrict dsig) {
    for (int i = 0; i < P; i++) {
        float s = vsigmoidf(c[i]);
        out[i] = x[i] - s;
        dsig[i] = s * (1.0f - s);
    }
}

void dcrw_xhat_rows_deriv(int B, int P, const float *x, const float *c, float *xhat, float *dsig) {
    for (int b = 0; b < B; b++) {
        const size_t o = (size_t)b * P;
        xhat_row_deriv(P, x + o, c + o, xhat + o, dsig + o);
    }
}

DCRW_VECTOR_CLONES
static void xhat_row_backward(int P, const float *restrict c, const float *restrict dx,
                              float *restrict dc) {
    for (int i = 0; i < P; i++) {
        float s = vsigmoidf(c[i]);
        dc[i] -= s * (1.0f - s) * dx[i];
    }
}

DCRW_VECTOR_CLONES
static void xhat_row_backward_kept(int P, const float *restrict dsig, const float *restrict dx,
                                   float *restrict dc) {
    for (int i = 0; i < P; i++) dc[i] -= dsig[i] * dx[i];
}

void dcrw_xhat_rows_backward(int B, int P, const float *c, const float *dsig, const float *dxhat,
                             int ldd, float *dc) {
    for (int b = 0; b < B; b++) {
        const size_t o = (size_t)b * P;
        if (dsig)
            xhat_row_backward_kept(P, dsig + o, dxhat + (size_t)b * ldd, dc + o);
        else
            xhat_row_backward(P, c + o, dxhat + (size_t)b * ldd, dc + o);
    }
}
