//  main.c — tally-analytics: API monitoring (remote flask-monitoring-
//  dashboards and Tally's own calls, issue #14) and store monitoring
//  (uptime and downtime in business hours, issue #15; README.md). Each
//  part registers its handlers, jobs and statements through one pair of
//  functions.
#include "analytics_service.h"
#include "an_report_doc.h"

#include <malloc.h>

extern const tl_embed_t analytics_migrations [];

//  Every handler and job thread prepares every part's statements.
static int
s_thread_init (tl_db_t *db, void *arg)
{
    (void) arg;
    int rc = analytics_monitor_prepare (db);
    return rc ? rc : analytics_stores_prepare (db);
}

int
main (void)
{
    //  Blocks of 128 KiB and more (a streamed body's chunks, a status
    //  load's polls) are mapped and unmapped, never kept by a thread's
    //  arena: with glibc's rising threshold, each 90 MB load left 20 to 30
    //  MB more resident (measured: 18 MB flat with this, 100 MB after six
    //  loads without)
    mallopt (M_MMAP_THRESHOLD, 128 * 1024);
    tl_service_t *svc = tl_service_new ("analytics", analytics_migrations);
    int rc = svc ? 0 : 1;
    if (svc) {
        tl_service_set_thread_init (svc, s_thread_init, NULL);
        rc = analytics_monitor_register (svc);
        rc = rc ? rc : analytics_stores_register (svc);
        rc = rc ? rc : tl_service_run (svc);
    }
    tl_service_destroy (&svc);
    an_report_doc_release_fonts ();     //  cairo's and fontconfig's caches
    return rc ? 1 : 0;
}
