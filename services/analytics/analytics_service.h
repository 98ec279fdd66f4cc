//  analytics_service.h — what the analytics service's files share: the
//  runtime, and each part's registration (API monitoring, issue #14; store
//  monitoring, issue #15). Private to services/analytics.
#ifndef ANALYTICS_SERVICE_H_INCLUDED
#define ANALYTICS_SERVICE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <libpq-fe.h>
#include <msgpack.h>

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
//  A deleted user's stores, polls, hours, zones and reports go, in the
//  transaction `db` is in (auth.user.deleted, analytics_dashboards.c).
//  Returns 0 or a code.
int analytics_stores_forget_owner (tl_db_t *db, const char *owner);

#endif
