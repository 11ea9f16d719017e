/*
 * libdcrw: DRAW and DCRW sequential variational autoencoders in C.
 *
 * Copyright © 2026, the libdcrw authors. BSD-2-Clause, see COPYING.
 *
 * This is the only public header. It is C99, includes nothing but <stddef.h>
 * and <stdint.h>, and can be used from C++ as is. The model it computes is
 * defined in doc/MODEL.md (equations, loss, parameter names, checkpoint
 * format); the function contracts are stated here, next to each declaration.
 *
 * Conventions that hold for every function below:
 *  - Fallible functions return DCRW_OK (0) or a negative DCRW_E* code.
 *    dcrw_strerror() names the code; dcrw_last_error() has the detail of the
 *    last failure in the calling thread.
 *  - All tensors are float32, row-major. Images are channel-major then
 *    row-major (x[c][y][x]); a batch of B images is B*P floats. Noise is
 *    time-major, T*B*Z floats.
 *  - The caller owns every buffer it passes; the library never keeps a
 *    pointer to one after the call returns and never writes outside it.
 *  - A failed call leaves its output buffers in an unspecified state and
 *    every handle unchanged and usable, unless the function says otherwise.
 *  - Thread safety: a dcrw_model may be used by several threads at once for
 *    the functions that take a const dcrw_model *; a dcrw_trainer and the
 *    model it trains belong to one thread at a time.
 */
#ifndef DCRW_DCRW_H
#define DCRW_DCRW_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef DCRW_API
#if defined(_WIN32)
#define DCRW_API
#elif defined(__GNUC__) && __GNUC__ >= 4
#define DCRW_API __attribute__((visibility("default")))
#else
#define DCRW_API
#endif
#endif

/* ------------------------------------------------------------------------ */
/** @name Version
 * The build reads these three macros back to set the shared object's
 * version; the major number is its soname (libdcrw.so.MAJOR). A program can
 * compare DCRW_VERSION (the header it was built with) to dcrw_version()
 * (the library it runs with) to detect a mismatch. @{ */
#define DCRW_VERSION_MAJOR 0
#define DCRW_VERSION_MINOR 1
#define DCRW_VERSION_PATCH 0
/** (major << 16) | (minor << 8) | patch */
#define DCRW_VERSION                                                                                \
    ((DCRW_VERSION_MAJOR << 16) | (DCRW_VERSION_MINOR << 8) | DCRW_VERSION_PATCH)

/** The library's version, encoded as DCRW_VERSION. */
DCRW_API unsigned dcrw_version(void);
/** The library's version as "MAJOR.MINOR.PATCH"; a static string. */
DCRW_API const char *dcrw_version_string(void);
/** @} */

/* ------------------------------------------------------------------------ */
/** @name Errors @{ */
enum {
    DCRW_OK = 0,
    DCRW_EINVAL = -1,     /**< an argument is NULL, out of range or of the wrong size */
    DCRW_ENOMEM = -2,     /**< an allocation failed */
    DCRW_EIO = -3,        /**< a file could not be opened, read, written or renamed */
    DCRW_EFORMAT = -4,    /**< a file is malformed (header, JSON, offsets, magic) */
    DCRW_ETRUNCATED = -5, /**< a file ends before the data its header declares */
    DCRW_ESHAPE = -6,     /**< a tensor or data set has a shape the model does not accept */
    DCRW_ENOTFOUND = -7,  /**< a required tensor or metadata key is missing; an unknown name */
    DCRW_EUNSUPPORTED = -8, /**< a valid file this version cannot use (dtype, format version) */
    DCRW_ECONFIG = -9,    /**< a configuration is invalid (the message names the field) */
    DCRW_ENUMERIC = -10   /**< a loss, gradient or input is not finite */
};

/** A short static description of an error code ("invalid argument"); never NULL. */
DCRW_API const char *dcrw_strerror(int code);
/**
 * The detail of the last failure in the calling thread, for example
 * "enc.conv1.weight: expected [32,2,3,3], file has [32,1,3,3]". The string
 * is thread-local, valid until the next failing call in the same thread, and
 * empty if nothing has failed yet. Successful calls do not clear it.
 */
DCRW_API const char *dcrw_last_error(void);
/** @} */

/* ------------------------------------------------------------------------ */
/** @name Configuration @{ */

