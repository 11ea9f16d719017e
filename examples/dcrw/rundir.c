/* The run folder of dcrw train: its files, its lock, run.json and log.csv. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "rundir.h"

const char *const rundir_files[] = {
    "checkpoint.safetensors", "log.csv", "run.json", "losses.svg", ".lock", NULL};

void run_flags_default(run_flags *f) {
    memset(f, 0, sizeof *f);
    snprintf(f->preset, sizeof f->preset, "dcrw");
    f->batch = 100;
    f->lr = 1e-3;
    f->clip = 5.0;
    f->seed = 1;
    f->binarize = DCRW_BINARIZE_DYNAMIC;
    f->valid = 5000;
    f->eval_every = 500;
    f->checkpoint_minutes = 5.0;
    f->progress_seconds = 10.0;
}

int rundir_init(rundir *rd, const char *dir) {
    memset(rd, 0, sizeof *rd);
    rd->lock_fd = -1;
    rd->dir = strdup(dir);
    rd->ckpt = cli_path(dir, "checkpoint.safetensors");
    rd->log_path = cli_path(dir, "log.csv");
    rd->json_path = cli_path(dir, "run.json");
    rd->svg_path = cli_path(dir, "losses.svg");
    rd->lock_path = cli_path(dir, ".lock");
    if (rd->dir && rd->ckpt && rd->log_path && rd->json_path && rd->svg_path && rd->lock_path)
        return 0;
    cli_error("out of memory");
    return -1;
}

void rundir_free(rundir *rd) {
    /* closing the descriptor releases the lock */
    if (rd->lock_fd >= 0) close(rd->lock_fd);
    rd->lock_fd = -1;
    free(rd->dir);
    free(rd->ckpt);
    free(rd->log_path);
    free(rd->json_path);
    free(rd->svg_path);
    free(rd->lock_path);
    rd->dir = rd->ckpt = rd->log_path = rd->json_path = rd->svg_path = rd->lock_path = NULL;
}

int rundir_exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

/* ------------------------------------------------------------------------ */
/* The lock. Its file stays: removing it would let a process that opened it
 * just before lock an inode no one else can see. */

/* The process id the holder wrote into the lock file, 0 if unknown. */
static long lock_holder(int fd) {
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return 0;
    buf[n] = '\0';
    char *end = NULL;
    long pid = strtol(buf, &end, 10);
    return end != buf && pid > 0 ? pid : 0;
}

int rundir_lock(rundir *rd) {
    int fd = open(rd->lock_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0666);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        cli_error("run folder %s: cannot open its lock file %s: %s", rd->dir, rd->lock_path,
                  fd < 0 ? strerror(errno) : "not a regular file");
        if (fd >= 0) close(fd);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            long pid = lock_holder(fd);
            char who[48] = "";
            if (pid) snprintf(who, sizeof who, " (process %ld)", pid);
            cli_error("run folder %s is in use by another dcrw train%s: wait for it to end or "
                      "stop it first",
                      rd->dir, who);
            close(fd);
            return -1;
        }
        /* a file system without locks: train, but say what is not checked */
        fprintf(stderr,
                "dcrw train: warning: cannot lock the run folder %s (%s); a second dcrw train "
                "on it would not be noticed\n",
                rd->dir, strerror(errno));
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        /* only the message of a refused second process would lack the pid */
    }
    rd->lock_fd = fd;
    return 0;
}

/* NAME.tmp.XXXXXX as cli_tmp_open and the library's 0.2 saves make them,
 * .dcrw-XXXXXX as its later saves do: what a write killed mid-way leaves. */
static int is_stale(const char *name) {
    static const char *const ours[] = {"log.csv.tmp.", "run.json.tmp.", "losses.svg.tmp.",
                                       "checkpoint.safetensors.tmp.", ".dcrw-"};
    for (size_t k = 0; k < sizeof ours / sizeof ours[0]; k++) {
        size_t n = strlen(ours[k]);
        if (strncmp(name, ours[k], n) == 0 && strlen(name + n) == 6) return 1;
    }
    return 0;
}

void rundir_remove_stale(const rundir *rd) {
    DIR *d = opendir(rd->dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!is_stale(e->d_name)) continue;
        char *p = cli_path(rd->dir, e->d_name);
        if (p) unlink(p);
        free(p);
    }
    closedir(d);
}

/* ------------------------------------------------------------------------ */
/* run.json: one table of keys drives both the writer and the reader. */

#define RUN_FORMAT 2

typedef enum { J_INT, J_LONG, J_DOUBLE, J_U64, J_PRESET, J_PATH } json_type;

