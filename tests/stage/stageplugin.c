/* The C plugin kind for the stage tests: one entry point per stage (clean, learn, predict), plus failures.
 * Knobs come from the environment, which the runner passes through: NEM_T_COUNT (documents a cleaner emits),
 * NEM_T_RUNLOG (a file each run appends "stage-position" to). */
#include <nemesyst.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool clean(nemesyst_ctx_t *ctx, bson_error_t *error);
bool learn(nemesyst_ctx_t *ctx, bson_error_t *error);
bool predict(nemesyst_ctx_t *ctx, bson_error_t *error);
bool crash(nemesyst_ctx_t *ctx, bson_error_t *error);
bool refuse(nemesyst_ctx_t *ctx, bson_error_t *error);
bool exit_early(nemesyst_ctx_t *ctx, bson_error_t *error);
bool quit_early(nemesyst_ctx_t *ctx, bson_error_t *error);

static void note_run(nemesyst_ctx_t *ctx)
{
    const char *log = getenv("NEM_T_RUNLOG");
    FILE *f;
    if (log && *log && (f = fopen(log, "a"))) {
        fprintf(f, "%s-%zu\n", nemesyst_stage(ctx), nemesyst_position(ctx));
        fclose(f);
    }
}

/* NEM_T_COUNT (default 13) documents {i, kind, pos}. */
bool clean(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    const char *env = getenv("NEM_T_COUNT");
    int64_t n = env && *env ? atoll(env) : 13;
    const char *pause = getenv("NEM_T_SLEEP_MS");
    note_run(ctx);
    if (pause && *pause)
        usleep((useconds_t)atoi(pause) * 1000);
    for (int64_t i = 0; i < n; i++) {
        bson_t *doc = BCON_NEW("i", BCON_INT64(i), "kind", BCON_UTF8("plugin"),
                               "pos", BCON_INT64((int64_t)nemesyst_position(ctx)));
        bool ok = nemesyst_emit(ctx, doc, error);
        bson_destroy(doc);
        if (!ok)
            return false;
    }
    return true;
}

/* Reads --dl-data-collection through --dl-data-pipeline in batches of --dl-batch-size; the model's bytes say how
 * many documents it saw, and start with the parent's bytes when retraining. */
bool learn(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    const char *coll;
    int64_t size;
    bson_t pipeline;
    uint64_t seen = 0;
    note_run(ctx);
    if (!nemesyst_opt_str(ctx, "dl-data-collection", &coll, error) ||
        !nemesyst_opt_int(ctx, "dl-batch-size", &size, error))
        return false;
    if (!nemesyst_opt_json(ctx, "dl-data-pipeline", &pipeline, error)) {
        bson_destroy(&pipeline);
        return false;
    }
    nemesyst_batches_t *b = nemesyst_batches_new(ctx, coll, &pipeline, (size_t)size, error);
    bson_destroy(&pipeline);
    if (!b)
        return false;
    const bson_t *const *docs;
    size_t n;
    while (nemesyst_batches_next(b, &docs, &n, error))
        seen += n;
    nemesyst_batches_destroy(b);
    if (error->code != 0)
        return false;
    uint8_t *parent = NULL;
    size_t plen = 0;
    bson_error_t none;
    bool retrain = nemesyst_input_model(ctx, &parent, &plen, &none);
    char *bytes = bson_strdup_printf("%.*splugin-model:%llu;", (int)plen, retrain ? (const char *)parent : "",
                                     (unsigned long long)seen);
    bson_t *meta = BCON_NEW("kind", BCON_UTF8("plugin"), "seen", BCON_INT64((int64_t)seen),
                            "retrained", BCON_BOOL(retrain));
    bool ok = nemesyst_emit_model(ctx, meta, (const uint8_t *)bytes, strlen(bytes), error);
    bson_destroy(meta);
    bson_free(bytes);
    bson_free(parent);
    return ok;
}

/* Loads the newest model of --dl-output-model-collection and emits 3 predictions made with it. */
bool predict(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    const char *bucket;
    mongoc_database_t *db;
    note_run(ctx);
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
            ok = true;
            for (int k = 0; ok && k < 3; k++) {
                bson_t *pred = BCON_NEW("k", BCON_INT32(k), "kind", BCON_UTF8("plugin"), "model_len",
                                        BCON_INT64((int64_t)len));
                ok = nemesyst_emit(ctx, pred, error);
                bson_destroy(pred);
            }
            bson_free(data);
        }
    } else if (!mongoc_cursor_error(cur, error)) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_ENOMODEL, "no model in %s", bucket);
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(&filter);
    bson_destroy(opts);
    mongoc_collection_destroy(c);
    bson_free(files);
    return ok;
}

/* Two documents, then a segmentation fault. */
bool crash(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    bson_t *doc = BCON_NEW("before", BCON_INT32(1));
    nemesyst_emit(ctx, doc, error);
    nemesyst_emit(ctx, doc, error);
    bson_destroy(doc);
    raise(SIGSEGV);
    return true;
}

/* Connects to the database, then fails with an error of its own. */
bool refuse(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    if (!nemesyst_database(ctx, error))
        return false;
    bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "plugin says no");
    return false;
}

/* Emits NEM_T_COUNT documents (default 13) as clean does, then ends its own process with exit(0): the items the
 * library still buffers never reach the host, and the run must not call that a success. */
bool exit_early(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    if (!clean(ctx, error))
        return false;
    exit(0);
}

/* The same with _exit(0): no atexit handlers, no stdio flush. */
bool quit_early(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    if (!clean(ctx, error))
        return false;
    _exit(0);
}
