/* Nemesyst plugin API: write a stage script (cleaner, learner, predictor) in C as a shared object.
 *
 * Build:   cc -shared -fPIC -o my_learner.so my_learner.c $(pkg-config --cflags --libs nemesyst)
 * Run:     nemesyst --dl-learn --dl-learner ./my_learner.so --dl-learner-entry-point train
 *
 * The plugin runs in a child process (nemesyst-plugin-host), so a crash or a hang fails that script only. The host
 * calls the entry point named by --data-cleaner-entry-point / --dl-learner-entry-point / --i-predictor-entry-point
 * for this script. Its type is nemesyst_entry_fn; the default name "main" is looked up as the symbol
 * `nemesyst_main` (C reserves `main`), any other name as itself:
 *
 *     bool nemesyst_main(nemesyst_ctx_t *ctx, bson_error_t *error)
 *     {
 *         bson_t *doc = BCON_NEW("x", BCON_INT32(1));
 *         bool ok = nemesyst_emit(ctx, doc, error);
 *         bson_destroy(doc);
 *         return ok;
 *     }
 *
 * Returning true means success; returning false fails the script and error->message goes to the log. Items
 * (documents, models) are streamed to the host, which does all writing to MongoDB with provenance.
 * The contract: a script has succeeded only when its entry point returned true AND every item it emitted is
 * stored, acknowledged by the server. Items are buffered in the plugin's process; after the entry point returns,
 * the host helper flushes them and sends an end-of-output record with their count. A plugin that ends its own
 * process instead (exit(), _exit(), abort(), a signal) has no end record: the script fails ("before its output was
 * complete") and what reached the host is rolled back. Never end the process from a plugin; return.
 * Errors follow libbson's convention: functions return false (or NULL) and fill the bson_error_t (domain
 * NEMESYST_ERROR_DOMAIN, or libmongoc's domains for server errors); error may be NULL.
 * A context is used from the thread that called the entry point.
 *
 * Compatibility (README.md, "Plugin compatibility"): a plugin built with this header carries the nemesyst
 * major.minor it was built against (NEMESYST_VERSION_MAJOR/MINOR), and nemesyst-plugin-host loads it only when its
 * own nemesyst has the same major and a minor no older than the plugin's; any other plugin is refused with both
 * versions named, before its entry point runs. A minor release only adds to this API (a new function, a new error
 * code, a new enum value at the end); a major release may change or remove something, and plugins are rebuilt.
 * Only what this header declares is exported by libnemesyst (NEMESYST_EXTERN). The libbson and libmongoc types in
 * it (bson_t, bson_value_t, bson_error_t, mongoc_database_t) are those libraries' own ABI: build a plugin against
 * the same libbson/libmongoc major (1.x) as nemesyst. Nothing nemesyst hands out is the plugin's to free unless
 * the function says so (the buffers of nemesyst_model_fetch, nemesyst_input_model, nemesyst_checkpoint_load, freed
 * with bson_free; the bson_t a function initialises, destroyed with bson_destroy; nemesyst_batches_t, destroyed with
 * nemesyst_batches_destroy); borrowed pointers (nemesyst_database, nemesyst_options, ...) live as long as the
 * context. Nothing a plugin passes in is kept beyond the call (nemesyst_emit sends a copy). */
#ifndef NEMESYST_H
#define NEMESYST_H

#include <bson/bson.h>
#include <mongoc/mongoc.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* --- versions --- */

/* The version of nemesyst this header belongs to (configure checks it against the package version). The major.minor
 * pair is the plugin ABI: see "Compatibility" above. */
#define NEMESYST_VERSION_MAJOR 3
#define NEMESYST_VERSION_MINOR 1
#define NEMESYST_VERSION_PATCH 0
#define NEMESYST_VERSION_HEX ((NEMESYST_VERSION_MAJOR << 16) | (NEMESYST_VERSION_MINOR << 8) | NEMESYST_VERSION_PATCH)
#define NEMESYST__STR(x) #x
#define NEMESYST__XSTR(x) NEMESYST__STR(x)
#define NEMESYST_VERSION_STRING                                                                                       \
    NEMESYST__XSTR(NEMESYST_VERSION_MAJOR)                                                                            \
    "." NEMESYST__XSTR(NEMESYST_VERSION_MINOR) "." NEMESYST__XSTR(NEMESYST_VERSION_PATCH)
