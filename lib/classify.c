/* The attention classifier of MODEL.md §9 over a pass's workspace
 * (lib/pass.c): T reads of the image through the window its LSTM state
 * places, then a softmax over K classes. The forward and its backward are
 * neighbours here; they share the read, the LSTM and the packed products
 * with the generative pass (lib/forward.c, lib/backward.c).
 *
 * As there, the backward turns each step's stored activations into
 * gradients in place (the gates into dL/dq, the window numbers into
 * dL/dp5), so the weight gradients are one sgemm over all T·B rows after
 * the loop. */
#include <math.h>
#include <string.h>

#include "common.h"
#include "dense.h"
#include "filterbank.h"
#include "lstm.h"
#include "pass.h"
#include "pass_internal.h"

/* Row b of y [B×K]: log Σ_k exp(y_k), in double, from the largest logit. */
static double log_sum_exp(const float *y, int K) {
    float top = y[0];
    for (int k = 1; k < K; k++) top = y[k] > top ? y[k] : top;
    double s = 0.0;
    for (int k = 0; k < K; k++) s += exp((double)y[k] - top);
    return top + log(s);
}

void dcrw_classify_forward(dcrw_pass *ps, const float *x, const int32_t *labels,
                           const pass_outputs *out) {
    const dcrw_model *m = ps->m;
    const dcrw_dims *d = &m->d;
    const dcrw_views *p = &m->p;
    const int B = ps->B, E = d->E, R = d->R, K = d->K, T = d->T, N = d->Nr;
    const size_t BE = (size_t)B * E;
    memset(SLOT(ps, he, 0, BE), 0, BE * sizeof(float));
    memset(SLOT(ps, se, 0, BE), 0, BE * sizeof(float));
    for (int t = 0; t < T; t++) {
        const float *h = SLOT(ps, he, t, BE);
        float *p5 = SLOT(ps, rp5, t, (size_t)B * 5);
        float *FX = SLOT(ps, rFX, t, (size_t)B * N * d->W);
        float *FY = SLOT(ps, rFY, t, (size_t)B * N * d->H);
        float *gm = SLOT(ps, rg, t, (size_t)B);
        float *r = SLOT(ps, r, t, (size_t)B * R);
        float *g = SLOT(ps, ge, t, BE * 4);
        dcrw_bias_rows(B, 5, p->ratt_b, p5, 5);
        pass_gemm_nt(ps, PW_RATT, B, 5, E, h, E, p->ratt_w, E, 1.0f, p5, 5);
        dcrw_fb_filters_forward(B, N, d->H, d->W, p5, FX, FY, gm,
                                SLOT(ps, raux, t, dcrw_fb_aux_floats(B, N)));
        dcrw_fb_read_forward(B, d->C, N, d->H, d->W, FX, FY, gm, x, NULL, r, ps->scratch);
        pass_gemm_nt(ps, PW_ENC_U, B, 4 * E, R, r, R, p->enc_wih, R, 0.0f, g, 4 * E);
        pass_gemm_nt(ps, PW_ENC_WHH, B, 4 * E, E, h, E, p->enc_whh, E, 1.0f, g, 4 * E);
        dcrw_lstm_cell_forward(B, E, g, p->enc_b, 0, SLOT(ps, se, t, BE), SLOT(ps, se, t + 1, BE),
                               SLOT(ps, te, t, BE), SLOT(ps, he, t + 1, BE));
        if (out && out->read_windows)
            dcrw_fb_windows(B, N, d->H, d->W, p5,
                            out->read_windows + ((size_t)t * out->B_total + out->b0) * 5);
    }
    dcrw_bias_rows(B, K, p->class_b, ps->y, K);
    gemm_nt(B, K, E, SLOT(ps, he, T, BE), E, p->class_w, E, 1.0f, ps->y, K);
    for (int b = 0; b < B; b++) {
        const float *y = ps->y + (size_t)b * K;
        const double lse = log_sum_exp(y, K);
        ps->lx[b] = labels ? lse - y[labels[b]] : 0.0;
        ps->lz[b] = 0.0;
        if (out && out->probs) {
            float *pr = out->probs + ((size_t)out->b0 + b) * K;
            for (int k = 0; k < K; k++) pr[k] = (float)exp(y[k] - lse);
        }
    }
}

