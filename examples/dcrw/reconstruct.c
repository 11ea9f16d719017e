/* dcrw reconstruct: test images beside their canvases glimpse by glimpse,
 * with the read (red) and write (green) windows drawn on each frame, as in
 * DRAW's own figures. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#define PAD 2
#define BACKGROUND 96

static void usage(FILE *f) {
    fprintf(f,
            "usage: dcrw reconstruct [--model CKPT] --data PATH --out FILE.png [OPTIONS]\n"
            "\n"
            "One row per test image: the image, then the canvas sigma(c_t) after each\n"
            "glimpse, with the read window (red) and the write window (green) of that\n"
            "glimpse drawn as rectangles (the span of the N x N grid of Gaussians:\n"
            "centre +- stride*(N-1)/2), for the attention the model has. For a\n"
            "classifier, the image under each glimpse's read window (grey levels unless\n"
            "--binarize says otherwise).\n"
            "\n"
            "  --model CKPT       a checkpoint (default: $DCRW_MODEL, else the shipped model)\n"
            "  --data PATH        the images: MNIST's folder, an IDX or .npy file, a folder\n"
            "                     of PNG images (see dcrw(1))\n"
            "  --out FILE.png     the picture (RGB)\n"
            "  --n N              number of images (default 16)\n"
            "  --first I          start at image I of the split (default 0)\n"
            "  --split S          test (default) or train: the part of a folder that has\n"
            "                     both (a file or a folder of PNGs is one set)\n"
            "  --glimpses LIST    which canvases, e.g. 1,4,6,10 or all (default: all, or 16\n"
            "                     evenly spaced ones when the model has more glimpses)\n"
            "  --binarize MODE    dynamic (default, seed %u as dcrw eval), threshold, none\n"
            "  --seed N           seed of the noise (default %u); --mean uses eps = 0 instead\n"
            "  --mean             posterior means (eps = 0) instead of sampled latents\n"
            "  --windows W        which windows to draw: both (default), read, write, none\n"
            "  --scale K          pixel upscaling, 1..16 (default 4)\n"
            "  --precision P      float32 (default) or bf16 products (AVX-512 BF16)\n",
            CLI_EVAL_BINARIZE_SEED, CLI_EVAL_NOISE_SEED);
}

enum { O_FIRST = CLI_OPT_OWN, O_MEAN, O_WINDOWS };

static const cli_opt opts[] = {
    {"first", 1, O_FIRST}, {"mean", 0, O_MEAN}, {"windows", 1, O_WINDOWS}, {NULL, 0, 0}};

/* What dcrw reconstruct draws, and from what. */
typedef struct recon_job {
    cli_shared o; /* --model --data --out --n --split --glimpses --binarize --seed --scale */
    long first;   /* --first */
    int use_mean; /* --mean */
    int windows;  /* --windows: CLI_WINDOW_READ | CLI_WINDOW_WRITE */
    dcrw_model *m;
    dcrw_dataset *d;
    dcrw_config cfg;
    size_t P;    /* floats per image */
    int *gl, ng; /* the glimpses shown, 1-based */
    float *x, *canvases, *rw, *ww;
} recon_job;

static int recon_option(int id, const char *val, void *ctx) {
    recon_job *j = ctx;
    switch (id) {
    case O_FIRST:
        return cli_parse_int("first", val, 0, 100000000, &j->first);
    case O_MEAN:
        j->use_mean = 1;
        return 0;
    default:
        return cli_parse_windows(val, &j->windows);
    }
}

static const cli_command recon_command = {
    usage,
    CLI_SHARED(CLI_OPT_MODEL) | CLI_SHARED(CLI_OPT_DATA) | CLI_SHARED(CLI_OPT_OUT) |
        CLI_SHARED(CLI_OPT_N) | CLI_SHARED(CLI_OPT_SPLIT) | CLI_SHARED(CLI_OPT_GLIMPSES) |
        CLI_SHARED(CLI_OPT_BINARIZE) | CLI_SHARED(CLI_OPT_SEED) | CLI_SHARED(CLI_OPT_SCALE) |
        CLI_SHARED(CLI_OPT_PRECISION),
    opts, 0, recon_option};

/* The picture may not replace the model or a data file it is made from. */
static int check_output(const char *model, const char *data, const char *out) {
    cli_file o[] = {{out, "--out"}};
    return cli_check_data_outputs(model, data, o, 1);
}

/* --glimpses, or all of them, or 16 evenly spaced ones ending on the
 * last: 0, or -1 after a message. */
