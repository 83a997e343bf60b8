/* Provenance stamps, digests and lineage stored by reference. */
#include "provenance/provenance.h"

#include "log/log.h"
#include "store/ckpt.h"
#include "util/procinfo.h"
#include "util/sha256.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

bool nem_sha256_file(const char *path, char hex[65], bson_error_t *err)
{
    unsigned char buf[65536];
    FILE *f = fopen(path, "rb");
    if (!f) {
        bson_set_error(err, NEM_ERROR_PROVENANCE, NEM_PROVENANCE_EREAD, "cannot read '%s' for its sha256: %s", path, strerror(errno));
        return false;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        EVP_DigestUpdate(ctx, buf, n);
    bool ok = !ferror(f);
    fclose(f);
    nem_sha256_final_hex(ctx, hex);
    EVP_MD_CTX_free(ctx);
    if (!ok)
        bson_set_error(err, NEM_ERROR_PROVENANCE, NEM_PROVENANCE_EREAD, "read error on '%s'", path);
    return ok;
}

void nem_stamp_id(const char *run_id, nem_stage_t stage, size_t position, bson_oid_t *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    char key[64];
    nem_script_key(stage, position, key, sizeof key);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, NEM_STAMP_PREFIX, sizeof NEM_STAMP_PREFIX); /* with its NUL */
    EVP_DigestUpdate(ctx, run_id, strlen(run_id) + 1);
    EVP_DigestUpdate(ctx, key, strlen(key));
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    memcpy(out->bytes, md, sizeof out->bytes);
}

void nem_stamp_init(nem_stamp_t *s, const char *run_id, nem_stage_t stage, size_t position, const char *script,
                    bool legacy)
{
    memset(s, 0, sizeof *s);
    s->run_id = run_id;
    s->script = script;
    s->stage = stage;
    s->position = position;
    s->legacy = legacy;
    if (!legacy)
        nem_stamp_id(run_id, stage, position, &s->id);
}

