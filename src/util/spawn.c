/* Starting, reaping and describing child processes (see spawn.h for the rules the child side follows). */
#define _GNU_SOURCE /* pipe2 */
#include "util/spawn.h"
#include "util/signals.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"

extern char **environ;

#define HIGH_FD (NEM_SPAWN_MAX_FD + 1) /* the child's sources live here and above: no dup2 can clobber one */

/* Everything the child needs, prepared before fork. */
typedef struct {
    int src[NEM_SPAWN_MAX_FD + 1]; /* per child fd: a high close-on-exec copy of its source, NEM_FD_INHERIT, or
                                    * -1: closed in the child */
    int report[2];                 /* exec-error pipe {parent's read end, child's high write end} */
    long max_fd;                   /* for closing descriptors where close_range is missing */
    pid_t parent;
    nem_strv_t env;
} plan_t;

static bool env_overridden(const char *entry, char *const *extra)
{
    size_t len = strcspn(entry, "=");
    for (size_t i = 0; extra && extra[i]; i++)
        if (strncmp(extra[i], entry, len) == 0 && extra[i][len] == '=')
            return true;
    return false;
}

void nem_spawn_environ(char *const *extra, nem_spawn_withhold_fn withhold, nem_strv_t *out)
{
    for (char **e = environ; e && *e; e++)
        if (!(withhold && withhold(*e)) && !env_overridden(*e, extra))
            nem_strv_push(out, *e);
    for (size_t i = 0; extra && extra[i]; i++)
        nem_strv_push(out, extra[i]);
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void plan_close(plan_t *p)
{
    for (int t = 0; t <= NEM_SPAWN_MAX_FD; t++)
        close_fd(&p->src[t]);
    close_fd(&p->report[0]);
    close_fd(&p->report[1]);
    nem_strv_free(&p->env);
}

/* A high close-on-exec copy of fd for child descriptor t: NEM_FD_NULL opens /dev/null, NEM_FD_INHERIT leaves t
 * as it is. */
static bool plan_fd(plan_t *p, int t, int fd)
{
    int raw = fd, e;

    close_fd(&p->src[t]);
    if (fd == NEM_FD_INHERIT) {
        p->src[t] = NEM_FD_INHERIT;
        return true;
    }
    if (fd == NEM_FD_NULL && (raw = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
        return false;
    p->src[t] = fcntl(raw, F_DUPFD_CLOEXEC, HIGH_FD);
    e = errno;
    if (raw != fd)
        close(raw);
    errno = e;
    return p->src[t] >= 0;
}

static bool plan_make(plan_t *p, const nem_spawn_t *sp, uint32_t domain, uint32_t code, bson_error_t *err)
{
    bool ok = plan_fd(p, 0, sp->in_fd) && plan_fd(p, 1, sp->out_fd) && plan_fd(p, 2, sp->out_fd) &&
              (sp->keep_fd < 0 || plan_fd(p, 3, sp->keep_fd));
    for (size_t i = 0; ok && i < sp->n_fds; i++) {
        int t = sp->fds[i].child_fd;
        if (t < 0 || t > NEM_SPAWN_MAX_FD) {
            bson_set_error(err, domain, code, "cannot give %s descriptor %d: the highest is %d", sp->argv[0], t,
                           NEM_SPAWN_MAX_FD);
            return false;
        }
        ok = plan_fd(p, t, sp->fds[i].fd);
    }
    if (!ok) {
        bson_set_error(err, domain, code, "cannot prepare the descriptors of %s: %s", sp->argv[0], strerror(errno));
        return false;
    }
    if (pipe2(p->report, O_CLOEXEC) == 0) {
        int high = fcntl(p->report[1], F_DUPFD_CLOEXEC, HIGH_FD); /* above every number the child moves to */
        close(p->report[1]);
        p->report[1] = high;
    }
    if (p->report[0] < 0 || p->report[1] < 0) {
        bson_set_error(err, domain, code, "cannot create a pipe: %s", strerror(errno));
        return false;
    }
    p->max_fd = sysconf(_SC_OPEN_MAX);
    if (p->max_fd < 0 || p->max_fd > 65536)
        p->max_fd = 65536;
    p->parent = getpid();
    nem_spawn_environ(sp->env_extra, sp->withhold, &p->env);
    return true;
}

/* Child side from here to exec: async-signal-safe calls only. */

static void child_close_range(unsigned lo, unsigned hi, long max_fd)
{
    if (lo > hi)
        return;
#ifdef SYS_close_range
    if (syscall(SYS_close_range, lo, hi, 0) == 0)
        return;
#endif
    for (long fd = lo; fd < max_fd && fd <= (long)hi; fd++)
        close((int)fd);
}

static void child_default_signals(void)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &dfl, NULL); /* fails harmlessly for the RT signals the C library keeps */
}

/* The mapped descriptors in place (dup2 clears close-on-exec on the copy), everything else but the report pipe
 * closed: MPI keeps non-CLOEXEC descriptors (Open MPI's singleton-died pipe, for one), and a child holding them
 * keeps mpirun or orted waiting for it. */
static bool child_fds(const plan_t *p)
{
    for (int t = 0; t <= NEM_SPAWN_MAX_FD; t++) {
        if (p->src[t] >= 0 && dup2(p->src[t], t) < 0)
            return false;
        if (p->src[t] < 0 && p->src[t] != NEM_FD_INHERIT)
            close(t);
    }
    child_close_range(HIGH_FD, (unsigned)p->report[1] - 1, p->max_fd);
    child_close_range((unsigned)p->report[1] + 1, ~0U, p->max_fd);
    return true;
}

static _Noreturn void child_run(const nem_spawn_t *sp, const plan_t *p)
{
    sigset_t none;
    int e;

    if ((sp->new_session && setsid() < 0) || (sp->new_group && setpgid(0, 0) != 0))
        goto fail;
    child_default_signals(); /* every signal is still blocked: none can arrive before its disposition is reset */
    if (sp->private_umask)
        umask(077);
    if (sp->death_signal) {
        if (prctl(PR_SET_PDEATHSIG, sp->death_signal) != 0)
            goto fail;
        if (getppid() != p->parent) /* the parent died before prctl took effect */
            _exit(127);
    }
    if (!child_fds(p))
        goto fail;
    if (sp->guard) {
        pid_t guard = getpid(), program;
#if defined(__linux__) && defined(PR_SET_CHILD_SUBREAPER)
        /* Before the fork: an orphan of the program's that ends up anywhere but here has escaped the guard. A
         * kernel older than 3.4 refuses it; the guard then still has the program's process group. */
        if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
            /* nothing to undo */
        }
#endif
        program = fork();
        if (program < 0)
            goto fail;
        if (program > 0) {
            /* The guard holds none of the program's descriptors: the report's EOF then means the program's exec
             * succeeded, and the pipes close when the program (and whatever it left) closes them. */
            for (int t = 0; t <= NEM_SPAWN_MAX_FD; t++)
                close(t);
            close(p->report[1]);
            sp->guard(program, p->parent);
            _exit(127);
        }
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
            goto fail;
        if (getppid() != guard)
            _exit(127);
    }
    if (sp->ignore_usr_signals) {
        struct sigaction ign;
        memset(&ign, 0, sizeof ign);
        ign.sa_handler = SIG_IGN;
        sigemptyset(&ign.sa_mask);
        sigaction(SIGUSR1, &ign, NULL);
        sigaction(SIGUSR2, &ign, NULL);
    }
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(sp->argv[0], sp->argv, p->env.v);
fail:
    e = errno;
    if (write(p->report[1], &e, sizeof e) < 0) {
        /* nothing left to report it with */
    }
    _exit(127);
}

