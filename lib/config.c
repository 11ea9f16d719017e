/* The configuration's room: the table of its fields (config.h), presets,
 * the fields by name, validation, and the dims a valid one implies. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* newlocale, uselocale */
#endif
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "config.h"

/* ---- the table ------------------------------------------------------------ */

#define ROW(n, ty, lo, hi, use, opt, p0, p1, p2, p3, p4)                                           \
    {#n,        "dcrw." #n, DCRW_FIELD_##ty,     offsetof(dcrw_config, n), lo, hi,                 \
     USE_##use, opt,        {p0, p1, p2, p3, p4}},
const dcrw_field dcrw_config_fields[DCRW_NFIELDS] = {DCRW_CONFIG_FIELDS(ROW)};

/* a row's C type must be its TYPE's, and every field of the struct must
 * have a row (all fields are 4 bytes, so the sizes add up exactly) */
#define IS_INT32(x) _Generic((x), int32_t : 1, default : 0)
#define IS_FLOAT(x) _Generic((x), float : 1, default : 0)
#define TYPE_INT IS_INT32
#define TYPE_BOOL IS_INT32
#define TYPE_ENCODER IS_INT32
#define TYPE_FLOAT IS_FLOAT
#define ROW_TYPE_CHECK(n, ty, ...)                                                                 \
    _Static_assert(TYPE_##ty(((dcrw_config *)0)->n), "dcrw_config." #n ": not of its row's type");
DCRW_CONFIG_FIELDS(ROW_TYPE_CHECK)
_Static_assert(sizeof(dcrw_config) == sizeof(uint32_t) + 4 * DCRW_NFIELDS,
               "a field of dcrw_config has no row in DCRW_CONFIG_FIELDS");

const dcrw_field *dcrw_config_find_field(const char *name) {
    for (int i = 0; i < DCRW_NFIELDS; i++)
        if (!strcmp(name, dcrw_config_fields[i].name)) return &dcrw_config_fields[i];
    return NULL;
}

int32_t dcrw_config_int(const dcrw_config *c, const dcrw_field *f) {
    int32_t v;
    memcpy(&v, (const char *)c + f->offset, sizeof v);
    return v;
}

double dcrw_config_number(const dcrw_config *c, const dcrw_field *f) {
    if (f->type != DCRW_FIELD_FLOAT) return dcrw_config_int(c, f);
    float v;
    memcpy(&v, (const char *)c + f->offset, sizeof v);
    return v;
}

int dcrw_config_uses(const dcrw_config *c, const dcrw_field *f) {
    switch (f->use) {
    case USE_LSTM:
        return c->encoder != DCRW_ENCODER_CNN;
    case USE_CNN:
        return c->encoder == DCRW_ENCODER_CNN;
    case USE_READ:
        return c->read_attention != 0;
    case USE_WRITE:
        return c->write_attention != 0 && !c->classify;
    case USE_GEN:
        return !c->classify;
    default:
        return 1;
    }
}

/* Decimal text must not depend on the caller's locale (a "," decimal point
 * would make files unreadable elsewhere): this thread switches to "C" for
 * the conversion, and back. */
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

int dcrw_config_field_text(const dcrw_config *c, const dcrw_field *f, char *buf, size_t len) {
    int n;
    const int32_t v = f->type == DCRW_FIELD_FLOAT ? 0 : dcrw_config_int(c, f);
    if (f->type == DCRW_FIELD_FLOAT) {
        /* 9 significant digits round-trip every float exactly */
        c_numeric loc;
        c_numeric_begin(&loc);
        n = snprintf(buf, len, "%.9g", dcrw_config_number(c, f));
        c_numeric_end(&loc);
    } else if (f->type == DCRW_FIELD_BOOL && (v == 0 || v == 1)) {
        n = snprintf(buf, len, "%s", v ? "true" : "false");
    } else if (f->type == DCRW_FIELD_ENCODER && (v == 0 || v == 1)) {
        n = snprintf(buf, len, "%s", v == DCRW_ENCODER_CNN ? "cnn" : "lstm");
    } else {
        n = snprintf(buf, len, "%d", (int)v); /* an invalid switch shows as it is */
    }
    return n >= 0 && (size_t)n < len ? 0 : -1;
}

int dcrw_parse_float(const char *s, float *out) {
    /* strtof would skip leading blanks */
    if (*s == '\0' || isspace((unsigned char)*s)) return -1;
    c_numeric loc;
    c_numeric_begin(&loc);
    char *end;
    float v = strtof(s, &end);
    c_numeric_end(&loc);
    if (end == s || *end != '\0') return -1;
    *out = v;
    return 0;
}

/* ---- presets -------------------------------------------------------------- */

static const char *const preset_names[] = {"draw", "draw-noattn", "dcrw", "dcrw-noread",
                                           "draw-classify"};
#define NPRESETS ((int)(sizeof preset_names / sizeof preset_names[0]))
_Static_assert(NPRESETS == DCRW_NPRESETS, "a preset without a column, or a column without a name");

const char *dcrw_preset_name(dcrw_preset preset) {
    if ((unsigned)preset >= (unsigned)NPRESETS) return NULL;
    return preset_names[preset];
}

int dcrw_preset_from_name(const char *name, dcrw_preset *out) {
    DCRW_CHECK_ARG(name && out, "dcrw_preset_from_name: NULL argument");
    for (int i = 0; i < NPRESETS; i++) {
        if (strcmp(name, preset_names[i]) == 0) {
            *out = (dcrw_preset)i;
            return DCRW_OK;
        }
    }
    return dcrw_fail(DCRW_ENOTFOUND,
                     "unknown preset \"%.64s\" (expected draw, draw-noattn, dcrw, dcrw-noread "
                     "or draw-classify)",
                     name);
}

static void set_number(dcrw_config *c, const dcrw_field *f, double v) {
    if (f->type == DCRW_FIELD_FLOAT) {
        float x = (float)v;
        memcpy((char *)c + f->offset, &x, sizeof x);
    } else {
        int32_t x = (int32_t)v;
        memcpy((char *)c + f->offset, &x, sizeof x);
    }
}

static int preset_into(dcrw_config *cfg, dcrw_preset preset, size_t size) {
    DCRW_CHECK_ARG(cfg, "dcrw_config_preset: cfg is NULL");
    if ((unsigned)preset >= (unsigned)NPRESETS)
        return dcrw_fail(DCRW_EINVAL, "dcrw_config_preset: unknown preset %d", (int)preset);
    dcrw_config c;
    memset(&c, 0, sizeof c);
    for (int i = 0; i < DCRW_NFIELDS; i++)
        set_number(&c, &dcrw_config_fields[i], dcrw_config_fields[i].preset[preset]);
    c.size = (uint32_t)size;
    memcpy(cfg, &c, size);
    return DCRW_OK;
}

int dcrw_config_preset(dcrw_config *cfg, dcrw_preset preset) {
    return preset_into(cfg, preset, sizeof *cfg);
}

#ifdef DCRW_SYMVER
/* A program built against the header of 0.1 to 0.4 has a dcrw_config of
 * DCRW_CONFIG_SIZE_V1 bytes and calls dcrw_config_preset@DCRW_0.1, which
 * fills that many (the classifier's presets do not fit it); programs built
 * since link to dcrw_config_preset@@DCRW_0.5. The other functions read
 * cfg->size. The old one is exported through its alias alone (the version
 * script keeps the name _v1 local). */
DCRW_API int dcrw_config_preset_v1(dcrw_config *cfg, dcrw_preset preset);
DCRW_API int dcrw_config_preset_v1(dcrw_config *cfg, dcrw_preset preset) {
    if (preset == DCRW_PRESET_DRAW_CLASSIFY)
        return dcrw_fail(DCRW_EINVAL, "dcrw_config_preset: draw-classify needs the dcrw_config "
                                      "of libdcrw 0.5 or later (rebuild against its header)");
    return preset_into(cfg, preset, DCRW_CONFIG_SIZE_V1);
}
__asm__(".symver dcrw_config_preset_v1,dcrw_config_preset@DCRW_0.1");
/* remove: the plain name would otherwise stay too, and take DCRW_0.1 from
 * the version script as a second default */
__asm__(".symver dcrw_config_preset,dcrw_config_preset@@DCRW_0.5,remove");
#endif

/* ---- fields by name (public) ---------------------------------------------- */

int dcrw_config_field_count(void) {
    return DCRW_NFIELDS;
}

int dcrw_config_field(int i, const char **name, int *type, size_t *offset, double *min,
                      double *max) {
    DCRW_CHECK_ARG(i >= 0 && i < DCRW_NFIELDS, "dcrw_config_field: index %d is not in [0, %d)", i,
                   DCRW_NFIELDS);
    const dcrw_field *f = &dcrw_config_fields[i];
    if (name) *name = f->name;
    if (type) *type = f->type;
    if (offset) *offset = f->offset;
    if (min) *min = f->lo;
    if (max) *max = f->hi;
    return DCRW_OK;
}

/* The row of name for a call of fn on a struct of `size` bytes, or NULL
 * with the error in *rc. */
static const dcrw_field *field_for(const char *fn, const char *name, uint32_t size, int *rc) {
    const dcrw_field *f = dcrw_config_find_field(name);
    if (!f) {
        char list[256];
        size_t n = 0;
        for (int i = 0; i < DCRW_NFIELDS && n < sizeof list; i++)
            n += (size_t)snprintf(list + n, sizeof list - n, i ? ", %s" : "%s",
                                  dcrw_config_fields[i].name);
        *rc = dcrw_fail(DCRW_ENOTFOUND, "%s: unknown configuration field \"%.64s\" (fields: %s)",
                        fn, name, list);
        return NULL;
    }
    if (size < f->offset + 4) {
        *rc = dcrw_fail(DCRW_EINVAL,
                        "%s: cfg->size is %u, too small for %s (set it to sizeof(dcrw_config); "
                        "dcrw_config_preset() does)",
                        fn, (unsigned)size, f->name);
        return NULL;
    }
    *rc = DCRW_OK;
    return f;
}

/* An int32 from text that is exactly an optional sign and decimal digits. */
static int parse_int32(const char *s, int32_t *out) {
    const char *p = s + (*s == '-' || *s == '+');
    if (!isdigit((unsigned char)*p)) return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end != '\0' || errno == ERANGE || v < INT32_MIN || v > INT32_MAX) return -1;
    *out = (int32_t)v;
    return 0;
}

/* The spellings a person types for a switch or an encoder: the value, or
 * -1 for none of them. */
static int parse_word(const char *s, const char *const *zero, const char *const *one) {
    for (int k = 0; zero[k]; k++)
        if (!strcmp(s, zero[k])) return 0;
    for (int k = 0; one[k]; k++)
        if (!strcmp(s, one[k])) return 1;
    return -1;
}

/* value parsed for field f into *v, or DCRW_EINVAL saying what f takes */
static int parse_value(const dcrw_field *f, const char *value, double *v) {
    static const char *const no[] = {"0", "false", "no", NULL}, *const yes[] = {"1", "true", "yes",
                                                                                NULL};
    static const char *const lstm[] = {"lstm", "0", NULL}, *const cnn[] = {"cnn", "1", NULL};
    int32_t i = 0;
    float x = 0;
    int w;
    switch (f->type) {
    case DCRW_FIELD_BOOL:
        if ((w = parse_word(value, no, yes)) < 0) break;
        return *v = w, DCRW_OK;
    case DCRW_FIELD_ENCODER:
        if ((w = parse_word(value, lstm, cnn)) < 0) break;
        return *v = w, DCRW_OK;
    case DCRW_FIELD_FLOAT:
        if (dcrw_parse_float(value, &x) || !isfinite(x)) break;
        return *v = x, DCRW_OK;
    default:
        if (parse_int32(value, &i)) break;
        return *v = i, DCRW_OK;
    }
    static const char *const takes[] = {"an integer", "true or false (yes/no, 1/0)", "lstm or cnn",
                                        "a finite number"};
    return dcrw_fail(DCRW_EINVAL, "%s: \"%.64s\" is not %s", f->name, value, takes[f->type]);
}

int dcrw_config_set(dcrw_config *cfg, const char *name, const char *value) {
    DCRW_CHECK_ARG(cfg && name && value, "dcrw_config_set: NULL argument");
    int rc;
    const dcrw_field *f = field_for("dcrw_config_set", name, cfg->size, &rc);
    if (!f) return rc;
    double v = 0;
    if ((rc = parse_value(f, value, &v))) return rc;
    /* a size only some architectures use may be 0 (unused) */
    const int unused_ok = f->use != USE_ALWAYS && v == 0;
    if (!unused_ok && (v < f->lo || v > f->hi))
        return dcrw_fail(DCRW_ECONFIG, "%s = %.64s is out of range [%g, %g]%s", f->name, value,
                         f->lo, f->hi, f->use != USE_ALWAYS ? " (or 0 when unused)" : "");
    set_number(cfg, f, v);
    return DCRW_OK;
}

int dcrw_config_get(const dcrw_config *cfg, const char *name, char *buf, size_t len) {
    DCRW_CHECK_ARG(cfg && name && buf, "dcrw_config_get: NULL argument");
    int rc;
    const dcrw_field *f = field_for("dcrw_config_get", name, cfg->size, &rc);
    if (!f) return rc;
    if (dcrw_config_field_text(cfg, f, buf, len)) {
        if (len > 0) buf[0] = '\0';
        return dcrw_fail(DCRW_EINVAL, "dcrw_config_get: %zu bytes are too few for %s", len,
                         f->name);
    }
    return DCRW_OK;
}

/* dcrw_config_same over the fields within the first `size` bytes */
static int same_within(const dcrw_config *a, const dcrw_config *b, size_t size) {
    for (int i = 0; i < DCRW_NFIELDS; i++) {
        const dcrw_field *f = &dcrw_config_fields[i];
        /* the switches are ALWAYS fields: if they differ, so does the result */
        if (f->offset + 4 > size || !dcrw_config_uses(a, f)) continue;
        if (dcrw_config_number(a, f) != dcrw_config_number(b, f)) return 0;
    }
    return 1;
}

int dcrw_config_same(const dcrw_config *a, const dcrw_config *b) {
    return same_within(a, b, sizeof *a);
}

int dcrw_config_equal(const dcrw_config *a, const dcrw_config *b) {
    DCRW_CHECK_ARG(a && b, "dcrw_config_equal: NULL argument");
    DCRW_CHECK_ARG(a->size >= DCRW_CONFIG_SIZE_V1 && b->size >= DCRW_CONFIG_SIZE_V1,
                   "dcrw_config_equal: sizes %u and %u; set them to sizeof(dcrw_config)",
                   (unsigned)a->size, (unsigned)b->size);
    return same_within(a, b, a->size < b->size ? a->size : b->size);
}

int dcrw_config_export(const dcrw_config *src, dcrw_config *out, const char *fn) {
    DCRW_CHECK_ARG(out->size >= DCRW_CONFIG_SIZE_V1,
                   "%s: out->size is %u, set it to sizeof(dcrw_config) (at least %u)", fn,
                   (unsigned)out->size, DCRW_CONFIG_SIZE_V1);
    /* a caller built against another version of the header gets the
     * fields both know, and out->size says how many bytes that is */
    const size_t n = out->size < sizeof *out ? out->size : sizeof *out;
    memcpy(out, src, n);
    out->size = (uint32_t)n;
    return DCRW_OK;
}

void dcrw_config_normalize(dcrw_config *cfg) {
    for (int i = 0; i < DCRW_NFIELDS; i++)
        if (!dcrw_config_uses(cfg, &dcrw_config_fields[i]))
            set_number(cfg, &dcrw_config_fields[i], 0);
}

/* ---- validation and dims -------------------------------------------------- */

/* Every matrix the model or a batch of 1 derives must be indexable with a
 * BLAS int; bigger models are far beyond what this library is for. */
static int check_count(const char *what, int64_t n) {
    if (n > INT32_MAX)
        return dcrw_fail(DCRW_ECONFIG, "%s has %lld values, more than 2^31-1", what, (long long)n);
    return DCRW_OK;
}

/* DCRW_OK if c's value of f is in its range (f used), else DCRW_ECONFIG
 * naming it. */
static int check_field(const dcrw_config *c, const dcrw_field *f) {
    if (f->type == DCRW_FIELD_FLOAT) {
        double v = dcrw_config_number(c, f);
        if (!isfinite(v) || v < f->lo || v > f->hi)
            return dcrw_fail(DCRW_ECONFIG, "%s = %g must be finite and within [%g, %g]", f->name, v,
                             f->lo, f->hi);
        return DCRW_OK;
    }
    const int32_t v = dcrw_config_int(c, f);
    int32_t lo = (int32_t)f->lo;
    /* the CNN's two 2×2 poolings need a window of at least 4×4 */
    if (f->offset == offsetof(dcrw_config, read_n) && c->encoder == DCRW_ENCODER_CNN) lo = 4;
    if (v < lo || v > (int32_t)f->hi)
        return dcrw_fail(DCRW_ECONFIG, "%s = %d is out of range [%d, %d]", f->name, (int)v, (int)lo,
                         (int)f->hi);
    return DCRW_OK;
}

/* Every field the architecture uses in its range: the switches first,
 * since they say which of the others are used. */
static int check_fields(const dcrw_config *c) {
    int rc;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < DCRW_NFIELDS; i++) {
            const dcrw_field *f = &dcrw_config_fields[i];
            const int is_switch = f->type == DCRW_FIELD_BOOL || f->type == DCRW_FIELD_ENCODER;
            if (is_switch != (pass == 0) || !dcrw_config_uses(c, f)) continue;
            if ((rc = check_field(c, f))) return rc;
        }
    }
    if (c->encoder == DCRW_ENCODER_CNN && !c->read_attention && (c->height < 4 || c->width < 4))
        return dcrw_fail(DCRW_ECONFIG,
                         "a CNN encoder without read attention needs height and width >= 4, "
                         "got %dx%d",
                         (int)c->height, (int)c->width);
    if (c->classify && (c->encoder != DCRW_ENCODER_LSTM || !c->read_attention))
        return dcrw_fail(DCRW_ECONFIG, "the classifier (classify = true) needs encoder = lstm and "
                                       "read_attention = true");
    /* one class is no condition, and a classifier needs two to choose from */
    if (c->classes == 1 || (c->classify && c->classes < 2))
        return dcrw_fail(DCRW_ECONFIG, "classes = %d: a %s needs at least 2 classes",
                         (int)c->classes, c->classify ? "classifier" : "conditional model");
    return DCRW_OK;
}

