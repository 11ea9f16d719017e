/* The trainer: gradients, Adam moments, step count and the workspace of one
 * model's training, and its checkpoints. */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "adam.h"
#include "checkpoint.h"
#include "common.h"
#include "runner.h"

enum { DCRW_MAX_ADAM_PARTS = 64 };

struct dcrw_trainer {
    dcrw_model *m;
    dcrw_train_config tc;
    float *block; /* grad, adam m, adam v: three flat buffers */
    float *grad, *am, *av;
    uint64_t step;
    float kl_weight; /* dcrw_trainer_set_kl_weight(), 1 by default */
    int grads_ready; /* backward succeeded since the last apply */
    int threads;
    dcrw_pool *pool;
    dcrw_runner *run; /* sized for run->B images */
};

int dcrw_train_config_default(dcrw_train_config *tc) {
    DCRW_CHECK_ARG(tc, "dcrw_train_config_default: tc is NULL");
    memset(tc, 0, sizeof *tc);
    tc->size = sizeof *tc;
    tc->learning_rate = 1e-3f;
    tc->beta1 = 0.9f;
    tc->beta2 = 0.999f;
    tc->adam_eps = 1e-8f;
    tc->clip_norm = 5.0f;
    tc->seed = 0;
    tc->threads = 0;
    return DCRW_OK;
}

static int check_tc(const dcrw_train_config *tc) {
    DCRW_CHECK_ARG(tc->size == sizeof *tc, "train config size is %u, expected %zu",
                   (unsigned)tc->size, sizeof *tc);
    DCRW_CHECK_ARG(isfinite(tc->learning_rate) && tc->learning_rate > 0,
                   "learning_rate = %g must be finite and > 0", (double)tc->learning_rate);
    DCRW_CHECK_ARG(tc->beta1 >= 0 && tc->beta1 < 1, "beta1 = %g must be in [0, 1)",
                   (double)tc->beta1);
    DCRW_CHECK_ARG(tc->beta2 >= 0 && tc->beta2 < 1, "beta2 = %g must be in [0, 1)",
                   (double)tc->beta2);
    DCRW_CHECK_ARG(isfinite(tc->adam_eps) && tc->adam_eps > 0, "adam_eps = %g must be > 0",
                   (double)tc->adam_eps);
    DCRW_CHECK_ARG(isfinite(tc->clip_norm) && tc->clip_norm >= 0, "clip_norm = %g must be >= 0",
                   (double)tc->clip_norm);
    DCRW_CHECK_ARG(tc->threads >= 0 && tc->threads <= 1024, "threads = %d must be in [0, 1024]",
                   (int)tc->threads);
    return DCRW_OK;
}

int dcrw_trainer_create(dcrw_trainer **out, dcrw_model *m, const dcrw_train_config *tc) {
    DCRW_CHECK_ARG(out, "dcrw_trainer_create: out is NULL");
    *out = NULL;
    DCRW_CHECK_ARG(m && tc, "dcrw_trainer_create: NULL argument");
    int rc = check_tc(tc);
    if (rc) return rc;
    dcrw_trainer *t = dcrw_calloc(1, sizeof *t);
    if (!t) return DCRW_ENOMEM;
    t->block = dcrw_calloc(m->lay.total, 3 * sizeof(float));
    if (!t->block) {
        dcrw_free(t);
        return DCRW_ENOMEM;
    }
    t->m = m;
    t->tc = *tc;
    t->grad = t->block;
    t->am = t->block + m->lay.total;
    t->av = t->block + 2 * m->lay.total;
    /* `threads` chunks of the batch run at once, each with a one-thread
     * BLAS: one meaning for the library's loops and OpenBLAS */
    t->threads = tc->threads > 0 ? tc->threads : dcrw_default_threads();
    t->kl_weight = 1.0f;
    dcrw_blas_single_thread();
    if ((rc = dcrw_pool_create(&t->pool, t->threads))) {
        dcrw_trainer_destroy(t);
        return rc;
    }
    *out = t;
    return DCRW_OK;
}

void dcrw_trainer_destroy(dcrw_trainer *t) {
    if (!t) return;
    dcrw_runner_destroy(t->run);
    dcrw_pool_destroy(t->pool);
    dcrw_free(t->block);
    dcrw_free(t);
}

