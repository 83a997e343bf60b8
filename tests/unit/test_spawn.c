/* Unit suite: the one spawner (src/util/spawn.c). The children are this binary run again (--child MODE), so what
 * a child sees (its descriptors, signal mask and dispositions, process group) is reported by code that runs after
 * exec, exactly as a server or a stage script would see it. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/errors.h"
#include "config/env.h"
#include "util/spawn.h"

static char self[4096];

/* --- the child side ------------------------------------------------------------------------------------------ */

/* fds A B: echoes a line of stdin on stdout, writes to stderr, fd 3, fd A and fd B, and lists its open
 * descriptors. */
static int child_fds(int a, int b)
{
    char line[64] = "", open_fds[512] = "";
    if (!fgets(line, sizeof line, stdin))
        return 2;
    line[strcspn(line, "\n")] = 0;
    for (int fd = 0; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) != -1)
            snprintf(open_fds + strlen(open_fds), sizeof open_fds - strlen(open_fds), " %d", fd);
    printf("in:%s\nopen:%s\n", line, open_fds);
    fflush(stdout);
    fputs("err\n", stderr);
    if (write(3, "keep\n", 5) != 5 || write(a, "a\n", 2) != 2 || write(b, "b\n", 2) != 2)
        return 3;
    return 0;
}

/* signals: the blocked signals, those not at SIG_DFL, and whether it leads its own process group. */
/* The fault signals a sanitizer runtime takes over when this (instrumented) child starts, after the exec: their
 * handlers are the child's own, not inherited. */
static bool own_at_start(int s)
{
    return s == SIGSEGV || s == SIGBUS || s == SIGFPE || s == SIGILL || s == SIGABRT || s == SIGTRAP;
}

static int child_signals(void)
{
    sigset_t mask;
    char blocked[512] = "", changed[512] = "";
    sigprocmask(SIG_SETMASK, NULL, &mask);
    for (int s = 1; s < NSIG; s++) {
        struct sigaction sa;
        if (sigismember(&mask, s) == 1)
            snprintf(blocked + strlen(blocked), sizeof blocked - strlen(blocked), " %d", s);
        if (!own_at_start(s) && sigaction(s, NULL, &sa) == 0 && sa.sa_handler != SIG_DFL)
            snprintf(changed + strlen(changed), sizeof changed - strlen(changed), " %d", s);
    }
    printf("blocked:%s\nnot default:%s\npgid %d\n", blocked, changed, (int)getpgrp());
    return 0;
}

/* daemon FILE: leaves a daemon behind (fork, setsid, fork; the middle process exits), which writes its pid to FILE
 * (whole, by rename) and sleeps; returns once FILE is there. */
static int child_daemon(const char *file)
{
    char tmp[4200];
    pid_t mid = fork();
    if (mid < 0)
        return 2;
    if (mid == 0) {
        if (setsid() < 0)
            _exit(1);
        if (fork() == 0) {
            FILE *f;
            snprintf(tmp, sizeof tmp, "%s.tmp", file);
            if ((f = fopen(tmp, "w"))) {
                fprintf(f, "%d\n", (int)getpid());
                if (fclose(f) == 0)
                    rename(tmp, file);
            }
            sleep(20); /* the sweep ends it long before */
        }
        _exit(0);
    }
    waitpid(mid, NULL, 0);
    for (int i = 0; i < 10000 && access(file, F_OK) != 0; i++)
        usleep(1000);
    return access(file, F_OK) == 0 ? 0 : 3;
}

static int child_main(const char *mode, char **args)
{
    if (strcmp(mode, "daemon") == 0 && args[0])
        return child_daemon(args[0]);
    if (strcmp(mode, "fds") == 0 && args[0] && args[1])
        return child_fds(atoi(args[0]), atoi(args[1]));
    if (strcmp(mode, "signals") == 0)
        return child_signals();
    if (strcmp(mode, "sleep") == 0) {
        sleep(20); /* the death signal ends it long before */
        return 0;
    }
    return 99;
}

/* --- helpers --------------------------------------------------------------------------------------------------- */

