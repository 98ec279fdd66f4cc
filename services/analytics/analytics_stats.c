//  analytics_stats.c — the twelve statistics of a dashboard's calls over
//  [start_date, end_date), whole or in time slices (an_slices), and the
//  boxplots of each endpoint. Counts, sums, averages and extremes read
//  the hourly aggregates for each slice's whole hours and the calls of its
//  edges only. Distinct visitors and visits per address read the daily
//  aggregates per endpoint and address of the counted endpoints, or those
//  of all endpoints together less the others', whichever reads fewer
//  rows, and the calls of the edges likewise. Percentiles and boxplots
//  are exact (percentile_cont's linear interpolation between closest
//  ranks, numpy's default) and read the daily duration histograms to find
//  the bucket of each rank, then sort that bucket's calls alone
//  (migrations/004).
//  Disabled endpoints are left out; `endpoint` picks one.
#include "analytics_monitor.h"
#include "an_slices.h"
#include "tl_error.h"
#include "tl_mp.h"
#include "tl_time.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  IPs one slice of visits_per_ip lists, most visits first
#define S_MAX_IPS   1000

//  The endpoints counted: $1 dashboard, $3 endpoint name or NULL
#define S_ENDPOINTS \
    "(SELECT id FROM endpoints WHERE dashboard_id = $1 AND enabled " \
    " AND ($3::text IS NULL OR name = $3))"
//  The other endpoints: disabled, or not the one picked
#define S_OTHERS \
    "(SELECT id FROM endpoints WHERE dashboard_id = $1 " \
    " AND NOT (enabled AND ($3::text IS NULL OR name = $3)))"

//  The addresses of day slice b, as rows (ip, n) that a statistic sums per
//  address, come from the per-address aggregates of its whole days
//  (migrations/005) and the counted endpoints' calls before its first
//  whole day and from its last one on (S_EDGE_IPS), either way:
//  - direct: the counted endpoints' rows of calls_daily_endpoint_ip;
//  - subtract: every address's visits of calls_daily_ip less the other
//    endpoints' rows of calls_daily_endpoint_ip (an address visited the
//    counted endpoints when its sum is above 0: each part is exact).
//  Each endpoint's rows are read on their own (OFFSET 0: pulled up, the
//  planner guesses a few rows and joins every row of the range to the
//  endpoints instead).
#define S_EDGE_IPS \
    " SELECT ip, 1 FROM calls WHERE dashboard_id = $1 AND at >= b.lo AND at < least (b.dlo, b.hi) " \
    "   AND endpoint_id IN " S_ENDPOINTS \
    " UNION ALL " \
    " SELECT ip, 1 FROM calls WHERE dashboard_id = $1 AND at >= greatest (b.dhi, b.dlo) " \
    "   AND at < b.hi AND endpoint_id IN " S_ENDPOINTS
#define S_ENDPOINT_DAYS(endpoints, sign) \
    " SELECT d.ip, " sign "d.visits FROM " endpoints " e, " \
    "   LATERAL (SELECT ip, visits FROM calls_daily_endpoint_ip WHERE dashboard_id = $1 " \
    "            AND endpoint_id = e.id AND day >= b.dlo_day AND day < b.dhi_day OFFSET 0) d "
#define S_DIRECT_IPS \
    "(" S_ENDPOINT_DAYS (S_ENDPOINTS, "") " UNION ALL " S_EDGE_IPS ") u (ip, n) "
#define S_SUBTRACT_IPS \
    "(SELECT ip, visits FROM calls_daily_ip " \
    "   WHERE dashboard_id = $1 AND day >= b.dlo_day AND day < b.dhi_day " \
    " UNION ALL " S_ENDPOINT_DAYS (S_OTHERS, "-") " UNION ALL " S_EDGE_IPS ") u (ip, n) "

