/* Models as safetensors checkpoints (MODEL.md §8).
 *
 * Error codes of the loader, beyond those of the container:
 *  - a metadata value that is not well formed ("12x", " 12", "yes", an
 *    empty string, a float that does not parse) is DCRW_EFORMAT;
 *  - a well-formed value the configuration refuses ("-5", "0", "70000",
 *    a number beyond int32) is DCRW_ECONFIG, naming the field;
 *  - dcrw.format other than "1" or an encoder other than "lstm"/"cnn" is
 *    DCRW_EUNSUPPORTED (a newer writer, not a broken file);
 *  - a missing required key or tensor is DCRW_ENOTFOUND, a tensor of another
 *    dtype DCRW_EUNSUPPORTED, of another shape DCRW_ESHAPE, holding NaN or
 *    infinity DCRW_ENUMERIC. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "common.h"
#include "safetensors.h"

/* Decimal text must not depend on the caller's locale (a "," decimal point
 * would make files unreadable elsewhere): switch this thread to "C" for the
 * few conversions, and back. */
typedef struct c_numeric {
    locale_t c, old;
} c_numeric;

static void c_numeric_begin(c_numeric *s) {
    s->c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    s->old = s->c ? uselocale(s->c) : (locale_t)0;
}

static void c_numeric_end(c_numeric *s) {
    if (!s->c) return;
    uselocale(s->old);
    freelocale(s->c);
}

static const char *preset_of(const dcrw_config *c) {
    int cnn = c->encoder == DCRW_ENCODER_CNN, ra = c->read_attention, wa = c->write_attention;
    if (!cnn && ra && wa) return dcrw_preset_name(DCRW_PRESET_DRAW);
    if (!cnn && !ra && !wa) return dcrw_preset_name(DCRW_PRESET_DRAW_NOATTN);
    if (cnn && ra && wa) return dcrw_preset_name(DCRW_PRESET_DCRW);
    if (cnn && !ra && wa) return dcrw_preset_name(DCRW_PRESET_DCRW_NOREAD);
    return "custom";
}

/* The integer fields of the configuration, in metadata order. */
static const struct {
    const char *key;
    size_t offset;
} int_keys[] = {
    {"dcrw.channels", offsetof(dcrw_config, channels)},
    {"dcrw.height", offsetof(dcrw_config, height)},
    {"dcrw.width", offsetof(dcrw_config, width)},
    {"dcrw.glimpses", offsetof(dcrw_config, glimpses)},
    {"dcrw.enc_size", offsetof(dcrw_config, enc_size)},
    {"dcrw.dec_size", offsetof(dcrw_config, dec_size)},
    {"dcrw.z_size", offsetof(dcrw_config, z_size)},
    {"dcrw.read_n", offsetof(dcrw_config, read_n)},
    {"dcrw.write_n", offsetof(dcrw_config, write_n)},
    {"dcrw.conv1", offsetof(dcrw_config, conv1)},
    {"dcrw.conv2", offsetof(dcrw_config, conv2)},
};
#define N_INT_KEYS ((int)(sizeof int_keys / sizeof int_keys[0]))
/* format, preset, the integers, encoder, two switches, canvas_init */
#define N_META (N_INT_KEYS + 6)

static int32_t *int_field(dcrw_config *c, int k) {
    return (int32_t *)(void *)((char *)c + int_keys[k].offset);
}

/* The elements of an st_out, or 0 for a shape dcrw_st_write_atomic refuses
 * anyway (a negative or overflowing one). */
static size_t out_count(const st_out *o) {
    size_t n = 1;
    for (int k = 0; k < o->ndim && k < ST_MAX_DIMS; k++)
        if (o->shape[k] < 0 || dcrw_mul_size(n, (size_t)o->shape[k], &n)) return 0;
    return n;
}

/* The loader refuses a NaN or infinity in any tensor: such a file must
 * not replace a good one. DCRW_ENUMERIC naming the first bad value. */
