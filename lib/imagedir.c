/* Folders of PNG images: the files are listed and sorted first, the first
 * image fixes the shape, and every image is decoded by libpng straight
 * into the set's buffer. Without libpng the listing still runs, so that a
 * folder of PNGs is told apart from a folder with none. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "file.h"
#include "imageset.h"

/* Decoding needs libpng. meson says whether to use it
 * (-DDCRW_HAVE_LIBPNG=0/1); other builds leave it out unless told, since
 * it would need -lpng at link time. */
#ifndef DCRW_HAVE_LIBPNG
#define DCRW_HAVE_LIBPNG 0
#endif
#if DCRW_HAVE_LIBPNG
#include <png.h>
#include <setjmp.h>
#endif

/* ---- listing ---- */

typedef struct {
    char *path;    /* dcrw_alloc'ed */
    int32_t label; /* the class folder's rank, or -1 */
} dir_entry;

typedef struct {
    dir_entry *e;
    size_t n, cap;
} entry_list;

static void list_free(entry_list *l) {
    for (size_t i = 0; i < l->n; i++) dcrw_free(l->e[i].path);
    dcrw_free(l->e);
    memset(l, 0, sizeof *l);
}

/* Append dir/name (label) to l; takes no ownership of name. */
static int list_push(entry_list *l, const char *dir, const char *name, int32_t label) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64, bytes;
        if (dcrw_mul_size(cap, sizeof *l->e, &bytes))
            return dcrw_fail(DCRW_ENOMEM, "too many files");
        dir_entry *e = dcrw_alloc(bytes);
        if (!e) return DCRW_ENOMEM;
        if (l->n) memcpy(e, l->e, l->n * sizeof *e);
        dcrw_free(l->e);
        l->e = e;
        l->cap = cap;
    }
    char *p = dcrw_path_join(dir, name);
    if (!p) return dcrw_fail(DCRW_ENOMEM, "out of memory listing %.200s", dir);
    l->e[l->n].path = p;
    l->e[l->n].label = label;
    l->n++;
    return DCRW_OK;
}

static int by_path(const void *a, const void *b) {
    return strcmp(((const dir_entry *)a)->path, ((const dir_entry *)b)->path);
}

static int is_png_name(const char *name) {
    size_t n = strlen(name);
    return n > 4 && strcasecmp(name + n - 4, ".png") == 0;
}

/* The PNG files (anything named *.png that is not a folder: a FIFO or a
 * broken link is kept, for the reader to refuse by name) and the folders
 * in dir, hidden names skipped, each list sorted. */
static int list_folder(const char *dir, int32_t label, entry_list *pngs, entry_list *dirs) {
    DIR *d = opendir(dir);
    if (!d) return dcrw_fail(DCRW_EIO, "cannot open folder %.200s: %s", dir, strerror(errno));
    int rc = DCRW_OK;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno) rc = dcrw_fail(DCRW_EIO, "cannot list %.200s: %s", dir, strerror(errno));
            break;
        }
        if (de->d_name[0] == '.') continue;
        char *p = dcrw_path_join(dir, de->d_name);
        if (!p) {
            rc = DCRW_ENOMEM;
            break;
        }
        struct stat st;
        int is_dir = stat(p, &st) == 0 && S_ISDIR(st.st_mode);
        dcrw_free(p);
        if (is_dir && dirs)
            rc = list_push(dirs, dir, de->d_name, -1);
        else if (!is_dir && is_png_name(de->d_name))
            rc = list_push(pngs, dir, de->d_name, label);
        if (rc) break;
    }
    closedir(d);
    if (pngs->n > 1) qsort(pngs->e, pngs->n, sizeof *pngs->e, by_path);
    if (dirs && dirs->n > 1) qsort(dirs->e, dirs->n, sizeof *dirs->e, by_path);
    return rc;
}

/* Every image of the folder path, in reading order with its label; the
 * number of classes in *classes (0: no class folders). */
