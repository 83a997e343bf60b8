/* Options into plans (plan.h). This file, configure.c and the option table are the only code that knows option
 * ids; every layer below takes the typed values built here. */
#include "app/plan.h"

#include <string.h>

#include "config/pipeline.h"
#include "provenance/provenance.h"

static const nem_stage_options_t stage_options[NEM_STAGE__COUNT] = {
    [NEM_STAGE_CLEAN] = {NEM_OPT_DATA_CLEAN, NEM_OPT_DATA_CLEANER, NEM_OPT_DATA_CLEANER_ENTRY_POINT,
                         NEM_OPT_DATA_COLLECTION},
    [NEM_STAGE_LEARN] = {NEM_OPT_DL_LEARN, NEM_OPT_DL_LEARNER, NEM_OPT_DL_LEARNER_ENTRY_POINT,
                         NEM_OPT_DL_OUTPUT_MODEL_COLLECTION},
    [NEM_STAGE_PREDICT] = {NEM_OPT_I_PREDICT, NEM_OPT_I_PREDICTOR, NEM_OPT_I_PREDICTOR_ENTRY_POINT,
                           NEM_OPT_I_OUTPUT_PREDICTION_COLLECTION},
};

const nem_stage_options_t *nem_stage_options(nem_stage_t stage)
{
    return &stage_options[stage];
}

static const char *str_or_null(const nem_config_t *cfg, nem_opt_id_t id)
{
    return nem_cfg_is_set(cfg, id) ? nem_cfg_str(cfg, id, 0) : NULL;
}

/* A path option with ~ expanded, kept in owned. */
static const char *path_opt(const nem_config_t *cfg, nem_opt_id_t id, nem_strv_t *owned)
{
    if (!nem_cfg_is_set(cfg, id))
        return NULL;
    char *p = nem_cfg_path(cfg, id, 0);
    nem_strv_push(owned, p);
    bson_free(p);
    return owned->v[owned->n - 1];
}

void nem_store_opts_from_config(nem_store_opts_t *opts, const nem_config_t *cfg, nem_strv_t *owned)
{
    memset(opts, 0, sizeof *opts);
    opts->host = nem_cfg_str(cfg, NEM_OPT_DB_IP, 0);
    opts->port = (int)nem_cfg_int(cfg, NEM_OPT_DB_PORT, 0);
    opts->db_name = nem_cfg_str(cfg, NEM_OPT_DB_NAME, 0);
    if (!nem_cfg_auth_off(cfg)) {
        opts->user = str_or_null(cfg, NEM_OPT_DB_USER_NAME);
        opts->password = cfg->password;
        opts->auth_mechanism = str_or_null(cfg, NEM_OPT_DB_AUTHENTICATION);
    }
    opts->auth_db = str_or_null(cfg, NEM_OPT_DB_AUTHENTICATION_DATABASE);
    opts->replica_set = str_or_null(cfg, NEM_OPT_DB_REPLICA_SET_NAME);
    opts->read_preference = str_or_null(cfg, NEM_OPT_DB_REPLICA_READ_PREFERENCE);
    opts->max_staleness =
        nem_cfg_is_set(cfg, NEM_OPT_DB_REPLICA_MAX_STALENESS) ? nem_cfg_int(cfg, NEM_OPT_DB_REPLICA_MAX_STALENESS, 0) : -1;
    /* A server this run starts with TLS takes TLS connections only: this run's ranks are its clients too. */
    opts->tls = nem_cfg_bool(cfg, NEM_OPT_DB_TLS) ||
                (nem_cfg_bool(cfg, NEM_OPT_DB_START) && nem_cfg_is_set(cfg, NEM_OPT_DB_SERVER_TLS_CERT_FILE));
    opts->tls_ca_file = path_opt(cfg, NEM_OPT_DB_TLS_CA_FILE, owned);
    opts->tls_cert_key_file = path_opt(cfg, NEM_OPT_DB_TLS_CERTIFICATE_KEY_FILE, owned);
    opts->tls_cert_key_password = str_or_null(cfg, NEM_OPT_DB_TLS_CERTIFICATE_KEY_FILE_PASSWORD);
    opts->tls_crl_file = path_opt(cfg, NEM_OPT_DB_TLS_CRL_FILE, owned);
    opts->app_name = "nemesyst";
}

