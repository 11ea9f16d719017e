/* The model object: configuration, derived sizes, and the flat parameter
 * buffer with one named view per tensor of MODEL.md §7. */
#ifndef DCRW_LIB_MODEL_H
#define DCRW_LIB_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "dcrw/dcrw.h"

/* The tensors of MODEL.md §7, in that table's order (which is the order of
 * the flat buffer and of checkpoints). A model has a subset of them. */
enum dcrw_tensor_id {
    P_ENC_WIH,
    P_ENC_WHH,
    P_ENC_B,
    P_CONV1_W,
    P_CONV1_B,
    P_CONV2_W,
    P_CONV2_B,
    P_MU_W,
    P_MU_B,
    P_LS_W,
    P_LS_B,
    P_DEC_WIH,
    P_DEC_WHH,
    P_DEC_B,
    P_RATT_W,
    P_RATT_B,
    P_WATT_W,
    P_WATT_B,
    P_WRITE_W,
    P_WRITE_B,
    P_COUNT
};

extern const char *const dcrw_tensor_names[P_COUNT];

/* Sizes derived from a valid configuration (MODEL.md §2, §7). */
typedef struct dcrw_dims {
    int C, H, W, P;  /* image */
    int T, E, D, Z;  /* glimpses, encoder, decoder, latent */
    int Nr, Nw;      /* window sides (0 when the attention is off) */
    int K1, K2;      /* convolution channels (0 for an LSTM encoder) */
    int cnn, ra, wa; /* encoder is CNN; read / write attention */
    int R;           /* floats of one read: 2·C·Nr² or 2P */
    int Rin;         /* encoder LSTM input: R + D */
    int Cin, ch, cw; /* CNN input channels and side (Nr×Nr, or H×W) */
    int F;           /* CNN features: K2·⌊⌊ch/2⌋/2⌋·⌊⌊cw/2⌋/2⌋ */
    int Q;           /* size of e_t */
    int Wout;        /* dense_write outputs: C·Nw² or P */
    float kappa;     /* canvas_init */
} dcrw_dims;

typedef struct dcrw_tensor_info {
    int present;
    int ndim;
    int64_t shape[4];
    size_t offset; /* in floats, into the flat buffer */
    size_t count;
} dcrw_tensor_info;

/* Where each tensor lives in a flat buffer laid out like the parameters
 * (gradients and Adam moments use the same layout). */
typedef struct dcrw_layout {
    dcrw_tensor_info t[P_COUNT];
    size_t total;
    int ntensors;
    int order[P_COUNT]; /* the i-th present tensor */
} dcrw_layout;

/* Pointers to each tensor inside one flat buffer; NULL where absent. */
typedef struct dcrw_views {
    float *enc_wih, *enc_whh, *enc_b;
    float *conv1_w, *conv1_b, *conv2_w, *conv2_b;
    float *mu_w, *mu_b, *ls_w, *ls_b;
    float *dec_wih, *dec_whh, *dec_b;
    float *ratt_w, *ratt_b, *watt_w, *watt_b;
    float *write_w, *write_b;
} dcrw_views;

struct dcrw_model {
    uint64_t id; /* unique in the process: keys the per-thread workspace cache */
    dcrw_config cfg;
    dcrw_dims d;
    dcrw_layout lay;
    float *params;
    dcrw_views p;
};

/* Validate cfg and derive the sizes (DCRW_ECONFIG naming the field). */
int dcrw_dims_from_config(const dcrw_config *cfg, dcrw_dims *d);
void dcrw_layout_init(dcrw_layout *lay, const dcrw_dims *d);
void dcrw_views_init(dcrw_views *v, const dcrw_layout *lay, float *base);

/* Allocate a model with zeroed parameters (no initialisation). */
int dcrw_model_alloc(dcrw_model **out, const dcrw_config *cfg);
/* The seeded initialisation documented at dcrw_model_create(). */
void dcrw_model_init_params(dcrw_model *m, uint64_t seed);

#endif
