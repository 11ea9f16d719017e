/* Helpers shared by the Check suites: golden files, random fills,
 * comparison with a tolerance that says where it failed, and the one
 * gradient check every backward is tested with (tu_fd_check). */
#ifndef DCRW_TESTUTIL_H
#define DCRW_TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "dcrw/dcrw.h"
#include "safetensors.h"

/* Path of a file under tests/ (DCRW_TEST_DATA, set by meson); static buffer. */
const char *tu_path(const char *rel);

/* A fresh temporary directory (removed by tu_rmdir); static buffer per call
 * is not shared: the result is malloc'ed. */
char *tu_tmpdir(void);
void tu_rmdir(char *dir);

/* The whole file at path, malloc'ed (one spare byte); *n its size. Fails
 * the test if it cannot be read. */
unsigned char *tu_read_file(const char *path, size_t *n);

/* Entries of dir other than . and .. */
int tu_count_entries(const char *dir);

/* Deterministic uniform fill in [lo, hi). */
void tu_fill_uniform(float *x, size_t n, float lo, float hi, uint64_t seed);

/* max |a - b| / max(max |b|, floor) */
double tu_rel_err(const float *a, const float *b, size_t n, double floor);

/* Read golden tensor `name` from a parsed file into a malloc'ed float buffer. */
float *tu_st_floats(const st_file *f, const char *name, size_t *count);

/* ---- Gradient checks ----
 *
 * Every backward pass is checked the same way (in the manner of ggml's
 * test-backend-ops: one harness, with the step, the number of coordinates,
 * the stencil and kink handling set per test): its gradient a against a
 * finite difference n of a loss L the test computes,
 *
 *   central:    D(h) = (L(x + h·e_i) − L(x − h·e_i)) / 2h
 *   precise:    (4·D(h) − D(2h)) / 3, the five-point difference: the h²
 *               error terms cancel (Richardson), leaving h⁴
 *
 * Coordinates: all of a tensor of at most nmax entries, otherwise nmax
 * distinct ones drawn from seed (a fixed draw, so a failure repeats).
 *
 * The rule: coordinate i passes when
 *
 *     |a_i − n_i| <= max(g·eps·Λ/h, rtol·S)
 *
 * S = max |n_j| over the checked coordinates is the tensor's scale; Λ the
 * largest |L| the check evaluated; g = 1 for the central difference, 1.5
 * for the five-point one. g·eps·Λ/h is what the difference quotient cannot
 * resolve: the loss's rounding (eps relative) over the step. rtol·S is the
 * analytic side's error: a float gradient's rounding follows the size of
 * the sums behind the whole tensor, so an entry near zero by cancellation
 * carries the tensor's error, not its own. Neither term depends on a, so a
 * wrong gradient cannot widen its own tolerance; a wrong index, sign, mask
 * or a missing term moves some entry by the order of one term, far above
 * rtol·S.
 *
 * Step and tolerances per precision of the loss:
 *   tu_fd_f64: L is a double-precision reference written in the test, the
 *     gradient comes from the library in float. Central, h = 1e-5,
 *     eps = 1e-13 (~500 double ulps), rtol = 1e-4. Truncation h²·L'''/6 is
 *     ~1e-10; the float gradient is off by a few float epsilons (6e-8)
 *     times the square root of the number of terms summed: at most 1.7e-7·S
 *     was measured, 7.6e-6·S in the filterbank's worst case.
 *   tu_fd_f32: L comes from the library in float, through the public API
 *     (the whole model); the step is what float stores of x ± h. Precise,
 *     h = 1e-2, eps = 3e-8, rtol = 5e-4. The loss's rounding was measured
 *     at 2e-7 nats of 30 to 90 (from the error of D(h) at h = 1e-4, where
 *     it dominates); the five-point truncation stays below 5e-5.
 * A test may change h (a smaller one near kinks), the stencil and nmax.
 *
 * Kinks: with kinks set (the loss is piecewise linear or smooth only piece
 * by piece: ReLU, max-pool), a coordinate whose one-sided slopes
 * (L(x+h) − L)/h and (L − L(x−h))/h differ by more than
 * 4·eps·Λ/h + rtol/10·(|s+| + |s−|) has a kink within h and is skipped (4:
 * their difference (L(x+h) − 2L + L(x−h))/h carries four roundings); at
 * most 2 + sampled/50 may be. Use it with the central difference: the
 * slopes look only as far as h.
 *
 * On failure the message names the worst coordinate (largest
 * |a − n| / tolerance): index, a, n, tolerance, S, and how many failed.
 * TU_FD_VERBOSE=1 in the environment prints every check's worst ratio. */

/* The loss at the current parameters; the check moves one coordinate at a
 * time and puts it back. */
typedef double (*tu_loss_fn)(void *ctx);

typedef struct tu_fd {
    double h;      /* step */
    double eps;    /* relative rounding of the loss */
    double rtol;   /* tolerance relative to the tensor's scale S */
    size_t nmax;   /* coordinates checked: all if n <= nmax, else nmax */
    uint64_t seed; /* which nmax */
    int precise;   /* the five-point difference, not the central one */
    int kinks;     /* skip coordinates on a kink */
} tu_fd;

typedef struct tu_fd_result {
    size_t checked; /* coordinates compared */
    size_t skipped; /* of those sampled, on a kink */
    double scale;   /* S */
    double tol;     /* max(g·eps·Λ/h, rtol·S) */
    double worst;   /* largest |a − n| / tol; <= 1 passed */
} tu_fd_result;

/* The options of each precision, with nmax and seed. */
tu_fd tu_fd_f64(size_t nmax, uint64_t seed);
tu_fd tu_fd_f32(size_t nmax, uint64_t seed);

/* Checks grad[0..n) against finite differences of loss in x[0..n)
 * (double parameters of a reference) and fails the test by the rule above.
 * x is restored. */
tu_fd_result tu_fd_check(const char *name, tu_loss_fn loss, void *ctx, double *x, size_t n,
                         const float *grad, const tu_fd *o);
/* The same for float parameters (the library's own); the step is
 * (float)(x + h) − (float)(x − h), as stored. */
tu_fd_result tu_fd_check_f(const char *name, tu_loss_fn loss, void *ctx, float *x, size_t n,
                           const float *grad, const tu_fd *o);

/* Every parameter tensor of m against finite differences of loss (a loss
 * of the whole model through the public API), nmax coordinates a tensor
 * drawn from seed, at float precision (tu_fd_f32); where a CNN encoder's
 * max-pool and ReLU put kinks (its own tensors, and the read attention that
 * feeds it its patches) a central difference with h = 1e-3 and kinks
 * skipped. The analytic gradient of each tensor is read from t after a
 * call of loss at the unperturbed parameters (so a loss that runs the
 * trainer's backward serves too). Returns the coordinates compared. */
size_t tu_fd_check_model(const char *what, dcrw_model *m, dcrw_trainer *t, tu_loss_fn loss,
                         void *ctx, size_t nmax, uint64_t seed);

/* Tiny configurations of every preset and some odd shapes, which = 0 ..
 * TU_NTINY − 1: draw, draw-noattn, dcrw, dcrw-noread, then draw with two
 * channels, a non-square image and a black canvas, and dcrw with three
 * channels and a write window larger than the image. */
#define TU_NTINY 6
dcrw_config tu_tiny_config(int which);
/* A tiny attention classifier: 2 channels of 9×11, an odd window (3×3), 3
 * glimpses, 7 cells, 5 classes. */
dcrw_config tu_tiny_classifier(void);

/* Run a suite and return the process exit status (0 if all passed). */
int tu_run(Suite *s);

#endif
