/* Child processes: the one way nemesyst starts a program (database servers, the MongoDB shell, stage scripts),
 * waits for it and words how it ended. The parent may run MPI helper threads, so everything the child needs is
 * prepared before fork and the child makes only async-signal-safe calls until exec:
 *   - every signal is blocked across fork (as libuv and git do), so no handler of the parent runs in the child;
 *     the child resets every disposition to SIG_DFL and starts the program with no signal blocked;
 *   - descriptors are close-on-exec from the start; the parent moves each one the child gets above every number
 *     the child moves descriptors to, so no dup2 clobbers another; every dup2 is checked; all other descriptors
 *     are closed in the child;
 *   - argv[0] is an absolute path (no PATH search after fork); secrets travel only through inherited pipes or
 *     env_extra, never argv;
 *   - exec errors go back over a close-on-exec pipe and are reported in the parent. */
#ifndef NEM_UTIL_SPAWN_H
#define NEM_UTIL_SPAWN_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/strv.h"

#define NEM_FD_NULL (-1)      /* the child's descriptor is /dev/null */
#define NEM_FD_INHERIT (-2)   /* the child keeps nemesyst's own (an interactive shell's terminal) */
#define NEM_SPAWN_MAX_FD 9    /* the highest descriptor number a child can be given */

/* One more descriptor for the child: fd (or NEM_FD_NULL) becomes child_fd (0..NEM_SPAWN_MAX_FD) across exec. */
typedef struct {
    int fd;
    int child_fd;
} nem_spawn_fd_t;

/* The process between a rank and its program (fork_guard): it gets what the program gets (process group,
 * descriptors, death signal, default dispositions, every signal still blocked), holds none of the descriptors,
 * and must not return. program: the program's pid; parent: the pid that spawned the guard. On Linux the guard is
 * a child subreaper (PR_SET_CHILD_SUBREAPER, set before the program is forked): whatever the program leaves
 * behind, in its process group or out of it (setsid, a double fork, a daemon), becomes the guard's child when its
 * own parent ends, so the guard reaps it (waitpid(-1, ...)) and can end it (nem_spawn_sweep). */
typedef void (*nem_spawn_guard_fn)(pid_t program, pid_t parent);

/* True for an entry of environ the child must not inherit. */
typedef bool (*nem_spawn_withhold_fn)(const char *entry);

typedef struct {
    char *const *argv;          /* argv[0] is an absolute path */
    nem_spawn_withhold_fn withhold; /* entries of environ kept back (nem_env_withheld, config/env.h); NULL = none */
    char *const *env_extra;     /* NAME=VALUE entries added to (or replacing in) environ; the place for a secret a
                                 * program reads from its environment */
    int in_fd;                  /* fd 0: a descriptor, NEM_FD_NULL or NEM_FD_INHERIT */
    int out_fd;                 /* fd 1 and fd 2 (fds can give fd 2 its own): the same choices */
    int keep_fd;                /* fd 3 (the pid-file lock of a server); -1 = none */
    const nem_spawn_fd_t *fds;  /* n_fds more, applied after the above */
    size_t n_fds;
    bool new_session;           /* setsid(): terminal signals reach nemesyst only */
    bool new_group;             /* setpgid(0, 0), also done by the parent so a kill right after start reaches it */
    bool private_umask;         /* umask 077: what the program creates is its owner's alone */
    int death_signal;           /* PR_SET_PDEATHSIG of the child (the guard when there is one); 0 = none */
    nem_spawn_guard_fn guard;   /* non-NULL: the child forks the program and becomes its guard; the program gets
                                 * SIGKILL when the guard dies */
    bool ignore_usr_signals;    /* the program starts with SIGUSR1 and SIGUSR2 ignored: a batch system's warning
                                 * signal (sbatch --signal) reaches every process of a job step, and is nemesyst's to
                                 * act on (a stage script learns of a coming stop from its stop file) */
} nem_spawn_t;

/* Starts sp->argv. Returns the child's pid (the guard's when there is one), or -1 with err set in domain/code
 * ("cannot execute PATH: REASON" for an exec failure). */
pid_t nem_spawn(const nem_spawn_t *sp, uint32_t domain, uint32_t code, bson_error_t *err);

/* The environment of a child: environ without what withhold keeps back, plus the extra entries (which win over an
 * entry of the same name). Free with nem_strv_free. */
void nem_spawn_environ(char *const *extra, nem_spawn_withhold_fn withhold, nem_strv_t *out);

/* True when child pid has ended: reaped here (*status gets its wait status when status is not NULL) or already
 * reaped elsewhere (ECHILD; *status is left alone). block: wait until it ends. */
bool nem_spawn_reap(pid_t pid, bool block, int *status);

/* Waits up to timeout_ms (-1 = no limit) for child pid to end and reaps it. Signals do not cut it short: it is
 * the wait of a stop, which must finish. */
bool nem_spawn_wait(pid_t pid, int timeout_ms, int *status);

/* For a single-threaded process such as a guard; async-signal-safe (a guard's signal handler may call them).
 * nem_spawn_signal_children sends sig to every child of this process (listed from /proc): the number signalled,
 * or -1 when /proc cannot list them. nem_spawn_sweep SIGKILLs and reaps every child of this process, then what
 * their deaths hand over to it (a subreaper's orphans), until none is left, or until the ones left cannot be
 * listed. */
int nem_spawn_signal_children(int sig);
void nem_spawn_sweep(void);

/* How a wait status reads in every message: "exited with status 3", "killed by SIGSEGV (signal 11,
 * Segmentation fault), core dumped", "killed by signal 40 (Real-time signal 6)". */
void nem_spawn_describe(int status, char *buf, size_t len);

#endif
