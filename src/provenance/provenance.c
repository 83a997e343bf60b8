/* Provenance stamps, digests and run records. */
#include "provenance/provenance.h"

#include "log/log.h"
#include "util/procinfo.h"

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
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
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

/* Lost: recorded as running, but its rank 0 ran on this host and has ended (util/procinfo.h: seen at once), or its
 * heartbeat (or, from a version before heartbeats, its start) is older than NEM_RUNREC_LOST_FACTOR intervals. */
bool nem_runrec_is_lost(const bson_t *run, int64_t now_ms, int64_t *age_ms)
{
    bson_iter_t it;
    int64_t beat = 0, interval_s = 30;
    if (!bson_iter_init_find(&it, run, "status") || !BSON_ITER_HOLDS_UTF8(&it) ||
        strcmp(bson_iter_utf8(&it, NULL), "running") != 0)
        return false;
    if (bson_iter_init_find(&it, run, "heartbeat_s") && BSON_ITER_HOLDS_NUMBER(&it) && bson_iter_as_int64(&it) > 0)
        interval_s = bson_iter_as_int64(&it);
    bool gone = nem_proc_owner_state(run, NULL) == NEM_PROC_GONE;
    static const char *const clocks[] = {"heartbeat", "resumed", "started"};
    for (size_t i = 0; i < sizeof clocks / sizeof *clocks && !beat; i++)
        if (bson_iter_init_find(&it, run, clocks[i]) && BSON_ITER_HOLDS_DATE_TIME(&it))
            beat = bson_iter_date_time(&it);
    int64_t age = now_ms - beat;
    if (age_ms)
        *age_ms = age;
    return gone || age > NEM_RUNREC_LOST_FACTOR * interval_s * 1000;
}

/* A run being resumed must not be alive: two runs writing the same scripts' output would break exactly-once. */
static bool check_not_live(const bson_t *run, const char *resume_id, bson_error_t *err)
{
    bson_iter_t it;
    int64_t age = 0;
    if (!bson_iter_init_find(&it, run, "status") || !BSON_ITER_HOLDS_UTF8(&it) ||
        strcmp(bson_iter_utf8(&it, NULL), "running") != 0)
        return true;
    if (nem_runrec_is_lost(run, nem_wall_ms(), &age)) {
        NEM_WARN("--resume %s: that run was lost (recorded as running, last heartbeat %.0f s ago): resuming it",
                 resume_id, age / 1000.0);
        return true;
    }
    bson_set_error(err, NEM_ERROR_PROVENANCE, NEM_PROVENANCE_ELIVE,
                   "--resume %s: that run is still running (last heartbeat %.0f s ago): resume it once it has ended "
                   "or its heartbeat has expired (see --list-runs)", resume_id, age / 1000.0);
    return false;
}

typedef struct {
    const char *resume_id;
    bson_t *previous;
    bool found, legacy;
} previous_t;

static bool take_previous(const bson_t *doc, void *ud, bson_error_t *err)
{
    previous_t *p = ud;
    bson_iter_t it;
    p->found = true;
    if (!check_not_live(doc, p->resume_id, err))
        return false;
    p->legacy = !(bson_iter_init_find(&it, doc, "stamp_format") && BSON_ITER_HOLDS_NUMBER(&it) &&
                  bson_iter_as_int64(&it) >= NEM_STAMP_FORMAT);
    if (bson_iter_init_find(&it, doc, "scripts") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
        uint32_t len;
        const uint8_t *data;
        bson_t scripts;
        bson_iter_document(&it, &len, &data);
        if (bson_init_static(&scripts, data, len)) {
            bson_destroy(p->previous);
            bson_copy_to(&scripts, p->previous);
        }
    }
    return true;
}

static bool load_previous(nem_store_t *store, const char *resume_id, bson_t *previous, bool *legacy,
                          bson_error_t *err)
{
    bson_t filter = BSON_INITIALIZER;
    previous_t p = {resume_id, previous, false, false};
    BSON_APPEND_UTF8(&filter, "_id", resume_id);
    bool ok = nem_store_find(store, NEM_RUNS_COLLECTION, &filter, NULL, take_previous, &p, err);
    bson_destroy(&filter);
    *legacy = p.legacy;
    if (ok && !p.found) {
        bson_set_error(err, NEM_ERROR_PROVENANCE, NEM_PROVENANCE_ENORUN, "--resume: no run '%s' in %s.%s", resume_id,
                       nem_store_db_name(store), NEM_RUNS_COLLECTION);
        return false;
    }
    return ok;
}

