/* Signal flag and the last-resort server cleanup. The handler only uses async-signal-safe calls (kill, sigaction,
 * raise); everything else (stopping the server in order, waiting, escalation, pid files) is done by the serving
 * code when it sees the flag. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/signals.h"

static volatile sig_atomic_t pending_sig;
static volatile sig_atomic_t server_pid;
static int installed;
static struct timespec first_at; /* when pending_sig was set (CLOCK_MONOTONIC) */

/* A launcher often delivers one signal by several paths at once: under Slurm a time limit or scancel reaches each
 * task from slurmstepd and again through srun, and mpirun forwards what the shell also sent. The same signal
 * again within this long is that one signal, not a user who insists. */
#define DUPLICATE_NS 2000000000LL

/* SIGUSR1 and SIGUSR2 are what mpirun forwards to the ranks without killing the job (it turns SIGINT and SIGTERM
 * into an abort with exit status 1 and SIGKILLs the ranks a second later): nemesyst-mpirun sends them for SIGINT
 * and SIGTERM, and the ranks wind down as for those signals, ending with 130 or 143, which mpirun passes on. */
static const int handled[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2};

static int is_duplicate(int sig)
{
    struct timespec now;
    int same = sig == pending_sig || (sig == SIGUSR1 && pending_sig == SIGINT) ||
               (sig == SIGUSR2 && pending_sig == SIGTERM);
    clock_gettime(CLOCK_MONOTONIC, &now);
    return same && (now.tv_sec - first_at.tv_sec) * 1000000000LL + (now.tv_nsec - first_at.tv_nsec) < DUPLICATE_NS;
}

static void on_signal(int sig)
{
    int saved = errno;
    pid_t pid = (pid_t)server_pid;

    if (pending_sig == 0) {
        if (sig == SIGUSR1)
            sig = SIGINT;
        else if (sig == SIGUSR2)
            sig = SIGTERM;
        /* Only the flag: the run still needs its server after this (the stage rollback of the failed scripts and
         * the run record are written to it), and stops it in order at the end (nem_serve_end). A start that is
         * still waiting for readiness sees the flag and stops the server itself. */
        pending_sig = sig;
        clock_gettime(CLOCK_MONOTONIC, &first_at); /* async-signal-safe */
    } else if (is_duplicate(sig)) {
        /* the first one is being handled */
    } else {
        /* Second signal: the user insists. Kill the server hard and die by the default action. */
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        if (pid > 0 && kill(-pid, SIGKILL) != 0) /* the server leads its own process group: all of it */
            kill(pid, SIGKILL);
        sigemptyset(&dfl.sa_mask);
        sigaction(sig, &dfl, NULL);
        raise(sig);
    }
    errno = saved;
}

/* Runs on exit() from any path (error returns in later stages included): a server still registered here was
 * owned by this run and must not be left behind. Give it a short graceful window, then kill it. */
static void at_exit_stop_server(void)
{
    pid_t pid = (pid_t)server_pid;
    struct timespec tick = {0, 20 * 1000 * 1000};

    if (pid <= 0)
        return;
    server_pid = 0;
    /* The server leads its own process group (a wrapper script's children included): signal all of it. */
    if (kill(-pid, SIGTERM) != 0 && kill(pid, SIGTERM) != 0)
        return;
    for (int i = 0; i < 250; i++) {     /* 5 s */
        if ((waitpid(pid, NULL, WNOHANG) == pid || kill(pid, 0) != 0) && kill(-pid, 0) != 0)
            return;
        nanosleep(&tick, NULL);
    }
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

void nem_signals_install(void)
{
    struct sigaction sa = {.sa_handler = on_signal};

    if (installed)
        return;
    installed = 1;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof handled / sizeof handled[0]; i++)
        sigaddset(&sa.sa_mask, handled[i]);
    /* SA_RESTART keeps libraries that do not expect EINTR working; our own waits use short sleeps and check
     * nem_signal_pending() between them. */
    sa.sa_flags = SA_RESTART;
    for (size_t i = 0; i < sizeof handled / sizeof handled[0]; i++)
        sigaction(handled[i], &sa, NULL);
    atexit(at_exit_stop_server);
}

int nem_signal_pending(void)
{
    return (int)pending_sig;
}

void nem_cleanup_server_pid(pid_t pid)
{
    server_pid = (sig_atomic_t)pid;
}

pid_t nem_cleanup_server_get(void)
{
    return (pid_t)server_pid;
}

const char *nem_signal_name(int sig)
{
    static const struct {
        int sig;
        const char *name;
    } names[] = {
        {SIGHUP, "SIGHUP"},   {SIGINT, "SIGINT"},   {SIGQUIT, "SIGQUIT"}, {SIGILL, "SIGILL"},   {SIGTRAP, "SIGTRAP"},
        {SIGABRT, "SIGABRT"}, {SIGBUS, "SIGBUS"},   {SIGFPE, "SIGFPE"},   {SIGKILL, "SIGKILL"}, {SIGUSR1, "SIGUSR1"},
        {SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"}, {SIGPIPE, "SIGPIPE"}, {SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"},
        {SIGXCPU, "SIGXCPU"}, {SIGXFSZ, "SIGXFSZ"}, {SIGSYS, "SIGSYS"},
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (names[i].sig == sig)
            return names[i].name;
    return NULL;
}
