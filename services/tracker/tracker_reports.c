//  tracker_reports.c — daily reminders and monthly reports.
//
//  Jobs. The schedule tracker.plan (every hour) pages through the users who
//  have trackers, TRK_PLAN_BATCH at a time (each page is one job, which
//  enqueues the next), asks auth about them (users.lookup) and enqueues for
//  each, under unique keys that make every occurrence run once however many
//  instances plan:
//    tracker.remind {user_id}          today's and tomorrow's reminder, at
//                                      their reminder_time in their zone
//                                      (tl_jobs_enqueue_local_daily: neither
//                                      skipped nor doubled by DST), unless
//                                      their reminder channel is none;
//    tracker.report {user_id, month}   the report of the month under way
//                                      in their zone, due at 00:00 local
//                                      time on the 1st of the next month.
//  tracker.remind looks the user up again (settings change) and, if they
//  logged nothing on that local day, sends one reminder: a mail (template
//  daily_reminder) or a webhook, under the mailer key
//  "tracker.remind:<user>:<date>", so that a day has one reminder at most
//  even when a job runs twice. tracker.report mails the report under the
//  key "tracker.report:<user>:<month>": the PDF attached, or the HTML with
//  its charts as inline images; a December report also carries each mood
//  tracker's board of the year.
//
//  Reports. One model (s_report_t: each tracker with its stats, chart and,
//  in December, board for the month) is built for (user, month), and the
//  renderers (HTML, plain text, PDF) all read it, so that GET
//  /reports/monthly answers the very document the mail carries.
//
//  Clocks: a job's "now" is its run's clock (tl_job_ctx_now_ms, 0 for real
//  time), so that `tallyctl jobs run-due tracker --at TIME` drives them.
#include "tracker_service.h"
#include "trk_limits.h"
#include "tl_env.h"
#include "tl_buf.h"
#include "tl_error.h"
#include "tl_jobs.h"
#include "tl_log.h"
#include "tl_mp.h"
#include "tl_valid.h"
#include "trk_board.h"
#include "trk_chart.h"
#include "trk_doc.h"

#include <jansson.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  A reminder whose time (with the user's current settings) is more than
//  this ahead of its run is moved there, not sent early.
#define S_REMIND_EARLY_MS   60000

//  Links in mails: <TALLY_PUBLIC_URL>/..., read once by register.
static char s_public_url [TL_MAX_URL_LEN + 1];

static const tl_db_statement_t s_statements [] = {
    //  Keyset pages of the users who have trackers; $1 the last one before
    { "reports_owners",
      "SELECT DISTINCT owner FROM trackers WHERE $1::text IS NULL OR owner > $1 "
      "ORDER BY owner LIMIT $2::int", 2 },
    //  The month under way at $1 (ms; NULL: now) in zone $2, and when it ends
    { "reports_month_end",
      "SELECT to_char (m, 'YYYY-MM'), "
      "       (extract (epoch FROM ((m + interval '1 month') AT TIME ZONE $2)) * 1000)::bigint "
      "FROM (SELECT date_trunc ('month', coalesce (to_timestamp ($1::bigint / 1000.0), now ()) "
      "                                  AT TIME ZONE $2) AS m) AS local", 2 },
    //  Month $1 (YYYY-MM) in zone $2: its first and its last millisecond
    { "reports_month_range",
      "SELECT (extract (epoch FROM (m AT TIME ZONE $2)) * 1000)::bigint, "
      "       (extract (epoch FROM ((m + interval '1 month') AT TIME ZONE $2)) * 1000)::bigint - 1 "
      "FROM (SELECT ($1 || '-01')::date::timestamp AS m) AS local", 2 },
    //  The month before the one under way in zone $1
    { "reports_last_month",
      "SELECT to_char (date_trunc ('month', now () AT TIME ZONE $1) - interval '1 month', "
      "                'YYYY-MM')", 1 },
    //  A user's trackers, oldest first, at most $2, and how many there are
    { "reports_trackers",
      "SELECT " TRACKER_ROW_COLUMNS ", count (*) OVER () FROM trackers WHERE owner = $1 "
      "ORDER BY created_at, id LIMIT $2::int", 2 },
    //  Did user $1 log anything on local day $2 of zone $3; the instant of
    //  $4 (HH:MM) on that day there; has the user any tracker left
    { "reports_remind_check",
      "SELECT EXISTS (SELECT 1 FROM logs WHERE owner = $1 "
      "                 AND at >= $2::date::timestamp AT TIME ZONE $3 "
      "                 AND at < ($2::date + 1)::timestamp AT TIME ZONE $3), "
      "       (extract (epoch FROM (($2::date + $4::time) AT TIME ZONE $3)) * 1000)::bigint, "
      "       EXISTS (SELECT 1 FROM trackers WHERE owner = $1)", 4 },
    //  The local date of $1 (ms) in zone $2
    { "reports_local_date",
      "SELECT to_char (to_timestamp ($1::bigint / 1000.0) AT TIME ZONE $2, 'YYYY-MM-DD')", 2 },
};

int
tracker_reports_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

//  ---------------------------------------------------------------------
//  Small helpers

static const char *s_month_names [] = {
    "January", "February", "March", "April", "May", "June", "July",
    "August", "September", "October", "November", "December"
};

//  True for `n` ASCII digits at `text`.
static bool
s_digits (const char *text, int n)
{
    for (int i = 0; i < n; i++)
        if (text [i] < '0' || text [i] > '9')
            return false;
    return true;
}

//  Reads a month "YYYY-MM" (TRK_REPORT_MIN_YEAR..MAX_YEAR) into *year and
//  *month (1..12). Returns false for anything else.
static bool
s_month_parse (const char *text, int *year, int *month)
{
    if (!text || strlen (text) != 7 || !s_digits (text, 4) || text [4] != '-'
    ||  !s_digits (text + 5, 2))
        return false;
    *year = atoi (text);
    *month = atoi (text + 5);
    return *year >= TRK_REPORT_MIN_YEAR && *year <= TRK_REPORT_MAX_YEAR
        && *month >= 1 && *month <= 12;
}

//  True for a date "YYYY-MM-DD" (its shape; PostgreSQL checks the rest).
static bool
s_date_shaped (const char *text)
{
    return text && strlen (text) == 10 && s_digits (text, 4) && text [4] == '-'
        && s_digits (text + 5, 2) && text [7] == '-' && s_digits (text + 8, 2);
}

//  An integer column of a result; 0 for SQL NULL.
static int64_t
s_value_ms (const PGresult *res, int row, int col)
{
    const char *value = tl_db_value (res, row, col);
    return value ? strtoll (value, NULL, 10) : 0;
}

//  Appends `text` HTML-escaped (& < > " ').
static int
s_put_escaped (tl_buf_t *out, const char *text)
{
    int rc = 0;
    const char *run = text;
    for (const char *s = text; rc == 0 && *s; s++) {
        const char *entity = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;"
                           : *s == '"' ? "&quot;" : *s == '\'' ? "&#39;" : NULL;
        if (entity) {
            rc = tl_buf_append (out, run, (size_t) (s - run));
            rc = rc ? rc : tl_buf_append (out, entity, strlen (entity));
            run = s + 1;
        }
    }
    return rc ? rc : tl_buf_append (out, run, strlen (run));
}

//  Appends `text` as it is.
static int
s_puts (tl_buf_t *out, const char *text)
{
    return tl_buf_append (out, text, strlen (text));
}

//  ---------------------------------------------------------------------
//  Users, as users.lookup (auth) tells them

//  Asks auth about `count` users. Returns 0 with the reply (status 200) in
//  *reply_p, or a negative code with the job's error set.
static int
s_lookup (tl_job_ctx_t *job, const char *const *ids, size_t count, tl_msg_t **reply_p)
{
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    tl_mp_pack_str (&pk, "ids");
    msgpack_pack_array (&pk, count);
    for (size_t i = 0; i < count; i++)
        tl_mp_pack_str (&pk, ids [i]);
    int status = 0;
    int rc = tl_service_job_call (job, "auth", "users.lookup", body.data, body.size,
                                  TRK_REPORT_CALL_TIMEOUT_MS, &status, reply_p);
    msgpack_sbuffer_destroy (&body);
    if (rc == 0 && status != 200) {
        tl_job_ctx_error (job, "auth.users.lookup answered %d", status);
        tl_msg_destroy (reply_p);
        rc = TL_EIO;
    }
    return rc;
}