pid_t nem_spawn(const nem_spawn_t *sp, uint32_t domain, uint32_t code, bson_error_t *err)
{
    plan_t p = {.report = {-1, -1}};
    sigset_t all, old;
    int child_errno = 0, fork_errno;
    ssize_t got;
    pid_t pid;

    for (int t = 0; t <= NEM_SPAWN_MAX_FD; t++)
        p.src[t] = -1;
    if (!plan_make(&p, sp, domain, code, err)) {
        plan_close(&p);
        return -1;
    }
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid = fork();
    if (pid == 0)
        child_run(sp, &p);
    fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid > 0 && sp->new_group)
        setpgid(pid, pid); /* fails harmlessly once the child has exec'd: it did the same itself */
    close_fd(&p.report[1]);
    if (pid < 0) {
        bson_set_error(err, domain, code, "cannot fork for %s: %s", sp->argv[0], strerror(fork_errno));
        plan_close(&p);
        return -1;
    }
    do
        got = read(p.report[0], &child_errno, sizeof child_errno);
    while (got < 0 && errno == EINTR);
    plan_close(&p);
    if (got == (ssize_t)sizeof child_errno) {
        nem_spawn_reap(pid, true, NULL);
        bson_set_error(err, domain, code, "cannot execute %s: %s", sp->argv[0], strerror(child_errno));
        return -1;
    }
    return pid;
}

