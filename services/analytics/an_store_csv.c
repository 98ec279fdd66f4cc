//  an_store_csv.c — a strict, streaming RFC 4180 reader (an_store_csv.h):
//  one byte at a time through a five-state machine, one record held.
#include "an_store_csv.h"
#include "tl_error.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    S_FIELD_START,              //  before a field's first byte
    S_UNQUOTED,                 //  inside an unquoted field
    S_QUOTED,                   //  inside a quoted field
    S_QUOTE_SEEN                //  a quote inside a quoted field: end or escape
} s_state_t;

struct _an_store_csv_t {
    an_store_csv_fn *fn;
    void *arg;
    s_state_t state;
    bool record_open;           //  a byte of the current record was read
    bool prev_cr;               //  the byte before was a CR (CRLF is one end)
    bool finished;
    size_t bom;                 //  bytes of a leading BOM matched so far
    uint64_t bytes;             //  read in all
    size_t line;                //  the physical line of the next byte
    size_t record_line;         //  where the current record starts
    size_t last_line;           //  of the last record delivered, or the error
    int error;                  //  sticky
    const char *reason;
    size_t nfields;
    size_t sizes [AN_CSV_MAX_FIELDS];
    char fields [AN_CSV_MAX_FIELDS] [AN_CSV_MAX_FIELD + 1];
};

static const unsigned char s_bom [3] = { 0xEF, 0xBB, 0xBF };

an_store_csv_t *
an_store_csv_new (an_store_csv_fn *fn, void *arg)
{
    assert (fn);
    an_store_csv_t *self = (an_store_csv_t *) calloc (1, sizeof *self);
    if (self) {
        self->fn = fn;
        self->arg = arg;
        self->line = 1;
    }
    return self;
}

void
an_store_csv_destroy (an_store_csv_t **self_p)
{
    if (self_p && *self_p) {
        free (*self_p);
        *self_p = NULL;
    }
}

//  Stops the reader with `code` and `reason` at the current record's line.
static int
s_fail (an_store_csv_t *self, int code, const char *reason)
{
    self->error = code;
    self->reason = reason;
    self->last_line = self->record_open ? self->record_line : self->line;
    return code;
}

//  Appends a byte to the current field. Returns 0 or TL_ETOOBIG.
static int
s_append (an_store_csv_t *self, char c)
{
    size_t index = self->nfields;
    if (self->sizes [index] >= AN_CSV_MAX_FIELD)
        return s_fail (self, TL_ETOOBIG, "field longer than 255 bytes");
    self->fields [index] [self->sizes [index]++] = c;
    return 0;
}

//  Ends the current field: the next byte starts another.
static int
s_end_field (an_store_csv_t *self)
{
    self->fields [self->nfields] [self->sizes [self->nfields]] = 0;
    if (++self->nfields >= AN_CSV_MAX_FIELDS)
        return s_fail (self, TL_ETOOBIG, "more than 8 fields");
    self->sizes [self->nfields] = 0;
    self->state = S_FIELD_START;
    return 0;
}

//  Ends the current field and the record, and delivers it.
static int
s_end_record (an_store_csv_t *self)
{
    size_t index = self->nfields;
    self->fields [index] [self->sizes [index]] = 0;
    const char *fields [AN_CSV_MAX_FIELDS];
    for (size_t i = 0; i <= index; i++)
        fields [i] = self->fields [i];
    self->last_line = self->record_line;
    int rc = self->fn (self->arg, self->record_line, fields, self->sizes, index + 1);
    self->nfields = 0;
    self->sizes [0] = 0;
    self->record_open = false;
    self->state = S_FIELD_START;
    if (rc) {
        self->error = rc;
        self->reason = "stopped by the caller";
    }
    return rc;
}

