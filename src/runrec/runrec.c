/* The run record (runrec.h). */
#include "runrec/runrec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <time.h>
#include <unistd.h>

#include "log/log.h"
#include "provenance/provenance.h"
#include "util/clock.h"
#include "util/procinfo.h"
#include "util/status.h"

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
    if (!nem_runrec_is_running(run))
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
    (void)it;
    if (!nem_runrec_is_running(run))
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
    const char *name;  /* --run-name given with --resume, or NULL */
    const bson_t *tags; /* --tag given with --resume (may be empty or NULL) */
    const bson_t *sweep; /* --sweep given with --resume: {name, index, overrides} (may be empty or NULL) */
    bson_t *previous;
    bool found, legacy;
} previous_t;

/* A run keeps the name and tags it started with: a --run-name given with --resume must be its name, and each --tag
 * one of its tags with the same value (giving none, or the same command line again, is right). */
static bool check_labels(const bson_t *run, const previous_t *p, bson_error_t *err)
{
    bson_iter_t it, t;
    const char *had = bson_iter_init_find(&it, run, "name") && BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL)
                                                                                         : NULL;
    if (p->name && (!had || strcmp(had, p->name) != 0)) {
        bson_set_error(err, NEM_ERROR_PROVENANCE, NEM_PROVENANCE_ELABEL,
                       "--resume %s: --run-name '%s' is not that run's name (%s%s%s): a run keeps the name it started "
                       "with; give that or none", p->resume_id, p->name, had ? "'" : "it has none", had ? had : "",
                       had ? "'" : "");
        return false;
    }
    if (p->sweep && !bson_empty(p->sweep)) {
        /* a sweep's run is one set of it: the same name, index and overrides */
        bson_t had_sweep;
        bool has = bson_iter_init_find(&it, run, "sweep") && BSON_ITER_HOLDS_DOCUMENT(&it);
        if (has) {
            uint32_t len;
            const uint8_t *data;
            bson_iter_document(&it, &len, &data);
            has = bson_init_static(&had_sweep, data, len);
        }
        if (!has || !bson_equal(&had_sweep, p->sweep)) {
            char *want = bson_as_relaxed_extended_json(p->sweep, NULL);
            char *got = has ? bson_as_relaxed_extended_json(&had_sweep, NULL) : NULL;
            bson_set_error(err, NEM_ERROR_PROVENANCE, NEM_PROVENANCE_ELABEL,
                           "--resume %s: the sweep set given (%s) is not that run's (%s): a run keeps the sweep set "
                           "it started with", p->resume_id, want, got ? got : "it is of no sweep");
            bson_free(want);
            bson_free(got);
            return false;
        }
    }
    if (!p->tags || !bson_iter_init(&t, p->tags))
        return true;
    while (bson_iter_next(&t)) {
        const char *key = bson_iter_key(&t), *want = bson_iter_utf8(&t, NULL), *have = NULL;
        bson_iter_t rt, v;
        if (bson_iter_init_find(&rt, run, "tags") && BSON_ITER_HOLDS_DOCUMENT(&rt) && bson_iter_recurse(&rt, &v) &&
            bson_iter_find(&v, key) && BSON_ITER_HOLDS_UTF8(&v))
            have = bson_iter_utf8(&v, NULL);
        if (!have || strcmp(have, want) != 0) {
            bson_set_error(err, NEM_ERROR_PROVENANCE, NEM_PROVENANCE_ELABEL,
                           "--resume %s: --tag %s=%s is not one of that run's tags (%s%s%s%s): a run keeps the tags "
                           "it started with; give those or none", p->resume_id, key, want,
                           have ? "it has " : "it has no tag ", key, have ? "=" : "", have ? have : "");
            return false;
        }
    }
    return true;
}

