/* Documents and models from a script into the database, with provenance. */
#include "stage/writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log/log.h"
#include "provenance/provenance.h"

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
    bson_t model_ids;           /* array of GridFS ids uploaded (for rollback) */
    uint32_t n_models;
    uint64_t docs;
};

nem_writer_t *nem_writer_new(const nem_writer_opts_t *opts, bson_error_t *err)
{
    nem_writer_t *w = BSON_ALIGNED_ALLOC0(nem_writer_t); /* it embeds bson_t (128-byte aligned) */
    w->o = *opts;
    if (!nem_sha256_file(opts->script, w->sha256, err)) {
        bson_free(w);
        return NULL;
    }
    nem_opt_id_t out = nem_stage_info(opts->stage)->output;
    w->collection = nem_cfg_str(opts->cfg, out, opts->position);
    w->bucket = opts->stage == NEM_STAGE_LEARN ? w->collection : NULL;
    w->provenance = nem_cfg_bool(opts->cfg, NEM_OPT_PROVENANCE);
    w->bulk = nem_bulk_new(opts->store, w->collection, 0, 0);
    bson_init(&w->consumed);
    bson_init(&w->model_ids);
    return w;
}

static bool write_document(nem_writer_t *w, nem_item_t *item, bson_error_t *err)
{
    bson_t stamped;
    bool ok;
    if (!w->provenance)
        return nem_bulk_add(w->bulk, &item->doc, err) && (++w->docs, true);
    nem_provenance_stamp(&item->doc, w->o.run_id, w->o.stage, w->o.position, w->o.script,
                         w->has_model_used ? &w->model_used : NULL, &stamped);
    ok = nem_bulk_add(w->bulk, &stamped, err);
    bson_destroy(&stamped);
    if (ok)
        w->docs++;
    return ok;
}

/* Lineage: everything needed to walk from the model back to its data and run. */
static void model_metadata(nem_writer_t *w, const bson_t *user, bson_t *out)
{
    bson_t prov, options, pipeline;
    bson_error_t ignored;
    bson_init(out);
    bson_copy_to_excluding_noinit(user, out, NEM_PROVENANCE_FIELD, NULL);
    BSON_APPEND_DOCUMENT_BEGIN(out, NEM_PROVENANCE_FIELD, &prov);
    BSON_APPEND_UTF8(&prov, "run", w->o.run_id);
    BSON_APPEND_UTF8(&prov, "stage", nem_stage_info(w->o.stage)->name);
    BSON_APPEND_INT64(&prov, "position", (int64_t)w->o.position);
    BSON_APPEND_UTF8(&prov, "script", w->o.script);
    BSON_APPEND_UTF8(&prov, "script_sha256", w->sha256);
    nem_config_to_bson(w->o.cfg, false, &options);
    BSON_APPEND_DOCUMENT(&prov, "options", &options);
    bson_destroy(&options);
    BSON_APPEND_UTF8(&prov, "data_collection", nem_cfg_str(w->o.cfg, NEM_OPT_DL_DATA_COLLECTION, w->o.position));
    if (nem_pipeline_option(w->o.cfg, NEM_OPT_DL_DATA_PIPELINE, w->o.position, &pipeline, &ignored)) {
        /* As JSON text: a stored document may not hold the pipeline's '$' keys. */
        char *json = nem_provenance_pipeline_json(&pipeline);
        BSON_APPEND_UTF8(&prov, "data_pipeline", json);
        bson_free(json);
        bson_destroy(&pipeline);
    }
    BSON_APPEND_ARRAY(&prov, "consumed", &w->consumed);
    if (w->o.parent) {
        bson_t parent;
        BSON_APPEND_DOCUMENT_BEGIN(&prov, "parent", &parent);
        BSON_APPEND_UTF8(&parent, "bucket", w->o.parent_bucket);
        BSON_APPEND_VALUE(&parent, "id", w->o.parent);
        bson_append_document_end(&prov, &parent);
    } else {
        BSON_APPEND_NULL(&prov, "parent");
    }
    BSON_APPEND_UTF8(&prov, "host", w->o.host);
    BSON_APPEND_INT32(&prov, "rank", w->o.rank);
    BSON_APPEND_DATE_TIME(&prov, "stored", nem_wall_ms());
    bson_append_document_end(out, &prov);
}

