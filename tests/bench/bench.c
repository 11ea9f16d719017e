/* The benchmark: training-step throughput of the four presets at the
 * paper's MNIST sizes (batch 100), against the machine's own sgemm peak
 * measured in the same run; sampling and evaluation throughput; memory.
 *
 *   build/tests/bench/dcrw-bench [--steps 10] [--threads N] [--batch 100]
 *                                [--presets draw,dcrw,...] [--pgemm c|avx2|avx512]
 *                                [--no-products | --products-only] [--rows M]
 *                                [--model-products packed|sgemm] [--ab N]
 *                                [--precision float32|bf16] [--ab-precision N]
 *                                [--scaling]
 * or `meson test -C build --benchmark`.
 *
 * --precision bf16 trains and evaluates the models with bfloat16 products
 * (dcrw_model_set_precision; AVX-512 BF16); --ab-precision N compares
 * float32 and bf16 step by step in one process, as --ab does the kernels.
 *
 * --scaling: the cost model of the batch split past this machine's cores.
 * A step on p threads splits the batch into chunks of ⌈B/p⌉ images, each a
 * whole pass on its thread, then sums the p gradients (each thread adds
 * p−1 slices of 1/p of them) and takes one Adam step. Measured here, one
 * thread at a time: the weight products of a chunk at ⌈B/p⌉ rows (their
 * speed falls with the rows), the rest of a one-thread step per image
 * (elementwise work, filterbanks, convolutions: linear in the images), one
 * Adam step and the float adds of the sum. Predicted:
 *   step(p) = products(⌈B/p⌉) + rest·⌈B/p⌉/B + adds·(p−1)/p + adam.
 * It leaves out what the machine cannot show: memory bandwidth shared by
 * more cores, and the threads' start and join (microseconds). With fewer
 * images than threads a thread gets one image and the others idle.
 *
 * --model-products sgemm makes the model's own products OpenBLAS's alone
 * (the library's choice, packed weights where the CPU has AVX2 or
 * AVX-512, is the default), to compare the two in one build; --ab N
 * compares them step by step in one process (N pairs of steps per preset,
 * the table of ab_table) instead of the other tables; --ab-conv N compares
 * the CNN's second stage by im2col and as one dense product likewise.
 *
 * Ceilings: the sgemm 1024³ rate with the same threads, and the float32
 * FMA rate of one core (a loop of independent FMAs, the widest vectors the
 * CPU has) times the threads. After the presets, every weight product of a
 * training step is timed with cblas_sgemm and with the packed kernel of
 * lib/pgemm.h (tests/bench/products.c).
 *
 * MACs per image of one forward pass (MODEL.md §3-4; the formula of the
 * PyTorch peer's forward_macs, so the two are comparable), every dense,
 * LSTM, convolution and filterbank product:
 *   per glimpse:
 *     read attention:  5·D (attention dense) + 2C·(H·W·N_r + N_r·H·N_r) (FY x FXᵀ)
 *     LSTM encoder:    4E·(Rin + E) + 2·Z·Q
 *     CNN, read:       N_r²·K1·2C·9 + ⌊N_r/2⌋²·K2·K1·9 + 2·Z·Q
 *     decoder:         4D·(Z + D)
 *     write attention: 5·D + C·N_w²·D (dense_write) + C·(H·N_w² + H·N_w·W)
 *     no write attn:   P·D
 *   once (dcrw-noread): H·W·K1·C·9 + ⌊H/2⌋⌊W/2⌋·K2·K1·9 + 2·Z·Q
 * A training step counts 3× the forward (backward = 2× forward); a FLOP is
 * 2 MACs. Sampling counts the decoder and write only; evaluation the
 * forward. The "executed" column counts conv2 as the library runs it where
 * it is one dense product (the four outputs pool 2 reads, K1·p1²·K2·4
 * multiply-adds with the expanded weight's zeros): the % of the sgemm peak
 * of the work done, where the first % is of the model's nominal work. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cblas.h>

#include "benchutil.h"
#include "dcrw/dcrw.h"
#include "pass.h"
#include "products.h"
#include "rng.h"

#if defined(I)
#undef I
#endif

void openblas_set_num_threads(int);
int openblas_get_num_threads(void);

static double sgemm_peak(void) {
    const int n = 1024;
    float *a = malloc((size_t)n * n * 4), *b = malloc((size_t)n * n * 4),
          *c = malloc((size_t)n * n * 4);
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = b[i] = 1.0f / (1 + i % 7);
    double t[15];
    for (int r = 0; r < 18; r++) {
        double t0 = bench_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c,
                    n);
        if (r >= 3) t[r - 3] = bench_now() - t0;
    }
    free(a), free(b), free(c);
    return 2.0 * n * n * (double)n / bench_median(t, 15) / 1e9;
}

typedef struct macs {
    double forward, decoder; /* per image */
    double executed;         /* the forward as the library runs it */
} macs;

