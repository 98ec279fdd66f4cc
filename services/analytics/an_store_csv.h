//  an_store_csv.h — a strict RFC 4180 CSV reader for the store data
//  (POST /stores/data). It takes a body in chunks of any size (a byte at a
//  time gives the same records as the whole body at once) and hands each
//  record to a callback with the physical line it starts on, so that a load
//  can name every bad line. It holds one record at a time: its memory is
//  AN_CSV_MAX_FIELDS fields of AN_CSV_MAX_FIELD bytes, never the body's.
//
//  What it accepts:
//  - records end with CRLF, LF or a lone CR, each one line end for the
//    line numbers (inside a quoted field too);
//  - a UTF-8 byte order mark at the very start is skipped;
//  - empty lines are skipped (they are no record);
//  - a field that starts with `"` is quoted: `""` inside it is one quote,
//    and the closing quote must be followed by a comma or a line end;
//  - fields are kept byte for byte (no trimming): the columns' own checks
//    say what a field may hold.
//  Errors (TL_EINVAL) stop the reader: a quote inside an unquoted field,
//  text after a closing quote, a quoted field still open at the end, a NUL
//  byte. Bounds (TL_ETOOBIG): AN_CSV_MAX_FIELD bytes a field,
//  AN_CSV_MAX_FIELDS fields a record, AN_CSV_MAX_BYTES bytes in all.
//  An error is reported at the line where its record starts.
//
//  The tracker's trk_csv reads the same RFC with libcsv and trims spaces;
//  services never share headers, and this one keeps fields exactly.
#ifndef AN_STORE_CSV_H_INCLUDED
#define AN_STORE_CSV_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "an_store_limits.h"

typedef struct _an_store_csv_t an_store_csv_t;

//  Receives one record: `count` fields (1..AN_CSV_MAX_FIELDS); field i is
//  `sizes [i]` bytes at `fields [i]`, followed by a NUL that is not part of
//  it. `line` is the 1-based physical line where the record starts.
//  Everything is borrowed until the callback returns. Returns 0 to go on;
//  anything else stops the reader and is returned by the feed or finish
//  that delivered the record (use a negative TL_E* code).
typedef int (an_store_csv_fn) (void *arg, size_t line, const char **fields,
                               const size_t *sizes, size_t count);

//  Creates a reader calling `fn` with `arg`. Returns NULL on allocation
//  failure.
an_store_csv_t *an_store_csv_new (an_store_csv_fn *fn, void *arg);

//  Destroys the reader and nulls the caller's reference. Safe on NULL.
void an_store_csv_destroy (an_store_csv_t **self_p);

//  Reads `size` more bytes, calling back for each record they complete.
//  Returns 0, TL_EINVAL, TL_ETOOBIG or the callback's code. An error stops
//  the reader for good: later feeds and finishes return the same code.
int an_store_csv_feed (an_store_csv_t *self, const void *data, size_t size);

//  Ends the body: delivers a last record without a line end. Returns 0,
//  TL_EINVAL for a quoted field still open, or as an_store_csv_feed.
//  Calling it again returns the same.
int an_store_csv_finish (an_store_csv_t *self);

//  The line of the error that stopped the reader, else of the last record
//  delivered (0 before the first).
size_t an_store_csv_line (an_store_csv_t *self);

//  A short reason for the error that stopped the reader, printable ASCII,
//  or NULL when there was none. Borrowed until destroy.
const char *an_store_csv_error (an_store_csv_t *self);

//  Self-test, run by ctest.
void an_store_csv_test (bool verbose);

#endif
