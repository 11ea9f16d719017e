/* The additions of 0.3 beyond the configuration fields: the operations
 * with noise keyed by an image's index in a whole set (*_part), the
 * importance-weighted bound, checkpoint summaries from the header, and the
 * lifetime of the calling thread's workspace. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "model.h"
#include "pass.h"
#include "rng.h"
#include "testutil.h"

enum { N = 10 };
#define HALF_LOG_2PI 0.91893853320467274178

/* A small model of each architecture with LSTMs of `hidden` units, and
 * images in [0, 1] for it. */
static dcrw_model *sized_model(dcrw_preset p, int hidden, float **x) {
    dcrw_config c;
    ck_assert_int_eq(dcrw_config_preset(&c, p), DCRW_OK);
    c.height = c.width = 12;
    c.glimpses = 3;
    c.dec_size = hidden;
    c.z_size = 5; /* odd: the noise's last normal has no twin */
    if (c.encoder == DCRW_ENCODER_LSTM) c.enc_size = hidden;
    if (c.read_attention) c.read_n = c.encoder == DCRW_ENCODER_CNN ? 5 : 3;
    if (c.encoder == DCRW_ENCODER_CNN) c.conv1 = 3, c.conv2 = 4;
    dcrw_model *m;
    ck_assert_int_eq(dcrw_model_create(&m, &c, 11), DCRW_OK);
    const size_t P = dcrw_model_input_size(m);
    *x = malloc(N * P * sizeof **x);
    tu_fill_uniform(*x, N * P, 0.0f, 1.0f, 3 + (uint64_t)p);
    return m;
}

static dcrw_model *small_model(dcrw_preset p, float **x) {
    return sized_model(p, 16, x);
}

static size_t tz(const dcrw_model *m) {
    dcrw_sizes s = {.size = sizeof s};
    dcrw_model_sizes(m, &s);
    return s.glimpses * s.z;
}

/* ---- noise keyed by the image's index ------------------------------------ */

/* Rows [t][first .. first + nb) of a time-major [T×n×Z] array from the
 * [T×nb×Z] one of a part. */
static void put_part(float *all, const float *part, int T, int n, int first, int nb, int Z) {
    for (int t = 0; t < T; t++)
        memcpy(all + ((size_t)t * n + first) * Z, part + (size_t)t * nb * Z,
               (size_t)nb * Z * sizeof(float));
}

/* Every output of a 10-image set computed whole and in two parts, each
 * part on its own (as separate processes would). */
typedef struct set_outputs {
    double lx[N], lz[N], iw[N];
    float *z, *img, *gen;
} set_outputs;

static void set_outputs_init(set_outputs *o, const dcrw_model *m) {
    const size_t P = dcrw_model_input_size(m);
    o->z = malloc(tz(m) * N * sizeof *o->z);
    o->img = malloc(N * P * sizeof *o->img);
    o->gen = malloc(N * P * sizeof *o->gen);
}

static void set_outputs_free(set_outputs *o) {
    free(o->z), free(o->img), free(o->gen);
}

/* Every output of b bit for bit those of a (nz noise floats, P pixels an
 * image); what names the split in a failure. */
static void assert_same_outputs(const set_outputs *a, const set_outputs *b, size_t nz, size_t P,
                                const char *what) {
    ck_assert_msg(memcmp(a->lx, b->lx, sizeof a->lx) == 0, "%s: lx differs", what);
    ck_assert_msg(memcmp(a->lz, b->lz, sizeof a->lz) == 0, "%s: lz differs", what);
    ck_assert_msg(memcmp(a->iw, b->iw, sizeof a->iw) == 0, "%s: iw differs", what);
    ck_assert_msg(memcmp(a->z, b->z, nz * sizeof(float)) == 0, "%s: z differs", what);
    ck_assert_msg(memcmp(a->img, b->img, N * P * sizeof(float)) == 0, "%s: images differ", what);
    ck_assert_msg(memcmp(a->gen, b->gen, N * P * sizeof(float)) == 0, "%s: samples differ", what);
}