typedef struct json_key {
    const char *name;
    json_type type;
    size_t off;
    double lo, hi;
    int optional;
} json_key;

#define F(field) offsetof(run_flags, field)
static const json_key keys[] = {
    {"preset", J_PRESET, F(preset), 0, 0, 0},
    {"batch", J_LONG, F(batch), 1, RUN_BATCH_MAX, 0},
    {"lr", J_DOUBLE, F(lr), RUN_LR_MIN, RUN_LR_MAX, 0},
    {"lr_halflife", J_DOUBLE, F(lr_halflife), 0, RUN_HALFLIFE_MAX, 1},
    {"kl_warmup", J_LONG, F(kl_warmup), 0, RUN_COUNT_MAX, 1},
    {"lr_warmup", J_LONG, F(lr_warmup), 0, RUN_COUNT_MAX, 1},
    {"precision", J_INT, F(precision), 0, 1, 1},
    {"clip", J_DOUBLE, F(clip), 0, RUN_CLIP_MAX, 0},
    {"seed", J_U64, F(seed), 0, 0, 0},
    {"binarize", J_INT, F(binarize), 0, 2, 0},
    {"valid", J_LONG, F(valid), 0, INT_MAX, 0},
    {"train_n", J_LONG, F(train_n), 0, INT_MAX, 0},
    {"clutter", J_LONG, F(clutter), 0, RUN_CLUTTER_MAX, 1},
    {"data", J_PATH, F(data), 0, 0, 0},
    {"steps", J_U64, F(steps), 0, 0, 0},
    {"epochs", J_LONG, F(epochs), 0, RUN_EPOCHS_MAX, 0},
    {"minutes", J_DOUBLE, F(minutes), 0, RUN_MINUTES_MAX, 0},
    {"eval_every", J_LONG, F(eval_every), 0, RUN_COUNT_MAX, 0},
    {"checkpoint_minutes", J_DOUBLE, F(checkpoint_minutes), 0, RUN_MINUTES_MAX, 0},
    {"progress_seconds", J_DOUBLE, F(progress_seconds), 0, RUN_MINUTES_MAX, 0},
    {"threads", J_LONG, F(threads), 0, CLI_MAX_THREADS, 0},
};
#undef F
#define NKEYS (sizeof keys / sizeof keys[0])

/* The shortest text that reads back as the same double: a resumed run must
 * use the very rate the straight one did. (cJSON's own printer accepts a
 * text within a few ulps, so numbers go in as raw text.) */
static void format_double(char *b, size_t n, double v) {
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(b, n, "%.*g", prec, v);
        if (strtod(b, NULL) == v) break;
    }
}

/* Key @p k of @p r into @p obj; NULL when out of memory. */
static cJSON *add_value(cJSON *obj, const json_key *k, const run_flags *r) {
    const char *p = (const char *)r + k->off;
    char b[48];
    switch (k->type) {
    case J_INT:
        snprintf(b, sizeof b, "%d", *(const int *)p);
        break;
    case J_LONG:
        snprintf(b, sizeof b, "%ld", *(const long *)p);
        break;
    case J_DOUBLE:
        format_double(b, sizeof b, *(const double *)p);
        break;
    case J_U64: {
        /* a JSON number is a double to most readers (cJSON too): exact up
         * to 2^53, a string of digits above */
        uint64_t v = *(const uint64_t *)p;
        snprintf(b, sizeof b, "%llu", (unsigned long long)v);
        if ((double)v >= RUN_COUNT_MAX) return cJSON_AddStringToObject(obj, k->name, b);
        break;
    }
    case J_PRESET:
        return cJSON_AddStringToObject(obj, k->name, p);
    case J_PATH:
        return cJSON_AddStringToObject(obj, k->name, *(char *const *)p ? *(char *const *)p : "");
    }
    return cJSON_AddRawToObject(obj, k->name, b);
}

/* The model a run started from, when it had one. 0, or -1 when out of
 * memory. */
static int add_init(cJSON *root, const run_flags *r) {
    if (!r->init) return 0;
    char n[24], h[24];
    /* a parameter count is far below 2^53: exact as a JSON number */
    snprintf(n, sizeof n, "%llu", (unsigned long long)r->init_params);
    snprintf(h, sizeof h, "%016llx", (unsigned long long)r->init_hash);
    return cJSON_AddStringToObject(root, "init", r->init) &&
                   cJSON_AddRawToObject(root, "init_params", n) &&
                   cJSON_AddStringToObject(root, "init_fnv1a64", h)
               ? 0
               : -1;
}

