/* The readers of NumPy .npy files and folders of PNG images: every file is
 * written by the test itself (the .npy bytes from the format's definition,
 * the PNGs with libpng), read back and compared value by value, and each
 * kind of malformed file is refused with its own code and a message that
 * names the file. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "imageset.h"
#include "testutil.h"

#if DCRW_HAVE_LIBPNG
#include <png.h>
#endif
#if DCRW_HAVE_LIBPNG || DCRW_HAVE_ZLIB
#include <zlib.h>
#endif

static char *tmp;

static void setup(void) {
    tmp = tu_tmpdir();
    ck_assert_ptr_nonnull(tmp);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void teardown(void) {
    /* the tests make folders in folders, which tu_rmdir does not descend */
    nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    tu_rmdir(tmp);
    tmp = NULL;
}

/* path of `name` under the test's folder; rotating buffers so that a few
 * can be held at once */
static const char *tpath(const char *name) {
    static char buf[4][4096];
    static int which;
    which = (which + 1) % 4;
    snprintf(buf[which], sizeof buf[which], "%s/%s", tmp, name);
    return buf[which];
}

static void write_bytes(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    if (n) ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* The failure of a reader: its code, a zeroed set, and a message naming
 * the file and containing `says`. */
static void check_refused(int rc, int want, const dcrw_imageset *s, const char *path,
                          const char *says) {
    ck_assert_msg(rc == want, "%s: got %d (%s), want %d", path, rc, dcrw_last_error(), want);
    ck_assert_ptr_null(s->images);
    ck_assert_ptr_null(s->labels);
    ck_assert_uint_eq(s->count, 0);
    ck_assert_msg(strstr(dcrw_last_error(), path), "message does not name %s: %s", path,
                  dcrw_last_error());
    ck_assert_msg(strstr(dcrw_last_error(), says), "message lacks \"%s\": %s", says,
                  dcrw_last_error());
}

/* ------------------------------------------------------------------------
 * .npy: magic, version, little-endian header length, the dict padded with
 * spaces and a newline to a multiple of 64 bytes, then the raw values. */

typedef struct {
    unsigned char *b;
    size_t n;
} bytes;

static bytes npy_bytes(int major, const char *dict, const void *data, size_t ndata) {
    size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
    size_t hlen = ((pre + dl + 1 + 63) / 64) * 64 - pre;
    bytes r = {malloc(pre + hlen + ndata + 1), pre + hlen + ndata};
    ck_assert_ptr_nonnull(r.b);
    memcpy(r.b, "\x93NUMPY", 6);
    r.b[6] = (unsigned char)major;
    r.b[7] = 0;
    for (size_t k = 0; k < pre - 8; k++) r.b[8 + k] = (unsigned char)(hlen >> (8 * k));
    memset(r.b + pre, ' ', hlen);
    memcpy(r.b + pre, dict, dl);
    r.b[pre + hlen - 1] = '\n';
    if (ndata) memcpy(r.b + pre + hlen, data, ndata);
    return r;
}

static const char *write_npy(const char *name, int major, const char *dict, const void *data,
                             size_t ndata) {
    bytes r = npy_bytes(major, dict, data, ndata);
    const char *p = tpath(name);
    write_bytes(p, r.b, r.n);
    free(r.b);
    return p;
}

static void put_le32(unsigned char *b, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    for (int k = 0; k < 4; k++) b[k] = (unsigned char)(u >> (8 * k));
}

static void put_be32(unsigned char *b, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    for (int k = 0; k < 4; k++) b[3 - k] = (unsigned char)(u >> (8 * k));
}

static void put_le64(unsigned char *b, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    for (int k = 0; k < 8; k++) b[k] = (unsigned char)(u >> (8 * k));
}

static void check_shape(const dcrw_imageset *s, size_t n, int c, int h, int w) {
    ck_assert_uint_eq(s->count, n);
    ck_assert_int_eq(s->channels, c);
    ck_assert_int_eq(s->height, h);
    ck_assert_int_eq(s->width, w);
    ck_assert_ptr_null(s->labels);
}

START_TEST(test_npy_u8_nhw) {
    enum { N = 3, H = 2, W = 5 };
    unsigned char v[N * H * W];
    for (int i = 0; i < N * H * W; i++) v[i] = (unsigned char)(i * 53 + 7);
    v[0] = 0, v[1] = 255;
    const char *p = write_npy(
        "a.npy", 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 2, 5), }", v, sizeof v);
    ck_assert_int_eq(dcrw_npy_sniff(p), 1);
    dcrw_imageset s;
    ck_assert_int_eq(dcrw_npy_read(p, &s), DCRW_OK);
    check_shape(&s, N, 1, H, W);
    for (int i = 0; i < N * H * W; i++) ck_assert(s.images[i] == (float)(v[i] / 255.0));
    ck_assert(s.images[0] == 0.0f && s.images[1] == 1.0f);
    dcrw_imageset_free(&s);
    ck_assert_ptr_null(s.images);
}
END_TEST

/* float32 [N, C, H, W], little- and big-endian, and a version 2 header */
START_TEST(test_npy_f32_nchw) {
    enum { N = 2, C = 3, H = 4, W = 4, T = N * C * H * W };
    unsigned char le[T * 4], be[T * 4];
    float v[T];
    for (int i = 0; i < T; i++) {
        v[i] = (float)((i * 7919) % 1000) / 999.0f;
        put_le32(le + 4 * i, v[i]);
        put_be32(be + 4 * i, v[i]);
    }
    const char *names[3] = {"le.npy", "be.npy", "v2.npy"};
    const char *descr[3] = {"<f4", ">f4", "<f4"};
    for (int k = 0; k < 3; k++) {
        char dict[128];
        snprintf(dict, sizeof dict,
                 "{'descr': '%s', 'fortran_order': False, 'shape': (2, 3, 4, 4)}", descr[k]);
        const char *p = write_npy(names[k], k == 2 ? 2 : 1, dict, k == 1 ? be : le, sizeof le);
        dcrw_imageset s;
        ck_assert_int_eq(dcrw_npy_read(p, &s), DCRW_OK);
        /* [N, 3, 4, 4]: the second dimension is a channel count, so NCHW */
        check_shape(&s, N, C, H, W);
        for (int i = 0; i < T; i++) ck_assert(s.images[i] == v[i]);
        dcrw_imageset_free(&s);
    }
}
END_TEST

