/* A worker runs the scripts it is handed for one round, all at once, and reports each as it ends. */
#ifndef NEM_WORKER_H
#define NEM_WORKER_H

#include "stage/group.h"
#include "stage/stage.h"
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
    nem_group_t *group;     /* this rank's part of the group (NULL alone); the caller owns it */
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

#endif
