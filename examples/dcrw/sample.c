/* dcrw sample: images from the prior (MODEL.md §6), as a grid, as rows of
 * canvases glimpse by glimpse, and as an animated GIF. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#define PAD 2
#define BACKGROUND 96

static void usage(FILE *f) {
    fprintf(f, "usage: dcrw sample [--model CKPT] [--out FILE.png] [--gif FILE.gif] [OPTIONS]\n"
               "\n"
               "Draw images from the model's prior: z_t ~ N(0, I), then the decoder writes\n"
               "on the canvas glimpse by glimpse. Pixels are the Bernoulli means sigma(c_t)\n"
               "(grey levels), not sampled bits.\n"
               "\n"
               "  --model CKPT       a checkpoint (default: $DCRW_MODEL, else the model\n"
               "                     shipped with dcrw, " DCRW_SHIPPED_MODEL ")\n"
               "  --out FILE.png     a grid of the final images, ceil(sqrt(n)) columns; with\n"
               "                     --glimpses, one row per sample instead\n"
               "  --glimpses LIST    the canvas after these glimpses side by side, e.g. 1,4,6,10\n"
               "                     or all\n"
               "  --windows W        write: draw each glimpse's write window (green) on the\n"
               "                     --glimpses rows; none (default). Samples have no read window\n"
               "  --gif FILE.gif     an animation of the grid's canvases over the glimpses\n"
               "  --label L          a class-conditional model (dcrw train --conditional): draw\n"
               "                     class L; by default sample i is of class i mod K, so a grid\n"
               "                     of K columns has one class a column\n"
               "  --n N              number of samples (default 64)\n"
               "  --seed N           seed of the latents (default 1)\n"
               "  --scale K          pixel upscaling, 1..16 (default 2)\n"
               "  --precision P      float32 (default) or bf16 products (AVX-512 BF16)\n");
}

enum { O_GIF = CLI_OPT_OWN, O_WINDOWS, O_LABEL };

static const cli_opt opts[] = {
    {"gif", 1, O_GIF}, {"windows", 1, O_WINDOWS}, {"label", 1, O_LABEL}, {NULL, 0, 0}};

/* What dcrw sample draws, and from what. */
typedef struct sample_job {
    cli_shared o;    /* --model --out --glimpses --n --seed --scale */
    const char *gif; /* --gif */
    int windows;     /* --windows: CLI_WINDOW_WRITE or 0 */
    long label;      /* --label, or -1 */
    dcrw_model *m;
    dcrw_config cfg;
    size_t P;        /* floats per image */
    int *gl, ng;     /* --glimpses, 1-based */
    int cols, rows;  /* the grid of the final images */
    int cw, ch;      /* one cell, in pixels */
    float *canvases; /* [T][n][P] */
    float *ww;       /* [T][n][5] write windows, with --windows write */
} sample_job;

#define CANVAS(j, t, i) ((j)->canvases + ((size_t)(t) * (size_t)(j)->o.n + (size_t)(i)) * (j)->P)

static int sample_option(int id, const char *val, void *ctx) {
    sample_job *j = ctx;
    if (id == O_GIF) {
        j->gif = val;
        return 0;
    }
    if (id == O_LABEL) return cli_parse_int("label", val, 0, 65535, &j->label);
    if (cli_parse_windows(val, &j->windows) != 0) return -1;
    if (j->windows & CLI_WINDOW_READ) {
        cli_error("--windows: a sample from the prior has no read window; use write or none");
        return -1;
    }
    return 0;
}

static const cli_command sample_command = {
    usage,
    CLI_SHARED(CLI_OPT_MODEL) | CLI_SHARED(CLI_OPT_OUT) | CLI_SHARED(CLI_OPT_GLIMPSES) |
        CLI_SHARED(CLI_OPT_N) | CLI_SHARED(CLI_OPT_SEED) | CLI_SHARED(CLI_OPT_SCALE) |
        CLI_SHARED(CLI_OPT_PRECISION),
    opts, 0, sample_option};

/* The outputs asked for, checked before any work: 0, or the exit status. */
static int check_outputs(const sample_job *j) {
    const char *out = j->o.out, *gif = j->gif;
    if (!out && !gif) {
        cli_error("give --out FILE.png and/or --gif FILE.gif");
        return CLI_BAD;
    }
    if (j->o.glimpses && !out) {
        cli_error("--glimpses needs --out FILE.png");
        return CLI_BAD;
    }
    if (j->windows && !j->o.glimpses) {
        cli_error("--windows write needs --glimpses LIST (the windows are drawn on the rows)");
        return CLI_BAD;
    }
    /* an output may not destroy the model it is drawn from */
    cli_file in[] = {{j->o.model, "--model"}}, outs[2];
    size_t nout = 0;
    if (out) outs[nout++] = (cli_file){out, "--out"};
    if (gif) outs[nout++] = (cli_file){gif, "--gif"};
    if (cli_check_outputs(in, 1, outs, nout) != 0) return CLI_BAD;
    /* refuse before computing anything when the build cannot write it */
    if (out && !cli_png_available()) return cli_png_write(out, NULL);
    if (gif && !cli_gif_available()) return cli_gif_write(gif, NULL, 0, 0, 0, 0, 0);
    return 0;
}

