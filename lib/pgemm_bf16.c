/* bfloat16 products (see pgemm_bf16.h).
 *
 * The micro-kernel keeps a 12×32 tile of C in 24 registers and, per pair
 * of k, loads one panel row (two registers of 16 words) and broadcasts 12
 * words of A, each a pair of bf16: 24 VDPBF16PS, 48 multiply-adds of
 * float32 FMA's 24. A is rounded to bf16 once per block of BF16_MC rows
 * and BF16_KC columns into a stack buffer that every column panel reuses,
 * as BLIS packs its A. */
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "pgemm_bf16.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define BF16_X86 1
#include <immintrin.h>
#else
#define BF16_X86 0
#endif

#define BF16_MR 12
#define BF16_MC 96 /* rows of A per block: 96 × 96 words of bf16 pairs, 36 KiB */

/* 1: the portable path even where the CPU has VDPBF16PS */
static atomic_int bf16_hardware_off;

/* ---- rounding, as VCVTNE2PS2BF16 and VDPBF16PS do it ---------------------- */

static uint32_t bf16_bits_of(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float bf16_float_of(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

uint16_t dcrw_bf16_round(float x) {
    uint32_t u = bf16_bits_of(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
    if ((u & 0x7f800000u) == 0) u &= 0x80000000u; /* subnormal inputs count as zero */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float dcrw_bf16_to_float(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    if ((u & 0x7f800000u) == 0) u &= 0x80000000u; /* VDPBF16PS reads subnormals as zero */
    return bf16_float_of(u);
}

/* a sum VDPBF16PS leaves subnormal is flushed to zero */
static float bf16_flush(float v) {
    return fabsf(v) < 0x1p-126f ? copysignf(0.0f, v) : v;
}

/* kc floats of a row as ⌈kc/2⌉ pairs (low half the even one; 0 past kc) */
static void bf16_pairs_c(const float *src, int kc, uint32_t *dst) {
    for (int p = 0; p < (kc + 1) / 2; p++) {
        const uint32_t lo = dcrw_bf16_round(src[2 * p]);
        const uint32_t hi = 2 * p + 1 < kc ? dcrw_bf16_round(src[2 * p + 1]) : 0u;
        dst[p] = lo | hi << 16;
    }
}

/* The words of a panel row of B = W: column c pairs r0[c] (low half) with
 * r1[c] (0 when r1 is NULL), for c < nc; 0 in the BF16_NR - nc past them. */
static void bf16_rows_c(const float *r0, const float *r1, int nc, uint32_t *dst) {
    for (int c = 0; c < BF16_NR; c++) {
        uint32_t word = 0;
        if (c < nc) {
            word = dcrw_bf16_round(r0[c]);
            if (r1) word |= (uint32_t)dcrw_bf16_round(r1[c]) << 16;
        }
        dst[c] = word;
    }
}

/* ---- portable path ------------------------------------------------------ */

static void bf16_c_tile(int m, int kp, const uint32_t *a, size_t lda, const uint32_t *b, float *c,
                        size_t ldc, int nc, float beta) {
    for (int i = 0; i < m; i++) {
        float acc[BF16_NR];
        memset(acc, 0, sizeof acc);
        for (int p = 0; p < kp; p++) {
            const uint32_t aw = a[(size_t)i * lda + (size_t)p];
            const float a0 = dcrw_bf16_to_float((uint16_t)aw);
            const float a1 = dcrw_bf16_to_float((uint16_t)(aw >> 16));
            const uint32_t *row = b + (size_t)p * BF16_NR;
            for (int j = 0; j < BF16_NR; j++) {
                /* each product is exact in float32: one rounding per sum */
                acc[j] = bf16_flush(acc[j] + a1 * dcrw_bf16_to_float((uint16_t)(row[j] >> 16)));
                acc[j] = bf16_flush(acc[j] + a0 * dcrw_bf16_to_float((uint16_t)row[j]));
            }
        }
        float *out = c + (size_t)i * ldc;
        for (int j = 0; j < nc; j++) out[j] = beta == 0.0f ? acc[j] : fmaf(beta, out[j], acc[j]);
    }
}

#if BF16_X86

#define BF16_INLINE static inline __attribute__((always_inline))
#define BF16_FN __attribute__((target("avx512f,avx512bf16")))
#define BF16_REPEAT12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

static BF16_FN void bf16_pairs_hw(const float *src, int kc, uint32_t *dst) {
    for (int k = 0; k < kc; k += 32) {
        const int left = kc - k, n0 = left < 16 ? left : 16, n1 = left - n0 < 16 ? left - n0 : 16;
        const __m512 lo = _mm512_maskz_loadu_ps((__mmask16)((1u << n0) - 1u), src + k);
        const __m512 hi =
            _mm512_maskz_loadu_ps((__mmask16)(n1 > 0 ? (1u << n1) - 1u : 0u), src + k + 16);
        const __m512i v = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
        const int words = (n0 + (n1 > 0 ? n1 : 0) + 1) / 2;
        _mm512_mask_storeu_epi32(dst + k / 2, (__mmask16)((1u << words) - 1u), v);
    }
}

/* bf16_rows_c(), sixteen columns at a time: both rows converted, widened to
 * words and the second shifted into the high halves */
static BF16_FN void bf16_rows_hw(const float *r0, const float *r1, int nc, uint32_t *dst) {
    for (int c = 0; c < BF16_NR; c += 16) {
        const int n = nc - c < 0 ? 0 : nc - c < 16 ? nc - c : 16;
        const __mmask16 m = (__mmask16)((1u << n) - 1u);
        const __m512 a = _mm512_maskz_loadu_ps(m, r0 + c);
        const __m512 b = r1 ? _mm512_maskz_loadu_ps(m, r1 + c) : _mm512_setzero_ps();
        const __m512i lo = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(a));
        const __m512i hi = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(b));
        _mm512_storeu_si512((void *)(dst + c), _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
    }
}

BF16_INLINE BF16_FN void bf16_hw_out(float *c, __m512 lo, __m512 hi, int nc, float beta) {
    const int n0 = nc < 16 ? nc : 16, n1 = nc - n0;
    const __mmask16 m0 = (__mmask16)((1u << n0) - 1u);
    const __mmask16 m1 = (__mmask16)(n1 > 0 ? (1u << n1) - 1u : 0u);
    if (beta != 0.0f) {
        const __m512 vb = _mm512_set1_ps(beta);
        lo = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, c), lo);
        hi = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, c + 16), hi);
    }
    _mm512_mask_storeu_ps(c, m0, lo);
    _mm512_mask_storeu_ps(c + 16, m1, hi);
}

