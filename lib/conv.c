/* The CNN encoder (MODEL.md §3.3): im2col over the whole batch so that each
 * convolution, and each of its two backward products, is a single sgemm.
 *
 * The column matrix of a layer is [Cin·9 × N] with N = B·H·W: row c·9+dy·3+dx,
 * column b·H·W + y·W + x holds in[b][c][y+dy−1][x+dx−1] (0 outside). The
 * product W[K × Cin·9]·cols is [K × N], channel-major across the batch, and the
 * bias + ReLU pass scatters it to the [B×K×H×W] layout everything else uses.
 *
 * Backward recomputes the column matrix into scratch instead of keeping it in
 * `saved`: im2col is a cheap copy, while keeping it would cost Cin·9 times the
 * layer's input per time step of the model's forward pass. */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "conv.h"
#include "gemm.h"
#include "pgemm.h"
#include "vmath.h"

/* `saved` regions start on 64-byte boundaries (16 floats) like the buffers
 * dcrw_alloc returns, so the uint8 argmax arrays share the alignment too. */
#define CONV_ALIGN_FLOATS ((size_t)16)

/* Saturating size arithmetic: an absurd shape yields SIZE_MAX, which no
 * allocation satisfies, instead of a wrapped small buffer. */
static size_t sz_mul(size_t a, size_t b) {
    if (a != 0 && b > SIZE_MAX / a) return SIZE_MAX;
    return a * b;
}
static size_t sz_add(size_t a, size_t b) {
    return b > SIZE_MAX - a ? SIZE_MAX : a + b;
}
static size_t sz_max(size_t a, size_t b) {
    return a > b ? a : b;
}
static size_t sz_round(size_t n) {
    size_t r = sz_add(n, CONV_ALIGN_FLOATS - 1);
    return r == SIZE_MAX ? SIZE_MAX : r / CONV_ALIGN_FLOATS * CONV_ALIGN_FLOATS;
}
static size_t sz_nonneg(int v) {
    return v > 0 ? (size_t)v : 0;
}
static size_t sz_4(int a, int b, int c, int d) {
    return sz_mul(sz_mul(sz_nonneg(a), sz_nonneg(b)), sz_mul(sz_nonneg(c), sz_nonneg(d)));
}

/* ---- im2col / col2im over the batch ---- */

/* Tap (dy, dx) of a 3×3 window reads input pixel (y + dy − 1, x + dx − 1).
 * For one image plane the valid output rows y ∈ [ylo, yhi) map to
 * consecutive input rows, so the whole tap is ONE contiguous copy shifted
 * by dx − 1, after which the column that fell off the image edge (x = 0 for
 * dx = 0, x = W − 1 for dx = 2) is zeroed: the images here are 7×7, where a
 * call per row costs more than the copy. */
typedef struct tap {
    int ylo, yhi; /* output rows with an input row */
    int shift;    /* dx − 1 */
} tap;

static tap tap_of(int H, int dy, int dx) {
    tap t = {dy == 0 ? 1 : 0, dy == 2 ? H - 1 : H, dx - 1};
    return t;
}

static void im2col(int B, int C, int H, int W, const float *in, float *cols) {
    const size_t HW = (size_t)H * W, N = (size_t)B * HW;
    for (int c = 0; c < C; c++) {
        for (int dy = 0; dy < 3; dy++) {
            for (int dx = 0; dx < 3; dx++) {
                const tap tp = tap_of(H, dy, dx);
                float *row = cols + ((size_t)c * 9 + (size_t)dy * 3 + dx) * N;
                for (int b = 0; b < B; b++) {
                    const float *plane = in + ((size_t)b * C + c) * HW;
                    float *dst = row + (size_t)b * HW;
                    if (tp.yhi <= tp.ylo || (W == 1 && tp.shift != 0)) {
                        memset(dst, 0, HW * sizeof *dst);
                        continue;
                    }
                    if (tp.ylo > 0) memset(dst, 0, (size_t)W * sizeof *dst);
                    if (tp.yhi < H) memset(dst + (size_t)tp.yhi * W, 0, (size_t)W * sizeof *dst);
                    const size_t n = (size_t)(tp.yhi - tp.ylo) * W;
                    float *d = dst + (size_t)tp.ylo * W;
                    const float *src = plane + (size_t)(tp.ylo + dy - 1) * W;
                    if (tp.shift == 0) {
                        memcpy(d, src, n * sizeof *d);
                    } else if (tp.shift < 0) {
                        memcpy(d + 1, src, (n - 1) * sizeof *d);
                        for (int y = tp.ylo; y < tp.yhi; y++) dst[(size_t)y * W] = 0.0f;
                    } else {
                        memcpy(d, src + 1, (n - 1) * sizeof *d);
                        for (int y = tp.ylo; y < tp.yhi; y++) dst[(size_t)y * W + W - 1] = 0.0f;
                    }
                }
            }
        }
    }
}

