//  tl_jobs.c — durable jobs over the schema's `jobs` table: enqueue (in the
//  caller's transaction), claim with FOR UPDATE SKIP LOCKED under a lease,
//  run with the completion in one transaction, retry with back-off, and
//  recurring schedules that enqueue their latest occurrence once. See
//  tl_jobs.h.
#include "tl_jobs.h"
#include "tl_time.h"
#include "tl_error.h"
#include "tl_limits.h"
#include "tl_log.h"
#include "tl_mp.h"
#include "tl_msg.h"

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <czmq.h>
#include <sodium.h>

#include "tl_migrate.h"         //  self-test only

//  "now" of a statement: parameter $n in ms since the epoch, or NULL for
//  the database's now(). Integer arithmetic: no rounding through floats.
#define S_NOW(n) "COALESCE (timestamptz 'epoch' + $" #n "::bigint * interval '1 millisecond', now ())"
#define S_MS(column) "floor (extract (epoch FROM " column ") * 1000)::bigint"
//  NOTIFY channel of the connection's schema (an identifier: 63 bytes at
//  most; schemas that share a long prefix only wake each other for nothing)
#define S_CHANNEL "left ('tally_jobs.' || current_schema (), 63)"
//  The claim that a worker holds: fencing on (locked_by, attempts)
#define S_MINE "id = $1 AND locked_by = $2 AND attempts = $3" \
               " AND done_at IS NULL AND dead_at IS NULL"

static const tl_db_statement_t s_statements [] = {
    {   "tl_jobs_enqueue",
        "WITH job AS ("
        " INSERT INTO jobs (kind, payload, unique_key, run_at, max_attempts)"
        " VALUES ($1, $2, $3, " S_NOW (4) ", $5)"
        " ON CONFLICT (unique_key) DO NOTHING RETURNING id)"
        " SELECT id, pg_notify (" S_CHANNEL ", '') FROM job", 5 },
    {   "tl_jobs_now",
        "SELECT " S_MS ("now ()"), 0 },
    {   "tl_jobs_claim",
        "WITH due AS ("
        " SELECT id FROM jobs"
        " WHERE done_at IS NULL AND dead_at IS NULL AND run_at <= " S_NOW (1)
        " AND (locked_until IS NULL OR locked_until <= " S_NOW (1) ")"
        " AND kind = ANY ($4::text[])"
        " ORDER BY run_at, id LIMIT $2 FOR UPDATE SKIP LOCKED),"
        " claimed AS ("
        " UPDATE jobs AS j SET attempts = j.attempts + 1, locked_by = $3,"
        " locked_until = now () + $5::bigint * interval '1 millisecond'"
        " FROM due WHERE j.id = due.id"
        " RETURNING j.id, j.kind, j.payload, j.unique_key, j.attempts, j.max_attempts,"
        " j.run_at)"
        " SELECT id, kind, payload, unique_key, attempts, max_attempts, " S_MS ("run_at")
        " FROM claimed ORDER BY run_at, id", 5 },
    {   "tl_jobs_own",
        "SELECT 1 FROM jobs WHERE " S_MINE " FOR UPDATE", 3 },
    {   "tl_jobs_release",
        "UPDATE jobs SET locked_until = NULL, locked_by = NULL, attempts = attempts - 1"
        " WHERE " S_MINE, 3 },
    {   "tl_jobs_complete",
        "UPDATE jobs SET done_at = now (), locked_until = NULL WHERE " S_MINE, 3 },
    {   "tl_jobs_fail",
        "UPDATE jobs SET locked_until = NULL, last_error = $4,"
        " dead_at = CASE WHEN attempts >= max_attempts THEN now () END,"
        " run_at = CASE WHEN attempts >= max_attempts THEN run_at"
        " ELSE " S_NOW (5) " + $6::bigint * interval '1 millisecond' END"
        " WHERE " S_MINE " RETURNING dead_at IS NOT NULL", 6 },
    {   "tl_jobs_list",
        "SELECT id, kind, unique_key,"
        " to_char (run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
        " attempts, max_attempts, last_error,"
        " CASE WHEN done_at IS NOT NULL THEN 'done' WHEN dead_at IS NOT NULL THEN 'dead'"
        " WHEN locked_until > now () THEN 'running' ELSE 'due' END"
        " FROM jobs WHERE CASE $1::text"
        " WHEN 'due' THEN done_at IS NULL AND dead_at IS NULL"
        " WHEN 'running' THEN done_at IS NULL AND dead_at IS NULL AND locked_until > now ()"
        " WHEN 'done' THEN done_at IS NOT NULL"
        " WHEN 'dead' THEN dead_at IS NOT NULL"
        " ELSE true END"
        " ORDER BY id DESC LIMIT $2", 2 },
    {   "tl_jobs_retry",
        "UPDATE jobs SET run_at = now (), dead_at = NULL, locked_until = NULL,"
        " max_attempts = GREATEST (max_attempts, attempts + 1)"
        " WHERE id = $1 AND done_at IS NULL"
        " AND (dead_at IS NOT NULL OR last_error IS NOT NULL)"
        " AND (locked_until IS NULL OR locked_until <= now ())", 1 },
    {   "tl_jobs_exists",
        "SELECT 1 FROM jobs WHERE id = $1", 1 },
    {   "tl_jobs_purge",
        "DELETE FROM jobs WHERE id IN ("
        " SELECT id FROM jobs WHERE done_at < now () - make_interval (hours => $1::int)"
        " AND unique_key IS NULL LIMIT $2 FOR UPDATE SKIP LOCKED)", 2 },
    {   "tl_jobs_channel",
        "SELECT " S_CHANNEL, 0 },
    //  The local date of "now" in zone $2, plus $4 days, and the instant
    //  at which the local time $3 falls on that date (PostgreSQL moves a
    //  time in a spring-forward gap past the gap, and takes one of the two
    //  instants of a fall-back hour: never none, never both).
    {   "tl_jobs_local_daily",
        "SELECT to_char (d, 'YYYY-MM-DD'),"
        " (extract (epoch FROM ((d + $3::time) AT TIME ZONE $2)) * 1000)::bigint"
        " FROM (SELECT ((coalesce (to_timestamp ($1::bigint / 1000.0), now ()) AT TIME ZONE $2)::date"
        "              + $4::int) AS d) AS local", 4 },
};

typedef enum { S_EVERY, S_MONTHLY, S_YEARLY } s_period_t;

typedef struct {
    char kind [TL_JOBS_MAX_KIND_LEN + 1];
    tl_job_fn *fn;
} s_handler_t;

typedef struct {
    char name [TL_JOBS_MAX_KIND_LEN + 1];
    char kind [TL_JOBS_MAX_KIND_LEN + 1];
    s_period_t period;
    int64_t every_sec;          //  S_EVERY
    _Atomic int64_t last_ms;    //  latest occurrence known enqueued (a cache)
} s_schedule_t;

struct _tl_jobs_t {
    char worker [TL_MAX_ID_LEN + 1];
    s_handler_t handlers [TL_JOBS_MAX_HANDLERS];
    int nhandlers;
    char *kinds;                //  the handlers' kinds as a text[] literal
    s_schedule_t schedules [TL_JOBS_MAX_SCHEDULES];
    int nschedules;
};

struct _tl_job_ctx_t {
    int64_t id;
    char kind [TL_JOBS_MAX_KIND_LEN + 1];
    char *unique_key;
    char *payload;              //  packed, or NULL
    size_t payload_size;
    msgpack_zone zone;
    msgpack_object object;
    int unpacked;               //  0 not yet, 1 ok, -1 corrupt
    int attempt;
    int max_attempts;
    int64_t run_at_ms;
    int64_t now_ms;
    char worker [TL_MAX_ID_LEN + 1];
    tl_db_t *db;                //  while the handler runs
    char error [TL_JOBS_MAX_ERROR_LEN + 1];
};

//  ---------------------------------------------------------------------
//  Helpers

static int
s_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

//  A kind or schedule name: [a-z0-9_.:-]{1,TL_JOBS_MAX_KIND_LEN}.
static int
s_check_kind (const char *kind)
{
    if (!kind || !*kind)
        return TL_EINVAL;
    if (strnlen (kind, TL_JOBS_MAX_KIND_LEN + 1) > TL_JOBS_MAX_KIND_LEN)
        return TL_ETOOBIG;
    for (const char *c = kind; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || strchr ("_.:-", *c)))
            return TL_EINVAL;
    return 0;
}

//  ms as decimal text, or NULL for 0 ("the database's now").
static const char *
s_clock (int64_t now_ms, char *text, size_t size)
{
    if (now_ms == 0)
        return NULL;
    snprintf (text, size, "%" PRId64, now_ms);
    return text;
}

