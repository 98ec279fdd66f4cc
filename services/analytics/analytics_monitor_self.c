//  analytics_monitor_self.c — Tally watches itself: calls.ingest stores the
//  batches of calls every gateway records (gw_calls: route template and
//  method as the endpoint, status, duration, client address, time,
//  version) under the built-in dashboard, which staff see; and with
//  TALLY_FMD_TOKEN set, the FMD 1.13 export of those calls
//  (/dashboard/get_json_details, get_json_data/<from>/<to>,
//  get_json_monitor_rules), so that another Tally, or PyDash, monitors
//  this one.
#include "analytics_monitor.h"
#include "an_jwt.h"
#include "tl_env.h"
#include "tl_error.h"
#include "tl_log.h"
#include "tl_mp.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

//  TALLY_FMD_TOKEN (empty: the export answers 404)
static char s_token [AN_TOKEN_MAX + 1];

static const tl_db_statement_t s_statements [] = {
    { "self_details",
      "SELECT (SELECT extract (epoch FROM min (at))::float8 FROM calls WHERE dashboard_id = $1), "
      "       (SELECT coalesce (sum (calls), 0) FROM endpoints WHERE dashboard_id = $1)", 1 },
    //  $1 dashboard, $2 from, $3 to (unix s: from < time <= to), $4 limit
    { "self_data",
      "SELECT e.name, c.duration_ms, (extract (epoch FROM c.at) * 1000000)::bigint, "
      "       c.version, c.group_by, c.ip "
      "FROM calls c JOIN endpoints e ON e.id = c.endpoint_id "
      "WHERE c.dashboard_id = $1 AND c.at > to_timestamp ($2::float8) "
      "  AND c.at <= to_timestamp ($3::float8) ORDER BY c.at LIMIT $4::int", 4 },
    { "self_rules",
      "SELECT name, monitor FROM endpoints WHERE dashboard_id = $1 ORDER BY name", 1 },
};

int
analytics_monitor_self_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

//  ---------------------------------------------------------------------
//  calls.ingest {version?, calls: [[endpoint, status, ms, ip, time_us]]}

//  Reads one call of a batch into a row of `rows`. Returns false when it
//  is malformed.
static bool
s_ingest_row (const msgpack_object *item, const char *version, int64_t cutoff_us,
              json_t *rows)
{
    if (item->type != MSGPACK_OBJECT_ARRAY || item->via.array.size != 5)
        return false;
    const msgpack_object *f = item->via.array.ptr;
    char endpoint [AN_ENDPOINT_MAX + 1], ip [AN_IP_MAX + 1];
    int64_t status, time_us;
    double ms = f [2].type == MSGPACK_OBJECT_FLOAT64 || f [2].type == MSGPACK_OBJECT_FLOAT32
              ? f [2].via.f64 : -1;
    if (tl_mp_int (&f [2], &status) == 0)       //  an integer duration
        ms = (double) status;
    if (!tl_mp_copy (&f [0], endpoint, sizeof endpoint) || !*endpoint
    ||  tl_mp_int (&f [1], &status) != 0 || status < 100 || status > 599
    ||  !(ms >= 0 && ms < 1e12)
    ||  !tl_mp_copy (&f [3], ip, sizeof ip)
    ||  tl_mp_int (&f [4], &time_us) != 0 || time_us < 0 || time_us > 253402300799000000LL)
        return false;
    if (time_us < cutoff_us)
        return true;                //  past the retention: kept nowhere
    json_t *row = json_pack ("{s:s, s:I, s:f, s:s, s:s, s:s, s:I}", "e", endpoint,
                             "t", (json_int_t) time_us, "x", ms, "v", version, "g", "",
                             "ip", ip, "s", (json_int_t) status);
    return row && json_array_append_new (rows, row) == 0;
}

static void
s_ingest (tl_call_t *call)
{
    const msgpack_object *body = tl_call_body (call);
    const msgpack_object *calls = tl_mp_get (body, "calls");
    char version [AN_VERSION_MAX + 1] = "";
    const msgpack_object *given = tl_mp_get (body, "version");
    if (!calls || calls->type != MSGPACK_OBJECT_ARRAY
    ||  calls->via.array.size > AN_INGEST_MAX_CALLS
    ||  (given && !tl_mp_copy (given, version, sizeof version))) {
        tl_call_field_error (call, 400, "invalid", "calls",
                             "must be at most 5000 [endpoint, status, ms, ip, time_us]");
        return;
    }
    struct timeval now;
    gettimeofday (&now, NULL);
    int64_t cutoff_us = analytics_calls_cutoff_us ((int64_t) now.tv_sec * 1000);
    json_t *rows = json_array ();
    for (uint32_t i = 0; rows && i < calls->via.array.size; i++)
        if (!s_ingest_row (&calls->via.array.ptr [i], version, cutoff_us, rows)) {
            json_decref (rows);
            tl_call_field_error (call, 400, "invalid", "calls", "holds a malformed call");
            return;
        }
    char *text = rows ? json_dumps (rows, JSON_COMPACT) : NULL;
    size_t stored = rows ? json_array_size (rows) : 0;
    json_decref (rows);
    if (!text) {
        tl_call_error (call, 503, "memory", "out of memory");
        return;
    }
    int rc = stored ? analytics_calls_store (tl_call_db (call), ANALYTICS_BUILTIN_ID, text) : 0;
    free (text);
    if (rc) {
        tl_call_db_error (call, rc);
        return;
    }
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_map (pk, 1);
    tl_mp_pack_str (pk, "stored");
    msgpack_pack_uint64 (pk, stored);
}

//  ---------------------------------------------------------------------
//  The FMD export of the built-in dashboard