bool nem_spawn_reap(pid_t pid, bool block, int *status)
{
    int st = 0;
    pid_t got;
    do
        got = waitpid(pid, &st, block ? 0 : WNOHANG);
    while (got < 0 && errno == EINTR);
    if (got == pid && status)
        *status = st;
    return got == pid || (got < 0 && errno == ECHILD);
}

/* The sweep (a guard's, possibly in a signal handler): async-signal-safe calls only from here to
 * nem_spawn_sweep. */

/* Decimal digits of v after dst[at]; returns the new end. */
static size_t put_decimal(char *dst, size_t at, long v)
{
    char digits[24];
    size_t n = 0;
    do
        digits[n++] = (char)('0' + v % 10);
    while ((v /= 10) > 0);
    while (n > 0)
        dst[at++] = digits[--n];
    dst[at] = 0;
    return at;
}

static size_t put_text(char *dst, size_t at, const char *text)
{
    while (*text)
        dst[at++] = *text++;
    dst[at] = 0;
    return at;
}

/* The pid in a /proc entry's name, or 0 when the name is not a pid. */
static pid_t name_pid(const char *name)
{
    long v = 0;
    if (!*name)
        return 0;
    for (; *name; name++) {
        if (*name < '0' || *name > '9' || v > 100000000L)
            return 0;
        v = v * 10 + (*name - '0');
    }
    return (pid_t)v;
}

/* The children of this (single-threaded) process from /proc/self/task/TID/children (a kernel with
 * CONFIG_PROC_CHILDREN): -1 when there is no such file. */
static int signal_listed_children(int sig)
{
    char path[64], buf[512];
    size_t at = put_text(path, 0, "/proc/self/task/");
    long cur = -1;
    int fd, n = 0;
    ssize_t got;

    at = put_decimal(path, at, (long)getpid());
    put_text(path, at, "/children");
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return -1;
    for (;;) {
        got = read(fd, buf, sizeof buf);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        for (ssize_t i = 0; i < got; i++) { /* a pid may continue in the next read */
            if (buf[i] >= '0' && buf[i] <= '9') {
                cur = (cur < 0 ? 0 : cur * 10) + (buf[i] - '0');
            } else {
                if (cur > 0)
                    n += kill((pid_t)cur, sig) == 0;
                cur = -1;
            }
        }
    }
    if (cur > 0) /* a last pid without its separator */
        n += kill((pid_t)cur, sig) == 0;
    close(fd);
    return n;
}

/* The parent pid in /proc/PID/stat ("pid (comm) state ppid ..."; comm may hold spaces and parentheses, so the
 * last ')' ends it), or 0. */
