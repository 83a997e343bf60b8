/* --openlineage on rank 0: the run's and each script's OpenLineage RunEvents (openlineage/openlineage.h does the
 * delivery). The run is a job of the namespace --openlineage-namespace named after --db-name; each script a job
 * "DB/STAGE[POSITION] BASENAME" whose runs name the run's as their parent. Run ids are UUIDs derived from the run id
 * (a script's from the run id and its key), so every attempt of a run, and every tool, names it alike. Datasets are
 * in the namespace of the server ("mongodb://HOST:PORT"), named "DB.COLLECTION" (a GridFS bucket "DB.BUCKET"). */
#include <string.h>

#include "log/log.h"
#include "runrec/runrec.h"
#include "stage/coordinator/coordinator-private.h"
#include "util/clock.h"

#define OL_STATS_OUT "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/" \
                     "OutputStatisticsOutputDatasetFacet"
#define OL_STATS_IN "https://openlineage.io/spec/facets/1-0-0/InputStatisticsInputDatasetFacet.json#/$defs/" \
                    "InputStatisticsInputDatasetFacet"

static const char *base_name(const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    return slash ? slash + 1 : path ? path : "?";
}

static void script_uuid(const coord_t *c, nem_stage_t stage, size_t position, char out[37])
{
    char key[64], name[160];
    nem_script_key(stage, position, key, sizeof key);
    snprintf(name, sizeof name, "%s/%s", c->run_id, key);
    nem_ol_uuid(name, out);
}

static void script_job(const coord_t *c, nem_stage_t stage, size_t position, char *out, size_t len)
{
    const nem_script_plan_t *sp = nem_run_plan_script(c->plan, stage, position);
    snprintf(out, len, "%s/%s[%zu] %s", c->plan->store.db_name, nem_stage_name(stage), position,
             base_name(sp ? sp->path : NULL));
}

/* nemesyst's own run facet: the run id as nemesyst and its registry name it, and for a script where it ran. */
static void run_facet(const coord_t *c, const nem_task_result_t *r, nem_stage_t stage, ssize_t position,
                      bson_t *facets)
{
    bson_t f;
    nem_ol_facet_begin(facets, "nemesyst", NEM_OL_FACETS_URL "#/$defs/NemesystRunFacet", &f);
    BSON_APPEND_UTF8(&f, "runId", c->run_id);
    BSON_APPEND_INT64(&f, "attempt", c->attempt);
    if (position >= 0) {
        char key[64];
        const nem_script_plan_t *sp = nem_run_plan_script(c->plan, stage, (size_t)position);
        nem_script_key(stage, (size_t)position, key, sizeof key);
        BSON_APPEND_UTF8(&f, "script", key);
        BSON_APPEND_UTF8(&f, "stage", nem_stage_name(stage));
        BSON_APPEND_INT64(&f, "position", (int64_t)position);
        if (sp && sp->path)
            BSON_APPEND_UTF8(&f, "path", sp->path);
    }
    if (r) {
        BSON_APPEND_INT32(&f, "rank", r->rank);
        BSON_APPEND_UTF8(&f, "host", r->host);
        if (r->model[0])
            BSON_APPEND_UTF8(&f, "model", r->model);
    }
    bson_append_document_end(facets, &f);
}

static void dataset_name(const coord_t *c, const char *collection, char *out, size_t len)
{
    snprintf(out, len, "%s.%s", c->plan->store.db_name, collection);
}

/* A learner group's read (the run record's "group": {count, members: [{member, shard, count, digest}]}): the
 * group's total count, and each member's shard, its filter, count and sha256 (there is no digest of the whole: each
 * member read its own shard, as the run record and the model's lineage say). */
