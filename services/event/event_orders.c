//  event_orders.c — orders: all items or none; free orders completed at
//  once, priced ones pending with a 15-minute hold, paid (`pay`), cancelled
//  (tickets back at once) or expired by the job event.expire_order. Never
//  oversells: an order locks its tickets' rows in id order and counts sold
//  plus live holds under those locks (README.md "Never oversell").
#include "event_service.h"
#include "ev_money.h"
#include "ev_ticket.h"
#include "tl_env.h"
#include "tl_error.h"
#include "tl_jobs.h"
#include "tl_json.h"
#include "tl_log.h"
#include "tl_mp.h"
#include "tl_valid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

//  TALLY_PAYMENTS=manual: buyers may pay their own orders (read once)
static bool s_manual_payments;

//  Links in mails: <TALLY_PUBLIC_URL>/events/<id>/orders/<id>, read once
static char s_public_url [TL_MAX_URL_LEN + 1];

#define S_CALL_TIMEOUT_MS 10000

//  An order as the API shows it, then the list cursor
#define S_ORDER_COLUMNS \
    "o.id, o.event_id, CASE WHEN o.status = 'pending' AND o.expires_at <= clock_timestamp () " \
    "  THEN 'expired' ELSE o.status END, o.total, o.currency, rfc3339 (o.expires_at), " \
    "rfc3339 (o.created_at), o.payment_reference, o.buyer, " \
    "(SELECT coalesce (json_agg (json_build_object ('ticket_id', i.ticket_id, " \
    "   'quantity', i.quantity, 'price', i.price) ORDER BY i.ticket_id), '[]') " \
    " FROM order_items i WHERE i.order_id = o.id)::text, " \
    "to_char (o.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
enum { S_COL_ID, S_COL_EVENT, S_COL_STATUS, S_COL_TOTAL, S_COL_CURRENCY, S_COL_EXPIRES,
       S_COL_CREATED, S_COL_REFERENCE, S_COL_BUYER, S_COL_ITEMS, S_COL_CURSOR };