static char *slurp(int fd)
{
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    ssize_t n;
    while ((n = read(fd, buf + len, cap - 1 - len)) > 0 || (n < 0 && errno == EINTR))
        len += n > 0 ? (size_t)n : 0;
    buf[len] = 0;
    close(fd);
    return buf;
}

/* Reads fd to its end (and closes it): the text must be want. */
static void assert_reads(int fd, const char *want)
{
    char *text = slurp(fd);
    ck_assert_str_eq(text, want);
    free(text);
}

/* Puts a close-on-exec copy of fd at number at (closing fd). */
static int move_to(int fd, int at)
{
    ck_assert_int_eq(dup3(fd, at, O_CLOEXEC), at);
    close(fd);
    return at;
}

/* A pipe with both ends at 100 and above, clear of the numbers a test places descriptors on. */
static void high_pipe(int p[2])
{
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    for (int i = 0; i < 2; i++) {
        int high = fcntl(p[i], F_DUPFD_CLOEXEC, 100);
        ck_assert_int_ge(high, 100);
        close(p[i]);
        p[i] = high;
    }
}

static void assert_no_child_left(void)
{
    errno = 0;
    ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
    ck_assert_int_eq(errno, ECHILD);
}

/* Runs this binary as the child in mode, with up to two arguments. */
static pid_t spawn_args(nem_spawn_t *sp, bson_error_t *err, const char *mode, const char *arg1, const char *arg2)
{
    static char *argv[6];
    argv[0] = self;
    argv[1] = "--child";
    argv[2] = (char *)mode;
    argv[3] = (char *)arg1;
    argv[4] = arg1 ? (char *)arg2 : NULL;
    argv[5] = NULL;
    sp->argv = argv;
    return nem_spawn(sp, NEM_ERROR_RUNNER, NEM_RUNNER_ESPAWN, err);
}

static pid_t spawn_mode(const char *mode, nem_spawn_t *sp, bson_error_t *err)
{
    return spawn_args(sp, err, mode, NULL, NULL);
}

/* --- tests ----------------------------------------------------------------------------------------------------- */

START_TEST(exec_failure_is_reported_in_the_parent)
{
    char dir[] = "/tmp/nem-test-spawn.XXXXXX", path[128], want[192];
    char *missing[] = {"/nonexistent/program", NULL}, *plain[] = {path, NULL};
    bson_error_t err = {0};
    nem_spawn_t sp = {.argv = missing, .in_fd = NEM_FD_NULL, .out_fd = NEM_FD_NULL, .keep_fd = -1};
    int fd;

    ck_assert_int_eq(nem_spawn(&sp, NEM_ERROR_SERVE, NEM_SERVE_ESYSTEM, &err), -1);
    ck_assert_uint_eq(err.domain, NEM_ERROR_SERVE);
    ck_assert_uint_eq(err.code, NEM_SERVE_ESYSTEM);
    ck_assert_str_eq(err.message, "cannot execute /nonexistent/program: No such file or directory");
    assert_no_child_left(); /* the failed child was reaped */

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/not-executable", dir);
    ck_assert_int_ge(fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600), 0);
    close(fd);
    sp.argv = plain;
    sp.keep_fd = open("/dev/null", O_RDONLY | O_CLOEXEC); /* the report must survive a kept descriptor too */
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(nem_spawn(&sp, NEM_ERROR_RUNNER, NEM_RUNNER_ESPAWN, &err), -1);
    snprintf(want, sizeof want, "cannot execute %s: Permission denied", path);
    ck_assert_str_eq(err.message, want);
    ck_assert_uint_eq(err.domain, NEM_ERROR_RUNNER);
    close(sp.keep_fd);
    unlink(path);
    rmdir(dir);
    assert_no_child_left();
}
END_TEST

/* B's source sits on A, a number the child moves another descriptor to: a spawner that did not move the sources
 * out of the way first would give the child's fd B the pipe meant for A. A and B are the first free numbers
 * above 3 (the test harness may hold some). */
