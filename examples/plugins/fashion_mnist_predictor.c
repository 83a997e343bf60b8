/* Fashion-MNIST predictor as a C plugin: loads the newest model of --dl-output-model-collection (the GridFS
 * bucket's files sorted by uploadDate, newest first; or the input model when the host hands one), opens its HDF5
 * image in memory (the 784-256-10 MLP of fashion_mnist_model.h; the old softmax-regression layout is refused),
 * predicts every test-split document of --data-collection, --dl-batch-size at a time through OpenBLAS, and emits
 * {img_num, prediction, y} for each. Then it logs the test accuracy and emits one summary document into the same
 * collection, {summary: true, test_accuracy, correct, labelled, predicted, model, model_bucket}: model is the
 * GridFS _id of the model used (whose metadata has its train_accuracy and lineage), so the test accuracy can be
 * read back from the database (find({summary: true})); a model the host handed has no known _id, and the summary
 * says model_source "input model" instead. The predictor cannot add to the model's own metadata: stored models are
 * not changed after the fact.
 *
 * Build: cc -shared -fPIC -o fashion_mnist_predictor.so fashion_mnist_predictor.c \
 *            $(pkg-config --cflags --libs nemesyst hdf5-serial openblas) -lm
 * Run:   nemesyst --i-predict --i-predictor ./fashion_mnist_predictor.so --data-collection fashion_mnist \
 *            --dl-output-model-collection fashion_models --i-output-prediction-collection fashion_predictions */
#include "fashion_mnist_model.h"

#include <stdio.h>

#define DEFAULT_BATCH 256

/* The _id of the newest MLP in bucket (metadata.model: other learners, such as the PyTorch CNN, may share the
 * bucket), or NEMESYST_ENOMODEL. */
static bool newest_model(nemesyst_ctx_t *ctx, const char *bucket, bson_value_t *id, bson_error_t *error)
{
    mongoc_database_t *db = nemesyst_database(ctx, error);
    if (!db)
        return false;
    char files[512];
    snprintf(files, sizeof files, "%s.files", bucket);
    mongoc_collection_t *coll = mongoc_database_get_collection(db, files);
    bson_t filter = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&filter, "metadata.model", "fashion_mnist_mlp");
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
                       "no MLP model in GridFS bucket '%s': run the C learner first", bucket);
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(&filter);
    mongoc_collection_destroy(coll);
    return found;
}

/* Where the model came from: the GridFS file (bucket and _id), or the host's input model (bucket NULL). */
typedef struct {
    const char *bucket;
    bson_value_t id;
} model_source_t;

/* Loads the input model when the host hands one, else the newest model of --dl-output-model-collection. */
static bool load_model(nemesyst_ctx_t *ctx, fm_model_t *m, model_source_t *src, bson_error_t *error)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    bson_error_t why;
    memset(src, 0, sizeof *src);
    if (nemesyst_input_model(ctx, &bytes, &len, &why)) {
        nemesyst_log(ctx, NEMESYST_LOG_INFO, "using the input model (%zu bytes)", len);
    } else {
        if (why.domain != NEMESYST_ERROR_DOMAIN || why.code != NEMESYST_ENOMODEL) {
            *error = why;
            return false;
        }
        const char *bucket;
        if (!nemesyst_opt_str(ctx, "dl-output-model-collection", &bucket, error) ||
            !newest_model(ctx, bucket, &src->id, error))
            return false;
        src->bucket = bucket; /* from here on src->id holds a value to destroy */
        if (!nemesyst_model_fetch(ctx, src->bucket, &src->id, &bytes, &len, error))
            return false;
        if (src->id.value_type == BSON_TYPE_OID) {
            char hex[25];
            bson_oid_to_string(&src->id.value.v_oid, hex);
            nemesyst_log(ctx, NEMESYST_LOG_INFO, "using model %s of '%s' (%zu bytes)", hex, src->bucket, len);
        }
    }
    bool ok = fm_model_load(m, bytes, len, error);
    bson_free(bytes);
    return ok;
}

static void model_source_destroy(model_source_t *src)
{
    if (src->bucket)
        bson_value_destroy(&src->id);
}

/* The collection to predict: --data-collection, else --dl-data-collection. */
static bool data_collection(nemesyst_ctx_t *ctx, const char **coll, bson_error_t *error)
{
    if (nemesyst_opt_str(ctx, "data-collection", coll, NULL) && **coll)
        return true;
    return nemesyst_opt_str(ctx, "dl-data-collection", coll, error);
}

/* The predictor's work arrays for batches of up to batch rows, and its counts. */
typedef struct {
    size_t batch;
    float *x, *h, *p; /* [batch, 784], [batch, 256], [batch, 10] */
    int *y;           /* [batch] */
    uint64_t predicted, labelled, correct;
} predictor_t;

static predictor_t *predictor_new(size_t batch)
{
    predictor_t *pr = bson_malloc0(sizeof *pr);
    pr->batch = batch;
    pr->x = bson_malloc(batch * FM_FEATURES * sizeof(float));
    pr->h = bson_malloc(batch * FM_HIDDEN * sizeof(float));
    pr->p = bson_malloc(batch * FM_CLASSES * sizeof(float));
    pr->y = bson_malloc(batch * sizeof(int));
    return pr;
}

