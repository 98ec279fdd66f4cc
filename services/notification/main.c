//  main.c — tally-notification: each user's notifications (created by
//  services over the mesh, listed, counted, marked read, deleted) and
//  their push to the gateways' Server-Sent Event streams (README.md).
//  Registers the handlers and jobs of each notification_*.c file and runs
//  the service.
#include "notification_service.h"

extern const tl_embed_t notification_migrations [];

//  Every handler and job thread prepares every file's statements.
static int
s_thread_init (tl_db_t *db, void *arg)
{
    (void) arg;
    int rc = notification_store_prepare (db);
    rc = rc ? rc : notification_jobs_prepare (db);
    return rc;
}

int
main (void)
{
    tl_service_t *svc = tl_service_new ("notification", notification_migrations);
    int rc = svc ? 0 : 1;
    if (svc) {
        tl_service_set_thread_init (svc, s_thread_init, NULL);
        rc = notification_store_register (svc);
        rc = rc ? rc : notification_jobs_register (svc);
        rc = rc ? rc : tl_service_run (svc);
    }
    tl_service_destroy (&svc);
    return rc ? 1 : 0;
}