START_TEST(descriptors_are_mapped_and_the_rest_closed)
{
    int in[2], out[2], errp[2], keep[2], pa[2], pb[2], stray, a = -1, b = -1, low = -1;
    char an[8], bn[8], want[64];
    bson_error_t err = {0};
    pid_t pid;
    int status = -1;

    high_pipe(in);
    high_pipe(out);
    high_pipe(errp);
    high_pipe(keep);
    high_pipe(pa);
    high_pipe(pb);
    for (int fd = 4; fd <= NEM_SPAWN_MAX_FD && b < 0; fd++)
        if (fcntl(fd, F_GETFD) == -1)
            *(a < 0 ? &a : &b) = fd;
    ck_assert_msg(b > 0, "no two free descriptors below %d", NEM_SPAWN_MAX_FD);
    pb[1] = move_to(pb[1], a);
    /* Descriptors nemesyst inherited without close-on-exec must not reach the child either: one high, one on a
     * low number the child does not use. */
    stray = open("/dev/null", O_RDONLY);
    ck_assert_int_eq(fcntl(stray, F_DUPFD, 200), 200);
    for (int fd = b + 1; fd <= NEM_SPAWN_MAX_FD && low < 0; fd++)
        if (fcntl(fd, F_GETFD) == -1)
            low = fcntl(stray, F_DUPFD, fd);
    ck_assert_msg(low > b, "no free descriptor below %d", NEM_SPAWN_MAX_FD);
    ck_assert_int_eq(write(in[1], "hello\n", 6), 6);
    close(in[1]);
    bson_snprintf(an, sizeof an, "%d", a);
    bson_snprintf(bn, sizeof bn, "%d", b);
    {
        nem_spawn_fd_t more[] = {{errp[1], 2}, {pa[1], a}, {pb[1], b}};
        nem_spawn_t sp = {.in_fd = in[0], .out_fd = out[1], .keep_fd = keep[1], .fds = more, .n_fds = 3};
        pid = spawn_args(&sp, &err, "fds", an, bn);
    }
    ck_assert_msg(pid > 0, "%s", err.message);
    for (int *fd = (int[]){in[0], out[1], errp[1], keep[1], pa[1], pb[1], -1}; *fd >= 0; fd++)
        close(*fd);
    bson_snprintf(want, sizeof want, "in:hello\nopen: 0 1 2 3 %d %d\n", a, b);
    assert_reads(out[0], want);
    assert_reads(errp[0], "err\n");
    assert_reads(keep[0], "keep\n");
    assert_reads(pa[0], "a\n");
    assert_reads(pb[0], "b\n");
    ck_assert(nem_spawn_reap(pid, true, &status));
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    close(stray);
    close(200);
    close(low);
}
END_TEST

/* A descriptor number beyond what the spawner can place is refused before anything starts. */
START_TEST(descriptor_out_of_range_is_refused)
{
    nem_spawn_fd_t more[] = {{NEM_FD_NULL, NEM_SPAWN_MAX_FD + 1}};
    nem_spawn_t sp = {.in_fd = NEM_FD_NULL, .out_fd = NEM_FD_NULL, .keep_fd = -1, .fds = more, .n_fds = 1};
    bson_error_t err = {0};
    ck_assert_int_eq(spawn_mode("sleep", &sp, &err), -1);
    ck_assert_msg(strstr(err.message, "descriptor 10"), "%s", err.message);
    assert_no_child_left();
}
END_TEST

/* What the parent blocked or ignored (SIG_IGN survives exec) does not reach the child. */
static void on_hup(int sig)
{
    (void)sig;
}

/* The test's own state before block_and_ignore_some, for restore_signals (CK_FORK=no runs every test in one
 * process). */
static const int changed_signals[] = {SIGPIPE, SIGUSR1, SIGINT, SIGHUP};
static struct sigaction saved_actions[4];
static sigset_t saved_mask;

static void block_and_ignore_some(void)
{
    struct sigaction ign = {.sa_handler = SIG_IGN}, handle = {.sa_handler = on_hup};
    sigset_t set;
    sigemptyset(&ign.sa_mask);
    sigemptyset(&handle.sa_mask);
    for (size_t i = 0; i < 4; i++)
        sigaction(changed_signals[i], changed_signals[i] == SIGHUP ? &handle : &ign, &saved_actions[i]);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, &saved_mask);
}

