//  trk_csv.c — RFC 4180 CSV: a streaming reader over libcsv, and a writer
//  (see trk_csv.h).
//  libcsv knows the quoting rules; this file adds what it lacks: line
//  numbers, bounds, the UTF-8 check and errors with a reason.
//  Line numbers: libcsv calls back when a record ends but does not say at
//  which byte. So the reader gives it the input cut just after each CR and
//  LF: a record can then only end on the last byte of a piece. libcsv sits
//  in its "row not begun" state between records and leaves it on the first
//  byte that is not a space, a tab, a CR or an LF; a piece that holds such a
//  byte while no record is open starts a record on the piece's line.
//  Field bound: libcsv grows its field buffer through s_realloc, which
//  refuses to pass S_FIELD_BUFFER_MAX bytes; libcsv then stops with
//  CSV_ENOMEM, which the reader reports as a field too long. So a huge field
//  costs S_FIELD_BUFFER_MAX bytes, whatever the body's size.
#include <assert.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <csv.h>

#include "trk_csv.h"
#include "tl_error.h"
#include "tl_json.h"
#include "trk_limits.h"

//  What libcsv's field buffer may hold: a longest field, a closing quote
//  and a few of the spaces libcsv trims once the field ends.
#define S_FIELD_BUFFER_MAX  (TRK_CSV_MAX_FIELD + 64)
#define S_FIELD_BLOCK       1024        //  libcsv grows its buffer by this
//  The fields of one record, each followed by a NUL byte.
#define S_RECORD_MAX        (TRK_CSV_MAX_FIELDS * (TRK_CSV_MAX_FIELD + 1))

static const unsigned char s_bom [3] = { 0xEF, 0xBB, 0xBF };

struct _trk_csv_reader_t {
    struct csv_parser parser;
    trk_csv_record_fn *fn;
    void *arg;
    //  Where we are in the body
    size_t bytes;               //  fed so far, the BOM included
    size_t line;                //  line of the next byte
    bool after_cr;              //  the last byte was a CR
    size_t bom_matched;         //  bytes of a BOM seen at the start...
    bool bom_done;              //  ...until this is true
    //  The record being read
    bool in_record;             //  libcsv is inside a record
    size_t record_line;         //  where it started
    size_t records;             //  delivered so far
    char *data;                 //  its fields, each followed by a NUL
    size_t data_size;
    size_t data_max;
    size_t offsets [TRK_CSV_MAX_FIELDS];
    size_t sizes [TRK_CSV_MAX_FIELDS];
    size_t count;
    //  The outcome
    size_t last_line;           //  of the last record, or of the error
    int error;                  //  0, or the code that stopped the reader
    char reason [64];
    bool finished;
};


//  libcsv's realloc: refuses to grow a field buffer past the bound.

static void *
s_realloc (void *ptr, size_t size)
{
    if (size > S_FIELD_BUFFER_MAX)
        return NULL;
    return realloc (ptr, size);
}


//  Stops the reader with `code` at `line` and a reason (printf format).
//  Returns the code. The first error is the one kept.

static int
s_fail (trk_csv_reader_t *self, int code, size_t line, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));

static int
s_fail (trk_csv_reader_t *self, int code, size_t line, const char *format, ...)
{
    assert (code != 0);
    if (self->error == 0) {
        self->error = code;
        self->last_line = line;
        va_list args;
        va_start (args, format);
        vsnprintf (self->reason, sizeof self->reason, format, args);
        va_end (args);
    }
    return self->error;
}


//  libcsv's field callback: checks the field and keeps a copy of it.

static void
s_on_field (void *field, size_t size, void *arg)
{
    trk_csv_reader_t *self = (trk_csv_reader_t *) arg;
    if (self->error)
        return;                 //  libcsv goes on to the end of the piece
    if (self->count == TRK_CSV_MAX_FIELDS) {
        s_fail (self, TL_ETOOBIG, self->record_line, "more than %d fields",
                TRK_CSV_MAX_FIELDS);
        return;
    }
    if (size > TRK_CSV_MAX_FIELD) {
        s_fail (self, TL_ETOOBIG, self->record_line, "field longer than %d bytes",
                TRK_CSV_MAX_FIELD);
        return;
    }
    if (size > 0 && memchr (field, 0, size)) {
        s_fail (self, TL_EINVAL, self->record_line, "NUL byte in a field");
        return;
    }
    if (!tl_json_utf8_valid ((const char *) field, size)) {
        s_fail (self, TL_EINVAL, self->record_line, "not UTF-8");
        return;
    }
    size_t need = self->data_size + size + 1;
    assert (need <= S_RECORD_MAX);
    if (need > self->data_max) {
        size_t max = self->data_max? self->data_max * 2: 256;
        while (max < need)
            max *= 2;
        if (max > S_RECORD_MAX)
            max = S_RECORD_MAX;
        char *data = (char *) realloc (self->data, max);
        if (!data) {
            s_fail (self, TL_ENOMEM, self->record_line, "out of memory");
            return;
        }
        self->data = data;
        self->data_max = max;
    }
    if (size > 0)
        memcpy (self->data + self->data_size, field, size);
    self->data [self->data_size + size] = 0;
    self->offsets [self->count] = self->data_size;
    self->sizes [self->count] = size;
    self->count++;
    self->data_size = need;
}


