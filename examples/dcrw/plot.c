/* dcrw plot: the loss curves of one or more runs (the seed paper's Fig. 6)
 * as a hand-written SVG: Lx, Lz and the bound L against the step or the
 * wall-clock minutes, each in its own panel on a log scale, with the
 * held-out bound where a run has one. Reads dcrw's own log.csv and the CSV
 * of the PyTorch reference script, whose columns are found by name. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

#define MAX_POINTS 800 /* per curve: a longer log is averaged into buckets */
#define MAX_RUNS 8     /* as many as the palette tells apart */
#define MAX_MARKS 32
#define FIG_W 760
#define PANEL_H 250
#define MARGIN_L 70
#define MARGIN_R 20
#define MARGIN_T 40
#define PANEL_GAP 60
#define LEGEND_ROW 18

/* matplotlib's "tab10" without its grey and olive, which read poorly on
 * white next to the grid */
static const char *const palette[MAX_RUNS] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                              "#9467bd", "#8c564b", "#e377c2", "#17becf"};

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

/* ------------------------------------------------------------------------ */
/* Reading the logs */

enum { P_LX, P_LZ, P_LOSS, P_N };
static const char *const panel_names[P_N] = {"lx", "lz", "loss"};

/* Columns by name: dcrw's log.csv, then the reference script's CSV. */
enum { C_STEP, C_WALL, C_LX, C_LZ, C_LOSS, C_VALID, C_N };
static const char *const col_names[C_N][2] = {{"step", NULL},      {"wall_s", "seconds"},
                                              {"lx", "train_Lx"},  {"lz", "train_Lz"},
                                              {"loss", "train_L"}, {"valid_bound", NULL}};

typedef struct run {
    const char *path;
    char *label;
    series s[P_N];     /* the training batches */
    series valid;      /* held-out bound */
    int has[P_N];      /* the log has (or implies) this curve */
    double xmin, xmax; /* before bucketing, so that the axis spans the data */
} run;

static void run_free(run *r) {
    for (int p = 0; p < P_N; p++) series_free(&r->s[p]);
    series_free(&r->valid);
    free(r->label);
}

/* [*b, *e) trimmed of blanks and the \r of CRLF files */
static void trim(const char **b, const char **e) {
    while (*b < *e && (**b == ' ' || **b == '\t' || **b == '\r')) (*b)++;
    while (*e > *b && ((*e)[-1] == ' ' || (*e)[-1] == '\t' || (*e)[-1] == '\r')) (*e)--;
}

static int header_columns(const char *p, const char *end, int col[C_N]) {
    int ncols = 0;
    for (int c = 0; c < C_N; c++) col[c] = -1;
    for (;;) {
        const char *q = p;
        while (q < end && *q != ',') q++;
        const char *b = p, *e = q;
        trim(&b, &e);
        for (int c = 0; c < C_N; c++)
            for (int k = 0; k < 2; k++) {
                const char *n = col_names[c][k];
                if (n && col[c] < 0 && (size_t)(e - b) == strlen(n) &&
                    !memcmp(b, n, (size_t)(e - b)))
                    col[c] = ncols;
            }
        ncols++;
        if (q >= end) break;
        p = q + 1;
    }
    return ncols;
}

/* One data row into v[C_N] (NaN where empty or unused); -1 after a message
 * on a wrong field count or a field that is not a number. */
static int parse_row(const char *path, int line, const char *p, const char *end, const int col[C_N],
                     int ncols, const int used[C_N], double v[C_N]) {
    int j = 0;
    for (int c = 0; c < C_N; c++) v[c] = NAN;
    for (;;) {
        const char *q = p;
        while (q < end && *q != ',') q++;
        const char *b = p, *e = q;
        trim(&b, &e);
        for (int c = 0; c < C_N; c++) {
            if (col[c] != j || !used[c] || b == e) continue;
            char *stop = NULL;
            errno = 0;
            double x = strtod(b, &stop);
            if (stop != e || errno == ERANGE) {
                cli_error("%s:%d: '%.*s' is not a number", path, line,
                          (int)(e - b > 40 ? 40 : e - b), b);
                return -1;
            }
            v[c] = x;
        }
        j++;
        if (q >= end) break;
        p = q + 1;
    }
    if (j != ncols) {
        cli_error("%s:%d: %d fields where the header has %d", path, line, j, ncols);
        return -1;
    }
    return 0;
}

