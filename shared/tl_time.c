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
    if (verbose)
        printf ("(time ok) ");
}
