/* The CNN encoder (lib/conv.c) against naive double-precision loops written
 * here: the 3×3 convolution + ReLU, the 2×2 max-pool, the two-stage encoder,
 * and every backward pass against central finite differences of the naive
 * forward. Buffers are malloc'ed at exactly the sizes the module reports, so
 * the sanitizer run catches any write past them. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conv.h"
#include "pgemm.h"
#include "testutil.h"

/* ---- small helpers ---- */

static float *falloc(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    ck_assert_ptr_nonnull(p);
    return p;
}
static double *dalloc(size_t n) {
    double *p = calloc(n ? n : 1, sizeof *p);
    ck_assert_ptr_nonnull(p);
    return p;
}
static float *frand(size_t n, float lo, float hi, uint64_t seed) {
    float *p = falloc(n);
    tu_fill_uniform(p, n, lo, hi, seed);
    return p;
}
static void fill(float *x, size_t n, float v) {
    for (size_t i = 0; i < n; i++) x[i] = v;
}
static double *to_d(const float *x, size_t n) {
    double *d = dalloc(n);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}
/* max |a − ref| / max(max |ref|, 1) */
static double rel_err_d(const float *a, const double *ref, size_t n) {
    double m = 1.0, d = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (fabs(ref[i]) > m) m = fabs(ref[i]);
        double e = fabs((double)a[i] - ref[i]);
        if (!(e <= d)) d = e; /* NaN propagates */
    }
    return d / m;
}

/* ---- naive double references ---- */

static void naive_conv_relu(int B, int Cin, int K, int H, int W, const double *in, const double *w,
                            const double *b, double *out) {
    for (int n = 0; n < B; n++)
        for (int k = 0; k < K; k++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    double acc = b[k];
                    for (int c = 0; c < Cin; c++)
                        for (int dy = 0; dy < 3; dy++)
                            for (int dx = 0; dx < 3; dx++) {
                                int yy = y + dy - 1, xx = x + dx - 1;
                                if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
                                acc += w[((k * Cin + c) * 3 + dy) * 3 + dx] *
                                       in[((size_t)(n * Cin + c) * H + yy) * W + xx];
                            }
                    out[((size_t)(n * K + k) * H + y) * W + x] = acc > 0 ? acc : 0;
                }
}

/* 2×2 stride-2 floor max-pool; arg (may be NULL) gets the first maximum */
static void naive_pool(int B, int C, int H, int W, const double *in, double *out, uint8_t *arg) {
    int Ho = H / 2, Wo = W / 2;
    for (int p = 0; p < B * C; p++)
        for (int y = 0; y < Ho; y++)
            for (int x = 0; x < Wo; x++) {
                int best = 0;
                double v[4];
                for (int j = 0; j < 4; j++) {
                    v[j] = in[((size_t)p * H + 2 * y + j / 2) * W + 2 * x + j % 2];
                    if (v[j] > v[best]) best = j;
                }
                out[((size_t)p * Ho + y) * Wo + x] = v[best];
                if (arg) arg[((size_t)p * Ho + y) * Wo + x] = (uint8_t)best;
            }
}

/* conv → ReLU → pool → conv → ReLU → pool, out [B×F] */
static void naive_cnn(const cnn_shape *s, const double *in, const double *w1, const double *b1,
                      const double *w2, const double *b2, double *out) {
    int H2 = s->H / 2, W2 = s->W / 2;
    double *a1 = dalloc((size_t)s->B * s->K1 * s->H * s->W);
    double *p1 = dalloc((size_t)s->B * s->K1 * H2 * W2);
    double *a2 = dalloc((size_t)s->B * s->K2 * H2 * W2);
    naive_conv_relu(s->B, s->Cin, s->K1, s->H, s->W, in, w1, b1, a1);
    naive_pool(s->B, s->K1, s->H, s->W, a1, p1, NULL);
    naive_conv_relu(s->B, s->K1, s->K2, H2, W2, p1, w2, b2, a2);
    naive_pool(s->B, s->K2, H2, W2, a2, out, NULL);
    free(a1);
    free(p1);
    free(a2);
}

/* ---- finite differences ----
 * The loss L = Σ out ⊙ R is evaluated by the naive forward in double and
 * checked by tu_fd_check (testutil.h) at double precision. In any single
 * coordinate it is piecewise linear (conv is linear, ReLU and max-pool are
 * piecewise linear), so the central difference is exact up to rounding
 * unless a kink (a pre-activation crossing 0, or a pool window changing its
 * maximum) lies within h; with random inputs that has probability ~1e-4 per
 * coordinate, and such points are skipped (kinks set). The float gradient
 * sums at most ~3e4 products of magnitude <= 1 through sgemm: its error is a
 * few float eps times sqrt(terms) times the typical term, below 1e-5 of the
 * tensor's largest entry; a wrong index, sign, mask or missing term is of
 * the order of one term (>= 1e-2 of it). */
typedef struct fd_ctx {
    int is_cnn;
    int B, Cin, K, H, W; /* single conv layer */
    cnn_shape s;         /* the encoder */
    double *in, *w1, *b1, *w2, *b2, *R, *out;
    size_t nout;
} fd_ctx;

static double fd_loss(void *ctx) {
    fd_ctx *c = ctx;
    if (c->is_cnn)
        naive_cnn(&c->s, c->in, c->w1, c->b1, c->w2, c->b2, c->out);
    else
        naive_conv_relu(c->B, c->Cin, c->K, c->H, c->W, c->in, c->w1, c->b1, c->out);
    double L = 0;
    for (size_t i = 0; i < c->nout; i++) L += c->out[i] * c->R[i];
    return L;
}

