/* Starting a stage script: argv, environment, args file, pipes, then fork + exec.
 * The parent is an MPI process, so everything is prepared before fork and the child only does async-signal-safe
 * work (dup2, setpgid, sigaction, close, execve, _exit) before exec: no malloc, no MPI, no stdio. */
#define _GNU_SOURCE /* pipe2, dup3: close-on-exec from the start, no window for a concurrent fork */
#include "stage/runner-private.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/options.h"
#include "util/env.h"

extern char **environ;

#define CHILD_PASSWORD_FD 4
#define CHILD_TLS_KEY_PASSWORD_FD 6
#define CHILD_LAST_FD 6 /* the highest fixed descriptor a child keeps */
#define CHILD_EXECERR_FD 5
#define HIGH_FD 10 /* child-side pipe ends live above the fixed numbers they are moved to */

static void env_set(nem_strv_t *env, const char *name, const char *value)
{
    if (value)
        nem_strv_pushf(env, "%s=%s", name, value);
}

static void build_env(const nem_runner_kind_t *kind, const nem_script_spec_t *spec, const char *args_file,
                      nem_strv_t *env)
{
    for (char **e = environ; e && *e; e++)
        if (!nem_env_withheld(*e)) /* secret N_* options, stale NEMESYST_* values */
            nem_strv_push(env, *e);
    env_set(env, "NEMESYST_STAGE", spec->stage);
    nem_strv_pushf(env, "NEMESYST_POSITION=%zu", spec->position);
    nem_strv_pushf(env, "NEMESYST_RANK=%d", spec->rank);
    env_set(env, "NEMESYST_RUN_ID", spec->run_id);
    env_set(env, "NEMESYST_SCRIPT", spec->path);
    env_set(env, "NEMESYST_ENTRY_POINT", spec->entry_point ? spec->entry_point : "main");
    env_set(env, "NEMESYST_DB_URI", spec->db_uri);
    env_set(env, "NEMESYST_DB_NAME", spec->db_name);
    env_set(env, "NEMESYST_ARGS_FILE", args_file);
    env_set(env, "NEMESYST_WORKDIR", spec->workdir);
    nem_strv_pushf(env, "NEMESYST_TIMEOUT=%d", spec->timeout_s);
    env_set(env, "NEMESYST_INPUT_MODEL", spec->input_model);
    env_set(env, "NEMESYST_INPUT_MODEL_ID", spec->input_model_id);
    if (!kind->items_on_stdout)
        nem_strv_pushf(env, "NEMESYST_ITEM_FD=%d", NEM_RUNNER_ITEM_FD);
    if (spec->password && *spec->password)
        nem_strv_pushf(env, "NEMESYST_PASSWORD_FD=%d", CHILD_PASSWORD_FD);
    if (spec->tls_key_password && *spec->tls_key_password)
        nem_strv_pushf(env, "NEMESYST_TLS_KEY_PASSWORD_FD=%d", CHILD_TLS_KEY_PASSWORD_FD);
}

/* The resolved options as extended JSON in the workdir: a file, not the environment, because the options can be
 * large (pipelines) and environments are size-limited and visible in /proc. */
static char *write_args_file(const nem_script_spec_t *spec, bson_error_t *err)
{
    char *path = bson_strdup_printf("%s/args.json", spec->workdir);
    bson_t empty = BSON_INITIALIZER;
    size_t len;
    char *json = bson_as_relaxed_extended_json(spec->args ? spec->args : &empty, &len);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && json && write(fd, json, len) == (ssize_t)len;
    if (fd >= 0 && close(fd) != 0)
        ok = false;
    if (!ok) {
        bson_set_error(err, NEM_ERROR_RUNNER, NEM_RUNNER_ESPAWN, "cannot write '%s': %s", path, strerror(errno));
        bson_free(path);
        path = NULL;
    }
    bson_free(json);
    bson_destroy(&empty);
    return path;
}

/* Pipe pair {read, write}, both close-on-exec; the end that stays in the parent is non-blocking. The child's end
 * is moved above HIGH_FD so dup2 onto 0..5 in the child can never clobber another pipe end. */
