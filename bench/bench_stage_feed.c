/* Learner batch feed benchmark: the C plugin API (nemesyst_batches_new/next over a collection, which copies each
 * document out of the cursor and hashes it for lineage) against a raw libmongoc aggregate cursor loop over the same
 * collection with the same pipeline and cursor batchSize, in documents per second. The plugin context is the one
 * nemesyst-plugin-host builds (nemesyst__ctx_from_env), here in-process with the item pipe on /dev/null, so only
 * the feed is timed (no process start-up). Ours and raw alternate; medians are printed. The CPU columns are this
 * process's CPU seconds (the server's are not counted): FerretDB bounds the wall times, the CPU shows our own cost.
 * "with metrics": ours again, reporting one metric a batch (nemesyst_log_metric), as a learner logging its loss
 * per batch would; its ratio is against ours without.
 * Usage: bench_stage_feed --port P [--docs 20000] [--reps 3] [--batch 32,1024] */
#include <getopt.h>
#include <mongoc/mongoc.h>

#include "stage/common.h"
#include "plugin/plugin-private.h"

#define DB "bench_stage"
#define COLL "feed"
#define MAX_SIZES 8

static void die(const char *what, const bson_error_t *err)
{
    fprintf(stderr, "bench_stage_feed: %s: %s\n", what, err ? err->message : "failed");
    exit(1);
}

static void fill(mongoc_collection_t *coll, int docs)
{
    bson_t *d = bson_malloc((size_t)docs * sizeof *d);
    const bson_t **p = bson_malloc((size_t)docs * sizeof *p);
    bson_error_t err;
    mongoc_collection_drop(coll, NULL);
    for (int i = 0; i < docs; i++) {
        bench_make_doc(&d[i], i);
        p[i] = &d[i];
    }
    if (!mongoc_collection_insert_many(coll, p, (size_t)docs, NULL, NULL, &err))
        die("filling the collection", &err);
    for (int i = 0; i < docs; i++)
        bson_destroy(&d[i]);
    bson_free(d);
    bson_free(p);
}

static volatile uint64_t sink; /* keeps the loops from being optimised away */

static double feed_ours(nemesyst_ctx_t *ctx, size_t batch, int docs, bool metric, double *cpu)
{
    bson_error_t err;
    const bson_t *const *v;
    size_t n;
    uint64_t total = 0, bytes = 0;
    double c = bench_cpu_self(), t = bench_now();
    nemesyst_batches_t *b = nemesyst_batches_new(ctx, COLL, NULL, batch, &err);
    if (!b)
        die("nemesyst_batches_new", &err);
    int64_t step = 0;
    while (nemesyst_batches_next(b, &v, &n, &err)) {
        for (size_t i = 0; i < n; i++)
            bytes += v[i]->len;
        total += n;
        if (metric && !nemesyst_log_metric(ctx, "loss", step++, 1.0 / (double)(total + 1), &err))
            die("nemesyst_log_metric", &err);
    }
    if (err.code != 0)
        die("nemesyst_batches_next", &err);
    nemesyst_batches_destroy(b);
    t = bench_now() - t;
    *cpu = bench_cpu_self() - c;
    if (total != (uint64_t)docs) {
        fprintf(stderr, "bench_stage_feed: ours read %" PRIu64 " of %d\n", total, docs);
        exit(1);
    }
    sink += bytes;
    return t;
}