/* The header names the columns a plot needs: 0, or -1 after a message. */
static int check_header(const char *path, const int col[C_N], int minutes) {
    if (col[C_LX] < 0 && col[C_LZ] < 0 && col[C_LOSS] < 0) {
        cli_error("%s: not a log of dcrw train or of the reference script (its header names "
                  "none of lx, lz, loss, train_Lx, train_Lz, train_L)",
                  path);
        return -1;
    }
    if (col[minutes ? C_WALL : C_STEP] < 0) {
        cli_error("%s: no %s column in the header", path,
                  minutes ? "wall_s or seconds (needed by --x minutes)" : "step");
        return -1;
    }
    return 0;
}

/* One row's values v[] into the run's curves at x: 0, or -1 when out of
 * memory. */
static int add_row(run *r, double x, const double v[C_N], int has_loss_column) {
    double y[P_N] = {v[C_LX], v[C_LZ], has_loss_column ? v[C_LOSS] : v[C_LX] + v[C_LZ]};
    int oom = 0, any = 0;
    for (int k = 0; k < P_N; k++)
        if (isfinite(y[k])) {
            oom |= series_push(&r->s[k], x, y[k]);
            any = 1;
        }
    if (isfinite(v[C_VALID])) {
        oom |= series_push(&r->valid, x, v[C_VALID]);
        any = 1;
    }
    if (any && x < r->xmin) r->xmin = x;
    if (any && x > r->xmax) r->xmax = x;
    return oom ? -1 : 0;
}

/* The rows after the header line, which ends at @p nl: 0, or -1 after a
 * message. */
static int read_rows(const char *path, const char *nl, const int col[C_N], int ncols, int minutes,
                     run *r) {
    const int xc = minutes ? C_WALL : C_STEP;
    int used[C_N] = {0};
    used[xc] = used[C_LX] = used[C_LZ] = used[C_LOSS] = used[C_VALID] = 1;
    for (int line = 2; nl && nl[1]; line++) {
        const char *p = nl + 1;
        nl = strchr(p, '\n');
        if (!nl) break; /* a row still being written */
        const char *b = p, *e = nl;
        trim(&b, &e);
        if (b == e) continue;
        double v[C_N];
        if (parse_row(path, line, p, nl, col, ncols, used, v)) return -1;
        if (!isfinite(v[xc])) {
            cli_error("%s:%d: no %s value", path, line, minutes ? "wall-clock" : "step");
            return -1;
        }
        if (add_row(r, minutes ? v[xc] / 60.0 : v[xc], v, col[C_LOSS] >= 0) != 0) {
            cli_error("%s: out of memory", path);
            return -1;
        }
    }
    return 0;
}

static int read_log(const char *path, int minutes, run *r) {
    char *text = cli_read_file(path, NULL);
    if (!text) return -1;
    const char *p = text;
    if (!strncmp(p, "\xEF\xBB\xBF", 3)) p += 3; /* a BOM from a spreadsheet */
    const char *nl = strchr(p, '\n');
    int col[C_N];
    int ncols = header_columns(p, nl ? nl : p + strlen(p), col);
    int rc = check_header(path, col, minutes);
    if (rc == 0) {
        r->has[P_LX] = col[C_LX] >= 0;
        r->has[P_LZ] = col[C_LZ] >= 0;
        r->has[P_LOSS] = col[C_LOSS] >= 0 || (r->has[P_LX] && r->has[P_LZ]);
        r->xmin = INFINITY;
        r->xmax = -INFINITY;
        rc = read_rows(path, nl, col, ncols, minutes, r);
    }
    if (rc == 0 && r->s[P_LX].n + r->s[P_LZ].n + r->s[P_LOSS].n == 0) {
        cli_error("%s: no training steps logged yet", path);
        rc = -1;
    }
    free(text);
    return rc;
}

/* The last name in path[0..n), trailing slashes dropped; the current
 * folder's own name for "." or nothing. */
static char *last_name(const char *path, size_t n) {
    while (n > 1 && path[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && path[b - 1] != '/') b--;
    if (b == 0 && (n == 0 || (n == 1 && path[0] == '.'))) {
        char cwd[4096];
        if (getcwd(cwd, sizeof cwd) && strcmp(cwd, "/")) return strdup(cli_basename(cwd));
    }
    return strndup(path + b, n - b);
}

/* The run folder's name; for a CSV its file name without .csv, but for a
 * log.csv the name of the folder it sits in, which names the run. */
static char *default_label(const char *path, int is_dir) {
    if (is_dir) return last_name(path, strlen(path));
    const char *base = cli_basename(path);
    size_t n = strlen(base);
    if (!strcmp(base, "log.csv")) return last_name(path, (size_t)(base - path));
    if (n > 4 && !strcmp(base + n - 4, ".csv")) n -= 4;
    return strndup(base, n);
}

/* ------------------------------------------------------------------------ */
/* Drawing */

typedef struct mark {
    double x, y;
    const char *text;
} mark;

typedef struct plot_opts {
    int minutes;    /* x: wall-clock minutes instead of the step */
    int panel[P_N]; /* which to draw, in order */
    int npanels;    /* 0: lx, lz, and loss when some run has a held-out bound */
    double ymax;    /* NaN: from the data */
    const mark *marks;
    int nmarks;
    int named; /* a legend names the runs, each in its colour */
} plot_opts;

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
    int clipped;             /* yhi is the user's --ymax: a tick marks it */
    const char *name;        /* class of the panel's elements */
} panel;

