//  tl_private.h — what only the runtime (tl_service.c) uses of the shared
//  classes, kept out of the headers every handler includes (as CZMQ keeps
//  czmq_classes.h). A service's code never includes it.
#ifndef TL_PRIVATE_H_INCLUDED
#define TL_PRIVATE_H_INCLUDED

#include "tl_call.h"
#include "tl_event.h"
#include "tl_jobs.h"

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
