//  event_tickets.c — an event's tickets: list (hidden ones to its roles
//  only), create, read, update and delete under the caller's permissions on
//  `tickets`, by Open Event's rules (ev_ticket.c). Every ticket shows
//  `available`: quantity − sold − the live holds of pending orders.
#include "event_service.h"
#include "ev_money.h"
#include "ev_ticket.h"
#include "tl_error.h"
#include "tl_mp.h"
#include "tl_time.h"
#include "tl_valid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

//  A ticket as the API shows it; the live holds are counted in the same
//  statement (EVENT_LIVE_HOLDS)
#define S_COLUMNS \
    "t.id, t.event_id, t.name, t.description, t.type, t.price, t.min_price, t.max_price, " \
    "t.currency, t.quantity, t.sold, " EVENT_LIVE_HOLDS " AS held, " \
    "rfc3339 (t.sales_starts_at), rfc3339 (t.sales_ends_at), t.min_order, t.max_order, " \
    "t.hidden, rfc3339 (t.created_at), rfc3339 (t.updated_at), " \
    "(extract (epoch FROM t.sales_starts_at) * 1000)::bigint, " \
    "(extract (epoch FROM t.sales_ends_at) * 1000)::bigint"
enum { S_COL_ID, S_COL_EVENT, S_COL_NAME, S_COL_DESCRIPTION, S_COL_TYPE, S_COL_PRICE,
       S_COL_MIN_PRICE, S_COL_MAX_PRICE, S_COL_CURRENCY, S_COL_QUANTITY, S_COL_SOLD,
       S_COL_HELD, S_COL_SALES_STARTS, S_COL_SALES_ENDS, S_COL_MIN_ORDER, S_COL_MAX_ORDER,
       S_COL_HIDDEN, S_COL_CREATED, S_COL_UPDATED, S_COL_STARTS_MS, S_COL_ENDS_MS };

static const tl_db_statement_t s_statements [] = {
    { "tickets_list",
      "SELECT " S_COLUMNS " FROM tickets t WHERE t.event_id = $1 AND (NOT t.hidden OR $2) "
      "ORDER BY t.created_at, t.id", 2 },
    { "tickets_one",
      "SELECT " S_COLUMNS " FROM tickets t WHERE t.id = $1 AND t.event_id = $2", 2 },
    //  The row lock alone: what is sold and held is read by a statement
    //  after it (tickets_one), which sees every order committed before
    //  the lock was granted (a locking SELECT's own subqueries would not)
    { "tickets_lock",
      "SELECT id FROM tickets WHERE id = $1 AND event_id = $2 FOR UPDATE", 2 },
    { "tickets_count", "SELECT count (*) FROM tickets WHERE event_id = $1", 1 },
    //  $1 event, $2 name, $3 description, $4 type, $5 price, $6 min, $7 max,
    //  $8 currency, $9 quantity, $10 sales start, $11 sales end (ms),
    //  $12 min_order, $13 max_order, $14 hidden
    { "tickets_insert",
      "INSERT INTO tickets (event_id, name, description, type, price, min_price, max_price, "
      "  currency, quantity, sales_starts_at, sales_ends_at, min_order, max_order, hidden) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, to_timestamp ($10::float8 / 1000), "
      "  to_timestamp ($11::float8 / 1000), $12, $13, $14) RETURNING id", 14 },
    { "tickets_update",
      "UPDATE tickets SET name = $2, description = $3, type = $4, price = $5, "
      "  min_price = $6, max_price = $7, currency = $8, quantity = $9, "
      "  sales_starts_at = to_timestamp ($10::float8 / 1000), "
      "  sales_ends_at = to_timestamp ($11::float8 / 1000), min_order = $12, "
      "  max_order = $13, hidden = $14, updated_at = now () WHERE id = $1", 14 },
    { "tickets_ordered", "SELECT EXISTS (SELECT 1 FROM order_items WHERE ticket_id = $1)", 1 },
    { "tickets_delete", "DELETE FROM tickets WHERE id = $1", 1 },
};

int
event_tickets_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

bool
event_sees_hidden (const event_ref_t *event)
{
    return event->access.staff || (event->role != EV_ROLE_NONE && event->access.perm [EV_OP_READ]);
}

static int64_t
s_int (const PGresult *res, int row, int col)
{
    const char *value = tl_db_value (res, row, col);
    return value ? atoll (value) : 0;
}

