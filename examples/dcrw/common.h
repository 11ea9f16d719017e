/* Shared helpers of the dcrw command. Everything here sits on the public
 * header only: the command is the library's first outside user. */
#ifndef DCRW_CLI_COMMON_H
#define DCRW_CLI_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <dcrw/dcrw.h>

/* Exit statuses: 2 for anything the user can fix (usage, files, values),
 * 1 for failures of the run itself (out of memory, a diverged loss). */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_BAD = 2 };

/* The library refuses more threads than this (dcrw_set_threads and the
 * trainer's threads field), so the command refuses them with its own
 * message before any work. */
#ifdef DCRW_MAX_THREADS
#define CLI_MAX_THREADS DCRW_MAX_THREADS
#else
#define CLI_MAX_THREADS 1024
#endif

/* The fixed seeds that make evaluations comparable across runs. */
#define CLI_EVAL_BINARIZE_SEED 12345u
#define CLI_EVAL_NOISE_SEED 54321u

#if defined(__GNUC__)
#define CLI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CLI_PRINTF(a, b)
#endif

typedef enum { SPLIT_TRAIN = 0, SPLIT_TEST = 1 } cli_split;

/* ---- messages: one line on stderr, prefixed "dcrw CMD: " */
void cli_set_command(const char *name);
void cli_error(const char *fmt, ...) CLI_PRINTF(1, 2);
/* cli_error() followed by the library's code and last error */
void cli_lib_error(int rc, const char *fmt, ...) CLI_PRINTF(2, 3);

/* ---- the command line (cli_options.c): --name value or --name=value;
 * anything not starting with "--" is a positional argument. */
typedef struct cli_opt {
    const char *name; /* without the leading "--" */
    int has_arg;
    int id;
} cli_opt;

/* The options several subcommands share have these ids and one parser; a
 * subcommand's own options take ids from CLI_OPT_OWN on. */
enum {
    CLI_OPT_HELP = 1,
    CLI_OPT_MODEL,     /* --model CKPT */
    CLI_OPT_DATA,      /* --data DIR */
    CLI_OPT_SPLIT,     /* --split test|train */
    CLI_OPT_BINARIZE,  /* --binarize dynamic|threshold|none */
    CLI_OPT_SEED,      /* --seed N */
    CLI_OPT_N,         /* --n N, 1..n_max */
    CLI_OPT_OUT,       /* --out PATH */
    CLI_OPT_SCALE,     /* --scale K, 1..CLI_SCALE_MAX */
    CLI_OPT_GLIMPSES,  /* --glimpses LIST, checked against the model later */
    CLI_OPT_PRECISION, /* --precision float32|bf16 */
    CLI_OPT_OWN = 32
};
#define CLI_SHARED(id) (1u << (id))
#define CLI_SCALE_MAX 16

/* The values of the shared options. The subcommand sets its defaults
 * (after cli_shared_init) and the bound of --n before parsing. */
typedef struct cli_shared {
    const char *model, *data, *out, *glimpses; /* NULL when not given */
    cli_split split;                           /* default test */
    int binarize;                              /* default dynamic */
    int precision;                             /* dcrw_precision, default float32 */
    uint64_t seed;
    long n, n_max;
    long scale;
    unsigned given; /* CLI_SHARED(id) of every shared option given */
} cli_shared;

void cli_shared_init(cli_shared *s);

/* What a subcommand takes on its command line. */
typedef struct cli_command {
    void (*usage)(FILE *); /* --help prints it on stdout */
    unsigned shared;       /* CLI_SHARED() of the shared options it takes */
    const cli_opt *opts;   /* its own options, NULL-terminated; may be NULL */
    int positionals;       /* positional arguments go to own() with id 0 */
    /* one of its own options (or a positional): 0, or -1 after a message */
    int (*own)(int id, const char *val, void *ctx);
} cli_command;

/* Parse argv[1..argc): the shared options into *s, the others through
 * c->own(id, val, ctx). -1 to go on, else the exit status to return
 * (CLI_OK after --help, CLI_BAD after a message). */
int cli_parse_args(const cli_command *c, int argc, char **argv, cli_shared *s, void *ctx);

/* Strict conversions: the whole string must be a number in range; on
 * failure they print "--NAME: ..." and return -1. */
