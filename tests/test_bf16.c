/* The bfloat16 products: rounding against hand-computed values, products
 * against a float64 reference of the rounded operands, the hardware path
 * against the portable one bit for bit, and nothing written outside C.
 *
 * Error bound: each output sums K products of bf16 values, each exact in
 * float32, with one float32 rounding per sum (plus beta·C), so |y − r| ≤
 * γ_{K+2}·(Σ_k |a_k·b_k| + |beta·c|) with γ_n = n·u/(1 − n·u), u = 2⁻²⁴,
 * r the exact sum of the ROUNDED operands' products. A term dropped,
 * doubled or taken from the wrong k (~1/K of Σ|a·b|) fails it by far; so
 * does an operand left unrounded (its rounding error, up to 2⁻⁹ of a term,
 * is hundreds of times γ for K <= 800). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcrw/dcrw.h"
#include "pgemm_bf16.h"
#include "testutil.h"

#define SENTINEL 12345.0f

START_TEST(test_round_by_hand) {
    const struct {
        float x;
        uint16_t want;
    } cases[] = {
        {1.0f, 0x3f80},
        {-2.0f, 0xc000},
        {0.0f, 0x0000},
        {-0.0f, 0x8000},
        {1.0f + 0x1p-8f, 0x3f80},            /* halfway, ties to the even 1.0 */
        {1.0f + 3 * 0x1p-8f, 0x3f82},        /* halfway between 0x3f81 and 0x3f82: even */
        {1.0f + 0x1p-8f + 0x1p-20f, 0x3f81}, /* just above halfway: up */
        {1.0f + 0x1p-8f - 0x1p-20f, 0x3f80}, /* just below: down */
        {3.0e38f, 0x7f62},                   /* 0x7f61b1e6 rounds up */
        {INFINITY, 0x7f80},
        {-INFINITY, 0xff80},
        {0x1.fffffep127f, 0x7f80}, /* the largest float rounds to infinity */
        {0x1p-130f, 0x0000},       /* subnormal: zero, as the instruction reads it */
        {-0x1p-130f, 0x8000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const uint16_t got = dcrw_bf16_round(cases[i].x);
        ck_assert_msg(got == cases[i].want, "bf16(%a) = 0x%04x, expected 0x%04x", cases[i].x, got,
                      cases[i].want);
    }
    const uint16_t nan = dcrw_bf16_round(NAN);
    ck_assert_msg((nan & 0x7f80) == 0x7f80 && (nan & 0x007f) != 0, "NaN stays NaN: 0x%04x", nan);
    ck_assert(isnan(dcrw_bf16_to_float(nan)));
    ck_assert_float_eq(dcrw_bf16_to_float(0x3f82), 1.015625f);
    ck_assert_float_eq(dcrw_bf16_to_float(0x0001), 0.0f); /* subnormal bf16 reads as 0 */
}
END_TEST

/* One product C = beta·C + bf16(A)·bf16(B), B = Wᵀ (tw) or W, in row
 * strides wider than the matrices: the extra columns of A and W hold NaN
 * (read by mistake, they poison the result), those of C a sentinel. */
typedef struct problem {
    int M, N, K, tw;
    float beta;
    int lda, ldw, ldc;
    float *A, *W, *C0;
    double *ref, *bound;
} problem;

static double rounded(float x) {
    return dcrw_bf16_to_float(dcrw_bf16_round(x));
}

static double w_at(const problem *q, int k, int j) {
    return rounded(q->tw ? q->W[(size_t)j * q->ldw + k] : q->W[(size_t)k * q->ldw + j]);
}