/* analytic against the central difference in param, on all of it if
 * n <= maxcheck, else on maxcheck coordinates; returns the tensor's scale */
static double fd_check(fd_ctx *c, const char *name, double *param, size_t n, const float *analytic,
                       size_t maxcheck, uint64_t seed) {
    tu_fd o = tu_fd_f64(maxcheck, seed);
    o.kinks = 1;
    return tu_fd_check(name, fd_loss, c, param, n, analytic, &o).scale;
}

/* ---- conv3x3_relu ---- */

typedef struct conv_case {
    int B, Cin, K, H, W;
} conv_case;

static const conv_case conv_cases[] = {
    {1, 1, 1, 1, 1}, {1, 2, 3, 4, 5}, {7, 2, 32, 7, 7}, {3, 1, 4, 28, 28},
    {2, 3, 5, 6, 9}, {2, 2, 3, 1, 6}, {1, 2, 2, 5, 1},  {2, 1, 2, 2, 2},
};
#define N_CONV_CASES (sizeof conv_cases / sizeof conv_cases[0])

typedef struct conv_data {
    conv_case c;
    size_t nin, nw, nout, nscr;
    float *in, *w, *b, *out, *scr;
} conv_data;

/* inputs and weights of both signs and biases around 0, so that ReLU clips a
 * good fraction of the outputs but not all */
static conv_data conv_make(conv_case c, uint64_t seed) {
    conv_data d;
    d.c = c;
    d.nin = (size_t)c.B * c.Cin * c.H * c.W;
    d.nw = (size_t)c.K * c.Cin * 9;
    d.nout = (size_t)c.B * c.K * c.H * c.W;
    d.nscr = dcrw_conv3x3_scratch_floats(c.B, c.Cin, c.K, c.H, c.W);
    d.in = frand(d.nin, -1, 1, seed);
    d.w = frand(d.nw, -0.5f, 0.5f, seed + 1);
    d.b = frand((size_t)c.K, -0.2f, 0.3f, seed + 2);
    d.out = falloc(d.nout);
    d.scr = falloc(d.nscr);
    /* the result must not depend on what scratch or out held before */
    fill(d.out, d.nout, NAN);
    fill(d.scr, d.nscr, NAN);
    dcrw_conv3x3_relu_forward(c.B, c.Cin, c.K, c.H, c.W, d.in, d.w, d.b, d.out, d.scr);
    return d;
}

static void conv_free(conv_data *d) {
    free(d->in);
    free(d->w);
    free(d->b);
    free(d->out);
    free(d->scr);
}

START_TEST(test_conv_forward) {
    conv_case c = conv_cases[_i];
    conv_data d = conv_make(c, 100 + 10 * (uint64_t)_i);
    double *in = to_d(d.in, d.nin), *w = to_d(d.w, d.nw), *b = to_d(d.b, (size_t)c.K);
    double *ref = dalloc(d.nout);
    naive_conv_relu(c.B, c.Cin, c.K, c.H, c.W, in, w, b, ref);
    /* float sums of ≤ 9·Cin = 27 products of magnitude ≤ 0.5 against double:
     * error ≲ 27·6e-8·0.5 ≈ 1e-6 */
    double e = rel_err_d(d.out, ref, d.nout);
    ck_assert_msg(e < 1e-5, "case %d: rel err %g", _i, e);
    size_t zeros = 0;
    for (size_t i = 0; i < d.nout; i++) zeros += d.out[i] == 0.0f;
    if (d.nout >= 20) ck_assert_msg(zeros > 0 && zeros < d.nout, "ReLU clipped %zu", zeros);
    free(in);
    free(w);
    free(b);
    free(ref);
    conv_free(&d);
}
END_TEST

/* a hand-computed case: one 3×3 image of ones, w = 1 everywhere, b = −4.5;
 * the pre-activation counts the in-bounds neighbours (4 corner, 6 edge, 9
 * centre), so the output is 0 at corners, 1.5 on edges, 4.5 at the centre */
START_TEST(test_conv_hand) {
    float in[9], w[9], b[1] = {-4.5f}, out[9];
    fill(in, 9, 1);
    fill(w, 9, 1);
    float *scr = falloc(dcrw_conv3x3_scratch_floats(1, 1, 1, 3, 3));
    dcrw_conv3x3_relu_forward(1, 1, 1, 3, 3, in, w, b, out, scr);
    const float want[9] = {0, 1.5f, 0, 1.5f, 4.5f, 1.5f, 0, 1.5f, 0};
    for (int i = 0; i < 9; i++) ck_assert_float_eq(out[i], want[i]);
    /* backward with dout = 1: only the edges and the centre pass gradient;
     * db = 5 (the active outputs), dw[dy][dx] counts the active outputs whose
     * tap (dy, dx) lands inside the image */
    float dout[9], din[9], dw[9] = {0}, db[1] = {0};
    fill(dout, 9, 1);
    dcrw_conv3x3_relu_backward(1, 1, 1, 3, 3, in, w, out, dout, din, dw, db, scr);
    ck_assert_float_eq(db[0], 5);
    /* active set: (0,1),(1,0),(1,1),(1,2),(2,1). tap (0,0) reads (y−1,x−1):
     * in bounds for (1,1),(1,2),(2,1) → 3; tap (1,1) for all 5; tap (0,1)
     * reads (y−1,x): (1,0),(1,1),(1,2),(2,1) → 4 */
    const float want_dw[9] = {3, 4, 3, 4, 5, 4, 3, 4, 3};
    for (int i = 0; i < 9; i++) ck_assert_float_eq(dw[i], want_dw[i]);
    /* din[p] = number of active outputs whose 3×3 window covers p (w = 1) */
    for (int py = 0; py < 3; py++)
        for (int px = 0; px < 3; px++) {
            int cover = 0;
            for (int y = 0; y < 3; y++)
                for (int x = 0; x < 3; x++)
                    if (out[y * 3 + x] > 0 && abs(y - py) <= 1 && abs(x - px) <= 1) cover++;
            ck_assert_float_eq(din[py * 3 + px], (float)cover);
        }
    ck_assert_float_eq(din[0], 3); /* (0,1),(1,0),(1,1) */
    ck_assert_float_eq(din[4], 5);
    free(scr);
}
END_TEST

