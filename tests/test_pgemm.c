/* The packed-weight GEMM against a float64 reference, on every dispatch path
 * this CPU supports.
 *
 * Error bound: each output is a float32 sum of K products accumulated in
 * order with fused multiply-adds (plus beta·C), so by the standard analysis
 * (Higham, §3.1) |y − r| ≤ γ_{K+2}·(Σ_k |a_k·b_k| + |beta·c|) with
 * γ_n = n·u/(1 − n·u), u = 2⁻²⁴, r the exact value (here in float64, whose
 * own error is 2⁻²⁹ times smaller). The bound is per element, so a wrong,
 * missing or doubled term (of size ~|a_k·b_k|, about 1/K of Σ|a·b| and
 * thousands of times the bound for K ≤ 3136) fails it. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "gemm.h"
#include "pgemm.h"
#include "testutil.h"

#define SENTINEL 12345.0f

static int skip_unsupported(pgemm_path p) {
    if (dcrw_pgemm_path_supported(p)) return 0;
    printf("path %s: not supported on this CPU, skipped\n", dcrw_pgemm_path_name(p));
    return 1;
}

/* One product and its operands, stored with row strides wider than the
 * matrices: the extra columns of A and W hold NaN (read by mistake, they
 * would poison the result), those of C a sentinel that must survive. */
typedef struct problem {
    int M, N, K, ta, tw;
    float beta;
    int lda, ldw, ldc;
    float *A, *W, *C0, *C;
    double *ref, *bound;
} problem;

/* rows × cols values, pad in the columns up to ld but for the last row's */
static void fill_padded(float *x, int rows, int cols, int ld, float lo, float hi, float pad,
                        uint64_t seed) {
    if (rows < 1) return;
    tu_fill_uniform(x, (size_t)(rows - 1) * ld + cols, lo, hi, seed);
    for (int r = 0; r + 1 < rows; r++)
        for (int c = cols; c < ld; c++) x[(size_t)r * ld + c] = pad;
}

static double a_at(const problem *q, int i, int k) {
    return q->ta ? q->A[(size_t)k * q->lda + i] : q->A[(size_t)i * q->lda + k];
}

static double w_at(const problem *q, int k, int j) {
    return q->tw ? q->W[(size_t)j * q->ldw + k] : q->W[(size_t)k * q->ldw + j];
}

static void reference(problem *q) {
    const double u = ldexp(1.0, -24), n = q->K + 2.0, gamma = n * u / (1.0 - n * u);
    for (int i = 0; i < q->M; i++)
        for (int j = 0; j < q->N; j++) {
            double s = 0, sa = 0;
            if (q->beta != 0.0f) {
                s = (double)q->beta * q->C0[(size_t)i * q->ldc + j];
                sa = fabs(s);
            }
            for (int k = 0; k < q->K; k++) {
                const double p = a_at(q, i, k) * w_at(q, k, j);
                s += p;
                sa += fabs(p);
            }
            q->ref[(size_t)i * q->N + j] = s;
            q->bound[(size_t)i * q->N + j] = gamma * sa + 1e-35;
        }
}

static problem make_problem(int M, int N, int K, int ta, int tw, float beta, uint64_t seed) {
    problem q = {M, N, K, ta, tw, beta, 0, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL};
    const int arows = ta ? K : M, acols = ta ? M : K, wrows = tw ? N : K, wcols = tw ? K : N;
    q.lda = acols + 3;
    q.ldw = wcols + 5;
    q.ldc = N + 2;
    /* the last rows end at their last column, so that a read past the
     * matrix is one past the allocation (caught under AddressSanitizer);
     * one float at least, so that K = 0 still has valid pointers */
    q.A = malloc(sizeof(float) * (arows ? (size_t)(arows - 1) * q.lda + acols : 1));
    q.W = malloc(sizeof(float) * (wrows ? (size_t)(wrows - 1) * q.ldw + wcols : 1));
    q.C0 = malloc(sizeof(float) * (size_t)M * q.ldc);
    q.C = malloc(sizeof(float) * (size_t)M * q.ldc);
    q.ref = malloc(sizeof(double) * (size_t)M * N);
    q.bound = malloc(sizeof(double) * (size_t)M * N);
    fill_padded(q.A, arows, acols, q.lda, -1.0f, 1.0f, NAN, seed);
    fill_padded(q.W, wrows, wcols, q.ldw, -0.5f, 0.5f, NAN, seed + 1);
    /* with beta = 0, C must not be read: NaN in it must not show */
    fill_padded(q.C0, M, N, q.ldc, -2.0f, 2.0f, SENTINEL, seed + 2);
    for (int j = N; j < q.ldc; j++) q.C0[(size_t)(M - 1) * q.ldc + j] = SENTINEL;
    if (beta == 0.0f)
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) q.C0[(size_t)i * q.ldc + j] = NAN;
    reference(&q);
    return q;
}