static const tl_db_statement_t s_statements [] = {
    //  The order's tickets, locked in id order (one order at a time per
    //  ticket; orders of other tickets go on)
    { "orders_lock_tickets",
      "SELECT id FROM tickets WHERE event_id = $1 AND id = ANY ($2::uuid[]) "
      "ORDER BY id FOR UPDATE", 2 },
    //  ... then read under those locks: rules, sold, live holds, the window
    { "orders_tickets",
      "SELECT t.id, t.type, t.price, t.min_price, t.max_price, coalesce (t.currency, ''), "
      "  t.quantity, t.min_order, t.max_order, "
      "  (extract (epoch FROM t.sales_starts_at) * 1000)::bigint, "
      "  (extract (epoch FROM t.sales_ends_at) * 1000)::bigint, t.hidden, "
      "  t.quantity - t.sold - " EVENT_LIVE_HOLDS ", "
      "  clock_timestamp () >= t.sales_starts_at AND clock_timestamp () < t.sales_ends_at "
      "FROM tickets t WHERE t.event_id = $1 AND t.id = ANY ($2::uuid[])", 2 },
    //  $1 event, $2 buyer, $3 status, $4 total, $5 currency
    { "orders_insert",
      "INSERT INTO orders (event_id, buyer, status, total, currency, expires_at) "
      "VALUES ($1, $2, $3, $4, $5, CASE WHEN $3 = 'pending' THEN clock_timestamp () "
      "  + make_interval (mins => $6::int) END) "
      "RETURNING id, (extract (epoch FROM expires_at) * 1000)::bigint", 6 },
    { "orders_insert_item",
      "INSERT INTO order_items (order_id, ticket_id, quantity, price) VALUES ($1, $2, $3, $4)", 4 },
    { "orders_insert_hold",
      "INSERT INTO holds (order_id, ticket_id, quantity, expires_at) "
      "SELECT $1, $2, $3, expires_at FROM orders WHERE id = $1", 3 },
    { "orders_sell",
      "UPDATE tickets t SET sold = sold + i.quantity, updated_at = now () "
      "FROM order_items i WHERE i.order_id = $1 AND t.id = i.ticket_id", 1 },
    { "orders_unsell",
      "UPDATE tickets t SET sold = sold - i.quantity, updated_at = now () "
      "FROM order_items i WHERE i.order_id = $1 AND t.id = i.ticket_id", 1 },
    { "orders_release", "DELETE FROM holds WHERE order_id = $1", 1 },
    //  The confirmation mail's facts: a completed order with its buyer
    { "orders_for_mail",
      "SELECT o.buyer, o.total, o.currency, e.name, o.event_id, "
      "  (SELECT sum (quantity) FROM order_items WHERE order_id = o.id) "
      "FROM orders o JOIN events e ON e.id = o.event_id "
      "WHERE o.id = $1 AND o.status = 'completed' AND o.buyer IS NOT NULL", 1 },
    { "orders_one",
      "SELECT " S_ORDER_COLUMNS " FROM orders o WHERE o.id = $1 AND o.event_id = $2", 2 },
    //  Pay and cancel: the order, then its tickets in id order, then its
    //  state read under those locks
    { "orders_lock",
      "SELECT buyer FROM orders WHERE id = $1 AND event_id = $2 FOR UPDATE", 2 },
    { "orders_lock_own_tickets",
      "SELECT t.id FROM tickets t JOIN order_items i ON i.ticket_id = t.id "
      "WHERE i.order_id = $1 ORDER BY t.id FOR UPDATE OF t", 1 },
    { "orders_state",
      "SELECT status, status = 'pending' AND expires_at <= clock_timestamp () "
      "FROM orders WHERE id = $1", 1 },
    { "orders_complete",
      "UPDATE orders SET status = 'completed', payment_reference = $2, expires_at = NULL, "
      "  updated_at = now () WHERE id = $1", 2 },
    { "orders_set_status",
      "UPDATE orders SET status = $2, updated_at = now () WHERE id = $1", 2 },
    //  The job: expires a pending order due by the run's clock ($2, ms)
    { "orders_expire",
      "UPDATE orders SET status = 'expired', updated_at = now () WHERE id = $1 "
      "AND status = 'pending' AND expires_at <= to_timestamp ($2::float8 / 1000)", 2 },
    //  Lists: $1 event or buyer, $2/$3 the cursor, $4 the LIMIT
    { "orders_page_event",
      "SELECT " S_ORDER_COLUMNS " FROM orders o WHERE o.event_id = $1 "
      "AND ($2::timestamptz IS NULL OR (o.created_at, o.id) < ($2::timestamptz, $3::uuid)) "
      "ORDER BY o.created_at DESC, o.id DESC LIMIT $4::int", 4 },
    { "orders_page_buyer",
      "SELECT " S_ORDER_COLUMNS " FROM orders o WHERE o.buyer = $1 "
      "AND ($2::timestamptz IS NULL OR (o.created_at, o.id) < ($2::timestamptz, $3::uuid)) "
      "ORDER BY o.created_at DESC, o.id DESC LIMIT $4::int", 4 },
};

int
event_orders_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

static int64_t
s_int (const PGresult *res, int row, int col)
{
    const char *value = tl_db_value (res, row, col);
    return value ? atoll (value) : 0;
}

static void
s_pack_order (msgpack_packer *pk, const PGresult *res, int row)
{
    msgpack_pack_map (pk, 11);
    tl_mp_pack_kv (pk, "id", tl_db_value (res, row, S_COL_ID));
    tl_mp_pack_kv (pk, "event_id", tl_db_value (res, row, S_COL_EVENT));
    tl_mp_pack_kv (pk, "status", tl_db_value (res, row, S_COL_STATUS));
    tl_mp_pack_str (pk, "total");
    msgpack_pack_int64 (pk, s_int (res, row, S_COL_TOTAL));
    const char *currency = tl_db_value (res, row, S_COL_CURRENCY);
    tl_mp_pack_kv (pk, "currency", currency);
    char text [48];
    tl_mp_pack_kv (pk, "total_text",
                   ev_money_format (s_int (res, row, S_COL_TOTAL), currency, text,
                                    sizeof text) == 0 ? text : NULL);
    tl_mp_pack_kv (pk, "expires_at", tl_db_value (res, row, S_COL_EXPIRES));
    tl_mp_pack_kv (pk, "created_at", tl_db_value (res, row, S_COL_CREATED));
    tl_mp_pack_kv (pk, "payment_reference", tl_db_value (res, row, S_COL_REFERENCE));
    tl_mp_pack_kv (pk, "buyer_id", tl_db_value (res, row, S_COL_BUYER));
    tl_mp_pack_str (pk, "items");
    const char *items = tl_db_value (res, row, S_COL_ITEMS);
    if (!items || tl_json_to_mp (items, strlen (items), pk, NULL, 0) != 0)
        msgpack_pack_array (pk, 0);
}

