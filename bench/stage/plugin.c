/* Benchmark cleaner plugin: emits $BENCH_STAGE_DOCS documents (default 20000) shaped like bench_stage_ingest's
 * raw baseline (see bench/bench_stage_ingest.c: i, s0..s6, n0..n6). Built against libnemesyst only. */
#include <nemesyst.h>
#include <stdlib.h>

bool nemesyst_main(nemesyst_ctx_t *ctx, bson_error_t *error);

bool nemesyst_main(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    const char *env = getenv("BENCH_STAGE_DOCS");
    long n = env ? strtol(env, NULL, 10) : 20000;
    static const char *const skeys[] = {"s0", "s1", "s2", "s3", "s4", "s5", "s6"};
    static const char *const nkeys[] = {"n0", "n1", "n2", "n3", "n4", "n5", "n6"};
    bson_t doc;
    bson_init(&doc);
    for (long i = 0; i < n; i++) {
        bson_reinit(&doc);
        BSON_APPEND_INT32(&doc, "i", (int32_t)i);
        for (int k = 0; k < 7; k++)
            BSON_APPEND_UTF8(&doc, skeys[k], "miNVpaKWqm");
        for (int k = 0; k < 7; k++)
            BSON_APPEND_INT32(&doc, nkeys[k], k * 7919);
        if (!nemesyst_emit(ctx, &doc, error)) {
            bson_destroy(&doc);
            return false;
        }
    }
    bson_destroy(&doc);
    return true;
}
