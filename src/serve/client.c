/* The few libmongoc calls serving needs (ping, createUser, shutdown). Kept here rather than in src/store so the
 * server's life does not depend on the store layer. Credentials are set on the URI object, never formatted into a
 * string that could reach a log. */
#include <mongoc/mongoc.h>

#include "serve/engine.h"

static mongoc_client_t *make_client(const nem_server_spec_t *spec, bool with_auth, int timeout_ms)
{
    mongoc_uri_t *uri = mongoc_uri_new_for_host_port(spec->connect_ip, (uint16_t)spec->port);
    mongoc_client_t *client;

    if (!uri)
        return NULL;
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, timeout_ms);
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, timeout_ms);
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, timeout_ms);
    mongoc_uri_set_appname(uri, "nemesyst-serve");
    if (with_auth && spec->user) {
        mongoc_uri_set_username(uri, spec->user);
        mongoc_uri_set_password(uri, spec->password ? spec->password : "");
        mongoc_uri_set_auth_source(uri, spec->auth_db);
        if (spec->auth_mechanism)
            mongoc_uri_set_auth_mechanism(uri, spec->auth_mechanism);
    }
    /* A server started with TLS takes nothing else: nemesyst connects as its clients do (--db-tls-*). */
    if (spec->tls)
        mongoc_uri_set_option_as_bool(uri, MONGOC_URI_TLS, true);
    client = mongoc_client_new_from_uri(uri);
    mongoc_uri_destroy(uri);
    if (client && spec->tls) {
        mongoc_ssl_opt_t ssl = *mongoc_ssl_opt_get_default();
        ssl.ca_file = spec->client_ca_file;
        ssl.pem_file = spec->client_cert_key_file;
        ssl.pem_pwd = spec->client_cert_key_password;
        mongoc_client_set_ssl_opts(client, &ssl);
    }
    if (client)
        mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
    return client;
}

bool nem_serve_command(const nem_server_spec_t *spec, bool with_auth, const char *db, const bson_t *cmd,
                       int timeout_ms, bson_t *reply, bson_error_t *err)
{
    /* A fresh client per call: a single-threaded client that failed to connect waits 5 s before trying again,
     * which would defeat readiness polling. */
    mongoc_client_t *client = make_client(spec, with_auth, timeout_ms);
    bool ok;

    if (!client) {
        bson_set_error(err, NEM_ERROR_SERVE, NEM_SERVE_EOPTION, "cannot make a client for %s:%d", spec->connect_ip, spec->port);
        if (reply)
            bson_init(reply);
        return false;
    }
    ok = mongoc_client_command_simple(client, db, cmd, NULL, reply, err);
    mongoc_client_destroy(client);
    return ok;
}

bool nem_serve_ping(const nem_server_spec_t *spec, bool with_auth, int timeout_ms, bson_error_t *err)
{
    bson_t ping = BSON_INITIALIZER;
    bool ok;

    BSON_APPEND_INT32(&ping, "ping", 1);
    ok = nem_serve_command(spec, with_auth, with_auth ? spec->auth_db : "admin", &ping, timeout_ms, NULL, err);
    bson_destroy(&ping);
    return ok;
}
