/* Clipping and Adam over flat buffers: loops the compiler vectorises. */
#include <math.h>

#include "adam.h"
#include "vmath.h"

double grad_norm(const float *g, size_t n) {
    double acc = 0.0;
    for (size_t i = 0; i < n; i++) acc += (double)g[i] * g[i];
    return sqrt(acc);
}

void grad_scale(float *g, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) g[i] *= scale;
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
        param[i] -= step_size * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
    }
}

void adam_update(size_t n, float *param, const float *grad, float *m, float *v, float lr,
                 float beta1, float beta2, float eps, uint64_t step) {
    /* bias corrections in double: 1 − β^t loses digits in float for small t */
    const double bc1 = 1.0 - pow(beta1, (double)step);
    const double bc2 = 1.0 - pow(beta2, (double)step);
    const float step_size = (float)(lr / bc1);
    const float inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
    adam_kernel(n, param, grad, m, v, beta1, beta2, eps, step_size, inv_sqrt_bc2);
}
