/* Stages and their scripts: what the coordinator deals out and the workers run. */
#ifndef NEM_STAGE_H
#define NEM_STAGE_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

#include "stage/plan.h"
#include "util/clock.h"
#include "util/stages.h"
#include "util/world.h"

/* A metric's last value as the script reported it (the history is in nemesyst_metrics); model: the GridFS id (24
 * hex digits) of the model it was measured on, when the script had loaded one (a predictor's test accuracy). */
#define NEM_RESULT_METRICS 8
typedef struct {
    char name[129];
    double value;
    int64_t step;
    char model[25];
} nem_result_metric_t;

/* What a worker reports for one script (also the run record's per-script entry). */
typedef struct {
    nem_stage_t stage;
    size_t position;
    bool ok;
    int64_t started_ms, ended_ms;   /* milliseconds since the epoch */
    uint64_t documents, models;
    char error[512];
    int rank;
    char host[64];
    nem_result_metric_t metrics[NEM_RESULT_METRICS]; /* the first metrics the script reported, each at its last */
    size_t n_metrics;
    /* learner groups (--dl-data-parallel): a member's own result, before rank 0 makes the group's of them */
    int member;                 /* this member's index in its group; -1 for the group's result */
    int group_size;             /* 1: not in a group */
    bool group_stopped;         /* it was stopped because another member failed (its error is not the cause) */
    int64_t consumed;           /* documents of its last complete read of --dl-data-collection, -1 = none */
    char consumed_digest[65];   /* their sha256 */
    char model[25];             /* the first model it stored (GridFS id), "" = none */
} nem_task_result_t;

void nem_task_result_to_bson(const nem_task_result_t *r, const char *path, bson_t *out);
bool nem_task_result_from_bson(nem_task_result_t *r, const bson_t *doc);


/* Runs every enabled stage over MPI: rank 0 coordinates, the other ranks work (rank 0 works too when alone).
 * Returns the exit status, the same on every rank. */
int nem_stages_run(const nem_world_t *world, const nem_run_plan_t *plan);

#endif
