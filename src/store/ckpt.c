/* Checkpoints in GridFS (ckpt.h). */
#include "store/ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store-private.h"
#include "util/sha256.h"

#define FILES NEM_CHECKPOINT_BUCKET ".files"

/* ---- the sha256, computed while the bytes stream ----
 * A save or a load hands the bytes to a tap on its GridFS transfer (store.h), which feeds them to a sha256 on a thread
 * of its own: the hashing overlaps the server's round trips instead of taking a pass of its own before the upload or
 * after the download. A buffer being saved is handed to the thread whole before its first chunk is sent. Bytes that
 * stay where they are until the transfer ends (the caller's buffer, the buffer being downloaded into) are hashed in
 * place; others are copied into one of a few slots first. The digest goes into the files document, written only after
 * every chunk (a save), or is compared before the bytes are handed over or the file is renamed into place (a load).
 * Without a thread the bytes are hashed as they come. */

#define HASH_SLOTS 4
#define HASH_SLOT_BYTES ((size_t)1 << 20)
#define HASH_QUEUE 64

typedef struct {
    const uint8_t *data;
    size_t len;
    int slot; /* -1: hashed in place */
} hash_job_t;

typedef struct {
    EVP_MD_CTX *md;
    int64_t bytes;
    bool threaded, closing;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    hash_job_t q[HASH_QUEUE];
    size_t head, count;           /* queued jobs; the one being hashed is no longer queued */
    uint8_t *slot[HASH_SLOTS];
    bool slot_busy[HASH_SLOTS];
    /* what the tap's finish does with the digest */
    const nem_ckpt_info_t *info;  /* a save: builds the metadata */
    const char *want;             /* a load: the sha256 that was saved */
    char sha[65];
} hasher_t;

