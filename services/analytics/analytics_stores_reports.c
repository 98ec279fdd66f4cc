//  analytics_stores_reports.c — the store reports (shared/API.md "Store
//  monitoring"): POST /stores/reports answers 202 {report_id} at once and
//  enqueues the durable job analytics.stores_report in the same
//  transaction; GET /stores/reports/{id} tells running, complete or
//  failed; report.csv and report.pdf download it. Reports are kept
//  AN_REPORT_KEEP_DAYS days (the daily job analytics.stores_purge).
//
//  The job reads the owner's stores through one cursor over one statement
//  (one snapshot: a load committed meanwhile is in the report whole or not
//  at all), AN_REPORT_FETCH stores at a time, each row a store with its
//  zone, its hours, the last poll before the week and the week's polls as
//  an array; an_report computes each store, an_report_doc keeps the PDF's
//  summary, and the CSV grows in one buffer. Memory: one fetch of stores,
//  never every poll of the owner.
#include "analytics_service.h"
#include "an_report.h"
#include "an_report_doc.h"
#include "an_store_limits.h"
#include "an_store_tz.h"
#include "tl_buf.h"
#include "tl_error.h"
#include "tl_log.h"
#include "tl_mp.h"
#include "tl_time.h"
#include "tl_valid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_STR_(x)       #x
#define S_STR(x)        S_STR_(x)
#define S_DEFAULT_ZONE  "America/Chicago"
#define S_WEEK_US       "604800000000"
#define S_DAY_US        "86400000000"
#define S_ATTEMPTS      3

static const tl_db_statement_t s_statements [] = {
    //  The owner's reports running or queued, counted under a lock of the
    //  owner's own (two triggers at once are counted one after the other)
    { "stores_report_running",
      "SELECT pg_advisory_xact_lock (hashtext ('analytics.stores_report:' || $1)), "
      "  (SELECT count (*) FROM store_reports WHERE owner = $1 AND status = 'running' "
      "   AND created_at > now () - interval '" S_STR (AN_REPORT_KEEP_DAYS) " days')", 1 },
    { "stores_report_new",
      "INSERT INTO store_reports (owner) VALUES ($1) RETURNING id", 1 },
    { "stores_report_get",
      "SELECT status, error, now_us, stores FROM store_reports "
      "WHERE id = $1 AND owner = $2 AND created_at > now () - interval '"
      S_STR (AN_REPORT_KEEP_DAYS) " days'", 2 },
    { "stores_report_csv",
      "SELECT csv FROM store_reports WHERE id = $1 AND owner = $2 AND status = 'complete' "
      "AND created_at > now () - interval '" S_STR (AN_REPORT_KEEP_DAYS) " days'", 2 },
    { "stores_report_pdf",
      "SELECT pdf FROM store_reports WHERE id = $1 AND owner = $2 AND status = 'complete' "
      "AND created_at > now () - interval '" S_STR (AN_REPORT_KEEP_DAYS) " days'", 2 },
    { "stores_report_lock",
      "SELECT owner FROM store_reports WHERE id = $1 AND status = 'running' FOR UPDATE", 1 },
    { "stores_report_done",
      "UPDATE store_reports SET status = 'complete', now_us = $2, stores = $3, csv = $4, "
      "pdf = $5, finished_at = now () WHERE id = $1", 5 },
    { "stores_report_failed",
      "UPDATE store_reports SET status = 'failed', error = $2, finished_at = now () "
      "WHERE id = $1", 2 },
    //  $1: the job's clock in ms
    { "stores_report_purge",
      "DELETE FROM store_reports WHERE id IN (SELECT id FROM store_reports "
      "WHERE created_at < to_timestamp ($1::bigint / 1000.0) - interval '"
      S_STR (AN_REPORT_KEEP_DAYS) " days' LIMIT " S_STR (AN_REPORT_PURGE_BATCH) ")", 1 },
};