static void plan_store(const nem_config_t *cfg, nem_run_plan_t *plan)
{
    nem_store_opts_t *o = &plan->store;
    nem_store_opts_from_config(o, cfg, &plan->owned);
    const char **strings[] = {&o->host, &o->db_name, &o->user, &o->password, &o->auth_mechanism, &o->auth_db,
                              &o->replica_set, &o->read_preference, &o->tls_cert_key_password};
    for (size_t i = 0; i < sizeof strings / sizeof *strings; i++)
        *strings[i] = nem_run_plan_keep(plan, *strings[i]);
}

/* The lineage of the data a script reads (the --dl-data-* options, recorded with any model a script stores) and,
 * for learners given --dl-input-model-pipeline, the parent model's picker. */
static bool plan_data(const nem_config_t *cfg, nem_run_plan_t *plan, nem_stage_t stage, size_t i,
                      nem_script_plan_t *sp, bson_error_t *err)
{
    bson_t pipeline;
    sp->data_collection = nem_run_plan_keep(plan, nem_cfg_str(cfg, NEM_OPT_DL_DATA_COLLECTION, i));
    sp->input_bucket = nem_run_plan_keep(plan, nem_cfg_str(cfg, NEM_OPT_DL_INPUT_MODEL_COLLECTION, i));
    if (!nem_pipeline_option(cfg, NEM_OPT_DL_DATA_PIPELINE, i, &pipeline, err))
        return false;
    /* learner groups: configure.c checked that the group fits a round and its pipeline can be split */
    sp->group_size = stage == NEM_STAGE_LEARN ? (int)nem_cfg_int(cfg, NEM_OPT_DL_DATA_PARALLEL, i) : 1;
    if (sp->group_size > 1)
        sp->data_pipeline = bson_copy(&pipeline);
    char *json = nem_provenance_pipeline_json(&pipeline);
    sp->data_pipeline_json = nem_run_plan_keep(plan, json);
    bson_free(json);
    bson_destroy(&pipeline);
    if (stage != NEM_STAGE_LEARN || cfg->values[NEM_OPT_DL_INPUT_MODEL_PIPELINE].src == NEM_SRC_DEFAULT ||
        !nem_cfg_is_set(cfg, NEM_OPT_DL_INPUT_MODEL_PIPELINE))
        return true;
    if (!nem_pipeline_option(cfg, NEM_OPT_DL_INPUT_MODEL_PIPELINE, i, &pipeline, err))
        return false;
    sp->input_pipeline = bson_copy(&pipeline);
    bson_destroy(&pipeline);
    return true;
}

static bool plan_stage(const nem_config_t *cfg, nem_run_plan_t *plan, nem_stage_t stage, bson_error_t *err)
{
    const nem_stage_options_t *so = &stage_options[stage];
    nem_stage_plan_t *st = &plan->stages[stage];
    st->enabled = nem_cfg_bool(cfg, so->flag);
    st->n = nem_cfg_count(cfg, so->scripts);
    st->scripts = bson_malloc0((st->n + 1) * sizeof *st->scripts);
    nem_config_to_bson_for_scripts(cfg, st->n, &st->args);
    for (size_t i = 0; i < st->n; i++) {
        nem_script_plan_t *sp = &st->scripts[i];
        sp->group_size = 1;
        sp->checkpoint_keep = nem_cfg_int(cfg, NEM_OPT_DL_CHECKPOINT_KEEP, i);
        sp->path = nem_run_plan_keep(plan, nem_cfg_str(cfg, so->scripts, i));
        sp->entry_point = nem_run_plan_keep(plan, nem_cfg_str(cfg, so->entry, i));
        sp->output = nem_run_plan_keep(plan, nem_cfg_str(cfg, so->output, i));
        sp->model_bucket = stage == NEM_STAGE_LEARN
                               ? sp->output
                               : nem_run_plan_keep(plan, nem_cfg_str(cfg, NEM_OPT_DL_OUTPUT_MODEL_COLLECTION, i));
        if (st->enabled && !plan_data(cfg, plan, stage, i, sp, err))
            return false;
    }
    return true;
}