static void restore_signals(void)
{
    for (size_t i = 0; i < 4; i++)
        sigaction(changed_signals[i], &saved_actions[i], NULL);
    sigprocmask(SIG_SETMASK, &saved_mask, NULL);
}

static char *run_signals_child(nem_spawn_t *sp, pid_t *pid, int *status)
{
    int out[2];
    bson_error_t err = {0};
    char *text;
    ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
    sp->in_fd = NEM_FD_NULL;
    sp->out_fd = out[1];
    sp->keep_fd = -1;
    *pid = spawn_mode("signals", sp, &err);
    ck_assert_msg(*pid > 0, "%s", err.message);
    close(out[1]);
    text = slurp(out[0]);
    ck_assert(nem_spawn_reap(*pid, true, status));
    return text;
}

START_TEST(child_starts_with_default_signals)
{
    sigset_t mask;
    nem_spawn_t sp = {.new_group = true};
    pid_t pid;
    int status = -1;
    char *text, want[128];

    block_and_ignore_some();
    text = run_signals_child(&sp, &pid, &status);
    snprintf(want, sizeof want, "blocked:\nnot default:\npgid %d\n", (int)pid);
    ck_assert_str_eq(text, want);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    free(text);
    /* The parent's own mask is as it was. */
    sigprocmask(SIG_SETMASK, NULL, &mask);
    ck_assert(sigismember(&mask, SIGTERM) && sigismember(&mask, SIGUSR2) && !sigismember(&mask, SIGHUP));
    restore_signals();
}
END_TEST

/* A guard: the program's pid and the spawner's pid arrive; it relays the program's exit status plus 40. */
static void test_guard(pid_t program, pid_t parent)
{
    int status;
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (parent != getppid() || program <= 0)
        _exit(90);
    while (waitpid(program, &status, 0) < 0)
        if (errno != EINTR)
            _exit(91);
    _exit(WIFEXITED(status) ? 40 + WEXITSTATUS(status) : 92);
}

START_TEST(a_guard_leads_the_group_and_relays)
{
    nem_spawn_t sp = {.new_group = true, .death_signal = SIGTERM, .guard = test_guard};
    char *missing[] = {"/nonexistent/script", NULL}, *text, want[128];
    bson_error_t err = {0};
    pid_t pid;
    int status = -1;

    block_and_ignore_some();
    text = run_signals_child(&sp, &pid, &status);
    snprintf(want, sizeof want, "blocked:\nnot default:\npgid %d\n", (int)pid); /* the guard leads the group */
    ck_assert_str_eq(text, want);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 40, "guard status %d", status);
    free(text);
    sp.argv = missing;
    sp.in_fd = sp.out_fd = NEM_FD_NULL;
    ck_assert_int_eq(nem_spawn(&sp, NEM_ERROR_RUNNER, NEM_RUNNER_ESPAWN, &err), -1);
    ck_assert_str_eq(err.message, "cannot execute /nonexistent/script: No such file or directory");
    assert_no_child_left();
    restore_signals();
}
END_TEST

/* A guard that sweeps: it reaps whatever it is handed while the program runs, then ends what the program left. */
static void sweeping_guard(pid_t program, pid_t parent)
{
    int status = 0;
    pid_t got;
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (parent != getppid())
        _exit(90);
    while ((got = waitpid(-1, &status, 0)) != program)
        if (got < 0 && errno != EINTR)
            _exit(91);
    nem_spawn_sweep();
    errno = 0;
    if (waitpid(-1, NULL, WNOHANG) != -1 || errno != ECHILD)
        _exit(93);
    _exit(WIFEXITED(status) ? 40 + WEXITSTATUS(status) : 92);
}

static pid_t read_pid_file(const char *path)
{
    FILE *f = fopen(path, "r");
    int pid = 0;
    ck_assert_msg(f != NULL, "no pid file %s", path);
    ck_assert_int_eq(fscanf(f, "%d", &pid), 1);
    fclose(f);
    return (pid_t)pid;
}

/* A daemon the program leaves (out of its process group and session) is the guard's child once its parent is
 * gone (the guard is a subreaper), and the guard's sweep ends and reaps it before the guard itself ends. */
