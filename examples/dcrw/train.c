/* dcrw train: the training loop, its run folder and its resumption.
 *
 * A run is a pure function of (seed, flags): the batch of step s is the
 * slice s % S of the permutation of epoch s / S (S steps per epoch), drawn
 * from (seed, epoch); the binarization of step s is keyed by (seed, s); the
 * noise comes from the trainer, keyed by its seed and step count. So the
 * checkpoint's step count is all the state there is besides the trainer,
 * and --resume continues bit for bit.
 *
 * Under mpirun (dist.h) every process trains the same model on its share of
 * each global batch: process r of K takes the contiguous images
 * [r·(B/K) + min(r, B%K), +B/K + (r < B%K)), the first B%K processes one
 * more, which is how the library splits a batch among threads, so K
 * processes of one thread reproduce one process of K threads. The gradients
 * are summed across the processes once per step and every process applies
 * the same update; process 0 alone writes the run folder, evaluates and
 * prints, and decides when to stop. The checkpoint holds nothing that
 * depends on K. */
/* realpath() and SA_RESETHAND are XSI */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "dist.h"

#define BINARIZE_KEY 0x62696e6172697a65ull /* keeps the step keys apart from others */
#define EPOCH_KEY 0x65706f6368730000ull

typedef struct run_flags {
    char preset[32];
    dcrw_config cfg;
    long batch;
    double lr, lr_halflife, clip;
    uint64_t seed;
    long threads;
    int binarize;
    long valid, train_n;
    char *data;
    uint64_t steps;
    long epochs;
    double minutes;
    long eval_every;
    double checkpoint_minutes, progress_seconds;
} run_flags;

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int sig) {
    stop_requested = sig;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: dcrw train --preset NAME --data DIR --out RUNDIR BUDGET [OPTIONS]\n"
            "       dcrw train --resume RUNDIR [BUDGET] [--threads N] [--data DIR]\n"
            "\n"
            "Train a model on DIR/train-images-idx3-ubyte (MNIST). RUNDIR receives\n"
            "checkpoint.safetensors (model + Adam state), log.csv, run.json (the flags)\n"
            "and losses.svg. Ctrl-C or SIGTERM finishes the current step, saves and\n"
            "exits 0; --resume RUNDIR then continues bit for bit.\n"
            "\n"
            "'mpirun -n K dcrw train ...' with the same flags trains one model on K\n"
            "processes (each takes a share of every batch; see doc/DISTRIBUTED.md); give\n"
            "--threads per process. %s\n"
            "\n"
            "Budget (at least one; training stops at the first reached):\n"
            "  --steps N            until the run has made N optimizer steps in all\n"
            "  --epochs N           until the run has made N passes over its images\n"
            "  --minutes M          for M minutes of this invocation\n"
            "Model and optimizer:\n"
            "  --preset NAME        draw, draw-noattn, dcrw (default), dcrw-noread\n"
            "  --set FIELD=VALUE    change a configuration field (repeatable): glimpses,\n"
            "                       enc_size, dec_size, z_size, read_n, write_n, conv1,\n"
            "                       conv2, encoder (lstm|cnn), read_attention,\n"
            "                       write_attention (0|1), canvas_init, height, width\n"
            "  --batch B            images per step (default 100)\n"
            "  --lr X               Adam learning rate (default 0.001)\n"
            "  --lr-halflife N      decay the rate smoothly, halving it every N steps:\n"
            "                       X * 2^(-step/N) (default 0: constant)\n"
            "  --clip X             gradient-norm clip, 0 = off (default 5)\n"
            "  --seed N             initialisation, batches, binarization, noise (default 1)\n"
            "  --threads N          threads for the BLAS and the library (0 = default); the\n"
            "                       batch is split by thread, so resuming with another N\n"
            "                       matches the straight run only to float rounding\n"
            "Data:\n"
            "  --data DIR           folder with the four MNIST IDX files\n"
            "  --binarize MODE      dynamic (default; fresh bits every step), threshold, none\n"
            "  --valid N            hold out the last N training images for the periodic\n"
            "                       evaluation (default 5000; 0: train on all, no evaluation)\n"
            "  --train-n N          train on the first N images only (default: all the rest)\n"
            "Reporting:\n"
            "  --eval-every N       held-out bound every N steps and at the end (default 500)\n"
            "  --checkpoint-minutes M  save every M minutes (default 5) and at the end\n"
            "  --progress-seconds S    progress line every S seconds when stdout is not a\n"
            "                       terminal (default 10); a terminal gets a live line\n",
            dist_available() ? "This build has MPI." : "This build has no MPI.");
}

enum {
    O_HELP = 1,
    O_PRESET,
    O_DATA,
    O_OUT,
    O_RESUME,
    O_STEPS,
    O_EPOCHS,
    O_MINUTES,
    O_BATCH,
    O_LR,
    O_LR_HALFLIFE,
    O_CLIP,
    O_SEED,
    O_THREADS,
    O_BINARIZE,
    O_SET,
    O_VALID,
    O_TRAIN_N,
    O_EVAL_EVERY,
    O_CKPT_MIN,
    O_PROGRESS
};

