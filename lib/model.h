/* The model object: configuration, derived sizes, and the flat parameter
 * buffer with one named view per tensor of MODEL.md §7. */
#ifndef DCRW_LIB_MODEL_H
#define DCRW_LIB_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "dcrw/dcrw.h"
#include "layout.h"

struct dcrw_model {
    uint64_t id; /* unique in the process: keys the per-thread workspace cache */
    dcrw_config cfg;
    dcrw_dims d;
    dcrw_layout lay;
    float *params;
    dcrw_views p;
    int precision; /* dcrw_precision of the products (a runtime choice) */
};

/* Allocate a model with zeroed parameters (no initialisation). */
int dcrw_model_alloc(dcrw_model **out, const dcrw_config *cfg);
/* The same for a configuration dcrw_config_derive() already accepted
 * (d and lay are its results), so that a loader checks and derives once. */
int dcrw_model_alloc_derived(dcrw_model **out, const dcrw_config *cfg, const dcrw_dims *d,
                             const dcrw_layout *lay);
/* A fresh id for m: the per-thread workspaces cached for the old one are
 * not reused (after a change of what they were built for). */
void dcrw_model_renew_id(dcrw_model *m);
/* The seeded initialisation documented at dcrw_model_create(). */
void dcrw_model_init_params(dcrw_model *m, uint64_t seed);

#endif
