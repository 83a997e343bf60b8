/* nemesyst-registry: read-only questions to the store about what nemesyst recorded (README "Asking the store").
 * Every verb builds one BSON report from the run records (provenance.h), the models' GridFS metadata (_nemesyst,
 * stage/worker/writer.c) and the stamped documents, then prints it as a table for people or, with --json, as relaxed
 * extended JSON for scripts: the table and the JSON are the same report. Nothing here writes, deletes or changes a
 * document but `import` (bundle.c), which adds a bundle's documents, all or none; the other writes are to stdout and
 * stderr, and the files `get -o FILE` and `bundle -o FILE` are asked for (get.c, bundle.c). */
#ifndef NEM_REGISTRY_H
#define NEM_REGISTRY_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "runrec/runlist.h"
#include "store/store.h"
#include "util/stages.h"
#include "util/strv.h"
#include "util/table.h"

typedef struct {
    nem_store_t *store;
    bool json;             /* --json */
    const char *bucket;    /* --bucket: the one GridFS bucket to look in; NULL: every bucket of --db-name */
    const char *best;      /* models --best METRIC */
    int best_order;        /* models: -1 --min, +1 --max, 0 neither */
    const char *script;    /* metrics --script KEY|POS */
    const char *plot;      /* metrics --plot FILE.png */
    FILE *out;
    int64_t now_ms;        /* one clock for a whole report: lost runs and durations agree */
    /* affected: the documents, as given (main.c checks which go together) */
    const char *collection;    /* --collection C */
    const char *filter;        /* --filter JSON, on C */
    const char *const *ids;    /* --id ID, each */
    size_t n_ids;
    const char *ids_file;      /* --ids-file FILE */
    const char *run;           /* --run RUN_ID, with script (--script KEY) */
    const char *format;        /* export --format: "nemesyst" (the default) or "prov-json" */
    bool dot;                  /* lineage --dot: Graphviz DOT instead of a table */
    const char *sweep;         /* models --sweep NAME: the models of that sweep's runs */
    const bson_t *model_runs;  /* nem_reg_model_rows: the models of these runs only (an array of run ids); NULL:
                                * any */
} nem_reg_t;

/* The verbs (main.c dispatches). Each returns the exit status (util/exitcodes.h) and prints a failure as one line
 * on stderr. */
/* `runs`'s filters as given (NULL / 0: not given); all must match. */
typedef struct {
    const char *name;          /* --name NAME: the run's name, exactly */
    const char *const *tags;   /* --tag KEY=VALUE, each */
    size_t n_tags;
    const char *status;        /* --status WORD (util/status.h, lost included) */
    const char *since, *until; /* --since / --until TIME: ISO 8601 (util/clock.h nem_iso_parse) */
    const char *script;        /* --script PATH or its last components */
    const char *sweep;         /* --sweep NAME: the runs of that sweep (run record's sweep.name), exactly */
} nem_reg_runs_filter_t;
/* A sweep's name as `runs --sweep` and `models --sweep` take it (a label: 1-128 bytes, no control characters);
 * NEM_CONFIG_EVALUE otherwise. */
bool nem_reg_check_sweep_name(const char *name, bson_error_t *err);
int nem_reg_runs(nem_reg_t *r, const nem_reg_runs_filter_t *f);
/* The filters checked (a malformed one is NEM_CONFIG_EVALUE, exit status 2: refused before connecting) and, when
 * query is given, turned into the query on the run records (initialised on success) and *status the status the
 * rows must show (-1: any; running and lost are both "running" in the records: the rows tell them apart). */
bool nem_reg_runs_filter(const nem_reg_runs_filter_t *f, bson_t *query, int *status, bson_error_t *err);
/* `get MODEL_ID -o FILE|-` (get.c). nem_reg_get_check_output: FILE may be written (exit status 2 otherwise,
 * before connecting): its directory exists, it is not a directory, and it does not exist unless force. */