/* float64 [N, H, W, C]: the file's (h, w, c) order becomes (c, h, w) */
START_TEST(test_npy_f64_nhwc) {
    enum { N = 2, H = 5, W = 6, C = 3, T = N * H * W * C };
    unsigned char b[T * 8];
    double v[T];
    for (int i = 0; i < T; i++) {
        v[i] = (double)((i * 31) % 97) / 96.0;
        put_le64(b + 8 * i, v[i]);
    }
    const char *p =
        write_npy("hwc.npy", 1, "{'shape': (2, 5, 6, 3), 'fortran_order': False, 'descr': '<f8', }",
                  b, sizeof b);
    dcrw_imageset s;
    ck_assert_int_eq(dcrw_npy_read(p, &s), DCRW_OK);
    check_shape(&s, N, C, H, W);
    for (int n = 0; n < N; n++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int c = 0; c < C; c++) {
                    float got = s.images[(((size_t)n * C + c) * H + y) * W + x];
                    ck_assert(got == (float)v[((n * H + y) * W + x) * C + c]);
                }
    dcrw_imageset_free(&s);
}
END_TEST

/* The documented rule: channels last when the last dimension is 1, 3 or 4
 * and the second is none of them. */
START_TEST(test_npy_layout_rule) {
    ck_assert_int_eq(dcrw_npy_channels_last(28, 3), 1);
    ck_assert_int_eq(dcrw_npy_channels_last(32, 1), 1);
    ck_assert_int_eq(dcrw_npy_channels_last(60, 4), 1);
    ck_assert_int_eq(dcrw_npy_channels_last(3, 28), 0);
    ck_assert_int_eq(dcrw_npy_channels_last(1, 28), 0);
    ck_assert_int_eq(dcrw_npy_channels_last(3, 3), 0);
    ck_assert_int_eq(dcrw_npy_channels_last(1, 4), 0);
    ck_assert_int_eq(dcrw_npy_channels_last(28, 28), 0);
    /* [N, 1, 28, 28] reads as one grey channel, [N, 28, 28, 1] too */
    unsigned char v[2 * 28 * 28] = {0};
    dcrw_imageset s;
    const char *a = write_npy("c1.npy", 1,
                              "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 1, 28, 28), }",
                              v, sizeof v);
    ck_assert_int_eq(dcrw_npy_read(a, &s), DCRW_OK);
    check_shape(&s, 2, 1, 28, 28);
    dcrw_imageset_free(&s);
    const char *b = write_npy("c2.npy", 1,
                              "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 28, 28, 1), }",
                              v, sizeof v);
    ck_assert_int_eq(dcrw_npy_read(b, &s), DCRW_OK);
    check_shape(&s, 2, 1, 28, 28);
    dcrw_imageset_free(&s);
}
END_TEST

/* A header that is well formed but wrong for us, or malformed; each must be
 * refused with its code and a message naming the file and the problem. */
START_TEST(test_npy_bad_headers) {
    static const struct {
        const char *dict;
        int code;
        const char *says;
    } cases[] = {
        {"{'descr': '|u1', 'fortran_order': True, 'shape': (1, 2, 2), }", DCRW_EUNSUPPORTED,
         "Fortran"},
        {"{'descr': '<i8', 'fortran_order': False, 'shape': (1, 2, 2), }", DCRW_EUNSUPPORTED,
         "'<i8'"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1, 2, 2), }",
         DCRW_EUNSUPPORTED, "structured"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (4, 1), }", DCRW_EFORMAT,
         "2 dimensions"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (), }", DCRW_EFORMAT, "0 dimensions"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (0, 2, 2), }", DCRW_EFORMAT,
         "no images"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (1, 0, 2), }", DCRW_EFORMAT, "zero"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (1, 65, 2, 2), }", DCRW_EFORMAT,
         "limits"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (1, 5000, 2), }", DCRW_EFORMAT,
         "limits"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (200000, 4096, 4096), }", DCRW_EFORMAT,
         "2^31"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (99999999999999999999, 2, 2), }",
         DCRW_EFORMAT, "absurd"},
        {"{'descr': '|u1', 'fortran_order': False, }", DCRW_EFORMAT, "lacks 'shape'"},
        {"{'descr': '|u1', 'descr': '|u1', 'fortran_order': False, 'shape': (1, 2, 2)}",
         DCRW_EFORMAT, "repeats"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (1, 2, 2), 'x': 1}", DCRW_EFORMAT,
         "unknown key 'x'"},
        {"{'descr': '|u1', 'fortran_order': 0, 'shape': (1, 2, 2)}", DCRW_EFORMAT, "fortran_order"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (1, 2, 2)} x", DCRW_EFORMAT,
         "after the dict"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': [1, 2, 2]}", DCRW_EFORMAT,
         "not a tuple"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (1, -2, 2)}", DCRW_EFORMAT,
         "non-number"},
        {"{'descr' '|u1', 'fortran_order': False, 'shape': (1, 2, 2)}", DCRW_EFORMAT, "malformed"},
        {"['descr', '|u1']", DCRW_EFORMAT, "not a dict"},
    };
    unsigned char v[4] = {1, 2, 3, 4};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "bad%zu.npy", i);
        const char *p = write_npy(name, 1, cases[i].dict, v, sizeof v);
        dcrw_imageset s;
        check_refused(dcrw_npy_read(p, &s), cases[i].code, &s, p, cases[i].says);
    }
}
END_TEST

START_TEST(test_npy_bad_files) {
    const char *dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2, 2), }";
    unsigned char v[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    dcrw_imageset s;
    const char *p = write_npy("short.npy", 1, dict, v, 7);
    check_refused(dcrw_npy_read(p, &s), DCRW_ETRUNCATED, &s, p, "declares");
    p = write_npy("long.npy", 1, dict, v, 9);
    check_refused(dcrw_npy_read(p, &s), DCRW_EFORMAT, &s, p, "trailing");
    /* a header cut short, then one whose length points past the end */
    bytes r = npy_bytes(1, dict, v, 8);
    p = tpath("cut.npy");
    write_bytes(p, r.b, 30);
    check_refused(dcrw_npy_read(p, &s), DCRW_ETRUNCATED, &s, p, "header");
    r.b[9] = 0x7f;
    p = tpath("hlen.npy");
    write_bytes(p, r.b, r.n);
    check_refused(dcrw_npy_read(p, &s), DCRW_ETRUNCATED, &s, p, "header");
    r.b[8] = 0xff, r.b[9] = 0xff, r.b[6] = 2;
    r.b[10] = 0xff, r.b[11] = 0x7f;
    p = tpath("huge.npy");
    write_bytes(p, r.b, r.n);
    check_refused(dcrw_npy_read(p, &s), DCRW_EFORMAT, &s, p, "header of");
    r.b[6] = 4;
    p = tpath("v4.npy");
    write_bytes(p, r.b, r.n);
    check_refused(dcrw_npy_read(p, &s), DCRW_EUNSUPPORTED, &s, p, "version 4");
    r.b[0] = 'x';
    p = tpath("magic.npy");
    write_bytes(p, r.b, r.n);
    ck_assert_int_eq(dcrw_npy_sniff(p), 0);
    check_refused(dcrw_npy_read(p, &s), DCRW_EFORMAT, &s, p, "not a .npy");
    free(r.b);
    /* a folder and a FIFO: refused at once, without waiting for a writer */
    p = tpath("dir.npy");
    ck_assert_int_eq(mkdir(p, 0700), 0);
    check_refused(dcrw_npy_read(p, &s), DCRW_EIO, &s, p, "folder");
    p = tpath("fifo.npy");
    ck_assert_int_eq(mkfifo(p, 0600), 0);
    ck_assert_int_eq(dcrw_npy_sniff(p), 0);
    check_refused(dcrw_npy_read(p, &s), DCRW_EIO, &s, p, "FIFO");
    p = tpath("missing.npy");
    check_refused(dcrw_npy_read(p, &s), DCRW_EIO, &s, p, "cannot open");
}
END_TEST

