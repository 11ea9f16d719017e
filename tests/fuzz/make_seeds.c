/* Writes the generated seeds of the fuzz corpora (run by hand after a
 * format change; the outputs are committed under corpus/):
 *   fuzz_make_seeds tests/fuzz/corpus
 * Tiny but valid checkpoints of each architecture (model and trainer
 * files), IDX files plain and gzip, configurations and --set strings. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "dcrw/dcrw.h"

static const char *root;

static void put(const char *dir, const char *name, const void *p, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s", root, dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

static void copy(const char *from, const char *dir, const char *name) {
    FILE *f = fopen(from, "rb");
    if (!f) exit(1);
    static unsigned char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    put(dir, name, buf, n);
}

static dcrw_config tiny(dcrw_preset p) {
    dcrw_config c;
    dcrw_config_preset(&c, p);
    c.height = c.width = 8;
    c.glimpses = 2;
    c.enc_size = c.encoder == DCRW_ENCODER_LSTM ? 3 : 0;
    c.dec_size = 3;
    c.z_size = 2;
    if (c.read_attention) c.read_n = c.encoder == DCRW_ENCODER_CNN ? 4 : 2;
    if (c.write_attention) c.write_n = 2;
    if (c.encoder == DCRW_ENCODER_CNN) c.conv1 = 2, c.conv2 = 2;
    return c;
}

static void checkpoints(void) {
    char tmp[] = "/tmp/dcrw-seeds-XXXXXX";
    if (!mkdtemp(tmp)) exit(1);
    char path[4096];
    snprintf(path, sizeof path, "%s/m.safetensors", tmp);
    for (int p = 0; p < 4; p++) {
        dcrw_config c = tiny((dcrw_preset)p);
        dcrw_model *m;
        if (dcrw_model_create(&m, &c, 1 + p) != DCRW_OK) exit(1);
        char name[64];
        snprintf(name, sizeof name, "%s.safetensors", dcrw_preset_name((dcrw_preset)p));
        if (dcrw_model_save(m, path) != DCRW_OK) exit(1);
        copy(path, "checkpoint", name);
        copy(path, "safetensors", name);
        put("config", dcrw_preset_name((dcrw_preset)p), &c, sizeof c);
        dcrw_config full;
        dcrw_config_preset(&full, (dcrw_preset)p);
        snprintf(name, sizeof name, "%s-full", dcrw_preset_name((dcrw_preset)p));
        put("config", name, &full, sizeof full);
        if (p == DCRW_PRESET_DRAW) {
            /* a trainer file: moments and step too */
            dcrw_train_config tc;
            dcrw_train_config_default(&tc);
            tc.threads = 1;
            dcrw_trainer *t;
            if (dcrw_trainer_create(&t, m, &tc) != DCRW_OK) exit(1);
            float x[2 * 64];
            for (int i = 0; i < 128; i++) x[i] = (float)(i % 3) / 2.0f;
            if (dcrw_trainer_step(t, 2, x, NULL, NULL) != DCRW_OK) exit(1);
            if (dcrw_trainer_save(t, path) != DCRW_OK) exit(1);
            copy(path, "checkpoint", "draw-trainer.safetensors");
            dcrw_trainer_destroy(t);
        }
        dcrw_model_destroy(m);
    }
    remove(path);
    rmdir(tmp);
    /* the container alone: edge cases a valid writer does not produce */
    static const char *hdrs[] = {
        "{}",
        "{\"__metadata__\":{\"a\":\"b\"}}",
        ("{\"x\":{\"dtype\":\"U8\",\"shape\":[2,1],\"data_offsets\":[0,2]},"
         "\"y\":{\"dtype\":\"F16\",\"shape\":[],\"data_offsets\":[2,4]}}"),
        "{\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]}}",
    };
    for (size_t k = 0; k < sizeof hdrs / sizeof hdrs[0]; k++) {
        unsigned char buf[512];
        size_t n = strlen(hdrs[k]);
        for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
        memcpy(buf + 8, hdrs[k], n);
        size_t data = k == 2 ? 4 : 0;
        memset(buf + 8 + n, 7, data);
        char name[32];
        snprintf(name, sizeof name, "edge%zu", k);
        put("safetensors", name, buf, 8 + n + data);
    }
}

/* The idx target's first two bytes: mode and the labels split. */
static void idx(void) {
    unsigned char img[2 + 4 + 12 + 3 * 2 * 2];
    unsigned char *p = img + 2;
    const unsigned char hdr[16] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2};
    memcpy(p, hdr, 16);
    for (int i = 0; i < 12; i++) p[16 + i] = (unsigned char)(i * 21);
    img[0] = 0, img[1] = 0;
    put("idx", "plain3d", img, 2 + 16 + 12);
    img[0] = 1;
    put("idx", "gzip3d", img, 2 + 16 + 12);
    /* 4-D, 2 channels */
    unsigned char img4[2 + 20 + 16];
    const unsigned char h4[20] = {0, 0, 8, 4, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2};
    img4[0] = 0, img4[1] = 0;
    memcpy(img4 + 2, h4, 20);
    for (int i = 0; i < 16; i++) img4[22 + i] = (unsigned char)(255 - i);
    put("idx", "plain4d", img4, sizeof img4);
    /* images then labels: 3 images of 2×2 and 3 labels */
    unsigned char both[2 + 28 + 8 + 3];
    both[0] = 2, both[1] = 28;
    memcpy(both + 2, hdr, 16);
    for (int i = 0; i < 12; i++) both[18 + i] = (unsigned char)(i * 20);
    const unsigned char lh[8] = {0, 0, 8, 1, 0, 0, 0, 3};
    memcpy(both + 30, lh, 8);
    both[38] = 1, both[39] = 7, both[40] = 9;
    put("idx", "labels", both, sizeof both);
    both[0] = 3;
    put("idx", "labels-gzip", both, sizeof both);
    /* a real gzip member as the raw input: zlib's own framing fuzzed */
    unsigned char gz[256];
    z_stream z = {0};
    deflateInit2(&z, 9, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
    z.next_in = img + 2;
    z.avail_in = 28;
    z.next_out = gz + 2;
    z.avail_out = sizeof gz - 2;
    deflate(&z, Z_FINISH);
    size_t n = sizeof gz - 2 - z.avail_out;
    deflateEnd(&z);
    gz[0] = 0, gz[1] = 0;
    put("idx", "rawgzip", gz, n + 2);
}

static void setopt(void) {
    static const char *s[] = {"height=28",         "width=4096",         "glimpses=10",
                              "enc_size=256",      "encoder=cnn",        "read_attention=false",
                              "write_n=5",         "canvas_init=-1.5e3", "channels=3",
                              "z_size=2147483648", "conv2=-1",           "nosuchfield=1"};
    for (size_t k = 0; k < sizeof s / sizeof s[0]; k++) {
        char name[32];
        snprintf(name, sizeof name, "s%02zu", k);
        put("setopt", name, s[k], strlen(s[k]));
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    root = argv[1];
    dcrw_set_threads(1);
    checkpoints();
    idx();
    setopt();
    return 0;
}