static void predictor_destroy(predictor_t *pr)
{
    bson_free(pr->x);
    bson_free(pr->h);
    bson_free(pr->p);
    bson_free(pr->y);
    bson_free(pr);
}

/* Predicts a batch of n documents in one forward pass and emits {img_num, prediction, y} for each. */
static bool predict_batch(nemesyst_ctx_t *ctx, const fm_model_t *m, predictor_t *pr, const bson_t *const *docs,
                          size_t n, bson_error_t *error)
{
    if (!fm_batch_input(docs, n, pr->x, pr->y, error))
        return false;
    fm_forward(m, pr->x, pr->h, pr->p, n);
    bson_t out = BSON_INITIALIZER;
    bool ok = true;
    for (size_t d = 0; ok && d < n; d++) {
        bson_iter_t it;
        int pred = fm_argmax(pr->p + d * FM_CLASSES, FM_CLASSES), y = pr->y[d];
        bson_reinit(&out);
        if (bson_iter_init_find(&it, docs[d], "img_num"))
            BSON_APPEND_VALUE(&out, "img_num", bson_iter_value(&it));
        BSON_APPEND_INT32(&out, "prediction", pred);
        if (y >= 0) {
            BSON_APPEND_INT32(&out, "y", y);
            pr->labelled++;
            pr->correct += pred == y;
        }
        pr->predicted++;
        ok = nemesyst_emit(ctx, &out, error);
    }
    bson_destroy(&out);
    return ok;
}

/* The summary document: the test accuracy (when some documents had labels) and which model earned it. */
static bool emit_summary(nemesyst_ctx_t *ctx, const predictor_t *pr, const model_source_t *src, bson_error_t *error)
{
    bson_t doc = BSON_INITIALIZER;
    BSON_APPEND_BOOL(&doc, "summary", true);
    if (pr->labelled)
        BSON_APPEND_DOUBLE(&doc, "test_accuracy", (double)pr->correct / pr->labelled);
    BSON_APPEND_INT64(&doc, "correct", (int64_t)pr->correct);
    BSON_APPEND_INT64(&doc, "labelled", (int64_t)pr->labelled);
    BSON_APPEND_INT64(&doc, "predicted", (int64_t)pr->predicted);
    if (src->bucket) {
        BSON_APPEND_VALUE(&doc, "model", &src->id);
        BSON_APPEND_UTF8(&doc, "model_bucket", src->bucket);
    } else {
        BSON_APPEND_UTF8(&doc, "model_source", "input model");
    }
    BSON_APPEND_UTF8(&doc, "architecture", FM_MODEL_NAME);
    bool ok = nemesyst_emit(ctx, &doc, error);
    bson_destroy(&doc);
    return ok;
}

/* Streams the test split of coll through the model. */
static bool predict_test_split(nemesyst_ctx_t *ctx, const fm_model_t *m, predictor_t *pr, const char *coll,
                               bson_error_t *error)
{
    bson_t *pipeline = BCON_NEW("0", "{", "$match", "{", "split", BCON_UTF8("test"), "}", "}");
    nemesyst_batches_t *b = nemesyst_batches_new(ctx, coll, pipeline, pr->batch, error);
    bson_destroy(pipeline);
    if (!b)
        return false;
    const bson_t *const *docs;
    size_t n;
    bool ok = true;
    while (ok && nemesyst_batches_next(b, &docs, &n, error))
        ok = predict_batch(ctx, m, pr, docs, n, error);
    nemesyst_batches_destroy(b);
    return ok && error->code == 0;
}

bool nemesyst_main(nemesyst_ctx_t *ctx, bson_error_t *error);

bool nemesyst_main(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    const char *coll;
    int64_t batch_size = DEFAULT_BATCH;
    model_source_t src;
    if (!data_collection(ctx, &coll, error))
        return false;
    if (!nemesyst_opt_int(ctx, "dl-batch-size", &batch_size, NULL) || batch_size < 1 ||
        batch_size > INT32_MAX / FM_FEATURES)
        batch_size = DEFAULT_BATCH;
    fm_blas_threads();
    fm_model_t *m = bson_malloc0(sizeof *m);
    predictor_t *pr = predictor_new((size_t)batch_size);
    int64_t t0 = bson_get_monotonic_time();
    bool ok = load_model(ctx, m, &src, error) && predict_test_split(ctx, m, pr, coll, error) &&
              emit_summary(ctx, pr, &src, error);
    /* measured on the model it loaded: the host keeps it in that model's metadata (metadata.evaluation) and in
     * the run record */
    if (ok && pr->labelled)
        ok = nemesyst_log_metric(ctx, "test_accuracy", 0, (double)pr->correct / pr->labelled, error);
    if (ok && pr->labelled)
        nemesyst_log(ctx, NEMESYST_LOG_INFO, "predicted %llu test examples: accuracy %.4f (%llu/%llu) in %.2f s",
                     (unsigned long long)pr->predicted, (double)pr->correct / pr->labelled,
                     (unsigned long long)pr->correct, (unsigned long long)pr->labelled,
                     (bson_get_monotonic_time() - t0) / 1e6);
    else if (ok)
        nemesyst_log(ctx, NEMESYST_LOG_WARN, "predicted %llu examples, none labelled",
                     (unsigned long long)pr->predicted);
    model_source_destroy(&src);
    predictor_destroy(pr);
    bson_free(m);
    return ok;
}