//  Fills *ticket from row `row` of S_COLUMNS. Returns 0 or TL_EINVAL.
static int
s_ticket_from_row (const PGresult *res, int row, ev_ticket_t *ticket)
{
    memset (ticket, 0, sizeof *ticket);
    if (ev_ticket_type_parse (tl_db_value (res, row, S_COL_TYPE), &ticket->type) != 0)
        return TL_EINVAL;
    ticket->price = s_int (res, row, S_COL_PRICE);
    ticket->min_price = s_int (res, row, S_COL_MIN_PRICE);
    ticket->max_price = s_int (res, row, S_COL_MAX_PRICE);
    const char *currency = tl_db_value (res, row, S_COL_CURRENCY);
    snprintf (ticket->currency, sizeof ticket->currency, "%s", currency ? currency : "");
    ticket->quantity = s_int (res, row, S_COL_QUANTITY);
    ticket->min_order = s_int (res, row, S_COL_MIN_ORDER);
    ticket->max_order = s_int (res, row, S_COL_MAX_ORDER);
    ticket->sales_starts_ms = s_int (res, row, S_COL_STARTS_MS);
    ticket->sales_ends_ms = s_int (res, row, S_COL_ENDS_MS);
    return 0;
}

static void
s_pack_ticket (msgpack_packer *pk, const PGresult *res, int row)
{
    msgpack_pack_map (pk, 20);
    static const struct { const char *key; int col; bool number; } fields [] = {
        { "id", S_COL_ID, false }, { "event_id", S_COL_EVENT, false },
        { "name", S_COL_NAME, false }, { "description", S_COL_DESCRIPTION, false },
        { "type", S_COL_TYPE, false }, { "price", S_COL_PRICE, true },
        { "min_price", S_COL_MIN_PRICE, true }, { "max_price", S_COL_MAX_PRICE, true },
        { "currency", S_COL_CURRENCY, false }, { "quantity", S_COL_QUANTITY, true },
        { "sold", S_COL_SOLD, true }, { "held", S_COL_HELD, true },
        { "sales_starts_at", S_COL_SALES_STARTS, false },
        { "sales_ends_at", S_COL_SALES_ENDS, false },
        { "min_order", S_COL_MIN_ORDER, true }, { "max_order", S_COL_MAX_ORDER, true },
        { "created_at", S_COL_CREATED, false }, { "updated_at", S_COL_UPDATED, false },
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields [0]; i++) {
        if (fields [i].number) {
            tl_mp_pack_str (pk, fields [i].key);
            msgpack_pack_int64 (pk, s_int (res, row, fields [i].col));
        }
        else
            tl_mp_pack_kv (pk, fields [i].key, tl_db_value (res, row, fields [i].col));
    }
    tl_mp_pack_str (pk, "hidden");
    const char *hidden = tl_db_value (res, row, S_COL_HIDDEN);
    if (hidden && hidden [0] == 't')
        msgpack_pack_true (pk);
    else
        msgpack_pack_false (pk);
    tl_mp_pack_str (pk, "available");
    int64_t available = s_int (res, row, S_COL_QUANTITY) - s_int (res, row, S_COL_SOLD)
                      - s_int (res, row, S_COL_HELD);
    msgpack_pack_int64 (pk, available > 0 ? available : 0);
}

//  Answers `status` with ticket `id` of event `event_id`, or 404.
static void
s_reply_ticket (tl_call_t *call, const char *event_id, const char *id, bool hidden_ok,
                int status)
{
    const char *values [] = { id, event_id };
    int err = 0;
    PGresult *res = tl_db_exec (tl_call_db (call), "tickets_one", 2, values, &err);
    if (!res)
        tl_call_db_error (call, err);
    else
    if (PQntuples (res) != 1
    ||  (!hidden_ok && tl_db_value (res, 0, S_COL_HIDDEN) [0] == 't'))
        tl_call_error (call, 404, "not_found", "no such ticket");
    else
        s_pack_ticket (tl_call_reply (call, status), res, 0);
    PQclear (res);
}

//  ---------------------------------------------------------------------
//  GET /events/{id}/tickets

static void
s_list (tl_call_t *call)
{
    const char *id = tl_call_param (call, "id");
    event_ref_t event;
    if (!event_can (call, id, EV_SVC_TICKETS, EV_OP_READ, false, &event))
        return;
    const char *values [] = { id, event_sees_hidden (&event) ? "t" : "f" };
    int err = 0;
    PGresult *res = tl_db_exec (tl_call_db (call), "tickets_list", 2, values, &err);
    if (!res) {
        tl_call_db_error (call, err);
        return;
    }
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_map (pk, 2);
    tl_mp_pack_str (pk, "items");
    int rows = PQntuples (res);
    msgpack_pack_array (pk, (uint32_t) rows);
    for (int row = 0; row < rows; row++)
        s_pack_ticket (pk, res, row);
    tl_mp_pack_str (pk, "next_cursor");
    msgpack_pack_nil (pk);
    PQclear (res);
}

