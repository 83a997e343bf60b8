/* Which process a run's rank 0 is, in a form another process can check later: a run still recorded as running
 * whose rank 0 ran on this host and has ended is lost at once, without waiting for its heartbeat to expire.
 *
 * A process is named by host name, boot id (/proc/sys/kernel/random/boot_id: another boot is another machine as
 * far as pids go), pid namespace (/proc/self/ns/pid: a container with the host's name still has pids of its own),
 * pid, and start time (/proc/PID/stat field 22, clock ticks since boot: a pid reused by a later process has
 * another). Under MPI with several ranks the launcher's process (rank 0's parent, which lives as long as the job)
 * is named too, so a job whose rank 0 died but which is still being wound down (its other ranks perhaps still
 * writing) does not count as ended until the launcher has ended as well. Only a process on this host, boot and pid
 * namespace can be judged; anything else is NEM_PROC_ELSEWHERE, and the heartbeat decides. */
#ifndef NEM_UTIL_PROCINFO_H
#define NEM_UTIL_PROCINFO_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    char host[256];
    char boot_id[64];
    char pid_ns[64];
    int64_t pid, start_ticks;                /* 0: unknown */
    int64_t launcher_pid, launcher_ticks;    /* 0: none recorded */
} nem_proc_t;

typedef enum {
    NEM_PROC_ALIVE,     /* on this host, and it (or its launcher) still runs */
    NEM_PROC_GONE,      /* on this host, and it and its launcher have ended (or their pids are other processes) */
    NEM_PROC_ELSEWHERE, /* another host, boot or pid namespace, nothing recorded, or /proc cannot tell */
} nem_proc_state_t;

/* This process; with_launcher: name its parent as the launcher too. False when /proc cannot tell (the
 * fields it could not read are left empty, which nem_proc_state then reports as NEM_PROC_ELSEWHERE). */
bool nem_proc_self(nem_proc_t *p, bool with_launcher);
/* Whether the process p named still runs, judged from this host. */
nem_proc_state_t nem_proc_state(const nem_proc_t *p);
/* The process as a sub-document key of doc: {host, boot_id, pid_ns, pid, start_ticks[, launcher_pid,
 * launcher_start_ticks]}. */
void nem_proc_append(bson_t *doc, const char *key, const nem_proc_t *p);
/* Reads what nem_proc_append wrote under key (a dotted path such as "rank0"); false when it is not there. */
bool nem_proc_from_bson(const bson_t *doc, const char *key, nem_proc_t *p);

/* A run record names its rank 0 under this key (stage/coordinator/run-record.c writes it when the run starts or resumes). A run
 * still recorded as running whose rank 0 is NEM_PROC_GONE is lost at once; owner (may be NULL) receives what the
 * record says (all empty when it names none: a run of an earlier version, ELSEWHERE). */
#define NEM_RUN_OWNER_KEY "rank0"
nem_proc_state_t nem_proc_owner_state(const bson_t *run, nem_proc_t *owner);

#endif
