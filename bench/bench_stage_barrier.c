/* MPI_Barrier latency at the job's rank count: the floor of a lockstep round (bench_stage_rounds' baseline).
 * Rank 0 prints "barrier_us MEDIAN" : the median over CHUNKS chunks of the mean latency of ITERS barriers each.
 * Usage: mpirun -n N bench_stage_barrier [ITERS=200] [CHUNKS=5] */
#include <mpi.h>

#include "stage/common.h"

int main(int argc, char **argv)
{
    int rank, iters = argc > 1 ? atoi(argv[1]) : 200, chunks = argc > 2 ? atoi(argv[2]) : 5;
    double us[BENCH_MAX_REPS];
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (iters < 1 || chunks < 1 || chunks > BENCH_MAX_REPS) {
        if (rank == 0)
            fprintf(stderr, "usage: bench_stage_barrier [ITERS] [CHUNKS<=%d]\n", BENCH_MAX_REPS);
        MPI_Finalize();
        return 2;
    }
    for (int i = 0; i < iters; i++) /* warm-up: connections between the ranks */
        MPI_Barrier(MPI_COMM_WORLD);
    for (int c = 0; c < chunks; c++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t = MPI_Wtime();
        for (int i = 0; i < iters; i++)
            MPI_Barrier(MPI_COMM_WORLD);
        us[c] = (MPI_Wtime() - t) / iters * 1e6;
    }
    if (rank == 0)
        printf("barrier_us %.3f\n", bench_median(us, chunks));
    MPI_Finalize();
    return 0;
}