static int choose_glimpses(recon_job *j) {
    const int T = j->cfg.glimpses;
    if (j->o.glimpses) {
        j->ng = cli_parse_glimpses("glimpses", j->o.glimpses, T, &j->gl);
        return j->ng < 0 ? -1 : 0;
    }
    j->ng = T <= 16 ? T : 16;
    j->gl = malloc((size_t)j->ng * sizeof *j->gl);
    if (!j->gl) {
        cli_error("out of memory");
        return -1;
    }
    for (int k = 0; k < j->ng; k++) j->gl[k] = (int)(((long)(k + 1) * T + j->ng / 2) / j->ng);
    j->gl[j->ng - 1] = T;
    return 0;
}

/* The model, the glimpses, the data and the picture's size, checked: 0,
 * or -1 after a message. */
static int load_inputs(recon_job *j) {
    if (cli_load_model(j->o.model, &j->m) != 0 || cli_set_precision(j->m, j->o.precision) != 0)
        return -1;
    j->cfg.size = sizeof j->cfg;
    dcrw_model_config(j->m, &j->cfg);
    j->P = dcrw_model_input_size(j->m);
    if (choose_glimpses(j) != 0 || cli_load_split(j->o.data, j->o.split, &j->d) != 0) return -1;
    if (j->cfg.classify && !(j->o.given & CLI_SHARED(CLI_OPT_BINARIZE)))
        j->o.binarize = DCRW_BINARIZE_NONE;
    if (j->use_mean && j->cfg.classes && !j->cfg.classify) {
        cli_error("--mean: not for a class-conditional model (its reconstructions draw z)");
        return -1;
    }
    if (cli_check_shape(j->d, &j->cfg, "--data",
                        "reconstruct with a model trained on such images") != 0)
        return -1;
    size_t count = dcrw_dataset_count(j->d);
    if ((size_t)j->first >= count || (size_t)j->o.n > count - (size_t)j->first) {
        cli_error("--first %ld --n %ld: the split has only %zu images", j->first, j->o.n, count);
        return -1;
    }
    int gw = 0, gh = 0, scale = (int)j->o.scale;
    return cli_grid_size(j->ng + 1, (int)j->o.n, j->cfg.width * scale, j->cfg.height * scale, PAD,
                         &gw, &gh);
}

/* The images, their canvases and windows: CLI_OK, or CLI_FAIL after a
 * message. */
static int reconstruct_images(recon_job *j) {
    const size_t n = (size_t)j->o.n, T = (size_t)j->cfg.glimpses, P = j->P;
    dcrw_sizes sz = {.size = sizeof sz};
    dcrw_model_sizes(j->m, &sz);
    /* --mean: eps = 0 gives the posterior means */
    float *zeros = j->use_mean ? calloc(T * n * sz.z, sizeof *zeros) : NULL;
    size_t *idx = malloc(n * sizeof *idx);
    j->x = malloc(n * P * sizeof *j->x);
    j->canvases = malloc(T * n * P * sizeof *j->canvases);
    j->rw = malloc(T * n * 5 * sizeof *j->rw);
    j->ww = malloc(T * n * 5 * sizeof *j->ww);
    if ((j->use_mean && !zeros) || !idx || !j->x || !j->canvases || !j->rw || !j->ww) {
        cli_error("out of memory");
        free(zeros);
        free(idx);
        return CLI_FAIL;
    }
    for (size_t i = 0; i < n; i++) idx[i] = (size_t)j->first + i;
    int rc = dcrw_dataset_batch(j->d, idx, (int)n, j->o.binarize, CLI_EVAL_BINARIZE_SEED, j->x);
    if (rc == DCRW_OK && j->cfg.classify) {
        /* a classifier has no canvas: each glimpse's frame is the image
         * under that glimpse's window (DRAW's Figure 4) */
        for (size_t t = 0; t < T; t++) memcpy(j->canvases + t * n * P, j->x, n * P * sizeof *j->x);
        rc = dcrw_classify_windows(j->m, (int)n, j->x, NULL, j->rw);
        free(zeros);
        free(idx);
        if (rc != DCRW_OK) cli_lib_error(rc, "classification failed");
        return rc == DCRW_OK ? CLI_OK : CLI_FAIL;
    }
    /* else the noise of an image is keyed by its index in the split, as in
     * dcrw eval with the same seed */
    if (rc == DCRW_OK && j->cfg.classes) {
        /* a conditional model reconstructs each image given its label (the
         * library names an image without one) */
        int32_t *labels = malloc(n * sizeof *labels);
        for (size_t i = 0; labels && i < n; i++) labels[i] = dcrw_dataset_label(j->d, idx[i]);
        rc = labels ? dcrw_reconstruct_labels(j->m, (int)n, j->x, labels, j->o.seed,
                                              (int64_t)j->first, NULL, j->canvases, j->rw, j->ww)
                    : DCRW_ENOMEM;
        free(labels);
    } else if (rc == DCRW_OK && j->use_mean)
        rc = dcrw_reconstruct_windows(j->m, (int)n, j->x, zeros, NULL, j->canvases, j->rw, j->ww);
    else if (rc == DCRW_OK)
        rc = dcrw_reconstruct_part(j->m, (int)n, j->x, j->o.seed, (int64_t)j->first, NULL,
                                   j->canvases, j->rw, j->ww);
    free(zeros);
    free(idx);
    if (rc != DCRW_OK) cli_lib_error(rc, "reconstruction failed");
    return rc == DCRW_OK ? CLI_OK : CLI_FAIL;
}

