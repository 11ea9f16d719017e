/* The canvas's elementwise work of §4-5: σ(c), x̂ = x − σ(c), and the
 * Bernoulli loss. */
#include <math.h>
#include <stddef.h>

#include "canvas.h"
#include "vmath.h"

void dcrw_bernoulli_loss(int B, int P, const float *c, const float *x, double *lx) {
    for (int b = 0; b < B; b++) {
        const float *cb = c + (size_t)b * P, *xb = x + (size_t)b * P;
        double acc = 0.0;
        for (int p = 0; p < P; p++) {
            float v = cb[p];
            float sp = (v > 0.0f ? v : 0.0f) + log1pf(expf(-fabsf(v)));
            acc += (double)sp - (double)xb[p] * v;
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

DCRW_VECTOR_CLONES
static void xhat_row_backward(int P, const float *restrict c, const float *restrict dx,
                              float *restrict dc) {
    for (int i = 0; i < P; i++) {
        float s = vsigmoidf(c[i]);
        dc[i] -= s * (1.0f - s) * dx[i];
    }
}

void dcrw_xhat_rows_backward(int B, int P, const float *c, const float *dxhat, int ldd, float *dc) {
    for (int b = 0; b < B; b++)
        xhat_row_backward(P, c + (size_t)b * P, dxhat + (size_t)b * ldd, dc + (size_t)b * P);
}
