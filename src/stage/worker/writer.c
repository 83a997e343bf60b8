/* Documents and models from a script into the database, with provenance. */
#include "stage/worker/writer.h"
#include "stage/output.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log/log.h"
#include "provenance/code.h"
#include "provenance/provenance.h"
#include "store/ckpt.h"
#include "store/storable.h"

struct nem_writer {
    nem_writer_opts_t o;
    char sha256[65];
    const char *collection;     /* documents go here */
    const char *bucket;         /* learn: models go here */
    nem_bulk_t *bulk;
    bool provenance;
    bson_t consumed;            /* array of consumed-data records (learners) */
    uint32_t n_consumed;
    bson_value_t model_used;    /* predictors: the last model the script loaded */
    bool has_model_used;
    char *model_used_bucket;
    nem_stamp_t stamp;          /* documents' with provenance; metrics' always */
    nem_bulk_t *metrics;        /* NEM_METRICS_COLLECTION, made with the first metric */
    uint64_t n_metrics;
    /* each metric's last value, per model it was measured on (nem_writer_last_metrics, the models' evaluation) */
    struct last_metric {
        nem_result_metric_t m;
        bson_value_t model;
        char *bucket;
    } last[NEM_RESULT_METRICS];
    size_t n_last;
    bson_t model_ids;           /* array of GridFS ids uploaded (for rollback) */
    uint32_t n_models;
    uint64_t docs;
    uint64_t dropped;           /* models of a group member other than 0, not stored */
    int ferretdb;               /* FerretDB 1.x behind the store: -1 not asked yet (storable_here) */
    bson_t code;                /* the script's latest $nemesyst_code (what a Python script imported), or empty */
    bool warned_empty;          /* a learner read a cursor to its end and found no document: said once */
    bson_t host_code;           /* what the host found (provenance/code.h), with the first model */
    bool host_code_done;
};

nem_writer_t *nem_writer_new(const nem_writer_opts_t *opts, bson_error_t *err)
{
    nem_writer_t *w = BSON_ALIGNED_ALLOC0(nem_writer_t); /* it embeds bson_t (128-byte aligned) */
    w->o = *opts;
    if (!nem_sha256_file(opts->script->path, w->sha256, err)) {
        bson_free(w);
        return NULL;
    }
    w->collection = opts->script->output;
    w->bucket = opts->script->model_bucket;
    w->provenance = opts->policy->provenance;
    nem_stamp_init(&w->stamp, w->o.run_id, w->o.stage, w->o.position, w->o.script->path, w->o.legacy_stamp);
    bson_init(&w->consumed);
    bson_init(&w->model_ids);
    bson_init(&w->code);
    bson_init(&w->host_code);
    w->ferretdb = -1;
    return w;
}

/* The bulk writer is made with the first document: a script that writes none costs no connection or thread. */
static bool have_bulk(nem_writer_t *w, bson_error_t *err)
{
    if (!w->bulk && w->provenance) /* by its stamp rollback and --resume delete, and the registry counts */
        nem_provenance_index_data(w->o.store, w->collection, w->o.stage, w->o.legacy_stamp);
    if (!w->bulk)
        w->bulk = w->o.async ? nem_bulk_new_async(w->o.async, w->collection, 0, 0, err)
                             : nem_bulk_new(w->o.store, w->collection, 0, 0);
    return w->bulk != NULL;
}

/* Whether what the script stores must be checked against FerretDB 1.x's limits (store/storable.h): asked of the
 * server with the script's first item that goes to the database, then remembered. */
static bool storable_here(nem_writer_t *w)
{
    if (w->ferretdb < 0)
        w->ferretdb = nem_store_ferretdb_limits(w->o.store);
    return w->ferretdb;
}

/* A value the server cannot store fails the script as bad output does (runner-items.c), before it is sent: FerretDB
 * would drop the connection on some of them and the script's error would not say why. what: "document 3". */
static bool unstorable(nem_writer_t *w, const char *what, const char *prefix, const nem_unstorable_t *why,
                       bson_error_t *err)
{
    bson_set_error(err, NEM_ERROR_RUNNER, NEM_RUNNER_EOUTPUT,
                   "%s script #%zu '%s': %s: field '%s%s' %s, which the FerretDB server cannot store: %s",
                   nem_stage_name(w->o.stage), w->o.position, w->o.script->path, what, prefix, why->path, why->what,
                   why->fix);
    return false;
}