//  Looks user `id` up. Returns 0 with *found telling whether auth knows
//  them, or a negative code with the job's error set.
static int
s_lookup_one (tl_job_ctx_t *job, const char *id, tracker_user_t *user, bool *found)
{
    tl_msg_t *reply = NULL;
    int rc = s_lookup (job, &id, 1, &reply);
    *found = false;
    if (rc == 0) {
        const msgpack_object *items = tl_mp_get (tl_msg_body (reply), "items");
        if (items && items->type == MSGPACK_OBJECT_ARRAY && items->via.array.size == 1)
            *found = tracker_user_from_mp (&items->via.array.ptr [0], user)
                  && strcmp (user->id, id) == 0;
    }
    tl_msg_destroy (&reply);
    return rc;
}

//  ---------------------------------------------------------------------
//  tracker.plan: one page of users, then the next page as a job of its own

typedef struct {
    const tracker_user_t *user;
    int64_t now_ms;                     //  the run's clock; 0: the database's now
} s_plan_t;

//  Enqueues a user's reminders and report, in a savepoint of the job's
//  transaction: a zone that PostgreSQL refuses spoils that user's plan only.
static int
s_plan_user_tx (tl_db_t *db, void *arg)
{
    s_plan_t *plan = (s_plan_t *) arg;
    const tracker_user_t *user = plan->user;
    msgpack_sbuffer payload;
    msgpack_sbuffer_init (&payload);
    tl_mp_pack_pairs (&payload, (const char *[]) { "user_id", user->id }, 1);
    int rc = 0;
    if (strcmp (user->channel, "none") != 0)
        for (int days = 0; rc >= 0 && days < 2; days++)
            rc = tl_jobs_enqueue_local_daily (db, "tracker.remind", user->id, user->zone,
                                              user->reminder_time, days, plan->now_ms,
                                              payload.data, payload.size);
    char now_text [24];
    snprintf (now_text, sizeof now_text, "%lld", (long long) plan->now_ms);
    const char *values [] = { plan->now_ms ? now_text : NULL, user->zone };
    PGresult *res = rc < 0 ? NULL : tl_db_exec (db, "reports_month_end", 2, values, &rc);
    if (res) {
        const char *month = tl_db_value (res, 0, 0);
        int64_t end_ms = s_value_ms (res, 0, 1);
        msgpack_sbuffer_clear (&payload);
        tl_mp_pack_pairs (&payload, (const char *[]) { "user_id", user->id, "month", month }, 2);
        char key [TL_JOBS_MAX_KEY_LEN + 1];
        snprintf (key, sizeof key, "tracker.report:%s:%s", user->id, month);
        rc = tl_jobs_enqueue (db, "tracker.report", payload.data, payload.size, key,
                              end_ms > 0 ? end_ms : 1, 0);
        PQclear (res);
    }
    msgpack_sbuffer_destroy (&payload);
    return rc < 0 ? rc : 0;
}

//  tracker.plan {schedule, at, after?}: plans the users with trackers after
//  `after`, TRK_PLAN_BATCH of them, and enqueues the next page.
static int
s_plan (tl_job_ctx_t *job)
{
    tl_db_t *db = tl_job_ctx_db (job);
    const msgpack_object *payload = tl_job_ctx_payload (job);
    char after [TL_MAX_ID_LEN + 1] = "", at [64] = "";
    tl_mp_copy (tl_mp_get (payload, "after"), after, sizeof after);
    if (!tl_mp_copy (tl_mp_get (payload, "at"), at, sizeof at))
        snprintf (at, sizeof at, "%lld", (long long) tl_job_ctx_clock_ms (job));
    char batch [16];
    snprintf (batch, sizeof batch, "%d", TRK_PLAN_BATCH);
    const char *values [] = { *after ? after : NULL, batch };
    int rc = 0;
    PGresult *owners = tl_db_exec (db, "reports_owners", 2, values, &rc);
    if (!owners) {
        tl_job_ctx_error (job, "owners not read: %s", tl_db_errmsg (db));
        return rc;
    }
    int rows = PQntuples (owners);
    const char *ids [TRK_PLAN_BATCH];
    for (int row = 0; row < rows && row < TRK_PLAN_BATCH; row++)
        ids [row] = tl_db_value (owners, row, 0);
    tl_msg_t *reply = NULL;
    rc = rows > 0 ? s_lookup (job, ids, (size_t) rows, &reply) : 0;
    const msgpack_object *items = reply ? tl_mp_get (tl_msg_body (reply), "items") : NULL;
    int planned = 0;
    for (uint32_t i = 0; rc == 0 && items && items->type == MSGPACK_OBJECT_ARRAY
                         && i < items->via.array.size; i++) {
        tracker_user_t user;
        if (!tracker_user_from_mp (&items->via.array.ptr [i], &user))
            continue;
        s_plan_t plan = { &user, tl_job_ctx_now_ms (job) };
        int user_rc = tl_db_tx (db, s_plan_user_tx, &plan);
        if (user_rc == TL_EINVAL)
            tl_log (TL_LOG_WARN, NULL, "tracker.plan: user %s not planned: %s", user.id,
                    tl_db_errmsg (db));
        else
        if (user_rc) {
            tl_job_ctx_error (job, "user %s not planned: %s", user.id, tl_db_errmsg (db));
            rc = user_rc;
        }
        else
            planned++;
    }
    if (rc == 0 && rows == TRK_PLAN_BATCH) {
        //  The next page: its own job, on the same clock
        msgpack_sbuffer next;
        msgpack_sbuffer_init (&next);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &next, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, 2);
        tl_mp_pack_kv (&pk, "at", at);
        tl_mp_pack_kv (&pk, "after", ids [rows - 1]);
        char key [TL_JOBS_MAX_KEY_LEN + 1];
        snprintf (key, sizeof key, "tracker.plan@%s:%s", at, ids [rows - 1]);
        rc = tl_jobs_enqueue (db, "tracker.plan", next.data, next.size, key,
                              tl_job_ctx_now_ms (job), 0);
        msgpack_sbuffer_destroy (&next);
        if (rc < 0)
            tl_job_ctx_error (job, "next page not enqueued: %s", tl_strerror (rc));
        rc = rc < 0 ? rc : 0;
    }
    if (rc == 0 && planned > 0)
        tl_log (TL_LOG_INFO, NULL, "tracker.plan %s: %d user(s) planned", at, planned);
    tl_msg_destroy (&reply);
    PQclear (owners);
    return rc;
}

//  ---------------------------------------------------------------------
//  tracker.remind {user_id, date?}

//  The local date a reminder is for: from the payload (a moved reminder),
//  from the key "tracker.remind:<user>:<date>", or the date of its run_at
//  in the user's zone. Returns 0 or a code (the job's error set).
static int
s_remind_date (tl_job_ctx_t *job, const tracker_user_t *user, char date [16])
{
    if (tl_mp_copy (tl_mp_get (tl_job_ctx_payload (job), "date"), date, 16)
    &&  s_date_shaped (date))
        return 0;
    const char *key = tl_job_ctx_unique_key (job);
    char prefix [TL_MAX_ID_LEN + 32];
    snprintf (prefix, sizeof prefix, "tracker.remind:%s:", user->id);
    if (key && strncmp (key, prefix, strlen (prefix)) == 0) {
        snprintf (date, 16, "%.10s", key + strlen (prefix));
        if (s_date_shaped (date))
            return 0;
    }
    char run_at [24];
    snprintf (run_at, sizeof run_at, "%lld", (long long) tl_job_ctx_run_at_ms (job));
    const char *values [] = { run_at, user->zone };
    int rc = 0;
    PGresult *res = tl_db_exec (tl_job_ctx_db (job), "reports_local_date", 2, values, &rc);
    if (!res) {
        tl_job_ctx_error (job, "date not computed: %s", tl_db_errmsg (tl_job_ctx_db (job)));
        return rc;
    }
    snprintf (date, 16, "%s", tl_db_value (res, 0, 0));
    PQclear (res);
    return 0;
}

