/* A test plugin with one entry point per behaviour the runner tests read back. */
#include <nemesyst.h>
#include <stdlib.h>
#include <unistd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

bool nemesyst_main(nemesyst_ctx_t *ctx, bson_error_t *error);
bool learn(nemesyst_ctx_t *ctx, bson_error_t *error);
bool predict(nemesyst_ctx_t *ctx, bson_error_t *error);
bool refuse(nemesyst_ctx_t *ctx, bson_error_t *error);
bool crash(nemesyst_ctx_t *ctx, bson_error_t *error);
bool exit_early(nemesyst_ctx_t *ctx, bson_error_t *error);
bool quit_early(nemesyst_ctx_t *ctx, bson_error_t *error);

/* Documents, options through the getters, a model from a buffer and one from a file, a log line. */
bool nemesyst_main(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    int64_t batch = 0;
    const char *coll = NULL;
    bool ok;
    if (!nemesyst_opt_int(ctx, "dl-batch-size", &batch, error) || !nemesyst_opt_str(ctx, "data_collection", &coll, error))
        return false;
    nemesyst_log(ctx, NEMESYST_LOG_WARN, "plugin at position %zu", nemesyst_position(ctx));
    bson_t *doc = BCON_NEW("stage", BCON_UTF8(nemesyst_stage(ctx)), "position", BCON_INT64((int64_t)nemesyst_position(ctx)),
                           "run", BCON_UTF8(nemesyst_run_id(ctx)), "batch", BCON_INT64(batch), "coll", BCON_UTF8(coll));
    ok = nemesyst_emit(ctx, doc, error);
    bson_destroy(doc);
    bson_t *bad = BCON_NEW("$set", "{", "a", BCON_INT32(1), "}");
    bson_error_t expect;
    if (ok && nemesyst_emit(ctx, bad, &expect)) {
        bson_set_error(error, 1, 1, "a $ key was accepted");
        ok = false;
    }
    bson_destroy(bad);
    bson_t *meta = BCON_NEW("kind", BCON_UTF8("buffer"));
    ok = ok && nemesyst_emit_model(ctx, meta, (const uint8_t *)"weights!", 8, error);
    bson_destroy(meta);
    char path[4096];
    snprintf(path, sizeof path, "%s/from-file.bin", nemesyst_workdir(ctx));
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    fputs("file-model", f);
    fclose(f);
    meta = BCON_NEW("kind", BCON_UTF8("file"));
    ok = ok && nemesyst_emit_model_file(ctx, meta, path, false, error);
    bson_destroy(meta);
    return ok;
}

/* Batches of the learner's pipeline for two epochs; the model's metadata lists the batch sizes it saw. */
bool learn(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    const char *coll;
    int64_t size, epochs;
    bson_t pipeline, sizes = BSON_INITIALIZER;
    bool ok = false;
    if (!nemesyst_opt_str(ctx, "dl-data-collection", &coll, error) || !nemesyst_opt_int(ctx, "dl-batch-size", &size, error) ||
        !nemesyst_opt_int(ctx, "dl-epochs", &epochs, error) || !nemesyst_opt_json(ctx, "dl-data-pipeline", &pipeline, error))
        goto out;
    uint32_t k = 0;
    char digest[65] = "";
    for (int64_t e = 0; e < epochs; e++) {
        nemesyst_batches_t *b = nemesyst_batches_new(ctx, coll, &pipeline, (size_t)size, error);
        const bson_t *const *docs;
        size_t n;
        if (!b)
            goto out;
        while (nemesyst_batches_next(b, &docs, &n, error)) {
            char key[16];
            const char *kp;
            bson_uint32_to_string(k++, &kp, key, sizeof key);
            BSON_APPEND_INT64(&sizes, kp, (int64_t)n);
        }
        nemesyst_batches_digest(b, digest);
        nemesyst_batches_destroy(b);
        if (error->code != 0)
            goto out;
    }
    bson_t *meta = BCON_NEW("digest", BCON_UTF8(digest));
    BSON_APPEND_ARRAY(meta, "batch_sizes", &sizes);
    ok = nemesyst_emit_model(ctx, meta, (const uint8_t *)"m", 1, error);
    bson_destroy(meta);
out:
    bson_destroy(&pipeline);
    bson_destroy(&sizes);
    return ok;
}

/* The newest model of the output bucket, fetched by id; the prediction carries its size. */
bool predict(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    const char *bucket;
    mongoc_database_t *db;
    if (!nemesyst_opt_str(ctx, "dl-output-model-collection", &bucket, error) || !(db = nemesyst_database(ctx, error)))
        return false;
    char *files = bson_strdup_printf("%s.files", bucket);
    mongoc_collection_t *c = mongoc_database_get_collection(db, files);
    bson_t *opts = BCON_NEW("sort", "{", "uploadDate", BCON_INT32(-1), "}", "limit", BCON_INT64(1));
    bson_t filter = BSON_INITIALIZER;
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, &filter, opts, NULL);
    const bson_t *doc;
    bson_iter_t it;
    bool ok = false;
    if (mongoc_cursor_next(cur, &doc) && bson_iter_init_find(&it, doc, "_id")) {
        uint8_t *data;
        size_t len;
        if (nemesyst_model_fetch(ctx, bucket, bson_iter_value(&it), &data, &len, error)) {
            bson_t *pred = BCON_NEW("model_len", BCON_INT64((int64_t)len));
            ok = nemesyst_emit(ctx, pred, error);
            bson_destroy(pred);
            bson_free(data);
        }
    } else if (!mongoc_cursor_error(cur, error)) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_ENOMODEL, "no model in %s", bucket);
    }
    uint8_t *none;
    size_t nlen;
    bson_error_t expect;
    if (ok && nemesyst_input_model(ctx, &none, &nlen, &expect)) {
        bson_set_error(error, 1, 1, "an input model appeared from nowhere");
        ok = false;
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(&filter);
    bson_destroy(opts);
    mongoc_collection_destroy(c);
    bson_free(files);
    return ok;
}

bool refuse(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    bson_t *doc = BCON_NEW("before", BCON_INT32(1));
    nemesyst_emit(ctx, doc, error);
    bson_destroy(doc);
    bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "plugin says no");
    return false;
}

bool crash(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    (void)ctx;
    (void)error;
    raise(SIGSEGV);
    return true;
}

/* Three documents, then the plugin ends its own process: exit(0) (atexit handlers run) or _exit(0). */
static bool emit_three(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    bson_t *doc = BCON_NEW("early", BCON_INT32(1));
    bool ok = nemesyst_emit(ctx, doc, error) && nemesyst_emit(ctx, doc, error) && nemesyst_emit(ctx, doc, error);
    bson_destroy(doc);
    return ok;
}

bool exit_early(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    if (emit_three(ctx, error))
        exit(0);
    return false;
}

bool quit_early(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    if (emit_three(ctx, error))
        _exit(0);
    return false;
}
