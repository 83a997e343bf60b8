/* String vectors for child processes. */
#include "util/strv.h"

#include <stdarg.h>
#include <string.h>

void nem_strv_push(nem_strv_t *sv, const char *s)
{
    if (sv->n + 2 > sv->cap) {
        sv->cap = sv->cap ? sv->cap * 2 : 16;
        sv->v = bson_realloc(sv->v, sv->cap * sizeof *sv->v);
    }
    sv->v[sv->n++] = bson_strdup(s);
    sv->v[sv->n] = NULL;
}

void nem_strv_pushf(nem_strv_t *sv, const char *fmt, ...)
{
    va_list ap;
    char *s;
    va_start(ap, fmt);
    s = bson_strdupv_printf(fmt, ap);
    va_end(ap);
    nem_strv_push(sv, s);
    bson_free(s);
}

void nem_strv_free(nem_strv_t *sv)
{
    for (size_t i = 0; i < sv->n; i++) {
        /* Environment entries may hold secrets: wipe before freeing. */
        memset(sv->v[i], 0, strlen(sv->v[i]));
        bson_free(sv->v[i]);
    }
    bson_free(sv->v);
    memset(sv, 0, sizeof *sv);
}
