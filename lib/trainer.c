/* The trainer: gradients, Adam moments, step count and the workspace of one
 * model's training, and its checkpoints. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adam.h"
#include "checkpoint.h"
#include "common.h"
#include "dcrw_build_config.h"
#include "runner.h"

/* The noise stream of training steps given no eps. */
#define TRAIN_NOISE_STREAM 0x7EA1ull

struct dcrw_trainer {
    dcrw_model *m;
    dcrw_train_config tc;
    float *block; /* grad, adam m, adam v: three flat buffers */
    float *grad, *am, *av;
    uint64_t step;
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

int dcrw_trainer_backward(dcrw_trainer *t, int B, const float *x, const float *eps,
                          dcrw_loss *out) {
    return dcrw_trainer_backward_part(t, B, x, eps, 0, B, out);
}

int dcrw_trainer_backward_part(dcrw_trainer *t, int B, const float *x, const float *eps,
                               int64_t first, int64_t B_total, dcrw_loss *out) {
    DCRW_CHECK_ARG(t, "dcrw_trainer_backward: trainer is NULL");
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
    if (!t->run || t->run->B != B) {
        dcrw_runner *r;
        if ((rc = dcrw_runner_create(&r, m, B, t->threads, 1, t->pool))) return rc;
        dcrw_runner_destroy(t->run);
        t->run = r;
    }
    runner_noise noise = {eps, t->tc.seed, TRAIN_NOISE_STREAM ^ (t->step << 16), (uint64_t)first};
    dcrw_runner_backward(t->run, x, noise, (float)(1.0 / (double)B_total), t->grad);
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
    int bad = dcrw_adam_update(n, t->m->params, t->grad, t->am, t->av, t->tc.learning_rate,
                               t->tc.beta1, t->tc.beta2, t->tc.adam_eps, t->step + 1);
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

/* ---- checkpoints -------------------------------------------------------- */

#define MAX_NAME 64

/* The index of the first negative value of v[0..n), or n. Adam's second
 * moments are averages of squares: a negative one comes only from a
 * foreign or damaged file, and would make every later step fail. */
static size_t first_negative(const float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (v[i] < 0.0f) return i;
    return n;
}

/* DCRW_OK if every second moment is >= 0; else DCRW_ENUMERIC naming the
 * tensor and element (fn: what to say it in). */
static int check_second_moments(const dcrw_layout *lay, const float *v, const char *fn) {
    for (int k = 0; k < lay->ntensors; k++) {
        const dcrw_tensor_info *ti = &lay->t[lay->order[k]];
        size_t i = first_negative(v + ti->offset, ti->count);
        if (i < ti->count)
            return dcrw_fail(DCRW_ENUMERIC,
                             "%.200s: Adam second moment adam.v.%s[%zu] = %g is negative", fn,
                             dcrw_tensor_names[lay->order[k]], i, (double)v[ti->offset + i]);
    }
    return DCRW_OK;
}

int dcrw_trainer_save(const dcrw_trainer *t, const char *path) {
    DCRW_CHECK_ARG(t && path, "dcrw_trainer_save: NULL argument");
    const dcrw_layout *lay = &t->m->lay;
    /* never write what dcrw_trainer_resume would refuse (dcrw_ckpt_write checks
     * that every tensor is finite) */
    int rc = check_second_moments(lay, t->av, "dcrw_trainer_save");
    if (rc) return rc;
    const int n = lay->ntensors;
    st_out extra[2 * P_COUNT];
    char names[2 * P_COUNT][MAX_NAME];
    for (int k = 0; k < n; k++) {
        const int id = lay->order[k];
        const dcrw_tensor_info *ti = &lay->t[id];
        for (int which = 0; which < 2; which++) {
            st_out *o = &extra[2 * k + which];
            snprintf(names[2 * k + which], MAX_NAME, "adam.%c.%s", which ? 'v' : 'm',
                     dcrw_tensor_names[id]);
            o->name = names[2 * k + which];
            o->ndim = ti->ndim;
            memset(o->shape, 0, sizeof o->shape);
            for (int i = 0; i < ti->ndim; i++) o->shape[i] = ti->shape[i];
            o->data = (which ? t->av : t->am) + ti->offset;
        }
    }
    char step[32], seed[32], lr[32];
    snprintf(step, sizeof step, "%" PRIu64, t->step);
    snprintf(seed, sizeof seed, "%" PRIu64, t->tc.seed);
    snprintf(lr, sizeof lr, "%.9g", (double)t->tc.learning_rate);
    const char *keys[] = {"dcrw.step", "dcrw.train.seed", "dcrw.train.learning_rate"};
    const char *vals[] = {step, seed, lr};
    return dcrw_ckpt_write(path, t->m, extra, 2 * n, keys, vals, 3);
}

static int same_config(const dcrw_config *a, const dcrw_config *b) {
    return a->channels == b->channels && a->height == b->height && a->width == b->width &&
           a->glimpses == b->glimpses && a->enc_size == b->enc_size && a->dec_size == b->dec_size &&
           a->z_size == b->z_size && a->read_n == b->read_n && a->write_n == b->write_n &&
           a->conv1 == b->conv1 && a->conv2 == b->conv2 && a->encoder == b->encoder &&
           a->read_attention == b->read_attention && a->write_attention == b->write_attention &&
           a->canvas_init == b->canvas_init;
}

/* dcrw.step: absent (a model checkpoint) is 0; else decimal digits only,
 * at most 2^63 − 1, so that a count written by another program is never
 * read wrapped or saturated. */
static int meta_step(const st_file *f, const char *path, uint64_t *step) {
    const char *s = dcrw_st_meta(f, "dcrw.step");
    *step = 0;
    if (!s) return DCRW_OK;
    if (*s == '\0') return dcrw_fail(DCRW_EFORMAT, "%.200s: dcrw.step is empty, not a count", path);
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return dcrw_fail(DCRW_EFORMAT, "%.200s: dcrw.step \"%.32s\" is not a count", path, s);
        if (v > ((uint64_t)INT64_MAX - (uint64_t)(*p - '0')) / 10)
            return dcrw_fail(DCRW_EFORMAT, "%.200s: dcrw.step %.32s%s exceeds 2^63 - 1", path, s,
                             strlen(s) > 32 ? "..." : "");
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *step = v;
    return DCRW_OK;
}

int dcrw_trainer_resume(dcrw_trainer *t, const char *path) {
    DCRW_CHECK_ARG(t && path, "dcrw_trainer_resume: NULL argument");
    st_file f;
    int rc = dcrw_st_read(&f, path);
    if (rc) return rc;
    dcrw_model *loaded = NULL;
    float *moments = NULL;
    if ((rc = dcrw_ckpt_model_from_file(&f, &loaded))) goto done;
    if (!same_config(&loaded->cfg, &t->m->cfg)) {
        rc = dcrw_fail(DCRW_ESHAPE, "%s: its configuration differs from the trainer's model", path);
        goto done;
    }
    const dcrw_layout *lay = &t->m->lay;
    uint64_t step = 0;
    if ((rc = meta_step(&f, path, &step))) goto done;
    moments = dcrw_calloc(lay->total, 2 * sizeof(float));
    if (!moments) {
        rc = DCRW_ENOMEM;
        goto done;
    }
    for (int k = 0; k < lay->ntensors; k++) {
        const int id = lay->order[k];
        const dcrw_tensor_info *ti = &lay->t[id];
        for (int which = 0; which < 2; which++) {
            char name[MAX_NAME];
            snprintf(name, sizeof name, "adam.%c.%s", which ? 'v' : 'm', dcrw_tensor_names[id]);
            if (!dcrw_st_find(&f, name)) continue; /* a model checkpoint: moments start at 0 */
            float *dst = moments + which * lay->total + ti->offset;
            if ((rc = dcrw_ckpt_copy_tensor(&f, name, ti->ndim, ti->shape, dst))) goto done;
        }
    }
    /* dcrw_ckpt_copy_tensor refused non-finite values */
    if ((rc = check_second_moments(lay, moments + lay->total, path))) goto done;
    /* everything checked: commit */
    memcpy(t->m->params, loaded->params, lay->total * sizeof(float));
    memcpy(t->am, moments, 2 * lay->total * sizeof(float));
    t->step = step;
    t->grads_ready = 0;
done:
    dcrw_free(moments);
    dcrw_model_destroy(loaded);
    dcrw_st_free(&f);
    return rc;
}