static void
s_reply_order (tl_call_t *call, const char *event_id, const char *id, int status)
{
    const char *values [] = { id, event_id };
    PGresult *res = tl_call_exec_one (call, "orders_one", 2, values, "order");
    if (res)
        s_pack_order (tl_call_reply (call, status), res, 0);
    PQclear (res);
}

//  Enqueues the confirmation mail of order `id`, completed in the caller's
//  transaction (it goes only if that commits; an order completes once, so
//  the job needs no unique key, and done it is purged like any other).
//  Returns 0 or a code.
static int
s_confirm (tl_db_t *db, const char *id)
{
    msgpack_sbuffer payload;
    msgpack_sbuffer_init (&payload);
    tl_mp_pack_pairs (&payload, (const char *[]) { "order_id", id }, 1);
    int rc = tl_jobs_enqueue (db, "event.mail_order", payload.data, payload.size, NULL, 0, 0);
    msgpack_sbuffer_destroy (&payload);
    return rc < 0 ? rc : event_notify_order_completed (db, id);
}

//  ---------------------------------------------------------------------
//  POST /events/{id}/orders {items: [{ticket_id, quantity, price?}]}

typedef struct {
    char ticket_id [37];
    int64_t quantity;
    bool price_given;
    int64_t price;
    int64_t unit_price;                 //  decided under the locks
} s_item_t;

typedef struct {
    tl_call_t *call;
    s_item_t items [EV_MAX_ORDER_ITEMS];
    size_t count;
    char ids [EV_MAX_ORDER_ITEMS * 38 + 3];     //  the uuid[] literal
    //  The answer
    int decision;
    int status;
    const char *code, *why;
    char order_id [37];
} s_order_t;

//  Reads the items. Answers 400 and returns false when they are not 1 to
//  EV_MAX_ORDER_ITEMS of {ticket_id, quantity >= 1, price?} with distinct
//  tickets.
static bool
s_items_read (tl_call_t *call, s_order_t *order)
{
    const msgpack_object *items = tl_mp_get (tl_call_body (call), "items");
    if (!items || items->type != MSGPACK_OBJECT_ARRAY || items->via.array.size == 0
    ||  items->via.array.size > EV_MAX_ORDER_ITEMS) {
        tl_call_field_error (call, 400, "invalid", "items", "must be 1 to 20 items");
        return false;
    }
    order->count = items->via.array.size;
    char *ids = order->ids;
    *ids++ = '{';
    for (size_t i = 0; i < order->count; i++) {
        const msgpack_object *item = &items->via.array.ptr [i];
        s_item_t *it = &order->items [i];
        if (!tl_mp_copy (tl_mp_get (item, "ticket_id"), it->ticket_id, sizeof it->ticket_id)
        ||  !tl_valid_uuid (it->ticket_id)) {
            tl_call_field_error (call, 400, "invalid", "items", "each item needs a ticket_id");
            return false;
        }
        if (tl_mp_int (tl_mp_get (item, "quantity"), &it->quantity) != 0 || it->quantity < 1
        ||  it->quantity > EV_MAX_TICKET_QUANTITY) {
            tl_call_field_error (call, 400, "invalid", "items",
                                 "each item needs a quantity of at least 1");
            return false;
        }
        const msgpack_object *price = tl_mp_get (item, "price");
        it->price_given = price && price->type != MSGPACK_OBJECT_NIL;
        if (it->price_given && (tl_mp_int (price, &it->price) != 0 || it->price < 0
                                || it->price > EV_MONEY_MAX)) {
            tl_call_field_error (call, 400, "invalid", "items",
                                 "a price is an integer of minor units");
            return false;
        }
        for (size_t j = 0; j < i; j++)
            if (strcasecmp (order->items [j].ticket_id, it->ticket_id) == 0) {
                tl_call_field_error (call, 400, "invalid", "items",
                                     "each ticket once per order");
                return false;
            }
        ids += sprintf (ids, "%s%s", i ? "," : "", it->ticket_id);
    }
    strcpy (ids, "}");
    return true;
}

