/* Presets, validation, and the sizes a configuration implies. */
#include <math.h>
#include <string.h>

#include "common.h"
#include "config.h"

static const char *const preset_names[] = {"draw", "draw-noattn", "dcrw", "dcrw-noread"};

const char *dcrw_preset_name(dcrw_preset preset) {
    if ((unsigned)preset >= sizeof preset_names / sizeof preset_names[0]) return NULL;
    return preset_names[preset];
}

int dcrw_preset_from_name(const char *name, dcrw_preset *out) {
    DCRW_CHECK_ARG(name && out, "dcrw_preset_from_name: NULL argument");
    for (unsigned i = 0; i < sizeof preset_names / sizeof preset_names[0]; i++) {
        if (strcmp(name, preset_names[i]) == 0) {
            *out = (dcrw_preset)i;
            return DCRW_OK;
        }
    }
    return dcrw_fail(DCRW_ENOTFOUND,
                     "unknown preset \"%.64s\" (expected draw, draw-noattn, dcrw or dcrw-noread)",
                     name);
}

int dcrw_config_preset(dcrw_config *cfg, dcrw_preset preset) {
    DCRW_CHECK_ARG(cfg, "dcrw_config_preset: cfg is NULL");
    dcrw_config c;
    memset(&c, 0, sizeof c);
    c.size = sizeof c;
    c.channels = 1;
    c.height = 28;
    c.width = 28;
    c.dec_size = 256;
    c.z_size = 100;
    switch (preset) {
    case DCRW_PRESET_DRAW:
    case DCRW_PRESET_DRAW_NOATTN:
        c.glimpses = 64;
        c.enc_size = 256;
        c.encoder = DCRW_ENCODER_LSTM;
        c.read_attention = c.write_attention = preset == DCRW_PRESET_DRAW;
        c.read_n = c.read_attention ? 2 : 0;
        c.write_n = c.write_attention ? 5 : 0;
        break;
    case DCRW_PRESET_DCRW:
    case DCRW_PRESET_DCRW_NOREAD:
        c.glimpses = 10;
        c.encoder = DCRW_ENCODER_CNN;
        c.conv1 = 32;
        c.conv2 = 64;
        c.read_attention = preset == DCRW_PRESET_DCRW;
        c.write_attention = 1;
        c.read_n = c.read_attention ? 7 : 0;
        c.write_n = 5;
        break;
    default:
        return dcrw_fail(DCRW_EINVAL, "dcrw_config_preset: unknown preset %d", (int)preset);
    }
    *cfg = c;
    return DCRW_OK;
}

static int check_range(const char *field, int32_t v, int32_t lo, int32_t hi) {
    if (v < lo || v > hi)
        return dcrw_fail(DCRW_ECONFIG, "%s = %d is out of range [%d, %d]", field, (int)v, (int)lo,
                         (int)hi);
    return DCRW_OK;
}