/* din = Σ of the column entries that came from each input pixel: the
 * adjoint of im2col, tap by tap. The entries that im2col zeroed (padding)
 * are dropped by zeroing them in cols (scratch) before the shifted add. */
static void col2im(int B, int C, int H, int W, float *cols, float *din) {
    const size_t HW = (size_t)H * W, N = (size_t)B * HW;
    memset(din, 0, (size_t)C * N * sizeof *din);
    for (int c = 0; c < C; c++) {
        for (int dy = 0; dy < 3; dy++) {
            for (int dx = 0; dx < 3; dx++) {
                const tap tp = tap_of(H, dy, dx);
                if (tp.yhi <= tp.ylo || (W == 1 && tp.shift != 0)) continue;
                float *row = cols + ((size_t)c * 9 + (size_t)dy * 3 + dx) * N;
                const size_t n = (size_t)(tp.yhi - tp.ylo) * W;
                for (int b = 0; b < B; b++) {
                    float *src = row + (size_t)b * HW;
                    float *plane = din + ((size_t)b * C + c) * HW;
                    float *d = plane + (size_t)(tp.ylo + dy - 1) * W;
                    const float *sr = src + (size_t)tp.ylo * W;
                    if (tp.shift < 0) {
                        for (int y = tp.ylo; y < tp.yhi; y++) src[(size_t)y * W] = 0.0f;
                        for (size_t k = 1; k < n; k++) d[k - 1] += sr[k];
                    } else if (tp.shift > 0) {
                        for (int y = tp.ylo; y < tp.yhi; y++) src[(size_t)y * W + W - 1] = 0.0f;
                        for (size_t k = 0; k + 1 < n; k++) d[k + 1] += sr[k];
                    } else {
                        for (size_t k = 0; k < n; k++) d[k] += sr[k];
                    }
                }
            }
        }
    }
}

/* ---- single 3×3 convolution + bias + ReLU ---- */

/* g = ReLU′ ⊙ dout, ReLU′ read off the output (so ReLU′(0) = 0); a select
 * the compiler vectorises. g may be dout (element by element, in place). */
static void relu_grad(int n, const float *restrict out, const float *dout, float *g) {
    for (int p = 0; p < n; p++) {
        const float d = dout[p]; /* loaded unconditionally, so the select vectorises */
        g[p] = out[p] > 0.0f ? d : 0.0f;
    }
}

size_t dcrw_conv3x3_scratch_floats(int B, int Cin, int K, int H, int W) {
    /* [Cin·9 × N] columns (reused for dcols in backward) and [K × N] products */
    const size_t N = sz_4(B, H, W, 1);
    return sz_mul(sz_add(sz_mul(sz_nonneg(Cin), 9), sz_nonneg(K)), N);
}

/* Images per matrix product: its N = n·H·W columns are a BLAS int (at
 * most max_cols), however large the batch; one product in every case the
 * library meets. */
static int conv_group(int B, int H, int W, size_t max_cols) {
    const size_t g = max_cols / ((size_t)H * W);
    return g < 1 ? 1 : g < (size_t)B ? (int)g : B;
}

/* One group of B images whose B·H·W columns fit one product. Compiled
 * for AVX2 too, where the bias and ReLU loop vectorises 8 wide. */
static DCRW_VECTOR_CLONES void conv_forward_group(int B, int Cin, int K, int H, int W,
                                                  const float *in, const float *w, const float *b,
                                                  float *out, float *scratch) {
    const size_t HW = (size_t)H * W, N = (size_t)B * HW;
    const int CK = Cin * 9;
    float *cols = scratch, *y = scratch + (size_t)CK * N;
    im2col(B, Cin, H, W, in, cols);
    gemm_nn(K, (int)N, CK, w, CK, cols, (int)N, 0.0f, y, (int)N);
    for (int bi = 0; bi < B; bi++) {
        for (int k = 0; k < K; k++) {
            const float *src = y + (size_t)k * N + (size_t)bi * HW;
            float *dst = out + ((size_t)bi * K + k) * HW;
            const float bk = b[k];
            for (size_t p = 0; p < HW; p++) {
                const float v = src[p] + bk;
                dst[p] = v > 0.0f ? v : 0.0f;
            }
        }
    }
}

