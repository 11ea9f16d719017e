/* The const model operations of the public API: encode, decode,
 * reconstruct, evaluate. Each call has its own workspace (and threads), so
 * several threads may share a model. */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "common.h"
#include "runner.h"

/* The noise stream of the const operations when the caller gives none:
 * seed 0, so encode, reconstruct and evaluate without eps agree. */
#define OPS_NOISE_STREAM 0x0E5Cull
#define OPS_PRIOR_STREAM 0xDEC0DEull

int dcrw_check_images(const char *fn, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        /* written so that NaN fails too */
        if (!(x[i] >= 0.0f && x[i] <= 1.0f))
            return dcrw_fail(isfinite(x[i]) ? DCRW_EINVAL : DCRW_ENUMERIC,
                             "%s: x[%zu] = %g is not in [0, 1]", fn, i, (double)x[i]);
    }
    return DCRW_OK;
}

/* The workspace (a runner and its thread pool) of a call. The last one of
 * each calling thread is kept for its next call with the same model, batch
 * size and thread count, and freed when the thread exits: a fresh
 * multi-megabyte workspace per call cost a third of an evaluation in page
 * faults. A model is known by its unique id, not its address, so a freed
 * and reallocated model never matches a stale workspace. */
typedef struct call {
    dcrw_pool *pool;
    dcrw_runner *r;
    uint64_t model_id;
    int B, threads;
} call;

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static int cache_ok;

static void call_free(void *p) {
    call *c = p;
    if (!c) return;
    dcrw_runner_destroy(c->r);
    dcrw_pool_destroy(c->pool);
    dcrw_free(c);
}

static void cache_init(void) {
    cache_ok = pthread_key_create(&cache_key, call_free) == 0;
}

/* Give the workspace back: it becomes this thread's cached one. */
static void call_end(call *c) {
    if (!cache_ok) {
        call_free(c);
        return;
    }
    call_free(pthread_getspecific(cache_key));
    if (pthread_setspecific(cache_key, c) != 0) call_free(c);
}

static int call_begin(call **out, const char *fn, const dcrw_model *m, int B) {
    *out = NULL;
    if (!m) return dcrw_fail(DCRW_EINVAL, "%s: model is NULL", fn);
    if (B < 1) return dcrw_fail(DCRW_EINVAL, "%s: batch size must be >= 1, got %d", fn, B);
    int threads = dcrw_default_threads();
    if (threads > B) threads = B;
    if (threads > 1) dcrw_blas_single_thread();
    pthread_once(&cache_once, cache_init);
    if (cache_ok) {
        /* taken out of the cache while in use, so nothing else frees it */
        call *c = pthread_getspecific(cache_key);
        pthread_setspecific(cache_key, NULL);
        if (c && c->model_id == m->id && c->B == B && c->threads == threads) {
            *out = c;
            return DCRW_OK;
        }
        call_free(c);
    }
    call *c = dcrw_calloc(1, sizeof *c);
    if (!c) return DCRW_ENOMEM;
    c->model_id = m->id;
    c->B = B;
    c->threads = threads;
    int rc = dcrw_pool_create(&c->pool, threads);
    if (!rc) rc = dcrw_runner_create(&c->r, m, B, threads, 0, c->pool);
    if (rc) {
        call_free(c);
        return rc;
    }
    *out = c;
    return DCRW_OK;
}

static int forward(const char *fn, const dcrw_model *m, int B, const float *x, const float *eps,
                   const pass_outputs *out, call **c) {
    if (!x) return dcrw_fail(DCRW_EINVAL, "%s: x is NULL", fn);
    if (!m || B < 1) return call_begin(c, fn, m, B); /* reports which */
    int rc = dcrw_check_images(fn, x, (size_t)B * m->d.P);
    if (rc) return rc;
    if (eps && !dcrw_all_finite(eps, (size_t)m->d.T * B * m->d.Z))
        return dcrw_fail(DCRW_ENUMERIC, "%s: eps is not finite", fn);
    if ((rc = call_begin(c, fn, m, B))) return rc;
    runner_noise noise = {eps, 0, OPS_NOISE_STREAM, 0};
    dcrw_runner_forward((*c)->r, x, noise, out);
    return DCRW_OK;
}

/* Parameters that are finite but huge (a diverged run) can still overflow
 * the forward pass: say so rather than hand back infinities. */
static int check_outputs(const char *fn, const dcrw_model *m, int B, const pass_outputs *o) {
    const size_t T = (size_t)m->d.T, b = (size_t)B;
    const struct {
        const float *p;
        size_t n;
        const char *what;
    } outs[] = {{o->z, T * b * m->d.Z, "z"},
                {o->mu, T * b * m->d.Z, "mu"},
                {o->logsigma, T * b * m->d.Z, "logsigma"},
                {o->canvases, T * b * m->d.P, "canvases"},
                {o->images, b * m->d.P, "images"},
                {m->d.ra ? o->read_windows : NULL, T * b * 5, "read windows"},
                {m->d.wa ? o->write_windows : NULL, T * b * 5, "write windows"}};
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++)
        if (outs[i].p && !dcrw_all_finite(outs[i].p, outs[i].n))
            return dcrw_fail(DCRW_ENUMERIC, "%s: the model's %s are not finite", fn, outs[i].what);
    return DCRW_OK;
}

