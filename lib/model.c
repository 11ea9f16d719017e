/* The model store: tensor table, flat buffer, initialisation, accessors. */
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "common.h"
#include "model.h"
#include "rng.h"

const char *const dcrw_tensor_names[P_COUNT] = {
    "enc.lstm.weight_ih", "enc.lstm.weight_hh", "enc.lstm.bias",    "enc.conv1.weight",
    "enc.conv1.bias",     "enc.conv2.weight",   "enc.conv2.bias",   "q.mu.weight",
    "q.mu.bias",          "q.logsigma.weight",  "q.logsigma.bias",  "dec.lstm.weight_ih",
    "dec.lstm.weight_hh", "dec.lstm.bias",      "read.attn.weight", "read.attn.bias",
    "write.attn.weight",  "write.attn.bias",    "write.weight",     "write.bias",
};

static void set_shape(dcrw_layout *lay, int id, int ndim, int64_t a, int64_t b, int64_t c,
                      int64_t e) {
    dcrw_tensor_info *t = &lay->t[id];
    int64_t s[4] = {a, b, c, e};
    t->present = 1;
    t->ndim = ndim;
    t->count = 1;
    for (int i = 0; i < 4; i++) {
        t->shape[i] = i < ndim ? s[i] : 0;
        if (i < ndim) t->count *= (size_t)s[i];
    }
}

void dcrw_layout_init(dcrw_layout *lay, const dcrw_dims *d) {
    memset(lay, 0, sizeof *lay);
    if (!d->cnn) {
        set_shape(lay, P_ENC_WIH, 2, 4 * (int64_t)d->E, d->Rin, 0, 0);
        set_shape(lay, P_ENC_WHH, 2, 4 * (int64_t)d->E, d->E, 0, 0);
        set_shape(lay, P_ENC_B, 1, 4 * (int64_t)d->E, 0, 0, 0);
    } else {
        set_shape(lay, P_CONV1_W, 4, d->K1, d->Cin, 3, 3);
        set_shape(lay, P_CONV1_B, 1, d->K1, 0, 0, 0);
        set_shape(lay, P_CONV2_W, 4, d->K2, d->K1, 3, 3);
        set_shape(lay, P_CONV2_B, 1, d->K2, 0, 0, 0);
    }
    set_shape(lay, P_MU_W, 2, d->Z, d->Q, 0, 0);
    set_shape(lay, P_MU_B, 1, d->Z, 0, 0, 0);
    set_shape(lay, P_LS_W, 2, d->Z, d->Q, 0, 0);
    set_shape(lay, P_LS_B, 1, d->Z, 0, 0, 0);
    set_shape(lay, P_DEC_WIH, 2, 4 * (int64_t)d->D, d->Z, 0, 0);
    set_shape(lay, P_DEC_WHH, 2, 4 * (int64_t)d->D, d->D, 0, 0);
    set_shape(lay, P_DEC_B, 1, 4 * (int64_t)d->D, 0, 0, 0);
    if (d->ra) {
        set_shape(lay, P_RATT_W, 2, 5, d->D, 0, 0);
        set_shape(lay, P_RATT_B, 1, 5, 0, 0, 0);
    }
    if (d->wa) {
        set_shape(lay, P_WATT_W, 2, 5, d->D, 0, 0);
        set_shape(lay, P_WATT_B, 1, 5, 0, 0, 0);
    }
    set_shape(lay, P_WRITE_W, 2, d->Wout, d->D, 0, 0);
    set_shape(lay, P_WRITE_B, 1, d->Wout, 0, 0, 0);
    /* tensors back to back, so the flat buffer is exactly their concatenation
     * (what an allreduce or a checkpoint's data section holds) */
    size_t off = 0;
    for (int id = 0; id < P_COUNT; id++) {
        if (!lay->t[id].present) continue;
        lay->t[id].offset = off;
        off += lay->t[id].count;
        lay->order[lay->ntensors++] = id;
    }
    lay->total = off;
}

