/**
 * @file
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
 *  - Structs with a `size` first field are versioned: set it to the
 *    struct's sizeof before the call, so that a later library can append
 *    fields without breaking a program built against this header.
 *
 * Threads and memory:
 *  - A dcrw_model may be used by several threads at once through the
 *    functions that take a const dcrw_model *, as long as no thread changes
 *    it at the same time (a trainer's dcrw_trainer_apply() or
 *    dcrw_trainer_resume(), or a write through a parameter view). A
 *    dcrw_trainer and the model it trains belong to one thread at a time.
 *    A dcrw_dataset is read-only and may be shared freely.
 *  - Each call splits its batch over up to dcrw_get_threads() threads of
 *    its own (a trainer: its train config's threads) and returns when they
 *    are done; see @ref threads_group "Threads".
 *  - The whole-pass operations (encode, decode, reconstruct, evaluate and
 *    their variants) keep their workspace in the calling thread between
 *    calls; see dcrw_workspace_release() for exactly how long. A trainer
 *    keeps its own until dcrw_trainer_destroy(). Nothing else outlives the
 *    call that allocated it.
 *
 * A training and evaluation loop (error handling shortened to the first
 * calls; every function returns a DCRW_E* code to check the same way):
 * @code
 * dcrw_config cfg;
 * dcrw_config_preset(&cfg, DCRW_PRESET_DRAW);
 * dcrw_config_set(&cfg, "glimpses", "32");          // or cfg.glimpses = 32
 * dcrw_model *m;
 * dcrw_dataset *train, *test;
 * if (dcrw_model_create(&m, &cfg, 42) != DCRW_OK ||
 *     dcrw_dataset_load_idx(&train, "train-images-idx3-ubyte.gz", NULL) != DCRW_OK ||
 *     dcrw_dataset_load_idx(&test, "t10k-images-idx3-ubyte.gz", NULL) != DCRW_OK) {
 *     fprintf(stderr, "%s\n", dcrw_last_error());
 *     return 1;
 * }
 * dcrw_train_config tc;
 * dcrw_train_config_default(&tc);
 * dcrw_trainer *t;
 * dcrw_trainer_create(&t, m, &tc);
 * enum { B = 100 };
 * const size_t P = dcrw_model_input_size(m), n = dcrw_dataset_count(train);
 * float *x = malloc(B * P * sizeof *x);
 * size_t idx[B];
 * for (uint64_t step = 0; step < 20000; step++) {
 *     for (int b = 0; b < B; b++) idx[b] = (step * B + b) % n;
 *     dcrw_dataset_batch(train, idx, B, DCRW_BINARIZE_DYNAMIC, step, x);
 *     dcrw_loss loss;
 *     if (dcrw_trainer_step(t, B, x, NULL, &loss) != DCRW_OK) break;
 * }
 * dcrw_trainer_save(t, "run.safetensors");    // dcrw_trainer_resume() goes on from here
 * dcrw_trainer_destroy(t);
 *
 * // The bound L and the importance-weighted bound (K = 100) per test image.
 * // The noise is keyed by each image's index (first + b), so a split into
 * // other batches, or across processes, draws the same noise.
 * double lx[B], lz[B], iw[B], sum_l = 0, sum_iw = 0;
 * const size_t nt = dcrw_dataset_count(test);
 * for (size_t first = 0; first < nt; first += B) {
 *     const int nb = nt - first < B ? (int)(nt - first) : B;
 *     for (int b = 0; b < nb; b++) idx[b] = first + b;
 *     dcrw_dataset_batch(test, idx, nb, DCRW_BINARIZE_DYNAMIC, 7, x);
 *     if (dcrw_evaluate_images_part(m, nb, x, 1, first, lx, lz) != DCRW_OK ||
 *         dcrw_evaluate_iw(m, nb, x, 100, 1, first, iw, NULL) != DCRW_OK)
 *         break;
 *     for (int b = 0; b < nb; b++) sum_l += lx[b] + lz[b], sum_iw += iw[b];
 * }
 * printf("L = %.2f, L_100 = %.2f nats\n", sum_l / nt, sum_iw / nt);
 * free(x);
 * dcrw_model_destroy(m);
 * dcrw_dataset_destroy(train);
 * dcrw_dataset_destroy(test);
 * @endcode
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
/** Changes when the ABI breaks; the soname's number. */
#define DCRW_VERSION_MAJOR 0
/** Changes when functions are added. */
#define DCRW_VERSION_MINOR 6
/** Changes for fixes that leave the API alone. */
#define DCRW_VERSION_PATCH 5
/** (major << 16) | (minor << 8) | patch */
#define DCRW_VERSION ((DCRW_VERSION_MAJOR << 16) | (DCRW_VERSION_MINOR << 8) | DCRW_VERSION_PATCH)

/** @return the library's version, encoded as DCRW_VERSION. */
DCRW_API unsigned dcrw_version(void);
/** @return the library's version as "MAJOR.MINOR.PATCH", a static string. */
DCRW_API const char *dcrw_version_string(void);
/** @} */

/* ------------------------------------------------------------------------ */
/** @name Errors
 * @{ */
/** Status codes; every fallible function returns one of these. */
enum {
    DCRW_OK = 0,            /**< success */
    DCRW_EINVAL = -1,       /**< an argument is NULL, out of range or of the wrong size */
    DCRW_ENOMEM = -2,       /**< an allocation failed */
    DCRW_EIO = -3,          /**< a file could not be opened, read, written or renamed */
    DCRW_EFORMAT = -4,      /**< a file is malformed (header, JSON, offsets, magic) */
    DCRW_ETRUNCATED = -5,   /**< a file ends before the data its header declares */
    DCRW_ESHAPE = -6,       /**< a tensor or data set has a shape the model does not accept */
    DCRW_ENOTFOUND = -7,    /**< a required tensor or metadata key is missing; an unknown name */
    DCRW_EUNSUPPORTED = -8, /**< a valid file this version cannot use (dtype, format version) */
    DCRW_ECONFIG = -9,      /**< a configuration is invalid (the message names the field) */
    DCRW_ENUMERIC = -10     /**< a loss, gradient or input is not finite */
};

/**
 * @return a short static description of error code @p code ("invalid
 *         argument"), "unknown error code" for another value; never NULL.
 */
DCRW_API const char *dcrw_strerror(int code);
/**
 * @return the detail of the last failure in the calling thread, for
 * example "enc.conv1.weight: expected [32,2,3,3], file has [32,1,3,3]". The
 * string is thread-local, valid until the next failing call in the same
 * thread, and empty if nothing has failed yet. Successful calls do not
 * clear it.
 */
DCRW_API const char *dcrw_last_error(void);
/** @} */

/* ------------------------------------------------------------------------ */
/** @name Threads
 * @anchor threads_group
 * The library splits a batch into chunks that run in parallel, each a whole
 * pass through time, on a pool of threads; the calling thread runs one
 * chunk and waits for the others, so every call is synchronous. OpenBLAS
 * runs single-threaded inside each chunk (the library sets that
 * process-wide when a call runs more than one chunk and when a trainer is
 * created, since on the small per-step products that is faster than
 * OpenBLAS's own threads). Every call
 * also works in a child made by fork() after the parent used several
 * threads (as Python's multiprocessing does by default): a thread pool the
 * child inherited without its threads is replaced by a new one on first
 * use. @{ */

