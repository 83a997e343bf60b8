/* Checkpoint benchmark: a checkpoint save and load (store/ckpt.h: the GridFS upload with its sha256, the pruning
 * to the newest N; on load the listing, the GridFS download and the sha256 check) against the raw GridFS upload and
 * download of the same bytes (nem_gridfs_*) on the same server, in the same run, into the same bucket.
 *   buffer: nem_ckpt_save_buffer + nem_ckpt_load_buffer vs nem_gridfs_upload_buffer + nem_gridfs_download_to_buffer
 *   file:   nem_ckpt_save_file + nem_ckpt_load_file     vs nem_gridfs_upload_file + nem_gridfs_download_to_file
 * Each repetition stores one new checkpoint of a new run (so the pruning lists one file and deletes none; deleting
 * an older checkpoint past --dl-checkpoint-keep is the same delete a raw store would need) and removes it, and the
 * raw file (both by _id, untimed), before the other side starts; which side goes first alternates, and each timed
 * step waits for the server to be at rest first (what an untimed step left it to do is not counted). Every load is
 * checked (the bytes for the buffer variants, the size and sha256 for the file ones). Medians of --reps after a
 * warm-up at the smallest size, with a distribution-free confidence interval of the ratio's median. The ratio is the
 * median over the repetitions of checkpoint/raw, the two measured one right after the other, so that the server's
 * drift over a run (the machines are shared) cancels; CPU is this process's (the hashing thread included). --control
 * puts a second raw store in the checkpoint's place: an A/A run, whose ratios show the noise of the machine at the
 * time. BENCH_CHECKPOINT_VERBOSE=1 prints every step's seconds on stderr.
 * Usage: bench_checkpoint --port P [--reps 5] [--mib 16,256] [--no-file] [--control]   (bench/run-store.sh starts a
 * FerretDB) */
#include <dirent.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "store/ckpt.h"
#include "util/sha256.h"

#define MAX_REPS 64
#define MAX_SIZES 8

enum { SAVE_BUF, LOAD_BUF, SAVE_FILE, LOAD_FILE, N_OPS };
static const char *const op_name[N_OPS] = {"save", "load", "save", "load"};
static const char *const op_kind[N_OPS] = {"buffer", "buffer", "file", "file"};

typedef struct {
    nem_store_t *store;
    uint8_t *data; /* the largest size's bytes; smaller sizes use a prefix */
    size_t len;    /* the current size */
    char sha[65];  /* of data[0..len) */
    char path[256], out[256];
    int serial;
    bool control; /* --control: a second raw store in the checkpoint's place (an A/A run: the noise floor) */
} bench_t;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* This process's CPU seconds, every thread. */
static double cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

/* The server's CPU seconds, every thread (the schedstat of each /proc/PID/task: nanoseconds on a CPU, exact where the
 * clock-tick counts of /proc/PID/stat are 10 ms coarse), or 0 when its PID is unknown (NEM_TEST_FERRETDB_PID, set
 * by bench/run-store.sh). Time spent waiting for a CPU is not in it, so it stays put when the machine is busy. */
