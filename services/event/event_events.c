//  event_events.c — events: create (the creator becomes its organizer),
//  read, update and delete under the caller's permissions on `event`; the
//  public list of published events and the staff list of every event,
//  both by start time, newest first, in keyset pages with ?from=&to=.
#include "event_service.h"
#include "tl_error.h"
#include "tl_log.h"
#include "tl_mp.h"
#include "tl_time.h"
#include "tl_valid.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  An event as the API shows it, its times as epoch microseconds (formatted
//  in s_pack_event, not by the database)
#define S_COLUMNS \
    "id, name, description, " TL_TIME_SQL_US ("starts_at") ", " TL_TIME_SQL_US ("ends_at") ", " \
    "timezone, location, state, " TL_TIME_SQL_US ("created_at") ", " \
    TL_TIME_SQL_US ("updated_at") ", background_url"
enum { S_COL_STARTS = 3, S_COL_BACKGROUND = 10 };

//  $1 from, $2 to (ms or ±infinity), $3/$4 the cursor, $5 the LIMIT
#define S_PAGE_WHERE \
    "starts_at >= to_timestamp ($1::float8 / 1000) " \
    "AND starts_at <= to_timestamp ($2::float8 / 1000) " \
    "AND ($3::timestamptz IS NULL OR (starts_at, id) < ($3::timestamptz, $4::uuid)) "

static const tl_db_statement_t s_statements [] = {
    { "events_page_published",
      "SELECT " S_COLUMNS " FROM events WHERE state = 'published' AND " S_PAGE_WHERE
      "ORDER BY starts_at DESC, id DESC LIMIT $5::int", 5 },
    { "events_page_all",
      "SELECT " S_COLUMNS " FROM events WHERE " S_PAGE_WHERE
      "AND ($6::text IS NULL OR state = $6) "
      "ORDER BY starts_at DESC, id DESC LIMIT $5::int", 6 },
    { "events_one", "SELECT " S_COLUMNS " FROM events WHERE id = $1", 1 },
    //  Creates of one user take turns, so that each counts the others'
    { "events_creator_lock",
      "SELECT pg_advisory_xact_lock (hashtextextended ('event.events:' || $1, 0))", 1 },
    { "events_count_creator", "SELECT count (*) FROM events WHERE creator = $1", 1 },
    //  $1 creator, $2 name, $3 description, $4 starts, $5 ends (ms),
    //  $6 timezone, $7 location, $8 state
    { "events_insert",
      "INSERT INTO events (creator, name, description, starts_at, ends_at, timezone, "
      "                    location, state) "
      "VALUES ($1, $2, coalesce ($3, ''), to_timestamp ($4::float8 / 1000), "
      "        to_timestamp ($5::float8 / 1000), $6, coalesce ($7, ''), "
      "        coalesce ($8, 'draft')) RETURNING id", 8 },
    { "events_insert_organizer",
      "INSERT INTO roles (event_id, user_id, role, email) VALUES ($1, $2, 'organizer', $3)", 3 },
    //  $2.. as events_insert's $2.. (NULL keeps what is there)
    { "events_update",
      "UPDATE events SET name = coalesce ($2, name), "
      "  description = coalesce ($3, description), "
      "  starts_at = coalesce (to_timestamp ($4::float8 / 1000), starts_at), "
      "  ends_at = coalesce (to_timestamp ($5::float8 / 1000), ends_at), "
      "  timezone = coalesce ($6, timezone), location = coalesce ($7, location), "
      "  state = coalesce ($8, state), updated_at = now () "
      "WHERE id = $1", 8 },
    //  What new times $2..$3 (ms) would leave outside the event: sessions
    //  that no longer fit, tickets whose sales end after it does
    { "events_outside",
      "SELECT (SELECT count (*) FROM sessions WHERE event_id = $1 "
      "          AND (starts_at < to_timestamp ($2::float8 / 1000) "
      "               OR ends_at > to_timestamp ($3::float8 / 1000))), "
      "       (SELECT count (*) FROM tickets WHERE event_id = $1 "
      "          AND sales_ends_at > to_timestamp ($3::float8 / 1000))", 3 },
    //  Deletion: the event's tickets locked in id order, as an order locks
    //  them (so no order completes or holds between the check and the
    //  delete), then the orders that still count
    { "events_lock_tickets",
      "SELECT id FROM tickets WHERE event_id = $1 ORDER BY id FOR UPDATE", 1 },
    { "events_live_orders",
      "SELECT count (*) FROM orders WHERE event_id = $1 AND (status = 'completed' "
      "  OR (status = 'pending' AND expires_at > clock_timestamp ()))", 1 },
    { "events_delete", "DELETE FROM events WHERE id = $1", 1 },
};

