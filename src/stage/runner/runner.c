/* Runner lifecycle: start, pump, timeout, kill, verdict. The kind-specific parts (argv, where items arrive) live
 * in runner-kinds.c; fork/exec in runner-spawn.c; parsing in runner-items.c and runner-log.c. */
#include "stage/runner/runner-private.h"
#include "util/clock.h"
#include "util/spawn.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log/log.h"

/* Per pump call and channel: enough to keep a fast script busy, small enough not to starve its neighbours. */
#define PUMP_BUDGET (4 * 1024 * 1024)
#define KILL_GRACE_MS 2000

nem_script_kind_t nem_script_kind(const char *path)
{
    size_t n = strlen(path);
    if (n > 3 && strcmp(path + n - 3, ".so") == 0)
        return NEM_SCRIPT_PLUGIN;
    if (n > 3 && strcmp(path + n - 3, ".py") == 0)
        return NEM_SCRIPT_PYTHON;
    return NEM_SCRIPT_EXEC;
}

static const nem_runner_kind_t *kind_of(nem_script_kind_t kind)
{
    switch (kind) {
    case NEM_SCRIPT_PLUGIN: return &nem_runner_kind_plugin;
    case NEM_SCRIPT_PYTHON: return &nem_runner_kind_python;
    default: return &nem_runner_kind_exec;
    }
}

const char *nem_script_kind_name(nem_script_kind_t kind)
{
    return kind_of(kind)->name;
}

nem_runner_t *nem_runner_start(const nem_script_spec_t *spec, bson_error_t *err)
{
    nem_runner_t *r = bson_malloc0(sizeof *r);
    nem_child_fds_t fds;
    r->kind = kind_of(nem_script_kind(spec->path));
    r->label = bson_strdup_printf("%s script #%zu '%s'", spec->stage ? spec->stage : "stage", spec->position,
                                  spec->path);
    r->log_prefix = bson_strdup_printf("%s #%zu (rank %d)", spec->path, spec->position, spec->rank);
    r->items.fd = r->logs[0].fd = r->logs[1].fd = -1;
    if (!nem_runner_spawn(r->kind, spec, &r->pid, &fds, err)) {
        bson_error_t why = *err;
        nem_runner_error(r, err, NEM_RUNNER_ESPAWN, "%s", why.message);
        r->reaped = true;
        nem_runner_destroy(r);
        return NULL;
    }
    r->items.fd = fds.items;
    r->items.fmt = r->kind->fmt;
    r->logs[r->n_logs++] = (nem_log_chan_t){.fd = fds.err, .is_stderr = true};
    if (fds.out >= 0)
        r->logs[r->n_logs++] = (nem_log_chan_t){.fd = fds.out};
    r->timeout_s = spec->timeout_s;
    if (spec->timeout_s > 0)
        r->deadline_us = nem_now_us() + (int64_t)spec->timeout_s * 1000000;
    return r;
}

size_t nem_runner_fds(const nem_runner_t *r, int *fds)
{
    size_t n = 0;
    if (r->items.fd >= 0)
        fds[n++] = r->items.fd;
    for (size_t i = 0; i < r->n_logs; i++)
        if (r->logs[i].fd >= 0)
            fds[n++] = r->logs[i].fd;
    return n;
}

/* pid 0 would mean our own process group: never signal before a child exists. */
static void kill_group(const nem_runner_t *r, int sig)
{
    if (r->pid > 0)
        kill(-r->pid, sig);
}

/* The hard stop: the guard SIGKILLs the script and everything it left, in its process group or out of it, and
 * ends (runner-spawn.c). SIGKILL to the group would take the guard first and leave what escaped the group to
 * init; it stays the fallback for a guard that does not end (kill_group). */
static void kill_tree(const nem_runner_t *r)
{
    if (r->pid > 0 && !r->reaped)
        kill(r->pid, NEM_GUARD_KILL);
}

