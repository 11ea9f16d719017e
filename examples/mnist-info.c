/* mnist-info DIR: load MNIST through the public API and describe it.
 * DIR holds the four files examples/fetch-mnist.sh leaves there. */
#include <stdio.h>
#include <stdlib.h>

#include <dcrw/dcrw.h>

static int describe(const char *dir, const char *split, const char *images, const char *labels) {
    char ipath[4096], lpath[4096];
    if (snprintf(ipath, sizeof ipath, "%s/%s", dir, images) >= (int)sizeof ipath ||
        snprintf(lpath, sizeof lpath, "%s/%s", dir, labels) >= (int)sizeof lpath) {
        fprintf(stderr, "mnist-info: path too long\n");
        return 2;
    }
    dcrw_dataset *d = NULL;
    int rc = dcrw_dataset_load_idx(&d, ipath, lpath);
    if (rc != DCRW_OK) {
        fprintf(stderr, "mnist-info: %s: %s: %s\n", split, dcrw_strerror(rc), dcrw_last_error());
        return 2;
    }
    int c = 0, h = 0, w = 0;
    dcrw_dataset_shape(d, &c, &h, &w);
    size_t n = dcrw_dataset_count(d), p = (size_t)c * h * w;

    long hist[256] = {0};
    for (size_t i = 0; i < n; i++) {
        int l = dcrw_dataset_label(d, i);
        if (l >= 0 && l < 256) hist[l]++;
    }
    /* sum per image in double first: a single float accumulator over 47M
     * pixels would lose the low digits */
    const float *x = dcrw_dataset_images(d);
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double s = 0.0;
        for (size_t k = 0; k < p; k++) s += x[i * p + k];
        sum += s;
    }

    printf("%s: %zu images, %d x %d x %d (C x H x W)\n", split, n, c, h, w);
    printf("  labels:");
    for (int l = 0; l < 256; l++)
        if (hist[l]) printf(" %d:%ld", l, hist[l]);
    printf("\n  mean pixel: %.6f\n", n ? sum / ((double)n * (double)p) : 0.0);
    dcrw_dataset_destroy(d);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: mnist-info DIR\n"
                        "  DIR holds train-images-idx3-ubyte, train-labels-idx1-ubyte,\n"
                        "  t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte\n"
                        "  (plain or gzip-compressed; see examples/fetch-mnist.sh)\n");
        return 2;
    }
    int rc = describe(argv[1], "train", "train-images-idx3-ubyte", "train-labels-idx1-ubyte");
    if (rc) return rc;
    return describe(argv[1], "test", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte");
}
