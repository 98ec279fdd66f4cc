//  analytics_monitor.h — what the files of API monitoring share (issue
//  #14): the reading of a remote dashboard's export through the platform's
//  guarded GET, the owner check of a dashboard, and each file's
//  registration. Private to services/analytics' API-monitoring part.
#ifndef ANALYTICS_MONITOR_H_INCLUDED
#define ANALYTICS_MONITOR_H_INCLUDED

#include "analytics_service.h"
#include "analytics_monitor_limits.h"
#include "an_fmd.h"

//  GETs `route` ("get_json_details", "get_json_data/1/2", ...) under the
//  dashboard URL `base` (a trailing '/' or not) with the platform's guard
//  (private addresses only with TALLY_WEBHOOK_ALLOW_PRIVATE), within
//  AN_FETCH_TIMEOUT_MS and AN_EXPORT_MAX_BYTES. Returns 0 with the body
//  (the caller's, NUL-terminated) in *body_p and its size, or a code of
//  tl_fetch_get, or TL_EPROTO for an answer other than 200; `errbuf` says
//  why.
int analytics_remote_get (const char *base, const char *route, char **body_p, size_t *size,
                          char *errbuf, size_t errsize);

//  The same for a signed route: verifies the body as an HS256 JWT with
//  `token` and returns its claim "data" in *data_p (the caller's).
//  Returns 0, a code of analytics_remote_get, TL_EINVAL (no JWT with a
//  data claim) or TL_EPROTO from the signature (errbuf "bad signature").
int analytics_remote_signed (const char *base, const char *route, const char *token,
                             char **data_p, char *errbuf, size_t errsize);

//  Stores the endpoints of `rules` for dashboard `id` (new ones enabled,
//  each one's monitor flag as the rules say), on `db`. Returns 0 or a code.
int analytics_endpoints_store (tl_db_t *db, const char *id, an_fmd_list_t *rules);

//  Checks that dashboard `id` exists and is the caller's (the built-in
//  one: the caller is staff). Returns true; otherwise answers 404
//  (unknown, not a UUID, or the built-in one to others), 403 (another
//  user's) or the database's error, and returns false.
bool analytics_dashboard_owned (tl_call_t *call, const char *id);

//  True when the caller is staff (admin or super_admin).
bool analytics_staff (tl_call_t *call);

//  Each file's statements and registration. Return 0 or a code.
int analytics_dashboards_prepare (tl_db_t *db);
int analytics_dashboards_register (tl_service_t *svc);
int analytics_stats_prepare (tl_db_t *db);
int analytics_stats_register (tl_service_t *svc);
int analytics_monitor_fetch_prepare (tl_db_t *db);
int analytics_monitor_fetch_register (tl_service_t *svc);

//  Stores calls for dashboard `id` on `db`: `rows` is a JSON array of
//  {e: endpoint, t: µs since the epoch, x: ms, v: version, g: group_by,
//  ip, s: HTTP status or null}, checked by the caller; their month
//  partitions, endpoints, hourly aggregates and endpoint counts follow.
//  Returns 0 or a code.
int analytics_calls_store (tl_db_t *db, const char *id, const char *rows);

//  The oldest call kept at `clock_ms` (µs): TALLY_ANALYTICS_RETENTION_MONTHS.
int64_t analytics_calls_cutoff_us (int64_t clock_ms);

//  The built-in dashboard (Tally's own calls)
#define ANALYTICS_BUILTIN_ID "00000000-0000-4000-8000-00000000a001"
int analytics_monitor_self_prepare (tl_db_t *db);
int analytics_monitor_self_register (tl_service_t *svc);

//  Enqueues the first fetch of dashboard `id` at `run_at_ms`, on `db`
//  (inside the transaction that stores it). Returns 1, or a code.
int analytics_monitor_fetch_start (tl_db_t *db, const char *id, int64_t run_at_ms);

#endif
