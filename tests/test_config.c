/* Presets, validation, the fields by name, the tensor table and
 * initialisation. */
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

    for (int p = 0; p < 5; p++) {
        c = preset((dcrw_preset)p);
        ck_assert_int_eq(dcrw_config_validate(&c), DCRW_OK);
        dcrw_preset back;
        ck_assert_int_eq(dcrw_preset_from_name(dcrw_preset_name((dcrw_preset)p), &back), DCRW_OK);
        ck_assert_int_eq(back, p);
    }
    ck_assert_int_eq(dcrw_config_preset(&c, (dcrw_preset)5), DCRW_EINVAL);
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

/* parameter counts of the four MNIST presets, as the PyTorch reference
 * implementation reports them, and e_t sizes from MODEL.md §7 */
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

/* ---- fields by name ------------------------------------------------------ */

/* The enumeration covers the struct exactly: offsets in order, 4 bytes
 * apart from just after `size` to its end, names unique, canvas_init the
 * one float. */
START_TEST(test_field_enumeration) {
    const int n = dcrw_config_field_count();
    ck_assert_int_eq(n, 17);
    size_t expect = offsetof(dcrw_config, channels);
    for (int i = 0; i < n; i++) {
        const char *name;
        int type;
        size_t off;
        double lo, hi;
        ck_assert_int_eq(dcrw_config_field(i, &name, &type, &off, &lo, &hi), DCRW_OK);
        ck_assert_uint_eq(off, expect);
        expect += 4;
        ck_assert(lo <= hi);
        ck_assert_int_eq(type == DCRW_FIELD_FLOAT, strcmp(name, "canvas_init") == 0);
        for (int j = 0; j < i; j++) {
            const char *other;
            ck_assert_int_eq(dcrw_config_field(j, &other, NULL, NULL, NULL, NULL), DCRW_OK);
            ck_assert_str_ne(name, other);
        }
    }
    ck_assert_uint_eq(expect, sizeof(dcrw_config));
    ck_assert_int_eq(dcrw_config_field(n, NULL, NULL, NULL, NULL, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_config_field(-1, NULL, NULL, NULL, NULL, NULL), DCRW_EINVAL);
    /* the types of a few, as dcrw.h documents them */
    static const struct {
        const char *name;
        int type;
    } known[] = {{"height", DCRW_FIELD_INT},
                 {"encoder", DCRW_FIELD_ENCODER},
                 {"read_attention", DCRW_FIELD_BOOL},
                 {"write_attention", DCRW_FIELD_BOOL}};
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) {
        int found = 0;
        for (int i = 0; i < n; i++) {
            const char *name;
            int type;
            dcrw_config_field(i, &name, &type, NULL, NULL, NULL);
            if (strcmp(name, known[k].name)) continue;
            found = 1;
            ck_assert_int_eq(type, known[k].type);
        }
        ck_assert(found);
    }
}
END_TEST

/* get then set reproduces every field of every preset, bit for bit, on a
 * configuration that held other values */
START_TEST(test_field_round_trip) {
    for (int p = 0; p < 4; p++) {
        dcrw_config c = preset((dcrw_preset)p);
        c.canvas_init = -0.1f; /* no exact decimal: the text must still round-trip */
        dcrw_config back = preset((dcrw_preset)((p + 1) % 4));
        back.canvas_init = 3.0f;
        for (int i = 0; i < dcrw_config_field_count(); i++) {
            const char *name;
            dcrw_config_field(i, &name, NULL, NULL, NULL, NULL);
            char text[32];
            ck_assert_int_eq(dcrw_config_get(&c, name, text, sizeof text), DCRW_OK);
            ck_assert_msg(dcrw_config_set(&back, name, text) == DCRW_OK, "%s = %s: %s", name, text,
                          dcrw_last_error());
        }
        ck_assert_int_eq(memcmp(&c, &back, sizeof c), 0);
    }
}
END_TEST

static void expect_text(const dcrw_config *c, const char *name, const char *want) {
    char text[32];
    ck_assert_int_eq(dcrw_config_get(c, name, text, sizeof text), DCRW_OK);
    ck_assert_str_eq(text, want);
}

