/* Signals: SIGINT, SIGTERM and SIGHUP never kill nemesyst outright. They set a flag that long loops check, and the
 * first one also stops the database server this process started (if any), so that no server outlives a run that
 * owned it. A second signal kills the server outright and lets the process die by the signal. */
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

/* Tests only: forget a received signal. */
void nem_signal_reset(void);

#endif