//  Refuses the order with `st` (422, 409) and returns false.
static bool
s_refuse (s_order_t *order, int st, const char *code, const char *why)
{
    order->status = st, order->code = code, order->why = why;
    return false;
}

//  Reads row `row` of orders_tickets into a ticket's rules.
static void
s_ticket_rules (const PGresult *res, int row, ev_ticket_t *ticket)
{
    memset (ticket, 0, sizeof *ticket);
    ev_ticket_type_parse (tl_db_value (res, row, 1), &ticket->type);
    ticket->price = s_int (res, row, 2);
    ticket->min_price = s_int (res, row, 3);
    ticket->max_price = s_int (res, row, 4);
    snprintf (ticket->currency, sizeof ticket->currency, "%s", tl_db_value (res, row, 5));
    ticket->quantity = s_int (res, row, 6);
    ticket->min_order = s_int (res, row, 7);
    ticket->max_order = s_int (res, row, 8);
}

//  Checks every item against its ticket (orders_tickets, read under the
//  tickets' locks): the rules first (422, 409 sales_closed), then what is
//  left (409 sold_out). Sets each item's unit price, the order's total and
//  currency. Returns true, or false with the refusal set.
static bool
s_items_check (s_order_t *order, const PGresult *res, const event_ref_t *event,
               int64_t *total, char currency [4])
{
    *total = 0;
    currency [0] = 0;
    bool sold_out = false;
    for (size_t i = 0; i < order->count; i++) {
        s_item_t *it = &order->items [i];
        int row = 0, rows = PQntuples (res);
        while (row < rows && strcasecmp (tl_db_value (res, row, 0), it->ticket_id) != 0)
            row++;
        bool hidden = row < rows && tl_db_value (res, row, 11) [0] == 't';
        if (row == rows || (hidden && !event_sees_hidden (event)))
            return s_refuse (order, 422, "unknown_ticket", "no such ticket in this event");
        ev_ticket_t ticket;
        s_ticket_rules (res, row, &ticket);
        if (tl_db_value (res, row, 13) [0] != 't')
            return s_refuse (order, 409, "sales_closed", "this ticket is not on sale now");
        const char *code, *why;
        if (ev_ticket_item_check (&ticket, it->quantity, it->price_given, it->price,
                                  &it->unit_price, &code, &why) != 0)
            return s_refuse (order, 422, code, why);
        if (it->unit_price && ticket.currency [0]) {
            if (currency [0] && strcmp (currency, ticket.currency) != 0)
                return s_refuse (order, 422, "mixed_currencies",
                                 "an order's priced tickets share a currency");
            strcpy (currency, ticket.currency);
        }
        *total += it->unit_price * it->quantity;
        if (*total > EV_MONEY_MAX)
            return s_refuse (order, 422, "total_too_large", "the order's total is too large");
        if (s_int (res, row, 12) < it->quantity)
            sold_out = true;
    }
    if (sold_out)
        return s_refuse (order, 409, "sold_out",
                         "not enough tickets left, counting pending orders");
    return true;
}

//  Writes the order, its items and either the sale (a total of 0:
//  completed, confirmed by mail) or its holds and the job that ends them.
//  Returns 0 or a code.
static int
s_place (tl_db_t *db, s_order_t *order, int64_t total, const char *currency)
{
    char total_text [24], minutes [16];
    snprintf (total_text, sizeof total_text, "%lld", (long long) total);
    snprintf (minutes, sizeof minutes, "%d", EV_ORDER_HOLD_MINUTES);
    bool pending = total > 0;
    const char *insert [] = { tl_call_param (order->call, "id"), tl_call_user (order->call),
                              pending ? "pending" : "completed", total_text,
                              currency [0] ? currency : NULL, minutes };
    int rc = 0;
    PGresult *res = tl_db_exec (db, "orders_insert", 6, insert, &rc);
    if (!res)
        return rc;
    snprintf (order->order_id, sizeof order->order_id, "%s", tl_db_value (res, 0, 0));
    int64_t expires_ms = s_int (res, 0, 1);
    PQclear (res);
    const char *id = order->order_id;
    for (size_t i = 0; i < order->count && rc == 0; i++) {
        s_item_t *it = &order->items [i];
        char quantity [24], price [24];
        snprintf (quantity, sizeof quantity, "%lld", (long long) it->quantity);
        snprintf (price, sizeof price, "%lld", (long long) it->unit_price);
        const char *item [] = { id, it->ticket_id, quantity, price };
        long count = tl_db_exec_count (db, "orders_insert_item", 4, item);
        if (count >= 0 && pending)
            count = tl_db_exec_count (db, "orders_insert_hold", 3, item);
        rc = count < 0 ? (int) count : 0;
    }
    if (rc)
        return rc;
    if (!pending) {
        long count = tl_db_exec_count (db, "orders_sell", 1, &id);
        return count < 0 ? (int) count : s_confirm (db, id);
    }
    //  The hold ends by the job at expires_at (availability already stops
    //  counting it then)
    msgpack_sbuffer payload;
    msgpack_sbuffer_init (&payload);
    tl_mp_pack_pairs (&payload, (const char *[]) { "order_id", id }, 1);
    rc = tl_jobs_enqueue (db, "event.expire_order", payload.data, payload.size, NULL,
                          expires_ms, 0);
    msgpack_sbuffer_destroy (&payload);
    return rc < 0 ? rc : 0;
}

