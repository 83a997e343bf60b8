/* The store layer: everything Nemesyst asks of MongoDB, on libmongoc. Errors follow libbson's convention: return
 * false (or NULL) and fill a bson_error_t whose message is one line naming what failed and the server's code. */
#ifndef NEM_STORE_H
#define NEM_STORE_H

#include <bson/bson.h>
#include <mongoc/mongoc.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/errors.h"

/* Errors: NEM_ERROR_STORE with NEM_STORE_E* codes (util/errors.h). */

/* Bulk defaults (nem_bulk_new with 0) and the GridFS chunk size (the GridFS specification's default). */
#define NEM_BULK_DEFAULT_DOCS 1000
#define NEM_BULK_DEFAULT_BYTES ((size_t)8 << 20)
#define NEM_GRIDFS_CHUNK_BYTES (255 * 1024)

typedef struct nem_store nem_store_t;

/* Connection settings: built from the options by app/ (app/plan.c) or by hand (tests, benchmarks). Strings are
 * borrowed; paths are used as given (app/ expands ~). */
typedef struct {
    const char *host;              /* --db-ip */
    int port;                      /* --db-port */
    const char *db_name;           /* --db-name */
    const char *user;              /* --db-user-name; NULL = no authentication */
    const char *password;          /* resolved secret */
    const char *auth_mechanism;    /* --db-authentication */
    const char *auth_db;           /* --db-authentication-database, else db_name */
    const char *replica_set;       /* --db-replica-set-name */
    const char *read_preference;   /* --db-replica-read-preference */
    int64_t max_staleness;         /* --db-replica-max-staleness, -1 = none */
    bool tls;                      /* --db-tls */
    const char *tls_ca_file, *tls_cert_key_file, *tls_cert_key_password, *tls_crl_file;
    int connect_timeout_ms;        /* server selection deadline; 0 = default (10000) */
    const char *app_name;
} nem_store_opts_t;

/* A TLS file option implies TLS, as in pymongo 3 (which 2.0.6 used): the one place that rule lives. */
bool nem_store_opts_use_tls(const nem_store_opts_t *opts);

/* Connects (lazily, as libmongoc does) and checks the settings: missing TLS files, a bad read preference etc.
 * fail here. */
nem_store_t *nem_store_new(const nem_store_opts_t *opts, bson_error_t *err);
void nem_store_destroy(nem_store_t *store);
/* A store around a client someone else made and keeps (libnemesyst's connection for plugins): destroying the store
 * leaves the client alone. host_port names it in messages. */
nem_store_t *nem_store_adopt(mongoc_client_t *client, const char *db_name, const char *host_port);
/* Round trip to the server: names host:port and the timeout when it cannot be reached, the server's code when it
 * refuses (e.g. authentication failed). */
bool nem_store_ping(nem_store_t *store, bson_error_t *err);
mongoc_client_t *nem_store_client(nem_store_t *store);
mongoc_database_t *nem_store_database(nem_store_t *store);   /* borrowed, for db_name */
const char *nem_store_db_name(const nem_store_t *store);
/* A URI without the password, for logs and run records. */
const char *nem_store_public_uri(const nem_store_t *store);
/* "host:port" as given, for messages. */
const char *nem_store_host_port(const nem_store_t *store);

/* Bulk writer: unordered, acknowledged inserts, flushed whenever max_docs documents or max_bytes bytes are
 * pending (0 = defaults: 1000 docs, 8 MiB). */
typedef struct nem_bulk nem_bulk_t;
nem_bulk_t *nem_bulk_new(nem_store_t *store, const char *collection, size_t max_docs, size_t max_bytes);
/* The same, sending each full batch from a thread with a connection of its own (opened here from opts, so it
 * fails here when it cannot be made) while the caller fills the next batch: at most two batches are held. An
 * error of a send is returned by a later nem_bulk_add or by nem_bulk_flush, which waits until everything handed
 * over is sent. Destroying it sends what was handed over and drops what was not. */
nem_bulk_t *nem_bulk_new_async(const nem_store_opts_t *opts, const char *collection, size_t max_docs,
                               size_t max_bytes, bson_error_t *err);
bool nem_bulk_add(nem_bulk_t *bulk, const bson_t *doc, bson_error_t *err);
bool nem_bulk_flush(nem_bulk_t *bulk, bson_error_t *err);
uint64_t nem_bulk_inserted(const nem_bulk_t *bulk);
void nem_bulk_destroy(nem_bulk_t *bulk); /* does not flush */
/* The bulk writer's batching rule, pure (tests/unit/test_stage.c): a batch is sent before a document that would take
 * it past max_bytes (so a batch holds at most max_bytes unless one document alone is larger), and as soon as it holds
 * max_docs documents or max_bytes bytes. */
