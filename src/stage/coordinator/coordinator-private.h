/* Rank 0's parts, private to src/stage/coordinator: the state, the transport (transport.c), the run record's life
 * (run-record.c), learner groups (learner-groups.c), the resume policy (resume.c) and the rounds (coordinator.c). */
#ifndef NEM_STAGE_COORDINATOR_PRIVATE_H
#define NEM_STAGE_COORDINATOR_PRIVATE_H

#include "stage/coordinator/coordinator.h"
#include "stage/coordinator/pack.h"
#include "stage/coordinator/summary.h"
#include "openlineage/openlineage.h"
#include "util/status.h"

#define NEM_PROGRESS_MS 5000
#define NEM_RECORD_FLUSH_MS 1000
#define NEM_HOSTLEN ((int)sizeof(((nem_world_t *)0)->host))

/* A learner group of the round being run, until every member has reported. */
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

typedef struct coord {
    const nem_world_t *world;
    const nem_run_plan_t *plan;
    nem_store_t *store;
    nem_pack_env_t pack;  /* the world as round packing sees it */
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
    int64_t beat_ms;     /* when the run record's heartbeat was last refreshed */
    bool beat_failed;    /* a heartbeat write failed (warned once) */
    char *hosts;         /* every rank's host, NEM_HOSTLEN each */
    coord_group_t *groups; /* the learner groups of the round under way */
    size_t n_groups;
    int round;           /* the round's number in the run (abort messages name it) */
    int *aborts_sent;    /* abort messages sent to each rank */
    nem_ol_t *ol;        /* --openlineage: the run's events (NULL: none) */
    char ol_run_uuid[37];  /* the run's OpenLineage runId */
    char ol_ns[300];     /* the datasets' namespace: mongodb://HOST:PORT */
    bson_t ol_open;      /* scripts with a START event: {"clean-0": {stage, position, open}} */
    bool ol_open_init;
} coord_t;

/* transport.c: rank 0's end of the messages (message.h). What arrives is handed back as an event; what to do with
 * it is the coordinator's. */
typedef enum { NEM_EV_NONE, NEM_EV_RESULT, NEM_EV_PROGRESS, NEM_EV_ROUND_DONE, NEM_EV_BAD } nem_event_kind_t;
typedef struct {
    nem_event_kind_t kind;
    int source;
    nem_task_result_t result;   /* NEM_EV_RESULT */
    uint64_t documents;         /* NEM_EV_PROGRESS */
    char why[512];              /* NEM_EV_BAD: what was wrong with the message */
} nem_event_t;

/* The next message from a worker, waiting up to wait_ms (NEM_EV_NONE when none came). */
void nem_coord_next_event(int wait_ms, nem_event_t *ev);
/* Tells rank that the learner group index of this round failed (why: which member, where). */
void nem_coord_send_abort(coord_t *c, int rank, int group, const char *why);

/* learner-groups.c: a member's result; the group's once all have reported. */
void nem_coord_group_result(coord_t *c, const nem_task_result_t *r);
void nem_coord_groups_clear(coord_t *c);
/* Registers the round's learner group index, whose member m runs on ranks[m] (copied) and reads shards[m] (taken). */
void nem_coord_group_add(coord_t *c, nem_stage_t stage, size_t position, int index, int size, const int *ranks,
                         char **shards);
/* Each member's part of sp's --dl-data-collection: k filters by _id range (canonical extended JSON, json[0..k),
 * bson_free each), checked to cover the collection exactly. */
bool nem_coord_shards(coord_t *c, const nem_script_plan_t *sp, size_t position, int k, char **json,
                      bson_error_t *err);

/* run-record.c: the run record's life. */
void nem_coord_record_entry(coord_t *c, const nem_task_result_t *r, const bson_t *extra);
void nem_coord_heartbeat(coord_t *c);
void nem_coord_flush(coord_t *c);

/* lineage-events.c: --openlineage's events, for the run and for each script. */
void nem_coord_ol_run_start(coord_t *c);
void nem_coord_ol_script_start(coord_t *c, nem_stage_t stage, size_t position);
void nem_coord_ol_script_end(coord_t *c, const nem_task_result_t *r, const bson_t *extra);
void nem_coord_ol_run_end(coord_t *c, nem_status_t status, const char *error);
void nem_coord_ol_destroy(coord_t *c);

/* resume.c: which scripts a resumed run reruns, and whether it may. */
bool nem_coord_already_succeeded(const coord_t *c, nem_stage_t stage, size_t pos);
bool nem_coord_same_scripts(const coord_t *c, bson_error_t *err);
/* A resumed learn stage: its options are the run's (naming the first that changed). */
bool nem_coord_same_options(const coord_t *c, bson_error_t *err);

#endif
