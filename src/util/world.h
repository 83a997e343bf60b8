/* The MPI world as every layer sees it: this process's rank, the number of ranks and the host it runs on; and the
 * collectives nemesyst waits in. A process no launcher started (no mpirun, srun or PMI environment) is a world of
 * one rank without MPI at all: the same code runs, the collectives below are then what they are on one rank (a
 * broadcast from rank 0 to rank 0 changes nothing), and the third of a second MPI_Init costs a singleton is never
 * paid; --help, a bad option or a one-rank run start at once. A rank can wait a long time in one (a worker while the others' scripts run, every
 * rank while rank 0 starts the server or asks for a password), and a blocking MPI call spins a core all that time:
 * these start the nonblocking collective and test it with short sleeps between tests, so an idle rank costs next to
 * no CPU and answers within a few milliseconds. */
#ifndef NEM_UTIL_WORLD_H
#define NEM_UTIL_WORLD_H

#include <mpi.h>
#include <stdbool.h>

typedef struct {
    int rank, size;
    char host[256];
} nem_world_t;

/* Starts the world: MPI_Init when launched (under mpirun, srun, any PMI launcher), else a world of one without MPI.
 * Fills rank, size and host. */
void nem_world_start(int *argc, char ***argv, bool launched, nem_world_t *world);
/* MPI_Finalize when MPI was started. */
void nem_world_end(void);
/* Ends every rank now: MPI_Abort when MPI was started, else exit(status). */
_Noreturn void nem_world_abort(int status);

/* Waits for req to complete: MPI_Test with sleeps growing from 50 us to NEM_WAIT_SLEEP_MAX_US between tests. */
#define NEM_WAIT_SLEEP_MAX_US 5000
void nem_mpi_wait(MPI_Request *req);

/* MPI_Bcast, MPI_Barrier, MPI_Allreduce and MPI_Gather on MPI_COMM_WORLD, waited for with nem_mpi_wait. */
void nem_mpi_bcast(void *buf, int count, MPI_Datatype type, int root);
void nem_mpi_barrier(void);
void nem_mpi_allreduce(const void *in, void *out, int count, MPI_Datatype type, MPI_Op op);
void nem_mpi_gather(const void *in, int count, MPI_Datatype type, void *out, int root);

#endif