//  One byte of the body.
static int
s_byte (an_store_csv_t *self, unsigned char c)
{
    bool lf_of_crlf = c == '\n' && self->prev_cr;
    self->prev_cr = c == '\r';
    if (c == 0)
        return s_fail (self, TL_EINVAL, "NUL byte");
    if (lf_of_crlf && self->state != S_QUOTED)
        return 0;                   //  the CR ended the line (and record)
    bool line_end = c == '\r' || c == '\n';
    if (!self->record_open && !line_end) {
        self->record_open = true;
        self->record_line = self->line;
    }
    if (line_end && !lf_of_crlf)
        self->line++;
    switch (self->state) {
        case S_FIELD_START:
            if (line_end)
                return self->record_open ? s_end_record (self) : 0;
            if (c == ',')
                return s_end_field (self);
            if (c == '"') {
                self->state = S_QUOTED;
                return 0;
            }
            self->state = S_UNQUOTED;
            return s_append (self, (char) c);
        case S_UNQUOTED:
            if (line_end)
                return s_end_record (self);
            if (c == ',')
                return s_end_field (self);
            if (c == '"')
                return s_fail (self, TL_EINVAL, "quote inside an unquoted field");
            return s_append (self, (char) c);
        case S_QUOTED:
            if (c == '"') {
                self->state = S_QUOTE_SEEN;
                return 0;
            }
            return s_append (self, (char) c);
        case S_QUOTE_SEEN:
            if (c == '"') {
                self->state = S_QUOTED;
                return s_append (self, '"');
            }
            if (line_end)
                return s_end_record (self);
            if (c == ',')
                return s_end_field (self);
            return s_fail (self, TL_EINVAL, "text after a closing quote");
    }
    return 0;
}

int
an_store_csv_feed (an_store_csv_t *self, const void *data, size_t size)
{
    assert (self && !self->finished);
    if (self->error)
        return self->error;
    const unsigned char *bytes = (const unsigned char *) data;
    for (size_t i = 0; i < size; i++) {
        if (++self->bytes > (uint64_t) AN_CSV_MAX_BYTES)
            return s_fail (self, TL_ETOOBIG, "body larger than 100 MiB");
        //  A BOM is only ever the first three bytes; a partial match is
        //  given back to the machine as data
        if (self->bom < 3 && self->bytes == self->bom + 1) {
            if (bytes [i] == s_bom [self->bom]) {
                self->bom++;
                continue;
            }
            for (size_t j = 0; j < self->bom; j++) {
                int rc = s_byte (self, s_bom [j]);
                if (rc)
                    return rc;
            }
            self->bom = 3;
        }
        int rc = s_byte (self, bytes [i]);
        if (rc)
            return rc;
    }
    return 0;
}

int
an_store_csv_finish (an_store_csv_t *self)
{
    assert (self);
    if (self->error || self->finished)
        return self->error;
    self->finished = true;
    if (self->bom > 0 && self->bom < 3 && self->bytes == self->bom) {
        for (size_t j = 0; j < self->bom; j++) {
            int rc = s_byte (self, s_bom [j]);
            if (rc)
                return rc;
        }
    }
    if (self->state == S_QUOTED)
        return s_fail (self, TL_EINVAL, "unterminated quoted field");
    if (self->record_open || self->state == S_QUOTE_SEEN)
        return s_end_record (self);
    return 0;
}

size_t
an_store_csv_line (an_store_csv_t *self)
{
    assert (self);
    return self->last_line;
}

const char *
an_store_csv_error (an_store_csv_t *self)
{
    assert (self);
    return self->error ? self->reason : NULL;
}

//  --------------------------------------------------------------------------
//  Self-test: each case reads a body whole and a byte at a time and checks
//  the records (as "line:field|field;" text) and the outcome.

typedef struct {
    char log [1024];
    size_t used;
    size_t stop_at;
    size_t records;
} s_test_log_t;

static int
s_test_record (void *arg, size_t line, const char **fields, const size_t *sizes, size_t count)
{
    s_test_log_t *log = (s_test_log_t *) arg;
    log->used += (size_t) snprintf (log->log + log->used, sizeof log->log - log->used,
                                    "%zu:", line);
    for (size_t i = 0; i < count; i++) {
        assert (strlen (fields [i]) == sizes [i]);
        log->used += (size_t) snprintf (log->log + log->used, sizeof log->log - log->used,
                                        "%s%s", i ? "|" : "", fields [i]);
    }
    log->used += (size_t) snprintf (log->log + log->used, sizeof log->log - log->used, ";");
    return ++log->records == log->stop_at ? TL_EEXIST : 0;
}

static int
s_test_read (const char *body, size_t size, size_t chunk, s_test_log_t *log, size_t *line)
{
    memset (log, 0, sizeof *log);
    an_store_csv_t *csv = an_store_csv_new (s_test_record, log);
    assert (csv);
    int rc = 0;
    for (size_t at = 0; rc == 0 && at < size; at += chunk)
        rc = an_store_csv_feed (csv, body + at, size - at < chunk ? size - at : chunk);
    if (rc == 0)
        rc = an_store_csv_finish (csv);
    assert ((an_store_csv_error (csv) != NULL) == (rc != 0));
    *line = an_store_csv_line (csv);
    an_store_csv_destroy (&csv);
    assert (csv == NULL);
    return rc;
}