static const cli_opt opts[] = {{"help", 0, O_HELP},
                               {"preset", 1, O_PRESET},
                               {"data", 1, O_DATA},
                               {"out", 1, O_OUT},
                               {"resume", 1, O_RESUME},
                               {"steps", 1, O_STEPS},
                               {"epochs", 1, O_EPOCHS},
                               {"minutes", 1, O_MINUTES},
                               {"batch", 1, O_BATCH},
                               {"lr", 1, O_LR},
                               {"lr-halflife", 1, O_LR_HALFLIFE},
                               {"clip", 1, O_CLIP},
                               {"seed", 1, O_SEED},
                               {"threads", 1, O_THREADS},
                               {"binarize", 1, O_BINARIZE},
                               {"set", 1, O_SET},
                               {"valid", 1, O_VALID},
                               {"train-n", 1, O_TRAIN_N},
                               {"eval-every", 1, O_EVAL_EVERY},
                               {"checkpoint-minutes", 1, O_CKPT_MIN},
                               {"progress-seconds", 1, O_PROGRESS},
                               {NULL, 0, 0}};

/* ------------------------------------------------------------------------ */
/* run.json: the flags of a run, written by us and read back on --resume. */

static void put_json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static int write_run_json(FILE *f, void *ctx) {
    const run_flags *r = ctx;
    const dcrw_config *c = &r->cfg;
    fprintf(f, "{\n  \"format\": 1,\n  \"preset\": ");
    put_json_string(f, r->preset);
    fprintf(f,
            ",\n  \"channels\": %d,\n  \"height\": %d,\n  \"width\": %d,\n  \"glimpses\": %d,\n"
            "  \"enc_size\": %d,\n  \"dec_size\": %d,\n  \"z_size\": %d,\n  \"read_n\": %d,\n"
            "  \"write_n\": %d,\n  \"conv1\": %d,\n  \"conv2\": %d,\n  \"encoder\": %d,\n"
            "  \"read_attention\": %d,\n  \"write_attention\": %d,\n  \"canvas_init\": %.9g,\n",
            c->channels, c->height, c->width, c->glimpses, c->enc_size, c->dec_size, c->z_size,
            c->read_n, c->write_n, c->conv1, c->conv2, c->encoder, c->read_attention,
            c->write_attention, (double)c->canvas_init);
    fprintf(f,
            "  \"batch\": %ld,\n  \"lr\": %.9g,\n  \"lr_halflife\": %.9g,\n  \"clip\": %.9g,\n"
            "  \"seed\": %llu,\n  \"binarize\": %d,\n  \"valid\": %ld,\n  \"train_n\": %ld,\n"
            "  \"data\": ",
            r->batch, r->lr, r->lr_halflife, r->clip, (unsigned long long)r->seed, r->binarize,
            r->valid, r->train_n);
    put_json_string(f, r->data);
    fprintf(f,
            ",\n  \"steps\": %llu,\n  \"epochs\": %ld,\n  \"minutes\": %.9g,\n"
            "  \"eval_every\": %ld,\n  \"checkpoint_minutes\": %.9g,\n"
            "  \"progress_seconds\": %.9g,\n  \"threads\": %ld\n}\n",
            (unsigned long long)r->steps, r->epochs, r->minutes, r->eval_every,
            r->checkpoint_minutes, r->progress_seconds, r->threads);
    return 0;
}

/* A flat JSON object of strings and numbers: find @p key at the top level
 * and copy its value (unescaped for a string) into buf. 1 found, 0 not
 * found, -1 malformed. */
static int json_skip_ws(const char **p) {
    while (**p == ' ' || **p == '\n' || **p == '\t' || **p == '\r') (*p)++;
    return 0;
}

static int json_string(const char **p, char *buf, size_t cap) {
    size_t n = 0;
    if (**p != '"') return -1;
    (*p)++;
    for (;;) {
        unsigned char ch = (unsigned char)**p;
        if (ch == '\0' || ch < 0x20) return -1;
        (*p)++;
        if (ch == '"') break;
        if (ch == '\\') {
            char e = **p;
            (*p)++;
            if (e == '"' || e == '\\' || e == '/')
                ch = (unsigned char)e;
            else if (e == 'n')
                ch = '\n';
            else if (e == 't')
                ch = '\t';
            else if (e == 'u') {
                unsigned v = 0;
                for (int k = 0; k < 4; k++) {
                    char h = **p;
                    (*p)++;
                    v <<= 4;
                    if (h >= '0' && h <= '9')
                        v |= (unsigned)(h - '0');
                    else if (h >= 'a' && h <= 'f')
                        v |= (unsigned)(h - 'a' + 10);
                    else if (h >= 'A' && h <= 'F')
                        v |= (unsigned)(h - 'A' + 10);
                    else
                        return -1;
                }
                if (v == 0 || v > 0x7f) return -1; /* we only ever escape ASCII */
                ch = (unsigned char)v;
            } else
                return -1;
        }
        if (buf) {
            if (n + 1 >= cap) return -1;
            buf[n++] = (char)ch;
        }
    }
    if (buf) buf[n] = '\0';
    return 0;
}

static int json_get(const char *text, const char *key, char *buf, size_t cap) {
    const char *p = text;
    char name[64];
    json_skip_ws(&p);
    if (*p++ != '{') return -1;
    for (;;) {
        json_skip_ws(&p);
        if (*p == '}') return 0;
        if (json_string(&p, name, sizeof name) != 0) return -1;
        json_skip_ws(&p);
        if (*p++ != ':') return -1;
        json_skip_ws(&p);
        int match = strcmp(name, key) == 0;
        if (*p == '"') {
            if (json_string(&p, match ? buf : NULL, cap) != 0) return -1;
        } else {
            const char *s = p;
            while (*p && strchr("0123456789+-.eE", *p)) p++;
            size_t n = (size_t)(p - s);
            if (n == 0) return -1;
            if (match) {
                if (n >= cap) return -1;
                memcpy(buf, s, n);
                buf[n] = '\0';
            }
        }
        if (match) return 1;
        json_skip_ws(&p);
        if (*p == ',')
            p++;
        else if (*p != '}')
            return -1;
    }
}

