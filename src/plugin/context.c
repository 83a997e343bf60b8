/* The plugin context's life: built from the NEMESYST_* environment of the child (the connection details, the
 * resolved options, the pipe items go back to the host on), ended with the end-of-output record, destroyed; and
 * who the script is. The connection is connection.c's, the item pipe and files io.c's. */
#include "plugin/plugin-private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *env_dup(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? bson_strdup(v) : NULL;
}

static int env_fd(const char *name)
{
    const char *v = getenv(name);
    char *end;
    long fd = v ? strtol(v, &end, 10) : -1;
    return v && *v && *end == '\0' && fd >= 0 && fd < 65536 ? (int)fd : -1;
}

/* Secrets arrive on inherited pipes, never in argv or the environment; read each whole, then close it. */
static void read_secret(const char *variable, char **out)
{
    int fd = env_fd(variable);
    char buf[4097];
    size_t n = 0;
    ssize_t got;
    if (fd < 0)
        return;
    while (n < sizeof buf - 1 && ((got = read(fd, buf + n, sizeof buf - 1 - n)) > 0 || (got < 0 && errno == EINTR)))
        if (got > 0)
            n += (size_t)got;
    close(fd);
    buf[n] = '\0';
    *out = bson_strdup(buf);
    memset(buf, 0, sizeof buf);
}

static bool read_password(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    (void)error;
    read_secret("NEMESYST_PASSWORD_FD", &ctx->password);
    read_secret("NEMESYST_TLS_KEY_PASSWORD_FD", &ctx->tls_key_password);
    return true;
}

static bool load_options(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    const char *path = getenv("NEMESYST_ARGS_FILE");
    uint8_t *json;
    size_t len;
    bool ok;
    if (!path || !*path) {
        bson_init(&ctx->options);
        return true;
    }
    if (!nemesyst__read_file(path, &json, &len, error)) {
        bson_init(&ctx->options);
        return false;
    }
    ok = bson_init_from_json(&ctx->options, (const char *)json, (ssize_t)len, error);
    if (!ok)
        bson_init(&ctx->options);
    bson_free(json);
    return ok;
}

nemesyst_ctx_t *nemesyst__ctx_from_env(bson_error_t *error)
{
    nemesyst_ctx_t *ctx = BSON_ALIGNED_ALLOC0(nemesyst_ctx_t); /* it embeds a bson_t (128-byte aligned) */
    const char *pos = getenv("NEMESYST_POSITION");
    ctx->stage = env_dup("NEMESYST_STAGE");
    ctx->run_id = env_dup("NEMESYST_RUN_ID");
    ctx->workdir = env_dup("NEMESYST_WORKDIR");
    ctx->db_uri = env_dup("NEMESYST_DB_URI");
    ctx->db_name = env_dup("NEMESYST_DB_NAME");
    ctx->input_model = env_dup("NEMESYST_INPUT_MODEL");
    ctx->input_model_id = env_dup("NEMESYST_INPUT_MODEL_ID");
    ctx->entry_point = env_dup("NEMESYST_ENTRY_POINT");
    ctx->position = pos ? (size_t)strtoul(pos, NULL, 10) : 0;
    ctx->attempt = getenv("NEMESYST_ATTEMPT") ? strtoll(getenv("NEMESYST_ATTEMPT"), NULL, 10) : 1;
    ctx->stop_file = env_dup("NEMESYST_STOP_FILE");
    ctx->host = env_dup("NEMESYST_HOST");
    ctx->rank = getenv("NEMESYST_RANK") ? (int)strtol(getenv("NEMESYST_RANK"), NULL, 10) : 0;
    ctx->item_fd = env_fd("NEMESYST_ITEM_FD");
    ctx->group_fd = env_fd("NEMESYST_GROUP_FD");
    ctx->group_size = 1;
    if (getenv("NEMESYST_GROUP_SIZE")) {
        ctx->group_size = (int)strtol(getenv("NEMESYST_GROUP_SIZE"), NULL, 10);
        ctx->group_rank = getenv("NEMESYST_GROUP_RANK") ? (int)strtol(getenv("NEMESYST_GROUP_RANK"), NULL, 10) : 0;
        if (ctx->group_size < 1)
            ctx->group_size = 1;
    }
    const char *shard = getenv("NEMESYST_SHARD");
    if (shard && *shard && ctx->group_size > 1) {
        bson_error_t e;
        if (!(ctx->shard = bson_new_from_json((const uint8_t *)shard, -1, &e))) {
            bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "NEMESYST_SHARD is not JSON: %s", e.message);
            goto fail;
        }
        ctx->shard_collection = env_dup("NEMESYST_SHARD_COLLECTION");
    }
    if (!load_options(ctx, error) || !read_password(ctx, error))
        goto fail;
    if (ctx->item_fd < 0) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG,
                       "NEMESYST_ITEM_FD is not set: plugins run under nemesyst, not on their own");
        goto fail;
    }
    return ctx;
