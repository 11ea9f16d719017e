/* Shared by the pass's own files only: lib/pass.c (the workspace),
 * lib/forward.c and lib/backward.c (the products with the weights). */
#ifndef DCRW_LIB_PASS_INTERNAL_H
#define DCRW_LIB_PASS_INTERNAL_H

#include <stddef.h>

#include "dense.h"
#include "gemm.h"
#include "pass.h"
#include "pgemm.h"

static inline size_t pass_slot(const dcrw_pass *ps, int t) {
    return ps->keep ? (size_t)t : (size_t)(t & 1);
}
/* the slot of time t of array `field` whose slots are n floats */
#define SLOT(ps, field, t, n) ((ps)->field + pass_slot(ps, t) * (size_t)(n))

/* C[M×N] = beta·C + A[M×K]·Wᵀ for the pass's weight `id` (W [N×K], row
 * stride ldw): with its bf16 or float32 packed copy, or by sgemm without
 * one. */
static inline void pass_gemm_nt(const dcrw_pass *ps, int id, int M, int N, int K, const float *A,
                                int lda, const float *W, int ldw, float beta, float *C, int ldc) {
    const pass_weights *pw = ps->pw;
    if (pw && pw->bt[id].n)
        dcrw_bf16_gemm(M, A, lda, &pw->bt[id], beta, C, ldc);
    else if (pw && pw->path >= 0)
        dcrw_pgemm(M, 0, A, lda, &pw->b[id], beta, C, ldc);
    else
        gemm_nt(M, N, K, A, lda, W, ldw, beta, C, ldc);
}

/* Below this inner size the backward's dY·W stays with OpenBLAS: at 5
 * (attention) and 25 (the write patch) the kernel measured 0.88-0.99× of
 * it, from 100 up 1.02-1.20×. */
#define PASS_VIEW_MIN_K 64

/* C[M×N] = beta·C + A[M×K]·W for the pass's weight `id`, W [K×N] (row
 * stride ldw): in bf16 from its pack, or read in place by the packed
 * kernel, where they win, by sgemm otherwise. */
static inline void pass_gemm_nn(const dcrw_pass *ps, int id, int M, int N, int K, const float *A,
                                int lda, const float *W, int ldw, float beta, float *C, int ldc) {
    const pass_weights *pw = ps->pw;
    if (pw && K >= PASS_VIEW_MIN_K && pw->bn[id].n) {
        dcrw_bf16_gemm(M, A, lda, &pw->bn[id], beta, C, ldc);
    } else if (pw && pw->path >= 0 && K >= PASS_VIEW_MIN_K) {
        pgemm_b v;
        dcrw_pgemm_view(&v, (pgemm_path)pw->path, K, N, W, ldw);
        dcrw_pgemm(M, 0, A, lda, &v, beta, C, ldc);
    } else {
        gemm_nn(M, N, K, A, lda, W, ldw, beta, C, ldc);
    }
}

/* Below this many outputs a bf16 model's weight gradient stays float32:
 * the attention's 5 and the write patch's 25 are a small share of a step,
 * and their gradients the most sensitive. */
#define PASS_BF16_GRAD_MIN_OUT 64

/* Where the packed kernel, reading dY and U in place, wins a float32
 * weight gradient (dcrw-bench --products-only, "grad" rows): few outputs
 * (the attention's 5, the write patch's 25, q's 100: 1.07-2.7 times
 * sgemm), or a dY small enough to stay in cache (dcrw's 10 glimpses of
 * 1,024 outputs: 1.05×). Over draw's 3,200 rows of 1,024 outputs each k
 * of a tile of dYᵀ is a row of dY, a page apart, and OpenBLAS, which
 * packs it, wins (0.86-0.93×). */
#define PASS_GRAD_PACKED_MAX_OUT 128
#define PASS_GRAD_PACKED_MAX_FLOATS ((size_t)1 << 20)

/* dA[O×I] += dYᵀ·U over n rows (da += the column sums of dY, if da): a
 * deferred weight gradient, in bf16 for a bf16 model's large ones, by the
 * packed kernel where it wins, otherwise by sgemm
 * (dcrw_dense_backward_weights) */
static inline void pass_weights_backward(const dcrw_pass *ps, int n, int I, int O, const float *u,
                                         int ldu, const float *dy, int lddy, float *dA, int ldA,
                                         float *da) {
    const pass_weights *pw = ps->pw;
    if (pw && pw->bf16_grads && O >= PASS_BF16_GRAD_MIN_OUT) {
        dcrw_bf16_gemm_tn(O, I, n, dy, lddy, u, ldu, 1.0f, dA, ldA, (uint32_t *)(void *)ps->tnb);
        if (da) dcrw_bias_rows_backward(n, O, dy, lddy, da);
    } else if (pw && pw->path >= 0 &&
               (O <= PASS_GRAD_PACKED_MAX_OUT ||
                (size_t)n * (size_t)O <= PASS_GRAD_PACKED_MAX_FLOATS)) {
        pgemm_b v;
        dcrw_pgemm_view(&v, (pgemm_path)pw->path, n, I, u, ldu);
        dcrw_pgemm(O, 1, dy, lddy, &v, 1.0f, dA, ldA);
        if (da) dcrw_bias_rows_backward(n, O, dy, lddy, da);
    } else {
        dcrw_dense_backward_weights(n, I, O, u, ldu, dy, lddy, dA, ldA, da);
    }
}

/* the CNN's dense stage 2 of the pass's packs, or NULL: im2col */
static inline const cnn_dense *pass_conv2x(const dcrw_pass *ps) {
    return ps->pw && ps->pw->conv2x ? &ps->pw->conv2 : NULL;
}

void dcrw_copy_rows(int B, int n, const float *src, int lds, float *dst, int ldd);

#endif
