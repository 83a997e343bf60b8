/* A worker runs the scripts it is handed for one round, all at once, and reports each as it ends. */
#ifndef NEM_WORKER_H
#define NEM_WORKER_H

#include "stage/message.h"
#include "stage/worker/learner-group.h"
#include "store/store.h"

typedef struct {
    const nem_world_t *world;
    const nem_run_plan_t *plan;
    nem_store_t *store;
    const char *run_id;
    bool resume;            /* purge what an earlier try of each script wrote before running it */
    bool legacy_stamp;      /* the run keeps the first provenance stamp format (provenance.h) */
    void (*progress)(uint64_t documents, void *ud); /* documents written since the last call; may be NULL */
    void *progress_ud;
    /* learner groups: the group (its index in the round) whose abort rank 0 sent, or -1; may be NULL */
    int (*poll_abort)(void *ud, char *why, size_t len);
    int64_t attempt;        /* the run's attempt this job makes (1, then one more per --resume) */
} nem_worker_ctx_t;

/* One script of the round for this rank. */
typedef struct {
    size_t position;
    int member;             /* its index in its learner group; -1 alone */
    int group_size;         /* 1 alone */
    int group_index;        /* its group's index in the round */
    nem_learner_group_t *group;     /* this rank's part of the group (NULL alone); the caller owns it */
    size_t slot;            /* this member's slot in group */
    int local_rank, local_size;
    const char *master_addr;
    int master_port;
    const char *shard_json; /* its part of --dl-data-collection */
} nem_worker_task_t;

typedef void (*nem_result_cb)(const nem_task_result_t *result, void *ud);

/* Runs the scripts tasks[0..n) of stage concurrently; calls done() for each as it ends; returns once every one
 * has ended and every group is over. */
void nem_worker_run(const nem_worker_ctx_t *ctx, nem_stage_t stage, const nem_worker_task_t *tasks, size_t n,
                    nem_result_cb done, void *ud);

/* --- the worker's link to rank 0 (link.c) --- */

typedef struct {
    const nem_world_t *world;
    uint64_t unsent;        /* documents written but not yet reported */
    int64_t sent_ms;
    int aborts_received;
    int round;              /* the round under way (an abort of another is late, and dropped) */
} nem_link_t;

/* A result to rank 0 as soon as a script ends (a nem_result_cb). */
void nem_link_send_result(const nem_task_result_t *r, void *link);
/* Documents written, at most once a second (a nem_worker_ctx_t progress callback). */
void nem_link_progress(uint64_t documents, void *link);
/* What is left unsent, then the end of this rank's part of the round. */
void nem_link_round_done(nem_link_t *l);
/* The group index (of this round) whose abort arrived, with why; -1 when none is waiting (a poll_abort). */
int nem_link_poll_abort(void *link, char *why, size_t len);
/* Receives the aborts rank 0 says it sent this rank (a round plan's), late ones of an earlier round included. */
void nem_link_drain_aborts(nem_link_t *l, const nem_round_t *plan);

/* --- rounds (round.c) --- */

/* Every rank, each round: takes part in the communicators of the round's learner groups (MPI_Comm_split is
 * collective), then runs the round's tasks for this rank when done is not NULL, calling it for each result. */
void nem_worker_round(const nem_world_t *world, const nem_round_t *round, const nem_worker_ctx_t *wctx,
                      nem_result_cb done, void *ud);
/* Ranks other than 0: receives round plans and runs them until the stage's end. */
void nem_worker_stage(nem_link_t *l, const nem_worker_ctx_t *wctx);

#endif
