//  an_fmd.h — readers of flask-monitoring-dashboard's JSON export (FMD
//  1.12–1.13, API.md "Analytics"): the details of a dashboard, and the
//  "data" of its two signed lists, the calls and the monitor rules, once
//  an_jwt has verified them. Every text is bounded
//  (analytics_monitor_limits.h), every field checked; a list with one bad
//  item is refused whole, so that nothing of a bad body is stored.
#ifndef AN_FMD_H_INCLUDED
#define AN_FMD_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "analytics_monitor_limits.h"

//  get_json_details
typedef struct {
    char version [AN_VERSION_MAX + 1];  //  "dashboard-version"
    int64_t first_request;              //  unix seconds, -1 when none
    int64_t total_requests;
} an_fmd_details_t;

//  One call of get_json_data
typedef struct {
    char endpoint [AN_ENDPOINT_MAX + 1];
    double execution_ms;                //  finite, >= 0
    int64_t time_us;                    //  µs since the epoch, UTC
    char version [AN_VERSION_MAX + 1];  //  "" when null
    char group_by [AN_GROUP_MAX + 1];
    char ip [AN_IP_MAX + 1];
} an_fmd_call_t;

//  One rule of get_json_monitor_rules
typedef struct {
    char endpoint [AN_ENDPOINT_MAX + 1];
    bool monitor;
} an_fmd_rule_t;

//  Reads the details object. Returns 0, or TL_EINVAL (not JSON, not an
//  object, no string dashboard-version, first-request not a number >= -1).
int an_fmd_details_parse (const char *json, size_t len, an_fmd_details_t *details);

//  A list read from the "data" claim: calls or rules.
typedef struct _an_fmd_list_t an_fmd_list_t;

//  Reads the calls of get_json_data: a JSON array of at most
//  AN_FMD_MAX_CALLS objects {endpoint (non-empty string), execution_time
//  (number >= 0), time ("YYYY-MM-DD HH:MM:SS[.f{1,6}]", UTC, years
//  1970..9999), version, group_by, ip (string or null; absent is null)}.
//  Returns the list (the caller's) or NULL with *err TL_EINVAL (*why
//  names the first bad item), TL_ETOOBIG or TL_ENOMEM.
an_fmd_list_t *an_fmd_calls_new (const char *json, size_t len, int *err,
                                 char *why, size_t why_size);

//  Reads the rules of get_json_monitor_rules: an array of at most
//  AN_FMD_MAX_RULES objects {endpoint (non-empty string), monitor (bool
//  or integer; non-zero is true)}. Same returns.
an_fmd_list_t *an_fmd_rules_new (const char *json, size_t len, int *err,
                                 char *why, size_t why_size);

//  Destroys a list and nulls the caller's reference. Safe on NULL.
void an_fmd_list_destroy (an_fmd_list_t **self_p);

//  How many items; item `index` (borrowed; NULL out of range or when the
//  list holds the other kind).
size_t an_fmd_list_size (an_fmd_list_t *self);
const an_fmd_call_t *an_fmd_list_call (an_fmd_list_t *self, size_t index);
const an_fmd_rule_t *an_fmd_list_rule (an_fmd_list_t *self, size_t index);

//  Reads an FMD time "YYYY-MM-DD HH:MM:SS[.f{1,6}]" (UTC) into µs since
//  the epoch. Returns 0 or TL_EINVAL.
int an_fmd_time_parse (const char *text, int64_t *time_us);

//  Writes µs since the epoch as FMD writes a time ("2024-01-02 03:04:05"
//  or with ".123456" when there are µs) into `text` (32 bytes).
void an_fmd_time_format (int64_t time_us, char text [32]);

//  Self-test.
void an_fmd_test (bool verbose);

#endif
