/* dcrw eval: the variational bound on a data split, and the
 * importance-weighted bound (Burda et al. 2016), both computed by the
 * library with noise keyed by each image's index in the split. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: dcrw eval [--model CKPT] --data PATH [OPTIONS]\n"
        "\n"
        "Print the mean reconstruction loss Lx, regularisation loss Lz and the bound\n"
        "L = Lx + Lz (nats per image, an upper bound on -log p(x)) over the test images\n"
        "(MNIST's 10,000). The images are binarized once, dynamically with the fixed seed %u, and\n"
        "the noise comes from the fixed seed %u, so numbers compare across runs and\n"
        "models.\n"
        "\n"
        "  --model CKPT       a checkpoint (dcrw train writes RUNDIR/checkpoint.safetensors;\n"
        "                     default: $DCRW_MODEL, else the shipped model)\n"
        "  --data PATH        the images: MNIST's folder, an IDX or .npy file, a folder\n"
        "                     of PNG images (see dcrw(1))\n"
        "  --split S          test (default) or train: the part of a folder that has\n"
        "                     both (a file or a folder of PNGs is one set)\n"
        "  --n N              only the first N images of the split\n"
        "  --binarize MODE    dynamic (default), threshold, none\n"
        "  --importance K     also the importance-weighted bound with K samples per image:\n"
        "                     -log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x), a tighter\n"
        "                     estimate of -log p(x) than the bound; papers use K >= 100\n"
        "                     (it costs K passes of the model per image)\n"
        "  --glimpse-kl       also the KL term of each glimpse t, KL(q(z_t|.) || N(0, I)),\n"
        "                     mean and standard error over the images (they sum to Lz)\n"
        "  --glimpse-kl-svg FILE.svg  the same as a bar chart (implies --glimpse-kl)\n"
        "  --seed N           the noise seed (default %u)\n"
        "  --precision P      float32 (default) or bf16: the model's large products in\n"
        "                     bfloat16 (AVX-512 BF16), for its speed and its effect\n"
        "\n"
        "A classifier (preset draw-classify) gets its test error instead: the share of\n"
        "images whose most probable class is not their label, with its standard error,\n"
        "and the mean -log p(label | x); its images are read as grey levels unless\n"
        "--binarize says otherwise.\n",
        CLI_EVAL_BINARIZE_SEED, CLI_EVAL_NOISE_SEED, CLI_EVAL_NOISE_SEED);
}

enum { O_IMPORTANCE = CLI_OPT_OWN, O_GLIMPSE_KL, O_GLIMPSE_KL_SVG };

static const cli_opt opts[] = {{"importance", 1, O_IMPORTANCE},
                               {"glimpse-kl", 0, O_GLIMPSE_KL},
                               {"glimpse-kl-svg", 1, O_GLIMPSE_KL_SVG},
                               {NULL, 0, 0}};

typedef struct eval_job {
    const dcrw_model *m;
    const dcrw_dataset *d;
    size_t total;
    int binarize;
    uint64_t seed;
    long K;
    int T, Z;           /* the model's glimpses and latent size */
    int K_classes;      /* a conditional model's classes, else 0 */
    int glimpse_kl;     /* --glimpse-kl */
    const char *kl_svg; /* --glimpse-kl-svg */
} eval_job;

typedef struct eval_sums {
    double lx, lz, l, l2;
    double *nll;      /* -log p^(x) of every image, with K */
    double *kl, *kl2; /* [T]: sums of each glimpse's KL and of its square */
} eval_sums;

#define EVAL_BATCH 100

/* One batch's images and losses. */
typedef struct eval_buffers {
    float *x;
    size_t *idx;
    int32_t labels[EVAL_BATCH];
    double *lx, *lz;
    float *mu, *ls; /* [T×B×Z], with --glimpse-kl */
} eval_buffers;

