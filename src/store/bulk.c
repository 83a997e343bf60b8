/* Bulk writer: unordered, acknowledged inserts flushed by count and by bytes, so memory stays bounded whatever the
 * document sizes and one round trip carries many documents. An asynchronous writer (nem_bulk_new_async) sends each
 * full batch from a thread of its own, on a connection of its own, while the caller fills the next one: the
 * caller's loop (reading a script's output) and the server's insert overlap instead of taking turns. */
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "store/store-private.h"

/* A full batch handed to the sending thread. */
typedef struct {
    bson_t **docs;
    size_t n, cap, bytes;
    uint64_t base;                /* index of its first document among all added */
} batch_t;

struct nem_bulk {
    nem_store_t *store;
    mongoc_collection_t *coll;
    mongoc_bulk_operation_t *op;  /* NULL until the first document after a flush */
    size_t max_docs, max_bytes;
    size_t pending_docs, pending_bytes;
    uint64_t added;               /* documents handed to nem_bulk_add that were accepted */
    uint64_t inserted;            /* documents the server acknowledged */
    /* asynchronous writers only */
    bool async;
    nem_store_t *own;             /* the sending thread's connection */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    batch_t filling, sending;     /* sending.n > 0: the thread has work or is at it */
    bool busy, stop, failed;
    bson_error_t error;           /* the first failed send */
};

nem_bulk_t *nem_bulk_new(nem_store_t *store, const char *collection, size_t max_docs, size_t max_bytes)
{
    nem_bulk_t *bulk = bson_malloc0(sizeof *bulk);
    const mongoc_write_concern_t *wc;

    bulk->store = store;
    bulk->coll = mongoc_client_get_collection(store->client, store->db_name, collection);
    bulk->max_docs = max_docs ? max_docs : NEM_BULK_DEFAULT_DOCS;
    bulk->max_bytes = max_bytes ? max_bytes : NEM_BULK_DEFAULT_BYTES;
    /* Unacknowledged writes lose errors and desynchronise some servers (FerretDB answers them anyway): should a
     * URI ever ask for w:0, fall back to w:1 here. */
    wc = mongoc_collection_get_write_concern(bulk->coll);
    if (!mongoc_write_concern_is_acknowledged(wc)) {
        mongoc_write_concern_t *ack = mongoc_write_concern_new();
        mongoc_write_concern_set_w(ack, 1);
        mongoc_collection_set_write_concern(bulk->coll, ack);
        mongoc_write_concern_destroy(ack);
    }
    return bulk;
}

static mongoc_bulk_operation_t *new_op(nem_bulk_t *bulk)
{
    bson_t opts = BSON_INITIALIZER;
    mongoc_bulk_operation_t *op;
    BSON_APPEND_BOOL(&opts, "ordered", false);
    op = mongoc_collection_create_bulk_operation_with_opts(bulk->coll, &opts);
    bson_destroy(&opts);
    return op;
}

static void reset_pending(nem_bulk_t *bulk)
{
    mongoc_bulk_operation_destroy(bulk->op);
    bulk->op = NULL;
    bulk->pending_docs = 0;
    bulk->pending_bytes = 0;
}

/* Describes the first write error of a failed flush: its index among all documents added to this writer, the
 * server's code and message, and how many documents of the batch failed. Returns false when the reply has none
 * (the failure was not per document: network, write concern, ...). */
static bool first_write_error(nem_bulk_t *bulk, const bson_t *reply, uint64_t base, bson_error_t *err)
{
    bson_iter_t it, arr, doc;
    uint32_t n = 0;
    int64_t index = -1;
    int32_t code = 0;
    const char *msg = "";

    if (!bson_iter_init_find(&it, reply, "writeErrors") || !BSON_ITER_HOLDS_ARRAY(&it) ||
        !bson_iter_recurse(&it, &arr))
        return false;
    while (bson_iter_next(&arr)) {
        if (n++ > 0 || !BSON_ITER_HOLDS_DOCUMENT(&arr) || !bson_iter_recurse(&arr, &doc))
            continue;
        while (bson_iter_next(&doc)) {
            if (strcmp(bson_iter_key(&doc), "index") == 0)
                index = bson_iter_as_int64(&doc);
            else if (strcmp(bson_iter_key(&doc), "code") == 0)
                code = (int32_t)bson_iter_as_int64(&doc);
            else if (strcmp(bson_iter_key(&doc), "errmsg") == 0 && BSON_ITER_HOLDS_UTF8(&doc))
                msg = bson_iter_utf8(&doc, NULL);
        }
    }
    if (n == 0)
        return false;
    nem_store_seterr(err, NEM_STORE_ESERVER,
                     "insert into %s.%s failed for %u of %zu documents, first at index %" PRId64 ": %s (server code %d)",
                     bulk->store->db_name, mongoc_collection_get_name(bulk->coll), n, bulk->pending_docs,
                     index < 0 ? -1 : (int64_t)base + index, msg, code);
    return true;
}

