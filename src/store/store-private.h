/* Internals shared by the store layer's files: the store struct and error helpers. */
#ifndef NEM_STORE_PRIVATE_H
#define NEM_STORE_PRIVATE_H

#include "store/store.h"

struct nem_store {
    mongoc_client_t *client;
    mongoc_database_t *db;
    char *db_name;
    char *host_port;      /* "host:port", for messages */
    int tls;              /* for messages: 0 plain, 1 TLS without a client certificate, 2 with one */
    char *public_uri;     /* never holds a secret */
    char *auth_desc;      /* "user 'u' on database 'd' (mechanism)", NULL without authentication */
    int timeout_ms;       /* server selection deadline */
    bool borrowed;        /* the client belongs to the caller (nem_store_adopt) */
    int ferretdb;         /* FerretDB 1.x behind it: 0 not asked yet, 1 no, 2 yes (storable.c) */
};

/* Sets a one-line NEM_ERROR_STORE error. */
void nem_store_seterr(bson_error_t *err, uint32_t code, const char *fmt, ...) BSON_GNUC_PRINTF(3, 4);

/* Sets err to "<what>: <driver message> (server code N)" from a libmongoc error, choosing the store code from its
 * domain. The server code is quoted only when the error came from the server. */
void nem_store_wrap(bson_error_t *err, const bson_error_t *driver, const char *what);

/* True when a libmongoc error came from the server (its code is a server code). */
bool nem_store_is_server_error(const bson_error_t *driver);

/* Creates the index key (named name) on coll unless an index of the same key exists, whatever its name: the indexes
 * are listed first, so that a user allowed to write but not to create indexes can still write where they exist
 * (indexes.c; store.h nem_store_ensure_index is the cached door for everything but GridFS's own). */
bool nem_store_index_on(mongoc_collection_t *coll, const bson_t *key, const char *name, bool unique,
                        bson_error_t *derr);

#endif
