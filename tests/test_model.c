/* The four models through the public API: whole-model gradients against
 * finite differences, consistency of encode/decode/reconstruct/evaluate,
 * generation, resume bit-for-bit, and the non-finite paths. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "testutil.h"

#define NTINY TU_NTINY

static void normal_fill(float *x, size_t n, uint64_t seed) {
    uint64_t key = rng_key(seed, 5, 0);
    for (size_t i = 0; i < n; i++) x[i] = rng_normal(key, i);
}

static double eval_loss(const dcrw_model *m, int B, const float *x, const float *eps) {
    dcrw_loss l;
    ck_assert_int_eq(dcrw_evaluate(m, B, x, eps, &l), DCRW_OK);
    return l.loss;
}

typedef struct model_ctx {
    const dcrw_model *m;
    int B;
    const float *x, *eps;
} model_ctx;

static double model_loss(void *ctx) {
    const model_ctx *c = ctx;
    return eval_loss(c->m, c->B, c->x, c->eps);
}

static double model_lx(void *ctx) {
    const model_ctx *c = ctx;
    dcrw_loss l;
    ck_assert_int_eq(dcrw_evaluate(c->m, c->B, c->x, c->eps, &l), DCRW_OK);
    return l.lx;
}

/* Tiny configuration i with its attention layers perturbed off their
 * centred start, so that their gradients are generic; and a batch of B
 * images and their noise. */
static dcrw_model *perturbed_model_t(int i, int glimpses, uint64_t seed) {
    dcrw_config c = tu_tiny_config(i);
    if (glimpses) c.glimpses = glimpses;
    dcrw_model *m;
    ck_assert_int_eq(dcrw_model_create(&m, &c, 100 + seed + (uint64_t)i), DCRW_OK);
    float *w;
    size_t n;
    if (dcrw_model_find_param(m, "read.attn.weight", &w, &n) == DCRW_OK)
        tu_fill_uniform(w, n, -0.3f, 0.3f, 9 + seed);
    if (dcrw_model_find_param(m, "write.attn.weight", &w, &n) == DCRW_OK)
        tu_fill_uniform(w, n, -0.3f, 0.3f, 10 + seed);
    return m;
}

static dcrw_model *perturbed_model(int i, uint64_t seed) {
    return perturbed_model_t(i, 0, seed);
}

static void make_batch(const dcrw_model *m, int B, uint64_t seed, float **x, float **eps) {
    dcrw_config c = {.size = sizeof c};
    dcrw_model_config(m, &c);
    const size_t P = dcrw_model_input_size(m), neps = (size_t)c.glimpses * B * c.z_size;
    *x = malloc((size_t)B * P * sizeof(float));
    *eps = malloc(neps * sizeof(float));
    tu_fill_uniform(*x, (size_t)B * P, 0.0f, 1.0f, 11 + seed);
    normal_fill(*eps, neps, 12 + seed);
}

/* Every parameter tensor against finite differences of the float loss
 * through the public API (tu_fd_check_model: float precision, 8 coordinates
 * a tensor). The CNN's max-pool and ReLU have kinks the five-point
 * difference's ±2h = ±2e-2 crosses often, in the CNN's own parameters and
 * in the read attention that feeds it its patches: there a central
 * difference with h = 1e-3 and kinks skipped, with the larger noise floor
 * the smaller step brings. The golden files check the same gradients to
 * 1e-4 against float64. */
static void check_finite_differences(int i, int glimpses) {
    dcrw_model *m = perturbed_model_t(i, glimpses, 0);
    const int B = 3;
    float *x, *eps;
    make_batch(m, B, 0, &x, &eps);

    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    dcrw_trainer *t;
    ck_assert_int_eq(dcrw_trainer_create(&t, m, &tc), DCRW_OK);
    dcrw_loss l;
    ck_assert_int_eq(dcrw_trainer_backward(t, B, x, eps, &l), DCRW_OK);
    ck_assert(fabs(l.loss - eval_loss(m, B, x, eps)) < 1e-6 * l.loss);

    model_ctx ctx = {m, B, x, eps};
    dcrw_config c = {.size = sizeof c};
    dcrw_model_config(m, &c);
    char what[48];
    snprintf(what, sizeof what, "config %d, %d glimpses", i, (int)c.glimpses);
    const size_t checked = tu_fd_check_model(what, m, t, model_loss, &ctx, 8, 13);
    ck_assert_uint_ge(checked, 4 * 10);
    dcrw_trainer_destroy(t);
    dcrw_model_destroy(m);
    free(x);
    free(eps);
}

START_TEST(test_finite_differences) {
    check_finite_differences(_i, 0);
}
END_TEST

/* One and two glimpses: the states before the first step are constants,
 * and the backward skips what only they would need (the recurrent
 * products and weight-gradient rows of step 0, x̂_0's and h_{−1}'s
 * gradients); with one glimpse every gradient comes from that step. */
START_TEST(test_first_step) {
    check_finite_differences(_i % NTINY, 1 + _i / NTINY);
}
END_TEST

/* decode(encode(x)) draws what reconstruct draws, and its last canvas
 * scores what evaluate reports */