/**
 * Set the number of threads the const operations (encode, decode,
 * reconstruct, evaluate) use, and trainers whose train config says 0.
 * 0 (the default) means the CPUs this process may run on. Process-wide;
 * takes effect for calls and trainers that start after it.
 * @return DCRW_OK, or DCRW_EINVAL for n outside [0, 1024].
 */
DCRW_API int dcrw_set_threads(int n);

/** @return the number of threads dcrw_set_threads() currently implies (>= 1). */
DCRW_API int dcrw_get_threads(void);

/**
 * Free the calling thread's workspace of the whole-pass operations now.
 *
 * dcrw_encode(), dcrw_decode(), dcrw_reconstruct(), dcrw_evaluate() and
 * their variants each need a workspace: the activations of one pass over
 * their batch (two time steps of them, so its size grows with the batch
 * size B and the model, not with T) and a pool of up to min(B,
 * dcrw_get_threads()) − 1 worker threads. Each calling thread keeps the
 * workspace of its last such call and reuses it when its next call has the
 * same model, B and thread count; a call that differs frees it and makes
 * its own, which the thread then keeps. The workspace is freed when the
 * thread exits (the main thread's at process exit) or calls this function.
 * Destroying a model does not free the workspaces other threads keep for
 * it; they go at those threads' next call or exit. dcrw_read() and
 * dcrw_write() allocate per call and keep nothing. A thread that is done
 * with the library but lives on, or wants the memory back between phases,
 * calls this. Since 0.3.
 */
DCRW_API void dcrw_workspace_release(void);
/** @} */

/* ------------------------------------------------------------------------ */
/** @name Configuration
 * @{ */

/** The architectures of MODEL.md §2 and §9. Append-only. */
typedef enum dcrw_preset {
    DCRW_PRESET_DRAW = 0,         /**< LSTM encoder, read N=2, write N=5, T=64 */
    DCRW_PRESET_DRAW_NOATTN = 1,  /**< LSTM encoder, no attention, T=64 */
    DCRW_PRESET_DCRW = 2,         /**< CNN encoder through a read window N=7, write N=5, T=10 */
    DCRW_PRESET_DCRW_NOREAD = 3,  /**< CNN encoder on the whole image once, write N=5, T=10 */
    DCRW_PRESET_DRAW_CLASSIFY = 4 /**< the attention classifier: 100×100, read N=12, T=8,
                                       K=10 (MODEL.md §9). Since 0.5. */
} dcrw_preset;

/** Values of dcrw_config::encoder: an LSTM encoder (DRAW) or a CNN (DCRW). */
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
    uint32_t size;           /**< sizeof(dcrw_config), set by the caller */
    int32_t channels;        /**< C, 1..64 (MNIST: 1) */
    int32_t height;          /**< H, 1..4096 (MNIST: 28) */
    int32_t width;           /**< W, 1..4096 (MNIST: 28) */
    int32_t glimpses;        /**< T, 1..4096 */
    int32_t enc_size;        /**< E, encoder LSTM cells, 1..16384 (LSTM encoder only) */
    int32_t dec_size;        /**< D, decoder LSTM cells, 1..16384 */
    int32_t z_size;          /**< Z, latent size per glimpse, 1..16384 */
    int32_t read_n;          /**< N_r, read window side, 1..1024 (>= 4 with a CNN encoder) */
    int32_t write_n;         /**< N_w, write window side, 1..1024 */
    int32_t conv1;           /**< K1, channels of the first convolution, 1..4096 (CNN only) */
    int32_t conv2;           /**< K2, channels of the second convolution, 1..4096 (CNN only) */
    int32_t encoder;         /**< DCRW_ENCODER_LSTM or DCRW_ENCODER_CNN */
    int32_t read_attention;  /**< 1: Gaussian read window; 0: read the whole image */
    int32_t write_attention; /**< 1: Gaussian write window; 0: write the whole canvas */
    float canvas_init;       /**< κ, the initial canvas logit (MODEL.md §4); finite, default 0 */
    int32_t classify;        /**< 1: the attention classifier of MODEL.md §9 (an LSTM encoder
                                  with read attention and no decoder). Since 0.5. */
    int32_t classes;         /**< K, the classes: the classifier's (2..65536), or for a
                                  generative model 0 (unconditional, the default) or the
                                  labels it is conditioned on (MODEL.md §10). Since 0.5. */
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
 * Map "draw", "draw-noattn", "dcrw", "dcrw-noread" or "draw-classify" to its preset.
 * @return DCRW_OK, DCRW_EINVAL for NULL arguments, DCRW_ENOTFOUND otherwise.
 */
DCRW_API int dcrw_preset_from_name(const char *name, dcrw_preset *out);

/** @return the name of @p preset ("draw", ...), a static string, or NULL for an unknown value. */
DCRW_API const char *dcrw_preset_name(dcrw_preset preset);
/** @} */

/* ------------------------------------------------------------------------ */
/** @name Configuration fields by name
 * Every field of dcrw_config can be listed, read as text and set from text
 * by its name ("height", "encoder", ...), so that a command line, a
 * settings file or a binding needs no list of its own: a field added in a
 * later version shows up here by itself. The text of a value is the one
 * checkpoints record: decimal integers, "true"/"false", "lstm"/"cnn", and
 * floats with 9 significant digits, always with a '.' decimal point
 * whatever the locale. Since 0.3. @{ */

/** Types of configuration fields (dcrw_config_field()). */
enum {
    DCRW_FIELD_INT = 0,     /**< an int32_t count or size */
    DCRW_FIELD_BOOL = 1,    /**< an int32_t switch, 0 or 1; text "true" or "false" */
    DCRW_FIELD_ENCODER = 2, /**< an int32_t DCRW_ENCODER_*; text "lstm" or "cnn" */
    DCRW_FIELD_FLOAT = 3    /**< a float */
};

/** @return the number of fields of dcrw_config (all but `size`). Since 0.3. */
DCRW_API int dcrw_config_field_count(void);

/**
 * Describe field @p i (0 <= i < dcrw_config_field_count()), in the order
 * of dcrw_config. Every output pointer may be NULL.
 * @param name   receives the field's name, a static string ("height")
 * @param type   receives its DCRW_FIELD_* type
 * @param offset receives offsetof(dcrw_config, field)
 * @param min, max receive the range dcrw_config_validate() accepts when
 *               the model uses the field (a size an architecture does not
 *               use may also be 0, see dcrw_config)
 * @return DCRW_OK, or DCRW_EINVAL for @p i out of range. Since 0.3.
 */
DCRW_API int dcrw_config_field(int i, const char **name, int *type, size_t *offset, double *min,
                               double *max);