void dcrw_views_init(dcrw_views *v, const dcrw_layout *lay, float *base) {
    float *ptr[P_COUNT];
    for (int id = 0; id < P_COUNT; id++)
        ptr[id] = lay->t[id].present && base ? base + lay->t[id].offset : NULL;
    v->enc_wih = ptr[P_ENC_WIH];
    v->enc_whh = ptr[P_ENC_WHH];
    v->enc_b = ptr[P_ENC_B];
    v->conv1_w = ptr[P_CONV1_W];
    v->conv1_b = ptr[P_CONV1_B];
    v->conv2_w = ptr[P_CONV2_W];
    v->conv2_b = ptr[P_CONV2_B];
    v->mu_w = ptr[P_MU_W];
    v->mu_b = ptr[P_MU_B];
    v->ls_w = ptr[P_LS_W];
    v->ls_b = ptr[P_LS_B];
    v->dec_wih = ptr[P_DEC_WIH];
    v->dec_whh = ptr[P_DEC_WHH];
    v->dec_b = ptr[P_DEC_B];
    v->ratt_w = ptr[P_RATT_W];
    v->ratt_b = ptr[P_RATT_B];
    v->watt_w = ptr[P_WATT_W];
    v->watt_b = ptr[P_WATT_B];
    v->write_w = ptr[P_WRITE_W];
    v->write_b = ptr[P_WRITE_B];
}

int dcrw_model_alloc(dcrw_model **out, const dcrw_config *cfg) {
    DCRW_CHECK_ARG(out, "model: out is NULL");
    *out = NULL;
    DCRW_CHECK_ARG(cfg, "model: config is NULL");
    int rc = dcrw_config_validate(cfg);
    if (rc) return rc;
    dcrw_model *m = dcrw_calloc(1, sizeof *m);
    if (!m) return DCRW_ENOMEM;
    static atomic_uint_fast64_t next_id = 1;
    m->id = atomic_fetch_add(&next_id, 1);
    dcrw_dims_from_config(cfg, &m->d);
    dcrw_layout_init(&m->lay, &m->d);
    m->params = dcrw_calloc(m->lay.total, sizeof(float));
    if (!m->params) {
        dcrw_free(m);
        return DCRW_ENOMEM;
    }
    dcrw_views_init(&m->p, &m->lay, m->params);
    /* keep the configuration normalised: sizes the model does not use are 0,
     * as the checkpoint metadata writes them */
    m->cfg = *cfg;
    m->cfg.enc_size = m->d.E;
    m->cfg.read_n = m->d.Nr;
    m->cfg.write_n = m->d.Nw;
    m->cfg.conv1 = m->d.K1;
    m->cfg.conv2 = m->d.K2;
    *out = m;
    return DCRW_OK;
}

static size_t fan_in(const dcrw_layout *lay, int id) {
    switch (id) {
    case P_CONV1_W:
    case P_CONV1_B:
        return (size_t)lay->t[P_CONV1_W].shape[1] * 9;
    case P_CONV2_W:
    case P_CONV2_B:
        return (size_t)lay->t[P_CONV2_W].shape[1] * 9;
    /* PyTorch's LSTM uses 1/sqrt(hidden) for every tensor */
    case P_ENC_WIH:
    case P_ENC_WHH:
    case P_ENC_B:
        return (size_t)lay->t[P_ENC_WHH].shape[1];
    case P_DEC_WIH:
    case P_DEC_WHH:
    case P_DEC_B:
        return (size_t)lay->t[P_DEC_WHH].shape[1];
    default: {
        /* a bias takes the fan-in of the weight before it */
        int w = lay->t[id].ndim == 1 ? id - 1 : id;
        return (size_t)lay->t[w].shape[1];
    }
    }
}

void dcrw_model_init_params(dcrw_model *m, uint64_t seed) {
    const dcrw_layout *lay = &m->lay;
    for (int k = 0; k < lay->ntensors; k++) {
        int id = lay->order[k];
        const dcrw_tensor_info *t = &lay->t[id];
        float *p = m->params + t->offset;
        uint64_t key = rng_key(seed, 0x1417, (uint64_t)id);
        int attn = id == P_RATT_W || id == P_RATT_B || id == P_WATT_W || id == P_WATT_B;
        float k_ = attn ? 0.01f : 1.0f / sqrtf((float)fan_in(lay, id));
        if (attn && t->ndim == 1) k_ = 0.0f;
        for (size_t i = 0; i < t->count; i++) p[i] = k_ * (2.0f * rng_uniform(key, i) - 1.0f);
    }
    /* forget gates are the second quarter of the LSTM bias (order i, f, g, o) */
    if (m->p.enc_b)
        for (int i = 0; i < m->d.E; i++) m->p.enc_b[m->d.E + i] = 1.0f;
    for (int i = 0; i < m->d.D; i++) m->p.dec_b[m->d.D + i] = 1.0f;
}

