//  analytics_stats.c — the twelve statistics of a dashboard's calls over
//  [start_date, end_date), whole or in time slices (an_slices), and the
//  boxplots of each endpoint. Counts, sums, averages and extremes read
//  the hourly aggregates for each slice's whole hours and the calls of its
//  edges only; distinct visitors and visits per address of every endpoint
//  the daily ones (per address) likewise; those of some endpoints, and the
//  exact percentiles (percentile_cont: linear interpolation between closest
//  ranks, numpy's default) read the calls of the range. Disabled
//  endpoints are left out; `endpoint` picks one.
#include "analytics_monitor.h"
#include "an_slices.h"
#include "tl_error.h"
#include "tl_mp.h"
#include "tl_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  IPs one slice of visits_per_ip lists, most visits first
#define S_MAX_IPS   1000

//  The endpoints counted: $1 dashboard, $3 endpoint name or NULL
#define S_ENDPOINTS \
    "(SELECT id FROM endpoints WHERE dashboard_id = $1 AND enabled " \
    " AND ($3::text IS NULL OR name = $3))"
//  The calls of [$2 [1], $2 [n]) (ms bounds), and their slice
#define S_RANGE(column) \
    column " >= to_timestamp (($2::float8 []) [1] / 1000) " \
    "AND " column " < to_timestamp (($2::float8 []) [array_upper ($2::float8 [], 1)] / 1000)"
#define S_SLICE(column) \
    "width_bucket (date_part ('epoch', " column ") * 1000, $2::float8 [])"

//  The addresses of each slice b: whole days (daily aggregates), then the
//  calls before the first whole day and from the last one on
#define S_DAY_IPS \
    "ips AS (" \
    "  SELECT b.k, d.ip, d.visits AS n FROM b, LATERAL (SELECT ip, visits FROM calls_daily_ip " \
    "    WHERE dashboard_id = $1 AND day >= b.dlo_day AND day < b.dhi_day) d " \
    "  UNION ALL " \
    "  SELECT b.k, c.ip, 1 FROM b, LATERAL (SELECT ip FROM calls WHERE dashboard_id = $1 " \
    "    AND at >= b.lo AND at < least (b.dlo, b.hi)) c " \
    "  UNION ALL " \
    "  SELECT b.k, c.ip, 1 FROM b, LATERAL (SELECT ip FROM calls WHERE dashboard_id = $1 " \
    "    AND at >= greatest (b.dhi, b.dlo) AND at < b.hi) c) "

