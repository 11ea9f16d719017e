/* The training loop of dcrw train: one step on every process, then process
 * 0 logs it, reports progress, computes the held-out bound when due and
 * checkpoints when its time has come; at the end it saves first, then
 * reports (see train.h). */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "dist.h"
#include "train.h"

#define BINARIZE_KEY 0x62696e6172697a65ull /* keeps the step keys apart from others */
#define EPOCH_KEY 0x65706f6368730000ull

/* The held-out loss of one batch, summed into *sum: the bound of each image
 * (noise keyed by its index in the training set; given its label for a
 * conditional model), or for a classifier −log p(label) and, into *wrong,
 * the images whose most probable class is not their label. */
static int held_out_batch(const dcrw_model *m, const held_out *h, size_t first, int nb, float *x,
                          double *lx, double *lz, float *probs, int K, double *sum, double *wrong) {
    size_t idx[100];
    int32_t labels[100];
    for (int b = 0; b < nb; b++) idx[b] = first + (size_t)b;
    for (int b = 0; b < nb; b++) labels[b] = dcrw_dataset_label(h->d, idx[b]);
    int rc = DCRW_OK;
    if (h->canvases)
        clutter_batch(h->canvases, idx, nb, CLUTTER_FIXED_USE, x);
    else
        rc = dcrw_dataset_batch(h->d, idx, nb, h->binarize, CLI_EVAL_BINARIZE_SEED, x);
    if (rc == DCRW_OK && !probs && K)
        rc = dcrw_evaluate_labels(m, nb, x, labels, CLI_EVAL_NOISE_SEED, (int64_t)first, lx, lz);
    else if (rc == DCRW_OK && !probs)
        rc = dcrw_evaluate_images_part(m, nb, x, CLI_EVAL_NOISE_SEED, (int64_t)first, lx, lz);
    if (rc == DCRW_OK && probs) rc = dcrw_classify(m, nb, x, probs);
    for (int b = 0; rc == DCRW_OK && b < nb; b++) {
        if (!probs) {
            *sum += lx[b] + lz[b];
            continue;
        }
        const float *p = probs + (size_t)b * K;
        *sum -= log(p[labels[b]]);
        *wrong += cli_argmax(p, K) != labels[b];
    }
    return rc;
}

/* The bound on held-out images with fixed binarization and noise, so that
 * two evaluations differ only through the model (a classifier: its mean
 * −log p(label), and in *error the fraction it gets wrong; NaN else).
 * Between batches it gives up once @p interrupt_at stop requests have
 * come. 0 with the bound in *out, 1 interrupted, -1 after a message (a
 * failure, or a bound that is not a finite number). */