/* Sends the pending operation; base: the index of its first document among all added (for messages). */
static bool flush_op(nem_bulk_t *bulk, uint64_t base, bson_error_t *err)
{
    bson_t reply;
    bson_error_t derr;
    bson_iter_t it;
    bool ok;
    char what[256];

    if (!bulk->op || bulk->pending_docs == 0)
        return true;
    ok = mongoc_bulk_operation_execute(bulk->op, &reply, &derr) != 0;
    /* Unordered: the documents that did not fail are in, even when the flush failed. */
    if (bson_iter_init_find(&it, &reply, "nInserted"))
        __atomic_add_fetch(&bulk->inserted, (uint64_t)bson_iter_as_int64(&it), __ATOMIC_RELAXED);
    if (!ok && !first_write_error(bulk, &reply, base, err)) {
        bson_snprintf(what, sizeof what, "insert of %zu documents into %s.%s failed", bulk->pending_docs,
                      bulk->store->db_name, mongoc_collection_get_name(bulk->coll));
        nem_store_wrap(err, &derr, what);
    }
    bson_destroy(&reply);
    reset_pending(bulk);
    return ok;
}

/* ---- asynchronous ---- */

static void batch_clear(batch_t *b)
{
    for (size_t i = 0; i < b->n; i++)
        bson_destroy(b->docs[i]);
    b->n = b->bytes = 0;
}

/* The thread: sends each batch handed over, one at a time, through the same path as a synchronous flush. */
static void *send_main(void *arg)
{
    nem_bulk_t *bulk = arg;
    pthread_mutex_lock(&bulk->lock);
    for (;;) {
        while (!bulk->busy && !bulk->stop)
            pthread_cond_wait(&bulk->cond, &bulk->lock);
        if (!bulk->busy && bulk->stop)
            break;
        pthread_mutex_unlock(&bulk->lock);
        batch_t *b = &bulk->sending;
        bson_error_t err = {0};
        bool ok = true;
        bulk->op = new_op(bulk);
        bson_error_t derr;
        for (size_t i = 0; ok && i < b->n; i++)
            if (!mongoc_bulk_operation_insert_with_opts(bulk->op, b->docs[i], NULL, &derr)) {
                char what[256];
                bson_snprintf(what, sizeof what, "document %" PRIu64 " cannot be inserted into %s.%s",
                              b->base + i, bulk->store->db_name, mongoc_collection_get_name(bulk->coll));
                nem_store_wrap(&err, &derr, what);
                ok = false;
            }
        bulk->pending_docs = b->n;
        bulk->pending_bytes = b->bytes;
        if (ok)
            ok = flush_op(bulk, b->base, &err);
        else
            reset_pending(bulk);
        batch_clear(b);
        pthread_mutex_lock(&bulk->lock);
        if (!ok && !bulk->failed) {
            bulk->failed = true;
            bulk->error = err;
        }
        bulk->busy = false;
        pthread_cond_broadcast(&bulk->cond);
    }
    pthread_mutex_unlock(&bulk->lock);
    return NULL;
}

nem_bulk_t *nem_bulk_new_async(const nem_store_opts_t *opts, const char *collection, size_t max_docs,
                               size_t max_bytes, bson_error_t *err)
{
    nem_store_t *own = nem_store_new(opts, err);
    if (!own)
        return NULL;
    nem_bulk_t *bulk = nem_bulk_new(own, collection, max_docs, max_bytes);
    bulk->async = true;
    bulk->own = own;
    bulk->filling.cap = bulk->sending.cap = bulk->max_docs;
    bulk->filling.docs = bson_malloc0(bulk->max_docs * sizeof *bulk->filling.docs);
    bulk->sending.docs = bson_malloc0(bulk->max_docs * sizeof *bulk->sending.docs);
    pthread_mutex_init(&bulk->lock, NULL);
    pthread_cond_init(&bulk->cond, NULL);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old); /* signals stay with the caller's thread */
    int e = pthread_create(&bulk->thread, NULL, send_main, bulk);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0) {
        nem_store_seterr(err, NEM_STORE_EDRIVER, "cannot start the insert thread for %s.%s: %s", own->db_name,
                         collection, strerror(e));
        bulk->async = false;
        nem_bulk_destroy(bulk);
        return NULL;
    }
    return bulk;
}

