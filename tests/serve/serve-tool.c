/* A stand-in for the nemesyst binary while src/app/run.c does not call serving yet: resolves the real options,
 * then runs nem_serve_begin / (optional actions) / nem_serve_end exactly as run.c is meant to.
 * Actions, from the environment:
 *   NEM_SERVE_TOOL_ROUNDTRIP=1  insert a document as --db-user-name and read it back
 *   NEM_SERVE_TOOL_HOLD=SECONDS stay between begin and end (until a signal) so a test can look at the server
 *   NEM_SERVE_TOOL_ROUNDTRIP_AFTER_HOLD=1  the round trip again after the hold, as a run's stage rollback and run
 *                               record use the server after a signal
 *   NEM_SERVE_TOOL_LINGER=SECONDS after the hold, stay that long whatever the signals (a slow wind-down)
 *   NEM_SERVE_TOOL_HOST=NAME    ranks other than 0 report this host name (a job spanning hosts, on one machine) */
#include <mongoc/mongoc.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "app/app.h"
#include "app/plan.h"
#include "util/exitcodes.h"
#include "util/signals.h"
#include "log/log.h"
#include "serve/serve.h"

static bool roundtrip(const nem_config_t *cfg)
{
    mongoc_uri_t *uri = mongoc_uri_new_for_host_port(nem_cfg_str(cfg, NEM_OPT_DB_IP, 0),
                                                     (uint16_t)nem_cfg_int(cfg, NEM_OPT_DB_PORT, 0));
    const char *authdb = nem_cfg_str(cfg, NEM_OPT_DB_AUTHENTICATION_DATABASE, 0);
    mongoc_client_t *client;
    mongoc_collection_t *coll;
    mongoc_cursor_t *cur;
    bson_t *doc = BCON_NEW("probe", BCON_INT32(42), "pid", BCON_INT32((int)getpid()));
    bson_t *filter = BCON_NEW("pid", BCON_INT32((int)getpid()));
    const bson_t *got;
    bson_error_t err;
    bool ok;

    mongoc_uri_set_username(uri, nem_cfg_str(cfg, NEM_OPT_DB_USER_NAME, 0));
    mongoc_uri_set_password(uri, cfg->password);
    mongoc_uri_set_auth_source(uri, authdb ? authdb : nem_cfg_str(cfg, NEM_OPT_DB_NAME, 0));
    client = mongoc_client_new_from_uri(uri);
    coll = mongoc_client_get_collection(client, nem_cfg_str(cfg, NEM_OPT_DB_NAME, 0), "serve_test");
    ok = mongoc_collection_insert_one(coll, doc, NULL, NULL, &err);
    if (!ok)
        fprintf(stderr, "roundtrip: insert failed: %s\n", err.message);
    cur = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
    ok = ok && mongoc_cursor_next(cur, &got) && bson_has_field(got, "probe");
    if (mongoc_cursor_error(cur, &err))
        fprintf(stderr, "roundtrip: find failed: %s\n", err.message);
    printf("roundtrip %s\n", ok ? "ok" : "FAILED");
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(coll);
    mongoc_client_destroy(client);
    mongoc_uri_destroy(uri);
    bson_destroy(doc);
    bson_destroy(filter);
    return ok;
}

static void hold(int seconds)
{
    /* Tests wait for this line: the start has fully finished, so a signal now hits a running server's owner. */
    fprintf(stderr, "holding\n");
    fflush(stderr);
    for (int i = 0; i < seconds * 100 && !nem_signal_pending(); i++)
        usleep(10000);
}

static int configure(int argc, char **argv, nem_config_t *cfg)
{
    bson_error_t err = {0};
    if (!nem_config_resolve(cfg, argc, argv, &err) ||
        ((nem_cfg_is_set(cfg, NEM_OPT_DB_USER_NAME) || nem_cfg_is_set(cfg, NEM_OPT_DB_PASSWORD_FILE)) &&
         !nem_config_resolve_password(cfg, &err))) {
        fprintf(stderr, "nemesyst: error: %s\n", err.message);
        return NEM_EXIT_USAGE;
    }
    nem_log_set_level_name(nem_cfg_str(cfg, NEM_OPT_LOG_LEVEL, 0));
    return -1;
}

int main(int argc, char **argv)
{
    nem_world_t world = {0};
    nem_config_t *cfg = nem_config_new();
    nem_serve_t *serve = NULL;
    nem_serve_plan_t plan = {0};
    nem_store_opts_t client = {0};
    nem_strv_t paths = {0};
    int status;

    nem_world_start(&argc, &argv, true, &world);
    if (world.rank != 0 && getenv("NEM_SERVE_TOOL_HOST"))
        snprintf(world.host, sizeof world.host, "%s", getenv("NEM_SERVE_TOOL_HOST"));
    nem_log_init(world.rank, world.host);
    mongoc_init();
    nem_signals_install();
    status = configure(argc, argv, &cfg[0]);
    if (status < 0) {
        nem_store_opts_from_config(&client, cfg, &paths);
        nem_plan_serve(cfg, &client, &plan);
    }
    if (status < 0 && (status = nem_serve_begin(&world, &plan, &serve)) < 0) {
        int rc = 0;
        if (getenv("NEM_SERVE_TOOL_ROUNDTRIP") && world.rank == 0 && !roundtrip(cfg))
            rc = NEM_EXIT_FAILURE;
        if (getenv("NEM_SERVE_TOOL_HOLD"))
            hold(atoi(getenv("NEM_SERVE_TOOL_HOLD")));
        if (getenv("NEM_SERVE_TOOL_LINGER"))
            sleep((unsigned)atoi(getenv("NEM_SERVE_TOOL_LINGER")));
        if (getenv("NEM_SERVE_TOOL_ROUNDTRIP_AFTER_HOLD") && world.rank == 0 && !roundtrip(cfg))
            rc = NEM_EXIT_FAILURE;
        if (nem_signal_pending())
            rc = 128 + nem_signal_pending();
        if (nem_serve_db_host(serve))
            printf("rank %d reaches the server on %s\n", world.rank, nem_serve_db_host(serve));
        status = nem_serve_end(&world, &plan, serve, rc);
    }
    nem_serve_plan_clear(&plan);
    nem_strv_free(&paths);
    nem_config_destroy(cfg);
    mongoc_cleanup();
    nem_world_end();
    return status;
}
