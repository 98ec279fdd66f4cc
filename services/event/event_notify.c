//  event_notify.c — what the event service tells users through the
//  notification service (notification.create): a role invite (to the
//  invitee, when a verified account has the address: auth's
//  users.by_email), an order completed or cancelled (its buyer), a role
//  accepted (the event's other organizers).
//  Each kind has one function, called inside the transaction of the change
//  it tells: it enqueues the durable job event.notify, which exists only if
//  that transaction commits and runs on the jobs thread, so that the event
//  request never waits on the notification service and nothing is lost
//  while it is down (the job retries on its back-off; each notification
//  carries an idempotency key, so a retry makes no second one).
#include "event_service.h"
#include "tl_error.h"
#include "tl_jobs.h"
#include "tl_log.h"
#include "tl_mp.h"
#include "tl_valid.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_CALL_TIMEOUT_MS 3000
#define S_KEY_MAX         128           //  notification.create's key
#define S_MESSAGE_MAX     2000

static const tl_db_statement_t s_statements [] = {
    { "notify_order",
      "SELECT o.buyer, o.event_id, e.name FROM orders o JOIN events e ON e.id = o.event_id "
      "WHERE o.id = $1 AND o.buyer IS NOT NULL", 1 },
    //  A pending invite and its event
    { "notify_invite",
      "SELECT i.email, i.role, e.name, e.id FROM invites i JOIN events e ON e.id = i.event_id "
      "WHERE i.id = $1 AND i.used_at IS NULL AND i.expires_at > now ()", 1 },
    //  $1 event, $2 the user who accepted
    { "notify_organizers",
      "SELECT r.user_id, e.name FROM roles r JOIN events e ON e.id = r.event_id "
      "WHERE r.event_id = $1 AND r.role = 'organizer' AND r.user_id <> $2 "
      "ORDER BY r.user_id", 2 },
};

int
event_notify_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

//  Enqueues event.notify with the string pairs `pairs` (count pairs).
static int
s_enqueue (tl_db_t *db, const char *const *pairs, size_t count, const char *unique_key)
{
    msgpack_sbuffer payload;
    msgpack_sbuffer_init (&payload);
    tl_mp_pack_pairs (&payload, pairs, count);
    int rc = payload.data ? tl_jobs_enqueue (db, "event.notify", payload.data, payload.size,
                                             unique_key, 0, 0)
                          : TL_ENOMEM;
    msgpack_sbuffer_destroy (&payload);
    return rc < 0 ? rc : 0;
}

int
event_notify_order_completed (tl_db_t *db, const char *order_id)
{
    char key [96];
    snprintf (key, sizeof key, "event.notify:order:%s:completed", order_id);
    return s_enqueue (db, (const char *[]) { "kind", "order_completed", "order_id", order_id },
                      2, key);
}

int
event_notify_order_cancelled (tl_db_t *db, const char *order_id)
{
    char key [96];
    snprintf (key, sizeof key, "event.notify:order:%s:cancelled", order_id);
    return s_enqueue (db, (const char *[]) { "kind", "order_cancelled", "order_id", order_id },
                      2, key);
}

int
event_notify_role_accepted (tl_db_t *db, const char *event_id, const char *user_id,
                            const char *role)
{
    return s_enqueue (db, (const char *[]) { "kind", "role_accepted", "event_id", event_id,
                                             "user_id", user_id, "role", role }, 4, NULL);
}

int
event_notify_role_invite (tl_db_t *db, const char *invite_id)
{
    return s_enqueue (db, (const char *[]) { "kind", "role_invite", "invite_id", invite_id },
                      2, NULL);
}

//  ---------------------------------------------------------------------
//  The job: one notification.create per recipient

//  Sends one notification; 2xx done, 4xx logged and done (it will not get
//  better), anything else the job's failure.
static int
s_send (tl_job_ctx_t *job, const char *user_id, const char *key, const char *title,
        const char *message, const char *target_url)
{
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 6);
    tl_mp_pack_kv (&pk, "user_id", user_id);
    tl_mp_pack_kv (&pk, "key", key);
    tl_mp_pack_kv (&pk, "title", title);
    tl_mp_pack_kv (&pk, "message", message);
    tl_mp_pack_kv (&pk, "action", "open");
    tl_mp_pack_kv (&pk, "target_url", target_url);
    int rc = tl_service_job_send (job, "notification", "notification.create", body.data,
                                  body.size, S_CALL_TIMEOUT_MS, NULL);
    msgpack_sbuffer_destroy (&body);
    return rc;
}

static int
s_notify_order (tl_job_ctx_t *job, const char *kind)
{
    char *order_id = tl_mp_strdup (tl_mp_get (tl_job_ctx_payload (job), "order_id"), 64);
    if (!order_id || !tl_valid_uuid (order_id)) {
        free (order_id);
        return 0;
    }
    int rc = 0;
    PGresult *res = tl_db_exec (tl_job_ctx_db (job), "notify_order", 1,
                                (const char *const *) &order_id, &rc);
    if (res && PQntuples (res) == 1) {
        bool completed = strcmp (kind, "order_completed") == 0;
        char key [S_KEY_MAX + 1], message [S_MESSAGE_MAX + 1], target [160];
        snprintf (key, sizeof key, "event:order:%s:%s", order_id,
                  completed ? "completed" : "cancelled");
        snprintf (message, sizeof message, "Your order for %s %s.", tl_db_value (res, 0, 2),
                  completed ? "is complete" : "was cancelled");
        snprintf (target, sizeof target, "/events/%s/orders/%s", tl_db_value (res, 0, 1),
                  order_id);
        rc = s_send (job, tl_db_value (res, 0, 0), key,
                     completed ? "Order completed" : "Order cancelled", message, target);
    }
    else
    if (!res)
        tl_job_ctx_error (job, "order not read: %s", tl_strerror (rc));
    PQclear (res);
    free (order_id);
    return rc;
}

