/* An example C stage script with all three stages in one plugin: a cleaner, a learner and a predictor for a toy
 * linear model y = w * x. Build it like any plugin:
 *
 *     cc -shared -fPIC -o toy.so toy.c $(pkg-config --cflags --libs nemesyst)
 *
 * and run it with the entry point of each stage:
 *
 *     nemesyst --data-clean --data-cleaner ./toy.so --data-cleaner-entry-point toy_clean --data-collection toy \
 *              --dl-learn --dl-learner ./toy.so --dl-learner-entry-point toy_learn --dl-data-collection toy \
 *              --dl-output-model-collection toy_models \
 *              --i-predict --i-predictor ./toy.so --i-predictor-entry-point toy_predict \
 *              --dl-input-model-collection toy_models --i-output-prediction-collection toy_predictions */
#include <nemesyst.h>
#include <stdio.h>
#include <string.h>

bool toy_clean(nemesyst_ctx_t *ctx, bson_error_t *error);
bool toy_learn(nemesyst_ctx_t *ctx, bson_error_t *error);
bool toy_predict(nemesyst_ctx_t *ctx, bson_error_t *error);

/* Cleaner: 1000 examples of y = 3x; the host inserts them into --data-collection with provenance. */
bool toy_clean(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    for (int i = 0; i < 1000; i++) {
        bson_t *doc = BCON_NEW("x", BCON_DOUBLE(i / 100.0), "y", BCON_DOUBLE(3.0 * i / 100.0), "n", BCON_INT32(i));
        bool ok = nemesyst_emit(ctx, doc, error);
        bson_destroy(doc);
        if (!ok)
            return false;
    }
    return true;
}

/* Learner: least squares over batches of the data pipeline; the weight is the model, stored in GridFS. The host
 * adds to its metadata the count and sha256 of the documents the batches handed out. */
bool toy_learn(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    const char *coll;
    int64_t batch_size;
    bson_t pipeline;
    double sxy = 0, sxx = 0;
    if (!nemesyst_opt_str(ctx, "dl-data-collection", &coll, error) ||
        !nemesyst_opt_int(ctx, "dl-batch-size", &batch_size, error) ||
        !nemesyst_opt_json(ctx, "dl-data-pipeline", &pipeline, error))
        return false;
    nemesyst_batches_t *b = nemesyst_batches_new(ctx, coll, &pipeline, (size_t)batch_size, error);
    bson_destroy(&pipeline);
    if (!b)
        return false;
    const bson_t *const *docs;
    size_t n;
    while (nemesyst_batches_next(b, &docs, &n, error)) {
        for (size_t i = 0; i < n; i++) {
            bson_iter_t x, y;
            if (bson_iter_init_find(&x, docs[i], "x") && bson_iter_init_find(&y, docs[i], "y")) {
                sxy += bson_iter_as_double(&x) * bson_iter_as_double(&y);
                sxx += bson_iter_as_double(&x) * bson_iter_as_double(&x);
            }
        }
    }
    uint64_t count = nemesyst_batches_count(b);
    nemesyst_batches_destroy(b);
    if (error->code != 0)
        return false;
    double w = sxx > 0 ? sxy / sxx : 0;
    nemesyst_log(ctx, NEMESYST_LOG_INFO, "trained on %llu documents: w = %g", (unsigned long long)count, w);
    bson_t *meta = BCON_NEW("model", BCON_UTF8("toy-linear"), "w", BCON_DOUBLE(w));
    bool ok = nemesyst_emit_model(ctx, meta, (const uint8_t *)&w, sizeof w, error);
    bson_destroy(meta);
    return ok;
}

/* The newest model of --dl-input-model-collection (a GridFS bucket: its files sorted by upload date). */
static bool newest_model(nemesyst_ctx_t *ctx, uint8_t **data, size_t *len, bson_error_t *error)
{
    const char *bucket;
    char files[256];
    if (!nemesyst_opt_str(ctx, "dl-input-model-collection", &bucket, error))
        return false;
    snprintf(files, sizeof files, "%s.files", bucket);
    bson_t *pipeline = BCON_NEW("0", "{", "$sort", "{", "uploadDate", BCON_INT32(-1), "}", "}", "1", "{", "$limit",
                                BCON_INT32(1), "}");
    nemesyst_batches_t *b = nemesyst_batches_new(ctx, files, pipeline, 1, error);
    bson_destroy(pipeline);
    if (!b)
        return false;
    const bson_t *const *docs;
    size_t n = 0;
    bson_iter_t id;
    bool found = nemesyst_batches_next(b, &docs, &n, error) && n == 1 && bson_iter_init_find(&id, docs[0], "_id");
    bool ok = found && nemesyst_model_fetch(ctx, bucket, bson_iter_value(&id), data, len, error);
    nemesyst_batches_destroy(b);
    if (!found && error->code == 0)
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_ENOMODEL, "no model in '%s': run the learner first",
                       bucket);
    return ok;
}

/* Predictor: the newest model of --dl-input-model-collection, applied to a few inputs. */
bool toy_predict(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    uint8_t *data;
    size_t len;
    double w;
    memset(error, 0, sizeof *error);
    if (!newest_model(ctx, &data, &len, error))
        return false;
    if (len != sizeof w) {
        bson_free(data);
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "not a toy model (%zu bytes)", len);
        return false;
    }
    memcpy(&w, data, sizeof w);
    bson_free(data);
    for (int x = 0; x < 5; x++) {
        bson_t *doc = BCON_NEW("x", BCON_INT32(x), "y_hat", BCON_DOUBLE(w * x));
        bool ok = nemesyst_emit(ctx, doc, error);
        bson_destroy(doc);
        if (!ok)
            return false;
    }
    return true;
}
