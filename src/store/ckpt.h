/* Checkpoints: a training's state, stored in GridFS so that a learner stopped by a time limit, a preemption or a
 * fault goes on from where it was instead of from step 0. One bucket, NEM_CHECKPOINT_BUCKET, in the run's
 * database; each file is one checkpoint of one script of one run, with the metadata
 *   {run, script ("learn-0"), attempt, step, sha256, bytes, host, rank, t, metadata (the script's own)}.
 * A checkpoint is visible only once GridFS has stored its files document, after every chunk, so a save that fails
 * half way leaves no checkpoint; older ones beyond `keep` are deleted only after a newer one is stored and
 * acknowledged, so there is never a moment without a complete checkpoint. A load takes the newest (highest step,
 * then latest upload) whose chunks are all there and whose sha256 matches, and names every one it passed over.
 * Used by libnemesyst (C plugins) and by the host (executables); the Python adapter writes the same format.
 *
 * A checkpoint a script stores itself (C plugins, Python scripts) is saved pending (metadata.pending true) and
 * becomes loadable only when the host commits it (nem_ckpt_commit), on the script's commit marker, once everything
 * the script reported before it (its metrics above all) is stored: a checkpoint says that its steps are done, so
 * a resumed run must never find one whose steps' metrics were lost with a killed rank (the host's buffers). A
 * pending one is never loaded; the next commit of a later attempt, or the run's end, removes it. */
#ifndef NEM_STORE_CKPT_H
#define NEM_STORE_CKPT_H

#include "store/store.h"

#define NEM_CHECKPOINT_BUCKET "nemesyst_checkpoints"
#define NEM_CHECKPOINT_KEEP_DEFAULT 2

/* Who saves a checkpoint; strings are borrowed. metadata may be NULL. */
typedef struct {
    const char *run_id, *script; /* the run and the script's key ("learn-0") */
    int64_t attempt;             /* 1 for a run's first try, then one more per --resume */
    int64_t step;                /* the script's own count (a step, an epoch), >= 0 */
    const char *host;
    int rank;
    const bson_t *metadata;
    bool pending;                /* stored pending: loadable once nem_ckpt_commit commits it */
} nem_ckpt_info_t;

/* Stores a checkpoint from memory or from a file, then (unless info->pending) keeps only the `keep` newest of this
 * run's script (keep >= 1). id (may be NULL) receives the stored file's id (bson_value_destroy it). False with err
 * set when it could not be stored (the older ones are then untouched). */
bool nem_ckpt_save_buffer(nem_store_t *store, const nem_ckpt_info_t *info, const uint8_t *data, size_t len,
                          int64_t keep, bson_value_t *id, bson_error_t *err);
bool nem_ckpt_save_file(nem_store_t *store, const nem_ckpt_info_t *info, const char *path, int64_t keep,
                        bson_value_t *id, bson_error_t *err);
/* Commits the pending checkpoint id of run_id's script: it becomes loadable; then only the `keep` newest committed
 * ones are kept, and the pending ones of attempts before `attempt` (never committed: their rank died) go. An id that
 * names no pending checkpoint of that script in that run (a bogus or repeated commit marker) is refused
 * (NEM_STORE_ENOTFOUND, naming the id), and nothing is pruned. */
bool nem_ckpt_commit(nem_store_t *store, const char *run_id, const char *script, const bson_value_t *id,
                     int64_t attempt, int64_t keep, bson_error_t *err);

/* What a load found. */
typedef struct {
    int64_t step, attempt;
    bson_t metadata;   /* the script's own metadata ({} when none); bson_destroy it */
    char sha256[65];
    char skipped[1024]; /* the checkpoints passed over (corrupt or incomplete), "" when none */
} nem_ckpt_found_t;

/* The newest usable checkpoint of run_id's script, into a new buffer (bson_free it) or a file. Returns 1 when one
 * was loaded (found filled), 0 when the script has none (not an error), -1 with err set on a server error or when
 * every one is unusable (err then names each one tried and why). */
int nem_ckpt_load_buffer(nem_store_t *store, const char *run_id, const char *script, uint8_t **data, size_t *len,
                         nem_ckpt_found_t *found, bson_error_t *err);
int nem_ckpt_load_file(nem_store_t *store, const char *run_id, const char *script, const char *path,
                       nem_ckpt_found_t *found, bson_error_t *err);

/* The step of the newest checkpoint of run_id's script, -1 when it has none, -2 with err set on a server error. */
int64_t nem_ckpt_newest_step(nem_store_t *store, const char *run_id, const char *script, bson_error_t *err);

/* A learner that goes on from an older checkpoint than its newest (the newer ones were unusable) logs again the
 * steps after it: this deletes what its earlier attempt logged after step in collection (the metrics, whose
 * documents carry run, script and step), so every step appears once. */
bool nem_ckpt_trim_after(nem_store_t *store, const char *collection, const char *run_id, const char *script,
                         int64_t step, bson_error_t *err);

/* Deletes the checkpoints of run_id (of one script, or of all its scripts when script is NULL). */
bool nem_ckpt_remove(nem_store_t *store, const char *run_id, const char *script, uint64_t *deleted, bson_error_t *err);

#endif
