/* Batches of an aggregation pipeline's results. The cursor asks for exactly one batch per reply (an explicit
 * batchSize: servers that cap replies by count only, and libmongoc's 48 MB reply limit, make the default unsafe for
 * large documents). A batch is handed out only when it holds a document, so the last batch is never empty. */
#include <string.h>

#include "store/store-private.h"

struct nem_batches {
    mongoc_collection_t *coll;
    mongoc_cursor_t *cursor;
    size_t batch_size;
    bson_t **docs;   /* copies: a cursor's document is valid only until its next call */
    size_t n;
    bool done;       /* the cursor is exhausted: libmongoc refuses to advance it again */
    char *ns;        /* "db.collection", for messages */
};

static void clear_batch(nem_batches_t *b)
{
    for (size_t i = 0; i < b->n; i++)
        bson_destroy(b->docs[i]);
    b->n = 0;
}

const char *nem_pipeline_problem(const bson_t *pipeline, uint32_t *stage, const char **name)
{
    static const char *const wrappers[] = {"$oid", "$date", "$binary", "$numberInt", "$numberLong", "$numberDouble",
                                           "$numberDecimal", "$maxKey", "$minKey", "$regex", "$regularExpression",
                                           "$timestamp", "$code", "$scope", "$symbol", "$dbPointer", "$undefined",
                                           "$uuid", "$type", "$options", "$ref", "$id", "$db"};
    bson_iter_t it, st;
    char key[16];
    const char *k;
    *stage = 0;
    *name = "";
    if (!bson_iter_init(&it, pipeline))
        return "is not a BSON document";
    for (; bson_iter_next(&it); (*stage)++) {
        bson_uint32_to_string(*stage, &k, key, sizeof key);
        if (strcmp(bson_iter_key(&it), k) != 0) {
            *name = bson_iter_key(&it);
            return "is a field of a document: a pipeline is an array of stage documents";
        }
        if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &st) || !bson_iter_next(&st))
            return "is not a document with one field";
        *name = bson_iter_key(&st);
        if ((*name)[0] != '$')
            return "does not name a stage (its field must start with '$')";
        if (bson_iter_next(&st))
            return "has more than one field";
        for (size_t w = 0; w < sizeof wrappers / sizeof *wrappers; w++)
            if (strcmp(*name, wrappers[w]) == 0)
                return "is an extended-JSON type wrapper, not a stage";
    }
    return NULL;
}

nem_batches_t *nem_batches_new(nem_store_t *store, const char *collection, const bson_t *pipeline,
                               size_t batch_size, bson_error_t *err)
{
    nem_batches_t *b;
    bson_t opts = BSON_INITIALIZER;
    bson_t empty = BSON_INITIALIZER;
    uint32_t bad;
    const char *name, *why = pipeline ? nem_pipeline_problem(pipeline, &bad, &name) : NULL;

    if (why) {
        nem_store_seterr(err, NEM_STORE_EOPTION, "pipeline for %s.%s: stage %u%s%.40s%s %s", store->db_name,
                         collection, bad, *name ? " '" : "", name, *name ? "'" : "", why);
        bson_destroy(&opts);
        bson_destroy(&empty);
        return NULL;
    }

    if (batch_size == 0 || batch_size > INT32_MAX) {
        nem_store_seterr(err, NEM_STORE_EOPTION, "batch size %zu for %s.%s: must be between 1 and %d", batch_size,
                         store->db_name, collection, INT32_MAX);
        return NULL;
    }
    b = bson_malloc0(sizeof *b);
    b->batch_size = batch_size;
    b->docs = bson_malloc0(batch_size * sizeof *b->docs);
    b->ns = bson_strdup_printf("%s.%s", store->db_name, collection);
    b->coll = mongoc_client_get_collection(store->client, store->db_name, collection);
    BSON_APPEND_INT32(&opts, "batchSize", (int32_t)batch_size);
    /* A NULL pipeline means "every document": libmongoc reads an empty document as an empty stage list. */
    b->cursor = mongoc_collection_aggregate(b->coll, MONGOC_QUERY_NONE, pipeline ? pipeline : &empty, &opts, NULL);
    bson_destroy(&opts);
    bson_destroy(&empty);
    return b;
}

bool nem_batches_next(nem_batches_t *b, const bson_t *const **docs, size_t *n, bson_error_t *err)
{
    const bson_t *doc;
    bson_error_t derr;
    char what[300];

    clear_batch(b);
    while (!b->done && b->n < b->batch_size) {
        if (!mongoc_cursor_next(b->cursor, &doc))
            b->done = true;
        else
            b->docs[b->n++] = bson_copy(doc);
    }
    if (mongoc_cursor_error(b->cursor, &derr)) {
        clear_batch(b);
        bson_snprintf(what, sizeof what, "aggregate on %s failed", b->ns);
        nem_store_wrap(err, &derr, what);
        return false;
    }
    *docs = (const bson_t *const *)b->docs;
    *n = b->n;
    if (b->n == 0) {
        if (err)
            memset(err, 0, sizeof *err);
        return false;
    }
    return true;
}

void nem_batches_destroy(nem_batches_t *b)
{
    if (!b)
        return;
    clear_batch(b);
    mongoc_cursor_destroy(b->cursor);
    mongoc_collection_destroy(b->coll);
    bson_free(b->docs);
    bson_free(b->ns);
    bson_free(b);
}
