/* The machine's float32 FMA ceiling, and every weight product of a training
 * step timed with cblas_sgemm and with the packed kernel (lib/pgemm.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "benchutil.h"
#include "dcrw/dcrw.h"
#include "gemm.h"
#include "pgemm_bf16.h"
#include "products.h"
#include "rng.h"

void openblas_set_num_threads(int);

/* ---- FMA throughput ------------------------------------------------------ */

/* 12 independent chains a = a·x + y per iteration: more than the two FMA
 * units × four cycles of latency need to be full */
#define CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define N_CHAINS 12

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

__attribute__((target("avx2,fma"))) static float fma_loop_avx2(long iters) {
    const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-6f);
#define INIT8(i) __m256 a##i = _mm256_set1_ps(1.0f + (float)i);
#define STEP8(i) a##i = _mm256_fmadd_ps(a##i, x, y);
#define SUM8(i) s = _mm256_add_ps(s, a##i);
    CHAINS(INIT8)
    for (long r = 0; r < iters; r++) {
        CHAINS(STEP8)
    }
    __m256 s = _mm256_setzero_ps();
    CHAINS(SUM8)
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0];
}

__attribute__((target("avx512f"))) static float fma_loop_avx512(long iters) {
    const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-6f);
#define INIT16(i) __m512 a##i = _mm512_set1_ps(1.0f + (float)i);
#define STEP16(i) a##i = _mm512_fmadd_ps(a##i, x, y);
#define SUM16(i) s = _mm512_add_ps(s, a##i);
    CHAINS(INIT16)
    for (long r = 0; r < iters; r++) {
        CHAINS(STEP16)
    }
    __m512 s = _mm512_setzero_ps();
    CHAINS(SUM16)
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx512f,avx512bf16"))) static float dot_loop_bf16(long iters) {
    const __m512bh x = (__m512bh)_mm512_set1_epi32(0x3f803f80); /* (1, 1) */
    const __m512bh y = (__m512bh)_mm512_set1_epi32(0x358c358c); /* (1e-6, 1e-6) */
#define STEPBF(i) a##i = _mm512_dpbf16_ps(a##i, x, y);
    CHAINS(INIT16)
    for (long r = 0; r < iters; r++) {
        CHAINS(STEPBF)
    }
    __m512 s = _mm512_setzero_ps();
    CHAINS(SUM16)
    return _mm512_reduce_add_ps(s);
}
#define HAVE_X86_FMA 1
#else
#define HAVE_X86_FMA 0
#endif

/* GFLOP/s of loop over `lanes`-wide vectors: the best of 5 runs of ~0.05 s
 * (other work on the machine can only slow a run down) */
static double fma_rate(float (*fn)(long), int lanes) {
    /* Called through a volatile pointer, the loop is an unknown function
     * that may have side effects, so the compiler keeps it between the two
     * clock readings; called directly, it is a pure computation that gcc
     * may move out of the timed region (a "peak" of 3e8 GFLOP/s). */
    float (*volatile loop)(long) = fn;
    const double flops_per_iter = 2.0 * lanes * N_CHAINS;
    long iters = 1000000;
    volatile float sink = 0;
    double t = 0;
    while ((t = bench_now(), sink += loop(iters), t = bench_now() - t) < 0.05) iters *= 2;
    double best = 0;
    for (int r = 0; r < 5; r++) {
        const double t0 = bench_now();
        sink += loop(iters);
        const double g = flops_per_iter * (double)iters / (bench_now() - t0) / 1e9;
        best = g > best ? g : best;
    }
    (void)sink;
    return best;
}

double fma_peak_per_core(const char **how) {
    *how = "none";
    double best = 0;
#if HAVE_X86_FMA
    if (dcrw_pgemm_path_supported(PGEMM_PATH_AVX2)) {
        best = fma_rate(fma_loop_avx2, 8);
        *how = "AVX2";
    }
    if (dcrw_pgemm_path_supported(PGEMM_PATH_AVX512)) {
        const double z = fma_rate(fma_loop_avx512, 16);
        if (z > best) {
            best = z;
            *how = "AVX-512";
        }
    }
#endif
    return best;
}

