/* The attention classifier of MODEL.md §9: its loss, probabilities,
 * windows and every gradient against the golden file of an independent
 * float64 implementation (tests/golden/make_classify_golden.py), the
 * gradients against finite differences through the public API, the
 * refusals on both sides of the classifier / generative line, checkpoints,
 * threads, and that training learns a small task. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "safetensors.h"
#include "testutil.h"

#define GOLDEN "golden/golden-draw-classify-small.safetensors"

typedef struct golden {
    st_file f;
    dcrw_model *m;
    int B, K, T;
    float *x;
    int32_t *labels;
} golden;

static void golden_open(golden *g) {
    const char *path = tu_path(GOLDEN);
    ck_assert_int_eq(dcrw_st_read(&g->f, path), DCRW_OK);
    ck_assert_msg(dcrw_model_load(&g->m, path) == DCRW_OK, "%s", dcrw_last_error());
    dcrw_config c;
    c.size = sizeof c;
    ck_assert_int_eq(dcrw_model_config(g->m, &c), DCRW_OK);
    ck_assert_int_eq(c.classify, 1);
    g->K = c.classes;
    g->T = c.glimpses;
    size_t n, nl;
    g->x = tu_st_floats(&g->f, "golden.x", &n);
    float *lf = tu_st_floats(&g->f, "golden.labels", &nl);
    ck_assert_ptr_nonnull(g->x);
    ck_assert_ptr_nonnull(lf);
    g->B = (int)nl;
    ck_assert_uint_eq(n, (size_t)g->B * dcrw_model_input_size(g->m));
    g->labels = malloc(nl * sizeof *g->labels);
    for (size_t b = 0; b < nl; b++) g->labels[b] = (int32_t)lf[b];
    free(lf);
}

static void golden_close(golden *g) {
    dcrw_model_destroy(g->m);
    dcrw_st_free(&g->f);
    free(g->x);
    free(g->labels);
}

START_TEST(test_golden) {
    golden g;
    golden_open(&g);
    const int B = g.B, K = g.K, T = g.T;
    float *probs = malloc((size_t)B * K * sizeof *probs);
    float *win = malloc((size_t)T * B * 5 * sizeof *win);
    ck_assert_msg(dcrw_classify_windows(g.m, B, g.x, probs, win) == DCRW_OK, "%s",
                  dcrw_last_error());
    float *ref = tu_st_floats(&g.f, "golden.probs", NULL);
    ck_assert_msg(tu_rel_err(probs, ref, (size_t)B * K, 1e-6) < 1e-5, "probabilities");
    free(ref);
    ref = tu_st_floats(&g.f, "golden.windows", NULL);
    ck_assert_msg(tu_rel_err(win, ref, (size_t)T * B * 5, 1e-6) < 1e-5, "windows");
    free(ref);

    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    dcrw_trainer *t;
    ck_assert_int_eq(dcrw_trainer_create(&t, g.m, &tc), DCRW_OK);
    dcrw_loss loss;
    ck_assert_msg(dcrw_trainer_backward_labels(t, B, g.x, g.labels, NULL, &loss) == DCRW_OK, "%s",
                  dcrw_last_error());
    ref = tu_st_floats(&g.f, "golden.loss", NULL);
    printf("classifier golden: loss %.7f (ref %.7f)\n", loss.loss, ref[0]);
    ck_assert(fabs(loss.loss - ref[0]) <= 1e-5 * ref[0]);
    ck_assert(loss.lx == loss.loss && loss.lz == 0.0);
    /* the loss is −log of the probability the classify call gives */
    double nll = 0;
    for (int b = 0; b < B; b++) nll -= log(probs[(size_t)b * K + g.labels[b]]);
    ck_assert(fabs(nll / B - loss.loss) <= 1e-5 * loss.loss);
    free(ref);

    for (size_t i = 0; i < dcrw_model_param_count(g.m); i++) {
        const char *name;
        ck_assert_int_eq(dcrw_model_param(g.m, i, &name, NULL, NULL, NULL), DCRW_OK);
        char gname[128];
        snprintf(gname, sizeof gname, "grad.%s", name);
        size_t nref, nours;
        float *ours;
        ref = tu_st_floats(&g.f, gname, &nref);
        ck_assert_msg(ref != NULL, "%s missing", gname);
        ck_assert_int_eq(dcrw_trainer_find_grad(t, name, &ours, &nours), DCRW_OK);
        ck_assert_uint_eq(nref, nours);
        double err = tu_rel_err(ours, ref, nref, 1e-6);
        ck_assert_msg(err < 1e-4, "%s: relative error %.3g", name, err);
        free(ref);
    }
    dcrw_trainer_destroy(t);
    free(probs);
    free(win);
    golden_close(&g);
}
END_TEST

