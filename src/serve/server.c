/* Launch, readiness and stop of one server process. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <mongoc/mongoc.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/signals.h"
#include "log/log.h"
#include "serve/proc.h"
#include "util/clock.h"
#include "serve/server.h"

#define TAIL_LINES 10
#define TAIL_LINE_MAX 200 /* bytes of one quoted log line */

static void remove_pidfile(const nem_server_spec_t *spec);
static void unlink_pidfile(const nem_server_spec_t *spec);

static char *pidfile_path(const nem_server_spec_t *spec)
{
    return bson_strdup_printf("%s/" NEM_PIDFILE_NAME, spec->db_path);
}

static int64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : 0;
}

/* Something already answering on the address would fool the ping into "ready": refuse before starting. */
static bool port_in_use(const char *ip, int port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *res = NULL;
    char service[16];
    bool busy = false;

    bson_snprintf(service, sizeof service, "%d", port);
    if (getaddrinfo(ip, service, &hints, &res) != 0)
        return false;
    for (struct addrinfo *ai = res; ai && !busy; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        busy = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
        close(fd);
        /* No listener, but the port may still be held, for example as the local port of a connection: a bind
         * like the server's (SO_REUSEADDR, as servers set it) tells. */
        if (!busy && (fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol)) >= 0) {
            int one = 1;
            (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            busy = bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno == EADDRINUSE;
            close(fd);
        }
    }
    freeaddrinfo(res);
    return busy;
}

static long read_pid(int fd)
{
    char buf[64] = {0};
    ssize_t got = pread(fd, buf, sizeof buf - 1, 0);
    return got > 0 ? strtol(buf, NULL, 10) : 0;
}

/* True while path still names the file open on fd (a pid file is unlinked only under its lock). */
static bool still_linked(int fd, const char *path)
{
    struct stat a, b;
    return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Opens and locks the pid file; refuses when a live server holds it. */
static int lock_pidfile(const nem_server_spec_t *spec, bson_error_t *err)
{
    char *path = pidfile_path(spec);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

    if (fd < 0) {
        bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_ESYSTEM, "cannot write the pid file %s: %s", path, strerror(errno));
        goto out;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_EBUSY, "a server is already running on db path %s (pid %ld, see %s): stop it with "
                       "--db-stop or choose another --db-path", spec->db_path, read_pid(fd), path);
        close(fd);
        fd = -1;
    } else if (!still_linked(fd, path)) {
        /* Another run removed it between our open and our lock: lock the file that is there now. */
        close(fd);
        bson_free(path);
        return lock_pidfile(spec, err);
    }
out:
    bson_free(path);
    return fd;
}

static void write_pidfile(int fd, const nem_server_t *srv)
{
    char buf[512];
    int len = bson_snprintf(buf, sizeof buf, "%ld\nengine=%s\nconnect=%s\nport=%d\n", (long)srv->pid,
                            srv->engine->name, srv->spec->connect_ip, srv->spec->port);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)len, 0) != len)
        NEM_WARN("cannot write the pid file in %s: %s", srv->spec->db_path, strerror(errno));
}

static int open_log(const nem_server_t *srv, bson_error_t *err)
{
    int fd = open(srv->spec->log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_ESYSTEM, "cannot open the server log %s: %s", srv->spec->log_file, strerror(errno));
    return fd;
}

/* Blocks the stop signals across fork + registration, so no signal can land between them and leave the new
 * server unknown to the handler. */
static pid_t spawn_registered(const nem_spawn_t *sp, bson_error_t *err)
{
    sigset_t block, old;
    pid_t pid;

    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigprocmask(SIG_BLOCK, &block, &old);
    pid = nem_proc_spawn(sp, err);
    if (pid > 0)
        nem_cleanup_server_pid(pid);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return pid;
}