void dcrw_conv3x3_relu_forward_cols(int B, int Cin, int K, int H, int W, const float *in,
                                    const float *w, const float *b, float *out, float *scratch,
                                    size_t max_cols) {
    if (B <= 0 || Cin <= 0 || K <= 0 || H <= 0 || W <= 0) return;
    const size_t HW = (size_t)H * W;
    const int g = conv_group(B, H, W, max_cols);
    for (int b0 = 0; b0 < B; b0 += g) {
        const int nb = B - b0 < g ? B - b0 : g;
        conv_forward_group(nb, Cin, K, H, W, in + (size_t)b0 * Cin * HW, w, b,
                           out + (size_t)b0 * K * HW, scratch);
    }
}

void dcrw_conv3x3_relu_forward(int B, int Cin, int K, int H, int W, const float *in, const float *w,
                               const float *b, float *out, float *scratch) {
    dcrw_conv3x3_relu_forward_cols(B, Cin, K, H, W, in, w, b, out, scratch, INT_MAX);
}

/* From dpre = dL/d(pre-activation) [K × N] of a group (the forward
 * product's layout): db, dw (+=) and din (overwritten, NULL skips). */
static DCRW_VECTOR_CLONES void conv_backward_from(int B, int Cin, int K, int H, int W,
                                                  const float *in, const float *w,
                                                  const float *dpre, float *din, float *dw,
                                                  float *db, float *cols) {
    const size_t N = (size_t)B * H * W;
    const int CK = Cin * 9;
    if (db)
        for (int k = 0; k < K; k++) db[k] += (float)vsum_floats(dpre + (size_t)k * N, N);
    if (dw) {
        im2col(B, Cin, H, W, in, cols);
        gemm_nt(K, CK, (int)N, dpre, (int)N, cols, (int)N, 1.0f, dw, CK);
    }
    if (din) {
        /* the columns are dead once dw has them: dcols overwrites them */
        gemm_tn(CK, (int)N, K, w, CK, dpre, (int)N, 0.0f, cols, (int)N);
        col2im(B, Cin, H, W, cols, din);
    }
}

static DCRW_VECTOR_CLONES void conv_backward_group(int B, int Cin, int K, int H, int W,
                                                   const float *in, const float *w,
                                                   const float *out, const float *dout, float *din,
                                                   float *dw, float *db, float *scratch) {
    const size_t HW = (size_t)H * W, N = (size_t)B * HW;
    float *cols = scratch, *dpre = scratch + (size_t)Cin * 9 * N;
    /* gather dout·ReLU′ into the [K × N] layout of the forward product; ReLU′
     * is read off the output, so ReLU′(0) = 0 */
    for (int k = 0; k < K; k++)
        for (int bi = 0; bi < B; bi++) {
            const size_t off = ((size_t)bi * K + k) * HW;
            relu_grad((int)HW, out + off, dout + off, dpre + (size_t)k * N + (size_t)bi * HW);
        }
    conv_backward_from(B, Cin, K, H, W, in, w, dpre, din, dw, db, cols);
}

void dcrw_conv3x3_relu_backward_cols(int B, int Cin, int K, int H, int W, const float *in,
                                     const float *w, const float *out, const float *dout,
                                     float *din, float *dw, float *db, float *scratch,
                                     size_t max_cols) {
    if (B <= 0 || Cin <= 0 || K <= 0 || H <= 0 || W <= 0) return;
    const size_t HW = (size_t)H * W;
    const int g = conv_group(B, H, W, max_cols);
    for (int b0 = 0; b0 < B; b0 += g) {
        const int nb = B - b0 < g ? B - b0 : g;
        const size_t in_off = (size_t)b0 * Cin * HW, out_off = (size_t)b0 * K * HW;
        conv_backward_group(nb, Cin, K, H, W, in + in_off, w, out + out_off, dout + out_off,
                            din ? din + in_off : NULL, dw, db, scratch);
    }
}

void dcrw_conv3x3_relu_backward(int B, int Cin, int K, int H, int W, const float *in,
                                const float *w, const float *out, const float *dout, float *din,
                                float *dw, float *db, float *scratch) {
    dcrw_conv3x3_relu_backward_cols(B, Cin, K, H, W, in, w, out, dout, din, dw, db, scratch,
                                    INT_MAX);
}

