/* Allocation failure (dav1d's alloc-fail approach, made exhaustive): every
 * operation is run with its n-th library allocation failing, for n = 0, 1,
 * 2, ... until it runs through without reaching the failure. Each failure
 * must return DCRW_ENOMEM, leak nothing (run under LeakSanitizer in the
 * sanitizer build: a leak makes the forked test process exit non-zero) and
 * leave every handle as it was and usable.
 *
 * The hook is dcrw_test_alloc_fail_after() in lib/error.c, which every
 * library allocation passes through. cJSON's allocations are routed there
 * too (cJSON_InitHooks below) so that the checkpoint parser's JSON tree is
 * covered. Not covered: zlib's internal buffers, OpenBLAS, pthread_create
 * and the C library's own (fopen, mkstemp); see doc/RELIABILITY.md. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "common.h"
#include "testutil.h"

/* Set when the injected failure hit one of cJSON's allocations. */
static int cjson_failed;

static void *cjson_alloc(size_t n) {
    void *p = dcrw_alloc(n);
    if (!p) cjson_failed = 1;
    return p;
}

static void hook_cjson(void) {
    cJSON_Hooks h = {cjson_alloc, dcrw_free};
    cJSON_InitHooks(&h);
}

/* One operation under test: run() does it, on_fail() checks the state
 * after an injected failure, on_ok() after the run that succeeded (and
 * cleans up what it made). */
typedef struct op {
    const char *name;
    int (*run)(void *ctx);
    void (*on_fail)(void *ctx, int rc);
    void (*on_ok)(void *ctx);
    void *ctx;
} op;

/* The expected code of a failed run: ENOMEM, except that a cJSON parse
 * that runs out of memory is reported as malformed JSON (cJSON returns NULL
 * either way and says nothing more); see doc/RELIABILITY.md. */
static long cjson_as_eformat;

static void expect_enomem(const char *what, long n, int rc) {
    if (cjson_failed && rc == DCRW_EFORMAT) {
        cjson_as_eformat++;
        return;
    }
    if (rc != DCRW_ENOMEM)
        ck_abort_msg("%s: allocation %ld failed, the call returned %d (%s), expected ENOMEM", what,
                     n, rc, dcrw_last_error());
}

/* Returns the number of allocations the operation makes, i.e. the failure
 * points covered. */
static long sweep(const op *o) {
    for (long n = 0;; n++) {
        cjson_failed = 0;
        dcrw_test_alloc_fail_after(n);
        int rc = o->run(o->ctx);
        long left = dcrw_test_alloc_fail_after(-1);
        if (left >= 0) {
            /* the n-th allocation was never reached: a clean run */
            if (rc != DCRW_OK)
                ck_abort_msg("%s: failed (%d: %s) without an injected failure", o->name, rc,
                             dcrw_last_error());
            if (o->on_ok) o->on_ok(o->ctx);
            printf("allocfail: %-28s %3ld allocation points\n", o->name, n);
            fflush(stdout);
            return n;
        }
        expect_enomem(o->name, n, rc);
        if (o->on_fail) o->on_fail(o->ctx, rc);
        ck_assert_msg(n < 100000, "%s: no end to its allocations", o->name);
    }
}

/* Tiny models of each preset, so that a sweep of a few hundred runs takes
 * well under a second even under ASan. */
static dcrw_config tiny(dcrw_preset p) {
    dcrw_config c;
    ck_assert_int_eq(dcrw_config_preset(&c, p), DCRW_OK);
    c.height = c.width = 8;
    c.glimpses = 3;
    c.enc_size = c.encoder == DCRW_ENCODER_LSTM ? 5 : 0;
    c.dec_size = 6;
    c.z_size = 2;
    if (c.read_attention) c.read_n = c.encoder == DCRW_ENCODER_CNN ? 4 : 2;
    if (c.write_attention) c.write_n = 3;
    if (c.encoder == DCRW_ENCODER_CNN) c.conv1 = 2, c.conv2 = 3;
    return c;
}

#define B 3
#define MAXP 64
#define MAXT 3
#define MAXZ 2