static void eval_buffers_free(eval_buffers *e) {
    free(e->x);
    free(e->idx);
    free(e->lx);
    free(e->lz);
    free(e->mu);
    free(e->ls);
}

/* 0, or -1 after a message with everything freed */
static int eval_buffers_alloc(eval_buffers *e, size_t P, size_t latents) {
    memset(e, 0, sizeof *e);
    e->x = malloc(EVAL_BATCH * P * sizeof *e->x);
    e->idx = malloc(EVAL_BATCH * sizeof *e->idx);
    e->lx = malloc(EVAL_BATCH * sizeof *e->lx);
    e->lz = malloc(EVAL_BATCH * sizeof *e->lz);
    if (latents) {
        e->mu = malloc(EVAL_BATCH * latents * sizeof *e->mu);
        e->ls = malloc(EVAL_BATCH * latents * sizeof *e->ls);
    }
    if (e->x && e->idx && e->lx && e->lz && (!latents || (e->mu && e->ls))) return 0;
    cli_error("out of memory");
    eval_buffers_free(e);
    return -1;
}

/* Each glimpse's KL(N(mu, sigma^2) || N(0, I)) of every image of the batch,
 * from the posterior the evaluation's noise seed gives (MODEL.md §5), into
 * the per-glimpse sums. */
static void add_glimpse_kl(const eval_job *j, const eval_buffers *e, int nb, eval_sums *s) {
    for (int t = 0; t < j->T; t++)
        for (int b = 0; b < nb; b++) {
            const size_t at = ((size_t)t * (size_t)nb + (size_t)b) * (size_t)j->Z;
            double kl = 0.0;
            for (int k = 0; k < j->Z; k++) {
                const double m = e->mu[at + k], l = e->ls[at + k];
                kl += 0.5 * (m * m + exp(2.0 * l) - 2.0 * l - 1.0);
            }
            s->kl[t] += kl;
            s->kl2[t] += kl * kl;
        }
}

/* Images first..first+nb-1 of the set: their bounds, and with K their
 * -log p^(x) into s->nll; the noise of each is keyed by its index in the
 * set, so the numbers do not depend on the batching. The sums updated; 0,
 * or -1 after a message (a failure, or a loss that is not a finite
 * number, which the library's message places). */
static int evaluate_batch(const eval_job *j, eval_buffers *e, size_t first, int nb, eval_sums *s) {
    for (int b = 0; b < nb; b++) e->idx[b] = first + (size_t)b;
    /* keyed by image index: the same bits as binarizing the split once */
    int rc = dcrw_dataset_batch(j->d, e->idx, nb, j->binarize, CLI_EVAL_BINARIZE_SEED, e->x);
    /* a conditional model: the bound on -log p(x | label) */
    for (int b = 0; j->K_classes && b < nb; b++) {
        e->labels[b] = dcrw_dataset_label(j->d, e->idx[b]);
        if (e->labels[b] < 0 || e->labels[b] >= j->K_classes) {
            cli_error("image %zu has no label of the model's %d classes: a conditional model is "
                      "evaluated on labelled images",
                      e->idx[b], j->K_classes);
            return -1;
        }
    }
    if (rc == DCRW_OK && j->K_classes)
        rc = dcrw_evaluate_labels(j->m, nb, e->x, e->labels, j->seed, (int64_t)first, e->lx, e->lz);
    else if (rc == DCRW_OK)
        rc = dcrw_evaluate_images_part(j->m, nb, e->x, j->seed, (int64_t)first, e->lx, e->lz);
    if (rc == DCRW_OK && j->glimpse_kl)
        rc = dcrw_encode_part(j->m, nb, e->x, j->seed, (int64_t)first, NULL, e->mu, e->ls);
    if (rc == DCRW_OK && j->K)
        rc = dcrw_evaluate_iw(j->m, nb, e->x, (int)j->K, j->seed, (int64_t)first, s->nll + first,
                              NULL);
    if (rc == DCRW_ENUMERIC)
        cli_lib_error(rc,
                      "the loss of images %zu..%zu is not a finite number: the model cannot "
                      "be evaluated on this data",
                      first, first + (size_t)nb - 1);
    else if (rc != DCRW_OK)
        cli_lib_error(rc, "evaluation failed at image %zu", first);
    if (rc != DCRW_OK) return -1;
    for (int b = 0; b < nb; b++) {
        double l = e->lx[b] + e->lz[b];
        s->lx += e->lx[b];
        s->lz += e->lz[b];
        s->l += l;
        s->l2 += l * l;
    }
    if (j->glimpse_kl) add_glimpse_kl(j, e, nb, s);
    return 0;
}