static bool write_document(nem_writer_t *w, nem_item_t *item, bson_error_t *err)
{
    nem_unstorable_t why;
    if (storable_here(w) && !nem_storable_ferretdb(&item->doc, &why)) {
        char what[48];
        bson_snprintf(what, sizeof what, "document %" PRIu64, w->docs + 1);
        return unstorable(w, what, "", &why, err);
    }
    if (!have_bulk(w, err))
        return false;
    if (w->provenance)
        nem_provenance_stamp(&item->doc, &w->stamp, w->has_model_used ? &w->model_used : NULL);
    if (!nem_bulk_add(w->bulk, &item->doc, err))
        return false;
    w->docs++;
    return true;
}

/* Lineage: everything needed to walk from the model back to its data and run. */
/* What the script ran beyond its own file (provenance/code.h): the host's facts, found once, then the script's
 * own $nemesyst_code. */
static void append_code(nem_writer_t *w, bson_t *prov)
{
    bson_t code;
    bson_iter_t it;
    if (!w->host_code_done) {
        nem_code_host_facts(w->o.script->path, nem_script_kind(w->o.script->path) == NEM_SCRIPT_EXEC, &w->host_code);
        w->host_code_done = true;
    }
    BSON_APPEND_DOCUMENT_BEGIN(prov, "code", &code);
    bson_concat(&code, &w->host_code);
    if (bson_iter_init(&it, &w->code))
        while (bson_iter_next(&it))
            if (!bson_has_field(&w->host_code, bson_iter_key(&it)))
                bson_append_iter(&code, NULL, 0, &it);
    bson_append_document_end(prov, &code);
}

/* file_sha256: the model file's own sha256, so nemesyst-registry get can tell a changed or damaged copy. */
static void model_metadata(nem_writer_t *w, const bson_t *user, const char *file_sha256, bson_t *out)
{
    bson_t prov;
    bson_init(out);
    bson_copy_to_excluding_noinit(user, out, NEM_PROVENANCE_FIELD, NULL);
    BSON_APPEND_DOCUMENT_BEGIN(out, NEM_PROVENANCE_FIELD, &prov);
    BSON_APPEND_UTF8(&prov, "run", w->o.run_id);
    BSON_APPEND_UTF8(&prov, "stage", nem_stage_name(w->o.stage));
    BSON_APPEND_INT64(&prov, "position", (int64_t)w->o.position);
    /* a relative path is relative to where nemesyst ran, which a later verify need not share: kept absolute */
    char *abs = w->o.script->path[0] == '/' ? NULL : realpath(w->o.script->path, NULL);
    BSON_APPEND_UTF8(&prov, "script", abs ? abs : w->o.script->path);
    free(abs);
    BSON_APPEND_UTF8(&prov, "script_sha256", w->sha256);
    BSON_APPEND_UTF8(&prov, "sha256", file_sha256);
    BSON_APPEND_DOCUMENT(&prov, "options", w->o.options);
    if (w->o.script->data_collection)
        BSON_APPEND_UTF8(&prov, "data_collection", w->o.script->data_collection);
    /* As JSON text: a stored document may not hold the pipeline's '$' keys. */
    if (w->o.script->data_pipeline_json)
        BSON_APPEND_UTF8(&prov, "data_pipeline", w->o.script->data_pipeline_json);
    BSON_APPEND_ARRAY(&prov, "consumed", &w->consumed);
    if (w->o.parent) {
        bson_t parent;
        BSON_APPEND_DOCUMENT_BEGIN(&prov, "parent", &parent);
        BSON_APPEND_UTF8(&parent, "bucket", w->o.script->input_bucket);
        BSON_APPEND_VALUE(&parent, "id", w->o.parent);
        bson_append_document_end(&prov, &parent);
    } else {
        BSON_APPEND_NULL(&prov, "parent");
    }
    BSON_APPEND_UTF8(&prov, "host", w->o.host);
    BSON_APPEND_INT32(&prov, "rank", w->o.rank);
    BSON_APPEND_INT64(&prov, "attempt", w->o.attempt > 0 ? w->o.attempt : 1); /* the run's attempts: its record */
    append_code(w, &prov);
    BSON_APPEND_DATE_TIME(&prov, "stored", nem_wall_ms());
    bson_append_document_end(out, &prov);
}