/* The outputs for images first .. first + nb − 1 of the set into o. */
static void run_part(const dcrw_model *m, const float *x, int first, int nb, set_outputs *o) {
    const size_t P = dcrw_model_input_size(m);
    dcrw_sizes sz = {.size = sizeof sz};
    dcrw_model_sizes(m, &sz);
    const uint64_t seed = 77;
    const float *xp = x + (size_t)first * P;
    float *z = malloc(tz(m) * nb * sizeof *z);
    ck_assert_int_eq(
        dcrw_evaluate_images_part(m, nb, xp, seed, first, o->lx + first, o->lz + first), DCRW_OK);
    ck_assert_int_eq(dcrw_encode_part(m, nb, xp, seed, first, z, NULL, NULL), DCRW_OK);
    put_part(o->z, z, (int)sz.glimpses, N, first, nb, (int)sz.z);
    ck_assert_int_eq(
        dcrw_reconstruct_part(m, nb, xp, seed, first, o->img + first * P, NULL, NULL, NULL),
        DCRW_OK);
    ck_assert_int_eq(dcrw_decode_part(m, nb, seed, first, o->gen + first * P, NULL, NULL), DCRW_OK);
    ck_assert_int_eq(dcrw_evaluate_iw(m, nb, xp, 3, seed, first, o->iw + first, NULL), DCRW_OK);
    free(z);
}

/* Split 5 + 5 with one thread each, and 3 + 7, against the whole batch
 * with two threads (chunks of 5): the same noise for every image (checked
 * draw by draw), and the same numbers bit for bit, since the forward's
 * products with the weights round a row alike whatever the other rows of
 * the product (the packed kernel; OpenBLAS's sgemm does not, at these
 * sizes: an attention or write product of 3 rows rounds differently from
 * one of 5). */
START_TEST(test_parts_match_whole) {
    float *x;
    dcrw_model *m = sized_model((dcrw_preset)_i, 32, &x);
    const size_t P = dcrw_model_input_size(m), nz = tz(m) * N;
    set_outputs whole, even, odd;
    set_outputs_init(&whole, m), set_outputs_init(&even, m), set_outputs_init(&odd, m);
    ck_assert_int_eq(dcrw_set_threads(2), DCRW_OK);
    run_part(m, x, 0, N, &whole);
    ck_assert_int_eq(dcrw_set_threads(1), DCRW_OK);
    run_part(m, x, 0, 5, &even);
    run_part(m, x, 5, 5, &even);
    run_part(m, x, 0, 3, &odd);
    run_part(m, x, 3, 7, &odd);
    dcrw_set_threads(0);
    assert_same_outputs(&whole, &even, nz, P, "parts of 5 and 5");
    assert_same_outputs(&whole, &odd, nz, P, "parts of 3 and 7");
    /* the noise itself: the draws of image 3 .. 9 as a part and in the set */
    float *all = malloc(nz * sizeof *all), *part = malloc(nz * sizeof *part);
    float *back = malloc(nz * sizeof *back);
    dcrw_pass_draw_noise(m, N, 77, DCRW_STREAM_POSTERIOR, 0, all);
    dcrw_pass_draw_noise(m, 3, 77, DCRW_STREAM_POSTERIOR, 0, part);
    dcrw_sizes sz = {.size = sizeof sz};
    dcrw_model_sizes(m, &sz);
    put_part(back, part, (int)sz.glimpses, N, 0, 3, (int)sz.z);
    dcrw_pass_draw_noise(m, 7, 77, DCRW_STREAM_POSTERIOR, 3, part);
    put_part(back, part, (int)sz.glimpses, N, 3, 7, (int)sz.z);
    ck_assert_int_eq(memcmp(all, back, nz * sizeof *all), 0);
    free(all), free(part), free(back);
    set_outputs_free(&whole), set_outputs_free(&even), set_outputs_free(&odd);
    dcrw_model_destroy(m);
    free(x);
}
END_TEST

