/* Clean-stage ingest benchmark: documents per second through the real `nemesyst --data-clean` for each script
 * kind (an executable writing JSON lines, an original-style Python generator through the adapter, a C plugin
 * calling nemesyst_emit), against raw libmongoc (mongoc_collection_insert_many) inserting the same documents into
 * the same server, in the same run. Kinds alternate within each repetition; medians are printed.
 *   ours, process: wall time of the whole nemesyst process (start-up, connection, run record, stage, summary)
 *   ours, script:  the script's start-to-end time from the run summary (--summary-json; ms resolution), which
 *                  covers the child and the host's writes of its documents
 *   executable, no provenance: the executable again with --provenance false (documents stored as emitted)
 *   raw:           insert_many of the N documents, built before the clock starts
 *   CPU s:         client-side CPU seconds (ours: nemesyst and its script, from RUSAGE_CHILDREN; raw: this process
 *                  during insert_many); the server's CPU is not counted. FerretDB is the bottleneck of the wall
 *                  times, so this column shows what our side costs on its own.
 *   fixed cost:    (with --empty PATH) the process wall time of nemesyst running one script that exits at once
 *   storable check: the walk the host makes over each document before sending it to a FerretDB 1.x server
 *                  (store/storable.h), timed alone over the same N documents, against raw insert_many's time per
 *                  document: its share of the ingest time
 * --raw-once: build the N documents and insert_many them once, then exit (bench/run-instr.sh counts its
 * instructions under callgrind as the floor of client work per document).
 * After each kind's first measured run, the last stored document (less _id and the provenance field) is checked
 * against the raw baseline's.
 * Usage: bench_stage_ingest --port P --nemesyst PATH --exec PATH --python PATH --plugin PATH [--empty PATH]
 *        [--docs 20000] [--reps 3] [--tmp DIR]      (bench/run-stage.sh starts a FerretDB and passes these) */
#include <getopt.h>
#include <mongoc/mongoc.h>

#include "stage/common.h"
#include "store/storable.h"

#define DB "bench_stage"
#define COLL "ingest"

enum { RAW, EXEC, PYTHON, PLUGIN, EXEC_NOPROV, KINDS, EMPTY = KINDS };
static const char *const kind_name[KINDS] = {"raw insert_many", "executable (JSON lines)", "Python (adapter)",
                                             "C plugin (nemesyst_emit)", "executable, no provenance"};

typedef struct {
    mongoc_client_t *client;
    mongoc_collection_t *coll;
    const char *nemesyst, *script[KINDS], *empty, *tmp;
    int port, docs;
} bench_t;

static void die(const char *what, const bson_error_t *err)
{
    fprintf(stderr, "bench_stage_ingest: %s: %s\n", what, err ? err->message : "failed");
    exit(1);
}

static const bson_t *ping_command(void)
{
    static bson_t ping = BSON_INITIALIZER;
    if (bson_empty(&ping))
        BSON_APPEND_INT32(&ping, "ping", 1);
    return &ping;
}

static void drop(bench_t *b)
{
    mongoc_collection_drop(b->coll, NULL); /* absent the first time */
}

static int64_t count(bench_t *b)
{
    bson_error_t err;
    bson_t filter = BSON_INITIALIZER;
    int64_t n = mongoc_collection_count_documents(b->coll, &filter, NULL, NULL, NULL, &err);
    if (n < 0)
        die("count_documents", &err);
    return n;
}

/* The last document as stored, less _id and the provenance field, must be the raw baseline's document. */
static void check_same(bench_t *b, int kind)
{
    bson_t *filter = BCON_NEW("i", BCON_INT32(b->docs - 1)), got = BSON_INITIALIZER, want;
    const bson_t *doc;
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(b->coll, filter, NULL, NULL);
    bool ok = mongoc_cursor_next(cur, &doc);
    if (ok)
        bson_copy_to_excluding_noinit(doc, &got, "_id", "_nemesyst", NULL);
    bench_make_doc(&want, b->docs - 1);
    if (!ok || !bson_equal(&got, &want)) {
        char *json = ok ? bson_as_relaxed_extended_json(doc, NULL) : NULL;
        fprintf(stderr, "bench_stage_ingest: %s stored another document: %s\n", kind_name[kind], json ? json : "none");
        exit(1);
    }
    bson_destroy(&got);
    bson_destroy(&want);
    bson_destroy(filter);
    mongoc_cursor_destroy(cur);
}

