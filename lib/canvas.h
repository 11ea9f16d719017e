/* The elementwise work on the canvas (MODEL.md §4-5): the images σ(c), the
 * error image x̂ = x − σ(c) the encoder reads, and the Bernoulli
 * reconstruction loss −log p(x | σ(c)) with their derivatives. */
#ifndef DCRW_LIB_CANVAS_H
#define DCRW_LIB_CANVAS_H

#include <stddef.h>

/* lx[b] += Σ_p softplus(c) − x·c, the stable −log Bernoulli(x | σ(c)) */
void dcrw_bernoulli_loss(int B, int P, const float *c, const float *x, double *lx);
/* dc = scale·(σ(c) − x) */
void dcrw_bernoulli_backward(size_t n, const float *c, const float *x, float scale, float *dc);

/* out = σ(in) */
void dcrw_sigmoid_array(size_t n, const float *in, float *out);

/* x̂ = x − σ(c) for B rows of P values; x̂ rows at stride ldo */
void dcrw_xhat_rows(int B, int P, const float *x, const float *c, float *xhat, int ldo);

/* x̂ as above (rows at stride P) and σ′(c) = σ(c)(1 − σ(c)) beside it, for
 * the backward */
void dcrw_xhat_rows_deriv(int B, int P, const float *x, const float *c, float *xhat, float *dsig);

/* Backward of x̂ = x − σ(c): dc −= σ′(c)⊙dx̂ (dx̂ rows at stride ldd), σ′
 * from dcrw_xhat_rows_deriv, or from c when dsig is NULL; the same bits
 * either way */
void dcrw_xhat_rows_backward(int B, int P, const float *c, const float *dsig, const float *dxhat,
                             int ldd, float *dc);

#endif
