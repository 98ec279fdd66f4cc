//  an_store_tz.c — TZif files (RFC 8536) and their POSIX TZ footers, read
//  into one sorted table of transitions (an_store_tz.h).
#include "an_store_tz.h"
#include "tl_error.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_OFFSET    93599           //  RFC 8536: -89999 .. 93599 seconds
#define S_MIN_OFFSET    (-89999)
#define S_SEARCH        (26L * 3600)    //  a local time is within this of UTC

struct _an_store_tz_t {
    int32_t first;                      //  offset before the first transition
    size_t count;
    int64_t at [AN_TZ_MAX_TRANSITIONS]; //  instants, ascending
    int32_t off [AN_TZ_MAX_TRANSITIONS];//  offset from each instant on
};

//  A POSIX TZ rule's date: Jn, n or Mm.w.d, and the local time of day.
typedef struct {
    char kind;                          //  'J', 'n' or 'M'
    int n, m, w, d;
    int32_t time;
} s_rule_t;

int64_t
an_store_tz_days (int64_t y, int m, int d)
{
    //  Howard Hinnant's days_from_civil
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void
an_store_tz_civil (int64_t days, int64_t *y, int *m, int *d)
{
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    int64_t doe = days - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int) (doy - (153 * mp + 2) / 5 + 1);
    *m = (int) (mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

bool
an_store_tz_name_ok (const char *name)
{
    size_t size = name ? strlen (name) : 0;
    if (size == 0 || size > AN_TZ_MAX_NAME)
        return false;
    bool segment_start = true;
    for (const char *c = name; *c; c++) {
        if (*c == '/') {
            if (segment_start)
                return false;           //  a leading '/' or "//"
            segment_start = true;
            continue;
        }
        if (segment_start && (*c == '.' || *c == '-'))
            return false;
        if (!(isalnum ((unsigned char) *c) || *c == '_' || *c == '+' || *c == '-'))
            return false;
        segment_start = false;
    }
    return !segment_start;
}

//  --- Reading a TZif file ------------------------------------------------

static uint32_t
s_be32 (const unsigned char *p)
{
    return (uint32_t) p [0] << 24 | (uint32_t) p [1] << 16 | (uint32_t) p [2] << 8 | p [3];
}

static int64_t
s_be64 (const unsigned char *p)
{
    return (int64_t) ((uint64_t) s_be32 (p) << 32 | s_be32 (p + 4));
}

//  Parses [+-]hh[:mm[:ss]] (hours up to 167) at *p into seconds.
static bool
s_parse_time (const char **p, int32_t *seconds)
{
    int sign = 1;
    if (**p == '+' || **p == '-')
        sign = *(*p)++ == '-' ? -1 : 1;
    int32_t parts [3] = { 0, 0, 0 };
    for (int i = 0; i < 3; i++) {
        if (!isdigit ((unsigned char) **p))
            return false;
        int value = 0, digits = 0;
        while (isdigit ((unsigned char) **p) && digits < 3) {
            value = value * 10 + (*(*p)++ - '0');
            digits++;
        }
        parts [i] = value;
        if (**p != ':' || i == 2)
            break;
        (*p)++;
    }
    if (parts [0] > 167 || parts [1] > 59 || parts [2] > 59)
        return false;
    *seconds = sign * (parts [0] * 3600 + parts [1] * 60 + parts [2]);
    return true;
}

//  Skips a zone abbreviation: <...> or at least three letters.
static bool
s_parse_name (const char **p)
{
    const char *start = *p;
    if (**p == '<') {
        const char *end = strchr (*p, '>');
        if (!end || end - start < 4)
            return false;
        *p = end + 1;
        return true;
    }
    while (isalpha ((unsigned char) **p))
        (*p)++;
    return *p - start >= 3;
}

//  Parses a POSIX TZ date rule at *p (Jn, n or Mm.w.d, then an optional
//  /time, default 02:00) into *rule. Returns false when malformed.
static bool
s_parse_rule (const char **p, s_rule_t *rule)
{
    memset (rule, 0, sizeof *rule);
    rule->time = 7200;
    if (**p == 'M') {
        rule->kind = 'M';
        (*p)++;
        if (sscanf (*p, "%d.%d.%d", &rule->m, &rule->w, &rule->d) != 3
        ||  rule->m < 1 || rule->m > 12 || rule->w < 1 || rule->w > 5
        ||  rule->d < 0 || rule->d > 6)
            return false;
        while (isdigit ((unsigned char) **p) || **p == '.')
            (*p)++;
    }
    else {
        rule->kind = **p == 'J' ? 'J' : 'n';
        if (**p == 'J')
            (*p)++;
        if (!isdigit ((unsigned char) **p))
            return false;
        rule->n = (int) strtol (*p, (char **) p, 10);
        if (rule->n > 365 || (rule->kind == 'J' && rule->n < 1))
            return false;
    }
    if (**p == '/') {
        (*p)++;
        if (!s_parse_time (p, &rule->time))
            return false;
    }
    return true;
}

static bool
s_leap (int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

//  The local day (since the epoch) of `rule` in year `y`.
static int64_t
s_rule_day (const s_rule_t *rule, int64_t y)
{
    int64_t jan1 = an_store_tz_days (y, 1, 1);
    if (rule->kind == 'J')
        return jan1 + rule->n - 1 + (s_leap (y) && rule->n >= 60);
    if (rule->kind == 'n')
        return jan1 + rule->n;
    static const int month_days [12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int64_t first = an_store_tz_days (y, rule->m, 1);
    int64_t weekday = ((first + 4) % 7 + 7) % 7;            //  Sunday 0
    int64_t day = first + (rule->d - weekday + 7) % 7 + 7 * (rule->w - 1);
    int length = month_days [rule->m - 1] + (rule->m == 2 && s_leap (y));
    while (day >= first + length)
        day -= 7;
    return day;
}

static int
s_cmp_transition (const void *a, const void *b)
{
    const int64_t *x = (const int64_t *) a, *y = (const int64_t *) b;
    return (*x > *y) - (*x < *y);
}

//  Adds transitions of footer `tz` after the last one, up to
//  AN_TZ_LAST_YEAR. Returns 0 or TL_EINVAL / TL_ETOOBIG.
static int
s_footer (an_store_tz_t *self, const char *tz)
{
    const char *p = tz;
    int32_t std, dst;
    if (!s_parse_name (&p) || !s_parse_time (&p, &std))
        return TL_EINVAL;
    std = -std;                         //  POSIX offsets count west
    if (*p == 0) {
        if (self->count == 0)
            self->first = std;
        return 0;
    }
    if (!s_parse_name (&p))
        return TL_EINVAL;
    dst = std + 3600;
    if (*p != ',' && *p) {
        if (!s_parse_time (&p, &dst))
            return TL_EINVAL;
        dst = -dst;
    }
    s_rule_t start, end;
    if (*p++ != ',' || !s_parse_rule (&p, &start) || *p++ != ',' || !s_parse_rule (&p, &end)
    ||  *p)
        return TL_EINVAL;
    int64_t last = self->count ? self->at [self->count - 1] : INT64_MIN;
    int64_t y, year = 1970;
    int m, d;
    if (self->count) {
        an_store_tz_civil (last / 86400 - 1, &y, &m, &d);
        year = y;
    }
    //  Pairs (instant, offset) gathered, then sorted in place
    int64_t (*pairs) [2] = (int64_t (*) [2]) malloc (2 * sizeof (int64_t [2])
                                                 * (size_t) (AN_TZ_LAST_YEAR - year + 2));
    if (!pairs)
        return TL_ENOMEM;
    size_t n = 0;
    for (y = year; y <= AN_TZ_LAST_YEAR; y++) {
        int64_t on = s_rule_day (&start, y) * 86400 + start.time - std;
        int64_t off = s_rule_day (&end, y) * 86400 + end.time - dst;
        if (on > last) {
            pairs [n] [0] = on;
            pairs [n++] [1] = dst;
        }
        if (off > last) {
            pairs [n] [0] = off;
            pairs [n++] [1] = std;
        }
    }
    qsort (pairs, n, sizeof pairs [0], s_cmp_transition);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (self->count >= AN_TZ_MAX_TRANSITIONS)
            rc = TL_ETOOBIG;
        else
        if (self->count == 0 || pairs [i] [0] > self->at [self->count - 1]) {
            self->at [self->count] = pairs [i] [0];
            self->off [self->count++] = (int32_t) pairs [i] [1];
        }
    }
    free (pairs);
    return rc;
}

//  Reads a TZif file of version 2 or later (`size` bytes at `data`): its
//  64-bit transitions, then its footer's rule. Returns 0 or TL_EINVAL
//  (not TZif, leap seconds, out of bounds) / TL_ETOOBIG / TL_ENOMEM.
static int
s_parse (an_store_tz_t *self, const unsigned char *data, size_t size)
{
    if (size < 44 || memcmp (data, "TZif", 4) != 0 || data [4] < '2')
        return TL_EINVAL;
    //  Skip the version 1 block (32-bit times) to the second header
    uint64_t c [6];
    for (int i = 0; i < 6; i++)
        c [i] = s_be32 (data + 20 + 4 * i);
    uint64_t v1 = c [3] * 5 + c [4] * 6 + c [5] + c [2] * 8 + c [1] + c [0];
    if (v1 > size || 44 + v1 + 44 > size)
        return TL_EINVAL;
    const unsigned char *h = data + 44 + v1, *end = data + size;
    if (memcmp (h, "TZif", 4) != 0)
        return TL_EINVAL;
    for (int i = 0; i < 6; i++)
        c [i] = s_be32 (h + 20 + 4 * i);
    uint64_t isut = c [0], isstd = c [1], leap = c [2], timecnt = c [3], typecnt = c [4],
             charcnt = c [5];
    if (leap || typecnt == 0 || typecnt > 256 || timecnt > AN_TZ_MAX_TRANSITIONS)
        return TL_EINVAL;
    uint64_t block = timecnt * 9 + typecnt * 6 + charcnt + isstd + isut;
    const unsigned char *p = h + 44;
    if (block > (uint64_t) (end - p))
        return TL_EINVAL;
    const unsigned char *times = p, *index = p + timecnt * 8, *types = index + timecnt;
    int32_t offsets [256];
    for (uint64_t i = 0; i < typecnt; i++) {
        offsets [i] = (int32_t) s_be32 (types + 6 * i);
        if (offsets [i] < S_MIN_OFFSET || offsets [i] > S_MAX_OFFSET)
            return TL_EINVAL;
    }
    self->first = offsets [0];
    for (uint64_t i = 0; i < timecnt; i++) {
        int64_t at = s_be64 (times + 8 * i);
        if (index [i] >= typecnt || (i > 0 && at <= self->at [i - 1]))
            return TL_EINVAL;
        self->at [i] = at;
        self->off [i] = offsets [index [i]];
    }
    self->count = (size_t) timecnt;
    //  The footer: "\n<POSIX TZ>\n", possibly empty
    p += block;
    if (p < end) {
        if (*p != '\n' || end - p < 2 || end [-1] != '\n')
            return TL_EINVAL;
        size_t length = (size_t) (end - p) - 2;
        char footer [128];
        if (length >= sizeof footer)
            return TL_EINVAL;
        memcpy (footer, p + 1, length);
        footer [length] = 0;
        if (length && memchr (footer, '\n', length))
            return TL_EINVAL;
        if (length)
            return s_footer (self, footer);
    }
    return 0;
}

an_store_tz_t *
an_store_tz_new_from (const void *data, size_t size)
{
    an_store_tz_t *self = (an_store_tz_t *) calloc (1, sizeof *self);
    if (self && s_parse (self, (const unsigned char *) data, size) != 0)
        an_store_tz_destroy (&self);
    return self;
}

an_store_tz_t *
an_store_tz_new (const char *name)
{
    if (!an_store_tz_name_ok (name))
        return NULL;
    const char *dir = getenv ("TZDIR");
    char path [512];
    snprintf (path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
    FILE *file = fopen (path, "rb");
    if (!file)
        return NULL;
    unsigned char *data = (unsigned char *) malloc (AN_TZ_MAX_FILE + 1);
    size_t size = data ? fread (data, 1, AN_TZ_MAX_FILE + 1, file) : 0;
    fclose (file);
    an_store_tz_t *self = size > 0 && size <= AN_TZ_MAX_FILE
                        ? an_store_tz_new_from (data, size) : NULL;
    free (data);
    return self;
}

void
an_store_tz_destroy (an_store_tz_t **self_p)
{
    if (self_p && *self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

//  --- Questions ------------------------------------------------------------

//  The index of the last transition at or before `utc_s`, or -1.
static long
s_find (const an_store_tz_t *self, int64_t utc_s)
{
    long low = 0, high = (long) self->count - 1, found = -1;
    while (low <= high) {
        long mid = low + (high - low) / 2;
        if (self->at [mid] <= utc_s) {
            found = mid;
            low = mid + 1;
        }
        else
            high = mid - 1;
    }
    return found;
}

int32_t
an_store_tz_offset (const an_store_tz_t *self, int64_t utc_s)
{
    assert (self);
    long i = s_find (self, utc_s);
    return i < 0 ? self->first : self->off [i];
}

int64_t
an_store_tz_utc (const an_store_tz_t *self, int64_t local_s)
{
    assert (self);
    //  Every offset in force near the local time is a candidate; the
    //  valid ones map back to it, and the earliest is the first occurrence
    long i = s_find (self, local_s - S_SEARCH);
    int64_t best = INT64_MAX;
    for (;; i++) {
        int32_t off = i < 0 ? self->first : self->off [i];
        int64_t utc = local_s - off;
        if (an_store_tz_offset (self, utc) == off && utc < best)
            best = utc;
        if (i + 1 >= (long) self->count || self->at [i + 1] > local_s + S_SEARCH)
            break;
    }
    if (best != INT64_MAX)
        return best;
    //  In a gap: the transition whose wall clock jumps over it
    for (i = s_find (self, local_s - S_SEARCH) + 1; i < (long) self->count; i++) {
        int32_t before = i > 0 ? self->off [i - 1] : self->first;
        if (self->at [i] + before <= local_s && local_s < self->at [i] + self->off [i])
            return self->at [i];
        if (self->at [i] > local_s + S_SEARCH)
            break;
    }
    return local_s - an_store_tz_offset (self, local_s);
}

//  --------------------------------------------------------------------------
//  Self-test

static int64_t
s_local (int64_t y, int m, int d, int hh, int mm)
{
    return an_store_tz_days (y, m, d) * 86400 + hh * 3600 + mm * 60;
}

void
an_store_tz_test (bool verbose)
{
    printf (" * an_store_tz: ");
    if (verbose)
        printf ("\n");
    //  Dates
    int64_t y;
    int m, d;
    assert (an_store_tz_days (1970, 1, 1) == 0);
    assert (an_store_tz_days (2000, 3, 1) == 11017);
    an_store_tz_civil (11017, &y, &m, &d);
    assert (y == 2000 && m == 3 && d == 1);
    an_store_tz_civil (-1, &y, &m, &d);
    assert (y == 1969 && m == 12 && d == 31);

    //  Names
    assert (an_store_tz_name_ok ("America/New_York"));
    assert (an_store_tz_name_ok ("Etc/GMT+5"));
    assert (!an_store_tz_name_ok (""));
    assert (!an_store_tz_name_ok ("../etc/passwd"));
    assert (!an_store_tz_name_ok ("America/../../etc"));
    assert (!an_store_tz_name_ok ("/etc/passwd"));
    assert (!an_store_tz_name_ok ("America//New_York"));
    assert (!an_store_tz_name_ok ("America/"));
    assert (!an_store_tz_name_ok ("zone.tab"));
    assert (!an_store_tz_new ("Mars/Olympus_Mons"));
    assert (!an_store_tz_new ("zone1970.tab"));
    assert (!an_store_tz_new_from ("TZif2", 5));

    //  New York: EST -5, EDT -4; 2025-03-09 02:00 -> 03:00, 2025-11-02 02:00 -> 01:00
    an_store_tz_t *ny = an_store_tz_new ("America/New_York");
    assert (ny);
    assert (an_store_tz_offset (ny, s_local (2025, 1, 15, 12, 0)) == -5 * 3600);
    assert (an_store_tz_offset (ny, s_local (2025, 7, 15, 12, 0)) == -4 * 3600);
    //  Plain times
    assert (an_store_tz_utc (ny, s_local (2025, 1, 15, 9, 0)) == s_local (2025, 1, 15, 14, 0));
    assert (an_store_tz_utc (ny, s_local (2025, 7, 15, 9, 0)) == s_local (2025, 7, 15, 13, 0));
    //  In the gap: 02:30 does not exist, the first instant after is 03:00 EDT = 07:00Z
    assert (an_store_tz_utc (ny, s_local (2025, 3, 9, 2, 30)) == s_local (2025, 3, 9, 7, 0));
    assert (an_store_tz_utc (ny, s_local (2025, 3, 9, 2, 0)) == s_local (2025, 3, 9, 7, 0));
    assert (an_store_tz_utc (ny, s_local (2025, 3, 9, 3, 0)) == s_local (2025, 3, 9, 7, 0));
    assert (an_store_tz_utc (ny, s_local (2025, 3, 9, 1, 59)) == s_local (2025, 3, 9, 6, 59));
    //  In the overlap: 01:30 happens twice, first as EDT = 05:30Z
    assert (an_store_tz_utc (ny, s_local (2025, 11, 2, 1, 30)) == s_local (2025, 11, 2, 5, 30));
    assert (an_store_tz_utc (ny, s_local (2025, 11, 2, 2, 0)) == s_local (2025, 11, 2, 7, 0));
    //  Past the file's explicit transitions: the footer's rule (2100:
    //  second Sunday of March is the 14th, first Sunday of November the 7th)
    assert (an_store_tz_offset (ny, s_local (2100, 7, 1, 12, 0)) == -4 * 3600);
    assert (an_store_tz_offset (ny, s_local (2100, 12, 1, 12, 0)) == -5 * 3600);
    assert (an_store_tz_utc (ny, s_local (2100, 3, 14, 2, 30)) == s_local (2100, 3, 14, 7, 0));
    assert (an_store_tz_utc (ny, s_local (2100, 11, 7, 1, 30)) == s_local (2100, 11, 7, 5, 30));
    an_store_tz_destroy (&ny);
    an_store_tz_destroy (&ny);

    //  Kolkata: +05:30, no daylight saving since 1945
    an_store_tz_t *kolkata = an_store_tz_new ("Asia/Kolkata");
    assert (kolkata);
    assert (an_store_tz_offset (kolkata, s_local (2025, 6, 1, 0, 0)) == 19800);
    assert (an_store_tz_utc (kolkata, s_local (2025, 6, 1, 9, 0)) == s_local (2025, 6, 1, 3, 30));
    an_store_tz_destroy (&kolkata);

    //  Lord Howe: a 30-minute change (+10:30 standard, +11 summer), first
    //  Sunday of April 02:00 -> 01:30 (2025-04-06) and of October 02:00 ->
    //  02:30 (2025-10-05)
    an_store_tz_t *howe = an_store_tz_new ("Australia/Lord_Howe");
    assert (howe);
    assert (an_store_tz_offset (howe, s_local (2025, 6, 1, 0, 0)) == 37800);
    assert (an_store_tz_offset (howe, s_local (2025, 1, 1, 0, 0)) == 39600);
    //  02:15 on 2025-10-05 is in the gap: first instant after is 02:30 (+11) = 15:30Z the day before
    assert (an_store_tz_utc (howe, s_local (2025, 10, 5, 2, 15)) == s_local (2025, 10, 4, 15, 30));
    //  01:45 on 2025-04-06 happens twice: first at +11 = 14:45Z the day before
    assert (an_store_tz_utc (howe, s_local (2025, 4, 6, 1, 45)) == s_local (2025, 4, 5, 14, 45));
    an_store_tz_destroy (&howe);
    printf ("OK\n");
}
