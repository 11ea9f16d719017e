/* The benchmark's machine ceilings and per-product comparison. */
#ifndef DCRW_BENCH_PRODUCTS_H
#define DCRW_BENCH_PRODUCTS_H

#include "dcrw/dcrw.h"
#include "pgemm.h"

/* float32 FMA throughput of one core in GFLOP/s (2 FLOPs per lane and FMA),
 * the best of the vector widths this CPU has; *how names the width. */
double fma_peak_per_core(const char **how);
/* The same for AVX-512 BF16's VDPBF16PS (4 FLOPs per float32 lane: two
 * products and two sums), 0 without it. */
double bf16_peak_per_core(void);

/* For each preset in the comma-separated list: every matrix product of a
 * training step that takes a weight (forward X·Wᵀ, backward dY·W) and one
 * weight gradient (dYᵀ·X over T·rows), each timed with cblas_sgemm and with
 * the kernel of lib/pgemm.h on path p (the forward's weight packed, the
 * others read in place), interleaved, single-threaded, at `rows` rows (the
 * batch chunk of one thread). Prints a markdown table. */
void products_table(const char *presets, int rows, pgemm_path p, int rounds);

/* Single-thread seconds of the weight products of one training step of
 * config c at `rows` rows (the chunk of one thread), each product by its
 * fastest float32 kernel, or by the bf16 one where a bf16 model uses it;
 * packing included. The scaling model's measured input. */
double step_products_seconds(const dcrw_config *c, int rows, pgemm_path p, int bf16, int rounds);

#endif
