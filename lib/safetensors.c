/* The safetensors container: a strict reader and an atomic writer.
 *
 * Reader: the JSON header is parsed with cJSON and every rule of the format
 * (safetensors.h) is checked, against the file's size, before the
 * data section is read into memory, so callers may index it with the
 * offsets without further checks. Writer: the header is built by hand so
 * that its layout (tensor order, padding) is under our control. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "file.h"
#include "safetensors.h"

/* Integers above this are not exactly representable as the doubles cJSON
 * parses numbers into (2^53 + 1 would silently read as 2^53). */
#define ST_MAX_INT 9007199254740992.0

static const struct {
    const char *name;
    unsigned size;
} dtypes[] = {
    {"F64", 8}, {"I64", 8}, {"U64", 8},  {"F32", 4},     {"I32", 4},
    {"U32", 4}, {"F16", 2}, {"BF16", 2}, {"I16", 2},     {"U16", 2},
    {"I8", 1},  {"U8", 1},  {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
};

static uint64_t load_u64le(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* Strict UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF) and no raw control characters: JSON allows none outside its
 * whitespace, and cJSON would otherwise skip them as if they were blanks. */
static int header_text_ok(const uint8_t *s, size_t n, size_t *bad) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') break;
            i++;
            continue;
        }
        int len;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            break;
        }
        if (n - i < (size_t)len) break;
        int k;
        for (k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) break;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (k < len || cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) break;
        i += (size_t)len;
    }
    *bad = i;
    return i == n;
}

/* A JSON number that is a non-negative integer exactly representable. */
static int get_uint(const cJSON *item, uint64_t *out) {
    if (!cJSON_IsNumber(item)) return 0;
    double v = item->valuedouble;
    if (!isfinite(v) || v < 0.0 || v >= ST_MAX_INT || floor(v) != v) return 0;
    *out = (uint64_t)v;
    return 1;
}

static int by_name(const void *a, const void *b) {
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    return strcmp(x->name, y->name);
}

static int by_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int by_offset(const void *a, const void *b) {
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* Fill t from one header entry; strings are not copied yet. */
static int parse_entry(const cJSON *e, st_tensor *t) {
    const char *name = e->string;
    if (!cJSON_IsObject(e))
        return dcrw_fail(DCRW_EFORMAT, "safetensors: entry \"%.80s\" is not an object", name);
    const cJSON *dtype = NULL, *shape = NULL, *offs = NULL, *c;
    cJSON_ArrayForEach(c, e) {
        const cJSON **slot = !strcmp(c->string, "dtype")          ? &dtype
                             : !strcmp(c->string, "shape")        ? &shape
                             : !strcmp(c->string, "data_offsets") ? &offs
                                                                  : NULL;
        if (!slot) continue;
        if (*slot)
            return dcrw_fail(DCRW_EFORMAT, "safetensors: \"%.80s\" has \"%s\" twice", name,
                             c->string);
        *slot = c;
    }
    if (!cJSON_IsString(dtype))
        return dcrw_fail(DCRW_EFORMAT, "safetensors: \"%.80s\" has no dtype string", name);
    unsigned esize = 0;
    for (size_t k = 0; k < sizeof dtypes / sizeof dtypes[0]; k++)
        if (!strcmp(dtype->valuestring, dtypes[k].name)) esize = dtypes[k].size;
    if (!esize)
        return dcrw_fail(DCRW_EFORMAT, "safetensors: \"%.80s\" has unknown dtype \"%.20s\"", name,
                         dtype->valuestring);
    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dtype->valuestring);
    t->dtype = !strcmp(dtype->valuestring, "F32") ? ST_F32 : ST_OTHER;

    if (!cJSON_IsArray(shape))
        return dcrw_fail(DCRW_EFORMAT, "safetensors: \"%.80s\" has no shape array", name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > ST_MAX_DIMS)
        return dcrw_fail(DCRW_EUNSUPPORTED, "safetensors: \"%.80s\" has %d dimensions, at most %d",
                         name, ndim, ST_MAX_DIMS);
    t->ndim = ndim;
    uint64_t elems = 1;
    int overflow = 0, k = 0;
    cJSON_ArrayForEach(c, shape) {
        uint64_t dim;
        if (!get_uint(c, &dim))
            return dcrw_fail(DCRW_EFORMAT,
                             "safetensors: \"%.80s\" shape[%d] is not a non-negative integer", name,
                             k);
        t->shape[k++] = (int64_t)dim;
        if (dim != 0 && elems > UINT64_MAX / dim)
            overflow = 1; /* a zero later would still make it 0 */
        else
            elems *= dim;
    }
    for (k = 0; k < ndim; k++)
        if (t->shape[k] == 0) elems = 0, overflow = 0;

    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        !get_uint(cJSON_GetArrayItem(offs, 0), &t->begin) ||
        !get_uint(cJSON_GetArrayItem(offs, 1), &t->end))
        return dcrw_fail(DCRW_EFORMAT,
                         "safetensors: \"%.80s\" data_offsets is not [begin, end] of "
                         "non-negative integers",
                         name);
    if (t->begin > t->end)
        return dcrw_fail(DCRW_EFORMAT, "safetensors: \"%.80s\" data_offsets [%llu, %llu] decrease",
                         name, (unsigned long long)t->begin, (unsigned long long)t->end);
    if (overflow || elems > UINT64_MAX / esize)
        return dcrw_fail(DCRW_EFORMAT, "safetensors: \"%.80s\" has a shape of more than 2^64 bytes",
                         name);
    if (elems * esize != t->end - t->begin)
        return dcrw_fail(
            DCRW_EFORMAT, "safetensors: \"%.80s\" spans %llu bytes, its dtype and shape need %llu",
            name, (unsigned long long)(t->end - t->begin), (unsigned long long)(elems * esize));
    return DCRW_OK;
}

