/* GridFS, streamed: memory holds one piece of the file at a time, never the whole file (except for the buffer
 * variants, whose caller holds it anyway).
 *
 * Uploads and downloads write and read <bucket>.files and <bucket>.chunks as the GridFS specification lays them out,
 * so that a tap (store.h) can see the bytes on their way. Uploads write what libmongoc's upload stream writes, one
 * chunk at a time and the files document last. Downloads do not use libmongoc's download stream because it opens
 * its chunks cursor without a batchSize: a server that caps replies by document count only (FerretDB: 250 per
 * getMore) then sends replies of 250 x 255 KiB, over libmongoc's 48 MB limit, and a large file cannot be read. Here
 * the batch size is derived from the file's chunk size so that a reply stays within MongoDB's own 16 MiB batch size;
 * every chunk is checked (order, count, length). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store-private.h"

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

/* Ends a transfer's tap: finish() once, before the bytes it saw as stable can go away; its refusal fails a
 * transfer that had succeeded. */
static bool tap_end(const nem_gridfs_tap_t *tap, bool ok, bson_error_t *err)
{
    if (!tap || !tap->finish)
        return ok;
    return tap->finish(tap->ctx, ok, NULL, ok ? err : NULL) && ok;
}

/* ---- upload ---- */

/* Uploads write the GridFS layout themselves, as libmongoc's upload stream does (one insert per chunk of
 * NEM_GRIDFS_CHUNK_BYTES, then the files document), so that a tap (store.h) can see every byte on its way and add to
 * the metadata once every chunk is stored: the files document, written last, is what makes the file visible, so a
 * failed upload leaves none (its chunks are removed). */

/* A source of bytes: returns how many it put in buf (0 at the end), or -1 with err set. (A buffer is no source:
 * upload() stores and taps its bytes where they are.) */
typedef ssize_t (*source_fn)(void *ctx, uint8_t *buf, size_t len, bson_error_t *err);

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

/* Fills buf with up to len bytes (short only at the end). */
static ssize_t read_full(source_fn read_fn, void *ctx, uint8_t *buf, size_t len, bson_error_t *err)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read_fn(ctx, buf + got, len - got, err);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

typedef struct {
    nem_store_t *store;
    const char *bucket;
    mongoc_collection_t *files, *chunks;
    bson_value_t id;
    int32_t n;         /* chunks stored */
    int64_t length;    /* bytes stored */
    const nem_gridfs_tap_t *tap;
    char what[512];    /* "GridFS upload of 'x' to db.bucket failed" */
} writer_t;

/* The GridFS specification's indexes, made before the first file of a bucket is stored: files {filename,
 * uploadDate}, chunks {files_id, n} unique. */
static bool ensure_indexes(writer_t *w, bson_error_t *derr)
{
    bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, proj;
    mongoc_read_prefs_t *primary = mongoc_read_prefs_new(MONGOC_READ_PRIMARY);
    const bson_t *doc;
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
    BSON_APPEND_INT32(&proj, "_id", 1);
    bson_append_document_end(&opts, &proj);
    BSON_APPEND_INT64(&opts, "limit", 1);
    BSON_APPEND_BOOL(&opts, "singleBatch", true);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(w->files, &filter, &opts, primary);
    bool any = mongoc_cursor_next(cur, &doc), ok = !mongoc_cursor_error(cur, derr);
    mongoc_cursor_destroy(cur);
    mongoc_read_prefs_destroy(primary);
    bson_destroy(&filter);
    bson_destroy(&opts);
    if (!ok || any)
        return ok;
    bson_t *files_key = BCON_NEW("filename", BCON_INT32(1), "uploadDate", BCON_INT32(1));
    bson_t *chunks_key = BCON_NEW("files_id", BCON_INT32(1), "n", BCON_INT32(1));
    ok = nem_store_index_on(w->files, files_key, "filename_1_uploadDate_1", false, derr) &&
         nem_store_index_on(w->chunks, chunks_key, "files_id_1_n_1", true, derr);
    bson_destroy(files_key);
    bson_destroy(chunks_key);
    return ok;
}