/* ---- finite differences through the public API ---------------------------- */

typedef struct fd_ctx {
    dcrw_trainer *t;
    int B;
    const float *x;
    const int32_t *labels;
} fd_ctx;

static double classify_loss(void *p) {
    fd_ctx *c = p;
    dcrw_loss l;
    ck_assert_int_eq(dcrw_trainer_backward_labels(c->t, c->B, c->x, c->labels, NULL, &l), DCRW_OK);
    return l.loss;
}

/* A classifier of its own (2 channels, odd window) rather than the golden
 * one: the check does not lean on the file. */
START_TEST(test_finite_differences) {
    dcrw_config c = tu_tiny_classifier();
    dcrw_model *m;
    ck_assert_msg(dcrw_model_create(&m, &c, 5) == DCRW_OK, "%s", dcrw_last_error());
    const int B = 4;
    const size_t P = dcrw_model_input_size(m);
    float *x = malloc((size_t)B * P * sizeof *x);
    tu_fill_uniform(x, (size_t)B * P, 0.0f, 1.0f, 17);
    const int32_t labels[4] = {4, 0, 2, 1};
    /* larger attention weights than the initialisation's, so that the
     * windows differ by image and the gradients through them are not tiny */
    float *w;
    size_t n;
    ck_assert_int_eq(dcrw_model_find_param(m, "read.attn.weight", &w, &n), DCRW_OK);
    tu_fill_uniform(w, n, -0.4f, 0.4f, 3);
    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    tc.threads = 1;
    dcrw_trainer *t;
    ck_assert_int_eq(dcrw_trainer_create(&t, m, &tc), DCRW_OK);
    fd_ctx ctx = {t, B, x, labels};
    const size_t checked = tu_fd_check_model("classifier", m, t, classify_loss, &ctx, 10, 29);
    ck_assert_uint_ge(checked, 50);
    dcrw_trainer_destroy(t);
    dcrw_model_destroy(m);
    free(x);
}
END_TEST

/* ---- the preset and the configuration ------------------------------------- */

