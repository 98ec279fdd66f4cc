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

//  Writes `us` (microseconds since the epoch, from 1970 to 9999) as
//  RFC 3339 in UTC into `text`: whole seconds, then ".mmm" (milliseconds,
//  truncated) only when there is a fraction of a second, as the API shows
//  times ("2026-12-01T08:00:00Z", "2026-12-01T08:00:00.250Z"); or, with
//  `micros`, always the six digits ".uuuuuu", as list cursors carry them.
//  For SQL that sends times as epoch microseconds (int8: TL_TIME_SQL_US)
//  rather than formatting them in the database.
#define TL_TIME_US_TEXT_SIZE 32
void tl_time_format_us (int64_t us, bool micros, char text [TL_TIME_US_TEXT_SIZE]);

//  SQL: timestamptz `column` as epoch microseconds (int8), for
//  tl_time_format_us. Exact: date_part's float8 is within 0.5 µs.
#define TL_TIME_SQL_US(column) "round (date_part ('epoch', " column ") * 1000000)::int8"

//  Writes ms since the epoch as SQL text for `to_timestamp ($n::float8 /
//  1000)`: "-infinity" / "infinity" for INT64_MIN / INT64_MAX.
void tl_time_sql_ms (int64_t ms, char text [32]);

//  Self-test, run by ctest.
void tl_time_test (bool verbose);

#endif