bool nem_reg_get_check_output(const char *output, bool force, bson_error_t *err);
int nem_reg_get(nem_reg_t *r, const char *model_id, const char *output, bool force);
int nem_reg_run(nem_reg_t *r, const char *run_id);
int nem_reg_models(nem_reg_t *r);
int nem_reg_lineage(nem_reg_t *r, const char *model_id);
int nem_reg_verify(nem_reg_t *r, const char *model_id);
/* verify --all: every model nemesyst stored in --db-name (or --bucket B), each distinct cursor re-read once; a table
 * of verdicts (or --json); exit 1 when one changed, else 5 when one cannot be checked, else 0. */
int nem_reg_verify_all(nem_reg_t *r);
/* export RUN_ID: --format nemesyst (run-export.c) or prov-json (prov.c, nem_reg_export_prov). */
int nem_reg_export(nem_reg_t *r, const char *run_id);
/* export RUN_ID --format prov-json: the run as a W3C PROV-JSON document (prov.c). */
int nem_reg_export_prov(nem_reg_t *r, const char *run_id);
/* `diff A B` (diff.c): two runs or two models (main.c checked which), only the fields that differ; 0: the same,
 * 1: they differ. */
int nem_reg_diff(nem_reg_t *r, const char *a, const char *b);
int nem_reg_metric_history(nem_reg_t *r, const char *run_id);
/* `affected` (affected.c): the models trained on the documents r names (collection and filter, ids, or a run's
 * stamps), those retrained from them and the predictions made with any of them. 0: nothing is affected; 1:
 * something is; 5: whether some model is cannot be checked (it outranks 1: the list is then a lower bound). */
int nem_reg_affected(nem_reg_t *r);
/* `bundle RUN_ID... -o FILE [--with-data]` and `import FILE` (bundle.c, which documents the format): runs with
 * everything they made, moved between stores exactly once. import is the one verb that writes to the store. */
#define NEM_BUNDLE_FORMAT 1
int nem_reg_bundle(nem_reg_t *r, const char *const *runs, size_t n_runs, const char *output, bool force,
                   bool with_data);
/* import's first pass, before connecting: every part's sha256 against the manifest, the format version; the
 * manifest into *manifest (initialised on success; may be NULL). A damaged bundle is NEM_CONFIG_EVALUE (exit 2). */
bool nem_reg_bundle_check(const char *path, bson_t *manifest, bson_error_t *err);
int nem_reg_import(nem_reg_t *r, const char *path, const bson_t *manifest);
/* -o FILE of get and bundle: FILE may be written (exit status 2 otherwise, before connecting): its directory exists,
 * it is not a directory, and it does not exist unless force; dash: "-" (stdout) is allowed. */
bool nem_reg_check_output(const char *verb, const char *output, bool force, bool dash, bson_error_t *err);

/* ---- reports (runs.c, models.c, lineage.c): shared by the verbs and export ---- */

/* A run's row, its table and the run records themselves: the one run listing, provenance/runlist.h
 * (nem_runlist_row with r->now_ms, nem_runlist_print, nem_runlist_each), shared with `nemesyst --list-runs`. */
/* `run ID`: the row, the per-script table, the options (secrets removed), the errors, the models and the
 * predictions the run made. out is initialised on success only. */
bool nem_reg_run_report(nem_reg_t *r, const char *run_id, bson_t *out, bson_error_t *err);
/* The models of one bucket, or of every bucket (bucket NULL), optionally only those of one run (run_id), into
 * the array out (initialised), oldest first: id, bucket, filename, length, uploaded, run, script (key), metrics. */
bool nem_reg_model_rows(nem_reg_t *r, const char *bucket, const char *run_id, bson_t *out, bson_error_t *err);
/* Appends to row one model's fields from its files document: id, bucket, filename, length, uploaded, run,
 * script, parent, metrics. */
void nem_reg_model_row(const char *bucket, const bson_t *file, bson_t *row);
/* `lineage ID`: the model's run and host, script and sha256, options, data and consumed records, parents to the
 * first, and the predictions made with it. file: the model's files document, bucket its bucket. */
bool nem_reg_lineage_report(nem_reg_t *r, const char *bucket, const bson_t *file, bson_t *out, bson_error_t *err);

