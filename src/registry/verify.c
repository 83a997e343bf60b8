/* `verify MODEL_ID`: is the data the model was trained on still what it was? Each consumed record of the model
 * (stage/worker/writer.c: collection, pipeline, count, digest, complete) is re-read through its recorded pipeline with the
 * store's batches, the reader the learners' batches use (store/batches.c), and counted and hashed as
 * plugin/feed.c and python/nemesyst_adapter.py hash what they hand out: sha256 over each document's BSON bytes,
 * in cursor order. The stored script's sha256 is checked against the file when it is still there. */
#include "registry/registry.h"

#include <openssl/evp.h>
#include <string.h>
#include <sys/stat.h>

#include "provenance/provenance.h"
#include "util/exitcodes.h"
#include "util/sha256.h"

typedef enum { SAME, CHANGED, UNVERIFIABLE } verdict_t;

typedef struct {
    EVP_MD_CTX *sha;
    uint64_t n, limit; /* documents read; hashed: the first limit of them */
} digest_t;

static bool hash_doc(const bson_t *doc, void *ud, bson_error_t *err)
{
    digest_t *d = ud;
    (void)err;
    if (d->n++ < d->limit)
        EVP_DigestUpdate(d->sha, bson_get_data(doc), doc->len);
    return true;
}

/* verify --all: each distinct cursor (collection, pipeline, prefix read) is re-read once, however many models share
 * it; the others take its count and digest from here. */
typedef struct {
    char *key;
    uint64_t n;
    char digest[65];
} cursor_seen_t;
typedef struct {
    cursor_seen_t *v;
    size_t n, cap;
    uint64_t reads, reused;
} seen_t;
static seen_t *g_seen;

static char *cursor_key(const char *coll, const char *pipeline, uint64_t limit)
{
    return bson_strdup_printf("%s%c%" PRIu64 "%c%s", coll, '\0' + 1, limit, '\0' + 1, pipeline);
}

/* One consumed record, re-read: appends {collection, pipeline, complete, count_then, count_now, digest_then,
 * digest_now, verdict, message} to out. Returns false only on a server error. */
