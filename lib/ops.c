/* The const model operations of the public API: read and write (one
 * attention step over caller buffers), encode, decode, reconstruct and
 * evaluate (whole passes). They take a const model, so several threads may
 * share one: each call works in its own workspace, which the calling
 * thread keeps for its next call (see the cache below). */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "common.h"
#include "dense.h"
#include "filterbank.h"
#include "runner.h"

/* The workspace (a runner and its thread pool) of a call. The last one of
 * each calling thread is kept for its next call with the same model, batch
 * size and thread count, and freed when the thread exits or calls
 * dcrw_workspace_release(): a fresh multi-megabyte workspace per call cost
 * a third of an evaluation in page faults. A model is known by its unique
 * id, not its address, so a freed and reallocated model never matches a
 * stale workspace. dcrw.h documents this lifetime; an explicit context
 * object would double the API for what one release call gives. */
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

void dcrw_workspace_release(void) {
    pthread_once(&cache_once, cache_init);
    if (!cache_ok) return;
    call_free(pthread_getspecific(cache_key));
    pthread_setspecific(cache_key, NULL);
}

/* What a call does: a whole generative pass, generation alone, or the
 * classifier's pass; a model of the other kind is refused. */
enum call_kind { CALL_PASS, CALL_DECODER, CALL_CLASSIFY };

/* Take the calling thread's workspace for m and B (or make one), its
 * weights packed from their values now (a const model's parameters can
 * still be written between calls): all of them, or those generation uses. */