//  libcsv's record callback: hands the record to the caller.

static void
s_on_record (int terminator, void *arg)
{
    trk_csv_reader_t *self = (trk_csv_reader_t *) arg;
    if (self->error)
        return;
    assert (self->in_record && self->count > 0);
    const char *fields [TRK_CSV_MAX_FIELDS];
    for (size_t index = 0; index < self->count; index++)
        fields [index] = self->data + self->offsets [index];
    self->in_record = false;
    self->records++;
    self->last_line = self->record_line;
    int rc = self->fn (self->arg, self->record_line, fields, self->sizes, self->count);
    self->count = 0;
    self->data_size = 0;
    if (rc)
        s_fail (self, rc, self->record_line, "stopped by the record callback");
}


//  Explains why libcsv stopped before the end of a piece; `stop` is the
//  byte it stopped at. Returns the error code.

static int
s_parse_error (trk_csv_reader_t *self, unsigned char stop)
{
    size_t line = self->in_record? self->record_line: self->line;
    int status = csv_error (&self->parser);
    if (status == CSV_EPARSE && stop == '"')
        return s_fail (self, TL_EINVAL, line, "stray quote in a field");
    if (status == CSV_EPARSE)
        return s_fail (self, TL_EINVAL, line, "text after a closing quote");
    if (status == CSV_ETOOBIG
    || (status == CSV_ENOMEM && csv_get_buffer_size (&self->parser) >= S_FIELD_BUFFER_MAX))
        return s_fail (self, TL_ETOOBIG, line, "field longer than %d bytes",
                       TRK_CSV_MAX_FIELD);
    return s_fail (self, TL_ENOMEM, line, "out of memory");
}


//  Parses `size` bytes (after the BOM), one piece per line end.
//  Returns 0 or the error that stopped the reader.

static int
s_parse (trk_csv_reader_t *self, const unsigned char *data, size_t size)
{
    while (size > 0) {
        size_t piece = 0;
        bool content = false;   //  a byte that makes libcsv start a record
        bool line_end = false;
        while (piece < size) {
            unsigned char c = data [piece++];
            if (c == '\r' || c == '\n') {
                line_end = true;
                break;
            }
            if (c != ' ' && c != '\t')
                content = true;
        }
        if (content && !self->in_record) {
            if (self->records == TRK_CSV_MAX_RECORDS)
                return s_fail (self, TL_ETOOBIG, self->line, "more than %d records",
                               TRK_CSV_MAX_RECORDS);
            self->in_record = true;
            self->record_line = self->line;
            self->count = 0;
            self->data_size = 0;
        }
        size_t done = csv_parse (&self->parser, data, piece, s_on_field, s_on_record, self);
        if (self->error)
            return self->error;
        if (done < piece)
            return s_parse_error (self, data [done]);
        //  CRLF, LF and a lone CR each end one line.
        if (piece > (line_end? 1u: 0u))
            self->after_cr = false;
        if (line_end) {
            if (data [piece - 1] == '\r') {
                self->line++;
                self->after_cr = true;
            }
            else {
                if (!self->after_cr)
                    self->line++;
                self->after_cr = false;
            }
        }
        data += piece;
        size -= piece;
    }
    return 0;
}


//  --------------------------------------------------------------------------
//  Creates a reader.

trk_csv_reader_t *
trk_csv_reader_new (trk_csv_record_fn *fn, void *arg)
{
    assert (fn);
    trk_csv_reader_t *self = (trk_csv_reader_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    if (csv_init (&self->parser, CSV_STRICT | CSV_STRICT_FINI) != 0) {
        free (self);
        return NULL;
    }
    csv_set_realloc_func (&self->parser, s_realloc);
    csv_set_blk_size (&self->parser, S_FIELD_BLOCK);
    self->fn = fn;
    self->arg = arg;
    self->line = 1;
    return self;
}


//  --------------------------------------------------------------------------
//  Destroys a reader.

void
trk_csv_reader_destroy (trk_csv_reader_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        trk_csv_reader_t *self = *self_p;
        csv_free (&self->parser);
        free (self->data);
        free (self);
        *self_p = NULL;
    }
}


//  --------------------------------------------------------------------------
//  Reads more of the body.

int
trk_csv_reader_feed (trk_csv_reader_t *self, const void *data, size_t size)
{
    assert (self);
    assert (data || size == 0);
    assert (!self->finished);
    if (self->error)
        return self->error;
    //  Past the byte bound, read up to it and then fail: the same records
    //  are delivered whatever the chunks.
    bool over = size > (size_t) TRK_CSV_MAX_BYTES - self->bytes;
    if (over)
        size = (size_t) TRK_CSV_MAX_BYTES - self->bytes;
    self->bytes += size;

    const unsigned char *next = (const unsigned char *) data;
    while (!self->bom_done && size > 0) {
        if (*next == s_bom [self->bom_matched]) {
            self->bom_matched++;
            next++;
            size--;
            self->bom_done = self->bom_matched == sizeof s_bom;
        }
        else {
            //  Not a BOM after all: what looked like one is data.
            self->bom_done = true;
            int rc = s_parse (self, s_bom, self->bom_matched);
            if (rc)
                return rc;
        }
    }
    int rc = s_parse (self, next, size);
    if (rc)
        return rc;
    if (over)
        return s_fail (self, TL_ETOOBIG, self->in_record? self->record_line: self->line,
                       "more than %ld bytes", (long) TRK_CSV_MAX_BYTES);
    return 0;
}