static void *hash_main(void *arg)
{
    hasher_t *h = arg;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (h->count == 0 && !h->closing)
            pthread_cond_wait(&h->cv, &h->mu);
        if (h->count == 0)
            break;
        hash_job_t job = h->q[h->head];
        h->head = (h->head + 1) % HASH_QUEUE;
        h->count--;
        pthread_mutex_unlock(&h->mu);
        EVP_DigestUpdate(h->md, job.data, job.len);
        pthread_mutex_lock(&h->mu);
        if (job.slot >= 0)
            h->slot_busy[job.slot] = false;
        pthread_cond_broadcast(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

static void hasher_init(hasher_t *h, const nem_ckpt_info_t *info, const char *want)
{
    memset(h, 0, sizeof *h);
    h->info = info;
    h->want = want;
    h->md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(h->md, EVP_sha256(), NULL);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    h->threaded = pthread_create(&h->thread, NULL, hash_main, h) == 0;
}

/* Queues a job (the lock held): waits for room, merges bytes in place that follow the last queued ones. */
static void hasher_queue(hasher_t *h, const uint8_t *data, size_t len, int slot)
{
    if (slot < 0 && h->count > 0) {
        hash_job_t *last = &h->q[(h->head + h->count - 1) % HASH_QUEUE];
        if (last->slot < 0 && last->data + last->len == data) {
            last->len += len;
            return;
        }
    }
    while (h->count == HASH_QUEUE)
        pthread_cond_wait(&h->cv, &h->mu);
    h->q[(h->head + h->count) % HASH_QUEUE] = (hash_job_t){data, len, slot};
    h->count++;
    pthread_cond_broadcast(&h->cv);
}

static void tap_piece(void *ctx, const uint8_t *data, size_t len, bool stable)
{
    hasher_t *h = ctx;
    h->bytes += (int64_t)len;
    if (!h->threaded) {
        EVP_DigestUpdate(h->md, data, len);
        return;
    }
    pthread_mutex_lock(&h->mu);
    if (stable) {
        hasher_queue(h, data, len, -1);
    } else {
        while (len > 0) {
            size_t n = len < HASH_SLOT_BYTES ? len : HASH_SLOT_BYTES;
            int free_slot;
            for (;;) {
                for (free_slot = 0; free_slot < HASH_SLOTS && h->slot_busy[free_slot]; free_slot++)
                    ;
                if (free_slot < HASH_SLOTS)
                    break;
                pthread_cond_wait(&h->cv, &h->mu);
            }
            h->slot_busy[free_slot] = true;
            pthread_mutex_unlock(&h->mu); /* the slot is ours: copy without the lock */
            if (!h->slot[free_slot])
                h->slot[free_slot] = bson_malloc(HASH_SLOT_BYTES);
            memcpy(h->slot[free_slot], data, n);
            pthread_mutex_lock(&h->mu);
            hasher_queue(h, h->slot[free_slot], n, free_slot);
            data += n;
            len -= n;
        }
    }
    pthread_mutex_unlock(&h->mu);
}

/* Waits for every queued byte and frees everything; the digest in h->sha. */
static void hasher_end(hasher_t *h)
{
    if (h->threaded) {
        pthread_mutex_lock(&h->mu);
        h->closing = true;
        pthread_cond_broadcast(&h->cv);
        pthread_mutex_unlock(&h->mu);
        pthread_join(h->thread, NULL);
        h->threaded = false;
    }
    if (h->md) {
        nem_sha256_final_hex(h->md, h->sha);
        EVP_MD_CTX_free(h->md);
        h->md = NULL;
    }
    for (int i = 0; i < HASH_SLOTS; i++)
        bson_free(h->slot[i]);
    memset(h->slot, 0, sizeof h->slot);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
}

static void build_metadata(const nem_ckpt_info_t *info, const char sha[65], int64_t bytes, bson_t *meta);

/* The tap's finish: a save adds the checkpoint's metadata with the digest; a load compares it. */
static bool tap_finish(void *ctx, bool ok, bson_t *metadata, bson_error_t *err)
{
    hasher_t *h = ctx;
    hasher_end(h);
    if (!ok)
        return false;
    if (h->info) {
        bson_t meta;
        build_metadata(h->info, h->sha, h->bytes, &meta);
        bson_concat(metadata, &meta);
        bson_destroy(&meta);
    } else if (strcmp(h->sha, h->want) != 0) {
        nem_store_seterr(err, NEM_STORE_ECORRUPT, "its sha256 does not match what was saved");
        return false;
    }
    return true;
}

static void build_metadata(const nem_ckpt_info_t *info, const char sha[65], int64_t bytes, bson_t *meta)
{
    bson_init(meta);
    BSON_APPEND_UTF8(meta, "run", info->run_id);
    BSON_APPEND_UTF8(meta, "script", info->script);
    BSON_APPEND_INT64(meta, "attempt", info->attempt);
    BSON_APPEND_INT64(meta, "step", info->step);
    BSON_APPEND_UTF8(meta, "sha256", sha);
    BSON_APPEND_INT64(meta, "bytes", bytes);
    BSON_APPEND_UTF8(meta, "host", info->host ? info->host : "");
    BSON_APPEND_INT32(meta, "rank", info->rank);
    BSON_APPEND_DATE_TIME(meta, "t", (int64_t)time(NULL) * 1000);
    if (info->pending)
        BSON_APPEND_BOOL(meta, "pending", true);
    if (info->metadata)
        BSON_APPEND_DOCUMENT(meta, "metadata", info->metadata);
    else {
        bson_t empty = BSON_INITIALIZER;
        BSON_APPEND_DOCUMENT(meta, "metadata", &empty);
    }
}

/* One stored checkpoint, as listed. */
typedef struct {
    bson_value_t id;
    int64_t step, attempt, bytes;
    int64_t length;     /* the GridFS file's, with its chunk size: the load reads only the chunks */
    int32_t chunk_size;
    bool pending;
    char sha256[65];
    char name[160];
    bson_t *metadata; /* a pointer: a bson_t wants a 128-byte alignment that a realloc'ed array does not give */
} entry_t;

typedef struct {
    entry_t *v;
    size_t n, cap;
} list_t;

static void list_free(list_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        bson_value_destroy(&l->v[i].id);
        bson_destroy(l->v[i].metadata);
    }
    bson_free(l->v);
    memset(l, 0, sizeof *l);
}

static bool take_entry(const bson_t *doc, void *ud, bson_error_t *err)
{
    (void)err;
    list_t *l = ud;
    bson_iter_t it, m;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 8;
        l->v = bson_realloc(l->v, l->cap * sizeof *l->v);
    }
    entry_t *e = &l->v[l->n];
    memset(e, 0, sizeof *e);
    if (!bson_iter_init_find(&it, doc, "_id"))
        return true;
    e->metadata = bson_new();
    bson_value_copy(bson_iter_value(&it), &e->id);
    if (bson_iter_init_find(&it, doc, "filename") && BSON_ITER_HOLDS_UTF8(&it))
        bson_strncpy(e->name, bson_iter_utf8(&it, NULL), sizeof e->name);
    e->length = bson_iter_init_find(&it, doc, "length") && BSON_ITER_HOLDS_NUMBER(&it) ? bson_iter_as_int64(&it) : -1;
    e->chunk_size = bson_iter_init_find(&it, doc, "chunkSize") && BSON_ITER_HOLDS_NUMBER(&it) &&
                            bson_iter_as_int64(&it) > 0 && bson_iter_as_int64(&it) <= INT32_MAX
                        ? (int32_t)bson_iter_as_int64(&it)
                        : 0; /* not known: the download reads the files document itself */
    if (bson_iter_init_find(&it, doc, "metadata") && BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &m)) {
        while (bson_iter_next(&m)) {
            const char *k = bson_iter_key(&m);
            if (!strcmp(k, "step") && BSON_ITER_HOLDS_NUMBER(&m))
                e->step = bson_iter_as_int64(&m);
            else if (!strcmp(k, "attempt") && BSON_ITER_HOLDS_NUMBER(&m))
                e->attempt = bson_iter_as_int64(&m);
            else if (!strcmp(k, "bytes") && BSON_ITER_HOLDS_NUMBER(&m))
                e->bytes = bson_iter_as_int64(&m);
            else if (!strcmp(k, "pending"))
                e->pending = bson_iter_as_bool(&m);
            else if (!strcmp(k, "sha256") && BSON_ITER_HOLDS_UTF8(&m))
                bson_strncpy(e->sha256, bson_iter_utf8(&m, NULL), sizeof e->sha256);
            else if (!strcmp(k, "metadata") && BSON_ITER_HOLDS_DOCUMENT(&m)) {
                uint32_t len;
                const uint8_t *data;
                bson_t view;
                bson_iter_document(&m, &len, &data);
                if (bson_init_static(&view, data, len)) {
                    bson_destroy(e->metadata);
                    e->metadata = bson_copy(&view);
                }
            }
        }
    }
    l->n++;
    return true;
}

