/* Provenance stamps, digests and run records. */
#include "provenance/provenance.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

bool nem_sha256_file(const char *path, char hex[65], bson_error_t *err)
{
    unsigned char buf[65536], md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        bson_set_error(err, NEM_ERROR_PROVENANCE, 1, "cannot read '%s' for its sha256: %s", path, strerror(errno));
        return false;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        EVP_DigestUpdate(ctx, buf, n);
    bool ok = !ferror(f);
    fclose(f);
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    if (!ok)
        bson_set_error(err, NEM_ERROR_PROVENANCE, 1, "read error on '%s'", path);
    return ok;
}

void nem_provenance_stamp(const bson_t *doc, const char *run_id, nem_stage_t stage, size_t position,
                          const char *script, const bson_value_t *model, bson_t *out)
{
    bson_t p;
    bson_init(out);
    bson_copy_to_excluding_noinit(doc, out, NEM_PROVENANCE_FIELD, NULL);
    BSON_APPEND_DOCUMENT_BEGIN(out, NEM_PROVENANCE_FIELD, &p);
    BSON_APPEND_UTF8(&p, "run", run_id);
    BSON_APPEND_UTF8(&p, "stage", nem_stage_info(stage)->name);
    BSON_APPEND_UTF8(&p, "script", script);
    BSON_APPEND_INT64(&p, "position", (int64_t)position);
    if (model)
        BSON_APPEND_VALUE(&p, "model", model);
    bson_append_document_end(out, &p);
}

char *nem_provenance_pipeline_json(const bson_t *pipeline)
{
    bson_string_t *out = bson_string_new("[");
    bson_iter_t it;
    bool first = true;
    if (bson_iter_init(&it, pipeline))
        while (bson_iter_next(&it)) {
            bson_t wrap = BSON_INITIALIZER;
            static const char pre[] = "{ \"v\" : ", post[] = " }";
            /* Each element through a one-key wrapper, so any BSON type gets its canonical form. */
            bson_append_value(&wrap, "v", 1, bson_iter_value(&it));
            char *json = bson_as_canonical_extended_json(&wrap, NULL);
            bson_destroy(&wrap);
            size_t len = json ? strlen(json) : 0;
            if (len >= sizeof pre + sizeof post - 2 && strncmp(json, pre, sizeof pre - 1) == 0) {
                if (!first)
                    bson_string_append(out, ", ");
                first = false;
                bson_string_append_printf(out, "%.*s", (int)(len - (sizeof pre - 1) - (sizeof post - 1)),
                                          json + sizeof pre - 1);
            }
            bson_free(json);
        }
    bson_string_append(out, "]");
    return bson_string_free(out, false);
}

void nem_provenance_filter(const char *run_id, nem_stage_t stage, size_t position, bson_t *out)
{
    bson_init(out);
    BSON_APPEND_UTF8(out, NEM_PROVENANCE_FIELD ".run", run_id);
    BSON_APPEND_UTF8(out, NEM_PROVENANCE_FIELD ".stage", nem_stage_info(stage)->name);
    BSON_APPEND_INT64(out, NEM_PROVENANCE_FIELD ".position", (int64_t)position);
}

static mongoc_collection_t *runs(nem_store_t *store)
{
    return mongoc_client_get_collection(nem_store_client(store), nem_store_db_name(store), NEM_RUNS_COLLECTION);
}

static void make_run_id(char out[64])
{
    bson_oid_t oid;
    char hex[25];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    bson_oid_init(&oid, NULL);
    bson_oid_to_string(&oid, hex);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    /* Sortable by time, unique by the ObjectId's counter and random part. */
    snprintf(out, 64, "%s-%s", stamp, hex + 16);
}