fail:
    nemesyst__ctx_destroy(ctx);
    return NULL;
}

void nemesyst__ctx_destroy(nemesyst_ctx_t *ctx)
{
    if (!ctx)
        return;
    while (ctx->n_live > 0)
        nemesyst_batches_destroy(ctx->live[ctx->n_live - 1]);
    bson_free(ctx->live);
    if (ctx->tls_key_password) {
        memset(ctx->tls_key_password, 0, strlen(ctx->tls_key_password));
        bson_free(ctx->tls_key_password);
    }
    if (ctx->password) {
        memset(ctx->password, 0, strlen(ctx->password));
        bson_free(ctx->password);
    }
    if (ctx->shard)
        bson_destroy(ctx->shard);
    bson_free(ctx->shard_collection);
    bson_free(ctx->stop_file);
    bson_free(ctx->host);
    if (ctx->group_fd >= 0)
        close(ctx->group_fd);
    for (size_t i = 0; i < ctx->n_reported; i++)
        bson_free(ctx->reported[i]);
    bson_free(ctx->reported);
    nem_store_destroy(ctx->store);
    mongoc_database_destroy(ctx->db);
    mongoc_client_destroy(ctx->client);
    char *strs[] = {ctx->stage, ctx->run_id, ctx->workdir, ctx->db_uri, ctx->db_name, ctx->input_model,
                    ctx->input_model_id, ctx->entry_point};
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++)
        bson_free(strs[i]);
    bson_destroy(&ctx->options);
    bson_free(ctx);
}

bool nemesyst__ctx_finish(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    for (size_t i = 0; i < ctx->n_live; i++)
        nemesyst__report_batches(ctx->live[i]);
    return nemesyst__flush(ctx, error);
}

bool nemesyst__ctx_end(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    bson_t end = BSON_INITIALIZER, inner;
    BSON_APPEND_DOCUMENT_BEGIN(&end, "$nemesyst_end", &inner);
    BSON_APPEND_INT64(&inner, "items", (int64_t)ctx->n_items);
    bson_append_document_end(&end, &inner);
    bool ok = nemesyst__write_item(ctx, &end, error) && nemesyst__flush(ctx, error);
    bson_destroy(&end);
    return ok;
}

bool nemesyst__host_run(nemesyst_entry_fn entry, bson_error_t *error)
{
    nemesyst_ctx_t *ctx = nemesyst__ctx_from_env(error);
    if (!ctx)
        return false;
    bool ok = entry(ctx, error);
    bson_error_t ferr;
    bool flushed = nemesyst__ctx_finish(ctx, &ferr); /* a failed script's items too, for --keep-partial */
    if (ok && !(flushed && nemesyst__ctx_end(ctx, &ferr))) {
        ok = false;
        *error = ferr;
    }
    /* Disconnect before the host reports, so the reason is the last line the runner sees. */
    nemesyst__ctx_destroy(ctx);
    return ok;
}

const char *nemesyst_stage(const nemesyst_ctx_t *ctx)
{
    return ctx->stage;
}

size_t nemesyst_position(const nemesyst_ctx_t *ctx)
{
    return ctx->position;
}

const char *nemesyst_run_id(const nemesyst_ctx_t *ctx)
{
    return ctx->run_id;
}

const char *nemesyst_workdir(const nemesyst_ctx_t *ctx)
{
    return ctx->workdir;
}

const bson_t *nemesyst_options(const nemesyst_ctx_t *ctx)
{
    return &ctx->options;
}

const char *nemesyst_input_model_path(const nemesyst_ctx_t *ctx)
{
    return ctx->input_model;
}
