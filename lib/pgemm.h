/* Products with a packed weight matrix: C[M×n] = beta·C + op(A)[M×k]·B[k×n]
 * where B, a weight used many times between two changes of its values, is
 * packed once into the panels the micro-kernel reads.
 *
 * OpenBLAS repacks its operand on every call, which at the 50-100 rows of a
 * per-glimpse product is a sixth of the product's time; packing once per
 * optimizer step removes it, and the kernel writes (beta = 0) or
 * accumulates (beta = 1) straight into C with no separate zeroing pass.
 *
 * The two uses of a PyTorch-style weight W [out×in] (row-major):
 *   forward   Y[M×out] = beta·Y + X[M×in]·Wᵀ    pack with trans = 1, k = in, n = out
 *   backward dX[M×in]  = beta·dX + dY[M×out]·W   W in place: dcrw_pgemm_view, k = out, n = in
 * (in the backward the kernel's panel rows are pieces of W's rows, which it
 * reads in place as fast as packed; only the forward needs a packed copy),
 * and, for a weight gradient dW[out×in] += dYᵀ·X, op(A) = dYᵀ (trans_a = 1)
 * with X in place (dcrw_pgemm_view, k = rows, n = in).
 *
 * The kernel (register tiles of broadcasts and FMAs, as BLIS and OpenBLAS
 * do) has an AVX-512 path, an AVX2+FMA path and a portable C path, chosen
 * at run time from the CPU; a packed operand belongs to the path it was
 * packed for. Every function is a pure function of its arguments (no
 * hidden state), so threads may share a packed operand freely. */
#ifndef DCRW_LIB_PGEMM_H
#define DCRW_LIB_PGEMM_H

#include <stddef.h>

typedef enum pgemm_path {
    PGEMM_PATH_C = 0,      /* portable C, any CPU */
    PGEMM_PATH_AVX2 = 1,   /* x86-64 with AVX2 and FMA */
    PGEMM_PATH_AVX512 = 2, /* x86-64 with AVX-512F */
    PGEMM_PATH_COUNT
} pgemm_path;

/* A B operand [k × n]: packed panels in the caller's buffer (ldb = 0), or
 * a row-major matrix read in place (ldb = its row stride). */
typedef struct pgemm_b {
    const float *panels;
    int k, n, ldb;
    pgemm_path path;
} pgemm_b;

/* 1 if this CPU (and this build) can run path p. */
int dcrw_pgemm_path_supported(pgemm_path p);

/* The fastest supported path: AVX-512, else AVX2+FMA, else C. */
pgemm_path dcrw_pgemm_path_best(void);

/* "c", "avx2", "avx512" ("?" for anything else). */
const char *dcrw_pgemm_path_name(pgemm_path p);

/* Width of the column panels of path p (the packed n is rounded up to it). */
int dcrw_pgemm_panel_width(pgemm_path p);

/* Floats a packed [k × n] operand of path p takes (0 if k or n < 1). */
size_t dcrw_pgemm_pack_floats(pgemm_path p, int k, int n);

/* Pack B = Wᵀ (trans = 1: W is [n × k], row stride ldw >= k) or B = W
 * (trans = 0: W is [k × n], ldw >= n) into buf, which must be 64-byte
 * aligned and hold dcrw_pgemm_pack_floats(p, k, n) floats; p must be
 * supported. *out then describes the packed operand; buf must outlive it.
 * Repack (same buf) whenever W's values change. */
void dcrw_pgemm_pack(pgemm_b *out, pgemm_path p, int trans, int k, int n, const float *w, int ldw,
                     float *buf);

/* Pack only part `part` (0 <= part < parts) of the column panels that
 * dcrw_pgemm_pack writes into buf: the parts 0 .. parts − 1 together write
 * exactly what dcrw_pgemm_pack does, each panel once, so that threads can
 * share one pack (disjoint parts of buf; describe it with
 * dcrw_pgemm_describe). */
void dcrw_pgemm_pack_part(pgemm_path p, int trans, int k, int n, const float *w, int ldw,
                          float *buf, int part, int parts);

/* Describe the [k × n] operand of path p that dcrw_pgemm_pack or the parts
 * of dcrw_pgemm_pack_part put in buf, without touching it. */
void dcrw_pgemm_describe(pgemm_b *out, pgemm_path p, int k, int n, const float *buf);

/* Describe B = W (W is [k × n], row stride ldw >= n, any alignment) for
 * path p without copying it: W must outlive *out and is read at every
 * call (its changes are seen). Costs nothing; as fast as packed where n is
 * a multiple of the panel width, else a little slower. */
void dcrw_pgemm_view(pgemm_b *out, pgemm_path p, int k, int n, const float *w, int ldw);

/* C[M × B->n] = beta·C + op(A)·B, op(A) [M × B->k] being A (trans_a = 0,
 * row stride lda) or Aᵀ (trans_a = 1: A is [B->k × M], row stride lda).
 * With beta = 0, C is only written (NaN or garbage in it does not
 * propagate), as sgemm does; k = 0 gives C = beta·C. Nothing happens for
 * M < 1 or n < 1. Uses 32 KiB of stack. */
void dcrw_pgemm(int M, int trans_a, const float *A, int lda, const pgemm_b *B, float beta, float *C,
                int ldc);

#endif
