/* Indexes nemesyst asks for where it writes (store.h nem_store_ensure_index), and the one creator of an index the
 * store layer has (store-private.h nem_store_index_on, which the GridFS writer uses for the specification's own).
 *
 * MongoDB's createIndexes is itself idempotent for an identical index, but it needs the createIndex privilege even
 * then, and an index of the same key under another name is an error (IndexOptionsConflict, code 85). So the
 * collection's indexes are listed first (listIndexes, which a user allowed to read has) and an index of the same key
 * and direction, whatever its name, counts as there; only a missing one is created. Each (database, collection,
 * index) is asked once per process: a run that writes a million documents lists the indexes once, not per batch. */
#include <pthread.h>
#include <string.h>

#include "store/store-private.h"

/* The same key pattern: the same fields in the same order, each with the same direction. */
static bool key_equal(const bson_t *want, const bson_t *have)
{
    bson_iter_t w, h;
    if (!bson_iter_init(&w, want) || !bson_iter_init(&h, have))
        return false;
    while (bson_iter_next(&w)) {
        if (!bson_iter_next(&h) || strcmp(bson_iter_key(&w), bson_iter_key(&h)) != 0 ||
            !BSON_ITER_HOLDS_NUMBER(&h) || bson_iter_as_int64(&w) != bson_iter_as_int64(&h))
            return false;
    }
    return !bson_iter_next(&h);
}

bool nem_store_index_on(mongoc_collection_t *coll, const bson_t *key, const char *name, bool unique,
                        bson_error_t *derr)
{
    mongoc_cursor_t *cur = mongoc_collection_find_indexes_with_opts(coll, NULL);
    const bson_t *doc;
    bson_iter_t it;
    bool exists = false, ok;
    while (!exists && mongoc_cursor_next(cur, &doc)) {
        uint32_t len;
        const uint8_t *data;
        bson_t have;
        if (bson_iter_init_find(&it, doc, "key") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
            bson_iter_document(&it, &len, &data);
            exists = bson_init_static(&have, data, len) && key_equal(key, &have);
        }
    }
    /* a collection that does not exist yet has no indexes (libmongoc hides the server's NamespaceNotFound) */
    ok = !mongoc_cursor_error(cur, derr);
    mongoc_cursor_destroy(cur);
    if (!ok || exists)
        return ok;
    bson_t cmd = BSON_INITIALIZER, indexes, index;
    BSON_APPEND_UTF8(&cmd, "createIndexes", mongoc_collection_get_name(coll));
    BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &indexes);
    BSON_APPEND_DOCUMENT_BEGIN(&indexes, "0", &index);
    BSON_APPEND_DOCUMENT(&index, "key", key);
    BSON_APPEND_UTF8(&index, "name", name);
    if (unique)
        BSON_APPEND_BOOL(&index, "unique", true);
    bson_append_document_end(&indexes, &index);
    bson_append_array_end(&cmd, &indexes);
    ok = mongoc_collection_write_command_with_opts(coll, &cmd, NULL, NULL, derr);
    bson_destroy(&cmd);
    return ok;
}

/* What this process has asked for already ("db\037collection\037name"): writers of several threads share it. */
static pthread_mutex_t asked_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char **v;
    size_t n;
} asked;

bool nem_store_ensure_index(nem_store_t *store, const char *collection, const bson_t *key, const char *name,
                            bson_error_t *err)
{
    char *tag = bson_strdup_printf("%s\037%s\037%s", store->db_name, collection, name);
    bool first = true;
    pthread_mutex_lock(&asked_lock);
    for (size_t i = 0; i < asked.n && first; i++)
        first = strcmp(asked.v[i], tag) != 0;
    if (first) { /* asked once, whatever the answer: a refusal is not asked again */
        asked.v = bson_realloc(asked.v, (asked.n + 1) * sizeof *asked.v);
        asked.v[asked.n++] = tag;
    } else {
        bson_free(tag);
    }
    pthread_mutex_unlock(&asked_lock);
    if (!first)
        return true;
    mongoc_collection_t *coll = mongoc_client_get_collection(store->client, store->db_name, collection);
    bson_error_t derr;
    bool ok = nem_store_index_on(coll, key, name, false, &derr);
    mongoc_collection_destroy(coll);
    if (!ok) {
        char what[512];
        bson_snprintf(what, sizeof what, "index %s on %s.%s not made (queries on it scan the collection)", name,
                      store->db_name, collection);
        nem_store_wrap(err, &derr, what);
    }
    return ok;
}
