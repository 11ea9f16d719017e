/* libFuzzer target: dcrw_dataset_load_idx, which reads paths, on arbitrary
 * bytes held in memfds. The first byte picks the mode:
 *   bit 0: gzip-compress the image bytes first, so that the mutations land
 *          in the IDX header while the reader goes through zlib (gzip seeds
 *          in the corpus cover corrupt compressed streams);
 *   bit 1: split the rest at the offset in byte 1 and give the tail as
 *          the labels file.
 * A data set that loads must hold its declared count of images in [0, 1]. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "dcrw/dcrw.h"

static int memfile(const uint8_t *p, size_t n, char *path, size_t pathlen) {
    int fd = memfd_create("fuzz-idx", MFD_CLOEXEC);
    if (fd < 0) abort();
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) abort();
        p += w;
        n -= (size_t)w;
    }
    snprintf(path, pathlen, "/proc/self/fd/%d", fd);
    return fd;
}

static uint8_t *gzip_bytes(const uint8_t *p, size_t n, size_t *out_n) {
    z_stream z = {0};
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
    size_t cap = deflateBound(&z, (uLong)n) + 32;
    uint8_t *out = malloc(cap);
    if (!out) abort();
    z.next_in = (Bytef *)p;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) abort();
    *out_n = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    const int gz = data[0] & 1, labels = data[0] & 2;
    size_t split = labels ? (size_t)data[1] : size - 2;
    data += 2, size -= 2;
    if (split > size) split = size;
    const uint8_t *img = data;
    size_t img_n = split;
    uint8_t *packed = NULL;
    if (gz) img = packed = gzip_bytes(data, split, &img_n);
    char ipath[64], lpath[64];
    int ifd = memfile(img, img_n, ipath, sizeof ipath), lfd = -1;
    if (labels) lfd = memfile(data + split, size - split, lpath, sizeof lpath);
    dcrw_dataset *d = NULL;
    int rc = dcrw_dataset_load_idx(&d, ipath, labels ? lpath : NULL);
    if (rc == DCRW_OK) {
        int c, h, w;
        if (dcrw_dataset_shape(d, &c, &h, &w) != DCRW_OK || c < 1 || h < 1 || w < 1) abort();
        size_t n = dcrw_dataset_count(d), pix = (size_t)c * h * w;
        if (n < 1 || (!gz && n * pix + 12 > img_n)) abort();
        const float *x = dcrw_dataset_images(d);
        for (size_t i = 0; i < n * pix; i++)
            if (!(x[i] >= 0.0f && x[i] <= 1.0f)) abort();
        if (labels && dcrw_dataset_label(d, n - 1) < 0) abort();
    } else if (d) {
        abort();
    }
    dcrw_dataset_destroy(d);
    close(ifd);
    if (lfd >= 0) close(lfd);
    free(packed);
    return 0;
}
