//  analytics_stores_source.c — PUT, GET and DELETE /stores/source (shared/
//  API.md "Store monitoring"): a user's three CSV URLs {status_url,
//  hours_url, timezones_url}, polled hourly by the durable job
//  analytics.stores_poll into the same tables as POST /stores/data.
//
//  PUT replaces the source (a new generation: the poll chain of the old one
//  stops at its next run) and enqueues its first poll at once, in the same
//  transaction. Each poll, for each file: a conditional GET (the last
//  load's ETag / Last-Modified), through the platform's SSRF guard (private
//  addresses only with TALLY_WEBHOOK_ALLOW_PRIVATE), its 200 body streamed
//  into the load (analytics_stores_pull: COPY, staging, merge, all or
//  nothing, at most AN_CSV_MAX_BYTES); a 304 loads nothing. The file's
//  state (polled, loaded, rows, HTTP status, error, bad lines) is recorded
//  on the job's clock, and the next poll enqueued AN_SOURCE_INTERVAL_S
//  later. A failed file keeps the data loaded before and its validators,
//  so the next poll fetches it whole again.
#include "analytics_service.h"
#include "an_store_limits.h"
#include "tl_env.h"
#include "tl_error.h"
#include "tl_json.h"
#include "tl_log.h"
#include "tl_mp.h"
#include "tl_valid.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S_STR_(x)       #x
#define S_STR(x)        S_STR_(x)

static int s_fetch_flags;

//  The kinds, in the order a poll loads them, and their body fields
static const char *s_kinds [] = { "timezones", "hours", "status" };
static const char *s_fields [] = { "timezones_url", "hours_url", "status_url" };

#define S_RFC3339(col) \
    "to_char (" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

static const tl_db_statement_t s_statements [] = {
    //  A PUT or DELETE takes the source's row without waiting: a poll holds
    //  it for as long as its files take (minutes, for 100 MiB files)
    { "source_try_lock",
      "SELECT 1 FROM store_sources WHERE owner = $1 FOR UPDATE SKIP LOCKED", 1 },
    { "source_exists", "SELECT 1 FROM store_sources WHERE owner = $1", 1 },
    { "source_put",
      "INSERT INTO store_sources (owner) VALUES ($1) ON CONFLICT (owner) DO UPDATE "
      "SET generation = gen_random_uuid (), updated_at = now () RETURNING generation", 1 },
    { "source_files_clear", "DELETE FROM store_source_files WHERE owner = $1", 1 },
    { "source_file_add",
      "INSERT INTO store_source_files (owner, kind, url) VALUES ($1, $2, $3)", 3 },
    { "source_get",
      "SELECT " S_RFC3339 ("s.updated_at") ", f.kind, f.url, " S_RFC3339 ("f.polled_at") ", "
      "  " S_RFC3339 ("f.loaded_at") ", f.rows, f.http_status, f.error, f.bad_lines::text "
      "FROM store_sources s LEFT JOIN store_source_files f ON f.owner = s.owner "
      "WHERE s.owner = $1 ORDER BY f.kind", 1 },
    { "source_delete", "DELETE FROM store_sources WHERE owner = $1", 1 },
    //  The job: the source, if still of this generation, locked
    { "source_poll_lock",
      "SELECT 1 FROM store_sources WHERE owner = $1 AND generation = $2 FOR UPDATE", 2 },
    { "source_poll_file",
      "SELECT url, etag, last_modified FROM store_source_files WHERE owner = $1 AND kind = $2", 2 },
    //  $1 owner, $2 kind, $3 clock (ms), $4 HTTP status (or NULL), $5 error
    //  (NULL: loaded or not modified), $6 bad lines (jsonb or NULL), $7
    //  loaded, $8 rows, $9 ETag, $10 Last-Modified (of a load: '' for none)
    { "source_poll_record",
      "UPDATE store_source_files SET polled_at = to_timestamp ($3::bigint / 1000.0), "
      "  http_status = $4::int, error = $5, bad_lines = $6::jsonb, "
      "  loaded_at = CASE WHEN $7::bool THEN to_timestamp ($3::bigint / 1000.0) "
      "                  ELSE loaded_at END, "
      "  rows = CASE WHEN $7::bool THEN $8::bigint ELSE rows END, "
      "  etag = CASE WHEN $7::bool THEN nullif ($9, '') ELSE etag END, "
      "  last_modified = CASE WHEN $7::bool THEN nullif ($10, '') ELSE last_modified END "
      "WHERE owner = $1 AND kind = $2", 10 },
};

