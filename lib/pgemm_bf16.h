/* Products in bfloat16 for the bf16 precision option: C[M×n] = beta·C +
 * A[M×k]·B[k×n] with A and B rounded to bfloat16 and the products summed
 * in float32.
 *
 * bfloat16 keeps float32's 8 exponent bits and 8 of its 24 significand
 * bits, so a product of two bf16 values is exact in float32. AVX-512 BF16's
 * VDPBF16PS multiplies 32 such pairs and adds them into 16 float32 lanes in
 * one instruction, twice the multiply-adds of a float32 FMA: the products
 * of the model's weights, the largest part of a step, run up to twice as
 * fast, at the cost of rounding each weight and activation to 3 significant
 * digits before it is multiplied (everything else, and every sum, stays
 * float32).
 *
 * Operands are rounded to nearest, ties to even (VCVTNE2PS2BF16). A lane
 * sums along k in pairs: for pair p, lane += a[2p+1]·b[2p+1], then lane +=
 * a[2p]·b[2p], each rounded to float32, as VDPBF16PS does; the k blocks of
 * a long product (BF16_KC) start from 0 and are added to C in order. The
 * portable C path computes exactly that, so on numbers away from the
 * subnormal range (which VDPBF16PS treats as zero) both paths give the same
 * bits.
 *
 * A packed B [k × n] is ⌈n/32⌉ column panels, each ⌈k/2⌉ rows of 32 words;
 * word j of row p holds B[2p][j] in its low half and B[2p+1][j] in its high
 * half (0 past k or n). */
#ifndef DCRW_LIB_PGEMM_BF16_H
#define DCRW_LIB_PGEMM_BF16_H

#include <stddef.h>
#include <stdint.h>

#define BF16_NR 32  /* panel width */
#define BF16_KC 192 /* k per block, even */

typedef struct bf16_b {
    const uint32_t *panels;
    int k, n;
} bf16_b;

/* 1 if this CPU (and build) has VDPBF16PS; without it dcrw_bf16_gemm takes
 * the portable path, same numbers, many times slower. */
int dcrw_bf16_hardware(void);
/* For tests and the benchmark: 0 forces the portable path, 1 the hardware
 * one if the CPU has it. Returns the previous setting. */
int dcrw_bf16_use_hardware(int on);

/* x rounded to the nearest bfloat16, ties to even (NaN stays NaN). */
uint16_t dcrw_bf16_round(float x);
float dcrw_bf16_to_float(uint16_t h);

/* Words a packed [k × n] operand takes (0 if k or n < 1). */
size_t dcrw_bf16_pack_words(int k, int n);
/* Pack B = Wᵀ (trans = 1: W [n × k], row stride ldw >= k) or B = W
 * (trans = 0: W [k × n], ldw >= n) into buf, 64-byte aligned, of
 * dcrw_bf16_pack_words(k, n) words; part `part` of `parts` of the panels
 * (the parts together write each panel once, for threads sharing a pack). */
void dcrw_bf16_pack_part(int trans, int k, int n, const float *w, int ldw, uint32_t *buf, int part,
                         int parts);
void dcrw_bf16_describe(bf16_b *out, int k, int n, const uint32_t *buf);

/* C[M × B->n] = beta·C + bf16(A)[M × B->k]·B, A row-major with stride lda.
 * beta = 0 only writes C. Uses 36 KiB of stack. */
void dcrw_bf16_gemm(int M, const float *A, int lda, const bf16_b *B, float beta, float *C, int ldc);

/* Columns of B a dcrw_bf16_gemm_tn packs at a time, and the words of the
 * workspace it needs for them. */
#define BF16_TN_NC 320
size_t dcrw_bf16_tn_words(void);
/* C[M×N] = beta·C + bf16(A)ᵀ·bf16(B), A [K×M] (stride lda) and B [K×N]
 * (stride ldb) read in place: the weight gradients dYᵀ·X over the T·B rows
 * of a step. The same sums as dcrw_bf16_gemm of Aᵀ by B (k blocks of
 * BF16_KC, in order). work: dcrw_bf16_tn_words() words, 64-byte aligned;
 * uses 36 KiB of stack besides. */
void dcrw_bf16_gemm_tn(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                       float beta, float *C, int ldc, uint32_t *work);

#endif
