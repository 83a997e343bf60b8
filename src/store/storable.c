/* What a FerretDB 1.x server cannot store (storable.h): its documented differences (docs.ferretdb.io/v1.24/diff:
 * nested arrays, keys with '.' or a leading '$', NaN and +/-Infinity) and the BSON types it does not implement
 * (Decimal128, MinKey, MaxKey, JavaScript code, the deprecated undefined, symbol and DBPointer), found by sending
 * each to FerretDB 1.24.2. Not checked: duplicate keys (refused with a clear error), -0.0 (stored as 0) and NUL in
 * strings (stored by the SQLite backend). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "store/storable.h"
#include "store/store-private.h"

#define FIX_MONGOD "or use MongoDB (--db-engine mongod), which stores it"

typedef struct {
    bson_iter_t it;
    uint32_t index; /* arrays: the index the next element's key must be */
    bool array;
} level_t;

/* key is the decimal form of i, as MongoDB's arrays have it ("0", "1", ..., no leading zero). */
static bool is_index(const char *key, uint32_t i)
{
    uint64_t v = 0;
    const char *p = key;
    if (p[0] == '0')
        return p[1] == '\0' && i == 0;
    for (; *p >= '0' && *p <= '9' && p - key < 10; p++)
        v = v * 10 + (uint64_t)(*p - '0');
    return *p == '\0' && p != key && v == i;
}

/* The path of the element at stack[0..top], keys joined by '.', as one line of valid UTF-8. */
static void set_path(const level_t *stack, int top, char *out, size_t size)
{
    size_t n = 0;
    bool cut = false;
    for (int l = 0; l <= top && !cut; l++) {
        const char *k = bson_iter_key(&stack[l].it);
        if (l > 0 && n + 1 < size)
            out[n++] = '.';
        for (; *k; k++) {
            if (n + 4 >= size) { /* room for "..." and the NUL */
                cut = true;
                break;
            }
            unsigned char c = (unsigned char)*k;
            out[n++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
        }
    }
    if (cut) {
        while (n > 0 && ((unsigned char)out[n - 1] & 0xc0) == 0x80) /* never half a UTF-8 character */
            n--;
        if (n > 0 && ((unsigned char)out[n - 1] & 0xc0) == 0xc0)
            n--;
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    if (!bson_utf8_validate(out, n, false))
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)out[i] >= 0x80)
                out[i] = '?';
}

static bool refuse(const level_t *stack, int top, nem_unstorable_t *why, const char *what, const char *fix)
{
    set_path(stack, top, why->path, sizeof why->path);
    why->what = what;
    why->fix = fix;
    return false;
}

