//  tl_jobs.h — durable jobs in PostgreSQL, the way River, Oban, Que and
//  graphile-worker do them. A job is a row of the service schema's `jobs`
//  table (created by tl_migrate): a kind, a payload (one MessagePack value),
//  an optional unique key, and a time to run. Enqueueing inside the
//  caller's transaction makes it a transactional outbox: a rolled-back
//  transaction never enqueues. Workers claim due jobs with FOR UPDATE SKIP
//  LOCKED under a lease (TL_JOBS_LEASE_MS), run each inside one transaction
//  with its completion, and retry failures with exponential back-off until
//  max_attempts, after which the job is dead (kept, with its last error).
//  A worker that dies loses its lease and the job is claimed again.
//
//  Recurring schedules ("every 1h", "monthly", "yearly") are declared once
//  in code: each tick enqueues only the latest occurrence <= now, under the
//  unique key "<schedule>@<occurrence, ISO 8601 UTC>", so that any number
//  of instances run each occurrence once, and a schedule missed while
//  everything was down runs once, not once per missed tick.
//
//  A tl_jobs_t holds the handlers and schedules of a service. Register them
//  before use; after that it is read-only and may be shared by threads,
//  each passing its own tl_db_t (whose search_path leads to the schema).
//
//  Clocks: functions that take `now_ms` (ms since the Unix epoch) use it as
//  "now" for what is due, whether a lease has expired, and when a retry
//  runs; 0 means the database's now(). A lease itself is always set on the
//  database's real clock. So a controlled clock past a lease takes over a
//  dead worker's job at once; a job being run stays locked against any
//  claim, whatever its clock, until its transaction ends.
#ifndef TL_JOBS_H_INCLUDED
#define TL_JOBS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

#include "tl_db.h"

typedef struct _tl_jobs_t tl_jobs_t;
typedef struct _tl_job_ctx_t tl_job_ctx_t;

//  A job handler: does the job's work on tl_job_ctx_db (job), inside the
//  transaction that also records the job done or failed. Returns 0 when
//  done; on failure sets a message with tl_job_ctx_error and returns a
//  negative TL_E* code: its database work is then rolled back and the job
//  retried later (or declared dead).
typedef int (tl_job_fn) (tl_job_ctx_t *job);

//  What tl_jobs_run and tl_jobs_fail report about a job they finished.
#define TL_JOBS_DONE    0       //  completed
#define TL_JOBS_RETRY   1       //  failed; runs again after a back-off
#define TL_JOBS_DEAD    2       //  failed for the last time

//  --- Enqueueing (any connection, in or out of a transaction) -------------

//  Enqueues a job of `kind` ([a-z0-9_.:-], at most TL_JOBS_MAX_KIND_LEN)
//  with `payload` (`size` bytes holding exactly one MessagePack value, at
//  most TL_JOBS_MAX_PAYLOAD; NULL and 0 for none), to run at `run_at_ms`
//  (0 = now) at most `max_attempts` times (0 = TL_JOBS_MAX_ATTEMPTS_DEFAULT).
//  With a `unique_key` (at most TL_JOBS_MAX_KEY_LEN bytes), a job with the
//  same key, in any state, means this one is not enqueued. Inside an open
//  tl_db_tx the job exists only if that transaction commits, and idle
//  workers are woken (NOTIFY) at its commit. Returns 1 if enqueued, 0 if
//  the unique key existed, or TL_EINVAL / TL_ETOOBIG for a bad argument, or
//  a database code.
int tl_jobs_enqueue (tl_db_t *db, const char *kind, const void *payload, size_t size,
                     const char *unique_key, int64_t run_at_ms, int max_attempts);

//  Enqueues the daily occurrence, for `subject` (a user id, say), of the
//  local time `local_time` ("HH:MM") in IANA zone `zone`, on the local
//  date of `now_ms` (0 = the database's now) plus `days_ahead` days, under
//  the unique key "<kind>:<subject>:<local date>". PostgreSQL's time zone
//  rules place it: a local time skipped by a spring-forward change runs
//  just after the gap, one repeated by a fall-back change runs once; so a
//  daily job per subject is neither skipped nor doubled by daylight
//  saving. Returns as tl_jobs_enqueue; a bad zone or time is an error.
int tl_jobs_enqueue_local_daily (tl_db_t *db, const char *kind, const char *subject,
                                 const char *zone, const char *local_time,
                                 int days_ahead, int64_t now_ms,
                                 const void *payload, size_t size);