static problem make_problem(int M, int N, int K, int tw, float beta, uint64_t seed) {
    problem q = {M, N, K, tw, beta, K + 3, (tw ? K : N) + 5, N + 7, NULL, NULL, NULL, NULL, NULL};
    const int wrows = tw ? N : K;
    q.A = malloc((size_t)M * q.lda * sizeof(float));
    q.W = malloc((size_t)wrows * q.ldw * sizeof(float));
    q.C0 = malloc((size_t)M * q.ldc * sizeof(float));
    q.ref = malloc((size_t)M * N * sizeof(double));
    q.bound = malloc((size_t)M * N * sizeof(double));
    tu_fill_uniform(q.A, (size_t)M * q.lda, -1.0f, 1.0f, seed);
    tu_fill_uniform(q.W, (size_t)wrows * q.ldw, -1.0f, 1.0f, seed + 1);
    tu_fill_uniform(q.C0, (size_t)M * q.ldc, -1.0f, 1.0f, seed + 2);
    for (int i = 0; i < M; i++)
        for (int c = K; c < q.lda; c++) q.A[(size_t)i * q.lda + c] = NAN;
    for (int r = 0; r < wrows; r++)
        for (int c = tw ? K : N; c < q.ldw; c++) q.W[(size_t)r * q.ldw + c] = NAN;
    for (int i = 0; i < M; i++)
        for (int c = N; c < q.ldc; c++) q.C0[(size_t)i * q.ldc + c] = SENTINEL;
    const double u = ldexp(1.0, -24), n = K + 2.0, gamma = n * u / (1.0 - n * u);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0, sa = 0;
            if (beta != 0.0f) {
                s = (double)beta * q.C0[(size_t)i * q.ldc + j];
                sa = fabs(s);
            }
            for (int k = 0; k < K; k++) {
                const double p = rounded(q.A[(size_t)i * q.lda + k]) * w_at(&q, k, j);
                s += p;
                sa += fabs(p);
            }
            q.ref[(size_t)i * N + j] = s;
            q.bound[(size_t)i * N + j] = gamma * sa + 1e-35;
        }
    return q;
}

static void free_problem(problem *q) {
    free(q->A);
    free(q->W);
    free(q->C0);
    free(q->ref);
    free(q->bound);
}

/* The product of q on the current path into a fresh C (NaN in it when
 * beta = 0, which must not propagate), checked against the reference and
 * for the sentinels; the packed operand is built in `parts` parts. Returns
 * C (malloc'ed). */
static float *run_problem(const problem *q, int parts, const char *what) {
    const size_t words = dcrw_bf16_pack_words(q->K, q->N);
    uint32_t *buf = aligned_alloc(64, (words * sizeof(uint32_t) + 63) / 64 * 64);
    for (int part = 0; part < parts; part++)
        dcrw_bf16_pack_part(q->tw, q->K, q->N, q->W, q->ldw, buf, part, parts);
    bf16_b B;
    dcrw_bf16_describe(&B, q->K, q->N, buf);
    float *C = malloc((size_t)q->M * q->ldc * sizeof(float));
    memcpy(C, q->C0, (size_t)q->M * q->ldc * sizeof(float));
    if (q->beta == 0.0f)
        for (int i = 0; i < q->M; i++)
            for (int j = 0; j < q->N; j++) C[(size_t)i * q->ldc + j] = NAN;
    dcrw_bf16_gemm(q->M, q->A, q->lda, &B, q->beta, C, q->ldc);
    for (int i = 0; i < q->M; i++) {
        for (int j = 0; j < q->N; j++) {
            const double got = C[(size_t)i * q->ldc + j], r = q->ref[(size_t)i * q->N + j];
            ck_assert_msg(fabs(got - r) <= q->bound[(size_t)i * q->N + j],
                          "%s M=%d N=%d K=%d tw=%d beta=%g: C[%d][%d] = %.9g, reference %.9g "
                          "(bound %.3g)",
                          what, q->M, q->N, q->K, q->tw, (double)q->beta, i, j, got, r,
                          q->bound[(size_t)i * q->N + j]);
        }
        for (int c = q->N; c < q->ldc; c++)
            ck_assert_msg(C[(size_t)i * q->ldc + c] == SENTINEL, "%s: C[%d][%d] overwritten", what,
                          i, c);
    }
    free(buf);
    return C;
}

/* The model's products (M = 1 .. 100 rows of a chunk, K and N of the
 * presets: 256, 100, 25, 5, 1024, 49, 784 ...), odd K, K past a block,
 * N past a panel and below one. */