static int check_finite_out(const st_out *o) {
    const size_t n = o->data ? out_count(o) : 0;
    if (dcrw_all_finite(o->data, n)) return DCRW_OK;
    size_t i = 0;
    while (i < n && o->data[i] * 0.0f == 0.0f) i++;
    return dcrw_fail(DCRW_ENUMERIC, "%.80s[%zu] = %g is not finite: not saved (it would not load)",
                     o->name ? o->name : "a tensor", i, (double)o->data[i]);
}

int dcrw_ckpt_write(const char *path, const dcrw_model *m, const st_out *extra, int nextra,
                    const char *const *extra_keys, const char *const *extra_vals, int nextra_meta) {
    assert(path && m && nextra >= 0 && nextra_meta >= 0);
    assert(extra || nextra == 0);
    assert((extra_keys && extra_vals) || nextra_meta == 0);
    assert(nextra <= INT_MAX - P_COUNT && nextra_meta <= INT_MAX - N_META);

    const dcrw_config *c = &m->cfg;
    char ints[N_INT_KEYS][16], kappa[32];
    const char *keys[N_META], *vals[N_META];
    int nm = 0;
    keys[nm] = "dcrw.format", vals[nm++] = "1";
    keys[nm] = "dcrw.preset", vals[nm++] = preset_of(c);
    for (int k = 0; k < N_INT_KEYS; k++) {
        snprintf(ints[k], sizeof ints[k], "%d", (int)*int_field((dcrw_config *)c, k));
        keys[nm] = int_keys[k].key, vals[nm++] = ints[k];
    }
    keys[nm] = "dcrw.encoder", vals[nm++] = c->encoder == DCRW_ENCODER_CNN ? "cnn" : "lstm";
    keys[nm] = "dcrw.read_attention", vals[nm++] = c->read_attention ? "true" : "false";
    keys[nm] = "dcrw.write_attention", vals[nm++] = c->write_attention ? "true" : "false";
    if (c->canvas_init != 0.0f) {
        /* 9 significant digits round-trip every float exactly */
        c_numeric loc;
        c_numeric_begin(&loc);
        snprintf(kappa, sizeof kappa, "%.9g", (double)c->canvas_init);
        c_numeric_end(&loc);
        keys[nm] = "dcrw.canvas_init", vals[nm++] = kappa;
    }

    int nt = m->lay.ntensors + nextra, nmeta = nm + nextra_meta;
    st_out *outs = dcrw_calloc((size_t)nt, sizeof *outs);
    const char **mk = dcrw_calloc((size_t)nmeta, sizeof *mk);
    const char **mv = dcrw_calloc((size_t)nmeta, sizeof *mv);
    int rc = DCRW_ENOMEM;
    if (!outs || !mk || !mv) goto out;
    for (int i = 0; i < m->lay.ntensors; i++) {
        int id = m->lay.order[i];
        const dcrw_tensor_info *t = &m->lay.t[id];
        outs[i].name = dcrw_tensor_names[id];
        outs[i].ndim = t->ndim;
        for (int k = 0; k < t->ndim; k++) outs[i].shape[k] = t->shape[k];
        outs[i].data = m->params + t->offset;
    }
    for (int i = 0; i < nextra; i++) outs[m->lay.ntensors + i] = extra[i];
    for (int i = 0; i < nm; i++) mk[i] = keys[i], mv[i] = vals[i];
    for (int i = 0; i < nextra_meta; i++) mk[nm + i] = extra_keys[i], mv[nm + i] = extra_vals[i];
    rc = DCRW_OK;
    for (int i = 0; i < nt && !rc; i++) rc = check_finite_out(&outs[i]);
    if (!rc) rc = dcrw_st_write_atomic(path, outs, nt, mk, mv, nmeta);
out:
    dcrw_free(outs);
    dcrw_free(mk);
    dcrw_free(mv);
    return rc;
}