//  The report's one statement: the owner's stores with a poll, in order,
//  each with the report's now (the newest of the stores' newest polls), its
//  zone, its hours ("dow start end" joined by ','), the last poll before the
//  week (or NULL) and the week's polls in time order (each poll as at_us *
//  2 + active), from the store's rows of store_poll_days (one per UTC day,
//  003_stores_days.sql): the 8 or 9 days the week touches, and for the
//  poll before it the days before, newest first, until one has a poll.
#define S_CURSOR_SQL \
    "DECLARE an_report NO SCROLL CURSOR FOR " \
    "WITH n AS (SELECT max (last_us) AS now FROM stores WHERE owner = $1) " \
    "SELECT s.store_id, n.now, " \
    "  (SELECT z.zone FROM store_zones z WHERE z.owner = $1 AND z.store_id = s.store_id), " \
    "  (SELECT string_agg (h.dow || ' ' || h.start_s || ' ' || h.end_s, ',') " \
    "     FROM store_hours h WHERE h.owner = $1 AND h.store_id = s.store_id), " \
    "  (SELECT m FROM (SELECT (SELECT max (v) FROM unnest (p.polls) AS u (v) " \
    "                          WHERE v >> 1 < n.now - " S_WEEK_US ") AS m " \
    "     FROM store_poll_days p WHERE p.owner = $1 AND p.store_id = s.store_id " \
    "       AND p.day <= ((n.now - " S_WEEK_US ") / " S_DAY_US ")::int " \
    "     ORDER BY p.day DESC) b WHERE m IS NOT NULL LIMIT 1), " \
    "  ARRAY (SELECT v FROM store_poll_days p, unnest (p.polls) AS u (v) " \
    "    WHERE p.owner = $1 AND p.store_id = s.store_id " \
    "      AND p.day BETWEEN ((n.now - " S_WEEK_US ") / " S_DAY_US ")::int " \
    "                    AND (n.now / " S_DAY_US ")::int " \
    "      AND v >> 1 >= n.now - " S_WEEK_US " AND v >> 1 <= n.now ORDER BY v) " \
    "FROM stores s, n WHERE s.owner = $1 AND s.last_us IS NOT NULL ORDER BY s.store_id"

int
analytics_stores_reports_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

//  --- The job ---------------------------------------------------------------

//  A zone the job has loaded.
typedef struct {
    char name [AN_TZ_MAX_NAME + 1];
    an_store_tz_t *tz;
} s_zone_t;

typedef struct {
    const char *owner;
    int64_t now_us;
    an_report_t *report;
    an_report_doc_t *doc;
    tl_buf_t *csv;
    s_zone_t *zones;
    size_t nzones;
    an_report_hours_t *hours;
    an_report_poll_t *polls;
    size_t polls_capacity;
    char error [160];               //  a failure no retry mends
} s_job_t;

//  The zone `name` (loaded once per job), or NULL.
static an_store_tz_t *
s_zone (s_job_t *job, const char *name)
{
    for (size_t i = 0; i < job->nzones; i++)
        if (strcmp (job->zones [i].name, name) == 0)
            return job->zones [i].tz;
    if (job->nzones == AN_TZ_CACHE)
        return NULL;
    an_store_tz_t *tz = an_store_tz_new (name);
    if (tz) {
        snprintf (job->zones [job->nzones].name, sizeof job->zones [0].name, "%s", name);
        job->zones [job->nzones++].tz = tz;
    }
    return tz;
}

//  Parses "dow start end,..." into job->hours. Returns the count or -1.
static long
s_parse_hours (s_job_t *job, const char *text)
{
    long n = 0;
    while (text && *text) {
        int dow, start, end, used = 0;
        if (n == AN_REPORT_MAX_HOURS
        ||  sscanf (text, "%d %d %d%n", &dow, &start, &end, &used) != 3)
            return -1;
        job->hours [n++] = (an_report_hours_t) { dow, start, end };
        text += used;
        if (*text == ',')
            text++;
    }
    return n;
}

//  Adds one poll (at_us * 2 + active) to job->polls. Returns 0 or -1.
static int
s_add_poll (s_job_t *job, size_t n, long long v)
{
    if (v < 0 || n == AN_REPORT_MAX_POLLS)
        return -1;
    if (n == job->polls_capacity) {
        size_t capacity = job->polls_capacity ? job->polls_capacity * 2 : 4096;
        an_report_poll_t *polls = (an_report_poll_t *) realloc (job->polls,
                                                                capacity * sizeof *polls);
        if (!polls)
            return -1;
        job->polls = polls;
        job->polls_capacity = capacity;
    }
    job->polls [n] = (an_report_poll_t) { v / 2, v % 2 == 1 };
    return 0;
}

