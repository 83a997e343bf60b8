/* The plugin's I/O: the files it reads, the item pipe to the host (buffered, whole documents) and its log lines. */
#include "plugin/plugin-private.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

bool nemesyst__read_file(const char *path, uint8_t **data, size_t *len, bson_error_t *error)
{
    FILE *f = fopen(path, "rb");
    size_t cap = 1 << 16, n = 0, got;
    uint8_t *buf = NULL;
    if (!f)
        goto fail;
    buf = bson_malloc(cap);
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap)
            buf = bson_realloc(buf, cap *= 2);
    }
    if (ferror(f))
        goto fail;
    fclose(f);
    *data = buf;
    *len = n;
    return true;
fail:
    bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EIO, "cannot read '%s': %s", path, strerror(errno));
    if (f)
        fclose(f);
    bson_free(buf);
    return false;
}

static bool write_all(int fd, const uint8_t *p, size_t n, bson_error_t *error)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EIO, "cannot send items to the host: %s",
                           strerror(errno));
            return false;
        }
        p += w;
        n -= (size_t)w;
    }
    return true;
}

bool nemesyst__flush(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    bool ok = write_all(ctx->item_fd, ctx->out, ctx->out_len, error);
    ctx->out_len = 0;
    return ok;
}

bool nemesyst__write_item(nemesyst_ctx_t *ctx, const bson_t *doc, bson_error_t *error)
{
    ctx->n_items++;
    if (ctx->out_len + doc->len > sizeof ctx->out && !nemesyst__flush(ctx, error))
        return false;
    if (doc->len > sizeof ctx->out)
        return write_all(ctx->item_fd, bson_get_data(doc), doc->len, error);
    memcpy(ctx->out + ctx->out_len, bson_get_data(doc), doc->len);
    ctx->out_len += doc->len;
    return true;
}

/* The host reads this process's stderr line by line; "<N>" sets the level of each line (sd-daemon style). */
void nemesyst_log(nemesyst_ctx_t *ctx, nemesyst_log_level_t level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = bson_strdupv_printf(fmt, ap);
    va_end(ap);
    bson_string_t *out = bson_string_new(NULL);
    for (char *line = msg, *nl; line; line = nl && nl[1] ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        bson_string_append_printf(out, "<%d>%.*s\n", (int)level, nl ? (int)(nl - line) : (int)strlen(line), line);
    }
    bson_error_t ignored;
    write_all(STDERR_FILENO, (const uint8_t *)out->str, out->len, &ignored);
    bson_string_free(out, true);
    bson_free(msg);
}
