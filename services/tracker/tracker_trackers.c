//  tracker_trackers.c — trackers: list (each with its last log), create,
//  read, update (the type only while it has no logs; a choice in use stays)
//  and delete. Every statement filters on the caller as owner.
#include "tracker_service.h"
#include "trk_limits.h"
#include "tl_buf.h"
#include "tl_error.h"
#include "tl_mp.h"
#include "tl_valid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  A tracker as the API shows it: TRACKER_ROW_COLUMNS (t.), then the rest,
//  then its last log (NULLs when none), then the list cursor.
#define S_COLUMNS \
    "t.id, t.owner, t.name, t.type, coalesce (t.unit, ''), t.choices, " \
    "t.description, rfc3339 (t.created_at), rfc3339 (t.updated_at), t.unit, " \
    "l.id, rfc3339 (l.at), l.num, l.flag, l.choice, " \
    "to_char (t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
enum { S_COL_DESCRIPTION = 6, S_COL_CREATED, S_COL_UPDATED, S_COL_UNIT,
       S_COL_LOG_ID, S_COL_LOG_AT, S_COL_LOG_VALUE, S_COL_CURSOR = 15 };
#define S_LAST_LOG \
    "LEFT JOIN LATERAL (SELECT id, at, num, flag, choice FROM logs " \
    "WHERE tracker_id = t.id ORDER BY at DESC, id DESC LIMIT 1) l ON true "

static const tl_db_statement_t s_statements [] = {
    { "trackers_page",
      "SELECT " S_COLUMNS " FROM trackers t " S_LAST_LOG
      "WHERE t.owner = $1 AND ($2::timestamptz IS NULL "
      "      OR (t.created_at, t.id) > ($2::timestamptz, $3::uuid)) "
      "ORDER BY t.created_at, t.id LIMIT $4::int", 4 },
    { "trackers_one",
      "SELECT " S_COLUMNS " FROM trackers t " S_LAST_LOG
      "WHERE t.id = $1 AND t.owner = $2", 2 },
    //  Creates of one owner take turns (till the transaction ends), so
    //  that each counts the trackers the others made
    { "trackers_owner_lock",
      "SELECT pg_advisory_xact_lock (hashtextextended ('tracker.trackers:' || $1, 0))", 1 },
    { "trackers_count", "SELECT count (*) FROM trackers WHERE owner = $1", 1 },
    { "trackers_insert",
      "INSERT INTO trackers (owner, name, description, type, choices, unit) "
      "VALUES ($1, $2, coalesce ($3, ''), $4, $5::text[], $6) RETURNING id", 6 },
    { "trackers_has_logs", "SELECT EXISTS (SELECT 1 FROM logs WHERE tracker_id = $1)", 1 },
    { "trackers_choice_used",
      "SELECT choice FROM logs WHERE tracker_id = $1 AND choice = ANY ($2::text[]) LIMIT 1", 2 },
    //  $3 name, $4 description (NULL keeps), $5 type, $6 choices,
    //  $7 unit given, $8 unit
    { "trackers_update",
      "UPDATE trackers SET name = coalesce ($3, name), "
      "  description = coalesce ($4, description), type = $5, choices = $6::text[], "
      "  unit = CASE WHEN $7::boolean THEN $8 ELSE unit END, updated_at = now () "
      "WHERE id = $1 AND owner = $2", 8 },
    { "trackers_delete", "DELETE FROM trackers WHERE id = $1 AND owner = $2", 2 },
};

int
tracker_trackers_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