static double px_x(const panel *p, double x) {
    double w = FIG_W - MARGIN_L - MARGIN_R;
    return MARGIN_L + (p->x1 > p->x0 ? (x - p->x0) / (p->x1 - p->x0) : 0.5) * w;
}

/* values beyond the range sit on its edge, so a clipped curve runs along
 * the top of the panel instead of leaving it */
static double px_y(const panel *p, double y) {
    double ly = log10(y > 0 ? y : 1e-300);
    if (ly < p->ylo) ly = p->ylo;
    if (ly > p->yhi) ly = p->yhi;
    return p->top + PANEL_H - (ly - p->ylo) / (p->yhi - p->ylo) * PANEL_H;
}

static void minmax(const series *s, double *mn, double *mx) {
    for (size_t i = 0; i < s->n; i++) {
        double v = s->y[i];
        if (v > 0 && v < *mn) *mn = v;
        if (v > 0 && v > *mx) *mx = v;
    }
}

static void y_range(double mn, double mx, double ymax, panel *p) {
    if (!(mn <= mx)) mn = mx = isnan(ymax) ? 1 : ymax / 2;
    if (!isnan(ymax)) {
        /* the axis ends at ymax exactly, however far the data lies below */
        if (mn >= ymax) mn = ymax / 2;
        double l = log10(mn), h = log10(ymax);
        if (h - l < 0.05) l = h - 0.05;
        p->ylo = l - 0.04 * (h - l);
        p->yhi = h;
        p->clipped = 1;
        return;
    }
    double l = log10(mn), h = log10(mx);
    if (h - l < 0.05) {
        l -= 0.05;
        h += 0.05;
    }
    double pad = 0.04 * (h - l);
    p->ylo = l - pad;
    p->yhi = h + pad;
    p->clipped = 0;
}

/* the label's y equals the grid line's, centred on it, so that a value's
 * pixel can be read back from its tick */
static void y_tick(FILE *f, const panel *p, double v) {
    double w = FIG_W - MARGIN_L - MARGIN_R, y = px_y(p, v);
    char buf[32];
    fmt_num(buf, sizeof buf, v);
    fprintf(f,
            "<line class=\"grid %s\" x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
            "stroke=\"#ddd\"/>\n",
            p->name, MARGIN_L, y, MARGIN_L + w, y);
    fprintf(f,
            "<text class=\"ytick %s\" x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\" "
            "dominant-baseline=\"central\">%s</text>\n",
            p->name, MARGIN_L - 5, y, buf);
}

/* leaves room under a --ymax tick so that two labels do not overlap */
static int y_tick_fits(const panel *p, double v) {
    double lv = log10(v);
    if (lv < p->ylo - 1e-12 || lv > p->yhi + 1e-12) return 0;
    if (p->clipped && px_y(p, v) - p->top < 14) return 0;
    return 1;
}

static void draw_yticks(FILE *f, const panel *p) {
    if (p->yhi - p->ylo < 1.0) {
        /* within a decade, evenly spaced values read better than 1-2-5,
         * which leave 100..150 without a single tick */
        double lo = pow(10.0, p->ylo), hi = pow(10.0, p->yhi), st = nice_step(hi - lo);
        long k0 = (long)ceil(lo / st - 1e-9), k1 = (long)floor(hi / st + 1e-9);
        for (long k = k0; k <= k1; k++)
            if (y_tick_fits(p, (double)k * st)) y_tick(f, p, (double)k * st);
    } else {
        int sparse = p->yhi - p->ylo > 4.0; /* one tick a decade */
        for (int e = (int)floor(p->ylo); e <= (int)ceil(p->yhi); e++)
            for (int mlt = 1; mlt <= 5; mlt++) {
                if ((sparse && mlt != 1) || mlt == 3 || mlt == 4) continue;
                double v = mlt * pow(10.0, e);
                if (y_tick_fits(p, v)) y_tick(f, p, v);
            }
    }
    if (p->clipped) y_tick(f, p, pow(10.0, p->yhi));
}

