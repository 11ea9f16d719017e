#define _GNU_SOURCE
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rng.h"
#include "testutil.h"

const char *tu_path(const char *rel) {
    static char buf[4096];
    const char *root = getenv("DCRW_TEST_DATA");
    snprintf(buf, sizeof buf, "%s/%s", root ? root : ".", rel);
    return buf;
}

char *tu_tmpdir(void) {
    const char *base = getenv("TMPDIR");
    char *tmpl = malloc(4096);
    snprintf(tmpl, 4096, "%s/dcrw-test-XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(tmpl)) {
        free(tmpl);
        return NULL;
    }
    return tmpl;
}

void tu_rmdir(char *dir) {
    if (!dir) return;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char path[8192];
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
    free(dir);
}

unsigned char *tu_read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    ck_assert_int_ge(len, 0);
    ck_assert_int_eq(fseek(f, 0, SEEK_SET), 0);
    unsigned char *b = malloc((size_t)len + 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

int tu_count_entries(const char *dir) {
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "cannot open %s", dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

void tu_fill_uniform(float *x, size_t n, float lo, float hi, uint64_t seed) {
    uint64_t key = rng_key(seed, 77, 0);
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * rng_uniform(key, i);
}

double tu_rel_err(const float *a, const float *b, size_t n, double floor) {
    double maxref = floor, maxdiff = 0.0;
    for (size_t i = 0; i < n; i++) {
        double r = b[i] < 0 ? -(double)b[i] : (double)b[i];
        if (r > maxref) maxref = r;
        double d = (double)a[i] - (double)b[i];
        if (d < 0) d = -d;
        if (!(d <= maxdiff)) maxdiff = d; /* NaN propagates */
    }
    return maxdiff / maxref;
}

int tu_run(Suite *s) {
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

/* ---- gradient checks (the rule is in testutil.h) ---- */

tu_fd tu_fd_f64(size_t nmax, uint64_t seed) {
    return (tu_fd){.h = 1e-5, .eps = 1e-13, .rtol = 1e-4, .nmax = nmax, .seed = seed};
}

tu_fd tu_fd_f32(size_t nmax, uint64_t seed) {
    return (tu_fd){.h = 1e-2, .eps = 3e-8, .rtol = 5e-4, .nmax = nmax, .seed = seed, .precise = 1};
}

/* A parameter vector of either precision. */
typedef struct fd_param {
    double *d;
    float *f;
} fd_param;

/* x[i] = v as the vector stores it; returns the stored value */
static double fdp_set(fd_param x, size_t i, double v) {
    if (x.d) return x.d[i] = v;
    x.f[i] = (float)v;
    return x.f[i];
}

static double fdp_get(fd_param x, size_t i) {
    return x.d ? x.d[i] : (double)x.f[i];
}

/* The coordinates to check: 0..n-1 if n <= nmax, else nmax distinct ones
 * by Floyd's sampling from the test's own splitmix64 stream. */
static size_t *fd_coords(size_t n, size_t nmax, uint64_t seed, size_t *cnt) {
    *cnt = n <= nmax ? n : nmax;
    size_t *idx = malloc((*cnt ? *cnt : 1) * sizeof *idx);
    ck_assert_ptr_nonnull(idx);
    if (n <= nmax) {
        for (size_t j = 0; j < n; j++) idx[j] = j;
        return idx;
    }
    unsigned char *taken = calloc(n, 1);
    ck_assert_ptr_nonnull(taken);
    uint64_t st = seed;
    size_t k = 0;
    for (size_t j = n - nmax; j < n; j++) {
        uint64_t z = (st += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        size_t t = (size_t)((z ^ (z >> 31)) % (j + 1));
        if (taken[t]) t = j;
        taken[t] = 1;
        idx[k++] = t;
    }
    free(taken);
    return idx;
}

/* One coordinate: the difference quotient and the one-sided slopes. */
typedef struct fd_point {
    double num, sp, sm;
} fd_point;

/* (L(x_i + h) − L(x_i − h)) / (the step as stored), x_i put back; the
 * losses to *lp, *lm, the stored x_i ± h to *up, *dn */
static double fd_central(tu_loss_fn loss, void *ctx, fd_param x, size_t i, double h, double *lp,
                         double *lm, double *up, double *dn) {
    const double v = fdp_get(x, i);
    *up = fdp_set(x, i, v + h);
    *lp = loss(ctx);
    *dn = fdp_set(x, i, v - h);
    *lm = loss(ctx);
    fdp_set(x, i, v);
    return (*lp - *lm) / (*up - *dn);
}

/* *big = max(*big, |L|) over the losses evaluated */
static fd_point fd_at(tu_loss_fn loss, void *ctx, fd_param x, size_t i, double L0, const tu_fd *o,
                      double *big) {
    const double v = fdp_get(x, i);
    double lp, lm, up, dn;
    fd_point p;
    p.num = fd_central(loss, ctx, x, i, o->h, &lp, &lm, &up, &dn);
    p.sp = (lp - L0) / (up - v);
    p.sm = (L0 - lm) / (v - dn);
    *big = fmax(*big, fmax(fabs(lp), fabs(lm)));
    if (o->precise) { /* Richardson: the h² terms of D(h) and D(2h) cancel */
        double d2 = fd_central(loss, ctx, x, i, 2 * o->h, &lp, &lm, &up, &dn);
        p.num = (4 * p.num - d2) / 3;
        *big = fmax(*big, fmax(fabs(lp), fabs(lm)));
    }
    return p;
}

/* |a − n| / tolerance (0 when equal, even to a tolerance of 0), non-finite
 * as infinitely bad */
static double fd_ratio(double a, double n, double tol) {
    if (!isfinite(a) || !isfinite(n)) return INFINITY;
    return a == n ? 0.0 : fabs(a - n) / tol;
}

/* s+ − s− = (L(x+h) − 2L + L(x−h))/h carries up to 4 roundings of the
 * loss over h (noise = eps·Λ/h) */
static int fd_is_kink(const fd_point *p, double noise, const tu_fd *o) {
    return o->kinks && fabs(p->sp - p->sm) > 4 * noise + o->rtol / 10 * (fabs(p->sp) + fabs(p->sm));
}

static tu_fd_result fd_check(const char *name, tu_loss_fn loss, void *ctx, fd_param x, size_t n,
                             const float *grad, const tu_fd *o) {
    tu_fd_result r = {0};
    size_t cnt, failed = 0, worst = 0;
    size_t *idx = fd_coords(n, o->nmax, o->seed, &cnt);
    fd_point *pt = malloc((cnt ? cnt : 1) * sizeof *pt);
    ck_assert_ptr_nonnull(pt);
    const double L0 = loss(ctx);
    double big = fabs(L0);
    for (size_t j = 0; j < cnt; j++) pt[j] = fd_at(loss, ctx, x, idx[j], L0, o, &big);
    /* the rounding of the losses through the quotient: 1/h for the
     * central difference, (4/h + 1/2h)/3 = 1.5/h for the five-point one */
    const double noise = o->eps * big / o->h, tol_floor = (o->precise ? 1.5 : 1.0) * noise;
    for (size_t j = 0; j < cnt; j++)
        if (fd_is_kink(&pt[j], noise, o))
            r.skipped++;
        else if (fabs(pt[j].num) > r.scale)
            r.scale = fabs(pt[j].num);
    r.tol = fmax(tol_floor, o->rtol * r.scale);
    for (size_t j = 0; j < cnt; j++) {
        if (fd_is_kink(&pt[j], noise, o)) continue;
        double q = fd_ratio(grad[idx[j]], pt[j].num, r.tol);
        r.checked++;
        failed += !(q <= 1);
        if (!(q <= r.worst)) r.worst = q, worst = j;
    }
    if (getenv("TU_FD_VERBOSE"))
        fprintf(stderr,
                "fd %-24s n %6zu checked %5zu skipped %3zu scale %10.4g tol %9.3g "
                "worst %.3g\n",
                name, n, r.checked, r.skipped, r.scale, r.tol, r.worst);
    if (failed) {
        const size_t i = idx[worst];
        const double a = grad[i], num = pt[worst].num;
        free(idx);
        free(pt);
        ck_abort_msg("%s[%zu]: analytic %.9g, finite difference %.9g: |a - n| = %.3g over the "
                     "tolerance %.3g (scale %.3g); %zu of %zu coordinates fail",
                     name, i, a, num, fabs(a - num), r.tol, r.scale, failed, r.checked);
    }
    free(idx);
    free(pt);
    ck_assert_msg(r.skipped <= 2 + cnt / 50, "%s: %zu of %zu coordinates on a kink", name,
                  r.skipped, cnt);
    return r;
}

tu_fd_result tu_fd_check(const char *name, tu_loss_fn loss, void *ctx, double *x, size_t n,
                         const float *grad, const tu_fd *o) {
    return fd_check(name, loss, ctx, (fd_param){x, NULL}, n, grad, o);
}

tu_fd_result tu_fd_check_f(const char *name, tu_loss_fn loss, void *ctx, float *x, size_t n,
                           const float *grad, const tu_fd *o) {
    return fd_check(name, loss, ctx, (fd_param){NULL, x}, n, grad, o);
}

size_t tu_fd_check_model(const char *what, dcrw_model *m, dcrw_trainer *t, tu_loss_fn loss,
                         void *ctx, size_t nmax, uint64_t seed) {
    const int has_cnn = dcrw_model_find_param(m, "enc.conv1.weight", NULL, NULL) == DCRW_OK;
    size_t checked = 0;
    for (size_t i = 0; i < dcrw_model_param_count(m); i++) {
        const char *name;
        float *p, *g;
        size_t cnt;
        ck_assert_int_eq(dcrw_model_param(m, i, &name, NULL, NULL, &p), DCRW_OK);
        loss(ctx);
        ck_assert_int_eq(dcrw_trainer_find_grad(t, name, &g, &cnt), DCRW_OK);
        /* the check's own calls of loss may overwrite the trainer's */
        float *g0 = malloc(cnt * sizeof *g0);
        memcpy(g0, g, cnt * sizeof *g0);
        tu_fd o = tu_fd_f32(nmax, seed ^ ((uint64_t)i << 20));
        if (strncmp(name, "enc.conv", 8) == 0 || (has_cnn && strncmp(name, "read.attn", 9) == 0)) {
            o.h = 1e-3;
            o.precise = 0;
            o.kinks = 1;
        }
        char label[160];
        snprintf(label, sizeof label, "%s %s", what, name);
        checked += tu_fd_check_f(label, loss, ctx, p, cnt, g0, &o).checked;
        free(g0);
    }
    return checked;
}

dcrw_config tu_tiny_classifier(void) {
    dcrw_config c = {.size = sizeof c};
    dcrw_config_preset(&c, DCRW_PRESET_DRAW_CLASSIFY);
    c.channels = 2;
    c.height = 9;
    c.width = 11;
    c.glimpses = 3;
    c.enc_size = 7;
    c.read_n = 3;
    c.classes = 5;
    return c;
}

dcrw_config tu_tiny_config(int which) {
    dcrw_config c;
    switch (which) {
    case 0: /* draw */
        dcrw_config_preset(&c, DCRW_PRESET_DRAW);
        c.height = c.width = 6;
        c.read_n = 2;
        c.write_n = 3;
        c.enc_size = 7;
        break;
    case 1: /* draw-noattn */
        dcrw_config_preset(&c, DCRW_PRESET_DRAW_NOATTN);
        c.height = c.width = 5;
        c.enc_size = 6;
        break;
    case 2: /* dcrw */
        dcrw_config_preset(&c, DCRW_PRESET_DCRW);
        c.height = c.width = 8;
        c.read_n = 5;
        c.write_n = 3;
        c.conv1 = 3;
        c.conv2 = 4;
        break;
    case 3: /* dcrw-noread */
        dcrw_config_preset(&c, DCRW_PRESET_DCRW_NOREAD);
        c.height = 9;
        c.width = 8;
        c.write_n = 2;
        c.conv1 = 3;
        c.conv2 = 4;
        break;
    case 4: /* draw, two channels, non-square, black canvas */
        dcrw_config_preset(&c, DCRW_PRESET_DRAW);
        c.channels = 2;
        c.height = 5;
        c.width = 7;
        c.read_n = 3;
        c.write_n = 1;
        c.enc_size = 5;
        c.canvas_init = -2.0f;
        break;
    default: /* dcrw, three channels, N_w larger than the image */
        dcrw_config_preset(&c, DCRW_PRESET_DCRW);
        c.channels = 3;
        c.height = 6;
        c.width = 7;
        c.read_n = 4;
        c.write_n = 8;
        c.conv1 = 2;
        c.conv2 = 3;
        break;
    }
    c.glimpses = 3;
    c.dec_size = 8;
    c.z_size = 3;
    return c;
}