static const int shapes[][3] = {
    {1, 1, 1},       {1, 32, 2},     {2, 31, 3},     {12, 32, 192},    {13, 33, 193},
    {50, 1024, 100}, {50, 100, 256}, {100, 25, 256}, {50, 5, 256},     {7, 64, 385},
    {24, 1024, 256}, {50, 256, 49},  {3, 784, 2},    {100, 1024, 612}, {97, 47, 801},
};
#define NSHAPES (int)(sizeof shapes / sizeof shapes[0])

START_TEST(test_products) {
    const int M = shapes[_i][0], N = shapes[_i][1], K = shapes[_i][2];
    const int had = dcrw_bf16_use_hardware(1);
    for (int tw = 0; tw < 2; tw++)
        for (int b = 0; b < 2; b++) {
            problem q = make_problem(M, N, K, tw, b ? 1.0f : 0.0f, 100 + 7 * (uint64_t)_i);
            dcrw_bf16_use_hardware(0);
            float *c_path = run_problem(&q, 1 + (_i % 3), "portable");
            if (dcrw_bf16_hardware()) {
                dcrw_bf16_use_hardware(1);
                float *hw = run_problem(&q, 1, "AVX-512 BF16");
                /* the same roundings in the same order: the same bits */
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < N; j++) {
                        const size_t at = (size_t)i * q.ldc + j;
                        ck_assert_msg(memcmp(&hw[at], &c_path[at], sizeof(float)) == 0,
                                      "M=%d N=%d K=%d tw=%d: C[%d][%d] is %a in hardware, %a "
                                      "portable",
                                      M, N, K, tw, i, j, hw[at], c_path[at]);
                    }
                free(hw);
            } else if (_i == 0 && tw == 0 && b == 0) {
                printf("no AVX-512 BF16 on this CPU: the portable path alone was checked\n");
            }
            free(c_path);
            free_problem(&q);
        }
    dcrw_bf16_use_hardware(had);
}
END_TEST

/* The packed panels do not depend on how many parts packed them. */
START_TEST(test_pack_parts) {
    const int K = 77, N = 200;
    float *w = malloc((size_t)N * K * sizeof(float));
    tu_fill_uniform(w, (size_t)N * K, -3.0f, 3.0f, 5);
    const size_t words = dcrw_bf16_pack_words(K, N);
    ck_assert_uint_eq(words, (size_t)7 * 32 * 39);
    ck_assert_uint_eq(dcrw_bf16_pack_words(0, N), 0);
    uint32_t *one = aligned_alloc(64, words * 4), *many = aligned_alloc(64, words * 4);
    dcrw_bf16_pack_part(1, K, N, w, K, one, 0, 1);
    for (int parts = 2; parts <= 9; parts++) {
        memset(many, 0xa5, words * 4);
        for (int p = 0; p < parts; p++) dcrw_bf16_pack_part(1, K, N, w, K, many, p, parts);
        ck_assert_msg(memcmp(one, many, words * 4) == 0, "%d parts pack differently", parts);
    }
    /* word j of pair row p: B[2p][j] low, B[2p+1][j] high; 0 past K and N */
    ck_assert_uint_eq(one[0] & 0xffff, dcrw_bf16_round(w[0]));
    ck_assert_uint_eq(one[0] >> 16, dcrw_bf16_round(w[1]));
    ck_assert_uint_eq(one[32 + 3] & 0xffff, dcrw_bf16_round(w[3 * K + 2]));
    ck_assert_uint_eq(one[(size_t)38 * 32] >> 16, 0);   /* K = 77 is odd */
    ck_assert_uint_eq(one[(size_t)6 * 32 * 39 + 8], 0); /* column 200 of 7 panels */
    /* B = W (K×N, the backward's): the same words from rows 2p and 2p + 1,
     * whichever conversion made them and in however many parts */
    const int had = dcrw_bf16_use_hardware(0);
    dcrw_bf16_pack_part(0, K, N, w, N, one, 0, 1);
    for (int hw = 0; hw < 2; hw++) {
        dcrw_bf16_use_hardware(hw);
        for (int parts = 1; parts <= 4; parts++) {
            memset(many, 0xa5, words * 4);
            for (int p = 0; p < parts; p++) dcrw_bf16_pack_part(0, K, N, w, N, many, p, parts);
            ck_assert_msg(memcmp(one, many, words * 4) == 0, "B = W: %d parts, hardware %d", parts,
                          hw);
        }
    }
    dcrw_bf16_use_hardware(had);
    for (int p = 0; p < 39; p++)
        for (int j = 0; j < 224; j++) {
            const uint32_t word =
                one[(size_t)(j / 32) * 32 * 39 + (size_t)p * 32 + (size_t)(j % 32)];
            const uint32_t lo = j < N ? dcrw_bf16_round(w[(size_t)(2 * p) * N + j]) : 0;
            const uint32_t hi =
                j < N && 2 * p + 1 < K ? dcrw_bf16_round(w[(size_t)(2 * p + 1) * N + j]) : 0;
            ck_assert_msg(word == (lo | hi << 16), "B = W: pair row %d column %d", p, j);
        }
    free(w);
    free(one);
    free(many);
}
END_TEST