START_TEST(a_guard_is_a_subreaper_and_sweeps)
{
    char dir[] = "/tmp/nem-test-spawn.XXXXXX", file[128];
    nem_spawn_t sp = {.in_fd = NEM_FD_NULL, .out_fd = NEM_FD_NULL, .keep_fd = -1, .new_group = true,
                      .death_signal = SIGTERM, .guard = sweeping_guard};
    bson_error_t err = {0};
    int status = -1;
    pid_t pid, daemon;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(file, sizeof file, "%s/daemon.pid", dir);
    pid = spawn_args(&sp, &err, "daemon", file, NULL);
    ck_assert_msg(pid > 0, "%s", err.message);
    ck_assert(nem_spawn_reap(pid, true, &status));
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 40, "guard status %d", status);
    daemon = read_pid_file(file);
    ck_assert_int_gt(daemon, 0);
    /* reaped by the guard before it ended: no such process now, not even a zombie */
    errno = 0;
    ck_assert_int_eq(kill(daemon, 0), -1);
    ck_assert_int_eq(errno, ESRCH);
    assert_no_child_left();
    unlink(file);
    rmdir(dir);
}
END_TEST

/* nem_spawn_signal_children reaches every child of the caller, and only its children. */
START_TEST(signal_children_reaches_every_child)
{
    pid_t kids[3];
    int status;

    ck_assert_int_eq(nem_spawn_signal_children(SIGTERM), 0);
    signal(SIGTERM, SIG_DFL); /* not Check's handler, which a child would run on the SIGTERM meant for it */
    for (int i = 0; i < 3; i++) {
        kids[i] = fork();
        ck_assert_int_ge(kids[i], 0);
        if (kids[i] == 0)
            for (;;)
                pause();
    }
    ck_assert_int_eq(nem_spawn_signal_children(SIGTERM), 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(waitpid(kids[i], &status, 0), kids[i]);
        ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM, "child status %d", status);
    }
    nem_spawn_sweep(); /* nothing left: returns at once */
    assert_no_child_left();
}
END_TEST

/* The parent (a process between the test and the child) dies: the child gets its death signal. This process is
 * a subreaper, so the orphan's wait status comes here. */
START_TEST(death_signal_fires_when_the_parent_dies)
{
    int p[2], status = -1;
    pid_t middle, child = 0;

    ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    ck_assert_int_eq(pipe(p), 0);
    middle = fork();
    ck_assert_int_ge(middle, 0);
    if (middle == 0) {
        nem_spawn_t sp = {.in_fd = NEM_FD_NULL, .out_fd = NEM_FD_NULL, .keep_fd = -1, .death_signal = SIGUSR1};
        bson_error_t err;
        pid_t pid = spawn_mode("sleep", &sp, &err);
        _exit(write(p[1], &pid, sizeof pid) == sizeof pid && pid > 0 ? 0 : 1);
    }
    close(p[1]);
    ck_assert_int_eq(read(p[0], &child, sizeof child), (ssize_t)sizeof child);
    ck_assert_int_gt(child, 0);
    ck_assert_int_eq(waitpid(middle, &status, 0), middle);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGUSR1, "child status %d", status);
}
END_TEST

START_TEST(wait_with_a_deadline)
{
    nem_spawn_t sp = {.in_fd = NEM_FD_NULL, .out_fd = NEM_FD_NULL, .keep_fd = -1};
    bson_error_t err = {0};
    int status = -1;
    pid_t pid = spawn_mode("sleep", &sp, &err);

    ck_assert_msg(pid > 0, "%s", err.message);
    ck_assert(!nem_spawn_reap(pid, false, &status));
    ck_assert(!nem_spawn_wait(pid, 50, &status));
    kill(pid, SIGKILL);
    ck_assert(nem_spawn_wait(pid, 10000, &status));
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    status = 12345;
    ck_assert(nem_spawn_reap(pid, false, &status)); /* already reaped: it has ended, status untouched */
    ck_assert_int_eq(status, 12345);
}
END_TEST

