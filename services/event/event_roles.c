//  event_roles.c — the roles people hold on an event: the list (roles
//  and pending invites, to the event's roles and staff), invites by email
//  (update on `event`; a mail with a single-use 7-day code, made by the
//  job event.mail_invite), accepting one (only the logged-in user whose
//  address it was sent to, as auth tells it), and removing a role
//  (organizers and staff; never the last organizer: 409).
#include "event_service.h"
#include "ev_code.h"
#include "tl_env.h"
#include "tl_error.h"
#include "tl_jobs.h"
#include "tl_log.h"
#include "tl_mp.h"
#include "tl_valid.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_CALL_TIMEOUT_MS 10000
#define S_STR(x) #x
#define S_XSTR(x) S_STR (x)

//  Links in mails: <TALLY_PUBLIC_URL>/invites?code=..., read once by register.
static char s_public_url [TL_MAX_URL_LEN + 1];

static const tl_db_statement_t s_statements [] = {
    //  Accepted roles (seniority order), then pending invites
    { "roles_list",
      "SELECT user_id, email, role, 'accepted', rfc3339 (created_at), NULL "
      "FROM roles WHERE event_id = $1 "
      "UNION ALL "
      "SELECT NULL, email, role, 'pending', rfc3339 (created_at), rfc3339 (expires_at) "
      "FROM (SELECT * FROM invites WHERE event_id = $1 AND used_at IS NULL "
      "      AND expires_at > now () ORDER BY created_at) i", 1 },
    { "invites_count",
      "SELECT count (*) FROM invites WHERE event_id = $1 AND used_at IS NULL "
      "AND expires_at > now ()", 1 },
    { "invites_replace",
      "DELETE FROM invites WHERE event_id = $1 AND email = $2 AND role = $3 "
      "AND used_at IS NULL", 3 },
    { "invites_insert",
      "INSERT INTO invites (event_id, email, role, invited_by, expires_at) "
      "VALUES ($1, $2, $3, $4, now () + make_interval (days => $5::int)) "
      "RETURNING id, rfc3339 (created_at), rfc3339 (expires_at)", 5 },
    //  The job: the invite and its event, while it waits
    { "invites_for_mail",
      "SELECT i.email, i.role, e.name, i.event_id FROM invites i "
      "JOIN events e ON e.id = i.event_id "
      "WHERE i.id = $1 AND i.used_at IS NULL AND i.expires_at > now ()", 1 },
    { "invites_set_code",
      "UPDATE invites SET code_hash = decode ($2, 'hex') WHERE id = $1 AND used_at IS NULL", 2 },
    //  Accepting: $1 event, $2 the code's hash
    { "invites_by_code",
      "SELECT id, email, role, encode (code_hash, 'hex') FROM invites "
      "WHERE event_id = $1 AND code_hash = decode ($2, 'hex') AND used_at IS NULL "
      "AND expires_at > now () FOR UPDATE", 2 },
    { "invites_use",
      "UPDATE invites SET used_at = now (), used_by = $2 WHERE id = $1", 2 },
    { "roles_count", "SELECT count (*) FROM roles WHERE event_id = $1", 1 },
    { "roles_organizers",
      "SELECT count (*) FROM roles WHERE event_id = $1 AND role = 'organizer'", 1 },
    { "roles_of", "SELECT role FROM roles WHERE event_id = $1 AND user_id = $2", 2 },
    //  $1 event, $2 user, $3 role, $4 email: a role taken replaces the one held
    { "roles_set",
      "INSERT INTO roles (event_id, user_id, role, email) VALUES ($1, $2, $3, $4) "
      "ON CONFLICT (event_id, user_id) DO UPDATE SET role = $3, email = $4", 4 },
    { "roles_delete", "DELETE FROM roles WHERE event_id = $1 AND user_id = $2", 2 },
    //  A deleted user ($1): the events they organize (locked), their roles,
    //  the hand-over, and every trace of them in invites, events and orders
    { "gone_organized",
      "SELECT e.id FROM events e JOIN roles r ON r.event_id = e.id "
      "WHERE r.user_id = $1 AND r.role = 'organizer' ORDER BY e.id FOR UPDATE OF e", 1 },
    { "gone_roles", "DELETE FROM roles WHERE user_id = $1", 1 },
    //  The next role by seniority: coorganizer, track_organizer, moderator,
    //  the oldest first
    { "gone_hand_over",
      "UPDATE roles SET role = 'organizer' WHERE (event_id, user_id) = "
      "(SELECT event_id, user_id FROM roles WHERE event_id = $1 "
      " AND NOT EXISTS (SELECT 1 FROM roles o WHERE o.event_id = $1 AND o.role = 'organizer') "
      " ORDER BY array_position (ARRAY['coorganizer', 'track_organizer', 'moderator'], role), "
      " created_at, user_id LIMIT 1)", 1 },
    { "gone_unpublish",
      "UPDATE events SET state = 'draft', updated_at = now () WHERE id = $1 "
      "AND NOT EXISTS (SELECT 1 FROM roles WHERE event_id = $1 AND role = 'organizer')", 1 },
    { "gone_invites",
      "UPDATE invites SET invited_by = CASE WHEN invited_by = $1 THEN NULL ELSE invited_by END, "
      "  used_by = CASE WHEN used_by = $1 THEN NULL ELSE used_by END "
      "WHERE invited_by = $1 OR used_by = $1", 1 },
    { "gone_creator", "UPDATE events SET creator = NULL WHERE creator = $1", 1 },
    //  Invites used or expired EV_INVITE_KEEP_DAYS ago, a batch at a time
    //  ($1: the clock, ms)
    { "invites_purge",
      "DELETE FROM invites WHERE id IN (SELECT id FROM invites "
      "WHERE coalesce (used_at, expires_at) < to_timestamp ($1::float8 / 1000) "
      "  - make_interval (days => " S_XSTR (EV_INVITE_KEEP_DAYS) ") "
      "LIMIT " S_XSTR (EV_PURGE_BATCH) ")", 1 },
    { "gone_orders", "UPDATE orders SET buyer = NULL, updated_at = now () WHERE buyer = $1", 1 },
};

