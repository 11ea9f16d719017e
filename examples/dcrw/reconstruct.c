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
            "usage: dcrw reconstruct [--model CKPT] --data DIR --out FILE.png [OPTIONS]\n"
            "\n"
            "One row per test image: the image, then the canvas sigma(c_t) after each\n"
            "glimpse, with the read window (red) and the write window (green) of that\n"
            "glimpse drawn as rectangles (the span of the N x N grid of Gaussians:\n"
            "centre +- stride*(N-1)/2), for the attention the model has.\n"
            "\n"
            "  --model CKPT       a checkpoint (default: $DCRW_MODEL, else the shipped model)\n"
            "  --data DIR         folder with the MNIST IDX files\n"
            "  --out FILE.png     the picture (RGB)\n"
            "  --n N              number of images (default 16)\n"
            "  --first I          start at image I of the split (default 0)\n"
            "  --split S          test (default) or train\n"
            "  --glimpses LIST    which canvases, e.g. 1,4,6,10 or all (default: all, or 16\n"
            "                     evenly spaced ones when the model has more glimpses)\n"
            "  --binarize MODE    dynamic (default, seed %u as dcrw eval), threshold, none\n"
            "  --seed N           seed of the noise (default %u); --mean uses eps = 0 instead\n"
            "  --mean             posterior means (eps = 0) instead of sampled latents\n"
            "  --windows W        which windows to draw: both (default), read, write, none\n"
            "  --scale K          pixel upscaling, 1..16 (default 4)\n",
            CLI_EVAL_BINARIZE_SEED, CLI_EVAL_NOISE_SEED);
}

enum {
    O_HELP = 1,
    O_MODEL,
    O_DATA,
    O_OUT,
    O_N,
    O_FIRST,
    O_SPLIT,
    O_GLIMPSES,
    O_BINARIZE,
    O_SEED,
    O_MEAN,
    O_WINDOWS,
    O_SCALE
};

static const cli_opt opts[] = {{"help", 0, O_HELP},
                               {"model", 1, O_MODEL},
                               {"data", 1, O_DATA},
                               {"out", 1, O_OUT},
                               {"n", 1, O_N},
                               {"first", 1, O_FIRST},
                               {"split", 1, O_SPLIT},
                               {"glimpses", 1, O_GLIMPSES},
                               {"binarize", 1, O_BINARIZE},
                               {"seed", 1, O_SEED},
                               {"mean", 0, O_MEAN},
                               {"windows", 1, O_WINDOWS},
                               {"scale", 1, O_SCALE},
                               {NULL, 0, 0}};

static const unsigned char RED[3] = {255, 40, 40}, GREEN[3] = {40, 230, 40};

/* window (gX, gY, δ, σ², γ) of an N×N grid onto a cell of scale·W pixels */
static void draw_window(cli_image *im, int bx, int by, int bw, int bh, const float *win, int N,
                        int scale, const unsigned char rgb[3]) {
    double gx = win[0], gy = win[1], half = (double)win[2] * (N - 1) / 2.0;
    /* 1-based pixel u has its centre at u - 0.5 on a [0, W] axis */
    double x0 = scale * (gx - half - 0.5), x1 = scale * (gx + half - 0.5);
    double y0 = scale * (gy - half - 0.5), y1 = scale * (gy + half - 0.5);
    cli_image_rect(im, x0, y0, x1, y1, bx, by, bw, bh, rgb);
}

/* The picture may not replace the model or a data file it is made from. */
static int check_output(const char *model, const char *data, cli_split split, const char *out) {
    char *img = cli_split_path(data, split, 0), *lab = cli_split_path(data, split, 1);
    int rc = -1;
    if (img && lab) {
        cli_file in[] = {{model, "--model"}, {img, "--data"}, {lab, "--data"}};
        cli_file o[] = {{out, "--out"}};
        rc = cli_check_outputs(in, 3, o, 1);
    } else {
        cli_error("out of memory");
    }
    free(img);
    free(lab);
    return rc;
}

