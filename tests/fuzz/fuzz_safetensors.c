/* libFuzzer target: the safetensors container parser on arbitrary bytes.
 * Besides "no crash, no leak", a parse that succeeds must describe a file
 * whose every tensor lies inside the buffer, as dcrw_st_parse promises its
 * callers (they index the data section without further checks). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    st_file f;
    if (dcrw_st_parse(&f, data, size) != 0) return 0;
    if (f.data_start > f.size) abort();
    const uint64_t have = f.size - f.data_start;
    for (int k = 0; k < f.ntensors; k++) {
        const st_tensor *t = &f.tensors[k];
        if (t->begin > t->end || t->end > have) abort();
        if (t->ndim < 0 || t->ndim > ST_MAX_DIMS) abort();
        if (dcrw_st_find(&f, t->name) != t) abort(); /* names are unique */
        /* touch the first and last byte so ASan checks the span */
        if (t->end > t->begin) {
            volatile uint8_t a = st_data(&f, t)[0];
            volatile uint8_t b = st_data(&f, t)[t->end - t->begin - 1];
            (void)a, (void)b;
        }
    }
    for (int k = 0; k < f.nmeta; k++)
        if (!f.meta_keys[k] || !f.meta_vals[k] ||
            dcrw_st_meta(&f, f.meta_keys[k]) != f.meta_vals[k])
            abort();
    dcrw_st_free(&f);
    return 0;
}