uint64_t dcrw_trainer_step_count(const dcrw_trainer *t) {
    return t ? t->step : 0;
}

int dcrw_trainer_set_learning_rate(dcrw_trainer *t, float learning_rate) {
    DCRW_CHECK_ARG(t, "dcrw_trainer_set_learning_rate: trainer is NULL");
    DCRW_CHECK_ARG(isfinite(learning_rate) && learning_rate > 0,
                   "dcrw_trainer_set_learning_rate: %g must be finite and > 0",
                   (double)learning_rate);
    t->tc.learning_rate = learning_rate;
    return DCRW_OK;
}

float dcrw_trainer_learning_rate(const dcrw_trainer *t) {
    return t ? t->tc.learning_rate : 0.0f;
}

int dcrw_trainer_set_kl_weight(dcrw_trainer *t, float weight) {
    DCRW_CHECK_ARG(t, "dcrw_trainer_set_kl_weight: trainer is NULL");
    DCRW_CHECK_ARG(isfinite(weight) && weight >= 0,
                   "dcrw_trainer_set_kl_weight: %g must be finite and >= 0", (double)weight);
    t->kl_weight = weight;
    return DCRW_OK;
}

float dcrw_trainer_kl_weight(const dcrw_trainer *t) {
    return t ? t->kl_weight : 0.0f;
}

int dcrw_trainer_backward(dcrw_trainer *t, int B, const float *x, const float *eps,
                          dcrw_loss *out) {
    return dcrw_trainer_backward_part(t, B, x, eps, 0, B, out);
}

/* The backward of the public calls: labels (NULL for none) go with a
 * model that takes them, the classifier or a conditional model (MODEL.md
 * §9, §10); the others refuse them. */
static int backward(dcrw_trainer *t, int B, const float *x, const int32_t *labels, const float *eps,
                    int64_t first, int64_t B_total, dcrw_loss *out) {
    DCRW_CHECK_ARG(t, "dcrw_trainer_backward: trainer is NULL");
    const int takes = t->m->d.K > 0;
    if (takes && !labels)
        return dcrw_fail(DCRW_EINVAL,
                         "dcrw_trainer_backward: the model is %s: it trains on "
                         "labels (dcrw_trainer_backward_labels)",
                         t->m->d.cls ? "a classifier" : "conditional");
    if (!takes && labels)
        return dcrw_fail(DCRW_EINVAL, "dcrw_trainer_backward_labels: the model takes no labels "
                                      "(neither a classifier nor conditional)");
    if (t->m->d.cls && eps)
        return dcrw_fail(DCRW_EINVAL,
                         "dcrw_trainer_backward_labels: eps must be NULL for a classifier");
    DCRW_CHECK_ARG(x, "dcrw_trainer_backward: x is NULL");
    DCRW_CHECK_ARG(B >= 1, "dcrw_trainer_backward: batch size must be >= 1, got %d", B);
    /* the message names the part by its first image and count: its last
     * index, first + B − 1, may not be representable */
    DCRW_CHECK_ARG(first >= 0 && B_total >= B && first <= B_total - B,
                   "dcrw_trainer_backward_part: %d images from index %lld are not within a batch "
                   "of %lld",
                   B, (long long)first, (long long)B_total);
    const dcrw_model *m = t->m;
    t->grads_ready = 0;
    int rc = dcrw_check_images("dcrw_trainer_backward", x, (size_t)B * m->d.P);
    if (rc) return rc;
    const size_t neps = (size_t)m->d.T * B * m->d.Z;
    if (eps && !dcrw_all_finite(eps, neps))
        return dcrw_fail(DCRW_ENUMERIC, "dcrw_trainer_backward: eps is not finite");
    for (int b = 0; labels && b < B; b++)
        if (labels[b] < 0 || labels[b] >= m->d.K)
            return dcrw_fail(DCRW_EINVAL,
                             "dcrw_trainer_backward_labels: label %d of image %d is not in "
                             "[0, %d)",
                             (int)labels[b], b, m->d.K);
    if (!t->run || t->run->B != B || t->run->precision != m->precision) {
        dcrw_runner *r;
        if ((rc = dcrw_runner_create(&r, m, B, t->threads, 1, t->pool))) return rc;
        dcrw_runner_destroy(t->run);
        t->run = r;
    }
    runner_noise noise = {eps, t->tc.seed, DCRW_STREAM_TRAIN ^ (t->step << 16), (uint64_t)first};
    /* here, not after apply: the caller may write the parameters between
     * steps through the pointers the API hands out */
    dcrw_runner_pack(t->run, 0);
    dcrw_runner_backward(t->run, x, labels, noise, (float)(1.0 / (double)B_total), t->kl_weight,
                         t->grad);
    double lx = 0, lz = 0;
    for (int b = 0; b < B; b++) {
        lx += t->run->lx[b];
        lz += t->run->lz[b];
    }
    lx /= B;
    lz /= B;
    if (out) {
        out->lx = lx;
        out->lz = lz;
        out->loss = lx + lz;
    }
    if (!isfinite(lx + lz))
        return dcrw_fail(DCRW_ENUMERIC, "the loss is not finite (Lx = %g, Lz = %g)", lx, lz);
    if (!dcrw_all_finite(t->grad, m->lay.total))
        return dcrw_fail(DCRW_ENUMERIC, "a gradient is not finite (loss %g)", lx + lz);
    t->grads_ready = 1;
    return DCRW_OK;
}

