/* Messages, option parsing, files, data and randomness for the dcrw command. */
/* realpath() is XSI */
#define _XOPEN_SOURCE 700
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
int cli_next(cli_args *a, const char **val) {
    *val = NULL;
    if (a->pos >= a->argc) return -1;
    const char *s = a->argv[a->pos++];
    if (strncmp(s, "--", 2) != 0 || strcmp(s, "--") == 0 || s[2] == '\0') {
        *val = s;
        return 0;
    }
    const char *name = s + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    for (const cli_opt *o = a->opts; o && o->name; o++) {
        if (strlen(o->name) != len || strncmp(o->name, name, len) != 0) continue;
        if (!o->has_arg) {
            if (eq) {
                cli_error("option --%s takes no value", o->name);
                return -2;
            }
            return o->id;
        }
        if (eq) {
            *val = eq + 1;
        } else {
            if (a->pos >= a->argc) {
                cli_error("option --%s needs a value", o->name);
                return -2;
            }
            *val = a->argv[a->pos++];
        }
        return o->id;
    }
    cli_error("unknown option --%.*s (see --help)", (int)(len > 200 ? 200 : len), name);
    return -2;
}

int cli_next_option(cli_args *a, const char **val, void (*usage)(FILE *), int *status) {
    int id = cli_next(a, val);
    *status = -1;
    if (id == -2) {
        *status = CLI_BAD;
    } else if (id == 0) {
        cli_error("unexpected argument '%s' (see --help)", *val);
        *status = CLI_BAD;
    } else if (id == 1) {
        usage(stdout);
        *status = CLI_OK;
    }
    return id > 1 ? id : 0;
}