//  Copies `text` into `buffer` as printable ASCII on one line.
static void
s_sanitise (char *buffer, size_t size, const char *text)
{
    snprintf (buffer, size, "%s", text ? text : "");
    for (char *c = buffer; *c; c++)
        if ((unsigned char) *c < 0x20 || (unsigned char) *c > 0x7e)
            *c = '?';
}

//  The wait before retry `attempt` (1-based): base * 2^(attempt-1), capped,
//  plus up to a quarter more at random, so that jobs that failed together
//  do not all come back together.
static int64_t
s_backoff_ms (int attempt)
{
    int64_t delay = TL_JOBS_BACKOFF_CAP_MS;
    if (attempt < 1)
        attempt = 1;
    if (attempt <= 32) {
        int64_t exp = (int64_t) TL_JOBS_BACKOFF_BASE_MS << (attempt - 1);
        if (exp < delay)
            delay = exp;
    }
    return delay + (int64_t) randombytes_uniform ((uint32_t) (delay / 4) + 1);
}

static int
s_db_now (tl_db_t *db, int64_t *now_ms)
{
    int rc = 0;
    PGresult *r = tl_db_exec (db, "tl_jobs_now", 0, NULL, &rc);
    const char *value = tl_db_value (r, 0, 0);
    if (r && value)
        *now_ms = strtoll (value, NULL, 10);
    else
    if (rc == 0)
        rc = TL_EDB;
    PQclear (r);
    return rc;
}


//  ---------------------------------------------------------------------
//  Enqueueing

int
tl_jobs_enqueue (tl_db_t *db, const char *kind, const void *payload, size_t size,
                 const char *unique_key, int64_t run_at_ms, int max_attempts)
{
    assert (db);
    int rc = s_check_kind (kind);
    if (rc)
        return rc;
    if ((!payload && size) || (payload && !size) || run_at_ms < 0 || max_attempts < 0)
        return TL_EINVAL;
    if (size > (size_t) TL_JOBS_MAX_PAYLOAD || max_attempts > TL_JOBS_MAX_ATTEMPTS_MAX)
        return TL_ETOOBIG;
    if (payload) {
        size_t used = 0;
        rc = tl_mp_scan ((const char *) payload, size, &used);
        if (rc)
            return rc;
        if (used != size)
            return TL_EINVAL;       //  more than one value
    }
    if (unique_key && (!*unique_key || strnlen (unique_key, TL_JOBS_MAX_KEY_LEN + 1) > TL_JOBS_MAX_KEY_LEN))
        return *unique_key ? TL_ETOOBIG : TL_EINVAL;
    rc = s_prepare (db);
    if (rc)
        return rc;
    char run_at [24], attempts [16];
    snprintf (attempts, sizeof attempts, "%d",
              max_attempts ? max_attempts : TL_JOBS_MAX_ATTEMPTS_DEFAULT);
    const char *values [] = {
        kind, (const char *) payload, unique_key,
        s_clock (run_at_ms, run_at, sizeof run_at), attempts
    };
    const int lengths [] = { 0, (int) size, 0, 0, 0 };
    const int formats [] = { 0, 1, 0, 0, 0 };
    PGresult *r = tl_db_exec_bin (db, "tl_jobs_enqueue", 5, values, lengths, formats, &rc);
    if (!r)
        return rc;
    int enqueued = PQntuples (r) == 1 ? 1 : 0;
    PQclear (r);
    return enqueued;
}

int
tl_jobs_enqueue_local_daily (tl_db_t *db, const char *kind, const char *subject,
                             const char *zone, const char *local_time,
                             int days_ahead, int64_t now_ms,
                             const void *payload, size_t size)
{
    assert (db);
    if (!subject || !*subject || !zone || !local_time
    ||  strlen (subject) > TL_MAX_ID_LEN || strlen (zone) > 64
    ||  strlen (local_time) != 5 || days_ahead < 0 || days_ahead > 366)
        return TL_EINVAL;
    int rc = s_prepare (db);
    if (rc)
        return rc;
    char now_text [24], days [8];
    snprintf (days, sizeof days, "%d", days_ahead);
    const char *values [] = { s_clock (now_ms, now_text, sizeof now_text),
                              zone, local_time, days };
    //  A bad zone or time is the caller's data: TL_EINVAL, not a crash.
    PGresult *r = tl_db_exec (db, "tl_jobs_local_daily", 4, values, &rc);
    if (!r)
        return rc;
    char key [TL_JOBS_MAX_KEY_LEN + 1];
    snprintf (key, sizeof key, "%s:%s:%s", kind, subject, tl_db_value (r, 0, 0));
    int64_t run_at = strtoll (tl_db_value (r, 0, 1), NULL, 10);
    PQclear (r);
    return tl_jobs_enqueue (db, kind, payload, size, key, run_at > 0 ? run_at : 1, 0);
}

//  ---------------------------------------------------------------------
//  The registry

tl_jobs_t *
tl_jobs_new (const char *worker)
{
    if (worker && (!*worker || strlen (worker) > TL_MAX_ID_LEN))
        return NULL;
    if (sodium_init () < 0)
        return NULL;
    tl_jobs_t *self = (tl_jobs_t *) calloc (1, sizeof (tl_jobs_t));
    if (!self)
        return NULL;
    self->kinds = strdup ("{}");
    if (!self->kinds) {
        free (self);
        return NULL;
    }
    tl_jobs_set_worker (self, worker);
    return self;
}

void
tl_jobs_destroy (tl_jobs_t **self_p)
{
    assert (self_p);
    tl_jobs_t *self = *self_p;
    if (!self)
        return;
    free (self->kinds);
    free (self);
    *self_p = NULL;
}

void
tl_jobs_set_worker (tl_jobs_t *self, const char *worker)
{
    assert (self);
    if (worker && *worker)
        snprintf (self->worker, sizeof self->worker, "%s", worker);
    else {
        char host [32] = "localhost";
        gethostname (host, sizeof host - 1);
        snprintf (self->worker, sizeof self->worker, "%.32s:%d", host, (int) getpid ());
    }
}

static s_handler_t *
s_handler (tl_jobs_t *self, const char *kind)
{
    for (int i = 0; i < self->nhandlers; i++)
        if (streq (self->handlers [i].kind, kind))
            return &self->handlers [i];
    return NULL;
}

int
tl_jobs_on (tl_jobs_t *self, const char *kind, tl_job_fn *fn)
{
    assert (self);
    int rc = s_check_kind (kind);
    if (rc)
        return rc;
    if (!fn)
        return TL_EINVAL;
    if (s_handler (self, kind))
        return TL_EEXIST;
    if (self->nhandlers == TL_JOBS_MAX_HANDLERS)
        return TL_ETOOBIG;
    //  The text[] literal of every kind: {"a","b"} (kinds need no escaping)
    size_t size = strlen (self->kinds) + strlen (kind) + 4;
    char *kinds = (char *) malloc (size);
    if (!kinds)
        return TL_ENOMEM;
    snprintf (kinds, size, "%.*s%s\"%s\"}", (int) strlen (self->kinds) - 1, self->kinds,
              self->nhandlers ? "," : "", kind);
    free (self->kinds);
    self->kinds = kinds;
    s_handler_t *handler = &self->handlers [self->nhandlers++];
    strcpy (handler->kind, kind);
    handler->fn = fn;
    return 0;
}

//  Parses a schedule spec into `schedule`. Returns 0 or TL_EINVAL.
static int
s_parse_spec (const char *spec, s_schedule_t *schedule)
{
    schedule->every_sec = 0;
    if (streq (spec, "monthly"))
        schedule->period = S_MONTHLY;
    else
    if (streq (spec, "yearly"))
        schedule->period = S_YEARLY;
    else
    if (streq (spec, "hourly"))
        spec = "every 1h";
    else
    if (streq (spec, "daily"))
        spec = "every 1d";
    if (strncmp (spec, "every ", 6) == 0) {
        const char *digits = spec + 6;
        size_t count = strspn (digits, "0123456789");
        if (count == 0 || count > 9 || strlen (digits + count) != 1)
            return TL_EINVAL;
        int64_t n = strtoll (digits, NULL, 10);
        switch (digits [count]) {
            case 's': break;
            case 'm': n *= 60; break;
            case 'h': n *= 3600; break;
            case 'd': n *= 86400; break;
            default: return TL_EINVAL;
        }
        if (n <= 0)
            return TL_EINVAL;
        schedule->period = S_EVERY;
        schedule->every_sec = n;
        return 0;
    }
    return streq (spec, "monthly") || streq (spec, "yearly") ? 0 : TL_EINVAL;
}