static macs count_macs(const dcrw_config *c) {
    const double C = c->channels, H = c->height, W = c->width, P = C * H * W, T = c->glimpses,
                 E = c->enc_size, D = c->dec_size, Z = c->z_size, Nr = c->read_n, Nw = c->write_n,
                 K1 = c->conv1, K2 = c->conv2;
    const int ra = c->read_attention, wa = c->write_attention, cnn = c->encoder == DCRW_ENCODER_CNN;
    double per = 0, once = 0, dec = 0, saved = 0;
    if (ra) per += 5 * D + 2 * C * (H * W * Nr + Nr * H * Nr);
    if (!cnn) {
        double Rin = (ra ? 2 * C * Nr * Nr : 2 * P) + D;
        per += 4 * E * (Rin + E) + 2 * Z * E;
    } else if (ra) {
        double p1 = (double)(c->read_n / 2), p2 = (double)((c->read_n / 2) / 2);
        double Q = K2 * p2 * p2 + D;
        per += Nr * Nr * K1 * 2 * C * 9 + p1 * p1 * K2 * K1 * 9 + 2 * Z * Q;
        /* where pool 2 leaves one pixel of a plane of at most 3×3, conv2
         * is one product for the 4 outputs it reads (lib/conv.c) */
        const double U = (double)((c->read_n / 2) / 2 * 2) * ((c->read_n / 2) / 2 * 2);
        if (U > 0 && U <= 9) saved = T * (p1 * p1 * K2 * K1 * 9 - K1 * p1 * p1 * K2 * U);
    } else {
        double Q = K2 * (double)((c->height / 2) / 2) * (double)((c->width / 2) / 2);
        once += H * W * K1 * C * 9 +
                (double)(c->height / 2) * (double)(c->width / 2) * K2 * K1 * 9 + 2 * Z * Q;
    }
    dec += 4 * D * (Z + D);
    dec += wa ? 5 * D + C * Nw * Nw * D + C * (H * Nw * Nw + H * Nw * W) : P * D;
    macs m = {once + T * (per + dec), T * dec, once + T * (per + dec) - saved};
    return m;
}

/* What a preset's row needs; peak and fma_peak for train_table only. */
typedef struct run_args {
    int B, threads, steps;
    double peak, fma_peak;
    int precision; /* of the model, dcrw_precision */
} run_args;