bool nem_runrec_begin(nem_store_t *store, const bson_t *run_options, int heartbeat_s, const bson_t *hosts, int ranks,
                      const char *resume_id, char run_id_out[64], bson_t *previous, bool *legacy, bson_error_t *err)
{
    bson_t options, doc = BSON_INITIALIZER, update = BSON_INITIALIZER, set;
    bool ok;

    bson_init(previous);
    {
        ok = nem_lineage_compact(store, run_options, NULL, &options, err);
        if (!ok) {
            bson_destroy(&options);
            return false;
        }
    }
    if (resume_id) {
        bson_strncpy(run_id_out, resume_id, 64);
        ok = load_previous(store, resume_id, previous, legacy, err);
        if (ok) {
            bson_t filter = BSON_INITIALIZER;
            BSON_APPEND_UTF8(&filter, "_id", resume_id);
            BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
            BSON_APPEND_UTF8(&set, "status", "running");
            BSON_APPEND_DATE_TIME(&set, "resumed", nem_wall_ms());
            BSON_APPEND_DATE_TIME(&set, "heartbeat", nem_wall_ms());
            BSON_APPEND_INT64(&set, "heartbeat_s", (int64_t)heartbeat_s);
            BSON_APPEND_DOCUMENT(&set, "resume_options", &options);
            bson_append_document_end(&update, &set);
            ok = nem_store_update_one(store, NEM_RUNS_COLLECTION, &filter, &update, err);
            bson_destroy(&filter);
        }
    } else {
        make_run_id(run_id_out);
        *legacy = false;
        BSON_APPEND_UTF8(&doc, "_id", run_id_out);
        BSON_APPEND_INT32(&doc, "stamp_format", NEM_STAMP_FORMAT);
        BSON_APPEND_UTF8(&doc, "status", "running");
        BSON_APPEND_DATE_TIME(&doc, "started", nem_wall_ms());
        BSON_APPEND_DATE_TIME(&doc, "heartbeat", nem_wall_ms());
        BSON_APPEND_INT64(&doc, "heartbeat_s", (int64_t)heartbeat_s);
        BSON_APPEND_UTF8(&doc, "version", PACKAGE_VERSION);
        BSON_APPEND_INT32(&doc, "ranks", ranks);
        BSON_APPEND_ARRAY(&doc, "hosts", hosts);
        BSON_APPEND_DOCUMENT(&doc, "options", &options);
        bson_t empty = BSON_INITIALIZER;
        BSON_APPEND_DOCUMENT(&doc, "scripts", &empty);
        ok = nem_store_insert_one(store, NEM_RUNS_COLLECTION, &doc, NULL, err);
    }
    bson_destroy(&options);
    bson_destroy(&doc);
    bson_destroy(&update);
    return ok;
}

bool nem_runrec_scripts(nem_store_t *store, const char *run_id, const bson_t *fields, bson_error_t *err)
{
    bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&filter, "_id", run_id);
    BSON_APPEND_DOCUMENT(&update, "$set", fields);
    bool ok = nem_store_update_one(store, NEM_RUNS_COLLECTION, &filter, &update, err);
    bson_destroy(&filter);
    bson_destroy(&update);
    return ok;
}

bool nem_runrec_end(nem_store_t *store, const char *run_id, const char *status, const char *error, bson_error_t *err)
{
    bson_t set = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&set, "status", status);
    BSON_APPEND_DATE_TIME(&set, "ended", nem_wall_ms());
    if (error)
        BSON_APPEND_UTF8(&set, "error", error);
    else
        BSON_APPEND_NULL(&set, "error");
    bool ok = nem_runrec_scripts(store, run_id, &set, err);
    bson_destroy(&set);
    return ok;
}

bool nem_runrec_heartbeat(nem_store_t *store, const char *run_id, bson_error_t *err)
{
    bson_t set = BSON_INITIALIZER;
    BSON_APPEND_DATE_TIME(&set, "heartbeat", nem_wall_ms());
    bool ok = nem_runrec_scripts(store, run_id, &set, err);
    bson_destroy(&set);
    return ok;
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
            unsigned char md[EVP_MAX_MD_SIZE];
            unsigned int mdlen = 0;
            char sha[65];
            EVP_Digest(text, len, md, &mdlen, EVP_sha256(), NULL);
            for (unsigned i = 0; i < mdlen; i++)
                snprintf(sha + 2 * i, 3, "%02x", md[i]);
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
