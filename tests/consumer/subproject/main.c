/* A program of the outside project: trains a tiny model a few steps and
 * saves it, using only <dcrw/dcrw.h> from the vendored libdcrw. */
#include <stdio.h>
#include <stdlib.h>

#include <dcrw/dcrw.h>

static int fail(const char *what, int rc) {
    fprintf(stderr, "%s: %s (%s)\n", what, dcrw_strerror(rc), dcrw_last_error());
    return 1;
}

int main(int argc, char **argv) {
    enum { B = 4 };
    dcrw_config cfg;
    dcrw_train_config tc;
    dcrw_model *m = NULL;
    dcrw_trainer *t = NULL;
    dcrw_loss first, last;
    float *x;
    size_t P, i;
    int rc, step;
    char path[4096];

    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    if (dcrw_version() != DCRW_VERSION) {
        fprintf(stderr, "built with %d.%d.%d, running %s\n", DCRW_VERSION_MAJOR, DCRW_VERSION_MINOR,
                DCRW_VERSION_PATCH, dcrw_version_string());
        return 1;
    }
    dcrw_config_preset(&cfg, DCRW_PRESET_DRAW_NOATTN);
    cfg.height = cfg.width = 8;
    cfg.glimpses = 2;
    cfg.enc_size = cfg.dec_size = 8;
    cfg.z_size = 2;
    if ((rc = dcrw_model_create(&m, &cfg, 1))) return fail("dcrw_model_create", rc);
    dcrw_train_config_default(&tc);
    tc.learning_rate = 1e-2f;
    if ((rc = dcrw_trainer_create(&t, m, &tc))) return fail("dcrw_trainer_create", rc);
    P = dcrw_model_input_size(m);
    x = malloc(B * P * sizeof *x);
    if (!x) return 1;
    for (i = 0; i < B * P; i++) x[i] = (float)(i % 3 == 0);
    for (step = 0; step < 20; step++) {
        if ((rc = dcrw_trainer_step(t, B, x, NULL, step ? &last : &first))) return fail("step", rc);
    }
    printf("vendored libdcrw %s: loss %.2f -> %.2f\n", dcrw_version_string(), first.loss,
           last.loss);
    snprintf(path, sizeof path, "%s/consumer.safetensors", argv[1]);
    if ((rc = dcrw_trainer_save(t, path))) return fail("dcrw_trainer_save", rc);
    dcrw_trainer_destroy(t);
    dcrw_model_destroy(m);
    free(x);
    return last.loss < first.loss ? 0 : 1;
}
