/* Reparameterisation, KL, Bernoulli loss: the elementwise work of §4-5. */
#include <math.h>
#include <stddef.h>

#include "latent.h"

static inline float sigma_of(float ls) {
    return vexpf(ls < LATENT_LOGSIGMA_MAX ? ls : LATENT_LOGSIGMA_MAX);
}

void dcrw_latent_sample(size_t n, const float *mu, const float *logsigma, const float *eps,
                        float *z) {
    for (size_t i = 0; i < n; i++) z[i] = mu[i] + sigma_of(logsigma[i]) * eps[i];
}

void dcrw_latent_kl(int B, int Z, const float *mu, const float *logsigma, double *kl) {
    for (int b = 0; b < B; b++) {
        const float *m = mu + (size_t)b * Z, *l = logsigma + (size_t)b * Z;
        double acc = 0.0;
        for (int j = 0; j < Z; j++) {
            double s = sigma_of(l[j]);
            acc += 0.5 * ((double)m[j] * m[j] + s * s - 2.0 * l[j] - 1.0);
        }
        kl[b] += acc;
    }
}

void dcrw_latent_backward(size_t n, float *mu, float *logsigma, const float *gz, const float *gze,
                          float scale_kl) {
    for (size_t i = 0; i < n; i++) {
        float ls = logsigma[i];
        float s = sigma_of(ls);
        float live = ls < LATENT_LOGSIGMA_MAX ? 1.0f : 0.0f;
        /* d/dlogσ of ½(σ² − 2 logσ) is σ² − 1; of σε it is σε */
        logsigma[i] = live * ((gze ? gze[i] : 0.0f) * s + scale_kl * s * s) - scale_kl;
        mu[i] = (gz ? gz[i] : 0.0f) + scale_kl * mu[i];
    }
}

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
    for (size_t i = 0; i < n; i++) dc[i] = scale * (sigmoid_f(c[i]) - x[i]);
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