static bool verify_consumed(nem_reg_t *r, const bson_t *c, bson_t *out, verdict_t *v, char *msg, size_t msglen,
                            bson_error_t *err)
{
    bson_iter_t it;
    bson_t pipeline;
    char *text = NULL, digest[65] = "";
    bool exists = false, complete = true, parsed = false;
    const char *coll = nem_reg_str(c, "collection", NULL), *then = nem_reg_str(c, "digest", NULL);
    int64_t count = nem_reg_int(c, "count", -1);
    digest_t d = {0};
    bool ok = true;
    if (bson_iter_init_find(&it, c, "complete") && BSON_ITER_HOLDS_BOOL(&it))
        complete = bson_iter_bool(&it);
    *v = UNVERIFIABLE;
    if (!coll || !then || count < 0) {
        snprintf(msg, msglen, "a consumed record without collection, count or digest: nothing to compare");
    } else if (!bson_iter_init_find(&it, c, "pipeline")) {
        snprintf(msg, msglen, "%s: the record holds no pipeline, so the data cannot be re-read as it was", coll);
    } else if (!(ok = nem_reg_text(r->store, &it, &text, err))) {
    } else if (!text) {
        snprintf(msg, msglen, "%s: its pipeline was stored in %s.%s and is gone from there", coll,
                 nem_store_db_name(r->store), NEM_BLOBS_COLLECTION);
    } else if (!(parsed = bson_init_from_json(&pipeline, text, -1, NULL))) {
        snprintf(msg, msglen, "%s: its stored pipeline is not valid JSON", coll);
    } else if (!(ok = nem_reg_collection_exists(r->store, coll, &exists, err))) {
    } else if (!exists) {
        snprintf(msg, msglen, "the data collection %s.%s no longer exists (dropped?): the %" PRId64 " documents the "
                 "model was trained on cannot be re-read", nem_store_db_name(r->store), coll, count);
    } else {
        /* a learner that stopped early hashed only what it read: compare the same prefix */
        d.limit = complete ? UINT64_MAX : (uint64_t)count;
        char *key = g_seen ? cursor_key(coll, text, d.limit) : NULL;
        size_t hit = SIZE_MAX;
        for (size_t i = 0; key && i < g_seen->n && hit == SIZE_MAX; i++)
            if (!strcmp(g_seen->v[i].key, key))
                hit = i;
        if (hit != SIZE_MAX) {
            d.n = g_seen->v[hit].n;
            memcpy(digest, g_seen->v[hit].digest, sizeof digest);
            g_seen->reused++;
            bson_free(key);
        } else {
            d.sha = EVP_MD_CTX_new();
            EVP_DigestInit_ex(d.sha, EVP_sha256(), NULL);
            ok = nem_reg_aggregate(r->store, coll, &pipeline, hash_doc, &d, err);
            nem_sha256_final_hex(d.sha, digest);
            EVP_MD_CTX_free(d.sha);
            if (key && ok) {
                if (g_seen->n == g_seen->cap) {
                    g_seen->cap = g_seen->cap ? 2 * g_seen->cap : 16;
                    g_seen->v = bson_realloc(g_seen->v, g_seen->cap * sizeof *g_seen->v);
                }
                g_seen->v[g_seen->n].key = key;
                g_seen->v[g_seen->n].n = d.n;
                memcpy(g_seen->v[g_seen->n].digest, digest, sizeof digest);
                g_seen->n++;
                g_seen->reads++;
            } else {
                bson_free(key);
            }
        }
        uint64_t now = complete ? d.n : (d.n < (uint64_t)count ? d.n : (uint64_t)count);
        *v = now == (uint64_t)count && strcmp(digest, then) == 0 ? SAME : CHANGED;
        if (*v == SAME)
            snprintf(msg, msglen, "unchanged");
        else
            snprintf(msg, msglen, "changed: %" PRId64 " documents then, %" PRIu64 " now", count, now);
        d.n = now;
    }
    BSON_APPEND_UTF8(out, "collection", coll ? coll : "?");
    if (text)
        BSON_APPEND_UTF8(out, "pipeline", text);
    else
        BSON_APPEND_NULL(out, "pipeline");
    BSON_APPEND_BOOL(out, "complete", complete);
    BSON_APPEND_INT64(out, "count_then", count);
    if (*v == UNVERIFIABLE) {
        BSON_APPEND_NULL(out, "count_now");
        BSON_APPEND_NULL(out, "digest_now");
    } else {
        BSON_APPEND_INT64(out, "count_now", (int64_t)d.n);
        BSON_APPEND_UTF8(out, "digest_now", digest);
    }
    BSON_APPEND_UTF8(out, "digest_then", then ? then : "?");
    BSON_APPEND_UTF8(out, "verdict", *v == SAME ? "unchanged" : *v == CHANGED ? "changed" : "unverifiable");
    BSON_APPEND_UTF8(out, "message", msg);
    if (parsed)
        bson_destroy(&pipeline);
    bson_free(text);
    return ok;
}

