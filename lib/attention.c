/* The public read and write operations (MODEL.md §3.4) over caller buffers:
 * the attention dense layer, the filterbanks, then the read or the write. */
#include <stddef.h>
#include <string.h>

#include "common.h"
#include "dense.h"
#include "filterbank.h"
#include "model.h"

/* Offsets into one call's scratch of p5, FX, FY, γ, aux, `extra` floats
 * (the write's patch w), then the read/write scratch of `fbs` floats;
 * -1 if a size overflows. */
static int att_scratch(const dcrw_dims *d, int B, int N, size_t extra, size_t fbs, size_t off[7],
                       size_t *total) {
    size_t sz[7], t = 0;
    if (dcrw_mul_size((size_t)B, 5, &sz[0]) || dcrw_mul_size((size_t)B, (size_t)N * d->W, &sz[1]) ||
        dcrw_mul_size((size_t)B, (size_t)N * d->H, &sz[2]))
        return -1;
    sz[3] = (size_t)B;
    sz[4] = dcrw_fb_aux_floats(B, N);
    sz[5] = extra;
    sz[6] = fbs;
    for (int k = 0; k < 7; k++) {
        off[k] = t;
        if (dcrw_add_size(t, sz[k], &t)) return -1;
    }
    if (t > SIZE_MAX / sizeof(float)) return -1;
    *total = t;
    return 0;
}

static int check_finite(const float *v, int B, int n, const char *fn, const char *what) {
    size_t count;
    if (dcrw_mul_size((size_t)B, (size_t)n, &count))
        return dcrw_fail(DCRW_EINVAL, "%s: %s size overflows", fn, what);
    if (!dcrw_all_finite(v, count))
        return dcrw_fail(DCRW_ENUMERIC, "%s: %s has a non-finite value", fn, what);
    return DCRW_OK;
}

int dcrw_read(const dcrw_model *m, int B, const float *x, const float *xhat, const float *h_dec,
              float *r) {
    DCRW_CHECK_ARG(m, "dcrw_read: model is NULL");
    DCRW_CHECK_ARG(B >= 1, "dcrw_read: B must be >= 1, got %d", B);
    DCRW_CHECK_ARG(x && xhat && r, "dcrw_read: x, xhat and r must not be NULL");
    const dcrw_dims *d = &m->d;
    DCRW_CHECK_ARG(!d->ra || h_dec, "dcrw_read: h_dec must not be NULL with read attention");
    int rc = check_finite(x, B, d->P, "dcrw_read", "x");
    if (!rc) rc = check_finite(xhat, B, d->P, "dcrw_read", "xhat");
    if (!rc && d->ra) rc = check_finite(h_dec, B, d->D, "dcrw_read", "h_dec");
    if (rc) return rc;

    size_t P = (size_t)d->P;
    if (!d->ra) {
        for (int b = 0; b < B; b++) {
            memcpy(r + (size_t)b * 2 * P, x + (size_t)b * P, P * sizeof *r);
            memcpy(r + (size_t)b * 2 * P + P, xhat + (size_t)b * P, P * sizeof *r);
        }
        return DCRW_OK;
    }

    int N = d->Nr;
    size_t off[7], total;
    if (att_scratch(d, B, N, 0, dcrw_fb_read_scratch_floats(B, d->C, N, d->H, d->W), off, &total))
        return dcrw_fail(DCRW_ENOMEM, "dcrw_read: scratch size overflows for B = %d", B);
    float *s = dcrw_alloc(total * sizeof(float));
    if (!s) return dcrw_fail(DCRW_ENOMEM, "dcrw_read: cannot allocate %zu floats", total);
    float *p5 = s + off[0], *FX = s + off[1], *FY = s + off[2], *gamma = s + off[3];
    float *aux = s + off[4], *fbs = s + off[6];
    dcrw_dense_forward(B, d->D, 5, h_dec, d->D, m->p.ratt_w, m->p.ratt_b, p5, 5);
    dcrw_fb_filters_forward(B, N, d->H, d->W, p5, FX, FY, gamma, aux);
    dcrw_fb_read_forward(B, d->C, N, d->H, d->W, FX, FY, gamma, x, xhat, r, fbs);
    dcrw_free(s);
    /* finite inputs, but parameters huge enough to overflow */
    return check_finite(r, B, d->R, "dcrw_read", "the read r");
}

int dcrw_write(const dcrw_model *m, int B, const float *h_dec, float *delta) {
    DCRW_CHECK_ARG(m, "dcrw_write: model is NULL");
    DCRW_CHECK_ARG(B >= 1, "dcrw_write: B must be >= 1, got %d", B);
    DCRW_CHECK_ARG(h_dec && delta, "dcrw_write: h_dec and delta must not be NULL");
    const dcrw_dims *d = &m->d;
    int rc = check_finite(h_dec, B, d->D, "dcrw_write", "h_dec");
    if (rc) return rc;

    if (!d->wa) {
        dcrw_dense_forward(B, d->D, d->P, h_dec, d->D, m->p.write_w, m->p.write_b, delta, d->P);
        return check_finite(delta, B, d->P, "dcrw_write", "the write delta");
    }

    int N = d->Nw;
    size_t wsz, off[7], total;
    if (dcrw_mul_size((size_t)B, (size_t)d->Wout, &wsz) ||
        att_scratch(d, B, N, wsz, dcrw_fb_write_scratch_floats(B, d->C, N, d->H, d->W), off,
                    &total))
        return dcrw_fail(DCRW_ENOMEM, "dcrw_write: scratch size overflows for B = %d", B);
    float *s = dcrw_alloc(total * sizeof(float));
    if (!s) return dcrw_fail(DCRW_ENOMEM, "dcrw_write: cannot allocate %zu floats", total);
    float *p5 = s + off[0], *FX = s + off[1], *FY = s + off[2], *gamma = s + off[3];
    float *aux = s + off[4], *w = s + off[5], *fbs = s + off[6];
    dcrw_dense_forward(B, d->D, 5, h_dec, d->D, m->p.watt_w, m->p.watt_b, p5, 5);
    dcrw_dense_forward(B, d->D, d->Wout, h_dec, d->D, m->p.write_w, m->p.write_b, w, d->Wout);
    dcrw_fb_filters_forward(B, N, d->H, d->W, p5, FX, FY, gamma, aux);
    dcrw_fb_write_forward(B, d->C, N, d->H, d->W, FX, FY, gamma, w, delta, 0, fbs);
    dcrw_free(s);
    return check_finite(delta, B, d->P, "dcrw_write", "the write delta");
}