static int call_begin(call **out, const char *fn, const dcrw_model *m, int B, enum call_kind kind) {
    *out = NULL;
    if (!m) return dcrw_fail(DCRW_EINVAL, "%s: model is NULL", fn);
    if (B < 1) return dcrw_fail(DCRW_EINVAL, "%s: batch size must be >= 1, got %d", fn, B);
    if ((kind == CALL_CLASSIFY) != m->d.cls)
        return dcrw_fail(DCRW_EINVAL, "%s: %s", fn,
                         m->d.cls ? "the model is a classifier (use dcrw_classify)"
                                  : "the model is not a classifier");
    const int decoder_only = kind == CALL_DECODER;
    int threads = dcrw_default_threads();
    if (threads > B) threads = B;
    if (threads > 1) dcrw_blas_single_thread();
    pthread_once(&cache_once, cache_init);
    if (cache_ok) {
        /* taken out of the cache while in use, so nothing else frees it */
        call *c = pthread_getspecific(cache_key);
        pthread_setspecific(cache_key, NULL);
        if (c && c->model_id == m->id && c->B == B && c->threads == threads) {
            dcrw_runner_pack(c->r, decoder_only);
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
    dcrw_runner_pack(c->r, decoder_only);
    *out = c;
    return DCRW_OK;
}

/* The noise of a whole-pass call: the caller's eps, or drawn by the
 * library, keyed by (seed, stream, first + b) for image b of the batch. */
static runner_noise noise_of(const float *eps, uint64_t seed, uint64_t stream, int64_t first) {
    runner_noise n = {eps, seed, stream, (uint64_t)first};
    return n;
}

/* A part of a larger set: images first .. first + B − 1, all indexable. */
static int check_part(const char *fn, int B, int64_t first) {
    if (first < 0 || (B >= 1 && first > INT64_MAX - B))
        return dcrw_fail(DCRW_EINVAL, "%s: first image index %lld is not in [0, 2^63 - B]", fn,
                         (long long)first);
    return DCRW_OK;
}

/* A conditional model (MODEL.md §10) needs a label for every image, in
 * [0, K); the others take none. */
static int check_labels(const char *fn, const dcrw_model *m, int B, const int32_t *labels) {
    const int cond = m->d.K && !m->d.cls;
    if (cond && !labels)
        return dcrw_fail(DCRW_EINVAL,
                         "%s: the model is conditional: give each image's label "
                         "(dcrw_decode_labels, dcrw_reconstruct_labels, dcrw_evaluate_labels)",
                         fn);
    if (!cond && labels)
        return dcrw_fail(DCRW_EINVAL, "%s: the model takes no labels (it is not conditional)", fn);
    for (int b = 0; labels && b < B; b++)
        if (labels[b] < 0 || labels[b] >= m->d.K)
            return dcrw_fail(DCRW_EINVAL, "%s: label %d of image %d is not in [0, %d)", fn,
                             (int)labels[b], b, m->d.K);
    return DCRW_OK;
}

/* Check the arguments of a pass over x with the caller's eps (or none)
 * and labels, then take the workspace. */
static int prepare(const char *fn, const dcrw_model *m, int B, const float *x,
                   const int32_t *labels, const float *eps, enum call_kind kind, call **c) {
    if (!x) return dcrw_fail(DCRW_EINVAL, "%s: x is NULL", fn);
    if (!m || B < 1) return call_begin(c, fn, m, B, kind); /* reports which */
    int rc = kind == CALL_CLASSIFY ? DCRW_OK : check_labels(fn, m, B, labels);
    if (!rc) rc = dcrw_check_images(fn, x, (size_t)B * m->d.P);
    if (rc) return rc;
    if (eps && !dcrw_all_finite(eps, (size_t)m->d.T * B * m->d.Z))
        return dcrw_fail(DCRW_ENUMERIC, "%s: eps is not finite", fn);
    return call_begin(c, fn, m, B, kind);
}

static int forward(const char *fn, const dcrw_model *m, int B, const float *x,
                   const int32_t *labels, runner_noise noise, const pass_outputs *out, call **c) {
    int rc = prepare(fn, m, B, x, labels, noise.eps, CALL_PASS, c);
    if (rc) return rc;
    dcrw_runner_forward((*c)->r, x, labels, noise, out);
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
static int forward_to(const char *fn, const dcrw_model *m, int B, const float *x,
                      const int32_t *labels, runner_noise noise, const pass_outputs *out) {
    call *c;
    int rc = forward(fn, m, B, x, labels, noise, out, &c);
    if (rc) return rc;
    call_end(c);
    return check_outputs(fn, m, B, out);
}

static int encode(const char *fn, const dcrw_model *m, int B, const float *x, runner_noise noise,
                  float *z, float *mu, float *logsigma) {
    pass_outputs out = {0};
    out.z = z;
    out.mu = mu;
    out.logsigma = logsigma;
    return forward_to(fn, m, B, x, NULL, noise, &out);
}

int dcrw_encode(const dcrw_model *m, int B, const float *x, const float *eps, float *z, float *mu,
                float *logsigma) {
    return encode("dcrw_encode", m, B, x, noise_of(eps, 0, DCRW_STREAM_POSTERIOR, 0), z, mu,
                  logsigma);
}

int dcrw_encode_part(const dcrw_model *m, int B, const float *x, uint64_t seed, int64_t first,
                     float *z, float *mu, float *logsigma) {
    int rc = check_part("dcrw_encode_part", B, first);
    if (rc) return rc;
    return encode("dcrw_encode_part", m, B, x, noise_of(NULL, seed, DCRW_STREAM_POSTERIOR, first),
                  z, mu, logsigma);
}

static int reconstruct(const char *fn, const dcrw_model *m, int B, const float *x,
                       const int32_t *labels, runner_noise noise, float *images, float *canvases,
                       float *read_windows, float *write_windows) {
    pass_outputs out = {0};
    out.canvases = canvases;
    out.images = images;
    out.read_windows = read_windows;
    out.write_windows = write_windows;
    return forward_to(fn, m, B, x, labels, noise, &out);
}

int dcrw_reconstruct(const dcrw_model *m, int B, const float *x, const float *eps, float *images,
                     float *canvases) {
    return dcrw_reconstruct_windows(m, B, x, eps, images, canvases, NULL, NULL);
}

int dcrw_reconstruct_windows(const dcrw_model *m, int B, const float *x, const float *eps,
                             float *images, float *canvases, float *read_windows,
                             float *write_windows) {
    return reconstruct("dcrw_reconstruct", m, B, x, NULL,
                       noise_of(eps, 0, DCRW_STREAM_POSTERIOR, 0), images, canvases, read_windows,
                       write_windows);
}

int dcrw_reconstruct_part(const dcrw_model *m, int B, const float *x, uint64_t seed, int64_t first,
                          float *images, float *canvases, float *read_windows,
                          float *write_windows) {
    int rc = check_part("dcrw_reconstruct_part", B, first);
    if (rc) return rc;
    return reconstruct("dcrw_reconstruct_part", m, B, x, NULL,
                       noise_of(NULL, seed, DCRW_STREAM_POSTERIOR, first), images, canvases,
                       read_windows, write_windows);
}

int dcrw_reconstruct_labels(const dcrw_model *m, int B, const float *x, const int32_t *labels,
                            uint64_t seed, int64_t first, float *images, float *canvases,
                            float *read_windows, float *write_windows) {
    const char *fn = "dcrw_reconstruct_labels";
    int rc = check_part(fn, B, first);
    if (!rc && !labels) rc = dcrw_fail(DCRW_EINVAL, "%s: labels is NULL", fn);
    if (rc) return rc;
    return reconstruct(fn, m, B, x, labels, noise_of(NULL, seed, DCRW_STREAM_POSTERIOR, first),
                       images, canvases, read_windows, write_windows);
}

/* Finite but huge parameters (a diverged run) can make an image's loss
 * NaN or infinite: every evaluation refuses it alike, naming the image by
 * its index in the whole set. */
static int check_losses(const char *fn, const dcrw_runner *r, int64_t first) {
    for (int b = 0; b < r->B; b++)
        if (!isfinite(r->lx[b] + r->lz[b]))
            return dcrw_fail(DCRW_ENUMERIC,
                             "%s: the loss of image %lld is not finite (Lx = %g, Lz = %g)", fn,
                             (long long)(first + b), r->lx[b], r->lz[b]);
    return DCRW_OK;
}

static int evaluate_images(const char *fn, const dcrw_model *m, int B, const float *x,
                           const int32_t *labels, runner_noise noise, double *lx, double *lz) {
    if (!lx && !lz) return dcrw_fail(DCRW_EINVAL, "%s: lx and lz are NULL", fn);
    call *c;
    int rc = forward(fn, m, B, x, labels, noise, NULL, &c);
    if (rc) return rc;
    if (lx) memcpy(lx, c->r->lx, (size_t)B * sizeof(double));
    if (lz) memcpy(lz, c->r->lz, (size_t)B * sizeof(double));
    rc = check_losses(fn, c->r, (int64_t)noise.first);
    call_end(c);
    return rc;
}

int dcrw_evaluate_images(const dcrw_model *m, int B, const float *x, const float *eps, double *lx,
                         double *lz) {
    return evaluate_images("dcrw_evaluate_images", m, B, x, NULL,
                           noise_of(eps, 0, DCRW_STREAM_POSTERIOR, 0), lx, lz);
}

int dcrw_evaluate_images_part(const dcrw_model *m, int B, const float *x, uint64_t seed,
                              int64_t first, double *lx, double *lz) {
    int rc = check_part("dcrw_evaluate_images_part", B, first);
    if (rc) return rc;
    return evaluate_images("dcrw_evaluate_images_part", m, B, x, NULL,
                           noise_of(NULL, seed, DCRW_STREAM_POSTERIOR, first), lx, lz);
}

int dcrw_evaluate_labels(const dcrw_model *m, int B, const float *x, const int32_t *labels,
                         uint64_t seed, int64_t first, double *lx, double *lz) {
    const char *fn = "dcrw_evaluate_labels";
    int rc = check_part(fn, B, first);
    if (!rc && !labels) rc = dcrw_fail(DCRW_EINVAL, "%s: labels is NULL", fn);
    if (rc) return rc;
    return evaluate_images(fn, m, B, x, labels, noise_of(NULL, seed, DCRW_STREAM_POSTERIOR, first),
                           lx, lz);
}

int dcrw_evaluate(const dcrw_model *m, int B, const float *x, const float *eps, dcrw_loss *out) {
    if (!out) return dcrw_fail(DCRW_EINVAL, "dcrw_evaluate: out is NULL");
    call *c;
    int rc = forward("dcrw_evaluate", m, B, x, NULL, noise_of(eps, 0, DCRW_STREAM_POSTERIOR, 0),
                     NULL, &c);
    if (rc) return rc;
    double lx = 0, lz = 0;
    for (int b = 0; b < B; b++) {
        lx += c->r->lx[b];
        lz += c->r->lz[b];
    }
    rc = check_losses("dcrw_evaluate", c->r, 0);
    call_end(c);
    out->lx = lx / B;
    out->lz = lz / B;
    out->loss = out->lx + out->lz;
    if (!rc && !isfinite(out->loss))
        rc = dcrw_fail(DCRW_ENUMERIC, "dcrw_evaluate: the loss is not finite");
    return rc;
}

/* ---- the classifier ------------------------------------------------------- */

static int classify(const char *fn, const dcrw_model *m, int B, const float *x, float *probs,
                    float *windows) {
    call *c;
    int rc = prepare(fn, m, B, x, NULL, NULL, CALL_CLASSIFY, &c);
    if (rc) return rc;
    pass_outputs out = {0};
    out.probs = probs;
    out.read_windows = windows;
    dcrw_runner_forward(c->r, x, NULL, noise_of(NULL, 0, 0, 0), &out);
    call_end(c);
    const size_t b = (size_t)B;
    if ((probs && !dcrw_all_finite(probs, b * m->d.K)) ||
        (windows && !dcrw_all_finite(windows, b * m->d.T * 5)))
        return dcrw_fail(DCRW_ENUMERIC, "%s: the model's probabilities or windows are not finite",
                         fn);
    return DCRW_OK;
}

int dcrw_classify_windows(const dcrw_model *m, int B, const float *x, float *probs,
                          float *windows) {
    if (!probs && !windows)
        return dcrw_fail(DCRW_EINVAL, "dcrw_classify_windows: probs and windows are NULL");
    return classify("dcrw_classify_windows", m, B, x, probs, windows);
}

int dcrw_classify(const dcrw_model *m, int B, const float *x, float *probs) {
    if (!probs) return dcrw_fail(DCRW_EINVAL, "dcrw_classify: probs is NULL");
    return classify("dcrw_classify", m, B, x, probs, NULL);
}

/* ---- the importance-weighted bound ---------------------------------------- */

/* The noise of importance sample k: sample 0 is the posterior noise every
 * evaluation draws (so with K = 1 the bound uses dcrw_evaluate_images_part's
 * draw); the others have streams of their own, distinct from every other
 * use's in their low bits. */
static uint64_t iw_stream(int k) {
    return k == 0 ? DCRW_STREAM_POSTERIOR : DCRW_STREAM_IW ^ ((uint64_t)k << 32);
}

/* A running log-sum-exp per image: mx[b] the largest term so far, s[b] the
 * sum of exp(term − mx[b]). */
static void lse_add(double *mx, double *s, int b, double w) {
    if (w > mx[b]) {
        s[b] = s[b] * exp(mx[b] - w) + 1.0;
        mx[b] = w;
    } else {
        s[b] += exp(w - mx[b]);
    }
}

/* log w of every image for sample k, into logw (if given) and the sums;
 * DCRW_ENUMERIC for one that is not finite. */
static int iw_sample(call *c, const float *x, int K, int k, uint64_t seed, int64_t first,
                     double *lr, double *logw, double *mx, double *s) {
    pass_outputs out = {0};
    out.log_ratio = lr;
    dcrw_runner_forward(c->r, x, NULL, noise_of(NULL, seed, iw_stream(k), first), &out);
    for (int b = 0; b < c->B; b++) {
        const double w = -c->r->lx[b] + lr[b];
        if (!isfinite(w))
            return dcrw_fail(DCRW_ENUMERIC,
                             "dcrw_evaluate_iw: the log-weight of image %lld, sample %d is not "
                             "finite",
                             (long long)(first + b), k);
        if (logw) logw[(size_t)b * K + k] = w;
        if (k == 0) mx[b] = w, s[b] = 0.0;
        lse_add(mx, s, b, w);
    }
    return DCRW_OK;
}

int dcrw_evaluate_iw(const dcrw_model *m, int B, const float *x, int K, uint64_t seed,
                     int64_t first, double *iw, double *logw) {
    const char *fn = "dcrw_evaluate_iw";
    if (!iw && !logw) return dcrw_fail(DCRW_EINVAL, "%s: iw and logw are NULL", fn);
    if (K < 1) return dcrw_fail(DCRW_EINVAL, "%s: K must be >= 1, got %d", fn, K);
    int rc = check_part(fn, B, first);
    if (rc) return rc;
    call *c;
    if ((rc = prepare(fn, m, B, x, NULL, NULL, CALL_PASS, &c))) return rc;
    /* per image: this sample's log p(z) − log q(z|x), and the running
     * log-sum-exp of the log-weights (its largest term, and the sum) */
    double *tmp = dcrw_calloc((size_t)B, 3 * sizeof *tmp);
    if (!tmp) {
        call_end(c);
        return DCRW_ENOMEM;
    }
    double *lr = tmp, *mx = tmp + B, *s = tmp + 2 * B;
    for (int k = 0; k < K && !rc; k++) rc = iw_sample(c, x, K, k, seed, first, lr, logw, mx, s);
    if (!rc && iw)
        for (int b = 0; b < B; b++) iw[b] = -(mx[b] + log(s[b]) - log((double)K));
    dcrw_free(tmp);
    call_end(c);
    return rc;
}

/* ---- generation ----------------------------------------------------------- */

static int decode(const char *fn, const dcrw_model *m, int B, const int32_t *labels, const float *z,
                  runner_noise noise, float *images, float *canvases, float *write_windows) {
    if (m && B >= 1 && !images && !canvases && !write_windows)
        return dcrw_fail(DCRW_EINVAL, "%s: no output buffer", fn);
    if (m && B >= 1 && z && !dcrw_all_finite(z, (size_t)m->d.T * B * m->d.Z))
        return dcrw_fail(DCRW_ENUMERIC, "%s: z is not finite", fn);
    int rc = m && B >= 1 && !m->d.cls ? check_labels(fn, m, B, labels) : DCRW_OK;
    call *c;
    if (!rc) rc = call_begin(&c, fn, m, B, CALL_DECODER);
    if (rc) return rc;
    pass_outputs out = {0};
    out.canvases = canvases;
    out.images = images;
    out.write_windows = write_windows;
    dcrw_runner_generate(c->r, labels, noise, &out);
    call_end(c);
    return check_outputs(fn, m, B, &out);
}

int dcrw_decode(const dcrw_model *m, int B, const float *z, uint64_t seed, float *images,
                float *canvases) {
    return dcrw_decode_windows(m, B, z, seed, images, canvases, NULL);
}

int dcrw_decode_windows(const dcrw_model *m, int B, const float *z, uint64_t seed, float *images,
                        float *canvases, float *write_windows) {
    /* z = NULL: the prior N(0, I), drawn like noise */
    return decode("dcrw_decode", m, B, NULL, z, noise_of(z, seed, DCRW_STREAM_PRIOR, 0), images,
                  canvases, write_windows);
}

int dcrw_decode_part(const dcrw_model *m, int B, uint64_t seed, int64_t first, float *images,
                     float *canvases, float *write_windows) {
    int rc = check_part("dcrw_decode_part", B, first);
    if (rc) return rc;
    return decode("dcrw_decode_part", m, B, NULL, NULL,
                  noise_of(NULL, seed, DCRW_STREAM_PRIOR, first), images, canvases, write_windows);
}

int dcrw_decode_labels(const dcrw_model *m, int B, const int32_t *labels, const float *z,
                       uint64_t seed, int64_t first, float *images, float *canvases,
                       float *write_windows) {
    const char *fn = "dcrw_decode_labels";
    int rc = check_part(fn, B, first);
    if (!rc && !labels) rc = dcrw_fail(DCRW_EINVAL, "%s: labels is NULL", fn);
    if (rc) return rc;
    /* z = NULL: the prior, drawn as dcrw_decode_part draws it */
    return decode(fn, m, B, labels, z, noise_of(z, seed, DCRW_STREAM_PRIOR, first), images,
                  canvases, write_windows);
}

/* ---- read and write: one attention step ---------------------------------- */

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
    DCRW_CHECK_ARG(!m->d.cls, "dcrw_read: the model is a classifier (use dcrw_classify_windows)");
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
    DCRW_CHECK_ARG(!m->d.cls, "dcrw_write: the model is a classifier: it does not write");
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