static void free_problem(problem *q) {
    free(q->A), free(q->W), free(q->C0), free(q->C), free(q->ref), free(q->bound);
}

/* run q on path p with W packed (view = 0) or read in place (view = 1,
 * for tw = 0 only), and hold the result to the bound */
static void check_problem_as(const problem *q, pgemm_path p, int view) {
    const size_t nf = view ? 0 : dcrw_pgemm_pack_floats(p, q->K, q->N);
    float *buf = nf ? dcrw_alloc(nf * sizeof(float)) : NULL;
    ck_assert(nf == 0 || buf != NULL);
    ck_assert_uint_eq((uintptr_t)buf % 64, 0);
    pgemm_b b;
    if (view)
        dcrw_pgemm_view(&b, p, q->K, q->N, q->W, q->ldw);
    else
        dcrw_pgemm_pack(&b, p, q->tw, q->K, q->N, q->W, q->ldw, buf);
    memcpy(q->C, q->C0, sizeof(float) * (size_t)q->M * q->ldc);
    dcrw_pgemm(q->M, q->ta, q->A, q->lda, &b, q->beta, q->C, q->ldc);
    /* ck_assert on every element would cost a system call each (Check
     * records each passed assertion): look first, assert on the outcome */
    for (int i = 0; i < q->M; i++) {
        for (int j = 0; j < q->N; j++) {
            const double y = q->C[(size_t)i * q->ldc + j], r = q->ref[(size_t)i * q->N + j];
            const double bnd = q->bound[(size_t)i * q->N + j];
            if (!(fabs(y - r) <= bnd))
                ck_abort_msg("%s%s M=%d N=%d K=%d ta=%d tw=%d beta=%g: C[%d][%d] = %.9g, ref "
                             "%.9g, bound %.3g",
                             dcrw_pgemm_path_name(p), view ? " (view)" : "", q->M, q->N, q->K,
                             q->ta, q->tw, q->beta, i, j, y, r, bnd);
        }
        for (int j = q->N; j < q->ldc; j++)
            if (q->C[(size_t)i * q->ldc + j] != SENTINEL)
                ck_abort_msg("%s M=%d N=%d K=%d: wrote past column %d of row %d",
                             dcrw_pgemm_path_name(p), q->M, q->N, q->K, q->N, i);
    }
    dcrw_free(buf);
}

static void check_problem(const problem *q, pgemm_path p) {
    check_problem_as(q, p, 0);
    if (!q->tw) check_problem_as(q, p, 1);
}

/* the same problem on every path this CPU has (one reference for all) */
static void check_all_paths(const problem *q) {
    for (int p = 0; p < PGEMM_PATH_COUNT; p++)
        if (dcrw_pgemm_path_supported(p)) check_problem(q, p);
}

static void check_shape(int M, int N, int K, uint64_t seed) {
    static const float betas[] = {0.0f, 1.0f, 0.5f};
    for (int ta = 0; ta < 2; ta++)
        for (int tw = 0; tw < 2; tw++)
            for (int bi = 0; bi < 3; bi++) {
                /* the transposed uses only need the common betas */
                if ((ta || !tw) && bi == 2) continue;
                problem q = make_problem(M, N, K, ta, tw, betas[bi], seed + 10 * bi + 3 * ta + tw);
                check_all_paths(&q);
                free_problem(&q);
            }
}

