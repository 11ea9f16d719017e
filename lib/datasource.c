/* Opening a data set from a path whatever its format, and from the
 * caller's memory: the path is told apart by what it is (file or folder)
 * and by content, never by the extension alone, and each format goes to
 * its reader (IDX in dataset.c, the others in lib/imageset.h). */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common.h"
#include "file.h"
#include "imageset.h"

static const char *split_word(int split) {
    return split == DCRW_SPLIT_TEST ? "test" : "train";
}

/* ---- MNIST-style IDX names in a folder ---- */

/* Length of name without a final ".gz". */
static size_t base_len(const char *name) {
    size_t n = strlen(name);
    return n > 3 && strcmp(name + n - 3, ".gz") == 0 ? n - 3 : n;
}

static int ends_with(const char *s, size_t n, const char *tail) {
    size_t t = strlen(tail);
    return n >= t && memcmp(s + n - t, tail, t) == 0;
}

/* Which split an IDX image file's name belongs to: PREFIXtrain- or
 * PREFIXt10k-/PREFIXtest- ... images ... idx3-ubyte or idx4-ubyte, with or
 * without .gz (MNIST, Fashion-MNIST, EMNIST, Kaggle's dotted names); -1 if
 * it is none. */
static int idx_split_of(const char *name) {
    size_t n = base_len(name);
    if (name[0] == '.' || !(ends_with(name, n, "idx3-ubyte") || ends_with(name, n, "idx4-ubyte")))
        return -1;
    char base[256];
    if (n >= sizeof base) return -1;
    memcpy(base, name, n);
    base[n] = '\0';
    if (!strstr(base, "images")) return -1;
    if (strstr(base, "t10k") || strstr(base, "test")) return DCRW_SPLIT_TEST;
    if (strstr(base, "train")) return DCRW_SPLIT_TRAIN;
    return -1;
}

static int exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

/* The labels file beside an images file: "images" becomes "labels" and
 * "idx3"/"idx4" becomes "idx1", with or without .gz; NULL if there is none
 * (or on ENOMEM, recorded: the caller then fails). */
static char *labels_beside(const char *images, int *rc) {
    *rc = DCRW_OK;
    const char *slash = strrchr(images, '/');
    const char *name = slash ? slash + 1 : images;
    size_t dl = (size_t)(name - images), n = base_len(name);
    char *p = dcrw_alloc(strlen(images) + 4);
    if (!p) {
        *rc = DCRW_ENOMEM;
        return NULL;
    }
    memcpy(p, images, dl + n);
    p[dl + n] = '\0';
    char *im = strstr(p + dl, "images"), *idx = strstr(p + dl, "-ubyte");
    if (!im || !idx || idx - 4 < p + dl) {
        dcrw_free(p);
        return NULL;
    }
    memcpy(im, "labels", 6);
    idx[-1] = '1';
    if (exists(p)) return p;
    strcat(p, ".gz");
    if (exists(p)) return p;
    dcrw_free(p);
    return NULL;
}

/* Load images (and the labels beside them, if any) from an IDX file. */
static int open_idx(dcrw_dataset **out, const char *images) {
    int rc;
    char *labels = labels_beside(images, &rc);
    if (rc) return rc;
    rc = dcrw_dataset_load_idx(out, images, labels);
    dcrw_free(labels);
    return rc;
}

typedef struct {
    char name[2][256]; /* the images file of each split; "" if none */
    int ambiguous[2];  /* another, different name matched too */
    char other[2][256];
} idx_names;

/* Record name for its split. A plain file and its .gz twin are one set (the
 * plain one is read); two different names are ambiguous. */
static void note_idx(idx_names *f, const char *name, int split) {
    char *have = f->name[split];
    if (strlen(name) >= sizeof f->name[0]) return;
    if (!have[0]) {
        strcpy(have, name);
        return;
    }
    size_t a = base_len(have), b = base_len(name);
    if (a == b && memcmp(have, name, a) == 0) {
        if (strlen(name) < strlen(have)) strcpy(have, name);
        return;
    }
    f->ambiguous[split] = 1;
    strcpy(f->other[split], name);
}