/* run.json as a cJSON object; NULL when out of memory. */
static cJSON *flags_json(const run_flags *r) {
    cJSON *root = cJSON_CreateObject();
    int ok = root && cJSON_AddNumberToObject(root, "format", RUN_FORMAT);
    for (size_t i = 0; ok && i < NKEYS; i++) {
        ok = add_value(root, &keys[i], r) != NULL;
        /* the fields that differ from the preset, right after it, then the
         * model the run started from, which they describe */
        if (ok && i == 0) {
            cJSON *set = cJSON_AddObjectToObject(root, "set");
            ok = set != NULL;
            for (int j = 0; ok && j < r->nset; j++)
                ok = cJSON_AddStringToObject(set, r->sets[j].name, r->sets[j].value) != NULL;
            ok = ok && add_init(root, r) == 0;
        }
    }
    if (ok) return root;
    cJSON_Delete(root);
    return NULL;
}

static int write_flags(FILE *f, void *ctx) {
    cJSON *root = flags_json(ctx);
    char *text = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text) {
        cli_error("out of memory");
        return -1;
    }
    /* cJSON indents with tabs; a tab in a value is escaped, so every tab
     * is layout: two spaces at the start of a line, one after a colon */
    for (const char *p = text; *p; p++)
        if (*p != '\t')
            fputc(*p, f);
        else
            fputs(p > text && p[-1] == ':' ? " " : "  ", f);
    fputc('\n', f);
    cJSON_free(text);
    return 0;
}

int rundir_write_flags(const rundir *rd, const run_flags *f) {
    return cli_write_atomic(rd->json_path, write_flags, (void *)f);
}

/* An integer-valued number in [lo, hi], or (for J_U64) a string of digits. */
static int get_number(const cJSON *v, const json_key *k, double *out, uint64_t *u) {
    if (k->type == J_U64 && cJSON_IsString(v)) {
        const char *s = v->valuestring;
        char *end = NULL;
        if (*s < '0' || *s > '9') return -1;
        errno = 0;
        unsigned long long x = strtoull(s, &end, 10);
        if (*end || errno) return -1;
        *u = x;
        return 0;
    }
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!isfinite(d)) return -1;
    if (k->type == J_DOUBLE) {
        if (d < k->lo || d > k->hi) return -1;
    } else {
        double hi = k->type == J_U64 ? RUN_COUNT_MAX : k->hi;
        if (d != floor(d) || d < k->lo || d > hi) return -1;
    }
    *out = d;
    *u = k->type == J_U64 ? (uint64_t)d : 0;
    return 0;
}

static int get_string(const cJSON *v, const json_key *k, run_flags *r) {
    char *p = (char *)r + k->off;
    if (!cJSON_IsString(v) || !*v->valuestring) return -1;
    if (k->type == J_PRESET) {
        if (strlen(v->valuestring) >= sizeof r->preset) return -1;
        strcpy(p, v->valuestring);
        return 0;
    }
    char *s = strdup(v->valuestring);
    if (!s) return -1;
    free(*(char **)p);
    *(char **)p = s;
    return 0;
}

static int get_value(const cJSON *v, const json_key *k, run_flags *r) {
    if (k->type == J_PRESET || k->type == J_PATH) return get_string(v, k, r);
    char *p = (char *)r + k->off;
    double d = 0;
    uint64_t u = 0;
    if (get_number(v, k, &d, &u) != 0) return -1;
    switch (k->type) {
    case J_INT:
        *(int *)p = (int)d;
        break;
    case J_LONG:
        *(long *)p = (long)d;
        break;
    case J_DOUBLE:
        *(double *)p = d;
        break;
    default:
        *(uint64_t *)p = u;
        break;
    }
    return 0;
}

/* The one member named @p name; *twice when there are several. */
static const cJSON *member(const cJSON *obj, const char *name, int *twice) {
    const cJSON *found = NULL;
    for (const cJSON *c = obj->child; c; c = c->next)
        if (c->string && strcmp(c->string, name) == 0) {
            if (found) *twice = 1;
            found = c;
        }
    return found;
}

/* What went wrong where, for the message. */
typedef struct json_fault {
    const char *key, *why;
} json_fault;

static int fault(json_fault *e, const char *key, const char *why) {
    e->key = key;
    e->why = why;
    return -1;
}