static bool write_model(nem_writer_t *w, nem_item_t *item, bson_error_t *err)
{
    bson_t meta;
    bson_value_t id;
    char filename[256], key[16];
    const char *k;
    const char *bucket = w->bucket ? w->bucket : nem_cfg_str(w->o.cfg, NEM_OPT_DL_OUTPUT_MODEL_COLLECTION, w->o.position);
    bson_t full;
    model_metadata(w, &item->doc, &full);
    /* Pipelines of many MiB appear several times in the lineage (options, data_pipeline, consumed): stored once
     * by reference, the metadata stays small whatever they are. */
    bool ok = nem_lineage_compact(w->o.store, &full, NEM_PROVENANCE_FIELD, &meta, err);
    bson_destroy(&full);
    snprintf(filename, sizeof filename, "%s-%s-%zu-%u", w->o.run_id, nem_stage_info(w->o.stage)->name,
             w->o.position, w->n_models);
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
        if (BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &id) && bson_iter_find(&id, "id")) {
            if (w->has_model_used)
                bson_value_destroy(&w->model_used);
            bson_value_copy(bson_iter_value(&id), &w->model_used);
            w->has_model_used = true;
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
}

bool nem_writer_item(void *ud, nem_item_t *item, bson_error_t *err)
{
    nem_writer_t *w = ud;
    bool ok = true;
    switch (item->kind) {
    case NEM_ITEM_DOC: ok = write_document(w, item, err); break;
    case NEM_ITEM_MODEL: ok = write_model(w, item, err); break;
    case NEM_ITEM_CONSUMED: note_consumed(w, item); break;
    }
    /* The callback owns the item only when it accepts it: on false the runner clears it (runner.h). */
    if (ok)
        nem_item_clear(item);
    return ok;
}

bool nem_writer_flush(nem_writer_t *w, bson_error_t *err)
{
    return nem_bulk_flush(w->bulk, err);
}

static bool delete_models(nem_store_t *store, const char *bucket, const bson_t *filter, bson_error_t *err)
{
    mongoc_database_t *db = nem_store_database(store);
    bson_t opts = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&opts, "bucketName", bucket);
    mongoc_gridfs_bucket_t *b = mongoc_gridfs_bucket_new(db, &opts, NULL, err);
    bson_destroy(&opts);
    if (!b)
        return false;
    char files[256];
    snprintf(files, sizeof files, "%s.files", bucket);
    mongoc_collection_t *coll = mongoc_database_get_collection(db, files);
    bson_t fopts = BSON_INITIALIZER;
    BSON_APPEND_INT32(&fopts, "batchSize", 100);
    mongoc_cursor_t *c = mongoc_collection_find_with_opts(coll, filter, &fopts, NULL);
    const bson_t *doc;
    bool ok = true;
    while (ok && mongoc_cursor_next(c, &doc)) {
        bson_iter_t it;
        if (bson_iter_init_find(&it, doc, "_id"))
            ok = mongoc_gridfs_bucket_delete_by_id(b, bson_iter_value(&it), err);
    }
    if (ok && mongoc_cursor_error(c, err))
        ok = false;
    mongoc_cursor_destroy(c);
    bson_destroy(&fopts);
    mongoc_collection_destroy(coll);
    mongoc_gridfs_bucket_destroy(b);
    return ok;
}

bool nem_writer_purge(nem_store_t *store, const nem_config_t *cfg, const char *run_id, nem_stage_t stage,
                      size_t position, bson_error_t *err)
{
    const char *collection = nem_cfg_str(cfg, nem_stage_info(stage)->output, position);
    bson_t filter, mfilter = BSON_INITIALIZER;
    nem_provenance_filter(run_id, stage, position, &filter);
    bool ok = nem_store_delete_matching(store, collection, &filter, NULL, err);
    if (ok) {
        /* Any stage may emit models: learners into their output bucket, the others into --dl-output-model-collection
         * (as write_model does). */
        const char *bucket = stage == NEM_STAGE_LEARN
                                 ? collection
                                 : nem_cfg_str(cfg, NEM_OPT_DL_OUTPUT_MODEL_COLLECTION, position);
        BSON_APPEND_UTF8(&mfilter, "metadata." NEM_PROVENANCE_FIELD ".run", run_id);
        BSON_APPEND_UTF8(&mfilter, "metadata." NEM_PROVENANCE_FIELD ".stage", nem_stage_info(stage)->name);
        BSON_APPEND_INT64(&mfilter, "metadata." NEM_PROVENANCE_FIELD ".position", (int64_t)position);
        ok = delete_models(store, bucket, &mfilter, err);
    }
    bson_destroy(&filter);
    bson_destroy(&mfilter);
    return ok;
}

