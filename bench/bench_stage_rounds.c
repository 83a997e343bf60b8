/* Orchestration overhead per round: `mpirun -n W+1 nemesyst --data-clean` with W worker ranks and R rounds of
 * empty scripts (an executable that exits 0 at once; --process-pool 1, so W*R scripts), against the MPI_Barrier
 * latency measured by bench_stage_barrier at the same rank count, in the same run.
 *   round ms:   (last script end - first script start) / R, from the run summary (--summary-json)
 *   wall ms:    the whole mpirun wall time / R (start-up included; for scale only)
 *   spawn ms:   posix_spawn + waitpid of the empty script alone, outside MPI (what a round cannot go below either)
 *   ratio:      round / barrier
 * Usage: bench_stage_rounds --port P --nemesyst PATH --barrier PATH --empty PATH [--mpirun mpirun]
 *        [--workers 1-4] [--rounds 20] [--reps 3] [--tmp DIR] */
#include <getopt.h>

#include "stage/common.h"

#define MAX_ARGS 600

typedef struct {
    const char *mpirun, *nemesyst, *barrier, *empty, *tmp;
    int port, rounds;
} bench_t;

/* Stage span in seconds from the summary: max(ended) - min(started) over its scripts, which must all succeed. */
static double stage_span(const char *path, int want)
{
    bson_error_t err;
    bson_json_reader_t *r = bson_json_reader_new_from_file(path, &err);
    bson_t doc = BSON_INITIALIZER;
    bson_iter_t it, scripts, s;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    int n = 0, ok = 0;
    if (!r || bson_json_reader_read(r, &doc, &err) != 1) {
        fprintf(stderr, "bench_stage_rounds: reading %s: %s\n", path, err.message);
        exit(1);
    }
    if (bson_iter_init_find(&it, &doc, "scripts") && bson_iter_recurse(&it, &scripts)) {
        while (bson_iter_next(&scripts) && bson_iter_recurse(&scripts, &s)) {
            n++;
            while (bson_iter_next(&s)) {
                const char *k = bson_iter_key(&s);
                if (strcmp(k, "started") == 0 && BSON_ITER_HOLDS_DATE_TIME(&s))
                    lo = bson_iter_date_time(&s) < lo ? bson_iter_date_time(&s) : lo;
                else if (strcmp(k, "ended") == 0 && BSON_ITER_HOLDS_DATE_TIME(&s))
                    hi = bson_iter_date_time(&s) > hi ? bson_iter_date_time(&s) : hi;
                else if (strcmp(k, "status") == 0 && BSON_ITER_HOLDS_UTF8(&s))
                    ok += strcmp(bson_iter_utf8(&s, NULL), "succeeded") == 0;
            }
        }
    }
    if (n != want || ok != want || hi < lo) {
        fprintf(stderr, "bench_stage_rounds: %s: %d script(s), %d succeeded, %d expected\n", path, n, ok, want);
        exit(1);
    }
    bson_destroy(&doc);
    bson_json_reader_destroy(r);
    return (double)(hi - lo) / 1e3;
}

static void run_ours(bench_t *b, int workers, double *round, double *wall)
{
    char np[16], port[16], summary[512], log[512];
    char *argv[MAX_ARGS];
    int a = 0, scripts = workers * b->rounds;
    snprintf(np, sizeof np, "%d", workers + 1);
    snprintf(port, sizeof port, "%d", b->port);
    snprintf(summary, sizeof summary, "%s/rounds-summary.json", b->tmp);
    snprintf(log, sizeof log, "%s/rounds-nemesyst.log", b->tmp);
    const char *head[] = {b->mpirun, "--oversubscribe", "-n", np, b->nemesyst, "--db-port", port, "--db-name",
                          "bench_stage", "--data-clean", "--process-pool", "1", "--data-collection", "rounds",
                          "--summary-json", summary, "--log-level", "warn", "--data-cleaner"};
    for (size_t i = 0; i < sizeof head / sizeof *head; i++)
        argv[a++] = (char *)head[i];
    for (int i = 0; i < scripts && a < MAX_ARGS - 1; i++)
        argv[a++] = (char *)b->empty;
    argv[a] = NULL;
    double t = bench_now();
    int rc = bench_run(argv, log);
    *wall = (bench_now() - t) / b->rounds;
    if (rc != 0) {
        bench_show_log(log, "nemesyst");
        exit(1);
    }
    *round = stage_span(summary, scripts) / b->rounds;
}