START_TEST(test_preset) {
    dcrw_config c;
    ck_assert_int_eq(dcrw_config_preset(&c, DCRW_PRESET_DRAW_CLASSIFY), DCRW_OK);
    /* the paper's §4.1: 100×100, 12×12 glimpses, 256 cells, 8 glimpses */
    ck_assert_int_eq(c.height, 100);
    ck_assert_int_eq(c.width, 100);
    ck_assert_int_eq(c.read_n, 12);
    ck_assert_int_eq(c.enc_size, 256);
    ck_assert_int_eq(c.glimpses, 8);
    ck_assert_int_eq(c.classes, 10);
    ck_assert_int_eq(c.classify, 1);
    dcrw_preset p;
    ck_assert_int_eq(dcrw_preset_from_name("draw-classify", &p), DCRW_OK);
    ck_assert_int_eq(p, DCRW_PRESET_DRAW_CLASSIFY);
    ck_assert_str_eq(dcrw_preset_name(DCRW_PRESET_DRAW_CLASSIFY), "draw-classify");
    dcrw_model *m;
    ck_assert_int_eq(dcrw_model_create(&m, &c, 1), DCRW_OK);
    /* 4E(R + E + 1) + 5(E + 1) + K(E + 1) */
    const size_t E = 256, R = 144;
    ck_assert_uint_eq(dcrw_model_param_floats(m), 4 * E * (R + E + 1) + 5 * (E + 1) + 10 * (E + 1));
    ck_assert_uint_eq(dcrw_model_param_count(m), 7);
    ck_assert_int_eq(dcrw_model_find_param(m, "class.weight", NULL, NULL), DCRW_OK);
    ck_assert_int_eq(dcrw_model_find_param(m, "dec.lstm.weight_ih", NULL, NULL), DCRW_ENOTFOUND);
    dcrw_model_destroy(m);

    /* the classifier's own rules */
    dcrw_config bad = c;
    bad.classes = 1;
    ck_assert_int_eq(dcrw_config_validate(&bad), DCRW_ECONFIG);
    ck_assert_ptr_nonnull(strstr(dcrw_last_error(), "classes"));
    bad = c;
    bad.read_attention = 0;
    ck_assert_int_eq(dcrw_config_validate(&bad), DCRW_ECONFIG);
    bad = c;
    bad.encoder = DCRW_ENCODER_CNN;
    ck_assert_int_eq(dcrw_config_validate(&bad), DCRW_ECONFIG);
    /* the generative sizes are unused, so anything there is ignored */
    bad = c;
    bad.dec_size = -3;
    bad.write_n = 0;
    ck_assert_int_eq(dcrw_config_validate(&bad), DCRW_OK);
    ck_assert_int_eq(dcrw_config_equal(&bad, &c), 1);
    /* and a generative preset has classify 0 */
    ck_assert_int_eq(dcrw_config_preset(&c, DCRW_PRESET_DCRW), DCRW_OK);
    ck_assert_int_eq(c.classify, 0);
    ck_assert_int_eq(c.classes, 0);
    char text[32];
    ck_assert_int_eq(dcrw_config_set(&c, "classify", "true"), DCRW_OK);
    ck_assert_int_eq(dcrw_config_get(&c, "classify", text, sizeof text), DCRW_OK);
    ck_assert_str_eq(text, "true");
    /* a struct of the 0.1-0.4 header (64 bytes) still validates as before,
     * and has no room for the new fields */
    ck_assert_int_eq(dcrw_config_preset(&c, DCRW_PRESET_DRAW), DCRW_OK);
    c.size = 64;
    ck_assert_int_eq(dcrw_config_validate(&c), DCRW_OK);
    ck_assert_int_eq(dcrw_config_set(&c, "classes", "10"), DCRW_EINVAL);
}
END_TEST

/* ---- refusals ------------------------------------------------------------- */