/* Backward of conv3x3 → ReLU → 2×2 max-pool from the pool's gradient dp
 * [B×K×(H/2)×(W/2)]. The gradient reaches the pre-activation only at each
 * window's argmax, where the ReLU's output is the pooled value itself: so
 * ReLU′ there is p > 0, and neither the conv's output nor its scattered
 * gradient [B×K×H×W] needs to be read or written; dpre [K × N] is
 * scattered straight from dp. The same numbers as dcrw_maxpool2_backward
 * then dcrw_conv3x3_relu_backward. */
void dcrw_conv3x3_relu_pool_backward(int B, int Cin, int K, int H, int W, const float *in,
                                     const float *w, const float *p, const float *dp,
                                     const uint8_t *arg, float *din, float *dw, float *db,
                                     float *scratch) {
    if (B <= 0 || Cin <= 0 || K <= 0 || H <= 0 || W <= 0) return;
    const size_t HW = (size_t)H * W;
    const int Ho = H / 2, Wo = W / 2;
    const size_t HoWo = (size_t)Ho * Wo;
    const int g = conv_group(B, H, W, INT_MAX);
    for (int b0 = 0; b0 < B; b0 += g) {
        const int nb = B - b0 < g ? B - b0 : g;
        const size_t N = (size_t)nb * HW;
        float *cols = scratch, *dpre = scratch + (size_t)Cin * 9 * N;
        memset(dpre, 0, (size_t)K * N * sizeof *dpre);
        for (int bi = 0; bi < nb; bi++)
            for (int k = 0; k < K; k++) {
                const size_t pl = ((size_t)(b0 + bi) * K + k) * HoWo;
                float *dst = dpre + (size_t)k * N + (size_t)bi * HW;
                for (int y = 0; y < Ho; y++)
                    for (int x = 0; x < Wo; x++) {
                        const size_t o = pl + (size_t)y * Wo + x;
                        const int ay = arg[o] >> 1, ax = arg[o] & 1;
                        dst[(size_t)(2 * y + ay) * W + 2 * x + ax] = p[o] > 0.0f ? dp[o] : 0.0f;
                    }
            }
        conv_backward_from(nb, Cin, K, H, W, in + (size_t)b0 * Cin * HW, w, dpre,
                           din ? din + (size_t)b0 * Cin * HW : NULL, dw, db, cols);
    }
}

/* ---- 2×2 max-pool ---- */

/* The first maximum of a 2×2 window in row-major order (strict >), and
 * its place 0..3. The place is the last strict improvement, worked out
 * from the comparisons by arithmetic, and the maximum read at that place:
 * as selects, the compiler made them branches, which the unpredictable
 * maxima mispredict. */
static inline float pool_window(const float *r0, const float *r1, uint8_t *where) {
    const int c1 = r0[1] > r0[0];
    const float b1 = c1 ? r0[1] : r0[0];
    const int c2 = r1[0] > b1;
    const float b2 = c2 ? r1[0] : b1;
    const int c3 = r1[1] > b2;
    const int idx = 2 * (c2 | c3) + (c3 | (c1 & !c2));
    const float v[4] = {r0[0], r0[1], r1[0], r1[1]};
    *where = (uint8_t)idx;
    return v[idx];
}

/* Planes of fewer than 4 output columns (the encoder's 7×7 → 3×3 and
 * 3×3 → 1×1 of a glimpse) run with the planes innermost: a loop along
 * their rows would run three times or once. Larger planes (28×28 → 14×14
 * → 7×7 of the whole image) run row by row, which streams each plane once;
 * the other order would sweep all planes once per output position. Either
 * way each output is the same selection. */
static DCRW_VECTOR_CLONES void maxpool2_forward(int B, int C, int H, int W, const float *in,
                                                float *out, uint8_t *arg) {
    if (B <= 0 || C <= 0 || H <= 0 || W <= 0) return;
    const int Ho = H / 2, Wo = W / 2;
    if (Ho == 0 || Wo == 0) return;
    const size_t planes = (size_t)B * C, HW = (size_t)H * W, HoWo = (size_t)Ho * Wo;
    if (Wo < 4) {
        for (int y = 0; y < Ho; y++)
            for (int x = 0; x < Wo; x++) {
                const size_t o = (size_t)y * Wo + x, i = (size_t)(2 * y) * W + 2 * x;
                for (size_t pl = 0; pl < planes; pl++) {
                    const float *r0 = in + pl * HW + i;
                    out[pl * HoWo + o] = pool_window(r0, r0 + W, arg + pl * HoWo + o);
                }
            }
        return;
    }
    for (size_t pl = 0; pl < planes; pl++) {
        const float *src = in + pl * HW;
        float *dst = out + pl * HoWo;
        uint8_t *a = arg + pl * HoWo;
        for (int y = 0; y < Ho; y++) {
            const float *r0 = src + (size_t)(2 * y) * W, *r1 = r0 + W;
            for (int x = 0; x < Wo; x++)
                dst[(size_t)y * Wo + x] =
                    pool_window(r0 + 2 * x, r1 + 2 * x, a + (size_t)y * Wo + x);
        }
    }
}

