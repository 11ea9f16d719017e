/* The workspace of a pass (lib/pass.h): every array of the forward and
 * backward in one allocation, the noise a pass draws, and the row copies
 * the forward and the backward share. */
#include <assert.h>
#include <limits.h>
#include <stdatomic.h>
#include <string.h>

#include "common.h"
#include "conv.h"
#include "filterbank.h"
#include "pass.h"
#include "pass_internal.h"
#include "rng.h"

typedef struct carve {
    size_t total; /* floats so far */
    int overflow;
} carve;

/* Reserve n floats (rounded up to 16 so every array is 64-byte aligned);
 * the offset is stored in *slot until the block exists. */
static void reserve(carve *cv, float **slot, size_t a, size_t b, size_t c) {
    size_t n, ab;
    if (dcrw_mul_size(a, b, &ab) || dcrw_mul_size(ab, c, &n) || dcrw_add_size(n, 15, &n)) {
        cv->overflow = 1;
        return;
    }
    n &= ~(size_t)15;
    *slot = (float *)(uintptr_t)(cv->total + 1); /* +1: 0 means "not reserved" */
    if (dcrw_add_size(cv->total, n, &cv->total)) cv->overflow = 1;
}

static void place(float **slot, float *base) {
    if (*slot) *slot = base + ((uintptr_t)*slot - 1);
}

/* the stored encoder-LSTM input row [r_t or x̂_t, h_dec], and the first
 * column of enc.lstm.weight_ih it multiplies */
static int enc_row_floats(const dcrw_dims *d) {
    return d->cnn ? 0 : (d->ra ? d->R : d->P) + d->D;
}
static int enc_row_col(const dcrw_dims *d) {
    return d->ra ? 0 : d->P;
}

