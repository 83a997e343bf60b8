/* Starting a stage script: argv, environment, args file and pipes, then the shared spawner (util/spawn.c) forks a
 * guard that runs the script (see guard_relay). The parent is an MPI process: the guard only does
 * async-signal-safe work (sigaction, waitpid, kill, reading /proc, _exit). */
#define _GNU_SOURCE /* pipe2: close-on-exec from the start, no window for a concurrent fork */
#include "stage/runner/runner-private.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/env.h"
#include "util/spawn.h"

#define CHILD_PASSWORD_FD 4
#define CHILD_TLS_KEY_PASSWORD_FD 6
#define CHILD_GROUP_FD 7

static void env_set(nem_strv_t *env, const char *name, const char *value)
{
    if (value)
        nem_strv_pushf(env, "%s=%s", name, value);
}

/* The script's own entries; the spawner adds environ without the secret N_* options and stale NEMESYST_* values. */
static void build_env(const nem_runner_kind_t *kind, const nem_script_spec_t *spec, const char *args_file,
                      nem_strv_t *env)
{
    env_set(env, "NEMESYST_STAGE", spec->stage);
    nem_strv_pushf(env, "NEMESYST_POSITION=%zu", spec->position);
    nem_strv_pushf(env, "NEMESYST_RANK=%d", spec->rank);
    if (spec->attempt > 0)
        nem_strv_pushf(env, "NEMESYST_ATTEMPT=%" PRId64, spec->attempt);
    env_set(env, "NEMESYST_HOST", spec->host);
    env_set(env, "NEMESYST_STOP_FILE", spec->stop_file);
    env_set(env, "NEMESYST_CHECKPOINT", spec->checkpoint);
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
    nem_strv_pushf(env, "NEMESYST_GROUP_RANK=%d", spec->group_size > 1 ? spec->group_rank : 0);
    nem_strv_pushf(env, "NEMESYST_GROUP_SIZE=%d", spec->group_size > 1 ? spec->group_size : 1);
    if (spec->group_size > 1) {
        nem_strv_pushf(env, "RANK=%d", spec->group_rank);
        nem_strv_pushf(env, "WORLD_SIZE=%d", spec->group_size);
        nem_strv_pushf(env, "LOCAL_RANK=%d", spec->local_rank);
        nem_strv_pushf(env, "LOCAL_WORLD_SIZE=%d", spec->local_size);
        env_set(env, "MASTER_ADDR", spec->master_addr);
        nem_strv_pushf(env, "MASTER_PORT=%d", spec->master_port);
        env_set(env, "NEMESYST_SHARD", spec->shard_json);
        env_set(env, "NEMESYST_SHARD_COLLECTION", spec->shard_collection);
        if (spec->group_fd >= 0)
            nem_strv_pushf(env, "NEMESYST_GROUP_FD=%d", CHILD_GROUP_FD);
    }
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

/* Pipe pair {read, write}, both close-on-exec; the end that stays in the parent is non-blocking. */
static bool make_pipe(int p[2], bool parent_reads, bson_error_t *err)
{
    if (pipe2(p, O_CLOEXEC) != 0) {
        bson_set_error(err, NEM_ERROR_RUNNER, NEM_RUNNER_ESPAWN, "cannot create a pipe: %s", strerror(errno));
        p[0] = p[1] = -1;
        return false;
    }
    if (parent_reads)
        fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    return true;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Everything the spawn needs. */
typedef struct {
    int out[2], err[2], items[2], pw[2], kpw[2];
    nem_strv_t argv, env;
} spawn_plan_t;

static void plan_close(spawn_plan_t *p)
{
    int *fds[] = {&p->out[0], &p->out[1], &p->err[0], &p->err[1], &p->items[0], &p->items[1],
                  &p->pw[0], &p->pw[1], &p->kpw[0], &p->kpw[1]};
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
    if (!make_pipe(p->out, true, err) || !make_pipe(p->err, true, err))
        return false;
    return kind->items_on_stdout || make_pipe(p->items, true, err);
}

/* The guard: the rank's direct child, leader of the script's process group, which it never leaves, and a child
 * subreaper (util/spawn.h), so every descendant of the script is its own to end: those that stay in the group
 * and those that leave it (setsid, a double fork, a daemon). PDEATHSIG reaches only a direct child, so a
 * script's own children would outlive a rank killed outright; the guard turns the rank's death (its death
 * signal, SIGTERM) into SIGKILL for all of them. It ignores the signals the rank sends the group (the script
 * handles those: SIGTERM keeps its grace); NEM_GUARD_KILL from the rank itself (nem_runner's hard stop, where
 * SIGKILL to the group would take the guard first and leave the escaped descendants to init) SIGKILLs the
 * script and everything it left. It reaps whatever is handed over while the script runs, waits for the script,
 * and once the script has ended, however it ended, SIGKILLs and reaps what is left (nem_spawn_sweep): nothing
 * outlives its job. Then it ends the way the script ended, so the rank sees the script's own exit status or
 * signal. The spawner calls it with every signal blocked, so its handlers are in place before any signal can
 * arrive. */
static volatile sig_atomic_t guard_parent;

static void guard_on_term(int sig)
{
    (void)sig;
    if (getppid() != (pid_t)guard_parent) { /* the rank died (PDEATHSIG): nothing of the script may outlive it */
        nem_spawn_sweep();
        kill(0, SIGKILL);
    }
}

static void guard_on_kill(int sig, siginfo_t *info, void *uc)
{
    (void)sig;
    (void)uc;
    if (info->si_code == SI_USER && info->si_pid == (pid_t)guard_parent) /* the rank's, not the script's own */
        nem_spawn_signal_children(SIGKILL); /* the main loop reaps the script, then sweeps the rest */
}

static void guard_relay(pid_t script, pid_t parent)
{
    int status = 0;
    struct sigaction sa;
    guard_parent = (sig_atomic_t)parent;
    memset(&sa, 0, sizeof sa);
    sigfillset(&sa.sa_mask); /* one handler at a time */
    sa.sa_handler = guard_on_term;
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_sigaction = guard_on_kill;
    sa.sa_flags = SA_SIGINFO;
    sigaction(NEM_GUARD_KILL, &sa, NULL);
    sa.sa_flags = 0;
    sa.sa_handler = SIG_IGN;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL); /* SIGUSR1 is NEM_GUARD_KILL */
    sigaction(SIGPIPE, &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (getppid() != parent) {
        nem_spawn_sweep();
        kill(0, SIGKILL);
    }
    for (;;) {
        /* any child: what the script hands over while it runs is reaped as it ends, not left a zombie */
        int st = 0;
        pid_t got = waitpid(-1, &st, 0);
        if (got == script) {
            status = st;
            break;
        }
        if (got < 0 && errno != EINTR)
            _exit(127);
    }
    nem_spawn_sweep();
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        struct rlimit none_core = {0, 0};
        setrlimit(RLIMIT_CORE, &none_core); /* the script dumped its own core, if any: not a copy of the rank */
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_DFL;
        sigaction(sig, &sa, NULL);
        kill(getpid(), sig);
        _exit(128 + sig);
    }
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 127);
}

