/* dcrw eval: the variational bound on a data split, and the
 * importance-weighted bound (Burda et al. 2016) through the public API. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: dcrw eval [--model CKPT] --data DIR [OPTIONS]\n"
            "\n"
            "Print the mean reconstruction loss Lx, regularisation loss Lz and the bound\n"
            "L = Lx + Lz (nats per image, an upper bound on -log p(x)) over the 10,000 test\n"
            "images. The images are binarized once, dynamically with the fixed seed %u, and\n"
            "the noise comes from the fixed seed %u, so numbers compare across runs and\n"
            "models.\n"
            "\n"
            "  --model CKPT       a checkpoint (dcrw train writes RUNDIR/checkpoint.safetensors;\n"
            "                     default: $DCRW_MODEL, else the shipped model)\n"
            "  --data DIR         folder with the MNIST IDX files\n"
            "  --split S          test (default) or train\n"
            "  --n N              only the first N images of the split\n"
            "  --binarize MODE    dynamic (default), threshold, none\n"
            "  --importance K     also the importance-weighted bound with K samples per image:\n"
            "                     -log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x), a tighter\n"
            "                     estimate of -log p(x) than the bound; papers use K >= 100\n"
            "                     (it costs about 2K evaluations per image)\n"
            "  --seed N           the noise seed (default %u)\n",
            CLI_EVAL_BINARIZE_SEED, CLI_EVAL_NOISE_SEED, CLI_EVAL_NOISE_SEED);
}

enum { O_HELP = 1, O_MODEL, O_DATA, O_SPLIT, O_N, O_BINARIZE, O_IMPORTANCE, O_SEED };

static const cli_opt opts[] = {{"help", 0, O_HELP},
                               {"model", 1, O_MODEL},
                               {"data", 1, O_DATA},
                               {"split", 1, O_SPLIT},
                               {"n", 1, O_N},
                               {"binarize", 1, O_BINARIZE},
                               {"importance", 1, O_IMPORTANCE},
                               {"seed", 1, O_SEED},
                               {NULL, 0, 0}};

#define HALF_LOG_2PI 0.91893853320467274178

typedef struct iw_buffers {
    float *eps, *z, *mu, *logsigma;
    double *lx, *logw;
} iw_buffers;

/* log w_k for every image of the batch and sample k, then the logsumexp:
 * -log p^(x) = -(logsumexp_k log w_k - log K), into nll[b]. */
static int importance_batch(const dcrw_model *m, int B, const float *x, size_t first, long K,
                            uint64_t seed, size_t T, size_t Z, iw_buffers *w, double *nll) {
    for (long k = 0; k < K; k++) {
        /* sample k of image i: keyed by (seed, k, i), whatever the batching */
        cli_fill_eps(w->eps, cli_key(seed, (uint64_t)k + 1), first, B, T, Z);
        int rc = dcrw_encode(m, B, x, w->eps, w->z, w->mu, w->logsigma);
        if (rc == DCRW_OK) rc = dcrw_evaluate_images(m, B, x, w->eps, w->lx, NULL);
        if (rc != DCRW_OK) return rc;
        for (int b = 0; b < B; b++) {
            /* log p(z) - log q(z|x); the ½log 2π terms cancel between the two */
            double lpz = 0.0, lqz = 0.0;
            for (size_t t = 0; t < T; t++)
                for (size_t j = 0; j < Z; j++) {
                    size_t at = (t * (size_t)B + (size_t)b) * Z + j;
                    double z = w->z[at], e = w->eps[at];
                    lpz += -0.5 * z * z - HALF_LOG_2PI;
                    lqz += -0.5 * e * e - (double)w->logsigma[at] - HALF_LOG_2PI;
                }
            w->logw[(size_t)b * (size_t)K + (size_t)k] = -w->lx[b] + lpz - lqz;
        }
    }
    for (int b = 0; b < B; b++) {
        const double *lw = w->logw + (size_t)b * (size_t)K;
        double mx = -INFINITY;
        for (long k = 0; k < K; k++)
            if (lw[k] > mx) mx = lw[k];
        double s = 0.0;
        for (long k = 0; k < K; k++) s += exp(lw[k] - mx);
        nll[b] = -(mx + log(s) - log((double)K));
    }
    return DCRW_OK;
}

