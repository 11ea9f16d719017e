/* The const functions on one shared model from several threads at once
 * (dcrw.h: "a dcrw_model may be used by several threads at once for the
 * functions that take a const dcrw_model *"): each thread must get exactly
 * the numbers of a serial run. Meant to run under ThreadSanitizer too
 * (build-hard-tsan, see doc/RELIABILITY.md); there a data race is a
 * failure even when the numbers happen to agree. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* A small model of preset p (its config in *c) as the shared model, its
 * inputs x, eps and hdec, lib_threads library threads, and serial
 * allocated; shared_teardown undoes it. */
static dcrw_model *shared_setup(dcrw_preset p, int lib_threads, dcrw_config *c) {
    ck_assert_int_eq(dcrw_config_preset(c, p), DCRW_OK);
    c->height = c->width = 12;
    c->glimpses = 4;
    c->enc_size = c->encoder == DCRW_ENCODER_LSTM ? 16 : 0;
    c->dec_size = 16;
    c->z_size = 4;
    if (c->encoder == DCRW_ENCODER_CNN) c->conv1 = 4, c->conv2 = 4;
    dcrw_model *m;
    ck_assert_int_eq(dcrw_model_create(&m, c, 9), DCRW_OK);
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
    return m;
}

static void shared_teardown(dcrw_model *m) {
    results_free(&serial);
    free(x);
    free(eps);
    free(hdec);
    dcrw_model_destroy(m);
    dcrw_set_threads(0);
}

static void check_preset(dcrw_preset p, int lib_threads) {
    dcrw_config c;
    dcrw_model *m = shared_setup(p, lib_threads, &c);
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
    shared_teardown(m);
}

START_TEST(test_shared_model) {
    const char *s = getenv("DCRW_THREADS_ITERATIONS");
    iterations = s && atoi(s) > 0 ? atoi(s) : 8;
    /* one library thread per call, and two (each call its own pool) */
    check_preset((dcrw_preset)_i, 1);
    check_preset((dcrw_preset)_i, 2);
}
END_TEST

/* ---- fork() after the library used threads */

/* The library's thread pools (each calling thread's cached one, and a
 * trainer's) have no workers in a fork()ed child: every entry point must
 * still work there, give the parent's numbers, and not hang. Each runs in
 * its own child under an alarm, so a hang is a failure, not a stuck test. */
enum {
    FK_EVALUATE,
    FK_EVALUATE_IMAGES,
    FK_ENCODE,
    FK_RECONSTRUCT,
    FK_DECODE,
    FK_READ_WRITE,
    FK_TRAINER_STEP,
    FK_COUNT
};
static const char *const fork_names[FK_COUNT] = {
    "dcrw_evaluate", "dcrw_evaluate_images",  "dcrw_encode",      "dcrw_reconstruct_windows",
    "dcrw_decode",   "dcrw_read, dcrw_write", "dcrw_trainer_step"};

/* One entry point into r (0 on success). */
static int run_one(int what, results *r) {
    switch (what) {
    case FK_EVALUATE:
        return dcrw_evaluate(model, B, x, NULL, &r->loss);
    case FK_EVALUATE_IMAGES:
        return dcrw_evaluate_images(model, B, x, eps, r->lx, r->lz);
    case FK_ENCODE:
        return dcrw_encode(model, B, x, eps, r->z, r->mu, r->ls);
    case FK_RECONSTRUCT:
        return dcrw_reconstruct_windows(model, B, x, NULL, r->images, r->canvases, r->rwin,
                                        r->wwin);
    case FK_DECODE:
        return dcrw_decode(model, B, NULL, 42, NULL, r->samples);
    default:
        return dcrw_read(model, B, x, x, hdec, r->read) | dcrw_write(model, B, hdec, r->write);
    }
}

/* Two identical models and trainers: the reference takes two steps in the
 * parent; the other takes one there and its second in the child, which
 * must land on the same parameters. */
typedef struct fork_train {
    dcrw_model *m, *ref_m;
    dcrw_trainer *t, *ref_t;
    float *batch;
} fork_train;

static void fork_train_setup(fork_train *ft, const dcrw_config *c) {
    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    tc.threads = 2;
    ft->batch = malloc(2 * B * P * sizeof *ft->batch);
    tu_fill_uniform(ft->batch, 2 * B * P, 0.0f, 1.0f, 4);
    ck_assert_int_eq(dcrw_model_create(&ft->m, c, 9), DCRW_OK);
    ck_assert_int_eq(dcrw_model_create(&ft->ref_m, c, 9), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_create(&ft->t, ft->m, &tc), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_create(&ft->ref_t, ft->ref_m, &tc), DCRW_OK);
    for (int s = 0; s < 2; s++)
        ck_assert_int_eq(dcrw_trainer_step(ft->ref_t, B, ft->batch + s * B * P, NULL, NULL),
                         DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_step(ft->t, B, ft->batch, NULL, NULL), DCRW_OK);
}

static void fork_train_free(fork_train *ft) {
    dcrw_trainer_destroy(ft->t);
    dcrw_trainer_destroy(ft->ref_t);
    dcrw_model_destroy(ft->m);
    dcrw_model_destroy(ft->ref_m);
    free(ft->batch);
}