static bool load_previous(mongoc_collection_t *coll, const char *db_name, const char *resume_id, bson_t *previous,
                          bson_error_t *err)
{
    bson_t filter = BSON_INITIALIZER;
    const bson_t *doc;
    bool found = false;
    BSON_APPEND_UTF8(&filter, "_id", resume_id);
    mongoc_cursor_t *c = mongoc_collection_find_with_opts(coll, &filter, NULL, NULL);
    while (mongoc_cursor_next(c, &doc)) {
        bson_iter_t it;
        found = true;
        if (bson_iter_init_find(&it, doc, "scripts") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
            uint32_t len;
            const uint8_t *data;
            bson_t scripts;
            bson_iter_document(&it, &len, &data);
            if (bson_init_static(&scripts, data, len)) {
                bson_destroy(previous);
                bson_copy_to(&scripts, previous);
            }
        }
    }
    bool ok = !mongoc_cursor_error(c, err);
    mongoc_cursor_destroy(c);
    bson_destroy(&filter);
    if (ok && !found) {
        bson_set_error(err, NEM_ERROR_PROVENANCE, 2, "--resume: no run '%s' in %s.%s", resume_id, db_name,
                       NEM_RUNS_COLLECTION);
        return false;
    }
    return ok;
}

bool nem_runrec_begin(nem_store_t *store, const nem_config_t *cfg, const bson_t *hosts, int ranks,
                      const char *resume_id, char run_id_out[64], bson_t *previous, bson_error_t *err)
{
    mongoc_collection_t *coll = runs(store);
    bson_t options, doc = BSON_INITIALIZER, update = BSON_INITIALIZER, set;
    bool ok;

    bson_init(previous);
    nem_config_to_bson(cfg, false, &options);
    if (resume_id) {
        bson_strncpy(run_id_out, resume_id, 64);
        ok = load_previous(coll, nem_store_db_name(store), resume_id, previous, err);
        if (ok) {
            bson_t filter = BSON_INITIALIZER;
            BSON_APPEND_UTF8(&filter, "_id", resume_id);
            BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
            BSON_APPEND_UTF8(&set, "status", "running");
            BSON_APPEND_DATE_TIME(&set, "resumed", nem_wall_ms());
            BSON_APPEND_DOCUMENT(&set, "resume_options", &options);
            bson_append_document_end(&update, &set);
            ok = mongoc_collection_update_one(coll, &filter, &update, NULL, NULL, err);
            bson_destroy(&filter);
        }
    } else {
        make_run_id(run_id_out);
        BSON_APPEND_UTF8(&doc, "_id", run_id_out);
        BSON_APPEND_UTF8(&doc, "status", "running");
        BSON_APPEND_DATE_TIME(&doc, "started", nem_wall_ms());
        BSON_APPEND_UTF8(&doc, "version", PACKAGE_VERSION);
        BSON_APPEND_INT32(&doc, "ranks", ranks);
        BSON_APPEND_ARRAY(&doc, "hosts", hosts);
        BSON_APPEND_DOCUMENT(&doc, "options", &options);
        bson_t empty = BSON_INITIALIZER;
        BSON_APPEND_DOCUMENT(&doc, "scripts", &empty);
        ok = mongoc_collection_insert_one(coll, &doc, NULL, NULL, err);
    }
    bson_destroy(&options);
    bson_destroy(&doc);
    bson_destroy(&update);
    mongoc_collection_destroy(coll);
    return ok;
}

bool nem_runrec_scripts(nem_store_t *store, const char *run_id, const bson_t *fields, bson_error_t *err)
{
    mongoc_collection_t *coll = runs(store);
    bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&filter, "_id", run_id);
    BSON_APPEND_DOCUMENT(&update, "$set", fields);
    bool ok = mongoc_collection_update_one(coll, &filter, &update, NULL, NULL, err);
    bson_destroy(&filter);
    bson_destroy(&update);
    mongoc_collection_destroy(coll);
    return ok;
}

bool nem_runrec_end(nem_store_t *store, const char *run_id, const char *status, const char *error, bson_error_t *err)
{
    mongoc_collection_t *coll = runs(store);
    bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, set;
    BSON_APPEND_UTF8(&filter, "_id", run_id);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
    BSON_APPEND_UTF8(&set, "status", status);
    BSON_APPEND_DATE_TIME(&set, "ended", nem_wall_ms());
    if (error)
        BSON_APPEND_UTF8(&set, "error", error);
    else
        BSON_APPEND_NULL(&set, "error");
    bson_append_document_end(&update, &set);
    bool ok = mongoc_collection_update_one(coll, &filter, &update, NULL, NULL, err);
    bson_destroy(&filter);
    bson_destroy(&update);
    mongoc_collection_destroy(coll);
    return ok;
}
