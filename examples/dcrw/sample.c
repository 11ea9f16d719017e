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
               "  --gif FILE.gif     an animation of the grid's canvases over the glimpses\n"
               "  --n N              number of samples (default 64)\n"
               "  --seed N           seed of the latents (default 1)\n"
               "  --scale K          pixel upscaling, 1..16 (default 2)\n");
}

enum { O_HELP = 1, O_MODEL, O_OUT, O_GLIMPSES, O_GIF, O_N, O_SEED, O_SCALE };

static const cli_opt opts[] = {
    {"help", 0, O_HELP},         {"model", 1, O_MODEL}, {"out", 1, O_OUT},
    {"glimpses", 1, O_GLIMPSES}, {"gif", 1, O_GIF},     {"n", 1, O_N},
    {"seed", 1, O_SEED},         {"scale", 1, O_SCALE}, {NULL, 0, 0}};

int cmd_sample(int argc, char **argv) {
    cli_args a = {argc, argv, 1, opts};
    const char *val, *model_path = NULL, *out = NULL, *gif = NULL, *glimpses = NULL;
    long n = 64, scale = 2;
    uint64_t seed = 1;
    int id;
    int opt_status;
    while ((id = cli_next_option(&a, &val, usage, &opt_status)) > 0) {
        switch (id) {
        case O_MODEL:
            model_path = val;
            break;
        case O_OUT:
            out = val;
            break;
        case O_GIF:
            gif = val;
            break;
        case O_GLIMPSES:
            glimpses = val;
            break;
        case O_N:
            if (cli_parse_int("n", val, 1, 10000, &n) != 0) return CLI_BAD;
            break;
        case O_SEED:
            if (cli_parse_u64("seed", val, &seed) != 0) return CLI_BAD;
            break;
        case O_SCALE:
            if (cli_parse_int("scale", val, 1, 16, &scale) != 0) return CLI_BAD;
            break;
        }
    }
    if (opt_status >= 0) return opt_status;
    model_path = cli_model_path(model_path);
    if (!out && !gif) {
        cli_error("give --out FILE.png and/or --gif FILE.gif");
        return CLI_BAD;
    }
    if (glimpses && !out) {
        cli_error("--glimpses needs --out FILE.png");
        return CLI_BAD;
    }
    /* an output may not destroy the model it is drawn from */
    cli_file in[] = {{model_path, "--model"}}, outs[2];
    size_t nout = 0;
    if (out) outs[nout++] = (cli_file){out, "--out"};
    if (gif) outs[nout++] = (cli_file){gif, "--gif"};
    if (cli_check_outputs(in, 1, outs, nout) != 0) return CLI_BAD;
    /* refuse before computing anything when the build cannot write it */
    if (out && !cli_png_available()) return cli_png_write(out, NULL);
    if (gif && !cli_gif_available()) return cli_gif_write(gif, NULL, 0, 0, 0, 0, 0);

    dcrw_model *m = NULL;
    int status = CLI_BAD, *gl = NULL, ng = 0;
    float *canvases = NULL;
    cli_image im = {0};
    unsigned char **frames = NULL;
    int nframes = 0;
    if (cli_load_model(model_path, &m) != 0) goto done;
    dcrw_config cfg = {.size = sizeof cfg};
    dcrw_model_config(m, &cfg);
    const int T = cfg.glimpses, C = cfg.channels, H = cfg.height, W = cfg.width;
    if (glimpses && (ng = cli_parse_glimpses("glimpses", glimpses, T, &gl)) < 0) goto done;
    const size_t P = dcrw_model_input_size(m);
    const int cw = W * (int)scale, ch = H * (int)scale;
    const int cols = (int)ceil(sqrt((double)n)), rows = (int)((n + cols - 1) / cols);
    int gw = 0, gh = 0;
    if (cli_grid_size(cols, rows, cw, ch, PAD, &gw, &gh) != 0) goto done;
    if (glimpses && cli_grid_size(ng, (int)n, cw, ch, PAD, &gw, &gh) != 0) goto done;
    if (gif) {
        /* every frame is held in memory until the GIF is written */
        int fw = 0, fh = 0;
        if (cli_grid_size(cols, rows, cw, ch, PAD, &fw, &fh) != 0) goto done;
        if ((double)fw * fh * (T + 1) > (double)(1u << 30)) {
            cli_error("--gif %s: %d frames of %dx%d pixels are too many; use fewer samples or "
                      "a smaller --scale",
                      gif, T + 1, fw, fh);
            goto done;
        }
    }
    if ((size_t)T * (size_t)n > ((size_t)1 << 40) / P) {
        cli_error("--n %ld: too many canvases", n);
        goto done;
    }
    canvases = malloc((size_t)T * (size_t)n * P * sizeof *canvases);
    if (!canvases) {
        cli_error("out of memory for %ld x %d canvases", n, T);
        status = CLI_FAIL;
        goto done;
    }
    int rc = dcrw_decode(m, (int)n, NULL, seed, NULL, canvases);
    if (rc != DCRW_OK) {
        cli_lib_error(rc, "sampling failed");
        status = CLI_FAIL;
        goto done;
    }
#define CANVAS(t, i) (canvases + ((size_t)(t) * (size_t)n + (size_t)(i)) * P)
    const int colour = C == 3;
    if (out) {
        if (glimpses) {
            /* one row per sample, one column per chosen glimpse */
            if (cli_grid_size(ng, (int)n, cw, ch, PAD, &gw, &gh) != 0 ||
                cli_image_alloc(&im, gw, gh, colour ? 3 : 1, BACKGROUND) != 0)
                goto done;
            for (int i = 0; i < n; i++)
                for (int k = 0; k < ng; k++)
                    cli_image_blit(&im, PAD + k * (cw + PAD), PAD + i * (ch + PAD),
                                   CANVAS(gl[k] - 1, i), C, H, W, (int)scale);
        } else {
            if (cli_grid_size(cols, rows, cw, ch, PAD, &gw, &gh) != 0 ||
                cli_image_alloc(&im, gw, gh, colour ? 3 : 1, BACKGROUND) != 0)
                goto done;
            for (int i = 0; i < n; i++)
                cli_image_blit(&im, PAD + (i % cols) * (cw + PAD), PAD + (i / cols) * (ch + PAD),
                               CANVAS(T - 1, i), C, H, W, (int)scale);
        }
        status = cli_png_write(out, &im);
        cli_image_free(&im);
        if (status != CLI_OK) goto done;
        status = CLI_BAD;
    }
    if (gif) {
        if (cli_grid_size(cols, rows, cw, ch, PAD, &gw, &gh) != 0) goto done;
        /* the blank canvas sigma(kappa) first, then every glimpse */
        frames = calloc((size_t)T + 1, sizeof *frames);
        float *blank = malloc(P * sizeof *blank);
        int ok = frames && blank;
        if (blank) {
            float v = 1.0f / (1.0f + expf(-cfg.canvas_init));
            for (size_t p = 0; p < P; p++) blank[p] = v;
        }
        for (int t = 0; ok && t <= T; t++) {
            if (cli_image_alloc(&im, gw, gh, 1, BACKGROUND) != 0) {
                ok = 0;
                break;
            }
            for (int i = 0; i < n; i++)
                cli_image_blit(&im, PAD + (i % cols) * (cw + PAD), PAD + (i / cols) * (ch + PAD),
                               t == 0 ? blank : CANVAS(t - 1, i), 1, H, W, (int)scale);
            frames[t] = im.px;
            im.px = NULL;
            nframes = t + 1;
        }
        free(blank);
        if (!ok) {
            if (!frames) cli_error("out of memory");
            status = CLI_FAIL;
            goto done;
        }
        status = cli_gif_write(gif, (const unsigned char *const *)frames, nframes, gw, gh,
                               T > 20 ? 8 : 25, 200);
        if (status != CLI_OK) goto done;
    }
#undef CANVAS
    if (out) printf("%s\n", out);
    if (gif) printf("%s\n", gif);
    status = CLI_OK;
done:
    if (frames)
        for (int t = 0; t < nframes; t++) free(frames[t]);
    free(frames);
    cli_image_free(&im);
    free(canvases);
    free(gl);
    dcrw_model_destroy(m);
    return status;
}