void dcrw_classify_backward(dcrw_pass *ps, const float *x, const int32_t *labels, float *grad,
                            float inv_batch) {
    const dcrw_model *m = ps->m;
    const dcrw_dims *d = &m->d;
    const dcrw_views *p = &m->p;
    dcrw_views g;
    dcrw_views_init(&g, &m->lay, grad);
    const int B = ps->B, E = d->E, R = d->R, K = d->K, T = d->T, N = d->Nr, TB = T * B;
    const size_t BE = (size_t)B * E;

    /* dL/dy = (softmax(y) − onehot(label)) / B */
    for (int b = 0; b < B; b++) {
        const float *y = ps->y + (size_t)b * K;
        float *dy = ps->dy + (size_t)b * K;
        const double lse = log_sum_exp(y, K);
        for (int k = 0; k < K; k++)
            dy[k] = (float)((exp(y[k] - lse) - (k == labels[b])) * inv_batch);
    }
    const float *hT = SLOT(ps, he, T, BE);
    dcrw_dense_backward(B, E, K, hT, E, p->class_w, ps->dy, K, ps->dhe, E, 0.0f, g.class_w,
                        g.class_b);
    memset(ps->dse, 0, BE * sizeof(float));

    for (int t = T - 1; t >= 0; t--) {
        /* LSTM: dL/dq in place of the gates; dh_{t−1} from W_hh, dr from W_ih */
        float *gq = SLOT(ps, ge, t, BE * 4);
        dcrw_lstm_cell_backward(B, E, gq, SLOT(ps, se, t, BE), SLOT(ps, te, t, BE), ps->dhe,
                                ps->dse);
        pass_gemm_nn(ps, PW_ENC_WHH, B, E, 4 * E, gq, 4 * E, p->enc_whh, E, 0.0f, ps->dhe, E);
        pass_gemm_nn(ps, PW_ENC_U, B, R, 4 * E, gq, 4 * E, p->enc_wih, R, 0.0f, ps->dr, R);

        /* the read: dr -> the window numbers, stored over the step's p5,
         * and their share of dh_{t−1} (the image itself has no gradient) */
        float *p5 = SLOT(ps, rp5, t, (size_t)B * 5);
        float *FX = SLOT(ps, rFX, t, (size_t)B * N * d->W);
        float *FY = SLOT(ps, rFY, t, (size_t)B * N * d->H);
        float *gm = SLOT(ps, rg, t, (size_t)B);
        dcrw_fb_read_backward(B, d->C, N, d->H, d->W, FX, FY, gm, x, NULL, ps->dr, NULL, NULL,
                              ps->dFX, ps->dFY, ps->dg, ps->scratch);
        dcrw_fb_filters_backward(B, N, d->H, d->W, p5, FX, FY, gm,
                                 SLOT(ps, raux, t, dcrw_fb_aux_floats(B, N)), ps->dFX, ps->dFY,
                                 ps->dg, ps->dp5);
        memcpy(p5, ps->dp5, (size_t)B * 5 * sizeof(float));
        gemm_nn(B, E, 5, p5, 5, p->ratt_w, E, 1.0f, ps->dhe, E);
    }

    /* the deferred weight gradients: slots are time-major and contiguous,
     * so h of steps 0..T−1 (each step's input state) is he[0 .. T·B) */
    pass_weights_backward(ps, TB, R, 4 * E, ps->r, R, ps->ge, 4 * E, g.enc_wih, R, g.enc_b);
    pass_weights_backward(ps, TB, E, 4 * E, ps->he, E, ps->ge, 4 * E, g.enc_whh, E, NULL);
    dcrw_dense_backward(TB, E, 5, ps->he, E, NULL, ps->rp5, 5, NULL, 0, 0.0f, g.ratt_w, g.ratt_b);
}
