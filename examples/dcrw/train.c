/* dcrw train: its command line, and the order of what follows from it on
 * every process (see train.h for how a run is made). */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "clutter.h"
#include "common.h"
#include "dist.h"
#include "train.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: dcrw train --preset NAME --data PATH --out RUNDIR BUDGET [OPTIONS]\n"
            "       dcrw train --init MODEL --data PATH --out RUNDIR BUDGET [OPTIONS]\n"
            "       dcrw train --resume RUNDIR [BUDGET] [--threads N] [--data PATH]\n"
            "\n"
            "Train a model on the training images at PATH (MNIST: data/mnist; the model's\n"
            "channels, height and width are the data's unless --set). RUNDIR (created with its\n"
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
            "  --preset NAME        draw, draw-noattn, dcrw (default), dcrw-noread, or\n"
            "                       draw-classify: the attention classifier, trained on the\n"
            "                       data's labels (cross-entropy, grey levels by default)\n"
            "  --set FIELD=VALUE    change a configuration field (repeatable):\n",
            dist_available() ? "This build has MPI." : "This build has no MPI.");
    train_print_set_fields(f, "                       ", 80);
    fprintf(f,
            "  --init MODEL         start from the parameters and configuration of MODEL (a\n"
            "                       model or checkpoint file; its step and Adam state are not\n"
            "                       used): step 0, fresh Adam moments; no --set, and --preset\n"
            "                       only as the one MODEL records; run.json identifies MODEL\n"
            "  --batch B            images per step (default 100; 50 for a new run of the\n"
            "                       dcrw preset)\n"
            "  --lr X               Adam learning rate (default 0.001)\n"
            "  --lr-halflife N      decay the rate smoothly, halving it every N steps:\n"
            "                       X * 2^(-step/N) (default 0: constant)\n"
            "  --lr-warmup W        raise the rate linearly over the first W steps, X/W to X\n"
            "                       (times the decay, if any; default 0: none)\n"
            "  --precision P        float32 (default) or bf16: the large products in bfloat16\n"
            "                       (AVX-512 BF16), float32 sums and master weights\n"
            "  --conditional        a class-conditional model (doc/MODEL.md §10): the labels\n"
            "                       of the data (K classes) join the decoder's and encoder's\n"
            "                       inputs; dcrw sample --label L then draws class L\n"
            "  --kl-warmup N        KL warm-up: the gradient of Lx + w*Lz with w rising from\n"
            "                       1/N to 1 over the first N steps (default 0: w = 1, and\n"
            "                       1000 for a new run of the draw preset); the losses\n"
            "                       printed and logged stay the true bound\n"
            "  --clip X             gradient-norm clip, 0 = off (default 5)\n"
            "  --seed N             initialisation, batches, binarization, noise (default 1)\n"
            "  --threads N          threads for the BLAS and the library, 0..%d (0 = default);\n"
            "                       the batch is split by thread, so resuming with another N\n"
            "                       matches the straight run only to float rounding\n"
            "Data:\n"
            "  --data PATH          a folder of IDX files (MNIST's names, plain or .gz, any\n"
            "                       prefix), an IDX or NumPy .npy file, train.npy or train/\n"
            "                       in PATH, or a folder of PNG images (class folders give\n"
            "                       labels); see dcrw(1)\n"
            "  --binarize MODE      dynamic (default; fresh bits every step), threshold, none\n"
            "                       (none by default for the classifier)\n"
            "  --valid N            hold out the last N training images for the periodic\n"
            "                       evaluation (default 5000; 0: train on all, no evaluation)\n"
            "  --train-n N          train on the first N images only (default: all the rest)\n"
            "  --clutter SIDE       train on cluttered canvases made afresh at every use: each\n"
            "                       image at a random place on a SIDExSIDE black canvas with\n"
            "                       8 fragments (8x8) of other training images (DRAW's\n"
            "                       cluttered MNIST with SIDE 100); grey levels only\n"
            "Reporting:\n"
            "  --eval-every N       held-out bound every N steps and at the end (default 500)\n"
            "  --checkpoint-minutes M  save every M minutes (default 5) and at the end\n"
            "  --progress-seconds S    progress line every S seconds when stdout is not a\n"
            "                       terminal (default 10); a terminal gets a live line\n",
            CLI_MAX_THREADS);
}

