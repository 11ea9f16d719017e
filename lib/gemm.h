/* Row-major matrix products through cblas_sgemm, named by which operand is
 * transposed: gemm_nt computes C = beta·C + A·Bᵀ with A [M×K], B [N×K]. All
 * matrix products of the library go through these three. */
#ifndef DCRW_LIB_GEMM_H
#define DCRW_LIB_GEMM_H

#include <cblas.h>

/* OpenBLAS's cblas.h pulls in <complex.h>, whose macro I would swallow any
 * variable of that name; nothing here uses complex numbers. */
#ifdef I
#undef I
#endif

/* C[M×N] = beta·C + A[M×K]·B[N×K]ᵀ */
static inline void gemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                           float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, lda, B, ldb, beta, C,
                ldc);
}

/* C[M×N] = beta·C + A[M×K]·B[K×N] */
static inline void gemm_nn(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                           float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, lda, B, ldb, beta, C,
                ldc);
}

/* C[M×N] = beta·C + A[K×M]ᵀ·B[K×N] */
static inline void gemm_tn(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                           float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, M, N, K, 1.0f, A, lda, B, ldb, beta, C,
                ldc);
}

#endif