/** The four architectures of MODEL.md §2. Append-only. */
typedef enum dcrw_preset {
    DCRW_PRESET_DRAW = 0,        /**< LSTM encoder, read N=2, write N=5, T=64 */
    DCRW_PRESET_DRAW_NOATTN = 1, /**< LSTM encoder, no attention, T=64 */
    DCRW_PRESET_DCRW = 2,        /**< CNN encoder through a read window N=7, write N=5, T=10 */
    DCRW_PRESET_DCRW_NOREAD = 3  /**< CNN encoder on the whole image once, write N=5, T=10 */
} dcrw_preset;

enum { DCRW_ENCODER_LSTM = 0, DCRW_ENCODER_CNN = 1 };

/**
 * A model's shape. Set `size` to sizeof(dcrw_config) before passing it in,
 * so that later versions can append fields. dcrw_config_preset() fills every
 * field; change what you need, then dcrw_config_validate() checks it.
 * Sizes a configuration does not use (enc_size of a CNN encoder, read_n
 * without read attention, conv1/conv2 of an LSTM encoder) are ignored and
 * may be 0.
 */
typedef struct dcrw_config {
    uint32_t size;    /**< sizeof(dcrw_config), set by the caller */
    int32_t channels; /**< C, 1..64 (MNIST: 1) */
    int32_t height;   /**< H, 1..4096 (MNIST: 28) */
    int32_t width;    /**< W, 1..4096 (MNIST: 28) */
    int32_t glimpses; /**< T, 1..4096 */
    int32_t enc_size; /**< E, encoder LSTM cells, 1..16384 (LSTM encoder only) */
    int32_t dec_size; /**< D, decoder LSTM cells, 1..16384 */
    int32_t z_size;   /**< Z, latent size per glimpse, 1..16384 */
    int32_t read_n;   /**< N_r, read window side, 1..1024 (>= 4 with a CNN encoder) */
    int32_t write_n;  /**< N_w, write window side, 1..1024 */
    int32_t conv1;    /**< K1, channels of the first convolution, 1..4096 (CNN only) */
    int32_t conv2;    /**< K2, channels of the second convolution, 1..4096 (CNN only) */
    int32_t encoder;  /**< DCRW_ENCODER_LSTM or DCRW_ENCODER_CNN */
    int32_t read_attention;  /**< 1: Gaussian read window; 0: read the whole image */
    int32_t write_attention; /**< 1: Gaussian write window; 0: write the whole canvas */
    float canvas_init;       /**< κ, the initial canvas logit (MODEL.md §4); finite, default 0 */
} dcrw_config;

/**
 * Fill @p cfg with the MNIST defaults of @p preset (1×28×28, MODEL.md §2).
 * Sets cfg->size. @return DCRW_OK, or DCRW_EINVAL for a NULL @p cfg or an
 * unknown preset.
 */
DCRW_API int dcrw_config_preset(dcrw_config *cfg, dcrw_preset preset);

/**
 * Check every field of @p cfg, and that no buffer size the model derives from
 * it overflows. @return DCRW_OK; DCRW_EINVAL for NULL or a wrong cfg->size;
 * DCRW_ECONFIG with a message naming the first bad field.
 */
DCRW_API int dcrw_config_validate(const dcrw_config *cfg);

/**
 * Map "draw", "draw-noattn", "dcrw" or "dcrw-noread" to its preset.
 * @return DCRW_OK, DCRW_EINVAL for NULL arguments, DCRW_ENOTFOUND otherwise.
 */
DCRW_API int dcrw_preset_from_name(const char *name, dcrw_preset *out);

/** The name of a preset ("draw", ...), or NULL for an unknown value. */
DCRW_API const char *dcrw_preset_name(dcrw_preset preset);
/** @} */

/* ------------------------------------------------------------------------ */
/** @name Model
 * A model owns its configuration and one flat float32 buffer holding every
 * parameter tensor of MODEL.md §7, in that table's order. @{ */
typedef struct dcrw_model dcrw_model;

/**
 * Create a model with freshly initialised parameters.
 *
 * Initialisation (deterministic for a @p seed): every weight and bias
 * U(−k, k) with k = 1/sqrt(fan_in), as PyTorch's Linear, LSTM and Conv2d
 * do; the LSTM forget-gate biases are then set to 1 so that early in
 * training the cell keeps its state instead of forgetting it every step
 * (Jozefowicz et al. 2015), which matters with 64 glimpses; the attention
 * layers' weights are U(−0.01, 0.01) and their biases 0, so every window
 * starts centred on the image, covering it, with γ = 1.
 *
 * @param out receives the new model; set to NULL on failure.
 * @return DCRW_OK, DCRW_EINVAL (NULL argument), DCRW_ECONFIG, DCRW_ENOMEM.
 */