bool nem_server_launch(nem_server_t *srv, bool die_with_parent, bson_error_t *err)
{
    nem_strv_t argv = {0}, env = {0};
    int lock_fd = -1, log_fd = -1;
    const char *listen = srv->phase == NEM_PHASE_INIT ? "127.0.0.1" : srv->spec->connect_ip;
    bool ok = false;

    /* The db path first: a second start on it must say so, not that the port is taken. */
    if ((lock_fd = lock_pidfile(srv->spec, err)) < 0)
        goto fail;
    if (port_in_use(listen, srv->spec->port)) {
        bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_EBUSY, "port %d on %s is already in use by another process: choose another "
                       "--db-port", srv->spec->port, listen);
        goto fail;
    }
    if ((srv->engine->prepare && !srv->engine->prepare(srv->spec, srv->phase, err)) ||
        !srv->engine->build_argv(srv->spec, srv->phase, &argv, err) || (log_fd = open_log(srv, err)) < 0)
        goto fail;
    srv->engine->build_env(srv->spec, srv->phase, &env);
    srv->log_offset = file_size(srv->spec->log_file);
    {
        nem_spawn_t sp = {.argv = argv.v, .env_extra = env.v, .out_fd = log_fd, .in_fd = -1, .keep_fd = lock_fd,
                          .new_session = true, .private_umask = true, .death_signal = die_with_parent ? SIGTERM : 0};
        srv->started_ms = nem_now_ms();
        srv->pid = spawn_registered(&sp, err);
    }
    if (srv->pid <= 0) {
        srv->pid = 0;
        goto fail;
    }
    srv->is_child = true;
    write_pidfile(lock_fd, srv);
    {
        /* what it listens on (a wildcard included), not where nemesyst reaches it */
        bson_string_t *on = bson_string_new("");
        for (size_t i = 0; srv->phase != NEM_PHASE_INIT && i < srv->spec->n_bind_ip; i++)
            bson_string_append_printf(on, "%s%s", i ? "," : "", srv->spec->bind_ip[i]);
        NEM_INFO("%s %s: started pid %d listening on %s port %d%s, db path %s, log %s", srv->engine->name,
                 srv->phase == NEM_PHASE_INIT ? "init" : "start", (int)srv->pid, on->len ? on->str : listen,
                 srv->spec->port, srv->phase == NEM_PHASE_INIT || !srv->spec->tls ? "" : srv->spec->tls_ca_file
                 ? " (TLS only, client certificates required)" : " (TLS only)", srv->spec->db_path,
                 srv->spec->log_file);
        bson_string_free(on, true);
    }
    ok = true;
fail:
    /* The server holds its own copy of the locked descriptor; ours goes, with the file when nothing started. The
     * lock is ours then (a child that failed to exec has exited), so the file goes while we still hold it. */
    if (lock_fd >= 0 && !ok)
        unlink_pidfile(srv->spec);
    if (lock_fd >= 0)
        close(lock_fd);
    if (log_fd >= 0)
        close(log_fd);
    nem_strv_free(&argv);
    nem_strv_free(&env);
    return ok;
}

char *nem_serve_log_tail(const char *path, int64_t offset, int n, size_t max_bytes, const char *secret)
{
    FILE *f = fopen(path, "r");
    bson_string_t *out = bson_string_new(NULL);
    char *lines[TAIL_LINES * 4] = {0}, buf[1024];
    int count = 0, cap = n < TAIL_LINES * 4 ? n : TAIL_LINES * 4, first;
    size_t total = 0;

    if (f && fseeko(f, (off_t)offset, SEEK_SET) == 0) {
        while (fgets(buf, sizeof buf, f)) {
            bool whole = strchr(buf, '\n') != NULL || feof(f);
            buf[strcspn(buf, "\n")] = '\0';
            if (!whole) /* the rest of an over-long line */
                while (fgets(buf + 512, (int)sizeof buf - 512, f) && !strchr(buf + 512, '\n'))
                    ;
            /* A server should never log the password; mask it anyway, since this text reaches our log (before
             * the cut, so that no part of it survives). */
            char *hit;
            while (secret && *secret && (hit = strstr(buf, secret)))
                memset(hit, '*', strlen(secret));
            if (strlen(buf) > TAIL_LINE_MAX)
                memcpy(buf + TAIL_LINE_MAX - 3, "...", 4);
            bson_free(lines[count % cap]);
            lines[count++ % cap] = bson_strdup(buf);
        }
    }
    /* the newest lines that fit: the last line is the one that says why a server stopped */
    for (first = count; first > 0 && first > count - cap; first--) {
        size_t len = strlen(lines[(first - 1) % cap]) + 7;
        if (total + len > max_bytes && first < count)
            break;
        total += len;
    }
    for (int i = first; i < count; i++)
        bson_string_append_printf(out, "\n    | %s", lines[i % cap]);
    for (int i = 0; i < cap; i++)
        bson_free(lines[i]);
    if (count == 0)
        bson_string_append_printf(out, "\n    | (%s is empty)", path);
    if (f)
        fclose(f);
    return bson_string_free(out, false);
}

