/* dcrw plot: the loss curves of a run (the seed paper's Fig. 6) as a
 * hand-written SVG: Lx and Lz against the step, each in its own panel on a
 * log scale, and the held-out bound when the run has one. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common.h"

#define MAX_POINTS 800 /* per curve: a longer log is averaged into buckets */
#define FIG_W 760
#define PANEL_H 250
#define MARGIN_L 70
#define MARGIN_R 20
#define MARGIN_T 40
#define PANEL_GAP 60

typedef struct series {
    double *x, *y;
    size_t n, cap;
} series;

static int series_push(series *s, double x, double y) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 1024;
        double *nx = realloc(s->x, cap * sizeof *nx);
        if (!nx) return -1;
        s->x = nx;
        double *ny = realloc(s->y, cap * sizeof *ny);
        if (!ny) return -1;
        s->y = ny;
        s->cap = cap;
    }
    s->x[s->n] = x;
    s->y[s->n] = y;
    s->n++;
    return 0;
}

static void series_free(series *s) {
    free(s->x);
    free(s->y);
}

/* Average consecutive points into at most MAX_POINTS buckets of equal step
 * width, so that a 100,000-step run still makes a small, smooth file. */
static size_t bucket_of(double x, double lo, double w) {
    double b = (x - lo) / w;
    return b <= 0 ? 0 : b >= MAX_POINTS - 1 ? MAX_POINTS - 1 : (size_t)b;
}

static void series_bucket(series *s) {
    if (s->n <= MAX_POINTS) return;
    double lo = s->x[0], hi = s->x[s->n - 1], w = (hi - lo) / MAX_POINTS;
    if (!(w > 0)) return;
    size_t out = 0, i = 0;
    while (i < s->n) {
        size_t b = bucket_of(s->x[i], lo, w), k = 0;
        double sx = 0, sy = 0;
        while (i < s->n && bucket_of(s->x[i], lo, w) == b) {
            sx += s->x[i];
            sy += s->y[i];
            k++;
            i++;
        }
        s->x[out] = sx / (double)k;
        s->y[out] = sy / (double)k;
        out++;
    }
    s->n = out;
}

/* a CSV field as a number; NaN when empty */
static double field(const char **p) {
    const char *s = *p;
    double v = NAN;
    if (*s != ',' && *s != '\n' && *s != '\r' && *s) {
        char *end = NULL;
        errno = 0;
        v = strtod(s, &end);
        if (end == s || errno == ERANGE) v = NAN;
        s = end;
    }
    while (*s && *s != ',' && *s != '\n') s++;
    if (*s == ',') s++;
    *p = s;
    return v;
}

typedef struct curves {
    series lx, lz, loss, valid;
} curves;

static int read_log(const char *path, curves *c) {
    char *text = cli_read_file(path, NULL);
    if (!text) return -1;
    if (strncmp(text, "step,wall_s,lx,lz,loss", 22) != 0) {
        cli_error("%s: not a log of dcrw train (its header should start step,wall_s,lx,lz,loss)",
                  path);
        free(text);
        return -1;
    }
    const char *p = strchr(text, '\n');
    int rc = 0;
    while (p && *++p && rc == 0) {
        const char *e = strchr(p, '\n');
        if (!e) break; /* a row still being written */
        const char *q = p;
        double step = field(&q);
        field(&q); /* wall time */
        double lx = field(&q), lz = field(&q), loss = field(&q);
        field(&q); /* images/s */
        double vb = q < e ? field(&q) : NAN;
        if (isfinite(step)) {
            if (isfinite(lx) && isfinite(lz) && isfinite(loss))
                rc |= series_push(&c->lx, step, lx) | series_push(&c->lz, step, lz) |
                      series_push(&c->loss, step, loss);
            if (isfinite(vb)) rc |= series_push(&c->valid, step, vb);
        }
        p = e;
    }
    free(text);
    if (rc) {
        cli_error("%s: out of memory", path);
        return -1;
    }
    if (c->lx.n == 0) {
        cli_error("%s: no training steps logged yet", path);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */

static void xml_text(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            if ((unsigned char)*s >= 0x20) fputc(*s, f);
        }
    }
}

static double nice_step(double range) {
    if (!(range > 0)) return 1;
    double raw = range / 6.0, mag = pow(10.0, floor(log10(raw))), r = raw / mag;
    return mag * (r <= 1 ? 1 : r <= 2 ? 2 : r <= 5 ? 5 : 10);
}

static void fmt_num(char *buf, size_t n, double v) {
    if (fabs(v) >= 1e5 || (fabs(v) < 1e-3 && v != 0))
        snprintf(buf, n, "%.0e", v);
    else
        snprintf(buf, n, "%g", v);
}

typedef struct panel {
    double x0, x1, ylo, yhi; /* data ranges; y in log10 */
    double top;              /* pixel y of the panel's top */
} panel;