static void shape_str(char *buf, size_t size, int ndim, const int64_t *shape) {
    size_t n = (size_t)snprintf(buf, size, "[");
    for (int k = 0; k < ndim && n < size; k++)
        n += (size_t)snprintf(buf + n, size - n, k ? ",%lld" : "%lld", (long long)shape[k]);
    if (n < size) snprintf(buf + n, size - n, "]");
}

static float load_f32le(const uint8_t *p) {
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* The tensor `name` of f if it is F32 with exactly this shape; else NULL
 * with the error recorded in *rc. */
static const st_tensor *check_tensor(const st_file *f, const char *name, int ndim,
                                     const int64_t *shape, int *rc) {
    const st_tensor *t = dcrw_st_find(f, name);
    *rc = DCRW_OK;
    if (!t) {
        *rc = dcrw_fail(DCRW_ENOTFOUND, "missing tensor %.80s", name);
        return NULL;
    }
    if (t->dtype != ST_F32) {
        *rc = dcrw_fail(DCRW_EUNSUPPORTED, "%.80s: dtype %s, expected F32", name, t->dtype_name);
        return NULL;
    }
    int same = t->ndim == ndim;
    for (int k = 0; same && k < ndim; k++) same = t->shape[k] == shape[k];
    if (!same) {
        char want[160], have[160];
        shape_str(want, sizeof want, ndim, shape);
        shape_str(have, sizeof have, t->ndim, t->shape);
        *rc = dcrw_fail(DCRW_ESHAPE, "%.80s: expected %s, file has %s", name, want, have);
        return NULL;
    }
    return t;
}

int dcrw_ckpt_copy_tensor(const st_file *f, const char *name, int ndim, const int64_t *shape,
                          float *dst) {
    assert(f && name && (shape || ndim == 0) && ndim >= 0 && ndim <= ST_MAX_DIMS);
    int rc;
    const st_tensor *t = check_tensor(f, name, ndim, shape, &rc);
    if (!t) return rc;
    /* the container checked that the byte span matches dtype × shape */
    size_t count = (size_t)(t->end - t->begin) / 4;
    assert(dst || count == 0);
    const uint8_t *src = st_data(f, t);
    for (size_t i = 0; i < count; i++) dst[i] = load_f32le(src + 4 * i);
    if (!dcrw_all_finite(dst, count)) {
        size_t i = 0;
        while (i < count && dst[i] * 0.0f == 0.0f) i++;
        return dcrw_fail(DCRW_ENUMERIC, "%.80s: element %zu is not finite", name, i);
    }
    return DCRW_OK;
}

/* A decimal integer, nothing else: optional '-', digits. */
static int meta_int(const st_file *f, const char *key, int required, int32_t *out) {
    const char *s = dcrw_st_meta(f, key);
    if (!s) {
        if (required) return dcrw_fail(DCRW_ENOTFOUND, "missing metadata key %s", key);
        *out = 0;
        return DCRW_OK;
    }
    const char *p = s[0] == '-' ? s + 1 : s;
    if (*p < '0' || *p > '9')
        return dcrw_fail(DCRW_EFORMAT, "metadata %s = \"%.40s\" is not an integer", key, s);
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end != '\0')
        return dcrw_fail(DCRW_EFORMAT, "metadata %s = \"%.40s\" is not an integer", key, s);
    if (errno == ERANGE || v < INT32_MIN || v > INT32_MAX)
        return dcrw_fail(DCRW_ECONFIG, "metadata %s = %.40s is out of range", key, s);
    *out = (int32_t)v;
    return DCRW_OK;
}

static int meta_bool(const st_file *f, const char *key, int32_t *out) {
    const char *s = dcrw_st_meta(f, key);
    if (!s) return dcrw_fail(DCRW_ENOTFOUND, "missing metadata key %s", key);
    if (!strcmp(s, "true"))
        *out = 1;
    else if (!strcmp(s, "false"))
        *out = 0;
    else
        return dcrw_fail(DCRW_EFORMAT, "metadata %s = \"%.40s\" is not \"true\" or \"false\"", key,
                         s);
    return DCRW_OK;
}

