/* What the registry reads, all of it through the store layer (store/store.h) except the collection list, which
 * the store does not offer yet (see nem_reg_buckets). Read-only: finds and aggregations, nothing else. */
#include "registry/registry.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "provenance/provenance.h"
#include "runrec/runrec.h"
#include "util/stages.h"

/* Batches of the registry's own reads: small, so a collection of large documents stays far from any reply or
 * memory limit whatever its size. */
#define REG_BATCH 64

bool nem_reg_check_run_id(const char *id, bson_error_t *err)
{
    /* provenance.c's make_run_id: YYYYMMDDTHHMMSSZ-XXXXXXXX (UTC start, then 8 hex digits of an ObjectId). */
    static const char shape[] = "DDDDDDDDTDDDDDDZ-XXXXXXXX";
    bool ok = strlen(id) == sizeof shape - 1;
    for (size_t i = 0; ok && shape[i]; i++) {
        unsigned char c = (unsigned char)id[i];
        ok = shape[i] == 'D' ? isdigit(c) : shape[i] == 'X' ? isxdigit(c) && !isupper(c) : c == (unsigned char)shape[i];
    }
    if (!ok)
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE,
                       "malformed run id '%s': a run id looks like 20260102T030405Z-0123abcd (see `runs`)", id);
    return ok;
}

bool nem_reg_check_model_id(const char *id, bson_oid_t *oid, bson_error_t *err)
{
    if (strlen(id) != 24 || !bson_oid_is_valid(id, 24)) {
        bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE,
                       "malformed model id '%s': a model id is its GridFS file's ObjectId, 24 hex digits (see "
                       "`models`)", id);
        return false;
    }
    bson_oid_init_from_string(oid, id);
    return true;
}

static bool copy_one(const bson_t *doc, void *ud, bson_error_t *err)
{
    bson_t *out = ud;
    (void)err;
    bson_destroy(out);
    bson_copy_to(doc, out);
    return true;
}

bool nem_reg_load_run(nem_store_t *store, const char *run_id, bson_t *out, bson_error_t *err)
{
    bson_t filter = BSON_INITIALIZER, found = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&filter, "_id", run_id);
    bool ok = nem_store_find(store, NEM_RUNS_COLLECTION, &filter, NULL, copy_one, &found, err);
    bson_destroy(&filter);
    if (ok && bson_empty(&found)) {
        bson_set_error(err, NEM_ERROR_PROVENANCE, NEM_PROVENANCE_ENORUN, "no run '%s' in %s.%s (see `runs`)", run_id,
                       nem_store_db_name(store), NEM_RUNS_COLLECTION);
        ok = false;
    }
    if (ok)
        bson_steal(out, &found);
    else
        bson_destroy(&found);
    return ok;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The store layer has no collection list; nem_store_database is its door for such reads. A store-layer
 * nem_store_collections() would keep libmongoc out of this layer. */
static bool collection_names(nem_store_t *store, char ***names, bson_error_t *err)
{
    bson_error_t e;
    *names = mongoc_database_get_collection_names_with_opts(nem_store_database(store), NULL, &e);
    if (!*names)
        bson_set_error(err, NEM_ERROR_STORE,
                       e.domain == MONGOC_ERROR_SERVER_SELECTION ? NEM_STORE_ECONNECT : NEM_STORE_ESERVER,
                       "listing the collections of %s at %s: %s", nem_store_db_name(store),
                       nem_store_host_port(store), e.message);
    return *names != NULL;
}

bool nem_reg_buckets(nem_store_t *store, nem_strv_t *out, bson_error_t *err)
{
    char **names;
    if (!collection_names(store, &names, err))
        return false;
    size_t first = out->n;
    for (char **n = names; *n; n++) {
        size_t len = strlen(*n);
        if (len > 6 && strcmp(*n + len - 6, ".files") == 0) {
            char *bucket = bson_strndup(*n, len - 6);
            nem_strv_push(out, bucket);
            bson_free(bucket);
        }
    }
    bson_strfreev(names);
    if (out->n > first)
        qsort(out->v + first, out->n - first, sizeof *out->v, by_name);
    return true;
}

