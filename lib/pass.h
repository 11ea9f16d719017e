/* One pass of the model over a batch: the workspace that holds every
 * activation backpropagation through time needs (allocated once, in one
 * block), the forward of MODEL.md §4, the generation of §6, and the
 * backward of the batch-mean loss.
 *
 * Time-indexed arrays are "slots": with keep = 1 (training) there is one per
 * step, contiguous and time-major, so the weight gradients of a recurrent
 * layer are one sgemm over T·B rows after the backward loop; with keep = 0
 * (evaluation, encoding, sampling) two slots alternate and memory does not
 * grow with T.
 *
 * Conventions of the modules a pass calls (dense, lstm, conv, filterbank,
 * latent, canvas):
 *  - arguments in BLAS order: sizes, inputs, weights, outputs, scratch;
 *  - a backward ADDS into weight and bias gradients (a pass zeroes them
 *    once per chunk, lib/runner.c) but OVERWRITES the gradients of its
 *    inputs, and the LSTM and latent backwards turn their saved
 *    activations into gradients in place; each function says which. */
#ifndef DCRW_LIB_PASS_H
#define DCRW_LIB_PASS_H

#include <stddef.h>

#include "conv.h"
#include "model.h"
#include "pgemm.h"
#include "pgemm_bf16.h"

/* The forward's products with a weight matrix, Y = beta·Y + X·Wᵀ: one per
 * weight (the encoder's input weight is two: the columns of the stored
 * input row, and the x columns hoisted out of the loop without read
 * attention). */
enum pass_weight {
    PW_DEC_WIH,
    PW_DEC_WHH,
    PW_WRITE,
    PW_WATT,
    PW_RATT,
    PW_ENC_U,
    PW_ENC_X,
    PW_ENC_WHH,
    PW_MU,
    PW_LS,
    PW_COUNT
};

/* Those weights packed for dcrw_pgemm (lib/pgemm.h), which the chunks of a
 * runner share. Packing removes OpenBLAS's repacking of the same weight at
 * every one of the T steps, and the kernel's rounding of a row does not
 * depend on the other rows of the product, so a set evaluated in parts
 * gives the same numbers as in one batch. The parameters can be written
 * through the public API at any time, so a pack lasts for one operation:
 * a training step's backward, or one const call.
 *
 * A model of bfloat16 precision (dcrw_model_set_precision) has its large
 * weights packed for dcrw_bf16_gemm as well, both ways: B = Wᵀ for the
 * forward's X·Wᵀ and B = W for the backward's dY·W, and its large weight
 * gradients dYᵀ·X are bf16 products too (dcrw_bf16_gemm_tn, no pack kept).
 * The attention's 5-output products stay float32.
 *
 * A CNN encoder whose second stage has a dense form keeps its expanded
 * conv2 weight here too, built with the packs (lib/conv.h). */
typedef struct pass_weights {
    const dcrw_model *m;
    int path;             /* the pgemm_path of b[], or -1: none (OpenBLAS) */
    pgemm_b b[PW_COUNT];  /* b[i].n = 0: the model has no such weight */
    float *buf[PW_COUNT]; /* where b[i] is packed, in block */
    bf16_b bt[PW_COUNT];  /* bf16 B = Wᵀ; bt[i].n = 0: none (float32) */
    bf16_b bn[PW_COUNT];  /* bf16 B = W, for a backward */
    int bf16_grads;       /* 1: the large weight gradients in bf16 */
    float *conv2x;        /* the CNN's expanded conv2 weights, or NULL (lib/conv.h) */
    cnn_dense conv2;      /* ... described, for the path of b[] */
    unsigned char *block;
    size_t bytes;
} pass_weights;

/* The dcrw_pgemm path the model's products use, or -1 for OpenBLAS alone:
 * chosen once per process, the packed kernel with AVX2+FMA or AVX-512, else
 * OpenBLAS (the portable C kernel is six times slower than it). */
int dcrw_pass_gemm_path(void);
/* For tests and the benchmark: a supported path, or -1 for OpenBLAS alone;
 * workspaces created afterwards follow it. Returns the previous choice. */