START_TEST(test_conv_backward_fd) {
    conv_case c = conv_cases[_i];
    conv_data d = conv_make(c, 300 + 10 * (uint64_t)_i);
    float *R = frand(d.nout, -1, 1, 400 + (uint64_t)_i);
    float *din = falloc(d.nin), *dw = falloc(d.nw), *db = falloc((size_t)c.K);
    fill(din, d.nin, NAN);
    fill(dw, d.nw, 0);
    fill(db, (size_t)c.K, 0);
    fill(d.scr, d.nscr, NAN);
    dcrw_conv3x3_relu_backward(c.B, c.Cin, c.K, c.H, c.W, d.in, d.w, d.out, R, din, dw, db, d.scr);

    fd_ctx x = {0};
    x.B = c.B, x.Cin = c.Cin, x.K = c.K, x.H = c.H, x.W = c.W;
    x.in = to_d(d.in, d.nin), x.w1 = to_d(d.w, d.nw), x.b1 = to_d(d.b, (size_t)c.K);
    x.R = to_d(R, d.nout), x.out = dalloc(d.nout), x.nout = d.nout;
    double s_w = fd_check(&x, "dw", x.w1, d.nw, dw, 150, 1);
    double s_b = fd_check(&x, "db", x.b1, (size_t)c.K, db, 150, 2);
    double s_in = fd_check(&x, "din", x.in, d.nin, din, 150, 3);
    /* the checks must not be vacuous on the larger shapes */
    if (d.nout >= 20) ck_assert(s_w > 0 && s_b > 0 && s_in > 0);

    /* din = NULL skips only din: the weight gradients come out the same */
    float *dw2 = falloc(d.nw), *db2 = falloc((size_t)c.K);
    fill(dw2, d.nw, 0);
    fill(db2, (size_t)c.K, 0);
    dcrw_conv3x3_relu_backward(c.B, c.Cin, c.K, c.H, c.W, d.in, d.w, d.out, R, NULL, dw2, db2,
                               d.scr);
    ck_assert(tu_rel_err(dw2, dw, d.nw, 1e-3) < 1e-6);
    ck_assert(tu_rel_err(db2, db, (size_t)c.K, 1e-3) < 1e-6);

    /* gradients accumulate: a second call adds the same again. db adds one
     * float per call (s + s = 2s exactly); dw goes through sgemm with beta = 1,
     * whose blocked accumulation may round differently, hence a tolerance */
    dcrw_conv3x3_relu_backward(c.B, c.Cin, c.K, c.H, c.W, d.in, d.w, d.out, R, NULL, dw2, db2,
                               d.scr);
    for (size_t i = 0; i < d.nw; i++) dw[i] *= 2;
    for (int k = 0; k < c.K; k++) ck_assert_float_eq(db2[k], 2 * db[k]);
    ck_assert(tu_rel_err(dw2, dw, d.nw, 1e-3) < 1e-5);

    free(x.in);
    free(x.w1);
    free(x.b1);
    free(x.R);
    free(x.out);
    free(R);
    free(din);
    free(dw);
    free(db);
    free(dw2);
    free(db2);
    conv_free(&d);
}
END_TEST

/* conv → ReLU → pool backward from the pool's gradient, scattered straight
 * into the product's layout, against the pool's backward then the conv's:
 * the same bits for din, dw and db, with or without each of them. */