bool nem_reg_collection_exists(nem_store_t *store, const char *name, bool *exists, bson_error_t *err)
{
    char **names;
    *exists = false;
    if (!collection_names(store, &names, err))
        return false;
    for (char **n = names; *n && !*exists; n++)
        *exists = strcmp(*n, name) == 0;
    bson_strfreev(names);
    return true;
}

static bool find_in_bucket(nem_store_t *store, const char *bucket, const bson_value_t *id, bson_t *found,
                           bson_error_t *err)
{
    bson_t filter = BSON_INITIALIZER;
    char *files = bson_strdup_printf("%s.files", bucket);
    BSON_APPEND_VALUE(&filter, "_id", id);
    bool ok = nem_store_find(store, files, &filter, NULL, copy_one, found, err);
    bson_destroy(&filter);
    bson_free(files);
    return ok;
}

bool nem_reg_find_model(nem_store_t *store, const char *bucket, const bson_value_t *id, bson_t *file,
                        char **bucket_out, bool *found, bson_error_t *err)
{
    nem_strv_t buckets = {0};
    bson_t doc = BSON_INITIALIZER;
    bool ok = true;
    *found = false;
    *bucket_out = NULL;
    if (bucket)
        nem_strv_push(&buckets, bucket);
    else
        ok = nem_reg_buckets(store, &buckets, err);
    for (size_t i = 0; ok && !*found && i < buckets.n; i++) {
        ok = find_in_bucket(store, buckets.v[i], id, &doc, err);
        if (ok && !bson_empty(&doc)) {
            *found = true;
            *bucket_out = bson_strdup(buckets.v[i]);
        }
    }
    if (ok && *found)
        bson_steal(file, &doc);
    else
        bson_destroy(&doc);
    nem_strv_free(&buckets);
    return ok;
}

static bool take_text(const bson_t *doc, void *ud, bson_error_t *err)
{
    char **text = ud;
    (void)err;
    const char *t = nem_reg_str(doc, "text", NULL);
    if (t && !*text)
        *text = bson_strdup(t);
    return true;
}

bool nem_reg_text(nem_store_t *store, const bson_iter_t *field, char **text, bson_error_t *err)
{
    bson_iter_t blob;
    *text = NULL;
    if (BSON_ITER_HOLDS_UTF8(field)) {
        *text = bson_strdup(bson_iter_utf8(field, NULL));
        return true;
    }
    if (!BSON_ITER_HOLDS_DOCUMENT(field) || !bson_iter_recurse(field, &blob) || !bson_iter_find(&blob, "blob") ||
        !BSON_ITER_HOLDS_UTF8(&blob))
        return true;
    bson_t filter = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&filter, "_id", bson_iter_utf8(&blob, NULL));
    bool ok = nem_store_find(store, NEM_BLOBS_COLLECTION, &filter, NULL, take_text, text, err);
    bson_destroy(&filter);
    return ok;
}

bool nem_reg_aggregate(nem_store_t *store, const char *collection, const bson_t *pipeline, nem_doc_cb cb, void *ud,
                       bson_error_t *err)
{
    nem_batches_t *b = nem_batches_new(store, collection, pipeline, REG_BATCH, err);
    const bson_t *const *docs;
    size_t n;
    bson_error_t e = {0};
    bool ok = b != NULL;
    while (ok && nem_batches_next(b, &docs, &n, &e))
        for (size_t i = 0; ok && i < n; i++)
            ok = cb(docs[i], ud, err);
    if (ok && e.code) {
        *err = e;
        ok = false;
    }
    nem_batches_destroy(b);
    return ok;
}

/* The collection a script's documents went to: its stage's per-script option, repeat-last (README "Stage
 * scripts"), in the options snapshot or NULL. */
const char *nem_reg_output_of(const bson_t *options, nem_stage_t stage, int64_t position)
{
    static const char *const option[NEM_STAGE__COUNT] = {
        [NEM_STAGE_CLEAN] = "data-collection",
        [NEM_STAGE_LEARN] = "dl-output-model-collection",
        [NEM_STAGE_PREDICT] = "i-output-prediction-collection",
    };
    bson_iter_t it, arr;
    const char *last = NULL;
    if (!bson_iter_init_find(&it, options, option[stage]))
        return NULL;
    if (BSON_ITER_HOLDS_UTF8(&it))
        return bson_iter_utf8(&it, NULL);
    if (!BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &arr))
        return NULL;
    for (int64_t i = 0; bson_iter_next(&arr); i++) {
        if (BSON_ITER_HOLDS_UTF8(&arr))
            last = bson_iter_utf8(&arr, NULL);
        if (i >= position)
            break;
    }
    return last;
}