static void draw_axes(FILE *f, const panel *p, const char *title, int minutes) {
    double w = FIG_W - MARGIN_L - MARGIN_R;
    fprintf(f,
            "<rect class=\"frame %s\" x=\"%d\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" "
            "fill=\"none\" stroke=\"#444\"/>\n",
            p->name, MARGIN_L, p->top, w, PANEL_H);
    fprintf(f,
            "<text class=\"title %s\" x=\"%d\" y=\"%.1f\" font-size=\"14\" "
            "font-weight=\"bold\">",
            p->name, MARGIN_L, p->top - 8);
    xml_text(f, title);
    fputs("</text>\n", f);
    /* an integer tick index, so that accumulated rounding cannot drop the
     * tick at the end of the range */
    double st = nice_step(p->x1 - p->x0);
    long k0 = (long)ceil(p->x0 / st - 1e-9), k1 = (long)floor(p->x1 / st + 1e-9);
    char buf[32];
    for (long k = k0; k <= k1; k++) {
        double v = (double)k * st, x = px_x(p, v);
        fmt_num(buf, sizeof buf, v);
        fprintf(f,
                "<line class=\"grid %s\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                "stroke=\"#ddd\"/>\n",
                p->name, x, p->top, x, p->top + PANEL_H);
        fprintf(f,
                "<text class=\"xtick %s\" x=\"%.1f\" y=\"%.1f\" font-size=\"11\" "
                "text-anchor=\"middle\">%s</text>\n",
                p->name, x, p->top + PANEL_H + 14, buf);
    }
    draw_yticks(f, p);
    fprintf(f,
            "<text class=\"xlabel %s\" x=\"%.1f\" y=\"%.1f\" font-size=\"12\" "
            "text-anchor=\"middle\">%s</text>\n",
            p->name, MARGIN_L + w / 2, p->top + PANEL_H + 30,
            minutes ? "wall-clock minutes since the start of the run" : "training step");
    fprintf(f,
            "<text x=\"16\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\" "
            "transform=\"rotate(-90 16 %.1f)\">nats (log scale)</text>\n",
            p->top + PANEL_H / 2.0, p->top + PANEL_H / 2.0);
}

static void draw_line(FILE *f, const panel *p, const series *s, const char *colour, int k) {
    fprintf(f,
            "<polyline class=\"curve %s run%d\" fill=\"none\" stroke=\"%s\" "
            "stroke-width=\"1.5\" points=\"",
            p->name, k, colour);
    for (size_t i = 0; i < s->n; i++)
        fprintf(f, "%s%.1f,%.1f", i ? " " : "", px_x(p, s->x[i]), px_y(p, s->y[i]));
    fputs("\"/>\n", f);
}

static void draw_points(FILE *f, const panel *p, const series *s, const char *colour, int k,
                        int outline) {
    for (size_t i = 0; i < s->n; i++)
        fprintf(
            f,
            "<circle class=\"valid %s run%d\" cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"%s/>\n",
            p->name, k, px_x(p, s->x[i]), px_y(p, s->y[i]), colour,
            outline ? " stroke=\"#222\" stroke-width=\"0.8\"" : "");
}

/* the key of the single-run bound panel, inside it at the top right */
static void key(FILE *f, const panel *p, int row, const char *colour, const char *label) {
    double x = FIG_W - MARGIN_R - 230, y = p->top + 16 + 16 * row;
    fprintf(f,
            "<line class=\"key\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
            "stroke-width=\"3\"/>\n",
            x, y - 4, x + 20, y - 4, colour);
    fprintf(f, "<text class=\"key\" x=\"%.1f\" y=\"%.1f\" font-size=\"12\">", x + 26, y);
    xml_text(f, label);
    fputs("</text>\n", f);
}

static int legend_rows(int nruns) {
    return (nruns + 1) / 2;
}

/* the runs' names above the panels, two a row */
static void legend(FILE *f, const run *runs, int nruns) {
    double col_w = (FIG_W - MARGIN_L - MARGIN_R) / 2.0;
    for (int k = 0; k < nruns; k++) {
        double x = MARGIN_L + (k % 2) * col_w, y = MARGIN_T + LEGEND_ROW * (k / 2);
        fprintf(f,
                "<line class=\"legend run%d\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                "stroke=\"%s\" stroke-width=\"3\"/>\n",
                k, x, y - 4, x + 24, y - 4, palette[k]);
        fprintf(f, "<text class=\"legend run%d\" x=\"%.1f\" y=\"%.1f\" font-size=\"12\">", k,
                x + 30, y);
        xml_text(f, runs[k].label);
        fputs("</text>\n", f);
    }
}

