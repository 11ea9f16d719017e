/* The const model operations of the public API: encode, decode, evaluate.
 * Each call allocates its own workspace, so several threads may share a
 * model. */
#include <math.h>
#include <string.h>

#include "common.h"
#include "pass.h"
#include "rng.h"

/* The noise stream of the const operations when the caller gives none:
 * seed 0, so encode and evaluate without eps agree with each other. */
#define OPS_NOISE_STREAM 0x0E5Cull

int dcrw_check_images(const char *fn, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        /* written so that NaN fails too */
        if (!(x[i] >= 0.0f && x[i] <= 1.0f))
            return dcrw_fail(isfinite(x[i]) ? DCRW_EINVAL : DCRW_ENUMERIC,
                             "%s: x[%zu] = %g is not in [0, 1]", fn, i, (double)x[i]);
    }
    return DCRW_OK;
}

static int check_common(const char *fn, const dcrw_model *m, int B) {
    if (!m) return dcrw_fail(DCRW_EINVAL, "%s: model is NULL", fn);
    if (B < 1) return dcrw_fail(DCRW_EINVAL, "%s: batch size must be >= 1, got %d", fn, B);
    return DCRW_OK;
}

/* eps given: check it; not given: draw it into the pass. */
static int noise(const char *fn, dcrw_pass *ps, const float *eps, const float **use) {
    const dcrw_dims *d = &ps->m->d;
    size_t n = (size_t)d->T * ps->B * d->Z;
    if (eps) {
        if (!dcrw_all_finite(eps, n)) return dcrw_fail(DCRW_ENUMERIC, "%s: eps is not finite", fn);
        *use = eps;
    } else {
        pass_draw_noise(ps->m, ps->B, 0, OPS_NOISE_STREAM, 0, ps->eps);
        *use = ps->eps;
    }
    return DCRW_OK;
}

static int forward(const char *fn, const dcrw_model *m, int B, const float *x, const float *eps,
                   const pass_outputs *out, dcrw_pass **psout) {
    int rc = check_common(fn, m, B);
    if (rc) return rc;
    if (!x) return dcrw_fail(DCRW_EINVAL, "%s: x is NULL", fn);
    if ((rc = dcrw_check_images(fn, x, (size_t)B * m->d.P))) return rc;
    dcrw_pass *ps;
    if ((rc = pass_create(&ps, m, B, 0, 0))) return rc;
    const float *e = NULL;
    if ((rc = noise(fn, ps, eps, &e))) {
        pass_destroy(ps);
        return rc;
    }
    pass_forward(ps, x, e, out);
    *psout = ps;
    return DCRW_OK;
}

int dcrw_encode(const dcrw_model *m, int B, const float *x, const float *eps, float *z, float *mu,
                float *logsigma) {
    pass_outputs out = {z, mu, logsigma, NULL, NULL, NULL, NULL};
    dcrw_pass *ps = NULL;
    int rc = forward("dcrw_encode", m, B, x, eps, &out, &ps);
    if (rc) return rc;
    pass_destroy(ps);
    return DCRW_OK;
}

int dcrw_reconstruct(const dcrw_model *m, int B, const float *x, const float *eps, float *images,
                     float *canvases) {
    return dcrw_reconstruct_windows(m, B, x, eps, images, canvases, NULL, NULL);
}

int dcrw_reconstruct_windows(const dcrw_model *m, int B, const float *x, const float *eps,
                             float *images, float *canvases, float *read_windows,
                             float *write_windows) {
    pass_outputs out = {NULL, NULL, NULL, canvases, images, read_windows, write_windows};
    dcrw_pass *ps = NULL;
    int rc = forward("dcrw_reconstruct", m, B, x, eps, &out, &ps);
    if (rc) return rc;
    pass_destroy(ps);
    return DCRW_OK;
}

int dcrw_evaluate_images(const dcrw_model *m, int B, const float *x, const float *eps, double *lx,
                         double *lz) {
    if (!lx && !lz) return dcrw_fail(DCRW_EINVAL, "dcrw_evaluate_images: lx and lz are NULL");
    dcrw_pass *ps = NULL;
    int rc = forward("dcrw_evaluate_images", m, B, x, eps, NULL, &ps);
    if (rc) return rc;
    if (lx) memcpy(lx, ps->lx, (size_t)B * sizeof(double));
    if (lz) memcpy(lz, ps->lz, (size_t)B * sizeof(double));
    pass_destroy(ps);
    return DCRW_OK;
}

int dcrw_evaluate(const dcrw_model *m, int B, const float *x, const float *eps, dcrw_loss *out) {
    if (!out) return dcrw_fail(DCRW_EINVAL, "dcrw_evaluate: out is NULL");
    dcrw_pass *ps = NULL;
    int rc = forward("dcrw_evaluate", m, B, x, eps, NULL, &ps);
    if (rc) return rc;
    double lx = 0, lz = 0;
    for (int b = 0; b < B; b++) {
        lx += ps->lx[b];
        lz += ps->lz[b];
    }
    pass_destroy(ps);
    out->lx = lx / B;
    out->lz = lz / B;
    out->loss = out->lx + out->lz;
    if (!isfinite(out->loss))
        return dcrw_fail(DCRW_ENUMERIC, "dcrw_evaluate: the loss is not finite");
    return DCRW_OK;
}

int dcrw_decode(const dcrw_model *m, int B, const float *z, uint64_t seed, float *images,
                float *canvases) {
    return dcrw_decode_windows(m, B, z, seed, images, canvases, NULL);
}

int dcrw_decode_windows(const dcrw_model *m, int B, const float *z, uint64_t seed, float *images,
                        float *canvases, float *write_windows) {
    int rc = check_common("dcrw_decode", m, B);
    if (rc) return rc;
    if (!images && !canvases && !write_windows)
        return dcrw_fail(DCRW_EINVAL, "dcrw_decode: no output buffer");
    const size_t n = (size_t)m->d.T * B * m->d.Z;
    if (z && !dcrw_all_finite(z, n))
        return dcrw_fail(DCRW_ENUMERIC, "dcrw_decode: z is not finite");
    dcrw_pass *ps;
    if ((rc = pass_create(&ps, m, B, 0, 0))) return rc;
    if (!z) {
        /* the prior N(0, I): ps->eps has exactly the shape of z */
        pass_draw_noise(m, B, seed, 0xDEC0DEull, 0, ps->eps);
        z = ps->eps;
    }
    pass_outputs out = {NULL, NULL, NULL, canvases, images, NULL, write_windows};
    pass_generate(ps, z, &out);
    pass_destroy(ps);
    return DCRW_OK;
}
