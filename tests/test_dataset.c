/* The IDX reader and batch gathering: every file is written by the test
 * itself, byte by byte from the IDX definition, so the expected values are
 * known without the code under test. */
#define _GNU_SOURCE
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rng.h"
#include "testutil.h"

#if DCRW_HAVE_ZLIB
#include <zlib.h>
#endif

static char *tmp;

static void setup(void) {
    tmp = tu_tmpdir();
    ck_assert_ptr_nonnull(tmp);
}

static void teardown(void) {
    tu_rmdir(tmp);
    tmp = NULL;
}

/* path of `name` in the test's directory; two rotating buffers so an images
 * and a labels path can be held at once */
static const char *tpath(const char *name) {
    static char buf[2][4096];
    static int which;
    which ^= 1;
    snprintf(buf[which], sizeof buf[which], "%s/%s", tmp, name);
    return buf[which];
}

static void write_bytes(const char *name, const unsigned char *b, size_t n) {
    FILE *f = fopen(tpath(name), "wb");
    ck_assert_ptr_nonnull(f);
    if (n) ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* An IDX image: magic 00 00 type ndim, big-endian u32 dims, then data. */
static size_t make_idx(unsigned char *out, unsigned type, unsigned ndim, const uint32_t *dims,
                       const unsigned char *data, size_t ndata) {
    size_t n = 0;
    out[n++] = 0;
    out[n++] = 0;
    out[n++] = (unsigned char)type;
    out[n++] = (unsigned char)ndim;
    for (unsigned i = 0; i < ndim; i++) {
        out[n++] = (unsigned char)(dims[i] >> 24);
        out[n++] = (unsigned char)(dims[i] >> 16);
        out[n++] = (unsigned char)(dims[i] >> 8);
        out[n++] = (unsigned char)dims[i];
    }
    if (ndata) memcpy(out + n, data, ndata);
    return n + ndata;
}

static void write_idx(const char *name, unsigned type, unsigned ndim, const uint32_t *dims,
                      const unsigned char *data, size_t ndata) {
    unsigned char *buf = malloc(4 + 4 * ndim + ndata);
    ck_assert_ptr_nonnull(buf);
    size_t n = make_idx(buf, type, ndim, dims, data, ndata);
    write_bytes(name, buf, n);
    free(buf);
}

/* 3 images of 2x4 covering 0, 255 and the values around 0.5 */
enum { G_N = 3, G_H = 2, G_W = 4, G_P = G_H * G_W };
static const unsigned char g_pix[G_N * G_P] = {
    0,   255, 127, 128, 1,  2,  3,   254, /* image 0 */
    10,  20,  30,  40,  50, 60, 70,  80,  /* image 1 */
    200, 100, 0,   255, 17, 34, 128, 127, /* image 2 */
};
static const unsigned char g_lab[G_N] = {5, 0, 200};

static void write_good(const char *img, const char *lab) {
    const uint32_t d3[3] = {G_N, G_H, G_W}, d1[1] = {G_N};
    write_idx(img, 0x08, 3, d3, g_pix, sizeof g_pix);
    if (lab) write_idx(lab, 0x08, 1, d1, g_lab, sizeof g_lab);
}

static void check_good(const dcrw_dataset *d, int with_labels) {
    ck_assert_uint_eq(dcrw_dataset_count(d), G_N);
    int c = -1, h = -1, w = -1;
    ck_assert_int_eq(dcrw_dataset_shape(d, &c, &h, &w), DCRW_OK);
    ck_assert_int_eq(c, 1);
    ck_assert_int_eq(h, G_H);
    ck_assert_int_eq(w, G_W);
    const float *x = dcrw_dataset_images(d);
    ck_assert_ptr_nonnull(x);
    for (int i = 0; i < G_N * G_P; i++) {
        ck_assert(x[i] == (float)g_pix[i] / 255.0f);
        ck_assert(fabs((double)x[i] - g_pix[i] / 255.0) < 1e-7);
    }
    /* the ends of the range must be exact: binarization compares against them */
    ck_assert(x[0] == 0.0f);
    ck_assert(x[1] == 1.0f);
    for (int i = 0; i < G_N; i++)
        ck_assert_int_eq(dcrw_dataset_label(d, (size_t)i), with_labels ? g_lab[i] : -1);
    ck_assert_int_eq(dcrw_dataset_label(d, G_N), -1);
    ck_assert_int_eq(dcrw_dataset_label(d, (size_t)-1), -1);
}

static int load(const char *img, const char *lab) {
    dcrw_dataset *d = NULL;
    int rc = dcrw_dataset_load_idx(&d, tpath(img), lab ? tpath(lab) : NULL);
    if (rc == DCRW_OK) {
        ck_assert_ptr_nonnull(d);
        dcrw_dataset_destroy(d);
    } else {
        ck_assert_str_ne(dcrw_last_error(), "");
    }
    return rc;
}

START_TEST(test_good_3d) {
    write_good("img", "lab");
    dcrw_dataset *d = NULL;
    char img[4096];
    snprintf(img, sizeof img, "%s", tpath("img"));
    ck_assert_int_eq(dcrw_dataset_load_idx(&d, img, tpath("lab")), DCRW_OK);
    check_good(d, 1);
    dcrw_dataset_destroy(d);

    d = NULL;
    ck_assert_int_eq(dcrw_dataset_load_idx(&d, img, NULL), DCRW_OK);
    check_good(d, 0);
    dcrw_dataset_destroy(d);
}
END_TEST

START_TEST(test_good_4d) {
    enum { N = 2, C = 3, H = 2, W = 5, P = C * H * W };
    unsigned char pix[N * P];
    for (int i = 0; i < N * P; i++) pix[i] = (unsigned char)(i * 37 + 11);
    const uint32_t d4[4] = {N, C, H, W};
    write_idx("img4", 0x08, 4, d4, pix, sizeof pix);
    dcrw_dataset *d = NULL;
    ck_assert_int_eq(dcrw_dataset_load_idx(&d, tpath("img4"), NULL), DCRW_OK);
    ck_assert_uint_eq(dcrw_dataset_count(d), N);
    int c, h, w;
    ck_assert_int_eq(dcrw_dataset_shape(d, &c, &h, &w), DCRW_OK);
    ck_assert_int_eq(c, C);
    ck_assert_int_eq(h, H);
    ck_assert_int_eq(w, W);
    /* IDX order (n, c, y, x) is the library's channel-major layout */
    const float *x = dcrw_dataset_images(d);
    for (int n = 0; n < N; n++)
        for (int ch = 0; ch < C; ch++)
            for (int y = 0; y < H; y++)
                for (int xx = 0; xx < W; xx++) {
                    int k = ((n * C + ch) * H + y) * W + xx;
                    ck_assert(x[k] == (float)pix[k] / 255.0f);
                }
    /* shape outputs may be NULL */
    ck_assert_int_eq(dcrw_dataset_shape(d, NULL, NULL, NULL), DCRW_OK);
    ck_assert_int_eq(dcrw_dataset_label(d, 0), -1);
    dcrw_dataset_destroy(d);
}
END_TEST

#if DCRW_HAVE_ZLIB
static void write_gz(const char *name, const unsigned char *b, size_t n) {
    gzFile g = gzopen(tpath(name), "wb9");
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(gzwrite(g, b, (unsigned)n), (int)n);
    ck_assert_int_eq(gzclose(g), Z_OK);
}

static unsigned char *read_all(const char *name, size_t *n) {
    FILE *f = fopen(tpath(name), "rb");
    ck_assert_ptr_nonnull(f);
    unsigned char *b = malloc(1 << 20);
    *n = fread(b, 1, 1 << 20, f);
    fclose(f);
    return b;
}
#endif

START_TEST(test_gzip) {
    unsigned char buf[256];
    const uint32_t d3[3] = {G_N, G_H, G_W}, d1[1] = {G_N};
    size_t ni = make_idx(buf, 0x08, 3, d3, g_pix, sizeof g_pix);
#if DCRW_HAVE_ZLIB
    write_gz("img.gz", buf, ni);
    unsigned char lab[64];
    size_t nl = make_idx(lab, 0x08, 1, d1, g_lab, sizeof g_lab);
    /* the name must not matter: detection is by content */
    write_gz("lab.idx", lab, nl);
    dcrw_dataset *d = NULL;
    char img[4096];
    snprintf(img, sizeof img, "%s", tpath("img.gz"));
    ck_assert_int_eq(dcrw_dataset_load_idx(&d, img, tpath("lab.idx")), DCRW_OK);
    check_good(d, 1);
    dcrw_dataset_destroy(d);
    /* compressed images, plain labels */
    write_good("plain-img", "plain-lab");
    ck_assert_int_eq(load("img.gz", "plain-lab"), DCRW_OK);
#else
    (void)d1;
    buf[0] = 0x1f;
    buf[1] = 0x8b;
    write_bytes("img.gz", buf, ni);
    ck_assert_int_eq(load("img.gz", NULL), DCRW_EUNSUPPORTED);
#endif
}
END_TEST

#if DCRW_HAVE_ZLIB
START_TEST(test_gzip_bad) {
    unsigned char buf[256];
    const uint32_t d3[3] = {G_N, G_H, G_W};
    size_t ni = make_idx(buf, 0x08, 3, d3, g_pix, sizeof g_pix);

    /* decompressed data shorter than declared */
    write_gz("short.gz", buf, ni - 1);
    ck_assert_int_eq(load("short.gz", NULL), DCRW_ETRUNCATED);

    /* a bomb: a valid header followed by 64 MiB of zeros, which compresses
     * to about 64 KiB; it must be refused as trailing data */
    {
        gzFile g = gzopen(tpath("bomb.gz"), "wb9");
        ck_assert_ptr_nonnull(g);
        ck_assert_int_eq(gzwrite(g, buf, (unsigned)ni), (int)ni);
        unsigned char *zeros = calloc(1, 1 << 20);
        for (int i = 0; i < 64; i++) ck_assert_int_eq(gzwrite(g, zeros, 1 << 20), 1 << 20);
        free(zeros);
        ck_assert_int_eq(gzclose(g), Z_OK);
    }
    ck_assert_int_eq(load("bomb.gz", NULL), DCRW_EFORMAT);

    /* a tiny stream declaring 2^31 values cannot hold them */
    const uint32_t big[3] = {128, 4096, 4096};
    size_t nb = make_idx(buf, 0x08, 3, big, g_pix, sizeof g_pix);
    write_gz("big.gz", buf, nb);
    ck_assert_int_eq(load("big.gz", NULL), DCRW_ETRUNCATED);

    /* the compressed file cut at every length fails cleanly */
    ni = make_idx(buf, 0x08, 3, d3, g_pix, sizeof g_pix);
    write_gz("full.gz", buf, ni);
    size_t n;
    unsigned char *z = read_all("full.gz", &n);
    ck_assert_uint_gt(n, 20);
    for (size_t len = 0; len < n; len++) {
        write_bytes("cut.gz", z, len);
        int rc = load("cut.gz", NULL);
        /* 0 or 1 byte is not recognisably gzip; later cuts lose data (or
         * only the trailer, which zlib reports as a corrupt stream) */
        ck_assert_msg(rc == DCRW_ETRUNCATED || rc == DCRW_EFORMAT, "len %zu: rc %d (%s)", len, rc,
                      dcrw_last_error());
    }
    /* a corrupted deflate body */
    z[12] ^= 0xff;
    z[13] ^= 0xff;
    write_bytes("corrupt.gz", z, n);
    ck_assert_int_ne(load("corrupt.gz", NULL), DCRW_OK);
    free(z);
}
END_TEST
#endif

#if DCRW_HAVE_ZLIB
/* A gzip file must end where its compressed data does, as a plain file
 * must end where its data does: bytes after the last gzip member are
 * refused, whatever they are. Further gzip members are data (gzip -c a b). */
START_TEST(test_gzip_trailing) {
    unsigned char buf[256];
    const uint32_t d3[3] = {G_N, G_H, G_W};
    size_t ni = make_idx(buf, 0x08, 3, d3, g_pix, sizeof g_pix);
    write_gz("ok.gz", buf, ni);
    size_t n;
    unsigned char *z = read_all("ok.gz", &n);
    ck_assert_int_eq(load("ok.gz", NULL), DCRW_OK);
#define TAIL(lit)                                                                                  \
    { lit, sizeof lit - 1 }
    static const struct {
        const char *bytes;
        size_t n;
    } tails[] = {TAIL("x"),    TAIL("garbage"),  TAIL("\0\0\0\0\0\0\0\0"),
                 TAIL("\x1f"), TAIL("\x1f\x8b"), TAIL("\x1f\x8b\x08\x00 not a member")};
#undef TAIL
    for (size_t k = 0; k < sizeof tails / sizeof tails[0]; k++) {
        unsigned char *b = malloc(n + tails[k].n);
        memcpy(b, z, n);
        memcpy(b + n, tails[k].bytes, tails[k].n);
        write_bytes("tail.gz", b, n + tails[k].n);
        free(b);
        int rc = load("tail.gz", NULL);
        ck_assert_msg(rc == DCRW_EFORMAT || rc == DCRW_ETRUNCATED, "tail %zu: rc %d (%s)", k, rc,
                      dcrw_last_error());
    }
    /* plain garbage is named as such */
    unsigned char *b = malloc(n + 7);
    memcpy(b, z, n);
    memcpy(b + n, "garbage", 7);
    write_bytes("tail.gz", b, n + 7);
    ck_assert_int_eq(load("tail.gz", NULL), DCRW_EFORMAT);
    ck_assert_ptr_nonnull(strstr(dcrw_last_error(), "trailing"));
    free(b);
    /* the same data split over two gzip members reads as one file */
    write_gz("a.gz", buf, 7);
    write_gz("b.gz", buf + 7, ni - 7);
    size_t na, nb;
    unsigned char *za = read_all("a.gz", &na), *zb = read_all("b.gz", &nb);
    b = malloc(na + nb);
    memcpy(b, za, na);
    memcpy(b + na, zb, nb);
    write_bytes("two.gz", b, na + nb);
    dcrw_dataset *d = NULL;
    ck_assert_int_eq(dcrw_dataset_load_idx(&d, tpath("two.gz"), NULL), DCRW_OK);
    check_good(d, 0);
    dcrw_dataset_destroy(d);
    free(b);
    free(za);
    free(zb);
    free(z);
}
END_TEST
#endif

/* Only regular files are read: a FIFO (which would block a plain open
 * until a writer came), a folder or a device is refused at once, named. */
START_TEST(test_special_files) {
    /* a hang fails the test (by the alarm's default action, not the
     * handler inherited from Check's runner) */
    signal(SIGALRM, SIG_DFL);
    alarm(20);
    write_good("img", "lab");
    ck_assert_int_eq(mkfifo(tpath("fifo"), 0600), 0);
    const struct {
        const char *path, *kind;
    } cases[] = {{"fifo", "FIFO"}, {".", "folder"}, {"/dev/null", "device"}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char p[4096];
        snprintf(p, sizeof p, "%s", cases[k].path[0] == '/' ? cases[k].path : tpath(cases[k].path));
        dcrw_dataset *d = (dcrw_dataset *)&d;
        ck_assert_int_eq(dcrw_dataset_load_idx(&d, p, NULL), DCRW_EIO);
        ck_assert_ptr_null(d);
        ck_assert_msg(strstr(dcrw_last_error(), cases[k].kind), "%s: \"%s\"", p, dcrw_last_error());
        ck_assert_int_eq(dcrw_dataset_load_idx(&d, tpath("img"), p), DCRW_EIO);
        ck_assert_ptr_null(d);
        ck_assert_ptr_nonnull(strstr(dcrw_last_error(), "not a regular file"));
    }
    alarm(0);
}
END_TEST

START_TEST(test_bad_headers) {
    unsigned char buf[256];
    const uint32_t d3[3] = {G_N, G_H, G_W};
    size_t n = make_idx(buf, 0x08, 3, d3, g_pix, sizeof g_pix);

    write_bytes("trunc-data", buf, n - 1);
    ck_assert_int_eq(load("trunc-data", NULL), DCRW_ETRUNCATED);
    write_bytes("trunc-header", buf, 9);
    ck_assert_int_eq(load("trunc-header", NULL), DCRW_ETRUNCATED);
    write_bytes("empty", buf, 0);
    ck_assert_int_eq(load("empty", NULL), DCRW_ETRUNCATED);

    unsigned char bad[256];
    memcpy(bad, buf, n);
    bad[0] = 0x01;
    write_bytes("magic0", bad, n);
    ck_assert_int_eq(load("magic0", NULL), DCRW_EFORMAT);
    memcpy(bad, buf, n);
    bad[1] = 0x08;
    write_bytes("magic1", bad, n);
    ck_assert_int_eq(load("magic1", NULL), DCRW_EFORMAT);

    /* the other IDX element types are valid files we cannot use */
    const unsigned types[] = {0x09, 0x0B, 0x0C, 0x0D, 0x0E};
    for (unsigned i = 0; i < sizeof types / sizeof types[0]; i++) {
        write_idx("type", types[i], 3, d3, g_pix, sizeof g_pix);
        ck_assert_int_eq(load("type", NULL), DCRW_EUNSUPPORTED);
    }
    const unsigned bad_types[] = {0x00, 0x07, 0x0A, 0x0F, 0xFF};
    for (unsigned i = 0; i < sizeof bad_types / sizeof bad_types[0]; i++) {
        write_idx("type", bad_types[i], 3, d3, g_pix, sizeof g_pix);
        ck_assert_int_eq(load("type", NULL), DCRW_EFORMAT);
    }

    /* images need 3 or 4 dimensions */
    const uint32_t d2[2] = {G_N, G_P}, d5[5] = {1, 1, G_N, G_H, G_W};
    write_idx("ndim2", 0x08, 2, d2, g_pix, sizeof g_pix);
    ck_assert_int_eq(load("ndim2", NULL), DCRW_EFORMAT);
    write_idx("ndim5", 0x08, 5, d5, g_pix, sizeof g_pix);
    ck_assert_int_eq(load("ndim5", NULL), DCRW_EFORMAT);
    write_idx("ndim0", 0x08, 0, NULL, NULL, 0);
    ck_assert_int_eq(load("ndim0", NULL), DCRW_EFORMAT);

    for (int k = 0; k < 3; k++) {
        uint32_t dz[3] = {G_N, G_H, G_W};
        dz[k] = 0;
        write_idx("zero", 0x08, 3, dz, NULL, 0);
        ck_assert_int_eq(load("zero", NULL), DCRW_EFORMAT);
    }

    /* sizes refused from the header alone: an attempt to allocate would
     * show up as DCRW_ENOMEM (or an ASan abort) instead */
    const uint32_t huge[3] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
    write_idx("huge", 0x08, 3, huge, NULL, 0);
    ck_assert_int_eq(load("huge", NULL), DCRW_EFORMAT);
    const uint32_t huge2[3] = {1, 0xFFFFFFFFu, 0xFFFFFFFFu};
    write_idx("huge", 0x08, 3, huge2, NULL, 0);
    ck_assert_int_eq(load("huge", NULL), DCRW_EFORMAT);
    /* 129 * 4096 * 4096 = 2^31 + 2^24 values: just above the cap */
    const uint32_t over[3] = {129, 4096, 4096};
    write_idx("over", 0x08, 3, over, NULL, 0);
    ck_assert_int_eq(load("over", NULL), DCRW_EFORMAT);
    ck_assert_ptr_nonnull(strstr(dcrw_last_error(), "absurd"));
    /* exactly 2^31 is allowed by the cap, but this file cannot hold it */
    const uint32_t cap[3] = {128, 4096, 4096};
    write_idx("cap", 0x08, 3, cap, g_pix, sizeof g_pix);
    ck_assert_int_eq(load("cap", NULL), DCRW_ETRUNCATED);

    /* the model's limits: H, W <= 4096, C <= 64 */
    const uint32_t tall[3] = {1, 4097, 1}, wide[3] = {1, 1, 4097};
    const uint32_t deep[4] = {1, 65, 1, 1}, ok64[4] = {1, 64, 1, 1};
    unsigned char zeros[4097] = {0};
    write_idx("tall", 0x08, 3, tall, zeros, 4097);
    ck_assert_int_eq(load("tall", NULL), DCRW_EFORMAT);
    write_idx("wide", 0x08, 3, wide, zeros, 4097);
    ck_assert_int_eq(load("wide", NULL), DCRW_EFORMAT);
    write_idx("deep", 0x08, 4, deep, zeros, 65);
    ck_assert_int_eq(load("deep", NULL), DCRW_EFORMAT);
    write_idx("ok64", 0x08, 4, ok64, zeros, 64);
    ck_assert_int_eq(load("ok64", NULL), DCRW_OK);
    const uint32_t side[3] = {1, 4096, 1};
    write_idx("side", 0x08, 3, side, zeros, 4096);
    ck_assert_int_eq(load("side", NULL), DCRW_OK);

    /* one byte too many */
    memcpy(bad, buf, n);
    bad[n] = 0;
    write_bytes("trailing", bad, n + 1);
    ck_assert_int_eq(load("trailing", NULL), DCRW_EFORMAT);
}
END_TEST

START_TEST(test_bad_labels) {
    write_good("img", NULL);
    const uint32_t d1[1] = {G_N}, d1m[1] = {G_N - 1}, d1p[1] = {G_N + 1};
    const unsigned char lab[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    write_idx("lab-few", 0x08, 1, d1m, lab, G_N - 1);
    ck_assert_int_eq(load("img", "lab-few"), DCRW_ESHAPE);
    write_idx("lab-many", 0x08, 1, d1p, lab, G_N + 1);
    ck_assert_int_eq(load("img", "lab-many"), DCRW_ESHAPE);
    const uint32_t d2[2] = {G_N, 1};
    write_idx("lab-2d", 0x08, 2, d2, lab, G_N);
    ck_assert_int_eq(load("img", "lab-2d"), DCRW_EFORMAT);
    write_idx("lab-type", 0x0C, 1, d1, lab, 4 * G_N);
    ck_assert_int_eq(load("img", "lab-type"), DCRW_EUNSUPPORTED);
    write_idx("lab-trail", 0x08, 1, d1, lab, G_N + 1);
    ck_assert_int_eq(load("img", "lab-trail"), DCRW_EFORMAT);
    const uint32_t dz[1] = {0};
    write_idx("lab-zero", 0x08, 1, dz, NULL, 0);
    ck_assert_int_eq(load("img", "lab-zero"), DCRW_EFORMAT);
    ck_assert_int_eq(load("img", "no-such-labels"), DCRW_EIO);
    /* a directory is not a file */
    dcrw_dataset *d = NULL;
    ck_assert_int_eq(dcrw_dataset_load_idx(&d, tmp, NULL), DCRW_EIO);
}
END_TEST

START_TEST(test_truncated_everywhere) {
    unsigned char img[256], lab[64];
    const uint32_t d3[3] = {G_N, G_H, G_W}, d1[1] = {G_N};
    size_t ni = make_idx(img, 0x08, 3, d3, g_pix, sizeof g_pix);
    size_t nl = make_idx(lab, 0x08, 1, d1, g_lab, sizeof g_lab);
    write_bytes("img", img, ni);
    write_bytes("lab", lab, nl);
    ck_assert_int_eq(load("img", "lab"), DCRW_OK);
    for (size_t len = 0; len < ni; len++) {
        write_bytes("cut", img, len);
        ck_assert_msg(load("cut", "lab") == DCRW_ETRUNCATED, "image file cut at %zu", len);
    }
    for (size_t len = 0; len < nl; len++) {
        write_bytes("cut", lab, len);
        ck_assert_msg(load("img", "cut") == DCRW_ETRUNCATED, "label file cut at %zu", len);
    }
}
END_TEST

START_TEST(test_null_args) {
    write_good("img", "lab");
    dcrw_dataset *d = NULL;
    ck_assert_int_eq(dcrw_dataset_load_idx(NULL, tpath("img"), NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_dataset_load_idx(&d, NULL, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_dataset_load_idx(&d, NULL, tpath("lab")), DCRW_EINVAL);
    ck_assert_int_eq(load("missing", NULL), DCRW_EIO);
    ck_assert_uint_eq(dcrw_dataset_count(NULL), 0);
    int c = 7;
    ck_assert_int_eq(dcrw_dataset_shape(NULL, &c, NULL, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_dataset_label(NULL, 0), -1);
    ck_assert_ptr_null(dcrw_dataset_images(NULL));
    dcrw_dataset_destroy(NULL);
}
END_TEST

static dcrw_dataset *load_good(void) {
    write_good("img", "lab");
    dcrw_dataset *d = NULL;
    char img[4096];
    snprintf(img, sizeof img, "%s", tpath("img"));
    ck_assert_int_eq(dcrw_dataset_load_idx(&d, img, tpath("lab")), DCRW_OK);
    return d;
}

START_TEST(test_batch_exact) {
    dcrw_dataset *d = load_good();
    const size_t idx[4] = {2, 0, 2, 1};
    float x[4 * G_P];
    ck_assert_int_eq(dcrw_dataset_batch(d, idx, 4, DCRW_BINARIZE_NONE, 0, x), DCRW_OK);
    for (int b = 0; b < 4; b++)
        for (int p = 0; p < G_P; p++)
            ck_assert(x[b * G_P + p] == (float)g_pix[idx[b] * G_P + p] / 255.0f);

    ck_assert_int_eq(dcrw_dataset_batch(d, idx, 4, DCRW_BINARIZE_THRESHOLD, 0, x), DCRW_OK);
    for (int b = 0; b < 4; b++)
        for (int p = 0; p < G_P; p++) {
            /* 127/255 < 0.5 < 128/255 */
            float want = g_pix[idx[b] * G_P + p] >= 128 ? 1.0f : 0.0f;
            ck_assert(x[b * G_P + p] == want);
        }
    /* image 0 holds 127 and 128 side by side */
    ck_assert_int_eq(dcrw_dataset_batch(d, idx + 1, 1, DCRW_BINARIZE_THRESHOLD, 0, x), DCRW_OK);
    ck_assert(x[2] == 0.0f && x[3] == 1.0f);

    /* a batch of one must not write past its row */
    float guard[2 * G_P];
    for (int i = 0; i < 2 * G_P; i++) guard[i] = -7.0f;
    ck_assert_int_eq(dcrw_dataset_batch(d, idx, 1, DCRW_BINARIZE_NONE, 0, guard), DCRW_OK);
    for (int i = G_P; i < 2 * G_P; i++) ck_assert(guard[i] == -7.0f);
    dcrw_dataset_destroy(d);
}
END_TEST

START_TEST(test_batch_args) {
    dcrw_dataset *d = load_good();
    float x[4 * G_P];
    const size_t ok[2] = {0, 1}, bad[2] = {0, G_N}, huge[1] = {(size_t)-1};
    ck_assert_int_eq(dcrw_dataset_batch(d, bad, 2, DCRW_BINARIZE_NONE, 0, x), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_dataset_batch(d, huge, 1, DCRW_BINARIZE_DYNAMIC, 0, x), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_dataset_batch(d, ok, 0, DCRW_BINARIZE_NONE, 0, x), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_dataset_batch(d, ok, -1, DCRW_BINARIZE_NONE, 0, x), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_dataset_batch(d, ok, 2, 3, 0, x), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_dataset_batch(d, ok, 2, -1, 0, x), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_dataset_batch(NULL, ok, 2, DCRW_BINARIZE_NONE, 0, x), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_dataset_batch(d, NULL, 2, DCRW_BINARIZE_NONE, 0, x), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_dataset_batch(d, ok, 2, DCRW_BINARIZE_NONE, 0, NULL), DCRW_EINVAL);
    ck_assert_int_eq(dcrw_dataset_batch(d, ok, 2, DCRW_BINARIZE_NONE, 0, x), DCRW_OK);
    dcrw_dataset_destroy(d);
}
END_TEST

/* Images for the dynamic tests: image k has all S pixels equal to vals[k]. */
enum { S = 256 };
static const unsigned char dyn_vals[] = {0, 1, 64, 128, 200, 254, 255};
enum { NV = sizeof dyn_vals };

static dcrw_dataset *load_flat(void) {
    static unsigned char pix[NV * S];
    for (int k = 0; k < NV; k++) memset(pix + k * S, dyn_vals[k], S);
    const uint32_t d3[3] = {NV, 16, 16};
    write_idx("flat", 0x08, 3, d3, pix, sizeof pix);
    dcrw_dataset *d = NULL;
    ck_assert_int_eq(dcrw_dataset_load_idx(&d, tpath("flat"), NULL), DCRW_OK);
    return d;
}

START_TEST(test_batch_dynamic) {
    dcrw_dataset *d = load_flat();
    size_t all[NV];
    for (int k = 0; k < NV; k++) all[k] = (size_t)k;
    static float a[NV * S], b[NV * S];
    ck_assert_int_eq(dcrw_dataset_batch(d, all, NV, DCRW_BINARIZE_DYNAMIC, 42, a), DCRW_OK);
    ck_assert_int_eq(dcrw_dataset_batch(d, all, NV, DCRW_BINARIZE_DYNAMIC, 42, b), DCRW_OK);
    ck_assert_int_eq(memcmp(a, b, sizeof a), 0);
    for (int i = 0; i < NV * S; i++) ck_assert(a[i] == 0.0f || a[i] == 1.0f);
    /* grey 0 never fires, grey 1 always does */
    for (int p = 0; p < S; p++) {
        ck_assert(a[0 * S + p] == 0.0f);
        ck_assert(a[(NV - 1) * S + p] == 1.0f);
    }

    /* another seed: 256 pixels at 128/255 agree by chance with p ~ 2^-256 */
    ck_assert_int_eq(dcrw_dataset_batch(d, all, NV, DCRW_BINARIZE_DYNAMIC, 43, b), DCRW_OK);
    ck_assert_int_ne(memcmp(a + 3 * S, b + 3 * S, S * sizeof(float)), 0);

    /* an image's bits do not depend on its row or its companions */
    const size_t mixed[3] = {4, 3, 3};
    float c[3 * S];
    ck_assert_int_eq(dcrw_dataset_batch(d, mixed, 3, DCRW_BINARIZE_DYNAMIC, 42, c), DCRW_OK);
    ck_assert_int_eq(memcmp(c, a + 4 * S, S * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(c + S, a + 3 * S, S * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(c + 2 * S, a + 3 * S, S * sizeof(float)), 0);

    /* the documented generator: pixel p of image idx is
     * rng_uniform(rng_key(seed, idx, 0xB1), p) < value */
    for (int k = 0; k < NV; k++) {
        uint64_t key = rng_key(42, (uint64_t)k, 0xB1ull);
        float v = (float)dyn_vals[k] / 255.0f;
        for (int p = 0; p < S; p++)
            ck_assert(a[k * S + p] == (rng_uniform(key, (uint64_t)p) < v ? 1.0f : 0.0f));
    }
    dcrw_dataset_destroy(d);
}
END_TEST

/* The bits are Bernoulli(v): over n = R*S independent draws the frequency
 * has standard deviation sqrt(v(1-v)/n) <= 0.5/sqrt(51200) ~ 0.0022. A
 * 6-sigma band fails by chance with probability ~2e-9 per value; the draws
 * are deterministic, so a pass is also repeatable. */
START_TEST(test_batch_dynamic_mean) {
    dcrw_dataset *d = load_flat();
    enum { R = 200 };
    size_t all[NV];
    for (int k = 0; k < NV; k++) all[k] = (size_t)k;
    static float x[NV * S];
    double ones[NV] = {0};
    for (int r = 0; r < R; r++) {
        ck_assert_int_eq(
            dcrw_dataset_batch(d, all, NV, DCRW_BINARIZE_DYNAMIC, 1000 + (uint64_t)r, x), DCRW_OK);
        for (int k = 0; k < NV; k++)
            for (int p = 0; p < S; p++) ones[k] += x[k * S + p];
    }
    const double n = (double)R * S;
    for (int k = 0; k < NV; k++) {
        double v = dyn_vals[k] / 255.0, freq = ones[k] / n;
        double sigma = sqrt(v * (1.0 - v) / n);
        ck_assert_msg(fabs(freq - v) <= 6.0 * sigma + 1e-12,
                      "value %.4f: frequency %.4f (6 sigma %.4f)", v, freq, 6.0 * sigma);
    }
    /* one pixel position alone, across seeds: same law, looser band */
    double one = 0.0;
    for (int r = 0; r < R; r++) {
        ck_assert_int_eq(
            dcrw_dataset_batch(d, all + 3, 1, DCRW_BINARIZE_DYNAMIC, 5000 + (uint64_t)r, x),
            DCRW_OK);
        one += x[17];
    }
    double v = 128 / 255.0;
    ck_assert(fabs(one / R - v) <= 6.0 * sqrt(v * (1 - v) / R));
    dcrw_dataset_destroy(d);
}
END_TEST

/* The real data, when fetched (examples/fetch-mnist.sh). */
START_TEST(test_mnist) {
    const char *root = getenv("DCRW_SOURCE_ROOT");
    const char *req = getenv("DCRW_REQUIRE_MNIST");
    int required = req && strcmp(req, "1") == 0;
    static const char *names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                   "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    char paths[4][4096];
    int missing = !root;
    for (int i = 0; i < 4 && root; i++) {
        snprintf(paths[i], sizeof paths[i], "%s/data/mnist/%s", root, names[i]);
        FILE *f = fopen(paths[i], "rb");
        if (f)
            fclose(f);
        else
            missing = 1;
    }
    if (missing) {
        ck_assert_msg(!required,
                      "DCRW_REQUIRE_MNIST=1 but MNIST is not in $DCRW_SOURCE_ROOT/data/mnist "
                      "(run examples/fetch-mnist.sh)");
        printf("test_mnist: skipped, no MNIST in $DCRW_SOURCE_ROOT/data/mnist "
               "(run examples/fetch-mnist.sh)\n");
        return;
    }
    dcrw_dataset *train = NULL, *test = NULL;
    ck_assert_msg(dcrw_dataset_load_idx(&train, paths[0], paths[1]) == DCRW_OK, "%s",
                  dcrw_last_error());
    ck_assert_msg(dcrw_dataset_load_idx(&test, paths[2], paths[3]) == DCRW_OK, "%s",
                  dcrw_last_error());
    ck_assert_uint_eq(dcrw_dataset_count(train), 60000);
    ck_assert_uint_eq(dcrw_dataset_count(test), 10000);
    for (int k = 0; k < 2; k++) {
        int c, h, w;
        ck_assert_int_eq(dcrw_dataset_shape(k ? test : train, &c, &h, &w), DCRW_OK);
        ck_assert_int_eq(c, 1);
        ck_assert_int_eq(h, 28);
        ck_assert_int_eq(w, 28);
    }
    /* well-known facts about the files */
    ck_assert_int_eq(dcrw_dataset_label(train, 0), 5);
    ck_assert_int_eq(dcrw_dataset_label(test, 0), 7);
    long hist[10] = {0};
    for (size_t i = 0; i < 60000; i++) {
        int l = dcrw_dataset_label(train, i);
        ck_assert(l >= 0 && l <= 9);
        hist[l]++;
    }
    ck_assert_int_eq(hist[1], 6742); /* the commonest digit */
    ck_assert_int_eq(hist[5], 5421); /* the rarest */
    /* the training mean pixel, 0.1307, is the usual normalisation constant */
    const float *x = dcrw_dataset_images(train);
    double sum = 0.0;
    for (size_t i = 0; i < (size_t)60000 * 784; i++) sum += x[i];
    ck_assert(fabs(sum / (60000.0 * 784.0) - 0.1307) < 5e-4);
    dcrw_dataset_destroy(train);
    dcrw_dataset_destroy(test);
}
END_TEST

int main(void) {
    Suite *s = suite_create("dataset");
    TCase *tc = tcase_create("idx");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_good_3d);
    tcase_add_test(tc, test_good_4d);
    tcase_add_test(tc, test_gzip);
#if DCRW_HAVE_ZLIB
    tcase_add_test(tc, test_gzip_bad);
    tcase_add_test(tc, test_gzip_trailing);
#endif
    tcase_add_test(tc, test_special_files);
    tcase_add_test(tc, test_bad_headers);
    tcase_add_test(tc, test_bad_labels);
    tcase_add_test(tc, test_truncated_everywhere);
    tcase_add_test(tc, test_null_args);
    suite_add_tcase(s, tc);

    TCase *tb = tcase_create("batch");
    tcase_add_checked_fixture(tb, setup, teardown);
    tcase_set_timeout(tb, 30);
    tcase_add_test(tb, test_batch_exact);
    tcase_add_test(tb, test_batch_args);
    tcase_add_test(tb, test_batch_dynamic);
    tcase_add_test(tb, test_batch_dynamic_mean);
    suite_add_tcase(s, tb);

    TCase *tm = tcase_create("mnist");
    tcase_set_timeout(tm, 50);
    tcase_add_test(tm, test_mnist);
    suite_add_tcase(s, tm);
    return tu_run(s);
}