static const tl_db_statement_t s_statements [] = {
    //  For the statement of one statistic, inside its transaction
    { "stat_settings",
      "SELECT set_config ('statement_timeout', $1, true), set_config ('work_mem', $2, true)", 2 },
    //  Counts, sums and extremes: each slice's whole hours from the hourly
    //  aggregates, and its edges (the parts of an hour it holds) from the
    //  calls, so that any range reads at most two hours of calls a slice
    { "stat_basic",
      "WITH b AS (SELECT * FROM monitor_slices ($2::float8 [])), "
      "e AS " S_ENDPOINTS ", "
      "parts AS ("
      "  SELECT b.k, x.* FROM b, LATERAL (SELECT sum (visits) AS n, sum (total_ms) AS t, "
      "    min (min_ms) AS mn, max (max_ms) AS mx FROM calls_hourly h "
      "    WHERE h.dashboard_id = $1 AND h.hour >= b.hlo AND h.hour < b.hhi "
      "    AND h.endpoint_id IN (SELECT id FROM e)) x "
      "  UNION ALL "
      "  SELECT b.k, x.* FROM b, LATERAL (SELECT count (*) AS n, sum (duration_ms) AS t, "
      "    min (duration_ms) AS mn, max (duration_ms) AS mx FROM calls c "
      "    WHERE c.dashboard_id = $1 AND c.at >= b.lo AND c.at < least (b.hlo, b.hi) "
      "    AND c.endpoint_id IN (SELECT id FROM e)) x "
      "  UNION ALL "
      "  SELECT b.k, x.* FROM b, LATERAL (SELECT count (*) AS n, sum (duration_ms) AS t, "
      "    min (duration_ms) AS mn, max (duration_ms) AS mx FROM calls c "
      "    WHERE c.dashboard_id = $1 AND c.at >= greatest (b.hhi, b.hlo) AND c.at < b.hi "
      "    AND c.endpoint_id IN (SELECT id FROM e)) x) "
      "SELECT k, sum (n), sum (t), min (mn), max (mx) FROM parts GROUP BY k", 3 },
    { "stat_percentile",
      "SELECT " S_SLICE ("at") ", percentile_cont ($4::float8) WITHIN GROUP (ORDER BY duration_ms) "
      "FROM calls WHERE dashboard_id = $1 AND " S_RANGE ("at")
      " AND endpoint_id IN " S_ENDPOINTS " GROUP BY 1", 4 },
    //  The same three over the whole range (one slice): no bucket to compute
    //  nor to sort by
    { "stat_percentile_whole",
      "SELECT 1, percentile_cont ($4::float8) WITHIN GROUP (ORDER BY duration_ms) "
      "FROM calls WHERE dashboard_id = $1 AND " S_RANGE ("at")
      " AND endpoint_id IN " S_ENDPOINTS, 4 },
    { "stat_unique_whole",
      "SELECT 1, count (*) FROM (SELECT ip FROM calls WHERE dashboard_id = $1 AND " S_RANGE ("at")
      "  AND endpoint_id IN " S_ENDPOINTS " GROUP BY ip) per_ip", 3 },
    { "stat_per_ip_whole",
      "SELECT 1, ip, count (*) AS n FROM calls WHERE dashboard_id = $1 AND " S_RANGE ("at")
      " AND endpoint_id IN " S_ENDPOINTS " GROUP BY ip ORDER BY n DESC, ip LIMIT $4::int", 4 },
    { "stat_unique",
      "SELECT k, count (*) FROM (SELECT " S_SLICE ("at") " AS k, ip "
      "  FROM calls WHERE dashboard_id = $1 AND " S_RANGE ("at")
      "  AND endpoint_id IN " S_ENDPOINTS " GROUP BY 1, 2) per_ip GROUP BY k", 3 },
    { "stat_per_ip",
      "SELECT k, ip, n FROM (SELECT k, ip, n, row_number () OVER (PARTITION BY k "
      "                      ORDER BY n DESC, ip) AS r "
      "  FROM (SELECT " S_SLICE ("at") " AS k, ip, count (*) AS n "
      "        FROM calls WHERE dashboard_id = $1 AND " S_RANGE ("at")
      "        AND endpoint_id IN " S_ENDPOINTS " GROUP BY 1, 2) per_ip) ranked "
      "WHERE r <= $4::int ORDER BY k, n DESC, ip", 4 },
    //  Distinct visitors and visits per address of every endpoint (none
    //  disabled, none picked): each slice's whole days from the daily
    //  aggregates, its edges from the calls
    { "stat_all_enabled",
      "SELECT NOT EXISTS (SELECT 1 FROM endpoints WHERE dashboard_id = $1 AND NOT enabled)", 1 },
    { "stat_unique_days",
      "WITH b AS (SELECT * FROM monitor_day_slices ($2::float8 [])), " S_DAY_IPS
      "SELECT k, count (*) FROM (SELECT k, ip FROM ips GROUP BY 1, 2) per_ip GROUP BY k", 2 },
    { "stat_per_ip_days",
      "WITH b AS (SELECT * FROM monitor_day_slices ($2::float8 [])), " S_DAY_IPS
      "SELECT k, ip, n FROM (SELECT k, ip, n, row_number () OVER (PARTITION BY k "
      "                      ORDER BY n DESC, ip) AS r "
      "  FROM (SELECT k, ip, sum (n) AS n FROM ips GROUP BY 1, 2) per_ip) ranked "
      "WHERE r <= $3::int ORDER BY k, n DESC, ip", 3 },
    { "stat_endpoint_known",
      "SELECT 1 FROM endpoints WHERE dashboard_id = $1 AND name = $2", 2 },
    //  $1 dashboard, $2 bounds as above
    { "stat_boxplots",
      "SELECT e.name, count (c.duration_ms), min (c.duration_ms), "
      "       percentile_cont (ARRAY [0.25, 0.5, 0.75]::float8 []) "
      "         WITHIN GROUP (ORDER BY c.duration_ms), max (c.duration_ms) "
      "FROM endpoints e LEFT JOIN calls c ON c.endpoint_id = e.id AND c.dashboard_id = $1 "
      "  AND " S_RANGE ("c.at")
      " WHERE e.dashboard_id = $1 AND e.enabled GROUP BY e.name ORDER BY e.name", 2 },
};

