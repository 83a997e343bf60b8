/* Clocks and sleeps. */
#include "util/clock.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

int64_t nem_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t nem_now_ms(void)
{
    return nem_now_us() / 1000;
}

int64_t nem_wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

void nem_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

const char *nem_iso_ms(int64_t ms, char buf[32])
{
    if (ms == INT64_MIN) {
        strcpy(buf, "-");
        return buf;
    }
    /* milliseconds, as stored: a run's scripts often start within one second */
    int64_t sec = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    time_t t = (time_t)sec;
    struct tm tm;
    char base[24];
    gmtime_r(&t, &tm);
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, 32, "%.19s.%03dZ", base, (int)(ms - sec * 1000));
    return buf;
}