/* The script as stored against the file at its path on this host, when it is still there. */
static verdict_t verify_script(const bson_t *prov, bson_t *out, char *msg, size_t msglen)
{
    const char *path = nem_reg_str(prov, "script", NULL), *then = nem_reg_str(prov, "script_sha256", NULL);
    char now[65] = "";
    struct stat st;
    bson_error_t e;
    verdict_t v = SAME;
    /* A relative path is relative to the directory nemesyst ran in, which this process need not share: a file
     * found from here could be another one. */
    bool relative = path && path[0] != '/';
    bool there = path && !relative && stat(path, &st) == 0 && S_ISREG(st.st_mode);
    BSON_APPEND_UTF8(out, "path", path ? path : "?");
    BSON_APPEND_UTF8(out, "sha256_then", then ? then : "?");
    BSON_APPEND_BOOL(out, "exists", there);
    if (relative)
        snprintf(msg, msglen, "recorded as a relative path: not checked");
    else if (!path || !then)
        snprintf(msg, msglen, "no script or sha256 recorded: not checked");
    else if (!there)
        snprintf(msg, msglen, "not on this host any more (it ran on %s): not checked", nem_reg_str(prov, "host", "?"));
    else if (!nem_sha256_file(path, now, &e))
        snprintf(msg, msglen, "cannot be read: not checked (%.300s)", e.message);
    else if ((v = strcmp(now, then) == 0 ? SAME : CHANGED) == SAME)
        snprintf(msg, msglen, "unchanged");
    else
        snprintf(msg, msglen, "changed: script %.300s (sha256 then %.12s..., now %.12s...)", path, then, now);
    if (*now) {
        BSON_APPEND_UTF8(out, "sha256_now", now);
        BSON_APPEND_BOOL(out, "unchanged", v == SAME);
    } else {
        BSON_APPEND_NULL(out, "sha256_now");
        BSON_APPEND_NULL(out, "unchanged");
    }
    BSON_APPEND_UTF8(out, "message", msg);
    return v;
}

/* One file of the code a script ran (an imported module, an interpreter): its sha256 then against the file now. */
static verdict_t verify_file(const char *what, const bson_t *f, bson_t *arr, uint32_t *k, char *msg, size_t msglen)
{
    const char *path = nem_reg_str(f, "path", NULL), *then = nem_reg_str(f, "sha256", NULL);
    char now[65] = "", key[16];
    const char *kp;
    struct stat st;
    bson_error_t e;
    verdict_t v = SAME;
    bson_t child;
    bson_uint32_to_string((*k)++, &kp, key, sizeof key);
    BSON_APPEND_DOCUMENT_BEGIN(arr, kp, &child);
    BSON_APPEND_UTF8(&child, "kind", what);
    BSON_APPEND_UTF8(&child, "path", path ? path : "?");
    if (!path || !then || path[0] != '/')
        snprintf(msg, msglen, "%s without an absolute path and sha256: not checked", what);
    else if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        snprintf(msg, msglen, "%s %.300s is not on this host any more: not checked", what, path);
    else if (!nem_sha256_file(path, now, &e))
        snprintf(msg, msglen, "%s %.300s cannot be read: not checked", what, path);
    else if ((v = strcmp(now, then) == 0 ? SAME : CHANGED) == CHANGED)
        snprintf(msg, msglen, "changed: %s %.300s (sha256 then %.12s..., now %.12s...)", what, path, then, now);
    else
        snprintf(msg, msglen, "unchanged");
    /* as for the script itself: a file gone from this host, or unreadable, is reported but not held against it */
    BSON_APPEND_UTF8(&child, "verdict", v == CHANGED ? "changed" : strcmp(msg, "unchanged") == 0 ? "unchanged"
                                                                                               : "not checked");
    bson_append_document_end(arr, &child);
    return v;
}

/* The code the script ran beyond its own file (provenance/code.h): every module a Python script imported, an
 * executable's interpreter. A file gone from this host is reported, not held against the model (as the script
 * itself); git facts are shown, not judged: a work tree that moved on need not touch the script. */
static void verify_code(const bson_t *prov, bson_t *out, verdict_t *worst, char *msg, size_t msglen)
{
    bson_t code, mods, item, arr, interp;
    bson_iter_t it;
    uint32_t k = 0, changed = 0;
    char one[600], first_change[600] = "", what[200];
    BSON_APPEND_ARRAY_BEGIN(out, "files", &arr);
    if (nem_reg_sub(prov, "code", &code)) {
        if (nem_reg_sub(&code, "interpreter", &interp) &&
            verify_file("interpreter", &interp, &arr, &k, one, sizeof one) == CHANGED && !changed++)
            bson_strncpy(first_change, one, sizeof first_change);
        if (nem_reg_sub(&code, "modules", &mods) && bson_iter_init(&it, &mods))
            while (bson_iter_next(&it)) {
                if (!nem_reg_sub(&mods, bson_iter_key(&it), &item))
                    continue;
                snprintf(what, sizeof what, "module %.150s", nem_reg_str(&item, "name", "?"));
                if (verify_file(what, &item, &arr, &k, one, sizeof one) == CHANGED && !changed++)
                    bson_strncpy(first_change, one, sizeof first_change);
            }
    }
    bson_append_array_end(out, &arr);
    *worst = changed ? CHANGED : SAME;
    if (changed)
        snprintf(msg, msglen, "%s%s", first_change, changed > 1 ? " (and more)" : "");
    else
        snprintf(msg, msglen, k ? "unchanged (%u file(s))" : "nothing beyond the script recorded", k);
}

