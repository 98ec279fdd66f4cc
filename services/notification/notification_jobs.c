//  notification_jobs.c — what goes without being asked: notifications
//  older than NT_KEEP_DAYS (and the keys of their creates) by the daily job
//  notification.purge, and everything of a deleted user (auth.user.deleted).
#include "notification_service.h"
#include "tl_log.h"

#include <stdio.h>

#define S_STR(x) #x
#define S_XSTR(x) S_STR (x)

static const tl_db_statement_t s_statements [] = {
    //  $1: the run's clock, ms
    { "purge_notifications",
      "DELETE FROM notifications WHERE id IN (SELECT id FROM notifications "
      "WHERE created_at < to_timestamp ($1::float8 / 1000) "
      "  - make_interval (days => " S_XSTR (NT_KEEP_DAYS) ") "
      "LIMIT " S_XSTR (NT_PURGE_BATCH) ")", 1 },
    { "purge_keys",
      "DELETE FROM keys WHERE (user_id, key) IN (SELECT user_id, key FROM keys "
      "WHERE created_at < to_timestamp ($1::float8 / 1000) "
      "  - make_interval (days => " S_XSTR (NT_KEEP_DAYS) ") "
      "LIMIT " S_XSTR (NT_PURGE_BATCH) ")", 1 },
    { "gone_notifications", "DELETE FROM notifications WHERE user_id = $1", 1 },
    { "gone_keys", "DELETE FROM keys WHERE user_id = $1", 1 },
    { "gone_counter", "DELETE FROM counters WHERE user_id = $1", 1 },
};

int
notification_jobs_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

//  notification.purge (daily): notifications and keys older than
//  NT_KEEP_DAYS at the run's clock go, a batch at a time.
static int
s_purge (tl_job_ctx_t *job)
{
    long notifications = tl_job_ctx_purge (job, "purge_notifications", NT_PURGE_BATCH);
    long keys = notifications < 0 ? notifications
              : tl_job_ctx_purge (job, "purge_keys", NT_PURGE_BATCH);
    if (keys < 0)
        return (int) keys;
    if (notifications + keys > 0)
        tl_log (TL_LOG_INFO, NULL, "removed %ld old notification(s), %ld old key(s)",
                notifications, keys);
    return 0;
}

//  auth.user.deleted (subject: the user id): their notifications, keys
//  and counter go, in the transaction that records the event handled.
static int
s_user_deleted (tl_event_t *event)
{
    tl_db_t *db = tl_event_db (event);
    const char *user = tl_event_subject (event);
    long count = tl_db_exec_count (db, "gone_notifications", 1, &user);
    long removed = count;
    count = count < 0 ? count : tl_db_exec_count (db, "gone_keys", 1, &user);
    count = count < 0 ? count : tl_db_exec_count (db, "gone_counter", 1, &user);
    if (count < 0)
        return (int) count;
    tl_log (TL_LOG_INFO, NULL, "forgot user %s (%ld notification(s))", user, removed);
    return 0;
}

int
notification_jobs_register (tl_service_t *svc)
{
    int rc = tl_service_job (svc, "notification.purge", s_purge);
    rc = rc ? rc : tl_service_schedule (svc, "notification.purge", "notification.purge", "daily");
    rc = rc ? rc : tl_service_subscribe (svc, "auth.user.deleted", s_user_deleted);
    return rc;
}