int cli_parse_int(const char *opt, const char *s, long lo, long hi, long *out);
int cli_parse_u64(const char *opt, const char *s, uint64_t *out);
int cli_parse_double(const char *opt, const char *s, double lo, double hi, double *out);
int cli_parse_binarize(const char *opt, const char *s, int *out);
const char *cli_binarize_name(int b);
/* --precision float32|bf16 into a dcrw_precision; bf16 is refused where the
 * CPU cannot run it. */
int cli_parse_precision(const char *opt, const char *s, int *out);
const char *cli_precision_name(int p);
/* The model's products in precision p: 0, or -1 after a message. */
int cli_set_precision(dcrw_model *m, int p);
/* Parse "1,4,6,10" or "all" (the value of --glimpses) into 1-based
 * glimpse numbers in 1..T; returns the count, or -1 after a message. *out
 * is allocated. */
int cli_parse_glimpses(const char *opt, const char *s, int T, int **out);

/* ---- files */
/* Join dir and name into a newly allocated string; NULL on overflow/OOM. */
char *cli_path(const char *dir, const char *name);
/* Write to a temporary file next to @p path, then rename over it: the
 * callback returns 0 on success. A failure leaves no file behind. */
typedef int (*cli_writer)(FILE *f, void *ctx);
int cli_write_atomic(const char *path, cli_writer fn, void *ctx);
/* Temporary file next to @p path for writers that need a descriptor or a
 * name (libpng, giflib): returns the fd, the temporary name in *tmp (free
 * it), or -1 after a message. */
int cli_tmp_open(const char *path, char **tmp);
/* fsync and rename @p tmp to @p path; on failure unlink @p tmp. */
int cli_tmp_commit(const char *tmp, const char *path);
/* Read a whole regular file (opened as by cli_open_regular); NULL after a
 * message. */
char *cli_read_file(const char *path, size_t *len);

/* ---- inputs: every file the command reads is opened with O_NONBLOCK and
 * refused unless it is a regular file, so that a FIFO or a device given
 * by mistake never hangs the command. */
/* 0 when @p path is a regular file that opens for reading; else -1 with the
 * reason ("No such file or directory", "a FIFO, not a regular file") in
 * why. Nothing is printed. */
int cli_probe_regular(const char *path, char *why, size_t n);
/* A descriptor for reading @p path (in blocking mode again), or -1 after
 * the message "WHAT PATH: REASON" (just "PATH: REASON" when what is NULL). */
int cli_open_regular(const char *path, const char *what);
/* cli_open_regular, closed again: for files the library opens itself. */
int cli_check_regular(const char *path, const char *what);

/* ---- outputs */
/* A file a command reads or writes, and how its messages name it. */
typedef struct cli_file {
    const char *path;
    const char *what; /* "--model", "--out", "the log of run R" */
} cli_file;
/* No output may be any input: not the same name, nor a hard or symbolic
 * link to it, nor a path through a linked folder (compared by device and
 * inode of existing files and by resolved path), and no two outputs may
 * be one file. An output may not be a folder. 0, or -1 after a message
 * naming both. */
int cli_check_outputs(const cli_file *in, size_t nin, const cli_file *out, size_t nout);
/* mkdir -p: create @p dir and its missing parents. -1 after a message
 * naming the part that could not be made ("WHAT DIR: ..."). */
int cli_make_folders(const char *dir, const char *what);
/* cli_make_folders() for the folder that will hold @p path. */
int cli_make_parents(const char *path, const char *what);

/* ---- data */
int cli_parse_split(const char *opt, const char *s, cli_split *out);
const char *cli_split_name(cli_split split);
/* The data set at @p path (any format dcrw_dataset_open() reads; @p split
 * picks a part of a folder that has two): 0, or -1 after a message. */
int cli_load_split(const char *path, cli_split split, dcrw_dataset **out);
/* cli_check_outputs() with the model (may be NULL) and the files of the
 * data at @p data as the inputs: the path itself, or the data files in the
 * folder and two levels of folders below it. */
int cli_check_data_outputs(const char *model, const char *data, const cli_file *out, size_t nout);
/* The model's input shape must equal the data's; else -1 after a message
 * naming the first field that differs, ending with what to do: @p fix, a
 * format in which %s is that field's name. */
int cli_check_shape(const dcrw_dataset *d, const dcrw_config *cfg, const char *what,
                    const char *fix);
const char *cli_model_path(const char *given);
int cli_load_model(const char *path, dcrw_model **out);