bool nem_runner_spawn(const nem_runner_kind_t *kind, const nem_script_spec_t *spec, pid_t *pid,
                      nem_child_fds_t *fds, bson_error_t *err)
{
    spawn_plan_t p = {.out = {-1, -1}, .err = {-1, -1}, .items = {-1, -1}, .pw = {-1, -1}, .kpw = {-1, -1}};
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
    {
        /* A slot this script does not use (-1) is /dev/null: it must not pass on what nemesyst inherited there. */
        nem_spawn_fd_t more[] = {{p.err[1], 2}, {p.items[1], NEM_RUNNER_ITEM_FD}, {p.pw[0], CHILD_PASSWORD_FD},
                                 {p.kpw[0], CHILD_TLS_KEY_PASSWORD_FD},
                                 {spec->group_size > 1 ? spec->group_fd : -1, CHILD_GROUP_FD}};
        nem_spawn_t sp = {.argv = p.argv.v, .withhold = nem_env_withheld, .env_extra = p.env.v, .in_fd = NEM_FD_NULL,
                          .out_fd = p.out[1],
                          .keep_fd = -1, .fds = more, .n_fds = sizeof more / sizeof *more, .new_group = true,
                          .death_signal = SIGTERM, .guard = guard_relay, .ignore_usr_signals = true};
        if ((*pid = nem_spawn(&sp, NEM_ERROR_RUNNER, NEM_RUNNER_ESPAWN, err)) < 0)
            goto out;
    }
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