//  --------------------------------------------------------------------------
//  Ends the body.

int
trk_csv_reader_finish (trk_csv_reader_t *self)
{
    assert (self);
    if (self->error)
        return self->error;
    if (self->finished)
        return 0;
    if (!self->bom_done) {
        self->bom_done = true;
        int rc = s_parse (self, s_bom, self->bom_matched);
        if (rc)
            return rc;
    }
    if (csv_fini (&self->parser, s_on_field, s_on_record, self) != 0)
        return s_fail (self, TL_EINVAL, self->record_line, "unterminated quoted field");
    if (self->error)
        return self->error;
    self->finished = true;
    return 0;
}


size_t
trk_csv_reader_line (trk_csv_reader_t *self)
{
    assert (self);
    return self->last_line;
}

const char *
trk_csv_reader_error (trk_csv_reader_t *self)
{
    assert (self);
    return self->error? self->reason: NULL;
}

size_t
trk_csv_reader_records (trk_csv_reader_t *self)
{
    assert (self);
    return self->records;
}


//  --------------------------------------------------------------------------
//  The writer

//  True when a field must be quoted to read back as it is.

static bool
s_needs_quotes (const char *field, size_t size)
{
    if (size == 0)
        return false;
    char first = field [0];
    char last = field [size - 1];
    if (first == ' ' || first == '\t' || last == ' ' || last == '\t')
        return true;            //  libcsv trims them from unquoted fields
    if (size >= 3 && memcmp (field, s_bom, 3) == 0)
        return true;            //  first in a body, the reader would skip it
    for (size_t index = 0; index < size; index++) {
        char c = field [index];
        if (c == ',' || c == '"' || c == '\r' || c == '\n')
            return true;
    }
    return false;
}

int
trk_csv_write_field (tl_buf_t *out, const char *field, size_t size)
{
    assert (out);
    assert (field || size == 0);
    if (!s_needs_quotes (field, size))
        return tl_buf_append (out, field, size);

    size_t mark = tl_buf_size (out);
    int rc = tl_buf_append (out, "\"", 1);
    const char *run = field;
    const char *end = field + size;
    while (rc == 0 && run < end) {
        //  Up to and with the next quote, then that quote once more.
        const char *quote = (const char *) memchr (run, '"', (size_t) (end - run));
        size_t length = quote? (size_t) (quote - run) + 1: (size_t) (end - run);
        rc = tl_buf_append (out, run, length);
        if (rc == 0 && quote)
            rc = tl_buf_append (out, "\"", 1);
        run += length;
    }
    if (rc == 0)
        rc = tl_buf_append (out, "\"", 1);
    if (rc)
        tl_buf_truncate (out, mark);
    return rc;
}

int
trk_csv_end_record (tl_buf_t *out)
{
    assert (out);
    return tl_buf_append (out, "\r\n", 2);
}

int
trk_csv_write_record (tl_buf_t *out, const char **fields, const size_t *sizes,
                      size_t count)
{
    assert (out);
    assert (fields || count == 0);
    if (count == 0)
        return TL_EINVAL;
    size_t mark = tl_buf_size (out);
    int rc = 0;
    for (size_t index = 0; rc == 0 && index < count; index++) {
        size_t size = sizes? sizes [index]: strlen (fields [index]);
        if (index > 0)
            rc = tl_buf_append (out, ",", 1);
        if (rc == 0 && count == 1 && size == 0)
            rc = tl_buf_append (out, "\"\"", 2);
        else
        if (rc == 0)
            rc = trk_csv_write_field (out, fields [index], size);
    }
    if (rc == 0)
        rc = trk_csv_end_record (out);
    if (rc)
        tl_buf_truncate (out, mark);
    return rc;
}


//  --------------------------------------------------------------------------
//  Self-test

//  Collects the records a reader delivers as text, one per line:
//  "<line>:<size>[<bytes>]<size>[<bytes>]...\n", so that two readings
//  compare with memcmp.
typedef struct {
    tl_buf_t *log;
    size_t records;
    size_t last_line;
    size_t stop_at;             //  return TL_EEXIST at this record (1-based)
} s_collect_t;

static int
s_collect (void *arg, size_t line, const char **fields, const size_t *sizes, size_t count)
{
    s_collect_t *collect = (s_collect_t *) arg;
    assert (count >= 1 && count <= TRK_CSV_MAX_FIELDS);
    assert (line > collect->last_line);         //  records start on later lines
    collect->last_line = line;
    collect->records++;
    if (collect->log) {
        assert (tl_buf_printf (collect->log, "%zu:", line) == 0);
        for (size_t index = 0; index < count; index++) {
            assert (fields [index] [sizes [index]] == 0);
            assert (tl_buf_printf (collect->log, "%zu[", sizes [index]) == 0);
            assert (tl_buf_append (collect->log, fields [index], sizes [index]) == 0);
            assert (tl_buf_append (collect->log, "]", 1) == 0);
        }
        assert (tl_buf_append (collect->log, "\n", 1) == 0);
    }
    if (collect->stop_at && collect->records == collect->stop_at)
        return TL_EEXIST;
    return 0;
}

