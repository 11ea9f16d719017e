/* A batch split into chunks, one per thread, each a whole pass through
 * time (lib/pass.h) with its own workspace. The images of a batch are
 * independent, so the chunks need no synchronisation until their weight
 * gradients are summed. Noise drawn by the library is keyed by each image's
 * index in the whole batch, so the noise does not depend on the split; the
 * numbers do only through rounding: OpenBLAS may round a row differently
 * for a different number of rows in a product, and the gradients' sum
 * follows the chunks. The forward's products with packed weights round a
 * row alike whatever the chunk (lib/pass.h). */
#ifndef DCRW_LIB_RUNNER_H
#define DCRW_LIB_RUNNER_H

#include <stdint.h>

#include "pass.h"
#include "threads.h"

typedef struct dcrw_runner {
    const dcrw_model *m;
    int B, n;     /* images, chunks */
    int *b0, *nb; /* chunk i holds images b0[i] .. b0[i] + nb[i] − 1 */
    dcrw_pass **ps;
    pass_weights *pw; /* the chunks' packed weights, or NULL (lib/pass.h) */
    int precision;    /* the model's when the runner was made */
    float **grad;     /* chunk gradients (backward runners; chunk 0 has none) */
    double *lx, *lz;  /* per image, B each */
    dcrw_pool *pool;  /* borrowed, may be NULL */
} dcrw_runner;

/* A runner for B images over at most `threads` chunks of the pool (or
 * serially without one). */
int dcrw_runner_create(dcrw_runner **out, const dcrw_model *m, int B, int threads, int backward,
                       dcrw_pool *pool);
void dcrw_runner_destroy(dcrw_runner *r);

/* Pack the weights from the model's current values, split over the pool:
 * before every operation (the parameters may have been written since the
 * last), all of them or (decoder_only) those generation uses. Nothing to
 * do without packed weights. */
void dcrw_runner_pack(dcrw_runner *r, int decoder_only);

/* Where the noise comes from: the caller's eps [T×B×Z], or drawn from
 * (seed, stream) and each image's index, first + b for image b (first > 0
 * when this batch is one part of a larger one, as on an MPI rank). */
typedef struct runner_noise {
    const float *eps;
    uint64_t seed, stream, first;
} runner_noise;

/* Forward of §4 (§9 for a classifier; labels [B] for a classifier or a
 * conditional model, §10, NULL otherwise); r->lx, r->lz get each image's
 * losses; out (may be NULL) receives whole-batch outputs. */
void dcrw_runner_forward(dcrw_runner *r, const float *x, const int32_t *labels, runner_noise noise,
                         const pass_outputs *out);

/* Forward and backward of inv_total·Σ (Lx + kl_weight·Lz) over the batch
 * (inv_total = 1/B: the batch mean; a classifier's labels [B] give its
 * Lx); grad (laid out like the parameters) is overwritten. */
void dcrw_runner_backward(dcrw_runner *r, const float *x, const int32_t *labels, runner_noise noise,
                          float inv_total, float kl_weight, float *grad);

/* Generation from z [T×B×Z] or the prior (noise.eps = NULL), with a
 * conditional model's labels [B] (NULL otherwise). */
void dcrw_runner_generate(dcrw_runner *r, const int32_t *labels, runner_noise noise,
                          const pass_outputs *out);

#endif