/* The library's noise is Box-Muller on the bits of lib/rng.h: pair j of glimpse
 * t of image b comes from rng_u64(rng_key(seed, stream, first + b),
 * t·⌈Z/2⌉ + j), u1 = (its bits 40..63 + 1)/2^24, u2 = bits 8..31 / 2^24,
 * (z0, z1) = √(−2 ln u1)·(cos 2πu2, sin 2πu2); an odd Z keeps the last
 * pair's cosine. Each value within float rounding of that formula in
 * double, over 100,000 values or more; and their moments are a normal's. */
START_TEST(test_noise_box_muller) {
    dcrw_config c = tu_tiny_config(1);
    c.glimpses = 50;
    c.z_size = 2 * (_i + 10) + _i; /* 20, even; 23, odd */
    dcrw_model *m;
    ck_assert_int_eq(dcrw_model_create(&m, &c, 1), DCRW_OK);
    const int B = 100, T = c.glimpses, Z = c.z_size;
    const size_t n = (size_t)T * B * Z;
    float *eps = malloc(n * sizeof *eps);
    ck_assert_ptr_nonnull(eps);
    dcrw_pass_draw_noise(m, B, 5, DCRW_STREAM_POSTERIOR, 1000, eps);
    double worst = 0.0, s1 = 0.0, s2 = 0.0, s4 = 0.0;
    for (int b = 0; b < B; b++) {
        const uint64_t key = rng_key(5, DCRW_STREAM_POSTERIOR, 1000 + (uint64_t)b);
        for (int t = 0; t < T; t++)
            for (int k = 0; k < Z; k++) {
                const uint64_t u =
                    rng_u64(key, (uint64_t)t * (uint64_t)((Z + 1) / 2) + (uint64_t)(k / 2));
                const double u1 = ((double)(u >> 40) + 1.0) / 16777216.0;
                const double u2 = (double)((u >> 8) & 0xffffffu) / 16777216.0;
                const double r = sqrt(-2.0 * log(u1)), a = 6.283185307179586 * u2;
                const double ref = k % 2 ? r * sin(a) : r * cos(a);
                const double got = eps[((size_t)t * B + b) * Z + k];
                const double err = fabs(got - ref);
                if (err > worst) worst = err;
                ck_assert_msg(err <= 2e-6, "image %d glimpse %d z %d: %.9g, expected %.9g", b, t, k,
                              got, ref);
                s1 += got, s2 += got * got, s4 += got * got * got * got;
            }
    }
    const double mean = s1 / (double)n, var = s2 / (double)n - mean * mean, m4 = s4 / (double)n;
    /* n >= 100,000: standard errors at most 0.0032 for the mean, 0.0045 for
     * the variance, 0.031 for the fourth moment (3) */
    ck_assert_msg(fabs(mean) < 0.015 && fabs(var - 1.0) < 0.02 && fabs(m4 - 3.0) < 0.15,
                  "mean %g, variance %g, fourth moment %g", mean, var, m4);
    printf("noise, Z = %d: largest difference from the formula in double %.2g\n", Z, worst);
    free(eps);
    dcrw_model_destroy(m);
}
END_TEST

/* The plain calls are the part calls with seed 0 and first 0; another seed
 * or another index gives other noise. */