static int check_metadata(const cJSON *meta, int *count, size_t *chars) {
    if (!cJSON_IsObject(meta))
        return dcrw_fail(DCRW_EFORMAT, "safetensors: __metadata__ is not an object");
    const cJSON *c;
    int n = 0;
    cJSON_ArrayForEach(c, meta) {
        if (!cJSON_IsString(c))
            return dcrw_fail(DCRW_EFORMAT, "safetensors: __metadata__ \"%.80s\" is not a string",
                             c->string);
        *chars += strlen(c->string) + strlen(c->valuestring) + 2;
        n++;
    }
    *count = n;
    return DCRW_OK;
}

static char *put_str(char **pool, const char *s) {
    size_t n = strlen(s) + 1;
    char *r = *pool;
    memcpy(r, s, n);
    *pool += n;
    return r;
}

/* The header length of a file of file_size bytes starting with b[0..8). */
static int header_length(const uint8_t *b, uint64_t file_size, uint64_t *out) {
    if (file_size < 8)
        return dcrw_fail(DCRW_ETRUNCATED, "safetensors: file has %llu bytes, fewer than 8",
                         (unsigned long long)file_size);
    uint64_t n = load_u64le(b);
    /* checked before the file size: no valid file has such a header, and a
     * huge length should not read as "truncated" */
    if (n > ST_MAX_HEADER)
        return dcrw_fail(DCRW_EFORMAT, "safetensors: header length %llu exceeds the limit %u",
                         (unsigned long long)n, (unsigned)ST_MAX_HEADER);
    if (n < 2)
        return dcrw_fail(DCRW_EFORMAT, "safetensors: header length %llu < 2",
                         (unsigned long long)n);
    if (n > file_size - 8)
        return dcrw_fail(DCRW_ETRUNCATED,
                         "safetensors: header of %llu bytes runs past the end of a %llu-byte file",
                         (unsigned long long)n, (unsigned long long)file_size);
    *out = n;
    return DCRW_OK;
}

/* Parse the JSON header h[0..n) of a file of file_size bytes into f; the
 * data section is not needed, so a reader checks the header against the
 * file's size before it reads (or allocates for) anything more. One
 * allocation (owned by f->tensors) holds the tensor table, the metadata
 * pointer arrays and every string, so dcrw_st_free has three pointers to
 * release whatever the outcome. */