//  The order's transaction: may the caller read the tickets; lock them in
//  id order; check the items under the locks; place the order.
static int
s_create_tx (tl_db_t *db, void *arg)
{
    s_order_t *order = (s_order_t *) arg;
    tl_call_t *call = order->call;
    order->status = 0;
    const char *event_id = tl_call_param (call, "id");
    event_ref_t event;
    int rc = event_can_db (db, call, event_id, EV_SVC_TICKETS, EV_OP_READ, false, &event);
    order->decision = rc > 0 ? rc : 0;
    if (rc)
        return rc < 0 ? rc : 0;
    const char *values [] = { event_id, order->ids };
    PGresult *res = tl_db_exec (db, "orders_lock_tickets", 2, values, &rc);
    PQclear (res);
    if (rc)
        return rc;
    res = tl_db_exec (db, "orders_tickets", 2, values, &rc);
    if (!res)
        return rc;
    int64_t total;
    char currency [4];
    bool ok = s_items_check (order, res, &event, &total, currency);
    PQclear (res);
    return ok ? s_place (db, order, total, currency) : 0;
}

static void
s_create (tl_call_t *call)
{
    s_order_t *order = calloc (1, sizeof *order);
    if (!order) {
        tl_call_error (call, 503, "unavailable", "out of memory");
        return;
    }
    order->call = call;
    if (!s_items_read (call, order))
        goto done;
    int err = tl_db_tx (tl_call_db (call), s_create_tx, order);
    if (err == TL_EINVAL)               //  a CHECK: never sell past the quantity
        tl_call_error (call, 409, "sold_out", "not enough tickets left");
    else
    if (err)
        tl_call_db_error (call, err);
    else
    if (order->decision)
        event_refuse (call, order->decision);
    else
    if (order->status)
        tl_call_field_error (call, order->status, order->code, "items", order->why);
    else {
        char location [128];
        snprintf (location, sizeof location, "/api/v1/events/%s/orders/%s",
                  tl_call_param (call, "id"), order->order_id);
        tl_call_header (call, "Location", location);
        s_reply_order (call, tl_call_param (call, "id"), order->order_id, 201);
    }
done:
    free (order);
}

//  ---------------------------------------------------------------------
//  Who may see and change one order: its buyer, or roles with `op` on
//  `orders` (staff too). Reads and locks the order when `lock`.

typedef enum { S_NOBODY, S_BUYER, S_ROLE } s_who_t;

//  Returns 0 with *who set (S_NOBODY: answer 404), or a database code.
static int
s_who (tl_db_t *db, tl_call_t *call, ev_op_t op, bool lock, s_who_t *who,
       event_ref_t *event)
{
    *who = S_NOBODY;
    const char *event_id = tl_call_param (call, "id");
    const char *id = tl_call_param (call, "order_id");
    if (!tl_valid_uuid (event_id) || !tl_valid_uuid (id))
        return 0;
    int decision = event_can_db (db, call, event_id, EV_SVC_ORDERS, op, false, event);
    if (decision < 0)
        return decision;
    const char *values [] = { id, event_id };
    int rc = 0;
    PGresult *res = tl_db_exec (db, lock ? "orders_lock" : "orders_one", 2, values, &rc);
    if (!res)
        return rc;
    if (PQntuples (res) == 1) {
        const char *buyer = tl_db_value (res, 0, lock ? 0 : S_COL_BUYER);
        if (decision == EV_ALLOW)
            *who = S_ROLE;
        else
        if (buyer && tl_call_user (call) && strcmp (buyer, tl_call_user (call)) == 0)
            *who = S_BUYER;
    }
    PQclear (res);
    return 0;
}

