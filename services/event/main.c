//  main.c — tally-event: events, the roles people hold on them, the
//  permission table, tickets and orders, and the programme (tracks,
//  sessions, speakers, sponsors, microlocations; README.md). Registers the
//  handlers, jobs and subscriptions of each event_*.c file and runs the
//  service.
#include "event_service.h"

extern const tl_embed_t event_migrations [];

//  Every handler and job thread prepares every file's statements.
static int
s_thread_init (tl_db_t *db, void *arg)
{
    (void) arg;
    int rc = event_common_prepare (db);
    rc = rc ? rc : event_events_prepare (db);
    rc = rc ? rc : event_perms_prepare (db);
    rc = rc ? rc : event_roles_prepare (db);
    rc = rc ? rc : event_tickets_prepare (db);
    rc = rc ? rc : event_orders_prepare (db);
    rc = rc ? rc : event_parts_prepare (db);
    rc = rc ? rc : event_notify_prepare (db);
    rc = rc ? rc : event_uploads_prepare (db);
    return rc;
}

int
main (void)
{
    tl_service_t *svc = tl_service_new ("event", event_migrations);
    int rc = svc ? 0 : 1;
    if (svc) {
        tl_service_set_thread_init (svc, s_thread_init, NULL);
        rc = event_events_register (svc);
        rc = rc ? rc : event_perms_register (svc);
        rc = rc ? rc : event_roles_register (svc);
        rc = rc ? rc : event_tickets_register (svc);
        rc = rc ? rc : event_orders_register (svc);
        rc = rc ? rc : event_parts_register (svc);
        rc = rc ? rc : event_notify_register (svc);
        rc = rc ? rc : event_uploads_register (svc);
        rc = rc ? rc : tl_service_run (svc);
    }
    tl_service_destroy (&svc);
    return rc ? 1 : 0;
}
