/* dcrw info: what a checkpoint holds. The model comes from the library's
 * validating loader; the preset name and the training step are metadata the
 * public API does not expose, so they are read from the safetensors header
 * here (8-byte little-endian length, then JSON). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

#define MAX_HEADER (100u << 20)

static void usage(FILE *f) {
    fprintf(f, "usage: dcrw info CKPT\n"
               "\n"
               "Print a checkpoint's preset, every configuration field, its tensors with\n"
               "their shapes, the parameter count, and the training step when the file is\n"
               "a trainer checkpoint (dcrw train's RUNDIR/checkpoint.safetensors).\n");
}

/* The safetensors JSON header, NUL-terminated; NULL if unreadable. */
static char *read_header(const char *path) {
    int fd = cli_open_regular(path, NULL);
    FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (!f) {
        if (fd >= 0) close(fd);
        return NULL;
    }
    unsigned char len8[8];
    char *h = NULL;
    if (fread(len8, 1, 8, f) == 8) {
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--) n = (n << 8) | len8[i];
        if (n > 0 && n <= MAX_HEADER) {
            h = malloc((size_t)n + 1);
            if (h && fread(h, 1, (size_t)n, f) != (size_t)n) {
                free(h);
                h = NULL;
            }
            if (h) h[n] = '\0';
        }
    }
    fclose(f);
    return h;
}

/* The string value of "key" anywhere in the header (metadata keys are
 * unique and never tensor names), copied into buf; 0 if found. */
static int header_string(const char *h, const char *key, char *buf, size_t cap) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(h, pat);
    if (!p) return -1;
    p += strlen(pat);
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') p++;
    if (*p++ != ':') return -1;
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') p++;
    if (*p++ != '"') return -1;
    size_t n = 0;
    while (*p && *p != '"' && *p != '\\') {
        if (n + 1 >= cap) return -1;
        buf[n++] = *p++;
    }
    if (*p != '"') return -1;
    buf[n] = '\0';
    return 0;
}

int cmd_info(int argc, char **argv) {
    static const cli_opt opts[] = {{"help", 0, 1}, {NULL, 0, 0}};
    cli_args a = {argc, argv, 1, opts};
    const char *val, *path = NULL;
    int id;
    while ((id = cli_next(&a, &val)) != -1) {
        if (id == -2) return CLI_BAD;
        if (id == 1) {
            usage(stdout);
            return CLI_OK;
        }
        if (path) {
            cli_error("unexpected argument '%s' (one checkpoint only)", val);
            return CLI_BAD;
        }
        path = val;
    }
    if (!path) {
        cli_error("give a checkpoint (see --help)");
        return CLI_BAD;
    }
    dcrw_model *m = NULL;
    /* a FIFO or a device is refused before anything waits on it */
    char why[160];
    if (cli_probe_regular(path, why, sizeof why) != 0) {
        cli_error("%s: not a usable dcrw checkpoint: %s", path, why);
        return CLI_BAD;
    }
    int rc = dcrw_model_load(&m, path);
    if (rc != DCRW_OK) {
        cli_lib_error(rc, "%s: not a usable dcrw checkpoint", path);
        return CLI_BAD;
    }
    char *h = read_header(path);
    char preset[64] = "?", step[32] = "";
    if (h) {
        header_string(h, "dcrw.preset", preset, sizeof preset);
        if (header_string(h, "dcrw.step", step, sizeof step) == 0) {
            /* only digits count as a step */
            char *end = NULL;
            errno = 0;
            (void)strtoull(step, &end, 10);
            if (!*step || *end || errno) step[0] = '\0';
        }
    }
    int optimizer = h && strstr(h, "\"adam.m.") != NULL;
    free(h);

    dcrw_config c = {.size = sizeof c};
    dcrw_model_config(m, &c);
    printf("file             %s\n", path);
    printf("preset           %s\n", preset);
    printf("step             %s\n", *step ? step : "none (a model without training state)");
    printf("optimizer state  %s\n", optimizer ? "yes (Adam moments)" : "no");
    printf("channels         %d\n", c.channels);
    printf("height           %d\n", c.height);
    printf("width            %d\n", c.width);
    printf("glimpses         %d\n", c.glimpses);
    printf("enc_size         %d\n", c.enc_size);
    printf("dec_size         %d\n", c.dec_size);
    printf("z_size           %d\n", c.z_size);
    printf("read_n           %d\n", c.read_n);
    printf("write_n          %d\n", c.write_n);
    printf("conv1            %d\n", c.conv1);
    printf("conv2            %d\n", c.conv2);
    printf("encoder          %s\n", c.encoder == DCRW_ENCODER_CNN ? "cnn" : "lstm");
    printf("read_attention   %d\n", c.read_attention);
    printf("write_attention  %d\n", c.write_attention);
    printf("canvas_init      %g\n", (double)c.canvas_init);
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
    dcrw_model_destroy(m);
    return CLI_OK;
}
