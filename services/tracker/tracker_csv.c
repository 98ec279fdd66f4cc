//  tracker_csv.c — the tracker's CSV (shared/API.md "Trackers"): export of
//  one tracker's logs (logs.export), of every tracker and log of the caller
//  (trackers.export), and the all-or-nothing import of a tracker's logs
//  (logs.import).
//
//  Exports read logs a page at a time (keyset on at, created_at, id) inside
//  one read-only REPEATABLE READ transaction, so that the file is one
//  snapshot, and stop at TRK_CSV_MAX_EXPORT_BYTES (413). The body is a
//  MessagePack bin the gateway sends as it is; the gateway adds the ETag.
//
//  An import reads the body twice through trk_csv's streaming reader, inside
//  one transaction that holds the tracker FOR UPDATE: pass 1 checks every
//  row and collects each bad line (TRK_CSV_MAX_ERRORS of them, then a
//  count); only when there is none, pass 2 reads the body again and inserts
//  in batches of TRK_CSV_BATCH_ROWS rows, each one INSERT ... SELECT FROM
//  unnest over array parameters. Memory holds one batch, never the file's
//  rows. Logs with equal timestamps keep their order in the file: each row's
//  created_at is the transaction's time plus its ordinal in microseconds,
//  and exports order by (at, created_at, id).
#include "tracker_service.h"
#include "trk_limits.h"
#include "tl_error.h"
#include "tl_jobs.h"
#include "tl_log.h"
#include "tl_mp.h"
#include "trk_csv.h"
#include "tl_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

_Static_assert (TRK_CSV_MAX_EXPORT_BYTES + 4096 < TL_MAX_FRAME_BYTES,
                "an export and its envelope must fit one mesh frame");

//  The first key of a keyset: before every row.
#define S_KEY_START_TIME    "-infinity"
#define S_KEY_START_ID      "00000000-0000-0000-0000-000000000000"
#define S_KEY_SIZE          64          //  a timestamptz's text, NUL included
#define S_REASON_SIZE       256         //  one bad line's reasons
#define S_FILENAME_MAX      64          //  bytes of a download's name, before ".csv"

static const tl_db_statement_t s_statements [] = {
    //  One snapshot for a whole export (first statement of its transaction)
    { "csv_snapshot", "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", 0 },
    //  A page of a tracker's logs, oldest first, after key ($3 at,
    //  $4 created_at, $5 id); `at >= $3` lets the scan start in the index
    { "csv_logs_page",
      "SELECT rfc3339 (at), at, created_at, id, num, flag, choice, note FROM logs "
      "WHERE tracker_id = $1 AND owner = $2 AND at >= $3::timestamptz "
      "  AND (at, created_at, id) > ($3::timestamptz, $4::timestamptz, $5::uuid) "
      "ORDER BY at, created_at, id LIMIT $6::int", 6 },
    //  A page of the owner's trackers in creation order, after ($2, $3)
    { "csv_trackers_page",
      "SELECT " TRACKER_ROW_COLUMNS ", created_at FROM trackers "
      "WHERE owner = $1 AND (created_at, id) > ($2::timestamptz, $3::uuid) "
      "ORDER BY created_at, id LIMIT $4::int", 4 },
    //  Today in zone $3 as [start, end) in ms, and the tracker's logs in it
    { "csv_mood_today",
      "WITH d AS (SELECT date_trunc ('day', now () AT TIME ZONE $3) AS day) "
      "SELECT (extract (epoch FROM d.day AT TIME ZONE $3) * 1000)::bigint, "
      "       (extract (epoch FROM (d.day + interval '1 day') AT TIME ZONE $3) * 1000)::bigint, "
      "       (SELECT count (*) FROM logs WHERE tracker_id = $1 AND owner = $2 "
      "          AND at >= d.day AT TIME ZONE $3 "
      "          AND at < (d.day + interval '1 day') AT TIME ZONE $3) "
      "FROM d", 3 },
    //  A batch of an import: $3..$7 arrays of one length (a NULL array is
    //  padded with NULLs), $8 the rows imported before this batch
    { "csv_logs_insert",
      "INSERT INTO logs (tracker_id, owner, at, num, flag, choice, note, created_at) "
      "SELECT $1::uuid, $2, t.at, t.num, t.flag, t.choice, t.note, "
      "       now () + ($8::bigint + t.ord) * interval '1 microsecond' "
      "FROM unnest ($3::timestamptz [], $4::float8 [], $5::boolean [], $6::text [], "
      "             $7::text []) WITH ORDINALITY AS t (at, num, flag, choice, note, ord)", 8 },
};

int
tracker_csv_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

//  Copies a row's key value into `key`. Returns 0, or TL_EINVAL when it is
//  NULL or does not fit.
static int
s_key_copy (char key [S_KEY_SIZE], const char *value)
{
    if (!value || strlen (value) >= S_KEY_SIZE)
        return TL_EINVAL;
    strcpy (key, value);
    return 0;
}


