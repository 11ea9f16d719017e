/* The forward pass of MODEL.md §4 and generation (§6) over a pass's
 * workspace (lib/pass.c). The backward is in lib/backward.c. Every product
 * with a weight matrix goes through the pass's packed weights when it has
 * them (lib/pass.h), which round an image's row alike whatever the other
 * images of its chunk. */
#include <string.h>

#include "canvas.h"
#include "common.h"
#include "conv.h"
#include "dense.h"
#include "filterbank.h"
#include "latent.h"
#include "lstm.h"
#include "pass.h"
#include "pass_internal.h"

/* A dense layer y = u·Wᵀ + a of the pass's weight `id` (lib/dense.h). */
static void dense(const dcrw_pass *ps, int id, int B, int I, int O, const float *u, int ldu,
                  const float *W, const float *a, float *y, int ldy) {
    dcrw_bias_rows(B, O, a, y, ldy);
    pass_gemm_nt(ps, id, B, O, I, u, ldu, W, I, 1.0f, y, ldy);
}

/* The q(z|·) layer `id` (mu or logsigma) on e [B×Q]: its bias, or for a
 * conditional CNN encoder the label rows (bias + the label's column, §10),
 * then the product with the weight's first Q columns. */
static void latent_dense(const dcrw_pass *ps, int id, const float *e, int lde, const float *W,
                         const float *a, const float *rows, float *y) {
    const dcrw_dims *d = &ps->m->d;
    if (rows)
        dcrw_copy_rows(ps->B, d->Z, rows, d->Z, y, d->Z);
    else
        dcrw_bias_rows(ps->B, d->Z, a, y, d->Z);
    pass_gemm_nt(ps, id, ps->B, d->Z, d->Q, e, lde, W, d->Qw, 1.0f, y, d->Z);
}

/* A conditional model's label rows (MODEL.md §10): the label's column of
 * each weight that takes it, with that layer's bias, once per pass. */
static void label_rows(dcrw_pass *ps, const int32_t *labels) {
    const dcrw_dims *d = &ps->m->d;
    const dcrw_views *p = &ps->m->p;
    const int B = ps->B;
    dcrw_label_rows(B, 4 * d->D, p->dec_b, p->dec_wih, d->Zw, d->Z, labels, ps->lrd, 4 * d->D);
    if (d->cnn) {
        dcrw_label_rows(B, d->Z, p->mu_b, p->mu_w, d->Qw, d->Q, labels, ps->lrm, d->Z);
        dcrw_label_rows(B, d->Z, p->ls_b, p->ls_w, d->Qw, d->Q, labels, ps->lrs, d->Z);
    } else {
        /* without read attention they start the hoisted x rows */
        float *rows = d->ra ? ps->lre : ps->xq;
        dcrw_label_rows(B, 4 * d->E, p->enc_b, p->enc_wih, d->Rin, d->R + d->D, labels, rows,
                        4 * d->E);
    }
}

static void start(dcrw_pass *ps, const int32_t *labels) {
    const dcrw_dims *d = &ps->m->d;
    const size_t B = (size_t)ps->B;
    if (d->K) label_rows(ps, labels);
    float *c0 = SLOT(ps, c, 0, B * d->P);
    for (size_t i = 0; i < B * d->P; i++) c0[i] = d->kappa;
    memset(SLOT(ps, hd, 0, B * d->D), 0, B * d->D * sizeof(float));
    memset(SLOT(ps, sd, 0, B * d->D), 0, B * d->D * sizeof(float));
    if (!d->cnn) {
        memset(SLOT(ps, he, 0, B * d->E), 0, B * d->E * sizeof(float));
        memset(SLOT(ps, se, 0, B * d->E), 0, B * d->E * sizeof(float));
    }
    memset(ps->lx, 0, B * sizeof(double));
    memset(ps->lz, 0, B * sizeof(double));
}

/* Decoder LSTM on z_t, then c_{t+1} = c_t + write(h_dec) (code time t is the
 * spec's t+1). */