bool nem_gridfs_ensure_indexes(nem_store_t *store, const char *bucket, bson_error_t *err)
{
    char *files = bson_strdup_printf("%s.files", bucket), *chunks = bson_strdup_printf("%s.chunks", bucket);
    mongoc_collection_t *fc = mongoc_database_get_collection(store->db, files);
    mongoc_collection_t *cc = mongoc_database_get_collection(store->db, chunks);
    bson_t *files_key = BCON_NEW("filename", BCON_INT32(1), "uploadDate", BCON_INT32(1));
    bson_t *chunks_key = BCON_NEW("files_id", BCON_INT32(1), "n", BCON_INT32(1));
    bson_error_t derr;
    bool ok = nem_store_index_on(fc, files_key, "filename_1_uploadDate_1", false, &derr) &&
              nem_store_index_on(cc, chunks_key, "files_id_1_n_1", true, &derr);
    if (!ok) {
        char what[512];
        bson_snprintf(what, sizeof what, "the GridFS indexes of %s.%s not made", store->db_name, bucket);
        nem_store_wrap(err, &derr, what);
    }
    bson_destroy(files_key);
    bson_destroy(chunks_key);
    mongoc_collection_destroy(fc);
    mongoc_collection_destroy(cc);
    bson_free(files);
    bson_free(chunks);
    return ok;
}

/* Stores chunk w->n; the tap sees it first, so that its work overlaps the round trip. */
static bool write_chunk(writer_t *w, const uint8_t *data, size_t len, bool stable, bson_error_t *err)
{
    bson_t chunk = BSON_INITIALIZER;
    bson_error_t derr;
    bool ok;
    if (w->tap && w->tap->piece)
        w->tap->piece(w->tap->ctx, data, len, stable);
    BSON_APPEND_INT32(&chunk, "n", w->n);
    BSON_APPEND_VALUE(&chunk, "files_id", &w->id);
    BSON_APPEND_BINARY(&chunk, "data", BSON_SUBTYPE_BINARY, data, (uint32_t)len);
    ok = mongoc_collection_insert_one(w->chunks, &chunk, NULL, NULL, &derr);
    bson_destroy(&chunk);
    if (!ok)
        nem_store_wrap(err, &derr, w->what);
    w->n += ok;
    w->length += ok ? (int64_t)len : 0;
    return ok;
}

static int64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Once every chunk is stored: the tap's metadata, then the files document. */
static bool write_files_doc(writer_t *w, const char *filename, const bson_t *metadata, bson_error_t *err)
{
    bson_t doc = BSON_INITIALIZER, meta = BSON_INITIALIZER;
    bson_error_t derr;
    bool ok = true, with_meta = metadata || (w->tap && w->tap->finish);
    if (metadata)
        bson_concat(&meta, metadata);
    if (w->tap && w->tap->finish) {
        const nem_gridfs_tap_t *tap = w->tap;
        w->tap = NULL; /* finished: the failure path must not call it again */
        ok = tap->finish(tap->ctx, true, &meta, err);
    }
    if (ok) {
        BSON_APPEND_VALUE(&doc, "_id", &w->id);
        BSON_APPEND_INT64(&doc, "length", w->length);
        BSON_APPEND_INT32(&doc, "chunkSize", NEM_GRIDFS_CHUNK_BYTES);
        BSON_APPEND_DATE_TIME(&doc, "uploadDate", real_ms());
        BSON_APPEND_UTF8(&doc, "filename", filename);
        if (with_meta)
            BSON_APPEND_DOCUMENT(&doc, "metadata", &meta);
        if (!(ok = mongoc_collection_insert_one(w->files, &doc, NULL, NULL, &derr)))
            nem_store_wrap(err, &derr, w->what);
    }
    bson_destroy(&doc);
    bson_destroy(&meta);
    return ok;
}

/* Removes the chunks of a failed upload (no files document names them). */
static void remove_chunks(writer_t *w)
{
    char name[256];
    bson_t filter = BSON_INITIALIZER;
    bson_error_t ignored;
    BSON_APPEND_VALUE(&filter, "files_id", &w->id);
    bson_snprintf(name, sizeof name, "%s.chunks", bucket_or_default(w->bucket));
    (void)nem_store_delete_matching(w->store, name, &filter, NULL, &ignored);
    bson_destroy(&filter);
}