static int meta_float(const st_file *f, const char *key, float *out) {
    const char *s = dcrw_st_meta(f, key);
    *out = 0.0f;
    if (!s) return DCRW_OK;
    /* strtof would skip leading blanks; a value is exactly a number ("nan"
     * and "inf" parse, and the configuration then refuses them) */
    if (*s == '\0' || *s == ' ' || (*s >= '\t' && *s <= '\r'))
        return dcrw_fail(DCRW_EFORMAT, "metadata %s = \"%.40s\" is not a number", key, s);
    c_numeric loc;
    c_numeric_begin(&loc);
    char *end;
    float v = strtof(s, &end);
    c_numeric_end(&loc);
    if (end == s || *end != '\0')
        return dcrw_fail(DCRW_EFORMAT, "metadata %s = \"%.40s\" is not a number", key, s);
    *out = v; /* range and finiteness are the configuration's to check */
    return DCRW_OK;
}

static int config_from_meta(const st_file *f, dcrw_config *c) {
    const char *fmt = dcrw_st_meta(f, "dcrw.format");
    if (!fmt) return dcrw_fail(DCRW_ENOTFOUND, "missing metadata key dcrw.format");
    if (strcmp(fmt, "1") != 0)
        return dcrw_fail(DCRW_EUNSUPPORTED, "checkpoint format \"%.40s\", this library reads \"1\"",
                         fmt);
    memset(c, 0, sizeof *c);
    c->size = sizeof *c;
    const char *enc = dcrw_st_meta(f, "dcrw.encoder");
    if (!enc) return dcrw_fail(DCRW_ENOTFOUND, "missing metadata key dcrw.encoder");
    if (!strcmp(enc, "lstm"))
        c->encoder = DCRW_ENCODER_LSTM;
    else if (!strcmp(enc, "cnn"))
        c->encoder = DCRW_ENCODER_CNN;
    else
        return dcrw_fail(DCRW_EUNSUPPORTED, "unknown encoder \"%.40s\" (lstm or cnn)", enc);
    int rc;
    if ((rc = meta_bool(f, "dcrw.read_attention", &c->read_attention))) return rc;
    if ((rc = meta_bool(f, "dcrw.write_attention", &c->write_attention))) return rc;
    const int cnn = c->encoder == DCRW_ENCODER_CNN;
    for (int k = 0; k < N_INT_KEYS; k++) {
        /* sizes the architecture does not use may be absent (MODEL.md §8
         * lets writers put 0 there); if present they must still parse */
        size_t off = int_keys[k].offset;
        int required = !(
            (off == offsetof(dcrw_config, enc_size) && cnn) ||
            (off == offsetof(dcrw_config, read_n) && !c->read_attention) ||
            (off == offsetof(dcrw_config, write_n) && !c->write_attention) ||
            ((off == offsetof(dcrw_config, conv1) || off == offsetof(dcrw_config, conv2)) && !cnn));
        if ((rc = meta_int(f, int_keys[k].key, required, int_field(c, k)))) return rc;
    }
    return meta_float(f, "dcrw.canvas_init", &c->canvas_init);
}