static int scan_idx(const char *dir, idx_names *f) {
    memset(f, 0, sizeof *f);
    DIR *d = opendir(dir);
    if (!d) return dcrw_fail(DCRW_EIO, "cannot open folder %.200s: %s", dir, strerror(errno));
    struct dirent *de;
    while ((errno = 0, de = readdir(d))) {
        int split = idx_split_of(de->d_name);
        if (split >= 0) note_idx(f, de->d_name, split);
    }
    int e = errno;
    closedir(d);
    if (e) return dcrw_fail(DCRW_EIO, "cannot list %.200s: %s", dir, strerror(e));
    return DCRW_OK;
}

/* ---- the other formats ---- */

static int open_reader(dcrw_dataset **out, const char *path,
                       int (*read)(const char *, dcrw_imageset *)) {
    dcrw_imageset s;
    int rc = read(path, &s);
    if (!rc) rc = dcrw_dataset_adopt(out, &s);
    dcrw_imageset_free(&s);
    return rc;
}

static int open_file(dcrw_dataset **out, const char *path) {
    if (dcrw_npy_sniff(path)) return open_reader(out, path, dcrw_npy_read);
    return open_idx(out, path);
}

static int open_data_folder(dcrw_dataset **out, const char *dir, int split, int depth);

/* DIR/train.npy or DIR/train/ (test likewise), if present: 1 and *rc. */
static int open_split_entry(dcrw_dataset **out, const char *dir, int split, int depth, int *rc) {
    char name[16];
    snprintf(name, sizeof name, "%s.npy", split_word(split));
    char *p = dcrw_path_join(dir, name);
    if (!p) return *rc = DCRW_ENOMEM, 1;
    struct stat st;
    if (stat(p, &st) == 0) {
        *rc = open_file(out, p);
        dcrw_free(p);
        return 1;
    }
    p[strlen(p) - 4] = '\0';
    if (depth == 0 && stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
        *rc = open_data_folder(out, p, split, depth + 1);
        dcrw_free(p);
        return 1;
    }
    dcrw_free(p);
    return 0;
}

static int open_idx_in(dcrw_dataset **out, const char *dir, const idx_names *f, int split) {
    if (f->ambiguous[split])
        return dcrw_fail(DCRW_EINVAL,
                         "%.200s holds two %s image files, %s and %s: give the one to read "
                         "as the path",
                         dir, split_word(split), f->name[split], f->other[split]);
    char *p = dcrw_path_join(dir, f->name[split]);
    if (!p) return DCRW_ENOMEM;
    int rc = open_idx(out, p);
    dcrw_free(p);
    return rc;
}

static int open_data_folder(dcrw_dataset **out, const char *dir, int split, int depth) {
    idx_names f;
    int rc = scan_idx(dir, &f);
    if (rc) return rc;
    if (f.name[split][0]) return open_idx_in(out, dir, &f, split);
    if (f.name[!split][0])
        return dcrw_fail(DCRW_ENOTFOUND,
                         "%.200s holds %s images (%s) but no %s images (such as %s-images-idx3-"
                         "ubyte)",
                         dir, split_word(!split), f.name[!split], split_word(split),
                         split == DCRW_SPLIT_TEST ? "t10k" : "train");
    if (open_split_entry(out, dir, split, depth, &rc)) return rc;
    if (dcrw_pngdir_sniff(dir)) return open_reader(out, dir, dcrw_pngdir_read);
    return dcrw_fail(DCRW_ENOTFOUND,
                     "%.200s holds no data set: expected IDX files (train-images-idx3-ubyte and "
                     "t10k-images-idx3-ubyte, plain or .gz, any prefix), %s.npy, a %s/ folder, "
                     "or PNG images (in class folders or not)",
                     dir, split_word(split), split_word(split));
}

