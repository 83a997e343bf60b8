/* CPU of an idle rank: rank 0 "works" (sleeps) SECONDS while every other rank waits for it in a barrier, first in a
 * blocking MPI_Barrier (the baseline: what a rank waiting in plain MPI costs), then in nemesyst's nem_mpi_barrier
 * (util/world.c: the nonblocking barrier tested with short sleeps), REPS times each, alternating. Rank 0 prints, for
 * each, the median over repetitions of the waiting ranks' mean CPU use as a percentage of one core, and the
 * latency from rank 0's arrival to the release of the last rank.
 * Usage: mpirun -n N bench_stage_idle [SECONDS=2] [REPS=3] */
#include <mpi.h>

#include "stage/common.h"
#include "util/world.h"

/* One wait: returns this rank's CPU % of a core while it waited (rank 0: 0). */
static double one(int rank, double seconds, bool polite, double *late_us)
{
    nem_mpi_barrier(); /* start together */
    double c0 = bench_cpu_self(), t0 = bench_now(), arrive = 0;
    if (rank == 0) {
        struct timespec ts = {(time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9)};
        nanosleep(&ts, NULL);
        arrive = MPI_Wtime();
    }
    if (polite)
        nem_mpi_barrier();
    else
        MPI_Barrier(MPI_COMM_WORLD);
    double released = MPI_Wtime(), last = 0;
    MPI_Bcast(&arrive, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    MPI_Reduce(&released, &last, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    *late_us = (last - arrive) * 1e6;
    double wall = bench_now() - t0;
    return rank == 0 ? 0 : 100.0 * (bench_cpu_self() - c0) / wall;
}

int main(int argc, char **argv)
{
    int rank, size, reps = argc > 2 ? atoi(argv[2]) : 3;
    double seconds = argc > 1 ? atof(argv[1]) : 2;
    double cpu[2][BENCH_MAX_REPS], late[2][BENCH_MAX_REPS];
    nem_world_t world;
    nem_world_start(&argc, &argv, true, &world); /* nem_mpi_barrier needs the world started */
    rank = world.rank;
    size = world.size;
    if (size < 2 || reps < 1 || reps > BENCH_MAX_REPS || seconds <= 0) {
        if (rank == 0)
            fprintf(stderr, "usage: mpirun -n N>=2 bench_stage_idle [SECONDS] [REPS<=%d]\n", BENCH_MAX_REPS);
        nem_world_end();
        return 2;
    }
    for (int r = 0; r < reps; r++)
        for (int m = 0; m < 2; m++) {
            double mine = one(rank, seconds, m == 1, &late[m][r]), sum = 0;
            MPI_Reduce(&mine, &sum, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
            cpu[m][r] = sum / (size - 1);
        }
    if (rank == 0) {
        double blocking = bench_median(cpu[0], reps), polite = bench_median(cpu[1], reps);
        printf("idle_cpu_pct blocking %.2f nemesyst %.2f ratio %.4f release_us blocking %.0f nemesyst %.0f\n",
               blocking, polite, blocking > 0 ? polite / blocking : 0.0, bench_median(late[0], reps),
               bench_median(late[1], reps));
    }
    nem_world_end();
    return 0;
}