static double server_cpu(void)
{
    static char dir[64];
    const char *pid = getenv("NEM_TEST_FERRETDB_PID");
    double total = 0;
    DIR *d;
    struct dirent *e;
    if (!pid || !*pid)
        return 0;
    bson_snprintf(dir, sizeof dir, "/proc/%s/task", pid);
    if (!(d = opendir(dir)))
        return 0;
    while ((e = readdir(d))) {
        char path[128];
        unsigned long long ns;
        FILE *f;
        if (e->d_name[0] == '.')
            continue;
        bson_snprintf(path, sizeof path, "%s/%s/schedstat", dir, e->d_name);
        if ((f = fopen(path, "r"))) {
            if (fscanf(f, "%llu", &ns) == 1)
                total += (double)ns / 1e9;
            fclose(f);
        }
    }
    closedir(d);
    return total;
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

/* A distribution-free confidence interval of the median of v[0..n), sorted: its j-th and (n+1-j)-th values (1-based),
 * j the largest rank with P(Binomial(n, 1/2) <= j - 1) <= 0.025, or 1 when even that is more (n < 6). Returns the
 * interval's coverage, 1 - 2 P(Binomial(n, 1/2) <= j - 1). */
static double median_ci(const double *v, int n, double *lo, double *hi)
{
    double below = 0, c = 1; /* P(B <= j - 1); C(n, k) */
    int j = 1;
    for (int k = 0; k < n; k++) {
        double pk = ldexp(c, -n);
        if (below + pk > 0.025)
            break;
        below += pk;
        j = k + 2;
        c = c * (n - k) / (k + 1);
    }
    if (j > (n + 1) / 2)
        j = (n + 1) / 2;
    *lo = v[j - 1];
    *hi = v[n - j];
    return 1 - 2 * (j == 1 ? ldexp(1, -n) : below);
}

static void die(const char *what, const bson_error_t *err)
{
    fprintf(stderr, "bench_checkpoint: %s: %s\n", what, err ? err->message : "failed");
    exit(1);
}

/* Incompressible bytes, like trained weights. */
static void make_data(bench_t *b, size_t bytes)
{
    uint64_t x = 88172645463325252ull;
    b->data = bson_malloc(bytes);
    for (size_t i = 0; i < bytes; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        b->data[i] = (uint8_t)x;
    }
    bson_snprintf(b->path, sizeof b->path, "%s/nem-bench-ckpt-%d.bin", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
                  (int)getpid());
    bson_snprintf(b->out, sizeof b->out, "%s.out", b->path);
}

/* The current size as a file (for the file variants), and its sha256. */
static void set_size(bench_t *b, size_t len)
{
    FILE *f = fopen(b->path, "wb");
    b->len = len;
    if (!f || fwrite(b->data, 1, len, f) != len || fclose(f) != 0) {
        perror(b->path);
        exit(1);
    }
    nem_sha256_hex(b->data, len, b->sha);
}

static void check_file(const bench_t *b, const char *what)
{
    struct stat st;
    if (stat(b->out, &st) != 0 || (size_t)st.st_size != b->len) {
        fprintf(stderr, "bench_checkpoint: %s: '%s' is not %zu bytes\n", what, b->out, b->len);
        exit(1);
    }
}

/* The metadata a checkpoint carries, for the raw upload too, so that both files documents are alike. */
static bson_t *raw_meta(const bench_t *b)
{
    return BCON_NEW("run", BCON_UTF8("bench-raw"), "script", BCON_UTF8("learn-0"), "attempt", BCON_INT64(1), "step",
                    BCON_INT64(1), "sha256", BCON_UTF8(b->sha), "bytes", BCON_INT64((int64_t)b->len), "host",
                    BCON_UTF8("bench"), "rank", BCON_INT32(1), "metadata", "{", "}");
}

/* A measurement: wall seconds, this process's CPU seconds, the server's. */
typedef struct {
    double wall, cpu, server;
} span_t;

static span_t start(void)
{
    return (span_t){now(), cpu(), server_cpu()};
}

static void stop(span_t *s)
{
    s->wall = now() - s->wall;
    s->cpu = cpu() - s->cpu;
    s->server = server_cpu() - s->server;
}

/* The four steps of a repetition of one variant; each checks what it got back. */
typedef struct {
    bench_t *b;
    bool file;
    bson_value_t raw_id, control_id; /* control_id: the checkpoint's file, or --control's second raw one */
    char run[64];
} pair_t;

static void raw_up_to(pair_t *p, span_t *t, bson_value_t *id)
{
    bench_t *b = p->b;
    bson_t *meta = raw_meta(b);
    bson_error_t err;
    *t = start();
    if (p->file ? !nem_gridfs_upload_file(b->store, NEM_CHECKPOINT_BUCKET, "bench/raw", b->path, meta, id, &err)
                : !nem_gridfs_upload_buffer(b->store, NEM_CHECKPOINT_BUCKET, "bench/raw", b->data, b->len, meta, id,
                                            &err))
        die("raw upload", &err);
    stop(t);
    bson_destroy(meta);
}

static void raw_down_from(pair_t *p, span_t *t, const bson_value_t *id)
{
    bench_t *b = p->b;
    bson_error_t err;
    uint8_t *got = NULL;
    size_t n = 0;
    *t = start();
    if (p->file ? !nem_gridfs_download_to_file(b->store, NEM_CHECKPOINT_BUCKET, id, b->out, &err)
                : !nem_gridfs_download_to_buffer(b->store, NEM_CHECKPOINT_BUCKET, id, &got, &n, &err))
        die("raw download", &err);
    stop(t);
    if (p->file)
        check_file(b, "raw download");
    else if (n != b->len || memcmp(got, b->data, n) != 0)
        die("raw download: the bytes differ from those uploaded", NULL);
    bson_free(got);
}

static void raw_up(pair_t *p, span_t *t)
{
    raw_up_to(p, t, &p->raw_id);
}

static void raw_down(pair_t *p, span_t *t)
{
    raw_down_from(p, t, &p->raw_id);
}

static void ckpt_save(pair_t *p, span_t *t)
{
    bench_t *b = p->b;
    bson_error_t err;
    nem_ckpt_info_t info = {p->run, "learn-0", 1, 1, "bench", 1, NULL, false};
    if (b->control) {
        raw_up_to(p, t, &p->control_id);
        return;
    }
    *t = start();
    if (p->file ? !nem_ckpt_save_file(b->store, &info, b->path, NEM_CHECKPOINT_KEEP_DEFAULT, &p->control_id, &err)
                : !nem_ckpt_save_buffer(b->store, &info, b->data, b->len, NEM_CHECKPOINT_KEEP_DEFAULT,
                                        &p->control_id, &err))
        die("checkpoint save", &err);
    stop(t);
}

static void ckpt_load(pair_t *p, span_t *t)
{
    bench_t *b = p->b;
    nem_ckpt_found_t found;
    bson_error_t err;
    uint8_t *got = NULL;
    size_t n = 0;
    if (b->control) {
        raw_down_from(p, t, &p->control_id);
        return;
    }
    *t = start();
    int rc = p->file ? nem_ckpt_load_file(b->store, p->run, "learn-0", b->out, &found, &err)
                     : nem_ckpt_load_buffer(b->store, p->run, "learn-0", &got, &n, &found, &err);
    stop(t);
    if (rc != 1)
        die("checkpoint load", rc < 0 ? &err : NULL);
    if (found.skipped[0] || strcmp(found.sha256, b->sha) != 0)
        die("checkpoint load: not the checkpoint saved", NULL);
    if (p->file)
        check_file(b, "checkpoint load");
    else if (n != b->len || memcmp(got, b->data, n) != 0)
        die("checkpoint load: the bytes differ from those saved", NULL);
    bson_free(got);
    bson_destroy(&found.metadata);
}

/* Deletes what one side stored (untimed), the same way for both: by the _id of its file. */
static void cleanup(pair_t *p, bson_value_t *id)
{
    bson_t filter = BSON_INITIALIZER;
    bson_error_t err;
    BSON_APPEND_VALUE(&filter, "_id", id);
    if (!nem_gridfs_delete_matching(p->b->store, NEM_CHECKPOINT_BUCKET, &filter, NULL, &err))
        die("delete", &err);
    bson_value_destroy(id);
    bson_destroy(&filter);
}

/* Waits (up to 5 s) for the server to be at rest: under 2% of a CPU over 50 ms, so that what an untimed step left
 * it to do (a cleanup's deletes, its garbage collection) is not counted in the next timed step. */
static void settle(void)
{
    double t0 = now(), c0 = server_cpu();
    if (c0 == 0)
        return;
    while (now() - t0 < 5) {
        usleep(50000);
        double c1 = server_cpu();
        if (c1 - c0 < 0.001)
            return;
        c0 = c1;
    }
}

/* One repetition of every variant: the checkpoint's save and load then the raw upload and download of the same
 * bytes, or the other way round (first), each side's file deleted (untimed) before the other starts, so that each
 * sees a bucket holding its own file only (on FerretDB a download's time grows with everything in the bucket). */
static void round_trip(bench_t *b, bool with_file, bool first, span_t ck[N_OPS], span_t rw[N_OPS])
{
    for (int file = 0; file <= (int)with_file; file++) {
        pair_t p = {.b = b, .file = file};
        bson_snprintf(p.run, sizeof p.run, "bench-%d-%d", (int)getpid(), b->serial++);
        for (int side = 0; side < 2; side++) {
            if ((side == 0) == first) {
                settle(), ckpt_save(&p, &ck[2 * file]);
                settle(), ckpt_load(&p, &ck[2 * file + 1]);
                cleanup(&p, &p.control_id);
            } else {
                settle(), raw_up(&p, &rw[2 * file]);
                settle(), raw_down(&p, &rw[2 * file + 1]);
                cleanup(&p, &p.raw_id);
            }
        }
    }
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"port", required_argument, NULL, 'p'},
                                             {"reps", required_argument, NULL, 'r'},
                                             {"mib", required_argument, NULL, 'm'},
                                             {"no-file", no_argument, NULL, 'n'},
                                             {"control", no_argument, NULL, 'c'},
                                             {NULL, 0, NULL, 0}};
    nem_store_opts_t o = {.host = "127.0.0.1", .db_name = "nemesyst_bench_ckpt", .max_staleness = -1};
    bench_t b = {0};
    size_t sizes[MAX_SIZES] = {16, 256}, largest = 0;
    double sha_s[MAX_SIZES];
    int n_sizes = 2, reps = 5, c;
    bool with_file = true;
    bson_error_t err;

    o.port = getenv("NEM_TEST_PORT") ? atoi(getenv("NEM_TEST_PORT")) : 27017;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'p': o.port = atoi(optarg); break;
        case 'r': reps = atoi(optarg); break;
        case 'n': with_file = false; break;
        case 'c': b.control = true; break;
        case 'm':
            n_sizes = 0;
            for (char *s = optarg, *end; *s && n_sizes < MAX_SIZES; s = *end ? end + 1 : end) {
                long v = strtol(s, &end, 10);
                if (v < 1 || (*end && *end != ',')) {
                    fprintf(stderr, "bench_checkpoint: --mib takes sizes in MiB separated by commas\n");
                    return 2;
                }
                sizes[n_sizes++] = (size_t)v;
            }
            break;
        default: return 2;
        }
    }
    if (reps < 1 || reps > MAX_REPS || n_sizes < 1) {
        fprintf(stderr, "bench_checkpoint: --reps must be 1..%d\n", MAX_REPS);
        return 2;
    }
    for (int i = 0; i < n_sizes; i++)
        largest = sizes[i] > largest ? sizes[i] : largest;
    mongoc_init();
    if (!(b.store = nem_store_new(&o, &err)) || !nem_store_ping(b.store, &err))
        die("connect", &err);
    mongoc_database_drop(nem_store_database(b.store), NULL);
    make_data(&b, largest << 20);
    printf("checkpoint benchmark on %s: %d repetitions after a warm-up, medians; %s vs raw GridFS (nem_gridfs_*) of "
           "the same random bytes in bucket %s. Wall seconds; ckpt/raw = the median of each repetition's ratio (the "
           "two back to back); CPU = this process's CPU seconds (every thread), + server = FerretDB's; CPU c/r = the "
           "median ratio of the two together, which a busy machine does not move\n\n",
           nem_store_public_uri(b.store), reps,
           b.control ? "CONTROL (A/A): a second raw upload and download in the checkpoint's place, so the ratios "
                       "show this run's noise"
                     : "checkpoint (save: sha256, GridFS, pruning; load: listing, GridFS, sha256 check)",
           NEM_CHECKPOINT_BUCKET);
    {
        double lo, hi, one[MAX_REPS] = {0};
        printf("ckpt/raw CI: a distribution-free interval of the median ratio (the repetitions' order statistics), "
               "covering %.1f%% at %d repetitions\n\n", 100 * median_ci(one, reps, &lo, &hi), reps);
    }
    printf("| %-22s | %9s | %9s | %8s | %9s | %9s | %9s | %9s | %8s | %-13s |\n", "operation", "ckpt s", "raw s",
           "ckpt/raw", "ckpt CPU", "+ server", "raw CPU", "+ server", "CPU c/r", "ckpt/raw CI");
    printf("|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n", "------------------------", "-----------", "-----------",
           "----------", "-----------", "-----------", "-----------", "-----------", "----------", "---------------");
    fflush(stdout);
    for (int s = 0; s < n_sizes; s++) {
        span_t ck[N_OPS][MAX_REPS], rw[N_OPS][MAX_REPS], c1[N_OPS] = {{0, 0, 0}}, r1[N_OPS] = {{0, 0, 0}};
        char label[64];
        set_size(&b, sizes[s] << 20);
        if (s == 0)
            round_trip(&b, with_file, true, c1, r1); /* warm-up */
        for (int r = 0; r < reps; r++) {
            round_trip(&b, with_file, r % 2 == 0, c1, r1);
            for (int op = 0; op < N_OPS; op++)
                ck[op][r] = c1[op], rw[op][r] = r1[op];
            if (getenv("BENCH_CHECKPOINT_VERBOSE")) /* each step's wall and server CPU seconds */
                for (int op = 0; op < (with_file ? N_OPS : SAVE_FILE); op++)
                    fprintf(stderr, "%zu MiB rep %d (%s first) %s %s: ckpt %.3f %.3f raw %.3f %.3f\n", sizes[s], r,
                            r % 2 == 0 ? "ckpt" : "raw", op_name[op], op_kind[op], c1[op].wall, c1[op].server,
                            r1[op].wall, r1[op].server);
        }
        for (int op = 0; op < (with_file ? N_OPS : SAVE_FILE); op++) {
            double cw[MAX_REPS], rwall[MAX_REPS], ratio[MAX_REPS], cc[MAX_REPS], rc[MAX_REPS], cs[MAX_REPS],
                rs[MAX_REPS], cpu_ratio[MAX_REPS];
            for (int r = 0; r < reps; r++) {
                const span_t *x = &ck[op][r], *w = &rw[op][r];
                cw[r] = x->wall, rwall[r] = w->wall, ratio[r] = x->wall / w->wall;
                cc[r] = x->cpu, rc[r] = w->cpu, cs[r] = x->server, rs[r] = w->server;
                cpu_ratio[r] = (x->cpu + x->server) / (w->cpu + w->server);
            }
            bson_snprintf(label, sizeof label, "%s %zu MiB (%s)", op_name[op], sizes[s], op_kind[op]);
            double mid = median(ratio, reps), lo, hi; /* ratio sorted now */
            median_ci(ratio, reps, &lo, &hi);
            printf("| %-22s | %9.3f | %9.3f | %8.3f | %9.3f | %9.3f | %9.3f | %9.3f | %8.3f | %6.3f-%-6.3f |\n",
                   label, median(cw, reps), median(rwall, reps), mid, median(cc, reps), median(cs, reps),
                   median(rc, reps), median(rs, reps), median(cpu_ratio, reps), lo, hi);
        }
        fflush(stdout);
        /* For scale: the sha256 alone, as the checkpoint computes it. */
        sha_s[s] = now();
        nem_sha256_hex(b.data, b.len, b.sha);
        sha_s[s] = now() - sha_s[s];
    }
    printf("\nFor scale, the sha256 alone (one pass over the bytes in memory):");
    for (int s = 0; s < n_sizes; s++)
        printf("%s %zu MiB %.3f s", s ? "," : "", sizes[s], sha_s[s]);
    printf(".\n");
    unlink(b.path);
    unlink(b.out);
    bson_free(b.data);
    mongoc_database_drop(nem_store_database(b.store), NULL);
    nem_store_destroy(b.store);
    mongoc_cleanup();
    return 0;
}
