/* Whole-model agreement with the golden files in tests/golden: an
 * independent float64 implementation of MODEL.md gives
 * the loss and the gradient of every parameter for a batch and its noise;
 * ours, in float32, must agree to 1e-5 (loss) and 1e-4 relative to each
 * gradient tensor's largest magnitude. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "testutil.h"

static const char *const golden_files[] = {
    "golden/golden-draw-small.safetensors",
    "golden/golden-draw-noattn-small.safetensors",
    "golden/golden-dcrw-small.safetensors",
    "golden/golden-dcrw-noread-small.safetensors",
    "golden/golden-draw-canvas-small.safetensors",
    /* class-conditional (MODEL.md §10), from tests/golden/reference.py */
    "golden/golden-draw-cond-small.safetensors",
    "golden/golden-dcrw-cond-small.safetensors",
    "golden/golden-dcrw-noread-cond-small.safetensors",
};

static float scalar(const st_file *f, const char *name) {
    size_t n;
    float *v = tu_st_floats(f, name, &n);
    ck_assert_msg(v && n == 1, "%s missing", name);
    float r = v[0];
    free(v);
    return r;
}

START_TEST(test_golden_gradients) {
    const char *path = tu_path(golden_files[_i]);
    st_file f;
    ck_assert_int_eq(dcrw_st_read(&f, path), DCRW_OK);
    dcrw_model *m = NULL;
    ck_assert_msg(dcrw_model_load(&m, path) == DCRW_OK, "%s: %s", path, dcrw_last_error());
    const st_tensor *tx = dcrw_st_find(&f, "golden.x");
    ck_assert_ptr_nonnull(tx);
    const int B = (int)tx->shape[0];
    ck_assert_int_eq(tx->shape[1], (int64_t)dcrw_model_input_size(m));
    float *x = tu_st_floats(&f, "golden.x", NULL);
    float *eps = tu_st_floats(&f, "golden.eps", NULL);
    ck_assert_ptr_nonnull(eps);
    /* a conditional model's labels, stored as floats */
    size_t nl = 0;
    float *lf = tu_st_floats(&f, "golden.labels", &nl);
    int32_t labels[64];
    ck_assert_uint_le(nl, 64);
    for (size_t b = 0; b < nl; b++) labels[b] = (int32_t)lf[b];
    free(lf);

    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    dcrw_trainer *t;
    ck_assert_int_eq(dcrw_trainer_create(&t, m, &tc), DCRW_OK);
    dcrw_loss loss;
    const int rc = nl ? dcrw_trainer_backward_labels(t, B, x, labels, eps, &loss)
                      : dcrw_trainer_backward(t, B, x, eps, &loss);
    ck_assert_msg(rc == DCRW_OK, "%s", dcrw_last_error());
    const double ref_loss = scalar(&f, "golden.loss"), ref_lx = scalar(&f, "golden.lx"),
                 ref_lz = scalar(&f, "golden.lz");
    printf("%s: loss %.6f (ref %.6f) lx %.6f (ref %.6f) lz %.6f (ref %.6f)\n", golden_files[_i],
           loss.loss, ref_loss, loss.lx, ref_lx, loss.lz, ref_lz);
    ck_assert_msg(fabs(loss.loss - ref_loss) <= 1e-5 * fabs(ref_loss), "loss %.8g vs %.8g",
                  loss.loss, ref_loss);
    ck_assert_msg(fabs(loss.lx - ref_lx) <= 1e-5 * fabs(ref_loss), "lx %.8g vs %.8g", loss.lx,
                  ref_lx);
    ck_assert_msg(fabs(loss.lz - ref_lz) <= 1e-5 * fabs(ref_loss), "lz %.8g vs %.8g", loss.lz,
                  ref_lz);

    /* every parameter has its reference gradient, and agrees */
    int checked = 0;
    for (size_t i = 0; i < dcrw_model_param_count(m); i++) {
        const char *name;
        ck_assert_int_eq(dcrw_model_param(m, i, &name, NULL, NULL, NULL), DCRW_OK);
        char gname[128];
        snprintf(gname, sizeof gname, "grad.%s", name);
        size_t nref, nours;
        float *ref = tu_st_floats(&f, gname, &nref), *ours;
        ck_assert_msg(ref != NULL, "%s missing in %s", gname, path);
        ck_assert_int_eq(dcrw_trainer_find_grad(t, name, &ours, &nours), DCRW_OK);
        ck_assert_uint_eq(nref, nours);
        double err = tu_rel_err(ours, ref, nref, 1e-6);
        ck_assert_msg(err < 1e-4, "%s %s: relative error %.3g", golden_files[_i], name, err);
        free(ref);
        checked++;
    }
    ck_assert_int_eq(checked, (int)dcrw_model_param_count(m));

    /* the const evaluation agrees with the trainer's forward (the labelled
     * calls draw their own noise) */
    dcrw_loss ev;
    if (!nl) {
        ck_assert_int_eq(dcrw_evaluate(m, B, x, eps, &ev), DCRW_OK);
        ck_assert(fabs(ev.loss - loss.loss) <= 1e-6 * fabs(loss.loss));
    }

    dcrw_trainer_destroy(t);
    dcrw_model_destroy(m);
    free(x);
    free(eps);
    dcrw_st_free(&f);
}
END_TEST

int main(void) {
    Suite *s = suite_create("golden");
    TCase *tc = tcase_create("golden");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_golden_gradients, 0,
                        (int)(sizeof golden_files / sizeof golden_files[0]));
    suite_add_tcase(s, tc);
    return tu_run(s);
}