START_TEST(test_conv_pool_backward) {
    conv_case c = conv_cases[_i];
    const int Ho = c.H / 2, Wo = c.W / 2;
    if (Ho == 0 || Wo == 0) return;
    conv_data d = conv_make(c, 700 + 10 * (uint64_t)_i);
    const size_t np = (size_t)c.B * c.K * Ho * Wo;
    float *p = falloc(np), *dp = frand(np, -1, 1, 800 + (uint64_t)_i), *da = falloc(d.nout);
    uint8_t *arg = malloc(np);
    ck_assert_ptr_nonnull(arg);
    dcrw_maxpool2_forward(c.B, c.K, c.H, c.W, d.out, p, arg);
    for (int mask = 0; mask < 8; mask++) {
        float *din[2], *dw[2], *db[2];
        for (int v = 0; v < 2; v++) {
            din[v] = falloc(d.nin), dw[v] = falloc(d.nw), db[v] = falloc((size_t)c.K);
            fill(din[v], d.nin, NAN);
            fill(dw[v], d.nw, 0.25f);
            fill(db[v], (size_t)c.K, -0.5f);
            fill(d.scr, d.nscr, NAN);
            float *i0 = mask & 1 ? din[v] : NULL, *w0 = mask & 2 ? dw[v] : NULL;
            float *b0 = mask & 4 ? db[v] : NULL;
            if (v == 0) {
                dcrw_maxpool2_backward(c.B, c.K, c.H, c.W, dp, arg, da);
                dcrw_conv3x3_relu_backward(c.B, c.Cin, c.K, c.H, c.W, d.in, d.w, d.out, da, i0, w0,
                                           b0, d.scr);
            } else {
                dcrw_conv3x3_relu_pool_backward(c.B, c.Cin, c.K, c.H, c.W, d.in, d.w, p, dp, arg,
                                                i0, w0, b0, d.scr);
            }
        }
        if (mask & 1) ck_assert_int_eq(memcmp(din[0], din[1], d.nin * sizeof(float)), 0);
        ck_assert_int_eq(memcmp(dw[0], dw[1], d.nw * sizeof(float)), 0);
        ck_assert_int_eq(memcmp(db[0], db[1], (size_t)c.K * sizeof(float)), 0);
        for (int v = 0; v < 2; v++) free(din[v]), free(dw[v]), free(db[v]);
    }
    free(p);
    free(dp);
    free(da);
    free(arg);
    conv_free(&d);
}
END_TEST

/* A batch whose columns B·H·W exceed one matrix product (INT_MAX, the
 * BLAS limit) runs in groups of images; with the limit lowered to a few
 * images the grouping is exercised here. The groups' products are the
 * same per column, so forward and din agree to rounding, and dw, db sum
 * over the groups. */
START_TEST(test_conv_grouped) {
    conv_case c = conv_cases[_i];
    conv_data d = conv_make(c, 500 + 10 * (uint64_t)_i);
    const size_t HW = (size_t)c.H * c.W;
    float *R = frand(d.nout, -1, 1, 600 + (uint64_t)_i);
    float *din = falloc(d.nin), *dw = falloc(d.nw), *db = falloc((size_t)c.K);
    fill(dw, d.nw, 0);
    fill(db, (size_t)c.K, 0);
    dcrw_conv3x3_relu_backward(c.B, c.Cin, c.K, c.H, c.W, d.in, d.w, d.out, R, din, dw, db, d.scr);
    /* limits of one image (or less: still one image a product), two, B − 1 */
    const size_t limits[] = {1, HW, 2 * HW + 1, (size_t)(c.B > 1 ? c.B - 1 : 1) * HW};
    for (size_t k = 0; k < sizeof limits / sizeof limits[0]; k++) {
        float *out = falloc(d.nout), *din2 = falloc(d.nin), *dw2 = falloc(d.nw);
        float *db2 = falloc((size_t)c.K);
        fill(out, d.nout, NAN);
        fill(din2, d.nin, NAN);
        fill(dw2, d.nw, 0);
        fill(db2, (size_t)c.K, 0);
        fill(d.scr, d.nscr, NAN);
        dcrw_conv3x3_relu_forward_cols(c.B, c.Cin, c.K, c.H, c.W, d.in, d.w, d.b, out, d.scr,
                                       limits[k]);
        ck_assert_msg(tu_rel_err(out, d.out, d.nout, 1e-3) < 1e-6, "case %d, %zu columns", _i,
                      limits[k]);
        dcrw_conv3x3_relu_backward_cols(c.B, c.Cin, c.K, c.H, c.W, d.in, d.w, d.out, R, din2, dw2,
                                        db2, d.scr, limits[k]);
        ck_assert(tu_rel_err(din2, din, d.nin, 1e-3) < 1e-6);
        ck_assert(tu_rel_err(dw2, dw, d.nw, 1e-3) < 1e-5);
        ck_assert(tu_rel_err(db2, db, (size_t)c.K, 1e-3) < 1e-5);
        free(out);
        free(din2);
        free(dw2);
        free(db2);
    }
    free(R);
    free(din);
    free(dw);
    free(db);
    conv_free(&d);
}
END_TEST

/* ---- maxpool2 ---- */

START_TEST(test_pool_forward_backward) {
    /* 5×7 planes take the planes-innermost order, 9×18 the row order;
     * odd sizes drop the last row and column */
    const int shapes[2][2] = {{5, 7}, {9, 18}};
    for (int t = 0; t < 2; t++) {
        const int B = 2, C = 3, H = shapes[t][0], W = shapes[t][1], Ho = H / 2, Wo = W / 2;
        const size_t nin = (size_t)B * C * H * W, nout = (size_t)B * C * Ho * Wo;
        float *in = frand(nin, -1, 1, 7);
        float *out = falloc(nout), *g = frand(nout, -1, 1, 8), *din = falloc(nin);
        uint8_t *arg = malloc(nout), *ref_arg = malloc(nout);
        double *ind = to_d(in, nin), *ref = malloc(nout * sizeof *ref);
        naive_pool(B, C, H, W, ind, ref, ref_arg);
        dcrw_maxpool2_forward(B, C, H, W, in, out, arg);
        for (size_t i = 0; i < nout; i++) {
            ck_assert_float_eq(out[i], (float)ref[i]); /* a max is exact */
            ck_assert_uint_eq(arg[i], ref_arg[i]);
        }
        fill(din, nin, NAN);
        dcrw_maxpool2_backward(B, C, H, W, g, arg, din);
        for (int p = 0; p < B * C; p++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    float want = 0;
                    int oy = y / 2, ox = x / 2;
                    if (oy < Ho && ox < Wo) {
                        size_t o = ((size_t)p * Ho + oy) * Wo + ox;
                        if (ref_arg[o] == (y % 2) * 2 + x % 2) want = g[o];
                    }
                    /* a dropped last row or column gets 0 */
                    ck_assert_float_eq(din[((size_t)p * H + y) * W + x], want);
                }
        free(in);
        free(out);
        free(g);
        free(din);
        free(arg);
        free(ref_arg);
        free(ind);
        free(ref);
    }
}
END_TEST

