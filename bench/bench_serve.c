/* Start-to-ready of FerretDB through nemesyst's serving code, against the original's fixed sleeps (2.0.6 waited
 * about 4 s after starting mongod and about 7 s around init). Prints medians of --reps repetitions:
 *   start: launch with authentication -> first ping answered        (vs 4 s)
 *   init:  launch loopback -> ping -> setup user checked -> stopped (vs 7 s)
 *   stop:  SIGTERM -> process reaped
 * Usage: bench_serve [--reps N] [--port P]   (FerretDB from $NEMESYST_FERRETDB or the build cache) */
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/signals.h"
#include "log/log.h"
#include "serve/server.h"

#define ORIGINAL_START_S 4.0
#define ORIGINAL_INIT_S 7.0

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

static void make_spec(nem_server_spec_t *s, const char *dir, int port, char **bind)
{
    memset(s, 0, sizeof *s);
    s->program = nem_engine_find(&nem_engine_ferretdb);
    s->db_path = bson_strdup(dir);
    s->log_dir = bson_strdup(dir);
    s->log_file = bson_strdup_printf("%s/ferretdb.log", dir);
    s->bind_ip = bind;
    s->n_bind_ip = 1;
    s->connect_ip = bson_strdup("127.0.0.1");
    s->port = port;
    s->user = bson_strdup("bench");
    s->password = bson_strdup("bench-pw");
    s->auth_db = bson_strdup("nemesyst");
    s->auth_mechanism = bson_strdup("SCRAM-SHA-256");
    s->start_timeout_ms = 60000;
    s->stop_timeout_ms = 30000;
}

/* One init: returns seconds, or -1. */
static double one_init(nem_server_spec_t *s)
{
    nem_server_t srv = {.engine = &nem_engine_ferretdb, .spec = s, .phase = NEM_PHASE_INIT};
    bson_error_t err;
    int64_t t0 = nem_now_ms();
    bool ok = nem_server_launch(&srv, true, &err) && nem_server_wait_ready(&srv, &err) &&
              nem_engine_ferretdb.init_user(s, &err) && nem_server_stop(&srv, &err);
    if (!ok)
        fprintf(stderr, "bench_serve: init: %s\n", err.message);
    return ok ? (double)(nem_now_ms() - t0) / 1000.0 : -1;
}

static bool one_start(nem_server_spec_t *s, double *ready_s, double *stop_s)
{
    nem_server_t srv = {.engine = &nem_engine_ferretdb, .spec = s, .phase = NEM_PHASE_START};
    bson_error_t err;
    int64_t t0 = nem_now_ms(), t1;

    if (!nem_server_launch(&srv, true, &err) || !nem_server_wait_ready(&srv, &err)) {
        fprintf(stderr, "bench_serve: start: %s\n", err.message);
        nem_server_stop(&srv, &err);
        return false;
    }
    t1 = nem_now_ms();
    *ready_s = (double)(t1 - t0) / 1000.0;
    if (!nem_server_stop(&srv, &err)) {
        fprintf(stderr, "bench_serve: stop: %s\n", err.message);
        return false;
    }
    *stop_s = (double)(nem_now_ms() - t1) / 1000.0;
    return true;
}

int main(int argc, char **argv)
{
    int reps = 9, port = 0;
    char dir[] = "/tmp/nemesyst-bench-serve.XXXXXX", *bind[] = {"127.0.0.1", NULL};
    nem_server_spec_t spec;
    double *init_s, *start_s, *stop_s;
    int rc = 1;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--reps") == 0)
            reps = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[i + 1]);
    }
    if (reps < 1)
        reps = 1;
    if (!port)
        port = 20000 + (int)(getpid() % 30000);
    mongoc_init();
    nem_log_init(0, "bench");
    nem_log_set_level(NEM_LOG_WARN);
    nem_signals_install();
    if (!mkdtemp(dir))
        return 1;
    make_spec(&spec, dir, port, bind);
    if (!spec.program) {
        fprintf(stderr, "bench_serve: no ferretdb binary (build-aux/build-ferretdb.sh)\n");
        return 1;
    }
    init_s = calloc((size_t)reps, sizeof *init_s);
    start_s = calloc((size_t)reps, sizeof *start_s);
    stop_s = calloc((size_t)reps, sizeof *stop_s);
    for (int i = 0; i < reps; i++) {
        char *cmd = bson_strdup_printf("rm -f %s/*.sqlite* %s/state.json", dir, dir);
        if (system(cmd) != 0) { /* a fresh database each time, so every init really creates the user */ }
        bson_free(cmd);
        if ((init_s[i] = one_init(&spec)) < 0 || !one_start(&spec, &start_s[i], &stop_s[i]))
            goto out;
    }
    {
        double ms = median(start_s, reps), mi = median(init_s, reps), mt = median(stop_s, reps);
        printf("bench_serve: ferretdb %s, %d repetitions, medians\n", spec.program, reps);
        printf("  %-30s %9.3f s   original fixed sleep %4.1f s   ratio ours/original %.4f (%.0fx faster)\n",
               "start-to-ready (--db-start)", ms, ORIGINAL_START_S, ms / ORIGINAL_START_S, ORIGINAL_START_S / ms);
        printf("  %-30s %9.3f s   original fixed sleeps %3.1f s   ratio ours/original %.4f (%.0fx faster)\n",
               "init (start+user+stop)", mi, ORIGINAL_INIT_S, mi / ORIGINAL_INIT_S, ORIGINAL_INIT_S / mi);
        printf("  %-30s %9.3f s\n", "stop (SIGTERM -> reaped)", mt);
    }
    rc = 0;
out:
    {
        char *cmd = bson_strdup_printf("rm -rf %s", dir);
        if (system(cmd) != 0) { /* best effort */ }
        bson_free(cmd);
    }
    free(init_s);
    free(start_s);
    free(stop_s);
    mongoc_cleanup();
    return rc;
}
