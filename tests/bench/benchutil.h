/* Timing helpers shared by the benchmark's tables. */
#ifndef DCRW_BENCH_BENCHUTIL_H
#define DCRW_BENCH_BENCHUTIL_H

/* Seconds on the monotonic clock. */
double bench_now(void);

/* The median of v[0..n) (n > 0); sorts v. */
double bench_median(double *v, int n);

#endif
