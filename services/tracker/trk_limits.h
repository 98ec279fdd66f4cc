//  trk_limits.h — the tracker service's quotas: how much one user may keep
//  and run at once. (Sizes of values, files and drawings are in
//  shared/tl_limits.h with the platform's.) Each quota is counted under the
//  lock that serialises the writes it bounds, so that concurrent requests,
//  on any instance, cannot pass it together.
#ifndef TRK_LIMITS_H_INCLUDED
#define TRK_LIMITS_H_INCLUDED

//  Trackers of one user (422 too_many_trackers past it); counted under a
//  transaction advisory lock on the owner (tracker_trackers.c).
#define TRK_MAX_TRACKERS_PER_USER   200

//  Logs of one tracker (422 too_many_logs past it): a full CSV import
//  (TRK_CSV_MAX_ROWS) fits an empty tracker. Counted under the tracker's
//  row lock, which every log write takes.
#define TRK_MAX_LOGS_PER_TRACKER    100000

//  Expensive requests (stats, charts, board images, reports, CSV exports
//  and imports) one user runs at once across every instance: 429 past it,
//  with Retry-After in seconds. Each is a PostgreSQL session advisory lock
//  on one of this many slots of the user (tracker_expensive).
#define TRK_MAX_EXPENSIVE_PER_USER  2
#define TRK_EXPENSIVE_RETRY_AFTER   "1"

#endif
