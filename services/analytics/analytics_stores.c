//  analytics_stores.c — POST /stores/data?kind=status|hours|timezones
//  (shared/API.md "Store monitoring"): a CSV body with the take-home's
//  header, loaded all or nothing.
//
//  In one transaction: a temporary staging table is made; the body is read
//  once, streamed from the gateway in chunks as it is needed (tl_body: up
//  to 100 MiB, never held whole) or from a polled source's GET
//  (analytics_stores_pull, tl_fetch_stream), by an_store_csv, each row
//  checked by its column's rule. Hours and zones rows are sent to
//  PostgreSQL with COPY ... FROM STDIN as they are read, in chunks of
//  AN_LOAD_COPY_CHUNK bytes. Status polls are kept as 16 bytes each (at
//  most AN_CSV_MAX_ROWS: 64 MB, against the body's 100 MiB) and, once the
//  body is read whole and good, sorted here and sent as one row per store
//  and UTC day (s_stage_polls): PostgreSQL then merges 36 000 rows for the
//  take-home's 1.9 million polls, not 1.9 million (bench/README.md "Store
//  monitoring"). A bad row stops the COPY (but not the reading: every bad
//  line is listed, up to AN_LOAD_MAX_ERRORS, then counted) and the
//  transaction rolls back: 422. Otherwise the staging table is merged:
//  polls added with repeated (store, time) dropped (each store's newest
//  poll kept in `stores`), hours replacing the stores' hours, zones
//  replacing the stores' zones, and every store named recorded.
//
//  COPY has no prepared form: it runs on tl_db's connection (tl_db_conn)
//  inside the transaction tl_db_tx opened, and its errors come back as the
//  load's outcome. Also registers the reports (analytics_stores_reports.c).
#include "analytics_service.h"
#include "an_store_csv.h"
#include "an_store_limits.h"
#include "an_store_tz.h"
#include "tl_body.h"
#include "tl_fetch.h"
#include "tl_error.h"
#include "tl_log.h"
#include "tl_mp.h"

#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S_REASON_SIZE   96
#define S_READ_SIZE     (64 * 1024)     //  bytes of the body read at a time
#define S_STR_(x)       #x
#define S_STR(x)        S_STR_(x)

typedef enum { S_STATUS, S_HOURS, S_ZONES } s_kind_t;

typedef enum {
    S_PENDING,                  //  not decided (a database error, if any)
    S_LOADED,
    S_BAD_HEADER,               //  422 invalid_header
    S_BAD_ROWS,                 //  422 invalid_rows
    S_BAD_CSV,                  //  422 invalid_csv: the reader stopped
    S_CUT,                      //  the body was cut off (400) or came too late (504)
    S_TOO_MANY_STORES,          //  422 too_many_stores
    S_TOO_MANY_HOURS,           //  422 too_many_hours
    S_NOT_MODIFIED,             //  a polled source answered 304
    S_FETCH_FAILED              //  a polled source did not answer 200 with a body
} s_outcome_t;

typedef struct {
    size_t line;
    char reason [S_REASON_SIZE];
} s_bad_t;

//  A status poll as a load gathers them: its store, and at_us * 2 + active
typedef struct {
    int64_t store;
    int64_t v;
} s_poll_t;

//  A zone name this load has checked (an_store_tz loads it once).
typedef struct {
    char name [AN_TZ_MAX_NAME + 1];
    bool ok;
} s_zone_t;

typedef struct {
    //  The request
    const char *owner;
    s_kind_t kind;
    uint64_t deadline;          //  the request's, ms since the epoch
    tl_body_t *body;            //  read once, in chunks, as the client sends it
    char *buf;                  //  S_READ_SIZE bytes
    int cut;                    //  the body's read error (S_CUT)
    //  Or a polled source's GET (analytics_stores_pull), streamed into the
    //  reader as it arrives
    tl_fetch_t *fetch;
    an_store_csv_t *csv;
    int sink_rc;                //  the reader's code when it stopped the GET
    char fetch_error [256];
    //  This run of the transaction
    PGconn *conn;
    bool copying;
    char *chunk;                //  COPY text waiting to be sent
    size_t chunk_size;
    int copy_rc;
    size_t rows;
    s_outcome_t outcome;
    s_bad_t *bad;
    size_t nbad, more;
    char csv_error [S_REASON_SIZE];
    size_t csv_line;
    s_zone_t *zones;
    size_t nzones;
    //  A status load's polls (16 bytes each, at most AN_CSV_MAX_ROWS),
    //  sorted and sent by day once the body is read whole
    s_poll_t *polls;
    size_t npolls, polls_room;
} s_load_t;

static const char *s_kind_names [] = { "status", "hours", "timezones" };