/* Seconds per document of nem_storable_ferretdb over the N documents (repeated for at least 0.2 s). */
static double storable_walk(bench_t *b)
{
    bson_t *docs = bson_malloc((size_t)b->docs * sizeof *docs);
    nem_unstorable_t why;
    long walked = 0;
    for (int i = 0; i < b->docs; i++)
        bench_make_doc(&docs[i], i);
    double t = bench_now(), el;
    do {
        for (int i = 0; i < b->docs; i++)
            if (!nem_storable_ferretdb(&docs[i], &why)) {
                fprintf(stderr, "bench_stage_ingest: document %d: %s %s\n", i, why.path, why.what);
                exit(1);
            }
        walked += b->docs;
    } while ((el = bench_now() - t) < 0.2);
    for (int i = 0; i < b->docs; i++)
        bson_destroy(&docs[i]);
    bson_free(docs);
    return el / (double)walked;
}

static double raw_insert(bench_t *b, double *cpu)
{
    bson_t *docs = bson_malloc((size_t)b->docs * sizeof *docs);
    const bson_t **ptrs = bson_malloc((size_t)b->docs * sizeof *ptrs);
    bson_error_t err;
    for (int i = 0; i < b->docs; i++) {
        bench_make_doc(&docs[i], i);
        ptrs[i] = &docs[i];
    }
    double c = bench_cpu_self(), t = bench_now();
    if (!mongoc_collection_insert_many(b->coll, ptrs, (size_t)b->docs, NULL, NULL, &err))
        die("mongoc_collection_insert_many", &err);
    t = bench_now() - t;
    *cpu = bench_cpu_self() - c;
    for (int i = 0; i < b->docs; i++)
        bson_destroy(&docs[i]);
    bson_free(docs);
    bson_free(ptrs);
    return t;
}

/* The script's start-to-end seconds from the summary JSON, checking it succeeded with every document. */
static double script_seconds(bench_t *b, const char *path)
{
    bson_error_t err;
    bson_json_reader_t *r = bson_json_reader_new_from_file(path, &err);
    bson_t doc = BSON_INITIALIZER;
    bson_iter_t it;
    int64_t started = 0, ended = 0, docs = -1;
    if (!r || bson_json_reader_read(r, &doc, &err) != 1)
        die("reading the summary JSON", &err);
    if (bson_iter_init(&it, &doc) && bson_iter_find_descendant(&it, "scripts.0.started", &it) &&
        BSON_ITER_HOLDS_DATE_TIME(&it))
        started = bson_iter_date_time(&it);
    if (bson_iter_init(&it, &doc) && bson_iter_find_descendant(&it, "scripts.0.ended", &it) &&
        BSON_ITER_HOLDS_DATE_TIME(&it))
        ended = bson_iter_date_time(&it);
    if (bson_iter_init(&it, &doc) && bson_iter_find_descendant(&it, "scripts.0.documents", &it))
        docs = bson_iter_as_int64(&it);
    if (docs != b->docs || ended < started) {
        fprintf(stderr, "bench_stage_ingest: summary %s: %" PRId64 " documents of %d\n", path, docs, b->docs);
        exit(1);
    }
    bson_destroy(&doc);
    bson_json_reader_destroy(r);
    return (double)(ended - started) / 1e3;
}