enum {
    O_PRESET = CLI_OPT_OWN,
    O_RESUME,
    O_INIT,
    O_STEPS,
    O_EPOCHS,
    O_MINUTES,
    O_BATCH,
    O_LR,
    O_LR_HALFLIFE,
    O_KL_WARMUP,
    O_LR_WARMUP,
    O_PRECISION,
    O_CLIP,
    O_THREADS,
    O_SET,
    O_VALID,
    O_TRAIN_N,
    O_EVAL_EVERY,
    O_CKPT_MIN,
    O_PROGRESS,
    O_CONDITIONAL,
    O_CLUTTER
};

static const cli_opt opts[] = {{"preset", 1, O_PRESET},
                               {"resume", 1, O_RESUME},
                               {"init", 1, O_INIT},
                               {"steps", 1, O_STEPS},
                               {"epochs", 1, O_EPOCHS},
                               {"minutes", 1, O_MINUTES},
                               {"batch", 1, O_BATCH},
                               {"lr", 1, O_LR},
                               {"lr-halflife", 1, O_LR_HALFLIFE},
                               {"kl-warmup", 1, O_KL_WARMUP},
                               {"lr-warmup", 1, O_LR_WARMUP},
                               {"precision", 1, O_PRECISION},
                               {"clip", 1, O_CLIP},
                               {"threads", 1, O_THREADS},
                               {"set", 1, O_SET},
                               {"valid", 1, O_VALID},
                               {"train-n", 1, O_TRAIN_N},
                               {"eval-every", 1, O_EVAL_EVERY},
                               {"checkpoint-minutes", 1, O_CKPT_MIN},
                               {"progress-seconds", 1, O_PROGRESS},
                               {"conditional", 0, O_CONDITIONAL},
                               {"clutter", 1, O_CLUTTER},
                               {NULL, 0, 0}};

typedef struct parse_ctx {
    run_flags *f;
    train_opts *o;
} parse_ctx;

static int parse_preset(const char *val, run_flags *f) {
    dcrw_preset p;
    if (dcrw_preset_from_name(val, &p) != DCRW_OK) {
        cli_error("--preset: unknown preset '%s' (draw, draw-noattn, dcrw, dcrw-noread, "
                  "draw-classify)",
                  val);
        return -1;
    }
    snprintf(f->preset, sizeof f->preset, "%s", dcrw_preset_name(p));
    return 0;
}

static int add_set(const char *val, train_opts *o) {
    if (o->nset >= (int)(sizeof o->sets / sizeof o->sets[0])) {
        cli_error("--set: too many assignments");
        return -1;
    }
    o->sets[o->nset++] = val;
    return 0;
}

/* The options that make the run (fixed on --resume), into f; *name says
 * which. 0 handled, 1 not one of them, -1 after a message. */
static int parse_run_option(int id, const char *val, run_flags *f, train_opts *o,
                            const char **name) {
    switch (id) {
    case O_PRESET:
        *name = "preset";
        o->preset_given = 1;
        return parse_preset(val, f);
    case O_BATCH:
        *name = "batch";
        return cli_parse_int(*name, val, 1, RUN_BATCH_MAX, &f->batch);
    case O_LR:
        *name = "lr";
        return cli_parse_double(*name, val, RUN_LR_MIN, RUN_LR_MAX, &f->lr);
    case O_LR_HALFLIFE:
        *name = "lr-halflife";
        return cli_parse_double(*name, val, 0.0, RUN_HALFLIFE_MAX, &f->lr_halflife);
    case O_KL_WARMUP:
        *name = "kl-warmup";
        return cli_parse_int(*name, val, 0, RUN_COUNT_MAX, &f->kl_warmup);
    case O_LR_WARMUP:
        *name = "lr-warmup";
        return cli_parse_int(*name, val, 0, RUN_COUNT_MAX, &f->lr_warmup);
    case O_PRECISION:
        *name = "precision";
        return cli_parse_precision(*name, val, &f->precision);
    case O_CLIP:
        *name = "clip";
        return cli_parse_double(*name, val, 0.0, RUN_CLIP_MAX, &f->clip);
    case O_SET:
        *name = "set";
        return add_set(val, o);
    case O_VALID:
        *name = "valid";
        return cli_parse_int(*name, val, 0, INT_MAX, &f->valid);
    case O_TRAIN_N:
        *name = "train-n";
        return cli_parse_int(*name, val, 1, INT_MAX, &f->train_n);
    case O_CONDITIONAL:
        /* recorded in run.json as the configuration's classes */
        *name = "conditional";
        o->conditional = 1;
        return 0;
    case O_CLUTTER:
        *name = "clutter";
        return cli_parse_int(*name, val, CLUTTER_FRAGMENT, RUN_CLUTTER_MAX, &f->clutter);
    }
    return 1;
}