//  ---------------------------------------------------------------------
//  The body of POST and PATCH, applied onto a ticket

typedef struct {
    char *name, *description, *type, *currency, *sales_starts_at, *sales_ends_at;
    bool currency_given;
    const msgpack_object *hidden;
} s_body_t;

static void
s_body_free (s_body_t *body)
{
    free (body->name);
    free (body->description);
    free (body->type);
    free (body->currency);
    free (body->sales_starts_at);
    free (body->sales_ends_at);
}

//  Reads integer field `name` into *value when it is there. Answers 400
//  and returns false when it is not an integer.
static bool
s_body_int (tl_call_t *call, const char *name, int64_t *value)
{
    const msgpack_object *obj = tl_mp_get (tl_call_body (call), name);
    if (!obj || obj->type == MSGPACK_OBJECT_NIL)
        return true;
    if (tl_mp_int (obj, value) != 0 || *value < -EV_MONEY_MAX || *value > EV_MONEY_MAX) {
        tl_call_field_error (call, 400, "invalid", name, "must be an integer");
        return false;
    }
    return true;
}

static bool
s_body_time (tl_call_t *call, const char *name, const char *text, int64_t *ms)
{
    if (text && tl_time_parse (text, ms) != 0) {
        tl_call_field_error (call, 400, "invalid", name, "must be an RFC 3339 time");
        return false;
    }
    return true;
}

//  Reads the body and applies it onto *ticket and *hidden (what is not
//  given stays). Returns false once it has answered 400.
static bool
s_body_apply (tl_call_t *call, s_body_t *body, ev_ticket_t *ticket, bool *hidden)
{
    const msgpack_object *map = tl_call_body_map (call);
    if (!map)
        return false;
    if (!tl_call_text (call, NULL, "name", NULL, EV_TICKET_NAME_MAX * 4, &body->name, NULL)
    ||  !tl_call_text (call, NULL, "description", NULL, EV_TICKET_DESCRIPTION_MAX * 4,
                       &body->description, NULL)
    ||  !tl_call_text (call, NULL, "type", NULL, 16, &body->type, NULL)
    ||  !tl_call_text (call, NULL, "currency", NULL, 8, &body->currency, &body->currency_given)
    ||  !tl_call_text (call, NULL, "sales_starts_at", NULL, 64, &body->sales_starts_at, NULL)
    ||  !tl_call_text (call, NULL, "sales_ends_at", NULL, 64, &body->sales_ends_at, NULL))
        return false;
    if (body->name && !event_text_ok (body->name, 1, EV_TICKET_NAME_MAX, false)) {
        tl_call_field_error (call, 400, "invalid", "name", "must be 1 to 200 characters");
        return false;
    }
    if (body->description
    &&  !event_text_ok (body->description, 0, EV_TICKET_DESCRIPTION_MAX, true)) {
        tl_call_field_error (call, 400, "invalid", "description",
                             "must be at most 2000 characters");
        return false;
    }
    if (body->type && ev_ticket_type_parse (body->type, &ticket->type) != 0) {
        tl_call_field_error (call, 400, "invalid", "type", "must be free, paid or donation");
        return false;
    }
    if (body->currency && ev_money_minor_units (body->currency) < 0) {
        tl_call_field_error (call, 400, "invalid", "currency",
                             "must be an ISO 4217 currency such as EUR");
        return false;
    }
    if (body->currency_given)
        snprintf (ticket->currency, sizeof ticket->currency, "%s",
                  body->currency ? body->currency : "");
    body->hidden = tl_mp_get (map, "hidden");
    if (body->hidden && body->hidden->type != MSGPACK_OBJECT_NIL) {
        if (body->hidden->type != MSGPACK_OBJECT_BOOLEAN) {
            tl_call_field_error (call, 400, "invalid", "hidden", "must be true or false");
            return false;
        }
        *hidden = body->hidden->via.boolean;
    }
    return s_body_int (call, "price", &ticket->price)
        && s_body_int (call, "min_price", &ticket->min_price)
        && s_body_int (call, "max_price", &ticket->max_price)
        && s_body_int (call, "quantity", &ticket->quantity)
        && s_body_int (call, "min_order", &ticket->min_order)
        && s_body_int (call, "max_order", &ticket->max_order)
        && s_body_time (call, "sales_starts_at", body->sales_starts_at, &ticket->sales_starts_ms)
        && s_body_time (call, "sales_ends_at", body->sales_ends_at, &ticket->sales_ends_ms);
}

