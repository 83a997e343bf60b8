/* The server spec's checks and the addresses derived from it (app/plan.c fills the spec from the options). */
#include <string.h>

#include "serve/spec.h"

bool nem_serve_is_loopback(const char *host)
{
    return host && (strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0);
}

bool nem_serve_unreachable_by_ranks(bool several_hosts, char *const *bind_ip, size_t n_bind_ip)
{
    if (!several_hosts)
        return false;
    for (size_t i = 0; i < n_bind_ip; i++)
        if (!nem_serve_is_loopback(bind_ip[i]))
            return false;
    return true;
}

/* Where nemesyst itself talks to the server it started: loopback whenever the server listens there. */
static char *connect_ip_for(char **bind_ip, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (nem_serve_is_loopback(bind_ip[i]) || strcmp(bind_ip[i], "0.0.0.0") == 0 || strcmp(bind_ip[i], "::") == 0)
            return bson_strdup("127.0.0.1");
    return bson_strdup(n ? bind_ip[0] : "127.0.0.1");
}

bool nem_serve_spec_check(nem_server_spec_t *spec, bson_error_t *err)
{
    if (!spec->db_path || !spec->log_dir) {
        bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_EOPTION, "--db-path and --db-log-path must be set");
        return false;
    }
    if (spec->port < 1 || spec->port > 65535) {
        bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_EOPTION, "--db-port %d is not a TCP port (1-65535)", spec->port);
        return false;
    }
    if (spec->start_timeout_ms < 1000 || spec->stop_timeout_ms < 1000) {
        bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_EOPTION, "--db-start-timeout and --db-stop-timeout must be at least 1 second");
        return false;
    }
    if (spec->n_bind_ip == 0) {
        bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_EOPTION, "--db-bind-ip needs at least one address");
        return false;
    }
    bson_free(spec->connect_ip);
    spec->connect_ip = connect_ip_for(spec->bind_ip, spec->n_bind_ip);
    return true;
}

void nem_serve_spec_clear(nem_server_spec_t *spec)
{
    for (size_t i = 0; i < spec->n_bind_ip; i++)
        bson_free(spec->bind_ip[i]);
    bson_free(spec->bind_ip);
    if (spec->password)
        memset(spec->password, 0, strlen(spec->password));
    if (spec->client_cert_key_password)
        memset(spec->client_cert_key_password, 0, strlen(spec->client_cert_key_password));
    char **fields[] = {&spec->program, &spec->db_path, &spec->log_dir, &spec->log_file, &spec->config_path,
                       &spec->connect_ip, &spec->replset, &spec->user, &spec->password, &spec->auth_db,
                       &spec->role, &spec->auth_mechanism, &spec->tls_cert_file, &spec->tls_key_file,
                       &spec->tls_ca_file, &spec->client_ca_file, &spec->client_cert_key_file,
                       &spec->client_cert_key_password};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        bson_free(*fields[i]);
    memset(spec, 0, sizeof *spec);
}