int
analytics_stats_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

//  The statistics: what each reads and how its value is shaped
typedef enum { S_COUNT, S_SUM, S_AVG, S_MIN, S_MAX, S_PCT, S_UNIQUE, S_PER_IP } s_kind_t;

static const struct {
    const char *name;
    s_kind_t kind;
    const char *fraction;           //  of S_PCT
} s_stats [] = {
    { "total_visits", S_COUNT, NULL },
    { "total_execution_time", S_SUM, NULL },
    { "average_execution_time", S_AVG, NULL },
    { "visits_per_ip", S_PER_IP, NULL },
    { "unique_visitors", S_UNIQUE, NULL },
    { "fastest_measured_execution_time", S_MIN, NULL },
    { "fastest_quartile_execution_time", S_PCT, "0.25" },
    { "median_execution_time", S_PCT, "0.5" },
    { "slowest_quartile_execution_time", S_PCT, "0.75" },
    { "ninetieth_percentile_execution_time", S_PCT, "0.9" },
    { "ninety-ninth_percentile_execution_time", S_PCT, "0.99" },
    { "slowest_measured_execution_time", S_MAX, NULL },
};
#define S_STATS (sizeof s_stats / sizeof s_stats [0])

//  A request for a statistic
typedef struct {
    const char *id, *endpoint;
    size_t stat;
    bool sliced;
    const char *unit;
    int64_t *bounds;                //  n + 1 boundaries (ms)
    long n;
    char *bounds_text;              //  as a float8 [] literal
} s_ask_t;

//  Reads start_date and end_date into the request's range. Answers 400.
static bool
s_read_range (tl_call_t *call, int64_t *start_ms, int64_t *end_ms)
{
    const char *start = tl_call_param (call, "start_date");
    const char *end = tl_call_param (call, "end_date");
    if (an_slices_date (start, start_ms) != 0) {
        tl_call_error (call, 400, "start_date", "start_date must be YYYY-MM-DD or RFC 3339");
        return false;
    }
    if (an_slices_date (end, end_ms) != 0) {
        tl_call_error (call, 400, "end_date", "end_date must be YYYY-MM-DD or RFC 3339");
        return false;
    }
    if (*start_ms >= *end_ms) {
        tl_call_error (call, 400, "end_date", "end_date must be after start_date");
        return false;
    }
    return true;
}

//  Writes the boundaries as a float8 [] literal. Returns false when
//  memory ran out (answered 503).
static bool
s_bounds_text (tl_call_t *call, s_ask_t *ask)
{
    size_t room = (size_t) (ask->n + 1) * 22 + 3;
    ask->bounds_text = (char *) malloc (room);
    if (!ask->bounds_text) {
        tl_call_error (call, 503, "memory", "out of memory");
        return false;
    }
    size_t len = 0;
    ask->bounds_text [len++] = '{';
    for (long i = 0; i <= ask->n; i++)
        len += (size_t) snprintf (ask->bounds_text + len, room - len, "%s%lld", i ? "," : "",
                                  (long long) ask->bounds [i]);
    snprintf (ask->bounds_text + len, room - len, "}");
    return true;
}

