//  fuzz_store_csv.c — fuzz target for the store data's CSV reader
//  (services/analytics/an_store_csv). The first byte of an input says how
//  to cut the rest into chunks; the rest is a CSV body. The body is read
//  whole and in those chunks: both must give the same records, lines and
//  outcome. Record lines must increase and never pass the number of line
//  ends + 1; fields must be NUL-terminated, hold no NUL and stay within
//  the bounds; an error must come with a printable reason.
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tl_buf.h"
#include "tl_error.h"
#include "an_store_csv.h"

#define s_check(condition) \
    do { if (!(condition)) { \
        fprintf (stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
        abort (); } \
    } while (0)

typedef struct {
    tl_buf_t *log;
    size_t last_line;
    size_t max_line;
} s_run_t;

static int
s_on_record (void *arg, size_t line, const char **fields, const size_t *sizes, size_t count)
{
    s_run_t *run = (s_run_t *) arg;
    s_check (count >= 1 && count <= AN_CSV_MAX_FIELDS);
    s_check (line > run->last_line && line <= run->max_line);
    run->last_line = line;
    s_check (tl_buf_append (run->log, &line, sizeof line) == 0);
    s_check (tl_buf_append (run->log, &count, sizeof count) == 0);
    for (size_t i = 0; i < count; i++) {
        s_check (sizes [i] <= AN_CSV_MAX_FIELD);
        s_check (fields [i] [sizes [i]] == 0);
        s_check (memchr (fields [i], 0, sizes [i]) == NULL);
        s_check (tl_buf_append (run->log, &sizes [i], sizeof sizes [i]) == 0);
        s_check (tl_buf_append (run->log, fields [i], sizes [i]) == 0);
    }
    return 0;
}

static int
s_read (const char *body, size_t size, size_t chunk_max, uint32_t seed, s_run_t *run,
        size_t *line, char reason [64])
{
    an_store_csv_t *csv = an_store_csv_new (s_on_record, run);
    s_check (csv);
    int rc = 0;
    size_t offset = 0;
    while (rc == 0 && offset < size) {
        size_t chunk = size - offset;
        if (chunk_max) {
            seed = seed * 1103515245u + 12345u;
            size_t wanted = 1 + (seed >> 16) % chunk_max;
            chunk = wanted < chunk ? wanted : chunk;
        }
        rc = an_store_csv_feed (csv, body + offset, chunk);
        offset += chunk;
    }
    if (rc == 0)
        rc = an_store_csv_finish (csv);
    s_check (an_store_csv_finish (csv) == rc);
    *line = an_store_csv_line (csv);
    const char *why = an_store_csv_error (csv);
    s_check ((why != NULL) == (rc != 0));
    reason [0] = 0;
    if (why) {
        s_check (rc == TL_EINVAL || rc == TL_ETOOBIG);
        for (const char *c = why; *c; c++)
            s_check (*c >= 0x20 && *c < 0x7f);
        snprintf (reason, 64, "%s", why);
        s_check (*line >= 1 && *line <= run->max_line);
    }
    an_store_csv_destroy (&csv);
    return rc;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t chunk_max = data [0] & 0x3f;
    const char *body = (const char *) data + 1;
    size -= 1;
    size_t max_line = 1;
    for (size_t i = 0; i < size; i++)
        if (body [i] == '\n' || (body [i] == '\r' && (i + 1 == size || body [i + 1] != '\n')))
            max_line++;
    s_run_t whole = { tl_buf_new (SIZE_MAX), 0, max_line };
    s_run_t chunked = { tl_buf_new (SIZE_MAX), 0, max_line };
    s_check (whole.log && chunked.log);
    size_t line_whole, line_chunked;
    char reason_whole [64], reason_chunked [64];
    int rc_whole = s_read (body, size, 0, 0, &whole, &line_whole, reason_whole);
    int rc_chunked = s_read (body, size, chunk_max ? chunk_max : 1, data [0], &chunked,
                             &line_chunked, reason_chunked);
    s_check (rc_whole == rc_chunked);
    s_check (line_whole == line_chunked);
    s_check (strcmp (reason_whole, reason_chunked) == 0);
    s_check (tl_buf_size (whole.log) == tl_buf_size (chunked.log));
    s_check (memcmp (tl_buf_data (whole.log), tl_buf_data (chunked.log),
                     tl_buf_size (whole.log)) == 0);
    tl_buf_destroy (&whole.log);
    tl_buf_destroy (&chunked.log);
    return 0;
}