/* A file far smaller than its header declares is refused before the image
 * buffer is allocated: the only allocation is the header's text. */
START_TEST(test_npy_lying_size_allocates_nothing) {
    unsigned char v[16] = {0};
    const char *p = write_npy(
        "lie.npy", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (30000, 64, 1024), }", v,
        sizeof v);
    dcrw_imageset s;
    dcrw_test_alloc_fail_after(1000);
    int rc = dcrw_npy_read(p, &s);
    long left = dcrw_test_alloc_fail_after(-1);
    check_refused(rc, DCRW_ETRUNCATED, &s, p, "declares");
    ck_assert_int_eq(1000 - left, 1);
}
END_TEST

/* Floats must be finite and in [0, 1]; the message says which image. */
START_TEST(test_npy_values) {
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 1, 2), }";
    const float bad[4] = {1.5f, -0.25f, NAN, INFINITY};
    const int code[4] = {DCRW_EFORMAT, DCRW_EFORMAT, DCRW_ENUMERIC, DCRW_ENUMERIC};
    const char *says[4] = {"image 2 holds 1.5", "image 2 holds -0.25", "NaN", "infinity"};
    for (int k = 0; k < 4; k++) {
        unsigned char b[6 * 4];
        for (int i = 0; i < 6; i++) put_le32(b + 4 * i, i == 5 ? bad[k] : 0.5f);
        char name[32];
        snprintf(name, sizeof name, "v%d.npy", k);
        const char *p = write_npy(name, 1, dict, b, sizeof b);
        dcrw_imageset s;
        check_refused(dcrw_npy_read(p, &s), code[k], &s, p, says[k]);
    }
}
END_TEST

/* read(path) with its k-th allocation failing, k = 0, 1, ... until it
 * succeeds within `tries`: each failure is DCRW_ENOMEM with nothing set;
 * with class1, the set read has image 1 in class 1. */
static void alloc_fail_sweep(int (*read)(const char *, dcrw_imageset *), const char *path,
                             long tries, int class1) {
    int ok = 0;
    for (long k = 0; k < tries && !ok; k++) {
        dcrw_imageset s;
        dcrw_test_alloc_fail_after(k);
        int rc = read(path, &s);
        long left = dcrw_test_alloc_fail_after(-1);
        if (left == -1) {
            ck_assert_int_eq(rc, DCRW_ENOMEM);
            ck_assert_ptr_null(s.images);
        } else {
            ck_assert_int_eq(rc, DCRW_OK);
            if (class1) ck_assert_int_eq(s.labels[1], 1);
            dcrw_imageset_free(&s);
            ok = 1;
        }
    }
    ck_assert_msg(ok, "%s: no read succeeded in %ld tries", path, tries);
}

/* Every allocation of a read failing in turn: ENOMEM, nothing leaked
 * (AddressSanitizer), nothing half set. */
START_TEST(test_npy_alloc_failures) {
    unsigned char v[2 * 3 * 3 * 3];
    for (size_t i = 0; i < sizeof v; i++) v[i] = (unsigned char)i;
    const char *p =
        write_npy("a.npy", 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3, 3, 3), }",
                  v, sizeof v);
    alloc_fail_sweep(dcrw_npy_read, p, 20, 0);
}
END_TEST

#if DCRW_HAVE_LIBPNG
/* ------------------------------------------------------------------------
 * PNG folders, the files written with libpng. */

/* samples: h rows of w pixels of `channels` interleaved samples, 8 or 16
 * bits (16: two bytes each, big-endian, as PNG stores them) */
static void write_png(const char *path, int w, int h, int type, int depth, int interlace,
                      const unsigned char *samples) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    ck_assert_ptr_nonnull(info);
    ck_assert_int_eq(setjmp(png_jmpbuf(png)), 0);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, type,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (type == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[4] = {{0, 0, 0}, {255, 0, 0}, {0, 128, 255}, {10, 20, 30}};
        png_byte trns[2] = {255, 64};
        png_set_PLTE(png, info, pal, 4);
        /* one test covers both: an interlaced palette image has a tRNS */
        if (interlace) png_set_tRNS(png, info, trns, 2, NULL);
    }
    png_write_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    png_bytep *rows = malloc((size_t)h * sizeof *rows);
    ck_assert_ptr_nonnull(rows);
    for (int y = 0; y < h; y++) rows[y] = (png_bytep)samples + (size_t)y * rowbytes;
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    ck_assert_int_eq(fclose(f), 0);
}

static void make_dir(const char *path) {
    ck_assert_int_eq(mkdir(path, 0700), 0);
}

/* Sample k of image `seed`: a pattern that differs per image and position. */
static unsigned sample(int seed, size_t k, int depth) {
    unsigned v = (unsigned)(seed * 1009 + (int)k * 37 + 11);
    return depth == 16 ? (v * 2654435761u) >> 16 : v & 255u;
}

static unsigned char *pattern(int seed, int w, int h, int channels, int depth) {
    size_t n = (size_t)w * h * channels, bytes = n * (depth / 8);
    unsigned char *b = malloc(bytes);
    ck_assert_ptr_nonnull(b);
    for (size_t k = 0; k < n; k++) {
        unsigned v = sample(seed, k, depth);
        if (depth == 16) {
            b[2 * k] = (unsigned char)(v >> 8);
            b[2 * k + 1] = (unsigned char)v;
        } else {
            b[k] = (unsigned char)v;
        }
    }
    return b;
}

static void write_pattern(const char *path, int seed, int w, int h, int type, int depth,
                          int interlace) {
    int channels = type == PNG_COLOR_TYPE_GRAY         ? 1
                   : type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
                   : type == PNG_COLOR_TYPE_RGB        ? 3
                                                       : 4;
    unsigned char *b = pattern(seed, w, h, channels, depth);
    write_png(path, w, h, type, depth, interlace, b);
    free(b);
}