//  Parses the poll before the week (`before`, NULL when none) and the
//  week's "{v,v,...}" into job->polls. Returns the count or -1.
static long
s_parse_polls (s_job_t *job, const char *before, const char *text)
{
    size_t n = 0;
    if (before && s_add_poll (job, n++, atoll (before)) != 0)
        return -1;
    if (!text || *text++ != '{')
        return -1;
    while (*text && *text != '}') {
        char *end;
        long long v = strtoll (text, &end, 10);
        if (end == text || s_add_poll (job, n++, v) != 0)
            return -1;
        text = *end == ',' ? end + 1 : end;
    }
    return (long) n;
}

//  One store's row of the cursor: computed, added to the CSV and the PDF.
static int
s_store (s_job_t *job, const PGresult *r, int row)
{
    long long store = atoll (tl_db_value (r, row, 0));
    job->now_us = atoll (tl_db_value (r, row, 1));
    const char *zone = tl_db_value (r, row, 2);
    long nhours = s_parse_hours (job, tl_db_value (r, row, 3));
    long npolls = s_parse_polls (job, tl_db_value (r, row, 4), tl_db_value (r, row, 5));
    if (nhours < 0 || npolls < 0) {
        snprintf (job->error, sizeof job->error, "store %lld: too many hours or polls", store);
        return TL_ETOOBIG;
    }
    if (npolls == 0)
        return 0;                       //  a store without a poll has no row
    an_store_tz_t *tz = s_zone (job, zone ? zone : S_DEFAULT_ZONE);
    if (!tz) {
        snprintf (job->error, sizeof job->error, "store %lld: zone %.64s unreadable", store,
                  zone ? zone : S_DEFAULT_ZONE);
        return TL_EINVAL;
    }
    an_report_figures_t f;
    int rc = an_report_store (job->report, tz, job->hours, (size_t) nhours, job->polls,
                              (size_t) npolls, job->now_us, &f);
    if (rc) {
        snprintf (job->error, sizeof job->error, "store %lld: %s", store, tl_strerror (rc));
        return rc;
    }
    if (an_report_doc_stores (job->doc) == AN_REPORT_MAX_STORES) {
        snprintf (job->error, sizeof job->error, "more than %d stores", AN_REPORT_MAX_STORES);
        return TL_ETOOBIG;
    }
    an_report_doc_add (job->doc, store, &f);
    rc = tl_buf_printf (job->csv, "%lld,%.2f,%.2f,%.2f,%.2f,%.2f,%.2f\r\n", store,
                        (double) f.up_us [AN_HOUR] / 60e6, (double) f.up_us [AN_DAY] / 3600e6,
                        (double) f.up_us [AN_WEEK] / 3600e6,
                        (double) f.down_us [AN_HOUR] / 60e6,
                        (double) f.down_us [AN_DAY] / 3600e6,
                        (double) f.down_us [AN_WEEK] / 3600e6);
    if (rc == TL_ETOOBIG)
        snprintf (job->error, sizeof job->error, "the CSV is larger than %ld bytes",
                  (long) AN_REPORT_MAX_CSV);
    return rc;
}

//  Walks the cursor (in a savepoint of the job's transaction).
static int
s_compute (tl_db_t *db, void *arg)
{
    s_job_t *job = (s_job_t *) arg;
    int err = 0;
    const char *values [] = { job->owner };
    //  JIT compiling costs more than it saves on this plan of index probes
    PGresult *r = tl_db_query (db, "SET LOCAL jit = off", 0, NULL, &err);
    PQclear (r);
    if (!r)
        return err;
    r = tl_db_query (db, S_CURSOR_SQL, 1, values, &err);
    PQclear (r);
    if (!r)
        return err;
    int rc = 0;
    for (;;) {
        r = tl_db_query (db, "FETCH " S_STR (AN_REPORT_FETCH) " FROM an_report", 0,
                         NULL, &err);
        if (!r)
            return err;
        int rows = PQntuples (r);
        for (int row = 0; rc == 0 && row < rows; row++)
            rc = s_store (job, r, row);
        PQclear (r);
        if (rc || rows < AN_REPORT_FETCH)
            break;
    }
    r = rc ? NULL : tl_db_query (db, "CLOSE an_report", 0, NULL, &err);
    PQclear (r);
    return rc;
}

