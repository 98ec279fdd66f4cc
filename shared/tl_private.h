//  tl_private.h — what only the runtime (tl_service.c) uses of the shared
//  classes, kept out of the headers every handler includes (as CZMQ keeps
//  czmq_classes.h). A service's code never includes it.
#ifndef TL_PRIVATE_H_INCLUDED
#define TL_PRIVATE_H_INCLUDED

#include "tl_call.h"
#include "tl_event.h"
#include "tl_jobs.h"

//  --- tl_call: the runtime's side of a call ---------------------------------

//  Wraps a decoded request (taken) for a handler thread with database `db`.
tl_call_t *tl_call_new (tl_msg_t **request_p, tl_db_t *db);
void tl_call_destroy (tl_call_t **self_p);
//  How the runtime makes a handler's nested call (tl_call_call): sends
//  `request` (taken; id and parent are the runtime's to set) on behalf of
//  the call's own request and waits for its reply until `deadline` (ms
//  since the epoch). Returns 0 and the reply in *reply_p (the caller's),
//  TL_ETIMEDOUT, or another negative code when it could not be sent.
typedef int (tl_call_nested_fn) (void *arg, tl_msg_t **request_p, uint64_t deadline,
                                 tl_msg_t **reply_p);
//  Connects the call to the runtime: `nested` (with `arg`, borrowed) makes
//  its nested calls. Without it tl_call_call answers TL_EUNAVAIL.
void tl_call_set_runtime (tl_call_t *self, tl_call_nested_fn *nested, void *arg);
//  Builds the reply message (the caller's): id copied from the request.
tl_msg_t *tl_call_take_reply (tl_call_t *self);
//  Sets the reply from a stored, encoded reply message (idempotent replay).
int tl_call_replay (tl_call_t *self, const void *data, size_t size);

//  --- tl_event: delivery and receipt ----------------------------------------

//  The durable job that delivers one outbox row (kind TL_EVENT_JOB,
//  payload {id}) to its subscriber's events.deliver, in order per
//  (subscriber, subject).
#define TL_EVENT_JOB "tl.event"
int tl_event_deliver_job (tl_job_ctx_t *job);

//  The body of events.deliver {id, event, subject, body?}, from a
//  publisher (caller service:<publisher>): runs the handler `lookup` gives
//  for the event once per (publisher, id), in one transaction with the
//  record of it, and answers 200 (also for one handled before).
typedef tl_event_fn *(tl_event_lookup_fn) (const char *event);
void tl_event_receive (tl_call_t *call, tl_event_lookup_fn *lookup);

//  Drops delivered outbox rows after 7 days and inbox records after 60
//  (far past any redelivery). Returns how many, or a negative code.
int tl_event_purge (tl_db_t *db);

#endif