int dcrw_pass_create(dcrw_pass **out, const dcrw_model *m, int B, int keep, int backward) {
    *out = NULL;
    const dcrw_dims *d = &m->d;
    assert(B >= 1);
    /* every sgemm row count (up to T·B) must be a BLAS int */
    if ((size_t)B * (size_t)d->T > INT_MAX / 8)
        return dcrw_fail(DCRW_EINVAL, "batch %d × %d glimpses is too large", B, d->T);
    if (backward) keep = 1;
    dcrw_pass *ps = dcrw_calloc(1, sizeof *ps);
    if (!ps) return DCRW_ENOMEM;
    ps->m = m;
    ps->B = B;
    ps->keep = keep;
    ps->backward = backward;
    const size_t T = (size_t)d->T, sT = keep ? T : 2, sT1 = keep ? T + 1 : 2;
    const size_t b = (size_t)B, P = (size_t)d->P, D = (size_t)d->D, E = (size_t)d->E,
                 Z = (size_t)d->Z, Q = (size_t)d->Q, R = (size_t)d->R;
    const int noread_cnn = d->cnn && !d->ra;
    const int maxN = d->Nr > d->Nw ? d->Nr : d->Nw;
    cnn_shape cs = {B, d->Cin, d->ch, d->cw, d->K1, d->K2};
    size_t scratch = 1;
    if (d->ra) {
        size_t s = dcrw_fb_read_scratch_floats(B, d->C, d->Nr, d->H, d->W);
        scratch = s > scratch ? s : scratch;
    }
    if (d->wa) {
        size_t s = dcrw_fb_write_scratch_floats(B, d->C, d->Nw, d->H, d->W);
        scratch = s > scratch ? s : scratch;
    }
    if (d->cnn) {
        ps->cnn_saved = dcrw_cnn_saved_floats(&cs);
        ps->cnn_scratch = dcrw_cnn_scratch_floats(&cs);
        scratch = ps->cnn_scratch > scratch ? ps->cnn_scratch : scratch;
    }
    ps->Us = enc_row_floats(d);
    ps->ucol = enc_row_col(d);

    /* the classifier (MODEL.md §9) has the read and the encoder LSTM, whose
     * input row is the read itself, and logits; no canvas, latent or decoder */
    const int gen = !d->cls;
    carve cv = {0, 0};
    if (gen) {
        reserve(&cv, &ps->c, sT1, b, P);
        reserve(&cv, &ps->xhat, b, P, 1);
    }
    if (d->ra) {
        reserve(&cv, &ps->rp5, sT, b, 5);
        reserve(&cv, &ps->rFX, sT, b, (size_t)d->Nr * d->W);
        reserve(&cv, &ps->rFY, sT, b, (size_t)d->Nr * d->H);
        reserve(&cv, &ps->rg, sT, b, 1);
        reserve(&cv, &ps->raux, sT, dcrw_fb_aux_floats(B, d->Nr), 1);
        reserve(&cv, &ps->r, sT, b, R);
    }
    if (!d->cnn) {
        if (gen) {
            reserve(&cv, &ps->U, sT, b, (size_t)ps->Us);
            reserve(&cv, &ps->xq, b, 4 * E, 1);
        }
        reserve(&cv, &ps->he, sT1, b, E);
        reserve(&cv, &ps->se, sT1, b, E);
        reserve(&cv, &ps->ge, sT, b, 4 * E);
        reserve(&cv, &ps->te, sT, b, E);
    } else {
        reserve(&cv, &ps->cs, noread_cnn ? 1 : sT, ps->cnn_saved, 1);
        reserve(&cv, &ps->e, noread_cnn ? 1 : sT, b, Q);
    }
    if (gen) {
        reserve(&cv, &ps->mu, noread_cnn ? 1 : sT, b, Z);
        reserve(&cv, &ps->ls, noread_cnn ? 1 : sT, b, Z);
        reserve(&cv, &ps->z, sT, b, Z);
        reserve(&cv, &ps->hd, sT1, b, D);
        reserve(&cv, &ps->sd, sT1, b, D);
        reserve(&cv, &ps->gd, sT, b, 4 * D);
        reserve(&cv, &ps->td, sT, b, D);
        reserve(&cv, &ps->w, sT, b, (size_t)d->Wout);
        reserve(&cv, &ps->eps, T, b, Z);
        if (d->K) {
            reserve(&cv, &ps->lrd, b, 4 * D, 1);
            if (!d->cnn && d->ra) reserve(&cv, &ps->lre, b, 4 * E, 1);
            if (d->cnn) {
                reserve(&cv, &ps->lrm, b, Z, 1);
                reserve(&cv, &ps->lrs, b, Z, 1);
            }
        }
    } else {
        reserve(&cv, &ps->y, b, (size_t)d->K, 1);
    }
    if (d->wa) {
        reserve(&cv, &ps->wp5, sT, b, 5);
        reserve(&cv, &ps->wFX, sT, b, (size_t)d->Nw * d->W);
        reserve(&cv, &ps->wFY, sT, b, (size_t)d->Nw * d->H);
        reserve(&cv, &ps->wg, sT, b, 1);
        reserve(&cv, &ps->waux, sT, dcrw_fb_aux_floats(B, d->Nw), 1);
    }
    reserve(&cv, &ps->scratch, scratch, 1, 1);
    float *lx = NULL, *lz = NULL;
    reserve(&cv, &lx, b, 2, 1); /* doubles */
    reserve(&cv, &lz, b, 2, 1);
    if (backward) {
        if (!d->cnn) {
            reserve(&cv, &ps->dhe, b, E, 1);
            reserve(&cv, &ps->dse, b, E, 1);
        }
        if (d->ra) reserve(&cv, &ps->dr, b, R, 1);
        reserve(&cv, &ps->dp5, b, 5, 1);
        if (maxN > 0) {
            reserve(&cv, &ps->dFX, b, (size_t)maxN * d->W, 1);
            reserve(&cv, &ps->dFY, b, (size_t)maxN * d->H, 1);
        }
        reserve(&cv, &ps->dg, b, 1, 1);
        if (gen) {
            reserve(&cv, &ps->dc, b, P, 1);
            reserve(&cv, &ps->dh, b, D, 1);
            reserve(&cv, &ps->dhn, b, D, 1);
            reserve(&cv, &ps->dsd, b, D, 1);
            if (!d->cnn) reserve(&cv, &ps->du, b, (size_t)ps->Us, 1);
            reserve(&cv, &ps->de, b, Q, 1);
            reserve(&cv, &ps->dxhat, b, P, 1);
            if (d->ra) reserve(&cv, &ps->dsig, b, P, 1);
            if (d->cnn && d->ra && dcrw_cnn_dwx_floats(&cs))
                reserve(&cv, &ps->dwx, dcrw_cnn_dwx_floats(&cs), 1, 1);
            reserve(&cv, &ps->dz, b, Z, 1);
            reserve(&cv, &ps->dze, b, Z, 1);
            reserve(&cv, &ps->gz, b, Z, 1);
            reserve(&cv, &ps->gze, b, Z, 1);
            reserve(&cv, &ps->dw, b, (size_t)d->Wout, 1);
        } else {
            reserve(&cv, &ps->dy, b, (size_t)d->K, 1);
        }
        reserve(&cv, &ps->tnb, dcrw_bf16_tn_words(), 1, 1); /* words, as floats */
    }
    size_t bytes;
    if (cv.overflow || dcrw_mul_size(cv.total, sizeof(float), &bytes)) {
        dcrw_free(ps);
        return dcrw_fail(DCRW_EINVAL, "batch %d: workspace size overflows", B);
    }
    float *base = dcrw_alloc(bytes);
    if (!base) {
        dcrw_free(ps);
        return DCRW_ENOMEM;
    }
    ps->block = base;
    ps->bytes = bytes;
    float **all[] = {&ps->c,     &ps->xhat, &ps->rp5,     &ps->rFX, &ps->rFY, &ps->rg,  &ps->raux,
                     &ps->r,     &ps->U,    &ps->xq,      &ps->he,  &ps->se,  &ps->ge,  &ps->te,
                     &ps->cs,    &ps->e,    &ps->mu,      &ps->ls,  &ps->z,   &ps->hd,  &ps->sd,
                     &ps->gd,    &ps->td,   &ps->w,       &ps->wp5, &ps->wFX, &ps->wFY, &ps->wg,
                     &ps->waux,  &ps->eps,  &ps->scratch, &lx,      &lz,      &ps->dc,  &ps->dh,
                     &ps->dhn,   &ps->dsd,  &ps->dhe,     &ps->dse, &ps->du,  &ps->de,  &ps->dr,
                     &ps->dxhat, &ps->dz,   &ps->dze,     &ps->gz,  &ps->gze, &ps->dp5, &ps->dFX,
                     &ps->dFY,   &ps->dg,   &ps->dw,      &ps->y,   &ps->dy,  &ps->lrd, &ps->lre,
                     &ps->lrm,   &ps->lrs,  &ps->dsig,    &ps->dwx, &ps->tnb};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) place(all[i], base);
    ps->lx = (double *)(void *)lx;
    ps->lz = (double *)(void *)lz;
    *out = ps;
    return DCRW_OK;
}

