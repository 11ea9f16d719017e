/* Dense layers y = u·Aᵀ + a over a batch (MODEL.md §3.1), with strides so
 * that inputs and outputs can be slices of wider rows (e_t = [CNN, h_dec]). */
#ifndef DCRW_LIB_DENSE_H
#define DCRW_LIB_DENSE_H

#include <stdint.h>

/* y[B×O] (row stride ldy) = u[B×I] (stride ldu) · A[O×I]ᵀ + a[O]; a may be NULL. */
void dcrw_dense_forward(int B, int I, int O, const float *u, int ldu, const float *A,
                        const float *a, float *y, int ldy);

/* Backward of dcrw_dense_forward for dy[B×O] (stride lddy):
 *   du (stride lddu) = beta_u·du + dy·A      (skipped if du is NULL)
 *   dA += dyᵀ·u, da += Σ_b dy[b]             (skipped if NULL)
 * Weight gradients accumulate, so the calls of several time steps add up. */
void dcrw_dense_backward(int B, int I, int O, const float *u, int ldu, const float *A,
                         const float *dy, int lddy, float *du, int lddu, float beta_u, float *dA,
                         float *da);

/* The dense layer's weight gradient alone, dA (row stride ldA) += dyᵀ·u and
 * da += Σ_b dy[b] (da may be NULL): for a weight whose rows are wider than
 * the input u, the rest being a one-hot input's columns (below). */
void dcrw_dense_backward_weights(int B, int I, int O, const float *u, int ldu, const float *dy,
                                 int lddy, float *dA, int ldA, float *da);

/* A one-hot input is a column of the weight: y[b] (stride ldy) = a +
 * A[:, col + labels[b]] for A [O×·] of row stride ldA, the rows the other
 * inputs' sgemm then adds onto (MODEL.md §10's labels). */
void dcrw_label_rows(int B, int O, const float *a, const float *A, int ldA, int col,
                     const int32_t *labels, float *y, int ldy);
/* Its gradient: dA[:, col + labels[b]] += dy[b] for every b. */
void dcrw_label_rows_backward(int B, int O, const float *dy, int lddy, const int32_t *labels,
                              float *dA, int ldA, int col);

/* y[b] = a for every row b: the bias, before an sgemm adds onto it. */
void dcrw_bias_rows(int B, int O, const float *a, float *y, int ldy);
/* da[O] += Σ_b dy[b][0..O) */
void dcrw_bias_rows_backward(int B, int O, const float *dy, int lddy, float *da);

#endif