static int list_images(const char *path, entry_list *files, int *classes) {
    entry_list dirs = {0};
    *classes = 0;
    int rc = list_folder(path, -1, files, &dirs);
    if (!rc && files->n) {
        /* loose images: a subfolder of images beside them is ambiguous */
        for (size_t i = 0; i < dirs.n && !rc; i++) {
            entry_list sub = {0};
            rc = list_folder(dirs.e[i].path, -1, &sub, NULL);
            if (!rc && sub.n)
                rc = dcrw_fail(DCRW_EFORMAT,
                               "%.200s holds PNG files and also a folder of them (%.200s): put "
                               "every image in a class folder, or none",
                               path, dirs.e[i].path);
            list_free(&sub);
        }
    } else if (!rc) {
        if (dirs.n > INT32_MAX)
            rc = dcrw_fail(DCRW_EFORMAT, "%.200s: too many class folders", path);
        /* an empty class folder is a class without images: the labels of
         * the others stay what their names make them (digits 0 to 9 of a
         * subset that lacks an 8, say) */
        for (size_t i = 0; i < dirs.n && !rc; i++)
            rc = list_folder(dirs.e[i].path, (int32_t)i, files, NULL);
        *classes = (int)dirs.n;
        if (!rc && !files->n)
            rc = dcrw_fail(DCRW_ENOTFOUND,
                           "%.200s holds no PNG file (nor folders of them, one per class)", path);
    }
    list_free(&dirs);
    return rc;
}

int dcrw_pngdir_sniff(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return 0;
    entry_list pngs = {0}, dirs = {0};
    int found = 0;
    if (list_folder(path, -1, &pngs, &dirs) == DCRW_OK) {
        found = pngs.n > 0;
        for (size_t i = 0; i < dirs.n && !found; i++) {
            entry_list sub = {0};
            found = list_folder(dirs.e[i].path, -1, &sub, NULL) == DCRW_OK && sub.n > 0;
            list_free(&sub);
        }
    }
    list_free(&pngs);
    list_free(&dirs);
    return found;
}

#if DCRW_HAVE_LIBPNG
/* ---- decoding ---- */

/* What a failure inside libpng leaves for the caller of setjmp. */
typedef struct {
    const char *path;
    int fd;
    int code; /* set before png_error when the cause is known */
    char msg[200];
    jmp_buf jmp;
} png_ctx;

/* The shape every image must have, set by the first. */
typedef struct {
    uint32_t channels, height, width;
    const char *first;
} png_shape;

/* The decoded rows of one image, reused from file to file. */
typedef struct {
    unsigned char *pix;
    png_bytep *rows;
    size_t pix_cap, rows_cap;
} png_rows;

static void on_error(png_structp png, png_const_charp msg) {
    png_ctx *ctx = png_get_error_ptr(png);
    snprintf(ctx->msg, sizeof ctx->msg, "%s", msg);
    longjmp(ctx->jmp, 1);
}

/* Warnings (a bad CRC in an ancillary chunk, an unknown sRGB profile)
 * change nothing we read. */
static void on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

static void on_read(png_structp png, png_bytep out, size_t n) {
    png_ctx *ctx = png_get_io_ptr(png);
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(ctx->fd, out + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            ctx->code = DCRW_EIO;
            png_error(png, strerror(errno));
        }
        if (r == 0) {
            ctx->code = DCRW_ETRUNCATED;
            png_error(png, "file ends early");
        }
        got += (size_t)r;
    }
}

static int grow(png_rows *b, size_t pix, size_t rows) {
    if (pix > b->pix_cap) {
        dcrw_free(b->pix);
        b->pix_cap = 0;
        if (!(b->pix = dcrw_alloc(pix))) return DCRW_ENOMEM;
        b->pix_cap = pix;
    }
    if (rows > b->rows_cap) {
        dcrw_free(b->rows);
        b->rows_cap = 0;
        if (!(b->rows = dcrw_alloc(rows * sizeof *b->rows))) return DCRW_ENOMEM;
        b->rows_cap = rows;
    }
    return DCRW_OK;
}

static const char *colour_name(int channels) {
    static const char *const names[] = {"grey", "grey+alpha", "RGB", "RGBA"};
    return names[channels - 1];
}