START_TEST(test_encode_decode_consistent) {
    dcrw_config c = tu_tiny_config(_i);
    dcrw_model *m;
    ck_assert_int_eq(dcrw_model_create(&m, &c, 200 + _i), DCRW_OK);
    const int B = 4, P = (int)dcrw_model_input_size(m), T = c.glimpses, Z = c.z_size;
    const size_t nz = (size_t)T * B * Z, nc = (size_t)T * B * P;
    float *x = malloc((size_t)B * P * 4), *eps = malloc(nz * 4), *z = malloc(nz * 4),
          *mu = malloc(nz * 4), *ls = malloc(nz * 4), *c1 = malloc(nc * 4), *c2 = malloc(nc * 4),
          *img = malloc((size_t)B * P * 4);
    tu_fill_uniform(x, (size_t)B * P, 0.0f, 1.0f, 21);
    for (size_t i = 0; i < (size_t)B * P; i++) x[i] = x[i] > 0.5f; /* binary */
    normal_fill(eps, nz, 22);
    ck_assert_int_eq(dcrw_encode(m, B, x, eps, z, mu, ls), DCRW_OK);
    for (size_t i = 0; i < nz; i++)
        ck_assert_float_eq_tol(z[i], mu[i] + expf(ls[i]) * eps[i], 1e-5f * (1 + fabsf(z[i])));
    ck_assert_int_eq(dcrw_decode(m, B, z, 0, img, c1), DCRW_OK);
    ck_assert_int_eq(dcrw_reconstruct(m, B, x, eps, NULL, c2), DCRW_OK);
    ck_assert_int_eq(memcmp(c1, c2, nc * 4), 0);
    ck_assert_int_eq(memcmp(img, c1 + (size_t)(T - 1) * B * P, (size_t)B * P * 4), 0);

    /* Lx from the final Bernoulli means; Lz from μ, log σ */
    double lx = 0, lz = 0;
    for (size_t i = 0; i < (size_t)B * P; i++) {
        double pr = img[i];
        lx -= x[i] ? log(pr) : log1p(-pr);
    }
    for (size_t i = 0; i < nz; i++)
        lz += 0.5 * ((double)mu[i] * mu[i] + exp(2.0 * ls[i]) - 2.0 * ls[i] - 1.0);
    dcrw_loss l;
    ck_assert_int_eq(dcrw_evaluate(m, B, x, eps, &l), DCRW_OK);
    ck_assert_msg(fabs(l.lx - lx / B) < 1e-4 * l.lx, "lx %g vs %g", l.lx, lx / B);
    ck_assert_msg(fabs(l.lz - lz / B) < 1e-4 * (1 + l.lz), "lz %g vs %g", l.lz, lz / B);
    ck_assert(fabs(l.loss - l.lx - l.lz) < 1e-9 * l.loss);
    double plx[4], plz[4];
    ck_assert_int_eq(dcrw_evaluate_images(m, B, x, eps, plx, plz), DCRW_OK);
    ck_assert(fabs((plx[0] + plx[1] + plx[2] + plx[3]) / B - l.lx) < 1e-9 * l.lx);

    /* eps = NULL is the same fixed noise in encode and evaluate */
    dcrw_loss a, b;
    ck_assert_int_eq(dcrw_evaluate(m, B, x, NULL, &a), DCRW_OK);
    ck_assert_int_eq(dcrw_evaluate(m, B, x, NULL, &b), DCRW_OK);
    ck_assert(a.loss == b.loss);
    ck_assert_int_eq(dcrw_encode(m, B, x, NULL, z, NULL, NULL), DCRW_OK);
    ck_assert_int_eq(dcrw_decode(m, B, z, 0, img, NULL), DCRW_OK);
    lx = 0;
    for (size_t i = 0; i < (size_t)B * P; i++) lx -= x[i] ? log(img[i]) : log1p(-img[i]);
    ck_assert(fabs(a.lx - lx / B) < 1e-4 * a.lx);

    dcrw_model_destroy(m);
    free(x), free(eps), free(z), free(mu), free(ls), free(c1), free(c2), free(img);
}
END_TEST

START_TEST(test_generation) {
    dcrw_config c = tu_tiny_config(_i);
    dcrw_model *m;
    ck_assert_int_eq(dcrw_model_create(&m, &c, 300 + _i), DCRW_OK);
    const int B = 5, P = (int)dcrw_model_input_size(m), T = c.glimpses;
    float *a = malloc((size_t)T * B * P * 4), *b = malloc((size_t)T * B * P * 4),
          *img = malloc((size_t)B * P * 4);
    ck_assert_int_eq(dcrw_decode(m, B, NULL, 77, img, a), DCRW_OK);
    ck_assert_int_eq(dcrw_decode(m, B, NULL, 77, NULL, b), DCRW_OK);
    ck_assert_int_eq(memcmp(a, b, (size_t)T * B * P * 4), 0);
    for (size_t i = 0; i < (size_t)T * B * P; i++) ck_assert(a[i] > 0.0f && a[i] < 1.0f);
    ck_assert_int_eq(memcmp(img, a + (size_t)(T - 1) * B * P, (size_t)B * P * 4), 0);
    ck_assert_int_eq(dcrw_decode(m, B, NULL, 78, NULL, b), DCRW_OK);
    ck_assert_int_ne(memcmp(a, b, (size_t)T * B * P * 4), 0);
    dcrw_model_destroy(m);
    free(a), free(b), free(img);
}
END_TEST