static int read_run_json(const char *path, run_flags *r) {
    size_t len = 0;
    char *text = cli_read_file(path, &len);
    if (!text) return -1;
    char v[4096];
    int bad = 0;
/* HAVE: the key is there (or the file is malformed, which GET then reports);
 * GET: the key must be there */
#define HAVE(key) (json_get(text, key, v, sizeof v) != 0)
#define GET(key) (json_get(text, key, v, sizeof v) == 1 ? 1 : (bad = bad ? bad : 1, 0))
#define GET_LONG(key, dst, lo, hi)                                                                 \
    do {                                                                                           \
        if (GET(key)) {                                                                            \
            char *e_ = NULL;                                                                       \
            errno = 0;                                                                             \
            long x_ = strtol(v, &e_, 10);                                                          \
            if (*e_ || e_ == v || errno || x_ < (lo) || x_ > (hi))                                 \
                bad = 1;                                                                           \
            else                                                                                   \
                (dst) = x_;                                                                        \
        }                                                                                          \
    } while (0)
#define GET_DOUBLE(key, dst)                                                                       \
    do {                                                                                           \
        if (GET(key)) {                                                                            \
            char *e_ = NULL;                                                                       \
            double x_ = strtod(v, &e_);                                                            \
            if (*e_ || e_ == v || !isfinite(x_))                                                   \
                bad = 1;                                                                           \
            else                                                                                   \
                (dst) = x_;                                                                        \
        }                                                                                          \
    } while (0)
    long fmt = 0;
    GET_LONG("format", fmt, 1, 1);
    (void)fmt;
    if (GET("preset")) {
        if (strlen(v) >= sizeof r->preset)
            bad = 1;
        else
            memcpy(r->preset, v, strlen(v) + 1);
    }
    long iv = 0;
    dcrw_config *c = &r->cfg;
    c->size = sizeof *c;
#define CFG_INT(name)                                                                              \
    do {                                                                                           \
        iv = 0;                                                                                    \
        GET_LONG(#name, iv, INT32_MIN, INT32_MAX);                                                 \
        c->name = (int32_t)iv;                                                                     \
    } while (0)
    CFG_INT(channels);
    CFG_INT(height);
    CFG_INT(width);
    CFG_INT(glimpses);
    CFG_INT(enc_size);
    CFG_INT(dec_size);
    CFG_INT(z_size);
    CFG_INT(read_n);
    CFG_INT(write_n);
    CFG_INT(conv1);
    CFG_INT(conv2);
    CFG_INT(encoder);
    CFG_INT(read_attention);
    CFG_INT(write_attention);
    double d = 0;
    GET_DOUBLE("canvas_init", d);
    c->canvas_init = (float)d;
    GET_LONG("batch", r->batch, 1, INT_MAX);
    GET_DOUBLE("lr", r->lr);
    /* absent from the runs of dcrw 0.1.0, which had a constant rate */
    r->lr_halflife = 0;
    if (HAVE("lr_halflife")) GET_DOUBLE("lr_halflife", r->lr_halflife);
    if (!(r->lr_halflife >= 0)) bad = 1;
    GET_DOUBLE("clip", r->clip);
    if (GET("seed") && cli_parse_u64("seed", v, &r->seed) != 0) bad = 2;
    long b = 0;
    GET_LONG("binarize", b, 0, 2);
    r->binarize = (int)b;
    GET_LONG("valid", r->valid, 0, LONG_MAX);
    GET_LONG("train_n", r->train_n, 0, LONG_MAX);
    if (GET("data")) {
        free(r->data);
        r->data = strdup(v);
        if (!r->data) bad = 1;
    }
    if (GET("steps") && cli_parse_u64("steps", v, &r->steps) != 0) bad = 2;
    GET_LONG("epochs", r->epochs, 0, LONG_MAX);
    GET_DOUBLE("minutes", r->minutes);
    GET_LONG("eval_every", r->eval_every, 0, LONG_MAX);
    GET_DOUBLE("checkpoint_minutes", r->checkpoint_minutes);
    GET_DOUBLE("progress_seconds", r->progress_seconds);
    GET_LONG("threads", r->threads, 0, 4096);
#undef HAVE
#undef GET
#undef GET_LONG
#undef GET_DOUBLE
#undef CFG_INT
    free(text);
    if (bad) {
        cli_error("%s: malformed or incomplete run file (was it written by dcrw train?)", path);
        return -1;
    }
    return 0;
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

/* ------------------------------------------------------------------------ */

typedef struct held_out {
    const dcrw_dataset *d;
    size_t first, n;
    int binarize;
} held_out;

/* The bound on held-out images with fixed binarization and noise, so that
 * two evaluations differ only through the model. */
static int held_out_bound(const dcrw_model *m, const held_out *h, double *out) {
    dcrw_sizes sz = {.size = sizeof sz};
    dcrw_model_sizes(m, &sz);
    const int B = 100;
    size_t P = sz.input;
    float *x = malloc((size_t)B * P * sizeof *x);
    float *eps = malloc((size_t)B * sz.glimpses * sz.z * sizeof *eps);
    size_t *idx = malloc((size_t)B * sizeof *idx);
    double *lx = malloc((size_t)B * sizeof *lx), *lz = malloc((size_t)B * sizeof *lz);
    int rc = (x && eps && idx && lx && lz) ? DCRW_OK : DCRW_ENOMEM;
    double sum = 0.0;
    for (size_t i = 0; rc == DCRW_OK && i < h->n; i += (size_t)B) {
        int nb = (int)(h->n - i < (size_t)B ? h->n - i : (size_t)B);
        for (int b = 0; b < nb; b++) idx[b] = h->first + i + (size_t)b;
        rc = dcrw_dataset_batch(h->d, idx, nb, h->binarize, CLI_EVAL_BINARIZE_SEED, x);
        if (rc != DCRW_OK) break;
        cli_fill_eps(eps, CLI_EVAL_NOISE_SEED, h->first + i, nb, sz.glimpses, sz.z);
        rc = dcrw_evaluate_images(m, nb, x, eps, lx, lz);
        for (int b = 0; rc == DCRW_OK && b < nb; b++) sum += lx[b] + lz[b];
    }
    if (rc != DCRW_OK) cli_lib_error(rc, "held-out evaluation failed");
    free(x);
    free(eps);
    free(idx);
    free(lx);
    free(lz);
    *out = h->n ? sum / (double)h->n : NAN;
    return rc;
}

static void fmt_duration(char *buf, size_t n, double s) {
    if (!(s >= 0.0) || s > 1e8) {
        snprintf(buf, n, "?");
        return;
    }
    long t = lrint(s);
    if (t >= 3600)
        snprintf(buf, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else if (t >= 60)
        snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(buf, n, "%lds", t);
}

/* ------------------------------------------------------------------------ */

typedef struct trainer_run {
    run_flags f;
    char *dir, *ckpt, *log_path, *json_path, *svg_path;
    int resume;
} trainer_run;

static int make_run_dir(const char *dir) {
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            cli_error("--out %s: exists and is not a folder", dir);
            return -1;
        }
        return 0;
    }
    if (mkdir(dir, 0777) != 0) {
        cli_error("--out %s: cannot create the folder: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* 1 when every process passes ok = 1; a collective call */
static int all_ok(int ok) {
    double v = ok ? 1.0 : 0.0;
    dist_allreduce_sum_doubles(&v, 1);
    return v == (double)dist_size();
}

/* This process's share of a global batch of B: see the top of the file. */
static void batch_share(int B, int *first, int *count) {
    const int K = dist_size(), r = dist_rank();
    *first = r * (B / K) + (r < B % K ? r : B % K);
    *count = B / K + (r < B % K);
}

static int train_loop(trainer_run *tr, dcrw_model *m, dcrw_trainer *t, const dcrw_dataset *train,
                      size_t ntrain, const held_out *valid, FILE *log, double wall_offset) {
    run_flags *f = &tr->f;
    const int B = (int)f->batch;
    const int K = dist_size(), lead = dist_rank() == 0;
    int off, Bp;
    batch_share(B, &off, &Bp);
    const uint64_t spe = ntrain / (uint64_t)B;
    size_t P = dcrw_model_input_size(m);
    size_t *perm = malloc(ntrain * sizeof *perm);
    float *x = malloc((size_t)Bp * P * sizeof *x);
    if (!perm || !x) cli_error("out of memory for %zu training images", ntrain);
    if (!all_ok(perm && x)) {
        free(perm);
        free(x);
        return CLI_FAIL;
    }
    size_t ngrad = 0;
    float *grads = dcrw_trainer_grads(t, &ngrad);
    uint64_t target = UINT64_MAX;
    if (f->steps) target = f->steps;
    if (f->epochs && (uint64_t)f->epochs <= UINT64_MAX / spe && (uint64_t)f->epochs * spe < target)
        target = (uint64_t)f->epochs * spe;
    const double start = cli_now();
    const double deadline = f->minutes > 0 ? start + 60.0 * f->minutes : INFINITY;
    /* mpirun hands process 0 a pseudo-terminal even when its own output
     * goes to a file: no live line under it */
    const int tty = lead && !dist_launched() && isatty(1);
    double last_ckpt = start, last_print = -INFINITY, train_time = 0.0;
    double win_lx = 0, win_lz = 0, win_time = 0;
    long win_steps = 0;
    int printed_tty = 0, status = CLI_OK, valid_done_at_end = 0;
    uint64_t cur_epoch = UINT64_MAX, first = dcrw_trainer_step_count(t);
    double last_valid = NAN;

    for (;;) {
        uint64_t s = dcrw_trainer_step_count(t);
        /* the clock and the signals are process 0's: one decision for all */
        int stop = s >= target || status != CLI_OK || cli_now() >= deadline || stop_requested;
        dist_bcast(&stop, sizeof stop);
        if (stop) break;
        uint64_t epoch = s / spe, pos = s % spe;
        if (epoch != cur_epoch) {
            cli_permutation(perm, ntrain, cli_key(f->seed ^ EPOCH_KEY, epoch));
            cur_epoch = epoch;
        }
        /* binarization is keyed by the image, so gathering a share gives
         * the bits the whole batch would have */
        int rc = dcrw_dataset_batch(train, perm + pos * (uint64_t)B + (uint64_t)off, Bp,
                                    f->binarize, cli_key(f->seed ^ BINARIZE_KEY, s), x);
        double t0 = cli_now();
        dcrw_loss loss = {0};
        if (rc == DCRW_OK) rc = dcrw_trainer_backward_part(t, Bp, x, NULL, off, B, &loss);
        int failed_here = rc != DCRW_OK, failed_elsewhere = 0;
        if (failed_here) {
            if (tty && printed_tty) putchar('\n');
            cli_lib_error(rc, "training step %llu failed%s", (unsigned long long)s + 1,
                          rc == DCRW_ENUMERIC ? " (the loss diverged; try a smaller --lr or "
                                                "--clip)"
                                              : "");
        }
        if (K > 1) {
            /* the sums of the part means weighted by part size are the
             * global batch sums; a failure anywhere travels with them */
            double sums[3] = {loss.lx * Bp, loss.lz * Bp, failed_here};
            if (failed_here) sums[0] = sums[1] = 0.0;
            dist_allreduce_sum_floats(grads, ngrad);
            dist_allreduce_sum_doubles(sums, 3);
            loss.lx = sums[0] / B;
            loss.lz = sums[1] / B;
            loss.loss = loss.lx + loss.lz;
            failed_elsewhere = !failed_here && sums[2] > 0;
            if (failed_elsewhere && lead) {
                if (tty && printed_tty) putchar('\n');
                cli_error("training step %llu failed in another process (its message is above)",
                          (unsigned long long)s + 1);
            }
        }
        if (failed_here || failed_elsewhere) {
            status = CLI_FAIL;
            break;
        }
        /* a pure function of the step count, so a resumed run decays alike */
        if (f->lr_halflife > 0)
            dcrw_trainer_set_learning_rate(
                t, (float)fmax(f->lr * exp2(-(double)s / f->lr_halflife), (double)FLT_MIN));
        /* the summed gradients are the same everywhere, so is this outcome */
        rc = dcrw_trainer_apply(t);
        double dt = cli_now() - t0;
        if (rc != DCRW_OK) {
            if (lead) {
                if (tty && printed_tty) putchar('\n');
                cli_lib_error(rc,
                              "training step %llu failed (the loss diverged; try a smaller "
                              "--lr or --clip)",
                              (unsigned long long)s + 1);
            }
            status = CLI_FAIL;
            break;
        }
        train_time += dt;
        s++;
        if (!lead) continue;
        win_lx += loss.lx;
        win_lz += loss.lz;
        win_time += dt;
        win_steps++;
        double vb = NAN;
        if (valid->n && f->eval_every && s % (uint64_t)f->eval_every == 0) {
            if (held_out_bound(m, valid, &vb) != DCRW_OK) {
                status = CLI_FAIL;
                continue; /* to tell the others */
            }
            last_valid = vb;
            valid_done_at_end = 1;
        } else {
            valid_done_at_end = 0;
        }
        double now = cli_now();
        fprintf(log, "%llu,%.3f,%.6f,%.6f,%.6f,%.1f,", (unsigned long long)s,
                wall_offset + (now - start), loss.lx, loss.lz, loss.loss, dt > 0 ? B / dt : 0.0);
        if (!isnan(vb)) fprintf(log, "%.6f", vb);
        fputc('\n', log);

        double interval = tty ? 0.25 : f->progress_seconds;
        if (now - last_print >= interval || !isnan(vb)) {
            double ips = win_time > 0 ? (double)win_steps * B / win_time : 0.0;
            double sps = ips / B, eta = INFINITY;
            if (target != UINT64_MAX && sps > 0) eta = (double)(target - s) / sps;
            if (deadline - now < eta) eta = deadline - now;
            char etab[32], vbuf[64] = "";
            fmt_duration(etab, sizeof etab, eta);
            if (!isnan(last_valid)) snprintf(vbuf, sizeof vbuf, "  held-out %.2f", last_valid);
            printf("%sstep %llu  epoch %llu (%.0f%%)  Lx %.2f  Lz %.2f  %.0f img/s  ETA %s%s%s",
                   tty ? "\r" : "", (unsigned long long)s, (unsigned long long)((s - 1) / spe + 1),
                   100.0 * (double)((s - 1) % spe + 1) / (double)spe, win_lx / win_steps,
                   win_lz / win_steps, ips, etab, vbuf, tty ? "\033[K" : "\n");
            fflush(stdout);
            fflush(log);
            printed_tty = 1;
            last_print = now;
            win_lx = win_lz = win_time = 0;
            win_steps = 0;
        }
        if (f->checkpoint_minutes > 0 && now - last_ckpt >= 60.0 * f->checkpoint_minutes) {
            fflush(log);
            rc = dcrw_trainer_save(t, tr->ckpt);
            if (rc != DCRW_OK) {
                if (tty) putchar('\n');
                cli_lib_error(rc, "cannot save %s", tr->ckpt);
                status = CLI_FAIL;
                continue;
            }
            last_ckpt = cli_now();
        }
    }
    free(perm);
    free(x);
    if (!lead) return status;
    if (tty && printed_tty) putchar('\n');
    uint64_t s = dcrw_trainer_step_count(t);
    /* the end of a run gets its bound, unless the last step just had one */
    if (status == CLI_OK && valid->n && s > 0 && !valid_done_at_end && s > first) {
        double vb;
        if (held_out_bound(m, valid, &vb) == DCRW_OK) {
            last_valid = vb;
            fprintf(log, "%llu,%.3f,,,,,%.6f\n", (unsigned long long)s,
                    wall_offset + (cli_now() - start), vb);
        }
    }
    if (fflush(log) != 0) cli_error("%s: cannot write the log", tr->log_path);
    int rc = dcrw_trainer_save(t, tr->ckpt);
    if (rc != DCRW_OK) {
        cli_lib_error(rc, "cannot save %s", tr->ckpt);
        status = CLI_FAIL;
    }
    if (stop_requested)
        printf("stopped by signal %d after step %llu; resume with: dcrw train --resume %s\n",
               (int)stop_requested, (unsigned long long)s, tr->dir);
    printf("done: step %llu (epoch %.2f), %llu steps in %.1f s (%.0f img/s while training)\n",
           (unsigned long long)s, (double)s / (double)spe, (unsigned long long)(s - first),
           cli_now() - start, train_time > 0 ? (double)(s - first) * B / train_time : 0.0);
    if (!isnan(last_valid))
        printf("held-out bound (%zu images): %.3f nats\n", valid->n, last_valid);
    return status;
}

/* ------------------------------------------------------------------------ */

static void flags_default(run_flags *f) {
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

/* FNV-1a over what every process must hold alike before the first step */
static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t start_state_hash(dcrw_model *m, dcrw_trainer *t, const dcrw_dataset *train) {
    uint64_t h = 0xcbf29ce484222325ull, step = dcrw_trainer_step_count(t);
    size_t n = 0, count = dcrw_dataset_count(train);
    const float *p = dcrw_model_params(m, &n);
    h = fnv(h, &step, sizeof step);
    h = fnv(h, &count, sizeof count);
    if (p) h = fnv(h, p, n * sizeof *p);
    /* a few images stand for the data: a different file on one node shows */
    size_t idx[16], P = dcrw_model_input_size(m);
    int nb = (int)(count < 16 ? count : 16);
    float *img = nb > 0 ? malloc((size_t)nb * P * sizeof *img) : NULL;
    if (img) {
        for (int i = 0; i < nb; i++) idx[i] = (size_t)i * (count / (size_t)nb);
        if (dcrw_dataset_batch(train, idx, nb, DCRW_BINARIZE_NONE, 0, img) == DCRW_OK)
            h = fnv(h, img, (size_t)nb * P * sizeof *img);
    }
    free(img);
    return h;
}

/* The checks every process makes before the first step: that all are
 * ready and start from the same model, step and data. A collective call. */
static int start_together(int ready, dcrw_model *m, dcrw_trainer *t, const dcrw_dataset *train) {
    if (dist_size() == 1) return ready;
    uint64_t mine[2] = {(uint64_t)ready, ready ? start_state_hash(m, t, train) : 0};
    uint64_t lead[2] = {mine[0], mine[1]};
    dist_bcast(lead, sizeof lead);
    if (ready && lead[0] && mine[1] != lead[1]) {
        cli_error("this process starts from another model, step or data set than process 0: "
                  "every node must see the same --data and run folder (a shared file system)");
        ready = 0;
    }
    if (all_ok(ready)) return 1;
    if (ready && dist_rank() == 0) cli_error("another process could not start (see its message)");
    return 0;
}

static int train_command(int argc, char **argv);

int cmd_train(int argc, char **argv) {
    if (dist_init(&argc, &argv) != 0) return CLI_FAIL;
    if (dist_size() > 1) {
        static char name[64];
        snprintf(name, sizeof name, "dcrw train (process %d of %d)", dist_rank(), dist_size());
        cli_set_command(name);
        /* one progress report for the job: process 0's */
        if (dist_rank() != 0 && !freopen("/dev/null", "w", stdout)) dist_abort(CLI_FAIL);
    }
    int status = train_command(argc, argv);
    dist_finalize();
    return status;
}

static int train_command(int argc, char **argv) {
    trainer_run tr;
    memset(&tr, 0, sizeof tr);
    run_flags *f = &tr.f;
    flags_default(f);
    cli_args a = {argc, argv, 1, opts};
    const char *val, *out = NULL, *resume = NULL, *data = NULL;
    int id, nset = 0, budget_given = 0;
    const char *sets[256];
    /* options a resumed run may not change: the run is a function of them */
    int fixed_given = 0;
    const char *fixed_name = NULL;
    int status = CLI_BAD, synced = 0;
    const int lead = dist_rank() == 0;
    uint64_t steps = 0;
    long epochs = 0;
    double minutes = 0, ckpt_min = -1, prog = -1;
    long eval_every = -1, threads = -1;
    int opt_status;
    while ((id = cli_next_option(&a, &val, usage, &opt_status)) > 0) {
        switch (id) {
        case O_PRESET: {
            dcrw_preset p;
            if (dcrw_preset_from_name(val, &p) != DCRW_OK) {
                cli_error("--preset: unknown preset '%s' (draw, draw-noattn, dcrw, dcrw-noread)",
                          val);
                return CLI_BAD;
            }
            snprintf(f->preset, sizeof f->preset, "%s", dcrw_preset_name(p));
            fixed_given = 1, fixed_name = "preset";
            break;
        }
        case O_DATA:
            data = val;
            break;
        case O_OUT:
            out = val;
            break;
        case O_RESUME:
            resume = val;
            break;
        case O_STEPS:
            if (cli_parse_u64("steps", val, &steps) != 0) return CLI_BAD;
            if (steps == 0) {
                cli_error("--steps: must be at least 1");
                return CLI_BAD;
            }
            budget_given = 1;
            break;
        case O_EPOCHS:
            if (cli_parse_int("epochs", val, 1, 1000000, &epochs) != 0) return CLI_BAD;
            budget_given = 1;
            break;
        case O_MINUTES:
            if (cli_parse_double("minutes", val, 1e-6, 1e7, &minutes) != 0) return CLI_BAD;
            budget_given = 1;
            break;
        case O_BATCH:
            if (cli_parse_int("batch", val, 1, 100000, &f->batch) != 0) return CLI_BAD;
            fixed_given = 1, fixed_name = "batch";
            break;
        case O_LR:
            if (cli_parse_double("lr", val, 1e-12, 10.0, &f->lr) != 0) return CLI_BAD;
            fixed_given = 1, fixed_name = "lr";
            break;
        case O_LR_HALFLIFE:
            if (cli_parse_double("lr-halflife", val, 0.0, 1e15, &f->lr_halflife) != 0)
                return CLI_BAD;
            fixed_given = 1, fixed_name = "lr-halflife";
            break;
        case O_CLIP:
            if (cli_parse_double("clip", val, 0.0, 1e30, &f->clip) != 0) return CLI_BAD;
            fixed_given = 1, fixed_name = "clip";
            break;
        case O_SEED:
            if (cli_parse_u64("seed", val, &f->seed) != 0) return CLI_BAD;
            fixed_given = 1, fixed_name = "seed";
            break;
        case O_THREADS:
            if (cli_parse_int("threads", val, 0, 4096, &threads) != 0) return CLI_BAD;
            break;
        case O_BINARIZE:
            if (cli_parse_binarize("binarize", val, &f->binarize) != 0) return CLI_BAD;
            fixed_given = 1, fixed_name = "binarize";
            break;
        case O_SET:
            if (nset >= (int)(sizeof sets / sizeof sets[0])) {
                cli_error("--set: too many assignments");
                return CLI_BAD;
            }
            sets[nset++] = val;
            fixed_given = 1, fixed_name = "set";
            break;
        case O_VALID:
            if (cli_parse_int("valid", val, 0, INT_MAX, &f->valid) != 0) return CLI_BAD;
            fixed_given = 1, fixed_name = "valid";
            break;
        case O_TRAIN_N:
            if (cli_parse_int("train-n", val, 1, INT_MAX, &f->train_n) != 0) return CLI_BAD;
            fixed_given = 1, fixed_name = "train-n";
            break;
        case O_EVAL_EVERY:
            if (cli_parse_int("eval-every", val, 0, LONG_MAX, &eval_every) != 0) return CLI_BAD;
            break;
        case O_CKPT_MIN:
            if (cli_parse_double("checkpoint-minutes", val, 0.0, 1e7, &ckpt_min) != 0)
                return CLI_BAD;
            break;
        case O_PROGRESS:
            if (cli_parse_double("progress-seconds", val, 0.0, 1e7, &prog) != 0) return CLI_BAD;
            break;
        }
    }
    if (opt_status >= 0) return opt_status;

    if (resume && out) {
        cli_error("--resume RUNDIR continues the run in RUNDIR; do not give --out too");
        return CLI_BAD;
    }
    if (resume && fixed_given) {
        cli_error("--%s cannot change on --resume: the run continues with the flags in "
                  "its run.json",
                  fixed_name);
        return CLI_BAD;
    }
    if (!resume && !out) {
        cli_error("give --out RUNDIR for a new run (or --resume RUNDIR)");
        return CLI_BAD;
    }
    tr.dir = (char *)(resume ? resume : out);
    tr.resume = resume != NULL;
    tr.ckpt = cli_path(tr.dir, "checkpoint.safetensors");
    tr.log_path = cli_path(tr.dir, "log.csv");
    tr.json_path = cli_path(tr.dir, "run.json");
    tr.svg_path = cli_path(tr.dir, "losses.svg");
    dcrw_model *m = NULL;
    dcrw_trainer *t = NULL;
    dcrw_dataset *train = NULL;
    FILE *log = NULL;
    char *log_text = NULL;
    if (!tr.ckpt || !tr.log_path || !tr.json_path || !tr.svg_path) {
        cli_error("out of memory");
        goto done;
    }

    if (resume) {
        struct stat st;
        if (stat(resume, &st) != 0 || !S_ISDIR(st.st_mode)) {
            cli_error("--resume %s: not a run folder", resume);
            goto done;
        }
        if (!file_exists(tr.json_path) || !file_exists(tr.ckpt)) {
            cli_error("--resume %s: no run.json and checkpoint.safetensors there (not a run "
                      "folder of dcrw train)",
                      resume);
            goto done;
        }
        if (read_run_json(tr.json_path, f) != 0) goto done;
        dcrw_preset p;
        if (dcrw_preset_from_name(f->preset, &p) != DCRW_OK) {
            cli_error("%s: unknown preset '%s'", tr.json_path, f->preset);
            goto done;
        }
        if (budget_given) {
            f->steps = steps;
            f->epochs = epochs;
            f->minutes = minutes;
        }
        int rc = dcrw_config_validate(&f->cfg);
        if (rc != DCRW_OK) {
            cli_lib_error(rc, "%s: the configuration is invalid", tr.json_path);
            goto done;
        }
    } else {
        if (!budget_given) {
            cli_error("give a budget: --steps N, --epochs N or --minutes M");
            goto done;
        }
        f->steps = steps;
        f->epochs = epochs;
        f->minutes = minutes;
        if (!data) {
            cli_error("give --data DIR (the folder with the MNIST IDX files)");
            goto done;
        }
        dcrw_preset p;
        dcrw_preset_from_name(f->preset, &p);
        dcrw_config_preset(&f->cfg, p);
        /* the data decides the channels; --set may not */
        char err[256];
        for (int i = 0; i < nset; i++)
            if (dcrw_cli_set(&f->cfg, sets[i], err, sizeof err) != 0) {
                cli_error("%s", err);
                goto done;
            }
        if (file_exists(tr.json_path) || file_exists(tr.ckpt)) {
            cli_error("--out %s already holds a run; continue it with --resume %s or choose "
                      "another folder",
                      out, out);
            goto done;
        }
    }
    if (eval_every >= 0) f->eval_every = eval_every;
    if (ckpt_min >= 0) f->checkpoint_minutes = ckpt_min;
    if (prog >= 0) f->progress_seconds = prog;
    if (threads >= 0) f->threads = threads;
    if (data) {
        char *abs = realpath(data, NULL);
        free(f->data);
        f->data = abs ? abs : strdup(data);
        if (!f->data) {
            cli_error("out of memory");
            goto done;
        }
    }

    /* ---- data: everything is checked before the run folder is touched */
    if (cli_load_split(f->data, SPLIT_TRAIN, &train) != 0) goto done;
    int dc = 0, dh = 0, dw = 0;
    dcrw_dataset_shape(train, &dc, &dh, &dw);
    if (!resume) f->cfg.channels = dc;
    {
        int rc = dcrw_config_validate(&f->cfg);
        if (rc != DCRW_OK) {
            cli_lib_error(rc, "the model configuration is invalid");
            goto done;
        }
    }
    if (cli_check_shape(train, &f->cfg, "--data") != 0) goto done;
    size_t count = dcrw_dataset_count(train);
    if ((size_t)f->valid >= count) {
        cli_error("--valid %ld: the data has only %zu training images", f->valid, count);
        goto done;
    }
    size_t avail = count - (size_t)f->valid;
    size_t ntrain = avail;
    if (f->train_n) {
        if ((size_t)f->train_n > avail) {
            cli_error("--train-n %ld: only %zu images are left after holding out --valid %ld",
                      f->train_n, avail, f->valid);
            goto done;
        }
        ntrain = (size_t)f->train_n;
    }
    if (ntrain < (size_t)f->batch) {
        cli_error("--batch %ld: larger than the %zu training images", f->batch, ntrain);
        goto done;
    }
    if (f->batch < dist_size()) {
        if (lead)
            cli_error("--batch %ld: fewer images than the %d processes", f->batch, dist_size());
        goto done;
    }
    held_out valid = {train, count - (size_t)f->valid, (size_t)f->valid, f->binarize};

    /* ---- model and trainer */
    int rc = dcrw_model_create(&m, &f->cfg, f->seed);
    if (rc != DCRW_OK) {
        cli_lib_error(rc, "cannot create the model");
        goto done;
    }
    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    tc.learning_rate = (float)f->lr;
    tc.clip_norm = (float)f->clip;
    tc.seed = f->seed;
    tc.threads = (int32_t)f->threads;
    rc = dcrw_trainer_create(&t, m, &tc);
    if (rc != DCRW_OK) {
        cli_lib_error(rc, "cannot create the trainer");
        goto done;
    }
    double wall_offset = 0.0;
    if (resume) {
        rc = dcrw_trainer_resume(t, tr.ckpt);
        if (rc != DCRW_OK) {
            cli_lib_error(rc, "%s: cannot resume from it", tr.ckpt);
            goto done;
        }
    }
    /* every process has read what it needs: process 0 may now write */
    synced = 1;
    if (!start_together(1, m, t, train)) goto done;
    if (lead) {
        if (resume) {
            log_text = file_exists(tr.log_path) ? cli_read_file(tr.log_path, NULL) : NULL;
            log_keep k = {log_text, dcrw_trainer_step_count(t), 0.0};
            if (cli_write_atomic(tr.log_path, write_log_kept, &k) != 0) goto done;
            wall_offset = k.last_wall;
        } else {
            if (make_run_dir(out) != 0) goto done;
            log_keep k = {NULL, 0, 0.0};
            if (cli_write_atomic(tr.log_path, write_log_kept, &k) != 0) goto done;
        }
        if (cli_write_atomic(tr.json_path, write_run_json, f) != 0) goto done;
        if (!resume) {
            /* a run folder always holds a loadable checkpoint, even at step 0 */
            rc = dcrw_trainer_save(t, tr.ckpt);
            if (rc != DCRW_OK) {
                cli_lib_error(rc, "cannot save %s", tr.ckpt);
                goto done;
            }
        }
        log = fopen(tr.log_path, "a");
        if (!log) {
            cli_error("%s: %s", tr.log_path, strerror(errno));
            goto done;
        }
    }
    synced = 2;
    if (!all_ok(1)) goto done;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* a second Ctrl-C kills at once, for a step that takes too long */
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    const uint64_t spe = ntrain / (uint64_t)f->batch;
    printf("%s: preset %s, T=%d, D=%d, Z=%d, %zu parameters; %zu training images "
           "(%llu steps of %ld per epoch), %zu held out; run folder %s\n",
           resume ? "resuming" : "training", f->preset, f->cfg.glimpses, f->cfg.dec_size,
           f->cfg.z_size, dcrw_model_param_floats(m), ntrain, (unsigned long long)spe, f->batch,
           valid.n, tr.dir);
    if (dist_size() > 1) {
        long K = dist_size(), q = f->batch / K, extra = f->batch % K;
        if (extra)
            printf("%ld processes share each batch: %ld images in the first %ld, %ld in the "
                   "others\n",
                   K, q + 1, extra, q);
        else
            printf("%ld processes share each batch: %ld images each\n", K, q);
    }
    if (resume)
        printf("continuing from step %llu\n", (unsigned long long)dcrw_trainer_step_count(t));
    fflush(stdout);

    status = train_loop(&tr, m, t, train, ntrain, &valid, log, wall_offset);
    if (!lead) goto done;
    if (fclose(log) != 0 && status == CLI_OK) {
        cli_error("%s: cannot write the log", tr.log_path);
        status = CLI_FAIL;
    }
    log = NULL;
    if (cli_plot_run(tr.log_path, tr.svg_path) == 0)
        printf("checkpoint %s\nlog        %s\nplot       %s\n", tr.ckpt, tr.log_path, tr.svg_path);
    else
        printf("checkpoint %s\nlog        %s\n", tr.ckpt, tr.log_path);

done:
    /* a process that failed before the start still takes part in the
     * checks the others are waiting in */
    if (synced < 1) start_together(0, m, t, train);
    if (synced < 2) all_ok(0);
    if (log) fclose(log);
    dcrw_trainer_destroy(t);
    dcrw_model_destroy(m);
    dcrw_dataset_destroy(train);
    free(log_text);
    free(f->data);
    free(tr.ckpt);
    free(tr.log_path);
    free(tr.json_path);
    free(tr.svg_path);
    return status;
}