//  ---------------------------------------------------------------------
//  Exports

typedef struct {
    const char *owner;
    tracker_t *tracker;         //  logs.export: the one tracker; NULL: all of them
    bool snapshot;              //  set the transaction's isolation first
    tl_buf_t *out;
    size_t rows;                //  logs written
} s_export_t;

//  Writes the log at `row` of a csv_logs_page result as one record: its
//  timestamp, value and note, after the tracker's columns when `with_tracker`.
//  Returns 1 when written, 0 for a row skipped (its value does not fit the
//  tracker's type: TRACKER_VALUE_FITS), or the writer's TL_ETOOBIG /
//  TL_ENOMEM.
static int
s_write_log (const PGresult *res, int row, const tracker_t *tracker, bool with_tracker,
             tl_buf_t *out)
{
    trk_value_t value;
    char text [TRK_VALUE_TEXT_SIZE];
    if (tracker_value_from_row (res, row, 4, tracker->type, &value) != 0
    ||  trk_value_to_text (&value, text, sizeof text) < 0)
        return 0;
    const char *timestamp = tl_db_value (res, row, 0);
    const char *note = tl_db_value (res, row, 7);
    const char *fields [] = { tracker->id, tracker->name, trk_type_name (tracker->type),
                              tracker->unit, timestamp ? timestamp : "", text,
                              note ? note : "" };
    int rc = with_tracker ? trk_csv_write_record (out, fields, NULL, 7)
                          : trk_csv_write_record (out, fields + 4, NULL, 3);
    return rc ? rc : 1;
}

//  Writes every log of `tracker`, oldest first, reading them a page at a
//  time. Returns 0 with the number written added to *rows, or TL_ETOOBIG
//  (past the export's bound), TL_ENOMEM or a database code.
static int
s_write_logs (tl_db_t *db, const tracker_t *tracker, bool with_tracker, tl_buf_t *out,
              size_t *rows)
{
    char at [S_KEY_SIZE] = S_KEY_START_TIME;
    char created [S_KEY_SIZE] = S_KEY_START_TIME;
    char id [S_KEY_SIZE] = S_KEY_START_ID;
    char limit [16];
    snprintf (limit, sizeof limit, "%d", TRK_CSV_EXPORT_PAGE);
    while (true) {
        const char *values [] = { tracker->id, tracker->owner, at, created, id, limit };
        int rc = 0;
        PGresult *res = tl_db_exec (db, "csv_logs_page", 6, values, &rc);
        if (!res)
            return rc;
        int count = PQntuples (res);
        for (int row = 0; rc >= 0 && row < count; row++) {
            rc = s_write_log (res, row, tracker, with_tracker, out);
            *rows += rc > 0 ? 1 : 0;
        }
        rc = rc < 0 ? rc : 0;
        if (rc == 0 && count > 0) {
            rc = s_key_copy (at, tl_db_value (res, count - 1, 1));
            rc = rc ? rc : s_key_copy (created, tl_db_value (res, count - 1, 2));
            rc = rc ? rc : s_key_copy (id, tl_db_value (res, count - 1, 3));
        }
        PQclear (res);
        if (rc)
            return rc;
        if (count < TRK_CSV_EXPORT_PAGE)
            return 0;
    }
}

//  Writes every tracker of the owner in creation order, each followed by
//  its logs (a tracker without logs: one record with empty timestamp,
//  value and note). Returns 0 or a code as s_write_logs.
static int
s_write_trackers (tl_db_t *db, s_export_t *export)
{
    char created [S_KEY_SIZE] = S_KEY_START_TIME;
    char id [S_KEY_SIZE] = S_KEY_START_ID;
    char limit [16];
    snprintf (limit, sizeof limit, "%d", TRK_CSV_EXPORT_PAGE);
    while (true) {
        const char *values [] = { export->owner, created, id, limit };
        int rc = 0;
        PGresult *res = tl_db_exec (db, "csv_trackers_page", 4, values, &rc);
        if (!res)
            return rc;
        int count = PQntuples (res);
        for (int row = 0; rc == 0 && row < count; row++) {
            tracker_t tracker;
            rc = tracker_from_row (res, row, 0, &tracker);
            if (rc)
                break;
            size_t before = export->rows;
            rc = s_write_logs (db, &tracker, true, export->out, &export->rows);
            if (rc == 0 && export->rows == before) {
                const char *fields [] = { tracker.id, tracker.name,
                                          trk_type_name (tracker.type), tracker.unit,
                                          "", "", "" };
                rc = trk_csv_write_record (export->out, fields, NULL, 7);
            }
            tracker_clear (&tracker);
        }
        if (rc == 0 && count > 0) {
            rc = s_key_copy (created, tl_db_value (res, count - 1, 6));
            rc = rc ? rc : s_key_copy (id, tl_db_value (res, count - 1, 0));
        }
        PQclear (res);
        if (rc || count < TRK_CSV_EXPORT_PAGE)
            return rc;
    }
}

