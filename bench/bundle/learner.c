/* Benchmark learner plugin for bench/run-bundle.sh: reads every document of --dl-data-collection through its
 * pipeline (so the model records them as consumed, as a real learner's does) and stores a model of
 * $BENCH_BUNDLE_MODEL_MIB MiB (default 256) of pseudo-random bytes (xorshift64: incompressible, no entropy pool
 * drained), written to a file in the workdir 1 MiB at a time and handed to the host, which uploads it to GridFS.
 * Built against libnemesyst only. */
#include <nemesyst.h>
#include <stdio.h>
#include <stdlib.h>

bool learn(nemesyst_ctx_t *ctx, bson_error_t *error);

bool learn(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    const char *coll, *env = getenv("BENCH_BUNDLE_MODEL_MIB");
    long mib = env ? strtol(env, NULL, 10) : 256;
    int64_t size;
    bson_t pipeline;
    if (!nemesyst_opt_str(ctx, "dl-data-collection", &coll, error) ||
        !nemesyst_opt_int(ctx, "dl-batch-size", &size, error) ||
        !nemesyst_opt_json(ctx, "dl-data-pipeline", &pipeline, error))
        return false;
    nemesyst_batches_t *b = nemesyst_batches_new(ctx, coll, &pipeline, (size_t)size, error);
    bson_destroy(&pipeline);
    if (!b)
        return false;
    const bson_t *const *docs;
    size_t n;
    while (nemesyst_batches_next(b, &docs, &n, error))
        ;
    uint64_t seen = nemesyst_batches_count(b);
    nemesyst_batches_destroy(b);
    if (error->code != 0)
        return false;
    char *path = bson_strdup_printf("%s/model.bin", nemesyst_workdir(ctx));
    FILE *f = fopen(path, "wb");
    static uint64_t buf[(1 << 20) / 8];
    uint64_t x = 0x9E3779B97F4A7C15u;
    bool ok = f != NULL;
    for (long m = 0; ok && m < mib; m++) {
        for (size_t i = 0; i < sizeof buf / 8; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[i] = x;
        }
        ok = fwrite(buf, 1, sizeof buf, f) == sizeof buf;
    }
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EIO, "cannot write %s", path);
        bson_free(path);
        return false;
    }
    bson_t *meta = BCON_NEW("kind", BCON_UTF8("bench"), "seen", BCON_INT64((int64_t)seen), "mib", BCON_INT64(mib));
    ok = nemesyst_emit_model_file(ctx, meta, path, true, error);
    bson_destroy(meta);
    bson_free(path);
    return ok;
}