typedef struct ctx {
    dcrw_config cfg;
    dcrw_model *m, *made;
    dcrw_trainer *t, *tmade;
    dcrw_dataset *d;
    char *dir;
    char path[4096], path2[4096], labels[4096];
    float x[B * MAXP], eps[MAXT * B * MAXZ], out[MAXT * B * MAXP], out2[MAXT * B * MAXP];
    float *snap;   /* parameters before the call */
    float *snap_m; /* Adam moments (as saved) before the call */
    uint64_t step;
    unsigned char *file; /* the checkpoint's bytes before the call */
    size_t file_n;
    int threads;
} ctx;

static ctx *ctx_new(dcrw_preset p, int threads) {
    ctx *c = calloc(1, sizeof *c);
    ck_assert_ptr_nonnull(c);
    c->cfg = tiny(p);
    c->threads = threads;
    ck_assert_int_eq(dcrw_model_create(&c->m, &c->cfg, 11), DCRW_OK);
    c->dir = tu_tmpdir();
    ck_assert_ptr_nonnull(c->dir);
    snprintf(c->path, sizeof c->path, "%s/m.safetensors", c->dir);
    snprintf(c->path2, sizeof c->path2, "%s/t.safetensors", c->dir);
    size_t P = dcrw_model_input_size(c->m);
    ck_assert_uint_le(P, MAXP);
    tu_fill_uniform(c->x, B * P, 0.0f, 1.0f, 5);
    tu_fill_uniform(c->eps, MAXT * B * MAXZ, -1.0f, 1.0f, 6);
    return c;
}

static void ctx_free(ctx *c) {
    dcrw_trainer_destroy(c->t);
    dcrw_model_destroy(c->m);
    free(c->snap);
    free(c->snap_m);
    free(c->file);
    tu_rmdir(c->dir);
    free(c);
}

static dcrw_trainer *make_trainer(ctx *c) {
    dcrw_train_config tc;
    ck_assert_int_eq(dcrw_train_config_default(&tc), DCRW_OK);
    tc.threads = c->threads;
    dcrw_trainer *t;
    ck_assert_int_eq(dcrw_trainer_create(&t, c->m, &tc), DCRW_OK);
    return t;
}

static void snapshot(ctx *c) {
    size_t n;
    const float *p = dcrw_model_params(c->m, &n);
    free(c->snap);
    c->snap = malloc(n * sizeof *p);
    memcpy(c->snap, p, n * sizeof *p);
    c->step = c->t ? dcrw_trainer_step_count(c->t) : 0;
}

static void assert_unchanged(ctx *c, const char *what) {
    size_t n;
    const float *p = dcrw_model_params(c->m, &n);
    ck_assert_msg(memcmp(p, c->snap, n * sizeof *p) == 0, "%s changed the parameters", what);
    if (c->t) ck_assert_uint_eq(dcrw_trainer_step_count(c->t), c->step);
}

/* ---- model create and load */

static int run_create(void *p) {
    ctx *c = p;
    c->made = (dcrw_model *)1; /* must be reset to NULL on failure */
    return dcrw_model_create(&c->made, &c->cfg, 3);
}
static void fail_create(void *p, int rc) {
    (void)rc;
    ck_assert_ptr_null(((ctx *)p)->made);
}
static void ok_create(void *p) {
    ctx *c = p;
    ck_assert_ptr_nonnull(c->made);
    dcrw_model_destroy(c->made);
    c->made = NULL;
}

static int run_load(void *p) {
    ctx *c = p;
    c->made = (dcrw_model *)1;
    return dcrw_model_load(&c->made, c->path);
}
static void ok_load(void *p) {
    ctx *c = p;
    size_t n, n2;
    const float *a = dcrw_model_params(c->m, &n), *b = dcrw_model_params(c->made, &n2);
    ck_assert_uint_eq(n, n2);
    ck_assert(memcmp(a, b, n * sizeof *a) == 0);
    ok_create(p);
}

START_TEST(test_create_load) {
    hook_cjson();
    long total = 0;
    for (int p = 0; p < 4; p++) {
        ctx *c = ctx_new((dcrw_preset)p, 1);
        op o = {"dcrw_model_create", run_create, fail_create, ok_create, c};
        total += sweep(&o);
        ck_assert_int_eq(dcrw_model_save(c->m, c->path), DCRW_OK);
        op l = {"dcrw_model_load", run_load, fail_create, ok_load, c};
        total += sweep(&l);
        ctx_free(c);
    }
    printf("allocfail: cJSON failures reported as EFORMAT: %ld\n", cjson_as_eformat);
    ck_assert_int_gt(total, 4 * 4);
}
END_TEST

