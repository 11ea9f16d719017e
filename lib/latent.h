/* The elementwise pieces around the latent variable and the loss
 * (MODEL.md §4-5): the reparameterisation z = μ + σ⊙ε with σ = exp(log σ),
 * its KL to N(0, I), the Bernoulli reconstruction loss on the canvas, and
 * their derivatives.
 *
 * exp() guard: σ = exp(min(log σ, LATENT_LOGSIGMA_MAX)). Below the limit
 * (every case where σ² is finite in float32) this is the model's math; above
 * it σ is held at e^40 and its derivative is 0, so a diverging encoder gives
 * a huge but finite loss that the trainer can refuse, not inf − inf = NaN. */
#ifndef DCRW_LIB_LATENT_H
#define DCRW_LIB_LATENT_H

#include <math.h>

#include "vmath.h"

#define LATENT_LOGSIGMA_MAX 40.0f

static inline float sigmoid_f(float u) {
    return vsigmoidf(u);
}

/* z = μ + σ⊙ε over n values */
void dcrw_latent_sample(size_t n, const float *mu, const float *logsigma, const float *eps,
                        float *z);

/* kl[b] += Σ_j ½(μ² + σ² − 2 log σ − 1) for each of B rows of Z values */
void dcrw_latent_kl(int B, int Z, const float *mu, const float *logsigma, double *kl);

/* Backward of z = μ + σ⊙ε and of scale_kl·KL, in place: on entry mu holds
 * μ and logsigma holds log σ; on return they hold dL/dμ and dL/dlog σ.
 * gz = dL/dz and gze = dL/dz ⊙ ε, each summed over the draws that share
 * this μ, σ (one draw, or T for dcrw-noread); both NULL means 0. */
void dcrw_latent_backward(size_t n, float *mu, float *logsigma, const float *gz, const float *gze,
                          float scale_kl);

/* lx[b] += Σ_p softplus(c) − x·c, the stable −log Bernoulli(x | σ(c)) */
void dcrw_bernoulli_loss(int B, int P, const float *c, const float *x, double *lx);
/* dc = scale·(σ(c) − x) */
void dcrw_bernoulli_backward(size_t n, const float *c, const float *x, float scale, float *dc);

/* out = σ(in) */
void dcrw_sigmoid_array(size_t n, const float *in, float *out);

/* x̂ = x − σ(c) for B rows of P values; x̂ rows at stride ldo */
void dcrw_xhat_rows(int B, int P, const float *x, const float *c, float *xhat, int ldo);

/* Backward of x̂ = x − σ(c): dc −= σ(c)(1 − σ(c))⊙dx̂ (dx̂ rows at stride ldd) */
void dcrw_xhat_rows_backward(int B, int P, const float *c, const float *dxhat, int ldd, float *dc);

#endif