START_TEST(test_paths) {
    ck_assert(dcrw_pgemm_path_supported(PGEMM_PATH_C));
    ck_assert(dcrw_pgemm_path_supported(dcrw_pgemm_path_best()));
    ck_assert(!dcrw_pgemm_path_supported(PGEMM_PATH_COUNT));
    ck_assert_str_eq(dcrw_pgemm_path_name(PGEMM_PATH_C), "c");
    ck_assert_str_eq(dcrw_pgemm_path_name(PGEMM_PATH_AVX2), "avx2");
    ck_assert_str_eq(dcrw_pgemm_path_name(PGEMM_PATH_AVX512), "avx512");
    ck_assert_str_eq(dcrw_pgemm_path_name(PGEMM_PATH_COUNT), "?");
    /* the best path is the widest the CPU has */
    if (dcrw_pgemm_path_supported(PGEMM_PATH_AVX512))
        ck_assert_int_eq(dcrw_pgemm_path_best(), PGEMM_PATH_AVX512);
    else if (dcrw_pgemm_path_supported(PGEMM_PATH_AVX2))
        ck_assert_int_eq(dcrw_pgemm_path_best(), PGEMM_PATH_AVX2);
    printf("best path on this CPU: %s\n", dcrw_pgemm_path_name(dcrw_pgemm_path_best()));
}
END_TEST

/* sizes: whole panels, a narrower last panel, nothing for empty operands */
START_TEST(test_pack_sizes) {
    for (int p = 0; p < PGEMM_PATH_COUNT; p++) {
        const int nr = dcrw_pgemm_panel_width(p);
        ck_assert(nr == 16 || nr == 32);
        ck_assert_uint_eq(dcrw_pgemm_pack_floats(p, 7, nr), (size_t)7 * nr);
        ck_assert_uint_eq(dcrw_pgemm_pack_floats(p, 7, 2 * nr), (size_t)14 * nr);
        ck_assert_uint_eq(dcrw_pgemm_pack_floats(p, 3, 1), 3 * 16);
        ck_assert_uint_eq(dcrw_pgemm_pack_floats(p, 3, 100), 3 * 112);
        ck_assert_uint_eq(dcrw_pgemm_pack_floats(p, 1, 1024), 1024);
        ck_assert_uint_eq(dcrw_pgemm_pack_floats(p, 0, 5), 0);
        ck_assert_uint_eq(dcrw_pgemm_pack_floats(p, 5, 0), 0);
    }
    ck_assert_uint_eq(dcrw_pgemm_pack_floats(PGEMM_PATH_AVX512, 2, 17), 2 * 32);
    ck_assert_uint_eq(dcrw_pgemm_pack_floats(PGEMM_PATH_AVX512, 2, 33), 2 * 48);
    ck_assert_uint_eq(dcrw_pgemm_pack_floats(PGEMM_PATH_AVX2, 2, 17), 2 * 32);
    ck_assert_uint_eq(dcrw_pgemm_pack_floats(PGEMM_PATH_COUNT, 2, 2), 0);
}
END_TEST

/* every float of the packed buffer is written: padding is zero, nothing of
 * an earlier content (NaN here) is left for the kernel to read */
