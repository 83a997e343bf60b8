/* Rank- and host-tagged logging to stderr and an optional file. */
#include "log.h"

#include <errno.h>
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "util/errors.h"
#include <unistd.h>

static struct {
    nem_log_level_t level;
    int rank;
    char host[64];
    FILE *file;
} g_log = {NEM_LOG_INFO, 0, "", NULL};

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void nem_log_init(int rank, const char *host)
{
    g_log.rank = rank;
    if (host)
        bson_strncpy(g_log.host, host, sizeof g_log.host);
    else if (gethostname(g_log.host, sizeof g_log.host) != 0)
        bson_strncpy(g_log.host, "?", sizeof g_log.host);
    g_log.host[sizeof g_log.host - 1] = '\0';
}

bool nem_log_set_level_name(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0) {
            g_log.level = (nem_log_level_t)i;
            return true;
        }
    return false;
}

void nem_log_set_level(nem_log_level_t level)
{
    g_log.level = level;
}

nem_log_level_t nem_log_get_level(void)
{
    return g_log.level;
}

bool nem_log_open_file(const char *path, bson_error_t *err)
{
    FILE *f = fopen(path, "a");
    if (!f) {
        bson_set_error(err, NEM_ERROR_LOG, NEM_LOG_EOPEN, "cannot open --log-file '%s': %s", path, strerror(errno));
        return false;
    }
    setvbuf(f, NULL, _IOLBF, 0);
    nem_log_close();
    g_log.file = f;
    return true;
}

void nem_log_close(void)
{
    if (g_log.file)
        fclose(g_log.file);
    g_log.file = NULL;
}

void nem_logv(nem_log_level_t level, const char *fmt, va_list ap)
{
    char msg[4096], stamp[40];
    struct timeval tv;
    struct tm tm;

    if (level > g_log.level)
        return;
    if (!g_log.host[0])
        nem_log_init(g_log.rank, NULL);
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* One write per line so ranks sharing a terminal do not interleave mid-line. */
    char line[4096 + 128];
    int n = snprintf(line, sizeof line, "%s.%03dZ %s r%d %s: %s\n", stamp, (int)(tv.tv_usec / 1000), g_log.host,
                     g_log.rank, level_names[level], msg);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    if (write(STDERR_FILENO, line, len) < 0) {
        /* nothing better to do with a broken stderr */
    }
    if (g_log.file)
        fwrite(line, 1, len, g_log.file);
}

void nem_log(nem_log_level_t level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    nem_logv(level, fmt, ap);
    va_end(ap);
}

static void mongoc_handler(mongoc_log_level_t level, const char *domain, const char *message, void *data)
{
    (void)data;
    nem_log_level_t ours = level <= MONGOC_LOG_LEVEL_CRITICAL ? NEM_LOG_ERROR
                         : level == MONGOC_LOG_LEVEL_WARNING ? NEM_LOG_WARN
                                                              : NEM_LOG_DEBUG;
    if (level == MONGOC_LOG_LEVEL_TRACE)
        return;
    /* Servers without sessions (FerretDB) refuse endSessions at every disconnect: harmless, not worth a warning. */
    if (strstr(message, "endSessions"))
        ours = NEM_LOG_DEBUG;
    nem_log(ours, "%s: %s", domain, message);
}

void nem_log_capture_mongoc(void)
{
    mongoc_log_set_handler(mongoc_handler, NULL);
}