/* Every image of the job, EVAL_BATCH at a time, into the sums. CLI_OK, or
 * CLI_FAIL after a message. */
static int evaluate_all(const eval_job *j, eval_sums *s) {
    eval_buffers e;
    const size_t latents = j->glimpse_kl ? (size_t)j->T * (size_t)j->Z : 0;
    if (eval_buffers_alloc(&e, dcrw_model_input_size(j->m), latents) != 0) return CLI_FAIL;
    int status = CLI_OK;
    double t0 = cli_now(), last = t0;
    for (size_t i = 0; i < j->total; i += EVAL_BATCH) {
        int nb = (int)(j->total - i < EVAL_BATCH ? j->total - i : EVAL_BATCH);
        if (evaluate_batch(j, &e, i, nb, s) != 0) {
            status = CLI_FAIL;
            break;
        }
        /* importance sampling is slow enough to say how far it is */
        double now = cli_now();
        if (j->K && now - last > 10.0) {
            fprintf(stderr, "  %zu / %zu images, %.0f s\n", i + (size_t)nb, j->total, now - t0);
            last = now;
        }
    }
    eval_buffers_free(&e);
    return status;
}

/* The means and their standard errors; nothing is printed unless every
 * number is finite. */
static int print_bounds(const eval_job *j, eval_sums *s, const char *model_path, cli_split split) {
    double nd = (double)j->total;
    double mean = s->l / nd;
    double var = j->total > 1 ? (s->l2 - nd * mean * mean) / (nd - 1) : 0.0;
    double iw_mean = 0, iw_var = 0;
    if (j->K) {
        double s1 = 0, s2 = 0;
        for (size_t i = 0; i < j->total; i++) {
            s1 += s->nll[i];
            s2 += s->nll[i] * s->nll[i];
        }
        iw_mean = s1 / nd;
        iw_var = j->total > 1 ? (s2 - nd * iw_mean * iw_mean) / (nd - 1) : 0.0;
    }
    if (!isfinite(s->lx) || !isfinite(s->lz) || !isfinite(var) || !isfinite(iw_var)) {
        /* finite per image, but too large to sum */
        cli_error("the bound over %zu images is not a finite number: the model's losses are "
                  "too large",
                  j->total);
        return CLI_FAIL;
    }
    printf("model     %s\n", model_path);
    printf("split     %s, %zu images, binarization %s (seed %u), noise seed %llu\n",
           cli_split_name(split), j->total, cli_binarize_name(j->binarize), CLI_EVAL_BINARIZE_SEED,
           (unsigned long long)j->seed);
    printf("Lx        %.4f nats\n", s->lx / nd);
    printf("Lz        %.4f nats\n", s->lz / nd);
    printf("L         %.4f nats (standard error %.4f)\n", mean, var > 0 ? sqrt(var / nd) : 0.0);
    if (j->K)
        printf("IW bound  %.4f nats (K = %ld, standard error %.4f)\n", iw_mean, j->K,
               iw_var > 0 ? sqrt(iw_var / nd) : 0.0);
    if (j->glimpse_kl) {
        /* the sums become each glimpse's mean and its standard error */
        printf("glimpse   KL (nats, mean and standard error over the images)\n");
        for (int t = 0; t < j->T; t++) {
            const double m = s->kl[t] / nd;
            const double v = j->total > 1 ? (s->kl2[t] - nd * m * m) / (nd - 1) : 0.0;
            s->kl[t] = m;
            s->kl2[t] = v > 0 ? sqrt(v / nd) : 0.0;
            printf("%-9d %.4f (standard error %.4f)\n", t + 1, m, s->kl2[t]);
        }
    }
    if (j->kl_svg) {
        char title[256];
        snprintf(title, sizeof title, "KL of each glimpse: %s, %zu %s images",
                 cli_basename(model_path), j->total, cli_split_name(split));
        if (cli_kl_svg(j->kl_svg, j->T, s->kl, s->kl2, title) != 0) return CLI_FAIL;
        printf("plot      %s\n", j->kl_svg);
    }
    return CLI_OK;
}