/* Ask libpng for 8 or 16 bits per sample of grey, grey+alpha, RGB or
 * RGBA, and return the raw (undecoded) bits per pixel for check_png_room. */
static unsigned set_transforms(png_structp png, png_infop info) {
    int type = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    unsigned raw_channels = type == PNG_COLOR_TYPE_GRAY         ? 1
                            : type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
                            : type == PNG_COLOR_TYPE_RGB        ? 3
                            : type == PNG_COLOR_TYPE_RGB_ALPHA  ? 4
                                                                : 1;
    if (type == PNG_COLOR_TYPE_PALETTE) {
        png_set_palette_to_rgb(png);
        if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    } else if (type == PNG_COLOR_TYPE_GRAY && depth < 8) {
        png_set_expand_gray_1_2_4_to_8(png);
    }
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    return raw_channels * (unsigned)depth;
}

/* Deflate expands at most 1032:1, so a file too small for its declared
 * rows is refused before a buffer is sized for them. */
static int check_png_room(const png_ctx *ctx, uint64_t size, uint32_t h, uint32_t w,
                          unsigned bits) {
    uint64_t raw = (uint64_t)h * (((uint64_t)w * bits + 7) / 8 + 1);
    if (raw > 1032 * size + 1032)
        return dcrw_fail(DCRW_ETRUNCATED,
                         "%.200s: %llu bytes cannot hold the %ux%u image its header declares",
                         ctx->path, (unsigned long long)size, (unsigned)w, (unsigned)h);
    return DCRW_OK;
}

static int check_shape(const png_ctx *ctx, png_shape *want, uint32_t c, uint32_t h, uint32_t w) {
    if (!want->first) {
        want->channels = c, want->height = h, want->width = w;
        want->first = ctx->path;
        return DCRW_OK;
    }
    if (c == want->channels && h == want->height && w == want->width) return DCRW_OK;
    return dcrw_fail(DCRW_ESHAPE,
                     "%.200s is %ux%u %s but %.200s, the first image, is %ux%u %s: every image "
                     "must have one shape",
                     ctx->path, (unsigned)w, (unsigned)h, colour_name((int)c), want->first,
                     (unsigned)want->width, (unsigned)want->height,
                     colour_name((int)want->channels));
}

/* Samples, interleaved per pixel, to channel-major floats in [0, 1]. */
static void rows_to_floats(const png_rows *b, const png_shape *s, int depth, float *dst) {
    const size_t C = s->channels, H = s->height, W = s->width;
    for (size_t y = 0; y < H; y++) {
        const unsigned char *row = b->rows[y];
        for (size_t x = 0; x < W; x++)
            for (size_t c = 0; c < C; c++) {
                size_t k = x * C + c;
                float v = depth == 16 ? (float)(row[2 * k] << 8 | row[2 * k + 1]) / 65535.0f
                                      : (float)row[k] / 255.0f;
                dst[(c * H + y) * W + x] = v;
            }
    }
}

/* The part of a decode that libpng may leave by longjmp: nothing it
 * allocates lives anywhere but in b. dst NULL: read the shape only. */
static int decode_body(png_structp png, png_infop info, png_ctx *ctx, uint64_t size,
                       png_shape *want, png_rows *b, float *dst) {
    png_set_read_fn(png, ctx, on_read);
    png_set_sig_bytes(png, 8);
    png_set_user_limits(png, DCRW_IMAGES_MAX_SIDE, DCRW_IMAGES_MAX_SIDE);
    png_read_info(png, info);
    unsigned bits = set_transforms(png, info);
    uint32_t w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    uint32_t c = png_get_channels(png, info);
    int depth = png_get_bit_depth(png, info);
    int rc = check_png_room(ctx, size, h, w, bits);
    if (!rc) rc = check_shape(ctx, want, c, h, w);
    if (rc || !dst) return rc;
    size_t rowbytes = png_get_rowbytes(png, info);
    rc = grow(b, rowbytes * h, h);
    if (rc) return rc;
    for (uint32_t y = 0; y < h; y++) b->rows[y] = b->pix + (size_t)y * rowbytes;
    png_read_image(png, b->rows);
    png_read_end(png, NULL);
    unsigned char extra;
    if (read(ctx->fd, &extra, 1) > 0)
        return dcrw_fail(DCRW_EFORMAT, "%.200s: trailing bytes after the PNG's end", ctx->path);
    rows_to_floats(b, want, depth, dst);
    return DCRW_OK;
}