//  Reads the slicing: none, or timeslice + timeslice_is_static. Answers 400.
static bool
s_read_slices (tl_call_t *call, s_ask_t *ask, int64_t start_ms, int64_t end_ms)
{
    ask->unit = tl_call_param (call, "timeslice");
    const char *is_static = tl_call_param (call, "timeslice_is_static");
    ask->bounds = (int64_t *) malloc ((AN_MAX_SLICES + 1) * sizeof (int64_t));
    if (!ask->bounds) {
        tl_call_error (call, 503, "memory", "out of memory");
        return false;
    }
    ask->sliced = ask->unit && *ask->unit;
    if (!ask->sliced) {
        ask->bounds [0] = start_ms;
        ask->bounds [1] = end_ms;
        ask->n = 1;
        return s_bounds_text (call, ask);
    }
    an_slice_unit_t unit;
    if (an_slices_unit (ask->unit, &unit) != 0) {
        tl_call_error (call, 400, "timeslice",
                       "timeslice must be year, month, week, day, hour or minute");
        return false;
    }
    if (!is_static || (strcmp (is_static, "true") != 0 && strcmp (is_static, "false") != 0)) {
        tl_call_error (call, 400, "timeslice_is_static",
                       "a timeslice needs timeslice_is_static, true or false");
        return false;
    }
    ask->n = an_slices_bounds (start_ms, end_ms, unit, strcmp (is_static, "true") == 0,
                               ask->bounds, AN_MAX_SLICES);
    if (ask->n == TL_EINVAL)
        tl_call_error (call, 400, "timeslice", "dynamic timeslices are week, day, hour or minute");
    else
    if (ask->n < 0)
        tl_call_error (call, 400, "timeslice", "the range holds more than %d slices",
                       AN_MAX_SLICES);
    return ask->n > 0 && s_bounds_text (call, ask);
}

//  Packs one slice's value from the row of slice k (NULL when none).
static void
s_pack_value (msgpack_packer *pk, s_kind_t kind, const PGresult *res, int row)
{
    if (kind == S_COUNT || kind == S_UNIQUE) {
        msgpack_pack_int64 (pk, row >= 0 ? strtoll (tl_db_value (res, row, 1), NULL, 10) : 0);
        return;
    }
    int col = kind == S_SUM || kind == S_AVG ? 2 : kind == S_MIN ? 3 : kind == S_MAX ? 4 : 1;
    const char *value = row >= 0 ? tl_db_value (res, row, col) : NULL;
    if (!value) {
        msgpack_pack_nil (pk);
        return;
    }
    double number = strtod (value, NULL);
    if (kind == S_AVG)
        number = strtod (tl_db_value (res, row, 2), NULL)
               / strtod (tl_db_value (res, row, 1), NULL);
    msgpack_pack_double (pk, number);
}

//  Packs visits_per_ip of slice k, {ip: visits}, from rows [*row ...)
//  of a result ordered by slice.
static void
s_pack_per_ip (msgpack_packer *pk, const PGresult *res, int *row, long k)
{
    int first = *row, last = *row;
    while (last < PQntuples (res) && atol (tl_db_value (res, last, 0)) == k)
        last++;
    msgpack_pack_map (pk, (uint32_t) (last - first));
    for (int r = first; r < last; r++) {
        tl_mp_pack_str (pk, tl_db_value (res, r, 1));
        msgpack_pack_int64 (pk, strtoll (tl_db_value (res, r, 2), NULL, 10));
    }
    *row = last;
}

//  One read statement under the statistics' own timeout and memory (the
//  settings last as long as its transaction).
typedef struct {
    const char *name;
    int nparams;
    const char *const *values;
    PGresult *res;
} s_read_t;