/* a forward pass whose results all go to the caller's buffers */
static int forward_to(const char *fn, const dcrw_model *m, int B, const float *x, const float *eps,
                      const pass_outputs *out) {
    call *c;
    int rc = forward(fn, m, B, x, eps, out, &c);
    if (rc) return rc;
    call_end(c);
    return check_outputs(fn, m, B, out);
}

int dcrw_encode(const dcrw_model *m, int B, const float *x, const float *eps, float *z, float *mu,
                float *logsigma) {
    pass_outputs out = {0};
    out.z = z;
    out.mu = mu;
    out.logsigma = logsigma;
    return forward_to("dcrw_encode", m, B, x, eps, &out);
}

int dcrw_reconstruct(const dcrw_model *m, int B, const float *x, const float *eps, float *images,
                     float *canvases) {
    return dcrw_reconstruct_windows(m, B, x, eps, images, canvases, NULL, NULL);
}

int dcrw_reconstruct_windows(const dcrw_model *m, int B, const float *x, const float *eps,
                             float *images, float *canvases, float *read_windows,
                             float *write_windows) {
    pass_outputs out = {0};
    out.canvases = canvases;
    out.images = images;
    out.read_windows = read_windows;
    out.write_windows = write_windows;
    return forward_to("dcrw_reconstruct", m, B, x, eps, &out);
}

/* Finite but huge parameters (a diverged run) can make an image's loss
 * NaN or infinite: both evaluations refuse it alike, naming the image. */
static int check_losses(const char *fn, const dcrw_runner *r) {
    for (int b = 0; b < r->B; b++)
        if (!isfinite(r->lx[b] + r->lz[b]))
            return dcrw_fail(DCRW_ENUMERIC,
                             "%s: the loss of image %d is not finite (Lx = %g, Lz = %g)", fn, b,
                             r->lx[b], r->lz[b]);
    return DCRW_OK;
}

int dcrw_evaluate_images(const dcrw_model *m, int B, const float *x, const float *eps, double *lx,
                         double *lz) {
    if (!lx && !lz) return dcrw_fail(DCRW_EINVAL, "dcrw_evaluate_images: lx and lz are NULL");
    call *c;
    int rc = forward("dcrw_evaluate_images", m, B, x, eps, NULL, &c);
    if (rc) return rc;
    if (lx) memcpy(lx, c->r->lx, (size_t)B * sizeof(double));
    if (lz) memcpy(lz, c->r->lz, (size_t)B * sizeof(double));
    rc = check_losses("dcrw_evaluate_images", c->r);
    call_end(c);
    return rc;
}

int dcrw_evaluate(const dcrw_model *m, int B, const float *x, const float *eps, dcrw_loss *out) {
    if (!out) return dcrw_fail(DCRW_EINVAL, "dcrw_evaluate: out is NULL");
    call *c;
    int rc = forward("dcrw_evaluate", m, B, x, eps, NULL, &c);
    if (rc) return rc;
    double lx = 0, lz = 0;
    for (int b = 0; b < B; b++) {
        lx += c->r->lx[b];
        lz += c->r->lz[b];
    }
    rc = check_losses("dcrw_evaluate", c->r);
    call_end(c);
    out->lx = lx / B;
    out->lz = lz / B;
    out->loss = out->lx + out->lz;
    if (!rc && !isfinite(out->loss))
        rc = dcrw_fail(DCRW_ENUMERIC, "dcrw_evaluate: the loss is not finite");
    return rc;
}

int dcrw_decode(const dcrw_model *m, int B, const float *z, uint64_t seed, float *images,
                float *canvases) {
    return dcrw_decode_windows(m, B, z, seed, images, canvases, NULL);
}

int dcrw_decode_windows(const dcrw_model *m, int B, const float *z, uint64_t seed, float *images,
                        float *canvases, float *write_windows) {
    if (m && B >= 1 && !images && !canvases && !write_windows)
        return dcrw_fail(DCRW_EINVAL, "dcrw_decode: no output buffer");
    if (m && B >= 1 && z && !dcrw_all_finite(z, (size_t)m->d.T * B * m->d.Z))
        return dcrw_fail(DCRW_ENUMERIC, "dcrw_decode: z is not finite");
    call *c;
    int rc = call_begin(&c, "dcrw_decode", m, B);
    if (rc) return rc;
    pass_outputs out = {0};
    out.canvases = canvases;
    out.images = images;
    out.write_windows = write_windows;
    /* z = NULL: the prior N(0, I), drawn like noise */
    runner_noise noise = {z, seed, OPS_PRIOR_STREAM, 0};
    dcrw_runner_generate(c->r, noise, &out);
    call_end(c);
    return check_outputs("dcrw_decode", m, B, &out);
}