static int parse_header(st_file *f, const uint8_t *h, uint64_t n, uint64_t file_size) {
    f->data_start = 8 + (size_t)n;
    if (h[0] != '{') return dcrw_fail(DCRW_EFORMAT, "safetensors: header does not start with '{'");
    size_t bad;
    if (!header_text_ok(h, (size_t)n, &bad))
        return dcrw_fail(DCRW_EFORMAT,
                         "safetensors: header byte %zu is a control character or invalid UTF-8",
                         bad);

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)h, (size_t)n, &end, 0);
    if (!root) {
        size_t at = end && (const uint8_t *)end >= h ? (size_t)((const uint8_t *)end - h) : 0;
        return dcrw_fail(DCRW_EFORMAT, "safetensors: header is not valid JSON (near byte %zu)", at);
    }
    int rc = DCRW_OK;
    st_tensor **idx = NULL;
    for (const uint8_t *p = (const uint8_t *)end; p < h + n; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            rc = dcrw_fail(DCRW_EFORMAT,
                           "safetensors: trailing bytes after the JSON header "
                           "(byte %zu)",
                           (size_t)(p - h));
            goto out;
        }
    }
    if (!cJSON_IsObject(root)) {
        rc = dcrw_fail(DCRW_EFORMAT, "safetensors: header is not a JSON object");
        goto out;
    }

    /* count, then allocate once */
    const cJSON *meta = NULL, *c;
    size_t ntens = 0, chars = 0;
    int nmeta = 0;
    cJSON_ArrayForEach(c, root) {
        if (!strcmp(c->string, "__metadata__")) {
            if (meta) {
                rc = dcrw_fail(DCRW_EFORMAT, "safetensors: __metadata__ appears twice");
                goto out;
            }
            meta = c;
            if ((rc = check_metadata(meta, &nmeta, &chars))) goto out;
        } else {
            ntens++;
            chars += strlen(c->string) + 1;
        }
    }
    if (ntens > INT32_MAX) {
        rc = dcrw_fail(DCRW_EFORMAT, "safetensors: too many tensors");
        goto out;
    }
    size_t bytes = ntens * sizeof(st_tensor) + 2 * (size_t)nmeta * sizeof(char *) + chars + 1;
    uint8_t *block = dcrw_calloc(1, bytes);
    if (!block) {
        rc = DCRW_ENOMEM;
        goto out;
    }
    f->tensors = (st_tensor *)block;
    f->meta_keys = (char **)(block + ntens * sizeof(st_tensor));
    f->meta_vals = f->meta_keys + nmeta;
    char *pool = (char *)(f->meta_vals + nmeta);
    if (meta) {
        cJSON_ArrayForEach(c, meta) {
            f->meta_keys[f->nmeta] = put_str(&pool, c->string);
            f->meta_vals[f->nmeta++] = put_str(&pool, c->valuestring);
        }
    }
    if (nmeta) {
        /* sorted copies of the key pointers, to find duplicates in n log n */
        char **keys = dcrw_calloc((size_t)nmeta, sizeof *keys);
        if (!keys) {
            rc = DCRW_ENOMEM;
            goto out;
        }
        memcpy(keys, f->meta_keys, (size_t)nmeta * sizeof *keys);
        qsort(keys, (size_t)nmeta, sizeof *keys, by_str);
        for (int k = 1; k < nmeta && !rc; k++)
            if (!strcmp(keys[k - 1], keys[k]))
                rc = dcrw_fail(DCRW_EFORMAT, "safetensors: __metadata__ has \"%.80s\" twice",
                               keys[k]);
        dcrw_free(keys);
        if (rc) goto out;
    }
    cJSON_ArrayForEach(c, root) {
        if (c == meta) continue;
        st_tensor *t = &f->tensors[f->ntensors];
        if ((rc = parse_entry(c, t))) goto out;
        t->name = put_str(&pool, c->string);
        f->ntensors++;
    }

    if (ntens) {
        idx = dcrw_calloc(ntens, sizeof *idx);
        if (!idx) {
            rc = DCRW_ENOMEM;
            goto out;
        }
    }
    for (size_t k = 0; k < ntens; k++) idx[k] = &f->tensors[k];
    if (ntens) qsort(idx, ntens, sizeof *idx, by_name);
    for (size_t k = 1; k < ntens; k++) {
        if (!strcmp(idx[k - 1]->name, idx[k]->name)) {
            rc = dcrw_fail(DCRW_EFORMAT, "safetensors: tensor \"%.80s\" appears twice",
                           idx[k]->name);
            goto out;
        }
    }
    /* the data section must be tiled exactly: sorted by offset, each tensor
     * starts where the previous one ended */
    if (ntens) qsort(idx, ntens, sizeof *idx, by_offset);
    uint64_t pos = 0;
    for (size_t k = 0; k < ntens; k++) {
        if (idx[k]->begin != pos) {
            rc = dcrw_fail(DCRW_EFORMAT, "safetensors: \"%.80s\" starts at byte %llu, %s at %llu",
                           idx[k]->name, (unsigned long long)idx[k]->begin,
                           idx[k]->begin > pos ? "leaving a hole after the data ending"
                                               : "overlapping the data ending",
                           (unsigned long long)pos);
            goto out;
        }
        pos = idx[k]->end;
    }
    const uint64_t have = file_size - f->data_start;
    if (pos > have) {
        rc = dcrw_fail(DCRW_ETRUNCATED,
                       "safetensors: the header declares %llu data bytes, the file holds %llu",
                       (unsigned long long)pos, (unsigned long long)have);
        goto out;
    }
    if (pos < have) {
        rc = dcrw_fail(DCRW_EFORMAT,
                       "safetensors: %llu trailing bytes after the %llu data bytes declared",
                       (unsigned long long)(have - pos), (unsigned long long)pos);
        goto out;
    }