int
tl_jobs_schedule (tl_jobs_t *self, const char *name, const char *kind, const char *spec)
{
    assert (self);
    int rc = s_check_kind (name);
    if (rc == 0)
        rc = s_check_kind (kind);
    if (rc)
        return rc;
    s_schedule_t parsed;
    if (!spec || s_parse_spec (spec, &parsed) != 0)
        return TL_EINVAL;
    for (int i = 0; i < self->nschedules; i++)
        if (streq (self->schedules [i].name, name))
            return TL_EEXIST;
    if (self->nschedules == TL_JOBS_MAX_SCHEDULES)
        return TL_ETOOBIG;
    s_schedule_t *schedule = &self->schedules [self->nschedules++];
    strcpy (schedule->name, name);
    strcpy (schedule->kind, kind);
    schedule->period = parsed.period;
    schedule->every_sec = parsed.every_sec;
    atomic_init (&schedule->last_ms, -1);
    return 0;
}

//  ---------------------------------------------------------------------
//  Schedules

//  The latest occurrence of `schedule` at or before `now_ms`.
static int64_t
s_occurrence (const s_schedule_t *schedule, int64_t now_ms)
{
    int64_t now_sec = now_ms / 1000;
    if (schedule->period == S_EVERY)
        return now_sec / schedule->every_sec * schedule->every_sec * 1000;
    time_t seconds = (time_t) now_sec;
    struct tm tm;
    gmtime_r (&seconds, &tm);
    tm.tm_mday = 1;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    if (schedule->period == S_YEARLY)
        tm.tm_mon = 0;
    return (int64_t) timegm (&tm) * 1000;
}

int
tl_jobs_materialise (tl_jobs_t *self, tl_db_t *db, int64_t now_ms)
{
    assert (self);
    assert (db);
    if (self->nschedules == 0)
        return 0;
    if (now_ms < 0)
        return TL_EINVAL;
    int rc = s_prepare (db);
    if (rc == 0 && now_ms == 0)
        rc = s_db_now (db, &now_ms);
    if (rc)
        return rc;
    int created = 0;
    for (int i = 0; i < self->nschedules; i++) {
        s_schedule_t *schedule = &self->schedules [i];
        int64_t occurrence = s_occurrence (schedule, now_ms);
        if (occurrence == atomic_load (&schedule->last_ms))
            continue;           //  known to be enqueued already
        char at [32], key [TL_JOBS_MAX_KIND_LEN + 40];
        tl_time_format (occurrence, at, sizeof at);
        snprintf (key, sizeof key, "%s@%s", schedule->name, at);
        msgpack_sbuffer buffer;
        msgpack_sbuffer_init (&buffer);
        msgpack_packer pk;
        msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
        msgpack_pack_map (&pk, 2);
        tl_mp_pack_kv (&pk, "schedule", schedule->name);
        tl_mp_pack_kv (&pk, "at", at);
        rc = tl_jobs_enqueue (db, schedule->kind, buffer.data, buffer.size, key, occurrence, 0);
        msgpack_sbuffer_destroy (&buffer);
        if (rc < 0)
            return rc;
        created += rc;
        //  Inside a transaction the row may yet roll back: no caching then
        if (!tl_db_in_tx (db))
            atomic_store (&schedule->last_ms, occurrence);
    }
    return created;
}

//  ---------------------------------------------------------------------
//  Claiming and running

static tl_job_ctx_t *
s_job_new (tl_jobs_t *self, const PGresult *r, int row, int64_t now_ms)
{
    tl_job_ctx_t *job = (tl_job_ctx_t *) calloc (1, sizeof (tl_job_ctx_t));
    if (!job)
        return NULL;
    msgpack_zone_init (&job->zone, 1024);
    job->id = strtoll (tl_db_value (r, row, 0), NULL, 10);
    snprintf (job->kind, sizeof job->kind, "%s", tl_db_value (r, row, 1));
    const char *payload = tl_db_value (r, row, 2);
    const char *key = tl_db_value (r, row, 3);
    job->attempt = atoi (tl_db_value (r, row, 4));
    job->max_attempts = atoi (tl_db_value (r, row, 5));
    job->run_at_ms = strtoll (tl_db_value (r, row, 6), NULL, 10);
    job->now_ms = now_ms;
    strcpy (job->worker, self->worker);
    bool ok = true;
    if (key)
        ok = (job->unique_key = strdup (key)) != NULL;
    if (ok && payload) {
        size_t size = 0;
        unsigned char *bytes = PQunescapeBytea ((const unsigned char *) payload, &size);
        ok = bytes != NULL;
        if (ok && size > 0) {
            job->payload = (char *) malloc (size);
            ok = job->payload != NULL;
            if (ok) {
                memcpy (job->payload, bytes, size);
                job->payload_size = size;
            }
        }
        PQfreemem (bytes);
    }
    if (!ok)
        tl_job_ctx_destroy (&job);
    return job;
}

int
tl_jobs_claim (tl_jobs_t *self, tl_db_t *db, int64_t now_ms, int max, tl_job_ctx_t **jobs)
{
    assert (self);
    assert (db);
    assert (jobs);
    if (max < 1 || now_ms < 0)
        return TL_EINVAL;
    if (max > TL_JOBS_CLAIM_MAX)
        return TL_ETOOBIG;
    if (self->nhandlers == 0)
        return 0;
    int rc = s_prepare (db);
    if (rc)
        return rc;
    char now [24], limit [16], lease [16];
    snprintf (limit, sizeof limit, "%d", max);
    snprintf (lease, sizeof lease, "%d", TL_JOBS_LEASE_MS);
    const char *values [] = {
        s_clock (now_ms, now, sizeof now), limit, self->worker, self->kinds, lease
    };
    PGresult *r = tl_db_exec (db, "tl_jobs_claim", 5, values, &rc);
    if (!r)
        return rc;
    int count = 0;
    for (int row = 0; row < PQntuples (r) && row < max; row++) {
        tl_job_ctx_t *job = s_job_new (self, r, row, now_ms);
        if (!job) {
            //  Out of memory: the rest come back when their lease expires
            rc = count ? 0 : TL_ENOMEM;
            break;
        }
        jobs [count++] = job;
    }
    PQclear (r);
    return rc ? rc : count;
}

//  Runs statement `name` with the job's fencing parameters (and `extra`
//  more). Returns how many rows it touched, or a negative code; the
//  result's first value in `*flag` when `flag` is not NULL.
static int
s_mine (tl_db_t *db, const char *name, tl_job_ctx_t *job, const char *const *extra,
        int nextra, bool *flag)
{
    int rc = s_prepare (db);
    if (rc)
        return rc;
    char id [24], attempt [16];
    snprintf (id, sizeof id, "%" PRId64, job->id);
    snprintf (attempt, sizeof attempt, "%d", job->attempt);
    const char *values [6] = { id, job->worker, attempt };
    for (int i = 0; i < nextra; i++)
        values [3 + i] = extra [i];
    PGresult *r = tl_db_exec (db, name, 3 + nextra, values, &rc);
    if (!r)
        return rc;
    int rows = PQresultStatus (r) == PGRES_TUPLES_OK
             ? PQntuples (r) : atoi (PQcmdTuples (r));
    if (flag) {
        const char *value = tl_db_value (r, 0, 0);
        *flag = value && streq (value, "t");
    }
    PQclear (r);
    return rows;
}

int
tl_jobs_complete (tl_db_t *db, tl_job_ctx_t *job)
{
    assert (db);
    assert (job);
    int rows = s_mine (db, "tl_jobs_complete", job, NULL, 0, NULL);
    return rows < 0 ? rows : rows == 1 ? 0 : TL_EBUSY;
}

int
tl_jobs_release (tl_db_t *db, tl_job_ctx_t *job)
{
    assert (db);
    assert (job);
    int rows = s_mine (db, "tl_jobs_release", job, NULL, 0, NULL);
    return rows < 0 ? rows : rows == 1 ? 0 : TL_EBUSY;
}

int
tl_jobs_fail (tl_db_t *db, tl_job_ctx_t *job, const char *error)
{
    assert (db);
    assert (job);
    char text [TL_JOBS_MAX_ERROR_LEN + 1];
    s_sanitise (text, sizeof text, error && *error ? error : "failed");
    char now [24], delay [24];
    snprintf (delay, sizeof delay, "%" PRId64, s_backoff_ms (job->attempt));
    const char *extra [] = { text, s_clock (job->now_ms, now, sizeof now), delay };
    bool dead = false;
    int rows = s_mine (db, "tl_jobs_fail", job, extra, 3, &dead);
    if (rows < 0)
        return rows;
    if (rows == 0)
        return TL_EBUSY;
    return dead ? TL_JOBS_DEAD : TL_JOBS_RETRY;
}

typedef struct {
    tl_jobs_t *self;
    tl_job_ctx_t *job;
    int outcome;
} s_run_t;