/* the spellings of dcrw_config_set(), and the text dcrw_config_get() gives
 * back (the checkpoint metadata's) */
START_TEST(test_field_spellings) {
    dcrw_config c = preset(DCRW_PRESET_DRAW);
    static const struct {
        const char *name, *value, *text;
    } ok[] = {
        {"encoder", "cnn", "cnn"},
        {"encoder", "0", "lstm"},
        {"encoder", "1", "cnn"},
        {"encoder", "lstm", "lstm"},
        {"read_attention", "no", "false"},
        {"read_attention", "yes", "true"},
        {"read_attention", "0", "false"},
        {"read_attention", "1", "true"},
        {"read_attention", "false", "false"},
        {"write_attention", "true", "true"},
        {"height", "+12", "12"},
        {"height", "0012", "12"},
        {"height", "4096", "4096"},
        {"channels", "3", "3"},
        {"read_n", "0", "0"},
        {"conv1", "0", "0"},
        {"canvas_init", "0.5", "0.5"},
        {"canvas_init", "-2e-3", "-0.00200000009"},
        {"canvas_init", "-10000", "-10000"},
        {"canvas_init", "1e4", "10000"},
    };
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
        ck_assert_msg(dcrw_config_set(&c, ok[k].name, ok[k].value) == DCRW_OK, "%s = %s: %s",
                      ok[k].name, ok[k].value, dcrw_last_error());
        expect_text(&c, ok[k].name, ok[k].text);
    }
    ck_assert_int_eq(c.channels, 3);
    ck_assert_int_eq(c.height, 4096);
    ck_assert(c.canvas_init == 1e4f);
}
END_TEST

/* refused values leave cfg as it was, with the right code and a message
 * naming the field (and its range when out of it) */
START_TEST(test_field_refusals) {
    static const struct {
        const char *name, *value;
        int code;
        const char *says;
    } bad[] = {
        {"depth", "3", DCRW_ENOTFOUND, "canvas_init"}, /* the list of names */
        {"", "3", DCRW_ENOTFOUND, "fields:"},
        {"Height", "3", DCRW_ENOTFOUND, "height"},
        {"height", "", DCRW_EINVAL, "height"},
        {"height", " 12", DCRW_EINVAL, "not an integer"},
        {"height", "12 ", DCRW_EINVAL, "height"},
        {"height", "12x", DCRW_EINVAL, "height"},
        {"height", "1e2", DCRW_EINVAL, "height"},
        {"height", "0x10", DCRW_EINVAL, "height"},
        {"height", "-", DCRW_EINVAL, "height"},
        {"height", "2147483648", DCRW_EINVAL, "height"},
        {"height", "99999999999999999999", DCRW_EINVAL, "height"},
        {"height", "0", DCRW_ECONFIG, "[1, 4096]"},
        {"height", "4097", DCRW_ECONFIG, "height"},
        {"height", "-3", DCRW_ECONFIG, "height"},
        {"channels", "65", DCRW_ECONFIG, "[1, 64]"},
        {"read_n", "-1", DCRW_ECONFIG, "0 when unused"},
        {"read_n", "1025", DCRW_ECONFIG, "read_n"},
        {"glimpses", "0", DCRW_ECONFIG, "glimpses"},
        {"encoder", "rnn", DCRW_EINVAL, "lstm or cnn"},
        {"encoder", "2", DCRW_EINVAL, "encoder"},
        {"encoder", "CNN", DCRW_EINVAL, "encoder"},
        {"read_attention", "2", DCRW_EINVAL, "true or false"},
        {"read_attention", "on", DCRW_EINVAL, "read_attention"},
        {"canvas_init", "nan", DCRW_EINVAL, "finite"},
        {"canvas_init", "inf", DCRW_EINVAL, "canvas_init"},
        {"canvas_init", "1e39", DCRW_EINVAL, "canvas_init"},
        {"canvas_init", "0,5", DCRW_EINVAL, "canvas_init"},
        {"canvas_init", " 1", DCRW_EINVAL, "canvas_init"},
        {"canvas_init", "20000", DCRW_ECONFIG, "canvas_init"},
    };
    const dcrw_config before = preset(DCRW_PRESET_DCRW);
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        dcrw_config c = before;
        ck_assert_msg(dcrw_config_set(&c, bad[k].name, bad[k].value) == bad[k].code,
                      "%s = \"%s\" gave %s", bad[k].name, bad[k].value, dcrw_last_error());
        ck_assert_msg(strstr(dcrw_last_error(), bad[k].says), "\"%s\" lacks \"%s\"",
                      dcrw_last_error(), bad[k].says);
        ck_assert_int_eq(memcmp(&c, &before, sizeof c), 0);
    }
    dcrw_config c = before;
    char text[32];
    ck_assert_int_eq(dcrw_config_set(NULL, "height", "3"), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_config_set(&c, NULL, "3"), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_config_set(&c, "height", NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_config_get(&c, "height", NULL, 4), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_config_get(&c, "nope", text, sizeof text), DCRW_ENOTFOUND);
    /* a buffer too small is an error with "" in it, never a cut value */
    ck_assert_int_eq(dcrw_config_get(&c, "height", text, 2), DCRW_EINVAL);
    ck_assert_str_eq(text, "");
    ck_assert_int_eq(dcrw_config_get(&c, "height", text, 0), DCRW_EINVAL);
    /* a struct whose size was not set is refused, not written past */
    dcrw_config zero;
    memset(&zero, 0, sizeof zero);
    ck_assert_int_eq(dcrw_config_set(&zero, "height", "12"), DCRW_EINVAL);
    ck_assert_ptr_nonnull(strstr(dcrw_last_error(), "size"));
    ck_assert_int_eq(zero.height, 0);
    /* a caller whose struct ends before a field cannot reach it */
    c.size = offsetof(dcrw_config, canvas_init);
    ck_assert_int_eq(dcrw_config_set(&c, "canvas_init", "1"), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_config_set(&c, "write_attention", "0"), DCRW_OK);
}
END_TEST