//  The parameters $2..$14 of tickets_insert / tickets_update, in `text`.
typedef struct {
    char price [24], min_price [24], max_price [24], quantity [24], starts [24], ends [24],
         min_order [24], max_order [24];
} s_params_t;

static void
s_params (const ev_ticket_t *t, const char *name, const char *description, bool hidden,
          s_params_t *text, const char *values [13])
{
    snprintf (text->price, 24, "%lld", (long long) t->price);
    snprintf (text->min_price, 24, "%lld", (long long) t->min_price);
    snprintf (text->max_price, 24, "%lld", (long long) t->max_price);
    snprintf (text->quantity, 24, "%lld", (long long) t->quantity);
    snprintf (text->starts, 24, "%lld", (long long) t->sales_starts_ms);
    snprintf (text->ends, 24, "%lld", (long long) t->sales_ends_ms);
    snprintf (text->min_order, 24, "%lld", (long long) t->min_order);
    snprintf (text->max_order, 24, "%lld", (long long) t->max_order);
    const char *v [13] = {
        name, description, ev_ticket_type_name (t->type), text->price, text->min_price,
        text->max_price, t->currency [0] ? t->currency : NULL, text->quantity, text->starts,
        text->ends, text->min_order, text->max_order, hidden ? "t" : "f"
    };
    memcpy (values, v, sizeof v);
}

//  ---------------------------------------------------------------------
//  POST /events/{id}/tickets

typedef struct {
    tl_call_t *call;
    const ev_ticket_t *ticket;
    s_body_t *body;
    bool hidden;
    int decision;
    bool full, exists;
    char id [37];
} s_create_t;

static int
s_create_tx (tl_db_t *db, void *arg)
{
    s_create_t *create = (s_create_t *) arg;
    tl_call_t *call = create->call;
    const char *event_id = tl_call_param (call, "id");
    event_ref_t event;
    //  The event's row lock: ticket creates of one event take turns
    int rc = event_can_db (db, call, event_id, EV_SVC_TICKETS, EV_OP_CREATE, true, &event);
    create->decision = rc > 0 ? rc : 0;
    if (rc)
        return rc < 0 ? rc : 0;
    PGresult *res = tl_db_exec (db, "tickets_count", 1, &event_id, &rc);
    create->full = res && atol (tl_db_value (res, 0, 0)) >= EV_MAX_TICKETS_PER_EVENT;
    PQclear (res);
    if (rc || create->full)
        return rc;
    s_params_t text;
    const char *values [14] = { event_id };
    s_params (create->ticket, create->body->name,
              create->body->description ? create->body->description : "", create->hidden,
              &text, values + 1);
    //  A name taken is TL_EEXIST: the transaction is in error, rolled back
    res = tl_db_exec (db, "tickets_insert", 14, values, &rc);
    if (!res)
        return rc;
    snprintf (create->id, sizeof create->id, "%s", tl_db_value (res, 0, 0));
    PQclear (res);
    return 0;
}

//  The event's end, for a new ticket's default sales window. Answers
//  404/403/503 and returns false.
static bool
s_event_ends (tl_call_t *call, const char *event_id, int64_t *ends_ms)
{
    event_ref_t event;
    if (!event_can (call, event_id, EV_SVC_TICKETS, EV_OP_CREATE, false, &event))
        return false;
    *ends_ms = event.ends_ms;
    return true;
}