int dcrw_pass_set_gemm_path(int path);
/* For tests and the benchmark: 0 keeps the CNN's second stage on im2col
 * where it has a dense form; workspaces created afterwards follow it.
 * Returns the previous choice (1 by default). */
int dcrw_pass_set_conv2x(int on);

/* Buffers for m's weights packed for path (a pgemm_path, or -1 for none)
 * and, for a model of bfloat16 precision, in bf16 (with the backward's
 * packs too when backward); DCRW_ENOMEM. Their values come with
 * dcrw_pass_weights_pack. */
int dcrw_pass_weights_create(pass_weights **out, const dcrw_model *m, int path, int backward);
/* Whether m's operations keep a pass_weights for gemm path `path`: packs, a
 * bf16 model's, or an expanded conv2 weight */
int dcrw_pass_weights_wanted(const dcrw_model *m, int path);
void dcrw_pass_weights_destroy(pass_weights *pw);
/* Pack part `part` of `parts` of every weight from the model's current
 * values (threads i = 0 .. parts − 1 together pack all of them); with
 * decoder_only, those generation uses alone. */
void dcrw_pass_weights_pack(pass_weights *pw, int decoder_only, int part, int parts);

typedef struct dcrw_pass {
    const dcrw_model *m;
    const pass_weights *pw; /* packed weights, or NULL: OpenBLAS for every product */
    int B, keep, backward;
    int Us;   /* floats of the stored encoder-LSTM input row: [r_t or x̂_t, h_dec] */
    int ucol; /* first column of enc.lstm.weight_ih that the stored row multiplies */
    size_t cnn_saved, cnn_scratch;

    /* forward state; "slot" arrays are (keep ? n : 2) × the per-step size */
    float *c;                           /* canvas logits, T+1 slots of B×P */
    float *xhat;                        /* B×P */
    float *rp5, *rFX, *rFY, *rg, *raux; /* read attention, T slots */
    float *r;                           /* read patches, T slots of B×R */
    float *U;                           /* encoder LSTM input rows, T slots of B×Us */
    float *xq;                          /* hoisted x·W_xᵀ + b, B×4E (LSTM, no read) */
    float *he, *se;                     /* encoder h, s: T+1 slots of B×E */
    float *ge, *te;                     /* encoder gates, tanh(s): T slots */
    float *cs;                          /* CNN saved activations, T slots */
    float *e;                           /* CNN e_t = [features, h_dec], T slots of B×Q */
    float *mu, *ls, *z;                 /* T slots of B×Z (CNN no-read: mu, ls one slot) */
    float *hd, *sd;                     /* decoder h, s: T+1 slots of B×D */
    float *gd, *td;                     /* decoder gates, tanh(s): T slots */
    float *w;                           /* dense_write outputs, T slots of B×Wout */
    float *wp5, *wFX, *wFY, *wg, *waux; /* write attention, T slots */
    float *eps;                         /* T×B×Z, noise drawn by the library */
    float *y;                           /* the classifier's logits, B×K */
    /* a conditional model's label rows (MODEL.md §10, lib/dense.h): bias +
     * the label's column, per image, for the decoder (B×4D), the LSTM
     * encoder with read attention (B×4E; without it they go into xq) and
     * the CNN encoder's mu and logsigma layers (B×Z) */
    float *lrd, *lre, *lrm, *lrs;
    float *scratch;  /* the modules' scratch */
    double *lx, *lz; /* per image, B each */

    /* backward only */
    float *dc, *dh, *dhn, *dsd, *dhe, *dse, *de, *dr, *dxhat, *du, *dz, *dze;
    float *gz, *gze, *dp5, *dFX, *dFY, *dg, *dw, *dy;
    float *dwx;  /* dL/dWx of the dense conv2, summed over the glimpses */
    float *dsig; /* σ′(c_{t−1}) of the step the backward is in, B×P (read attention) */
    float *tnb;  /* dcrw_bf16_tn_words() words for the bf16 weight gradients */

    void *block;
    size_t bytes; /* of the block: what the pass keeps, for the benchmark */
} dcrw_pass;