//  --- The registry -----------------------------------------------------

//  Creates an empty registry whose claims are signed `worker` (the
//  instance id, at most TL_MAX_ID_LEN; NULL means "<host>:<pid>"). Returns
//  NULL on a bad argument or allocation failure.
tl_jobs_t *tl_jobs_new (const char *worker);

//  Destroys the registry and nulls the caller's reference. Safe on NULL.
void tl_jobs_destroy (tl_jobs_t **self_p);

//  Changes the worker id that claims are signed with.
void tl_jobs_set_worker (tl_jobs_t *self, const char *worker);

//  Registers the handler of `kind`. Only kinds with a handler are claimed.
//  Returns 0, TL_EEXIST, TL_EINVAL for a bad kind, or TL_ETOOBIG past
//  TL_JOBS_MAX_HANDLERS.
int tl_jobs_on (tl_jobs_t *self, const char *kind, tl_job_fn *fn);

//  Registers the recurring schedule `name` ([a-z0-9_.:-], at most
//  TL_JOBS_MAX_KIND_LEN) that enqueues jobs of `kind` with the payload
//  {"schedule": name, "at": occurrence}. `spec` is "every N<unit>" (unit s,
//  m, h or d; occurrences at multiples of the interval since the Unix
//  epoch, so "every 1h" is each full hour UTC), "hourly", "daily",
//  "monthly" (day 1, 00:00 UTC) or "yearly" (January 1, 00:00 UTC).
//  Returns 0, TL_EEXIST, TL_EINVAL (bad name, kind or spec) or TL_ETOOBIG.
int tl_jobs_schedule (tl_jobs_t *self, const char *name, const char *kind,
                      const char *spec);

//  --- Running ----------------------------------------------------------

//  Enqueues the latest occurrence <= now of every schedule (now from
//  `now_ms`). Returns how many jobs were new, or a negative code.
int tl_jobs_materialise (tl_jobs_t *self, tl_db_t *db, int64_t now_ms);

//  Claims up to `max` (at most TL_JOBS_CLAIM_MAX) jobs due at `now_ms`
//  whose kind has a handler and which no live lease holds, skipping rows
//  other transactions lock: each gets attempts + 1 and a lease until the
//  database's now() + TL_JOBS_LEASE_MS. Commits at once (outside a
//  transaction). Fills `jobs` (room for `max`) with jobs that belong to
//  the caller (destroy each with tl_job_ctx_destroy) and returns how many,
//  or a negative code.
int tl_jobs_claim (tl_jobs_t *self, tl_db_t *db, int64_t now_ms, int max,
                   tl_job_ctx_t **jobs);

//  Runs a claimed job: in one transaction (outside any other), checks
//  that the lease is still this claim's and locks the row, runs the
//  handler in a savepoint, then records the job done, or failed with the
//  handler's message. Returns TL_JOBS_DONE, TL_JOBS_RETRY or TL_JOBS_DEAD;
//  TL_EBUSY if the lease was lost (the handler did not run); or a database
//  code (nothing recorded: the job runs again when its lease expires).
int tl_jobs_run (tl_jobs_t *self, tl_db_t *db, tl_job_ctx_t *job);

//  Materialises the schedules, then claims and runs due jobs one at a time
//  until none is due at `now_ms` or `max` have run. Returns how many ran
//  and, in *failed (may be NULL), how many of those failed; or a negative
//  code.
int tl_jobs_run_due (tl_jobs_t *self, tl_db_t *db, int64_t now_ms, int max, int *failed);

//  Records a claimed job done. Inside a transaction it commits with it.
//  Returns 0, TL_EBUSY if the lease was lost, or a database code.
int tl_jobs_complete (tl_db_t *db, tl_job_ctx_t *job);

//  Gives back a claimed job that was not run (a draining worker): the lease
//  ends and the attempt is not counted, so another worker takes it at once.
//  Returns 0, TL_EBUSY when the job is no longer this claim's, or a code.
int tl_jobs_release (tl_db_t *db, tl_job_ctx_t *job);

//  Records a claimed job failed with `error` (one line, at most
//  TL_JOBS_MAX_ERROR_LEN bytes kept): retried at the claim's now +
//  back-off (TL_JOBS_BACKOFF_BASE_MS * 2^(attempt-1), capped at
//  TL_JOBS_BACKOFF_CAP_MS, plus up to a quarter more at random), or dead
//  after its last attempt. Returns TL_JOBS_RETRY, TL_JOBS_DEAD, TL_EBUSY
//  if the lease was lost, or a database code.
int tl_jobs_fail (tl_db_t *db, tl_job_ctx_t *job, const char *error);

