//  mailer_retention.c — dropping message bodies a week after delivery, and
//  all of a deleted user's messages (see mailer_retention.h).
#include "mailer_retention.h"
#include "tl_error.h"
#include "tl_jobs.h"
#include "tl_limits.h"
#include "tl_log.h"
#include "tl_msg.h"
#include "tl_mp.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

#define S_PURGE_BATCH 10000
#define S_STR(x) #x
#define S_XSTR(x) S_STR(x)

static const tl_db_statement_t s_statements [] = {
    //  Bodies of messages done before the clock ($1, ms) less the days kept,
    //  a batch at a time
    { "outbox_purge_bodies",
      "UPDATE outbox SET message = NULL WHERE id IN (SELECT id FROM outbox "
      "WHERE message IS NOT NULL AND status <> 'pending' "
      "AND coalesce (sent_at, created_at) < to_timestamp ($1::float8 / 1000) "
      "    - interval '" S_XSTR (MAILER_KEEP_BODIES_DAYS) " days' "
      "LIMIT " S_XSTR (S_PURGE_BATCH) ")", 1 },
    //  Everything but the row's bones, for user $1; pending ones end failed
    { "outbox_forget_user",
      "UPDATE outbox SET message = NULL, subject = '', recipients = '', "
      "  status = CASE WHEN status = 'pending' THEN 'failed' ELSE status END, "
      "  last_error = CASE WHEN status = 'pending' THEN 'the user was deleted' "
      "                    ELSE last_error END "
      "WHERE user_id = $1 AND (message IS NOT NULL OR recipients <> '')", 1 },
};

int
mailer_retention_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

//  ---------------------------------------------------------------------
//  The event auth.user.deleted (subject: the user id): what the outbox
//  holds of theirs goes (pending mail fails), in the transaction that
//  records the event handled.

static int
s_user_deleted (tl_event_t *event)
{
    const char *values [] = { tl_event_subject (event) };
    long count = tl_db_exec_count (tl_event_db (event), "outbox_forget_user", 1, values);
    if (count < 0)
        tl_log (TL_LOG_ERROR, NULL, "outbox: %s: %s", tl_strerror ((int) count),
                tl_db_errmsg (tl_event_db (event)));
    else
        tl_log (TL_LOG_INFO, NULL, "forgot user %s (%ld message(s))", values [0], count);
    return count < 0 ? (int) count : 0;
}

//  ---------------------------------------------------------------------
//  mailer.purge (hourly): bodies of messages done more than a week ago

static int
s_purge (tl_job_ctx_t *job)
{
    long total = tl_job_ctx_purge (job, "outbox_purge_bodies", S_PURGE_BATCH);
    if (total < 0)
        return (int) total;
    if (total)
        tl_log (TL_LOG_INFO, NULL, "dropped the bodies of %ld message(s) done over %d days ago",
                total, MAILER_KEEP_BODIES_DAYS);
    return 0;
}

int
mailer_retention_register (tl_service_t *svc)
{
    int rc = tl_service_subscribe (svc, "auth.user.deleted", s_user_deleted);
    rc = rc ? rc : tl_service_job (svc, "mailer.purge", s_purge);
    rc = rc ? rc : tl_service_schedule (svc, "mailer.purge", "mailer.purge", "every 1h");
    return rc;
}