int
event_roles_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

//  Runs a statement of one or two params that answers one count.
static long
s_count (tl_db_t *db, const char *name, int nparams, const char *const *values)
{
    int rc = 0;
    PGresult *res = tl_db_exec (db, name, nparams, values, &rc);
    long count = res ? atol (tl_db_value (res, 0, 0)) : rc;
    PQclear (res);
    return count;
}

//  ---------------------------------------------------------------------
//  GET /events/{id}/roles: the event's roles and staff only

static void
s_list (tl_call_t *call)
{
    const char *id = tl_call_param (call, "id");
    event_ref_t event;
    if (!event_can (call, id, EV_SVC_EVENT, EV_OP_READ, false, &event))
        return;
    if (event.role == EV_ROLE_NONE && !event.access.staff) {
        tl_call_error (call, 403, "forbidden", "only the event's roles see its roles");
        return;
    }
    int err = 0;
    PGresult *res = tl_db_exec (tl_call_db (call), "roles_list", 1, &id, &err);
    if (!res) {
        tl_call_db_error (call, err);
        return;
    }
    static const char *keys [] = { "user_id", "email", "role", "status", "created_at",
                                   "expires_at" };
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_map (pk, 2);
    tl_mp_pack_str (pk, "items");
    int rows = PQntuples (res);
    msgpack_pack_array (pk, (uint32_t) rows);
    for (int row = 0; row < rows; row++) {
        msgpack_pack_map (pk, 6);
        for (int col = 0; col < 6; col++)
            tl_mp_pack_kv (pk, keys [col], tl_db_value (res, row, col));
    }
    tl_mp_pack_str (pk, "next_cursor");
    msgpack_pack_nil (pk);
    PQclear (res);
}

//  ---------------------------------------------------------------------
//  POST /events/{id}/roles {email, role}

typedef struct {
    tl_call_t *call;
    const char *email, *role;
    int decision;
    bool full;
    PGresult *res;              //  the new invite
} s_invite_t;