int cli_parse_int(const char *opt, const char *s, long lo, long hi, long *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno == ERANGE || end == s) {
        cli_error("--%s: '%s' is not an integer", opt, s);
        return -1;
    }
    if (v < lo || v > hi) {
        cli_error("--%s: %ld is out of range [%ld, %ld]", opt, v, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_u64(const char *opt, const char *s, uint64_t *out) {
    char *end = NULL;
    errno = 0;
    if (!*s || *s == '-' || *s == '+' || *s == ' ') {
        cli_error("--%s: '%s' is not a non-negative integer", opt, s);
        return -1;
    }
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno == ERANGE || end == s) {
        cli_error("--%s: '%s' is not a non-negative integer below 2^64", opt, s);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

int cli_parse_double(const char *opt, const char *s, double lo, double hi, double *out) {
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || end == s || errno == ERANGE || !isfinite(v)) {
        cli_error("--%s: '%s' is not a finite number", opt, s);
        return -1;
    }
    if (v < lo || v > hi) {
        cli_error("--%s: %g is out of range [%g, %g]", opt, v, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_binarize(const char *opt, const char *s, int *out) {
    if (strcmp(s, "dynamic") == 0)
        *out = DCRW_BINARIZE_DYNAMIC;
    else if (strcmp(s, "threshold") == 0)
        *out = DCRW_BINARIZE_THRESHOLD;
    else if (strcmp(s, "none") == 0)
        *out = DCRW_BINARIZE_NONE;
    else {
        cli_error("--%s: '%s' is not one of dynamic, threshold, none", opt, s);
        return -1;
    }
    return 0;
}

const char *cli_binarize_name(int b) {
    switch (b) {
    case DCRW_BINARIZE_DYNAMIC:
        return "dynamic";
    case DCRW_BINARIZE_THRESHOLD:
        return "threshold";
    case DCRW_BINARIZE_NONE:
        return "none";
    default:
        return "?";
    }
}

int cli_parse_split(const char *opt, const char *s, cli_split *out) {
    if (strcmp(s, "train") == 0)
        *out = SPLIT_TRAIN;
    else if (strcmp(s, "test") == 0)
        *out = SPLIT_TEST;
    else {
        cli_error("--%s: '%s' is not train or test", opt, s);
        return -1;
    }
    return 0;
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

int cli_check_folder(const char *path, const char *what) {
    struct stat st;
    if (stat(path, &st) != 0) {
        cli_error("%s%s%s: %s", what ? what : "", what ? " " : "", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        cli_error("%s%s%s: not a folder", what ? what : "", what ? " " : "", path);
        return -1;
    }
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
char *cli_split_path(const char *dir, cli_split split, int labels) {
    static const char *const names[2][2] = {{"train-images-idx3-ubyte", "train-labels-idx1-ubyte"},
                                            {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}};
    return cli_path(dir, names[split == SPLIT_TEST][labels != 0]);
}

int cli_load_split(const char *dir, cli_split split, dcrw_dataset **out) {
    *out = NULL;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        cli_error("--data %s: not a folder (it should hold the MNIST IDX files; see "
                  "examples/fetch-mnist.sh)",
                  dir);
        return -1;
    }
    char *ip = cli_split_path(dir, split, 0), *lp = cli_split_path(dir, split, 1);
    int rc = DCRW_OK, ok = ip && lp;
    if (!ok) cli_error("--data: out of memory");
    /* labels are optional for the command; read them when they are there */
    int have_labels = ok && lstat(lp, &st) == 0;
    if (ok && (cli_check_regular(ip, "--data") != 0 ||
               (have_labels && cli_check_regular(lp, "--data") != 0)))
        ok = 0;
    if (ok) {
        rc = dcrw_dataset_load_idx(out, ip, have_labels ? lp : NULL);
        if (rc != DCRW_OK) cli_lib_error(rc, "--data %s: cannot load %s", dir, cli_basename(ip));
    }
    free(ip);
    free(lp);
    return ok && rc == DCRW_OK ? 0 : -1;
}

int cli_check_shape(const dcrw_dataset *d, const dcrw_config *cfg, const char *what) {
    int c = 0, h = 0, w = 0;
    dcrw_dataset_shape(d, &c, &h, &w);
    if (c != cfg->channels || h != cfg->height || w != cfg->width) {
        cli_error("%s holds %dx%dx%d images (CxHxW) but the model takes %dx%dx%d", what, c, h, w,
                  cfg->channels, cfg->height, cfg->width);
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
uint64_t cli_mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint64_t cli_key(uint64_t a, uint64_t b) {
    return cli_mix(cli_mix(a) ^ (b * 0xd1b54a32d192ed03ull));
}

void cli_rng_init(cli_rng *r, uint64_t seed) {
    r->s = cli_mix(seed);
}

uint64_t cli_rng_u64(cli_rng *r) {
    r->s += 0x9e3779b97f4a7c15ull;
    uint64_t z = r->s;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t cli_rng_below(cli_rng *r, uint64_t n) {
    if (n <= 1) return 0;
    /* reject the top partial range so every value is equally likely */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t v;
    do v = cli_rng_u64(r);
    while (v >= limit);
    return v % n;
}

double cli_rng_open01(cli_rng *r) {
    /* 53 random bits, shifted half a step off 0 so log() never sees 0 */
    return ((double)(cli_rng_u64(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

double cli_rng_normal(cli_rng *r) {
    double u1 = cli_rng_open01(r), u2 = cli_rng_open01(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void cli_fill_eps(float *eps, uint64_t seed, size_t first, int B, size_t T, size_t Z) {
    for (int b = 0; b < B; b++) {
        cli_rng r;
        cli_rng_init(&r, cli_key(seed, (uint64_t)(first + (size_t)b)));
        for (size_t t = 0; t < T; t++)
            for (size_t j = 0; j < Z; j++)
                eps[(t * (size_t)B + (size_t)b) * Z + j] = (float)cli_rng_normal(&r);
    }
}

void cli_permutation(size_t *perm, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++) perm[i] = i;
    cli_rng r;
    cli_rng_init(&r, seed);
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)cli_rng_below(&r, i);
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

int cli_parse_glimpses(const char *opt, const char *s, int T, int **out) {
    *out = NULL;
    if (strcmp(s, "all") == 0) {
        int *g = malloc((size_t)T * sizeof *g);
        if (!g) {
            cli_error("--%s: out of memory", opt);
            return -1;
        }
        for (int t = 0; t < T; t++) g[t] = t + 1;
        *out = g;
        return T;
    }
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    if (cap > 4096) {
        cli_error("--%s: too many glimpses", opt);
        return -1;
    }
    int *g = malloc(cap * sizeof *g);
    if (!g) {
        cli_error("--%s: out of memory", opt);
        return -1;
    }
    int n = 0;
    const char *p = s;
    for (;;) {
        char *end = NULL;
        errno = 0;
        long v = (*p >= '0' && *p <= '9') ? strtol(p, &end, 10) : 0;
        if (!end || end == p || errno == ERANGE || (*end != ',' && *end != '\0')) {
            cli_error("--%s: '%s' is not 'all' or a comma-separated list of glimpse numbers", opt,
                      s);
            free(g);
            return -1;
        }
        if (v < 1 || v > T) {
            cli_error("--%s: glimpse %ld is outside 1..%d (the model's glimpses)", opt, v, T);
            free(g);
            return -1;
        }
        g[n++] = (int)v;
        if (*end == '\0') break;
        p = end + 1;
    }
    *out = g;
    return n;
}

/* ------------------------------------------------------------------------ */
int cli_image_alloc(cli_image *im, int width, int height, int channels, unsigned char fill) {
    im->px = NULL;
    im->width = width;
    im->height = height;
    im->channels = channels;
    /* PNG and GIF both cap what is sensible far below this */
    if (width < 1 || height < 1 || width > 30000 || height > 30000 || channels < 1) {
        cli_error("picture of %dx%d pixels is too large; use fewer images or a smaller --scale",
                  width, height);
        return -1;
    }
    size_t n = (size_t)width * (size_t)height * (size_t)channels;
    im->px = malloc(n);
    if (!im->px) {
        cli_error("out of memory for a %dx%d picture", width, height);
        return -1;
    }
    memset(im->px, fill, n);
    return 0;
}

void cli_image_free(cli_image *im) {
    free(im->px);
    im->px = NULL;
}

void cli_image_blit(cli_image *im, int x0, int y0, const float *src, int C, int h, int w,
                    int scale) {
    const int colour = C == 3 && im->channels == 3;
    const size_t plane = (size_t)h * (size_t)w;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            unsigned char v[3];
            for (int c = 0; c < 3; c++) {
                float f = src[(colour ? (size_t)c * plane : 0) + (size_t)y * (size_t)w + (size_t)x];
                if (!(f >= 0.0f)) f = 0.0f; /* also NaN */
                if (f > 1.0f) f = 1.0f;
                v[c] = (unsigned char)lrintf(f * 255.0f);
            }
            for (int dy = 0; dy < scale; dy++) {
                int py = y0 + y * scale + dy;
                if (py < 0 || py >= im->height) continue;
                for (int dx = 0; dx < scale; dx++) {
                    int px = x0 + x * scale + dx;
                    if (px < 0 || px >= im->width) continue;
                    unsigned char *p =
                        im->px + ((size_t)py * (size_t)im->width + (size_t)px) * im->channels;
                    for (int c = 0; c < im->channels; c++) p[c] = v[c < 3 ? c : 0];
                }
            }
        }
}

int cli_grid_size(int n_cols, int n_rows, int cell_w, int cell_h, int pad, int *w, int *h) {
    long long ww = (long long)n_cols * (cell_w + pad) + pad;
    long long hh = (long long)n_rows * (cell_h + pad) + pad;
    if (n_cols < 1 || n_rows < 1 || ww > 30000 || hh > 30000) {
        cli_error("a picture of %lldx%lld pixels is too large; use fewer images or a smaller "
                  "--scale",
                  ww, hh);
        return -1;
    }
    *w = (int)ww;
    *h = (int)hh;
    return 0;
}

static void put(cli_image *im, int x, int y, const unsigned char rgb[3]) {
    if (x < 0 || y < 0 || x >= im->width || y >= im->height) return;
    unsigned char *p = im->px + ((size_t)y * (size_t)im->width + (size_t)x) * im->channels;
    if (im->channels >= 3) {
        p[0] = rgb[0];
        p[1] = rgb[1];
        p[2] = rgb[2];
    } else {
        p[0] = (unsigned char)((rgb[0] + rgb[1] + rgb[2]) / 3);
    }
}

void cli_image_rect(cli_image *im, double x0, double y0, double x1, double y1, int bx, int by,
                    int bw, int bh, const unsigned char rgb[3]) {
    if (!(x0 <= x1) || !(y0 <= y1)) return; /* also rejects NaN */
    /* far outside: nothing to draw, and the casts below stay in range */
    if (x1 < -1.0 || y1 < -1.0 || x0 > bw + 1.0 || y0 > bh + 1.0) return;
    if (x0 < -1.0) x0 = -1.0;
    if (y0 < -1.0) y0 = -1.0;
    if (x1 > bw + 1.0) x1 = bw + 1.0;
    if (y1 > bh + 1.0) y1 = bh + 1.0;
    int ix0 = (int)floor(x0), iy0 = (int)floor(y0);
    int ix1 = (int)floor(x1), iy1 = (int)floor(y1);
    /* a window smaller than a pixel still shows as a small box */
    if (ix1 - ix0 < 2) ix1 = ix0 + 2;
    if (iy1 - iy0 < 2) iy1 = iy0 + 2;
    for (int x = ix0; x <= ix1; x++) {
        if (x < 0 || x >= bw) continue;
        if (iy0 >= 0 && iy0 < bh) put(im, bx + x, by + iy0, rgb);
        if (iy1 >= 0 && iy1 < bh) put(im, bx + x, by + iy1, rgb);
    }
    for (int y = iy0; y <= iy1; y++) {
        if (y < 0 || y >= bh) continue;
        if (ix0 >= 0 && ix0 < bw) put(im, bx + ix0, by + y, rgb);
        if (ix1 >= 0 && ix1 < bw) put(im, bx + ix1, by + y, rgb);
    }
}
