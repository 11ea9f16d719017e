/* A configuration and what it implies: presets, validation, and the dims
 * and layout of a valid one (lib/layout.h). Pure functions of their
 * arguments. */
#ifndef DCRW_LIB_CONFIG_H
#define DCRW_LIB_CONFIG_H

#include "dcrw/dcrw.h"
#include "layout.h"

/* Validate cfg and derive its sizes (DCRW_ECONFIG naming the field,
 * DCRW_EINVAL for NULL or a wrong cfg->size). */
int dcrw_dims_from_config(const dcrw_config *cfg, dcrw_dims *d);

/* Everything a model of cfg needs, checked once: the dims, the layout, and
 * that the whole parameter buffer is indexable with a BLAS int. What
 * dcrw_config_validate() checks, with its results kept. */
int dcrw_config_derive(const dcrw_config *cfg, dcrw_dims *d, dcrw_layout *lay);

/* 1 if every field of a and b is equal, else 0. */
int dcrw_config_same(const dcrw_config *a, const dcrw_config *b);

#endif