static double run_barrier(bench_t *b, int workers)
{
    char np[16], log[512], line[256];
    double us = -1;
    snprintf(np, sizeof np, "%d", workers + 1);
    snprintf(log, sizeof log, "%s/rounds-barrier.log", b->tmp);
    char *argv[] = {(char *)b->mpirun, "--oversubscribe", "-n", np, (char *)b->barrier, NULL};
    int rc = bench_run(argv, log);
    FILE *f = fopen(log, "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "barrier_us %lf", &us) == 1)
            break;
    if (f)
        fclose(f);
    if (rc != 0 || us < 0) {
        bench_show_log(log, "bench_stage_barrier");
        exit(1);
    }
    return us / 1e6;
}

static double run_spawn(bench_t *b)
{
    char *argv[] = {(char *)b->empty, NULL};
    char log[512];
    double t[BENCH_MAX_REPS];
    snprintf(log, sizeof log, "%s/rounds-empty.log", b->tmp);
    for (int i = 0; i < 21; i++) {
        double s = bench_now();
        if (bench_run(argv, log) != 0) {
            bench_show_log(log, b->empty);
            exit(1);
        }
        t[i] = bench_now() - s;
    }
    return bench_median(t, 21);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},    {"nemesyst", required_argument, NULL, 'n'},
        {"barrier", required_argument, NULL, 'b'}, {"empty", required_argument, NULL, 'e'},
        {"mpirun", required_argument, NULL, 'm'},  {"workers", required_argument, NULL, 'w'},
        {"rounds", required_argument, NULL, 'R'},  {"reps", required_argument, NULL, 'r'},
        {"tmp", required_argument, NULL, 't'},     {NULL, 0, NULL, 0}};
    bench_t b = {.mpirun = "mpirun", .tmp = "/tmp", .rounds = 20};
    int reps = 3, wlo = 1, whi = 4, c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'p': b.port = atoi(optarg); break;
        case 'n': b.nemesyst = optarg; break;
        case 'b': b.barrier = optarg; break;
        case 'e': b.empty = optarg; break;
        case 'm': b.mpirun = optarg; break;
        case 'w':
            if (sscanf(optarg, "%d-%d", &wlo, &whi) < 2)
                whi = wlo;
            break;
        case 'R': b.rounds = atoi(optarg); break;
        case 'r': reps = atoi(optarg); break;
        case 't': b.tmp = optarg; break;
        default: return 2;
        }
    }
    if (b.port <= 0 || !b.nemesyst || !b.barrier || !b.empty || b.rounds < 1 || reps < 1 || reps > BENCH_MAX_REPS ||
        wlo < 1 || whi < wlo || whi * b.rounds > MAX_ARGS - 40) {
        fprintf(stderr, "usage: bench_stage_rounds --port P --nemesyst PATH --barrier PATH --empty PATH [--mpirun M] "
                        "[--workers 1-4] [--rounds R] [--reps N] [--tmp DIR]\n");
        return 2;
    }
    printf("Orchestration per round: %d round(s) of empty scripts, --process-pool 1, mpirun --oversubscribe, "
           "median of %d run(s); ratio = round / MPI_Barrier (time, >1 = slower)\n",
           b.rounds, reps);
    printf("%-8s %-6s %10s %10s %10s %12s %9s\n", "workers", "ranks", "round ms", "wall ms", "spawn ms", "barrier ms",
           "ratio");
    fflush(stdout);
    for (int w = wlo; w <= whi; w++) {
        double round[BENCH_MAX_REPS], wall[BENCH_MAX_REPS], bar[BENCH_MAX_REPS];
        for (int r = 0; r < reps; r++) {
            run_ours(&b, w, &round[r], &wall[r]);
            bar[r] = run_barrier(&b, w);
        }
        double mr = bench_median(round, reps), mb = bench_median(bar, reps);
        printf("%-8d %-6d %10.3f %10.3f %10.3f %12.4f %9.0f\n", w, w + 1, mr * 1e3, bench_median(wall, reps) * 1e3,
               run_spawn(&b) * 1e3, mb * 1e3, mb > 0 ? mr / mb : 0.0);
        fflush(stdout);
    }
    return 0;
}