typedef enum { CK_ALL, CK_COMMITTED, CK_PENDING } which_t;

/* This run's script's checkpoints (or all its scripts' when script is NULL), newest first: all of them, the
 * committed ones (loadable), or the pending ones. */
static bool list_checkpoints(nem_store_t *store, const char *run_id, const char *script, which_t which, list_t *l,
                             bson_error_t *err)
{
    bson_t filter = BSON_INITIALIZER, ne;
    BSON_APPEND_UTF8(&filter, "metadata.run", run_id);
    if (script)
        BSON_APPEND_UTF8(&filter, "metadata.script", script);
    if (which == CK_COMMITTED) {
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "metadata.pending", &ne);
        BSON_APPEND_BOOL(&ne, "$ne", true);
        bson_append_document_end(&filter, &ne);
    } else if (which == CK_PENDING) {
        BSON_APPEND_BOOL(&filter, "metadata.pending", true);
    }
    bson_t *opts = BCON_NEW("sort", "{", "metadata.step", BCON_INT32(-1), "uploadDate", BCON_INT32(-1), "_id",
                            BCON_INT32(-1), "}");
    bool ok = nem_store_find(store, FILES, &filter, opts, take_entry, l, err);
    bson_destroy(opts);
    bson_destroy(&filter);
    return ok;
}