int
event_events_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

//  Packs the event of `row` (S_COLUMNS): its times come as epoch
//  microseconds and go out as RFC 3339 (formatted here, not in SQL).
static void
s_pack_event (msgpack_packer *pk, const PGresult *res, int row)
{
    static const char *keys [] = {
        "id", "name", "description", "starts_at", "ends_at", "timezone", "location",
        "state", "created_at", "updated_at"
    };
    static const bool is_time [] = { 0, 0, 0, 1, 1, 0, 0, 0, 1, 1 };
    msgpack_pack_map (pk, 11);
    for (int col = 0; col < 10; col++) {
        const char *value = tl_db_value (res, row, col);
        char time [TL_TIME_US_TEXT_SIZE];
        if (is_time [col] && value) {
            tl_time_format_us (atoll (value), false, time);
            value = time;
        }
        tl_mp_pack_kv (pk, keys [col], value);
    }
    tl_mp_pack_kv (pk, "background_url", tl_db_value (res, row, S_COL_BACKGROUND));
}

//  Answers `status` with event `id`, or 404.
static void
s_reply_event (tl_call_t *call, const char *id, int status)
{
    PGresult *res = tl_call_exec_one (call, "events_one", 1, &id, "event");
    if (res)
        s_pack_event (tl_call_reply (call, status), res, 0);
    PQclear (res);
}

//  ---------------------------------------------------------------------
//  GET /events (published) and GET /admin/events (all, ?state=)

static void
s_page (tl_call_t *call, bool all)
{
    tl_page_t page;
    int64_t from_ms, to_ms;
    if (!tl_call_page (call, &page) || !tl_call_range (call, &from_ms, &to_ms))
        return;
    const char *state = all ? tl_call_param (call, "state") : NULL;
    if (state && !*state)
        state = NULL;
    if (state && strcmp (state, "draft") != 0 && strcmp (state, "published") != 0) {
        tl_call_field_error (call, 400, "invalid", "state", "must be draft or published");
        return;
    }
    char from [32], to [32];
    tl_time_sql_ms (from_ms, from);
    tl_time_sql_ms (to_ms, to);
    const char *values [] = { from, to, page.after_time, page.after_id, page.fetch, state };
    PGresult *res = tl_call_exec_page (call, all ? "events_page_all" : "events_page_published",
                                       all ? 6 : 5, values);
    if (!res)
        return;
    bool more;
    msgpack_packer *pk;
    int rows = tl_call_page_reply (call, &page, PQntuples (res), &more, &pk);
    for (int row = 0; row < rows; row++)
        s_pack_event (pk, res, row);
    char cursor [TL_TIME_US_TEXT_SIZE] = "";
    if (more)
        tl_time_format_us (tl_db_parse_int64 (tl_db_value (res, rows - 1, S_COL_STARTS)), true, cursor);
    tl_call_page_end (pk, more, cursor, tl_db_value (res, rows - 1, 0));
    PQclear (res);
}

static void
s_list (tl_call_t *call)
{
    s_page (call, false);
}

static void
s_admin_list (tl_call_t *call)
{
    s_page (call, true);
}

//  ---------------------------------------------------------------------
//  The body of POST and PATCH

typedef struct {
    char *name, *description, *starts_at, *ends_at, *timezone, *location, *state;
    int64_t starts_ms, ends_ms;
    char starts_text [32], ends_text [32];
} s_body_t;

static void
s_body_free (s_body_t *body)
{
    free (body->name);
    free (body->description);
    free (body->starts_at);
    free (body->ends_at);
    free (body->timezone);
    free (body->location);
    free (body->state);
}