//  Writes `us` (microseconds since the epoch) as RFC 3339 UTC, with a
//  fraction only when there is one: "2023-01-25T18:13:22.478508Z".
static void
s_format_us (int64_t us, char text [40])
{
    char seconds [TL_TIME_TEXT_SIZE];
    tl_time_format (us / 1000000 * 1000, seconds, sizeof seconds);
    seconds [strlen (seconds) - 1] = 0;             //  the Z
    if (us % 1000000)
        snprintf (text, 40, "%s.%06lldZ", seconds, (long long) (us % 1000000));
    else
        snprintf (text, 40, "%sZ", seconds);
}

//  Records the report complete with its files.
static int
s_finish (tl_db_t *db, const char *id, s_job_t *job)
{
    char now_text [40] = "", now_us [24], stores [24];
    if (an_report_doc_stores (job->doc))
        s_format_us (job->now_us, now_text);
    unsigned char *pdf = NULL;
    size_t pdf_size = 0;
    int rc = an_report_doc_render (job->doc, now_text, &pdf, &pdf_size);
    if (rc)
        return rc;
    snprintf (now_us, sizeof now_us, "%lld", (long long) job->now_us);
    snprintf (stores, sizeof stores, "%zu", an_report_doc_stores (job->doc));
    if (tl_buf_append (job->csv, "", 1) != 0) {     //  NUL-terminated text
        free (pdf);
        return TL_ENOMEM;
    }
    const char *values [] = { id, an_report_doc_stores (job->doc) ? now_us : NULL, stores,
                              tl_buf_data (job->csv), (const char *) pdf };
    int lengths [] = { 0, 0, 0, 0, (int) pdf_size };
    int formats [] = { 0, 0, 0, 0, 1 };
    PGresult *r = tl_db_exec_bin (db, "stores_report_done", 5, values, lengths, formats, &rc);
    PQclear (r);
    free (pdf);
    return r ? 0 : rc;
}

//  analytics.stores_report {id}: computes a running report and stores its
//  CSV and PDF. A failure no retry mends, or the last attempt's, marks the
//  report failed (and the job done); a database error is retried.
static int
s_report_job (tl_job_ctx_t *ctx)
{
    tl_db_t *db = tl_job_ctx_db (ctx);
    char id [40];
    const msgpack_object *payload = tl_job_ctx_payload (ctx);
    const msgpack_object *id_obj = payload ? tl_mp_get (payload, "id") : NULL;
    if (!id_obj || !tl_mp_copy (id_obj, id, sizeof id) || !tl_valid_uuid (id)) {
        tl_job_ctx_error (ctx, "no report id in the payload");
        return TL_EINVAL;
    }
    const char *values [] = { id };
    int rc = 0;
    PGresult *r = tl_db_exec (db, "stores_report_lock", 1, values, &rc);
    if (!r) {
        tl_job_ctx_error (ctx, "report %s: %s", id, tl_db_errmsg (db));
        return rc;
    }
    if (PQntuples (r) == 0) {
        PQclear (r);
        return 0;                       //  purged, or already finished
    }
    char owner [TL_MAX_ID_LEN + 1];
    snprintf (owner, sizeof owner, "%s", tl_db_value (r, 0, 0));
    PQclear (r);

    s_job_t job = { .owner = owner };
    job.report = an_report_new ();
    job.csv = tl_buf_new (AN_REPORT_MAX_CSV);
    job.zones = (s_zone_t *) calloc (AN_TZ_CACHE, sizeof *job.zones);
    job.hours = (an_report_hours_t *) malloc (AN_REPORT_MAX_HOURS * sizeof *job.hours);
    job.doc = an_report_doc_new ();
    rc = job.report && job.csv && job.zones && job.hours && job.doc ? 0 : TL_ENOMEM;
    if (rc == 0)
        rc = tl_buf_printf (job.csv, "store_id,uptime_last_hour,uptime_last_day,"
                            "uptime_last_week,downtime_last_hour,downtime_last_day,"
                            "downtime_last_week\r\n");
    if (rc == 0)
        rc = tl_db_tx (db, s_compute, &job);
    if (rc == 0)
        rc = s_finish (db, id, &job);
    bool final = *job.error || tl_job_ctx_attempt (ctx) >= tl_job_ctx_max_attempts (ctx);
    if (rc && final) {
        const char *why [] = { id, *job.error ? job.error : "the report could not be made" };
        r = tl_db_exec (db, "stores_report_failed", 2, why, NULL);
        tl_log (TL_LOG_WARN, NULL, "store report %s failed: %s", id, why [1]);
        rc = r ? 0 : TL_EDB;
        PQclear (r);
    }
    else
    if (rc)
        tl_job_ctx_error (ctx, "report %s: %s %s", id, tl_strerror (rc), tl_db_errmsg (db));
    for (size_t i = 0; i < job.nzones; i++)
        an_store_tz_destroy (&job.zones [i].tz);
    free (job.zones);
    free (job.hours);
    free (job.polls);
    tl_buf_destroy (&job.csv);
    an_report_doc_destroy (&job.doc);
    an_report_destroy (&job.report);
    return rc;
}

