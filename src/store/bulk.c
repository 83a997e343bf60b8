/* Bulk writer: unordered, acknowledged inserts flushed by count and by bytes, so memory stays bounded whatever the
 * document sizes and one round trip carries many documents. */
#include <string.h>

#include "store/store-private.h"

struct nem_bulk {
    nem_store_t *store;
    mongoc_collection_t *coll;
    mongoc_bulk_operation_t *op;  /* NULL until the first document after a flush */
    size_t max_docs, max_bytes;
    size_t pending_docs, pending_bytes;
    uint64_t added;               /* documents handed to nem_bulk_add that were accepted */
    uint64_t inserted;            /* documents the server acknowledged */
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

bool nem_bulk_flush(nem_bulk_t *bulk, bson_error_t *err)
{
    bson_t reply;
    bson_error_t derr;
    bson_iter_t it;
    uint64_t base = bulk->added - bulk->pending_docs;
    bool ok;
    char what[256];

    if (!bulk->op || bulk->pending_docs == 0)
        return true;
    ok = mongoc_bulk_operation_execute(bulk->op, &reply, &derr) != 0;
    /* Unordered: the documents that did not fail are in, even when the flush failed. */
    if (bson_iter_init_find(&it, &reply, "nInserted"))
        bulk->inserted += (uint64_t)bson_iter_as_int64(&it);
    if (!ok && !first_write_error(bulk, &reply, base, err)) {
        bson_snprintf(what, sizeof what, "insert of %zu documents into %s.%s failed", bulk->pending_docs,
                      bulk->store->db_name, mongoc_collection_get_name(bulk->coll));
        nem_store_wrap(err, &derr, what);
    }
    bson_destroy(&reply);
    reset_pending(bulk);
    return ok;
}

bool nem_bulk_add(nem_bulk_t *bulk, const bson_t *doc, bson_error_t *err)
{
    bson_error_t derr;
    char what[256];

    /* Flush before a document that would take the batch past its byte budget, so a batch holds at most max_bytes
     * unless one document alone is larger. */
    if (bulk->pending_docs > 0 && bulk->pending_bytes + doc->len > bulk->max_bytes && !nem_bulk_flush(bulk, err))
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
    if (bulk->pending_docs >= bulk->max_docs || bulk->pending_bytes >= bulk->max_bytes)
        return nem_bulk_flush(bulk, err);
    return true;
}

uint64_t nem_bulk_inserted(const nem_bulk_t *bulk)
{
    return bulk->inserted;
}

void nem_bulk_destroy(nem_bulk_t *bulk)
{
    if (!bulk)
        return;
    if (bulk->op)
        mongoc_bulk_operation_destroy(bulk->op);
    mongoc_collection_destroy(bulk->coll);
    bson_free(bulk);
}
