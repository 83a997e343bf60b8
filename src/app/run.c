/* Serving, then the stages, in the documented order: --db-init, --db-start, cleaning, learning, predicting,
 * --db-login, --db-stop. */
#include <mpi.h>

#include "app/app.h"
#include "app/exitcodes.h"
#include "app/signals.h"
#include "log/log.h"
#include "serve/serve.h"
#include "stage/stage.h"

int nem_app_run(const nem_world_t *world, nem_config_t *cfg)
{
    nem_serve_t *serve = NULL;
    int status;

    nem_signals_install();
    if (world->rank == 0)
        NEM_DEBUG("nemesyst %s on %d rank(s)", PACKAGE_VERSION, world->size);
    status = nem_serve_begin(world, cfg, &serve);
    if (status >= 0)
        return status;
    status = nem_stages_run(world, cfg);
    return nem_serve_end(world, cfg, serve, status);
}
