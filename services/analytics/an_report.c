//  an_report.c — business time as UTC intervals, and the polls' step
//  function walked over it (an_report.h).
#include "an_report.h"
#include "tl_error.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_US            1000000LL
#define S_DAY_S         86400LL
//  Local days a week's business hours can come from: the week's 7 or 8
//  dates, the day before (a row past midnight) and one more at each end
//  for offsets
#define S_DAYS          11

static const int64_t s_window_us [3] = { 3600 * S_US, 86400 * S_US, 7 * 86400 * S_US };

typedef struct {
    int64_t from, to;                   //  [from, to) in microseconds
} s_span_t;

struct _an_report_t {
    s_span_t *spans;                    //  business time in the week
    size_t nspans, capacity;
};

an_report_t *
an_report_new (void)
{
    an_report_t *self = (an_report_t *) calloc (1, sizeof *self);
    if (self) {
        self->capacity = (size_t) S_DAYS * 8;
        self->spans = (s_span_t *) malloc (self->capacity * sizeof *self->spans);
        if (!self->spans)
            an_report_destroy (&self);
    }
    return self;
}

void
an_report_destroy (an_report_t **self_p)
{
    if (self_p && *self_p) {
        free ((*self_p)->spans);
        free (*self_p);
        *self_p = NULL;
    }
}

static int
s_span_cmp (const void *a, const void *b)
{
    const s_span_t *x = (const s_span_t *) a, *y = (const s_span_t *) b;
    return (x->from > y->from) - (x->from < y->from);
}

//  Adds [from, to) clipped to [lo, hi) when not empty.
static int
s_add (an_report_t *self, int64_t from, int64_t to, int64_t lo, int64_t hi)
{
    from = from < lo ? lo : from;
    to = to > hi ? hi : to;
    if (from >= to)
        return 0;
    if (self->nspans == self->capacity) {
        size_t capacity = self->capacity * 2;
        s_span_t *spans = (s_span_t *) realloc (self->spans, capacity * sizeof *spans);
        if (!spans)
            return TL_ENOMEM;
        self->spans = spans;
        self->capacity = capacity;
    }
    self->spans [self->nspans++] = (s_span_t) { from, to };
    return 0;
}

//  The store's business time in [lo, hi) as sorted, disjoint spans: each
//  row on each local date near the week, placed in UTC by the zone, then
//  unioned.
static int
s_business (an_report_t *self, const an_store_tz_t *tz, const an_report_hours_t *hours,
            size_t nhours, int64_t lo, int64_t hi)
{
    self->nspans = 0;
    if (nhours == 0)
        return s_add (self, lo, hi, lo, hi);
    int64_t lo_s = lo / S_US - 1, hi_s = hi / S_US + 1;
    int64_t first = (lo_s + an_store_tz_offset (tz, lo_s)) / S_DAY_S - 2;
    int64_t last = (hi_s + an_store_tz_offset (tz, hi_s)) / S_DAY_S + 1;
    for (int64_t day = first; day <= last; day++) {
        int dow = (int) (((day + 3) % 7 + 7) % 7);        //  1970-01-01: a Thursday
        for (size_t i = 0; i < nhours; i++) {
            if (hours [i].dow != dow || hours [i].end_s == hours [i].start_s)
                continue;
            int64_t start = day * S_DAY_S + hours [i].start_s;
            int64_t end = day * S_DAY_S + hours [i].end_s;
            if (hours [i].end_s < hours [i].start_s)
                end += S_DAY_S;                            //  past midnight
            int rc = s_add (self, an_store_tz_utc (tz, start) * S_US,
                            an_store_tz_utc (tz, end) * S_US, lo, hi);
            if (rc)
                return rc;
        }
    }
    qsort (self->spans, self->nspans, sizeof *self->spans, s_span_cmp);
    size_t kept = 0;
    for (size_t i = 0; i < self->nspans; i++) {
        if (kept && self->spans [i].from <= self->spans [kept - 1].to) {
            if (self->spans [i].to > self->spans [kept - 1].to)
                self->spans [kept - 1].to = self->spans [i].to;
        }
        else
            self->spans [kept++] = self->spans [i];
    }
    self->nspans = kept;
    return 0;
}