/**
 * Set field @p name of @p cfg from the text @p value. Accepted: for an
 * integer, an optional sign and decimal digits, nothing else ("12", not
 * " 12", "12x" or "1e2"); for a switch, "true", "yes", "1" or "false",
 * "no", "0"; for the encoder, "lstm" or "0" and "cnn" or "1"; for a float,
 * a finite number in the "C" locale ("0.5", "-2e-3"). The value must be
 * within the field's range (dcrw_config_field()); a size that only some
 * architectures use may also be 0. Other fields are not looked at, so
 * fields may be set in any order; dcrw_config_validate() then checks the
 * whole. cfg->size must be set (dcrw_config_preset() does).
 * @return DCRW_OK; DCRW_EINVAL for NULL arguments, a cfg->size too small
 *         for the field, or a value that does not parse (the message names
 *         the field and what it takes); DCRW_ENOTFOUND for an unknown name
 *         (the message lists the names); DCRW_ECONFIG for a value out of
 *         the field's range (the message names the field and its range).
 *         On failure @p cfg is unchanged. Since 0.3.
 */
DCRW_API int dcrw_config_set(dcrw_config *cfg, const char *name, const char *value);

/**
 * Write field @p name of @p cfg as text into @p buf (@p len bytes, 32 are
 * always enough), in the form dcrw_config_set() reads back to the same
 * value.
 * @return DCRW_OK; DCRW_EINVAL for NULL arguments, a cfg->size too small
 *         for the field, or a @p len too small for the text (then @p buf
 *         holds "" if @p len > 0); DCRW_ENOTFOUND for an unknown name.
 *         Since 0.3.
 */
DCRW_API int dcrw_config_get(const dcrw_config *cfg, const char *name, char *buf, size_t len);

/**
 * Whether @p a and @p b describe the same model: the same encoder and
 * attention switches and every field that architecture uses equal. Sizes
 * it does not use are ignored (a model's own configuration has them 0).
 * dcrw_trainer_resume() accepts exactly the checkpoints whose
 * configuration is equal to its model's in this sense.
 * @return 1 if equal, 0 if not, DCRW_EINVAL (negative) for NULL or a size
 *         smaller than the first version of dcrw_config (64 bytes).
 *         Since 0.3.
 */
DCRW_API int dcrw_config_equal(const dcrw_config *a, const dcrw_config *b);
/** @} */

/* ------------------------------------------------------------------------ */
/** @name Model
 * A model owns its configuration and one flat float32 buffer holding every
 * parameter tensor of MODEL.md §7, in that table's order. @{ */
