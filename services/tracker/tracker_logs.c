//  tracker_logs.c — a tracker's logs: list (newest first, from/to, cursor
//  pages), add, read, change, delete; the mood rules (at most two a local
//  day; only on their own local day; gone after a year); and forgetting a
//  deleted user. Every statement filters on the caller as owner; a read or
//  a write is one statement with the tracker's row folded in, but a mood
//  tracker's write (a transaction: its rules need the row locked first).
#include "tracker_service.h"
#include "trk_limits.h"
#include "tl_error.h"
#include "tl_jobs.h"
#include "tl_log.h"
#include "tl_mp.h"
#include "tl_valid.h"
#include "tl_time.h"

#include <stdio.h>
#include <stdlib.h>

#define S_PURGE_BATCH 10000     //  mood logs one purge statement deletes
#define S_STR(x) #x
#define S_XSTR(x) S_STR(x)
#include <string.h>
#include <time.h>

//  A log as the API shows it, its times as epoch microseconds: formatted
//  here (tl_time_format_us), not by the database, where three texts a row
//  cost a 50-log page more than the rest of its statement. Qualified: the
//  statements that fold the tracker's row in (t) name columns of both.
#define S_COLUMNS \
    "logs.id, logs.tracker_id, " TL_TIME_SQL_US ("logs.at") ", logs.num, logs.flag, " \
    "logs.choice, logs.note, " TL_TIME_SQL_US ("logs.created_at")
enum { S_COL_AT = 2, S_COL_VALUE = 3, S_COL_NOTE = 6, S_COL_CREATED };

//  The caller's tracker $1 (owner $2), locked for a write (FOR NO KEY
//  UPDATE: the foreign keys of concurrent log inserts, FOR KEY SHARE, do
//  not wait for it; other writes of the tracker do). Waiting for it
//  returns the row as the other write left it, log_count included
//  (002_log_count.sql), so checks against it hold within one statement.
#define S_TRACKER_LOCKED(id, owner) \
    "t AS MATERIALIZED (SELECT " TRACKER_ROW_COLUMNS ", log_count FROM trackers " \
    "WHERE id = " id " AND owner = " owner " FOR NO KEY UPDATE) "
enum { S_COL_LOG_COUNT = 6, S_COL_LOG = 7 };    //  then S_COLUMNS, NULL when none

//  True when a value fits the locked tracker t: its type is one of the
//  text[] `types` the value fits (s_fits), and a choice is one of t's.
#define S_VALUE_FITS(types, choice) \
    "t.type = ANY (" types "::text[]) " \
    "AND (t.type <> 'multiple_choice' OR " choice " = ANY (t.choices))"