bool nem_plan_run(const nem_config_t *cfg, nem_run_plan_t *plan, bson_error_t *err)
{
    memset(plan, 0, sizeof *plan);
    plan_store(cfg, plan);
    for (int s = 0; s < NEM_STAGE__COUNT; s++)
        if (!plan_stage(cfg, plan, (nem_stage_t)s, err)) {
            nem_run_plan_clear(plan);
            return false;
        }
    plan->writer.provenance = nem_cfg_bool(cfg, NEM_OPT_PROVENANCE);
    plan->writer.keep_partial = nem_cfg_bool(cfg, NEM_OPT_KEEP_PARTIAL);
    plan->writer.keep_checkpoints = nem_cfg_bool(cfg, NEM_OPT_DL_CHECKPOINT_KEEP_FINAL);
    nem_config_to_bson(cfg, false, &plan->options);
    plan->process_pool = (int)nem_cfg_int(cfg, NEM_OPT_PROCESS_POOL, 0);
    plan->script_timeout_s = (int)nem_cfg_int(cfg, NEM_OPT_SCRIPT_TIMEOUT, 0);
    plan->checkpoint_grace_s = (int)nem_cfg_int(cfg, NEM_OPT_CHECKPOINT_GRACE, 0);
    plan->requeue = nem_cfg_bool(cfg, NEM_OPT_REQUEUE);
    plan->heartbeat_s = (int)nem_cfg_int(cfg, NEM_OPT_HEARTBEAT, 0);
    plan->resume_id = nem_run_plan_keep(plan, str_or_null(cfg, NEM_OPT_RESUME));
    plan->run_name = nem_run_plan_keep(plan, str_or_null(cfg, NEM_OPT_RUN_NAME));
    /* KEY=VALUE, checked by nem_config_check_labels: split at the first '=' */
    bson_init(&plan->tags);
    for (size_t i = 0; i < nem_cfg_count(cfg, NEM_OPT_TAG); i++) {
        const char *tag = nem_cfg_str(cfg, NEM_OPT_TAG, i), *eq = strchr(tag, '=');
        if (eq)
            bson_append_utf8(&plan->tags, tag, (int)(eq - tag), eq + 1, -1);
    }
    /* --sweep (config/sweep.c applied its set): the sweep's name, the set's index and what it overrode */
    bson_init(&plan->sweep);
    char *sweep_name = nem_cfg_sweep_name(cfg);
    if (sweep_name) {
        bson_t overrides;
        nem_cfg_sweep_overrides(cfg, &overrides);
        BSON_APPEND_UTF8(&plan->sweep, "name", sweep_name);
        BSON_APPEND_INT64(&plan->sweep, "index", nem_cfg_int(cfg, NEM_OPT_SWEEP_INDEX, 0));
        BSON_APPEND_DOCUMENT(&plan->sweep, "overrides", &overrides);
        bson_destroy(&overrides);
        bson_free(sweep_name);
    }
    plan->sweep_resume = nem_cfg_bool(cfg, NEM_OPT_SWEEP_RESUME);
    plan->summary_json = nem_run_plan_keep(plan, str_or_null(cfg, NEM_OPT_SUMMARY_JSON));
    plan->list_runs = nem_cfg_bool(cfg, NEM_OPT_LIST_RUNS);
    plan->python = nem_run_plan_keep(plan, str_or_null(cfg, NEM_OPT_PYTHON));
    nem_ol_opts_t *ol = &plan->openlineage;
    ol->url = nem_run_plan_keep(plan, str_or_null(cfg, NEM_OPT_OPENLINEAGE));
    ol->ns = nem_run_plan_keep(plan, nem_cfg_str(cfg, NEM_OPT_OPENLINEAGE_NAMESPACE, 0));
    ol->api_key_file = path_opt(cfg, NEM_OPT_OPENLINEAGE_API_KEY_FILE, &plan->owned);
    ol->ca_file = path_opt(cfg, NEM_OPT_OPENLINEAGE_CA_FILE, &plan->owned);
    ol->timeout_ms = (int)nem_cfg_int(cfg, NEM_OPT_OPENLINEAGE_TIMEOUT, 0) * 1000;
    return true;
}

static char *dup_or_null(const nem_config_t *cfg, nem_opt_id_t id)
{
    const char *s = nem_cfg_str(cfg, id, 0);
    return s ? bson_strdup(s) : NULL;
}

/* Seconds as milliseconds for the spec; out-of-range values stay out of range (nem_serve_spec_check says so). */
static int seconds_ms(int64_t s)
{
    return s < 1 ? 0 : s > INT32_MAX / 1000 ? INT32_MAX : (int)(s * 1000);
}