START_TEST(test_pack_writes_everything) {
    const pgemm_path p = (pgemm_path)_i;
    if (skip_unsupported(p)) return;
    const int shapes[][2] = {{1, 1}, {5, 17}, {9, 100}, {3, 33}, {4, 64}, {2, 47}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int k = shapes[s][0], n = shapes[s][1];
        for (int trans = 0; trans < 2; trans++) {
            float *w = malloc(sizeof(float) * (size_t)k * n);
            for (int i = 0; i < k * n; i++) w[i] = 1.0f + (float)i;
            const size_t nf = dcrw_pgemm_pack_floats(p, k, n);
            float *buf = dcrw_alloc(nf * sizeof(float));
            for (size_t i = 0; i < nf; i++) buf[i] = NAN;
            pgemm_b b;
            dcrw_pgemm_pack(&b, p, trans, k, n, w, trans ? k : n, buf);
            ck_assert_ptr_eq(b.panels, buf);
            ck_assert_int_eq(b.k, k);
            ck_assert_int_eq(b.n, n);
            ck_assert_int_eq(b.path, p);
            size_t nonzero = 0;
            for (size_t i = 0; i < nf; i++) {
                if (isnan(buf[i]))
                    ck_abort_msg("%s k=%d n=%d: float %zu not written", dcrw_pgemm_path_name(p), k,
                                 n, i);
                nonzero += buf[i] != 0.0f;
            }
            /* each value of W once, the rest padding */
            ck_assert_uint_eq(nonzero, (size_t)k * n);
            dcrw_free(buf);
            free(w);
        }
    }
}
END_TEST

/* every tile height (1..12 and past the row block), narrow and partial
 * panels, k from 1 to past the k block */