static int
s_invite_tx (tl_db_t *db, void *arg)
{
    s_invite_t *invite = (s_invite_t *) arg;
    PQclear (invite->res);
    invite->res = NULL;
    const char *id = tl_call_param (invite->call, "id");
    event_ref_t event;
    int rc = event_can_db (db, invite->call, id, EV_SVC_EVENT, EV_OP_UPDATE, true, &event);
    invite->decision = rc > 0 ? rc : 0;
    if (rc)
        return rc < 0 ? rc : 0;
    const char *replace [] = { id, invite->email, invite->role };
    long count = tl_db_exec_count (db, "invites_replace", 3, replace);
    if (count < 0)
        return (int) count;
    count = s_count (db, "invites_count", 1, &id);
    if (count < 0)
        return (int) count;
    invite->full = count >= EV_MAX_INVITES_PER_EVENT;
    if (invite->full)
        return 0;
    char days [16];
    snprintf (days, sizeof days, "%d", EV_INVITE_TTL_DAYS);
    const char *values [] = { id, invite->email, invite->role, tl_call_user (invite->call),
                              days };
    invite->res = tl_db_exec (db, "invites_insert", 5, values, &rc);
    if (!invite->res)
        return rc;
    msgpack_sbuffer payload;
    msgpack_sbuffer_init (&payload);
    tl_mp_pack_pairs (&payload, (const char *[]) {
        "invite_id", tl_db_value (invite->res, 0, 0) }, 1);
    rc = tl_jobs_enqueue (db, "event.mail_invite", payload.data, payload.size, NULL, 0, 0);
    msgpack_sbuffer_destroy (&payload);
    return rc < 0 ? rc : event_notify_role_invite (db, tl_db_value (invite->res, 0, 0));
}

static void
s_invite (tl_call_t *call)
{
    char *email = NULL, *role_name = NULL;
    if (!tl_call_text (call, NULL, "email", NULL, TL_MAX_EMAIL_LEN, &email, NULL)
    ||  !tl_call_text (call, NULL, "role", NULL, 32, &role_name, NULL))
        goto done;
    for (char *c = email; c && *c; c++)
        *c = (char) tolower ((unsigned char) *c);
    ev_role_t role;
    if (!email || !tl_valid_email (email)) {
        tl_call_field_error (call, 400, "invalid", "email", "must be an email address");
        goto done;
    }
    if (ev_role_parse (role_name, &role) != 0) {
        tl_call_field_error (call, 400, "invalid", "role",
                             "must be organizer, coorganizer, track_organizer or moderator");
        goto done;
    }
    s_invite_t invite = { call, email, ev_role_name (role), 0, false, NULL };
    int err = tl_db_tx (tl_call_db (call), s_invite_tx, &invite);
    if (err)
        tl_call_db_error (call, err);
    else
    if (invite.decision)
        event_refuse (call, invite.decision);
    else
    if (invite.full)
        tl_call_error (call, 422, "too_many_invites", "an event has at most %d pending invites",
                       EV_MAX_INVITES_PER_EVENT);
    else {
        msgpack_packer *pk = tl_call_reply (call, 201);
        msgpack_pack_map (pk, 6);
        tl_mp_pack_kv (pk, "user_id", NULL);
        tl_mp_pack_kv (pk, "email", email);
        tl_mp_pack_kv (pk, "role", ev_role_name (role));
        tl_mp_pack_kv (pk, "status", "pending");
        tl_mp_pack_kv (pk, "created_at", tl_db_value (invite.res, 0, 1));
        tl_mp_pack_kv (pk, "expires_at", tl_db_value (invite.res, 0, 2));
    }
    PQclear (invite.res);
done:
    free (email);
    free (role_name);
}

//  ---------------------------------------------------------------------
//  POST /events/{id}/roles/accept {code}

//  The caller's email address as auth tells it (event_caller_email).
//  Answers 503 / 504 (auth did not answer) or 403 (no such user) and
//  returns false.
static bool
s_caller_email (tl_call_t *call, char email [TL_MAX_EMAIL_LEN + 1])
{
    int rc = event_caller_email (call, email);
    if (rc == TL_ENOTFOUND)
        tl_call_error (call, 403, "not_your_invite", "this invite was sent to someone else");
    else
    if (rc)
        tl_call_error (call, rc == TL_ETIMEDOUT ? 504 : 503, "unavailable",
                       "the accounts service did not answer");
    return rc == 0;
}

typedef struct {
    tl_call_t *call;
    const char *hash, *email;
    int status;                 //  an answer instead of the role, or 0
    const char *code, *why;
    char role [32];
} s_accept_t;

