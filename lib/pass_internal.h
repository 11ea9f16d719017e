/* Shared by the pass's own files only: lib/pass.c (the workspace),
 * lib/forward.c and lib/backward.c. */
#ifndef DCRW_LIB_PASS_INTERNAL_H
#define DCRW_LIB_PASS_INTERNAL_H

#include <stddef.h>

#include "pass.h"

static inline size_t pass_slot(const dcrw_pass *ps, int t) {
    return ps->keep ? (size_t)t : (size_t)(t & 1);
}
/* the slot of time t of array `field` whose slots are n floats */
#define SLOT(ps, field, t, n) ((ps)->field + pass_slot(ps, t) * (size_t)(n))

void dcrw_copy_rows(int B, int n, const float *src, int lds, float *dst, int ldd);

#endif
