/* IDX data sets (the MNIST format), plain or gzip-compressed, held in memory
 * as floats, and the batches the trainer draws from them. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "file.h"
#include "imageset.h"
#include "rng.h"
#include "vmath.h"

/* gzip-compressed files need zlib. meson says whether to use it
 * (-DDCRW_HAVE_ZLIB=0/1); other builds use it when its header is there
 * (then link -lz, or give -DDCRW_HAVE_ZLIB=0). */
#if !defined(DCRW_HAVE_ZLIB) && defined(__has_include)
#if __has_include(<zlib.h>)
#define DCRW_HAVE_ZLIB 1
#endif
#endif
#ifndef DCRW_HAVE_ZLIB
#define DCRW_HAVE_ZLIB 0
#endif
#if DCRW_HAVE_ZLIB
#include <zlib.h>
#endif

/* The limits dcrw_config_validate puts on an image (lib/config.c); a file beyond them cannot be
 * trained on, so it is refused here rather than deep inside the model. */
#define IDX_MAX_SIDE 4096u
#define IDX_MAX_CHANNELS 64u
/* Caps the total and therefore also what a decompression bomb can make us
 * allocate or read. */
#define IDX_MAX_VALUES ((uint64_t)1 << 31)

struct dcrw_dataset {
    size_t count;
    int channels, height, width;
    size_t pixels;   /* channels*height*width */
    float *images;   /* count*pixels */
    int32_t *labels; /* count, or NULL */
};

/* The raw bytes of a file are read through a buffer of this size. */
#define IDX_INBUF ((size_t)1 << 16)

/* One reader over a plain file or a gzip stream, so that the parser does
 * not care which it got. The gzip stream is inflated here rather than by
 * gzread, which ignores whatever follows the compressed data: a gzip file
 * must end where its data does, as a plain one must. */
typedef struct {
    const char *path;
    int fd;
    int gzip;
    uint64_t size;     /* bytes on disk */
    unsigned char *in; /* raw bytes read ahead: in[at .. len) */
    size_t at, len;
    int raw_eof;
#if DCRW_HAVE_ZLIB
    z_stream zs;
    int zs_ready;    /* inflateInit2 succeeded */
    int member_done; /* the current gzip member ended */
    int data_done;   /* the last member ended at the end of the file */
#endif
} idx_reader;

/* Make at least k raw bytes available (fewer only at the end of the file). */
static int raw_ensure(idx_reader *r, size_t k) {
    if (r->len - r->at >= k) return DCRW_OK;
    memmove(r->in, r->in + r->at, r->len - r->at);
    r->len -= r->at;
    r->at = 0;
    while (r->len < k && !r->raw_eof) {
        ssize_t got = read(r->fd, r->in + r->len, IDX_INBUF - r->len);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return dcrw_fail(DCRW_EIO, "cannot read %s: %s", r->path, strerror(errno));
        if (got == 0) r->raw_eof = 1;
        r->len += (size_t)got;
    }
    return DCRW_OK;
}

static void reader_close(idx_reader *r) {
#if DCRW_HAVE_ZLIB
    if (r->zs_ready) inflateEnd(&r->zs);
    r->zs_ready = 0;
#endif
    dcrw_free(r->in);
    r->in = NULL;
    if (r->fd >= 0) close(r->fd);
    r->fd = -1;
}

/* Sniff the first two bytes: gzip is told from plain data by the content,
 * the name says nothing reliable. */
static int reader_start(idx_reader *r) {
    r->in = dcrw_alloc(IDX_INBUF);
    if (!r->in) return DCRW_ENOMEM;
    int rc = raw_ensure(r, 2);
    if (rc) return rc;
    r->gzip = r->len >= 2 && r->in[0] == 0x1f && r->in[1] == 0x8b;
    if (!r->gzip) return DCRW_OK;
#if DCRW_HAVE_ZLIB
    /* 15 + 16: a gzip wrapper around a deflate stream with a 32 KiB window */
    int zr = inflateInit2(&r->zs, 15 + 16);
    if (zr != Z_OK)
        return dcrw_fail(zr == Z_MEM_ERROR ? DCRW_ENOMEM : DCRW_EIO,
                         "cannot start decompressing %s", r->path);
    r->zs_ready = 1;
    return DCRW_OK;
#else
    return dcrw_fail(DCRW_EUNSUPPORTED, "%s is gzip-compressed but this build has no zlib",
                     r->path);
#endif
}

