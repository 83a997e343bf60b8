/* Single-document writes and plain finds on a collection of the store's database (run records, lineage blobs), and
 * deleting GridFS files by a filter on their metadata: every other layer reaches MongoDB through these. */
#include <string.h>

#include "store/store-private.h"

/* MongoDB's DuplicateKey server code. */
#define SERVER_DUPLICATE_KEY 11000

static mongoc_collection_t *collection_of(nem_store_t *store, const char *name)
{
    return mongoc_database_get_collection(store->db, name);
}

bool nem_store_insert_one(nem_store_t *store, const char *collection, const bson_t *doc, bool *duplicate,
                          bson_error_t *err)
{
    mongoc_collection_t *coll = collection_of(store, collection);
    bson_error_t e;
    char what[300];
    bool ok = mongoc_collection_insert_one(coll, doc, NULL, NULL, &e);
    mongoc_collection_destroy(coll);
    if (duplicate)
        *duplicate = !ok && nem_store_is_server_error(&e) && e.code == SERVER_DUPLICATE_KEY;
    if (!ok && !(duplicate && *duplicate)) {
        snprintf(what, sizeof what, "insert into %s.%s", store->db_name, collection);
        nem_store_wrap(err, &e, what);
    }
    return ok;
}

static bool update(nem_store_t *store, const char *collection, const bson_t *filter, const bson_t *change, bool many,
                   int64_t *matched, bson_error_t *err)
{
    mongoc_collection_t *coll = collection_of(store, collection);
    bson_error_t e;
    bson_t reply;
    bson_iter_t it;
    char what[300];
    bool ok = many ? mongoc_collection_update_many(coll, filter, change, NULL, &reply, &e)
                   : mongoc_collection_update_one(coll, filter, change, NULL, &reply, &e);
    mongoc_collection_destroy(coll);
    if (ok && matched)
        *matched = bson_iter_init_find(&it, &reply, "matchedCount") && BSON_ITER_HOLDS_NUMBER(&it)
                       ? bson_iter_as_int64(&it)
                       : 0;
    bson_destroy(&reply);
    if (!ok) {
        snprintf(what, sizeof what, "update in %s.%s", store->db_name, collection);
        nem_store_wrap(err, &e, what);
    }
    return ok;
}

bool nem_store_update_one(nem_store_t *store, const char *collection, const bson_t *filter, const bson_t *change,
                          bson_error_t *err)
{
    return update(store, collection, filter, change, false, NULL, err);
}

bool nem_store_update_one_matched(nem_store_t *store, const char *collection, const bson_t *filter,
                                  const bson_t *change, int64_t *matched, bson_error_t *err)
{
    return update(store, collection, filter, change, false, matched, err);
}

bool nem_store_update_many(nem_store_t *store, const char *collection, const bson_t *filter, const bson_t *change,
                           bson_error_t *err)
{
    return update(store, collection, filter, change, true, NULL, err);
}

bool nem_store_find(nem_store_t *store, const char *collection, const bson_t *filter, const bson_t *opts,
                    nem_doc_cb cb, void *ud, bson_error_t *err)
{
    mongoc_collection_t *coll = collection_of(store, collection);
    mongoc_cursor_t *c = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
    const bson_t *doc;
    bson_error_t e;
    bool ok = true;
    while (ok && mongoc_cursor_next(c, &doc))
        ok = cb(doc, ud, err);
    if (ok && mongoc_cursor_error(c, &e)) {
        char what[300];
        snprintf(what, sizeof what, "find in %s.%s", store->db_name, collection);
        nem_store_wrap(err, &e, what);
        ok = false;
    }
    mongoc_cursor_destroy(c);
    mongoc_collection_destroy(coll);
    return ok;
}

bool nem_store_count(nem_store_t *store, const char *collection, const bson_t *filter, int64_t *n, bson_error_t *err)
{
    mongoc_collection_t *coll = collection_of(store, collection);
    bson_error_t e;
    bson_t all = BSON_INITIALIZER;
    *n = mongoc_collection_count_documents(coll, filter ? filter : &all, NULL, NULL, NULL, &e);
    bson_destroy(&all);
    mongoc_collection_destroy(coll);
    if (*n < 0) {
        char what[300];
        snprintf(what, sizeof what, "count in %s.%s", store->db_name, collection);
        nem_store_wrap(err, &e, what);
        return false;
    }
    return true;
}

bool nem_gridfs_delete_matching(nem_store_t *store, const char *bucket, const bson_t *filter, uint64_t *deleted,
                                bson_error_t *err)
{
    bson_t opts = BSON_INITIALIZER, fopts = BSON_INITIALIZER;
    bson_error_t e;
    char files[256], what[320];
    uint64_t n = 0;
    BSON_APPEND_UTF8(&opts, "bucketName", bucket);
    mongoc_gridfs_bucket_t *b = mongoc_gridfs_bucket_new(store->db, &opts, NULL, &e);
    bson_destroy(&opts);
    snprintf(what, sizeof what, "delete files of GridFS bucket %s.%s", store->db_name, bucket);
    if (!b) {
        nem_store_wrap(err, &e, what);
        return false;
    }
    snprintf(files, sizeof files, "%s.files", bucket);
    mongoc_collection_t *coll = collection_of(store, files);
    BSON_APPEND_INT32(&fopts, "batchSize", 100);
    BSON_APPEND_DOCUMENT_BEGIN(&fopts, "projection", &opts);
    BSON_APPEND_INT32(&opts, "_id", 1);
    bson_append_document_end(&fopts, &opts);
    mongoc_cursor_t *c = mongoc_collection_find_with_opts(coll, filter, &fopts, NULL);
    const bson_t *doc;
    bool ok = true;
    while (ok && mongoc_cursor_next(c, &doc)) {
        bson_iter_t it;
        if (bson_iter_init_find(&it, doc, "_id") && (ok = mongoc_gridfs_bucket_delete_by_id(b, bson_iter_value(&it), &e)))
            n++;
    }
    if (ok && mongoc_cursor_error(c, &e))
        ok = false;
    if (!ok)
        nem_store_wrap(err, &e, what);
    if (deleted)
        *deleted = n;
    mongoc_cursor_destroy(c);
    bson_destroy(&fopts);
    mongoc_collection_destroy(coll);
    mongoc_gridfs_bucket_destroy(b);
    return ok;
}
