/* Option getters for plugins: one value of one option for this script, with the per-script list semantics of
 * the command line (index by position, repeat the last value). */
#include "plugin/plugin-private.h"

#include <string.h>

/* Finds name's value for this script; '_' may stand for '-' so args["dl_batch_size"] habits work too. */
static bool find_value(const nemesyst_ctx_t *ctx, const char *name, bson_iter_t *out, bson_error_t *error)
{
    char key[128];
    bson_iter_t it, sub;
    bson_strncpy(key, name ? name : "", sizeof key);
    for (char *p = key; *p; p++)
        if (*p == '_')
            *p = '-';
    if (!bson_iter_init_find(&it, &ctx->options, key))
        goto unset;
    if (!BSON_ITER_HOLDS_ARRAY(&it)) {
        *out = it;
        return true;
    }
    /* repeat-last: the element at position, else the last one */
    bool any = false;
    if (bson_iter_recurse(&it, &sub)) {
        for (size_t i = 0; bson_iter_next(&sub) && i <= ctx->position; i++) {
            *out = sub;
            any = true;
        }
    }
    if (any)
        return true;
unset:
    bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_ENOOPT, "option '%s' is not set", key);
    return false;
}

static bool wrong_type(const char *name, const char *want, bson_error_t *error)
{
    bson_set_error(error, NEMESYST_ERROR_DOMAIN, NEMESYST_ENOOPT, "option '%s' is not %s", name, want);
    return false;
}

bool nemesyst_opt_str(const nemesyst_ctx_t *ctx, const char *name, const char **out, bson_error_t *error)
{
    bson_iter_t it;
    if (!find_value(ctx, name, &it, error))
        return false;
    if (!BSON_ITER_HOLDS_UTF8(&it))
        return wrong_type(name, "a string", error);
    *out = bson_iter_utf8(&it, NULL);
    return true;
}

bool nemesyst_opt_int(const nemesyst_ctx_t *ctx, const char *name, int64_t *out, bson_error_t *error)
{
    bson_iter_t it;
    if (!find_value(ctx, name, &it, error))
        return false;
    if (!BSON_ITER_HOLDS_INT(&it))
        return wrong_type(name, "an integer", error);
    *out = bson_iter_as_int64(&it);
    return true;
}

bool nemesyst_opt_bool(const nemesyst_ctx_t *ctx, const char *name, bool *out, bson_error_t *error)
{
    bson_iter_t it;
    if (!find_value(ctx, name, &it, error))
        return false;
    if (!BSON_ITER_HOLDS_BOOL(&it))
        return wrong_type(name, "a boolean", error);
    *out = bson_iter_bool(&it);
    return true;
}

bool nemesyst_opt_json(const nemesyst_ctx_t *ctx, const char *name, bson_t *out, bson_error_t *error)
{
    const char *text;
    uint8_t *file = NULL;
    size_t len;
    bool ok;
    bson_init(out);
    if (!nemesyst_opt_str(ctx, name, &text, error))
        return false;
    const char *p = text + strspn(text, " \t\r\n");
    /* inline JSON starts with a bracket; anything else names a file */
    if (*p != '{' && *p != '[') {
        if (!nemesyst__read_file(text, &file, &len, error))
            return false;
        p = (const char *)file;
    } else {
        len = strlen(p);
    }
    bson_destroy(out);
    ok = bson_init_from_json(out, p, (ssize_t)len, error);
    if (!ok)
        bson_init(out);
    bson_free(file);
    return ok;
}
