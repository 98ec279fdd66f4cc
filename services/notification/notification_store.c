//  notification_store.c — a user's notifications: created by services over
//  the mesh (one per idempotency key, numbered by the user's sequence,
//  at most NT_KEEP_PER_USER kept), listed newest first in keyset pages,
//  counted, marked read, deleted (another user's is 404), and the catch-up
//  of a gateway's stream. Every change of a notification or of the unread
//  count is pushed to every gateway after the commit, without waiting for
//  them (tl_call_broadcast_post): a stream that misses a push catches up
//  by its Last-Event-ID.
#include "notification_service.h"
#include "tl_error.h"
#include "tl_log.h"
#include "tl_mp.h"
#include "tl_valid.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_STR(x) #x
#define S_XSTR(x) S_STR (x)

//  A notification as the API shows it, then the list cursor (µs)
#define S_COLUMNS \
    "id, seq, title, message, action, target_url, rfc3339 (created_at), " \
    "read_at IS NOT NULL, " \
    "to_char (created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
enum { S_COL_CURSOR = 8 };

//  $1 user, $2/$3 the cursor, $4 the LIMIT
#define S_PAGE_WHERE \
    "user_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) < ($2::timestamptz, $3::uuid)) "

static bool
s_is (const char *a, const char *b)
{
    return a && strcmp (a, b) == 0;
}

static const tl_db_statement_t s_statements [] = {
    //  Creating: the user's counter row, locked, serialises their creates
    { "counter_ensure",
      "INSERT INTO counters (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING", 1 },
    { "counter_lock", "SELECT last_seq FROM counters WHERE user_id = $1 FOR UPDATE", 1 },
    { "counter_next",
      "UPDATE counters SET last_seq = last_seq + 1, version = version + 1 WHERE user_id = $1 "
      "RETURNING last_seq, version", 1 },
    //  A change of the unread count: its version, under the row's lock
    { "counter_version",
      "UPDATE counters SET version = version + 1 WHERE user_id = $1 RETURNING version", 1 },
    { "counter_read",
      "SELECT coalesce (max (last_seq), 0), coalesce (max (version), 0) FROM counters "
      "WHERE user_id = $1", 1 },
    { "key_find", "SELECT id, seq FROM keys WHERE user_id = $1 AND key = $2", 2 },
    { "key_insert", "INSERT INTO keys (user_id, key, id, seq) VALUES ($1, $2, $3, $4)", 4 },
    //  $1 user, $2 seq, $3 title, $4 message, $5 action, $6 target_url, $7 sender
    { "insert",
      "INSERT INTO notifications (user_id, seq, title, message, action, target_url, sender) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING " S_COLUMNS, 7 },
    //  The oldest beyond NT_KEEP_PER_USER go ($2: the newest seq)
    { "cap",
      "DELETE FROM notifications WHERE user_id = $1 "
      "AND seq <= $2::bigint - " S_XSTR (NT_KEEP_PER_USER), 2 },
    { "unread", "SELECT count (*) FROM notifications WHERE user_id = $1 AND read_at IS NULL", 1 },
    { "page",
      "SELECT " S_COLUMNS " FROM notifications WHERE " S_PAGE_WHERE
      "ORDER BY created_at DESC, id DESC LIMIT $4::int", 4 },
    { "page_unread",
      "SELECT " S_COLUMNS " FROM notifications WHERE " S_PAGE_WHERE "AND read_at IS NULL "
      "ORDER BY created_at DESC, id DESC LIMIT $4::int", 4 },
    //  $1 id, $2 user: {changed, exists}
    { "read_one",
      "WITH u AS (UPDATE notifications SET read_at = now () "
      "           WHERE id = $1 AND user_id = $2 AND read_at IS NULL RETURNING 1) "
      "SELECT (SELECT count (*) FROM u), "
      "       EXISTS (SELECT 1 FROM notifications WHERE id = $1 AND user_id = $2)", 2 },
    { "read_all",
      "UPDATE notifications SET read_at = now () WHERE user_id = $1 AND read_at IS NULL", 1 },
    { "delete_one",
      "DELETE FROM notifications WHERE id = $1 AND user_id = $2 RETURNING read_at IS NULL", 2 },
    //  A stream's catch-up: the newest NT_CATCHUP_MAX after $2 up to $3,
    //  oldest first
    { "since",
      "SELECT * FROM (SELECT " S_COLUMNS " FROM notifications "
      "  WHERE user_id = $1 AND seq > $2::bigint AND seq <= $3::bigint "
      "  ORDER BY seq DESC LIMIT " S_XSTR (NT_CATCHUP_MAX) ") n ORDER BY seq", 3 },
};