/* Image i of s against pattern(seed), channel-major. */
static void check_pattern(const dcrw_imageset *s, size_t i, int seed, int depth) {
    const size_t C = (size_t)s->channels, H = (size_t)s->height, W = (size_t)s->width;
    const float *img = s->images + i * C * H * W;
    for (size_t y = 0; y < H; y++)
        for (size_t x = 0; x < W; x++)
            for (size_t c = 0; c < C; c++) {
                unsigned v = sample(seed, (y * W + x) * C + c, depth);
                float want = depth == 16 ? (float)v / 65535.0f : (float)v / 255.0f;
                ck_assert_msg(img[(c * H + y) * W + x] == want, "image %zu (%zu,%zu,%zu)", i, c, y,
                              x);
            }
}

/* Each colour type and depth, one folder each, read back exactly; an
 * interlaced file gives the same values as a plain one. */
START_TEST(test_png_types) {
    static const struct {
        int type, depth, channels;
    } t[] = {{PNG_COLOR_TYPE_GRAY, 8, 1},       {PNG_COLOR_TYPE_GRAY, 16, 1},
             {PNG_COLOR_TYPE_GRAY_ALPHA, 8, 2}, {PNG_COLOR_TYPE_GRAY_ALPHA, 16, 2},
             {PNG_COLOR_TYPE_RGB, 8, 3},        {PNG_COLOR_TYPE_RGB, 16, 3},
             {PNG_COLOR_TYPE_RGB_ALPHA, 8, 4},  {PNG_COLOR_TYPE_RGB_ALPHA, 16, 4}};
    for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
        char name[32];
        snprintf(name, sizeof name, "set%zu", k);
        const char *dir = tpath(name);
        make_dir(dir);
        char f[4200];
        for (int i = 0; i < 3; i++) {
            snprintf(f, sizeof f, "%s/img%d.png", dir, i);
            write_pattern(f, i + (int)k * 10, 7, 5, t[k].type, t[k].depth, i == 1);
        }
        ck_assert_int_eq(dcrw_pngdir_sniff(dir), 1);
        dcrw_imageset s;
        ck_assert_msg(dcrw_pngdir_read(dir, &s) == DCRW_OK, "%s", dcrw_last_error());
        check_shape(&s, 3, t[k].channels, 5, 7);
        ck_assert_int_eq(s.classes, 0);
        for (int i = 0; i < 3; i++) check_pattern(&s, (size_t)i, i + (int)k * 10, t[k].depth);
        dcrw_imageset_free(&s);
    }
}
END_TEST

/* Palette images expand to RGB, or RGBA when they carry transparency;
 * 1-bit grey to 0 and 1. */
START_TEST(test_png_palette_and_low_depth) {
    const char *dir = tpath("pal"), *dir2 = tpath("pal2"), *dir3 = tpath("bits");
    make_dir(dir);
    make_dir(dir2);
    make_dir(dir3);
    /* 2-bit indices 0,1,2,3 in one byte per row of 4 pixels */
    unsigned char idx[2] = {0x1b, 0xe4}; /* 00 01 10 11, then 11 10 01 00 */
    char f[4200];
    snprintf(f, sizeof f, "%s/a.png", dir);
    write_png(f, 4, 2, PNG_COLOR_TYPE_PALETTE, 2, 0, idx);
    snprintf(f, sizeof f, "%s/a.png", dir2);
    write_png(f, 4, 2, PNG_COLOR_TYPE_PALETTE, 2, 1, idx);
    dcrw_imageset s;
    ck_assert_int_eq(dcrw_pngdir_read(dir, &s), DCRW_OK);
    check_shape(&s, 1, 3, 2, 4);
    /* pixel (0,2) is index 2 = (0, 128, 255); (1,0) is index 3 */
    ck_assert(s.images[0 * 8 + 2] == 0.0f);
    ck_assert(s.images[1 * 8 + 2] == 128.0f / 255.0f);
    ck_assert(s.images[2 * 8 + 2] == 1.0f);
    ck_assert(s.images[0 * 8 + 4] == 10.0f / 255.0f);
    dcrw_imageset_free(&s);
    ck_assert_int_eq(dcrw_pngdir_read(dir2, &s), DCRW_OK);
    check_shape(&s, 1, 4, 2, 4);
    ck_assert(s.images[3 * 8 + 1] == 64.0f / 255.0f); /* index 1's alpha */
    ck_assert(s.images[3 * 8 + 2] == 1.0f);           /* no entry: opaque */
    dcrw_imageset_free(&s);
    unsigned char bits[2] = {0xa0, 0x50}; /* 1010, 0101 */
    snprintf(f, sizeof f, "%s/a.png", dir3);
    write_png(f, 4, 2, PNG_COLOR_TYPE_GRAY, 1, 0, bits);
    ck_assert_int_eq(dcrw_pngdir_read(dir3, &s), DCRW_OK);
    check_shape(&s, 1, 1, 2, 4);
    const float want[8] = {1, 0, 1, 0, 0, 1, 0, 1};
    for (int i = 0; i < 8; i++) ck_assert(s.images[i] == want[i]);
    dcrw_imageset_free(&s);
}
END_TEST

/* Class folders give labels by their sorted names; files are read in byte
 * order of their names; hidden and non-PNG entries are skipped. */
START_TEST(test_png_classes) {
    const char *root = tpath("classes");
    make_dir(root);
    char d[4200], f[4300];
    const char *classes[3] = {"zebra", "cat", "dog"}; /* made out of order */
    for (int k = 0; k < 3; k++) {
        snprintf(d, sizeof d, "%s/%s", root, classes[k]);
        make_dir(d);
    }
    /* cat: 9.png and 10.png ("10" sorts first); dog: b.PNG; zebra: a.png */
    snprintf(f, sizeof f, "%s/cat/9.png", root);
    write_pattern(f, 1, 3, 2, PNG_COLOR_TYPE_GRAY, 8, 0);
    snprintf(f, sizeof f, "%s/cat/10.png", root);
    write_pattern(f, 2, 3, 2, PNG_COLOR_TYPE_GRAY, 8, 0);
    snprintf(f, sizeof f, "%s/dog/b.PNG", root);
    write_pattern(f, 3, 3, 2, PNG_COLOR_TYPE_GRAY, 8, 0);
    snprintf(f, sizeof f, "%s/zebra/a.png", root);
    write_pattern(f, 4, 3, 2, PNG_COLOR_TYPE_GRAY, 8, 0);
    snprintf(f, sizeof f, "%s/dog/.hidden.png", root);
    write_bytes(f, "junk", 4);
    snprintf(f, sizeof f, "%s/dog/notes.txt", root);
    write_bytes(f, "junk", 4);
    snprintf(f, sizeof f, "%s/README", root);
    write_bytes(f, "junk", 4);
    snprintf(d, sizeof d, "%s/.cache", root);
    make_dir(d);
    ck_assert_int_eq(dcrw_pngdir_sniff(root), 1);
    dcrw_imageset s;
    ck_assert_msg(dcrw_pngdir_read(root, &s) == DCRW_OK, "%s", dcrw_last_error());
    ck_assert_uint_eq(s.count, 4);
    ck_assert_int_eq(s.classes, 3);
    ck_assert_ptr_nonnull(s.labels);
    const int seeds[4] = {2, 1, 3, 4}, labels[4] = {0, 0, 1, 2};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(s.labels[i], labels[i]);
        check_pattern(&s, (size_t)i, seeds[i], 8);
    }
    dcrw_imageset_free(&s);
}
END_TEST

