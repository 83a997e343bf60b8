/* File-system helpers. */
#define _XOPEN_SOURCE 700
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 ? 0 : -1;
}

bool nem_rmtree(const char *path)
{
    return nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS) == 0;
}

const char *nem_file_kind(mode_t mode)
{
    if (S_ISREG(mode))
        return "a regular file";
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    if (S_ISSOCK(mode))
        return "a socket";
    if (S_ISLNK(mode))
        return "a symbolic link";
    return "not a regular file";
}

static bool check_stat(const struct stat *st, const char *path, size_t max_bytes, const char *what,
                       bson_error_t *err)
{
    if (!S_ISREG(st->st_mode)) {
        bson_set_error(err, NEM_ERROR_FS, 0, "cannot read %s '%s': it is %s, not a regular file", what, path,
                       nem_file_kind(st->st_mode));
        return false;
    }
    if (max_bytes && st->st_size > 0 && (uintmax_t)st->st_size > (uintmax_t)max_bytes) {
        bson_set_error(err, NEM_ERROR_FS, 0, "cannot read %s '%s': it is larger than %zu bytes (%jd bytes)", what,
                       path, max_bytes, (intmax_t)st->st_size);
        return false;
    }
    return true;
}

int nem_open_regular_file(const char *path, size_t max_bytes, const char *what, struct stat *st_out,
                          bson_error_t *err)
{
    struct stat st;
    int fd;
    if (!path || !*path) {
        bson_set_error(err, NEM_ERROR_FS, ENOENT, "cannot read %s '': the path is empty", what);
        return -1;
    }
    /* stat first, so that a FIFO, a terminal or another device is refused without being opened at all. */
    if (stat(path, &st) != 0) {
        int e = errno;
        bson_set_error(err, NEM_ERROR_FS, (uint32_t)e, "cannot read %s '%s': %s", what, path, strerror(e));
        return -1;
    }
    if (!check_stat(&st, path, max_bytes, what, err))
        return -1;
    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        bson_set_error(err, NEM_ERROR_FS, (uint32_t)e, "cannot read %s '%s': %s", what, path, strerror(e));
        return -1;
    }
    /* The path may have been replaced between stat and open: what counts is what was opened. */
    if (fstat(fd, &st) != 0) {
        int e = errno;
        bson_set_error(err, NEM_ERROR_FS, (uint32_t)e, "cannot read %s '%s': %s", what, path, strerror(e));
        close(fd);
        return -1;
    }
    if (!check_stat(&st, path, max_bytes, what, err)) {
        close(fd);
        return -1;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0)
        (void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    if (st_out)
        *st_out = st;
    return fd;
}

bool nem_read_fd(int fd, const char *path, size_t max_bytes, const char *what, char **buf, size_t *len,
                 bson_error_t *err)
{
    size_t cap = 4096, n = 0;
    char *text = bson_malloc(cap + 1);
    for (;;) {
        if (n == cap) {
            /* Grows past max_bytes by one byte at most, which is how a file that grew after fstat is caught. */
            if (max_bytes && cap > max_bytes)
                break;
            size_t ncap = cap * 2;
            if (max_bytes && ncap > max_bytes + 1)
                ncap = max_bytes + 1;
            char *grown = bson_malloc(ncap + 1);
            memcpy(grown, text, n);
            bson_zero_free(text, cap + 1); /* the buffer may hold a secret */
            text = grown;
            cap = ncap;
        }
        ssize_t r = read(fd, text + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            bson_set_error(err, NEM_ERROR_FS, (uint32_t)e, "cannot read %s '%s': %s", what, path, strerror(e));
            bson_zero_free(text, cap + 1);
            return false;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (max_bytes && n > max_bytes) {
        bson_set_error(err, NEM_ERROR_FS, 0, "cannot read %s '%s': it is larger than %zu bytes", what, path,
                       max_bytes);
        bson_zero_free(text, cap + 1);
        return false;
    }
    text[n] = '\0';
    *buf = text;
    if (len)
        *len = n;
    return true;
}

bool nem_read_regular_file(const char *path, size_t max_bytes, const char *what, char **buf, size_t *len,
                           bson_error_t *err)
{
    int fd = nem_open_regular_file(path, max_bytes, what, NULL, err);
    if (fd < 0)
        return false;
    bool ok = nem_read_fd(fd, path, max_bytes, what, buf, len, err);
    close(fd);
    return ok;
}
