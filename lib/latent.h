/* The elementwise pieces around the latent variable (MODEL.md §4-5): the
 * reparameterisation z = μ + σ⊙ε with σ = exp(log σ), its KL to N(0, I),
 * and their derivatives. The canvas's side of the loss is lib/canvas.h.
 *
 * exp() guard: σ = exp(min(log σ, LATENT_LOGSIGMA_MAX)). Below the limit
 * (every case where σ² is finite in float32) this is the model's math; above
 * it σ is held at e^40 and its derivative is 0, so a diverging encoder gives
 * a huge but finite loss that the trainer can refuse, not inf − inf = NaN. */
#ifndef DCRW_LIB_LATENT_H
#define DCRW_LIB_LATENT_H

#include <stddef.h>

#define LATENT_LOGSIGMA_MAX 40.0f

/* z = μ + σ⊙ε over n values */
void dcrw_latent_sample(size_t n, const float *mu, const float *logsigma, const float *eps,
                        float *z);

/* kl[b] += Σ_j ½(μ² + σ² − 2 log σ − 1) for each of B rows of Z values */
void dcrw_latent_kl(int B, int Z, const float *mu, const float *logsigma, double *kl);

/* acc[b] += Σ_j ½ε² + log σ − ½z², which is log N(z; 0, I) − log N(z; μ,
 * σ²) for z = μ + σ⊙ε (the ½ log 2π terms cancel), for each of B rows of Z
 * values: the log importance ratio of a draw, less its log-likelihood. */
void dcrw_latent_log_ratio(int B, int Z, const float *z, const float *eps, const float *logsigma,
                           double *acc);

/* Backward of z = μ + σ⊙ε and of scale_kl·KL, in place: on entry mu holds
 * μ and logsigma holds log σ; on return they hold dL/dμ and dL/dlog σ.
 * gz = dL/dz and gze = dL/dz ⊙ ε, each summed over the draws that share
 * this μ, σ (one draw, or T for dcrw-noread); both NULL means 0. */
void dcrw_latent_backward(size_t n, float *mu, float *logsigma, const float *gz, const float *gze,
                          float scale_kl);

#endif