/* N steps straight equal k steps, save, resume in a fresh trainer, N − k */
START_TEST(test_resume_bit_exact) {
    dcrw_config c = tu_tiny_config(_i);
    const int B = 4, N = 6, K = 2;
    dcrw_model *m1, *m2;
    ck_assert_int_eq(dcrw_model_create(&m1, &c, 400), DCRW_OK);
    const int P = (int)dcrw_model_input_size(m1);
    float *x = malloc((size_t)N * B * P * 4);
    tu_fill_uniform(x, (size_t)N * B * P, 0.0f, 1.0f, 31);
    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    tc.seed = 5;
    tc.learning_rate = 1e-2f;
    dcrw_trainer *t1, *t2;
    ck_assert_int_eq(dcrw_trainer_create(&t1, m1, &tc), DCRW_OK);
    for (int s = 0; s < N; s++)
        ck_assert_int_eq(dcrw_trainer_step(t1, B, x + (size_t)s * B * P, NULL, NULL), DCRW_OK);
    ck_assert_uint_eq(dcrw_trainer_step_count(t1), N);

    char *dir = tu_tmpdir();
    char path[4200];
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    ck_assert_int_eq(dcrw_model_create(&m2, &c, 400), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_create(&t2, m2, &tc), DCRW_OK);
    for (int s = 0; s < K; s++)
        ck_assert_int_eq(dcrw_trainer_step(t2, B, x + (size_t)s * B * P, NULL, NULL), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_save(t2, path), DCRW_OK);
    dcrw_trainer_destroy(t2);
    dcrw_model_destroy(m2);

    /* a new process would start from a model created with another seed */
    ck_assert_int_eq(dcrw_model_create(&m2, &c, 999), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_create(&t2, m2, &tc), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_resume(t2, path), DCRW_OK);
    ck_assert_uint_eq(dcrw_trainer_step_count(t2), K);
    for (int s = K; s < N; s++)
        ck_assert_int_eq(dcrw_trainer_step(t2, B, x + (size_t)s * B * P, NULL, NULL), DCRW_OK);
    size_t n;
    float *p1 = dcrw_model_params(m1, &n), *p2 = dcrw_model_params(m2, NULL);
    ck_assert_int_eq(memcmp(p1, p2, n * 4), 0);
    /* and they did move */
    dcrw_model *m0;
    ck_assert_int_eq(dcrw_model_create(&m0, &c, 400), DCRW_OK);
    ck_assert_int_ne(memcmp(p1, dcrw_model_params(m0, NULL), n * 4), 0);

    /* the trainer checkpoint is also a model checkpoint */
    dcrw_model *m3;
    ck_assert_int_eq(dcrw_model_load(&m3, path), DCRW_OK);
    ck_assert_uint_eq(dcrw_model_param_floats(m3), n);

    /* resuming into a model of another shape is refused, nothing changes */
    dcrw_config other = tu_tiny_config((_i + 1) % NTINY);
    dcrw_model *m4;
    dcrw_trainer *t4;
    ck_assert_int_eq(dcrw_model_create(&m4, &other, 1), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_create(&t4, m4, &tc), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_resume(t4, path), DCRW_ESHAPE);
    ck_assert_uint_eq(dcrw_trainer_step_count(t4), 0);

    dcrw_trainer_destroy(t4);
    dcrw_model_destroy(m4);
    dcrw_model_destroy(m3);
    dcrw_model_destroy(m0);
    dcrw_trainer_destroy(t1);
    dcrw_trainer_destroy(t2);
    dcrw_model_destroy(m1);
    dcrw_model_destroy(m2);
    tu_rmdir(dir);
    free(x);
}
END_TEST

/* one Adam step by hand: clip then update with bias correction */
START_TEST(test_adam_by_hand) {
    dcrw_config c = tu_tiny_config(1);
    dcrw_model *m;
    ck_assert_int_eq(dcrw_model_create(&m, &c, 1), DCRW_OK);
    const int B = 2, P = (int)dcrw_model_input_size(m);
    float x[2 * 25];
    tu_fill_uniform(x, (size_t)B * P, 0, 1, 3);
    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    tc.clip_norm = 0.5f;
    tc.learning_rate = 0.01f;
    dcrw_trainer *t;
    ck_assert_int_eq(dcrw_trainer_create(&t, m, &tc), DCRW_OK);
    size_t n;
    float *p = dcrw_model_params(m, &n);
    float *before = malloc(n * 4), *g = malloc(n * 4);
    memcpy(before, p, n * 4);
    ck_assert_int_eq(dcrw_trainer_backward(t, B, x, NULL, NULL), DCRW_OK);
    memcpy(g, dcrw_trainer_grads(t, NULL), n * 4);
    double norm = 0;
    for (size_t i = 0; i < n; i++) norm += (double)g[i] * g[i];
    norm = sqrt(norm);
    ck_assert(norm > 0.5); /* so the clip acts */
    ck_assert_int_eq(dcrw_trainer_apply(t), DCRW_OK);
    /* step 1: m̂ = g', v̂ = g'², update = lr·g'/(|g'| + ε) */
    for (size_t i = 0; i < n; i++) {
        double gc = g[i] * (0.5 / (norm + 1e-6));
        double upd = 0.01 * gc / (fabs(gc) + 1e-8);
        ck_assert_msg(fabs((before[i] - p[i]) - upd) < 2e-6, "param %zu: moved %g, expected %g", i,
                      (double)(before[i] - p[i]), upd);
    }
    /* gradients are spent: a second apply is refused */
    ck_assert_int_eq(dcrw_trainer_apply(t), DCRW_ENUMERIC);
    dcrw_trainer_destroy(t);
    dcrw_model_destroy(m);
    free(before), free(g);
}
END_TEST

/* The KL weight w gives the gradient of Lx + w·Lz: linear in w, with w = 0
 * the finite differences of Lx alone; the reported losses stay the bound. */
