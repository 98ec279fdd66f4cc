//  fuzz_csv.c — fuzz target for the tracker's CSV reader and writer
//  (services/tracker/trk_csv). The first byte of an input says how to cut
//  the rest into chunks, and (its top bit) whether the record callback
//  stops the reader at some record; the rest is a CSV body. The body is read
//  whole and in those chunks: both must give the same records, the same
//  lines and the same outcome. Record lines must increase and never pass
//  the number of line ends + 1; fields must be UTF-8 without NUL bytes,
//  within the bounds. Every record of a body that reads cleanly is written
//  again with trk_csv_write_record, and that must read back as the same
//  fields.
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tl_buf.h"
#include "tl_error.h"
#include "tl_json.h"
#include "trk_limits.h"
#include "trk_csv.h"

//  Checks that hold in every build type (assert vanishes under NDEBUG).
#define s_check(condition) \
    do { if (!(condition)) { \
        fprintf (stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
        abort (); } \
    } while (0)

//  One reading of a body.
typedef struct {
    tl_buf_t *log;              //  each record: its line, then its fields
    tl_buf_t *fields;           //  each record: its fields only
    tl_buf_t *rewrite;          //  each record written again, or NULL
    size_t records;
    size_t last_line;
    size_t max_line;            //  line ends of the body + 1
    size_t stop_at;             //  the callback stops at this record (0: never)
} s_run_t;

static void
s_append_size (tl_buf_t *buf, size_t size)
{
    s_check (tl_buf_append (buf, &size, sizeof size) == 0);
}

static int
s_on_record (void *arg, size_t line, const char **fields, const size_t *sizes, size_t count)
{
    s_run_t *run = (s_run_t *) arg;
    s_check (count >= 1 && count <= TRK_CSV_MAX_FIELDS);
    s_check (line > run->last_line && line <= run->max_line);
    run->last_line = line;
    run->records++;
    s_check (run->records <= TRK_CSV_MAX_RECORDS);
    s_append_size (run->log, line);
    s_append_size (run->log, count);
    s_append_size (run->fields, count);
    for (size_t index = 0; index < count; index++) {
        s_check (sizes [index] <= TRK_CSV_MAX_FIELD);
        s_check (fields [index] [sizes [index]] == 0);
        s_check (memchr (fields [index], 0, sizes [index]) == NULL);
        s_check (tl_json_utf8_valid (fields [index], sizes [index]));
        s_append_size (run->log, sizes [index]);
        s_check (tl_buf_append (run->log, fields [index], sizes [index]) == 0);
        s_append_size (run->fields, sizes [index]);
        s_check (tl_buf_append (run->fields, fields [index], sizes [index]) == 0);
    }
    if (run->rewrite)
        s_check (trk_csv_write_record (run->rewrite, fields, sizes, count) == 0);
    if (run->stop_at && run->records == run->stop_at)
        return TL_EEXIST;
    return 0;
}

//  The outcome of a reading.
typedef struct {
    int rc;
    size_t line;
    size_t records;
    char reason [64];
} s_outcome_t;

//  Reads `body` in chunks of 1..`chunk_max` bytes drawn from `seed` (the
//  whole body at once when `chunk_max` is 0).

static s_outcome_t
s_read (const char *body, size_t size, size_t chunk_max, uint32_t seed, s_run_t *run)
{
    trk_csv_reader_t *reader = trk_csv_reader_new (s_on_record, run);
    s_check (reader);
    s_outcome_t outcome = { 0, 0, 0, "" };
    size_t offset = 0;
    while (outcome.rc == 0 && offset < size) {
        size_t chunk = size - offset;
        if (chunk_max) {
            seed = seed * 1103515245u + 12345u;
            size_t wanted = 1 + (seed >> 16) % chunk_max;
            if (wanted < chunk)
                chunk = wanted;
        }
        outcome.rc = trk_csv_reader_feed (reader, body + offset, chunk);
        offset += chunk;
    }
    if (outcome.rc == 0)
        outcome.rc = trk_csv_reader_finish (reader);
    s_check (trk_csv_reader_finish (reader) == outcome.rc);
    outcome.line = trk_csv_reader_line (reader);
    outcome.records = trk_csv_reader_records (reader);
    s_check (outcome.records == run->records);
    const char *reason = trk_csv_reader_error (reader);
    s_check ((reason != NULL) == (outcome.rc != 0));
    if (reason) {
        s_check (reason [0]);
        for (const char *c = reason; *c; c++)
            s_check (*c >= 0x20 && *c < 0x7f);
        snprintf (outcome.reason, sizeof outcome.reason, "%s", reason);
        s_check (outcome.rc == TL_EINVAL || outcome.rc == TL_ETOOBIG
              || outcome.rc == TL_ENOMEM || outcome.rc == TL_EEXIST);
        s_check (outcome.line >= 1 && outcome.line <= run->max_line);
        s_check (trk_csv_reader_feed (reader, "x", 1) == outcome.rc);
    }
    trk_csv_reader_destroy (&reader);
    s_check (reader == NULL);
    return outcome;
}

static s_run_t
s_run_new (size_t max_line, size_t stop_at, bool rewrite)
{
    s_run_t run = { tl_buf_new (SIZE_MAX), tl_buf_new (SIZE_MAX),
                    rewrite? tl_buf_new (SIZE_MAX): NULL, 0, 0, max_line, stop_at };
    s_check (run.log && run.fields && (run.rewrite || !rewrite));
    return run;
}

static void
s_run_destroy (s_run_t *run)
{
    tl_buf_destroy (&run->log);
    tl_buf_destroy (&run->fields);
    tl_buf_destroy (&run->rewrite);
}

static bool
s_same (tl_buf_t *a, tl_buf_t *b)
{
    return tl_buf_size (a) == tl_buf_size (b)
        && memcmp (tl_buf_data (a), tl_buf_data (b), tl_buf_size (a)) == 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t control = data [0];
    const char *body = (const char *) data + 1;
    size -= 1;
    size_t chunk_max = control & 0x3f;          //  0: a byte at a time
    size_t stop_at = control & 0x80? 1 + ((control >> 4) & 0x03): 0;

    //  Line ends: CRLF, LF and a lone CR each count one.
    size_t max_line = 1;
    for (size_t index = 0; index < size; index++)
        if (body [index] == '\n' || (body [index] == '\r'
        && (index + 1 == size || body [index + 1] != '\n')))
            max_line++;

    s_run_t whole = s_run_new (max_line, stop_at, true);
    s_outcome_t first = s_read (body, size, 0, 0, &whole);
    s_run_t chunked = s_run_new (max_line, stop_at, false);
    s_outcome_t second = s_read (body, size, chunk_max? chunk_max: 1, control, &chunked);
    s_check (first.rc == second.rc);
    s_check (first.line == second.line);
    s_check (first.records == second.records);
    s_check (strcmp (first.reason, second.reason) == 0);
    s_check (s_same (whole.log, chunked.log));

    //  What read cleanly, written again, reads back the same.
    if (first.rc == 0) {
        size_t lines = 1;
        const char *text = tl_buf_data (whole.rewrite);
        for (size_t index = 0; index < tl_buf_size (whole.rewrite); index++)
            lines += text [index] == '\n' || (text [index] == '\r' && text [index + 1] != '\n');
        s_run_t again = s_run_new (lines, 0, false);
        s_outcome_t third = s_read (text, tl_buf_size (whole.rewrite), 0, 0, &again);
        if (third.rc)
            fprintf (stderr, "rewrite: %s at line %zu\n", third.reason, third.line);
        s_check (third.rc == 0);
        s_check (third.records == first.records);
        s_check (s_same (whole.fields, again.fields));
        s_run_destroy (&again);
    }
    s_run_destroy (&whole);
    s_run_destroy (&chunked);
    return 0;
}
