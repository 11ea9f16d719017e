/* Packed-operand GEMM (see pgemm.h).
 *
 * Layout of a packed B [k × n] for a path of panel width NR: ⌈n/NR⌉ column
 * panels one after the other, each k rows of NR contiguous floats (row kk
 * of a panel holds B[kk][j0 .. j0+NR)), the columns past n zero. The
 * micro-kernel keeps an MR×NR tile of C in registers and, per kk, loads
 * one panel row and broadcasts MR values of op(A): MR·NR/8 FMAs (AVX2) for
 * MR + NR/8 loads.
 *
 * Blocking: k in blocks of at most KC so that the panel rows one tile
 * sweeps stay in L1 while the row blocks of C pass over them; rows in
 * blocks of at most MC so that the part of op(A) they read stays in L2.
 * Both are split into equal parts (k = 264 is two blocks of 132, not 256 and
 * 8; 50 rows on a 6-row kernel are 5 tiles of 6 and 4 of 5), since a tile
 * of fewer rows has fewer independent FMA chains than the two FMA units
 * need to stay busy. */
#include <stdint.h>
#include <string.h>

#include "pgemm.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PGEMM_X86 1
#include <immintrin.h>
#else
#define PGEMM_X86 0
#endif

/* a tile: C[m × nc] = beta·C + op(A)[m × kc]·Bpanel[kc × nw] (first nc
 * columns), the panel's rows bs floats apart */
typedef void (*tile_fn)(int m, int ta, int kc, const float *a, size_t lda, const float *b, int nw,
                        size_t bs, float *c, size_t ldc, int nc, float beta);

typedef struct path_info {
    int mr, nr, kc; /* tile rows, panel width, k block */
    int tail;       /* a last panel of at most this many columns is this wide */
    tile_fn tile;
} path_info;

#define MC 192 /* rows of op(A) per L2 block */
/* floats of the largest k block × panel: a partial last panel of an
 * operand used in place is copied there (zero-padded), on the stack */
#define EDGE_FLOATS (256 * 32)

/* ---- portable C --------------------------------------------------------- */

#define C_MR 4
#define C_NR 16

static void c_tile(int m, int ta, int kc, const float *a, size_t lda, const float *b, int nw,
                   size_t bs, float *c, size_t ldc, int nc, float beta) {
    (void)nw; /* always C_NR */
    float acc[C_MR][C_NR];
    memset(acc, 0, sizeof acc);
    for (int kk = 0; kk < kc; kk++, b += bs) {
        for (int i = 0; i < m; i++) {
            const float ai = ta ? a[(size_t)kk * lda + i] : a[(size_t)i * lda + kk];
            for (int j = 0; j < C_NR; j++) acc[i][j] += ai * b[j];
        }
    }
    for (int i = 0; i < m; i++) {
        float *row = c + (size_t)i * ldc;
        for (int j = 0; j < nc; j++) row[j] = beta == 0.0f ? acc[i][j] : acc[i][j] + beta * row[j];
    }
}

#if PGEMM_X86

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define AVX2_FN __attribute__((target("avx2,fma")))
#define AVX512_FN __attribute__((target("avx512f")))

/* Each tile size m is its own instantiation (the switch in *_tile), so the
 * `if (i < m)` below are resolved at compile time and the accumulators are
 * named registers, not an array the compiler might leave in memory. The
 * column index kk of op(A) advances by `step` (1, or lda when transposed)
 * and row i sits `ri` apart (lda, or 1). */
#define REPEAT6(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define REPEAT12(X) REPEAT6(X) X(6) X(7) X(8) X(9) X(10) X(11)

/* ---- AVX2 + FMA: 6 × 16 -------------------------------------------------- */

#define AVX2_MR 6
#define AVX2_NR 16
#define AVX2_KC 256