//  The staging table and the merge of each kind ($1: the owner).
static const char *s_stage_sql [] = {
    "CREATE TEMP TABLE an_stage (store_id bigint, day integer, polls bigint[]) ON COMMIT DROP",
    "CREATE TEMP TABLE an_stage (store_id bigint, dow smallint, start_s integer, end_s integer) "
    "ON COMMIT DROP",
    "CREATE TEMP TABLE an_stage (store_id bigint, zone text) ON COMMIT DROP",
};
static const char *s_merge_sql [3] [2] = {
    //  One row per store and UTC day (003_stores_days.sql), made by the
    //  service (s_stage_polls: sorted, one per time); a day already kept is
    //  merged, its polls winning a repeated time. Each store's newest poll
    //  is its last day's last.
    { "INSERT INTO store_poll_days AS d (owner, store_id, day, polls) "
      "SELECT $1, store_id, day, polls FROM an_stage "
      "ON CONFLICT (owner, store_id, day) DO UPDATE "
      "SET polls = store_polls_merge (d.polls, excluded.polls)",
      "INSERT INTO stores (owner, store_id, last_us) "
      "SELECT $1, store_id, max (polls [cardinality (polls)] >> 1) FROM an_stage "
      "GROUP BY store_id "
      "ON CONFLICT (owner, store_id) DO UPDATE "
      "SET last_us = greatest (stores.last_us, excluded.last_us)" },
    { "DELETE FROM store_hours WHERE owner = $1 AND store_id IN (SELECT store_id FROM an_stage)",
      "INSERT INTO store_hours (owner, store_id, dow, start_s, end_s) "
      "SELECT $1, store_id, dow, start_s, end_s FROM an_stage" },
    { "INSERT INTO store_zones (owner, store_id, zone) "
      "SELECT DISTINCT ON (store_id) $1, store_id, zone FROM an_stage "
      "ON CONFLICT (owner, store_id) DO UPDATE SET zone = excluded.zone", NULL },
};
//  What a report reads stays within its bounds: the owner's stores, and the
//  hours rows of each store of an hours load (they replace the store's).
#define S_COUNT_STORES_SQL \
    "SELECT count (*) > " S_STR (AN_REPORT_MAX_STORES) " FROM stores WHERE owner = $1"
#define S_COUNT_HOURS_SQL \
    "SELECT coalesce (max (n), 0) > " S_STR (AN_REPORT_MAX_HOURS) \
    " FROM (SELECT count (*) AS n FROM an_stage GROUP BY store_id) c"
#define S_STORES_SQL \
    "INSERT INTO stores (owner, store_id) SELECT DISTINCT $1, store_id FROM an_stage " \
    "ON CONFLICT DO NOTHING"

int
analytics_stores_prepare (tl_db_t *db)
{
    int rc = analytics_stores_reports_prepare (db);
    return rc ? rc : analytics_stores_source_prepare (db);
}

//  --- The columns' rules ----------------------------------------------------

//  A store id: 1..19 decimal digits, at most INT64_MAX.
static bool
s_store_id (const char *text, size_t size, long long *id)
{
    if (size == 0 || size > 19)
        return false;
    unsigned long long value = 0;
    for (size_t i = 0; i < size; i++) {
        if (!isdigit ((unsigned char) text [i]))
            return false;
        value = value * 10 + (unsigned long long) (text [i] - '0');
    }
    if (value > (unsigned long long) INT64_MAX)
        return false;
    *id = (long long) value;
    return true;
}

//  Reads exactly `digits` decimal digits at *p.
static bool
s_digits (const char **p, int digits, int *value)
{
    *value = 0;
    for (int i = 0; i < digits; i++, (*p)++) {
        if (!isdigit ((unsigned char) **p))
            return false;
        *value = *value * 10 + (**p - '0');
    }
    return true;
}

//  "HH:MM:SS" or "HH:MM" into seconds of the day (0..86399).
static bool
s_time_of_day (const char **p, int *seconds)
{
    int h, m, s = 0;
    if (!s_digits (p, 2, &h) || *(*p)++ != ':' || !s_digits (p, 2, &m))
        return false;
    if (**p == ':') {
        (*p)++;
        if (!s_digits (p, 2, &s))
            return false;
    }
    if (h > 23 || m > 59 || s > 59)
        return false;
    *seconds = h * 3600 + m * 60 + s;
    return true;
}

//  A UTC time as the take-home writes it, "YYYY-MM-DD HH:MM:SS[.ffffff]
//  UTC" (also with 'T', without " UTC", or ending in Z or +00:00), years
//  1970..9999, into microseconds since the epoch.
static bool
s_timestamp (const char *text, long long *at_us)
{
    const char *p = text;
    int y, mo, d, seconds;
    if (!s_digits (&p, 4, &y) || *p++ != '-' || !s_digits (&p, 2, &mo) || *p++ != '-'
    ||  !s_digits (&p, 2, &d) || (*p != ' ' && *p != 'T'))
        return false;
    p++;
    if (!s_time_of_day (&p, &seconds))
        return false;
    long long fraction = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (isdigit ((unsigned char) *p) && digits < 6) {
            fraction = fraction * 10 + (*p++ - '0');
            digits++;
        }
        if (digits == 0 || isdigit ((unsigned char) *p))
            return false;
        for (; digits < 6; digits++)
            fraction *= 10;
    }
    if (!(*p == 0 || strcmp (p, " UTC") == 0 || strcmp (p, "Z") == 0
       || strcmp (p, "+00:00") == 0 || strcmp (p, "+00") == 0))
        return false;
    static const int month_days [12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1
    ||  d > month_days [mo - 1] + (mo == 2 && leap))
        return false;
    *at_us = (an_store_tz_days (y, mo, d) * 86400 + seconds) * 1000000LL + fraction;
    return true;
}

