//  tl_log.h — structured logs: one JSON object per line on stderr.
//  Every line carries the time, level, program and message; a line about a
//  request also carries its request id ("trace"), so that one request can be
//  followed across the gateway and the services.
#ifndef TL_LOG_H_INCLUDED
#define TL_LOG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef enum { TL_LOG_DEBUG, TL_LOG_INFO, TL_LOG_WARN, TL_LOG_ERROR } tl_log_level_t;

//  Names the program in every line and reads TALLY_LOG_LEVEL
//  (debug|info|warn|error, default info). Call once, before threads start.
void tl_log_init (const char *program);

//  Writes one line if `level` is enabled. `trace` may be NULL. The message
//  is printf-formatted and JSON-escaped. Lines are written with one write(2),
//  so lines from several threads never interleave.
void tl_log (tl_log_level_t level, const char *trace, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

//  Writes a line made by the caller: `json_fields` is a fragment of JSON
//  object members (`"a":1,"b":"x"`) appended after the standard ones.
void tl_log_json (tl_log_level_t level, const char *json_fields);

bool tl_log_enabled (tl_log_level_t level);

//  Appends `text` JSON-escaped (without quotes) to `out` of `size` bytes at
//  *pos; stops (truncating) when full. Used by log lines and small JSON.
void tl_log_escape (char *out, size_t size, size_t *pos, const char *text);

//  Self-test.
void tl_log_test (bool verbose);

#endif
