/* dcrw: train, evaluate and draw with DRAW/DCRW models from the shell.
 * Dispatches to one file per subcommand. */
#include <stdio.h>
#include <string.h>

#include "common.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"train", cmd_train, "train a model on MNIST-style IDX data (or --resume a run)"},
    {"eval", cmd_eval, "the test-set bound: mean Lx, Lz, L; --importance K for -log p(x)"},
    {"sample", cmd_sample, "draw images from the prior: a grid, glimpse rows, a GIF"},
    {"reconstruct", cmd_reconstruct, "test images and their canvases with attention windows"},
    {"plot", cmd_plot, "the loss curves of a run as SVG"},
    {"info", cmd_info, "describe a checkpoint: preset, configuration, tensors, step"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: dcrw COMMAND [OPTIONS]\n"
               "\n"
               "Train DRAW and DCRW sequential variational autoencoders on MNIST and look\n"
               "at what they draw. Commands:\n\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f,
            "\n"
            "'dcrw COMMAND --help' describes each command. A typical session:\n"
            "  dcrw train --preset dcrw --data data/mnist --out run --minutes 5\n"
            "  dcrw eval --model run/checkpoint.safetensors --data data/mnist\n"
            "  dcrw sample --model run/checkpoint.safetensors --out samples.png\n"
            "\n"
            "Exit status: 0 success, 2 bad usage or input (message on stderr),\n"
            "1 a failure of the run itself (out of memory, a diverged loss).\n"
            "PNG output: %s; GIF output: %s.\n",
            cli_png_available() ? "yes" : "no (built without libpng)",
            cli_gif_available() ? "yes" : "no (built without giflib)");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CLI_BAD;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("dcrw %d.%d.%d (running with libdcrw %s)\n", DCRW_VERSION_MAJOR, DCRW_VERSION_MINOR,
               DCRW_VERSION_PATCH, dcrw_version_string());
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(cmd, commands[i].name) == 0) {
            static char prefix[64];
            snprintf(prefix, sizeof prefix, "dcrw %s", commands[i].name);
            cli_set_command(prefix);
            return commands[i].run(argc - 1, argv + 1);
        }
    fprintf(stderr,
            "dcrw: unknown command '%s' (commands: train eval sample reconstruct plot "
            "info; see dcrw --help)\n",
            cmd);
    return CLI_BAD;
}
