/* libnemesyst internals: the context a plugin receives, and what runs around the entry point. libnemesyst is built
 * with -fvisibility=hidden, so these nemesyst__ functions are not exported, with one exception: nemesyst__host_run,
 * the host's one door into the library (below). The benchmarks that call the others link the convenience library
 * libnemesyst_plugin.la instead (src/plugin/local.mk). */
#ifndef NEMESYST_PLUGIN_PRIVATE_H
#define NEMESYST_PLUGIN_PRIVATE_H

#include "nemesyst.h"
#include "store/store.h"

#define NEMESYST_MAX_DOC (16 * 1024 * 1024)
#define NEMESYST_OUTBUF (64 * 1024)

struct nemesyst_ctx {
    char *stage, *run_id, *workdir, *db_uri, *db_name, *input_model, *input_model_id, *entry_point;
    size_t position;
    bson_t options;
    char *password;               /* read from NEMESYST_PASSWORD_FD; wiped on destroy */
    char *tls_key_password;       /* read from NEMESYST_TLS_KEY_PASSWORD_FD; wiped on destroy */
    int item_fd;
    uint8_t out[NEMESYST_OUTBUF]; /* items are batched into few writes; flushed when full and at the end */
    size_t out_len;
    uint64_t n_items;             /* items queued for the host, for the end-of-output record */
    mongoc_client_t *client;
    mongoc_database_t *db;
    nem_store_t *store;           /* the store layer over client: GridFS reads and pipeline batches */
    nemesyst_batches_t **live;    /* open batch iterators: reported as incomplete if never finished */
    size_t n_live, cap_live;
    char **reported;              /* consumed records sent (collection + digest): epochs over the same data once */
    size_t n_reported;
    int group_rank, group_size;   /* NEMESYST_GROUP_RANK/SIZE: 0 and 1 alone */
    int group_fd;                 /* NEMESYST_GROUP_FD: nemesyst_allreduce's socket, -1 alone */
    bson_t *shard;                /* NEMESYST_SHARD: this member's filter of shard_collection, NULL alone */
    char *shard_collection;
    int64_t attempt;              /* NEMESYST_ATTEMPT: 1, then one more per --resume (checkpoints record it) */
    char *stop_file;              /* NEMESYST_STOP_FILE: exists once a stop is coming (checkpoint now) */
    char *host;                   /* NEMESYST_HOST: the worker's host name, for checkpoints */
    int rank;                     /* NEMESYST_RANK: the worker's MPI rank */
};

/* Runs one script for nemesyst-plugin-host: builds the context from the NEMESYST_* environment the runner set,
 * calls entry with it, flushes the items and sends the end-of-output record (after a successful entry point only),
 * and disconnects. True when the entry point returned true and everything it emitted reached the pipe; else false
 * with error set (left as the entry point left it when that returned false).
 * Exported, under the private prefix nemesyst__ and declared in no installed header, because the host links the
 * shared libnemesyst: the plugin links it too (pkg-config --libs nemesyst), so the process holds one copy of the
 * library, whose context the plugin's calls receive. Linking the internals into the host statically instead would
 * put a second copy in the process, building contexts that another copy's code reads. Folding the host's calls
 * into this one keeps the private exports at one (tests/runner/exports.sh allows it and nothing else beyond
 * nemesyst.h). */
NEMESYST_EXTERN bool nemesyst__host_run(nemesyst_entry_fn entry, bson_error_t *error);

/* Builds the context from the NEMESYST_* environment the host set. */
nemesyst_ctx_t *nemesyst__ctx_from_env(bson_error_t *error);
/* Reports unfinished batches and flushes the items to the host. */
bool nemesyst__ctx_finish(nemesyst_ctx_t *ctx, bson_error_t *error);
/* After a successful entry point and finish: the end-of-output record (the count of items before it), flushed.
 * Without it the host fails the script, so items lost by a plugin that ended its own process are never hidden
 * behind exit status 0. */
bool nemesyst__ctx_end(nemesyst_ctx_t *ctx, bson_error_t *error);
void nemesyst__ctx_destroy(nemesyst_ctx_t *ctx);

/* Queues one BSON document for the host (items, markers). */
bool nemesyst__write_item(nemesyst_ctx_t *ctx, const bson_t *doc, bson_error_t *error);
bool nemesyst__flush(nemesyst_ctx_t *ctx, bson_error_t *error);
/* Tells the host what a batch iterator consumed, once per (collection, digest, completeness). */
bool nemesyst__report_consumed(nemesyst_ctx_t *ctx, const char *collection, const bson_t *pipeline, uint64_t count,
                               const char *digest, bool complete, bson_error_t *error);
void nemesyst__forget_batches(nemesyst_ctx_t *ctx, nemesyst_batches_t *b);
void nemesyst__report_batches(nemesyst_batches_t *b); /* feed.c: reports an unfinished iterator */

/* The store over the context's connection (connecting first); NULL with error set (NEMESYST_EDB). */
nem_store_t *nemesyst__store(nemesyst_ctx_t *ctx, bson_error_t *error);
/* A store error as the plugin API reports it: NEMESYST_ERROR_DOMAIN with the code for what went wrong (a missing
 * GridFS file NEMESYST_ENOMODEL, a local file NEMESYST_EIO, anything else NEMESYST_EDB), the message kept. */
void nemesyst__store_error(bson_error_t *error, const bson_error_t *store_err);

bool nemesyst__read_file(const char *path, uint8_t **data, size_t *len, bson_error_t *error);

#endif
