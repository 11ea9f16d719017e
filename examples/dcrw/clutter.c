/* Cluttered canvases made afresh for every use: see clutter.h. */
#include "clutter.h"

#include <string.h>

#define CLUTTER_KEY 0x636c757474657221ull /* keeps the canvas keys apart from others */

int clutter_init(clutter *c, const dcrw_dataset *d, size_t pool, int side, uint64_t seed) {
    int ch = 0, h = 0, w = 0;
    dcrw_dataset_shape(d, &ch, &h, &w);
    if (h > side || w > side) {
        cli_error("--clutter %d: the data's images are %dx%d, larger than the canvas", side, h, w);
        return -1;
    }
    if (h < CLUTTER_FRAGMENT || w < CLUTTER_FRAGMENT) {
        cli_error("--clutter: the data's images are %dx%d, smaller than the %dx%d fragments", h, w,
                  CLUTTER_FRAGMENT, CLUTTER_FRAGMENT);
        return -1;
    }
    if (pool < 2) {
        cli_error("--clutter: the fragments need at least 2 training images");
        return -1;
    }
    *c = (clutter){dcrw_dataset_images(d), pool, ch, h, w, side, cli_key(seed ^ CLUTTER_KEY, 0)};
    return 0;
}

/* The h×w block of image @p src at (sy, sx) onto the canvas at (py, px), by
 * the brighter pixel, in every channel. */
static void paste_max(const clutter *c, float *canvas, const float *src, int sy, int sx, int h,
                      int w, int py, int px) {
    const size_t plane = (size_t)c->side * c->side, in_plane = (size_t)c->dh * c->dw;
    for (int k = 0; k < c->channels; k++)
        for (int i = 0; i < h; i++) {
            const float *s = src + k * in_plane + (size_t)(sy + i) * c->dw + sx;
            float *o = canvas + k * plane + (size_t)(py + i) * c->side + px;
            for (int j = 0; j < w; j++) o[j] = s[j] > o[j] ? s[j] : o[j];
        }
}

void clutter_batch(const clutter *c, const size_t *idx, int B, uint64_t use, float *x) {
    const size_t P = (size_t)c->channels * c->side * c->side;
    const size_t in_p = (size_t)c->channels * c->dh * c->dw;
    const uint64_t use_key = cli_key(c->seed, use);
    const int F = CLUTTER_FRAGMENT;
    memset(x, 0, (size_t)B * P * sizeof *x);
    for (int b = 0; b < B; b++) {
        float *canvas = x + (size_t)b * P;
        const size_t digit = idx[b];
        uint64_t state = cli_key(use_key, digit);
        for (int k = 0; k < CLUTTER_FRAGMENTS; k++) {
            /* another image than the digit */
            size_t other;
            if (digit < c->pool) {
                other = (size_t)cli_below(&state, c->pool - 1);
                other += other >= digit;
            } else {
                other = (size_t)cli_below(&state, c->pool);
            }
            int sy = (int)cli_below(&state, (uint64_t)(c->dh - F + 1));
            int sx = (int)cli_below(&state, (uint64_t)(c->dw - F + 1));
            int py = (int)cli_below(&state, (uint64_t)(c->side - F + 1));
            int px = (int)cli_below(&state, (uint64_t)(c->side - F + 1));
            paste_max(c, canvas, c->images + other * in_p, sy, sx, F, F, py, px);
        }
        int y = (int)cli_below(&state, (uint64_t)(c->side - c->dh + 1));
        int xx = (int)cli_below(&state, (uint64_t)(c->side - c->dw + 1));
        paste_max(c, canvas, c->images + digit * in_p, 0, 0, c->dh, c->dw, y, xx);
    }
}
