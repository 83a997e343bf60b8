/* Store benchmark: our store layer against raw libmongoc on the same server, in the same run.
 *   (a) bulk insert of the driver-benchmark "small doc" (a ~275-byte document) x N: nem_bulk vs insert_many;
 *   (b) GridFS upload and download of a large file: nem_gridfs_* vs mongoc_gridfs_bucket.
 * Each measurement is repeated (ours and raw alternate) and the median is printed with the ratio ours/raw.
 * Usage: bench_store --port P [--reps 5] [--docs 10000] [--mib 64]   (bench/run-store.sh starts a FerretDB) */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

#define MAX_REPS 64

typedef struct {
    nem_store_t *store;
    int docs;
    size_t file_bytes;
    char path[256], out[256];
    bson_t small;
} bench_t;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what, const bson_error_t *err)
{
    fprintf(stderr, "bench_store: %s: %s\n", what, err->message);
    exit(1);
}

/* A document shaped like the driver benchmark's small_doc.json: short ASCII strings and integers, ~275 bytes. */
static void make_small_doc(bson_t *doc)
{
    static const char *const keys[] = {"oggaoR4O", "Is7ujjlp", "hB0lAyiT", "a9wDLnGc", "v3QpB9vC", "pG2KCV1i",
                                       "fFSm3oA8"};
    bson_init(doc);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char key[16];
        bson_snprintf(key, sizeof key, "%s", keys[i]);
        BSON_APPEND_UTF8(doc, key, "miNVpaKWqm");
        key[0] = 'X';
        BSON_APPEND_INT32(doc, key, (int32_t)(i * 7919));
    }
}

static mongoc_collection_t *fresh(bench_t *b, const char *name)
{
    mongoc_collection_t *c = mongoc_database_get_collection(nem_store_database(b->store), name);
    mongoc_collection_drop(c, NULL); /* absent the first time */
    return c;
}

static double bulk_ours(bench_t *b)
{
    mongoc_collection_t *c = fresh(b, "bench_small");
    nem_bulk_t *bulk = nem_bulk_new(b->store, "bench_small", 0, 0);
    bson_error_t err;
    double t = now();
    for (int i = 0; i < b->docs; i++)
        if (!nem_bulk_add(bulk, &b->small, &err))
            die("nem_bulk_add", &err);
    if (!nem_bulk_flush(bulk, &err))
        die("nem_bulk_flush", &err);
    t = now() - t;
    if (nem_bulk_inserted(bulk) != (uint64_t)b->docs)
        fprintf(stderr, "bench_store: nem_bulk inserted %" PRIu64 " of %d\n", nem_bulk_inserted(bulk), b->docs);
    nem_bulk_destroy(bulk);
    mongoc_collection_destroy(c);
    return t;
}

static double bulk_raw(bench_t *b)
{
    mongoc_collection_t *c = fresh(b, "bench_small");
    const bson_t **docs = bson_malloc((size_t)b->docs * sizeof *docs);
    bson_error_t err;
    double t;
    for (int i = 0; i < b->docs; i++)
        docs[i] = &b->small;
    t = now();
    if (!mongoc_collection_insert_many(c, docs, (size_t)b->docs, NULL, NULL, &err))
        die("mongoc_collection_insert_many", &err);
    t = now() - t;
    bson_free(docs);
    mongoc_collection_destroy(c);
    return t;
}

static mongoc_gridfs_bucket_t *raw_bucket(bench_t *b)
{
    bson_t *opts = BCON_NEW("bucketName", BCON_UTF8("bench"));
    bson_error_t err;
    mongoc_gridfs_bucket_t *g = mongoc_gridfs_bucket_new(nem_store_database(b->store), opts, NULL, &err);
    if (!g)
        die("mongoc_gridfs_bucket_new", &err);
    bson_destroy(opts);
    return g;
}

