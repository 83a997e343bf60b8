/* Spawning and waiting. The child side of fork() uses only async-signal-safe calls, because MPI libraries run
 * helper threads: argv and the environment are built before fork, and exec errors go back over a CLOEXEC pipe. */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "serve/proc.h"
#include "util/env.h"

extern char **environ;

#define HIGH_FD 10 /* the report pipe's child end lives above every number the child moves descriptors to */

static bool env_overridden(const char *entry, char *const *extra)
{
    size_t len = strcspn(entry, "=");
    for (size_t i = 0; extra && extra[i]; i++)
        if (strncmp(extra[i], entry, len) == 0 && extra[i][len] == '=')
            return true;
    return false;
}

void nem_proc_environ(char *const *extra, nem_strv_t *out)
{
    for (char **e = environ; e && *e; e++)
        if (!nem_env_withheld(*e) && !env_overridden(*e, extra))
            nem_strv_push(out, *e);
    for (size_t i = 0; extra && extra[i]; i++)
        nem_strv_push(out, extra[i]);
}

static void child_fd(int from, int to)
{
    if (from >= 0 && from != to && from != NEM_FD_INHERIT)
        dup2(from, to);
}

/* Runs in the child: only async-signal-safe calls. */
static void child_exec(const nem_spawn_t *sp, char **envp, int report_fd, pid_t parent)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigset_t none;
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    int err, first_closed;

    if (sp->new_session)
        setsid();
    umask(077); /* what a server creates under the db path (data, state, logs) is its owner's alone */
    if (sp->die_with_parent) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)    /* the parent died before prctl took effect */
            _exit(127);
    }
    sigemptyset(&dfl.sa_mask);
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            sigaction(s, &dfl, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    child_fd(sp->in_fd == -1 ? devnull : sp->in_fd, 0);
    child_fd(sp->out_fd == -1 ? devnull : sp->out_fd, 1);
    child_fd(sp->out_fd == -1 ? devnull : sp->out_fd, 2);
    /* Close everything else: MPI keeps non-CLOEXEC descriptors (Open MPI's singleton-died pipe, for one), and a
     * server holding them keeps mpirun or orted waiting for it. The kept descriptor moves to fd 3, the exec-error
     * report (still close-on-exec, so exec closes it and the parent reads EOF) to the next number; everything
     * above goes. report_fd is above HIGH_FD, so neither move can clobber it. */
    if (sp->keep_fd >= 0) {
        if (sp->keep_fd != 3)
            dup2(sp->keep_fd, 3);
        else
            fcntl(3, F_SETFD, 0);
    }
    first_closed = sp->keep_fd >= 0 ? 4 : 3;
    if (dup3(report_fd, first_closed, O_CLOEXEC) < 0)
        _exit(127);
    report_fd = first_closed++;
    if (close_range((unsigned)first_closed, ~0U, 0) != 0)
        for (int fd = first_closed; fd < 4096; fd++)
            close(fd);
    execve(sp->argv[0], sp->argv, envp);
    err = errno;
    if (write(report_fd, &err, sizeof err) < 0) {
        /* nothing more can be done in the child */
    }
    _exit(127);
}

pid_t nem_proc_spawn(const nem_spawn_t *sp, bson_error_t *err)
{
    nem_strv_t env = {0};
    int pfd[2], child_errno = 0;
    pid_t parent = getpid(), pid;
    ssize_t got;

    if (pipe2(pfd, O_CLOEXEC) != 0) {
        bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_ESYSTEM, "pipe: %s", strerror(errno));
        return -1;
    }
    {
        /* The child end above every fixed number the child uses (0-4), so its moves cannot close it. */
        int high = fcntl(pfd[1], F_DUPFD_CLOEXEC, HIGH_FD);
        if (high < 0) {
            bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_ESYSTEM, "pipe: %s", strerror(errno));
            close(pfd[0]);
            close(pfd[1]);
            return -1;
        }
        close(pfd[1]);
        pfd[1] = high;
    }
    nem_proc_environ(sp->env_extra, &env);
    pid = fork();
    if (pid == 0)
        child_exec(sp, env.v, pfd[1], parent);
    close(pfd[1]);
    nem_strv_free(&env);
    if (pid < 0) {
        bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_ESYSTEM, "cannot fork for %s: %s", sp->argv[0], strerror(errno));
        close(pfd[0]);
        return -1;
    }
    do
        got = read(pfd[0], &child_errno, sizeof child_errno);
    while (got < 0 && errno == EINTR);
    close(pfd[0]);
    if (got == (ssize_t)sizeof child_errno) {
        waitpid(pid, NULL, 0);
        bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_ESYSTEM, "cannot execute %s: %s", sp->argv[0], strerror(child_errno));
        return -1;
    }
    return pid;
}

bool nem_proc_reap(pid_t pid, int *status)
{
    int st = 0;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid && status)
        *status = st;
    /* ECHILD: already reaped elsewhere, so it has ended. */
    return r == pid || (r < 0 && errno == ECHILD);
}

bool nem_proc_wait_child(pid_t pid, int timeout_ms, int *status)
{
    int64_t deadline = nem_now_ms() + timeout_ms;
    int step = 1;

    for (;;) {
        if (nem_proc_reap(pid, status))
            return true;
        if (nem_now_ms() >= deadline)
            return false;
        /* Back off from 1 ms to 20 ms: most servers end within a few ms of a SIGTERM. */
        nem_sleep_ms(step);
        step = step < 20 ? step * 2 : 20;
    }
}

void nem_proc_describe(int status, char *buf, size_t len)
{
    if (WIFEXITED(status))
        bson_snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        bson_snprintf(buf, len, "was killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        bson_snprintf(buf, len, "ended (wait status %d)", status);
}
