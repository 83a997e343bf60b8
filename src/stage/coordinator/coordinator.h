/* Rank 0's side of a run: the run record, the rounds of each stage, the results as they arrive, learner groups'
 * fates and the summary. stage.c calls it on rank 0 only (nem_coord_list_runs: on every rank). */
#ifndef NEM_STAGE_COORDINATOR_H
#define NEM_STAGE_COORDINATOR_H

#include "stage/message.h"
#include "stage/worker/worker.h"
#include "store/store.h"

struct coord;

/* hosts: every rank's host, NEM_HOSTLEN each (taken). */
struct coord *nem_coord_new(const nem_world_t *world, const nem_run_plan_t *plan, char *hosts);
/* The run record opened (or reopened for --resume): what every rank must know before the first round. */
void nem_coord_open_run(struct coord *c, nem_msg_hello_t *hello);
nem_store_t *nem_coord_store(struct coord *c);
/* A worker rank could not connect: the run record says so. */
void nem_coord_workers_failed(struct coord *c);
/* The rounds of one stage, broadcast one after the other, then the stage's end. wctx: rank 0's when alone. */
void nem_coord_stage(struct coord *c, nem_stage_t stage, const nem_worker_ctx_t *wctx);
/* Rank 0 alone runs the scripts: their results (a nem_result_cb) and progress (a worker's progress callback). */
void nem_coord_record(const nem_task_result_t *r, void *coord);
void nem_coord_progress_local(uint64_t documents, void *coord);
/* Closes the run record and prints the summary; the run's exit status. */
int nem_coord_close_run(struct coord *c);
/* The run never got going: --summary-json still gets an answer. */
void nem_coord_never_started(struct coord *c);
void nem_coord_destroy(struct coord *c);

/* --list-runs: rank 0 prints the run records; every rank returns the exit status. */
int nem_coord_list_runs(const nem_world_t *world, const nem_run_plan_t *plan);

#endif
