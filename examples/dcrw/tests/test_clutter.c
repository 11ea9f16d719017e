/* The canvases of dcrw train --clutter (clutter.c), checked on images whose
 * pixels all hold one value of their own, so that every pixel of a canvas
 * says which image it came from. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../clutter.h"

enum { N = 40, H = 28, W = 28, SIDE = 100 };

/* image i: every pixel (i + 1) / 64 in channel k scaled by 1 / (k + 1) */
static dcrw_dataset *make_digits(int channels) {
    float *im = malloc((size_t)N * channels * H * W * sizeof *im);
    for (int i = 0; i < N; i++)
        for (int k = 0; k < channels; k++)
            for (int p = 0; p < H * W; p++)
                im[((size_t)i * channels + k) * H * W + p] =
                    (float)(i + 1) / 64.0f / (float)(k + 1);
    dcrw_dataset *d = NULL;
    ck_assert_int_eq(dcrw_dataset_from_memory(&d, im, DCRW_DTYPE_F32, N, channels, H, W, NULL),
                     DCRW_OK);
    free(im);
    return d;
}

static float value_of(int i) {
    return (float)(i + 1) / 64.0f;
}

/* Where the digit of value v lies on canvas c: the top-left corner of the
 * H×W square of pixels equal to v, which must hold every such pixel. */
static void find_digit(const float *c, float v, int *y, int *x) {
    int y0 = SIDE, x0 = SIDE, y1 = -1, x1 = -1, count = 0;
    for (int i = 0; i < SIDE; i++)
        for (int j = 0; j < SIDE; j++)
            if (c[i * SIDE + j] == v) {
                count++;
                y0 = i < y0 ? i : y0;
                x0 = j < x0 ? j : x0;
                y1 = i > y1 ? i : y1;
                x1 = j > x1 ? j : x1;
            }
    ck_assert_int_eq(count, H * W);
    ck_assert_int_eq(y1 - y0 + 1, H);
    ck_assert_int_eq(x1 - x0 + 1, W);
    *y = y0;
    *x = x0;
}

START_TEST(digit_and_fragments) {
    dcrw_dataset *d = make_digits(1);
    clutter c;
    /* fragments from the first 30 images; digits 30..39 are held out */
    ck_assert_int_eq(clutter_init(&c, d, 30, SIDE, 7), 0);
    size_t idx[N];
    for (int i = 0; i < N; i++) idx[i] = (size_t)i;
    float *x = malloc((size_t)N * SIDE * SIDE * sizeof *x);
    long fragment_pixels = 0;
    for (uint64_t use = 0; use < 5; use++) {
        clutter_batch(&c, idx, N, use, x);
        for (int b = 0; b < N; b++) {
            const float *canvas = x + (size_t)b * SIDE * SIDE;
            /* the brightest image is its own digit; for the others the
             * digit still shows wherever no brighter fragment lies over
             * it, so look only at the brightest */
            if (b == N - 1) {
                int y, xx;
                find_digit(canvas, value_of(b), &y, &xx);
            }
            for (int p = 0; p < SIDE * SIDE; p++) {
                float v = canvas[p];
                if (v == 0.0f || v == value_of(b)) continue;
                /* any other value is a fragment of another image of the pool */
                int src = (int)lroundf(v * 64.0f) - 1;
                if (v != value_of(src) || src == b || src >= 30)
                    ck_abort_msg("canvas %d pixel %d: %g is no fragment of the pool", b, p, v);
                fragment_pixels++;
            }
        }
    }
    /* eight 8×8 fragments a canvas, some hidden under brighter pixels */
    ck_assert_int_le(fragment_pixels, 5L * N * 8 * 64);
    ck_assert_int_ge(fragment_pixels, 5L * N * 2 * 64);
    free(x);
    dcrw_dataset_destroy(d);
}
END_TEST

