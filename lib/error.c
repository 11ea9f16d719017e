/* Error codes, the thread-local last-error message, allocation, and the
 * checks of caller data every entry point shares. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* posix_memalign */
#endif
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "vmath.h"

static _Thread_local char last_error[512];

const char *dcrw_strerror(int code) {
    switch (code) {
    case DCRW_OK:
        return "success";
    case DCRW_EINVAL:
        return "invalid argument";
    case DCRW_ENOMEM:
        return "out of memory";
    case DCRW_EIO:
        return "input/output error";
    case DCRW_EFORMAT:
        return "malformed file";
    case DCRW_ETRUNCATED:
        return "truncated file";
    case DCRW_ESHAPE:
        return "shape mismatch";
    case DCRW_ENOTFOUND:
        return "not found";
    case DCRW_EUNSUPPORTED:
        return "unsupported";
    case DCRW_ECONFIG:
        return "invalid configuration";
    case DCRW_ENUMERIC:
        return "non-finite number";
    default:
        return "unknown error code";
    }
}

const char *dcrw_last_error(void) {
    return last_error;
}

int dcrw_fail(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}

/* The allocation-failure hook of tests/test_allocfail.c: the countdown is
 * negative (off) in every ordinary run, so the cost is one relaxed load. It
 * is atomic because the thread pool's workers may allocate too. */
static atomic_long alloc_fail_countdown = -1;

long dcrw_test_alloc_fail_after(long n) {
    return atomic_exchange_explicit(&alloc_fail_countdown, n < 0 ? -1 : n, memory_order_relaxed);
}

/* 1 when this allocation is the one to fail; the hook then turns itself off,
 * so exactly one allocation fails and the error paths run as they would on
 * a real shortage. */
static int alloc_should_fail(void) {
    long v = atomic_load_explicit(&alloc_fail_countdown, memory_order_relaxed);
    while (v >= 0) {
        if (atomic_compare_exchange_weak_explicit(&alloc_fail_countdown, &v, v - 1,
                                                  memory_order_relaxed, memory_order_relaxed))
            return v == 0;
    }
    return 0;
}

void *dcrw_alloc(size_t n) {
    if (n == 0) return NULL;
    if (alloc_should_fail()) {
        dcrw_fail(DCRW_ENOMEM, "out of memory allocating %zu bytes (injected)", n);
        return NULL;
    }
    /* round up so aligned_alloc's size-multiple rule holds */
    size_t rounded;
    if (dcrw_add_size(n, 63, &rounded)) {
        dcrw_fail(DCRW_ENOMEM, "allocation of %zu bytes overflows", n);
        return NULL;
    }
    rounded &= ~(size_t)63;
    void *p = NULL;
    if (posix_memalign(&p, 64, rounded) != 0) p = NULL;
    if (!p) dcrw_fail(DCRW_ENOMEM, "out of memory allocating %zu bytes", n);
    return p;
}

void *dcrw_calloc(size_t count, size_t size) {
    size_t n;
    if (dcrw_mul_size(count, size, &n)) {
        dcrw_fail(DCRW_ENOMEM, "allocation of %zu x %zu bytes overflows", count, size);
        return NULL;
    }
    void *p = dcrw_alloc(n);
    if (p) memset(p, 0, n);
    return p;
}

void dcrw_free(void *p) {
    free(p);
}

DCRW_VECTOR_CLONES
static int any_nonfinite(const float *restrict x, size_t n) {
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) bad |= vnonfinite(x[i]);
    return bad != 0;
}

int dcrw_all_finite(const float *x, size_t n) {
    return !any_nonfinite(x, n);
}

int dcrw_check_images(const char *fn, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        /* written so that NaN fails too */
        if (!(x[i] >= 0.0f && x[i] <= 1.0f))
            return dcrw_fail(isfinite(x[i]) ? DCRW_EINVAL : DCRW_ENUMERIC,
                             "%s: x[%zu] = %g is not in [0, 1]", fn, i, (double)x[i]);
    }
    return DCRW_OK;
}

unsigned dcrw_version(void) {
    return DCRW_VERSION;
}

#define DCRW_STR2(x) #x
#define DCRW_STR(x) DCRW_STR2(x)
const char *dcrw_version_string(void) {
    return DCRW_STR(DCRW_VERSION_MAJOR) "." DCRW_STR(DCRW_VERSION_MINOR) "." DCRW_STR(
        DCRW_VERSION_PATCH);
}