static void plan_server_spec(const nem_config_t *cfg, nem_server_spec_t *spec)
{
    size_t n = nem_cfg_count(cfg, NEM_OPT_DB_BIND_IP);
    int64_t port = nem_cfg_int(cfg, NEM_OPT_DB_PORT, 0);
    const char *auth_db = nem_cfg_str(cfg, NEM_OPT_DB_AUTHENTICATION_DATABASE, 0);

    memset(spec, 0, sizeof *spec);
    spec->bind_ip = bson_malloc0((n + 1) * sizeof *spec->bind_ip);
    for (size_t i = 0; i < n; i++)
        spec->bind_ip[i] = bson_strdup(nem_cfg_str(cfg, NEM_OPT_DB_BIND_IP, i));
    spec->n_bind_ip = n;
    spec->db_path = nem_cfg_path(cfg, NEM_OPT_DB_PATH, 0);
    spec->log_dir = nem_cfg_path(cfg, NEM_OPT_DB_LOG_PATH, 0);
    spec->log_file = bson_strdup_printf("%s/%s", spec->log_dir ? spec->log_dir : ".",
                                        nem_cfg_str(cfg, NEM_OPT_DB_LOG_NAME, 0));
    spec->config_path = nem_cfg_path(cfg, NEM_OPT_DB_CONFIG_PATH, 0);
    spec->port = port < 1 || port > 65535 ? 0 : (int)port;
    spec->cursor_timeout = nem_cfg_int(cfg, NEM_OPT_DB_CURSOR_TIMEOUT, 0);
    spec->replset = dup_or_null(cfg, NEM_OPT_DB_REPLICA_SET_NAME);
    spec->user = dup_or_null(cfg, NEM_OPT_DB_USER_NAME);
    spec->password = cfg->password ? bson_strdup(cfg->password) : NULL;
    spec->auth_db = bson_strdup(auth_db ? auth_db : nem_cfg_str(cfg, NEM_OPT_DB_NAME, 0));
    spec->role = dup_or_null(cfg, NEM_OPT_DB_USER_ROLE);
    /* '' turns the clients' authentication off; serving still creates and uses --db-user-name with the default */
    spec->auth_mechanism = nem_cfg_auth_off(cfg) ? NULL : dup_or_null(cfg, NEM_OPT_DB_AUTHENTICATION);
    spec->start_timeout_ms = seconds_ms(nem_cfg_int(cfg, NEM_OPT_DB_START_TIMEOUT, 0));
    spec->stop_timeout_ms = seconds_ms(nem_cfg_int(cfg, NEM_OPT_DB_STOP_TIMEOUT, 0));
    spec->tls_cert_file = nem_cfg_path(cfg, NEM_OPT_DB_SERVER_TLS_CERT_FILE, 0);
    spec->tls = spec->tls_cert_file != NULL;
    if (spec->tls) {
        spec->tls_key_file = nem_cfg_path(cfg, NEM_OPT_DB_SERVER_TLS_KEY_FILE, 0);
        spec->tls_ca_file = nem_cfg_path(cfg, NEM_OPT_DB_SERVER_TLS_CA_FILE, 0);
        spec->client_ca_file = nem_cfg_path(cfg, NEM_OPT_DB_TLS_CA_FILE, 0);
        spec->client_cert_key_file = nem_cfg_path(cfg, NEM_OPT_DB_TLS_CERTIFICATE_KEY_FILE, 0);
        spec->client_cert_key_password = dup_or_null(cfg, NEM_OPT_DB_TLS_CERTIFICATE_KEY_FILE_PASSWORD);
    }
}

void nem_plan_serve(const nem_config_t *cfg, const nem_store_opts_t *client, nem_serve_plan_t *plan)
{
    memset(plan, 0, sizeof *plan);
    plan->init = nem_cfg_bool(cfg, NEM_OPT_DB_INIT);
    plan->start = nem_cfg_bool(cfg, NEM_OPT_DB_START);
    plan->stop = nem_cfg_bool(cfg, NEM_OPT_DB_STOP);
    plan->login = nem_cfg_bool(cfg, NEM_OPT_DB_LOGIN);
    plan->intervention = nem_cfg_bool(cfg, NEM_OPT_DB_INTERVENTION);
    plan->engine = dup_or_null(cfg, NEM_OPT_DB_ENGINE);
    plan->client = client;
    if (plan->init || plan->start || plan->stop || plan->login)
        plan_server_spec(cfg, &plan->spec);
    plan->address_file = plan->start || plan->stop ? nem_cfg_path(cfg, NEM_OPT_DB_ADDRESS_FILE, 0) : NULL;
    plan->tls = client && nem_store_opts_use_tls(client);
}
