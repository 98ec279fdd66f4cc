//  analytics_monitor_fetch.c — the durable jobs of API monitoring:
//  analytics.fetch reads one window of a remote dashboard's calls (week by
//  week from its first request, then every hour from its last fetched
//  call), verifies and stores them with their hourly aggregates, and keeps
//  the dashboard's state (backfilling, ok, failing with the error);
//  analytics.notify_down tells the owner (notification.create) when a
//  dashboard failed AN_FAILURES_NOTIFY fetches in a row; the daily
//  analytics.partitions creates the months ahead and drops those past the
//  retention (TALLY_ANALYTICS_RETENTION_MONTHS, default 13).
#include "analytics_monitor.h"
#include "tl_env.h"
#include "tl_error.h"
#include "tl_log.h"
#include "tl_mp.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long s_retention_months = AN_RETENTION_MONTHS_DEFAULT;

//  What the notification and the mesh call may take
#define S_NOTIFY_TIMEOUT_MS     5000
#define S_NOTIFY_ATTEMPTS       8

static const tl_db_statement_t s_statements [] = {
    { "fetch_dashboard",
      "SELECT url, token, state, failures, extract (epoch FROM fetched_to)::bigint, "
      "       (extract (epoch FROM last_call_at) * 1000000)::bigint, backfilled, owner, name "
      "FROM dashboards WHERE id = $1 FOR UPDATE", 1 },
    //  $1 id, $2 fetched_to (unix s), $3 newest call (µs or NULL), $4 clock
    //  (ms), $5 backfilled
    { "fetch_ok",
      "UPDATE dashboards SET fetched_to = to_timestamp ($2::float8), "
      "  last_call_at = coalesce (timestamptz 'epoch' + $3::bigint * interval '1 microsecond', "
      "                           last_call_at), "
      "  last_fetch_at = to_timestamp ($4::float8 / 1000), backfilled = $5, "
      "  state = CASE WHEN $5 THEN 'ok' ELSE 'backfilling' END, error = NULL, failures = 0 "
      "WHERE id = $1", 5 },
    //  $1 id, $2 error, $3 clock (ms); returns the failures in a row
    { "fetch_failed",
      "UPDATE dashboards SET state = 'failing', error = $2, failures = failures + 1, "
      "  last_fetch_at = to_timestamp ($3::float8 / 1000) WHERE id = $1 RETURNING failures", 3 },
    //  The months the calls of $1 (jsonb [{t: µs}]) fall in
    { "fetch_partitions",
      "SELECT calls_partition (m) FROM (SELECT DISTINCT "
      "  date_trunc ('month', (timestamptz 'epoch' + r.t * interval '1 microsecond') "
      "              AT TIME ZONE 'UTC')::date AS m "
      "  FROM jsonb_to_recordset ($1::jsonb) AS r (t bigint)) months", 1 },
    { "fetch_endpoints",
      "INSERT INTO endpoints (dashboard_id, name) "
      "SELECT DISTINCT $1::uuid, r.e FROM jsonb_to_recordset ($2::jsonb) AS r (e text) "
      "ON CONFLICT (dashboard_id, name) DO NOTHING", 2 },
    //  The calls, their hourly aggregates, daily addresses (all endpoints
    //  together, and per endpoint: migrations/005), duration histograms
    //  (migrations/004), and each endpoint's count
    { "fetch_insert",
      "WITH r AS (SELECT * FROM jsonb_to_recordset ($2::jsonb) "
      "           AS r (e text, t bigint, x float8, v text, g text, ip text, s smallint)), "
      "ins AS (INSERT INTO calls (dashboard_id, endpoint_id, at, duration_ms, ip, version, "
      "                           group_by, status) "
      "  SELECT $1::uuid, en.id, timestamptz 'epoch' + r.t * interval '1 microsecond', r.x, "
      "         coalesce (r.ip, ''), coalesce (r.v, ''), coalesce (r.g, ''), r.s "
      "  FROM r JOIN endpoints en ON en.dashboard_id = $1::uuid AND en.name = r.e "
      "  RETURNING endpoint_id, at, duration_ms, ip), "
      "daily AS (INSERT INTO calls_daily_ip AS d (dashboard_id, day, ip, visits) "
      "  SELECT $1::uuid, (at AT TIME ZONE 'UTC')::date, ip, count (*) FROM ins GROUP BY 2, 3 "
      "  ON CONFLICT (dashboard_id, day, ip) DO UPDATE SET visits = d.visits + excluded.visits), "
      "daily_endpoint AS (INSERT INTO calls_daily_endpoint_ip AS de "
      "                   (dashboard_id, endpoint_id, day, ip, visits) "
      "  SELECT $1::uuid, endpoint_id, (at AT TIME ZONE 'UTC')::date, ip, count (*) FROM ins "
      "  GROUP BY 2, 3, 4 "
      "  ON CONFLICT (dashboard_id, endpoint_id, day, ip) DO UPDATE SET "
      "    visits = de.visits + excluded.visits), "
      "agg AS (INSERT INTO calls_hourly AS h (dashboard_id, endpoint_id, hour, visits, total_ms, "
      "                                       min_ms, max_ms) "
      "  SELECT $1::uuid, endpoint_id, date_trunc ('hour', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', "
      "         count (*), sum (duration_ms), min (duration_ms), max (duration_ms) "
      "  FROM ins GROUP BY 2, 3 "
      "  ON CONFLICT (dashboard_id, hour, endpoint_id) DO UPDATE SET "
      "    visits = h.visits + excluded.visits, total_ms = h.total_ms + excluded.total_ms, "
      "    min_ms = least (h.min_ms, excluded.min_ms), max_ms = greatest (h.max_ms, excluded.max_ms)), "
      "hist AS (INSERT INTO calls_daily_hist AS dh (dashboard_id, day, endpoint_id, bucket, visits) "
      "  SELECT $1::uuid, (at AT TIME ZONE 'UTC')::date, endpoint_id, monitor_bucket (duration_ms), "
      "         count (*) FROM ins GROUP BY 2, 3, 4 "
      "  ON CONFLICT (dashboard_id, day, endpoint_id, bucket) DO UPDATE SET "
      "    visits = dh.visits + excluded.visits), "
      "counted AS (UPDATE endpoints en SET calls = en.calls + c.n "
      "  FROM (SELECT endpoint_id, count (*) AS n FROM ins GROUP BY 1) c WHERE en.id = c.endpoint_id) "
      "SELECT count (*) FROM ins", 2 },
    //  $1 the first month to have, $2 how many months
    { "fetch_partitions_ahead",
      "SELECT calls_partition ((date_trunc ('month', to_timestamp ($1::float8 / 1000) "
      "                         AT TIME ZONE 'UTC') + k * interval '1 month')::date) "
      "FROM generate_series (0, $2::int) AS k", 2 },
    { "fetch_drop_before",
      "SELECT calls_drop_before ((date_trunc ('month', to_timestamp ($1::float8 / 1000) "
      "                           AT TIME ZONE 'UTC') - $2::int * interval '1 month')::date)", 2 },
};

