//  main.c — tally-tracker: trackers, logs, stats, charts, CSV, mood
//  boards, reminders and monthly reports (README.md). Registers the
//  handlers and jobs of each tracker_*.c file and runs the service.
#include "tracker_service.h"
#include "tl_log.h"
#include "trk_chart.h"


extern const tl_embed_t tracker_migrations [];

//  Every handler and job thread prepares every file's statements.
static int
s_thread_init (tl_db_t *db, void *arg)
{
    int rc = tracker_trackers_prepare (db);
    rc = rc ? rc : tracker_logs_prepare (db);
    rc = rc ? rc : tracker_stats_prepare (db);
    rc = rc ? rc : tracker_csv_prepare (db);
    rc = rc ? rc : tracker_reports_prepare (db);
    return rc;
}

int
main (void)
{
    tl_service_t *svc = tl_service_new ("tracker", tracker_migrations);
    int rc = svc ? 0 : 1;
    if (svc) {
        tl_service_set_thread_init (svc, s_thread_init, NULL);
        rc = tracker_trackers_register (svc);
        rc = rc ? rc : tracker_logs_register (svc);
        rc = rc ? rc : tracker_stats_register (svc);
        rc = rc ? rc : tracker_csv_register (svc);
        rc = rc ? rc : tracker_reports_register (svc);
        rc = rc ? rc : tl_service_run (svc);
    }
    tl_service_destroy (&svc);
    trk_chart_release_fonts ();     //  cairo's and fontconfig's caches
    return rc ? 1 : 0;
}