static bool write_model(nem_writer_t *w, nem_item_t *item, bson_error_t *err)
{
    bson_t meta;
    bson_value_t id;
    char filename[256], key[16];
    const char *k;
    const char *bucket = w->bucket;
    bson_t full;
    nem_unstorable_t why;
    bool ok = true;
    bson_init(&meta);
    if (storable_here(w) && !nem_storable_ferretdb(&item->doc, &why)) {
        char what[48];
        bson_snprintf(what, sizeof what, "model %u", w->n_models + 1);
        ok = unstorable(w, what, "metadata.", &why, err);
    }
    snprintf(filename, sizeof filename, "%s-%s-%zu-%u", w->o.run_id, nem_stage_name(w->o.stage),
             w->o.position, w->n_models);
    char file_sha256[65];
    ok = ok && nem_sha256_file(item->path, file_sha256, err);
    if (ok) {
        /* Pipelines of many MiB appear several times in the lineage (options, data_pipeline, consumed): stored
         * once by reference, the metadata stays small whatever they are. */
        bson_destroy(&meta);
        model_metadata(w, &item->doc, file_sha256, &full);
        ok = nem_lineage_compact(w->o.store, &full, NEM_PROVENANCE_FIELD, &meta, err);
        bson_destroy(&full);
    }
    if (ok && w->n_models == 0) /* by run and by parent rollback and the registry find models */
        nem_provenance_index_models(w->o.store, bucket);
    ok = ok && nem_gridfs_upload_file(w->o.store, bucket, filename, item->path, &meta, &id, err);
    bson_destroy(&meta);
    if (!ok && item->path_is_temp) {
        /* The model is what hours of training made: a failed upload must not delete it with the work directory. */
        const char *tmp = getenv("TMPDIR");
        char *keep = bson_strdup_printf("%s/nemesyst-unsaved-%s", tmp && *tmp ? tmp : "/tmp", filename);
        size_t len = strlen(err->message);
        if (rename(item->path, keep) == 0)
            bson_snprintf(err->message + len, sizeof err->message - len, " (the model file is kept as %s)", keep);
        bson_free(keep);
    } else if (item->path_is_temp) {
        unlink(item->path);
    }
    if (!ok)
        return false;
    bson_uint32_to_string(w->n_models++, &k, key, sizeof key);
    BSON_APPEND_VALUE(&w->model_ids, k, &id);
    bson_value_destroy(&id);
    return true;
}

