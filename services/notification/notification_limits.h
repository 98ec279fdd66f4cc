//  notification_limits.h — the notification service's limits: the sizes of
//  a notification's texts, how many a user keeps and for how long, and how
//  much a reconnecting stream catches up. (The platform's are in
//  shared/tl_limits.h; the streams' own in its gateway section.)
#ifndef NOTIFICATION_LIMITS_H_INCLUDED
#define NOTIFICATION_LIMITS_H_INCLUDED

#include "tl_limits.h"

//  Texts (Unicode characters; the schema checks the same bounds)
#define NT_KEY_MAX              128     //  idempotency key, bytes of visible ASCII
#define NT_TITLE_MAX            200
#define NT_MESSAGE_MAX          2000
#define NT_ACTION_MAX           64
#define NT_TARGET_URL_MAX       2000

//  What a user keeps: the newest NT_KEEP_PER_USER notifications, none
//  older than NT_KEEP_DAYS (the daily job); the keys of created ones as
//  long, so that a replay within that time answers the first one
#define NT_KEEP_PER_USER        10000
#define NT_KEEP_DAYS            90
#define NT_PURGE_BATCH          10000   //  rows one purge statement deletes

//  A stream's catch-up: at most this many notifications after its
//  Last-Event-ID (the newest of them, oldest first)
#define NT_CATCHUP_MAX          TL_STREAM_CATCHUP_MAX

#endif