/* `lineage ID --dot` (lineage-dot.c): the report of nem_reg_lineage_report as a Graphviz DOT graph on r->out, the
 * data sets of the model and of each parent read again from their files documents (file: the model's). */
bool nem_reg_lineage_dot(nem_reg_t *r, const bson_t *file, const bson_t *report, bson_error_t *err);

/* The model a MODEL_ID argument names: the id checked, then looked up in --bucket or every bucket; its files
 * document into file and its bucket into bucket (bson_free). Unknown: NEM_CONFIG_EVALUE (exit status 2). */
bool nem_reg_model_arg(nem_reg_t *r, const char *model_id, bson_t *file, char **bucket, bson_error_t *err);

/* ---- the store, read-only (query.c) ---- */

/* Ids, checked before any query: a run id is what nemesyst makes ("20260102T030405Z-0123abcd"), a model id a
 * GridFS file's ObjectId as 24 hex digits. False with a one-line NEM_ERROR_CONFIG error (exit status 2). */
bool nem_reg_check_run_id(const char *id, bson_error_t *err);
bool nem_reg_check_model_id(const char *id, bson_oid_t *oid, bson_error_t *err);
/* The run record of run_id into out (initialised on success); NEM_PROVENANCE_ENORUN when there is none. */
bool nem_reg_load_run(nem_store_t *store, const char *run_id, bson_t *out, bson_error_t *err);
/* The GridFS buckets of --db-name (every collection NAME.files names bucket NAME), sorted. */
bool nem_reg_buckets(nem_store_t *store, nem_strv_t *out, bson_error_t *err);
bool nem_reg_collection_exists(nem_store_t *store, const char *name, bool *exists, bson_error_t *err);
/* The model with GridFS id oid, in bucket or (NULL) in any bucket: its files document into file (initialised on
 * success) and its bucket into bucket_out (bson_free it). *found says whether it was there. */
bool nem_reg_find_model(nem_store_t *store, const char *bucket, const bson_value_t *id, bson_t *file,
                        char **bucket_out, bool *found, bson_error_t *err);
/* The text of a lineage field: the string itself, or for a {"blob": SHA256, "bytes": N} reference the text kept
 * once in nemesyst_blobs (provenance.h). *text is NULL (no error) when the referenced blob is gone. */
bool nem_reg_text(nem_store_t *store, const bson_iter_t *field, char **text, bson_error_t *err);
/* Runs an aggregation pipeline (array form) on collection and calls cb for each result, through the store's
 * batches (the reader learners use). */
bool nem_reg_aggregate(nem_store_t *store, const char *collection, const bson_t *pipeline, nem_doc_cb cb, void *ud,
                       bson_error_t *err);
/* For the runs named in run_ids (an array of run ids), their records found by _id (not every record read), newest
 * run first: each script key with its stamp and the collections its documents went to ({stamp, run, script, stage,
 * position, collections: [...]}), so stamped documents can be traced to their run and script. Appended to the
 * array out (initialised); only stage "predict" when predict_only. */
bool nem_reg_run_stamps(nem_store_t *store, const bson_t *run_ids, bool predict_only, bson_t *out, bson_error_t *err);
/* The entries of nem_reg_run_stamps, each passed to cb and dropped. */
typedef bool (*nem_reg_stamp_cb)(const bson_t *entry, void *ud, bson_error_t *err);
/* Every collection a predict script of any run wrote to, each once, sorted, appended to out (and perhaps a few
 * no script wrote to: every value of the option; a distinct the server answers, not a read of the records). */
bool nem_reg_predict_collections(nem_store_t *store, nem_strv_t *out, bson_error_t *err);
/* The predict scripts that made the n stamps: out (initialised) gets {STAMP-HEX: {run, script}} for each one a run
 * record names; only those are kept. The records are found by their "stamps" array and its index (runrec.h); only
 * when some stamp is not found there are the records without the array (earlier versions) looked through. */
bool nem_reg_resolve_stamps(nem_store_t *store, const bson_oid_t *stamps, size_t n, bson_t *out, bson_error_t *err);
/* Counts the documents of collection matching {field: value}, grouped by the value at path group: calls cb with
 * {_id: GROUP VALUE, n: COUNT} documents. */
