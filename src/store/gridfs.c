/* GridFS, streamed: memory holds one piece of the file at a time, never the whole file (except for the buffer
 * variants, whose caller holds it anyway).
 *
 * Uploads go through mongoc_gridfs_bucket_t. Downloads read <bucket>.files and <bucket>.chunks as the GridFS
 * specification lays them out, because libmongoc's download stream opens its chunks cursor without a batchSize:
 * a server that caps replies by document count only (FerretDB: 250 per getMore) then sends replies of 250 x 255 KiB,
 * over libmongoc's 48 MB limit, and a large file cannot be read. Here the batch size is derived from the file's chunk
 * size so that a reply stays within MongoDB's own 16 MiB batch size; every chunk is checked (order, count, length). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "store/store-private.h"

#define IO_PIECE ((size_t)1 << 20)          /* bytes read from a file per write to the upload stream */
#define REPLY_BUDGET ((int64_t)16 << 20)    /* bytes of chunks asked for per cursor reply */
#define CHUNK_OVERHEAD 128                  /* a chunk document's fields besides its data, generously */

/* ---- shared ---- */

/* The file's _id as text for messages: an ObjectId in hex, a string as is, a number in decimal. */
static void id_text(const bson_value_t *id, char *buf, size_t len)
{
    switch (id->value_type) {
    case BSON_TYPE_OID:
        bson_oid_to_string(&id->value.v_oid, buf);
        break;
    case BSON_TYPE_UTF8:
        bson_snprintf(buf, len, "'%s'", id->value.v_utf8.str);
        break;
    case BSON_TYPE_INT32:
        bson_snprintf(buf, len, "%d", id->value.v_int32);
        break;
    case BSON_TYPE_INT64:
        bson_snprintf(buf, len, "%" PRId64, id->value.v_int64);
        break;
    default:
        bson_snprintf(buf, len, "(a %s)", "non-ObjectId value");
    }
}

static const char *bucket_or_default(const char *bucket)
{
    return bucket && *bucket ? bucket : "fs";
}

static mongoc_gridfs_bucket_t *open_bucket(nem_store_t *store, const char *bucket, bson_error_t *err)
{
    bson_t opts = BSON_INITIALIZER;
    bson_error_t derr;
    char what[256];
    mongoc_gridfs_bucket_t *b;

    BSON_APPEND_UTF8(&opts, "bucketName", bucket_or_default(bucket));
    b = mongoc_gridfs_bucket_new(store->db, &opts, NULL, &derr);
    bson_destroy(&opts);
    if (!b) {
        bson_snprintf(what, sizeof what, "cannot open GridFS bucket %s.%s", store->db_name, bucket_or_default(bucket));
        nem_store_wrap(err, &derr, what);
    }
    return b;
}

/* ---- upload ---- */

/* A source of bytes: returns how many it put in buf (0 at the end), or -1 with err set. */
typedef ssize_t (*source_fn)(void *ctx, uint8_t *buf, size_t len, bson_error_t *err);

typedef struct {
    const uint8_t *data;
    size_t left;
} buffer_source_t;

static ssize_t buffer_read(void *ctx, uint8_t *buf, size_t len, bson_error_t *err)
{
    buffer_source_t *s = ctx;
    size_t n = s->left < len ? s->left : len;
    memcpy(buf, s->data, n);
    s->data += n;
    s->left -= n;
    return (ssize_t)n;
}

typedef struct {
    int fd;
    const char *path;
} file_source_t;

static ssize_t file_read(void *ctx, uint8_t *buf, size_t len, bson_error_t *err)
{
    file_source_t *s = ctx;
    ssize_t n;
    do
        n = read(s->fd, buf, len);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        nem_store_seterr(err, NEM_STORE_EIO, "cannot read '%s': %s", s->path, strerror(errno));
    return n;
}

static bool upload_fail(mongoc_stream_t *stream, const char *what, bson_error_t *err)
{
    bson_error_t derr;
    if (mongoc_gridfs_bucket_stream_error(stream, &derr))
        nem_store_wrap(err, &derr, what);
    else
        nem_store_seterr(err, NEM_STORE_EDRIVER, "%s", what);
    return false;
}

