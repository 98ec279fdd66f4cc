//  tl_time.c — RFC 3339 times in and out.
#include "tl_time.h"
#include "tl_error.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

//  Reads exactly `width` digits into *value.
static bool
s_digits (const char **p, int width, int *value)
{
    *value = 0;
    for (int i = 0; i < width; i++) {
        char c = (*p) [i];
        if (c < '0' || c > '9')
            return false;
        *value = *value * 10 + (c - '0');
    }
    *p += width;
    return true;
}

int
tl_time_parse (const char *text, int64_t *ms)
{
    assert (ms);
    if (!text)
        return TL_EINVAL;
    const char *p = text;
    int year, month, day, hour, minute, second = 0, millis = 0;
    if (!s_digits (&p, 4, &year) || *p++ != '-' || !s_digits (&p, 2, &month)
    ||  *p++ != '-' || !s_digits (&p, 2, &day))
        return TL_EINVAL;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return TL_EINVAL;
    p++;
    if (!s_digits (&p, 2, &hour) || *p++ != ':' || !s_digits (&p, 2, &minute))
        return TL_EINVAL;
    if (*p == ':') {
        p++;
        if (!s_digits (&p, 2, &second))
            return TL_EINVAL;
        if (*p == '.') {
            p++;
            int scale = 100;
            if (*p < '0' || *p > '9')
                return TL_EINVAL;
            for (; *p >= '0' && *p <= '9'; p++, scale /= 10)
                millis += (*p - '0') * scale;
        }
    }
    int offset = 0;                     //  minutes east of UTC
    if (*p == 'Z' || *p == 'z')
        p++;
    else
    if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1;
        int oh, om;
        if (!s_digits (&p, 2, &oh) || *p++ != ':' || !s_digits (&p, 2, &om)
        ||  oh > 23 || om > 59)
            return TL_EINVAL;
        offset = sign * (oh * 60 + om);
    }
    else
        return TL_EINVAL;               //  RFC 3339 needs an offset
    if (*p || year < 1970 || month < 1 || month > 12 || day < 1 || day > 31
    ||  hour > 23 || minute > 59 || second > 60)
        return TL_EINVAL;
    struct tm tm = { .tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = day,
                     .tm_hour = hour, .tm_min = minute, .tm_sec = second == 60 ? 59 : second };
    time_t seconds = timegm (&tm);
    if (tm.tm_mday != day)              //  normalised: no such day
        return TL_EINVAL;
    int64_t value = ((int64_t) seconds - (int64_t) offset * 60) * 1000 + millis;
    if (value <= 0)
        return TL_EINVAL;
    *ms = value;
    return 0;
}

void
tl_time_format (int64_t ms, char *text, size_t size)
{
    time_t seconds = (time_t) (ms / 1000);
    struct tm tm;
    gmtime_r (&seconds, &tm);
    strftime (text, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

//  The civil date of `days` since 1970-01-01 (H. Hinnant's
//  civil_from_days: exact for every proleptic Gregorian date).
static void
s_civil (int64_t days, int64_t *year, unsigned *month, unsigned *day)
{
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    unsigned doe = (unsigned) (days - era * 146097);                    //  0..146096
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);             //  0..365
    unsigned mp = (5 * doy + 2) / 153;
    *day = doy - (153 * mp + 2) / 5 + 1;
    *month = mp < 10 ? mp + 3 : mp - 9;
    *year = (int64_t) yoe + era * 400 + (*month <= 2);
}

//  Writes `value` as exactly `width` decimal digits (zeros in front) at
//  `out`; returns the end.
static char *
s_put_digits (char *out, unsigned value, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        out [i] = (char) ('0' + value % 10);
        value /= 10;
    }
    return out + width;
}

void
tl_time_format_us (int64_t us, bool micros, char text [TL_TIME_US_TEXT_SIZE])
{
    int64_t seconds = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
    int64_t fraction = us - seconds * 1000000;                          //  0..999999
    int64_t days = seconds >= 0 ? seconds / 86400 : -((-seconds + 86399) / 86400);
    int64_t in_day = seconds - days * 86400;
    int64_t year;
    unsigned month, day;
    s_civil (days, &year, &month, &day);
    if (year < 0 || year > 9999) {      //  past any the API has: printf's way
        int n = snprintf (text, TL_TIME_US_TEXT_SIZE, "%04lld-%02u-%02uT%02d:%02d:%02d",
                          (long long) year, month, day, (int) (in_day / 3600),
                          (int) (in_day / 60 % 60), (int) (in_day % 60));
        if (n > 0 && n < TL_TIME_US_TEXT_SIZE - 9)
            snprintf (text + n, TL_TIME_US_TEXT_SIZE - (size_t) n, "Z");
        return;
    }
    //  The digits by hand: a page of logs formats two times a row, and
    //  printf's machinery cost more than the rest of the row
    char *c = s_put_digits (text, (unsigned) year, 4);
    *c++ = '-';
    c = s_put_digits (c, month, 2);
    *c++ = '-';
    c = s_put_digits (c, day, 2);
    *c++ = 'T';
    c = s_put_digits (c, (unsigned) (in_day / 3600), 2);
    *c++ = ':';
    c = s_put_digits (c, (unsigned) (in_day / 60 % 60), 2);
    *c++ = ':';
    c = s_put_digits (c, (unsigned) (in_day % 60), 2);
    if (micros || fraction) {
        *c++ = '.';
        c = micros ? s_put_digits (c, (unsigned) fraction, 6) : s_put_digits (c, (unsigned) (fraction / 1000), 3);
    }
    *c++ = 'Z';
    *c = 0;
}

