/* An outside program on the public header only: loads a golden file of
 * tests/golden as a model (dcrw_model_load ignores the extra tensors),
 * evaluates the loss of its batch golden.x with its noise golden.eps, and
 * compares it with golden.loss, computed by an independent float64
 * implementation. Proves that a consumer built some new way links a library
 * that computes the real model, not just one that links.
 *
 *   golden-loss FILE.safetensors      (exit 0: agrees to 1e-5 relative)
 *
 * The extra tensors are read with a minimal safetensors reader (little-
 * endian hosts, F32 only), so the program needs nothing but libdcrw. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dcrw/dcrw.h>

static char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    long n;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 8 && fseek(f, 0, SEEK_SET) == 0 &&
        (data = malloc((size_t)n + 1)) != NULL && fread(data, 1, (size_t)n, f) == (size_t)n) {
        data[n] = '\0';
        *size = (size_t)n;
    } else {
        free(data);
        data = NULL;
    }
    fclose(f);
    return data;
}

/* The bytes of F32 tensor NAME (at any alignment): its entry in the JSON
 * header must hold "F32" and "data_offsets":[begin,end] before the entry's
 * closing brace. */
static const char *tensor(const char *file, size_t size, const char *name, size_t *count) {
    uint64_t hlen = 0;
    char key[128];
    const char *entry, *end, *offsets;
    unsigned long long begin, stop;
    int i;
    for (i = 7; i >= 0; i--) hlen = hlen << 8 | (unsigned char)file[i];
    if (hlen > size - 8) return NULL;
    snprintf(key, sizeof key, "\"%s\"", name);
    if (!(entry = strstr(file + 8, key)) || entry >= file + 8 + hlen) return NULL;
    end = strchr(entry, '}');
    offsets = strstr(entry, "\"data_offsets\"");
    if (!end || !offsets || offsets > end || !strstr(entry, "\"F32\"") ||
        strstr(entry, "\"F32\"") > end)
        return NULL;
    offsets = strchr(offsets, '[');
    if (!offsets || sscanf(offsets, "[%llu , %llu]", &begin, &stop) != 2 || stop < begin ||
        stop > size - 8 - hlen || (stop - begin) % 4)
        return NULL;
    *count = (size_t)(stop - begin) / 4;
    return file + 8 + hlen + begin;
}

static int fail(const char *what, int rc) {
    fprintf(stderr, "%s: %s (%s)\n", what, dcrw_strerror(rc), dcrw_last_error());
    return 1;
}

int main(int argc, char **argv) {
    dcrw_model *m = NULL;
    dcrw_loss loss;
    size_t size = 0, nx = 0, neps = 0, nref = 0, P;
    const char *x, *eps, *ref;
    float *xs, *epss, ref_loss;
    char *file;
    int rc, B, ok;

    if (argc != 2) {
        fprintf(stderr, "usage: %s GOLDEN.safetensors\n", argv[0]);
        return 2;
    }
    if ((rc = dcrw_model_load(&m, argv[1]))) return fail("dcrw_model_load", rc);
    if (!(file = read_file(argv[1], &size))) return fail(argv[1], DCRW_EIO);
    x = tensor(file, size, "golden.x", &nx);
    eps = tensor(file, size, "golden.eps", &neps);
    ref = tensor(file, size, "golden.loss", &nref);
    P = dcrw_model_input_size(m);
    if (!x || !eps || !ref || nref != 1 || P == 0 || nx % P) {
        fprintf(stderr, "%s: no golden.x, golden.eps and golden.loss of this model\n", argv[1]);
        return 1;
    }
    B = (int)(nx / P);
    /* aligned copies: the tensors sit at any offset of the file */
    memcpy(&ref_loss, ref, sizeof ref_loss);
    xs = malloc(nx * sizeof *xs);
    epss = malloc(neps * sizeof *epss);
    if (!xs || !epss) return fail("malloc", DCRW_ENOMEM);
    memcpy(xs, x, nx * sizeof *xs);
    memcpy(epss, eps, neps * sizeof *epss);
    if ((rc = dcrw_evaluate(m, B, xs, epss, &loss))) return fail("dcrw_evaluate", rc);
    ok = fabs(loss.loss - ref_loss) <= 1e-5 * fabs(ref_loss);
    printf("libdcrw %s: loss %.6f, golden %.6f (%d images): %s\n", dcrw_version_string(), loss.loss,
           ref_loss, B, ok ? "agrees" : "DIFFERS");
    free(epss);
    free(xs);
    free(file);
    dcrw_model_destroy(m);
    return ok ? 0 : 1;
}
