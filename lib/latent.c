/* Reparameterisation and KL: the latent variable's elementwise work of §4-5. */
#include <math.h>
#include <stddef.h>

#include "latent.h"
#include "vmath.h"

static inline float sigma_of(float ls) {
    return vexpf(ls < LATENT_LOGSIGMA_MAX ? ls : LATENT_LOGSIGMA_MAX);
}

DCRW_VECTOR_CLONES
static void latent_sample(size_t n, const float *restrict mu, const float *restrict logsigma,
                          const float *restrict eps, float *restrict z) {
    for (size_t i = 0; i < n; i++) z[i] = mu[i] + sigma_of(logsigma[i]) * eps[i];
}

/* plain symbols: the clones' ifuncs stay inside this file */
void dcrw_latent_sample(size_t n, const float *mu, const float *logsigma, const float *eps,
                        float *z) {
    latent_sample(n, mu, logsigma, eps, z);
}

/* The terms of a row first, in a loop that vectorises, then their sum in
 * order (a vectorised sum would reassociate it). */
DCRW_VECTOR_CLONES
static void latent_kl(int B, int Z, const float *mu, const float *logsigma, double *kl) {
    enum { CHUNK = 256 };
    double t[CHUNK];
    for (int b = 0; b < B; b++) {
        const float *m = mu + (size_t)b * Z, *l = logsigma + (size_t)b * Z;
        double acc = 0.0;
        for (int j0 = 0; j0 < Z; j0 += CHUNK) {
            const int n = Z - j0 < CHUNK ? Z - j0 : CHUNK;
            for (int j = 0; j < n; j++) {
                const double s = sigma_of(l[j0 + j]), mj = m[j0 + j];
                t[j] = 0.5 * (mj * mj + s * s - 2.0 * l[j0 + j] - 1.0);
            }
            for (int j = 0; j < n; j++) acc += t[j];
        }
        kl[b] += acc;
    }
}

void dcrw_latent_kl(int B, int Z, const float *mu, const float *logsigma, double *kl) {
    latent_kl(B, Z, mu, logsigma, kl);
}

void dcrw_latent_log_ratio(int B, int Z, const float *z, const float *eps, const float *logsigma,
                           double *acc) {
    for (int b = 0; b < B; b++) {
        const size_t r = (size_t)b * Z;
        double s = 0.0;
        for (int j = 0; j < Z; j++) {
            /* log σ as the draw used it (held at LATENT_LOGSIGMA_MAX) */
            const float ls =
                logsigma[r + j] < LATENT_LOGSIGMA_MAX ? logsigma[r + j] : LATENT_LOGSIGMA_MAX;
            s += 0.5 * ((double)eps[r + j] * eps[r + j] - (double)z[r + j] * z[r + j]) + ls;
        }
        acc[b] += s;
    }
}

/* gz and gze may be NULL (no gradient reaches z): read as zeros */
DCRW_VECTOR_CLONES
static void latent_backward(size_t n, float *restrict mu, float *restrict logsigma,
                            const float *restrict gz, const float *restrict gze, float scale_kl) {
    for (size_t i = 0; i < n; i++) {
        float ls = logsigma[i];
        float s = sigma_of(ls);
        float live = ls < LATENT_LOGSIGMA_MAX ? 1.0f : 0.0f;
        /* d/dlogσ of ½(σ² − 2 logσ) is σ² − 1; of σε it is σε */
        logsigma[i] = live * ((gze ? gze[i] : 0.0f) * s + scale_kl * s * s) - scale_kl;
        mu[i] = (gz ? gz[i] : 0.0f) + scale_kl * mu[i];
    }
}

void dcrw_latent_backward(size_t n, float *mu, float *logsigma, const float *gz, const float *gze,
                          float scale_kl) {
    latent_backward(n, mu, logsigma, gz, gze, scale_kl);
}