//  The export's transaction: starts over with an empty buffer each time
//  it runs.
static int
s_export_tx (tl_db_t *db, void *arg)
{
    s_export_t *export = (s_export_t *) arg;
    tl_buf_reset (export->out);
    export->rows = 0;
    if (export->snapshot) {
        long rc = tl_db_exec_count (db, "csv_snapshot", 0, NULL);
        if (rc < 0)
            return (int) rc;
    }
    if (export->tracker) {
        static const char *header [] = { "timestamp", "value", "note" };
        int rc = trk_csv_write_record (export->out, header, NULL, 3);
        return rc ? rc : s_write_logs (db, export->tracker, false, export->out, &export->rows);
    }
    static const char *header [] = { "tracker_id", "tracker", "type", "unit",
                                     "timestamp", "value", "note" };
    int rc = trk_csv_write_record (export->out, header, NULL, 7);
    return rc ? rc : s_write_trackers (db, export);
}

//  Writes a download's file name for a tracker called `name`: its ASCII
//  letters, digits, '.', '-' and '_', every other run of bytes one '_',
//  at most S_FILENAME_MAX bytes, then ".csv"; "tracker.csv" when nothing
//  is left. Safe inside a quoted Content-Disposition filename.
static void
s_filename (const char *name, char filename [S_FILENAME_MAX + 5])
{
    size_t size = 0;
    bool gap = false;
    for (const char *s = name; *s; s++) {
        char c = *s;
        bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                 || c == '-' || c == '_' || (c == '.' && size > 0);
        if (!keep) {
            gap = size > 0;
            continue;
        }
        if (size + (gap ? 2 : 1) > S_FILENAME_MAX)
            break;
        if (gap)
            filename [size++] = '_';
        filename [size++] = c;
        gap = false;
    }
    filename [size] = 0;
    strcat (filename, size ? ".csv" : "tracker.csv");
}

//  Runs an export and answers 200 with the CSV as an attachment called
//  `filename`, or the error: 413 past TRK_CSV_MAX_EXPORT_BYTES, 503 for a
//  corrupt row or the database.
static void
s_export (tl_call_t *call, tracker_t *tracker, const char *filename)
{
    tl_db_t *db = tl_call_db (call);
    s_export_t export = { tl_call_user (call), tracker, !tl_db_in_tx (db),
                          tl_buf_new (TRK_CSV_MAX_EXPORT_BYTES), 0 };
    int rc = export.out ? tl_db_tx (db, s_export_tx, &export) : TL_ENOMEM;
    if (rc == TL_ETOOBIG)
        tl_call_error (call, 413, "too_large",
                       "the export would be larger than %ld MiB",
                       (long) (TRK_CSV_MAX_EXPORT_BYTES / (1024 * 1024)));
    else
    if (rc == TL_EINVAL)
        tl_call_error (call, 503, "corrupt", "a log could not be read");
    else
    if (rc == TL_ENOMEM)
        tl_call_error (call, 503, "unavailable", "out of memory");
    else
    if (rc)
        tl_call_db_error (call, rc);
    else {
        char disposition [S_FILENAME_MAX + 64];
        snprintf (disposition, sizeof disposition, "attachment; filename=\"%s\"", filename);
        size_t size = tl_buf_size (export.out);
        msgpack_packer *pk = tl_call_reply (call, 200);
        if (msgpack_pack_bin (pk, size) != 0
        ||  msgpack_pack_bin_body (pk, tl_buf_data (export.out), size) != 0)
            tl_call_error (call, 503, "unavailable", "out of memory");
        else {
            tl_call_header (call, "Content-Type", "text/csv; charset=utf-8");
            tl_call_header (call, "Content-Disposition", disposition);
        }
    }
    tl_buf_destroy (&export.out);
}

//  GET /trackers/{id}/logs.csv
static void
s_logs_export (tl_call_t *call)
{
    tracker_t tracker;
    if (!tracker_load (call, tl_call_param (call, "id"), false, &tracker))
        return;
    char filename [S_FILENAME_MAX + 5];
    s_filename (tracker.name, filename);
    s_export (call, &tracker, filename);
    tracker_clear (&tracker);
}

//  GET /trackers.csv
static void
s_trackers_export (tl_call_t *call)
{
    s_export (call, NULL, "trackers.csv");
}


//  ---------------------------------------------------------------------
//  Import