static void fail_with_tail(nem_server_t *srv, bson_error_t *err, const char *what)
{
    char msg[sizeof err->message];
    int head = bson_snprintf(msg, sizeof msg, "%s %s; last lines of %s:", srv->engine->name, what, srv->spec->log_file);
    char *tail = nem_serve_log_tail(srv->spec->log_file, srv->log_offset, TAIL_LINES,
                                    sizeof msg - 1 - (size_t)(head > 0 ? head : 0), srv->spec->password);

    bson_snprintf(msg, sizeof msg, "%s %s; last lines of %s:%s", srv->engine->name, what, srv->spec->log_file, tail);
    bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_EFAILED, "%s", msg);
    bson_free(tail);
}

/* The server leads a process group of its own (its own session: nem_server_launch), and is signalled as a group:
 * a server started through a wrapper script (a cluster module's, which runs the real server as its child, in the
 * background or not) is the wrapper and its children together. The pid alone when no group has its number (a pid
 * file written otherwise), unless the pid was already reaped (then the number may be another process's by now). */
static void signal_server(pid_t pid, int sig, bool reaped)
{
    if (pid > 0 && kill(-pid, sig) != 0 && errno == ESRCH && !reaped)
        kill(pid, sig);
}

/* True while a live process (not a zombie waiting for its parent) is in process group pgid. */
static bool group_alive(pid_t pgid)
{
    DIR *d;
    struct dirent *e;
    bool alive = false;

    if (pgid <= 0 || (kill(-pgid, 0) != 0 && errno == ESRCH))
        return false;
    if (!(d = opendir("/proc")))
        return true;
    while (!alive && (e = readdir(d))) {
        char path[300], buf[512], *paren, state;
        long ppid, pgrp;
        FILE *f;
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        bson_snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        if (!(f = fopen(path, "r")))
            continue;
        /* "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so the last ')' ends it */
        if (fgets(buf, sizeof buf, f) && (paren = strrchr(buf, ')')) &&
            sscanf(paren + 1, " %c %ld %ld", &state, &ppid, &pgrp) == 3)
            alive = pgrp == (long)pgid && state != 'Z' && state != 'X';
        fclose(f);
    }
    closedir(d);
    return alive;
}

/* Waits until deadline (nem_now_ms) for process group pgid to have no live process. */
static bool wait_group(pid_t pgid, int64_t deadline)
{
    int step = 1;
    while (group_alive(pgid)) {
        if (nem_now_ms() >= deadline)
            return false;
        nem_sleep_ms(step);
        step = step < 20 ? step * 2 : 20;
    }
    return true;
}

/* What a server that ended by itself left in its group (a wrapper's background server): stopped as the server
 * would be, SIGTERM, --db-stop-timeout, then SIGKILL. */
static void stop_leftovers(const nem_server_t *srv, pid_t pgid)
{
    if (!group_alive(pgid))
        return;
    NEM_WARN("%s (pid %d) ended but left processes in its process group: stopping them", srv->engine->name,
             (int)pgid);
    kill(-pgid, SIGTERM);
    if (!wait_group(pgid, nem_now_ms() + srv->spec->stop_timeout_ms)) {
        kill(-pgid, SIGKILL);
        if (!wait_group(pgid, nem_now_ms() + 10000))
            NEM_WARN("processes of %s's process group %d survived SIGKILL", srv->engine->name, (int)pgid);
    }
}