static bool take_previous(const bson_t *doc, void *ud, bson_error_t *err)
{
    previous_t *p = ud;
    bson_iter_t it;
    p->found = true;
    if (!check_labels(doc, p, err) || !check_not_live(doc, p->resume_id, err))
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

static bool load_previous(nem_store_t *store, const char *resume_id, const char *name, const bson_t *tags,
                          const bson_t *sweep, bson_t *previous, bool *legacy, bson_error_t *err)
{
    bson_t filter = BSON_INITIALIZER;
    previous_t p = {resume_id, name, tags, sweep, previous, false, false};
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

/* Who started the run: rank 0's user by name, or "uid N" when the system has no name for it. */
static const char *user_name(char *buf, size_t len)
{
    struct passwd pw, *found = NULL;
    char tmp[4096];
    uid_t uid = geteuid();
    if (getpwuid_r(uid, &pw, tmp, sizeof tmp, &found) == 0 && found && found->pw_name && *found->pw_name)
        bson_strncpy(buf, found->pw_name, len);
    else
        bson_snprintf(buf, len, "uid %ld", (long)uid);
    return buf;
}

/* The stamps of entries: each {KEY: {..., stamp: OID}} of entries (prefix "": a scripts document) or each
 * {"scripts.KEY": {..., stamp}} (prefix "scripts."), appended to arr (n: its length). */
static void stamps_of(const bson_t *entries, const char *prefix, bson_t *arr, uint32_t *n)
{
    bson_iter_t it, f;
    size_t plen = strlen(prefix);
    if (!bson_iter_init(&it, entries))
        return;
    while (bson_iter_next(&it)) {
        const char *key = bson_iter_key(&it);
        if (strncmp(key, prefix, plen) != 0 || strchr(key + plen, '.') || !BSON_ITER_HOLDS_DOCUMENT(&it) ||
            !bson_iter_recurse(&it, &f) || !bson_iter_find(&f, "stamp") || !BSON_ITER_HOLDS_OID(&f))
            continue;
        char k[16];
        const char *kp;
        bson_uint32_to_string((*n)++, &kp, k, sizeof k);
        BSON_APPEND_OID(arr, kp, bson_iter_oid(&f));
    }
}

/* {stamps: {$each: [...]}} into update's $addToSet when entries name any stamp. */
static void add_stamps(bson_t *update, const bson_t *entries, const char *prefix)
{
    bson_t arr = BSON_INITIALIZER, add, each;
    uint32_t n = 0;
    stamps_of(entries, prefix, &arr, &n);
    if (n) {
        BSON_APPEND_DOCUMENT_BEGIN(update, "$addToSet", &add);
        BSON_APPEND_DOCUMENT_BEGIN(&add, "stamps", &each);
        BSON_APPEND_ARRAY(&each, "$each", &arr);
        bson_append_document_end(&add, &each);
        bson_append_document_end(update, &add);
    }
    bson_destroy(&arr);
}

bool nem_runrec_begin(nem_store_t *store, const bson_t *run_options, const char *name, const bson_t *tags,
                      const bson_t *sweep, int heartbeat_s, const bson_t *hosts, int ranks, const char *resume_id, char run_id_out[64],
                      bson_t *previous, bool *legacy, bson_error_t *err)
{
    bson_t options, doc = BSON_INITIALIZER, update = BSON_INITIALIZER, set;
    bool ok;

    bson_init(previous);
    nem_provenance_index_runs(store, NEM_RUNS_COLLECTION); /* what the listings and the registry query */
    {
        ok = nem_lineage_compact(store, run_options, NULL, &options, err);
        if (!ok) {
            bson_destroy(&options);
            return false;
        }
    }
    if (resume_id) {
        bson_strncpy(run_id_out, resume_id, 64);
        ok = load_previous(store, resume_id, name, tags, sweep, previous, legacy, err);
        if (ok) {
            bson_t filter = BSON_INITIALIZER;
            BSON_APPEND_UTF8(&filter, "_id", resume_id);
            BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
            BSON_APPEND_UTF8(&set, "status", nem_status_name(NEM_STATUS_RUNNING));
            BSON_APPEND_DATE_TIME(&set, "resumed", nem_wall_ms());
            BSON_APPEND_DATE_TIME(&set, "heartbeat", nem_wall_ms());
            BSON_APPEND_INT64(&set, "heartbeat_s", (int64_t)heartbeat_s);
            BSON_APPEND_DOCUMENT(&set, "resume_options", &options);
            bson_append_document_end(&update, &set);
            /* a record of an earlier version gets the array now, with the stamps it already names */
            add_stamps(&update, previous, "");
            ok = nem_store_update_one(store, NEM_RUNS_COLLECTION, &filter, &update, err);
            bson_destroy(&filter);
        }
    } else {
        make_run_id(run_id_out);
        *legacy = false;
        BSON_APPEND_UTF8(&doc, "_id", run_id_out);
        BSON_APPEND_INT32(&doc, "schema", NEM_RUNREC_SCHEMA);
        BSON_APPEND_INT32(&doc, "stamp_format", NEM_STAMP_FORMAT);
        BSON_APPEND_UTF8(&doc, "status", nem_status_name(NEM_STATUS_RUNNING));
        BSON_APPEND_DATE_TIME(&doc, "started", nem_wall_ms());
        BSON_APPEND_DATE_TIME(&doc, "heartbeat", nem_wall_ms());
        BSON_APPEND_INT64(&doc, "heartbeat_s", (int64_t)heartbeat_s);
        if (name)
            BSON_APPEND_UTF8(&doc, "name", name);
        else
            BSON_APPEND_NULL(&doc, "name");
        if (tags)
            BSON_APPEND_DOCUMENT(&doc, "tags", tags);
        else {
            bson_t none = BSON_INITIALIZER;
            BSON_APPEND_DOCUMENT(&doc, "tags", &none);
        }
        if (sweep && !bson_empty(sweep))
            BSON_APPEND_DOCUMENT(&doc, "sweep", sweep);
        else
            BSON_APPEND_NULL(&doc, "sweep");
        BSON_APPEND_UTF8(&doc, "version", PACKAGE_VERSION);
        BSON_APPEND_INT32(&doc, "ranks", ranks);
        BSON_APPEND_ARRAY(&doc, "hosts", hosts);
        char user[256];
        BSON_APPEND_UTF8(&doc, "user", user_name(user, sizeof user));
        BSON_APPEND_DOCUMENT(&doc, "options", &options);
        bson_t empty = BSON_INITIALIZER;
        BSON_APPEND_DOCUMENT(&doc, "scripts", &empty);
        BSON_APPEND_ARRAY(&doc, "stamps", &empty);
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
    add_stamps(&update, fields, "scripts.");
    bool ok = nem_store_update_one(store, NEM_RUNS_COLLECTION, &filter, &update, err);
    bson_destroy(&filter);
    bson_destroy(&update);
    return ok;
}

bool nem_runrec_end(nem_store_t *store, const char *run_id, nem_status_t status, const char *error,
                    bson_error_t *err)
{
    bson_t set = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&set, "status", nem_status_name(status));
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

static bool copy_doc(const bson_t *doc, void *ud, bson_error_t *err)
{
    (void)err;
    bson_t *out = ud;
    bson_destroy(out);
    bson_copy_to(doc, out);
    return true;
}

bool nem_runrec_get(nem_store_t *store, const char *id, bson_t *run, bson_error_t *err)
{
    bson_t filter = BSON_INITIALIZER;
    bson_init(run);
    BSON_APPEND_UTF8(&filter, "_id", id);
    bool ok = nem_store_find(store, NEM_RUNS_COLLECTION, &filter, NULL, copy_doc, run, err);
    bson_destroy(&filter);
    return ok;
}

bool nem_runrec_is_running(const bson_t *run)
{
    bson_iter_t it;
    return bson_iter_init_find(&it, run, "status") && BSON_ITER_HOLDS_UTF8(&it) &&
           nem_status_parse(bson_iter_utf8(&it, NULL)) == NEM_STATUS_RUNNING;
}

int64_t nem_runrec_heartbeat_s(const bson_t *run)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, run, "heartbeat_s") && BSON_ITER_HOLDS_NUMBER(&it) && bson_iter_as_int64(&it) > 0)
        return bson_iter_as_int64(&it);
    return 30;
}

