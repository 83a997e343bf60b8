/* The one run listing: `nemesyst --list-runs` (stage/coordinator/run-record.c, through nem_runrec_list) and
 * `nemesyst-registry runs` (and the run's line of `nemesyst-registry run ID`) build the same rows from the run
 * records and print them through the same table, util/table.h. Both binaries link it (libnemesyst_core). */
#ifndef NEM_RUNREC_RUNLIST_H
#define NEM_RUNREC_RUNLIST_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdio.h>

#include "store/store.h"
#include "util/table.h"

/* Every run record, newest first; without their option snapshots unless with_options (they can be large). */
bool nem_runlist_each(nem_store_t *store, bool with_options, nem_doc_cb cb, void *ud, bson_error_t *err);
/* The same for the run records query matches (a MongoDB filter; NULL: every one), asked of the server. */
bool nem_runlist_find(nem_store_t *store, const bson_t *query, bool with_options, nem_doc_cb cb, void *ud,
                      bson_error_t *err);
/* One row from a run record, as `nemesyst-registry runs --json` gives it: id, status (util/status.h: lost when
 * nem_runrec_is_lost), recorded_status, started, ended (ISO text or null), duration_ms (to the end, to now while it
 * runs, to its last heartbeat once lost; null when unknown), heartbeat_age_ms (recorded as running only), hosts
 * (each once, in rank order), ranks, scripts_ok, scripts_failed, error, version. now_ms: one clock for a whole
 * listing. name (null when none) and tags ({KEY: VALUE}, {} when none) as the run was given them (runrec.h). */
void nem_runlist_row(const bson_t *record, int64_t now_ms, bson_t *out);
/* Appends started and ended (ISO text, null when missing: INT64_MIN) and duration_key, in ms from started to until
 * (null when either is missing): a run's row, and a script's in `nemesyst-registry run ID`. */
void nem_runlist_append_span(bson_t *out, int64_t started, int64_t ended, int64_t until, const char *duration_key);
/* The rows of every run, newest first, appended to the array rows (initialised by the caller); *lost (may be
 * NULL) counts the lost runs. */
bool nem_runlist_rows(nem_store_t *store, int64_t now_ms, bson_t *rows, size_t *lost, bson_error_t *err);
/* The rows of the runs query matches (NULL: every run), asked of the server, and of those only the ones shown with
 * status (a nem_status_t; -1: any): lost is no stored word, so a caller asking for running or lost queries
 * {"status": "running"} and lets the rows tell the two apart. */
bool nem_runlist_rows_matching(nem_store_t *store, int64_t now_ms, const bson_t *query, int status, bson_t *rows,
                               size_t *lost, bson_error_t *err);
/* The rows of the runs query matches (NULL: every run), newest first, shown with status (as
 * nem_runlist_rows_matching), printed as they come, a run at a time: a table (nem_runlist_print's; util/table.h
 * nem_table_flush_full keeps at most a block of rows, and a listing of up to a block prints exactly as
 * nem_runlist_print would) or, with json, {"runs": [ROW, ...]}. The records are read once (a listing longer than a
 * block also asks whether one of them is of a sweep, for its last column). Memory does not grow with the number of
 * runs. */
bool nem_runlist_stream(nem_store_t *store, int64_t now_ms, const bson_t *query, int status, bool json, FILE *out,
                        size_t *lost, bson_error_t *err);
/* The listing's table: run, name, status, started, duration, heartbeat (its age, running ones only), ok and
 * failed (scripts), hosts, tags (KEY=VALUE,...); a long name or tags cut with "...". rows: an array of rows; row:
 * one. */
void nem_runlist_print(FILE *out, const bson_t *rows);
void nem_runlist_print_one(FILE *out, const bson_t *row);
/* The one per-script table of a run, for the end-of-run summary (stage/coordinator/summary.c) and `nemesyst-registry run ID`:
 * script (its key, "clean-0"), status (util/status.h: succeeded or failed), rank, host, seconds, documents,
 * models, file (the script's path, or its file name alone where the caller gives that), error. */
typedef struct {
    const char *key, *status, *host, *file, *error; /* NULL: "-" (error: empty) */
    int64_t rank;
    int64_t ms;                                      /* how long it ran; negative: unknown */
    int64_t documents, models;
} nem_runlist_script_t;
nem_table_t *nem_runlist_scripts_new(void);
void nem_runlist_scripts_add(nem_table_t *t, const nem_runlist_script_t *s);
/* A duration in ms as people read it: "4.2s", "3m07s", "2h05m". */
void nem_runlist_duration(int64_t ms, char *buf, size_t n);

#endif
