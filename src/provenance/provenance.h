/* Provenance: the _nemesyst field on every stored document, model lineage metadata, and large lineage stored by
 * reference. The run record is src/runrec/runrec.h. */
#ifndef NEM_PROVENANCE_H
#define NEM_PROVENANCE_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdio.h>

#include "store/store.h"
#include "util/clock.h"
#include "util/errors.h"
#include "util/stages.h"

/* Metrics scripts report while they run, one document each: {run, script ("learn-0"), stage, position, name,
 * step, value, t, _nemesyst: {s: STAMP}[, model]}, model set when the script stored one (the last). */
#define NEM_METRICS_COLLECTION "nemesyst_metrics"
#define NEM_PROVENANCE_FIELD "_nemesyst"

/* sha256 of a file as 64 hex characters. */
bool nem_sha256_file(const char *path, char hex[65], bson_error_t *err);

/* The provenance stamp, a stored format. Every document a script writes carries
 *   _nemesyst: {s: STAMP[, model: ID]}
 * where STAMP is the script's stamp id in its run: an ObjectId-typed 12 bytes, the first 12 of
 * sha256("nemesyst-stamp\0" RUN_ID "\0" KEY) with KEY the script's key ("clean-0"). The run record holds everything
 * else once: "stamp_format": 2, and per script its path, host and "stamp". So a document is 31 bytes heavier, not
 * 110 (run, stage, full script path and position as strings, the first format); rollback and --resume delete by
 * the stamp, and anyone can compute a run's stamps from its id and script keys. model: the model a predictor
 * loaded. Runs recorded before stamp_format 2 keep the first format ({run, stage, script, position}) to their end:
 * legacy is true for them, so --resume of such a run removes and writes what its earlier documents look like. */
#define NEM_STAMP_PREFIX "nemesyst-stamp"
#define NEM_STAMP_FORMAT 2
void nem_stamp_id(const char *run_id, nem_stage_t stage, size_t position, bson_oid_t *out);
/* What one script stamps on its documents: made once per script (the id is a sha256), used per document. */
typedef struct {
    const char *run_id, *script; /* borrowed */
    nem_stage_t stage;
    size_t position;
    bool legacy;
    bson_oid_t id;
} nem_stamp_t;
void nem_stamp_init(nem_stamp_t *s, const char *run_id, nem_stage_t stage, size_t position, const char *script,
                    bool legacy);
/* Sets doc's provenance field (replacing one the script may have written). doc must be writable (not static);
 * model may be NULL. A document without the field gets it appended in place: no copy. */
void nem_provenance_stamp(bson_t *doc, const nem_stamp_t *s, const bson_value_t *model);
/* A pipeline (a BSON array of stages) as a canonical extended-JSON string ("[{...}, {...}]"), for metadata: stored
 * documents may not hold keys starting with '$' (FerretDB and MongoDB before 5.0 refuse them), and every pipeline
 * has such keys. Read it back with bson.json_util.loads (Python) or bson_new_from_json. Free with bson_free. */
char *nem_provenance_pipeline_json(const bson_t *pipeline);
/* The filter matching every document a script wrote in a run. */
void nem_provenance_filter(const char *run_id, nem_stage_t stage, size_t position, bool legacy, bson_t *out);

/* The indexes nemesyst's own queries need, asked for where it writes (store.h nem_store_ensure_index: listed first,
 * created once per process, a refusal warned about once and the run goes on):
 *   - a data collection a script writes to: its stamp, {_nemesyst.s: 1} (the first stamp format: {_nemesyst.run,
 *     stage, position}), by which --resume and rollback delete and `affected --run` counts; for a predict script's
 *     collection also {_nemesyst.model: 1}, by which `lineage` and `affected` find the predictions of a model;
 *   - a model bucket's files collection: {metadata._nemesyst.run, stage, position} (rollback, --resume and `models`
 *     of a run) and {metadata._nemesyst.parent.id} (`affected`: the models retrained from one);
 *   - the run records (runrec.h): {started: -1} (every listing's order), {status, started}, {name}, {sweep.name,
 *     sweep.index} and {attempts.job} (`runs` filters, --sweep-resume, Slurm requeues), {stamps} (the run that
 *     wrote a stamped document: lineage, affected) and {options.i-output-prediction-collection} and its
 *     resume_options twin (the distinct that lists where predictions went). */
void nem_provenance_index_data(nem_store_t *store, const char *collection, nem_stage_t stage, bool legacy);
void nem_provenance_index_models(nem_store_t *store, const char *bucket);
void nem_provenance_index_runs(nem_store_t *store, const char *runs_collection);
/* NEM_METRICS_COLLECTION: {run, script, name, step} (`nemesyst-registry metrics`, the trim of a resumed learner's
 * later steps) and the stamp {_nemesyst.s} (a failed script's rollback). */
void nem_provenance_index_metrics(nem_store_t *store);
/* The checkpoints' files (store/ckpt.h, NEM_CHECKPOINT_BUCKET): {metadata.run, metadata.script, metadata.step: -1},
 * the listing of a script's checkpoints, newest first, by which every save prunes and every load and --resume
 * choose. */
void nem_provenance_index_checkpoints(nem_store_t *store);

/* Large lineage is stored once, by reference: nem_lineage_compact copies in to out, replacing every string over
 * NEM_LINEAGE_INLINE_MAX bytes, at any depth (a pipeline of many MiB, as an option value, a model's data_pipeline or a
 * consumed record's pipeline), by {"blob": SHA256-HEX, "bytes": N}, and stores the text once in
 * NEM_BLOBS_COLLECTION as {_id: SHA256-HEX, bytes: N, text: ...}. Run records and model metadata then stay far
 * below MongoDB's 16 MiB document limit whatever the pipelines, so no upload fails after hours of training.
 * only_key: compact only that top-level sub-document (a model's "_nemesyst": the script's own metadata stays as it
 * gave it); NULL: everything. */
#define NEM_BLOBS_COLLECTION "nemesyst_blobs"
#define NEM_LINEAGE_INLINE_MAX (16 * 1024)
#define NEM_LINEAGE_BLOB_MAX (15 * 1024 * 1024)
bool nem_lineage_compact(nem_store_t *store, const bson_t *in, const char *only_key, bson_t *out, bson_error_t *err);

#endif
