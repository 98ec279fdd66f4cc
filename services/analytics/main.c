//  main.c — tally-analytics: API monitoring (remote flask-monitoring-
//  dashboards, Tally's own calls) and store monitoring (README.md).
//  Registers each part's handlers and jobs and runs the service.
#include "analytics_service.h"

extern const tl_embed_t analytics_migrations [];

//  Every handler and job thread prepares every part's statements.
static int
s_thread_init (tl_db_t *db, void *arg)
{
    (void) arg;
    int rc = analytics_monitor_prepare (db);
    return rc;
}

int
main (void)
{
    tl_service_t *svc = tl_service_new ("analytics", analytics_migrations);
    int rc = svc ? 0 : 1;
    if (svc) {
        tl_service_set_thread_init (svc, s_thread_init, NULL);
        rc = analytics_monitor_register (svc);
        rc = rc ? rc : tl_service_run (svc);
    }
    tl_service_destroy (&svc);
    return rc ? 1 : 0;
}
