//  tl_event.h — durable events between services: "a user was deleted",
//  told to every service that keeps something of theirs.
//
//  A service declares what it publishes and what it subscribes to in its
//  declaration (proto/services/<name>.json: "publishes": ["auth.user.deleted"],
//  "subscribes": ["auth.user.deleted"]); an event's name starts with its
//  publisher's. Publishing happens inside the publisher's own transaction
//  (an outbox row per subscribing service, and a durable job that delivers
//  it), so an event exists exactly when the change that caused it does.
//  Each subscribing service gets each event at least once, on one of its
//  instances, in order per subject (a later event about the same subject
//  waits until the earlier one is delivered), and the runtime runs its
//  handler at most once per event (the receiver records what it handled in
//  the same transaction as the handler's work).
//
//      //  publisher, inside a tl_db_tx:
//      tl_event_publish (db, "auth.user.deleted", user_id, body, size);
//      //  subscriber, before tl_service_run:
//      tl_service_subscribe (svc, "auth.user.deleted", s_forget_user);
#ifndef TL_EVENT_H_INCLUDED
#define TL_EVENT_H_INCLUDED

#include <msgpack.h>
#include "tl_db.h"

typedef struct _tl_event_t tl_event_t;

//  A subscriber's handler: does its work on tl_event_db (event), inside the
//  transaction that records the event handled. Returns 0, or a negative
//  code to roll back: the publisher then delivers it again later.
typedef int (tl_event_fn) (tl_event_t *event);

//  Publishes `event` about `subject` (an id, at most TL_MAX_ID_LEN) with
//  `body` (one packed MessagePack value, or NULL), inside the caller's open
//  transaction on `db` of a running service that declares it in
//  "publishes". Returns the number of subscribing services (0 is fine),
//  TL_EINVAL for an undeclared event or a bad argument, or a database code.
int tl_event_publish (tl_db_t *db, const char *event, const char *subject,
                      const void *body, size_t size);

//  What a handler is told. Borrowed, valid while the handler runs.
tl_db_t *tl_event_db (tl_event_t *self);
const char *tl_event_name (tl_event_t *self);
const char *tl_event_subject (tl_event_t *self);
const char *tl_event_publisher (tl_event_t *self);      //  service name
const msgpack_object *tl_event_body (tl_event_t *self); //  NULL when none

//  Self-test, run by ctest.
void tl_event_test (bool verbose);

#endif
