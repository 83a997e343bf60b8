/* What a FerretDB 1.x server cannot store, checked before a document is sent: such a server refuses some values
 * with an error and answers others (NaN, Decimal128, JavaScript code, MinKey/MaxKey, deprecated BSON types, arrays
 * with keys other than 0, 1, 2, ...) by dropping the connection, so the client sees "Failed to read 4 bytes" and not
 * why. MongoDB stores the values (and keys with '.' or a leading '$' since 5.0): with it nothing is checked. */
#ifndef NEM_STORE_STORABLE_H
#define NEM_STORE_STORABLE_H

#include <bson/bson.h>
#include <stdbool.h>

#include "store/store.h"

/* Levels of nesting checked (FerretDB 1.24's SQLite backend stores at most about 330; MongoDB at most 100): deeper
 * subdocuments are left to the server, which refuses them with an error of its own. */
#define NEM_STORABLE_MAX_DEPTH 400
#define NEM_STORABLE_PATH_MAX 160

/* The first value of a document that FerretDB 1.x cannot store. */
typedef struct {
    char path[NEM_STORABLE_PATH_MAX]; /* the field, keys joined by '.' ("rows.3.price"); one line of valid UTF-8,
                                       * shortened with "..." when long */
    const char *what;                 /* what is wrong with it, after the path: "holds NaN" */
    const char *fix;                  /* the way out: "store missing values as null, or ..." */
} nem_unstorable_t;

/* True when FerretDB 1.x can store doc; false with *why naming the first value it cannot. One pass of bson_iter over
 * the document, no allocation. */
bool nem_storable_ferretdb(const bson_t *doc, nem_unstorable_t *why);

/* Whether the server behind store is FerretDB 1.x (its buildInfo reply carries "ferretdbVersion"; FerretDB 2.x,
 * which says "ferretdb": {"version": ...}, stores everything MongoDB does). Asked once per store and remembered; a
 * question the server does not answer counts as "no" and is asked again next time. */
bool nem_store_ferretdb_limits(nem_store_t *store);
/* The same from a buildInfo reply (tests). */
bool nem_store_ferretdb_limits_of(const bson_t *build_info);

#endif