START_TEST(pure_function_of_use_and_digit) {
    dcrw_dataset *d = make_digits(2);
    clutter c;
    ck_assert_int_eq(clutter_init(&c, d, N, SIDE, 3), 0);
    const size_t P = 2 * SIDE * SIDE;
    float *a = malloc(3 * P * sizeof *a), *b = malloc(3 * P * sizeof *b);
    size_t ia[3] = {5, 9, 17}, ib[3] = {17, 2, 5};
    clutter_batch(&c, ia, 3, 11, a);
    clutter_batch(&c, ib, 3, 11, b);
    /* the same digit and use give the same canvas wherever it is in the batch */
    ck_assert_int_eq(memcmp(a, b + 2 * P, P * sizeof *a), 0);
    ck_assert_int_eq(memcmp(a + 2 * P, b, P * sizeof *a), 0);
    /* the second channel is the first's half: one placement for all */
    for (size_t p = 0; p < SIDE * SIDE; p++)
        if (a[SIDE * SIDE + p] != a[p] / 2.0f) ck_abort_msg("pixel %zu: channels differ", p);
    /* another use, or another seed, another canvas */
    clutter_batch(&c, ia, 1, 12, b);
    ck_assert_int_ne(memcmp(a, b, P * sizeof *a), 0);
    clutter c2;
    ck_assert_int_eq(clutter_init(&c2, d, N, SIDE, 4), 0);
    clutter_batch(&c2, ia, 1, 11, b);
    ck_assert_int_ne(memcmp(a, b, P * sizeof *a), 0);
    free(a);
    free(b);
    dcrw_dataset_destroy(d);
}
END_TEST

/* The digit's place is uniform over the 73×73 corners: both ends reached,
 * the mean near the middle. */
START_TEST(places_uniform) {
    dcrw_dataset *d = make_digits(1);
    clutter c;
    ck_assert_int_eq(clutter_init(&c, d, N, SIDE, 1), 0);
    float *x = malloc((size_t)SIDE * SIDE * sizeof *x);
    const size_t digit = N - 1;
    const int uses = 3000;
    int lo = SIDE, hi = -1;
    double sum = 0;
    for (int u = 0; u < uses; u++) {
        clutter_batch(&c, &digit, 1, (uint64_t)u, x);
        int y, xx;
        find_digit(x, value_of(N - 1), &y, &xx);
        lo = y < lo ? y : lo;
        hi = y > hi ? y : hi;
        lo = xx < lo ? xx : lo;
        hi = xx > hi ? xx : hi;
        sum += y + xx;
    }
    ck_assert_int_eq(lo, 0);
    ck_assert_int_eq(hi, SIDE - H);
    /* mean 36, standard deviation of the mean 21.1 / sqrt(2 × 3000) = 0.27 */
    ck_assert_double_lt(fabs(sum / (2.0 * uses) - 36.0), 1.5);
    free(x);
    dcrw_dataset_destroy(d);
}
END_TEST

START_TEST(refusals) {
    dcrw_dataset *d = make_digits(1);
    clutter c;
    ck_assert_int_eq(clutter_init(&c, d, N, H - 1, 1), -1); /* canvas smaller than a digit */
    ck_assert_int_eq(clutter_init(&c, d, 1, SIDE, 1), -1);  /* no other image for fragments */
    ck_assert_int_eq(clutter_init(&c, d, 2, H, 1), 0);      /* a canvas just the digit's size */
    dcrw_dataset_destroy(d);
    float small[4 * 4] = {0};
    ck_assert_int_eq(dcrw_dataset_from_memory(&d, small, DCRW_DTYPE_F32, 1, 1, 4, 4, NULL),
                     DCRW_OK);
    ck_assert_int_eq(clutter_init(&c, d, N, SIDE, 1), -1); /* smaller than a fragment */
    dcrw_dataset_destroy(d);
}
END_TEST

int main(void) {
    Suite *s = suite_create("clutter");
    TCase *tc = tcase_create("canvases");
    tcase_add_test(tc, digit_and_fragments);
    tcase_add_test(tc, pure_function_of_use_and_digit);
    tcase_add_test(tc, places_uniform);
    tcase_add_test(tc, refusals);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
