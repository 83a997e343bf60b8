/* The connection: options from the resolved configuration, checked before anything is sent; a URI built with
 * libmongoc's setters so a secret never passes through a string that could be logged; TLS through
 * mongoc_ssl_opt_t because it is the only place libmongoc 1.23 accepts a CRL file. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "store/store-private.h"

#define DEFAULT_TIMEOUT_MS 10000
/* The Server Selection specification's floor for maxStalenessSeconds. */
#define MIN_MAX_STALENESS 90
/* MongoDB's AuthenticationFailed server code. */
#define SERVER_AUTH_FAILED 18

/* ---- errors ---- */

/* Turns every line break into a space: every store error is one line. */
static void one_line(char *s)
{
    for (; *s; s++)
        if (*s == '\n' || *s == '\r')
            *s = ' ';
}

void nem_store_seterr(bson_error_t *err, uint32_t code, const char *fmt, ...)
{
    va_list ap;
    if (!err)
        return;
    err->domain = NEM_ERROR_STORE;
    err->code = code;
    va_start(ap, fmt);
    bson_vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    one_line(err->message);
}

bool nem_store_is_server_error(const bson_error_t *driver)
{
    return driver->domain == MONGOC_ERROR_SERVER || driver->domain == MONGOC_ERROR_WRITE_CONCERN_ERROR;
}

static uint32_t store_code(const bson_error_t *driver)
{
    if (driver->domain == MONGOC_ERROR_SERVER_SELECTION)
        return NEM_STORE_ECONNECT;
    if ((driver->domain == MONGOC_ERROR_CLIENT && driver->code == MONGOC_ERROR_CLIENT_AUTHENTICATE) ||
        (nem_store_is_server_error(driver) && driver->code == SERVER_AUTH_FAILED))
        return NEM_STORE_EAUTH;
    return nem_store_is_server_error(driver) ? NEM_STORE_ESERVER : NEM_STORE_EDRIVER;
}

void nem_store_wrap(bson_error_t *err, const bson_error_t *driver, const char *what)
{
    if (nem_store_is_server_error(driver))
        nem_store_seterr(err, store_code(driver), "%s: %s (server code %u)", what, driver->message, driver->code);
    else
        nem_store_seterr(err, store_code(driver), "%s: %s", what, driver->message);
}

/* ---- options ---- */

static bool has(const char *s)
{
    return s && *s;
}

static const char *auth_db_of(const nem_store_opts_t *o)
{
    return has(o->auth_db) ? o->auth_db : o->db_name;
}

static bool is_x509(const nem_store_opts_t *o)
{
    return has(o->auth_mechanism) && strcasecmp(o->auth_mechanism, "MONGODB-X509") == 0;
}

/* Authentication happens when a user is named, or with X.509 where the certificate is the identity. */
static bool wants_auth(const nem_store_opts_t *o)
{
    return has(o->user) || is_x509(o);
}

bool nem_store_opts_use_tls(const nem_store_opts_t *o)
{
    return o->tls || has(o->tls_ca_file) || has(o->tls_cert_key_file) || has(o->tls_crl_file);
}

static bool check_auth_mechanism(const char *mech, bson_error_t *err)
{
    static const char *const known[] = {"SCRAM-SHA-1", "SCRAM-SHA-256", "MONGODB-X509", "PLAIN", "GSSAPI",
                                        "MONGODB-AWS"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcasecmp(mech, known[i]) == 0)
            return true;
    nem_store_seterr(err, NEM_STORE_EOPTION,
                     "--db-authentication '%s' is not a mechanism libmongoc knows (SCRAM-SHA-1, SCRAM-SHA-256, "
                     "MONGODB-X509, PLAIN, GSSAPI, MONGODB-AWS)", mech);
    return false;
}