START_TEST(test_kl_weight) {
    dcrw_model *m = perturbed_model(_i, 100);
    const int B = 3;
    float *x, *eps;
    make_batch(m, B, 10, &x, &eps);
    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    dcrw_trainer *t;
    ck_assert_int_eq(dcrw_trainer_create(&t, m, &tc), DCRW_OK);
    ck_assert_float_eq(dcrw_trainer_kl_weight(t), 1.0f);
    const size_t total = dcrw_model_param_floats(m);
    float *g[3];
    dcrw_loss l[3];
    const float weights[3] = {1.0f, 0.0f, 0.25f};
    for (int k = 0; k < 3; k++) {
        ck_assert_int_eq(dcrw_trainer_set_kl_weight(t, weights[k]), DCRW_OK);
        ck_assert_float_eq(dcrw_trainer_kl_weight(t), weights[k]);
        ck_assert_int_eq(dcrw_trainer_backward(t, B, x, eps, &l[k]), DCRW_OK);
        g[k] = malloc(total * sizeof(float));
        memcpy(g[k], dcrw_trainer_grads(t, NULL), total * sizeof(float));
    }
    double scale = 0, kl_part = 0;
    for (size_t i = 0; i < total; i++) {
        scale = fmax(scale, fabs(g[0][i]));
        kl_part = fmax(kl_part, fabs(g[0][i] - g[1][i]));
    }
    for (int k = 1; k < 3; k++) {
        ck_assert(l[k].lx == l[0].lx && l[k].lz == l[0].lz && l[k].loss == l[0].loss);
    }
    ck_assert_msg(kl_part > 1e-4 * scale, "config %d: the KL term moves the gradient", _i);
    for (size_t i = 0; i < total; i++) {
        const double want = 0.75 * g[1][i] + 0.25 * g[0][i];
        ck_assert_msg(fabs(g[2][i] - want) <= 1e-5 * scale + 1e-7,
                      "config %d, gradient %zu: %g with w = 0.25, expected %g", _i, i, g[2][i],
                      want);
    }
    /* w = 0: the gradient of Lx alone, against its finite differences */
    model_ctx ctx = {m, B, x, eps};
    const char *names[] = {"q.mu.weight", "q.logsigma.bias", "dec.lstm.weight_ih", "write.bias"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        float *p;
        size_t cnt;
        ck_assert_int_eq(dcrw_model_find_param(m, names[k], &p, &cnt), DCRW_OK);
        const float *gp = g[1] + (p - dcrw_model_params(m, NULL));
        char what[96];
        snprintf(what, sizeof what, "config %d %s, KL weight 0", _i, names[k]);
        tu_fd o = tu_fd_f32(6, rng_key(23, k, 0));
        ck_assert_uint_ge(tu_fd_check_f(what, model_lx, &ctx, p, cnt, gp, &o).checked, 1);
    }
    for (int k = 0; k < 3; k++) free(g[k]);
    dcrw_trainer_destroy(t);
    dcrw_model_destroy(m);
    free(x);
    free(eps);
}
END_TEST

/* a rate changed between steps scales that step's Adam update, and only it */
START_TEST(test_set_learning_rate) {
    dcrw_config c = tu_tiny_config(1);
    dcrw_model *ma, *mb;
    ck_assert_int_eq(dcrw_model_create(&ma, &c, 1), DCRW_OK);
    ck_assert_int_eq(dcrw_model_create(&mb, &c, 1), DCRW_OK);
    const int B = 2, P = (int)dcrw_model_input_size(ma);
    float x[2 * 2 * 25];
    tu_fill_uniform(x, (size_t)2 * B * P, 0, 1, 3);
    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    tc.learning_rate = 0.01f;
    dcrw_trainer *ta, *tb;
    ck_assert_int_eq(dcrw_trainer_create(&ta, ma, &tc), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_create(&tb, mb, &tc), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_step(ta, B, x, NULL, NULL), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_step(tb, B, x, NULL, NULL), DCRW_OK);
    size_t n;
    float *pa = dcrw_model_params(ma, &n), *pb = dcrw_model_params(mb, NULL);
    ck_assert_int_eq(memcmp(pa, pb, n * 4), 0);
    float *before = malloc(n * 4);
    memcpy(before, pa, n * 4);
    ck_assert_int_eq(dcrw_trainer_set_learning_rate(ta, 0.003f), DCRW_OK);
    ck_assert_float_eq(dcrw_trainer_learning_rate(ta), 0.003f);
    ck_assert_float_eq(dcrw_trainer_learning_rate(tb), 0.01f);
    ck_assert_int_eq(dcrw_trainer_step(ta, B, x + B * P, NULL, NULL), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_step(tb, B, x + B * P, NULL, NULL), DCRW_OK);
    double moved = 0;
    for (size_t i = 0; i < n; i++) {
        double da = (double)pa[i] - before[i], db = (double)pb[i] - before[i];
        ck_assert_msg(fabs(da - 0.3 * db) < 1e-6, "param %zu: moved %g, expected 0.3 x %g", i, da,
                      db);
        moved += fabs(db);
    }
    ck_assert(moved > 1e-3);
    dcrw_trainer_destroy(ta);
    dcrw_trainer_destroy(tb);
    dcrw_model_destroy(ma);
    dcrw_model_destroy(mb);
    free(before);
}
END_TEST

