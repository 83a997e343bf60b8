/* Collectives that wait without spinning (world.h). */
#include "util/world.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static bool started; /* MPI_Init was called */

void nem_world_start(int *argc, char ***argv, bool launched, nem_world_t *world)
{
    memset(world, 0, sizeof *world);
    world->size = 1;
    if (launched) {
        MPI_Init(argc, argv);
        started = true;
        MPI_Comm_rank(MPI_COMM_WORLD, &world->rank);
        MPI_Comm_size(MPI_COMM_WORLD, &world->size);
    }
    if (gethostname(world->host, sizeof world->host - 1) != 0)
        world->host[0] = '?';
}

void nem_world_end(void)
{
    if (started)
        MPI_Finalize();
    started = false;
}

_Noreturn void nem_world_abort(int status)
{
    if (started)
        MPI_Abort(MPI_COMM_WORLD, status);
    exit(status);
}

/* Bytes of one element of the types nemesyst's collectives use (without MPI there is no MPI_Type_size). */
static size_t type_size(MPI_Datatype type)
{
    if (type == MPI_INT)
        return sizeof(int);
    if (type == MPI_UINT32_T)
        return 4;
    if (type == MPI_UINT64_T || type == MPI_DOUBLE)
        return 8;
    return 1; /* MPI_CHAR, MPI_BYTE */
}

void nem_mpi_wait(MPI_Request *req)
{
    long sleep_us = 50;
    for (;;) {
        int done = 0;
        MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (done)
            return;
        struct timespec ts = {0, sleep_us * 1000};
        nanosleep(&ts, NULL);
        if (sleep_us < NEM_WAIT_SLEEP_MAX_US)
            sleep_us = sleep_us * 2 < NEM_WAIT_SLEEP_MAX_US ? sleep_us * 2 : NEM_WAIT_SLEEP_MAX_US;
    }
}

void nem_mpi_bcast(void *buf, int count, MPI_Datatype type, int root)
{
    if (!started)
        return; /* one rank: the root's data is already everywhere */
    MPI_Request req;
    MPI_Ibcast(buf, count, type, root, MPI_COMM_WORLD, &req);
    nem_mpi_wait(&req);
}

void nem_mpi_barrier(void)
{
    if (!started)
        return;
    MPI_Request req;
    MPI_Ibarrier(MPI_COMM_WORLD, &req);
    nem_mpi_wait(&req);
}

void nem_mpi_allreduce(const void *in, void *out, int count, MPI_Datatype type, MPI_Op op)
{
    if (!started) {
        memmove(out, in, (size_t)count * type_size(type)); /* any reduction of one value is that value */
        return;
    }
    MPI_Request req;
    MPI_Iallreduce(in, out, count, type, op, MPI_COMM_WORLD, &req);
    nem_mpi_wait(&req);
}

void nem_mpi_gather(const void *in, int count, MPI_Datatype type, void *out, int root)
{
    if (!started) {
        memmove(out, in, (size_t)count * type_size(type));
        return;
    }
    MPI_Request req;
    MPI_Igather(in, count, type, out, count, type, root, MPI_COMM_WORLD, &req);
    nem_mpi_wait(&req);
}
