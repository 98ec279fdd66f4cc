//  analytics_monitor_limits.h — the bounds of API monitoring (issue #14):
//  remote dashboards, their exports, their calls and the statistics asked
//  of them. (The platform's limits are in shared/tl_limits.h.)
#ifndef ANALYTICS_MONITOR_LIMITS_H_INCLUDED
#define ANALYTICS_MONITOR_LIMITS_H_INCLUDED

#include "tl_limits.h"

//  Dashboards: a user's, and the texts of one
#define AN_MAX_DASHBOARDS_PER_USER  100
#define AN_NAME_MAX                 200         //  characters
#define AN_TOKEN_MAX                256         //  bytes of the FMD security token
#define AN_URL_MAX                  TL_MAX_URL_LEN

//  The FMD export (an_fmd, an_jwt)
#define AN_EXPORT_MAX_BYTES         (32L * 1024 * 1024)  //  one reply read
#define AN_JWT_MAX_BYTES            AN_EXPORT_MAX_BYTES
#define AN_FMD_MAX_CALLS            200000      //  calls in one get_json_data reply
#define AN_FMD_MAX_RULES            10000       //  endpoints in the monitor rules
#define AN_ENDPOINT_MAX             512         //  bytes of an endpoint's name
#define AN_VERSION_MAX              100         //  bytes of a version
#define AN_IP_MAX                   64          //  bytes of a client address
#define AN_GROUP_MAX                200         //  bytes of a group_by
#define AN_MAX_ENDPOINTS            AN_FMD_MAX_RULES

//  Tally's own calls: a gateway's batch (calls.ingest), and the calls one
//  answer of Tally's export holds (it must fit a mesh frame)
#define AN_INGEST_MAX_CALLS         5000
#define AN_SELF_EXPORT_MAX_CALLS    40000
#define AN_FMD_TOKEN_MIN            16          //  bytes of TALLY_FMD_TOKEN

//  Fetching: the timeout of one request, the back-fill step, the interval
//  after it, how many failed fetches in a row notify the owner, and the
//  attempts of a fetch the database failed (a fetch enqueues the next:
//  the chain ends with its last attempt, so the most jobs allow, ~41 days)
#define AN_FETCH_TIMEOUT_MS         5000
#define AN_BACKFILL_STEP_S          (7L * 24 * 3600)
#define AN_FETCH_INTERVAL_S         3600
#define AN_FETCH_RETRY_BASE_S       60          //  back-off after a failure, doubled
#define AN_FETCH_RETRY_CAP_S        3600
#define AN_FAILURES_NOTIFY          3
#define AN_FETCH_ATTEMPTS           TL_JOBS_MAX_ATTEMPTS_MAX

//  Statistics: slices, and what one statistic's statement may take (its
//  route's deadline is 30 s; percentiles sort the calls of the range)
#define AN_MAX_SLICES               10000
#define AN_STATS_TIMEOUT_MS         "25000"
#define AN_STATS_WORK_MEM           "64MB"
#define AN_MAX_BOXPLOT_ENDPOINTS    AN_MAX_ENDPOINTS

//  Calls kept (months; the partitions older than this are dropped)
#define AN_RETENTION_MONTHS_DEFAULT 13
#define AN_PARTITIONS_AHEAD         2           //  months created ahead

#endif