/* A learner group's model: member 0's consumed records are its own shard's. Each other member read the same
 * pipeline over its own shard (the same code ran on every member): its record is member 0's with the first $match,
 * the shard, replaced by the member's, and its own count and digest from metadata._nemesyst.group. */
static bool member_record(const bson_t *c0, const char *shard0, const bson_t *member, bson_t *out)
{
    const char *text = nem_reg_str(c0, "pipeline", NULL), *shard = nem_reg_str(member, "shard", NULL);
    bson_t pipeline, arr, st, f;
    bson_iter_t it, first;
    bool ok = false;
    if (!text || !shard || !shard0 || !bson_init_from_json(&pipeline, text, -1, NULL))
        return false;
    /* member 0's record must begin with its shard's $match */
    if (bson_iter_init(&it, &pipeline) && bson_iter_next(&it) && BSON_ITER_HOLDS_DOCUMENT(&it) &&
        bson_iter_recurse(&it, &first) && bson_iter_find(&first, "$match") &&
        bson_init_from_json(&f, shard, -1, NULL)) {
        uint32_t n = 0;
        char key[16];
        const char *k;
        bson_init(&arr);
        bson_uint32_to_string(n++, &k, key, sizeof key);
        BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &st);
        BSON_APPEND_DOCUMENT(&st, "$match", &f);
        bson_append_document_end(&arr, &st);
        while (bson_iter_next(&it)) {
            bson_uint32_to_string(n++, &k, key, sizeof key);
            bson_append_value(&arr, k, -1, bson_iter_value(&it));
        }
        char *json = nem_provenance_pipeline_json(&arr);
        bson_init(out);
        BSON_APPEND_UTF8(out, "collection", nem_reg_str(c0, "collection", "?"));
        BSON_APPEND_UTF8(out, "pipeline", json);
        bson_iter_t cnt;
        if (bson_iter_init_find(&cnt, member, "count") && BSON_ITER_HOLDS_NUMBER(&cnt))
            BSON_APPEND_INT64(out, "count", bson_iter_as_int64(&cnt));
        BSON_APPEND_UTF8(out, "digest", nem_reg_str(member, "digest", "?"));
        BSON_APPEND_BOOL(out, "complete", true);
        bson_free(json);
        bson_destroy(&arr);
        bson_destroy(&f);
        ok = true;
    }
    bson_destroy(&pipeline);
    return ok;
}

/* The verdicts so far: the first change and the first part that could not be checked, for the last line. */
typedef struct {
    char first_change[512], first_problem[512];
    bool any_change, any_problem;
} tally_t;

static void tally(tally_t *t, verdict_t v, const char *msg)
{
    if (v == CHANGED && !t->any_change)
        snprintf(t->first_change, sizeof t->first_change, "%s", msg);
    if (v == UNVERIFIABLE && !t->any_problem)
        snprintf(t->first_problem, sizeof t->first_problem, "%s", msg);
    t->any_change |= v == CHANGED;
    t->any_problem |= v == UNVERIFIABLE;
}

/* One model's verification (its files document in bucket) into report, its verdicts tallied in t; print: the
 * table's lines as they come. False only on a server error (err). */