//  Reads an optional time field into *ms and its SQL text. Answers 400.
static bool
s_time (tl_call_t *call, const char *field, const char *text, int64_t *ms, char sql [32])
{
    if (!text)
        return true;
    char year [5] = { 0 };
    memcpy (year, text, strnlen (text, 4));
    if (tl_time_parse (text, ms) != 0 || atoi (year) > EV_MAX_YEAR) {
        tl_call_field_error (call, 400, "invalid", field, "must be an RFC 3339 time");
        return false;
    }
    tl_time_sql_ms (*ms, sql);
    return true;
}

//  Reads and checks the body (every field optional here; POST checks the
//  ones it needs). Returns false once it has answered 400.
static bool
s_body_read (tl_call_t *call, s_body_t *body)
{
    const msgpack_object *map = tl_call_body_map (call);
    if (!map)
        return false;
    if (!tl_call_text (call, NULL, "name", NULL, EV_NAME_MAX * 4, &body->name, NULL)
    ||  !tl_call_text (call, NULL, "description", NULL, EV_DESCRIPTION_MAX * 4,
                       &body->description, NULL)
    ||  !tl_call_text (call, NULL, "starts_at", NULL, 64, &body->starts_at, NULL)
    ||  !tl_call_text (call, NULL, "ends_at", NULL, 64, &body->ends_at, NULL)
    ||  !tl_call_text (call, NULL, "timezone", NULL, TL_MAX_TIMEZONE_LEN, &body->timezone, NULL)
    ||  !tl_call_text (call, NULL, "location", NULL, EV_LOCATION_MAX * 4, &body->location, NULL)
    ||  !tl_call_text (call, NULL, "state", NULL, 16, &body->state, NULL))
        return false;
    if (body->name && !event_text_ok (body->name, 1, EV_NAME_MAX, false)) {
        tl_call_field_error (call, 400, "invalid", "name", "must be 1 to 200 characters");
        return false;
    }
    if (body->description && !event_text_ok (body->description, 0, EV_DESCRIPTION_MAX, true)) {
        tl_call_field_error (call, 400, "invalid", "description",
                             "must be at most 10000 characters");
        return false;
    }
    if (body->location && !event_text_ok (body->location, 0, EV_LOCATION_MAX, false)) {
        tl_call_field_error (call, 400, "invalid", "location", "must be at most 500 characters");
        return false;
    }
    if (body->timezone && !tl_valid_timezone (body->timezone)) {
        tl_call_field_error (call, 400, "invalid", "timezone",
                             "must be an IANA time zone such as Europe/Paris");
        return false;
    }
    if (body->state && strcmp (body->state, "draft") != 0
    &&  strcmp (body->state, "published") != 0) {
        tl_call_field_error (call, 400, "invalid", "state", "must be draft or published");
        return false;
    }
    return s_time (call, "starts_at", body->starts_at, &body->starts_ms, body->starts_text)
        && s_time (call, "ends_at", body->ends_at, &body->ends_ms, body->ends_text);
}

//  Checks the times an event will have. Answers 422 and returns false.
static bool
s_times_ok (tl_call_t *call, int64_t starts_ms, int64_t ends_ms)
{
    if (starts_ms >= ends_ms) {
        tl_call_field_error (call, 422, "invalid_times", "ends_at", "must be after starts_at");
        return false;
    }
    if (ends_ms - starts_ms > (int64_t) EV_MAX_DURATION_DAYS * 86400000) {
        tl_call_field_error (call, 422, "invalid_times", "ends_at",
                             "an event lasts at most 366 days");
        return false;
    }
    return true;
}

//  The parameters $2..$8 of events_insert and events_update.
static void
s_params (s_body_t *body, const char *values [7])
{
    values [0] = body->name;
    values [1] = body->description;
    values [2] = body->starts_at ? body->starts_text : NULL;
    values [3] = body->ends_at ? body->ends_text : NULL;
    values [4] = body->timezone;
    values [5] = body->location;
    values [6] = body->state;
}

//  ---------------------------------------------------------------------
//  POST /events

typedef struct {
    tl_call_t *call;
    s_body_t *body;
    const char *email;          //  the creator's, for the roles list; NULL unknown
    char id [37];
    bool full;
} s_create_t;