static void group_read(const bson_t *group, bson_t *f, int64_t *total)
{
    bson_iter_t it, members, m;
    bson_t arr, sh;
    char idx[16];
    const char *k;
    uint32_t n = 0;
    *total = -1;
    if (bson_iter_init_find(&it, group, "count") && BSON_ITER_HOLDS_NUMBER(&it)) {
        *total = bson_iter_as_int64(&it);
        BSON_APPEND_INT64(f, "count", *total);
    }
    if (!bson_iter_init_find(&it, group, "members") || !BSON_ITER_HOLDS_ARRAY(&it) ||
        !bson_iter_recurse(&it, &members))
        return;
    BSON_APPEND_ARRAY_BEGIN(f, "shards", &arr);
    while (bson_iter_next(&members)) {
        if (!BSON_ITER_HOLDS_DOCUMENT(&members) || !bson_iter_recurse(&members, &m))
            continue;
        bson_uint32_to_string(n++, &k, idx, sizeof idx);
        BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &sh);
        while (bson_iter_next(&m)) {
            const char *key = bson_iter_key(&m);
            if (!strcmp(key, "member") && BSON_ITER_HOLDS_NUMBER(&m))
                BSON_APPEND_INT64(&sh, "member", bson_iter_as_int64(&m));
            else if (!strcmp(key, "count") && BSON_ITER_HOLDS_NUMBER(&m))
                BSON_APPEND_INT64(&sh, "count", bson_iter_as_int64(&m));
            else if (!strcmp(key, "digest") && BSON_ITER_HOLDS_UTF8(&m))
                BSON_APPEND_UTF8(&sh, "sha256", bson_iter_utf8(&m, NULL));
            else if (!strcmp(key, "shard") && BSON_ITER_HOLDS_UTF8(&m)) {
                bson_t *filter = bson_new_from_json((const uint8_t *)bson_iter_utf8(&m, NULL), -1, NULL);
                if (filter)
                    BSON_APPEND_DOCUMENT(&sh, "filter", filter);
                bson_destroy(filter);
            }
        }
        bson_append_document_end(&arr, &sh);
    }
    bson_append_array_end(f, &arr);
}

/* What a script reads and writes, as datasets; r (NULL at its start) adds the counts, group (a learner group's
 * lineage, NULL: none) its members' reads. */
static void script_datasets(const coord_t *c, nem_stage_t stage, size_t position, const nem_task_result_t *r,
                            const bson_t *group, bson_t *inputs, bson_t *outputs)
{
    const nem_script_plan_t *sp = nem_run_plan_script(c->plan, stage, position);
    char name[600];
    bson_t io, f;
    if (!sp)
        return;
    bool reads = stage != NEM_STAGE_CLEAN || (r && (r->consumed >= 0 || group));
    if (reads && sp->data_collection) {
        bson_init(&io);
        nem_ol_facet_begin(&io, "nemesyst_read", NEM_OL_FACETS_URL "#/$defs/NemesystReadInputDatasetFacet", &f);
        if (sp->data_pipeline_json) {
            bson_t *pipeline = bson_new_from_json((const uint8_t *)sp->data_pipeline_json, -1, NULL);
            if (pipeline) { /* a JSON array parses as a document keyed "0", "1", ...: appended as the array */
                const char *j = sp->data_pipeline_json + strspn(sp->data_pipeline_json, " \t\r\n");
                if (*j == '[')
                    BSON_APPEND_ARRAY(&f, "pipeline", pipeline);
                else
                    BSON_APPEND_DOCUMENT(&f, "pipeline", pipeline);
                bson_destroy(pipeline);
            }
        }
        int64_t count = -1;
        if (r && group) {
            group_read(group, &f, &count);
        } else if (r && r->consumed >= 0) {
            count = r->consumed;
            BSON_APPEND_INT64(&f, "count", r->consumed);
            if (r->consumed_digest[0])
                BSON_APPEND_UTF8(&f, "sha256", r->consumed_digest);
        }
        bson_append_document_end(&io, &f);
        if (count >= 0) {
            nem_ol_facet_begin(&io, "inputStatistics", OL_STATS_IN, &f);
            BSON_APPEND_INT64(&f, "rowCount", count);
            bson_append_document_end(&io, &f);
        }
        dataset_name(c, sp->data_collection, name, sizeof name);
        nem_ol_dataset(inputs, c->ol_ns, name, NULL, "inputFacets", &io);
        bson_destroy(&io);
    }
    if (stage == NEM_STAGE_LEARN && sp->input_pipeline && sp->input_bucket) { /* retraining: the parent model */
        dataset_name(c, sp->input_bucket, name, sizeof name);
        nem_ol_dataset(inputs, c->ol_ns, name, NULL, NULL, NULL);
    }
    if (stage == NEM_STAGE_PREDICT && sp->model_bucket) { /* the models it predicts with */
        dataset_name(c, sp->model_bucket, name, sizeof name);
        nem_ol_dataset(inputs, c->ol_ns, name, NULL, NULL, NULL);
    }
    if (stage != NEM_STAGE_LEARN && sp->output) {
        bson_init(&io);
        if (r) {
            nem_ol_facet_begin(&io, "outputStatistics", OL_STATS_OUT, &f);
            BSON_APPEND_INT64(&f, "rowCount", (int64_t)r->documents);
            bson_append_document_end(&io, &f);
        }
        dataset_name(c, sp->output, name, sizeof name);
        nem_ol_dataset(outputs, c->ol_ns, name, NULL, "outputFacets", &io);
        bson_destroy(&io);
    }
    if (sp->model_bucket && (stage == NEM_STAGE_LEARN || (r && r->models > 0))) { /* GridFS models */
        bson_init(&io);
        if (r) {
            nem_ol_facet_begin(&io, "outputStatistics", OL_STATS_OUT, &f);
            BSON_APPEND_INT64(&f, "rowCount", (int64_t)r->models);
            bson_append_document_end(&io, &f);
            nem_ol_facet_begin(&io, "nemesyst_models", NEM_OL_FACETS_URL "#/$defs/NemesystModelsOutputDatasetFacet",
                               &f);
            BSON_APPEND_UTF8(&f, "bucket", sp->model_bucket);
            BSON_APPEND_INT64(&f, "count", (int64_t)r->models);
            if (r->model[0])
                BSON_APPEND_UTF8(&f, "first", r->model);
            bson_append_document_end(&io, &f);
        }
        dataset_name(c, sp->model_bucket, name, sizeof name);
        nem_ol_dataset(outputs, c->ol_ns, name, NULL, "outputFacets", &io);
        bson_destroy(&io);
    }
}