START_TEST(test_parts_and_plain_calls) {
    float *x;
    dcrw_model *m = small_model(DCRW_PRESET_DRAW, &x);
    const size_t P = dcrw_model_input_size(m);
    double lx[N], lz[N], px[N], pz[N];
    ck_assert_int_eq(dcrw_evaluate_images(m, N, x, NULL, lx, lz), DCRW_OK);
    ck_assert_int_eq(dcrw_evaluate_images_part(m, N, x, 0, 0, px, pz), DCRW_OK);
    ck_assert_int_eq(memcmp(lx, px, sizeof lx), 0);
    ck_assert_int_eq(memcmp(lz, pz, sizeof lz), 0);
    float *a = malloc(N * P * sizeof *a), *b = malloc(N * P * sizeof *b);
    ck_assert_int_eq(dcrw_decode(m, N, NULL, 9, a, NULL), DCRW_OK);
    ck_assert_int_eq(dcrw_decode_part(m, N, 9, 0, b, NULL, NULL), DCRW_OK);
    ck_assert_int_eq(memcmp(a, b, N * P * sizeof *a), 0);
    ck_assert_int_eq(dcrw_decode_part(m, N, 10, 0, b, NULL, NULL), DCRW_OK);
    ck_assert_int_ne(memcmp(a, b, N * P * sizeof *a), 0);
    /* image 0 as the first image of the set, then as image 1 */
    ck_assert_int_eq(dcrw_evaluate_images_part(m, 1, x, 0, 1, px, NULL), DCRW_OK);
    ck_assert(px[0] != lx[0]);
    ck_assert_int_eq(dcrw_evaluate_images_part(m, 1, x, 5, 0, px, NULL), DCRW_OK);
    ck_assert(px[0] != lx[0]);
    free(a), free(b);
    dcrw_model_destroy(m);
    free(x);
}
END_TEST

