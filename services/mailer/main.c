//  main.c — tally-mailer: delivers the mail and webhooks other services ask
//  for, from a durable outbox (see mailer_outbox.h and README.md).
#include "mailer_outbox.h"
#include "mailer_retention.h"
#include "tl_log.h"
#include "tl_service.h"


extern const tl_embed_t mailer_migrations [];

//  Every handler and job thread prepares every file's statements.
static int
s_thread_init (tl_db_t *db, void *arg)
{
    int rc = mailer_outbox_prepare (db);
    return rc ? rc : mailer_retention_prepare (db);
}

int
main (void)
{
    tl_service_t *svc = tl_service_new ("mailer", mailer_migrations);
    int rc = -1;
    if (svc) {
        tl_service_set_thread_init (svc, s_thread_init, NULL);
        rc = mailer_outbox_register (svc);
        rc = rc ? rc : mailer_retention_register (svc);
    }
    if (rc == 0)
        rc = tl_service_run (svc);
    tl_service_destroy (&svc);
    return rc ? 1 : 0;
}
