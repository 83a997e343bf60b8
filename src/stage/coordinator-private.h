/* The coordinator's parts, private to src/stage: the MPI transport (transport.c), the run record's life
 * (run-record.c), the resume policy (resume.c) and the round scheduling (coordinator.c). */
#ifndef NEM_STAGE_COORDINATOR_PRIVATE_H
#define NEM_STAGE_COORDINATOR_PRIVATE_H

#include "stage/stage.h"
#include "stage/summary.h"
#include "stage/worker.h"

#define NEM_PROGRESS_MS 5000
#define NEM_RECORD_FLUSH_MS 1000
#define NEM_HOSTLEN ((int)sizeof(((nem_world_t *)0)->host))

typedef struct {
    const nem_world_t *world;
    const nem_run_plan_t *plan;
    nem_store_t *store;
    char run_id[64];
    bson_t previous;     /* resume: per-script entries of the run being resumed */
    nem_summary_t *summary;
    bson_t pending;      /* run-record entries not written yet: {"scripts.clean-0": {...}} */
    int64_t flushed_ms;
    bool legacy;         /* the run (resumed) was recorded before stamp format 2: its documents keep the first */
    bool record_failed;  /* a run-record write failed: the run cannot end with status 0 */
    uint64_t unsent;     /* workers: documents written but not yet reported */
    int64_t sent_ms;
    int64_t beat_ms;     /* rank 0: when the run record's heartbeat was last refreshed */
    bool beat_failed;    /* a heartbeat write failed (warned once) */
} coord_t;

/* transport.c: MPI carries only control. Round plans and the run's hello are BSON broadcast from rank 0; results,
 * progress counts and end-of-round messages go point to point to rank 0. */
/* Broadcasts a BSON document from rank 0; on other ranks doc is initialised from what arrived. */
void nem_coord_bcast(const nem_world_t *world, bson_t *doc);
/* Workers: a result to rank 0 as soon as a script ends (a nem_result_cb). */
void nem_coord_send_result(const nem_task_result_t *r, void *ud);
/* Workers: documents written, at most once a second (a progress callback of the worker). */
void nem_coord_progress_send(uint64_t documents, void *ud);
/* Workers: what is left unsent, then the end of this rank's part of the round. */
void nem_coord_send_round_done(coord_t *c);
/* Rank 0, more than one rank: waits for every worker's end of round, recording results as they come. */
void nem_coord_collect_round(coord_t *c);

/* run-record.c: the run record's life on rank 0. */
int nem_coord_open_run(coord_t *c);
int nem_coord_close_run(coord_t *c);
bool nem_coord_connect_workers(coord_t *c);
void nem_coord_heartbeat(coord_t *c);
void nem_coord_flush(coord_t *c);
void nem_coord_record(const nem_task_result_t *r, void *ud);
void nem_coord_progress_local(uint64_t documents, void *ud);
int nem_coord_list_runs(const nem_world_t *world, const nem_run_plan_t *plan);

/* resume.c: which scripts a resumed run reruns, and whether it may. */
bool nem_coord_already_succeeded(const coord_t *c, nem_stage_t stage, size_t pos);
bool nem_coord_same_scripts(const coord_t *c, bson_error_t *err);

#endif
