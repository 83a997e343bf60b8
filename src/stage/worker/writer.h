/* The host side of a script's output: documents into its collection in bulk with provenance, models into GridFS
 * with lineage metadata; and the undo of both when the script fails. */
#ifndef NEM_WRITER_H
#define NEM_WRITER_H

#include "stage/runner/runner.h"
#include "stage/message.h"
#include "store/store.h"

typedef struct nem_writer nem_writer_t;

typedef struct {
    nem_store_t *store;
    const nem_writer_policy_t *policy;
    const bson_t *options;      /* the run's option snapshot, for model lineage */
    const char *run_id;
    nem_stage_t stage;
    size_t position;
    const nem_script_plan_t *script;
    int rank;
    const char *host;
    const bson_value_t *parent; /* learn: the model retrained from (in script->input_bucket), or NULL */
    bool legacy_stamp;          /* the first provenance stamp format (a run recorded before format 2) */
    int member;                 /* learner groups: this member's index; only member 0 (or a script alone) stores
                                 * models and metrics, the others' are dropped (README: "Learner groups") */
    const nem_store_opts_t *async; /* non-NULL: documents are sent from a thread on a connection of its own, made
                                    * with these settings, while the script's next ones are read */
    int64_t attempt;            /* the run's attempt, recorded with each checkpoint */
} nem_writer_opts_t;

nem_writer_t *nem_writer_new(const nem_writer_opts_t *opts, bson_error_t *err);
/* nem_item_cb for nem_runner_pump. */
bool nem_writer_item(void *writer, nem_item_t *item, bson_error_t *err);
bool nem_writer_flush(nem_writer_t *w, bson_error_t *err);
/* A script that succeeded: the last flush, then its metrics reference the model it stored, and what it measured on
 * models it loaded (a predictor's test accuracy) goes into their metadata (metadata.evaluation.NAME). A failed
 * script gets nem_writer_flush only: nothing of it is kept. */
bool nem_writer_finish(nem_writer_t *w, bson_error_t *err);
/* Removes what the script wrote in this run: documents by their provenance, models by their lineage. store: the
 * connection to use (NULL: the writer's own; a rollback on another thread needs its own connection). Refused
 * (NEM_PROVENANCE_ENOSTAMP) when documents were written without provenance: nem_writer_can_rollback says so first. */
bool nem_writer_can_rollback(const nem_writer_t *w, bson_error_t *err);
bool nem_writer_rollback(nem_writer_t *w, nem_store_t *store, bson_error_t *err);
uint64_t nem_writer_documents(const nem_writer_t *w);
/* The last complete read of collection the script reported: its count (-1 when none) and sha256 into digest. */
int64_t nem_writer_consumed(const nem_writer_t *w, const char *collection, char digest[65]);
/* The GridFS id of the first model stored, as 24 hex digits into hex; false when none (or not an ObjectId). */
bool nem_writer_first_model(const nem_writer_t *w, char hex[25]);
uint64_t nem_writer_models(const nem_writer_t *w);
void nem_writer_destroy(nem_writer_t *w);


/* The last value of each metric the script reported (the first NEM_RESULT_METRICS, per model measured on), for
 * its result and the run record. */
size_t nem_writer_last_metrics(const nem_writer_t *w, nem_result_metric_t *out, size_t max);

#endif