typedef struct {
    bool predict_only;
    nem_reg_stamp_cb cb;
    void *ud;
} stamps_t;

static bool stamps_of_run(const bson_t *run, void *ud, bson_error_t *err)
{
    stamps_t *s = ud;
    bson_t scripts, options, resumed, entry;
    bson_iter_t it;
    bool ok = true;
    const char *run_id = nem_reg_str(run, "_id", NULL);
    if (!run_id || !nem_reg_sub(run, "scripts", &scripts) || !bson_iter_init(&it, &scripts))
        return true;
    bool has_opts = nem_reg_sub(run, "options", &options), has_resumed = nem_reg_sub(run, "resume_options", &resumed);
    while (ok && bson_iter_next(&it)) {
        nem_stage_t stage;
        bson_iter_t f;
        if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &f) || !bson_iter_find(&f, "stamp") ||
            !BSON_ITER_HOLDS_OID(&f))
            continue;
        const bson_oid_t *stamp = bson_iter_oid(&f);
        uint32_t len;
        const uint8_t *data;
        bson_t e;
        bson_iter_document(&it, &len, &data);
        if (!bson_init_static(&e, data, len) || !nem_stage_from_name(nem_reg_str(&e, "stage", ""), &stage) ||
            (s->predict_only && stage != NEM_STAGE_PREDICT))
            continue;
        int64_t pos = nem_reg_int(&e, "position", 0);
        bson_init(&entry);
        BSON_APPEND_OID(&entry, "stamp", stamp);
        BSON_APPEND_UTF8(&entry, "run", run_id);
        BSON_APPEND_UTF8(&entry, "script", bson_iter_key(&it));
        BSON_APPEND_UTF8(&entry, "stage", nem_stage_name(stage));
        BSON_APPEND_INT64(&entry, "position", pos);
        bson_t colls;
        uint32_t nc = 0;
        /* A resumed run may have sent its rerun scripts elsewhere: both snapshots name where they wrote. */
        const char *first = has_opts ? nem_reg_output_of(&options, stage, pos) : NULL;
        const char *again = has_resumed ? nem_reg_output_of(&resumed, stage, pos) : NULL;
        BSON_APPEND_ARRAY_BEGIN(&entry, "collections", &colls);
        if (first)
            nem_reg_push_str(&colls, &nc, first);
        if (again && (!first || strcmp(first, again) != 0))
            nem_reg_push_str(&colls, &nc, again);
        bson_append_array_end(&entry, &colls);
        ok = s->cb(&entry, s->ud, err);
        bson_destroy(&entry);
    }
    return ok;
}

/* The entries of the run records matching filter, newest first. */
static bool stamps_where(nem_store_t *store, const bson_t *filter, bool predict_only, nem_reg_stamp_cb cb, void *ud,
                         bson_error_t *err)
{
    /* Only what an entry is made of: the scripts and the three per-script output options of both snapshots, not the
     * whole snapshots (pipelines, a sweep's overrides...), one record at a time (store.h nem_store_find's batches). */
    static const char *const outputs[] = {"data-collection", "dl-output-model-collection",
                                          "i-output-prediction-collection"};
    stamps_t s = {predict_only, cb, ud};
    bson_t opts = BSON_INITIALIZER, proj;
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
    BSON_APPEND_INT32(&proj, "scripts", 1);
    for (size_t i = 0; i < sizeof outputs / sizeof *outputs; i++) {
        char key[96];
        snprintf(key, sizeof key, "options.%s", outputs[i]);
        BSON_APPEND_INT32(&proj, key, 1);
        snprintf(key, sizeof key, "resume_options.%s", outputs[i]);
        BSON_APPEND_INT32(&proj, key, 1);
    }
    bson_append_document_end(&opts, &proj);
    BSON_APPEND_INT32(&opts, "batchSize", REG_BATCH);
    bson_t sort;
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort); /* newest first, as every listing (an index nemesyst makes) */
    BSON_APPEND_INT32(&sort, "started", -1);
    bson_append_document_end(&opts, &sort);
    bool ok = nem_store_find(store, NEM_RUNS_COLLECTION, filter, &opts, stamps_of_run, &s, err);
    bson_destroy(&opts);
    return ok;
}