int
analytics_monitor_fetch_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

//  Enqueues a fetch of dashboard `id` at `run_at_ms`. Returns 1, 0 (one
//  with that time exists) or a code.
static int
s_enqueue_fetch (tl_db_t *db, const char *id, int64_t run_at_ms)
{
    char key [96];
    snprintf (key, sizeof key, "analytics.fetch:%s:%lld", id, (long long) run_at_ms);
    msgpack_sbuffer payload;
    msgpack_sbuffer_init (&payload);
    tl_mp_pack_pairs (&payload, (const char *[]) { "dashboard", id }, 1);
    int rc = tl_jobs_enqueue (db, "analytics.fetch", payload.data, payload.size, key,
                              run_at_ms, AN_FETCH_ATTEMPTS);
    msgpack_sbuffer_destroy (&payload);
    return rc;
}

int
analytics_monitor_fetch_start (tl_db_t *db, const char *id, int64_t run_at_ms)
{
    return s_enqueue_fetch (db, id, run_at_ms);
}

//  --------------------------------------------------------------------------
//  Storing calls

//  The calls of `list` after `after_us` (0: all) and inside the retention
//  as [{e, t, x, v, g, ip}] (the caller's, free it), their count in
//  *count and the newest one's time in *newest_us (left alone when none).
//  Calls from `before_us` on are left out too.
static char *
s_calls_json (an_fmd_list_t *list, int64_t after_us, int64_t cutoff_us, int64_t before_us,
              size_t *count, int64_t *newest_us)
{
    json_t *rows = json_array ();
    *count = 0;
    for (size_t i = 0; rows && i < an_fmd_list_size (list); i++) {
        const an_fmd_call_t *call = an_fmd_list_call (list, i);
        if (call->time_us <= after_us || call->time_us < cutoff_us || call->time_us >= before_us)
            continue;
        json_t *row = json_pack ("{s:s, s:I, s:f, s:s, s:s, s:s}", "e", call->endpoint,
                                 "t", (json_int_t) call->time_us, "x", call->execution_ms,
                                 "v", call->version, "g", call->group_by, "ip", call->ip);
        if (!row || json_array_append_new (rows, row) != 0) {
            json_decref (rows);
            return NULL;
        }
        (*count)++;
        if (call->time_us > *newest_us)
            *newest_us = call->time_us;
    }
    char *text = rows ? json_dumps (rows, JSON_COMPACT) : NULL;
    json_decref (rows);
    return text;
}