static void draw_mark(FILE *f, const panel *p, const mark *m) {
    double x = px_x(p, m->x), y = px_y(p, m->y);
    /* the text goes on the side with room for it */
    int left = x > MARGIN_L + (FIG_W - MARGIN_L - MARGIN_R) * 0.6;
    fprintf(f,
            "<circle class=\"mark\" cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"#000\" "
            "stroke=\"#fff\" stroke-width=\"1\"/>\n",
            x, y);
    if (!*m->text) return;
    fprintf(f, "<text class=\"mark\" x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"%s\">",
            left ? x - 7 : x + 7, y - 7, left ? "end" : "start");
    xml_text(f, m->text);
    fputs("</text>\n", f);
}

typedef struct plot_ctx {
    run *runs;
    int nruns;
    const plot_opts *o;
    const int *panel;
    int npanels;
    int any_valid;
    const char *title;
} plot_ctx;

static const char *const titles[P_N] = {"Reconstruction loss Lx (training batches)",
                                        "Regularisation loss Lz (training batches)",
                                        "Bound L = Lx + Lz"};
static const char *const single_colour[P_N] = {"#1f77b4", "#d62728", "#999999"};

/* One x range for every panel, so that the panels line up. */
static void x_range(const plot_ctx *pc, double *x0, double *x1) {
    const plot_opts *o = pc->o;
    *x0 = INFINITY;
    *x1 = -INFINITY;
    for (int k = 0; k < pc->nruns; k++) {
        if (pc->runs[k].xmin < *x0) *x0 = pc->runs[k].xmin;
        if (pc->runs[k].xmax > *x1) *x1 = pc->runs[k].xmax;
    }
    for (int i = 0; i < o->nmarks; i++) {
        if (o->marks[i].x < *x0) *x0 = o->marks[i].x;
        if (o->marks[i].x > *x1) *x1 = o->marks[i].x;
    }
    if (o->minutes && *x0 > 0) *x0 = 0; /* minutes since the start */
    if (*x1 <= *x0) *x1 = *x0 + 1;
}

/* Panel @p pn at p->top: its y range from every curve (and the marks in
 * the loss panel), its axes, then its curves and points. */
static void draw_panel(FILE *f, const plot_ctx *pc, int pn, panel *p) {
    const plot_opts *o = pc->o;
    const int named = o->named, loss = pn == P_LOSS;
    p->name = panel_names[pn];
    double mn = INFINITY, mx = -INFINITY;
    for (int k = 0; k < pc->nruns; k++) {
        minmax(&pc->runs[k].s[pn], &mn, &mx);
        if (loss) minmax(&pc->runs[k].valid, &mn, &mx);
    }
    for (int m = 0; loss && m < o->nmarks; m++) {
        if (o->marks[m].y < mn) mn = o->marks[m].y;
        if (o->marks[m].y > mx) mx = o->marks[m].y;
    }
    y_range(mn, mx, o->ymax, p);
    const char *title = titles[pn];
    if (loss && named)
        title = pc->any_valid ? "Bound L = Lx + Lz (lines: training batches, dots: held-out)"
                              : "Bound L = Lx + Lz (training batches)";
    draw_axes(f, p, title, o->minutes);
    for (int k = 0; k < pc->nruns; k++)
        draw_line(f, p, &pc->runs[k].s[pn], named ? palette[k] : single_colour[pn], k);
    if (!loss) return;
    for (int k = 0; k < pc->nruns; k++)
        draw_points(f, p, &pc->runs[k].valid, named ? palette[k] : "#2ca02c", k, named);
    if (!named && pc->any_valid) {
        key(f, p, 0, "#999999", "training batches");
        key(f, p, 1, "#2ca02c", "held-out images");
    }
    for (int m = 0; m < o->nmarks; m++) draw_mark(f, p, &o->marks[m]);
}

static int write_svg(FILE *f, void *ctx) {
    const plot_ctx *pc = ctx;
    const int named = pc->o->named;
    double top0 = MARGIN_T + (named ? LEGEND_ROW * legend_rows(pc->nruns) + 16 : 0);
    int height = (int)top0 + pc->npanels * (PANEL_H + PANEL_GAP);
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            FIG_W, height, FIG_W, height);
    if (pc->title) {
        fputs("<text x=\"10\" y=\"20\" font-size=\"13\" fill=\"#555\">", f);
        xml_text(f, pc->title);
        fputs("</text>\n", f);
    }
    if (named) legend(f, pc->runs, pc->nruns);
    panel p = {0, 0, 0, 0, top0, 0, NULL};
    x_range(pc, &p.x0, &p.x1);
    for (int i = 0; i < pc->npanels; i++) {
        draw_panel(f, pc, pc->panel[i], &p);
        p.top += PANEL_H + PANEL_GAP;
    }
    fputs("</svg>\n", f);
    return 0;
}