//  Packs the tracker of `row` (S_COLUMNS) as the API shows it.
static void
s_pack_tracker (msgpack_packer *pk, const PGresult *res, int row)
{
    tracker_t tracker;
    bool ok = tracker_from_row (res, row, 0, &tracker) == 0;
    msgpack_pack_map (pk, 9);
    tl_mp_pack_kv (pk, "id", tl_db_value (res, row, 0));
    tl_mp_pack_kv (pk, "name", tl_db_value (res, row, 2));
    tl_mp_pack_kv (pk, "description", tl_db_value (res, row, S_COL_DESCRIPTION));
    tl_mp_pack_kv (pk, "type", tl_db_value (res, row, 3));
    tl_mp_pack_str (pk, "choices");
    if (ok && tracker.type == TRK_MULTIPLE_CHOICE) {
        msgpack_pack_array (pk, tracker.nchoices);
        for (size_t i = 0; i < tracker.nchoices; i++)
            tl_mp_pack_str (pk, tracker.choices [i]);
    }
    else
        msgpack_pack_nil (pk);
    tl_mp_pack_kv (pk, "unit", tl_db_value (res, row, S_COL_UNIT));
    tl_mp_pack_kv (pk, "created_at", tl_db_value (res, row, S_COL_CREATED));
    tl_mp_pack_kv (pk, "updated_at", tl_db_value (res, row, S_COL_UPDATED));
    tl_mp_pack_str (pk, "last_log");
    trk_value_t value;
    if (ok && tl_db_value (res, row, S_COL_LOG_ID)
    &&  tracker_value_from_row (res, row, S_COL_LOG_VALUE, tracker.type, &value) == 0) {
        msgpack_pack_map (pk, 3);
        tl_mp_pack_kv (pk, "id", tl_db_value (res, row, S_COL_LOG_ID));
        tl_mp_pack_kv (pk, "timestamp", tl_db_value (res, row, S_COL_LOG_AT));
        tl_mp_pack_str (pk, "value");
        trk_value_pack (&value, pk);
    }
    else
        msgpack_pack_nil (pk);
    if (ok)
        tracker_clear (&tracker);
}

//  Answers 200 (or `status`) with tracker `id` of the caller, or 404.
static void
s_reply_tracker (tl_call_t *call, const char *id, int status)
{
    const char *values [] = { id, tl_call_user (call) };
    PGresult *res = tl_call_exec_one (call, "trackers_one", 2, values, "tracker");
    if (res)
        s_pack_tracker (tl_call_reply (call, status), res, 0);
    PQclear (res);
}

//  ---------------------------------------------------------------------
//  GET /trackers

static void
s_list (tl_call_t *call)
{
    tl_page_t page;
    if (!tl_call_page (call, &page))
        return;
    const char *values [] = { tl_call_user (call), page.after_time, page.after_id, page.fetch };
    PGresult *res = tl_call_exec_page (call, "trackers_page", 4, values);
    if (!res)
        return;
    bool more;
    msgpack_packer *pk;
    int rows = tl_call_page_reply (call, &page, PQntuples (res), &more, &pk);
    for (int row = 0; row < rows; row++)
        s_pack_tracker (pk, res, row);
    tl_call_page_end (pk, more, tl_db_value (res, rows - 1, S_COL_CURSOR),
                         tl_db_value (res, rows - 1, 0));
    PQclear (res);
}

//  ---------------------------------------------------------------------
//  The body of POST and PATCH

typedef struct {
    char *name, *description, *type_name, *unit;
    bool unit_given;
    const msgpack_object *choices;      //  borrowed from the body
    tl_buf_t *choices_sql;              //  its PostgreSQL array literal
} s_body_t;

static void
s_body_free (s_body_t *body)
{
    free (body->name);
    free (body->description);
    free (body->type_name);
    free (body->unit);
    tl_buf_destroy (&body->choices_sql);
}

//  True when `text` is `min`..`max` characters of UTF-8 without control
//  characters (a note or description may hold line breaks: `lines`).
static bool
s_text_ok (const char *text, long min, long max, bool lines)
{
    long chars = tl_valid_utf8_chars (text, strlen (text));
    if (chars < min || chars > max)
        return false;
    for (const unsigned char *c = (const unsigned char *) text; *c; c++)
        if ((*c < 0x20 && !(lines && (*c == '\n' || *c == '\r' || *c == '\t'))) || *c == 0x7f)
            return false;
    return true;
}

//  PostgreSQL array literals of text, built element by element: every
//  element quoted, '"' and '\' escaped. s_literal_new starts one ("{"),
//  s_literal_add appends an element, s_literal_end closes it (with a NUL,
//  so that its data is a C string). Each returns 0 or TL_ENOMEM; the
//  buffer is the caller's.
static tl_buf_t *
s_literal_new (void)
{
    //  50 choices of 100 bytes, each escaped at worst to twice its size
    tl_buf_t *buf = tl_buf_new (TRK_MAX_CHOICES * (2 * TRK_CHOICE_MAX_LEN + 3) + 3);
    if (buf && tl_buf_append (buf, "{", 1) != 0)
        tl_buf_destroy (&buf);
    return buf;
}

static int
s_literal_add (tl_buf_t *buf, const char *text, size_t size)
{
    int rc = tl_buf_append (buf, tl_buf_size (buf) > 1 ? ",\"" : "\"", tl_buf_size (buf) > 1 ? 2 : 1);
    for (size_t i = 0; rc == 0 && i < size; i++) {
        if (text [i] == '"' || text [i] == '\\')
            rc = tl_buf_append (buf, "\\", 1);
        rc = rc ? rc : tl_buf_append (buf, text + i, 1);
    }
    return rc ? rc : tl_buf_append (buf, "\"", 1);
}