static bool verify_one(nem_reg_t *r, const char *model_id, const bson_t *file, const char *bucket, bool print,
                       bson_t *report, tally_t *t_out, bson_error_t *err_out)
{
    bson_t prov, consumed, arr, rec, script;
    bson_iter_t it;
    bson_error_t err;
    char msg[512];
    uint32_t n = 0;
    bool ok = true;
    tally_t t = {"", "", false, false};
    BSON_APPEND_UTF8(report, "model", model_id);
    BSON_APPEND_UTF8(report, "bucket", bucket);
    bool has = nem_reg_sub(file, "metadata." NEM_PROVENANCE_FIELD, &prov);
    BSON_APPEND_ARRAY_BEGIN(report, "data", &arr);
    if (has && nem_reg_sub(&prov, "consumed", &consumed) && bson_iter_init(&it, &consumed))
        while (ok && bson_iter_next(&it)) {
            bson_t c, one = BSON_INITIALIZER;
            verdict_t v;
            if (!nem_reg_sub(&consumed, bson_iter_key(&it), &c))
                continue;
            ok = verify_consumed(r, &c, &one, &v, msg, sizeof msg, &err);
            nem_reg_push_doc(&arr, &n, &rec);
            bson_concat(&rec, &one);
            bson_append_document_end(&arr, &rec);
            bson_destroy(&one);
            if (!ok)
                break;
            const char *coll = nem_reg_str(&c, "collection", "?");
            if (print)
                fprintf(r->out, "data    %s: %s\n", coll, msg);
            tally(&t, v, msg);
        }
    /* the other members of a learner group, from member 0's record on the group's collection */
    bson_t group, members, c0;
    const char *gcoll = has ? nem_reg_str(&prov, "data_collection", NULL) : NULL;
    bool found0 = false;
    if (ok && has && gcoll && nem_reg_sub(&prov, "group.members", &members) &&
        bson_iter_init(&it, &consumed))
        while (!found0 && bson_iter_next(&it))
            found0 = nem_reg_sub(&consumed, bson_iter_key(&it), &c0) &&
                     !strcmp(nem_reg_str(&c0, "collection", ""), gcoll) && nem_reg_str(&c0, "pipeline", NULL);
    if (found0 && nem_reg_sub(&prov, "group", &group) && bson_iter_init(&it, &members)) {
        bson_t m0;
        const char *shard0 = nem_reg_sub(&members, "0", &m0) ? nem_reg_str(&m0, "shard", NULL) : NULL;
        while (ok && bson_iter_next(&it)) {
            bson_t m, c, one = BSON_INITIALIZER;
            verdict_t v;
            if (!strcmp(bson_iter_key(&it), "0") || !nem_reg_sub(&members, bson_iter_key(&it), &m))
                continue;
            if (!member_record(&c0, shard0, &m, &c)) {
                bson_destroy(&one);
                continue;
            }
            ok = verify_consumed(r, &c, &one, &v, msg, sizeof msg, &err);
            nem_reg_push_doc(&arr, &n, &rec);
            BSON_APPEND_INT32(&rec, "member", (int32_t)strtol(bson_iter_key(&it), NULL, 10));
            bson_concat(&rec, &one);
            bson_append_document_end(&arr, &rec);
            bson_destroy(&one);
            bson_destroy(&c);
            if (!ok)
                break;
            if (print)
                fprintf(r->out, "data    %s (group member %s): %s\n", gcoll, bson_iter_key(&it), msg);
            tally(&t, v, msg);
        }
    }
    bson_append_array_end(report, &arr);
    if (ok && n == 0) {
        t.any_problem = true;
        snprintf(t.first_problem, sizeof t.first_problem, "%s",
                 has ? "its learner recorded no data it consumed: nothing to re-read"
                     : "it has no nemesyst lineage (metadata._nemesyst): it was not stored by nemesyst");
    }
    if (ok) {
        BSON_APPEND_DOCUMENT_BEGIN(report, "script", &script);
        bson_t none = BSON_INITIALIZER;
        verdict_t v = verify_script(has ? &prov : &none, &script, msg, sizeof msg);
        bson_append_document_end(report, &script);
        if (print)
            fprintf(r->out, "script  %s: %s\n", nem_reg_str(report, "script.path", "?"), msg);
        tally(&t, v, msg);
        bson_t code;
        BSON_APPEND_DOCUMENT_BEGIN(report, "code", &code);
        verify_code(has ? &prov : &none, &code, &v, msg, sizeof msg);
        bson_append_document_end(report, &code);
        if (print)
            fprintf(r->out, "code    %s\n", msg);
        if (v != SAME)
            tally(&t, v, msg);
    }
    *t_out = t;
    if (!ok)
        *err_out = err;
    return ok;
}

