/* What the readers of lib/imageset.h share: the limits on a set's shape,
 * checked before its buffer is allocated, and its release. */
#include <string.h>

#include "common.h"
#include "imageset.h"

int dcrw_imageset_check_shape(const char *path, uint64_t count, uint64_t channels, uint64_t height,
                              uint64_t width) {
    if (count == 0) return dcrw_fail(DCRW_EFORMAT, "%.200s: holds no images", path);
    if (channels == 0 || height == 0 || width == 0)
        return dcrw_fail(DCRW_EFORMAT, "%.200s: an image dimension is zero (%llux%llux%llu)", path,
                         (unsigned long long)channels, (unsigned long long)height,
                         (unsigned long long)width);
    if (channels > DCRW_IMAGES_MAX_CHANNELS || height > DCRW_IMAGES_MAX_SIDE ||
        width > DCRW_IMAGES_MAX_SIDE)
        return dcrw_fail(DCRW_EFORMAT,
                         "%.200s: image shape %llux%llux%llu (CxHxW) exceeds the limits (C <= %u, "
                         "H, W <= %u)",
                         path, (unsigned long long)channels, (unsigned long long)height,
                         (unsigned long long)width, DCRW_IMAGES_MAX_CHANNELS, DCRW_IMAGES_MAX_SIDE);
    /* each factor is at most 2^12 here, and count is capped before the last
     * product, so nothing below can wrap */
    uint64_t pixels = channels * height * width;
    if (count > DCRW_IMAGES_MAX_VALUES / pixels)
        return dcrw_fail(DCRW_EFORMAT,
                         "%.200s: %llu images of %llu values exceed the limit of 2^31 values", path,
                         (unsigned long long)count, (unsigned long long)pixels);
    return DCRW_OK;
}

int dcrw_imageset_alloc(dcrw_imageset *s, const char *path, uint64_t count, uint64_t channels,
                        uint64_t height, uint64_t width) {
    int rc = dcrw_imageset_check_shape(path, count, channels, height, width);
    if (rc) return rc;
    uint64_t pixels = channels * height * width;
    size_t bytes;
    if (dcrw_mul_size((size_t)(count * pixels), sizeof(float), &bytes))
        return dcrw_fail(DCRW_ENOMEM, "%.200s: %llu values do not fit in memory", path,
                         (unsigned long long)(count * pixels));
    s->images = dcrw_alloc(bytes);
    if (!s->images) return DCRW_ENOMEM;
    s->count = (size_t)count;
    s->channels = (int)channels;
    s->height = (int)height;
    s->width = (int)width;
    return DCRW_OK;
}

void dcrw_imageset_free(dcrw_imageset *s) {
    if (!s) return;
    dcrw_free(s->images);
    dcrw_free(s->labels);
    memset(s, 0, sizeof *s);
}
