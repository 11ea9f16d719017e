/* dist.h over MPI, or over one process when the build has no MPI. Only the
 * main thread calls these (MPI_THREAD_FUNNELED): the library's worker
 * threads never communicate. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "dist.h"

int dist_all_ok(int ok) {
    double v = ok ? 1.0 : 0.0;
    dist_allreduce_sum_doubles(&v, 1);
    return v == (double)dist_size();
}

/* mpirun's environment, for Open MPI and for PMIx launchers in general */
int dist_launched(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") != NULL || getenv("PMIX_RANK") != NULL;
}

#ifdef DCRW_HAVE_MPI
#include <mpi.h>

static int joined = 0, my_rank = 0, my_size = 1;

int dist_init(int *argc, char ***argv) {
    if (joined || !dist_launched()) return 0;
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        cli_error("cannot join the MPI job (MPI_Init_thread failed)");
        return -1;
    }
    joined = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &my_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &my_size);
    if (provided < MPI_THREAD_FUNNELED && my_size > 1) {
        if (my_rank == 0) cli_error("this MPI library cannot host a threaded process");
        MPI_Finalize();
        joined = 0;
        return -1;
    }
    return 0;
}

void dist_finalize(void) {
    if (!joined) return;
    MPI_Finalize();
    joined = 0;
}

int dist_available(void) {
    return 1;
}

int dist_rank(void) {
    return my_rank;
}

int dist_size(void) {
    return my_size;
}

/* MPI counts are ints: long buffers go in pieces */
static void allreduce(void *buf, size_t n, size_t elem, MPI_Datatype type) {
    if (my_size == 1) return;
    char *p = buf;
    while (n > 0) {
        int c = n > (size_t)INT_MAX ? INT_MAX : (int)n;
        MPI_Allreduce(MPI_IN_PLACE, p, c, type, MPI_SUM, MPI_COMM_WORLD);
        p += (size_t)c * elem;
        n -= (size_t)c;
    }
}

void dist_allreduce_sum_floats(float *buf, size_t n) {
    allreduce(buf, n, sizeof *buf, MPI_FLOAT);
}

void dist_allreduce_sum_doubles(double *buf, size_t n) {
    allreduce(buf, n, sizeof *buf, MPI_DOUBLE);
}

void dist_bcast(void *buf, size_t bytes) {
    if (my_size == 1) return;
    char *p = buf;
    while (bytes > 0) {
        int c = bytes > (size_t)INT_MAX ? INT_MAX : (int)bytes;
        MPI_Bcast(p, c, MPI_BYTE, 0, MPI_COMM_WORLD);
        p += c;
        bytes -= (size_t)c;
    }
}

void dist_barrier(void) {
    if (my_size > 1) MPI_Barrier(MPI_COMM_WORLD);
}

_Noreturn void dist_abort(int code) {
    fflush(stdout);
    fflush(stderr);
    if (joined) MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

#else /* one process */

int dist_init(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *n = getenv("OMPI_COMM_WORLD_SIZE"), *r = getenv("PMIX_RANK");
    if (dist_launched() && ((n && strcmp(n, "1") != 0) || (r && strcmp(r, "0") != 0))) {
        /* each process would train the whole model alone, all into one folder */
        cli_error("this dcrw was built without MPI and cannot train across processes; "
                  "rebuild with -Dmpi=enabled (libopenmpi-dev) or run it without mpirun");
        return -1;
    }
    return 0;
}

void dist_finalize(void) {}

int dist_available(void) {
    return 0;
}

int dist_rank(void) {
    return 0;
}

int dist_size(void) {
    return 1;
}

void dist_allreduce_sum_floats(float *buf, size_t n) {
    (void)buf;
    (void)n;
}

void dist_allreduce_sum_doubles(double *buf, size_t n) {
    (void)buf;
    (void)n;
}

void dist_bcast(void *buf, size_t bytes) {
    (void)buf;
    (void)bytes;
}

void dist_barrier(void) {}

_Noreturn void dist_abort(int code) {
    fflush(stdout);
    fflush(stderr);
    exit(code);
}

#endif
