/* libFuzzer target: dcrw_config_validate on arbitrary field values. A
 * configuration it accepts must derive sizes that are positive and fit the
 * int the model code indexes with, and a parameter layout whose tensors
 * tile the flat buffer; those are recomputed here in 64 bits, independently
 * of lib/config.c, from MODEL.md §2, §7, §9 and §10. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    dcrw_config cfg;
    memset(&cfg, 0, sizeof cfg);
    memcpy(&cfg, data, size < sizeof cfg ? size : sizeof cfg);
    /* mostly a correct size field, so that the checks past it run; the
     * input's own value when its first byte is odd */
    if (!(size > 0 && (data[0] & 1))) cfg.size = sizeof cfg;
    int rc = dcrw_config_validate(&cfg);
    if (rc != DCRW_OK) {
        if (rc != DCRW_EINVAL && rc != DCRW_ECONFIG) abort();
        if (rc == DCRW_EINVAL && cfg.size == sizeof cfg) abort();
        return 0;
    }
    /* this version's struct, or 0.1's 64 bytes without the later fields */
    if (cfg.size != sizeof cfg && cfg.size != 64) abort();
    dcrw_dims d;
    if (dcrw_dims_from_config(&cfg, &d) != DCRW_OK) abort();
    if (cfg.size == 64) cfg.classify = cfg.classes = 0;
    const int64_t P = (int64_t)cfg.channels * cfg.height * cfg.width;
    if (P < 1 || P != d.P) abort();
    if (cfg.classify) {
        /* MODEL.md §9: the read of x alone, an LSTM, K classes */
        const int64_t R = (int64_t)cfg.channels * cfg.read_n * cfg.read_n;
        if (!d.cls || d.K != cfg.classes || d.K < 2 || !cfg.read_attention || d.cnn) abort();
        if (R != d.R || R > INT32_MAX || d.T != cfg.glimpses || d.E != cfg.enc_size) abort();
    } else {
        const int64_t R =
            cfg.read_attention ? 2 * (int64_t)cfg.channels * cfg.read_n * cfg.read_n : 2 * P;
        if (R != d.R || R > INT32_MAX) abort();
        const int64_t Wout =
            cfg.write_attention ? (int64_t)cfg.channels * cfg.write_n * cfg.write_n : P;
        if (Wout != d.Wout || Wout * cfg.dec_size > INT32_MAX) abort();
        if (d.T != cfg.glimpses || d.D != cfg.dec_size || d.Z != cfg.z_size || d.Q < 1) abort();
        /* MODEL.md §10: no classes, or at least two */
        if (d.cls || d.K != cfg.classes || d.K == 1 || d.Zw != d.Z + d.K) abort();
    }
    dcrw_layout lay;
    dcrw_layout_init(&lay, &d);
    uint64_t at = 0;
    for (int i = 0; i < lay.ntensors; i++) {
        const dcrw_tensor_info *t = &lay.t[lay.order[i]];
        uint64_t n = 1;
        for (int k = 0; k < t->ndim; k++) {
            if (t->shape[k] < 1 || t->shape[k] > INT32_MAX) abort();
            n *= (uint64_t)t->shape[k];
            if (n > INT32_MAX) abort();
        }
        if (t->offset != at || t->count != n) abort();
        at += n;
    }
    if (at != lay.total || at > INT32_MAX) abort();
    return 0;
}
