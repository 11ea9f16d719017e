/* Gaussian attention of MODEL.md §3.4 (DRAW eqs. 19-29), batched: the
 * filterbanks FX [N×W] and FY [N×H] of every image from its five attention
 * numbers, the read (images to patches) and the write (patch to canvas),
 * each with its backward next to it.
 *
 * Layouts: p5 [B×5] = (g̃X, g̃Y, log σ², log δ̃, log γ) per image, the output
 * of the attention dense layer; FX [B×N×W], FY [B×N×H], gamma [B]; images
 * [B×P] with P = C·H·W channel-major; read patches [B×2·C·N²] (x channels,
 * then x̂ channels, each patch row-major (j, i)); write patches [B×C·N²].
 *
 * exp() guard: log σ², log δ̃ and log γ pass through exp() clamped to
 * [-FB_EXP_LIMIT, FB_EXP_LIMIT], so σ², δ and γ stay finite and nonzero in
 * float32 (exp(±87) is within float range and σ² never underflows to 0,
 * which would make 0/0 in the exponent). Where the argument is inside the
 * clamp, which is every case where exp() of it is finite and normal, the
 * math is unchanged; outside it the derivative is 0 (a clamp). */
#ifndef DCRW_LIB_FILTERBANK_H
#define DCRW_LIB_FILTERBANK_H

#include <stddef.h>

#define FB_EXP_LIMIT 87.0f

/* Floats dcrw_fb_filters_forward keeps in `aux` for the backward. */
size_t dcrw_fb_aux_floats(int B, int N);

/* p5 [B×5] -> FX [B×N×W], FY [B×N×H], gamma [B]; aux [dcrw_fb_aux_floats] keeps
 * what dcrw_fb_filters_backward needs (e.g. gX, gY, δ, σ², the row sums). */
void dcrw_fb_filters_forward(int B, int N, int H, int W, const float *p5, float *FX, float *FY,
                             float *gamma, float *aux);

/* dFX, dFY, dgamma (gradients of the loss w.r.t. the outputs above) ->
 * dp5 [B×5], overwritten. Finite for any finite p5. */
void dcrw_fb_filters_backward(int B, int N, int H, int W, const float *p5, const float *FX,
                              const float *FY, const float *gamma, const float *aux,
                              const float *dFX, const float *dFY, const float *dgamma, float *dp5);

/* The windows of p5 [B×5] in pixel terms, win [B×5] = (gX, gY, δ, σ², γ):
 * centre in 1-based pixel coordinates, grid stride, variance, intensity
 * (with the same exp() guard as the filters). */
void dcrw_fb_windows(int B, int N, int H, int W, const float *p5, float *win);

/* Scratch floats of the read / write calls for a batch of B. */
size_t dcrw_fb_read_scratch_floats(int B, int C, int N, int H, int W);
size_t dcrw_fb_write_scratch_floats(int B, int C, int N, int H, int W);

/* r [B×2CN²] = γ·[FY x_c FXᵀ for c < C, then FY x̂_c FXᵀ for c < C]; with
 * xhat NULL, r [B×CN²] of x alone (the classifier's read, MODEL.md §9). */
void dcrw_fb_read_forward(int B, int C, int N, int H, int W, const float *FX, const float *FY,
                          const float *gamma, const float *x, const float *xhat, float *r,
                          float *scratch);

/* Given dr [B×2CN²] ([B×CN²] with xhat NULL): dxhat [B×P] and dx [B×P]
 * overwritten (either may be NULL to skip), dFX, dFY, dgamma overwritten. */
void dcrw_fb_read_backward(int B, int C, int N, int H, int W, const float *FX, const float *FY,
                           const float *gamma, const float *x, const float *xhat, const float *dr,
                           float *dx, float *dxhat, float *dFX, float *dFY, float *dgamma,
                           float *scratch);

/* out [B×P] = (accumulate ? out : 0) + (1/γ)·FYᵀ w_c FX for each channel c. */
void dcrw_fb_write_forward(int B, int C, int N, int H, int W, const float *FX, const float *FY,
                           const float *gamma, const float *w, float *out, int accumulate,
                           float *scratch);

/* Given dout [B×P]: dw [B×CN²], dFX, dFY, dgamma overwritten. */
void dcrw_fb_write_backward(int B, int C, int N, int H, int W, const float *FX, const float *FY,
                            const float *gamma, const float *w, const float *dout, float *dw,
                            float *dFX, float *dFY, float *dgamma, float *scratch);

#endif
