/* The benchmark: training-step throughput of the four presets at the
 * paper's MNIST sizes (batch 100), against the machine's own sgemm peak
 * measured in the same run; sampling and evaluation throughput; memory.
 *
 *   build/tests/bench/dcrw-bench [--steps 10] [--threads N] [--batch 100]
 *                                [--presets draw,dcrw,...] [--pgemm c|avx2|avx512]
 *                                [--no-products | --products-only] [--rows M]
 *                                [--model-products packed|sgemm] [--ab N]
 * or `meson test -C build --benchmark`.
 *
 * --model-products sgemm makes the model's own products OpenBLAS's alone
 * (the library's choice, packed weights where the CPU has AVX2 or
 * AVX-512, is the default), to compare the two in one build; --ab N
 * compares them step by step in one process (N pairs of steps per preset,
 * the table of ab_table) instead of the other tables.
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
 * forward. */
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
} macs;

static macs count_macs(const dcrw_config *c) {
    const double C = c->channels, H = c->height, W = c->width, P = C * H * W, T = c->glimpses,
                 E = c->enc_size, D = c->dec_size, Z = c->z_size, Nr = c->read_n, Nw = c->write_n,
                 K1 = c->conv1, K2 = c->conv2;
    const int ra = c->read_attention, wa = c->write_attention, cnn = c->encoder == DCRW_ENCODER_CNN;
    double per = 0, once = 0, dec = 0;
    if (ra) per += 5 * D + 2 * C * (H * W * Nr + Nr * H * Nr);
    if (!cnn) {
        double Rin = (ra ? 2 * C * Nr * Nr : 2 * P) + D;
        per += 4 * E * (Rin + E) + 2 * Z * E;
    } else if (ra) {
        double p1 = (double)(c->read_n / 2), p2 = (double)((c->read_n / 2) / 2);
        double Q = K2 * p2 * p2 + D;
        per += Nr * Nr * K1 * 2 * C * 9 + p1 * p1 * K2 * K1 * 9 + 2 * Z * Q;
    } else {
        double Q = K2 * (double)((c->height / 2) / 2) * (double)((c->width / 2) / 2);
        once += H * W * K1 * C * 9 +
                (double)(c->height / 2) * (double)(c->width / 2) * K2 * K1 * 9 + 2 * Z * Q;
    }
    dec += 4 * D * (Z + D);
    dec += wa ? 5 * D + C * Nw * Nw * D + C * (H * Nw * Nw + H * Nw * W) : P * D;
    macs m = {once + T * (per + dec), T * dec};
    return m;
}

/* What a preset's row needs; peak and fma_peak for train_table only. */
typedef struct run_args {
    int B, threads, steps;
    double peak, fma_peak;
} run_args;