/* Copies the source into the upload stream piece by piece; on a read or write error the chunks written so far are
 * removed (mongoc_gridfs_bucket_abort_upload) so no half file is left behind. */
static bool pump(mongoc_stream_t *stream, source_fn read_fn, void *ctx, const char *what, bson_error_t *err)
{
    uint8_t *buf = bson_malloc(IO_PIECE);
    bool ok = false;
    ssize_t n;

    while ((n = read_fn(ctx, buf, IO_PIECE, err)) > 0) {
        if (mongoc_stream_write(stream, buf, (size_t)n, 0) != n) {
            upload_fail(stream, what, err);
            mongoc_gridfs_bucket_abort_upload(stream);
            goto done;
        }
    }
    if (n < 0) {
        mongoc_gridfs_bucket_abort_upload(stream);
        goto done;
    }
    /* Closing writes the last chunk and the files document. */
    ok = mongoc_stream_close(stream) == 0 || upload_fail(stream, what, err);
done:
    bson_free(buf);
    return ok;
}

static bool upload(nem_store_t *store, const char *bucket, const char *filename, source_fn read_fn, void *ctx,
                   const bson_t *metadata, bson_value_t *id_out, bson_error_t *err)
{
    mongoc_gridfs_bucket_t *b = NULL;
    mongoc_stream_t *stream = NULL;
    bson_t opts = BSON_INITIALIZER;
    bson_value_t id;
    bson_error_t derr;
    char what[512];
    bool ok = false;

    bson_snprintf(what, sizeof what, "GridFS upload of '%s' to %s.%s failed", filename, store->db_name,
                  bucket_or_default(bucket));
    if (!(b = open_bucket(store, bucket, err)))
        goto done;
    BSON_APPEND_INT32(&opts, "chunkSizeBytes", NEM_GRIDFS_CHUNK_BYTES);
    if (metadata)
        BSON_APPEND_DOCUMENT(&opts, "metadata", metadata);
    if (!(stream = mongoc_gridfs_bucket_open_upload_stream(b, filename, &opts, &id, &derr))) {
        nem_store_wrap(err, &derr, what);
        goto done;
    }
    if (!(ok = pump(stream, read_fn, ctx, what, err)))
        goto done;
    if (id_out)
        bson_value_copy(&id, id_out);
done:
    if (stream) {
        mongoc_stream_destroy(stream);
        bson_value_destroy(&id);
    }
    bson_destroy(&opts);
    mongoc_gridfs_bucket_destroy(b);
    return ok;
}

bool nem_gridfs_upload_buffer(nem_store_t *store, const char *bucket, const char *filename, const uint8_t *data,
                              size_t len, const bson_t *metadata, bson_value_t *id_out, bson_error_t *err)
{
    buffer_source_t src = {data, len};
    return upload(store, bucket, filename, buffer_read, &src, metadata, id_out, err);
}

bool nem_gridfs_upload_file(nem_store_t *store, const char *bucket, const char *filename, const char *path,
                            const bson_t *metadata, bson_value_t *id_out, bson_error_t *err)
{
    file_source_t src = {open(path, O_RDONLY | O_CLOEXEC), path};
    bool ok;
    if (src.fd < 0) {
        nem_store_seterr(err, NEM_STORE_EIO, "cannot open '%s' for GridFS upload: %s", path, strerror(errno));
        return false;
    }
    ok = upload(store, bucket, filename, file_read, &src, metadata, id_out, err);
    close(src.fd);
    return ok;
}

/* ---- download ---- */

/* Where downloaded bytes go: nem_gridfs_sink_t (store.h). */
typedef nem_gridfs_sink_t sink_t;

typedef struct {
    nem_store_t *store;
    const char *bucket;
    const bson_value_t *id;
    char id_str[64];
    int64_t length;
    int32_t chunk_size;
} file_info_t;

static mongoc_collection_t *bucket_coll(const file_info_t *f, const char *suffix)
{
    char name[256];
    bson_snprintf(name, sizeof name, "%s.%s", bucket_or_default(f->bucket), suffix);
    return mongoc_database_get_collection(f->store->db, name);
}

