/* What a script stored in a run, as both sides of a run see it: a worker rolls back a failed script's output and
 * purges an earlier try's before a rerun; rank 0 does the same for a learner group as one. */
#ifndef NEM_STAGE_OUTPUT_H
#define NEM_STAGE_OUTPUT_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

#include "stage/run-plan.h"
#include "store/store.h"
#include "util/stages.h"

/* Deletes every document, model and metric a script wrote in a run (metrics up to its newest checkpoint stay:
 * the rerun goes on from there). legacy_stamp: the run keeps the first provenance stamp format. */
bool nem_output_purge(nem_store_t *store, const nem_script_plan_t *script, const char *run_id, nem_stage_t stage,
                      size_t position, bool legacy_stamp, bson_error_t *err);
/* The newest checkpoint step of a script in a run (store/ckpt.h), -1 when it has none, -2 on error. */
int64_t nem_output_checkpoint_step(nem_store_t *store, const char *run_id, nem_stage_t stage, size_t position,
                                   bson_error_t *err);
/* A learner whose model is stored: its checkpoints have served and go (a warning when they cannot: the model is
 * stored, so one left behind is space, not a wrong result). Other stages have none. */
void nem_output_drop_checkpoints(nem_store_t *store, const char *run_id, nem_stage_t stage, size_t position);

#endif