/* Read every run, check that each has the curves asked for, and write the
 * SVG; -1 after a message, with no file written. */
static int plot_runs(run *runs, int nruns, const plot_opts *o, const char *svg_path) {
    int any_valid = 0;
    for (int k = 0; k < nruns; k++) {
        if (read_log(runs[k].path, o->minutes, &runs[k])) return -1;
        any_valid |= runs[k].valid.n > 0;
    }
    int def[P_N] = {P_LX, P_LZ, P_LOSS};
    const int *panel = o->npanels ? o->panel : def;
    int npanels = o->npanels ? o->npanels : any_valid ? 3 : 2;
    for (int k = 0; k < nruns; k++)
        for (int i = 0; i < npanels; i++)
            if (!runs[k].has[panel[i]]) {
                cli_error("%s: no %s column for the %s panel", runs[k].path,
                          panel[i] == P_LX   ? "lx or train_Lx"
                          : panel[i] == P_LZ ? "lz or train_Lz"
                                             : "loss or train_L",
                          panel_names[panel[i]]);
                return -1;
            }
    int loss_shown = 0;
    for (int i = 0; i < npanels; i++) loss_shown |= panel[i] == P_LOSS;
    if (o->nmarks && !loss_shown) {
        cli_error("--mark: the marks go in the loss panel, which is not shown (add loss to "
                  "--panels)");
        return -1;
    }
    for (int k = 0; k < nruns; k++)
        for (int p = 0; p < P_N; p++) series_bucket(&runs[k].s[p]);
    char title[512];
    const char *tp = NULL;
    if (nruns == 1) {
        const series *s = &runs[0].s[P_LX];
        if (!s->n) s = runs[0].s[P_LZ].n ? &runs[0].s[P_LZ] : &runs[0].s[P_LOSS];
        if (o->minutes)
            snprintf(title, sizeof title, "%s: %zu logged points over %.1f minutes", runs[0].path,
                     s->n, runs[0].xmax);
        else
            snprintf(title, sizeof title, "%s: %zu logged points, last step %.0f", runs[0].path,
                     s->n, runs[0].xmax);
        tp = title;
    }
    plot_ctx pc = {runs, nruns, o, panel, npanels, any_valid, tp};
    return cli_write_atomic(svg_path, write_svg, &pc);
}

