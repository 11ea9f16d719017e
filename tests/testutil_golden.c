#include <stdlib.h>
#include <string.h>

#include "testutil.h"

float *tu_st_floats(const st_file *f, const char *name, size_t *count) {
    const st_tensor *t = dcrw_st_find(f, name);
    if (!t || t->dtype != ST_F32) return NULL;
    size_t n = (size_t)(t->end - t->begin) / 4;
    float *out = malloc(n ? n * 4 : 4);
    memcpy(out, st_data(f, t), n * 4);
    if (count) *count = n;
    return out;
}