//  Moves the reminder of `date` to `at_ms` (the user set a later time).
static int
s_remind_later (tl_job_ctx_t *job, const tracker_user_t *user, const char *date, int64_t at_ms)
{
    msgpack_sbuffer payload;
    msgpack_sbuffer_init (&payload);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &payload, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    tl_mp_pack_kv (&pk, "user_id", user->id);
    tl_mp_pack_kv (&pk, "date", date);
    char key [TL_JOBS_MAX_KEY_LEN + 1];
    snprintf (key, sizeof key, "tracker.remind:%s:%s@%s", user->id, date, user->reminder_time);
    int rc = tl_jobs_enqueue (tl_job_ctx_db (job), "tracker.remind", payload.data, payload.size,
                              key, at_ms, 0);
    msgpack_sbuffer_destroy (&payload);
    if (rc < 0)
        tl_job_ctx_error (job, "reminder not moved: %s", tl_strerror (rc));
    return rc < 0 ? rc : 0;
}

//  Sends the reminder of `date` on the user's channel.
static int
s_remind_send (tl_job_ctx_t *job, const tracker_user_t *user, const char *date)
{
    char key [TL_JOBS_MAX_KEY_LEN + 1], link [TL_MAX_URL_LEN + 16];
    snprintf (key, sizeof key, "tracker.remind:%s:%s", user->id, date);
    snprintf (link, sizeof link, "%s/", s_public_url);
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    int rc = 0;
    if (strcmp (user->channel, "webhook") == 0) {
        if (!*user->webhook_url) {
            msgpack_sbuffer_destroy (&body);
            return 0;                   //  nowhere to post it
        }
        json_t *event = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
                                   "type", "daily_reminder", "date", date,
                                   "user_id", user->id, "username", user->username,
                                   "reminder_time", user->reminder_time,
                                   "timezone", user->zone, "link", link);
        char *json = event ? json_dumps (event, JSON_COMPACT) : NULL;
        json_decref (event);
        if (!json) {
            msgpack_sbuffer_destroy (&body);
            tl_job_ctx_error (job, "the webhook's JSON could not be made");
            return TL_ENOMEM;
        }
        msgpack_pack_map (&pk, 4);
        tl_mp_pack_kv (&pk, "key", key);
        tl_mp_pack_kv (&pk, "user_id", user->id);
        tl_mp_pack_kv (&pk, "url", user->webhook_url);
        tl_mp_pack_kv (&pk, "json", json);
        free (json);
        rc = tl_service_job_send (job, "mailer", "webhook.send", body.data, body.size,
                                  TRK_REPORT_CALL_TIMEOUT_MS, NULL);
    }
    else {
        msgpack_pack_map (&pk, 5);
        tl_mp_pack_kv (&pk, "key", key);
        tl_mp_pack_kv (&pk, "user_id", user->id);
        tl_mp_pack_kv (&pk, "to", user->email);
        tl_mp_pack_kv (&pk, "template", "daily_reminder");
        tl_mp_pack_str (&pk, "vars");
        msgpack_pack_map (&pk, 2);
        tl_mp_pack_kv (&pk, "username", user->username);
        tl_mp_pack_kv (&pk, "link", link);
        rc = tl_service_job_send (job, "mailer", "mail.send", body.data, body.size,
                                  TRK_REPORT_CALL_TIMEOUT_MS, NULL);
    }
    msgpack_sbuffer_destroy (&body);
    return rc;
}

//  tracker.remind: one reminder, if the user (still with trackers) logged
//  nothing that local day. With the user's current settings: a reminder
//  whose time they moved later is moved too; one run more than
//  TRK_REMIND_MAX_LATE_SEC after its time (planned late: a new user, an
//  outage) is dropped, since it would arrive on the wrong evening. A mail
//  goes only to a verified address; a webhook whatever the address.
static int
s_remind (tl_job_ctx_t *job)
{
    char user_id [TL_MAX_ID_LEN + 1];
    if (!tl_mp_copy (tl_mp_get (tl_job_ctx_payload (job), "user_id"), user_id, sizeof user_id))
        return 0;                       //  nothing to do with a bad payload
    tracker_user_t user;
    bool found = false;
    int rc = s_lookup_one (job, user_id, &user, &found);
    if (rc || !found || strcmp (user.channel, "none") == 0)
        return rc;
    if (strcmp (user.channel, "webhook") != 0 && !user.verified)
        return 0;                       //  mail goes to proven addresses only
    char date [16];
    rc = s_remind_date (job, &user, date);
    if (rc)
        return rc;
    //  Logged anything that day? And when is the reminder that day now?
    const char *values [] = { user.id, date, user.zone, user.reminder_time };
    tl_db_t *db = tl_job_ctx_db (job);
    PGresult *res = tl_db_exec (db, "reports_remind_check", 4, values, &rc);
    if (!res) {
        tl_job_ctx_error (job, "logs not read: %s", tl_db_errmsg (db));
        return rc;
    }
    bool logged = tl_db_value (res, 0, 0) && tl_db_value (res, 0, 0) [0] == 't';
    int64_t at_ms = s_value_ms (res, 0, 1);
    bool trackers = tl_db_value (res, 0, 2) && tl_db_value (res, 0, 2) [0] == 't';
    PQclear (res);
    if (logged || !trackers)
        return 0;                       //  nothing to remind of
    int64_t clock_ms = tl_job_ctx_clock_ms (job);
    if (at_ms > clock_ms + S_REMIND_EARLY_MS)
        return s_remind_later (job, &user, date, at_ms);
    int64_t late_ms = (int64_t) TRK_REMIND_MAX_LATE_SEC * 1000;
    if (clock_ms - at_ms > late_ms && clock_ms - tl_job_ctx_run_at_ms (job) > late_ms) {
        tl_log (TL_LOG_INFO, NULL, "reminder of %s for %s dropped: too late", date, user.id);
        return 0;
    }
    return s_remind_send (job, &user, date);
}

//  ---------------------------------------------------------------------
//  The report model

typedef struct {
    tracker_t tracker;
    msgpack_sbuffer stats_data;         //  tracker_stats_pack's map
    msgpack_zone stats_zone;
    msgpack_object stats;               //  ... unpacked (NIL when unreadable)
    trk_chart_t *chart;                 //  NULL once a PDF took it
    trk_board_t *board;                 //  December reports of mood trackers
    char chart_cid [48];                //  mail: the chart's Content-ID, "" when not sent
    char board_cid [48];
} s_entry_t;

typedef struct {
    char month [8];                     //  YYYY-MM
    int year, mon;
    char zone [TL_MAX_TIMEZONE_LEN + 1];
    int64_t from_ms, to_ms;             //  the month in zone, both included
    size_t total;                       //  the user's trackers
    size_t count;                       //  ... in the report
    s_entry_t *entries;
} s_report_t;

//  Destroys a report and nulls the caller's reference. Safe on NULL.
static void
s_report_destroy (s_report_t **self_p)
{
    s_report_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++) {
        s_entry_t *entry = &self->entries [i];
        tracker_clear (&entry->tracker);
        msgpack_sbuffer_destroy (&entry->stats_data);
        msgpack_zone_destroy (&entry->stats_zone);
        trk_chart_destroy (&entry->chart);
        trk_board_destroy (&entry->board);
    }
    free (self->entries);
    free (self);
    *self_p = NULL;
}

//  Fills one entry: the month's stats, chart and (December, moods) board.
static int
s_entry_build (tl_db_t *db, s_report_t *report, s_entry_t *entry)
{
    msgpack_packer pk;
    msgpack_packer_init (&pk, &entry->stats_data, msgpack_sbuffer_write);
    int rc = tracker_stats_pack (db, &entry->tracker, report->zone, report->from_ms,
                                 report->to_ms, &pk);
    if (rc == 0 && tl_mp_unpack (entry->stats_data.data, entry->stats_data.size,
                                 &entry->stats_zone, &entry->stats) != 0)
        entry->stats.type = MSGPACK_OBJECT_NIL;
    if (rc == 0)
        rc = tracker_chart_build (db, &entry->tracker, report->zone, report->from_ms,
                                  report->to_ms, &entry->chart);
    if (rc == 0 && report->mon == 12 && entry->tracker.type == TRK_MOOD)
        rc = tracker_board_build (db, &entry->tracker, report->zone, report->year,
                                  &entry->board);
    return rc;
}