static bool parse_read_mode(const char *name, mongoc_read_mode_t *mode, bson_error_t *err)
{
    static const struct {
        const char *name;
        mongoc_read_mode_t mode;
    } modes[] = {{"primary", MONGOC_READ_PRIMARY},
                 {"primaryPreferred", MONGOC_READ_PRIMARY_PREFERRED},
                 {"secondary", MONGOC_READ_SECONDARY},
                 {"secondaryPreferred", MONGOC_READ_SECONDARY_PREFERRED},
                 {"nearest", MONGOC_READ_NEAREST}};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        if (strcasecmp(name, modes[i].name) == 0) {
            *mode = modes[i].mode;
            return true;
        }
    }
    nem_store_seterr(err, NEM_STORE_EOPTION,
                     "--db-replica-read-preference '%s' is not one of primary, primaryPreferred, secondary, "
                     "secondaryPreferred, nearest", name);
    return false;
}

static bool check_staleness(const nem_store_opts_t *o, mongoc_read_mode_t mode, bson_error_t *err)
{
    if (o->max_staleness == -1)
        return true;
    if (o->max_staleness < MIN_MAX_STALENESS) {
        nem_store_seterr(err, NEM_STORE_EOPTION,
                         "--db-replica-max-staleness %" PRId64 ": must be -1 (no limit) or at least %d seconds",
                         o->max_staleness, MIN_MAX_STALENESS);
        return false;
    }
    if (mode == MONGOC_READ_PRIMARY) {
        nem_store_seterr(err, NEM_STORE_EOPTION,
                         "--db-replica-max-staleness %" PRId64 " cannot be used with --db-replica-read-preference "
                         "primary (a primary is never stale)", o->max_staleness);
        return false;
    }
    return true;
}

typedef struct {
    char *ca, *cert_key, *crl;
} tls_paths_t;

static void tls_paths_free(tls_paths_t *t)
{
    bson_free(t->ca);
    bson_free(t->cert_key);
    bson_free(t->crl);
}

/* Resolves one TLS file option; a file that cannot be read fails now rather than as a vague handshake error. */
static bool tls_path(const char *option, const char *value, char **out, bson_error_t *err)
{
    if (!has(value))
        return true;
    *out = bson_strdup(value);
    if (access(*out, R_OK) != 0) {
        nem_store_seterr(err, NEM_STORE_EOPTION, "%s '%s': cannot read it: %s", option, value, strerror(errno));
        return false;
    }
    return true;
}

static bool tls_paths(const nem_store_opts_t *o, tls_paths_t *t, bson_error_t *err)
{
    return tls_path("--db-tls-ca-file", o->tls_ca_file, &t->ca, err) &&
           tls_path("--db-tls-certificate-key-file", o->tls_cert_key_file, &t->cert_key, err) &&
           tls_path("--db-tls-crl-file", o->tls_crl_file, &t->crl, err);
}

static bool check_opts(const nem_store_opts_t *o, mongoc_read_mode_t *mode, bson_error_t *err)
{
    if (!has(o->host)) {
        nem_store_seterr(err, NEM_STORE_EOPTION, "--db-ip is empty: name the host of the database");
        return false;
    }
    if (o->port < 1 || o->port > 65535) {
        nem_store_seterr(err, NEM_STORE_EOPTION, "--db-port %d: must be between 1 and 65535", o->port);
        return false;
    }
    if (!has(o->db_name)) {
        nem_store_seterr(err, NEM_STORE_EOPTION, "--db-name is empty: name the database");
        return false;
    }
    if (wants_auth(o) && has(o->auth_mechanism) && !check_auth_mechanism(o->auth_mechanism, err))
        return false;
    *mode = MONGOC_READ_PRIMARY;
    if (has(o->read_preference) && !parse_read_mode(o->read_preference, mode, err))
        return false;
    return check_staleness(o, *mode, err);
}

/* ---- the URI ---- */

/* Brackets an IPv6 literal so "host:port" stays unambiguous. */
static char *host_port(const nem_store_opts_t *o)
{
    bool v6 = strchr(o->host, ':') && o->host[0] != '[';
    return bson_strdup_printf(v6 ? "[%s]:%d" : "%s:%d", o->host, o->port);
}