/* Deletes the given checkpoints by _id (chunks first, as GridFS does). */
static bool delete_entries(nem_store_t *store, const entry_t *v, size_t n, uint64_t *deleted, bson_error_t *err)
{
    if (n == 0) {
        if (deleted)
            *deleted = 0;
        return true;
    }
    bson_t filter = BSON_INITIALIZER, in, ids;
    char key[16];
    const char *k;
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &in);
    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &ids);
    for (size_t i = 0; i < n; i++) {
        bson_uint32_to_string((uint32_t)i, &k, key, sizeof key);
        bson_append_value(&ids, k, -1, &v[i].id);
    }
    bson_append_array_end(&in, &ids);
    bson_append_document_end(&filter, &in);
    bool ok = nem_gridfs_delete_matching(store, NEM_CHECKPOINT_BUCKET, &filter, deleted, err);
    bson_destroy(&filter);
    return ok;
}

/* After a checkpoint is stored (committed): keep the `keep` newest committed ones of the script, delete the rest. */
static bool prune(nem_store_t *store, const char *run_id, const char *script, int64_t keep, bson_error_t *err)
{
    list_t l = {0};
    bool ok = list_checkpoints(store, run_id, script, CK_COMMITTED, &l, err);
    if (ok && keep >= 1 && l.n > (size_t)keep)
        ok = delete_entries(store, l.v + keep, l.n - (size_t)keep, NULL, err);
    list_free(&l);
    return ok;
}

static void file_name(const nem_ckpt_info_t *info, char *out, size_t len)
{
    snprintf(out, len, "%s/%s/step-%" PRId64, info->run_id, info->script, info->step);
}

static bool check_info(const nem_ckpt_info_t *info, int64_t keep, bson_error_t *err)
{
    if (!info->run_id || !info->script || info->step < 0 || keep < 1) {
        nem_store_seterr(err, NEM_STORE_EOPTION, "a checkpoint needs a run, a script, a step >= 0 (got %" PRId64
                         ") and a keep count >= 1 (got %" PRId64 ")", info->step, keep);
        return false;
    }
    return true;
}

bool nem_ckpt_save_buffer(nem_store_t *store, const nem_ckpt_info_t *info, const uint8_t *data, size_t len,
                          int64_t keep, bson_value_t *id, bson_error_t *err)
{
    char name[512];
    hasher_t h;
    nem_gridfs_tap_t tap = {.piece = tap_piece, .finish = tap_finish, .ctx = &h};
    if (!check_info(info, keep, err))
        return false;
    file_name(info, name, sizeof name);
    hasher_init(&h, info, NULL);
    /* The bytes are all here and stay put: the thread hashes them whole from the start (one hand-over, not one a
     * chunk), while the chunks travel; the files document waits for the digest. */
    tap_piece(&h, data ? data : (const uint8_t *)"", data ? len : 0, true);
    tap.piece = NULL;
    return nem_gridfs_upload_buffer_tap(store, NEM_CHECKPOINT_BUCKET, name, data, len, NULL, &tap, id, err) &&
           (info->pending || prune(store, info->run_id, info->script, keep, err));
}

bool nem_ckpt_save_file(nem_store_t *store, const nem_ckpt_info_t *info, const char *path, int64_t keep,
                        bson_value_t *id, bson_error_t *err)
{
    char name[512];
    hasher_t h;
    nem_gridfs_tap_t tap = {.piece = tap_piece, .finish = tap_finish, .ctx = &h};
    int fd;
    if (!check_info(info, keep, err))
        return false;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) { /* the usual mistake, named as such */
        nem_store_seterr(err, NEM_STORE_EIO, "cannot read checkpoint file '%s': %s", path, strerror(errno));
        return false;
    }
    close(fd);
    file_name(info, name, sizeof name);
    hasher_init(&h, info, NULL);
    return nem_gridfs_upload_file_tap(store, NEM_CHECKPOINT_BUCKET, name, path, NULL, &tap, id, err) &&
           (info->pending || prune(store, info->run_id, info->script, keep, err));
}