//  ---------------------------------------------------------------------
//  GET /events/{id}/orders/{order_id}

static void
s_get (tl_call_t *call)
{
    s_who_t who;
    event_ref_t event;
    int rc = s_who (tl_call_db (call), call, EV_OP_READ, false, &who, &event);
    if (rc)
        tl_call_db_error (call, rc);
    else
    if (who == S_NOBODY)
        tl_call_error (call, 404, "not_found", "no such order");
    else
        s_reply_order (call, tl_call_param (call, "id"), tl_call_param (call, "order_id"), 200);
}

//  ---------------------------------------------------------------------
//  POST /events/{id}/orders/{order_id}/pay {payment_reference} and
//  POST .../cancel

typedef struct {
    tl_call_t *call;
    bool pay;                           //  else cancel
    const char *reference;
    int status;
    const char *code, *why;
} s_change_t;

static int
s_change_tx (tl_db_t *db, void *arg)
{
    s_change_t *change = (s_change_t *) arg;
    tl_call_t *call = change->call;
    change->status = 0;
    s_who_t who;
    event_ref_t event;
    int rc = s_who (db, call, EV_OP_UPDATE, true, &who, &event);
    if (rc)
        return rc;
    if (who == S_NOBODY) {
        //  Roles that may read the orders see it exists
        s_who_t reader;
        event_ref_t ignored;
        rc = s_who (db, call, EV_OP_READ, false, &reader, &ignored);
        change->status = reader == S_ROLE ? 403 : 404;
        change->code = reader == S_ROLE ? "forbidden" : "not_found";
        change->why = reader == S_ROLE ? "your role may not change orders" : "no such order";
        return rc;
    }
    if (change->pay && who == S_BUYER && !s_manual_payments) {
        change->status = 403, change->code = "forbidden";
        change->why = "orders are paid through the payment provider";
        return 0;
    }
    const char *id = tl_call_param (call, "order_id");
    PGresult *res = tl_db_exec (db, "orders_lock_own_tickets", 1, &id, &rc);
    PQclear (res);
    res = rc ? NULL : tl_db_exec (db, "orders_state", 1, &id, &rc);
    if (!res)
        return rc;
    char status [16];
    snprintf (status, sizeof status, "%s", tl_db_value (res, 0, 0));
    bool lapsed = tl_db_value (res, 0, 1) [0] == 't';
    PQclear (res);
    if (lapsed || strcmp (status, "expired") == 0) {
        //  Past its hold: expired now, whatever the job's progress
        const char *values [] = { id, "expired" };
        long count = tl_db_exec_count (db, "orders_set_status", 2, values);
        count = count < 0 ? count : tl_db_exec_count (db, "orders_release", 1, &id);
        change->status = 409, change->code = "order_expired";
        change->why = "the order expired and its tickets went back on sale";
        return count < 0 ? (int) count : 0;
    }
    if (strcmp (status, "cancelled") == 0) {
        change->status = 409, change->code = "order_cancelled";
        change->why = "the order was cancelled";
        return 0;
    }
    long count;
    if (change->pay) {
        if (strcmp (status, "completed") == 0) {
            change->status = 409, change->code = "order_completed";
            change->why = "the order is already paid";
            return 0;
        }
        const char *values [] = { id, change->reference };
        count = tl_db_exec_count (db, "orders_release", 1, &id);
        count = count < 0 ? count : tl_db_exec_count (db, "orders_sell", 1, &id);
        count = count < 0 ? count : tl_db_exec_count (db, "orders_complete", 2, values);
        return count < 0 ? (int) count : s_confirm (db, id);
    }
    //  Cancel: a buyer only before the event starts
    if (who == S_BUYER && event.starts_ms <= (int64_t) time (NULL) * 1000) {
        change->status = 409, change->code = "event_started";
        change->why = "a buyer cancels only before the event starts";
        return 0;
    }
    count = strcmp (status, "completed") == 0
          ? tl_db_exec_count (db, "orders_unsell", 1, &id)
          : tl_db_exec_count (db, "orders_release", 1, &id);
    const char *values [] = { id, "cancelled" };
    count = count < 0 ? count : tl_db_exec_count (db, "orders_set_status", 2, values);
    return count < 0 ? (int) count : event_notify_order_cancelled (db, id);
}