//  Builds the report of `month` (YYYY-MM) for `owner`, by the local days
//  of `zone`: at most TRK_REPORT_MAX_TRACKERS trackers, the oldest first.
//  Returns 0 with the report at *report_p (the caller destroys it), or a
//  code (a database's, TL_ENOMEM, TL_EINVAL for a month out of range).
static int
s_report_build (tl_db_t *db, const char *owner, const char *zone, const char *month,
                s_report_t **report_p)
{
    *report_p = NULL;
    s_report_t *self = (s_report_t *) calloc (1, sizeof (s_report_t));
    if (!self)
        return TL_ENOMEM;
    if (!s_month_parse (month, &self->year, &self->mon)) {
        free (self);
        return TL_EINVAL;
    }
    snprintf (self->month, sizeof self->month, "%s", month);
    snprintf (self->zone, sizeof self->zone, "%s", zone);
    int rc = 0;
    const char *range_values [] = { month, zone };
    PGresult *res = tl_db_exec (db, "reports_month_range", 2, range_values, &rc);
    if (res) {
        self->from_ms = s_value_ms (res, 0, 0);
        self->to_ms = s_value_ms (res, 0, 1);
        PQclear (res);
        char limit [16];
        snprintf (limit, sizeof limit, "%d", TRK_REPORT_MAX_TRACKERS);
        const char *values [] = { owner, limit };
        res = tl_db_exec (db, "reports_trackers", 2, values, &rc);
    }
    int rows = res ? PQntuples (res) : 0;
    if (res && rows > 0) {
        self->total = (size_t) s_value_ms (res, 0, 6);
        self->entries = (s_entry_t *) calloc ((size_t) rows, sizeof (s_entry_t));
        rc = self->entries ? 0 : TL_ENOMEM;
    }
    for (int row = 0; rc == 0 && row < rows; row++) {
        s_entry_t *entry = &self->entries [row];
        msgpack_sbuffer_init (&entry->stats_data);
        msgpack_zone_init (&entry->stats_zone, 2048);
        entry->stats.type = MSGPACK_OBJECT_NIL;
        self->count++;
        rc = tracker_from_row (res, row, 0, &entry->tracker);
        if (rc == 0)
            rc = s_entry_build (db, self, entry);
    }
    PQclear (res);
    if (rc)
        s_report_destroy (&self);
    *report_p = self;
    return rc;
}

//  "November 2026"
static void
s_month_title (const s_report_t *report, char title [32])
{
    snprintf (title, 32, "%s %d", s_month_names [report->mon - 1], report->year);
}

//  ---------------------------------------------------------------------
//  Stats as labelled lines, for every renderer

//  Appends a number: an integer as such, else at most two decimals (six
//  significant digits when large).
static int
s_put_number (tl_buf_t *out, double value)
{
    char text [64];
    if (!isfinite (value))
        snprintf (text, sizeof text, "\xe2\x80\x93");
    else
    if (value == floor (value) && fabs (value) < 1e15)
        snprintf (text, sizeof text, "%.0f", value);
    else
    if (fabs (value) >= 1e6)
        snprintf (text, sizeof text, "%.6g", value);
    else {
        snprintf (text, sizeof text, "%.2f", value);
        size_t size = strlen (text);
        while (size > 0 && text [size - 1] == '0')
            text [--size] = 0;
        if (size > 0 && text [size - 1] == '.')
            text [--size] = 0;
    }
    return s_puts (out, text);
}

//  Appends seconds as "1h 30m", "45m 10s", "30s".
static int
s_put_duration (tl_buf_t *out, double seconds)
{
    if (!isfinite (seconds) || seconds < 0)
        return s_put_number (out, seconds);
    long long total = llround (seconds);
    long long hours = total / 3600, minutes = total % 3600 / 60, secs = total % 60;
    char text [64] = "";
    size_t used = 0;
    if (hours)
        used += (size_t) snprintf (text + used, sizeof text - used, "%lldh", hours);
    if (minutes)
        used += (size_t) snprintf (text + used, sizeof text - used, "%s%lldm",
                                   used ? " " : "", minutes);
    if (secs || used == 0)
        snprintf (text + used, sizeof text - used, "%s%llds", used ? " " : "", secs);
    return s_puts (out, text);
}

//  Appends a mood's or a choice's name: a mood 1..5 by its name.
static int
s_put_choice (tl_buf_t *out, const s_entry_t *entry, const msgpack_object *obj)
{
    int64_t number = 0;
    const char *mood = NULL;
    if (entry->tracker.type == TRK_MOOD) {
        if (tl_mp_int (obj, &number) == 0)
            mood = trk_mood_name ((int) number);
        else
        if (obj->type == MSGPACK_OBJECT_STR && obj->via.str.size == 1)
            mood = trk_mood_name (obj->via.str.ptr [0] - '0');
    }
    if (mood)
        return s_puts (out, mood);
    if (obj->type == MSGPACK_OBJECT_STR)
        return tl_buf_append (out, obj->via.str.ptr, obj->via.str.size);
    if (tl_mp_int (obj, &number) == 0)
        return tl_buf_printf (out, "%lld", (long long) number);
    return s_puts (out, "\xe2\x80\x93");
}

//  Appends a measure (min, max, mean, median) with the tracker's unit.
static int
s_put_measure (tl_buf_t *out, const s_entry_t *entry, const msgpack_object *obj)
{
    double value = 0;
    int64_t integer = 0;
    if (obj->type == MSGPACK_OBJECT_FLOAT32 || obj->type == MSGPACK_OBJECT_FLOAT64)
        value = obj->via.f64;
    else
    if (tl_mp_int (obj, &integer) == 0)
        value = (double) integer;
    else
        return s_puts (out, "\xe2\x80\x93");
    if (entry->tracker.type == TRK_DURATION)
        return s_put_duration (out, value);
    int rc = s_put_number (out, value);
    if (rc == 0 && *entry->tracker.unit) {
        rc = s_puts (out, " ");
        rc = rc ? rc : s_puts (out, entry->tracker.unit);
    }
    return rc;
}

//  Appends a most/least used value: one choice, a list of them, or none.
static int
s_put_choices (tl_buf_t *out, const s_entry_t *entry, const msgpack_object *obj)
{
    if (obj->type != MSGPACK_OBJECT_ARRAY)
        return s_put_choice (out, entry, obj);
    if (obj->via.array.size == 0)
        return s_puts (out, "\xe2\x80\x93");
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < obj->via.array.size; i++) {
        if (i > 0)
            rc = s_puts (out, ", ");
        rc = rc ? rc : s_put_choice (out, entry, &obj->via.array.ptr [i]);
    }
    return rc;
}

//  Called with each stat of a tracker: `label` and `value` are plain text.
typedef int (s_stat_fn) (void *arg, const char *label, const char *value);