static void note_consumed(nem_writer_t *w, nem_item_t *item)
{
    bson_iter_t it;
    char key[16];
    const char *k;
    if (bson_iter_init_find(&it, &item->doc, "model")) {
        /* A predictor loaded a model: its later predictions reference it. */
        bson_iter_t id;
        bson_iter_t bucket;
        if (BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &id) && bson_iter_find(&id, "id")) {
            if (w->has_model_used)
                bson_value_destroy(&w->model_used);
            bson_value_copy(bson_iter_value(&id), &w->model_used);
            w->has_model_used = true;
            bson_free(w->model_used_bucket);
            w->model_used_bucket = bson_iter_recurse(&it, &bucket) && bson_iter_find(&bucket, "bucket") &&
                                           BSON_ITER_HOLDS_UTF8(&bucket)
                                       ? bson_strdup(bson_iter_utf8(&bucket, NULL))
                                       : NULL;
        }
        return;
    }
    /* The pipeline as JSON text, as data_pipeline: a stored document may not hold its '$' keys. */
    bson_t rec;
    bson_uint32_to_string(w->n_consumed++, &k, key, sizeof key);
    BSON_APPEND_DOCUMENT_BEGIN(&w->consumed, k, &rec);
    bson_copy_to_excluding_noinit(&item->doc, &rec, "pipeline", NULL);
    if (bson_iter_init_find(&it, &item->doc, "pipeline") && BSON_ITER_HOLDS_ARRAY(&it)) {
        const uint8_t *data;
        uint32_t len;
        bson_t arr;
        bson_iter_array(&it, &len, &data);
        if (bson_init_static(&arr, data, len)) {
            char *json = nem_provenance_pipeline_json(&arr);
            BSON_APPEND_UTF8(&rec, "pipeline", json);
            bson_free(json);
        }
    }
    bson_append_document_end(&w->consumed, &rec);
    /* A learner whose pipeline matched nothing trains on nothing and still succeeds: say so in the log. */
    bson_iter_t c;
    bool complete = !bson_iter_init_find(&c, &item->doc, "complete") || bson_iter_as_bool(&c);
    if (w->o.stage == NEM_STAGE_LEARN && !w->warned_empty && complete &&
        bson_iter_init_find(&c, &item->doc, "count") && BSON_ITER_HOLDS_NUMBER(&c) && bson_iter_as_int64(&c) == 0) {
        const char *coll = bson_iter_init_find(&c, &item->doc, "collection") && BSON_ITER_HOLDS_UTF8(&c)
                               ? bson_iter_utf8(&c, NULL) : "?";
        w->warned_empty = true;
        if (w->o.member >= 0)
            NEM_WARN("learn[%zu] member %d %s: its pipeline read no documents from its shard of collection '%s'",
                     w->o.position, w->o.member, w->o.script->path, coll);
        else
            NEM_WARN("learn[%zu] %s: its pipeline read no documents from collection '%s': is --dl-data-collection "
                     "right, and did a cleaner write there?", w->o.position, w->o.script->path, coll);
    }
}

static const char *metric_name(const bson_t *metric)
{
    bson_iter_t it;
    return bson_iter_init_find(&it, metric, "name") && BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : "";
}

static bool same_value(const bson_value_t *a, const bson_value_t *b)
{
    return a->value_type == b->value_type && a->value_type == BSON_TYPE_OID &&
           bson_oid_equal(&a->value.v_oid, &b->value.v_oid);
}

/* A metric's last value, per model it was measured on: the first NEM_RESULT_METRICS (name, model) pairs. */
static void note_last(nem_writer_t *w, const bson_t *metric)
{
    const char *name = metric_name(metric);
    bson_iter_t it;
    size_t i = 0;
    bool with_model = w->has_model_used && w->model_used_bucket && w->model_used.value_type == BSON_TYPE_OID;
    for (; i < w->n_last; i++)
        if (strcmp(w->last[i].m.name, name) == 0 &&
            (with_model ? w->last[i].bucket && same_value(&w->last[i].model, &w->model_used) : !w->last[i].bucket))
            break;
    if (i == w->n_last) {
        if (w->n_last == NEM_RESULT_METRICS)
            return;
        struct last_metric *l = &w->last[w->n_last++];
        memset(l, 0, sizeof *l);
        bson_strncpy(l->m.name, name, sizeof l->m.name);
        if (with_model) {
            bson_value_copy(&w->model_used, &l->model);
            l->bucket = bson_strdup(w->model_used_bucket);
            bson_oid_to_string(&w->model_used.value.v_oid, l->m.model);
        }
    }
    if (bson_iter_init_find(&it, metric, "value"))
        w->last[i].m.value = bson_iter_as_double(&it);
    if (bson_iter_init_find(&it, metric, "step"))
        w->last[i].m.step = bson_iter_as_int64(&it);
}

