/* Test helper: connects with the given settings, pings, writes one document and reads it back. Prints the store's
 * one-line error on stderr and exits 1 on failure; prints the public URI on success. The password comes from
 * NEM_PROBE_PASSWORD (never argv, as in the product). Used by the auth and TLS tests. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

static bool write_and_read_back(nem_store_t *store, bson_error_t *err)
{
    mongoc_collection_t *coll = mongoc_database_get_collection(nem_store_database(store), "probe");
    bson_t *doc = BCON_NEW("probe", BCON_UTF8("hello"));
    bson_oid_t oid;
    bson_t *filter;
    mongoc_cursor_t *cur;
    const bson_t *got;
    bool ok;

    bson_oid_init(&oid, NULL);
    BSON_APPEND_OID(doc, "_id", &oid);
    filter = BCON_NEW("_id", BCON_OID(&oid));
    ok = mongoc_collection_insert_one(coll, doc, NULL, NULL, err);
    if (ok) {
        cur = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
        ok = mongoc_cursor_next(cur, &got);
        if (!ok && !mongoc_cursor_error(cur, err))
            bson_set_error(err, NEM_ERROR_STORE, NEM_STORE_ESERVER, "inserted document not found");
        mongoc_cursor_destroy(cur);
    }
    bson_destroy(filter);
    bson_destroy(doc);
    mongoc_collection_destroy(coll);
    return ok;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"host", required_argument, NULL, 'h'},  {"port", required_argument, NULL, 'p'},
        {"db", required_argument, NULL, 'd'},    {"user", required_argument, NULL, 'u'},
        {"auth-db", required_argument, NULL, 'a'}, {"mechanism", required_argument, NULL, 'm'},
        {"tls", no_argument, NULL, 't'},         {"ca", required_argument, NULL, 'C'},
        {"cert", required_argument, NULL, 'K'},  {"crl", required_argument, NULL, 'R'},
        {"timeout", required_argument, NULL, 'T'}, {"read-preference", required_argument, NULL, 'r'},
        {NULL, 0, NULL, 0}};
    nem_store_opts_t o = {.host = "127.0.0.1", .db_name = "probe", .max_staleness = -1};
    nem_store_t *store = NULL;
    bson_error_t err;
    int c, rc = 1;

    o.password = getenv("NEM_PROBE_PASSWORD");
    o.tls_cert_key_password = getenv("NEM_PROBE_KEY_PASSWORD");
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': o.host = optarg; break;
        case 'p': o.port = atoi(optarg); break;
        case 'd': o.db_name = optarg; break;
        case 'u': o.user = optarg; break;
        case 'a': o.auth_db = optarg; break;
        case 'm': o.auth_mechanism = optarg; break;
        case 't': o.tls = true; break;
        case 'C': o.tls_ca_file = optarg; break;
        case 'K': o.tls_cert_key_file = optarg; break;
        case 'R': o.tls_crl_file = optarg; break;
        case 'T': o.connect_timeout_ms = atoi(optarg); break;
        case 'r': o.read_preference = optarg; break;
        default: return 2;
        }
    }
    mongoc_init();
    if ((store = nem_store_new(&o, &err)) && nem_store_ping(store, &err) && write_and_read_back(store, &err)) {
        printf("ok %s\n", nem_store_public_uri(store));
        rc = 0;
    } else {
        fprintf(stderr, "store-probe: %s (domain %u, code %u)\n", err.message, err.domain, err.code);
    }
    nem_store_destroy(store);
    mongoc_cleanup();
    return rc;
}
