//  an_store_tz.h — one IANA time zone read from the system's tz database
//  (TZif files under TZDIR, default /usr/share/zoneinfo; RFC 8536), for
//  the store reports: the UTC offset at an instant, and the instant of a
//  local wall-clock time under the reports' rules (shared/API.md): a local
//  time inside a spring-forward gap moves to the first instant after the
//  gap; an ambiguous one (a fall-back overlap) takes its first occurrence.
//  Instants past the file's last transition follow its footer's POSIX TZ
//  rule, expanded to explicit transitions up to AN_TZ_LAST_YEAR. Never a
//  fixed offset: every answer comes from the zone's own transitions.
//
//  Times are seconds: `utc_s` since the Unix epoch; `local_s` the local
//  wall-clock time written as if it were UTC (days * 86400 + seconds of
//  the day).
#ifndef AN_STORE_TZ_H_INCLUDED
#define AN_STORE_TZ_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "an_store_limits.h"

typedef struct _an_store_tz_t an_store_tz_t;

//  True when `name` is a zone name this class will look up: 1..AN_TZ_MAX_NAME
//  bytes of [A-Za-z0-9_+-] in segments separated by single '/', none
//  starting with '.' or '-' (no path can leave TZDIR).
bool an_store_tz_name_ok (const char *name);

//  Loads zone `name` from the tz database. Returns NULL for a bad name, a
//  zone that does not exist, a file that is not TZif (version 2 or later,
//  without leap seconds) or past the bounds, or on allocation failure.
an_store_tz_t *an_store_tz_new (const char *name);

//  The same from the bytes of a TZif file (for tests and the fuzz target).
an_store_tz_t *an_store_tz_new_from (const void *data, size_t size);

//  Destroys the zone and nulls the caller's reference. Safe on NULL.
void an_store_tz_destroy (an_store_tz_t **self_p);

//  The zone's offset from UTC, in seconds east, at instant `utc_s`.
int32_t an_store_tz_offset (const an_store_tz_t *self, int64_t utc_s);

//  The instant of local time `local_s` (see above for gaps and overlaps).
int64_t an_store_tz_utc (const an_store_tz_t *self, int64_t local_s);

//  Days since 1970-01-01 of the proleptic Gregorian date y-m-d (m 1..12).
int64_t an_store_tz_days (int64_t y, int m, int d);

//  The date of `days` since 1970-01-01.
void an_store_tz_civil (int64_t days, int64_t *y, int *m, int *d);

//  Self-test, run by ctest (reads America/New_York, Asia/Kolkata and
//  Australia/Lord_Howe from the system's tz database).
void an_store_tz_test (bool verbose);

#endif