START_TEST(test_pool_ties) {
    /* window 0: four equal values; window 1: max at top-right and
     * bottom-right; window 2: max at bottom-left and bottom-right */
    const float in[2 * 6] = {0.5f, 0.5f, 0.1f, 0.9f, -3, -3, /* row 0 */
                             0.5f, 0.5f, 0.2f, 0.9f, -1, -1};
    float out[3], din[12], g[3] = {2, 3, 4};
    uint8_t arg[3];
    dcrw_maxpool2_forward(1, 1, 2, 6, in, out, arg);
    ck_assert_float_eq(out[0], 0.5f);
    ck_assert_float_eq(out[1], 0.9f);
    ck_assert_float_eq(out[2], -1);
    ck_assert_uint_eq(arg[0], 0);
    ck_assert_uint_eq(arg[1], 1);
    ck_assert_uint_eq(arg[2], 2);
    fill(din, 12, NAN);
    dcrw_maxpool2_backward(1, 1, 2, 6, g, arg, din);
    const float want[12] = {2, 0, 0, 3, 0, 0, 0, 0, 0, 0, 4, 0};
    for (int i = 0; i < 12; i++) ck_assert_float_eq(din[i], want[i]);
}
END_TEST

/* H or W = 1: the output is empty, nothing is written to it, and backward
 * zeroes the whole input gradient */
START_TEST(test_pool_degenerate) {
    const int shapes[3][2] = {{1, 5}, {3, 1}, {1, 1}};
    for (int t = 0; t < 3; t++) {
        int H = shapes[t][0], W = shapes[t][1];
        size_t n = (size_t)2 * 2 * H * W;
        float *in = frand(n, -1, 1, 9), *din = falloc(n);
        float out[1] = {42}, g[1] = {42};
        uint8_t arg[1] = {77};
        dcrw_maxpool2_forward(2, 2, H, W, in, out, arg);
        ck_assert_float_eq(out[0], 42);
        ck_assert_uint_eq(arg[0], 77);
        fill(din, n, NAN);
        dcrw_maxpool2_backward(2, 2, H, W, g, arg, din);
        for (size_t i = 0; i < n; i++) ck_assert_float_eq(din[i], 0);
        free(in);
        free(din);
    }
}
END_TEST

/* ---- the encoder ---- */

START_TEST(test_cnn_sizes) {
    /* MODEL.md §3.3: 7×7 → 1×1×64, 28×28 → 7×7×64 = 3136 */
    cnn_shape s = {100, 2, 7, 7, 32, 64};
    ck_assert_int_eq(dcrw_cnn_out_features(&s), 64);
    s = (cnn_shape){100, 1, 28, 28, 32, 64};
    ck_assert_int_eq(dcrw_cnn_out_features(&s), 3136);
    s = (cnn_shape){3, 1, 9, 11, 2, 3}; /* 9×11 → 4×5 → 2×2 */
    ck_assert_int_eq(dcrw_cnn_out_features(&s), 12);
    s = (cnn_shape){1, 1, 3, 3, 2, 3}; /* 3×3 → 1×1 → 0×0 */
    ck_assert_int_eq(dcrw_cnn_out_features(&s), 0);
    /* the dense stage 2: where pool 2 leaves one pixel of a plane of at
     * most 3×3, four outputs of K2 channels from K1·H2·W2 inputs, the
     * matrix and its transpose */
    ck_assert_uint_eq(dcrw_cnn_wx_floats(&s), 0);
    s = (cnn_shape){100, 2, 7, 7, 32, 64}; /* 3×3 planes */
    ck_assert_uint_eq(dcrw_cnn_wx_floats(&s), 2 * 64 * 4 * 32 * 9);
    s = (cnn_shape){4, 1, 5, 4, 3, 2}; /* 2×2 planes */
    ck_assert_uint_eq(dcrw_cnn_wx_floats(&s), 2 * 2 * 4 * 3 * 4);
    s = (cnn_shape){3, 1, 9, 11, 2, 3}; /* 4×5 → 2×2 pixels: im2col */
    ck_assert_uint_eq(dcrw_cnn_wx_floats(&s), 0);
    s = (cnn_shape){3, 1, 28, 28, 32, 64};
    ck_assert_uint_eq(dcrw_cnn_wx_floats(&s), 0);
}
END_TEST

typedef struct cnn_data {
    cnn_shape s;
    int F, ld;
    size_t nin, nw1, nw2, nsaved, nscr;
    float *in, *w1, *b1, *w2, *b2, *out, *saved, *scr;
    float *wxbuf; /* the dense stage 2's weights, or NULL: im2col */
    cnn_dense dense;
} cnn_data;