static void
s_create (tl_call_t *call)
{
    const char *event_id = tl_call_param (call, "id");
    int64_t event_ends_ms;
    if (!s_event_ends (call, event_id, &event_ends_ms))
        return;
    s_body_t body = { 0 };
    ev_ticket_t ticket = { .min_order = 1, .quantity = 0, .max_order = -1,
                           .sales_starts_ms = (int64_t) time (NULL) * 1000,
                           .sales_ends_ms = event_ends_ms };
    bool hidden = false;
    if (!s_body_apply (call, &body, &ticket, &hidden))
        goto done;
    const char *missing = !body.name ? "name" : !body.type ? "type"
                        : !tl_mp_get (tl_call_body (call), "quantity") ? "quantity" : NULL;
    if (missing) {
        tl_call_field_error (call, 400, "invalid", missing, "is required");
        goto done;
    }
    if (ticket.max_order < 0)
        ticket.max_order = ticket.quantity < 10 ? ticket.quantity : 10;
    const char *field, *why;
    if (ev_ticket_check (&ticket, event_ends_ms, &field, &why) != 0) {
        tl_call_field_error (call, 422, "invalid_ticket", field, why);
        goto done;
    }
    s_create_t create = { call, &ticket, &body, hidden, 0, false, false, "" };
    int err = tl_db_tx (tl_call_db (call), s_create_tx, &create);
    create.exists = err == TL_EEXIST;
    if (err && !create.exists)
        tl_call_db_error (call, err);
    else
    if (create.decision)
        event_refuse (call, create.decision);
    else
    if (create.full)
        tl_call_error (call, 422, "too_many_tickets", "an event has at most %d tickets",
                       EV_MAX_TICKETS_PER_EVENT);
    else
    if (create.exists)
        tl_call_field_error (call, 409, "ticket_exists", "name",
                             "the event has a ticket of that name");
    else
        s_reply_ticket (call, event_id, create.id, true, 201);
done:
    s_body_free (&body);
}

//  ---------------------------------------------------------------------
//  GET /events/{id}/tickets/{ticket_id}

static void
s_get (tl_call_t *call)
{
    const char *event_id = tl_call_param (call, "id");
    const char *id = tl_call_param (call, "ticket_id");
    event_ref_t event;
    if (!event_can (call, event_id, EV_SVC_TICKETS, EV_OP_READ, false, &event))
        return;
    if (!tl_valid_uuid (id))
        tl_call_error (call, 404, "not_found", "no such ticket");
    else
        s_reply_ticket (call, event_id, id, event_sees_hidden (&event), 200);
}

//  ---------------------------------------------------------------------
//  PATCH /events/{id}/tickets/{ticket_id}

typedef struct {
    tl_call_t *call;
    s_body_t *body;
    int decision;
    int status;                         //  an answer instead of the ticket
    const char *code, *field, *why;
} s_update_t;

static int
s_update_tx (tl_db_t *db, void *arg)
{
    s_update_t *update = (s_update_t *) arg;
    tl_call_t *call = update->call;
    update->status = 0;
    s_body_free (update->body);         //  a retried transaction starts over
    memset (update->body, 0, sizeof *update->body);
    const char *event_id = tl_call_param (call, "id");
    const char *id = tl_call_param (call, "ticket_id");
    event_ref_t event;
    //  Under the event's row lock, as a change of the event's times takes
    //  it: the sales window is checked against the times that stay
    int rc = event_can_db (db, call, event_id, EV_SVC_TICKETS, EV_OP_UPDATE, true, &event);
    update->decision = rc > 0 ? rc : 0;
    if (rc)
        return rc < 0 ? rc : 0;
    //  The ticket's row lock: orders of it wait, so that sold and held stay
    const char *values [] = { id, event_id };
    PGresult *res = tl_db_exec (db, "tickets_lock", 2, values, &rc);
    PQclear (res);
    res = rc ? NULL : tl_db_exec (db, "tickets_one", 2, values, &rc);
    if (!res)
        return rc;
    ev_ticket_t ticket;
    if (PQntuples (res) != 1 || s_ticket_from_row (res, 0, &ticket) != 0) {
        PQclear (res);
        update->status = 404;
        return 0;
    }
    int64_t taken = s_int (res, 0, S_COL_SOLD) + s_int (res, 0, S_COL_HELD);
    bool hidden = tl_db_value (res, 0, S_COL_HIDDEN) [0] == 't';
    char name [EV_TICKET_NAME_MAX * 4 + 1], description [EV_TICKET_DESCRIPTION_MAX * 4 + 1];
    snprintf (name, sizeof name, "%s", tl_db_value (res, 0, S_COL_NAME));
    snprintf (description, sizeof description, "%s", tl_db_value (res, 0, S_COL_DESCRIPTION));
    PQclear (res);
    if (!s_body_apply (call, update->body, &ticket, &hidden)) {
        update->status = 400;           //  answered
        return 0;
    }
    if (ev_ticket_check (&ticket, event.ends_ms, &update->field, &update->why) != 0) {
        update->status = 422, update->code = "invalid_ticket";
        return 0;
    }
    if (ticket.quantity < taken) {
        update->status = 409, update->code = "below_sold", update->field = "quantity";
        update->why = "cannot go below what is sold and held";
        return 0;
    }
    s_params_t text;
    const char *params [14] = { id };
    s_params (&ticket, update->body->name ? update->body->name : name,
              update->body->description ? update->body->description : description, hidden,
              &text, params + 1);
    //  A name taken is TL_EEXIST: the transaction is in error, rolled back
    res = tl_db_exec (db, "tickets_update", 14, params, &rc);
    PQclear (res);
    return rc;
}

