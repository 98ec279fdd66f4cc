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
//  user.deleted {user_id} (mesh, from the auth service): idempotent

static void
s_user_deleted (tl_call_t *call)
{
    if (tl_call_user (call)) {
        tl_call_error (call, 403, "forbidden", "user.deleted is for the auth service");
        return;
    }
    char *user = tl_mp_strdup (tl_mp_get (tl_call_body (call), "user_id"), TL_MAX_ID_LEN);
    if (!user || !*user) {
        free (user);
        tl_call_field_error (call, 400, "invalid", "user_id", "is required");
        return;
    }
    const char *values [] = { user };
    long count = tl_db_exec_count (tl_call_db (call), "outbox_forget_user", 1, values);
    if (count < 0) {
        tl_log (TL_LOG_ERROR, tl_call_trace (call), "outbox: %s: %s",
                tl_strerror ((int) count), tl_db_errmsg (tl_call_db (call)));
        tl_call_error (call, 503, "unavailable", "the outbox cannot be written now");
    }
    else {
        tl_log (TL_LOG_INFO, tl_call_trace (call), "forgot user %s (%ld message(s))",
                user, count);
        msgpack_pack_map (tl_call_reply (call, 200), 0);
    }
    free (user);
}

//  ---------------------------------------------------------------------
//  mailer.purge (hourly): bodies of messages done more than a week ago

static int
s_purge (tl_job_ctx_t *job)
{
    int64_t now = tl_job_ctx_now_ms (job);
    char now_text [32];
    snprintf (now_text, sizeof now_text, "%lld",
              (long long) (now ? now : (int64_t) tl_msg_now_ms ()));
    const char *values [] = { now_text };
    long total = 0, count;
    do {
        count = tl_db_exec_count (tl_job_ctx_db (job), "outbox_purge_bodies", 1, values);
        total += count > 0 ? count : 0;
    } while (count == S_PURGE_BATCH);
    if (count < 0) {
        tl_job_ctx_error (job, "purge failed: %s", tl_db_errmsg (tl_job_ctx_db (job)));
        return (int) count;
    }
    if (total)
        tl_log (TL_LOG_INFO, NULL, "dropped the bodies of %ld message(s) done over %d days ago",
                total, MAILER_KEEP_BODIES_DAYS);
    return 0;
}

int
mailer_retention_register (tl_service_t *svc)
{
    int rc = tl_service_on (svc, "user.deleted", s_user_deleted);
    rc = rc ? rc : tl_service_job (svc, "mailer.purge", s_purge);
    rc = rc ? rc : tl_service_schedule (svc, "mailer.purge", "mailer.purge", "every 1h");
    return rc;
}
