/* Runners: a stage script runs in a child process and produces a stream of items that the host writes.
 * Three kinds share this one interface (a vtable per kind, chosen by nem_script_kind):
 *   NEM_SCRIPT_PLUGIN  *.so  run by the nemesyst-plugin-host helper, which dlopens it and calls the entry point
 *   NEM_SCRIPT_PYTHON  *.py  run by python/nemesyst_adapter.py (original-style `def main(**kwargs)` generators)
 *   NEM_SCRIPT_EXEC    anything else that is executable: extended-JSON lines (or BSON) on stdout
 * A crash, a non-zero exit, a timeout or bad output fails that script only.
 *
 * The child's side of the contract (all kinds; the adapter and the plugin host implement it for .py and .so):
 *   stdin   /dev/null
 *   items   EXEC: stdout. Extended JSON, one document per line (blank lines ignored), unless the very first line
 *           is exactly `#nemesyst:bson`: then the rest of stdout is a stream of BSON documents (`#nemesyst:json`
 *           names the default). PYTHON/PLUGIN: a BSON stream on fd NEMESYST_ITEM_FD (3); their stdout is a log.
 *           Every document is at most 16 MiB (NEM_RUNNER_MAX_DOC). A document whose only key is a marker is not
 *           stored but announces something:
 *             {"$nemesyst_model": {"path": "FILE", "metadata": {...}, "temp": BOOL}}
 *                 a model file to upload to GridFS with that metadata; temp: the host deletes FILE afterwards
 *             {"$nemesyst_consumed": {"collection": "C", "pipeline": [...], "count": N, "digest": "SHA256-HEX",
 *                                     "complete": BOOL}}
 *                 data a learner read: count and sha256 over each document's BSON bytes, in cursor order
 *             {"$nemesyst_metric": {"name": "loss", "step": N, "value": X[, "t": DATE]}}
 *                 a metric while the script runs (name 1-128 bytes, step a whole number >= 0, value a number),
 *                 stored in nemesyst_metrics (provenance.h)
 *             {"$nemesyst_checkpoint": {"path": "FILE", "step": N, "metadata": {...}}}
 *                 a checkpoint of a learner's state (EXEC: the other kinds store theirs themselves), stored in
 *                 GridFS (store/ckpt.h) before the next line is read; FILE must stay as it is until then
 *             {"$nemesyst_checkpoint_commit": {"id": ID, "step": N}}
 *                 PYTHON/PLUGIN: the checkpoint the script stored itself, pending, under that GridFS id: the host
 *                 commits it (store/ckpt.h) once everything the script gave before it is stored
 *             {"$nemesyst_code": {"modules": [{"name", "path", "sha256"}], "packages": {NAME: VERSION}, ...}}
 *                 what the script ran beyond its own file (the Python adapter sends it before each model), kept
 *                 in the lineage of the models it stores after it (its latest, whole)
 *             {"$nemesyst_end": {"items": N}}
 *                 the end of the output: N items (documents and markers) came before it, and nothing may follow.
 *                 PYTHON/PLUGIN: required (the adapter and the plugin host send it once the script's entry point
 *                 has returned and every item is flushed), so a script that ends its own process early (exit(),
 *                 _exit(), os._exit(), a signal) fails with NEM_RUNNER_EINCOMPLETE instead of losing what was still
 *                 buffered behind a success. EXEC: optional; when sent, it is checked the same way.
 *           Any other key starting with "$nemesyst" is malformed output.
 *   log     stderr (and stdout for PYTHON/PLUGIN): each line goes to the log prefixed with script, position and
 *           rank; a leading "<3>" (error), "<4>" (warn), "<6>" (info) or "<7>" (debug), sd-daemon style, sets the
 *           level (default info).
 *   verdict the exit status (0 = success), and for PYTHON/PLUGIN (or an EXEC that sent one) the end record with
 *           the right item count: only then has the script succeeded.
 *   env     NEMESYST_STAGE, NEMESYST_POSITION, NEMESYST_RANK, NEMESYST_RUN_ID, NEMESYST_SCRIPT,
 *           NEMESYST_ENTRY_POINT, NEMESYST_DB_URI (no password), NEMESYST_DB_NAME, NEMESYST_ARGS_FILE (the resolved
 *           options as extended JSON, secrets removed), NEMESYST_WORKDIR, NEMESYST_TIMEOUT (seconds, 0 = none),
 *           NEMESYST_INPUT_MODEL and NEMESYST_INPUT_MODEL_ID (retraining only), NEMESYST_ITEM_FD (PYTHON/PLUGIN),
 *           NEMESYST_PASSWORD_FD (only when there is a password: read it to EOF from that inherited pipe; it is
 *           never in argv or the environment, and secret N_* variables are removed from the child's environment),
 *           NEMESYST_TLS_KEY_PASSWORD_FD (likewise, for --db-tls-certificate-key-file-password).
 *           NEMESYST_GROUP_RANK and NEMESYST_GROUP_SIZE (0 and 1 for a script alone). A learner group's member
 *           (--dl-data-parallel K) also gets torch.distributed's MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE,
 *           NEMESYST_SHARD (the filter that picks its part of NEMESYST_SHARD_COLLECTION, canonical extended JSON)
 *           and, for plugins, NEMESYST_GROUP_FD (nemesyst_allreduce's socket).
 *   group   the child leads its own process group: a kill or a timeout takes its whole tree. */