static int
s_create_tx (tl_db_t *db, void *arg)
{
    s_create_t *create = (s_create_t *) arg;
    const char *user = tl_call_user (create->call);
    int rc = 0;
    PGresult *res = tl_db_exec (db, "events_creator_lock", 1, &user, &rc);
    PQclear (res);
    res = rc ? NULL : tl_db_exec (db, "events_count_creator", 1, &user, &rc);
    create->full = res && atol (tl_db_value (res, 0, 0)) >= EV_MAX_EVENTS_PER_USER;
    PQclear (res);
    if (rc || create->full)
        return rc;
    const char *values [8] = { user };
    s_params (create->body, values + 1);
    res = tl_db_exec (db, "events_insert", 8, values, &rc);
    if (!res)
        return rc;
    snprintf (create->id, sizeof create->id, "%s", tl_db_value (res, 0, 0));
    PQclear (res);
    const char *role [] = { create->id, user, create->email };
    long count = tl_db_exec_count (db, "events_insert_organizer", 3, role);
    return count < 0 ? (int) count : 0;
}

static void
s_create (tl_call_t *call)
{
    s_body_t body = { 0 };
    if (!s_body_read (call, &body))
        goto done;
    const char *missing = !body.name ? "name" : !body.starts_at ? "starts_at"
                        : !body.ends_at ? "ends_at" : !body.timezone ? "timezone" : NULL;
    if (missing) {
        tl_call_field_error (call, 400, "invalid", missing, "is required");
        goto done;
    }
    if (!s_times_ok (call, body.starts_ms, body.ends_ms))
        goto done;
    //  The creator's address for the roles list, as invitees' are: best
    //  effort (an event is made while auth cannot say; the list shows null)
    char email [TL_MAX_EMAIL_LEN + 1];
    s_create_t create = { call, &body, event_caller_email (call, email) == 0 ? email : NULL,
                          "", false };
    int err = tl_db_tx (tl_call_db (call), s_create_tx, &create);
    if (err)
        tl_call_db_error (call, err);
    else
    if (create.full)
        tl_call_error (call, 422, "too_many_events", "a user creates at most %d events",
                       EV_MAX_EVENTS_PER_USER);
    else {
        char location [96];
        snprintf (location, sizeof location, "/api/v1/events/%s", create.id);
        tl_call_header (call, "Location", location);
        s_reply_event (call, create.id, 201);
    }
done:
    s_body_free (&body);
}

//  ---------------------------------------------------------------------
//  GET /events/{id}

static void
s_get (tl_call_t *call)
{
    const char *id = tl_call_param (call, "id");
    event_ref_t event;
    if (event_can (call, id, EV_SVC_EVENT, EV_OP_READ, false, &event))
        s_reply_event (call, id, 200);
}

//  ---------------------------------------------------------------------
//  PATCH /events/{id}

typedef struct {
    tl_call_t *call;
    s_body_t *body;
    int decision;               //  event_can_db's refusal, or 0
    bool bad_times;
    int64_t starts_ms, ends_ms; //  the times the event would have
    long sessions_outside;      //  what those times would leave outside
    long tickets_after;
} s_update_t;

static int
s_update_tx (tl_db_t *db, void *arg)
{
    s_update_t *update = (s_update_t *) arg;
    tl_call_t *call = update->call;
    s_body_t *body = update->body;
    const char *id = tl_call_param (call, "id");
    event_ref_t event;
    int rc = event_can_db (db, call, id, EV_SVC_EVENT, EV_OP_UPDATE, true, &event);
    update->decision = rc > 0 ? rc : 0;
    if (rc)
        return rc < 0 ? rc : 0;
    update->starts_ms = body->starts_at ? body->starts_ms : event.starts_ms;
    update->ends_ms = body->ends_at ? body->ends_ms : event.ends_ms;
    update->bad_times = update->starts_ms >= update->ends_ms
                     || update->ends_ms - update->starts_ms
                        > (int64_t) EV_MAX_DURATION_DAYS * 86400000;
    if (update->bad_times)
        return 0;
    if (body->starts_at || body->ends_at) {
        //  Under the event's row lock, which session and ticket changes
        //  take too: nothing moves in or out between this and the update
        char starts [24], ends [24];
        snprintf (starts, sizeof starts, "%" PRId64, update->starts_ms);
        snprintf (ends, sizeof ends, "%" PRId64, update->ends_ms);
        const char *times [] = { id, starts, ends };
        PGresult *res = tl_db_exec (db, "events_outside", 3, times, &rc);
        if (!res)
            return rc;
        update->sessions_outside = atol (tl_db_value (res, 0, 0));
        update->tickets_after = atol (tl_db_value (res, 0, 1));
        PQclear (res);
        if (update->sessions_outside || update->tickets_after)
            return 0;
    }
    const char *values [8] = { id };
    s_params (body, values + 1);
    long count = tl_db_exec_count (db, "events_update", 8, values);
    return count < 0 ? (int) count : 0;
}

