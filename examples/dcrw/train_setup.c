/* dcrw train before its first step: the flags (from the command line or
 * run.json), the data, the model and the trainer, checked on every
 * process before process 0 writes anything; then the run folder, and
 * after the loop its log and plot (see train.h). */
/* realpath() is XSI */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common.h"
#include "dist.h"
#include "train.h"

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
    return train_config_for_resume(tr);
}

/* What a preset's new runs take unless the command line says otherwise,
 * chosen on held-out images alone on a 2-core machine (doc/RESULTS.md, "The
 * recipe"): dcrw learns more in the same minutes from twice the steps of
 * half the images; draw escapes its first thousand steps of posterior
 * collapse with a KL warm-up. --init (a trained model) keeps the general
 * defaults. 0: the general default. */
static const struct {
    const char *preset;
    long batch, kl_warmup;
} preset_recipe[] = {
    {"dcrw", 50, 0},
    {"draw", 0, 1000},
};

static void apply_preset_recipe(run_flags *f, const train_opts *o) {
    if (o->init) return;
    for (size_t i = 0; i < sizeof preset_recipe / sizeof preset_recipe[0]; i++) {
        if (strcmp(preset_recipe[i].preset, f->preset) != 0) continue;
        if (preset_recipe[i].batch && !o->batch_given) f->batch = preset_recipe[i].batch;
        if (preset_recipe[i].kl_warmup && !o->kl_warmup_given)
            f->kl_warmup = preset_recipe[i].kl_warmup;
    }
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
        cli_error("give --data PATH (a folder of MNIST IDX files, an IDX or .npy file, or a folder "
                  "of PNG images)");
        return -1;
    }
    /* the model of --init has its shape: the data must match it */
    tr->channels_from_data = !o->init;
    tr->size_from_data = 0;
    if (!o->init && !train_sets_field(o->sets, o->nset, "height"))
        tr->size_from_data |= SIZE_HEIGHT;
    if (!o->init && !train_sets_field(o->sets, o->nset, "width")) tr->size_from_data |= SIZE_WIDTH;
    if (o->init ? train_config_from_init(tr, o->init, o->preset_given)
                : train_config_from_command_line(f, o->sets, o->nset))
        return -1;
    /* the classifier looks at the images as they are, as in DRAW's §4.1 */
    if (f->cfg.classify && !o->binarize_given) f->binarize = DCRW_BINARIZE_NONE;
    apply_preset_recipe(f, o);
    if (o->conditional && (f->cfg.classify || o->init)) {
        cli_error("--conditional: %s", f->cfg.classify ? "the classifier takes labels already"
                                                       : "the model of --init has its classes");
        return -1;
    }
    tr->classes_from_data = o->conditional;
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

/* A model that takes labels: every image labelled with one of its K
 * classes (K = 0: as many as the labels say, into *K). */
static int check_labels(const dcrw_dataset *d, int32_t *K) {
    const size_t n = dcrw_dataset_count(d);
    const int32_t want = *K;
    for (size_t i = 0; i < n; i++) {
        const int l = dcrw_dataset_label(d, i);
        if (l < 0) {
            cli_error("--data: image %zu has no label (%s trains on labelled data: IDX images "
                      "with their labels file, or a folder of class folders)",
                      i, want ? "a model that takes labels" : "--conditional");
            return -1;
        }
        if (!want) {
            if (l >= *K) *K = l + 1;
            continue;
        }
        if (l >= want) {
            cli_error("--data: image %zu has label %d, but the model has %d classes (--set "
                      "classes=N)",
                      i, l, (int)want);
            return -1;
        }
    }
    if (*K < 2) {
        cli_error("--data: the labels name %d class; --conditional needs at least 2", (int)*K);
        return -1;
    }
    return 0;
}

