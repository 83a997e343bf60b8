/* Options -> nem_server_spec_t. */
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

static char *dup_opt(const nem_config_t *cfg, nem_opt_id_t id)
{
    const char *s = nem_cfg_str(cfg, id, 0);
    return s ? bson_strdup(s) : NULL;
}

static bool check_ranges(const nem_server_spec_t *spec, int64_t port, int64_t start_s, int64_t stop_s,
                         bson_error_t *err)
{
    if (port < 1 || port > 65535) {
        bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_EOPTION, "--db-port %" PRId64 " is not a TCP port (1-65535)", port);
        return false;
    }
    if (start_s < 1 || stop_s < 1) {
        bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_EOPTION, "--db-start-timeout and --db-stop-timeout must be at least 1 second");
        return false;
    }
    if (spec->n_bind_ip == 0) {
        bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_EOPTION, "--db-bind-ip needs at least one address");
        return false;
    }
    return true;
}

bool nem_serve_spec_from_cfg(const nem_config_t *cfg, nem_server_spec_t *spec, bson_error_t *err)
{
    size_t n = nem_cfg_count(cfg, NEM_OPT_DB_BIND_IP);
    int64_t port = nem_cfg_int(cfg, NEM_OPT_DB_PORT, 0);
    int64_t start_s = nem_cfg_int(cfg, NEM_OPT_DB_START_TIMEOUT, 0), stop_s = nem_cfg_int(cfg, NEM_OPT_DB_STOP_TIMEOUT, 0);
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
    spec->connect_ip = connect_ip_for(spec->bind_ip, n);
    spec->port = (int)port;
    spec->cursor_timeout = nem_cfg_int(cfg, NEM_OPT_DB_CURSOR_TIMEOUT, 0);
    spec->replset = dup_opt(cfg, NEM_OPT_DB_REPLICA_SET_NAME);
    spec->user = dup_opt(cfg, NEM_OPT_DB_USER_NAME);
    spec->password = cfg->password ? bson_strdup(cfg->password) : NULL;
    spec->auth_db = bson_strdup(auth_db ? auth_db : nem_cfg_str(cfg, NEM_OPT_DB_NAME, 0));
    spec->role = dup_opt(cfg, NEM_OPT_DB_USER_ROLE);
    spec->auth_mechanism = dup_opt(cfg, NEM_OPT_DB_AUTHENTICATION);
    spec->start_timeout_ms = (int)(start_s * 1000);
    spec->stop_timeout_ms = (int)(stop_s * 1000);
    if (!spec->db_path || !spec->log_dir) {
        bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_EOPTION, "--db-path and --db-log-path must be set");
        return false;
    }
    return check_ranges(spec, port, start_s, stop_s, err);
}

void nem_serve_spec_clear(nem_server_spec_t *spec)
{
    for (size_t i = 0; i < spec->n_bind_ip; i++)
        bson_free(spec->bind_ip[i]);
    bson_free(spec->bind_ip);
    if (spec->password)
        memset(spec->password, 0, strlen(spec->password));
    char **fields[] = {&spec->program, &spec->db_path, &spec->log_dir, &spec->log_file, &spec->config_path,
                       &spec->connect_ip, &spec->replset, &spec->user, &spec->password, &spec->auth_db,
                       &spec->role, &spec->auth_mechanism};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        bson_free(*fields[i]);
    memset(spec, 0, sizeof *spec);
}
