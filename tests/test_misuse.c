/* The API misuse table: one test per public function of dcrw.h, calling it
 * with NULL handles and buffers, batch sizes 0 and negative, struct size
 * fields that are wrong, out-of-range indices and values. Each call must
 * return the documented code (never crash), set a message, and leave the
 * handles it was given unchanged and usable.
 *
 * Not tested, by contract: a trainer used after its model was destroyed
 * is undefined behaviour (dcrw.h, "Trainer"), like any use after free. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

static dcrw_config cfg;
static dcrw_model *m;
static dcrw_trainer *t;
static char *dir;
static float *snap;
static size_t nparams;
static float x[4 * 64], eps[3 * 4 * 2], out[3 * 4 * 128];

static void setup(void) {
    ck_assert_int_eq(dcrw_config_preset(&cfg, DCRW_PRESET_DRAW), DCRW_OK);
    cfg.height = cfg.width = 8;
    cfg.glimpses = 3;
    cfg.enc_size = 5;
    cfg.dec_size = 6;
    cfg.z_size = 2;
    cfg.write_n = 3;
    ck_assert_int_eq(dcrw_model_create(&m, &cfg, 1), DCRW_OK);
    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    tc.threads = 1;
    ck_assert_int_eq(dcrw_trainer_create(&t, m, &tc), DCRW_OK);
    const float *p = dcrw_model_params(m, &nparams);
    snap = malloc(nparams * sizeof *snap);
    memcpy(snap, p, nparams * sizeof *snap);
    tu_fill_uniform(x, sizeof x / sizeof x[0], 0.0f, 1.0f, 1);
    tu_fill_uniform(eps, sizeof eps / sizeof eps[0], -1.0f, 1.0f, 2);
    dir = tu_tmpdir();
}

static void teardown(void) {
    /* every misuse left the model's parameters as they were */
    ck_assert(memcmp(dcrw_model_params(m, NULL), snap, nparams * sizeof *snap) == 0);
    dcrw_trainer_destroy(t);
    dcrw_model_destroy(m);
    free(snap);
    tu_rmdir(dir);
}

/* rc must be `code`, and a failure must have set its own message (the
 * sentinel planted before the call must be gone). */
static char sentinel[512];

static void dcrw_fail_reset(void) {
    dcrw_set_threads(-12345);
    snprintf(sentinel, sizeof sentinel, "%s", dcrw_last_error());
}