int cmd_reconstruct(int argc, char **argv) {
    cli_args a = {argc, argv, 1, opts};
    const char *val, *model_path = NULL, *data = NULL, *out = NULL, *glimpses = NULL;
    long n = 16, first = 0, scale = 4;
    cli_split split = SPLIT_TEST;
    int binarize = DCRW_BINARIZE_DYNAMIC, use_mean = 0, windows = 3, id;
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
        case O_OUT:
            out = val;
            break;
        case O_GLIMPSES:
            glimpses = val;
            break;
        case O_N:
            if (cli_parse_int("n", val, 1, 1000, &n) != 0) return CLI_BAD;
            break;
        case O_FIRST:
            if (cli_parse_int("first", val, 0, 100000000, &first) != 0) return CLI_BAD;
            break;
        case O_SPLIT:
            if (cli_parse_split("split", val, &split) != 0) return CLI_BAD;
            break;
        case O_BINARIZE:
            if (cli_parse_binarize("binarize", val, &binarize) != 0) return CLI_BAD;
            break;
        case O_SEED:
            if (cli_parse_u64("seed", val, &seed) != 0) return CLI_BAD;
            break;
        case O_MEAN:
            use_mean = 1;
            break;
        case O_WINDOWS:
            if (strcmp(val, "both") == 0)
                windows = 3;
            else if (strcmp(val, "read") == 0)
                windows = 1;
            else if (strcmp(val, "write") == 0)
                windows = 2;
            else if (strcmp(val, "none") == 0)
                windows = 0;
            else {
                cli_error("--windows: '%s' is not both, read, write or none", val);
                return CLI_BAD;
            }
            break;
        case O_SCALE:
            if (cli_parse_int("scale", val, 1, 16, &scale) != 0) return CLI_BAD;
            break;
        }
    }
    if (opt_status >= 0) return opt_status;
    if (!data || !out) {
        cli_error("give --data DIR and --out FILE.png (see --help)");
        return CLI_BAD;
    }
    model_path = cli_model_path(model_path);
    if (check_output(model_path, data, split, out) != 0) return CLI_BAD;
    if (!cli_png_available()) return cli_png_write(out, NULL);

    dcrw_model *m = NULL;
    dcrw_dataset *d = NULL;
    int status = CLI_BAD, *gl = NULL, ng = 0;
    float *x = NULL, *eps = NULL, *canvases = NULL, *rw = NULL, *ww = NULL;
    size_t *idx = NULL;
    cli_image im = {0};
    if (cli_load_model(model_path, &m) != 0) goto done;
    dcrw_config cfg = {.size = sizeof cfg};
    dcrw_model_config(m, &cfg);
    const int T = cfg.glimpses, C = cfg.channels, H = cfg.height, W = cfg.width;
    if (glimpses) {
        if ((ng = cli_parse_glimpses("glimpses", glimpses, T, &gl)) < 0) goto done;
    } else {
        ng = T <= 16 ? T : 16;
        gl = malloc((size_t)ng * sizeof *gl);
        if (!gl) {
            cli_error("out of memory");
            goto done;
        }
        /* evenly spaced, always ending on the last glimpse */
        for (int k = 0; k < ng; k++) gl[k] = (int)(((long)(k + 1) * T + ng / 2) / ng);
        gl[ng - 1] = T;
    }
    if (cli_load_split(data, split, &d) != 0) goto done;
    if (cli_check_shape(d, &cfg, "--data") != 0) goto done;
    size_t count = dcrw_dataset_count(d);
    if ((size_t)first >= count || (size_t)n > count - (size_t)first) {
        cli_error("--first %ld --n %ld: the split has only %zu images", first, n, count);
        goto done;
    }
    const int cw = W * (int)scale, ch = H * (int)scale;
    int gw = 0, gh = 0;
    if (cli_grid_size(ng + 1, (int)n, cw, ch, PAD, &gw, &gh) != 0) goto done;

    dcrw_sizes sz = {.size = sizeof sz};
    dcrw_model_sizes(m, &sz);
    const size_t P = sz.input, TBZ = (size_t)T * (size_t)n * sz.z;
    x = malloc((size_t)n * P * sizeof *x);
    eps = malloc(TBZ * sizeof *eps);
    canvases = malloc((size_t)T * (size_t)n * P * sizeof *canvases);
    rw = malloc((size_t)T * (size_t)n * 5 * sizeof *rw);
    ww = malloc((size_t)T * (size_t)n * 5 * sizeof *ww);
    idx = malloc((size_t)n * sizeof *idx);
    if (!x || !eps || !canvases || !rw || !ww || !idx) {
        cli_error("out of memory");
        status = CLI_FAIL;
        goto done;
    }
    for (long i = 0; i < n; i++) idx[i] = (size_t)(first + i);
    int rc = dcrw_dataset_batch(d, idx, (int)n, binarize, CLI_EVAL_BINARIZE_SEED, x);
    if (use_mean)
        memset(eps, 0, TBZ * sizeof *eps);
    else
        cli_fill_eps(eps, seed, (size_t)first, (int)n, (size_t)T, sz.z);
    if (rc == DCRW_OK) rc = dcrw_reconstruct_windows(m, (int)n, x, eps, NULL, canvases, rw, ww);
    if (rc != DCRW_OK) {
        cli_lib_error(rc, "reconstruction failed");
        status = CLI_FAIL;
        goto done;
    }
    if (cli_image_alloc(&im, gw, gh, 3, BACKGROUND) != 0) goto done;
    for (int i = 0; i < n; i++) {
        int y = PAD + i * (ch + PAD);
        cli_image_blit(&im, PAD, y, x + (size_t)i * P, C, H, W, (int)scale);
        for (int k = 0; k < ng; k++) {
            int t = gl[k] - 1, bx = PAD + (k + 1) * (cw + PAD);
            cli_image_blit(&im, bx, y, canvases + ((size_t)t * (size_t)n + (size_t)i) * P, C, H, W,
                           (int)scale);
            const size_t at = ((size_t)t * (size_t)n + (size_t)i) * 5;
            if ((windows & 1) && cfg.read_attention)
                draw_window(&im, bx, y, cw, ch, rw + at, cfg.read_n, (int)scale, RED);
            if ((windows & 2) && cfg.write_attention)
                draw_window(&im, bx, y, cw, ch, ww + at, cfg.write_n, (int)scale, GREEN);
        }
    }
    status = cli_png_write(out, &im);
    if (status == CLI_OK) printf("%s\n", out);
done:
    cli_image_free(&im);
    free(x);
    free(eps);
    free(canvases);
    free(rw);
    free(ww);
    free(idx);
    free(gl);
    dcrw_dataset_destroy(d);
    dcrw_model_destroy(m);
    return status;
}