static void
s_update (tl_call_t *call)
{
    const char *event_id = tl_call_param (call, "id");
    const char *id = tl_call_param (call, "ticket_id");
    if (!tl_valid_uuid (event_id) || !tl_valid_uuid (id)) {
        tl_call_error (call, 404, "not_found", "no such ticket");
        return;
    }
    s_body_t body = { 0 };
    s_update_t update = { call, &body, 0, 0, NULL, NULL, NULL };
    int err = tl_db_tx (tl_call_db (call), s_update_tx, &update);
    if (err == TL_EEXIST)
        tl_call_field_error (call, 409, "ticket_exists", "name",
                             "the event has a ticket of that name");
    else
    if (err)
        tl_call_db_error (call, err);
    else
    if (update.decision)
        event_refuse (call, update.decision);
    else
    if (update.status == 404)
        tl_call_error (call, 404, "not_found", "no such ticket");
    else
    if (update.status == 400)
        ;                               //  answered by s_body_apply
    else
    if (update.status)
        tl_call_field_error (call, update.status, update.code, update.field, update.why);
    else
        s_reply_ticket (call, event_id, id, true, 200);
    s_body_free (&body);
}

//  ---------------------------------------------------------------------
//  DELETE /events/{id}/tickets/{ticket_id}: only a ticket never ordered

typedef struct {
    tl_call_t *call;
    int decision;
    int status;
} s_delete_t;

static int
s_delete_tx (tl_db_t *db, void *arg)
{
    s_delete_t *del = (s_delete_t *) arg;
    del->status = 0;
    const char *event_id = tl_call_param (del->call, "id");
    const char *id = tl_call_param (del->call, "ticket_id");
    event_ref_t event;
    int rc = event_can_db (db, del->call, event_id, EV_SVC_TICKETS, EV_OP_DELETE, false, &event);
    del->decision = rc > 0 ? rc : 0;
    if (rc)
        return rc < 0 ? rc : 0;
    const char *values [] = { id, event_id };
    PGresult *res = tl_db_exec (db, "tickets_lock", 2, values, &rc);
    bool found = res && PQntuples (res) == 1;
    PQclear (res);
    if (rc || !found) {
        del->status = found ? 0 : 404;
        return rc;
    }
    res = tl_db_exec (db, "tickets_ordered", 1, &id, &rc);
    bool ordered = res && tl_db_value (res, 0, 0) [0] == 't';
    PQclear (res);
    if (rc || ordered) {
        del->status = ordered ? 409 : 0;
        return rc;
    }
    long count = tl_db_exec_count (db, "tickets_delete", 1, &id);
    return count < 0 ? (int) count : 0;
}

static void
s_delete (tl_call_t *call)
{
    if (!tl_valid_uuid (tl_call_param (call, "id"))
    ||  !tl_valid_uuid (tl_call_param (call, "ticket_id"))) {
        tl_call_error (call, 404, "not_found", "no such ticket");
        return;
    }
    s_delete_t del = { call, 0, 0 };
    int err = tl_db_tx (tl_call_db (call), s_delete_tx, &del);
    if (err)
        tl_call_db_error (call, err);
    else
    if (del.decision)
        event_refuse (call, del.decision);
    else
    if (del.status == 404)
        tl_call_error (call, 404, "not_found", "no such ticket");
    else
    if (del.status == 409)
        tl_call_error (call, 409, "ticket_ordered",
                       "a ticket that was ordered stays: hide it or end its sales instead");
    else
        tl_call_reply_empty (call, 204);
}

int
event_tickets_register (tl_service_t *svc)
{
    int rc = tl_service_on (svc, "tickets.list", s_list);
    rc = rc ? rc : tl_service_on (svc, "tickets.create", s_create);
    rc = rc ? rc : tl_service_on (svc, "tickets.get", s_get);
    rc = rc ? rc : tl_service_on (svc, "tickets.update", s_update);
    rc = rc ? rc : tl_service_on (svc, "tickets.delete", s_delete);
    return rc;
}
