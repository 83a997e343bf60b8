/* The end-of-run summary: a table per script for people, JSON for machines, and periodic progress. */
#ifndef NEM_SUMMARY_H
#define NEM_SUMMARY_H

#include <stdio.h>

#include "stage/message.h"
#include "util/status.h"

typedef struct nem_summary nem_summary_t;

nem_summary_t *nem_summary_new(const nem_run_plan_t *plan, const char *run_id, size_t total_scripts);
void nem_summary_add(nem_summary_t *s, const nem_task_result_t *r);
/* Documents written by scripts still running, for progress lines. */
void nem_summary_live(nem_summary_t *s, uint64_t documents);
/* Logs progress when at least interval_ms passed since the last report. */
/* Logs a progress line at most every interval_ms: scripts done, documents, the rate over the last interval, and
 * the scripts of the current round still running, with how long they have run. */
void nem_summary_progress(nem_summary_t *s, int64_t interval_ms);
/* The scripts of the round that starts now (rank 0), until their results arrive. */
void nem_summary_round(nem_summary_t *s, nem_stage_t stage, const size_t *positions, size_t n);
size_t nem_summary_failed(const nem_summary_t *s);
void nem_summary_print(const nem_summary_t *s, FILE *out);
bool nem_summary_write_json(const nem_summary_t *s, nem_status_t status, const char *path, bson_error_t *err);
void nem_summary_destroy(nem_summary_t *s);

#endif