/* A classifier's test error and loss over the job's images, printed: CLI_OK
 * or CLI_FAIL after a message. */
static int classify_all(const eval_job *j, const char *model_path, cli_split split, int K) {
    const size_t P = dcrw_model_input_size(j->m);
    float *x = malloc(EVAL_BATCH * P * sizeof *x), *probs = malloc(EVAL_BATCH * K * sizeof *probs);
    size_t idx[EVAL_BATCH], wrong = 0;
    double nll = 0.0;
    int rc = x && probs ? DCRW_OK : DCRW_ENOMEM;
    for (size_t i = 0; rc == DCRW_OK && i < j->total; i += EVAL_BATCH) {
        const int nb = (int)(j->total - i < EVAL_BATCH ? j->total - i : EVAL_BATCH);
        for (int b = 0; b < nb; b++) idx[b] = i + (size_t)b;
        rc = dcrw_dataset_batch(j->d, idx, nb, j->binarize, CLI_EVAL_BINARIZE_SEED, x);
        if (rc == DCRW_OK) rc = dcrw_classify(j->m, nb, x, probs);
        for (int b = 0; rc == DCRW_OK && b < nb; b++) {
            const int label = dcrw_dataset_label(j->d, idx[b]);
            if (label < 0 || label >= K) {
                cli_error("image %zu has %s: a classifier is evaluated on labelled images", idx[b],
                          label < 0 ? "no label" : "a label beyond the model's classes");
                rc = DCRW_EINVAL;
                break;
            }
            nll -= log(probs[(size_t)b * K + label]);
            wrong += cli_argmax(probs + (size_t)b * K, K) != label;
        }
    }
    free(x);
    free(probs);
    if (rc == DCRW_ENOMEM) cli_error("out of memory");
    if (rc != DCRW_OK && rc != DCRW_ENOMEM && rc != DCRW_EINVAL)
        cli_lib_error(rc, "classification failed");
    if (rc != DCRW_OK) return CLI_FAIL;
    const double n = (double)j->total, e = (double)wrong / n;
    printf("model     %s\n", model_path);
    printf("split     %s, %zu images, %s\n", cli_split_name(split), j->total,
           j->binarize == DCRW_BINARIZE_NONE ? "grey levels" : cli_binarize_name(j->binarize));
    printf("error     %.2f%% (%zu of %zu wrong, standard error %.2f%%)\n", 100.0 * e, wrong,
           j->total, 100.0 * sqrt(e * (1.0 - e) / n));
    printf("loss      %.4f nats (mean -log p(label | x))\n", nll / n);
    return CLI_OK;
}

/* --importance K, --glimpse-kl and --glimpse-kl-svg, its options of its own */
static int eval_option(int id, const char *val, void *ctx) {
    eval_job *j = ctx;
    if (id == O_GLIMPSE_KL || id == O_GLIMPSE_KL_SVG) {
        j->glimpse_kl = 1;
        if (id == O_GLIMPSE_KL_SVG) j->kl_svg = val;
        return 0;
    }
    return cli_parse_int("importance", val, 1, 100000, &j->K);
}

