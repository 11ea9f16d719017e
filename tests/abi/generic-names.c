/* A program with functions of its own under the names the library's
 * internal modules used to export (adam_update, dense_forward, ...). It is
 * linked with every member of libdcrw.a (--whole-archive), so a library
 * that still defined one of these names would fail to link with "multiple
 * definition"; then it checks that its calls reach its own functions and
 * that the library still works beside them. */
#include <stdio.h>

#include <dcrw/dcrw.h>

#define GENERIC_NAMES(X)                                                                           \
    X(adam_update)                                                                                 \
    X(bernoulli_backward)                                                                          \
    X(bernoulli_loss)                                                                              \
    X(bias_rows)                                                                                   \
    X(bias_rows_backward)                                                                          \
    X(blas_single_thread)                                                                          \
    X(ckpt_copy_tensor)                                                                            \
    X(ckpt_model_from_file)                                                                        \
    X(ckpt_write)                                                                                  \
    X(cnn_backward)                                                                                \
    X(cnn_forward)                                                                                 \
    X(cnn_out_features)                                                                            \
    X(cnn_saved_floats)                                                                            \
    X(cnn_scratch_floats)                                                                          \
    X(conv3x3_relu_backward)                                                                       \
    X(conv3x3_relu_backward_cols)                                                                  \
    X(conv3x3_relu_forward)                                                                        \
    X(conv3x3_relu_forward_cols)                                                                   \
    X(conv3x3_scratch_floats)                                                                      \
    X(copy_rows)                                                                                   \
    X(dense_backward)                                                                              \
    X(dense_forward)                                                                               \
    X(fb_aux_floats)                                                                               \
    X(fb_filters_backward)                                                                         \
    X(fb_filters_forward)                                                                          \
    X(fb_read_backward)                                                                            \
    X(fb_read_forward)                                                                             \
    X(fb_read_scratch_floats)                                                                      \
    X(fb_windows)                                                                                  \
    X(fb_write_backward)                                                                           \
    X(fb_write_forward)                                                                            \
    X(fb_write_scratch_floats)                                                                     \
    X(file_open_read)                                                                              \
    X(file_temp_commit)                                                                            \
    X(file_temp_create)                                                                            \
    X(file_temp_discard)                                                                           \
    X(grad_norm)                                                                                   \
    X(grad_scale)                                                                                  \
    X(latent_backward)                                                                             \
    X(latent_kl)                                                                                   \
    X(latent_sample)                                                                               \
    X(lstm_cell_backward)                                                                          \
    X(lstm_cell_forward)                                                                           \
    X(maxpool2_backward)                                                                           \
    X(maxpool2_forward)                                                                            \
    X(pass_backward)                                                                               \
    X(pass_create)                                                                                 \
    X(pass_destroy)                                                                                \
    X(pass_draw_noise)                                                                             \
    X(pass_forward)                                                                                \
    X(pass_generate)                                                                               \
    X(pool_create)                                                                                 \
    X(pool_destroy)                                                                                \
    X(pool_run)                                                                                    \
    X(pool_size)                                                                                   \
    X(runner_backward)                                                                             \
    X(runner_create)                                                                               \
    X(runner_destroy)                                                                              \
    X(runner_forward)                                                                              \
    X(runner_generate)                                                                             \
    X(sigmoid_array)                                                                               \
    X(st_find)                                                                                     \
    X(st_free)                                                                                     \
    X(st_meta)                                                                                     \
    X(st_parse)                                                                                    \
    X(st_read)                                                                                     \
    X(st_write_atomic)                                                                             \
    X(xhat_rows)                                                                                   \
    X(xhat_rows_backward)

/* each returns its own number: a call that reached another definition
 * would return something else */
#define ID(name) id_##name,
enum { GENERIC_NAMES(ID) n_names };
#define DEFINE(name)                                                                               \
    int name(void);                                                                                \
    int name(void) {                                                                               \
        return 1000 + id_##name;                                                                   \
    }
GENERIC_NAMES(DEFINE)

#define ENTRY(name) {#name, name, 1000 + id_##name},
static const struct {
    const char *name;
    int (*fn)(void);
    int id;
} own[] = {GENERIC_NAMES(ENTRY)};

int main(void) {
    dcrw_config cfg;
    dcrw_model *m = NULL;
    int rc, bad = 0;
    for (int i = 0; i < n_names; i++) {
        if (own[i].fn() != own[i].id) {
            printf("%s() is not this program's\n", own[i].name);
            bad = 1;
        }
    }
    /* the library's own modules still run beside them */
    if ((rc = dcrw_config_preset(&cfg, DCRW_PRESET_DRAW)) ||
        (rc = dcrw_model_create(&m, &cfg, 1))) {
        printf("libdcrw: %s (%s)\n", dcrw_strerror(rc), dcrw_last_error());
        return 1;
    }
    dcrw_model_destroy(m);
    if (!bad)
        printf("%d generic names defined by the program beside libdcrw %s\n", n_names,
               dcrw_version_string());
    return bad;
}
