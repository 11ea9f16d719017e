/* The LSTM cell, dense layers and the latent/loss pieces against hand
 * computation, naive loops and finite differences. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "canvas.h"
#include "dense.h"
#include "latent.h"
#include "lstm.h"
#include "testutil.h"

static const float zero4[4] = {0, 0, 0, 0};
static const float zero16[16] = {0};

/* S = 1, B = 2, with pre-activations chosen so every gate is a round number */
START_TEST(test_lstm_hand) {
    float q[8] = {0, 0, 0, 0, logf(3.0f), -logf(3.0f), atanhf(0.5f), 0};
    float s_prev[2] = {1.0f, 2.0f}, s[2], th[2], h[2];
    dcrw_lstm_cell_forward(2, 1, q, zero4, 0, s_prev, s, th, h);
    /* row 0: i = f = o = 1/2, g = 0: s = 1/2, h = tanh(1/2)/2 */
    ck_assert_float_eq_tol(s[0], 0.5f, 1e-7f);
    ck_assert_float_eq_tol(h[0], 0.5f * 0.46211715726f, 1e-7f);
    /* row 1: i = 3/4, f = 1/4, g = 1/2, o = 1/2: s = 2/4 + 3/8 = 7/8 */
    ck_assert_float_eq_tol(q[4], 0.75f, 1e-6f);
    ck_assert_float_eq_tol(q[5], 0.25f, 1e-6f);
    ck_assert_float_eq_tol(q[6], 0.5f, 1e-6f);
    ck_assert_float_eq_tol(s[1], 0.875f, 1e-6f);
    ck_assert_float_eq_tol(h[1], 0.5f * (float)tanh(0.875), 1e-6f);
    /* a zero previous state: the forget gate has nothing to keep */
    float q2[4] = {0, 5, 0, 0}, zero = 0.0f, s2, t2, h2;
    dcrw_lstm_cell_forward(1, 1, q2, zero4, 0, &zero, &s2, &t2, &h2);
    ck_assert_float_eq(s2, 0.0f);
}
END_TEST

/* a whole step through the weights: q = W_ih u + W_hh h + b, by hand */
START_TEST(test_lstm_step_weights) {
    const float u[2] = {1.0f, 2.0f}, hp[1] = {-1.0f};
    const float wih[8] = {0.5f, 0.0f, 1.0f, -1.0f, 0.0f, 0.25f, 2.0f, 0.0f}; /* [4×2] */
    const float whh[4] = {1.0f, 0.0f, 0.0f, -1.0f};                          /* [4×1] */
    const float b[4] = {0.0f, 1.0f, 0.0f, 0.0f};
    float q[4];
    dcrw_dense_forward(1, 2, 4, u, 2, wih, b, q, 4);
    dcrw_dense_forward(1, 1, 4, hp, 1, whh, NULL, q + 0, 4); /* overwrite: so add by hand */
    float qa[4];
    dcrw_dense_forward(1, 2, 4, u, 2, wih, b, qa, 4);
    for (int k = 0; k < 4; k++) qa[k] += q[k];
    /* W_ih u + b = (0.5, 1−2+1, 0.5, 2); W_hh h = (−1, 0, 0, 1) */
    const float expect[4] = {-0.5f, 0.0f, 0.5f, 3.0f};
    for (int k = 0; k < 4; k++) ck_assert_float_eq_tol(qa[k], expect[k], 1e-6f);
    float s, th, h;
    float sp = 0.5f;
    dcrw_lstm_cell_forward(1, 1, qa, zero4, 0, &sp, &s, &th, &h);
    double i = 1 / (1 + exp(0.5)), f = 0.5, g = tanh(0.5), o = 1 / (1 + exp(-3.0));
    ck_assert_float_eq_tol(s, (float)(f * 0.5 + i * g), 1e-6f);
    ck_assert_float_eq_tol(h, (float)(o * tanh(f * 0.5 + i * g)), 1e-6f);
}
END_TEST

static double lstm_loss(int B, int S, const float *q0, const float *sp, const float *R1,
                        const float *R2) {
    float *q = malloc((size_t)B * 4 * S * 4), *s = malloc((size_t)B * S * 4),
          *t = malloc((size_t)B * S * 4), *h = malloc((size_t)B * S * 4);
    memcpy(q, q0, (size_t)B * 4 * S * 4);
    dcrw_lstm_cell_forward(B, S, q, zero16, 0, sp, s, t, h);
    double L = 0;
    for (int i = 0; i < B * S; i++) L += (double)h[i] * R1[i] + (double)s[i] * R2[i];
    free(q), free(s), free(t), free(h);
    return L;
}

/* backward of L = Σ h⊙R1 + Σ s⊙R2: dq and ds_prev against central
 * differences (h = 1e-2 on O(1) inputs; float noise ~1e-6, so 2e-3 + 1%) */