DCRW_API int dcrw_model_create(dcrw_model **out, const dcrw_config *cfg, uint64_t seed);

/**
 * Load a safetensors checkpoint (MODEL.md §8) written by dcrw_model_save(),
 * dcrw_trainer_save() or any other writer of the format. The file is
 * validated before it is used: header, JSON, dtypes, offsets, the
 * configuration in the metadata, and the shape of every required tensor.
 * Tensors and metadata keys the model does not use are ignored.
 *
 * @return DCRW_OK, DCRW_EINVAL, DCRW_EIO, DCRW_EFORMAT, DCRW_ETRUNCATED,
 *         DCRW_ESHAPE, DCRW_ENOTFOUND, DCRW_EUNSUPPORTED, DCRW_ECONFIG,
 *         DCRW_ENOMEM. @p out is set to NULL on failure.
 */
DCRW_API int dcrw_model_load(dcrw_model **out, const char *path);

/**
 * Save the configuration and parameters to @p path as safetensors. The file
 * is written to a temporary file in the same folder, flushed to disk and
 * renamed over @p path, so @p path holds either the old or the new file,
 * never a partial one. @return DCRW_OK, DCRW_EINVAL, DCRW_EIO, DCRW_ENOMEM.
 */
DCRW_API int dcrw_model_save(const dcrw_model *m, const char *path);

/** Free a model. NULL is a no-op. A trainer of @p m must be destroyed first. */
DCRW_API void dcrw_model_destroy(dcrw_model *m);

/** Copy the model's configuration into @p out (out->size is set). */
DCRW_API int dcrw_model_config(const dcrw_model *m, dcrw_config *out);

/** P = channels·height·width, the floats of one image; 0 for NULL. */
DCRW_API size_t dcrw_model_input_size(const dcrw_model *m);

/** The number of parameter tensors (MODEL.md §7 rows present); 0 for NULL. */
DCRW_API size_t dcrw_model_param_count(const dcrw_model *m);

/** The total number of parameter floats (the size of the flat buffer); 0 for NULL. */
DCRW_API size_t dcrw_model_param_floats(const dcrw_model *m);

/**
 * Tensor @p i (0 <= i < dcrw_model_param_count()) in MODEL.md §7 order.
 * Every output pointer may be NULL. @p name, @p shape and @p data are views
 * into the model, valid until it is destroyed; @p data may be written to
 * (for example to load weights from elsewhere), but not while another
 * thread uses the model. @return DCRW_OK, DCRW_EINVAL.
 */
DCRW_API int dcrw_model_param(const dcrw_model *m, size_t i, const char **name, int *ndim,
                              const int64_t **shape, float **data);

/**
 * Find a tensor by its MODEL.md §7 name. @p data and @p count may be NULL.
 * @return DCRW_OK, DCRW_EINVAL, DCRW_ENOTFOUND (no such tensor in this model).
 */
DCRW_API int dcrw_model_find_param(const dcrw_model *m, const char *name, float **data,
                                   size_t *count);

/**
 * The whole parameter buffer (dcrw_model_param_floats() floats, tensors in
 * MODEL.md §7 order, each row-major). NULL for a NULL model.
 */
DCRW_API float *dcrw_model_params(const dcrw_model *m, size_t *count);

/**
 * Sizes of the buffers the operations below take for one image, so that a
 * binding can allocate them: r_size = floats of one read (2·C·N_r², or 2P
 * without read attention), z_size = Z, dec_size = D, glimpses = T.
 */
typedef struct dcrw_sizes {
    uint32_t size;    /**< sizeof(dcrw_sizes), set by the caller */
    size_t input;     /**< P */
    size_t read;      /**< floats of one read r_t */
    size_t z;         /**< Z */
    size_t dec;       /**< D */
    size_t glimpses;  /**< T */
} dcrw_sizes;
/** Fill @p out (out->size must be set by the caller). @return DCRW_OK, DCRW_EINVAL. */
DCRW_API int dcrw_model_sizes(const dcrw_model *m, dcrw_sizes *out);
/** @} */

