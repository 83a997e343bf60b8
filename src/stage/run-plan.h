/* What a run does, resolved once from the configuration by app/ (app/plan.c) and handed down: the connection, the
 * stages and their scripts, the writer's policy and the run's identity. Nothing below app/ reads an option: the
 * stages, the writer, provenance, the summary and the store see only these typed values. The plan owns every
 * string in it; nem_run_plan_clear wipes and frees them. */
#ifndef NEM_STAGE_PLAN_H
#define NEM_STAGE_PLAN_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>

#include "openlineage/openlineage.h"
#include "store/store.h"
#include "util/stages.h"
#include "util/strv.h"

/* One script of a stage, at its position in the stage's list (per-script options resolved, repeat-last). */
typedef struct {
    const char *path;           /* the script */
    const char *entry_point;    /* its entry point (plugins and Python) */
    const char *output;         /* documents go here: clean/predict a collection; learn the model bucket */
    const char *model_bucket;   /* models go here: learn = output; the other stages --dl-output-model-collection */
    /* the lineage recorded with any model it stores */
    const char *data_collection;    /* --dl-data-collection: what it reads */
    const char *data_pipeline_json; /* --dl-data-pipeline as canonical extended JSON (stored keys cannot hold '$') */
    /* learn only */
    const char *input_bucket;       /* retraining: the bucket the parent model comes from */
    bson_t *input_pipeline;         /* retraining: the pipeline that picks the parent model; NULL = from scratch */
    int group_size;                 /* --dl-data-parallel: members of its learner group (1 = one process) */
    bson_t *data_pipeline;          /* learner groups: --dl-data-pipeline, to balance the shards; else NULL */
    int64_t checkpoint_keep;        /* --dl-checkpoint-keep: its newest checkpoints kept (store/ckpt.h) */
} nem_script_plan_t;

typedef struct {
    bool enabled;
    size_t n;
    nem_script_plan_t *scripts;
    bson_t args;                /* the options its scripts see: secrets removed, per-script lists padded to n */
} nem_stage_plan_t;

/* The writer's policy for every script's output. */
typedef struct {
    bool provenance;            /* stamp every document (rollback and --resume need it) */
    bool keep_partial;          /* keep what a failed script wrote instead of rolling it back */
    bool keep_checkpoints;      /* --dl-checkpoint-keep-final: a learner's checkpoints outlive its success */
} nem_writer_policy_t;

typedef struct {
    nem_store_opts_t store;     /* the connection; serving may point host at rank 0's server */
    nem_stage_plan_t stages[NEM_STAGE__COUNT];
    nem_writer_policy_t writer;
    bson_t options;             /* the option snapshot stored as lineage (run record, model metadata): no secrets */
    int process_pool;           /* scripts per worker rank in one round */
    int script_timeout_s;       /* 0 = none */
    int checkpoint_grace_s;     /* on a stop, learners get this long to checkpoint and end (0 = stopped at once) */
    bool requeue;               /* --requeue: a requeued Slurm job resumes the run its job started */
    int heartbeat_s;            /* how often rank 0 refreshes the run record's heartbeat */
    const char *resume_id;      /* the run to finish; NULL = a new run */
    const char *run_name;       /* --run-name: the run record's "name"; NULL = none */
    bson_t tags;                /* --tag KEY=VALUE, each: the run record's "tags" {KEY: VALUE}; empty = none */
    bson_t sweep;               /* --sweep: the run record's "sweep" {name, index, overrides}; empty = none */
    bool sweep_resume;          /* --sweep-resume: resume this sweep index's newest unfinished run, if any */
    const char *summary_json;   /* where the JSON summary goes; NULL = nowhere */
    bool list_runs;             /* print the run records instead of running */
    nem_ol_opts_t openlineage;  /* --openlineage: where rank 0 sends the run's OpenLineage events (url NULL: none) */
    const char *python;         /* the interpreter of .py scripts (--python, resolved by app/configure.c); NULL =
                                 * NEMESYST_PYTHON3, else the one nemesyst was built with */
    nem_strv_t owned;           /* every string above */
} nem_run_plan_t;

/* The aggregation stages a learner group may shard under: each maps one input document to its own outputs, so the
 * pipeline's result over disjoint parts of the collection is, put together, its result over the whole. */
bool nem_shardable_stage(const char *name);

/* True when some stage is enabled. */
bool nem_run_plan_any_stage(const nem_run_plan_t *plan);
/* The script at position of stage, or NULL past its list. */
const nem_script_plan_t *nem_run_plan_script(const nem_run_plan_t *plan, nem_stage_t stage, size_t position);
/* A copy the plan owns (NULL stays NULL). */
const char *nem_run_plan_keep(nem_run_plan_t *plan, const char *s);
void nem_run_plan_clear(nem_run_plan_t *plan);

#endif