bool nem_runrec_close_lost(nem_store_t *store, const char *id, const char *why, bson_error_t *err)
{
    bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, set;
    BSON_APPEND_UTF8(&filter, "_id", id);
    BSON_APPEND_UTF8(&filter, "status", nem_status_name(NEM_STATUS_RUNNING));
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
    BSON_APPEND_UTF8(&set, "status", nem_status_name(NEM_STATUS_FAILED));
    BSON_APPEND_DATE_TIME(&set, "ended", nem_wall_ms());
    BSON_APPEND_UTF8(&set, "error", why);
    bson_append_document_end(&update, &set);
    bool ok = nem_store_update_one(store, NEM_RUNS_COLLECTION, &filter, &update, err);
    bson_destroy(&update);
    bson_destroy(&filter);
    return ok;
}

bool nem_runrec_set_owner(nem_store_t *store, const char *id, bool with_launcher, bson_error_t *err)
{
    nem_proc_t self;
    bson_t set = BSON_INITIALIZER;
    nem_proc_self(&self, with_launcher);
    nem_proc_append(&set, NEM_RUN_OWNER_KEY, &self);
    bool ok = nem_runrec_scripts(store, id, &set, err);
    bson_destroy(&set);
    return ok;
}

static bool count_attempts(const bson_t *doc, void *ud, bson_error_t *err)
{
    (void)err;
    bson_iter_t it, a;
    int64_t *n = ud;
    *n = 0;
    if (bson_iter_init_find(&it, doc, "attempts") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &a))
        while (bson_iter_next(&a))
            (*n)++;
    return true;
}

