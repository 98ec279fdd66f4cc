//  notification_service.h — what the notification service's files share:
//  the registration of each file's methods and jobs, and its statements.
//  Private to services/notification.
#ifndef NOTIFICATION_SERVICE_H_INCLUDED
#define NOTIFICATION_SERVICE_H_INCLUDED

#include "tl_service.h"
#include "notification_limits.h"
#include "nt_push.h"

//  Each file's methods, jobs and subscriptions, and its statements (each
//  handler and job thread's init). Return 0 or a code.
int notification_store_register (tl_service_t *svc);    //  create, list, read, delete, stream
int notification_store_prepare (tl_db_t *db);
int notification_jobs_register (tl_service_t *svc);     //  the daily purge, user.deleted
int notification_jobs_prepare (tl_db_t *db);

#endif