bool nem_ckpt_commit(nem_store_t *store, const char *run_id, const char *script, const bson_value_t *id,
                     int64_t attempt, int64_t keep, bson_error_t *err)
{
    bson_t filter = BSON_INITIALIZER, update = BSON_INITIALIZER, set;
    list_t stale = {0};
    int64_t matched = 0;
    bson_append_value(&filter, "_id", -1, id);
    BSON_APPEND_UTF8(&filter, "metadata.run", run_id);
    BSON_APPEND_UTF8(&filter, "metadata.script", script);
    BSON_APPEND_BOOL(&filter, "metadata.pending", true);
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
    BSON_APPEND_BOOL(&set, "metadata.pending", false);
    bson_append_document_end(&update, &set);
    bool ok = nem_store_update_one_matched(store, FILES, &filter, &update, &matched, err);
    if (ok && matched == 0) { /* a commit marker of no checkpoint this script saved: refused, nothing pruned */
        bson_t shown = BSON_INITIALIZER; /* the id as extended JSON: {"0" : ID} written, only ID shown */
        bson_append_value(&shown, "0", -1, id);
        size_t n = 0;
        char *json = bson_as_relaxed_extended_json(&shown, &n);
        static const char head[] = "{ \"0\" : ";
        bool framed = json && n >= sizeof head + 1 && strncmp(json, head, sizeof head - 1) == 0;
        nem_store_seterr(err, NEM_STORE_ENOTFOUND,
                         "checkpoint commit of id %.*s: no pending checkpoint of %s in run %s has that id (a commit "
                         "marker must name a checkpoint the script saved and has not committed yet)",
                         framed ? (int)(n - (sizeof head - 1) - 2) : 0, framed ? json + sizeof head - 1 : "", script,
                         run_id);
        bson_free(json);
        bson_destroy(&shown);
        ok = false;
    }
    ok = ok && prune(store, run_id, script, keep, err) &&
         list_checkpoints(store, run_id, script, CK_PENDING, &stale, err);
    if (ok) { /* pending ones of earlier attempts were never committed: their rank died before it could */
        size_t n = 0;
        for (size_t i = 0; i < stale.n; i++)
            if (stale.v[i].attempt < attempt) {
                entry_t tmp = stale.v[n];
                stale.v[n++] = stale.v[i];
                stale.v[i] = tmp;
            }
        ok = delete_entries(store, stale.v, n, NULL, err);
    }
    list_free(&stale);
    bson_destroy(&update);
    bson_destroy(&filter);
    return ok;
}

/* Notes one checkpoint passed over in found->skipped (bounded) and in the error kept for "none usable". */
static void skip(nem_ckpt_found_t *found, bson_string_t *tried, const entry_t *e, const char *why)
{
    size_t used = strlen(found->skipped);
    if (used < sizeof found->skipped - 1)
        snprintf(found->skipped + used, sizeof found->skipped - used, "%s'%s' (%s)", used ? "; " : "", e->name, why);
    bson_string_append_printf(tried, "%s'%s' (%s)", tried->len ? "; " : "", e->name, why);
}

static void fill_found(nem_ckpt_found_t *found, const entry_t *e)
{
    found->step = e->step;
    found->attempt = e->attempt;
    bson_copy_to(e->metadata, &found->metadata);
    bson_strncpy(found->sha256, e->sha256, sizeof found->sha256);
}

