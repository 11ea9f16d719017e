/* Presets, validation, the tensor table and initialisation. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "model.h"
#include "testutil.h"

static dcrw_config preset(dcrw_preset p) {
    dcrw_config c;
    ck_assert_int_eq(dcrw_config_preset(&c, p), DCRW_OK);
    return c;
}

START_TEST(test_version) {
    ck_assert_uint_eq(dcrw_version(), DCRW_VERSION);
    char buf[32];
    snprintf(buf, sizeof buf, "%d.%d.%d", DCRW_VERSION_MAJOR, DCRW_VERSION_MINOR,
             DCRW_VERSION_PATCH);
    ck_assert_str_eq(dcrw_version_string(), buf);
}
END_TEST

START_TEST(test_strerror) {
    for (int c = DCRW_ENUMERIC; c <= DCRW_OK; c++) {
        ck_assert_ptr_nonnull(dcrw_strerror(c));
        ck_assert_str_ne(dcrw_strerror(c), "unknown error code");
    }
    ck_assert_str_eq(dcrw_strerror(-1000), "unknown error code");
}
END_TEST

/* MODEL.md §2 table, typed in from the spec */
START_TEST(test_presets) {
    dcrw_config c = preset(DCRW_PRESET_DRAW);
    ck_assert_int_eq(c.size, sizeof c);
    ck_assert_int_eq(c.channels * c.height * c.width, 784);
    ck_assert_int_eq(c.glimpses, 64);
    ck_assert_int_eq(c.enc_size, 256);
    ck_assert_int_eq(c.dec_size, 256);
    ck_assert_int_eq(c.z_size, 100);
    ck_assert_int_eq(c.read_n, 2);
    ck_assert_int_eq(c.write_n, 5);
    ck_assert_int_eq(c.encoder, DCRW_ENCODER_LSTM);
    ck_assert(c.read_attention && c.write_attention);
    ck_assert(c.canvas_init == 0.0f);

    c = preset(DCRW_PRESET_DRAW_NOATTN);
    ck_assert(!c.read_attention && !c.write_attention);
    ck_assert_int_eq(c.glimpses, 64);

    c = preset(DCRW_PRESET_DCRW);
    ck_assert_int_eq(c.encoder, DCRW_ENCODER_CNN);
    ck_assert_int_eq(c.glimpses, 10);
    ck_assert_int_eq(c.read_n, 7);
    ck_assert_int_eq(c.write_n, 5);
    ck_assert_int_eq(c.conv1, 32);
    ck_assert_int_eq(c.conv2, 64);

    c = preset(DCRW_PRESET_DCRW_NOREAD);
    ck_assert(!c.read_attention && c.write_attention);
    ck_assert_int_eq(c.glimpses, 10);

    for (int p = 0; p < 4; p++) {
        c = preset((dcrw_preset)p);
        ck_assert_int_eq(dcrw_config_validate(&c), DCRW_OK);
        dcrw_preset back;
        ck_assert_int_eq(dcrw_preset_from_name(dcrw_preset_name((dcrw_preset)p), &back), DCRW_OK);
        ck_assert_int_eq(back, p);
    }
    ck_assert_int_eq(dcrw_config_preset(&c, (dcrw_preset)4), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_config_preset(NULL, DCRW_PRESET_DRAW), DCRW_EINVAL);
    dcrw_preset out;
    ck_assert_int_eq(dcrw_preset_from_name("drawx", &out), DCRW_ENOTFOUND);
    ck_assert_int_eq(dcrw_preset_from_name(NULL, &out), DCRW_EINVAL);
    ck_assert_ptr_null(dcrw_preset_name((dcrw_preset)99));
}
END_TEST