/** An opaque model: configuration and parameters. */
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
 * Tensors and metadata keys the model does not use are ignored. The header
 * is checked against the file's size before the data is read, so a file
 * it does not describe exactly costs no more than its header. Only a
 * regular file is read: a FIFO, device or folder is refused at once
 * (DCRW_EIO), without blocking.
 *
 * @return DCRW_OK, DCRW_EINVAL, DCRW_EIO (cannot be read, or not a regular
 *         file), DCRW_EFORMAT (malformed header,
 *         JSON, offsets, or metadata value), DCRW_ETRUNCATED, DCRW_ESHAPE (a
 *         tensor's shape), DCRW_ENOTFOUND (a required tensor or key),
 *         DCRW_EUNSUPPORTED (dtype other than F32, dcrw.format other than
 *         "1"), DCRW_ECONFIG (a metadata value the configuration refuses),
 *         DCRW_ENUMERIC (a NaN or infinity in a tensor), DCRW_ENOMEM.
 *         @p out is set to NULL on failure.
 */
DCRW_API int dcrw_model_load(dcrw_model **out, const char *path);

/**
 * Save the configuration and parameters to @p path as safetensors. The file
 * is written to a temporary file in the same folder (".dcrw-XXXXXX", so a
 * name of up to NAME_MAX bytes can be saved), flushed to disk and renamed
 * over @p path, so @p path holds either the old or the new file, never a
 * partial one. A file that is replaced keeps its mode; a new one gets
 * 0666 less the umask. A model with a NaN or infinite parameter is not
 * saved (dcrw_model_load() would refuse the file): DCRW_ENUMERIC, @p path
 * untouched.
 * @return DCRW_OK, DCRW_EINVAL, DCRW_EIO, DCRW_ENUMERIC, DCRW_ENOMEM.
 */
DCRW_API int dcrw_model_save(const dcrw_model *m, const char *path);

/** Free a model. NULL is a no-op. A trainer of @p m must be destroyed first. */
DCRW_API void dcrw_model_destroy(dcrw_model *m);

/**
 * Copy the model's configuration into @p out. Set out->size to
 * sizeof(dcrw_config) first: the library writes at most out->size bytes
 * (the fields both it and the caller's header know) and sets out->size to
 * the number written. @return DCRW_OK; DCRW_EINVAL for NULL or an
 * out->size smaller than the first version of dcrw_config (64 bytes), and
 * then nothing is written.
 */
DCRW_API int dcrw_model_config(const dcrw_model *m, dcrw_config *out);

/** @return P = channels·height·width, the floats of one image; 0 for NULL. */
DCRW_API size_t dcrw_model_input_size(const dcrw_model *m);

/** @return the number of parameter tensors (MODEL.md §7 rows present); 0 for NULL. */
DCRW_API size_t dcrw_model_param_count(const dcrw_model *m);

/** @return the total number of parameter floats (the size of the flat buffer); 0 for NULL. */
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
 * The whole parameter buffer: dcrw_model_param_floats() floats, tensors in
 * MODEL.md §7 order, each row-major. A view into the model, writable under
 * the rule of dcrw_model_param(). @p count (may be NULL) receives the
 * number of floats.
 * @return the buffer, or NULL (and *count = 0) for a NULL model.
 */
DCRW_API float *dcrw_model_params(const dcrw_model *m, size_t *count);

/**
 * Sizes of the buffers the operations below take for one image, so that a
 * binding can allocate them: r_size = floats of one read (2·C·N_r², or 2P
 * without read attention), z_size = Z, dec_size = D, glimpses = T.
 */
typedef struct dcrw_sizes {
    uint32_t size;   /**< sizeof(dcrw_sizes), set by the caller */
    size_t input;    /**< P */
    size_t read;     /**< floats of one read r_t */
    size_t z;        /**< Z */
    size_t dec;      /**< D */
    size_t glimpses; /**< T */
} dcrw_sizes;
/** Fill @p out (out->size must be set by the caller). @return DCRW_OK, DCRW_EINVAL. */
DCRW_API int dcrw_model_sizes(const dcrw_model *m, dcrw_sizes *out);

/** The arithmetic of a model's products with its weights. Since 0.4. */
typedef enum dcrw_precision {
    DCRW_PRECISION_FLOAT32 = 0, /**< float32 throughout (the default; MODEL.md exactly) */
    /** The large products with the weights (every one but the attention's
     * 5-output dense layers, forward X·Wᵀ and backward dY·W) and, since
     * 0.6.1, the large weight gradients dYᵀ·X take their two operands
     * rounded to bfloat16 (8 significant bits, round to nearest even) and
     * sum in float32; everything else, the parameters and Adam moments (the
     * master copy) stay float32. With
     * AVX-512 BF16 these products do twice the multiply-adds per
     * instruction; the numbers differ from float32 by the roundings (about
     * 2⁻⁹ relative per operand), deterministically. */
    DCRW_PRECISION_BF16 = 1
} dcrw_precision;

/**
 * Choose the precision of @p m's products for every later operation on it
 * (encode, decode, evaluate, and the steps of its trainers); a runtime
 * choice, not saved with the model. Set it while no other thread uses the
 * model. Since 0.4.
 * @return DCRW_OK; DCRW_EINVAL for NULL or an unknown precision;
 *         DCRW_EUNSUPPORTED for DCRW_PRECISION_BF16 on a CPU without
 *         AVX-512 BF16 (where bfloat16 would only be emulated, many times
 *         slower than float32). The model is unchanged on failure.
 */
DCRW_API int dcrw_model_set_precision(dcrw_model *m, int precision);

/** @return @p m's dcrw_precision; DCRW_PRECISION_FLOAT32 for NULL. Since 0.4. */
DCRW_API int dcrw_model_precision(const dcrw_model *m);

/** @return 1 if dcrw_model_set_precision() accepts @p precision on this
 *          CPU, else 0 (an unknown precision included). Since 0.4. */
DCRW_API int dcrw_precision_supported(int precision);
/** @} */

/* ------------------------------------------------------------------------ */
/** @name Operations over caller buffers
 * B is the batch size, >= 1. Every buffer is float32, row-major, as sized
 * below, and must not overlap another of the same call. Inputs must be
 * finite; a non-finite input gives DCRW_ENUMERIC, and so does an output
 * that overflows (parameters finite but huge, as a diverged run leaves
 * them): no function returns DCRW_OK with a NaN or infinity in a result.
 * These functions take a const model and may run in several threads at
 * once (see dcrw_workspace_release() for the memory they keep).
 *
 * Noise. The posterior noise ε of encode, reconstruct and evaluate is the
 * caller's @p eps, or drawn by the library: image b of a batch gets the
 * draws of a generator keyed by (seed, first + b), where the plain calls
 * use seed 0 and first 0 and the *_part calls take both. So the noise of
 * an image depends on its index in the whole set, never on the batch it is
 * in, and the three operations agree with each other for the same (seed,
 * first). A data set evaluated in batches of any size, or split across
 * processes, then gives the same numbers image by image. On a CPU with
 * AVX2 and FMA the products with the weights go through the library's own
 * kernel, which rounds an image's row alike whatever the batch, so the
 * numbers are equal bit for bit; the products that still go through the
 * BLAS (the CNN encoder's convolutions, and every product on older CPUs)
 * may round an image's row differently when they multiply a different
 * number of rows at once (relative differences around 1e-7). Where every
 * product multiplies the same rows the numbers are equal bit for bit
 * anywhere: for example parts of equal size, each evaluated with
 * dcrw_set_threads(1), and the whole set in one call with as many threads
 * as parts. Decode's prior draws work the same way with a stream of their
 * own. @{ */

/**
 * The read operation of MODEL.md §3.4 with the model's read attention.
 * @param x, xhat [B×P] image and error image
 * @param h_dec   [B×D] decoder state that places the window (ignored, may be
 *                NULL, without read attention)
 * @param r       [B×2·C·N_r²] out: γ·FY·x_c·FXᵀ for the channels of x, then of xhat;
 *                [B×2P] = [x, xhat] without read attention
 * @return DCRW_OK; DCRW_EINVAL (NULL model, x, xhat or r, NULL h_dec with
 *         read attention, B < 1); DCRW_ENUMERIC (a NaN or infinity in an
 *         input, or a read that overflows); DCRW_ENOMEM.
 */
DCRW_API int dcrw_read(const dcrw_model *m, int B, const float *x, const float *xhat,
                       const float *h_dec, float *r);

/**
 * The write operation of MODEL.md §3.4: the canvas increment of decoder
 * state @p h_dec [B×D] into @p delta [B×P].
 * @return DCRW_OK; DCRW_EINVAL (NULL model, h_dec or delta, B < 1);
 *         DCRW_ENUMERIC (a NaN or infinity in h_dec, or a delta that
 *         overflows); DCRW_ENOMEM.
 */
DCRW_API int dcrw_write(const dcrw_model *m, int B, const float *h_dec, float *delta);

/**
 * The inference pass of MODEL.md §4 on images @p x [B×P] (values in [0, 1]).
 * @param eps      [T×B×Z] the noise ε, time-major; NULL draws it as
 *                 dcrw_encode_part() with seed 0 and first 0 does (the noise
 *                 dcrw_evaluate() and dcrw_reconstruct() draw too, so the
 *                 three agree); pass zeros for the posterior means.
 * @param z, mu, logsigma [T×B×Z] out: z_t, μ_t and log σ_t of every glimpse;
 *                 any may be NULL. For dcrw-noread μ and log σ repeat for
 *                 every t (the encoder runs once).
 * @return DCRW_OK, DCRW_EINVAL (NULL model or x, B < 1, a pixel outside
 *         [0, 1]), DCRW_ENUMERIC (NaN in x or eps, or parameters so large
 *         that an output overflows), DCRW_ENOMEM.
 */
DCRW_API int dcrw_encode(const dcrw_model *m, int B, const float *x, const float *eps, float *z,
                         float *mu, float *logsigma);

/**
 * dcrw_encode() of images @p first .. @p first + @p B − 1 of a larger set,
 * with the noise the library draws for them from @p seed (see the noise
 * rule above): the same image gets the same noise, and so the same z up
 * to rounding, whatever batch it is in.
 * @return as dcrw_encode(); DCRW_EINVAL also for @p first < 0 or
 *         @p first + @p B beyond 2^63 − 1. Since 0.3.
 */
DCRW_API int dcrw_encode_part(const dcrw_model *m, int B, const float *x, uint64_t seed,
                              int64_t first, float *z, float *mu, float *logsigma);

/**
 * The generative pass of MODEL.md §6.
 * @param z        [T×B×Z] latents, or NULL to draw z ~ N(0, I) from @p seed
 *                 as dcrw_decode_part() with first 0 does (deterministic:
 *                 the same seed gives image b the same draws whatever B)
 * @param images   [B×P] out: σ(c_T), the Bernoulli means; may be NULL
 * @param canvases [T×B×P] out: σ(c_t) after every glimpse; may be NULL
 *                 (not both)
 * @return DCRW_OK, DCRW_EINVAL (NULL model, B < 1, no output buffer),
 *         DCRW_ENUMERIC (NaN in z, or an output that overflows),
 *         DCRW_ENOMEM.
 */
DCRW_API int dcrw_decode(const dcrw_model *m, int B, const float *z, uint64_t seed, float *images,
                         float *canvases);

/**
 * dcrw_decode_windows() from the prior, for samples @p first .. @p first +
 * @p B − 1 of a larger set drawn from @p seed: sample i is the same image
 * up to rounding whatever batch it is in (a set of samples can be made in
 * parts).
 * @return as dcrw_decode(); DCRW_EINVAL also for @p first < 0 or @p first
 *         + @p B beyond 2^63 − 1. Since 0.3.
 */
DCRW_API int dcrw_decode_part(const dcrw_model *m, int B, uint64_t seed, int64_t first,
                              float *images, float *canvases, float *write_windows);

/**
 * The forward pass of §4 with its canvases kept: the reconstruction of
 * @p x. decode(encode(x, eps)) gives the same canvases.
 * @param images   [B×P] out: σ(c_T); may be NULL
 * @param canvases [T×B×P] out: σ(c_t) for every t; may be NULL
 * @return as dcrw_encode().
 */
DCRW_API int dcrw_reconstruct(const dcrw_model *m, int B, const float *x, const float *eps,
                              float *images, float *canvases);

/**
 * dcrw_reconstruct() that also reports where each glimpse looked: for every
 * t and image, (gX, gY, δ, σ², γ) of the read window into @p read_windows
 * [T×B×5] and of the write window into @p write_windows [T×B×5]: the
 * window centre in 1-based pixel coordinates (x, y), the stride of its
 * N×N grid of Gaussians in pixels, their variance, and the intensity γ.
 * The grid spans gX ± δ·(N−1)/2. Any output may be NULL; a window buffer
 * of a model without that attention is left untouched.
 * @return as dcrw_encode().
 */
DCRW_API int dcrw_reconstruct_windows(const dcrw_model *m, int B, const float *x, const float *eps,
                                      float *images, float *canvases, float *read_windows,
                                      float *write_windows);

/**
 * dcrw_reconstruct_windows() of images @p first .. @p first + @p B − 1 of
 * a larger set, with the noise the library draws for them from @p seed
 * (the z of dcrw_encode_part() with the same arguments).
 * @return as dcrw_encode_part(). Since 0.3.
 */
DCRW_API int dcrw_reconstruct_part(const dcrw_model *m, int B, const float *x, uint64_t seed,
                                   int64_t first, float *images, float *canvases,
                                   float *read_windows, float *write_windows);

/**
 * dcrw_decode() that also reports the write window of every glimpse,
 * @p write_windows [T×B×5] as in dcrw_reconstruct_windows() (may be NULL;
 * images, canvases and write_windows not all NULL).
 * @return as dcrw_decode().
 */
DCRW_API int dcrw_decode_windows(const dcrw_model *m, int B, const float *z, uint64_t seed,
                                 float *images, float *canvases, float *write_windows);

/** Losses in nats per image: batch means of L = Lx + Lz, Lx and Lz (MODEL.md §5). */
typedef struct dcrw_loss {
    double loss, lx, lz;
} dcrw_loss;
/** @var dcrw_loss::loss
 * L = Lx + Lz, the negative evidence lower bound. */
/** @var dcrw_loss::lx
 * Lx, the reconstruction term −log p(x | z). */
/** @var dcrw_loss::lz
 * Lz, the KL term summed over the glimpses. */

/**
 * The loss of MODEL.md §5 for @p x [B×P] with noise @p eps [T×B×Z] (NULL:
 * as in dcrw_encode()) into @p out.
 * @return as dcrw_encode(); DCRW_EINVAL also for a NULL @p out;
 *         DCRW_ENUMERIC also when the loss is not finite.
 */
DCRW_API int dcrw_evaluate(const dcrw_model *m, int B, const float *x, const float *eps,
                           dcrw_loss *out);

/**
 * Like dcrw_evaluate(), per image: @p lx and @p lz [B] receive each image's
 * Lx and Lz (either may be NULL, not both).
 * @return as dcrw_evaluate(): DCRW_ENUMERIC exactly when dcrw_evaluate()
 *         gives it, when an image's loss is not finite (the message names
 *         the first such image; @p lx and @p lz are still filled).
 */
DCRW_API int dcrw_evaluate_images(const dcrw_model *m, int B, const float *x, const float *eps,
                                  double *lx, double *lz);

/**
 * dcrw_evaluate_images() of images @p first .. @p first + @p B − 1 of a
 * larger set, with the noise the library draws for them from @p seed:
 * evaluating a set as one batch, in batches of any size, or in parts on
 * several processes gives every image the same noise, and so the same Lx
 * and Lz up to the rounding described above. With seed 0 and first 0 it
 * is dcrw_evaluate_images() with eps NULL.
 * @return as dcrw_evaluate_images() (the message names an image by its
 *         index in the set); DCRW_EINVAL also for @p first < 0 or @p first
 *         + @p B beyond 2^63 − 1. Since 0.3.
 */
DCRW_API int dcrw_evaluate_images_part(const dcrw_model *m, int B, const float *x, uint64_t seed,
                                       int64_t first, double *lx, double *lz);

/**
 * The importance-weighted bound of Burda et al. (2016) with @p K samples,
 * per image, for images @p first .. @p first + @p B − 1 of a larger set.
 * For sample k of an image, z_k ~ q(z | x) and its log-weight is
 * log w_k = log p(x | z_k) + log p(z_k) − log q(z_k | x); then
 * L_K = −log((1/K)·Σ_k w_k), an upper bound on −log p(x) in nats that
 * tightens as K grows (L_1 is a one-sample estimate of L = Lx + Lz, whose
 * KL term dcrw_evaluate() computes exactly). Each sample costs one forward
 * pass over the batch. Sample k of image i draws its noise from (@p seed,
 * k, i): sample 0 is the noise dcrw_evaluate_images_part() draws with the
 * same seed, the others are independent of it, and the result does not
 * depend on the batch the image is in. The mean of L_K over a data set and
 * its standard error (the standard deviation of the per-image values over
 * the square root of their count) are the caller's to take.
 * @param iw    [B] out: L_K of each image; may be NULL
 * @param logw  [B×K] out: log w_k of image b at logw[b·K + k]; may be NULL
 *              (not both)
 * @return as dcrw_evaluate_images_part(); DCRW_EINVAL also for K < 1 or
 *         both outputs NULL; DCRW_ENUMERIC also when a log-weight is not
 *         finite (the message names the image and sample). Since 0.3.
 */
DCRW_API int dcrw_evaluate_iw(const dcrw_model *m, int B, const float *x, int K, uint64_t seed,
                              int64_t first, double *iw, double *logw);
/**
 * The attention classifier (MODEL.md §9, a model whose configuration has
 * classify = 1): the class probabilities of @p x [B×P] after the last
 * glimpse. The generative operations above refuse a classifier, and these
 * refuse a generative model (DCRW_EINVAL). Since 0.5.
 * @param probs [B×K] out: softmax of the logits, each row summing to 1
 * @return DCRW_OK; DCRW_EINVAL (NULL argument, B < 1, not a classifier);
 *         DCRW_ENUMERIC (a non-finite input, or logits that overflow);
 *         DCRW_ENOMEM.
 */
DCRW_API int dcrw_classify(const dcrw_model *m, int B, const float *x, float *probs);

/**
 * dcrw_classify() that also gives where the classifier looked: the read
 * window of every glimpse, in pixel terms as dcrw_reconstruct_windows()
 * gives them. Since 0.5.
 * @param probs   [B×K] out, may be NULL
 * @param windows [T×B×5] out: (gX, gY, δ, σ², γ) of glimpse t of image b at
 *                windows[(t·B + b)·5], centres 1-based; may be NULL (not both)
 * @return as dcrw_classify().
 */
DCRW_API int dcrw_classify_windows(const dcrw_model *m, int B, const float *x, float *probs,
                                   float *windows);
/** @} */

/** @name Class-conditional models
 * A generative model whose configuration has classes = K >= 2 (MODEL.md
 * §10) takes a label per image, in [0, K), which joins the decoder's and
 * the encoder's inputs. The calls above refuse such a model (DCRW_EINVAL
 * naming these); these take the labels [B] beside the images, and draw the
 * noise of image b from (@p seed, @p first + b) as the *_part calls do. They
 * refuse a model that takes no labels. Since 0.5. @{ */

/**
 * Generation (MODEL.md §6) of images of the given classes: dcrw_decode_part()
 * with @p labels [B]; @p z [T×B×Z] may be NULL (the prior, drawn from
 * @p seed and @p first + b).
 * @return as dcrw_decode(); DCRW_EINVAL also for NULL @p labels, a label
 *         outside [0, K) (the message names the image), a model that is
 *         not conditional.
 */
DCRW_API int dcrw_decode_labels(const dcrw_model *m, int B, const int32_t *labels, const float *z,
                                uint64_t seed, int64_t first, float *images, float *canvases,
                                float *write_windows);

/** dcrw_reconstruct_part() with @p labels [B]. @return as dcrw_decode_labels(). */
DCRW_API int dcrw_reconstruct_labels(const dcrw_model *m, int B, const float *x,
                                     const int32_t *labels, uint64_t seed, int64_t first,
                                     float *images, float *canvases, float *read_windows,
                                     float *write_windows);

/** dcrw_evaluate_images_part() with @p labels [B]: the bound on −log p(x | y).
 * @return as dcrw_decode_labels(), and as dcrw_evaluate_images_part(). */
DCRW_API int dcrw_evaluate_labels(const dcrw_model *m, int B, const float *x, const int32_t *labels,
                                  uint64_t seed, int64_t first, double *lx, double *lz);
/** @} */

/* ------------------------------------------------------------------------ */
/** @name Trainer
 * A trainer holds the gradients, the Adam moments, the step count and the
 * workspace of one model's training; it changes that model's parameters in
 * dcrw_trainer_apply(). A trainer and its model belong to one thread at a
 * time; destroy the trainer before its model (using a trainer whose model
 * was destroyed is undefined behaviour, like any use after free). @{ */
/**
 * Training hyper-parameters. Fill with dcrw_train_config_default(), change
 * what you need, pass to dcrw_trainer_create() (which checks every field).
 */
typedef struct dcrw_train_config {
    uint32_t size;       /**< sizeof(dcrw_train_config), set by the caller */
    float learning_rate; /**< Adam step size, > 0; default 1e-3 */
    float beta1;         /**< Adam β1 in [0, 1); default 0.9 */
    float beta2;         /**< Adam β2 in [0, 1); default 0.999 */
    float adam_eps;      /**< Adam ε, > 0; default 1e-8 */
    float clip_norm;     /**< clip the global gradient norm to this, >= 0, 0 = off; default 5 */
    uint64_t seed;       /**< seed of the noise ε drawn when a step is given none; default 0 */
    int32_t threads;     /**< threads for the BLAS and the library's loops, >= 0, 0 = default */
} dcrw_train_config;

/** An opaque trainer: gradients, Adam moments, step count, workspace. */
typedef struct dcrw_trainer dcrw_trainer;

/** Fill @p tc with the defaults above (and tc->size). @return DCRW_OK, DCRW_EINVAL. */
DCRW_API int dcrw_train_config_default(dcrw_train_config *tc);

/**
 * Create a trainer for @p m (which must outlive it) with step count 0 and
 * zero Adam moments. @return DCRW_OK, DCRW_EINVAL (NULL, a field out of
 * range, named in the message), DCRW_ENOMEM.
 */
DCRW_API int dcrw_trainer_create(dcrw_trainer **out, dcrw_model *m, const dcrw_train_config *tc);

/** Free a trainer and its workspace (not its model). NULL is a no-op. */
DCRW_API void dcrw_trainer_destroy(dcrw_trainer *t);

/**
 * Forward and backward of the batch-mean loss on @p x [B×P] (values in
 * [0, 1]). The gradients replace the trainer's previous ones. @p eps
 * [T×B×Z] may be NULL: the noise of image b is then drawn from a generator
 * keyed by (seed, step count, b). The workspace is sized for B on the first
 * call and reallocated only when B changes. @p out (may be NULL) receives
 * the batch means.
 * @return DCRW_OK; DCRW_EINVAL; DCRW_ENUMERIC if x or eps or the loss or a
 *         gradient is not finite (the gradients are then unusable and
 *         dcrw_trainer_apply() refuses them); DCRW_ENOMEM.
 */
DCRW_API int dcrw_trainer_backward(dcrw_trainer *t, int B, const float *x, const float *eps,
                                   dcrw_loss *out);

/**
 * dcrw_trainer_backward() over one part of a larger batch, for data
 * parallelism across processes: images @p first .. @p first + @p B − 1 of
 * a global batch of @p B_total. The gradients are those of the GLOBAL
 * batch mean restricted to these images (each image weighs 1/B_total), so
 * that summing the trainers' dcrw_trainer_grads() over all parts (an
 * allreduce) gives exactly the gradient of the whole batch; then every
 * part calls dcrw_trainer_apply(). Noise drawn by the library (eps NULL)
 * is keyed by the image's global index, so it does not depend on which
 * part holds the image. @p out receives the means over this part.
 * @return as dcrw_trainer_backward(); DCRW_EINVAL if the part is not
 *         within the batch.
 */
DCRW_API int dcrw_trainer_backward_part(dcrw_trainer *t, int B, const float *x, const float *eps,
                                        int64_t first, int64_t B_total, dcrw_loss *out);

/**
 * The gradient of tensor @p name (MODEL.md §7): @p data (may be NULL)
 * receives a view into the trainer's gradients valid for its life, @p count
 * (may be NULL) the number of floats.
 * @return DCRW_OK, DCRW_EINVAL (NULL trainer or name), DCRW_ENOTFOUND (no
 *         such tensor in the model).
 */
DCRW_API int dcrw_trainer_find_grad(dcrw_trainer *t, const char *name, float **data, size_t *count);

/**
 * All gradients as one flat buffer laid out exactly like dcrw_model_params()
 * (for an allreduce across processes). The caller may change them before
 * dcrw_trainer_apply(). @p count (may be NULL) receives the number of floats.
 * @return the buffer, valid for the trainer's life; NULL (and *count = 0)
 *         for a NULL trainer.
 */
DCRW_API float *dcrw_trainer_grads(dcrw_trainer *t, size_t *count);

/**
 * Clip the gradients to the global norm clip_norm (scale by
 * clip_norm / (norm + 1e-6) when that is below 1, as PyTorch's
 * clip_grad_norm_), then one Adam step with bias correction; increments the
 * step count. @return DCRW_OK; DCRW_ENUMERIC if a gradient is not finite,
 * if the update would make a parameter non-finite (an absurd learning
 * rate) or overflow an Adam moment (a squared gradient beyond the float
 * range, possible with clip_norm 0), or if no gradients were computed since
 * the last apply, leaving the model's parameters, the moments and the step
 * count untouched (the gradients are spent); DCRW_EINVAL.
 */
DCRW_API int dcrw_trainer_apply(dcrw_trainer *t);

/**
 * dcrw_trainer_backward() then dcrw_trainer_apply().
 * @return the first failure of the two, as each documents it.
 */
DCRW_API int dcrw_trainer_step(dcrw_trainer *t, int B, const float *x, const float *eps,
                               dcrw_loss *out);

/**
 * dcrw_trainer_backward() for a model that takes labels: the classifier
 * (MODEL.md §9), whose loss is the batch mean of −log p(label | x),
 * reported in out->loss and out->lx (out->lz = 0), or a conditional model
 * (§10), whose loss is the bound on −log p(x | label). @p labels [B] are
 * the classes, each in [0, K); @p eps is as in dcrw_trainer_backward() and
 * must be NULL for a classifier (it has no noise). dcrw_trainer_backward()
 * and dcrw_trainer_step() refuse these models, and these refuse a model
 * that takes no labels. Since 0.5.
 * @return as dcrw_trainer_backward(); DCRW_EINVAL also for a NULL @p labels
 *         or a label outside [0, K) (the message names the image).
 */
DCRW_API int dcrw_trainer_backward_labels(dcrw_trainer *t, int B, const float *x,
                                          const int32_t *labels, const float *eps, dcrw_loss *out);

/**
 * dcrw_trainer_backward_part() for a model that takes labels: images
 * [@p first, @p first + B) of a batch of @p B_total, with their @p labels,
 * as dcrw_trainer_backward_labels() takes them, so that the processes of a
 * data-parallel run of the classifier or a conditional model each compute
 * their part (the sum of the parts' gradients is the whole batch's, and a
 * conditional model's noise follows the image as there). Since 0.6.
 * @return as dcrw_trainer_backward_labels() and dcrw_trainer_backward_part().
 */
DCRW_API int dcrw_trainer_backward_labels_part(dcrw_trainer *t, int B, const float *x,
                                               const int32_t *labels, const float *eps,
                                               int64_t first, int64_t B_total, dcrw_loss *out);

/**
 * dcrw_trainer_backward_labels() then dcrw_trainer_apply(). Since 0.5.
 * @return the first failure of the two.
 */
DCRW_API int dcrw_trainer_step_labels(dcrw_trainer *t, int B, const float *x, const int32_t *labels,
                                      const float *eps, dcrw_loss *out);

/** @return the number of applied steps; 0 for NULL. */
DCRW_API uint64_t dcrw_trainer_step_count(const dcrw_trainer *t);

/**
 * Change the Adam step size for the following dcrw_trainer_apply() calls,
 * for a learning-rate schedule; the moments and step count are kept.
 * Since 0.2.
 * @return DCRW_OK; DCRW_EINVAL for NULL or a rate that is not finite and > 0
 *         (the trainer is then unchanged).
 */
DCRW_API int dcrw_trainer_set_learning_rate(dcrw_trainer *t, float learning_rate);

/** @return the current Adam step size; 0 for NULL. Since 0.2. */
DCRW_API float dcrw_trainer_learning_rate(const dcrw_trainer *t);

/**
 * Weigh the KL term's gradient by @p weight in the following backward
 * calls: they compute the gradient of Lx + weight·Lz, the objective of KL
 * warm-up (Bowman et al. 2016, Sønderby et al. 2016), which ramps the
 * weight from near 0 to 1 over the first steps so that the decoder learns
 * to use the latents before the KL term pulls the posterior onto the prior.
 * Training only: the losses every call reports stay Lx and Lz, the true
 * bound, whatever the weight. The default is 1 (the bound of MODEL.md §5);
 * the weight is not saved in checkpoints (a schedule is a function of the
 * step count). Since 0.4.
 * @return DCRW_OK; DCRW_EINVAL for NULL or a weight that is not finite and
 *         >= 0 (the trainer is then unchanged).
 */
DCRW_API int dcrw_trainer_set_kl_weight(dcrw_trainer *t, float weight);

/** @return the KL weight of dcrw_trainer_set_kl_weight(); 0 for NULL. Since 0.4. */
DCRW_API float dcrw_trainer_kl_weight(const dcrw_trainer *t);

/**
 * Save the model, the Adam moments (tensors adam.m.NAME, adam.v.NAME) and
 * the step count (metadata dcrw.step) in one safetensors file, atomically
 * as dcrw_model_save(). The file also loads with dcrw_model_load(). Nothing
 * that dcrw_trainer_resume() would refuse is written (a NaN or infinity in
 * the parameters or moments, a negative second moment): DCRW_ENUMERIC,
 * @p path untouched.
 * @return DCRW_OK, DCRW_EINVAL, DCRW_EIO, DCRW_ENUMERIC, DCRW_ENOMEM.
 */
DCRW_API int dcrw_trainer_save(const dcrw_trainer *t, const char *path);

/**
 * Restore parameters, moments and step count from a file written by
 * dcrw_trainer_save() (or a model checkpoint: moments 0, step from
 * dcrw.step or 0). The file's configuration must equal the model's. Training
 * then continues exactly as if it had not stopped, given the same batches
 * and train config. Everything is validated before anything changes: on
 * failure the trainer and model are untouched.
 * @return as dcrw_model_load(); DCRW_ESHAPE if the configuration differs;
 *         DCRW_EFORMAT if dcrw.step is not a decimal count of at most
 *         2^63 − 1 (never read wrapped or saturated); DCRW_ENUMERIC for a
 *         NaN or infinite moment or a negative second moment (adam.v.*).
 */
DCRW_API int dcrw_trainer_resume(dcrw_trainer *t, const char *path);
/** @} */

/* ------------------------------------------------------------------------ */
/** @name Checkpoint files
 * What a checkpoint holds, read from its header alone, without its tensors'
 * data: for a tool that lists checkpoints, or to check a file before
 * loading a large model. Since 0.3. @{ */

/** A checkpoint's summary (dcrw_checkpoint_info()). */
typedef struct dcrw_checkpoint_summary {
    uint32_t size;     /**< sizeof(dcrw_checkpoint_summary), set by the caller */
    char preset[16];   /**< the preset the writer recorded ("draw", ..., "custom"); "" if none */
    int32_t has_step;  /**< 1 if the file records a step count (a trainer checkpoint) */
    uint64_t step;     /**< that step count (dcrw_trainer_step_count()); 0 without one */
    int32_t optimizer; /**< 1 if it holds both Adam moments of every parameter tensor */
    size_t params;     /**< parameter floats of its model (dcrw_model_param_floats()) */
    size_t tensors;    /**< parameter tensors of its model (dcrw_model_param_count()) */
} dcrw_checkpoint_summary;

/**
 * Read the header of the checkpoint at @p path and check it as
 * dcrw_model_load() does (the container, the configuration in the
 * metadata, every required tensor's presence, dtype and shape) without
 * reading the tensors' data, so its values are not checked: a file that
 * passes may still fail to load if a tensor holds a NaN. Set info->size
 * (and cfg->size) first: the library writes at most that many bytes and
 * sets it to the number written.
 * @param info receives the summary
 * @param cfg  receives the configuration, as dcrw_model_config() of the
 *             loaded model would give it; may be NULL
 * @return DCRW_OK; DCRW_EINVAL (NULL @p path or @p info, an info->size
 *         smaller than this first version of the struct, a cfg->size
 *         smaller than 64); otherwise as
 *         dcrw_model_load() for a file it would refuse by its header
 *         (DCRW_EIO, DCRW_EFORMAT, DCRW_ETRUNCATED, DCRW_ESHAPE,
 *         DCRW_ENOTFOUND, DCRW_EUNSUPPORTED, DCRW_ECONFIG, DCRW_ENOMEM), and
 *         DCRW_EFORMAT for a dcrw.step dcrw_trainer_resume() would refuse.
 *         Nothing is written on failure.
 */
DCRW_API int dcrw_checkpoint_info(const char *path, dcrw_checkpoint_summary *info,
                                  dcrw_config *cfg);
/** @} */

/* ------------------------------------------------------------------------ */
/** @name Data
 * A data set of images held in memory as floats in [0, 1], with optional
 * labels. It is read-only after loading and may be shared between threads. @{ */
/** An opaque, read-only data set of images and optional labels. */
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
 * dimensions and sizes above 2^31 values are refused, and so are bytes
 * after the declared data, in a plain file as after the compressed data of
 * a gzip one (DCRW_EFORMAT). Only regular files are read: a FIFO, device
 * or folder is refused at once (DCRW_EIO), without blocking.
 *
 * @return DCRW_OK, DCRW_EINVAL, DCRW_EIO, DCRW_EFORMAT, DCRW_ETRUNCATED,
 *         DCRW_ESHAPE (label count differs), DCRW_EUNSUPPORTED (IDX type
 *         other than unsigned byte, or gzip without zlib support), DCRW_ENOMEM.
 *         @p out is set to NULL on failure.
 */
DCRW_API int dcrw_dataset_load_idx(dcrw_dataset **out, const char *images_path,
                                   const char *labels_path);

/** The part of a data set dcrw_dataset_open() reads from a folder. Since 0.3. */
enum {
    DCRW_SPLIT_TRAIN = 0, /**< the training images (train-*, train.npy, train/) */
    DCRW_SPLIT_TEST = 1   /**< the test images (t10k-* or test-*, test.npy, test/) */
};

/**
 * Open a data set from @p path, whatever its format; nothing is converted
 * on disk, and the format is told from the content, not the name:
 *
 * - an IDX file (as dcrw_dataset_load_idx()), with the labels file beside
 *   it if there is one ("images" → "labels", "idx3"/"idx4" → "idx1", plain
 *   or .gz);
 * - a NumPy .npy file (format 1 to 3, C order): uint8 (divided by 255) or
 *   float32/float64 (each value finite and in [0, 1]), shaped [N, H, W],
 *   [N, C, H, W] or [N, H, W, C]. A 4-D array is channels-last when its
 *   last dimension is 1, 3 or 4 and its second is none of these, else
 *   channels-first. No labels;
 * - a folder of IDX files named as MNIST's (train-images-idx3-ubyte and
 *   t10k-images-idx3-ubyte with their labels), plain or .gz, under any
 *   prefix (emnist-letters-train-…), "test" for "t10k" too: @p split picks
 *   the pair. A plain file beside its .gz twin is read, not both;
 * - a folder holding train.npy and test.npy, or train/ and test/ folders of
 *   any of these: @p split picks one;
 * - a folder of PNG files (grey, grey+alpha, RGB, RGBA; palette images as
 *   RGB, or RGBA with transparency; 1 to 16 bits), all of one channel count
 *   and size. Either the images themselves, or one subfolder per class:
 *   the label of an image is the rank of its folder's name in byte order
 *   (an empty class folder counts: it is a class without images).
 *   Files are read in byte order of their names; names starting with '.'
 *   and files not ending in .png are skipped.
 *
 * A path naming a single file or a folder of PNGs is the same set for
 * either split. Every reader is strict: a file shorter or longer than its
 * header declares, a header beyond the limits (C ≤ 64, H and W ≤ 4096, at
 * most 2^31 values in all) or values out of range are refused, with a
 * message naming the file and what is wrong, before memory is allocated
 * for what the header declares. Only regular files are read (a FIFO never
 * blocks).
 *
 * @return DCRW_OK; DCRW_EINVAL (NULL, unknown @p split, two different IDX
 *         sets for the split in one folder); DCRW_EIO (cannot be opened or
 *         read, not a regular file); DCRW_EFORMAT (malformed, trailing
 *         bytes, beyond the limits, a float outside [0, 1], images in a
 *         folder beside folders of images); DCRW_ETRUNCATED; DCRW_ESHAPE (a
 *         PNG differs in shape from the first, labels differ in count);
 *         DCRW_ENOTFOUND (a folder holds no data set, or none for
 *         @p split); DCRW_EUNSUPPORTED (a .npy dtype
 *         other than uint8, float32 or float64, Fortran order, gzip without
 *         zlib, PNG images in a build without libpng); DCRW_ENUMERIC (NaN
 *         or infinity in a .npy); DCRW_ENOMEM. The message names the file.
 *         @p out is set to NULL on failure. Since 0.3.
 */
DCRW_API int dcrw_dataset_open(dcrw_dataset **out, const char *path, int split);

/** Element types of dcrw_dataset_from_memory(). Since 0.3. */
enum {
    DCRW_DTYPE_U8 = 0,  /**< uint8_t, 0 to 255, divided by 255 */
    DCRW_DTYPE_F32 = 1, /**< float, in [0, 1] */
    DCRW_DTYPE_F64 = 2  /**< double, in [0, 1] */
};

/**
 * A data set copied from the caller's memory: @p count images of
 * @p channels × @p height × @p width values of type @p dtype, each image
 * channel-major (C, H, W) and the images one after the other, as
 * dcrw_dataset_images() returns them. @p labels (may be NULL) holds
 * @p count labels >= 0. Neither buffer is used after the call.
 *
 * @return DCRW_OK; DCRW_EINVAL (NULL @p out or @p images, unknown
 *         @p dtype, count < 1, a dimension outside [1, 64] for channels or
 *         [1, 4096] for height and width, more than 2^31 values, a float
 *         outside [0, 1], a negative label); DCRW_ENUMERIC (a NaN or
 *         infinity); DCRW_ENOMEM. @p out is set to NULL on failure.
 *         Since 0.3.
 */
DCRW_API int dcrw_dataset_from_memory(dcrw_dataset **out, const void *images, int dtype,
                                      size_t count, int channels, int height, int width,
                                      const int32_t *labels);

/** @return the number of images; 0 for NULL. */
DCRW_API size_t dcrw_dataset_count(const dcrw_dataset *d);

/** Image shape. Any output pointer may be NULL. @return DCRW_OK, DCRW_EINVAL. */
DCRW_API int dcrw_dataset_shape(const dcrw_dataset *d, int *channels, int *height, int *width);

/**
 * @return the label of image @p i, or −1 if the data set has no labels or
 *         @p i is out of range.
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

/** @return the whole image buffer, count×P floats in [0, 1], valid for the data set's life; NULL
 * for NULL. */
DCRW_API const float *dcrw_dataset_images(const dcrw_dataset *d);

/** Free a data set; NULL is a no-op. */
DCRW_API void dcrw_dataset_destroy(dcrw_dataset *d);
/** @} */

#ifdef __cplusplus
}
#endif
#endif /* DCRW_DCRW_H */
