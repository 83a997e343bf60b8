/* The plugin's connection to the database: made on first use from the URI and the secrets the host handed over,
 * shared by the public nemesyst_database and the store layer (feed, models, checkpoints). */
#include "plugin/plugin-private.h"

/* The key-file password and the CRL are not URI options libmongoc takes: set them through the TLS options, with
 * the CA and certificate files the URI names (these options replace the URI's). */
static void apply_tls_secrets(nemesyst_ctx_t *ctx, const mongoc_uri_t *uri)
{
    const char *crl = NULL;
    bson_error_t ignored;
    if (!nemesyst_opt_str(ctx, "db-tls-crl-file", &crl, &ignored))
        crl = NULL;
    if ((!ctx->tls_key_password && !crl) || !mongoc_uri_get_tls(uri))
        return;
    mongoc_ssl_opt_t ssl = *mongoc_ssl_opt_get_default();
    ssl.ca_file = mongoc_uri_get_option_as_utf8(uri, MONGOC_URI_TLSCAFILE, NULL);
    ssl.pem_file = mongoc_uri_get_option_as_utf8(uri, MONGOC_URI_TLSCERTIFICATEKEYFILE, NULL);
    ssl.pem_pwd = ctx->tls_key_password;
    ssl.crl_file = crl;
    mongoc_client_set_ssl_opts(ctx->client, &ssl);
}

mongoc_database_t *nemesyst_database(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    mongoc_uri_t *uri;
    if (ctx->db)
        return ctx->db;
    if (!ctx->db_uri || !ctx->db_name) {
        bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_EDB, "no database: NEMESYST_DB_URI/NAME not set");
        return NULL;
    }
    uri = mongoc_uri_new_with_error(ctx->db_uri, error);
    if (!uri)
        return NULL;
    if (ctx->password)
        mongoc_uri_set_password(uri, ctx->password);
    mongoc_uri_set_option_as_utf8(uri, MONGOC_URI_APPNAME, "nemesyst-plugin");
    ctx->client = mongoc_client_new_from_uri_with_error(uri, error);
    if (ctx->client)
        apply_tls_secrets(ctx, uri);
    mongoc_uri_destroy(uri);
    if (!ctx->client)
        return NULL;
    mongoc_client_set_error_api(ctx->client, MONGOC_ERROR_API_VERSION_2);
    ctx->db = mongoc_client_get_database(ctx->client, ctx->db_name);
    return ctx->db;
}

nem_store_t *nemesyst__store(nemesyst_ctx_t *ctx, bson_error_t *error)
{
    if (!ctx->store && nemesyst_database(ctx, error)) {
        const mongoc_host_list_t *h = mongoc_uri_get_hosts(mongoc_client_get_uri(ctx->client));
        ctx->store = nem_store_adopt(ctx->client, ctx->db_name, h ? h->host_and_port : NULL);
    }
    return ctx->store;
}

void nemesyst__store_error(bson_error_t *error, const bson_error_t *store_err)
{
    uint32_t code = store_err->code == NEM_STORE_ENOTFOUND ? NEMESYST_ENOMODEL
                    : store_err->code == NEM_STORE_EIO     ? NEMESYST_EIO
                                                           : NEMESYST_EDB;
    bson_set_error(error, NEMESYST_ERROR_DOMAIN, code, "%s", store_err->message);
}