static const cli_command eval_command = {
    usage,
    CLI_SHARED(CLI_OPT_MODEL) | CLI_SHARED(CLI_OPT_DATA) | CLI_SHARED(CLI_OPT_SPLIT) |
        CLI_SHARED(CLI_OPT_N) | CLI_SHARED(CLI_OPT_BINARIZE) | CLI_SHARED(CLI_OPT_SEED) |
        CLI_SHARED(CLI_OPT_PRECISION),
    opts, 0, eval_option};

/* The job of the command line on its model and data: 0, or -1 after a
 * message. */
static int load_job(const cli_shared *o, eval_job *j, dcrw_model **m, dcrw_dataset **d) {
    if (cli_load_model(o->model, m) != 0 || cli_set_precision(*m, o->precision) != 0 ||
        cli_load_split(o->data, o->split, d) != 0)
        return -1;
    dcrw_config cfg = {.size = sizeof cfg};
    dcrw_model_config(*m, &cfg);
    if (cli_check_shape(*d, &cfg, "--data", "evaluate a model trained on such images") != 0)
        return -1;
    size_t count = dcrw_dataset_count(*d);
    if (o->n && (size_t)o->n > count) {
        cli_error("--n %ld: the %s split has only %zu images", o->n, cli_split_name(o->split),
                  count);
        return -1;
    }
    j->m = *m;
    j->d = *d;
    j->total = o->n ? (size_t)o->n : count;
    j->binarize = o->binarize;
    j->seed = o->seed;
    j->T = cfg.glimpses;
    j->Z = cfg.z_size;
    j->K_classes = cfg.classify ? 0 : cfg.classes;
    return 0;
}

int cmd_eval(int argc, char **argv) {
    cli_shared o;
    cli_shared_init(&o);
    o.seed = CLI_EVAL_NOISE_SEED;
    eval_job job = {0};
    int status = cli_parse_args(&eval_command, argc, argv, &o, &job);
    if (status >= 0) return status;
    if (!o.data) {
        cli_error("give --data PATH (see --help)");
        return CLI_BAD;
    }
    o.model = cli_model_path(o.model);
    cli_file svg[] = {{job.kl_svg, "--glimpse-kl-svg"}};
    if (job.kl_svg && cli_check_data_outputs(o.model, o.data, svg, 1) != 0) return CLI_BAD;
    dcrw_model *m = NULL;
    dcrw_dataset *d = NULL;
    eval_sums sums = {0};
    status = CLI_BAD;
    dcrw_config cfg = {.size = sizeof cfg};
    const int loaded = load_job(&o, &job, &m, &d) == 0;
    if (loaded) dcrw_model_config(m, &cfg);
    if (loaded && cfg.classify) {
        if (job.K || job.glimpse_kl) {
            cli_error("--importance and --glimpse-kl are for the generative models, not a "
                      "classifier");
        } else {
            if (!(o.given & CLI_SHARED(CLI_OPT_BINARIZE))) job.binarize = DCRW_BINARIZE_NONE;
            status = classify_all(&job, o.model, o.split, cfg.classes);
        }
    } else if (loaded) {
        sums.nll = malloc(job.total * sizeof *sums.nll);
        sums.kl = calloc((size_t)job.T, sizeof *sums.kl);
        sums.kl2 = calloc((size_t)job.T, sizeof *sums.kl2);
        int have = sums.nll && sums.kl && sums.kl2;
        status = have ? evaluate_all(&job, &sums) : CLI_FAIL;
        if (!have) cli_error("out of memory");
    }
    if (status == CLI_OK && !cfg.classify) status = print_bounds(&job, &sums, o.model, o.split);
    free(sums.nll);
    free(sums.kl);
    free(sums.kl2);
    dcrw_dataset_destroy(d);
    dcrw_model_destroy(m);
    return status;
}