START_TEST(test_nonfinite_leaves_model) {
    dcrw_config c = tu_tiny_config(_i);
    dcrw_model *m;
    ck_assert_int_eq(dcrw_model_create(&m, &c, 500), DCRW_OK);
    const int B = 3, P = (int)dcrw_model_input_size(m);
    float *x = malloc((size_t)B * P * 4);
    tu_fill_uniform(x, (size_t)B * P, 0, 1, 41);
    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    dcrw_trainer *t;
    ck_assert_int_eq(dcrw_trainer_create(&t, m, &tc), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_step(t, B, x, NULL, NULL), DCRW_OK);
    char *dir = tu_tmpdir();
    char path[4200];
    snprintf(path, sizeof path, "%s/before.safetensors", dir);
    ck_assert_int_eq(dcrw_trainer_save(t, path), DCRW_OK);
    size_t n;
    float *p = dcrw_model_params(m, &n);
    float *snap = malloc(n * 4);
    memcpy(snap, p, n * 4);

    /* NaN in the input */
    x[7] = NAN;
    ck_assert_int_eq(dcrw_trainer_step(t, B, x, NULL, NULL), DCRW_ENUMERIC);
    ck_assert_ptr_nonnull(strstr(dcrw_last_error(), "x[7]"));
    ck_assert_int_eq(memcmp(p, snap, n * 4), 0);
    ck_assert_int_eq(dcrw_trainer_apply(t), DCRW_ENUMERIC);
    ck_assert_int_eq(memcmp(p, snap, n * 4), 0);
    x[7] = 2.0f; /* out of [0, 1] */
    ck_assert_int_eq(dcrw_trainer_step(t, B, x, NULL, NULL), DCRW_EINVAL);
    x[7] = 0.5f;

    /* a poisoned parameter: the step is refused, nothing else changes */
    float *wh;
    size_t cnt;
    ck_assert_int_eq(dcrw_model_find_param(m, "dec.lstm.weight_hh", &wh, &cnt), DCRW_OK);
    wh[3] = NAN;
    snap[wh + 3 - p] = NAN;
    ck_assert_int_eq(dcrw_trainer_step(t, B, x, NULL, NULL), DCRW_ENUMERIC);
    ck_assert_int_eq(memcmp(p, snap, n * 4), 0);
    ck_assert_uint_eq(dcrw_trainer_step_count(t), 1);
    /* and the Adam state is untouched: resume the good checkpoint, then the
     * same step gives the same parameters as a trainer that never saw NaN */
    wh[3] = 0.0f;
    ck_assert_int_eq(dcrw_trainer_resume(t, path), DCRW_OK);
    dcrw_model *m2;
    dcrw_trainer *t2;
    ck_assert_int_eq(dcrw_model_create(&m2, &c, 1), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_create(&t2, m2, &tc), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_resume(t2, path), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_step(t, B, x, NULL, NULL), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_step(t2, B, x, NULL, NULL), DCRW_OK);
    ck_assert_int_eq(memcmp(p, dcrw_model_params(m2, NULL), n * 4), 0);

    /* NaN noise, NaN latents */
    size_t neps = (size_t)c.glimpses * B * c.z_size;
    float *eps = calloc(neps, 4);
    eps[1] = INFINITY;
    ck_assert_int_eq(dcrw_trainer_backward(t, B, x, eps, NULL), DCRW_ENUMERIC);
    ck_assert_int_eq(dcrw_decode(m, B, eps, 0, x, NULL), DCRW_ENUMERIC);
    dcrw_loss l;
    ck_assert_int_eq(dcrw_evaluate(m, B, x, eps, &l), DCRW_ENUMERIC);

    free(eps);
    dcrw_trainer_destroy(t2);
    dcrw_model_destroy(m2);
    dcrw_trainer_destroy(t);
    dcrw_model_destroy(m);
    tu_rmdir(dir);
    free(x);
    free(snap);
}
END_TEST