//  Calls `fn` with each stat of an entry, in the order of API.md ("Logs"
//  first); stops at fn's first error. Returns 0 or that error.
static int
s_stats_each (const s_entry_t *entry, s_stat_fn *fn, void *arg)
{
    static const struct {
        const char *key, *label;
    } s_measures [] = {
        { "min", "Lowest" }, { "max", "Highest" }, { "mean", "Mean" }, { "median", "Median" },
        { "true_count", "Yes" }, { "false_count", "No" },
        { "counts", "Counts" }, { "most_used", "Most used" }, { "least_used", "Least used" },
    };
    const msgpack_object *stats = &entry->stats;
    tl_buf_t *value = tl_buf_new (TRK_DOC_MAX_TEXT);
    if (!value)
        return TL_ENOMEM;
    const msgpack_object *count = tl_mp_get (stats, "count");
    int64_t logs = 0;
    int rc = 0;
    if (count && tl_mp_int (count, &logs) == 0) {
        tl_buf_printf (value, "%lld", (long long) logs);
        rc = fn (arg, "Logs", tl_buf_data (value));
    }
    for (size_t i = 0; rc == 0 && logs > 0 && i < sizeof s_measures / sizeof s_measures [0]; i++) {
        const msgpack_object *obj = tl_mp_get (stats, s_measures [i].key);
        if (!obj || obj->type == MSGPACK_OBJECT_NIL)
            continue;
        tl_buf_reset (value);
        int put = 0;
        if (strcmp (s_measures [i].key, "counts") == 0 && obj->type == MSGPACK_OBJECT_MAP) {
            for (uint32_t k = 0; put == 0 && k < obj->via.map.size; k++) {
                int64_t n = 0;
                tl_mp_int (&obj->via.map.ptr [k].val, &n);
                put = k ? s_puts (value, ", ") : 0;
                put = put ? put : s_put_choice (value, entry, &obj->via.map.ptr [k].key);
                put = put ? put : tl_buf_printf (value, ": %lld", (long long) n);
            }
        }
        else
        if (strcmp (s_measures [i].key, "true_count") == 0
        ||  strcmp (s_measures [i].key, "false_count") == 0) {
            int64_t n = 0;
            tl_mp_int (obj, &n);
            put = tl_buf_printf (value, "%lld", (long long) n);
        }
        else
        if (strcmp (s_measures [i].key, "most_used") == 0
        ||  strcmp (s_measures [i].key, "least_used") == 0)
            put = s_put_choices (value, entry, obj);
        else
            put = s_put_measure (value, entry, obj);
        //  A value too long for one line is cut, not an error
        if (put == 0 || put == TL_ETOOBIG)
            rc = fn (arg, s_measures [i].label, tl_buf_data (value));
        else
            rc = put;
    }
    tl_buf_destroy (&value);
    return rc;
}

//  What a tracker is: "numerical, in kg", "mood".
static void
s_kind_text (const s_entry_t *entry, char *text, size_t size)
{
    if (*entry->tracker.unit && entry->tracker.type != TRK_DURATION)
        snprintf (text, size, "%s, in %s", trk_type_name (entry->tracker.type),
                  entry->tracker.unit);
    else
        snprintf (text, size, "%s", trk_type_name (entry->tracker.type));
}

//  ---------------------------------------------------------------------
//  HTML: the web page (charts as inline SVG) and the mail's HTML part
//  (charts as cid: images). Inline styles only: mail clients drop others.

typedef enum {
    S_HTML_WEB,
    S_HTML_MAIL
} s_html_mode_t;

#define S_STYLE_MUTED   "color:#4b5563;"

//  Appends an SVG document as inline markup: without its XML prolog, and
//  with every id renamed "<prefix><n>" (n in order of appearance) and
//  every reference to it (href="#id", url(#id)) to match, so that charts
//  in one page share no id and the same chart is the same text each time.
static int
s_put_svg (tl_buf_t *out, const char *svg, size_t size, const char *prefix)
{
    const char *start = NULL;
    for (size_t i = 0; i + 4 <= size && !start; i++)
        if (memcmp (svg + i, "<svg", 4) == 0)
            start = svg + i;
    if (!start)
        return TL_EINVAL;
    const char *end = svg + size;
    //  The ids, in order
    size_t nids = 0, room = 64;
    const char **ids = (const char **) malloc (room * sizeof (char *));
    size_t *lens = (size_t *) malloc (room * sizeof (size_t));
    int rc = ids && lens ? 0 : TL_ENOMEM;
    for (const char *s = start; rc == 0 && s + 5 < end; s++) {
        if (memcmp (s, " id=\"", 5) != 0)
            continue;
        const char *value = s + 5;
        const char *quote = memchr (value, '"', (size_t) (end - value));
        if (!quote)
            break;
        if (nids == room) {
            room *= 2;
            const char **more_ids = (const char **) realloc (ids, room * sizeof (char *));
            ids = more_ids ? more_ids : ids;
            size_t *more_lens = (size_t *) realloc (lens, room * sizeof (size_t));
            lens = more_lens ? more_lens : lens;
            if (!more_ids || !more_lens) {
                rc = TL_ENOMEM;
                break;
            }
        }
        ids [nids] = value;
        lens [nids++] = (size_t) (quote - value);
        s = quote;
    }
    //  The copy, ids and references renamed
    static const char *openers [] = { " id=\"", "href=\"#", "url(#" };
    static const char closers [] = { '"', '"', ')' };
    const char *run = start;
    for (const char *s = start; rc == 0 && s < end; s++) {
        for (int k = 0; k < 3; k++) {
            size_t olen = strlen (openers [k]);
            if ((size_t) (end - s) <= olen || memcmp (s, openers [k], olen) != 0)
                continue;
            const char *value = s + olen;
            const char *close = memchr (value, closers [k], (size_t) (end - value));
            if (!close)
                continue;
            size_t n = 0;
            while (n < nids && !(lens [n] == (size_t) (close - value)
                                 && memcmp (ids [n], value, lens [n]) == 0))
                n++;
            if (n == nids)
                continue;               //  not an id of this document
            rc = tl_buf_append (out, run, (size_t) (value - run));
            rc = rc ? rc : tl_buf_printf (out, "%s%zu", prefix, n);
            run = close;
            s = close - 1;
            break;
        }
    }
    rc = rc ? rc : tl_buf_append (out, run, (size_t) (end - run));
    free (ids);
    free (lens);
    return rc;
}

//  One stat as a table row.
static int
s_html_stat (void *arg, const char *label, const char *value)
{
    tl_buf_t *out = (tl_buf_t *) arg;
    int rc = s_puts (out, "<tr><th scope=\"row\" style=\"text-align:left;font-weight:normal;"
                          "padding:2px 16px 2px 0;vertical-align:top;" S_STYLE_MUTED "\">");
    rc = rc ? rc : s_put_escaped (out, label);
    rc = rc ? rc : s_puts (out, "</th><td style=\"padding:2px 0;\">");
    rc = rc ? rc : s_put_escaped (out, value);
    return rc ? rc : s_puts (out, "</td></tr>\n");
}

//  A picture of the web page as a data: URL (a board: PNG only).
static int
s_put_png_data_url (tl_buf_t *out, const unsigned char *png, size_t size)
{
    size_t length = sodium_base64_ENCODED_LEN (size, sodium_base64_VARIANT_ORIGINAL);
    char *text = (char *) malloc (length);
    if (!text)
        return TL_ENOMEM;
    sodium_bin2base64 (text, length, png, size, sodium_base64_VARIANT_ORIGINAL);
    int rc = s_puts (out, "data:image/png;base64,");
    rc = rc ? rc : s_puts (out, text);
    free (text);
    return rc;
}

//  The chart of entry `i`: inline SVG (web) or its cid: image (mail; a
//  note with the web report's link when the mail has no room for it).
static int
s_html_chart (tl_buf_t *out, s_report_t *report, size_t i, s_html_mode_t mode,
              const char *link)
{
    s_entry_t *entry = &report->entries [i];
    char title [32];
    s_month_title (report, title);
    int rc = s_puts (out, "<figure style=\"margin:0 0 16px;\">\n");
    if (mode == S_HTML_WEB && entry->chart) {
        unsigned char *svg = NULL;
        size_t size = 0;
        rc = rc ? rc : trk_chart_render_svg (entry->chart, &svg, &size);
        char prefix [32];
        snprintf (prefix, sizeof prefix, "t%zu-", i + 1);
        rc = rc ? rc : s_puts (out, "<div style=\"max-width:100%;overflow-x:auto;\" "
                                    "role=\"img\" aria-label=\"Chart of ");
        rc = rc ? rc : s_put_escaped (out, entry->tracker.name);
        rc = rc ? rc : tl_buf_printf (out, ", %s\">\n", title);
        rc = rc ? rc : s_put_svg (out, (const char *) svg, size, prefix);
        rc = rc ? rc : s_puts (out, "</div>\n");
        free (svg);
    }
    else
    if (mode == S_HTML_MAIL && *entry->chart_cid) {
        rc = rc ? rc : tl_buf_printf (out, "<img src=\"cid:%s\" width=\"%d\" height=\"%d\" "
                                           "style=\"display:block;max-width:100%%;height:auto;\" "
                                           "alt=\"Chart of ", entry->chart_cid,
                                      TRK_CHART_DEFAULT_WIDTH, TRK_CHART_DEFAULT_HEIGHT);
        rc = rc ? rc : s_put_escaped (out, entry->tracker.name);
        rc = rc ? rc : tl_buf_printf (out, ", %s\">\n", title);
    }
    else
    if (mode == S_HTML_MAIL) {
        rc = rc ? rc : s_puts (out, "<p style=\"margin:0;" S_STYLE_MUTED "\">This chart is in "
                                    "<a href=\"");
        rc = rc ? rc : s_put_escaped (out, link);
        rc = rc ? rc : s_puts (out, "\" style=\"color:#1d4ed8;\">the report online</a>.</p>\n");
    }
    return rc ? rc : s_puts (out, "</figure>\n");
}