static int
s_literal_end (tl_buf_t *buf)
{
    return tl_buf_append (buf, "}", 2);
}

//  The literal of the strings of msgpack `array` (checked by
//  trk_choices_check), or NULL when out of memory.
static tl_buf_t *
s_array_literal (const msgpack_object *array)
{
    tl_buf_t *buf = s_literal_new ();
    int rc = buf ? 0 : TL_ENOMEM;
    for (uint32_t i = 0; rc == 0 && i < array->via.array.size; i++)
        rc = s_literal_add (buf, array->via.array.ptr [i].via.str.ptr,
                            array->via.array.ptr [i].via.str.size);
    rc = rc ? rc : s_literal_end (buf);
    if (rc)
        tl_buf_destroy (&buf);
    return buf;
}

//  Reads and checks the body (every field optional here; POST checks its
//  required ones). Returns false once it has answered 400.
static bool
s_body_read (tl_call_t *call, s_body_t *body)
{
    const msgpack_object *map = tl_call_body_map (call);
    if (!map)
        return false;
    if (!tl_call_text (call, NULL, "name", NULL, TRK_NAME_MAX * 4, &body->name, NULL)
    ||  !tl_call_text (call, NULL, "description", NULL, TRK_DESCRIPTION_MAX * 4,
                       &body->description, NULL)
    ||  !tl_call_text (call, NULL, "type", NULL, 32, &body->type_name, NULL)
    ||  !tl_call_text (call, NULL, "unit", NULL, TRK_UNIT_MAX * 4, &body->unit,
                       &body->unit_given))
        return false;
    if (body->name && !s_text_ok (body->name, 1, TRK_NAME_MAX, false)) {
        tl_call_field_error (call, 400, "invalid", "name", "must be 1 to 100 characters");
        return false;
    }
    if (body->description && !s_text_ok (body->description, 0, TRK_DESCRIPTION_MAX, true)) {
        tl_call_field_error (call, 400, "invalid", "description",
                             "must be at most 2000 characters");
        return false;
    }
    trk_type_t type;
    if (body->type_name && trk_type_parse (body->type_name, &type) != 0) {
        tl_call_field_error (call, 400, "invalid", "type",
                             "must be numerical, multiple_choice, boolean, duration or mood");
        return false;
    }
    if (body->unit && !s_text_ok (body->unit, 0, TRK_UNIT_MAX, false)) {
        tl_call_field_error (call, 400, "invalid", "unit", "must be at most 32 characters");
        return false;
    }
    const msgpack_object *choices = tl_mp_get (map, "choices");
    if (choices && choices->type != MSGPACK_OBJECT_NIL) {
        const char *why = NULL;
        if (trk_choices_check (choices, &why) != 0) {
            tl_call_field_error (call, 400, "invalid", "choices", why ? why : "are invalid");
            return false;
        }
        body->choices = choices;
        body->choices_sql = s_array_literal (choices);
        if (!body->choices_sql) {
            tl_call_error (call, 503, "unavailable", "out of memory");
            return false;
        }
    }
    return true;
}

//  ---------------------------------------------------------------------
//  POST /trackers {name, description?, type, choices?, unit?}

typedef struct {
    const char *const *values;          //  trackers_insert's
    PGresult *res;                      //  the new tracker's id
    bool full;                          //  TRK_MAX_TRACKERS_PER_USER already
} s_create_t;

//  Inserts the tracker unless its owner ($1) has TRK_MAX_TRACKERS_PER_USER,
//  counted under the owner's lock.
static int
s_create_tx (tl_db_t *db, void *arg)
{
    s_create_t *create = (s_create_t *) arg;
    PQclear (create->res);
    create->res = NULL;
    int rc = 0;
    PGresult *res = tl_db_exec (db, "trackers_owner_lock", 1, create->values, &rc);
    PQclear (res);
    res = rc ? NULL : tl_db_exec (db, "trackers_count", 1, create->values, &rc);
    create->full = res && atol (tl_db_value (res, 0, 0)) >= TRK_MAX_TRACKERS_PER_USER;
    PQclear (res);
    if (rc || create->full)
        return rc;
    create->res = tl_db_exec (db, "trackers_insert", 6, create->values, &rc);
    return rc;
}