//  True when zone `name` is in the tz database (asked once per load).
static int
s_zone_ok (s_load_t *load, const char *name, bool *ok)
{
    for (size_t i = 0; i < load->nzones; i++)
        if (strcmp (load->zones [i].name, name) == 0) {
            *ok = load->zones [i].ok;
            return 0;
        }
    an_store_tz_t *tz = an_store_tz_new (name);
    *ok = tz != NULL;
    an_store_tz_destroy (&tz);
    if (load->nzones == AN_TZ_CACHE)
        return 0;                       //  not kept: asked again
    if (!load->zones) {
        load->zones = (s_zone_t *) calloc (AN_TZ_CACHE, sizeof *load->zones);
        if (!load->zones)
            return TL_ENOMEM;
    }
    snprintf (load->zones [load->nzones].name, sizeof load->zones [0].name, "%s", name);
    load->zones [load->nzones++].ok = *ok;
    return 0;
}

//  --- Reading the body --------------------------------------------------------

//  Records bad line `line` with `reason` (the first AN_LOAD_MAX_ERRORS;
//  then only counts them): the load will be refused, and nothing more is
//  sent to the COPY.
static void
s_bad (s_load_t *load, size_t line, const char *reason)
{
    load->outcome = S_BAD_ROWS;
    if (load->nbad < AN_LOAD_MAX_ERRORS) {
        load->bad [load->nbad].line = line;
        snprintf (load->bad [load->nbad++].reason, S_REASON_SIZE, "%s", reason);
    }
    else
        load->more++;
}

//  Sends the COPY text gathered so far.
static int
s_flush (s_load_t *load)
{
    if (load->chunk_size && PQputCopyData (load->conn, load->chunk, (int) load->chunk_size) != 1)
        return TL_EUNAVAIL;
    load->chunk_size = 0;
    return 0;
}