static int reader_open(idx_reader *r, const char *path) {
    memset(r, 0, sizeof *r);
    r->path = path;
    int rc = dcrw_file_open_read(path, &r->fd, &r->size);
    if (!rc) rc = reader_start(r);
    if (rc) reader_close(r);
    return rc;
}

/* Up to n raw bytes of a plain file. */
static int plain_read(idx_reader *r, unsigned char *p, size_t n, size_t *got) {
    while (*got < n) {
        int rc = raw_ensure(r, 1);
        if (rc) return rc;
        size_t k = r->len - r->at;
        if (k == 0) break; /* the end of the file */
        if (k > n - *got) k = n - *got;
        memcpy(p + *got, r->in + r->at, k);
        r->at += k;
        *got += k;
    }
    return DCRW_OK;
}

#if DCRW_HAVE_ZLIB
/* After a gzip member: the end of the file, or another member (gzip
 * allows them to be concatenated); any other byte is trailing garbage. */
static int gz_next_member(idx_reader *r) {
    int rc = raw_ensure(r, 2);
    if (rc) return rc;
    if (r->len == r->at) {
        r->data_done = 1;
        return DCRW_OK;
    }
    if (r->len - r->at < 2 || r->in[r->at] != 0x1f || r->in[r->at + 1] != 0x8b)
        return dcrw_fail(DCRW_EFORMAT, "%s: trailing bytes after the gzip-compressed data",
                         r->path);
    inflateReset(&r->zs);
    r->member_done = 0;
    return DCRW_OK;
}

static int gz_error(const idx_reader *r, int zr) {
    const char *msg = r->zs.msg ? r->zs.msg : "no detail";
    if (zr == Z_MEM_ERROR) return dcrw_fail(DCRW_ENOMEM, "out of memory decompressing %s", r->path);
    return dcrw_fail(DCRW_EFORMAT, "%s: corrupt gzip stream (%s)", r->path, msg);
}

/* Up to n decompressed bytes. */
static int gz_read(idx_reader *r, unsigned char *p, size_t n, size_t *got) {
    while (*got < n && !r->data_done) {
        int rc = r->member_done ? gz_next_member(r) : raw_ensure(r, 1);
        if (rc) return rc;
        if (r->member_done || r->data_done) continue;
        size_t want = n - *got < ((size_t)1 << 30) ? n - *got : (size_t)1 << 30;
        r->zs.next_in = r->in + r->at;
        r->zs.avail_in = (uInt)(r->len - r->at);
        r->zs.next_out = p + *got;
        r->zs.avail_out = (uInt)want;
        int zr = inflate(&r->zs, Z_NO_FLUSH);
        *got += want - r->zs.avail_out;
        r->at = r->len - r->zs.avail_in;
        if (zr == Z_STREAM_END) {
            r->member_done = 1;
        } else if (zr == Z_BUF_ERROR && r->raw_eof && r->at == r->len) {
            /* a stream cut short, even one missing only its CRC trailer */
            return dcrw_fail(DCRW_ETRUNCATED, "%s: gzip stream ends early", r->path);
        } else if (zr != Z_OK && zr != Z_BUF_ERROR) {
            return gz_error(r, zr);
        }
    }
    return DCRW_OK;
}
#endif

/* Read up to n bytes; *got is how many came before the end of the data.
 * A short read is not an error here: the caller knows what it expected. */
static int reader_read(idx_reader *r, void *buf, size_t n, size_t *got) {
    *got = 0;
#if DCRW_HAVE_ZLIB
    if (r->gzip) return gz_read(r, buf, n, got);
#endif
    return plain_read(r, buf, n, got);
}

