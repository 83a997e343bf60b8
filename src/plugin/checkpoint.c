/* Checkpoints for C plugins (nemesyst.h): the store layer's checkpoint.c over the plugin's own connection. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plugin/plugin-private.h"
#include "provenance/provenance.h"
#include "store/ckpt.h"

/* This script's key in the run ("learn-0"), as run records and provenance write it. */
static void script_key(const nemesyst_ctx_t *ctx, char *out, size_t len)
{
    snprintf(out, len, "%s-%zu", ctx->stage ? ctx->stage : "learn", ctx->position);
}

static bool save(nemesyst_ctx_t *ctx, const uint8_t *data, size_t len, const char *path, int64_t step,
                 const bson_t *metadata, bson_error_t *error)
{
    char key[64];
    int64_t keep = NEM_CHECKPOINT_KEEP_DEFAULT;
    bson_error_t e;
    if (!ctx || (!data && len) || step < 0) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "a checkpoint needs its bytes and a step >= 0");
        return false;
    }
    if (!ctx->run_id) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "no run: NEMESYST_RUN_ID is not set");
        return false;
    }
    /* The items given so far (the metrics of the steps this checkpoint covers) go to the host first: left in the
     * buffer, they would be lost with this process if it were then killed (a stop whose grace is over), while the
     * stored checkpoint says that their steps are done, so the resumed run would never log them again. */
    if (!nemesyst__flush(ctx, error))
        return false;
    if (ctx->group_rank != 0)
        return true; /* member 0 stores the group's state; the others hold the same */
    nem_store_t *store = nemesyst__store(ctx, error);
    if (!store)
        return false;
    (void)nemesyst_opt_int(ctx, "dl-checkpoint-keep", &keep, NULL);
    script_key(ctx, key, sizeof key);
    /* Stored pending; the host commits it (store/ckpt.h) once the items before it are stored too. */
    nem_ckpt_info_t info = {ctx->run_id, key, ctx->attempt, step, ctx->host, ctx->rank, metadata, true};
    bson_value_t id = {0};
    bool ok = path ? nem_ckpt_save_file(store, &info, path, keep, &id, &e)
                   : nem_ckpt_save_buffer(store, &info, data ? data : (const uint8_t *)"", len, keep, &id, &e);
    if (!ok) {
        nemesyst__store_error(error, &e);
        return false;
    }
    bson_t marker = BSON_INITIALIZER, inner;
    BSON_APPEND_DOCUMENT_BEGIN(&marker, "$nemesyst_checkpoint_commit", &inner);
    bson_append_value(&inner, "id", -1, &id);
    BSON_APPEND_INT64(&inner, "step", step);
    bson_append_document_end(&marker, &inner);
    ok = nemesyst__write_item(ctx, &marker, error) && nemesyst__flush(ctx, error);
    bson_destroy(&marker);
    bson_value_destroy(&id);
    return ok;
}

bool nemesyst_checkpoint_save(nemesyst_ctx_t *ctx, const uint8_t *data, size_t len, int64_t step,
                              const bson_t *metadata, bson_error_t *error)
{
    return save(ctx, data, len, NULL, step, metadata, error);
}

bool nemesyst_checkpoint_save_file(nemesyst_ctx_t *ctx, const char *path, int64_t step, const bson_t *metadata,
                                   bson_error_t *error)
{
    if (!path) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "nemesyst_checkpoint_save_file needs a path");
        return false;
    }
    return save(ctx, NULL, 0, path, step, metadata, error);
}

static bool load(nemesyst_ctx_t *ctx, uint8_t **data, size_t *len, const char *path, int64_t *step,
                 bson_t *metadata, bson_error_t *error)
{
    char key[64];
    nem_ckpt_found_t found;
    bson_error_t e;
    if (metadata)
        bson_init(metadata);
    if (!ctx || !ctx->run_id) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "no run: NEMESYST_RUN_ID is not set");
        return false;
    }
    nem_store_t *store = nemesyst__store(ctx, error);
    if (!store)
        return false;
    script_key(ctx, key, sizeof key);
    int rc = path ? nem_ckpt_load_file(store, ctx->run_id, key, path, &found, &e)
                  : nem_ckpt_load_buffer(store, ctx->run_id, key, data, len, &found, &e);
    if (rc < 0) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, e.code == NEM_STORE_EIO ? NEMESYST_EIO : NEMESYST_EDB, "%s",
                       e.message);
    } else if (rc == 0) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_ENOCHECKPOINT, "%s of run %s has no checkpoint yet", key,
                       ctx->run_id);
    } else {
        if (found.skipped[0]) {
            nemesyst_log(ctx, NEMESYST_LOG_WARN, "checkpoint: passed over %s; loaded step %" PRId64, found.skipped,
                         found.step);
            if (!nem_ckpt_trim_after(store, NEM_METRICS_COLLECTION, ctx->run_id, key, found.step, &e))
                nemesyst_log(ctx, NEMESYST_LOG_WARN, "checkpoint: metrics after step %" PRId64 " not removed: %s",
                             found.step, e.message);
        }
        if (step)
            *step = found.step;
        if (metadata) {
            bson_destroy(metadata);
            bson_copy_to(&found.metadata, metadata);
        }
    }
    bson_destroy(&found.metadata);
    return rc == 1;
}

bool nemesyst_checkpoint_load(nemesyst_ctx_t *ctx, uint8_t **data, size_t *len, int64_t *step, bson_t *metadata,
                              bson_error_t *error)
{
    if (!data || !len) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "nemesyst_checkpoint_load needs data and len");
        return false;
    }
    return load(ctx, data, len, NULL, step, metadata, error);
}

bool nemesyst_checkpoint_load_file(nemesyst_ctx_t *ctx, const char *path, int64_t *step, bson_t *metadata,
                                   bson_error_t *error)
{
    if (!path) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "nemesyst_checkpoint_load_file needs a path");
        return false;
    }
    return load(ctx, NULL, NULL, path, step, metadata, error);
}

bool nemesyst_checkpoint_requested(const nemesyst_ctx_t *ctx)
{
    return ctx && ctx->stop_file && access(ctx->stop_file, F_OK) == 0;
}
