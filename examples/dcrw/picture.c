/* Pictures in memory for dcrw sample and reconstruct: 8-bit grey or RGB
 * pixels, grids of cells, images painted in, rectangles drawn on them
 * (png.c and gif.c write them out). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

int cli_image_alloc(cli_image *im, int width, int height, int channels, unsigned char fill) {
    im->px = NULL;
    im->width = width;
    im->height = height;
    im->channels = channels;
    /* PNG and GIF both cap what is sensible far below this */
    if (width < 1 || height < 1 || width > 30000 || height > 30000 || channels < 1) {
        cli_error("picture of %dx%d pixels is too large; use fewer images or a smaller --scale",
                  width, height);
        return -1;
    }
    size_t n = (size_t)width * (size_t)height * (size_t)channels;
    im->px = malloc(n);
    if (!im->px) {
        cli_error("out of memory for a %dx%d picture", width, height);
        return -1;
    }
    memset(im->px, fill, n);
    return 0;
}

void cli_image_free(cli_image *im) {
    free(im->px);
    im->px = NULL;
}

void cli_image_blit(cli_image *im, int x0, int y0, const float *src, int C, int h, int w,
                    int scale) {
    const int colour = C == 3 && im->channels == 3;
    const size_t plane = (size_t)h * (size_t)w;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            unsigned char v[3];
            for (int c = 0; c < 3; c++) {
                float f = src[(colour ? (size_t)c * plane : 0) + (size_t)y * (size_t)w + (size_t)x];
                if (!(f >= 0.0f)) f = 0.0f; /* also NaN */
                if (f > 1.0f) f = 1.0f;
                v[c] = (unsigned char)lrintf(f * 255.0f);
            }
            for (int dy = 0; dy < scale; dy++) {
                int py = y0 + y * scale + dy;
                if (py < 0 || py >= im->height) continue;
                for (int dx = 0; dx < scale; dx++) {
                    int px = x0 + x * scale + dx;
                    if (px < 0 || px >= im->width) continue;
                    unsigned char *p =
                        im->px + ((size_t)py * (size_t)im->width + (size_t)px) * im->channels;
                    for (int c = 0; c < im->channels; c++) p[c] = v[c < 3 ? c : 0];
                }
            }
        }
}

int cli_grid_size(int n_cols, int n_rows, int cell_w, int cell_h, int pad, int *w, int *h) {
    long long ww = (long long)n_cols * (cell_w + pad) + pad;
    long long hh = (long long)n_rows * (cell_h + pad) + pad;
    if (n_cols < 1 || n_rows < 1 || ww > 30000 || hh > 30000) {
        cli_error("a picture of %lldx%lld pixels is too large; use fewer images or a smaller "
                  "--scale",
                  ww, hh);
        return -1;
    }
    *w = (int)ww;
    *h = (int)hh;
    return 0;
}

static void put(cli_image *im, int x, int y, const unsigned char rgb[3]) {
    if (x < 0 || y < 0 || x >= im->width || y >= im->height) return;
    unsigned char *p = im->px + ((size_t)y * (size_t)im->width + (size_t)x) * im->channels;
    if (im->channels >= 3) {
        p[0] = rgb[0];
        p[1] = rgb[1];
        p[2] = rgb[2];
    } else {
        p[0] = (unsigned char)((rgb[0] + rgb[1] + rgb[2]) / 3);
    }
}

void cli_image_rect(cli_image *im, double x0, double y0, double x1, double y1, int bx, int by,
                    int bw, int bh, const unsigned char rgb[3]) {
    if (!(x0 <= x1) || !(y0 <= y1)) return; /* also rejects NaN */
    /* far outside: nothing to draw, and the casts below stay in range */
    if (x1 < -1.0 || y1 < -1.0 || x0 > bw + 1.0 || y0 > bh + 1.0) return;
    if (x0 < -1.0) x0 = -1.0;
    if (y0 < -1.0) y0 = -1.0;
    if (x1 > bw + 1.0) x1 = bw + 1.0;
    if (y1 > bh + 1.0) y1 = bh + 1.0;
    int ix0 = (int)floor(x0), iy0 = (int)floor(y0);
    int ix1 = (int)floor(x1), iy1 = (int)floor(y1);
    /* a window smaller than a pixel still shows as a small box */
    if (ix1 - ix0 < 2) ix1 = ix0 + 2;
    if (iy1 - iy0 < 2) iy1 = iy0 + 2;
    for (int x = ix0; x <= ix1; x++) {
        if (x < 0 || x >= bw) continue;
        if (iy0 >= 0 && iy0 < bh) put(im, bx + x, by + iy0, rgb);
        if (iy1 >= 0 && iy1 < bh) put(im, bx + x, by + iy1, rgb);
    }
    for (int y = iy0; y <= iy1; y++) {
        if (y < 0 || y >= bh) continue;
        if (ix0 >= 0 && ix0 < bw) put(im, bx + ix0, by + y, rgb);
        if (ix1 >= 0 && ix1 < bw) put(im, bx + ix1, by + y, rgb);
    }
}

const unsigned char CLI_RED[3] = {255, 40, 40}, CLI_GREEN[3] = {40, 230, 40};

int cli_parse_windows(const char *val, int *mask) {
    static const struct {
        const char *name;
        int mask;
    } choices[] = {{"both", CLI_WINDOW_READ | CLI_WINDOW_WRITE},
                   {"read", CLI_WINDOW_READ},
                   {"write", CLI_WINDOW_WRITE},
                   {"none", 0}};
    for (size_t k = 0; k < sizeof choices / sizeof choices[0]; k++)
        if (strcmp(val, choices[k].name) == 0) {
            *mask = choices[k].mask;
            return 0;
        }
    cli_error("--windows: '%s' is not both, read, write or none", val);
    return -1;
}

void cli_draw_window(cli_image *im, int bx, int by, int bw, int bh, const float *win, int N,
                     int scale, const unsigned char rgb[3]) {
    double gx = win[0], gy = win[1], half = (double)win[2] * (N - 1) / 2.0;
    /* 1-based pixel u has its centre at u - 0.5 on a [0, W] axis */
    double x0 = scale * (gx - half - 0.5), x1 = scale * (gx + half - 0.5);
    double y0 = scale * (gy - half - 0.5), y1 = scale * (gy + half - 0.5);
    cli_image_rect(im, x0, y0, x1, y1, bx, by, bw, bh, rgb);
}