/* ---- trainer create, step, save, resume */

static int run_tcreate(void *p) {
    ctx *c = p;
    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    tc.threads = c->threads;
    c->tmade = (dcrw_trainer *)1;
    return dcrw_trainer_create(&c->tmade, c->m, &tc);
}
static void fail_tcreate(void *p, int rc) {
    (void)rc;
    ck_assert_ptr_null(((ctx *)p)->tmade);
}
static void ok_tcreate(void *p) {
    ctx *c = p;
    ck_assert_ptr_nonnull(c->tmade);
    dcrw_trainer_destroy(c->tmade);
    c->tmade = NULL;
}

START_TEST(test_trainer) {
    hook_cjson();
    long total = 0;
    for (int p = 0; p < 4; p++) {
        /* two threads: the batch runs in two chunks, each with its workspace */
        ctx *c = ctx_new((dcrw_preset)p, p % 2 ? 2 : 1);
        op o = {"dcrw_trainer_create", run_tcreate, fail_tcreate, ok_tcreate, c};
        total += sweep(&o);

        /* step on a fresh trainer: the first backward sizes the workspace */
        long n;
        for (n = 0;; n++) {
            c->t = make_trainer(c);
            snapshot(c);
            cjson_failed = 0;
            dcrw_test_alloc_fail_after(n);
            dcrw_loss loss;
            int rc = dcrw_trainer_step(c->t, B, c->x, c->eps, &loss);
            long left = dcrw_test_alloc_fail_after(-1);
            if (left >= 0) {
                ck_assert_int_eq(rc, DCRW_OK);
                ck_assert_uint_eq(dcrw_trainer_step_count(c->t), 1);
                break;
            }
            expect_enomem("dcrw_trainer_step", n, rc);
            assert_unchanged(c, "a failed step");
            /* apply refuses the gradients of the failed backward */
            ck_assert_int_eq(dcrw_trainer_apply(c->t), DCRW_ENUMERIC);
            assert_unchanged(c, "apply after a failed step");
            /* and the trainer still works */
            ck_assert_int_eq(dcrw_trainer_step(c->t, B, c->x, c->eps, &loss), DCRW_OK);
            ck_assert_uint_eq(dcrw_trainer_step_count(c->t), 1);
            dcrw_trainer_destroy(c->t);
            c->t = NULL;
        }
        printf("allocfail: %-28s %3ld allocation points\n", "dcrw_trainer_step (first)", n);
        total += n;
        /* a later step with another batch size reallocates the workspace;
         * on failure the old one must stay in use */
        for (n = 0;; n++) {
            snapshot(c);
            dcrw_test_alloc_fail_after(n);
            int rc = dcrw_trainer_step(c->t, B - 1, c->x, c->eps, NULL);
            long left = dcrw_test_alloc_fail_after(-1);
            if (left >= 0) {
                ck_assert_int_eq(rc, DCRW_OK);
                break;
            }
            expect_enomem("dcrw_trainer_step (resize)", n, rc);
            assert_unchanged(c, "a failed step");
            ck_assert_int_eq(dcrw_trainer_step(c->t, B, c->x, c->eps, NULL), DCRW_OK);
        }
        printf("allocfail: %-28s %3ld allocation points\n", "dcrw_trainer_step (resize)", n);
        total += n;

        /* save: the old file stays, byte for byte, and no temporary remains */
        ck_assert_int_eq(dcrw_trainer_save(c->t, c->path2), DCRW_OK);
        ck_assert_int_eq(dcrw_trainer_step(c->t, B, c->x, c->eps, NULL), DCRW_OK);
        free(c->file);
        c->file = tu_read_file(c->path2, &c->file_n);
        for (n = 0;; n++) {
            dcrw_test_alloc_fail_after(n);
            int rc = dcrw_trainer_save(c->t, c->path2);
            long left = dcrw_test_alloc_fail_after(-1);
            if (left >= 0) {
                ck_assert_int_eq(rc, DCRW_OK);
                break;
            }
            expect_enomem("dcrw_trainer_save", n, rc);
            size_t len;
            unsigned char *now = tu_read_file(c->path2, &len);
            ck_assert_msg(len == c->file_n && memcmp(now, c->file, len) == 0,
                          "a failed save changed the checkpoint");
            free(now);
            ck_assert_int_eq(tu_count_entries(c->dir), 1);
        }
        printf("allocfail: %-28s %3ld allocation points\n", "dcrw_trainer_save", n);
        total += n;
        for (n = 0;; n++) {
            dcrw_test_alloc_fail_after(n);
            int rc = dcrw_model_save(c->m, c->path2);
            long left = dcrw_test_alloc_fail_after(-1);
            if (left >= 0) {
                ck_assert_int_eq(rc, DCRW_OK);
                break;
            }
            expect_enomem("dcrw_model_save", n, rc);
            ck_assert_int_eq(tu_count_entries(c->dir), 1);
            ck_assert_int_eq(dcrw_trainer_save(c->t, c->path2), DCRW_OK);
        }
        printf("allocfail: %-28s %3ld allocation points\n", "dcrw_model_save", n);
        total += n;

        /* resume from the trainer file of one step, after two more steps:
         * a failed resume leaves parameters and step count as they were */
        ck_assert_int_eq(dcrw_trainer_save(c->t, c->path2), DCRW_OK);
        const uint64_t saved_step = dcrw_trainer_step_count(c->t);
        ck_assert_int_eq(dcrw_trainer_step(c->t, B, c->x, c->eps, NULL), DCRW_OK);
        ck_assert_int_eq(dcrw_trainer_step(c->t, B, c->x, c->eps, NULL), DCRW_OK);
        snapshot(c);
        for (n = 0;; n++) {
            cjson_failed = 0;
            dcrw_test_alloc_fail_after(n);
            int rc = dcrw_trainer_resume(c->t, c->path2);
            long left = dcrw_test_alloc_fail_after(-1);
            if (left >= 0) {
                ck_assert_int_eq(rc, DCRW_OK);
                ck_assert_uint_eq(dcrw_trainer_step_count(c->t), saved_step);
                break;
            }
            expect_enomem("dcrw_trainer_resume", n, rc);
            assert_unchanged(c, "a failed resume");
        }
        printf("allocfail: %-28s %3ld allocation points\n", "dcrw_trainer_resume", n);
        total += n;
        /* after all that the trainer steps to finite numbers */
        dcrw_loss loss;
        ck_assert_int_eq(dcrw_trainer_step(c->t, B, c->x, c->eps, &loss), DCRW_OK);
        size_t np;
        const float *params = dcrw_model_params(c->m, &np);
        ck_assert(dcrw_all_finite(params, np));
        ctx_free(c);
    }
    printf("allocfail: cJSON failures reported as EFORMAT: %ld\n", cjson_as_eformat);
    ck_assert_int_gt(total, 4 * 6);
}
END_TEST