static void delete_file(bench_t *b, const bson_value_t *id)
{
    mongoc_gridfs_bucket_t *g = raw_bucket(b);
    bson_error_t err;
    if (!mongoc_gridfs_bucket_delete_by_id(g, id, &err))
        die("mongoc_gridfs_bucket_delete_by_id", &err);
    mongoc_gridfs_bucket_destroy(g);
}

/* One upload+download round with our functions; times in up/down. */
static void gridfs_ours(bench_t *b, double *up, double *down)
{
    bson_t *meta = BCON_NEW("bench", BCON_BOOL(true));
    bson_value_t id;
    bson_error_t err;
    double t = now();
    if (!nem_gridfs_upload_file(b->store, "bench", "big.bin", b->path, meta, &id, &err))
        die("nem_gridfs_upload_file", &err);
    *up = now() - t;
    t = now();
    if (!nem_gridfs_download_to_file(b->store, "bench", &id, b->out, &err))
        die("nem_gridfs_download_to_file", &err);
    *down = now() - t;
    delete_file(b, &id);
    bson_value_destroy(&id);
    bson_destroy(meta);
}

/* libmongoc's download stream, read in 1 MiB pieces into a file; its error is taken from the stream. */
static bool raw_download(mongoc_gridfs_bucket_t *g, const bson_value_t *id, const char *path, bson_error_t *err)
{
    mongoc_stream_t *in = mongoc_gridfs_bucket_open_download_stream(g, id, err);
    FILE *out = fopen(path, "wb");
    char *buf = bson_malloc(1 << 20);
    ssize_t n = -1;
    if (in && out) {
        while ((n = mongoc_stream_read(in, buf, 1 << 20, 1, 0)) > 0)
            fwrite(buf, 1, (size_t)n, out);
        if (n < 0)
            mongoc_gridfs_bucket_stream_error(in, err);
    }
    bson_free(buf);
    if (out)
        fclose(out);
    mongoc_stream_destroy(in);
    return n == 0;
}

/* The same with raw mongoc_gridfs_bucket; a failed download (libmongoc's 48 MB reply limit on servers that batch
 * chunks by count) is reported as a negative time, not an abort. */
static void gridfs_raw(bench_t *b, double *up, double *down, char *why, size_t why_len)
{
    mongoc_gridfs_bucket_t *g = raw_bucket(b);
    bson_t *opts = BCON_NEW("metadata", "{", "bench", BCON_BOOL(true), "}");
    mongoc_stream_t *src = mongoc_stream_file_new_for_path(b->path, O_RDONLY, 0);
    bson_value_t id;
    bson_error_t err;
    double t = now();
    if (!src || !mongoc_gridfs_bucket_upload_from_stream(g, "big.bin", src, opts, &id, &err))
        die("mongoc_gridfs_bucket_upload_from_stream", &err);
    *up = now() - t;
    mongoc_stream_destroy(src);
    t = now();
    if (raw_download(g, &id, b->out, &err)) {
        *down = now() - t;
    } else {
        *down = -1;
        bson_snprintf(why, why_len, "%s", err.message);
    }
    delete_file(b, &id);
    bson_value_destroy(&id);
    bson_destroy(opts);
    mongoc_gridfs_bucket_destroy(g);
}

static void make_file(bench_t *b)
{
    FILE *f;
    uint8_t *buf = bson_malloc(1 << 20);
    uint64_t x = 88172645463325252ull;
    bson_snprintf(b->path, sizeof b->path, "%s/nem-bench-store-%d.bin", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
                  (int)getpid());
    bson_snprintf(b->out, sizeof b->out, "%s.out", b->path);
    if (!(f = fopen(b->path, "wb"))) {
        perror(b->path);
        exit(1);
    }
    for (size_t done = 0; done < b->file_bytes; done += 1 << 20) {
        size_t n = b->file_bytes - done < (1u << 20) ? b->file_bytes - done : (1u << 20);
        for (size_t i = 0; i < n; i++) { /* incompressible, like trained weights */
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[i] = (uint8_t)x;
        }
        fwrite(buf, 1, n, f);
    }
    fclose(f);
    bson_free(buf);
}