//  How an import ended, when not with a database error.
typedef enum {
    S_PENDING,                  //  not decided (yet)
    S_IMPORTED,                 //  201
    S_GONE,                     //  the tracker went away: 404
    S_CHANGED,                  //  became a mood tracker meanwhile: 409
    S_BAD_HEADER,               //  422 invalid_header
    S_BAD_ROWS,                 //  422 invalid_rows
    S_TOO_MANY,                 //  422 too_many_rows
    S_FULL                      //  past TRK_MAX_LOGS_PER_TRACKER: 422 too_many_logs
} s_outcome_t;

typedef struct {
    size_t line;
    char reason [S_REASON_SIZE];
} s_bad_t;

//  One row, read and checked (the note is borrowed from the reader).
typedef struct {
    int64_t ms;
    trk_value_t value;
    const char *note;
    size_t note_size;
} s_row_t;

typedef struct {
    //  The request
    const char *owner;
    const char *id;
    const char *data;           //  the body, borrowed from the call
    size_t size;
    const char *zone;           //  the caller's, for a mood tracker; else NULL
    int64_t now;                //  ms since the epoch, when the call began
    //  The tracker, as locked by the transaction
    tracker_t tracker;
    bool loaded;
    //  The mood rule: today is [day_start, day_end); `day_logs` already in it
    int64_t day_start, day_end;
    long day_logs;
    //  Pass 1
    bool header_seen;
    size_t nfields;             //  2 or 3, from the header
    s_bad_t *bad;               //  TRK_CSV_MAX_ERRORS of them
    size_t nbad;                //  listed in bad
    size_t more;                //  bad lines past the list
    size_t stopped;             //  line the reader could not read past, or 0
    s_outcome_t outcome;
    //  Pass 2: the batch being built, as PostgreSQL array literals
    tl_db_t *db;                //  the transaction's connection
    tl_buf_t *at, *values, *note;
    size_t batch;
    size_t inserted;
} s_import_t;

//  True when the media type is text/csv or application/csv, whatever its
//  parameters, except a charset other than UTF-8 (or US-ASCII, a subset).
static bool
s_is_csv_type (const char *type)
{
    if (!type)
        return false;
    while (*type == ' ' || *type == '\t')
        type++;
    size_t len = strcspn (type, "; \t");
    if (!((len == 8 && strncasecmp (type, "text/csv", 8) == 0)
    ||    (len == 15 && strncasecmp (type, "application/csv", 15) == 0)))
        return false;
    for (const char *p = strchr (type, ';'); p; p = strchr (p + 1, ';')) {
        const char *param = p + 1;
        while (*param == ' ' || *param == '\t')
            param++;
        if (strncasecmp (param, "charset=", 8) != 0)
            continue;
        const char *value = param + 8;
        if (*value == '"')
            value++;
        size_t size = strcspn (value, "\"; \t");
        if (!((size == 5 && strncasecmp (value, "utf-8", 5) == 0)
        ||    (size == 4 && strncasecmp (value, "utf8", 4) == 0)
        ||    (size == 8 && strncasecmp (value, "us-ascii", 8) == 0)))
            return false;
    }
    return true;
}

//  True when a header record is `timestamp,value,note` or
//  `timestamp,value`, names in any case.
static bool
s_header_ok (const char **fields, size_t count)
{
    return (count == 2 || count == 3)
        && strcasecmp (fields [0], "timestamp") == 0
        && strcasecmp (fields [1], "value") == 0
        && (count == 2 || strcasecmp (fields [2], "note") == 0);
}

//  Appends one reason to a line's reasons, "; " between them.
static void
s_reason (char reason [S_REASON_SIZE], const char *prefix, const char *why)
{
    size_t len = strlen (reason);
    snprintf (reason + len, S_REASON_SIZE - len, "%s%s%s", len ? "; " : "", prefix, why);
}

//  Records a bad line: listed while there is room, else counted.
static void
s_bad (s_import_t *import, size_t line, const char *reason)
{
    if (import->nbad < TRK_CSV_MAX_ERRORS) {
        s_bad_t *bad = &import->bad [import->nbad++];
        bad->line = line;
        snprintf (bad->reason, sizeof bad->reason, "%s", reason);
    }
    else
        import->more++;
}

