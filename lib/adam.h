/* The optimizer: global-norm gradient clipping and Adam with bias
 * correction (Kingma & Ba 2015, Algorithm 1), over flat buffers. */
#ifndef DCRW_LIB_ADAM_H
#define DCRW_LIB_ADAM_H

#include <stddef.h>
#include <stdint.h>

/* sqrt(Σ g²), accumulated in double */
double dcrw_grad_norm(const float *g, size_t n);

/* g *= scale */
void dcrw_grad_scale(float *g, size_t n, float scale);

/* What dcrw_adam_update refuses: the bits of the updated values that would not
 * be finite. */
enum { ADAM_BAD_PARAM = 1, ADAM_BAD_M = 2, ADAM_BAD_V = 4 };

/* One Adam step number `step` (1-based) on n parameters. Returns 0, or,
 * changing nothing, the ADAM_BAD_* bits of the values (parameters, first
 * or second moments) that the update would make non-finite: a moment that
 * overflows leaves the parameters finite but stops them learning, and a
 * checkpoint holding it would not load. */
int dcrw_adam_update(size_t n, float *param, const float *grad, float *m, float *v, float lr,
                     float beta1, float beta2, float eps, uint64_t step);

#endif
