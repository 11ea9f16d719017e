/* Models and trainers as safetensors checkpoints (MODEL.md §8): the
 * configuration in the metadata, the parameters under their §7 names, and
 * for a trainer the Adam moments (adam.m.NAME, adam.v.NAME) and the step
 * count (dcrw.step). The one place that knows these names; the container
 * itself is lib/safetensors.c. */
#ifndef DCRW_LIB_CHECKPOINT_H
#define DCRW_LIB_CHECKPOINT_H

#include <stdint.h>

#include "model.h"

struct st_file;
struct st_out;

/* Save m plus extra tensors and metadata pairs, atomically. */
int dcrw_ckpt_write(const char *path, const dcrw_model *m, const struct st_out *extra, int nextra,
                    const char *const *extra_keys, const char *const *extra_vals, int nextra_meta);

/* Build a model from a parsed file: configuration from the metadata, every
 * required tensor present, F32, with the shape the configuration implies.
 * Unknown tensors and keys are ignored. */
int dcrw_ckpt_model_from_file(const struct st_file *f, dcrw_model **out);

/* Copy tensor `name` of f into dst (count floats), checking dtype and that
 * its shape has exactly count elements and matches `shape` (ndim dims). */
int dcrw_ckpt_copy_tensor(const struct st_file *f, const char *name, int ndim, const int64_t *shape,
                          float *dst);

/* A trainer checkpoint of m: its parameters, the moments am and av (laid
 * out like them), the step count and the train config's seed and learning
 * rate, atomically. DCRW_ENUMERIC (nothing written) for what
 * dcrw_ckpt_read_trainer would refuse. */
int dcrw_ckpt_write_trainer(const char *path, const dcrw_model *m, const float *am, const float *av,
                            uint64_t step, uint64_t seed, float learning_rate);

/* Read a checkpoint for a trainer of m, whose configuration it must have
 * (DCRW_ESHAPE): the parameters into params, both moments into moments
 * (2 × the parameter floats, m then v; zeros where the file has none, as a
 * model checkpoint), and dcrw.step (0 when absent) into *step. m itself is
 * not changed. */
int dcrw_ckpt_read_trainer(const char *path, const dcrw_model *m, float *params, float *moments,
                           uint64_t *step);

#endif