static void close_channel(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void close_all(nem_runner_t *r)
{
    close_channel(&r->items.fd);
    for (size_t i = 0; i < r->n_logs; i++)
        close_channel(&r->logs[i].fd);
}

/* After bad output the script is stopped at once (no grace: its output is already rejected); finish reaps it. */
static bool fail_now(nem_runner_t *r, const bson_error_t *err)
{
    r->failed = true;
    r->fail_err = *err;
    kill_tree(r);
    close_all(r);
    return false;
}

/* final: the script is gone, so a last line without its newline is logged too. */
static void pump_logs(nem_runner_t *r, bool final)
{
    for (size_t i = 0; i < r->n_logs; i++) {
        nem_log_chan_t *ch = &r->logs[i];
        bool closed = false;
        if (ch->fd < 0)
            continue;
        if (!nem_rbuf_fill(&ch->in, ch->fd, PUMP_BUDGET, &closed))
            closed = true; /* a read error on a log pipe loses log lines, not the script */
        nem_log_lines(r, ch, closed || final);
        if (closed)
            close_channel(&ch->fd);
    }
}

static bool pump_items(nem_runner_t *r, nem_item_cb cb, void *ud, bson_error_t *err)
{
    bool closed = false;
    if (r->items.fd < 0)
        return true;
    if (!nem_rbuf_fill(&r->items.in, r->items.fd, PUMP_BUDGET, &closed))
        return nem_runner_error(r, err, NEM_RUNNER_EOUTPUT, "cannot read its output: %s", strerror(errno));
    if (!nem_items_parse(r, closed, cb, ud, err))
        return false;
    if (closed)
        close_channel(&r->items.fd);
    return true;
}

bool nem_runner_pump(nem_runner_t *r, nem_item_cb cb, void *ud, bool *eof, bson_error_t *err)
{
    *eof = true;
    if (r->failed) {
        *err = r->fail_err;
        return false;
    }
    pump_logs(r, false);
    if (!pump_items(r, cb, ud, err))
        return fail_now(r, err);
    int fds[3];
    *eof = nem_runner_fds(r, fds) == 0;
    return true;
}

int nem_runner_ms_left(const nem_runner_t *r)
{
    if (r->deadline_us == 0)
        return -1;
    int64_t left = r->deadline_us - nem_now_us();
    return left <= 0 ? 0 : (int)((left + 999) / 1000);
}

pid_t nem_runner_pid(const nem_runner_t *r)
{
    return r->pid;
}

static bool reap(nem_runner_t *r, bool block)
{
    if (!r->reaped)
        r->reaped = nem_spawn_reap(r->pid, block, &r->status);
    return r->reaped;
}

bool nem_runner_exited(nem_runner_t *r)
{
    return reap(r, false);
}

/* Waits up to ms for the child to exit; -1 = forever. */
static bool wait_exit(nem_runner_t *r, int ms)
{
    if (!r->reaped)
        r->reaped = nem_spawn_wait(r->pid, ms, &r->status);
    return r->reaped;
}

/* SIGKILL for what nem_runner_kill or nem_runner_stopped could not stop with the grace and the guard's kill. */
static void kill_last_resort(nem_runner_t *r)
{
    if (!reap(r, false)) {
        kill_group(r, SIGKILL);
        reap(r, true);
    }
}

void nem_runner_kill(nem_runner_t *r)
{
    if (!r->reaped) {
        kill_group(r, SIGTERM);
        if (!wait_exit(r, KILL_GRACE_MS)) {
            kill_tree(r);
            if (!wait_exit(r, KILL_GRACE_MS))
                kill_last_resort(r);
        }
    }
    kill_group(r, SIGKILL); /* whatever of its group outlived it */
}

void nem_runner_stop(nem_runner_t *r)
{
    if (r->stop_us)
        return;
    if (!reap(r, false) && !r->failed && r->deadline_us && nem_now_us() >= r->deadline_us)
        r->timed_out = true;
    r->stop_us = nem_now_us() + (int64_t)KILL_GRACE_MS * 1000;
    if (!r->reaped)
        kill_group(r, SIGTERM);
}

bool nem_runner_stopped(nem_runner_t *r)
{
    if (reap(r, false))
        return true;
    if (r->stop_us && !r->killed && nem_now_us() >= r->stop_us) {
        kill_tree(r);
        r->killed = true;
    } else if (r->killed && nem_now_us() >= r->stop_us + (int64_t)KILL_GRACE_MS * 1000) {
        kill_last_resort(r);
        return true;
    }
    return false;
}

static bool verdict(nem_runner_t *r, bson_error_t *err)
{
    const char *sep = r->last_err[0] ? ": " : "";
    char how[160];
    if (r->failed) {
        *err = r->fail_err;
        return false;
    }
    if (r->timed_out)
        return nem_runner_error(r, err, NEM_RUNNER_ETIMEOUT, "timed out after %d s and was killed", r->timeout_s);
    nem_spawn_describe(r->status, how, sizeof how);
    if (WIFSIGNALED(r->status))
        return nem_runner_error(r, err, NEM_RUNNER_ESIGNAL, "%s%s%s", how, sep, r->last_err);
    if (WIFEXITED(r->status) && WEXITSTATUS(r->status) != 0)
        return nem_runner_error(r, err, NEM_RUNNER_EEXIT, "%s%s%s", how, sep, r->last_err);
    /* Exit 0 is a success only when the output is known complete: a process that ended itself early (exit() or
     * _exit() in a plugin, os._exit() in a Python script) may have had items still buffered. */
    if (!r->ended && r->kind->requires_end)
        return nem_runner_error(r, err, NEM_RUNNER_EINCOMPLETE,
                                "exited with status 0 before its output was complete (%" PRIu64 " items received, "
                                "no end-of-output record): a script that ends its own process (exit(), _exit(), "
                                "os._exit()) loses what was still buffered; return from the entry point instead",
                                r->n_items);
    if (r->ended && (uint64_t)r->end_items != r->n_items)
        return nem_runner_error(r, err, NEM_RUNNER_EINCOMPLETE,
                                "its end-of-output record announced %" PRId64 " items but %" PRIu64 " arrived",
                                r->end_items, r->n_items);
    return true;
}

bool nem_runner_finish(nem_runner_t *r, bson_error_t *err)
{
    if (!r->reaped && !wait_exit(r, r->failed ? -1 : nem_runner_ms_left(r))) {
        r->timed_out = true;
        nem_runner_kill(r);
    } else {
        kill_group(r, SIGKILL); /* leftovers of its process group */
    }
    /* Whatever it wrote on stderr before dying explains the verdict: log it before deciding. */
    pump_logs(r, true);
    close_all(r);
    return verdict(r, err);
}

void nem_runner_destroy(nem_runner_t *r)
{
    if (!r)
        return;
    if (!r->reaped)
        nem_runner_kill(r);
    close_all(r);
    nem_items_free(&r->items);
    for (size_t i = 0; i < 2; i++)
        nem_rbuf_free(&r->logs[i].in);
    bson_free(r->label);
    bson_free(r->log_prefix);
    bson_free(r);
}
