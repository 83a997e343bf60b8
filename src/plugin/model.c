/* Stored models for predictors and retraining: GridFS by id, or the input model the host fetched. */
#include "plugin/plugin-private.h"

#include <string.h>

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

/* Through the store's GridFS reader: chunks are read with a cursor batch size bounded by bytes, so a model of any size
 * comes back in replies far below every server's limit, and a missing or short chunk is an error, not a short model. */
bool nemesyst_model_fetch(nemesyst_ctx_t *ctx, const char *bucket, const bson_value_t *id, uint8_t **data,
                          size_t *len, bson_error_t *error)
{
    nem_store_t *store = nemesyst__store(ctx, error);
    bson_error_t e;
    if (!store)
        return false;
    if (!bucket || !id) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "fetching a model needs a bucket and an id");
        return false;
    }
    if (!nem_gridfs_download_to_buffer(store, bucket, id, data, len, &e)) {
        nemesyst__store_error(error, &e);
        return false;
    }
    if (!report_model_used(ctx, bucket, id, error)) {
        bson_free(*data);
        *data = NULL;
        return false;
    }
    return true;
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