#ifndef NEM_RUNNER_H
#define NEM_RUNNER_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/errors.h"

/* Errors: NEM_ERROR_RUNNER with NEM_RUNNER_E* codes (util/errors.h). */

#define NEM_RUNNER_MAX_DOC (16 * 1024 * 1024)
#define NEM_RUNNER_MARKER_MODEL "$nemesyst_model"
#define NEM_RUNNER_MARKER_CONSUMED "$nemesyst_consumed"
#define NEM_RUNNER_MARKER_END "$nemesyst_end"
#define NEM_RUNNER_MARKER_METRIC "$nemesyst_metric"
#define NEM_RUNNER_MARKER_CHECKPOINT "$nemesyst_checkpoint"
#define NEM_RUNNER_MARKER_CHECKPOINT_COMMIT "$nemesyst_checkpoint_commit"
#define NEM_RUNNER_MARKER_CODE "$nemesyst_code"
#define NEM_RUNNER_METRIC_NAME_MAX 128
#define NEM_RUNNER_ITEM_FD 3

typedef enum { NEM_SCRIPT_PLUGIN, NEM_SCRIPT_PYTHON, NEM_SCRIPT_EXEC } nem_script_kind_t;
nem_script_kind_t nem_script_kind(const char *path);
const char *nem_script_kind_name(nem_script_kind_t kind);

typedef enum {
    NEM_ITEM_DOC,      /* doc: a document for the stage's collection */
    NEM_ITEM_MODEL,    /* doc: metadata; path: file holding the model bytes */
    NEM_ITEM_CONSUMED, /* doc: {collection, pipeline, count, digest} of data a learner read (for lineage) */
    NEM_ITEM_METRIC,   /* doc: {name, step, value, t}: a metric the script reported while it ran */
    NEM_ITEM_CHECKPOINT, /* doc: {step, metadata}; path: the file holding the state */
    NEM_ITEM_CODE,     /* doc: what the script ran beyond its own file (modules, packages, interpreter) */
    NEM_ITEM_CHECKPOINT_COMMIT, /* doc: {id, step}: a checkpoint the script stored pending, to commit */
} nem_item_kind_t;

typedef struct {
    nem_item_kind_t kind;
    bson_t doc;
    char *path;         /* NEM_ITEM_MODEL and NEM_ITEM_CHECKPOINT */
    bool path_is_temp;  /* the host deletes it after upload */
    uint64_t where;     /* line number (JSON lines) or byte offset (BSON) of the item in the script's output */
} nem_item_t;

