//  event_service.h — what the event service's files share: the check every
//  handler asks before it reads or writes (event_can), the checks of texts
//  and times, and the registration of each file's methods. Private to
//  services/event.
#ifndef EVENT_SERVICE_H_INCLUDED
#define EVENT_SERVICE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <libpq-fe.h>
#include <msgpack.h>

#include "tl_limits.h"
#include "tl_service.h"
#include "ev_perm.h"
#include "event_limits.h"

//  One event as the checks saw it, and the caller's standing on it.
typedef struct {
    char id [37];
    bool published;
    int64_t starts_ms, ends_ms;                 //  ms since the epoch
    ev_role_t role;                             //  the caller's
    ev_access_t access;                         //  as ev_perm_decide was asked
} event_ref_t;

//  The one question every handler asks: may the caller do `op` on
//  `service` of event `id`? Reads the event, the caller's role on it and
//  that role's permissions (on `service`, and read on `event`) in one
//  statement, so that a permission a super admin changed applies from the
//  next request on every instance; staff (caller roles admin,
//  super_admin) may do everything (ev_perm_decide). `lock` first takes
//  the event's row FOR NO KEY UPDATE on its own (inside a transaction:
//  changes of its roles and parts take turns, while orders, which only
//  refer to the event, go on), so that the statement after it reads
//  roles and permissions as committed when the lock was granted. Returns
//  true with *event filled; otherwise answers 404 (no such
//  event, or one the caller may not see: never told apart), 403 or 503 and
//  returns false.
bool event_can (tl_call_t *call, const char *id, ev_service_t service, ev_op_t op,
                bool lock, event_ref_t *event);

//  The same on a transaction's connection, without answering: returns 0
//  (allowed), EV_HIDDEN, EV_FORBIDDEN or a database code.
int event_can_db (tl_db_t *db, tl_call_t *call, const char *id, ev_service_t service,
                  ev_op_t op, bool lock, event_ref_t *event);

//  Answers the refusal `decision` of event_can_db (EV_HIDDEN, EV_FORBIDDEN
//  or a database code).
void event_refuse (tl_call_t *call, int decision);

//  The caller's email address, lower case, as the auth service tells it
//  (user.get, asked on the caller's behalf) into `email`. Returns 0,
//  TL_ENOTFOUND (no such user, or an anonymous caller), TL_ETIMEDOUT or
//  TL_EUNAVAIL (auth did not answer).
int event_caller_email (tl_call_t *call, char email [TL_MAX_EMAIL_LEN + 1]);

//  True when the caller is staff (admin or super_admin).
bool event_staff (tl_call_t *call);

//  True when `text` is `min`..`max` characters of UTF-8 without control
//  characters (line breaks and tabs too when `lines`).
bool event_text_ok (const char *text, long min, long max, bool lines);


//  SQL: the tickets of ticket row `t` that pending orders hold now. A hold
//  past its expires_at is never counted, whether or not the job that
//  expires its order has run; clock_timestamp (), not now (): the time
//  after the statement's locks were taken (README.md "Never oversell").
#define EVENT_LIVE_HOLDS \
    "(SELECT coalesce (sum (h.quantity), 0) FROM holds h " \
    " WHERE h.ticket_id = t.id AND h.expires_at > clock_timestamp ())"

//  True when the caller sees an event's hidden tickets: staff, or a role
//  that reads tickets (an event_ref_t of event_can on EV_SVC_TICKETS).
bool event_sees_hidden (const event_ref_t *event);

//  Registration of each file's methods and jobs, and its statements (each
//  handler and job thread's init). Return 0 or a code.
int event_common_prepare (tl_db_t *db);
int event_events_register (tl_service_t *svc);
int event_events_prepare (tl_db_t *db);
int event_perms_register (tl_service_t *svc);       //  /admin/permissions
int event_perms_prepare (tl_db_t *db);
int event_roles_register (tl_service_t *svc);       //  roles, invites, mail_invite
int event_roles_prepare (tl_db_t *db);
int event_tickets_register (tl_service_t *svc);
int event_tickets_prepare (tl_db_t *db);
int event_orders_register (tl_service_t *svc);      //  orders, event.expire_order
int event_orders_prepare (tl_db_t *db);
int event_parts_register (tl_service_t *svc);       //  tracks, sessions, speakers, ...
int event_parts_prepare (tl_db_t *db);
int event_notify_register (tl_service_t *svc);      //  the job event.notify
int event_notify_prepare (tl_db_t *db);

//  What users are told through the notification service (event_notify.c):
//  each enqueues the job event.notify inside the caller's transaction.
//  Return 0 or a code.
int event_notify_order_completed (tl_db_t *db, const char *order_id);
int event_notify_order_cancelled (tl_db_t *db, const char *order_id);
int event_notify_role_accepted (tl_db_t *db, const char *event_id, const char *user_id,
                                const char *role);
int event_notify_role_invite (tl_db_t *db, const char *invite_id);
//  What the event shows of the upload service (event_uploads.c)
int event_uploads_register (tl_service_t *svc);     //  /events/{id}/background
int event_uploads_prepare (tl_db_t *db);

//  After a transaction that held (kind, ref_id) for a new row failed:
//  lets the reference go at once, on a best effort (logged when it cannot).
void event_upload_release (tl_call_t *call, const char *kind, const char *ref_id);

//  Inside the transaction deleting what showed (kind, ref_id): enqueues
//  the durable job that tells the upload service once it commits.
//  Returns 0 or a code.
int event_upload_forget (tl_db_t *db, const char *kind, const char *ref_id);

//  The same, before event `event_id` is deleted, for everything it shows:
//  its background, its speakers' photos, its sponsors' logos.
int event_uploads_forget_event (tl_db_t *db, const char *event_id);

#endif