static bool set_auth(mongoc_uri_t *uri, const nem_store_opts_t *o)
{
    if (!wants_auth(o))
        return true;
    if (is_x509(o))
        return (!has(o->user) || mongoc_uri_set_username(uri, o->user)) && mongoc_uri_set_auth_source(uri, "$external") &&
               mongoc_uri_set_auth_mechanism(uri, "MONGODB-X509");
    return mongoc_uri_set_username(uri, o->user) && (!o->password || mongoc_uri_set_password(uri, o->password)) &&
           mongoc_uri_set_auth_source(uri, auth_db_of(o)) &&
           (!has(o->auth_mechanism) || mongoc_uri_set_auth_mechanism(uri, o->auth_mechanism));
}

static bool set_read_prefs(mongoc_uri_t *uri, const nem_store_opts_t *o, mongoc_read_mode_t mode)
{
    mongoc_read_prefs_t *rp = mongoc_read_prefs_new(mode);
    if (o->max_staleness != -1)
        mongoc_read_prefs_set_max_staleness_seconds(rp, o->max_staleness);
    mongoc_uri_set_read_prefs_t(uri, rp);
    mongoc_read_prefs_destroy(rp);
    return true;
}

static mongoc_uri_t *build_uri(const nem_store_opts_t *o, mongoc_read_mode_t mode, int timeout_ms, bson_error_t *err)
{
    char *hp = host_port(o);
    char *text = bson_strdup_printf("mongodb://%s/", hp);
    bson_error_t uerr;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(text, &uerr);
    bson_free(text);
    if (!uri) {
        nem_store_seterr(err, NEM_STORE_EOPTION, "--db-ip '%s' --db-port %d: not a valid address: %s", o->host,
                         o->port, uerr.message);
        goto fail;
    }
    if (!mongoc_uri_set_database(uri, o->db_name) || !set_auth(uri, o) || !set_read_prefs(uri, o, mode) ||
        (has(o->replica_set) && !mongoc_uri_set_option_as_utf8(uri, MONGOC_URI_REPLICASET, o->replica_set)) ||
        (nem_store_opts_use_tls(o) && !mongoc_uri_set_option_as_bool(uri, MONGOC_URI_TLS, true)) ||
        !mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, timeout_ms) ||
        !mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, timeout_ms) ||
        (has(o->app_name) && !mongoc_uri_set_appname(uri, o->app_name))) {
        /* The setters refuse only malformed values (e.g. a user name with invalid UTF-8, an over-long app name). */
        nem_store_seterr(err, NEM_STORE_EOPTION,
                         "connection settings for %s were refused by libmongoc (user name, database, replica set "
                         "or application name malformed)", hp);
        goto fail;
    }
    bson_free(hp);
    return uri;
fail:
    bson_free(hp);
    mongoc_uri_destroy(uri);
    return NULL;
}

/* Appends value percent-encoded (RFC 3986 unreserved characters, and '/' where allowed, stay as they are). */
static void append_escaped(bson_string_t *s, const char *value, bool keep_slash)
{
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p) || (keep_slash && *p == '/'))
            bson_string_append_c(s, (char)*p);
        else
            bson_string_append_printf(s, "%%%02X", *p);
    }
}

/* Appends "&key=value" (or "?key=value" first). */
static void query_add(bson_string_t *s, bool *first, const char *key, const char *value)
{
    bson_string_append_printf(s, "%s%s=", *first ? "?" : "&", key);
    *first = false;
    append_escaped(s, value, true);
}

/* The public URI is composed here rather than taken from libmongoc, whose mongoc_uri_get_string() returns the
 * string the URI was parsed from and ignores the setters. Secrets (password, key-file password) never enter. */
