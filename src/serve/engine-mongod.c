/* mongod, the production engine. It cannot run on the development machines, so everything here only says what
 * to run; tests/serve/test_engines.c pins these command lines and commands down. */
#include <string.h>

#include "serve/engine.h"

/* --bind_ip takes one comma-separated list. */
static char *joined_bind_ip(const nem_server_spec_t *spec)
{
    bson_string_t *s = bson_string_new(NULL);
    for (size_t i = 0; i < spec->n_bind_ip; i++)
        bson_string_append_printf(s, "%s%s", i ? "," : "", spec->bind_ip[i]);
    return bson_string_free(s, false);
}

static void push_paths(const nem_server_spec_t *spec, nem_strv_t *argv)
{
    nem_strv_push(argv, "--dbpath");
    nem_strv_push(argv, spec->db_path);
    nem_strv_push(argv, "--logpath");
    nem_strv_push(argv, spec->log_file);
    /* Keep earlier runs' lines instead of mongod's rename-on-start; the error tail still shows the newest. */
    nem_strv_push(argv, "--logappend");
}

static bool mongod_argv(const nem_server_spec_t *spec, nem_phase_t phase, nem_strv_t *argv, bson_error_t *err)
{
    nem_strv_push(argv, spec->program);
    if (phase == NEM_PHASE_INIT) {
        /* No users yet and no --auth: never reachable from outside the machine. */
        nem_strv_push(argv, "--bind_ip");
        nem_strv_push(argv, "127.0.0.1");
    } else {
        char *ips = joined_bind_ip(spec);
        nem_strv_push(argv, "--auth");
        nem_strv_push(argv, "--bind_ip");
        nem_strv_push(argv, ips);
        bson_free(ips);
    }
    nem_strv_push(argv, "--port");
    nem_strv_pushf(argv, "%d", spec->port);
    push_paths(spec, argv);
    if (phase == NEM_PHASE_START) {
        nem_strv_push(argv, "--setParameter");
        nem_strv_pushf(argv, "cursorTimeoutMillis=%" PRId64, spec->cursor_timeout);
        if (spec->replset) {
            nem_strv_push(argv, "--replSet");
            nem_strv_push(argv, spec->replset);
        }
    }
    /* The original ignored --db-config-path; command-line options above override the file where both set a key. */
    if (spec->config_path) {
        nem_strv_push(argv, "--config");
        nem_strv_push(argv, spec->config_path);
    }
    return true;
}

static void mongod_env(const nem_server_spec_t *spec, nem_phase_t phase, nem_strv_t *env)
{
    /* mongod takes no secret from nemesyst at start: the user is created over the wire. */
}

void nem_mongod_create_user_command(const nem_server_spec_t *spec, bson_t *cmd)
{
    bson_t roles, role;

    BSON_APPEND_UTF8(cmd, "createUser", spec->user);
    BSON_APPEND_UTF8(cmd, "pwd", spec->password ? spec->password : "");
    BSON_APPEND_ARRAY_BEGIN(cmd, "roles", &roles);
    BSON_APPEND_DOCUMENT_BEGIN(&roles, "0", &role);
    BSON_APPEND_UTF8(&role, "role", spec->role);
    BSON_APPEND_UTF8(&role, "db", spec->auth_db);
    bson_append_document_end(&roles, &role);
    bson_append_array_end(cmd, &roles);
}

/* Error code mongod gives createUser for an existing user. */
#define MONGOD_USER_EXISTS 51003

static bool mongod_init_user(const nem_server_spec_t *spec, bson_error_t *err)
{
    bson_t cmd = BSON_INITIALIZER;
    bool ok;

    nem_mongod_create_user_command(spec, &cmd);
    ok = nem_serve_command(spec, false, spec->auth_db, &cmd, 10000, NULL, err);
    bson_reinit(&cmd);          /* drop the password from memory now */
    bson_destroy(&cmd);
    if (!ok && err->code == MONGOD_USER_EXISTS) {
        memset(err, 0, sizeof *err);
        return true;            /* re-running init on an initialised path keeps the user */
    }
    return ok;
}

static void mongod_stop_command(const nem_server_spec_t *spec, bson_t *cmd)
{
    BSON_APPEND_INT32(cmd, "shutdown", 1);
}

const nem_engine_t nem_engine_mongod = {
    .name = "mongod",
    .program = "mongod",
    .build_argv = mongod_argv,
    .build_env = mongod_env,
    .init_user = mongod_init_user,
    .stop_command = mongod_stop_command,
    .log_to_stderr = false,
};