/* Waits until the thread is idle; returns its first error, once. */
static bool async_wait(nem_bulk_t *bulk, bson_error_t *err)
{
    pthread_mutex_lock(&bulk->lock);
    while (bulk->busy)
        pthread_cond_wait(&bulk->cond, &bulk->lock);
    bool ok = !bulk->failed;
    if (!ok && err)
        *err = bulk->error;
    pthread_mutex_unlock(&bulk->lock);
    return ok;
}

/* Hands the filling batch to the thread (after the previous one was sent). */
static bool async_submit(nem_bulk_t *bulk, bson_error_t *err)
{
    if (bulk->filling.n == 0)
        return async_wait(bulk, err);
    if (!async_wait(bulk, err))
        return false;
    pthread_mutex_lock(&bulk->lock);
    batch_t t = bulk->sending;
    bulk->sending = bulk->filling;
    bulk->filling = t;
    bulk->filling.base = bulk->sending.base + bulk->sending.n;
    bulk->busy = true;
    pthread_cond_broadcast(&bulk->cond);
    pthread_mutex_unlock(&bulk->lock);
    return true;
}

bool nem_batch_flush_before(size_t docs, size_t bytes, size_t next, size_t max_bytes)
{
    return docs > 0 && bytes + next > max_bytes;
}

bool nem_batch_full(size_t docs, size_t bytes, size_t max_docs, size_t max_bytes)
{
    return docs >= max_docs || bytes >= max_bytes;
}

static bool async_add(nem_bulk_t *bulk, const bson_t *doc, bson_error_t *err)
{
    batch_t *b = &bulk->filling;
    if (nem_batch_flush_before(b->n, b->bytes, doc->len, bulk->max_bytes) && !async_submit(bulk, err))
        return false;
    b = &bulk->filling;
    b->docs[b->n++] = bson_copy(doc);
    b->bytes += doc->len;
    bulk->added++;
    if (nem_batch_full(b->n, b->bytes, bulk->max_docs, bulk->max_bytes))
        return async_submit(bulk, err);
    return true;
}

bool nem_bulk_add(nem_bulk_t *bulk, const bson_t *doc, bson_error_t *err)
{
    if (bulk->async)
        return async_add(bulk, doc, err);
    bson_error_t derr;
    char what[256];

    if (nem_batch_flush_before(bulk->pending_docs, bulk->pending_bytes, doc->len, bulk->max_bytes) &&
        !nem_bulk_flush(bulk, err))
        return false;
    if (!bulk->op)
        bulk->op = new_op(bulk);
    if (!mongoc_bulk_operation_insert_with_opts(bulk->op, doc, NULL, &derr)) {
        bson_snprintf(what, sizeof what, "document %" PRIu64 " cannot be inserted into %s.%s", bulk->added,
                      bulk->store->db_name, mongoc_collection_get_name(bulk->coll));
        nem_store_wrap(err, &derr, what);
        return false;
    }
    bulk->added++;
    bulk->pending_docs++;
    bulk->pending_bytes += doc->len;
    if (nem_batch_full(bulk->pending_docs, bulk->pending_bytes, bulk->max_docs, bulk->max_bytes))
        return nem_bulk_flush(bulk, err);
    return true;
}

bool nem_bulk_flush(nem_bulk_t *bulk, bson_error_t *err)
{
    if (bulk->async)
        return async_submit(bulk, err) && async_wait(bulk, err);
    return flush_op(bulk, bulk->added - bulk->pending_docs, err);
}

uint64_t nem_bulk_inserted(const nem_bulk_t *bulk)
{
    return __atomic_load_n(&bulk->inserted, __ATOMIC_RELAXED);
}

void nem_bulk_destroy(nem_bulk_t *bulk)
{
    if (!bulk)
        return;
    if (bulk->async) {
        /* Whatever is still handed over is sent (its documents carry provenance; a rollback removes them); what
         * was never handed over is dropped, as in a synchronous writer. */
        pthread_mutex_lock(&bulk->lock);
        bulk->stop = true;
        pthread_cond_broadcast(&bulk->cond);
        pthread_mutex_unlock(&bulk->lock);
        pthread_join(bulk->thread, NULL);
        pthread_mutex_destroy(&bulk->lock);
        pthread_cond_destroy(&bulk->cond);
        batch_clear(&bulk->filling);
        bson_free(bulk->filling.docs);
        bson_free(bulk->sending.docs);
    }
    if (bulk->op)
        mongoc_bulk_operation_destroy(bulk->op);
    mongoc_collection_destroy(bulk->coll);
    nem_store_destroy(bulk->own);
    bson_free(bulk);
}