int
analytics_stores_source_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

//  Enqueues the poll of `owner`'s source of `generation` at `run_at_ms` (0:
//  now), once per time. Returns 1, 0 (already there) or a code.
static int
s_enqueue_poll (tl_db_t *db, const char *owner, const char *generation, int64_t run_at_ms)
{
    char key [128];
    snprintf (key, sizeof key, "analytics.stores_poll:%s:%lld", generation,
              (long long) run_at_ms);
    msgpack_sbuffer payload;
    msgpack_sbuffer_init (&payload);
    tl_mp_pack_pairs (&payload, (const char *[]) { "owner", owner, "generation", generation }, 2);
    int rc = tl_jobs_enqueue (db, "analytics.stores_poll", payload.data, payload.size, key,
                              run_at_ms, AN_SOURCE_ATTEMPTS);
    msgpack_sbuffer_destroy (&payload);
    return rc;
}

//  --- The job -------------------------------------------------------------------

//  Polls one file and records its state. Returns 0 (whatever the file's
//  outcome) or a database code.
static int
s_poll_file (tl_db_t *db, const char *owner, const char *kind, int64_t clock_ms)
{
    int err = 0;
    const char *keys [] = { owner, kind };
    PGresult *r = tl_db_exec (db, "source_poll_file", 2, keys, &err);
    if (!r)
        return err;
    if (PQntuples (r) == 0) {
        PQclear (r);
        return 0;                       //  this source has no such file
    }
    analytics_stores_pull_t pull = {
        .owner = owner, .kind = kind, .url = tl_db_value (r, 0, 0),
        .if_etag = tl_db_value (r, 0, 1), .if_last_modified = tl_db_value (r, 0, 2),
        .flags = s_fetch_flags };
    int rc = analytics_stores_pull (db, &pull);
    PQclear (r);
    if (rc) {
        free (pull.bad_lines);
        return rc;
    }
    char clock [24], status [24], rows [24];
    snprintf (clock, sizeof clock, "%lld", (long long) clock_ms);
    snprintf (status, sizeof status, "%ld", pull.http_status);
    snprintf (rows, sizeof rows, "%zu", pull.rows);
    const char *values [] = {
        owner, kind, clock, pull.http_status ? status : NULL, *pull.error ? pull.error : NULL,
        pull.bad_lines, pull.loaded ? "t" : "f", rows, pull.etag, pull.last_modified };
    long count = tl_db_exec_count (db, "source_poll_record", 10, values);
    tl_log (pull.error [0] ? TL_LOG_WARN : TL_LOG_INFO, NULL,
            "store source of %s, %s: %s%s", owner, kind,
            pull.loaded ? "loaded" : pull.not_modified ? "not modified" : "failed: ",
            pull.error);
    free (pull.bad_lines);
    return count < 0 ? (int) count : 0;
}

//  analytics.stores_poll: polls each file of the owner's source, if it is
//  still the generation the job was made for, then enqueues the next poll.
static int
s_poll_job (tl_job_ctx_t *job)
{
    const msgpack_object *payload = tl_job_ctx_payload (job);
    char owner [TL_MAX_ID_LEN + 1], generation [40];
    if (!tl_mp_copy (tl_mp_get (payload, "owner"), owner, sizeof owner)
    ||  !tl_mp_copy (tl_mp_get (payload, "generation"), generation, sizeof generation))
        return 0;                       //  a payload no version wrote: nothing to do
    tl_db_t *db = tl_job_ctx_db (job);
    int64_t clock_ms = tl_job_ctx_clock_ms (job);
    int err = 0;
    PGresult *r = tl_db_exec (db, "source_poll_lock", 2,
                              (const char *[]) { owner, generation }, &err);
    if (!r) {
        tl_job_ctx_error (job, "store source of %s: %s", owner, tl_strerror (err));
        return err;
    }
    bool current = PQntuples (r) == 1;
    PQclear (r);
    if (!current)
        return 0;                       //  deleted or replaced: the chain ends
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof s_kinds / sizeof s_kinds [0]; i++)
        rc = s_poll_file (db, owner, s_kinds [i], clock_ms);
    if (rc == 0) {
        rc = s_enqueue_poll (db, owner, generation, clock_ms + AN_SOURCE_INTERVAL_S * 1000LL);
        rc = rc < 0 ? rc : 0;
    }
    if (rc)
        tl_job_ctx_error (job, "store source of %s: %s %s", owner, tl_strerror (rc),
                          tl_db_errmsg (db));
    return rc;
}

//  --- Handlers --------------------------------------------------------------------

