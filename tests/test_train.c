/* Training sanity on real MNIST: 300 Adam steps of each preset (small
 * sizes, 28×28 images) lower the held-out loss by a stated margin. Needs
 * data/mnist (examples/fetch-mnist.sh; the test command fetches it): a
 * missing data set fails the test, it does not skip it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

#define STEPS 300
#define BATCH 32
#define TRAIN_SLICE 6000
#define HELD_OUT 500

static dcrw_dataset *train_set, *test_set;

static void load(void) {
    const char *root = getenv("DCRW_SOURCE_ROOT");
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s/data/mnist/train-images-idx3-ubyte", root ? root : ".");
    snprintf(b, sizeof b, "%s/data/mnist/train-labels-idx1-ubyte", root ? root : ".");
    ck_assert_msg(dcrw_dataset_load_idx(&train_set, a, b) == DCRW_OK,
                  "MNIST is missing (%s): run examples/fetch-mnist.sh", dcrw_last_error());
    snprintf(a, sizeof a, "%s/data/mnist/t10k-images-idx3-ubyte", root ? root : ".");
    ck_assert_msg(dcrw_dataset_load_idx(&test_set, a, NULL) == DCRW_OK, "%s", dcrw_last_error());
}

static dcrw_config small(int preset) {
    dcrw_config c;
    dcrw_config_preset(&c, (dcrw_preset)preset);
    c.dec_size = 64;
    c.z_size = 10;
    if (c.encoder == DCRW_ENCODER_LSTM) {
        c.enc_size = 64;
        c.glimpses = 8;
    } else {
        c.conv1 = 8;
        c.conv2 = 16;
        c.glimpses = 6;
    }
    return c;
}

static double held_out_loss(const dcrw_model *m, const float *x) {
    dcrw_loss l;
    ck_assert_int_eq(dcrw_evaluate(m, HELD_OUT, x, NULL, &l), DCRW_OK);
    return l.loss;
}

/* The held-out loss starts near 784·ln 2 = 543 nats (a grey canvas) and
 * must fall below 60% of its start: a model that does not learn, or learns
 * the wrong gradient, stays near it. Measured here: see doc/TESTING.md. */
START_TEST(test_train_lowers_loss) {
    load();
    dcrw_config c = small(_i);
    dcrw_model *m;
    ck_assert_int_eq(dcrw_model_create(&m, &c, 1234), DCRW_OK);
    const int P = (int)dcrw_model_input_size(m);
    float *held = malloc((size_t)HELD_OUT * P * 4), *x = malloc((size_t)BATCH * P * 4);
    size_t idx[HELD_OUT];
    for (int i = 0; i < HELD_OUT; i++) idx[i] = (size_t)i;
    ck_assert_int_eq(dcrw_dataset_batch(test_set, idx, HELD_OUT, DCRW_BINARIZE_THRESHOLD, 0, held),
                     DCRW_OK);
    const double start = held_out_loss(m, held);

    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    tc.learning_rate = 3e-3f;
    tc.seed = 7;
    dcrw_trainer *t;
    ck_assert_int_eq(dcrw_trainer_create(&t, m, &tc), DCRW_OK);
    clock_t t0 = clock();
    dcrw_loss l = {0, 0, 0};
    for (int s = 0; s < STEPS; s++) {
        size_t bi[BATCH];
        for (int b = 0; b < BATCH; b++) bi[b] = ((size_t)s * BATCH + b) % TRAIN_SLICE;
        ck_assert_int_eq(dcrw_dataset_batch(train_set, bi, BATCH, DCRW_BINARIZE_DYNAMIC, 99, x),
                         DCRW_OK);
        ck_assert_msg(dcrw_trainer_step(t, BATCH, x, NULL, &l) == DCRW_OK, "step %d: %s", s,
                      dcrw_last_error());
    }
    const double end = held_out_loss(m, held);
    printf("%s: held-out loss %.1f -> %.1f nats after %d steps (last batch Lx %.1f Lz %.2f), "
           "%.1f s CPU\n",
           dcrw_preset_name((dcrw_preset)_i), start, end, STEPS, l.lx, l.lz,
           (double)(clock() - t0) / CLOCKS_PER_SEC);
    ck_assert_msg(end < 0.6 * start, "held-out loss %.1f -> %.1f", start, end);
    dcrw_trainer_destroy(t);
    dcrw_model_destroy(m);
    dcrw_dataset_destroy(train_set);
    dcrw_dataset_destroy(test_set);
    free(held);
    free(x);
}
END_TEST

int main(void) {
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("train");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_train_lowers_loss, 0, 4);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