START_TEST(test_parts_refuse) {
    float *x;
    dcrw_model *m = small_model(DCRW_PRESET_DCRW, &x);
    double lx[N], iw[N];
    float img[144];
    ck_assert_int_eq(dcrw_evaluate_images_part(m, N, x, 0, -1, lx, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_evaluate_images_part(m, N, x, 0, INT64_MAX - 9, lx, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_evaluate_images_part(m, N, x, 0, INT64_MAX - 10, lx, NULL), DCRW_OK);
    ck_assert_int_eq(dcrw_evaluate_images_part(m, N, x, 0, 0, NULL, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_evaluate_images_part(NULL, N, x, 0, 0, lx, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_evaluate_images_part(m, 0, x, 0, 0, lx, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_encode_part(m, N, x, 0, -5, NULL, NULL, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_reconstruct_part(m, 1, x, 0, -5, img, NULL, NULL, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_decode_part(m, 1, 0, -5, img, NULL, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_decode_part(m, 1, 0, 0, NULL, NULL, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_evaluate_iw(m, N, x, 0, 0, 0, iw, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_evaluate_iw(m, N, x, 2, 0, 0, NULL, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_evaluate_iw(m, N, x, 2, 0, -1, iw, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_evaluate_iw(m, N, NULL, 2, 0, 0, iw, NULL), DCRW_EINVAL);
    x[7] = 1.5f;
    ck_assert_int_eq(dcrw_evaluate_iw(m, N, x, 2, 0, 0, iw, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_evaluate_images_part(m, N, x, 0, 0, lx, NULL), DCRW_EINVAL);
    x[7] = NAN;
    ck_assert_int_eq(dcrw_evaluate_iw(m, N, x, 2, 0, 0, iw, NULL), DCRW_ENUMERIC);
    dcrw_model_destroy(m);
    free(x);
}
END_TEST

/* ---- the importance-weighted bound --------------------------------------- */

/* log p(z) − log q(z|x) of image b from the draws, as a person would write
 * it: the densities of N(0, I) and N(μ, σ²) at z, in double. */
static double log_ratio(const float *z, const float *eps, const float *ls, int T, int B, int b,
                        int Z) {
    double r = 0.0;
    for (int t = 0; t < T; t++)
        for (int j = 0; j < Z; j++) {
            size_t at = ((size_t)t * B + b) * Z + j;
            double lp = -0.5 * (double)z[at] * z[at] - HALF_LOG_2PI;
            double lq = -0.5 * (double)eps[at] * eps[at] - ls[at] - HALF_LOG_2PI;
            r += lp - lq;
        }
    return r;
}

/* The bound against a direct computation: each sample's noise drawn as
 * dcrw.h says (sample 0 the evaluation's, the others streams of their own),
 * passed explicitly to dcrw_encode() and dcrw_evaluate_images(), the
 * log-weights formed by hand and their log-mean-exp taken directly. */
START_TEST(test_iw_brute_force) {
    float *x;
    dcrw_model *m = small_model((dcrw_preset)_i, &x);
    dcrw_sizes sz = {.size = sizeof sz};
    dcrw_model_sizes(m, &sz);
    const int T = (int)sz.glimpses, Z = (int)sz.z, K = 4;
    const uint64_t seed = 5;
    const int64_t first = 1000;
    double iw[N], logw[N * K], want[N * K], lx[N];
    ck_assert_int_eq(dcrw_evaluate_iw(m, N, x, K, seed, first, iw, logw), DCRW_OK);
    float *eps = malloc(tz(m) * N * sizeof *eps), *z = malloc(tz(m) * N * sizeof *z),
          *ls = malloc(tz(m) * N * sizeof *ls);
    for (int k = 0; k < K; k++) {
        const uint64_t stream = k ? DCRW_STREAM_IW ^ ((uint64_t)k << 32) : DCRW_STREAM_POSTERIOR;
        dcrw_pass_draw_noise(m, N, seed, stream, (uint64_t)first, eps);
        ck_assert_int_eq(dcrw_encode(m, N, x, eps, z, NULL, ls), DCRW_OK);
        ck_assert_int_eq(dcrw_evaluate_images(m, N, x, eps, lx, NULL), DCRW_OK);
        for (int b = 0; b < N; b++) want[b * K + k] = -lx[b] + log_ratio(z, eps, ls, T, N, b, Z);
    }
    for (int b = 0; b < N; b++) {
        double mx = -INFINITY, s = 0.0;
        for (int k = 0; k < K; k++) {
            ck_assert_msg(fabs(logw[b * K + k] - want[b * K + k]) <= 1e-9 * fabs(want[b * K + k]),
                          "image %d sample %d: %.17g, by hand %.17g", b, k, logw[b * K + k],
                          want[b * K + k]);
            mx = fmax(mx, want[b * K + k]);
        }
        for (int k = 0; k < K; k++) s += exp(want[b * K + k] - mx);
        const double bound = -(mx + log(s / K));
        ck_assert_msg(fabs(iw[b] - bound) <= 1e-9 * fabs(bound), "image %d: %.17g vs %.17g", b,
                      iw[b], bound);
        /* distinct samples, so the bound is not one of them repeated */
        ck_assert(logw[b * K] != logw[b * K + 1]);
    }
    /* the iw output alone gives the same numbers */
    double iw2[N];
    ck_assert_int_eq(dcrw_evaluate_iw(m, N, x, K, seed, first, iw2, NULL), DCRW_OK);
    ck_assert_int_eq(memcmp(iw, iw2, sizeof iw), 0);
    free(eps), free(z), free(ls);
    dcrw_model_destroy(m);
    free(x);
}
END_TEST

/* K = 1: one sample, the evaluation's own (same seed and first): its Lx is
 * dcrw_evaluate_images_part()'s exactly, and L_1 = Lx + log q − log p of
 * dcrw_encode_part()'s z. Averaged over many samples the single-sample KL
 * estimate approaches Lz: the bound is an estimate of L = Lx + Lz. */
START_TEST(test_iw_one_sample) {
    float *x;
    dcrw_model *m = small_model(DCRW_PRESET_DRAW, &x);
    dcrw_sizes sz = {.size = sizeof sz};
    dcrw_model_sizes(m, &sz);
    const int T = (int)sz.glimpses, Z = (int)sz.z;
    double iw[N], logw[N], lx[N], lz[N];
    ck_assert_int_eq(dcrw_evaluate_iw(m, N, x, 1, 3, 20, iw, logw), DCRW_OK);
    ck_assert_int_eq(dcrw_evaluate_images_part(m, N, x, 3, 20, lx, lz), DCRW_OK);
    float *z = malloc(tz(m) * N * sizeof *z), *mu = malloc(tz(m) * N * sizeof *mu),
          *ls = malloc(tz(m) * N * sizeof *ls), *eps = malloc(tz(m) * N * sizeof *eps);
    ck_assert_int_eq(dcrw_encode_part(m, N, x, 3, 20, z, mu, ls), DCRW_OK);
    for (size_t i = 0; i < tz(m) * N; i++) eps[i] = (z[i] - mu[i]) / expf(ls[i]);
    for (int b = 0; b < N; b++) {
        ck_assert(iw[b] == -logw[b]);
        const double want = lx[b] - log_ratio(z, eps, ls, T, N, b, Z);
        ck_assert_msg(fabs(iw[b] - want) <= 1e-5 * fabs(want), "image %d: %.9g vs %.9g", b, iw[b],
                      want);
    }
    /* the mean over 400 samples of Lx + log q − log p is L within its noise */
    enum { K = 400 };
    double *lw = malloc((size_t)N * K * sizeof *lw);
    ck_assert_int_eq(dcrw_evaluate_iw(m, N, x, K, 3, 20, NULL, lw), DCRW_OK);
    for (int b = 0; b < N; b++) {
        double mean = 0, var = 0;
        for (int k = 0; k < K; k++) mean += -lw[b * K + k] / K;
        for (int k = 0; k < K; k++) var += pow(-lw[b * K + k] - mean, 2) / (K - 1);
        ck_assert_msg(fabs(mean - (lx[b] + lz[b])) <= 5 * sqrt(var / K) + 1e-3,
                      "image %d: mean %.6g, L %.6g, se %.3g", b, mean, lx[b] + lz[b],
                      sqrt(var / K));
    }
    free(lw), free(z), free(mu), free(ls), free(eps);
    dcrw_model_destroy(m);
    free(x);
}
END_TEST

/* ---- checkpoint summaries ------------------------------------------------- */

static char *join(const char *dir, const char *name) {
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

START_TEST(test_checkpoint_info) {
    float *x;
    dcrw_model *m = small_model(DCRW_PRESET_DRAW, &x);
    char *dir = tu_tmpdir(), *mp = join(dir, "m.safetensors"), *tp = join(dir, "t.safetensors");
    ck_assert_int_eq(dcrw_model_save(m, mp), DCRW_OK);
    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    dcrw_trainer *t;
    ck_assert_int_eq(dcrw_trainer_create(&t, m, &tc), DCRW_OK);
    for (int s = 0; s < 3; s++) ck_assert_int_eq(dcrw_trainer_step(t, N, x, NULL, NULL), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_save(t, tp), DCRW_OK);
    dcrw_trainer_destroy(t);

    dcrw_checkpoint_summary s = {.size = sizeof s};
    dcrw_config c = {.size = sizeof c}, mc = {.size = sizeof mc};
    ck_assert_int_eq(dcrw_model_config(m, &mc), DCRW_OK);
    ck_assert_int_eq(dcrw_checkpoint_info(mp, &s, &c), DCRW_OK);
    ck_assert_uint_eq(s.size, sizeof s);
    /* the preset of the architecture, whatever the sizes */
    ck_assert_str_eq(s.preset, "draw");
    ck_assert_int_eq(s.has_step, 0);
    ck_assert_uint_eq(s.step, 0);
    ck_assert_int_eq(s.optimizer, 0);
    ck_assert_uint_eq(s.params, dcrw_model_param_floats(m));
    ck_assert_uint_eq(s.tensors, dcrw_model_param_count(m));
    ck_assert_int_eq(memcmp(&c, &mc, sizeof c), 0);

    memset(&s, 0xff, sizeof s);
    s.size = sizeof s;
    ck_assert_int_eq(dcrw_checkpoint_info(tp, &s, NULL), DCRW_OK);
    ck_assert_int_eq(s.has_step, 1);
    ck_assert_uint_eq(s.step, 3);
    ck_assert_int_eq(s.optimizer, 1);
    ck_assert_uint_eq(s.params, dcrw_model_param_floats(m));

    /* refusals: arguments, sizes, and a file the loader would refuse */
    ck_assert_int_eq(dcrw_checkpoint_info(NULL, &s, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_checkpoint_info(mp, NULL, NULL), DCRW_EINVAL);
    s.size = 8;
    ck_assert_int_eq(dcrw_checkpoint_info(mp, &s, NULL), DCRW_EINVAL);
    s.size = sizeof s;
    c.size = 12;
    ck_assert_int_eq(dcrw_checkpoint_info(mp, &s, &c), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_checkpoint_info(dir, &s, NULL), DCRW_EIO);
    char *none = join(dir, "none.safetensors");
    ck_assert_int_eq(dcrw_checkpoint_info(none, &s, NULL), DCRW_EIO);
    free(none);
    dcrw_model_destroy(m);
    free(x), free(mp), free(tp);
    tu_rmdir(dir);
}
END_TEST

/* A file whose header is whole but whose data holds a NaN: the summary
 * (header only) is given, the loader refuses the file. A file cut short is
 * refused by both, since the header is checked against the file's size. */
START_TEST(test_checkpoint_info_header_only) {
    float *x;
    dcrw_model *m = small_model(DCRW_PRESET_DCRW, &x);
    char *dir = tu_tmpdir(), *mp = join(dir, "m.safetensors");
    ck_assert_int_eq(dcrw_model_save(m, mp), DCRW_OK);
    size_t n;
    unsigned char *bytes = tu_read_file(mp, &n);
    const float nan = NAN;
    memcpy(bytes + n - 4, &nan, 4); /* the last float of the last tensor */
    FILE *f = fopen(mp, "wb");
    fwrite(bytes, 1, n, f);
    fclose(f);
    dcrw_checkpoint_summary s = {.size = sizeof s};
    ck_assert_int_eq(dcrw_checkpoint_info(mp, &s, NULL), DCRW_OK);
    ck_assert_str_eq(s.preset, "dcrw");
    dcrw_model *back;
    ck_assert_int_eq(dcrw_model_load(&back, mp), DCRW_ENUMERIC);
    f = fopen(mp, "wb");
    fwrite(bytes, 1, n - 4, f);
    fclose(f);
    ck_assert_int_eq(dcrw_checkpoint_info(mp, &s, NULL), DCRW_ETRUNCATED);
    free(bytes);
    dcrw_model_destroy(m);
    free(x), free(mp);
    tu_rmdir(dir);
}
END_TEST

/* ---- the calling thread's workspace -------------------------------------- */

/* A repeated call reuses the thread's workspace (it allocates nothing, so
 * an allocation made to fail is never reached); after
 * dcrw_workspace_release() the next call must allocate a new one. */
START_TEST(test_workspace_release) {
    float *x;
    dcrw_model *m = small_model(DCRW_PRESET_DRAW_NOATTN, &x);
    double lx[N];
    dcrw_workspace_release(); /* nothing kept yet: a no-op */
    ck_assert_int_eq(dcrw_evaluate_images(m, N, x, NULL, lx, NULL), DCRW_OK);
    dcrw_test_alloc_fail_after(0);
    ck_assert_int_eq(dcrw_evaluate_images(m, N, x, NULL, lx, NULL), DCRW_OK);
    ck_assert_int_eq(dcrw_test_alloc_fail_after(-1), 0); /* still armed: nothing allocated */
    dcrw_workspace_release();
    dcrw_test_alloc_fail_after(0);
    ck_assert_int_eq(dcrw_evaluate_images(m, N, x, NULL, lx, NULL), DCRW_ENOMEM);
    dcrw_test_alloc_fail_after(-1);
    ck_assert_int_eq(dcrw_evaluate_images(m, N, x, NULL, lx, NULL), DCRW_OK);
    dcrw_workspace_release();
    dcrw_workspace_release();
    dcrw_model_destroy(m);
    free(x);
}
END_TEST

/* The parameters may be written between calls through the pointers the
 * API hands out: the next call (its workspace reused) and the next
 * training step (its runner reused) must use the new values, as a fresh
 * workspace and a fresh trainer do. */
START_TEST(test_written_params_are_used) {
    float *x;
    dcrw_model *m = small_model((dcrw_preset)_i, &x);
    const size_t P = dcrw_model_input_size(m);
    size_t n;
    float *params = dcrw_model_params(m, &n);
    double lx0[N], lx[N], lx_fresh[N];
    float *img = malloc(N * P * sizeof *img), *img_fresh = malloc(N * P * sizeof *img);
    dcrw_trainer *t, *fresh;
    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    ck_assert_int_eq(dcrw_trainer_create(&t, m, &tc), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_backward(t, N, x, NULL, NULL), DCRW_OK);
    ck_assert_int_eq(dcrw_evaluate_images(m, N, x, NULL, lx0, NULL), DCRW_OK);
    ck_assert_int_eq(dcrw_decode(m, N, NULL, 5, img, NULL), DCRW_OK);
    for (size_t i = 0; i < n; i++) params[i] *= 1.25f;

    ck_assert_int_eq(dcrw_evaluate_images(m, N, x, NULL, lx, NULL), DCRW_OK);
    ck_assert_int_ne(memcmp(lx, lx0, sizeof lx), 0);
    ck_assert_int_eq(dcrw_decode(m, N, NULL, 5, img, NULL), DCRW_OK);
    dcrw_workspace_release();
    ck_assert_int_eq(dcrw_evaluate_images(m, N, x, NULL, lx_fresh, NULL), DCRW_OK);
    ck_assert_int_eq(memcmp(lx, lx_fresh, sizeof lx), 0);
    dcrw_workspace_release();
    ck_assert_int_eq(dcrw_decode(m, N, NULL, 5, img_fresh, NULL), DCRW_OK);
    ck_assert_int_eq(memcmp(img, img_fresh, N * P * sizeof *img), 0);

    ck_assert_int_eq(dcrw_trainer_backward(t, N, x, NULL, NULL), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_create(&fresh, m, &tc), DCRW_OK);
    ck_assert_int_eq(dcrw_trainer_backward(fresh, N, x, NULL, NULL), DCRW_OK);
    ck_assert_int_eq(
        memcmp(dcrw_trainer_grads(t, NULL), dcrw_trainer_grads(fresh, NULL), n * sizeof(float)), 0);
    dcrw_trainer_destroy(fresh);
    dcrw_trainer_destroy(t);
    dcrw_workspace_release();
    dcrw_model_destroy(m);
    free(x), free(img), free(img_fresh);
}
END_TEST

int main(void) {
    Suite *s = suite_create("api");
    TCase *tc = tcase_create("api");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_parts_match_whole, 0, 4);
    tcase_add_loop_test(tc, test_noise_box_muller, 0, 2);
    tcase_add_test(tc, test_parts_and_plain_calls);
    tcase_add_test(tc, test_parts_refuse);
    tcase_add_loop_test(tc, test_iw_brute_force, 0, 4);
    tcase_add_test(tc, test_iw_one_sample);
    tcase_add_test(tc, test_checkpoint_info);
    tcase_add_test(tc, test_checkpoint_info_header_only);
    tcase_add_test(tc, test_workspace_release);
    tcase_add_loop_test(tc, test_written_params_are_used, 0, 4);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