double bf16_peak_per_core(void) {
#if HAVE_X86_FMA
    /* a lane does two products and two sums per instruction: twice an FMA's */
    if (dcrw_bf16_hardware()) return 2 * fma_rate(dot_loop_bf16, 16);
#endif
    return 0;
}

/* ---- the products of a training step ------------------------------------ */

typedef enum pass_kind { FWD, BWD, DW } pass_kind;

/* FWD: Y[M×n] = β·Y + X[M×k]·Wᵀ (W [n×k]); BWD: dX[M×n] = β·dX + dY[M×k]·W
 * (W [k×n]); DW: dW[n×k] += dYᵀ·X over T·M rows (dY [TM×n], X [TM×k]), or
 * over M rows where once is set (the x columns and dcrw-noread's q) */
typedef struct product {
    const char *name;
    pass_kind kind;
    int n, k;
    float beta;
    int uses;    /* calls per training step and thread */
    int weights; /* weights of this shape, each packed once per step */
    int once;    /* DW: over the M rows of the batch, not T·M */
} product;

static int add(product *out, int n, product p) {
    out[n] = p;
    return n + 1;
}

/* the weight products of lib/forward.c and lib/backward.c for config c */
static int step_products(const dcrw_config *c, product *o) {
    const int C = c->channels, P = C * c->height * c->width, T = c->glimpses, E = c->enc_size,
              D = c->dec_size, Z = c->z_size, ra = c->read_attention, wa = c->write_attention,
              cnn = c->encoder == DCRW_ENCODER_CNN;
    const int Wout = wa ? C * c->write_n * c->write_n : P;
    const int Us = (ra ? 2 * C * c->read_n * c->read_n : P) + D;
    int Q = E, qT = T;
    if (cnn && ra) {
        const int p2 = (c->read_n / 2) / 2;
        Q = c->conv2 * p2 * p2 + D;
    } else if (cnn) {
        Q = c->conv2 * ((c->height / 2) / 2) * ((c->width / 2) / 2);
        qT = 1; /* dcrw-noread: q(z|x) once per batch */
    }
    int n = 0;
    n = add(o, n, (product){"dec.lstm.weight_ih", FWD, 4 * D, Z, 0, T, 1, 0});
    n = add(o, n, (product){"dec.lstm.weight_hh", FWD, 4 * D, D, 1, T, 1, 0});
    n = add(o, n, (product){"write.weight", FWD, Wout, D, 1, T, 1, 0});
    if (wa) n = add(o, n, (product){"write.attn.weight", FWD, 5, D, 1, T, 1, 0});
    if (ra) n = add(o, n, (product){"read.attn.weight", FWD, 5, D, 1, T, 1, 0});
    n = add(o, n, (product){"q.mu,logsigma.weight", FWD, Z, Q, 1, 2 * qT, 2, 0});
    if (!cnn) {
        n = add(o, n, (product){"enc.lstm.weight_ih", FWD, 4 * E, Us, 0, T, 1, 0});
        n = add(o, n, (product){"enc.lstm.weight_hh", FWD, 4 * E, E, 1, T, 1, 0});
        if (!ra) n = add(o, n, (product){"enc.lstm.weight_ih x", FWD, 4 * E, P, 1, 1, 1, 0});
    }
    n = add(o, n, (product){"dec.lstm.weight_ih", BWD, Z, 4 * D, 0, T, 1, 0});
    n = add(o, n, (product){"dec.lstm.weight_hh", BWD, D, 4 * D, 0, T, 1, 0});
    n = add(o, n, (product){"write.weight", BWD, D, Wout, 1, T, 1, 0});
    if (wa) n = add(o, n, (product){"write.attn.weight", BWD, D, 5, 1, T, 1, 0});
    if (ra) n = add(o, n, (product){"read.attn.weight", BWD, D, 5, 1, T, 1, 0});
    n = add(o, n, (product){"q.mu,logsigma.weight", BWD, Q, Z, 1, 2 * qT, 2, 0});
    if (!cnn) {
        n = add(o, n, (product){"enc.lstm.weight_hh", BWD, E, 4 * E, 0, T, 1, 0});
        n = add(o, n, (product){"enc.lstm.weight_ih", BWD, Us, 4 * E, 0, T, 1, 0});
    }
    /* the weight gradients, one product each after the time loop */
    n = add(o, n, (product){"dec.lstm.weight_ih", DW, 4 * D, Z, 1, 1, 0, 0});
    n = add(o, n, (product){"dec.lstm.weight_hh", DW, 4 * D, D, 1, 1, 0, 0});
    n = add(o, n, (product){"write.weight", DW, Wout, D, 1, 1, 0, 0});
    if (wa) n = add(o, n, (product){"write.attn.weight", DW, 5, D, 1, 1, 0, 0});
    if (ra) n = add(o, n, (product){"read.attn.weight", DW, 5, D, 1, 1, 0, 0});
    n = add(o, n, (product){"q.mu,logsigma.weight", DW, Z, Q, 1, 2, 0, qT == 1});
    if (!cnn) {
        n = add(o, n, (product){"enc.lstm.weight_ih", DW, 4 * E, Us, 1, 1, 0, 0});
        n = add(o, n, (product){"enc.lstm.weight_hh", DW, 4 * E, E, 1, 1, 0, 0});
        if (!ra) n = add(o, n, (product){"enc.lstm.weight_ih x", DW, 4 * E, P, 1, 1, 0, 1});
    }
    return n;
}