bool nem_storable_ferretdb(const bson_t *doc, nem_unstorable_t *why)
{
    level_t stack[NEM_STORABLE_MAX_DEPTH];
    int top = 0;
    if (!bson_iter_init(&stack[0].it, doc))
        return true; /* not BSON: not this check's to say */
    stack[0].array = false;
    while (top >= 0) {
        level_t *l = &stack[top];
        if (!bson_iter_next(&l->it)) {
            top--;
            continue;
        }
        const char *key = bson_iter_key(&l->it);
        if (l->array) {
            if (!is_index(key, l->index++))
                return refuse(stack, top - 1, why, "is an array whose keys are not 0, 1, 2, ...",
                              "build arrays with the keys 0, 1, 2, ... (libbson: bson_uint32_to_string)");
        } else if (key[0] == '$') {
            return refuse(stack, top, why, "has a key that starts with '$'",
                          "rename the key, or use MongoDB 5.0 or later (--db-engine mongod), which stores it");
        } else {
            const char *c = key; /* keys are short: a plain loop costs less than a call to strchr */
            while (*c && *c != '.')
                c++;
            if (*c)
                return refuse(stack, top, why, "has a key that contains '.'",
                              "rename the key, or use MongoDB 5.0 or later (--db-engine mongod), which stores it");
        }
        bson_type_t type = bson_iter_type(&l->it);
        switch (type) {
        case BSON_TYPE_DOUBLE: {
            double d = bson_iter_double(&l->it);
            if (isnan(d))
                return refuse(stack, top, why, "holds NaN",
                              "store missing values as null, or use MongoDB (--db-engine mongod), which stores NaN");
            if (isinf(d))
                return refuse(stack, top, why, d > 0 ? "holds Infinity" : "holds -Infinity",
                              "store a finite number or null, " FIX_MONGOD);
            break;
        }
        case BSON_TYPE_ARRAY:
            if (l->array)
                return refuse(stack, top, why, "is an array inside an array (a nested array)",
                              "store the inner arrays as documents or flatten them, " FIX_MONGOD);
            /* fall through */
        case BSON_TYPE_DOCUMENT:
            if (top + 1 < NEM_STORABLE_MAX_DEPTH && bson_iter_recurse(&l->it, &stack[top + 1].it)) {
                top++;
                stack[top].array = type == BSON_TYPE_ARRAY;
                stack[top].index = 0;
            }
            break;
        case BSON_TYPE_DECIMAL128:
            return refuse(stack, top, why, "holds a Decimal128", "store it as a double or a string, " FIX_MONGOD);
        case BSON_TYPE_CODE:
        case BSON_TYPE_CODEWSCOPE:
            return refuse(stack, top, why, "holds JavaScript code", "store it as a string, " FIX_MONGOD);
        case BSON_TYPE_MINKEY:
            return refuse(stack, top, why, "holds MinKey", "store another value, " FIX_MONGOD);
        case BSON_TYPE_MAXKEY:
            return refuse(stack, top, why, "holds MaxKey", "store another value, " FIX_MONGOD);
        case BSON_TYPE_UNDEFINED:
            return refuse(stack, top, why, "holds undefined (a deprecated BSON type)", "store null, " FIX_MONGOD);
        case BSON_TYPE_SYMBOL:
            return refuse(stack, top, why, "holds a symbol (a deprecated BSON type)",
                          "store it as a string, " FIX_MONGOD);
        case BSON_TYPE_DBPOINTER:
            return refuse(stack, top, why, "holds a DBPointer (a deprecated BSON type)",
                          "store a DBRef document or an ObjectId, " FIX_MONGOD);
        default:
            break;
        }
    }
    return true;
}

/* The major version of "v1.24.2" / "1.24.2"; -1 when there is none. */
static long major_of(const char *v)
{
    char *end;
    if (*v == 'v' || *v == 'V')
        v++;
    long m = strtol(v, &end, 10);
    return end == v ? -1 : m;
}

bool nem_store_ferretdb_limits_of(const bson_t *build_info)
{
    bson_iter_t it, sub;
    if (bson_iter_init_find(&it, build_info, "ferretdbVersion")) /* 1.x (and 0.x) */
        return !BSON_ITER_HOLDS_UTF8(&it) || major_of(bson_iter_utf8(&it, NULL)) < 2;
    if (bson_iter_init_find(&it, build_info, "ferretdb") && BSON_ITER_HOLDS_DOCUMENT(&it) &&
        bson_iter_recurse(&it, &sub) && bson_iter_find(&sub, "version") && BSON_ITER_HOLDS_UTF8(&sub)) {
        long m = major_of(bson_iter_utf8(&sub, NULL));
        return m >= 0 && m < 2;
    }
    return false;
}

enum { ASKED_NOT = 0, ASKED_NO = 1, ASKED_YES = 2 };

bool nem_store_ferretdb_limits(nem_store_t *store)
{
    if (store->ferretdb == ASKED_NOT) {
        bson_t cmd = BSON_INITIALIZER, reply;
        BSON_APPEND_INT32(&cmd, "buildInfo", 1);
        if (mongoc_client_command_simple(store->client, "admin", &cmd, NULL, &reply, NULL))
            store->ferretdb = nem_store_ferretdb_limits_of(&reply) ? ASKED_YES : ASKED_NO;
        bson_destroy(&reply);
        bson_destroy(&cmd);
    }
    return store->ferretdb == ASKED_YES;
}