bool nem_reg_count_by(nem_store_t *store, const char *collection, const char *field, const bson_value_t *value,
                      const char *group, nem_doc_cb cb, void *ud, bson_error_t *err);

/* ---- output (print.c) ---- */

/* Arrays of a report: the next element of arr (its count in *n), a sub-document to close with
 * bson_append_document_end(arr, child), or a string. */
void nem_reg_push_doc(bson_t *arr, uint32_t *n, bson_t *child);
void nem_reg_push_str(bson_t *arr, uint32_t *n, const char *s);
/* The models' table (models.c), as `models` and `run ID` print it: model, bucket, uploaded, run, script,
 * metrics; a row of nem_reg_model_rows added. */
nem_table_t *nem_reg_models_table(void);
void nem_reg_models_add(nem_table_t *t, const bson_t *row);
/* The report as relaxed extended JSON on one line. */
void nem_reg_print_json(FILE *out, const bson_t *report);
/* A report of one long array, streamed: `{ "KEY" : [ ITEM, ITEM ], FIELDS OF TAIL }` as nem_reg_print_json would
 * print it whole, an item at a time (n counts them; start at 0), so a listing of any length holds one item in
 * memory. tail may be NULL. */
void nem_reg_json_open(FILE *out, const char *key);
void nem_reg_json_item(FILE *out, uint32_t *n, const bson_t *item);
void nem_reg_json_close(FILE *out, const bson_t *tail);
/* A date (ms since the epoch) as ISO text (util/clock.h nem_iso_ms), or null when missing (INT64_MIN). */
void nem_reg_append_date(bson_t *doc, const char *key, int64_t ms);
/* The run record's attempts as an array "attempts" of out: {n, job, restart, host, ranks, started, ended, status}. */
void nem_reg_append_attempts(const bson_t *record, bson_t *out);
/* Field readers of stored documents, tolerant of missing fields and other types: dotted paths allowed. */
const char *nem_reg_str(const bson_t *doc, const char *path, const char *dflt);
int64_t nem_reg_int(const bson_t *doc, const char *path, int64_t dflt);
int64_t nem_reg_date(const bson_t *doc, const char *path); /* INT64_MIN when missing */
/* A sub-document or array as a static view, borrowed from doc. A static bson_t points into itself: pass it by
 * pointer, never copy it by value. */
bool nem_reg_sub(const bson_t *doc, const char *path, bson_t *view);
/* Options as stored, with every secret removed again (options.def's NEM_F_SECRET rows, and any key that names a
 * password): the registry never prints one, whatever an old or foreign record holds. */
void nem_reg_clean_options(const bson_t *in, bson_t *out);
/* A model's metrics: the learner's own metadata (not _nemesyst), numbers only; for an array (a history per epoch)
 * its final number; sub-documents of numbers only ({"history": {"loss": [...]}}) dotted ("history.loss"), others
 * (a copy of the options) left out. */
void nem_reg_metrics(const bson_t *metadata, bson_t *out);
/* Options (cleaned: nem_reg_clean_options) as a two-column table, name and value, indented; `run` and `lineage`. */
void nem_reg_print_options(FILE *out, const bson_t *opts);
/* A value as short text for tables (strings bare, numbers plain, the rest as JSON), cut at max bytes. */
char *nem_reg_value_text(const bson_iter_t *it, size_t max);
/* An id as text (bson_free it): an ObjectId's hex digits, anything else as JSON. */
char *nem_reg_id_text(const bson_value_t *id);
/* The collection a script's documents went to: its stage's per-script option in an options snapshot, repeat-last
 * (README "Stage scripts"), or NULL. */
const char *nem_reg_output_of(const bson_t *options, nem_stage_t stage, int64_t position);
/* One-line error on stderr: "nemesyst-registry: error: MESSAGE"; returns nem_exit_status(err). */
int nem_reg_fail(const bson_error_t *err);
void nem_reg_warn(const char *fmt, ...) BSON_GNUC_PRINTF(1, 2);

#endif