static bool child_gone(nem_server_t *srv, bson_error_t *err)
{
    int status = 0;
    char how[128], what[192];

    if (!nem_spawn_reap(srv->pid, false, &status))
        return false;
    nem_cleanup_server_pid(0);
    stop_leftovers(srv, srv->pid); /* the start failed: nothing of it stays, the pid file's lock included */
    srv->pid = 0;
    /* nem_server_stop has nothing left to stop, so the pid file goes here (its lock died with the server and
     * what it left in its group). */
    remove_pidfile(srv->spec);
    nem_spawn_describe(status, how, sizeof how);
    bson_snprintf(what, sizeof what, "%s before it answered ping on %s:%d", how, srv->spec->connect_ip,
                  srv->spec->port);
    fail_with_tail(srv, err, what);
    return true;
}

bool nem_server_wait_ready(nem_server_t *srv, bson_error_t *err)
{
    int64_t deadline = srv->started_ms + srv->spec->start_timeout_ms;
    int pause = 2;
    bson_error_t why = {0};

    for (;;) {
        int64_t left = deadline - nem_now_ms();
        if (nem_signal_pending()) {
            bson_set_error(err, NEM_ERROR_SIGNAL, (uint32_t)nem_signal_pending(), "interrupted by signal %d "
                           "while waiting for %s to be ready", nem_signal_pending(), srv->engine->name);
            return false;
        }
        if (child_gone(srv, err))
            return false;
        if (left <= 0)
            break;
        if (nem_serve_ping(srv->spec, false, (int)(left < 1000 ? left : 1000), &why) && !child_gone(srv, err)) {
            srv->ready_ms = nem_now_ms();
            NEM_INFO("%s ready on %s:%d after %.3f s", srv->engine->name, srv->spec->connect_ip, srv->spec->port,
                     (double)(srv->ready_ms - srv->started_ms) / 1000.0);
            return true;
        }
        if (!srv->pid)
            return false;
        /* Short pauses first: a small server is up in tens of milliseconds. */
        nem_sleep_ms(pause);
        pause = pause < 50 ? pause * 2 : 50;
    }
    {
        char what[256];
        bson_snprintf(what, sizeof what, "did not answer ping on %s:%d within --db-start-timeout %d s (last: %s)",
                      srv->spec->connect_ip, srv->spec->port, srv->spec->start_timeout_ms / 1000, why.message);
        fail_with_tail(srv, err, what);
    }
    return false;
}

/* The engine's shutdown command when it has one (mongod), else SIGTERM to the server's process group. A command
 * that closes the connection under us was accepted. True when the group was signalled. */
static bool request_stop(nem_server_t *srv)
{
    bson_t cmd = BSON_INITIALIZER;
    bson_error_t e = {0};

    srv->engine->stop_command(srv->spec, &cmd);
    if (!bson_empty(&cmd)) {
        bool ok = nem_serve_command(srv->spec, srv->phase == NEM_PHASE_START, "admin", &cmd, 5000, NULL, &e);
        bson_destroy(&cmd);
        if (ok || e.domain == MONGOC_ERROR_STREAM)
            return false;
        NEM_WARN("%s did not take the shutdown command (%s); sending SIGTERM to pid %d", srv->engine->name,
                 e.message, (int)srv->pid);
    }
    bson_destroy(&cmd);
    signal_server(srv->pid, SIGTERM, false);
    return true;
}

/* Gone or a zombie (exited, waiting for its parent to reap it). */
static bool pid_dead(pid_t pid)
{
    char path[64], buf[256];
    FILE *f;
    bool zombie = false;

    if (kill(pid, 0) != 0)
        return true;
    bson_snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if ((f = fopen(path, "r"))) {
        char *paren;
        if (fgets(buf, sizeof buf, f) && (paren = strrchr(buf, ')')))
            zombie = paren[1] == ' ' && paren[2] == 'Z';
        fclose(f);
    }
    return zombie;
}

/* The server itself. A server this process did not start cannot be waited for; its death shows as the pid-file
 * lock coming free. */
static bool wait_server(nem_server_t *srv, int64_t deadline)
{
    char *path;
    int fd;
    bool gone = false;

    if (srv->is_child) {
        int64_t left = deadline - nem_now_ms();
        return nem_spawn_wait(srv->pid, left > 0 ? (int)left : 0, NULL);
    }
    path = pidfile_path(srv->spec);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    bson_free(path);
    if (fd < 0)
        return kill(srv->pid, 0) != 0;
    while (!(gone = flock(fd, LOCK_EX | LOCK_NB) == 0) && nem_now_ms() < deadline)
        nem_sleep_ms(10);
    close(fd);
    /* The lock frees as the process exits; give init a moment to reap it so "stopped" means no process. */
    while (gone && !pid_dead(srv->pid) && nem_now_ms() < deadline + 1000)
        nem_sleep_ms(5);
    return gone;
}