out:
    dcrw_free(idx);
    cJSON_Delete(root);
    return rc;
}

int dcrw_st_parse(st_file *f, const uint8_t *buf, size_t size) {
    DCRW_CHECK_ARG(f, "dcrw_st_parse: f is NULL");
    memset(f, 0, sizeof *f);
    DCRW_CHECK_ARG(buf || size == 0, "dcrw_st_parse: buf is NULL");
    uint64_t n;
    int rc = header_length(buf, size, &n);
    if (rc) return rc;
    uint8_t *copy = dcrw_alloc(size);
    if (!copy) return DCRW_ENOMEM;
    memcpy(copy, buf, size);
    f->buf = copy;
    f->size = size;
    rc = parse_header(f, copy + 8, n, size);
    if (rc) dcrw_st_free(f);
    return rc;
}

/* Read exactly n bytes; a file that ends first shrank since its size was
 * taken. */
static int read_exact(int fd, const char *path, uint8_t *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return dcrw_fail(DCRW_EIO, "cannot read %.200s: %s", path, strerror(errno));
        if (r == 0)
            return dcrw_fail(DCRW_ETRUNCATED, "%.200s ended after %zu of %zu bytes being read",
                             path, got, n);
        got += (size_t)r;
    }
    return DCRW_OK;
}

/* The header is read and checked against the file's size first, so that a
 * file it does not describe exactly (a huge tail, a shorter data section)
 * costs no more than its header; with_data = 0 stops there. */
static int read_file(st_file *f, const char *path, int with_data) {
    DCRW_CHECK_ARG(f, "dcrw_st_read: f is NULL");
    memset(f, 0, sizeof *f);
    DCRW_CHECK_ARG(path, "dcrw_st_read: path is NULL");
    int fd;
    uint64_t size, n = 0;
    int rc = dcrw_file_open_read(path, &fd, &size);
    if (rc) return rc;
    uint8_t len[8] = {0}, *head = NULL, *buf = NULL;
    rc = read_exact(fd, path, len, size < 8 ? (size_t)size : 8);
    if (!rc) rc = header_length(len, size, &n);
    if (!rc && with_data && size > SIZE_MAX)
        rc = dcrw_fail(DCRW_ENOMEM, "%.200s is too large to hold in memory", path);
    if (!rc && !(head = dcrw_alloc((size_t)n))) rc = DCRW_ENOMEM;
    if (!rc) rc = read_exact(fd, path, head, (size_t)n);
    if (!rc) rc = parse_header(f, head, n, size);
    if (!rc && with_data && !(buf = dcrw_alloc((size_t)size))) rc = DCRW_ENOMEM;
    if (!rc && with_data) {
        memcpy(buf, len, 8);
        memcpy(buf + 8, head, (size_t)n);
        rc = read_exact(fd, path, buf + 8 + n, (size_t)(size - 8 - n));
    }
    dcrw_free(head);
    close(fd);
    if (rc) {
        dcrw_free(buf);
        dcrw_st_free(f);
        return rc;
    }
    f->buf = buf;
    f->size = with_data ? (size_t)size : 0;
    return DCRW_OK;
}

int dcrw_st_read(st_file *f, const char *path) {
    return read_file(f, path, 1);
}

int dcrw_st_read_header(st_file *f, const char *path) {
    return read_file(f, path, 0);
}

void dcrw_st_free(st_file *f) {
    if (!f) return;
    dcrw_free(f->buf);
    dcrw_free(f->tensors); /* also holds the strings and metadata arrays */
    memset(f, 0, sizeof *f);
}