static const tl_db_statement_t s_statements [] = {
    //  A page with its tracker's type: no row when the tracker is not the
    //  caller's; one row of NULL log columns when the page is empty. The
    //  page filters on the parameters, not on t's columns, so that its
    //  generic plan is the page's own (one filtering on t.id is re-planned
    //  at every call, each plan costing more than the page itself)
    { "logs_page",
      "SELECT t.type, l.* FROM trackers t LEFT JOIN LATERAL ("
      "  SELECT " S_COLUMNS " FROM logs WHERE logs.tracker_id = $1 AND logs.owner = $2 "
      "  AND logs.at >= to_timestamp ($3::float8 / 1000) "
      "  AND logs.at <= to_timestamp ($4::float8 / 1000) "
      "  AND ($5::timestamptz IS NULL OR (logs.at, logs.id) < ($5::timestamptz, $6::uuid)) "
      "  ORDER BY logs.at DESC, logs.id DESC LIMIT $7::int) l ON true "
      "WHERE t.id = $1 AND t.owner = $2", 7 },
    { "logs_one",
      "SELECT t.type, l.* FROM trackers t LEFT JOIN LATERAL ("
      "  SELECT " S_COLUMNS " FROM logs WHERE logs.id = $1 AND logs.tracker_id = $2 "
      "  AND logs.owner = $3) l ON true "
      "WHERE t.id = $2 AND t.owner = $3", 3 },
    //  POST in one statement, for any tracker but a mood tracker: the
    //  tracker locked, the value's fit, the quota, the insert. The row:
    //  the tracker, log_count, then the log (NULLs when not inserted).
    //  $8: the types the value fits
    { "logs_add",
      "WITH " S_TRACKER_LOCKED ("$1", "$2") ", "
      "l AS (INSERT INTO logs (tracker_id, owner, at, num, flag, choice, note) "
      "  SELECT t.id, t.owner, to_timestamp ($3::float8 / 1000), $4, $5, $6, coalesce ($7, '') "
      "  FROM t WHERE t.type <> 'mood' AND " S_VALUE_FITS ("$8", "$6")
      "  AND t.log_count < " TRACKER_SQL_STR (TRK_MAX_LOGS_PER_TRACKER)
      "  RETURNING " S_COLUMNS ") "
      "SELECT t.*, l.* FROM t LEFT JOIN l ON true", 8 },
    //  PATCH in one statement likewise; $4 at (NULL keeps), $5 value
    //  given, $6..$8 value, $9 note, $10 the types the value fits
    { "logs_change",
      "WITH " S_TRACKER_LOCKED ("$2", "$3") ", "
      "l AS (UPDATE logs SET at = coalesce (to_timestamp ($4::float8 / 1000), logs.at), "
      "    num = CASE WHEN $5::boolean THEN $6::float8 ELSE logs.num END, "
      "    flag = CASE WHEN $5::boolean THEN $7::boolean ELSE logs.flag END, "
      "    choice = CASE WHEN $5::boolean THEN $8 ELSE logs.choice END, "
      "    note = coalesce ($9, logs.note) "
      "  FROM t WHERE logs.id = $1 AND logs.tracker_id = t.id AND logs.owner = t.owner "
      "  AND t.type <> 'mood' AND (NOT $5::boolean OR (" S_VALUE_FITS ("$10", "$8") ")) "
      "  RETURNING " S_COLUMNS ") "
      "SELECT t.*, l.* FROM t LEFT JOIN l ON true", 10 },
    //  DELETE in one statement likewise: the tracker, log_count, then
    //  how many logs went
    { "logs_remove",
      "WITH " S_TRACKER_LOCKED ("$2", "$3") ", "
      "l AS (DELETE FROM logs USING t WHERE logs.id = $1 AND logs.tracker_id = t.id "
      "  AND logs.owner = t.owner AND t.type <> 'mood' RETURNING logs.id) "
      "SELECT t.*, (SELECT count (*) FROM l) FROM t", 3 },
    //  The same steps one at a time, in a transaction that holds the
    //  tracker's row (tracker_lock_db): a mood tracker's writes
    { "logs_insert",
      "INSERT INTO logs (tracker_id, owner, at, num, flag, choice, note) "
      "VALUES ($1, $2, to_timestamp ($3::float8 / 1000), $4, $5, $6, coalesce ($7, '')) "
      "RETURNING " S_COLUMNS, 7 },
    //  $4 at (NULL keeps), $5 value given, $6..$8 value, $9 note
    { "logs_update",
      "UPDATE logs SET at = coalesce (to_timestamp ($4::float8 / 1000), at), "
      "  num = CASE WHEN $5::boolean THEN $6::float8 ELSE num END, "
      "  flag = CASE WHEN $5::boolean THEN $7::boolean ELSE flag END, "
      "  choice = CASE WHEN $5::boolean THEN $8 ELSE choice END, "
      "  note = coalesce ($9, note) "
      "WHERE id = $1 AND tracker_id = $2 AND owner = $3 RETURNING " S_COLUMNS, 9 },
    { "logs_delete", "DELETE FROM logs WHERE id = $1 AND tracker_id = $2 AND owner = $3", 3 },
    //  Mood rules: is `at` ($2, ms; NULL: the log $4's) on today's local date
    //  in zone $1, and how many other logs of tracker $3 share its local day
    { "logs_mood_day",
      "WITH t AS (SELECT coalesce (to_timestamp ($2::float8 / 1000), "
      "                            (SELECT at FROM logs WHERE id = $4)) AS at) "
      "SELECT (t.at AT TIME ZONE $1)::date = (now () AT TIME ZONE $1)::date, "
      "       (SELECT count (*) FROM logs l WHERE l.tracker_id = $3 "
      "        AND l.id IS DISTINCT FROM $4 "
      "        AND (l.at AT TIME ZONE $1)::date = (t.at AT TIME ZONE $1)::date) "
      "FROM t", 4 },
    { "logs_forget_owner", "DELETE FROM logs WHERE owner = $1", 1 },
    { "trackers_forget_owner", "DELETE FROM trackers WHERE owner = $1", 1 },
    //  Mood logs a year old, a batch at a time ($1: the clock, ms)
    { "logs_purge_moods",
      "DELETE FROM logs WHERE id IN (SELECT l.id FROM logs l JOIN trackers t "
      "ON t.id = l.tracker_id WHERE t.type = 'mood' "
      "AND l.at < to_timestamp ($1::float8 / 1000) - interval '1 year' "
      "LIMIT " S_XSTR (S_PURGE_BATCH) ")", 1 },
};