//  The board of entry `i` (December, mood trackers).
static int
s_html_board (tl_buf_t *out, s_report_t *report, size_t i, s_html_mode_t mode)
{
    s_entry_t *entry = &report->entries [i];
    if (!entry->board || (mode == S_HTML_MAIL && !*entry->board_cid))
        return 0;
    int rc = tl_buf_printf (out, "<h3 style=\"margin:16px 0 8px;font-size:17px;\">%d in moods"
                                 "</h3>\n<img src=\"", report->year);
    if (mode == S_HTML_MAIL)
        rc = rc ? rc : tl_buf_printf (out, "cid:%s", entry->board_cid);
    else {
        unsigned char *png = NULL;
        size_t size = 0;
        rc = rc ? rc : trk_board_render_png (entry->board, &png, &size);
        rc = rc ? rc : s_put_png_data_url (out, png, size);
        free (png);
    }
    rc = rc ? rc : tl_buf_printf (out, "\" width=\"%d\" height=\"%d\" style=\"display:block;"
                                       "max-width:100%%;height:auto;\" alt=\"Mood board of ",
                                  TRK_BOARD_PNG_WIDTH, TRK_BOARD_PNG_HEIGHT);
    rc = rc ? rc : s_put_escaped (out, entry->tracker.name);
    return rc ? rc : tl_buf_printf (out, " for %d\">\n", report->year);
}

//  Writes the report as one HTML document into `out`. `username` heads it;
//  `link` is the web report (mail: for charts left out).
static int
s_report_html (s_report_t *report, const char *username, s_html_mode_t mode,
               const char *link, tl_buf_t *out)
{
    char title [32];
    s_month_title (report, title);
    int rc = tl_buf_printf (out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<title>Tally report \xe2\x80\x94 %s</title>\n</head>\n"
        "<body style=\"margin:0;padding:24px 12px;background-color:#f3f4f6;\">\n"
        "<main style=\"max-width:880px;margin:0 auto;padding:32px 24px;"
        "background-color:#ffffff;border-radius:8px;color:#1f2937;"
        "font-family:Arial,Helvetica,sans-serif;font-size:16px;line-height:1.5;\">\n"
        "<h1 style=\"margin:0 0 8px;font-size:24px;line-height:1.3;color:#111827;\">"
        "Your Tally report for %s</h1>\n<p style=\"margin:0 0 24px;" S_STYLE_MUTED "\">",
        title, title);
    if (username) {
        rc = rc ? rc : s_put_escaped (out, username);
        rc = rc ? rc : s_puts (out, " \xc2\xb7 ");
    }
    rc = rc ? rc : tl_buf_printf (out, "%zu tracker%s \xc2\xb7 days in ", report->total,
                                  report->total == 1 ? "" : "s");
    rc = rc ? rc : s_put_escaped (out, report->zone);
    rc = rc ? rc : s_puts (out, "</p>\n");
    if (report->count == 0)
        rc = rc ? rc : s_puts (out, "<p style=\"margin:0;\">You have no trackers yet.</p>\n");
    for (size_t i = 0; rc == 0 && i < report->count; i++) {
        s_entry_t *entry = &report->entries [i];
        char kind [200];
        s_kind_text (entry, kind, sizeof kind);
        rc = s_puts (out, "<section style=\"margin:0 0 32px;\">\n<h2 style=\"margin:0 0 4px;"
                          "font-size:20px;line-height:1.3;color:#111827;\">");
        rc = rc ? rc : s_put_escaped (out, entry->tracker.name);
        rc = rc ? rc : s_puts (out, "</h2>\n<p style=\"margin:0 0 8px;" S_STYLE_MUTED "\">");
        rc = rc ? rc : s_put_escaped (out, kind);
        rc = rc ? rc : s_puts (out, "</p>\n<table style=\"border-collapse:collapse;"
                                    "margin:0 0 16px;\">\n");
        rc = rc ? rc : s_stats_each (entry, s_html_stat, out);
        rc = rc ? rc : s_puts (out, "</table>\n");
        rc = rc ? rc : s_html_chart (out, report, i, mode, link);
        rc = rc ? rc : s_html_board (out, report, i, mode);
        rc = rc ? rc : s_puts (out, "</section>\n");
    }
    if (rc == 0 && report->total > report->count)
        rc = tl_buf_printf (out, "<p style=\"margin:0;" S_STYLE_MUTED "\">The report shows your "
                                 "first %zu trackers of %zu.</p>\n", report->count, report->total);
    return rc ? rc : s_puts (out, "</main>\n</body>\n</html>\n");
}

//  ---------------------------------------------------------------------
//  Plain text (the mail's text part) and PDF

//  One stat as a line "  Label: value".
static int
s_text_stat (void *arg, const char *label, const char *value)
{
    return tl_buf_printf ((tl_buf_t *) arg, "  %s: %s\n", label, value);
}

//  Writes the report as plain text into `out`: each tracker and its stats,
//  then `link` (the web report, with the charts).
static int
s_report_text (s_report_t *report, const char *username, const char *link, tl_buf_t *out)
{
    char title [32];
    s_month_title (report, title);
    int rc = tl_buf_printf (out, "Your Tally report for %s\n%s, %zu tracker%s, days in %s\n\n",
                            title, username, report->total, report->total == 1 ? "" : "s",
                            report->zone);
    for (size_t i = 0; rc == 0 && i < report->count; i++) {
        s_entry_t *entry = &report->entries [i];
        char kind [200];
        s_kind_text (entry, kind, sizeof kind);
        rc = tl_buf_printf (out, "%s (%s)\n", entry->tracker.name, kind);
        rc = rc ? rc : s_stats_each (entry, s_text_stat, out);
        rc = rc ? rc : s_puts (out, "\n");
    }
    return rc ? rc : tl_buf_printf (out, "Charts and the whole report: %s\n", link);
}

//  One stat as a line of a PDF paragraph.
static int
s_pdf_stat (void *arg, const char *label, const char *value)
{
    return tl_buf_printf ((tl_buf_t *) arg, "%s: %s\n", label, value);
}

