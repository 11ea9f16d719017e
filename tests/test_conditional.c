/* Class-conditional generative models (MODEL.md §10): every gradient
 * against finite differences through the public API for each encoder, the
 * label actually conditioning the images, reproducible and batch-independent
 * generation, checkpoints, and the refusals on both sides of the
 * conditional / unconditional line. The golden files of an independent
 * float64 implementation are checked by test_golden. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "testutil.h"

/* Small conditional models of three architectures: draw (LSTM encoder,
 * both windows), dcrw (CNN through the read window) and dcrw-noread. */
static dcrw_config conditional(int which) {
    static const int arch[3] = {0, 2, 3}; /* of tu_tiny_config */
    dcrw_config c = tu_tiny_config(arch[which]);
    c.classes = 4;
    return c;
}

typedef struct fd_ctx {
    dcrw_trainer *t;
    int B;
    const float *x, *eps;
    const int32_t *labels;
} fd_ctx;

static double labelled_loss(void *p) {
    fd_ctx *c = p;
    dcrw_loss l;
    ck_assert_int_eq(dcrw_trainer_backward_labels(c->t, c->B, c->x, c->labels, c->eps, &l),
                     DCRW_OK);
    return l.loss;
}

START_TEST(test_finite_differences) {
    dcrw_config c = conditional(_i);
    dcrw_model *m;
    ck_assert_msg(dcrw_model_create(&m, &c, 7) == DCRW_OK, "%s", dcrw_last_error());
    const int B = 3, T = c.glimpses, Z = c.z_size;
    const size_t P = dcrw_model_input_size(m);
    float *x = malloc((size_t)B * P * sizeof *x), *eps = malloc((size_t)T * B * Z * sizeof *eps);
    for (size_t i = 0; i < (size_t)B * P; i++) x[i] = (float)((i * 7 + 3) % 5 < 2);
    tu_fill_uniform(eps, (size_t)T * B * Z, -1.5f, 1.5f, 11);
    const int32_t labels[3] = {3, 0, 3};
    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    tc.threads = 1;
    dcrw_trainer *t;
    ck_assert_int_eq(dcrw_trainer_create(&t, m, &tc), DCRW_OK);
    fd_ctx ctx = {t, B, x, eps, labels};
    char what[32];
    snprintf(what, sizeof what, "conditional %d", _i);
    const size_t checked = tu_fd_check_model(what, m, t, labelled_loss, &ctx, 8, 31);
    labelled_loss(&ctx);
    ck_assert_uint_ge(checked, 40);

    /* the label columns: only those of the labels in the batch (0 and 3)
     * have a gradient; label 1's column of the decoder's input weight none */
    float *gw;
    ck_assert_int_eq(dcrw_trainer_find_grad(t, "dec.lstm.weight_ih", &gw, NULL), DCRW_OK);
    const int cols = c.z_size + c.classes;
    double col0 = 0, col1 = 0;
    for (int r = 0; r < 4 * c.dec_size; r++) {
        col0 += fabs(gw[r * cols + c.z_size + 0]);
        col1 += fabs(gw[r * cols + c.z_size + 1]);
    }
    ck_assert(col0 > 0 && col1 == 0);
    dcrw_trainer_destroy(t);
    dcrw_model_destroy(m);
    free(x);
    free(eps);
}
END_TEST

/* The label changes the images, an image's draw does not depend on its
 * batch, and the same call gives the same bits. */
START_TEST(test_generation) {
    dcrw_config c = conditional(_i);
    dcrw_model *m;
    ck_assert_int_eq(dcrw_model_create(&m, &c, 3), DCRW_OK);
    /* larger label columns than the initialisation's, so the labels matter */
    float *w;
    size_t n;
    ck_assert_int_eq(dcrw_model_find_param(m, "dec.lstm.weight_ih", &w, &n), DCRW_OK);
    tu_fill_uniform(w, n, -1.0f, 1.0f, 5);
    const size_t P = dcrw_model_input_size(m);
    enum { B = 4 };
    const int32_t labels[B] = {0, 1, 2, 3}, same[B] = {2, 2, 2, 2};
    float a[B * 128], b[B * 128], one[128];
    ck_assert_uint_le(P, 128);
    ck_assert_int_eq(dcrw_decode_labels(m, B, labels, NULL, 9, 0, a, NULL, NULL), DCRW_OK);
    ck_assert_int_eq(dcrw_decode_labels(m, B, labels, NULL, 9, 0, b, NULL, NULL), DCRW_OK);
    ck_assert_mem_eq(a, b, B * P * sizeof(float));
    /* image 2 alone, as the third of its set */
    ck_assert_int_eq(dcrw_decode_labels(m, 1, labels + 2, NULL, 9, 2, one, NULL, NULL), DCRW_OK);
    ck_assert(tu_rel_err(one, a + 2 * P, P, 1e-6) < 1e-5);
    /* the same noise with other labels gives other images */
    ck_assert_int_eq(dcrw_decode_labels(m, B, same, NULL, 9, 0, b, NULL, NULL), DCRW_OK);
    ck_assert(tu_rel_err(b + 2 * P, a + 2 * P, P, 1e-6) < 1e-6);
    ck_assert(tu_rel_err(b, a, P, 1e-6) > 1e-3);

    /* the bound of an image under its label, and the reconstruction */
    double lx[B], lz[B];
    ck_assert_int_eq(dcrw_evaluate_labels(m, B, a, labels, 4, 0, lx, lz), DCRW_OK);
    for (int i = 0; i < B; i++) ck_assert(isfinite(lx[i]) && lz[i] > 0);
    double lx2[B], lz2[B];
    ck_assert_int_eq(dcrw_evaluate_labels(m, B, a, same, 4, 0, lx2, lz2), DCRW_OK);
    ck_assert(lx2[2] == lx[2] && lz2[2] == lz[2]);
    ck_assert(lx2[0] != lx[0]);
    ck_assert_int_eq(dcrw_reconstruct_labels(m, B, a, labels, 4, 0, b, NULL, NULL, NULL), DCRW_OK);
    dcrw_model_destroy(m);
}
END_TEST