//  One reading of a whole body: its records in `log`, its outcome.
typedef struct {
    int rc;
    size_t line;
    char reason [64];
    size_t records;
} s_outcome_t;

//  A small deterministic generator for chunk sizes.

static uint32_t
s_random (uint32_t *state)
{
    *state = *state * 1103515245u + 12345u;
    return (*state >> 16) & 0x7fff;
}

//  Reads `input` fed whole (chunking 0), a byte at a time (1), or in
//  random chunks seeded by `chunking` (2 and up, 1 to chunking bytes each).

static s_outcome_t
s_read (const char *input, size_t size, uint32_t chunking, size_t stop_at, tl_buf_t *log)
{
    s_collect_t collect = { log, 0, 0, stop_at };
    trk_csv_reader_t *reader = trk_csv_reader_new (s_collect, &collect);
    assert (reader);
    assert (trk_csv_reader_error (reader) == NULL);
    s_outcome_t outcome = { 0, 0, "", 0 };
    uint32_t state = chunking;
    size_t offset = 0;
    while (outcome.rc == 0 && offset < size) {
        size_t chunk = size - offset;
        if (chunking == 1)
            chunk = 1;
        else
        if (chunking > 1)
            chunk = 1 + s_random (&state) % chunking;
        if (chunk > size - offset)
            chunk = size - offset;
        outcome.rc = trk_csv_reader_feed (reader, input + offset, chunk);
        offset += chunk;
    }
    if (outcome.rc == 0)
        outcome.rc = trk_csv_reader_finish (reader);
    //  An error sticks.
    assert (trk_csv_reader_finish (reader) == outcome.rc);
    if (outcome.rc)
        assert (trk_csv_reader_feed (reader, "x\n", 2) == outcome.rc);
    outcome.line = trk_csv_reader_line (reader);
    outcome.records = trk_csv_reader_records (reader);
    assert (outcome.records == collect.records);
    const char *reason = trk_csv_reader_error (reader);
    assert ((reason != NULL) == (outcome.rc != 0));
    if (reason)
        snprintf (outcome.reason, sizeof outcome.reason, "%s", reason);
    trk_csv_reader_destroy (&reader);
    assert (reader == NULL);
    trk_csv_reader_destroy (&reader);
    return outcome;
}

//  Reads `input` whole, byte by byte and in 30 random chunkings: all give
//  the same records and outcome. Returns the outcome; the records are in
//  `log` (when not NULL) as s_collect writes them.

static s_outcome_t
s_read_every_way (const char *input, size_t size, size_t stop_at, tl_buf_t *log)
{
    tl_buf_t *first = tl_buf_new (64L * 1024 * 1024);
    tl_buf_t *again = tl_buf_new (64L * 1024 * 1024);
    assert (first && again);
    s_outcome_t outcome = s_read (input, size, 0, stop_at, first);
    for (uint32_t chunking = 1; chunking <= 32; chunking++) {
        tl_buf_reset (again);
        s_outcome_t other = s_read (input, size, chunking == 32? 977: chunking,
                                    stop_at, again);
        assert (other.rc == outcome.rc);
        assert (other.line == outcome.line);
        assert (other.records == outcome.records);
        assert (strcmp (other.reason, outcome.reason) == 0);
        assert (tl_buf_size (again) == tl_buf_size (first));
        assert (memcmp (tl_buf_data (again), tl_buf_data (first), tl_buf_size (first)) == 0);
    }
    if (log)
        assert (tl_buf_append (log, tl_buf_data (first), tl_buf_size (first)) == 0);
    tl_buf_destroy (&first);
    tl_buf_destroy (&again);
    return outcome;
}

//  Checks that `input` reads (every way) as the records in `expect`
//  (s_collect's form) with outcome `rc` at `line` (when rc is not 0).

static void
s_check_read (const char *input, size_t size, const char *expect, int rc, size_t line,
              bool verbose)
{
    tl_buf_t *log = tl_buf_new (1024L * 1024);
    assert (log);
    s_outcome_t outcome = s_read_every_way (input, size, 0, log);
    if (verbose || strcmp (tl_buf_data (log), expect) != 0 || outcome.rc != rc
    ||  (rc && outcome.line != line))
        printf ("\n---- input (%zu bytes)\n%s\n---- records\n%s---- rc %d line %zu: %s\n",
                size, input, tl_buf_data (log), outcome.rc, outcome.line,
                outcome.reason);
    fflush (stdout);
    assert (strcmp (tl_buf_data (log), expect) == 0);
    assert (outcome.rc == rc);
    if (rc)
        assert (outcome.line == line);
    tl_buf_destroy (&log);
}

//  Counts line ends (CRLF, LF, lone CR) in `size` bytes.

static size_t
s_count_lines (const char *data, size_t size)
{
    size_t lines = 0;
    for (size_t index = 0; index < size; index++)
        if (data [index] == '\n' || (data [index] == '\r'
        && (index + 1 == size || data [index + 1] != '\n')))
            lines++;
    return lines;
}