static void
s_create (tl_call_t *call)
{
    s_body_t body = { 0 };
    if (!s_body_read (call, &body))
        goto done;
    trk_type_t type;
    if (!body.name) {
        tl_call_field_error (call, 400, "invalid", "name", "is required");
        goto done;
    }
    if (!body.type_name || trk_type_parse (body.type_name, &type) != 0) {
        tl_call_field_error (call, 400, "invalid", "type", "is required");
        goto done;
    }
    if (type == TRK_MULTIPLE_CHOICE && !body.choices) {
        tl_call_field_error (call, 400, "invalid", "choices",
                             "are required for a multiple_choice tracker");
        goto done;
    }
    if (type != TRK_MULTIPLE_CHOICE && body.choices) {
        tl_call_field_error (call, 400, "invalid", "choices",
                             "are only for multiple_choice trackers");
        goto done;
    }
    const char *values [] = {
        tl_call_user (call), body.name, body.description, body.type_name,
        body.choices_sql ? (const char *) tl_buf_data (body.choices_sql) : NULL,
        body.unit && *body.unit ? body.unit : NULL
    };
    s_create_t create = { values, NULL, false };
    int err = tl_db_tx (tl_call_db (call), s_create_tx, &create);
    if (err)
        tl_call_db_error (call, err);
    else
    if (create.full)
        tl_call_error (call, 422, "too_many_trackers", "a user has at most %d trackers",
                       TRK_MAX_TRACKERS_PER_USER);
    else {
        char location [96];
        const char *id = tl_db_value (create.res, 0, 0);
        snprintf (location, sizeof location, "/api/v1/trackers/%s", id);
        tl_call_header (call, "Location", location);
        s_reply_tracker (call, id, 201);
    }
    PQclear (create.res);
done:
    s_body_free (&body);
}

//  ---------------------------------------------------------------------
//  GET /trackers/{id}

static void
s_get (tl_call_t *call)
{
    const char *id = tl_call_param (call, "id");
    if (!tl_valid_uuid (id))
        tl_call_error (call, 404, "not_found", "no such tracker");
    else
        s_reply_tracker (call, id, 200);
}

//  ---------------------------------------------------------------------
//  PATCH /trackers/{id}

typedef struct {
    tl_call_t *call;
    s_body_t *body;
    int status;                 //  an answer to give instead of the tracker
    const char *code, *field, *why;
    char used [TRK_CHOICE_MAX_LEN + 1];
} s_update_t;

//  True when a choice of `tracker` is missing from the new `choices`.
static bool
s_choice_removed (const tracker_t *tracker, const msgpack_object *choices, size_t index)
{
    const char *old = tracker->choices [index];
    for (uint32_t i = 0; i < choices->via.array.size; i++)
        if (tl_mp_str_eq (&choices->via.array.ptr [i], old))
            return false;
    return true;
}

