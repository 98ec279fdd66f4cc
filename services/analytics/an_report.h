//  an_report.h — one store's uptime and downtime within business hours
//  over the last hour, day and week (shared/API.md "Store monitoring";
//  README.md "Store monitoring" applies each rule to a worked example).
//
//  Given the report's "now" (the newest poll of all stores), the store's
//  time zone, its business-hours rows and its polls, it builds the store's
//  business time in [now - 7 days, now) as a union of UTC intervals (local
//  times placed by an_store_tz: gaps move forward, overlaps take the first
//  occurrence), then walks the polls' step function over it for each
//  window: a poll's status holds until the next poll, the first poll's
//  back to the window's start, the last's up to now. Microseconds
//  throughout: uptime + downtime is exactly the business time of each
//  window. An object holds the work arrays, reused from store to store.
#ifndef AN_REPORT_H_INCLUDED
#define AN_REPORT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "an_store_limits.h"
#include "an_store_tz.h"

typedef struct _an_report_t an_report_t;

//  A business-hours row: `dow` 0 = Monday .. 6 = Sunday; `start_s`
//  0..86399 and `end_s` 0..86400 seconds after local midnight (86400 is
//  the take-home's 23:59:59: midnight). end < start runs past midnight
//  into the next day; end == start is an empty row.
typedef struct {
    int dow;
    int32_t start_s, end_s;
} an_report_hours_t;

//  A poll: microseconds since the Unix epoch, and whether the store was
//  active.
typedef struct {
    int64_t at_us;
    bool active;
} an_report_poll_t;

//  The windows, in the order of the figures.
typedef enum { AN_HOUR = 0, AN_DAY = 1, AN_WEEK = 2 } an_window_t;

//  A store's figures, microseconds, per window.
typedef struct {
    int64_t up_us [3];
    int64_t down_us [3];
} an_report_figures_t;

//  Creates the work arrays. Returns NULL on allocation failure.
an_report_t *an_report_new (void);

//  Destroys it and nulls the caller's reference. Safe on NULL.
void an_report_destroy (an_report_t **self_p);

//  Computes one store's figures at `now_us` into *figures. `tz` is the
//  store's zone (borrowed); `hours` may be empty (open 24×7) and holds at
//  most AN_REPORT_MAX_HOURS rows of valid values; `polls` (1 ..
//  AN_REPORT_MAX_POLLS) are sorted by time, unique, none after now, and
//  hold every poll in the week plus the last one before it. Returns 0,
//  TL_EINVAL (rows or polls out of bounds or order) or TL_ENOMEM.
int an_report_store (an_report_t *self, const an_store_tz_t *tz,
                     const an_report_hours_t *hours, size_t nhours,
                     const an_report_poll_t *polls, size_t npolls, int64_t now_us,
                     an_report_figures_t *figures);

//  Self-test, run by ctest: hand-made cases with their arithmetic.
void an_report_test (bool verbose);

#endif