bool nem_batch_flush_before(size_t docs, size_t bytes, size_t next, size_t max_bytes);
bool nem_batch_full(size_t docs, size_t bytes, size_t max_docs, size_t max_bytes);

/* Deletes every document matching filter in pieces of at most NEM_DELETE_PIECE_DOCS: the matches' _ids are read
 * once in _id order, and each piece is deleted by the filter restricted to its _id range (no command ever carries a
 * list of ids, so it works at any size on every server: FerretDB's SQL backends fail a delete of more than about
 * 32,000 documents at once). *deleted (may be NULL) receives the count. */
#define NEM_DELETE_PIECE_DOCS 25000
bool nem_store_delete_matching(nem_store_t *store, const char *collection, const bson_t *filter, uint64_t *deleted,
                               bson_error_t *err);


/* One document into, or one update of, a collection of the store's database. insert_one: with duplicate non-NULL, a
 * duplicate _id sets *duplicate and is no error (content-addressed documents stored once). */
bool nem_store_insert_one(nem_store_t *store, const char *collection, const bson_t *doc, bool *duplicate,
                          bson_error_t *err);
bool nem_store_update_one(nem_store_t *store, const char *collection, const bson_t *filter, const bson_t *update,
                          bson_error_t *err);
/* The same, *matched receiving how many documents the filter matched (0 or 1). */
bool nem_store_update_one_matched(nem_store_t *store, const char *collection, const bson_t *filter,
                                  const bson_t *update, int64_t *matched, bson_error_t *err);
bool nem_store_update_many(nem_store_t *store, const char *collection, const bson_t *filter, const bson_t *update,
                           bson_error_t *err);
/* Calls cb for every document matching filter (opts: find options: sort, projection, ...). cb returns false (with
 * err set) to stop with a failure. */
typedef bool (*nem_doc_cb)(const bson_t *doc, void *ud, bson_error_t *err);
bool nem_store_find(nem_store_t *store, const char *collection, const bson_t *filter, const bson_t *opts,
                    nem_doc_cb cb, void *ud, bson_error_t *err);

/* An index nemesyst's own queries need, asked for where nemesyst writes (README "Asking the store"): key (e.g.
 * {"_nemesyst.s": 1}) on collection under name, created unless an index of the same key exists (listIndexes
 * first; MongoDB's createIndexes semantics, which FerretDB follows). Asked once per database, collection and name
 * per process, whatever the answer. False (err set) only the first time it fails, typically because the user may
 * not createIndex: the caller warns and goes on (queries still answer, by scanning); the next call says true. */
bool nem_store_ensure_index(nem_store_t *store, const char *collection, const bson_t *key, const char *name,
                            bson_error_t *err);

/* The number of documents of collection matching filter (countDocuments). */
bool nem_store_count(nem_store_t *store, const char *collection, const bson_t *filter, int64_t *n, bson_error_t *err);

/* MongoDB's rule for an aggregation pipeline, as a BSON array (keys "0", "1", ...): every stage is a document with
 * exactly one field, the stage's name, which starts with '$' and is not one of extended JSON's type wrappers ($oid,
 * $date, ...). NULL when pipeline keeps it; otherwise why not, and *stage the 0-based stage at fault and *name its
 * field ("" when it has none), borrowed from pipeline. */
const char *nem_pipeline_problem(const bson_t *pipeline, uint32_t *stage, const char **name);

/* Batches of an aggregation pipeline: the cursor uses an explicit batchSize; the last batch is never empty. A
 * pipeline that breaks nem_pipeline_problem's rule is refused (NEM_STORE_EOPTION) before the server sees it. */
typedef struct nem_batches nem_batches_t;
nem_batches_t *nem_batches_new(nem_store_t *store, const char *collection, const bson_t *pipeline,
                               size_t batch_size, bson_error_t *err);
/* Sets *docs and *n to the next batch (valid until the next call). Returns false at the end (err->code == 0) or on
 * error (err->code != 0). */
bool nem_batches_next(nem_batches_t *b, const bson_t *const **docs, size_t *n, bson_error_t *err);
void nem_batches_destroy(nem_batches_t *b);

/* GridFS (the specification's layout, as libmongoc's bucket API writes it), streamed in chunks; metadata may be
 * NULL. id_out receives the file's _id (ObjectId; release it with bson_value_destroy). An upload writes the files
 * document after every chunk, so a failed one leaves no file (its chunks are removed). Downloads read
 * <bucket>.chunks with a cursor batch size bounded by bytes, so a large file never asks the server for a reply over
 * 16 MiB whatever the server's own limits; a missing, short or extra chunk is an error (NEM_STORE_ECORRUPT), a
 * missing file NEM_STORE_ENOTFOUND. download_to_file removes the partial file on failure; download_to_buffer returns
 * a bson_malloc'd buffer (bson_free it). */
