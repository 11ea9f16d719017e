/* Gaussian attention filterbanks (MODEL.md §3.4): the filters, the read and
 * the write, each with its backward.
 *
 * The filters are built in double: with the exp() guard, δ can reach
 * ~4095·e^87 and g̃X any finite float, so μ and (a − μ)² overflow float32
 * while they stay far inside double's range; EX then underflows to an exact
 * 0 instead of becoming inf/inf. The matrix products are float32 sgemm. */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "filterbank.h"
#include "gemm.h"
#include "vmath.h"

#define FB_FLOOR 1e-8

/* aux per image: the denominator max(s, 1e-8) of each FX row then each FY
 * row, then 1/0 per row for whether s >= 1e-8 (the normaliser's derivative
 * flows only then). */
size_t dcrw_fb_aux_floats(int B, int N) {
    return (size_t)B * 4u * (size_t)N;
}

static double clamp_log(float v) {
    if (v > FB_EXP_LIMIT) return FB_EXP_LIMIT;
    if (v < -FB_EXP_LIMIT) return -FB_EXP_LIMIT;
    return v;
}

static int inside(float v) {
    return v >= -FB_EXP_LIMIT && v <= FB_EXP_LIMIT;
}

/* Saturate to the float range: a gradient that is mathematically larger
 * than FLT_MAX is reported as ±FLT_MAX rather than inf. */
static float sat(double v) {
    if (v > FLT_MAX) return FLT_MAX;
    if (v < -FLT_MAX) return -FLT_MAX;
    return (float)v;
}

typedef struct fb_geom {
    double gX, gY, delta, sigma2;
} fb_geom;

static fb_geom geom(int N, int H, int W, const float *p) {
    fb_geom g;
    g.gX = (W + 1) / 2.0 * ((double)p[0] + 1.0);
    g.gY = (H + 1) / 2.0 * ((double)p[1] + 1.0);
    g.sigma2 = exp(clamp_log(p[2]));
    double d = exp(clamp_log(p[3]));
    int side = W > H ? W : H;
    g.delta = N > 1 ? (double)(side - 1) / (N - 1) * d : d;
    return g;
}

void dcrw_fb_windows(int B, int N, int H, int W, const float *p5, float *win) {
    for (int b = 0; b < B; b++) {
        const float *p = p5 + (size_t)b * 5;
        fb_geom g = geom(N, H, W, p);
        float *o = win + (size_t)b * 5;
        /* δ can exceed float's range under the exp() guard: saturate */
        o[0] = sat(g.gX);
        o[1] = sat(g.gY);
        o[2] = sat(g.delta);
        o[3] = sat(g.sigma2);
        o[4] = sat(exp(clamp_log(p[4])));
    }
}

/* Offset of window row i (0-based) from the centre: i + 1 − N/2 − 0.5. */
static double grid(int i, int N) {
    return (double)i + 0.5 - N / 2.0;
}

/* One filterbank F [N×L] over pixels 1..L centred at g. Each exponential
 * is computed once, in double, kept for the normalisation (L <= 4096 is
 * guaranteed by the configuration limits). The exponentials have a loop of
 * their own, which vectorises, and so does their sum (vsum_doubles). */
static DCRW_VECTOR_CLONES void filter_rows(int N, int L, double g, double delta, double sigma2,
                                           float *F, float *m, float *flag) {
    double e[4096];
    const double inv2s2 = 1.0 / (2.0 * sigma2);
    for (int i = 0; i < N; i++) {
        double mu = g + grid(i, N) * delta;
        float *row = F + (size_t)i * L;
        for (int a = 0; a < L; a++) {
            /* the exponent in double (it can exceed float's range); below
             * exp's float range the value is exactly 0, as it would
             * underflow to */
            double d = (a + 1) - mu;
            double arg = -(d * d) * inv2s2;
            e[a] = arg < -87.0 ? 0.0 : (double)vexpf((float)arg);
        }
        double s = vsum_doubles(e, (size_t)L);
        double den = s >= FB_FLOOR ? s : FB_FLOOR;
        double inv = 1.0 / den;
        for (int a = 0; a < L; a++) row[a] = (float)(e[a] * inv);
        m[i] = (float)den;
        flag[i] = s >= FB_FLOOR ? 1.0f : 0.0f;
    }
}