int cmd_eval(int argc, char **argv) {
    cli_args a = {argc, argv, 1, opts};
    const char *val, *model_path = NULL, *data = NULL;
    cli_split split = SPLIT_TEST;
    long n = 0, K = 0;
    int binarize = DCRW_BINARIZE_DYNAMIC, id;
    uint64_t seed = CLI_EVAL_NOISE_SEED;
    int opt_status;
    while ((id = cli_next_option(&a, &val, usage, &opt_status)) > 0) {
        switch (id) {
        case O_MODEL:
            model_path = val;
            break;
        case O_DATA:
            data = val;
            break;
        case O_SPLIT:
            if (cli_parse_split("split", val, &split) != 0) return CLI_BAD;
            break;
        case O_N:
            if (cli_parse_int("n", val, 1, 100000000, &n) != 0) return CLI_BAD;
            break;
        case O_BINARIZE:
            if (cli_parse_binarize("binarize", val, &binarize) != 0) return CLI_BAD;
            break;
        case O_IMPORTANCE:
            if (cli_parse_int("importance", val, 1, 100000, &K) != 0) return CLI_BAD;
            break;
        case O_SEED:
            if (cli_parse_u64("seed", val, &seed) != 0) return CLI_BAD;
            break;
        }
    }
    if (opt_status >= 0) return opt_status;
    if (!data) {
        cli_error("give --data DIR (see --help)");
        return CLI_BAD;
    }
    model_path = cli_model_path(model_path);
    dcrw_model *m = NULL;
    dcrw_dataset *d = NULL;
    int status = CLI_BAD;
    float *x = NULL;
    size_t *idx = NULL;
    double *lx = NULL, *lz = NULL, *nll = NULL;
    iw_buffers w = {0};
    if (cli_load_model(model_path, &m) != 0) goto done;
    if (cli_load_split(data, split, &d) != 0) goto done;
    dcrw_config cfg;
    dcrw_model_config(m, &cfg);
    if (cli_check_shape(d, &cfg, "--data") != 0) goto done;
    size_t count = dcrw_dataset_count(d);
    if (n && (size_t)n > count) {
        cli_error("--n %ld: the %s split has only %zu images", n,
                  split == SPLIT_TEST ? "test" : "train", count);
        goto done;
    }
    size_t total = n ? (size_t)n : count;
    dcrw_sizes sz = {.size = sizeof sz};
    dcrw_model_sizes(m, &sz);
    const int B = 100;
    const size_t P = sz.input, TBZ = sz.glimpses * (size_t)B * sz.z;
    x = malloc((size_t)B * P * sizeof *x);
    idx = malloc((size_t)B * sizeof *idx);
    lx = malloc((size_t)B * sizeof *lx);
    lz = malloc((size_t)B * sizeof *lz);
    nll = malloc(total * sizeof *nll);
    w.eps = malloc(TBZ * sizeof *w.eps);
    int ok = x && idx && lx && lz && nll && w.eps;
    if (K) {
        w.z = malloc(TBZ * sizeof *w.z);
        w.mu = malloc(TBZ * sizeof *w.mu);
        w.logsigma = malloc(TBZ * sizeof *w.logsigma);
        w.lx = malloc((size_t)B * sizeof *w.lx);
        w.logw = malloc((size_t)B * (size_t)K * sizeof *w.logw);
        ok = ok && w.z && w.mu && w.logsigma && w.lx && w.logw;
    }
    if (!ok) {
        cli_error("out of memory");
        status = CLI_FAIL;
        goto done;
    }
    double sx = 0, sz_ = 0, sl = 0, sl2 = 0;
    double t0 = cli_now(), last = t0;
    for (size_t i = 0; i < total; i += (size_t)B) {
        int nb = (int)(total - i < (size_t)B ? total - i : (size_t)B);
        for (int b = 0; b < nb; b++) idx[b] = i + (size_t)b;
        /* keyed by image index: the same bits as binarizing the split once */
        int rc = dcrw_dataset_batch(d, idx, nb, binarize, CLI_EVAL_BINARIZE_SEED, x);
        if (rc == DCRW_OK) {
            cli_fill_eps(w.eps, seed, i, nb, sz.glimpses, sz.z);
            rc = dcrw_evaluate_images(m, nb, x, w.eps, lx, lz);
        }
        if (rc == DCRW_OK && K)
            rc = importance_batch(m, nb, x, i, K, seed, sz.glimpses, sz.z, &w, nll + i);
        if (rc != DCRW_OK) {
            cli_lib_error(rc, "evaluation failed at image %zu", i);
            status = CLI_FAIL;
            goto done;
        }
        for (int b = 0; b < nb; b++) {
            double l = lx[b] + lz[b];
            sx += lx[b];
            sz_ += lz[b];
            sl += l;
            sl2 += l * l;
        }
        double now = cli_now();
        if (K && now - last > 10.0) {
            fprintf(stderr, "  %zu / %zu images, %.0f s\n", i + (size_t)nb, total, now - t0);
            last = now;
        }
    }
    double nd = (double)total;
    double mean = sl / nd;
    double var = total > 1 ? (sl2 - nd * mean * mean) / (nd - 1) : 0.0;
    printf("model     %s\n", model_path);
    printf("split     %s, %zu images, binarization %s (seed %u), noise seed %llu\n",
           split == SPLIT_TEST ? "test" : "train", total, cli_binarize_name(binarize),
           CLI_EVAL_BINARIZE_SEED, (unsigned long long)seed);
    printf("Lx        %.4f nats\n", sx / nd);
    printf("Lz        %.4f nats\n", sz_ / nd);
    printf("L         %.4f nats (standard error %.4f)\n", mean, var > 0 ? sqrt(var / nd) : 0.0);
    if (K) {
        double s1 = 0, s2 = 0;
        for (size_t i = 0; i < total; i++) {
            s1 += nll[i];
            s2 += nll[i] * nll[i];
        }
        double mu = s1 / nd, v = total > 1 ? (s2 - nd * mu * mu) / (nd - 1) : 0.0;
        printf("IW bound  %.4f nats (K = %ld, standard error %.4f)\n", mu, K,
               v > 0 ? sqrt(v / nd) : 0.0);
    }
    status = CLI_OK;
done:
    free(x);
    free(idx);
    free(lx);
    free(lz);
    free(nll);
    free(w.eps);
    free(w.z);
    free(w.mu);
    free(w.logsigma);
    free(w.lx);
    free(w.logw);
    dcrw_dataset_destroy(d);
    dcrw_model_destroy(m);
    return status;
}
