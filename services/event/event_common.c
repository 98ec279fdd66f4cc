//  event_common.c — the check every handler asks (event_can: the event,
//  the caller's role and that role's permissions in one statement), and
//  the small checks of texts and times the handlers share.
#include "event_service.h"
#include "tl_error.h"
#include "tl_mp.h"
#include "tl_time.h"
#include "tl_valid.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  $1 event, $2 caller's user id (NULL: anonymous), $3 service
#define S_ACCESS \
    "SELECT e.state = 'published', r.role, p.can_create, p.can_read, p.can_update, " \
    "       p.can_delete, pe.can_read, " \
    "       (extract (epoch FROM e.starts_at) * 1000)::bigint, " \
    "       (extract (epoch FROM e.ends_at) * 1000)::bigint " \
    "FROM events e " \
    "LEFT JOIN roles r ON r.event_id = e.id AND r.user_id = $2 " \
    "LEFT JOIN permissions p ON p.role = r.role AND p.service = $3 " \
    "LEFT JOIN permissions pe ON pe.role = r.role AND pe.service = 'event' " \
    "WHERE e.id = $1"

static const tl_db_statement_t s_statements [] = {
    { "event_access", S_ACCESS, 3 },
    //  The row lock alone, then event_access: a statement after the lock
    //  sees every change committed before it was granted (the role and
    //  permission rows a locking join would read as they were)
    { "event_lock", "SELECT id FROM events WHERE id = $1 FOR NO KEY UPDATE", 1 },
};

int
event_common_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

bool
event_staff (tl_call_t *call)
{
    return tl_call_user (call)
        && (tl_call_has_role (call, "admin") || tl_call_has_role (call, "super_admin"));
}

static bool
s_true (const PGresult *res, int col)
{
    const char *value = tl_db_value (res, 0, col);
    return value && value [0] == 't';
}

int
event_can_db (tl_db_t *db, tl_call_t *call, const char *id, ev_service_t service,
              ev_op_t op, bool lock, event_ref_t *event)
{
    memset (event, 0, sizeof *event);
    if (!tl_valid_uuid (id))
        return EV_HIDDEN;
    int rc = event_common_prepare (db);
    if (rc)
        return rc;
    const char *values [] = { id, tl_call_user (call), ev_service_name (service) };
    PGresult *res = NULL;
    if (lock) {
        res = tl_db_exec (db, "event_lock", 1, values, &rc);
        PQclear (res);
        if (rc)
            return rc;
    }
    res = tl_db_exec (db, "event_access", 3, values, &rc);
    if (!res)
        return rc;
    if (PQntuples (res) != 1) {
        PQclear (res);
        return EV_HIDDEN;
    }
    snprintf (event->id, sizeof event->id, "%s", id);
    event->published = s_true (res, 0);
    if (ev_role_parse (tl_db_value (res, 0, 1), &event->role) != 0)
        event->role = EV_ROLE_NONE;
    ev_access_t *access = &event->access;
    access->staff = event_staff (call);
    access->published = event->published;
    access->role = event->role;
    for (int i = 0; i < EV_OP_COUNT; i++)
        access->perm [i] = s_true (res, 2 + i);
    access->event_read = s_true (res, 6);
    event->starts_ms = tl_db_parse_int64 (tl_db_value (res, 0, 7));
    event->ends_ms = tl_db_parse_int64 (tl_db_value (res, 0, 8));
    PQclear (res);
    return ev_perm_decide (access, service, op);
}

void
event_refuse (tl_call_t *call, int decision)
{
    if (decision == EV_HIDDEN)
        tl_call_error (call, 404, "not_found", "no such event");
    else
    if (decision == EV_FORBIDDEN)
        tl_call_error (call, 403, "forbidden", "your role on this event does not allow this");
    else
        tl_call_db_error (call, decision);
}

bool
event_can (tl_call_t *call, const char *id, ev_service_t service, ev_op_t op,
           bool lock, event_ref_t *event)
{
    int decision = event_can_db (tl_call_db (call), call, id, service, op, lock, event);
    if (decision == EV_ALLOW)
        return true;
    event_refuse (call, decision);
    return false;
}

bool
event_text_ok (const char *text, long min, long max, bool lines)
{
    long chars = tl_valid_utf8_chars (text, strlen (text));
    if (chars < min || chars > max)
        return false;
    for (const unsigned char *c = (const unsigned char *) text; *c; c++)
        if ((*c < 0x20 && !(lines && (*c == '\n' || *c == '\r' || *c == '\t'))) || *c == 0x7f)
            return false;
    return true;
}

int
event_caller_email (tl_call_t *call, char email [TL_MAX_EMAIL_LEN + 1])
{
    email [0] = 0;
    if (!tl_call_user (call))
        return TL_ENOTFOUND;
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    tl_mp_pack_pairs (&body, (const char *[]) { "id", tl_call_user (call) }, 1);
    tl_msg_t *reply = NULL;
    int rc = tl_call_call (call, "auth", "user.get", body.data, body.size, &reply);
    msgpack_sbuffer_destroy (&body);
    int status = rc == 0 && reply ? tl_msg_status (reply) : 0;
    bool found = status == 200
              && tl_mp_copy (tl_mp_get (tl_msg_body (reply), "email"), email,
                             TL_MAX_EMAIL_LEN + 1);
    tl_msg_destroy (&reply);
    if (status != 200 && status != 404)
        return rc == TL_ETIMEDOUT ? TL_ETIMEDOUT : TL_EUNAVAIL;
    if (!found) {
        email [0] = 0;
        return TL_ENOTFOUND;
    }
    for (char *c = email; *c; c++)
        *c = (char) tolower ((unsigned char) *c);
    return 0;
}
