/* dcrw train in four files: train.c reads the command line,
 * train_setup.c makes the model, the trainer and the run folder from it
 * (the folder's files are rundir.c's), train_config.c decides the model's
 * configuration, train_loop.c trains.
 *
 * A run is a pure function of (seed, flags): the batch of step s is the
 * slice s % S of the permutation of epoch s / S (S steps per epoch), drawn
 * from (seed, epoch); the binarization of step s is keyed by (seed, s); the
 * noise comes from the trainer, keyed by its seed and step count. So the
 * checkpoint's step count is all the state there is besides the trainer,
 * and --resume continues bit for bit. --init MODEL replaces the random
 * parameters of step 0 by the file's, nothing else: the trainer still
 * starts from step 0 with zero Adam moments.
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
#ifndef DCRW_CLI_TRAIN_H
#define DCRW_CLI_TRAIN_H

#include <stdint.h>
#include <stdio.h>

#include "clutter.h"
#include "common.h"
#include "rundir.h"

/* What the command line says besides the run's own flags. */
typedef struct train_opts {
    const char *out, *resume, *data;
    const char *init; /* --init MODEL */
    const char *sets[256];
    int nset, budget_given, preset_given;
    int binarize_given;               /* else a classifier reads grey levels (--binarize none) */
    int batch_given, kl_warmup_given; /* else a preset's own (train_setup.c) */
    int conditional;                  /* --conditional: classes from the data's labels */
    /* an option a resumed run may not change: the run is a function of it */
    const char *fixed_name;
    uint64_t steps;
    long epochs, eval_every, threads; /* -1: not given */
    double minutes, ckpt_min, prog;   /* -1: not given (minutes: 0) */
} train_opts;

/* The sizes a new model takes from its data: those not given with --set. */
enum { SIZE_HEIGHT = 1, SIZE_WIDTH = 2 };

/* The images the periodic bound is computed on. */
typedef struct held_out {
    const dcrw_dataset *d;
    size_t first, n;
    int binarize;
    const clutter *canvases; /* --clutter: the images on fixed canvases */
} held_out;

typedef struct trainer_run {
    run_flags f;
    rundir rd;
    int resume; /* --resume */
    int fresh;  /* the trainer starts from step 0 (a new run, or a run without checkpoint) */
    int channels_from_data; /* the configuration takes the data's channels */
    int size_from_data;     /* SIZE_HEIGHT, SIZE_WIDTH: and these of the data's sizes */
    int classes_from_data;  /* --conditional: the classes are the data's labels */
    dcrw_model *m;
    dcrw_trainer *t;
    dcrw_dataset *train;
    size_t ntrain;
    clutter canvases; /* --clutter */
    held_out valid;
    FILE *log;
    double wall_offset; /* the wall time of the log's last kept row */
    uint64_t saved;     /* the step the checkpoint on disk holds */
    int quit;           /* stop at once, without the last plot */
} trainer_run;

/* ---- train_setup.c */
/* FNV-1a, 64 bits, of @p n bytes, continuing from @p h (start with
 * TRAIN_FNV_START). */
#define TRAIN_FNV_START 0xcbf29ce484222325ull
uint64_t train_fnv(uint64_t h, const void *p, size_t n);
/* Flags, data, model and trainer, on every process; nothing is written.
 * 0, or -1 after a message. */
int train_prepare(trainer_run *tr, const train_opts *o);
/* The checks every process makes before the first step: that all are
 * @p ready and start from the same model, step and data. 1 when all are.
 * A collective call, also for a process that is not ready. */
int train_start_together(int ready, const trainer_run *tr);
/* Process 0 makes or reopens the run folder and opens its log: 0, or -1
 * after a message. */
int train_open_run_folder(trainer_run *tr);
void train_print_start(const trainer_run *tr);
/* The trainer's state into the run's checkpoint: DCRW_OK, or the
 * library's code with the file on disk as it was. */
int train_save_checkpoint(trainer_run *tr);
/* Process 0 after the loop: the log closed, the plot drawn. The exit
 * status. */
int train_close_run(trainer_run *tr, int status);
/* Everything @p tr holds; it may be partly made. */
void train_run_free(trainer_run *tr);

/* ---- train_config.c */
/* The names --set takes, with their values' forms, as a comma-separated
 * list wrapped to @p width columns, each line starting with @p indent. */
void train_print_set_fields(FILE *f, const char *indent, int width);
/* 1 if one of @p sets ("NAME=VALUE") sets the field @p name. */
int train_sets_field(const char *const *sets, int nset, const char *name);
/* f->cfg: the preset f->preset changed by each "NAME=VALUE" of @p sets. 0,
 * or -1 after a message. */
int train_config_from_command_line(run_flags *f, const char *const *sets, int nset);
/* --resume: f->cfg from the checkpoint, loaded into tr->m, or for a run
 * without checkpoint from run.json, and from the model it started from
 * when it had one (--init), loaded into tr->m. 0, or -1 after a message
 * (run.json describes another model than the checkpoint holds, or the
 * --init file now holds another model, say). */
int train_config_for_resume(trainer_run *tr);
/* --init PATH of a new run: tr->m loaded from it, f->cfg its
 * configuration, f->preset the preset the file records (a --preset must
 * name that one), f->init* what identifies it. 0, or -1 after a message. */
int train_config_from_init(trainer_run *tr, const char *path, int preset_given);
/* f->sets: the fields of f->cfg that differ from its preset (the channels
 * excepted), for run.json. 0, or -1 after a message. */
int train_config_record(run_flags *f);

/* ---- train_loop.c */
/* Steps until the budget, a stop request or a failure; process 0 logs,
 * reports and checkpoints, and saves at the end. The exit status. A
 * collective call. */
int train_loop(trainer_run *tr);

#endif