/* The pictures' sizes for this model, checked: 0, or -1 after a message. */
static int plan_pictures(sample_job *j) {
    const long n = j->o.n;
    const int T = j->cfg.glimpses;
    if (j->o.glimpses && (j->ng = cli_parse_glimpses("glimpses", j->o.glimpses, T, &j->gl)) < 0)
        return -1;
    j->P = dcrw_model_input_size(j->m);
    j->cw = j->cfg.width * (int)j->o.scale;
    j->ch = j->cfg.height * (int)j->o.scale;
    j->cols = (int)ceil(sqrt((double)n));
    /* one class a column, when the classes take turns */
    if (j->cfg.classes && j->label < 0 && n >= j->cfg.classes) j->cols = j->cfg.classes;
    j->rows = (int)((n + j->cols - 1) / j->cols);
    int gw = 0, gh = 0;
    if (cli_grid_size(j->cols, j->rows, j->cw, j->ch, PAD, &gw, &gh) != 0) return -1;
    if (j->o.glimpses && cli_grid_size(j->ng, (int)n, j->cw, j->ch, PAD, &gw, &gh) != 0) return -1;
    /* every frame is held in memory until the GIF is written */
    if (j->gif && cli_grid_size(j->cols, j->rows, j->cw, j->ch, PAD, &gw, &gh) == 0 &&
        (double)gw * gh * (T + 1) > (double)(1u << 30)) {
        cli_error("--gif %s: %d frames of %dx%d pixels are too many; use fewer samples or "
                  "a smaller --scale",
                  j->gif, T + 1, gw, gh);
        return -1;
    }
    if ((size_t)T * (size_t)n > ((size_t)1 << 40) / j->P) {
        cli_error("--n %ld: too many canvases", n);
        return -1;
    }
    return 0;
}

/* Every sample's canvas after every glimpse: CLI_OK, or CLI_FAIL after a
 * message. */
