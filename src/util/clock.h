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

#endif