static void
s_change (tl_call_t *call, bool pay)
{
    char *reference = NULL;
    if (pay && !tl_call_text (call, NULL, "payment_reference", NULL, EV_PAYMENT_REFERENCE_MAX,
                              &reference, NULL))
        return;
    if (reference && !event_text_ok (reference, 1, EV_PAYMENT_REFERENCE_MAX, false)) {
        tl_call_field_error (call, 400, "invalid", "payment_reference",
                             "must be 1 to 200 characters");
        free (reference);
        return;
    }
    s_change_t change = { call, pay, reference, 0, NULL, NULL };
    int err = tl_db_tx (tl_call_db (call), s_change_tx, &change);
    if (err)
        tl_call_db_error (call, err);
    else
    if (change.status)
        tl_call_error (call, change.status, change.code, "%s", change.why);
    else
        s_reply_order (call, tl_call_param (call, "id"), tl_call_param (call, "order_id"), 200);
    free (reference);
}

static void
s_pay (tl_call_t *call)
{
    s_change (call, true);
}

static void
s_cancel (tl_call_t *call)
{
    s_change (call, false);
}

//  ---------------------------------------------------------------------
//  GET /events/{id}/orders (roles with read on orders) and GET /me/orders

static void
s_page (tl_call_t *call, const char *statement, const char *owner)
{
    tl_page_t page;
    if (!tl_call_page (call, &page))
        return;
    const char *values [] = { owner, page.after_time, page.after_id, page.fetch };
    PGresult *res = tl_call_exec_page (call, statement, 4, values);
    if (!res)
        return;
    bool more;
    msgpack_packer *pk;
    int rows = tl_call_page_reply (call, &page, PQntuples (res), &more, &pk);
    for (int row = 0; row < rows; row++)
        s_pack_order (pk, res, row);
    tl_call_page_end (pk, more, tl_db_value (res, rows - 1, S_COL_CURSOR),
                      tl_db_value (res, rows - 1, S_COL_ID));
    PQclear (res);
}

static void
s_list_event (tl_call_t *call)
{
    const char *id = tl_call_param (call, "id");
    event_ref_t event;
    if (event_can (call, id, EV_SVC_ORDERS, EV_OP_READ, false, &event))
        s_page (call, "orders_page_event", id);
}

static void
s_list_mine (tl_call_t *call)
{
    s_page (call, "orders_page_buyer", tl_call_user (call));
}

//  ---------------------------------------------------------------------
//  event.expire_order {order_id}: a pending order not paid by its
//  expires_at (by the run's clock) expires and its holds go.

static int
s_expire_order (tl_job_ctx_t *job)
{
    char *id = tl_mp_strdup (tl_mp_get (tl_job_ctx_payload (job), "order_id"), 64);
    if (!id || !tl_valid_uuid (id)) {
        free (id);
        return 0;
    }
    char clock [24];
    snprintf (clock, sizeof clock, "%lld", (long long) tl_job_ctx_clock_ms (job));
    tl_db_t *db = tl_job_ctx_db (job);
    const char *values [] = { id, clock };
    long count = tl_db_exec_count (db, "orders_expire", 2, values);
    if (count > 0)
        count = tl_db_exec_count (db, "orders_release", 1, (const char *const *) &id);
    if (count < 0)
        tl_job_ctx_error (job, "order %s not expired: %s", id, tl_db_errmsg (db));
    free (id);
    return count < 0 ? (int) count : 0;
}

//  ---------------------------------------------------------------------
//  event.mail_order {order_id}: the buyer's confirmation of a completed
//  order, to their address as auth tells it, only when it is verified
//  (mail goes to proven addresses only); nothing when the order or the
//  buyer is gone. The mail's key is the order's: one order, one mail.