static void run_preset(dcrw_preset preset, const run_args *a) {
    const int B = a->B, threads = a->threads, steps = a->steps;
    const double peak = a->peak, fma_peak = a->fma_peak;
    dcrw_config c;
    dcrw_config_preset(&c, preset);
    dcrw_model *m;
    if (dcrw_model_create(&m, &c, 1) != DCRW_OK ||
        dcrw_model_set_precision(m, a->precision) != DCRW_OK) {
        fprintf(stderr, "%s\n", dcrw_last_error());
        exit(1);
    }
    const int P = (int)dcrw_model_input_size(m);
    float *x = malloc((size_t)4 * B * P * 4), *img = malloc((size_t)B * P * 4);
    uint64_t key = rng_key(3, 4, 5);
    for (size_t i = 0; i < (size_t)4 * B * P; i++) x[i] = rng_uniform(key, i) < 0.5f;
    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    tc.clip_norm = 0; /* as the peer's bench */
    tc.threads = threads;
    dcrw_set_threads(threads); /* evaluation and sampling */
    dcrw_trainer *t;
    dcrw_trainer_create(&t, m, &tc);
    double *ts = malloc(sizeof(double) * (size_t)steps);
    for (int i = 0; i < steps + 2; i++) {
        double t0 = bench_now();
        if (dcrw_trainer_step(t, B, x + (size_t)(i % 4) * B * P, NULL, NULL) != DCRW_OK) {
            fprintf(stderr, "step: %s\n", dcrw_last_error());
            exit(1);
        }
        if (i >= 2) ts[i - 2] = bench_now() - t0;
    }
    const double step = bench_median(ts, steps);
    /* training's peak, before evaluation and sampling add their own */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double ev[5], sm[5];
    dcrw_loss l;
    for (int i = 0; i < 6; i++) {
        double t0 = bench_now();
        dcrw_evaluate(m, B, x, NULL, &l);
        if (i) ev[i - 1] = bench_now() - t0;
        t0 = bench_now();
        dcrw_decode(m, B, NULL, (uint64_t)i, img, NULL);
        if (i) sm[i - 1] = bench_now() - t0;
    }
    const double evt = bench_median(ev, 5), smt = bench_median(sm, 5);
    /* what backpropagation through time keeps: the training workspace */
    dcrw_pass *ps;
    dcrw_pass_create(&ps, m, B, 1, 1);
    const double act_mb = ps->bytes / 1048576.0;
    dcrw_pass_destroy(ps);
    const macs mc = count_macs(&c);
    const double gflops = 2 * 3 * mc.forward * B / step / 1e9;
    printf(
        "| %-11s | %8.1f | %7.1f | %6.1f | %6.1f | %5.1f%% | %5.1f%% | %5.1f%% | %8.0f | %5.1f%% | "
        "%8.0f | %5.1f%% | %7.1f | %7.1f |\n",
        dcrw_preset_name(preset), 1e3 * step, B / step, 3 * mc.forward / 1e6, gflops,
        100 * gflops / peak, 100 * gflops * mc.executed / mc.forward / peak,
        100 * gflops / fma_peak, B / evt, 100 * (2 * mc.forward * B / evt / 1e9) / peak, B / smt,
        100 * (2 * mc.decoder * B / smt / 1e9) / peak, act_mb, ru.ru_maxrss / 1024.0);
    fflush(stdout);
    dcrw_trainer_destroy(t);
    dcrw_model_destroy(m);
    free(x), free(img), free(ts);
}

/* row(p, a) for each preset in the comma-separated list, each in a child
 * process of its own, so that peak RSS is that preset's and one preset's
 * threads and caches leave the next alone; 2 for an unknown name, 1 if a
 * child failed. */
static int each_preset_in_child(const char *presets, void (*row)(dcrw_preset, const run_args *),
                                const run_args *a) {
    char *list = strdup(presets);
    int rc = 0;
    for (char *name = strtok(list, ","); name && !rc; name = strtok(NULL, ",")) {
        dcrw_preset p;
        if (dcrw_preset_from_name(name, &p) != DCRW_OK) {
            fprintf(stderr, "%s\n", dcrw_last_error());
            rc = 2;
            break;
        }
        pid_t pid = fork();
        if (pid == 0) {
            row(p, a);
            _exit(0);
        }
        int st;
        waitpid(pid, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) rc = 1;
    }
    free(list);
    return rc;
}