bool nem_runrec_attempt_begin(nem_store_t *store, const char *id, const char *host, int ranks, int64_t *attempt,
                              bson_error_t *err)
{
    bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, push, a;
    int64_t n = 0;
    const char *job = getenv("SLURM_JOB_ID"), *restart = getenv("SLURM_RESTART_COUNT");
    BSON_APPEND_UTF8(&filter, "_id", id);
    bson_t *proj = BCON_NEW("projection", "{", "attempts", BCON_INT32(1), "}");
    bool ok = nem_store_find(store, NEM_RUNS_COLLECTION, &filter, proj, count_attempts, &n, err);
    bson_destroy(proj);
    if (ok) {
        *attempt = n + 1;
        BSON_APPEND_DOCUMENT_BEGIN(&update, "$push", &push);
        BSON_APPEND_DOCUMENT_BEGIN(&push, "attempts", &a);
        BSON_APPEND_INT64(&a, "n", *attempt);
        if (job && *job)
            BSON_APPEND_UTF8(&a, "job", job);
        else
            BSON_APPEND_NULL(&a, "job");
        if (restart && *restart)
            BSON_APPEND_INT64(&a, "restart", strtoll(restart, NULL, 10));
        BSON_APPEND_UTF8(&a, "host", host);
        BSON_APPEND_INT32(&a, "ranks", ranks);
        BSON_APPEND_DATE_TIME(&a, "started", nem_wall_ms());
        bson_append_document_end(&push, &a);
        bson_append_document_end(&update, &push);
        ok = nem_store_update_one(store, NEM_RUNS_COLLECTION, &filter, &update, err);
    }
    bson_destroy(&update);
    bson_destroy(&filter);
    return ok;
}

bool nem_runrec_attempt_end(nem_store_t *store, const char *id, int64_t attempt, nem_status_t status,
                            bson_error_t *err)
{
    bson_t set = BSON_INITIALIZER;
    char key[64];
    snprintf(key, sizeof key, "attempts.%" PRId64 ".ended", attempt - 1);
    BSON_APPEND_DATE_TIME(&set, key, nem_wall_ms());
    snprintf(key, sizeof key, "attempts.%" PRId64 ".status", attempt - 1);
    BSON_APPEND_UTF8(&set, key, nem_status_name(status));
    bool ok = nem_runrec_scripts(store, id, &set, err);
    bson_destroy(&set);
    return ok;
}

typedef struct {
    char *id;
    size_t len;
} take_id_t;

static bool take_id(const bson_t *doc, void *ud, bson_error_t *err)
{
    (void)err;
    take_id_t *t = ud;
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, "_id") && BSON_ITER_HOLDS_UTF8(&it))
        bson_strncpy(t->id, bson_iter_utf8(&it, NULL), t->len);
    return true;
}

