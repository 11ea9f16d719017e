/* dcrw info: what a checkpoint holds. Its summary and configuration come
 * from the library's reading of the header (dcrw_checkpoint_info), its
 * tensors from the validating loader. */
#include <stdio.h>

#include "common.h"

static void usage(FILE *f) {
    fprintf(f, "usage: dcrw info CKPT\n"
               "\n"
               "Print a checkpoint's preset, every configuration field, its tensors with\n"
               "their shapes, the parameter count, and the training step when the file is\n"
               "a trainer checkpoint (dcrw train's RUNDIR/checkpoint.safetensors).\n");
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
    dcrw_checkpoint_summary sum = {.size = sizeof sum};
    dcrw_config c = {.size = sizeof c};
    dcrw_model *m = NULL;
    int rc = dcrw_checkpoint_info(path, &sum, &c);
    if (rc == DCRW_OK) rc = dcrw_model_load(&m, path);
    if (rc != DCRW_OK) {
        cli_lib_error(rc, "%s: not a usable dcrw checkpoint", path);
        return CLI_BAD;
    }
    printf("file             %s\n", path);
    printf("preset           %s\n", *sum.preset ? sum.preset : "?");
    if (sum.has_step)
        printf("step             %llu\n", (unsigned long long)sum.step);
    else
        printf("step             none (a model without training state)\n");
    printf("optimizer state  %s\n", sum.optimizer ? "yes (Adam moments)" : "no");
    print_config(&c);
    print_tensors(m);
    dcrw_model_destroy(m);
    return CLI_OK;
}
