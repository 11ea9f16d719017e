/* Dense layers: one sgemm for the batch, bias broadcast and reduction. */
#include <stddef.h>
#include <string.h>

#include "dense.h"
#include "gemm.h"

void dcrw_bias_rows(int B, int O, const float *a, float *y, int ldy) {
    for (int b = 0; b < B; b++) memcpy(y + (size_t)b * ldy, a, (size_t)O * sizeof(float));
}

void dcrw_bias_rows_backward(int B, int O, const float *dy, int lddy, float *da) {
    for (int b = 0; b < B; b++) {
        const float *row = dy + (size_t)b * lddy;
        for (int o = 0; o < O; o++) da[o] += row[o];
    }
}

void dcrw_dense_forward(int B, int I, int O, const float *u, int ldu, const float *A,
                        const float *a, float *y, int ldy) {
    /* the bias goes in first and sgemm adds onto it (beta = 1) */
    float beta = 0.0f;
    if (a) {
        dcrw_bias_rows(B, O, a, y, ldy);
        beta = 1.0f;
    }
    gemm_nt(B, O, I, u, ldu, A, I, beta, y, ldy);
}

void dcrw_dense_backward_weights(int B, int I, int O, const float *u, int ldu, const float *dy,
                                 int lddy, float *dA, int ldA, float *da) {
    gemm_tn(O, I, B, dy, lddy, u, ldu, 1.0f, dA, ldA);
    if (da) dcrw_bias_rows_backward(B, O, dy, lddy, da);
}

void dcrw_dense_backward(int B, int I, int O, const float *u, int ldu, const float *A,
                         const float *dy, int lddy, float *du, int lddu, float beta_u, float *dA,
                         float *da) {
    if (du) gemm_nn(B, I, O, dy, lddy, A, I, beta_u, du, lddu);
    if (dA) {
        dcrw_dense_backward_weights(B, I, O, u, ldu, dy, lddy, dA, I, da);
    } else if (da) {
        dcrw_bias_rows_backward(B, O, dy, lddy, da);
    }
}

void dcrw_label_rows(int B, int O, const float *a, const float *A, int ldA, int col,
                     const int32_t *labels, float *y, int ldy) {
    for (int b = 0; b < B; b++) {
        const float *w = A + col + labels[b];
        float *row = y + (size_t)b * ldy;
        for (int o = 0; o < O; o++) row[o] = a[o] + w[(size_t)o * ldA];
    }
}

void dcrw_label_rows_backward(int B, int O, const float *dy, int lddy, const int32_t *labels,
                              float *dA, int ldA, int col) {
    /* row by row of dA: its K label columns sit together, where image by
     * image would touch O rows of dA for every image */
    for (int o = 0; o < O; o++) {
        float *w = dA + (size_t)o * ldA + col;
        for (int b = 0; b < B; b++) w[labels[b]] += dy[(size_t)b * lddy + o];
    }
}
