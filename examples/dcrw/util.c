/* Messages, files, data and the order of training for the dcrw command (the command
 * line is cli_options.c's, pictures are picture.c's). */
/* realpath() is XSI */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static const char *command_name = "dcrw";

void cli_set_command(const char *name) {
    command_name = name;
}

static void vmessage(const char *fmt, va_list ap, const char *tail) {
    char buf[1024];
    vsnprintf(buf, sizeof buf, fmt, ap);
    /* one line, whatever the library's message holds */
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    if (tail && *tail)
        fprintf(stderr, "%s: %s: %s\n", command_name, buf, tail);
    else
        fprintf(stderr, "%s: %s\n", command_name, buf);
}

void cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vmessage(fmt, ap, NULL);
    va_end(ap);
}

void cli_lib_error(int rc, const char *fmt, ...) {
    char tail[768];
    const char *detail = dcrw_last_error();
    if (detail && *detail)
        snprintf(tail, sizeof tail, "%s (%s)", detail, dcrw_strerror(rc));
    else
        snprintf(tail, sizeof tail, "%s", dcrw_strerror(rc));
    for (char *p = tail; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    va_list ap;
    va_start(ap, fmt);
    vmessage(fmt, ap, tail);
    va_end(ap);
}

/* ------------------------------------------------------------------------ */
char *cli_path(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    if (a > SIZE_MAX / 2 || b > SIZE_MAX / 2) return NULL;
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t k = a;
    if (a > 0 && dir[a - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

const char *cli_basename(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

int cli_argmax(const float *p, int n) {
    int best = 0;
    for (int k = 1; k < n; k++)
        if (p[k] > p[best]) best = k;
    return best;
}

/* The folder part of @p path ("." for a bare name), newly allocated. */
static char *folder_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    while (slash > path && slash[-1] == '/') slash--;
    if (slash == path) return strdup("/");
    size_t n = (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

/* After a rename the new name lives in the folder's entries: sync them too,
 * or a crash of the machine may bring the old file back. */
static void sync_folder_of(const char *path) {
    char *d = folder_of(path);
    int fd = d ? open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(d);
}

/* mkdir -p of @p dir; messages start with "WHAT NAME: " */
static int make_folders(const char *dir, const char *what, const char *name) {
    if (!*dir) return 0;
    const char *w = what ? what : "", *sp = what ? " " : "";
    char *p = strdup(dir);
    if (!p) {
        cli_error("%s%s%s: out of memory", w, sp, name);
        return -1;
    }
    int rc = 0;
    /* each prefix ending before a slash, then the whole path */
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0') continue;
        char keep = *s;
        *s = '\0';
        struct stat st;
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            cli_error("%s%s%s: cannot create the folder %s: %s", w, sp, name, p, strerror(errno));
            rc = -1;
        } else if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
            cli_error("%s%s%s: %s exists and is not a folder", w, sp, name, p);
            rc = -1;
        }
        *s = keep;
        if (rc != 0 || keep == '\0') break;
        while (s[1] == '/') s++;
        if (s[1] == '\0') break; /* trailing slashes */
    }
    free(p);
    return rc;
}

int cli_make_folders(const char *dir, const char *what) {
    return make_folders(dir, what, dir);
}

int cli_make_parents(const char *path, const char *what) {
    char *d = folder_of(path);
    if (!d) {
        cli_error("%s: out of memory", path);
        return -1;
    }
    int rc = make_folders(d, what, path);
    free(d);
    return rc;
}

int cli_tmp_open(const char *path, char **tmp) {
    *tmp = NULL;
    if (cli_make_parents(path, NULL) != 0) return -1;
    size_t n = strlen(path);
    char *t = malloc(n + 16);
    if (!t) {
        cli_error("%s: out of memory", path);
        return -1;
    }
    /* same folder, so that rename() is atomic */
    memcpy(t, path, n);
    memcpy(t + n, ".tmp.XXXXXX", 12);
    int fd = mkstemp(t);
    if (fd < 0) {
        cli_error("%s: cannot create a file there: %s", path, strerror(errno));
        free(t);
        return -1;
    }
    /* mkstemp makes 0600: a file being replaced keeps its mode, a new one
     * is as readable as any file the user creates */
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        fchmod(fd, st.st_mode & 07777);
    } else {
        mode_t mask = umask(0);
        umask(mask);
        fchmod(fd, 0666 & ~mask);
    }
    *tmp = t;
    return fd;
}

int cli_tmp_commit(const char *tmp, const char *path) {
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    if (rename(tmp, path) != 0) {
        cli_error("%s: cannot rename the finished file into place: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    sync_folder_of(path);
    return 0;
}

int cli_write_atomic(const char *path, cli_writer fn, void *ctx) {
    char *tmp = NULL;
    int fd = cli_tmp_open(path, &tmp);
    if (fd < 0) return -1;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        cli_error("%s: %s", path, strerror(errno));
        close(fd);
        unlink(tmp);
        free(tmp);
        return -1;
    }
    int rc = fn(f, ctx);
    if (fflush(f) != 0 || ferror(f)) {
        if (rc == 0) cli_error("%s: write failed: %s", path, strerror(errno));
        rc = -1;
    }
    if (rc == 0 && fsync(fileno(f)) != 0) {
        cli_error("%s: fsync failed: %s", path, strerror(errno));
        rc = -1;
    }
    if (fclose(f) != 0 && rc == 0) {
        cli_error("%s: close failed: %s", path, strerror(errno));
        rc = -1;
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        cli_error("%s: cannot rename the finished file into place: %s", path, strerror(errno));
        rc = -1;
    }
    if (rc == 0) sync_folder_of(path);
    if (rc != 0) unlink(tmp);
    free(tmp);
    return rc;
}

/* ------------------------------------------------------------------------ */
static const char *not_regular(mode_t mode) {
    if (S_ISDIR(mode)) return "a folder, not a file";
    if (S_ISFIFO(mode)) return "a FIFO (named pipe), not a regular file";
    if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device, not a regular file";
    if (S_ISSOCK(mode)) return "a socket, not a regular file";
    return "not a regular file";
}

/* Non-blocking, so that a FIFO without a writer cannot hang the open; the
 * stat before it keeps devices from being opened at all, the fstat after
 * it catches a file swapped in between. */
static int open_regular(const char *path, char *why, size_t n) {
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(why, n, "%s", strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, n, "%s", not_regular(st.st_mode));
        return -1;
    }
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, n, "%s", strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, n, "%s", not_regular(st.st_mode));
        close(fd);
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

int cli_probe_regular(const char *path, char *why, size_t n) {
    int fd = open_regular(path, why, n);
    if (fd < 0) return -1;
    close(fd);
    return 0;
}

int cli_open_regular(const char *path, const char *what) {
    char why[160];
    int fd = open_regular(path, why, sizeof why);
    if (fd < 0) cli_error("%s%s%s: %s", what ? what : "", what ? " " : "", path, why);
    return fd;
}

int cli_check_regular(const char *path, const char *what) {
    int fd = cli_open_regular(path, what);
    if (fd < 0) return -1;
    close(fd);
    return 0;
}

char *cli_read_file(const char *path, size_t *len) {
    int fd = cli_open_regular(path, NULL);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        cli_error("%s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            if (cap > ((size_t)1 << 30)) {
                cli_error("%s: file too large", path);
                free(buf);
                buf = NULL;
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    if (buf && ferror(f)) {
        cli_error("%s: read failed", path);
        free(buf);
        buf = NULL;
    } else if (!buf) {
        cli_error("%s: out of memory", path);
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (len) *len = n;
    }
    return buf;
}

/* ------------------------------------------------------------------------ */
/* Where @p path is once every link in it is followed: realpath() for an
 * existing file, else the resolved folder joined with the last name (NULL
 * when the folder does not exist either). */
static char *resolved(const char *path) {
    char *r = realpath(path, NULL);
    if (r) return r;
    char *d = folder_of(path), *rd = d ? realpath(d, NULL) : NULL;
    char *out = rd ? cli_path(rd, cli_basename(path)) : NULL;
    free(d);
    free(rd);
    return out;
}

/* 1 when a and b are one file: one inode, or one resolved path */
static int same_file(const char *a, const char *b) {
    struct stat sa, sb;
    if (stat(a, &sa) == 0 && stat(b, &sb) == 0)
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    char *ra = resolved(a), *rb = resolved(b);
    int same = ra && rb && strcmp(ra, rb) == 0;
    free(ra);
    free(rb);
    return same;
}

int cli_check_outputs(const cli_file *in, size_t nin, const cli_file *out, size_t nout) {
    for (size_t i = 0; i < nout; i++) {
        struct stat st;
        if (stat(out[i].path, &st) == 0 && S_ISDIR(st.st_mode)) {
            cli_error("%s %s: is a folder; give a file name", out[i].what, out[i].path);
            return -1;
        }
        for (size_t j = 0; j < nin; j++)
            if (same_file(out[i].path, in[j].path)) {
                cli_error("%s %s is the same file as %s %s, which this command reads: "
                          "choose another name",
                          out[i].what, out[i].path, in[j].what, in[j].path);
                return -1;
            }
        for (size_t j = 0; j < i; j++)
            if (same_file(out[i].path, out[j].path)) {
                cli_error("%s %s and %s %s are the same file: give each its own name", out[j].what,
                          out[j].path, out[i].what, out[i].path);
                return -1;
            }
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
int cli_load_split(const char *path, cli_split split, dcrw_dataset **out) {
    *out = NULL;
    int rc = dcrw_dataset_open(out, path, split == SPLIT_TEST ? DCRW_SPLIT_TEST : DCRW_SPLIT_TRAIN);
    if (rc == DCRW_OK) return 0;
    if (rc == DCRW_ENOTFOUND)
        cli_lib_error(rc, "--data %s (MNIST: examples/fetch-mnist.sh; the formats: dcrw(1))", path);
    else
        cli_lib_error(rc, "--data %s", path);
    return -1;
}

/* ---- the files of --data, which no output may replace */

typedef struct {
    cli_file *f;
    size_t n, cap;
} file_list;

static int is_data_name(const char *name) {
    static const char *const tails[] = {".png", ".PNG", ".npy", "-ubyte", "-ubyte.gz"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
        size_t t = strlen(tails[i]);
        if (n >= t && strcmp(name + n - t, tails[i]) == 0) return 1;
    }
    return 0;
}

static int list_add(file_list *l, char *path) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        cli_file *f = realloc(l->f, cap * sizeof *f);
        if (!f) return -1;
        l->f = f;
        l->cap = cap;
    }
    l->f[l->n].path = path;
    l->f[l->n].what = "--data";
    l->n++;
    return 0;
}

/* The data files in dir and @p depth levels of folders below it. */
static int list_data_files(const char *dir, int depth, file_list *l) {
    DIR *d = opendir(dir);
    if (!d) return 0; /* the loader has said what is wrong with it */
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *p = cli_path(dir, e->d_name);
        struct stat st;
        if (!p) {
            rc = -1;
        } else if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (depth > 0) rc = list_data_files(p, depth - 1, l);
            free(p);
        } else if (is_data_name(e->d_name)) {
            rc = list_add(l, p);
            if (rc) free(p);
        } else {
            free(p);
        }
    }
    closedir(d);
    return rc;
}

int cli_check_data_outputs(const char *model, const char *data, const cli_file *out, size_t nout) {
    file_list l = {0};
    int rc = 0;
    if (model) {
        char *m = strdup(model);
        rc = m ? list_add(&l, m) : -1;
        if (!rc)
            l.f[0].what = "--model";
        else
            free(m);
    }
    struct stat st;
    if (!rc && stat(data, &st) == 0 && S_ISDIR(st.st_mode)) {
        /* split folders of class folders of images, at the most */
        rc = list_data_files(data, 2, &l);
    } else if (!rc) {
        char *p = strdup(data);
        rc = p ? list_add(&l, p) : -1;
        if (rc) free(p);
    }
    if (rc)
        cli_error("out of memory");
    else
        rc = cli_check_outputs(l.f, l.n, out, nout);
    for (size_t i = 0; i < l.n; i++) free((char *)l.f[i].path);
    free(l.f);
    return rc;
}

int cli_check_shape(const dcrw_dataset *d, const dcrw_config *cfg, const char *what,
                    const char *fix) {
    int data[3] = {0, 0, 0};
    dcrw_dataset_shape(d, &data[0], &data[1], &data[2]);
    const int model[3] = {cfg->channels, cfg->height, cfg->width};
    static const char *const field[3] = {"channels", "height", "width"};
    for (int k = 0; k < 3; k++) {
        if (data[k] == model[k]) continue;
        char how[160];
        snprintf(how, sizeof how, fix, field[k]);
        cli_error("%s holds %dx%dx%d images (CxHxW) but the model takes %dx%dx%d: its %s is %d, "
                  "the data's %d; %s",
                  what, data[0], data[1], data[2], model[0], model[1], model[2], field[k], model[k],
                  data[k], how);
        return -1;
    }
    return 0;
}

/* Without --model, $DCRW_MODEL, else the model installed beside the
 * command, so that sampling works right after installation. */
const char *cli_model_path(const char *given) {
    if (given) return given;
    const char *env = getenv("DCRW_MODEL");
    return env && *env ? env : DCRW_SHIPPED_MODEL;
}

int cli_load_model(const char *path, dcrw_model **out) {
    char why[160];
    *out = NULL;
    if (cli_probe_regular(path, why, sizeof why) != 0) {
        cli_error("model %s: not a usable dcrw checkpoint: %s%s", path, why,
                  strcmp(path, DCRW_SHIPPED_MODEL) ? "" : " (give --model CKPT)");
        return -1;
    }
    int rc = dcrw_model_load(out, path);
    if (rc != DCRW_OK) {
        cli_lib_error(rc, "model %s: not a usable dcrw checkpoint%s", path,
                      strcmp(path, DCRW_SHIPPED_MODEL) ? "" : " (give --model CKPT)");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
static uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint64_t cli_key(uint64_t a, uint64_t b) {
    return mix(mix(a) ^ (b * 0xd1b54a32d192ed03ull));
}

uint64_t cli_below(uint64_t *state, uint64_t n) {
    if (n <= 1) return 0;
    /* reject the top partial range so every value is equally likely */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n, v;
    do {
        *state += 0x9e3779b97f4a7c15ull;
        uint64_t z = *state;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        v = z ^ (z >> 31);
    } while (v >= limit);
    return v % n;
}

void cli_permutation(size_t *perm, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++) perm[i] = i;
    uint64_t state = mix(seed);
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)cli_below(&state, i);
        size_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