static int held_out_bound(const dcrw_model *m, const held_out *h, int interrupt_at, double *out,
                          double *error) {
    const int B = 100;
    size_t P = dcrw_model_input_size(m);
    dcrw_config cfg = {.size = sizeof cfg};
    dcrw_model_config(m, &cfg);
    const int K = cfg.classes;
    float *x = malloc((size_t)B * P * sizeof *x);
    float *probs = cfg.classify ? malloc((size_t)B * K * sizeof *probs) : NULL;
    double *lx = malloc((size_t)B * sizeof *lx), *lz = malloc((size_t)B * sizeof *lz);
    int rc = (x && lx && lz && (!cfg.classify || probs)) ? DCRW_OK : DCRW_ENOMEM, result = 0;
    double sum = 0.0, wrong = 0.0;
    for (size_t i = 0; rc == DCRW_OK && i < h->n; i += (size_t)B) {
        if (cli_stop_requests() >= interrupt_at) {
            result = 1;
            break;
        }
        int nb = (int)(h->n - i < (size_t)B ? h->n - i : (size_t)B);
        rc = held_out_batch(m, h, h->first + i, nb, x, lx, lz, probs, K, &sum, &wrong);
    }
    if (rc == DCRW_ENUMERIC)
        cli_lib_error(rc, "the held-out bound is not a finite number: the model gives NaN or "
                          "infinity on held-out images");
    else if (rc != DCRW_OK)
        cli_lib_error(rc, "held-out evaluation failed");
    free(x);
    free(probs);
    free(lx);
    free(lz);
    *out = h->n ? sum / (double)h->n : NAN;
    *error = cfg.classify && h->n ? wrong / (double)h->n : NAN;
    if (rc == DCRW_OK && result == 0 && !isfinite(*out)) {
        /* finite per image, but too large to sum */
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

/* This process's share of a global batch of B: see train.h. */
static void batch_share(int B, int *first, int *count) {
    const int K = dist_size(), r = dist_rank();
    *first = r * (B / K) + (r < B % K ? r : B % K);
    *count = B / K + (r < B % K);
}

typedef struct loop_state {
    int B, off, Bp, lead, tty, printed_tty;
    uint64_t spe, target, first, cur_epoch;
    size_t *perm;
    float *x, *grads;
    int32_t *labels; /* a classifier's batch labels */
    size_t ngrad;
    double start, deadline, last_ckpt, last_print, train_time;
    double win_lx, win_lz, win_time;
    long win_steps;
    int bound_at_end; /* the last step made had its held-out bound */
    double last_valid, last_error;
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
    L->labels = malloc((size_t)L->Bp * sizeof *L->labels);
    if (!L->perm || !L->x || !L->labels)
        cli_error("out of memory for %zu training images", tr->ntrain);
    if (!dist_all_ok(L->perm && L->x && L->labels)) return -1;
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
    L->last_valid = L->last_error = NAN;
    return 0;
}

static void loop_free(loop_state *L) {
    free(L->perm);
    free(L->x);
    free(L->labels);
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
/* The rate of step s (counted from 0): X * min(1, (s + 1) / W) * 2^(-s / N).
 * The warm-up starts above zero so that the first step moves. */
static double step_rate(const run_flags *f, uint64_t s) {
    double r = f->lr;
    if (f->lr_warmup > 0) r *= fmin(1.0, (double)(s + 1) / (double)f->lr_warmup);
    if (f->lr_halflife > 0) r *= exp2(-(double)s / f->lr_halflife);
    return fmax(r, (double)FLT_MIN);
}

static int train_step(trainer_run *tr, loop_state *L, uint64_t s, dcrw_loss *loss, double *dt) {
    const run_flags *f = &tr->f;
    uint64_t epoch = s / L->spe, pos = s % L->spe;
    if (epoch != L->cur_epoch) {
        cli_permutation(L->perm, tr->ntrain, cli_key(f->seed ^ EPOCH_KEY, epoch));
        L->cur_epoch = epoch;
    }
    /* binarization is keyed by the image, so gathering a share gives the
     * bits the whole batch would have */
    const size_t *idx = L->perm + pos * (uint64_t)L->B + (uint64_t)L->off;
    int rc = DCRW_OK;
    if (f->clutter)
        clutter_batch(&tr->canvases, idx, L->Bp, epoch, L->x);
    else
        rc = dcrw_dataset_batch(tr->train, idx, L->Bp, f->binarize,
                                cli_key(f->seed ^ BINARIZE_KEY, s), L->x);
    double t0 = cli_now();
    memset(loss, 0, sizeof *loss);
    /* KL warm-up: w = (s + 1) / N, a pure function of the step count like
     * the rate, so a resumed run weighs alike */
    if (rc == DCRW_OK && f->kl_warmup > 0)
        rc = dcrw_trainer_set_kl_weight(tr->t,
                                        (float)fmin(1.0, (double)(s + 1) / (double)f->kl_warmup));
    if (rc == DCRW_OK && f->cfg.classes) {
        /* the classifier or a conditional model: this process's labels */
        for (int b = 0; b < L->Bp; b++) L->labels[b] = dcrw_dataset_label(tr->train, idx[b]);
        rc = dcrw_trainer_backward_labels_part(tr->t, L->Bp, L->x, L->labels, NULL, L->off, L->B,
                                               loss);
    } else if (rc == DCRW_OK) {
        rc = dcrw_trainer_backward_part(tr->t, L->Bp, L->x, NULL, L->off, L->B, loss);
    }
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
    /* a pure function of the step count, so a resumed run follows the
     * same schedule */
    if (f->lr_halflife > 0 || f->lr_warmup > 0)
        dcrw_trainer_set_learning_rate(tr->t, (float)step_rate(f, s));
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

static void report_progress(const trainer_run *tr, loop_state *L, uint64_t s, double now) {
    double ips = L->win_time > 0 ? (double)L->win_steps * L->B / L->win_time : 0.0;
    double sps = ips / L->B, eta = INFINITY;
    if (L->target != UINT64_MAX && sps > 0) eta = (double)(L->target - s) / sps;
    if (L->deadline - now < eta) eta = L->deadline - now;
    char etab[32], vbuf[64] = "";
    fmt_duration(etab, sizeof etab, eta);
    if (!isnan(L->last_error))
        snprintf(vbuf, sizeof vbuf, "  held-out %.3f (%.2f%% wrong)", L->last_valid,
                 100.0 * L->last_error);
    else if (!isnan(L->last_valid))
        snprintf(vbuf, sizeof vbuf, "  held-out %.2f", L->last_valid);
    char lbuf[64];
    if (tr->f.cfg.classify)
        snprintf(lbuf, sizeof lbuf, "loss %.3f", L->win_lx / L->win_steps);
    else
        snprintf(lbuf, sizeof lbuf, "Lx %.2f  Lz %.2f", L->win_lx / L->win_steps,
                 L->win_lz / L->win_steps);
    printf("%sstep %llu  epoch %llu (%.0f%%)  %s  %.0f img/s  ETA %s%s%s", L->tty ? "\r" : "",
           (unsigned long long)s, (unsigned long long)((s - 1) / L->spe + 1),
           100.0 * (double)((s - 1) % L->spe + 1) / (double)L->spe, lbuf, ips, etab, vbuf,
           L->tty ? "\033[K" : "\n");
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
        double err;
        int r = held_out_bound(tr->m, &tr->valid, 1, &vb, &err);
        if (r < 0) return CLI_FAIL;
        if (r == 0) L->last_valid = vb, L->last_error = err;
        L->bound_at_end = r == 0;
    }
    double now = cli_now();
    rundir_log_step(tr->log, s, tr->wall_offset + (now - L->start), loss, dt > 0 ? L->B / dt : 0.0,
                    vb);
    if (now - L->last_print >= (L->tty ? 0.25 : f->progress_seconds) || L->bound_at_end) {
        fflush(tr->log);
        report_progress(tr, L, s, now);
    }
    if (f->checkpoint_minutes > 0 && now - L->last_ckpt >= 60.0 * f->checkpoint_minutes) {
        /* the log first: it must never miss a step the checkpoint holds */
        fflush(tr->log);
        int rc = train_save_checkpoint(tr);
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
    double vb, err;
    int r = held_out_bound(tr->m, &tr->valid, 2, &vb, &err);
    if (r < 0) return -1;
    if (r == 1) {
        printf("held-out evaluation interrupted; %s holds step %llu\n", tr->rd.ckpt,
               (unsigned long long)s);
        cli_flush_stdout();
        tr->quit = 1;
        return 0;
    }
    L->last_valid = vb;
    L->last_error = err;
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
    int rc = train_save_checkpoint(tr);
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
    if (!isnan(L->last_error))
        printf("held-out (%zu images): loss %.4f nats, %.2f%% wrong\n", tr->valid.n, L->last_valid,
               100.0 * L->last_error);
    else if (!isnan(L->last_valid))
        printf("held-out bound (%zu images): %.3f nats\n", tr->valid.n, L->last_valid);
    cli_flush_stdout();
    return status;
}

int train_loop(trainer_run *tr) {
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