static int
s_read_tx (tl_db_t *db, void *arg)
{
    s_read_t *read = (s_read_t *) arg;
    const char *settings [] = { AN_STATS_TIMEOUT_MS, AN_STATS_WORK_MEM };
    int err = 0;
    PGresult *res = tl_db_exec (db, "stat_settings", 2, settings, &err);
    PQclear (res);
    PQclear (read->res);
    read->res = res ? tl_db_exec (db, read->name, read->nparams, read->values, &err) : NULL;
    return read->res ? 0 : err;
}

//  Runs statement `name` that way. Returns its result (the caller's) or
//  NULL once it has answered the error.
static PGresult *
s_read (tl_call_t *call, const char *name, int nparams, const char *const *values)
{
    s_read_t read = { .name = name, .nparams = nparams, .values = values };
    int rc = tl_db_tx (tl_call_db (call), s_read_tx, &read);
    if (rc) {
        PQclear (read.res);
        tl_call_db_error (call, rc);
        return NULL;
    }
    return read.res;
}

//  Whether dashboard `id` has no disabled endpoint: 1, 0, or -1 once the
//  database error is answered.
static int
s_all_enabled (tl_call_t *call, const char *id)
{
    int err = 0;
    PGresult *res = tl_db_exec (tl_call_db (call), "stat_all_enabled", 1, &id, &err);
    if (!res) {
        tl_call_db_error (call, err);
        return -1;
    }
    int all = strcmp (tl_db_value (res, 0, 0), "t") == 0;
    PQclear (res);
    return all;
}

//  Runs the statistic's statement and answers.
static void
s_answer (tl_call_t *call, s_ask_t *ask)
{
    s_kind_t kind = s_stats [ask->stat].kind;
    char limit [16];
    snprintf (limit, sizeof limit, "%d", S_MAX_IPS);
    const char *name = kind == S_PCT ? (ask->sliced ? "stat_percentile" : "stat_percentile_whole")
                     : kind == S_UNIQUE ? (ask->sliced ? "stat_unique" : "stat_unique_whole")
                     : kind == S_PER_IP ? (ask->sliced ? "stat_per_ip" : "stat_per_ip_whole")
                     : "stat_basic";
    const char *values [] = { ask->id, ask->bounds_text, ask->endpoint,
                              kind == S_PER_IP ? limit : s_stats [ask->stat].fraction };
    int nparams = kind == S_PCT || kind == S_PER_IP ? 4 : 3;
    if ((kind == S_UNIQUE || kind == S_PER_IP) && !ask->endpoint) {
        int all = s_all_enabled (call, ask->id);
        if (all < 0)
            return;
        if (all) {
            //  every endpoint counts: the daily aggregates answer
            name = kind == S_UNIQUE ? "stat_unique_days" : "stat_per_ip_days";
            values [2] = limit;
            nparams = kind == S_UNIQUE ? 2 : 3;
        }
    }
    PGresult *res = s_read (call, name, nparams, values);
    if (!res)
        return;
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_map (pk, ask->sliced ? 3 : 2);
    tl_mp_pack_kv (pk, "statistic", s_stats [ask->stat].name);
    if (ask->sliced) {
        tl_mp_pack_kv (pk, "timeslice", ask->unit);
        tl_mp_pack_str (pk, "slices");
        msgpack_pack_array (pk, (uint32_t) ask->n);
    }
    else
        tl_mp_pack_str (pk, "value");
    int row = 0;
    for (long k = 1; k <= ask->n; k++) {
        if (ask->sliced) {
            char start [TL_TIME_TEXT_SIZE];
            tl_time_format (ask->bounds [k - 1], start, sizeof start);
            msgpack_pack_map (pk, 2);
            tl_mp_pack_kv (pk, "start", start);
            tl_mp_pack_str (pk, "value");
        }
        if (kind == S_PER_IP)
            s_pack_per_ip (pk, res, &row, k);
        else {
            int found = -1;
            for (int r = 0; r < PQntuples (res) && found < 0; r++)
                if (atol (tl_db_value (res, r, 0)) == k)
                    found = r;
            s_pack_value (pk, kind, res, found);
        }
    }
    PQclear (res);
}

