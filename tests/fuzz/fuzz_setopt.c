/* libFuzzer target: the dcrw command's --set parser (examples/dcrw/setopt.c,
 * compiled in alone) on arbitrary NUL-terminated strings. It must not crash,
 * must leave a NUL-terminated message within errlen on failure, and must
 * only ever change the one field it names. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dcrw/dcrw.h"

int dcrw_cli_set(dcrw_config *cfg, const char *assignment, char *err, size_t errlen);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    dcrw_config cfg, before;
    dcrw_config_preset(&cfg, DCRW_PRESET_DCRW);
    before = cfg;
    /* a small message buffer, guarded, to catch a write past errlen */
    char err[40];
    memset(err, 'x', sizeof err);
    int rc = dcrw_cli_set(&cfg, s, err, 32);
    if (rc != 0) {
        if (memchr(err, '\0', 32) == NULL) abort();
        for (size_t k = 32; k < sizeof err; k++)
            if (err[k] != 'x') abort();
    }
    /* at most one 4-byte field differs */
    int changed = 0;
    for (size_t off = 0; off < sizeof cfg; off += 4)
        changed += memcmp((char *)&cfg + off, (char *)&before + off, 4) != 0;
    if (changed > 1) abort();
    free(s);
    return 0;
}
