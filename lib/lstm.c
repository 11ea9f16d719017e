/* LSTM cell, forward and backward over a batch. */
#include <math.h>
#include <stddef.h>

#include "lstm.h"

static inline float sigmoidf(float u) {
    return 1.0f / (1.0f + expf(-u));
}

void lstm_cell_forward(int B, int S, float *gates, const float *s_prev, float *s, float *tanh_s,
                       float *h) {
    for (int b = 0; b < B; b++) {
        float *q = gates + (size_t)b * 4 * S;
        float *qi = q, *qf = q + S, *qg = q + 2 * S, *qo = q + 3 * S;
        const float *sp = s_prev ? s_prev + (size_t)b * S : NULL;
        float *sb = s + (size_t)b * S, *tb = tanh_s + (size_t)b * S, *hb = h + (size_t)b * S;
        for (int k = 0; k < S; k++) {
            float i = sigmoidf(qi[k]), f = sigmoidf(qf[k]), g = tanhf(qg[k]), o = sigmoidf(qo[k]);
            float sn = i * g + (sp ? f * sp[k] : 0.0f);
            float th = tanhf(sn);
            qi[k] = i;
            qf[k] = f;
            qg[k] = g;
            qo[k] = o;
            sb[k] = sn;
            tb[k] = th;
            hb[k] = o * th;
        }
    }
}

void lstm_cell_backward(int B, int S, float *gates, const float *s_prev, const float *tanh_s,
                        const float *dh, float *ds) {
    for (int b = 0; b < B; b++) {
        float *q = gates + (size_t)b * 4 * S;
        float *qi = q, *qf = q + S, *qg = q + 2 * S, *qo = q + 3 * S;
        const float *sp = s_prev ? s_prev + (size_t)b * S : NULL;
        const float *tb = tanh_s + (size_t)b * S, *dhb = dh + (size_t)b * S;
        float *dsb = ds ? ds + (size_t)b * S : NULL;
        for (int k = 0; k < S; k++) {
            float i = qi[k], f = qf[k], g = qg[k], o = qo[k], th = tb[k];
            float dst = dhb[k] * o * (1.0f - th * th) + (dsb ? dsb[k] : 0.0f);
            float spk = sp ? sp[k] : 0.0f;
            qi[k] = dst * g * i * (1.0f - i);
            qf[k] = dst * spk * f * (1.0f - f);
            qg[k] = dst * i * (1.0f - g * g);
            qo[k] = dhb[k] * th * o * (1.0f - o);
            if (dsb) dsb[k] = dst * f;
        }
    }
}