/* a plain symbol: the clones' ifunc stays inside this file */
void dcrw_maxpool2_forward(int B, int C, int H, int W, const float *in, float *out, uint8_t *arg) {
    maxpool2_forward(B, C, H, W, in, out, arg);
}

void dcrw_maxpool2_backward(int B, int C, int H, int W, const float *dout, const uint8_t *arg,
                            float *din) {
    if (B <= 0 || C <= 0 || H <= 0 || W <= 0) return;
    const size_t planes = (size_t)B * C;
    memset(din, 0, planes * H * W * sizeof *din);
    const int Ho = H / 2, Wo = W / 2;
    for (size_t pl = 0; pl < planes; pl++) {
        float *dst = din + pl * H * W;
        const float *g = dout + pl * Ho * Wo;
        const uint8_t *a = arg + pl * Ho * Wo;
        for (int y = 0; y < Ho; y++) {
            for (int x = 0; x < Wo; x++) {
                const size_t o = (size_t)y * Wo + x;
                const int ay = a[o] >> 1, ax = a[o] & 1;
                /* windows do not overlap: each input gets at most one value */
                dst[(size_t)(2 * y + ay) * W + 2 * x + ax] = g[o];
            }
        }
    }
}

/* ---- stage 2 as one product with an expanded weight ---- */

/* Where the second pool leaves one pixel per channel (a glimpse's 3×3 or
 * 2×2 planes), only the conv2 outputs of its 2×2 window are ever read: the
 * floor pool drops the rest. Those U = 4 outputs of an image are then one
 * product of the image's K1·H2·W2 inputs with an expanded weight
 * Wx [K2·U × K1·H2·W2] that holds w2's taps where they reach and 0
 * elsewhere. Its multiply-adds (K1·H2W2·K2·U) are at most those of im2col
 * (K1·9·K2·H2W2) whenever U <= 9, it needs no im2col or col2im, and its
 * output is already [B×K2×U], the layout the pool reads. */
typedef struct dense2 {
    int H, W;   /* conv2's input plane, H2×W2 */
    int Hu, Wu; /* the outputs the pool reads */
    int U, In;  /* Hu·Wu, and K1·H·W */
} dense2;

static int dense2_of(const cnn_shape *s, dense2 *g) {
    g->H = s->H / 2, g->W = s->W / 2;
    g->Hu = g->H / 2 * 2, g->Wu = g->W / 2 * 2;
    g->U = g->Hu * g->Wu;
    g->In = s->K1 * g->H * g->W;
    return g->U > 0 && g->U <= 9;
}

size_t dcrw_cnn_wx_floats(const cnn_shape *s) {
    dense2 g;
    if (!s || s->K1 <= 0 || s->K2 <= 0 || !dense2_of(s, &g)) return 0;
    /* Wx and its transpose */
    return sz_mul(2, sz_mul(sz_mul((size_t)s->K2, (size_t)g.U), (size_t)g.In));
}

/* The input pixel q that output u reads through tap (dy, dx), or −1 where
 * the tap falls outside the plane */
static int tap_input(const dense2 *g, int u, int dy, int dx) {
    const int qy = u / g->Wu + dy - 1, qx = u % g->Wu + dx - 1;
    return qy < 0 || qy >= g->H || qx < 0 || qx >= g->W ? -1 : qy * g->W + qx;
}