void dcrw_fb_filters_forward(int B, int N, int H, int W, const float *p5, float *FX, float *FY,
                             float *gamma, float *aux) {
    for (int b = 0; b < B; b++) {
        const float *p = p5 + (size_t)b * 5;
        fb_geom g = geom(N, H, W, p);
        float *ab = aux + (size_t)b * 4 * N;
        filter_rows(N, W, g.gX, g.delta, g.sigma2, FX + (size_t)b * N * W, ab, ab + 2 * N);
        filter_rows(N, H, g.gY, g.delta, g.sigma2, FY + (size_t)b * N * H, ab + N, ab + 3 * N);
        gamma[b] = (float)exp(clamp_log(p[4]));
    }
}

/* Backward of one filterbank: adds dL/dg, dL/dδ and dL/d(log σ²).
 * With F = e/m, the gradient through the normalisation of pixel a is
 * t_a = (dF_a − Σ dF·F)·F_a, and μ and σ² enter e only by (a − μ)²/(2σ²).
 * The terms get a loop of their own, free of divisions and branches, which
 * vectorises, and so do their sums (vsum_doubles). */
static DCRW_VECTOR_CLONES void filter_rows_backward(int N, int L, double g, double delta,
                                                    double sigma2, const float *F,
                                                    const float *flag, const float *dF, double *dg,
                                                    double *ddelta, double *dlogs2) {
    double tm[4096], ts[4096];
    for (int i = 0; i < N; i++) {
        const float *row = F + (size_t)i * L;
        const float *drow = dF + (size_t)i * L;
        double dot = 0.0;
        if (flag[i] != 0.0f) {
            for (int a = 0; a < L; a++) tm[a] = (double)drow[a] * row[a];
            dot = vsum_doubles(tm, (size_t)L);
        }
        double mu = g + grid(i, N) * delta;
        for (int a = 0; a < L; a++) {
            double t = ((double)drow[a] - dot) * row[a];
            double d = (a + 1) - mu;
            /* F = 0 carries no gradient; the select also keeps 0·(a − μ)²
             * = 0·inf out when μ is far off */
            tm[a] = row[a] != 0.0f ? t * d : 0.0;
            ts[a] = row[a] != 0.0f ? t * (d * d) : 0.0;
        }
        double dmu = vsum_doubles(tm, (size_t)L) / sigma2, ds = vsum_doubles(ts, (size_t)L);
        *dg += dmu;
        *ddelta += dmu * grid(i, N);
        *dlogs2 += ds / (2.0 * sigma2);
    }
}

void dcrw_fb_filters_backward(int B, int N, int H, int W, const float *p5, const float *FX,
                              const float *FY, const float *gamma, const float *aux,
                              const float *dFX, const float *dFY, const float *dgamma, float *dp5) {
    for (int b = 0; b < B; b++) {
        const float *p = p5 + (size_t)b * 5;
        fb_geom g = geom(N, H, W, p);
        const float *ab = aux + (size_t)b * 4 * N;
        double dgX = 0.0, dgY = 0.0, ddelta = 0.0, dlogs2 = 0.0;
        filter_rows_backward(N, W, g.gX, g.delta, g.sigma2, FX + (size_t)b * N * W, ab + 2 * N,
                             dFX + (size_t)b * N * W, &dgX, &ddelta, &dlogs2);
        filter_rows_backward(N, H, g.gY, g.delta, g.sigma2, FY + (size_t)b * N * H, ab + 3 * N,
                             dFY + (size_t)b * N * H, &dgY, &ddelta, &dlogs2);
        float *dp = dp5 + (size_t)b * 5;
        dp[0] = sat(dgX * (W + 1) / 2.0);
        dp[1] = sat(dgY * (H + 1) / 2.0);
        /* d/d(log σ²) = σ²·d/dσ², already folded into dlogs2 */
        dp[2] = inside(p[2]) ? sat(dlogs2) : 0.0f;
        dp[3] = inside(p[3]) ? sat(ddelta * g.delta) : 0.0f;
        dp[4] = inside(p[4]) ? sat((double)dgamma[b] * gamma[b]) : 0.0f;
    }
}

