/* Deletes by a filter in bounded pieces. One delete of every match is a single command on MongoDB, but a server may
 * turn it into one statement over all the matching ids (FerretDB's SQL backends fail past about 32,000 with "too
 * many SQL variables"), and a huge delete holds locks and a reply for as long as it runs. So the matches are read
 * once in _id order (ids only), and every NEM_DELETE_PIECE_DOCS of them are deleted by the filter restricted to
 * the piece's _id range. On MongoDB the read walks the _id index and each delete is an index range scan; no command
 * ever carries a list of ids. The filter stays part of every delete, so nothing that does not match it is touched
 * whatever else lies in a range. */
#include "store/store-private.h"

#include <string.h>

/* MongoDB compares values of one type bracket only ({$lte: 5} never matches a string): a piece's range must not
 * span brackets. Numbers form one bracket, strings and symbols another; every other BSON type is its own. */
static int bracket(bson_type_t t)
{
    switch (t) {
    case BSON_TYPE_INT32: case BSON_TYPE_INT64: case BSON_TYPE_DOUBLE: case BSON_TYPE_DECIMAL128: return 1;
    case BSON_TYPE_UTF8: case BSON_TYPE_SYMBOL: return 2;
    default: return 100 + (int)t;
    }
}

typedef struct {
    mongoc_collection_t *coll;
    const bson_t *filter;
    const char *what;
    bson_value_t lo, hi;
    bool open;
    uint32_t n;
    uint64_t total;
} piece_t;

static void piece_reset(piece_t *p)
{
    if (p->open) {
        bson_value_destroy(&p->lo);
        bson_value_destroy(&p->hi);
    }
    p->open = false;
    p->n = 0;
}

/* Deletes {$and: [filter, {_id: {$gte: lo, $lte: hi}}]}. */
static bool piece_delete(piece_t *p, bson_error_t *err)
{
    if (!p->open)
        return true;
    bson_t sel = BSON_INITIALIZER, and, f, range, reply;
    bson_error_t derr;
    bson_iter_t it;
    BSON_APPEND_ARRAY_BEGIN(&sel, "$and", &and);
    BSON_APPEND_DOCUMENT(&and, "0", p->filter);
    BSON_APPEND_DOCUMENT_BEGIN(&and, "1", &f);
    BSON_APPEND_DOCUMENT_BEGIN(&f, "_id", &range);
    BSON_APPEND_VALUE(&range, "$gte", &p->lo);
    BSON_APPEND_VALUE(&range, "$lte", &p->hi);
    bson_append_document_end(&f, &range);
    bson_append_document_end(&and, &f);
    bson_append_array_end(&sel, &and);
    bool ok = mongoc_collection_delete_many(p->coll, &sel, NULL, &reply, &derr);
    if (!ok)
        nem_store_wrap(err, &derr, p->what);
    else {
        int64_t got = bson_iter_init_find(&it, &reply, "deletedCount") ? bson_iter_as_int64(&it) : 0;
        if (got < (int64_t)p->n) {
            /* Fewer than were found: something else deletes them too, or the range missed: say so, never
             * report a clean rollback that is not. */
            nem_store_seterr(err, NEM_STORE_ESERVER, "%s: %u matching documents found in a piece, %" PRId64
                             " deleted", p->what, p->n, got);
            ok = false;
        }
        p->total += (uint64_t)(got > 0 ? got : 0);
    }
    bson_destroy(&reply);
    bson_destroy(&sel);
    piece_reset(p);
    return ok;
}

bool nem_store_delete_matching(nem_store_t *store, const char *collection, const bson_t *filter, uint64_t *deleted,
                               bson_error_t *err)
{
    bson_t opts = BSON_INITIALIZER, proj, sort;
    char what[300];
    piece_t p = {.filter = filter, .what = what};
    bool ok = true;
    const bson_t *doc;
    bson_error_t derr;

    bson_snprintf(what, sizeof what, "delete from '%s'", collection);
    p.coll = mongoc_client_get_collection(store->client, store->db_name, collection);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
    BSON_APPEND_INT32(&proj, "_id", 1);
    bson_append_document_end(&opts, &proj);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "_id", 1);
    bson_append_document_end(&opts, &sort);
    BSON_APPEND_INT32(&opts, "batchSize", 1000);
    BSON_APPEND_BOOL(&opts, "allowDiskUse", true); /* a server without the _id index to sort by may need it */
    mongoc_cursor_t *c = mongoc_collection_find_with_opts(p.coll, filter, &opts, NULL);
    while (ok && mongoc_cursor_next(c, &doc)) {
        bson_iter_t it;
        if (!bson_iter_init_find(&it, doc, "_id"))
            continue; /* every stored document has one */
        const bson_value_t *id = bson_iter_value(&it);
        if (p.open && (p.n >= NEM_DELETE_PIECE_DOCS || bracket(id->value_type) != bracket(p.lo.value_type)))
            ok = piece_delete(&p, err);
        if (!ok)
            break;
        if (!p.open) {
            bson_value_copy(id, &p.lo);
            bson_value_copy(id, &p.hi);
            p.open = true;
        } else {
            bson_value_destroy(&p.hi);
            bson_value_copy(id, &p.hi);
        }
        p.n++;
    }
    if (ok && mongoc_cursor_error(c, &derr)) {
        nem_store_wrap(err, &derr, what);
        ok = false;
    }
    mongoc_cursor_destroy(c);
    if (ok)
        ok = piece_delete(&p, err);
    piece_reset(&p);
    bson_destroy(&opts);
    mongoc_collection_destroy(p.coll);
    if (deleted)
        *deleted = p.total;
    return ok;
}