static bool make_pipe(int p[2], bool parent_reads, bson_error_t *err)
{
    int raw[2];
    if (pipe2(raw, O_CLOEXEC) != 0)
        goto fail;
    int child = parent_reads ? 1 : 0;
    int high = fcntl(raw[child], F_DUPFD_CLOEXEC, HIGH_FD);
    if (high < 0) {
        close(raw[0]);
        close(raw[1]);
        goto fail;
    }
    close(raw[child]);
    raw[child] = high;
    if (parent_reads)
        fcntl(raw[0], F_SETFL, fcntl(raw[0], F_GETFL) | O_NONBLOCK);
    p[0] = raw[0];
    p[1] = raw[1];
    return true;
fail:
    bson_set_error(err, NEM_ERROR_RUNNER, NEM_RUNNER_ESPAWN, "cannot create a pipe: %s", strerror(errno));
    return false;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Everything the child needs, prepared before fork. */
typedef struct {
    int devnull;
    int out[2], err[2], items[2], pw[2], kpw[2], execerr[2];
    pid_t parent; /* for the child's parent-death check */
    nem_strv_t argv, env;
    long max_fd;
} spawn_plan_t;

static void plan_close(spawn_plan_t *p)
{
    int *fds[] = {&p->devnull, &p->out[0], &p->out[1], &p->err[0], &p->err[1], &p->items[0], &p->items[1],
                  &p->pw[0], &p->pw[1], &p->kpw[0], &p->kpw[1], &p->execerr[0], &p->execerr[1]};
    for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
        close_fd(fds[i]);
    nem_strv_free(&p->argv);
    nem_strv_free(&p->env);
}

/* A secret goes into a pipe the child inherits; it is small, so it fits the pipe buffer and the write cannot
 * block. */
static bool plan_secret(int pipefd[2], const char *secret, const char *what, bson_error_t *err)
{
    if (!secret || !*secret)
        return true;
    size_t n = strlen(secret);
    if (n > 4096) {
        bson_set_error(err, NEM_ERROR_RUNNER, NEM_RUNNER_ESPAWN, "%s too long to hand over (%zu bytes)", what, n);
        return false;
    }
    if (!make_pipe(pipefd, false, err))
        return false;
    if (write(pipefd[1], secret, n) != (ssize_t)n) {
        bson_set_error(err, NEM_ERROR_RUNNER, NEM_RUNNER_ESPAWN, "cannot hand over the %s: %s", what, strerror(errno));
        return false;
    }
    close_fd(&pipefd[1]);
    return true;
}

static bool plan_pipes(spawn_plan_t *p, const nem_runner_kind_t *kind, bson_error_t *err)
{
    int raw = open("/dev/null", O_RDONLY | O_CLOEXEC);
    p->devnull = raw < 0 ? -1 : fcntl(raw, F_DUPFD_CLOEXEC, HIGH_FD);
    if (raw >= 0)
        close(raw);
    if (p->devnull < 0) {
        bson_set_error(err, NEM_ERROR_RUNNER, NEM_RUNNER_ESPAWN, "cannot open /dev/null: %s", strerror(errno));
        return false;
    }
    if (!make_pipe(p->out, true, err) || !make_pipe(p->err, true, err) || !make_pipe(p->execerr, true, err))
        return false;
    if (!kind->items_on_stdout && !make_pipe(p->items, true, err))
        return false;
    /* exec errors are read with a blocking read: EOF (exec succeeded) or errno */
    fcntl(p->execerr[0], F_SETFL, fcntl(p->execerr[0], F_GETFL) & ~O_NONBLOCK);
    p->max_fd = sysconf(_SC_OPEN_MAX);
    if (p->max_fd < 0 || p->max_fd > 65536)
        p->max_fd = 65536;
    return true;
}

/* dup2 clears close-on-exec on the copy, which is what makes these fds survive exec. */
static int child_move(int from, int to)
{
    if (from < 0)
        return 0;
    return dup2(from, to) < 0 ? -1 : 0;
}

/* A fixed slot this script does not use must not pass on whatever nemesyst itself inherited there. */
static int child_slot(int from, int to, int filler)
{
    if (from >= 0)
        return child_move(from, to);
    if (filler >= 0)
        return child_move(filler, to);
    close(to);
    return 0;
}

static void child_close_rest(long max_fd)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, CHILD_LAST_FD + 1, ~0U, 0) == 0)
        return;
#endif
    for (long fd = CHILD_LAST_FD + 1; fd < max_fd; fd++)
        close((int)fd);
}

static void child_reset_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        sigaction(sig, &sa, NULL); /* fails harmlessly for SIGKILL, SIGSTOP and RT signals in use */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

static void report_errno(void)
{
    int e = errno;
    if (write(CHILD_EXECERR_FD, &e, sizeof e) < 0) {
        /* nothing left to report it with */
    }
}

/* The guard: the rank's direct child, leader of the script's process group, which it never leaves. PDEATHSIG
 * reaches only a direct child, so a script's own children would outlive a rank killed outright; the guard turns
 * the rank's death into SIGKILL for the whole group. It ignores the signals the rank sends the group (the script
 * handles those: SIGTERM keeps its grace), waits for the script and ends the way the script ended, so the rank
 * sees the script's own exit status or signal. Only async-signal-safe calls: this is a forked MPI process. */
static volatile sig_atomic_t guard_parent;

static void guard_on_term(int sig)
{
    (void)sig;
    if (getppid() != (pid_t)guard_parent) /* the rank died (PDEATHSIG): nothing of the script may outlive it */
        kill(0, SIGKILL);
}