//  True for a URL a source may poll: http or https, at most
//  AN_SOURCE_MAX_URL bytes (tl_valid_http_url).
static bool
s_url_ok (const char *url)
{
    return strlen (url) <= AN_SOURCE_MAX_URL && tl_valid_http_url (url)
        && (strncasecmp (url, "http://", 7) == 0 || strncasecmp (url, "https://", 8) == 0);
}

typedef struct {
    const char *owner;
    char *urls [3];                 //  in the order of s_kinds, NULL when not given
    char generation [40];
    bool busy;                      //  a poll holds the source: nothing done
    long deleted;                   //  DELETE: sources deleted (0 or 1)
} s_put_t;

//  Takes the owner's source row, if there is one, without waiting. Returns
//  0 (taken, or there is none) or a code; sets put->busy when a poll (or
//  another PUT) holds it.
static int
s_try_lock (tl_db_t *db, s_put_t *put)
{
    int err = 0;
    PGresult *r = tl_db_exec (db, "source_try_lock", 1, &put->owner, &err);
    if (!r)
        return err;
    bool taken = PQntuples (r) == 1;
    PQclear (r);
    if (taken)
        return 0;
    r = tl_db_exec (db, "source_exists", 1, &put->owner, &err);
    if (!r)
        return err;
    put->busy = PQntuples (r) == 1;
    PQclear (r);
    return 0;
}

//  PUT's transaction: the source with a new generation, its files (their
//  state starts over), and its first poll, now; or nothing when busy.
static int
s_put_tx (tl_db_t *db, void *arg)
{
    s_put_t *put = (s_put_t *) arg;
    put->busy = false;
    int err = s_try_lock (db, put);
    if (err || put->busy)
        return err;
    PGresult *r = tl_db_exec (db, "source_put", 1, &put->owner, &err);
    if (!r)
        return err;
    snprintf (put->generation, sizeof put->generation, "%s", tl_db_value (r, 0, 0));
    PQclear (r);
    long count = tl_db_exec_count (db, "source_files_clear", 1, &put->owner);
    for (size_t i = 0; count >= 0 && i < 3; i++)
        if (put->urls [i])
            count = tl_db_exec_count (db, "source_file_add", 3,
                                      (const char *[]) { put->owner, s_kinds [i], put->urls [i] });
    if (count < 0)
        return (int) count;
    int rc = s_enqueue_poll (db, put->owner, put->generation, 0);
    return rc < 0 ? rc : 0;
}

//  Answers the caller's source: {status_url, hours_url, timezones_url,
//  updated_at, files: {kind: {url, polled_at, loaded_at, rows,
//  http_status, error, bad_lines}}} with `status`; 404 when none.
static void
s_reply_source (tl_call_t *call, int status)
{
    const char *owner = tl_call_user (call);
    int err = 0;
    PGresult *r = tl_db_exec (tl_call_db (call), "source_get", 1, &owner, &err);
    if (!r) {
        tl_call_db_error (call, err);
        return;
    }
    int rows = PQntuples (r);
    if (rows == 0) {
        PQclear (r);
        tl_call_error (call, 404, "not_found", "no source: PUT one first");
        return;
    }
    msgpack_packer *pk = tl_call_reply (call, status);
    msgpack_pack_map (pk, 5);
    for (size_t i = 0; i < 3; i++) {
        tl_mp_pack_str (pk, s_fields [i]);
        const char *url = NULL;
        for (int row = 0; row < rows; row++)
            if (tl_db_value (r, row, 1) && strcmp (tl_db_value (r, row, 1), s_kinds [i]) == 0)
                url = tl_db_value (r, row, 2);
        if (url)
            tl_mp_pack_str (pk, url);
        else
            msgpack_pack_nil (pk);
    }
    tl_mp_pack_kv (pk, "updated_at", tl_db_value (r, 0, 0));
    tl_mp_pack_str (pk, "files");
    int files = 0;
    for (int row = 0; row < rows; row++)
        files += tl_db_value (r, row, 1) != NULL;
    msgpack_pack_map (pk, (uint32_t) files);
    static const char *keys [] = { "url", "polled_at", "loaded_at", "rows", "http_status",
                                   "error" };
    for (int row = 0; row < rows; row++) {
        if (!tl_db_value (r, row, 1))
            continue;
        tl_mp_pack_str (pk, tl_db_value (r, row, 1));
        msgpack_pack_map (pk, 7);
        for (int col = 0; col < 6; col++) {
            const char *value = tl_db_value (r, row, 2 + col);
            tl_mp_pack_str (pk, keys [col]);
            if (!value)
                msgpack_pack_nil (pk);
            else
            if (col == 3 || col == 4)
                msgpack_pack_int64 (pk, atoll (value));
            else
                tl_mp_pack_str (pk, value);
        }
        tl_mp_pack_str (pk, "bad_lines");
        const char *bad = tl_db_value (r, row, 8);
        json_t *lines = bad ? json_loadb (bad, strlen (bad), 0, NULL) : NULL;
        if (!lines || tl_json_pack (lines, pk) != 0)
            msgpack_pack_array (pk, 0);
        json_decref (lines);
    }
    PQclear (r);
}

