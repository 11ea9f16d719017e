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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "common.h"
#include "safetensors.h"

/* The preset whose architecture (encoder and switches) c has, else
 * "custom": a label for people reading the file, never read back. */
static const char *preset_of(const dcrw_config *c) {
    for (int p = 0; dcrw_preset_name((dcrw_preset)p); p++) {
        int same = 1;
        for (int i = 0; i < DCRW_NFIELDS; i++) {
            const dcrw_field *f = &dcrw_config_fields[i];
            if (f->type == DCRW_FIELD_BOOL || f->type == DCRW_FIELD_ENCODER)
                same &= dcrw_config_number(c, f) == f->preset[p];
        }
        if (same) return dcrw_preset_name((dcrw_preset)p);
    }
    return "custom";
}

/* format, preset, then one key per field */
#define N_META (2 + DCRW_NFIELDS)
#define META_TEXT 32

/* The metadata pairs of configuration c (normalised, as a model keeps
 * it), their text in text[]: dcrw.format, dcrw.preset, then every field in
 * table order, an optional one only when it is not 0. Returns the count. */
static int config_meta(const dcrw_config *c, char text[][META_TEXT], const char **keys,
                       const char **vals) {
    int nm = 0;
    keys[nm] = "dcrw.format", vals[nm++] = "1";
    keys[nm] = "dcrw.preset", vals[nm++] = preset_of(c);
    for (int i = 0; i < DCRW_NFIELDS; i++) {
        const dcrw_field *f = &dcrw_config_fields[i];
        if (f->optional && dcrw_config_number(c, f) == 0) continue;
        int rc = dcrw_config_field_text(c, f, text[i], META_TEXT);
        assert(rc == 0);
        (void)rc;
        keys[nm] = f->key, vals[nm++] = text[i];
    }
    return nm;
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

    char text[DCRW_NFIELDS][META_TEXT];
    const char *keys[N_META], *vals[N_META];
    const int nm = config_meta(&m->cfg, text, keys, vals);

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
static int meta_int(const char *key, const char *s, int32_t *out) {
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

/* Exactly "true"/"false" for a switch, "lstm"/"cnn" for the encoder: a
 * writer spells them one way. An unknown encoder is a newer writer's
 * (DCRW_EUNSUPPORTED), a malformed switch a broken file (DCRW_EFORMAT). */
static int meta_word(const dcrw_field *f, const char *s, int32_t *out) {
    const int enc = f->type == DCRW_FIELD_ENCODER;
    const char *zero = enc ? "lstm" : "false", *one = enc ? "cnn" : "true";
    if (!strcmp(s, zero) || !strcmp(s, one)) {
        *out = !strcmp(s, one);
        return DCRW_OK;
    }
    if (enc) return dcrw_fail(DCRW_EUNSUPPORTED, "unknown encoder \"%.40s\" (lstm or cnn)", s);
    return dcrw_fail(DCRW_EFORMAT, "metadata %s = \"%.40s\" is not \"true\" or \"false\"", f->key,
                     s);
}

/* Field f of c from its metadata value s; range and finiteness are the
 * configuration's to check ("nan" parses, and validation refuses it). */
static int meta_field(const dcrw_field *f, const char *s, dcrw_config *c) {
    int32_t v = 0;
    int rc;
    if (f->type == DCRW_FIELD_FLOAT) {
        float x;
        if (dcrw_parse_float(s, &x))
            return dcrw_fail(DCRW_EFORMAT, "metadata %s = \"%.40s\" is not a number", f->key, s);
        memcpy((char *)c + f->offset, &x, sizeof x);
        return DCRW_OK;
    }
    if (f->type == DCRW_FIELD_INT)
        rc = meta_int(f->key, s, &v);
    else
        rc = meta_word(f, s, &v);
    if (!rc) memcpy((char *)c + f->offset, &v, sizeof v);
    return rc;
}

/* The configuration in f's metadata: the switches first, since they say
 * which sizes are required (MODEL.md §8 lets a writer leave out, or put 0
 * in, a size the architecture does not use); a present value must parse
 * whether or not it is used. */
static int config_from_meta(const st_file *f, dcrw_config *c) {
    const char *fmt = dcrw_st_meta(f, "dcrw.format");
    if (!fmt) return dcrw_fail(DCRW_ENOTFOUND, "missing metadata key dcrw.format");
    if (strcmp(fmt, "1") != 0)
        return dcrw_fail(DCRW_EUNSUPPORTED, "checkpoint format \"%.40s\", this library reads \"1\"",
                         fmt);
    memset(c, 0, sizeof *c);
    c->size = sizeof *c;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < DCRW_NFIELDS; i++) {
            const dcrw_field *fd = &dcrw_config_fields[i];
            const int is_switch = fd->type == DCRW_FIELD_BOOL || fd->type == DCRW_FIELD_ENCODER;
            if (is_switch != (pass == 0)) continue;
            const char *s = dcrw_st_meta(f, fd->key);
            if (!s && (fd->optional || !dcrw_config_uses(c, fd))) continue;
            if (!s) return dcrw_fail(DCRW_ENOTFOUND, "missing metadata key %s", fd->key);
            int rc = meta_field(fd, s, c);
            if (rc) return rc;
        }
    }
    return DCRW_OK;
}