//  Uptime in [lo, hi) within the business spans; *total gets their length.
static int64_t
s_uptime (const an_report_t *self, const an_report_poll_t *polls, size_t npolls,
          int64_t lo, int64_t hi, int64_t *total)
{
    int64_t up = 0;
    size_t j = 0;                       //  the poll whose status holds at t
    *total = 0;
    for (size_t i = 0; i < self->nspans; i++) {
        int64_t from = self->spans [i].from < lo ? lo : self->spans [i].from;
        int64_t to = self->spans [i].to > hi ? hi : self->spans [i].to;
        if (from >= to)
            continue;
        *total += to - from;
        int64_t t = from;
        while (t < to) {
            while (j + 1 < npolls && polls [j + 1].at_us <= t)
                j++;
            int64_t next = j + 1 < npolls && polls [j + 1].at_us < to ? polls [j + 1].at_us : to;
            if (polls [j].active)
                up += next - t;
            t = next;
        }
    }
    return up;
}

int
an_report_store (an_report_t *self, const an_store_tz_t *tz,
                 const an_report_hours_t *hours, size_t nhours,
                 const an_report_poll_t *polls, size_t npolls, int64_t now_us,
                 an_report_figures_t *figures)
{
    assert (self && tz && figures);
    if (npolls == 0 || npolls > AN_REPORT_MAX_POLLS || nhours > AN_REPORT_MAX_HOURS)
        return TL_EINVAL;
    for (size_t i = 0; i < npolls; i++)
        if (polls [i].at_us > now_us || (i && polls [i].at_us <= polls [i - 1].at_us))
            return TL_EINVAL;
    for (size_t i = 0; i < nhours; i++)
        if (hours [i].dow < 0 || hours [i].dow > 6 || hours [i].start_s < 0
        ||  hours [i].start_s >= S_DAY_S || hours [i].end_s < 0 || hours [i].end_s > S_DAY_S)
            return TL_EINVAL;
    int rc = s_business (self, tz, hours, nhours, now_us - s_window_us [AN_WEEK], now_us);
    if (rc)
        return rc;
    for (int w = AN_HOUR; w <= AN_WEEK; w++) {
        int64_t total;
        figures->up_us [w] = s_uptime (self, polls, npolls, now_us - s_window_us [w], now_us,
                                       &total);
        figures->down_us [w] = total - figures->up_us [w];
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Self-test: hand-made stores, each with its arithmetic. Times are UTC
//  unless a zone is named; M = minutes, H = hours in microseconds.

#define M (60 * S_US)
#define H (3600 * S_US)

static int64_t
s_at (int64_t y, int m, int d, int hh, int mm)
{
    return (an_store_tz_days (y, m, d) * S_DAY_S + hh * 3600 + mm * 60) * S_US;
}

static void
s_expect (const char *name, const an_report_figures_t *f, const int64_t up [3],
          const int64_t down [3], bool verbose)
{
    if (verbose)
        printf ("   %s\n", name);
    for (int w = 0; w < 3; w++)
        if (f->up_us [w] != up [w] || f->down_us [w] != down [w]) {
            fprintf (stderr, "%s: window %d up %lld (want %lld) down %lld (want %lld)\n", name,
                     w, (long long) f->up_us [w], (long long) up [w],
                     (long long) f->down_us [w], (long long) down [w]);
            assert (false);
        }
}

void
an_report_test (bool verbose)
{
    printf (" * an_report: ");
    if (verbose)
        printf ("\n");
    an_report_t *report = an_report_new ();
    assert (report);
    an_store_tz_t *utc = an_store_tz_new ("Etc/UTC");
    an_store_tz_t *ny = an_store_tz_new ("America/New_York");
    an_store_tz_t *kolkata = an_store_tz_new ("Asia/Kolkata");
    assert (utc && ny && kolkata);
    an_report_figures_t f;

    //  1. Open 24x7, one poll active 30 minutes before now, inactive before
    //  (a poll 2 hours before): hour = 30 up + 30 down; day = 30M up, rest
    //  down (24H - 30M); week likewise (168H - 30M).
    {
        int64_t now = s_at (2025, 1, 15, 12, 0);
        an_report_poll_t polls [] = { { now - 2 * H, false }, { now - 30 * M, true } };
        assert (an_report_store (report, utc, NULL, 0, polls, 2, now, &f) == 0);
        s_expect ("24x7, two polls", &f, (int64_t []) { 30 * M, 30 * M, 30 * M },
                  (int64_t []) { 30 * M, 24 * H - 30 * M, 168 * H - 30 * M }, verbose);
    }
    //  2. A single poll back-fills and holds: one active poll 3 days ago,
    //  open 24x7: all up.
    {
        int64_t now = s_at (2025, 1, 15, 12, 0);
        an_report_poll_t polls [] = { { now - 72 * H, true } };
        assert (an_report_store (report, utc, NULL, 0, polls, 1, now, &f) == 0);
        s_expect ("single poll", &f, (int64_t []) { 60 * M, 24 * H, 168 * H },
                  (int64_t []) { 0, 0, 0 }, verbose);
    }
    //  3. Open overnight in UTC, Wednesday 22:00 -> 02:00 (the only row),
    //  now Thursday 2025-01-16 01:00; active since 100H before, inactive
    //  from 00:30. Hour [00:00, 01:00): open, 30M up (00:00-00:30), 30M
    //  down. Day [Wed 01:00, Thu 01:00): Wed 22:00 -> Thu 01:00 = 3H, down
    //  30M, up 2H30M. Week [Thu 2025-01-09 01:00, now): also the previous
    //  Wednesday's row (2025-01-08 22:00 -> 01-09 02:00), 1H of it inside
    //  the week, up (the first poll's status back-fills): total 4H, up
    //  3H30M, down 30M.
    {
        int64_t now = s_at (2025, 1, 16, 1, 0);
        an_report_hours_t hours [] = { { 2, 22 * 3600, 2 * 3600 } };
        an_report_poll_t polls [] = { { now - 100 * H, true }, { now - 30 * M, false } };
        assert (an_report_store (report, utc, hours, 1, polls, 2, now, &f) == 0);
        s_expect ("overnight", &f, (int64_t []) { 30 * M, 2 * H + 30 * M, 3 * H + 30 * M },
                  (int64_t []) { 30 * M, 30 * M, 30 * M }, verbose);
    }
    //  4. A split shift on Wednesday 2025-01-15 in New York (EST, -5):
    //  09:00-11:00 and 10:00-12:00 (unioned: 09:00-12:00 local) and
    //  17:00-23:59:59 (midnight); now 2025-01-16 05:00Z = 00:00 local
    //  Thursday. Day [Wed 05:00Z, Thu 05:00Z) = all of Wednesday local:
    //  3H + 7H = 10H. Polls: active from before, inactive at 18:00 local
    //  (23:00Z): down 18:00-24:00 = 6H, up 4H. Hour [04:00Z, 05:00Z) =
    //  23:00-24:00 local: open and down, 60M.
    {
        int64_t now = s_at (2025, 1, 16, 5, 0);
        an_report_hours_t hours [] = { { 2, 9 * 3600, 11 * 3600 }, { 2, 10 * 3600, 12 * 3600 },
                                       { 2, 17 * 3600, 86400 } };
        an_report_poll_t polls [] = { { now - 48 * H, true }, { s_at (2025, 1, 15, 23, 0), false } };
        assert (an_report_store (report, ny, hours, 3, polls, 2, now, &f) == 0);
        s_expect ("split shift", &f, (int64_t []) { 0, 4 * H, 4 * H },
                  (int64_t []) { 60 * M, 6 * H, 6 * H }, verbose);
    }
    //  5. A poll exactly on a window's start belongs to the window
    //  (half-open windows): 24x7, inactive until an active poll at exactly
    //  now - 1H: hour all up; day 1H up, 23H down.
    {
        int64_t now = s_at (2025, 1, 15, 12, 0);
        an_report_poll_t polls [] = { { now - 30 * H, false }, { now - 1 * H, true } };
        assert (an_report_store (report, utc, NULL, 0, polls, 2, now, &f) == 0);
        s_expect ("poll on the boundary", &f, (int64_t []) { 60 * M, 1 * H, 1 * H },
                  (int64_t []) { 0, 23 * H, 167 * H }, verbose);
    }
    //  6. Spring forward in New York: Sunday 2025-03-09, open 00:00-05:00
    //  local; 02:00-03:00 does not exist, so the day holds 4H
    //  (00:00 EST = 05:00Z to 05:00 EDT = 09:00Z). Now 2025-03-09 12:00Z,
    //  all up: day = 4H.
    {
        int64_t now = s_at (2025, 3, 9, 12, 0);
        an_report_hours_t hours [] = { { 6, 0, 5 * 3600 } };
        an_report_poll_t polls [] = { { now - 2 * H, true } };
        assert (an_report_store (report, ny, hours, 1, polls, 1, now, &f) == 0);
        assert (f.up_us [AN_DAY] == 4 * H && f.down_us [AN_DAY] == 0);
        if (verbose)
            printf ("   spring forward\n");
    }
    //  7. Fall back in New York: Sunday 2025-11-02, open 00:00-05:00 local;
    //  01:00-02:00 happens twice, so the day holds 6H (00:00 EDT = 04:00Z
    //  to 05:00 EST = 10:00Z). Now 2025-11-02 12:00Z, all down: day down 6H.
    {
        int64_t now = s_at (2025, 11, 2, 12, 0);
        an_report_hours_t hours [] = { { 6, 0, 5 * 3600 } };
        an_report_poll_t polls [] = { { now - 2 * H, false } };
        assert (an_report_store (report, ny, hours, 1, polls, 1, now, &f) == 0);
        assert (f.down_us [AN_DAY] == 6 * H && f.up_us [AN_DAY] == 0);
        if (verbose)
            printf ("   fall back\n");
    }
    //  8. A 30-minute offset: Kolkata (+05:30), open Monday 09:00-10:00
    //  local = 03:30Z-04:30Z on 2025-01-13; now 2025-01-13 04:00Z, one
    //  active poll at 03:45Z after an inactive one: hour [03:00Z, 04:00Z)
    //  holds 30M of business time, 15M down (03:30-03:45), 15M up; the day
    //  the same. The week [2025-01-06 04:00Z, now) also holds the previous
    //  Monday's 04:00Z-04:30Z, down (the first poll back-fills): 45M down.
    {
        int64_t now = s_at (2025, 1, 13, 4, 0);
        an_report_hours_t hours [] = { { 0, 9 * 3600, 10 * 3600 } };
        an_report_poll_t polls [] = { { now - 5 * H, false }, { now - 15 * M, true } };
        assert (an_report_store (report, kolkata, hours, 1, polls, 2, now, &f) == 0);
        s_expect ("30-minute offset", &f, (int64_t []) { 15 * M, 15 * M, 15 * M },
                  (int64_t []) { 15 * M, 15 * M, 45 * M }, verbose);
    }
    //  Refused input
    {
        int64_t now = s_at (2025, 1, 15, 12, 0);
        an_report_poll_t late [] = { { now + 1, true } };
        an_report_poll_t unsorted [] = { { now - 5, true }, { now - 9, true } };
        an_report_hours_t bad [] = { { 7, 0, 10 } };
        an_report_poll_t ok [] = { { now - 5, true } };
        assert (an_report_store (report, utc, NULL, 0, late, 1, now, &f) == TL_EINVAL);
        assert (an_report_store (report, utc, NULL, 0, unsorted, 2, now, &f) == TL_EINVAL);
        assert (an_report_store (report, utc, NULL, 0, ok, 0, now, &f) == TL_EINVAL);
        assert (an_report_store (report, utc, bad, 1, ok, 1, now, &f) == TL_EINVAL);
    }
    an_store_tz_destroy (&utc);
    an_store_tz_destroy (&ny);
    an_store_tz_destroy (&kolkata);
    an_report_destroy (&report);
    an_report_destroy (&report);
    printf ("OK\n");
}