//  409 while a poll of the caller's source runs.
static void
s_reply_busy (tl_call_t *call)
{
    tl_call_error_retry (call, 409, AN_SOURCE_BUSY_RETRY_S, "poll_running",
                         "your source is being polled now: ask again when the poll ends");
}

//  stores.source.put: PUT /stores/source {status_url, hours_url,
//  timezones_url}: each an http(s) URL or absent / null, at least one.
static void
s_source_put (tl_call_t *call)
{
    s_put_t put = { .owner = tl_call_user (call) };
    if (!put.owner) {
        tl_call_error (call, 401, "unauthenticated", "log in first");
        return;
    }
    bool ok = true;
    size_t given = 0;
    for (size_t i = 0; ok && i < 3; i++) {
        ok = tl_call_text (call, NULL, s_fields [i], NULL, AN_SOURCE_MAX_URL + 1, &put.urls [i],
                           NULL);
        if (ok && put.urls [i] && !s_url_ok (put.urls [i])) {
            tl_call_field_error (call, 400, "invalid_field", s_fields [i],
                                 "an absolute http or https URL of at most "
                                 S_STR (AN_SOURCE_MAX_URL) " bytes");
            ok = false;
        }
        given += put.urls [i] != NULL;
    }
    if (ok && given == 0) {
        tl_call_error (call, 400, "invalid_body",
                       "give at least one of status_url, hours_url, timezones_url");
        ok = false;
    }
    int rc = ok ? tl_db_tx (tl_call_db (call), s_put_tx, &put) : 0;
    if (ok && rc)
        tl_call_db_error (call, rc);
    else
    if (ok && put.busy)
        s_reply_busy (call);
    else
    if (ok)
        s_reply_source (call, 200);
    for (size_t i = 0; i < 3; i++)
        free (put.urls [i]);
}

//  stores.source.get: the source and each file's state; 404 when none.
static void
s_source_get (tl_call_t *call)
{
    if (!tl_call_user (call)) {
        tl_call_error (call, 401, "unauthenticated", "log in first");
        return;
    }
    s_reply_source (call, 200);
}

//  DELETE's transaction: the source and its files go, unless busy.
static int
s_delete_tx (tl_db_t *db, void *arg)
{
    s_put_t *put = (s_put_t *) arg;
    put->busy = false;
    int err = s_try_lock (db, put);
    if (err || put->busy)
        return err;
    put->deleted = tl_db_exec_count (db, "source_delete", 1, &put->owner);
    return put->deleted < 0 ? (int) put->deleted : 0;
}

//  stores.source.delete: stops polling (the data loaded stays); 404 when
//  there was none; 409 while a poll runs.
static void
s_source_delete (tl_call_t *call)
{
    s_put_t put = { .owner = tl_call_user (call) };
    if (!put.owner) {
        tl_call_error (call, 401, "unauthenticated", "log in first");
        return;
    }
    int rc = tl_db_tx (tl_call_db (call), s_delete_tx, &put);
    if (rc)
        tl_call_db_error (call, rc);
    else
    if (put.busy)
        s_reply_busy (call);
    else
    if (put.deleted == 0)
        tl_call_error (call, 404, "not_found", "no source");
    else
        tl_call_reply_empty (call, 204);
}

int
analytics_stores_source_register (tl_service_t *svc)
{
    s_fetch_flags = tl_env_flag ("TALLY_WEBHOOK_ALLOW_PRIVATE", false) ? TL_FETCH_ALLOW_PRIVATE : 0;
    int rc = tl_service_on (svc, "stores.source.put", s_source_put);
    rc = rc ? rc : tl_service_on (svc, "stores.source.get", s_source_get);
    rc = rc ? rc : tl_service_on (svc, "stores.source.delete", s_source_delete);
    rc = rc ? rc : tl_service_job (svc, "analytics.stores_poll", s_poll_job);
    return rc;
}