//  analytics.stores_purge (daily): deletes reports past AN_REPORT_KEEP_DAYS
//  days, AN_REPORT_PURGE_BATCH at a time.
static int
s_purge_job (tl_job_ctx_t *ctx)
{
    long purged = tl_job_ctx_purge (ctx, "stores_report_purge", AN_REPORT_PURGE_BATCH);
    return purged < 0 ? (int) purged : 0;
}

//  --- Handlers ------------------------------------------------------------------

typedef struct {
    const char *owner;
    bool busy;                      //  AN_REPORT_MAX_RUNNING already: none made
    char id [40];
} s_trigger_t;

//  The trigger's transaction: a running report and its job, both or none;
//  or none when the owner has AN_REPORT_MAX_RUNNING reports running or
//  queued (trigger->busy).
static int
s_trigger_tx (tl_db_t *db, void *arg)
{
    s_trigger_t *trigger = (s_trigger_t *) arg;
    int rc = 0;
    PGresult *r = tl_db_exec (db, "stores_report_running", 1, &trigger->owner, &rc);
    if (!r)
        return rc;
    trigger->busy = atol (tl_db_value (r, 0, 1)) >= AN_REPORT_MAX_RUNNING;
    PQclear (r);
    if (trigger->busy)
        return 0;
    r = tl_db_exec (db, "stores_report_new", 1, &trigger->owner, &rc);
    if (!r)
        return rc;
    snprintf (trigger->id, sizeof trigger->id, "%s", tl_db_value (r, 0, 0));
    PQclear (r);
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    tl_mp_pack_kv (&pk, "id", trigger->id);
    rc = tl_jobs_enqueue (db, "analytics.stores_report", body.data, body.size, NULL, 0,
                          S_ATTEMPTS);
    msgpack_sbuffer_destroy (&body);
    return rc < 0 ? rc : 0;
}

//  stores.reports.create: 202 {report_id} at once.
static void
s_reports_create (tl_call_t *call)
{
    s_trigger_t trigger = { .owner = tl_call_user (call) };
    if (!trigger.owner) {
        tl_call_error (call, 401, "unauthenticated", "log in first");
        return;
    }
    int rc = tl_db_tx (tl_call_db (call), s_trigger_tx, &trigger);
    if (rc) {
        tl_call_db_error (call, rc);
        return;
    }
    if (trigger.busy) {
        tl_call_error_retry (call, 429, AN_REPORT_RETRY_AFTER_S, "too_many_reports",
                             "at most %d reports of yours run or wait at a time: ask again "
                             "when one is complete", AN_REPORT_MAX_RUNNING);
        return;
    }
    char location [96];
    snprintf (location, sizeof location, "/api/v1/stores/reports/%s", trigger.id);
    msgpack_packer *pk = tl_call_reply (call, 202);
    msgpack_pack_map (pk, 1);
    tl_mp_pack_kv (pk, "report_id", trigger.id);
    tl_call_header (call, "Location", location);
}