static double feed_raw(mongoc_collection_t *coll, size_t batch, int docs, double *cpu)
{
    bson_error_t err;
    const bson_t *doc;
    bson_t pipeline = BSON_INITIALIZER;
    uint64_t total = 0, bytes = 0;
    double c = bench_cpu_self(), t = bench_now();
    bson_t *opts = BCON_NEW("batchSize", BCON_INT32((int32_t)batch));
    mongoc_cursor_t *cur = mongoc_collection_aggregate(coll, MONGOC_QUERY_NONE, &pipeline, opts, NULL);
    while (mongoc_cursor_next(cur, &doc)) {
        bytes += doc->len;
        total++;
    }
    if (mongoc_cursor_error(cur, &err))
        die("mongoc_cursor_next", &err);
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    t = bench_now() - t;
    *cpu = bench_cpu_self() - c;
    if (total != (uint64_t)docs) {
        fprintf(stderr, "bench_stage_feed: raw read %" PRIu64 " of %d\n", total, docs);
        exit(1);
    }
    sink += bytes;
    return t;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"port", required_argument, NULL, 'p'},
                                              {"docs", required_argument, NULL, 'd'},
                                              {"reps", required_argument, NULL, 'r'},
                                              {"batch", required_argument, NULL, 'b'},
                                              {NULL, 0, NULL, 0}};
    int port = 0, docs = 20000, reps = 3, c, nsizes = 0;
    size_t sizes[MAX_SIZES];
    const char *batch_list = "32,1024";
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'p': port = atoi(optarg); break;
        case 'd': docs = atoi(optarg); break;
        case 'r': reps = atoi(optarg); break;
        case 'b': batch_list = optarg; break;
        default: return 2;
        }
    }
    for (const char *p = batch_list; *p && nsizes < MAX_SIZES;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v <= 0)
            break;
        sizes[nsizes++] = (size_t)v;
        p = *end == ',' ? end + 1 : end;
    }
    if (port <= 0 || docs <= 0 || reps < 1 || reps > BENCH_MAX_REPS || nsizes == 0) {
        fprintf(stderr, "usage: bench_stage_feed --port P [--docs N] [--reps R] [--batch 32,1024]\n");
        return 2;
    }
    char uri[128], fd[16];
    snprintf(uri, sizeof uri, "mongodb://127.0.0.1:%d/", port);
    int devnull = open("/dev/null", O_WRONLY);
    snprintf(fd, sizeof fd, "%d", devnull);
    setenv("NEMESYST_DB_URI", uri, 1);
    setenv("NEMESYST_DB_NAME", DB, 1);
    setenv("NEMESYST_STAGE", "learn", 1);
    setenv("NEMESYST_ITEM_FD", fd, 1);
    unsetenv("NEMESYST_ARGS_FILE");
    unsetenv("NEMESYST_PASSWORD_FD");

    mongoc_init();
    mongoc_log_set_handler(NULL, NULL); /* FerretDB refuses endSessions: a warning per client */
    mongoc_client_t *client = mongoc_client_new(uri);
    if (!client)
        die("mongoc_client_new", NULL);
    mongoc_collection_t *coll = mongoc_client_get_collection(client, DB, COLL);
    fill(coll, docs);
    bson_error_t err;
    nemesyst_ctx_t *ctx = nemesyst__ctx_from_env(&err);
    if (!ctx)
        die("plugin context", &err);

    double ours[MAX_SIZES][BENCH_MAX_REPS], raw[MAX_SIZES][BENCH_MAX_REPS], cpu_o[MAX_SIZES][BENCH_MAX_REPS],
        cpu_r[MAX_SIZES][BENCH_MAX_REPS], met[MAX_SIZES][BENCH_MAX_REPS], cpu_m[MAX_SIZES][BENCH_MAX_REPS], ignored;
    feed_ours(ctx, sizes[0], docs, false, &ignored); /* warm-up: connection, server caches */
    feed_raw(coll, sizes[0], docs, &ignored);
    for (int r = 0; r < reps; r++) {
        for (int s = 0; s < nsizes; s++) {
            ours[s][r] = feed_ours(ctx, sizes[s], docs, false, &cpu_o[s][r]);
            raw[s][r] = feed_raw(coll, sizes[s], docs, &cpu_r[s][r]);
            met[s][r] = feed_ours(ctx, sizes[s], docs, true, &cpu_m[s][r]);
        }
    }
    printf("Learner batch feed (C plugin API): %d documents of 212 bytes, median of %d run(s); ratio = ours/raw in "
           "documents/s\n",
           docs, reps);
    printf("%-10s %12s %12s %12s %12s %7s   %10s %10s %9s\n", "batch", "ours s", "ours docs/s", "raw s",
           "raw docs/s", "ratio", "ours CPU s", "raw CPU s", "CPU x raw");
    for (int s = 0; s < nsizes; s++) {
        double mo = bench_median(ours[s], reps), mr = bench_median(raw[s], reps);
        double co = bench_median(cpu_o[s], reps), cr = bench_median(cpu_r[s], reps);
        printf("%-10zu %12.3f %12.0f %12.3f %12.0f %7.2f   %10.3f %10.3f %9.1f\n", sizes[s], mo, docs / mo, mr,
               docs / mr, mr / mo, co, cr, cr > 0 ? co / cr : 0.0);
    }
    printf("with metrics (one nemesyst_log_metric a batch): ratio = time with / time without\n");
    printf("%-10s %12s %12s %9s   %10s %10s\n", "batch", "without s", "with s", "ratio", "CPU s", "with CPU s");
    for (int s = 0; s < nsizes; s++) {
        double mo = bench_median(ours[s], reps), mm = bench_median(met[s], reps);
        printf("%-10zu %12.3f %12.3f %9.3f   %10.3f %10.3f\n", sizes[s], mo, mm, mm / mo, bench_median(cpu_o[s], reps),
               bench_median(cpu_m[s], reps));
    }
    mongoc_collection_drop(coll, NULL);
    nemesyst__ctx_destroy(ctx);
    mongoc_collection_destroy(coll);
    mongoc_client_destroy(client);
    mongoc_cleanup();
    close(devnull);
    return 0;
}