static const int32_t mask_src[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* lanes 0 .. n−1 of a maskload/maskstore, 0 <= n <= 8 */
ALWAYS_INLINE AVX2_FN __m256i avx2_mask(int n) {
    return _mm256_loadu_si256((const __m256i *)(const void *)(mask_src + 8 - n));
}

/* one row of a tile into C: its first nc (1..16) columns */
ALWAYS_INLINE AVX2_FN void avx2_out(float *c, __m256 lo, __m256 hi, int nc, float beta) {
    const __m256 vb = _mm256_set1_ps(beta);
    if (nc >= AVX2_NR) {
        if (beta != 0.0f) {
            lo = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c), lo);
            hi = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + 8), hi);
        }
        _mm256_storeu_ps(c, lo);
        _mm256_storeu_ps(c + 8, hi);
        return;
    }
    const int n0 = nc < 8 ? nc : 8, n1 = nc - n0;
    const __m256i m0 = avx2_mask(n0);
    if (beta != 0.0f) lo = _mm256_fmadd_ps(vb, _mm256_maskload_ps(c, m0), lo);
    _mm256_maskstore_ps(c, m0, lo);
    if (n1 > 0) {
        const __m256i m1 = avx2_mask(n1);
        if (beta != 0.0f) hi = _mm256_fmadd_ps(vb, _mm256_maskload_ps(c + 8, m1), hi);
        _mm256_maskstore_ps(c + 8, m1, hi);
    }
}

#define AVX2_ZERO(i) __m256 l##i = _mm256_setzero_ps(), h##i = _mm256_setzero_ps();
#define AVX2_FMA(i)                                                                                \
    if (i < m) {                                                                                   \
        const __m256 ai = _mm256_broadcast_ss(ak + (size_t)i * ri);                                \
        l##i = _mm256_fmadd_ps(ai, b0, l##i);                                                      \
        h##i = _mm256_fmadd_ps(ai, b1, h##i);                                                      \
    }
#define AVX2_OUT(i)                                                                                \
    if (i < m) avx2_out(c + (size_t)i * ldc, l##i, h##i, nc, beta);

ALWAYS_INLINE AVX2_FN void avx2_kernel(const int m, const int ta, int kc, const float *a,
                                       size_t lda, const float *b, size_t bs, float *c, size_t ldc,
                                       int nc, float beta) {
    const size_t step = ta ? lda : 1, ri = ta ? 1 : lda;
    REPEAT6(AVX2_ZERO)
    const float *ak = a;
    for (int kk = 0; kk < kc; kk++, ak += step, b += bs) {
        const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        REPEAT6(AVX2_FMA)
    }
    REPEAT6(AVX2_OUT)
}

#define AVX2_CASE(M)                                                                               \
    case M:                                                                                        \
        if (ta)                                                                                    \
            avx2_kernel(M, 1, kc, a, lda, b, bs, c, ldc, nc, beta);                                \
        else                                                                                       \
            avx2_kernel(M, 0, kc, a, lda, b, bs, c, ldc, nc, beta);                                \
        break;

static AVX2_FN void avx2_tile(int m, int ta, int kc, const float *a, size_t lda, const float *b,
                              int nw, size_t bs, float *c, size_t ldc, int nc, float beta) {
    (void)nw; /* always AVX2_NR */
    switch (m) {
        AVX2_CASE(1)
        AVX2_CASE(2)
        AVX2_CASE(3)
        AVX2_CASE(4)
        AVX2_CASE(5)
        AVX2_CASE(6)
    default:
        break;
    }
}

/* ---- AVX-512: 12 × 32 ---------------------------------------------------- */

#define AVX512_MR 12
#define AVX512_NR 32
#define AVX512_KC 192
/* a last panel of up to 16 columns is 16 wide (N = 100 pads to 112, not
 * 128), read by a kernel of one vector per row */
#define AVX512_TAIL 16

ALWAYS_INLINE AVX512_FN void avx512_out(float *c, __m512 lo, __m512 hi, int nc, float beta) {
    const __m512 vb = _mm512_set1_ps(beta);
    if (nc == AVX512_NR) {
        if (beta != 0.0f) {
            lo = _mm512_fmadd_ps(vb, _mm512_loadu_ps(c), lo);
            hi = _mm512_fmadd_ps(vb, _mm512_loadu_ps(c + 16), hi);
        }
        _mm512_storeu_ps(c, lo);
        _mm512_storeu_ps(c + 16, hi);
        return;
    }
    const int n0 = nc < 16 ? nc : 16, n1 = nc - n0;
    const __mmask16 m0 = (__mmask16)((1u << n0) - 1u);
    if (beta != 0.0f) lo = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, c), lo);
    _mm512_mask_storeu_ps(c, m0, lo);
    if (n1 > 0) {
        const __mmask16 m1 = (__mmask16)((1u << n1) - 1u);
        if (beta != 0.0f) hi = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, c + 16), hi);
        _mm512_mask_storeu_ps(c + 16, m1, hi);
    }
}