int cli_plot_run(const char *log_path, const char *svg_path) {
    run r;
    memset(&r, 0, sizeof r);
    r.path = log_path;
    plot_opts o;
    memset(&o, 0, sizeof o);
    o.ymax = NAN;
    int rc = plot_runs(&r, 1, &o, svg_path);
    run_free(&r);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The command */

static void usage(FILE *f) {
    fprintf(f,
            "usage: dcrw plot RUN [RUN ...] [--out FILE.svg] [--label TEXT]...\n"
            "                 [--x step|minutes] [--panels LIST] [--ymax V]\n"
            "                 [--mark X,Y,TEXT]...\n"
            "\n"
            "Plot the reconstruction loss Lx and the regularisation loss Lz of the\n"
            "training batches (log scale), and the held-out bound when a run evaluated\n"
            "one. A RUN is a run folder (its log.csv is read) or a CSV file: dcrw's\n"
            "log.csv or the reference script's CSV, whose columns are found by name\n"
            "(step; wall_s or seconds; lx or train_Lx; lz or train_Lz; loss or\n"
            "train_L; valid_bound). One run folder writes RUNDIR/losses.svg unless\n"
            "--out is given; dcrw train does this by itself at the end of a run.\n"
            "\n"
            "  --out FILE.svg    where to write (needed for a CSV or several runs)\n"
            "  --label TEXT      a run's name in the legend, once per run in order\n"
            "                    (default: the folder's name, or the CSV's without .csv)\n"
            "  --x step|minutes  x axis: the training step (default) or the wall-clock\n"
            "                    minutes since the start of the run\n"
            "  --panels LIST     panels among lx,lz,loss in the order given (loss: the\n"
            "                    bound L = Lx + Lz, and the held-out bound); default lx,lz\n"
            "                    and loss when a run has a held-out bound\n"
            "  --ymax V          every panel's y axis ends at V; points above it are\n"
            "                    drawn on the top edge\n"
            "  --mark X,Y,TEXT   a dot labelled TEXT at (X, Y) in the loss panel, X in the\n"
            "                    unit of --x (e.g. the test-set bound at a run's end)\n"
            "\n"
            "Up to %d runs, each in its own colour in every panel.\n",
            MAX_RUNS);
}

enum { O_LABEL = CLI_OPT_OWN, O_X, O_PANELS, O_YMAX, O_MARK };
static const cli_opt opts[] = {{"label", 1, O_LABEL}, {"x", 1, O_X},       {"panels", 1, O_PANELS},
                               {"ymax", 1, O_YMAX},   {"mark", 1, O_MARK}, {NULL, 0, 0}};

static int parse_panels(const char *s, plot_opts *o) {
    o->npanels = 0;
    const char *p = s;
    for (;;) {
        const char *q = strchr(p, ',');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        int found = -1;
        for (int k = 0; k < P_N; k++)
            if (n == strlen(panel_names[k]) && !strncmp(p, panel_names[k], n)) found = k;
        if (found < 0) {
            cli_error("--panels: unknown panel '%.*s' (choose among lx, lz, loss)",
                      (int)(n > 40 ? 40 : n), p);
            return -1;
        }
        for (int k = 0; k < o->npanels; k++)
            if (o->panel[k] == found) {
                cli_error("--panels: %s is listed twice", panel_names[found]);
                return -1;
            }
        o->panel[o->npanels++] = found;
        if (!q) break;
        p = q + 1;
    }
    return 0;
}

static int parse_number(const char *b, const char *e, double *out) {
    char *stop = NULL;
    errno = 0;
    if (b == e) return -1;
    double v = strtod(b, &stop);
    if (stop != e || errno == ERANGE || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

/* X,Y,TEXT: the text is everything after the second comma, commas and all */
static int parse_mark(const char *s, mark *m) {
    const char *c1 = strchr(s, ',');
    const char *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
    if (!c2) {
        cli_error("--mark: '%s' is not X,Y,TEXT", s);
        return -1;
    }
    if (parse_number(s, c1, &m->x) || parse_number(c1 + 1, c2, &m->y)) {
        cli_error("--mark: '%s': X and Y must be finite numbers", s);
        return -1;
    }
    if (!(m->y > 0)) {
        cli_error("--mark: '%s': Y must be positive (the y axis is logarithmic)", s);
        return -1;
    }
    m->text = c2 + 1;
    return 0;
}

/* The figure may replace neither a log it plots nor any file of a run
 * folder it was given (its checkpoint, its run.json). */
static int check_output(const char *const *paths, char *const *logs, int nruns, const char *svg) {
    static const struct {
        const char *name, *what;
    } run_files[] = {{"run.json", "the run file"},
                     {"checkpoint.safetensors", "the checkpoint"},
                     {".lock", "the lock file"}};
    enum { PER_RUN = 1 + sizeof run_files / sizeof run_files[0] };
    cli_file in[MAX_RUNS * PER_RUN];
    char *owned[MAX_RUNS * PER_RUN] = {NULL};
    size_t nin = 0, nowned = 0;
    int rc = 0;
    for (int k = 0; k < nruns && rc == 0; k++) {
        in[nin++] = (cli_file){logs[k], "the log"};
        struct stat st;
        if (stat(paths[k], &st) != 0 || !S_ISDIR(st.st_mode)) continue;
        for (size_t j = 0; j < sizeof run_files / sizeof run_files[0]; j++) {
            char *p = cli_path(paths[k], run_files[j].name);
            if (!p) {
                cli_error("out of memory");
                rc = -1;
                break;
            }
            owned[nowned++] = p;
            in[nin++] = (cli_file){p, run_files[j].what};
        }
    }
    cli_file out[] = {{svg, "--out"}};
    if (rc == 0) rc = cli_check_outputs(in, nin, out, 1);
    for (size_t j = 0; j < nowned; j++) free(owned[j]);
    return rc;
}

/* The command line of dcrw plot. */
typedef struct plot_args {
    const char *paths[MAX_RUNS], *labels[MAX_RUNS];
    int nruns, nlabels;
    mark marks[MAX_MARKS];
    plot_opts o;
} plot_args;

static int add_mark(const char *val, plot_args *pa) {
    if (pa->o.nmarks == MAX_MARKS) {
        cli_error("--mark: at most %d marks", MAX_MARKS);
        return -1;
    }
    if (parse_mark(val, &pa->marks[pa->o.nmarks])) return -1;
    pa->o.nmarks++;
    return 0;
}

/* a positional: one more run to plot */
static int add_run(const char *val, plot_args *pa) {
    if (pa->nruns == MAX_RUNS) {
        cli_error("too many runs: at most %d in one figure", MAX_RUNS);
        return -1;
    }
    pa->paths[pa->nruns++] = val;
    return 0;
}

static int plot_option(int id, const char *val, void *ctx) {
    plot_args *pa = ctx;
    switch (id) {
    case O_LABEL:
        if (pa->nlabels == MAX_RUNS) {
            cli_error("--label: too many labels (one per run, at most %d)", MAX_RUNS);
            return -1;
        }
        pa->labels[pa->nlabels++] = val;
        return 0;
    case O_X:
        if (strcmp(val, "step") && strcmp(val, "minutes")) {
            cli_error("--x: '%s' is neither step nor minutes", val);
            return -1;
        }
        pa->o.minutes = !strcmp(val, "minutes");
        return 0;
    case O_PANELS:
        return parse_panels(val, &pa->o);
    case O_YMAX:
        if (parse_number(val, val + strlen(val), &pa->o.ymax) || !(pa->o.ymax > 0)) {
            cli_error("--ymax: '%s' is not a positive finite number", val);
            return -1;
        }
        return 0;
    case O_MARK:
        return add_mark(val, pa);
    }
    return add_run(val, pa);
}

static const cli_command plot_cli = {usage, CLI_SHARED(CLI_OPT_OUT), opts, 1, plot_option};

/* The runs and labels given: -1 to go on, else the exit status. */
static int check_runs(const plot_args *pa) {
    if (!pa->nruns) {
        cli_error("give RUNDIR or a CSV log (see --help)");
        return CLI_BAD;
    }
    if (pa->nlabels > pa->nruns) {
        cli_error("--label: too many labels (%d labels for %d runs)", pa->nlabels, pa->nruns);
        return CLI_BAD;
    }
    return -1;
}

/* Each run's log (a run folder's log.csv, or the CSV itself) and label:
 * 0, or -1 after a message; *first_is_dir for the default output. */
static int find_logs(const plot_args *pa, run *runs, char **logs, int *first_is_dir) {
    for (int k = 0; k < pa->nruns; k++) {
        const char *path = pa->paths[k];
        struct stat st;
        if (stat(path, &st) != 0) {
            cli_error("%s: %s", path, strerror(errno));
            return -1;
        }
        int is_dir = S_ISDIR(st.st_mode);
        if (k == 0) *first_is_dir = is_dir;
        logs[k] = is_dir ? cli_path(path, "log.csv") : strdup(path);
        runs[k].label = k < pa->nlabels ? strdup(pa->labels[k]) : default_label(path, is_dir);
        if (!logs[k] || !runs[k].label) {
            cli_error("out of memory");
            return -1;
        }
        runs[k].path = logs[k];
    }
    return 0;
}

/* --out, else RUNDIR/losses.svg for one run folder; NULL after a message */
static char *svg_path(const plot_args *pa, const char *out, int first_is_dir) {
    char *svg = NULL;
    if (out)
        svg = strdup(out);
    else if (pa->nruns == 1 && first_is_dir)
        svg = cli_path(pa->paths[0], "losses.svg");
    else {
        cli_error("give --out FILE.svg when plotting a CSV file or several runs");
        return NULL;
    }
    if (!svg) cli_error("out of memory");
    return svg;
}

int cmd_plot(int argc, char **argv) {
    plot_args pa;
    memset(&pa, 0, sizeof pa);
    pa.o.ymax = NAN;
    pa.o.marks = pa.marks;
    cli_shared s;
    cli_shared_init(&s);
    int status = cli_parse_args(&plot_cli, argc, argv, &s, &pa);
    if (status < 0) status = check_runs(&pa);
    if (status >= 0) return status;
    pa.o.named = pa.nruns > 1 || pa.nlabels > 0;
    run runs[MAX_RUNS];
    memset(runs, 0, sizeof runs);
    char *logs[MAX_RUNS] = {NULL}, *svg = NULL;
    int first_is_dir = 0;
    status = CLI_BAD;
    if (find_logs(&pa, runs, logs, &first_is_dir) == 0 &&
        (svg = svg_path(&pa, s.out, first_is_dir)) != NULL &&
        check_output(pa.paths, logs, pa.nruns, svg) == 0 &&
        plot_runs(runs, pa.nruns, &pa.o, svg) == 0) {
        printf("%s\n", svg);
        status = CLI_OK;
    }
    for (int k = 0; k < pa.nruns; k++) {
        run_free(&runs[k]);
        free(logs[k]);
    }
    free(svg);
    return status;
}
