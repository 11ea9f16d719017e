/* dcrw eval --glimpse-kl-svg: the KL term of each glimpse as a bar chart,
 * with its standard error, as jbornschein/draw's plot-kl shows where in
 * the sequence a model spends its bits. */
#include <math.h>
#include <stdio.h>

#include "common.h"

#define KL_W 640
#define KL_H 360
#define KL_LEFT 60
#define KL_RIGHT 20
#define KL_TOP 40
#define KL_BOTTOM 50

typedef struct kl_chart {
    int T;
    const double *mean, *se;
    const char *title;
} kl_chart;

/* 1, 2 or 5 times a power of ten, about a sixth of range */
static double kl_step(double range) {
    const double raw = range / 6.0, mag = pow(10.0, floor(log10(raw))), r = raw / mag;
    return mag * (r <= 1 ? 1 : r <= 2 ? 2 : r <= 5 ? 5 : 10);
}

static int write_kl(FILE *f, void *ctx) {
    const kl_chart *k = ctx;
    double top = 0;
    for (int t = 0; t < k->T; t++)
        if (k->mean[t] + k->se[t] > top) top = k->mean[t] + k->se[t];
    if (!(top > 0)) top = 1;
    const double step = kl_step(top);
    top = ceil(top / step) * step;
    const double pw = KL_W - KL_LEFT - KL_RIGHT, ph = KL_H - KL_TOP - KL_BOTTOM;
    const double slot = pw / k->T, bar = slot * 0.7;
#define KL_Y(v) (KL_TOP + ph - (v) / top * ph)
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "font-family=\"sans-serif\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
            "<text x=\"%d\" y=\"24\" font-size=\"14\" font-weight=\"bold\">",
            KL_W, KL_H, KL_LEFT);
    for (const char *s = k->title; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else if ((unsigned char)*s >= 0x20)
            fputc(*s, f);
    }
    fputs("</text>\n", f);
    for (long i = 0; i * step <= top + 1e-9 * top; i++) {
        const double v = (double)i * step, y = KL_Y(v);
        fprintf(f,
                "<line class=\"grid\" x1=\"%d\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" "
                "stroke=\"#ddd\"/>\n<text class=\"ytick\" x=\"%d\" y=\"%.2f\" font-size=\"11\" "
                "text-anchor=\"end\" dominant-baseline=\"central\">%g</text>\n",
                KL_LEFT, y, KL_LEFT + pw, y, KL_LEFT - 5, y, v);
    }
    for (int t = 0; t < k->T; t++) {
        const double x = KL_LEFT + t * slot + (slot - bar) / 2, m = k->mean[t], e = k->se[t];
        fprintf(f,
                "<rect class=\"bar\" data-glimpse=\"%d\" data-kl=\"%.6f\" x=\"%.2f\" y=\"%.2f\" "
                "width=\"%.2f\" height=\"%.2f\" fill=\"#1f77b4\"/>\n",
                t + 1, m, x, KL_Y(m), bar, KL_Y(0) - KL_Y(m));
        fprintf(f,
                "<line class=\"se\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" "
                "stroke=\"#000\"/>\n",
                x + bar / 2, KL_Y(m - e), x + bar / 2, KL_Y(m + e));
        if (k->T <= 32 || (t + 1) % 8 == 0 || t == 0)
            fprintf(f,
                    "<text class=\"xtick\" x=\"%.2f\" y=\"%.2f\" font-size=\"11\" "
                    "text-anchor=\"middle\">%d</text>\n",
                    x + bar / 2, KL_TOP + ph + 14, t + 1);
    }
#undef KL_Y
    fprintf(f,
            "<rect x=\"%d\" y=\"%d\" width=\"%.2f\" height=\"%.2f\" fill=\"none\" "
            "stroke=\"#444\"/>\n<text x=\"%.2f\" y=\"%d\" font-size=\"12\" "
            "text-anchor=\"middle\">glimpse t</text>\n<text x=\"16\" y=\"%.2f\" font-size=\"12\" "
            "text-anchor=\"middle\" transform=\"rotate(-90 16 %.2f)\">KL of glimpse t (nats per "
            "image)</text>\n</svg>\n",
            KL_LEFT, KL_TOP, pw, ph, KL_LEFT + pw / 2, KL_H - 12, KL_TOP + ph / 2, KL_TOP + ph / 2);
    return ferror(f) ? -1 : 0;
}

int cli_kl_svg(const char *path, int T, const double *mean, const double *se, const char *title) {
    kl_chart k = {T, mean, se, title};
    return cli_write_atomic(path, write_kl, &k);
}