int dcrw_trainer_backward_part(dcrw_trainer *t, int B, const float *x, const float *eps,
                               int64_t first, int64_t B_total, dcrw_loss *out) {
    return backward(t, B, x, NULL, eps, first, B_total, out);
}

int dcrw_trainer_backward_labels(dcrw_trainer *t, int B, const float *x, const int32_t *labels,
                                 const float *eps, dcrw_loss *out) {
    DCRW_CHECK_ARG(labels, "dcrw_trainer_backward_labels: labels is NULL");
    return backward(t, B, x, labels, eps, 0, B, out);
}

int dcrw_trainer_backward_labels_part(dcrw_trainer *t, int B, const float *x, const int32_t *labels,
                                      const float *eps, int64_t first, int64_t B_total,
                                      dcrw_loss *out) {
    DCRW_CHECK_ARG(labels, "dcrw_trainer_backward_labels_part: labels is NULL");
    return backward(t, B, x, labels, eps, first, B_total, out);
}

int dcrw_trainer_find_grad(dcrw_trainer *t, const char *name, float **data, size_t *count) {
    DCRW_CHECK_ARG(t && name, "dcrw_trainer_find_grad: NULL argument");
    float *p;
    int rc = dcrw_model_find_param(t->m, name, &p, count);
    if (rc) return rc;
    if (data) *data = t->grad + (p - t->m->params);
    return DCRW_OK;
}

float *dcrw_trainer_grads(dcrw_trainer *t, size_t *count) {
    if (count) *count = t ? t->m->lay.total : 0;
    return t ? t->grad : NULL;
}

/* Adam's two passes over the parameters and moments, split over the
 * pool's threads: it runs between steps, with the other threads idle. */
typedef struct adam_job {
    adam_step a;
    size_t n;
    int parts, apply;
    int bad[DCRW_MAX_ADAM_PARTS];
} adam_job;

static void adam_part(void *ctx, int i) {
    adam_job *j = ctx;
    /* ranges of whole 64-byte lines */
    const size_t lines = (j->n + 15) / 16;
    size_t lo = lines * i / j->parts * 16, hi = lines * (i + 1) / j->parts * 16;
    if (hi > j->n) hi = j->n;
    if (lo >= hi) return;
    if (j->apply)
        dcrw_adam_apply(&j->a, lo, hi);
    else
        j->bad[i] = dcrw_adam_check(&j->a, lo, hi);
}

