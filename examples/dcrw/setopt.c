/* --set field=value: one dcrw_config field from the command line.
 *
 * Kept free of the rest of the command (no printing, no globals) so that a
 * fuzzer can drive dcrw_cli_set() directly with arbitrary strings. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static int fail(char *err, size_t errlen, const char *fmt, ...) CLI_PRINTF(3, 4);

static int fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

typedef enum { F_INT, F_BOOL, F_ENCODER, F_FLOAT, F_DATA } field_kind;

typedef struct field {
    const char *name;
    field_kind kind;
    size_t offset;
} field;

static const field fields[] = {
    {"channels", F_DATA, offsetof(dcrw_config, channels)},
    {"height", F_INT, offsetof(dcrw_config, height)},
    {"width", F_INT, offsetof(dcrw_config, width)},
    {"glimpses", F_INT, offsetof(dcrw_config, glimpses)},
    {"enc_size", F_INT, offsetof(dcrw_config, enc_size)},
    {"dec_size", F_INT, offsetof(dcrw_config, dec_size)},
    {"z_size", F_INT, offsetof(dcrw_config, z_size)},
    {"read_n", F_INT, offsetof(dcrw_config, read_n)},
    {"write_n", F_INT, offsetof(dcrw_config, write_n)},
    {"conv1", F_INT, offsetof(dcrw_config, conv1)},
    {"conv2", F_INT, offsetof(dcrw_config, conv2)},
    {"encoder", F_ENCODER, offsetof(dcrw_config, encoder)},
    {"read_attention", F_BOOL, offsetof(dcrw_config, read_attention)},
    {"write_attention", F_BOOL, offsetof(dcrw_config, write_attention)},
    {"canvas_init", F_FLOAT, offsetof(dcrw_config, canvas_init)},
};

static int parse_int32(const char *s, int32_t *out) {
    if (!*s || isspace((unsigned char)*s)) return -1;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno == ERANGE || v < INT32_MIN || v > INT32_MAX) return -1;
    *out = (int32_t)v;
    return 0;
}

int dcrw_cli_set(dcrw_config *cfg, const char *assignment, char *err, size_t errlen) {
    if (err && errlen > 0) err[0] = '\0';
    if (!cfg || !assignment) return fail(err, errlen, "--set: no assignment");
    const char *eq = strchr(assignment, '=');
    if (!eq) return fail(err, errlen, "--set '%.64s': expected field=value", assignment);
    size_t len = (size_t)(eq - assignment);
    const char *value = eq + 1;
    const field *f = NULL;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (strlen(fields[i].name) == len && strncmp(fields[i].name, assignment, len) == 0)
            f = &fields[i];
    if (!f)
        return fail(err, errlen,
                    "--set: unknown field '%.*s' (fields: height width glimpses enc_size "
                    "dec_size z_size read_n write_n conv1 conv2 encoder read_attention "
                    "write_attention canvas_init)",
                    (int)(len > 64 ? 64 : len), assignment);
    char *dst = (char *)cfg + f->offset;
    int32_t iv = 0;
    switch (f->kind) {
    case F_DATA:
        return fail(err, errlen, "--set %s: the channels come from the data, not from --set",
                    f->name);
    case F_INT:
        if (parse_int32(value, &iv) != 0)
            return fail(err, errlen, "--set %s: '%.64s' is not an integer", f->name, value);
        break;
    case F_BOOL:
        if (strcmp(value, "1") == 0 || strcmp(value, "true") == 0 || strcmp(value, "yes") == 0)
            iv = 1;
        else if (strcmp(value, "0") == 0 || strcmp(value, "false") == 0 || strcmp(value, "no") == 0)
            iv = 0;
        else
            return fail(err, errlen, "--set %s: '%.64s' is not 0/1/true/false", f->name, value);
        break;
    case F_ENCODER:
        if (strcmp(value, "lstm") == 0 || strcmp(value, "0") == 0)
            iv = DCRW_ENCODER_LSTM;
        else if (strcmp(value, "cnn") == 0 || strcmp(value, "1") == 0)
            iv = DCRW_ENCODER_CNN;
        else
            return fail(err, errlen, "--set encoder: '%.64s' is not lstm or cnn", value);
        break;
    case F_FLOAT: {
        char *end = NULL;
        errno = 0;
        float v = strtof(value, &end);
        if (!*value || isspace((unsigned char)*value) || end == value || *end || errno == ERANGE ||
            !isfinite(v))
            return fail(err, errlen, "--set %s: '%.64s' is not a finite number", f->name, value);
        memcpy(dst, &v, sizeof v);
        return 0;
    }
    }
    memcpy(dst, &iv, sizeof iv);
    return 0;
}