static void
s_test_case (const char *name, const char *body, size_t size, int rc, size_t line,
             const char *expected, bool verbose)
{
    if (verbose)
        printf ("   %s\n", name);
    s_test_log_t whole, bytes;
    size_t line_whole, line_bytes;
    int rc_whole = s_test_read (body, size, size ? size : 1, &whole, &line_whole);
    int rc_bytes = s_test_read (body, size, 1, &bytes, &line_bytes);
    if (rc_whole != rc || strcmp (whole.log, expected) != 0 || line_whole != line)
        fprintf (stderr, "%s: rc %d line %zu log '%s'\n", name, rc_whole, line_whole, whole.log);
    assert (rc_whole == rc && rc_bytes == rc);
    assert (line_whole == line && line_bytes == line);
    assert (strcmp (whole.log, expected) == 0 && strcmp (bytes.log, expected) == 0);
}

#define S_CASE(name, body, rc, line, expected) \
    s_test_case (name, body, sizeof body - 1, rc, line, expected, verbose)

void
an_store_csv_test (bool verbose)
{
    printf (" * an_store_csv: ");
    if (verbose)
        printf ("\n");
    S_CASE ("empty body", "", 0, 0, "");
    S_CASE ("header and rows, LF", "a,b\n1,2\n", 0, 2, "1:a|b;2:1|2;");
    S_CASE ("CRLF, lone CR, no final line end", "a,b\r\n1,2\r3,4", 0, 3, "1:a|b;2:1|2;3:3|4;");
    S_CASE ("empty lines skipped, numbered", "a\n\n\r\nb\n", 0, 4, "1:a;4:b;");
    S_CASE ("BOM skipped", "\xEF\xBB\xBF" "a,b\n", 0, 1, "1:a|b;");
    S_CASE ("partial BOM is data", "\xEF\xBB", 0, 1, "1:\xEF\xBB;");
    S_CASE ("empty fields", ",\n,,x\n", 0, 2, "1:|;2:||x;");
    S_CASE ("spaces kept", " a , b\n", 0, 1, "1: a | b;");
    S_CASE ("quoted with comma, quote and line end",
            "\"a,\"\"b\"\"\r\nc\",d\ne\n", 0, 3, "1:a,\"b\"\r\nc|d;3:e;");
    S_CASE ("quoted empty field", "\"\"\n", 0, 1, "1:;");
    S_CASE ("quote inside unquoted", "a\nb\"c\n", TL_EINVAL, 2, "1:a;");
    S_CASE ("text after closing quote", "\"a\"b\n", TL_EINVAL, 1, "");
    S_CASE ("unterminated quote", "x\n\"abc\n\n", TL_EINVAL, 2, "1:x;");
    S_CASE ("NUL byte", "a\nb\0c\n", TL_EINVAL, 2, "1:a;");
    S_CASE ("too many fields", "a\n1,2,3,4,5,6,7,8,9\n", TL_ETOOBIG, 2, "1:a;");
    S_CASE ("eight fields are fine", "1,2,3,4,5,6,7,8\n", 0, 1, "1:1|2|3|4|5|6|7|8;");

    //  A field of 255 bytes is fine, 256 is not
    char body [600];
    memset (body, 'x', 255);
    memcpy (body + 255, "\n", 2);
    s_test_log_t log;
    size_t line;
    assert (s_test_read (body, 256, 7, &log, &line) == 0 && line == 1);
    memset (body, 'x', 256);
    memcpy (body + 256, "\n", 2);
    assert (s_test_read (body, 257, 7, &log, &line) == TL_ETOOBIG && line == 1);

    //  The callback stops the reader; the error is sticky
    memset (&log, 0, sizeof log);
    log.stop_at = 1;
    an_store_csv_t *csv = an_store_csv_new (s_test_record, &log);
    assert (an_store_csv_feed (csv, "a\nb\n", 4) == TL_EEXIST);
    assert (an_store_csv_feed (csv, "c\n", 2) == TL_EEXIST);
    assert (an_store_csv_finish (csv) == TL_EEXIST);
    assert (an_store_csv_line (csv) == 1);
    an_store_csv_destroy (&csv);
    an_store_csv_destroy (&csv);
    printf ("OK\n");
}
