/* The first pipeline's C plugin (README "Your first pipeline"): a cleaner, a learner and a predictor, one entry
 * point each (first.conf names them: --data-cleaner-entry-point first_clean, --dl-learner-entry-point
 * first_learn, --i-predictor-entry-point first_predict). Build it as any plugin:
 *
 *     cc -shared -fPIC -o first.so first.c $(pkg-config --cflags --libs nemesyst)
 *
 * The model is JSON text, {"KIND": its mean length, ...}, as the Python scripts' and the executables' are. */
#include <nemesyst.h>
#include <stdio.h>
#include <string.h>

bool first_clean(nemesyst_ctx_t *ctx, bson_error_t *error);
bool first_learn(nemesyst_ctx_t *ctx, bson_error_t *error);
bool first_predict(nemesyst_ctx_t *ctx, bson_error_t *error);

/* A document {length, kind, split} per row of the CSV named by --data: the host stores it in --data-collection. */
bool first_clean(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    const char *path;
    char line[256], kind[64], split[16];
    double length;
    if (!nemesyst_opt_str(ctx, "data", &path, error))
        return false;
    FILE *f = fopen(path, "r");
    if (!f) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EIO, "cannot open --data %s", path);
        return false;
    }
    bool ok = true;
    while (ok && fgets(line, sizeof line, f)) /* the header is skipped: it holds no number */
        if (sscanf(line, "%lf,%63[^,],%15s", &length, kind, split) == 3) {
            bson_t *doc = BCON_NEW("length", BCON_DOUBLE(length), "kind", BCON_UTF8(kind), "split", BCON_UTF8(split));
            ok = nemesyst_emit(ctx, doc, error);
            bson_destroy(doc);
        }
    fclose(f);
    return ok;
}

/* The mean length of each kind, over --dl-data-collection through --dl-data-pipeline in batches (the host records
 * what they read, count and sha256, as the model's data), stored as the model. */
bool first_learn(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    const char *coll;
    int64_t batch_size;
    bson_t pipeline, means = BSON_INITIALIZER, kinds = BSON_INITIALIZER; /* kinds: {KIND: i}, i in sum, count */
    const bson_t *const *docs;
    size_t n;
    bson_iter_t kind, length, it;
    if (!nemesyst_opt_str(ctx, "dl-data-collection", &coll, error) ||
        !nemesyst_opt_int(ctx, "dl-batch-size", &batch_size, error) ||
        !nemesyst_opt_json(ctx, "dl-data-pipeline", &pipeline, error))
        return false;
    nemesyst_batches_t *b = nemesyst_batches_new(ctx, coll, &pipeline, (size_t)batch_size, error);
    bson_destroy(&pipeline);
    double sum[16] = {0}, count[16] = {0};
    uint32_t k = 0;
    while (b && nemesyst_batches_next(b, &docs, &n, error))
        for (size_t i = 0; i < n; i++)
            if (bson_iter_init_find(&kind, docs[i], "kind") && BSON_ITER_HOLDS_UTF8(&kind) &&
                bson_iter_init_find(&length, docs[i], "length")) {
                const char *name = bson_iter_utf8(&kind, NULL);
                if (!bson_iter_init_find(&it, &kinds, name) && k < 16) /* a new kind: its index */
                    BSON_APPEND_INT32(&kinds, name, (int32_t)k++);
                if (bson_iter_init_find(&it, &kinds, name)) {
                    sum[bson_iter_int32(&it)] += bson_iter_as_double(&length);
                    count[bson_iter_int32(&it)]++;
                }
            }
    bool ok = b != NULL && error->code == 0; /* read to the end */
    nemesyst_batches_destroy(b);
    for (bson_iter_init(&it, &kinds); bson_iter_next(&it);)
        BSON_APPEND_DOUBLE(&means, bson_iter_key(&it), sum[bson_iter_int32(&it)] / count[bson_iter_int32(&it)]);
    size_t len;
    char *json = bson_as_relaxed_extended_json(&means, &len);
    bson_t *meta = BCON_NEW("model", BCON_UTF8("mean length per kind"), "means", BCON_DOCUMENT(&means));
    ok = ok && nemesyst_emit_model(ctx, meta, (const uint8_t *)json, len, error);
    bson_destroy(meta);
    bson_free(json);
    bson_destroy(&means);
    bson_destroy(&kinds);
    return ok;
}

/* The newest model of the bucket --dl-output-model-collection (fetching it tells the host which model the
 * predictions come from), applied to the test rows of --dl-data-collection: the kind whose mean is nearest. */
bool first_predict(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    const char *bucket, *coll;
    char files[256];
    const bson_t *const *docs;
    size_t n, len;
    uint8_t *json = NULL;
    bson_iter_t id, kind, length, m;
    if (!nemesyst_opt_str(ctx, "dl-output-model-collection", &bucket, error) ||
        !nemesyst_opt_str(ctx, "dl-data-collection", &coll, error))
        return false;
    snprintf(files, sizeof files, "%s.files", bucket);
    bson_t *newest = BCON_NEW("0", "{", "$sort", "{", "uploadDate", BCON_INT32(-1), "}", "}",
                              "1", "{", "$limit", BCON_INT32(1), "}");
    nemesyst_batches_t *b = nemesyst_batches_new(ctx, files, newest, 1, error);
    bson_destroy(newest);
    bool ok = b && nemesyst_batches_next(b, &docs, &n, error) && bson_iter_init_find(&id, docs[0], "_id") &&
              nemesyst_model_fetch(ctx, bucket, bson_iter_value(&id), &json, &len, error);
    nemesyst_batches_destroy(b);
    if (!ok && error->code == 0)
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_ENOMODEL, "no model in %s: learn first", bucket);
    bson_t *means = ok ? bson_new_from_json(json, (ssize_t)len, error) : NULL;
    bson_free(json);
    bson_t *test = BCON_NEW("0", "{", "$match", "{", "split", BCON_UTF8("test"), "}", "}");
    b = means ? nemesyst_batches_new(ctx, coll, test, 64, error) : NULL;
    bson_destroy(test);
    ok = b != NULL;
    while (ok && nemesyst_batches_next(b, &docs, &n, error))
        for (size_t i = 0; ok && i < n; i++) {
            if (!bson_iter_init_find(&length, docs[i], "length") || !bson_iter_init_find(&kind, docs[i], "kind") ||
                !BSON_ITER_HOLDS_UTF8(&kind))
                continue;
            double x = bson_iter_as_double(&length), best = -1;
            const char *predicted = NULL;
            for (bson_iter_init(&m, means); bson_iter_next(&m);) {
                double d = bson_iter_as_double(&m) > x ? bson_iter_as_double(&m) - x : x - bson_iter_as_double(&m);
                if (best < 0 || d < best) {
                    best = d;
                    predicted = bson_iter_key(&m);
                }
            }
            bson_t *doc = BCON_NEW("length", BCON_DOUBLE(x), "kind", BCON_UTF8(bson_iter_utf8(&kind, NULL)),
                                   "predicted", BCON_UTF8(predicted ? predicted : ""));
            ok = nemesyst_emit(ctx, doc, error);
            bson_destroy(doc);
        }
    nemesyst_batches_destroy(b);
    if (means)
        bson_destroy(means);
    return ok && error->code == 0;
}