//  Renders the report as PDF: a heading per tracker, its stats, its chart
//  and (December) its mood board. The document takes the charts and
//  boards: the report has none afterwards. Returns 0 with the PDF at
//  *data_p (the caller frees it), or a code.
static int
s_report_pdf (s_report_t *report, const char *username, unsigned char **data_p,
              size_t *size_p)
{
    char title [32], doc_title [64];
    s_month_title (report, title);
    snprintf (doc_title, sizeof doc_title, "Tally report \xe2\x80\x94 %s", title);
    trk_doc_t *doc = trk_doc_new (doc_title);
    tl_buf_t *text = tl_buf_new (TRK_DOC_MAX_TEXT);
    int rc = doc && text ? 0 : TL_ENOMEM;
    //  Dated the first of the next month: the same report, the same bytes
    char date [32];
    snprintf (date, sizeof date, "%04d-%02d-01T00:00:00Z",
              report->year + (report->mon == 12), report->mon % 12 + 1);
    if (rc == 0)
        rc = trk_doc_set_date (doc, date);
    if (rc == 0) {
        if (username)
            tl_buf_printf (text, "%s \xc2\xb7 ", username);
        tl_buf_printf (text, "%zu tracker%s \xc2\xb7 days in %s", report->total,
                       report->total == 1 ? "" : "s", report->zone);
        rc = trk_doc_text (doc, tl_buf_data (text));
    }
    if (rc == 0 && report->count == 0)
        rc = trk_doc_text (doc, "You have no trackers yet.");
    for (size_t i = 0; rc == 0 && i < report->count; i++) {
        s_entry_t *entry = &report->entries [i];
        char kind [200];
        s_kind_text (entry, kind, sizeof kind);
        tl_buf_reset (text);
        rc = trk_doc_heading (doc, entry->tracker.name);
        rc = rc ? rc : tl_buf_printf (text, "%s\n", kind);
        rc = rc ? rc : s_stats_each (entry, s_pdf_stat, text);
        tl_buf_truncate (text, tl_buf_size (text) - 1);     //  the last line's \n
        rc = rc ? rc : trk_doc_text (doc, tl_buf_data (text));
        if (rc == 0 && entry->chart)
            rc = trk_doc_chart (doc, &entry->chart);
        if (rc == 0 && entry->board)
            rc = trk_doc_board (doc, &entry->board);
    }
    if (rc == 0 && report->total > report->count) {
        tl_buf_reset (text);
        tl_buf_printf (text, "The report shows your first %zu trackers of %zu.",
                       report->count, report->total);
        rc = trk_doc_text (doc, tl_buf_data (text));
    }
    if (rc == 0)
        rc = trk_doc_render_pdf (doc, data_p, size_p);
    trk_doc_destroy (&doc);
    tl_buf_destroy (&text);
    return rc;
}

//  ---------------------------------------------------------------------
//  tracker.report {user_id, month}: the report by mail

//  The files of a report mail (the mailer takes TRK_REPORT_MAX_FILES).
typedef struct {
    char name [64];
    const char *content_type;
    const char *content_id;             //  an inline part's, or NULL
    unsigned char *data;                //  owned
    size_t size;
} s_file_t;

typedef struct {
    s_file_t files [TRK_REPORT_MAX_FILES];
    size_t count;
    size_t bytes;
} s_files_t;

//  Frees the files' data and empties the list.
static void
s_files_clear (s_files_t *files)
{
    for (size_t i = 0; i < files->count; i++)
        free (files->files [i].data);
    files->count = 0;
    files->bytes = 0;
}

//  Adds a file (taking `data`) if there is room for it. Returns true when
//  added; false (the data freed) when the mail is full.
static bool
s_files_add (s_files_t *files, const char *name, const char *content_type,
             const char *content_id, unsigned char *data, size_t size)
{
    if (files->count == TRK_REPORT_MAX_FILES || files->bytes + size > TRK_REPORT_MAX_BYTES) {
        free (data);
        return false;
    }
    s_file_t *file = &files->files [files->count++];
    snprintf (file->name, sizeof file->name, "%s", name);
    file->content_type = content_type;
    file->content_id = content_id;
    file->data = data;
    file->size = size;
    files->bytes += size;
    return true;
}

//  Renders the December boards as PNG files (inline parts when `inline`).
//  Returns 0 or a code.
static int
s_files_boards (s_files_t *files, s_report_t *report, bool inline_parts)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < report->count; i++) {
        s_entry_t *entry = &report->entries [i];
        if (!entry->board)
            continue;
        unsigned char *png = NULL;
        size_t size = 0;
        rc = trk_board_render_png (entry->board, &png, &size);
        if (rc)
            break;
        char name [64];
        snprintf (name, sizeof name, "mood-board-%d-%zu.png", report->year, i + 1);
        snprintf (entry->board_cid, sizeof entry->board_cid, "board-%zu@report.tally", i + 1);
        if (!s_files_add (files, name, "image/png", inline_parts ? entry->board_cid : NULL,
                          png, size))
            entry->board_cid [0] = 0;
    }
    return rc;
}

//  Sends the report mail: `html` and `text` with `files`, or (html NULL)
//  the template monthly_report with `files`. Returns 0 with the mailer's
//  status in *status, or a code.
static int
s_report_send (tl_job_ctx_t *job, const tracker_user_t *user, s_report_t *report,
               const char *text, const char *html, const s_files_t *files, int *status)
{
    char key [TL_JOBS_MAX_KEY_LEN + 1], link [TL_MAX_URL_LEN + 80], title [32], subject [64];
    char count [16];
    snprintf (key, sizeof key, "tracker.report:%s:%s", user->id, report->month);
    snprintf (link, sizeof link, "%s/api/v1/reports/monthly?month=%s&format=%s", s_public_url,
              report->month, user->report_format);
    s_month_title (report, title);
    snprintf (subject, sizeof subject, "Your Tally report for %s", title);
    snprintf (count, sizeof count, "%zu", report->total);
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, (html ? 6 : 5) + (files->count ? 1 : 0));
    tl_mp_pack_kv (&pk, "key", key);
    tl_mp_pack_kv (&pk, "user_id", user->id);
    tl_mp_pack_kv (&pk, "to", user->email);
    if (html) {
        tl_mp_pack_kv (&pk, "subject", subject);
        tl_mp_pack_kv (&pk, "text", text);
        tl_mp_pack_kv (&pk, "html", html);
    }
    else {
        tl_mp_pack_kv (&pk, "template", "monthly_report");
        tl_mp_pack_str (&pk, "vars");
        msgpack_pack_map (&pk, 4);
        tl_mp_pack_kv (&pk, "username", user->username);
        tl_mp_pack_kv (&pk, "month", title);
        tl_mp_pack_kv (&pk, "tracker_count", count);
        tl_mp_pack_kv (&pk, "link", link);
    }
    if (files->count) {
        tl_mp_pack_str (&pk, "attachments");
        msgpack_pack_array (&pk, files->count);
        for (size_t i = 0; i < files->count; i++) {
            const s_file_t *file = &files->files [i];
            msgpack_pack_map (&pk, file->content_id ? 4 : 3);
            tl_mp_pack_kv (&pk, "name", file->name);
            tl_mp_pack_kv (&pk, "content_type", file->content_type);
            tl_mp_pack_str (&pk, "data");
            msgpack_pack_bin (&pk, file->size);
            msgpack_pack_bin_body (&pk, file->data, file->size);
            if (file->content_id)
                tl_mp_pack_kv (&pk, "content_id", file->content_id);
        }
    }
    int rc = tl_service_job_send (job, "mailer", "mail.send", body.data, body.size,
                                  TRK_REPORT_CALL_TIMEOUT_MS, status);
    msgpack_sbuffer_destroy (&body);
    return rc;
}