static int
s_update_tx (tl_db_t *db, void *arg)
{
    s_update_t *update = (s_update_t *) arg;
    tl_call_t *call = update->call;
    s_body_t *body = update->body;
    tracker_t tracker;
    const char *id = tl_call_param (call, "id");
    int rc = tracker_lock_db (db, tl_call_user (call), id, &tracker);
    if (rc == TL_ENOTFOUND) {
        update->status = 404;
        return 0;
    }
    if (rc)
        return rc;
    trk_type_t type = tracker.type;
    if (body->type_name)
        trk_type_parse (body->type_name, &type);
    PGresult *res = NULL;
    //  The type is fixed once there are logs
    if (type != tracker.type) {
        res = tl_db_exec (db, "trackers_has_logs", 1, &id, &rc);
        bool has_logs = res && tl_db_value (res, 0, 0) [0] == 't';
        PQclear (res);
        if (rc)
            goto done;
        if (has_logs) {
            update->status = 409;
            update->code = "type_locked";
            update->field = "type";
            update->why = "cannot change once the tracker has logs";
            goto done;
        }
    }
    //  Choices: required for multiple_choice, kept when not given, and
    //  one in use cannot be removed
    const char *choices = body->choices_sql ? (const char *) tl_buf_data (body->choices_sql) : NULL;
    tl_buf_t *kept = NULL;
    if (type != TRK_MULTIPLE_CHOICE && body->choices) {
        update->status = 400;
        update->code = "invalid", update->field = "choices";
        update->why = "are only for multiple_choice trackers";
        goto done;
    }
    if (type == TRK_MULTIPLE_CHOICE && !body->choices) {
        if (tracker.type != TRK_MULTIPLE_CHOICE) {
            update->status = 400;
            update->code = "invalid", update->field = "choices";
            update->why = "are required for a multiple_choice tracker";
            goto done;
        }
        //  Unchanged: write back what is there
        kept = s_literal_new ();
        for (size_t i = 0; kept && i < tracker.nchoices; i++)
            s_literal_add (kept, tracker.choices [i], strlen (tracker.choices [i]));
        if (!kept || s_literal_end (kept) != 0) {
            rc = TL_ENOMEM;
            goto done_kept;
        }
        choices = (const char *) tl_buf_data (kept);
    }
    if (type == TRK_MULTIPLE_CHOICE && body->choices && tracker.type == TRK_MULTIPLE_CHOICE) {
        tl_buf_t *removed = s_literal_new ();
        int count = 0;
        for (size_t i = 0; removed && i < tracker.nchoices; i++)
            if (s_choice_removed (&tracker, body->choices, i)) {
                s_literal_add (removed, tracker.choices [i], strlen (tracker.choices [i]));
                count++;
            }
        if (!removed || s_literal_end (removed) != 0) {
            tl_buf_destroy (&removed);
            rc = TL_ENOMEM;
            goto done_kept;
        }
        if (count) {
            const char *values [] = { id, (const char *) tl_buf_data (removed) };
            res = tl_db_exec (db, "trackers_choice_used", 2, values, &rc);
            if (res && PQntuples (res) == 1) {
                snprintf (update->used, sizeof update->used, "%s", tl_db_value (res, 0, 0));
                update->status = 409;
                update->code = "choice_in_use";
                update->field = "choices";
                update->why = update->used;
            }
            PQclear (res);
        }
        tl_buf_destroy (&removed);
        if (rc || update->status)
            goto done_kept;
    }
    const char *values [] = {
        id, tl_call_user (call), body->name, body->description, trk_type_name (type),
        type == TRK_MULTIPLE_CHOICE ? choices : NULL,
        body->unit_given ? "t" : "f", body->unit && *body->unit ? body->unit : NULL
    };
    long count = tl_db_exec_count (db, "trackers_update", 8, values);
    if (count < 0)
        rc = (int) count;
done_kept:
    tl_buf_destroy (&kept);
done:
    tracker_clear (&tracker);
    return rc;
}

static void
s_update (tl_call_t *call)
{
    s_body_t body = { 0 };
    const char *id = tl_call_param (call, "id");
    if (!tl_valid_uuid (id)) {
        tl_call_error (call, 404, "not_found", "no such tracker");
        return;
    }
    if (!s_body_read (call, &body)) {
        s_body_free (&body);
        return;
    }
    s_update_t update = { call, &body, 0, NULL, NULL, NULL, "" };
    int rc = tl_db_tx (tl_call_db (call), s_update_tx, &update);
    if (rc)
        tl_call_db_error (call, rc);
    else
    if (update.status == 404)
        tl_call_error (call, 404, "not_found", "no such tracker");
    else
    if (update.status == 409 && strcmp (update.code, "choice_in_use") == 0) {
        char why [TRK_CHOICE_MAX_LEN + 64];
        snprintf (why, sizeof why, "'%s' is in use and cannot be removed", update.used);
        tl_call_field_error (call, 409, update.code, update.field, why);
    }
    else
    if (update.status)
        tl_call_field_error (call, update.status, update.code, update.field, update.why);
    else
        s_reply_tracker (call, id, 200);
    s_body_free (&body);
}

//  ---------------------------------------------------------------------
//  DELETE /trackers/{id}

static void
s_delete (tl_call_t *call)
{
    const char *id = tl_call_param (call, "id");
    if (!tl_valid_uuid (id)) {
        tl_call_error (call, 404, "not_found", "no such tracker");
        return;
    }
    const char *values [] = { id, tl_call_user (call) };
    long count = tl_db_exec_count (tl_call_db (call), "trackers_delete", 2, values);
    if (count < 0)
        tl_call_db_error (call, (int) count);
    else
    if (count == 0)
        tl_call_error (call, 404, "not_found", "no such tracker");
    else
        tl_call_reply_empty (call, 204);
}

int
tracker_trackers_register (tl_service_t *svc)
{
    int rc = tl_service_on (svc, "trackers.list", s_list);
    rc = rc ? rc : tl_service_on (svc, "trackers.create", s_create);
    rc = rc ? rc : tl_service_on (svc, "trackers.get", s_get);
    rc = rc ? rc : tl_service_on (svc, "trackers.update", s_update);
    rc = rc ? rc : tl_service_on (svc, "trackers.delete", s_delete);
    return rc;
}
