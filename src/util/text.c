/* Text as messages need it (text.h). */
#include "util/text.h"

#include <stdio.h>
#include <string.h>

bool nem_utf8_valid(const char *s, size_t len, size_t *bad)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i], cp;
        size_t n;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            n = 1, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF)
            n = 2, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4)
            n = 3, cp = c & 0x07;
        else
            goto fail;
        for (size_t k = 1; k <= n; k++) {
            if (i + k >= len || (p[i + k] & 0xC0) != 0x80)
                goto fail;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (cp >= 0xD800 && cp <= 0xDFFF) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            goto fail;
        i += n + 1;
    }
    return true;
fail:
    if (bad)
        *bad = i;
    return false;
}

const char *nem_text_quote(const char *s, char *buf, size_t size)
{
    const size_t show = 60;
    size_t len = strlen(s), i = 0, o = 0;
    if (size < 8) {
        if (size)
            buf[0] = '\0';
        return buf;
    }
    while (i < len && i < show && o + 8 < size) {
        unsigned char c = (unsigned char)s[i];
        size_t seq = 1, bad;
        if (c >= 0x80) {
            seq = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
            if (i + seq > len || !nem_utf8_valid(s + i, seq, &bad))
                seq = 0; /* not a valid sequence: escape this byte */
        }
        if (seq == 0 || c < 0x20 || c == 0x7F) {
            o += (size_t)snprintf(buf + o, size - o, "\\x%02X", c);
            i++;
        } else {
            if (o + seq + 4 >= size)
                break;
            memcpy(buf + o, s + i, seq);
            o += seq;
            i += seq;
        }
    }
    buf[o] = '\0';
    if (i < len && o + 4 <= size)
        memcpy(buf + o, "...", 4);
    return buf;
}