/* the dense stage 2 of d, or NULL (cnn_data moves by value: no pointer
 * into it is kept) */
static const cnn_dense *dense_of(const cnn_data *d) {
    return d->wxbuf ? &d->dense : NULL;
}

/* dense: with the dense stage 2 where the shape has one (built in three
 * parts, as three threads would), its products by sgemm (dense = 1) or the
 * packed kernel (dense = 2, or sgemm where the CPU has no fast path) */
static cnn_data cnn_make(cnn_shape s, uint64_t seed, int dense) {
    cnn_data d;
    d.s = s;
    d.F = dcrw_cnn_out_features(&s);
    d.ld = d.F + 3;
    d.nin = (size_t)s.B * s.Cin * s.H * s.W;
    d.nw1 = (size_t)s.K1 * s.Cin * 9;
    d.nw2 = (size_t)s.K2 * s.K1 * 9;
    d.nsaved = dcrw_cnn_saved_floats(&s);
    d.nscr = dcrw_cnn_scratch_floats(&s);
    d.in = frand(d.nin, -1, 1, seed);
    d.w1 = frand(d.nw1, -0.5f, 0.5f, seed + 1);
    d.b1 = frand((size_t)s.K1, -0.2f, 0.3f, seed + 2);
    /* conv2 sums 9·K1 inputs in [0, ~1]: scale its weights down so its
     * pre-activations stay of order one and ReLU still clips some */
    float sc = 1.5f / sqrtf(9.0f * s.K1);
    d.w2 = frand(d.nw2, -sc, sc, seed + 3);
    d.b2 = frand((size_t)s.K2, -0.2f, 0.3f, seed + 4);
    d.out = falloc((size_t)s.B * d.ld);
    d.saved = falloc(d.nsaved);
    d.scr = falloc(d.nscr);
    fill(d.out, (size_t)s.B * d.ld, 12345.0f);
    fill(d.saved, d.nsaved, NAN);
    fill(d.scr, d.nscr, NAN);
    const size_t nwx = dcrw_cnn_wx_floats(&s);
    d.wxbuf = NULL;
    if (dense && nwx) {
        d.wxbuf = falloc(nwx);
        fill(d.wxbuf, nwx, NAN);
        for (int part = 0; part < 3; part++) dcrw_cnn_wx_build(&s, d.w2, d.wxbuf, part, 3);
        const pgemm_path best = dcrw_pgemm_path_best();
        dcrw_cnn_dense_describe(&s, d.wxbuf, dense == 2 && best != PGEMM_PATH_C ? (int)best : -1,
                                &d.dense);
    }
    dcrw_cnn_forward(&s, d.in, d.w1, d.b1, d.w2, dense_of(&d), d.b2, d.out, d.ld, d.saved, d.scr);
    return d;
}

static void cnn_free(cnn_data *d) {
    free(d->in);
    free(d->w1);
    free(d->b1);
    free(d->w2);
    free(d->b2);
    free(d->out);
    free(d->saved);
    free(d->scr);
    free(d->wxbuf);
}

static const cnn_shape cnn_cases[] = {
    {5, 2, 7, 7, 4, 6},
    {2, 1, 12, 12, 3, 5},
    {3, 1, 9, 11, 2, 3},
    {4, 1, 5, 4, 3, 2},
};
#define N_CNN_CASES (sizeof cnn_cases / sizeof cnn_cases[0])

static void check_cnn_forward(cnn_shape s, uint64_t seed, int dense) {
    cnn_data d = cnn_make(s, seed, dense);
    ck_assert_int_gt(d.F, 0);
    double *in = to_d(d.in, d.nin), *w1 = to_d(d.w1, d.nw1), *b1 = to_d(d.b1, (size_t)s.K1);
    double *w2 = to_d(d.w2, d.nw2), *b2 = to_d(d.b2, (size_t)s.K2);
    double *ref = dalloc((size_t)s.B * d.F);
    naive_cnn(&s, in, w1, b1, w2, b2, ref);
    /* conv2 sums ≤ 9·32 = 288 float products of conv1 outputs: error ≲
     * 288·6e-8 relative to the summed magnitudes, under 2e-5 of the output
     * scale */
    size_t zeros = 0;
    for (int b = 0; b < s.B; b++) {
        const float *row = d.out + (size_t)b * d.ld;
        double e = rel_err_d(row, ref + (size_t)b * d.F, (size_t)d.F);
        ck_assert_msg(e < 2e-5, "image %d: rel err %g", b, e);
        for (int j = 0; j < d.F; j++) zeros += row[j] == 0.0f;
        /* the gap between rows is untouched */
        for (int j = d.F; j < d.ld; j++) ck_assert_float_eq(row[j], 12345.0f);
    }
    ck_assert_msg(zeros < (size_t)s.B * d.F, "every feature is 0");
    free(in);
    free(w1);
    free(b1);
    free(w2);
    free(b2);
    free(ref);
    cnn_free(&d);
}

/* _i / 3: the case; _i % 3: im2col, or the dense stage 2 where it has one
 * (sgemm, packed kernel) */
START_TEST(test_cnn_forward) {
    check_cnn_forward(cnn_cases[_i / 3], 500 + 10 * (uint64_t)(_i / 3), _i % 3);
}
END_TEST

/* the two preset sizes, at full width: dcrw (read patches 2×7×7, B = 100)
 * and dcrw-noread (28×28 images) */