#define AVX512_ZERO(i) __m512 l##i = _mm512_setzero_ps(), h##i = _mm512_setzero_ps();
#define AVX512_FMA(i)                                                                              \
    if (i < m) {                                                                                   \
        const __m512 ai = _mm512_set1_ps(ak[(size_t)i * ri]);                                      \
        l##i = _mm512_fmadd_ps(ai, b0, l##i);                                                      \
        if (nw == AVX512_NR) h##i = _mm512_fmadd_ps(ai, b1, h##i);                                 \
    }
#define AVX512_OUT(i)                                                                              \
    if (i < m) avx512_out(c + (size_t)i * ldc, l##i, h##i, nc, beta);

/* nw: the panel's width, AVX512_NR or AVX512_TAIL */
ALWAYS_INLINE AVX512_FN void avx512_kernel(const int m, const int ta, const int nw, int kc,
                                           const float *a, size_t lda, const float *b, size_t bs,
                                           float *c, size_t ldc, int nc, float beta) {
    const size_t step = ta ? lda : 1, ri = ta ? 1 : lda;
    REPEAT12(AVX512_ZERO)
    const float *ak = a;
    for (int kk = 0; kk < kc; kk++, ak += step, b += bs) {
        const __m512 b0 = _mm512_loadu_ps(b);
        const __m512 b1 = nw == AVX512_NR ? _mm512_loadu_ps(b + 16) : b0;
        REPEAT12(AVX512_FMA)
    }
    REPEAT12(AVX512_OUT)
}

#define AVX512_CASE(M)                                                                             \
    case M:                                                                                        \
        if (nw == AVX512_NR) {                                                                     \
            if (ta)                                                                                \
                avx512_kernel(M, 1, AVX512_NR, kc, a, lda, b, bs, c, ldc, nc, beta);               \
            else                                                                                   \
                avx512_kernel(M, 0, AVX512_NR, kc, a, lda, b, bs, c, ldc, nc, beta);               \
        } else {                                                                                   \
            if (ta)                                                                                \
                avx512_kernel(M, 1, AVX512_TAIL, kc, a, lda, b, bs, c, ldc, nc, beta);             \
            else                                                                                   \
                avx512_kernel(M, 0, AVX512_TAIL, kc, a, lda, b, bs, c, ldc, nc, beta);             \
        }                                                                                          \
        break;

static AVX512_FN void avx512_tile(int m, int ta, int kc, const float *a, size_t lda, const float *b,
                                  int nw, size_t bs, float *c, size_t ldc, int nc, float beta) {
    switch (m) {
        AVX512_CASE(1)
        AVX512_CASE(2)
        AVX512_CASE(3)
        AVX512_CASE(4)
        AVX512_CASE(5)
        AVX512_CASE(6)
        AVX512_CASE(7)
        AVX512_CASE(8)
        AVX512_CASE(9)
        AVX512_CASE(10)
        AVX512_CASE(11)
        AVX512_CASE(12)
    default:
        break;
    }
}

static const path_info paths[PGEMM_PATH_COUNT] = {
    {C_MR, C_NR, 256, C_NR, c_tile},
    {AVX2_MR, AVX2_NR, AVX2_KC, AVX2_NR, avx2_tile},
    {AVX512_MR, AVX512_NR, AVX512_KC, AVX512_TAIL, avx512_tile},
};

int dcrw_pgemm_path_supported(pgemm_path p) {
    switch (p) {
    case PGEMM_PATH_C:
        return 1;
    case PGEMM_PATH_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case PGEMM_PATH_AVX512:
        return __builtin_cpu_supports("avx512f");
    default:
        return 0;
    }
}

#else /* not x86-64 with GNU C: the portable path alone */

static const path_info paths[PGEMM_PATH_COUNT] = {
    {C_MR, C_NR, 256, C_NR, c_tile},
    {C_MR, C_NR, 256, C_NR, c_tile},
    {C_MR, C_NR, 256, C_NR, c_tile},
};

int dcrw_pgemm_path_supported(pgemm_path p) {
    return p == PGEMM_PATH_C;
}

#endif

pgemm_path dcrw_pgemm_path_best(void) {
    if (dcrw_pgemm_path_supported(PGEMM_PATH_AVX512)) return PGEMM_PATH_AVX512;
    if (dcrw_pgemm_path_supported(PGEMM_PATH_AVX2)) return PGEMM_PATH_AVX2;
    return PGEMM_PATH_C;
}

const char *dcrw_pgemm_path_name(pgemm_path p) {
    static const char *const names[PGEMM_PATH_COUNT] = {"c", "avx2", "avx512"};
    return (unsigned)p < PGEMM_PATH_COUNT ? names[p] : "?";
}

int dcrw_pgemm_panel_width(pgemm_path p) {
    return (unsigned)p < PGEMM_PATH_COUNT ? paths[p].nr : 0;
}

/* Width of the panel at column j0 of an n-column operand: nr, but a last
 * panel of at most `tail` columns is only that wide. Every panel before it
 * is full, so the panel at j0 starts at float j0·k of the packed buffer. */
static int panel_width(const path_info *pi, int n, int j0) {
    const int left = n - j0;
    return left >= pi->nr ? pi->nr : left <= pi->tail ? pi->tail : pi->nr;
}

size_t dcrw_pgemm_pack_floats(pgemm_path p, int k, int n) {
    if ((unsigned)p >= PGEMM_PATH_COUNT || k < 1 || n < 1) return 0;
    const path_info *pi = &paths[p];
    const int last = (n - 1) / pi->nr * pi->nr;
    return ((size_t)last + (size_t)panel_width(pi, n, last)) * (size_t)k;
}

/* one panel of B = Wᵀ: W's rows j0 .. j0+nc become the panel's columns */
static void pack_panel_t(int k, int nw, int nc, const float *w, size_t ldw, float *pan) {
    /* the panel is written in order; the nc rows read side by side stay in L1 */
    for (int kk = 0; kk < k; kk++) {
        float *dst = pan + (size_t)kk * nw;
        for (int c = 0; c < nc; c++) dst[c] = w[(size_t)c * ldw + kk];
        for (int c = nc; c < nw; c++) dst[c] = 0.0f;
    }
}

/* one panel of B = W: columns j0 .. j0+nc of each of W's k rows */
static void pack_panel_n(int k, int nw, int nc, const float *w, size_t ldw, float *pan) {
    for (int kk = 0; kk < k; kk++) {
        float *dst = pan + (size_t)kk * nw;
        memcpy(dst, w + (size_t)kk * ldw, (size_t)nc * sizeof(float));
        memset(dst + nc, 0, (size_t)(nw - nc) * sizeof(float));
    }
}

void dcrw_pgemm_describe(pgemm_b *out, pgemm_path p, int k, int n, const float *buf) {
    out->panels = buf;
    out->k = k;
    out->n = n;
    out->ldb = 0;
    out->path = p;
}

void dcrw_pgemm_pack_part(pgemm_path p, int trans, int k, int n, const float *w, int ldw,
                          float *buf, int part, int parts) {
    if (k < 1 || n < 1 || parts < 1 || part < 0 || part >= parts) return;
    const path_info *pi = &paths[p];
    /* every panel but the last is full (nr wide), so panel i starts at
     * column i·nr: part `part` takes panels [np·part/parts, np·(part+1)/parts) */
    const long np = (n + pi->nr - 1) / pi->nr;
    const int lo = (int)(np * part / parts) * pi->nr, hi = (int)(np * (part + 1) / parts) * pi->nr;
    for (int j0 = lo, nw; j0 < hi && j0 < n; j0 += nw) {
        nw = panel_width(pi, n, j0);
        float *pan = buf + (size_t)j0 * k;
        const int nc = n - j0 < nw ? n - j0 : nw;
        if (trans)
            pack_panel_t(k, nw, nc, w + (size_t)j0 * ldw, (size_t)ldw, pan);
        else
            pack_panel_n(k, nw, nc, w + j0, (size_t)ldw, pan);
    }
}

void dcrw_pgemm_pack(pgemm_b *out, pgemm_path p, int trans, int k, int n, const float *w, int ldw,
                     float *buf) {
    dcrw_pgemm_describe(out, p, k, n, buf);
    dcrw_pgemm_pack_part(p, trans, k, n, w, ldw, buf, 0, 1);
}

void dcrw_pgemm_view(pgemm_b *out, pgemm_path p, int k, int n, const float *w, int ldw) {
    out->panels = w;
    out->k = k;
    out->n = n;
    out->ldb = ldw > 0 ? ldw : 1;
    out->path = p;
}

/* C = beta·C, for k = 0 (beta = 0 writes zeros: C is not read) */
static void scale_rows(int M, int n, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++) {
        float *row = C + (size_t)i * ldc;
        for (int j = 0; j < n; j++) row[j] = beta == 0.0f ? 0.0f : beta * row[j];
    }
}