static int reader_exact(idx_reader *r, void *buf, size_t n, const char *what) {
    size_t got;
    int rc = reader_read(r, buf, n, &got);
    if (rc) return rc;
    if (got < n)
        return dcrw_fail(DCRW_ETRUNCATED, "%s: file ends in the %s (%zu of %zu bytes)", r->path,
                         what, got, n);
    return DCRW_OK;
}

/* The data must end exactly where the header says: one more byte than
 * declared is all we try, so a bomb is never inflated past it. */
static int reader_expect_end(idx_reader *r) {
    unsigned char extra;
    size_t got;
    int rc = reader_read(r, &extra, 1, &got);
    if (rc) return rc;
    if (got) return dcrw_fail(DCRW_EFORMAT, "%s: trailing bytes after the declared data", r->path);
    return DCRW_OK;
}

typedef struct {
    unsigned ndim;
    uint32_t dims[4];
    uint64_t total; /* product of dims */
} idx_header;

static uint32_t be32(const unsigned char *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

/* Parse the magic and dimensions; accepts ndim in [min_ndim, max_ndim]. */
static int read_header(idx_reader *r, unsigned min_ndim, unsigned max_ndim, idx_header *h) {
    unsigned char magic[4];
    int rc = reader_exact(r, magic, 4, "header");
    if (rc) return rc;
    if (magic[0] != 0 || magic[1] != 0)
        return dcrw_fail(DCRW_EFORMAT, "%s: not an IDX file (magic %02x %02x)", r->path, magic[0],
                         magic[1]);
    switch (magic[2]) {
    case 0x08:
        break;
    case 0x09:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x0E:
        return dcrw_fail(DCRW_EUNSUPPORTED,
                         "%s: IDX element type 0x%02x; only unsigned bytes (0x08) are supported",
                         r->path, magic[2]);
    default:
        return dcrw_fail(DCRW_EFORMAT, "%s: unknown IDX element type 0x%02x", r->path, magic[2]);
    }
    h->ndim = magic[3];
    if (h->ndim < min_ndim || h->ndim > max_ndim) {
        if (min_ndim == max_ndim)
            return dcrw_fail(DCRW_EFORMAT, "%s: %u dimensions, expected %u", r->path, h->ndim,
                             min_ndim);
        return dcrw_fail(DCRW_EFORMAT, "%s: %u dimensions, expected %u to %u", r->path, h->ndim,
                         min_ndim, max_ndim);
    }
    unsigned char dims[16];
    rc = reader_exact(r, dims, 4 * (size_t)h->ndim, "header");
    if (rc) return rc;
    h->total = 1;
    for (unsigned i = 0; i < h->ndim; i++) {
        h->dims[i] = be32(dims + 4 * i);
        if (h->dims[i] == 0) return dcrw_fail(DCRW_EFORMAT, "%s: dimension %u is zero", r->path, i);
        /* total <= 2^31 before and dims < 2^32, so this product cannot wrap */
        h->total *= h->dims[i];
        if (h->total > IDX_MAX_VALUES)
            return dcrw_fail(DCRW_EFORMAT, "%s: absurd size (more than 2^31 values)", r->path);
    }
    return DCRW_OK;
}

/* Refuse, before allocating for it, data the file cannot possibly hold: a
 * plain file is exactly header + data bytes, and deflate expands at most
 * 1032:1, so a small file that declares gigabytes fails at once instead of
 * after a giant allocation. */
static int check_room(const idx_reader *r, const idx_header *h) {
    uint64_t need = 4 + 4 * (uint64_t)h->ndim + h->total;
    if (r->gzip) {
        if ((h->total + 1031u) / 1032u > r->size)
            return dcrw_fail(DCRW_ETRUNCATED,
                             "%s: %llu compressed bytes cannot hold the %llu declared values",
                             r->path, (unsigned long long)r->size, (unsigned long long)h->total);
        return DCRW_OK;
    }
    if (r->size < need)
        return dcrw_fail(DCRW_ETRUNCATED, "%s: file has %llu bytes, its header declares %llu",
                         r->path, (unsigned long long)r->size, (unsigned long long)need);
    if (r->size > need)
        return dcrw_fail(DCRW_EFORMAT,
                         "%s: trailing bytes (file has %llu bytes, its header declares %llu)",
                         r->path, (unsigned long long)r->size, (unsigned long long)need);
    return DCRW_OK;
}

static int load_images(dcrw_dataset *d, const char *path) {
    idx_reader r;
    int rc = reader_open(&r, path);
    if (rc) return rc;
    idx_header h;
    rc = read_header(&r, 3, 4, &h);
    if (rc) goto done;
    uint32_t c = h.ndim == 4 ? h.dims[1] : 1;
    uint32_t hh = h.dims[h.ndim - 2], ww = h.dims[h.ndim - 1];
    if (c > IDX_MAX_CHANNELS || hh > IDX_MAX_SIDE || ww > IDX_MAX_SIDE) {
        rc = dcrw_fail(DCRW_EFORMAT,
                       "%s: image shape %ux%ux%u exceeds the limits (C <= %u, H, W <= %u)", path,
                       (unsigned)c, (unsigned)hh, (unsigned)ww, IDX_MAX_CHANNELS, IDX_MAX_SIDE);
        goto done;
    }
    rc = check_room(&r, &h);
    if (rc) goto done;
    d->count = h.dims[0];
    d->channels = (int)c;
    d->height = (int)hh;
    d->width = (int)ww;
    d->pixels = (size_t)c * hh * ww;
    size_t total = (size_t)h.total, bytes;
    if (dcrw_mul_size(total, sizeof(float), &bytes)) {
        rc = dcrw_fail(DCRW_ENOMEM, "%s: %zu values do not fit in memory", path, total);
        goto done;
    }
    d->images = dcrw_alloc(bytes);
    if (!d->images) {
        rc = DCRW_ENOMEM;
        goto done;
    }
    /* convert through a small buffer so the bytes never need a copy of the
     * whole file */
    unsigned char chunk[1 << 16];
    for (size_t at = 0; at < total;) {
        size_t n = total - at < sizeof chunk ? total - at : sizeof chunk, got;
        rc = reader_read(&r, chunk, n, &got);
        if (rc) goto done;
        for (size_t i = 0; i < got; i++) d->images[at + i] = (float)chunk[i] / 255.0f;
        at += got;
        if (got < n) {
            rc = dcrw_fail(DCRW_ETRUNCATED, "%s: file ends after %zu of %zu pixel bytes", path, at,
                           total);
            goto done;
        }
    }
    rc = reader_expect_end(&r);
done:
    reader_close(&r);
    return rc;
}

static int load_labels(dcrw_dataset *d, const char *path) {
    idx_reader r;
    int rc = reader_open(&r, path);
    if (rc) return rc;
    idx_header h;
    rc = read_header(&r, 1, 1, &h);
    if (rc) goto done;
    if (h.dims[0] != d->count) {
        rc = dcrw_fail(DCRW_ESHAPE, "%s: %u labels for %zu images", path, (unsigned)h.dims[0],
                       d->count);
        goto done;
    }
    rc = check_room(&r, &h);
    if (rc) goto done;
    d->labels = dcrw_alloc(d->count * sizeof *d->labels);
    uint8_t *bytes = d->labels ? dcrw_alloc(d->count) : NULL;
    if (!bytes) {
        rc = DCRW_ENOMEM;
        goto done;
    }
    rc = reader_exact(&r, bytes, d->count, "labels");
    for (size_t i = 0; !rc && i < d->count; i++) d->labels[i] = bytes[i];
    dcrw_free(bytes);
    if (rc) goto done;
    rc = reader_expect_end(&r);
done:
    reader_close(&r);
    return rc;
}

int dcrw_dataset_load_idx(dcrw_dataset **out, const char *images_path, const char *labels_path) {
    DCRW_CHECK_ARG(out, "dcrw_dataset_load_idx: out is NULL");
    *out = NULL;
    DCRW_CHECK_ARG(images_path, "dcrw_dataset_load_idx: images_path is NULL");
    dcrw_dataset *d = dcrw_calloc(1, sizeof *d);
    if (!d) return DCRW_ENOMEM;
    int rc = load_images(d, images_path);
    if (!rc && labels_path) rc = load_labels(d, labels_path);
    if (rc) {
        dcrw_dataset_destroy(d);
        return rc;
    }
    *out = d;
    return DCRW_OK;
}

int dcrw_dataset_adopt(dcrw_dataset **out, dcrw_imageset *s) {
    dcrw_dataset *d = dcrw_calloc(1, sizeof *d);
    if (!d) return DCRW_ENOMEM;
    d->count = s->count;
    d->channels = s->channels;
    d->height = s->height;
    d->width = s->width;
    d->pixels = (size_t)s->channels * s->height * s->width;
    d->images = s->images;
    d->labels = s->labels;
    s->images = NULL;
    s->labels = NULL;
    *out = d;
    return DCRW_OK;
}

size_t dcrw_dataset_count(const dcrw_dataset *d) {
    return d ? d->count : 0;
}

int dcrw_dataset_shape(const dcrw_dataset *d, int *channels, int *height, int *width) {
    DCRW_CHECK_ARG(d, "dcrw_dataset_shape: d is NULL");
    if (channels) *channels = d->channels;
    if (height) *height = d->height;
    if (width) *width = d->width;
    return DCRW_OK;
}

int dcrw_dataset_label(const dcrw_dataset *d, size_t i) {
    if (!d || !d->labels || i >= d->count) return -1;
    return d->labels[i];
}

/* Pixel p is 1 with probability src[p]: rng_uniform(key, p) in a loop of
 * its own, which vectorises where 64-bit multiplies do (AVX-512) */
DCRW_VECTOR_CLONES
static void binarize_row(size_t P, uint64_t key, const float *restrict src, float *restrict dst) {
    for (size_t p = 0; p < P; p++) dst[p] = rng_uniform(key, p) < src[p] ? 1.0f : 0.0f;
}

int dcrw_dataset_batch(const dcrw_dataset *d, const size_t *indices, int B, int binarize,
                       uint64_t seed, float *x) {
    DCRW_CHECK_ARG(d && indices && x, "dcrw_dataset_batch: NULL argument");
    DCRW_CHECK_ARG(B >= 1, "dcrw_dataset_batch: B must be >= 1, got %d", B);
    DCRW_CHECK_ARG(binarize == DCRW_BINARIZE_NONE || binarize == DCRW_BINARIZE_DYNAMIC ||
                       binarize == DCRW_BINARIZE_THRESHOLD,
                   "dcrw_dataset_batch: unknown binarize mode %d", binarize);
    /* check every index first so a bad one never leaves a half-filled batch
     * that looks plausible */
    for (int b = 0; b < B; b++)
        DCRW_CHECK_ARG(indices[b] < d->count,
                       "dcrw_dataset_batch: indices[%d] = %zu is out of range (count %zu)", b,
                       indices[b], d->count);
    const size_t P = d->pixels;
    for (int b = 0; b < B; b++) {
        const float *src = d->images + indices[b] * P;
        float *dst = x + (size_t)b * P;
        switch (binarize) {
        case DCRW_BINARIZE_NONE:
            memcpy(dst, src, P * sizeof *dst);
            break;
        case DCRW_BINARIZE_THRESHOLD:
            for (size_t p = 0; p < P; p++) dst[p] = src[p] > 0.5f ? 1.0f : 0.0f;
            break;
        default:
            /* keyed by the image, not the batch row, so the bits of an image
             * do not depend on what else was drawn with it */
            binarize_row(P, rng_key(seed, (uint64_t)indices[b], 0xB1ull), src, dst);
            break;
        }
    }
    return DCRW_OK;
}

const float *dcrw_dataset_images(const dcrw_dataset *d) {
    return d ? d->images : NULL;
}

void dcrw_dataset_destroy(dcrw_dataset *d) {
    if (!d) return;
    dcrw_free(d->images);
    dcrw_free(d->labels);
    dcrw_free(d);
}