void dcrw_cnn_wx_build(const cnn_shape *s, const float *w2, float *buf, int part, int parts) {
    dense2 g;
    if (!dcrw_cnn_wx_floats(s) || parts <= 0) return;
    dense2_of(s, &g);
    const int N = s->K2 * g.U, HW = g.H * g.W;
    float *wx = buf, *wxt = buf + (size_t)N * g.In;
    /* Wx's rows r = (k, u) and Wxᵀ's rows i = (c, q) of this part: zeros,
     * then each reaching tap of w2 in its place in both */
    const int r0 = (int)((long long)N * part / parts),
              r1 = (int)((long long)N * (part + 1) / parts);
    const int i0 = (int)((long long)g.In * part / parts),
              i1 = (int)((long long)g.In * (part + 1) / parts);
    memset(wx + (size_t)r0 * g.In, 0, (size_t)(r1 - r0) * g.In * sizeof *wx);
    memset(wxt + (size_t)i0 * N, 0, (size_t)(i1 - i0) * N * sizeof *wxt);
    for (int u = 0; u < g.U; u++)
        for (int t = 0; t < 9; t++) {
            const int q = tap_input(&g, u, t / 3, t % 3);
            if (q < 0) continue;
            for (int k = 0; k < s->K2; k++)
                for (int c = 0; c < s->K1; c++) {
                    const float v = w2[((size_t)k * s->K1 + c) * 9 + t];
                    const int r = k * g.U + u, i = c * HW + q;
                    if (r >= r0 && r < r1) wx[(size_t)r * g.In + i] = v;
                    if (i >= i0 && i < i1) wxt[(size_t)i * N + r] = v;
                }
        }
}

void dcrw_cnn_dense_describe(const cnn_shape *s, const float *buf, int path, cnn_dense *out) {
    dense2 g;
    dense2_of(s, &g);
    out->wx = buf;
    out->wxt = buf + (size_t)s->K2 * g.U * g.In;
    out->path = path;
}

/* C[M×n] = A[M×k]·B for B [k×n] row-major: the packed kernel reading B in
 * place (as fast as packed where n is a multiple of its panels, as the
 * presets' 256 and 288 are) or sgemm */
static void dense2_gemm(int path, int M, int n, int k, const float *A, const float *B, float *C) {
    if (path >= 0) {
        pgemm_b v;
        dcrw_pgemm_view(&v, (pgemm_path)path, k, n, B, n);
        dcrw_pgemm(M, 0, A, k, &v, 0.0f, C, n);
    } else {
        gemm_nn(M, n, k, A, k, B, n, 0.0f, C, n);
    }
}

/* a2 [B×K2×U] = ReLU(p1·Wxᵀ + b2) */
static DCRW_VECTOR_CLONES void dense2_forward(const cnn_shape *s, const dense2 *g, const float *p1,
                                              const cnn_dense *dx, const float *b2, float *a2) {
    const int N = s->K2 * g->U;
    dense2_gemm(dx->path, s->B, N, g->In, p1, dx->wxt, a2);
    for (int b = 0; b < s->B; b++)
        for (int k = 0; k < s->K2; k++) {
            float *v = a2 + (size_t)b * N + (size_t)k * g->U;
            for (int u = 0; u < g->U; u++) {
                const float y = v[u] + b2[k];
                v[u] = y > 0.0f ? y : 0.0f;
            }
        }
}

/* dWx [K2·U × In] onto w2's taps (+=): each output u reads input q through
 * tap (q − u + 1), so the taps that reach fold back, one (u, tap) pair at
 * a time */
static void dense2_fold(const cnn_shape *s, const dense2 *g, const float *dwx, float *dw2) {
    const size_t HW = (size_t)g->H * g->W;
    for (int u = 0; u < g->U; u++)
        for (int t = 0; t < 9; t++) {
            const int q = tap_input(g, u, t / 3, t % 3);
            if (q < 0) continue;
            for (int k = 0; k < s->K2; k++) {
                const float *src = dwx + ((size_t)k * g->U + u) * g->In + q;
                float *dst = dw2 + (size_t)k * s->K1 * 9 + t;
                for (int c = 0; c < s->K1; c++) dst[(size_t)c * 9] += src[c * HW];
            }
        }
}

size_t dcrw_cnn_dwx_floats(const cnn_shape *s) {
    return dcrw_cnn_wx_floats(s) / 2;
}

void dcrw_cnn_dwx_fold(const cnn_shape *s, const float *dwx, float *dw2) {
    dense2 g;
    if (dcrw_cnn_wx_floats(s) && dense2_of(s, &g)) dense2_fold(s, &g, dwx, dw2);
}

/* From dL/da2 [B×K2×U] (overwritten by dL/d(pre-activation)): dp1
 * (overwritten, NULL skips) and db2 (+=); dWx into dwx_acc (+=) when it is
 * given, else into the scratch dwx and folded onto dw2 (+=). */
