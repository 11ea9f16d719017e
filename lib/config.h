/* A configuration and what it implies: the table of its fields, presets,
 * validation, and the dims and layout of a valid one (lib/layout.h). Pure
 * functions of their arguments. */
#ifndef DCRW_LIB_CONFIG_H
#define DCRW_LIB_CONFIG_H

#include <stddef.h>

#include "dcrw/dcrw.h"
#include "layout.h"

/* Every field of dcrw_config, in the struct's order, which is also the
 * order of the checkpoint metadata. This table is the one place a field is
 * listed: it drives the presets, validation, normalisation, equality, the
 * checkpoint metadata writer and reader, and the public field API
 * (dcrw_config_set/get/field). Adding a field to dcrw_config means adding
 * one row here (a _Static_assert in config.c catches a struct field
 * without a row).
 *
 *   X(name, TYPE, lo, hi, USE, optional, draw, draw-noattn, dcrw, dcrw-noread,
 *     draw-classify)
 *
 * TYPE: INT, BOOL or ENCODER (int32_t) or FLOAT (float).
 * [lo, hi]: the values validation accepts when the model uses the field
 *   (one more rule is code: read_n >= 4 with a CNN encoder).
 * USE: when the architecture uses the field: ALWAYS, LSTM or CNN (the
 *   encoder), READ or WRITE (the attention switches), GEN (the generative
 *   models: not the classifier). An unused field is not validated, is 0 in
 *   a model's configuration and may be absent from a checkpoint.
 * optional: 1 for a field added after checkpoint format 1 was fixed: it
 *   may be absent from a checkpoint (read as 0) and is written only when
 *   not 0, so files of models that do not use it stay byte-identical.
 * The last five columns are the field's value in each preset (MODEL.md §2
 *   and §9, dcrw_preset order). */
#define DCRW_CONFIG_FIELDS(X)                                                                      \
    X(channels, INT, 1, 64, ALWAYS, 0, 1, 1, 1, 1, 1)                                              \
    X(height, INT, 1, 4096, ALWAYS, 0, 28, 28, 28, 28, 100)                                        \
    X(width, INT, 1, 4096, ALWAYS, 0, 28, 28, 28, 28, 100)                                         \
    X(glimpses, INT, 1, 4096, ALWAYS, 0, 64, 64, 10, 10, 8)                                        \
    X(enc_size, INT, 1, 16384, LSTM, 0, 256, 256, 0, 0, 256)                                       \
    X(dec_size, INT, 1, 16384, GEN, 0, 256, 256, 256, 256, 0)                                      \
    X(z_size, INT, 1, 16384, GEN, 0, 100, 100, 100, 100, 0)                                        \
    X(read_n, INT, 1, 1024, READ, 0, 2, 0, 7, 0, 12)                                               \
    X(write_n, INT, 1, 1024, WRITE, 0, 5, 0, 5, 5, 0)                                              \
    X(conv1, INT, 1, 4096, CNN, 0, 0, 0, 32, 32, 0)                                                \
    X(conv2, INT, 1, 4096, CNN, 0, 0, 0, 64, 64, 0)                                                \
    X(encoder, ENCODER, 0, 1, ALWAYS, 0, 0, 0, 1, 1, 0)                                            \
    X(read_attention, BOOL, 0, 1, ALWAYS, 0, 1, 0, 1, 0, 1)                                        \
    X(write_attention, BOOL, 0, 1, GEN, 0, 1, 0, 1, 1, 0)                                          \
    X(canvas_init, FLOAT, -1e4, 1e4, GEN, 1, 0, 0, 0, 0, 0)                                        \
    X(classify, BOOL, 0, 1, ALWAYS, 1, 0, 0, 0, 0, 1)                                              \
    X(classes, INT, 0, 65536, ALWAYS, 1, 0, 0, 0, 0, 10)

/* The presets, dcrw_preset's values. */
#define DCRW_NPRESETS 5

