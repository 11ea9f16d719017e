/* Internal helpers shared by every module: error reporting, allocation,
 * overflow-checked size arithmetic. Not part of the ABI. */
#ifndef DCRW_LIB_COMMON_H
#define DCRW_LIB_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "dcrw/dcrw.h"

#if defined(__GNUC__)
#define DCRW_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define DCRW_PRINTF(a, b)
#endif

/* Record a failure for dcrw_last_error() and return code, so that an error
 * path reads `return dcrw_fail(DCRW_EINVAL, "B must be >= 1, got %d", B);`. */
int dcrw_fail(int code, const char *fmt, ...) DCRW_PRINTF(2, 3);

/* Every buffer the library allocates goes through these, 64-byte aligned for
 * the vector loops, so that the allocation-failure tests can hook one place.
 * dcrw_alloc returns NULL for n == 0 or on failure (and records ENOMEM). */
void *dcrw_alloc(size_t n);
void *dcrw_calloc(size_t count, size_t size);
void dcrw_free(void *p);

/* For tests only, not exported: make the allocation n allocations from now
 * fail (n = 0: the next one), once; n < 0 turns the hook off. Returns the
 * previous countdown: -1 if the injected failure happened (or the hook was
 * off), else how many allocations were still to go, so a caller can tell
 * whether an operation reached the n-th allocation at all. */
long dcrw_test_alloc_fail_after(long n);

/* a*b and a+b without wrapping: 0 on success, -1 on overflow. */
static inline int dcrw_mul_size(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return -1;
    *out = a * b;
    return 0;
}
static inline int dcrw_add_size(size_t a, size_t b, size_t *out) {
    if (b > SIZE_MAX - a) return -1;
    *out = a + b;
    return 0;
}

/* 1 if every one of the n floats is finite. */
int dcrw_all_finite(const float *x, size_t n);

#define DCRW_CHECK_ARG(cond, ...)                                                                  \
    do {                                                                                           \
        if (!(cond)) return dcrw_fail(DCRW_EINVAL, __VA_ARGS__);                                   \
    } while (0)

/* DCRW_OK if all n values of x are in [0, 1]; DCRW_EINVAL (or DCRW_ENUMERIC
 * for NaN/inf) naming fn and the first bad index otherwise. */
int dcrw_check_images(const char *fn, const float *x, size_t n);

#endif