int dcrw_dataset_open(dcrw_dataset **out, const char *path, int split) {
    DCRW_CHECK_ARG(out, "dcrw_dataset_open: out is NULL");
    *out = NULL;
    DCRW_CHECK_ARG(path, "dcrw_dataset_open: path is NULL");
    DCRW_CHECK_ARG(split == DCRW_SPLIT_TRAIN || split == DCRW_SPLIT_TEST,
                   "dcrw_dataset_open: unknown split %d (DCRW_SPLIT_TRAIN or DCRW_SPLIT_TEST)",
                   split);
    struct stat st;
    if (stat(path, &st) != 0)
        return dcrw_fail(DCRW_EIO, "cannot open %.200s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return open_data_folder(out, path, split, 0);
    return open_file(out, path);
}

/* ---- the caller's memory ---- */

static int memory_shape(size_t count, int channels, int height, int width) {
    DCRW_CHECK_ARG(count >= 1, "dcrw_dataset_from_memory: count must be >= 1");
    DCRW_CHECK_ARG(channels >= 1 && (unsigned)channels <= DCRW_IMAGES_MAX_CHANNELS,
                   "dcrw_dataset_from_memory: channels must be in [1, %u], got %d",
                   DCRW_IMAGES_MAX_CHANNELS, channels);
    DCRW_CHECK_ARG(height >= 1 && (unsigned)height <= DCRW_IMAGES_MAX_SIDE,
                   "dcrw_dataset_from_memory: height must be in [1, %u], got %d",
                   DCRW_IMAGES_MAX_SIDE, height);
    DCRW_CHECK_ARG(width >= 1 && (unsigned)width <= DCRW_IMAGES_MAX_SIDE,
                   "dcrw_dataset_from_memory: width must be in [1, %u], got %d",
                   DCRW_IMAGES_MAX_SIDE, width);
    uint64_t pixels = (uint64_t)channels * (uint64_t)height * (uint64_t)width;
    DCRW_CHECK_ARG((uint64_t)count <= DCRW_IMAGES_MAX_VALUES / pixels,
                   "dcrw_dataset_from_memory: %zu images of %llu values exceed the limit of 2^31 "
                   "values",
                   count, (unsigned long long)pixels);
    return DCRW_OK;
}

/* Copy and convert the caller's values, checking floats as they go. */
static int memory_images(float *dst, const void *src, int dtype, size_t n) {
    const char *fn = "dcrw_dataset_from_memory";
    if (dtype == DCRW_DTYPE_U8) {
        const uint8_t *u = src;
        for (size_t i = 0; i < n; i++) dst[i] = (float)u[i] / 255.0f;
        return DCRW_OK;
    }
    if (dtype == DCRW_DTYPE_F32) {
        memcpy(dst, src, n * sizeof *dst);
        return dcrw_check_images(fn, dst, n);
    }
    const double *d = src;
    for (size_t i = 0; i < n; i++) {
        if (!(d[i] >= 0.0 && d[i] <= 1.0))
            return dcrw_fail(isfinite(d[i]) ? DCRW_EINVAL : DCRW_ENUMERIC,
                             "%s: images[%zu] = %g is outside [0, 1]", fn, i, d[i]);
        dst[i] = (float)d[i];
    }
    return DCRW_OK;
}

int dcrw_dataset_from_memory(dcrw_dataset **out, const void *images, int dtype, size_t count,
                             int channels, int height, int width, const int32_t *labels) {
    DCRW_CHECK_ARG(out, "dcrw_dataset_from_memory: out is NULL");
    *out = NULL;
    DCRW_CHECK_ARG(images, "dcrw_dataset_from_memory: images is NULL");
    DCRW_CHECK_ARG(dtype == DCRW_DTYPE_U8 || dtype == DCRW_DTYPE_F32 || dtype == DCRW_DTYPE_F64,
                   "dcrw_dataset_from_memory: unknown dtype %d", dtype);
    int rc = memory_shape(count, channels, height, width);
    if (rc) return rc;
    if (labels)
        for (size_t i = 0; i < count; i++)
            DCRW_CHECK_ARG(labels[i] >= 0, "dcrw_dataset_from_memory: labels[%zu] = %d is negative",
                           i, (int)labels[i]);
    dcrw_imageset s;
    memset(&s, 0, sizeof s);
    rc = dcrw_imageset_alloc(&s, "dcrw_dataset_from_memory", count, (uint64_t)channels,
                             (uint64_t)height, (uint64_t)width);
    if (!rc) rc = memory_images(s.images, images, dtype, count * (size_t)channels * height * width);
    if (!rc && labels) {
        s.labels = dcrw_alloc(count * sizeof *s.labels);
        if (!s.labels)
            rc = DCRW_ENOMEM;
        else
            memcpy(s.labels, labels, count * sizeof *s.labels);
    }
    if (!rc) rc = dcrw_dataset_adopt(out, &s);
    dcrw_imageset_free(&s);
    return rc;
}