int
notification_store_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

//  Reads row `row` of a result of S_COLUMNS as an item (borrowed from it).
static nt_item_t
s_item (const PGresult *res, int row)
{
    nt_item_t item = {
        .id = tl_db_value (res, row, 0),
        .seq = strtoll (tl_db_value (res, row, 1), NULL, 10),
        .title = tl_db_value (res, row, 2),
        .message = tl_db_value (res, row, 3),
        .action = tl_db_value (res, row, 4),
        .target_url = tl_db_value (res, row, 5),
        .received_at = tl_db_value (res, row, 6),
        .has_read = s_is (tl_db_value (res, row, 7), "t"),
    };
    return item;
}

//  The unread count of `user` on `db`, or a negative code.
static long
s_unread (tl_db_t *db, const char *user)
{
    int rc = 0;
    PGresult *res = tl_db_exec (db, "unread", 1, &user, &rc);
    long count = res ? atol (tl_db_value (res, 0, 0)) : rc;
    PQclear (res);
    return count;
}

//  Pushes `item` (may be NULL) and the unread count to every gateway once
//  the call's writes are committed. A push that cannot be queued is
//  logged: the streams catch up on reconnect.
static void
s_push (tl_call_t *call, const char *user, const nt_item_t *item, long unread, int64_t version)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    nt_push_body (&sbuf, user, item, unread, version);
    int rc = tl_call_broadcast_post (call, NT_PUSH_TOPIC, sbuf.data, sbuf.size);
    if (rc)
        tl_log (TL_LOG_WARN, tl_call_trace (call), "push not queued: %s", tl_strerror (rc));
    msgpack_sbuffer_destroy (&sbuf);
}

//  ---------------------------------------------------------------------
//  notification.create (services only)

typedef struct {
    char *user_id, *key, *title, *message, *action, *target_url;
} s_fields_t;

static void
s_fields_free (s_fields_t *f)
{
    free (f->user_id);
    free (f->key);
    free (f->title);
    free (f->message);
    free (f->action);
    free (f->target_url);
}

//  Reads string field `name` of the body into *out (the caller's). A field
//  that is absent or null is left NULL; one that is not a string of at
//  most `max_bytes` bytes answers 422 and returns false.
static bool
s_string (tl_call_t *call, const char *name, size_t max_bytes, char **out)
{
    const msgpack_object *value = tl_mp_get (tl_call_body (call), name);
    if (!value || value->type == MSGPACK_OBJECT_NIL)
        return true;
    *out = tl_mp_strdup (value, max_bytes);
    if (!*out) {
        tl_call_field_error (call, 422, "invalid", name, "must be a string of bounded length");
        return false;
    }
    return true;
}