static void ours(bench_t *b, int kind, double *wall, double *script, double *cpu)
{
    const char *path = kind < KINDS ? b->script[kind] : b->empty;
    char port[16], summary[512], log[512];
    snprintf(port, sizeof port, "%d", b->port);
    snprintf(summary, sizeof summary, "%s/ingest-summary.json", b->tmp);
    snprintf(log, sizeof log, "%s/ingest-nemesyst.log", b->tmp);
    char *argv[] = {(char *)b->nemesyst, "--db-port", port, "--db-name", DB, "--data-clean", "--data-cleaner",
                    (char *)path, "--data-collection", COLL, "--summary-json", summary, "--log-level", "warn",
                    kind == EXEC_NOPROV ? "--provenance=false" : "--provenance=true", NULL};
    double c = bench_cpu_children(), t = bench_now();
    int rc = bench_run(argv, log);
    *wall = bench_now() - t;
    *cpu = bench_cpu_children() - c;
    if (rc != 0) {
        bench_show_log(log, kind < KINDS ? kind_name[kind] : path);
        exit(1);
    }
    *script = kind < KINDS ? script_seconds(b, summary) : 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"port", required_argument, NULL, 'p'},
                                              {"nemesyst", required_argument, NULL, 'n'},
                                              {"exec", required_argument, NULL, 'e'},
                                              {"python", required_argument, NULL, 'y'},
                                              {"plugin", required_argument, NULL, 'l'},
                                              {"docs", required_argument, NULL, 'd'},
                                              {"reps", required_argument, NULL, 'r'},
                                              {"tmp", required_argument, NULL, 't'},
                                              {"empty", required_argument, NULL, 'E'},
                                              {"raw-once", no_argument, NULL, 'R'},
                                              {NULL, 0, NULL, 0}};
    bench_t b = {.docs = 20000, .tmp = "/tmp"};
    int reps = 3, c;
    bool raw_once = false;
    double wall[KINDS][BENCH_MAX_REPS], script[KINDS][BENCH_MAX_REPS], fixed[BENCH_MAX_REPS], ignored;
    double cpu[KINDS][BENCH_MAX_REPS], fixed_cpu[BENCH_MAX_REPS];
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'p': b.port = atoi(optarg); break;
        case 'n': b.nemesyst = optarg; break;
        case 'e': b.script[EXEC] = b.script[EXEC_NOPROV] = optarg; break;
        case 'y': b.script[PYTHON] = optarg; break;
        case 'l': b.script[PLUGIN] = optarg; break;
        case 'd': b.docs = atoi(optarg); break;
        case 'r': reps = atoi(optarg); break;
        case 't': b.tmp = optarg; break;
        case 'E': b.empty = optarg; break;
        case 'R': raw_once = true; break;
        default: return 2;
        }
    }
    if (raw_once && b.port > 0 && b.docs > 0) {
        char uri[128];
        bson_error_t err;
        snprintf(uri, sizeof uri, "mongodb://127.0.0.1:%d/", b.port);
        mongoc_init();
        mongoc_log_set_handler(NULL, NULL);
        if (!(b.client = mongoc_client_new(uri)))
            die("mongoc_client_new", NULL);
        b.coll = mongoc_client_get_collection(b.client, DB, COLL);
        if (!mongoc_client_command_simple(b.client, "admin", ping_command(), NULL, NULL, &err))
            die("ping", &err);
        drop(&b);
        raw_insert(&b, &ignored);
        drop(&b);
        mongoc_collection_destroy(b.coll);
        mongoc_client_destroy(b.client);
        mongoc_cleanup();
        return 0;
    }
    if (b.port <= 0 || !b.nemesyst || !b.script[EXEC] || !b.script[PYTHON] || !b.script[PLUGIN] || b.docs <= 0 ||
        reps < 1 || reps > BENCH_MAX_REPS) {
        fprintf(stderr, "usage: bench_stage_ingest --port P --nemesyst PATH --exec PATH --python PATH --plugin PATH "
                        "[--docs N] [--reps R] [--tmp DIR]\n");
        return 2;
    }
    char n[32], uri[128];
    snprintf(n, sizeof n, "%d", b.docs);
    setenv("BENCH_STAGE_DOCS", n, 1);
    snprintf(uri, sizeof uri, "mongodb://127.0.0.1:%d/", b.port);
    mongoc_init();
    mongoc_log_set_handler(NULL, NULL); /* FerretDB refuses endSessions: a warning per client */
    b.client = mongoc_client_new(uri);
    if (!b.client)
        die("mongoc_client_new", NULL);
    b.coll = mongoc_client_get_collection(b.client, DB, COLL);

    /* a warm-up of each path (the server's first collection, page cache, Python imports) */
    double w, s;
    drop(&b);
    raw_insert(&b, &ignored);
    for (int k = EXEC; k < KINDS; k++) {
        drop(&b);
        ours(&b, k, &w, &s, &ignored);
    }
    for (int r = 0; r < reps; r++) {
        for (int k = 0; k < KINDS; k++) {
            drop(&b);
            if (k == RAW)
                wall[k][r] = script[k][r] = raw_insert(&b, &cpu[k][r]);
            else
                ours(&b, k, &wall[k][r], &script[k][r], &cpu[k][r]);
            if (count(&b) != b.docs) {
                fprintf(stderr, "bench_stage_ingest: %s stored %" PRId64 " of %d documents\n", kind_name[k], count(&b),
                        b.docs);
                return 1;
            }
            if (r == 0)
                check_same(&b, k);
        }
        if (b.empty)
            ours(&b, EMPTY, &fixed[r], &ignored, &fixed_cpu[r]);
    }
    drop(&b);

    double raw = bench_median(wall[RAW], reps);
    printf("Clean-stage ingest: %d documents of 212 bytes, median of %d run(s); ratio = ours/raw in documents/s "
           "(1.00 = as fast as raw insert_many)\n",
           b.docs, reps);
    printf("%-26s %10s %10s %7s   %10s %10s %7s   %8s %9s\n", "path", "process s", "docs/s", "ratio", "script s",
           "docs/s", "ratio", "CPU s", "CPU x raw");
    double raw_cpu = bench_median(cpu[RAW], reps);
    for (int k = 0; k < KINDS; k++) {
        double mw = bench_median(wall[k], reps), ms = bench_median(script[k], reps), mc = bench_median(cpu[k], reps);
        if (k == RAW)
            printf("%-26s %10.3f %10.0f %7s   %10s %10s %7s   %8.3f %9s\n", kind_name[k], mw, b.docs / mw, "1.00", "-",
                   "-", "-", mc, "1.0");
        else
            printf("%-26s %10.3f %10.0f %7.2f   %10.3f %10.0f %7.2f   %8.3f %9.1f\n", kind_name[k], mw, b.docs / mw,
                   raw / mw, ms, ms > 0 ? b.docs / ms : 0.0, ms > 0 ? raw / ms : 0.0, mc,
                   raw_cpu > 0 ? mc / raw_cpu : 0.0);
    }
    if (b.empty)
        printf("%-26s %10.3f %10s %7s   %10s %10s %7s   %8.3f   (nemesyst start-up and end, one script that "
               "exits at once)\n",
               "fixed cost, empty script", bench_median(fixed, reps), "", "", "", "", "", bench_median(fixed_cpu, reps));
    char hp[64];
    snprintf(hp, sizeof hp, "127.0.0.1:%d", b.port);
    nem_store_t *store = nem_store_adopt(b.client, DB, hp);
    double walk = storable_walk(&b), per_doc = raw / b.docs;
    printf("storable check (the host's walk of each document before sending it to FerretDB 1.x; %s): %.0f ns per "
           "document = %.3f%% of raw insert_many's %.1f us per document\n",
           nem_store_ferretdb_limits(store) ? "on with this server" : "off with this server", walk * 1e9,
           100 * walk / per_doc, per_doc * 1e6);
    nem_store_destroy(store);
    mongoc_collection_destroy(b.coll);
    mongoc_client_destroy(b.client);
    mongoc_cleanup();
    return 0;
}