//  --- Waiting for work ---------------------------------------------------

//  Waits up to `timeout_ms` for a job to be enqueued in db's schema
//  (LISTEN/NOTIFY). `*listener` starts at 0; this call LISTENs whenever it
//  differs from the session's server process (first call, or tl_db
//  reconnected) and then returns 1 at once, since work may have been
//  missed. Returns 1 when woken, 0 on timeout, or a negative code (the
//  connection is down: the caller retries later). Outside a transaction.
int tl_jobs_wait (tl_db_t *db, int *listener, int timeout_ms);

//  --- Operations ---------------------------------------------------------

//  Packs {"items": [{id, kind, unique_key, run_at, attempts, max_attempts,
//  last_error, state}]}, newest first, at most `limit` (1..TL_LIST_LIMIT_MAX)
//  jobs in `state`: "due" (not done nor dead, whenever it runs), "running"
//  (leased now), "dead", "done" or "all". An item's state is one of due,
//  running, done, dead; run_at is RFC 3339 UTC. Returns 0, TL_EINVAL for a
//  bad state or limit (nothing packed), or a database code (nothing packed).
int tl_jobs_list (tl_db_t *db, const char *state, int limit, msgpack_packer *pk);

//  Makes dead or failed job `id` due now, with one more attempt allowed
//  if it had none left. Returns 0, TL_ENOTFOUND, TL_EBUSY (the job is done,
//  running, or has not failed), or a database code.
int tl_jobs_retry (tl_db_t *db, int64_t id);

//  Deletes up to TL_JOBS_PURGE_BATCH jobs done more than
//  TL_JOBS_DONE_TTL_HOURS ago that have no unique key (a key is the memory
//  that stops a schedule's occurrence from running twice: those stay).
//  Returns how many were deleted, or a negative code.
int tl_jobs_purge (tl_db_t *db);

//  --- The job in hand (tl_job_ctx_t) --------------------------------------

//  The handler's connection, inside the job's transaction (NULL outside
//  tl_jobs_run). Borrowed.
tl_db_t *tl_job_ctx_db (tl_job_ctx_t *self);

//  The job's id (the jobs table's).
int64_t tl_job_ctx_id (tl_job_ctx_t *self);

//  The job's kind. Borrowed.
const char *tl_job_ctx_kind (tl_job_ctx_t *self);

//  The unique key, or NULL. Borrowed.
const char *tl_job_ctx_unique_key (tl_job_ctx_t *self);

//  The payload, unpacked, or NULL when there is none (or it is corrupt).
//  Owned by the job.
const msgpack_object *tl_job_ctx_payload (tl_job_ctx_t *self);

//  This run's attempt, 1 on the first.
int tl_job_ctx_attempt (tl_job_ctx_t *self);

//  How many attempts the job has in all; this run's failure is its last
//  when attempt == max_attempts.
int tl_job_ctx_max_attempts (tl_job_ctx_t *self);

//  When the job was due, ms since the Unix epoch.
int64_t tl_job_ctx_run_at_ms (tl_job_ctx_t *self);

//  The clock of this run: the `now_ms` it was claimed with (0: real time).
int64_t tl_job_ctx_now_ms (tl_job_ctx_t *self);

//  The same, never 0: the run's controlled clock, or the real time now.
int64_t tl_job_ctx_clock_ms (tl_job_ctx_t *self);

//  A purge in bounded steps: runs prepared statement `name` ($1: the run's
//  clock, tl_job_ctx_clock_ms, in ms) on the job's connection again and
//  again while it changes `batch` rows (its LIMIT). Returns the rows
//  changed in all, or a negative code with the job's error set.
long tl_job_ctx_purge (tl_job_ctx_t *self, const char *name, long batch);

//  Sets the failure message kept in last_error (non-printable bytes become
//  '?'). The handler then returns a negative code.
void tl_job_ctx_error (tl_job_ctx_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

//  Destroys a claimed job and nulls the caller's reference. Safe on NULL.
void tl_job_ctx_destroy (tl_job_ctx_t **self_p);

//  Self-test: needs TALLY_TEST_DATABASE_URL, skipped without it.
void tl_jobs_test (bool verbose);

#endif
