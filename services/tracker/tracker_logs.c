//  tracker_logs.c — a tracker's logs: list (newest first, from/to, cursor
//  pages), add, read, change, delete; the mood rules (at most two a local
//  day; only on their own local day; gone after a year); and forgetting a
//  deleted user. Every statement filters on the caller as owner.
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

//  A log as the API shows it, then the list cursor.
#define S_COLUMNS \
    "id, tracker_id, rfc3339 (at), num, flag, choice, note, rfc3339 (created_at), " \
    "to_char (at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
enum { S_COL_VALUE = 3, S_COL_NOTE = 6, S_COL_CREATED, S_COL_CURSOR };

static const tl_db_statement_t s_statements [] = {
    { "logs_page",
      "SELECT " S_COLUMNS " FROM logs WHERE tracker_id = $1 AND owner = $2 "
      "AND at >= to_timestamp ($3::float8 / 1000) AND at <= to_timestamp ($4::float8 / 1000) "
      "AND ($5::timestamptz IS NULL OR (at, id) < ($5::timestamptz, $6::uuid)) "
      "ORDER BY at DESC, id DESC LIMIT $7::int", 7 },
    { "logs_one",
      "SELECT " S_COLUMNS " FROM logs WHERE id = $1 AND tracker_id = $2 AND owner = $3", 3 },
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

//  Packs the log of `row` (S_COLUMNS) for a tracker of `type`.
static void
s_pack_log (msgpack_packer *pk, const PGresult *res, int row, trk_type_t type)
{
    trk_value_t value;
    bool ok = tracker_value_from_row (res, row, S_COL_VALUE, type, &value) == 0;
    msgpack_pack_map (pk, 6);
    tl_mp_pack_kv (pk, "id", tl_db_value (res, row, 0));
    tl_mp_pack_kv (pk, "tracker_id", tl_db_value (res, row, 1));
    tl_mp_pack_kv (pk, "timestamp", tl_db_value (res, row, 2));
    tl_mp_pack_str (pk, "value");
    if (ok)
        trk_value_pack (&value, pk);
    else
        msgpack_pack_nil (pk);
    tl_mp_pack_kv (pk, "note", tl_db_value (res, row, S_COL_NOTE));
    tl_mp_pack_kv (pk, "created_at", tl_db_value (res, row, S_COL_CREATED));
}

//  ---------------------------------------------------------------------
//  GET /trackers/{id}/logs?from=&to=&limit=&cursor=

static void
s_list (tl_call_t *call)
{
    tracker_t tracker;
    int64_t from_ms, to_ms;
    tl_page_t page;
    if (!tracker_load (call, tl_call_param (call, "id"), false, &tracker))
        return;
    if (tracker_range (call, &from_ms, &to_ms) && tl_call_page (call, &page)) {
        char from [32], to [32];
        tracker_ms_text (from_ms, from);
        tracker_ms_text (to_ms, to);
        const char *values [] = { tracker.id, tl_call_user (call), from, to,
                                  page.after_time, page.after_id, page.fetch };
        int err = 0;
        PGresult *res = tl_db_exec (tl_call_db (call), "logs_page", 7, values, &err);
        if (!res) {
            if (err == TL_EINVAL)
                tl_call_field_error (call, 400, "invalid", "cursor",
                                     "is not a cursor from this list");
            else
                tl_call_db_error (call, err);
        }
        else {
            bool more;
            msgpack_packer *pk;
            int rows = tl_call_page_reply (call, &page, PQntuples (res), &more, &pk);
            for (int row = 0; row < rows; row++)
                s_pack_log (pk, res, row, tracker.type);
            tl_call_page_end (pk, more, tl_db_value (res, rows - 1, S_COL_CURSOR),
                                 tl_db_value (res, rows - 1, 0));
            PQclear (res);
        }
    }
    tracker_clear (&tracker);
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
//  value twice: on reading the body, and again under the tracker's row
//  lock, where its type and choices cannot change (s_write_tx).
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

//  Reads the body for `tracker`; `need_value` on POST. Returns false once
//  it has answered (400 or 422).
static bool
s_body_read (tl_call_t *call, const tracker_t *tracker, bool need_value, s_body_t *body)
{
    memset (body, 0, sizeof *body);
    const msgpack_object *map = tl_call_body (call);
    if (!map || map->type != MSGPACK_OBJECT_MAP) {
        tl_call_field_error (call, 400, "invalid", "body", "must be a JSON object");
        return false;
    }
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
        int status = s_value_read (tracker, value, body, &why);
        if (status) {
            tl_call_field_error (call, status, "invalid", "value", why);
            return false;
        }
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

typedef enum { S_CREATE, S_UPDATE, S_DELETE } s_write_kind_t;

typedef struct {
    tl_call_t *call;
    s_write_kind_t kind;
    s_body_t *body;             //  NULL for a delete
    const char *zone;           //  the caller's zone
    PGresult *res;              //  the log written
    long deleted;
    const char *refused;        //  a mood rule's code, or NULL
    bool missing;               //  no such tracker (or log)
    bool changed;               //  became a mood tracker since it was read: 409
    bool full;                  //  the tracker has TRK_MAX_LOGS_PER_TRACKER logs: 422
    int status;                 //  the value does not fit the locked tracker:
    const char *why;            //  400 or 422, and why
    trk_type_t type;            //  the locked tracker's type, for the reply
} s_write_t;

//  Checks the write against the locked `tracker`, inside the write's
//  transaction: its value against the type and choices the tracker has now
//  (a concurrent PATCH may have changed them since the body was read), and
//  a new log has room
//  (TRK_MAX_LOGS_PER_TRACKER). Returns 0 when it may go on, 1 when not
//  (write->changed, ->status or ->full says why), or a database code.
static int
s_write_checks (tl_db_t *db, s_write_t *write, const tracker_t *tracker)
{
    write->type = tracker->type;
    write->changed = write->full = false;
    write->status = 0;
    s_body_t *body = write->body;
    if (body && body->value_obj)
        write->status = s_value_read (tracker, body->value_obj, body, &write->why);
    if (write->status)
        return 1;
    long count = 0;
    int rc = write->kind == S_CREATE ? tracker_log_count (db, tracker->id, &count) : 0;
    write->full = rc == 0 && count >= TRK_MAX_LOGS_PER_TRACKER;
    return rc ? rc : write->full ? 1 : 0;
}

static int
s_write_tx (tl_db_t *db, void *arg)
{
    s_write_t *write = (s_write_t *) arg;
    tl_call_t *call = write->call;
    const char *user = tl_call_user (call);
    const char *log_id = tl_call_param (call, "log_id");
    tracker_t tracker;
    //  The tracker row locked: mood writes of one tracker take turns
    int rc = tracker_lock_db (db, user, tl_call_param (call, "id"), &tracker);
    if (rc == TL_ENOTFOUND) {
        write->missing = true;
        return 0;
    }
    if (rc)
        return rc;
    rc = s_write_checks (db, write, &tracker);
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

//  Runs a write of `kind` on the call's tracker and answers.
static void
s_write (tl_call_t *call, s_write_kind_t kind)
{
    const char *log_id = tl_call_param (call, "log_id");
    if (kind != S_CREATE && !tl_valid_uuid (log_id)) {
        tl_call_error (call, 404, "not_found", "no such log");
        return;
    }
    tracker_t tracker;
    if (!tracker_load (call, tl_call_param (call, "id"), false, &tracker))
        return;
    s_body_t body;
    s_write_t write = { .call = call, .kind = kind, .body = kind == S_DELETE ? NULL : &body,
                        .zone = tracker_caller_zone (call) };
    if (kind != S_DELETE && !s_body_read (call, &tracker, kind == S_CREATE, &body))
        goto done;
    int rc = tl_db_tx (tl_call_db (call), s_write_tx, &write);
    if (rc)
        tl_call_db_error (call, rc);
    else
    if (write.changed)
        tl_call_error (call, 409, "conflict", "the tracker changed during the write: retry");
    else
    if (write.missing || (kind == S_DELETE && write.deleted == 0 && !write.refused))
        tl_call_error (call, 404, "not_found", kind == S_CREATE ? "no such tracker" : "no such log");
    else
    if (write.status)
        tl_call_field_error (call, write.status, "invalid", "value", write.why);
    else
    if (write.full)
        tl_call_error (call, 422, "too_many_logs", "a tracker holds at most %d logs",
                       TRK_MAX_LOGS_PER_TRACKER);
    else
    if (write.refused)
        s_mood_refused (call, write.refused);
    else
    if (kind == S_DELETE)
        tl_call_reply_empty (call, 204);
    else {
        if (kind == S_CREATE) {
            char location [128];
            snprintf (location, sizeof location, "/api/v1/trackers/%s/logs/%s", tracker.id,
                      tl_db_value (write.res, 0, 0));
            tl_call_header (call, "Location", location);
        }
        s_pack_log (tl_call_reply (call, kind == S_CREATE ? 201 : 200), write.res, 0,
                    write.type);
    }
    PQclear (write.res);
done:
    if (kind != S_DELETE)
        free (body.note);
    tracker_clear (&tracker);
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
//  GET /trackers/{id}/logs/{log_id}

static void
s_get (tl_call_t *call)
{
    tracker_t tracker;
    const char *log_id = tl_call_param (call, "log_id");
    if (!tracker_load (call, tl_call_param (call, "id"), false, &tracker))
        return;
    if (!tl_valid_uuid (log_id)) {
        tl_call_error (call, 404, "not_found", "no such log");
        tracker_clear (&tracker);
        return;
    }
    const char *values [] = { log_id, tracker.id, tl_call_user (call) };
    int err = 0;
    PGresult *res = tl_db_exec (tl_call_db (call), "logs_one", 3, values, &err);
    if (!res)
        tl_call_db_error (call, err);
    else
    if (PQntuples (res) != 1)
        tl_call_error (call, 404, "not_found", "no such log");
    else
        s_pack_log (tl_call_reply (call, 200), res, 0, tracker.type);
    PQclear (res);
    tracker_clear (&tracker);
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
