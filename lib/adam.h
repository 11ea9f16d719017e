/* The optimizer: global-norm gradient clipping and Adam with bias
 * correction (Kingma & Ba 2015, Algorithm 1), over flat buffers. */
#ifndef DCRW_LIB_ADAM_H
#define DCRW_LIB_ADAM_H

#include <stddef.h>
#include <stdint.h>

/* sqrt(Σ g²), accumulated in double */
double grad_norm(const float *g, size_t n);

/* g *= scale */
void grad_scale(float *g, size_t n, float scale);

/* One Adam step number `step` (1-based) on n parameters. Returns −1, and
 * changes nothing, if any updated parameter would not be finite. */
int adam_update(size_t n, float *param, const float *grad, float *m, float *v, float lr,
                float beta1, float beta2, float eps, uint64_t step);

#endif