int
tracker_logs_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

//  Packs the log of `row` whose S_COLUMNS start at `col`, for a tracker of
//  `type`.
static void
s_pack_log (msgpack_packer *pk, const PGresult *res, int row, int col, trk_type_t type)
{
    trk_value_t value;
    bool ok = tracker_value_from_row (res, row, col + S_COL_VALUE, type, &value) == 0;
    msgpack_pack_map (pk, 6);
    tl_mp_pack_kv (pk, "id", tl_db_value (res, row, col));
    tl_mp_pack_kv (pk, "tracker_id", tl_db_value (res, row, col + 1));
    char time [TL_TIME_US_TEXT_SIZE];
    tl_time_format_us (tl_db_parse_int64 (tl_db_value (res, row, col + S_COL_AT)), false, time);
    tl_mp_pack_kv (pk, "timestamp", time);
    tl_mp_pack_str (pk, "value");
    if (ok)
        trk_value_pack (&value, pk);
    else
        msgpack_pack_nil (pk);
    tl_mp_pack_kv (pk, "note", tl_db_value (res, row, col + S_COL_NOTE));
    tl_time_format_us (tl_db_parse_int64 (tl_db_value (res, row, col + S_COL_CREATED)), false, time);
    tl_mp_pack_kv (pk, "created_at", time);
}

//  Reads the tracker's type from column 0 of a result of logs_page or
//  logs_one. Returns false once it has answered: 404 when there is no row
//  (not the caller's tracker), 503 for a type it cannot read.
static bool
s_folded_type (tl_call_t *call, const PGresult *res, trk_type_t *type)
{
    if (PQntuples (res) == 0) {
        tl_call_error (call, 404, "not_found", "no such tracker");
        return false;
    }
    if (trk_type_parse (tl_db_value (res, 0, 0), type) != 0) {
        tl_call_error (call, 503, "corrupt", "the tracker could not be read");
        return false;
    }
    return true;
}

//  Answers the refusal of a request about tracker `id` as it was answered
//  when the tracker was read first: 404 when the tracker is not the
//  caller's, else `status` with `message` about `field`. For the rare
//  refusals that come before the one statement that would have told.
static void
s_refuse_after_load (tl_call_t *call, const char *id, int status, const char *field,
                     const char *message)
{
    tracker_t tracker;
    if (!tracker_load (call, id, false, &tracker))
        return;
    if (field)
        tl_call_field_error (call, status, "invalid", field, message);
    else
        tl_call_error (call, status, "not_found", "%s", message);
    tracker_clear (&tracker);
}

//  ---------------------------------------------------------------------
//  GET /trackers/{id}/logs?from=&to=&limit=&cursor=: one statement, the
//  page with its tracker's type (ownership folded in)

static void
s_list (tl_call_t *call)
{
    const char *id = tl_call_param (call, "id");
    int64_t from_ms, to_ms;
    tl_page_t page;
    if (!tl_valid_uuid (id)) {
        tl_call_error (call, 404, "not_found", "no such tracker");
        return;
    }
    //  A bad range or page is 400 only on the caller's own tracker: the
    //  load answers 404 over it on another's
    if (!tl_call_range (call, &from_ms, &to_ms) || !tl_call_page (call, &page)) {
        tracker_t tracker;
        if (tracker_load (call, id, false, &tracker))
            tracker_clear (&tracker);
        return;
    }
    char from [32], to [32];
    tl_time_sql_ms (from_ms, from);
    tl_time_sql_ms (to_ms, to);
    const char *values [] = { id, tl_call_user (call), from, to,
                              page.after_time, page.after_id, page.fetch };
    int err = 0;
    PGresult *res = tl_db_exec (tl_call_db (call), "logs_page", 7, values, &err);
    trk_type_t type;
    if (!res) {
        if (err == TL_EINVAL)
            s_refuse_after_load (call, id, 400, "cursor", "is not a cursor from this list");
        else
            tl_call_db_error (call, err);
    }
    else
    if (s_folded_type (call, res, &type)) {
        //  An empty page is one row of NULL log columns
        int found = tl_db_value (res, 0, 1) ? PQntuples (res) : 0;
        bool more;
        msgpack_packer *pk;
        int rows = tl_call_page_reply (call, &page, found, &more, &pk);
        for (int row = 0; row < rows; row++)
            s_pack_log (pk, res, row, 1, type);
        char cursor [TL_TIME_US_TEXT_SIZE] = "";
        if (more)
            tl_time_format_us (tl_db_parse_int64 (tl_db_value (res, rows - 1, 1 + S_COL_AT)), true, cursor);
        tl_call_page_end (pk, more, cursor, tl_db_value (res, rows - 1, 1));
    }
    PQclear (res);
}

