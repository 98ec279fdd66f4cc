//  trk_csv.h — RFC 4180 CSV for the tracker's export and import of logs.
//  The reader takes a body in chunks of any size (a byte at a time gives the
//  same records as the whole body at once) and hands each record to a
//  callback with the physical line it starts on, so that an import can name
//  every bad line. It holds one record at a time: its memory is bounded by
//  TRK_CSV_MAX_FIELDS fields of TRK_CSV_MAX_FIELD bytes, never by the body.
//  The writer appends fields to a tl_buf_t, quoting only where needed.
//
//  What the reader accepts (libcsv in strict mode, with our own bounds):
//  - records end with CRLF, LF or a lone CR; each of these is one line end
//    for the line numbers, inside a quoted field too;
//  - a UTF-8 byte order mark at the very start is skipped;
//  - empty lines, and lines of only spaces and tabs, are skipped: they are
//    no record (a record with one empty field is written `""`);
//  - spaces and tabs around an unquoted field, and around a quoted one, are
//    dropped (libcsv does so); inside quotes everything is kept;
//  - a quote inside an unquoted field, or text after a closing quote, is an
//    error (TL_EINVAL), and so is a quoted field still open at the end;
//  - every field must be UTF-8 without NUL bytes (TL_EINVAL);
//  - bounds (TL_ETOOBIG): TRK_CSV_MAX_FIELD bytes a field (spaces libcsv
//    trims count while it reads them), TRK_CSV_MAX_FIELDS fields a record,
//    TRK_CSV_MAX_RECORDS records (a header and TRK_CSV_MAX_ROWS rows),
//    TRK_CSV_MAX_BYTES bytes in all.
//  An error is reported at the line where the record holding it starts.
//
//  Formula injection ("CSV injection", OWASP): a field that starts with
//  = + - @ TAB or CR may be run as a formula by a spreadsheet. The writer
//  does NOT guard against it (no leading `'`): an export must import back
//  exactly, and negative numbers start with '-'. The export is data for
//  programs; whoever opens it in a spreadsheet should import it as text.
#ifndef TRK_CSV_H_INCLUDED
#define TRK_CSV_H_INCLUDED

#include <stdbool.h>
#include "trk_limits.h"
#include <stddef.h>

#include "tl_buf.h"

typedef struct _trk_csv_reader_t trk_csv_reader_t;

//  Receives one record: `count` fields (1..TRK_CSV_MAX_FIELDS), field i is
//  `sizes [i]` bytes at `fields [i]`, followed by a NUL byte that is not
//  part of it (fields hold no NUL of their own). `line` is the 1-based
//  physical line where the record starts. Everything is borrowed until the
//  callback returns. Returns 0 to go on; anything else stops the reader and
//  is returned by the trk_csv_reader_feed or _finish that delivered the
//  record (use a negative TL_E* code).
typedef int (trk_csv_record_fn) (void *arg, size_t line, const char **fields,
                                 const size_t *sizes, size_t count);

//  Creates a reader that calls `fn` with `arg` for each record. Returns
//  NULL on allocation failure.
trk_csv_reader_t *trk_csv_reader_new (trk_csv_record_fn *fn, void *arg);

//  Destroys the reader and nulls the caller's reference. Safe on NULL.
void trk_csv_reader_destroy (trk_csv_reader_t **self_p);

//  Reads `size` more bytes of the body, calling back for each record they
//  complete. Returns 0; TL_EINVAL (bad quoting, not UTF-8, a NUL byte);
//  TL_ETOOBIG (a bound above); TL_ENOMEM; or the callback's non-zero code.
//  An error stops the reader for good: each later feed or finish returns
//  the same code. Must not be called after trk_csv_reader_finish.
int trk_csv_reader_feed (trk_csv_reader_t *self, const void *data, size_t size);

//  Ends the body: delivers a last record that has no line end. Returns 0,
//  TL_EINVAL for a quoted field still open ("unterminated quoted field"),
//  or any code of trk_csv_reader_feed. Calling it again returns the same.
int trk_csv_reader_finish (trk_csv_reader_t *self);

//  The line of the error that stopped the reader, else of the last record
//  delivered (0 before the first).
size_t trk_csv_reader_line (trk_csv_reader_t *self);

//  A short reason for the error that stopped the reader ("unterminated
//  quoted field", "field longer than 8192 bytes", "not UTF-8"...), printable
//  ASCII; NULL when there was none. Borrowed: valid until destroy.
const char *trk_csv_reader_error (trk_csv_reader_t *self);

//  The number of records delivered so far (the header included).
size_t trk_csv_reader_records (trk_csv_reader_t *self);

//  Appends one field of `size` bytes. It is quoted (with its quotes
//  doubled) when it holds a comma, a quote, a CR or an LF, starts or ends
//  with a space or a tab, or starts with a BOM (U+FEFF, which the reader
//  would skip at the start of a body); otherwise written as is. Returns 0,
//  TL_ETOOBIG or TL_ENOMEM (the buffer's); on failure `out` is as it was.
int trk_csv_write_field (tl_buf_t *out, const char *field, size_t size);

//  Appends the record separator, CRLF. Returns 0, TL_ETOOBIG or TL_ENOMEM.
int trk_csv_end_record (tl_buf_t *out);

//  Appends a whole record: `count` (at least 1) fields separated by commas,
//  then CRLF. `sizes` NULL means the fields are NUL-terminated. A record of
//  one empty field is written `""`, so that it is not an empty line.
//  Returns 0, TL_EINVAL when `count` is 0, TL_ETOOBIG or TL_ENOMEM; on
//  failure `out` is as it was.
int trk_csv_write_record (tl_buf_t *out, const char **fields, const size_t *sizes,
                          size_t count);

//  Self-test, run by ctest.
void trk_csv_test (bool verbose);

#endif