/* Allocate the workspace of a pass over B images (DCRW_ENOMEM, DCRW_EINVAL
 * when B or the sizes overflow). backward implies keep. */
int dcrw_pass_create(dcrw_pass **out, const dcrw_model *m, int B, int keep, int backward);
void dcrw_pass_destroy(dcrw_pass *ps);

/* Where a pass may copy what the caller asked for; each may be NULL. The
 * buffers hold the whole batch of B_total images (time-major where they
 * have a T axis); this pass writes the rows of images b0 .. b0 + ps->B − 1. */
typedef struct pass_outputs {
    int B_total, b0;
    float *z, *mu, *logsigma; /* T×B×Z */
    float *canvases;          /* T×B×P, σ(c_t) */
    float *images;            /* B×P, σ(c_T) */
    float *read_windows;      /* T×B×5, (gX, gY, δ, σ², γ) of each read */
    float *write_windows;     /* T×B×5, of each write */
    double *log_ratio;        /* B, log p(z) − log q(z|x) of each image's draw */
    float *probs;             /* B×K, the classifier's p(k | x) */
} pass_outputs;

/* The forward pass of §4 on x [B×P] with noise eps [T×B×Z] (and a
 * conditional model's labels [B], §10; NULL otherwise); ps->lx and ps->lz
 * receive each image's Lx and Lz. */
void dcrw_pass_forward(dcrw_pass *ps, const float *x, const int32_t *labels, const float *eps,
                       const pass_outputs *out);

/* Generation (§6) from z [T×B×Z] (with labels, as the forward). */
void dcrw_pass_generate(dcrw_pass *ps, const int32_t *labels, const float *z,
                        const pass_outputs *out);

/* Backward of inv_batch·Σ (Lx + kl_weight·Lz) over this pass's images (the
 * batch mean of the bound when inv_batch = 1/B of the whole batch and
 * kl_weight = 1) after dcrw_pass_forward (keep = 1) on the same x and eps;
 * gradients are ADDED into grad, laid out like the parameters (zero it
 * first for a fresh step). */
void dcrw_pass_backward(dcrw_pass *ps, const float *x, const int32_t *labels, const float *eps,
                        float *grad, float inv_batch, float kl_weight);

/* The classifier of MODEL.md §9 (lib/classify.c), over the same workspace:
 * the forward on x [B×P], with ps->lx receiving each image's −log p(label)
 * (0 without labels) and ps->lz zeros; the backward of inv_batch·Σ of
 * those after it (keep = 1), ADDED into grad. labels are this pass's rows. */
void dcrw_classify_forward(dcrw_pass *ps, const float *x, const int32_t *labels,
                           const pass_outputs *out);
void dcrw_classify_backward(dcrw_pass *ps, const float *x, const int32_t *labels, float *grad,
                            float inv_batch);

/* The noise streams, one per use, so that no two uses draw the same
 * numbers for an image (their low 16 bits differ, whatever the bits a use
 * adds above them):
 *  - training steps given no eps (lib/trainer.c), xored with step << 16;
 *  - the posterior noise ε of the const operations (encode, reconstruct,
 *    evaluate; seed 0 when the caller gives neither eps nor a seed), which
 *    is also importance sample 0;
 *  - the prior draws z ~ N(0, I) of decode;
 *  - importance sample k >= 1, xored with k << 32. */
#define DCRW_STREAM_TRAIN 0x7EA1ull
#define DCRW_STREAM_POSTERIOR 0x0E5Cull
#define DCRW_STREAM_PRIOR 0xDEC0DEull
#define DCRW_STREAM_IW 0x1A5Dull

/* Draw noise ε[t][b][j] for images first_index + b: a pure function of
 * (seed, stream, image index, t, j), so an image's noise does not depend on
 * the batch it is in. */
void dcrw_pass_draw_noise(const dcrw_model *m, int B, uint64_t seed, uint64_t stream,
                          uint64_t first_index, float *eps);

#endif