//  ---------------------------------------------------------------------
//  The body of POST and PATCH: {timestamp?, value, note?}

typedef struct {
    bool has_at;
    int64_t at_ms;
    char at_text [32];
    bool has_value;
    const msgpack_object *value_obj;    //  borrowed from the call's body
    trk_value_t value;
    char num_text [40];
    const char *num, *flag, *choice;
    char choice_text [TRK_CHOICE_MAX_LEN + 1];
    char fits [64];                     //  the types the value fits, a text[]
    char *note;
} s_body_t;

//  True when the JSON type of `obj` is the one `type` takes (a wrong type
//  is 400; a right type with a wrong value, 422).
static bool
s_json_type_fits (trk_type_t type, const msgpack_object *obj)
{
    switch (type) {
        case TRK_BOOLEAN:
            return obj->type == MSGPACK_OBJECT_BOOLEAN;
        case TRK_MULTIPLE_CHOICE:
            return obj->type == MSGPACK_OBJECT_STR;
        default:
            return obj->type == MSGPACK_OBJECT_POSITIVE_INTEGER
                || obj->type == MSGPACK_OBJECT_NEGATIVE_INTEGER
                || obj->type == MSGPACK_OBJECT_FLOAT32 || obj->type == MSGPACK_OBJECT_FLOAT64;
    }
}

//  Reads `value` (not nil) as a value of `tracker` into body->value and
//  its SQL parameters. Returns 0, or the status to answer (400 for a wrong
//  JSON type, 422 for a wrong value) with *why set. A write checks its
//  value against the tracker it holds locked: in SQL (s_fits) in the one
//  statement, or here in the transaction of a mood tracker's write.
static int
s_value_read (const tracker_t *tracker, const msgpack_object *value, s_body_t *body,
              const char **why)
{
    body->has_value = false;
    body->value_obj = value;
    if (!s_json_type_fits (tracker->type, value)) {
        *why = tracker->type == TRK_BOOLEAN ? "must be true or false"
             : tracker->type == TRK_MULTIPLE_CHOICE ? "must be one of the choices"
             : "must be a number";
        return 400;
    }
    *why = NULL;
    if (trk_value_from_mp (tracker->type, (const char *const *) tracker->choices,
                           tracker->nchoices, value, &body->value, why) != 0) {
        *why = *why ? *why : "does not fit the tracker";
        return 422;
    }
    body->has_value = true;
    tracker_value_params (&body->value, body->num_text, &body->num, &body->flag, &body->choice);
    return 0;
}

//  Reads `value` (not nil) for a tracker not known yet: the types it fits
//  by trk_value's rules, as a text[] for SQL (S_VALUE_FITS; a string fits
//  multiple_choice when it could be a choice, SQL checks it is one of the
//  tracker's), and its SQL parameters. A value that fits no type gets an
//  empty list: the statement writes nothing and s_value_read tells why.
static void
s_fits (const msgpack_object *value, s_body_t *body)
{
    body->has_value = false;
    body->value_obj = value;
    body->num = body->flag = body->choice = NULL;
    strcpy (body->fits, "{");
    static const trk_type_t types [] = { TRK_NUMERICAL, TRK_DURATION, TRK_BOOLEAN, TRK_MOOD };
    for (size_t i = 0; i < sizeof types / sizeof types [0]; i++) {
        trk_value_t fit;
        const char *why = NULL;
        if (!s_json_type_fits (types [i], value)
        ||  trk_value_from_mp (types [i], NULL, 0, value, &fit, &why) != 0)
            continue;
        if (!body->has_value) {
            body->value = fit;
            tracker_value_params (&fit, body->num_text, &body->num, &body->flag, &body->choice);
            body->has_value = true;
        }
        strcat (body->fits, body->fits [1] ? "," : "");
        strcat (body->fits, trk_type_name (types [i]));
    }
    uint32_t size = value->type == MSGPACK_OBJECT_STR ? value->via.str.size : 0;
    if (size > 0 && size <= TRK_CHOICE_MAX_LEN && !memchr (value->via.str.ptr, 0, size)) {
        memcpy (body->choice_text, value->via.str.ptr, size);
        body->choice_text [size] = 0;
        body->choice = body->choice_text;
        body->has_value = true;
        strcat (body->fits, body->fits [1] ? "," : "");
        strcat (body->fits, trk_type_name (TRK_MULTIPLE_CHOICE));
    }
    strcat (body->fits, "}");
}

