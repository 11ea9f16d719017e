/* The tensor table of MODEL.md §7 and the flat buffer it lays out: the
 * sizes a valid configuration implies (dims), each tensor's shape and
 * offset (layout), and named pointers into a buffer laid out that way
 * (views). Pure: no allocation, no model; lib/config.c derives the dims
 * from a configuration, everything above uses the three. */
#ifndef DCRW_LIB_LAYOUT_H
#define DCRW_LIB_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

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
    P_CLASS_W, /* the classifier's (MODEL.md §9) */
    P_CLASS_B,
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
    int cls, K;      /* the classifier of MODEL.md §9; the classes (§9, §10) */
    int R;           /* floats of one read: 2·C·Nr² or 2P (classifier: C·Nr²) */
    int Rin;         /* encoder LSTM input: R + D + K (classifier: R) */
    int Cin, ch, cw; /* CNN input channels and side (Nr×Nr, or H×W) */
    int F;           /* CNN features: K2·⌊⌊ch/2⌋/2⌋·⌊⌊cw/2⌋/2⌋ */
    int Q;           /* size of e_t (without the label) */
    int Qw;          /* columns of q.mu.weight: Q, + K for a conditional CNN encoder */
    int Zw;          /* columns of dec.lstm.weight_ih: Z + K */
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
    float *class_w, *class_b;
} dcrw_views;

/* The tensors and offsets of the dims d of a valid configuration. */
void dcrw_layout_init(dcrw_layout *lay, const dcrw_dims *d);
/* Views into base laid out as lay (all NULL for a NULL base). */
void dcrw_views_init(dcrw_views *v, const dcrw_layout *lay, float *base);

#endif