static int
s_accept_tx (tl_db_t *db, void *arg)
{
    s_accept_t *accept = (s_accept_t *) arg;
    accept->status = 0;
    const char *id = tl_call_param (accept->call, "id");
    const char *user = tl_call_user (accept->call);
    //  The event's roles change one at a time
    event_ref_t event;
    int rc = event_can_db (db, accept->call, id, EV_SVC_EVENT, EV_OP_READ, true, &event);
    if (rc < 0)
        return rc;
    const char *find [] = { id, accept->hash };
    PGresult *res = tl_db_exec (db, "invites_by_code", 2, find, &rc);
    if (!res)
        return rc;
    bool ok = PQntuples (res) == 1 && ev_code_hex_equal (tl_db_value (res, 0, 3), accept->hash);
    if (!ok) {
        PQclear (res);
        accept->status = 400, accept->code = "invalid_code";
        accept->why = "the invite code is invalid, used or expired";
        return 0;
    }
    if (strcmp (tl_db_value (res, 0, 1), accept->email) != 0) {
        PQclear (res);
        accept->status = 403, accept->code = "not_your_invite";
        accept->why = "this invite was sent to someone else";
        return 0;
    }
    char invite_id [37];
    snprintf (invite_id, sizeof invite_id, "%s", tl_db_value (res, 0, 0));
    snprintf (accept->role, sizeof accept->role, "%s", tl_db_value (res, 0, 2));
    PQclear (res);
    //  The only organizer may not become something else
    if (event.role == EV_ROLE_ORGANIZER && strcmp (accept->role, "organizer") != 0) {
        long organizers = s_count (db, "roles_organizers", 1, &id);
        if (organizers < 0)
            return (int) organizers;
        if (organizers <= 1) {
            accept->status = 409, accept->code = "last_organizer";
            accept->why = "an event keeps at least one organizer";
            return 0;
        }
    }
    if (event.role == EV_ROLE_NONE) {
        long roles = s_count (db, "roles_count", 1, &id);
        if (roles < 0)
            return (int) roles;
        if (roles >= EV_MAX_ROLES_PER_EVENT) {
            accept->status = 422, accept->code = "too_many_roles";
            accept->why = "an event has at most 200 roles";
            return 0;
        }
    }
    const char *set [] = { id, user, accept->role, accept->email };
    long count = tl_db_exec_count (db, "roles_set", 4, set);
    const char *use [] = { invite_id, user };
    count = count < 0 ? count : tl_db_exec_count (db, "invites_use", 2, use);
    return count < 0 ? (int) count : event_notify_role_accepted (db, id, user, accept->role);
}

static void
s_accept (tl_call_t *call)
{
    char *code = NULL;
    char hash [EV_CODE_HASH_BYTES * 2 + 1];
    char email [TL_MAX_EMAIL_LEN + 1];
    if (!tl_call_text (call, NULL, "code", NULL, 128, &code, NULL))
        return;
    bool valid = ev_code_hash_hex (code, hash) == 0;
    if (code)
        sodium_memzero (code, strlen (code));
    free (code);
    if (!valid) {
        tl_call_field_error (call, 400, "invalid_code", "code",
                             "the invite code is invalid, used or expired");
        return;
    }
    if (!tl_valid_uuid (tl_call_param (call, "id"))) {
        tl_call_error (call, 400, "invalid_code", "the invite code is invalid, used or expired");
        return;
    }
    if (!s_caller_email (call, email))
        return;
    s_accept_t accept = { call, hash, email, 0, NULL, NULL, "" };
    int err = tl_db_tx (tl_call_db (call), s_accept_tx, &accept);
    if (err)
        tl_call_db_error (call, err);
    else
    if (accept.status)
        tl_call_error (call, accept.status, accept.code, "%s", accept.why);
    else {
        msgpack_packer *pk = tl_call_reply (call, 200);
        msgpack_pack_map (pk, 5);
        tl_mp_pack_kv (pk, "event_id", tl_call_param (call, "id"));
        tl_mp_pack_kv (pk, "user_id", tl_call_user (call));
        tl_mp_pack_kv (pk, "email", email);
        tl_mp_pack_kv (pk, "role", accept.role);
        tl_mp_pack_kv (pk, "status", "accepted");
    }
}