typedef struct {
    bson_t *out;
    uint32_t n;
} stamps_arr_t;

static bool push_stamp(const bson_t *entry, void *ud, bson_error_t *err)
{
    stamps_arr_t *s = ud;
    char key[16];
    const char *k;
    (void)err;
    bson_uint32_to_string(s->n++, &k, key, sizeof key);
    BSON_APPEND_DOCUMENT(s->out, k, entry);
    return true;
}

bool nem_reg_run_stamps(nem_store_t *store, const bson_t *run_ids, bool predict_only, bson_t *out, bson_error_t *err)
{
    stamps_arr_t s = {out, 0};
    bson_t filter = BSON_INITIALIZER, in;
    bson_iter_t it;
    if (bson_iter_init(&it, out))
        while (bson_iter_next(&it))
            s.n++;
    /* {_id: {$in: [...]}}: the records themselves, by their _id, newest first */
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &in);
    BSON_APPEND_ARRAY(&in, "$in", run_ids);
    bson_append_document_end(&filter, &in);
    bool ok = stamps_where(store, &filter, predict_only, push_stamp, &s, err);
    bson_destroy(&filter);
    return ok;
}

/* The distinct values of key in the run records (the server answers from the index nemesyst makes on it,
 * provenance.h), each string once into out. */
static bool distinct_strings(nem_store_t *store, const char *key, nem_strv_t *out, bson_error_t *err)
{
    bson_t cmd = BSON_INITIALIZER, reply;
    bson_error_t e;
    bson_iter_t it, v;
    BSON_APPEND_UTF8(&cmd, "distinct", NEM_RUNS_COLLECTION);
    BSON_APPEND_UTF8(&cmd, "key", key);
    bool ok = mongoc_database_read_command_with_opts(nem_store_database(store), &cmd, NULL, NULL, &reply, &e);
    if (!ok)
        bson_set_error(err, NEM_ERROR_STORE,
                       e.domain == MONGOC_ERROR_SERVER_SELECTION ? NEM_STORE_ECONNECT : NEM_STORE_ESERVER,
                       "distinct %s of %s.%s at %s: %s", key, nem_store_db_name(store), NEM_RUNS_COLLECTION,
                       nem_store_host_port(store), e.message);
    else if (bson_iter_init_find(&it, &reply, "values") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &v))
        while (bson_iter_next(&v)) {
            bool known = false;
            if (!BSON_ITER_HOLDS_UTF8(&v))
                continue;
            for (size_t i = 0; i < out->n && !known; i++)
                known = strcmp(out->v[i], bson_iter_utf8(&v, NULL)) == 0;
            if (!known)
                nem_strv_push(out, bson_iter_utf8(&v, NULL));
        }
    bson_destroy(&reply);
    bson_destroy(&cmd);
    return ok;
}

bool nem_reg_predict_collections(nem_store_t *store, nem_strv_t *out, bson_error_t *err)
{
    /* Every value the prediction collection option took, in a run's first snapshot or its resume's: each
     * collection a predict script wrote to, and perhaps some no script did (a run that did not predict still
     * records the option), which hold no prediction to find. Not a read of every record: a distinct, by the
     * index. Sorted, so the order does not depend on the server's. */
    size_t first = out->n;
    bool ok = distinct_strings(store, "options.i-output-prediction-collection", out, err) &&
              distinct_strings(store, "resume_options.i-output-prediction-collection", out, err);
    if (ok && out->n > first)
        qsort(out->v + first, out->n - first, sizeof *out->v, by_name);
    return ok;
}

typedef struct {
    const bson_oid_t *want;
    size_t n;
    bson_t *out;
} resolve_t;

