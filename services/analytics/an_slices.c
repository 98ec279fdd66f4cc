//  an_slices.c — time slices of a statistic (see an_slices.h). Calendar
//  arithmetic in UTC (gmtime_r, timegm); no time zone database, no wall
//  clock.
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "an_slices.h"
#include "tl_error.h"
#include "tl_time.h"

#define S_DAY_MS    86400000LL

static const struct { const char *name; int64_t ms; } s_units [] = {
    [AN_SLICE_YEAR] = { "year", 0 },          [AN_SLICE_MONTH] = { "month", 0 },
    [AN_SLICE_WEEK] = { "week", 7 * S_DAY_MS }, [AN_SLICE_DAY] = { "day", S_DAY_MS },
    [AN_SLICE_HOUR] = { "hour", 3600000 },    [AN_SLICE_MINUTE] = { "minute", 60000 },
};

int
an_slices_unit (const char *name, an_slice_unit_t *unit)
{
    for (int i = 0; name && i <= AN_SLICE_MINUTE; i++)
        if (strcmp (name, s_units [i].name) == 0) {
            *unit = (an_slice_unit_t) i;
            return 0;
        }
    return TL_EINVAL;
}

static int64_t
s_floor_div (int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

int
an_slices_date (const char *text, int64_t *ms)
{
    if (!text)
        return TL_EINVAL;
    if (strlen (text) == 10) {
        char full [32];
        snprintf (full, sizeof full, "%sT00:00:00Z", text);
        return tl_time_parse (full, ms) == 0 ? 0 : TL_EINVAL;
    }
    return tl_time_parse (text, ms) == 0 ? 0 : TL_EINVAL;
}

//  The calendar boundary after `ms` (static slices).
static int64_t
s_next_calendar (int64_t ms, an_slice_unit_t unit)
{
    if (unit == AN_SLICE_YEAR || unit == AN_SLICE_MONTH) {
        time_t secs = (time_t) s_floor_div (ms, 1000);
        struct tm tm, next = { .tm_mday = 1 };
        gmtime_r (&secs, &tm);
        next.tm_year = unit == AN_SLICE_YEAR ? tm.tm_year + 1 : tm.tm_year;
        next.tm_mon = unit == AN_SLICE_YEAR ? 0 : tm.tm_mon + 1;     //  timegm carries 12
        return (int64_t) timegm (&next) * 1000;
    }
    int64_t len = s_units [unit].ms;
    //  Weeks start on Monday: 1970-01-05 was one
    int64_t origin = unit == AN_SLICE_WEEK ? 4 * S_DAY_MS : 0;
    return (s_floor_div (ms - origin, len) + 1) * len + origin;
}

long
an_slices_bounds (int64_t start_ms, int64_t end_ms, an_slice_unit_t unit, bool is_static,
                  int64_t *bounds, long max)
{
    if (start_ms >= end_ms)
        return TL_EINVAL;
    if (!is_static && (unit == AN_SLICE_YEAR || unit == AN_SLICE_MONTH))
        return TL_EINVAL;
    long n = 0;
    bounds [0] = start_ms;
    int64_t at = start_ms;
    while (at < end_ms) {
        if (n >= max)
            return TL_ETOOBIG;
        int64_t next = is_static ? s_next_calendar (at, unit) : at + s_units [unit].ms;
        at = next < end_ms ? next : end_ms;
        bounds [++n] = at;
    }
    return n;
}

//  --------------------------------------------------------------------------
//  Self-test

static int64_t
s_ms (const char *text)
{
    int64_t ms;
    assert (an_slices_date (text, &ms) == 0);
    return ms;
}

void
an_slices_test (bool verbose)
{
    (void) verbose;
    an_slice_unit_t unit;
    assert (an_slices_unit ("week", &unit) == 0 && unit == AN_SLICE_WEEK);
    assert (an_slices_unit ("fortnight", &unit) == TL_EINVAL);
    assert (an_slices_unit (NULL, &unit) == TL_EINVAL);
    int64_t ms;
    assert (an_slices_date ("2024-02-30", &ms) == TL_EINVAL);
    assert (an_slices_date ("2024-02-29", &ms) == 0 && ms == 1709164800000);
    assert (an_slices_date ("2024-02-29T01:00:00+01:00", &ms) == 0 && ms == 1709164800000);
    assert (an_slices_date ("yesterday", &ms) == TL_EINVAL);

    int64_t b [16];
    //  Static months from the middle of one: clipped at both ends
    long n = an_slices_bounds (s_ms ("2024-01-15"), s_ms ("2024-04-02"), AN_SLICE_MONTH,
                               true, b, 15);
    assert (n == 4);
    assert (b [0] == s_ms ("2024-01-15") && b [1] == s_ms ("2024-02-01"));
    assert (b [2] == s_ms ("2024-03-01") && b [3] == s_ms ("2024-04-01"));
    assert (b [4] == s_ms ("2024-04-02"));
    //  December into January, years
    n = an_slices_bounds (s_ms ("2023-12-31"), s_ms ("2025-01-01"), AN_SLICE_YEAR, true, b, 15);
    assert (n == 2 && b [1] == s_ms ("2024-01-01") && b [2] == s_ms ("2025-01-01"));
    n = an_slices_bounds (s_ms ("2023-12-02"), s_ms ("2024-01-03"), AN_SLICE_MONTH, true, b, 15);
    assert (n == 2 && b [1] == s_ms ("2024-01-01"));
    //  Static weeks start on Monday (2024-01-01 was one)
    n = an_slices_bounds (s_ms ("2023-12-28"), s_ms ("2024-01-10"), AN_SLICE_WEEK, true, b, 15);
    assert (n == 3 && b [1] == s_ms ("2024-01-01") && b [2] == s_ms ("2024-01-08"));
    //  Dynamic weeks step from the start
    n = an_slices_bounds (s_ms ("2023-12-28"), s_ms ("2024-01-10"), AN_SLICE_WEEK, false, b, 15);
    assert (n == 2 && b [1] == s_ms ("2024-01-04") && b [2] == s_ms ("2024-01-10"));
    //  Hours, aligned and not
    n = an_slices_bounds (s_ms ("2024-01-01T10:30:00Z"), s_ms ("2024-01-01T12:00:00Z"),
                          AN_SLICE_HOUR, true, b, 15);
    assert (n == 2 && b [1] == s_ms ("2024-01-01T11:00:00Z"));
    n = an_slices_bounds (s_ms ("2024-01-01T10:30:00Z"), s_ms ("2024-01-01T12:00:00Z"),
                          AN_SLICE_HOUR, false, b, 15);
    assert (n == 2 && b [1] == s_ms ("2024-01-01T11:30:00Z"));
    //  Refusals: dynamic months and years, too many slices, empty ranges
    assert (an_slices_bounds (0, S_DAY_MS, AN_SLICE_MONTH, false, b, 15) == TL_EINVAL);
    assert (an_slices_bounds (0, S_DAY_MS, AN_SLICE_YEAR, false, b, 15) == TL_EINVAL);
    assert (an_slices_bounds (0, S_DAY_MS, AN_SLICE_HOUR, true, b, 15) == TL_ETOOBIG);
    assert (an_slices_bounds (S_DAY_MS, S_DAY_MS, AN_SLICE_HOUR, true, b, 15) == TL_EINVAL);
    int64_t day [25];
    assert (an_slices_bounds (0, S_DAY_MS, AN_SLICE_HOUR, true, day, 23) == TL_ETOOBIG);
    assert (an_slices_bounds (0, S_DAY_MS, AN_SLICE_HOUR, true, day, 24) == 24);
}