void dcrw_pass_destroy(dcrw_pass *ps) {
    if (!ps) return;
    dcrw_free(ps->block);
    dcrw_free(ps);
}

/* n pairs of normals, pair j from counter base + j, into row[2j], row[2j + 1] */
DCRW_VECTOR_CLONES
static void normal_pairs(uint64_t key, uint64_t base, int n, float *restrict row) {
    for (int j = 0; j < n; j++) rng_normal2(key, base + (uint64_t)j, &row[2 * j], &row[2 * j + 1]);
}

void dcrw_pass_draw_noise(const dcrw_model *m, int B, uint64_t seed, uint64_t stream,
                          uint64_t first_index, float *eps) {
    const int T = m->d.T, Z = m->d.Z;
    for (int b = 0; b < B; b++) {
        uint64_t key = rng_key(seed, stream, first_index + (uint64_t)b);
        for (int t = 0; t < T; t++) {
            float *row = eps + ((size_t)t * B + b) * Z;
            /* pairs of normals; an odd Z drops the last one's twin */
            const uint64_t base = (uint64_t)t * ((Z + 1) / 2);
            normal_pairs(key, base, Z / 2, row);
            if (Z % 2) {
                float spare;
                rng_normal2(key, base + Z / 2, &row[Z - 1], &spare);
            }
        }
    }
}

/* rows of src [B×n] (stride lds) into dst (stride ldd) */
void dcrw_copy_rows(int B, int n, const float *src, int lds, float *dst, int ldd) {
    for (int b = 0; b < B; b++)
        memcpy(dst + (size_t)b * ldd, src + (size_t)b * lds, n * sizeof(float));
}

