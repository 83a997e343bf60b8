/* Signals: SIGINT, SIGTERM and SIGHUP never kill nemesyst outright. The first one only sets a flag that long loops
 * check: the run winds down (stage rollback, run record) while its database server still serves, and the serving
 * code stops a server this process owns in order (nem_serve_end, or the start path when it was still waiting for
 * readiness). A second signal kills the registered server outright and lets the process die by the signal. The
 * atexit hook stops a server still registered on any other exit, and PR_SET_PDEATHSIG covers SIGKILL. */
#ifndef NEM_SIGNALS_H
#define NEM_SIGNALS_H

#include <sys/types.h>

/* Installs the handlers and the atexit hook. Idempotent; call after MPI_Init (Open MPI may set its own). */
void nem_signals_install(void);

/* 0, or the number of the first SIGINT/SIGTERM/SIGHUP received. */
int nem_signal_pending(void);

/* Registers the pid of a server to stop on a signal or at exit (0 unregisters). The server must be in its own
 * process group: only that pid is signalled. */
void nem_cleanup_server_pid(pid_t pid);

/* The registered pid, 0 if none. */
pid_t nem_cleanup_server_get(void);

/* "SIGTERM" for SIGTERM, and so on for the signals a process is commonly ended by; NULL for others. */
const char *nem_signal_name(int sig);

#endif