static char *public_uri(const nem_store_opts_t *o, const tls_paths_t *t, int timeout_ms)
{
    bson_string_t *s = bson_string_new("mongodb://");
    char *hp = host_port(o);
    bool first = true;
    char num[32];
    if (has(o->user)) {
        append_escaped(s, o->user, false);
        bson_string_append_c(s, '@');
    }
    bson_string_append_printf(s, "%s/", hp);
    append_escaped(s, o->db_name, false);
    if (wants_auth(o)) {
        query_add(s, &first, "authSource", is_x509(o) ? "$external" : auth_db_of(o));
        if (has(o->auth_mechanism))
            query_add(s, &first, "authMechanism", o->auth_mechanism);
    }
    if (has(o->replica_set))
        query_add(s, &first, "replicaSet", o->replica_set);
    if (has(o->read_preference))
        query_add(s, &first, "readPreference", o->read_preference);
    if (o->max_staleness != -1) {
        bson_snprintf(num, sizeof num, "%" PRId64, o->max_staleness);
        query_add(s, &first, "maxStalenessSeconds", num);
    }
    if (nem_store_opts_use_tls(o))
        query_add(s, &first, "tls", "true");
    if (t->ca)
        query_add(s, &first, "tlsCAFile", t->ca);
    if (t->cert_key)
        query_add(s, &first, "tlsCertificateKeyFile", t->cert_key);
    bson_snprintf(num, sizeof num, "%d", timeout_ms);
    query_add(s, &first, "serverSelectionTimeoutMS", num);
    bson_free(hp);
    return bson_string_free(s, false);
}

/* ---- the store ---- */

/* "user 'u' on database 'd' (SCRAM-SHA-256)", for authentication errors; NULL without authentication. */
static char *auth_desc(const nem_store_opts_t *o)
{
    if (!wants_auth(o))
        return NULL;
    return bson_strdup_printf("user '%s' on database '%s' (%s)", has(o->user) ? o->user : "(certificate subject)",
                              is_x509(o) ? "$external" : auth_db_of(o),
                              has(o->auth_mechanism) ? o->auth_mechanism : "default mechanism");
}

static void apply_tls(mongoc_client_t *client, const nem_store_opts_t *o, const tls_paths_t *t)
{
    mongoc_ssl_opt_t ssl = *mongoc_ssl_opt_get_default();
    ssl.ca_file = t->ca;
    ssl.pem_file = t->cert_key;
    ssl.pem_pwd = has(o->tls_cert_key_password) ? o->tls_cert_key_password : NULL;
    ssl.crl_file = t->crl;
    mongoc_client_set_ssl_opts(client, &ssl);
}

nem_store_t *nem_store_new(const nem_store_opts_t *opts, bson_error_t *err)
{
    nem_store_t *store = NULL;
    mongoc_uri_t *uri = NULL;
    tls_paths_t tls = {0};
    mongoc_read_mode_t mode;
    int timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : DEFAULT_TIMEOUT_MS;

    if (!check_opts(opts, &mode, err) || (nem_store_opts_use_tls(opts) && !tls_paths(opts, &tls, err)))
        goto fail;
    if (!(uri = build_uri(opts, mode, timeout_ms, err)))
        goto fail;
    store = bson_malloc0(sizeof *store);
    store->timeout_ms = timeout_ms;
    store->host_port = host_port(opts);
    store->auth_desc = auth_desc(opts);
    store->tls = !nem_store_opts_use_tls(opts) ? 0 : has(opts->tls_cert_key_file) ? 2 : 1;
    store->client = mongoc_client_new_from_uri_with_error(uri, NULL);
    if (!store->client) {
        nem_store_seterr(err, NEM_STORE_EDRIVER, "cannot create a MongoDB client for %s", nem_store_host_port(store));
        goto fail;
    }
    /* Version 2 puts a server's refusal in MONGOC_ERROR_SERVER with the server's own code. */
    mongoc_client_set_error_api(store->client, MONGOC_ERROR_API_VERSION_2);
    if (nem_store_opts_use_tls(opts))
        apply_tls(store->client, opts, &tls);
    store->db_name = bson_strdup(opts->db_name);
    store->db = mongoc_client_get_database(store->client, store->db_name);
    store->public_uri = public_uri(opts, &tls, timeout_ms);
    mongoc_uri_destroy(uri);
    tls_paths_free(&tls);
    return store;
fail:
    mongoc_uri_destroy(uri);
    tls_paths_free(&tls);
    nem_store_destroy(store);
    return NULL;
}

