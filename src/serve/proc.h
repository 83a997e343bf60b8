/* Child processes for serving: spawn a server detached into its own session with its output in a log file, and
 * wait for a process to end with a deadline. Private to src/serve. */
#ifndef NEM_SERVE_PROC_H
#define NEM_SERVE_PROC_H

#include <bson/bson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "util/errors.h"

#include "util/clock.h"
#include "util/strv.h"

#define NEM_FD_INHERIT (-2) /* for in_fd/out_fd: keep nemesyst's own (an interactive shell) */

typedef struct {
    char *const *argv;      /* argv[0] is an absolute path: no PATH search after fork */
    char *const *env_extra; /* NAME=VALUE entries added to (or replacing in) environ; the only place for secrets */
    int out_fd;             /* stdout and stderr of the child; -1 = /dev/null */
    int in_fd;              /* stdin; -1 = /dev/null */
    int keep_fd;            /* an fd the child keeps across exec (the pid-file lock); -1 = none */
    bool new_session;       /* setsid(): terminal signals reach nemesyst only, which stops the server itself */
    bool die_with_parent;   /* PR_SET_PDEATHSIG SIGTERM: the run owns the server's whole life */
} nem_spawn_t;

/* Starts the child. Returns its pid, or -1 with err set (exec failures are reported here, not in the child). */
pid_t nem_proc_spawn(const nem_spawn_t *sp, bson_error_t *err);

/* Builds the environment for a child: environ plus the extra entries (which win). Free with nem_strv_free. */
void nem_proc_environ(char *const *extra, nem_strv_t *out);

/* True when our child pid has ended (reaped here; *status gets the wait status when not NULL). */
bool nem_proc_reap(pid_t pid, int *status);

/* Waits up to timeout_ms for child pid to end and reaps it. Signals do not cut it short: it is the wait of a
 * stop, which must finish. */
bool nem_proc_wait_child(pid_t pid, int timeout_ms, int *status);

/* Describes a wait status for messages ("exited with status 1", "killed by signal 9"). */
void nem_proc_describe(int status, char *buf, size_t len);


#endif