/* The configuration of f, derived, and every tensor it needs present with
 * its shape: all a loader checks before it allocates or reads data. Every
 * tensor must be there BEFORE anything is allocated: the parameters' size
 * is then bounded by the file's, and a small file that declares a huge
 * model is refused instead of costing gigabytes (found by the fuzzer). */
static int check_file(const st_file *f, dcrw_config *cfg, dcrw_dims *d, dcrw_layout *lay) {
    int rc = config_from_meta(f, cfg);
    if (rc) return rc;
    rc = dcrw_config_derive(cfg, d, lay);
    if (rc == DCRW_EINVAL || rc == DCRW_ECONFIG) {
        /* copy first: the message buffer is also the destination (and as
         * large: a smaller copy warns of truncation where the compiler sees
         * both, as in the amalgamation) */
        char why[512];
        snprintf(why, sizeof why, "%s", dcrw_last_error());
        return dcrw_fail(DCRW_ECONFIG, "checkpoint configuration: %s", why);
    }
    for (int i = 0; i < lay->ntensors && !rc; i++) {
        const dcrw_tensor_info *t = &lay->t[lay->order[i]];
        check_tensor(f, dcrw_tensor_names[lay->order[i]], t->ndim, t->shape, &rc);
    }
    return rc;
}

int dcrw_ckpt_model_from_file(const st_file *f, dcrw_model **out) {
    assert(f && out);
    *out = NULL;
    dcrw_config cfg;
    dcrw_dims d;
    dcrw_layout lay;
    int rc = check_file(f, &cfg, &d, &lay);
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

/* ---- what a checkpoint holds, from its header ----------------------------- */

/* 1 if f has tensor name, F32, of this shape (a quiet check_tensor: its
 * absence is an answer, not an error). */
static int has_tensor(const st_file *f, const char *name, int ndim, const int64_t *shape) {
    const st_tensor *t = dcrw_st_find(f, name);
    if (!t || t->dtype != ST_F32 || t->ndim != ndim) return 0;
    for (int k = 0; k < ndim; k++)
        if (t->shape[k] != shape[k]) return 0;
    return 1;
}

/* 1 if f holds both Adam moments of every tensor of lay */
static int has_moments(const st_file *f, const dcrw_layout *lay) {
    for (int k = 0; k < lay->ntensors; k++) {
        const int id = lay->order[k];
        for (int which = 0; which < 2; which++) {
            char name[MAX_NAME];
            moment_name(name, which, id);
            if (!has_tensor(f, name, lay->t[id].ndim, lay->t[id].shape)) return 0;
        }
    }
    return 1;
}

/* sizeof(dcrw_checkpoint_summary) of 0.3, its first version: later ones
 * append fields, so a caller's struct holds at least this much */
#define SUMMARY_SIZE_V1 (offsetof(dcrw_checkpoint_summary, tensors) + sizeof(size_t))

/* The summary of a checked file f whose tensors are laid out as lay. */
static int summarize(const st_file *f, const char *path, const dcrw_layout *lay,
                     dcrw_checkpoint_summary *s) {
    memset(s, 0, sizeof *s);
    s->size = sizeof *s;
    const char *preset = dcrw_st_meta(f, "dcrw.preset");
    dcrw_preset p;
    /* a label for people: shown only when it is one this library writes */
    if (preset && (!strcmp(preset, "custom") || dcrw_preset_from_name(preset, &p) == DCRW_OK))
        snprintf(s->preset, sizeof s->preset, "%s", preset);
    s->has_step = dcrw_st_meta(f, "dcrw.step") != NULL;
    int rc = meta_step(f, path, &s->step);
    if (rc) return rc;
    s->optimizer = has_moments(f, lay);
    s->params = lay->total;
    s->tensors = (size_t)lay->ntensors;
    return DCRW_OK;
}

int dcrw_checkpoint_info(const char *path, dcrw_checkpoint_summary *info, dcrw_config *cfg) {
    DCRW_CHECK_ARG(path && info, "dcrw_checkpoint_info: NULL argument");
    DCRW_CHECK_ARG(info->size >= SUMMARY_SIZE_V1,
                   "dcrw_checkpoint_info: info->size is %u, set it to "
                   "sizeof(dcrw_checkpoint_summary) (at least %zu)",
                   (unsigned)info->size, SUMMARY_SIZE_V1);
    DCRW_CHECK_ARG(!cfg || cfg->size >= DCRW_CONFIG_SIZE_V1,
                   "dcrw_checkpoint_info: cfg->size is %u, set it to sizeof(dcrw_config)",
                   cfg ? (unsigned)cfg->size : 0u);
    st_file f;
    int rc = dcrw_st_read_header(&f, path);
    if (rc) return rc;
    dcrw_config c;
    dcrw_dims d;
    dcrw_layout lay;
    dcrw_checkpoint_summary s;
    if (!(rc = check_file(&f, &c, &d, &lay))) rc = summarize(&f, path, &lay, &s);
    dcrw_st_free(&f);
    if (rc) return rc;
    /* as a model keeps it: sizes the architecture does not use are 0 */
    dcrw_config_normalize(&c);
    if (cfg) dcrw_config_export(&c, cfg, "dcrw_checkpoint_info");
    /* a caller built against an older header gets the fields it knows */
    const size_t n = info->size < sizeof s ? info->size : sizeof s;
    memcpy(info, &s, n);
    info->size = (uint32_t)n;
    return DCRW_OK;
}