static double px_x(const panel *p, double x) {
    double w = FIG_W - MARGIN_L - MARGIN_R;
    return MARGIN_L + (p->x1 > p->x0 ? (x - p->x0) / (p->x1 - p->x0) : 0.5) * w;
}

static double px_y(const panel *p, double y) {
    double ly = log10(y > 0 ? y : 1e-300);
    if (ly < p->ylo) ly = p->ylo;
    if (ly > p->yhi) ly = p->yhi;
    return p->top + PANEL_H - (ly - p->ylo) / (p->yhi - p->ylo) * PANEL_H;
}

static void y_range(const series *a, const series *b, double *lo, double *hi) {
    double mn = INFINITY, mx = -INFINITY;
    const series *all[2] = {a, b};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; all[k] && i < all[k]->n; i++) {
            double v = all[k]->y[i];
            if (v > 0 && v < mn) mn = v;
            if (v > 0 && v > mx) mx = v;
        }
    if (!(mn <= mx)) mn = mx = 1;
    double l = log10(mn), h = log10(mx);
    if (h - l < 0.05) {
        l -= 0.05;
        h += 0.05;
    }
    double pad = 0.04 * (h - l);
    *lo = l - pad;
    *hi = h + pad;
}

static void draw_axes(FILE *f, const panel *p, const char *title) {
    double w = FIG_W - MARGIN_L - MARGIN_R;
    fprintf(f,
            "<rect x=\"%d\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"none\" "
            "stroke=\"#444\"/>\n",
            MARGIN_L, p->top, w, PANEL_H);
    fprintf(f, "<text x=\"%d\" y=\"%.1f\" font-size=\"14\" font-weight=\"bold\">", MARGIN_L,
            p->top - 8);
    xml_text(f, title);
    fputs("</text>\n", f);
    /* x ticks */
    double st = nice_step(p->x1 - p->x0);
    char buf[32];
    for (double v = ceil(p->x0 / st) * st; v <= p->x1 + 1e-9 * st; v += st) {
        double x = px_x(p, v);
        fmt_num(buf, sizeof buf, v);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", x,
                p->top, x, p->top + PANEL_H);
        fprintf(f,
                "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\">%s</text>\n",
                x, p->top + PANEL_H + 14, buf);
    }
    /* y ticks on the log axis: 1-2-5 per decade, or every integer multiple
     * when the range is narrow */
    int dense = p->yhi - p->ylo < 1.0;
    int drawn = 0;
    for (int pass = 0; pass < 2 && drawn < 2; pass++) {
        for (int e = (int)floor(p->ylo); e <= (int)ceil(p->yhi); e++)
            for (int mlt = 1; mlt <= 9; mlt++) {
                if (!(dense || pass) && mlt != 1 && mlt != 2 && mlt != 5) continue;
                double v = mlt * pow(10.0, e), lv = log10(v);
                if (lv < p->ylo || lv > p->yhi) continue;
                double y = px_y(p, v);
                fmt_num(buf, sizeof buf, v);
                fprintf(f,
                        "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
                        MARGIN_L, y, MARGIN_L + w, y);
                fprintf(
                    f, "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%s</text>\n",
                    MARGIN_L - 5, y + 4, buf);
                drawn++;
            }
        if (drawn >= 2) break;
    }
    fprintf(f,
            "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\">training "
            "step</text>\n",
            MARGIN_L + w / 2, p->top + PANEL_H + 30);
    fprintf(f,
            "<text x=\"16\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\" "
            "transform=\"rotate(-90 16 %.1f)\">nats (log scale)</text>\n",
            p->top + PANEL_H / 2.0, p->top + PANEL_H / 2.0);
}

static void draw_line(FILE *f, const panel *p, const series *s, const char *colour) {
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", colour);
    for (size_t i = 0; i < s->n; i++)
        fprintf(f, "%s%.1f,%.1f", i ? " " : "", px_x(p, s->x[i]), px_y(p, s->y[i]));
    fputs("\"/>\n", f);
}

static void draw_points(FILE *f, const panel *p, const series *s, const char *colour) {
    for (size_t i = 0; i < s->n; i++)
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n", px_x(p, s->x[i]),
                px_y(p, s->y[i]), colour);
}

static void legend(FILE *f, const panel *p, int row, const char *colour, const char *label) {
    double x = FIG_W - MARGIN_R - 230, y = p->top + 16 + 16 * row;
    fprintf(f,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
            "stroke-width=\"3\"/>\n",
            x, y - 4, x + 20, y - 4, colour);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\">", x + 26, y);
    xml_text(f, label);
    fputs("</text>\n", f);
}

typedef struct plot_ctx {
    curves *c;
    const char *title;
} plot_ctx;

