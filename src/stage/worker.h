/* A worker runs the scripts it is handed for one round, all at once, and reports each as it ends. */
#ifndef NEM_WORKER_H
#define NEM_WORKER_H

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
} nem_worker_ctx_t;

typedef void (*nem_result_cb)(const nem_task_result_t *result, void *ud);

/* Runs the scripts at positions[0..n) of stage concurrently; calls done() for each as it ends. */
void nem_worker_run(const nem_worker_ctx_t *ctx, nem_stage_t stage, const size_t *positions, size_t n,
                    nem_result_cb done, void *ud);

#endif