//  Reads and checks one data row against the header and the tracker into
//  *row. Returns true when it is good, else false with the reasons in
//  `reason` (every problem of the row, not only the first).
static bool
s_read_row (s_import_t *import, const char **fields, const size_t *sizes, size_t count,
            s_row_t *row, char reason [S_REASON_SIZE])
{
    reason [0] = 0;
    if (count != import->nfields) {
        char why [64];
        snprintf (why, sizeof why, "expected %zu fields, found %zu", import->nfields, count);
        s_reason (reason, "", why);
        return false;
    }
    if (sizes [0] == 0)
        s_reason (reason, "timestamp ", "is required");
    else
    if (tl_time_parse (fields [0], &row->ms) != 0)
        s_reason (reason, "timestamp ", "must be an RFC 3339 time such as 2026-01-31T08:00:00Z");
    else
    if (row->ms > import->now + TRK_LOG_FUTURE_SLACK_MS)
        s_reason (reason, "timestamp ", "is in the future");
    const tracker_t *tracker = &import->tracker;
    const char *why = NULL;
    if (sizes [1] == 0)
        s_reason (reason, "value ", "is required");
    else
    if (trk_value_from_text (tracker->type, (const char *const *) tracker->choices,
                             tracker->nchoices, fields [1], sizes [1], &row->value, &why) != 0)
        s_reason (reason, "value ", why ? why : "is invalid");
    row->note = count == 3 ? fields [2] : "";
    row->note_size = count == 3 ? sizes [2] : 0;
    size_t characters = 0;                      //  the reader checked the UTF-8
    for (size_t index = 0; index < row->note_size; index++)
        characters += ((unsigned char) row->note [index] & 0xC0) != 0x80;
    if (characters > TRK_NOTE_MAX) {
        char limit [64];
        snprintf (limit, sizeof limit, "is longer than %d characters", TRK_NOTE_MAX);
        s_reason (reason, "note ", limit);
    }
    return reason [0] == 0;
}

//  Pass 1's record callback: checks the header, then each row (the mood
//  rules included, counting the day's logs so far), and records every bad
//  line. Stops the reader only at a bad header.
static int
s_check_record (void *arg, size_t line, const char **fields, const size_t *sizes,
                size_t count)
{
    s_import_t *import = (s_import_t *) arg;
    if (!import->header_seen) {
        import->header_seen = true;
        import->nfields = count;
        if (s_header_ok (fields, count))
            return 0;
        import->outcome = S_BAD_HEADER;
        s_bad (import, line, "the header must be timestamp,value,note (or timestamp,value)");
        return TL_EINVAL;
    }
    s_row_t row;
    char reason [S_REASON_SIZE];
    if (s_read_row (import, fields, sizes, count, &row, reason)
    &&  import->tracker.type == TRK_MOOD) {
        if (row.ms < import->day_start || row.ms >= import->day_end)
            s_reason (reason, "", "day_closed");
        else
        if (++import->day_logs > TRK_BOARD_MAX_MOODS_PER_DAY)
            s_reason (reason, "", "more than two moods that day");
    }
    if (reason [0])
        s_bad (import, line, reason);
    return 0;
}

//  Appends `size` bytes as one quoted element of a text array literal
//  ("a\"b"), a comma before it unless it is the first. The text holds no
//  NUL byte and is followed by one (a reader's field, a choice).
static int
s_array_text (tl_buf_t *array, bool first, const char *text, size_t size)
{
    size_t mark = tl_buf_size (array);
    int rc = tl_buf_append (array, first ? "\"" : ",\"", first ? 1 : 2);
    while (rc == 0 && size > 0) {
        size_t run = strcspn (text, "\"\\");
        if (run > size)
            run = size;
        rc = tl_buf_append (array, text, run);
        if (rc == 0 && run < size)
            rc = tl_buf_printf (array, "\\%c", text [run]);
        run += run < size;
        text += run;
        size -= run;
    }
    rc = rc ? rc : tl_buf_append (array, "\"", 1);
    if (rc)
        tl_buf_truncate (array, mark);
    return rc;
}

//  Inserts the batch built so far and empties it. Returns 0 or a code.
static int
s_flush (tl_db_t *db, s_import_t *import)
{
    if (import->batch == 0)
        return 0;
    int rc = tl_buf_append (import->at, "}", 1);
    rc = rc ? rc : tl_buf_append (import->values, "}", 1);
    rc = rc ? rc : tl_buf_append (import->note, "}", 1);
    if (rc)
        return rc;
    char before [32];
    snprintf (before, sizeof before, "%zu", import->inserted);
    const char *values [8] = { import->tracker.id, import->owner, tl_buf_data (import->at),
                               NULL, NULL, NULL, tl_buf_data (import->note), before };
    //  The value column of the tracker's type; the other two stay NULL
    trk_type_t type = import->tracker.type;
    values [type == TRK_BOOLEAN ? 4 : type == TRK_MULTIPLE_CHOICE ? 5 : 3]
        = tl_buf_data (import->values);
    long count = tl_db_exec_count (db, "csv_logs_insert", 8, values);
    if (count < 0)
        return (int) count;
    if ((size_t) count != import->batch)
        return TL_EDB;
    import->inserted += import->batch;
    import->batch = 0;
    tl_buf_reset (import->at);
    tl_buf_reset (import->values);
    tl_buf_reset (import->note);
    return 0;
}

