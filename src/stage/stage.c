/* The stages of a run over MPI (stage.h): what every rank does, and which side does what. */
#include <mpi.h>
#include <string.h>

#include "log/log.h"
#include "stage/coordinator/coordinator.h"
#include "stage/stage.h"
#include "stage/worker/worker.h"
#include "util/exitcodes.h"

#define HOSTLEN ((int)sizeof(((nem_world_t *)0)->host))

/* The hello from rank 0: every rank learns the run, or the status every rank ends with. */
static bool hello(const nem_world_t *world, struct coord *c, nem_msg_hello_t *h)
{
    bson_t msg = BSON_INITIALIZER;
    bson_error_t err = {0};
    if (world->rank == 0) {
        nem_coord_open_run(c, h);
        bson_destroy(&msg);
        nem_msg_hello_encode(h, &msg);
    }
    nem_msg_bcast(world, &msg);
    bool ok = world->rank == 0 || nem_msg_hello_decode(&msg, h, &err);
    if (!ok)
        NEM_ERROR("rank %d: %s", world->rank, err.message);
    bson_destroy(&msg);
    return ok;
}

/* Every worker rank connects (and pings, so an unreachable server is found now, not per script); then all ranks
 * agree: if any could not, every rank ends with NEM_EXIT_SERVER and the run record says why. */
static bool connect_workers(const nem_world_t *world, const nem_run_plan_t *plan, struct coord *c, nem_store_t **store)
{
    int ok = 1, all = 0;
    if (world->rank != 0) {
        bson_error_t err = {0};
        if (!(*store = nem_store_new(&plan->store, &err)) || !nem_store_ping(*store, &err)) {
            NEM_ERROR("rank %d on %s cannot use the database: %s", world->rank, world->host, err.message);
            ok = 0;
        }
    } else {
        *store = nem_coord_store(c);
    }
    nem_mpi_allreduce(&ok, &all, 1, MPI_INT, MPI_MIN);
    if (!all && world->rank == 0)
        nem_coord_workers_failed(c);
    return all;
}

int nem_stages_run(const nem_world_t *world, const nem_run_plan_t *plan)
{
    if (plan->list_runs)
        return nem_coord_list_runs(world, plan);
    if (!nem_run_plan_any_stage(plan))
        return NEM_EXIT_OK;

    char *hosts = world->rank == 0 ? bson_malloc0((size_t)world->size * HOSTLEN) : NULL;
    nem_mpi_gather(world->host, HOSTLEN, MPI_CHAR, hosts, 0);
    struct coord *c = world->rank == 0 ? nem_coord_new(world, plan, hosts) : NULL;
    nem_link_t link = {.world = world};
    nem_store_t *store = NULL, *own = NULL;
    nem_msg_hello_t h;
    int status;

    if (!hello(world, c, &h))
        nem_world_abort(NEM_EXIT_FAILURE);
    status = h.status;
    if (status < 0 && !connect_workers(world, plan, c, &store))
        status = NEM_EXIT_SERVER;
    if (world->rank != 0)
        own = store;
    if (status >= 0) {
        /* The run never got going (no server, a worker without a connection, a bad resume): machines reading
         * --summary-json still get an answer. */
        if (c)
            nem_coord_never_started(c);
        goto out;
    }

    nem_worker_ctx_t wctx = {world, plan, store, h.run_id, h.resumed, h.legacy,
                             c ? nem_coord_progress_local : nem_link_progress, c ? (void *)c : (void *)&link,
                             c ? NULL : nem_link_poll_abort, h.attempt};
    for (int s = 0; s < NEM_STAGE__COUNT; s++) {
        if (!plan->stages[s].enabled)
            continue;
        if (c)
            nem_coord_stage(c, (nem_stage_t)s, &wctx);
        else
            nem_worker_stage(&link, &wctx);
        /* The documented stage barrier: nothing of the next stage starts before this one ended everywhere. */
        nem_mpi_barrier();
    }
    if (c)
        status = nem_coord_close_run(c);
    nem_mpi_bcast(&status, 1, MPI_INT, 0);
out:
    nem_coord_destroy(c);
    nem_store_destroy(own);
    return status;
}