START_TEST(test_lstm_backward_fd) {
    const int B = 3, S = 4;
    float q0[48], sp[12], R1[12], R2[12], q[48], s[12], t[12], h[12], ds[12];
    tu_fill_uniform(q0, 48, -2, 2, 1);
    tu_fill_uniform(sp, 12, -1.5f, 1.5f, 2);
    tu_fill_uniform(R1, 12, -1, 1, 3);
    tu_fill_uniform(R2, 12, -1, 1, 4);
    memcpy(q, q0, sizeof q);
    dcrw_lstm_cell_forward(B, S, q, zero16, 0, sp, s, t, h);
    memcpy(ds, R2, sizeof ds);
    dcrw_lstm_cell_backward(B, S, q, sp, t, R1, ds);
    const float eps = 1e-2f;
    for (int k = 0; k < 48; k++) {
        float qq[48];
        memcpy(qq, q0, sizeof qq);
        qq[k] += eps;
        double lp = lstm_loss(B, S, qq, sp, R1, R2);
        qq[k] -= 2 * eps;
        double lm = lstm_loss(B, S, qq, sp, R1, R2);
        double fd = (lp - lm) / (2 * eps);
        ck_assert_msg(fabs(fd - q[k]) < 2e-3 + 1e-2 * fabs(fd), "dq[%d] %g vs %g", k, q[k], fd);
    }
    for (int k = 0; k < 12; k++) {
        float ss[12];
        memcpy(ss, sp, sizeof ss);
        ss[k] += eps;
        double lp = lstm_loss(B, S, q0, ss, R1, R2);
        ss[k] -= 2 * eps;
        double lm = lstm_loss(B, S, q0, ss, R1, R2);
        double fd = (lp - lm) / (2 * eps);
        ck_assert_msg(fabs(fd - ds[k]) < 2e-3 + 1e-2 * fabs(fd), "ds[%d] %g vs %g", k, ds[k], fd);
    }
}
END_TEST

/* strided dense forward and backward against naive loops */
START_TEST(test_dense_naive) {
    enum { B = 5, In = 7, Out = 3, LDU = 9, LDY = 4 };
    float u[B * LDU], A[Out * In], a[Out], y[B * LDY], dy[B * LDY], du[B * LDU], dA[Out * In],
        da[Out];
    tu_fill_uniform(u, sizeof u / 4, -1, 1, 5);
    tu_fill_uniform(A, sizeof A / 4, -1, 1, 6);
    tu_fill_uniform(a, Out, -1, 1, 7);
    tu_fill_uniform(dy, sizeof dy / 4, -1, 1, 8);
    for (int i = 0; i < B * LDY; i++) y[i] = 42.0f;
    dcrw_dense_forward(B, In, Out, u, LDU, A, a, y, LDY);
    for (int b = 0; b < B; b++) {
        for (int o = 0; o < Out; o++) {
            double acc = a[o];
            for (int i = 0; i < In; i++) acc += (double)u[b * LDU + i] * A[o * In + i];
            ck_assert_float_eq_tol(y[b * LDY + o], (float)acc, 1e-5f);
        }
        ck_assert_float_eq(y[b * LDY + 3], 42.0f); /* the gap is untouched */
    }
    for (int i = 0; i < B * LDU; i++) du[i] = 7.0f;
    for (int i = 0; i < Out * In; i++) dA[i] = 1.0f; /* accumulates onto this */
    for (int i = 0; i < Out; i++) da[i] = -1.0f;
    dcrw_dense_backward(B, In, Out, u, LDU, A, dy, LDY, du, LDU, 0.0f, dA, da);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < In; i++) {
            double acc = 0;
            for (int o = 0; o < Out; o++) acc += (double)dy[b * LDY + o] * A[o * In + i];
            ck_assert_float_eq_tol(du[b * LDU + i], (float)acc, 1e-5f);
        }
    for (int o = 0; o < Out; o++) {
        double sb = -1.0;
        for (int b = 0; b < B; b++) sb += dy[b * LDY + o];
        ck_assert_float_eq_tol(da[o], (float)sb, 1e-5f);
        for (int i = 0; i < In; i++) {
            double acc = 1.0;
            for (int b = 0; b < B; b++) acc += (double)dy[b * LDY + o] * u[b * LDU + i];
            ck_assert_float_eq_tol(dA[o * In + i], (float)acc, 1e-5f);
        }
    }
}
END_TEST