START_TEST(test_shapes) {
    static const int shapes[][3] = {
        {1, 1, 1},      {1, 16, 1},     {2, 17, 3},     {3, 31, 5},     {4, 32, 8},
        {5, 33, 2},     {6, 15, 7},     {7, 48, 16},    {8, 49, 17},    {9, 63, 31},
        {10, 64, 32},   {11, 65, 33},   {12, 5, 100},   {13, 7, 129},   {14, 96, 191},
        {17, 97, 192},  {23, 100, 193}, {24, 1, 255},   {25, 2, 256},   {29, 3, 257},
        {31, 111, 300}, {37, 113, 9},   {50, 128, 383}, {61, 129, 384}, {64, 130, 385},
        {97, 77, 64},   {100, 300, 1},  {193, 50, 40},  {250, 35, 70},  {300, 299, 3},
        {6, 300, 290},  {1, 257, 300},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        check_shape(shapes[s][0], shapes[s][1], shapes[s][2], 1000 + 17 * s);
}
END_TEST

/* the model's products (MODEL.md presets at batch 100 on 1, 2 and 8
 * threads: 100, 50 and 13 rows): forward Y = X·Wᵀ and backward dX = dY·W
 * of the recurrent, q(z|·) and write layers */
START_TEST(test_model_shapes) {
    /* {N, K} of the forward product; the backward is {K, N} with tw = 0 */
    static const int fwd[][2] = {
        {1024, 264},  /* draw: encoder W_ih (read + h_dec) */
        {1024, 256},  /* W_hh of both LSTMs */
        {1024, 100},  /* decoder W_ih */
        {100, 256},   /* q(z|h_enc) */
        {100, 320},   /* dcrw: q(z|CNN, h_dec) */
        {25, 256},    /* write patch, N_w = 5 */
        {784, 256},   /* draw-noattn: write */
        {1024, 1040}, /* draw-noattn: encoder W_ih (x̂ + h_dec) */
        {100, 3136},  /* dcrw-noread: q(z|CNN) */
    };
    static const int rows[] = {50, 13, 100};
    for (size_t s = 0; s < sizeof fwd / sizeof fwd[0]; s++) {
        const int N = fwd[s][0], K = fwd[s][1], M = rows[s % 3];
        /* beta 0 and 1 in turn; the sweep of test_shapes has both for each */
        const float beta = (float)(s % 2);
        problem f = make_problem(M, N, K, 0, 1, beta, 77 + s);
        check_all_paths(&f);
        free_problem(&f);
        problem b = make_problem(M, K, N, 0, 0, 1.0f - beta, 91 + s);
        check_all_paths(&b);
        free_problem(&b);
    }
    /* a weight gradient over T·B rows: dW[1024×256] += dYᵀ·X, here 200 rows */
    problem g = make_problem(1024, 256, 200, 1, 0, 1.0f, 5);
    check_all_paths(&g);
    free_problem(&g);
}
END_TEST

/* k = 0 is C = beta·C, and beta = 0 writes zeros over NaN */
START_TEST(test_empty_k) {
    const pgemm_path p = (pgemm_path)_i;
    if (skip_unsupported(p)) return;
    float w = 1.0f, a = 1.0f, c[6] = {1, 2, NAN, 4, 5, NAN};
    pgemm_b b;
    dcrw_pgemm_pack(&b, p, 1, 0, 2, &w, 1, NULL);
    dcrw_pgemm(2, 0, &a, 1, &b, 0.5f, c, 3);
    ck_assert_float_eq(c[0], 0.5f);
    ck_assert_float_eq(c[1], 1.0f);
    ck_assert(isnan(c[2])); /* outside the 2×2 result */
    ck_assert_float_eq(c[3], 2.0f);
    ck_assert_float_eq(c[4], 2.5f);
    c[0] = NAN;
    dcrw_pgemm(2, 0, &a, 1, &b, 0.0f, c, 3);
    ck_assert_float_eq(c[0], 0.0f);
    ck_assert_float_eq(c[4], 0.0f);
    /* nothing at all for no rows or no columns */
    c[0] = 7.0f;
    dcrw_pgemm(0, 0, &a, 1, &b, 0.0f, c, 3);
    dcrw_pgemm_pack(&b, p, 1, 3, 0, &w, 1, NULL);
    dcrw_pgemm(2, 0, &a, 1, &b, 0.0f, c, 3);
    ck_assert_float_eq(c[0], 7.0f);
}
END_TEST

static int fclass(float x) {
    return isnan(x) ? 3 : isinf(x) ? (x > 0 ? 1 : 2) : 0;
}

/* NaN and inf in X or W give NaN and inf where cblas_sgemm gives them */
START_TEST(test_nonfinite) {
    const pgemm_path p = (pgemm_path)_i;
    if (skip_unsupported(p)) return;
    const int M = 20, N = 40, K = 30;
    for (int tw = 0; tw < 2; tw++) {
        float *x = malloc(sizeof(float) * M * K), *w = malloc(sizeof(float) * N * K);
        float *y = malloc(sizeof(float) * M * N), *ys = malloc(sizeof(float) * M * N);
        tu_fill_uniform(x, (size_t)M * K, -1.0f, 1.0f, 3);
        tu_fill_uniform(w, (size_t)N * K, -1.0f, 1.0f, 4);
        x[3 * K + 7] = NAN;       /* row 3 of Y */
        x[11 * K + 2] = INFINITY; /* row 11: ±inf, NaN where W's column is 0 or inf */
        x[15 * K + 4] = 0.0f;     /* 0·inf = NaN in column 9 below */
        /* W at (k = 4, n = 9) is +inf, (k = 5, n = 9) −inf: row 11 and any
         * row with nonzero x[.,4], x[.,5] of equal sign becomes NaN */
        const int ldw = tw ? K : N;
        float *w49 = tw ? &w[9 * ldw + 4] : &w[4 * ldw + 9];
        float *w59 = tw ? &w[9 * ldw + 5] : &w[5 * ldw + 9];
        *w49 = INFINITY;
        *w59 = -INFINITY;
        float *w2 = tw ? &w[20 * ldw + 2] : &w[2 * ldw + 20];
        *w2 = 0.0f; /* row 11 column 20: inf·0 = NaN */
        pgemm_b b;
        float *buf = dcrw_alloc(dcrw_pgemm_pack_floats(p, K, N) * sizeof(float));
        dcrw_pgemm_pack(&b, p, tw, K, N, w, ldw, buf);
        dcrw_pgemm(M, 0, x, K, &b, 0.0f, y, N);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, tw ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, x,
                    K, w, ldw, 0.0f, ys, N);
        int nonfinite = 0;
        for (int i = 0; i < M * N; i++) {
            if (fclass(y[i]) != fclass(ys[i]))
                ck_abort_msg("%s tw=%d: Y[%d][%d] = %g, sgemm %g", dcrw_pgemm_path_name(p), tw,
                             i / N, i % N, y[i], ys[i]);
            nonfinite += fclass(y[i]) != 0;
        }
        ck_assert(isnan(y[3 * N]) && isnan(y[11 * N + 20]) && isnan(y[15 * N + 9]));
        ck_assert_int_gt(nonfinite, N + M);
        dcrw_free(buf);
        free(x), free(w), free(y), free(ys);
    }
}
END_TEST