typedef struct operands {
    const product *p;
    int M, inner; /* rows; for DW the T·M rows of the sum */
    pgemm_path path;
    float *A, *W, *Y, *buf;
    pgemm_b b;
    uint32_t *bbuf; /* the bf16 pack (forward and backward), NULL without BF16 */
    bf16_b bb;
} operands;

static float *random_floats(size_t n, uint64_t seed) {
    float *x = dcrw_alloc(n * sizeof(float));
    if (!x) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    const uint64_t key = rng_key(seed, 1, 2);
    for (size_t i = 0; i < n; i++) x[i] = rng_uniform(key, i) - 0.5f;
    return x;
}

/* the bf16 kernel packs Wᵀ (forward) or W (backward); a weight gradient
 * reads its operands in place */
static void pack_bf16(operands *o) {
    const product *p = o->p;
    if (p->kind == DW) return;
    if (p->kind == FWD)
        dcrw_bf16_pack_part(1, p->k, p->n, o->W, p->k, o->bbuf, 0, 1);
    else
        dcrw_bf16_pack_part(0, p->k, p->n, o->W, p->n, o->bbuf, 0, 1);
    dcrw_bf16_describe(&o->bb, p->k, p->n, o->bbuf);
}

static void run_bf16(operands *o) {
    const product *p = o->p;
    if (p->kind == DW)
        dcrw_bf16_gemm_tn(p->n, p->k, o->inner, o->A, p->n, o->W, p->k, 1.0f, o->Y, p->k, o->bbuf);
    else
        dcrw_bf16_gemm(o->M, o->A, p->k, &o->bb, p->beta, o->Y, p->n);
}

static double per_call_bf16(operands *o, int reps) {
    const double t0 = bench_now();
    for (int r = 0; r < reps; r++) run_bf16(o);
    return (bench_now() - t0) / reps;
}

/* the forward packs Wᵀ; the backward reads W in place, the gradient X */
static void pack_weight(operands *o) {
    const product *p = o->p;
    if (p->kind == FWD)
        dcrw_pgemm_pack(&o->b, o->path, 1, p->k, p->n, o->W, p->k, o->buf);
    else if (p->kind == BWD)
        dcrw_pgemm_view(&o->b, o->path, p->k, p->n, o->W, p->n);
    else
        dcrw_pgemm_view(&o->b, o->path, o->inner, p->k, o->W, p->k);
}

static void run(operands *o, int packed) {
    const product *p = o->p;
    const int M = o->M, n = p->n, k = p->k;
    switch (p->kind) {
    case FWD:
        if (packed)
            dcrw_pgemm(M, 0, o->A, k, &o->b, p->beta, o->Y, n);
        else
            gemm_nt(M, n, k, o->A, k, o->W, k, p->beta, o->Y, n);
        break;
    case BWD:
        if (packed)
            dcrw_pgemm(M, 0, o->A, k, &o->b, p->beta, o->Y, n);
        else
            gemm_nn(M, n, k, o->A, k, o->W, n, p->beta, o->Y, n);
        break;
    case DW:
        if (packed) {
            dcrw_pgemm(n, 1, o->A, n, &o->b, 1.0f, o->Y, k);
        } else {
            gemm_tn(n, k, o->inner, o->A, n, o->W, k, 1.0f, o->Y, k);
        }
        break;
    }
}