size_t dcrw_fb_read_scratch_floats(int B, int C, int N, int H, int W) {
    (void)B;
    (void)W;
    /* T = img·FXᵀ and V = FYᵀ·dr for the 2C channels of one image */
    return 4u * (size_t)C * (size_t)H * (size_t)N;
}

size_t dcrw_fb_write_scratch_floats(int B, int C, int N, int H, int W) {
    (void)B;
    (void)H;
    /* A = w·FX and E = FY·dout for the C channels of one image */
    return 2u * (size_t)C * (size_t)N * (size_t)W;
}

/* T [2C·H×N] = [x; xhat]·FXᵀ for the C channels of each (C·H×N: x alone
 * without xhat). */
static void read_first(int C, int N, int H, int W, const float *FX, const float *x,
                       const float *xhat, float *T) {
    int CH = C * H;
    gemm_nt(CH, N, W, x, W, FX, W, 0.0f, T, N);
    if (xhat) gemm_nt(CH, N, W, xhat, W, FX, W, 0.0f, T + (size_t)CH * N, N);
}

void dcrw_fb_read_forward(int B, int C, int N, int H, int W, const float *FX, const float *FY,
                          const float *gamma, const float *x, const float *xhat, float *r,
                          float *scratch) {
    size_t P = (size_t)C * H * W, NN = (size_t)N * N, HN = (size_t)H * N;
    const int nc = xhat ? 2 * C : C;
    float *T = scratch;
    for (int b = 0; b < B; b++) {
        const float *fx = FX + (size_t)b * N * W, *fy = FY + (size_t)b * N * H;
        read_first(C, N, H, W, fx, x + b * P, xhat ? xhat + b * P : NULL, T);
        float *rb = r + (size_t)b * nc * NN;
        for (int c = 0; c < nc; c++) gemm_nn(N, N, H, fy, H, T + c * HN, N, 0.0f, rb + c * NN, N);
        float gm = gamma[b];
        for (size_t k = 0; k < nc * NN; k++) rb[k] *= gm;
    }
}

void dcrw_fb_read_backward(int B, int C, int N, int H, int W, const float *FX, const float *FY,
                           const float *gamma, const float *x, const float *xhat, const float *dr,
                           float *dx, float *dxhat, float *dFX, float *dFY, float *dgamma,
                           float *scratch) {
    size_t P = (size_t)C * H * W, NN = (size_t)N * N, HN = (size_t)H * N;
    int CH = C * H;
    const int nc = xhat ? 2 * C : C;
    float *T = scratch, *V = scratch + 2 * C * HN;
    for (int b = 0; b < B; b++) {
        const float *fx = FX + (size_t)b * N * W, *fy = FY + (size_t)b * N * H;
        const float *xb = x + b * P, *hb = xhat ? xhat + b * P : NULL;
        const float *drb = dr + (size_t)b * nc * NN;
        float *dfx = dFX + (size_t)b * N * W, *dfy = dFY + (size_t)b * N * H;
        float gm = gamma[b];
        read_first(C, N, H, W, fx, xb, hb, T);
        /* patch_c = FY·T_c, so dL/dFY = γ Σ_c dr_c·T_cᵀ and V_c = FYᵀ·dr_c */
        for (int c = 0; c < nc; c++) {
            gemm_nt(N, H, N, drb + c * NN, N, T + c * HN, N, c ? 1.0f : 0.0f, dfy, H);
            gemm_tn(H, N, N, fy, H, drb + c * NN, N, 0.0f, V + c * HN, N);
        }
        /* dL/dγ = Σ dr ⊙ (FY·T) = Σ (FYᵀ·dr) ⊙ T */
        double sg = 0.0;
        for (size_t k = 0; k < nc * HN; k++) sg += (double)V[k] * T[k];
        dgamma[b] = sat(sg);
        for (size_t k = 0; k < (size_t)N * H; k++) dfy[k] *= gm;
        for (size_t k = 0; k < nc * HN; k++) V[k] *= gm;
        /* V is now U = γ·FYᵀ·dr; dimg_c = U_c·FX and dFX = Σ_c U_cᵀ·img_c */
        gemm_tn(N, W, CH, V, N, xb, W, 0.0f, dfx, W);
        if (hb) gemm_tn(N, W, CH, V + (size_t)CH * N, N, hb, W, 1.0f, dfx, W);
        if (dx) gemm_nn(CH, W, N, V, N, fx, W, 0.0f, dx + b * P, W);
        if (dxhat && hb) gemm_nn(CH, W, N, V + (size_t)CH * N, N, fx, W, 0.0f, dxhat + b * P, W);
    }
}