/* equal: same architecture and every used field; unused sizes ignored */
START_TEST(test_config_equal) {
    for (int p = 0; p < 4; p++) {
        dcrw_config a = preset((dcrw_preset)p), b = a;
        ck_assert_int_eq(dcrw_config_equal(&a, &b), 1);
        /* a model's configuration (normalised) equals the preset's */
        dcrw_model *m;
        ck_assert_int_eq(dcrw_model_create(&m, &a, 1), DCRW_OK);
        dcrw_config mc = {.size = sizeof mc};
        ck_assert_int_eq(dcrw_model_config(m, &mc), DCRW_OK);
        ck_assert_int_eq(dcrw_config_equal(&a, &mc), 1);
        dcrw_model_destroy(m);
        for (int i = 0; i < dcrw_config_field_count(); i++) {
            const char *name;
            size_t off;
            dcrw_config_field(i, &name, NULL, &off, NULL, NULL);
            b = a;
            int32_t v;
            memcpy(&v, (char *)&b + off, 4);
            v ^= 1; /* flips a switch, changes a size or the float's last bit */
            memcpy((char *)&b + off, &v, 4);
            int used = !((!strcmp(name, "enc_size") && a.encoder == DCRW_ENCODER_CNN) ||
                         (!strcmp(name, "read_n") && !a.read_attention) ||
                         (!strcmp(name, "write_n") && !a.write_attention) ||
                         (!strncmp(name, "conv", 4) && a.encoder != DCRW_ENCODER_CNN));
            ck_assert_msg(dcrw_config_equal(&a, &b) == !used, "preset %d, %s changed", p, name);
            ck_assert_int_eq(dcrw_config_equal(&b, &a), !used);
        }
    }
    dcrw_config a = preset(DCRW_PRESET_DRAW), b = a;
    ck_assert_int_eq(dcrw_config_equal(NULL, &a), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_config_equal(&a, NULL), DCRW_EINVAL);
    b.size = 0;
    ck_assert_int_eq(dcrw_config_equal(&a, &b), DCRW_EINVAL);
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
    tcase_add_test(tc, test_field_enumeration);
    tcase_add_test(tc, test_field_round_trip);
    tcase_add_test(tc, test_field_spellings);
    tcase_add_test(tc, test_field_refusals);
    tcase_add_test(tc, test_config_equal);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