//  Pass 2's record callback: adds each row to the batch (pass 1 found them
//  all good) and inserts the batch once it is full.
static int
s_insert_record (void *arg, size_t line, const char **fields, const size_t *sizes,
                 size_t count)
{
    (void) line;
    s_import_t *import = (s_import_t *) arg;
    if (!import->header_seen) {
        import->header_seen = true;
        return 0;
    }
    s_row_t row;
    char reason [S_REASON_SIZE];
    if (!s_read_row (import, fields, sizes, count, &row, reason))
        return TL_EINVAL;                       //  pass 1 said otherwise
    //  The timestamp in UTC, to the millisecond (what tl_time_parse keeps)
    time_t seconds = (time_t) (row.ms / 1000);
    struct tm tm;
    if (!gmtime_r (&seconds, &tm))
        return TL_EINVAL;
    bool first = import->batch == 0;
    int rc = 0;
    if (first) {
        rc = tl_buf_append (import->at, "{", 1);
        rc = rc ? rc : tl_buf_append (import->values, "{", 1);
        rc = rc ? rc : tl_buf_append (import->note, "{", 1);
    }
    if (rc == 0)
        rc = tl_buf_printf (import->at, "%s%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                            first ? "" : ",", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                            tm.tm_hour, tm.tm_min, tm.tm_sec, (int) (row.ms % 1000));
    char num_text [40];
    const char *num, *flag, *choice;
    tracker_value_params (&row.value, num_text, &num, &flag, &choice);
    if (rc == 0 && choice)
        rc = s_array_text (import->values, first, choice, strlen (choice));
    else
    if (rc == 0)
        rc = tl_buf_printf (import->values, "%s%s", first ? "" : ",", num ? num : flag);
    rc = rc ? rc : s_array_text (import->note, first, row.note, row.note_size);
    if (rc)
        return rc;
    import->batch++;
    if (import->batch == TRK_CSV_BATCH_ROWS
    ||  tl_buf_size (import->at) + tl_buf_size (import->values) + tl_buf_size (import->note)
            >= (size_t) TRK_CSV_BATCH_BYTES)
        return s_flush (import->db, import);
    return 0;
}

//  Reads the whole body through a new reader that calls `fn` with the
//  import. Returns 0 or the reader's code; the reader is handed back in
//  *reader_p (the caller's: its line, reason and count), NULL when it could
//  not be made.
static int
s_read_body (s_import_t *import, trk_csv_record_fn *fn, trk_csv_reader_t **reader_p)
{
    import->header_seen = false;
    *reader_p = trk_csv_reader_new (fn, import);
    if (!*reader_p)
        return TL_ENOMEM;
    int rc = trk_csv_reader_feed (*reader_p, import->data, import->size);
    return rc ? rc : trk_csv_reader_finish (*reader_p);
}

//  Pass 1: reads every row and records each bad line. Sets the outcome when
//  the file cannot be imported (S_BAD_HEADER, S_BAD_ROWS, S_TOO_MANY),
//  else leaves it S_PENDING. Returns 0 or TL_ENOMEM.
static int
s_check (s_import_t *import)
{
    trk_csv_reader_t *reader = NULL;
    int rc = s_read_body (import, s_check_record, &reader);
    if (rc == TL_ENOMEM) {
        trk_csv_reader_destroy (&reader);
        return rc;
    }
    if (import->outcome == S_BAD_HEADER)
        rc = 0;                                 //  said by s_check_record
    if (rc == TL_ETOOBIG && trk_csv_reader_records (reader) == TRK_CSV_MAX_RECORDS)
        import->outcome = S_TOO_MANY;           //  a record past the last allowed
    else
    if (rc) {
        //  Bad quoting, not UTF-8, a field too long: the reader cannot go
        //  on, so this is the last line we can say anything about.
        size_t line = trk_csv_reader_line (reader);
        s_bad (import, line, trk_csv_reader_error (reader));
        if (import->header_seen)
            import->stopped = line;
        else
            import->outcome = S_BAD_HEADER;
    }
    else
    if (!import->header_seen) {
        import->outcome = S_BAD_HEADER;
        s_bad (import, 1, "the file is empty: the first line must be the header "
                          "timestamp,value,note");
    }
    if (import->outcome == S_PENDING && import->nbad + import->more > 0)
        import->outcome = S_BAD_ROWS;
    trk_csv_reader_destroy (&reader);
    return 0;
}

//  Reads today's bounds in the caller's zone and the mood logs already in
//  it. Returns 0 or a database code.
static int
s_mood_today (tl_db_t *db, s_import_t *import)
{
    const char *values [] = { import->tracker.id, import->owner, import->zone };
    int rc = 0;
    PGresult *res = tl_db_exec (db, "csv_mood_today", 3, values, &rc);
    if (!res)
        return rc;
    if (PQntuples (res) == 1 && tl_db_value (res, 0, 0) && tl_db_value (res, 0, 1)
    &&  tl_db_value (res, 0, 2)) {
        import->day_start = strtoll (tl_db_value (res, 0, 0), NULL, 10);
        import->day_end = strtoll (tl_db_value (res, 0, 1), NULL, 10);
        import->day_logs = strtol (tl_db_value (res, 0, 2), NULL, 10);
    }
    else
        rc = TL_EDB;
    PQclear (res);
    return rc;
}

//  The import's transaction: locks the tracker, checks every row (pass 1)
//  and, when all are good, inserts them (pass 2). Starts over cleanly each
//  time it runs. Returns 0 once imported; TL_EINVAL (roll back) with the
//  outcome set when the file cannot be imported; TL_ENOTFOUND when the
//  tracker is gone; or a database code.
static int
s_import_tx (tl_db_t *db, void *arg)
{
    s_import_t *import = (s_import_t *) arg;
    if (import->loaded)
        tracker_clear (&import->tracker);
    import->loaded = false;
    import->db = db;
    import->nbad = import->more = import->stopped = 0;
    import->batch = import->inserted = 0;
    import->outcome = S_PENDING;
    tl_buf_reset (import->at);
    tl_buf_reset (import->values);
    tl_buf_reset (import->note);

    //  The tracker row locked: its type cannot change under the import,
    //  and mood writes of the tracker take turns with it
    int rc = tracker_lock_db (db, import->owner, import->id, &import->tracker);
    if (rc == TL_ENOTFOUND)
        import->outcome = S_GONE;
    if (rc)
        return rc;
    import->loaded = true;
    if (import->tracker.type == TRK_MOOD) {
        if (!import->zone) {
            import->outcome = S_CHANGED;        //  its type changed since we looked
            return TL_EINVAL;
        }
        rc = s_mood_today (db, import);
        if (rc)
            return rc;
    }
    rc = s_check (import);
    if (rc)
        return rc;
    if (import->outcome != S_PENDING)
        return TL_EINVAL;
    trk_csv_reader_t *reader = NULL;
    rc = s_read_body (import, s_insert_record, &reader);
    trk_csv_reader_destroy (&reader);
    rc = rc ? rc : s_flush (db, import);
    //  The quota, counted with the rows in, under the row lock
    long count = 0;
    rc = rc ? rc : tracker_log_count (db, import->tracker.id, &count);
    if (rc == 0 && count > TRK_MAX_LOGS_PER_TRACKER) {
        import->outcome = S_FULL;
        return TL_EINVAL;
    }
    if (rc == 0)
        import->outcome = S_IMPORTED;
    return rc;
}

//  Answers 422 with the bad lines: {"error": {"code", "message", "rows":
//  [{"line", "reason"}], "more"?}}, the shape of tl_call_error plus the
//  rows (and how many more bad lines there are past the list).
static void
s_reply_bad (tl_call_t *call, const s_import_t *import, const char *code, const char *message)
{
    msgpack_packer *pk = tl_call_reply (call, 422);
    msgpack_pack_map (pk, 1);
    tl_mp_pack_str (pk, "error");
    msgpack_pack_map (pk, import->more ? 4 : 3);
    tl_mp_pack_kv (pk, "code", code);
    tl_mp_pack_kv (pk, "message", message);
    tl_mp_pack_str (pk, "rows");
    msgpack_pack_array (pk, (uint32_t) import->nbad);
    for (size_t index = 0; index < import->nbad; index++) {
        msgpack_pack_map (pk, 2);
        tl_mp_pack_str (pk, "line");
        msgpack_pack_uint64 (pk, import->bad [index].line);
        tl_mp_pack_kv (pk, "reason", import->bad [index].reason);
    }
    if (import->more) {
        tl_mp_pack_str (pk, "more");
        msgpack_pack_uint64 (pk, import->more);
    }
}

//  Answers how an import ended.
static void
s_import_reply (tl_call_t *call, const s_import_t *import, int rc)
{
    char message [S_REASON_SIZE + 64];
    size_t bad = import->nbad + import->more;
    switch (import->outcome) {
        case S_IMPORTED: {
            msgpack_packer *pk = tl_call_reply (call, 201);
            msgpack_pack_map (pk, 1);
            tl_mp_pack_str (pk, "imported");
            msgpack_pack_uint64 (pk, import->inserted);
            break;
        }
        case S_GONE:
            tl_call_error (call, 404, "not_found", "no such tracker");
            break;
        case S_CHANGED:
            tl_call_error (call, 409, "conflict", "the tracker changed during the import: retry");
            break;
        case S_BAD_HEADER:
            snprintf (message, sizeof message, "line %zu: %s", import->bad [0].line,
                      import->bad [0].reason);
            s_reply_bad (call, import, "invalid_header", message);
            break;
        case S_BAD_ROWS: {
            int len = snprintf (message, sizeof message, "%zu line%s invalid: nothing was imported",
                                bad, bad == 1 ? " is" : "s are");
            if (import->stopped)
                snprintf (message + len, sizeof message - (size_t) len,
                          "; the file could not be read past line %zu", import->stopped);
            else
            if (import->more)
                snprintf (message + len, sizeof message - (size_t) len,
                          "; the first %d are listed", TRK_CSV_MAX_ERRORS);
            s_reply_bad (call, import, "invalid_rows", message);
            break;
        }
        case S_TOO_MANY:
            tl_call_error (call, 422, "too_many_rows",
                           "the file has more than %d rows: import it in parts", TRK_CSV_MAX_ROWS);
            break;
        case S_FULL:
            tl_call_error (call, 422, "too_many_logs",
                           "a tracker holds at most %d logs: nothing was imported",
                           TRK_MAX_LOGS_PER_TRACKER);
            break;
        default:
            if (rc == TL_ENOMEM || rc == TL_EINVAL)
                tl_call_error (call, 503, "unavailable", "the file could not be imported");
            else
                tl_call_db_error (call, rc);
    }
}

//  What one array literal of a batch may hold: the batch's bound, then one
//  more row's element (a field with every byte escaped) and the braces.
#define S_ARRAY_MAX  (TRK_CSV_BATCH_BYTES + 2 * TRK_CSV_MAX_FIELD + 64)

//  POST /trackers/{id}/logs.csv: a text/csv body, all rows or none.
static void
s_logs_import (tl_call_t *call)
{
    const char *id = tl_call_param (call, "id");
    tracker_t tracker;
    if (!tracker_load (call, id, false, &tracker))
        return;
    bool mood = tracker.type == TRK_MOOD;
    tracker_clear (&tracker);

    //  The gateway sends an upload's bytes as one bin (none when empty)
    const msgpack_object *body = tl_call_body (call);
    const char *data = "";
    size_t size = 0;
    if (body && body->type == MSGPACK_OBJECT_BIN) {
        data = body->via.bin.ptr;
        size = body->via.bin.size;
    }
    else
    if (body && body->type == MSGPACK_OBJECT_STR) {
        data = body->via.str.ptr;
        size = body->via.str.size;
    }
    else
    if (body && body->type != MSGPACK_OBJECT_NIL) {
        tl_call_error (call, 400, "invalid_body", "the body must be the bytes of a CSV file");
        return;
    }
    if (!data)
        data = "";              //  msgpack-c may give an empty one no pointer
    if (size > 0 && !s_is_csv_type (tl_call_param (call, "content_type"))) {
        tl_call_error (call, 415, "unsupported_media_type",
                       "the body must be text/csv (UTF-8), with the header timestamp,value,note");
        return;
    }
    if (size > (size_t) TRK_CSV_MAX_BYTES) {
        tl_call_error (call, 413, "too_large", "the file is larger than %ld MiB",
                       (long) (TRK_CSV_MAX_BYTES / (1024 * 1024)));
        return;
    }
    s_import_t import = { .owner = tl_call_user (call), .id = id, .data = data, .size = size,
                          .zone = mood ? tracker_caller_zone (call) : NULL, .now = (int64_t) tl_msg_now_ms () };
    import.bad = (s_bad_t *) calloc (TRK_CSV_MAX_ERRORS, sizeof *import.bad);
    import.at = tl_buf_new (S_ARRAY_MAX);
    import.values = tl_buf_new (S_ARRAY_MAX);
    import.note = tl_buf_new (S_ARRAY_MAX);
    int rc = import.bad && import.at && import.values && import.note
           ? tl_db_tx (tl_call_db (call), s_import_tx, &import) : TL_ENOMEM;
    if (import.outcome == S_PENDING && rc)
        tl_log (TL_LOG_WARN, tl_call_trace (call), "import into tracker %s failed: %s %s",
                id, tl_strerror (rc), tl_db_errmsg (tl_call_db (call)));
    else
    if (import.outcome == S_IMPORTED)
        tl_log (TL_LOG_INFO, tl_call_trace (call), "imported %zu logs into tracker %s",
                import.inserted, id);
    s_import_reply (call, &import, rc);
    if (import.loaded)
        tracker_clear (&import.tracker);
    tl_buf_destroy (&import.at);
    tl_buf_destroy (&import.values);
    tl_buf_destroy (&import.note);
    free (import.bad);
}

//  Expensive requests take one of the caller's slots (tracker_expensive).
static void
s_logs_export_slotted (tl_call_t *call)
{
    tracker_expensive (call, s_logs_export);
}

static void
s_logs_import_slotted (tl_call_t *call)
{
    tracker_expensive (call, s_logs_import);
}

static void
s_trackers_export_slotted (tl_call_t *call)
{
    tracker_expensive (call, s_trackers_export);
}

int
tracker_csv_register (tl_service_t *svc)
{
    int rc = tl_service_on (svc, "logs.export", s_logs_export_slotted);
    rc = rc ? rc : tl_service_on (svc, "logs.import", s_logs_import_slotted);
    rc = rc ? rc : tl_service_on (svc, "trackers.export", s_trackers_export_slotted);
    return rc;
}