static void run_preset(dcrw_preset preset, const run_args *a) {
    const int B = a->B, threads = a->threads, steps = a->steps;
    const double peak = a->peak, fma_peak = a->fma_peak;
    dcrw_config c;
    dcrw_config_preset(&c, preset);
    dcrw_model *m;
    if (dcrw_model_create(&m, &c, 1) != DCRW_OK) {
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
        "| %-11s | %8.1f | %7.1f | %6.1f | %6.1f | %5.1f%% | %5.1f%% | %8.0f | %5.1f%% | %8.0f | "
        "%5.1f%% | %7.1f | %7.1f |\n",
        dcrw_preset_name(preset), 1e3 * step, B / step, 3 * mc.forward / 1e6, gflops,
        100 * gflops / peak, 100 * gflops / fma_peak, B / evt,
        100 * (2 * mc.forward * B / evt / 1e9) / peak, B / smt,
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
    printf(
        "\n| preset      | ms/step  | img/s   | MMAC/img/step | GFLOP/s | %% sgemm peak | %% FMA "
        "peak | eval img/s | %% peak | sample img/s | %% peak | BPTT MiB | training peak RSS "
        "MiB |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    fflush(stdout);
    return each_preset_in_child(presets, run_preset, a);
}

/* The model's products with OpenBLAS alone against the packed weights, in
 * one process, step by step: trainer a (OpenBLAS) and trainer b (packed)
 * on one model take turns, so that a busy machine slows both alike; the
 * median of each, and of the pairs' ratios. Backward only (forward and
 * backward; the Adam step is the same for both). */
static void ab_preset(dcrw_preset preset, const run_args *args) {
    const int B = args->B, threads = args->threads, steps = args->steps;
    dcrw_config c;
    dcrw_config_preset(&c, preset);
    dcrw_model *m;
    if (dcrw_model_create(&m, &c, 1) != DCRW_OK) exit(1);
    const int P = (int)dcrw_model_input_size(m);
    float *x = malloc((size_t)B * P * 4);
    uint64_t key = rng_key(3, 4, 5);
    for (size_t i = 0; i < (size_t)B * P; i++) x[i] = rng_uniform(key, i) < 0.5f;
    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    tc.threads = threads;
    dcrw_trainer *t[2];
    const int packed = dcrw_pass_gemm_path();
    double *ms = malloc(sizeof(double) * 3 * (size_t)steps), *ratio = ms + 2 * steps;
    for (int k = 0; k < 2; k++) {
        /* a trainer's runner takes the path of its first backward */
        dcrw_pass_set_gemm_path(k ? packed : -1);
        dcrw_trainer_create(&t[k], m, &tc);
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
    const double r = bench_median(ratio, steps), a = bench_median(ms, steps),
                 b = bench_median(ms + steps, steps);
    printf("| %-11s | %8.1f | %8.1f | %5.3f× |\n", dcrw_preset_name(preset), a, b, r);
    fflush(stdout);
    dcrw_trainer_destroy(t[0]), dcrw_trainer_destroy(t[1]);
    dcrw_model_destroy(m);
    free(x), free(ms);
}

static int ab_table(const char *presets, const run_args *a) {
    if (dcrw_pass_gemm_path() < 0) {
        printf("\nno packed path on this CPU: nothing to compare\n");
        return 0;
    }
    printf("\n| preset      | OpenBLAS ms/backward | packed ms/backward | OpenBLAS/packed (median "
           "of %d pairs) |\n|---|---|---|---|\n",
           a->steps);
    fflush(stdout);
    return each_preset_in_child(presets, ab_preset, a);
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
    int products = 1, train = 1, rows = 0, model_sgemm = 0, ab = 0;
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
        else {
            fprintf(stderr,
                    "usage: %s [--steps N] [--batch B] [--threads N] [--presets a,b] "
                    "[--pgemm c|avx2|avx512] [--no-products | --products-only] [--rows M] "
                    "[--model-products packed|sgemm] [--ab N]\n",
                    argv[0]);
            return 2;
        }
    }
    if (steps < 1 || B < 1 || threads < 1 || rows < 0 || ab < 0) return 2;
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
    const double fma_core = fma_peak_per_core(&fma_how);
    printf("libdcrw %s bench: batch %d, %d threads, median of %d steps after 2 warm-up; sgemm "
           "1024^3 peak %.1f GFLOP/s; float32 FMA peak %.1f GFLOP/s per core (%s), %.1f for %d "
           "threads; model products: %s\n",
           dcrw_version_string(), B, threads, steps, peak, fma_core, fma_how, fma_core * threads,
           threads, mp < 0 ? "OpenBLAS sgemm" : dcrw_pgemm_path_name((pgemm_path)mp));
    if (ab) return ab_table(presets, &(run_args){B, threads, ab, peak, fma_core * threads});
    const run_args a = {B, threads, steps, peak, fma_core * threads};
    if (train && train_table(presets, &a)) return 1;
    if (products) products_table(presets, rows, path, 11);
    openblas_set_num_threads(threads);
    printf("\nsgemm 1024^3 after: %.1f GFLOP/s\n", sgemm_peak());
    return 0;
}