//  Reads and checks the create's fields. Answers 422 and returns false on
//  the first bad one.
static bool
s_read_fields (tl_call_t *call, s_fields_t *f)
{
    const msgpack_object *body = tl_call_body (call);
    if (!body || body->type != MSGPACK_OBJECT_MAP) {
        tl_call_error (call, 422, "invalid", "the body must be a map");
        return false;
    }
    //  Bytes: 4 per character at most
    if (!s_string (call, "user_id", 64, &f->user_id)
    ||  !s_string (call, "key", NT_KEY_MAX, &f->key)
    ||  !s_string (call, "title", NT_TITLE_MAX * 4, &f->title)
    ||  !s_string (call, "message", NT_MESSAGE_MAX * 4, &f->message)
    ||  !s_string (call, "action", NT_ACTION_MAX * 4, &f->action)
    ||  !s_string (call, "target_url", NT_TARGET_URL_MAX, &f->target_url))
        return false;
    const char *field = NULL, *why = NULL;
    if (!f->user_id || !tl_valid_uuid (f->user_id))
        field = "user_id", why = "must be a user id (UUID)";
    else
    if (!f->key || !tl_valid_idempotency_key (f->key))
        field = "key", why = "must be 1 to " S_XSTR (NT_KEY_MAX) " visible ASCII characters";
    else
    if (!nt_push_text_ok (f->title, NT_TITLE_MAX, false))
        field = "title", why = "must be 1 to " S_XSTR (NT_TITLE_MAX)
                               " characters of plain text on one line";
    else
    if (!nt_push_text_ok (f->message, NT_MESSAGE_MAX, true))
        field = "message", why = "must be 1 to " S_XSTR (NT_MESSAGE_MAX)
                                 " characters of plain text";
    else
    if (f->action && !nt_push_text_ok (f->action, NT_ACTION_MAX, false))
        field = "action", why = "must be 1 to " S_XSTR (NT_ACTION_MAX) " characters";
    else
    if (f->target_url && !nt_push_text_ok (f->target_url, NT_TARGET_URL_MAX, false))
        field = "target_url", why = "must be 1 to " S_XSTR (NT_TARGET_URL_MAX)
                                    " characters without spaces or controls";
    else
    if (f->target_url && strpbrk (f->target_url, " \t"))
        field = "target_url", why = "must not hold spaces";
    if (field) {
        tl_call_field_error (call, 422, "invalid", field, why);
        return false;
    }
    return true;
}

typedef struct {
    tl_call_t *call;
    s_fields_t *f;
    bool replay;
    char id [40];
    int64_t seq;
    PGresult *row;                  //  the new notification
    long unread;
} s_create_t;

static int
s_create_tx (tl_db_t *db, void *arg)
{
    s_create_t *c = (s_create_t *) arg;
    s_fields_t *f = c->f;
    PQclear (c->row);
    c->row = NULL;
    c->replay = false;
    int rc = 0;
    long count = tl_db_exec_count (db, "counter_ensure", 1, (const char *const *) &f->user_id);
    if (count < 0)
        return (int) count;
    PGresult *res = tl_db_exec (db, "counter_lock", 1, (const char *const *) &f->user_id, &rc);
    PQclear (res);
    if (!res)
        return rc;
    const char *pair [] = { f->user_id, f->key };
    res = tl_db_exec (db, "key_find", 2, pair, &rc);
    if (!res)
        return rc;
    if (PQntuples (res) == 1) {
        c->replay = true;
        snprintf (c->id, sizeof c->id, "%s", tl_db_value (res, 0, 0));
        c->seq = strtoll (tl_db_value (res, 0, 1), NULL, 10);
        PQclear (res);
        return 0;
    }
    PQclear (res);
    res = tl_db_exec (db, "counter_next", 1, (const char *const *) &f->user_id, &rc);
    if (!res)
        return rc;
    char seq [24];
    snprintf (seq, sizeof seq, "%s", tl_db_value (res, 0, 0));
    int64_t version = strtoll (tl_db_value (res, 0, 1), NULL, 10);
    PQclear (res);
    const char *values [] = { f->user_id, seq, f->title, f->message, f->action, f->target_url,
                              tl_call_caller (c->call) };
    c->row = tl_db_exec (db, "insert", 7, values, &rc);
    if (!c->row)
        return rc;
    snprintf (c->id, sizeof c->id, "%s", tl_db_value (c->row, 0, 0));
    c->seq = strtoll (seq, NULL, 10);
    const char *key_values [] = { f->user_id, f->key, c->id, seq };
    count = tl_db_exec_count (db, "key_insert", 4, key_values);
    const char *cap [] = { f->user_id, seq };
    count = count < 0 ? count : tl_db_exec_count (db, "cap", 2, cap);
    if (count < 0)
        return (int) count;
    c->unread = s_unread (db, f->user_id);
    if (c->unread < 0)
        return (int) c->unread;
    //  Told to the gateways once committed (never when rolled back)
    nt_item_t item = s_item (c->row, 0);
    s_push (c->call, f->user_id, &item, c->unread, version);
    return 0;
}

static void
s_create (tl_call_t *call)
{
    s_fields_t fields = { 0 };
    if (!s_read_fields (call, &fields)) {
        s_fields_free (&fields);
        return;
    }
    s_create_t create = { .call = call, .f = &fields };
    int rc = tl_db_tx (tl_call_db (call), s_create_tx, &create);
    if (rc)
        tl_call_db_error (call, rc);
    else {
        msgpack_packer *pk = tl_call_reply (call, create.replay ? 200 : 201);
        msgpack_pack_map (pk, 2);
        tl_mp_pack_kv (pk, "id", create.id);
        tl_mp_pack_str (pk, "seq");
        msgpack_pack_int64 (pk, create.seq);
    }
    PQclear (create.row);
    s_fields_free (&fields);
}

