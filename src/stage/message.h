/* Every message MPI carries between the ranks of a run, in one place: for each, its C form, an encoder and a
 * decoder side by side, and (message.c) how it travels. Every message carries NEM_MESSAGE_VERSION; a rank that
 * receives another version stops the run with a message naming both (ranks of one run must run one nemesyst).
 *
 *   hello       rank 0 -> all, broadcast once: the run's id, attempt and whether it may start
 *   round plan  rank 0 -> all, broadcast per round: the stage, the round's tasks, abort counts; or the stage's end
 *   result      worker -> rank 0, as each script ends (also the run record's per-script entry, without version)
 *   progress    worker -> rank 0, documents written, at most once a second
 *   round done  worker -> rank 0, this rank's part of the round is over
 *   abort       rank 0 -> worker, a learner group failed: stop its members here
 *   group header  among a learner group's ranks, an MPI_MAX allreduce per step (worker/learner-group.c)
 *
 * The codecs are pure (no MPI, no server), so tests/unit/test_stage.c checks each round trip. */
#ifndef NEM_STAGE_MESSAGE_H
#define NEM_STAGE_MESSAGE_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

#include "stage/run-plan.h"
#include "util/clock.h"
#include "util/stages.h"
#include "util/world.h"

#define NEM_MESSAGE_VERSION 1

/* --- result --- */

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
    bool interrupted;           /* it failed because the run was interrupted (a signal), not of itself: OpenLineage's
                                 * ABORT rather than FAIL (carried in the result message, not in the run record) */
} nem_task_result_t;

/* The run record's entry (path: the script's, or NULL). */
void nem_task_result_to_bson(const nem_task_result_t *r, const char *path, bson_t *out);
/* Reads a run record's entry or a result message; false when doc is not BSON. */
bool nem_task_result_from_bson(nem_task_result_t *r, const bson_t *doc);
void nem_msg_result_encode(const nem_task_result_t *r, bson_t *out);
bool nem_msg_result_decode(const bson_t *msg, nem_task_result_t *r, bson_error_t *err);

/* --- hello --- */

typedef struct {
    int status;          /* -1: the run goes on; else every rank ends with this exit status */
    char run_id[64];
    int64_t attempt;
    bool resumed;
    bool legacy;         /* the run keeps the first provenance stamp format */
} nem_msg_hello_t;

void nem_msg_hello_encode(const nem_msg_hello_t *h, bson_t *out);
bool nem_msg_hello_decode(const bson_t *msg, nem_msg_hello_t *h, bson_error_t *err);

/* --- round plan --- */

/* One task of a round: a script for one rank, or one member of a learner group. */
typedef struct {
    size_t position;     /* the script's position in its stage */
    int rank;            /* the rank that runs it */
    int member;          /* its index in its learner group, -1 alone */
    int size;            /* its group's size, 1 alone */
    int group;           /* its group's index in the round, -1 alone */
    int local_rank, local_size; /* among the group's members on its host */
    char *master;        /* torch.distributed's rendezvous host (groups), else NULL */
    char *shard;         /* its part of --dl-data-collection, canonical extended JSON (groups), else NULL */
} nem_round_task_t;

typedef struct {
    bool end;            /* the stage is over: no tasks */
    nem_stage_t stage;
    int round;           /* its number in the run (abort messages name it) */
    nem_round_task_t *tasks;
    size_t n_tasks;
    int *aborts;         /* abort messages rank 0 has sent each rank so far, NULL = none ever */
    int n_ranks;
} nem_round_t;

void nem_msg_round_encode(const nem_round_t *r, bson_t *out);
/* r is initialised from msg and owns what it holds; nem_round_clear frees it. */
bool nem_msg_round_decode(const bson_t *msg, nem_round_t *r, bson_error_t *err);
void nem_round_clear(nem_round_t *r);
/* The number of learner groups in the round (their indexes are 0..n). */
size_t nem_round_groups(const nem_round_t *r);

/* --- progress and abort --- */

void nem_msg_progress_encode(uint64_t documents, bson_t *out);
bool nem_msg_progress_decode(const bson_t *msg, uint64_t *documents, bson_error_t *err);

typedef struct {
    int round, group;
    char why[512];
} nem_msg_abort_t;

void nem_msg_abort_encode(const nem_msg_abort_t *a, bson_t *out);
bool nem_msg_abort_decode(const bson_t *msg, nem_msg_abort_t *a, bson_error_t *err);

/* --- the learner group header --- */

/* What one rank of a learner group says at a step. The ranks combine their headers with an MPI_MAX allreduce over
 * NEM_GROUP_HEADER_LEN int64 values; each value that must agree travels with its negation, so the maximum of both
 * gives the largest and the smallest. */
#define NEM_GROUP_HEADER_LEN 10
typedef struct {
    bool ended;          /* a member here ended (succeeded or failed) */
    int64_t failed;      /* 0 none; member + 1 of a member that failed here; the group's size + 1: failed, no member */
    uint64_t count;      /* the reduction the waiting members ask for (0: none asks) */
    uint32_t dtype, op;
} nem_group_header_t;

typedef enum {
    NEM_GROUP_REDUCE,          /* every member asks for the same reduction: run it */
    NEM_GROUP_OVER,            /* the members ended, none is reducing */
    NEM_GROUP_MEMBER_FAILED,   /* *member failed */
    NEM_GROUP_FAILED,          /* the group failed, without one member to name */
    NEM_GROUP_ENDED_REDUCING,  /* a member ended while another still reduces */
    NEM_GROUP_DISAGREE,        /* the members asked for different reductions (*min_count to *max_count) */
    NEM_GROUP_VERSION,         /* the ranks run different nemesyst message versions */
} nem_group_verdict_t;

void nem_group_header_encode(const nem_group_header_t *h, int64_t out[NEM_GROUP_HEADER_LEN]);
/* What every rank concludes from the combined header of a group of size members: the verdict, and for
 * NEM_GROUP_REDUCE the agreed count, dtype and op in *h; *a and *b say which member failed (*a) or the count range
 * (*a to *b), as the verdict needs. */
nem_group_verdict_t nem_group_header_decode(const int64_t in[NEM_GROUP_HEADER_LEN], int size,
                                            nem_group_header_t *h, int64_t *a, int64_t *b);

/* --- how they travel (MPI_COMM_WORLD) --- */

enum { NEM_TAG_RESULT = 11, NEM_TAG_ROUND_DONE = 12, NEM_TAG_PROGRESS = 13, NEM_TAG_ABORT = 14 };

/* Broadcasts a BSON message from rank 0; on other ranks msg is initialised from what arrived. */
void nem_msg_bcast(const nem_world_t *world, bson_t *msg);
/* Sends a BSON message (NULL: an empty one) to rank dest with tag. */
void nem_msg_send(const bson_t *msg, int dest, int tag);
/* Receives the message that MPI_Probe found (source, tag) into msg; false when it is not BSON (msg empty). */
bool nem_msg_recv(int source, int tag, int len, bson_t *msg);

#endif