int dcrw_model_create(dcrw_model **out, const dcrw_config *cfg, uint64_t seed) {
    int rc = dcrw_model_alloc(out, cfg);
    if (rc) return rc;
    dcrw_model_init_params(*out, seed);
    return DCRW_OK;
}

void dcrw_model_destroy(dcrw_model *m) {
    if (!m) return;
    dcrw_free(m->params);
    dcrw_free(m);
}

/* sizeof(dcrw_config) of 0.1, its first version: the least a caller's
 * struct can hold. A later version appends fields; this one may grow. */
#define CONFIG_SIZE_V1 64u
_Static_assert(sizeof(dcrw_config) >= CONFIG_SIZE_V1, "dcrw_config only grows");

int dcrw_model_config(const dcrw_model *m, dcrw_config *out) {
    DCRW_CHECK_ARG(m && out, "dcrw_model_config: NULL argument");
    DCRW_CHECK_ARG(
        out->size >= CONFIG_SIZE_V1,
        "dcrw_model_config: out->size is %u, set it to sizeof(dcrw_config) (at least %u)",
        (unsigned)out->size, CONFIG_SIZE_V1);
    /* a caller built against another version of the header gets the
     * fields both know, and out->size says how many bytes that is */
    const size_t n = out->size < sizeof *out ? out->size : sizeof *out;
    memcpy(out, &m->cfg, n);
    out->size = (uint32_t)n;
    return DCRW_OK;
}

size_t dcrw_model_input_size(const dcrw_model *m) {
    return m ? (size_t)m->d.P : 0;
}
size_t dcrw_model_param_count(const dcrw_model *m) {
    return m ? (size_t)m->lay.ntensors : 0;
}
size_t dcrw_model_param_floats(const dcrw_model *m) {
    return m ? m->lay.total : 0;
}

float *dcrw_model_params(const dcrw_model *m, size_t *count) {
    if (count) *count = m ? m->lay.total : 0;
    return m ? m->params : NULL;
}

int dcrw_model_param(const dcrw_model *m, size_t i, const char **name, int *ndim,
                     const int64_t **shape, float **data) {
    DCRW_CHECK_ARG(m, "dcrw_model_param: model is NULL");
    DCRW_CHECK_ARG(i < (size_t)m->lay.ntensors, "dcrw_model_param: index %zu >= %d tensors", i,
                   m->lay.ntensors);
    int id = m->lay.order[i];
    const dcrw_tensor_info *t = &m->lay.t[id];
    if (name) *name = dcrw_tensor_names[id];
    if (ndim) *ndim = t->ndim;
    if (shape) *shape = t->shape;
    if (data) *data = m->params + t->offset;
    return DCRW_OK;
}

int dcrw_model_find_param(const dcrw_model *m, const char *name, float **data, size_t *count) {
    DCRW_CHECK_ARG(m && name, "dcrw_model_find_param: NULL argument");
    for (int id = 0; id < P_COUNT; id++) {
        if (!m->lay.t[id].present || strcmp(name, dcrw_tensor_names[id]) != 0) continue;
        if (data) *data = m->params + m->lay.t[id].offset;
        if (count) *count = m->lay.t[id].count;
        return DCRW_OK;
    }
    return dcrw_fail(DCRW_ENOTFOUND, "this model has no tensor \"%.80s\"", name);
}

int dcrw_model_sizes(const dcrw_model *m, dcrw_sizes *out) {
    DCRW_CHECK_ARG(m && out, "dcrw_model_sizes: NULL argument");
    DCRW_CHECK_ARG(out->size == sizeof(dcrw_sizes),
                   "dcrw_model_sizes: out->size is %u, expected %zu", (unsigned)out->size,
                   sizeof(dcrw_sizes));
    out->input = (size_t)m->d.P;
    out->read = (size_t)m->d.R;
    out->z = (size_t)m->d.Z;
    out->dec = (size_t)m->d.D;
    out->glimpses = (size_t)m->d.T;
    return DCRW_OK;
}
