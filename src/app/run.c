/* Serving, then the stages, in the documented order. */
#include <mpi.h>

#include "app/app.h"
#include "app/exitcodes.h"
#include "log/log.h"

int nem_app_run(const nem_world_t *world, nem_config_t *cfg)
{
    if (world->rank == 0)
        NEM_INFO("nemesyst %s: %d rank(s); nothing to do beyond configuration yet", PACKAGE_VERSION, world->size);
    MPI_Barrier(MPI_COMM_WORLD);
    return NEM_EXIT_OK;
}