/* each bad field is refused with ECONFIG and a message naming it */
struct bad_case {
    const char *field;
    size_t offset;
    int32_t value;
    dcrw_preset preset;
};
#define BAD(f, v, p)                                                                               \
    { #f, offsetof(dcrw_config, f), v, p }
static const struct bad_case bad_cases[] = {
    BAD(channels, 0, DCRW_PRESET_DRAW),       BAD(channels, 65, DCRW_PRESET_DRAW),
    BAD(height, 0, DCRW_PRESET_DRAW),         BAD(height, -3, DCRW_PRESET_DRAW),
    BAD(width, 4097, DCRW_PRESET_DRAW),       BAD(glimpses, 0, DCRW_PRESET_DCRW),
    BAD(enc_size, 0, DCRW_PRESET_DRAW),       BAD(dec_size, 0, DCRW_PRESET_DCRW),
    BAD(dec_size, 1 << 20, DCRW_PRESET_DCRW), BAD(z_size, -1, DCRW_PRESET_DCRW),
    BAD(read_n, 0, DCRW_PRESET_DRAW),         BAD(read_n, 3, DCRW_PRESET_DCRW),
    BAD(write_n, 0, DCRW_PRESET_DCRW_NOREAD), BAD(conv1, 0, DCRW_PRESET_DCRW),
    BAD(conv2, 5000, DCRW_PRESET_DCRW),       BAD(encoder, 2, DCRW_PRESET_DCRW),
    BAD(read_attention, 2, DCRW_PRESET_DRAW), BAD(write_attention, -1, DCRW_PRESET_DRAW),
    BAD(height, 3, DCRW_PRESET_DCRW_NOREAD),
};

START_TEST(test_validate_bad) {
    const struct bad_case *bc = &bad_cases[_i];
    dcrw_config c = preset(bc->preset);
    memcpy((char *)&c + bc->offset, &bc->value, sizeof bc->value);
    ck_assert_int_eq(dcrw_config_validate(&c), DCRW_ECONFIG);
    ck_assert_msg(strstr(dcrw_last_error(), bc->field) != NULL, "message \"%s\" lacks \"%s\"",
                  dcrw_last_error(), bc->field);
    dcrw_model *m = (dcrw_model *)1;
    ck_assert_int_eq(dcrw_model_create(&m, &c, 1), DCRW_ECONFIG);
    ck_assert_ptr_null(m);
}
END_TEST

START_TEST(test_validate_other) {
    dcrw_config c = preset(DCRW_PRESET_DRAW);
    c.canvas_init = NAN;
    ck_assert_int_eq(dcrw_config_validate(&c), DCRW_ECONFIG);
    ck_assert_ptr_nonnull(strstr(dcrw_last_error(), "canvas_init"));
    c = preset(DCRW_PRESET_DRAW);
    c.size = 12;
    ck_assert_int_eq(dcrw_config_validate(&c), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_config_validate(NULL), DCRW_EINVAL);
    /* sizes an architecture does not use are not checked */
    c = preset(DCRW_PRESET_DCRW_NOREAD);
    c.read_n = -5;
    c.enc_size = 0;
    ck_assert_int_eq(dcrw_config_validate(&c), DCRW_OK);
    /* products that overflow a BLAS int are refused, not wrapped */
    c = preset(DCRW_PRESET_DRAW_NOATTN);
    c.channels = 64;
    c.height = c.width = 4096;
    ck_assert_int_eq(dcrw_config_validate(&c), DCRW_ECONFIG);
    c = preset(DCRW_PRESET_DRAW_NOATTN);
    c.height = c.width = 1024; /* P = 2^20, enc W_ih = 4·256·(2^21+256) > 2^31 */
    ck_assert_int_eq(dcrw_config_validate(&c), DCRW_ECONFIG);
    ck_assert_ptr_nonnull(strstr(dcrw_last_error(), "enc.lstm.weight_ih"));
}
END_TEST

/* parameter counts of the four MNIST presets, as the PyTorch peer reports
 * them (shared/peer/bench_peer.txt), and e_t sizes from MODEL.md §7 */
START_TEST(test_layout) {
    static const size_t expect[4] = {959467, 2749400, 457867, 1019494};
    static const int expect_q[4] = {256, 256, 64 * 1 * 1 + 256, 64 * 7 * 7};
    static const int expect_n[4] = {16, 12, 17, 15};
    for (int p = 0; p < 4; p++) {
        dcrw_config c = preset((dcrw_preset)p);
        dcrw_model *m = NULL;
        ck_assert_int_eq(dcrw_model_create(&m, &c, 42), DCRW_OK);
        ck_assert_uint_eq(dcrw_model_param_floats(m), expect[p]);
        ck_assert_uint_eq(dcrw_model_param_count(m), (size_t)expect_n[p]);
        ck_assert_uint_eq(dcrw_model_input_size(m), 784);
        size_t total = 0;
        for (size_t i = 0; i < dcrw_model_param_count(m); i++) {
            const char *name;
            int ndim;
            const int64_t *shape;
            float *data, *found;
            size_t count = 1, fcount;
            ck_assert_int_eq(dcrw_model_param(m, i, &name, &ndim, &shape, &data), DCRW_OK);
            for (int k = 0; k < ndim; k++) count *= (size_t)shape[k];
            ck_assert_int_eq(dcrw_model_find_param(m, name, &found, &fcount), DCRW_OK);
            ck_assert_ptr_eq(found, data);
            ck_assert_uint_eq(fcount, count);
            ck_assert_ptr_eq(data, dcrw_model_params(m, NULL) + total);
            total += count;
        }
        ck_assert_uint_eq(total, expect[p]);
        float *w;
        size_t n;
        ck_assert_int_eq(dcrw_model_find_param(m, "q.mu.weight", &w, &n), DCRW_OK);
        ck_assert_uint_eq(n, (size_t)100 * expect_q[p]);
        ck_assert_int_eq(dcrw_model_find_param(m, "no.such", &w, &n), DCRW_ENOTFOUND);
        ck_assert_int_eq(dcrw_model_param(m, dcrw_model_param_count(m), NULL, NULL, NULL, NULL),
                         DCRW_EINVAL);
        dcrw_model_destroy(m);
    }
    dcrw_model_destroy(NULL);
}
END_TEST

static double max_abs(const float *x, size_t n) {
    double r = 0;
    for (size_t i = 0; i < n; i++) r = fmax(r, fabs(x[i]));
    return r;
}

START_TEST(test_init) {
    dcrw_config c = preset(DCRW_PRESET_DRAW);
    dcrw_model *a, *b, *d;
    ck_assert_int_eq(dcrw_model_create(&a, &c, 7), DCRW_OK);
    ck_assert_int_eq(dcrw_model_create(&b, &c, 7), DCRW_OK);
    ck_assert_int_eq(dcrw_model_create(&d, &c, 8), DCRW_OK);
    size_t n;
    float *pa = dcrw_model_params(a, &n), *pb = dcrw_model_params(b, NULL),
          *pd = dcrw_model_params(d, NULL);
    ck_assert_int_eq(memcmp(pa, pb, n * sizeof(float)), 0);
    ck_assert_int_ne(memcmp(pa, pd, n * sizeof(float)), 0);

    float *w;
    size_t cnt;
    /* U(-1/sqrt(256), 1/sqrt(256)) for the decoder weights, and they spread out */
    ck_assert_int_eq(dcrw_model_find_param(a, "dec.lstm.weight_hh", &w, &cnt), DCRW_OK);
    ck_assert(max_abs(w, cnt) <= 1.0 / 16.0);
    ck_assert(max_abs(w, cnt) > 0.9 / 16.0);
    /* forget gate bias = 1, other gates within the uniform bound */
    ck_assert_int_eq(dcrw_model_find_param(a, "dec.lstm.bias", &w, &cnt), DCRW_OK);
    for (int i = 0; i < 256; i++) {
        ck_assert(w[256 + i] == 1.0f);
        ck_assert(fabsf(w[i]) <= 1.0f / 16.0f);
    }
    ck_assert_int_eq(dcrw_model_find_param(a, "read.attn.bias", &w, &cnt), DCRW_OK);
    ck_assert(max_abs(w, cnt) == 0.0);
    ck_assert_int_eq(dcrw_model_find_param(a, "write.attn.weight", &w, &cnt), DCRW_OK);
    ck_assert(max_abs(w, cnt) <= 0.01 && max_abs(w, cnt) > 0.005);
    dcrw_model_destroy(a);
    dcrw_model_destroy(b);
    dcrw_model_destroy(d);

    c = preset(DCRW_PRESET_DCRW);
    ck_assert_int_eq(dcrw_model_create(&a, &c, 7), DCRW_OK);
    ck_assert_int_eq(dcrw_model_find_param(a, "enc.conv1.weight", &w, &cnt), DCRW_OK);
    ck_assert_uint_eq(cnt, 32 * 2 * 9);
    ck_assert(max_abs(w, cnt) <= 1.0 / sqrt(18.0));
    dcrw_config back = {.size = sizeof back};
    ck_assert_int_eq(dcrw_model_config(a, &back), DCRW_OK);
    ck_assert_int_eq(back.enc_size, 0);
    ck_assert_int_eq(back.read_n, 7);
    dcrw_model_destroy(a);
    ck_assert_int_eq(dcrw_model_create(NULL, &c, 1), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_model_create(&a, NULL, 1), DCRW_EINVAL);
}
END_TEST

int main(void) {
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_strerror);
    tcase_add_test(tc, test_presets);
    tcase_add_loop_test(tc, test_validate_bad, 0, sizeof bad_cases / sizeof bad_cases[0]);
    tcase_add_test(tc, test_validate_other);
    tcase_add_test(tc, test_layout);
    tcase_add_test(tc, test_init);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