/* C = beta·C + bf16(A)ᵀ·bf16(B) of the weight gradients (A [K×M], B [K×N],
 * read in place): against the float64 reference, the hardware path against
 * the portable one, and both against dcrw_bf16_gemm of the transposed A,
 * which the header says sums the same way. Strides wider than the matrices
 * hold NaN (A, B) and a sentinel (C). */
static const int tn_shapes[][3] = {
    {1, 1, 1},       {3, 5, 2},      {12, 32, 192}, {13, 33, 193},  {64, 100, 400},
    {100, 264, 385}, {97, 330, 200}, {130, 641, 7}, {1024, 40, 96},
};
#define NTN (int)(sizeof tn_shapes / sizeof tn_shapes[0])

static float *run_tn(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                     float beta, const float *C0, int ldc) {
    float *C = malloc((size_t)M * ldc * sizeof(float));
    memcpy(C, C0, (size_t)M * ldc * sizeof(float));
    if (beta == 0.0f)
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = NAN;
    uint32_t *work = aligned_alloc(64, dcrw_bf16_tn_words() * 4);
    dcrw_bf16_gemm_tn(M, N, K, A, lda, B, ldb, beta, C, ldc, work);
    free(work);
    return C;
}

START_TEST(test_products_tn) {
    const int M = tn_shapes[_i][0], N = tn_shapes[_i][1], K = tn_shapes[_i][2];
    const int lda = M + 3, ldb = N + 5, ldc = N + 7;
    float *A = malloc((size_t)K * lda * sizeof(float)),
          *B = malloc((size_t)K * ldb * sizeof(float));
    float *At = malloc((size_t)M * K * sizeof(float)),
          *C0 = malloc((size_t)M * ldc * sizeof(float));
    tu_fill_uniform(A, (size_t)K * lda, -1.0f, 1.0f, 300 + (uint64_t)_i);
    tu_fill_uniform(B, (size_t)K * ldb, -1.0f, 1.0f, 400 + (uint64_t)_i);
    tu_fill_uniform(C0, (size_t)M * ldc, -1.0f, 1.0f, 500 + (uint64_t)_i);
    for (int k = 0; k < K; k++) {
        for (int c = M; c < lda; c++) A[(size_t)k * lda + c] = NAN;
        for (int c = N; c < ldb; c++) B[(size_t)k * ldb + c] = NAN;
        for (int i = 0; i < M; i++) At[(size_t)i * K + k] = A[(size_t)k * lda + i];
    }
    for (int i = 0; i < M; i++)
        for (int c = N; c < ldc; c++) C0[(size_t)i * ldc + c] = SENTINEL;
    const size_t words = dcrw_bf16_pack_words(K, N);
    uint32_t *packed = aligned_alloc(64, (words * 4 + 63) / 64 * 64);
    const int had = dcrw_bf16_use_hardware(1);
    const double u = ldexp(1.0, -24), n = K + 2.0, gamma = n * u / (1.0 - n * u);
    for (int b = 0; b < 2; b++) {
        const float beta = b ? 1.0f : 0.0f;
        dcrw_bf16_use_hardware(0);
        float *c_path = run_tn(M, N, K, A, lda, B, ldb, beta, C0, ldc);
        for (int i = 0; i < M; i++) {
            for (int j = 0; j < N; j++) {
                double r = beta != 0.0f ? (double)C0[(size_t)i * ldc + j] : 0.0, sa = fabs(r);
                for (int k = 0; k < K; k++) {
                    const double p =
                        rounded(A[(size_t)k * lda + i]) * rounded(B[(size_t)k * ldb + j]);
                    r += p;
                    sa += fabs(p);
                }
                const double got = c_path[(size_t)i * ldc + j];
                ck_assert_msg(fabs(got - r) <= gamma * sa + 1e-35,
                              "tn M=%d N=%d K=%d beta=%g: C[%d][%d] = %.9g, reference %.9g", M, N,
                              K, (double)beta, i, j, got, r);
            }
            for (int c = N; c < ldc; c++)
                ck_assert_msg(c_path[(size_t)i * ldc + c] == SENTINEL, "tn: C[%d][%d] overwritten",
                              i, c);
        }
        /* the same sums as the product of Aᵀ by B packed as B = W */
        dcrw_bf16_pack_part(0, K, N, B, ldb, packed, 0, 1);
        bf16_b Bp;
        dcrw_bf16_describe(&Bp, K, N, packed);
        float *nt = malloc((size_t)M * ldc * sizeof(float));
        memcpy(nt, C0, (size_t)M * ldc * sizeof(float));
        dcrw_bf16_gemm(M, At, K, &Bp, beta, nt, ldc);
        ck_assert_msg(memcmp(nt, c_path, (size_t)M * ldc * sizeof(float)) == 0,
                      "tn M=%d N=%d K=%d: not the bits of dcrw_bf16_gemm of Aᵀ", M, N, K);
        if (dcrw_bf16_hardware()) {
            dcrw_bf16_use_hardware(1);
            float *hw = run_tn(M, N, K, A, lda, B, ldb, beta, C0, ldc);
            ck_assert_msg(memcmp(hw, c_path, (size_t)M * ldc * sizeof(float)) == 0,
                          "tn M=%d N=%d K=%d beta=%g: hardware and portable bits differ", M, N, K,
                          (double)beta);
            free(hw);
        }
        free(nt);
        free(c_path);
    }
    dcrw_bf16_use_hardware(had);
    free(packed);
    free(A);
    free(B);
    free(At);
    free(C0);
}
END_TEST