/* a pack written in parts (any number, in any order) is the whole pack,
 * and dcrw_pgemm_describe describes it as dcrw_pgemm_pack does */
START_TEST(test_pack_parts) {
    const pgemm_path p = (pgemm_path)_i;
    if (skip_unsupported(p)) return;
    const int shapes[][2] = {{3, 5}, {7, 100}, {4, 1024}, {2, 33}, {5, 200}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int k = shapes[s][0], n = shapes[s][1];
        for (int trans = 0; trans < 2; trans++) {
            float *w = malloc(sizeof(float) * (size_t)k * n);
            tu_fill_uniform(w, (size_t)k * n, -1.0f, 1.0f, 40 + s);
            const size_t nf = dcrw_pgemm_pack_floats(p, k, n);
            float *whole = dcrw_alloc(nf * sizeof(float)), *parts = dcrw_alloc(nf * sizeof(float));
            pgemm_b bw, bp;
            dcrw_pgemm_pack(&bw, p, trans, k, n, w, trans ? k : n, whole);
            for (int np = 1; np <= 9; np++) {
                for (size_t i = 0; i < nf; i++) parts[i] = NAN;
                for (int part = np - 1; part >= 0; part--)
                    dcrw_pgemm_pack_part(p, trans, k, n, w, trans ? k : n, parts, part, np);
                ck_assert_mem_eq(parts, whole, nf * sizeof(float));
            }
            dcrw_pgemm_describe(&bp, p, k, n, parts);
            ck_assert_ptr_eq(bp.panels, parts);
            ck_assert_int_eq(bp.k, bw.k);
            ck_assert_int_eq(bp.n, bw.n);
            ck_assert_int_eq(bp.ldb, bw.ldb);
            ck_assert_int_eq(bp.path, bw.path);
            dcrw_free(whole), dcrw_free(parts);
            free(w);
        }
    }
}
END_TEST

/* A row of the product does not depend on the other rows: the rows
 * i0 .. i0+m of an M-row product are bit for bit those of the m-row
 * product of the same rows, for every split; the model's evaluation of a
 * set in parts relies on it. Packed and in-place B alike, beta 0 and 1. */
START_TEST(test_rows_independent) {
    const pgemm_path p = (pgemm_path)_i;
    if (skip_unsupported(p)) return;
    const int shapes[][2] = {{256, 5}, {256, 25}, {100, 1024}, {264, 100}, {37, 45}};
    const int M = 23;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int K = shapes[s][0], N = shapes[s][1];
        float *w = malloc(sizeof(float) * (size_t)K * N), *x = malloc(sizeof(float) * M * K);
        float *c0 = malloc(sizeof(float) * M * N), *y = malloc(sizeof(float) * M * N);
        float *yp = malloc(sizeof(float) * M * N);
        tu_fill_uniform(w, (size_t)K * N, -1.0f, 1.0f, 60 + s);
        tu_fill_uniform(x, (size_t)M * K, -1.0f, 1.0f, 70 + s);
        tu_fill_uniform(c0, (size_t)M * N, -1.0f, 1.0f, 80 + s);
        float *buf = dcrw_alloc(dcrw_pgemm_pack_floats(p, K, N) * sizeof(float));
        for (int view = 0; view < 2; view++) {
            pgemm_b b;
            if (view)
                dcrw_pgemm_view(&b, p, K, N, w, N);
            else
                dcrw_pgemm_pack(&b, p, 1, K, N, w, K, buf);
            for (float beta = 0.0f; beta <= 1.0f; beta += 1.0f) {
                memcpy(y, c0, sizeof(float) * M * N);
                dcrw_pgemm(M, 0, x, K, &b, beta, y, N);
                for (int i0 = 0; i0 < M; i0++) {
                    const int sizes[] = {1, 3, 7, M - i0};
                    for (int q = 0; q < 4; q++) {
                        const int m = sizes[q];
                        if (i0 + m > M) continue;
                        memcpy(yp, c0, sizeof(float) * M * N);
                        dcrw_pgemm(m, 0, x + (size_t)i0 * K, K, &b, beta, yp + (size_t)i0 * N, N);
                        if (memcmp(yp + (size_t)i0 * N, y + (size_t)i0 * N, sizeof(float) * m * N))
                            ck_abort_msg("%s K=%d N=%d view=%d beta=%g: rows %d..%d differ",
                                         dcrw_pgemm_path_name(p), K, N, view, (double)beta, i0,
                                         i0 + m);
                    }
                }
            }
        }
        dcrw_free(buf);
        free(w), free(x), free(c0), free(y), free(yp);
    }
}
END_TEST