void nem_provenance_stamp(bson_t *doc, const nem_stamp_t *s, const bson_value_t *model)
{
    bson_t p;
    if (bson_has_field(doc, NEM_PROVENANCE_FIELD)) {
        bson_t rest;
        bson_init(&rest);
        bson_copy_to_excluding_noinit(doc, &rest, NEM_PROVENANCE_FIELD, NULL);
        bson_destroy(doc);
        bson_steal(doc, &rest);
    }
    BSON_APPEND_DOCUMENT_BEGIN(doc, NEM_PROVENANCE_FIELD, &p);
    if (s->legacy) {
        BSON_APPEND_UTF8(&p, "run", s->run_id);
        BSON_APPEND_UTF8(&p, "stage", nem_stage_name(s->stage));
        BSON_APPEND_UTF8(&p, "script", s->script);
        BSON_APPEND_INT64(&p, "position", (int64_t)s->position);
    } else {
        BSON_APPEND_OID(&p, "s", &s->id);
    }
    if (model)
        BSON_APPEND_VALUE(&p, "model", model);
    bson_append_document_end(doc, &p);
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

void nem_provenance_filter(const char *run_id, nem_stage_t stage, size_t position, bool legacy, bson_t *out)
{
    bson_init(out);
    if (legacy) {
        BSON_APPEND_UTF8(out, NEM_PROVENANCE_FIELD ".run", run_id);
        BSON_APPEND_UTF8(out, NEM_PROVENANCE_FIELD ".stage", nem_stage_name(stage));
        BSON_APPEND_INT64(out, NEM_PROVENANCE_FIELD ".position", (int64_t)position);
    } else {
        bson_oid_t id;
        nem_stamp_id(run_id, stage, position, &id);
        BSON_APPEND_OID(out, NEM_PROVENANCE_FIELD ".s", &id);
    }
}

/* ---- the indexes of what nemesyst writes ---- */

static void ensure(nem_store_t *store, const char *collection, const char *name, bson_t *key)
{
    bson_error_t err;
    if (!nem_store_ensure_index(store, collection, key, name, &err))
        NEM_WARN("%s", err.message);
    bson_destroy(key);
}

void nem_provenance_index_data(nem_store_t *store, const char *collection, nem_stage_t stage, bool legacy)
{
    if (!collection || !*collection)
        return;
    if (legacy)
        ensure(store, collection, NEM_PROVENANCE_FIELD ".run_1_stage_1_position_1",
               BCON_NEW(NEM_PROVENANCE_FIELD ".run", BCON_INT32(1), NEM_PROVENANCE_FIELD ".stage", BCON_INT32(1),
                        NEM_PROVENANCE_FIELD ".position", BCON_INT32(1)));
    else
        ensure(store, collection, NEM_PROVENANCE_FIELD ".s_1", BCON_NEW(NEM_PROVENANCE_FIELD ".s", BCON_INT32(1)));
    if (stage == NEM_STAGE_PREDICT)
        ensure(store, collection, NEM_PROVENANCE_FIELD ".model_1",
               BCON_NEW(NEM_PROVENANCE_FIELD ".model", BCON_INT32(1)));
}

void nem_provenance_index_models(nem_store_t *store, const char *bucket)
{
    if (!bucket || !*bucket)
        return;
    char *files = bson_strdup_printf("%s.files", bucket);
    ensure(store, files, "metadata." NEM_PROVENANCE_FIELD ".run_1_stage_1_position_1",
           BCON_NEW("metadata." NEM_PROVENANCE_FIELD ".run", BCON_INT32(1), "metadata." NEM_PROVENANCE_FIELD ".stage",
                    BCON_INT32(1), "metadata." NEM_PROVENANCE_FIELD ".position", BCON_INT32(1)));
    ensure(store, files, "metadata." NEM_PROVENANCE_FIELD ".parent.id_1",
           BCON_NEW("metadata." NEM_PROVENANCE_FIELD ".parent.id", BCON_INT32(1)));
    bson_free(files);
}

void nem_provenance_index_metrics(nem_store_t *store)
{
    ensure(store, NEM_METRICS_COLLECTION, "run_1_script_1_name_1_step_1",
           BCON_NEW("run", BCON_INT32(1), "script", BCON_INT32(1), "name", BCON_INT32(1), "step", BCON_INT32(1)));
    ensure(store, NEM_METRICS_COLLECTION, NEM_PROVENANCE_FIELD ".s_1", BCON_NEW(NEM_PROVENANCE_FIELD ".s", BCON_INT32(1)));
}

void nem_provenance_index_checkpoints(nem_store_t *store)
{
    ensure(store, NEM_CHECKPOINT_BUCKET ".files", "metadata.run_1_metadata.script_1_metadata.step_-1",
           BCON_NEW("metadata.run", BCON_INT32(1), "metadata.script", BCON_INT32(1), "metadata.step", BCON_INT32(-1)));
}

void nem_provenance_index_runs(nem_store_t *store, const char *runs)
{
    ensure(store, runs, "started_-1", BCON_NEW("started", BCON_INT32(-1)));
    ensure(store, runs, "status_1_started_-1", BCON_NEW("status", BCON_INT32(1), "started", BCON_INT32(-1)));
    ensure(store, runs, "name_1", BCON_NEW("name", BCON_INT32(1)));
    ensure(store, runs, "sweep.name_1_sweep.index_1",
           BCON_NEW("sweep.name", BCON_INT32(1), "sweep.index", BCON_INT32(1)));
    ensure(store, runs, "attempts.job_1", BCON_NEW("attempts.job", BCON_INT32(1)));
    /* the run that wrote a stamped document (runrec.h "stamps"), and the collections predictions went to (a
     * distinct the server answers from the index) */
    ensure(store, runs, "stamps_1", BCON_NEW("stamps", BCON_INT32(1)));
    ensure(store, runs, "options.i-output-prediction-collection_1",
           BCON_NEW("options.i-output-prediction-collection", BCON_INT32(1)));
    ensure(store, runs, "resume_options.i-output-prediction-collection_1",
           BCON_NEW("resume_options.i-output-prediction-collection", BCON_INT32(1)));
}

/* ---- large lineage, stored once by reference ---- */

static bool store_blob(nem_store_t *store, const char *text, uint32_t len, const char sha[65], bson_error_t *err)
{
    bson_t doc = BSON_INITIALIZER;
    bson_error_t e;
    bool duplicate = false;
    BSON_APPEND_UTF8(&doc, "_id", sha);
    BSON_APPEND_INT64(&doc, "bytes", (int64_t)len);
    bson_append_utf8(&doc, "text", 4, text, (int)len);
    /* Stored before, by this run or another (a duplicate _id): the same sha256 is the same text. */
    bool ok = nem_store_insert_one(store, NEM_BLOBS_COLLECTION, &doc, &duplicate, &e) || duplicate;
    if (!ok)
        bson_set_error(err, NEM_ERROR_PROVENANCE, NEM_PROVENANCE_EBLOB, "cannot store %u bytes of lineage in %s.%s: %s", len,
                       nem_store_db_name(store), NEM_BLOBS_COLLECTION, e.message);
    bson_destroy(&doc);
    return ok;
}

static bool compact_into(nem_store_t *store, bson_iter_t *it, bson_t *out, bson_error_t *err)
{
    while (bson_iter_next(it)) {
        const char *key = bson_iter_key(it);
        int klen = (int)bson_iter_key_len(it);
        if (BSON_ITER_HOLDS_UTF8(it)) {
            uint32_t len;
            const char *text = bson_iter_utf8(it, &len);
            if (len <= NEM_LINEAGE_INLINE_MAX) {
                bson_append_iter(out, key, klen, it);
                continue;
            }
            if (len > NEM_LINEAGE_BLOB_MAX) {
                bson_set_error(err, NEM_ERROR_PROVENANCE, NEM_PROVENANCE_EBLOB,
                               "lineage field '%s' holds %u bytes: over the %u bytes one stored text can hold", key,
                               len, (unsigned)NEM_LINEAGE_BLOB_MAX);
                return false;
            }
            char sha[NEM_SHA256_HEX_LEN + 1];
            nem_sha256_hex(text, len, sha);
            if (!store_blob(store, text, len, sha, err))
                return false;
            bson_t ref;
            bson_append_document_begin(out, key, klen, &ref);
            BSON_APPEND_UTF8(&ref, "blob", sha);
            BSON_APPEND_INT64(&ref, "bytes", (int64_t)len);
            bson_append_document_end(out, &ref);
        } else if (BSON_ITER_HOLDS_DOCUMENT(it) || BSON_ITER_HOLDS_ARRAY(it)) {
            bool array = BSON_ITER_HOLDS_ARRAY(it);
            bson_iter_t sub;
            bson_t child;
            bson_iter_recurse(it, &sub);
            if (array)
                bson_append_array_begin(out, key, klen, &child);
            else
                bson_append_document_begin(out, key, klen, &child);
            bool ok = compact_into(store, &sub, &child, err);
            if (array)
                bson_append_array_end(out, &child);
            else
                bson_append_document_end(out, &child);
            if (!ok)
                return false;
        } else {
            bson_append_iter(out, key, klen, it);
        }
    }
    return true;
}

bool nem_lineage_compact(nem_store_t *store, const bson_t *in, const char *only_key, bson_t *out, bson_error_t *err)
{
    bson_iter_t it;
    bson_init(out);
    if (!bson_iter_init(&it, in))
        return true;
    if (!only_key)
        return compact_into(store, &it, out, err);
    while (bson_iter_next(&it)) {
        if (strcmp(bson_iter_key(&it), only_key) != 0 || !BSON_ITER_HOLDS_DOCUMENT(&it)) {
            bson_append_iter(out, NULL, 0, &it);
            continue;
        }
        bson_iter_t sub;
        bson_t child;
        bson_iter_recurse(&it, &sub);
        BSON_APPEND_DOCUMENT_BEGIN(out, only_key, &child);
        bool ok = compact_into(store, &sub, &child, err);
        bson_append_document_end(out, &child);
        if (!ok)
            return false;
    }
    return true;
}