/* ---- a model of bfloat16 precision ---------------------------------------- */

static dcrw_config medium(int i) {
    static const dcrw_preset presets[4] = {DCRW_PRESET_DRAW, DCRW_PRESET_DRAW_NOATTN,
                                           DCRW_PRESET_DCRW, DCRW_PRESET_DCRW_NOREAD};
    dcrw_config c = {.size = sizeof c};
    dcrw_config_preset(&c, presets[i]);
    c.height = c.width = 16;
    c.glimpses = 4;
    c.dec_size = 96;
    c.z_size = 16;
    if (c.enc_size) c.enc_size = 80;
    if (c.read_n) c.read_n = i == 2 ? 6 : 3;
    if (c.write_n) c.write_n = 4;
    if (c.conv1) c.conv1 = 8, c.conv2 = 16;
    return c;
}

static double norm_of(const float *v, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)v[i] * v[i];
    return sqrt(s);
}

/* The gradients of a batch in float32 and in bf16 (labels for a model that
 * takes them): each parameter's close in direction (cosine > 0.99) and
 * size (within 5%), and not all equal (the bf16 products were taken).
 * Leaves the model in float32. */
static void grads_close(dcrw_model *m, dcrw_trainer *t, int B, const float *x,
                        const int32_t *labels, int config) {
    const size_t n = dcrw_model_param_floats(m);
    float *g[2];
    for (int prec = 0; prec < 2; prec++) {
        ck_assert_int_eq(dcrw_model_set_precision(m, prec), DCRW_OK);
        if (labels)
            ck_assert_int_eq(dcrw_trainer_backward_labels(t, B, x, labels, NULL, NULL), DCRW_OK);
        else
            ck_assert_int_eq(dcrw_trainer_backward(t, B, x, NULL, NULL), DCRW_OK);
        g[prec] = malloc(n * sizeof(float));
        memcpy(g[prec], dcrw_trainer_grads(t, NULL), n * sizeof(float));
    }
    ck_assert_int_eq(dcrw_model_set_precision(m, DCRW_PRECISION_FLOAT32), DCRW_OK);
    ck_assert_msg(memcmp(g[0], g[1], n * sizeof(float)) != 0, "config %d: bf16 changed nothing",
                  config);
    for (size_t i = 0; i < dcrw_model_param_count(m); i++) {
        const char *name;
        float *p;
        size_t cnt;
        ck_assert_int_eq(dcrw_model_param(m, i, &name, NULL, NULL, &p), DCRW_OK);
        dcrw_model_find_param(m, name, &p, &cnt);
        const size_t at = (size_t)(p - dcrw_model_params(m, NULL));
        double dot = 0, n32 = norm_of(g[0] + at, cnt), n16 = norm_of(g[1] + at, cnt);
        for (size_t k = 0; k < cnt; k++) dot += (double)g[0][at + k] * g[1][at + k];
        if (n32 == 0) continue;
        ck_assert_msg(dot / (n32 * n16) > 0.99 && fabs(n16 / n32 - 1) < 0.05,
                      "config %d %s: cosine %.4f, norm ratio %.4f", config, name, dot / (n32 * n16),
                      n16 / n32);
    }
    free(g[0]);
    free(g[1]);
}