//  GET /dashboards/{id}/statistics
static void
s_statistics (tl_call_t *call)
{
    s_ask_t ask = { .id = tl_call_param (call, "id"), .endpoint = tl_call_param (call, "endpoint") };
    if (!analytics_dashboard_owned (call, ask.id))
        return;
    const char *statistic = tl_call_param (call, "statistic");
    for (ask.stat = 0; statistic && ask.stat < S_STATS; ask.stat++)
        if (strcmp (statistic, s_stats [ask.stat].name) == 0)
            break;
    int64_t start_ms, end_ms;
    if (!statistic || ask.stat == S_STATS)
        tl_call_error (call, 400, "statistic", "statistic is missing or unknown");
    else
    if (s_read_range (call, &start_ms, &end_ms) && s_read_slices (call, &ask, start_ms, end_ms)) {
        if (ask.endpoint && !*ask.endpoint)
            ask.endpoint = NULL;
        const char *values [] = { ask.id, ask.endpoint };
        int err = 0;
        PGresult *known = ask.endpoint ? tl_db_exec (tl_call_db (call), "stat_endpoint_known",
                                                     2, values, &err) : NULL;
        if (ask.endpoint && !known)
            tl_call_db_error (call, err);
        else
        if (known && PQntuples (known) == 0)
            tl_call_error (call, 400, "endpoint", "this dashboard has no such endpoint");
        else
            s_answer (call, &ask);
        PQclear (known);
    }
    free (ask.bounds);
    free (ask.bounds_text);
}

//  Packs a float column, or nil.
static void
s_pack_number (msgpack_packer *pk, const char *key, const char *value)
{
    tl_mp_pack_str (pk, key);
    if (value)
        msgpack_pack_double (pk, strtod (value, NULL));
    else
        msgpack_pack_nil (pk);
}

//  GET /dashboards/{id}/boxplots
static void
s_boxplots (tl_call_t *call)
{
    const char *id = tl_call_param (call, "id");
    if (!analytics_dashboard_owned (call, id))
        return;
    int64_t start_ms, end_ms;
    if (!s_read_range (call, &start_ms, &end_ms))
        return;
    char bounds [64];
    snprintf (bounds, sizeof bounds, "{%lld,%lld}", (long long) start_ms, (long long) end_ms);
    const char *values [] = { id, bounds };
    PGresult *res = s_read (call, "stat_boxplots", 2, values);
    if (!res)
        return;
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_map (pk, 2);
    tl_mp_pack_str (pk, "items");
    msgpack_pack_array (pk, (uint32_t) PQntuples (res));
    for (int row = 0; row < PQntuples (res); row++) {
        //  The quartiles come as one array "{q1,median,q3}"
        const char *quartiles = tl_db_value (res, row, 3);
        char q [3][32] = { "", "", "" };
        if (quartiles)
            sscanf (quartiles, "{%31[^,],%31[^,],%31[^}]}", q [0], q [1], q [2]);
        msgpack_pack_map (pk, 7);
        tl_mp_pack_kv (pk, "endpoint", tl_db_value (res, row, 0));
        tl_mp_pack_str (pk, "count");
        msgpack_pack_int64 (pk, strtoll (tl_db_value (res, row, 1), NULL, 10));
        s_pack_number (pk, "min", tl_db_value (res, row, 2));
        s_pack_number (pk, "q1", quartiles ? q [0] : NULL);
        s_pack_number (pk, "median", quartiles ? q [1] : NULL);
        s_pack_number (pk, "q3", quartiles ? q [2] : NULL);
        s_pack_number (pk, "max", tl_db_value (res, row, 4));
    }
    tl_mp_pack_str (pk, "next_cursor");
    msgpack_pack_nil (pk);
    PQclear (res);
}

int
analytics_stats_register (tl_service_t *svc)
{
    int rc = tl_service_on (svc, "dashboards.statistics", s_statistics);
    rc = rc ? rc : tl_service_on (svc, "dashboards.boxplots", s_boxplots);
    return rc;
}