/* Row i: image i, then its canvas and windows after each chosen glimpse. */
static void paint_row(const recon_job *j, cli_image *im, int i) {
    const int C = j->cfg.channels, H = j->cfg.height, W = j->cfg.width, scale = (int)j->o.scale;
    const int cw = W * scale, ch = H * scale, y = PAD + i * (ch + PAD);
    const size_t n = (size_t)j->o.n;
    cli_image_blit(im, PAD, y, j->x + (size_t)i * j->P, C, H, W, scale);
    for (int k = 0; k < j->ng; k++) {
        const size_t at = (size_t)(j->gl[k] - 1) * n + (size_t)i;
        const int bx = PAD + (k + 1) * (cw + PAD);
        cli_image_blit(im, bx, y, j->canvases + at * j->P, C, H, W, scale);
        if ((j->windows & CLI_WINDOW_READ) && j->cfg.read_attention)
            cli_draw_window(im, bx, y, cw, ch, j->rw + at * 5, j->cfg.read_n, scale, CLI_RED);
        if ((j->windows & CLI_WINDOW_WRITE) && j->cfg.write_attention)
            cli_draw_window(im, bx, y, cw, ch, j->ww + at * 5, j->cfg.write_n, scale, CLI_GREEN);
    }
}

static int write_picture(const recon_job *j) {
    const int scale = (int)j->o.scale;
    int gw = 0, gh = 0;
    cli_image im = {0};
    if (cli_grid_size(j->ng + 1, (int)j->o.n, j->cfg.width * scale, j->cfg.height * scale, PAD, &gw,
                      &gh) != 0 ||
        cli_image_alloc(&im, gw, gh, 3, BACKGROUND) != 0)
        return CLI_BAD;
    for (int i = 0; i < j->o.n; i++) paint_row(j, &im, i);
    int status = cli_png_write(j->o.out, &im);
    cli_image_free(&im);
    return status;
}

static void recon_job_free(recon_job *j) {
    free(j->x);
    free(j->canvases);
    free(j->rw);
    free(j->ww);
    free(j->gl);
    dcrw_dataset_destroy(j->d);
    dcrw_model_destroy(j->m);
}

int cmd_reconstruct(int argc, char **argv) {
    recon_job j;
    memset(&j, 0, sizeof j);
    cli_shared_init(&j.o);
    j.o.n = 16;
    j.o.n_max = 1000;
    j.o.seed = CLI_EVAL_NOISE_SEED;
    j.o.scale = 4;
    j.windows = CLI_WINDOW_READ | CLI_WINDOW_WRITE;
    int status = cli_parse_args(&recon_command, argc, argv, &j.o, &j);
    if (status >= 0) return status;
    if (!j.o.data || !j.o.out) {
        cli_error("give --data PATH and --out FILE.png (see --help)");
        return CLI_BAD;
    }
    j.o.model = cli_model_path(j.o.model);
    if (check_output(j.o.model, j.o.data, j.o.out) != 0) return CLI_BAD;
    if (!cli_png_available()) return cli_png_write(j.o.out, NULL);
    status = load_inputs(&j) != 0 ? CLI_BAD : reconstruct_images(&j);
    if (status == CLI_OK) status = write_picture(&j);
    if (status == CLI_OK) printf("%s\n", j.o.out);
    recon_job_free(&j);
    return status;
}