/* ---- packed weights ------------------------------------------------------ */

static atomic_int gemm_path = -2; /* -2: not chosen yet */

int dcrw_pass_gemm_path(void) {
    int p = atomic_load(&gemm_path);
    if (p == -2) {
        const pgemm_path best = dcrw_pgemm_path_best();
        const int want = best == PGEMM_PATH_C ? -1 : (int)best;
        /* a racing first call chooses the same */
        atomic_compare_exchange_strong(&gemm_path, &p, want);
        p = atomic_load(&gemm_path);
    }
    return p;
}

int dcrw_pass_set_gemm_path(int path) {
    const int old = dcrw_pass_gemm_path();
    if (path == -1 || (path >= 0 && dcrw_pgemm_path_supported((pgemm_path)path)))
        atomic_store(&gemm_path, path);
    return old;
}

/* Weight id of m as B = Wᵀ [k × n]: W's first element and row stride; 0 if
 * m has no such weight. */
typedef struct weight_spec {
    const float *w;
    int k, n, ldw;
} weight_spec;

static int weight_spec_of(const dcrw_model *m, int id, weight_spec *s) {
    const dcrw_dims *d = &m->d;
    const dcrw_views *p = &m->p;
    const int lstm = !d->cnn, Us = enc_row_floats(d);
    weight_spec none = {NULL, 0, 0, 0},
                all[PW_COUNT] = {
                    {p->dec_wih, d->Z, 4 * d->D, d->Zw},
                    {p->dec_whh, d->D, 4 * d->D, d->D},
                    {p->write_w, d->D, d->Wout, d->D},
                    {p->watt_w, d->D, 5, d->D},
                    {p->ratt_w, d->cls ? d->E : d->D, 5, d->cls ? d->E : d->D},
                    {lstm ? p->enc_wih + enc_row_col(d) : NULL, Us, 4 * d->E, d->Rin},
                    {lstm && !d->ra ? p->enc_wih : NULL, d->P, 4 * d->E, d->Rin},
                    {p->enc_whh, d->E, 4 * d->E, d->E},
                    {p->mu_w, d->Q, d->Z, d->Qw},
                    {p->ls_w, d->Q, d->Z, d->Qw},
                };
    *s = all[id].w ? all[id] : none;
    return s->w != NULL;
}

/* The weights a bf16 model multiplies in bf16: all but the attention's,
 * whose 5 outputs make products too small to gain. */
static int bf16_weight(int id) {
    return id != PW_WATT && id != PW_RATT;
}
/* ... and those a backward multiplies by (dY·W): not the hoisted x columns,
 * whose input has no gradient */
static int bf16_backward_weight(int id) {
    return bf16_weight(id) && id != PW_ENC_X;
}

/* 64-byte aligned pieces of one block: the offset of each, then the total */
static int carve_bytes(size_t *total, size_t n, size_t *off) {
    *off = *total;
    if (dcrw_add_size(n, 63, &n)) return -1;
    return dcrw_add_size(*total, n & ~(size_t)63, total);
}

static atomic_int conv2x_on = 1;

int dcrw_pass_set_conv2x(int on) {
    return atomic_exchange(&conv2x_on, on != 0);
}

/* The shape of m's CNN for one image (the batch does not matter here) */
static cnn_shape cnn_shape_of(const dcrw_model *m) {
    const dcrw_dims *d = &m->d;
    const cnn_shape cs = {1, d->Cin, d->ch, d->cw, d->K1, d->K2};
    return cs;
}

/* The floats of m's expanded conv2 weight, 0 if its CNN has no dense
 * stage 2 (or m no CNN) */
static size_t conv2x_floats(const dcrw_model *m) {
    if (!m->d.cnn || !atomic_load(&conv2x_on)) return 0;
    const cnn_shape cs = cnn_shape_of(m);
    return dcrw_cnn_wx_floats(&cs);
}

int dcrw_pass_weights_wanted(const dcrw_model *m, int path) {
    return path >= 0 || m->precision == DCRW_PRECISION_BF16 || conv2x_floats(m) > 0;
}