/* The training images, the held-out ones, and what the flags ask of them. */
static int load_training_data(trainer_run *tr) {
    run_flags *f = &tr->f;
    if (cli_load_split(f->data, SPLIT_TRAIN, &tr->train) != 0) return -1;
    int dc = 0, dh = 0, dw = 0;
    dcrw_dataset_shape(tr->train, &dc, &dh, &dw);
    if (f->clutter && f->binarize != DCRW_BINARIZE_NONE) {
        cli_error("--clutter makes grey canvases: give --binarize none");
        return -1;
    }
    /* the model sees the canvases, not the images */
    const int ih = f->clutter ? (int)f->clutter : dh, iw = f->clutter ? (int)f->clutter : dw;
    if (tr->channels_from_data) f->cfg.channels = dc;
    if (tr->size_from_data & SIZE_HEIGHT) f->cfg.height = ih;
    if (tr->size_from_data & SIZE_WIDTH) f->cfg.width = iw;
    /* the shape first: a --set that contradicts the data is named as such,
     * not as a configuration the sizes of the data make invalid */
    const char *fix = tr->resume   ? "give the --data the run was trained on"
                      : tr->f.init ? "the model of --init has its %s: give data of its shape"
                                   : "drop --set %s: a new model takes its size from the data";
    if (f->clutter && (f->cfg.channels != dc || f->cfg.height != ih || f->cfg.width != iw)) {
        cli_error("--clutter %ld makes %dx%ldx%ld canvases (CxHxW) but the model takes %dx%dx%d",
                  f->clutter, dc, f->clutter, f->clutter, (int)f->cfg.channels, (int)f->cfg.height,
                  (int)f->cfg.width);
        return -1;
    }
    if (!f->clutter && cli_check_shape(tr->train, &f->cfg, "--data", fix) != 0) return -1;
    int rc = dcrw_config_validate(&f->cfg);
    if (rc != DCRW_OK) {
        cli_lib_error(rc, "the model configuration is invalid for %dx%dx%d images (CxHxW)", dc, dh,
                      dw);
        return -1;
    }
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
    if (tr->classes_from_data) f->cfg.classes = 0;
    if ((f->cfg.classes || tr->classes_from_data) && check_labels(tr->train, &f->cfg.classes) != 0)
        return -1;
    /* the fragments come from the training images alone */
    if (f->clutter && clutter_init(&tr->canvases, tr->train, tr->ntrain, (int)f->clutter, f->seed))
        return -1;
    held_out v = {tr->train, count - (size_t)f->valid, (size_t)f->valid, f->binarize,
                  f->clutter ? &tr->canvases : NULL};
    tr->valid = v;
    return 0;
}

/* No file of the run folder may be one of the data files (a link). */
static int check_run_outputs(const trainer_run *tr) {
    const rundir *rd = &tr->rd;
    cli_file out[] = {{rd->ckpt, "the checkpoint"},
                      {rd->log_path, "the log"},
                      {rd->json_path, "the run file"},
                      {rd->svg_path, "the plot"},
                      {rd->lock_path, "the lock file"}};
    return cli_check_data_outputs(NULL, tr->f.data, out, sizeof out / sizeof out[0]);
}