//  Reads the body for `tracker`, or for a tracker not read yet when
//  `tracker` is NULL (the value is then read by s_fits); `need_value` on
//  POST. Returns false once it has answered (400 or 422).
static bool
s_body_read (tl_call_t *call, const tracker_t *tracker, bool need_value, s_body_t *body)
{
    free (body->note);
    memset (body, 0, sizeof *body);
    const msgpack_object *map = tl_call_body_map (call);
    if (!map)
        return false;
    const msgpack_object *at = tl_mp_get (map, "timestamp");
    if (at && at->type != MSGPACK_OBJECT_NIL) {
        char *text = tl_mp_strdup (at, 64);
        int rc = text ? tl_time_parse (text, &body->at_ms) : TL_EINVAL;
        free (text);
        if (rc) {
            tl_call_field_error (call, 400, "invalid", "timestamp",
                                 "must be an RFC 3339 time such as 2026-11-23T18:05:00Z");
            return false;
        }
        if (body->at_ms > (int64_t) tl_msg_now_ms () + TRK_LOG_FUTURE_SLACK_MS) {
            tl_call_field_error (call, 422, "invalid", "timestamp", "is in the future");
            return false;
        }
        body->has_at = true;
        snprintf (body->at_text, sizeof body->at_text, "%lld", (long long) body->at_ms);
    }
    const msgpack_object *value = tl_mp_get (map, "value");
    if (value && value->type != MSGPACK_OBJECT_NIL) {
        const char *why = NULL;
        int status = tracker ? s_value_read (tracker, value, body, &why) : 0;
        if (status) {
            tl_call_field_error (call, status, "invalid", "value", why);
            return false;
        }
        if (!tracker)
            s_fits (value, body);
    }
    else
    if (need_value) {
        tl_call_field_error (call, 400, "invalid", "value", "is required");
        return false;
    }
    const msgpack_object *note = tl_mp_get (map, "note");
    if (note && note->type != MSGPACK_OBJECT_NIL) {
        body->note = tl_mp_strdup (note, TRK_NOTE_MAX * 4);
        long chars = body->note ? tl_valid_utf8_chars (body->note, strlen (body->note)) : -1;
        if (chars < 0 || chars > TRK_NOTE_MAX) {
            tl_call_field_error (call, 400, "invalid", "note", "must be at most 2000 characters");
            return false;
        }
    }
    return true;
}

//  Checks the mood rules for a write, inside the write's transaction (the
//  tracker row locked): the log's local day (at `at_ms`, or log `log_id`'s
//  own time when at_ms is NULL) must be today in `zone`, and hold at most
//  `room` other logs. Returns 0 when allowed, 1 when not (*code says why:
//  "day_closed" or "too_many_moods"), or a database code.
static int
s_mood_rules (tl_db_t *db, const char *zone, const char *at_ms, const char *tracker_id,
              const char *log_id, int room, const char **code)
{
    const char *values [] = { zone, at_ms, tracker_id, log_id };
    int err = 0;
    PGresult *res = tl_db_exec (db, "logs_mood_day", 4, values, &err);
    if (!res)
        return err;
    int rc = 0;
    const char *today = tl_db_value (res, 0, 0);
    const char *others = tl_db_value (res, 0, 1);
    if (!today)
        rc = 0;                 //  no such log: the write finds nothing, 404
    else
    if (today [0] != 't') {
        *code = "day_closed";
        rc = 1;
    }
    else
    if (others && atoi (others) > room) {
        *code = "too_many_moods";
        rc = 1;
    }
    PQclear (res);
    return rc;
}

//  Answers a refusal of the mood rules.
static void
s_mood_refused (tl_call_t *call, const char *code)
{
    if (strcmp (code, "day_closed") == 0)
        tl_call_error (call, 409, "day_closed",
                       "a mood can be added, changed or deleted only on its own day");
    else
        tl_call_error (call, 409, "too_many_moods", "a mood tracker takes two logs a day");
}

//  ---------------------------------------------------------------------
//  POST /trackers/{id}/logs, PATCH and DELETE /trackers/{id}/logs/{log_id}
//
//  One statement each (logs_add, logs_change, logs_remove) locks the
//  caller's tracker, checks the write against it and writes, unless the
//  tracker is a mood tracker: the mood rules count the logs of a local
//  day, which only a statement that starts after the lock is taken sees
//  whole, so a mood tracker's write then runs as a transaction (s_write_tx:
//  lock, checks, mood rules, write).

