/* Backpropagation through time of the batch-mean loss (MODEL.md §5) after
 * dcrw_pass_forward with keep = 1.
 *
 * The loop runs t = T−1 … 0 and carries dL/dc (the canvas), dL/dh_dec and
 * dL/ds_dec (and the encoder's). Each step turns its stored activations into
 * gradients in place (gates into dL/dq, μ into dL/dμ, the attention numbers
 * into dL/dp5, the write patch into dL/dw), so that after the loop every
 * recurrent or per-step weight gradient is ONE sgemm over all T·B rows,
 * rather than T small ones. The products dY·W of each step read W in place
 * with the packed kernel where it is faster (pass_gemm_nn). */
#include <string.h>

#include "canvas.h"
#include "common.h"
#include "conv.h"
#include "dense.h"
#include "filterbank.h"
#include "gemm.h"
#include "latent.h"
#include "lstm.h"
#include "pass.h"
#include "pass_internal.h"

static void add_rows(int B, int n, const float *src, int lds, float *dst, int ldd) {
    for (int b = 0; b < B; b++) {
        const float *s = src + (size_t)b * lds;
        float *o = dst + (size_t)b * ldd;
        for (int i = 0; i < n; i++) o[i] += s[i];
    }
}

/* The write of step t: dc (= dL/dc_{t+1}) -> dL/dw and dL/dp5 stored over
 * the step's w and wp5, and their share of dL/dh_dec added to dh. */
static void write_backward(dcrw_pass *ps, int t, float *dh) {
    const dcrw_model *m = ps->m;
    const dcrw_dims *d = &m->d;
    const dcrw_views *p = &m->p;
    const int B = ps->B;
    float *w = SLOT(ps, w, t, (size_t)B * d->Wout);
    if (d->wa) {
        float *p5 = SLOT(ps, wp5, t, (size_t)B * 5);
        float *FX = SLOT(ps, wFX, t, (size_t)B * d->Nw * d->W);
        float *FY = SLOT(ps, wFY, t, (size_t)B * d->Nw * d->H);
        float *gm = SLOT(ps, wg, t, (size_t)B);
        dcrw_fb_write_backward(B, d->C, d->Nw, d->H, d->W, FX, FY, gm, w, ps->dc, ps->dw, ps->dFX,
                               ps->dFY, ps->dg, ps->scratch);
        dcrw_fb_filters_backward(B, d->Nw, d->H, d->W, p5, FX, FY, gm,
                                 SLOT(ps, waux, t, dcrw_fb_aux_floats(B, d->Nw)), ps->dFX, ps->dFY,
                                 ps->dg, ps->dp5);
        memcpy(p5, ps->dp5, (size_t)B * 5 * sizeof(float));
        memcpy(w, ps->dw, (size_t)B * d->Wout * sizeof(float));
        gemm_nn(B, d->D, 5, p5, 5, p->watt_w, d->D, 1.0f, dh, d->D);
    } else {
        memcpy(w, ps->dc, (size_t)B * d->P * sizeof(float));
    }
    pass_gemm_nn(ps, PW_WRITE, B, d->D, d->Wout, w, d->Wout, p->write_w, d->D, 1.0f, dh, d->D);
}

/* The read of step t: dr -> dL/dx̂ in ps->dxhat, dL/dp5 stored over the
 * step's rp5, and its share of dL/dh_dec_{t−1} added to dhn. At t = 0
 * (dhn NULL) x̂_0 and h_dec_{−1} come from constants: only dp5 is needed. */
static void read_backward(dcrw_pass *ps, int t, const float *x, const float *dr, float *dhn) {
    const dcrw_model *m = ps->m;
    const dcrw_dims *d = &m->d;
    const int B = ps->B, P = d->P;
    const float *cp = SLOT(ps, c, t, (size_t)B * P);
    /* x̂_t is cheap to recompute and as big as the canvas: not kept; σ′
     * comes with it for the canvas's backward after the read's */
    dcrw_xhat_rows_deriv(B, P, x, cp, ps->xhat, ps->dsig);
    float *p5 = SLOT(ps, rp5, t, (size_t)B * 5);
    float *FX = SLOT(ps, rFX, t, (size_t)B * d->Nr * d->W);
    float *FY = SLOT(ps, rFY, t, (size_t)B * d->Nr * d->H);
    float *gm = SLOT(ps, rg, t, (size_t)B);
    dcrw_fb_read_backward(B, d->C, d->Nr, d->H, d->W, FX, FY, gm, x, ps->xhat, dr, NULL,
                          dhn ? ps->dxhat : NULL, ps->dFX, ps->dFY, ps->dg, ps->scratch);
    dcrw_fb_filters_backward(B, d->Nr, d->H, d->W, p5, FX, FY, gm,
                             SLOT(ps, raux, t, dcrw_fb_aux_floats(B, d->Nr)), ps->dFX, ps->dFY,
                             ps->dg, ps->dp5);
    memcpy(p5, ps->dp5, (size_t)B * 5 * sizeof(float));
    if (dhn) gemm_nn(B, d->D, 5, p5, 5, m->p.ratt_w, d->D, 1.0f, dhn, d->D);
}

