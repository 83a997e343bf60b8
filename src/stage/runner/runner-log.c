/* Log channels: a script's stderr (and, for Python scripts and plugins, its stdout, where print() goes) become
 * log lines prefixed with the script, its position and the rank. */
#include "stage/runner/runner-private.h"

#include <string.h>

#include "log/log.h"

/* Longer lines are logged in pieces so one runaway line cannot grow the buffer without bound. */
#define MAX_LOG_LINE (16 * 1024)

/* sd-daemon's prefixes ("<3>" error ... "<7>" debug) let a script choose the level of a line. */
static nem_log_level_t line_level(const char **p, size_t *n)
{
    if (*n < 3 || (*p)[0] != '<' || (*p)[2] != '>' || (*p)[1] < '0' || (*p)[1] > '7')
        return NEM_LOG_INFO;
    int v = (*p)[1] - '0';
    *p += 3;
    *n -= 3;
    return v <= 3 ? NEM_LOG_ERROR : v == 4 ? NEM_LOG_WARN : v <= 6 ? NEM_LOG_INFO : NEM_LOG_DEBUG;
}

static void log_line(nem_runner_t *r, const nem_log_chan_t *ch, const char *p, size_t n)
{
    if (n > 0 && p[n - 1] == '\r')
        n--;
    nem_log_level_t level = line_level(&p, &n);
    nem_log(level, "%s: %.*s", r->log_prefix, (int)n, p);
    if (ch->is_stderr && n > 0) {
        size_t keep = n < sizeof r->last_err - 1 ? n : sizeof r->last_err - 1;
        memcpy(r->last_err, p, keep);
        r->last_err[keep] = '\0';
    }
}

void nem_log_lines(nem_runner_t *r, nem_log_chan_t *ch, bool at_eof)
{
    nem_rbuf_t *b = &ch->in;
    for (;;) {
        const char *p = b->data + b->start;
        size_t avail = b->len - b->start;
        const char *nl = avail ? memchr(p, '\n', avail) : NULL;
        size_t n = nl ? (size_t)(nl - p) : avail;
        if (!nl && n < MAX_LOG_LINE && !(at_eof && n > 0))
            return;
        if (n > MAX_LOG_LINE)
            n = MAX_LOG_LINE;
        log_line(r, ch, p, n);
        nem_rbuf_consume(b, n + (nl && p + n == nl ? 1 : 0));
    }
}
