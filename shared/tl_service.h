//  tl_service.h — the service runtime: everything a Tally service is made
//  of except its handlers and its SQL. It reads the configuration from the
//  environment, migrates the service's schema, connects to every gateway of
//  the mesh, announces itself and heartbeats, runs requests on a pool of
//  handler threads (each with its own database connection), replays
//  idempotent writes, and drains cleanly on SIGTERM.
//
//  A service's main() is:
//      tl_service_t *svc = tl_service_new ("tracker", tracker_migrations);
//      tl_service_on (svc, "trackers.list", s_trackers_list);
//      ...
//      int rc = tl_service_run (svc);
//      tl_service_destroy (&svc);
//      return rc ? 1 : 0;
#ifndef TL_SERVICE_H_INCLUDED
#define TL_SERVICE_H_INCLUDED

#include <stdbool.h>
#include "tl_call.h"
#include "tl_event.h"
#include "tl_client.h"
#include "tl_embed.h"
#include "tl_jobs.h"

typedef struct _tl_service_t tl_service_t;

//  Per-thread setup, run once on each handler thread after its database
//  connection opens: prepare statements here. Returns 0 or a negative code.
typedef int (tl_thread_init_fn) (tl_db_t *db, void *arg);

//  Creates a service named `name` (also its schema) with its migrations
//  (a table from tally_service() in CMake; may be NULL), and starts what
//  keeps global state (the log, libsodium, libcurl): a service's main()
//  starts with it. Returns NULL on a bad name or when those fail.
tl_service_t *tl_service_new (const char *name, const tl_embed_t *migrations);

//  Destroys the service and nulls the caller's reference. Safe on NULL.
void tl_service_destroy (tl_service_t **self_p);

//  Registers the handler of `method`. Returns 0, TL_EEXIST, or TL_ETOOBIG.
int tl_service_on (tl_service_t *self, const char *method, tl_handler_fn *fn);

//  Sets the per-thread setup (prepared statements).
void tl_service_set_thread_init (tl_service_t *self, tl_thread_init_fn *fn, void *arg);

//  Registers the handler of durable job kind `kind` (tl_jobs.h). Jobs run
//  on the instance's jobs thread, one at a time, each in one transaction
//  with its completion; the thread has its own database connection, set up
//  by the per-thread setup. Returns 0, TL_EEXIST, TL_EINVAL (bad kind),
//  TL_ETOOBIG or TL_ENOMEM.
int tl_service_job (tl_service_t *self, const char *kind, tl_job_fn *fn);

//  Registers the recurring schedule `name` that enqueues jobs of `kind`
//  by `spec` ("every 1h", "hourly", "daily", "monthly", "yearly"; see
//  tl_jobs_schedule): every instance materialises it, each occurrence runs
//  once. Returns 0, TL_EEXIST, TL_EINVAL, TL_ETOOBIG or TL_ENOMEM.
int tl_service_schedule (tl_service_t *self, const char *name, const char *kind,
                         const char *spec);

//  Registers the handler of durable event `event` (tl_event.h), which the
//  service's declaration lists in "subscribes": it runs on a handler
//  thread, once per event, in one transaction with the record that it ran.
//  Returns 0, TL_EEXIST, TL_ETOOBIG or TL_EINVAL.
int tl_service_subscribe (tl_service_t *self, const char *event, tl_event_fn *fn);

//  Runs until SIGTERM or SIGINT, then drains: tells every gateway it takes
//  no more work, finishes what is in flight (up to TL_DRAIN_GRACE_MSEC) and
//  returns. Configuration (environment): DATABASE_URL (required),
//  TALLY_MESH (gateway backends, default tcp://127.0.0.1:5555),
//  TALLY_WORKERS (handler threads, default 8), TALLY_INSTANCE (instance
//  id, default <service>@<host>:<pid>). Returns 0, or a negative code when
//  it could not start (bad config, database unreachable, migration failed).
//  Every service also answers the operators' methods (mesh only, never on
//  a user's behalf): jobs.list (params state = due|running|dead|done|all,
//  limit), jobs.retry (param id) and jobs.run_due (param at, RFC 3339:
//  runs on the handler thread every job due at that time; {ran, failed}).
//  One service runs per process.
int tl_service_run (tl_service_t *self);

//  Calls `service`.`method` on the mesh on this service's own behalf (no
//  user: the callee sees an operator-like caller), from a handler or job
//  thread of a running service: for what a job tells another service
//  (send this mail, this user is gone). `body` is one packed MessagePack
//  value or NULL. Each thread has its own mesh client, made on first use
//  with TALLY_MESH's gateways and closed when the thread ends. Waits up to
//  `timeout_ms`. Returns 0 and the reply in *reply_p (the caller's, any
//  status), TL_ETIMEDOUT, TL_EIO, or TL_EUNAVAIL outside a running service.
int tl_service_call (const char *service, const char *method, const void *body,
                     size_t size, int timeout_ms, tl_msg_t **reply_p);

//  Tells every gateway of TALLY_MESH at once (mesh.broadcast, PROTOCOL.md
//  §3) about `topic` ("<this service>.<name>") with `body` (one packed
//  MessagePack value, or NULL): for what every live gateway must hear now
//  and nobody must keep (a session revoked, a notification to push); what
//  must not be lost is a durable event (tl_event.h) instead. Waits up to
//  `timeout_ms` in all for each gateway's acknowledgement, from a handler
//  or job thread of a running service. Returns how many gateways
//  acknowledged (one down or slow is logged, not counted), TL_EINVAL for a
//  bad topic, or TL_EUNAVAIL outside a running service.
int tl_service_broadcast (const char *topic, const void *body, size_t size, int timeout_ms);

//  tl_service_broadcast without waiting: sends the broadcast to each
//  gateway of TALLY_MESH that is connected and returns at once, so that an
//  absent or slow gateway costs nothing (it misses the broadcast; this is
//  for pushes a client can catch up on). Returns how many gateways it was
//  sent to, TL_EINVAL for a bad topic, or TL_EUNAVAIL outside a running
//  service.
int tl_service_broadcast_post (const char *topic, const void *body, size_t size);

//  Sends `body` to `service`.`method` from a job, with the one status
//  policy of jobs that ask another service to do something (send a mail,
//  post a webhook): 2xx is done; a 4xx is final (the same request will not
//  get better: logged, and the job is done); no answer or a 5xx is the
//  job's failure (its error set), retried on its back-off. *status (may be
//  NULL) gets the reply's status, 0 without one. Returns 0 or a code.
int tl_service_job_send (tl_job_ctx_t *job, const char *service, const char *method,
                         const void *body, size_t size, int timeout_ms, int *status);

//  tl_service_call for a job handler: the request is `nowait` (a service
//  with no live instance answers 503 at once: the job fails and retries
//  with back-off instead of holding the jobs thread until the deadline).
//  On no answer it also sets the job's
//  error ("service.method: TL_ETIMEDOUT") and returns the code; else it
//  returns 0 with the reply's status in *status and the reply in *reply_p
//  (the caller's), or dropped when reply_p is NULL.
int tl_service_job_call (tl_job_ctx_t *job, const char *service, const char *method,
                         const void *body, size_t size, int timeout_ms, int *status,
                         tl_msg_t **reply_p);

//  Self-test.
void tl_service_test (bool verbose);

#endif
