/* NumPy .npy files (format versions 1 to 3): the header, a Python dict
 * literal, is parsed strictly (the three keys numpy writes, once each, and
 * nothing else), the data must be exactly as long as the shape declares,
 * and the values are converted to floats in [0, 1] as they are read. */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "file.h"
#include "imageset.h"

/* numpy itself refuses headers above 10000 bytes unless told otherwise */
#define NPY_MAX_HEADER 65536u
#define NPY_MAX_DIMS 8

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

typedef enum { NPY_U8, NPY_F32, NPY_F64 } npy_type;

typedef struct {
    npy_type type;
    int big_endian;
    size_t item; /* bytes per value */
    int fortran;
    unsigned ndim;
    uint64_t dims[NPY_MAX_DIMS];
} npy_header;

/* Read up to n bytes; *got < n only at the end of the file. */
static int read_upto(int fd, const char *path, void *buf, size_t n, size_t *got) {
    *got = 0;
    while (*got < n) {
        ssize_t r = read(fd, (unsigned char *)buf + *got, n - *got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return dcrw_fail(DCRW_EIO, "cannot read %.200s: %s", path, strerror(errno));
        if (r == 0) break;
        *got += (size_t)r;
    }
    return DCRW_OK;
}

static int npy_read_exact(int fd, const char *path, void *buf, size_t n, const char *what) {
    size_t got;
    int rc = read_upto(fd, path, buf, n, &got);
    if (rc) return rc;
    if (got < n)
        return dcrw_fail(DCRW_ETRUNCATED, "%.200s: file ends in the %s (%zu of %zu bytes)", path,
                         what, got, n);
    return DCRW_OK;
}

int dcrw_npy_sniff(const char *path) {
    int fd;
    uint64_t size;
    if (dcrw_file_open_read(path, &fd, &size) != DCRW_OK) return 0;
    unsigned char head[sizeof npy_magic];
    size_t got;
    int rc = read_upto(fd, path, head, sizeof head, &got);
    close(fd);
    return rc == DCRW_OK && got == sizeof head && memcmp(head, npy_magic, sizeof head) == 0;
}

int dcrw_npy_channels_last(uint64_t a, uint64_t c) {
    int a_chan = a == 1 || a == 3 || a == 4, c_chan = c == 1 || c == 3 || c == 4;
    return c_chan && !a_chan;
}

/* ---- the header's dict literal ---- */

typedef struct {
    const char *p, *end;
    const char *path;
} cursor;

static void skip_space(cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

/* The next non-space character is ch: consume it and return 1. */
static int accept(cursor *c, char ch) {
    skip_space(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

static int bad_header(const cursor *c, const char *what) {
    return dcrw_fail(DCRW_EFORMAT, "%.200s: malformed .npy header: %s", c->path, what);
}

/* A quoted string without escapes (numpy never writes any) into out[cap]. */
static int parse_string(cursor *c, char *out, size_t cap) {
    skip_space(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return bad_header(c, "expected a string");
    char quote = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != quote) {
        if (*c->p == '\\' || n + 1 >= cap) return bad_header(c, "unexpected string");
        out[n++] = *c->p++;
    }
    if (c->p >= c->end) return bad_header(c, "unterminated string");
    c->p++;
    out[n] = '\0';
    return DCRW_OK;
}

static int parse_descr(cursor *c, npy_header *h) {
    skip_space(c);
    if (c->p < c->end && *c->p == '[')
        return dcrw_fail(DCRW_EUNSUPPORTED,
                         "%.200s: a structured array (record dtype); save a plain array of "
                         "uint8, float32 or float64",
                         c->path);
    char d[32];
    int rc = parse_string(c, d, sizeof d);
    if (rc) return rc;
    static const struct {
        const char *name;
        npy_type type;
        int big;
        size_t item;
    } known[] = {{"|u1", NPY_U8, 0, 1},  {"<u1", NPY_U8, 0, 1},  {">u1", NPY_U8, 0, 1},
                 {"<f4", NPY_F32, 0, 4}, {">f4", NPY_F32, 1, 4}, {"<f8", NPY_F64, 0, 8},
                 {">f8", NPY_F64, 1, 8}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(d, known[i].name) == 0) {
            h->type = known[i].type;
            h->big_endian = known[i].big;
            h->item = known[i].item;
            return DCRW_OK;
        }
    return dcrw_fail(DCRW_EUNSUPPORTED,
                     "%.200s: dtype '%s' is not supported: save uint8 (0 to 255) or float32 or "
                     "float64 in [0, 1], e.g. x.astype(np.uint8) or (x / 255).astype(np.float32)",
                     c->path, d);
}

static int parse_bool(cursor *c, int *out) {
    skip_space(c);
    size_t left = (size_t)(c->end - c->p);
    if (left >= 4 && memcmp(c->p, "True", 4) == 0) {
        c->p += 4;
        *out = 1;
        return DCRW_OK;
    }
    if (left >= 5 && memcmp(c->p, "False", 5) == 0) {
        c->p += 5;
        *out = 0;
        return DCRW_OK;
    }
    return bad_header(c, "fortran_order is neither True nor False");
}

/* A decimal dimension; Python 2's numpy wrote a trailing L. */
static int parse_dim(cursor *c, uint64_t *out) {
    skip_space(c);
    if (c->p >= c->end || *c->p < '0' || *c->p > '9')
        return bad_header(c, "shape holds a non-number");
    uint64_t v = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (v > (UINT64_C(1) << 40)) return bad_header(c, "a dimension is absurdly large");
        v = v * 10 + (uint64_t)(*c->p++ - '0');
    }
    if (c->p < c->end && *c->p == 'L') c->p++;
    *out = v;
    return DCRW_OK;
}

static int parse_shape(cursor *c, npy_header *h) {
    if (!accept(c, '(')) return bad_header(c, "shape is not a tuple");
    h->ndim = 0;
    if (accept(c, ')')) return DCRW_OK;
    for (;;) {
        if (h->ndim == NPY_MAX_DIMS)
            return dcrw_fail(DCRW_EFORMAT, "%.200s: more than %d dimensions", c->path,
                             NPY_MAX_DIMS);
        int rc = parse_dim(c, &h->dims[h->ndim++]);
        if (rc) return rc;
        if (accept(c, ')')) return DCRW_OK;
        if (!accept(c, ',')) return bad_header(c, "shape is not a tuple of numbers");
        if (accept(c, ')')) return DCRW_OK;
    }
}

/* One "key: value" pair; seen[] marks the keys met so far. */
static int npy_parse_entry(cursor *c, npy_header *h, int seen[3]) {
    char key[32];
    int rc = parse_string(c, key, sizeof key);
    if (rc) return rc;
    if (!accept(c, ':')) return bad_header(c, "expected ':' after a key");
    static const char *const keys[3] = {"descr", "fortran_order", "shape"};
    for (int k = 0; k < 3; k++) {
        if (strcmp(key, keys[k]) != 0) continue;
        if (seen[k]++)
            return dcrw_fail(DCRW_EFORMAT, "%.200s: .npy header repeats '%s'", c->path, key);
        return k == 0 ? parse_descr(c, h) : k == 1 ? parse_bool(c, &h->fortran) : parse_shape(c, h);
    }
    return dcrw_fail(DCRW_EFORMAT, "%.200s: .npy header has an unknown key '%s'", c->path, key);
}

static int parse_dict(const char *path, const char *text, size_t n, npy_header *h) {
    cursor c = {text, text + n, path};
    int seen[3] = {0, 0, 0};
    if (!accept(&c, '{')) return bad_header(&c, "not a dict");
    while (!accept(&c, '}')) {
        int rc = npy_parse_entry(&c, h, seen);
        if (rc) return rc;
        if (!accept(&c, ',')) {
            if (!accept(&c, '}')) return bad_header(&c, "expected ',' or '}'");
            break;
        }
    }
    skip_space(&c);
    if (c.p != c.end) return bad_header(&c, "bytes after the dict");
    if (!seen[0] || !seen[1] || !seen[2])
        return dcrw_fail(DCRW_EFORMAT, "%.200s: .npy header lacks '%s'", path,
                         !seen[0]   ? "descr"
                         : !seen[1] ? "fortran_order"
                                    : "shape");
    return DCRW_OK;
}

/* ---- the file ---- */

/* Magic, version and header; *data_at is where the values start. */
static int npy_read_header(int fd, const char *path, npy_header *h, uint64_t *data_at) {
    unsigned char pre[12];
    int rc = npy_read_exact(fd, path, pre, 8, "header");
    if (rc) return rc;
    if (memcmp(pre, npy_magic, sizeof npy_magic) != 0)
        return dcrw_fail(DCRW_EFORMAT, "%.200s: not a .npy file (no \\x93NUMPY magic)", path);
    if (pre[6] < 1 || pre[6] > 3)
        return dcrw_fail(DCRW_EUNSUPPORTED, "%.200s: .npy format version %u.%u (1 to 3 are read)",
                         path, pre[6], pre[7]);
    size_t lenbytes = pre[6] == 1 ? 2 : 4;
    rc = npy_read_exact(fd, path, pre + 8, lenbytes, "header");
    if (rc) return rc;
    uint32_t hlen = (uint32_t)pre[8] | (uint32_t)pre[9] << 8;
    if (lenbytes == 4) hlen |= (uint32_t)pre[10] << 16 | (uint32_t)pre[11] << 24;
    if (hlen > NPY_MAX_HEADER)
        return dcrw_fail(DCRW_EFORMAT, "%.200s: .npy header of %u bytes (at most %u are read)",
                         path, (unsigned)hlen, NPY_MAX_HEADER);
    char *text = dcrw_alloc(hlen + 1u);
    if (!text) return DCRW_ENOMEM;
    rc = npy_read_exact(fd, path, text, hlen, "header");
    if (!rc) rc = parse_dict(path, text, hlen, h);
    dcrw_free(text);
    *data_at = 8 + lenbytes + hlen;
    return rc;
}

/* The image shape [N, C, H, W] of a parsed header, checked against the
 * limits. */
static int image_shape(const char *path, const npy_header *h, uint64_t nchw[4], int *nhwc) {
    if (h->fortran)
        return dcrw_fail(DCRW_EUNSUPPORTED,
                         "%.200s: the array is in Fortran order; save it in C order, e.g. "
                         "np.save(path, np.ascontiguousarray(x))",
                         path);
    if (h->ndim != 3 && h->ndim != 4)
        return dcrw_fail(DCRW_EFORMAT,
                         "%.200s: an array of %u dimensions; images are [N, H, W], [N, C, H, W] "
                         "or [N, H, W, C]",
                         path, h->ndim);
    const uint64_t *d = h->dims;
    *nhwc = h->ndim == 4 && dcrw_npy_channels_last(d[1], d[3]);
    nchw[0] = d[0];
    if (h->ndim == 3) {
        nchw[1] = 1, nchw[2] = d[1], nchw[3] = d[2];
    } else if (*nhwc) {
        nchw[1] = d[3], nchw[2] = d[1], nchw[3] = d[2];
    } else {
        nchw[1] = d[1], nchw[2] = d[2], nchw[3] = d[3];
    }
    return dcrw_imageset_check_shape(path, nchw[0], nchw[1], nchw[2], nchw[3]);
}

/* The file must be exactly header + values long: checked before reading
 * (and before the caller trusts the shape), so a lying header costs no
 * more than its own bytes. */
static int check_size(const char *path, uint64_t size, uint64_t data_at, uint64_t values,
                      size_t item) {
    uint64_t need = data_at + values * item;
    if (size < need)
        return dcrw_fail(
            DCRW_ETRUNCATED,
            "%.200s: file has %llu bytes, its header declares %llu (%llu values of %zu "
            "bytes)",
            path, (unsigned long long)size, (unsigned long long)need, (unsigned long long)values,
            item);
    if (size > need)
        return dcrw_fail(DCRW_EFORMAT,
                         "%.200s: trailing bytes (file has %llu bytes, its header declares %llu)",
                         path, (unsigned long long)size, (unsigned long long)need);
    return DCRW_OK;
}

static double decode_value(const unsigned char *b, const npy_header *h) {
    if (h->type == NPY_U8) return b[0] / 255.0;
    uint64_t bits = 0;
    for (size_t k = 0; k < h->item; k++) {
        size_t at = h->big_endian ? k : h->item - 1 - k;
        bits = bits << 8 | b[at];
    }
    if (h->type == NPY_F32) {
        uint32_t b32 = (uint32_t)bits;
        float f;
        memcpy(&f, &b32, sizeof f);
        return f;
    }
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static int bad_value(const char *path, double v, size_t i, size_t pixels) {
    if (!isfinite(v))
        return dcrw_fail(DCRW_ENUMERIC, "%.200s: image %zu holds %s", path, i / pixels,
                         isnan(v) ? "NaN" : "an infinity");
    return dcrw_fail(DCRW_EFORMAT,
                     "%.200s: image %zu holds %g, outside [0, 1]: scale float images to [0, 1] "
                     "(e.g. x / 255) or save them as uint8",
                     path, i / pixels, v);
}

/* Convert the values in file order into s->images through a small buffer. */
static int read_values(int fd, const char *path, const npy_header *h, dcrw_imageset *s) {
    const size_t pixels = (size_t)s->channels * s->height * s->width, total = s->count * pixels;
    unsigned char chunk[1 << 15]; /* a multiple of every item size */
    for (size_t at = 0; at < total;) {
        size_t n = total - at < sizeof chunk / h->item ? total - at : sizeof chunk / h->item;
        int rc = npy_read_exact(fd, path, chunk, n * h->item, "data");
        if (rc) return rc;
        for (size_t i = 0; i < n; i++) {
            double v = decode_value(chunk + i * h->item, h);
            if (!(v >= 0.0 && v <= 1.0)) return bad_value(path, v, at + i, pixels);
            s->images[at + i] = (float)v;
        }
        at += n;
    }
    return DCRW_OK;
}

/* Channels last to channels first, one image at a time. */
static int to_channels_first(dcrw_imageset *s) {
    const size_t C = (size_t)s->channels, HW = (size_t)s->height * s->width, P = C * HW;
    if (C == 1) return DCRW_OK;
    float *tmp = dcrw_alloc(P * sizeof *tmp);
    if (!tmp) return DCRW_ENOMEM;
    for (size_t n = 0; n < s->count; n++) {
        float *img = s->images + n * P;
        for (size_t p = 0; p < HW; p++)
            for (size_t c = 0; c < C; c++) tmp[c * HW + p] = img[p * C + c];
        memcpy(img, tmp, P * sizeof *tmp);
    }
    dcrw_free(tmp);
    return DCRW_OK;
}

int dcrw_npy_read(const char *path, dcrw_imageset *s) {
    memset(s, 0, sizeof *s);
    int fd;
    uint64_t size, data_at = 0;
    int rc = dcrw_file_open_read(path, &fd, &size);
    if (rc) return rc;
    npy_header h;
    memset(&h, 0, sizeof h);
    int nhwc = 0;
    uint64_t nchw[4] = {0, 0, 0, 0};
    rc = npy_read_header(fd, path, &h, &data_at);
    if (!rc) rc = image_shape(path, &h, nchw, &nhwc);
    /* the shape is within the limits, so this product cannot wrap */
    if (!rc) rc = check_size(path, size, data_at, nchw[0] * nchw[1] * nchw[2] * nchw[3], h.item);
    if (!rc) rc = dcrw_imageset_alloc(s, path, nchw[0], nchw[1], nchw[2], nchw[3]);
    if (!rc) rc = read_values(fd, path, &h, s);
    if (!rc) {
        /* the file may have grown since fstat: what follows is not ours */
        unsigned char extra;
        size_t got;
        rc = read_upto(fd, path, &extra, 1, &got);
        if (!rc && got)
            rc = dcrw_fail(DCRW_EFORMAT, "%.200s: trailing bytes after the declared data", path);
    }
    if (!rc && nhwc) rc = to_channels_first(s);
    close(fd);
    if (rc) dcrw_imageset_free(s);
    return rc;
}