bool nem_writer_rollback(nem_writer_t *w, bson_error_t *err)
{
    if (!w->provenance && w->docs > 0) {
        bson_set_error(err, NEM_ERROR_PROVENANCE, NEM_PROVENANCE_ENOSTAMP,
                       "cannot remove the %" PRIu64 " documents of a failed script with --provenance=false", w->docs);
        return false;
    }
    return nem_writer_purge(w->o.store, w->o.cfg, w->o.run_id, w->o.stage, w->o.position, err);
}

uint64_t nem_writer_documents(const nem_writer_t *w)
{
    return w->docs;
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
    bson_destroy(&w->consumed);
    bson_destroy(&w->model_ids);
    if (w->has_model_used)
        bson_value_destroy(&w->model_used);
    bson_free(w);
}

static bool is_array_doc(const bson_t *doc)
{
    bson_iter_t it;
    uint32_t i = 0;
    char key[16];
    const char *k;
    bson_iter_init(&it, doc);
    while (bson_iter_next(&it)) {
        bson_uint32_to_string(i++, &k, key, sizeof key);
        if (strcmp(bson_iter_key(&it), k) != 0)
            return false;
    }
    return true;
}

/* MongoDB's rule: every stage is a document with exactly one field, the stage's name, which starts with '$'. Names
 * that extended JSON reserves for its type wrappers ($oid, $date, ...) are no stage and could not be stored and read
 * back as lineage: refused too. */
static bool check_stages(const nem_config_t *cfg, nem_opt_id_t id, size_t idx, const bson_t *pipeline,
                         bson_error_t *err)
{
    static const char *const wrappers[] = {"$oid", "$date", "$binary", "$numberInt", "$numberLong", "$numberDouble",
                                           "$numberDecimal", "$maxKey", "$minKey", "$regex", "$regularExpression",
                                           "$timestamp", "$code", "$scope", "$symbol", "$dbPointer", "$undefined",
                                           "$uuid", "$type", "$options", "$ref", "$id", "$db"};
    bson_iter_t it, st;
    unsigned n = 0;
    const char *where = cfg->values[id].where ? cfg->values[id].where : "default";
    if (!bson_iter_init(&it, pipeline))
        goto bad_json;
    while (bson_iter_next(&it)) {
        const char *why = NULL, *name = "";
        if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &st) || !bson_iter_next(&st))
            why = "is not a document with one field";
        else {
            name = bson_iter_key(&st);
            if (name[0] != '$')
                why = "does not name a stage (its field must start with '$')";
            else if (bson_iter_next(&st))
                why = "has more than one field";
            for (size_t w = 0; !why && w < sizeof wrappers / sizeof *wrappers; w++)
                if (strcmp(name, wrappers[w]) == 0)
                    why = "is an extended-JSON type wrapper, not a stage";
        }
        if (why) {
            bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "%s: option --%s[%zu]: pipeline stage %u%s%.40s%s %s",
                           where, nem_options[id].name, idx, n, *name ? " '" : "", name, *name ? "'" : "", why);
            return false;
        }
        n++;
    }
    return true;
bad_json:
    bson_set_error(err, NEM_ERROR_CONFIG, NEM_CONFIG_EVALUE, "%s: option --%s[%zu]: not a pipeline", where,
                   nem_options[id].name, idx);
    return false;
}

bool nem_pipeline_option(const nem_config_t *cfg, nem_opt_id_t id, size_t idx, bson_t *pipeline, bson_error_t *err)
{
    bson_t doc;
    if (!nem_cfg_json(cfg, id, idx, &doc, err))
        return false;
    if (is_array_doc(&doc)) {
        bson_steal(pipeline, &doc);
    } else {
        bson_init(pipeline);
        if (!bson_empty(&doc))
            BSON_APPEND_DOCUMENT(pipeline, "0", &doc);
        bson_destroy(&doc);
    }
    if (!check_stages(cfg, id, idx, pipeline, err)) {
        bson_destroy(pipeline);
        bson_init(pipeline);
        return false;
    }
    return true;
}
