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

/* What an Adam step refuses: the bits of the updated values that would
 * not be finite. */
enum { ADAM_BAD_PARAM = 1, ADAM_BAD_M = 2, ADAM_BAD_V = 4 };

/* One Adam step number `step` (1-based) over n parameters, in parts that
 * threads can share: dcrw_adam_begin (ADAM_BAD_PARAM if the step size
 * itself is not finite), dcrw_adam_check of ranges [lo, hi) covering all n
 * with their bits ORed, then, only if none is set, dcrw_adam_apply of
 * ranges covering all n. An element's update is the same whichever range
 * holds it. The check makes a step all or nothing: a moment that would
 * overflow leaves the parameters finite but stops them learning, and a
 * checkpoint holding it would not load. */
typedef struct adam_step {
    float *param;
    const float *grad;
    float *m, *v;
    float beta1, beta2, eps, step_size, inv_sqrt_bc2;
} adam_step;
int dcrw_adam_begin(adam_step *a, float *param, const float *grad, float *m, float *v, float lr,
                    float beta1, float beta2, float eps, uint64_t step);
/* the ADAM_BAD_* bits of [lo, hi); writes nothing */
int dcrw_adam_check(const adam_step *a, size_t lo, size_t hi);
void dcrw_adam_apply(const adam_step *a, size_t lo, size_t hi);

#endif