int64_t
analytics_calls_cutoff_us (int64_t clock_ms)
{
    return (clock_ms / 1000 - s_retention_months * 31L * 86400) * 1000000;
}

int
analytics_calls_store (tl_db_t *db, const char *id, const char *rows)
{
    const char *values [] = { id, rows };
    int err = 0;
    PGresult *res = tl_db_exec (db, "fetch_partitions", 1, &values [1], &err);
    PQclear (res);
    res = res ? tl_db_exec (db, "fetch_endpoints", 2, values, &err) : NULL;
    PQclear (res);
    res = res ? tl_db_exec (db, "fetch_insert", 2, values, &err) : NULL;
    PQclear (res);
    return res ? 0 : err;
}

//  The start (µs) of the second of the newest call of `list`, when the
//  list may have been cut (as many calls as a Tally export answers at
//  most) and holds calls before that second; else INT64_MAX. An answer
//  cut inside a second holds only part of it, and a fetcher continues
//  from its newest call's second skipping the calls up to that call's
//  microsecond: the rest of that second (some sharing the very
//  microsecond) would be lost. Leaving that second out, the next window
//  asks for it whole.
static int64_t
s_cut_second_us (an_fmd_list_t *list)
{
    size_t size = an_fmd_list_size (list);
    if (size < AN_SELF_EXPORT_MAX_CALLS)
        return INT64_MAX;
    int64_t oldest = INT64_MAX, newest = INT64_MIN;
    for (size_t i = 0; i < size; i++) {
        int64_t t = an_fmd_list_call (list, i)->time_us;
        oldest = t < oldest ? t : oldest;
        newest = t > newest ? t : newest;
    }
    int64_t second = newest >= 0 ? newest / 1000000 : -((-newest + 999999) / 1000000);
    return oldest < second * 1000000 ? second * 1000000 : INT64_MAX;
}

//  Stores the calls of `list` newer than `after_us` for dashboard `id`,
//  with their partitions, endpoints and aggregates, leaving out the
//  newest call's second of a list that may have been cut (s_cut_second_us)
//  unless that would leave nothing new. Sets *newest_us to the newest
//  stored (left alone when none) and *cut when a second was left out.
//  Returns 0 or a code.
static int
s_store_calls (tl_db_t *db, const char *id, an_fmd_list_t *list, int64_t after_us,
               int64_t clock_ms, int64_t *newest_us, bool *cut)
{
    size_t count;
    int64_t before_us = s_cut_second_us (list);
    char *rows = s_calls_json (list, after_us, analytics_calls_cutoff_us (clock_ms), before_us,
                               &count, newest_us);
    *cut = before_us != INT64_MAX && count > 0;
    if (rows && before_us != INT64_MAX && count == 0) {
        //  All that is new is in one second: stored as answered, the rest
        //  of that second cannot be asked for (FMD's bounds are seconds)
        tl_log (TL_LOG_WARN, NULL, "dashboard %s: a cut answer holds one new second alone; "
                "calls of that second past the answer are lost", id);
        free (rows);
        rows = s_calls_json (list, after_us, analytics_calls_cutoff_us (clock_ms), INT64_MAX,
                             &count, newest_us);
    }
    if (!rows)
        return TL_ENOMEM;
    int rc = count ? analytics_calls_store (db, id, rows) : 0;
    free (rows);
    return rc;
}

//  --------------------------------------------------------------------------
//  analytics.fetch

//  One fetch: the dashboard as the job found it, the window asked.
typedef struct {
    const char *id;
    char *url, *token;
    int failures;
    int64_t fetched_to_s, last_call_us;
    bool backfilled;
    int64_t from_s, to_s;
    char owner [TL_MAX_ID_LEN + 1];
    char name [AN_NAME_MAX * 4 + 1];
} s_fetch_t;

