/* The LSTM cell, dense layers and the latent/loss pieces against hand
 * computation, naive loops, and finite differences of double-precision
 * transcriptions of the equations. */
#include <math.h>
#include <stdint.h>
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

/* The cell in double, straight from the equations, for the finite
 * differences: rows of 4S gates (i, f, g, o pre-activations). */
typedef struct lstm_ctx {
    int B, S;
    double *q, *sp;
    const float *R1, *R2;
    double *s, *h; /* the last forward, for comparison */
} lstm_ctx;

static double sigmoid_d(double u) {
    return 1.0 / (1.0 + exp(-u));
}

/* L = Σ h⊙R1 + Σ s⊙R2 */
static double lstm_loss(void *ctx) {
    lstm_ctx *c = ctx;
    const int S = c->S;
    double L = 0.0;
    for (int b = 0; b < c->B; b++)
        for (int k = 0; k < S; k++) {
            const double *q = c->q + (size_t)b * 4 * S;
            const size_t r = (size_t)b * S + k;
            double i = sigmoid_d(q[k]), f = sigmoid_d(q[S + k]), g = tanh(q[2 * S + k]),
                   o = sigmoid_d(q[3 * S + k]);
            c->s[r] = i * g + f * c->sp[r];
            c->h[r] = o * tanh(c->s[r]);
            L += c->h[r] * c->R1[r] + c->s[r] * c->R2[r];
        }
    return L;
}

/* backward of L = Σ h⊙R1 + Σ s⊙R2: dq and ds_prev against central
 * differences of the double cell (tu_fd_check); the float forward agrees
 * with it first, so the gradient is that of the library's own cell */