//  ---------------------------------------------------------------------
//  GET /notifications?unread=true, GET /notifications/unread-count

static void
s_list (tl_call_t *call)
{
    tl_page_t page;
    if (!tl_call_page (call, &page))
        return;
    const char *unread = tl_call_param (call, "unread");
    if (unread && !s_is (unread, "true") && !s_is (unread, "false")) {
        tl_call_field_error (call, 400, "invalid", "unread", "must be true or false");
        return;
    }
    bool only_unread = unread && s_is (unread, "true");
    const char *values [] = { tl_call_user (call), page.after_time, page.after_id, page.fetch };
    PGresult *res = tl_call_exec_page (call, only_unread ? "page_unread" : "page", 4, values);
    if (!res)
        return;
    bool more;
    msgpack_packer *pk;
    int rows = tl_call_page_reply (call, &page, PQntuples (res), &more, &pk);
    for (int row = 0; row < rows; row++) {
        nt_item_t item = s_item (res, row);
        nt_push_pack_item (pk, &item);
    }
    tl_call_page_end (pk, more, tl_db_value (res, rows - 1, S_COL_CURSOR),
                      tl_db_value (res, rows - 1, 0));
    PQclear (res);
}

static void
s_unread_count (tl_call_t *call)
{
    long count = s_unread (tl_call_db (call), tl_call_user (call));
    if (count < 0) {
        tl_call_db_error (call, (int) count);
        return;
    }
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_map (pk, 1);
    tl_mp_pack_str (pk, "count");
    msgpack_pack_long (pk, count);
}

//  ---------------------------------------------------------------------
//  POST /notifications/{id}/read, POST /notifications/read-all,
//  DELETE /notifications/{id}: each in one transaction with the count it
//  pushes when it changed.

typedef struct {
    tl_call_t *call;
    const char *statement;
    const char *id;                 //  NULL for read-all
    bool found;
    bool changed;                   //  the unread count may have moved
    long updated;
} s_change_t;

static int
s_change_tx (tl_db_t *db, void *arg)
{
    s_change_t *c = (s_change_t *) arg;
    const char *user = tl_call_user (c->call);
    int rc = 0;
    c->found = c->changed = false;
    c->updated = 0;
    //  The counter's lock first (as a create takes it), then the rows: the
    //  count below is as new as its version
    PGresult *res = tl_db_exec (db, "counter_version", 1, &user, &rc);
    if (!res)
        return rc;
    int64_t version = PQntuples (res) == 1 ? strtoll (tl_db_value (res, 0, 0), NULL, 10) : 0;
    PQclear (res);
    if (!c->id) {
        c->updated = tl_db_exec_count (db, "read_all", 1, &user);
        if (c->updated < 0)
            return (int) c->updated;
        c->found = true;
        c->changed = c->updated > 0;
    }
    else {
        const char *values [] = { c->id, user };
        res = tl_db_exec (db, c->statement, 2, values, &rc);
        if (!res)
            return rc;
        if (s_is (c->statement, "read_one")) {
            c->changed = atol (tl_db_value (res, 0, 0)) > 0;
            c->found = s_is (tl_db_value (res, 0, 1), "t");
        }
        else {
            c->found = PQntuples (res) == 1;
            c->changed = c->found && s_is (tl_db_value (res, 0, 0), "t");
        }
        PQclear (res);
    }
    if (c->changed) {
        long unread = s_unread (db, user);
        if (unread < 0)
            return (int) unread;
        s_push (c->call, user, NULL, unread, version);
    }
    return 0;
}

//  Runs a change of one notification (`id` a UUID, else 404) or of all
//  (NULL) and answers: 404 when it is none of the caller's.
static bool
s_change (tl_call_t *call, const char *statement, const char *id, s_change_t *change)
{
    if (id && !tl_valid_uuid (id)) {
        tl_call_error (call, 404, "not_found", "no such notification");
        return false;
    }
    *change = (s_change_t) { .call = call, .statement = statement, .id = id };
    int rc = tl_db_tx (tl_call_db (call), s_change_tx, change);
    if (rc)
        tl_call_db_error (call, rc);
    else
    if (!change->found)
        tl_call_error (call, 404, "not_found", "no such notification");
    return rc == 0 && change->found;
}

