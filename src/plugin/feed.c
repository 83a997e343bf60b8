/* Batches of an aggregation pipeline for learners and predictors: the store's batch iterator (an explicit cursor
 * batchSize, bounded memory, never an empty last batch) with a running count + sha256 of what was handed out, so that
 * a model's metadata can name exactly the data it was trained on. */
#include "plugin/plugin-private.h"

#include <openssl/evp.h>
#include <string.h>
#include "util/sha256.h"

#define MARKER_CONSUMED "$nemesyst_consumed"

struct nemesyst_batches {
    nemesyst_ctx_t *ctx;
    char *collection;
    bson_t pipeline;          /* array form, for the consumed record */
    nem_batches_t *it;
    EVP_MD_CTX *sha;
    uint64_t count;
    bool exhausted, reported;
};

/* A pipeline is either array-like {"0": stage, ...} or {"pipeline": [...]}, as libmongoc accepts both. */
static void pipeline_array(const bson_t *pipeline, bson_t *out)
{
    bson_iter_t it;
    const uint8_t *data;
    uint32_t len;
    bson_t view;
    if (pipeline && bson_iter_init_find(&it, pipeline, "pipeline") && BSON_ITER_HOLDS_ARRAY(&it)) {
        bson_iter_array(&it, &len, &data);
        if (bson_init_static(&view, data, len)) {
            bson_copy_to(&view, out);
            return;
        }
    }
    if (pipeline)
        bson_copy_to(pipeline, out);
    else
        bson_init(out);
}

/* A learner group's member reads only its shard of the group's collection: {"$match": shard} goes first. */
static void add_shard(const bson_t *shard, bson_t *pipeline)
{
    bson_t out = BSON_INITIALIZER, st;
    bson_iter_t it;
    char key[16];
    const char *k;
    uint32_t i = 0;
    BSON_APPEND_DOCUMENT_BEGIN(&out, "0", &st);
    BSON_APPEND_DOCUMENT(&st, "$match", shard);
    bson_append_document_end(&out, &st);
    if (bson_iter_init(&it, pipeline))
        while (bson_iter_next(&it)) {
            bson_uint32_to_string(++i, &k, key, sizeof key);
            bson_append_value(&out, k, -1, bson_iter_value(&it));
        }
    bson_destroy(pipeline);
    bson_steal(pipeline, &out);
}

static void track(nemesyst_ctx_t *ctx, nemesyst_batches_t *b)
{
    if (ctx->n_live == ctx->cap_live) {
        ctx->cap_live = ctx->cap_live ? ctx->cap_live * 2 : 4;
        ctx->live = bson_realloc(ctx->live, ctx->cap_live * sizeof *ctx->live);
    }
    ctx->live[ctx->n_live++] = b;
}

void nemesyst__forget_batches(nemesyst_ctx_t *ctx, nemesyst_batches_t *b)
{
    for (size_t i = 0; i < ctx->n_live; i++) {
        if (ctx->live[i] == b) {
            ctx->live[i] = ctx->live[--ctx->n_live];
            return;
        }
    }
}

nemesyst_batches_t *nemesyst_batches_new(nemesyst_ctx_t *ctx, const char *collection, const bson_t *pipeline,
                                         size_t batch_size, bson_error_t *error)
{
    nem_store_t *store = nemesyst__store(ctx, error);
    bson_error_t e;
    if (!store)
        return NULL;
    if (!collection || batch_size == 0 || batch_size > INT32_MAX) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG, "batches need a collection and a batch size");
        return NULL;
    }
    uint32_t bad;
    const char *name, *why = pipeline ? nem_pipeline_problem(pipeline, &bad, &name) : NULL;
    if (why && !(bson_iter_init_find(&(bson_iter_t){0}, pipeline, "pipeline") && bson_count_keys(pipeline) == 1)) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EARG,
                       "nemesyst_batches_new on '%s': the pipeline's stage %u%s%.40s%s %s (pass an array such as "
                       "[{\"$match\": {}}], or NULL for every document)", collection, bad, *name ? " '" : "", name,
                       *name ? "'" : "", why);
        return NULL;
    }
    nemesyst_batches_t *b = BSON_ALIGNED_ALLOC0(nemesyst_batches_t); /* it embeds a bson_t (128-byte aligned) */
    b->ctx = ctx;
    b->collection = bson_strdup(collection);
    pipeline_array(pipeline, &b->pipeline);
    if (ctx->shard && ctx->shard_collection && !strcmp(collection, ctx->shard_collection))
        add_shard(ctx->shard, &b->pipeline);
    if (!(b->it = nem_batches_new(store, collection, &b->pipeline, batch_size, &e))) {
        nemesyst__store_error(error, &e);
        bson_destroy(&b->pipeline);
        bson_free(b->collection);
        bson_free(b);
        return NULL;
    }
    b->sha = EVP_MD_CTX_new();
    EVP_DigestInit_ex(b->sha, EVP_sha256(), NULL);
    track(ctx, b);
    return b;
}