static bool resolve_one(const bson_t *entry, void *ud, bson_error_t *err)
{
    resolve_t *r = ud;
    bson_iter_t it;
    char hex[25];
    (void)err;
    if (!bson_iter_init_find(&it, entry, "stamp") || !BSON_ITER_HOLDS_OID(&it))
        return true;
    for (size_t i = 0; i < r->n; i++)
        if (bson_oid_equal(&r->want[i], bson_iter_oid(&it))) {
            bson_t e;
            bson_oid_to_string(bson_iter_oid(&it), hex);
            if (bson_iter_init_find(&it, r->out, hex))
                return true; /* the first run that names it, as a list would say */
            BSON_APPEND_DOCUMENT_BEGIN(r->out, hex, &e);
            BSON_APPEND_UTF8(&e, "run", nem_reg_str(entry, "run", "?"));
            BSON_APPEND_UTF8(&e, "script", nem_reg_str(entry, "script", "?"));
            bson_append_document_end(r->out, &e);
            return true;
        }
    return true;
}

#define STAMP_CHUNK 1000 /* stamps in one $in */

bool nem_reg_resolve_stamps(nem_store_t *store, const bson_oid_t *stamps, size_t n, bson_t *out, bson_error_t *err)
{
    resolve_t r = {stamps, n, out};
    bool ok = true, missing = false;
    bson_init(out);
    /* the records that name them in "stamps" (runrec.h), by its index: {stamps: {$in: [...]}} */
    for (size_t i = 0; ok && i < n; i += STAMP_CHUNK) {
        bson_t filter = BSON_INITIALIZER, in, arr;
        uint32_t k = 0;
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "stamps", &in);
        BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
        for (size_t j = i; j < n && j < i + STAMP_CHUNK; j++) {
            char key[16];
            const char *kp;
            bson_uint32_to_string(k++, &kp, key, sizeof key);
            BSON_APPEND_OID(&arr, kp, &stamps[j]);
        }
        bson_append_array_end(&in, &arr);
        bson_append_document_end(&filter, &in);
        ok = stamps_where(store, &filter, true, resolve_one, &r, err);
        bson_destroy(&filter);
    }
    for (size_t i = 0; ok && i < n && !missing; i++) {
        char hex[25];
        bson_iter_t it;
        bson_oid_to_string(&stamps[i], hex);
        missing = !bson_iter_init_find(&it, out, hex);
    }
    /* a stamp none names: it may be in a record of an earlier version, without the array, looked through */
    if (ok && missing) {
        bson_t filter = BSON_INITIALIZER, ex;
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "stamps", &ex);
        BSON_APPEND_BOOL(&ex, "$exists", false);
        bson_append_document_end(&filter, &ex);
        ok = stamps_where(store, &filter, true, resolve_one, &r, err);
        bson_destroy(&filter);
    }
    return ok;
}

bool nem_reg_count_by(nem_store_t *store, const char *collection, const char *field, const bson_value_t *value,
                      const char *group, nem_doc_cb cb, void *ud, bson_error_t *err)
{
    /* [{$match: {field: value}}, {$group: {_id: "$group", n: {$sum: 1}}}] */
    bson_t pipeline = BSON_INITIALIZER, stage, match, grp, sum;
    char *ref = bson_strdup_printf("$%s", group);
    BSON_APPEND_DOCUMENT_BEGIN(&pipeline, "0", &stage);
    BSON_APPEND_DOCUMENT_BEGIN(&stage, "$match", &match);
    BSON_APPEND_VALUE(&match, field, value);
    bson_append_document_end(&stage, &match);
    bson_append_document_end(&pipeline, &stage);
    BSON_APPEND_DOCUMENT_BEGIN(&pipeline, "1", &stage);
    BSON_APPEND_DOCUMENT_BEGIN(&stage, "$group", &grp);
    BSON_APPEND_UTF8(&grp, "_id", ref);
    BSON_APPEND_DOCUMENT_BEGIN(&grp, "n", &sum);
    BSON_APPEND_INT32(&sum, "$sum", 1);
    bson_append_document_end(&grp, &sum);
    bson_append_document_end(&stage, &grp);
    bson_append_document_end(&pipeline, &stage);
    bool ok = nem_reg_aggregate(store, collection, &pipeline, cb, ud, err);
    bson_destroy(&pipeline);
    bson_free(ref);
    return ok;
}