static void emit_script(coord_t *c, const char *type, nem_stage_t stage, size_t position,
                        const nem_task_result_t *r, const bson_t *group, const char *error)
{
    char uuid[37], job[512];
    bson_t inputs = BSON_INITIALIZER, outputs = BSON_INITIALIZER, facets = BSON_INITIALIZER, ev;
    script_uuid(c, stage, position, uuid);
    script_job(c, stage, position, job, sizeof job);
    script_datasets(c, stage, position, r, group, &inputs, &outputs);
    run_facet(c, r, stage, (ssize_t)position, &facets);
    nem_ol_event_t e = {.type = type, .time_ms = r ? r->ended_ms : nem_wall_ms(), .run_uuid = uuid,
                        .job_ns = c->plan->openlineage.ns, .job_name = job, .job_type = "TASK",
                        .parent_uuid = c->ol_run_uuid, .parent_job = c->plan->store.db_name, .error = error,
                        .run_facets = &facets, .inputs = &inputs, .outputs = &outputs};
    nem_ol_event(&e, &ev);
    nem_ol_emit(c->ol, &ev);
    bson_destroy(&ev);
    bson_destroy(&facets);
    bson_destroy(&inputs);
    bson_destroy(&outputs);
}

static void emit_run(coord_t *c, const char *type, const char *error)
{
    bson_t facets = BSON_INITIALIZER, ev;
    run_facet(c, NULL, NEM_STAGE_CLEAN, -1, &facets);
    nem_ol_event_t e = {.type = type, .time_ms = nem_wall_ms(), .run_uuid = c->ol_run_uuid,
                        .job_ns = c->plan->openlineage.ns, .job_name = c->plan->store.db_name, .job_type = "JOB",
                        .error = error, .run_facets = &facets};
    nem_ol_event(&e, &ev);
    nem_ol_emit(c->ol, &ev);
    bson_destroy(&ev);
    bson_destroy(&facets);
}

void nem_coord_ol_run_start(coord_t *c)
{
    bson_error_t err = {0};
    if (!c->plan->openlineage.url)
        return;
    if (!(c->ol = nem_ol_new(&c->plan->openlineage, &err))) {
        NEM_WARN("--openlineage: no events for this run: %s", err.message);
        return;
    }
    snprintf(c->ol_ns, sizeof c->ol_ns, "mongodb://%s:%d", c->plan->store.host, c->plan->store.port);
    nem_ol_uuid(c->run_id, c->ol_run_uuid);
    bson_init(&c->ol_open);
    c->ol_open_init = true;
    emit_run(c, "START", NULL);
}

void nem_coord_ol_script_start(coord_t *c, nem_stage_t stage, size_t position)
{
    char key[64];
    if (!c->ol)
        return;
    nem_script_key(stage, position, key, sizeof key);
    bson_t entry = BSON_INITIALIZER;
    BSON_APPEND_INT32(&entry, "stage", (int32_t)stage);
    BSON_APPEND_INT64(&entry, "position", (int64_t)position);
    BSON_APPEND_BOOL(&entry, "open", true);
    BSON_APPEND_DOCUMENT(&c->ol_open, key, &entry);
    bson_destroy(&entry);
    emit_script(c, "START", stage, position, NULL, NULL, NULL);
}

/* A script's end: COMPLETE, FAIL (with its error), or ABORT when it failed because the run was interrupted (the
 * spec's "stopped abnormally"; the same as a script still running at the run's end gets). One that never got a
 * START (failed before it ran) gets its START first. extra: the run record's additions to its entry (a learner
 * group's {"group": ...}), NULL: none. */