typedef enum { S_CREATE, S_UPDATE, S_DELETE } s_write_kind_t;

typedef struct {
    tl_call_t *call;
    s_write_kind_t kind;
    s_body_t *body;             //  NULL for a delete
    const char *zone;           //  the caller's zone
    PGresult *res;              //  the log written
    int col;                    //  where its S_COLUMNS start in res
    long deleted;
    const char *refused;        //  a mood rule's code, or NULL
    bool no_tracker;            //  not the caller's tracker: 404
    bool missing;               //  no such tracker (or log)
    bool mood;                  //  a mood tracker: the transaction's turn
    bool changed;               //  the tracker changed during the write: 409
    bool full;                  //  the tracker has TRK_MAX_LOGS_PER_TRACKER logs: 422
    int status;                 //  the value does not fit the locked tracker:
    const char *why;            //  400 or 422, and why
    trk_type_t type;            //  the locked tracker's type, for the reply
} s_write_t;

//  Checks the write against the locked `tracker` (its row, log_count in
//  column S_COL_LOG_COUNT of `res` when not NULL), when it could not be
//  written: its value against the type and choices the tracker has now,
//  and a new log's room (TRK_MAX_LOGS_PER_TRACKER). Returns 0 when it may
//  go on, 1 when not (write->status or ->full says why), or a database
//  code.
static int
s_write_checks (tl_db_t *db, s_write_t *write, const tracker_t *tracker, const PGresult *res)
{
    write->type = tracker->type;
    write->full = false;
    write->status = 0;
    s_body_t *body = write->body;
    if (body && body->value_obj)
        write->status = s_value_read (tracker, body->value_obj, body, &write->why);
    if (write->status)
        return 1;
    long count = 0;
    int rc = 0;
    if (write->kind == S_CREATE) {
        if (res)
            count = atol (tl_db_value (res, 0, S_COL_LOG_COUNT));
        else
            rc = tracker_log_count (db, tracker->id, &count);
    }
    write->full = rc == 0 && count >= TRK_MAX_LOGS_PER_TRACKER;
    return rc ? rc : write->full ? 1 : 0;
}

//  Runs the write's one statement. Returns 0 with the outcome in write
//  (the log in write->res, or why not; write->mood for a mood tracker),
//  or a database code.
static int
s_write_one (tl_db_t *db, s_write_t *write)
{
    tl_call_t *call = write->call;
    const char *id = tl_call_param (call, "id");
    const char *user = tl_call_user (call);
    const char *log_id = tl_call_param (call, "log_id");
    s_body_t *body = write->body;
    char now_text [32];
    snprintf (now_text, sizeof now_text, "%lld", (long long) tl_msg_now_ms ());
    int err = 0;
    PGresult *res;
    if (write->kind == S_CREATE) {
        const char *values [] = { id, user, body->has_at ? body->at_text : now_text,
                                  body->num, body->flag, body->choice, body->note, body->fits };
        res = tl_db_exec (db, "logs_add", 8, values, &err);
    }
    else
    if (write->kind == S_UPDATE) {
        const char *values [] = { log_id, id, user, body->has_at ? body->at_text : NULL,
                                  body->value_obj ? "t" : "f", body->num, body->flag,
                                  body->choice, body->note,
                                  body->fits [0] ? body->fits : NULL };
        res = tl_db_exec (db, "logs_change", 10, values, &err);
    }
    else {
        const char *values [] = { log_id, id, user };
        res = tl_db_exec (db, "logs_remove", 3, values, &err);
    }
    if (!res)
        return err;
    tracker_t tracker;
    int rc = 0;
    if (PQntuples (res) != 1)
        write->no_tracker = true;
    else
    if (tracker_from_row (res, 0, 0, &tracker) != 0)
        rc = TL_EDB;            //  a row no write of ours makes
    else {
        write->type = tracker.type;
        write->deleted = write->kind == S_DELETE ? atol (tl_db_value (res, 0, S_COL_LOG)) : 0;
        if (write->kind == S_DELETE ? write->deleted > 0 : tl_db_value (res, 0, S_COL_LOG) != NULL) {
            write->res = res;
            write->col = S_COL_LOG;
            res = NULL;
        }
        else
        if (tracker.type == TRK_MOOD)
            write->mood = true;
        else
        if (s_write_checks (db, write, &tracker, res) == 0) {
            //  Fits and has room, yet not written: no such log, or (a
            //  create) a tracker that changed as no check here can see
            write->changed = write->kind == S_CREATE;
            write->missing = write->kind != S_CREATE;
        }
        tracker_clear (&tracker);
    }
    PQclear (res);
    return rc;
}