#define EXPECT(call, code)                                                                         \
    do {                                                                                           \
        dcrw_fail_reset();                                                                         \
        int rc_ = (call);                                                                          \
        ck_assert_msg(rc_ == (code), "%s returned %d (%s), expected %d", #call, rc_,               \
                      dcrw_last_error(), (code));                                                  \
        if ((code) != DCRW_OK)                                                                     \
            ck_assert_msg(strcmp(dcrw_last_error(), sentinel) != 0, "%s set no message", #call);   \
    } while (0)

static const char *path(const char *name) {
    static char buf[4][4096];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

START_TEST(test_version_errors) {
    ck_assert_uint_eq(dcrw_version(), DCRW_VERSION);
    ck_assert_ptr_nonnull(dcrw_version_string());
    for (int c = -1000; c <= 1000; c += 7) ck_assert_ptr_nonnull(dcrw_strerror(c));
    ck_assert_ptr_nonnull(dcrw_strerror(INT_MIN));
    ck_assert_ptr_nonnull(dcrw_last_error());
}
END_TEST

START_TEST(test_threads) {
    int before = dcrw_get_threads();
    ck_assert_int_ge(before, 1);
    EXPECT(dcrw_set_threads(-1), DCRW_EINVAL);
    EXPECT(dcrw_set_threads(1025), DCRW_EINVAL);
    EXPECT(dcrw_set_threads(INT_MIN), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_get_threads(), before);
}
END_TEST

START_TEST(test_config_preset) {
    dcrw_config c;
    EXPECT(dcrw_config_preset(NULL, DCRW_PRESET_DRAW), DCRW_EINVAL);
    EXPECT(dcrw_config_preset(&c, (dcrw_preset)-1), DCRW_EINVAL);
    EXPECT(dcrw_config_preset(&c, (dcrw_preset)5), DCRW_EINVAL);
    EXPECT(dcrw_config_preset(&c, (dcrw_preset)INT_MAX), DCRW_EINVAL);
}
END_TEST

START_TEST(test_config_validate) {
    EXPECT(dcrw_config_validate(NULL), DCRW_EINVAL);
    dcrw_config c = cfg;
    const uint32_t sizes[] = {0, 4, sizeof c - 4, sizeof c + 4, UINT32_MAX};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        c.size = sizes[k];
        EXPECT(dcrw_config_validate(&c), DCRW_EINVAL);
    }
    c = cfg;
    c.glimpses = -1;
    EXPECT(dcrw_config_validate(&c), DCRW_ECONFIG);
    c = cfg;
    c.canvas_init = NAN;
    EXPECT(dcrw_config_validate(&c), DCRW_ECONFIG);
}
END_TEST

START_TEST(test_preset_names) {
    dcrw_preset p = DCRW_PRESET_DCRW;
    EXPECT(dcrw_preset_from_name(NULL, &p), DCRW_EINVAL);
    EXPECT(dcrw_preset_from_name("draw", NULL), DCRW_EINVAL);
    EXPECT(dcrw_preset_from_name("", &p), DCRW_ENOTFOUND);
    EXPECT(dcrw_preset_from_name("DRAW", &p), DCRW_ENOTFOUND);
    ck_assert_int_eq(p, DCRW_PRESET_DCRW); /* untouched on failure */
    ck_assert_ptr_null(dcrw_preset_name((dcrw_preset)-1));
    ck_assert_ptr_null(dcrw_preset_name((dcrw_preset)5));
}
END_TEST

START_TEST(test_model_create) {
    dcrw_model *o = (dcrw_model *)&o;
    EXPECT(dcrw_model_create(NULL, &cfg, 1), DCRW_EINVAL);
    EXPECT(dcrw_model_create(&o, NULL, 1), DCRW_EINVAL);
    ck_assert_ptr_null(o);
    dcrw_config c = cfg;
    c.size = sizeof c - 4;
    o = (dcrw_model *)&o;
    EXPECT(dcrw_model_create(&o, &c, 1), DCRW_EINVAL);
    ck_assert_ptr_null(o);
    c = cfg;
    c.z_size = 0;
    o = (dcrw_model *)&o;
    EXPECT(dcrw_model_create(&o, &c, 1), DCRW_ECONFIG);
    ck_assert_ptr_null(o);
    dcrw_model_destroy(NULL);
}
END_TEST

START_TEST(test_model_load) {
    dcrw_model *o = (dcrw_model *)&o;
    EXPECT(dcrw_model_load(NULL, path("x")), DCRW_EINVAL);
    EXPECT(dcrw_model_load(&o, NULL), DCRW_EINVAL);
    ck_assert_ptr_null(o);
    o = (dcrw_model *)&o;
    EXPECT(dcrw_model_load(&o, ""), DCRW_EIO);
    ck_assert_ptr_null(o);
    EXPECT(dcrw_model_load(&o, path("missing")), DCRW_EIO);
    EXPECT(dcrw_model_load(&o, dir), DCRW_EIO);         /* a folder */
    EXPECT(dcrw_model_load(&o, "/dev/null"), DCRW_EIO); /* not a regular file */
    FILE *f = fopen(path("empty"), "wb");
    fclose(f);
    EXPECT(dcrw_model_load(&o, path("empty")), DCRW_ETRUNCATED);
    ck_assert_ptr_null(o);
}
END_TEST

START_TEST(test_model_save) {
    EXPECT(dcrw_model_save(NULL, path("a")), DCRW_EINVAL);
    EXPECT(dcrw_model_save(m, NULL), DCRW_EINVAL);
    EXPECT(dcrw_model_save(m, ""), DCRW_EINVAL);
    EXPECT(dcrw_model_save(m, path("no/such/folder")), DCRW_EIO);
    ck_assert_int_ne(access(path("a"), F_OK), 0);
}
END_TEST

START_TEST(test_model_queries) {
    dcrw_config c = {.size = sizeof c};
    EXPECT(dcrw_model_config(NULL, &c), DCRW_EINVAL);
    EXPECT(dcrw_model_config(m, NULL), DCRW_EINVAL);
    /* the size-first convention: a size below the first dcrw_config (64
     * bytes) is refused and nothing is written; a larger one (a newer
     * header's struct) gets the fields this library has, and is told how
     * many bytes that is; 0.1's 64 bytes get 64 */
    union {
        dcrw_config c;
        unsigned char b[sizeof(dcrw_config) + 32];
    } u;
    const uint32_t small[] = {0, 4, 60, 63};
    for (size_t k = 0; k < sizeof small / sizeof small[0]; k++) {
        memset(&u, 0xA5, sizeof u);
        u.c.size = small[k];
        EXPECT(dcrw_model_config(m, &u.c), DCRW_EINVAL);
        ck_assert_uint_eq(u.c.size, small[k]);
        for (size_t i = sizeof u.c.size; i < sizeof u; i++) ck_assert_uint_eq(u.b[i], 0xA5);
    }
    memset(&u, 0xA5, sizeof u);
    u.c.size = 64;
    EXPECT(dcrw_model_config(m, &u.c), DCRW_OK);
    ck_assert_uint_eq(u.c.size, 64);
    for (size_t i = 64; i < sizeof u; i++) ck_assert_uint_eq(u.b[i], 0xA5);
    memset(&u, 0xA5, sizeof u);
    u.c.size = sizeof u;
    EXPECT(dcrw_model_config(m, &u.c), DCRW_OK);
    ck_assert_uint_eq(u.c.size, sizeof(dcrw_config));
    ck_assert_int_eq(u.c.dec_size, cfg.dec_size);
    for (size_t i = sizeof(dcrw_config); i < sizeof u; i++) ck_assert_uint_eq(u.b[i], 0xA5);
    EXPECT(dcrw_model_config(m, &c), DCRW_OK);
    ck_assert_int_eq(memcmp(&c, &u.c, sizeof c), 0);
    ck_assert_uint_eq(dcrw_model_input_size(NULL), 0);
    ck_assert_uint_eq(dcrw_model_param_count(NULL), 0);
    ck_assert_uint_eq(dcrw_model_param_floats(NULL), 0);
    size_t n = 77;
    ck_assert_ptr_null(dcrw_model_params(NULL, &n));
    ck_assert_ptr_null(dcrw_model_params(NULL, NULL));
    ck_assert_ptr_nonnull(dcrw_model_params(m, NULL));
}
END_TEST

START_TEST(test_model_param) {
    const size_t n = dcrw_model_param_count(m);
    const char *name;
    int ndim;
    const int64_t *shape;
    float *data;
    EXPECT(dcrw_model_param(NULL, 0, &name, &ndim, &shape, &data), DCRW_EINVAL);
    EXPECT(dcrw_model_param(m, n, &name, &ndim, &shape, &data), DCRW_EINVAL);
    EXPECT(dcrw_model_param(m, SIZE_MAX, &name, &ndim, &shape, &data), DCRW_EINVAL);
    EXPECT(dcrw_model_param(m, n - 1, NULL, NULL, NULL, NULL), DCRW_OK);
}
END_TEST

START_TEST(test_model_find_param) {
    float *d;
    size_t n;
    EXPECT(dcrw_model_find_param(NULL, "q.mu.bias", &d, &n), DCRW_EINVAL);
    EXPECT(dcrw_model_find_param(m, NULL, &d, &n), DCRW_EINVAL);
    EXPECT(dcrw_model_find_param(m, "", &d, &n), DCRW_ENOTFOUND);
    EXPECT(dcrw_model_find_param(m, "enc.conv1.weight", &d, &n), DCRW_ENOTFOUND);
    EXPECT(dcrw_model_find_param(m, "q.mu.bias", NULL, NULL), DCRW_OK);
}
END_TEST

START_TEST(test_model_sizes) {
    dcrw_sizes s;
    s.size = sizeof s;
    EXPECT(dcrw_model_sizes(NULL, &s), DCRW_EINVAL);
    EXPECT(dcrw_model_sizes(m, NULL), DCRW_EINVAL);
    s.size = 0;
    EXPECT(dcrw_model_sizes(m, &s), DCRW_EINVAL);
    s.size = sizeof s + 8;
    EXPECT(dcrw_model_sizes(m, &s), DCRW_EINVAL);
}
END_TEST

static const int bad_batches[] = {0, -1, INT_MIN};
#define NBAD (sizeof bad_batches / sizeof bad_batches[0])

START_TEST(test_read) {
    float h[4 * 6] = {0};
    EXPECT(dcrw_read(NULL, 1, x, x, h, out), DCRW_EINVAL);
    for (size_t k = 0; k < NBAD; k++)
        EXPECT(dcrw_read(m, bad_batches[k], x, x, h, out), DCRW_EINVAL);
    EXPECT(dcrw_read(m, 1, NULL, x, h, out), DCRW_EINVAL);
    EXPECT(dcrw_read(m, 1, x, NULL, h, out), DCRW_EINVAL);
    EXPECT(dcrw_read(m, 1, x, x, NULL, out), DCRW_EINVAL); /* read attention needs h_dec */
    EXPECT(dcrw_read(m, 1, x, x, h, NULL), DCRW_EINVAL);
    h[0] = NAN;
    EXPECT(dcrw_read(m, 1, x, x, h, out), DCRW_ENUMERIC);
}
END_TEST

START_TEST(test_write) {
    float h[4 * 6] = {0};
    EXPECT(dcrw_write(NULL, 1, h, out), DCRW_EINVAL);
    for (size_t k = 0; k < NBAD; k++) EXPECT(dcrw_write(m, bad_batches[k], h, out), DCRW_EINVAL);
    EXPECT(dcrw_write(m, 1, NULL, out), DCRW_EINVAL);
    EXPECT(dcrw_write(m, 1, h, NULL), DCRW_EINVAL);
    h[1] = INFINITY;
    EXPECT(dcrw_write(m, 1, h, out), DCRW_ENUMERIC);
}
END_TEST

/* The image checks every forward function shares. */
static void bad_images(int (*fn)(const float *x, const float *eps)) {
    float y[4 * 64];
    memcpy(y, x, sizeof y);
    y[5] = 1.5f;
    EXPECT(fn(y, NULL), DCRW_EINVAL);
    y[5] = -0.0001f;
    EXPECT(fn(y, NULL), DCRW_EINVAL);
    y[5] = NAN;
    EXPECT(fn(y, NULL), DCRW_ENUMERIC);
    y[5] = 0.5f;
    float e[3 * 4 * 2];
    memcpy(e, eps, sizeof e);
    e[3] = NAN;
    EXPECT(fn(y, e), DCRW_ENUMERIC);
    e[3] = -INFINITY;
    EXPECT(fn(y, e), DCRW_ENUMERIC);
    EXPECT(fn(y, eps), DCRW_OK);
}

static int call_encode(const float *xx, const float *e) {
    return dcrw_encode(m, 4, xx, e, out, NULL, NULL);
}
START_TEST(test_encode) {
    EXPECT(dcrw_encode(NULL, 1, x, NULL, out, NULL, NULL), DCRW_EINVAL);
    for (size_t k = 0; k < NBAD; k++)
        EXPECT(dcrw_encode(m, bad_batches[k], x, NULL, out, NULL, NULL), DCRW_EINVAL);
    EXPECT(dcrw_encode(m, 1, NULL, NULL, out, NULL, NULL), DCRW_EINVAL);
    EXPECT(dcrw_encode(m, 1, x, NULL, NULL, NULL, NULL), DCRW_OK); /* every output optional */
    bad_images(call_encode);
}
END_TEST

START_TEST(test_decode) {
    EXPECT(dcrw_decode(NULL, 1, NULL, 0, out, NULL), DCRW_EINVAL);
    for (size_t k = 0; k < NBAD; k++)
        EXPECT(dcrw_decode(m, bad_batches[k], NULL, 0, out, NULL), DCRW_EINVAL);
    EXPECT(dcrw_decode(m, 1, NULL, 0, NULL, NULL), DCRW_EINVAL); /* no output */
    float z[3 * 4 * 2];
    memcpy(z, eps, sizeof z);
    z[0] = NAN;
    EXPECT(dcrw_decode(m, 4, z, 0, out, NULL), DCRW_ENUMERIC);
}
END_TEST

START_TEST(test_decode_windows) {
    EXPECT(dcrw_decode_windows(NULL, 1, NULL, 0, out, NULL, NULL), DCRW_EINVAL);
    for (size_t k = 0; k < NBAD; k++)
        EXPECT(dcrw_decode_windows(m, bad_batches[k], NULL, 0, NULL, NULL, out), DCRW_EINVAL);
    EXPECT(dcrw_decode_windows(m, 1, NULL, 0, NULL, NULL, NULL), DCRW_EINVAL);
    EXPECT(dcrw_decode_windows(m, 1, NULL, 0, NULL, NULL, out), DCRW_OK); /* windows only */
}
END_TEST

static int call_reconstruct(const float *xx, const float *e) {
    return dcrw_reconstruct(m, 4, xx, e, out, NULL);
}
START_TEST(test_reconstruct) {
    EXPECT(dcrw_reconstruct(NULL, 1, x, NULL, out, NULL), DCRW_EINVAL);
    for (size_t k = 0; k < NBAD; k++)
        EXPECT(dcrw_reconstruct(m, bad_batches[k], x, NULL, out, NULL), DCRW_EINVAL);
    EXPECT(dcrw_reconstruct(m, 1, NULL, NULL, out, NULL), DCRW_EINVAL);
    bad_images(call_reconstruct);
}
END_TEST

static int call_reconstruct_windows(const float *xx, const float *e) {
    return dcrw_reconstruct_windows(m, 4, xx, e, NULL, NULL, out, NULL);
}
START_TEST(test_reconstruct_windows) {
    EXPECT(dcrw_reconstruct_windows(NULL, 1, x, NULL, out, NULL, NULL, NULL), DCRW_EINVAL);
    for (size_t k = 0; k < NBAD; k++)
        EXPECT(dcrw_reconstruct_windows(m, bad_batches[k], x, NULL, out, NULL, NULL, NULL),
               DCRW_EINVAL);
    EXPECT(dcrw_reconstruct_windows(m, 1, NULL, NULL, out, NULL, NULL, NULL), DCRW_EINVAL);
    bad_images(call_reconstruct_windows);
}
END_TEST

static int call_evaluate(const float *xx, const float *e) {
    dcrw_loss l;
    return dcrw_evaluate(m, 4, xx, e, &l);
}
START_TEST(test_evaluate) {
    dcrw_loss l;
    EXPECT(dcrw_evaluate(NULL, 1, x, NULL, &l), DCRW_EINVAL);
    for (size_t k = 0; k < NBAD; k++)
        EXPECT(dcrw_evaluate(m, bad_batches[k], x, NULL, &l), DCRW_EINVAL);
    EXPECT(dcrw_evaluate(m, 1, NULL, NULL, &l), DCRW_EINVAL);
    EXPECT(dcrw_evaluate(m, 1, x, NULL, NULL), DCRW_EINVAL);
    bad_images(call_evaluate);
}
END_TEST

static int call_evaluate_images(const float *xx, const float *e) {
    double lx[4];
    return dcrw_evaluate_images(m, 4, xx, e, lx, NULL);
}
START_TEST(test_evaluate_images) {
    double lx[4], lz[4];
    EXPECT(dcrw_evaluate_images(NULL, 1, x, NULL, lx, lz), DCRW_EINVAL);
    for (size_t k = 0; k < NBAD; k++)
        EXPECT(dcrw_evaluate_images(m, bad_batches[k], x, NULL, lx, lz), DCRW_EINVAL);
    EXPECT(dcrw_evaluate_images(m, 1, NULL, NULL, lx, lz), DCRW_EINVAL);
    EXPECT(dcrw_evaluate_images(m, 1, x, NULL, NULL, NULL), DCRW_EINVAL);
    EXPECT(dcrw_evaluate_images(m, 1, x, NULL, NULL, lz), DCRW_OK);
    bad_images(call_evaluate_images);
}
END_TEST

START_TEST(test_train_config_default) {
    EXPECT(dcrw_train_config_default(NULL), DCRW_EINVAL);
}
END_TEST

START_TEST(test_trainer_create) {
    dcrw_train_config good;
    dcrw_train_config_default(&good);
    dcrw_trainer *o = (dcrw_trainer *)&o;
    EXPECT(dcrw_trainer_create(NULL, m, &good), DCRW_EINVAL);
    EXPECT(dcrw_trainer_create(&o, NULL, &good), DCRW_EINVAL);
    ck_assert_ptr_null(o);
    EXPECT(dcrw_trainer_create(&o, m, NULL), DCRW_EINVAL);
    struct {
        const char *what;
        dcrw_train_config tc;
    } bad[16];
    int n = 0;
#define BAD(field, value)                                                                          \
    do {                                                                                           \
        bad[n].what = #field " = " #value;                                                         \
        bad[n].tc = good;                                                                          \
        bad[n].tc.field = value;                                                                   \
        n++;                                                                                       \
    } while (0)
    BAD(size, 0);
    BAD(size, sizeof good + 8);
    BAD(learning_rate, 0.0f);
    BAD(learning_rate, -1e-3f);
    BAD(learning_rate, NAN);
    BAD(learning_rate, INFINITY);
    BAD(beta1, 1.0f);
    BAD(beta1, -0.1f);
    BAD(beta2, 1.0f);
    BAD(beta2, NAN);
    BAD(adam_eps, 0.0f);
    BAD(adam_eps, -1.0f);
    BAD(clip_norm, -1.0f);
    BAD(clip_norm, INFINITY);
    BAD(threads, -1);
    BAD(threads, 1025);
#undef BAD
    for (int k = 0; k < n; k++) {
        o = (dcrw_trainer *)&o;
        dcrw_fail_reset();
        int rc = dcrw_trainer_create(&o, m, &bad[k].tc);
        ck_assert_msg(rc == DCRW_EINVAL, "%s: returned %d", bad[k].what, rc);
        ck_assert_ptr_null(o);
    }
    dcrw_trainer_destroy(NULL);
}
END_TEST

START_TEST(test_trainer_backward_apply_step) {
    dcrw_loss l;
    EXPECT(dcrw_trainer_backward(NULL, 1, x, NULL, &l), DCRW_EINVAL);
    EXPECT(dcrw_trainer_step(NULL, 1, x, NULL, &l), DCRW_EINVAL);
    EXPECT(dcrw_trainer_apply(NULL), DCRW_EINVAL);
    for (size_t k = 0; k < NBAD; k++) {
        EXPECT(dcrw_trainer_backward(t, bad_batches[k], x, NULL, &l), DCRW_EINVAL);
        EXPECT(dcrw_trainer_step(t, bad_batches[k], x, NULL, &l), DCRW_EINVAL);
    }
    EXPECT(dcrw_trainer_backward(t, 1, NULL, NULL, &l), DCRW_EINVAL);
    EXPECT(dcrw_trainer_step(t, 1, NULL, NULL, NULL), DCRW_EINVAL);
    /* apply with no gradients, and after a refused backward */
    EXPECT(dcrw_trainer_apply(t), DCRW_ENUMERIC);
    float y[4 * 64];
    memcpy(y, x, sizeof y);
    y[0] = NAN;
    EXPECT(dcrw_trainer_backward(t, 4, y, NULL, &l), DCRW_ENUMERIC);
    EXPECT(dcrw_trainer_apply(t), DCRW_ENUMERIC);
    y[0] = 2.0f;
    EXPECT(dcrw_trainer_step(t, 4, y, NULL, &l), DCRW_EINVAL);
    float e[3 * 4 * 2];
    memcpy(e, eps, sizeof e);
    e[7] = NAN;
    EXPECT(dcrw_trainer_step(t, 4, x, e, &l), DCRW_ENUMERIC);
    ck_assert_uint_eq(dcrw_trainer_step_count(t), 0);
    ck_assert_uint_eq(dcrw_trainer_step_count(NULL), 0);
    /* a bad learning rate is refused and leaves the old one */
    EXPECT(dcrw_trainer_set_learning_rate(NULL, 1e-3f), DCRW_EINVAL);
    const float lr0 = dcrw_trainer_learning_rate(t);
    EXPECT(dcrw_trainer_set_learning_rate(t, NAN), DCRW_EINVAL);
    EXPECT(dcrw_trainer_set_learning_rate(t, INFINITY), DCRW_EINVAL);
    EXPECT(dcrw_trainer_set_learning_rate(t, 0.0f), DCRW_EINVAL);
    EXPECT(dcrw_trainer_set_learning_rate(t, -1e-3f), DCRW_EINVAL);
    ck_assert_float_eq(dcrw_trainer_learning_rate(t), lr0);
    ck_assert_float_eq(dcrw_trainer_learning_rate(NULL), 0.0f);
    /* a bad KL weight likewise */
    EXPECT(dcrw_trainer_set_kl_weight(NULL, 0.5f), DCRW_EINVAL);
    EXPECT(dcrw_trainer_set_kl_weight(t, 0.5f), DCRW_OK);
    EXPECT(dcrw_trainer_set_kl_weight(t, NAN), DCRW_EINVAL);
    EXPECT(dcrw_trainer_set_kl_weight(t, -INFINITY), DCRW_EINVAL);
    EXPECT(dcrw_trainer_set_kl_weight(t, INFINITY), DCRW_EINVAL);
    EXPECT(dcrw_trainer_set_kl_weight(t, -0.1f), DCRW_EINVAL);
    ck_assert_float_eq(dcrw_trainer_kl_weight(t), 0.5f);
    ck_assert_float_eq(dcrw_trainer_kl_weight(NULL), 0.0f);
    EXPECT(dcrw_trainer_set_kl_weight(t, 1.0f), DCRW_OK);
    /* a gradient made non-finite by the caller (a bad allreduce) */
    EXPECT(dcrw_trainer_backward(t, 4, x, NULL, &l), DCRW_OK);
    size_t n;
    float *g = dcrw_trainer_grads(t, &n);
    g[n / 2] = INFINITY;
    EXPECT(dcrw_trainer_apply(t), DCRW_ENUMERIC);
    EXPECT(dcrw_trainer_apply(t), DCRW_ENUMERIC);
    ck_assert_uint_eq(dcrw_trainer_step_count(t), 0);
    /* and it still trains (the parameters are compared in the teardown,
     * so put them back) */
    EXPECT(dcrw_trainer_step(t, 4, x, NULL, &l), DCRW_OK);
    ck_assert_uint_eq(dcrw_trainer_step_count(t), 1);
    memcpy(dcrw_model_params(m, NULL), snap, nparams * sizeof *snap);
}
END_TEST

START_TEST(test_trainer_grads) {
    float *d;
    size_t n = 5;
    EXPECT(dcrw_trainer_find_grad(NULL, "q.mu.bias", &d, &n), DCRW_EINVAL);
    EXPECT(dcrw_trainer_find_grad(t, NULL, &d, &n), DCRW_EINVAL);
    EXPECT(dcrw_trainer_find_grad(t, "nope", &d, &n), DCRW_ENOTFOUND);
    EXPECT(dcrw_trainer_find_grad(t, "q.mu.bias", NULL, NULL), DCRW_OK);
    n = 5;
    ck_assert_ptr_null(dcrw_trainer_grads(NULL, &n));
    ck_assert_uint_eq(n, 0);
    ck_assert_ptr_null(dcrw_trainer_grads(NULL, NULL));
}
END_TEST

START_TEST(test_trainer_save_resume) {
    EXPECT(dcrw_trainer_save(NULL, path("t")), DCRW_EINVAL);
    EXPECT(dcrw_trainer_save(t, NULL), DCRW_EINVAL);
    EXPECT(dcrw_trainer_save(t, ""), DCRW_EINVAL);
    EXPECT(dcrw_trainer_resume(NULL, path("t")), DCRW_EINVAL);
    EXPECT(dcrw_trainer_resume(t, NULL), DCRW_EINVAL);
    EXPECT(dcrw_trainer_resume(t, path("missing")), DCRW_EIO);
    /* a checkpoint of another configuration: refused, nothing changes */
    dcrw_config c = cfg;
    c.dec_size = 7;
    dcrw_model *other;
    ck_assert_int_eq(dcrw_model_create(&other, &c, 5), DCRW_OK);
    ck_assert_int_eq(dcrw_model_save(other, path("other")), DCRW_OK);
    dcrw_model_destroy(other);
    EXPECT(dcrw_trainer_resume(t, path("other")), DCRW_ESHAPE);
    ck_assert_uint_eq(dcrw_trainer_step_count(t), 0);
}
END_TEST

START_TEST(test_dataset) {
    dcrw_dataset *d = (dcrw_dataset *)&d;
    EXPECT(dcrw_dataset_load_idx(NULL, path("i"), NULL), DCRW_EINVAL);
    EXPECT(dcrw_dataset_load_idx(&d, NULL, NULL), DCRW_EINVAL);
    ck_assert_ptr_null(d);
    d = (dcrw_dataset *)&d;
    EXPECT(dcrw_dataset_load_idx(&d, path("missing"), NULL), DCRW_EIO);
    ck_assert_ptr_null(d);
    /* a valid 2-image file, for the accessors */
    const unsigned char img[16 + 8] = {0, 0, 8, 3, 0, 0,  0,   2,   0, 0, 0, 2,
                                       0, 0, 0, 2, 0, 64, 128, 255, 1, 2, 3, 4};
    FILE *f = fopen(path("img"), "wb");
    fwrite(img, 1, sizeof img, f);
    fclose(f);
    EXPECT(dcrw_dataset_load_idx(&d, path("img"), path("missing")), DCRW_EIO);
    ck_assert_ptr_null(d);
    EXPECT(dcrw_dataset_load_idx(&d, path("img"), NULL), DCRW_OK);
    ck_assert_uint_eq(dcrw_dataset_count(NULL), 0);
    int c, h, w;
    EXPECT(dcrw_dataset_shape(NULL, &c, &h, &w), DCRW_EINVAL);
    EXPECT(dcrw_dataset_shape(d, NULL, NULL, NULL), DCRW_OK);
    ck_assert_int_eq(dcrw_dataset_label(NULL, 0), -1);
    ck_assert_int_eq(dcrw_dataset_label(d, 0), -1); /* no labels */
    ck_assert_int_eq(dcrw_dataset_label(d, SIZE_MAX), -1);
    ck_assert_ptr_null(dcrw_dataset_images(NULL));
    size_t idx[2] = {0, 1}, badidx[2] = {0, 2};
    float xb[2 * 4];
    EXPECT(dcrw_dataset_batch(NULL, idx, 2, 0, 0, xb), DCRW_EINVAL);
    EXPECT(dcrw_dataset_batch(d, NULL, 2, 0, 0, xb), DCRW_EINVAL);
    EXPECT(dcrw_dataset_batch(d, idx, 2, 0, 0, NULL), DCRW_EINVAL);
    for (size_t k = 0; k < NBAD; k++)
        EXPECT(dcrw_dataset_batch(d, idx, bad_batches[k], 0, 0, xb), DCRW_EINVAL);
    EXPECT(dcrw_dataset_batch(d, idx, 2, 3, 0, xb), DCRW_EINVAL);
    EXPECT(dcrw_dataset_batch(d, idx, 2, -1, 0, xb), DCRW_EINVAL);
    EXPECT(dcrw_dataset_batch(d, badidx, 2, 0, 0, xb), DCRW_EINVAL);
    EXPECT(dcrw_dataset_batch(d, idx, 2, DCRW_BINARIZE_NONE, 0, xb), DCRW_OK);
    ck_assert(xb[3] == 1.0f && xb[1] == 64.0f / 255.0f);
    dcrw_dataset_destroy(d);
    dcrw_dataset_destroy(NULL);
}
END_TEST

int main(void) {
    Suite *s = suite_create("misuse");
    TCase *tc = tcase_create("misuse");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_version_errors);
    tcase_add_test(tc, test_threads);
    tcase_add_test(tc, test_config_preset);
    tcase_add_test(tc, test_config_validate);
    tcase_add_test(tc, test_preset_names);
    tcase_add_test(tc, test_model_create);
    tcase_add_test(tc, test_model_load);
    tcase_add_test(tc, test_model_save);
    tcase_add_test(tc, test_model_queries);
    tcase_add_test(tc, test_model_param);
    tcase_add_test(tc, test_model_find_param);
    tcase_add_test(tc, test_model_sizes);
    tcase_add_test(tc, test_read);
    tcase_add_test(tc, test_write);
    tcase_add_test(tc, test_encode);
    tcase_add_test(tc, test_decode);
    tcase_add_test(tc, test_decode_windows);
    tcase_add_test(tc, test_reconstruct);
    tcase_add_test(tc, test_reconstruct_windows);
    tcase_add_test(tc, test_evaluate);
    tcase_add_test(tc, test_evaluate_images);
    tcase_add_test(tc, test_train_config_default);
    tcase_add_test(tc, test_trainer_create);
    tcase_add_test(tc, test_trainer_backward_apply_step);
    tcase_add_test(tc, test_trainer_grads);
    tcase_add_test(tc, test_trainer_save_resume);
    tcase_add_test(tc, test_dataset);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