/* seconds per call of run(o, packed), over `reps` calls */
static double per_call(operands *o, int packed, int reps) {
    const double t0 = bench_now();
    for (int r = 0; r < reps; r++) run(o, packed);
    return (bench_now() - t0) / reps;
}

typedef struct timing {
    double sgemm, packed, pack; /* seconds per call */
    double bf16, bf16_pack;     /* 0 without a bf16 kernel for it */
} timing;

/* sgemm and packed in turn, `rounds` times, so drift hits both alike */
static timing time_product(operands *o, int rounds) {
    pack_weight(o);
    run(o, 0), run(o, 1);
    const double first = per_call(o, 0, 1);
    int reps = first > 0 ? (int)(3e-4 / first) + 1 : 1000;
    if (reps > 1000) reps = 1000;
    double ts[31], tp[31], tk[31], tb[31], tbk[31];
    if (rounds > 31) rounds = 31;
    if (o->bbuf) pack_bf16(o), run_bf16(o);
    for (int r = 0; r < rounds; r++) {
        ts[r] = per_call(o, 0, reps);
        tp[r] = per_call(o, 1, reps);
        double t0 = bench_now();
        pack_weight(o);
        tk[r] = bench_now() - t0;
        if (!o->bbuf) continue;
        tb[r] = per_call_bf16(o, reps);
        t0 = bench_now();
        pack_bf16(o);
        tbk[r] = bench_now() - t0;
    }
    timing t = {bench_median(ts, rounds), bench_median(tp, rounds), bench_median(tk, rounds),
                o->bbuf ? bench_median(tb, rounds) : 0, o->bbuf ? bench_median(tbk, rounds) : 0};
    return t;
}

static timing measure(const product *p, int M, int T, pgemm_path path, int rounds) {
    operands o = {p,    M,    p->once ? M : T * M,   path, NULL,        NULL,
                  NULL, NULL, {NULL, 0, 0, 0, path}, NULL, {NULL, 0, 0}};
    size_t na, nw, ny, nb = 1;
    if (p->kind == DW) {
        na = (size_t)o.inner * p->n, nw = (size_t)o.inner * p->k, ny = (size_t)p->n * p->k;
    } else {
        na = (size_t)M * p->k, nw = (size_t)p->n * p->k, ny = (size_t)M * p->n;
        if (p->kind == FWD) nb = dcrw_pgemm_pack_floats(path, p->k, p->n);
    }
    o.A = random_floats(na, 1);
    o.W = random_floats(nw, 2);
    o.Y = random_floats(ny, 3);
    o.buf = random_floats(nb, 4);
    /* the products a bf16 model takes in bf16 (lib/pass.c, lib/pass_internal.h):
     * forward, all but the attention's 5 outputs; backward, inner sizes
     * from 64; weight gradients, from 64 outputs */
    if (dcrw_bf16_hardware() && ((p->kind == FWD && p->n > 5) || (p->kind == BWD && p->k >= 64)))
        o.bbuf = (uint32_t *)(void *)random_floats(dcrw_bf16_pack_words(p->k, p->n), 5);
    if (dcrw_bf16_hardware() && p->kind == DW && p->n >= 64)
        o.bbuf = (uint32_t *)(void *)random_floats(dcrw_bf16_tn_words(), 5);
    const timing t = time_product(&o, rounds);
    dcrw_free(o.A), dcrw_free(o.W), dcrw_free(o.Y), dcrw_free(o.buf), dcrw_free(o.bbuf);
    return t;
}