/* What the child needs. Strings are borrowed for the call to nem_runner_start. */
typedef struct {
    const char *path;          /* the script */
    const char *entry_point;   /* --*-entry-point[i] */
    const char *stage;         /* "clean", "learn" or "predict" */
    size_t position;           /* index in its stage's script list: args["process"] */
    const char *run_id;
    const char *workdir;       /* private directory for this script's temporary files */
    const bson_t *args;        /* the options scripts see, secrets removed (the stage plan's args) */
    const char *db_uri;        /* connection URI without the password */
    const char *db_name;
    const char *password;      /* handed over a pipe (NEMESYST_PASSWORD_FD), never argv or environment */
    const char *tls_key_password; /* --db-tls-certificate-key-file-password, over NEMESYST_TLS_KEY_PASSWORD_FD */
    const char *input_model;   /* path of the parent model file for retraining, or NULL */
    const char *input_model_id;/* its GridFS _id as extended JSON, or NULL */
    int timeout_s;             /* 0 = none */
    int rank;
    /* a learner group's member (group_size > 1; README "Learner groups") */
    int group_size, group_rank;   /* the group's size and this member's index */
    int local_rank, local_size;   /* among the members on this host */
    const char *master_addr;      /* torch.distributed's rendezvous: member 0's host, and a port free there */
    int master_port;
    int group_fd;                 /* the child's end of its nemesyst_allreduce socket (plugins), -1 = none */
    const char *shard_json;       /* its part of --dl-data-collection: a filter, canonical extended JSON */
    const char *shard_collection; /* that collection */
    /* checkpoints (store/ckpt.h) */
    int64_t attempt;              /* the run's attempt (NEMESYST_ATTEMPT), 0 = not known */
    const char *host;             /* this worker's host (NEMESYST_HOST) */
    const char *stop_file;        /* exists once a stop is coming (NEMESYST_STOP_FILE), or NULL */
    const char *checkpoint;       /* executables: the newest checkpoint, downloaded (NEMESYST_CHECKPOINT), or NULL */
    const char *python;           /* .py scripts: the interpreter (an absolute path); NULL = NEMESYST_PYTHON3, else
                                   * the one nemesyst was built with */
} nem_script_spec_t;

typedef struct nem_runner nem_runner_t;

nem_runner_t *nem_runner_start(const nem_script_spec_t *spec, bson_error_t *err);
/* Descriptors still open, to poll for input (items and log output); up to 3, fewer as channels close.
 *
 * Driving runners (the worker): start several; loop { poll(POLLIN) the union of their nem_runner_fds with a
 * timeout of the smallest nem_runner_ms_left; call nem_runner_pump on each runner with a ready fd (or on all:
 * pump never blocks) and on each whose ms_left is 0; when pump returns false or sets *eof, or ms_left is 0, call
 * nem_runner_finish (it kills the script when pump failed or the timeout passed) and nem_runner_destroy }. */
size_t nem_runner_fds(const nem_runner_t *r, int *fds);
/* Reads what is available without blocking and parses complete items, handing each to cb (which takes
 * ownership of the item's contents on true; returning false stops the script with cb's error). Returns false
 * when the script must be failed (bad output, document too big, callback refused) with err set; the script's
 * process group is then killed at once and nem_runner_finish repeats that error. Sets *eof when every channel
 * (items and logs) is closed. Reads at most a few MiB per call so one chatty script cannot starve the others.
 * Lines written to the log channel(s) go to the log prefixed with script and rank. */
typedef bool (*nem_item_cb)(void *ud, nem_item_t *item, bson_error_t *err);
bool nem_runner_pump(nem_runner_t *r, nem_item_cb cb, void *ud, bool *eof, bson_error_t *err);
/* Milliseconds left before the timeout (-1 = none, 0 = expired): callers use it as their poll deadline. */
int nem_runner_ms_left(const nem_runner_t *r);
/* Kills the child's process group (SIGTERM, then SIGKILL after a 2 s grace) and reaps it. */
void nem_runner_kill(nem_runner_t *r);
/* The same without waiting, for a loop that serves other scripts meanwhile: nem_runner_stop sends SIGTERM to the
 * group (once; a script past its timeout is marked timed out), and nem_runner_stopped, called on each pass, sends
 * SIGKILL once the 2 s grace has passed and returns true once the child is reaped. */
void nem_runner_stop(nem_runner_t *r);
bool nem_runner_stopped(nem_runner_t *r);
/* Waits for the child and gives its verdict: true for exit 0; false with err naming script, position and why
 * (exit status with the last line it wrote on stderr, signal name, timeout, or pump's error). Waits no longer than
 * the timeout: kills it when it runs past it. Whatever the verdict, leftovers of its process group are killed. */
bool nem_runner_finish(nem_runner_t *r, bson_error_t *err);
pid_t nem_runner_pid(const nem_runner_t *r);
/* True once the child process has exited (reaps it without blocking); its pipes may still hold output. */
bool nem_runner_exited(nem_runner_t *r);
void nem_runner_destroy(nem_runner_t *r);
void nem_item_clear(nem_item_t *item);

#endif