static pid_t stat_ppid(int proc_fd, const char *name)
{
    char path[48], buf[512], *p = NULL;
    long v = 0;
    ssize_t got;
    int fd;

    put_text(path, put_text(path, 0, name), "/stat");
    if ((fd = openat(proc_fd, path, O_RDONLY | O_CLOEXEC)) < 0)
        return 0;
    do
        got = read(fd, buf, sizeof buf - 1);
    while (got < 0 && errno == EINTR);
    close(fd);
    if (got <= 0)
        return 0;
    buf[got] = 0;
    for (ssize_t i = 0; i < got; i++)
        if (buf[i] == ')')
            p = buf + i;
    if (!p || p[1] != ' ' || !p[2] || p[3] != ' ')
        return 0;
    for (p += 4; *p >= '0' && *p <= '9'; p++)
        v = v * 10 + (*p - '0');
    return (pid_t)v;
}

/* Every process of /proc whose parent is this one (getdents64 directly: opendir allocates). */
static int signal_scanned_children(int sig)
{
    struct dirent_raw {
        uint64_t d_ino;
        int64_t d_off;
        unsigned short d_reclen;
        unsigned char d_type;
        char d_name[];
    };
    union {
        struct dirent_raw first;
        char bytes[8192];
    } buf;
    pid_t me = getpid();
    int dfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC), n = 0;
    long got;

    if (dfd < 0)
        return -1;
    while ((got = syscall(SYS_getdents64, dfd, buf.bytes, sizeof buf.bytes)) > 0) {
        for (long off = 0; off < got;) {
            struct dirent_raw *d = (struct dirent_raw *)(void *)(buf.bytes + off);
            pid_t pid = name_pid(d->d_name);
            off += d->d_reclen;
            if (pid > 0 && pid != me && stat_ppid(dfd, d->d_name) == me)
                n += kill(pid, sig) == 0;
        }
    }
    close(dfd);
    return n;
}

int nem_spawn_signal_children(int sig)
{
    int n = signal_listed_children(sig);
    return n >= 0 ? n : signal_scanned_children(sig);
}

void nem_spawn_sweep(void)
{
    int e = errno, unseen = 0;
    struct timespec tick = {0, 1000000}; /* 1 ms */

    for (;;) {
        pid_t got;
        int n;
        do
            got = waitpid(-1, NULL, WNOHANG);
        while (got > 0 || (got < 0 && errno == EINTR));
        if (got < 0) /* ECHILD: nothing left */
            break;
        /* Live children: SIGKILL them all, then wait for one; its own children (already orphans of a killed
         * parent, or about to be) come back here on the next pass. */
        n = nem_spawn_signal_children(SIGKILL);
        if (n < 0)
            break; /* cannot list them: leave them rather than wait forever */
        if (n == 0) {
            /* one being handed over right now is not listed yet; one that never shows cannot be ended */
            if (++unseen > 1000)
                break;
            nanosleep(&tick, NULL);
            continue;
        }
        unseen = 0;
        do
            got = waitpid(-1, NULL, 0);
        while (got < 0 && errno == EINTR);
        if (got < 0)
            break;
    }
    errno = e;
}

bool nem_spawn_wait(pid_t pid, int timeout_ms, int *status)
{
    int64_t deadline = nem_now_ms() + timeout_ms;
    int step = 1;

    if (timeout_ms < 0)
        return nem_spawn_reap(pid, true, status);
    for (;;) {
        if (nem_spawn_reap(pid, false, status))
            return true;
        if (nem_now_ms() >= deadline)
            return false;
        /* Back off from 1 ms to 20 ms: most children end within a few ms of a SIGTERM. */
        nem_sleep_ms(step);
        step = step < 20 ? step * 2 : 20;
    }
}

void nem_spawn_describe(int status, char *buf, size_t len)
{
    if (WIFEXITED(status)) {
        bson_snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char *name = nem_signal_name(sig), *core = WCOREDUMP(status) ? ", core dumped" : "";
        if (name)
            bson_snprintf(buf, len, "killed by %s (signal %d, %s)%s", name, sig, strsignal(sig), core);
        else
            bson_snprintf(buf, len, "killed by signal %d (%s)%s", sig, strsignal(sig), core);
    } else {
        bson_snprintf(buf, len, "ended with wait status %d", status);
    }
}