START_TEST(test_lstm_backward_fd) {
    enum { B = 3, S = 4 };
    float q0[4 * B * S], sp[B * S], R1[B * S], R2[B * S], q[4 * B * S], s[B * S], t[B * S],
        h[B * S], ds[B * S];
    tu_fill_uniform(q0, 4 * B * S, -2, 2, 1);
    tu_fill_uniform(sp, B * S, -1.5f, 1.5f, 2);
    tu_fill_uniform(R1, B * S, -1, 1, 3);
    tu_fill_uniform(R2, B * S, -1, 1, 4);
    memcpy(q, q0, sizeof q);
    dcrw_lstm_cell_forward(B, S, q, zero16, 0, sp, s, t, h);
    memcpy(ds, R2, sizeof ds);
    dcrw_lstm_cell_backward(B, S, q, sp, t, R1, ds);

    double qd[4 * B * S], spd[B * S], sd[B * S], hd[B * S];
    for (int k = 0; k < 4 * B * S; k++) qd[k] = q0[k];
    for (int k = 0; k < B * S; k++) spd[k] = sp[k];
    lstm_ctx c = {B, S, qd, spd, R1, R2, sd, hd};
    lstm_loss(&c);
    for (int k = 0; k < B * S; k++) {
        ck_assert_msg(fabs(s[k] - sd[k]) < 1e-6 && fabs(h[k] - hd[k]) < 1e-6,
                      "cell %d: s %.9g vs %.9g, h %.9g vs %.9g", k, s[k], sd[k], h[k], hd[k]);
    }
    const tu_fd o = tu_fd_f64(SIZE_MAX, 0);
    tu_fd_check("dq", lstm_loss, &c, qd, 4 * B * S, q, &o);
    tu_fd_check("ds_prev", lstm_loss, &c, spd, B * S, ds, &o);
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

/* The loss's softplus against double for logits from −80 to 80, with x = 0
 * and x = 1 (where softplus v − x·v is softplus of ±v: each term checked
 * relatively), then rows longer than the kernel's blocks with grey x. */
START_TEST(test_bernoulli_sweep) {
    for (int i = 0; i <= 16000; i++) {
        const float v = -80.0f + 0.01f * (float)i;
        for (int xi = 0; xi <= 1; xi++) {
            const float x = (float)xi;
            double lx = 0.0;
            dcrw_bernoulli_loss(1, 1, &v, &x, &lx);
            const double w = xi ? -(double)v : (double)v;
            const double expect = (w > 0 ? w : 0.0) + log1p(exp(-fabs(w)));
            ck_assert_msg(fabs(lx - expect) <= 1e-6 * expect, "v %.9g x %d: %.9g, expected %.9g",
                          (double)v, xi, lx, expect);
        }
    }
    enum { B = 3, P = 700 };
    float *c = malloc(sizeof(float) * B * P), *x = malloc(sizeof(float) * B * P);
    ck_assert(c && x);
    for (int i = 0; i < B * P; i++) {
        c[i] = i < P ? -30.0f + 60.0f * (float)i / (P - 1) : 1e-3f * (float)(i % 97 - 48);
        if (i >= 2 * P) c[i] = 5.0f * sinf((float)i);
        x[i] = (float)(i % 5) / 4.0f;
    }
    double lx[B] = {0.5, 0.0, 0.0};
    dcrw_bernoulli_loss(B, P, c, x, lx);
    for (int b = 0; b < B; b++) {
        double expect = b == 0 ? 0.5 : 0.0, mag = 0.0;
        for (int p = 0; p < P; p++) {
            const double v = c[b * P + p];
            const double term = (v > 0 ? v : 0.0) + log1p(exp(-fabs(v))) - x[b * P + p] * v;
            expect += term;
            mag += fabs(term);
        }
        ck_assert_msg(fabs(lx[b] - expect) <= 1e-6 * mag, "row %d: %.9g, expected %.9g", b, lx[b],
                      expect);
    }
    free(c);
    free(x);
}
END_TEST

/* L = Σ z⊙R + k·KL in double, z = μ + e^{log σ}ε, for the finite
 * differences of dcrw_latent_backward */
typedef struct latent_ctx {
    int n;
    double *mu, *ls;
    const float *eps, *R;
    double k;
    double *z, kl; /* the last forward, for comparison */
} latent_ctx;

static double latent_loss(void *ctx) {
    latent_ctx *c = ctx;
    double L = 0.0;
    c->kl = 0.0;
    for (int i = 0; i < c->n; i++) {
        double sg = exp(c->ls[i]);
        c->z[i] = c->mu[i] + sg * c->eps[i];
        c->kl += 0.5 * (c->mu[i] * c->mu[i] + sg * sg - 2.0 * c->ls[i] - 1.0);
        L += c->z[i] * c->R[i];
    }
    return L + c->k * c->kl;
}

START_TEST(test_latent_backward_fd) {
    enum { N = 16 };
    float mu[N], ls[N], eps[N], R[N], gmu[N], gls[N], gze[N], z[N];
    tu_fill_uniform(mu, N, -1, 1, 11);
    tu_fill_uniform(ls, N, -1, 1, 12);
    tu_fill_uniform(eps, N, -2, 2, 13);
    tu_fill_uniform(R, N, -1, 1, 14);
    const float k = 0.3f;
    memcpy(gmu, mu, sizeof mu);
    memcpy(gls, ls, sizeof ls);
    for (int i = 0; i < N; i++) gze[i] = R[i] * eps[i];
    dcrw_latent_backward(N, gmu, gls, R, gze, k);

    /* the float forward agrees with the double one the differences use */
    double mud[N], lsd[N], zd[N], kl = 0.0;
    for (int i = 0; i < N; i++) mud[i] = mu[i], lsd[i] = ls[i];
    latent_ctx c = {N, mud, lsd, eps, R, k, zd, 0.0};
    latent_loss(&c);
    dcrw_latent_sample(N, mu, ls, eps, z);
    dcrw_latent_kl(1, N, mu, ls, &kl);
    for (int i = 0; i < N; i++) ck_assert_msg(fabs(z[i] - zd[i]) < 1e-6, "z[%d]", i);
    ck_assert_msg(fabs(kl - c.kl) < 1e-6 * (1 + c.kl), "KL %.9g vs %.9g", kl, c.kl);
    const tu_fd o = tu_fd_f64(SIZE_MAX, 0);
    tu_fd_check("dmu", latent_loss, &c, mud, N, gmu, &o);
    tu_fd_check("dlogsigma", latent_loss, &c, lsd, N, gls, &o);

    /* beyond the guard σ stops growing: finite, and no gradient through σ */
    float big_mu = 0, big_ls = 1000.0f, e1 = 1.0f, one = 1.0f;
    kl = 0;
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
    tcase_add_test(tc, test_bernoulli_sweep);
    tcase_add_test(tc, test_latent_backward_fd);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
