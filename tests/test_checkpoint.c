/* The safetensors container and model checkpoints: round trips, atomic
 * saving, the golden files, a table of corrupted files each refused with
 * its own code, every truncation, and an independent Python validator. */
#define _GNU_SOURCE
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint.h"
#include "model.h"
#include "safetensors.h"
#include "testutil.h"

/* ---- helpers */

static dcrw_config small_config(dcrw_preset p) {
    dcrw_config c;
    ck_assert_int_eq(dcrw_config_preset(&c, p), DCRW_OK);
    c.glimpses = 3;
    c.dec_size = 8;
    c.z_size = 3;
    switch (p) {
    case DCRW_PRESET_DRAW:
        c.height = c.width = 12;
        c.enc_size = 7;
        c.read_n = 2;
        c.write_n = 3;
        break;
    case DCRW_PRESET_DRAW_NOATTN:
        c.height = c.width = 6;
        c.enc_size = 5;
        break;
    case DCRW_PRESET_DCRW:
        c.height = c.width = 12;
        c.read_n = 5;
        c.write_n = 3;
        c.conv1 = 3;
        c.conv2 = 4;
        break;
    default:
        c.height = c.width = 8;
        c.write_n = 3;
        c.conv1 = 3;
        c.conv2 = 4;
        break;
    }
    return c;
}