static int parse_steps(const char *val, train_opts *o) {
    if (cli_parse_u64("steps", val, &o->steps) != 0) return -1;
    if (o->steps == 0) {
        cli_error("--steps: must be at least 1");
        return -1;
    }
    return 0;
}

/* The options of this invocation: budget and reporting. 0, or -1 after a
 * message. */
static int parse_session_option(int id, const char *val, train_opts *o) {
    o->budget_given |= id == O_STEPS || id == O_EPOCHS || id == O_MINUTES;
    switch (id) {
    case O_RESUME:
        o->resume = val;
        return 0;
    case O_INIT:
        o->init = val;
        return 0;
    case O_STEPS:
        return parse_steps(val, o);
    case O_EPOCHS:
        return cli_parse_int("epochs", val, 1, RUN_EPOCHS_MAX, &o->epochs);
    case O_MINUTES:
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

static int train_option(int id, const char *val, void *ctx) {
    parse_ctx *c = ctx;
    const char *name = NULL;
    int r = parse_run_option(id, val, c->f, c->o, &name);
    if (r == 1) return parse_session_option(id, val, c->o);
    c->o->fixed_name = name;
    c->o->batch_given |= id == O_BATCH;
    c->o->kl_warmup_given |= id == O_KL_WARMUP;
    return r;
}

static const cli_command train_cli = {usage,
                                      CLI_SHARED(CLI_OPT_DATA) | CLI_SHARED(CLI_OPT_OUT) |
                                          CLI_SHARED(CLI_OPT_SEED) | CLI_SHARED(CLI_OPT_BINARIZE),
                                      opts, 0, train_option};

/* What the options say together: -1 to go on, else the exit status. */
static int check_options(const cli_shared *s, train_opts *o) {
    if (s->given & CLI_SHARED(CLI_OPT_SEED)) o->fixed_name = "seed";
    if (s->given & CLI_SHARED(CLI_OPT_BINARIZE)) o->fixed_name = "binarize";
    o->binarize_given = (s->given & CLI_SHARED(CLI_OPT_BINARIZE)) != 0;
    if (o->resume && o->init) {
        cli_error("--init cannot be given with --resume: the run already has its start (the "
                  "model it started from is in its run.json)");
        return CLI_BAD;
    }
    if (o->init && o->nset) {
        cli_error("--set cannot be given with --init: the model's configuration is the one "
                  "%s holds",
                  o->init);
        return CLI_BAD;
    }
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

/* -1 to go on, else the exit status. */
static int parse_options(int argc, char **argv, run_flags *f, train_opts *o) {
    memset(o, 0, sizeof *o);
    o->eval_every = o->threads = -1;
    o->ckpt_min = o->prog = -1;
    cli_shared s;
    cli_shared_init(&s);
    s.seed = f->seed;
    s.binarize = f->binarize;
    parse_ctx c = {f, o};
    int status = cli_parse_args(&train_cli, argc, argv, &s, &c);
    if (status >= 0) return status;
    f->seed = s.seed;
    f->binarize = s.binarize;
    o->data = s.data;
    o->out = s.out;
    return check_options(&s, o);
}

/* Every process prepares, then process 0 opens the run folder, then all
 * train. A process that fails before the start still takes part in the
 * checks the others are waiting in. */
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
    if (train_prepare(&tr, &o) == 0) {
        /* every process has read what it needs: process 0 may now write */
        synced = 1;
        if (train_start_together(1, &tr)) {
            int ok = !lead || train_open_run_folder(&tr) == 0;
            synced = 2;
            if (dist_all_ok(ok)) {
                if (lead) train_print_start(&tr);
                status = train_loop(&tr);
                if (lead) status = train_close_run(&tr, status);
            }
        }
    }
    if (synced < 1) train_start_together(0, &tr);
    if (synced < 2) dist_all_ok(0);
    train_run_free(&tr);
    return status;
}

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