/* bf16 products move the loss and the gradients by their roundings (a few
 * parts in a thousand), deterministically, the same whatever the batch an
 * image is in; float32 again gives float32's numbers bit for bit. */
START_TEST(test_model_bf16) {
    dcrw_config c = medium(_i);
    dcrw_model *m;
    ck_assert_int_eq(dcrw_model_create(&m, &c, 7), DCRW_OK);
    ck_assert_int_eq(dcrw_model_precision(m), DCRW_PRECISION_FLOAT32);
    ck_assert_int_eq(dcrw_precision_supported(DCRW_PRECISION_FLOAT32), 1);
    ck_assert_int_eq(dcrw_precision_supported(DCRW_PRECISION_BF16), dcrw_bf16_hardware());
    ck_assert_int_eq(dcrw_precision_supported(-1), 0);
    ck_assert_int_eq(dcrw_precision_supported(2), 0);
    if (!dcrw_bf16_hardware()) {
        ck_assert_int_eq(dcrw_model_set_precision(m, DCRW_PRECISION_BF16), DCRW_EUNSUPPORTED);
        ck_assert_int_eq(dcrw_model_precision(m), DCRW_PRECISION_FLOAT32);
        printf("no AVX-512 BF16 on this CPU: a bf16 model is refused, as documented\n");
        dcrw_model_destroy(m);
        return;
    }
    const int B = 24, P = (int)dcrw_model_input_size(m);
    float *x = malloc((size_t)B * P * sizeof(float));
    tu_fill_uniform(x, (size_t)B * P, 0.0f, 1.0f, 31);
    double lx[2][24], lz[2][24], lx_parts[24], lz_parts[24];
    for (int prec = 0; prec < 2; prec++) {
        ck_assert_int_eq(dcrw_model_set_precision(m, prec), DCRW_OK);
        ck_assert_int_eq(dcrw_model_precision(m), prec);
        ck_assert_int_eq(dcrw_evaluate_images_part(m, B, x, 5, 0, lx[prec], lz[prec]), DCRW_OK);
    }
    /* in parts of 5, 7, 12 images: the same bits as in one batch */
    ck_assert_int_eq(dcrw_evaluate_images_part(m, 5, x, 5, 0, lx_parts, lz_parts), DCRW_OK);
    ck_assert_int_eq(
        dcrw_evaluate_images_part(m, 7, x + (size_t)5 * P, 5, 5, lx_parts + 5, lz_parts + 5),
        DCRW_OK);
    ck_assert_int_eq(
        dcrw_evaluate_images_part(m, 12, x + (size_t)12 * P, 5, 12, lx_parts + 12, lz_parts + 12),
        DCRW_OK);
    ck_assert(memcmp(lx_parts, lx[1], sizeof lx_parts) == 0);
    ck_assert(memcmp(lz_parts, lz[1], sizeof lz_parts) == 0);
    int moved = 0;
    for (int b = 0; b < B; b++) {
        const double l32 = lx[0][b] + lz[0][b], l16 = lx[1][b] + lz[1][b];
        ck_assert_msg(fabs(l16 - l32) <= 1e-2 * fabs(l32), "config %d image %d: %g in bf16, %g", _i,
                      b, l16, l32);
        moved += l16 != l32;
    }
    ck_assert_msg(moved > B / 2, "config %d: bf16 changed only %d of %d losses", _i, moved, B);
    /* the gradients: close in direction and size */
    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    dcrw_trainer *t;
    ck_assert_int_eq(dcrw_trainer_create(&t, m, &tc), DCRW_OK);
    grads_close(m, t, B, x, NULL, _i);
    /* back to float32: float32's numbers exactly */
    double again_x[24], again_z[24];
    ck_assert_int_eq(dcrw_model_set_precision(m, DCRW_PRECISION_FLOAT32), DCRW_OK);
    ck_assert_int_eq(dcrw_evaluate_images_part(m, B, x, 5, 0, again_x, again_z), DCRW_OK);
    ck_assert(memcmp(again_x, lx[0], sizeof again_x) == 0);
    ck_assert(memcmp(again_z, lz[0], sizeof again_z) == 0);
    ck_assert_int_eq(dcrw_model_set_precision(m, 2), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_model_set_precision(NULL, DCRW_PRECISION_FLOAT32), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_model_precision(NULL), DCRW_PRECISION_FLOAT32);
    ck_assert_int_eq(dcrw_model_precision(m), DCRW_PRECISION_FLOAT32);
    free(x);
    dcrw_trainer_destroy(t);
    dcrw_model_destroy(m);
}
END_TEST

