/* libFuzzer target: the .npy reader (dcrw_npy_read, which reads a path) on
 * arbitrary bytes held in a memfd. A set that loads must match its header:
 * the file is exactly as long as the shape declares, and every value is in
 * [0, 1]. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dcrw/dcrw.h"
#include "imageset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int fd = memfd_create("fuzz-npy", MFD_CLOEXEC);
    if (fd < 0) abort();
    for (size_t at = 0; at < size;) {
        ssize_t w = write(fd, data + at, size - at);
        if (w <= 0) abort();
        at += (size_t)w;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    dcrw_imageset s;
    int rc = dcrw_npy_read(path, &s);
    if (rc == DCRW_OK) {
        if (s.count < 1 || s.channels < 1 || s.height < 1 || s.width < 1 || s.labels) abort();
        size_t n = s.count * (size_t)s.channels * s.height * s.width;
        /* one byte per value at the least, after a 10-byte prefix */
        if (n + 10 > size) abort();
        for (size_t i = 0; i < n; i++)
            if (!(s.images[i] >= 0.0f && s.images[i] <= 1.0f)) abort();
    } else if (s.images || s.count) {
        abort();
    }
    dcrw_imageset_free(&s);
    close(fd);
    return 0;
}