START_TEST(test_cnn_forward_presets) {
    check_cnn_forward((cnn_shape){100, 2, 7, 7, 32, 64}, 600, 0);
    check_cnn_forward((cnn_shape){100, 2, 7, 7, 32, 64}, 600, 1);
    check_cnn_forward((cnn_shape){100, 2, 7, 7, 32, 64}, 600, 2);
    check_cnn_forward((cnn_shape){3, 1, 28, 28, 32, 64}, 610, 0);
}
END_TEST

static void check_cnn_backward(cnn_shape s, uint64_t seed, size_t maxcheck, int dense) {
    cnn_data d = cnn_make(s, seed, dense);
    const int ldd = d.F + 2;
    const size_t nout = (size_t)s.B * d.F;
    float *R = frand(nout, -1, 1, seed + 7);
    /* dout rows at stride ldd; NaN in the gaps must never be read */
    float *dout = falloc((size_t)s.B * ldd);
    fill(dout, (size_t)s.B * ldd, NAN);
    for (int b = 0; b < s.B; b++)
        memcpy(dout + (size_t)b * ldd, R + (size_t)b * d.F, (size_t)d.F * sizeof *R);
    float *din = falloc(d.nin), *dw1 = falloc(d.nw1), *db1 = falloc((size_t)s.K1);
    float *dw2 = falloc(d.nw2), *db2 = falloc((size_t)s.K2);
    fill(din, d.nin, NAN);
    fill(dw1, d.nw1, 0);
    fill(db1, (size_t)s.K1, 0);
    fill(dw2, d.nw2, 0);
    fill(db2, (size_t)s.K2, 0);
    fill(d.scr, d.nscr, NAN);
    dcrw_cnn_backward(&s, d.in, d.w1, d.w2, dense_of(&d), d.saved, dout, ldd, din, dw1, db1, dw2,
                      db2, NULL, d.scr);

    fd_ctx x = {0};
    x.is_cnn = 1;
    x.s = s;
    x.in = to_d(d.in, d.nin), x.w1 = to_d(d.w1, d.nw1), x.b1 = to_d(d.b1, (size_t)s.K1);
    x.w2 = to_d(d.w2, d.nw2), x.b2 = to_d(d.b2, (size_t)s.K2);
    x.R = to_d(R, nout), x.out = dalloc(nout), x.nout = nout;
    double sc[5];
    sc[0] = fd_check(&x, "dw1", x.w1, d.nw1, dw1, maxcheck, seed + 11);
    sc[1] = fd_check(&x, "db1", x.b1, (size_t)s.K1, db1, maxcheck, seed + 12);
    sc[2] = fd_check(&x, "dw2", x.w2, d.nw2, dw2, maxcheck, seed + 13);
    sc[3] = fd_check(&x, "db2", x.b2, (size_t)s.K2, db2, maxcheck, seed + 14);
    sc[4] = fd_check(&x, "din", x.in, d.nin, din, maxcheck, seed + 15);
    for (int t = 0; t < 5; t++) ck_assert_msg(sc[t] > 0, "gradient %d is all zero", t);

    /* din = NULL leaves the weight gradients as they were, and a second call
     * adds the same again (db exactly: one float add of the same value per
     * call; dw within sgemm's re-blocked rounding) */
    float *e_w1 = falloc(d.nw1), *e_b1 = falloc((size_t)s.K1);
    float *e_w2 = falloc(d.nw2), *e_b2 = falloc((size_t)s.K2);
    for (int rep = 0; rep < 2; rep++) {
        if (rep == 0) {
            fill(e_w1, d.nw1, 0), fill(e_b1, (size_t)s.K1, 0);
            fill(e_w2, d.nw2, 0), fill(e_b2, (size_t)s.K2, 0);
        }
        dcrw_cnn_backward(&s, d.in, d.w1, d.w2, dense_of(&d), d.saved, dout, ldd, NULL, e_w1, e_b1,
                          e_w2, e_b2, NULL, d.scr);
        if (rep == 0) {
            ck_assert(tu_rel_err(e_w1, dw1, d.nw1, 1e-3) < 1e-6);
            ck_assert(tu_rel_err(e_b1, db1, (size_t)s.K1, 1e-3) < 1e-6);
            ck_assert(tu_rel_err(e_w2, dw2, d.nw2, 1e-3) < 1e-6);
            ck_assert(tu_rel_err(e_b2, db2, (size_t)s.K2, 1e-3) < 1e-6);
            memcpy(db1, e_b1, (size_t)s.K1 * sizeof *db1);
            memcpy(db2, e_b2, (size_t)s.K2 * sizeof *db2);
        }
    }
    for (size_t i = 0; i < d.nw1; i++) dw1[i] *= 2;
    for (size_t i = 0; i < d.nw2; i++) dw2[i] *= 2;
    ck_assert(tu_rel_err(e_w1, dw1, d.nw1, 1e-3) < 1e-5);
    ck_assert(tu_rel_err(e_w2, dw2, d.nw2, 1e-3) < 1e-5);
    for (int k = 0; k < s.K1; k++) ck_assert_float_eq(e_b1[k], 2 * db1[k]);
    for (int k = 0; k < s.K2; k++) ck_assert_float_eq(e_b2[k], 2 * db2[k]);

    /* the dense stage 2 summing dL/dWx over two calls, folded once: twice
     * w2's gradient, and nothing added to dw2 before the fold */
    if (dense_of(&d)) {
        const size_t nx = dcrw_cnn_dwx_floats(&s);
        ck_assert(nx > 0);
        float *dwx = falloc(nx);
        fill(dwx, nx, 0);
        fill(e_w2, d.nw2, 0);
        for (int rep = 0; rep < 2; rep++)
            dcrw_cnn_backward(&s, d.in, d.w1, d.w2, dense_of(&d), d.saved, dout, ldd, NULL, e_w1,
                              e_b1, e_w2, e_b2, dwx, d.scr);
        for (size_t i = 0; i < d.nw2; i++) ck_assert_float_eq(e_w2[i], 0.0f);
        dcrw_cnn_dwx_fold(&s, dwx, e_w2);
        ck_assert(tu_rel_err(e_w2, dw2, d.nw2, 1e-3) < 1e-5);
        free(dwx);
    }

    free(e_w1);
    free(e_b1);
    free(e_w2);
    free(e_b2);
    free(x.in);
    free(x.w1);
    free(x.b1);
    free(x.w2);
    free(x.b2);
    free(x.R);
    free(x.out);
    free(R);
    free(dout);
    free(din);
    free(dw1);
    free(db1);
    free(dw2);
    free(db2);
    cnn_free(&d);
}