static void
s_update (tl_call_t *call)
{
    s_body_t body = { 0 };
    if (!s_body_read (call, &body))
        goto done;
    s_update_t update = { call, &body, 0, false, 0, 0, 0, 0 };
    int err = tl_db_tx (tl_call_db (call), s_update_tx, &update);
    if (err)
        tl_call_db_error (call, err);
    else
    if (update.decision)
        event_refuse (call, update.decision);
    else
    if (update.bad_times)
        s_times_ok (call, update.starts_ms, update.ends_ms);    //  answers the 422
    else
    if (update.sessions_outside || update.tickets_after) {
        char why [120];
        if (update.sessions_outside)
            snprintf (why, sizeof why, "%ld session(s) would fall outside the event's new "
                      "times: move them first", update.sessions_outside);
        else
            snprintf (why, sizeof why, "%ld ticket(s) would be on sale after the event "
                      "ends: end their sales first", update.tickets_after);
        tl_call_field_error (call, 422, update.sessions_outside ? "sessions_outside"
                                                                 : "sales_after_end",
                             update.sessions_outside && body.starts_at ? "starts_at"
                                                                       : "ends_at", why);
    }
    else
        s_reply_event (call, tl_call_param (call, "id"), 200);
done:
    s_body_free (&body);
}

//  ---------------------------------------------------------------------
//  DELETE /events/{id}

typedef struct {
    tl_call_t *call;
    int decision;               //  event_can_db's refusal, or 0
    long live_orders;           //  completed, or pending and holding
} s_delete_t;

//  An event whose tickets are sold or held stays: its orders are the
//  buyers' and the organizers' records (cancel them first). Everything
//  else goes with it.
static int
s_delete_tx (tl_db_t *db, void *arg)
{
    s_delete_t *removal = (s_delete_t *) arg;
    const char *id = tl_call_param (removal->call, "id");
    event_ref_t event;
    int rc = event_can_db (db, removal->call, id, EV_SVC_EVENT, EV_OP_DELETE, true, &event);
    removal->decision = rc > 0 ? rc : 0;
    if (rc)
        return rc < 0 ? rc : 0;
    PGresult *res = tl_db_exec (db, "events_lock_tickets", 1, &id, &rc);
    PQclear (res);
    if (rc)
        return rc;
    res = tl_db_exec (db, "events_live_orders", 1, &id, &rc);
    if (!res)
        return rc;
    removal->live_orders = atol (tl_db_value (res, 0, 0));
    PQclear (res);
    if (removal->live_orders)
        return 0;
    //  What it shows of the upload service goes by a job that runs once the
    //  event is gone (event_uploads.c): committed with the deletion or not at all
    rc = event_uploads_forget_event (db, id);
    if (rc)
        return rc;
    long count = tl_db_exec_count (db, "events_delete", 1, &id);
    return count < 0 ? (int) count : 0;
}

static void
s_delete (tl_call_t *call)
{
    s_delete_t removal = { call, 0, 0 };
    int err = tl_db_tx (tl_call_db (call), s_delete_tx, &removal);
    if (err)
        tl_call_db_error (call, err);
    else
    if (removal.decision)
        event_refuse (call, removal.decision);
    else
    if (removal.live_orders)
        tl_call_error (call, 409, "has_orders", "%ld order(s) of this event are completed or "
                       "holding tickets: cancel them before deleting the event",
                       removal.live_orders);
    else
        tl_call_reply_empty (call, 204);
}

int
event_events_register (tl_service_t *svc)
{
    int rc = tl_service_on (svc, "events.list", s_list);
    rc = rc ? rc : tl_service_on (svc, "events.create", s_create);
    rc = rc ? rc : tl_service_on (svc, "events.get", s_get);
    rc = rc ? rc : tl_service_on (svc, "events.update", s_update);
    rc = rc ? rc : tl_service_on (svc, "events.delete", s_delete);
    rc = rc ? rc : tl_service_on (svc, "admin.events.list", s_admin_list);
    return rc;
}