static int
s_handler_tx (tl_db_t *db, void *arg)
{
    s_run_t *run = (s_run_t *) arg;
    s_handler_t *handler = s_handler (run->self, run->job->kind);
    if (!handler) {
        tl_job_ctx_error (run->job, "no handler for kind %s", run->job->kind);
        return TL_ENOTFOUND;
    }
    int rc = handler->fn (run->job);
    return rc > 0 ? TL_EINVAL : rc;
}

//  The job's transaction: own it, run it in a savepoint, record the end.
static int
s_run_tx (tl_db_t *db, void *arg)
{
    s_run_t *run = (s_run_t *) arg;
    tl_job_ctx_t *job = run->job;
    run->outcome = -1;
    //  The row lock keeps every claim (whatever its clock) off this job
    //  until it ends; the fencing columns prove the lease is still ours.
    int rows = s_mine (db, "tl_jobs_own", job, NULL, 0, NULL);
    if (rows <= 0)
        return rows < 0 ? rows : TL_EBUSY;
    job->error [0] = 0;
    job->db = db;
    int rc = tl_db_tx (db, s_handler_tx, run);
    job->db = NULL;
    if (rc == TL_ERETRY || (rc == TL_EUNAVAIL && !tl_db_ping (db)))
        return rc;              //  the whole transaction again, or nothing
    if (rc == 0) {
        rc = tl_jobs_complete (db, job);
        if (rc == 0)
            run->outcome = TL_JOBS_DONE;
        return rc;
    }
    if (!job->error [0]) {
        const char *detail = tl_db_errmsg (db);
        tl_job_ctx_error (job, "%s%s%s", tl_strerror (rc), *detail ? ": " : "", detail);
    }
    rc = tl_jobs_fail (db, job, job->error);
    if (rc < 0)
        return rc;
    run->outcome = rc;
    return 0;
}

int
tl_jobs_run (tl_jobs_t *self, tl_db_t *db, tl_job_ctx_t *job)
{
    assert (self);
    assert (db);
    assert (job);
    if (tl_db_in_tx (db))
        return TL_EINVAL;       //  the job's end must commit with its work
    s_run_t run = { self, job, -1 };
    int rc = tl_db_tx (db, s_run_tx, &run);
    if (rc == 0 && run.outcome == TL_JOBS_DEAD)
        tl_log (TL_LOG_WARN, NULL, "job %" PRId64 " (%s) is dead after %d attempt(s): %s",
                job->id, job->kind, job->attempt, job->error);
    else
    if (rc == 0 && run.outcome == TL_JOBS_RETRY)
        tl_log (TL_LOG_INFO, NULL, "job %" PRId64 " (%s) failed, attempt %d of %d: %s",
                job->id, job->kind, job->attempt, job->max_attempts, job->error);
    else
    if (rc && rc != TL_EBUSY)
        tl_log (TL_LOG_ERROR, NULL, "job %" PRId64 " (%s) not recorded: %s: %s",
                job->id, job->kind, tl_strerror (rc), tl_db_errmsg (db));
    return rc ? rc : run.outcome;
}

int
tl_jobs_run_due (tl_jobs_t *self, tl_db_t *db, int64_t now_ms, int max, int *failed)
{
    assert (self);
    assert (db);
    if (failed)
        *failed = 0;
    int rc = tl_jobs_materialise (self, db, now_ms);
    if (rc < 0)
        return rc;
    int ran = 0;
    for (int claims = 0; ran < max && claims < 2 * max; claims++) {
        tl_job_ctx_t *job = NULL;
        rc = tl_jobs_claim (self, db, now_ms, 1, &job);
        if (rc <= 0)
            break;
        rc = tl_jobs_run (self, db, job);
        tl_job_ctx_destroy (&job);
        if (rc == TL_EBUSY)
            continue;           //  another claim took it over
        if (rc < 0)
            break;
        ran++;
        if (failed && rc != TL_JOBS_DONE)
            (*failed)++;
    }
    return rc < 0 && ran == 0 ? rc : ran;
}

//  ---------------------------------------------------------------------
//  Waiting for work

//  LISTENs on the schema's channel.
static int
s_listen (tl_db_t *db)
{
    int rc = s_prepare (db);
    if (rc)
        return rc;
    PGresult *r = tl_db_exec (db, "tl_jobs_channel", 0, NULL, &rc);
    const char *channel = tl_db_value (r, 0, 0);
    char *quoted = channel
                 ? PQescapeIdentifier (tl_db_conn (db), channel, strlen (channel)) : NULL;
    PQclear (r);
    if (!quoted)
        return rc ? rc : TL_EDB;
    char sql [160];
    snprintf (sql, sizeof sql, "LISTEN %s", quoted);
    PQfreemem (quoted);
    PQclear (tl_db_query (db, sql, 0, NULL, &rc));
    return rc;
}

//  Takes every pending notification; true if there was one.
static bool
s_notified (PGconn *conn)
{
    bool any = false;
    PGnotify *note;
    while ((note = PQnotifies (conn))) {
        PQfreemem (note);
        any = true;
    }
    return any;
}

int
tl_jobs_wait (tl_db_t *db, int *listener, int timeout_ms)
{
    assert (db);
    assert (listener);
    if (tl_db_in_tx (db))
        return TL_EINVAL;
    PGconn *conn = tl_db_conn (db);
    if (PQstatus (conn) != CONNECTION_OK || *listener != PQbackendPID (conn)) {
        //  First call, or tl_db reconnected: what was sent meanwhile is lost
        *listener = 0;
        int rc = s_listen (db);
        if (rc)
            return rc;
        *listener = PQbackendPID (tl_db_conn (db));
        return 1;
    }
    int64_t deadline = zclock_mono () + timeout_ms;
    while (true) {
        if (!PQconsumeInput (conn)) {
            *listener = 0;
            return TL_EUNAVAIL;
        }
        if (s_notified (conn))
            return 1;
        int64_t left = deadline - zclock_mono ();
        if (left <= 0)
            return 0;
        struct pollfd item = { PQsocket (conn), POLLIN, 0 };
        if (poll (&item, 1, (int) left) < 0 && errno != EINTR)
            return TL_EIO;
    }
}

//  ---------------------------------------------------------------------
//  Operations

int
tl_jobs_list (tl_db_t *db, const char *state, int limit, msgpack_packer *pk)
{
    assert (db);
    assert (pk);
    if (!state || !(streq (state, "due") || streq (state, "running") || streq (state, "dead")
                 || streq (state, "done") || streq (state, "all")))
        return TL_EINVAL;
    if (limit < 1 || limit > TL_LIST_LIMIT_MAX)
        return TL_EINVAL;
    int rc = s_prepare (db);
    if (rc)
        return rc;
    char count [16];
    snprintf (count, sizeof count, "%d", limit);
    const char *values [] = { state, count };
    PGresult *r = tl_db_exec (db, "tl_jobs_list", 2, values, &rc);
    if (!r)
        return rc;
    msgpack_pack_map (pk, 1);
    tl_mp_pack_str (pk, "items");
    msgpack_pack_array (pk, (size_t) PQntuples (r));
    for (int row = 0; row < PQntuples (r); row++) {
        msgpack_pack_map (pk, 8);
        tl_mp_pack_str (pk, "id");
        msgpack_pack_int64 (pk, strtoll (tl_db_value (r, row, 0), NULL, 10));
        tl_mp_pack_kv (pk, "kind", tl_db_value (r, row, 1));
        tl_mp_pack_kv (pk, "unique_key", tl_db_value (r, row, 2));
        tl_mp_pack_kv (pk, "run_at", tl_db_value (r, row, 3));
        tl_mp_pack_str (pk, "attempts");
        msgpack_pack_int (pk, atoi (tl_db_value (r, row, 4)));
        tl_mp_pack_str (pk, "max_attempts");
        msgpack_pack_int (pk, atoi (tl_db_value (r, row, 5)));
        tl_mp_pack_kv (pk, "last_error", tl_db_value (r, row, 6));
        tl_mp_pack_kv (pk, "state", tl_db_value (r, row, 7));
    }
    PQclear (r);
    return 0;
}

int
tl_jobs_retry (tl_db_t *db, int64_t id)
{
    assert (db);
    int rc = s_prepare (db);
    if (rc)
        return rc;
    char text [24];
    snprintf (text, sizeof text, "%" PRId64, id);
    const char *values [] = { text };
    PGresult *r = tl_db_exec (db, "tl_jobs_retry", 1, values, &rc);
    if (!r)
        return rc;
    bool retried = streq (PQcmdTuples (r), "1");
    PQclear (r);
    if (retried)
        return 0;
    r = tl_db_exec (db, "tl_jobs_exists", 1, values, &rc);
    if (!r)
        return rc;
    bool exists = PQntuples (r) == 1;
    PQclear (r);
    return exists ? TL_EBUSY : TL_ENOTFOUND;
}

