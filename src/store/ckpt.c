/* Checkpoints in GridFS (ckpt.h). */
#include "store/ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store-private.h"

#define FILES NEM_CHECKPOINT_BUCKET ".files"

static void hex_of(const unsigned char *md, unsigned n, char out[65])
{
    for (unsigned i = 0; i < n && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void sha256_buffer(const uint8_t *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    hex_of(md, n, out);
}

static bool sha256_file(const char *path, char out[65], int64_t *bytes, bson_error_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        nem_store_seterr(err, NEM_STORE_EIO, "cannot read checkpoint file '%s': %s", path, strerror(errno));
        return false;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t *buf = bson_malloc(1 << 20);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    ssize_t got;
    *bytes = 0;
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    while ((got = read(fd, buf, 1 << 20)) > 0 || (got < 0 && errno == EINTR)) {
        if (got < 0)
            continue;
        EVP_DigestUpdate(md, buf, (size_t)got);
        *bytes += got;
    }
    int e = errno;
    close(fd);
    bson_free(buf);
    EVP_DigestFinal_ex(md, digest, &n);
    EVP_MD_CTX_free(md);
    if (got < 0) {
        nem_store_seterr(err, NEM_STORE_EIO, "cannot read checkpoint file '%s': %s", path, strerror(e));
        return false;
    }
    hex_of(digest, n, out);
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
    char sha256[65];
    char name[160];
    bson_t metadata;
} entry_t;

typedef struct {
    entry_t *v;
    size_t n, cap;
} list_t;

static void list_free(list_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        bson_value_destroy(&l->v[i].id);
        bson_destroy(&l->v[i].metadata);
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
    bson_init(&e->metadata);
    if (!bson_iter_init_find(&it, doc, "_id"))
        return true;
    bson_value_copy(bson_iter_value(&it), &e->id);
    if (bson_iter_init_find(&it, doc, "filename") && BSON_ITER_HOLDS_UTF8(&it))
        bson_strncpy(e->name, bson_iter_utf8(&it, NULL), sizeof e->name);
    if (bson_iter_init_find(&it, doc, "metadata") && BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &m)) {
        while (bson_iter_next(&m)) {
            const char *k = bson_iter_key(&m);
            if (!strcmp(k, "step") && BSON_ITER_HOLDS_NUMBER(&m))
                e->step = bson_iter_as_int64(&m);
            else if (!strcmp(k, "attempt") && BSON_ITER_HOLDS_NUMBER(&m))
                e->attempt = bson_iter_as_int64(&m);
            else if (!strcmp(k, "bytes") && BSON_ITER_HOLDS_NUMBER(&m))
                e->bytes = bson_iter_as_int64(&m);
            else if (!strcmp(k, "sha256") && BSON_ITER_HOLDS_UTF8(&m))
                bson_strncpy(e->sha256, bson_iter_utf8(&m, NULL), sizeof e->sha256);
            else if (!strcmp(k, "metadata") && BSON_ITER_HOLDS_DOCUMENT(&m)) {
                uint32_t len;
                const uint8_t *data;
                bson_t view;
                bson_iter_document(&m, &len, &data);
                if (bson_init_static(&view, data, len)) {
                    bson_destroy(&e->metadata);
                    bson_copy_to(&view, &e->metadata);
                }
            }
        }
    }
    l->n++;
    return true;
}

/* This run's script's checkpoints (or all its scripts' when script is NULL), newest first. */
static bool list_checkpoints(nem_store_t *store, const char *run_id, const char *script, list_t *l, bson_error_t *err)
{
    bson_t filter = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&filter, "metadata.run", run_id);
    if (script)
        BSON_APPEND_UTF8(&filter, "metadata.script", script);
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

/* After a checkpoint is stored: keep the `keep` newest of the script, delete the rest. */
static bool prune(nem_store_t *store, const nem_ckpt_info_t *info, int64_t keep, bson_error_t *err)
{
    list_t l = {0};
    bool ok = list_checkpoints(store, info->run_id, info->script, &l, err);
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
                          int64_t keep, bson_error_t *err)
{
    char sha[65], name[512];
    bson_t meta;
    if (!check_info(info, keep, err))
        return false;
    sha256_buffer(data, len, sha);
    build_metadata(info, sha, (int64_t)len, &meta);
    file_name(info, name, sizeof name);
    bool ok = nem_gridfs_upload_buffer(store, NEM_CHECKPOINT_BUCKET, name, data, len, &meta, NULL, err) &&
              prune(store, info, keep, err);
    bson_destroy(&meta);
    return ok;
}

bool nem_ckpt_save_file(nem_store_t *store, const nem_ckpt_info_t *info, const char *path, int64_t keep,
                        bson_error_t *err)
{
    char sha[65], name[512];
    int64_t bytes;
    bson_t meta;
    if (!check_info(info, keep, err) || !sha256_file(path, sha, &bytes, err))
        return false;
    build_metadata(info, sha, bytes, &meta);
    file_name(info, name, sizeof name);
    bool ok = nem_gridfs_upload_file(store, NEM_CHECKPOINT_BUCKET, name, path, &meta, NULL, err) &&
              prune(store, info, keep, err);
    bson_destroy(&meta);
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
    bson_copy_to(&e->metadata, &found->metadata);
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
    if (!list_checkpoints(store, run_id, script, &l, err)) {
        rc = -1;
        goto out;
    }
    for (size_t i = 0; i < l.n && rc == 0; i++) {
        const entry_t *e = &l.v[i];
        bson_error_t e_err;
        char sha[65] = "";
        int64_t bytes = 0;
        if (path) {
            char *tmp = bson_strdup_printf("%s.part", path);
            bool got = nem_gridfs_download_to_file(store, NEM_CHECKPOINT_BUCKET, &e->id, tmp, &e_err) &&
                       sha256_file(tmp, sha, &bytes, &e_err);
            if (!got) {
                unlink(tmp);
                skip(found, tried, e, e_err.message);
            } else if (strcmp(sha, e->sha256) != 0) {
                unlink(tmp);
                skip(found, tried, e, "its sha256 does not match what was saved");
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
            if (!nem_gridfs_download_to_buffer(store, NEM_CHECKPOINT_BUCKET, &e->id, &buf, &n, &e_err)) {
                skip(found, tried, e, e_err.message);
                continue;
            }
            sha256_buffer(buf, n, sha);
            if (strcmp(sha, e->sha256) != 0) {
                bson_free(buf);
                skip(found, tried, e, "its sha256 does not match what was saved");
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
    bool ok = list_checkpoints(store, run_id, script, &l, err) && delete_entries(store, l.v, l.n, deleted, err);
    list_free(&l);
    return ok;
}

int64_t nem_ckpt_newest_step(nem_store_t *store, const char *run_id, const char *script, bson_error_t *err)
{
    list_t l = {0};
    int64_t step = -1;
    if (!list_checkpoints(store, run_id, script, &l, err))
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
