/* dcrw train: the training loop and its resumption (the run folder itself
 * is rundir.c's).
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
 * depends on K.
 *
 * Stopping (a signal, a closed output, the budget) saves first: the held-out
 * bound of the end is computed after the checkpoint is on disk, so that a
 * second signal during it costs nothing. A failed step, a non-finite bound
 * or a failed save ends the run without saving: the checkpoint keeps the
 * last good state it was given. */
/* realpath() is XSI */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "dist.h"
#include "rundir.h"

#define BINARIZE_KEY 0x62696e6172697a65ull /* keeps the step keys apart from others */
#define EPOCH_KEY 0x65706f6368730000ull

static void usage(FILE *f) {
    fprintf(f,
            "usage: dcrw train --preset NAME --data DIR --out RUNDIR BUDGET [OPTIONS]\n"
            "       dcrw train --resume RUNDIR [BUDGET] [--threads N] [--data DIR]\n"
            "\n"
            "Train a model on DIR/train-images-idx3-ubyte (MNIST). RUNDIR (created with its\n"
            "parents if missing) receives checkpoint.safetensors (model + Adam state),\n"
            "log.csv, run.json (the flags), losses.svg and .lock; one dcrw train at a time\n"
            "may use it. Ctrl-C, SIGTERM, SIGHUP or a closed output finishes the current\n"
            "step, saves, then computes the held-out bound (a second Ctrl-C skips it) and\n"
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
            "  --threads N          threads for the BLAS and the library, 0..%d (0 = default);\n"
            "                       the batch is split by thread, so resuming with another N\n"
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
            dist_available() ? "This build has MPI." : "This build has no MPI.", CLI_MAX_THREADS);
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

/* What the command line says besides the run's own flags. */
typedef struct train_opts {
    const char *out, *resume, *data;
    const char *sets[256];
    int nset, budget_given;
    /* an option a resumed run may not change: the run is a function of it */
    const char *fixed_name;
    uint64_t steps;
    long epochs, eval_every, threads;
    double minutes, ckpt_min, prog;
} train_opts;

/* The options that make the run (fixed on --resume), into f. 1 handled,
 * 0 not one of them, -1 after a message. */
static int parse_run_option(int id, const char *val, run_flags *f, train_opts *o) {
    int bad = 0;
    switch (id) {
    case O_PRESET: {
        dcrw_preset p;
        if (dcrw_preset_from_name(val, &p) != DCRW_OK) {
            cli_error("--preset: unknown preset '%s' (draw, draw-noattn, dcrw, dcrw-noread)", val);
            return -1;
        }
        snprintf(f->preset, sizeof f->preset, "%s", dcrw_preset_name(p));
        o->fixed_name = "preset";
        return 1;
    }
    case O_BATCH:
        bad = cli_parse_int("batch", val, 1, RUN_BATCH_MAX, &f->batch);
        o->fixed_name = "batch";
        break;
    case O_LR:
        bad = cli_parse_double("lr", val, RUN_LR_MIN, RUN_LR_MAX, &f->lr);
        o->fixed_name = "lr";
        break;
    case O_LR_HALFLIFE:
        bad = cli_parse_double("lr-halflife", val, 0.0, RUN_HALFLIFE_MAX, &f->lr_halflife);
        o->fixed_name = "lr-halflife";
        break;
    case O_CLIP:
        bad = cli_parse_double("clip", val, 0.0, RUN_CLIP_MAX, &f->clip);
        o->fixed_name = "clip";
        break;
    case O_SEED:
        bad = cli_parse_u64("seed", val, &f->seed);
        o->fixed_name = "seed";
        break;
    case O_BINARIZE:
        bad = cli_parse_binarize("binarize", val, &f->binarize);
        o->fixed_name = "binarize";
        break;
    case O_SET:
        if (o->nset >= (int)(sizeof o->sets / sizeof o->sets[0])) {
            cli_error("--set: too many assignments");
            return -1;
        }
        o->sets[o->nset++] = val;
        o->fixed_name = "set";
        break;
    case O_VALID:
        bad = cli_parse_int("valid", val, 0, INT_MAX, &f->valid);
        o->fixed_name = "valid";
        break;
    case O_TRAIN_N:
        bad = cli_parse_int("train-n", val, 1, INT_MAX, &f->train_n);
        o->fixed_name = "train-n";
        break;
    default:
        return 0;
    }
    return bad ? -1 : 1;
}

/* The options of this invocation: folders, budget, reporting. 0, or -1
 * after a message. */
static int parse_session_option(int id, const char *val, train_opts *o) {
    switch (id) {
    case O_DATA:
        o->data = val;
        return 0;
    case O_OUT:
        o->out = val;
        return 0;
    case O_RESUME:
        o->resume = val;
        return 0;
    case O_STEPS:
        if (cli_parse_u64("steps", val, &o->steps) != 0) return -1;
        if (o->steps == 0) {
            cli_error("--steps: must be at least 1");
            return -1;
        }
        o->budget_given = 1;
        return 0;
    case O_EPOCHS:
        o->budget_given = 1;
        return cli_parse_int("epochs", val, 1, RUN_EPOCHS_MAX, &o->epochs);
    case O_MINUTES:
        o->budget_given = 1;
        return cli_parse_double("minutes", val, 1e-6, RUN_MINUTES_MAX, &o->minutes);
    case O_THREADS:
        return cli_parse_int("threads", val, 0, CLI_MAX_THREADS, &o->threads);
    case O_EVAL_EVERY:
        return cli_parse_int("eval-every", val, 0, (long)RUN_COUNT_MAX, &o->eval_every);
    case O_CKPT_MIN:
        return cli_parse_double("checkpoint-minutes", val, 0.0, RUN_MINUTES_MAX, &o->ckpt_min);
    case O_PROGRESS:
        return cli_parse_double("progress-seconds", val, 0.0, RUN_MINUTES_MAX, &o->prog);
    }
    return 0;
}

/* -1 to go on, else the exit status. */
static int parse_options(int argc, char **argv, run_flags *f, train_opts *o) {
    memset(o, 0, sizeof *o);
    o->eval_every = o->threads = -1;
    o->ckpt_min = o->prog = -1;
    cli_args a = {argc, argv, 1, opts};
    const char *val;
    int id, status;
    while ((id = cli_next_option(&a, &val, usage, &status)) > 0) {
        int r = parse_run_option(id, val, f, o);
        if (r < 0 || (r == 0 && parse_session_option(id, val, o) != 0)) return CLI_BAD;
    }
    if (status >= 0) return status;
    if (o->resume && o->out) {
        cli_error("--resume RUNDIR continues the run in RUNDIR; do not give --out too");
        return CLI_BAD;
    }
    if (o->resume && o->fixed_name) {
        cli_error("--%s cannot change on --resume: the run continues with the flags in "
                  "its run.json",
                  o->fixed_name);
        return CLI_BAD;
    }
    if (!o->resume && !o->out) {
        cli_error("give --out RUNDIR for a new run (or --resume RUNDIR)");
        return CLI_BAD;
    }
    return -1;
}

/* ------------------------------------------------------------------------ */

typedef struct held_out {
    const dcrw_dataset *d;
    size_t first, n;
    int binarize;
} held_out;

typedef struct trainer_run {
    run_flags f;
    rundir rd;
    int resume; /* --resume */
    int fresh;  /* the trainer starts from step 0 (a new run, or a run without checkpoint) */
    dcrw_model *m;
    dcrw_trainer *t;
    dcrw_dataset *train;
    size_t ntrain;
    held_out valid;
    FILE *log;
    double wall_offset; /* the wall time of the log's last kept row */
    uint64_t saved;     /* the step the checkpoint on disk holds */
    int quit;           /* stop at once, without the last plot */
} trainer_run;

/* The bound on held-out images with fixed binarization and noise, so that
 * two evaluations differ only through the model. Between batches it gives
 * up once @p interrupt_at stop requests have come. 0 with the bound in
 * *out, 1 interrupted, -1 after a message (a failure, or a bound that is
 * not a finite number). */
static int held_out_bound(const dcrw_model *m, const held_out *h, int interrupt_at, double *out) {
    dcrw_sizes sz = {.size = sizeof sz};
    dcrw_model_sizes(m, &sz);
    const int B = 100;
    size_t P = sz.input;
    float *x = malloc((size_t)B * P * sizeof *x);
    float *eps = malloc((size_t)B * sz.glimpses * sz.z * sizeof *eps);
    size_t *idx = malloc((size_t)B * sizeof *idx);
    double *lx = malloc((size_t)B * sizeof *lx), *lz = malloc((size_t)B * sizeof *lz);
    int rc = (x && eps && idx && lx && lz) ? DCRW_OK : DCRW_ENOMEM, result = 0;
    double sum = 0.0;
    for (size_t i = 0; rc == DCRW_OK && i < h->n; i += (size_t)B) {
        if (cli_stop_requests() >= interrupt_at) {
            result = 1;
            break;
        }
        int nb = (int)(h->n - i < (size_t)B ? h->n - i : (size_t)B);
        for (int b = 0; b < nb; b++) idx[b] = h->first + i + (size_t)b;
        rc = dcrw_dataset_batch(h->d, idx, nb, h->binarize, CLI_EVAL_BINARIZE_SEED, x);
        if (rc != DCRW_OK) break;
        cli_fill_eps(eps, CLI_EVAL_NOISE_SEED, h->first + i, nb, sz.glimpses, sz.z);
        rc = dcrw_evaluate_images(m, nb, x, eps, lx, lz);
        for (int b = 0; rc == DCRW_OK && b < nb; b++) {
            if (!isfinite(lx[b] + lz[b])) rc = DCRW_ENUMERIC;
            sum += lx[b] + lz[b];
        }
    }
    if (rc == DCRW_ENUMERIC)
        cli_error("the held-out bound is not a finite number: the model gives NaN or infinity "
                  "on held-out images");
    else if (rc != DCRW_OK)
        cli_lib_error(rc, "held-out evaluation failed");
    free(x);
    free(eps);
    free(idx);
    free(lx);
    free(lz);
    *out = h->n ? sum / (double)h->n : NAN;
    if (result == 0 && !isfinite(*out)) {
        cli_error("the held-out bound is not a finite number");
        rc = DCRW_ENUMERIC;
    }
    return rc != DCRW_OK ? -1 : result;
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

/* ------------------------------------------------------------------------ */
/* Setting up: flags, data, model and trainer, then the run folder. Nothing
 * is written before every input has been checked. */

/* --resume: the flags from run.json. A folder whose start was killed
 * before its first checkpoint starts again from step 0. */
static int resume_flags(trainer_run *tr, const train_opts *o) {
    run_flags *f = &tr->f;
    rundir *rd = &tr->rd;
    struct stat st;
    int found = stat(o->resume, &st) == 0;
    const char *why = found ? "not a folder" : strerror(errno);
    if (!found || !S_ISDIR(st.st_mode)) {
        cli_error("--resume %s: not a run folder (%s)", o->resume, why);
        return -1;
    }
    if (!rundir_exists(rd->json_path)) {
        if (rundir_exists(rd->ckpt))
            cli_error("--resume %s: a checkpoint without run.json, so the flags of the run are "
                      "unknown (not a run folder of dcrw train)",
                      o->resume);
        else
            cli_error("--resume %s: no run.json there (not a run folder of dcrw train; a start "
                      "stopped before it wrote run.json is started again with --out)",
                      o->resume);
        return -1;
    }
    /* before anything is read: a second writer must not see a half-made
     * state, nor make one */
    if (dist_rank() == 0 && rundir_lock(rd) != 0) return -1;
    if (rundir_read_flags(rd, f) != 0) return -1;
    dcrw_preset p;
    if (dcrw_preset_from_name(f->preset, &p) != DCRW_OK) {
        cli_error("%s: unknown preset '%s'", rd->json_path, f->preset);
        return -1;
    }
    tr->fresh = !rundir_exists(rd->ckpt);
    if (!tr->fresh && cli_check_regular(rd->ckpt, "--resume") != 0) return -1;
    if (o->budget_given) {
        f->steps = o->steps;
        f->epochs = o->epochs;
        f->minutes = o->minutes;
    }
    int rc = dcrw_config_validate(&f->cfg);
    if (rc != DCRW_OK) {
        cli_lib_error(rc, "%s: the configuration is invalid", rd->json_path);
        return -1;
    }
    return 0;
}

/* --out: the flags of the command line. */
static int new_run_flags(trainer_run *tr, const train_opts *o) {
    run_flags *f = &tr->f;
    tr->fresh = 1;
    if (!o->budget_given) {
        cli_error("give a budget: --steps N, --epochs N or --minutes M");
        return -1;
    }
    f->steps = o->steps;
    f->epochs = o->epochs;
    f->minutes = o->minutes;
    if (!o->data) {
        cli_error("give --data DIR (the folder with the MNIST IDX files)");
        return -1;
    }
    dcrw_preset p;
    dcrw_preset_from_name(f->preset, &p);
    dcrw_config_preset(&f->cfg, p);
    /* the data decides the channels; --set may not */
    char err[256];
    for (int i = 0; i < o->nset; i++)
        if (dcrw_cli_set(&f->cfg, o->sets[i], err, sizeof err) != 0) {
            cli_error("%s", err);
            return -1;
        }
    struct stat st;
    if (stat(o->out, &st) == 0 && !S_ISDIR(st.st_mode)) {
        cli_error("--out %s: exists and is not a folder", o->out);
        return -1;
    }
    /* checked again under the lock, once the folder is made */
    if (rundir_exists(tr->rd.json_path) || rundir_exists(tr->rd.ckpt)) {
        cli_error("--out %s already holds a run; continue it with --resume %s or choose "
                  "another folder",
                  o->out, o->out);
        return -1;
    }
    return 0;
}

/* The flags of this invocation, and --data as an absolute path. */
static int session_flags(run_flags *f, const train_opts *o) {
    if (o->eval_every >= 0) f->eval_every = o->eval_every;
    if (o->ckpt_min >= 0) f->checkpoint_minutes = o->ckpt_min;
    if (o->prog >= 0) f->progress_seconds = o->prog;
    if (o->threads >= 0) f->threads = o->threads;
    if (o->data) {
        char *abs = realpath(o->data, NULL);
        free(f->data);
        f->data = abs ? abs : strdup(o->data);
        if (!f->data) {
            cli_error("out of memory");
            return -1;
        }
    }
    return 0;
}

/* The training images, the held-out ones, and what the flags ask of them. */
static int load_training_data(trainer_run *tr) {
    run_flags *f = &tr->f;
    if (cli_load_split(f->data, SPLIT_TRAIN, &tr->train) != 0) return -1;
    int dc = 0, dh = 0, dw = 0;
    dcrw_dataset_shape(tr->train, &dc, &dh, &dw);
    if (!tr->resume) f->cfg.channels = dc;
    int rc = dcrw_config_validate(&f->cfg);
    if (rc != DCRW_OK) {
        cli_lib_error(rc, "the model configuration is invalid");
        return -1;
    }
    if (cli_check_shape(tr->train, &f->cfg, "--data") != 0) return -1;
    size_t count = dcrw_dataset_count(tr->train);
    if ((size_t)f->valid >= count) {
        cli_error("--valid %ld: the data has only %zu training images", f->valid, count);
        return -1;
    }
    size_t avail = count - (size_t)f->valid;
    tr->ntrain = avail;
    if (f->train_n) {
        if ((size_t)f->train_n > avail) {
            cli_error("--train-n %ld: only %zu images are left after holding out --valid %ld",
                      f->train_n, avail, f->valid);
            return -1;
        }
        tr->ntrain = (size_t)f->train_n;
    }
    if (tr->ntrain < (size_t)f->batch) {
        cli_error("--batch %ld: larger than the %zu training images", f->batch, tr->ntrain);
        return -1;
    }
    if (f->batch < dist_size()) {
        if (dist_rank() == 0)
            cli_error("--batch %ld: fewer images than the %d processes", f->batch, dist_size());
        return -1;
    }
    held_out v = {tr->train, count - (size_t)f->valid, (size_t)f->valid, f->binarize};
    tr->valid = v;
    return 0;
}

/* No file of the run folder may be one of the data files (a link). */
static int check_run_outputs(const trainer_run *tr) {
    char *img = cli_split_path(tr->f.data, SPLIT_TRAIN, 0);
    char *lab = cli_split_path(tr->f.data, SPLIT_TRAIN, 1);
    const rundir *rd = &tr->rd;
    int rc = -1;
    if (img && lab) {
        cli_file in[] = {{img, "--data"}, {lab, "--data"}};
        cli_file out[] = {{rd->ckpt, "the checkpoint"},
                          {rd->log_path, "the log"},
                          {rd->json_path, "the run file"},
                          {rd->svg_path, "the plot"},
                          {rd->lock_path, "the lock file"}};
        rc = cli_check_outputs(in, 2, out, sizeof out / sizeof out[0]);
    } else {
        cli_error("out of memory");
    }
    free(img);
    free(lab);
    return rc;
}

static int create_trainer(trainer_run *tr) {
    run_flags *f = &tr->f;
    int rc = dcrw_model_create(&tr->m, &f->cfg, f->seed);
    if (rc != DCRW_OK) {
        cli_lib_error(rc, "cannot create the model");
        return -1;
    }
    dcrw_train_config tc;
    dcrw_train_config_default(&tc);
    tc.learning_rate = (float)f->lr;
    tc.clip_norm = (float)f->clip;
    tc.seed = f->seed;
    tc.threads = (int32_t)f->threads;
    rc = dcrw_trainer_create(&tr->t, tr->m, &tc);
    if (rc != DCRW_OK) {
        cli_lib_error(rc, "cannot create the trainer");
        return -1;
    }
    if (!tr->fresh) {
        rc = dcrw_trainer_resume(tr->t, tr->rd.ckpt);
        if (rc != DCRW_OK) {
            cli_lib_error(rc, "%s: cannot resume from it", tr->rd.ckpt);
            return -1;
        }
    }
    tr->saved = dcrw_trainer_step_count(tr->t);
    return 0;
}

/* The trainer's state into the run's checkpoint: DCRW_OK, or the
 * library's code with the file on disk as it was. */
static int save_checkpoint(trainer_run *tr) {
    int rc = dcrw_trainer_save(tr->t, tr->rd.ckpt);
    if (rc == DCRW_OK) tr->saved = dcrw_trainer_step_count(tr->t);
    return rc;
}

static int save_first_checkpoint(trainer_run *tr) {
    int rc = save_checkpoint(tr);
    if (rc != DCRW_OK) cli_lib_error(rc, "cannot save %s", tr->rd.ckpt);
    return rc == DCRW_OK ? 0 : -1;
}

/* A new run's folder: made with its parents, locked, then run.json, the
 * step-0 checkpoint and the log in that order (see rundir.h). */
static int create_run_folder(trainer_run *tr) {
    rundir *rd = &tr->rd;
    if (cli_make_folders(rd->dir, "--out") != 0 || rundir_lock(rd) != 0) return -1;
    if (rundir_exists(rd->json_path) || rundir_exists(rd->ckpt)) {
        cli_error("--out %s already holds a run; continue it with --resume %s or choose "
                  "another folder",
                  rd->dir, rd->dir);
        return -1;
    }
    rundir_remove_stale(rd);
    double wall = 0;
    if (rundir_write_flags(rd, &tr->f) != 0 || save_first_checkpoint(tr) != 0 ||
        rundir_keep_log(rd, 0, &wall) != 0)
        return -1;
    return 0;
}

/* A resumed run's folder (locked already): the log cut back to the
 * checkpoint, run.json with this invocation's budget. */
static int reopen_run_folder(trainer_run *tr) {
    rundir *rd = &tr->rd;
    rundir_remove_stale(rd);
    if (rundir_keep_log(rd, tr->saved, &tr->wall_offset) != 0) return -1;
    if (rundir_write_flags(rd, &tr->f) != 0) return -1;
    return tr->fresh ? save_first_checkpoint(tr) : 0;
}

static void print_start(const trainer_run *tr) {
    const run_flags *f = &tr->f;
    const uint64_t spe = tr->ntrain / (uint64_t)f->batch;
    if (tr->resume && tr->fresh)
        printf("%s holds no checkpoint (its first start was stopped before it saved one): "
               "starting the run from step 0\n",
               tr->rd.dir);
    printf("%s: preset %s, T=%d, D=%d, Z=%d, %zu parameters; %zu training images "
           "(%llu steps of %ld per epoch), %zu held out; run folder %s\n",
           tr->resume ? "resuming" : "training", f->preset, f->cfg.glimpses, f->cfg.dec_size,
           f->cfg.z_size, dcrw_model_param_floats(tr->m), tr->ntrain, (unsigned long long)spe,
           f->batch, tr->valid.n, tr->rd.dir);
    if (dist_size() > 1) {
        long K = dist_size(), q = f->batch / K, extra = f->batch % K;
        if (extra)
            printf("%ld processes share each batch: %ld images in the first %ld, %ld in the "
                   "others\n",
                   K, q + 1, extra, q);
        else
            printf("%ld processes share each batch: %ld images each\n", K, q);
    }
    if (tr->resume && !tr->fresh)
        printf("continuing from step %llu\n", (unsigned long long)tr->saved);
    cli_flush_stdout();
}

/* ------------------------------------------------------------------------ */
/* The loop: one step, then process 0 logs, reports and checkpoints it. */

typedef struct loop_state {
    int B, off, Bp, lead, tty, printed_tty;
    uint64_t spe, target, first, cur_epoch;
    size_t *perm;
    float *x, *grads;
    size_t ngrad;
    double start, deadline, last_ckpt, last_print, train_time;
    double win_lx, win_lz, win_time;
    long win_steps;
    int bound_at_end; /* the last step made had its held-out bound */
    double last_valid;
} loop_state;

static int loop_init(trainer_run *tr, loop_state *L) {
    const run_flags *f = &tr->f;
    memset(L, 0, sizeof *L);
    L->B = (int)f->batch;
    L->lead = dist_rank() == 0;
    batch_share(L->B, &L->off, &L->Bp);
    L->spe = tr->ntrain / (uint64_t)L->B;
    L->perm = malloc(tr->ntrain * sizeof *L->perm);
    L->x = malloc((size_t)L->Bp * dcrw_model_input_size(tr->m) * sizeof *L->x);
    if (!L->perm || !L->x) cli_error("out of memory for %zu training images", tr->ntrain);
    if (!all_ok(L->perm && L->x)) return -1;
    L->grads = dcrw_trainer_grads(tr->t, &L->ngrad);
    L->target = UINT64_MAX;
    if (f->steps) L->target = f->steps;
    if (f->epochs && (uint64_t)f->epochs <= UINT64_MAX / L->spe &&
        (uint64_t)f->epochs * L->spe < L->target)
        L->target = (uint64_t)f->epochs * L->spe;
    L->start = cli_now();
    L->deadline = f->minutes > 0 ? L->start + 60.0 * f->minutes : INFINITY;
    /* mpirun hands process 0 a pseudo-terminal even when its own output
     * goes to a file: no live line under it */
    L->tty = L->lead && !dist_launched() && isatty(1);
    L->last_ckpt = L->start;
    L->last_print = -INFINITY;
    L->cur_epoch = UINT64_MAX;
    L->first = dcrw_trainer_step_count(tr->t);
    L->last_valid = NAN;
    return 0;
}

static void loop_free(loop_state *L) {
    free(L->perm);
    free(L->x);
}

/* a message must not run into the live progress line */
static void end_live_line(loop_state *L) {
    if (L->tty && L->printed_tty) {
        putchar('\n');
        cli_flush_stdout();
    }
    L->printed_tty = 0;
}

/* The clock, the signals and the outcome of the last step are process 0's:
 * one decision for all. A collective call. */
static int loop_should_stop(const loop_state *L, uint64_t s, int status) {
    int stop =
        s >= L->target || status != CLI_OK || cli_now() >= L->deadline || cli_stop_requests() > 0;
    dist_bcast(&stop, sizeof stop);
    return stop;
}

static void step_failed(loop_state *L, int rc, uint64_t s, const char *where) {
    end_live_line(L);
    cli_lib_error(rc, "training step %llu failed%s%s", (unsigned long long)s + 1, where,
                  rc == DCRW_ENUMERIC ? " (the loss diverged; try a smaller --lr or --clip)" : "");
}

/* Step s + 1 on every process: this process's share of the batch, the
 * gradients summed across processes, one update. CLI_OK, or CLI_FAIL after
 * a message with the trainer's state untouched. */
static int train_step(trainer_run *tr, loop_state *L, uint64_t s, dcrw_loss *loss, double *dt) {
    const run_flags *f = &tr->f;
    uint64_t epoch = s / L->spe, pos = s % L->spe;
    if (epoch != L->cur_epoch) {
        cli_permutation(L->perm, tr->ntrain, cli_key(f->seed ^ EPOCH_KEY, epoch));
        L->cur_epoch = epoch;
    }
    /* binarization is keyed by the image, so gathering a share gives the
     * bits the whole batch would have */
    int rc = dcrw_dataset_batch(tr->train, L->perm + pos * (uint64_t)L->B + (uint64_t)L->off, L->Bp,
                                f->binarize, cli_key(f->seed ^ BINARIZE_KEY, s), L->x);
    double t0 = cli_now();
    memset(loss, 0, sizeof *loss);
    if (rc == DCRW_OK)
        rc = dcrw_trainer_backward_part(tr->t, L->Bp, L->x, NULL, L->off, L->B, loss);
    int failed = rc != DCRW_OK;
    if (failed) step_failed(L, rc, s, "");
    if (dist_size() > 1) {
        /* the sums of the part means weighted by part size are the global
         * batch sums; a failure anywhere travels with them */
        double sums[3] = {failed ? 0 : loss->lx * L->Bp, failed ? 0 : loss->lz * L->Bp, failed};
        dist_allreduce_sum_floats(L->grads, L->ngrad);
        dist_allreduce_sum_doubles(sums, 3);
        loss->lx = sums[0] / L->B;
        loss->lz = sums[1] / L->B;
        loss->loss = loss->lx + loss->lz;
        if (!failed && sums[2] > 0 && L->lead) {
            end_live_line(L);
            cli_error("training step %llu failed in another process (its message is above)",
                      (unsigned long long)s + 1);
        }
        failed = failed || sums[2] > 0;
    }
    if (failed) return CLI_FAIL;
    /* a pure function of the step count, so a resumed run decays alike */
    if (f->lr_halflife > 0)
        dcrw_trainer_set_learning_rate(
            tr->t, (float)fmax(f->lr * exp2(-(double)s / f->lr_halflife), (double)FLT_MIN));
    /* the summed gradients are the same everywhere, so is this outcome */
    rc = dcrw_trainer_apply(tr->t);
    *dt = cli_now() - t0;
    if (rc != DCRW_OK) {
        if (L->lead) step_failed(L, rc, s, " in the update");
        return CLI_FAIL;
    }
    L->train_time += *dt;
    return CLI_OK;
}

static void report_progress(loop_state *L, uint64_t s, double now) {
    double ips = L->win_time > 0 ? (double)L->win_steps * L->B / L->win_time : 0.0;
    double sps = ips / L->B, eta = INFINITY;
    if (L->target != UINT64_MAX && sps > 0) eta = (double)(L->target - s) / sps;
    if (L->deadline - now < eta) eta = L->deadline - now;
    char etab[32], vbuf[64] = "";
    fmt_duration(etab, sizeof etab, eta);
    if (!isnan(L->last_valid)) snprintf(vbuf, sizeof vbuf, "  held-out %.2f", L->last_valid);
    printf("%sstep %llu  epoch %llu (%.0f%%)  Lx %.2f  Lz %.2f  %.0f img/s  ETA %s%s%s",
           L->tty ? "\r" : "", (unsigned long long)s, (unsigned long long)((s - 1) / L->spe + 1),
           100.0 * (double)((s - 1) % L->spe + 1) / (double)L->spe, L->win_lx / L->win_steps,
           L->win_lz / L->win_steps, ips, etab, vbuf, L->tty ? "\033[K" : "\n");
    /* a closed pipe or terminal shows here, and stops the run */
    cli_flush_stdout();
    L->printed_tty = 1;
    L->last_print = now;
    L->win_lx = L->win_lz = L->win_time = 0;
    L->win_steps = 0;
}

/* Process 0 after step s: its held-out bound when due, its log row, the
 * progress line, and the checkpoint when its time has come. */
static int after_step(trainer_run *tr, loop_state *L, uint64_t s, const dcrw_loss *loss,
                      double dt) {
    const run_flags *f = &tr->f;
    L->win_lx += loss->lx;
    L->win_lz += loss->lz;
    L->win_time += dt;
    L->win_steps++;
    double vb = NAN;
    L->bound_at_end = 0;
    if (tr->valid.n && f->eval_every && s % (uint64_t)f->eval_every == 0) {
        /* a stop request cuts it short: the checkpoint comes first */
        int r = held_out_bound(tr->m, &tr->valid, 1, &vb);
        if (r < 0) return CLI_FAIL;
        if (r == 0) L->last_valid = vb;
        L->bound_at_end = r == 0;
    }
    double now = cli_now();
    rundir_log_step(tr->log, s, tr->wall_offset + (now - L->start), loss, dt > 0 ? L->B / dt : 0.0,
                    vb);
    if (now - L->last_print >= (L->tty ? 0.25 : f->progress_seconds) || L->bound_at_end) {
        fflush(tr->log);
        report_progress(L, s, now);
    }
    if (f->checkpoint_minutes > 0 && now - L->last_ckpt >= 60.0 * f->checkpoint_minutes) {
        /* the log first: it must never miss a step the checkpoint holds */
        fflush(tr->log);
        int rc = save_checkpoint(tr);
        if (rc != DCRW_OK) {
            end_live_line(L);
            cli_lib_error(rc, "cannot save %s at step %llu", tr->rd.ckpt, (unsigned long long)s);
            return CLI_FAIL;
        }
        L->last_ckpt = cli_now();
    }
    return CLI_OK;
}

/* Where the run stands after a failure: what the checkpoint holds, since
 * nothing after the failure is saved. */
static void report_kept(const trainer_run *tr) {
    cli_error("stopped; %s holds step %llu (log rows after it are dropped on --resume)",
              tr->rd.ckpt, (unsigned long long)tr->saved);
}

static void say_stopped(const trainer_run *tr, uint64_t s) {
    if (cli_stdout_failed()) {
        cli_error("standard output cannot be written any more: stopped after step %llu, saved "
                  "in %s",
                  (unsigned long long)s, tr->rd.ckpt);
        return;
    }
    printf("stopped by signal %d after step %llu; the checkpoint is saved; resume with: dcrw "
           "train --resume %s\n",
           cli_stop_signal(), (unsigned long long)s, tr->rd.dir);
    cli_flush_stdout();
}

/* The end's held-out bound, after the save. A second stop request
 * interrupts it: the run then ends at once (tr->quit). 0, or -1 after a
 * message. */
static int final_bound(trainer_run *tr, loop_state *L, uint64_t s) {
    const int stopping = cli_stop_requests() > 0;
    if (stopping && cli_stop_requests() >= 2) {
        tr->quit = 1;
        return 0;
    }
    if (stopping && !cli_stdout_failed()) {
        printf("held-out bound on %zu images (interrupt again to skip it)\n", tr->valid.n);
        cli_flush_stdout();
    }
    double vb;
    int r = held_out_bound(tr->m, &tr->valid, 2, &vb);
    if (r < 0) return -1;
    if (r == 1) {
        printf("held-out evaluation interrupted; %s holds step %llu\n", tr->rd.ckpt,
               (unsigned long long)s);
        cli_flush_stdout();
        tr->quit = 1;
        return 0;
    }
    L->last_valid = vb;
    rundir_log_bound(tr->log, s, tr->wall_offset + (cli_now() - L->start), vb);
    return 0;
}

/* Process 0 at the end of the loop: save first, say so, then the held-out
 * bound and the summary. */
static int finish_run(trainer_run *tr, loop_state *L, int status) {
    end_live_line(L);
    fflush(tr->log);
    if (status != CLI_OK) {
        report_kept(tr);
        return status;
    }
    uint64_t s = dcrw_trainer_step_count(tr->t);
    int rc = save_checkpoint(tr);
    if (rc != DCRW_OK) {
        cli_lib_error(rc, "cannot save %s at step %llu", tr->rd.ckpt, (unsigned long long)s);
        report_kept(tr);
        return CLI_FAIL;
    }
    if (cli_stop_requests() > 0) say_stopped(tr, s);
    /* the end of a run gets its bound, unless the last step just had one */
    if (tr->valid.n && s > L->first && !L->bound_at_end && final_bound(tr, L, s) != 0)
        status = CLI_FAIL;
    if (fflush(tr->log) != 0) {
        cli_error("%s: cannot write the log", tr->rd.log_path);
        status = CLI_FAIL;
    }
    if (tr->quit) return status;
    printf("done: step %llu (epoch %.2f), %llu steps in %.1f s (%.0f img/s while training)\n",
           (unsigned long long)s, (double)s / (double)L->spe, (unsigned long long)(s - L->first),
           cli_now() - L->start,
           L->train_time > 0 ? (double)(s - L->first) * L->B / L->train_time : 0.0);
    if (!isnan(L->last_valid))
        printf("held-out bound (%zu images): %.3f nats\n", tr->valid.n, L->last_valid);
    cli_flush_stdout();
    return status;
}

static int train_loop(trainer_run *tr) {
    loop_state L;
    if (loop_init(tr, &L) != 0) {
        loop_free(&L);
        return CLI_FAIL;
    }
    int status = CLI_OK;
    for (;;) {
        uint64_t s = dcrw_trainer_step_count(tr->t);
        if (loop_should_stop(&L, s, status)) break;
        dcrw_loss loss;
        double dt = 0;
        status = train_step(tr, &L, s, &loss, &dt);
        if (status != CLI_OK) break;
        /* a failure here is told to the others by the next stop decision */
        if (L.lead) status = after_step(tr, &L, s + 1, &loss, dt);
    }
    if (L.lead) status = finish_run(tr, &L, status);
    loop_free(&L);
    return status;
}

/* ------------------------------------------------------------------------ */

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

/* Flags, data, model and trainer, on every process; nothing is written. */
static int prepare(trainer_run *tr, const train_opts *o) {
    if (rundir_init(&tr->rd, tr->resume ? o->resume : o->out) != 0) return -1;
    if ((tr->resume ? resume_flags(tr, o) : new_run_flags(tr, o)) != 0) return -1;
    if (session_flags(&tr->f, o) != 0 || load_training_data(tr) != 0) return -1;
    if (check_run_outputs(tr) != 0 || create_trainer(tr) != 0) return -1;
    return 0;
}

/* Process 0 makes or reopens the run folder and opens its log. */
static int open_run_folder(trainer_run *tr) {
    if ((tr->resume ? reopen_run_folder(tr) : create_run_folder(tr)) != 0) return -1;
    tr->log = rundir_append_log(&tr->rd);
    return tr->log ? 0 : -1;
}

/* Process 0 after the loop: the log closed, the plot drawn. */
static int close_run(trainer_run *tr, int status) {
    if (fclose(tr->log) != 0 && status == CLI_OK) {
        cli_error("%s: cannot write the log", tr->rd.log_path);
        status = CLI_FAIL;
    }
    tr->log = NULL;
    if (tr->quit) return status;
    if (cli_plot_run(tr->rd.log_path, tr->rd.svg_path) == 0)
        printf("checkpoint %s\nlog        %s\nplot       %s\n", tr->rd.ckpt, tr->rd.log_path,
               tr->rd.svg_path);
    else
        printf("checkpoint %s\nlog        %s\n", tr->rd.ckpt, tr->rd.log_path);
    cli_flush_stdout();
    return status;
}

static int train_command(int argc, char **argv) {
    trainer_run tr;
    memset(&tr, 0, sizeof tr);
    tr.rd.lock_fd = -1;
    run_flags_default(&tr.f);
    train_opts o;
    int status = parse_options(argc, argv, &tr.f, &o);
    if (status >= 0) return status;
    /* from here a signal only asks to stop: at the latest after the first
     * step, with the run folder whole */
    cli_stop_install();
    status = CLI_BAD;
    tr.resume = o.resume != NULL;
    const int lead = dist_rank() == 0;
    int synced = 0;
    if (prepare(&tr, &o) == 0) {
        /* every process has read what it needs: process 0 may now write */
        synced = 1;
        if (start_together(1, tr.m, tr.t, tr.train)) {
            int ok = !lead || open_run_folder(&tr) == 0;
            synced = 2;
            if (all_ok(ok)) {
                if (lead) print_start(&tr);
                status = train_loop(&tr);
                if (lead) status = close_run(&tr, status);
            }
        }
    }
    /* a process that failed before the start still takes part in the
     * checks the others are waiting in */
    if (synced < 1) start_together(0, tr.m, tr.t, tr.train);
    if (synced < 2) all_ok(0);
    if (tr.log) fclose(tr.log);
    dcrw_trainer_destroy(tr.t);
    dcrw_model_destroy(tr.m);
    dcrw_dataset_destroy(tr.train);
    free(tr.f.data);
    rundir_free(&tr.rd);
    return status;
}
