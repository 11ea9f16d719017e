/* The command line of every subcommand: one reader of --name value and
 * --name=value, one parser of the options several subcommands share, and
 * the strict conversions of option values. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* The shared options, in the order of their ids; cli_parse_args() offers
 * a subcommand those its mask names (and --help always). */
static const cli_opt shared_opts[] = {{"help", 0, CLI_OPT_HELP},
                                      {"model", 1, CLI_OPT_MODEL},
                                      {"data", 1, CLI_OPT_DATA},
                                      {"split", 1, CLI_OPT_SPLIT},
                                      {"binarize", 1, CLI_OPT_BINARIZE},
                                      {"seed", 1, CLI_OPT_SEED},
                                      {"n", 1, CLI_OPT_N},
                                      {"out", 1, CLI_OPT_OUT},
                                      {"scale", 1, CLI_OPT_SCALE},
                                      {"glimpses", 1, CLI_OPT_GLIMPSES},
                                      {"precision", 1, CLI_OPT_PRECISION},
                                      {NULL, 0, 0}};

typedef struct arg_reader {
    int argc;
    char **argv;
    int pos; /* next argv index */
    unsigned shared;
    const cli_opt *own;
} arg_reader;

/* The entry named name[0..len) among the offered options, or NULL. */
static const cli_opt *find_option(const arg_reader *a, const char *name, size_t len) {
    for (const cli_opt *o = shared_opts; o->name; o++)
        if ((o->id == CLI_OPT_HELP || (a->shared & CLI_SHARED(o->id))) && strlen(o->name) == len &&
            strncmp(o->name, name, len) == 0)
            return o;
    for (const cli_opt *o = a->own; o && o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0) return o;
    return NULL;
}

/* The option id, 0 for a positional (its text in *val), -1 at the end, or
 * -2 after a message (unknown option, missing or unwanted value). Anything
 * not starting with "--", and "--" itself, is a positional. */
static int next_arg(arg_reader *a, const char **val) {
    *val = NULL;
    if (a->pos >= a->argc) return -1;
    const char *s = a->argv[a->pos++];
    if (strncmp(s, "--", 2) != 0 || s[2] == '\0') {
        *val = s;
        return 0;
    }
    const char *name = s + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const cli_opt *o = find_option(a, name, len);
    if (!o) {
        cli_error("unknown option --%.*s (see --help)", (int)(len > 200 ? 200 : len), name);
        return -2;
    }
    if (!o->has_arg && eq) {
        cli_error("option --%s takes no value", o->name);
        return -2;
    }
    if (o->has_arg && !eq && a->pos >= a->argc) {
        cli_error("option --%s needs a value", o->name);
        return -2;
    }
    if (o->has_arg) *val = eq ? eq + 1 : a->argv[a->pos++];
    return o->id;
}

/* One shared option into *s: 0, or -1 after a message. */
static int parse_shared(int id, const char *val, cli_shared *s) {
    switch (id) {
    case CLI_OPT_MODEL:
        s->model = val;
        return 0;
    case CLI_OPT_DATA:
        s->data = val;
        return 0;
    case CLI_OPT_OUT:
        s->out = val;
        return 0;
    case CLI_OPT_GLIMPSES:
        s->glimpses = val;
        return 0;
    case CLI_OPT_SPLIT:
        return cli_parse_split("split", val, &s->split);
    case CLI_OPT_BINARIZE:
        return cli_parse_binarize("binarize", val, &s->binarize);
    case CLI_OPT_SEED:
        return cli_parse_u64("seed", val, &s->seed);
    case CLI_OPT_N:
        return cli_parse_int("n", val, 1, s->n_max, &s->n);
    case CLI_OPT_SCALE:
        return cli_parse_int("scale", val, 1, CLI_SCALE_MAX, &s->scale);
    case CLI_OPT_PRECISION:
        return cli_parse_precision("precision", val, &s->precision);
    }
    return 0;
}

void cli_shared_init(cli_shared *s) {
    memset(s, 0, sizeof *s);
    s->split = SPLIT_TEST;
    s->binarize = DCRW_BINARIZE_DYNAMIC;
    s->n_max = 100000000;
    s->scale = 1;
}

int cli_parse_args(const cli_command *c, int argc, char **argv, cli_shared *s, void *ctx) {
    arg_reader a = {argc, argv, 1, c->shared, c->opts};
    const char *val;
    int id;
    while ((id = next_arg(&a, &val)) != -1) {
        if (id == -2) return CLI_BAD;
        if (id == CLI_OPT_HELP) {
            c->usage(stdout);
            return CLI_OK;
        }
        if (id == 0 && !c->positionals) {
            cli_error("unexpected argument '%s' (see --help)", val);
            return CLI_BAD;
        }
        int bad = id > 0 && id < CLI_OPT_OWN ? parse_shared(id, val, s) : c->own(id, val, ctx);
        if (bad) return CLI_BAD;
        if (id > 0 && id < CLI_OPT_OWN) s->given |= CLI_SHARED(id);
    }
    return -1;
}