/* The classifier's weight gradients (its encoder LSTM's, 4E = 320 outputs,
 * are bf16 products) as close to float32's as the generative models'. */
START_TEST(test_classifier_bf16) {
    if (!dcrw_bf16_hardware()) return;
    dcrw_config c = {.size = sizeof c};
    dcrw_config_preset(&c, DCRW_PRESET_DRAW_CLASSIFY);
    c.height = c.width = 20;
    c.glimpses = 4;
    c.enc_size = 80;
    c.read_n = 5;
    dcrw_model *m;
    ck_assert_int_eq(dcrw_model_create(&m, &c, 11), DCRW_OK);
    const int B = 24, P = (int)dcrw_model_input_size(m);
    float *x = malloc((size_t)B * P * sizeof(float));
    tu_fill_uniform(x, (size_t)B * P, 0.0f, 1.0f, 41);
    int32_t labels[24];
    for (int b = 0; b < B; b++) labels[b] = (b * 7 + 3) % (int)c.classes;
    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    dcrw_trainer *t;
    ck_assert_int_eq(dcrw_trainer_create(&t, m, &tc), DCRW_OK);
    grads_close(m, t, B, x, labels, 4);
    free(x);
    dcrw_trainer_destroy(t);
    dcrw_model_destroy(m);
}
END_TEST

int main(void) {
    Suite *s = suite_create("bf16");
    TCase *tc = tcase_create("bf16");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_round_by_hand);
    tcase_add_loop_test(tc, test_products, 0, NSHAPES);
    tcase_add_test(tc, test_pack_parts);
    tcase_add_loop_test(tc, test_products_tn, 0, NTN);
    tcase_add_loop_test(tc, test_model_bf16, 0, 4);
    tcase_add_test(tc, test_classifier_bf16);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
