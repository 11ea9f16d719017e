/* The const functions on one shared model from several threads at once
 * (dcrw.h: "a dcrw_model may be used by several threads at once for the
 * functions that take a const dcrw_model *"): each thread must get exactly
 * the numbers of a serial run. Meant to run under ThreadSanitizer too
 * (build-hard-tsan, see doc/RELIABILITY.md); there a data race is a
 * failure even when the numbers happen to agree. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define NTHREADS 4
#define B 3

typedef struct results {
    dcrw_loss loss;
    double lx[B], lz[B];
    float *z, *mu, *ls, *images, *canvases, *samples, *rwin, *wwin, *read, *write;
} results;

static const dcrw_model *model;
static size_t P, T, Z, D, R;
static float *x, *eps, *hdec;
static results serial;
static int iterations;

static void results_alloc(results *r) {
    r->z = calloc(T * B * Z, sizeof(float));
    r->mu = calloc(T * B * Z, sizeof(float));
    r->ls = calloc(T * B * Z, sizeof(float));
    r->images = calloc(B * P, sizeof(float));
    r->canvases = calloc(T * B * P, sizeof(float));
    r->samples = calloc(T * B * P, sizeof(float));
    r->rwin = calloc(T * B * 5, sizeof(float));
    r->wwin = calloc(T * B * 5, sizeof(float));
    r->read = calloc(B * R, sizeof(float));
    r->write = calloc(B * P, sizeof(float));
}

static void results_free(results *r) {
    free(r->z);
    free(r->mu);
    free(r->ls);
    free(r->images);
    free(r->canvases);
    free(r->samples);
    free(r->rwin);
    free(r->wwin);
    free(r->read);
    free(r->write);
}

/* Every const operation once; 0 on success. */
static int run_all(results *r) {
    int rc = 0;
    rc |= dcrw_evaluate(model, B, x, NULL, &r->loss);
    rc |= dcrw_evaluate_images(model, B, x, eps, r->lx, r->lz);
    rc |= dcrw_encode(model, B, x, eps, r->z, r->mu, r->ls);
    rc |= dcrw_reconstruct_windows(model, B, x, NULL, r->images, r->canvases, r->rwin, r->wwin);
    rc |= dcrw_decode(model, B, NULL, 42, NULL, r->samples);
    rc |= dcrw_read(model, B, x, x, hdec, r->read);
    rc |= dcrw_write(model, B, hdec, r->write);
    return rc;
}

#define SAME(a, b, n) (memcmp((a), (b), (n) * sizeof *(a)) == 0)

static int same(const results *a, const results *b) {
    return a->loss.loss == b->loss.loss && a->loss.lx == b->loss.lx && SAME(a->lx, b->lx, B) &&
           SAME(a->lz, b->lz, B) && SAME(a->z, b->z, T * B * Z) && SAME(a->mu, b->mu, T * B * Z) &&
           SAME(a->ls, b->ls, T * B * Z) && SAME(a->images, b->images, B * P) &&
           SAME(a->canvases, b->canvases, T * B * P) && SAME(a->samples, b->samples, T * B * P) &&
           SAME(a->rwin, b->rwin, T * B * 5) && SAME(a->wwin, b->wwin, T * B * 5) &&
           SAME(a->read, b->read, B * R) && SAME(a->write, b->write, B * P);
}

static void *worker(void *arg) {
    (void)arg;
    results r;
    results_alloc(&r);
    intptr_t bad = 0;
    for (int i = 0; i < iterations && !bad; i++) {
        if (run_all(&r) != 0)
            bad = 1;
        else if (!same(&r, &serial))
            bad = 2;
    }
    results_free(&r);
    return (void *)bad;
}

static void check_preset(dcrw_preset p, int lib_threads) {
    dcrw_config c;
    ck_assert_int_eq(dcrw_config_preset(&c, p), DCRW_OK);
    c.height = c.width = 12;
    c.glimpses = 4;
    c.enc_size = c.encoder == DCRW_ENCODER_LSTM ? 16 : 0;
    c.dec_size = 16;
    c.z_size = 4;
    if (c.encoder == DCRW_ENCODER_CNN) c.conv1 = 4, c.conv2 = 4;
    dcrw_model *m;
    ck_assert_int_eq(dcrw_model_create(&m, &c, 9), DCRW_OK);
    model = m;
    dcrw_sizes s = {.size = sizeof s};
    ck_assert_int_eq(dcrw_model_sizes(m, &s), DCRW_OK);
    P = s.input, T = s.glimpses, Z = s.z, D = s.dec, R = s.read;
    x = malloc(B * P * sizeof *x);
    eps = malloc(T * B * Z * sizeof *eps);
    hdec = malloc(B * D * sizeof *hdec);
    tu_fill_uniform(x, B * P, 0.0f, 1.0f, 1);
    tu_fill_uniform(eps, T * B * Z, -1.0f, 1.0f, 2);
    tu_fill_uniform(hdec, B * D, -1.0f, 1.0f, 3);
    ck_assert_int_eq(dcrw_set_threads(lib_threads), DCRW_OK);
    results_alloc(&serial);
    ck_assert_int_eq(run_all(&serial), 0);
    /* the serial run is itself repeatable */
    results again;
    results_alloc(&again);
    ck_assert_int_eq(run_all(&again), 0);
    ck_assert(same(&again, &serial));
    results_free(&again);

    pthread_t tid[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        ck_assert_int_eq(pthread_create(&tid[i], NULL, worker, NULL), 0);
    for (int i = 0; i < NTHREADS; i++) {
        void *ret;
        ck_assert_int_eq(pthread_join(tid[i], &ret), 0);
        ck_assert_msg(ret == NULL, "%s, %d library threads: thread %d %s", dcrw_preset_name(p),
                      lib_threads, i,
                      (intptr_t)ret == 1 ? "got an error" : "got numbers that differ");
    }
    results_free(&serial);
    free(x);
    free(eps);
    free(hdec);
    dcrw_model_destroy(m);
    dcrw_set_threads(0);
}

START_TEST(test_shared_model) {
    const char *s = getenv("DCRW_THREADS_ITERATIONS");
    iterations = s && atoi(s) > 0 ? atoi(s) : 8;
    /* one library thread per call, and two (each call its own pool) */
    check_preset((dcrw_preset)_i, 1);
    check_preset((dcrw_preset)_i, 2);
}
END_TEST

int main(void) {
    Suite *s = suite_create("threads");
    TCase *tc = tcase_create("threads");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_shared_model, 0, 4);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