/* Uploads data[0..len) when data is set, else what read_fn reads. */
static bool upload(nem_store_t *store, const char *bucket, const char *filename, const uint8_t *data, size_t len,
                   source_fn read_fn, void *ctx, const bson_t *metadata, const nem_gridfs_tap_t *tap,
                   bson_value_t *id_out, bson_error_t *err)
{
    writer_t w = {.store = store, .bucket = bucket, .tap = tap};
    char name[256];
    uint8_t *buf = NULL;
    bson_error_t derr;
    bson_oid_t oid;
    bool ok = true, started = false; /* started: chunks may have been stored */

    bson_snprintf(w.what, sizeof w.what, "GridFS upload of '%s' to %s.%s failed", filename, store->db_name,
                  bucket_or_default(bucket));
    bson_snprintf(name, sizeof name, "%s.files", bucket_or_default(bucket));
    w.files = mongoc_database_get_collection(store->db, name);
    bson_snprintf(name, sizeof name, "%s.chunks", bucket_or_default(bucket));
    w.chunks = mongoc_database_get_collection(store->db, name);
    bson_oid_init(&oid, NULL);
    w.id.value_type = BSON_TYPE_OID;
    bson_oid_copy(&oid, &w.id.value.v_oid);
    if (!ensure_indexes(&w, &derr)) {
        nem_store_wrap(err, &derr, w.what);
        ok = false;
    } else if (data) {
        started = true;
        for (size_t off = 0; ok && off < len; off += NEM_GRIDFS_CHUNK_BYTES)
            ok = write_chunk(&w, data + off, len - off < NEM_GRIDFS_CHUNK_BYTES ? len - off : NEM_GRIDFS_CHUNK_BYTES,
                             true, err);
    } else {
        ssize_t n;
        started = true;
        buf = bson_malloc(NEM_GRIDFS_CHUNK_BYTES);
        while (ok && (n = read_full(read_fn, ctx, buf, NEM_GRIDFS_CHUNK_BYTES, err)) != 0)
            ok = n > 0 && write_chunk(&w, buf, (size_t)n, false, err);
    }
    ok = ok && write_files_doc(&w, filename, metadata, err);
    if (!ok) {
        tap_end(w.tap, false, NULL);
        if (started)
            remove_chunks(&w);
    } else if (id_out) {
        bson_value_copy(&w.id, id_out);
    }
    bson_free(buf);
    mongoc_collection_destroy(w.files);
    mongoc_collection_destroy(w.chunks);
    return ok;
}

bool nem_gridfs_upload_buffer_tap(nem_store_t *store, const char *bucket, const char *filename, const uint8_t *data,
                                  size_t len, const bson_t *metadata, const nem_gridfs_tap_t *tap,
                                  bson_value_t *id_out, bson_error_t *err)
{
    static const uint8_t empty[1];
    return upload(store, bucket, filename, data ? data : empty, data ? len : 0, NULL, NULL, metadata, tap, id_out,
                  err);
}

bool nem_gridfs_upload_buffer(nem_store_t *store, const char *bucket, const char *filename, const uint8_t *data,
                              size_t len, const bson_t *metadata, bson_value_t *id_out, bson_error_t *err)
{
    return nem_gridfs_upload_buffer_tap(store, bucket, filename, data, len, metadata, NULL, id_out, err);
}

bool nem_gridfs_upload_file_tap(nem_store_t *store, const char *bucket, const char *filename, const char *path,
                                const bson_t *metadata, const nem_gridfs_tap_t *tap, bson_value_t *id_out,
                                bson_error_t *err)
{
    file_source_t src = {open(path, O_RDONLY | O_CLOEXEC), path};
    bool ok;
    if (src.fd < 0) {
        nem_store_seterr(err, NEM_STORE_EIO, "cannot open '%s' for GridFS upload: %s", path, strerror(errno));
        return tap_end(tap, false, NULL);
    }
    ok = upload(store, bucket, filename, NULL, 0, file_read, &src, metadata, tap, id_out, err);
    close(src.fd);
    return ok;
}