/* sizeof(dcrw_config) of 0.1, its first version: the least a caller's
 * struct can hold. A later version appends fields; this one may grow. */
#define DCRW_CONFIG_SIZE_V1 64u
_Static_assert(sizeof(dcrw_config) >= DCRW_CONFIG_SIZE_V1, "dcrw_config only grows");

enum dcrw_field_use { USE_ALWAYS, USE_LSTM, USE_CNN, USE_READ, USE_WRITE, USE_GEN };

/* One row of the table. */
typedef struct dcrw_field {
    const char *name; /* "height" */
    const char *key;  /* its checkpoint metadata key, "dcrw.height" */
    int type;         /* DCRW_FIELD_* */
    size_t offset;    /* in dcrw_config */
    double lo, hi;
    enum dcrw_field_use use;
    int optional;
    double preset[DCRW_NPRESETS];
} dcrw_field;

#define DCRW_FIELD_COUNT_(n, ...) +1
enum { DCRW_NFIELDS = 0 DCRW_CONFIG_FIELDS(DCRW_FIELD_COUNT_) };
extern const dcrw_field dcrw_config_fields[DCRW_NFIELDS];

/* The row named name, or NULL. */
const dcrw_field *dcrw_config_find_field(const char *name);
/* 1 if the architecture of c (its encoder and switches) uses field f. */
int dcrw_config_uses(const dcrw_config *c, const dcrw_field *f);
/* The value of an int32_t field, or the float one as a double. */
int32_t dcrw_config_int(const dcrw_config *c, const dcrw_field *f);
double dcrw_config_number(const dcrw_config *c, const dcrw_field *f);
/* The field's value as the text dcrw_config_get() and the checkpoint
 * metadata use: decimal for INT, "true"/"false" for BOOL, "lstm"/"cnn" for
 * ENCODER, "%.9g" in the "C" locale for FLOAT (which round-trips every
 * float). At most 32 bytes with the NUL; -1 if len is too small. */
int dcrw_config_field_text(const dcrw_config *c, const dcrw_field *f, char *buf, size_t len);
/* A float from text that is exactly one number in the "C" locale: no
 * blanks around it ("nan" and "inf" parse; ranges are the caller's). 0 on
 * success, -1 otherwise. */
int dcrw_parse_float(const char *s, float *out);

/* A caller's cfg as this version's struct in *out: a struct of an older
 * header (cfg->size DCRW_CONFIG_SIZE_V1, before the classifier's fields)
 * reads as if the fields it lacks were 0. DCRW_EINVAL for any other size. */
int dcrw_config_import(const dcrw_config *cfg, dcrw_config *out);

/* Validate cfg and derive its sizes (DCRW_ECONFIG naming the field,
 * DCRW_EINVAL for NULL or a wrong cfg->size). */
int dcrw_dims_from_config(const dcrw_config *cfg, dcrw_dims *d);

/* Everything a model of cfg needs, checked once: the dims, the layout, and
 * that the whole parameter buffer is indexable with a BLAS int. What
 * dcrw_config_validate() checks, with its results kept. */
int dcrw_config_derive(const dcrw_config *cfg, dcrw_dims *d, dcrw_layout *lay);

/* Copy src to a caller's out, whose out->size says how much its header
 * knows: at most out->size bytes, at least DCRW_CONFIG_SIZE_V1 (else
 * DCRW_EINVAL naming fn, nothing written); out->size becomes the bytes
 * written. */
int dcrw_config_export(const dcrw_config *src, dcrw_config *out, const char *fn);

/* cfg with the fields its architecture does not use set to 0: the form a
 * model keeps and a checkpoint records. */
void dcrw_config_normalize(dcrw_config *cfg);

/* 1 if a and b describe the same model: the same architecture, and every
 * field it uses equal (unused ones are ignored); else 0. */
int dcrw_config_same(const dcrw_config *a, const dcrw_config *b);

#endif
