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

/* Rank 0: a learner group of the round being run, until every member has reported. */
typedef struct {
    nem_stage_t stage;
    size_t position;
    int size;
    int index;                   /* in the round */
    int *ranks;                  /* each member's rank */
    nem_task_result_t *results;  /* each member's, as it reports */
    bool *reported;
    int n_reported;
    bool aborted;                /* the other members' ranks were told to stop them */
    char **shards;               /* each member's filter (extended JSON), for the lineage */
} coord_group_t;

typedef struct {
    const nem_world_t *world;
    const nem_run_plan_t *plan;
    nem_store_t *store;
    char run_id[64];
    int64_t attempt;     /* this job's try at the run: 1, then one more per --resume (the record's attempts) */
    bson_t previous;     /* resume: per-script entries of the run being resumed */
    const char *resume_id; /* the run resumed: --resume, or the one a requeued Slurm job started; NULL = new */
    char requeued_id[64];  /* the latter's storage */
    nem_summary_t *summary;
    bson_t pending;      /* run-record entries not written yet: {"scripts.clean-0": {...}} */
    int64_t flushed_ms;
    bool legacy;         /* the run (resumed) was recorded before stamp format 2: its documents keep the first */
    bool record_failed;  /* a run-record write failed: the run cannot end with status 0 */
    uint64_t unsent;     /* workers: documents written but not yet reported */
    int64_t sent_ms;
    int64_t beat_ms;     /* rank 0: when the run record's heartbeat was last refreshed */
    bool beat_failed;    /* a heartbeat write failed (warned once) */
    char *hosts;         /* rank 0: every rank's host, NEM_HOSTLEN each */
    coord_group_t *groups; /* rank 0: the learner groups of the round under way */
    size_t n_groups;
    int round;           /* the round's number in the run (abort messages name it) */
    int *aborts_sent;    /* rank 0: abort messages sent to each rank */
    int aborts_received; /* workers */
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

/* Rank 0: tells rank that the learner group index of this round failed (why: which member, where). */
void nem_coord_send_abort(coord_t *c, int rank, int group, const char *why);
/* Workers: the group index (of this round) whose abort arrived, with why; -1 when none is waiting. */
int nem_coord_poll_abort(void *ud, char *why, size_t len);
/* Workers: receives the aborts rank 0 says it sent this rank (from a round plan's "aborts"), late ones of an
 * earlier round included, so none is left unreceived. */
void nem_coord_drain_aborts(coord_t *c, const bson_t *plan);
/* Rank 0: every rank's abort count into a plan ("aborts": [...]). */
void nem_coord_append_aborts(const coord_t *c, bson_t *plan);

/* coord-group.c: a member's result; the group's once all have reported. */
void nem_coord_group_result(coord_t *c, const nem_task_result_t *r);
void nem_coord_groups_clear(coord_t *c);
/* Each member's part of sp's --dl-data-collection: k filters by _id range (canonical extended JSON, json[0..k),
 * bson_free each), checked to cover the collection exactly. */
bool nem_coord_shards(coord_t *c, const nem_script_plan_t *sp, size_t position, int k, char **json,
                      bson_error_t *err);
/* The run record's entry for a result, with extra fields (may be NULL). */
void nem_coord_record_entry(coord_t *c, const nem_task_result_t *r, const bson_t *extra);

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