/* A metric: stored in bulk (a batch a round trip), so one a training batch costs the script nothing it waits on. */
static bool write_metric(nem_writer_t *w, nem_item_t *item, bson_error_t *err)
{
    char key[64];
    bson_iter_t it;
    if (storable_here(w) && bson_iter_init_find(&it, &item->doc, "value") && BSON_ITER_HOLDS_DOUBLE(&it) &&
        !isfinite(bson_iter_double(&it))) {
        double v = bson_iter_double(&it);
        bson_set_error(err, NEM_ERROR_RUNNER, NEM_RUNNER_EOUTPUT,
                       "%s script #%zu '%s': metric '%s' at step %" PRId64 " is %s, which the FerretDB server cannot "
                       "store: log a finite value, or use MongoDB (--db-engine mongod), which stores it",
                       nem_stage_name(w->o.stage), w->o.position, w->o.script->path, metric_name(&item->doc),
                       bson_iter_init_find(&it, &item->doc, "step") ? bson_iter_as_int64(&it) : 0,
                       isnan(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity");
        return false;
    }
    bson_t doc = BSON_INITIALIZER;
    nem_script_key(w->o.stage, w->o.position, key, sizeof key);
    BSON_APPEND_UTF8(&doc, "run", w->o.run_id);
    BSON_APPEND_UTF8(&doc, "script", key);
    BSON_APPEND_UTF8(&doc, "stage", nem_stage_name(w->o.stage));
    BSON_APPEND_INT64(&doc, "position", (int64_t)w->o.position);
    bson_concat(&doc, &item->doc);
    /* measured on the model the script loaded (a predictor's test accuracy): the metric references it */
    if (w->has_model_used)
        BSON_APPEND_VALUE(&doc, "model", &w->model_used);
    nem_provenance_stamp(&doc, &w->stamp, NULL);
    note_last(w, &item->doc);
    if (!w->metrics) {
        nem_provenance_index_metrics(w->o.store);
        w->metrics = nem_bulk_new(w->o.store, NEM_METRICS_COLLECTION, 0, 0);
    }
    bool ok = nem_bulk_add(w->metrics, &doc, err);
    bson_destroy(&doc);
    w->n_metrics += ok;
    return ok;
}

/* An executable's checkpoint: stored (and the older ones beyond --dl-checkpoint-keep pruned) before its next line
 * is read, so the script's next save never races this one. */
static bool write_checkpoint(nem_writer_t *w, nem_item_t *item, bson_error_t *err)
{
    char key[64];
    bson_iter_t it;
    bson_t meta = BSON_INITIALIZER;
    int64_t step = 0;
    if (bson_iter_init_find(&it, &item->doc, "step"))
        step = bson_iter_as_int64(&it);
    if (bson_iter_init_find(&it, &item->doc, "metadata") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
        const uint8_t *data;
        uint32_t len;
        bson_iter_document(&it, &len, &data);
        bson_destroy(&meta);
        if (!bson_init_static(&meta, data, len))
            bson_init(&meta);
    }
    nem_script_key(w->o.stage, w->o.position, key, sizeof key);
    nem_provenance_index_checkpoints(w->o.store);
    nem_ckpt_info_t info = {w->o.run_id, key, w->o.attempt > 0 ? w->o.attempt : 1, step, w->o.host, w->o.rank, &meta,
                            false};
    int64_t keep = w->o.script->checkpoint_keep > 0 ? w->o.script->checkpoint_keep : NEM_CHECKPOINT_KEEP_DEFAULT;
    /* the metrics before it are stored first: a checkpoint says their steps are done, and a resumed run never logs
     * them again */
    bool ok = (!w->metrics || nem_bulk_flush(w->metrics, err)) && nem_ckpt_save_file(w->o.store, &info, item->path,
                                                                                     keep, NULL, err);
    if (ok)
        NEM_DEBUG("%s[%zu]: checkpoint at step %" PRId64 " stored", nem_stage_name(w->o.stage), w->o.position, step);
    bson_destroy(&meta);
    return ok;
}

/* A checkpoint the script stored itself, pending: committed once everything before it is stored (store/ckpt.h). */
static bool commit_checkpoint(nem_writer_t *w, nem_item_t *item, bson_error_t *err)
{
    char key[64];
    bson_iter_t it;
    int64_t step = -1;
    if (!bson_iter_init_find(&it, &item->doc, "id"))
        return true;
    const bson_value_t *id = bson_iter_value(&it);
    if (bson_iter_init_find(&it, &item->doc, "step"))
        step = bson_iter_as_int64(&it);
    nem_script_key(w->o.stage, w->o.position, key, sizeof key);
    nem_provenance_index_checkpoints(w->o.store);
    int64_t keep = w->o.script->checkpoint_keep > 0 ? w->o.script->checkpoint_keep : NEM_CHECKPOINT_KEEP_DEFAULT;
    bool ok = nem_writer_flush(w, err) &&
              nem_ckpt_commit(w->o.store, w->o.run_id, key, id, w->o.attempt > 0 ? w->o.attempt : 1, keep, err);
    if (ok)
        NEM_DEBUG("%s[%zu]: checkpoint at step %" PRId64 " committed", nem_stage_name(w->o.stage), w->o.position,
                  step);
    return ok;
}

bool nem_writer_item(void *ud, nem_item_t *item, bson_error_t *err)
{
    nem_writer_t *w = ud;
    bool ok = true;
    switch (item->kind) {
    case NEM_ITEM_DOC: ok = write_document(w, item, err); break;
    case NEM_ITEM_MODEL:
        if (w->o.member > 0) { /* a learner group's model is member 0's: the others' copies are the same model */
            if (!w->dropped++)
                NEM_DEBUG("learn[%zu] member %d: its model is not stored (member 0 stores the group's)",
                          w->o.position, w->o.member);
            if (item->path_is_temp && item->path)
                unlink(item->path);
            break;
        }
        ok = write_model(w, item, err);
        break;
    case NEM_ITEM_CONSUMED: note_consumed(w, item); break;
    case NEM_ITEM_METRIC: /* a learner group's history is member 0's (the others' would repeat it per step) */
        ok = w->o.member > 0 || write_metric(w, item, err);
        break;
    case NEM_ITEM_CODE:
        bson_destroy(&w->code);
        bson_copy_to(&item->doc, &w->code);
        break;
    case NEM_ITEM_CHECKPOINT: /* a learner group's state is member 0's, as its model is */
        ok = w->o.member > 0 || write_checkpoint(w, item, err);
        break;
    case NEM_ITEM_CHECKPOINT_COMMIT:
        ok = w->o.member > 0 || commit_checkpoint(w, item, err);
        break;
    }
    /* The callback owns the item only when it accepts it: on false the runner clears it (runner.h). */
    if (ok)
        nem_item_clear(item);
    return ok;
}

/* A model's evaluation: what a script measured on a model it loaded (a predictor's test accuracy) goes into the
 * model's metadata, metadata.evaluation.NAME = {value, step, run, script}, beside the lineage. */
static bool evaluations(nem_writer_t *w, bson_error_t *err)
{
    char key[64], files[300], field[200];
    nem_script_key(w->o.stage, w->o.position, key, sizeof key);
    for (size_t i = 0; i < w->n_last; i++) {
        struct last_metric *l = &w->last[i];
        if (!l->bucket)
            continue;
        bson_t filter = BSON_INITIALIZER, change = BSON_INITIALIZER, set, e;
        BSON_APPEND_VALUE(&filter, "_id", &l->model);
        snprintf(files, sizeof files, "%s.files", l->bucket);
        snprintf(field, sizeof field, "metadata.evaluation.%s", l->m.name);
        for (char *c = field + strlen("metadata.evaluation."); *c; c++)
            if (*c == '.' || *c == '$')
                *c = '_'; /* a metric name is one field, never a path or an operator */
        BSON_APPEND_DOCUMENT_BEGIN(&change, "$set", &set);
        BSON_APPEND_DOCUMENT_BEGIN(&set, field, &e);
        BSON_APPEND_DOUBLE(&e, "value", l->m.value);
        BSON_APPEND_INT64(&e, "step", l->m.step);
        BSON_APPEND_UTF8(&e, "run", w->o.run_id);
        BSON_APPEND_UTF8(&e, "script", key);
        bson_append_document_end(&set, &e);
        bson_append_document_end(&change, &set);
        bool ok = nem_store_update_one(w->o.store, files, &filter, &change, err);
        bson_destroy(&filter);
        bson_destroy(&change);
        if (!ok)
            return false;
    }
    return true;
}

bool nem_writer_flush(nem_writer_t *w, bson_error_t *err)
{
    return (!w->bulk || nem_bulk_flush(w->bulk, err)) && (!w->metrics || nem_bulk_flush(w->metrics, err));
}

/* A learner that succeeded, its model stored: its checkpoints have served (--dl-checkpoint-keep-final keeps them).
 * A learner group's stay until the group's end is known (a member that fails later rolls the group back). */
static bool drop_checkpoints(nem_writer_t *w, bson_error_t *err)
{
    (void)err; /* the model is stored: a checkpoint left behind is space, not a wrong result */
    if (w->o.member < 0 && !w->o.policy->keep_checkpoints)
        nem_output_drop_checkpoints(w->o.store, w->o.run_id, w->o.stage, w->o.position);
    return true;
}

bool nem_writer_finish(nem_writer_t *w, bson_error_t *err)
{
    return nem_writer_flush(w, err) && evaluations(w, err) && drop_checkpoints(w, err);
}

size_t nem_writer_last_metrics(const nem_writer_t *w, nem_result_metric_t *out, size_t max)
{
    size_t n = 0;
    for (; n < w->n_last && n < max; n++)
        out[n] = w->last[n].m;
    return n;
}

bool nem_writer_can_rollback(const nem_writer_t *w, bson_error_t *err)
{
    if (!w->provenance && w->docs > 0) {
        bson_set_error(err, NEM_ERROR_PROVENANCE, NEM_PROVENANCE_ENOSTAMP,
                       "cannot remove the %" PRIu64 " documents of a failed script with --provenance=false", w->docs);
        return false;
    }
    return true;
}

bool nem_writer_rollback(nem_writer_t *w, nem_store_t *store, bson_error_t *err)
{
    return nem_writer_can_rollback(w, err) &&
           nem_output_purge(store ? store : w->o.store, w->o.script, w->o.run_id, w->o.stage, w->o.position,
                            w->o.legacy_stamp, err);
}

uint64_t nem_writer_documents(const nem_writer_t *w)
{
    return w->docs;
}

int64_t nem_writer_consumed(const nem_writer_t *w, const char *collection, char digest[65])
{
    bson_iter_t it, rec;
    int64_t count = -1;
    digest[0] = '\0';
    if (!bson_iter_init(&it, &w->consumed))
        return -1;
    while (bson_iter_next(&it)) {
        const char *coll = NULL, *dig = NULL;
        int64_t n = -1;
        bool complete = true;
        if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &rec))
            continue;
        while (bson_iter_next(&rec)) {
            const char *k = bson_iter_key(&rec);
            if (!strcmp(k, "collection") && BSON_ITER_HOLDS_UTF8(&rec))
                coll = bson_iter_utf8(&rec, NULL);
            else if (!strcmp(k, "digest") && BSON_ITER_HOLDS_UTF8(&rec))
                dig = bson_iter_utf8(&rec, NULL);
            else if (!strcmp(k, "count") && BSON_ITER_HOLDS_NUMBER(&rec))
                n = bson_iter_as_int64(&rec);
            else if (!strcmp(k, "complete"))
                complete = bson_iter_as_bool(&rec);
        }
        if (coll && dig && n >= 0 && complete && (!collection || !strcmp(coll, collection))) {
            count = n;
            bson_strncpy(digest, dig, 65);
        }
    }
    return count;
}

bool nem_writer_first_model(const nem_writer_t *w, char hex[25])
{
    bson_iter_t it;
    hex[0] = '\0';
    if (!bson_iter_init_find(&it, &w->model_ids, "0") || !BSON_ITER_HOLDS_OID(&it))
        return false;
    bson_oid_to_string(bson_iter_oid(&it), hex);
    return true;
}

uint64_t nem_writer_models(const nem_writer_t *w)
{
    return w->n_models;
}

void nem_writer_destroy(nem_writer_t *w)
{
    if (!w)
        return;
    nem_bulk_destroy(w->bulk);
    nem_bulk_destroy(w->metrics);
    bson_destroy(&w->consumed);
    bson_destroy(&w->model_ids);
    bson_destroy(&w->code);
    bson_destroy(&w->host_code);
    if (w->has_model_used)
        bson_value_destroy(&w->model_used);
    bson_free(w->model_used_bucket);
    for (size_t i = 0; i < w->n_last; i++)
        if (w->last[i].bucket) {
            bson_value_destroy(&w->last[i].model);
            bson_free(w->last[i].bucket);
        }
    bson_free(w);
}
