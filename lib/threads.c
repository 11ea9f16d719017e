/* Fork-join pool over pthreads, and the library-wide thread setting. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

#include "common.h"
#include "threads.h"

/* OpenBLAS's own threads inside each of ours would oversubscribe the cores,
 * so it is kept to one. meson tells whether the BLAS has
 * openblas_set_num_threads (-DDCRW_HAVE_OPENBLAS_THREADS=0/1); a build
 * without that probe (cc -c, the amalgamation) looks for it when the
 * program starts, through a weak reference (GCC or Clang, ELF), so that
 * any CBLAS links. */
#ifndef DCRW_HAVE_OPENBLAS_THREADS
#define DCRW_HAVE_OPENBLAS_THREADS 0
#if defined(__GNUC__) && defined(__ELF__)
#define DCRW_WEAK_OPENBLAS_THREADS 1
#endif
#endif
#if DCRW_HAVE_OPENBLAS_THREADS
void openblas_set_num_threads(int);
#elif defined(DCRW_WEAK_OPENBLAS_THREADS)
__attribute__((weak)) void openblas_set_num_threads(int);
#endif

/* The threads of a pool and what they synchronise on. A fork()ed child
 * has none of its parent's threads, only a copy of this memory (with
 * whatever locks they held): a pool used in a new process leaves its crew
 * behind, untouched, and hires a new one (see dcrw_pool_run). */
typedef struct crew {
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned long generation; /* bumped per job, so workers see each job once */
    int pending;              /* workers still running the current job */
    int jobs;                 /* how many of the workers the job uses */
    int quit;
    void (*fn)(void *, int);
    void *ctx;
    int started;    /* workers 1 .. started − 1 exist */
    pthread_t *tid; /* n */
    struct crew_arg {
        struct crew *c;
        int i;
    } * args; /* n */
} crew;

struct dcrw_pool {
    int n;
    pid_t pid;  /* the process whose threads crew holds */
    crew *crew; /* NULL for n = 1, or when threads could not be started */
};

static void *worker(void *arg) {
    struct crew_arg *w = arg;
    crew *c = w->c;
    const int i = w->i;
    unsigned long seen = 0;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->quit && c->generation == seen) pthread_cond_wait(&c->go, &c->mu);
        if (c->quit) break;
        seen = c->generation;
        if (i < c->jobs) {
            void (*fn)(void *, int) = c->fn;
            void *ctx = c->ctx;
            pthread_mutex_unlock(&c->mu);
            fn(ctx, i);
            pthread_mutex_lock(&c->mu);
            if (--c->pending == 0) pthread_cond_signal(&c->done);
        }
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* Stop and join the workers of this process's crew, and free it. */
static void crew_stop(crew *c) {
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    c->quit = 1;
    pthread_cond_broadcast(&c->go);
    pthread_mutex_unlock(&c->mu);
    for (int i = 1; i < c->started; i++) pthread_join(c->tid[i], NULL);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->go);
    pthread_cond_destroy(&c->done);
    dcrw_free(c);
}

/* A crew of n − 1 workers, in one allocation. */
static int crew_start(crew **out, int n) {
    *out = NULL;
    size_t bytes = sizeof(crew) + (size_t)n * (sizeof(pthread_t) + sizeof(struct crew_arg));
    crew *c = dcrw_calloc(1, bytes);
    if (!c) return DCRW_ENOMEM;
    c->tid = (pthread_t *)(void *)(c + 1);
    c->args = (struct crew_arg *)(void *)(c->tid + n);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->go, NULL);
    pthread_cond_init(&c->done, NULL);
    c->started = 1;
    for (int i = 1; i < n; i++) {
        c->args[i].c = c;
        c->args[i].i = i;
        if (pthread_create(&c->tid[i], NULL, worker, &c->args[i]) != 0) {
            crew_stop(c); /* stop the ones that started */
            return dcrw_fail(DCRW_ENOMEM, "could not start thread %d of %d", i, n);
        }
        c->started = i + 1;
    }
    *out = c;
    return DCRW_OK;
}

int dcrw_pool_create(dcrw_pool **out, int n) {
    *out = NULL;
    if (n < 1) n = 1;
    dcrw_pool *p = dcrw_calloc(1, sizeof *p);
    if (!p) return DCRW_ENOMEM;
    p->n = n;
    p->pid = getpid();
    if (n > 1) {
        int rc = crew_start(&p->crew, n);
        if (rc) {
            dcrw_free(p);
            return rc;
        }
    }
    *out = p;
    return DCRW_OK;
}

void dcrw_pool_destroy(dcrw_pool *p) {
    if (!p) return;
    /* another process's crew has no threads here to join, and its locks
     * may be held by threads that no longer exist: its memory just goes */
    if (p->pid == getpid())
        crew_stop(p->crew);
    else
        dcrw_free(p->crew);
    dcrw_free(p);
}

int dcrw_pool_size(const dcrw_pool *p) {
    return p ? p->n : 1;
}

/* The crew of this process: after a fork(), the parent's is dropped and a
 * new one started (NULL if that fails: the chunks then run one after the
 * other, the same numbers as ever). */
static crew *pool_crew(dcrw_pool *p) {
    const pid_t now = getpid();
    if (p->pid == now) return p->crew;
    dcrw_free(p->crew);
    p->crew = NULL;
    p->pid = now;
    if (crew_start(&p->crew, p->n)) p->crew = NULL;
    return p->crew;
}

void dcrw_pool_run(dcrw_pool *p, int n, void (*fn)(void *ctx, int i), void *ctx) {
    crew *c = p && p->n > 1 && n > 1 ? pool_crew(p) : NULL;
    if (!c) {
        for (int i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    if (n > p->n) n = p->n;
    pthread_mutex_lock(&c->mu);
    c->fn = fn;
    c->ctx = ctx;
    c->jobs = n;
    c->pending = n - 1;
    c->generation++;
    pthread_cond_broadcast(&c->go);
    pthread_mutex_unlock(&c->mu);
    fn(ctx, 0);
    pthread_mutex_lock(&c->mu);
    while (c->pending > 0) pthread_cond_wait(&c->done, &c->mu);
    pthread_mutex_unlock(&c->mu);
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

void dcrw_blas_single_thread(void) {
#if DCRW_HAVE_OPENBLAS_THREADS
    static atomic_int done;
    if (!atomic_exchange(&done, 1)) openblas_set_num_threads(1);
#elif defined(DCRW_WEAK_OPENBLAS_THREADS)
    static atomic_int done;
    if (openblas_set_num_threads && !atomic_exchange(&done, 1)) openblas_set_num_threads(1);
#endif
}