const st_tensor *dcrw_st_find(const st_file *f, const char *name) {
    if (!f || !name) return NULL;
    for (int k = 0; k < f->ntensors; k++)
        if (!strcmp(f->tensors[k].name, name)) return &f->tensors[k];
    return NULL;
}

const char *dcrw_st_meta(const st_file *f, const char *key) {
    if (!f || !key) return NULL;
    for (int k = 0; k < f->nmeta; k++)
        if (!strcmp(f->meta_keys[k], key)) return f->meta_vals[k];
    return NULL;
}

/* ---- writer */

typedef struct strbuf {
    char *p;
    size_t len, cap;
    int oom;
} strbuf;

static void sb_grow(strbuf *b, size_t extra) {
    if (b->oom) return;
    size_t need;
    if (dcrw_add_size(b->len, extra + 1, &need)) {
        b->oom = 1;
        return;
    }
    if (need <= b->cap) return;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *p = dcrw_alloc(cap);
    if (!p) {
        b->oom = 1;
        return;
    }
    if (b->len) memcpy(p, b->p, b->len);
    dcrw_free(b->p);
    b->p = p;
    b->cap = cap;
}

static void sb_put(strbuf *b, const char *s, size_t n) {
    sb_grow(b, n);
    if (b->oom) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(strbuf *b, const char *s) {
    sb_put(b, s, strlen(s));
}

static void sb_printf(strbuf *b, const char *fmt, ...) DCRW_PRINTF(2, 3);
static void sb_printf(strbuf *b, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        b->oom = 1; /* only short numeric fields go through here */
        return;
    }
    sb_put(b, tmp, (size_t)n);
}

/* A JSON string literal; bytes >= 0x80 pass through (the caller's UTF-8). */
static void sb_json_str(strbuf *b, const char *s) {
    sb_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            sb_put(b, e, 2);
        } else if (*p < 0x20) {
            sb_printf(b, "\\u%04x", *p);
        } else {
            sb_put(b, (const char *)p, 1);
        }
    }
    sb_puts(b, "\"");
}

