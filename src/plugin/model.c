/* Stored models for predictors and retraining: GridFS by id, or the input model the host fetched. */
#include "plugin/plugin-private.h"

#include <string.h>

static bool read_stream(mongoc_stream_t *s, uint8_t **data, size_t *len, bson_error_t *error)
{
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = bson_malloc(cap);
    ssize_t got;
    while ((got = mongoc_stream_read(s, buf + n, cap - n, 0, 0)) > 0) {
        n += (size_t)got;
        if (n == cap)
            buf = bson_realloc(buf, cap *= 2);
    }
    if (got < 0) {
        bson_free(buf);
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EIO, "reading the stored model failed");
        return false;
    }
    *data = buf;
    *len = n;
    return true;
}

/* Tells the host which model this script loaded: its later predictions reference it. */
static bool report_model_used(nemesyst_ctx_t *ctx, const char *bucket, const bson_value_t *id, bson_error_t *error)
{
    bson_t marker = BSON_INITIALIZER, rec, model;
    char files[512];
    snprintf(files, sizeof files, "%s.files", bucket);
    BSON_APPEND_DOCUMENT_BEGIN(&marker, "$nemesyst_consumed", &rec);
    BSON_APPEND_UTF8(&rec, "collection", files);
    BSON_APPEND_INT64(&rec, "count", 1);
    BSON_APPEND_DOCUMENT_BEGIN(&rec, "model", &model);
    BSON_APPEND_UTF8(&model, "bucket", bucket);
    BSON_APPEND_VALUE(&model, "id", id);
    bson_append_document_end(&rec, &model);
    bson_append_document_end(&marker, &rec);
    bool ok = nemesyst__write_item(ctx, &marker, error);
    bson_destroy(&marker);
    return ok;
}

bool nemesyst_model_fetch(nemesyst_ctx_t *ctx, const char *bucket, const bson_value_t *id, uint8_t **data,
                          size_t *len, bson_error_t *error)
{
    mongoc_database_t *db = nemesyst_database(ctx, error);
    mongoc_gridfs_bucket_t *gb = NULL;
    mongoc_stream_t *s = NULL;
    bool ok = false;
    if (!db)
        return false;
    if (!bucket || !id) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "fetching a model needs a bucket and an id");
        return false;
    }
    bson_t *opts = BCON_NEW("bucketName", BCON_UTF8(bucket));
    gb = mongoc_gridfs_bucket_new(db, opts, NULL, error);
    bson_destroy(opts);
    if (!gb)
        goto out;
    s = mongoc_gridfs_bucket_open_download_stream(gb, id, error);
    if (!s) {
        if (error && error->code == MONGOC_ERROR_GRIDFS_BUCKET_FILE_NOT_FOUND) {
            char msg[sizeof error->message];
            bson_strncpy(msg, error->message, sizeof msg);
            bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_ENOMODEL, "no model in '%s': %s", bucket, msg);
        }
        goto out;
    }
    ok = read_stream(s, data, len, error);
    if (ok)
        ok = report_model_used(ctx, bucket, id, error);
out:
    mongoc_stream_destroy(s);
    mongoc_gridfs_bucket_destroy(gb);
    return ok;
}

bool nemesyst_input_model(nemesyst_ctx_t *ctx, uint8_t **data, size_t *len, bson_error_t *error)
{
    if (!ctx->input_model) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_ENOMODEL,
                       "no input model: this run does not retrain (--dl-input-model-collection)");
        return false;
    }
    return nemesyst__read_file(ctx->input_model, data, len, error);
}
