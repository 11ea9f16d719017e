/* The CNN encoder of MODEL.md §3.3, batched: two stages of 3×3 stride-1
 * zero-pad-1 cross-correlation + bias + ReLU, then 2×2 stride-2 max-pool
 * (floor: an odd last row/column is dropped; ties go to the first maximum in
 * row-major window order). Input [B×Cin×H×W]; output [B×F] with
 * F = K2·⌊⌊H/2⌋/2⌋·⌊⌊W/2⌋/2⌋ flattened (channel, y, x). Weights are
 * [Kout×Kin×3×3] as PyTorch's conv2d. */
#ifndef DCRW_LIB_CONV_H
#define DCRW_LIB_CONV_H

#include <stddef.h>
#include <stdint.h>

typedef struct cnn_shape {
    int B, Cin, H, W, K1, K2;
} cnn_shape;

/* F, the features per image */
int dcrw_cnn_out_features(const cnn_shape *s);
/* floats dcrw_cnn_forward keeps in `saved` for dcrw_cnn_backward */
size_t dcrw_cnn_saved_floats(const cnn_shape *s);
/* floats of scratch either direction needs */
size_t dcrw_cnn_scratch_floats(const cnn_shape *s);

/* The CNN's second stage as one product, where the second pool leaves one
 * pixel of a plane of at most 3×3: the four conv2 outputs it reads are
 * then X·Wxᵀ for an expanded weight Wx [K2·4 × K1·H2·W2] (lib/conv.c). */
typedef struct cnn_dense {
    const float *wx;  /* Wx */
    const float *wxt; /* Wxᵀ */
    int path;         /* the pgemm_path of its products, or -1: sgemm */
} cnn_dense;

/* Floats of Wx and Wxᵀ together, or 0 where stage 2 has no dense form */
size_t dcrw_cnn_wx_floats(const cnn_shape *s);
/* Both from w2 into buf, part `part` of `parts` of their rows (threads
 * 0 .. parts − 1 together build all of it). */
void dcrw_cnn_wx_build(const cnn_shape *s, const float *w2, float *buf, int part, int parts);
/* *out for the matrices in buf */
void dcrw_cnn_dense_describe(const cnn_shape *s, const float *buf, int path, cnn_dense *out);

/* in [B×Cin×H×W] -> out rows of F floats at stride ldout. wx: the dense
 * stage 2 of w2, or NULL for im2col; backward must be given the same
 * choice as the forward whose `saved` it reads. */
void dcrw_cnn_forward(const cnn_shape *s, const float *in, const float *w1, const float *b1,
                      const float *w2, const cnn_dense *wx, const float *b2, float *out, int ldout,
                      float *saved, float *scratch);

/* dout rows of F at stride lddout -> din [B×Cin×H×W] overwritten (NULL to
 * skip: the input is data), dw1, db1, dw2, db2 accumulated (+=). With the
 * dense stage 2 and dwx given, w2's gradient goes into dwx instead, as
 * dL/dWx (+=, dcrw_cnn_dwx_floats of them): a pass that runs the CNN once
 * per glimpse sums there and folds onto dw2 once, by dcrw_cnn_dwx_fold. */
void dcrw_cnn_backward(const cnn_shape *s, const float *in, const float *w1, const float *w2,
                       const cnn_dense *wx, const float *saved, const float *dout, int lddout,
                       float *din, float *dw1, float *db1, float *dw2, float *db2, float *dwx,
                       float *scratch);
/* floats of dL/dWx, or 0 where stage 2 has no dense form */
size_t dcrw_cnn_dwx_floats(const cnn_shape *s);
/* dw2 += dL/dWx folded onto w2's taps */
void dcrw_cnn_dwx_fold(const cnn_shape *s, const float *dwx, float *dw2);

/* The single layers, also used by the tests. */

/* out [B×K×H×W] = ReLU(conv3x3(in [B×Cin×H×W], w [K×Cin×3×3]) + b) */
void dcrw_conv3x3_relu_forward(int B, int Cin, int K, int H, int W, const float *in, const float *w,
                               const float *b, float *out, float *scratch);
/* dout -> din (overwritten, NULL skips), dw, db (+=); out is the forward's output */
void dcrw_conv3x3_relu_backward(int B, int Cin, int K, int H, int W, const float *in,
                                const float *w, const float *out, const float *dout, float *din,
                                float *dw, float *db, float *scratch);
size_t dcrw_conv3x3_scratch_floats(int B, int Cin, int K, int H, int W);

/* The two above with products of at most max_cols columns (the batch in
 * groups of images); the library passes INT_MAX, the BLAS limit, and the
 * tests smaller values to exercise the grouping. */
void dcrw_conv3x3_relu_forward_cols(int B, int Cin, int K, int H, int W, const float *in,
                                    const float *w, const float *b, float *out, float *scratch,
                                    size_t max_cols);
void dcrw_conv3x3_relu_backward_cols(int B, int Cin, int K, int H, int W, const float *in,
                                     const float *w, const float *out, const float *dout,
                                     float *din, float *dw, float *db, float *scratch,
                                     size_t max_cols);

/* out [B×C×⌊H/2⌋×⌊W/2⌋] = 2×2 max; arg [same] = index (0..3, row-major) of the max */
void dcrw_maxpool2_forward(int B, int C, int H, int W, const float *in, float *out, uint8_t *arg);
/* din [B×C×H×W] overwritten (dropped rows/columns get 0) */
void dcrw_maxpool2_backward(int B, int C, int H, int W, const float *dout, const uint8_t *arg,
                            float *din);
/* conv3x3 → ReLU → 2×2 max-pool backward from the pool's gradient dp
 * [B×K×(H/2)×(W/2)], given the pool's output p and argmax: din
 * (overwritten, NULL skips), dw, db (+=); the scratch of
 * dcrw_conv3x3_relu_backward. The same numbers as dcrw_maxpool2_backward
 * then dcrw_conv3x3_relu_backward, without reading the conv's output. */
void dcrw_conv3x3_relu_pool_backward(int B, int Cin, int K, int H, int W, const float *in,
                                     const float *w, const float *p, const float *dp,
                                     const uint8_t *arg, float *din, float *dw, float *db,
                                     float *scratch);

#endif