int nem_reg_verify(nem_reg_t *r, const char *model_id)
{
    bson_t file, report = BSON_INITIALIZER;
    bson_error_t err;
    char *bucket = NULL;
    tally_t t;
    if (!nem_reg_model_arg(r, model_id, &file, &bucket, &err))
        return nem_reg_fail(&err);
    bool ok = verify_one(r, model_id, &file, bucket, !r->json, &report, &t, &err);
    bson_destroy(&file);
    bson_free(bucket);
    if (!ok) {
        bson_destroy(&report);
        return nem_reg_fail(&err);
    }
    /* A proven change outranks a part that could not be checked. */
    const char *verdict = t.any_change ? "changed" : t.any_problem ? "unverifiable" : "unchanged";
    const char *line = t.any_change ? t.first_change : t.any_problem ? t.first_problem : "unchanged";
    BSON_APPEND_UTF8(&report, "verdict", verdict);
    BSON_APPEND_UTF8(&report, "message", line);
    if (r->json)
        nem_reg_print_json(r->out, &report);
    else if (!t.any_problem || t.any_change)
        fprintf(r->out, "%s\n", line);
    if (t.any_problem && !t.any_change)
        fprintf(stderr, "nemesyst-registry: error: verify %s: %s\n", model_id, t.first_problem);
    bson_destroy(&report);
    return t.any_change ? NEM_EXIT_FAILURE : t.any_problem ? NEM_EXIT_UNVERIFIABLE : NEM_EXIT_OK;
}

typedef struct {
    nem_reg_t *r;
    const char *bucket;
    uint32_t n;
    unsigned same, changed, unverifiable;
    bson_error_t *err;
    nem_table_t *table;
} all_t;

static const nem_table_col_t verdict_columns[] = {
    {"verdict", NEM_TABLE_LEFT, 0}, {"model", NEM_TABLE_LEFT, 0}, {"bucket", NEM_TABLE_LEFT, 0},
    {"cause", NEM_TABLE_LEFT, 0},
};

static bool verify_each(const bson_t *file, void *ud, bson_error_t *err)
{
    all_t *a = ud;
    bson_iter_t it;
    char id[25] = "";
    bson_t report = BSON_INITIALIZER, row;
    tally_t t;
    if (!bson_iter_init_find(&it, file, "_id") || !BSON_ITER_HOLDS_OID(&it))
        return true;
    bson_oid_to_string(bson_iter_oid(&it), id);
    if (!verify_one(a->r, id, file, a->bucket, false, &report, &t, err)) {
        bson_destroy(&report);
        return false;
    }
    const char *verdict = t.any_change ? "changed" : t.any_problem ? "unverifiable" : "unchanged";
    const char *line = t.any_change ? t.first_change : t.any_problem ? t.first_problem : "unchanged";
    a->changed += t.any_change;
    a->unverifiable += !t.any_change && t.any_problem;
    a->same += !t.any_change && !t.any_problem;
    /* each model's line goes out as it is judged: nothing is kept but the tally and the cursors read */
    if (a->r->json) {
        bson_init(&row);
        BSON_APPEND_UTF8(&row, "model", id);
        BSON_APPEND_UTF8(&row, "bucket", a->bucket);
        BSON_APPEND_UTF8(&row, "run", nem_reg_str(file, "metadata." NEM_PROVENANCE_FIELD ".run", "?"));
        BSON_APPEND_UTF8(&row, "verdict", verdict);
        BSON_APPEND_UTF8(&row, "message", line);
        nem_reg_json_item(a->r->out, &a->n, &row);
        bson_destroy(&row);
    } else {
        nem_table_add(a->table, verdict);
        nem_table_add(a->table, id);
        nem_table_add(a->table, a->bucket);
        nem_table_add(a->table, line);
        nem_table_flush_full(a->table, a->r->out, NULL);
    }
    bson_destroy(&report);
    return true;
}