static int
s_write_tx (tl_db_t *db, void *arg)
{
    s_write_t *write = (s_write_t *) arg;
    tl_call_t *call = write->call;
    const char *user = tl_call_user (call);
    const char *log_id = tl_call_param (call, "log_id");
    tracker_t tracker;
    PQclear (write->res);
    write->res = NULL;
    write->col = 0;
    write->refused = NULL;
    write->missing = write->changed = false;
    //  The tracker row locked: mood writes of one tracker take turns
    int rc = tracker_lock_db (db, user, tl_call_param (call, "id"), &tracker);
    if (rc == TL_ENOTFOUND) {
        write->missing = true;
        return 0;
    }
    if (rc)
        return rc;
    rc = s_write_checks (db, write, &tracker, NULL);
    if (rc != 0)
        goto done;
    int err = 0;
    char now_text [32];
    snprintf (now_text, sizeof now_text, "%lld", (long long) tl_msg_now_ms ());
    s_body_t *body = write->body;
    if (tracker.type == TRK_MOOD) {
        const char *at = body && body->has_at ? body->at_text
                       : write->kind == S_CREATE ? now_text : NULL;
        //  The log's present day must be today (changes and deletes)...
        if (write->kind != S_CREATE) {
            rc = s_mood_rules (db, write->zone, NULL, tracker.id, log_id, 99, &write->refused);
            if (rc != 0)
                goto done;
        }
        //  ...and its new day too, with room for it
        if (at) {
            rc = s_mood_rules (db, write->zone, at, tracker.id,
                               write->kind == S_CREATE ? NULL : log_id, 1, &write->refused);
            if (rc != 0)
                goto done;
        }
    }
    if (write->kind == S_CREATE) {
        const char *values [] = { tracker.id, user, body->has_at ? body->at_text : now_text,
                                  body->num, body->flag, body->choice, body->note };
        write->res = tl_db_exec (db, "logs_insert", 7, values, &err);
    }
    else
    if (write->kind == S_UPDATE) {
        const char *values [] = { log_id, tracker.id, user, body->has_at ? body->at_text : NULL,
                                  body->has_value ? "t" : "f", body->num, body->flag,
                                  body->choice, body->note };
        write->res = tl_db_exec (db, "logs_update", 9, values, &err);
    }
    else {
        const char *values [] = { log_id, tracker.id, user };
        write->deleted = tl_db_exec_count (db, "logs_delete", 3, values);
        err = write->deleted < 0 ? (int) write->deleted : 0;
    }
    rc = err;
    if (rc == 0 && write->kind != S_DELETE && PQntuples (write->res) != 1)
        write->missing = true;
done:
    tracker_clear (&tracker);
    return rc < 0 ? rc : 0;
}

//  Answers a write once done.
static void
s_write_answer (tl_call_t *call, s_write_t *write)
{
    s_write_kind_t kind = write->kind;
    if (write->no_tracker)
        tl_call_error (call, 404, "not_found", "no such tracker");
    else
    if (write->changed)
        tl_call_error (call, 409, "conflict", "the tracker changed during the write: retry");
    else
    if (write->missing || (kind == S_DELETE && write->deleted == 0 && !write->refused))
        tl_call_error (call, 404, "not_found", kind == S_CREATE ? "no such tracker" : "no such log");
    else
    if (write->status)
        tl_call_field_error (call, write->status, "invalid", "value", write->why);
    else
    if (write->full)
        tl_call_error (call, 422, "too_many_logs", "a tracker holds at most %d logs",
                       TRK_MAX_LOGS_PER_TRACKER);
    else
    if (write->refused)
        s_mood_refused (call, write->refused);
    else
    if (kind == S_DELETE)
        tl_call_reply_empty (call, 204);
    else {
        if (kind == S_CREATE) {
            char location [128];
            snprintf (location, sizeof location, "/api/v1/trackers/%s/logs/%s",
                      tl_db_value (write->res, 0, write->col + 1),
                      tl_db_value (write->res, 0, write->col));
            tl_call_header (call, "Location", location);
        }
        s_pack_log (tl_call_reply (call, kind == S_CREATE ? 201 : 200), write->res, 0,
                    write->col, write->type);
    }
}