static void preset_rows(const char *name, int M, pgemm_path path, int rounds) {
    dcrw_preset preset;
    dcrw_config c;
    if (dcrw_preset_from_name(name, &preset) != DCRW_OK) return;
    dcrw_config_preset(&c, preset);
    product prods[32];
    const int n = step_products(&c, prods);
    double sum_s = 0, sum_p = 0, sum_best = 0, sum_b = 0;
    for (int i = 0; i < n; i++) {
        const product *p = &prods[i];
        const timing t = measure(p, M, c.glimpses, path, rounds);
        const int rows = p->kind == DW ? p->n : M;
        const int inner = p->kind == DW ? (p->once ? M : c.glimpses * M) : p->k;
        const int cols = p->kind == DW ? p->k : p->n;
        const double flops = 2.0 * rows * cols * inner;
        const double pack = p->kind == FWD ? t.pack : 0.0;
        const double step_s = p->uses * t.sgemm, step_p = p->uses * t.packed + p->weights * pack;
        const double best = step_s < step_p ? step_s : step_p;
        sum_s += step_s, sum_p += step_p, sum_best += best;
        /* a bf16 model: the bf16 kernel and its pack where it has one */
        sum_b += t.bf16 > 0 ? p->uses * t.bf16 + p->weights * t.bf16_pack : best;
        static const char *const kinds[] = {"fwd", "bwd", "grad"};
        char bf[64];
        if (t.bf16 > 0)
            snprintf(bf, sizeof bf, "%.1f | %.1f | %.1f", 1e6 * t.bf16, flops / t.bf16 / 1e9,
                     1e6 * t.bf16_pack);
        else
            snprintf(bf, sizeof bf, "– | – | –");
        printf("| %s | %s | %s | %d×%d×%d | %g | %d | %.1f | %.1f | %.1f | %.1f | %.2f× | %.1f | "
               "%s |\n",
               name, p->name, kinds[p->kind], rows, cols, inner, p->beta, p->uses, 1e6 * t.sgemm,
               flops / t.sgemm / 1e9, 1e6 * t.packed, flops / t.packed / 1e9, t.sgemm / t.packed,
               1e6 * pack, bf);
        fflush(stdout);
    }
    printf("| %s | **per step and thread** | | | | | %.2f ms | | %.2f ms (packs incl.) | | "
           "%.2f× | best mix %.2f ms (%.2f×) | bf16 model %.2f ms (%.2f× the best mix) | | |\n",
           name, 1e3 * sum_s, 1e3 * sum_p, sum_s / sum_p, 1e3 * sum_best, sum_s / sum_best,
           1e3 * sum_b, sum_best / sum_b);
}

double step_products_seconds(const dcrw_config *c, int rows, pgemm_path path, int bf16,
                             int rounds) {
    product prods[32];
    const int n = step_products(c, prods);
    double sum = 0;
    for (int i = 0; i < n; i++) {
        const product *p = &prods[i];
        const timing t = measure(p, rows, c->glimpses, path, rounds);
        const double pack = p->kind == FWD ? t.pack : 0.0;
        const double s = p->uses * t.sgemm, k = p->uses * t.packed + p->weights * pack;
        double best = s < k ? s : k;
        if (bf16 && t.bf16 > 0) best = p->uses * t.bf16 + p->weights * t.bf16_pack;
        sum += best;
    }
    return sum;
}

void products_table(const char *presets, int rows, pgemm_path path, int rounds) {
    openblas_set_num_threads(1);
    printf("\nWeight products of a training step, one thread, %d rows, cblas_sgemm against the "
           "packed kernel (path %s), interleaved, median of %d; "
           "M×N×K of the output and inner size, calls per step, µs per call and GFLOP/s; pack: µs "
           "to pack the weight, once per step (the backward and the gradient read their operand "
           "in place); bf16: the bfloat16 kernel of a bf16 model (operands rounded, float32 "
           "sums; AVX-512 BF16), µs, GFLOP/s and µs to pack\n\n",
           rows, dcrw_pgemm_path_name(path), rounds);
    printf("| preset | product | pass | M×N×K | β | calls | sgemm µs | GFLOP/s | packed µs | "
           "GFLOP/s | sgemm/packed | pack µs | bf16 µs | GFLOP/s | bf16 pack µs |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    char *list = strdup(presets);
    for (char *name = strtok(list, ","); name; name = strtok(NULL, ","))
        preset_rows(name, rows, path, rounds);
    free(list);
}