START_TEST(test_refusals) {
    golden g;
    golden_open(&g);
    const int B = g.B;
    const size_t P = dcrw_model_input_size(g.m);
    float probs[64], out[4096];
    /* the generative calls refuse a classifier, with a message */
    ck_assert_int_eq(dcrw_encode(g.m, B, g.x, NULL, out, NULL, NULL), DCRW_EINVAL);
    ck_assert_ptr_nonnull(strstr(dcrw_last_error(), "classifier"));
    dcrw_loss l;
    ck_assert_int_eq(dcrw_evaluate(g.m, B, g.x, NULL, &l), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_decode(g.m, 1, NULL, 0, out, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_read(g.m, 1, g.x, g.x, out, out), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_write(g.m, 1, out, out), DCRW_EINVAL);
    /* the classifier's own bad input */
    ck_assert_int_eq(dcrw_classify(NULL, B, g.x, probs), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_classify(g.m, 0, g.x, probs), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_classify(g.m, B, NULL, probs), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_classify(g.m, B, g.x, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_classify_windows(g.m, B, g.x, NULL, NULL), DCRW_EINVAL);
    float *xn = malloc((size_t)B * P * sizeof *xn);
    memcpy(xn, g.x, (size_t)B * P * sizeof *xn);
    xn[P + 3] = NAN;
    for (int k = 0; k < 64; k++) probs[k] = -7.0f;
    ck_assert_int_eq(dcrw_classify(g.m, B, xn, probs), DCRW_ENUMERIC);
    ck_assert(probs[0] == -7.0f); /* nothing written */

    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    dcrw_trainer *t;
    ck_assert_int_eq(dcrw_trainer_create(&t, g.m, &tc), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_step(t, B, g.x, NULL, &l), DCRW_EINVAL);
    ck_assert_ptr_nonnull(strstr(dcrw_last_error(), "labels"));
    ck_assert_int_eq(dcrw_trainer_step_labels(t, B, g.x, NULL, NULL, &l), DCRW_EINVAL);
    int32_t lab[3] = {0, g.K, 1};
    ck_assert_int_eq(dcrw_trainer_step_labels(t, 3, g.x, lab, NULL, &l), DCRW_EINVAL);
    ck_assert_ptr_nonnull(strstr(dcrw_last_error(), "image 1"));
    lab[1] = -1;
    ck_assert_int_eq(dcrw_trainer_step_labels(t, 3, g.x, lab, NULL, &l), DCRW_EINVAL);
    lab[1] = 0;
    ck_assert_int_eq(dcrw_trainer_step_labels(t, 3, g.x, lab, out, &l), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_trainer_step_labels(t, 3, xn, lab, NULL, &l), DCRW_ENUMERIC);
    ck_assert_uint_eq(dcrw_trainer_step_count(t), 0);
    ck_assert_int_eq(dcrw_trainer_step_labels(t, 3, g.x, lab, NULL, &l), DCRW_OK);
    ck_assert_uint_eq(dcrw_trainer_step_count(t), 1);
    dcrw_trainer_destroy(t);

    /* and a generative model refuses the classifier's calls */
    dcrw_config c;
    dcrw_config_preset(&c, DCRW_PRESET_DCRW);
    dcrw_model *gen;
    ck_assert_int_eq(dcrw_model_create(&gen, &c, 1), DCRW_OK);
    float img[784];
    tu_fill_uniform(img, 784, 0.0f, 1.0f, 2);
    ck_assert_int_eq(dcrw_classify(gen, 1, img, probs), DCRW_EINVAL);
    ck_assert_ptr_nonnull(strstr(dcrw_last_error(), "not a classifier"));
    ck_assert_int_eq(dcrw_trainer_create(&t, gen, &tc), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_step_labels(t, 1, img, lab, NULL, &l), DCRW_EINVAL);
    dcrw_trainer_destroy(t);
    dcrw_model_destroy(gen);
    free(xn);
    golden_close(&g);
}
END_TEST

/* ---- checkpoints and threads ---------------------------------------------- */

START_TEST(test_checkpoint_and_threads) {
    golden g;
    golden_open(&g);
    const int B = g.B, K = g.K;
    char *dir = tu_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/classifier.safetensors", dir);
    ck_assert_int_eq(dcrw_model_save(g.m, path), DCRW_OK);
    dcrw_model *m2;
    ck_assert_int_eq(dcrw_model_load(&m2, path), DCRW_OK);
    dcrw_config a, b;
    a.size = b.size = sizeof a;
    dcrw_model_config(g.m, &a);
    dcrw_model_config(m2, &b);
    ck_assert_int_eq(dcrw_config_equal(&a, &b), 1);
    ck_assert_int_eq(b.classes, K);
    dcrw_checkpoint_summary s;
    s.size = sizeof s;
    ck_assert_int_eq(dcrw_checkpoint_info(path, &s, NULL), DCRW_OK);
    ck_assert_str_eq(s.preset, "draw-classify");
    float p1[64], p2[64];
    ck_assert_int_eq(dcrw_classify(g.m, B, g.x, p1), DCRW_OK);
    ck_assert_int_eq(dcrw_classify(m2, B, g.x, p2), DCRW_OK);
    ck_assert_mem_eq(p1, p2, (size_t)B * K * sizeof(float));

    /* an image's probabilities do not depend on the batch it is in or on
     * the threads (two images at a time here, against three) */
    dcrw_set_threads(2);
    ck_assert_int_eq(dcrw_classify(m2, 2, g.x, p2), DCRW_OK);
    dcrw_set_threads(1);
    ck_assert(tu_rel_err(p2, p1, 2 * (size_t)K, 1e-6) < 1e-6);

    /* a trainer checkpoint resumes to the same next step */
    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    dcrw_trainer *t1, *t2;
    ck_assert_int_eq(dcrw_trainer_create(&t1, g.m, &tc), DCRW_OK);
    dcrw_loss l1, l2;
    ck_assert_int_eq(dcrw_trainer_step_labels(t1, B, g.x, g.labels, NULL, &l1), DCRW_OK);
    snprintf(path, sizeof path, "%s/trainer.safetensors", dir);
    ck_assert_int_eq(dcrw_trainer_save(t1, path), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_create(&t2, m2, &tc), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_resume(t2, path), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_step_labels(t1, B, g.x, g.labels, NULL, &l1), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_step_labels(t2, B, g.x, g.labels, NULL, &l2), DCRW_OK);
    ck_assert(l1.loss == l2.loss);
    dcrw_trainer_destroy(t1);
    dcrw_trainer_destroy(t2);
    dcrw_model_destroy(m2);
    tu_rmdir(dir);
    golden_close(&g);
}
END_TEST

/* ---- it learns ------------------------------------------------------------- */

/* A 24×24 image holds one 3×3 blob at a random place; its class is which
 * quadrant the blob is in. Labels are balanced, so chance is 25%. */
static void blob_batch(int B, uint64_t seed, float *x, int32_t *labels) {
    memset(x, 0, (size_t)B * 576 * sizeof *x);
    for (int b = 0; b < B; b++) {
        uint64_t k = rng_key(seed, 0, (uint64_t)b);
        const int q = b % 4;
        const int r0 = (q / 2) * 12 + 1 + (int)(rng_uniform(k, 0) * 8);
        const int c0 = (q % 2) * 12 + 1 + (int)(rng_uniform(k, 1) * 8);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) x[(size_t)b * 576 + (r0 + i) * 24 + c0 + j] = 1.0f;
        labels[b] = q;
    }
}

START_TEST(test_learns) {
    dcrw_config c;
    dcrw_config_preset(&c, DCRW_PRESET_DRAW_CLASSIFY);
    c.height = c.width = 24;
    c.glimpses = 3;
    c.enc_size = 32;
    c.read_n = 4;
    c.classes = 4;
    dcrw_model *m;
    ck_assert_int_eq(dcrw_model_create(&m, &c, 3), DCRW_OK);
    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    tc.learning_rate = 3e-3f;
    dcrw_trainer *t;
    ck_assert_int_eq(dcrw_trainer_create(&t, m, &tc), DCRW_OK);
    enum { B = 32, STEPS = 400, TEST = 200 };
    float *x = malloc((size_t)TEST * 576 * sizeof *x);
    int32_t labels[TEST];
    dcrw_loss l = {0, 0, 0};
    double first = 0;
    for (int s = 0; s < STEPS; s++) {
        blob_batch(B, 100 + (uint64_t)s, x, labels);
        ck_assert_int_eq(dcrw_trainer_step_labels(t, B, x, labels, NULL, &l), DCRW_OK);
        if (s == 0) first = l.loss;
    }
    blob_batch(TEST, 7, x, labels);
    float probs[TEST * 4];
    ck_assert_int_eq(dcrw_classify(m, TEST, x, probs), DCRW_OK);
    int right = 0;
    for (int b = 0; b < TEST; b++) {
        int best = 0;
        for (int k = 1; k < 4; k++)
            if (probs[b * 4 + k] > probs[b * 4 + best]) best = k;
        right += best == labels[b];
    }
    printf("blob quadrants: loss %.3f -> %.3f, held-out accuracy %d/%d\n", first, l.loss, right,
           TEST);
    ck_assert_msg(right >= TEST * 9 / 10, "accuracy %d/%d", right, TEST);
    dcrw_trainer_destroy(t);
    dcrw_model_destroy(m);
    free(x);
}
END_TEST

int main(void) {
    Suite *s = suite_create("classify");
    TCase *tc = tcase_create("classify");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_golden);
    tcase_add_test(tc, test_finite_differences);
    tcase_add_test(tc, test_preset);
    tcase_add_test(tc, test_refusals);
    tcase_add_test(tc, test_checkpoint_and_threads);
    tcase_add_test(tc, test_learns);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
