/* Fashion-MNIST predictor as a C plugin: loads the newest model of --dl-output-model-collection (the GridFS
 * bucket's files sorted by uploadDate, newest first; or the input model when the host hands one), opens its HDF5
 * image in memory (see fashion_mnist_model.h), predicts every test-split document of --data-collection and emits
 * {img_num, prediction, y} for each; logs the test accuracy.
 *
 * Build: cc -shared -fPIC -o fashion_mnist_predictor.so fashion_mnist_predictor.c \
 *            $(pkg-config --cflags --libs nemesyst hdf5-serial) -lm
 * Run:   nemesyst --i-predict --i-predictor ./fashion_mnist_predictor.so --data-collection fashion_mnist \
 *            --dl-output-model-collection fashion_models --i-output-prediction-collection fashion_predictions */
#include "fashion_mnist_model.h"

#include <stdio.h>

#define DEFAULT_BATCH 256

/* The _id of the newest file in bucket, or NEMESYST_ENOMODEL. */
static bool newest_model(nemesyst_ctx_t *ctx, const char *bucket, bson_value_t *id, bson_error_t *error)
{
    mongoc_database_t *db = nemesyst_database(ctx, error);
    if (!db)
        return false;
    char files[512];
    snprintf(files, sizeof files, "%s.files", bucket);
    mongoc_collection_t *coll = mongoc_database_get_collection(db, files);
    bson_t filter = BSON_INITIALIZER;
    bson_t *opts = BCON_NEW("sort", "{", "uploadDate", BCON_INT32(-1), "}", "limit", BCON_INT64(1), "projection", "{",
                            "_id", BCON_INT32(1), "}");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, opts, NULL);
    const bson_t *doc;
    bson_iter_t it;
    bool found = false;
    if (mongoc_cursor_next(cur, &doc) && bson_iter_init_find(&it, doc, "_id")) {
        bson_value_copy(bson_iter_value(&it), id);
        found = true;
    }
    if (!found && !mongoc_cursor_error(cur, error))
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_ENOMODEL,
                       "no model in GridFS bucket '%s': run the learner first", bucket);
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(&filter);
    mongoc_collection_destroy(coll);
    return found;
}

static bool load_model(nemesyst_ctx_t *ctx, fm_model_t *m, bson_error_t *error)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    bson_error_t why;
    const char *bucket = NULL;
    if (nemesyst_input_model(ctx, &bytes, &len, &why)) {
        nemesyst_log(ctx, NEMESYST_LOG_INFO, "using the input model (%zu bytes)", len);
    } else {
        bson_value_t id;
        if (why.domain != NEMESYST_ERROR_DOMAIN || why.code != NEMESYST_ENOMODEL) {
            *error = why;
            return false;
        }
        if (!nemesyst_opt_str(ctx, "dl-output-model-collection", &bucket, error) ||
            !newest_model(ctx, bucket, &id, error))
            return false;
        bool ok = nemesyst_model_fetch(ctx, bucket, &id, &bytes, &len, error);
        if (ok && id.value_type == BSON_TYPE_OID) {
            char hex[25];
            bson_oid_to_string(&id.value.v_oid, hex);
            nemesyst_log(ctx, NEMESYST_LOG_INFO, "using model %s of '%s' (%zu bytes)", hex, bucket, len);
        }
        bson_value_destroy(&id);
        if (!ok)
            return false;
    }
    bool ok = fm_model_load(m, bytes, len, error);
    bson_free(bytes);
    return ok;
}

/* The collection to predict: --data-collection, else --dl-data-collection. */
static bool data_collection(nemesyst_ctx_t *ctx, const char **coll, bson_error_t *error)
{
    if (nemesyst_opt_str(ctx, "data-collection", coll, NULL) && **coll)
        return true;
    return nemesyst_opt_str(ctx, "dl-data-collection", coll, error);
}

bool nemesyst_main(nemesyst_ctx_t *ctx, bson_error_t *error);

bool nemesyst_main(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    const char *coll;
    int64_t batch_size = DEFAULT_BATCH;
    bool ok = false;
    if (!data_collection(ctx, &coll, error))
        return false;
    if (!nemesyst_opt_int(ctx, "dl-batch-size", &batch_size, NULL) || batch_size < 1)
        batch_size = DEFAULT_BATCH;
    fm_model_t *m = bson_malloc0(sizeof *m);
    if (!load_model(ctx, m, error)) {
        bson_free(m);
        return false;
    }
    int64_t t0 = bson_get_monotonic_time();
    bson_t *pipeline = BCON_NEW("0", "{", "$match", "{", "split", BCON_UTF8("test"), "}", "}");
    nemesyst_batches_t *b = nemesyst_batches_new(ctx, coll, pipeline, (size_t)batch_size, error);
    bson_destroy(pipeline);
    if (!b) {
        bson_free(m);
        return false;
    }
    const bson_t *const *docs;
    size_t n;
    uint64_t total = 0, labelled = 0, correct = 0;
    float x[FM_FEATURES], p[FM_CLASSES];
    bson_t out = BSON_INITIALIZER;
    bool step_ok = true;
    while (step_ok && nemesyst_batches_next(b, &docs, &n, error)) {
        for (size_t d = 0; step_ok && d < n; d++) {
            bson_iter_t it;
            if (!(step_ok = fm_pixels(docs[d], x, error)))
                break;
            int pred = fm_forward(m, x, p), y = fm_label(docs[d]);
            bson_reinit(&out);
            if (bson_iter_init_find(&it, docs[d], "img_num"))
                BSON_APPEND_VALUE(&out, "img_num", bson_iter_value(&it));
            BSON_APPEND_INT32(&out, "prediction", pred);
            if (y >= 0) {
                BSON_APPEND_INT32(&out, "y", y);
                labelled++;
                correct += pred == y;
            }
            total++;
            step_ok = nemesyst_emit(ctx, &out, error);
        }
    }
    nemesyst_batches_destroy(b);
    bson_destroy(&out);
    bson_free(m);
    if (!step_ok || error->code != 0)
        return false;
    ok = true;
    if (labelled)
        nemesyst_log(ctx, NEMESYST_LOG_INFO, "predicted %llu test examples: accuracy %.4f (%llu/%llu) in %.2f s",
                     (unsigned long long)total, (double)correct / labelled, (unsigned long long)correct,
                     (unsigned long long)labelled, (bson_get_monotonic_time() - t0) / 1e6);
    else
        nemesyst_log(ctx, NEMESYST_LOG_WARN, "predicted %llu examples, none labelled", (unsigned long long)total);
    return ok;
}
