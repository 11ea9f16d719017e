/* The readers of image files other than IDX (NumPy .npy, folders of PNG),
 * each decoding a file into one flat buffer of floats that a dcrw_dataset
 * then adopts. Not part of the ABI. */
#ifndef DCRW_LIB_IMAGESET_H
#define DCRW_LIB_IMAGESET_H

#include <stddef.h>
#include <stdint.h>

#include "dcrw/dcrw.h"

/* The limits dcrw_config_validate puts on an image (lib/config.c) and the
 * cap on the total that every reader shares (lib/dataset.c): a set beyond
 * them cannot be trained on, so it is refused before anything is
 * allocated for it. */
#define DCRW_IMAGES_MAX_SIDE 4096u
#define DCRW_IMAGES_MAX_CHANNELS 64u
#define DCRW_IMAGES_MAX_VALUES ((uint64_t)1 << 31)

/* Decoded images, each channel-major (C×H×W), values in [0, 1]. */
typedef struct dcrw_imageset {
    size_t count;
    int channels, height, width;
    float *images;   /* count*C*H*W, dcrw_alloc'ed */
    int32_t *labels; /* count, dcrw_alloc'ed, or NULL */
    int classes;     /* labels lie in [0, classes); 0 without labels */
} dcrw_imageset;

/* Check a shape against the limits: every dimension >= 1, C, H, W and the
 * total within the DCRW_IMAGES_MAX_* above. DCRW_EFORMAT naming path and
 * the limit. */
int dcrw_imageset_check_shape(const char *path, uint64_t count, uint64_t channels, uint64_t height,
                              uint64_t width);

/* Check the shape as above and allocate s->images for it, setting the
 * count and shape. DCRW_EFORMAT, DCRW_ENOMEM. */
int dcrw_imageset_alloc(dcrw_imageset *s, const char *path, uint64_t count, uint64_t channels,
                        uint64_t height, uint64_t width);

/* Release what a reader allocated and zero *s; safe on a zeroed set. */
void dcrw_imageset_free(dcrw_imageset *s);

/* 1 if the file starts with the .npy magic ("\x93NUMPY"), 0 if not or if
 * it cannot be read (the reader then says why). */
int dcrw_npy_sniff(const char *path);

/* Read a .npy file: uint8 (0..255, divided by 255), float32 or float64
 * (every value finite and in [0, 1]); shape [N,H,W], [N,C,H,W] or
 * [N,H,W,C] (told apart by dcrw_npy_layout), C order. On failure *s is
 * zeroed and the error recorded: DCRW_EIO, DCRW_EFORMAT, DCRW_ETRUNCATED,
 * DCRW_EUNSUPPORTED (another dtype, Fortran order), DCRW_ENUMERIC (NaN or
 * infinity), DCRW_ENOMEM. */
int dcrw_npy_read(const char *path, dcrw_imageset *s);

/* The rule for a 4-D shape [N, a, b, c]: channels last (NHWC) when c is 1,
 * 3 or 4 and a is none of them, channels first (NCHW) otherwise. Returns
 * 1 for NHWC. */
int dcrw_npy_channels_last(uint64_t a, uint64_t c);

/* 1 if path is a folder holding PNG files, directly or one level down in
 * class folders; 0 otherwise (not a folder, unreadable, no PNG). */
int dcrw_pngdir_sniff(const char *path);

/* Read a folder of PNG files: either the images themselves (no labels) or
 * one subfolder per class (label = the subfolder's rank among them in
 * byte order of the names; an empty one is a class without images). Files are taken in byte order
 * of their names; names starting with '.' and files not ending in ".png" are skipped. Grey,
 * grey+alpha, RGB and RGBA (palette images as RGB, or RGBA with a transparency chunk), 1 to 16
 * bits, all of one channel count, height and width. On failure *s is zeroed and the error recorded:
 * DCRW_EIO, DCRW_EFORMAT, DCRW_ETRUNCATED, DCRW_ESHAPE (an image differs from the first),
 * DCRW_ENOTFOUND (no PNG at all), DCRW_EUNSUPPORTED (a build without libpng), DCRW_ENOMEM. */
int dcrw_pngdir_read(const char *path, dcrw_imageset *s);

/* A data set made of s's buffers, which it takes over (s keeps its shape
 * and NULL pointers): DCRW_OK, or DCRW_ENOMEM with s untouched. In
 * lib/dataset.c, beside the data set's definition. */
int dcrw_dataset_adopt(dcrw_dataset **out, dcrw_imageset *s);

#endif
