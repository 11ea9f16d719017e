/* The run folder of dcrw train: run.json (the flags), log.csv (one row per
 * step), checkpoint.safetensors (written by the library), losses.svg, and
 * .lock, which the one process allowed to write the folder holds.
 *
 * A folder is a run once run.json is in it: a new run writes run.json
 * first, then the step-0 checkpoint, then the log, so whatever moment a
 * start is killed at, the folder is either no run yet (a new --out may use
 * it) or a run that --resume continues (without a checkpoint: from step 0). */
#ifndef DCRW_CLI_RUNDIR_H
#define DCRW_CLI_RUNDIR_H

#include <stdint.h>
#include <stdio.h>

#include "common.h"

/* Limits shared by the options of dcrw train and the reader of run.json, so
 * that a run file holds nothing the command line could not have given. */
#define RUN_BATCH_MAX 100000L
#define RUN_LR_MIN 1e-12
#define RUN_LR_MAX 10.0
#define RUN_HALFLIFE_MAX 1e15
#define RUN_CLIP_MAX 1e30
#define RUN_EPOCHS_MAX 1000000L
#define RUN_MINUTES_MAX 1e7
#define RUN_CLUTTER_MAX 4096L
/* counts that must survive a trip through a JSON number (a double) */
#define RUN_COUNT_MAX 9007199254740992.0

/* "set" in run.json: a configuration field that differs from the preset,
 * and its value as dcrw_config_set() reads it. */
#define RUN_SETS_MAX 64
typedef struct run_set {
    char name[32], value[48];
} run_set;

/* The flags of a run: everything run.json holds. Since format 2 that is
 * the preset and the fields that differ from it, not the configuration,
 * which the checkpoint holds; the runs of dcrw 0.1 and 0.2 (format 1)
 * stored the configuration itself. */
typedef struct run_flags {
    char preset[32];
    run_set sets[RUN_SETS_MAX];
    int nset;
    int cfg_given;   /* run.json of format 1: cfg holds its configuration */
    dcrw_config cfg; /* the run's configuration, once known */
    long batch;
    double lr, lr_halflife, clip;
    long kl_warmup; /* steps of KL warm-up, 0 for none */
    long lr_warmup; /* steps of the rate's linear warm-up, 0 for none */
    int precision;  /* dcrw_precision of the products */
    uint64_t seed;
    long threads;
    int binarize;
    long valid, train_n;
    long clutter; /* --clutter SIDE: fresh cluttered canvases (clutter.h), 0: off */
    char *data;   /* absolute path of --data */
    /* --init: the model file as given, and what identifies the model it
     * held (its parameter floats and their FNV-1a hash), so that a start
     * killed before its first checkpoint begins again from that model;
     * NULL for a run from a random model */
    char *init;
    uint64_t init_params, init_hash;
    uint64_t steps;
    long epochs;
    double minutes;
    long eval_every;
    double checkpoint_minutes, progress_seconds;
} run_flags;

void run_flags_default(run_flags *f);

typedef struct rundir {
    char *dir, *ckpt, *log_path, *json_path, *svg_path, *lock_path;
    int lock_fd; /* -1 when not locked */
} rundir;

/* The names of the files of a run folder, NULL-terminated. */
extern const char *const rundir_files[];

/* The paths of the folder's files; -1 after a message (out of memory). */
int rundir_init(rundir *rd, const char *dir);
/* Releases the lock and frees the paths; rd may be zeroed. */
void rundir_free(rundir *rd);
/* Take the folder's lock (flock on .lock, kept until rundir_free or the
 * process ends, however it ends). -1 after a message naming the folder
 * when another process holds it. */
int rundir_lock(rundir *rd);
/* Whether @p path exists (as anything, a dangling link included). */
int rundir_exists(const char *path);

/* run.json, read with cJSON: every key must be there once with a value in
 * the range its option allows (lr_halflife may be missing: the runs of
 * dcrw 0.1.0 had none; kl_warmup likewise, before 0.4). Format 1 (dcrw 0.1 and 0.2) holds the
 * configuration's fields and no "set"; format 2, written now, the
 * reverse, and for a run started with --init the keys "init",
 * "init_params" and "init_fnv1a64" together. -1 after a message. */
int rundir_read_flags(const rundir *rd, run_flags *f);
int rundir_write_flags(const rundir *rd, const run_flags *f);

/* Rewrite log.csv with its rows up to step @p upto (the rows after the
 * checkpoint are made again); a missing log becomes a header alone.
 * *last_wall: the wall time of the last row kept. -1 after a message. */
int rundir_keep_log(const rundir *rd, uint64_t upto, double *last_wall);
/* log.csv opened for appending rows; NULL after a message. */
FILE *rundir_append_log(const rundir *rd);
/* One row: a step (bound NaN when the step had no held-out evaluation),
 * or a held-out bound alone. */
void rundir_log_step(FILE *log, uint64_t step, double wall, const dcrw_loss *l, double ips,
                     double bound);
void rundir_log_bound(FILE *log, uint64_t step, double wall, double bound);
/* Remove the temporary files that atomic writes of the folder's files
 * (the command's and the library's) leave when a process is killed
 * mid-write. Only with the lock held: no other writer can be using them. */
void rundir_remove_stale(const rundir *rd);

#endif