void nem_coord_ol_script_end(coord_t *c, const nem_task_result_t *r, const bson_t *extra)
{
    char key[64];
    bson_iter_t it, child;
    if (!c->ol)
        return;
    nem_script_key(r->stage, r->position, key, sizeof key);
    bool open = false;
    if (bson_iter_init_find(&it, &c->ol_open, key) && BSON_ITER_HOLDS_DOCUMENT(&it) &&
        bson_iter_recurse(&it, &child) && bson_iter_find(&child, "open")) {
        open = bson_iter_as_bool(&child);
        bson_iter_overwrite_bool(&child, false);
    }
    if (!open && !bson_iter_init_find(&it, &c->ol_open, key))
        emit_script(c, "START", r->stage, r->position, NULL, NULL, NULL);
    bson_t group;
    const uint8_t *data = NULL;
    uint32_t len = 0;
    if (extra && bson_iter_init_find(&it, extra, "group") && BSON_ITER_HOLDS_DOCUMENT(&it))
        bson_iter_document(&it, &len, &data);
    bool grouped = data && bson_init_static(&group, data, len);
    const char *type = r->ok ? "COMPLETE" : r->interrupted ? "ABORT" : "FAIL";
    emit_script(c, type, r->stage, r->position, r, grouped ? &group : NULL, strcmp(type, "FAIL") ? NULL : r->error);
}

/* The run's end: ABORT for every script started and never ended, the run's own event, the queue drained (bounded by
 * --openlineage-timeout) and the counts in the run record. */
void nem_coord_ol_run_end(coord_t *c, nem_status_t status, const char *error)
{
    bson_iter_t it, child;
    if (!c->ol)
        return;
    if (bson_iter_init(&it, &c->ol_open))
        while (bson_iter_next(&it)) {
            int64_t stage = -1, position = -1;
            bool open = false;
            if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &child))
                continue;
            while (bson_iter_next(&child)) {
                if (strcmp(bson_iter_key(&child), "stage") == 0)
                    stage = bson_iter_as_int64(&child);
                else if (strcmp(bson_iter_key(&child), "position") == 0)
                    position = bson_iter_as_int64(&child);
                else if (strcmp(bson_iter_key(&child), "open") == 0)
                    open = bson_iter_as_bool(&child);
            }
            if (open && stage >= 0 && stage < NEM_STAGE__COUNT && position >= 0)
                emit_script(c, "ABORT", (nem_stage_t)stage, (size_t)position, NULL, NULL, NULL);
        }
    emit_run(c, status == NEM_STATUS_SUCCEEDED ? "COMPLETE" : status == NEM_STATUS_INTERRUPTED ? "ABORT" : "FAIL",
             status == NEM_STATUS_FAILED ? error : NULL);
    nem_ol_stats_t st = {0};
    nem_ol_finish(c->ol, &st);
    char pub[1024];
    nem_ol_url_public(c->plan->openlineage.url, pub, sizeof pub);
    bson_t fields = BSON_INITIALIZER, ol;
    bson_error_t err;
    BSON_APPEND_DOCUMENT_BEGIN(&fields, "openlineage", &ol);
    BSON_APPEND_UTF8(&ol, "url", pub);
    BSON_APPEND_UTF8(&ol, "run_uuid", c->ol_run_uuid);
    BSON_APPEND_INT64(&ol, "sent", (int64_t)st.sent);
    BSON_APPEND_INT64(&ol, "dropped", (int64_t)st.dropped);
    bson_append_document_end(&fields, &ol);
    if (c->attempt >= 1) { /* and in this attempt's entry, so a resumed run keeps every attempt's counts */
        char key[64];
        snprintf(key, sizeof key, "attempts.%" PRId64 ".openlineage", c->attempt - 1);
        BSON_APPEND_DOCUMENT_BEGIN(&fields, key, &ol);
        BSON_APPEND_INT64(&ol, "sent", (int64_t)st.sent);
        BSON_APPEND_INT64(&ol, "dropped", (int64_t)st.dropped);
        bson_append_document_end(&fields, &ol);
    }
    if (!nem_runrec_scripts(c->store, c->run_id, &fields, &err))
        NEM_WARN("run record %s: the OpenLineage counts were not recorded: %s", c->run_id, err.message);
    bson_destroy(&fields);
    /* one warning per run for what was dropped: the sender's, or this one */
    if (st.dropped && !st.warned)
        NEM_WARN("--openlineage %s: %" PRIu64 " event(s) sent, %" PRIu64 " dropped (%s); the run's data is not "
                 "affected", pub, st.sent, st.dropped, st.last_error[0] ? st.last_error : "not delivered in time");
    else
        NEM_INFO("--openlineage %s: %" PRIu64 " event(s) sent, %" PRIu64 " dropped", pub, st.sent, st.dropped);
}

void nem_coord_ol_destroy(coord_t *c)
{
    nem_ol_destroy(c->ol);
    c->ol = NULL;
    if (c->ol_open_init)
        bson_destroy(&c->ol_open);
    c->ol_open_init = false;
}