#define BF16_ZERO(i) __m512 l##i = _mm512_setzero_ps(), h##i = _mm512_setzero_ps();
#define BF16_DOT(i)                                                                                \
    if (i < m) {                                                                                   \
        const __m512bh ai = (__m512bh)_mm512_set1_epi32((int)a[(size_t)i * lda + (size_t)p]);      \
        l##i = _mm512_dpbf16_ps(l##i, ai, b0);                                                     \
        h##i = _mm512_dpbf16_ps(h##i, ai, b1);                                                     \
    }
#define BF16_OUT(i)                                                                                \
    if (i < m) bf16_hw_out(c + (size_t)i * ldc, l##i, h##i, nc, beta);

BF16_INLINE BF16_FN void bf16_hw_kernel(const int m, int kp, const uint32_t *a, size_t lda,
                                        const uint32_t *b, float *c, size_t ldc, int nc,
                                        float beta) {
    BF16_REPEAT12(BF16_ZERO)
    for (int p = 0; p < kp; p++, b += BF16_NR) {
        const __m512bh b0 = (__m512bh)_mm512_load_si512((const void *)b);
        const __m512bh b1 = (__m512bh)_mm512_load_si512((const void *)(b + 16));
        BF16_REPEAT12(BF16_DOT)
    }
    BF16_REPEAT12(BF16_OUT)
}

#define BF16_CASE(M)                                                                               \
    case M:                                                                                        \
        bf16_hw_kernel(M, kp, a, lda, b, c, ldc, nc, beta);                                        \
        break;

static BF16_FN void bf16_hw_tile(int m, int kp, const uint32_t *a, size_t lda, const uint32_t *b,
                                 float *c, size_t ldc, int nc, float beta) {
    switch (m) {
        BF16_CASE(1)
        BF16_CASE(2)
        BF16_CASE(3)
        BF16_CASE(4)
        BF16_CASE(5)
        BF16_CASE(6)
        BF16_CASE(7)
        BF16_CASE(8)
        BF16_CASE(9)
        BF16_CASE(10)
        BF16_CASE(11)
        BF16_CASE(12)
    default:
        break;
    }
}

int dcrw_bf16_hardware(void) {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
}

#else

static void bf16_pairs_hw(const float *src, int kc, uint32_t *dst) {
    bf16_pairs_c(src, kc, dst);
}

static void bf16_rows_hw(const float *r0, const float *r1, int nc, uint32_t *dst) {
    bf16_rows_c(r0, r1, nc, dst);
}

static void bf16_hw_tile(int m, int kp, const uint32_t *a, size_t lda, const uint32_t *b, float *c,
                         size_t ldc, int nc, float beta) {
    bf16_c_tile(m, kp, a, lda, b, c, ldc, nc, beta);
}

int dcrw_bf16_hardware(void) {
    return 0;
}

#endif

int dcrw_bf16_use_hardware(int on) {
    return !atomic_exchange(&bf16_hardware_off, !on);
}

/* ---- packing B -------------------------------------------------------------- */

size_t dcrw_bf16_pack_words(int k, int n) {
    if (k < 1 || n < 1) return 0;
    return (size_t)((n + BF16_NR - 1) / BF16_NR) * BF16_NR * (size_t)((k + 1) / 2);
}

void dcrw_bf16_describe(bf16_b *out, int k, int n, const uint32_t *buf) {
    out->panels = buf;
    out->k = k;
    out->n = n;
}

/* kc floats of a row as pairs, with the conversion the CPU has */
static void bf16_pairs(int hw, const float *src, int kc, uint32_t *dst) {
    if (hw)
        bf16_pairs_hw(src, kc, dst);
    else
        bf16_pairs_c(src, kc, dst);
}

void dcrw_bf16_pack_part(int trans, int k, int n, const float *w, int ldw, uint32_t *buf, int part,
                         int parts) {
    if (k < 1 || n < 1 || parts < 1 || part < 0 || part >= parts) return;
    const long np = (n + BF16_NR - 1) / BF16_NR;
    const int kp = (k + 1) / 2;
    const int hw = dcrw_bf16_hardware() && !atomic_load(&bf16_hardware_off);
    for (long q = np * part / parts; q < np * (part + 1) / parts; q++) {
        const int j0 = (int)q * BF16_NR;
        uint32_t *pan = buf + (size_t)j0 * (size_t)kp;
        if (trans) {
            /* B = Wᵀ: column j of the panel is row j of W, whose consecutive
             * floats are the pairs; converted a block at a time (vector
             * conversion where there is one), then spread down the column */
            uint32_t words[BF16_KC / 2];
            for (int c = 0; c < BF16_NR; c++) {
                const int j = j0 + c;
                for (int k0 = 0; k0 < k; k0 += BF16_KC) {
                    const int kc = k - k0 < BF16_KC ? k - k0 : BF16_KC, p0 = k0 / 2;
                    if (j < n)
                        bf16_pairs(hw, w + (size_t)j * (size_t)ldw + (size_t)k0, kc, words);
                    else
                        memset(words, 0, sizeof words);
                    for (int p = 0; p < (kc + 1) / 2; p++)
                        pan[(size_t)(p0 + p) * BF16_NR + (size_t)c] = words[p];
                }
            }
            continue;
        }
        /* B = W: the pairs are rows 2p and 2p + 1 of W, a panel row each */
        const int nc = n - j0 < BF16_NR ? n - j0 : BF16_NR;
        for (int p = 0; p < kp; p++) {
            const float *r0 = w + (size_t)(2 * p) * (size_t)ldw + (size_t)j0;
            const float *r1 = 2 * p + 1 < k ? r0 + ldw : NULL;
            if (hw)
                bf16_rows_hw(r0, r1, nc, pan + (size_t)p * BF16_NR);
            else
                bf16_rows_c(r0, r1, nc, pan + (size_t)p * BF16_NR);
        }
    }
}

/* ---- the products ---------------------------------------------------------------- */

/* C = beta·C over M × n (beta = 0 only writes): a product with k = 0 */
static void bf16_scale(int M, int n, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < n; j++) {
            float *v = C + (size_t)i * ldc + j;
            *v = beta == 0.0f ? 0.0f : beta * *v;
        }
}

