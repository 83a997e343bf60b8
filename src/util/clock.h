/* Clocks and sleeps shared across concerns: monotonic time for deadlines, wall time for records. */
#ifndef NEM_UTIL_CLOCK_H
#define NEM_UTIL_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

/* Monotonic clock, for deadlines and durations. */
int64_t nem_now_ms(void);
int64_t nem_now_us(void);
/* Wall clock in milliseconds since the epoch, for run records and timestamps others read. */
int64_t nem_wall_ms(void);
void nem_sleep_ms(int ms);
/* A wall-clock time (ms since the epoch) as ISO 8601 UTC with milliseconds ("2026-01-02T03:04:05.678Z"), or "-"
 * for a missing one (INT64_MIN); returns buf. */
const char *nem_iso_ms(int64_t ms, char buf[32]);
/* ISO 8601 text as ms since the epoch: a date (2026-01-02) or a date and time (2026-01-02T03:04,
 * 2026-01-02T03:04:05, with .fraction; a space for the T), in UTC unless it ends with an offset (Z, +01:00, -0530).
 * *date_only says it was a date alone (its midnight UTC). False for anything else, or a date or time that does not
 * exist (2026-02-30, 24:00). */
bool nem_iso_parse(const char *text, int64_t *ms, bool *date_only);

#endif