int dcrw_config_import(const dcrw_config *cfg, dcrw_config *out) {
    DCRW_CHECK_ARG(cfg, "config is NULL");
    /* this version's struct or 0.1's; a larger size is a newer header than
     * this library, any other a caller that forgot to set it */
    if (cfg->size != sizeof(dcrw_config) && cfg->size != DCRW_CONFIG_SIZE_V1)
        return dcrw_fail(DCRW_EINVAL, "config size is %u, expected sizeof(dcrw_config) = %zu",
                         (unsigned)cfg->size, sizeof(dcrw_config));
    memset(out, 0, sizeof *out);
    memcpy(out, cfg, cfg->size);
    out->size = sizeof *out;
    return DCRW_OK;
}

int dcrw_dims_from_config(const dcrw_config *caller, dcrw_dims *d) {
    dcrw_config c;
    int rc = dcrw_config_import(caller, &c);
    if (rc) return rc;
    const dcrw_config *cfg = &c;
    if ((rc = check_fields(cfg))) return rc;
    const int cnn = cfg->encoder == DCRW_ENCODER_CNN;
    dcrw_dims r;
    memset(&r, 0, sizeof r);
    r.C = cfg->channels;
    r.H = cfg->height;
    r.W = cfg->width;
    int64_t P = (int64_t)r.C * r.H * r.W;
    if (P > (1 << 24))
        return dcrw_fail(DCRW_ECONFIG, "channels*height*width = %lld exceeds 2^24", (long long)P);
    r.P = (int)P;
    r.T = cfg->glimpses;
    r.cnn = cnn;
    r.ra = cfg->read_attention;
    r.E = cnn ? 0 : cfg->enc_size;
    r.Nr = r.ra ? cfg->read_n : 0;
    if (cfg->classify) {
        /* MODEL.md §9: the read of x alone into the LSTM; K logits */
        r.cls = 1;
        r.K = cfg->classes;
        int64_t R = (int64_t)r.C * r.Nr * r.Nr;
        if ((rc = check_count("the read r_t", R))) return rc;
        r.R = r.Rin = r.Q = (int)R;
        if ((rc = check_count("enc.lstm.weight_ih", 4 * (int64_t)r.E * r.Rin))) return rc;
        if ((rc = check_count("enc.lstm.weight_hh", 4 * (int64_t)r.E * r.E))) return rc;
        if ((rc = check_count("class.weight", (int64_t)r.K * r.E))) return rc;
        *d = r;
        return DCRW_OK;
    }
    r.D = cfg->dec_size;
    r.Z = cfg->z_size;
    r.K = cfg->classes; /* MODEL.md §10: 0, or the conditional model's classes */
    r.Zw = r.Z + r.K;
    r.wa = cfg->write_attention;
    r.Nw = r.wa ? cfg->write_n : 0;
    r.K1 = cnn ? cfg->conv1 : 0;
    r.K2 = cnn ? cfg->conv2 : 0;
    int64_t R = r.ra ? 2 * (int64_t)r.C * r.Nr * r.Nr : 2 * P;
    if ((rc = check_count("the read r_t", R))) return rc;
    r.R = (int)R;
    if (!cnn) {
        if ((rc = check_count("the encoder input", R + r.D + r.K))) return rc;
        r.Rin = r.R + r.D + r.K;
        if ((rc = check_count("enc.lstm.weight_ih", 4 * (int64_t)r.E * r.Rin))) return rc;
        if ((rc = check_count("enc.lstm.weight_hh", 4 * (int64_t)r.E * r.E))) return rc;
        r.Q = r.Qw = r.E;
    } else {
        r.Cin = r.ra ? 2 * r.C : r.C;
        r.ch = r.ra ? r.Nr : r.H;
        r.cw = r.ra ? r.Nr : r.W;
        int64_t F = (int64_t)r.K2 * ((r.ch / 2) / 2) * ((r.cw / 2) / 2);
        int64_t act = (int64_t)r.ch * r.cw * (r.K1 > r.Cin ? r.K1 : r.Cin);
        if ((rc = check_count("the CNN activations", act * 9))) return rc;
        if ((rc = check_count("enc.conv2.weight", (int64_t)r.K2 * r.K1 * 9))) return rc;
        int64_t Q = F + (r.ra ? r.D : 0);
        if ((rc = check_count("e_t", Q + r.K))) return rc;
        r.F = (int)F;
        r.Q = (int)Q;
        r.Qw = r.Q + r.K;
    }
    if ((rc = check_count("q.mu.weight", (int64_t)r.Z * r.Qw))) return rc;
    if ((rc = check_count("dec.lstm.weight_hh", 4 * (int64_t)r.D * (r.D > r.Zw ? r.D : r.Zw))))
        return rc;
    int64_t Wout = r.wa ? (int64_t)r.C * r.Nw * r.Nw : P;
    if ((rc = check_count("write.weight", Wout * r.D))) return rc;
    r.Wout = (int)Wout;
    r.kappa = cfg->canvas_init;
    *d = r;
    return DCRW_OK;
}

int dcrw_config_derive(const dcrw_config *cfg, dcrw_dims *d, dcrw_layout *lay) {
    int rc = dcrw_dims_from_config(cfg, d);
    if (rc) return rc;
    dcrw_layout_init(lay, d);
    /* the whole parameter buffer must fit a BLAS int too */
    return check_count("the parameter buffer", (int64_t)lay->total);
}

int dcrw_config_validate(const dcrw_config *cfg) {
    dcrw_dims d;
    dcrw_layout lay;
    return dcrw_config_derive(cfg, &d, &lay);
}
