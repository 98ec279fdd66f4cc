//  mailer_outbox.h — the mailer's methods and jobs over its outbox table.
//  mail.send and webhook.send build the message once, store it under the
//  sender's idempotency key and enqueue its delivery in the same
//  transaction; the jobs mail.deliver and webhook.deliver send it (SMTP,
//  the spool folder, or an HTTP POST) and mark it sent only once the other
//  side accepted it. Temporary failures retry with back-off (the job's);
//  permanent ones are recorded as failed with the server's answer.
#ifndef MAILER_OUTBOX_H_INCLUDED
#define MAILER_OUTBOX_H_INCLUDED

#include "tl_service.h"

//  Prepares the outbox's statements on a handler or job thread's `db`.
//  Returns 0 or a database code.
int mailer_outbox_prepare (tl_db_t *db);

//  Reads the mailer's configuration (TALLY_SMTP_URL, TALLY_MAIL_FROM,
//  TALLY_DATA_DIR, TALLY_WEBHOOK_ALLOW_PRIVATE) and registers the methods
//  and jobs on `svc`. Returns 0 or TL_ECONFIG.
int mailer_outbox_register (tl_service_t *svc);

#endif