static _Noreturn void guard_relay(pid_t script)
{
    int status = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = guard_on_term;
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    sigaction(SIGPIPE, &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (getppid() != (pid_t)guard_parent)
        kill(0, SIGKILL);
    for (;;) {
        pid_t got = waitpid(script, &status, 0);
        if (got == script)
            break;
        if (got < 0 && errno != EINTR)
            _exit(127);
    }
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        struct rlimit none_core = {0, 0};
        setrlimit(RLIMIT_CORE, &none_core); /* the script dumped its own core, if any: not a copy of the rank */
        sa.sa_handler = SIG_DFL;
        sigaction(sig, &sa, NULL);
        kill(getpid(), sig);
        _exit(128 + sig);
    }
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 127);
}

static _Noreturn void child_exec(const spawn_plan_t *p)
{
    setpgid(0, 0);
    child_reset_signals();
    if (dup3(p->execerr[1], CHILD_EXECERR_FD, O_CLOEXEC) < 0 && p->execerr[1] != CHILD_EXECERR_FD)
        _exit(127);
    /* The guard dies with the rank that runs it, and takes the script's process group with it. */
    guard_parent = (sig_atomic_t)p->parent;
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != p->parent)
        _exit(127);
    if (child_move(p->devnull, 0) || child_move(p->out[1], 1) || child_move(p->err[1], 2) ||
        child_slot(p->items[1], NEM_RUNNER_ITEM_FD, p->devnull) ||
        child_slot(p->pw[0], CHILD_PASSWORD_FD, p->devnull) ||
        child_slot(p->kpw[0], CHILD_TLS_KEY_PASSWORD_FD, p->devnull))
        goto fail;
    child_close_rest(p->max_fd);
    /* SIGTERM stays blocked across the fork, so the guard's handler is in place before it can arrive. */
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, &old);
    pid_t self = getpid();
    pid_t script = fork();
    if (script < 0)
        goto fail;
    if (script > 0) {
        /* The guard holds none of the script's descriptors: the exec report's EOF then means the script's exec
         * succeeded, and the pipes close when the script (and whatever it left) closes them. */
        for (int fd = 0; fd <= CHILD_LAST_FD; fd++)
            close(fd);
        guard_relay(script);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    /* The script: dies with its guard, so a SIGKILL of the guard alone leaves nothing either. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != self)
        _exit(127);
    execve(p->argv.v[0], p->argv.v, p->env.v);
fail:
    report_errno();
    _exit(127);
}

/* Reads the child's exec verdict: EOF means exec succeeded (the pipe closed on exec). */
static bool await_exec(pid_t pid, int fd, const char *what, bson_error_t *err)
{
    int e = 0;
    ssize_t n;
    do
        n = read(fd, &e, sizeof e);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return true;
    waitpid(pid, NULL, 0);
    bson_set_error(err, NEM_ERROR_RUNNER, NEM_RUNNER_ESPAWN, "cannot execute '%s': %s", what, strerror(e));
    return false;
}

bool nem_runner_spawn(const nem_runner_kind_t *kind, const nem_script_spec_t *spec, pid_t *pid,
                      nem_child_fds_t *fds, bson_error_t *err)
{
    spawn_plan_t p = {.devnull = -1, .out = {-1, -1}, .err = {-1, -1}, .items = {-1, -1}, .pw = {-1, -1},
                      .kpw = {-1, -1}, .execerr = {-1, -1}};
    char *args_file = NULL;
    bool ok = false;
    if (!spec->workdir) {
        bson_set_error(err, NEM_ERROR_RUNNER, NEM_RUNNER_ESPAWN, "no working directory for '%s'", spec->path);
        goto out;
    }
    if (!kind->argv(spec, &p.argv, err) || !(args_file = write_args_file(spec, err)))
        goto out;
    build_env(kind, spec, args_file, &p.env);
    if (!plan_pipes(&p, kind, err) || !plan_secret(p.pw, spec->password, "password", err) ||
        !plan_secret(p.kpw, spec->tls_key_password, "TLS key password", err))
        goto out;
    p.parent = getpid();
    *pid = fork();
    if (*pid < 0) {
        bson_set_error(err, NEM_ERROR_RUNNER, NEM_RUNNER_ESPAWN, "cannot fork: %s", strerror(errno));
        goto out;
    }
    if (*pid == 0)
        child_exec(&p);
    setpgid(*pid, *pid); /* also in the parent, so a kill right after start already reaches the group */
    close_fd(&p.execerr[1]);
    if (!await_exec(*pid, p.execerr[0], p.argv.v[0], err))
        goto out;
    fds->items = kind->items_on_stdout ? p.out[0] : p.items[0];
    fds->out = kind->items_on_stdout ? -1 : p.out[0];
    fds->err = p.err[0];
    p.out[0] = p.items[0] = p.err[0] = -1; /* handed over */
    ok = true;
out:
    plan_close(&p);
    bson_free(args_file);
    return ok;
}
