/* dcrw info: what a checkpoint holds. The model comes from the library's
 * validating loader; the preset name, the training step and whether Adam's
 * moments are there are metadata the public API does not expose, so they
 * are read from the safetensors header here (8-byte little-endian length,
 * then a JSON object, parsed with cJSON). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common.h"

#define MAX_HEADER (100u << 20)

static void usage(FILE *f) {
    fprintf(f, "usage: dcrw info CKPT\n"
               "\n"
               "Print a checkpoint's preset, every configuration field, its tensors with\n"
               "their shapes, the parameter count, and the training step when the file is\n"
               "a trainer checkpoint (dcrw train's RUNDIR/checkpoint.safetensors).\n");
}

/* The safetensors header parsed, or NULL when it is unreadable or not a
 * JSON object. */
static cJSON *read_header(const char *path) {
    int fd = cli_open_regular(path, NULL);
    FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (!f) {
        if (fd >= 0) close(fd);
        return NULL;
    }
    unsigned char len8[8];
    cJSON *root = NULL;
    if (fread(len8, 1, 8, f) == 8) {
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--) n = (n << 8) | len8[i];
        char *h = n > 0 && n <= MAX_HEADER ? malloc((size_t)n) : NULL;
        if (h && fread(h, 1, (size_t)n, f) == (size_t)n) root = cJSON_ParseWithLength(h, (size_t)n);
        free(h);
    }
    fclose(f);
    if (root && !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        root = NULL;
    }
    return root;
}

/* What the header says beyond the model. */
typedef struct ckpt_meta {
    char preset[64]; /* "?" when unknown */
    char step[32];   /* "" for a model without training state */
    int optimizer;   /* Adam's moments are stored */
} ckpt_meta;

/* The string value of metadata key @p key into buf; 0 if found. */
static int meta_string(const cJSON *meta, const char *key, char *buf, size_t cap) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, key);
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= cap) return -1;
    strcpy(buf, v->valuestring);
    return 0;
}

static void read_meta(const char *path, ckpt_meta *m) {
    snprintf(m->preset, sizeof m->preset, "?");
    m->step[0] = '\0';
    m->optimizer = 0;
    cJSON *h = read_header(path);
    if (!h) return;
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(h, "__metadata__");
    meta_string(meta, "dcrw.preset", m->preset, sizeof m->preset);
    if (meta_string(meta, "dcrw.step", m->step, sizeof m->step) == 0) {
        /* only digits count as a step */
        char *end = NULL;
        errno = 0;
        (void)strtoull(m->step, &end, 10);
        if (!*m->step || *end || errno || *m->step < '0' || *m->step > '9') m->step[0] = '\0';
    }
    for (const cJSON *t = h->child; t && !m->optimizer; t = t->next)
        m->optimizer = t->string && strncmp(t->string, "adam.m.", 7) == 0;
    cJSON_Delete(h);
}

/* Every field, by the library's own list and in its own text. */
static void print_config(const dcrw_config *c) {
    for (int i = 0; i < dcrw_config_field_count(); i++) {
        const char *name = NULL;
        char value[48];
        dcrw_config_field(i, &name, NULL, NULL, NULL, NULL);
        if (dcrw_config_get(c, name, value, sizeof value) == DCRW_OK)
            printf("%-16s %s\n", name, value);
    }
}

/* Every tensor with its shape and size, then the parameter count. */
static void print_tensors(const dcrw_model *m) {
    size_t nt = dcrw_model_param_count(m);
    printf("tensors          %zu\n", nt);
    for (size_t i = 0; i < nt; i++) {
        const char *name = NULL;
        int ndim = 0;
        const int64_t *shape = NULL;
        if (dcrw_model_param(m, i, &name, &ndim, &shape, NULL) != DCRW_OK) continue;
        char dims[128] = "";
        size_t k = 0;
        long long count = 1;
        for (int d = 0; d < ndim && k < sizeof dims; d++) {
            int w =
                snprintf(dims + k, sizeof dims - k, "%s%lld", d ? ", " : "", (long long)shape[d]);
            if (w < 0) break;
            k += (size_t)w;
            count *= (long long)shape[d];
        }
        printf("  %-22s [%s]  %lld\n", name, dims, count);
    }
    size_t np = dcrw_model_param_floats(m);
    printf("parameters       %zu (%.2f MB as float32)\n", np, (double)np * 4.0 / 1e6);
}

/* the one positional: the checkpoint */
static int info_argument(int id, const char *val, void *ctx) {
    const char **path = ctx;
    (void)id;
    if (*path) {
        cli_error("unexpected argument '%s' (one checkpoint only)", val);
        return -1;
    }
    *path = val;
    return 0;
}

static const cli_command info_cli = {usage, 0, NULL, 1, info_argument};

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    cli_shared s;
    cli_shared_init(&s);
    int status = cli_parse_args(&info_cli, argc, argv, &s, &path);
    if (status >= 0) return status;
    if (!path) {
        cli_error("give a checkpoint (see --help)");
        return CLI_BAD;
    }
    /* a FIFO or a device is refused before anything waits on it */
    char why[160];
    if (cli_probe_regular(path, why, sizeof why) != 0) {
        cli_error("%s: not a usable dcrw checkpoint: %s", path, why);
        return CLI_BAD;
    }
    dcrw_model *m = NULL;
    int rc = dcrw_model_load(&m, path);
    if (rc != DCRW_OK) {
        cli_lib_error(rc, "%s: not a usable dcrw checkpoint", path);
        return CLI_BAD;
    }
    ckpt_meta meta;
    read_meta(path, &meta);
    dcrw_config c = {.size = sizeof c};
    dcrw_model_config(m, &c);
    printf("file             %s\n", path);
    printf("preset           %s\n", meta.preset);
    printf("step             %s\n",
           *meta.step ? meta.step : "none (a model without training state)");
    printf("optimizer state  %s\n", meta.optimizer ? "yes (Adam moments)" : "no");
    print_config(&c);
    print_tensors(m);
    dcrw_model_destroy(m);
    return CLI_OK;
}