static char *join(const char *dir, const char *name) {
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static void spit(const char *path, const void *buf, size_t n) {
    FILE *fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    if (n) ck_assert_uint_eq(fwrite(buf, 1, n, fp), n);
    ck_assert_int_eq(fclose(fp), 0);
}

static void assert_same_model(const dcrw_model *a, const dcrw_model *b) {
    dcrw_config ca = {.size = sizeof ca}, cb = {.size = sizeof cb};
    ck_assert_int_eq(dcrw_model_config(a, &ca), DCRW_OK);
    ck_assert_int_eq(dcrw_model_config(b, &cb), DCRW_OK);
    ck_assert_int_eq(memcmp(&ca, &cb, sizeof ca), 0);
    ck_assert_uint_eq(dcrw_model_param_count(a), dcrw_model_param_count(b));
    size_t na, nb;
    const float *pa = dcrw_model_params(a, &na), *pb = dcrw_model_params(b, &nb);
    ck_assert_uint_eq(na, nb);
    ck_assert_int_eq(memcmp(pa, pb, na * sizeof(float)), 0);
}

/* save, load, compare */
static void roundtrip(const dcrw_config *c, uint64_t seed) {
    char *dir = tu_tmpdir(), *path = join(dir, "m.safetensors");
    dcrw_model *m, *back = (dcrw_model *)1;
    ck_assert_int_eq(dcrw_model_create(&m, c, seed), DCRW_OK);
    ck_assert_int_eq(dcrw_model_save(m, path), DCRW_OK);
    ck_assert_int_eq(dcrw_model_load(&back, path), DCRW_OK);
    assert_same_model(m, back);
    /* the saved file is valid safetensors with the header padded */
    size_t size;
    uint8_t *buf = tu_read_file(path, &size);
    uint64_t n = 0;
    for (int k = 7; k >= 0; k--) n = n << 8 | buf[k];
    ck_assert_uint_eq((8 + n) % 8, 0);
    ck_assert_uint_eq(size, 8 + n + 4 * dcrw_model_param_floats(m));
    free(buf);
    dcrw_model_destroy(m);
    dcrw_model_destroy(back);
    free(path);
    tu_rmdir(dir);
}

/* ---- round trips */

START_TEST(test_roundtrip_presets) {
    for (int p = 0; p < 4; p++) {
        dcrw_config c = small_config((dcrw_preset)p);
        roundtrip(&c, 100 + (uint64_t)p);
    }
}
END_TEST

START_TEST(test_roundtrip_full_size) {
    dcrw_config c;
    ck_assert_int_eq(dcrw_config_preset(&c, DCRW_PRESET_DCRW), DCRW_OK);
    roundtrip(&c, 5);
}
END_TEST

START_TEST(test_roundtrip_canvas_nonsquare) {
    dcrw_config c = small_config(DCRW_PRESET_DRAW);
    c.channels = 3;
    c.height = 10;
    c.width = 7;
    c.canvas_init = -3.25f;
    roundtrip(&c, 9);
    c = small_config(DCRW_PRESET_DCRW_NOREAD);
    c.channels = 3;
    c.height = 9;
    c.width = 5;
    c.canvas_init = 0.1f; /* not a short decimal: needs all 9 digits */
    roundtrip(&c, 10);
    /* custom: LSTM encoder with only write attention */
    c = small_config(DCRW_PRESET_DRAW);
    c.read_attention = 0;
    c.canvas_init = 1e-7f;
    roundtrip(&c, 11);
}
END_TEST

/* the metadata a save writes, typed in from MODEL.md §8 */
START_TEST(test_saved_metadata) {
    static const struct {
        dcrw_preset p;
        int ra;
        const char *kv[17][2];
    } cases[] = {
        {DCRW_PRESET_DCRW,
         1,
         {{"dcrw.format", "1"},
          {"dcrw.preset", "dcrw"},
          {"dcrw.channels", "1"},
          {"dcrw.height", "12"},
          {"dcrw.width", "12"},
          {"dcrw.glimpses", "3"},
          {"dcrw.enc_size", "0"},
          {"dcrw.dec_size", "8"},
          {"dcrw.z_size", "3"},
          {"dcrw.read_n", "5"},
          {"dcrw.write_n", "3"},
          {"dcrw.conv1", "3"},
          {"dcrw.conv2", "4"},
          {"dcrw.encoder", "cnn"},
          {"dcrw.read_attention", "true"},
          {"dcrw.write_attention", "true"},
          {"dcrw.canvas_init", NULL}}},
        {DCRW_PRESET_DRAW,
         0,
         {{"dcrw.format", "1"},
          {"dcrw.preset", "custom"},
          {"dcrw.channels", "1"},
          {"dcrw.height", "12"},
          {"dcrw.width", "12"},
          {"dcrw.glimpses", "3"},
          {"dcrw.enc_size", "7"},
          {"dcrw.dec_size", "8"},
          {"dcrw.z_size", "3"},
          {"dcrw.read_n", "0"},
          {"dcrw.write_n", "3"},
          {"dcrw.conv1", "0"},
          {"dcrw.conv2", "0"},
          {"dcrw.encoder", "lstm"},
          {"dcrw.read_attention", "false"},
          {"dcrw.write_attention", "true"},
          {"dcrw.canvas_init", "-3.25"}}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dcrw_config c = small_config(cases[i].p);
        c.read_attention = cases[i].ra;
        if (!cases[i].ra) c.canvas_init = -3.25f;
        char *dir = tu_tmpdir(), *path = join(dir, "m.safetensors");
        dcrw_model *m;
        ck_assert_int_eq(dcrw_model_create(&m, &c, 1), DCRW_OK);
        ck_assert_int_eq(dcrw_model_save(m, path), DCRW_OK);
        st_file f;
        ck_assert_int_eq(dcrw_st_read(&f, path), DCRW_OK);
        for (int k = 0; k < 17; k++) {
            const char *v = dcrw_st_meta(&f, cases[i].kv[k][0]);
            if (!cases[i].kv[k][1]) {
                ck_assert_ptr_null(v);
            } else {
                ck_assert_msg(v && !strcmp(v, cases[i].kv[k][1]), "%s = %s, expected %s",
                              cases[i].kv[k][0], v ? v : "(absent)", cases[i].kv[k][1]);
            }
        }
        ck_assert_int_eq(f.nmeta, cases[i].kv[16][1] ? 17 : 16);
        /* tensors in MODEL.md §7 order, each holding the model's bytes */
        ck_assert_int_eq(f.ntensors, (int)dcrw_model_param_count(m));
        uint64_t pos = 0;
        for (int k = 0; k < f.ntensors; k++) {
            const char *name;
            float *data;
            dcrw_model_param(m, (size_t)k, &name, NULL, NULL, &data);
            ck_assert_str_eq(f.tensors[k].name, name);
            ck_assert_str_eq(f.tensors[k].dtype_name, "F32");
            ck_assert_uint_eq(f.tensors[k].begin, pos);
            pos = f.tensors[k].end;
            ck_assert_int_eq(memcmp(st_data(&f, &f.tensors[k]), data,
                                    (size_t)(f.tensors[k].end - f.tensors[k].begin)),
                             0);
        }
        dcrw_st_free(&f);
        dcrw_model_destroy(m);
        free(path);
        tu_rmdir(dir);
    }
}
END_TEST

/* Every field of the configuration is in a checkpoint's metadata under
 * dcrw.NAME, as the text dcrw_config_get() gives, and comes back equal;
 * the fields added after format 1 only when they are not 0 (so the files
 * of models that do not use them stay as they were). */
START_TEST(test_metadata_every_field) {
    for (int p = 0; p < 4; p++) {
        dcrw_config c = small_config((dcrw_preset)p);
        c.canvas_init = -0.1f;
        char *dir = tu_tmpdir(), *path = join(dir, "m.safetensors");
        dcrw_model *m, *back;
        ck_assert_int_eq(dcrw_model_create(&m, &c, 1), DCRW_OK);
        dcrw_config mc = {.size = sizeof mc};
        ck_assert_int_eq(dcrw_model_config(m, &mc), DCRW_OK);
        ck_assert_int_eq(dcrw_model_save(m, path), DCRW_OK);
        st_file f;
        ck_assert_int_eq(dcrw_st_read(&f, path), DCRW_OK);
        for (int i = 0; i < dcrw_config_field_count(); i++) {
            const char *name;
            dcrw_config_field(i, &name, NULL, NULL, NULL, NULL);
            char key[64], text[32];
            snprintf(key, sizeof key, "dcrw.%s", name);
            ck_assert_int_eq(dcrw_config_get(&mc, name, text, sizeof text), DCRW_OK);
            const char *v = dcrw_st_meta(&f, key);
            const dcrw_field *row = dcrw_config_find_field(name);
            if (row->optional && dcrw_config_number(&mc, row) == 0) {
                ck_assert_msg(!v, "%s = %s is written though 0", key, v);
                continue;
            }
            ck_assert_msg(v && !strcmp(v, text), "%s = %s, expected %s", key, v ? v : "(absent)",
                          text);
        }
        dcrw_st_free(&f);
        ck_assert_int_eq(dcrw_model_load(&back, path), DCRW_OK);
        dcrw_config bc = {.size = sizeof bc};
        ck_assert_int_eq(dcrw_model_config(back, &bc), DCRW_OK);
        ck_assert_int_eq(memcmp(&bc, &mc, sizeof bc), 0);
        ck_assert_int_eq(dcrw_config_equal(&bc, &c), 1);
        dcrw_model_destroy(back);
        dcrw_model_destroy(m);
        free(path);
        tu_rmdir(dir);
    }
}
END_TEST

/* Resume a trainer of base's architecture, with field `name` set to
 * `value` (unless name is NULL), from path: its status, and the model's
 * parameters untouched on failure. */
static int resume_changed(const char *path, const dcrw_config *base, const char *name,
                          const char *value) {
    dcrw_config c = *base;
    /* the sizes base does not use filled in: they must not count */
    if (c.encoder == DCRW_ENCODER_CNN)
        c.enc_size = 5;
    else
        c.conv1 = 3, c.conv2 = 4;
    if (name) ck_assert_int_eq(dcrw_config_set(&c, name, value), DCRW_OK);
    dcrw_model *m;
    ck_assert_msg(dcrw_model_create(&m, &c, 9) == DCRW_OK, "%s", dcrw_last_error());
    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    tc.threads = 1;
    dcrw_trainer *t;
    ck_assert_int_eq(dcrw_trainer_create(&t, m, &tc), DCRW_OK);
    size_t n;
    float *p = dcrw_model_params(m, &n), *before = malloc(n * sizeof *before);
    memcpy(before, p, n * sizeof *before);
    int rc = dcrw_trainer_resume(t, path);
    if (rc) ck_assert_int_eq(memcmp(before, p, n * sizeof *before), 0);
    free(before);
    dcrw_trainer_destroy(t);
    dcrw_model_destroy(m);
    return rc;
}

/* A trainer refuses a checkpoint that differs from its model in any one
 * field the architecture uses (DCRW_ESHAPE: also glimpses and canvas_init,
 * which change no tensor's shape), and accepts one that differs only in
 * sizes neither architecture uses. */
START_TEST(test_resume_refuses_changed_field) {
    static const dcrw_preset bases[] = {DCRW_PRESET_DRAW, DCRW_PRESET_DCRW};
    for (size_t b = 0; b < sizeof bases / sizeof bases[0]; b++) {
        dcrw_config base = small_config(bases[b]);
        base.read_n = 5; /* a window both encoders take */
        char *dir = tu_tmpdir(), *path = join(dir, "t.safetensors");
        dcrw_model *m;
        ck_assert_int_eq(dcrw_model_create(&m, &base, 4), DCRW_OK);
        dcrw_train_config tc;
        dcrw_train_config_default(&tc);
        dcrw_trainer *t;
        ck_assert_int_eq(dcrw_trainer_create(&t, m, &tc), DCRW_OK);
        ck_assert_int_eq(dcrw_trainer_save(t, path), DCRW_OK);
        dcrw_trainer_destroy(t);
        dcrw_model_destroy(m);
        ck_assert_int_eq(resume_changed(path, &base, NULL, NULL), DCRW_OK);
        for (int i = 0; i < dcrw_config_field_count(); i++) {
            const char *name;
            int type;
            dcrw_config_field(i, &name, &type, NULL, NULL, NULL);
            /* classify = 1 alone is no valid configuration (it takes other
             * fields); a classifier's file is another model's altogether */
            if (!strcmp(name, "classify")) continue;
            char text[32], value[32];
            dcrw_config_get(&base, name, text, sizeof text);
            if (type == DCRW_FIELD_FLOAT)
                snprintf(value, sizeof value, "%s", "0.25");
            else if (type == DCRW_FIELD_INT)
                snprintf(value, sizeof value, "%d", atoi(text) > 0 ? atoi(text) + 1 : 6);
            else
                snprintf(value, sizeof value, "%s", strchr("tc", text[0]) ? "0" : "1");
            const int unused = (!strcmp(name, "enc_size") && base.encoder == DCRW_ENCODER_CNN) ||
                               (!strncmp(name, "conv", 4) && base.encoder != DCRW_ENCODER_CNN);
            const int rc = resume_changed(path, &base, name, value);
            ck_assert_msg(rc == (unused ? DCRW_OK : DCRW_ESHAPE), "%s %s = %s: %d %s",
                          dcrw_preset_name(bases[b]), name, value, rc, dcrw_last_error());
        }
        free(path);
        tu_rmdir(dir);
    }
}
END_TEST

/* ---- atomic saving */

START_TEST(test_save_atomic) {
    char *dir = tu_tmpdir(), *path = join(dir, "m.safetensors");
    dcrw_config c = small_config(DCRW_PRESET_DRAW);
    dcrw_model *a, *b, *back;
    ck_assert_int_eq(dcrw_model_create(&a, &c, 1), DCRW_OK);
    ck_assert_int_eq(dcrw_model_create(&b, &c, 2), DCRW_OK);
    ck_assert_int_eq(dcrw_model_save(a, path), DCRW_OK);
    ck_assert_int_eq(tu_count_entries(dir), 1);
    /* replace an existing file */
    ck_assert_int_eq(dcrw_model_save(b, path), DCRW_OK);
    ck_assert_int_eq(tu_count_entries(dir), 1);
    ck_assert_int_eq(dcrw_model_load(&back, path), DCRW_OK);
    assert_same_model(b, back);
    dcrw_model_destroy(back);

    /* a folder that does not exist: EIO, nothing created anywhere */
    char *sub = join(dir, "nope"), *bad = join(sub, "m.safetensors");
    ck_assert_int_eq(dcrw_model_save(a, bad), DCRW_EIO);
    ck_assert_str_ne(dcrw_last_error(), "");
    struct stat st;
    ck_assert_int_ne(stat(sub, &st), 0);
    ck_assert_int_eq(tu_count_entries(dir), 1);
    /* a path that is a folder: the rename fails, the temp file is removed */
    char *asdir = join(dir, "adir");
    ck_assert_int_eq(mkdir(asdir, 0700), 0);
    ck_assert_int_eq(dcrw_model_save(a, asdir), DCRW_EIO);
    ck_assert_int_eq(tu_count_entries(dir), 2);
    ck_assert_int_eq(rmdir(asdir), 0);
    /* the earlier file is intact */
    ck_assert_int_eq(dcrw_model_load(&back, path), DCRW_OK);
    assert_same_model(b, back);
    dcrw_model_destroy(back);

    ck_assert_int_eq(dcrw_model_save(NULL, path), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_model_save(a, NULL), DCRW_EINVAL);
    dcrw_model *out = (dcrw_model *)1;
    ck_assert_int_eq(dcrw_model_load(&out, NULL), DCRW_EINVAL);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(dcrw_model_load(NULL, path), DCRW_EINVAL);
    out = (dcrw_model *)1;
    char *missing = join(dir, "missing.safetensors");
    ck_assert_int_eq(dcrw_model_load(&out, missing), DCRW_EIO);
    ck_assert_ptr_null(out);
    ck_assert_str_ne(dcrw_last_error(), "");
    out = (dcrw_model *)1;
    ck_assert_int_eq(dcrw_model_load(&out, dir), DCRW_EIO);
    ck_assert_ptr_null(out);
    dcrw_model_destroy(a);
    dcrw_model_destroy(b);
    free(missing);
    free(asdir);
    free(sub);
    free(bad);
    free(path);
    tu_rmdir(dir);
}
END_TEST

/* dcrw_st_write_atomic escapes names and values, refuses duplicates */
START_TEST(test_writer_escapes) {
    char *dir = tu_tmpdir(), *path = join(dir, "x.safetensors");
    const float a[3] = {1.0f, -2.0f, 0.5f}, b[1] = {7.0f};
    st_out t[3] = {
        {"we\"ird\\name\x01", 1, {3}, a}, {"scalar", 0, {0}, b}, {"empty", 2, {0, 5}, NULL}};
    const char *keys[2] = {"k\"ey", "tab"}, *vals[2] = {"v\\al\n", "a\tb"};
    ck_assert_int_eq(dcrw_st_write_atomic(path, t, 3, keys, vals, 2), DCRW_OK);
    st_file f;
    ck_assert_int_eq(dcrw_st_read(&f, path), DCRW_OK);
    ck_assert_int_eq(f.ntensors, 3);
    const st_tensor *w = dcrw_st_find(&f, "we\"ird\\name\x01");
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(w->ndim, 1);
    ck_assert_int_eq(w->shape[0], 3);
    ck_assert_int_eq(memcmp(st_data(&f, w), a, sizeof a), 0);
    const st_tensor *s = dcrw_st_find(&f, "scalar");
    ck_assert_int_eq(s->ndim, 0);
    ck_assert_uint_eq(s->end - s->begin, 4);
    ck_assert_uint_eq(dcrw_st_find(&f, "empty")->end, dcrw_st_find(&f, "empty")->begin);
    ck_assert_str_eq(dcrw_st_meta(&f, "k\"ey"), "v\\al\n");
    ck_assert_str_eq(dcrw_st_meta(&f, "tab"), "a\tb");
    dcrw_st_free(&f);
    /* duplicates and bad shapes are refused before anything is written */
    t[1].name = t[0].name;
    ck_assert_int_eq(dcrw_st_write_atomic(path, t, 2, keys, vals, 2), DCRW_EINVAL);
    t[1].name = "scalar";
    t[1].ndim = 1;
    t[1].shape[0] = -1;
    ck_assert_int_eq(dcrw_st_write_atomic(path, t, 2, keys, vals, 2), DCRW_EINVAL);
    keys[1] = keys[0];
    ck_assert_int_eq(dcrw_st_write_atomic(path, t, 1, keys, vals, 2), DCRW_EINVAL);
    ck_assert_int_eq(tu_count_entries(dir), 1);
    free(path);
    tu_rmdir(dir);
}
END_TEST

/* ---- what a save refuses, and how it leaves the file system */

static dcrw_trainer *small_trainer(dcrw_model **m, int steps) {
    dcrw_config c = small_config(DCRW_PRESET_DRAW_NOATTN);
    ck_assert_int_eq(dcrw_model_create(m, &c, 5), DCRW_OK);
    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    tc.threads = 1;
    dcrw_trainer *t;
    ck_assert_int_eq(dcrw_trainer_create(&t, *m, &tc), DCRW_OK);
    const size_t P = dcrw_model_input_size(*m);
    float *x = malloc(2 * P * sizeof *x);
    tu_fill_uniform(x, 2 * P, 0.0f, 1.0f, 9);
    for (int s = 0; s < steps; s++)
        ck_assert_int_eq(dcrw_trainer_step(t, 2, x, NULL, NULL), DCRW_OK);
    free(x);
    return t;
}

/* Parameters made non-finite by the caller: neither save writes a file
 * the loader would refuse; the good file stays byte for byte. */
START_TEST(test_save_refuses_nonfinite) {
    char *dir = tu_tmpdir(), *mpath = join(dir, "m.safetensors"),
         *tpath = join(dir, "t.safetensors");
    dcrw_model *m;
    dcrw_trainer *t = small_trainer(&m, 2);
    ck_assert_int_eq(dcrw_model_save(m, mpath), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_save(t, tpath), DCRW_OK);
    size_t mlen, tlen;
    unsigned char *mold = tu_read_file(mpath, &mlen), *told = tu_read_file(tpath, &tlen);
    float *w;
    size_t n;
    ck_assert_int_eq(dcrw_model_find_param(m, "write.bias", &w, &n), DCRW_OK);
    const float bad[3] = {NAN, INFINITY, -INFINITY};
    for (int k = 0; k < 3; k++) {
        const float keep = w[1];
        w[1] = bad[k];
        ck_assert_int_eq(dcrw_model_save(m, mpath), DCRW_ENUMERIC);
        ck_assert_ptr_nonnull(strstr(dcrw_last_error(), "write.bias[1]"));
        ck_assert_int_eq(dcrw_trainer_save(t, tpath), DCRW_ENUMERIC);
        w[1] = keep;
        size_t len;
        unsigned char *now = tu_read_file(mpath, &len);
        ck_assert(len == mlen && memcmp(now, mold, len) == 0);
        free(now);
        now = tu_read_file(tpath, &len);
        ck_assert(len == tlen && memcmp(now, told, len) == 0);
        free(now);
        ck_assert_int_eq(tu_count_entries(dir), 2); /* no temporary file */
    }
    /* and with the parameter put back, both save again */
    ck_assert_int_eq(dcrw_model_save(m, mpath), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_save(t, tpath), DCRW_OK);
    free(mold);
    free(told);
    dcrw_trainer_destroy(t);
    dcrw_model_destroy(m);
    free(mpath);
    free(tpath);
    tu_rmdir(dir);
}
END_TEST

static mode_t mode_of(const char *path) {
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_mode & 07777;
}

/* A new checkpoint honours the umask, as any file the user creates; one
 * that replaces a file keeps that file's mode (a private 0600 checkpoint
 * stays private). */
START_TEST(test_save_mode) {
    char *dir = tu_tmpdir(), *path = join(dir, "m.safetensors");
    dcrw_config c = small_config(DCRW_PRESET_DRAW_NOATTN);
    dcrw_model *m;
    ck_assert_int_eq(dcrw_model_create(&m, &c, 1), DCRW_OK);
    const mode_t masks[] = {022, 027, 077, 002};
    const mode_t old = umask(0);
    for (size_t k = 0; k < sizeof masks / sizeof masks[0]; k++) {
        umask(masks[k]);
        unlink(path);
        ck_assert_int_eq(dcrw_model_save(m, path), DCRW_OK);
        ck_assert_msg(mode_of(path) == (0666 & ~masks[k]), "umask %03o: mode %03o", masks[k],
                      mode_of(path));
    }
    /* an existing file's mode wins over the umask, both ways */
    umask(022);
    const mode_t keep[] = {0600, 0640, 0664, 0444};
    for (size_t k = 0; k < sizeof keep / sizeof keep[0]; k++) {
        ck_assert_int_eq(chmod(path, keep[k]), 0);
        ck_assert_int_eq(dcrw_model_save(m, path), DCRW_OK);
        ck_assert_msg(mode_of(path) == keep[k], "replacing a %03o file gave %03o", keep[k],
                      mode_of(path));
    }
    umask(old);
    dcrw_model_destroy(m);
    free(path);
    tu_rmdir(dir);
}
END_TEST

/* A file name of NAME_MAX bytes is savable: the temporary file's name
 * does not grow with it. */
START_TEST(test_save_long_name) {
    char *dir = tu_tmpdir();
    long name_max = pathconf(dir, _PC_NAME_MAX);
    ck_assert_int_gt(name_max, 16);
    if (name_max > 1000) name_max = 1000;
    dcrw_config c = small_config(DCRW_PRESET_DRAW_NOATTN);
    dcrw_model *m, *back;
    ck_assert_int_eq(dcrw_model_create(&m, &c, 1), DCRW_OK);
    for (long len = name_max - 11; len <= name_max; len++) {
        char name[1024];
        memset(name, 'n', (size_t)len);
        name[len] = '\0';
        char *path = join(dir, name);
        ck_assert_msg(dcrw_model_save(m, path) == DCRW_OK, "a %ld-byte name: %s", len,
                      dcrw_last_error());
        ck_assert_int_eq(dcrw_model_load(&back, path), DCRW_OK);
        assert_same_model(m, back);
        dcrw_model_destroy(back);
        ck_assert_int_eq(unlink(path), 0);
        free(path);
    }
    ck_assert_int_eq(tu_count_entries(dir), 0);
    dcrw_model_destroy(m);
    tu_rmdir(dir);
}
END_TEST

/* A valid checkpoint followed by a 1 TiB tail (sparse, so it costs no
 * disk): the reader checks the header against the file's size and refuses
 * it as trailing data, without reading or allocating for the tail (an
 * attempt would fail with DCRW_ENOMEM, or abort under ASan). */
START_TEST(test_huge_tail_refused_early) {
    char *dir = tu_tmpdir(), *path = join(dir, "m.safetensors");
    dcrw_config c = small_config(DCRW_PRESET_DRAW_NOATTN);
    dcrw_model *m, *out = NULL;
    ck_assert_int_eq(dcrw_model_create(&m, &c, 1), DCRW_OK);
    ck_assert_int_eq(dcrw_model_save(m, path), DCRW_OK);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_msg(truncate(path, st.st_size + ((off_t)1 << 40)) == 0,
                  "this file system cannot hold a sparse 1 TiB file");
    ck_assert_int_eq(dcrw_model_load(&out, path), DCRW_EFORMAT);
    ck_assert_ptr_nonnull(strstr(dcrw_last_error(), "trailing"));
    ck_assert_ptr_null(out);
    dcrw_trainer *t;
    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    ck_assert_int_eq(dcrw_trainer_create(&t, m, &tc), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_resume(t, path), DCRW_EFORMAT);
    dcrw_trainer_destroy(t);
    dcrw_model_destroy(m);
    free(path);
    tu_rmdir(dir);
}
END_TEST

/* Special files are refused at once, not read (a FIFO without a writer
 * would block a plain open forever). */
START_TEST(test_special_files) {
    /* a hang fails the test (by the alarm's default action, not the
     * handler inherited from Check's runner) */
    signal(SIGALRM, SIG_DFL);
    alarm(20);
    char *dir = tu_tmpdir(), *fifo = join(dir, "fifo");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    dcrw_model *m, *out = (dcrw_model *)1;
    dcrw_config c = small_config(DCRW_PRESET_DRAW_NOATTN);
    ck_assert_int_eq(dcrw_model_create(&m, &c, 1), DCRW_OK);
    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    dcrw_trainer *t;
    ck_assert_int_eq(dcrw_trainer_create(&t, m, &tc), DCRW_OK);
    const struct {
        const char *path, *kind;
    } cases[] = {{fifo, "FIFO"}, {dir, "folder"}, {"/dev/null", "device"}, {"/dev/zero", "device"}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        ck_assert_int_eq(dcrw_model_load(&out, cases[k].path), DCRW_EIO);
        ck_assert_ptr_null(out);
        ck_assert_msg(strstr(dcrw_last_error(), cases[k].kind), "%s: \"%s\"", cases[k].path,
                      dcrw_last_error());
        ck_assert_int_eq(dcrw_trainer_resume(t, cases[k].path), DCRW_EIO);
        ck_assert_ptr_nonnull(strstr(dcrw_last_error(), "not a regular file"));
    }
    alarm(0);
    dcrw_trainer_destroy(t);
    dcrw_model_destroy(m);
    free(fifo);
    tu_rmdir(dir);
}
END_TEST

/* ---- what a resume refuses */

/* The bytes of path with tensor `name`'s element i set to v. */
static void poke_tensor(const char *path, const char *name, size_t i, float v) {
    size_t n;
    unsigned char *b = tu_read_file(path, &n);
    st_file f;
    ck_assert_int_eq(dcrw_st_parse(&f, b, n), DCRW_OK);
    const st_tensor *t = dcrw_st_find(&f, name);
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_lt(4 * i, t->end - t->begin);
    memcpy(b + f.data_start + t->begin + 4 * i, &v, 4); /* little-endian host */
    dcrw_st_free(&f);
    spit(path, b, n);
    free(b);
}

/* A negative Adam second moment cannot come from training (it averages
 * squares): resume refuses it by name, and leaves the trainer as it was. */
START_TEST(test_resume_negative_moment) {
    char *dir = tu_tmpdir(), *path = join(dir, "t.safetensors");
    dcrw_model *m, *m2;
    dcrw_trainer *t = small_trainer(&m, 2), *t2 = small_trainer(&m2, 1);
    ck_assert_int_eq(dcrw_trainer_save(t, path), DCRW_OK);
    size_t n;
    float *p2 = dcrw_model_params(m2, &n), *snap = malloc(n * sizeof *snap);
    memcpy(snap, p2, n * sizeof *snap);
    const float bad[] = {-1e-12f, -1.0f, -INFINITY};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        poke_tensor(path, "adam.v.write.bias", 2, bad[k]);
        ck_assert_int_eq(dcrw_trainer_resume(t2, path), DCRW_ENUMERIC);
        ck_assert_msg(strstr(dcrw_last_error(), "adam.v.write.bias"), "%s", dcrw_last_error());
        ck_assert_uint_eq(dcrw_trainer_step_count(t2), 1);
        ck_assert_int_eq(memcmp(p2, snap, n * sizeof *snap), 0);
    }
    /* a first moment may be negative; a zero second moment is fine too */
    poke_tensor(path, "adam.v.write.bias", 2, 0.0f);
    poke_tensor(path, "adam.m.write.bias", 2, -3.0f);
    ck_assert_int_eq(dcrw_trainer_resume(t2, path), DCRW_OK);
    ck_assert_uint_eq(dcrw_trainer_step_count(t2), 2);
    free(snap);
    dcrw_trainer_destroy(t);
    dcrw_trainer_destroy(t2);
    dcrw_model_destroy(m);
    dcrw_model_destroy(m2);
    free(path);
    tu_rmdir(dir);
}
END_TEST

/* dcrw.step is a count in [0, 2^63 − 1], read exactly or refused, never
 * wrapped or saturated. */
START_TEST(test_resume_step_range) {
    char *dir = tu_tmpdir(), *path = join(dir, "t.safetensors");
    dcrw_model *m;
    dcrw_trainer *t = small_trainer(&m, 1);
    const struct {
        const char *step;
        int code;
        uint64_t want;
    } cases[] = {
        {"0", DCRW_OK, 0},
        {"000017", DCRW_OK, 17},
        {"9223372036854775807", DCRW_OK, INT64_MAX},
        {"9223372036854775808", DCRW_EFORMAT, 0},
        {"18446744073709551615", DCRW_EFORMAT, 0},
        {"18446744073709551616", DCRW_EFORMAT, 0},
        {"99999999999999999999999999999999999999999", DCRW_EFORMAT, 0},
        {"-1", DCRW_EFORMAT, 0},
        {"+1", DCRW_EFORMAT, 0},
        {" 1", DCRW_EFORMAT, 0},
        {"1 ", DCRW_EFORMAT, 0},
        {"", DCRW_EFORMAT, 0},
        {"1e3", DCRW_EFORMAT, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const char *keys[1] = {"dcrw.step"}, *vals[1] = {cases[k].step};
        ck_assert_int_eq(dcrw_ckpt_write(path, m, NULL, 0, keys, vals, 1), DCRW_OK);
        int rc = dcrw_trainer_resume(t, path);
        ck_assert_msg(rc == cases[k].code, "dcrw.step \"%s\": %d (%s)", cases[k].step, rc,
                      dcrw_last_error());
        if (rc == DCRW_OK) {
            ck_assert_uint_eq(dcrw_trainer_step_count(t), cases[k].want);
        } else {
            ck_assert_ptr_nonnull(strstr(dcrw_last_error(), "dcrw.step"));
        }
    }
    dcrw_trainer_destroy(t);
    dcrw_model_destroy(m);
    free(path);
    tu_rmdir(dir);
}
END_TEST

/* ---- the golden files */

static const char *const golden_files[] = {
    "golden/golden-draw-small.safetensors",        "golden/golden-draw-noattn-small.safetensors",
    "golden/golden-dcrw-small.safetensors",        "golden/golden-dcrw-noread-small.safetensors",
    "golden/golden-draw-canvas-small.safetensors",
};

static int meta_as_int(const st_file *f, const char *key) {
    const char *v = dcrw_st_meta(f, key);
    ck_assert_ptr_nonnull(v);
    char *end;
    long x = strtol(v, &end, 10);
    ck_assert(*end == '\0');
    return (int)x;
}

START_TEST(test_golden) {
    const char *rel = golden_files[_i];
    char path[4096];
    snprintf(path, sizeof path, "%s", tu_path(rel));
    dcrw_model *m;
    ck_assert_msg(dcrw_model_load(&m, path) == DCRW_OK, "%s: %s", rel, dcrw_last_error());
    st_file f;
    ck_assert_int_eq(dcrw_st_read(&f, path), DCRW_OK);
    dcrw_config c = {.size = sizeof c};
    ck_assert_int_eq(dcrw_model_config(m, &c), DCRW_OK);
    ck_assert_int_eq(c.channels, meta_as_int(&f, "dcrw.channels"));
    ck_assert_int_eq(c.height, meta_as_int(&f, "dcrw.height"));
    ck_assert_int_eq(c.width, meta_as_int(&f, "dcrw.width"));
    ck_assert_int_eq(c.glimpses, meta_as_int(&f, "dcrw.glimpses"));
    ck_assert_int_eq(c.enc_size, meta_as_int(&f, "dcrw.enc_size"));
    ck_assert_int_eq(c.dec_size, meta_as_int(&f, "dcrw.dec_size"));
    ck_assert_int_eq(c.z_size, meta_as_int(&f, "dcrw.z_size"));
    ck_assert_int_eq(c.read_n, meta_as_int(&f, "dcrw.read_n"));
    ck_assert_int_eq(c.write_n, meta_as_int(&f, "dcrw.write_n"));
    ck_assert_int_eq(c.conv1, meta_as_int(&f, "dcrw.conv1"));
    ck_assert_int_eq(c.conv2, meta_as_int(&f, "dcrw.conv2"));
    ck_assert_int_eq(c.encoder == DCRW_ENCODER_CNN,
                     !strcmp(dcrw_st_meta(&f, "dcrw.encoder"), "cnn"));
    ck_assert_int_eq(c.read_attention, !strcmp(dcrw_st_meta(&f, "dcrw.read_attention"), "true"));
    ck_assert_int_eq(c.write_attention, !strcmp(dcrw_st_meta(&f, "dcrw.write_attention"), "true"));
    const char *kappa = dcrw_st_meta(&f, "dcrw.canvas_init");
    ck_assert(c.canvas_init == (kappa ? strtof(kappa, NULL) : 0.0f));
    if (strstr(rel, "canvas")) ck_assert(c.canvas_init == -3.0f);
    /* every model tensor holds exactly the file's bytes (little-endian host) */
    for (size_t i = 0; i < dcrw_model_param_count(m); i++) {
        const char *name;
        int ndim;
        const int64_t *shape;
        float *data;
        dcrw_model_param(m, i, &name, &ndim, &shape, &data);
        const st_tensor *t = dcrw_st_find(&f, name);
        ck_assert_ptr_nonnull(t);
        ck_assert_int_eq(t->ndim, ndim);
        size_t count = 1;
        for (int k = 0; k < ndim; k++) {
            ck_assert_int_eq(t->shape[k], shape[k]);
            count *= (size_t)shape[k];
        }
        ck_assert_uint_eq(t->end - t->begin, 4 * count);
        ck_assert_int_eq(memcmp(st_data(&f, t), data, 4 * count), 0);
        size_t n;
        float *ref = tu_st_floats(&f, name, &n);
        ck_assert_uint_eq(n, count);
        ck_assert(ref[0] == data[0] && ref[count - 1] == data[count - 1]);
        free(ref);
    }
    dcrw_st_free(&f);
    dcrw_model_destroy(m);
}
END_TEST

/* ---- a file builder independent of the library's writer */

#define FB_MAX 40
typedef struct fb_entry {
    char name[64], dtype[16], shape[64], offs[64]; /* offs: text override */
    size_t nbytes;
    uint64_t begin, end;
    const void *data; /* NULL: zeros */
} fb_entry;

typedef struct fb {
    fb_entry e[FB_MAX];
    int n;
    char mk[32][48], mv[32][48];
    int nm;
    const char *meta_raw;  /* JSON text for __metadata__ instead of the pairs */
    const char *suffix;    /* text after the JSON object, inside the header */
    const char *from, *to; /* replace the first `from` in the header text */
    int64_t size_delta;    /* bytes cut (<0) from or zeros added (>0) to the file */
    int hlen_set;          /* write hlen instead of the header's length */
    uint64_t hlen;
} fb;

static void fb_meta(fb *b, const char *k, const char *v) {
    for (int i = 0; i < b->nm; i++) {
        if (!strcmp(b->mk[i], k)) {
            if (v)
                snprintf(b->mv[i], sizeof b->mv[i], "%s", v);
            else {
                memmove(&b->mk[i], &b->mk[i + 1], (size_t)(b->nm - i - 1) * sizeof b->mk[0]);
                memmove(&b->mv[i], &b->mv[i + 1], (size_t)(b->nm - i - 1) * sizeof b->mv[0]);
                b->nm--;
            }
            return;
        }
    }
    ck_assert_ptr_nonnull(v);
    snprintf(b->mk[b->nm], sizeof b->mk[0], "%s", k);
    snprintf(b->mv[b->nm++], sizeof b->mv[0], "%s", v);
}

static fb_entry *fb_find(fb *b, const char *name) {
    for (int i = 0; i < b->n; i++)
        if (!strcmp(b->e[i].name, name)) return &b->e[i];
    ck_abort_msg("no entry %s", name);
    return NULL;
}

static void fb_add(fb *b, const char *name, const char *dtype, const char *shape, size_t nbytes,
                   const void *data) {
    fb_entry *e = &b->e[b->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->dtype, sizeof e->dtype, "%s", dtype);
    snprintf(e->shape, sizeof e->shape, "%s", shape);
    e->nbytes = nbytes;
    e->data = data;
}

/* the model's tensors and configuration, spelled out from MODEL.md §8 */
static void fb_from_model(fb *b, const dcrw_model *m) {
    memset(b, 0, sizeof *b);
    dcrw_config c = {.size = sizeof c};
    ck_assert_int_eq(dcrw_model_config(m, &c), DCRW_OK);
    char v[32];
#define META_INT(key, field)                                                                       \
    snprintf(v, sizeof v, "%d", (int)c.field);                                                     \
    fb_meta(b, key, v)
    fb_meta(b, "dcrw.format", "1");
    fb_meta(b, "dcrw.preset", "whatever"); /* informational only */
    META_INT("dcrw.channels", channels);
    META_INT("dcrw.height", height);
    META_INT("dcrw.width", width);
    META_INT("dcrw.glimpses", glimpses);
    META_INT("dcrw.enc_size", enc_size);
    META_INT("dcrw.dec_size", dec_size);
    META_INT("dcrw.z_size", z_size);
    META_INT("dcrw.read_n", read_n);
    META_INT("dcrw.write_n", write_n);
    META_INT("dcrw.conv1", conv1);
    META_INT("dcrw.conv2", conv2);
#undef META_INT
    fb_meta(b, "dcrw.encoder", c.encoder ? "cnn" : "lstm");
    fb_meta(b, "dcrw.read_attention", c.read_attention ? "true" : "false");
    fb_meta(b, "dcrw.write_attention", c.write_attention ? "true" : "false");
    for (size_t i = 0; i < dcrw_model_param_count(m); i++) {
        const char *name;
        int ndim;
        const int64_t *shape;
        float *data;
        dcrw_model_param(m, i, &name, &ndim, &shape, &data);
        char s[64] = "[";
        size_t count = 1;
        for (int k = 0; k < ndim; k++) {
            snprintf(s + strlen(s), sizeof s - strlen(s), k ? ",%lld" : "%lld",
                     (long long)shape[k]);
            count *= (size_t)shape[k];
        }
        strcat(s, "]");
        fb_add(b, name, "F32", s, 4 * count, data);
    }
}

/* consecutive offsets in entry order */
static void fb_layout(fb *b) {
    uint64_t pos = 0;
    for (int i = 0; i < b->n; i++) {
        b->e[i].begin = pos;
        pos += b->e[i].nbytes;
        b->e[i].end = pos;
    }
}

static uint8_t *fb_bytes(const fb *b, size_t *size) {
    char *h = malloc(1 << 16);
    size_t n = 0;
    if (b->meta_raw) {
        n += (size_t)sprintf(h + n, "{\"__metadata__\":%s", b->meta_raw);
    } else {
        n += (size_t)sprintf(h + n, "{\"__metadata__\":{");
        for (int i = 0; i < b->nm; i++)
            n += (size_t)sprintf(h + n, "%s\"%s\":\"%s\"", i ? "," : "", b->mk[i], b->mv[i]);
        n += (size_t)sprintf(h + n, "}");
    }
    uint64_t dsize = 0;
    for (int i = 0; i < b->n; i++) {
        const fb_entry *e = &b->e[i];
        char offs[64];
        if (e->offs[0])
            snprintf(offs, sizeof offs, "%s", e->offs);
        else
            snprintf(offs, sizeof offs, "[%llu,%llu]", (unsigned long long)e->begin,
                     (unsigned long long)e->end);
        n += (size_t)sprintf(h + n, ",\"%s\":{\"dtype\":\"%s\",\"shape\":%s,\"data_offsets\":%s}",
                             e->name, e->dtype, e->shape, offs);
        if (e->end > dsize) dsize = e->end;
    }
    n += (size_t)sprintf(h + n, "}%s", b->suffix ? b->suffix : "");
    while (n % 8) h[n++] = ' ';
    h[n] = '\0';
    if (b->from) {
        char *at = strstr(h, b->from);
        ck_assert_ptr_nonnull(at);
        size_t lf = strlen(b->from), lt = strlen(b->to);
        memmove(at + lt, at + lf, strlen(at + lf) + 1);
        memcpy(at, b->to, lt);
        n = n - lf + lt;
    }
    size_t total = 8 + n + (size_t)dsize;
    uint8_t *buf = calloc(total + 64, 1);
    uint64_t hl = b->hlen_set ? b->hlen : n;
    for (int k = 0; k < 8; k++) buf[k] = (uint8_t)(hl >> (8 * k));
    memcpy(buf + 8, h, n);
    for (int i = 0; i < b->n; i++) {
        const fb_entry *e = &b->e[i];
        if (e->data && e->end - e->begin == e->nbytes)
            memcpy(buf + 8 + n + e->begin, e->data, e->nbytes);
    }
    free(h);
    ck_assert(b->size_delta <= 64 && (int64_t)total + b->size_delta >= 0);
    *size = (size_t)((int64_t)total + b->size_delta);
    return buf;
}

/* ---- corrupted files */

static void m_none(fb *b) {
    (void)b;
}
static void m_hlen_past_end(fb *b) {
    b->hlen_set = 1;
    b->hlen = 20000; /* fewer bytes than that in the whole file */
}
static void m_hlen_absurd(fb *b) {
    b->hlen_set = 1;
    b->hlen = 1ull << 62;
}
static void m_hlen_one(fb *b) {
    b->hlen_set = 1;
    b->hlen = 1;
}
static void m_not_brace(fb *b) {
    b->from = "{", b->to = " ";
}
static void m_bad_json(fb *b) {
    b->from = "\"dtype\"", b->to = "dtype\"";
}
static void m_unterminated(fb *b) {
    b->from = "\"F32\"", b->to = "\"F32 ";
}
static void m_trailing_json(fb *b) {
    b->suffix = " x";
}
static void m_second_object(fb *b) {
    b->suffix = "{}";
}
static void m_truncated_data(fb *b) {
    b->size_delta = -1;
}
static void m_extra_byte(fb *b) {
    b->size_delta = 1;
}
static void m_f64(fb *b) {
    fb_entry *e = fb_find(b, "q.mu.bias");
    strcpy(e->dtype, "F64");
    e->nbytes *= 2;
    e->data = NULL;
    fb_layout(b);
}
static void m_unknown_dtype(fb *b) {
    strcpy(fb_find(b, "q.mu.bias")->dtype, "F33");
}
static void m_dtype_number(fb *b) {
    b->from = "\"F32\"", b->to = "32";
}
static void m_wrong_shape(fb *b) {
    /* Cin = 2 with read attention; the file claims 1 with a matching span */
    fb_entry *e = fb_find(b, "enc.conv1.weight");
    strcpy(e->shape, "[3,1,3,3]");
    e->nbytes = 4 * 27;
    fb_layout(b);
}
static void m_wrong_ndim(fb *b) {
    fb_entry *e = fb_find(b, "q.mu.bias");
    strcpy(e->shape, "[1,3]");
}
static void shift_after_first(fb *b, int64_t d) {
    fb_layout(b);
    for (int i = 1; i < b->n; i++) {
        b->e[i].begin = (uint64_t)((int64_t)b->e[i].begin + d);
        b->e[i].end = (uint64_t)((int64_t)b->e[i].end + d);
    }
}
static void m_overlap(fb *b) {
    shift_after_first(b, -4);
}
static void m_hole(fb *b) {
    shift_after_first(b, 4);
}
static void m_span_mismatch(fb *b) {
    fb_entry *e = &b->e[b->n - 1];
    e->end += 4;
}
static void m_begin_gt_end(fb *b) {
    fb_entry *e = &b->e[b->n - 1];
    snprintf(e->offs, sizeof e->offs, "[%llu,%llu]", (unsigned long long)e->end,
             (unsigned long long)e->begin);
}
static void m_offsets_far(fb *b) {
    fb_entry *e = &b->e[b->n - 1];
    snprintf(e->offs, sizeof e->offs, "[1000000000000,%llu]",
             (unsigned long long)(1000000000000ull + e->nbytes));
}
static void m_offsets_huge(fb *b) {
    fb_entry *e = &b->e[b->n - 1];
    snprintf(e->offs, sizeof e->offs, "[%llu,18446744073709551615]", (unsigned long long)e->begin);
}
static void m_offsets_frac(fb *b) {
    fb_entry *e = &b->e[b->n - 1];
    snprintf(e->offs, sizeof e->offs, "[%llu.5,%llu]", (unsigned long long)e->begin,
             (unsigned long long)e->end);
}
static void m_offsets_three(fb *b) {
    fb_entry *e = &b->e[b->n - 1];
    snprintf(e->offs, sizeof e->offs, "[%llu,%llu,0]", (unsigned long long)e->begin,
             (unsigned long long)e->end);
}
static void m_missing_tensor(fb *b) {
    b->n--; /* write.bias, last in §7 order */
    ck_assert_str_eq(b->e[b->n].name, "write.bias");
}
static void m_dup_tensor(fb *b) {
    b->e[b->n] = b->e[b->n - 1];
    b->n++;
    fb_layout(b);
}
static void m_dup_meta(fb *b) {
    b->from = "\"dcrw.height\"", b->to = "\"dcrw.width\"";
}
static void m_missing_meta(fb *b) {
    fb_meta(b, "dcrw.height", NULL);
}
static void m_missing_format(fb *b) {
    fb_meta(b, "dcrw.format", NULL);
}
static void m_missing_readn(fb *b) {
    fb_meta(b, "dcrw.read_n", NULL);
}
static void m_height_12x(fb *b) {
    fb_meta(b, "dcrw.height", "12x");
}
static void m_height_space(fb *b) {
    fb_meta(b, "dcrw.height", " 12");
}
static void m_height_empty(fb *b) {
    fb_meta(b, "dcrw.height", "");
}
static void m_height_plus(fb *b) {
    fb_meta(b, "dcrw.height", "+12");
}
static void m_height_neg(fb *b) {
    fb_meta(b, "dcrw.height", "-5");
}
static void m_height_zero(fb *b) {
    fb_meta(b, "dcrw.height", "0");
}
static void m_height_big(fb *b) {
    fb_meta(b, "dcrw.height", "99999999999");
}
static void m_bool_yes(fb *b) {
    fb_meta(b, "dcrw.read_attention", "yes");
}
static void m_encoder_rnn(fb *b) {
    fb_meta(b, "dcrw.encoder", "rnn");
}
static void m_format_2(fb *b) {
    fb_meta(b, "dcrw.format", "2");
}
static void m_kappa_bad(fb *b) {
    fb_meta(b, "dcrw.canvas_init", "1.5x");
}
static void m_kappa_nan(fb *b) {
    fb_meta(b, "dcrw.canvas_init", "nan");
}
static void m_meta_not_string(fb *b) {
    b->from = "\"dcrw.glimpses\":\"3\"", b->to = "\"dcrw.glimpses\":3";
}
static void m_meta_not_object(fb *b) {
    b->meta_raw = "\"3\"";
}
static void m_entry_not_object(fb *b) {
    b->from = "}}", b->to = "},\"x\":5}";
}
static const float nan_data[3] = {0.0f, NAN, 1.0f};
static void m_nan(fb *b) {
    fb_find(b, "q.mu.bias")->data = nan_data;
}
static const float inf_data[3] = {0.0f, 1.0f, -INFINITY};
static void m_inf(fb *b) {
    fb_find(b, "q.mu.bias")->data = inf_data;
}
static void m_shape_neg(fb *b) {
    strcpy(fb_find(b, "q.mu.bias")->shape, "[-3]");
}
static void m_shape_frac(fb *b) {
    strcpy(fb_find(b, "q.mu.bias")->shape, "[2.5]");
}
static void m_shape_str(fb *b) {
    strcpy(fb_find(b, "q.mu.bias")->shape, "[\"3\"]");
}
static void m_shape_overflow(fb *b) {
    strcpy(fb_find(b, "q.mu.bias")->shape, "[4294967296,4294967296,4294967296]");
}
static void m_shape_9d(fb *b) {
    strcpy(fb_find(b, "q.mu.bias")->shape, "[1,1,1,1,1,1,1,1,3]");
}
static void m_no_dtype(fb *b) {
    b->from = "\"dtype\":\"F32\",", b->to = "";
}
static void m_bad_utf8(fb *b) {
    b->from = "whatever", b->to = "what\xff\xfever";
}
static void m_control_char(fb *b) {
    b->from = ",\"dcrw.channels\"", b->to = ",\x01\"dcrw.channels\"";
}
/* ignored extras: a tensor of another dtype and unknown metadata */
static const int32_t foo_data[2] = {7, -7};
static void m_extras(fb *b) {
    fb_add(b, "foo.bar", "I32", "[2]", 8, foo_data);
    fb_layout(b);
    fb_meta(b, "dcrw.step", "12");
    fb_meta(b, "other.tool", "hello");
}
static void m_reordered(fb *b) {
    /* golden-style: write.weight before the attention tensors */
    fb_entry t = b->e[b->n - 2];
    memmove(&b->e[b->n - 5], &b->e[b->n - 6], 4 * sizeof t);
    b->e[b->n - 6] = t;
    fb_layout(b);
}
static void m_unused_absent(fb *b) {
    fb_meta(b, "dcrw.enc_size", NULL); /* CNN encoder: not used */
}
static void m_unused_nonzero(fb *b) {
    fb_meta(b, "dcrw.enc_size", "77");
}
static void m_padded_ws(fb *b) {
    b->suffix = "\n\t\r ";
}

struct bad_file {
    const char *what;
    void (*mut)(fb *);
    int code;                /* of dcrw_model_load */
    int container;           /* of dcrw_st_parse alone: model-level faults pass it */
    const char *msg1, *msg2; /* the message must name these */
};

static const struct bad_file bad_files[] = {
    {"valid", m_none, DCRW_OK, DCRW_OK, NULL, NULL},
    {"tensors out of §7 order", m_reordered, DCRW_OK, DCRW_OK, NULL, NULL},
    {"extra tensor and keys", m_extras, DCRW_OK, DCRW_OK, NULL, NULL},
    {"unused size absent", m_unused_absent, DCRW_OK, DCRW_OK, NULL, NULL},
    {"unused size nonzero", m_unused_nonzero, DCRW_OK, DCRW_OK, NULL, NULL},
    {"JSON whitespace padding", m_padded_ws, DCRW_OK, DCRW_OK, NULL, NULL},
    {"header length past end", m_hlen_past_end, DCRW_ETRUNCATED, DCRW_ETRUNCATED, NULL, NULL},
    {"header length 2^62", m_hlen_absurd, DCRW_EFORMAT, DCRW_EFORMAT, "limit", NULL},
    {"header length 1", m_hlen_one, DCRW_EFORMAT, DCRW_EFORMAT, NULL, NULL},
    {"header not '{'", m_not_brace, DCRW_EFORMAT, DCRW_EFORMAT, "'{'", NULL},
    {"bad JSON", m_bad_json, DCRW_EFORMAT, DCRW_EFORMAT, "JSON", NULL},
    {"unterminated string", m_unterminated, DCRW_EFORMAT, DCRW_EFORMAT, "JSON", NULL},
    {"garbage after JSON", m_trailing_json, DCRW_EFORMAT, DCRW_EFORMAT, "trailing", NULL},
    {"second object after JSON", m_second_object, DCRW_EFORMAT, DCRW_EFORMAT, "trailing", NULL},
    {"bad UTF-8", m_bad_utf8, DCRW_EFORMAT, DCRW_EFORMAT, "UTF-8", NULL},
    {"control character", m_control_char, DCRW_EFORMAT, DCRW_EFORMAT, NULL, NULL},
    {"data truncated by 1", m_truncated_data, DCRW_ETRUNCATED, DCRW_ETRUNCATED, NULL, NULL},
    {"one extra byte", m_extra_byte, DCRW_EFORMAT, DCRW_EFORMAT, "trailing", NULL},
    {"F64 model tensor", m_f64, DCRW_EUNSUPPORTED, DCRW_OK, "q.mu.bias", "F64"},
    {"unknown dtype", m_unknown_dtype, DCRW_EFORMAT, DCRW_EFORMAT, "F33", NULL},
    {"dtype not a string", m_dtype_number, DCRW_EFORMAT, DCRW_EFORMAT, "dtype", NULL},
    {"no dtype", m_no_dtype, DCRW_EFORMAT, DCRW_EFORMAT, "dtype", NULL},
    {"wrong shape", m_wrong_shape, DCRW_ESHAPE, DCRW_OK, "enc.conv1.weight: expected [3,2,3,3]",
     "file has [3,1,3,3]"},
    {"wrong ndim", m_wrong_ndim, DCRW_ESHAPE, DCRW_OK, "q.mu.bias", "[1,3]"},
    {"overlapping offsets", m_overlap, DCRW_EFORMAT, DCRW_EFORMAT, "overlap", NULL},
    {"hole between tensors", m_hole, DCRW_EFORMAT, DCRW_EFORMAT, "hole", NULL},
    {"span differs from shape", m_span_mismatch, DCRW_EFORMAT, DCRW_EFORMAT, "write.bias", NULL},
    {"begin > end", m_begin_gt_end, DCRW_EFORMAT, DCRW_EFORMAT, "write.bias", NULL},
    {"offsets far past the end", m_offsets_far, DCRW_EFORMAT, DCRW_EFORMAT, "hole", NULL},
    {"offset beyond 2^53", m_offsets_huge, DCRW_EFORMAT, DCRW_EFORMAT, "data_offsets", NULL},
    {"fractional offset", m_offsets_frac, DCRW_EFORMAT, DCRW_EFORMAT, "data_offsets", NULL},
    {"three offsets", m_offsets_three, DCRW_EFORMAT, DCRW_EFORMAT, "data_offsets", NULL},
    {"missing tensor", m_missing_tensor, DCRW_ENOTFOUND, DCRW_OK, "write.bias", NULL},
    {"duplicate tensor", m_dup_tensor, DCRW_EFORMAT, DCRW_EFORMAT, "twice", NULL},
    {"duplicate metadata key", m_dup_meta, DCRW_EFORMAT, DCRW_EFORMAT, "dcrw.width", NULL},
    {"missing metadata key", m_missing_meta, DCRW_ENOTFOUND, DCRW_OK, "dcrw.height", NULL},
    {"missing dcrw.format", m_missing_format, DCRW_ENOTFOUND, DCRW_OK, "dcrw.format", NULL},
    {"missing used read_n", m_missing_readn, DCRW_ENOTFOUND, DCRW_OK, "dcrw.read_n", NULL},
    {"height 12x", m_height_12x, DCRW_EFORMAT, DCRW_OK, "dcrw.height", NULL},
    {"height ' 12'", m_height_space, DCRW_EFORMAT, DCRW_OK, "dcrw.height", NULL},
    {"height ''", m_height_empty, DCRW_EFORMAT, DCRW_OK, "dcrw.height", NULL},
    {"height +12", m_height_plus, DCRW_EFORMAT, DCRW_OK, "dcrw.height", NULL},
    {"height -5", m_height_neg, DCRW_ECONFIG, DCRW_OK, "height", NULL},
    {"height 0", m_height_zero, DCRW_ECONFIG, DCRW_OK, "height", NULL},
    {"height 2^36", m_height_big, DCRW_ECONFIG, DCRW_OK, "dcrw.height", NULL},
    {"boolean yes", m_bool_yes, DCRW_EFORMAT, DCRW_OK, "dcrw.read_attention", NULL},
    {"encoder rnn", m_encoder_rnn, DCRW_EUNSUPPORTED, DCRW_OK, "rnn", NULL},
    {"format 2", m_format_2, DCRW_EUNSUPPORTED, DCRW_OK, "format", NULL},
    {"canvas_init 1.5x", m_kappa_bad, DCRW_EFORMAT, DCRW_OK, "dcrw.canvas_init", NULL},
    {"canvas_init nan", m_kappa_nan, DCRW_ECONFIG, DCRW_OK, "canvas_init", NULL},
    {"metadata value a number", m_meta_not_string, DCRW_EFORMAT, DCRW_EFORMAT, "dcrw.glimpses",
     NULL},
    {"metadata a string", m_meta_not_object, DCRW_EFORMAT, DCRW_EFORMAT, "__metadata__", NULL},
    {"entry not an object", m_entry_not_object, DCRW_EFORMAT, DCRW_EFORMAT, "\"x\"", NULL},
    {"NaN in a tensor", m_nan, DCRW_ENUMERIC, DCRW_OK, "q.mu.bias", NULL},
    {"infinity in a tensor", m_inf, DCRW_ENUMERIC, DCRW_OK, "q.mu.bias", NULL},
    {"negative dim", m_shape_neg, DCRW_EFORMAT, DCRW_EFORMAT, "shape", NULL},
    {"fractional dim", m_shape_frac, DCRW_EFORMAT, DCRW_EFORMAT, "shape", NULL},
    {"string dim", m_shape_str, DCRW_EFORMAT, DCRW_EFORMAT, "shape", NULL},
    {"shape overflows", m_shape_overflow, DCRW_EFORMAT, DCRW_EFORMAT, "q.mu.bias", NULL},
    {"nine dims", m_shape_9d, DCRW_EUNSUPPORTED, DCRW_EUNSUPPORTED, "dimensions", NULL},
};

static dcrw_model *corrupt_base(void) {
    /* CNN with read attention, so that conv weights with Cin = 2 exist */
    dcrw_config c = small_config(DCRW_PRESET_DCRW);
    dcrw_model *m;
    ck_assert_int_eq(dcrw_model_create(&m, &c, 77), DCRW_OK);
    return m;
}

START_TEST(test_bad_file) {
    const struct bad_file *bf = &bad_files[_i];
    dcrw_model *m = corrupt_base();
    fb *b = malloc(sizeof *b);
    fb_from_model(b, m);
    fb_layout(b);
    bf->mut(b);
    size_t size;
    uint8_t *bytes = fb_bytes(b, &size);
    char *dir = tu_tmpdir(), *path = join(dir, "bad.safetensors");
    spit(path, bytes, size);
    dcrw_model *out = (dcrw_model *)1;
    int rc = dcrw_model_load(&out, path);
    ck_assert_msg(rc == bf->code, "%s: got %d (%s: %s), expected %d", bf->what, rc,
                  dcrw_strerror(rc), dcrw_last_error(), bf->code);
    if (bf->code == DCRW_OK) {
        assert_same_model(m, out);
        dcrw_model_destroy(out);
    } else {
        ck_assert_ptr_null(out);
        const char *msg = dcrw_last_error();
        ck_assert_msg(msg[0] != '\0', "%s: empty message", bf->what);
        ck_assert_msg(!bf->msg1 || strstr(msg, bf->msg1), "%s: \"%s\" lacks \"%s\"", bf->what, msg,
                      bf->msg1);
        ck_assert_msg(!bf->msg2 || strstr(msg, bf->msg2), "%s: \"%s\" lacks \"%s\"", bf->what, msg,
                      bf->msg2);
    }
    /* the container alone */
    st_file f;
    int src = dcrw_st_parse(&f, bytes, size);
    ck_assert_msg(src == bf->container, "%s: dcrw_st_parse gave %d (%s), expected %d", bf->what,
                  src, dcrw_last_error(), bf->container);
    if (src == DCRW_OK) dcrw_st_free(&f);
    free(bytes);
    free(b);
    dcrw_model_destroy(m);
    free(path);
    tu_rmdir(dir);
}
END_TEST

/* files too short to hold a length, written by hand */
START_TEST(test_tiny_files) {
    char *dir = tu_tmpdir(), *path = join(dir, "t.safetensors");
    static const uint8_t seven[7] = {2, 0, 0, 0, 0, 0, 0};
    static const uint8_t min_ok[16] = {8,   0,   0,   0,   0,   0,   0,   0,
                                       '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
    dcrw_model *out;
    spit(path, seven, 0);
    ck_assert_int_eq(dcrw_model_load(&out, path), DCRW_ETRUNCATED);
    ck_assert_str_ne(dcrw_last_error(), "");
    spit(path, seven, 7);
    ck_assert_int_eq(dcrw_model_load(&out, path), DCRW_ETRUNCATED);
    ck_assert_str_ne(dcrw_last_error(), "");
    /* the smallest valid container: no tensors, no metadata */
    st_file f;
    ck_assert_int_eq(dcrw_st_parse(&f, min_ok, sizeof min_ok), DCRW_OK);
    ck_assert_int_eq(f.ntensors, 0);
    ck_assert_int_eq(f.nmeta, 0);
    ck_assert_uint_eq(f.data_start, 16);
    dcrw_st_free(&f);
    spit(path, min_ok, sizeof min_ok);
    ck_assert_int_eq(dcrw_model_load(&out, path), DCRW_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(dcrw_last_error(), "dcrw.format"));
    ck_assert_int_eq(dcrw_st_parse(&f, NULL, 0), DCRW_ETRUNCATED);
    ck_assert_int_eq(dcrw_st_parse(NULL, min_ok, 16), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_st_parse(&f, NULL, 16), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_st_read(&f, NULL), DCRW_EINVAL);
    dcrw_st_free(NULL);
    free(path);
    tu_rmdir(dir);
}
END_TEST

/* every prefix of a valid file is refused as truncated; the parser gets an
 * exact-size copy so that ASan sees any read past the end */
START_TEST(test_every_truncation) {
    char *dir = tu_tmpdir(), *path = join(dir, "m.safetensors");
    dcrw_config c = small_config(DCRW_PRESET_DRAW_NOATTN);
    dcrw_model *m;
    ck_assert_int_eq(dcrw_model_create(&m, &c, 3), DCRW_OK);
    ck_assert_int_eq(dcrw_model_save(m, path), DCRW_OK);
    size_t size;
    uint8_t *full = tu_read_file(path, &size);
    for (size_t len = 0; len < size; len++) {
        uint8_t *cut = malloc(len ? len : 1);
        memcpy(cut, full, len);
        st_file f;
        int rc = dcrw_st_parse(&f, cut, len);
        ck_assert_msg(rc == DCRW_ETRUNCATED, "length %zu of %zu: %d (%s)", len, size, rc,
                      dcrw_last_error());
        free(cut);
    }
    /* and through the file API, a sample of lengths */
    for (size_t len = 0; len < size; len += size / 13 + 1) {
        spit(path, full, len);
        dcrw_model *out = (dcrw_model *)1;
        ck_assert_int_eq(dcrw_model_load(&out, path), DCRW_ETRUNCATED);
        ck_assert_ptr_null(out);
    }
    st_file f;
    ck_assert_int_eq(dcrw_st_parse(&f, full, size), DCRW_OK);
    dcrw_model *back;
    ck_assert_int_eq(dcrw_ckpt_model_from_file(&f, &back), DCRW_OK);
    assert_same_model(m, back);
    dcrw_model_destroy(back);
    dcrw_st_free(&f);
    free(full);
    dcrw_model_destroy(m);
    free(path);
    tu_rmdir(dir);
}
END_TEST

/* dcrw_ckpt_write's extras land in the file and dcrw_ckpt_copy_tensor reads them */
START_TEST(test_ckpt_extras) {
    char *dir = tu_tmpdir(), *path = join(dir, "t.safetensors");
    dcrw_config c = small_config(DCRW_PRESET_DCRW_NOREAD);
    dcrw_model *m;
    ck_assert_int_eq(dcrw_model_create(&m, &c, 4), DCRW_OK);
    float mom[6] = {1, 2, 3, 4, 5, 6};
    st_out ex[1] = {{"adam.m.q.mu.bias", 2, {2, 3}, mom}};
    const char *k[1] = {"dcrw.step"}, *v[1] = {"42"};
    ck_assert_int_eq(dcrw_ckpt_write(path, m, ex, 1, k, v, 1), DCRW_OK);
    st_file f;
    ck_assert_int_eq(dcrw_st_read(&f, path), DCRW_OK);
    ck_assert_str_eq(dcrw_st_meta(&f, "dcrw.step"), "42");
    float got[6] = {0};
    const int64_t shape[2] = {2, 3}, wrong[2] = {3, 2};
    ck_assert_int_eq(dcrw_ckpt_copy_tensor(&f, "adam.m.q.mu.bias", 2, shape, got), DCRW_OK);
    ck_assert_int_eq(memcmp(got, mom, sizeof mom), 0);
    ck_assert_int_eq(dcrw_ckpt_copy_tensor(&f, "adam.m.q.mu.bias", 2, wrong, got), DCRW_ESHAPE);
    ck_assert_int_eq(dcrw_ckpt_copy_tensor(&f, "adam.v.q.mu.bias", 2, shape, got), DCRW_ENOTFOUND);
    dcrw_model *back;
    ck_assert_int_eq(dcrw_ckpt_model_from_file(&f, &back), DCRW_OK);
    assert_same_model(m, back);
    dcrw_model_destroy(back);
    dcrw_st_free(&f);
    /* an extra that collides with a model tensor or key is refused */
    ex[0].name = "q.mu.bias";
    ck_assert_int_eq(dcrw_ckpt_write(path, m, ex, 1, NULL, NULL, 0), DCRW_EINVAL);
    k[0] = "dcrw.height";
    ck_assert_int_eq(dcrw_ckpt_write(path, m, NULL, 0, k, v, 1), DCRW_EINVAL);
    dcrw_model_destroy(m);
    free(path);
    tu_rmdir(dir);
}
END_TEST

/* an independent reader (Python standard library only) accepts our files */
static void python_check(const char *file, long expect_count) {
    ck_assert_msg(access("/usr/bin/python3", X_OK) == 0, "/usr/bin/python3 is required");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s'", tu_path("check_safetensors.py"), file);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char line[64] = "";
    char *got = fgets(line, sizeof line, p);
    int status = pclose(p);
    ck_assert_msg(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "check_safetensors.py failed on %s (status %d)", file, status);
    ck_assert_ptr_nonnull(got);
    ck_assert_int_eq(strtol(line, NULL, 10), expect_count);
}

START_TEST(test_python_reader) {
    char *dir = tu_tmpdir(), *path = join(dir, "m.safetensors");
    for (int p = 0; p < 4; p++) {
        dcrw_config c = small_config((dcrw_preset)p);
        c.canvas_init = p == 1 ? 0.75f : 0.0f;
        dcrw_model *m;
        ck_assert_int_eq(dcrw_model_create(&m, &c, 8), DCRW_OK);
        ck_assert_int_eq(dcrw_model_save(m, path), DCRW_OK);
        python_check(path, (long)dcrw_model_param_count(m));
        dcrw_model_destroy(m);
    }
    /* the validator itself must reject a broken file */
    size_t size;
    uint8_t *full = tu_read_file(path, &size);
    char *cut = join(dir, "cut.safetensors");
    spit(cut, full, size - 1);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' 2>/dev/null",
             tu_path("check_safetensors.py"), cut);
    int status = system(cmd);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    free(full);
    free(cut);
    free(path);
    tu_rmdir(dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("roundtrip");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_roundtrip_presets);
    tcase_add_test(tc, test_roundtrip_full_size);
    tcase_add_test(tc, test_roundtrip_canvas_nonsquare);
    tcase_add_test(tc, test_saved_metadata);
    tcase_add_test(tc, test_metadata_every_field);
    tcase_add_test(tc, test_save_atomic);
    tcase_add_test(tc, test_writer_escapes);
    tcase_add_test(tc, test_ckpt_extras);
    suite_add_tcase(s, tc);
    TCase *ts = tcase_create("safety");
    tcase_set_timeout(ts, 60);
    tcase_add_test(ts, test_save_refuses_nonfinite);
    tcase_add_test(ts, test_save_mode);
    tcase_add_test(ts, test_save_long_name);
    tcase_add_test(ts, test_huge_tail_refused_early);
    tcase_add_test(ts, test_special_files);
    tcase_add_test(ts, test_resume_negative_moment);
    tcase_add_test(ts, test_resume_step_range);
    tcase_add_test(ts, test_resume_refuses_changed_field);
    suite_add_tcase(s, ts);
    TCase *tg = tcase_create("golden");
    tcase_add_loop_test(tg, test_golden, 0, sizeof golden_files / sizeof golden_files[0]);
    suite_add_tcase(s, tg);
    TCase *tb = tcase_create("corrupt");
    tcase_set_timeout(tb, 60);
    tcase_add_loop_test(tb, test_bad_file, 0, sizeof bad_files / sizeof bad_files[0]);
    tcase_add_test(tb, test_tiny_files);
    tcase_add_test(tb, test_every_truncation);
    suite_add_tcase(s, tb);
    TCase *tp = tcase_create("python");
    tcase_set_timeout(tp, 60);
    tcase_add_test(tp, test_python_reader);
    suite_add_tcase(s, tp);
    return tu_run(s);
}