bool nem_gridfs_upload_file(nem_store_t *store, const char *bucket, const char *filename, const char *path,
                            const bson_t *metadata, bson_value_t *id_out, bson_error_t *err)
{
    return nem_gridfs_upload_file_tap(store, bucket, filename, path, metadata, NULL, id_out, err);
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

/* tap (may be NULL) may give the file's length and chunkSize, read by the caller already (store.h). */
static bool download(nem_store_t *store, const char *bucket, const bson_value_t *id, const nem_gridfs_tap_t *tap,
                     const sink_t *sink, bson_error_t *err)
{
    file_info_t f = {.store = store, .bucket = bucket, .id = id};
    bool known = tap && tap->known_chunk_size > 0 && tap->known_length >= 0;
    id_text(id, f.id_str, sizeof f.id_str);
    if (known) {
        f.length = tap->known_length;
        f.chunk_size = tap->known_chunk_size;
    }
    return (known || read_file_doc(&f, err)) && (!sink->begin || sink->begin(sink->ctx, f.length, err)) &&
           read_chunks(&f, sink, err);
}

bool nem_gridfs_download(nem_store_t *store, const char *bucket, const bson_value_t *id, const nem_gridfs_sink_t *sink,
                         bson_error_t *err)
{
    return download(store, bucket, id, NULL, sink, err);
}

typedef struct {
    uint8_t *data;
    size_t len, cap;
    const nem_gridfs_tap_t *tap;
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

/* take_chunk has checked every length against the file's, so the buffer cannot overflow. The tap sees the bytes
 * where they stay (stable) once they are there. */
static bool buffer_write(void *ctx, const uint8_t *data, size_t len, bson_error_t *err)
{
    buffer_sink_t *s = ctx;
    memcpy(s->data + s->len, data, len);
    if (s->tap && s->tap->piece)
        s->tap->piece(s->tap->ctx, s->data + s->len, len, true);
    s->len += len;
    return true;
}

bool nem_gridfs_download_to_buffer_tap(nem_store_t *store, const char *bucket, const bson_value_t *id,
                                       uint8_t **data, size_t *len, const nem_gridfs_tap_t *tap, bson_error_t *err)
{
    buffer_sink_t s = {.tap = tap};
    sink_t sink = {buffer_begin, buffer_write, &s};
    if (!tap_end(tap, download(store, bucket, id, tap, &sink, err), err)) {
        bson_free(s.data);
        return false;
    }
    *data = s.data;
    *len = s.len;
    return true;
}

bool nem_gridfs_download_to_buffer(nem_store_t *store, const char *bucket, const bson_value_t *id, uint8_t **data,
                                   size_t *len, bson_error_t *err)
{
    return nem_gridfs_download_to_buffer_tap(store, bucket, id, data, len, NULL, err);
}

typedef struct {
    int fd;
    const char *path;
    const nem_gridfs_tap_t *tap;
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
    if (s->tap && s->tap->piece)
        s->tap->piece(s->tap->ctx, data, len, false);
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

bool nem_gridfs_download_to_file_tap(nem_store_t *store, const char *bucket, const bson_value_t *id,
                                     const char *path, const nem_gridfs_tap_t *tap, bson_error_t *err)
{
    file_sink_t s = {-1, path, tap};
    sink_t sink = {file_begin, file_write, &s};
    bool ok = download(store, bucket, id, tap, &sink, err);

    if (s.fd >= 0 && close(s.fd) != 0 && ok) {
        nem_store_seterr(err, NEM_STORE_EIO, "cannot write '%s': %s", path, strerror(errno));
        ok = false;
    }
    ok = tap_end(tap, ok, err);
    /* A partial file (or one its tap refused) would look like a model: remove it. */
    if (!ok && s.fd >= 0)
        unlink(path);
    return ok;
}

bool nem_gridfs_download_to_file(nem_store_t *store, const char *bucket, const bson_value_t *id, const char *path,
                                 bson_error_t *err)
{
    return nem_gridfs_download_to_file_tap(store, bucket, id, path, NULL, err);
}