//  Adds one row of COPY text (tab-separated, no character that needs an
//  escape: the rules above allow none in any column).
static int
s_emit (s_load_t *load, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

static int
s_emit (s_load_t *load, const char *format, ...)
{
    if (load->outcome != S_PENDING)
        return 0;                       //  nothing more is sent once a row is bad
    if (load->chunk_size + 512 > AN_LOAD_COPY_CHUNK) {
        int rc = s_flush (load);
        if (rc)
            return rc;
    }
    va_list args;
    va_start (args, format);
    int size = vsnprintf (load->chunk + load->chunk_size, 512, format, args);
    va_end (args);
    load->chunk_size += (size_t) size;
    return 0;
}

//  Keeps one status poll (once a row was bad, nothing more is kept).
static int
s_keep_poll (s_load_t *load, long long store, long long v)
{
    if (load->outcome != S_PENDING)
        return 0;
    if (load->npolls == load->polls_room) {
        size_t room = load->polls_room ? load->polls_room * 2 : 65536;
        if (room > (size_t) AN_CSV_MAX_ROWS)
            room = (size_t) AN_CSV_MAX_ROWS;
        if (room <= load->npolls)
            return TL_ETOOBIG;          //  the row bound stops the reader first
        s_poll_t *polls = (s_poll_t *) realloc (load->polls, room * sizeof *polls);
        if (!polls)
            return TL_ENOMEM;
        load->polls = polls;
        load->polls_room = room;
    }
    load->polls [load->npolls++] = (s_poll_t) { .store = store, .v = v };
    return 0;
}

//  Frees a load's polls.
static void
s_free_polls (s_load_t *load)
{
    free (load->polls);
    load->polls = NULL;
    load->npolls = load->polls_room = 0;
}

//  qsort: by store, then time, then inactive before active.
static int
s_poll_cmp (const void *a, const void *b)
{
    const s_poll_t *x = (const s_poll_t *) a, *y = (const s_poll_t *) b;
    if (x->store != y->store)
        return x->store < y->store ? -1 : 1;
    return x->v < y->v ? -1 : x->v > y->v;
}

//  Appends `size` bytes of COPY text, sending the chunk when it is full.
static int
s_put (s_load_t *load, const char *text, size_t size)
{
    if (load->chunk_size + size > AN_LOAD_COPY_CHUNK) {
        int rc = s_flush (load);
        if (rc)
            return rc;
    }
    memcpy (load->chunk + load->chunk_size, text, size);
    load->chunk_size += size;
    return 0;
}

//  Sends a status load's polls to the COPY: sorted by store and time, one
//  per (store, time) (inactive kept when a load says both), one row per
//  store and UTC day with the day's polls as an array, in time order.
//  This sort in C (about 0.2 s for 2 million polls) replaces the merge's
//  sort of as many staging rows in PostgreSQL (about 1 s), and 36 000
//  rows are sent instead of 2 million.
static int
s_stage_polls (s_load_t *load)
{
    qsort (load->polls, load->npolls, sizeof *load->polls, s_poll_cmp);
    int rc = 0;
    char text [64];
    for (size_t i = 0; rc == 0 && i < load->npolls; ) {
        int64_t store = load->polls [i].store;
        int64_t day = (load->polls [i].v >> 1) / 86400000000LL;
        int size = snprintf (text, sizeof text, "%lld\t%lld\t{", (long long) store,
                             (long long) day);
        rc = s_put (load, text, (size_t) size);
        int64_t last_us = -1;
        bool first = true;
        for (; rc == 0 && i < load->npolls && load->polls [i].store == store
               && (load->polls [i].v >> 1) / 86400000000LL == day; i++) {
            if ((load->polls [i].v >> 1) == last_us)
                continue;               //  a repeated time: the first sorted kept
            last_us = load->polls [i].v >> 1;
            size = snprintf (text, sizeof text, first ? "%lld" : ",%lld",
                             (long long) load->polls [i].v);
            first = false;
            rc = s_put (load, text, (size_t) size);
        }
        if (rc == 0)
            rc = s_put (load, "}\n", 2);
    }
    return rc;
}

//  The header of each kind.
static bool
s_header_ok (s_kind_t kind, const char **fields, size_t count)
{
    if (kind == S_STATUS)
        return count == 3 && strcmp (fields [0], "store_id") == 0
            && strcmp (fields [1], "status") == 0 && strcmp (fields [2], "timestamp_utc") == 0;
    if (kind == S_HOURS)
        return count == 4 && strcmp (fields [0], "store_id") == 0
            && (strcmp (fields [1], "dayOfWeek") == 0 || strcmp (fields [1], "day_of_week") == 0)
            && strcmp (fields [2], "start_time_local") == 0
            && strcmp (fields [3], "end_time_local") == 0;
    return count == 2 && strcmp (fields [0], "store_id") == 0
        && strcmp (fields [1], "timezone_str") == 0;
}

//  One record of the body (an_store_csv_fn): the header, checked against
//  the kind; then a row, checked by its columns' rules and sent to the
//  COPY, or recorded bad. Returns 0 to read on, or a code that stops the
//  reader (a bad header, too many rows, no memory, the COPY broken).
static int
s_on_record (void *arg, size_t line, const char **fields, const size_t *sizes, size_t count)
{
    s_load_t *load = (s_load_t *) arg;
    if (line == 0 || load->rows == 0) {
        if (!s_header_ok (load->kind, fields, count)) {
            load->outcome = S_BAD_HEADER;
            return TL_EINVAL;
        }
        load->rows = 1;                 //  the header counts as row 0
        return 0;
    }
    if (load->rows++ > (size_t) AN_CSV_MAX_ROWS) {
        s_bad (load, line, "more rows than a load takes");
        return TL_ETOOBIG;
    }
    size_t expected = load->kind == S_STATUS ? 3 : load->kind == S_HOURS ? 4 : 2;
    long long store;
    if (count != expected) {
        s_bad (load, line, load->kind == S_STATUS ? "expected 3 fields"
                         : load->kind == S_HOURS ? "expected 4 fields" : "expected 2 fields");
        return 0;
    }
    if (!s_store_id (fields [0], sizes [0], &store)) {
        s_bad (load, line, "bad store_id: a decimal integer from 0 to 9223372036854775807");
        return 0;
    }
    if (load->kind == S_STATUS) {
        bool active = strcmp (fields [1], "active") == 0;
        long long at_us;
        if (!active && strcmp (fields [1], "inactive") != 0)
            s_bad (load, line, "bad status: active or inactive");
        else
        if (!s_timestamp (fields [2], &at_us))
            s_bad (load, line, "bad timestamp_utc: YYYY-MM-DD HH:MM:SS[.ffffff] UTC");
        else
            return s_keep_poll (load, store, at_us * 2 + (active ? 1 : 0));
        return 0;
    }
    if (load->kind == S_HOURS) {
        int start, end;
        const char *p = fields [2], *q = fields [3];
        if (sizes [1] != 1 || fields [1] [0] < '0' || fields [1] [0] > '6')
            s_bad (load, line, "bad day of week: 0 (Monday) to 6 (Sunday)");
        else
        if (!s_time_of_day (&p, &start) || *p)
            s_bad (load, line, "bad start_time_local: HH:MM:SS");
        else
        if (!s_time_of_day (&q, &end) || *q)
            s_bad (load, line, "bad end_time_local: HH:MM:SS");
        else
            return s_emit (load, "%lld\t%c\t%d\t%d\n", store, fields [1] [0], start,
                           end == 86399 ? 86400 : end);     //  23:59:59 is midnight
        return 0;
    }
    bool ok = false;
    int rc = an_store_tz_name_ok (fields [1]) ? s_zone_ok (load, fields [1], &ok) : 0;
    if (rc)
        return rc;
    if (!ok)
        s_bad (load, line, "unknown timezone_str: an IANA zone such as America/Chicago");
    else
        return s_emit (load, "%lld\t%s\n", store, fields [1]);
    return 0;
}

//  Ends the COPY: sent whole when `ok`, else abandoned. Returns 0 or a code.
static int
s_copy_end (s_load_t *load, bool ok)
{
    int rc = ok ? s_flush (load) : 0;
    if (PQputCopyEnd (load->conn, ok && rc == 0 ? NULL : "rows refused") != 1)
        rc = rc ? rc : TL_EUNAVAIL;
    PGresult *result;
    while ((result = PQgetResult (load->conn)) != NULL) {
        if (PQresultStatus (result) != PGRES_COMMAND_OK && ok)
            rc = rc ? rc : TL_EDB;
        PQclear (result);
    }
    load->copying = false;
    return ok ? rc : (rc ? rc : TL_EINVAL);
}

//  tl_fetch_sink_fn: a polled source's bytes into the reader (and so into
//  the COPY) as they arrive.
static int
s_sink (void *arg, const char *data, size_t size)
{
    s_load_t *load = (s_load_t *) arg;
    int rc = an_store_csv_feed (load->csv, data, size);
    if (rc)
        load->sink_rc = rc;
    return rc;
}

//  Streams a polled source's reply into the reader. Returns 0 when a 200
//  was read whole; or the reader's code; or TL_EINVAL with the outcome
//  S_NOT_MODIFIED (304) or S_FETCH_FAILED (no answer, another status, past
//  the size bound) and load->fetch_error saying why.
static int
s_read_fetch (s_load_t *load)
{
    load->sink_rc = 0;
    int rc = tl_fetch_stream (load->fetch, s_sink, load, load->fetch_error,
                              sizeof load->fetch_error);
    long status = tl_fetch_status (load->fetch);
    if (load->sink_rc)
        return load->sink_rc;
    if (rc == 0 && status == 200)
        return 0;
    if (rc == 0 && status == 304)
        load->outcome = S_NOT_MODIFIED;
    else {
        load->outcome = S_FETCH_FAILED;
        if (rc == 0)
            snprintf (load->fetch_error, sizeof load->fetch_error,
                      "the server answered HTTP %ld, not 200", status);
        else
        if (!*load->fetch_error)
            snprintf (load->fetch_error, sizeof load->fetch_error, "%s", tl_strerror (rc));
    }
    return TL_EINVAL;
}

//  Reads the body (or a polled source's reply) into the COPY. Returns 0
//  when every row was good.
static int
s_read (s_load_t *load)
{
    an_store_csv_t *csv = an_store_csv_new (s_on_record, load);
    if (!csv)
        return TL_ENOMEM;
    int rc = 0;
    if (load->fetch) {
        load->csv = csv;
        rc = s_read_fetch (load);
    }
    else {
        long n;
        while (rc == 0 && (n = tl_body_read (load->body, load->buf, S_READ_SIZE)) > 0)
            rc = an_store_csv_feed (csv, load->buf, (size_t) n);
        if (rc == 0 && n < 0) {
            load->outcome = S_CUT;
            load->cut = rc = (int) n;
        }
    }
    if (rc == 0)
        rc = an_store_csv_finish (csv);
    if (rc && load->outcome == S_PENDING) {
        load->outcome = S_BAD_CSV;
        snprintf (load->csv_error, sizeof load->csv_error, "%s", an_store_csv_error (csv));
        load->csv_line = an_store_csv_line (csv);
    }
    if (rc == 0 && load->rows == 0) {
        load->outcome = S_BAD_HEADER;   //  an empty body has no header
        rc = TL_EINVAL;
    }
    load->csv = NULL;
    an_store_csv_destroy (&csv);
    return rc ? rc : load->outcome == S_PENDING ? 0 : TL_EINVAL;
}

//  True (as 1) when `sql` ($1: the owner, or none) answers true; 0 when
//  false; or a code.
static int
s_over (tl_db_t *db, const char *sql, const char *owner)
{
    int err = 0;
    const char *values [] = { owner };
    PGresult *r = tl_db_query (db, sql, owner ? 1 : 0, owner ? values : NULL, &err);
    if (!r)
        return err;
    int over = tl_db_value (r, 0, 0) && strcmp (tl_db_value (r, 0, 0), "t") == 0;
    PQclear (r);
    return over;
}

//  Refuses a load that would leave more than a report reads: returns 0, or
//  TL_ETOOBIG with the outcome set (the transaction rolls back), or a code.
static int
s_bounds (tl_db_t *db, s_load_t *load)
{
    int over = s_over (db, S_COUNT_STORES_SQL, load->owner);
    if (over == 1)
        load->outcome = S_TOO_MANY_STORES;
    else
    if (over == 0 && load->kind == S_HOURS) {
        over = s_over (db, S_COUNT_HOURS_SQL, NULL);
        if (over == 1)
            load->outcome = S_TOO_MANY_HOURS;
    }
    return over == 1 ? TL_ETOOBIG : over;
}

//  The load's transaction (tl_db_tx): staging table, COPY of the rows as
//  the body is read, then the merge. Returns 0 with load->outcome
//  S_LOADED, or a code (the transaction rolls back) with the outcome
//  saying why when it is the client's doing.
static int
s_load_tx (tl_db_t *db, void *arg)
{
    s_load_t *load = (s_load_t *) arg;
    if (load->body && tl_body_rewind (load->body) != 0)
        return TL_EUNAVAIL;             //  a retry cannot read a streamed body again
    load->outcome = S_PENDING;
    load->nbad = load->more = load->rows = load->chunk_size = 0;
    load->conn = tl_db_conn (db);
    int err = 0;
    //  The COPY lasts as long as the body takes to arrive: its statements
    //  may run until the request's deadline, not the usual few seconds; the
    //  merge sorts a body's rows in memory (AN_LOAD_WORK_MEM), not on disk
    char timeout [24];
    int64_t left = (int64_t) load->deadline - (int64_t) tl_msg_now_ms ();
    snprintf (timeout, sizeof timeout, "%lld", (long long) (left > 1000 ? left : 1000));
    const char *setting [] = { timeout };
    PGresult *result = tl_db_query (db, "SELECT set_config ('statement_timeout', $1, true), "
                                    "set_config ('work_mem', '" AN_LOAD_WORK_MEM "', true)",
                                    1, setting, &err);
    PQclear (result);
    if (!result)
        return err;
    result = tl_db_query (db, s_stage_sql [load->kind], 0, NULL, &err);
    PQclear (result);
    if (!result)
        return err;
    result = PQexec (load->conn, "COPY an_stage FROM STDIN");
    bool started = PQresultStatus (result) == PGRES_COPY_IN;
    PQclear (result);
    if (!started)
        return TL_EDB;
    load->copying = true;
    load->npolls = 0;
    int rc = s_read (load);
    if (rc == 0 && load->kind == S_STATUS)
        rc = s_stage_polls (load);
    int end = s_copy_end (load, rc == 0);
    rc = rc ? rc : end;
    const char *values [] = { load->owner };
    for (int i = 0; rc == 0 && i < 2 && s_merge_sql [load->kind] [i]; i++) {
        result = tl_db_query (db, s_merge_sql [load->kind] [i], 1, values, &err);
        rc = result ? 0 : err;
        PQclear (result);
    }
    if (rc == 0 && load->kind != S_STATUS) {  //  the status merge records its stores
        result = tl_db_query (db, S_STORES_SQL, 1, values, &err);
        rc = result ? 0 : err;
        PQclear (result);
    }
    if (rc == 0)
        rc = s_bounds (db, load);
    if (rc == 0) {
        //  Dropped now, not only at commit: a poll loads several files in
        //  one transaction (each in a savepoint of its own)
        result = tl_db_query (db, "DROP TABLE an_stage", 0, NULL, &err);
        rc = result ? 0 : err;
        PQclear (result);
    }
    if (rc == 0)
        load->outcome = S_LOADED;
    return rc;
}

//  --- The handler -------------------------------------------------------------

//  True for a Content-Type of text/csv or application/csv (any parameters).
static bool
s_is_csv_type (const char *type)
{
    if (!type)
        return false;
    while (*type == ' ' || *type == '\t')
        type++;
    size_t len = strcspn (type, "; \t");
    return (len == 8 && strncasecmp (type, "text/csv", 8) == 0)
        || (len == 15 && strncasecmp (type, "application/csv", 15) == 0);
}

//  Answers 422 with the bad lines: {"error": {"code", "message", "rows":
//  [{"line", "reason"}], "more"?}}.
static void
s_reply_bad (tl_call_t *call, const s_load_t *load)
{
    char message [96];
    snprintf (message, sizeof message, "%zu bad lines: nothing was loaded",
              load->nbad + load->more);
    msgpack_packer *pk = tl_call_reply (call, 422);
    msgpack_pack_map (pk, 1);
    tl_mp_pack_str (pk, "error");
    msgpack_pack_map (pk, load->more ? 4 : 3);
    tl_mp_pack_kv (pk, "code", "invalid_rows");
    tl_mp_pack_kv (pk, "message", message);
    tl_mp_pack_str (pk, "rows");
    msgpack_pack_array (pk, (uint32_t) load->nbad);
    for (size_t i = 0; i < load->nbad; i++) {
        msgpack_pack_map (pk, 2);
        tl_mp_pack_str (pk, "line");
        msgpack_pack_uint64 (pk, load->bad [i].line);
        tl_mp_pack_kv (pk, "reason", load->bad [i].reason);
    }
    if (load->more) {
        tl_mp_pack_str (pk, "more");
        msgpack_pack_uint64 (pk, load->more);
    }
}

//  Answers how the load ended: 200 {kind, rows}, a 422, 400 / 504 for a
//  cut-off body, or the database's 503 / 504.
static void
s_reply (tl_call_t *call, s_load_t *load, int rc)
{
    static const char *headers [] = {
        "store_id,status,timestamp_utc",
        "store_id,dayOfWeek,start_time_local,end_time_local",
        "store_id,timezone_str" };
    switch (load->outcome) {
        case S_LOADED: {
            msgpack_packer *pk = tl_call_reply (call, 200);
            msgpack_pack_map (pk, 2);
            tl_mp_pack_kv (pk, "kind", s_kind_names [load->kind]);
            tl_mp_pack_str (pk, "rows");
            msgpack_pack_uint64 (pk, load->rows ? load->rows - 1 : 0);
            break;
        }
        case S_BAD_HEADER:
            tl_call_error (call, 422, "invalid_header", "the first line must be %s",
                           headers [load->kind]);
            break;
        case S_BAD_ROWS:
            s_reply_bad (call, load);
            break;
        case S_BAD_CSV:
            tl_call_error (call, 422, "invalid_csv", "line %zu: %s: nothing was loaded",
                           load->csv_line, load->csv_error);
            break;
        case S_TOO_MANY_STORES:
            tl_call_error (call, 422, "too_many_stores", "a user keeps at most %d stores: "
                           "nothing was loaded", AN_REPORT_MAX_STORES);
            break;
        case S_TOO_MANY_HOURS:
            tl_call_error (call, 422, "too_many_hours", "a store has at most %d hours rows: "
                           "nothing was loaded", AN_REPORT_MAX_HOURS);
            break;
        case S_CUT:
            if (load->cut == TL_ETIMEDOUT)
                tl_call_error (call, 504, "timeout", "the body did not arrive in time: "
                               "nothing was loaded");
            else
                tl_call_error (call, 400, "incomplete_body", "the body was cut off: "
                               "nothing was loaded");
            break;
        case S_NOT_MODIFIED:
        case S_FETCH_FAILED:            //  a polled source's (not a request's)
        case S_PENDING:
            tl_call_db_error (call, rc ? rc : TL_EDB);
            break;
    }
}

//  stores.data: POST /stores/data?kind= with a CSV body (streamed).
static void
s_data_load (tl_call_t *call)
{
    const char *owner = tl_call_user (call);
    const char *kind = tl_call_param (call, "kind");
    if (!owner) {
        tl_call_error (call, 401, "unauthenticated", "log in first");
        return;
    }
    s_load_t load = { .owner = owner, .deadline = tl_call_deadline (call) };
    int k = 0;
    while (k < 3 && !(kind && strcmp (kind, s_kind_names [k]) == 0))
        k++;
    if (k == 3) {
        tl_call_field_error (call, 400, "invalid_param", "kind", "status, hours or timezones");
        return;
    }
    load.kind = (s_kind_t) k;
    if (!s_is_csv_type (tl_call_param (call, "content_type"))) {
        tl_call_error (call, 415, "unsupported_media_type", "the body must be text/csv");
        return;
    }
    //  The body streams from the gateway as the rows are read (tl_body)
    load.body = tl_body_new (call);
    if (!load.body) {
        tl_call_error (call, 400, "invalid_body", "the body must be the bytes of a CSV file");
        return;
    }
    load.bad = (s_bad_t *) calloc (AN_LOAD_MAX_ERRORS, sizeof *load.bad);
    load.chunk = (char *) malloc (AN_LOAD_COPY_CHUNK);
    load.buf = (char *) malloc (S_READ_SIZE);
    int rc = load.bad && load.chunk && load.buf
           ? tl_db_tx (tl_call_db (call), s_load_tx, &load) : TL_ENOMEM;
    if (load.outcome == S_PENDING && rc)
        tl_log (TL_LOG_WARN, tl_call_trace (call), "store %s load failed: %s %s",
                s_kind_names [k], tl_strerror (rc), tl_db_errmsg (tl_call_db (call)));
    s_reply (call, &load, rc);
    free (load.bad);
    free (load.chunk);
    free (load.buf);
    free (load.zones);
    s_free_polls (&load);
    tl_body_destroy (&load.body);
}

//  --- A polled source's file (analytics_stores_source.c) ----------------------

//  Says in `out` why a pulled file was not loaded, as the 422s say it.
static void
s_describe (const s_load_t *load, char *out, size_t size)
{
    static const char *headers [] = {
        "store_id,status,timestamp_utc",
        "store_id,dayOfWeek,start_time_local,end_time_local",
        "store_id,timezone_str" };
    switch (load->outcome) {
        case S_BAD_HEADER:
            snprintf (out, size, "invalid_header: the first line must be %s",
                      headers [load->kind]);
            break;
        case S_BAD_ROWS:
            snprintf (out, size, "invalid_rows: %zu bad lines: nothing was loaded",
                      load->nbad + load->more);
            break;
        case S_BAD_CSV:
            snprintf (out, size, "invalid_csv: line %zu: %s: nothing was loaded",
                      load->csv_line, load->csv_error);
            break;
        case S_TOO_MANY_STORES:
            snprintf (out, size, "too_many_stores: a user keeps at most %d stores: "
                      "nothing was loaded", AN_REPORT_MAX_STORES);
            break;
        case S_TOO_MANY_HOURS:
            snprintf (out, size, "too_many_hours: a store has at most %d hours rows: "
                      "nothing was loaded", AN_REPORT_MAX_HOURS);
            break;
        case S_FETCH_FAILED:
            snprintf (out, size, "fetch_failed: %s", load->fetch_error);
            break;
        default:
            snprintf (out, size, "%s", "");
            break;
    }
}

//  The bad lines of a refused file as JSON: [{"line", "reason"}] (the
//  first AN_LOAD_MAX_ERRORS), or NULL when none or memory ran out.
static char *
s_bad_json (const s_load_t *load)
{
    if (load->outcome != S_BAD_ROWS || load->nbad == 0)
        return NULL;
    json_t *rows = json_array ();
    for (size_t i = 0; rows && i < load->nbad; i++)
        json_array_append_new (rows, json_pack ("{s:I, s:s}", "line",
                                                (json_int_t) load->bad [i].line,
                                                "reason", load->bad [i].reason));
    char *text = rows ? json_dumps (rows, JSON_COMPACT) : NULL;
    json_decref (rows);
    return text;
}

int
analytics_stores_pull (tl_db_t *db, analytics_stores_pull_t *pull)
{
    s_load_t load = { .owner = pull->owner,
                      .deadline = tl_msg_now_ms () + AN_SOURCE_TIMEOUT_MS };
    int k = 0;
    while (k < 3 && strcmp (pull->kind, s_kind_names [k]) != 0)
        k++;
    if (k == 3)
        return TL_EINVAL;
    load.kind = (s_kind_t) k;
    pull->loaded = pull->not_modified = false;
    pull->rows = 0;
    pull->http_status = 0;
    pull->error [0] = pull->etag [0] = pull->last_modified [0] = 0;
    pull->bad_lines = NULL;
    load.fetch = tl_fetch_new (pull->url);
    if (!load.fetch) {
        snprintf (pull->error, sizeof pull->error, "fetch_failed: not an http or https URL");
        return 0;
    }
    tl_fetch_set_flags (load.fetch, pull->flags);
    int rc = tl_fetch_set_timeout_ms (load.fetch, AN_SOURCE_TIMEOUT_MS);
    rc = rc ? rc : tl_fetch_set_max_size (load.fetch, AN_CSV_MAX_BYTES);
    //  The validators of the last load: a 304 loads nothing
    if (rc == 0 && pull->if_etag && *pull->if_etag)
        tl_fetch_set_if_none_match (load.fetch, pull->if_etag);
    if (rc == 0 && pull->if_last_modified && *pull->if_last_modified)
        tl_fetch_set_if_modified_since (load.fetch, pull->if_last_modified);
    load.bad = (s_bad_t *) calloc (AN_LOAD_MAX_ERRORS, sizeof *load.bad);
    load.chunk = (char *) malloc (AN_LOAD_COPY_CHUNK);
    if (rc == 0)
        rc = load.bad && load.chunk ? tl_db_tx (db, s_load_tx, &load) : TL_ENOMEM;
    pull->http_status = tl_fetch_status (load.fetch);
    if (load.outcome == S_LOADED) {
        pull->loaded = true;
        pull->rows = load.rows ? load.rows - 1 : 0;
        snprintf (pull->etag, sizeof pull->etag, "%s", tl_fetch_etag (load.fetch));
        snprintf (pull->last_modified, sizeof pull->last_modified, "%s",
                  tl_fetch_last_modified (load.fetch));
        rc = 0;
    }
    else
    if (load.outcome == S_NOT_MODIFIED) {
        pull->not_modified = true;
        rc = 0;
    }
    else
    if (load.outcome != S_PENDING && load.outcome != S_CUT) {
        s_describe (&load, pull->error, sizeof pull->error);
        pull->bad_lines = s_bad_json (&load);
        rc = 0;
    }
    //  Else a database failure (or no memory): rc, the caller tries later
    free (load.bad);
    free (load.chunk);
    free (load.zones);
    s_free_polls (&load);
    tl_fetch_destroy (&load.fetch);
    return rc;
}

int
analytics_stores_forget_owner (tl_db_t *db, const char *owner)
{
    //  A user's polls may be millions of rows: this transaction's own
    //  statements may take longer than the usual few seconds
    static const char *const deletes [] = {
        "DELETE FROM store_poll_days WHERE owner = $1", "DELETE FROM store_hours WHERE owner = $1",
        "DELETE FROM store_zones WHERE owner = $1", "DELETE FROM store_reports WHERE owner = $1",
        "DELETE FROM store_sources WHERE owner = $1",
        "DELETE FROM stores WHERE owner = $1",
    };
    int err = 0;
    PGresult *result = tl_db_query (db, "SELECT set_config ('statement_timeout', '"
                                    AN_FORGET_TIMEOUT "', true)", 0, NULL, &err);
    PQclear (result);
    for (size_t i = 0; result && i < sizeof deletes / sizeof deletes [0]; i++) {
        result = tl_db_query (db, deletes [i], 1, &owner, &err);
        PQclear (result);
    }
    return result ? 0 : err;
}

int
analytics_stores_register (tl_service_t *svc)
{
    int rc = tl_service_on (svc, "stores.data", s_data_load);
    rc = rc ? rc : analytics_stores_source_register (svc);
    return rc ? rc : analytics_stores_reports_register (svc);
}
