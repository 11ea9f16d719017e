/* The README's C example: create each of the four models, save it, load it
 * back and check the parameters survived bit for bit; with a directory of
 * MNIST files as argument, read them too. Uses only <dcrw/dcrw.h>.
 *
 *   cc quickstart.c $(pkg-config --cflags --libs dcrw) -o quickstart
 *   ./quickstart /tmp [data/mnist]
 */
#include <stdio.h>
#include <string.h>

#include <dcrw/dcrw.h>

static int fail(const char *what, int rc) {
    fprintf(stderr, "%s: %s (%s)\n", what, dcrw_strerror(rc), dcrw_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s TMPDIR [MNIST_DIR]\n", argv[0]);
        return 2;
    }
    if (dcrw_version() >> 16 != DCRW_VERSION_MAJOR) {
        fprintf(stderr, "header %d.x, library %s\n", DCRW_VERSION_MAJOR, dcrw_version_string());
        return 1;
    }
    for (int p = DCRW_PRESET_DRAW; p <= DCRW_PRESET_DCRW_NOREAD; p++) {
        dcrw_config cfg;
        dcrw_model *m, *back;
        int rc;
        char path[4096];
        dcrw_config_preset(&cfg, (dcrw_preset)p);
        if ((rc = dcrw_model_create(&m, &cfg, 42))) return fail("create", rc);
        snprintf(path, sizeof path, "%s/%s.safetensors", argv[1], dcrw_preset_name((dcrw_preset)p));
        if ((rc = dcrw_model_save(m, path))) return fail("save", rc);
        if ((rc = dcrw_model_load(&back, path))) return fail("load", rc);
        size_t n, n2;
        const float *a = dcrw_model_params(m, &n), *b = dcrw_model_params(back, &n2);
        if (n != n2 || memcmp(a, b, n * sizeof(float)) != 0) {
            fprintf(stderr, "%s: parameters differ after reload\n", path);
            return 1;
        }
        printf("%-12s %8zu parameters in %2zu tensors, saved and reloaded identically\n",
               dcrw_preset_name((dcrw_preset)p), n, dcrw_model_param_count(m));
        dcrw_model_destroy(back);
        dcrw_model_destroy(m);
    }
    if (argc > 2) {
        char img[4096], lab[4096];
        dcrw_dataset *d;
        int rc, c, h, w;
        snprintf(img, sizeof img, "%s/train-images-idx3-ubyte", argv[2]);
        snprintf(lab, sizeof lab, "%s/train-labels-idx1-ubyte", argv[2]);
        if ((rc = dcrw_dataset_load_idx(&d, img, lab))) return fail(img, rc);
        dcrw_dataset_shape(d, &c, &h, &w);
        printf("MNIST: %zu images of %dx%dx%d, first label %d\n", dcrw_dataset_count(d), c, h, w,
               dcrw_dataset_label(d, 0));
        dcrw_dataset_destroy(d);
    }
    return 0;
}