//  Mails the report in the user's format. When the mailer will not take
//  it (too large), a mail with the link to the report online goes instead.
static int
s_report_mail (tl_job_ctx_t *job, const tracker_user_t *user, s_report_t *report)
{
    char link [TL_MAX_URL_LEN + 80];
    snprintf (link, sizeof link, "%s/api/v1/reports/monthly?month=%s&format=%s", s_public_url,
              report->month, user->report_format);
    s_files_t files = { .count = 0 };
    tl_buf_t *html = NULL, *text = NULL;
    int rc = 0;
    bool fits = true;
    if (strcmp (user->report_format, "pdf") == 0) {
        //  The PDF first, then the boards as pictures of their own
        unsigned char *pdf = NULL;
        size_t size = 0;
        files.count = 1;
        rc = s_files_boards (&files, report, false);
        rc = rc ? rc : s_report_pdf (report, user->username, &pdf, &size);
        if (rc == TL_ETOOBIG || (rc == 0 && files.bytes + size > TRK_REPORT_MAX_BYTES)) {
            free (pdf);
            rc = 0;
            fits = false;
        }
        else
        if (rc == 0) {
            s_file_t *file = &files.files [0];
            snprintf (file->name, sizeof file->name, "tally-report-%s.pdf", report->month);
            file->content_type = "application/pdf";
            file->data = pdf;
            file->size = size;
            files.bytes += size;
        }
    }
    else {
        //  Each chart, then the boards, as inline pictures while there is room
        for (size_t i = 0; rc == 0 && i < report->count; i++) {
            s_entry_t *entry = &report->entries [i];
            unsigned char *png = NULL;
            size_t size = 0;
            if (!entry->chart || files.count == TRK_REPORT_MAX_FILES)
                continue;
            rc = trk_chart_render_png (entry->chart, &png, &size);
            if (rc)
                break;
            char name [64];
            snprintf (name, sizeof name, "chart-%zu.png", i + 1);
            snprintf (entry->chart_cid, sizeof entry->chart_cid, "chart-%zu@report.tally", i + 1);
            if (!s_files_add (&files, name, "image/png", entry->chart_cid, png, size))
                entry->chart_cid [0] = 0;
        }
        rc = rc ? rc : s_files_boards (&files, report, true);
        html = tl_buf_new (TRK_REPORT_MAX_PART_BYTES);
        text = tl_buf_new (TRK_REPORT_MAX_PART_BYTES);
        rc = rc ? rc : html && text ? 0 : TL_ENOMEM;
        rc = rc ? rc : s_report_html (report, user->username, S_HTML_MAIL, link, html);
        rc = rc ? rc : s_report_text (report, user->username, link, text);
        if (rc == TL_ETOOBIG) {
            rc = 0;
            fits = false;
        }
    }
    int status = 0;
    if (rc == 0 && fits)
        rc = s_report_send (job, user, report, text ? tl_buf_data (text) : NULL,
                            html ? tl_buf_data (html) : NULL, &files, &status);
    if (rc == 0 && (!fits || status == 400 || status == 413)) {
        //  Too large to mail: the notice with the link alone
        s_files_t none = { .count = 0 };
        tl_log (TL_LOG_WARN, NULL, "report %s of %s too large to mail (%d): the link goes",
                report->month, user->id, status);
        rc = s_report_send (job, user, report, NULL, NULL, &none, &status);
    }
    else
    if (rc)
        tl_job_ctx_error (job, "report %s not made: %s", report->month, tl_strerror (rc));
    s_files_clear (&files);
    tl_buf_destroy (&html);
    tl_buf_destroy (&text);
    return rc;
}

//  tracker.report: the report of `month`, unless the user is gone, has no
//  trackers or has not verified their address (mail goes to proven
//  addresses only).
static int
s_report_job (tl_job_ctx_t *job)
{
    const msgpack_object *payload = tl_job_ctx_payload (job);
    char user_id [TL_MAX_ID_LEN + 1], month [8];
    int year = 0, mon = 0;
    if (!tl_mp_copy (tl_mp_get (payload, "user_id"), user_id, sizeof user_id)
    ||  !tl_mp_copy (tl_mp_get (payload, "month"), month, sizeof month)
    ||  !s_month_parse (month, &year, &mon))
        return 0;                       //  nothing to do with a bad payload
    tracker_user_t user;
    bool found = false;
    int rc = s_lookup_one (job, user_id, &user, &found);
    if (rc || !found || !user.verified)
        return rc;
    s_report_t *report = NULL;
    rc = s_report_build (tl_job_ctx_db (job), user.id, user.zone, month, &report);
    if (rc) {
        tl_job_ctx_error (job, "report %s of %s not built: %s", month, user.id,
                          tl_strerror (rc));
        return rc;
    }
    if (report->count > 0)              //  users without trackers get nothing
        rc = s_report_mail (job, &user, report);
    s_report_destroy (&report);
    return rc;
}

//  ---------------------------------------------------------------------
//  GET /reports/monthly?month=YYYY-MM&format=html|pdf

//  The caller's settings a report needs, asked of auth on their behalf.
//  Answers 200 with the report (text/html or application/pdf); 400 for a
//  bad month or format; 413 when it is too large to send.
static void
s_reports_monthly (tl_call_t *call)
{
    const char *month_param = tl_call_param (call, "month");
    const char *format_param = tl_call_param (call, "format");
    int year = 0, mon = 0;
    if (format_param && *format_param && strcmp (format_param, "html") != 0
    &&  strcmp (format_param, "pdf") != 0) {
        tl_call_field_error (call, 400, "invalid", "format", "must be html or pdf");
        return;
    }
    if (month_param && *month_param && !s_month_parse (month_param, &year, &mon)) {
        tl_call_field_error (call, 400, "invalid", "month", "must be YYYY-MM (1970-01 to 9998-12)");
        return;
    }
    tracker_user_t caller;
    if (!tracker_user_get (call, &caller))
        return;
    tl_db_t *db = tl_call_db (call);
    int rc = 0;
    char month [8];
    if (month_param && *month_param)
        snprintf (month, sizeof month, "%s", month_param);
    else {
        const char *zone = caller.zone;
        PGresult *res = tl_db_exec (db, "reports_last_month", 1, &zone, &rc);
        if (!res) {
            tl_call_db_error (call, rc);
            return;
        }
        snprintf (month, sizeof month, "%s", tl_db_value (res, 0, 0));
        PQclear (res);
    }
    const char *format = format_param && *format_param ? format_param : caller.report_format;
    s_report_t *report = NULL;
    rc = s_report_build (db, tl_call_user (call), caller.zone, month, &report);
    if (rc) {
        tl_call_db_error (call, rc);
        return;
    }
    unsigned char *data = NULL;
    size_t size = 0;
    if (strcmp (format, "pdf") == 0)
        rc = s_report_pdf (report, *caller.username ? caller.username : NULL, &data, &size);
    else {
        char link [TL_MAX_URL_LEN + 80];
        snprintf (link, sizeof link, "%s/api/v1/reports/monthly?month=%s&format=html",
                  s_public_url, month);
        tl_buf_t *html = tl_buf_new (TRK_REPORT_MAX_BYTES);
        rc = html ? s_report_html (report, *caller.username ? caller.username : NULL,
                                   S_HTML_WEB, link, html)
                  : TL_ENOMEM;
        if (rc == 0) {
            data = (unsigned char *) tl_buf_steal (html, &size);
            rc = data ? 0 : TL_ENOMEM;
        }
        tl_buf_destroy (&html);
    }
    s_report_destroy (&report);
    if (rc == 0 && size > TRK_REPORT_MAX_BYTES)
        rc = TL_ETOOBIG;
    if (rc == TL_ETOOBIG)
        tl_call_error (call, 413, "too_large", "this report is too large: ask for a shorter "
                                              "one, or the other format");
    else
    if (rc)
        tl_call_error (call, 503, "unavailable", "the report could not be made now");
    else {
        msgpack_packer *pk = tl_call_reply (call, 200);
        msgpack_pack_bin (pk, size);
        msgpack_pack_bin_body (pk, data, size);
        if (strcmp (format, "pdf") == 0) {
            char disposition [64];
            snprintf (disposition, sizeof disposition,
                      "inline; filename=\"tally-report-%s.pdf\"", month);
            tl_call_header (call, "Content-Type", "application/pdf");
            tl_call_header (call, "Content-Disposition", disposition);
        }
        else
            tl_call_header (call, "Content-Type", "text/html; charset=utf-8");
    }
    free (data);
}

//  ---------------------------------------------------------------------

//  Expensive requests take one of the caller's slots (tracker_expensive).
static void
s_reports_monthly_slotted (tl_call_t *call)
{
    tracker_expensive (call, s_reports_monthly);
}

//  Reads TALLY_PUBLIC_URL (links in mails; default http://127.0.0.1:8080)
//  and registers reports.monthly, the three jobs and the hourly plan.
int
tracker_reports_register (tl_service_t *svc)
{
    if (tl_env_public_url (s_public_url, sizeof s_public_url))
        return TL_ECONFIG;
    int rc = tl_service_on (svc, "reports.monthly", s_reports_monthly_slotted);
    rc = rc ? rc : tl_service_job (svc, "tracker.plan", s_plan);
    rc = rc ? rc : tl_service_job (svc, "tracker.remind", s_remind);
    rc = rc ? rc : tl_service_job (svc, "tracker.report", s_report_job);
    rc = rc ? rc : tl_service_schedule (svc, "tracker.plan", "tracker.plan", "every 1h");
    return rc;
}
