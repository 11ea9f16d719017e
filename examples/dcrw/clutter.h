/* Cluttered canvases made afresh for every use (dcrw train --clutter SIDE):
 * DRAW's cluttered MNIST (§4.1, after Mnih et al. 2014), one digit at a
 * random place on a SIDE×SIDE black canvas with eight 8×8 fragments cut
 * from other digits, combined by the brighter pixel, as
 * examples/datasets/cluttered_mnist.py writes it once. A fixed set of
 * canvases is learned by heart by a classifier that sees it a hundred
 * times; a canvas drawn from (seed, use, digit) is new at every use and
 * still a pure function of the run's flags, so a resumed run sees the
 * canvases the straight one did. */
#ifndef DCRW_CLI_CLUTTER_H
#define DCRW_CLI_CLUTTER_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

#define CLUTTER_FRAGMENTS 8
#define CLUTTER_FRAGMENT 8
/* the use of the held-out canvases: the same every time, so that two
 * evaluations differ only through the model */
#define CLUTTER_FIXED_USE UINT64_MAX

typedef struct clutter {
    const float *images; /* the digits, C×dh×dw floats each */
    size_t pool;         /* fragments are cut from digits [0, pool) */
    int channels, dh, dw, side;
    uint64_t seed;
} clutter;

/* Canvases of @p side from the digits of @p d, their fragments from its
 * first @p pool images (at least 2). 0, or -1 after a message (digits
 * larger than the canvas or smaller than a fragment). */
int clutter_init(clutter *c, const dcrw_dataset *d, size_t pool, int side, uint64_t seed);
/* Canvas b of @p x [B × C·side·side] holds digit @p idx[b], drawn for the
 * @p use-th time (the training epoch, or CLUTTER_FIXED_USE). */
void clutter_batch(const clutter *c, const size_t *idx, int B, uint64_t use, float *x);

#endif