/* The first image that differs in shape is named, with the first one. */
START_TEST(test_png_mismatch) {
    const char *dir = tpath("mix");
    make_dir(dir);
    char f[4200], g[4200];
    snprintf(f, sizeof f, "%s/a.png", dir);
    write_pattern(f, 1, 4, 4, PNG_COLOR_TYPE_RGB, 8, 0);
    snprintf(g, sizeof g, "%s/b.png", dir);
    write_pattern(g, 2, 4, 4, PNG_COLOR_TYPE_RGB, 16, 0); /* depth may differ */
    snprintf(g, sizeof g, "%s/c.png", dir);
    write_pattern(g, 3, 4, 5, PNG_COLOR_TYPE_RGB, 8, 0);
    snprintf(f, sizeof f, "%s/d.png", dir);
    write_pattern(f, 4, 4, 4, PNG_COLOR_TYPE_GRAY, 8, 0);
    dcrw_imageset s;
    check_refused(dcrw_pngdir_read(dir, &s), DCRW_ESHAPE, &s, g, "4x5 RGB");
    ck_assert_ptr_nonnull(strstr(dcrw_last_error(), "a.png, the first image, is 4x4 RGB"));
    unlink(g);
    check_refused(dcrw_pngdir_read(dir, &s), DCRW_ESHAPE, &s, f, "4x4 grey");
}
END_TEST

/* Damaged files: each refused with the file named. */
START_TEST(test_png_bad_files) {
    const char *dir = tpath("bad");
    make_dir(dir);
    char good[4200], f[4200];
    snprintf(good, sizeof good, "%s/a.png", dir);
    write_pattern(good, 1, 16, 16, PNG_COLOR_TYPE_RGB, 8, 0);
    size_t n;
    unsigned char *b = tu_read_file(good, &n);
    snprintf(f, sizeof f, "%s/b.png", dir);
    dcrw_imageset s;

    write_bytes(f, b, n / 2); /* cut inside the image data */
    check_refused(dcrw_pngdir_read(dir, &s), DCRW_ETRUNCATED, &s, f, "ends early");
    write_bytes(f, b, n - 6); /* cut inside the IEND chunk */
    check_refused(dcrw_pngdir_read(dir, &s), DCRW_ETRUNCATED, &s, f, "ends early");
    unsigned char *c = malloc(n + 3);
    ck_assert_ptr_nonnull(c);
    memcpy(c, b, n);
    memcpy(c + n, "xyz", 3);
    write_bytes(f, c, n + 3);
    check_refused(dcrw_pngdir_read(dir, &s), DCRW_EFORMAT, &s, f, "trailing");
    c[n - 20] ^= 0x55; /* inside IDAT: its CRC no longer matches */
    write_bytes(f, c, n);
    check_refused(dcrw_pngdir_read(dir, &s), DCRW_EFORMAT, &s, f, "corrupt PNG");
    write_bytes(f, "hello, world", 12);
    check_refused(dcrw_pngdir_read(dir, &s), DCRW_EFORMAT, &s, f, "not a PNG");
    unlink(f);
    ck_assert_int_eq(mkfifo(f, 0600), 0);
    check_refused(dcrw_pngdir_read(dir, &s), DCRW_EIO, &s, f, "FIFO");
    unlink(f);
    free(c);
    free(b);
}
END_TEST

static void put_chunk(unsigned char **p, const char *type, const unsigned char *data, uint32_t n) {
    unsigned char *q = *p;
    for (int k = 0; k < 4; k++) q[k] = (unsigned char)(n >> (24 - 8 * k));
    memcpy(q + 4, type, 4);
    if (n) memcpy(q + 8, data, n);
    uint32_t crc = (uint32_t)crc32(0, q + 4, 4 + n);
    for (int k = 0; k < 4; k++) q[8 + n + k] = (unsigned char)(crc >> (24 - 8 * k));
    *p = q + 12 + n;
}

/* A valid header that declares 4000x4000 pixels in a file of a few dozen
 * bytes is refused as too small before anything is decoded (libpng would
 * otherwise report a missing IDAT after the rows were allocated). */
START_TEST(test_png_lying_header) {
    const char *dir = tpath("lie");
    make_dir(dir);
    unsigned char file[256], *p = file;
    memcpy(p, "\x89PNG\r\n\x1a\n", 8);
    p += 8;
    unsigned char ihdr[13] = {0, 0, 0x0f, 0xa0, 0, 0, 0x0f, 0xa0, 8, 0, 0, 0, 0};
    put_chunk(&p, "IHDR", ihdr, 13);
    /* the start of the rows, so that libpng reads the header to its end */
    unsigned char zeros[16] = {0}, idat[64];
    uLongf idat_n = sizeof idat;
    ck_assert_int_eq(compress(idat, &idat_n, zeros, sizeof zeros), Z_OK);
    put_chunk(&p, "IDAT", idat, (uint32_t)idat_n);
    put_chunk(&p, "IEND", NULL, 0);
    char f[4200];
    snprintf(f, sizeof f, "%s/a.png", dir);
    write_bytes(f, file, (size_t)(p - file));
    dcrw_imageset s;
    check_refused(dcrw_pngdir_read(dir, &s), DCRW_ETRUNCATED, &s, f, "cannot hold the 4000x4000");
    /* wider than the limit: libpng's own check, from the limit we set */
    ihdr[2] = 0x13, ihdr[3] = 0x88; /* 5000 */
    p = file + 8;
    put_chunk(&p, "IHDR", ihdr, 13);
    put_chunk(&p, "IDAT", idat, (uint32_t)idat_n);
    put_chunk(&p, "IEND", NULL, 0);
    write_bytes(f, file, (size_t)(p - file));
    check_refused(dcrw_pngdir_read(dir, &s), DCRW_EFORMAT, &s, f, "corrupt PNG");
}
END_TEST