/* Loads the newest usable one: to a buffer when path is NULL, else to path. */
static int load(nem_store_t *store, const char *run_id, const char *script, const char *path, uint8_t **data,
                size_t *len, nem_ckpt_found_t *found, bson_error_t *err)
{
    list_t l = {0};
    bson_string_t *tried = bson_string_new("");
    int rc = 0;
    memset(found, 0, sizeof *found);
    bson_init(&found->metadata);
    if (!list_checkpoints(store, run_id, script, CK_COMMITTED, &l, err)) {
        rc = -1;
        goto out;
    }
    for (size_t i = 0; i < l.n && rc == 0; i++) {
        const entry_t *e = &l.v[i];
        bson_error_t e_err;
        hasher_t h;
        /* the listing read each files document: the download reads only the chunks */
        nem_gridfs_tap_t tap = {tap_piece, tap_finish, &h, e->length, e->chunk_size};
        hasher_init(&h, NULL, e->sha256); /* the download fails, its bytes dropped, unless the sha256 matches */
        if (path) {
            char *tmp = bson_strdup_printf("%s.part", path);
            if (!nem_gridfs_download_to_file_tap(store, NEM_CHECKPOINT_BUCKET, &e->id, tmp, &tap, &e_err)) {
                unlink(tmp);
                skip(found, tried, e, e_err.message);
            } else if (rename(tmp, path) != 0) {
                nem_store_seterr(err, NEM_STORE_EIO, "cannot move checkpoint to '%s': %s", path, strerror(errno));
                unlink(tmp);
                rc = -1;
            } else {
                rc = 1;
            }
            bson_free(tmp);
        } else {
            uint8_t *buf = NULL;
            size_t n = 0;
            if (!nem_gridfs_download_to_buffer_tap(store, NEM_CHECKPOINT_BUCKET, &e->id, &buf, &n, &tap, &e_err)) {
                skip(found, tried, e, e_err.message);
                continue;
            }
            *data = buf;
            *len = n;
            rc = 1;
        }
        if (rc == 1)
            fill_found(found, e);
    }
    if (rc == 0 && l.n > 0) {
        nem_store_seterr(err, NEM_STORE_ECORRUPT, "no usable checkpoint of %s in run %s: tried %s", script, run_id,
                         tried->str);
        rc = -1;
    }
out:
    bson_string_free(tried, true);
    list_free(&l);
    return rc;
}

int nem_ckpt_load_buffer(nem_store_t *store, const char *run_id, const char *script, uint8_t **data, size_t *len,
                         nem_ckpt_found_t *found, bson_error_t *err)
{
    *data = NULL;
    *len = 0;
    return load(store, run_id, script, NULL, data, len, found, err);
}

int nem_ckpt_load_file(nem_store_t *store, const char *run_id, const char *script, const char *path,
                       nem_ckpt_found_t *found, bson_error_t *err)
{
    return load(store, run_id, script, path, NULL, NULL, found, err);
}

bool nem_ckpt_remove(nem_store_t *store, const char *run_id, const char *script, uint64_t *deleted, bson_error_t *err)
{
    list_t l = {0};
    bool ok = list_checkpoints(store, run_id, script, CK_ALL, &l, err) && delete_entries(store, l.v, l.n, deleted, err);
    list_free(&l);
    return ok;
}

int64_t nem_ckpt_newest_step(nem_store_t *store, const char *run_id, const char *script, bson_error_t *err)
{
    list_t l = {0};
    int64_t step = -1;
    if (!list_checkpoints(store, run_id, script, CK_COMMITTED, &l, err))
        step = -2;
    else if (l.n > 0)
        step = l.v[0].step;
    list_free(&l);
    return step;
}

bool nem_ckpt_trim_after(nem_store_t *store, const char *collection, const char *run_id, const char *script,
                         int64_t step, bson_error_t *err)
{
    bson_t filter = BSON_INITIALIZER, gt;
    BSON_APPEND_UTF8(&filter, "run", run_id);
    BSON_APPEND_UTF8(&filter, "script", script);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "step", &gt);
    BSON_APPEND_INT64(&gt, "$gt", step);
    bson_append_document_end(&filter, &gt);
    bool ok = nem_store_delete_matching(store, collection, &filter, NULL, err);
    bson_destroy(&filter);
    return ok;
}
