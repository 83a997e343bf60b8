/* Non-blocking reads into a growable buffer, shared by the item and log channels; the runner's errors. */
#include "stage/runner/runner-private.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK (64 * 1024)

void nem_rbuf_reserve(nem_rbuf_t *b, size_t more)
{
    if (b->len + more <= b->cap)
        return;
    /* Reclaim consumed space first: most of the time that is enough and nothing grows. */
    if (b->start > 0) {
        memmove(b->data, b->data + b->start, b->len - b->start);
        b->len -= b->start;
        b->start = 0;
        if (b->len + more <= b->cap)
            return;
    }
    size_t cap = b->cap ? b->cap : READ_CHUNK;
    while (cap < b->len + more)
        cap *= 2;
    b->data = bson_realloc(b->data, cap);
    b->cap = cap;
}

void nem_rbuf_consume(nem_rbuf_t *b, size_t n)
{
    b->start += n;
    if (b->start == b->len)
        b->start = b->len = 0;
}

void nem_rbuf_free(nem_rbuf_t *b)
{
    bson_free(b->data);
    memset(b, 0, sizeof *b);
}

bool nem_rbuf_fill(nem_rbuf_t *b, int fd, size_t budget, bool *closed)
{
    size_t got = 0;
    *closed = false;
    while (got < budget) {
        nem_rbuf_reserve(b, READ_CHUNK);
        ssize_t n = read(fd, b->data + b->len, b->cap - b->len);
        if (n > 0) {
            b->len += (size_t)n;
            got += (size_t)n;
        } else if (n == 0) {
            *closed = true;
            return true;
        } else if (errno == EINTR) {
            continue;
        } else {
            return errno == EAGAIN || errno == EWOULDBLOCK;
        }
    }
    return true;
}

/* A runner's error, prefixed with the script's label (runner-private.h). */
bool nem_runner_error(const nem_runner_t *r, bson_error_t *err, int code, const char *fmt, ...)
{
    char msg[BSON_ERROR_BUFFER_SIZE];
    va_list ap;
    va_start(ap, fmt);
    bson_vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    bson_set_error(err, NEM_ERROR_RUNNER, (uint32_t)code, "%s: %s", r->label, msg);
    return false;
}