static bool read_file_doc(file_info_t *f, bson_error_t *err)
{
    mongoc_collection_t *files = bucket_coll(f, "files");
    bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
    mongoc_cursor_t *cur;
    const bson_t *doc;
    bson_error_t derr;
    bson_iter_t it;
    char what[256];
    bool found, ok = false;

    BSON_APPEND_VALUE(&filter, "_id", f->id);
    BSON_APPEND_INT64(&opts, "limit", 1);
    cur = mongoc_collection_find_with_opts(files, &filter, &opts, NULL);
    found = mongoc_cursor_next(cur, &doc);
    if (mongoc_cursor_error(cur, &derr)) {
        bson_snprintf(what, sizeof what, "cannot read GridFS file %s from %s.%s.files", f->id_str,
                      f->store->db_name, bucket_or_default(f->bucket));
        nem_store_wrap(err, &derr, what);
    } else if (!found) {
        nem_store_seterr(err, NEM_STORE_ENOTFOUND, "no GridFS file with _id %s in %s.%s", f->id_str,
                         f->store->db_name, bucket_or_default(f->bucket));
    } else {
        f->length = bson_iter_init_find(&it, doc, "length") ? bson_iter_as_int64(&it) : -1;
        f->chunk_size = bson_iter_init_find(&it, doc, "chunkSize") ? (int32_t)bson_iter_as_int64(&it) : 0;
        ok = f->length >= 0 && f->chunk_size > 0;
        if (!ok)
            nem_store_seterr(err, NEM_STORE_ECORRUPT, "GridFS file %s in %s.%s has no valid length and chunkSize",
                             f->id_str, f->store->db_name, bucket_or_default(f->bucket));
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(&filter);
    bson_destroy(&opts);
    mongoc_collection_destroy(files);
    return ok;
}

static mongoc_cursor_t *chunks_cursor(const file_info_t *f, mongoc_collection_t *chunks)
{
    bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort;
    int64_t per_reply = REPLY_BUDGET / ((int64_t)f->chunk_size + CHUNK_OVERHEAD);
    mongoc_cursor_t *cur;

    BSON_APPEND_VALUE(&filter, "files_id", f->id);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "n", 1);
    bson_append_document_end(&opts, &sort);
    BSON_APPEND_INT32(&opts, "batchSize", (int32_t)(per_reply > 0 ? per_reply : 1));
    cur = mongoc_collection_find_with_opts(chunks, &filter, &opts, NULL);
    bson_destroy(&filter);
    bson_destroy(&opts);
    return cur;
}

static bool corrupt(const file_info_t *f, bson_error_t *err, const char *why, int64_t n)
{
    nem_store_seterr(err, NEM_STORE_ECORRUPT, "GridFS file %s in %s.%s is corrupt: %s (chunk %" PRId64 ")",
                     f->id_str, f->store->db_name, bucket_or_default(f->bucket), why, n);
    return false;
}

/* Checks that chunk doc is chunk number n with the length the file's size implies, and hands its data on. */
static bool take_chunk(const file_info_t *f, const bson_t *doc, int64_t n, const sink_t *sink, bson_error_t *err)
{
    bson_iter_t it;
    const uint8_t *data;
    uint32_t len;
    bson_subtype_t subtype;
    int64_t want = f->length - n * f->chunk_size;

    if (want > f->chunk_size)
        want = f->chunk_size;
    if (!bson_iter_init_find(&it, doc, "n") || bson_iter_as_int64(&it) != n)
        return corrupt(f, err, want > 0 ? "a chunk is missing or out of order" : "there are extra chunks", n);
    if (want <= 0)
        return corrupt(f, err, "there are extra chunks", n);
    if (!bson_iter_init_find(&it, doc, "data") || !BSON_ITER_HOLDS_BINARY(&it))
        return corrupt(f, err, "a chunk has no binary data", n);
    bson_iter_binary(&it, &subtype, &len, &data);
    if ((int64_t)len != want)
        return corrupt(f, err, "a chunk has the wrong length", n);
    return sink->write(sink->ctx, data, len, err);
}