int dcrw_ckpt_model_from_file(const st_file *f, dcrw_model **out) {
    assert(f && out);
    *out = NULL;
    dcrw_config cfg;
    int rc = config_from_meta(f, &cfg);
    if (rc) return rc;
    /* Every tensor the configuration needs must be in the file, with its
     * shape, BEFORE anything is allocated: the parameters' size then is
     * bounded by the file's, and a small file that declares a huge model is
     * refused instead of costing gigabytes (found by the fuzzer). */
    dcrw_dims d;
    dcrw_layout lay;
    rc = dcrw_config_derive(&cfg, &d, &lay);
    if (rc == DCRW_EINVAL || rc == DCRW_ECONFIG) {
        /* copy first: the message buffer is also the destination */
        char why[256];
        snprintf(why, sizeof why, "%s", dcrw_last_error());
        return dcrw_fail(DCRW_ECONFIG, "checkpoint configuration: %s", why);
    }
    if (rc) return rc;
    for (int i = 0; i < lay.ntensors && !rc; i++) {
        const dcrw_tensor_info *t = &lay.t[lay.order[i]];
        check_tensor(f, dcrw_tensor_names[lay.order[i]], t->ndim, t->shape, &rc);
    }
    if (rc) return rc;
    dcrw_model *m;
    if ((rc = dcrw_model_alloc_derived(&m, &cfg, &d, &lay))) return rc;
    for (int i = 0; i < m->lay.ntensors; i++) {
        int id = m->lay.order[i];
        const dcrw_tensor_info *t = &m->lay.t[id];
        rc = dcrw_ckpt_copy_tensor(f, dcrw_tensor_names[id], t->ndim, t->shape,
                                   m->params + t->offset);
        if (rc) {
            dcrw_model_destroy(m);
            return rc;
        }
    }
    *out = m;
    return DCRW_OK;
}

int dcrw_model_load(dcrw_model **out, const char *path) {
    DCRW_CHECK_ARG(out, "dcrw_model_load: out is NULL");
    *out = NULL;
    DCRW_CHECK_ARG(path, "dcrw_model_load: path is NULL");
    st_file f;
    int rc = dcrw_st_read(&f, path);
    if (rc) return rc;
    rc = dcrw_ckpt_model_from_file(&f, out);
    dcrw_st_free(&f);
    return rc;
}

int dcrw_model_save(const dcrw_model *m, const char *path) {
    DCRW_CHECK_ARG(m, "dcrw_model_save: model is NULL");
    DCRW_CHECK_ARG(path, "dcrw_model_save: path is NULL");
    return dcrw_ckpt_write(path, m, NULL, 0, NULL, NULL, 0);
}

/* ---- trainer checkpoints: the model, Adam's moments, the step ----------- */

#define MAX_NAME 64

/* The name of the first (which = 0) or second moment of tensor id. */
static void moment_name(char name[MAX_NAME], int which, int id) {
    snprintf(name, MAX_NAME, "adam.%c.%s", which ? 'v' : 'm', dcrw_tensor_names[id]);
}

/* The index of the first negative value of v[0..n), or n. Adam's second
 * moments are averages of squares: a negative one comes only from a
 * foreign or damaged file, and would make every later step fail. */
static size_t first_negative(const float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (v[i] < 0.0f) return i;
    return n;
}

/* DCRW_OK if every second moment is >= 0; else DCRW_ENUMERIC naming the
 * tensor and element (who: what to say it in). */
static int check_second_moments(const dcrw_layout *lay, const float *v, const char *who) {
    for (int k = 0; k < lay->ntensors; k++) {
        const dcrw_tensor_info *ti = &lay->t[lay->order[k]];
        size_t i = first_negative(v + ti->offset, ti->count);
        if (i < ti->count)
            return dcrw_fail(DCRW_ENUMERIC,
                             "%.200s: Adam second moment adam.v.%s[%zu] = %g is negative", who,
                             dcrw_tensor_names[lay->order[k]], i, (double)v[ti->offset + i]);
    }
    return DCRW_OK;
}

