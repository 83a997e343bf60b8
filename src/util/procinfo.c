/* Naming a process so another can later tell whether it has ended (procinfo.h). */
#include "util/procinfo.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reads a small file whole (NUL-terminated, trailing newline removed); false with errno set when it cannot. */
static bool read_small(const char *path, char *buf, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    size_t len = 0;
    int e = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, n - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            e = errno;
        if (r <= 0)
            break;
        len += (size_t)r;
        if (len == n - 1)
            break;
    }
    close(fd);
    buf[len] = '\0';
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
        buf[--len] = '\0';
    if (!len)
        errno = e ? e : ENODATA;
    return len > 0;
}

typedef enum { STAT_RUNS, STAT_ENDED, STAT_UNKNOWN } proc_stat_t;

/* The process pid as /proc shows it: its start time (field 22 of /proc/PID/stat, after the command name in
 * parentheses, which may itself hold spaces and parentheses) and whether it has ended (no such process, or a
 * zombie: it ran its course and only waits to be reaped). */
static proc_stat_t read_stat(int64_t pid, int64_t *start_ticks)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%lld/stat", (long long)pid);
    *start_ticks = 0;
    if (!read_small(path, buf, sizeof buf))
        return errno == ENOENT || errno == ESRCH ? STAT_ENDED : STAT_UNKNOWN;
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ' || !p[2])
        return STAT_UNKNOWN;
    char state = p[2];
    p += 3; /* the space before field 4 */
    for (int field = 3; field < 22 && p; field++) { /* on to the start of field + 1 */
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    if (!p)
        return STAT_UNKNOWN;
    char *end;
    errno = 0;
    long long ticks = strtoll(p, &end, 10);
    if (errno || end == p || ticks <= 0)
        return STAT_UNKNOWN;
    *start_ticks = ticks;
    return state == 'Z' || state == 'X' || state == 'x' ? STAT_ENDED : STAT_RUNS;
}

/* The machine, boot and pid namespace this process sees; false when one cannot be read. */
static bool read_place(nem_proc_t *p)
{
    char ns[64];
    ssize_t n;
    bool ok = true;
    if (gethostname(p->host, sizeof p->host - 1) != 0)
        p->host[0] = '\0', ok = false;
    p->host[sizeof p->host - 1] = '\0';
    if (!read_small("/proc/sys/kernel/random/boot_id", p->boot_id, sizeof p->boot_id))
        p->boot_id[0] = '\0', ok = false;
    if ((n = readlink("/proc/self/ns/pid", ns, sizeof ns - 1)) > 0) {
        ns[n] = '\0';
        bson_strncpy(p->pid_ns, ns, sizeof p->pid_ns);
    } else {
        p->pid_ns[0] = '\0';
        ok = false;
    }
    return ok;
}

bool nem_proc_self(nem_proc_t *p, bool with_launcher)
{
    memset(p, 0, sizeof *p);
    bool ok = read_place(p);
    p->pid = (int64_t)getpid();
    if (read_stat(p->pid, &p->start_ticks) != STAT_RUNS)
        p->start_ticks = 0, ok = false;
    if (with_launcher) {
        int64_t ticks;
        pid_t parent = getppid();
        if (parent > 1 && read_stat((int64_t)parent, &ticks) == STAT_RUNS) {
            p->launcher_pid = (int64_t)parent;
            p->launcher_ticks = ticks;
        }
    }
    return ok;
}

/* One recorded process judged from here. */
static proc_stat_t judge(int64_t pid, int64_t recorded_ticks)
{
    int64_t ticks;
    proc_stat_t s = read_stat(pid, &ticks);
    if (s == STAT_RUNS && ticks != recorded_ticks)
        return STAT_ENDED; /* the pid was given to a later process */
    return s;
}

nem_proc_state_t nem_proc_state(const nem_proc_t *p)
{
    nem_proc_t here;
    memset(&here, 0, sizeof here);
    if (!p->host[0] || !p->boot_id[0] || !p->pid_ns[0] || p->pid <= 0 || p->start_ticks <= 0 || !read_place(&here))
        return NEM_PROC_ELSEWHERE;
    /* Another boot id under the same host name may be this machine rebooted, or another machine of that name:
     * only the heartbeat can tell those apart. */
    if (strcmp(here.host, p->host) != 0 || strcmp(here.boot_id, p->boot_id) != 0 ||
        strcmp(here.pid_ns, p->pid_ns) != 0)
        return NEM_PROC_ELSEWHERE;
    proc_stat_t s = judge(p->pid, p->start_ticks);
    if (s == STAT_ENDED && p->launcher_pid > 0)
        s = judge(p->launcher_pid, p->launcher_ticks);
    return s == STAT_RUNS ? NEM_PROC_ALIVE : s == STAT_ENDED ? NEM_PROC_GONE : NEM_PROC_ELSEWHERE;
}

void nem_proc_append(bson_t *doc, const char *key, const nem_proc_t *p)
{
    bson_t sub;
    BSON_APPEND_DOCUMENT_BEGIN(doc, key, &sub);
    BSON_APPEND_UTF8(&sub, "host", p->host);
    BSON_APPEND_UTF8(&sub, "boot_id", p->boot_id);
    BSON_APPEND_UTF8(&sub, "pid_ns", p->pid_ns);
    BSON_APPEND_INT64(&sub, "pid", p->pid);
    BSON_APPEND_INT64(&sub, "start_ticks", p->start_ticks);
    if (p->launcher_pid > 0) {
        BSON_APPEND_INT64(&sub, "launcher_pid", p->launcher_pid);
        BSON_APPEND_INT64(&sub, "launcher_start_ticks", p->launcher_ticks);
    }
    bson_append_document_end(doc, &sub);
}

static void get_str(bson_iter_t *it, const char *key, char *out, size_t n)
{
    bson_iter_t f = *it;
    out[0] = '\0';
    if (bson_iter_find(&f, key) && BSON_ITER_HOLDS_UTF8(&f))
        bson_strncpy(out, bson_iter_utf8(&f, NULL), n);
}

static int64_t get_int(bson_iter_t *it, const char *key)
{
    bson_iter_t f = *it;
    return bson_iter_find(&f, key) && BSON_ITER_HOLDS_NUMBER(&f) ? bson_iter_as_int64(&f) : 0;
}

bool nem_proc_from_bson(const bson_t *doc, const char *key, nem_proc_t *p)
{
    bson_iter_t it, sub;
    memset(p, 0, sizeof *p);
    if (!bson_iter_init(&it, doc) || !bson_iter_find_descendant(&it, key, &sub) ||
        !BSON_ITER_HOLDS_DOCUMENT(&sub) || !bson_iter_recurse(&sub, &it))
        return false;
    get_str(&it, "host", p->host, sizeof p->host);
    get_str(&it, "boot_id", p->boot_id, sizeof p->boot_id);
    get_str(&it, "pid_ns", p->pid_ns, sizeof p->pid_ns);
    p->pid = get_int(&it, "pid");
    p->start_ticks = get_int(&it, "start_ticks");
    p->launcher_pid = get_int(&it, "launcher_pid");
    p->launcher_ticks = get_int(&it, "launcher_start_ticks");
    return true;
}

nem_proc_state_t nem_proc_owner_state(const bson_t *run, nem_proc_t *owner)
{
    nem_proc_t p;
    if (!nem_proc_from_bson(run, NEM_RUN_OWNER_KEY, &p))
        memset(&p, 0, sizeof p);
    if (owner)
        *owner = p;
    return nem_proc_state(&p);
}