int dcrw_pass_weights_create(pass_weights **out, const dcrw_model *m, int path, int backward) {
    *out = NULL;
    pass_weights *pw = dcrw_calloc(1, sizeof *pw);
    if (!pw) return DCRW_ENOMEM;
    pw->m = m;
    pw->path = path;
    const int bf16 = m->precision == DCRW_PRECISION_BF16;
    size_t off[3][PW_COUNT] = {{0}}, total = 0;
    int overflow = 0;
    for (int i = 0; i < PW_COUNT; i++) {
        weight_spec s;
        if (!weight_spec_of(m, i, &s)) continue;
        if (path >= 0)
            overflow |= carve_bytes(
                &total, dcrw_pgemm_pack_floats((pgemm_path)path, s.k, s.n) * sizeof(float),
                &off[0][i]);
        if (bf16 && bf16_weight(i))
            overflow |= carve_bytes(&total, dcrw_bf16_pack_words(s.k, s.n) * 4, &off[1][i]);
        if (bf16 && backward && bf16_backward_weight(i))
            overflow |= carve_bytes(&total, dcrw_bf16_pack_words(s.n, s.k) * 4, &off[2][i]);
    }
    size_t off_conv2x = 0;
    const size_t n_conv2x = conv2x_floats(m);
    if (n_conv2x)
        overflow |= n_conv2x > SIZE_MAX / sizeof(float) ||
                    carve_bytes(&total, n_conv2x * sizeof(float), &off_conv2x);
    if (overflow) {
        dcrw_free(pw);
        return dcrw_fail(DCRW_EINVAL, "the packed weights' size overflows");
    }
    if (!(pw->block = dcrw_alloc((pw->bytes = total ? total : 64)))) {
        dcrw_free(pw);
        return DCRW_ENOMEM;
    }
    for (int i = 0; i < PW_COUNT; i++) {
        weight_spec s;
        if (!weight_spec_of(m, i, &s)) continue;
        if (path >= 0) {
            pw->buf[i] = (float *)(void *)(pw->block + off[0][i]);
            dcrw_pgemm_describe(&pw->b[i], (pgemm_path)path, s.k, s.n, pw->buf[i]);
        }
        if (bf16 && bf16_weight(i))
            dcrw_bf16_describe(&pw->bt[i], s.k, s.n, (uint32_t *)(void *)(pw->block + off[1][i]));
        if (bf16 && backward && bf16_backward_weight(i))
            dcrw_bf16_describe(&pw->bn[i], s.n, s.k, (uint32_t *)(void *)(pw->block + off[2][i]));
    }
    if (n_conv2x) {
        const cnn_shape cs = cnn_shape_of(m);
        pw->conv2x = (float *)(void *)(pw->block + off_conv2x);
        dcrw_cnn_dense_describe(&cs, pw->conv2x, path, &pw->conv2);
    }
    pw->bf16_grads = bf16 && backward;
    *out = pw;
    return DCRW_OK;
}

void dcrw_pass_weights_destroy(pass_weights *pw) {
    if (!pw) return;
    dcrw_free(pw->block);
    dcrw_free(pw);
}

void dcrw_pass_weights_pack(pass_weights *pw, int decoder_only, int part, int parts) {
    if (pw->conv2x && !decoder_only) {
        const cnn_shape cs = cnn_shape_of(pw->m);
        dcrw_cnn_wx_build(&cs, pw->m->p.conv2_w, pw->conv2x, part, parts);
    }
    for (int i = 0; i < PW_COUNT; i++) {
        weight_spec s;
        if (!weight_spec_of(pw->m, i, &s)) continue;
        if (decoder_only && i != PW_DEC_WIH && i != PW_DEC_WHH && i != PW_WRITE && i != PW_WATT)
            continue;
        /* a weight with a bf16 pack is never read from the float32 one */
        if (pw->bt[i].n) {
            dcrw_bf16_pack_part(1, s.k, s.n, s.w, s.ldw, (uint32_t *)pw->bt[i].panels, part, parts);
        } else if (pw->path >= 0) {
            dcrw_pgemm_pack_part((pgemm_path)pw->path, 1, s.k, s.n, s.w, s.ldw, pw->buf[i], part,
                                 parts);
        }
        if (pw->bn[i].n)
            dcrw_bf16_pack_part(0, s.n, s.k, s.w, s.ldw, (uint32_t *)pw->bn[i].panels, part, parts);
    }
}