#define CHECK_RANGE(field, lo, hi)                                                                 \
    do {                                                                                           \
        int rc_ = check_range(#field, cfg->field, lo, hi);                                         \
        if (rc_) return rc_;                                                                       \
    } while (0)

/* Every matrix the model or a batch of 1 derives must be indexable with a
 * BLAS int; bigger models are far beyond what this library is for. */
static int check_count(const char *what, int64_t n) {
    if (n > INT32_MAX)
        return dcrw_fail(DCRW_ECONFIG, "%s has %lld values, more than 2^31-1", what, (long long)n);
    return DCRW_OK;
}

int dcrw_dims_from_config(const dcrw_config *cfg, dcrw_dims *d) {
    DCRW_CHECK_ARG(cfg, "config is NULL");
    /* Only this version's layout exists so far; a larger size is a newer
     * header than this library, a smaller one a caller that forgot it. */
    if (cfg->size != sizeof(dcrw_config))
        return dcrw_fail(DCRW_EINVAL, "config size is %u, expected sizeof(dcrw_config) = %zu",
                         (unsigned)cfg->size, sizeof(dcrw_config));
    CHECK_RANGE(channels, 1, 64);
    CHECK_RANGE(height, 1, 4096);
    CHECK_RANGE(width, 1, 4096);
    CHECK_RANGE(glimpses, 1, 4096);
    CHECK_RANGE(dec_size, 1, 16384);
    CHECK_RANGE(z_size, 1, 16384);
    CHECK_RANGE(encoder, 0, 1);
    CHECK_RANGE(read_attention, 0, 1);
    CHECK_RANGE(write_attention, 0, 1);
    if (!isfinite(cfg->canvas_init) || fabsf(cfg->canvas_init) > 1e4f)
        return dcrw_fail(DCRW_ECONFIG, "canvas_init = %g must be finite and within ±1e4",
                         (double)cfg->canvas_init);
    const int cnn = cfg->encoder == DCRW_ENCODER_CNN;
    if (!cnn) CHECK_RANGE(enc_size, 1, 16384);
    if (cfg->read_attention) CHECK_RANGE(read_n, cnn ? 4 : 1, 1024);
    if (cfg->write_attention) CHECK_RANGE(write_n, 1, 1024);
    if (cnn) {
        CHECK_RANGE(conv1, 1, 4096);
        CHECK_RANGE(conv2, 1, 4096);
        if (!cfg->read_attention && (cfg->height < 4 || cfg->width < 4))
            return dcrw_fail(DCRW_ECONFIG,
                             "a CNN encoder without read attention needs height and width >= 4, "
                             "got %dx%d",
                             (int)cfg->height, (int)cfg->width);
    }

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
    r.D = cfg->dec_size;
    r.Z = cfg->z_size;
    r.cnn = cnn;
    r.ra = cfg->read_attention;
    r.wa = cfg->write_attention;
    r.E = cnn ? 0 : cfg->enc_size;
    r.Nr = r.ra ? cfg->read_n : 0;
    r.Nw = r.wa ? cfg->write_n : 0;
    r.K1 = cnn ? cfg->conv1 : 0;
    r.K2 = cnn ? cfg->conv2 : 0;
    int64_t R = r.ra ? 2 * (int64_t)r.C * r.Nr * r.Nr : 2 * P;
    int rc;
    if ((rc = check_count("the read r_t", R))) return rc;
    r.R = (int)R;
    if (!cnn) {
        if ((rc = check_count("the encoder input", R + r.D))) return rc;
        r.Rin = r.R + r.D;
        if ((rc = check_count("enc.lstm.weight_ih", 4 * (int64_t)r.E * r.Rin))) return rc;
        if ((rc = check_count("enc.lstm.weight_hh", 4 * (int64_t)r.E * r.E))) return rc;
        r.Q = r.E;
    } else {
        r.Cin = r.ra ? 2 * r.C : r.C;
        r.ch = r.ra ? r.Nr : r.H;
        r.cw = r.ra ? r.Nr : r.W;
        int64_t F = (int64_t)r.K2 * ((r.ch / 2) / 2) * ((r.cw / 2) / 2);
        int64_t act = (int64_t)r.ch * r.cw * (r.K1 > r.Cin ? r.K1 : r.Cin);
        if ((rc = check_count("the CNN activations", act * 9))) return rc;
        if ((rc = check_count("enc.conv2.weight", (int64_t)r.K2 * r.K1 * 9))) return rc;
        int64_t Q = F + (r.ra ? r.D : 0);
        if ((rc = check_count("e_t", Q))) return rc;
        r.F = (int)F;
        r.Q = (int)Q;
    }
    if ((rc = check_count("q.mu.weight", (int64_t)r.Z * r.Q))) return rc;
    if ((rc = check_count("dec.lstm.weight_hh", 4 * (int64_t)r.D * (r.D > r.Z ? r.D : r.Z))))
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

int dcrw_config_same(const dcrw_config *a, const dcrw_config *b) {
    return a->channels == b->channels && a->height == b->height && a->width == b->width &&
           a->glimpses == b->glimpses && a->enc_size == b->enc_size && a->dec_size == b->dec_size &&
           a->z_size == b->z_size && a->read_n == b->read_n && a->write_n == b->write_n &&
           a->conv1 == b->conv1 && a->conv2 == b->conv2 && a->encoder == b->encoder &&
           a->read_attention == b->read_attention && a->write_attention == b->write_attention &&
           a->canvas_init == b->canvas_init;
}