static void dense2_backward(const cnn_shape *s, const dense2 *g, const float *p1,
                            const cnn_dense *dx, const float *a2, float *da2, float *dp1,
                            float *dw2, float *db2, float *dwx_acc, float *dwx) {
    const int N = s->K2 * g->U;
    relu_grad(s->B * N, a2, da2, da2);
    if (db2)
        for (int k = 0; k < s->K2; k++) {
            double acc = 0.0;
            for (int b = 0; b < s->B; b++)
                for (int u = 0; u < g->U; u++) acc += da2[(size_t)b * N + (size_t)k * g->U + u];
            db2[k] += (float)acc;
        }
    if (dwx_acc) {
        gemm_tn(N, g->In, s->B, da2, N, p1, g->In, 1.0f, dwx_acc, g->In);
    } else if (dw2) {
        gemm_tn(N, g->In, s->B, da2, N, p1, g->In, 0.0f, dwx, g->In);
        dense2_fold(s, g, dwx, dw2);
    }
    if (dp1) dense2_gemm(dx->path, s->B, g->In, N, da2, dx->wx, dp1);
}

/* ---- the two-stage encoder ---- */

/* Layout of `saved`, each region rounded up to CONV_ALIGN_FLOATS:
 *   a1   [B×K1×H×W]      conv1 output after ReLU, pool1's input
 *   p1   [B×K1×H2×W2]    pool1 output, conv2's input
 *   a2   [B×K2×H2×W2]    conv2 output after ReLU
 *   arg1 [B×K1×H2×W2]    uint8 pool1 argmax
 *   arg2 [B×K2×H4×W4]    uint8 pool2 argmax */
typedef struct cnn_layout {
    int H2, W2, H4, W4;
    size_t a1, p1, a2, arg1, arg2, total; /* float offsets; total = size */
} cnn_layout;

static cnn_layout cnn_layout_of(const cnn_shape *s) {
    cnn_layout L;
    L.H2 = s->H / 2, L.W2 = s->W / 2, L.H4 = L.H2 / 2, L.W4 = L.W2 / 2;
    const size_t n_a1 = sz_4(s->B, s->K1, s->H, s->W);
    const size_t n_p1 = sz_4(s->B, s->K1, L.H2, L.W2);
    const size_t n_a2 = sz_4(s->B, s->K2, L.H2, L.W2);
    const size_t n_p2 = sz_4(s->B, s->K2, L.H4, L.W4);
    /* bytes to floats, rounded up */
    const size_t f_arg1 = sz_add(n_p1, sizeof(float) - 1) / sizeof(float);
    const size_t f_arg2 = sz_add(n_p2, sizeof(float) - 1) / sizeof(float);
    L.a1 = 0;
    L.p1 = sz_add(L.a1, sz_round(n_a1));
    L.a2 = sz_add(L.p1, sz_round(n_p1));
    L.arg1 = sz_add(L.a2, sz_round(n_a2));
    L.arg2 = sz_add(L.arg1, sz_round(f_arg1));
    L.total = sz_add(L.arg2, sz_round(f_arg2));
    return L;
}

int dcrw_cnn_out_features(const cnn_shape *s) {
    if (!s || s->K2 <= 0 || s->H <= 0 || s->W <= 0) return 0;
    return s->K2 * (s->H / 4) * (s->W / 4);
}

size_t dcrw_cnn_saved_floats(const cnn_shape *s) {
    return cnn_layout_of(s).total;
}

/* Scratch: [G1 | G2 | conv] where backward holds dL/da2 in G1 and dL/dp1
 * in G2 (stage 1's backward scatters from dL/dp1 straight into its
 * product's layout in conv), and conv is the largest of the two layers'
 * im2col scratch. Forward uses only the conv part. */
static size_t cnn_scratch_g1(const cnn_shape *s, const cnn_layout *L) {
    return sz_round(sz_4(s->B, s->K2, L->H2, L->W2));
}
static size_t cnn_scratch_g2(const cnn_shape *s, const cnn_layout *L) {
    return sz_round(sz_4(s->B, s->K1, L->H2, L->W2));
}

size_t dcrw_cnn_scratch_floats(const cnn_shape *s) {
    const cnn_layout L = cnn_layout_of(s);
    /* the dense stage 2's dWx lives where the convolutions' scratch is */
    const size_t conv = sz_max(sz_max(dcrw_conv3x3_scratch_floats(s->B, s->Cin, s->K1, s->H, s->W),
                                      dcrw_conv3x3_scratch_floats(s->B, s->K1, s->K2, L.H2, L.W2)),
                               dcrw_cnn_wx_floats(s) / 2);
    return sz_add(sz_add(cnn_scratch_g1(s, &L), cnn_scratch_g2(s, &L)), conv);
}

