/* The one place where options become plans: the resolved configuration turned into the typed values each layer
 * takes (the connection, the server's life, the run). Every rank builds the same plans from the configuration
 * rank 0 broadcast. */
#ifndef NEM_APP_PLAN_H
#define NEM_APP_PLAN_H

#include "config/config.h"
#include "serve/serve.h"
#include "stage/run-plan.h"
#include "store/store.h"

/* Which options configure each stage. */
typedef struct {
    nem_opt_id_t flag;      /* --data-clean ... */
    nem_opt_id_t scripts;   /* --data-cleaner ... */
    nem_opt_id_t entry;     /* --data-cleaner-entry-point ... */
    nem_opt_id_t output;    /* collection (clean, predict) or GridFS bucket (learn) */
} nem_stage_options_t;
const nem_stage_options_t *nem_stage_options(nem_stage_t stage);

/* The connection settings. Strings are borrowed from cfg, except the TLS file paths, ~ expanded, which are kept in
 * owned (free with nem_strv_free). */
void nem_store_opts_from_config(nem_store_opts_t *opts, const nem_config_t *cfg, nem_strv_t *owned);

/* The run: stages, scripts, writer policy, identity, and the connection (TLS paths with ~ expanded). False with a
 * one-line error (a pipeline that cannot be read on this rank) and nothing to clear. */
bool nem_plan_run(const nem_config_t *cfg, nem_run_plan_t *plan, bson_error_t *err);

/* Serving: what to do with the server and the engine-neutral server spec; client is how nemesyst and --db-login
 * reach it (borrowed: it must outlive the plan). Clear with nem_serve_plan_clear. */
void nem_plan_serve(const nem_config_t *cfg, const nem_store_opts_t *client, nem_serve_plan_t *plan);

#endif