static bool read_chunks(const file_info_t *f, const sink_t *sink, bson_error_t *err)
{
    mongoc_collection_t *chunks = bucket_coll(f, "chunks");
    mongoc_cursor_t *cur = chunks_cursor(f, chunks);
    int64_t n = 0, expected = (f->length + f->chunk_size - 1) / f->chunk_size;
    const bson_t *doc;
    bson_error_t derr;
    char what[256];
    bool ok = true;

    while (ok && mongoc_cursor_next(cur, &doc))
        ok = take_chunk(f, doc, n++, sink, err);
    if (ok && mongoc_cursor_error(cur, &derr)) {
        bson_snprintf(what, sizeof what, "cannot read the chunks of GridFS file %s from %s.%s.chunks", f->id_str,
                      f->store->db_name, bucket_or_default(f->bucket));
        nem_store_wrap(err, &derr, what);
        ok = false;
    }
    if (ok && n != expected)
        ok = corrupt(f, err, "chunks are missing at the end", n);
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(chunks);
    return ok;
}

static bool download(nem_store_t *store, const char *bucket, const bson_value_t *id, const sink_t *sink,
                     bson_error_t *err)
{
    file_info_t f = {.store = store, .bucket = bucket, .id = id};
    id_text(id, f.id_str, sizeof f.id_str);
    return read_file_doc(&f, err) && (!sink->begin || sink->begin(sink->ctx, f.length, err)) &&
           read_chunks(&f, sink, err);
}

bool nem_gridfs_download(nem_store_t *store, const char *bucket, const bson_value_t *id, const nem_gridfs_sink_t *sink,
                         bson_error_t *err)
{
    return download(store, bucket, id, sink, err);
}

typedef struct {
    uint8_t *data;
    size_t len, cap;
} buffer_sink_t;

static bool buffer_begin(void *ctx, int64_t length, bson_error_t *err)
{
    buffer_sink_t *s = ctx;
    if ((uint64_t)length >= SIZE_MAX) {
        nem_store_seterr(err, NEM_STORE_EIO, "GridFS file of %" PRId64 " bytes does not fit in memory", length);
        return false;
    }
    s->cap = (size_t)length;
    s->data = bson_malloc(s->cap ? s->cap : 1);
    return true;
}

/* take_chunk has checked every length against the file's, so the buffer cannot overflow. */
static bool buffer_write(void *ctx, const uint8_t *data, size_t len, bson_error_t *err)
{
    buffer_sink_t *s = ctx;
    memcpy(s->data + s->len, data, len);
    s->len += len;
    return true;
}

bool nem_gridfs_download_to_buffer(nem_store_t *store, const char *bucket, const bson_value_t *id, uint8_t **data,
                                   size_t *len, bson_error_t *err)
{
    buffer_sink_t s = {0};
    sink_t sink = {buffer_begin, buffer_write, &s};
    if (!download(store, bucket, id, &sink, err)) {
        bson_free(s.data);
        return false;
    }
    *data = s.data;
    *len = s.len;
    return true;
}

typedef struct {
    int fd;
    const char *path;
} file_sink_t;

static bool file_begin(void *ctx, int64_t length, bson_error_t *err)
{
    file_sink_t *s = ctx;
    s->fd = open(s->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (s->fd < 0)
        nem_store_seterr(err, NEM_STORE_EIO, "cannot create '%s' for GridFS download: %s", s->path, strerror(errno));
    return s->fd >= 0;
}

static bool file_write(void *ctx, const uint8_t *data, size_t len, bson_error_t *err)
{
    file_sink_t *s = ctx;
    while (len > 0) {
        ssize_t n = write(s->fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            nem_store_seterr(err, NEM_STORE_EIO, "cannot write '%s': %s", s->path, strerror(errno));
            return false;
        }
        data += n;
        len -= (size_t)n;
    }
    return true;
}

bool nem_gridfs_download_to_file(nem_store_t *store, const char *bucket, const bson_value_t *id, const char *path,
                                 bson_error_t *err)
{
    file_sink_t s = {-1, path};
    sink_t sink = {file_begin, file_write, &s};
    bool ok = download(store, bucket, id, &sink, err);

    if (s.fd >= 0 && close(s.fd) != 0 && ok) {
        nem_store_seterr(err, NEM_STORE_EIO, "cannot write '%s': %s", path, strerror(errno));
        ok = false;
    }
    /* A partial file would look like a model: remove it. */
    if (!ok && s.fd >= 0)
        unlink(path);
    return ok;
}