//  ---------------------------------------------------------------------
//  DELETE /events/{id}/roles/{user_id}: organizers and staff

typedef struct {
    tl_call_t *call;
    int decision;
    int status;                 //  404 (no such role), 409 (last organizer)
} s_remove_t;

static int
s_remove_tx (tl_db_t *db, void *arg)
{
    s_remove_t *remove = (s_remove_t *) arg;
    remove->status = 0;
    tl_call_t *call = remove->call;
    const char *id = tl_call_param (call, "id");
    const char *target = tl_call_param (call, "user_id");
    event_ref_t event;
    int rc = event_can_db (db, call, id, EV_SVC_EVENT, EV_OP_READ, true, &event);
    remove->decision = rc > 0 ? rc : 0;
    if (rc)
        return rc < 0 ? rc : 0;
    if (event.role != EV_ROLE_ORGANIZER && !event.access.staff) {
        remove->decision = EV_FORBIDDEN;
        return 0;
    }
    const char *values [] = { id, target };
    PGresult *res = tl_db_exec (db, "roles_of", 2, values, &rc);
    if (!res)
        return rc;
    bool found = PQntuples (res) == 1;
    bool organizer = found && strcmp (tl_db_value (res, 0, 0), "organizer") == 0;
    PQclear (res);
    if (!found) {
        remove->status = 404;
        return 0;
    }
    if (organizer) {
        long organizers = s_count (db, "roles_organizers", 1, &id);
        if (organizers < 0)
            return (int) organizers;
        if (organizers <= 1) {
            remove->status = 409;
            return 0;
        }
    }
    long count = tl_db_exec_count (db, "roles_delete", 2, values);
    return count < 0 ? (int) count : 0;
}

static void
s_remove (tl_call_t *call)
{
    const char *target = tl_call_param (call, "user_id");
    if (!target || !*target || strlen (target) > TL_MAX_ID_LEN) {
        tl_call_error (call, 404, "not_found", "no such role");
        return;
    }
    s_remove_t remove = { call, 0, 0 };
    int err = tl_db_tx (tl_call_db (call), s_remove_tx, &remove);
    if (err)
        tl_call_db_error (call, err);
    else
    if (remove.decision)
        event_refuse (call, remove.decision);
    else
    if (remove.status == 404)
        tl_call_error (call, 404, "not_found", "no such role");
    else
    if (remove.status == 409)
        tl_call_error (call, 409, "last_organizer",
                       "an event keeps at least one organizer: make another one first");
    else
        tl_call_reply_empty (call, 204);
}

//  ---------------------------------------------------------------------
//  event.mail_invite {invite_id}: makes the invite's code, keeps its hash
//  and mails the link, unless the invite was used, replaced or expired
//  meanwhile. The mail's key names this job and attempt: a retry after a
//  rolled-back attempt mails the new code.

static int
s_mail_invite (tl_job_ctx_t *job)
{
    char *invite_id = tl_mp_strdup (tl_mp_get (tl_job_ctx_payload (job), "invite_id"), 64);
    if (!invite_id || !tl_valid_uuid (invite_id)) {
        free (invite_id);
        return 0;                       //  nothing to do with a bad payload
    }
    tl_db_t *db = tl_job_ctx_db (job);
    int rc = 0;
    PGresult *res = tl_db_exec (db, "invites_for_mail", 1, (const char *const *) &invite_id, &rc);
    if (!res || PQntuples (res) != 1) {
        if (!res)
            tl_job_ctx_error (job, "invite not read: %s", tl_strerror (rc));
        PQclear (res);
        free (invite_id);
        return rc;
    }
    char code [EV_CODE_TEXT_LEN + 1], hex [EV_CODE_HASH_BYTES * 2 + 1];
    ev_code_new (code);
    ev_code_hash_hex (code, hex);
    const char *values [] = { invite_id, hex };
    long count = tl_db_exec_count (db, "invites_set_code", 2, values);
    if (count < 0) {
        tl_job_ctx_error (job, "code not stored: %s", tl_db_errmsg (db));
        rc = (int) count;
        goto done;
    }
    char key [128], link [TL_MAX_URL_LEN + 160];
    snprintf (key, sizeof key, "event:invite:%lld:%d", (long long) tl_job_ctx_id (job),
              tl_job_ctx_attempt (job));
    snprintf (link, sizeof link, "%s/invites?code=%s&event=%s", s_public_url, code,
              tl_db_value (res, 0, 3));
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 4);
    tl_mp_pack_kv (&pk, "key", key);
    tl_mp_pack_kv (&pk, "to", tl_db_value (res, 0, 0));
    tl_mp_pack_kv (&pk, "template", "event_invite");
    tl_mp_pack_str (&pk, "vars");
    msgpack_pack_map (&pk, 3);
    tl_mp_pack_kv (&pk, "event_name", tl_db_value (res, 0, 2));
    tl_mp_pack_kv (&pk, "role", tl_db_value (res, 0, 1));
    tl_mp_pack_kv (&pk, "link", link);
    rc = tl_service_job_send (job, "mailer", "mail.send", body.data, body.size,
                              S_CALL_TIMEOUT_MS, NULL);
    msgpack_sbuffer_destroy (&body);
    sodium_memzero (link, sizeof link);
