/* Fork-join pool over pthreads, and the library-wide thread setting. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

#include "common.h"
#include "dcrw_build_config.h"
#include "threads.h"

#if DCRW_HAVE_OPENBLAS_THREADS
void openblas_set_num_threads(int);
#endif

struct dcrw_pool {
    int n;
    pthread_t *tid;
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned long generation; /* bumped per job, so workers see each job once */
    int pending;              /* workers still running the current job */
    int jobs;                 /* how many of the workers the job uses */
    int quit;
    void (*fn)(void *, int);
    void *ctx;
};

typedef struct worker_arg {
    dcrw_pool *p;
    int i;
} worker_arg;

static void *worker(void *arg) {
    worker_arg *w = arg;
    dcrw_pool *p = w->p;
    const int i = w->i;
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->generation == seen) pthread_cond_wait(&p->go, &p->mu);
        if (p->quit) break;
        seen = p->generation;
        if (i < p->jobs) {
            void (*fn)(void *, int) = p->fn;
            void *ctx = p->ctx;
            pthread_mutex_unlock(&p->mu);
            fn(ctx, i);
            pthread_mutex_lock(&p->mu);
            if (--p->pending == 0) pthread_cond_signal(&p->done);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int pool_create(dcrw_pool **out, int n) {
    *out = NULL;
    if (n < 1) n = 1;
    dcrw_pool *p = dcrw_calloc(1, sizeof *p);
    if (!p) return DCRW_ENOMEM;
    p->n = n;
    if (n == 1) {
        *out = p;
        return DCRW_OK;
    }
    p->tid = dcrw_calloc((size_t)n, sizeof(pthread_t) + sizeof(worker_arg));
    if (!p->tid) {
        dcrw_free(p);
        return DCRW_ENOMEM;
    }
    worker_arg *args = (worker_arg *)(void *)(p->tid + n);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    for (int i = 1; i < n; i++) {
        args[i].p = p;
        args[i].i = i;
        if (pthread_create(&p->tid[i], NULL, worker, &args[i]) != 0) {
            p->n = i; /* stop the ones that started */
            pool_destroy(p);
            return dcrw_fail(DCRW_ENOMEM, "could not start thread %d of %d", i, n);
        }
    }
    *out = p;
    return DCRW_OK;
}

void pool_destroy(dcrw_pool *p) {
    if (!p) return;
    if (p->n > 1) {
        pthread_mutex_lock(&p->mu);
        p->quit = 1;
        pthread_cond_broadcast(&p->go);
        pthread_mutex_unlock(&p->mu);
        for (int i = 1; i < p->n; i++) pthread_join(p->tid[i], NULL);
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->go);
        pthread_cond_destroy(&p->done);
    }
    dcrw_free(p->tid);
    dcrw_free(p);
}

int pool_size(const dcrw_pool *p) {
    return p ? p->n : 1;
}

void pool_run(dcrw_pool *p, int n, void (*fn)(void *ctx, int i), void *ctx) {
    if (!p || p->n == 1 || n <= 1) {
        for (int i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    if (n > p->n) n = p->n;
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->jobs = n;
    p->pending = n - 1;
    p->generation++;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    fn(ctx, 0);
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

static atomic_int default_threads; /* 0: the CPUs available */

int dcrw_set_threads(int n) {
    if (n < 0 || n > 1024)
        return dcrw_fail(DCRW_EINVAL, "dcrw_set_threads: %d is not in [0, 1024]", n);
    atomic_store(&default_threads, n);
    return DCRW_OK;
}

int dcrw_default_threads(void) {
    int n = atomic_load(&default_threads);
    if (n > 0) return n;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
    if (n < 1) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n;
}

int dcrw_get_threads(void) {
    return dcrw_default_threads();
}

void blas_single_thread(void) {
#if DCRW_HAVE_OPENBLAS_THREADS
    static atomic_int done;
    if (!atomic_exchange(&done, 1)) openblas_set_num_threads(1);
#endif
}
