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

/* n digits at *p as a number, advancing *p; -1 when they are not all digits. */
static int digits(const char **p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if ((*p)[i] < '0' || (*p)[i] > '9')
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    return v;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

bool nem_iso_parse(const char *text, int64_t *ms, bool *date_only)
{
    const char *p = text;
    int y, mo, d, h = 0, mi = 0, s = 0, frac_ms = 0, off_min = 0;
    if ((y = digits(&p, 4)) < 0 || *p++ != '-' || (mo = digits(&p, 2)) < 0 || *p++ != '-' || (d = digits(&p, 2)) < 0)
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return false;
    *date_only = *p == '\0';
    if (!*date_only) {
        if (*p != 'T' && *p != 't' && *p != ' ')
            return false;
        p++;
        if ((h = digits(&p, 2)) < 0 || *p++ != ':' || (mi = digits(&p, 2)) < 0)
            return false;
        if (*p == ':') {
            p++;
            if ((s = digits(&p, 2)) < 0)
                return false;
            if (*p == '.' || *p == ',') {
                int scale = 100, n = 0;
                p++;
                for (; *p >= '0' && *p <= '9'; p++, n++) {
                    frac_ms += (*p - '0') * scale;
                    scale /= 10;
                }
                if (n == 0)
                    return false;
            }
        }
        if (h > 23 || mi > 59 || s > 59)
            return false;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, oh, om;
            if ((oh = digits(&p, 2)) < 0)
                return false;
            if (*p == ':')
                p++;
            if ((om = digits(&p, 2)) < 0 || oh > 23 || om > 59)
                return false;
            off_min = sign * (oh * 60 + om);
        }
        if (*p)
            return false;
    }
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - (int64_t)off_min * 60;
    *ms = secs * 1000 + frac_ms;
    return true;
}