/* Folders that hold no images, or images at two levels. */
START_TEST(test_png_bad_folders) {
    dcrw_imageset s;
    const char *empty = tpath("empty");
    make_dir(empty);
    ck_assert_int_eq(dcrw_pngdir_sniff(empty), 0);
    check_refused(dcrw_pngdir_read(empty, &s), DCRW_ENOTFOUND, &s, empty, "no PNG");
    char d[4200], f[4300];
    const char *cls = tpath("cls");
    make_dir(cls);
    snprintf(d, sizeof d, "%s/a", cls);
    make_dir(d);
    snprintf(f, sizeof f, "%s/x.png", d);
    write_pattern(f, 1, 2, 2, PNG_COLOR_TYPE_GRAY, 8, 0);
    /* an empty class folder is a class: the one after it keeps its label */
    snprintf(d, sizeof d, "%s/b", cls);
    make_dir(d);
    snprintf(d, sizeof d, "%s/c", cls);
    make_dir(d);
    snprintf(f, sizeof f, "%s/z.png", d);
    write_pattern(f, 2, 2, 2, PNG_COLOR_TYPE_GRAY, 8, 0);
    ck_assert_int_eq(dcrw_pngdir_read(cls, &s), DCRW_OK);
    ck_assert_int_eq(s.classes, 3);
    ck_assert_uint_eq(s.count, 2);
    ck_assert_int_eq(s.labels[0], 0);
    ck_assert_int_eq(s.labels[1], 2);
    dcrw_imageset_free(&s);
    /* class folders that are all empty hold no image */
    const char *none = tpath("none");
    make_dir(none);
    snprintf(d, sizeof d, "%s/a", none);
    make_dir(d);
    check_refused(dcrw_pngdir_read(none, &s), DCRW_ENOTFOUND, &s, none, "holds no PNG");
    snprintf(f, sizeof f, "%s/y.png", cls);
    write_pattern(f, 1, 2, 2, PNG_COLOR_TYPE_GRAY, 8, 0);
    check_refused(dcrw_pngdir_read(cls, &s), DCRW_EFORMAT, &s, cls, "also a folder of them");
    check_refused(dcrw_pngdir_read(f, &s), DCRW_EIO, &s, f, "not a folder");
    ck_assert_int_eq(dcrw_pngdir_sniff(f), 0);
    const char *missing = tpath("missing");
    check_refused(dcrw_pngdir_read(missing, &s), DCRW_EIO, &s, missing, "cannot open");
}
END_TEST

START_TEST(test_png_alloc_failures) {
    const char *root = tpath("af");
    make_dir(root);
    char d[4200], f[4300];
    for (int k = 0; k < 2; k++) {
        snprintf(d, sizeof d, "%s/c%d", root, k);
        make_dir(d);
        snprintf(f, sizeof f, "%s/i.png", d);
        write_pattern(f, k, 3, 3, PNG_COLOR_TYPE_RGB, 8, 0);
    }
    alloc_fail_sweep(dcrw_pngdir_read, root, 60, 1);
}
END_TEST
#else
/* Without libpng a folder of PNGs is named as such, not as empty. */
START_TEST(test_png_unsupported) {
    const char *dir = tpath("pngs");
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    char f[4200];
    snprintf(f, sizeof f, "%s/a.png", dir);
    write_bytes(f, "\x89PNG", 4);
    dcrw_imageset s;
    check_refused(dcrw_pngdir_read(dir, &s), DCRW_EUNSUPPORTED, &s, dir, "without libpng");
}
END_TEST
#endif

/* ------------------------------------------------------------------------
 * dcrw_dataset_open: each format by its path, the split, and what a folder
 * without a data set says. */

/* An IDX file of n images h×w (values i*7+seed) or, with h = 0, n labels
 * (i % 10); gzip-compressed when gz (needs zlib). */
static void write_idx(const char *path, int n, int h, int w, int seed, int gz) {
    unsigned char head[16] = {0, 0, 8, (unsigned char)(h ? 3 : 1)};
    uint32_t dims[3] = {(uint32_t)n, (uint32_t)h, (uint32_t)w};
    size_t nd = h ? 3 : 1, total = (size_t)n * (h ? (size_t)h * w : 1);
    for (size_t k = 0; k < nd; k++)
        for (int b = 0; b < 4; b++) head[4 + 4 * k + b] = (unsigned char)(dims[k] >> (24 - 8 * b));
    unsigned char *all = malloc(4 + 4 * nd + total);
    ck_assert_ptr_nonnull(all);
    memcpy(all, head, 4 + 4 * nd);
    for (size_t i = 0; i < total; i++)
        all[4 + 4 * nd + i] = (unsigned char)(h ? i * 7 + (size_t)seed : (i % 10));
    size_t len = 4 + 4 * nd + total;
    if (!gz) {
        write_bytes(path, all, len);
    } else {
#if DCRW_HAVE_ZLIB
        gzFile g = gzopen(path, "wb");
        ck_assert_ptr_nonnull(g);
        ck_assert_int_eq(gzwrite(g, all, (unsigned)len), (int)len);
        ck_assert_int_eq(gzclose(g), Z_OK);
#else
        ck_abort_msg("gzip without zlib");
#endif
    }
    free(all);
}

/* write_idx of dir/name */
static void write_idx_in(const char *dir, const char *name, int n, int h, int w, int seed, int gz) {
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    write_idx(p, n, h, w, seed, gz);
}

/* The set at path opened for split: its count and shape, image 0's first
 * value (as written: seed / 255) and whether it has labels. */
static void check_open(const char *path, int split, size_t n, int c, int h, int w, float first,
                       int labelled) {
    dcrw_dataset *d = NULL;
    int rc = dcrw_dataset_open(&d, path, split);
    ck_assert_msg(rc == DCRW_OK, "%s: %s", path, dcrw_last_error());
    ck_assert_uint_eq(dcrw_dataset_count(d), n);
    int cc, hh, ww;
    ck_assert_int_eq(dcrw_dataset_shape(d, &cc, &hh, &ww), DCRW_OK);
    ck_assert_int_eq(cc, c);
    ck_assert_int_eq(hh, h);
    ck_assert_int_eq(ww, w);
    ck_assert_msg(dcrw_dataset_images(d)[0] == first, "%s: first value %g, want %g", path,
                  dcrw_dataset_images(d)[0], first);
    ck_assert_int_eq(dcrw_dataset_label(d, n - 1), labelled ? (int)((n - 1) % 10) : -1);
    dcrw_dataset_destroy(d);
}

static void check_open_fails(const char *path, int split, int code, const char *says) {
    dcrw_dataset *d = (dcrw_dataset *)&d;
    int rc = dcrw_dataset_open(&d, path, split);
    ck_assert_msg(rc == code, "%s: got %d (%s), want %d", path, rc, dcrw_last_error(), code);
    ck_assert_ptr_null(d);
    ck_assert_msg(strstr(dcrw_last_error(), says), "message lacks \"%s\": %s", says,
                  dcrw_last_error());
}

/* MNIST's names in a folder, the split choosing the pair. */
START_TEST(test_open_mnist_folder) {
    const char *dir = tpath("mnist");
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    char p[4200];
    write_idx_in(dir, "train-images-idx3-ubyte", 5, 3, 4, 1, 0);
    write_idx_in(dir, "train-labels-idx1-ubyte", 5, 0, 0, 0, 0);
    write_idx_in(dir, "t10k-images-idx3-ubyte", 3, 3, 4, 2, 0);
    check_open(dir, DCRW_SPLIT_TRAIN, 5, 1, 3, 4, 1 / 255.0f, 1);
    check_open(dir, DCRW_SPLIT_TEST, 3, 1, 3, 4, 2 / 255.0f, 0);
    /* an IDX file given itself finds its labels beside it */
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte", dir);
    check_open(p, DCRW_SPLIT_TEST, 5, 1, 3, 4, 1 / 255.0f, 1);
}
END_TEST

