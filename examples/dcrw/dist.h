/* Data parallelism across processes for dcrw train, behind an interface
 * that does not mention MPI: mpi.c implements it with MPI when the build
 * has it (-DDCRW_HAVE_MPI) and as one process of one otherwise, so the
 * training loop has a single code path. Every collective call must be
 * made by all processes in the same order. */
#ifndef DCRW_CLI_DIST_H
#define DCRW_CLI_DIST_H

#include <stddef.h>

/* Join the job when launched by mpirun (OMPI_COMM_WORLD_SIZE or PMIX_RANK
 * in the environment), else run alone without touching MPI. -1 with a
 * message when a job of several processes cannot be joined (a build
 * without MPI), 0 otherwise. */
int dist_init(int *argc, char ***argv);
/* Leave the job; a no-op when dist_init() did not join one. */
void dist_finalize(void);
/* Whether mpirun started this process (whatever the build). */
int dist_launched(void);
/* Whether this build can join an MPI job. */
int dist_available(void);
int dist_rank(void);
int dist_size(void);
/* Sum over all processes, in place. */
void dist_allreduce_sum_floats(float *buf, size_t n);
void dist_allreduce_sum_doubles(double *buf, size_t n);
/* 1 when every process passes ok = 1. */
int dist_all_ok(int ok);
/* Copy rank 0's @p bytes at @p buf to every process. */
void dist_bcast(void *buf, size_t bytes);
void dist_barrier(void);
/* End the whole job at once with exit status @p code. */
_Noreturn void dist_abort(int code);

#endif
