/* What a script stored in a run (output.h). */
#include "stage/output.h"

#include "log/log.h"
#include "provenance/provenance.h"
#include "store/ckpt.h"

/* Removing what a script wrote in a run: its documents by their provenance stamp (in pieces: store/delete.c), then
 * its models by their lineage metadata. Any stage may emit models: learners into their output bucket, the others
 * into --dl-output-model-collection (as write_model does). */
int64_t nem_output_checkpoint_step(nem_store_t *store, const char *run_id, nem_stage_t stage, size_t position,
                                   bson_error_t *err)
{
    char key[64];
    nem_script_key(stage, position, key, sizeof key);
    return nem_ckpt_newest_step(store, run_id, key, err);
}

bool nem_output_purge(nem_store_t *store, const nem_script_plan_t *script, const char *run_id, nem_stage_t stage,
                      size_t position, bool legacy_stamp, bson_error_t *err)
{
    bson_t filter, mfilter = BSON_INITIALIZER;
    nem_provenance_filter(run_id, stage, position, legacy_stamp, &filter);
    nem_provenance_index_data(store, script->output, stage, legacy_stamp); /* the delete by stamp, not a scan */
    bool ok = nem_store_delete_matching(store, script->output, &filter, NULL, err);
    if (ok) {
        BSON_APPEND_UTF8(&mfilter, "metadata." NEM_PROVENANCE_FIELD ".run", run_id);
        BSON_APPEND_UTF8(&mfilter, "metadata." NEM_PROVENANCE_FIELD ".stage", nem_stage_name(stage));
        BSON_APPEND_INT64(&mfilter, "metadata." NEM_PROVENANCE_FIELD ".position", (int64_t)position);
        ok = nem_gridfs_delete_matching(store, script->model_bucket, &mfilter, NULL, err);
    }
    /* its metrics go with it: a rerun reports its own, except those up to its newest checkpoint, from which the
     * rerun goes on (so every step appears once in the history) */
    int64_t kept = ok && stage == NEM_STAGE_LEARN ? nem_output_checkpoint_step(store, run_id, stage, position, err) : -1;
    if (kept == -2)
        ok = false;
    if (ok && kept >= 0) {
        bson_t gt;
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "step", &gt);
        BSON_APPEND_INT64(&gt, "$gt", kept);
        bson_append_document_end(&filter, &gt);
    }
    ok = ok && nem_store_delete_matching(store, NEM_METRICS_COLLECTION, &filter, NULL, err);
    bson_destroy(&filter);
    bson_destroy(&mfilter);
    return ok;
}

void nem_output_drop_checkpoints(nem_store_t *store, const char *run_id, nem_stage_t stage, size_t position)
{
    char key[64];
    uint64_t n = 0;
    bson_error_t err;
    if (stage != NEM_STAGE_LEARN)
        return;
    nem_script_key(stage, position, key, sizeof key);
    if (!nem_ckpt_remove(store, run_id, key, &n, &err))
        NEM_WARN("%s: its checkpoints were not removed: %s", key, err.message);
    else if (n)
        NEM_DEBUG("%s: its %" PRIu64 " checkpoint(s) removed, its model stored", key, n);
}