START_TEST(test_cnn_backward_fd) {
    check_cnn_backward(cnn_cases[_i / 3], 700 + 10 * (uint64_t)(_i / 3), 1000, _i % 3);
}
END_TEST

/* the dcrw preset's widths on a small batch, sampled */
START_TEST(test_cnn_backward_fd_wide) {
    check_cnn_backward((cnn_shape){3, 2, 7, 7, 32, 64}, 800, 40, 0);
    check_cnn_backward((cnn_shape){3, 2, 7, 7, 32, 64}, 800, 40, 1);
    check_cnn_backward((cnn_shape){3, 2, 7, 7, 32, 64}, 800, 40, 2);
}
END_TEST

/* the saved activations are all backward reads: a forward of other data in
 * between (into another saved buffer, same scratch) changes nothing */
START_TEST(test_cnn_saved_is_state) {
    /* 8×8: im2col in both stages; 6×6: the dense stage 2 */
    cnn_shape s = {3, 2, _i ? 6 : 8, _i ? 6 : 8, 3, 4};
    cnn_data d = cnn_make(s, 900, _i), e = cnn_make(s, 950, _i);
    ck_assert(!_i || d.wxbuf);
    const size_t nout = (size_t)s.B * d.F;
    float *R = frand(nout, -1, 1, 990);
    float *g1 = falloc(d.nw2), *g2 = falloc(d.nw2), *din1 = falloc(d.nin), *din2 = falloc(d.nin);
    float *v1 = falloc(d.nw1), *c1 = falloc((size_t)s.K1), *c2 = falloc((size_t)s.K2);
    fill(g1, d.nw2, 0);
    fill(g2, d.nw2, 0);
    fill(v1, d.nw1, 0);
    fill(c1, (size_t)s.K1, 0);
    fill(c2, (size_t)s.K2, 0);
    dcrw_cnn_backward(&s, d.in, d.w1, d.w2, dense_of(&d), d.saved, R, d.F, din1, v1, c1, g1, c2,
                      NULL, d.scr);
    dcrw_cnn_forward(&s, e.in, e.w1, e.b1, e.w2, dense_of(&e), e.b2, e.out, e.ld, e.saved, d.scr);
    dcrw_cnn_backward(&s, d.in, d.w1, d.w2, dense_of(&d), d.saved, R, d.F, din2, v1, c1, g2, c2,
                      NULL, d.scr);
    ck_assert(tu_rel_err(g2, g1, d.nw2, 1e-3) < 1e-6);
    ck_assert(tu_rel_err(din2, din1, d.nin, 1e-3) < 1e-6);
    free(v1);
    free(c1);
    free(c2);
    free(R);
    free(g1);
    free(g2);
    free(din1);
    free(din2);
    cnn_free(&d);
    cnn_free(&e);
}
END_TEST

int main(void) {
    Suite *s = suite_create("conv");
    TCase *tc = tcase_create("conv3x3");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_conv_forward, 0, (int)N_CONV_CASES);
    tcase_add_test(tc, test_conv_hand);
    tcase_add_loop_test(tc, test_conv_backward_fd, 0, (int)N_CONV_CASES);
    tcase_add_loop_test(tc, test_conv_grouped, 0, (int)N_CONV_CASES);
    tcase_add_loop_test(tc, test_conv_pool_backward, 0, (int)N_CONV_CASES);
    suite_add_tcase(s, tc);

    tc = tcase_create("maxpool2");
    tcase_add_test(tc, test_pool_forward_backward);
    tcase_add_test(tc, test_pool_ties);
    tcase_add_test(tc, test_pool_degenerate);
    suite_add_tcase(s, tc);

    tc = tcase_create("cnn");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_cnn_sizes);
    tcase_add_loop_test(tc, test_cnn_forward, 0, 3 * (int)N_CNN_CASES);
    tcase_add_test(tc, test_cnn_forward_presets);
    tcase_add_loop_test(tc, test_cnn_backward_fd, 0, 3 * (int)N_CNN_CASES);
    tcase_add_test(tc, test_cnn_backward_fd_wide);
    tcase_add_loop_test(tc, test_cnn_saved_is_state, 0, 3);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
