/* The model object: its configuration, the flat parameter buffer laid out
 * by lib/layout.c, the seeded initialisation, and the accessors. */
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "common.h"
#include "model.h"
#include "pgemm_bf16.h"
#include "rng.h"

void dcrw_model_renew_id(dcrw_model *m) {
    static atomic_uint_fast64_t next_id = 1;
    m->id = atomic_fetch_add(&next_id, 1);
}

int dcrw_model_alloc_derived(dcrw_model **out, const dcrw_config *cfg, const dcrw_dims *d,
                             const dcrw_layout *lay) {
    *out = NULL;
    dcrw_model *m = dcrw_calloc(1, sizeof *m);
    if (!m) return DCRW_ENOMEM;
    dcrw_model_renew_id(m);
    m->d = *d;
    m->lay = *lay;
    m->params = dcrw_calloc(m->lay.total, sizeof(float));
    if (!m->params) {
        dcrw_free(m);
        return DCRW_ENOMEM;
    }
    dcrw_views_init(&m->p, &m->lay, m->params);
    /* keep the configuration normalised: sizes the model does not use are 0,
     * as the checkpoint metadata writes them */
    m->cfg = *cfg;
    dcrw_config_normalize(&m->cfg);
    *out = m;
    return DCRW_OK;
}

int dcrw_model_alloc(dcrw_model **out, const dcrw_config *cfg) {
    DCRW_CHECK_ARG(out, "model: out is NULL");
    *out = NULL;
    DCRW_CHECK_ARG(cfg, "model: config is NULL");
    dcrw_config c;
    dcrw_dims d;
    dcrw_layout lay;
    int rc = dcrw_config_import(cfg, &c);
    if (!rc) rc = dcrw_config_derive(&c, &d, &lay);
    if (rc) return rc;
    return dcrw_model_alloc_derived(out, &c, &d, &lay);
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

int dcrw_model_config(const dcrw_model *m, dcrw_config *out) {
    DCRW_CHECK_ARG(m && out, "dcrw_model_config: NULL argument");
    return dcrw_config_export(&m->cfg, out, "dcrw_model_config");
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

int dcrw_precision_supported(int precision) {
    return precision == DCRW_PRECISION_FLOAT32 ||
           (precision == DCRW_PRECISION_BF16 && dcrw_bf16_hardware());
}

int dcrw_model_set_precision(dcrw_model *m, int precision) {
    DCRW_CHECK_ARG(m, "dcrw_model_set_precision: model is NULL");
    DCRW_CHECK_ARG(precision == DCRW_PRECISION_FLOAT32 || precision == DCRW_PRECISION_BF16,
                   "dcrw_model_set_precision: unknown precision %d", precision);
    if (!dcrw_precision_supported(precision))
        return dcrw_fail(DCRW_EUNSUPPORTED,
                         "dcrw_model_set_precision: this CPU has no AVX-512 BF16, on which "
                         "bfloat16 products would be emulated, many times slower than float32");
    if (precision != m->precision) {
        m->precision = precision;
        /* the workspaces cached for the model hold packs of the old precision */
        dcrw_model_renew_id(m);
    }
    return DCRW_OK;
}

int dcrw_model_precision(const dcrw_model *m) {
    return m ? m->precision : DCRW_PRECISION_FLOAT32;
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