/* "set" of format 2: an object of distinct names with string values. */
static int get_sets(const cJSON *set, run_flags *r, json_fault *e) {
    r->nset = 0;
    if (!cJSON_IsObject(set)) return fault(e, "set", "is not an object");
    for (const cJSON *c = set->child; c; c = c->next) {
        int twice = 0;
        member(set, c->string, &twice);
        if (twice) return fault(e, "set", "names a field twice");
        if (r->nset == RUN_SETS_MAX || !cJSON_IsString(c) ||
            strlen(c->string) >= sizeof r->sets[0].name ||
            strlen(c->valuestring) >= sizeof r->sets[0].value)
            return fault(e, "set", "has a value of the wrong type or too long");
        strcpy(r->sets[r->nset].name, c->string);
        strcpy(r->sets[r->nset].value, c->valuestring);
        r->nset++;
    }
    return 0;
}

/* The keys of @p table into @p r. */
static int get_keys(const cJSON *root, const json_key *table, size_t n, run_flags *r,
                    json_fault *e) {
    for (size_t i = 0; i < n; i++) {
        int twice = 0;
        const cJSON *v = member(root, table[i].name, &twice);
        if (twice) return fault(e, table[i].name, "is given twice");
        if (!v && table[i].optional) continue;
        if (!v) return fault(e, table[i].name, "is missing");
        if (get_value(v, &table[i], r) != 0)
            return fault(e, table[i].name, "has a value of the wrong type or out of range");
    }
    return 0;
}

/* The configuration's fields as format 1 (dcrw 0.1 and 0.2) recorded them,
 * all of them numbers: a frozen list, since that format will not change. */
static const char *const format1_fields[] = {
    "channels", "height",         "width",           "glimpses", "enc_size",
    "dec_size", "z_size",         "read_n",          "write_n",  "conv1",
    "conv2",    "read_attention", "write_attention", "encoder",  "canvas_init"};

/* Format 1's configuration into r->cfg, each number through the library's
 * dcrw_config_set() as the text of its value. */
static int get_config(const cJSON *root, run_flags *r, json_fault *e) {
    dcrw_preset p = DCRW_PRESET_DCRW;
    dcrw_preset_from_name(r->preset, &p);
    dcrw_config_preset(&r->cfg, p);
    for (size_t i = 0; i < sizeof format1_fields / sizeof format1_fields[0]; i++) {
        const char *name = format1_fields[i];
        int twice = 0;
        const cJSON *v = member(root, name, &twice);
        if (twice) return fault(e, name, "is given twice");
        if (!v) return fault(e, name, "is missing");
        char text[48];
        if (cJSON_IsNumber(v) && isfinite(v->valuedouble))
            format_double(text, sizeof text, v->valuedouble);
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) ||
            dcrw_config_set(&r->cfg, name, text) != DCRW_OK)
            return fault(e, name, "has a value of the wrong type or out of range");
    }
    r->cfg_given = 1;
    return 0;
}

/* "init", "init_params" and "init_fnv1a64": all three or none. */
static int get_init(const cJSON *root, run_flags *r, json_fault *e) {
    static const char *const names[3] = {"init", "init_params", "init_fnv1a64"};
    const cJSON *v[3];
    int given = 0;
    for (int k = 0; k < 3; k++) {
        int twice = 0;
        v[k] = member(root, names[k], &twice);
        if (twice) return fault(e, names[k], "is given twice");
        given += v[k] != NULL;
    }
    free(r->init);
    r->init = NULL;
    if (given == 0) return 0;
    for (int k = 0; k < 3; k++)
        if (!v[k])
            return fault(e, names[k], "is missing (the run has \"init\" or another of its keys)");
    if (!cJSON_IsString(v[0]) || !*v[0]->valuestring)
        return fault(e, "init", "is not the path of a model file");
    double n = cJSON_IsNumber(v[1]) ? v[1]->valuedouble : -1;
    if (!(n >= 1 && n < RUN_COUNT_MAX && n == floor(n)))
        return fault(e, "init_params", "is not a count of parameters");
    const char *h = cJSON_IsString(v[2]) ? v[2]->valuestring : "";
    char *end = NULL;
    errno = 0;
    unsigned long long hash = strtoull(h, &end, 16);
    if (strlen(h) != 16 || strspn(h, "0123456789abcdef") != 16 || *end || errno)
        return fault(e, "init_fnv1a64", "is not 16 lower-case hexadecimal digits");
    r->init = strdup(v[0]->valuestring);
    if (!r->init) return fault(e, "init", "cannot be held (out of memory)");
    r->init_params = (uint64_t)n;
    r->init_hash = hash;
    return 0;
}