static void row(const char *what, double ours, double raw, const char *note)
{
    if (raw > 0)
        printf("| %-34s | %9.3f | %9.3f | %8.2f |%s%s\n", what, ours, raw, ours / raw, note ? " " : "",
               note ? note : "");
    else
        printf("| %-34s | %9.3f | %9s | %8s | raw failed: %s\n", what, ours, "FAILED", "-", note);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"port", required_argument, NULL, 'p'},
                                             {"reps", required_argument, NULL, 'r'},
                                             {"docs", required_argument, NULL, 'd'},
                                             {"mib", required_argument, NULL, 'm'},
                                             {NULL, 0, NULL, 0}};
    nem_store_opts_t o = {.host = "127.0.0.1", .db_name = "nemesyst_bench", .max_staleness = -1};
    bench_t b = {.docs = 10000, .file_bytes = (size_t)64 << 20};
    double bo[MAX_REPS], br[MAX_REPS], uo[MAX_REPS], ur[MAX_REPS], dn[MAX_REPS], dr[MAX_REPS];
    char why[512] = "", label[64];
    int reps = 5, c, raw_down_ok = 0;
    bson_error_t err;

    o.port = getenv("NEM_TEST_PORT") ? atoi(getenv("NEM_TEST_PORT")) : 27017;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'p': o.port = atoi(optarg); break;
        case 'r': reps = atoi(optarg); break;
        case 'd': b.docs = atoi(optarg); break;
        case 'm': b.file_bytes = (size_t)atol(optarg) << 20; break;
        default: return 2;
        }
    }
    if (reps < 1 || reps > MAX_REPS || b.docs < 1) {
        fprintf(stderr, "bench_store: --reps must be 1..%d and --docs positive\n", MAX_REPS);
        return 2;
    }
    mongoc_init();
    if (!(b.store = nem_store_new(&o, &err)) || !nem_store_ping(b.store, &err))
        die("connect", &err);
    make_small_doc(&b.small);
    make_file(&b);
    printf("store benchmark on %s: %d repetitions, median seconds; small doc %u bytes x %d; file %zu MiB\n",
           nem_store_public_uri(b.store), reps, b.small.len, b.docs, b.file_bytes >> 20);
    for (int r = 0; r < reps; r++) {
        /* Alternate which goes first so that neither always meets a warmer server. */
        if (r % 2) {
            br[r] = bulk_raw(&b), bo[r] = bulk_ours(&b);
            gridfs_raw(&b, &ur[r], &dr[r], why, sizeof why), gridfs_ours(&b, &uo[r], &dn[r]);
        } else {
            bo[r] = bulk_ours(&b), br[r] = bulk_raw(&b);
            gridfs_ours(&b, &uo[r], &dn[r]), gridfs_raw(&b, &ur[r], &dr[r], why, sizeof why);
        }
        raw_down_ok += dr[r] >= 0;
    }
    printf("| %-34s | %9s | %9s | %8s |\n", "operation", "ours (s)", "raw (s)", "ours/raw");
    printf("|%s|%s|%s|%s|\n", "------------------------------------", "-----------", "-----------", "----------");
    bson_snprintf(label, sizeof label, "bulk insert small doc x %d", b.docs);
    row(label, median(bo, reps), median(br, reps), NULL);
    bson_snprintf(label, sizeof label, "GridFS upload %zu MiB", b.file_bytes >> 20);
    row(label, median(uo, reps), median(ur, reps), NULL);
    bson_snprintf(label, sizeof label, "GridFS download %zu MiB", b.file_bytes >> 20);
    row(label, median(dn, reps), raw_down_ok == reps ? median(dr, reps) : -1, raw_down_ok == reps ? NULL : why);

    unlink(b.path);
    unlink(b.out);
    bson_destroy(&b.small);
    mongoc_database_drop(nem_store_database(b.store), NULL);
    nem_store_destroy(b.store);
    mongoc_cleanup();
    return 0;
}