static int train_table(const char *presets, const run_args *a) {
    printf("\n| preset      | ms/step  | img/s   | MMAC/img/step | GFLOP/s | %% sgemm peak | "
           "executed | %% FMA peak | eval img/s | %% peak | sample img/s | %% peak | BPTT MiB | "
           "training peak RSS MiB |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    fflush(stdout);
    return each_preset_in_child(presets, run_preset, a);
}

/* Two trainers that differ in one way take turns, step by step, so that a
 * busy machine slows both alike: the median ms of each side's backward
 * (forward and backward; the Adam step is the same for both) and of the
 * pairs' ratios. Side k's model is models[k]; setup(k) runs before side k's
 * trainer takes its first step (a runner keeps what it was made with). */
static void ab_compare(dcrw_preset preset, const run_args *args, dcrw_model *const models[2],
                       void (*setup)(int k)) {
    const int B = args->B, steps = args->steps;
    const int P = (int)dcrw_model_input_size(models[0]);
    float *x = malloc((size_t)B * P * 4);
    uint64_t key = rng_key(3, 4, 5);
    for (size_t i = 0; i < (size_t)B * P; i++) x[i] = rng_uniform(key, i) < 0.5f;
    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    tc.threads = args->threads;
    dcrw_trainer *t[2];
    double *ms = malloc(sizeof(double) * 3 * (size_t)steps), *ratio = ms + 2 * steps;
    for (int k = 0; k < 2; k++) {
        if (setup) setup(k);
        dcrw_trainer_create(&t[k], models[k], &tc);
        dcrw_trainer_backward(t[k], B, x, NULL, NULL);
    }
    for (int i = 0; i < steps; i++) {
        for (int k = 0; k < 2; k++) {
            const int w = i % 2 ? 1 - k : k; /* alternate which goes first */
            double t0 = bench_now();
            if (dcrw_trainer_backward(t[w], B, x, NULL, NULL) != DCRW_OK) exit(1);
            ms[w * steps + i] = 1e3 * (bench_now() - t0);
        }
        ratio[i] = ms[i] / ms[steps + i];
    }
    printf("| %-11s | %8.1f | %8.1f | %5.3f× |\n", dcrw_preset_name(preset),
           bench_median(ms, steps), bench_median(ms + steps, steps), bench_median(ratio, steps));
    fflush(stdout);
    dcrw_trainer_destroy(t[0]), dcrw_trainer_destroy(t[1]);
    free(x), free(ms);
}

static int packed_path;

/* side 0 OpenBLAS alone, side 1 the packed weights */
static void ab_kernel_setup(int k) {
    dcrw_pass_set_gemm_path(k ? packed_path : -1);
}

/* The model's products with OpenBLAS alone against the packed weights, on
 * one model. */
static void ab_preset(dcrw_preset preset, const run_args *args) {
    dcrw_config c;
    dcrw_config_preset(&c, preset);
    dcrw_model *m;
    if (dcrw_model_create(&m, &c, 1) != DCRW_OK) exit(1);
    packed_path = dcrw_pass_gemm_path();
    dcrw_model *const models[2] = {m, m};
    ab_compare(preset, args, models, ab_kernel_setup);
    dcrw_pass_set_gemm_path(packed_path);
    dcrw_model_destroy(m);
}

/* side 0 the CNN's second stage by im2col, side 1 as one dense product */
static void ab_conv_setup(int k) {
    dcrw_pass_set_conv2x(k);
}

static void ab_conv_preset(dcrw_preset preset, const run_args *args) {
    dcrw_config c;
    dcrw_config_preset(&c, preset);
    dcrw_model *m;
    if (dcrw_model_create(&m, &c, 1) != DCRW_OK) exit(1);
    dcrw_model *const models[2] = {m, m};
    ab_compare(preset, args, models, ab_conv_setup);
    dcrw_pass_set_conv2x(1);
    dcrw_model_destroy(m);
}

/* float32 against bf16 products: two models with the same parameters. */
static void ab_precision_preset(dcrw_preset preset, const run_args *args) {
    dcrw_config c;
    dcrw_config_preset(&c, preset);
    dcrw_model *m[2];
    for (int k = 0; k < 2; k++)
        if (dcrw_model_create(&m[k], &c, 1) != DCRW_OK ||
            dcrw_model_set_precision(m[k], k ? DCRW_PRECISION_BF16 : DCRW_PRECISION_FLOAT32))
            exit(1);
    ab_compare(preset, args, m, NULL);
    dcrw_model_destroy(m[0]), dcrw_model_destroy(m[1]);
}

/* The table of an A/B comparison: sides a and b named, one row a preset;
 * nothing but a line when this CPU lacks side b (why). */
static int ab_table(const char *presets, const run_args *args, int have_b, const char *why,
                    const char *a, const char *b, void (*row)(dcrw_preset, const run_args *)) {
    if (!have_b) {
        printf("\n%s: nothing to compare\n", why);
        return 0;
    }
    printf("\n| preset      | %s ms/backward | %s ms/backward | %s/%s (median of %d pairs) "
           "|\n|---|---|---|---|\n",
           a, b, a, b, args->steps);
    fflush(stdout);
    return each_preset_in_child(presets, row, args);
}

/* One preset's row of the scaling model (see the top of this file). */
static void scaling_preset(dcrw_preset preset, const run_args *args) {
    const int B = args->B;
    dcrw_config c;
    dcrw_config_preset(&c, preset);
    dcrw_model *m;
    if (dcrw_model_create(&m, &c, 1) != DCRW_OK || dcrw_model_set_precision(m, args->precision))
        exit(1);
    const int P = (int)dcrw_model_input_size(m);
    float *x = malloc((size_t)B * P * 4);
    uint64_t key = rng_key(3, 4, 5);
    for (size_t i = 0; i < (size_t)B * P; i++) x[i] = rng_uniform(key, i) < 0.5f;
    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    tc.threads = 1;
    dcrw_trainer *t;
    dcrw_trainer_create(&t, m, &tc);
    double step[7], adam[7];
    for (int i = 0; i < 9; i++) {
        double t0 = bench_now();
        if (dcrw_trainer_backward(t, B, x, NULL, NULL) != DCRW_OK) exit(1);
        const double t1 = bench_now();
        if (dcrw_trainer_apply(t) != DCRW_OK) exit(1);
        if (i >= 2) step[i - 2] = bench_now() - t0, adam[i - 2] = bench_now() - t1;
    }
    const double one = bench_median(step, 7), ad = bench_median(adam, 7);
    const pgemm_path path = dcrw_pgemm_path_best();
    const int bf16 = args->precision == DCRW_PRECISION_BF16;
    const double prod_b = step_products_seconds(&c, B, path, bf16, 5);
    const double rest = one - ad - prod_b > 0 ? one - ad - prod_b : 0;
    /* the sum's float adds: one pass over the gradients per added chunk */
    size_t n;
    float *g = dcrw_trainer_grads(t, &n), *h = malloc(n * 4);
    memcpy(h, g, n * 4);
    double ta[5];
    for (int r = 0; r < 5; r++) {
        double t0 = bench_now();
        for (size_t e = 0; e < n; e++) h[e] += g[e];
        ta[r] = bench_now() - t0;
    }
    const double add = bench_median(ta, 5);
    static const int cores[] = {1, 2, 4, 8, 16, 32, 64};
    for (size_t k = 0; k < sizeof cores / sizeof cores[0]; k++) {
        const int p = cores[k], rows = (B + p - 1) / p;
        const double prod = rows == B ? prod_b : step_products_seconds(&c, rows, path, bf16, 5);
        const double s = prod + rest * rows / B + add * (p - 1) / p + ad;
        printf("| %-11s | %3d | %3d | %7.2f | %7.2f | %7.2f | %6.2f | %7.1f | %8.0f | %5.1f%% |\n",
               dcrw_preset_name(preset), p, rows, 1e3 * prod, 1e3 * rest * rows / B,
               1e3 * add * (p - 1) / p, 1e3 * ad, 1e3 * s, B / s, 100 * one / (p * s));
        fflush(stdout);
    }
    free(x), free(h);
    dcrw_trainer_destroy(t);
    dcrw_model_destroy(m);
}

static int scaling_table(const char *presets, const run_args *a) {
    printf("\nScaling model, batch %d: per thread, the weight products of a chunk (measured at "
           "its rows, one thread), the rest of the step (measured at one thread, per image), the "
           "gradient sum's adds and the Adam step; the predicted step, images/s and parallel "
           "efficiency (one-thread step / (cores × step))\n\n"
           "| preset | cores | images/thread | products ms | rest ms | sum ms | Adam ms | "
           "step ms | img/s | efficiency |\n|---|---|---|---|---|---|---|---|---|---|\n",
           a->B);
    fflush(stdout);
    return each_preset_in_child(presets, scaling_preset, a);
}

static int path_from_name(const char *name, pgemm_path *p) {
    for (int i = 0; i < PGEMM_PATH_COUNT; i++)
        if (!strcmp(name, dcrw_pgemm_path_name(i)) && dcrw_pgemm_path_supported(i)) {
            *p = (pgemm_path)i;
            return 1;
        }
    return 0;
}

int main(int argc, char **argv) {
    int steps = 10, B = 100, threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    const char *presets = "draw,draw-noattn,dcrw,dcrw-noread";
    int products = 1, train = 1, rows = 0, model_sgemm = 0, ab = 0, ab_prec = 0, ab_conv = 0;
    int precision = DCRW_PRECISION_FLOAT32, scaling = 0;
    pgemm_path path = dcrw_pgemm_path_best();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            B = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--presets") && i + 1 < argc)
            presets = argv[++i];
        else if (!strcmp(argv[i], "--pgemm") && i + 1 < argc && path_from_name(argv[++i], &path))
            ;
        else if (!strcmp(argv[i], "--no-products"))
            products = 0;
        else if (!strcmp(argv[i], "--products-only"))
            train = 0;
        else if (!strcmp(argv[i], "--rows") && i + 1 < argc)
            rows = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--model-products") && i + 1 < argc &&
                 (!strcmp(argv[i + 1], "sgemm") || !strcmp(argv[i + 1], "packed")))
            model_sgemm = !strcmp(argv[++i], "sgemm");
        else if (!strcmp(argv[i], "--ab") && i + 1 < argc)
            ab = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--scaling"))
            scaling = 1;
        else if (!strcmp(argv[i], "--ab-precision") && i + 1 < argc)
            ab_prec = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ab-conv") && i + 1 < argc)
            ab_conv = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc &&
                 (!strcmp(argv[i + 1], "float32") || !strcmp(argv[i + 1], "bf16")))
            precision = !strcmp(argv[++i], "bf16") ? DCRW_PRECISION_BF16 : DCRW_PRECISION_FLOAT32;
        else {
            fprintf(stderr,
                    "usage: %s [--steps N] [--batch B] [--threads N] [--presets a,b] "
                    "[--pgemm c|avx2|avx512] [--no-products | --products-only] [--rows M] "
                    "[--model-products packed|sgemm] [--ab N] [--precision float32|bf16] "
                    "[--ab-precision N] [--ab-conv N] [--scaling]\n",
                    argv[0]);
            return 2;
        }
    }
    if (steps < 1 || B < 1 || threads < 1 || rows < 0 || ab < 0 || ab_prec < 0 || ab_conv < 0)
        return 2;
    if (!dcrw_precision_supported(precision)) {
        fprintf(stderr, "--precision bf16: this CPU has no AVX-512 BF16\n");
        return 2;
    }
    /* the products' rows: the batch chunk of one thread unless told */
    if (rows == 0) rows = (B + threads - 1) / threads;
    char *names = strdup(presets);
    for (char *name = strtok(names, ","); name; name = strtok(NULL, ",")) {
        dcrw_preset p;
        if (dcrw_preset_from_name(name, &p) != DCRW_OK) {
            fprintf(stderr, "%s\n", dcrw_last_error());
            return 2;
        }
    }
    free(names);
    if (model_sgemm) dcrw_pass_set_gemm_path(-1);
    const int mp = dcrw_pass_gemm_path();
    openblas_set_num_threads(threads);
    const double peak = sgemm_peak();
    const char *fma_how;
    const double fma_core = fma_peak_per_core(&fma_how), bf16_core = bf16_peak_per_core();
    printf("libdcrw %s bench: batch %d, %d threads, median of %d steps after 2 warm-up; sgemm "
           "1024^3 peak %.1f GFLOP/s; float32 FMA peak %.1f GFLOP/s per core (%s), %.1f for %d "
           "threads; bf16 dot-product peak %.1f GFLOP/s per core; model products: %s, %s\n",
           dcrw_version_string(), B, threads, steps, peak, fma_core, fma_how, fma_core * threads,
           threads, bf16_core, mp < 0 ? "OpenBLAS sgemm" : dcrw_pgemm_path_name((pgemm_path)mp),
           precision == DCRW_PRECISION_BF16 ? "bf16" : "float32");
    const run_args a0 = {B, 1, steps, peak, fma_core, precision};
    if (ab)
        return ab_table(presets, &(run_args){B, threads, ab, peak, fma_core * threads, precision},
                        dcrw_pass_gemm_path() >= 0, "no packed path on this CPU", "OpenBLAS",
                        "packed", ab_preset);
    if (scaling) {
        openblas_set_num_threads(1);
        return scaling_table(presets, &a0);
    }
    if (ab_prec)
        return ab_table(presets, &(run_args){B, threads, ab_prec, peak, fma_core * threads, 0},
                        dcrw_precision_supported(DCRW_PRECISION_BF16),
                        "no AVX-512 BF16 on this CPU", "float32", "bf16", ab_precision_preset);
    if (ab_conv)
        return ab_table(presets, &(run_args){B, threads, ab_conv, peak, fma_core * threads, 0}, 1,
                        "", "im2col", "dense", ab_conv_preset);
    const run_args a = {B, threads, steps, peak, fma_core * threads, precision};
    if (train && train_table(presets, &a)) return 1;
    if (products) products_table(presets, rows, path, 11);
    openblas_set_num_threads(threads);
    printf("\nsgemm 1024^3 after: %.1f GFLOP/s\n", sgemm_peak());
    return 0;
}