/* 1 if the outputs of entry point `what` are the same in a and b. */
static int same_outputs(int what, const results *a, const results *b) {
    switch (what) {
    case FK_EVALUATE:
        return a->loss.loss == b->loss.loss && a->loss.lx == b->loss.lx;
    case FK_EVALUATE_IMAGES:
        return SAME(a->lx, b->lx, B) && SAME(a->lz, b->lz, B);
    case FK_ENCODE:
        return SAME(a->z, b->z, T * B * Z) && SAME(a->mu, b->mu, T * B * Z) &&
               SAME(a->ls, b->ls, T * B * Z);
    case FK_RECONSTRUCT:
        return SAME(a->images, b->images, B * P) && SAME(a->canvases, b->canvases, T * B * P) &&
               SAME(a->rwin, b->rwin, T * B * 5) && SAME(a->wwin, b->wwin, T * B * 5);
    case FK_DECODE:
        return SAME(a->samples, b->samples, T * B * P);
    default:
        return SAME(a->read, b->read, B * R) && SAME(a->write, b->write, B * P);
    }
}

/* The child: 0 if the entry point worked and matched the parent, 1 if it
 * failed, 2 if its numbers differ. Never returns. */
static void fork_child(int what, fork_train *ft) {
    /* a hang is a failure, well within the test's timeout; the default
     * action, not the handler inherited from Check's runner */
    signal(SIGALRM, SIG_DFL);
    alarm(20);
    int rc;
    if (what == FK_TRAINER_STEP) {
        rc = dcrw_trainer_step(ft->t, B, ft->batch + B * P, NULL, NULL);
        size_t n;
        const float *a = dcrw_model_params(ft->m, &n), *b = dcrw_model_params(ft->ref_m, NULL);
        _exit(rc ? 1 : memcmp(a, b, n * sizeof *a) ? 2 : 0);
    }
    results r;
    results_alloc(&r);
    rc = run_one(what, &r);
    _exit(rc ? 1 : same_outputs(what, &r, &serial) ? 0 : 2);
}

START_TEST(test_fork_child) {
    dcrw_config c;
    /* the parent runs everything on two threads first: its pools exist,
     * their workers are threads of this process only */
    dcrw_model *m = shared_setup((dcrw_preset)_i, 2, &c);
    for (int k = 0; k < FK_TRAINER_STEP; k++) ck_assert_int_eq(run_one(k, &serial), DCRW_OK);
    fork_train ft;
    fork_train_setup(&ft, &c);

    pid_t pid[FK_COUNT];
    for (int k = 0; k < FK_COUNT; k++) {
        pid[k] = fork();
        ck_assert_int_ge(pid[k], 0);
        if (pid[k] == 0) fork_child(k, &ft);
    }
    int failed = 0;
    for (int k = 0; k < FK_COUNT; k++) {
        int st;
        ck_assert_int_eq(waitpid(pid[k], &st, 0), pid[k]);
        const int good = WIFEXITED(st) && WEXITSTATUS(st) == 0;
        if (!good) {
            fprintf(stderr, "%s in a fork()ed child: %s\n", fork_names[k],
                    WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM ? "hung"
                    : WIFSIGNALED(st)                          ? "crashed"
                    : WEXITSTATUS(st) == 1                     ? "failed"
                                                               : "numbers differ");
            failed++;
        }
    }
    ck_assert_msg(failed == 0, "%s: %d of %d entry points failed in a fork()ed child (see stderr)",
                  dcrw_preset_name((dcrw_preset)_i), failed, FK_COUNT);
    /* and the parent's pools still work */
    results again;
    results_alloc(&again);
    for (int k = 0; k < FK_TRAINER_STEP; k++) ck_assert_int_eq(run_one(k, &again), DCRW_OK);
    ck_assert(same(&again, &serial));
    ck_assert_int_eq(dcrw_trainer_step(ft.t, B, ft.batch + B * P, NULL, NULL), DCRW_OK);
    results_free(&again);
    fork_train_free(&ft);
    shared_teardown(m);
}
END_TEST

#if defined(__SANITIZE_THREAD__)
#define TU_THREAD_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TU_THREAD_SANITIZER 1
#endif
#endif
#ifndef TU_THREAD_SANITIZER
#define TU_THREAD_SANITIZER 0
#endif

int main(void) {
    Suite *s = suite_create("threads");
    TCase *tc = tcase_create("threads");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_shared_model, 0, 4);
    suite_add_tcase(s, tc);
    /* ThreadSanitizer refuses to start threads in a child forked from a
     * multi-threaded parent, which is exactly what this case does; the
     * release and ASan builds run it. */
#if !TU_THREAD_SANITIZER
    TCase *tf = tcase_create("fork");
    tcase_set_timeout(tf, 300);
    tcase_add_loop_test(tf, test_fork_child, 0, 4);
    suite_add_tcase(s, tf);
#else
    (void)test_fork_child;
#endif
    return tu_run(s);
}