/* True when this header is at least version major.minor.patch: #if NEMESYST_VERSION_AT_LEAST(3, 1, 0). */
#define NEMESYST_VERSION_AT_LEAST(maj, min, pat) (NEMESYST_VERSION_HEX >= (((maj) << 16) | ((min) << 8) | (pat)))
/* Deprecated, kept so that older plugins still compile: the plugin API before it had a major and a minor. Its one
 * version, 1, is nemesyst 3.0; a plugin stamped with it (the int nemesyst_plugin_api_version, by the 3.0 header) is
 * loaded as one built against 3.0. It never changes again. */
#define NEMESYST_API_VERSION 1

/* Every public function is declared NEMESYST_EXTERN; libnemesyst is built with -fvisibility=hidden, so nothing else
 * in it is exported. */
#if defined(__GNUC__) || defined(__clang__)
#define NEMESYST_EXTERN __attribute__((visibility("default")))
#else
#define NEMESYST_EXTERN
#endif

/* The stamp: every plugin (C or C++) built with this header holds nemesyst_plugin_abi, the major.minor it was built
 * against, and nemesyst-plugin-host reads it before it calls anything in the plugin. It is weak, so a plugin of
 * many files holds one; exported (visibility "default"), so -fvisibility=hidden in a plugin keeps it. A plugin
 * without it (built by another compiler, or with NEMESYST_NO_API_STAMP, which libnemesyst and the host define) is
 * loaded unchecked. */
typedef struct {
    unsigned major_version; /* NEMESYST_VERSION_MAJOR of the header the plugin was built with */
    unsigned minor_version; /* NEMESYST_VERSION_MINOR */
} nemesyst_plugin_abi_t;
#if !defined(NEMESYST_NO_API_STAMP) && (defined(__GNUC__) || defined(__clang__))
/* C++ needs the extern on the definition itself (a const object is local to its file otherwise); in C it would
 * draw a warning, and the declaration before the definition is all C needs. */
#ifdef __cplusplus
#define NEMESYST__STAMP_LINKAGE extern
#else
#define NEMESYST__STAMP_LINKAGE
#endif
extern const nemesyst_plugin_abi_t nemesyst_plugin_abi;
__attribute__((weak, visibility("default"), used)) NEMESYST__STAMP_LINKAGE const nemesyst_plugin_abi_t
    nemesyst_plugin_abi = {NEMESYST_VERSION_MAJOR, NEMESYST_VERSION_MINOR};
#endif

/* The version of the libnemesyst running the plugin, which may be newer than the header it was built with:
 * NEMESYST_VERSION_HEX's layout ((major << 16) | (minor << 8) | patch), and as text ("3.1.0"). Since 3.1. */
NEMESYST_EXTERN unsigned nemesyst_version(void);
NEMESYST_EXTERN const char *nemesyst_version_string(void);

#define NEMESYST_ERROR_DOMAIN 1100
enum {
    NEMESYST_EARG = 1,     /* bad argument */
    NEMESYST_EIO = 2,      /* reading or writing a file or the host pipe failed */
    NEMESYST_ETOOBIG = 3,  /* a document over 16 MiB */
    NEMESYST_ENOOPT = 4,   /* the option is not set, or has another type */
    NEMESYST_ENOMODEL = 5, /* no input model (not retraining) or no such stored model */
    NEMESYST_EDB = 6,      /* cannot connect to the database */
    NEMESYST_ENOCHECKPOINT = 7, /* nemesyst_checkpoint_load: this script has no checkpoint yet (start from step 0) */
};

typedef struct nemesyst_ctx nemesyst_ctx_t;
typedef bool (*nemesyst_entry_fn)(nemesyst_ctx_t *ctx, bson_error_t *error);

/* --- who am I --- */

/* The stage this script runs in: "clean", "learn" or "predict". */
NEMESYST_EXTERN const char *nemesyst_stage(const nemesyst_ctx_t *ctx);
/* This script's index in its stage's list (the original's args["process"]); the per-script option getters use
 * it. */