/* n parts of at most `most` each, as equal as possible: the size of each */
static int part_size(int total, int most) {
    const int parts = (total + most - 1) / most;
    return (total + parts - 1) / parts;
}

/* Rows k0 .. k0+kc of the panel at column j0 of B: where they are, their
 * stride in *bs. A packed panel is read as it is, so is a whole panel of
 * an operand used in place; a partial one is copied into edge with zero
 * columns up to the panel width, since the kernel reads whole panel rows
 * (masked loads instead would cost 8% on every panel on AMD Zen 4). */
static const float *panel_rows(const pgemm_b *B, int j0, int nw, int nc, int k0, int kc,
                               float *edge, size_t *bs) {
    if (!B->ldb) {
        *bs = (size_t)nw;
        return B->panels + (size_t)j0 * B->k + (size_t)k0 * nw;
    }
    const float *rows = B->panels + (size_t)k0 * B->ldb + j0;
    *bs = (size_t)B->ldb;
    if (nc == nw) return rows;
    pack_panel_n(kc, nw, nc, rows, (size_t)B->ldb, edge);
    *bs = (size_t)nw;
    return edge;
}

/* rows i0 .. i0+mc of C for the k block k0 .. k0+kc, every panel */
static void row_block(const path_info *pi, int i0, int mc, int ta, const float *A, size_t lda,
                      const pgemm_b *B, int k0, int kc, float beta, float *C, size_t ldc,
                      float *edge) {
    const int tiles = (mc + pi->mr - 1) / pi->mr;
    const int base = mc / tiles, extra = mc % tiles;
    for (int j0 = 0, nw; j0 < B->n; j0 += nw) {
        nw = panel_width(pi, B->n, j0);
        const int nc = B->n - j0 < nw ? B->n - j0 : nw;
        size_t bs;
        const float *bp = panel_rows(B, j0, nw, nc, k0, kc, edge, &bs);
        int i = i0;
        for (int t = 0; t < tiles; t++) {
            const int m = base + (t < extra);
            const float *ap = ta ? A + (size_t)k0 * lda + i : A + (size_t)i * lda + k0;
            pi->tile(m, ta, kc, ap, lda, bp, nw, bs, C + (size_t)i * ldc + j0, ldc, nc, beta);
            i += m;
        }
    }
}

void dcrw_pgemm(int M, int trans_a, const float *A, int lda, const pgemm_b *B, float beta, float *C,
                int ldc) {
    if (M < 1 || B->n < 1) return;
    if (B->k < 1) {
        scale_rows(M, B->n, beta, C, ldc);
        return;
    }
    const path_info *pi = &paths[B->path];
    const int kcb = part_size(B->k, pi->kc), mcb = part_size(M, MC);
    float edge[EDGE_FLOATS] __attribute__((aligned(64)));
    for (int k0 = 0; k0 < B->k; k0 += kcb) {
        const int kc = B->k - k0 < kcb ? B->k - k0 : kcb;
        /* later k blocks add onto what the first one wrote */
        const float bk = k0 ? 1.0f : beta;
        for (int i0 = 0; i0 < M; i0 += mcb) {
            const int mc = M - i0 < mcb ? M - i0 : mcb;
            row_block(pi, i0, mc, trans_a, A, (size_t)lda, B, k0, kc, bk, C, (size_t)ldc, edge);
        }
    }
}