int dcrw_ckpt_write_trainer(const char *path, const dcrw_model *m, const float *am, const float *av,
                            uint64_t step, uint64_t seed, float learning_rate) {
    const dcrw_layout *lay = &m->lay;
    /* never write what dcrw_ckpt_read_trainer would refuse (dcrw_ckpt_write
     * checks that every tensor is finite) */
    int rc = check_second_moments(lay, av, "dcrw_trainer_save");
    if (rc) return rc;
    const int n = lay->ntensors;
    st_out extra[2 * P_COUNT];
    char names[2 * P_COUNT][MAX_NAME];
    for (int k = 0; k < n; k++) {
        const int id = lay->order[k];
        const dcrw_tensor_info *ti = &lay->t[id];
        for (int which = 0; which < 2; which++) {
            st_out *o = &extra[2 * k + which];
            moment_name(names[2 * k + which], which, id);
            o->name = names[2 * k + which];
            o->ndim = ti->ndim;
            memset(o->shape, 0, sizeof o->shape);
            for (int i = 0; i < ti->ndim; i++) o->shape[i] = ti->shape[i];
            o->data = (which ? av : am) + ti->offset;
        }
    }
    char step_s[32], seed_s[32], lr_s[32];
    snprintf(step_s, sizeof step_s, "%" PRIu64, step);
    snprintf(seed_s, sizeof seed_s, "%" PRIu64, seed);
    snprintf(lr_s, sizeof lr_s, "%.9g", (double)learning_rate);
    const char *keys[] = {"dcrw.step", "dcrw.train.seed", "dcrw.train.learning_rate"};
    const char *vals[] = {step_s, seed_s, lr_s};
    return dcrw_ckpt_write(path, m, extra, 2 * n, keys, vals, 3);
}

/* dcrw.step: absent (a model checkpoint) is 0; else decimal digits only,
 * at most 2^63 − 1, so that a count written by another program is never
 * read wrapped or saturated. */
static int meta_step(const st_file *f, const char *path, uint64_t *step) {
    const char *s = dcrw_st_meta(f, "dcrw.step");
    *step = 0;
    if (!s) return DCRW_OK;
    if (*s == '\0') return dcrw_fail(DCRW_EFORMAT, "%.200s: dcrw.step is empty, not a count", path);
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return dcrw_fail(DCRW_EFORMAT, "%.200s: dcrw.step \"%.32s\" is not a count", path, s);
        if (v > ((uint64_t)INT64_MAX - (uint64_t)(*p - '0')) / 10)
            return dcrw_fail(DCRW_EFORMAT, "%.200s: dcrw.step %.32s%s exceeds 2^63 - 1", path, s,
                             strlen(s) > 32 ? "..." : "");
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *step = v;
    return DCRW_OK;
}

/* Both moments of every tensor f holds into moments (m, then v, each laid
 * out as lay; a tensor without them keeps zeros), then checked. */
static int read_moments(const st_file *f, const char *path, const dcrw_layout *lay,
                        float *moments) {
    for (int k = 0; k < lay->ntensors; k++) {
        const int id = lay->order[k];
        const dcrw_tensor_info *ti = &lay->t[id];
        for (int which = 0; which < 2; which++) {
            char name[MAX_NAME];
            moment_name(name, which, id);
            if (!dcrw_st_find(f, name)) continue; /* a model checkpoint: moments start at 0 */
            float *dst = moments + which * lay->total + ti->offset;
            int rc = dcrw_ckpt_copy_tensor(f, name, ti->ndim, ti->shape, dst);
            if (rc) return rc;
        }
    }
    /* dcrw_ckpt_copy_tensor refused non-finite values */
    return check_second_moments(lay, moments + lay->total, path);
}

int dcrw_ckpt_read_trainer(const char *path, const dcrw_model *m, float *params, float *moments,
                           uint64_t *step) {
    st_file f;
    int rc = dcrw_st_read(&f, path);
    if (rc) return rc;
    dcrw_model *loaded = NULL;
    const dcrw_layout *lay = &m->lay;
    if ((rc = dcrw_ckpt_model_from_file(&f, &loaded))) goto done;
    if (!dcrw_config_same(&loaded->cfg, &m->cfg)) {
        rc = dcrw_fail(DCRW_ESHAPE, "%s: its configuration differs from the trainer's model", path);
        goto done;
    }
    if ((rc = meta_step(&f, path, step))) goto done;
    memset(moments, 0, 2 * lay->total * sizeof(float));
    if ((rc = read_moments(&f, path, lay, moments))) goto done;
    memcpy(params, loaded->params, lay->total * sizeof(float));
done:
    dcrw_model_destroy(loaded);
    dcrw_st_free(&f);
    return rc;
}