/* C[mc × n] = bk·C + ap·(one k block of B): ap holds mc rows of kp pairs,
 * the block's panels start at bp, `pstride` words apart */
static void bf16_block(int hw, int mc, int kp, const uint32_t *ap, const uint32_t *bp,
                       size_t pstride, int n, float bk, float *C, int ldc) {
    /* tiles of equal size: 50 rows are 5 of 10, not 4 of 12 and one of 2 */
    const int tiles = (mc + BF16_MR - 1) / BF16_MR, base = mc / tiles, extra = mc % tiles;
    for (int j0 = 0; j0 < n; j0 += BF16_NR, bp += pstride) {
        const int nc = n - j0 < BF16_NR ? n - j0 : BF16_NR;
        for (int t = 0, i = 0; t < tiles; t++) {
            const int m = base + (t < extra);
            float *c = C + (size_t)i * (size_t)ldc + j0;
            if (hw)
                bf16_hw_tile(m, kp, ap + (size_t)i * kp, (size_t)kp, bp, c, (size_t)ldc, nc, bk);
            else
                bf16_c_tile(m, kp, ap + (size_t)i * kp, (size_t)kp, bp, c, (size_t)ldc, nc, bk);
            i += m;
        }
    }
}

void dcrw_bf16_gemm(int M, const float *A, int lda, const bf16_b *B, float beta, float *C,
                    int ldc) {
    if (M < 1 || B->n < 1) return;
    if (B->k < 1) {
        bf16_scale(M, B->n, beta, C, ldc);
        return;
    }
    const int hw = dcrw_bf16_hardware() && !atomic_load(&bf16_hardware_off);
    const int kp_all = (B->k + 1) / 2;
    uint32_t ap[BF16_MC * (BF16_KC / 2)] __attribute__((aligned(64)));
    for (int k0 = 0; k0 < B->k; k0 += BF16_KC) {
        const int kc = B->k - k0 < BF16_KC ? B->k - k0 : BF16_KC, kp = (kc + 1) / 2;
        /* later k blocks add onto what the first one wrote */
        const float bk = k0 ? 1.0f : beta;
        for (int i0 = 0; i0 < M; i0 += BF16_MC) {
            const int mc = M - i0 < BF16_MC ? M - i0 : BF16_MC;
            for (int i = 0; i < mc; i++)
                bf16_pairs(hw, A + (size_t)(i0 + i) * (size_t)lda + k0, kc, ap + (size_t)i * kp);
            bf16_block(hw, mc, kp, ap, B->panels + (size_t)(k0 / 2) * BF16_NR,
                       (size_t)BF16_NR * (size_t)kp_all, B->n, bk, C + (size_t)i0 * (size_t)ldc,
                       ldc);
        }
    }
}