#if DCRW_HAVE_ZLIB
/* Fashion-MNIST as Debian installs it (.gz names), other prefixes and
 * "test" for "t10k" (EMNIST), a plain file beside its .gz twin. */
START_TEST(test_open_gz_and_prefixes) {
    const char *fm = tpath("fashion"), *em = tpath("emnist");
    ck_assert_int_eq(mkdir(fm, 0700), 0);
    ck_assert_int_eq(mkdir(em, 0700), 0);
    write_idx_in(fm, "train-images-idx3-ubyte.gz", 6, 2, 2, 3, 1);
    write_idx_in(fm, "train-labels-idx1-ubyte.gz", 6, 0, 0, 0, 1);
    write_idx_in(fm, "t10k-images-idx3-ubyte.gz", 4, 2, 2, 4, 1);
    write_idx_in(fm, "t10k-labels-idx1-ubyte.gz", 4, 0, 0, 0, 1);
    check_open(fm, DCRW_SPLIT_TRAIN, 6, 1, 2, 2, 3 / 255.0f, 1);
    check_open(fm, DCRW_SPLIT_TEST, 4, 1, 2, 2, 4 / 255.0f, 1);
    /* the plain twin of a .gz (as gunzip -k leaves it) is the same set */
    write_idx_in(fm, "t10k-images-idx3-ubyte", 4, 2, 2, 4, 0);
    check_open(fm, DCRW_SPLIT_TEST, 4, 1, 2, 2, 4 / 255.0f, 1);
    write_idx_in(em, "emnist-letters-train-images-idx3-ubyte.gz", 7, 3, 3, 5, 1);
    write_idx_in(em, "emnist-letters-train-labels-idx1-ubyte", 7, 0, 0, 0, 0);
    write_idx_in(em, "emnist-letters-test-images-idx3-ubyte.gz", 2, 3, 3, 6, 1);
    check_open(em, DCRW_SPLIT_TRAIN, 7, 1, 3, 3, 5 / 255.0f, 1);
    check_open(em, DCRW_SPLIT_TEST, 2, 1, 3, 3, 6 / 255.0f, 0);
    /* two different training sets in one folder: which is meant? */
    write_idx_in(em, "emnist-digits-train-images-idx3-ubyte.gz", 7, 3, 3, 5, 1);
    check_open_fails(em, DCRW_SPLIT_TRAIN, DCRW_EINVAL, "two train image files");
}
END_TEST
#endif

/* .npy by content whatever its name, a folder's train.npy and test.npy,
 * train/ and test/ folders of PNG images. */
START_TEST(test_open_npy_and_split_folders) {
    unsigned char v[2 * 3 * 3] = {9, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17, 18};
    const char *dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3, 3), }";
    const char *a = write_npy("images.bin", 1, dict, v, sizeof v);
    check_open(a, DCRW_SPLIT_TRAIN, 2, 1, 3, 3, 9 / 255.0f, 0);
    const char *dir = tpath("npys");
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    write_npy("npys/train.npy", 1, dict, v, sizeof v);
    v[0] = 200;
    write_npy("npys/test.npy", 1, dict, v, sizeof v);
    check_open(dir, DCRW_SPLIT_TRAIN, 2, 1, 3, 3, 9 / 255.0f, 0);
    check_open(dir, DCRW_SPLIT_TEST, 2, 1, 3, 3, 200 / 255.0f, 0);
    const char *dir2 = tpath("onlytrain");
    ck_assert_int_eq(mkdir(dir2, 0700), 0);
    write_npy("onlytrain/train.npy", 1, dict, v, sizeof v);
    check_open_fails(dir2, DCRW_SPLIT_TEST, DCRW_ENOTFOUND, "test.npy");
#if DCRW_HAVE_LIBPNG
    const char *root = tpath("pngsplit");
    ck_assert_int_eq(mkdir(root, 0700), 0);
    char d[4200], f[4300];
    const char *parts[2] = {"train", "test"};
    for (int k = 0; k < 2; k++) {
        snprintf(d, sizeof d, "%s/%s", root, parts[k]);
        ck_assert_int_eq(mkdir(d, 0700), 0);
        for (int cls = 0; cls < 10; cls++) {
            snprintf(f, sizeof f, "%s/%d", d, cls);
            ck_assert_int_eq(mkdir(f, 0700), 0);
            snprintf(f, sizeof f, "%s/%d/x.png", d, cls);
            unsigned char px[4 * 2 * 3] = {(unsigned char)(k * 100 + cls)};
            write_png(f, 4, 2, PNG_COLOR_TYPE_RGB, 8, 0, px);
        }
    }
    check_open(root, DCRW_SPLIT_TRAIN, 10, 3, 2, 4, 0.0f, 1);
    check_open(root, DCRW_SPLIT_TEST, 10, 3, 2, 4, 100 / 255.0f, 1);
    snprintf(d, sizeof d, "%s/train", root);
    check_open(d, DCRW_SPLIT_TEST, 10, 3, 2, 4, 0.0f, 1);
#endif
}
END_TEST

START_TEST(test_open_refusals) {
    const char *empty = tpath("empty");
    ck_assert_int_eq(mkdir(empty, 0700), 0);
    check_open_fails(empty, DCRW_SPLIT_TRAIN, DCRW_ENOTFOUND, "holds no data set");
    write_idx_in(empty, "train-images-idx3-ubyte", 2, 2, 2, 0, 0);
    check_open_fails(empty, DCRW_SPLIT_TEST, DCRW_ENOTFOUND, "no test images");
    check_open_fails(tpath("missing"), DCRW_SPLIT_TRAIN, DCRW_EIO, "cannot open");
    const char *fifo = tpath("fifo");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    check_open_fails(fifo, DCRW_SPLIT_TRAIN, DCRW_EIO, "FIFO");
    const char *junk = tpath("junk");
    write_bytes(junk, "hello", 5);
    check_open_fails(junk, DCRW_SPLIT_TRAIN, DCRW_EFORMAT, "not an IDX file");
    dcrw_dataset *d = NULL;
    ck_assert_int_eq(dcrw_dataset_open(NULL, empty, 0), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_dataset_open(&d, NULL, 0), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_dataset_open(&d, empty, 2), DCRW_EINVAL);
    ck_assert_ptr_null(d);
}
END_TEST

/* ------------------------------------------------------------------------
 * dcrw_dataset_from_memory */