//  A body of `count` records of one field `field` (with an LF each).

static char *
s_repeat (const char *record, size_t count, size_t *size)
{
    size_t length = strlen (record);
    char *body = (char *) malloc (length * count + 1);
    assert (body);
    for (size_t index = 0; index < count; index++)
        memcpy (body + index * length, record, length);
    body [length * count] = 0;
    *size = length * count;
    return body;
}

//  A literal and its size, NUL bytes included.
#define S_TEXT(literal) literal, sizeof literal - 1

static int
s_count_only (void *arg, size_t line, const char **fields, const size_t *sizes, size_t count)
{
    (*(size_t *) arg)++;
    return 0;
}

void
trk_csv_test (bool verbose)
{
    //  The writer: quotes only where needed.
    tl_buf_t *out = tl_buf_new (1024L * 1024);
    assert (out);
    const char *plain [] = { "a", "b c", " d", "e,f", "g\"h", "", "i\tj", "k\t",
                             "l\r\nm", "=1+2", "-5" };
    assert (trk_csv_write_record (out, plain, NULL, 11) == 0);
    assert (strcmp (tl_buf_data (out),
                    "a,b c,\" d\",\"e,f\",\"g\"\"h\",,i\tj,\"k\t\",\"l\r\nm\",=1+2,-5\r\n") == 0);
    tl_buf_reset (out);
    const char *empty [] = { "" };
    assert (trk_csv_write_record (out, empty, NULL, 1) == 0);
    assert (strcmp (tl_buf_data (out), "\"\"\r\n") == 0);
    const char *two_empty [] = { "", "" };
    assert (trk_csv_write_record (out, two_empty, NULL, 2) == 0);
    assert (strcmp (tl_buf_data (out), "\"\"\r\n,\r\n") == 0);
    assert (trk_csv_write_record (out, plain, NULL, 0) == TL_EINVAL);
    tl_buf_reset (out);
    assert (trk_csv_write_field (out, "\"\"", 2) == 0);
    assert (trk_csv_write_field (out, "x", 0) == 0);
    assert (trk_csv_end_record (out) == 0);
    assert (strcmp (tl_buf_data (out), "\"\"\"\"\"\"\r\n") == 0);
    //  Sizes given: a field may hold what strlen would stop at (the reader
    //  refuses NUL bytes, but the writer writes what it is given).
    tl_buf_reset (out);
    const size_t sizes [] = { 3, 1 };
    const char *with_sizes [] = { "a\0b", "xyz" };
    assert (trk_csv_write_record (out, with_sizes, sizes, 2) == 0);
    assert (tl_buf_size (out) == 7 && memcmp (tl_buf_data (out), "a\0b,x\r\n", 7) == 0);
    //  The buffer's cap: a failed write leaves the buffer as it was.
    tl_buf_t *tiny = tl_buf_new (12);
    assert (tiny);
    assert (trk_csv_write_field (tiny, "ok", 2) == 0);
    assert (trk_csv_write_field (tiny, "a,\"b\"c", 6) == 0);        //  "a,""b""c"
    assert (tl_buf_size (tiny) == 12);
    assert (trk_csv_write_field (tiny, ",", 1) == TL_ETOOBIG);
    assert (trk_csv_end_record (tiny) == TL_ETOOBIG);
    tl_buf_reset (tiny);
    assert (trk_csv_write_record (tiny, plain, NULL, 5) == TL_ETOOBIG);
    assert (tl_buf_size (tiny) == 0);
    tl_buf_destroy (&tiny);

    //  A field that starts with a BOM is quoted: first in a body, it would
    //  read as a BOM and be skipped.
    tl_buf_reset (out);
    const char *bom_first [] = { "\xEF\xBB\xBF" "a", "\xEF\xBB" };
    assert (trk_csv_write_record (out, bom_first, NULL, 2) == 0);
    assert (strcmp (tl_buf_data (out), "\"\xEF\xBB\xBF" "a\",\xEF\xBB\r\n") == 0);

    //  Records, lines and blank lines, every way of feeding.
    s_check_read (S_TEXT ("a,b\nc,d\n"), "1:1[a]1[b]\n2:1[c]1[d]\n", 0, 0, verbose);
    s_check_read (S_TEXT ("a,b\r\nc,d\r\n"), "1:1[a]1[b]\n2:1[c]1[d]\n", 0, 0, verbose);
    s_check_read (S_TEXT ("a,b\r\nc,d"), "1:1[a]1[b]\n2:1[c]1[d]\n", 0, 0, verbose);
    s_check_read (S_TEXT ("a\rb\rc"), "1:1[a]\n2:1[b]\n3:1[c]\n", 0, 0, verbose);
    s_check_read (S_TEXT ("a\r\n\rb\n"), "1:1[a]\n3:1[b]\n", 0, 0, verbose);
    s_check_read (S_TEXT ("\n\n  \r\n\ta,b\n\n \t\nc\n\n"), "4:1[a]1[b]\n7:1[c]\n", 0, 0, verbose);
    s_check_read (S_TEXT (""), "", 0, 0, verbose);
    s_check_read (S_TEXT ("\r\n\r\n"), "", 0, 0, verbose);
    s_check_read (S_TEXT ("x"), "1:1[x]\n", 0, 0, verbose);
    //  Quoted fields spanning lines: the next record's line counts them.
    s_check_read (S_TEXT ("1,\"two\nlines\"\n3,x\n"),
                  "1:1[1]9[two\nlines]\n3:1[3]1[x]\n", 0, 0, verbose);
    s_check_read (S_TEXT ("1,\"a\r\nb\r\n\r\nc\"\r\n2,y\r\n"),
                  "1:1[1]9[a\r\nb\r\n\r\nc]\n5:1[2]1[y]\n", 0, 0, verbose);
    s_check_read (S_TEXT ("\"\r\"\n\"\n\r\"\nz"), "1:1[\r]\n3:2[\n\r]\n6:1[z]\n", 0, 0, verbose);
    //  Empty fields, spaces, quotes.
    s_check_read (S_TEXT ("a,\"\",b\n\"\"\n,\n"), "1:1[a]0[]1[b]\n2:0[]\n3:0[]0[]\n", 0, 0, verbose);
    s_check_read (S_TEXT (" \"x\" , \"y\"\t\n a b ,c\n"), "1:1[x]1[y]\n2:3[a b]1[c]\n", 0, 0, verbose);
    s_check_read (S_TEXT ("\"a\"\"b\",\"\"\"\"\n"), "1:3[a\"b]1[\"]\n", 0, 0, verbose);
    s_check_read (S_TEXT ("\" a,\n\"\n"), "1:4[ a,\n]\n", 0, 0, verbose);
    //  The BOM at the very start is skipped, and only there.
    s_check_read (S_TEXT ("\xEF\xBB\xBFtimestamp,value,note\r\n2024-05-01T10:00:00Z,3,\r\n"),
                  "1:9[timestamp]5[value]4[note]\n2:20[2024-05-01T10:00:00Z]1[3]0[]\n",
                  0, 0, verbose);
    s_check_read (S_TEXT ("\xEF\xBB\xBF"), "", 0, 0, verbose);
    s_check_read (S_TEXT ("\xEF\xBB\xBF\xEF\xBB\xBF" "a\n"), "1:4[\xEF\xBB\xBF" "a]\n", 0, 0, verbose);
    s_check_read (S_TEXT ("\xEF\xBB\xBF\n\nx"), "3:1[x]\n", 0, 0, verbose);
    //  UTF-8 is kept as it is.
    s_check_read (S_TEXT ("caf\xC3\xA9,\xF0\x9F\x98\x80,\xE6\xBC\xA2\xE5\xAD\x97\n"),
                  "1:5[caf\xC3\xA9]4[\xF0\x9F\x98\x80]6[\xE6\xBC\xA2\xE5\xAD\x97]\n",
                  0, 0, verbose);

    //  Errors, each at the line where its record starts.
    s_check_read (S_TEXT ("ok\nab\"c\nz\n"), "1:2[ok]\n", TL_EINVAL, 2, verbose);
    s_check_read (S_TEXT ("ok\n\n\"ab\"c\n"), "1:2[ok]\n", TL_EINVAL, 3, verbose);
    s_check_read (S_TEXT ("ok\n\"ab\" \"\n"), "1:2[ok]\n", TL_EINVAL, 2, verbose);
    s_check_read (S_TEXT ("ok\n\"multi\nline\"x\n"), "1:2[ok]\n", TL_EINVAL, 2, verbose);
    s_check_read (S_TEXT ("ok\nok2\n\"open\nstill\n"), "1:2[ok]\n2:3[ok2]\n", TL_EINVAL, 3, verbose);
    s_check_read (S_TEXT ("ok\n\"open\"\""), "1:2[ok]\n", TL_EINVAL, 2, verbose);
    s_check_read (S_TEXT ("ok\n\xFF\n"), "1:2[ok]\n", TL_EINVAL, 2, verbose);
    s_check_read (S_TEXT ("ok\n\"\xC0\x80\"\n"), "1:2[ok]\n", TL_EINVAL, 2, verbose);
    s_check_read (S_TEXT ("ok\n\xED\xA0\x80\n"), "1:2[ok]\n", TL_EINVAL, 2, verbose);
    s_check_read (S_TEXT ("ok\na\0b\n"), "1:2[ok]\n", TL_EINVAL, 2, verbose);
    s_check_read (S_TEXT ("\xEF\xBB"), "", TL_EINVAL, 1, verbose);         //  half a BOM
    s_check_read (S_TEXT ("\xEF\xBBx\n"), "", TL_EINVAL, 1, verbose);
    s_outcome_t outcome = s_read_every_way (S_TEXT ("ok\n\"open"), 0, NULL);
    assert (outcome.rc == TL_EINVAL && outcome.line == 2);
    assert (strcmp (outcome.reason, "unterminated quoted field") == 0);
    outcome = s_read_every_way (S_TEXT ("a\"b"), 0, NULL);
    assert (strcmp (outcome.reason, "stray quote in a field") == 0);
    outcome = s_read_every_way (S_TEXT ("\"a\"b"), 0, NULL);
    assert (strcmp (outcome.reason, "text after a closing quote") == 0);
    outcome = s_read_every_way (S_TEXT ("a\n\xC3\x28"), 0, NULL);
    assert (strcmp (outcome.reason, "not UTF-8") == 0 && outcome.line == 2);

    //  The callback stops the reader with its code.
    tl_buf_t *log = tl_buf_new (1024);
    assert (log);
    outcome = s_read_every_way (S_TEXT ("a\nb\nc\nd\n"), 2, log);
    assert (outcome.rc == TL_EEXIST && outcome.line == 2 && outcome.records == 2);
    assert (strcmp (tl_buf_data (log), "1:1[a]\n2:1[b]\n") == 0);
    tl_buf_reset (log);
    outcome = s_read_every_way (S_TEXT ("a\nb"), 2, log);         //  from finish
    assert (outcome.rc == TL_EEXIST && outcome.line == 2);

    //  Field size: 8192 bytes pass, quoted (quotes doubled) or not; 8193 do
    //  not, at the record's line.
    size_t big_size = 3 * TRK_CSV_MAX_FIELD + 64;
    char *big = (char *) malloc (big_size);
    assert (big);
    memcpy (big, "h\n", 2);
    memset (big + 2, 'x', TRK_CSV_MAX_FIELD);
    memcpy (big + 2 + TRK_CSV_MAX_FIELD, "\n", 1);
    outcome = s_read (big, 3 + TRK_CSV_MAX_FIELD, 0, 0, NULL);
    assert (outcome.rc == 0 && outcome.records == 2);
    memcpy (big + 2 + TRK_CSV_MAX_FIELD, "x\n", 2);
    outcome = s_read (big, 4 + TRK_CSV_MAX_FIELD, 0, 0, NULL);
    assert (outcome.rc == TL_ETOOBIG && outcome.line == 2 && outcome.records == 1);
    assert (strcmp (outcome.reason, "field longer than 8192 bytes") == 0);
    outcome = s_read (big, 4 + TRK_CSV_MAX_FIELD, 7, 0, NULL);
    assert (outcome.rc == TL_ETOOBIG && outcome.line == 2);
    //  A quoted field of 8192 quotes: 16386 bytes of text.
    big [2] = '"';
    memset (big + 3, '"', 2 * TRK_CSV_MAX_FIELD);
    memcpy (big + 3 + 2 * TRK_CSV_MAX_FIELD, "\",y\n", 4);
    tl_buf_reset (log);
    s_collect_t collect = { NULL, 0, 0, 0 };
    trk_csv_reader_t *reader = trk_csv_reader_new (s_collect, &collect);
    assert (reader);
    assert (trk_csv_reader_feed (reader, big, 7 + 2 * TRK_CSV_MAX_FIELD) == 0);
    assert (trk_csv_reader_finish (reader) == 0);
    assert (collect.records == 2);
    trk_csv_reader_destroy (&reader);
    //  One quote more is one byte too many.
    memcpy (big + 3 + 2 * TRK_CSV_MAX_FIELD, "\"\"\",y\n", 6);
    outcome = s_read (big, 9 + 2 * TRK_CSV_MAX_FIELD, 0, 0, NULL);
    assert (outcome.rc == TL_ETOOBIG && outcome.line == 2);
    free (big);

    //  A 10 MiB field is refused as soon as it passes the bound, and the
    //  reader's buffer never grows past it.
    char chunk [4096];
    memset (chunk, 'x', sizeof chunk);
    for (int quoted = 0; quoted < 2; quoted++) {
        reader = trk_csv_reader_new (s_count_only, &collect.records);
        assert (reader);
        assert (trk_csv_reader_feed (reader, "a\n\n", 3) == 0);
        if (quoted)
            assert (trk_csv_reader_feed (reader, "\"", 1) == 0);
        size_t fed = 0;
        int rc = 0;
        while (rc == 0 && fed < 10L * 1024 * 1024) {
            rc = trk_csv_reader_feed (reader, chunk, sizeof chunk);
            fed += sizeof chunk;
            assert (csv_get_buffer_size (&reader->parser) <= S_FIELD_BUFFER_MAX);
        }
        assert (rc == TL_ETOOBIG);
        assert (fed <= TRK_CSV_MAX_FIELD + 2 * sizeof chunk);
        assert (trk_csv_reader_line (reader) == 3);
        assert (reader->data_max <= S_RECORD_MAX);
        trk_csv_reader_destroy (&reader);
    }

    //  Fields per record: 16 pass, 17 do not.
    s_check_read (S_TEXT ("a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p\n"),
                  "1:1[a]1[b]1[c]1[d]1[e]1[f]1[g]1[h]1[i]1[j]1[k]1[l]1[m]1[n]1[o]1[p]\n",
                  0, 0, verbose);
    s_check_read (S_TEXT ("x\n\na,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,\n"), "1:1[x]\n",
                  TL_ETOOBIG, 3, verbose);
    outcome = s_read_every_way (S_TEXT (",,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,"), 0, NULL);
    assert (outcome.rc == TL_ETOOBIG && strcmp (outcome.reason, "more than 16 fields") == 0);

    //  Records: a header and TRK_CSV_MAX_ROWS rows pass; one more does not,
    //  at its line.
    size_t size;
    char *rows = s_repeat ("1,2\r\n", TRK_CSV_MAX_RECORDS + 1, &size);
    outcome = s_read (rows, size - 5, 0, 0, NULL);
    assert (outcome.rc == 0 && outcome.records == TRK_CSV_MAX_RECORDS);
    outcome = s_read (rows, size, 0, 0, NULL);
    assert (outcome.rc == TL_ETOOBIG && outcome.records == TRK_CSV_MAX_RECORDS);
    assert (outcome.line == TRK_CSV_MAX_RECORDS + 1);
    outcome = s_read (rows, size - 3, 4093, 0, NULL);     //  "1" of the last row
    assert (outcome.rc == TL_ETOOBIG && outcome.line == TRK_CSV_MAX_RECORDS + 1);
    free (rows);

    //  Bytes: TRK_CSV_MAX_BYTES pass, one more does not, however it is fed.
    char *spaces = s_repeat (" ", TRK_CSV_MAX_BYTES + 1, &size);
    spaces [TRK_CSV_MAX_BYTES - 2] = 'z';
    spaces [TRK_CSV_MAX_BYTES - 1] = '\n';
    outcome = s_read (spaces, TRK_CSV_MAX_BYTES, 0, 0, NULL);
    assert (outcome.rc == 0 && outcome.records == 1);
    outcome = s_read (spaces, TRK_CSV_MAX_BYTES + 1, 0, 0, NULL);
    assert (outcome.rc == TL_ETOOBIG && outcome.records == 1 && outcome.line == 2);
    outcome = s_read (spaces, TRK_CSV_MAX_BYTES + 1, 65536, 0, NULL);
    assert (outcome.rc == TL_ETOOBIG && outcome.records == 1 && outcome.line == 2);
    free (spaces);

    //  Nasty round trips: records written by the writer read back the same,
    //  fed every way, each at the line where the writer began it.
    char longest [TRK_CSV_MAX_FIELD + 1];
    for (size_t index = 0; index < TRK_CSV_MAX_FIELD; index++)
        longest [index] = "a,\"\r\n b"[index % 7];
    longest [TRK_CSV_MAX_FIELD] = 0;
    const char *nasty [] = {
        "plain", "with,comma", "with \"quotes\"", "\"", "\"\"", "cr\rinside",
        "lf\ninside", "crlf\r\ninside", "", " leading", "trailing ", "\ttab", "tab\t",
        " ", "  ", ",", "\n", "\r", "\r\n", "\r\n\r\n", "\n\n\n", "x\"", "\"x",
        "emoji \xF0\x9F\x98\x80\xF0\x9F\x8E\x89", "\xE6\xBC\xA2\xE5\xAD\x97 CJK",
        "\xEF\xBB\xBF" "bom inside", "=1+2", "+1", "-5", "@SUM(A1)", "\tindent",
        "a\r\n\r\nb", " \" , \" ", "caf\xC3\xA9", longest
    };
    size_t nnasty = sizeof nasty / sizeof nasty [0];
    tl_buf_t *expect = tl_buf_new (16L * 1024 * 1024);
    assert (expect);
    tl_buf_reset (out);
    tl_buf_t *body = tl_buf_new (16L * 1024 * 1024);
    assert (body);
    uint32_t state = 42;
    for (size_t record = 0; record < 300; record++) {
        const char *fields [TRK_CSV_MAX_FIELDS];
        size_t count = 1 + s_random (&state) % TRK_CSV_MAX_FIELDS;
        if (record < nnasty)
            count = 1;          //  each alone first: a record of one field
        size_t line = 1 + s_count_lines (tl_buf_data (body), tl_buf_size (body));
        assert (tl_buf_printf (expect, "%zu:", line) == 0);
        for (size_t index = 0; index < count; index++) {
            fields [index] = record < nnasty? nasty [record]:
                             nasty [s_random (&state) % (nnasty - 1)];
            size_t length = strlen (fields [index]);
            assert (tl_buf_printf (expect, "%zu[", length) == 0);
            assert (tl_buf_append (expect, fields [index], length) == 0);
            assert (tl_buf_append (expect, "]", 1) == 0);
        }
        assert (tl_buf_append (expect, "\n", 1) == 0);
        assert (trk_csv_write_record (body, fields, NULL, count) == 0);
        if (record % 17 == 3)           //  blank lines between records
            assert (tl_buf_append (body, "\r\n\n", 3) == 0);
    }
    s_check_read (tl_buf_data (body), tl_buf_size (body), tl_buf_data (expect), 0, 0, false);
    //  The same with a BOM in front, and without the last CRLF.
    tl_buf_t *with_bom = tl_buf_new (16L * 1024 * 1024);
    assert (with_bom);
    assert (tl_buf_append (with_bom, "\xEF\xBB\xBF", 3) == 0);
    assert (tl_buf_append (with_bom, tl_buf_data (body), tl_buf_size (body) - 2) == 0);
    s_check_read (tl_buf_data (with_bom), tl_buf_size (with_bom), tl_buf_data (expect),
                  0, 0, false);
    tl_buf_destroy (&with_bom);
    tl_buf_destroy (&body);
    tl_buf_destroy (&expect);
    tl_buf_destroy (&log);
    tl_buf_destroy (&out);
}
