/* nemesyst: distributed deep learning with MongoDB as the data and model store. */
#include <mongoc/mongoc.h>
#include <string.h>

#include "app/app.h"
#include "config/config.h"
#include "log/log.h"
#include "config/env.h"

int main(int argc, char **argv)
{
    nem_world_t world = {0};
    nem_config_t *cfg = NULL;
    int status;

    /* Secrets leave the command line (and the launcher's copy of it) before anything else, MPI_Init included
     * (a third of a second): the parser reads a private copy. */
    int nargs = argc;
    char **args = bson_malloc0(((size_t)nargs + 1) * sizeof *args);
    for (int i = 0; i < nargs; i++)
        args[i] = bson_strdup(argv[i]);
    nem_config_scrub_argv(argc, argv);
    nem_env_scrub_launcher_argv(argc, argv);
    nem_world_start(&argc, &argv, nem_env_launched(), &world);
    nem_log_init(world.rank, world.host);
    mongoc_init();
    nem_log_capture_mongoc();

    status = nem_app_configure(&world, nargs, args, &cfg);
    if (status < 0 && world.rank == 0 && cfg->password && *cfg->password &&
        cfg->values[NEM_OPT_DB_PASSWORD].src == NEM_SRC_CLI && nem_env_launched())
        NEM_WARN("--db-password on the command line is visible in the launcher's own arguments (mpirun, srun) to "
                 "every user of this host, though not to nemesyst's scripts: use --db-password-file");
    if (status < 0)
        status = nem_app_run(&world, cfg);

    for (int i = 0; i < nargs; i++)
        bson_zero_free(args[i], strlen(args[i]));
    bson_free(args);
    nem_config_destroy(cfg);
    mongoc_cleanup();
    nem_log_close();
    nem_world_end();
    return status;
}