//  Runs a write of `kind` on the call's tracker and answers.
static void
s_write (tl_call_t *call, s_write_kind_t kind)
{
    const char *id = tl_call_param (call, "id");
    const char *log_id = tl_call_param (call, "log_id");
    if (kind != S_CREATE && !tl_valid_uuid (log_id)) {
        tl_call_error (call, 404, "not_found", "no such log");
        return;
    }
    if (!tl_valid_uuid (id)) {
        tl_call_error (call, 404, "not_found", "no such tracker");
        return;
    }
    s_body_t body = { 0 };
    s_write_t write = { .call = call, .kind = kind, .body = kind == S_DELETE ? NULL : &body,
                        .zone = tracker_caller_zone (call) };
    if (kind != S_DELETE && !s_body_read (call, NULL, kind == S_CREATE, &body)) {
        //  A body refused is 404 on another's tracker, and its first error
        //  by the tracker's type on the caller's (answered over the first)
        tracker_t tracker;
        if (tracker_load (call, id, false, &tracker)) {
            s_body_read (call, &tracker, kind == S_CREATE, &body);
            tracker_clear (&tracker);
        }
        free (body.note);
        return;
    }
    tl_db_t *db = tl_call_db (call);
    int rc = s_write_one (db, &write);
    if (rc == 0 && write.mood)
        rc = tl_db_tx (db, s_write_tx, &write);
    if (rc)
        tl_call_db_error (call, rc);
    else
        s_write_answer (call, &write);
    PQclear (write.res);
    free (body.note);
}

static void
s_create (tl_call_t *call)
{
    s_write (call, S_CREATE);
}

static void
s_update (tl_call_t *call)
{
    s_write (call, S_UPDATE);
}

static void
s_delete (tl_call_t *call)
{
    s_write (call, S_DELETE);
}

//  ---------------------------------------------------------------------
//  GET /trackers/{id}/logs/{log_id}: one statement, the log with its
//  tracker's type (ownership folded in)

static void
s_get (tl_call_t *call)
{
    const char *id = tl_call_param (call, "id");
    const char *log_id = tl_call_param (call, "log_id");
    if (!tl_valid_uuid (id)) {
        tl_call_error (call, 404, "not_found", "no such tracker");
        return;
    }
    if (!tl_valid_uuid (log_id)) {
        s_refuse_after_load (call, id, 404, NULL, "no such log");
        return;
    }
    const char *values [] = { log_id, id, tl_call_user (call) };
    int err = 0;
    PGresult *res = tl_db_exec (tl_call_db (call), "logs_one", 3, values, &err);
    trk_type_t type;
    if (!res)
        tl_call_db_error (call, err);
    else
    if (!s_folded_type (call, res, &type))
        ;
    else
    if (!tl_db_value (res, 0, 1))
        tl_call_error (call, 404, "not_found", "no such log");
    else
        s_pack_log (tl_call_reply (call, 200), res, 0, 1, type);
    PQclear (res);
}

//  ---------------------------------------------------------------------
//  The event auth.user.deleted (subject: the user id): their trackers and
//  logs go, in the transaction that records the event handled.

static int
s_user_deleted (tl_event_t *event)
{
    const char *user = tl_event_subject (event);
    long logs = tl_db_exec_count (tl_event_db (event), "logs_forget_owner", 1, &user);
    long trackers = logs < 0 ? logs
                  : tl_db_exec_count (tl_event_db (event), "trackers_forget_owner", 1, &user);
    if (trackers >= 0)
        tl_log (TL_LOG_INFO, NULL, "forgot user %s (%ld tracker(s))", user, trackers);
    return trackers < 0 ? (int) trackers : 0;
}

//  ---------------------------------------------------------------------
//  tracker.purge_moods (daily): mood logs older than a year go

static int
s_purge_moods (tl_job_ctx_t *job)
{
    long total = tl_job_ctx_purge (job, "logs_purge_moods", S_PURGE_BATCH);
    if (total < 0)
        return (int) total;
    if (total)
        tl_log (TL_LOG_INFO, NULL, "removed %ld mood log(s) older than a year", total);
    return 0;
}

int
tracker_logs_register (tl_service_t *svc)
{
    int rc = tl_service_on (svc, "logs.list", s_list);
    rc = rc ? rc : tl_service_on (svc, "logs.create", s_create);
    rc = rc ? rc : tl_service_on (svc, "logs.get", s_get);
    rc = rc ? rc : tl_service_on (svc, "logs.update", s_update);
    rc = rc ? rc : tl_service_on (svc, "logs.delete", s_delete);
    rc = rc ? rc : tl_service_subscribe (svc, "auth.user.deleted", s_user_deleted);
    rc = rc ? rc : tl_service_job (svc, "tracker.purge_moods", s_purge_moods);
    rc = rc ? rc : tl_service_schedule (svc, "tracker.purge_moods", "tracker.purge_moods",
                                        "daily");
    return rc;
}