bool nem_gridfs_upload_file(nem_store_t *store, const char *bucket, const char *filename, const char *path,
                            const bson_t *metadata, bson_value_t *id_out, bson_error_t *err);
bool nem_gridfs_upload_buffer(nem_store_t *store, const char *bucket, const char *filename, const uint8_t *data,
                              size_t len, const bson_t *metadata, bson_value_t *id_out, bson_error_t *err);
/* Where a download's bytes go: begin (may be NULL) learns the file's length first, write gets each chunk in order,
 * once it has been checked; either may stop the download by returning false with err set. */
typedef struct {
    bool (*begin)(void *ctx, int64_t length, bson_error_t *err);
    bool (*write)(void *ctx, const uint8_t *data, size_t len, bson_error_t *err);
    void *ctx;
} nem_gridfs_sink_t;
/* Streams the file to sink, one checked chunk at a time: memory holds a reply's chunks, never the file. */
bool nem_gridfs_download(nem_store_t *store, const char *bucket, const bson_value_t *id, const nem_gridfs_sink_t *sink,
                         bson_error_t *err);
bool nem_gridfs_download_to_file(nem_store_t *store, const char *bucket, const bson_value_t *id, const char *path,
                                 bson_error_t *err);
/* The GridFS specification's indexes of bucket (files {filename, uploadDate}, chunks {files_id, n} unique), made
 * unless indexes of those keys exist: for writers that store a bucket's documents themselves (`import`). The
 * uploads here make them before a bucket's first file. */
bool nem_gridfs_ensure_indexes(nem_store_t *store, const char *bucket, bson_error_t *err);
/* Deletes every file of bucket whose files-collection document matches filter (chunks first, as GridFS does);
 * *deleted (may be NULL) receives the count. */
bool nem_gridfs_delete_matching(nem_store_t *store, const char *bucket, const bson_t *filter, uint64_t *deleted,
                                bson_error_t *err);
bool nem_gridfs_download_to_buffer(nem_store_t *store, const char *bucket, const bson_value_t *id, uint8_t **data,
                                   size_t *len, bson_error_t *err);

/* A tap on an upload or a download: it sees the file's bytes on their way, so a digest (ckpt.c's sha256) is
 * computed while they stream instead of in a pass of its own. piece() gets every byte once, in order; its data stays
 * valid until the call that was given the tap returns when stable is true (the caller's buffer, the buffer being
 * downloaded into), only during the piece() call otherwise. piece() may be NULL: a tap that had the bytes already (an
 * upload's buffer, hashed whole from the start) needs only finish(). finish() (may be NULL) is called exactly once,
 * before that call returns: ok says whether every byte went through; if so, for an upload, before the files document
 * that makes the file visible is written, with metadata (what the call was given, or {}) to add to, and for a download
 * with metadata NULL, before the bytes are handed over. Returning false there (with err set) fails the call: the
 * upload's chunks are removed, the downloaded buffer freed or file removed. When ok is false, err is NULL and the
 * return value is ignored.
 * known_length and known_chunk_size (a download; chunk size 0: not known) are the file's length and chunkSize when the
 * caller has read its files document already (a checkpoint load lists them): the download then reads only the chunks,
 * one round trip fewer. */
typedef struct {
    void (*piece)(void *ctx, const uint8_t *data, size_t len, bool stable);
    bool (*finish)(void *ctx, bool ok, bson_t *metadata, bson_error_t *err);
    void *ctx;
    int64_t known_length;
    int32_t known_chunk_size;
} nem_gridfs_tap_t;
bool nem_gridfs_upload_buffer_tap(nem_store_t *store, const char *bucket, const char *filename, const uint8_t *data,
                                  size_t len, const bson_t *metadata, const nem_gridfs_tap_t *tap,
                                  bson_value_t *id_out, bson_error_t *err);
bool nem_gridfs_upload_file_tap(nem_store_t *store, const char *bucket, const char *filename, const char *path,
                                const bson_t *metadata, const nem_gridfs_tap_t *tap, bson_value_t *id_out,
                                bson_error_t *err);
bool nem_gridfs_download_to_buffer_tap(nem_store_t *store, const char *bucket, const bson_value_t *id,
                                       uint8_t **data, size_t *len, const nem_gridfs_tap_t *tap, bson_error_t *err);
bool nem_gridfs_download_to_file_tap(nem_store_t *store, const char *bucket, const bson_value_t *id,
                                     const char *path, const nem_gridfs_tap_t *tap, bson_error_t *err);

#endif