/* ---- the const operations */

static int run_evaluate(void *p) {
    ctx *c = p;
    dcrw_loss l;
    return dcrw_evaluate(c->m, B, c->x, c->eps, &l);
}
static int run_encode(void *p) {
    ctx *c = p;
    return dcrw_encode(c->m, B, c->x, c->eps, c->out, NULL, NULL);
}
static int run_decode(void *p) {
    ctx *c = p;
    return dcrw_decode(c->m, B, NULL, 9, c->out, c->out2);
}
static int run_reconstruct(void *p) {
    ctx *c = p;
    return dcrw_reconstruct(c->m, B, c->x, c->eps, c->out, c->out2);
}
static int run_read(void *p) {
    ctx *c = p;
    float h[B * 6] = {0};
    return dcrw_read(c->m, B, c->x, c->x, h, c->out);
}
static int run_write(void *p) {
    ctx *c = p;
    float h[B * 6] = {0};
    return dcrw_write(c->m, B, h, c->out);
}
/* The calls of 0.3. The thread's workspace is released first, so that
 * each sweep reaches the allocations of a fresh one, not only a reuse. */
static int run_iw(void *p) {
    ctx *c = p;
    double iw[B], logw[B * 2];
    dcrw_workspace_release();
    return dcrw_evaluate_iw(c->m, B, c->x, 2, 4, 10, iw, logw);
}
static int run_images_part(void *p) {
    ctx *c = p;
    double lx[B];
    dcrw_workspace_release();
    return dcrw_evaluate_images_part(c->m, B, c->x, 4, 10, lx, NULL);
}
static int run_decode_part(void *p) {
    ctx *c = p;
    dcrw_workspace_release();
    return dcrw_decode_part(c->m, B, 4, 10, c->out, NULL, NULL);
}
static int run_info(void *p) {
    ctx *c = p;
    dcrw_checkpoint_summary s = {.size = sizeof s};
    dcrw_config cfg = {.size = sizeof cfg};
    return dcrw_checkpoint_info(c->path, &s, &cfg);
}
/* the model must be unchanged and still give the same answer */
static void fail_const(void *p, int rc) {
    (void)rc;
    ctx *c = p;
    assert_unchanged(c, "a failed const operation");
}

