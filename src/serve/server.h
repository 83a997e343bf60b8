/* One database server process: launch it for a phase, wait until it answers ping, stop it. Private to src/serve.
 * The pid file DB_PATH/nemesyst.pid is also the lock that keeps a second server off the same db path: the server
 * inherits the locked descriptor, so the lock lives exactly as long as the server does. */
#ifndef NEM_SERVE_SERVER_H
#define NEM_SERVE_SERVER_H

#include <sys/types.h>

#include "serve/engine.h"

#define NEM_PIDFILE_NAME "nemesyst.pid"

/* A wait interrupted by SIGINT/SIGTERM/SIGHUP fails with NEM_ERROR_SIGNAL (util/errors.h): the code is the signal. */

typedef struct {
    const nem_engine_t *engine;
    nem_server_spec_t *spec;  /* borrowed */
    nem_phase_t phase;
    pid_t pid;                /* 0 = none */
    bool is_child;            /* started by this process: waitpid applies */
    int64_t log_offset;       /* log size before this launch: error tails quote only this run's lines */
    int64_t started_ms, ready_ms;
} nem_server_t;

/* Starts the engine for phase. die_with_parent: the run owns the server's whole life (PR_SET_PDEATHSIG). The pid
 * is registered with nem_cleanup_server_pid() before this returns, so a signal stops it. */
bool nem_server_launch(nem_server_t *srv, bool die_with_parent, bson_error_t *err);

/* Polls ping until the server answers, it exits, --db-start-timeout passes, or a signal arrives. Errors quote the
 * last lines of the server log. */
bool nem_server_wait_ready(nem_server_t *srv, bson_error_t *err);

/* Graceful stop (the engine's command, else SIGTERM), wait --db-stop-timeout, then SIGKILL; removes the pid file
 * and unregisters the cleanup pid. */
bool nem_server_stop(nem_server_t *srv, bson_error_t *err);

/* For --db-stop of a server started by an earlier run: reads DB_PATH/nemesyst.pid. *running is false when no live
 * server holds it (a stale file is removed). Sets srv->engine and srv->spec->connect_ip/port from the file. */
bool nem_server_attach(nem_server_t *srv, bool *running, bson_error_t *err);

/* The last n lines of path from offset, each indented and cut at 200 bytes, with secret masked; of those, the
 * newest that fit in max_bytes (the newest always); caller frees. */
char *nem_serve_log_tail(const char *path, int64_t offset, int n, size_t max_bytes, const char *secret);

#endif