static int create_trainer(trainer_run *tr) {
    run_flags *f = &tr->f;
    /* a resumed run has its model from the checkpoint already */
    int rc = tr->m ? DCRW_OK : dcrw_model_create(&tr->m, &f->cfg, f->seed);
    if (rc != DCRW_OK) {
        cli_lib_error(rc, "cannot create the model");
        return -1;
    }
    if (cli_set_precision(tr->m, f->precision) != 0) return -1;
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

int train_save_checkpoint(trainer_run *tr) {
    int rc = dcrw_trainer_save(tr->t, tr->rd.ckpt);
    if (rc == DCRW_OK) tr->saved = dcrw_trainer_step_count(tr->t);
    return rc;
}

static int save_first_checkpoint(trainer_run *tr) {
    int rc = train_save_checkpoint(tr);
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

void train_print_start(const trainer_run *tr) {
    const run_flags *f = &tr->f;
    const uint64_t spe = tr->ntrain / (uint64_t)f->batch;
    if (tr->resume && tr->fresh)
        printf("%s holds no checkpoint (its first start was stopped before it saved one): "
               "starting the run from step 0\n",
               tr->rd.dir);
    char sizes[96];
    if (f->cfg.classify)
        snprintf(sizes, sizeof sizes, "T=%d, E=%d, N=%d, K=%d", (int)f->cfg.glimpses,
                 (int)f->cfg.enc_size, (int)f->cfg.read_n, (int)f->cfg.classes);
    else
        snprintf(sizes, sizeof sizes, "T=%d, D=%d, Z=%d", (int)f->cfg.glimpses,
                 (int)f->cfg.dec_size, (int)f->cfg.z_size);
    printf("%s: preset %s, %s, %zu parameters; %zu training images "
           "(%llu steps of %ld per epoch), %zu held out; run folder %s\n",
           tr->resume ? "resuming" : "training", f->preset, sizes, dcrw_model_param_floats(tr->m),
           tr->ntrain, (unsigned long long)spe, f->batch, tr->valid.n, tr->rd.dir);
    if (dist_size() > 1) {
        long K = dist_size(), q = f->batch / K, extra = f->batch % K;
        if (extra)
            printf("%ld processes share each batch: %ld images in the first %ld, %ld in the "
                   "others\n",
                   K, q + 1, extra, q);
        else
            printf("%ld processes share each batch: %ld images each\n", K, q);
    }
    if (f->init && tr->fresh)
        printf("starting from the model in %s (%llu parameters, FNV-1a %016llx), with a fresh "
               "optimizer: step 0, zero Adam moments\n",
               f->init, (unsigned long long)f->init_params, (unsigned long long)f->init_hash);
    if (tr->resume && !tr->fresh)
        printf("continuing from step %llu\n", (unsigned long long)tr->saved);
    cli_flush_stdout();
}

uint64_t train_fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* FNV-1a over what every process must hold alike before the first step */
static uint64_t start_state_hash(const trainer_run *tr) {
    const dcrw_model *m = tr->m;
    const dcrw_dataset *train = tr->train;
    uint64_t h = TRAIN_FNV_START, step = dcrw_trainer_step_count(tr->t);
    size_t n = 0, count = dcrw_dataset_count(train);
    const float *p = dcrw_model_params(m, &n);
    h = train_fnv(h, &step, sizeof step);
    h = train_fnv(h, &count, sizeof count);
    if (p) h = train_fnv(h, p, n * sizeof *p);
    /* a few images stand for the data: a different file on one node shows */
    size_t idx[16], P = dcrw_model_input_size(m);
    int nb = (int)(count < 16 ? count : 16);
    float *img = nb > 0 ? malloc((size_t)nb * P * sizeof *img) : NULL;
    if (img) {
        for (int i = 0; i < nb; i++) idx[i] = (size_t)i * (count / (size_t)nb);
        if (dcrw_dataset_batch(train, idx, nb, DCRW_BINARIZE_NONE, 0, img) == DCRW_OK)
            h = train_fnv(h, img, (size_t)nb * P * sizeof *img);
    }
    free(img);
    return h;
}

int train_start_together(int ready, const trainer_run *tr) {
    if (dist_size() == 1) return ready;
    uint64_t mine[2] = {(uint64_t)ready, ready ? start_state_hash(tr) : 0};
    uint64_t lead[2] = {mine[0], mine[1]};
    dist_bcast(lead, sizeof lead);
    if (ready && lead[0] && mine[1] != lead[1]) {
        cli_error("this process starts from another model, step or data set than process 0: "
                  "every node must see the same --data and run folder (a shared file system)");
        ready = 0;
    }
    if (dist_all_ok(ready)) return 1;
    if (ready && dist_rank() == 0) cli_error("another process could not start (see its message)");
    return 0;
}

int train_prepare(trainer_run *tr, const train_opts *o) {
    if (rundir_init(&tr->rd, tr->resume ? o->resume : o->out) != 0) return -1;
    if ((tr->resume ? resume_flags(tr, o) : new_run_flags(tr, o)) != 0) return -1;
    if (session_flags(&tr->f, o) != 0 || load_training_data(tr) != 0) return -1;
    if (check_run_outputs(tr) != 0 || create_trainer(tr) != 0) return -1;
    return train_config_record(&tr->f);
}

int train_open_run_folder(trainer_run *tr) {
    if ((tr->resume ? reopen_run_folder(tr) : create_run_folder(tr)) != 0) return -1;
    tr->log = rundir_append_log(&tr->rd);
    return tr->log ? 0 : -1;
}

int train_close_run(trainer_run *tr, int status) {
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

void train_run_free(trainer_run *tr) {
    if (tr->log) fclose(tr->log);
    tr->log = NULL;
    dcrw_trainer_destroy(tr->t);
    dcrw_model_destroy(tr->m);
    dcrw_dataset_destroy(tr->train);
    free(tr->f.data);
    free(tr->f.init);
    rundir_free(&tr->rd);
    tr->t = NULL;
    tr->m = NULL;
    tr->train = NULL;
    tr->f.data = NULL;
    tr->f.init = NULL;
}