static int png_failure(const png_ctx *ctx) {
    if (ctx->code == DCRW_ETRUNCATED)
        return dcrw_fail(DCRW_ETRUNCATED, "%.200s: PNG file ends early", ctx->path);
    if (ctx->code == DCRW_EIO)
        return dcrw_fail(DCRW_EIO, "cannot read %.200s: %s", ctx->path, ctx->msg);
    if (strstr(ctx->msg, "memory"))
        return dcrw_fail(DCRW_ENOMEM, "out of memory decoding %.200s", ctx->path);
    return dcrw_fail(DCRW_EFORMAT, "%.200s: corrupt PNG (%s)", ctx->path, ctx->msg);
}

/* Decode one file into dst (C×H×W floats) after checking it against
 * *want, which the first file sets. */
static int decode_png(png_ctx *ctx, png_shape *want, png_rows *b, float *dst) {
    uint64_t size;
    int rc = dcrw_file_open_read(ctx->path, &ctx->fd, &size);
    if (rc) return rc;
    unsigned char sig[8];
    ssize_t got = read(ctx->fd, sig, sizeof sig);
    if (got != (ssize_t)sizeof sig || png_sig_cmp(sig, 0, sizeof sig) != 0) {
        close(ctx->fd);
        return dcrw_fail(DCRW_EFORMAT, "%.200s: not a PNG file (no PNG signature)", ctx->path);
    }
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, ctx, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        close(ctx->fd);
        return dcrw_fail(DCRW_ENOMEM, "out of memory decoding %.200s", ctx->path);
    }
    ctx->code = DCRW_OK;
    if (setjmp(ctx->jmp)) {
        rc = png_failure(ctx);
    } else {
        rc = decode_body(png, info, ctx, size, want, b, dst);
    }
    png_destroy_read_struct(&png, &info, NULL);
    close(ctx->fd);
    return rc;
}

static int decode_all(const entry_list *files, int classes, const char *path, dcrw_imageset *s) {
    png_shape want = {0, 0, 0, NULL};
    png_rows b = {0};
    png_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.path = files->e[0].path;
    int rc = decode_png(&ctx, &want, &b, NULL);
    if (!rc) rc = dcrw_imageset_alloc(s, path, files->n, want.channels, want.height, want.width);
    if (!rc && classes) {
        s->labels = dcrw_alloc(files->n * sizeof *s->labels);
        if (!s->labels) rc = DCRW_ENOMEM;
        s->classes = classes;
    }
    const size_t P = (size_t)want.channels * want.height * want.width;
    for (size_t i = 0; i < files->n && !rc; i++) {
        ctx.path = files->e[i].path;
        rc = decode_png(&ctx, &want, &b, s->images + i * P);
        if (s->labels) s->labels[i] = files->e[i].label;
    }
    dcrw_free(b.pix);
    dcrw_free(b.rows);
    return rc;
}
#endif

int dcrw_pngdir_read(const char *path, dcrw_imageset *s) {
    memset(s, 0, sizeof *s);
    struct stat st;
    if (stat(path, &st) != 0)
        return dcrw_fail(DCRW_EIO, "cannot open %.200s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return dcrw_fail(DCRW_EIO, "%.200s is not a folder", path);
    entry_list files = {0};
    int classes = 0;
    int rc = list_images(path, &files, &classes);
#if DCRW_HAVE_LIBPNG
    if (!rc) rc = decode_all(&files, classes, path, s);
#else
    if (!rc)
        rc = dcrw_fail(DCRW_EUNSUPPORTED,
                       "%.200s is a folder of PNG images, but this libdcrw was built without "
                       "libpng: rebuild it with libpng installed, or convert the images to .npy",
                       path);
#endif
    list_free(&files);
    if (rc) dcrw_imageset_free(s);
    return rc;
}