START_TEST(test_refusals) {
    dcrw_config c = conditional(1);
    dcrw_model *m;
    ck_assert_int_eq(dcrw_model_create(&m, &c, 3), DCRW_OK);
    const size_t P = dcrw_model_input_size(m);
    float x[2 * 64] = {0}, out[2 * 64 * 3];
    double lx[2], lz[2];
    ck_assert_uint_le(P, 64);
    /* the calls without labels name the ones with them */
    ck_assert_int_eq(dcrw_decode(m, 2, NULL, 0, out, NULL), DCRW_EINVAL);
    ck_assert_ptr_nonnull(strstr(dcrw_last_error(), "dcrw_decode_labels"));
    ck_assert_int_eq(dcrw_evaluate_images(m, 2, x, NULL, lx, lz), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_encode(m, 2, x, NULL, out, NULL, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_evaluate_iw(m, 2, x, 2, 0, 0, lx, NULL), DCRW_EINVAL);
    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    dcrw_trainer *t;
    ck_assert_int_eq(dcrw_trainer_create(&t, m, &tc), DCRW_OK);
    dcrw_loss l;
    ck_assert_int_eq(dcrw_trainer_step(t, 2, x, NULL, &l), DCRW_EINVAL);
    ck_assert_ptr_nonnull(strstr(dcrw_last_error(), "conditional"));
    /* bad labels */
    const int32_t bad[2] = {1, 4}, neg[2] = {-1, 0}, good[2] = {1, 3};
    ck_assert_int_eq(dcrw_decode_labels(m, 2, bad, NULL, 0, 0, out, NULL, NULL), DCRW_EINVAL);
    ck_assert_ptr_nonnull(strstr(dcrw_last_error(), "image 1"));
    ck_assert_int_eq(dcrw_evaluate_labels(m, 2, x, neg, 0, 0, lx, lz), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_trainer_step_labels(t, 2, x, bad, NULL, &l), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_decode_labels(m, 2, NULL, NULL, 0, 0, out, NULL, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_decode_labels(m, 2, good, NULL, 0, -1, out, NULL, NULL), DCRW_EINVAL);
    ck_assert_uint_eq(dcrw_trainer_step_count(t), 0);
    ck_assert_int_eq(dcrw_trainer_step_labels(t, 2, x, good, NULL, &l), DCRW_OK);
    ck_assert_uint_eq(dcrw_trainer_step_count(t), 1);
    dcrw_trainer_destroy(t);
    /* one class is no condition */
    c.classes = 1;
    ck_assert_int_eq(dcrw_config_validate(&c), DCRW_ECONFIG);
    dcrw_model_destroy(m);

    /* an unconditional model refuses labels */
    dcrw_config u = conditional(1);
    u.classes = 0;
    ck_assert_int_eq(dcrw_model_create(&m, &u, 3), DCRW_OK);
    ck_assert_int_eq(dcrw_decode_labels(m, 2, good, NULL, 0, 0, out, NULL, NULL), DCRW_EINVAL);
    ck_assert_ptr_nonnull(strstr(dcrw_last_error(), "takes no labels"));
    ck_assert_int_eq(dcrw_decode(m, 2, NULL, 0, out, NULL), DCRW_OK);
    dcrw_model_destroy(m);
}
END_TEST

START_TEST(test_checkpoint) {
    dcrw_config c = conditional(0);
    dcrw_model *m, *m2;
    ck_assert_int_eq(dcrw_model_create(&m, &c, 3), DCRW_OK);
    char *dir = tu_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/cond.safetensors", dir);
    ck_assert_int_eq(dcrw_model_save(m, path), DCRW_OK);
    ck_assert_int_eq(dcrw_model_load(&m2, path), DCRW_OK);
    dcrw_config b = {.size = sizeof b};
    dcrw_model_config(m2, &b);
    ck_assert_int_eq(b.classes, 4);
    ck_assert_int_eq(b.classify, 0);
    /* the label columns are the last of each weight that takes them */
    int ndim;
    const int64_t *shape;
    for (size_t i = 0; i < dcrw_model_param_count(m2); i++) {
        const char *name;
        ck_assert_int_eq(dcrw_model_param(m2, i, &name, &ndim, &shape, NULL), DCRW_OK);
        if (!strcmp(name, "dec.lstm.weight_ih")) ck_assert_int_eq(shape[1], c.z_size + 4);
    }
    const int32_t labels[2] = {3, 1};
    float a[2 * 64], b2[2 * 64];
    ck_assert_int_eq(dcrw_decode_labels(m, 2, labels, NULL, 1, 0, a, NULL, NULL), DCRW_OK);
    ck_assert_int_eq(dcrw_decode_labels(m2, 2, labels, NULL, 1, 0, b2, NULL, NULL), DCRW_OK);
    ck_assert_mem_eq(a, b2, 2 * dcrw_model_input_size(m) * sizeof(float));
    dcrw_model_destroy(m);
    dcrw_model_destroy(m2);
    tu_rmdir(dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("conditional");
    TCase *tc = tcase_create("conditional");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_finite_differences, 0, 3);
    tcase_add_loop_test(tc, test_generation, 0, 3);
    tcase_add_test(tc, test_refusals);
    tcase_add_test(tc, test_checkpoint);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
