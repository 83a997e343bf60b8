/* Text as messages need it: strict UTF-8, and a value quoted so that a message stays one readable line. */
#ifndef NEM_UTIL_TEXT_H
#define NEM_UTIL_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Strict UTF-8 (no overlong forms, surrogates or code points past U+10FFFF). On failure *bad is the offset of the
 * first bad byte. */
bool nem_utf8_valid(const char *s, size_t len, size_t *bad);
/* A value as messages show it: at most 60 bytes, control characters and bytes of invalid UTF-8 as \xNN, "..." when
 * cut. Returns buf. */
const char *nem_text_quote(const char *s, char *buf, size_t size);

#endif