int nem_reg_verify_all(nem_reg_t *r)
{
    nem_strv_t buckets = {0};
    bson_error_t err = {0};
    bson_t out = BSON_INITIALIZER;
    seen_t seen = {0};
    bool ok = true;
    all_t a = {r, NULL, 0, 0, 0, 0, &err,
               nem_table_new(verdict_columns, sizeof verdict_columns / sizeof *verdict_columns)};
    g_seen = &seen;
    if (r->bucket)
        nem_strv_push(&buckets, r->bucket);
    else
        ok = nem_reg_buckets(r->store, &buckets, &err);
    /* a long listing streams (util/table.h): its columns as wide as they can get */
    nem_table_min_width(a.table, 0, strlen("unverifiable"));
    nem_table_min_width(a.table, 1, 24);
    size_t widest = 0;
    for (size_t i = 0; i < buckets.n; i++)
        widest = strlen(buckets.v[i]) > widest ? strlen(buckets.v[i]) : widest;
    nem_table_min_width(a.table, 2, widest);
    bool opened = ok && r->json;
    if (opened)
        nem_reg_json_open(r->out, "models");
    for (size_t i = 0; ok && i < buckets.n; i++) {
        /* only what nemesyst stored: a model with lineage; oldest first */
        char *files = bson_strdup_printf("%s.files", buckets.v[i]);
        bson_t filter = BSON_INITIALIZER, ex;
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "metadata." NEM_PROVENANCE_FIELD, &ex);
        BSON_APPEND_BOOL(&ex, "$exists", true);
        bson_append_document_end(&filter, &ex);
        bson_t *opts = BCON_NEW("sort", "{", "uploadDate", BCON_INT32(1), "_id", BCON_INT32(1), "}");
        a.bucket = buckets.v[i];
        ok = nem_store_find(r->store, files, &filter, opts, verify_each, &a, &err);
        bson_destroy(opts);
        bson_destroy(&filter);
        bson_free(files);
    }
    g_seen = NULL;
    for (size_t i = 0; i < seen.n; i++)
        bson_free(seen.v[i].key);
    bson_free(seen.v);
    nem_strv_free(&buckets);
    if (ok && !r->json)
        nem_table_print(a.table, r->out, NULL);
    nem_table_destroy(a.table);
    if (!ok) {
        if (opened)
            fputs("]}\n", r->out); /* what was printed stays valid JSON; the error says the rest is missing */
        bson_destroy(&out);
        return nem_reg_fail(&err);
    }
    unsigned total = a.same + a.changed + a.unverifiable;
    BSON_APPEND_INT32(&out, "unchanged", (int32_t)a.same);
    BSON_APPEND_INT32(&out, "changed", (int32_t)a.changed);
    BSON_APPEND_INT32(&out, "unverifiable", (int32_t)a.unverifiable);
    BSON_APPEND_INT64(&out, "cursors_read", (int64_t)seen.reads);
    BSON_APPEND_INT64(&out, "cursors_shared", (int64_t)seen.reused);
    if (r->json)
        nem_reg_json_close(r->out, &out);
    else
        fprintf(r->out, "%u model(s): %u unchanged, %u changed, %u unverifiable (%" PRIu64 " cursor(s) read, %" PRIu64
                " shared)\n", total, a.same, a.changed, a.unverifiable, seen.reads, seen.reused);
    bson_destroy(&out);
    /* as for one model: a change outranks what could not be checked */
    return a.changed ? NEM_EXIT_FAILURE : a.unverifiable ? NEM_EXIT_UNVERIFIABLE : NEM_EXIT_OK;
}
