/* The library's file access: every file it reads is opened by
 * dcrw_file_open_read, every file it writes is made by file_temp_beside and
 * renamed over its destination. */
#ifndef DCRW_LIB_FILE_H
#define DCRW_LIB_FILE_H

#include <stdint.h>

/* Open path for reading if it is a regular file: a FIFO, device, socket or
 * folder is refused with DCRW_EIO naming what it is, without blocking (a
 * FIFO with no writer would hang a plain open). *size is its length. */
int dcrw_file_open_read(const char *path, int *fd, uint64_t *size);

/* "dir/name", dcrw_alloc'ed; NULL when out of memory (the caller reports
 * DCRW_ENOMEM, naming what it was opening or listing). */
char *dcrw_path_join(const char *dir, const char *name);

/* The temporary file of an atomic write of path: created in the same
 * folder under a short name of its own (".dcrw-XXXXXX", so that a path
 * within a few bytes of NAME_MAX still has room), with the mode of the
 * file path names if there is one, else 0666 less the umask. */
typedef struct file_temp {
    char *name; /* dcrw_alloc'ed */
    int fd;     /* open for writing */
    int dir_fd; /* the folder, to make the rename durable */
} file_temp;

/* DCRW_EIO, DCRW_ENOMEM; on failure nothing is left behind. */
int dcrw_file_temp_create(file_temp *t, const char *path);

/* fsync the file, rename it over path, fsync the folder; nothing is
 * allocated, so once the rename is done only the folder's fsync can fail
 * (DCRW_EIO, the new file in place). Before that, on any failure the
 * temporary file is removed and path untouched. t is released either way. */
int dcrw_file_temp_commit(file_temp *t, const char *path);

/* Remove the temporary file and release t (after a failed write). */
void dcrw_file_temp_discard(file_temp *t);

#endif
