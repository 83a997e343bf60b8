/* Clocks and sleeps shared across concerns: monotonic time for deadlines, wall time for records. */
#ifndef NEM_UTIL_CLOCK_H
#define NEM_UTIL_CLOCK_H

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

#endif
