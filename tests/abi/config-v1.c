/* A program built against the header of 0.1 to 0.4, whose dcrw_config has
 * 64 bytes, keeps working with this library: dcrw_config_preset@DCRW_0.1
 * fills 64 bytes and no more, and the library accepts such a struct
 * everywhere; programs built now get dcrw_config_preset@@DCRW_0.5, which
 * fills the whole struct. Loaded with dlopen so that both versions of the
 * symbol can be asked for by name.
 *   config-v1 LIBDCRW_SO */
#define _GNU_SOURCE /* dlvsym */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "dcrw/dcrw.h"

typedef int (*preset_fn)(dcrw_config *, dcrw_preset);
typedef int (*create_fn)(dcrw_model **, const dcrw_config *, uint64_t);
typedef int (*config_fn)(const dcrw_model *, dcrw_config *);
typedef void (*destroy_fn)(dcrw_model *);

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

int main(int argc, char **argv) {
    CHECK(argc == 2, "usage: config-v1 LIBDCRW_SO");
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    CHECK(h, "dlopen: %s", dlerror());
    preset_fn old = (preset_fn)(uintptr_t)dlvsym(h, "dcrw_config_preset", "DCRW_0.1");
    preset_fn now = (preset_fn)(uintptr_t)dlvsym(h, "dcrw_config_preset", "DCRW_0.5");
    preset_fn plain = (preset_fn)(uintptr_t)dlsym(h, "dcrw_config_preset");
    create_fn create = (create_fn)(uintptr_t)dlsym(h, "dcrw_model_create");
    config_fn config = (config_fn)(uintptr_t)dlsym(h, "dcrw_model_config");
    destroy_fn destroy = (destroy_fn)(uintptr_t)dlsym(h, "dcrw_model_destroy");
    CHECK(old && now && plain && create && config && destroy, "a symbol is missing");
    CHECK(plain == now, "dlsym does not give the default version DCRW_0.5");
    CHECK(old != now, "the two versions are one function");

    /* the old one: 64 bytes, the rest of the caller's memory untouched */
    union {
        dcrw_config c;
        unsigned char bytes[sizeof(dcrw_config) + 16];
    } u;
    memset(u.bytes, 0xA5, sizeof u.bytes);
    CHECK(old(&u.c, DCRW_PRESET_DCRW) == DCRW_OK, "old preset failed");
    CHECK(u.c.size == 64, "old preset set size %u, not 64", (unsigned)u.c.size);
    for (size_t i = 64; i < sizeof u.bytes; i++)
        CHECK(u.bytes[i] == 0xA5, "old preset wrote byte %zu, beyond the 64-byte struct", i);
    CHECK(u.c.glimpses == 10 && u.c.read_n == 7, "old preset: wrong values");
    /* the classifier does not fit the old struct */
    CHECK(old(&u.c, DCRW_PRESET_DRAW_CLASSIFY) == DCRW_EINVAL, "old preset made a classifier");

    /* a 64-byte struct makes a model, and reading its configuration back
     * into a 64-byte struct writes 64 bytes */
    CHECK(old(&u.c, DCRW_PRESET_DCRW) == DCRW_OK, "old preset failed");
    dcrw_model *m = NULL;
    CHECK(create(&m, &u.c, 1) == DCRW_OK, "a 64-byte config is refused");
    memset(u.bytes, 0xA5, sizeof u.bytes);
    u.c.size = 64;
    CHECK(config(m, &u.c) == DCRW_OK && u.c.size == 64, "dcrw_model_config into 64 bytes");
    for (size_t i = 64; i < sizeof u.bytes; i++)
        CHECK(u.bytes[i] == 0xA5, "dcrw_model_config wrote byte %zu", i);
    destroy(m);

    /* the new one fills the whole struct */
    CHECK(now(&u.c, DCRW_PRESET_DRAW_CLASSIFY) == DCRW_OK, "new preset failed");
    CHECK(u.c.size == sizeof(dcrw_config) && u.c.classify == 1 && u.c.classes == 10,
          "new preset: size %u, classify %d, classes %d", (unsigned)u.c.size, (int)u.c.classify,
          (int)u.c.classes);
    dlclose(h);
    printf("dcrw_config_preset@DCRW_0.1 fills 64 bytes; @@DCRW_0.5 fills %zu\n",
           sizeof(dcrw_config));
    return 0;
}
