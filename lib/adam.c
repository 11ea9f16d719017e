/* Clipping and Adam over flat buffers: loops the compiler vectorises. */
#include <math.h>

#include "adam.h"
#include "vmath.h"

/* Eight running sums, one per lane, added at the end: a single sum in
 * double is a chain of dependent adds (four cycles each, the whole step
 * waiting on them), eight vectorise. Their order is fixed, so the norm is. */
DCRW_VECTOR_CLONES
static double sum_squares(const float *restrict g, size_t n) {
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += (double)g[i + j] * g[i + j];
    double s = 0.0;
    for (int j = 0; j < 8; j++) s += acc[j];
    for (; i < n; i++) s += (double)g[i] * g[i];
    return s;
}

double dcrw_grad_norm(const float *g, size_t n) {
    return sqrt(sum_squares(g, n));
}

void dcrw_grad_scale(float *g, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) g[i] *= scale;
}

/* One Adam update of element i, the same arithmetic in both passes below.
 * m / (√v̂ + ε) is formed before the step size multiplies it, so a large
 * learning rate cannot overflow an intermediate product. */
static inline float adam_new_param(float p, float mi, float vi, float eps, float step_size,
                                   float inv_sqrt_bc2) {
    return p - step_size * (mi / (sqrtf(vi) * inv_sqrt_bc2 + eps));
}

/* The ADAM_BAD_* bits of the updated values that would not be finite;
 * writes nothing */
DCRW_VECTOR_CLONES
static int adam_check(size_t n, const float *restrict param, const float *restrict grad,
                      const float *restrict m, const float *restrict v, float beta1, float beta2,
                      float eps, float step_size, float inv_sqrt_bc2) {
    uint32_t bad_p = 0, bad_m = 0, bad_v = 0;
    for (size_t i = 0; i < n; i++) {
        float g = grad[i];
        float mi = beta1 * m[i] + (1.0f - beta1) * g;
        float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
        bad_p |= vnonfinite(adam_new_param(param[i], mi, vi, eps, step_size, inv_sqrt_bc2));
        bad_m |= vnonfinite(mi);
        bad_v |= vnonfinite(vi);
    }
    return (bad_p ? ADAM_BAD_PARAM : 0) | (bad_m ? ADAM_BAD_M : 0) | (bad_v ? ADAM_BAD_V : 0);
}

DCRW_VECTOR_CLONES
static void adam_kernel(size_t n, float *restrict param, const float *restrict grad,
                        float *restrict m, float *restrict v, float beta1, float beta2, float eps,
                        float step_size, float inv_sqrt_bc2) {
    for (size_t i = 0; i < n; i++) {
        float g = grad[i];
        float mi = beta1 * m[i] + (1.0f - beta1) * g;
        float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        param[i] = adam_new_param(param[i], mi, vi, eps, step_size, inv_sqrt_bc2);
    }
}

int dcrw_adam_begin(adam_step *a, float *param, const float *grad, float *m, float *v, float lr,
                    float beta1, float beta2, float eps, uint64_t step) {
    /* bias corrections in double: 1 − β^t loses digits in float for small t */
    const double bc1 = 1.0 - pow(beta1, (double)step);
    const double bc2 = 1.0 - pow(beta2, (double)step);
    *a = (adam_step){
        param, grad, m, v, beta1, beta2, eps, (float)(lr / bc1), (float)(1.0 / sqrt(bc2))};
    return isfinite(a->step_size) ? 0 : ADAM_BAD_PARAM;
}

int dcrw_adam_check(const adam_step *a, size_t lo, size_t hi) {
    return adam_check(hi - lo, a->param + lo, a->grad + lo, a->m + lo, a->v + lo, a->beta1,
                      a->beta2, a->eps, a->step_size, a->inv_sqrt_bc2);
}

void dcrw_adam_apply(const adam_step *a, size_t lo, size_t hi) {
    adam_kernel(hi - lo, a->param + lo, a->grad + lo, a->m + lo, a->v + lo, a->beta1, a->beta2,
                a->eps, a->step_size, a->inv_sqrt_bc2);
}