//  The report `id` of the caller, or NULL after answering 404.
static PGresult *
s_load (tl_call_t *call, const char *statement)
{
    const char *id = tl_call_param (call, "report_id");
    const char *owner = tl_call_user (call);
    if (!id || !owner || !tl_valid_uuid (id)) {
        tl_call_error (call, 404, "not_found", "no such report");
        return NULL;
    }
    const char *values [] = { id, owner };
    return tl_call_exec_one (call, statement, 2, values, "report");
}

//  stores.reports.get: running, complete (links, stores, now) or failed.
static void
s_reports_get (tl_call_t *call)
{
    PGresult *r = s_load (call, "stores_report_get");
    if (!r)
        return;
    const char *status = tl_db_value (r, 0, 0);
    msgpack_packer *pk = tl_call_reply (call, 200);
    if (strcmp (status, "complete") == 0) {
        const char *id = tl_call_param (call, "report_id");
        char url [96], now [40] = "";
        const char *now_us = tl_db_value (r, 0, 2);
        msgpack_pack_map (pk, 5);
        tl_mp_pack_kv (pk, "status", status);
        snprintf (url, sizeof url, "/api/v1/stores/reports/%s/report.csv", id);
        tl_mp_pack_kv (pk, "csv_url", url);
        snprintf (url, sizeof url, "/api/v1/stores/reports/%s/report.pdf", id);
        tl_mp_pack_kv (pk, "pdf_url", url);
        tl_mp_pack_str (pk, "stores");
        msgpack_pack_int64 (pk, atoll (tl_db_value (r, 0, 3)));
        tl_mp_pack_str (pk, "now");
        if (now_us) {
            s_format_us (atoll (now_us), now);
            tl_mp_pack_str (pk, now);
        }
        else
            msgpack_pack_nil (pk);
    }
    else
    if (strcmp (status, "failed") == 0) {
        msgpack_pack_map (pk, 2);
        tl_mp_pack_kv (pk, "status", status);
        tl_mp_pack_kv (pk, "error", tl_db_value (r, 0, 1) ? tl_db_value (r, 0, 1) : "");
    }
    else {
        msgpack_pack_map (pk, 1);
        tl_mp_pack_kv (pk, "status", status);
    }
    PQclear (r);
}

//  stores.reports.csv: the report's CSV, once complete (404 before).
static void
s_reports_csv (tl_call_t *call)
{
    PGresult *r = s_load (call, "stores_report_csv");
    if (!r)
        return;
    const char *csv = tl_db_value (r, 0, 0);
    size_t size = strlen (csv);
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_bin (pk, (uint32_t) size);
    msgpack_pack_bin_body (pk, csv, size);
    tl_call_header (call, "Content-Type", "text/csv; charset=utf-8");
    tl_call_header (call, "Content-Disposition", "attachment; filename=\"report.csv\"");
    PQclear (r);
}

//  stores.reports.pdf: the report's PDF, once complete (404 before).
static void
s_reports_pdf (tl_call_t *call)
{
    PGresult *r = s_load (call, "stores_report_pdf");
    if (!r)
        return;
    size_t size = 0;
    unsigned char *pdf = PQunescapeBytea ((const unsigned char *) tl_db_value (r, 0, 0), &size);
    PQclear (r);
    if (!pdf) {
        tl_call_error (call, 503, "unavailable", "the report could not be read now");
        return;
    }
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_bin (pk, (uint32_t) size);
    msgpack_pack_bin_body (pk, pdf, size);
    tl_call_header (call, "Content-Type", "application/pdf");
    tl_call_header (call, "Content-Disposition", "inline; filename=\"report.pdf\"");
    PQfreemem (pdf);
}

int
analytics_stores_reports_register (tl_service_t *svc)
{
    int rc = tl_service_on (svc, "stores.reports.create", s_reports_create);
    rc = rc ? rc : tl_service_on (svc, "stores.reports.get", s_reports_get);
    rc = rc ? rc : tl_service_on (svc, "stores.reports.csv", s_reports_csv);
    rc = rc ? rc : tl_service_on (svc, "stores.reports.pdf", s_reports_pdf);
    rc = rc ? rc : tl_service_job (svc, "analytics.stores_report", s_report_job);
    rc = rc ? rc : tl_service_job (svc, "analytics.stores_purge", s_purge_job);
    rc = rc ? rc : tl_service_schedule (svc, "analytics.stores_purge",
                                        "analytics.stores_purge", "daily");
    return rc;
}
