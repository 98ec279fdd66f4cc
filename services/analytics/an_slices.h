//  an_slices.h — the time slices of a statistic (API.md "Statistics"): a
//  range [start, end) cut into calendar slices in UTC (static: year,
//  month, week from Monday, day, hour, minute) or into slices of one
//  length stepping from start (dynamic: week, day, hour, minute), as the
//  boundaries a query buckets calls by.
#ifndef AN_SLICES_H_INCLUDED
#define AN_SLICES_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    AN_SLICE_YEAR, AN_SLICE_MONTH, AN_SLICE_WEEK, AN_SLICE_DAY, AN_SLICE_HOUR, AN_SLICE_MINUTE
} an_slice_unit_t;

//  Reads a unit's name ("year" ... "minute"). Returns 0 or TL_EINVAL.
int an_slices_unit (const char *name, an_slice_unit_t *unit);

//  Reads a statistic's date: "YYYY-MM-DD" (midnight UTC) or an RFC 3339
//  time, into ms since the epoch. Returns 0 or TL_EINVAL.
int an_slices_date (const char *text, int64_t *ms);

//  Cuts [start_ms, end_ms) (start < end) into slices and writes their
//  boundaries into `bounds` (room for max + 1): bounds [0] = start,
//  bounds [n] = end, and between them each calendar boundary (static) or
//  start + k × the unit's length (dynamic). Returns n, the number of
//  slices; TL_EINVAL for a dynamic year or month; TL_ETOOBIG past `max`.
long an_slices_bounds (int64_t start_ms, int64_t end_ms, an_slice_unit_t unit, bool is_static,
                       int64_t *bounds, long max);

//  Self-test.
void an_slices_test (bool verbose);

#endif
