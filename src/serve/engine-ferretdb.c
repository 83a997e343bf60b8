/* FerretDB v1 (SQLite backend), the zero-install engine. Its differences from mongod, and how they are bridged:
 * - authentication exists only with --test-enable-new-auth, and the first user comes from --setup-* flags, created
 *   at backend start when the setup database does not exist yet: init maps onto that;
 * - the setup password goes through FERRETDB_SETUP_PASSWORD in the child's environment, never argv;
 * - no shutdown command (SIGTERM is its graceful stop), no config file, no cursor-timeout knob;
 * - one listen address; --repl-set-name only decorates hello;
 * - it logs to stderr, which nemesyst redirects into --db-log-path/--db-log-name;
 * - TLS (--db-server-tls-*): --listen-tls with its certificate and key files, and the plain listener off
 *   (--listen-addr= empty), so that the server takes TLS connections only; a CA file (--listen-tls-ca-file) makes
 *   it require a client certificate signed by that CA. One PEM holding both certificate and key serves as both. */
#include <string.h>

#include "log/log.h"
#include "serve/engine.h"

/* FerretDB listens on one address: a list of several becomes the wildcard (authentication is on in start). */
static const char *listen_ip(const nem_server_spec_t *spec, nem_phase_t phase)
{
    if (phase == NEM_PHASE_INIT)
        return "127.0.0.1";
    if (spec->n_bind_ip != 1)
        return "0.0.0.0";
    if (strcmp(spec->bind_ip[0], "localhost") == 0)
        return "127.0.0.1";
    return spec->bind_ip[0];
}

static void warn_unsupported(const nem_server_spec_t *spec)
{
    if (spec->n_bind_ip > 1)
        NEM_WARN("ferretdb listens on one address only: --db-bind-ip lists %zu, so it listens on all interfaces "
                 "(0.0.0.0), with authentication on", spec->n_bind_ip);
    if (spec->config_path)
        NEM_WARN("ferretdb has no configuration file: --db-config-path %s is not used", spec->config_path);
    NEM_DEBUG("ferretdb has no cursor timeout setting: --db-cursor-timeout is not used");
}

static bool ferretdb_argv(const nem_server_spec_t *spec, nem_phase_t phase, nem_strv_t *argv, bson_error_t *err)
{
    const char *ip = listen_ip(spec, phase);

    if (phase == NEM_PHASE_INIT && !spec->user) {
        bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_EOPTION, "--db-init with ferretdb needs --db-user-name (its only user comes from init)");
        return false;
    }
    if (phase == NEM_PHASE_START)
        warn_unsupported(spec);
    nem_strv_push(argv, spec->program);
    nem_strv_push(argv, "--handler=sqlite");
    nem_strv_pushf(argv, "--sqlite-url=file:%s/", spec->db_path);
    nem_strv_pushf(argv, "--state-dir=%s", spec->db_path);
    if (phase == NEM_PHASE_START && spec->tls) {
        nem_strv_push(argv, "--listen-addr=");  /* no plain listener: TLS only */
        nem_strv_pushf(argv, strchr(ip, ':') ? "--listen-tls=[%s]:%d" : "--listen-tls=%s:%d", ip, spec->port);
        nem_strv_pushf(argv, "--listen-tls-cert-file=%s", spec->tls_cert_file);
        nem_strv_pushf(argv, "--listen-tls-key-file=%s", spec->tls_key_file ? spec->tls_key_file : spec->tls_cert_file);
        if (spec->tls_ca_file)
            nem_strv_pushf(argv, "--listen-tls-ca-file=%s", spec->tls_ca_file);
    } else {
        nem_strv_pushf(argv, strchr(ip, ':') ? "--listen-addr=[%s]:%d" : "--listen-addr=%s:%d", ip, spec->port);
    }
    /* Without this every instance binds 127.0.0.1:8088 and a second one on the machine fails. */
    nem_strv_push(argv, "--debug-addr=-");
    nem_strv_push(argv, "--telemetry=disable");
    nem_strv_push(argv, "--test-enable-new-auth");
    if (phase == NEM_PHASE_INIT) {
        nem_strv_pushf(argv, "--setup-database=%s", spec->auth_db);
        nem_strv_pushf(argv, "--setup-username=%s", spec->user);
    }
    if (phase == NEM_PHASE_START && spec->replset)
        nem_strv_pushf(argv, "--repl-set-name=%s", spec->replset);
    return true;
}

static void ferretdb_env(const nem_server_spec_t *spec, nem_phase_t phase, nem_strv_t *env)
{
    if (phase == NEM_PHASE_INIT)
        nem_strv_pushf(env, "FERRETDB_SETUP_PASSWORD=%s", spec->password ? spec->password : "");
}

/* The setup user was made (or not) by the server before it listened: prove it by logging in. */
static bool ferretdb_init_user(const nem_server_spec_t *spec, bson_error_t *err)
{
    bson_error_t why;

    if (nem_serve_ping(spec, true, 10000, &why))
        return true;
    bson_set_error(err, why.domain, why.code, "user '%s' cannot log in to database '%s' after init (FerretDB creates "
                   "its user only when that database does not exist yet): %s", spec->user, spec->auth_db, why.message);
    return false;
}

static void ferretdb_stop_command(const nem_server_spec_t *spec, bson_t *cmd)
{
    /* No shutdown command: SIGTERM is FerretDB's graceful stop. */
}

const nem_engine_t nem_engine_ferretdb = {
    .name = "ferretdb",
    .program = "ferretdb",
    .build_argv = ferretdb_argv,
    .build_env = ferretdb_env,
    .init_user = ferretdb_init_user,
    .stop_command = ferretdb_stop_command,
    .log_to_stderr = true,
};