nem_store_t *nem_store_adopt(mongoc_client_t *client, const char *db_name, const char *host_port)
{
    nem_store_t *store = bson_malloc0(sizeof *store);
    store->client = client;
    store->borrowed = true;
    store->timeout_ms = DEFAULT_TIMEOUT_MS;
    store->db_name = bson_strdup(db_name);
    store->db = mongoc_client_get_database(client, db_name);
    store->host_port = bson_strdup(host_port ? host_port : "?");
    store->public_uri = bson_strdup("");
    return store;
}

void nem_store_destroy(nem_store_t *store)
{
    if (!store)
        return;
    if (store->db)
        mongoc_database_destroy(store->db);
    if (store->client && !store->borrowed)
        mongoc_client_destroy(store->client);
    bson_free(store->db_name);
    bson_free(store->host_port);
    bson_free(store->auth_desc);
    bson_free(store->public_uri);
    bson_free(store);
}

bool nem_store_ping(nem_store_t *store, bson_error_t *err)
{
    bson_t cmd = BSON_INITIALIZER;
    bson_error_t derr;
    char what[256];
    bool ok;

    BSON_APPEND_INT32(&cmd, "ping", 1);
    ok = mongoc_client_command_simple(store->client, "admin", &cmd, NULL, NULL, &derr);
    bson_destroy(&cmd);
    if (ok)
        return true;
    switch (store_code(&derr)) {
    case NEM_STORE_ECONNECT:
        /* A refused certificate is a settings problem, not an unreachable host: say which settings. */
        if (strstr(derr.message, "TLS handshake failed"))
            bson_snprintf(what, sizeof what, "TLS connection to MongoDB at %s failed (check --db-tls-ca-file, "
                          "--db-tls-certificate-key-file, --db-tls-crl-file)", store->host_port);
        else {
            /* The likely fix, after the driver's words (shortened to leave it room): nothing listens there, or,
             * when the server closed the connection, the TLS settings differ from the server's. */
            bool closed = strstr(derr.message, "closed") || strstr(derr.message, "Failed to receive") ||
                          strstr(derr.message, "Failed to read");
            const char *hint = closed && store->tls == 0
                ? " (does the server take TLS connections only? give --db-tls and --db-tls-ca-file, or use its "
                  "--db-address-file)"
                : closed && store->tls == 1
                ? " (does the server require a client certificate? give --db-tls-certificate-key-file)"
                : " (is a server running there? start one with nemesyst --db-start, or point --db-ip/--db-port at "
                  "one that is)";
            bson_snprintf(what, sizeof what, "cannot reach MongoDB at %s within %d ms", store->host_port,
                          store->timeout_ms);
            int room = (int)sizeof err->message - 1 - (int)strlen(what) - 2 - (int)strlen(hint);
            nem_store_seterr(err, NEM_STORE_ECONNECT, "%s: %.*s%s", what, room > 0 ? room : 0, derr.message, hint);
            return false;
        }
        break;
    case NEM_STORE_EAUTH:
        bson_snprintf(what, sizeof what, "authentication failed for %s at %s",
                      store->auth_desc ? store->auth_desc : "no user", store->host_port);
        break;
    default:
        bson_snprintf(what, sizeof what, "ping to MongoDB at %s failed", store->host_port);
    }
    nem_store_wrap(err, &derr, what);
    return false;
}

mongoc_client_t *nem_store_client(nem_store_t *store)
{
    return store->client;
}

mongoc_database_t *nem_store_database(nem_store_t *store)
{
    return store->db;
}

const char *nem_store_db_name(const nem_store_t *store)
{
    return store->db_name;
}

const char *nem_store_public_uri(const nem_store_t *store)
{
    return store->public_uri;
}

const char *nem_store_host_port(const nem_store_t *store)
{
    return store->host_port;
}