//  Reads the remote rules and the window's calls, and stores them; sets
//  *cut when the newest second of a cut answer was left for the next
//  window (s_store_calls). Returns 0, or a code with `why` set.
static int
s_fetch_window (tl_db_t *db, s_fetch_t *fetch, int64_t clock_ms, int64_t *newest_us,
                bool *cut, char *why, size_t why_size)
{
    char *data = NULL;
    int err = 0;
    int rc = analytics_remote_signed (fetch->url, "get_json_monitor_rules", fetch->token,
                                      &data, why, why_size);
    an_fmd_list_t *list = rc ? NULL : an_fmd_rules_new (data, strlen (data), &err,
                                                        why, why_size);
    free (data);
    rc = rc ? rc : list ? analytics_endpoints_store (db, fetch->id, list) : err;
    an_fmd_list_destroy (&list);
    if (rc)
        return rc;
    char route [64];
    snprintf (route, sizeof route, "get_json_data/%lld/%lld", (long long) fetch->from_s,
              (long long) fetch->to_s);
    rc = analytics_remote_signed (fetch->url, route, fetch->token, &data, why, why_size);
    list = rc ? NULL : an_fmd_calls_new (data, strlen (data), &err, why, why_size);
    free (data);
    rc = rc ? rc : list ? s_store_calls (db, fetch->id, list, fetch->last_call_us, clock_ms,
                                         newest_us, cut) : err;
    an_fmd_list_destroy (&list);
    return rc;
}

//  Records a failed fetch, schedules the retry after a back-off, and past
//  AN_FAILURES_NOTIFY in a row enqueues the owner's notification.
static int
s_fetch_failed (tl_job_ctx_t *job, s_fetch_t *fetch, const char *why)
{
    tl_db_t *db = tl_job_ctx_db (job);
    int64_t clock_ms = tl_job_ctx_clock_ms (job);
    char clock_text [32];
    snprintf (clock_text, sizeof clock_text, "%lld", (long long) clock_ms);
    const char *values [] = { fetch->id, why, clock_text };
    int err = 0;
    PGresult *res = tl_db_exec (db, "fetch_failed", 3, values, &err);
    if (!res)
        return err;
    int failures = atoi (tl_db_value (res, 0, 0));
    PQclear (res);
    tl_log (TL_LOG_WARN, NULL, "dashboard %s: fetch %d failed: %s", fetch->id, failures, why);
    int rc = 0;
    if (failures == AN_FAILURES_NOTIFY) {
        char key [96];
        snprintf (key, sizeof key, "analytics.dashboard_down:%s:%lld", fetch->id,
                  (long long) clock_ms);
        msgpack_sbuffer payload;
        msgpack_sbuffer_init (&payload);
        tl_mp_pack_pairs (&payload, (const char *[]) {
            "dashboard", fetch->id, "owner", fetch->owner, "name", fetch->name, "key", key,
            "error", why }, 5);
        rc = tl_jobs_enqueue (db, "analytics.notify_down", payload.data, payload.size, key, 0,
                              S_NOTIFY_ATTEMPTS);
        msgpack_sbuffer_destroy (&payload);
    }
    int64_t backoff_s = AN_FETCH_RETRY_BASE_S;
    for (int i = 1; i < failures && backoff_s < AN_FETCH_RETRY_CAP_S; i++)
        backoff_s *= 2;
    if (backoff_s > AN_FETCH_RETRY_CAP_S)
        backoff_s = AN_FETCH_RETRY_CAP_S;
    rc = rc < 0 ? rc : s_enqueue_fetch (db, fetch->id, clock_ms + backoff_s * 1000);
    return rc < 0 ? rc : 0;
}

