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

nem_batches_t *nem_batches_new(nem_store_t *store, const char *collection, const bson_t *pipeline,
                               size_t batch_size, bson_error_t *err)
{
    nem_batches_t *b;
    bson_t opts = BSON_INITIALIZER;
    bson_t empty = BSON_INITIALIZER;

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