/* The server and then the rest of its process group, within timeout_ms. *reaped: the server itself is gone.
 * term_rest: the group was not signalled (a shutdown command stopped the server), so what is left of it gets
 * SIGTERM once the server has ended. */
static bool wait_gone(nem_server_t *srv, int timeout_ms, bool term_rest, bool *reaped)
{
    int64_t deadline = nem_now_ms() + timeout_ms;

    if (!*reaped && !(*reaped = wait_server(srv, deadline)))
        return false;
    if (term_rest && group_alive(srv->pid))
        kill(-srv->pid, SIGTERM);
    return wait_group(srv->pid, deadline);
}

static void unlink_pidfile(const nem_server_spec_t *spec)
{
    char *path = pidfile_path(spec);
    unlink(path);
    bson_free(path);
}

/* Removes the pid file only while holding its lock (taken here: it must be free), and only when the locked file is
 * still the one at the path: a newer server may already own the path. */
static void remove_pidfile(const nem_server_spec_t *spec)
{
    char *path = pidfile_path(spec);
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0 && still_linked(fd, path))
        unlink(path);
    if (fd >= 0)
        close(fd);
    bson_free(path);
}

bool nem_server_stop(nem_server_t *srv, bson_error_t *err)
{
    bool ok = true, reaped = false, signalled;

    if (srv->pid <= 0)
        return true;
    signalled = request_stop(srv);
    if (!wait_gone(srv, srv->spec->stop_timeout_ms, !signalled, &reaped)) {
        NEM_WARN("%s (pid %d) did not stop within --db-stop-timeout %d s: killing it", srv->engine->name,
                 (int)srv->pid, srv->spec->stop_timeout_ms / 1000);
        signal_server(srv->pid, SIGKILL, reaped);
        if (!wait_gone(srv, 10000, false, &reaped)) {
            bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_EFAILED, "%s (pid %d) survived SIGKILL", srv->engine->name, (int)srv->pid);
            ok = false;
        }
    }
    if (nem_cleanup_server_get() == srv->pid)
        nem_cleanup_server_pid(0);
    if (ok) {
        NEM_INFO("%s (pid %d) stopped", srv->engine->name, (int)srv->pid);
        remove_pidfile(srv->spec);
        srv->pid = 0;
    }
    return ok;
}

/* Reads "key=value" lines after the pid. */
static void parse_pidfile(nem_server_t *srv, const char *text)
{
    char *copy = bson_strdup(text), *save = NULL;

    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "engine=", 7) == 0 && nem_engine_by_name(line + 7))
            srv->engine = nem_engine_by_name(line + 7);
        else if (strncmp(line, "connect=", 8) == 0) {
            bson_free(srv->spec->connect_ip);
            srv->spec->connect_ip = bson_strdup(line + 8);
        } else if (strncmp(line, "port=", 5) == 0)
            srv->spec->port = atoi(line + 5);
    }
    bson_free(copy);
}

bool nem_server_attach(nem_server_t *srv, bool *running, bson_error_t *err)
{
    char *path = pidfile_path(srv->spec), text[1024] = {0};
    int fd = open(path, O_RDWR | O_CLOEXEC);
    ssize_t got;

    *running = false;
    if (fd < 0) {
        bool ok = errno == ENOENT;
        if (!ok)
            bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_ESYSTEM, "cannot read the pid file %s: %s", path, strerror(errno));
        bson_free(path);
        return ok;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
        /* Nobody holds the lock: the server that wrote it is gone. */
        NEM_WARN("removing stale pid file %s (its server is no longer running)", path);
        unlink(path);
    } else if ((got = pread(fd, text, sizeof text - 1, 0)) > 0 && (srv->pid = (pid_t)atol(text)) > 0) {
        parse_pidfile(srv, text);
        srv->is_child = false;
        srv->phase = NEM_PHASE_START;
        *running = true;
    }
    close(fd);
    bson_free(path);
    return true;
}