/* Every key into @p r; the first bad one in *e. */
static int get_flags(const cJSON *root, run_flags *r, json_fault *e) {
    int twice = 0;
    const cJSON *fmt = member(root, "format", &twice);
    int format = fmt && !twice && cJSON_IsNumber(fmt) ? (int)fmt->valuedouble : 0;
    if (!fmt || (format != 1 && format != 2) || fmt->valuedouble != format)
        return fault(e, "format", fmt ? "is not 1 or 2" : "is missing");
    if (get_keys(root, keys, NKEYS, r, e) != 0 || get_init(root, r, e) != 0) return -1;
    const cJSON *set = member(root, "set", &twice);
    if (format == 1)
        return set ? fault(e, "set", "is not part of format 1") : get_config(root, r, e);
    if (twice) return fault(e, "set", "is given twice");
    if (!set) return fault(e, "set", "is missing");
    return get_sets(set, r, e);
}

int rundir_read_flags(const rundir *rd, run_flags *f) {
    size_t len = 0;
    char *text = cli_read_file(rd->json_path, &len);
    if (!text) return -1;
    json_fault e = {NULL, "is not a JSON object"};
    cJSON *root = NULL;
    /* a NUL inside would end the text cJSON sees early */
    if (strlen(text) == len) root = cJSON_ParseWithOpts(text, NULL, 1);
    /* absent from the runs of dcrw 0.1.0, which had a constant rate */
    f->lr_halflife = 0;
    /* absent before 0.4, which had no KL warm-up and float32 alone */
    f->kl_warmup = 0;
    f->precision = DCRW_PRECISION_FLOAT32;
    /* absent before 0.6.3, which had no warm-up of the rate */
    f->lr_warmup = 0;
    /* absent before 0.6, which had no fresh canvases */
    f->clutter = 0;
    f->cfg_given = 0;
    f->nset = 0;
    int rc = root && cJSON_IsObject(root) ? get_flags(root, f, &e) : -1;
    cJSON_Delete(root);
    free(text);
    if (rc != 0 && e.key)
        cli_error("%s: malformed or incomplete run file: \"%s\" %s (was it written by dcrw "
                  "train?)",
                  rd->json_path, e.key, e.why);
    else if (rc != 0)
        cli_error("%s: malformed run file: %s (was it written by dcrw train?)", rd->json_path,
                  e.why);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* log.csv: one row per step; rows beyond the checkpoint are dropped on
 * --resume, since those steps are about to be made again. */

#define LOG_HEADER "step,wall_s,lx,lz,loss,images_per_s,valid_bound\n"

typedef struct log_keep {
    const char *text;
    uint64_t upto;
    double last_wall;
} log_keep;

static int write_log_kept(FILE *f, void *ctx) {
    log_keep *k = ctx;
    fputs(LOG_HEADER, f);
    k->last_wall = 0.0;
    if (!k->text) return 0;
    const char *p = strchr(k->text, '\n');
    while (p && *++p) {
        const char *e = strchr(p, '\n');
        if (!e) break; /* a row cut short by a crash */
        char *end = NULL;
        errno = 0;
        unsigned long long step = strtoull(p, &end, 10);
        if (end != p && *end == ',' && !errno && step <= k->upto) {
            double w = strtod(end + 1, NULL);
            if (isfinite(w)) k->last_wall = w;
            fwrite(p, 1, (size_t)(e - p) + 1, f);
        }
        p = e;
    }
    return 0;
}

int rundir_keep_log(const rundir *rd, uint64_t upto, double *last_wall) {
    char *text = NULL;
    if (rundir_exists(rd->log_path) && !(text = cli_read_file(rd->log_path, NULL))) return -1;
    log_keep k = {text, upto, 0.0};
    int rc = cli_write_atomic(rd->log_path, write_log_kept, &k);
    free(text);
    *last_wall = k.last_wall;
    return rc;
}

FILE *rundir_append_log(const rundir *rd) {
    FILE *log = fopen(rd->log_path, "a");
    if (!log) cli_error("%s: %s", rd->log_path, strerror(errno));
    return log;
}

void rundir_log_step(FILE *log, uint64_t step, double wall, const dcrw_loss *l, double ips,
                     double bound) {
    fprintf(log, "%llu,%.3f,%.6f,%.6f,%.6f,%.1f,", (unsigned long long)step, wall, l->lx, l->lz,
            l->loss, ips);
    if (isfinite(bound)) fprintf(log, "%.6f", bound);
    fputc('\n', log);
}

void rundir_log_bound(FILE *log, uint64_t step, double wall, double bound) {
    fprintf(log, "%llu,%.3f,,,,,%.6f\n", (unsigned long long)step, wall, bound);
}
