/* Logging: every line carries a UTC timestamp, the host, the MPI rank and the level; it goes to stderr and, when
 * asked, to a file. All diagnostics go through here. */
#ifndef NEM_LOG_H
#define NEM_LOG_H

#include <bson/bson.h>
#include <stdarg.h>
#include <stdbool.h>

typedef enum { NEM_LOG_ERROR, NEM_LOG_WARN, NEM_LOG_INFO, NEM_LOG_DEBUG } nem_log_level_t;

/* Records this process's rank and host name for the line prefix. Safe to call again (e.g. after MPI_Init). */
void nem_log_init(int rank, const char *host);
/* Sets the least severe level printed from "error", "warn", "info" or "debug". */
bool nem_log_set_level_name(const char *name);
void nem_log_set_level(nem_log_level_t level);
nem_log_level_t nem_log_get_level(void);
/* Appends log lines to path as well as stderr. */
bool nem_log_open_file(const char *path, bson_error_t *err);
void nem_log_close(void);
/* Routes libmongoc's own log messages through nem_log. */
void nem_log_capture_mongoc(void);

void nem_log(nem_log_level_t level, const char *fmt, ...) BSON_GNUC_PRINTF(2, 3);
void nem_logv(nem_log_level_t level, const char *fmt, va_list ap);

#define NEM_ERROR(...) nem_log(NEM_LOG_ERROR, __VA_ARGS__)
#define NEM_WARN(...) nem_log(NEM_LOG_WARN, __VA_ARGS__)
#define NEM_INFO(...) nem_log(NEM_LOG_INFO, __VA_ARGS__)
#define NEM_DEBUG(...) nem_log(NEM_LOG_DEBUG, __VA_ARGS__)

#endif
