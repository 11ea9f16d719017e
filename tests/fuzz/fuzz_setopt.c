/* libFuzzer target: dcrw_config_set() and dcrw_config_get(), the parser
 * behind a command line's --set name=value, on arbitrary NUL-terminated
 * strings split at the first '='. It must not crash; a refusal must leave
 * the configuration as it was; a success must change at most the one
 * field named, to a value whose text reads back to the same bytes; a
 * refusal must come with a message; and dcrw_config_get() must never write
 * past the length it is given. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dcrw/dcrw.h"

static void check_get(const dcrw_config *cfg) {
    for (int i = 0; i < dcrw_config_field_count(); i++) {
        const char *name;
        dcrw_config_field(i, &name, NULL, NULL, NULL, NULL);
        char buf[40];
        for (size_t len = 0; len <= 32; len += 3) {
            memset(buf, 'x', sizeof buf);
            int rc = dcrw_config_get(cfg, name, buf, len);
            for (size_t k = len; k < sizeof buf; k++)
                if (buf[k] != 'x') abort();
            if (len > 0 && !memchr(buf, '\0', len)) abort();
            if (rc != DCRW_OK && rc != DCRW_EINVAL) abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    char *eq = strchr(s, '=');
    const char *name = s, *value = "";
    if (eq) {
        *eq = '\0';
        value = eq + 1;
    }
    dcrw_config cfg, before;
    dcrw_config_preset(&cfg, DCRW_PRESET_DCRW);
    before = cfg;
    int rc = dcrw_config_set(&cfg, name, value);
    if (rc != DCRW_OK) {
        if (memcmp(&cfg, &before, sizeof cfg) != 0) abort();
        if (rc != DCRW_EINVAL && rc != DCRW_ENOTFOUND && rc != DCRW_ECONFIG) abort();
        /* a refusal says why, in a message that ends within its buffer
         * (a command line prints it as one line) */
        const char *msg = dcrw_last_error();
        if (!msg || !*msg || strlen(msg) >= 512) abort();
    } else {
        int changed = 0;
        for (size_t off = 0; off < sizeof cfg; off += 4)
            changed += memcmp((char *)&cfg + off, (char *)&before + off, 4) != 0;
        if (changed > 1) abort();
        char text[32];
        dcrw_config again = before;
        if (dcrw_config_get(&cfg, name, text, sizeof text) != DCRW_OK) abort();
        if (dcrw_config_set(&again, name, text) != DCRW_OK) abort();
        if (memcmp(&cfg, &again, sizeof cfg) != 0) abort();
    }
    check_get(&cfg);
    free(s);
    return 0;
}
