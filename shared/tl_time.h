//  tl_time.h — RFC 3339 times in and out, in milliseconds since the Unix
//  epoch: the one reader and writer of API times, CSV timestamps and the
//  operators' clocks (jobs.run_due --at).
#ifndef TL_TIME_H_INCLUDED
#define TL_TIME_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

//  Reads an RFC 3339 time ("2026-12-01T08:00:00Z", "…T09:30+01:30", with
//  or without seconds and fractions; 'T' or a space; from 1970) into *ms.
//  Returns 0, or TL_EINVAL for anything else (no offset, no such day).
int tl_time_parse (const char *text, int64_t *ms);

//  Writes `ms` as "2026-12-01T08:00:00Z" (UTC, whole seconds) into `text`
//  (at least TL_TIME_TEXT_SIZE bytes).
#define TL_TIME_TEXT_SIZE 24
void tl_time_format (int64_t ms, char *text, size_t size);

//  Writes ms since the epoch as SQL text for `to_timestamp ($n::float8 /
//  1000)`: "-infinity" / "infinity" for INT64_MIN / INT64_MAX.
void tl_time_sql_ms (int64_t ms, char text [32]);

//  Self-test, run by ctest.
void tl_time_test (bool verbose);

#endif