static int write_all(int fd, const void *data, size_t n) {
    const uint8_t *p = data;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -1;
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Floats as little-endian bytes whatever the host order, through a
 * staging buffer so that the data need not be copied whole. */
static int write_f32le(int fd, const float *x, size_t n) {
    uint8_t buf[16384];
    while (n) {
        size_t k = n < sizeof buf / 4 ? n : sizeof buf / 4;
        for (size_t i = 0; i < k; i++) {
            uint32_t u;
            memcpy(&u, &x[i], 4);
            buf[4 * i] = (uint8_t)u;
            buf[4 * i + 1] = (uint8_t)(u >> 8);
            buf[4 * i + 2] = (uint8_t)(u >> 16);
            buf[4 * i + 3] = (uint8_t)(u >> 24);
        }
        if (write_all(fd, buf, 4 * k)) return -1;
        x += k;
        n -= k;
    }
    return 0;
}

static int out_elems(const st_out *t, uint64_t *elems) {
    uint64_t e = 1;
    for (int k = 0; k < t->ndim; k++) {
        if (t->shape[k] < 0) return -1;
        uint64_t d = (uint64_t)t->shape[k];
        if (d && e > UINT64_MAX / d) return -1;
        e *= d;
    }
    if (e > (UINT64_MAX / 4) || e * 4 >= (uint64_t)ST_MAX_INT) return -1;
    *elems = e;
    return 0;
}

static int check_out_args(const char *path, const st_out *tensors, int ntensors,
                          const char *const *meta_keys, const char *const *meta_vals, int nmeta) {
    DCRW_CHECK_ARG(path && *path, "st_write: path is NULL or empty");
    DCRW_CHECK_ARG(ntensors >= 0 && nmeta >= 0, "st_write: negative count");
    DCRW_CHECK_ARG(tensors || ntensors == 0, "st_write: tensors is NULL");
    DCRW_CHECK_ARG((meta_keys && meta_vals) || nmeta == 0, "st_write: metadata is NULL");
    for (int i = 0; i < ntensors; i++) {
        const st_out *t = &tensors[i];
        uint64_t e = 0;
        DCRW_CHECK_ARG(t->name, "st_write: tensor %d has no name", i);
        DCRW_CHECK_ARG(strcmp(t->name, "__metadata__") != 0,
                       "st_write: a tensor cannot be named __metadata__");
        DCRW_CHECK_ARG(t->ndim >= 0 && t->ndim <= ST_MAX_DIMS, "st_write: %.80s has ndim %d",
                       t->name, t->ndim);
        DCRW_CHECK_ARG(out_elems(t, &e) == 0, "st_write: %.80s has a negative or huge shape",
                       t->name);
        DCRW_CHECK_ARG(t->data || e == 0, "st_write: %.80s has no data", t->name);
        for (int j = 0; j < i; j++)
            DCRW_CHECK_ARG(strcmp(tensors[j].name, t->name) != 0,
                           "st_write: tensor \"%.80s\" given twice", t->name);
    }
    for (int i = 0; i < nmeta; i++) {
        DCRW_CHECK_ARG(meta_keys[i] && meta_vals[i], "st_write: metadata pair %d is NULL", i);
        for (int j = 0; j < i; j++)
            DCRW_CHECK_ARG(strcmp(meta_keys[j], meta_keys[i]) != 0,
                           "st_write: metadata key \"%.80s\" given twice", meta_keys[i]);
    }
    return DCRW_OK;
}

static int build_header(strbuf *b, const st_out *tensors, int ntensors,
                        const char *const *meta_keys, const char *const *meta_vals, int nmeta) {
    sb_puts(b, "{");
    int first = 1;
    if (nmeta) {
        sb_puts(b, "\"__metadata__\":{");
        for (int i = 0; i < nmeta; i++) {
            if (i) sb_puts(b, ",");
            sb_json_str(b, meta_keys[i]);
            sb_puts(b, ":");
            sb_json_str(b, meta_vals[i]);
        }
        sb_puts(b, "}");
        first = 0;
    }
    uint64_t off = 0;
    for (int i = 0; i < ntensors; i++) {
        const st_out *t = &tensors[i];
        uint64_t e = 0;
        out_elems(t, &e); /* checked by check_out_args */
        if (!first) sb_puts(b, ",");
        first = 0;
        sb_json_str(b, t->name);
        sb_puts(b, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int k = 0; k < t->ndim; k++)
            sb_printf(b, k ? ",%lld" : "%lld", (long long)t->shape[k]);
        if (off + 4 * e >= (uint64_t)ST_MAX_INT)
            return dcrw_fail(DCRW_EINVAL, "st_write: the data section exceeds 2^53 bytes");
        sb_printf(b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                  (unsigned long long)(off + 4 * e));
        off += 4 * e;
    }
    sb_puts(b, "}");
    /* pad so the data section starts 8-byte aligned */
    while (!b->oom && b->len % 8) sb_puts(b, " ");
    if (b->oom) return dcrw_fail(DCRW_ENOMEM, "st_write: out of memory building the header");
    if (b->len > ST_MAX_HEADER)
        return dcrw_fail(DCRW_EINVAL, "st_write: header of %zu bytes exceeds the limit", b->len);
    return DCRW_OK;
}

int dcrw_st_write_atomic(const char *path, const st_out *tensors, int ntensors,
                         const char *const *meta_keys, const char *const *meta_vals, int nmeta) {
    int rc = check_out_args(path, tensors, ntensors, meta_keys, meta_vals, nmeta);
    if (rc) return rc;
    strbuf hb = {0};
    file_temp tmp;
    if ((rc = build_header(&hb, tensors, ntensors, meta_keys, meta_vals, nmeta))) goto out;
    if ((rc = dcrw_file_temp_create(&tmp, path))) goto out;
    uint8_t len[8];
    for (int k = 0; k < 8; k++) len[k] = (uint8_t)((uint64_t)hb.len >> (8 * k));
    int bad = write_all(tmp.fd, len, 8) || write_all(tmp.fd, hb.p, hb.len);
    for (int i = 0; !bad && i < ntensors; i++) {
        uint64_t e = 0;
        out_elems(&tensors[i], &e);
        bad = write_f32le(tmp.fd, tensors[i].data, (size_t)e);
    }
    if (bad) {
        rc = dcrw_fail(DCRW_EIO, "cannot write %.200s for %.200s: %s", tmp.name, path,
                       strerror(errno));
        dcrw_file_temp_discard(&tmp);
        goto out;
    }
    rc = dcrw_file_temp_commit(&tmp, path);
out:
    dcrw_free(hb.p);
    return rc;
}