/* rows [B×n] of every step's slot of `all` (T slots, time-major), summed */
static void sum_steps(int T, int B, int n, const float *all, float *sum) {
    const size_t Bn = (size_t)B * n;
    memcpy(sum, all, Bn * sizeof(float));
    for (int t = 1; t < T; t++) add_rows(B, n, all + (size_t)t * Bn, n, sum, n);
}

/* A conditional model's label columns (MODEL.md §10): the gradients of the
 * label's column of each weight are its layer's dL/dq (or dL/dμ, dL/dlogσ)
 * summed over the steps, put in the column of each image's label. The
 * label rows of the forward are spent, so they hold the sums. */
static void label_backward(dcrw_pass *ps, const int32_t *labels, dcrw_views *g) {
    const dcrw_dims *d = &ps->m->d;
    const int B = ps->B, D = d->D, E = d->E, Z = d->Z, T = d->T;
    sum_steps(T, B, 4 * D, ps->gd, ps->lrd);
    dcrw_label_rows_backward(B, 4 * D, ps->lrd, 4 * D, labels, g->dec_wih, d->Zw, d->Z);
    if (!d->cnn) {
        /* without read attention xq holds the sum already (the x columns') */
        if (d->ra) sum_steps(T, B, 4 * E, ps->ge, ps->lre);
        dcrw_label_rows_backward(B, 4 * E, d->ra ? ps->lre : ps->xq, 4 * E, labels, g->enc_wih,
                                 d->Rin, d->R + D);
    } else {
        /* dcrw-noread has one q(z|x): its gradients are in one slot */
        const int steps = d->ra ? T : 1;
        sum_steps(steps, B, Z, ps->mu, ps->lrm);
        sum_steps(steps, B, Z, ps->ls, ps->lrs);
        dcrw_label_rows_backward(B, Z, ps->lrm, Z, labels, g->mu_w, d->Qw, d->Q);
        dcrw_label_rows_backward(B, Z, ps->lrs, Z, labels, g->ls_w, d->Qw, d->Q);
    }
}