//  True when the export is on; answers 404 otherwise.
static bool
s_export_on (tl_call_t *call)
{
    if (!*s_token)
        tl_call_error (call, 404, "not_found", "this Tally exports no monitoring data");
    return *s_token != 0;
}

//  Answers a JWT signed with the token over `data` (a JSON array).
static void
s_reply_signed (tl_call_t *call, json_t *data)
{
    char *text = data ? json_dumps (data, JSON_COMPACT) : NULL;
    char *token = text ? an_jwt_sign_data (text, s_token, strlen (s_token)) : NULL;
    free (text);
    if (!token) {
        tl_call_error (call, 503, "memory", "out of memory");
        return;
    }
    size_t size = strlen (token);
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_bin (pk, size);
    msgpack_pack_bin_body (pk, token, size);
    tl_call_header (call, "Content-Type", "text/plain; charset=utf-8");
    free (token);
}

static void
s_details (tl_call_t *call)
{
    if (!s_export_on (call))
        return;
    const char *id = ANALYTICS_BUILTIN_ID;
    int err = 0;
    PGresult *res = tl_db_exec (tl_call_db (call), "self_details", 1, &id, &err);
    if (!res) {
        tl_call_db_error (call, err);
        return;
    }
    const char *first = tl_db_value (res, 0, 0);
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_map (pk, 5);
    tl_mp_pack_kv (pk, "link", "dashboard");
    tl_mp_pack_kv (pk, "dashboard-version", "1.13.0");
    tl_mp_pack_str (pk, "config-version");
    msgpack_pack_int (pk, 1);
    tl_mp_pack_str (pk, "first-request");
    if (first)
        msgpack_pack_double (pk, strtod (first, NULL));
    else
        msgpack_pack_int (pk, -1);
    tl_mp_pack_str (pk, "total-requests");
    msgpack_pack_int64 (pk, strtoll (tl_db_value (res, 0, 1), NULL, 10));
    PQclear (res);
}

//  True for 1..12 decimal digits (unix seconds).
static bool
s_seconds_ok (const char *text)
{
    size_t len = text ? strlen (text) : 0;
    if (len < 1 || len > 12)
        return false;
    for (size_t i = 0; i < len; i++)
        if (text [i] < '0' || text [i] > '9')
            return false;
    return true;
}

static void
s_data (tl_call_t *call)
{
    if (!s_export_on (call))
        return;
    const char *from = tl_call_param (call, "from"), *to = tl_call_param (call, "to");
    if (!s_seconds_ok (from) || !s_seconds_ok (to)) {
        tl_call_error (call, 400, "invalid", "from and to must be unix seconds");
        return;
    }
    char limit [16];
    snprintf (limit, sizeof limit, "%d", AN_SELF_EXPORT_MAX_CALLS);
    const char *values [] = { ANALYTICS_BUILTIN_ID, from, to, limit };
    int err = 0;
    PGresult *res = tl_db_exec (tl_call_db (call), "self_data", 4, values, &err);
    if (!res) {
        tl_call_db_error (call, err);
        return;
    }
    json_t *data = json_array ();
    for (int row = 0; data && row < PQntuples (res); row++) {
        char time [32];
        an_fmd_time_format (strtoll (tl_db_value (res, row, 2), NULL, 10), time);
        json_t *item = json_pack ("{s:s, s:f, s:s, s:s, s:s, s:s}",
            "endpoint", tl_db_value (res, row, 0),
            "execution_time", strtod (tl_db_value (res, row, 1), NULL), "time", time,
            "version", tl_db_value (res, row, 3), "group_by", tl_db_value (res, row, 4),
            "ip", tl_db_value (res, row, 5));
        if (!item || json_array_append_new (data, item) != 0) {
            json_decref (data);
            data = NULL;
        }
    }
    PQclear (res);
    s_reply_signed (call, data);
    json_decref (data);
}

static void
s_rules (tl_call_t *call)
{
    if (!s_export_on (call))
        return;
    const char *id = ANALYTICS_BUILTIN_ID;
    int err = 0;
    PGresult *res = tl_db_exec (tl_call_db (call), "self_rules", 1, &id, &err);
    if (!res) {
        tl_call_db_error (call, err);
        return;
    }
    json_t *data = json_array ();
    for (int row = 0; data && row < PQntuples (res); row++) {
        json_t *item = json_pack ("{s:s, s:b, s:n, s:n, s:s}",
            "endpoint", tl_db_value (res, row, 0),
            "monitor", strcmp (tl_db_value (res, row, 1), "t") == 0,
            "last_accessed", "time_added", "version_added", "");
        if (!item || json_array_append_new (data, item) != 0) {
            json_decref (data);
            data = NULL;
        }
    }
    PQclear (res);
    s_reply_signed (call, data);
    json_decref (data);
}

int
analytics_monitor_self_register (tl_service_t *svc)
{
    const char *token = tl_env ("TALLY_FMD_TOKEN", "");
    size_t len = strlen (token);
    if (len && (len < AN_FMD_TOKEN_MIN || len > AN_TOKEN_MAX)) {
        tl_log (TL_LOG_ERROR, NULL, "TALLY_FMD_TOKEN must be %d to %d bytes", AN_FMD_TOKEN_MIN,
                AN_TOKEN_MAX);
        return TL_ECONFIG;
    }
    memcpy (s_token, token, len + 1);
    int rc = tl_service_on (svc, "calls.ingest", s_ingest);
    rc = rc ? rc : tl_service_on (svc, "fmd.details", s_details);
    rc = rc ? rc : tl_service_on (svc, "fmd.data", s_data);
    rc = rc ? rc : tl_service_on (svc, "fmd.rules", s_rules);
    return rc;
}
