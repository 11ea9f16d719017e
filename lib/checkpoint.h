/* Models as safetensors checkpoints (MODEL.md §8): the configuration in the
 * metadata, the parameters under their §7 names. The trainer adds its Adam
 * moments and step through the extra arguments. */
#ifndef DCRW_LIB_CHECKPOINT_H
#define DCRW_LIB_CHECKPOINT_H

#include "model.h"
#include "safetensors.h"

/* Save m plus extra tensors and metadata pairs, atomically. */
int dcrw_ckpt_write(const char *path, const dcrw_model *m, const st_out *extra, int nextra,
                    const char *const *extra_keys, const char *const *extra_vals, int nextra_meta);

/* Build a model from a parsed file: configuration from the metadata, every
 * required tensor present, F32, with the shape the configuration implies.
 * Unknown tensors and keys are ignored. */
int dcrw_ckpt_model_from_file(const st_file *f, dcrw_model **out);

/* Copy tensor `name` of f into dst (count floats), checking dtype and that
 * its shape has exactly count elements and matches `shape` (ndim dims). */
int dcrw_ckpt_copy_tensor(const st_file *f, const char *name, int ndim, const int64_t *shape,
                          float *dst);

#endif
