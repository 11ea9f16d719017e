/* Batch chunks over the thread pool. */
#include <assert.h>
#include <string.h>

#include "common.h"
#include "runner.h"

int dcrw_runner_create(dcrw_runner **out, const dcrw_model *m, int B, int threads, int backward,
                       dcrw_pool *pool) {
    *out = NULL;
    assert(B >= 1);
    int n = threads < 1 ? 1 : threads;
    if (n > dcrw_pool_size(pool)) n = dcrw_pool_size(pool);
    if (n > B) n = B;
    dcrw_runner *r = dcrw_calloc(1, sizeof *r);
    if (!r) return DCRW_ENOMEM;
    r->m = m;
    r->B = B;
    r->n = n;
    r->pool = pool;
    r->b0 = dcrw_calloc((size_t)n, 2 * sizeof(int));
    r->ps = dcrw_calloc((size_t)n, sizeof(dcrw_pass *));
    r->grad = dcrw_calloc((size_t)n, sizeof(float *));
    r->lx = dcrw_calloc((size_t)B, 2 * sizeof(double));
    if (!r->b0 || !r->ps || !r->grad || !r->lx) {
        dcrw_runner_destroy(r);
        return DCRW_ENOMEM;
    }
    r->nb = r->b0 + n;
    r->lz = r->lx + B;
    const int path = dcrw_pass_gemm_path();
    r->precision = m->precision;
    if (dcrw_pass_weights_wanted(m, path)) {
        int rc = dcrw_pass_weights_create(&r->pw, m, path, backward);
        if (rc) {
            dcrw_runner_destroy(r);
            return rc;
        }
    }
    for (int i = 0, b = 0; i < n; i++) {
        r->b0[i] = b;
        r->nb[i] = B / n + (i < B % n);
        b += r->nb[i];
        int rc = dcrw_pass_create(&r->ps[i], m, r->nb[i], backward, backward);
        if (!rc) r->ps[i]->pw = r->pw;
        if (!rc && backward && i > 0) {
            r->grad[i] = dcrw_calloc(m->lay.total, sizeof(float));
            if (!r->grad[i]) rc = DCRW_ENOMEM;
        }
        if (rc) {
            dcrw_runner_destroy(r);
            return rc;
        }
    }
    return *out = r, DCRW_OK;
}

void dcrw_runner_destroy(dcrw_runner *r) {
    if (!r) return;
    for (int i = 0; r->ps && i < r->n; i++) dcrw_pass_destroy(r->ps[i]);
    for (int i = 0; r->grad && i < r->n; i++) dcrw_free(r->grad[i]);
    dcrw_pass_weights_destroy(r->pw);
    dcrw_free(r->b0);
    dcrw_free(r->ps);
    dcrw_free(r->grad);
    dcrw_free(r->lx);
    dcrw_free(r);
}

typedef struct pack_job {
    dcrw_runner *r;
    int decoder_only;
} pack_job;

static void pack_part(void *ctx, int i) {
    pack_job *j = ctx;
    dcrw_pass_weights_pack(j->r->pw, j->decoder_only, i, j->r->n);
}

void dcrw_runner_pack(dcrw_runner *r, int decoder_only) {
    if (!r->pw) return;
    pack_job j = {r, decoder_only};
    dcrw_pool_run(r->pool, r->n, pack_part, &j);
}

/* The chunk's noise in its own workspace: gathered from the caller's
 * time-major eps, or drawn by image index. */
static const float *chunk_noise(dcrw_runner *r, int i, runner_noise noise) {
    dcrw_pass *ps = r->ps[i];
    const dcrw_dims *d = &r->m->d;
    const size_t rowz = (size_t)d->Z * sizeof(float);
    if (noise.eps) {
        if (r->n == 1) return noise.eps;
        for (int t = 0; t < d->T; t++)
            memcpy(ps->eps + (size_t)t * ps->B * d->Z,
                   noise.eps + ((size_t)t * r->B + r->b0[i]) * d->Z, ps->B * rowz);
    } else {
        dcrw_pass_draw_noise(r->m, ps->B, noise.seed, noise.stream,
                             noise.first + (uint64_t)r->b0[i], ps->eps);
    }
    return ps->eps;
}

typedef struct job {
    dcrw_runner *r;
    const float *x;
    const int32_t *labels;
    runner_noise noise;
    const pass_outputs *out;
    float *grad;
    float inv_total, kl_weight;
    enum { FORWARD, BACKWARD, GENERATE, REDUCE } what;
} job;

static void run_chunk(void *ctx, int i) {
    job *j = ctx;
    dcrw_runner *r = j->r;
    dcrw_pass *ps = r->ps[i];
    const size_t P = (size_t)r->m->d.P;
    if (j->what == REDUCE) {
        /* thread i sums its slice of every chunk's gradient into chunk 0's */
        const size_t total = r->m->lay.total, lo = total * i / r->n, hi = total * (i + 1) / r->n;
        for (int k = 1; k < r->n; k++) {
            const float *src = r->grad[k];
            for (size_t e = lo; e < hi; e++) j->grad[e] += src[e];
        }
        return;
    }
    pass_outputs o;
    if (j->out) {
        o = *j->out;
        o.B_total = r->B;
        o.b0 = r->b0[i];
    }
    const float *x = j->x ? j->x + (size_t)r->b0[i] * P : NULL;
    float *g = NULL;
    if (j->what == BACKWARD) {
        g = i == 0 ? j->grad : r->grad[i];
        memset(g, 0, r->m->lay.total * sizeof(float));
    }
    const int32_t *labels = j->labels ? j->labels + r->b0[i] : NULL;
    const float *eps = NULL;
    if (r->m->d.cls) {
        dcrw_classify_forward(ps, x, labels, j->out ? &o : NULL);
    } else {
        eps = chunk_noise(r, i, j->noise);
        if (j->what == GENERATE) {
            dcrw_pass_generate(ps, labels, eps, j->out ? &o : NULL);
            return;
        }
        dcrw_pass_forward(ps, x, labels, eps, j->out ? &o : NULL);
    }
    memcpy(r->lx + r->b0[i], ps->lx, (size_t)ps->B * sizeof(double));
    memcpy(r->lz + r->b0[i], ps->lz, (size_t)ps->B * sizeof(double));
    if (g && r->m->d.cls)
        dcrw_classify_backward(ps, x, labels, g, j->inv_total);
    else if (g)
        dcrw_pass_backward(ps, x, labels, eps, g, j->inv_total, j->kl_weight);
}

void dcrw_runner_forward(dcrw_runner *r, const float *x, const int32_t *labels, runner_noise noise,
                         const pass_outputs *out) {
    job j = {r, x, labels, noise, out, NULL, 0.0f, 0.0f, FORWARD};
    dcrw_pool_run(r->pool, r->n, run_chunk, &j);
}

void dcrw_runner_backward(dcrw_runner *r, const float *x, const int32_t *labels, runner_noise noise,
                          float inv_total, float kl_weight, float *grad) {
    job j = {r, x, labels, noise, NULL, grad, inv_total, kl_weight, BACKWARD};
    dcrw_pool_run(r->pool, r->n, run_chunk, &j);
    if (r->n > 1) {
        j.what = REDUCE;
        dcrw_pool_run(r->pool, r->n, run_chunk, &j);
    }
}

void dcrw_runner_generate(dcrw_runner *r, const int32_t *labels, runner_noise noise,
                          const pass_outputs *out) {
    job j = {r, NULL, labels, noise, out, NULL, 0.0f, 0.0f, GENERATE};
    dcrw_pool_run(r->pool, r->n, run_chunk, &j);
}
