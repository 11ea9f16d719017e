/* The tensor table of MODEL.md §7: each tensor's shape for given dims,
 * their offsets in the flat buffer, and views into one. */
#include <string.h>

#include "layout.h"

const char *const dcrw_tensor_names[P_COUNT] = {
    "enc.lstm.weight_ih", "enc.lstm.weight_hh", "enc.lstm.bias",    "enc.conv1.weight",
    "enc.conv1.bias",     "enc.conv2.weight",   "enc.conv2.bias",   "q.mu.weight",
    "q.mu.bias",          "q.logsigma.weight",  "q.logsigma.bias",  "dec.lstm.weight_ih",
    "dec.lstm.weight_hh", "dec.lstm.bias",      "read.attn.weight", "read.attn.bias",
    "write.attn.weight",  "write.attn.bias",    "write.weight",     "write.bias",
    "class.weight",       "class.bias",
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

/* The encoder LSTM: the DRAW encoder's, or the classifier's own. */
static void lstm_shapes(dcrw_layout *lay, const dcrw_dims *d) {
    set_shape(lay, P_ENC_WIH, 2, 4 * (int64_t)d->E, d->Rin, 0, 0);
    set_shape(lay, P_ENC_WHH, 2, 4 * (int64_t)d->E, d->E, 0, 0);
    set_shape(lay, P_ENC_B, 1, 4 * (int64_t)d->E, 0, 0, 0);
}

/* The read window's layer, from a state of `from` cells. */
static void read_shapes(dcrw_layout *lay, int from) {
    set_shape(lay, P_RATT_W, 2, 5, from, 0, 0);
    set_shape(lay, P_RATT_B, 1, 5, 0, 0, 0);
}

/* MODEL.md §9 */
static void classifier_shapes(dcrw_layout *lay, const dcrw_dims *d) {
    lstm_shapes(lay, d);
    read_shapes(lay, d->E);
    set_shape(lay, P_CLASS_W, 2, d->K, d->E, 0, 0);
    set_shape(lay, P_CLASS_B, 1, d->K, 0, 0, 0);
}

/* MODEL.md §7 */
static void generative_shapes(dcrw_layout *lay, const dcrw_dims *d) {
    if (!d->cnn) {
        lstm_shapes(lay, d);
    } else {
        set_shape(lay, P_CONV1_W, 4, d->K1, d->Cin, 3, 3);
        set_shape(lay, P_CONV1_B, 1, d->K1, 0, 0, 0);
        set_shape(lay, P_CONV2_W, 4, d->K2, d->K1, 3, 3);
        set_shape(lay, P_CONV2_B, 1, d->K2, 0, 0, 0);
    }
    set_shape(lay, P_MU_W, 2, d->Z, d->Qw, 0, 0);
    set_shape(lay, P_MU_B, 1, d->Z, 0, 0, 0);
    set_shape(lay, P_LS_W, 2, d->Z, d->Qw, 0, 0);
    set_shape(lay, P_LS_B, 1, d->Z, 0, 0, 0);
    set_shape(lay, P_DEC_WIH, 2, 4 * (int64_t)d->D, d->Zw, 0, 0);
    set_shape(lay, P_DEC_WHH, 2, 4 * (int64_t)d->D, d->D, 0, 0);
    set_shape(lay, P_DEC_B, 1, 4 * (int64_t)d->D, 0, 0, 0);
    if (d->ra) read_shapes(lay, d->D);
    if (d->wa) {
        set_shape(lay, P_WATT_W, 2, 5, d->D, 0, 0);
        set_shape(lay, P_WATT_B, 1, 5, 0, 0, 0);
    }
    set_shape(lay, P_WRITE_W, 2, d->Wout, d->D, 0, 0);
    set_shape(lay, P_WRITE_B, 1, d->Wout, 0, 0, 0);
}

void dcrw_layout_init(dcrw_layout *lay, const dcrw_dims *d) {
    memset(lay, 0, sizeof *lay);
    if (d->cls)
        classifier_shapes(lay, d);
    else
        generative_shapes(lay, d);
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
    v->class_w = ptr[P_CLASS_W];
    v->class_b = ptr[P_CLASS_B];
}
