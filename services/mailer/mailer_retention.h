//  mailer_retention.h — what the outbox keeps, and for how long. A
//  message's body (the MIME message with its verification or reset code,
//  or the webhook's JSON) is needed only until it is delivered: the hourly
//  job mailer.purge drops the bodies of messages done (sent or failed)
//  more than MAILER_KEEP_BODIES_DAYS ago, and user.deleted {user_id}
//  drops everything the outbox holds for that user (bodies, subjects,
//  addresses; pending messages end as failed). A row itself stays, with
//  its id, status and times, so that outbox.get and a repeated
//  idempotency key still answer.
#ifndef MAILER_RETENTION_H_INCLUDED
#define MAILER_RETENTION_H_INCLUDED

#include "tl_service.h"

#define MAILER_KEEP_BODIES_DAYS 7   //  after sending (or failing for good)

//  Prepares the retention statements on a handler or job thread's `db`.
//  Returns 0 or a database code.
int mailer_retention_prepare (tl_db_t *db);

//  Registers user.deleted, the job mailer.purge and its hourly schedule
//  on `svc`. Returns 0 or a code.
int mailer_retention_register (tl_service_t *svc);

#endif