/* ---- the order of training: splitmix64, so that the batches and the
 * binarization of a step are pure functions of the seed and the step, and
 * a run is reproducible from its seed alone. (Every noise of the model is
 * the library's.) */
/* A key from two values, e.g. (seed, step), for dcrw_dataset_batch(). */
uint64_t cli_key(uint64_t a, uint64_t b);
/* Uniform in [0, n) from the splitmix64 stream at *state, unbiased. */
uint64_t cli_below(uint64_t *state, uint64_t n);
/* Fisher-Yates permutation of 0..n-1 from @p seed */
void cli_permutation(size_t *perm, size_t n, uint64_t seed);

/* ---- stopping (stop.c): SIGINT, SIGTERM and SIGHUP ask a long command to
 * stop at its next safe point; SIGPIPE is ignored, so a closed output shows
 * as a failed write, which cli_flush_stdout() turns into a stop request. A
 * third signal takes the default action (the process ends at once). */
void cli_stop_install(void);
/* stop requests so far: one per signal, and one if stdout failed */
int cli_stop_requests(void);
/* the first signal received, 0 for none */
int cli_stop_signal(void);
/* fflush(stdout); -1 when stdout cannot be written any more (a closed pipe
 * or terminal), which counts as one stop request. */
int cli_flush_stdout(void);
int cli_stdout_failed(void);

/* ---- misc */
double cli_now(void); /* monotonic seconds */
const char *cli_basename(const char *path);
/* The index of the largest of p[0..n) (the first of equals): a classifier's
 * answer. */
int cli_argmax(const float *p, int n);

/* ---- pictures (picture.c): an 8-bit image, 1 (grey) or 3 (RGB) channels */
typedef struct cli_image {
    int width, height, channels;
    unsigned char *px;
} cli_image;
int cli_image_alloc(cli_image *im, int width, int height, int channels, unsigned char fill);
void cli_image_free(cli_image *im);
/* Paint a C×H×W float image (values in [0,1]) at (x0, y0), each pixel as
 * a scale×scale block: in colour when both have 3 channels, else the first
 * channel in grey. */
void cli_image_blit(cli_image *im, int x0, int y0, const float *src, int C, int h, int w,
                    int scale);
/* The size of a grid of cells with pad pixels between and around them;
 * cell (r, c) starts at x = pad + c·(cell_w + pad), y = pad + r·(cell_h + pad).
 * -1 after a message when the picture would be unreasonably large. */
int cli_grid_size(int n_cols, int n_rows, int cell_w, int cell_h, int pad, int *w, int *h);
/* An axis-aligned rectangle outline, clipped to the box (bx, by, bw, bh). */
void cli_image_rect(cli_image *im, double x0, double y0, double x1, double y1, int bx, int by,
                    int bw, int bh, const unsigned char rgb[3]);

/* The attention windows of reconstruct and sample: --windows both, read,
 * write or none as a mask of CLI_WINDOW_*: 0, or -1 after a message. */
enum { CLI_WINDOW_READ = 1, CLI_WINDOW_WRITE = 2 };
int cli_parse_windows(const char *val, int *mask);
extern const unsigned char CLI_RED[3], CLI_GREEN[3];
/* A window (gX, gY, δ, σ², γ) of an N×N grid, as the outline of the span
 * gX ± δ(N−1)/2, on a cell at (bx, by) of bw×bh pixels that shows the image
 * scaled by scale. */
void cli_draw_window(cli_image *im, int bx, int by, int bw, int bh, const float *win, int N,
                     int scale, const unsigned char rgb[3]);

/* klplot.c: the KL of each of T glimpses (mean and standard error) as an
 * SVG bar chart, written atomically; 0, or -1 after a message. */
int cli_kl_svg(const char *path, int T, const double *mean, const double *se, const char *title);

/* png.c and gif.c; both print their own message and return CLI_BAD when the
 * build has no libpng / giflib. */
int cli_png_available(void);
int cli_gif_available(void);
int cli_png_write(const char *path, const cli_image *im);
/* frames: n frames of w×h grey pixels; delay in 1/100 s; the last frame
 * holds for last_delay. */
int cli_gif_write(const char *path, const unsigned char *const *frames, int n, int w, int h,
                  int delay, int last_delay);

/* ---- the subcommands */
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_reconstruct(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_info(int argc, char **argv);

/* plot.c: write the SVG of RUNDIR/log.csv (used by train at the end). */
int cli_plot_run(const char *log_path, const char *svg_path);

#endif