static void decoder_step(dcrw_pass *ps, int t, const float *z_t) {
    const dcrw_model *m = ps->m;
    const dcrw_dims *d = &m->d;
    const dcrw_views *p = &m->p;
    const int B = ps->B, D = d->D;
    const size_t BP = (size_t)B * d->P, BD = (size_t)B * D;
    float *g = SLOT(ps, gd, t, BD * 4), *h = SLOT(ps, hd, t + 1, BD);
    pass_gemm_nt(ps, PW_DEC_WIH, B, 4 * D, d->Z, z_t, d->Z, p->dec_wih, d->Zw, 0.0f, g, 4 * D);
    /* h_dec before step 0 is the zero state: its product adds nothing */
    if (t)
        pass_gemm_nt(ps, PW_DEC_WHH, B, 4 * D, D, SLOT(ps, hd, t, BD), D, p->dec_whh, D, 1.0f, g,
                     4 * D);
    /* the bias, or a conditional model's label rows */
    dcrw_lstm_cell_forward(B, D, g, d->K ? ps->lrd : p->dec_b, d->K ? 4 * D : 0,
                           SLOT(ps, sd, t, BD), SLOT(ps, sd, t + 1, BD), SLOT(ps, td, t, BD), h);

    float *w = SLOT(ps, w, t, (size_t)B * d->Wout);
    dense(ps, PW_WRITE, B, D, d->Wout, h, D, p->write_w, p->write_b, w, d->Wout);
    float *cp = SLOT(ps, c, t, BP), *cn = SLOT(ps, c, t + 1, BP);
    memcpy(cn, cp, BP * sizeof(float));
    if (d->wa) {
        float *p5 = SLOT(ps, wp5, t, (size_t)B * 5);
        float *FX = SLOT(ps, wFX, t, (size_t)B * d->Nw * d->W);
        float *FY = SLOT(ps, wFY, t, (size_t)B * d->Nw * d->H);
        float *gm = SLOT(ps, wg, t, (size_t)B);
        dense(ps, PW_WATT, B, D, 5, h, D, p->watt_w, p->watt_b, p5, 5);
        dcrw_fb_filters_forward(B, d->Nw, d->H, d->W, p5, FX, FY, gm,
                                SLOT(ps, waux, t, dcrw_fb_aux_floats(B, d->Nw)));
        dcrw_fb_write_forward(B, d->C, d->Nw, d->H, d->W, FX, FY, gm, w, cn, 1, ps->scratch);
    } else {
        for (size_t i = 0; i < BP; i++) cn[i] += w[i];
    }
}

static void emit(dcrw_pass *ps, int t, const pass_outputs *out) {
    if (!out) return;
    const dcrw_dims *d = &ps->m->d;
    const size_t B = (size_t)ps->B, BP = B * d->P, BZ = B * d->Z;
    /* row offset of this pass's images at time t, in rows of the whole batch */
    const size_t row = (size_t)t * out->B_total + out->b0;
    if (out->canvases) dcrw_sigmoid_array(BP, SLOT(ps, c, t + 1, BP), out->canvases + row * d->P);
    if (out->z) memcpy(out->z + row * d->Z, SLOT(ps, z, t, BZ), BZ * sizeof(float));
    const int one = d->cnn && !d->ra;
    if (out->mu) memcpy(out->mu + row * d->Z, one ? ps->mu : SLOT(ps, mu, t, BZ), BZ * 4);
    if (out->logsigma)
        memcpy(out->logsigma + row * d->Z, one ? ps->ls : SLOT(ps, ls, t, BZ), BZ * 4);
    if (out->read_windows && d->ra)
        dcrw_fb_windows(ps->B, d->Nr, d->H, d->W, SLOT(ps, rp5, t, B * 5),
                        out->read_windows + row * 5);
    if (out->write_windows && d->wa)
        dcrw_fb_windows(ps->B, d->Nw, d->H, d->W, SLOT(ps, wp5, t, B * 5),
                        out->write_windows + row * 5);
}