static int draw_samples(sample_job *j) {
    const size_t tn = (size_t)j->cfg.glimpses * (size_t)j->o.n;
    j->canvases = malloc(tn * j->P * sizeof *j->canvases);
    if (j->windows) j->ww = malloc(tn * 5 * sizeof *j->ww);
    if (!j->canvases || (j->windows && !j->ww)) {
        cli_error("out of memory for %ld x %d canvases", j->o.n, j->cfg.glimpses);
        return CLI_FAIL;
    }
    int rc;
    if (j->cfg.classes) {
        /* a conditional model: the class asked for, or one class a column */
        int32_t *labels = malloc((size_t)j->o.n * sizeof *labels);
        if (!labels) {
            cli_error("out of memory");
            return CLI_FAIL;
        }
        for (long i = 0; i < j->o.n; i++)
            labels[i] = (int32_t)(j->label >= 0 ? j->label : i % j->cfg.classes);
        rc = dcrw_decode_labels(j->m, (int)j->o.n, labels, NULL, j->o.seed, 0, NULL, j->canvases,
                                j->ww);
        free(labels);
    } else {
        rc = dcrw_decode_windows(j->m, (int)j->o.n, NULL, j->o.seed, NULL, j->canvases, j->ww);
    }
    if (rc != DCRW_OK) {
        cli_lib_error(rc, "sampling failed");
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* Sample i's canvas @p src into cell i of the grid. */
static void paint_grid_cell(const sample_job *j, cli_image *im, int i, const float *src, int C) {
    cli_image_blit(im, PAD + (i % j->cols) * (j->cw + PAD), PAD + (i / j->cols) * (j->ch + PAD),
                   src, C, j->cfg.height, j->cfg.width, (int)j->o.scale);
}

/* --out: the final images in a grid, or with --glimpses one row per
 * sample and one column per chosen glimpse. */
static int write_png(const sample_job *j) {
    const int C = j->cfg.channels, T = j->cfg.glimpses;
    const int cols = j->o.glimpses ? j->ng : j->cols, rows = j->o.glimpses ? (int)j->o.n : j->rows;
    cli_image im = {0};
    int gw = 0, gh = 0;
    if (cli_grid_size(cols, rows, j->cw, j->ch, PAD, &gw, &gh) != 0 ||
        cli_image_alloc(&im, gw, gh, C == 3 || j->windows ? 3 : 1, BACKGROUND) != 0)
        return CLI_BAD;
    for (int i = 0; i < j->o.n; i++) {
        if (!j->o.glimpses) {
            paint_grid_cell(j, &im, i, CANVAS(j, T - 1, i), C);
            continue;
        }
        for (int k = 0; k < j->ng; k++) {
            const int bx = PAD + k * (j->cw + PAD), by = PAD + i * (j->ch + PAD);
            cli_image_blit(&im, bx, by, CANVAS(j, j->gl[k] - 1, i), C, j->cfg.height, j->cfg.width,
                           (int)j->o.scale);
            if (j->ww && j->cfg.write_attention)
                cli_draw_window(&im, bx, by, j->cw, j->ch,
                                j->ww + ((size_t)(j->gl[k] - 1) * (size_t)j->o.n + (size_t)i) * 5,
                                j->cfg.write_n, (int)j->o.scale, CLI_GREEN);
        }
    }
    int status = cli_png_write(j->o.out, &im);
    cli_image_free(&im);
    return status;
}

/* --gif: the grid's blank canvas sigma(kappa), then one frame a glimpse,
 * in grey. */
static int write_gif(const sample_job *j) {
    const int T = j->cfg.glimpses;
    int gw = 0, gh = 0, nframes = 0, status = CLI_FAIL;
    if (cli_grid_size(j->cols, j->rows, j->cw, j->ch, PAD, &gw, &gh) != 0) return CLI_BAD;
    unsigned char **frames = calloc((size_t)T + 1, sizeof *frames);
    float *blank = malloc(j->P * sizeof *blank);
    if (!frames || !blank) cli_error("out of memory");
    const float kappa = 1.0f / (1.0f + expf(-j->cfg.canvas_init));
    for (size_t p = 0; blank && p < j->P; p++) blank[p] = kappa;
    for (int t = 0; frames && blank && t <= T; t++) {
        cli_image im;
        if (cli_image_alloc(&im, gw, gh, 1, BACKGROUND) != 0) break;
        for (int i = 0; i < j->o.n; i++)
            paint_grid_cell(j, &im, i, t == 0 ? blank : CANVAS(j, t - 1, i), 1);
        frames[t] = im.px;
        nframes = t + 1;
    }
    if (nframes == T + 1)
        status = cli_gif_write(j->gif, (const unsigned char *const *)frames, nframes, gw, gh,
                               T > 20 ? 8 : 25, 200);
    for (int t = 0; frames && t < nframes; t++) free(frames[t]);
    free(frames);
    free(blank);
    return status;
}

/* Model, pictures' plan, samples, then the files: the exit status. */
static int run_sample(sample_job *j) {
    if (cli_load_model(j->o.model, &j->m) != 0 || cli_set_precision(j->m, j->o.precision) != 0)
        return CLI_BAD;
    j->cfg.size = sizeof j->cfg;
    dcrw_model_config(j->m, &j->cfg);
    if (j->cfg.classify) {
        cli_error("%s is a classifier: it does not draw images (dcrw reconstruct shows where it "
                  "looks)",
                  j->o.model);
        return CLI_BAD;
    }
    if (j->label >= 0 && j->label >= j->cfg.classes) {
        cli_error(j->cfg.classes ? "--label %ld: the model has %d classes"
                                 : "--label %ld: the model is not class-conditional",
                  j->label, (int)j->cfg.classes);
        return CLI_BAD;
    }
    if (plan_pictures(j) != 0) return CLI_BAD;
    int status = draw_samples(j);
    if (status == CLI_OK && j->o.out) status = write_png(j);
    if (status == CLI_OK && j->gif) status = write_gif(j);
    if (status != CLI_OK) return status;
    if (j->o.out) printf("%s\n", j->o.out);
    if (j->gif) printf("%s\n", j->gif);
    return CLI_OK;
}

int cmd_sample(int argc, char **argv) {
    sample_job j;
    memset(&j, 0, sizeof j);
    cli_shared_init(&j.o);
    j.o.n = 64;
    j.o.n_max = 10000;
    j.o.seed = 1;
    j.o.scale = 2;
    j.label = -1;
    int status = cli_parse_args(&sample_command, argc, argv, &j.o, &j);
    if (status >= 0) return status;
    j.o.model = cli_model_path(j.o.model);
    status = check_outputs(&j);
    if (status == 0) status = run_sample(&j);
    free(j.canvases);
    free(j.ww);
    free(j.gl);
    dcrw_model_destroy(j.m);
    return status;
}
