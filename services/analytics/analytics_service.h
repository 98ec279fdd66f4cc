//  analytics_service.h — what the analytics service's files share: the
//  runtime, and the registration of each part (API monitoring, store
//  monitoring). Private to services/analytics.
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

#endif