void dcrw_pass_forward(dcrw_pass *ps, const float *x, const int32_t *labels, const float *eps,
                       const pass_outputs *out) {
    const dcrw_model *m = ps->m;
    const dcrw_dims *d = &m->d;
    const dcrw_views *p = &m->p;
    const int B = ps->B, P = d->P, D = d->D, E = d->E, Z = d->Z, Q = d->Q, T = d->T;
    const size_t BP = (size_t)B * P, BD = (size_t)B * D, BE = (size_t)B * E, BZ = (size_t)B * Z;
    const int noread_cnn = d->cnn && !d->ra;
    const cnn_shape cs = {B, d->Cin, d->ch, d->cw, d->K1, d->K2};
    /* the caller's rows of log p(z) − log q(z|x), summed over the steps */
    double *lw = out && out->log_ratio ? out->log_ratio + out->b0 : NULL;
    if (lw) memset(lw, 0, (size_t)B * sizeof *lw);
    start(ps, labels);

    if (!d->cnn && !d->ra) {
        /* the x columns of the encoder input are the same every step (a
         * conditional model's label rows are there already) */
        if (!d->K) dcrw_bias_rows(B, 4 * E, p->enc_b, ps->xq, 4 * E);
        pass_gemm_nt(ps, PW_ENC_X, B, 4 * E, P, x, P, p->enc_wih, d->Rin, 1.0f, ps->xq, 4 * E);
    }
    if (noread_cnn) {
        /* dcrw-noread: one CNN pass and one q(z|x) for all T draws */
        dcrw_cnn_forward(&cs, x, p->conv1_w, p->conv1_b, p->conv2_w, pass_conv2x(ps), p->conv2_b,
                         ps->e, Q, ps->cs, ps->scratch);
        latent_dense(ps, PW_MU, ps->e, Q, p->mu_w, p->mu_b, ps->lrm, ps->mu);
        latent_dense(ps, PW_LS, ps->e, Q, p->ls_w, p->ls_b, ps->lrs, ps->ls);
        dcrw_latent_kl(B, Z, ps->mu, ps->ls, ps->lz);
        for (int b = 0; b < B; b++) ps->lz[b] *= T;
    }

    for (int t = 0; t < T; t++) {
        const float *cp = SLOT(ps, c, t, BP), *hdp = SLOT(ps, hd, t, BD);
        float *mu = ps->mu, *ls = ps->ls;
        if (!noread_cnn) {
            /* x̂_t = x − σ(c_{t−1}); an LSTM encoder without read attention
             * takes it straight into its input row */
            float *xh = ps->xhat;
            int ldx = P;
            if (!d->cnn && !d->ra) {
                xh = SLOT(ps, U, t, (size_t)B * ps->Us);
                ldx = ps->Us;
            }
            dcrw_xhat_rows(B, P, x, cp, xh, ldx);
            float *r = NULL;
            if (d->ra) {
                float *p5 = SLOT(ps, rp5, t, (size_t)B * 5);
                float *FX = SLOT(ps, rFX, t, (size_t)B * d->Nr * d->W);
                float *FY = SLOT(ps, rFY, t, (size_t)B * d->Nr * d->H);
                float *gm = SLOT(ps, rg, t, (size_t)B);
                r = SLOT(ps, r, t, (size_t)B * d->R);
                dense(ps, PW_RATT, B, D, 5, hdp, D, p->ratt_w, p->ratt_b, p5, 5);
                dcrw_fb_filters_forward(B, d->Nr, d->H, d->W, p5, FX, FY, gm,
                                        SLOT(ps, raux, t, dcrw_fb_aux_floats(B, d->Nr)));
                dcrw_fb_read_forward(B, d->C, d->Nr, d->H, d->W, FX, FY, gm, x, ps->xhat, r,
                                     ps->scratch);
            }
            const float *e;
            int lde;
            if (!d->cnn) {
                float *u = SLOT(ps, U, t, (size_t)B * ps->Us);
                float *g = SLOT(ps, ge, t, BE * 4);
                if (d->ra) dcrw_copy_rows(B, d->R, r, d->R, u, ps->Us);
                dcrw_copy_rows(B, D, hdp, D, u + ps->Us - D, ps->Us);
                pass_gemm_nt(ps, PW_ENC_U, B, 4 * E, ps->Us, u, ps->Us, p->enc_wih + ps->ucol,
                             d->Rin, 0.0f, g, 4 * E);
                if (t) /* h_enc before step 0 is the zero state, as h_dec */
                    pass_gemm_nt(ps, PW_ENC_WHH, B, 4 * E, E, SLOT(ps, he, t, BE), E, p->enc_whh, E,
                                 1.0f, g, 4 * E);
                /* the bias, or without read attention the hoisted x·W_xᵀ + b rows
                 * (a conditional model's label rows in either case) */
                const float *add = !d->ra ? ps->xq : d->K ? ps->lre : p->enc_b;
                dcrw_lstm_cell_forward(B, E, g, add, add == p->enc_b ? 0 : 4 * E,
                                       SLOT(ps, se, t, BE), SLOT(ps, se, t + 1, BE),
                                       SLOT(ps, te, t, BE), SLOT(ps, he, t + 1, BE));
                e = SLOT(ps, he, t + 1, BE);
                lde = E;
            } else {
                float *et = SLOT(ps, e, t, (size_t)B * Q);
                dcrw_cnn_forward(&cs, r, p->conv1_w, p->conv1_b, p->conv2_w, pass_conv2x(ps),
                                 p->conv2_b, et, Q, SLOT(ps, cs, t, ps->cnn_saved), ps->scratch);
                dcrw_copy_rows(B, D, hdp, D, et + d->F, Q);
                e = et;
                lde = Q;
            }
            mu = SLOT(ps, mu, t, BZ);
            ls = SLOT(ps, ls, t, BZ);
            latent_dense(ps, PW_MU, e, lde, p->mu_w, p->mu_b, ps->lrm, mu);
            latent_dense(ps, PW_LS, e, lde, p->ls_w, p->ls_b, ps->lrs, ls);
            dcrw_latent_kl(B, Z, mu, ls, ps->lz);
        }
        float *z = SLOT(ps, z, t, BZ);
        dcrw_latent_sample(BZ, mu, ls, eps + (size_t)t * BZ, z);
        if (lw) dcrw_latent_log_ratio(B, Z, z, eps + (size_t)t * BZ, ls, lw);
        decoder_step(ps, t, z);
        emit(ps, t, out);
    }
    const float *cT = SLOT(ps, c, T, BP);
    dcrw_bernoulli_loss(B, P, cT, x, ps->lx);
    if (out && out->images) dcrw_sigmoid_array(BP, cT, out->images + (size_t)out->b0 * P);
}

void dcrw_pass_generate(dcrw_pass *ps, const int32_t *labels, const float *z,
                        const pass_outputs *out) {
    const dcrw_dims *d = &ps->m->d;
    const size_t BP = (size_t)ps->B * d->P, BZ = (size_t)ps->B * d->Z;
    start(ps, labels);
    for (int t = 0; t < d->T; t++) {
        decoder_step(ps, t, z + (size_t)t * BZ);
        if (!out) continue;
        const size_t row = (size_t)t * out->B_total + out->b0;
        if (out->canvases)
            dcrw_sigmoid_array(BP, SLOT(ps, c, t + 1, BP), out->canvases + row * d->P);
        if (out->write_windows && d->wa)
            dcrw_fb_windows(ps->B, d->Nw, d->H, d->W, SLOT(ps, wp5, t, (size_t)ps->B * 5),
                            out->write_windows + row * 5);
    }
    if (out && out->images)
        dcrw_sigmoid_array(BP, SLOT(ps, c, d->T, BP), out->images + (size_t)out->b0 * d->P);
}