static int cnn_shape_ok(const cnn_shape *s) {
    return s && s->B > 0 && s->Cin > 0 && s->H > 0 && s->W > 0 && s->K1 > 0 && s->K2 > 0;
}

void dcrw_cnn_forward(const cnn_shape *s, const float *in, const float *w1, const float *b1,
                      const float *w2, const cnn_dense *wx, const float *b2, float *out, int ldout,
                      float *saved, float *scratch) {
    if (!cnn_shape_ok(s)) return;
    const cnn_layout L = cnn_layout_of(s);
    const int F = dcrw_cnn_out_features(s);
    float *a1 = saved + L.a1, *p1 = saved + L.p1, *a2 = saved + L.a2;
    uint8_t *arg1 = (uint8_t *)(saved + L.arg1), *arg2 = (uint8_t *)(saved + L.arg2);
    float *conv_scratch = scratch + cnn_scratch_g1(s, &L) + cnn_scratch_g2(s, &L);

    dcrw_conv3x3_relu_forward(s->B, s->Cin, s->K1, s->H, s->W, in, w1, b1, a1, conv_scratch);
    dcrw_maxpool2_forward(s->B, s->K1, s->H, s->W, a1, p1, arg1);
    dense2 g;
    const int dense = dense2_of(s, &g) && wx;
    /* the dense stage's a2 holds the planes the pool reads, Hu×Wu */
    const int H2 = dense ? g.Hu : L.H2, W2 = dense ? g.Wu : L.W2;
    if (dense)
        dense2_forward(s, &g, p1, wx, b2, a2);
    else
        dcrw_conv3x3_relu_forward(s->B, s->K1, s->K2, L.H2, L.W2, p1, w2, b2, a2, conv_scratch);
    if (F == 0) return;
    /* one image at a time, so each pooled image lands in its strided row */
    const size_t a2_img = (size_t)s->K2 * H2 * W2;
    for (int b = 0; b < s->B; b++)
        dcrw_maxpool2_forward(1, s->K2, H2, W2, a2 + b * a2_img, out + (size_t)b * ldout,
                              arg2 + (size_t)b * F);
}

void dcrw_cnn_backward(const cnn_shape *s, const float *in, const float *w1, const float *w2,
                       const cnn_dense *wx, const float *saved, const float *dout, int lddout,
                       float *din, float *dw1, float *db1, float *dw2, float *db2, float *dwx,
                       float *scratch) {
    if (!cnn_shape_ok(s)) return;
    const cnn_layout L = cnn_layout_of(s);
    const int F = dcrw_cnn_out_features(s);
    const float *p1 = saved + L.p1, *a2 = saved + L.a2;
    const uint8_t *arg1 = (const uint8_t *)(saved + L.arg1);
    const uint8_t *arg2 = (const uint8_t *)(saved + L.arg2);
    float *g1 = scratch, *g2 = scratch + cnn_scratch_g1(s, &L);
    float *conv_scratch = g2 + cnn_scratch_g2(s, &L);

    dense2 g;
    const int dense = dense2_of(s, &g) && wx;
    const int H2 = dense ? g.Hu : L.H2, W2 = dense ? g.Wu : L.W2;
    float *da2 = g1;
    const size_t a2_img = (size_t)s->K2 * H2 * W2;
    if (F == 0) {
        memset(da2, 0, (size_t)s->B * a2_img * sizeof *da2);
    } else {
        for (int b = 0; b < s->B; b++)
            dcrw_maxpool2_backward(1, s->K2, H2, W2, dout + (size_t)b * lddout,
                                   arg2 + (size_t)b * F, da2 + b * a2_img);
    }
    float *dp1 = g2;
    if (dense)
        dense2_backward(s, &g, p1, wx, a2, da2, dp1, dw2, db2, dwx, conv_scratch);
    else
        dcrw_conv3x3_relu_backward(s->B, s->K1, s->K2, L.H2, L.W2, p1, w2, a2, da2, dp1, dw2, db2,
                                   conv_scratch);
    dcrw_conv3x3_relu_pool_backward(s->B, s->Cin, s->K1, s->H, s->W, in, w1, p1, dp1, arg1, din,
                                    dw1, db1, conv_scratch);
}
