/* Opening files to read and making the temporary files of atomic writes. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "file.h"
#include "rng.h"

static const char *kind_of(mode_t mode) {
    if (S_ISDIR(mode)) return "a folder";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a regular file";
}

int dcrw_file_open_read(const char *path, int *fd, uint64_t *size) {
    *fd = -1;
    int f;
    /* O_NONBLOCK: opening a FIFO would otherwise wait for a writer */
    do f = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    while (f < 0 && errno == EINTR);
    if (f < 0) return dcrw_fail(DCRW_EIO, "cannot open %.200s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(f, &st) != 0) {
        int e = errno;
        close(f);
        return dcrw_fail(DCRW_EIO, "cannot stat %.200s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(f);
        return dcrw_fail(DCRW_EIO, "%.200s is %s, not a regular file", path, kind_of(st.st_mode));
    }
    /* a regular file never blocks; the flag goes so reads behave plainly */
    int fl = fcntl(f, F_GETFL);
    if (fl >= 0) (void)fcntl(f, F_SETFL, fl & ~O_NONBLOCK);
    *fd = f;
    *size = (uint64_t)st.st_size;
    return DCRW_OK;
}

char *dcrw_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name), n;
    if (dcrw_add_size(a, b + 2, &n)) return NULL;
    char *p = dcrw_alloc(n);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

/* Length of the folder part of path, without the final '/', or 0 for a
 * name in the current folder; "/x" keeps its "/" (length 1). */
static size_t folder_len(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return 0;
    return slash == path ? 1 : (size_t)(slash - path);
}

/* Six name characters that no other writer (thread or process) at this
 * moment is likely to pick; O_EXCL settles any collision. */
static void random_suffix(char out[6]) {
    static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    static atomic_uint_fast64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t v = rng_key((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec,
                         (uint64_t)getpid(), atomic_fetch_add(&counter, 1));
    for (int i = 0; i < 6; i++, v /= 62) out[i] = chars[v % 62];
}

/* A new file in the folder of path (see file.h), its name in *out. */
static int create_beside(const char *path, char **out, int *fd) {
    static const char stem[] = ".dcrw-XXXXXX";
    const size_t dl = folder_len(path);
    char *t = dcrw_alloc(dl + 1 + sizeof stem);
    if (!t) return DCRW_ENOMEM;
    memcpy(t, path, dl);
    size_t at = dl;
    if (dl && !(dl == 1 && path[0] == '/')) t[at++] = '/';
    memcpy(t + at, stem, sizeof stem);
    char *x = t + at + sizeof stem - 7;
    int f = -1;
    for (int attempt = 0; attempt < 100 && f < 0; attempt++) {
        random_suffix(x);
        /* 0666: the kernel applies the umask, as for any file the user makes */
        do f = open(t, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0666);
        while (f < 0 && errno == EINTR);
        if (f < 0 && errno != EEXIST) break;
    }
    if (f < 0) {
        int e = errno;
        dcrw_free(t);
        return dcrw_fail(DCRW_EIO, "cannot create a temporary file next to %.200s: %s", path,
                         strerror(e));
    }
    *out = t;
    *fd = f;
    return DCRW_OK;
}

/* The folder of path, opened for its fsync. */
static int open_folder(const char *path, int *dir_fd) {
    const size_t dl = folder_len(path);
    char *d = dcrw_alloc(dl + 2);
    if (!d) return DCRW_ENOMEM;
    if (dl)
        memcpy(d, path, dl);
    else
        d[0] = '.';
    d[dl ? dl : 1] = '\0';
    int f;
    do f = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    while (f < 0 && errno == EINTR);
    int e = errno;
    dcrw_free(d);
    if (f < 0)
        return dcrw_fail(DCRW_EIO, "cannot open the folder of %.200s: %s", path, strerror(e));
    *dir_fd = f;
    return DCRW_OK;
}

int dcrw_file_temp_create(file_temp *t, const char *path) {
    t->name = NULL;
    t->fd = t->dir_fd = -1;
    int rc = open_folder(path, &t->dir_fd);
    if (!rc) rc = create_beside(path, &t->name, &t->fd);
    if (rc) {
        dcrw_file_temp_discard(t);
        return rc;
    }
    /* replacing a file keeps its permissions (a 0600 checkpoint stays
     * private); the owner is the writer's, as rename makes it */
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) (void)fchmod(t->fd, st.st_mode & 0777);
    return DCRW_OK;
}

void dcrw_file_temp_discard(file_temp *t) {
    if (t->fd >= 0) close(t->fd);
    if (t->name) unlink(t->name);
    if (t->dir_fd >= 0) close(t->dir_fd);
    dcrw_free(t->name);
    t->name = NULL;
    t->fd = t->dir_fd = -1;
}

int dcrw_file_temp_commit(file_temp *t, const char *path) {
    const char *what = "fsync";
    int bad = fsync(t->fd) != 0;
    if (!bad) {
        int cr = close(t->fd);
        t->fd = -1;
        what = "close";
        bad = cr != 0;
    }
    if (!bad) {
        what = "rename";
        bad = rename(t->name, path) != 0;
    }
    if (bad) {
        int e = errno;
        int rc = dcrw_fail(DCRW_EIO, "cannot %s %.200s for %.200s: %s", what, t->name, path,
                           strerror(e));
        dcrw_file_temp_discard(t);
        return rc;
    }
    dcrw_free(t->name); /* renamed: nothing left to remove */
    t->name = NULL;
    int rc = DCRW_OK;
    /* the rename is durable only once the folder is synced; some file
     * systems cannot sync a folder (EINVAL), and then there is no more to do */
    if (fsync(t->dir_fd) != 0 && errno != EINVAL)
        rc = dcrw_fail(DCRW_EIO, "%.200s was written but its folder could not be synced: %s", path,
                       strerror(errno));
    dcrw_file_temp_discard(t);
    return rc;
}