START_TEST(test_bad_arguments) {
    dcrw_config c = tu_tiny_config(0);
    dcrw_model *m;
    ck_assert_int_eq(dcrw_model_create(&m, &c, 1), DCRW_OK);
    const int P = (int)dcrw_model_input_size(m);
    float x[2 * 36] = {0}, z[3 * 2 * 3] = {0}, out[2 * 36];
    dcrw_loss l;
    ck_assert_int_eq(dcrw_encode(NULL, 2, x, NULL, z, NULL, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_encode(m, 0, x, NULL, z, NULL, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_encode(m, -4, x, NULL, z, NULL, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_encode(m, 2, NULL, NULL, z, NULL, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_decode(m, 2, z, 0, NULL, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_decode(m, 0, z, 0, out, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_evaluate(m, 2, x, NULL, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_evaluate(NULL, 2, x, NULL, &l), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_evaluate_images(m, 2, x, NULL, NULL, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_reconstruct(m, 2, NULL, NULL, out, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_evaluate(m, 2, x, NULL, &l), DCRW_OK);
    ck_assert(l.lx > 0 && P == 36);

    dcrw_train_config tc;
    ck_assert_int_eq(dcrw_train_config_default(NULL), DCRW_EINVAL);
    dcrw_train_config_default(&tc);
    dcrw_trainer *t = (dcrw_trainer *)1;
    tc.learning_rate = -1;
    ck_assert_int_eq(dcrw_trainer_create(&t, m, &tc), DCRW_EINVAL);
    ck_assert_ptr_null(t);
    ck_assert_ptr_nonnull(strstr(dcrw_last_error(), "learning_rate"));
    dcrw_train_config_default(&tc);
    tc.beta2 = 1.0f;
    ck_assert_int_eq(dcrw_trainer_create(&t, m, &tc), DCRW_EINVAL);
    dcrw_train_config_default(&tc);
    tc.size = 3;
    ck_assert_int_eq(dcrw_trainer_create(&t, m, &tc), DCRW_EINVAL);
    dcrw_train_config_default(&tc);
    ck_assert_int_eq(dcrw_trainer_create(&t, NULL, &tc), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_trainer_create(&t, m, &tc), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_step(NULL, 2, x, NULL, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_trainer_step(t, 0, x, NULL, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_trainer_step(t, 2, NULL, NULL, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_trainer_apply(NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_trainer_apply(t), DCRW_ENUMERIC); /* nothing computed yet */
    ck_assert_int_eq(dcrw_trainer_find_grad(t, "nope", NULL, NULL), DCRW_ENOTFOUND);
    ck_assert_ptr_null(dcrw_trainer_grads(NULL, NULL));
    ck_assert_int_eq(dcrw_trainer_save(t, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_trainer_resume(t, "/nonexistent/x.safetensors"), DCRW_EIO);
    /* batch size can change between steps */
    ck_assert_int_eq(dcrw_trainer_step(t, 2, x, NULL, NULL), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_step(t, 1, x, NULL, NULL), DCRW_OK);
    dcrw_trainer_destroy(t);
    dcrw_trainer_destroy(NULL);
    dcrw_model_destroy(m);
}
END_TEST

/* with zero attention weights the windows are the biases' decoding, by hand */
START_TEST(test_windows_by_hand) {
    dcrw_config c = tu_tiny_config(4); /* draw, 5×7, N_r = 3, N_w = 1 */
    dcrw_model *m;
    ck_assert_int_eq(dcrw_model_create(&m, &c, 1), DCRW_OK);
    float *w, *b;
    size_t n;
    ck_assert_int_eq(dcrw_model_find_param(m, "read.attn.weight", &w, &n), DCRW_OK);
    memset(w, 0, n * 4);
    ck_assert_int_eq(dcrw_model_find_param(m, "read.attn.bias", &b, &n), DCRW_OK);
    const float rb[5] = {0.5f, -0.5f, logf(2.0f), 0.0f, logf(3.0f)};
    memcpy(b, rb, sizeof rb);
    ck_assert_int_eq(dcrw_model_find_param(m, "write.attn.weight", &w, &n), DCRW_OK);
    memset(w, 0, n * 4);
    ck_assert_int_eq(dcrw_model_find_param(m, "write.attn.bias", &b, &n), DCRW_OK);
    const float wb[5] = {0.0f, 0.0f, 0.0f, logf(0.5f), 0.0f};
    memcpy(b, wb, sizeof wb);
    const int B = 2, T = c.glimpses, P = (int)dcrw_model_input_size(m);
    float x[2 * 70], rw[3 * 2 * 5], ww[3 * 2 * 5], gw[3 * 2 * 5];
    tu_fill_uniform(x, (size_t)B * P, 0, 1, 3);
    ck_assert_int_eq(dcrw_reconstruct_windows(m, B, x, NULL, NULL, NULL, rw, ww), DCRW_OK);
    ck_assert_int_eq(dcrw_decode_windows(m, B, NULL, 5, NULL, NULL, gw), DCRW_OK);
    for (int i = 0; i < T * B; i++) {
        /* read: gX = (7+1)/2·1.5, gY = (5+1)/2·0.5, δ = (7−1)/(3−1), σ² = 2, γ = 3 */
        ck_assert_float_eq_tol(rw[5 * i + 0], 6.0f, 1e-5f);
        ck_assert_float_eq_tol(rw[5 * i + 1], 1.5f, 1e-5f);
        ck_assert_float_eq_tol(rw[5 * i + 2], 3.0f, 1e-5f);
        ck_assert_float_eq_tol(rw[5 * i + 3], 2.0f, 1e-5f);
        ck_assert_float_eq_tol(rw[5 * i + 4], 3.0f, 1e-5f);
        /* write, N = 1: centre of the image, δ = exp(log δ̃) = 0.5 */
        ck_assert_float_eq_tol(ww[5 * i + 0], 4.0f, 1e-5f);
        ck_assert_float_eq_tol(ww[5 * i + 1], 3.0f, 1e-5f);
        ck_assert_float_eq_tol(ww[5 * i + 2], 0.5f, 1e-6f);
        ck_assert_float_eq_tol(ww[5 * i + 3], 1.0f, 1e-6f);
        ck_assert_float_eq_tol(gw[5 * i + 2], 0.5f, 1e-6f);
    }
    dcrw_model_destroy(m);
}
END_TEST

/* the batch split over threads changes nothing but summation order: noise
 * drawn by the library follows each image's index, not its chunk */
START_TEST(test_threads_agree) {
    dcrw_config c = tu_tiny_config(_i);
    dcrw_model *m;
    ck_assert_int_eq(dcrw_model_create(&m, &c, 600 + _i), DCRW_OK);
    const int B = 7, P = (int)dcrw_model_input_size(m);
    float *x = malloc((size_t)B * P * 4);
    tu_fill_uniform(x, (size_t)B * P, 0, 1, 61);
    double lx[2][7], lz[2][7];
    size_t n = dcrw_model_param_floats(m);
    float *g[2] = {malloc(n * 4), malloc(n * 4)};
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(dcrw_set_threads(k ? 3 : 1), DCRW_OK);
        ck_assert_int_eq(dcrw_get_threads(), k ? 3 : 1);
        ck_assert_int_eq(dcrw_evaluate_images(m, B, x, NULL, lx[k], lz[k]), DCRW_OK);
        dcrw_train_config tc;
        dcrw_train_config_default(&tc);
        dcrw_trainer *t;
        ck_assert_int_eq(dcrw_trainer_create(&t, m, &tc), DCRW_OK);
        ck_assert_int_eq(dcrw_trainer_backward(t, B, x, NULL, NULL), DCRW_OK);
        memcpy(g[k], dcrw_trainer_grads(t, NULL), n * 4);
        dcrw_trainer_destroy(t);
    }
    ck_assert_int_eq(dcrw_set_threads(0), DCRW_OK);
    ck_assert_int_eq(dcrw_set_threads(-1), DCRW_EINVAL);
    for (int b = 0; b < B; b++) {
        ck_assert(fabs(lx[0][b] - lx[1][b]) <= 1e-6 * lx[0][b]);
        ck_assert(fabs(lz[0][b] - lz[1][b]) <= 1e-6 * (1 + lz[0][b]));
    }
    double err = tu_rel_err(g[1], g[0], n, 1e-6);
    ck_assert_msg(err < 1e-5, "gradients differ by %g", err);
    free(g[0]), free(g[1]), free(x);
    dcrw_model_destroy(m);
}
END_TEST

/* The tiny configurations, then two that take labels: the classifier and
 * a conditional dcrw. */
static dcrw_config parts_config(int i) {
    if (i < NTINY) return tu_tiny_config(i);
    if (i == NTINY) return tu_tiny_classifier();
    dcrw_config c = tu_tiny_config(2);
    c.classes = 3;
    return c;
}

/* One part of a batch: labels[first..] with a model that takes them. */
static int backward_part(dcrw_trainer *t, int n, const float *x, const int32_t *labels,
                         int64_t first, int64_t total, dcrw_loss *out) {
    return labels
               ? dcrw_trainer_backward_labels_part(t, n, x, labels + first, NULL, first, total, out)
               : dcrw_trainer_backward_part(t, n, x, NULL, first, total, out);
}

/* data parallelism: the parts of a batch, each on its own trainer, sum to
 * the whole batch's gradient, and the library's noise follows the image */
START_TEST(test_backward_parts) {
    dcrw_config c = parts_config(_i);
    dcrw_model *m;
    ck_assert_int_eq(dcrw_model_create(&m, &c, 700 + _i), DCRW_OK);
    const int B = 7, P = (int)dcrw_model_input_size(m);
    float *x = malloc((size_t)B * P * 4);
    tu_fill_uniform(x, (size_t)B * P, 0, 1, 71);
    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    tc.seed = 3;
    tc.threads = 1;
    dcrw_trainer *whole, *part;
    ck_assert_int_eq(dcrw_trainer_create(&whole, m, &tc), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_create(&part, m, &tc), DCRW_OK);
    /* one more than the batch: a part past its end is refused before any
     * label is read, but a test must not rely on it */
    int32_t labels[8], *lab = c.classes ? labels : NULL;
    for (int b = 0; b < 8; b++) labels[b] = (b * 2 + 1) % (c.classes ? c.classes : 1);
    dcrw_loss lw, l0, l1;
    ck_assert_int_eq(lab ? dcrw_trainer_backward_labels(whole, B, x, lab, NULL, &lw)
                         : dcrw_trainer_backward(whole, B, x, NULL, &lw),
                     DCRW_OK);
    size_t n;
    const float *gw = dcrw_trainer_grads(whole, &n);
    float *sum = calloc(n, 4);
    ck_assert_int_eq(backward_part(part, 3, x, lab, 0, B, &l0), DCRW_OK);
    const float *gp = dcrw_trainer_grads(part, NULL);
    for (size_t i = 0; i < n; i++) sum[i] = gp[i];
    ck_assert_int_eq(backward_part(part, 4, x + 3 * P, lab, 3, B, &l1), DCRW_OK);
    for (size_t i = 0; i < n; i++) sum[i] += gp[i];
    ck_assert(fabs((3 * l0.loss + 4 * l1.loss) / B - lw.loss) < 1e-6 * lw.loss);
    double err = tu_rel_err(sum, gw, n, 1e-6);
    ck_assert_msg(err < 1e-5, "parts sum to the whole within %g", err);
    ck_assert_int_eq(backward_part(part, 4, x, lab, 4, B, NULL), DCRW_EINVAL);
    ck_assert_int_eq(backward_part(part, 3, x, lab, 0, 2, NULL), DCRW_EINVAL);
    /* labels go with the models that take them, and only there */
    ck_assert_int_eq(lab ? dcrw_trainer_backward_part(part, 3, x, NULL, 0, B, NULL)
                         : dcrw_trainer_backward_labels_part(part, 3, x, labels, NULL, 0, B, NULL),
                     DCRW_EINVAL);
    ck_assert_int_eq(dcrw_trainer_backward_labels_part(part, 3, x, NULL, NULL, 0, B, NULL),
                     DCRW_EINVAL);
    dcrw_trainer_destroy(whole);
    dcrw_trainer_destroy(part);
    dcrw_model_destroy(m);
    free(x);
    free(sum);
}
END_TEST

/* With clipping off, a huge but finite gradient overflows Adam's second
 * moment (g² > FLT_MAX) while the parameters stay finite: the step is
 * refused there and then, and the trainer is exactly as before it, so its
 * checkpoint is byte for byte the one saved before the step; on 1 to 3
 * threads (Adam's passes split over them), the bad element in the first
 * or the last part. */
START_TEST(test_moment_overflow) {
    dcrw_config c = tu_tiny_config(1);
    dcrw_model *m;
    ck_assert_int_eq(dcrw_model_create(&m, &c, 1), DCRW_OK);
    const int B = 2, P = (int)dcrw_model_input_size(m);
    float *x = malloc((size_t)B * P * 4);
    tu_fill_uniform(x, (size_t)B * P, 0, 1, 3);
    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    tc.clip_norm = 0.0f;
    tc.threads = 1 + _i % 3;
    dcrw_trainer *t;
    ck_assert_int_eq(dcrw_trainer_create(&t, m, &tc), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_step(t, B, x, NULL, NULL), DCRW_OK);
    char *dir = tu_tmpdir();
    char before[4200], after[4200];
    snprintf(before, sizeof before, "%s/before.safetensors", dir);
    snprintf(after, sizeof after, "%s/after.safetensors", dir);
    ck_assert_int_eq(dcrw_trainer_save(t, before), DCRW_OK);
    const float huge[] = {1e22f, 1e30f, 3e38f};
    for (size_t k = 0; k < sizeof huge / sizeof huge[0]; k++) {
        ck_assert_int_eq(dcrw_trainer_backward(t, B, x, NULL, NULL), DCRW_OK);
        size_t n;
        float *g = dcrw_trainer_grads(t, &n);
        g[_i < 3 ? 0 : n - 1] = huge[k];
        ck_assert_int_eq(dcrw_trainer_apply(t), DCRW_ENUMERIC);
        ck_assert_msg(strstr(dcrw_last_error(), "second moment"), "%s", dcrw_last_error());
        ck_assert_uint_eq(dcrw_trainer_step_count(t), 1);
        ck_assert_int_eq(dcrw_trainer_save(t, after), DCRW_OK);
        size_t na, nb;
        unsigned char *a = tu_read_file(before, &na), *b = tu_read_file(after, &nb);
        ck_assert_msg(na == nb && memcmp(a, b, na) == 0,
                      "gradient %g: the refused step changed the trainer", (double)huge[k]);
        free(a);
        free(b);
    }
    /* the trainer goes on from where it was */
    ck_assert_int_eq(dcrw_trainer_step(t, B, x, NULL, NULL), DCRW_OK);
    ck_assert_uint_eq(dcrw_trainer_step_count(t), 2);
    dcrw_trainer_destroy(t);
    /* with clipping on, the same gradient is scaled down and applies */
    tc.clip_norm = 5.0f;
    ck_assert_int_eq(dcrw_trainer_create(&t, m, &tc), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_backward(t, B, x, NULL, NULL), DCRW_OK);
    size_t n;
    dcrw_trainer_grads(t, &n)[n / 3] = 3e38f;
    ck_assert_int_eq(dcrw_trainer_apply(t), DCRW_OK);
    dcrw_trainer_destroy(t);
    dcrw_model_destroy(m);
    tu_rmdir(dir);
    free(x);
}
END_TEST

/* Finite parameters large enough that the canvas overflows: every call
 * that reports a number for it says DCRW_ENUMERIC, per image as for the
 * batch mean, rather than handing back NaN or infinity. */
START_TEST(test_overflow_reported) {
    dcrw_config c = tu_tiny_config(1); /* draw-noattn: the write adds W·h + b to the canvas */
    dcrw_model *m;
    ck_assert_int_eq(dcrw_model_create(&m, &c, 1), DCRW_OK);
    const int B = 2, P = (int)dcrw_model_input_size(m), D = c.dec_size;
    float *x = malloc((size_t)B * P * 4), *delta = malloc((size_t)B * P * 4);
    float *h = malloc((size_t)B * D * 4);
    tu_fill_uniform(x, (size_t)B * P, 0, 1, 3);
    float *w, *b;
    size_t nw, nb;
    ck_assert_int_eq(dcrw_model_find_param(m, "write.weight", &w, &nw), DCRW_OK);
    ck_assert_int_eq(dcrw_model_find_param(m, "write.bias", &b, &nb), DCRW_OK);
    for (size_t i = 0; i < nb; i++) b[i] = 3e38f; /* c_2 = 6e38: inf */
    dcrw_loss l;
    ck_assert_int_eq(dcrw_evaluate(m, B, x, NULL, &l), DCRW_ENUMERIC);
    double lx[2], lz[2];
    ck_assert_int_eq(dcrw_evaluate_images(m, B, x, NULL, lx, lz), DCRW_ENUMERIC);
    ck_assert_ptr_nonnull(strstr(dcrw_last_error(), "image 0"));
    ck_assert_int_eq(dcrw_evaluate_images(m, B, x, NULL, NULL, lz), DCRW_ENUMERIC);
    /* the write alone: W·h overflows for h = 1 */
    for (size_t i = 0; i < nw; i++) w[i] = 3e38f;
    for (int i = 0; i < B * D; i++) h[i] = 1.0f;
    ck_assert_int_eq(dcrw_write(m, B, h, delta), DCRW_ENUMERIC);
    ck_assert_ptr_nonnull(strstr(dcrw_last_error(), "dcrw_write"));
    dcrw_model_destroy(m);
    free(x);
    free(delta);
    free(h);
}
END_TEST

/* A part at the very end of the int64 range is refused with a message
 * that names it without computing its last index (which would overflow). */
START_TEST(test_backward_part_extremes) {
    dcrw_config c = tu_tiny_config(1);
    dcrw_model *m;
    ck_assert_int_eq(dcrw_model_create(&m, &c, 1), DCRW_OK);
    const int P = (int)dcrw_model_input_size(m);
    float *x = malloc((size_t)4 * P * 4);
    tu_fill_uniform(x, (size_t)4 * P, 0, 1, 3);
    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    dcrw_trainer *t;
    ck_assert_int_eq(dcrw_trainer_create(&t, m, &tc), DCRW_OK);
    /* the last image of a part of 4 from first is first + 3 < INT64_MAX */
    const int64_t firsts[] = {INT64_MAX, INT64_MAX - 1, INT64_MAX - 3, INT64_MAX - 4};
    for (size_t k = 0; k < sizeof firsts / sizeof firsts[0]; k++) {
        const int valid = firsts[k] == INT64_MAX - 4;
        ck_assert_int_eq(dcrw_trainer_backward_part(t, 4, x, NULL, firsts[k], INT64_MAX, NULL),
                         valid ? DCRW_OK : DCRW_EINVAL);
        if (!valid)
            ck_assert_msg(!strchr(dcrw_last_error(), '-') &&
                              strstr(dcrw_last_error(), "9223372036854775807"),
                          "%s", dcrw_last_error());
    }
    dcrw_trainer_destroy(t);
    dcrw_model_destroy(m);
    free(x);
}
END_TEST

int main(void) {
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("model");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_finite_differences, 0, NTINY);
    tcase_add_loop_test(tc, test_first_step, 0, 2 * NTINY);
    tcase_add_loop_test(tc, test_encode_decode_consistent, 0, NTINY);
    tcase_add_loop_test(tc, test_generation, 0, NTINY);
    tcase_add_loop_test(tc, test_resume_bit_exact, 0, NTINY);
    tcase_add_test(tc, test_adam_by_hand);
    tcase_add_test(tc, test_set_learning_rate);
    tcase_add_loop_test(tc, test_kl_weight, 0, NTINY);
    tcase_add_loop_test(tc, test_nonfinite_leaves_model, 0, 4);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_test(tc, test_windows_by_hand);
    tcase_add_loop_test(tc, test_threads_agree, 0, NTINY);
    tcase_add_loop_test(tc, test_backward_parts, 0, NTINY + 2);
    tcase_add_loop_test(tc, test_moment_overflow, 0, 6);
    tcase_add_test(tc, test_overflow_reported);
    tcase_add_test(tc, test_backward_part_extremes);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