/* ------------------------------------------------------------------------ */
/** @name Operations over caller buffers
 * B is the batch size, >= 1. Every buffer is float32, row-major, as sized
 * below, and must not overlap another of the same call. Inputs must be
 * finite; a non-finite input gives DCRW_ENUMERIC. These functions take a
 * const model and may run in several threads at once; each allocates its
 * own scratch for the call. They return DCRW_OK, DCRW_EINVAL (NULL model
 * or required buffer, B < 1), DCRW_ENUMERIC or DCRW_ENOMEM. @{ */

/**
 * The read operation of MODEL.md §3.4 with the model's read attention.
 * @param x, xhat [B×P] image and error image
 * @param h_dec   [B×D] decoder state that places the window (ignored, may be
 *                NULL, without read attention)
 * @param r       [B×2·C·N_r²] out: γ·FY·x_c·FXᵀ for the channels of x, then of xhat;
 *                [B×2P] = [x, xhat] without read attention
 */
DCRW_API int dcrw_read(const dcrw_model *m, int B, const float *x, const float *xhat,
                       const float *h_dec, float *r);

/**
 * The write operation of MODEL.md §3.4: the canvas increment of decoder
 * state @p h_dec [B×D] into @p delta [B×P].
 */
DCRW_API int dcrw_write(const dcrw_model *m, int B, const float *h_dec, float *delta);
/** @} */

/* ------------------------------------------------------------------------ */
/** @name Data
 * A data set of images held in memory as floats in [0, 1], with optional
 * labels. It is read-only after loading and may be shared between threads. @{ */
typedef struct dcrw_dataset dcrw_dataset;

/** Binarization of dcrw_dataset_batch(). */
enum {
    DCRW_BINARIZE_NONE = 0,     /**< grey levels as stored, in [0, 1] */
    DCRW_BINARIZE_DYNAMIC = 1,  /**< each pixel 1 with probability its grey level, seeded */
    DCRW_BINARIZE_THRESHOLD = 2 /**< 1 where the grey level is above 0.5 */
};

/**
 * Read IDX files (the MNIST format), plain or gzip-compressed (detected from
 * the content, not the name). The image file must hold unsigned bytes with
 * 3 dimensions (count, height, width) or 4 (count, channels, height, width);
 * values are divided by 255. @p labels_path may be NULL; if given it must
 * hold one unsigned byte per image. Malformed headers, truncated data, zero
 * dimensions and sizes above 2^31 values are refused.
 *
 * @return DCRW_OK, DCRW_EINVAL, DCRW_EIO, DCRW_EFORMAT, DCRW_ETRUNCATED,
 *         DCRW_ESHAPE (label count differs), DCRW_EUNSUPPORTED (IDX type
 *         other than unsigned byte, or gzip without zlib support), DCRW_ENOMEM.
 */
DCRW_API int dcrw_dataset_load_idx(dcrw_dataset **out, const char *images_path,
                                   const char *labels_path);

/** Number of images; 0 for NULL. */
DCRW_API size_t dcrw_dataset_count(const dcrw_dataset *d);

/** Image shape. Any output pointer may be NULL. @return DCRW_OK, DCRW_EINVAL. */
DCRW_API int dcrw_dataset_shape(const dcrw_dataset *d, int *channels, int *height, int *width);

/**
 * The label of image @p i, or −1 if the data set has no labels or @p i is
 * out of range.
 */
DCRW_API int dcrw_dataset_label(const dcrw_dataset *d, size_t i);

/**
 * Gather images @p indices[0..B-1] into @p x [B×P]. With
 * DCRW_BINARIZE_DYNAMIC, pixel p of batch row b is drawn from a generator
 * keyed by (@p seed, indices[b], p): the same seed and index give the same
 * bits whatever the batch composition, which makes runs reproducible.
 * @return DCRW_OK, DCRW_EINVAL (NULL, B < 1, an index out of range, unknown
 *         @p binarize).
 */
DCRW_API int dcrw_dataset_batch(const dcrw_dataset *d, const size_t *indices, int B, int binarize,
                                uint64_t seed, float *x);

/** The whole image buffer, count×P floats in [0, 1]; NULL for NULL. */
DCRW_API const float *dcrw_dataset_images(const dcrw_dataset *d);

/** Free a data set; NULL is a no-op. */
DCRW_API void dcrw_dataset_destroy(dcrw_dataset *d);
/** @} */

#ifdef __cplusplus
}
#endif
#endif /* DCRW_DCRW_H */