//  Records a fetched window and schedules the next: the next week of the
//  back-fill at once, or the hourly fetch; when the answer was `cut`
//  (s_store_calls left its newest second out), the window from the
//  newest stored call's second, at once.
static int
s_fetch_done (tl_job_ctx_t *job, s_fetch_t *fetch, int64_t newest_us, bool cut)
{
    tl_db_t *db = tl_job_ctx_db (job);
    int64_t clock_ms = tl_job_ctx_clock_ms (job);
    int64_t newest_s = newest_us / 1000000;
    bool backfilled = fetch->backfilled || (!cut && fetch->to_s * 1000 >= clock_ms - 999);
    char to_text [32], newest_text [32], clock_text [32];
    snprintf (to_text, sizeof to_text, "%lld", (long long) (cut ? newest_s : fetch->to_s));
    snprintf (newest_text, sizeof newest_text, "%lld", (long long) newest_us);
    snprintf (clock_text, sizeof clock_text, "%lld", (long long) clock_ms);
    const char *values [] = { fetch->id, to_text, newest_us ? newest_text : NULL, clock_text,
                              backfilled ? "t" : "f" };
    long count = tl_db_exec_count (db, "fetch_ok", 5, values);
    if (count < 0)
        return (int) count;
    if (!cut) {
        int rc = s_enqueue_fetch (db, fetch->id, backfilled ? clock_ms + AN_FETCH_INTERVAL_S * 1000
                                                            : fetch->to_s * 1000);
        return rc < 0 ? rc : 0;
    }
    //  At once (a time already past), under a key no step of this chain
    //  has used: the newest call's ms, moved on if taken
    int rc = 0;
    for (int64_t at = newest_us / 1000; rc == 0 && at < newest_us / 1000 + 1000; at++)
        rc = s_enqueue_fetch (db, fetch->id, at);
    return rc < 0 ? rc : 0;
}

//  Reads the dashboard and plans the window. Returns 1 when there is one
//  to fetch, 0 when the dashboard is gone, or a code.
static int
s_fetch_plan (tl_job_ctx_t *job, s_fetch_t *fetch)
{
    int err = 0;
    PGresult *res = tl_db_exec (tl_job_ctx_db (job), "fetch_dashboard", 1, &fetch->id, &err);
    if (!res)
        return err;
    if (PQntuples (res) == 0) {
        PQclear (res);
        return 0;
    }
    fetch->url = strdup (tl_db_value (res, 0, 0));
    fetch->token = strdup (tl_db_value (res, 0, 1));
    fetch->failures = atoi (tl_db_value (res, 0, 3));
    fetch->fetched_to_s = atoll (tl_db_value (res, 0, 4));
    const char *last = tl_db_value (res, 0, 5);
    fetch->last_call_us = last ? atoll (last) : 0;
    fetch->backfilled = strcmp (tl_db_value (res, 0, 6), "t") == 0;
    snprintf (fetch->owner, sizeof fetch->owner, "%s", tl_db_value (res, 0, 7));
    snprintf (fetch->name, sizeof fetch->name, "%s", tl_db_value (res, 0, 8));
    PQclear (res);
    if (!fetch->url || !fetch->token)
        return TL_ENOMEM;
    int64_t clock_s = tl_job_ctx_clock_ms (job) / 1000;
    if (fetch->backfilled) {
        //  From the last fetched call's second (FMD's bound is exclusive;
        //  calls up to it in that second are skipped by their µs)
        fetch->from_s = fetch->last_call_us ? fetch->last_call_us / 1000000 : fetch->fetched_to_s;
        fetch->to_s = clock_s;
    }
    else {
        fetch->from_s = fetch->fetched_to_s;
        fetch->to_s = fetch->from_s + AN_BACKFILL_STEP_S < clock_s
                    ? fetch->from_s + AN_BACKFILL_STEP_S : clock_s;
    }
    if (fetch->to_s < fetch->from_s)
        fetch->to_s = fetch->from_s;
    return 1;
}

//  The window's work, run in a savepoint so that a failure stores nothing.
typedef struct {
    s_fetch_t *fetch;
    int64_t clock_ms;
    int64_t newest_us;
    bool cut;
    char why [256];
} s_window_t;

static int
s_window_tx (tl_db_t *db, void *arg)
{
    s_window_t *window = (s_window_t *) arg;
    window->newest_us = 0;
    window->why [0] = 0;
    window->cut = false;
    return s_fetch_window (db, window->fetch, window->clock_ms, &window->newest_us,
                           &window->cut, window->why, sizeof window->why);
}