void
tl_time_sql_ms (int64_t ms, char text [32])
{
    if (ms == INT64_MIN)
        strcpy (text, "-infinity");
    else
    if (ms == INT64_MAX)
        strcpy (text, "infinity");
    else
        snprintf (text, 32, "%lld", (long long) ms);
}

void
tl_time_test (bool verbose)
{
    int64_t t = 0;
    char sql [32];
    tl_time_sql_ms (INT64_MIN, sql);
    assert (strcmp (sql, "-infinity") == 0);
    tl_time_sql_ms (INT64_MAX, sql);
    assert (strcmp (sql, "infinity") == 0);
    tl_time_sql_ms (-1234, sql);
    assert (strcmp (sql, "-1234") == 0);
    assert (tl_time_parse ("2026-12-01T00:00Z", &t) == 0 && t == 1796083200000);
    assert (tl_time_parse ("2026-12-01T00:00:00Z", &t) == 0 && t == 1796083200000);
    assert (tl_time_parse ("2026-12-01T01:30:00+01:30", &t) == 0 && t == 1796083200000);
    assert (tl_time_parse ("2026-11-30T23:00:00-01:00", &t) == 0 && t == 1796083200000);
    assert (tl_time_parse ("2026-12-01t00:00:00.25z", &t) == 0 && t == 1796083200250);
    const char *bad_times [] = {
        "2026-12-01", "2026-12-01T00:00", "2026-13-01T00:00Z", "2026-02-29T00:00Z",
        "2026-12-01T24:00Z", "2026-12-01T00:00Zjunk", "2026-12-01T00:00:00.Z",
        "1969-12-31T00:00Z", "x", "", "2026-12-01T00:00+1:00", NULL
    };
    for (int i = 0; bad_times [i]; i++)
        assert (tl_time_parse (bad_times [i], &t) == TL_EINVAL);
    assert (tl_time_parse ("2028-02-29T00:00Z", &t) == 0);    //  leap year
    //  Out and back in
    char text [TL_TIME_TEXT_SIZE];
    tl_time_format (1796083200250, text, sizeof text);
    assert (strcmp (text, "2026-12-01T00:00:00Z") == 0);
    assert (tl_time_parse (text, &t) == 0 && t == 1796083200000);
    //  Microseconds out: API times (ms only when any) and cursors (all six)
    char us_text [TL_TIME_US_TEXT_SIZE];
    tl_time_format_us (1796083200000000, false, us_text);
    assert (strcmp (us_text, "2026-12-01T00:00:00Z") == 0);
    tl_time_format_us (1796083200250999, false, us_text);
    assert (strcmp (us_text, "2026-12-01T00:00:00.250Z") == 0);
    tl_time_format_us (1796083200000500, false, us_text);     //  as rfc3339 () in SQL
    assert (strcmp (us_text, "2026-12-01T00:00:00.000Z") == 0);
    tl_time_format_us (1796083200000500, true, us_text);
    assert (strcmp (us_text, "2026-12-01T00:00:00.000500Z") == 0);
    tl_time_format_us (0, true, us_text);
    assert (strcmp (us_text, "1970-01-01T00:00:00.000000Z") == 0);
    tl_time_format_us (951782399999999, false, us_text);       //  leap day, last µs
    assert (strcmp (us_text, "2000-02-28T23:59:59.999Z") == 0);
    tl_time_format_us (951868799000000, false, us_text);
    assert (strcmp (us_text, "2000-02-29T23:59:59Z") == 0);
    tl_time_format_us (253402300799000000, false, us_text);
    assert (strcmp (us_text, "9999-12-31T23:59:59Z") == 0);
    tl_time_format_us (-1, true, us_text);
    assert (strcmp (us_text, "1969-12-31T23:59:59.999999Z") == 0);
    //  Every day of 1970..2100 agrees with gmtime, at a varying second
    for (int64_t day = 0; day < 47482; day++) {
        int64_t second = day * 86400 + (day * 7919) % 86400;
        time_t t_seconds = (time_t) second;
        struct tm tm;
        gmtime_r (&t_seconds, &tm);
        char want [TL_TIME_US_TEXT_SIZE];
        strftime (want, sizeof want, "%Y-%m-%dT%H:%M:%SZ", &tm);
        tl_time_format_us (second * 1000000, false, us_text);
        assert (strcmp (us_text, want) == 0);
    }
    if (verbose)
        printf ("(time ok) ");
}
