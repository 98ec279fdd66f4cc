//  analytics_service.h — what the analytics service's files share: the
//  runtime, and each part's registration (API monitoring, issue #14; store
//  monitoring, issue #15). Private to services/analytics.
#ifndef ANALYTICS_SERVICE_H_INCLUDED
#define ANALYTICS_SERVICE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <libpq-fe.h>
#include <msgpack.h>

#include "tl_fetch.h"
#include "tl_limits.h"
#include "tl_service.h"

//  --- API monitoring (issue #14: analytics_monitor*.c) ---------------------
//  Prepares the statements of every API-monitoring file on a handler or
//  job thread's connection, and registers their methods, jobs and
//  schedules. Return 0 or a code.
int analytics_monitor_prepare (tl_db_t *db);
int analytics_monitor_register (tl_service_t *svc);

//  --- Store monitoring (analytics_stores*.c) --------------------------------
//  POST /stores/data (analytics_stores.c), the reports, their job and their
//  purge (analytics_stores_reports.c). Prepare: each handler and job
//  thread's statements. Return 0 or a code.
int analytics_stores_prepare (tl_db_t *db);
int analytics_stores_register (tl_service_t *svc);
int analytics_stores_reports_prepare (tl_db_t *db);
int analytics_stores_reports_register (tl_service_t *svc);
//  Polls one file of a user's source (analytics_stores.c, for the job of
//  analytics_stores_source.c): a conditional GET of `url` (If-None-Match /
//  If-Modified-Since from the last load's validators) through the SSRF
//  guard, its 200 body streamed into the same COPY, staging and merge as
//  POST /stores/data, all or nothing, in a savepoint of `db`'s transaction.
//  Returns 0 with the outcome filled (loaded, or not_modified, or `error`
//  saying why nothing was loaded, with `bad_lines` as JSON for bad rows:
//  the caller frees it), or a code when the database failed (try later).
typedef struct {
    const char *owner;
    const char *kind;               //  "status", "hours" or "timezones"
    const char *url;
    const char *if_etag;            //  the last load's validators, or NULL
    const char *if_last_modified;
    int flags;                      //  TL_FETCH_ALLOW_PRIVATE or 0
    //  The outcome
    bool loaded, not_modified;
    long http_status;               //  0 without an answer
    size_t rows;
    char etag [TL_FETCH_MAX_VALIDATOR_LEN + 1];           //  of a load
    char last_modified [TL_FETCH_MAX_VALIDATOR_LEN + 1];
    char error [320];
    char *bad_lines;
} analytics_stores_pull_t;
int analytics_stores_pull (tl_db_t *db, analytics_stores_pull_t *pull);

//  PUT, GET and DELETE /stores/source and the hourly analytics.stores_poll
//  job (analytics_stores_source.c). Return 0 or a code.
int analytics_stores_source_prepare (tl_db_t *db);
int analytics_stores_source_register (tl_service_t *svc);

//  A deleted user's stores, polls, hours, zones and reports go, in the
//  transaction `db` is in (auth.user.deleted, analytics_dashboards.c).
//  Returns 0 or a code.
int analytics_stores_forget_owner (tl_db_t *db, const char *owner);

#endif