NEMESYST_EXTERN size_t nemesyst_position(const nemesyst_ctx_t *ctx);
/* The run's id: stored with every item by the host; useful in model metadata or file names. */
NEMESYST_EXTERN const char *nemesyst_run_id(const nemesyst_ctx_t *ctx);
/* A private directory for this script's temporary files; removed by the host after the run. */
NEMESYST_EXTERN const char *nemesyst_workdir(const nemesyst_ctx_t *ctx);

/* --- items --- */

/* Sends a copy of doc to the host, which inserts it into the stage's collection (cleaners: --data-collection,
 * predictors: --i-output-prediction-collection) with a provenance field. The caller keeps doc. Fails with
 * NEMESYST_ETOOBIG over 16 MiB, NEMESYST_EARG when a top-level key starts with '$', NEMESYST_EIO when the host is
 * gone. */
NEMESYST_EXTERN bool nemesyst_emit(nemesyst_ctx_t *ctx, const bson_t *doc, bson_error_t *error);

/* Sends a model of len bytes with its metadata (may be NULL) to the host, which stores it in GridFS
 * (--dl-output-model-collection) with lineage added to the metadata (run, script, options, the data this script
 * consumed). The bytes are written to a file in the workdir first, so they need not fit the pipe. */
NEMESYST_EXTERN bool nemesyst_emit_model(nemesyst_ctx_t *ctx, const bson_t *metadata, const uint8_t *data, size_t len,
                                         bson_error_t *error);

/* Like nemesyst_emit_model, from an existing file (large models, HDF5 files). When remove_after is true the host
 * deletes the file once it is stored; the file must stay in place until the script has ended. */
NEMESYST_EXTERN bool nemesyst_emit_model_file(nemesyst_ctx_t *ctx, const bson_t *metadata, const char *path,
                                              bool remove_after, bson_error_t *error);

/* Reports a metric while the script runs (a loss per epoch, an accuracy per batch): the host stores it, in bulk,
 * in the collection nemesyst_metrics with the run, the script and, once the script stored one, its model;
 * nemesyst-registry metrics RUN_ID shows the history. name: 1 to 128 bytes; step: an epoch or batch number, >= 0.
 * NEMESYST_EARG for a bad name or step. */
NEMESYST_EXTERN bool nemesyst_log_metric(nemesyst_ctx_t *ctx, const char *name, int64_t step, double value,
                                         bson_error_t *error);

/* --- options --- */

/* The resolved options of the run, secrets removed: {"dl-batch-size": [32], "db-name": "nemesyst", ...} with
 * per-script options as arrays. Borrowed; valid for the context's lifetime. */
NEMESYST_EXTERN const bson_t *nemesyst_options(const nemesyst_ctx_t *ctx);

/* Getters for one option for this script: name as on the command line without dashes ("dl-batch-size"; '_' may
 * stand for '-'); a list option is indexed by nemesyst_position with repeat-last semantics (a script past the end
 * of a short list gets its last value). Return false with NEMESYST_ENOOPT when unset or of another type. *out
 * of nemesyst_opt_str is borrowed from the context. */
NEMESYST_EXTERN bool nemesyst_opt_str(const nemesyst_ctx_t *ctx, const char *name, const char **out,
                                      bson_error_t *error);
NEMESYST_EXTERN bool nemesyst_opt_int(const nemesyst_ctx_t *ctx, const char *name, int64_t *out, bson_error_t *error);
NEMESYST_EXTERN bool nemesyst_opt_bool(const nemesyst_ctx_t *ctx, const char *name, bool *out, bson_error_t *error);
/* A JSON option (a pipeline), inline JSON or the path of a file holding it, parsed into out (initialised by the
 * call, also on failure; destroy it). A JSON array becomes the document {"0": ..., "1": ...}, which is what
 * nemesyst_batches_new and libmongoc take as a pipeline. */
NEMESYST_EXTERN bool nemesyst_opt_json(const nemesyst_ctx_t *ctx, const char *name, bson_t *out, bson_error_t *error);

/* --- data --- */

/* The database of the run (--db-name), connected on first use with the run's credentials. Borrowed: do not
 * destroy it. For anything beyond nemesyst_batches_*, e.g. queries of your own; what you write through it
 * directly bypasses provenance and rollback. */
