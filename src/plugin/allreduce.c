/* Learner groups in a C plugin: who am I in the group, and nemesyst_allreduce over the socket to the worker rank
 * (util/groupwire.h), which reduces across the group over MPI. */
#include "plugin/plugin-private.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/groupwire.h"

int nemesyst_group_rank(const nemesyst_ctx_t *ctx)
{
    return ctx ? ctx->group_rank : 0;
}

int nemesyst_group_size(const nemesyst_ctx_t *ctx)
{
    return ctx ? ctx->group_size : 1;
}

static bool write_full(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL); /* a rank gone is an error here, not a SIGPIPE */
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        len -= (size_t)w;
    }
    return true;
}

static bool read_full(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t r = read(fd, p, len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        p += r;
        len -= (size_t)r;
    }
    return true;
}

bool nemesyst_allreduce(nemesyst_ctx_t *ctx, void *buf, size_t count, nemesyst_dtype_t dtype, nemesyst_op_t op,
                        bson_error_t *error)
{
    uint32_t es = nem_group_dtype_size((uint32_t)dtype);
    if (!ctx || (!buf && count) || !es || (uint32_t)op >= NEM_GROUP_NOPS || count == 0 ||
        count > NEM_GROUP_MAX_COUNT) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG,
                       "nemesyst_allreduce: bad arguments (count %zu, dtype %d, op %d): count must be 1 to %u",
                       count, (int)dtype, (int)op, NEM_GROUP_MAX_COUNT);
        return false;
    }
    if (ctx->group_size <= 1)
        return true; /* alone: the sum over one member is its own */
    if (ctx->group_fd < 0) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EIO,
                       "nemesyst_allreduce: member %d of %d has no NEMESYST_GROUP_FD", ctx->group_rank,
                       ctx->group_size);
        return false;
    }
    /* the items queued so far go first: what the member emitted stays in order with its progress */
    if (!nemesyst__flush(ctx, error))
        return false;
    nem_group_wire_t h = {NEM_GROUP_MAGIC, (uint32_t)dtype, (uint32_t)op, 0, count};
    size_t len = count * es;
    if (!write_full(ctx->group_fd, &h, sizeof h) || !write_full(ctx->group_fd, buf, len) ||
        !read_full(ctx->group_fd, &h, sizeof h) || h.magic != NEM_GROUP_MAGIC) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EIO,
                       "nemesyst_allreduce: member %d of %d: the learner group ended (its rank stopped answering)",
                       ctx->group_rank, ctx->group_size);
        return false;
    }
    if (h.status != 0 || h.count != count || !read_full(ctx->group_fd, buf, len)) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EIO,
                       "nemesyst_allreduce: member %d of %d: the learner group failed", ctx->group_rank,
                       ctx->group_size);
        return false;
    }
    return true;
}
