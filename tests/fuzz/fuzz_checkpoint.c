/* libFuzzer target: the whole checkpoint load path of dcrw_model_load
 * (container, metadata, configuration, tensor shapes and values) on
 * arbitrary bytes, without the file system: dcrw_st_parse then
 * dcrw_ckpt_model_from_file, which is exactly what dcrw_model_load does after
 * reading the file. A model that loads must have finite parameters and a
 * configuration that validates. */
#include <stdint.h>
#include <stdlib.h>

#include "checkpoint.h"
#include "common.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    st_file f;
    if (dcrw_st_parse(&f, data, size) != 0) return 0;
    dcrw_model *m = NULL;
    int rc = dcrw_ckpt_model_from_file(&f, &m);
    if (rc == DCRW_OK) {
        dcrw_config cfg = {.size = sizeof cfg};
        if (dcrw_model_config(m, &cfg) != DCRW_OK || dcrw_config_validate(&cfg) != DCRW_OK) abort();
        size_t n = 0;
        const float *p = dcrw_model_params(m, &n);
        if (!p || n != dcrw_model_param_floats(m) || !dcrw_all_finite(p, n)) abort();
    } else if (m) {
        abort(); /* out is NULL on failure */
    }
    dcrw_model_destroy(m);
    dcrw_st_free(&f);
    return 0;
}