bool nem_runrec_of_job(nem_store_t *store, const char *job, char *id_out, size_t len, bson_error_t *err)
{
    bson_t filter = BSON_INITIALIZER, ne;
    take_id_t t = {id_out, len};
    BSON_APPEND_UTF8(&filter, "attempts.job", job);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "status", &ne);
    BSON_APPEND_UTF8(&ne, "$ne", nem_status_name(NEM_STATUS_SUCCEEDED));
    bson_append_document_end(&filter, &ne);
    bson_t *opts = BCON_NEW("sort", "{", "started", BCON_INT32(-1), "}", "limit", BCON_INT64(1), "projection", "{",
                            "_id", BCON_INT32(1), "}");
    id_out[0] = '\0';
    bool ok = nem_store_find(store, NEM_RUNS_COLLECTION, &filter, opts, take_id, &t, err);
    bson_destroy(opts);
    bson_destroy(&filter);
    return ok;
}

/* The newest run of the sweep name and index: its id when it did not succeed and has the same overrides. */
typedef struct {
    const bson_t *overrides;
    char *id;
    size_t len;
    bool succeeded, same;
} sweep_take_t;

static bool take_sweep_run(const bson_t *doc, void *ud, bson_error_t *err)
{
    sweep_take_t *t = ud;
    bson_iter_t it;
    (void)err;
    if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_UTF8(&it))
        return true;
    bson_strncpy(t->id, bson_iter_utf8(&it, NULL), t->len);
    t->succeeded = bson_iter_init_find(&it, doc, "status") && BSON_ITER_HOLDS_UTF8(&it) &&
                   strcmp(bson_iter_utf8(&it, NULL), nem_status_name(NEM_STATUS_SUCCEEDED)) == 0;
    bson_iter_t o;
    t->same = false;
    if (bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, "sweep.overrides", &o) &&
        BSON_ITER_HOLDS_DOCUMENT(&o)) {
        uint32_t len;
        const uint8_t *data;
        bson_t had;
        bson_iter_document(&o, &len, &data);
        t->same = bson_init_static(&had, data, len) && bson_equal(&had, t->overrides);
    }
    return true;
}

bool nem_runrec_of_sweep(nem_store_t *store, const bson_t *sweep, char *id_out, size_t len, bool *different,
                         bson_error_t *err)
{
    bson_t filter = BSON_INITIALIZER, overrides;
    bson_iter_t it;
    char newest[64] = "";
    id_out[0] = '\0';
    *different = false;
    if (bson_iter_init_find(&it, sweep, "name") && BSON_ITER_HOLDS_UTF8(&it))
        BSON_APPEND_UTF8(&filter, "sweep.name", bson_iter_utf8(&it, NULL));
    if (bson_iter_init_find(&it, sweep, "index") && BSON_ITER_HOLDS_NUMBER(&it))
        BSON_APPEND_INT64(&filter, "sweep.index", bson_iter_as_int64(&it));
    bson_init(&overrides);
    if (bson_iter_init_find(&it, sweep, "overrides") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
        uint32_t dlen;
        const uint8_t *data;
        bson_t o;
        bson_iter_document(&it, &dlen, &data);
        if (bson_init_static(&o, data, dlen)) {
            bson_destroy(&overrides);
            bson_copy_to(&o, &overrides);
        }
    }
    sweep_take_t t = {&overrides, newest, sizeof newest, false, false};
    bson_t *opts = BCON_NEW("sort", "{", "started", BCON_INT32(-1), "}", "limit", BCON_INT64(1), "projection", "{",
                            "_id", BCON_INT32(1), "status", BCON_INT32(1), "sweep", BCON_INT32(1), "}");
    bool ok = nem_store_find(store, NEM_RUNS_COLLECTION, &filter, opts, take_sweep_run, &t, err);
    if (ok && newest[0] && !t.succeeded) {
        if (t.same)
            bson_strncpy(id_out, newest, len);
        else
            *different = true, bson_strncpy(id_out, newest, len);
    }
    bson_destroy(opts);
    bson_destroy(&filter);
    bson_destroy(&overrides);
    return ok;
}
