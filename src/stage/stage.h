/* Stages and their scripts: what the coordinator deals out and the workers run. */
#ifndef NEM_STAGE_H
#define NEM_STAGE_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

#include "app/app.h"
#include "config/config.h"
#include "util/clock.h"

typedef enum { NEM_STAGE_CLEAN, NEM_STAGE_LEARN, NEM_STAGE_PREDICT, NEM_STAGE__COUNT } nem_stage_t;

typedef struct {
    const char *name;       /* "clean", "learn", "predict" */
    nem_opt_id_t flag;      /* --data-clean ... */
    nem_opt_id_t scripts;   /* --data-cleaner ... */
    nem_opt_id_t entry;     /* --data-cleaner-entry-point ... */
    nem_opt_id_t output;    /* collection (clean, predict) or GridFS bucket (learn) */
} nem_stage_info_t;

const nem_stage_info_t *nem_stage_info(nem_stage_t stage);
bool nem_stage_from_name(const char *name, nem_stage_t *out);

/* The key of a script in run records and provenance: "clean-0". */
void nem_script_key(nem_stage_t stage, size_t position, char *buf, size_t len);

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
} nem_task_result_t;

void nem_task_result_to_bson(const nem_task_result_t *r, const char *path, bson_t *out);
bool nem_task_result_from_bson(nem_task_result_t *r, const bson_t *doc);


/* Runs every enabled stage over MPI: rank 0 coordinates, the other ranks work (rank 0 works too when alone).
 * Returns the exit status, the same on every rank. */
int nem_stages_run(const nem_world_t *world, nem_config_t *cfg);

#endif