/* threads sharing one packed operand get what one thread gets */
typedef struct job {
    const pgemm_b *b;
    const float *x;
    float *y;
    int M, K, N;
} job;

static void *run_job(void *arg) {
    job *j = arg;
    for (int r = 0; r < 20; r++) dcrw_pgemm(j->M, 0, j->x, j->K, j->b, 0.0f, j->y, j->N);
    return NULL;
}

START_TEST(test_threads_share_packed) {
    const pgemm_path p = dcrw_pgemm_path_best();
    const int M = 13, K = 70, N = 90, T = 4;
    float *w = malloc(sizeof(float) * N * K), *x = malloc(sizeof(float) * T * M * K);
    float *y = calloc((size_t)T * M * N, sizeof(float)), *y1 = malloc(sizeof(float) * M * N);
    tu_fill_uniform(w, (size_t)N * K, -1.0f, 1.0f, 8);
    tu_fill_uniform(x, (size_t)T * M * K, -1.0f, 1.0f, 9);
    float *buf = dcrw_alloc(dcrw_pgemm_pack_floats(p, K, N) * sizeof(float));
    pgemm_b b;
    dcrw_pgemm_pack(&b, p, 1, K, N, w, K, buf);
    pthread_t th[4];
    job jobs[4];
    for (int t = 0; t < T; t++) {
        jobs[t] = (job){&b, x + (size_t)t * M * K, y + (size_t)t * M * N, M, K, N};
        ck_assert_int_eq(pthread_create(&th[t], NULL, run_job, &jobs[t]), 0);
    }
    for (int t = 0; t < T; t++) pthread_join(th[t], NULL);
    for (int t = 0; t < T; t++) {
        dcrw_pgemm(M, 0, x + (size_t)t * M * K, K, &b, 0.0f, y1, N);
        ck_assert_mem_eq(y1, y + (size_t)t * M * N, sizeof(float) * M * N);
    }
    dcrw_free(buf);
    free(w), free(x), free(y), free(y1);
}
END_TEST

int main(void) {
    Suite *s = suite_create("pgemm");
    TCase *tc = tcase_create("pgemm");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_paths);
    tcase_add_test(tc, test_pack_sizes);
    tcase_add_loop_test(tc, test_pack_writes_everything, 0, PGEMM_PATH_COUNT);
    tcase_add_test(tc, test_shapes);
    tcase_add_test(tc, test_model_shapes);
    tcase_add_loop_test(tc, test_empty_k, 0, PGEMM_PATH_COUNT);
    tcase_add_loop_test(tc, test_nonfinite, 0, PGEMM_PATH_COUNT);
    tcase_add_test(tc, test_threads_share_packed);
    tcase_add_loop_test(tc, test_pack_parts, 0, PGEMM_PATH_COUNT);
    tcase_add_loop_test(tc, test_rows_independent, 0, PGEMM_PATH_COUNT);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