START_TEST(test_from_memory) {
    enum { N = 3, C = 2, H = 2, W = 3, T = N * C * H * W };
    uint8_t u[T];
    float f[T];
    double g[T];
    for (int i = 0; i < T; i++) {
        u[i] = (uint8_t)(i * 11);
        f[i] = (float)i / (T - 1);
        g[i] = (double)(T - 1 - i) / (T - 1);
    }
    const int32_t labels[N] = {4, 0, 1000};
    const void *src[3] = {u, f, g};
    for (int dt = 0; dt < 3; dt++) {
        dcrw_dataset *d = NULL;
        ck_assert_int_eq(dcrw_dataset_from_memory(&d, src[dt], dt, N, C, H, W, dt ? NULL : labels),
                         DCRW_OK);
        ck_assert_uint_eq(dcrw_dataset_count(d), N);
        int c, h, w;
        dcrw_dataset_shape(d, &c, &h, &w);
        ck_assert(c == C && h == H && w == W);
        const float *x = dcrw_dataset_images(d);
        for (int i = 0; i < T; i++) {
            float want = dt == 0 ? u[i] / 255.0f : dt == 1 ? f[i] : (float)g[i];
            ck_assert(x[i] == want);
        }
        for (int i = 0; i < N; i++)
            ck_assert_int_eq(dcrw_dataset_label(d, (size_t)i), dt ? -1 : labels[i]);
        dcrw_dataset_destroy(d);
    }
}
END_TEST

START_TEST(test_from_memory_refusals) {
    float f[8] = {0, 0.5f, 1, 0, 0, 0, 0, 0};
    double g[8] = {0};
    int32_t lab[2] = {0, -1};
    dcrw_dataset *d = NULL;
    static const struct {
        int dtype;
        size_t n;
        int c, h, w;
        int code;
        const char *says;
    } cases[] = {
        {7, 2, 1, 2, 2, DCRW_EINVAL, "dtype"},
        {DCRW_DTYPE_F32, 0, 1, 2, 2, DCRW_EINVAL, "count"},
        {DCRW_DTYPE_F32, 2, 0, 2, 2, DCRW_EINVAL, "channels"},
        {DCRW_DTYPE_F32, 2, 65, 2, 2, DCRW_EINVAL, "channels"},
        {DCRW_DTYPE_F32, 2, 1, 4097, 2, DCRW_EINVAL, "height"},
        {DCRW_DTYPE_F32, 2, 1, 2, -1, DCRW_EINVAL, "width"},
        {DCRW_DTYPE_U8, (size_t)1 << 30, 1, 4, 4, DCRW_EINVAL, "2^31"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = dcrw_dataset_from_memory(&d, f, cases[i].dtype, cases[i].n, cases[i].c, cases[i].h,
                                          cases[i].w, NULL);
        ck_assert_msg(rc == cases[i].code, "case %zu: %d %s", i, rc, dcrw_last_error());
        ck_assert_ptr_null(d);
        ck_assert_ptr_nonnull(strstr(dcrw_last_error(), cases[i].says));
    }
    ck_assert_int_eq(dcrw_dataset_from_memory(NULL, f, DCRW_DTYPE_F32, 2, 1, 2, 2, NULL),
                     DCRW_EINVAL);
    ck_assert_int_eq(dcrw_dataset_from_memory(&d, NULL, DCRW_DTYPE_F32, 2, 1, 2, 2, NULL),
                     DCRW_EINVAL);
    ck_assert_int_eq(dcrw_dataset_from_memory(&d, f, DCRW_DTYPE_F32, 2, 1, 2, 2, lab), DCRW_EINVAL);
    ck_assert_ptr_nonnull(strstr(dcrw_last_error(), "labels[1] = -1"));
    f[6] = 1.25f;
    ck_assert_int_eq(dcrw_dataset_from_memory(&d, f, DCRW_DTYPE_F32, 2, 1, 2, 2, NULL),
                     DCRW_EINVAL);
    f[6] = NAN;
    ck_assert_int_eq(dcrw_dataset_from_memory(&d, f, DCRW_DTYPE_F32, 2, 1, 2, 2, NULL),
                     DCRW_ENUMERIC);
    g[7] = -0.5;
    ck_assert_int_eq(dcrw_dataset_from_memory(&d, g, DCRW_DTYPE_F64, 2, 1, 2, 2, NULL),
                     DCRW_EINVAL);
    ck_assert_ptr_nonnull(strstr(dcrw_last_error(), "images[7] = -0.5"));
    g[7] = INFINITY;
    ck_assert_int_eq(dcrw_dataset_from_memory(&d, g, DCRW_DTYPE_F64, 2, 1, 2, 2, NULL),
                     DCRW_ENUMERIC);
    ck_assert_ptr_null(d);
}
END_TEST

int main(void) {
    Suite *s = suite_create("formats");
    TCase *tn = tcase_create("npy");
    tcase_add_checked_fixture(tn, setup, teardown);
    tcase_set_timeout(tn, 30);
    tcase_add_test(tn, test_npy_u8_nhw);
    tcase_add_test(tn, test_npy_f32_nchw);
    tcase_add_test(tn, test_npy_f64_nhwc);
    tcase_add_test(tn, test_npy_layout_rule);
    tcase_add_test(tn, test_npy_bad_headers);
    tcase_add_test(tn, test_npy_bad_files);
    tcase_add_test(tn, test_npy_lying_size_allocates_nothing);
    tcase_add_test(tn, test_npy_values);
    tcase_add_test(tn, test_npy_alloc_failures);
    suite_add_tcase(s, tn);

    TCase *tp = tcase_create("png");
    tcase_add_checked_fixture(tp, setup, teardown);
    tcase_set_timeout(tp, 30);
#if DCRW_HAVE_LIBPNG
    tcase_add_test(tp, test_png_types);
    tcase_add_test(tp, test_png_palette_and_low_depth);
    tcase_add_test(tp, test_png_classes);
    tcase_add_test(tp, test_png_mismatch);
    tcase_add_test(tp, test_png_bad_files);
    tcase_add_test(tp, test_png_lying_header);
    tcase_add_test(tp, test_png_bad_folders);
    tcase_add_test(tp, test_png_alloc_failures);
#else
    tcase_add_test(tp, test_png_unsupported);
#endif
    suite_add_tcase(s, tp);

    TCase *to = tcase_create("open");
    tcase_add_checked_fixture(to, setup, teardown);
    tcase_set_timeout(to, 30);
    tcase_add_test(to, test_open_mnist_folder);
#if DCRW_HAVE_ZLIB
    tcase_add_test(to, test_open_gz_and_prefixes);
#endif
    tcase_add_test(to, test_open_npy_and_split_folders);
    tcase_add_test(to, test_open_refusals);
    tcase_add_test(to, test_from_memory);
    tcase_add_test(to, test_from_memory_refusals);
    suite_add_tcase(s, to);
    return tu_run(s);
}