START_TEST(wait_status_wording)
{
    char buf[128];

    nem_spawn_describe(3 << 8, buf, sizeof buf);
    ck_assert_str_eq(buf, "exited with status 3");
    nem_spawn_describe(0, buf, sizeof buf);
    ck_assert_str_eq(buf, "exited with status 0");
    nem_spawn_describe(SIGKILL, buf, sizeof buf);
    ck_assert_str_eq(buf, "killed by SIGKILL (signal 9, Killed)");
    nem_spawn_describe(SIGSEGV | 0x80, buf, sizeof buf);
    ck_assert_str_eq(buf, "killed by SIGSEGV (signal 11, Segmentation fault), core dumped");
    nem_spawn_describe(SIGRTMIN + 2, buf, sizeof buf);
    snprintf(buf + 64, 64, "killed by signal %d (", SIGRTMIN + 2);
    ck_assert_msg(strncmp(buf, buf + 64, strlen(buf + 64)) == 0, "%s", buf);
    nem_spawn_describe(0x7f | (SIGSTOP << 8), buf, sizeof buf);
    ck_assert_str_eq(buf, "ended with wait status 4991");
    /* A real death reads the same. */
    {
        pid_t pid = fork();
        int status;
        if (pid == 0) {
            signal(SIGTERM, SIG_DFL);
            raise(SIGTERM);
            _exit(0);
        }
        ck_assert(nem_spawn_reap(pid, true, &status));
        nem_spawn_describe(status, buf, sizeof buf);
        ck_assert_str_eq(buf, "killed by SIGTERM (signal 15, Terminated)");
    }
}
END_TEST

START_TEST(environment_withholds_secrets_and_extra_wins)
{
    nem_strv_t env = {0};
    char *extra[] = {"NEM_TEST_SPAWN=new", "SECRET_FOR_CHILD=x", NULL};
    bool home = false;
    size_t spawn_vars = 0;

    setenv("N_DB_PASSWORD", "hunter2", 1);
    setenv("NEM_TEST_SPAWN", "old", 1);
    setenv("HOME", "/home/test", 1);
    nem_spawn_environ(extra, nem_env_withheld, &env);
    for (size_t i = 0; i < env.n; i++) {
        ck_assert_msg(!strstr(env.v[i], "hunter2"), "%s", env.v[i]);
        home = home || strcmp(env.v[i], "HOME=/home/test") == 0;
        spawn_vars += strncmp(env.v[i], "NEM_TEST_SPAWN=", 15) == 0;
    }
    ck_assert(home);
    ck_assert_uint_eq(spawn_vars, 1);
    ck_assert_str_eq(env.v[env.n - 2], "NEM_TEST_SPAWN=new");
    ck_assert_str_eq(env.v[env.n - 1], "SECRET_FOR_CHILD=x");
    ck_assert_ptr_null(env.v[env.n]);
    nem_strv_free(&env);
    /* Without a predicate nothing is kept back. */
    bool secret = false;
    nem_spawn_environ(NULL, NULL, &env);
    for (size_t i = 0; i < env.n; i++)
        secret = secret || strcmp(env.v[i], "N_DB_PASSWORD=hunter2") == 0;
    ck_assert(secret);
    nem_strv_free(&env);
}
END_TEST

static Suite *spawn_suite(void)
{
    Suite *s = suite_create("spawn");
    TCase *t = tcase_create("spawn");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, exec_failure_is_reported_in_the_parent);
    tcase_add_test(t, descriptors_are_mapped_and_the_rest_closed);
    tcase_add_test(t, descriptor_out_of_range_is_refused);
    tcase_add_test(t, child_starts_with_default_signals);
    tcase_add_test(t, a_guard_leads_the_group_and_relays);
    tcase_add_test(t, a_guard_is_a_subreaper_and_sweeps);
    tcase_add_test(t, signal_children_reaches_every_child);
    tcase_add_test(t, death_signal_fires_when_the_parent_dies);
    tcase_add_test(t, wait_with_a_deadline);
    tcase_add_test(t, wait_status_wording);
    tcase_add_test(t, environment_withholds_secrets_and_extra_wins);
    suite_add_tcase(s, t);
    return s;
}

int main(int argc, char **argv)
{
    ssize_t n;
    if (argc >= 3 && strcmp(argv[1], "--child") == 0)
        return child_main(argv[2], argv + 3);
    n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return 99;
    self[n] = 0;
    SRunner *r = srunner_create(spawn_suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