/* ------------------------------------------------------------------------ */
int cli_parse_int(const char *opt, const char *s, long lo, long hi, long *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno == ERANGE || end == s) {
        cli_error("--%s: '%s' is not an integer", opt, s);
        return -1;
    }
    if (v < lo || v > hi) {
        cli_error("--%s: %ld is out of range [%ld, %ld]", opt, v, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_u64(const char *opt, const char *s, uint64_t *out) {
    char *end = NULL;
    errno = 0;
    if (!*s || *s == '-' || *s == '+' || *s == ' ') {
        cli_error("--%s: '%s' is not a non-negative integer", opt, s);
        return -1;
    }
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno == ERANGE || end == s) {
        cli_error("--%s: '%s' is not a non-negative integer below 2^64", opt, s);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

int cli_parse_double(const char *opt, const char *s, double lo, double hi, double *out) {
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || end == s || errno == ERANGE || !isfinite(v)) {
        cli_error("--%s: '%s' is not a finite number", opt, s);
        return -1;
    }
    if (v < lo || v > hi) {
        cli_error("--%s: %g is out of range [%g, %g]", opt, v, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_binarize(const char *opt, const char *s, int *out) {
    if (strcmp(s, "dynamic") == 0)
        *out = DCRW_BINARIZE_DYNAMIC;
    else if (strcmp(s, "threshold") == 0)
        *out = DCRW_BINARIZE_THRESHOLD;
    else if (strcmp(s, "none") == 0)
        *out = DCRW_BINARIZE_NONE;
    else {
        cli_error("--%s: '%s' is not one of dynamic, threshold, none", opt, s);
        return -1;
    }
    return 0;
}

int cli_parse_precision(const char *opt, const char *s, int *out) {
    if (strcmp(s, "float32") == 0) {
        *out = DCRW_PRECISION_FLOAT32;
    } else if (strcmp(s, "bf16") == 0) {
        if (!dcrw_precision_supported(DCRW_PRECISION_BF16)) {
            cli_error("--%s bf16: this CPU has no AVX-512 BF16 (bfloat16 products would be "
                      "emulated, many times slower than float32)",
                      opt);
            return -1;
        }
        *out = DCRW_PRECISION_BF16;
    } else {
        cli_error("--%s: '%s' is not one of float32, bf16", opt, s);
        return -1;
    }
    return 0;
}

const char *cli_precision_name(int p) {
    return p == DCRW_PRECISION_BF16 ? "bf16" : "float32";
}

int cli_set_precision(dcrw_model *m, int p) {
    int rc = dcrw_model_set_precision(m, p);
    if (rc != DCRW_OK) cli_lib_error(rc, "--precision %s", cli_precision_name(p));
    return rc == DCRW_OK ? 0 : -1;
}

const char *cli_binarize_name(int b) {
    switch (b) {
    case DCRW_BINARIZE_DYNAMIC:
        return "dynamic";
    case DCRW_BINARIZE_THRESHOLD:
        return "threshold";
    case DCRW_BINARIZE_NONE:
        return "none";
    default:
        return "?";
    }
}

int cli_parse_split(const char *opt, const char *s, cli_split *out) {
    if (strcmp(s, "train") == 0)
        *out = SPLIT_TRAIN;
    else if (strcmp(s, "test") == 0)
        *out = SPLIT_TEST;
    else {
        cli_error("--%s: '%s' is not train or test", opt, s);
        return -1;
    }
    return 0;
}

const char *cli_split_name(cli_split split) {
    return split == SPLIT_TEST ? "test" : "train";
}

/* ------------------------------------------------------------------------ */
static int all_glimpses(const char *opt, int T, int **out) {
    int *g = malloc((size_t)T * sizeof *g);
    if (!g) {
        cli_error("--%s: out of memory", opt);
        return -1;
    }
    for (int t = 0; t < T; t++) g[t] = t + 1;
    *out = g;
    return T;
}

int cli_parse_glimpses(const char *opt, const char *s, int T, int **out) {
    *out = NULL;
    if (strcmp(s, "all") == 0) return all_glimpses(opt, T, out);
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    if (cap > 4096) {
        cli_error("--%s: too many glimpses", opt);
        return -1;
    }
    int *g = malloc(cap * sizeof *g);
    if (!g) {
        cli_error("--%s: out of memory", opt);
        return -1;
    }
    int n = 0;
    for (const char *p = s;;) {
        char *end = NULL;
        errno = 0;
        long v = (*p >= '0' && *p <= '9') ? strtol(p, &end, 10) : 0;
        if (!end || end == p || errno == ERANGE || (*end != ',' && *end != '\0')) {
            cli_error("--%s: '%s' is not 'all' or a comma-separated list of glimpse numbers", opt,
                      s);
            free(g);
            return -1;
        }
        if (v < 1 || v > T) {
            cli_error("--%s: glimpse %ld is outside 1..%d (the model's glimpses)", opt, v, T);
            free(g);
            return -1;
        }
        g[n++] = (int)v;
        if (*end == '\0') break;
        p = end + 1;
    }
    *out = g;
    return n;
}