static int
s_fetch_job (tl_job_ctx_t *job)
{
    const msgpack_object *payload = tl_job_ctx_payload (job);
    char id [40];
    if (!tl_mp_copy (tl_mp_get (payload, "dashboard"), id, sizeof id))
        return 0;                   //  a payload no version wrote: nothing to do
    s_fetch_t fetch = { .id = id };
    int rc = s_fetch_plan (job, &fetch);
    if (rc == 1) {
        s_window_t window = { .fetch = &fetch, .clock_ms = tl_job_ctx_clock_ms (job) };
        rc = tl_db_tx (tl_job_ctx_db (job), s_window_tx, &window);
        if (rc == 0)
            rc = s_fetch_done (job, &fetch, window.newest_us, window.cut);
        else
        if (rc == TL_EUNAVAIL || rc == TL_ERETRY || rc == TL_EDB
            || (rc == TL_ETIMEDOUT && !*window.why))
            tl_job_ctx_error (job, "dashboard %s: %s", id, tl_strerror (rc));
        else
            rc = s_fetch_failed (job, &fetch, *window.why ? window.why : tl_strerror (rc));
    }
    free (fetch.url);
    free (fetch.token);
    return rc < 0 ? rc : 0;
}

//  --------------------------------------------------------------------------
//  analytics.notify_down: notification.create for the owner. The
//  notification service may be absent or slow: the job retries on its
//  back-off and is dead after S_NOTIFY_ATTEMPTS, never failing a fetch.

static int
s_notify_job (tl_job_ctx_t *job)
{
    const msgpack_object *payload = tl_job_ctx_payload (job);
    char owner [TL_MAX_ID_LEN + 1], key [128], name [AN_NAME_MAX * 4 + 1], error [256];
    if (!tl_mp_copy (tl_mp_get (payload, "owner"), owner, sizeof owner)
    ||  !tl_mp_copy (tl_mp_get (payload, "key"), key, sizeof key)
    ||  !tl_mp_copy (tl_mp_get (payload, "name"), name, sizeof name)
    ||  !tl_mp_copy (tl_mp_get (payload, "error"), error, sizeof error))
        return 0;
    //  title at most 200 characters, message 2000 (the contract)
    const char *title = "A monitored dashboard stopped answering";
    char message [sizeof name + sizeof error + 96];
    snprintf (message, sizeof message, "The last %d fetches of \"%s\" failed. The last error: %s",
              AN_FAILURES_NOTIFY, name, error);
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    tl_mp_pack_pairs (&body, (const char *[]) {
        "user_id", owner, "key", key, "title", title, "message", message,
        "action", "dashboard_down" }, 5);
    int status = 0;
    int rc = tl_service_job_send (job, "notification", "notification.create", body.data,
                                  body.size, S_NOTIFY_TIMEOUT_MS, &status);
    msgpack_sbuffer_destroy (&body);
    if (rc)
        tl_log (TL_LOG_WARN, NULL, "notification.create for dashboard down: %s",
                tl_strerror (rc));
    return rc;
}

//  --------------------------------------------------------------------------
//  analytics.partitions (daily): the months ahead, and the retention.

static int
s_partitions_job (tl_job_ctx_t *job)
{
    char clock [32], ahead [16], months [16];
    snprintf (clock, sizeof clock, "%lld", (long long) tl_job_ctx_clock_ms (job));
    snprintf (ahead, sizeof ahead, "%d", AN_PARTITIONS_AHEAD);
    snprintf (months, sizeof months, "%ld", s_retention_months);
    int err = 0;
    PGresult *res = tl_db_exec (tl_job_ctx_db (job), "fetch_partitions_ahead", 2,
                                (const char *[]) { clock, ahead }, &err);
    PQclear (res);
    res = res ? tl_db_exec (tl_job_ctx_db (job), "fetch_drop_before", 2,
                            (const char *[]) { clock, months }, &err) : NULL;
    if (!res) {
        tl_job_ctx_error (job, "partitions: %s", tl_strerror (err));
        return err;
    }
    PQclear (res);
    return 0;
}

int
analytics_monitor_fetch_register (tl_service_t *svc)
{
    if (tl_env_long ("TALLY_ANALYTICS_RETENTION_MONTHS", AN_RETENTION_MONTHS_DEFAULT, 1, 1200,
                     &s_retention_months))
        return TL_ECONFIG;
    int rc = tl_service_job (svc, "analytics.fetch", s_fetch_job);
    rc = rc ? rc : tl_service_job (svc, "analytics.notify_down", s_notify_job);
    rc = rc ? rc : tl_service_job (svc, "analytics.partitions", s_partitions_job);
    rc = rc ? rc : tl_service_schedule (svc, "analytics.partitions", "analytics.partitions",
                                        "daily");
    return rc;
}