//  Asks auth for the buyer. Returns 0 with *found, or a code (the job's
//  error set).
static int
s_buyer (tl_job_ctx_t *job, const char *id, char email [TL_MAX_EMAIL_LEN + 1],
         char username [TL_USERNAME_MAX + 1], bool *found)
{
    *found = false;
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    tl_mp_pack_pairs (&body, (const char *[]) { "id", id }, 1);
    int status = 0;
    tl_msg_t *reply = NULL;
    int rc = tl_service_job_call (job, "auth", "user.get", body.data, body.size,
                                  S_CALL_TIMEOUT_MS, &status, &reply);
    msgpack_sbuffer_destroy (&body);
    if (rc == 0 && status != 200 && status != 404) {
        tl_job_ctx_error (job, "auth.user.get answered %d", status);
        rc = TL_EIO;
    }
    if (rc == 0 && status == 200) {
        const msgpack_object *user = tl_msg_body (reply);
        const msgpack_object *verified = tl_mp_get (user, "verified");
        *found = verified && verified->type == MSGPACK_OBJECT_BOOLEAN && verified->via.boolean
              && tl_mp_copy (tl_mp_get (user, "email"), email, TL_MAX_EMAIL_LEN + 1)
              && tl_mp_copy (tl_mp_get (user, "username"), username, TL_USERNAME_MAX + 1);
    }
    tl_msg_destroy (&reply);
    return rc;
}

static int
s_mail_order (tl_job_ctx_t *job)
{
    char *id = tl_mp_strdup (tl_mp_get (tl_job_ctx_payload (job), "order_id"), 64);
    if (!id || !tl_valid_uuid (id)) {
        free (id);
        return 0;
    }
    int rc = 0;
    PGresult *res = tl_db_exec (tl_job_ctx_db (job), "orders_for_mail", 1,
                                (const char *const *) &id, &rc);
    char email [TL_MAX_EMAIL_LEN + 1], username [TL_USERNAME_MAX + 1];
    bool found = false;
    if (!res)
        tl_job_ctx_error (job, "order not read: %s", tl_strerror (rc));
    else
    if (PQntuples (res) == 1)
        rc = s_buyer (job, tl_db_value (res, 0, 0), email, username, &found);
    if (found) {
        char key [64], link [TL_MAX_URL_LEN + 128], total [48];
        snprintf (key, sizeof key, "event:order:%s", id);
        snprintf (link, sizeof link, "%s/events/%s/orders/%s", s_public_url,
                  tl_db_value (res, 0, 4), id);
        if (ev_money_format (tl_db_parse_int64 (tl_db_value (res, 0, 1)), tl_db_value (res, 0, 2), total,
                             sizeof total) != 0)
            snprintf (total, sizeof total, "free");
        msgpack_sbuffer body;
        msgpack_sbuffer_init (&body);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, 5);
        tl_mp_pack_kv (&pk, "key", key);
        tl_mp_pack_kv (&pk, "user_id", tl_db_value (res, 0, 0));
        tl_mp_pack_kv (&pk, "to", email);
        tl_mp_pack_kv (&pk, "template", "order_confirmation");
        tl_mp_pack_str (&pk, "vars");
        msgpack_pack_map (&pk, 5);
        tl_mp_pack_kv (&pk, "username", username);
        tl_mp_pack_kv (&pk, "event_name", tl_db_value (res, 0, 3));
        tl_mp_pack_kv (&pk, "tickets", tl_db_value (res, 0, 5));
        tl_mp_pack_kv (&pk, "total", total);
        tl_mp_pack_kv (&pk, "link", link);
        rc = tl_service_job_send (job, "mailer", "mail.send", body.data, body.size,
                                  S_CALL_TIMEOUT_MS, NULL);
        msgpack_sbuffer_destroy (&body);
    }
    PQclear (res);
    free (id);
    return rc;
}

int
event_orders_register (tl_service_t *svc)
{
    if (tl_env_public_url (s_public_url, sizeof s_public_url))
        return TL_ECONFIG;
    bool manual = false;
    const char *payments = getenv ("TALLY_PAYMENTS");
    manual = payments && strcmp (payments, "manual") == 0;
    s_manual_payments = manual;
    int rc = tl_service_on (svc, "orders.create", s_create);
    rc = rc ? rc : tl_service_on (svc, "orders.get", s_get);
    rc = rc ? rc : tl_service_on (svc, "orders.pay", s_pay);
    rc = rc ? rc : tl_service_on (svc, "orders.cancel", s_cancel);
    rc = rc ? rc : tl_service_on (svc, "orders.list", s_list_event);
    rc = rc ? rc : tl_service_on (svc, "orders.mine", s_list_mine);
    rc = rc ? rc : tl_service_job (svc, "event.expire_order", s_expire_order);
    rc = rc ? rc : tl_service_job (svc, "event.mail_order", s_mail_order);
    return rc;
}