int
tl_jobs_purge (tl_db_t *db)
{
    assert (db);
    int rc = s_prepare (db);
    if (rc)
        return rc;
    char hours [16], batch [16];
    snprintf (hours, sizeof hours, "%d", TL_JOBS_DONE_TTL_HOURS);
    snprintf (batch, sizeof batch, "%d", TL_JOBS_PURGE_BATCH);
    const char *values [] = { hours, batch };
    long count = tl_db_exec_count (db, "tl_jobs_purge", 2, values);
    return count <= TL_JOBS_PURGE_BATCH ? (int) count : TL_EDB;
}


//  ---------------------------------------------------------------------
//  The job in hand

tl_db_t *
tl_job_ctx_db (tl_job_ctx_t *self)
{
    assert (self);
    return self->db;
}

int64_t
tl_job_ctx_id (tl_job_ctx_t *self)
{
    assert (self);
    return self->id;
}

const char *
tl_job_ctx_kind (tl_job_ctx_t *self)
{
    assert (self);
    return self->kind;
}

const char *
tl_job_ctx_unique_key (tl_job_ctx_t *self)
{
    assert (self);
    return self->unique_key;
}

int
tl_job_ctx_attempt (tl_job_ctx_t *self)
{
    assert (self);
    return self->attempt;
}

int
tl_job_ctx_max_attempts (tl_job_ctx_t *self)
{
    assert (self);
    return self->max_attempts;
}

int64_t
tl_job_ctx_run_at_ms (tl_job_ctx_t *self)
{
    assert (self);
    return self->run_at_ms;
}

int64_t
tl_job_ctx_now_ms (tl_job_ctx_t *self)
{
    assert (self);
    return self->now_ms;
}

int64_t
tl_job_ctx_clock_ms (tl_job_ctx_t *self)
{
    assert (self);
    return self->now_ms ? self->now_ms : (int64_t) tl_msg_now_ms ();
}

long
tl_job_ctx_purge (tl_job_ctx_t *self, const char *name, long batch)
{
    char clock [24];
    snprintf (clock, sizeof clock, "%" PRId64, tl_job_ctx_clock_ms (self));
    const char *values [] = { clock };
    long total = 0, count;
    do {
        count = tl_db_exec_count (self->db, name, 1, values);
        total += count > 0 ? count : 0;
    } while (count == batch);
    if (count < 0) {
        tl_job_ctx_error (self, "%s failed: %s", name, tl_db_errmsg (self->db));
        return count;
    }
    return total;
}


const msgpack_object *
tl_job_ctx_payload (tl_job_ctx_t *self)
{
    assert (self);
    if (!self->payload)
        return NULL;
    if (self->unpacked == 0)
        self->unpacked = tl_mp_unpack (self->payload, self->payload_size, &self->zone,
                                       &self->object) == 0 ? 1 : -1;
    return self->unpacked == 1 ? &self->object : NULL;
}

void
tl_job_ctx_error (tl_job_ctx_t *self, const char *format, ...)
{
    assert (self);
    char text [TL_JOBS_MAX_ERROR_LEN + 1];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof text, format, args);
    va_end (args);
    s_sanitise (self->error, sizeof self->error, text);
}