void dcrw_pass_backward(dcrw_pass *ps, const float *x, const int32_t *labels, const float *eps,
                        float *grad, float inv_batch, float kl_weight) {
    const dcrw_model *m = ps->m;
    const dcrw_dims *d = &m->d;
    const dcrw_views *p = &m->p;
    dcrw_views g;
    dcrw_views_init(&g, &m->lay, grad);
    const int B = ps->B, P = d->P, D = d->D, E = d->E, Z = d->Z, Q = d->Q, T = d->T;
    const int Us = ps->Us, TB = T * B;
    const size_t BP = (size_t)B * P, BD = (size_t)B * D, BE = (size_t)B * E, BZ = (size_t)B * Z;
    const int noread_cnn = d->cnn && !d->ra;
    const cnn_shape cs = {B, d->Cin, d->ch, d->cw, d->K1, d->K2};
    const float inv_b = inv_batch, kl_scale = inv_batch * kl_weight;

    dcrw_bernoulli_backward(BP, SLOT(ps, c, T, BP), x, inv_b, ps->dc);
    memset(ps->dh, 0, BD * sizeof(float));
    memset(ps->dsd, 0, BD * sizeof(float));
    if (!d->cnn) {
        memset(ps->dhe, 0, BE * sizeof(float));
        memset(ps->dse, 0, BE * sizeof(float));
    }
    /* the dense conv2's weight gradient, summed over the glimpses and
     * folded onto w2's taps once, after them */
    float *dwx = ps->dwx && pass_conv2x(ps) && !noread_cnn ? ps->dwx : NULL;
    if (dwx) memset(dwx, 0, dcrw_cnn_dwx_floats(&cs) * sizeof(float));
    if (noread_cnn) {
        memset(ps->gz, 0, BZ * sizeof(float));
        memset(ps->gze, 0, BZ * sizeof(float));
    }

    float *dh = ps->dh, *dhn_next = ps->dhn;
    for (int t = T - 1; t >= 0; t--) {
        /* the states before step 0 (h_dec, h_enc, the canvas) are constants
         * (MODEL.md §4): at t = 0 nothing takes their gradients, dhn NULL */
        float *dhn = t ? dhn_next : NULL;
        write_backward(ps, t, dh);

        /* decoder LSTM: dL/dq in place of the gates, then dz and the carry;
         * the bias's gradient while dL/dq is in cache, not in a pass over
         * all T·B rows after the loop */
        float *gq = SLOT(ps, gd, t, BD * 4);
        dcrw_lstm_cell_backward(B, D, gq, SLOT(ps, sd, t, BD), SLOT(ps, td, t, BD), dh, ps->dsd);
        dcrw_bias_rows_backward(B, 4 * D, gq, 4 * D, g.dec_b);
        pass_gemm_nn(ps, PW_DEC_WIH, B, Z, 4 * D, gq, 4 * D, p->dec_wih, d->Zw, 0.0f, ps->dz, Z);
        if (dhn) pass_gemm_nn(ps, PW_DEC_WHH, B, D, 4 * D, gq, 4 * D, p->dec_whh, D, 0.0f, dhn, D);

        const float *eps_t = eps + (size_t)t * BZ;
        if (noread_cnn) {
            for (size_t i = 0; i < BZ; i++) {
                ps->gz[i] += ps->dz[i];
                ps->gze[i] += ps->dz[i] * eps_t[i];
            }
        } else {
            for (size_t i = 0; i < BZ; i++) ps->dze[i] = ps->dz[i] * eps_t[i];
            float *mu = SLOT(ps, mu, t, BZ), *ls = SLOT(ps, ls, t, BZ);
            dcrw_latent_backward(BZ, mu, ls, ps->dz, ps->dze, kl_scale);
            pass_gemm_nn(ps, PW_MU, B, Q, Z, mu, Z, p->mu_w, d->Qw, 0.0f, ps->de, Q);
            pass_gemm_nn(ps, PW_LS, B, Q, Z, ls, Z, p->ls_w, d->Qw, 1.0f, ps->de, Q);

            /* dsrc: gradient of the encoder's image input, r_t or x̂_t */
            const float *dsrc;
            int ldsrc;
            if (!d->cnn) {
                float *ge = SLOT(ps, ge, t, BE * 4);
                for (size_t i = 0; i < BE; i++) ps->dhe[i] += ps->de[i];
                dcrw_lstm_cell_backward(B, E, ge, SLOT(ps, se, t, BE), SLOT(ps, te, t, BE), ps->dhe,
                                        ps->dse);
                dcrw_bias_rows_backward(B, 4 * E, ge, 4 * E, g.enc_b);
                if (dhn) {
                    pass_gemm_nn(ps, PW_ENC_WHH, B, E, 4 * E, ge, 4 * E, p->enc_whh, E, 0.0f,
                                 ps->dhe, E);
                    pass_gemm_nn(ps, PW_ENC_U, B, Us, 4 * E, ge, 4 * E, p->enc_wih + ps->ucol,
                                 d->Rin, 0.0f, ps->du, Us);
                    add_rows(B, D, ps->du + Us - D, Us, dhn, D);
                } else if (d->ra) {
                    /* step 0: of U = [r, h_dec_{−1}] only r's gradient (to the
                     * read window's bias) is needed; of x̂_0 none */
                    pass_gemm_nn(ps, PW_ENC_U, B, d->R, 4 * E, ge, 4 * E, p->enc_wih + ps->ucol,
                                 d->Rin, 0.0f, ps->du, Us);
                }
                dsrc = ps->du;
                ldsrc = Us;
            } else {
                if (dhn) add_rows(B, D, ps->de + d->F, Q, dhn, D);
                dcrw_cnn_backward(&cs, SLOT(ps, r, t, (size_t)B * d->R), p->conv1_w, p->conv2_w,
                                  pass_conv2x(ps), SLOT(ps, cs, t, ps->cnn_saved), ps->de, Q,
                                  ps->dr, g.conv1_w, g.conv1_b, g.conv2_w, g.conv2_b, dwx,
                                  ps->scratch);
                dsrc = ps->dr;
                ldsrc = d->R;
            }
            if (d->ra) {
                if (dsrc != ps->dr) dcrw_copy_rows(B, d->R, dsrc, ldsrc, ps->dr, d->R);
                read_backward(ps, t, x, ps->dr, dhn);
                dsrc = ps->dxhat;
                ldsrc = P;
            }
            /* x̂_t = x − σ(c_{t−1}): the canvas before this step gets −σ′·dx̂ */
            if (dhn)
                dcrw_xhat_rows_backward(B, P, SLOT(ps, c, t, BP), d->ra ? ps->dsig : NULL, dsrc,
                                        ldsrc, ps->dc);
        }
        float *tmp = dh;
        dh = dhn_next;
        dhn_next = tmp;
    }

    if (noread_cnn) {
        dcrw_latent_backward(BZ, ps->mu, ps->ls, ps->gz, ps->gze, (float)T * kl_scale);
        pass_gemm_nn(ps, PW_MU, B, Q, Z, ps->mu, Z, p->mu_w, d->Qw, 0.0f, ps->de, Q);
        pass_gemm_nn(ps, PW_LS, B, Q, Z, ps->ls, Z, p->ls_w, d->Qw, 1.0f, ps->de, Q);
        pass_weights_backward(ps, B, Q, Z, ps->e, Q, ps->mu, Z, g.mu_w, d->Qw, g.mu_b);
        pass_weights_backward(ps, B, Q, Z, ps->e, Q, ps->ls, Z, g.ls_w, d->Qw, g.ls_b);
        dcrw_cnn_backward(&cs, x, p->conv1_w, p->conv2_w, pass_conv2x(ps), ps->cs, ps->de, Q, NULL,
                          g.conv1_w, g.conv1_b, g.conv2_w, g.conv2_b, NULL, ps->scratch);
    }

    if (dwx) dcrw_cnn_dwx_fold(&cs, dwx, g.conv2_w);

    /* the deferred weight gradients: slots are time-major and contiguous, so
     * h_dec of steps 0..T−1 is hd[0 .. T·B) and of steps 1..T is hd[B ..);
     * the recurrent weights skip step 0, whose input is the zero state (the
     * LSTMs' biases are summed in the loop) */
    const float *hd_prev = ps->hd, *hd_next = ps->hd + BD;
    pass_weights_backward(ps, TB, Z, 4 * D, ps->z, Z, ps->gd, 4 * D, g.dec_wih, d->Zw, NULL);
    pass_weights_backward(ps, TB - B, D, 4 * D, hd_prev + BD, D, ps->gd + 4 * BD, 4 * D, g.dec_whh,
                          D, NULL);
    pass_weights_backward(ps, TB, D, d->Wout, hd_next, D, ps->w, d->Wout, g.write_w, D, g.write_b);
    if (d->wa) pass_weights_backward(ps, TB, D, 5, hd_next, D, ps->wp5, 5, g.watt_w, D, g.watt_b);
    if (d->ra) pass_weights_backward(ps, TB, D, 5, hd_prev, D, ps->rp5, 5, g.ratt_w, D, g.ratt_b);
    if (!noread_cnn) {
        const float *e_all = d->cnn ? ps->e : ps->he + BE;
        pass_weights_backward(ps, TB, Q, Z, e_all, Q, ps->mu, Z, g.mu_w, d->Qw, g.mu_b);
        pass_weights_backward(ps, TB, Q, Z, e_all, Q, ps->ls, Z, g.ls_w, d->Qw, g.ls_b);
    }
    if (!d->cnn) {
        pass_weights_backward(ps, TB, Us, 4 * E, ps->U, Us, ps->ge, 4 * E, g.enc_wih + ps->ucol,
                              d->Rin, NULL);
        pass_weights_backward(ps, TB - B, E, 4 * E, ps->he + BE, E, ps->ge + 4 * BE, 4 * E,
                              g.enc_whh, E, NULL);
        if (!d->ra) {
            /* the hoisted x columns: Σ_t dq_t, then one product with x */
            memset(ps->xq, 0, BE * 4 * sizeof(float));
            for (int t = 0; t < T; t++)
                add_rows(B, 4 * E, ps->ge + (size_t)t * BE * 4, 4 * E, ps->xq, 4 * E);
            pass_weights_backward(ps, B, P, 4 * E, x, P, ps->xq, 4 * E, g.enc_wih, d->Rin, NULL);
        }
    }
    if (d->K) label_backward(ps, labels, &g);
}
