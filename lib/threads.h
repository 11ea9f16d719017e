/* A small fork-join pool: the library's threads run the chunks of a batch
 * (each chunk a whole pass through time) while OpenBLAS runs single-
 * threaded inside each, which on these small per-step products is faster
 * than OpenBLAS's own threading (see doc/PERFORMANCE.md). */
#ifndef DCRW_LIB_THREADS_H
#define DCRW_LIB_THREADS_H

typedef struct dcrw_pool dcrw_pool;

/* A pool of n workers counting the calling thread (n − 1 threads are
 * started). n = 1 starts none. */
int dcrw_pool_create(dcrw_pool **out, int n);
void dcrw_pool_destroy(dcrw_pool *p);
int dcrw_pool_size(const dcrw_pool *p);

/* Run fn(ctx, i) for i = 0 .. n − 1, i = 0 on the caller; returns when all
 * are done. NULL pool: fn(ctx, 0) only. */
void dcrw_pool_run(dcrw_pool *p, int n, void (*fn)(void *ctx, int i), void *ctx);

/* The default number of threads: the library-wide setting, else the CPUs
 * this process may run on. */
int dcrw_default_threads(void);

/* Make OpenBLAS run single-threaded inside our workers (process-wide). */
void dcrw_blas_single_thread(void);

#endif