void
tl_job_ctx_destroy (tl_job_ctx_t **self_p)
{
    assert (self_p);
    tl_job_ctx_t *self = *self_p;
    if (!self)
        return;
    msgpack_zone_destroy (&self->zone);
    free (self->unique_key);
    free (self->payload);
    free (self);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------
//  Self-test

#define S_TEST_THREADS 4

//  What the test handlers see and do.
static struct {
    tl_jobs_t *thief;           //  claims from inside a running job
    tl_db_t *other;
    int64_t far_future;
    int ran;                    //  handler calls
    int stolen;                 //  what the thief got
} s_test;

//  Records its run in table t, then succeeds.
static int
s_test_ok (tl_job_ctx_t *job)
{
    s_test.ran++;
    char id [24], attempt [16];
    snprintf (id, sizeof id, "%" PRId64, tl_job_ctx_id (job));
    snprintf (attempt, sizeof attempt, "%d", tl_job_ctx_attempt (job));
    const char *values [] = { id, attempt };
    int rc = 0;
    PQclear (tl_db_query (tl_job_ctx_db (job), "INSERT INTO t (job, attempt) VALUES ($1, $2)",
                          2, values, &rc));
    return rc;
}

//  Records its run, then fails: the record must not survive.
static int
s_test_fail (tl_job_ctx_t *job)
{
    assert (s_test_ok (job) == 0);
    tl_job_ctx_error (job, "broken on attempt %d\n", tl_job_ctx_attempt (job));
    return TL_EINVAL;
}

//  While this job runs, a claim at any clock must not get it.
static int
s_test_steal (tl_job_ctx_t *job)
{
    s_test.ran++;
    tl_job_ctx_t *stolen [4];
    int count = tl_jobs_claim (s_test.thief, s_test.other, s_test.far_future, 4, stolen);
    assert (count >= 0);
    s_test.stolen = count;
    for (int i = 0; i < count; i++)
        tl_job_ctx_destroy (&stolen [i]);
    return 0;
}

static void
s_test_exec (tl_db_t *db, const char *sql, const char *param)
{
    tl_db_test_scalar (db, sql, param);     //  asserts success
}

static int64_t
s_test_job_int (tl_db_t *db, const char *sql, int64_t id)
{
    char text [24];
    snprintf (text, sizeof text, "%" PRId64, id);
    return tl_db_test_scalar (db, sql, text);
}

//  Claims exactly `expected` (0 or 1) job at `now_ms`; returns it or NULL.
static tl_job_ctx_t *
s_test_claim (tl_jobs_t *jobs, tl_db_t *db, int64_t now_ms, int expected)
{
    tl_job_ctx_t *claimed [2] = { NULL, NULL };
    int count = tl_jobs_claim (jobs, db, now_ms, 2, claimed);
    if (count != expected)
        fprintf (stderr, "\nclaimed %d job(s), expected %d\n", count, expected);
    assert (count == expected);
    return claimed [0];
}

//  Takes every pending notification on the listener.
static void
s_test_quiet (tl_db_t *db, int *listener)
{
    while (tl_jobs_wait (db, listener, 100) == 1)
        ;
}

typedef struct {
    tl_db_t *other;
    int *listener;
    int result;
} s_test_outbox_t;

//  Enqueues inside a transaction; before commit nobody sees it or hears of it.
static int
s_test_outbox_tx (tl_db_t *db, void *arg)
{
    s_test_outbox_t *outbox = (s_test_outbox_t *) arg;
    assert (tl_jobs_enqueue (db, "test.other", NULL, 0, "outbox", 0, 0) == 1);
    assert (tl_db_test_scalar (db, "SELECT count(*) FROM jobs WHERE unique_key = 'outbox'", NULL) == 1);
    assert (tl_db_test_scalar (outbox->other, "SELECT count(*) FROM jobs WHERE unique_key = 'outbox'",
                        NULL) == 0);
    assert (tl_jobs_wait (outbox->other, outbox->listener, 200) == 0);
    return outbox->result;
}

typedef struct {
    const char *url;
    const char *schema;
    int64_t now_ms;
    pthread_barrier_t *start;
    int result;
} s_test_racer_t;

//  One instance materialising the shared schedule at the same time as
//  the others.
static void *
s_test_racer (void *arg)
{
    s_test_racer_t *racer = (s_test_racer_t *) arg;
    tl_db_t *db = tl_db_new (racer->url, racer->schema);
    assert (db);
    tl_jobs_t *jobs = tl_jobs_new (NULL);
    assert (jobs);
    assert (tl_jobs_schedule (jobs, "race", "test.ok", "hourly") == 0);
    assert (s_prepare (db) == 0);
    pthread_barrier_wait (racer->start);
    racer->result = tl_jobs_materialise (jobs, db, racer->now_ms);
    tl_jobs_destroy (&jobs);
    tl_db_destroy (&db);
    return NULL;
}

//  The local-time daily occurrence: one job per local date, at the right
//  instant, across both daylight-saving changes of New York.
static int64_t
s_test_run_at (tl_db_t *db, const char *key)
{
    const char *values [] = { key };
    int err = 0;
    PGresult *r = tl_db_query (db, "SELECT (extract (epoch FROM run_at) * 1000)::bigint"
                                   " FROM jobs WHERE unique_key = $1", 1, values, &err);
    assert (r && PQntuples (r) == 1);
    int64_t ms = strtoll (tl_db_value (r, 0, 0), NULL, 10);
    PQclear (r);
    return ms;
}

//  A released claim is taken again at once, its attempt not counted.
static void
s_test_release (tl_jobs_t *jobs, tl_db_t *db)
{
    assert (tl_jobs_enqueue (db, "test.ok", NULL, 0, "release-me", 0, 0) == 1);
    tl_job_ctx_t *claimed [1];
    assert (tl_jobs_claim (jobs, db, 0, 1, claimed) == 1);
    assert (streq (tl_job_ctx_unique_key (claimed [0]), "release-me"));
    assert (tl_job_ctx_attempt (claimed [0]) == 1);
    assert (tl_jobs_release (db, claimed [0]) == 0);
    assert (tl_jobs_release (db, claimed [0]) == TL_EBUSY);     //  once
    tl_job_ctx_destroy (&claimed [0]);
    assert (tl_jobs_claim (jobs, db, 0, 1, claimed) == 1);
    assert (tl_job_ctx_attempt (claimed [0]) == 1);
    assert (tl_jobs_complete (db, claimed [0]) == 0);
    tl_job_ctx_destroy (&claimed [0]);
    PQclear (tl_db_query (db, "DELETE FROM jobs WHERE unique_key = 'release-me'", 0, NULL,
                          &(int) { 0 }));
}

static void
s_test_local_daily (tl_db_t *db)
{
    int64_t t = 0;
    const char *ny = "America/New_York";
    //  An ordinary day: 20:00 EST is 01:00Z the next day.
    assert (tl_time_parse ("2026-01-15T12:00Z", &t) == 0);
    assert (tl_jobs_enqueue_local_daily (db, "test.remind", "u1", ny, "20:00", 0, t, NULL, 0) == 1);
    assert (tl_jobs_enqueue_local_daily (db, "test.remind", "u1", ny, "20:00", 0, t, NULL, 0) == 0);
    int64_t expect = 0;
    assert (tl_time_parse ("2026-01-16T01:00Z", &expect) == 0);
    assert (s_test_run_at (db, "test.remind:u1:2026-01-15") == expect);
    //  Spring forward (2026-03-08, 02:00 → 03:00): 02:30 does not exist;
    //  the job still runs that day, once, just after the gap.
    assert (tl_time_parse ("2026-03-08T05:00Z", &t) == 0);
    assert (tl_jobs_enqueue_local_daily (db, "test.remind", "u1", ny, "02:30", 0, t, NULL, 0) == 1);
    assert (tl_time_parse ("2026-03-08T07:30Z", &expect) == 0);
    assert (s_test_run_at (db, "test.remind:u1:2026-03-08") == expect);
    //  Fall back (2026-11-01, 01:00-02:00 twice): 01:30 happens twice; one
    //  job, whichever clock reading asks (EDT or EST).
    assert (tl_time_parse ("2026-11-01T05:10Z", &t) == 0);     //  01:10 EDT
    assert (tl_jobs_enqueue_local_daily (db, "test.remind", "u1", ny, "01:30", 0, t, NULL, 0) == 1);
    assert (tl_time_parse ("2026-11-01T06:10Z", &t) == 0);     //  01:10 EST
    assert (tl_jobs_enqueue_local_daily (db, "test.remind", "u1", ny, "01:30", 0, t, NULL, 0) == 0);
    //  Tomorrow's occurrence has its own key.
    assert (tl_jobs_enqueue_local_daily (db, "test.remind", "u1", ny, "01:30", 1, t, NULL, 0) == 1);
    assert (s_test_run_at (db, "test.remind:u1:2026-11-02") > 0);
    //  Bad zone or time: refused, nothing enqueued.
    assert (tl_jobs_enqueue_local_daily (db, "test.remind", "u2", "Mars/Olympus", "20:00", 0, t, NULL, 0) < 0);
    assert (tl_jobs_enqueue_local_daily (db, "test.remind", "u2", ny, "25:00", 0, t, NULL, 0) < 0);
    assert (tl_jobs_enqueue_local_daily (db, "test.remind", "u2", ny, "8pm", 0, t, NULL, 0) == TL_EINVAL);
    PGresult *r = tl_db_query (db, "DELETE FROM jobs WHERE kind = 'test.remind'", 0, NULL, &(int) { 0 });
    PQclear (r);
}

void
tl_jobs_test (bool verbose)
{
    //  Specs need no database

    //  Back-off: doubling from the base, capped, a quarter of jitter at most
    for (int attempt = 1; attempt <= 40; attempt++) {
        int64_t expected = attempt <= 13 ? (int64_t) TL_JOBS_BACKOFF_BASE_MS << (attempt - 1)
                                         : TL_JOBS_BACKOFF_CAP_MS;
        if (expected > TL_JOBS_BACKOFF_CAP_MS)
            expected = TL_JOBS_BACKOFF_CAP_MS;
        int64_t delay = s_backoff_ms (attempt);
        assert (delay >= expected && delay <= expected + expected / 4);
    }

    //  The registry's rules
    assert (tl_jobs_new ("") == NULL);
    tl_jobs_t *jobs = tl_jobs_new ("tester");
    assert (jobs);
    assert (tl_jobs_on (jobs, "test.ok", s_test_ok) == 0);
    assert (tl_jobs_on (jobs, "test.fail", s_test_fail) == 0);
    assert (tl_jobs_on (jobs, "test.steal", s_test_steal) == 0);
    assert (streq (jobs->kinds, "{\"test.ok\",\"test.fail\",\"test.steal\"}"));
    assert (tl_jobs_on (jobs, "test.ok", s_test_ok) == TL_EEXIST);
    assert (tl_jobs_on (jobs, "Test", s_test_ok) == TL_EINVAL);
    assert (tl_jobs_on (jobs, "a b", s_test_ok) == TL_EINVAL);
    assert (tl_jobs_on (jobs, "x", NULL) == TL_EINVAL);
    const char *bad_specs [] = {
        "every 0s", "every", "every 5", "every 5x", "every -1h", "every 1h ", "weekly",
        "every 9999999999s", "", NULL
    };
    for (int i = 0; bad_specs [i]; i++)
        assert (tl_jobs_schedule (jobs, "s", "test.ok", bad_specs [i]) == TL_EINVAL);
    assert (tl_jobs_schedule (jobs, "s", "test.ok", NULL) == TL_EINVAL);
    assert (tl_jobs_schedule (jobs, "S", "test.ok", "hourly") == TL_EINVAL);
    assert (tl_jobs_schedule (jobs, "tick", "test.ok", "every 1h") == 0);
    assert (tl_jobs_schedule (jobs, "tick", "test.ok", "daily") == TL_EEXIST);

    //  Occurrences: the latest at or before now
    s_schedule_t every = { .period = S_EVERY, .every_sec = 3600 };
    int64_t hour = 1796083200000;                      //  2026-12-01T00:00Z
    assert (s_occurrence (&every, hour) == hour);
    assert (s_occurrence (&every, hour + 3599999) == hour);
    assert (s_occurrence (&every, hour + 3600000) == hour + 3600000);
    s_schedule_t monthly = { .period = S_MONTHLY };
    s_schedule_t yearly = { .period = S_YEARLY };
    int64_t march = 0, first = 0, january = 0;
    assert (tl_time_parse ("2026-03-15T12:34:56Z", &march) == 0);
    assert (tl_time_parse ("2026-03-01T00:00Z", &first) == 0);
    assert (tl_time_parse ("2026-01-01T00:00Z", &january) == 0);
    assert (s_occurrence (&monthly, march) == first);
    assert (s_occurrence (&monthly, first) == first);
    assert (s_occurrence (&monthly, first - 1) < first);
    assert (s_occurrence (&yearly, march) == january);

    char schema [40];
    const char *url = tl_db_test_url ("tl_jobs_test", schema, sizeof schema);
    if (!url) {
        tl_jobs_destroy (&jobs);
        return;
    }
    tl_db_t *db = tl_db_new (url, schema);
    assert (db);
    assert (tl_migrate (db, schema, NULL) == 0);        //  creates jobs
    s_test_local_daily (db);
    s_test_release (jobs, db);
    tl_db_t *other = tl_db_new (url, schema);
    assert (other);
    s_test_exec (db, "CREATE TABLE t (job bigint, attempt int)", NULL);
    int64_t now = (int64_t) tl_msg_now_ms ();           //  the same machine's clock
    int listener = 0;
    assert (tl_jobs_wait (other, &listener, 0) == 1);   //  starts listening
    assert (listener > 0);
    assert (tl_jobs_wait (other, &listener, 50) == 0);

    //  Enqueue: arguments
    char long_kind [TL_JOBS_MAX_KIND_LEN + 2];
    memset (long_kind, 'k', sizeof long_kind - 1);
    long_kind [sizeof long_kind - 1] = 0;
    char long_key [TL_JOBS_MAX_KEY_LEN + 2];
    memset (long_key, 'u', sizeof long_key - 1);
    long_key [sizeof long_key - 1] = 0;
    const char two_values [] = { 0x01, 0x02 };
    const char truncated [] = { (char) 0x92, 0x01 };   //  an array of 2 holding 1
    assert (tl_jobs_enqueue (db, "", NULL, 0, NULL, 0, 0) == TL_EINVAL);
    assert (tl_jobs_enqueue (db, NULL, NULL, 0, NULL, 0, 0) == TL_EINVAL);
    assert (tl_jobs_enqueue (db, long_kind, NULL, 0, NULL, 0, 0) == TL_ETOOBIG);
    assert (tl_jobs_enqueue (db, "test.ok", two_values, 2, NULL, 0, 0) == TL_EINVAL);
    assert (tl_jobs_enqueue (db, "test.ok", truncated, 2, NULL, 0, 0) == TL_EINVAL);
    assert (tl_jobs_enqueue (db, "test.ok", NULL, 3, NULL, 0, 0) == TL_EINVAL);
    assert (tl_jobs_enqueue (db, "test.ok", NULL, 0, long_key, 0, 0) == TL_ETOOBIG);
    assert (tl_jobs_enqueue (db, "test.ok", NULL, 0, "", 0, 0) == TL_EINVAL);
    assert (tl_jobs_enqueue (db, "test.ok", NULL, 0, NULL, -1, 0) == TL_EINVAL);
    assert (tl_jobs_enqueue (db, "test.ok", NULL, 0, NULL, 0, -1) == TL_EINVAL);
    assert (tl_jobs_enqueue (db, "test.ok", NULL, 0, NULL, 0, TL_JOBS_MAX_ATTEMPTS_MAX + 1)
            == TL_ETOOBIG);
    assert (tl_db_test_scalar (db, "SELECT count(*) FROM jobs", NULL) == 0);
    assert (tl_jobs_wait (other, &listener, 50) == 0);

    //  Enqueue outside a transaction; the unique key holds in any state.
    //  (Kind test.other has no handler here: it is never claimed.)
    assert (tl_jobs_enqueue (db, "test.other", NULL, 0, "once", 0, 0) == 1);
    assert (tl_jobs_wait (other, &listener, 2000) == 1);       //  woken at once
    assert (tl_jobs_enqueue (db, "test.other", NULL, 0, "once", 0, 0) == 0);
    assert (tl_db_test_scalar (db, "SELECT count(*) FROM jobs WHERE unique_key = 'once'", NULL) == 1);
    assert (tl_db_test_scalar (db, "SELECT max_attempts FROM jobs WHERE unique_key = 'once'", NULL)
            == TL_JOBS_MAX_ATTEMPTS_DEFAULT);
    s_test_quiet (other, &listener);

    //  The transactional outbox: a rolled-back transaction never enqueues
    //  and wakes nobody; a committed one does both, at its commit
    s_test_outbox_t outbox = { other, &listener, TL_ENOTFOUND };
    assert (tl_db_tx (db, s_test_outbox_tx, &outbox) == TL_ENOTFOUND);
    assert (tl_db_test_scalar (db, "SELECT count(*) FROM jobs WHERE unique_key = 'outbox'", NULL) == 0);
    assert (tl_jobs_wait (other, &listener, 300) == 0);
    outbox.result = 0;
    assert (tl_db_tx (db, s_test_outbox_tx, &outbox) == 0);
    assert (tl_db_test_scalar (db, "SELECT count(*) FROM jobs WHERE unique_key = 'outbox'", NULL) == 1);
    assert (tl_jobs_wait (other, &listener, 2000) == 1);
    s_test_quiet (other, &listener);

    //  Claim: only when due at the given clock, only kinds with a handler
    tl_job_ctx_t *job = s_test_claim (jobs, db, now, 0);
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    tl_mp_pack_kv (&pk, "note", "hello");
    assert (tl_jobs_enqueue (db, "test.ok", buffer.data, buffer.size, NULL, now + 10000, 0) == 1);
    msgpack_sbuffer_destroy (&buffer);
    s_test_claim (jobs, db, now + 9999, 0);
    job = s_test_claim (jobs, db, now + 10000, 1);
    assert (streq (tl_job_ctx_kind (job), "test.ok"));
    assert (tl_job_ctx_attempt (job) == 1);
    assert (tl_job_ctx_max_attempts (job) == TL_JOBS_MAX_ATTEMPTS_DEFAULT);
    assert (tl_job_ctx_run_at_ms (job) == now + 10000);
    assert (tl_job_ctx_now_ms (job) == now + 10000);
    assert (tl_job_ctx_unique_key (job) == NULL);
    assert (tl_mp_str_eq (tl_mp_get (tl_job_ctx_payload (job), "note"), "hello"));
    int64_t id = tl_job_ctx_id (job);
    assert (s_test_job_int (db, "SELECT count(*) FROM jobs WHERE id = $1 AND locked_by = 'tester'"
                                " AND locked_until > now () + interval '50 seconds'", id) == 1);
    //  Complete: the handler's work and the completion commit together
    s_test.ran = 0;
    assert (tl_jobs_run (jobs, db, job) == TL_JOBS_DONE);
    assert (s_test.ran == 1);
    tl_job_ctx_destroy (&job);
    tl_job_ctx_destroy (&job);
    assert (s_test_job_int (db, "SELECT count(*) FROM t WHERE job = $1", id) == 1);
    assert (s_test_job_int (db, "SELECT count(*) FROM jobs WHERE id = $1"
                                " AND done_at IS NOT NULL AND locked_until IS NULL", id) == 1);
    s_test_claim (jobs, db, now + 86400000, 0);        //  done is done

    //  A dead worker's job is claimed again when its lease expires (and
    //  only then); the first claim then can neither run nor finish it
    assert (tl_jobs_enqueue (db, "test.ok", NULL, 0, NULL, 0, 0) == 1);
    tl_job_ctx_t *lost = s_test_claim (jobs, db, 0, 1);
    tl_jobs_t *thief = tl_jobs_new ("thief");
    assert (thief);
    assert (tl_jobs_on (thief, "test.ok", s_test_ok) == 0);
    assert (tl_jobs_on (thief, "test.steal", s_test_ok) == 0);
    s_test_claim (thief, other, 0, 0);
    s_test_claim (thief, other, now + TL_JOBS_LEASE_MS - 5000, 0);
    job = s_test_claim (thief, other, now + TL_JOBS_LEASE_MS + 5000, 1);
    assert (tl_job_ctx_id (job) == tl_job_ctx_id (lost));
    assert (tl_job_ctx_attempt (job) == 2);
    s_test.ran = 0;
    assert (tl_jobs_run (jobs, db, lost) == TL_EBUSY);
    assert (s_test.ran == 0);
    assert (tl_jobs_complete (db, lost) == TL_EBUSY);
    assert (tl_jobs_fail (db, lost, "late") == TL_EBUSY);
    assert (tl_jobs_run (thief, other, job) == TL_JOBS_DONE);
    assert (s_test.ran == 1);
    assert (s_test_job_int (db, "SELECT attempt FROM t WHERE job = $1", tl_job_ctx_id (job)) == 2);
    tl_job_ctx_destroy (&job);
    tl_job_ctx_destroy (&lost);

    //  A job being run is locked: no claim gets it, whatever its clock
    assert (tl_jobs_enqueue (db, "test.steal", NULL, 0, NULL, 0, 0) == 1);
    job = s_test_claim (jobs, db, 0, 1);
    s_test.thief = thief;
    s_test.other = other;
    s_test.far_future = now + 365LL * 86400000;
    s_test.stolen = -1;
    s_test.ran = 0;
    assert (tl_jobs_run (jobs, db, job) == TL_JOBS_DONE);
    assert (s_test.ran == 1 && s_test.stolen == 0);
    tl_job_ctx_destroy (&job);

    //  Failures: retried after a growing back-off (on the claim's clock),
    //  the handler's work undone each time, dead after max_attempts
    assert (tl_jobs_enqueue (db, "test.fail", NULL, 0, "failing", now, 3) == 1);
    int64_t clock = now;
    for (int attempt = 1; attempt <= 3; attempt++) {
        job = s_test_claim (jobs, db, clock, 1);
        id = tl_job_ctx_id (job);
        assert (tl_job_ctx_attempt (job) == attempt);
        int outcome = tl_jobs_run (jobs, db, job);
        tl_job_ctx_destroy (&job);
        assert (outcome == (attempt < 3 ? TL_JOBS_RETRY : TL_JOBS_DEAD));
        char expected [64];
        snprintf (expected, sizeof expected, "broken on attempt %d?", attempt);
        const char *values [] = { expected };
        assert (tl_db_test_scalar (db, "SELECT count(*) FROM jobs WHERE unique_key = 'failing'"
                                " AND last_error = $1 AND locked_until IS NULL", values [0]) == 1);
        assert (s_test_job_int (db, "SELECT count(*) FROM t WHERE job = $1", id) == 0);
        if (attempt < 3) {
            int64_t delay = s_test_job_int (db, "SELECT " S_MS ("run_at")
                                                " FROM jobs WHERE id = $1", id) - clock;
            int64_t base = (int64_t) TL_JOBS_BACKOFF_BASE_MS << (attempt - 1);
            assert (delay >= base && delay <= base + base / 4);
            s_test_claim (jobs, db, clock + base - 1, 0);
            clock += delay;
        }
    }
    assert (s_test_job_int (db, "SELECT count(*) FROM jobs WHERE id = $1"
                                " AND dead_at IS NOT NULL AND attempts = 3", id) == 1);
    s_test_claim (jobs, db, s_test.far_future, 0);     //  dead stays dead

    //  ... and listed as dead with its error
    msgpack_sbuffer_init (&buffer);
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    assert (tl_jobs_list (db, "dead", 10, &pk) == 0);
    msgpack_zone zone;
    msgpack_zone_init (&zone, 1024);
    msgpack_object list;
    assert (tl_mp_unpack (buffer.data, buffer.size, &zone, &list) == 0);
    const msgpack_object *items = tl_mp_get (&list, "items");
    assert (items && items->type == MSGPACK_OBJECT_ARRAY && items->via.array.size == 1);
    const msgpack_object *item = &items->via.array.ptr [0];
    int64_t value = 0;
    assert (tl_mp_int (tl_mp_get (item, "id"), &value) == 0 && value == id);
    assert (tl_mp_str_eq (tl_mp_get (item, "state"), "dead"));
    assert (tl_mp_str_eq (tl_mp_get (item, "kind"), "test.fail"));
    assert (tl_mp_str_eq (tl_mp_get (item, "unique_key"), "failing"));
    assert (tl_mp_str_eq (tl_mp_get (item, "last_error"), "broken on attempt 3?"));
    assert (tl_mp_int (tl_mp_get (item, "attempts"), &value) == 0 && value == 3);
    assert (tl_mp_get (item, "run_at")->type == MSGPACK_OBJECT_STR);
    msgpack_zone_destroy (&zone);
    msgpack_sbuffer_clear (&buffer);
    assert (tl_jobs_list (db, "all", 500, &pk) == 0);
    assert (tl_jobs_list (db, "bogus", 10, &pk) == TL_EINVAL);
    assert (tl_jobs_list (db, "due", 0, &pk) == TL_EINVAL);
    assert (tl_jobs_list (db, "due", TL_LIST_LIMIT_MAX + 1, &pk) == TL_EINVAL);
    msgpack_sbuffer_destroy (&buffer);

    //  Retry: a dead job runs again now, with one more attempt
    assert (tl_jobs_retry (db, id) == 0);
    job = s_test_claim (jobs, db, 0, 1);
    assert (tl_job_ctx_id (job) == id && tl_job_ctx_attempt (job) == 4);
    assert (tl_job_ctx_max_attempts (job) == 4);
    assert (tl_jobs_retry (db, id) == TL_EBUSY);       //  running
    assert (tl_jobs_run (jobs, db, job) == TL_JOBS_DEAD);
    tl_job_ctx_destroy (&job);
    assert (tl_jobs_retry (db, 999999999) == TL_ENOTFOUND);
    int64_t done = tl_db_test_scalar (db, "SELECT min(id) FROM jobs WHERE done_at IS NOT NULL", NULL);
    assert (tl_jobs_retry (db, done) == TL_EBUSY);     //  done

    //  Schedules: the latest occurrence only, once; a gap runs once
    s_test_exec (db, "DELETE FROM jobs", NULL);
    int64_t at = hour + 10 * 60000;
    assert (tl_jobs_materialise (jobs, db, at) == 1);
    assert (tl_jobs_materialise (jobs, db, at + 40 * 60000) == 0);
    atomic_store (&jobs->schedules [0].last_ms, -1);   //  past the cache: the key
    assert (tl_jobs_materialise (jobs, db, at + 40 * 60000) == 0);
    assert (tl_db_test_scalar (db, "SELECT count(*) FROM jobs"
                            " WHERE unique_key = 'tick@2026-12-01T00:00:00Z'"
                            " AND run_at = '2026-12-01T00:00:00Z'", NULL) == 1);
    assert (tl_jobs_materialise (jobs, db, hour + 5 * 3600000 + 60000) == 1);
    assert (tl_db_test_scalar (db, "SELECT count(*) FROM jobs WHERE unique_key LIKE 'tick@%'", NULL) == 2);
    assert (tl_db_test_scalar (db, "SELECT count(*) FROM jobs"
                            " WHERE unique_key = 'tick@2026-12-01T05:00:00Z'", NULL) == 1);
    //  ... run at that clock: both occurrences are due, each runs once
    s_test.ran = 0;
    int failed = -1;
    assert (tl_jobs_run_due (jobs, db, hour + 5 * 3600000 + 60000, 100, &failed) == 2);
    assert (failed == 0 && s_test.ran == 2);
    assert (tl_jobs_run_due (jobs, db, hour + 5 * 3600000 + 120000, 100, &failed) == 0);
    job = NULL;
    assert (tl_jobs_enqueue (db, "test.ok", NULL, 0, NULL, 0, 0) == 1);
    s_test_exec (db, "UPDATE jobs SET payload = '\\xc1'::bytea WHERE done_at IS NULL", NULL);
    job = s_test_claim (jobs, db, 0, 1);
    assert (tl_job_ctx_payload (job) == NULL);         //  corrupt: NULL, not a crash
    assert (tl_jobs_run (jobs, db, job) == TL_JOBS_DONE);
    tl_job_ctx_destroy (&job);
    //  ... monthly and yearly
    tl_jobs_t *calendar = tl_jobs_new (NULL);
    assert (calendar);
    assert (tl_jobs_schedule (calendar, "month", "test.ok", "monthly") == 0);
    assert (tl_jobs_schedule (calendar, "year", "test.ok", "yearly") == 0);
    assert (tl_jobs_materialise (calendar, db, march) == 2);
    assert (tl_db_test_scalar (db, "SELECT count(*) FROM jobs WHERE unique_key IN"
                            " ('month@2026-03-01T00:00:00Z', 'year@2026-01-01T00:00:00Z')",
                        NULL) == 2);
    tl_jobs_destroy (&calendar);

    //  Instances materialising the same schedule together: one job each time
    for (int round = 0; round < 3; round++) {
        pthread_t threads [S_TEST_THREADS];
        s_test_racer_t racers [S_TEST_THREADS];
        pthread_barrier_t start;
        assert (pthread_barrier_init (&start, NULL, S_TEST_THREADS) == 0);
        for (int i = 0; i < S_TEST_THREADS; i++) {
            racers [i] = (s_test_racer_t) { url, schema, hour + round * 3600000 + 1, &start, -1 };
            assert (pthread_create (&threads [i], NULL, s_test_racer, &racers [i]) == 0);
        }
        int total = 0;
        for (int i = 0; i < S_TEST_THREADS; i++) {
            pthread_join (threads [i], NULL);
            assert (racers [i].result == 0 || racers [i].result == 1);
            total += racers [i].result;
        }
        pthread_barrier_destroy (&start);
        assert (total == 1);
    }
    assert (tl_db_test_scalar (db, "SELECT count(*) FROM jobs WHERE unique_key LIKE 'race@%'", NULL) == 3);

    //  Purge: old done jobs without a key go; keyed ones are the memory
    s_test_exec (db, "UPDATE jobs SET done_at = now () - interval '30 days'"
                     " WHERE done_at IS NOT NULL", NULL);
    int64_t unkeyed = tl_db_test_scalar (db, "SELECT count(*) FROM jobs WHERE done_at IS NOT NULL"
                                      " AND unique_key IS NULL", NULL);
    assert (unkeyed == 1);
    assert (tl_jobs_purge (db) == 1);
    assert (tl_jobs_purge (db) == 0);
    assert (tl_db_test_scalar (db, "SELECT count(*) FROM jobs WHERE unique_key LIKE 'tick@%'", NULL) == 2);

    tl_jobs_destroy (&thief);
    tl_jobs_destroy (&jobs);
    tl_jobs_destroy (&jobs);
    tl_db_test_drop (db, schema);
    tl_db_destroy (&other);
    tl_db_destroy (&db);
    if (verbose)
        printf ("(schema %s) ", schema);
}