START_TEST(test_const_ops) {
    hook_cjson(); /* dcrw_checkpoint_info parses a header */
    long total = 0;
    for (int p = 0; p < 4; p++) {
        for (int threads = 1; threads <= 2; threads++) {
            ck_assert_int_eq(dcrw_set_threads(threads), DCRW_OK);
            ctx *c = ctx_new((dcrw_preset)p, threads);
            snapshot(c);
            op ops[] = {
                {"dcrw_evaluate", run_evaluate, fail_const, NULL, c},
                {"dcrw_encode", run_encode, fail_const, NULL, c},
                {"dcrw_decode", run_decode, fail_const, NULL, c},
                {"dcrw_reconstruct", run_reconstruct, fail_const, NULL, c},
                {"dcrw_read", run_read, fail_const, NULL, c},
                {"dcrw_write", run_write, fail_const, NULL, c},
                {"dcrw_evaluate_iw", run_iw, fail_const, NULL, c},
                {"dcrw_evaluate_images_part", run_images_part, fail_const, NULL, c},
                {"dcrw_decode_part", run_decode_part, fail_const, NULL, c},
                {"dcrw_checkpoint_info", run_info, NULL, NULL, c},
            };
            ck_assert_int_eq(dcrw_model_save(c->m, c->path), DCRW_OK);
            for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) total += sweep(&ops[k]);
            ctx_free(c);
        }
    }
    dcrw_set_threads(0);
    ck_assert_int_gt(total, 4 * 2 * 4);
}
END_TEST

/* ---- data sets */

static int run_dataset(void *p) {
    ctx *c = p;
    c->d = (dcrw_dataset *)1;
    return dcrw_dataset_load_idx(&c->d, c->path, c->labels);
}
static void fail_dataset(void *p, int rc) {
    (void)rc;
    ck_assert_ptr_null(((ctx *)p)->d);
}
static void ok_dataset(void *p) {
    ctx *c = p;
    ck_assert_uint_eq(dcrw_dataset_count(c->d), 3);
    ck_assert_int_eq(dcrw_dataset_label(c->d, 2), 9);
    dcrw_dataset_destroy(c->d);
    c->d = NULL;
}

static void write_file(const char *path, const unsigned char *b, size_t n, int gz) {
    if (gz) {
        gzFile f = gzopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(gzwrite(f, b, (unsigned)n), (int)n);
        ck_assert_int_eq(gzclose(f), Z_OK);
        return;
    }
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_dataset) {
    long total = 0;
    for (int gz = 0; gz < 2; gz++) {
        ctx *c = ctx_new(DCRW_PRESET_DRAW, 1);
        const unsigned char img[16 + 12] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2,  0,  0,
                                            0, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
        const unsigned char lab[8 + 3] = {0, 0, 8, 1, 0, 0, 0, 3, 4, 5, 9};
        write_file(c->path, img, sizeof img, gz);
        snprintf(c->labels, sizeof c->labels, "%s/labels", c->dir);
        write_file(c->labels, lab, sizeof lab, gz);
        op o = {gz ? "dcrw_dataset_load_idx (gzip)" : "dcrw_dataset_load_idx", run_dataset,
                fail_dataset, ok_dataset, c};
        total += sweep(&o);
        ctx_free(c);
    }
    ck_assert_int_ge(total, 2 * 3);
}
END_TEST

int main(void) {
    Suite *s = suite_create("allocfail");
    TCase *tc = tcase_create("allocfail");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_create_load);
    tcase_add_test(tc, test_trainer);
    tcase_add_test(tc, test_const_ops);
    tcase_add_test(tc, test_dataset);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