void dcrw_fb_write_forward(int B, int C, int N, int H, int W, const float *FX, const float *FY,
                           const float *gamma, const float *w, float *out, int accumulate,
                           float *scratch) {
    size_t P = (size_t)C * H * W, NN = (size_t)N * N, NW = (size_t)N * W, HW = (size_t)H * W;
    float *A = scratch;
    for (int b = 0; b < B; b++) {
        const float *fx = FX + (size_t)b * N * W, *fy = FY + (size_t)b * N * H;
        /* A = w·FX for all channels at once: w_b is [C·N × N] */
        gemm_nn(C * N, W, N, w + (size_t)b * C * NN, N, fx, W, 0.0f, A, W);
        float inv = 1.0f / gamma[b];
        for (size_t k = 0; k < C * NW; k++) A[k] *= inv;
        float *ob = out + b * P;
        for (int c = 0; c < C; c++)
            gemm_tn(H, W, N, fy, H, A + c * NW, W, accumulate ? 1.0f : 0.0f, ob + c * HW, W);
    }
}

void dcrw_fb_write_backward(int B, int C, int N, int H, int W, const float *FX, const float *FY,
                            const float *gamma, const float *w, const float *dout, float *dw,
                            float *dFX, float *dFY, float *dgamma, float *scratch) {
    size_t P = (size_t)C * H * W, NN = (size_t)N * N, NW = (size_t)N * W, HW = (size_t)H * W;
    float *A = scratch, *E = scratch + C * NW;
    for (int b = 0; b < B; b++) {
        const float *fx = FX + (size_t)b * N * W, *fy = FY + (size_t)b * N * H;
        const float *wb = w + (size_t)b * C * NN, *db = dout + b * P;
        float *dfx = dFX + (size_t)b * N * W, *dfy = dFY + (size_t)b * N * H;
        double g = gamma[b];
        gemm_nn(C * N, W, N, wb, N, fx, W, 0.0f, A, W);
        for (int c = 0; c < C; c++) gemm_nn(N, W, H, fy, H, db + c * HW, W, 0.0f, E + c * NW, W);
        /* out = M/γ with M_c = FYᵀ·A_c, so dL/dγ = −Σ dout⊙M / γ² and
         * Σ dout_c⊙(FYᵀ·A_c) = Σ (FY·dout_c)⊙A_c = Σ E⊙A */
        double s = 0.0;
        for (size_t k = 0; k < C * NW; k++) s += (double)E[k] * A[k];
        dgamma[b] = sat(-s / g / g);
        /* dL/dFY = (1/γ) Σ_c A_c·dout_cᵀ */
        for (int c = 0; c < C; c++)
            gemm_nt(N, H, W, A + c * NW, W, db + c * HW, W, c ? 1.0f : 0.0f, dfy, H);
        float inv = (float)(1.0 / g);
        for (size_t k = 0; k < (size_t)N * H; k++) dfy[k] *= inv;
        for (size_t k = 0; k < C * NW; k++) E[k] *= inv;
        /* with E = FY·dout/γ: dw_c = E_c·FXᵀ and dFX = Σ_c w_cᵀ·E_c */
        gemm_nt(C * N, N, W, E, W, fx, W, 0.0f, dw + (size_t)b * C * NN, N);
        gemm_tn(N, W, C * N, wb, N, E, W, 0.0f, dfx, W);
    }
}