START_TEST(test_latent_hand) {
    const float mu[3] = {1.0f, 0.0f, -2.0f}, ls[3] = {0.0f, logf(2.0f), 0.5f};
    const float eps[3] = {0.5f, -1.0f, 2.0f};
    float z[3];
    dcrw_latent_sample(3, mu, ls, eps, z);
    ck_assert_float_eq_tol(z[0], 1.5f, 1e-6f);
    ck_assert_float_eq_tol(z[1], -2.0f, 1e-6f);
    ck_assert_float_eq_tol(z[2], -2.0f + 2.0f * expf(0.5f), 1e-6f);
    double kl[1] = {10.0};
    dcrw_latent_kl(1, 3, mu, ls, kl);
    /* ½(1 + 1 − 0 − 1) + ½(0 + 4 − 2 ln 2 − 1) + ½(4 + e − 1 − 1) */
    double expect = 10.0 + 0.5 + (1.5 - log(2.0)) + 0.5 * (4 + exp(1.0) - 2.0);
    ck_assert(fabs(kl[0] - expect) < 1e-6);

    const float c[4] = {0.0f, 2.0f, -100.0f, 100.0f}, x[4] = {1.0f, 0.0f, 1.0f, 1.0f};
    double lx[4] = {0, 0, 0, 0};
    for (int i = 0; i < 4; i++) dcrw_bernoulli_loss(1, 1, c + i, x + i, lx + i);
    ck_assert(fabs(lx[0] - log(2.0)) < 1e-7);
    ck_assert(fabs(lx[1] - log1p(exp(2.0))) < 1e-6);
    ck_assert(fabs(lx[2] - 100.0) < 1e-5); /* stable: no log(0) */
    ck_assert(lx[3] >= 0.0 && lx[3] < 1e-6);
    float dc[4];
    dcrw_bernoulli_backward(4, c, x, 0.5f, dc);
    ck_assert_float_eq_tol(dc[0], -0.25f, 1e-7f);
    ck_assert_float_eq_tol(dc[1], 0.5f / (1.0f + expf(-2.0f)), 1e-7f);
    ck_assert_float_eq_tol(dc[2], -0.5f, 1e-7f);
}
END_TEST

/* L = Σ z⊙R + k·KL: dcrw_latent_backward against central differences */
static double latent_loss(int n, const float *mu, const float *ls, const float *eps, const float *R,
                          float k) {
    float z[16];
    dcrw_latent_sample(n, mu, ls, eps, z);
    double kl = 0, L = 0;
    dcrw_latent_kl(1, n, mu, ls, &kl);
    for (int i = 0; i < n; i++) L += (double)z[i] * R[i];
    return L + k * kl;
}

START_TEST(test_latent_backward_fd) {
    enum { N = 16 };
    float mu[N], ls[N], eps[N], R[N], gmu[N], gls[N], gze[N];
    tu_fill_uniform(mu, N, -1, 1, 11);
    tu_fill_uniform(ls, N, -1, 1, 12);
    tu_fill_uniform(eps, N, -2, 2, 13);
    tu_fill_uniform(R, N, -1, 1, 14);
    const float k = 0.3f;
    memcpy(gmu, mu, sizeof mu);
    memcpy(gls, ls, sizeof ls);
    for (int i = 0; i < N; i++) gze[i] = R[i] * eps[i];
    dcrw_latent_backward(N, gmu, gls, R, gze, k);
    const float h = 1e-2f;
    for (int i = 0; i < N; i++) {
        float a[N];
        memcpy(a, mu, sizeof a);
        a[i] += h;
        double lp = latent_loss(N, a, ls, eps, R, k);
        a[i] -= 2 * h;
        double lm = latent_loss(N, a, ls, eps, R, k);
        ck_assert(fabs((lp - lm) / (2 * h) - gmu[i]) < 1e-3);
        memcpy(a, ls, sizeof a);
        a[i] += h;
        lp = latent_loss(N, mu, a, eps, R, k);
        a[i] -= 2 * h;
        lm = latent_loss(N, mu, a, eps, R, k);
        double fd = (lp - lm) / (2 * h);
        ck_assert_msg(fabs(fd - gls[i]) < 2e-3 + 1e-3 * fabs(fd), "dls %g vs %g", gls[i], fd);
    }
    /* beyond the guard σ stops growing: finite, and no gradient through σ */
    float big_mu = 0, big_ls = 1000.0f, e1 = 1.0f, one = 1.0f;
    double kl = 0;
    dcrw_latent_kl(1, 1, &big_mu, &big_ls, &kl);
    ck_assert(isfinite(kl));
    dcrw_latent_backward(1, &big_mu, &big_ls, &one, &e1, 1.0f);
    ck_assert_float_eq(big_ls, -1.0f);
}
END_TEST

int main(void) {
    Suite *s = suite_create("dense_lstm");
    TCase *tc = tcase_create("dense_lstm");
    tcase_add_test(tc, test_lstm_hand);
    tcase_add_test(tc, test_lstm_step_weights);
    tcase_add_test(tc, test_lstm_backward_fd);
    tcase_add_test(tc, test_dense_naive);
    tcase_add_test(tc, test_latent_hand);
    tcase_add_test(tc, test_latent_backward_fd);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
