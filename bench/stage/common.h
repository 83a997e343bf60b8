/* Helpers shared by the stage benchmarks (bench/bench_stage_*.c): clock, medians, running a child to completion,
 * the benchmark documents. Header-only: each benchmark is one program. */
#ifndef BENCH_STAGE_COMMON_H
#define BENCH_STAGE_COMMON_H

#include <bson/bson.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BENCH_MAX_REPS 64

extern char **environ;

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds of this process, and of its waited-for children (with their own waited-for children). */
static inline double bench_cpu_self(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline double bench_cpu_children(void)
{
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of v[0..n) (sorts a copy). */
static inline double bench_median(const double *v, int n)
{
    double s[BENCH_MAX_REPS];
    if (n <= 0)
        return 0;
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, bench_cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* Runs argv to completion with stdin from /dev/null and stdout+stderr into log (truncated); returns its exit
 * status (-1 when it could not start or died of a signal). */
static inline int bench_run(char *const argv[], const char *log)
{
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int st, rc;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        fprintf(stderr, "cannot start %s: %s\n", argv[0], strerror(rc));
        return -1;
    }
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static inline void bench_show_log(const char *log, const char *what)
{
    char line[1024];
    FILE *f = fopen(log, "r");
    fprintf(stderr, "%s failed; its output (%s):\n", what, log);
    while (f && fgets(line, sizeof line, f))
        fputs(line, stderr);
    if (f)
        fclose(f);
}

/* Document i of the ingest benchmark, as bench/stage/{emit-json.sh,clean.py,plugin.c} make it:
 * {"i": i, "s0".."s6": "miNVpaKWqm", "n0".."n6": k * 7919}, 212 bytes of BSON. */
static inline void bench_make_doc(bson_t *doc, int32_t i)
{
    static const char *const skeys[] = {"s0", "s1", "s2", "s3", "s4", "s5", "s6"};
    static const char *const nkeys[] = {"n0", "n1", "n2", "n3", "n4", "n5", "n6"};
    bson_init(doc);
    BSON_APPEND_INT32(doc, "i", i);
    for (int k = 0; k < 7; k++)
        BSON_APPEND_UTF8(doc, skeys[k], "miNVpaKWqm");
    for (int k = 0; k < 7; k++)
        BSON_APPEND_INT32(doc, nkeys[k], k * 7919);
}

#endif
