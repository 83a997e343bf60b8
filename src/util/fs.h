/* Small file-system helpers shared across concerns. */
#ifndef NEM_UTIL_FS_H
#define NEM_UTIL_FS_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "util/errors.h"

/* Errors: NEM_ERROR_FS (util/errors.h); codes are errno values (0 when the file is of the wrong kind or size). */

/* Removes path and everything below it, without following symbolic links. Returns false if anything stayed. */
bool nem_rmtree(const char *path);

/* What a file of this mode is, for messages: "a directory", "a FIFO", "a character device", ... */
const char *nem_file_kind(mode_t mode);

/* Opens a file that an option names, for reading, without ever blocking or taking a controlling terminal: it is
 * stat()ed first (so a FIFO or a device is never opened), then opened O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_NOCTTY and
 * fstat()ed again. Refuses anything but a regular file, and a file over max_bytes (0 = no limit). Returns the fd
 * (blocking again), with its stat in *st when st is not NULL; or -1 with a one-line message in err:
 *   "cannot read WHAT 'PATH': it is a FIFO, not a regular file"
 *   "cannot read WHAT 'PATH': it is larger than N bytes (M bytes)"
 *   "cannot read WHAT 'PATH': No such file or directory" */
int nem_open_regular_file(const char *path, size_t max_bytes, const char *what, struct stat *st, bson_error_t *err);

/* Reads all of fd (at most max_bytes; more is an error naming WHAT and PATH) into a NUL-terminated buffer that the
 * caller frees (bson_free; bson_zero_free for secrets). */
bool nem_read_fd(int fd, const char *path, size_t max_bytes, const char *what, char **buf, size_t *len,
                 bson_error_t *err);

/* nem_open_regular_file, then nem_read_fd: the whole text of a regular file of at most max_bytes. */
bool nem_read_regular_file(const char *path, size_t max_bytes, const char *what, char **buf, size_t *len,
                           bson_error_t *err);

#endif