/* mc columns of A [kc × ·] as rows of pairs along k: ap[i·kp + p] pairs
 * A[2p][i] (low half) with A[2p + 1][i], converted two rows at a time as
 * a panel row of B = W is, then spread across the rows of ap */
static void bf16_pairs_t(int hw, const float *A, int lda, int kc, int mc, uint32_t *ap, int kp) {
    uint32_t words[BF16_NR] __attribute__((aligned(64)));
    for (int p = 0; p < kp; p++) {
        const float *r0 = A + (size_t)(2 * p) * (size_t)lda;
        const float *r1 = 2 * p + 1 < kc ? r0 + lda : NULL;
        for (int c0 = 0; c0 < mc; c0 += BF16_NR) {
            const int nc = mc - c0 < BF16_NR ? mc - c0 : BF16_NR;
            if (hw)
                bf16_rows_hw(r0 + c0, r1 ? r1 + c0 : NULL, nc, words);
            else
                bf16_rows_c(r0 + c0, r1 ? r1 + c0 : NULL, nc, words);
            for (int c = 0; c < nc; c++) ap[(size_t)(c0 + c) * kp + p] = words[c];
        }
    }
}

size_t dcrw_bf16_tn_words(void) {
    return (size_t)BF16_TN_NC * (BF16_KC / 2);
}

void dcrw_bf16_gemm_tn(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                       float beta, float *C, int ldc, uint32_t *work) {
    if (M < 1 || N < 1) return;
    if (K < 1) {
        bf16_scale(M, N, beta, C, ldc);
        return;
    }
    const int hw = dcrw_bf16_hardware() && !atomic_load(&bf16_hardware_off);
    uint32_t ap[BF16_MC * (BF16_KC / 2)] __attribute__((aligned(64)));
    for (int n0 = 0; n0 < N; n0 += BF16_TN_NC) {
        const int nn = N - n0 < BF16_TN_NC ? N - n0 : BF16_TN_NC;
        for (int k0 = 0; k0 < K; k0 += BF16_KC) {
            const int kc = K - k0 < BF16_KC ? K - k0 : BF16_KC, kp = (kc + 1) / 2;
            const float bk = k0 ? 1.0f : beta;
            /* this k block of B, packed once for every block of A's columns */
            dcrw_bf16_pack_part(0, kc, nn, B + (size_t)k0 * (size_t)ldb + n0, ldb, work, 0, 1);
            for (int i0 = 0; i0 < M; i0 += BF16_MC) {
                const int mc = M - i0 < BF16_MC ? M - i0 : BF16_MC;
                bf16_pairs_t(hw, A + (size_t)k0 * (size_t)lda + i0, lda, kc, mc, ap, kp);
                bf16_block(hw, mc, kp, ap, work, (size_t)BF16_NR * (size_t)kp, nn, bk,
                           C + (size_t)i0 * (size_t)ldc + n0, ldc);
            }
        }
    }
}
