/* A growable NULL-terminated vector of owned strings: argv and environment entries for child processes. */
#ifndef NEM_UTIL_STRV_H
#define NEM_UTIL_STRV_H

#include <bson/bson.h>

typedef struct {
    char **v;
    size_t n, cap;
} nem_strv_t;

void nem_strv_push(nem_strv_t *sv, const char *s);
void nem_strv_pushf(nem_strv_t *sv, const char *fmt, ...) BSON_GNUC_PRINTF(2, 3);
/* Wipes every entry before freeing: environment entries may hold secrets. */
void nem_strv_free(nem_strv_t *sv);

#endif