static const tl_db_statement_t s_statements [] = {
    //  For the statement of one statistic, inside its transaction; always
    //  a plan for the parameters given (after five runs PostgreSQL may keep
    //  a generic plan, blind to the range and the slices: a percentile
    //  went from 0.2 to 1-2 s that way), and no JIT (its estimates cross
    //  jit_above_cost, and compiling ~200 functions each time cost more
    //  than it saved: the median over 10 M calls 363 ms with it, 133
    //  without; the boxplots 470 and 260)
    { "stat_settings",
      "SELECT set_config ('statement_timeout', $1, true), set_config ('work_mem', $2, true), "
      "       set_config ('plan_cache_mode', 'force_custom_plan', true), "
      "       set_config ('jit', 'off', true)", 2 },
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
    //  Distinct visitors and visits per address, each slice on its own (a
    //  small hash a slice, not one of every (slice, address) that spills
    //  to disk). Visits per address lists the most visited first, ties in
    //  the addresses' byte order (COLLATE "C": the same on any cluster,
    //  and a third cheaper to sort than C.UTF-8's strcoll). Which way
    //  reads fewer rows, as the hourly aggregates of the range's hours
    //  tell: the counted endpoints' (direct) or the others' (subtract).
    //  Answers true for direct.
    { "stat_visitors_direct",
      "SELECT coalesce (sum (h.visits) FILTER (WHERE e.counted), 0) "
      "    <= coalesce (sum (h.visits) FILTER (WHERE NOT e.counted), 0) "
      "FROM (SELECT id, enabled AND ($3::text IS NULL OR name = $3) AS counted "
      "      FROM endpoints WHERE dashboard_id = $1) e "
      "JOIN calls_hourly h ON h.dashboard_id = $1 AND h.endpoint_id = e.id "
      "WHERE h.hour >= date_trunc ('hour', to_timestamp (($2::float8 []) [1] / 1000)) "
      "AND h.hour < to_timestamp (($2::float8 []) [array_upper ($2::float8 [], 1)] / 1000)", 3 },
    { "stat_unique_direct",
      "SELECT b.k, x.n FROM monitor_day_slices ($2::float8 []) b, "
      "LATERAL (SELECT count (*) AS n FROM (SELECT ip FROM " S_DIRECT_IPS " GROUP BY ip) g) x", 3 },
    { "stat_per_ip_direct",
      "SELECT b.k, x.ip, x.n FROM monitor_day_slices ($2::float8 []) b, "
      "LATERAL (SELECT ip, sum (n)::int8 AS n FROM " S_DIRECT_IPS
      "         GROUP BY ip ORDER BY 2 DESC, ip COLLATE \"C\" LIMIT $4::int) x "
      "ORDER BY b.k, x.n DESC, x.ip COLLATE \"C\"", 4 },
    { "stat_unique_subtract",
      "SELECT b.k, x.n FROM monitor_day_slices ($2::float8 []) b, "
      "LATERAL (SELECT count (*) AS n FROM (SELECT ip FROM " S_SUBTRACT_IPS
      "         GROUP BY ip HAVING sum (n) > 0) g) x", 3 },
    { "stat_per_ip_subtract",
      "SELECT b.k, x.ip, x.n FROM monitor_day_slices ($2::float8 []) b, "
      "LATERAL (SELECT ip, sum (n)::int8 AS n FROM " S_SUBTRACT_IPS
      "         GROUP BY ip HAVING sum (n) > 0 ORDER BY 2 DESC, ip COLLATE \"C\" LIMIT $4::int) x "
      "ORDER BY b.k, x.n DESC, x.ip COLLATE \"C\"", 4 },
    { "stat_endpoint_known",
      "SELECT 1 FROM endpoints WHERE dashboard_id = $1 AND name = $2", 2 },
    //  Exact ranks (migrations/004): $1 dashboard, $2 bounds, $3 endpoint
    //  name or NULL, $4 grouped by endpoint too (boxplots), $5 the
    //  fractions (float8 []). Each slice's duration histogram (whole days
    //  from the daily histograms, its edges bucketed from the calls) says
    //  which bucket holds each rank percentile_cont needs (floor and ceil
    //  of p (n - 1)); only that bucket's calls in the slice are sorted
    //  (index calls_endpoint_bucket, one endpoint at a time). Rows: k, g
    //  (endpoint or 0), n, rank, duration
    { "stat_ranks",
      "WITH b AS (SELECT * FROM monitor_day_slices ($2::float8 [])), "
      "e AS " S_ENDPOINTS ", "
      "h AS ("
      "  SELECT b.k, x.* FROM b, LATERAL (SELECT CASE WHEN $4::bool THEN d.endpoint_id ELSE 0 END AS g, "
      "    d.bucket, sum (d.visits)::bigint AS n FROM calls_daily_hist d "
      "    WHERE d.dashboard_id = $1 AND d.day >= b.dlo_day AND d.day < b.dhi_day "
      "    AND d.endpoint_id IN (SELECT id FROM e) GROUP BY 1, 2) x "
      "  UNION ALL "
      "  SELECT b.k, x.* FROM b, LATERAL (SELECT CASE WHEN $4::bool THEN c.endpoint_id ELSE 0 END AS g, "
      "    monitor_bucket (c.duration_ms) AS bucket, count (*) AS n FROM calls c "
      "    WHERE c.dashboard_id = $1 AND c.at >= b.lo AND c.at < least (b.dlo, b.hi) "
      "    AND c.endpoint_id IN (SELECT id FROM e) GROUP BY 1, 2) x "
      "  UNION ALL "
      "  SELECT b.k, x.* FROM b, LATERAL (SELECT CASE WHEN $4::bool THEN c.endpoint_id ELSE 0 END AS g, "
      "    monitor_bucket (c.duration_ms) AS bucket, count (*) AS n FROM calls c "
      "    WHERE c.dashboard_id = $1 AND c.at >= greatest (b.dhi, b.dlo) AND c.at < b.hi "
      "    AND c.endpoint_id IN (SELECT id FROM e) GROUP BY 1, 2) x), "
      "t AS (SELECT k, g, bucket, n, (sum (n) OVER w)::bigint - n AS below, "
      "             (sum (n) OVER (PARTITION BY k, g))::bigint AS total "
      "      FROM (SELECT k, g, bucket, sum (n)::bigint AS n FROM h GROUP BY 1, 2, 3) hs "
      "      WINDOW w AS (PARTITION BY k, g ORDER BY bucket)), "
      "r AS (SELECT DISTINCT t.k, t.g, x.rank FROM (SELECT DISTINCT k, g, total FROM t) t, "
      "      LATERAL (SELECT floor (p * (t.total - 1)::float8)::bigint AS rank "
      "               FROM unnest ($5::float8 []) AS p "
      "               UNION SELECT ceil (p * (t.total - 1)::float8)::bigint "
      "               FROM unnest ($5::float8 []) AS p) x), "
      "q AS (SELECT t.k, t.g, t.bucket, t.total, t.below, array_agg (r.rank - t.below) AS offs "
      "      FROM r JOIN t ON t.k = r.k AND t.g = r.g AND r.rank >= t.below "
      "        AND r.rank < t.below + t.n GROUP BY 1, 2, 3, 4, 5) "
      "SELECT q.k, q.g, q.total, q.below + x.rn, x.d FROM q JOIN b ON b.k = q.k, "
      "LATERAL (SELECT s.rn, s.d FROM (SELECT o.d, row_number () OVER (ORDER BY o.d) - 1 AS rn "
      "  FROM (SELECT c.d FROM e, LATERAL (SELECT duration_ms AS d FROM calls c "
      "          WHERE c.dashboard_id = $1 AND c.endpoint_id = e.id "
      "          AND monitor_bucket (c.duration_ms) = q.bucket AND c.at >= b.lo AND c.at < b.hi) c "
      "        WHERE NOT $4::bool OR e.id = q.g "
      "        ORDER BY c.d LIMIT (SELECT max (v) + 1 FROM unnest (q.offs) AS v)) o) s "
      "  WHERE s.rn = ANY (q.offs)) x "
      "ORDER BY 1, 2, 4", 5 },
    //  The enabled endpoints a boxplot lists, by name
    { "stat_box_endpoints",
      "SELECT id, name FROM endpoints WHERE dashboard_id = $1 AND enabled ORDER BY name", 1 },
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

//  Packs the answer's head: {statistic, value: ...} or {statistic,
//  timeslice, slices: [...]} (the value or the slices follow).
static void
s_pack_head (msgpack_packer *pk, const s_ask_t *ask)
{
    msgpack_pack_map (pk, ask->sliced ? 3 : 2);
    tl_mp_pack_kv (pk, "statistic", s_stats [ask->stat].name);
    if (ask->sliced) {
        tl_mp_pack_kv (pk, "timeslice", ask->unit);
        tl_mp_pack_str (pk, "slices");
        msgpack_pack_array (pk, (uint32_t) ask->n);
    }
    else
        tl_mp_pack_str (pk, "value");
}

//  Packs slice k's {start, value: (the value follows)} when sliced.
static void
s_pack_slice_head (msgpack_packer *pk, const s_ask_t *ask, long k)
{
    if (!ask->sliced)
        return;
    char start [TL_TIME_TEXT_SIZE];
    tl_time_format (ask->bounds [k - 1], start, sizeof start);
    msgpack_pack_map (pk, 2);
    tl_mp_pack_kv (pk, "start", start);
    tl_mp_pack_str (pk, "value");
}

//  One read statement under the statistics' own timeout and memory (the
//  settings last as long as its transaction). With `boxplot`, the
//  transaction is REPEATABLE READ and first reads the dashboard's enabled
//  endpoints (stat_box_endpoints: what a boxplot lists), so that both
//  statements see the same snapshot.
typedef struct {
    const char *name;
    int nparams;
    const char *const *values;
    bool boxplot;
    PGresult *res;
    PGresult *endpoints;
} s_read_t;

static int
s_read_tx (tl_db_t *db, void *arg)
{
    s_read_t *read = (s_read_t *) arg;
    const char *settings [] = { AN_STATS_TIMEOUT_MS, AN_STATS_WORK_MEM };
    int err = 0;
    PQclear (read->res);
    PQclear (read->endpoints);
    read->res = read->endpoints = NULL;
    PGresult *res = read->boxplot
                  ? tl_db_query (db, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", 0, NULL,
                                 &err)
                  : PQmakeEmptyPGresult (NULL, PGRES_COMMAND_OK);
    if (!res)
        return err ? err : TL_ENOMEM;
    PQclear (res);
    res = tl_db_exec (db, "stat_settings", 2, settings, &err);
    PQclear (res);
    if (res && read->boxplot) {
        read->endpoints = tl_db_exec (db, "stat_box_endpoints", 1, read->values, &err);
        res = read->endpoints;
    }
    read->res = res ? tl_db_exec (db, read->name, read->nparams, read->values, &err) : NULL;
    return read->res ? 0 : err;
}

//  Runs statement `name` that way (`values [0]` the dashboard). Returns
//  its result (the caller's) or NULL once it has answered the error;
//  with `endpoints` (a boxplot), sets *endpoints (the caller's too).
static PGresult *
s_read (tl_call_t *call, const char *name, int nparams, const char *const *values,
        PGresult **endpoints)
{
    s_read_t read = { .name = name, .nparams = nparams, .values = values,
                      .boxplot = endpoints != NULL };
    int rc = tl_db_tx (tl_call_db (call), s_read_tx, &read);
    if (rc) {
        PQclear (read.res);
        PQclear (read.endpoints);
        if (rc == TL_ENOMEM)
            tl_call_error (call, 503, "memory", "out of memory");
        else
            tl_call_db_error (call, rc);
        return NULL;
    }
    if (endpoints)
        *endpoints = read.endpoints;
    return read.res;
}

//  Whether the counted endpoints' calls of the range are no more than
//  the others' (stat_visitors_direct), so that their own rows are the
//  fewer to read: 1, 0, or -1 once the database error is answered.
static int
s_visitors_direct (tl_call_t *call, const s_ask_t *ask)
{
    const char *values [] = { ask->id, ask->bounds_text, ask->endpoint };
    int err = 0;
    PGresult *res = tl_db_exec (tl_call_db (call), "stat_visitors_direct", 3, values, &err);
    if (!res) {
        tl_call_db_error (call, err);
        return -1;
    }
    int direct = strcmp (tl_db_value (res, 0, 0), "t") == 0;
    PQclear (res);
    return direct;
}

//  The value at fraction p of one group (a slice, or an endpoint of a
//  boxplot) from rows [first, last) of a stat_ranks result (k, g, n, rank,
//  duration), as percentile_cont computes it: the durations at ranks
//  floor and ceil of p (n - 1), linearly interpolated (the same double
//  arithmetic as PostgreSQL's float8_lerp, so the same bits). Returns 0,
//  or TL_EINVAL when a rank it needs is not among the rows (the statement
//  and this disagree on the ranks: a bug, never the data).
static int
s_rank_value (const PGresult *res, int first, int last, double p, double *value)
{
    int64_t n = strtoll (tl_db_value (res, first, 2), NULL, 10);
    double pos = p * (double) (n - 1);
    int64_t lo_rank = (int64_t) floor (pos), hi_rank = (int64_t) ceil (pos);
    const char *lo = NULL, *hi = NULL;
    for (int row = first; row < last; row++) {
        int64_t rank = strtoll (tl_db_value (res, row, 3), NULL, 10);
        if (rank == lo_rank)
            lo = tl_db_value (res, row, 4);
        if (rank == hi_rank)
            hi = tl_db_value (res, row, 4);
    }
    if (!lo || !hi)
        return TL_EINVAL;
    double lo_value = strtod (lo, NULL), hi_value = strtod (hi, NULL);
    *value = hi_rank > lo_rank ? lo_value + (hi_value - lo_value) * (pos - (double) lo_rank)
                               : lo_value;
    return 0;
}

//  The end of the group that starts at row `first` of a stat_ranks result
//  (the rows are ordered by k, g, rank).
static int
s_group_end (const PGresult *res, int first)
{
    int last = first + 1;
    while (last < PQntuples (res)
       &&  strcmp (tl_db_value (res, last, 0), tl_db_value (res, first, 0)) == 0
       &&  strcmp (tl_db_value (res, last, 1), tl_db_value (res, first, 1)) == 0)
        last++;
    return last;
}

//  Answers a percentile statistic (stat_ranks, one group a slice).
static void
s_answer_percentile (tl_call_t *call, s_ask_t *ask)
{
    char fractions [32];
    snprintf (fractions, sizeof fractions, "{%s}", s_stats [ask->stat].fraction);
    const char *values [] = { ask->id, ask->bounds_text, ask->endpoint, "false", fractions };
    PGresult *res = s_read (call, "stat_ranks", 5, values, NULL);
    if (!res)
        return;
    //  Each slice's value first (a slice without calls has none)
    double *value = (double *) calloc ((size_t) ask->n, sizeof (double));
    bool *has = (bool *) calloc ((size_t) ask->n, sizeof (bool));
    int rc = value && has ? 0 : TL_ENOMEM;
    for (int row = 0; rc == 0 && row < PQntuples (res); ) {
        int last = s_group_end (res, row);
        long k = atol (tl_db_value (res, row, 0));
        if (k < 1 || k > ask->n)
            rc = TL_EINVAL;
        else {
            rc = s_rank_value (res, row, last, strtod (s_stats [ask->stat].fraction, NULL),
                               &value [k - 1]);
            has [k - 1] = true;
        }
        row = last;
    }
    PQclear (res);
    if (rc == TL_ENOMEM)
        tl_call_error (call, 503, "memory", "out of memory");
    else
    if (rc)
        tl_call_error (call, 500, "internal", "the ranks of a percentile did not add up");
    else {
        msgpack_packer *pk = tl_call_reply (call, 200);
        s_pack_head (pk, ask);
        for (long k = 1; k <= ask->n; k++) {
            s_pack_slice_head (pk, ask, k);
            if (has [k - 1])
                msgpack_pack_double (pk, value [k - 1]);
            else
                msgpack_pack_nil (pk);
        }
    }
    free (value);
    free (has);
}

//  Runs the statistic's statement and answers.
static void
s_answer (tl_call_t *call, s_ask_t *ask)
{
    s_kind_t kind = s_stats [ask->stat].kind;
    char limit [16];
    snprintf (limit, sizeof limit, "%d", S_MAX_IPS);
    if (kind == S_PCT) {
        s_answer_percentile (call, ask);
        return;
    }
    const char *name = "stat_basic";
    const char *values [] = { ask->id, ask->bounds_text, ask->endpoint, limit };
    int nparams = kind == S_PER_IP ? 4 : 3;
    if (kind == S_UNIQUE || kind == S_PER_IP) {
        int direct = s_visitors_direct (call, ask);
        if (direct < 0)
            return;
        name = kind == S_UNIQUE ? (direct ? "stat_unique_direct" : "stat_unique_subtract")
                                : (direct ? "stat_per_ip_direct" : "stat_per_ip_subtract");
    }
    PGresult *res = s_read (call, name, nparams, values, NULL);
    if (!res)
        return;
    //  The row of each slice (none: -1), found once
    int *found = kind == S_PER_IP ? NULL : (int *) malloc ((size_t) ask->n * sizeof (int));
    if (kind != S_PER_IP && !found) {
        PQclear (res);
        tl_call_error (call, 503, "memory", "out of memory");
        return;
    }
    for (long k = 0; found && k < ask->n; k++)
        found [k] = -1;
    for (int r = 0; found && r < PQntuples (res); r++) {
        long k = atol (tl_db_value (res, r, 0));
        if (k >= 1 && k <= ask->n && found [k - 1] < 0)
            found [k - 1] = r;
    }
    msgpack_packer *pk = tl_call_reply (call, 200);
    s_pack_head (pk, ask);
    int row = 0;
    for (long k = 1; k <= ask->n; k++) {
        s_pack_slice_head (pk, ask, k);
        if (kind == S_PER_IP)
            s_pack_per_ip (pk, res, &row, k);
        else
            s_pack_value (pk, kind, res, found [k - 1]);
    }
    free (found);
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

//  A boxplot's group in a stat_ranks result: endpoint g's rows [first, last)
typedef struct {
    int64_t g;
    int first, last;
} s_box_group_t;

//  The group of endpoint `g` among `count` groups ordered by g, or NULL.
static const s_box_group_t *
s_box_group (const s_box_group_t *groups, size_t count, int64_t g)
{
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (groups [mid].g < g)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < count && groups [lo].g == g ? &groups [lo] : NULL;
}

//  The boxplot fractions: min and max are percentile_cont's 0 and 1
static const double s_box_fractions [] = { 0, 0.25, 0.5, 0.75, 1 };
static const char *const s_box_keys [] = { "min", "q1", "median", "q3", "max" };

//  GET /dashboards/{id}/boxplots: each enabled endpoint's count, min,
//  quartiles and max (stat_ranks grouped by endpoint, one slice)
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
    const char *values [] = { id, bounds, NULL, "true", "{0,0.25,0.5,0.75,1}" };
    PGresult *endpoints = NULL;
    PGresult *res = s_read (call, "stat_ranks", 5, values, &endpoints);
    if (!res)
        return;
    //  The groups, ordered by endpoint id as the rows are
    int rows = PQntuples (res);
    s_box_group_t *groups = (s_box_group_t *) malloc ((size_t) (rows ? rows : 1)
                                                      * sizeof (s_box_group_t));
    size_t count = 0;
    for (int row = 0; groups && row < rows; ) {
        int last = s_group_end (res, row);
        groups [count++] = (s_box_group_t) {
            .g = strtoll (tl_db_value (res, row, 1), NULL, 10), .first = row, .last = last };
        row = last;
    }
    //  Each endpoint's five values (none without calls), then the answer
    int listed = PQntuples (endpoints);
    double (*value) [5] = (double (*) [5]) malloc ((size_t) (listed ? listed : 1)
                                                   * sizeof *value);
    const s_box_group_t **of = (const s_box_group_t **) calloc ((size_t) (listed ? listed : 1),
                                                                sizeof *of);
    int rc = groups && value && of ? 0 : TL_ENOMEM;
    for (int row = 0; rc == 0 && row < listed; row++) {
        of [row] = s_box_group (groups, count, strtoll (tl_db_value (endpoints, row, 0), NULL, 10));
        for (size_t i = 0; rc == 0 && of [row] && i < 5; i++)
            rc = s_rank_value (res, of [row]->first, of [row]->last, s_box_fractions [i],
                               &value [row][i]);
    }
    if (rc == TL_ENOMEM)
        tl_call_error (call, 503, "memory", "out of memory");
    else
    if (rc)
        tl_call_error (call, 500, "internal", "the ranks of a boxplot did not add up");
    else {
        msgpack_packer *pk = tl_call_reply (call, 200);
        msgpack_pack_map (pk, 2);
        tl_mp_pack_str (pk, "items");
        msgpack_pack_array (pk, (uint32_t) listed);
        for (int row = 0; row < listed; row++) {
            msgpack_pack_map (pk, 7);
            tl_mp_pack_kv (pk, "endpoint", tl_db_value (endpoints, row, 1));
            tl_mp_pack_str (pk, "count");
            msgpack_pack_int64 (pk, of [row] ? strtoll (tl_db_value (res, of [row]->first, 2),
                                                        NULL, 10) : 0);
            for (size_t i = 0; i < 5; i++) {
                tl_mp_pack_str (pk, s_box_keys [i]);
                if (of [row])
                    msgpack_pack_double (pk, value [row][i]);
                else
                    msgpack_pack_nil (pk);
            }
        }
        tl_mp_pack_str (pk, "next_cursor");
        msgpack_pack_nil (pk);
    }
    free (value);
    free (of);
    free (groups);
    PQclear (res);
    PQclear (endpoints);
}

int
analytics_stats_register (tl_service_t *svc)
{
    int rc = tl_service_on (svc, "dashboards.statistics", s_statistics);
    rc = rc ? rc : tl_service_on (svc, "dashboards.boxplots", s_boxplots);
    return rc;
}