done:
    sodium_memzero (code, sizeof code);
    PQclear (res);
    free (invite_id);
    return rc;
}

//  ---------------------------------------------------------------------
//  The event auth.user.deleted (subject: the user id): their roles go,
//  their orders stay without them (the organizers' records), and an event
//  they were the only organizer of passes to its next role by seniority
//  or, with none left, goes back to draft; in the transaction that records
//  the event handled.

static int
s_user_deleted (tl_event_t *event)
{
    tl_db_t *db = tl_event_db (event);
    const char *user = tl_event_subject (event);
    int rc = 0;
    PGresult *organized = tl_db_exec (db, "gone_organized", 1, &user, &rc);
    if (!organized)
        return rc;
    long count = tl_db_exec_count (db, "gone_roles", 1, &user);
    long handed = 0, unpublished = 0;
    for (int row = 0; count >= 0 && row < PQntuples (organized); row++) {
        const char *id = tl_db_value (organized, row, 0);
        count = tl_db_exec_count (db, "gone_hand_over", 1, &id);
        handed += count > 0 ? count : 0;
        if (count == 0) {
            count = tl_db_exec_count (db, "gone_unpublish", 1, &id);
            unpublished += count > 0 ? count : 0;
        }
    }
    PQclear (organized);
    count = count < 0 ? count : tl_db_exec_count (db, "gone_invites", 1, &user);
    count = count < 0 ? count : tl_db_exec_count (db, "gone_creator", 1, &user);
    long orders = count < 0 ? count : tl_db_exec_count (db, "gone_orders", 1, &user);
    if (orders < 0)
        return (int) orders;
    tl_log (TL_LOG_INFO, NULL, "forgot user %s (%ld order(s) kept without them, %ld event(s) "
            "handed over, %ld back to draft)", user, orders, handed, unpublished);
    return 0;
}

//  event.purge_invites (daily): invites used or expired long ago go.
static int
s_purge_invites (tl_job_ctx_t *job)
{
    long total = tl_job_ctx_purge (job, "invites_purge", EV_PURGE_BATCH);
    if (total > 0)
        tl_log (TL_LOG_INFO, NULL, "removed %ld old invite(s)", total);
    return total < 0 ? (int) total : 0;
}

int
event_roles_register (tl_service_t *svc)
{
    if (tl_env_public_url (s_public_url, sizeof s_public_url))
        return TL_ECONFIG;
    int rc = tl_service_on (svc, "roles.list", s_list);
    rc = rc ? rc : tl_service_on (svc, "roles.invite", s_invite);
    rc = rc ? rc : tl_service_on (svc, "roles.accept", s_accept);
    rc = rc ? rc : tl_service_on (svc, "roles.delete", s_remove);
    rc = rc ? rc : tl_service_job (svc, "event.mail_invite", s_mail_invite);
    rc = rc ? rc : tl_service_subscribe (svc, "auth.user.deleted", s_user_deleted);
    rc = rc ? rc : tl_service_job (svc, "event.purge_invites", s_purge_invites);
    rc = rc ? rc : tl_service_schedule (svc, "event.purge_invites", "event.purge_invites",
                                        "daily");
    return rc;
}