void nemesyst_batches_digest(const nemesyst_batches_t *b, char hex[65])
{
    EVP_MD_CTX *copy = EVP_MD_CTX_new();
    /* a copy, so the running digest can still grow */
    EVP_MD_CTX_copy_ex(copy, b->sha);
    nem_sha256_final_hex(copy, hex);
    EVP_MD_CTX_free(copy);
}

uint64_t nemesyst_batches_count(const nemesyst_batches_t *b)
{
    return b->count;
}

void nemesyst__report_batches(nemesyst_batches_t *b)
{
    char hex[65];
    bson_error_t ignored;
    if (b->reported)
        return;
    b->reported = true;
    nemesyst_batches_digest(b, hex);
    nemesyst__report_consumed(b->ctx, b->collection, &b->pipeline, b->count, hex, b->exhausted, &ignored);
}

bool nemesyst_batches_next(nemesyst_batches_t *b, const bson_t *const **docs, size_t *n, bson_error_t *error)
{
    bson_error_t e = {0};
    if (!b->exhausted && nem_batches_next(b->it, docs, n, &e)) {
        for (size_t i = 0; i < *n; i++)
            EVP_DigestUpdate(b->sha, bson_get_data((*docs)[i]), (*docs)[i]->len);
        b->count += *n;
        return true;
    }
    if (e.code) {
        nemesyst__store_error(error, &e);
        return false;
    }
    b->exhausted = true;
    /* the end: report only when the data was read completely without errors */
    nemesyst__report_batches(b);
    if (error)
        memset(error, 0, sizeof *error);
    return false;
}

void nemesyst_batches_destroy(nemesyst_batches_t *b)
{
    if (!b)
        return;
    nemesyst__report_batches(b);
    nemesyst__forget_batches(b->ctx, b);
    nem_batches_destroy(b->it);
    EVP_MD_CTX_free(b->sha);
    bson_destroy(&b->pipeline);
    bson_free(b->collection);
    bson_free(b);
}

static bool already_reported(nemesyst_ctx_t *ctx, const char *key)
{
    for (size_t i = 0; i < ctx->n_reported; i++)
        if (strcmp(ctx->reported[i], key) == 0)
            return true;
    ctx->reported = bson_realloc(ctx->reported, (ctx->n_reported + 1) * sizeof *ctx->reported);
    ctx->reported[ctx->n_reported++] = bson_strdup(key);
    return false;
}

/* Several epochs over the same data give the same record: it is sent once. */
bool nemesyst__report_consumed(nemesyst_ctx_t *ctx, const char *collection, const bson_t *pipeline, uint64_t count,
                               const char *digest, bool complete, bson_error_t *error)
{
    char *key = bson_strdup_printf("%s\x1f%s\x1f%d", collection, digest, (int)complete);
    bool seen = already_reported(ctx, key);
    bson_free(key);
    if (seen)
        return true;
    bson_t marker = BSON_INITIALIZER, inner;
    BSON_APPEND_DOCUMENT_BEGIN(&marker, MARKER_CONSUMED, &inner);
    BSON_APPEND_UTF8(&inner, "collection", collection);
    BSON_APPEND_ARRAY(&inner, "pipeline", pipeline);
    BSON_APPEND_INT64(&inner, "count", (int64_t)count);
    BSON_APPEND_UTF8(&inner, "digest", digest);
    BSON_APPEND_BOOL(&inner, "complete", complete);
    bson_append_document_end(&marker, &inner);
    bool ok = nemesyst__write_item(ctx, &marker, error);
    bson_destroy(&marker);
    return ok;
}