NEMESYST_EXTERN mongoc_database_t *nemesyst_database(nemesyst_ctx_t *ctx, bson_error_t *error);

typedef struct nemesyst_batches nemesyst_batches_t;

/* Runs the aggregation pipeline (an array-like document {"0": {...}, ...}, or NULL for all documents) on
 * collection with a cursor of batch_size documents per round trip, and hands them out batch_size at a time.
 * The documents read are counted and hashed (sha256 over each document's BSON bytes, in order); when the cursor
 * is exhausted (or the batches are destroyed early, marked incomplete) the host is told, and a model this script
 * emits afterwards records that as the data it was trained on. */
NEMESYST_EXTERN nemesyst_batches_t *nemesyst_batches_new(nemesyst_ctx_t *ctx, const char *collection,
                                                         const bson_t *pipeline, size_t batch_size,
                                                         bson_error_t *error);
/* Sets *docs to the next batch of *n (1..batch_size) documents, valid until the next call. Never hands out an
 * empty batch: returns false at the end with error->code == 0, or on a server error with error->code != 0. */
NEMESYST_EXTERN bool nemesyst_batches_next(nemesyst_batches_t *b, const bson_t *const **docs, size_t *n,
                                           bson_error_t *error);
/* Documents handed out so far, and the hex sha256 over them (65 bytes with the NUL). */
NEMESYST_EXTERN uint64_t nemesyst_batches_count(const nemesyst_batches_t *b);
NEMESYST_EXTERN void nemesyst_batches_digest(const nemesyst_batches_t *b, char hex[65]);
NEMESYST_EXTERN void nemesyst_batches_destroy(nemesyst_batches_t *b);

/* --- learner groups (--dl-data-parallel K) --- */

/* A learner given --dl-data-parallel K runs as K members of one group, in one round, on K worker slots (several
 * ranks and hosts, or several slots of one rank with --process-pool). Member i reads only its shard of
 * --dl-data-collection: nemesyst_batches_new on that collection applies it (a $match on an _id range, first); the
 * shards are disjoint and together the whole collection. Only member 0's models are stored (the others' are
 * dropped, being copies of the same model); its metadata holds every member's count and digest. If one member
 * fails, the whole group fails and is rolled back as one.
 * nemesyst_group_rank is this member's index (0 when alone), nemesyst_group_size K (1 when alone). */
NEMESYST_EXTERN int nemesyst_group_rank(const nemesyst_ctx_t *ctx);
NEMESYST_EXTERN int nemesyst_group_size(const nemesyst_ctx_t *ctx);

typedef enum { NEMESYST_FLOAT32 = 0, NEMESYST_FLOAT64 = 1, NEMESYST_INT32 = 2, NEMESYST_INT64 = 3 } nemesyst_dtype_t;
typedef enum { NEMESYST_SUM = 0, NEMESYST_MAX = 1, NEMESYST_MIN = 2 } nemesyst_op_t;

/* Reduces buf (count elements of dtype, 1 <= count <= 2^31 - 1) over every member of the group, in place: on
 * return each member's buf holds the same result. Every member must make the same calls, with the same count,
 * dtype and op. Over MPI: the members on one rank are combined there, then the group's ranks reduce with a
 * nonblocking collective on a communicator of their own. Alone (no group) it returns at once, buf unchanged.
 * Averaging is the caller's: reduce sums weighted by each member's count, and the counts beside them. Fails with
 * NEMESYST_EARG for bad arguments, NEMESYST_EIO when the group failed (another member crashed, or the members
 * called it differently; the member is then stopped by its rank as well). */
NEMESYST_EXTERN bool nemesyst_allreduce(nemesyst_ctx_t *ctx, void *buf, size_t count, nemesyst_dtype_t dtype,
                                        nemesyst_op_t op, bson_error_t *error);

/* --- models --- */

/* Reads the stored model with GridFS id from bucket (e.g. the predictor's --dl-output-model-collection) into a new
 * buffer of *len bytes; free it with bson_free. The chunks come in replies sized by bytes (at most 16 MiB), so a model
 * of any size that fits in memory can be read, holding it once plus one reply. NEMESYST_ENOMODEL when there is no
 * such file; a missing, short or extra chunk or a server error fails it (NEMESYST_EDB) with a message naming the
 * model, the bucket and the cause. */
