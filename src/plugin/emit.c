/* Items from a plugin: documents, and models announced by the marker document the host understands. */
#include "plugin/plugin-private.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MARKER_MODEL "$nemesyst_model"
#define MARKER_METRIC "$nemesyst_metric"

/* The host stores documents as they are; a top-level '$' key would be taken for a marker or refused by MongoDB
 * later, far from the code that made it. */
static bool check_doc(const bson_t *doc, bson_error_t *error)
{
    bson_iter_t it;
    if (doc->len > NEMESYST_MAX_DOC) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_ETOOBIG,
                       "document of %u bytes is over the 16 MiB limit", doc->len);
        return false;
    }
    if (!bson_iter_init(&it, doc)) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "invalid BSON document");
        return false;
    }
    while (bson_iter_next(&it)) {
        if (bson_iter_key(&it)[0] == '$') {
            bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "top-level key '%s' starts with '$'",
                           bson_iter_key(&it));
            return false;
        }
    }
    return true;
}

bool nemesyst_emit(nemesyst_ctx_t *ctx, const bson_t *doc, bson_error_t *error)
{
    return check_doc(doc, error) && nemesyst__write_item(ctx, doc, error);
}

static bool emit_marker(nemesyst_ctx_t *ctx, const bson_t *metadata, const char *path, bool temp,
                        bson_error_t *error)
{
    bson_t marker = BSON_INITIALIZER, inner;
    bson_t empty = BSON_INITIALIZER;
    BSON_APPEND_DOCUMENT_BEGIN(&marker, MARKER_MODEL, &inner);
    BSON_APPEND_UTF8(&inner, "path", path);
    BSON_APPEND_DOCUMENT(&inner, "metadata", metadata ? metadata : &empty);
    BSON_APPEND_BOOL(&inner, "temp", temp);
    bson_append_document_end(&marker, &inner);
    bool ok = nemesyst__write_item(ctx, &marker, error);
    bson_destroy(&marker);
    bson_destroy(&empty);
    return ok;
}

bool nemesyst_emit_model_file(nemesyst_ctx_t *ctx, const bson_t *metadata, const char *path, bool remove_after,
                              bson_error_t *error)
{
    char *abs = path ? realpath(path, NULL) : NULL;
    if (!abs) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "model file '%s': %s", path ? path : "(null)",
                       strerror(path ? errno : EINVAL));
        return false;
    }
    bool ok = emit_marker(ctx, metadata, abs, remove_after, error);
    free(abs);
    return ok;
}

static bool write_fd(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* The bytes go to a file in the workdir and only the path crosses the pipe: a model can be far larger than any
 * document, and the host streams the file into GridFS. */
bool nemesyst_emit_model(nemesyst_ctx_t *ctx, const bson_t *metadata, const uint8_t *data, size_t len,
                         bson_error_t *error)
{
    char *path = bson_strdup_printf("%s/model-XXXXXX", ctx->workdir ? ctx->workdir : "/tmp");
    int fd = mkstemp(path);
    bool ok = false;
    if (fd < 0)
        goto fail;
    bool wrote = write_fd(fd, data, len);
    if (close(fd) != 0 || !wrote) {
        unlink(path);
        goto fail;
    }
    ok = emit_marker(ctx, metadata, path, true, error);
    bson_free(path);
    return ok;
fail:
    bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EIO, "cannot write model file '%s': %s", path,
                   strerror(errno));
    bson_free(path);
    return false;
}

bool nemesyst_log_metric(nemesyst_ctx_t *ctx, const char *name, int64_t step, double value, bson_error_t *error)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > 128 || !bson_utf8_validate(name, len, false) || step < 0) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG,
                       "a metric needs a name of 1-128 bytes of UTF-8 and a step >= 0 (got '%.40s', %" PRId64 ")",
                       name ? name : "(null)", step);
        return false;
    }
    bson_t marker = BSON_INITIALIZER, m;
    BSON_APPEND_DOCUMENT_BEGIN(&marker, MARKER_METRIC, &m);
    BSON_APPEND_UTF8(&m, "name", name);
    BSON_APPEND_INT64(&m, "step", step);
    BSON_APPEND_DOUBLE(&m, "value", value);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    BSON_APPEND_DATE_TIME(&m, "t", (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
    bson_append_document_end(&marker, &m);
    bool ok = nemesyst__write_item(ctx, &marker, error);
    bson_destroy(&marker);
    return ok;
}