static int write_svg(FILE *f, void *ctx) {
    plot_ctx *pc = ctx;
    curves *c = pc->c;
    int npanels = c->valid.n ? 3 : 2;
    int height = MARGIN_T + npanels * (PANEL_H + PANEL_GAP);
    double x0 = c->lx.x[0], x1 = c->lx.x[c->lx.n - 1];
    if (c->valid.n) {
        if (c->valid.x[0] < x0) x0 = c->valid.x[0];
        if (c->valid.x[c->valid.n - 1] > x1) x1 = c->valid.x[c->valid.n - 1];
    }
    if (x1 <= x0) x1 = x0 + 1;
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            FIG_W, height, FIG_W, height);
    fputs("<text x=\"10\" y=\"20\" font-size=\"13\" fill=\"#555\">", f);
    xml_text(f, pc->title);
    fputs("</text>\n", f);

    panel p = {x0, x1, 0, 0, MARGIN_T};
    y_range(&c->lx, NULL, &p.ylo, &p.yhi);
    draw_axes(f, &p, "Reconstruction loss Lx (training batches)");
    draw_line(f, &p, &c->lx, "#1f77b4");

    p.top += PANEL_H + PANEL_GAP;
    y_range(&c->lz, NULL, &p.ylo, &p.yhi);
    draw_axes(f, &p, "Regularisation loss Lz (training batches)");
    draw_line(f, &p, &c->lz, "#d62728");

    if (c->valid.n) {
        p.top += PANEL_H + PANEL_GAP;
        y_range(&c->loss, &c->valid, &p.ylo, &p.yhi);
        draw_axes(f, &p, "Bound L = Lx + Lz");
        draw_line(f, &p, &c->loss, "#999999");
        draw_points(f, &p, &c->valid, "#2ca02c");
        legend(f, &p, 0, "#999999", "training batches");
        legend(f, &p, 1, "#2ca02c", "held-out images");
    }
    fputs("</svg>\n", f);
    return 0;
}

int cli_plot_run(const char *log_path, const char *svg_path) {
    curves c;
    memset(&c, 0, sizeof c);
    int rc = read_log(log_path, &c);
    if (rc == 0) {
        series_bucket(&c.lx);
        series_bucket(&c.lz);
        series_bucket(&c.loss);
        char title[512];
        snprintf(title, sizeof title, "%s: %zu logged points, last step %.0f", log_path, c.lx.n,
                 c.lx.x[c.lx.n - 1]);
        plot_ctx pc = {&c, title};
        rc = cli_write_atomic(svg_path, write_svg, &pc);
    }
    series_free(&c.lx);
    series_free(&c.lz);
    series_free(&c.loss);
    series_free(&c.valid);
    return rc;
}

static void usage(FILE *f) {
    fprintf(f, "usage: dcrw plot RUNDIR [--out FILE.svg]\n"
               "\n"
               "Plot the reconstruction loss Lx and the regularisation loss Lz of the\n"
               "training batches against the step (log scale), and the held-out bound when\n"
               "the run evaluated one, from RUNDIR/log.csv into RUNDIR/losses.svg (or --out).\n"
               "dcrw train does this by itself at the end of a run. RUNDIR may also be the\n"
               "path of a log.csv.\n");
}

enum { O_HELP = 1, O_OUT };
static const cli_opt opts[] = {{"help", 0, O_HELP}, {"out", 1, O_OUT}, {NULL, 0, 0}};

int cmd_plot(int argc, char **argv) {
    cli_args a = {argc, argv, 1, opts};
    const char *val, *run = NULL, *out = NULL;
    int id;
    while ((id = cli_next(&a, &val)) != -1) {
        switch (id) {
        case -2:
            return CLI_BAD;
        case O_HELP:
            usage(stdout);
            return CLI_OK;
        case O_OUT:
            out = val;
            break;
        case 0:
            if (run) {
                cli_error("unexpected argument '%s' (one RUNDIR only)", val);
                return CLI_BAD;
            }
            run = val;
            break;
        }
    }
    if (!run) {
        cli_error("give RUNDIR (see --help)");
        return CLI_BAD;
    }
    struct stat st;
    if (stat(run, &st) != 0) {
        cli_error("%s: %s", run, strerror(errno));
        return CLI_BAD;
    }
    int is_dir = S_ISDIR(st.st_mode);
    char *log = is_dir ? cli_path(run, "log.csv") : strdup(run);
    char *svg = out ? strdup(out) : is_dir ? cli_path(run, "losses.svg") : NULL;
    if (!svg && !out && !is_dir) {
        cli_error("give --out FILE.svg when plotting a log file");
        free(log);
        return CLI_BAD;
    }
    int status = CLI_BAD;
    if (!log || !svg)
        cli_error("out of memory");
    else if (cli_plot_run(log, svg) == 0) {
        printf("%s\n", svg);
        status = CLI_OK;
    }
    free(log);
    free(svg);
    return status;
}