static int
s_notify_accepted (tl_job_ctx_t *job)
{
    const msgpack_object *payload = tl_job_ctx_payload (job);
    char event_id [40], user_id [TL_MAX_ID_LEN + 1], role [32];
    if (!tl_mp_copy (tl_mp_get (payload, "event_id"), event_id, sizeof event_id)
    ||  !tl_mp_copy (tl_mp_get (payload, "user_id"), user_id, sizeof user_id)
    ||  !tl_mp_copy (tl_mp_get (payload, "role"), role, sizeof role))
        return 0;
    int rc = 0;
    const char *values [] = { event_id, user_id };
    PGresult *res = tl_db_exec (tl_job_ctx_db (job), "notify_organizers", 2, values, &rc);
    if (!res) {
        tl_job_ctx_error (job, "organizers not read: %s", tl_strerror (rc));
        return rc;
    }
    for (int row = 0; row < PQntuples (res) && rc == 0; row++) {
        char key [S_KEY_MAX + 1], message [S_MESSAGE_MAX + 1], target [96];
        snprintf (key, sizeof key, "event:accepted:%" PRId64 ":%s", tl_job_ctx_id (job),
                  tl_db_value (res, row, 0));
        snprintf (message, sizeof message, "A %s invite to %s was accepted.", role,
                  tl_db_value (res, row, 1));
        snprintf (target, sizeof target, "/events/%s/roles", event_id);
        rc = s_send (job, tl_db_value (res, row, 0), key, "Role accepted", message, target);
    }
    PQclear (res);
    return rc;
}

//  The invitee, when a verified account has the address (auth's
//  users.by_email; 404: nobody to tell but the mail).
static int
s_notify_invite (tl_job_ctx_t *job)
{
    char *invite_id = tl_mp_strdup (tl_mp_get (tl_job_ctx_payload (job), "invite_id"), 64);
    if (!invite_id || !tl_valid_uuid (invite_id)) {
        free (invite_id);
        return 0;
    }
    int rc = 0, status = 0;
    tl_msg_t *reply = NULL;
    PGresult *res = tl_db_exec (tl_job_ctx_db (job), "notify_invite", 1,
                                (const char *const *) &invite_id, &rc);
    if (!res)
        tl_job_ctx_error (job, "invite not read: %s", tl_strerror (rc));
    else
    if (PQntuples (res) == 1) {
        msgpack_sbuffer body;
        msgpack_sbuffer_init (&body);
        tl_mp_pack_pairs (&body, (const char *[]) { "email", tl_db_value (res, 0, 0) }, 1);
        rc = tl_service_job_call (job, "auth", "users.by_email", body.data, body.size,
                                  S_CALL_TIMEOUT_MS, &status, &reply);
        msgpack_sbuffer_destroy (&body);
        char user_id [TL_MAX_ID_LEN + 1];
        if (rc == 0 && status == 200
        &&  tl_mp_copy (tl_mp_get (tl_msg_body (reply), "id"), user_id, sizeof user_id)) {
            char key [S_KEY_MAX + 1], message [S_MESSAGE_MAX + 1], target [64];
            snprintf (key, sizeof key, "event:invite:%s", invite_id);
            snprintf (message, sizeof message, "You are invited to be %s of %s: the link "
                      "to accept is in your mail.", tl_db_value (res, 0, 1),
                      tl_db_value (res, 0, 2));
            snprintf (target, sizeof target, "/events/%s", tl_db_value (res, 0, 3));
            rc = s_send (job, user_id, key, "Role invite", message, target);
        }
        else
        if (rc == 0 && status != 404) {
            tl_job_ctx_error (job, "auth.users.by_email answered %d", status);
            rc = TL_EIO;
        }
    }
    tl_msg_destroy (&reply);
    PQclear (res);
    free (invite_id);
    return rc;
}

//  event.notify {kind, ...}
static int
s_notify (tl_job_ctx_t *job)
{
    char kind [32];
    if (!tl_mp_copy (tl_mp_get (tl_job_ctx_payload (job), "kind"), kind, sizeof kind))
        return 0;
    if (strcmp (kind, "order_completed") == 0 || strcmp (kind, "order_cancelled") == 0)
        return s_notify_order (job, kind);
    if (strcmp (kind, "role_accepted") == 0)
        return s_notify_accepted (job);
    if (strcmp (kind, "role_invite") == 0)
        return s_notify_invite (job);
    tl_log (TL_LOG_WARN, NULL, "event.notify: unknown kind %s", kind);
    return 0;
}

int
event_notify_register (tl_service_t *svc)
{
    return tl_service_job (svc, "event.notify", s_notify);
}