static void
s_read (tl_call_t *call)
{
    s_change_t change;
    if (s_change (call, "read_one", tl_call_param (call, "id"), &change))
        tl_call_reply_empty (call, 204);
}

static void
s_read_all (tl_call_t *call)
{
    s_change_t change;
    if (s_change (call, "read_all", NULL, &change)) {
        msgpack_packer *pk = tl_call_reply (call, 200);
        msgpack_pack_map (pk, 1);
        tl_mp_pack_str (pk, "updated");
        msgpack_pack_long (pk, change.updated);
    }
}

static void
s_delete (tl_call_t *call)
{
    s_change_t change;
    if (s_change (call, "delete_one", tl_call_param (call, "id"), &change))
        tl_call_reply_empty (call, 204);
}

//  ---------------------------------------------------------------------
//  The catch-up of GET /notifications/stream, asked by the gateway that
//  holds the stream once it has subscribed it: {items, last_seq,
//  unread_count, version}. `last_seq` and the count's `version` are read
//  first (the count after them is as new or newer). `last_seq` is the
//  user's newest sequence:
//  creates commit in sequence order (the counter's lock), so every
//  notification up to it is committed and in `items` when it is after
//  last_event_id (the newest NT_CATCHUP_MAX of them). A last_event_id that
//  is malformed, or past last_seq, counts as absent: no items.

static void
s_stream (tl_call_t *call)
{
    const char *user = tl_call_user (call);
    tl_db_t *db = tl_call_db (call);
    int rc = 0;
    PGresult *last = tl_db_exec (db, "counter_read", 1, &user, &rc);
    if (!last) {
        tl_call_db_error (call, rc);
        return;
    }
    char last_seq [24];
    snprintf (last_seq, sizeof last_seq, "%s", tl_db_value (last, 0, 0));
    int64_t version = strtoll (tl_db_value (last, 0, 1), NULL, 10);
    PQclear (last);
    int64_t after = nt_push_cursor (tl_call_param (call, "last_event_id"));
    if (after > strtoll (last_seq, NULL, 10))
        after = -1;
    PGresult *items = NULL;
    if (after >= 0) {
        char from [24];
        snprintf (from, sizeof from, "%" PRId64, after);
        const char *values [] = { user, from, last_seq };
        items = tl_db_exec (db, "since", 3, values, &rc);
        if (!items) {
            tl_call_db_error (call, rc);
            return;
        }
    }
    long unread = s_unread (db, user);
    if (unread < 0) {
        PQclear (items);
        tl_call_db_error (call, (int) unread);
        return;
    }
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_map (pk, 4);
    tl_mp_pack_str (pk, "items");
    int rows = items ? PQntuples (items) : 0;
    msgpack_pack_array (pk, (size_t) rows);
    for (int row = 0; row < rows; row++) {
        nt_item_t item = s_item (items, row);
        nt_push_pack_item (pk, &item);
    }
    tl_mp_pack_str (pk, "last_seq");
    msgpack_pack_int64 (pk, strtoll (last_seq, NULL, 10));
    tl_mp_pack_str (pk, "unread_count");
    msgpack_pack_long (pk, unread);
    tl_mp_pack_str (pk, "version");
    msgpack_pack_int64 (pk, version);
    PQclear (items);
}

int
notification_store_register (tl_service_t *svc)
{
    int rc = tl_service_on (svc, "notification.create", s_create);
    rc = rc ? rc : tl_service_on (svc, "notifications.list", s_list);
    rc = rc ? rc : tl_service_on (svc, "notifications.unread_count", s_unread_count);
    rc = rc ? rc : tl_service_on (svc, "notifications.read", s_read);
    rc = rc ? rc : tl_service_on (svc, "notifications.read_all", s_read_all);
    rc = rc ? rc : tl_service_on (svc, "notifications.delete", s_delete);
    rc = rc ? rc : tl_service_on (svc, "notifications.stream", s_stream);
    return rc;
}
