/* The safetensors container (MODEL.md §8): a strict parser of an
 * in-memory file and an atomic writer.
 * Knows nothing of models; lib/checkpoint.c maps models onto it. */
#ifndef DCRW_LIB_SAFETENSORS_H
#define DCRW_LIB_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

/* Header lengths above this are refused before anything is allocated. */
#define ST_MAX_HEADER (100u << 20)
#define ST_MAX_DIMS 8

enum st_dtype { ST_F32, ST_OTHER };

typedef struct st_tensor {
    char *name;
    int dtype; /* ST_F32, or ST_OTHER for any other valid dtype string */
    char dtype_name[16];
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    uint64_t begin, end; /* byte offsets relative to the data section */
} st_tensor;

typedef struct st_file {
    uint8_t *buf; /* the whole file, owned */
    size_t size;
    size_t data_start; /* 8 + header length */
    int ntensors;
    st_tensor *tensors; /* in file order */
    int nmeta;
    char **meta_keys, **meta_vals;
} st_file;

/* Parse a whole file held in buf[0..size). On success f owns a copy of the
 * bytes. Checks: header length within the file and ST_MAX_HEADER; JSON is an
 * object starting with '{', trailing spaces allowed; every entry but
 * __metadata__ has a dtype string, an integer shape array (each dim >= 0) and
 * data_offsets [begin, end] with end - begin = elements × dtype size;
 * tensors cover the data section in order without holes or overlaps, and
 * 8 + N + last end equals the file size; names unique; __metadata__ maps
 * strings to strings. Errors: DCRW_ETRUNCATED (shorter than declared),
 * DCRW_EFORMAT (anything else malformed, including a header length above
 * ST_MAX_HEADER), DCRW_EUNSUPPORTED (more than ST_MAX_DIMS dimensions),
 * DCRW_ENOMEM. */
int dcrw_st_parse(st_file *f, const uint8_t *buf, size_t size);

/* Read a file and parse it as dcrw_st_parse does. The header is checked
 * against the file's size before the data section is read, so a file that
 * the header does not describe exactly costs no more than its header.
 * DCRW_EIO if it cannot be read or is not a regular file. */
int dcrw_st_read(st_file *f, const char *path);

/* dcrw_st_read() without the data section: the header alone, checked as
 * dcrw_st_read() checks it (against the file's size too). f->buf is NULL
 * and f->size 0: the tensors' bytes must not be asked for (st_data). */
int dcrw_st_read_header(st_file *f, const char *path);

void dcrw_st_free(st_file *f);

const st_tensor *dcrw_st_find(const st_file *f, const char *name);
const char *dcrw_st_meta(const st_file *f, const char *key);
/* Pointer to a tensor's bytes (unaligned: copy with memcpy). */
static inline const uint8_t *st_data(const st_file *f, const st_tensor *t) {
    return f->buf + f->data_start + t->begin;
}

typedef struct st_out {
    const char *name;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const float *data; /* F32, elements = product of shape */
} st_out;

/* Write tensors (F32, in the given order) and metadata pairs to path
 * atomically: a temporary file in the same folder (file_temp_beside: the
 * mode of the file it replaces, else 0666 less the umask), written,
 * fsync'ed, renamed over path, then the folder fsync'ed. The JSON header is padded
 * with spaces to a multiple of 8. On any failure the temporary file is
 * removed and path is untouched. DCRW_EIO, DCRW_ENOMEM, DCRW_EINVAL. */
int dcrw_st_write_atomic(const char *path, const st_out *tensors, int ntensors,
                         const char *const *meta_keys, const char *const *meta_vals, int nmeta);

#endif