static int adam_parallel(dcrw_trainer *t, size_t n) {
    adam_job j;
    memset(&j, 0, sizeof j);
    j.n = n;
    j.parts = t->threads < DCRW_MAX_ADAM_PARTS ? t->threads : DCRW_MAX_ADAM_PARTS;
    if (j.parts < 1) j.parts = 1;
    int bad = dcrw_adam_begin(&j.a, t->m->params, t->grad, t->am, t->av, t->tc.learning_rate,
                              t->tc.beta1, t->tc.beta2, t->tc.adam_eps, t->step + 1);
    if (bad) return bad;
    dcrw_pool_run(t->pool, j.parts, adam_part, &j);
    for (int i = 0; i < j.parts; i++) bad |= j.bad[i];
    if (bad) return bad;
    j.apply = 1;
    dcrw_pool_run(t->pool, j.parts, adam_part, &j);
    return 0;
}

int dcrw_trainer_apply(dcrw_trainer *t) {
    DCRW_CHECK_ARG(t, "dcrw_trainer_apply: trainer is NULL");
    if (!t->grads_ready)
        return dcrw_fail(DCRW_ENUMERIC,
                         "dcrw_trainer_apply: no usable gradients (the last backward failed or "
                         "they were applied already)");
    const size_t n = t->m->lay.total;
    /* the caller may have changed them (an allreduce): check again */
    double norm = dcrw_grad_norm(t->grad, n);
    if (!isfinite(norm)) {
        t->grads_ready = 0;
        return dcrw_fail(DCRW_ENUMERIC, "dcrw_trainer_apply: the gradient norm is not finite");
    }
    if (t->tc.clip_norm > 0) {
        double coef = t->tc.clip_norm / (norm + 1e-6);
        if (coef < 1.0) dcrw_grad_scale(t->grad, n, (float)coef);
    }
    t->grads_ready = 0;
    int bad = adam_parallel(t, n);
    if (bad & (ADAM_BAD_M | ADAM_BAD_V))
        return dcrw_fail(DCRW_ENUMERIC,
                         "dcrw_trainer_apply: step %" PRIu64 " would overflow Adam's %s moment "
                         "(gradient norm %g%s); nothing changed",
                         t->step + 1, bad & ADAM_BAD_V ? "second" : "first", norm,
                         t->tc.clip_norm > 0 ? "" : ", clipping off");
    if (bad)
        return dcrw_fail(DCRW_ENUMERIC,
                         "dcrw_trainer_apply: step %" PRIu64 " would make a parameter non-finite "
                         "(learning rate %g); nothing changed",
                         t->step + 1, (double)t->tc.learning_rate);
    t->step++;
    return DCRW_OK;
}

int dcrw_trainer_step(dcrw_trainer *t, int B, const float *x, const float *eps, dcrw_loss *out) {
    int rc = dcrw_trainer_backward(t, B, x, eps, out);
    if (rc) return rc;
    return dcrw_trainer_apply(t);
}

int dcrw_trainer_step_labels(dcrw_trainer *t, int B, const float *x, const int32_t *labels,
                             const float *eps, dcrw_loss *out) {
    int rc = dcrw_trainer_backward_labels(t, B, x, labels, eps, out);
    if (rc) return rc;
    return dcrw_trainer_apply(t);
}

/* ---- checkpoints (the file format is lib/checkpoint.c's) ------------------ */

int dcrw_trainer_save(const dcrw_trainer *t, const char *path) {
    DCRW_CHECK_ARG(t && path, "dcrw_trainer_save: NULL argument");
    return dcrw_ckpt_write_trainer(path, t->m, t->am, t->av, t->step, t->tc.seed,
                                   t->tc.learning_rate);
}

int dcrw_trainer_resume(dcrw_trainer *t, const char *path) {
    DCRW_CHECK_ARG(t && path, "dcrw_trainer_resume: NULL argument");
    const size_t n = t->m->lay.total;
    /* parameters, then both moments: read and checked whole before the
     * trainer or its model change */
    float *state = dcrw_calloc(n, 3 * sizeof(float));
    if (!state) return DCRW_ENOMEM;
    uint64_t step = 0;
    int rc = dcrw_ckpt_read_trainer(path, t->m, state, state + n, &step);
    if (!rc) {
        memcpy(t->m->params, state, n * sizeof(float));
        memcpy(t->am, state + n, 2 * n * sizeof(float));
        t->step = step;
        t->grads_ready = 0;
    }
    dcrw_free(state);
    return rc;
}