NEMESYST_EXTERN bool nemesyst_model_fetch(nemesyst_ctx_t *ctx, const char *bucket, const bson_value_t *id,
                                          uint8_t **data, size_t *len, bson_error_t *error);
/* The model picked by --dl-input-model-collection/--dl-input-model-pipeline for retraining, read into a new
 * buffer (free with bson_free). NEMESYST_ENOMODEL when this run does not retrain. */
NEMESYST_EXTERN bool nemesyst_input_model(nemesyst_ctx_t *ctx, uint8_t **data, size_t *len, bson_error_t *error);
/* The input model's file path, or NULL when not retraining (for libraries that want a path, e.g. HDF5). */
NEMESYST_EXTERN const char *nemesyst_input_model_path(const nemesyst_ctx_t *ctx);

/* --- checkpoints: training that outlives its job --- */

/* A learner that saves its state now and then goes on from there when its run is resumed (--resume RUN, a requeued
 * job), instead of from step 0. Checkpoints are stored in GridFS (bucket nemesyst_checkpoints) under this run and
 * script, with the attempt, step, sha256, host, rank and time; the --dl-checkpoint-keep newest are kept (default 2),
 * an older one deleted only after a newer one is stored and acknowledged. A save returns once the checkpoint is
 * stored; false (NEMESYST_EDB, NEMESYST_EIO) when it could not be, the older ones untouched: the script may go on
 * and try again later. In a learner group only member 0 stores (the others' calls return true at once); every
 * member loads the same one. Once the learner has succeeded and its model is stored, its checkpoints are removed
 * (--dl-checkpoint-keep-final keeps them). */
NEMESYST_EXTERN bool nemesyst_checkpoint_save(nemesyst_ctx_t *ctx, const uint8_t *data, size_t len, int64_t step,
                                              const bson_t *metadata, bson_error_t *error);
/* The same from a file (large states), read as it is sent. */
NEMESYST_EXTERN bool nemesyst_checkpoint_save_file(nemesyst_ctx_t *ctx, const char *path, int64_t step,
                                                   const bson_t *metadata, bson_error_t *error);
/* The newest complete checkpoint of this script in this run: its bytes in a new buffer (bson_free it), its step
 * and its metadata (metadata may be NULL; else initialised by the call, also on failure: destroy it). One whose
 * chunks are missing or whose sha256 does not match is passed over, with a warning in the log naming it. When
 * the script has none: false with NEMESYST_ENOCHECKPOINT (start from step 0); when none is usable: false with
 * NEMESYST_EDB naming each one tried. */
NEMESYST_EXTERN bool nemesyst_checkpoint_load(nemesyst_ctx_t *ctx, uint8_t **data, size_t *len, int64_t *step,
                                              bson_t *metadata, bson_error_t *error);
/* The same, written to path (a file of the script's choosing, e.g. in nemesyst_workdir). */
NEMESYST_EXTERN bool nemesyst_checkpoint_load_file(nemesyst_ctx_t *ctx, const char *path, int64_t *step,
                                                   bson_t *metadata, bson_error_t *error);
/* True once a stop is coming (the job's time limit is near, it is preempted, or the run is being interrupted):
 * save a checkpoint now and return false from the entry point, or go on; the script is stopped after
 * --checkpoint-grace seconds. Cheap enough to call every step. */
NEMESYST_EXTERN bool nemesyst_checkpoint_requested(const nemesyst_ctx_t *ctx);

/* --- log --- */

typedef enum { NEMESYST_LOG_ERROR = 3, NEMESYST_LOG_WARN = 4, NEMESYST_LOG_INFO = 6, NEMESYST_LOG_DEBUG = 7 }
    nemesyst_log_level_t;
/* Writes one line to the host's log at level, prefixed by the host with the script, its position and rank. */
NEMESYST_EXTERN void nemesyst_log(nemesyst_ctx_t *ctx, nemesyst_log_level_t level, const char *fmt, ...)
    BSON_GNUC_PRINTF(3, 4);

#ifdef __cplusplus
}
#endif

#endif
