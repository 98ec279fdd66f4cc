//  tracker_stats.c — what a tracker's logs add up to: stats by the caller's
//  local days, the chart (PNG, SVG) and a mood tracker's year in pixels
//  (JSON, PNG). Every figure is computed by PostgreSQL (aggregates, the
//  median by percentile_cont, days by `at AT TIME ZONE zone`), so that a
//  tracker of 100,000 logs never travels into C; only a line chart's
//  points do, and past TRK_CHART_MAX_POINTS they become per-day means.
//  The builders (tracker_stats_pack, tracker_chart_build,
//  tracker_board_build) are shared with the monthly reports.
#include "tracker_service.h"
#include "trk_limits.h"
#include "tl_error.h"
#include "tl_log.h"
#include "tl_mp.h"
#include "tl_time.h"
#include "trk_board.h"
#include "trk_chart.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  The logs of one tracker in a range: $1 tracker, $2 owner, $3 and $4 the
//  bounds in ms since the epoch (tl_time_sql_ms), both inclusive; $5 the
//  tracker's type, whose rule every row must fit (others are skipped).
#define S_RANGE_WHERE \
    "tracker_id = $1 AND owner = $2 " \
    "AND at >= to_timestamp ($3::float8 / 1000) AND at <= to_timestamp ($4::float8 / 1000) " \
    "AND " TRACKER_VALUE_FITS ("$5")

static const tl_db_statement_t s_statements [] = {
    //  Numbers: the whole range (grouping 1) first, then each local day of
    //  zone $6 that has logs, in date order. One statement, one snapshot.
    { "stats_numbers",
      "SELECT grouping (day), to_char (day, 'YYYY-MM-DD'), count (num), min (num), max (num), "
      "       avg (num), percentile_cont (0.5) WITHIN GROUP (ORDER BY num) "
      "FROM (SELECT (at AT TIME ZONE $6)::date AS day, num FROM logs "
      "      WHERE " S_RANGE_WHERE ") AS l "
      "GROUP BY GROUPING SETS ((), (day)) "
      "ORDER BY grouping (day) DESC, day", 6 },
    { "stats_flags",
      "SELECT count (flag), count (*) FILTER (WHERE flag), count (*) FILTER (WHERE NOT flag) "
      "FROM logs WHERE " S_RANGE_WHERE, 5 },
    //  Choices, and moods as their digit
    { "stats_counts",
      "SELECT coalesce (choice, round (num)::int::text), count (*) "
      "FROM logs WHERE " S_RANGE_WHERE " GROUP BY 1 ORDER BY 1", 5 },
    //  A line chart: how many points, each log as (local wall time in ms,
    //  value) or, past $7 of them, each local day's mean at its midnight.
    //  $6 the zone.
    { "chart_count",
      "SELECT count (num) FROM logs WHERE " S_RANGE_WHERE, 5 },
    { "chart_points",
      "SELECT round (extract (epoch FROM at AT TIME ZONE $6) * 1000)::int8, num "
      "FROM logs WHERE " S_RANGE_WHERE " "
      "ORDER BY at, id LIMIT $7::int8", 7 },
    { "chart_days",
      "SELECT round (extract (epoch FROM day::timestamp) * 1000)::int8, avg (num) "
      "FROM (SELECT (at AT TIME ZONE $6)::date AS day, num FROM logs "
      "      WHERE " S_RANGE_WHERE ") AS l "
      "GROUP BY day ORDER BY day LIMIT $7::int8", 7 },
    //  The bounds as local wall times in ms; NULL for an infinite one
    { "chart_bounds",
      "SELECT CASE WHEN isfinite (f) THEN round (extract (epoch FROM f AT TIME ZONE $3) * 1000)::int8 END, "
      "       CASE WHEN isfinite (t) THEN round (extract (epoch FROM t AT TIME ZONE $3) * 1000)::int8 END "
      "FROM (SELECT to_timestamp ($1::float8 / 1000) AS f, to_timestamp ($2::float8 / 1000) AS t) AS b", 3 },
    //  A mood board: the first $5 moods of each local day of year $4 in
    //  zone $3, in the order logged (rows that are no mood skipped)
    { "board_moods",
      "SELECT extract (month FROM day)::int, extract (day FROM day)::int, round (num)::int "
      "FROM (SELECT (at AT TIME ZONE $3)::date AS day, num, "
      "             row_number () OVER (PARTITION BY (at AT TIME ZONE $3)::date "
      "                                 ORDER BY at, id) AS n "
      "      FROM logs WHERE tracker_id = $1 AND owner = $2 AND " TRACKER_VALUE_FITS ("'mood'") " "
      "       AND at >= make_date ($4::int, 1, 1)::timestamp AT TIME ZONE $3 "
      "       AND at < make_date ($4::int + 1, 1, 1)::timestamp AT TIME ZONE $3) AS l "
      "WHERE n <= $5::int ORDER BY day, n", 5 },
    { "board_year",
      "SELECT extract (year FROM now () AT TIME ZONE $1)::int", 1 },
};

int
tracker_stats_prepare (tl_db_t *db)
{
    return tl_db_prepare_all (db, s_statements, sizeof s_statements / sizeof s_statements [0]);
}

//  Runs range statement `name`: $1..$5 the tracker, its owner, the bounds
//  and its type, then `nextra` more parameters. Returns the result (the
//  caller's) or NULL with *err.
static PGresult *
s_exec_range (tl_db_t *db, const char *name, const tracker_t *tracker,
              int64_t from_ms, int64_t to_ms, const char *const *extra, int nextra, int *err)
{
    char from [32], to [32];
    tl_time_sql_ms (from_ms, from);
    tl_time_sql_ms (to_ms, to);
    const char *values [7] = { tracker->id, tracker->owner, from, to,
                               trk_type_name (tracker->type), NULL, NULL };
    assert (nextra >= 0 && nextra <= 2);
    for (int i = 0; i < nextra; i++)
        values [5 + i] = extra [i];
    return tl_db_exec (db, name, 5 + nextra, values, err);
}

//  Packs a numeric column: nil for NULL, an int when the value is integral
//  (as log values are), else a float64.
static void
s_pack_number (msgpack_packer *pk, const char *text)
{
    if (!text) {
        msgpack_pack_nil (pk);
        return;
    }
    double value = strtod (text, NULL);
    if (value == floor (value) && fabs (value) < 9007199254740992.0)
        msgpack_pack_int64 (pk, (int64_t) value);
    else
        msgpack_pack_double (pk, value);
}

//  ---------------------------------------------------------------------
//  Counts of choices and moods

//  One counted name: a choice of the tracker (or one its logs still have
//  after the choices changed), or a mood's name.
typedef struct {
    const char *name;               //  borrowed from the tracker, the result or static
    long count;
} s_count_t;

typedef struct {
    s_count_t *items;               //  the tracker's order, then any other logged name
    size_t size;
    long total;
    PGresult *res;
} s_counts_t;

static void
s_counts_clear (s_counts_t *counts)
{
    free (counts->items);
    PQclear (counts->res);
    memset (counts, 0, sizeof *counts);
}

//  Counts the logs of a multiple_choice or mood tracker in the range by
//  name: every choice (mood) appears, unused ones with 0, in the tracker's
//  order (moods 1..5). Returns 0 or a database code / TL_ENOMEM; clear
//  with s_counts_clear either way.
static int
s_counts_read (tl_db_t *db, const tracker_t *tracker, int64_t from_ms, int64_t to_ms,
               s_counts_t *counts)
{
    memset (counts, 0, sizeof *counts);
    int err = 0;
    counts->res = s_exec_range (db, "stats_counts", tracker, from_ms, to_ms, NULL, 0, &err);
    if (!counts->res)
        return err;
    bool mood = tracker->type == TRK_MOOD;
    size_t known = mood ? 5 : tracker->nchoices;
    int rows = PQntuples (counts->res);
    counts->items = (s_count_t *) calloc (known + (size_t) rows + 1, sizeof (s_count_t));
    if (!counts->items)
        return TL_ENOMEM;
    for (size_t i = 0; i < known; i++)
        counts->items [i].name = mood ? trk_mood_name ((int) i + 1) : tracker->choices [i];
    counts->size = known;
    for (int row = 0; row < rows; row++) {
        const char *name = tl_db_value (counts->res, row, 0);
        long count = atol (tl_db_value (counts->res, row, 1));
        if (mood && trk_mood_name (atoi (name)))
            name = trk_mood_name (atoi (name));
        size_t i = 0;
        while (i < counts->size && strcmp (counts->items [i].name, name) != 0)
            i++;
        if (i == counts->size)
            counts->items [counts->size++].name = name;
        counts->items [i].count += count;
        counts->total += count;
    }
    return 0;
}

//  Packs {count, counts, most_used, least_used}: ties go to the first in
//  order; both null without logs.
static void
s_counts_pack (const s_counts_t *counts, msgpack_packer *pk)
{
    size_t most = 0, least = 0;
    for (size_t i = 1; i < counts->size; i++) {
        if (counts->items [i].count > counts->items [most].count)
            most = i;
        if (counts->items [i].count < counts->items [least].count)
            least = i;
    }
    msgpack_pack_map (pk, 4);
    tl_mp_pack_str (pk, "count");
    msgpack_pack_int64 (pk, counts->total);
    tl_mp_pack_str (pk, "counts");
    msgpack_pack_map (pk, counts->size);
    for (size_t i = 0; i < counts->size; i++) {
        tl_mp_pack_str (pk, counts->items [i].name);
        msgpack_pack_int64 (pk, counts->items [i].count);
    }
    bool any = counts->total > 0 && counts->size > 0;
    tl_mp_pack_kv (pk, "most_used", any ? counts->items [most].name : NULL);
    tl_mp_pack_kv (pk, "least_used", any ? counts->items [least].name : NULL);
}

//  ---------------------------------------------------------------------
//  Stats

//  {count, min, max, mean, median, series: [{date, count, min, max, mean}]}
static int
s_numbers_pack (tl_db_t *db, const tracker_t *tracker, const char *zone,
                int64_t from_ms, int64_t to_ms, msgpack_packer *pk)
{
    int err = 0;
    PGresult *res = s_exec_range (db, "stats_numbers", tracker, from_ms, to_ms, &zone, 1, &err);
    if (!res)
        return err;
    int rows = PQntuples (res);
    if (rows < 1 || strcmp (tl_db_value (res, 0, 0), "1") != 0) {
        PQclear (res);
        return TL_EDB;                  //  the whole range's row is always first
    }
    msgpack_pack_map (pk, 6);
    tl_mp_pack_str (pk, "count");
    msgpack_pack_int64 (pk, atol (tl_db_value (res, 0, 2)));
    static const char *names [] = { "min", "max", "mean", "median" };
    for (int i = 0; i < 4; i++) {
        tl_mp_pack_str (pk, names [i]);
        s_pack_number (pk, tl_db_value (res, 0, 3 + i));
    }
    tl_mp_pack_str (pk, "series");
    msgpack_pack_array (pk, (size_t) rows - 1);
    for (int row = 1; row < rows; row++) {
        msgpack_pack_map (pk, 5);
        tl_mp_pack_kv (pk, "date", tl_db_value (res, row, 1));
        tl_mp_pack_str (pk, "count");
        msgpack_pack_int64 (pk, atol (tl_db_value (res, row, 2)));
        for (int i = 0; i < 3; i++) {
            tl_mp_pack_str (pk, names [i]);
            s_pack_number (pk, tl_db_value (res, row, 3 + i));
        }
    }
    PQclear (res);
    return 0;
}

//  {count, true_count, false_count}
static int
s_flags_pack (tl_db_t *db, const tracker_t *tracker, int64_t from_ms, int64_t to_ms,
              msgpack_packer *pk)
{
    int err = 0;
    PGresult *res = s_exec_range (db, "stats_flags", tracker, from_ms, to_ms, NULL, 0, &err);
    if (!res)
        return err;
    static const char *names [] = { "count", "true_count", "false_count" };
    msgpack_pack_map (pk, 3);
    for (int i = 0; i < 3; i++) {
        tl_mp_pack_str (pk, names [i]);
        msgpack_pack_int64 (pk, atol (tl_db_value (res, 0, i) ? tl_db_value (res, 0, i) : "0"));
    }
    PQclear (res);
    return 0;
}

int
tracker_stats_pack (tl_db_t *db, const tracker_t *tracker, const char *zone,
                    int64_t from_ms, int64_t to_ms, msgpack_packer *pk)
{
    int rc = tracker_stats_prepare (db);
    if (rc)
        return rc;
    if (tracker->type == TRK_BOOLEAN)
        return s_flags_pack (db, tracker, from_ms, to_ms, pk);
    if (tracker->type == TRK_MULTIPLE_CHOICE || tracker->type == TRK_MOOD) {
        s_counts_t counts;
        rc = s_counts_read (db, tracker, from_ms, to_ms, &counts);
        if (rc == 0)
            s_counts_pack (&counts, pk);
        s_counts_clear (&counts);
        return rc;
    }
    return s_numbers_pack (db, tracker, zone, from_ms, to_ms, pk);
}

//  ---------------------------------------------------------------------
//  Charts

//  Adds the line chart's points: each log at its local wall time, or each
//  local day's mean when there are more than TRK_CHART_MAX_POINTS logs.
//  Fixes the x axis to the range's local bounds, where the range has
//  them, widened to the points. Returns 0 or a code.
static int
s_line_fill (tl_db_t *db, const tracker_t *tracker, const char *zone,
             int64_t from_ms, int64_t to_ms, trk_chart_t *chart)
{
    int err = 0;
    PGresult *res = s_exec_range (db, "chart_count", tracker, from_ms, to_ms, NULL, 0, &err);
    if (!res)
        return err;
    bool daily = tl_db_parse_int64 (tl_db_value (res, 0, 0)) > TRK_CHART_MAX_POINTS;
    PQclear (res);
    char limit [24];
    snprintf (limit, sizeof limit, "%d", TRK_CHART_MAX_POINTS);
    const char *extra [] = { zone, limit };
    res = s_exec_range (db, daily ? "chart_days" : "chart_points", tracker, from_ms, to_ms,
                        extra, 2, &err);
    if (!res)
        return err;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    int rc = 0;
    for (int row = 0; rc == 0 && row < PQntuples (res); row++) {
        int64_t t = tl_db_parse_int64 (tl_db_value (res, row, 0));
        if (t < TRK_CHART_MIN_TIME_MS || t > TRK_CHART_MAX_TIME_MS)
            continue;                   //  a date the chart cannot show
        rc = trk_chart_add_point (chart, t, strtod (tl_db_value (res, row, 1), NULL));
        lo = t < lo ? t : lo;
        hi = t > hi ? t : hi;
    }
    PQclear (res);
    if (rc)
        return rc;

    //  The axis: the range's bounds in local time, else the points' span
    char from [32], to [32];
    tl_time_sql_ms (from_ms, from);
    tl_time_sql_ms (to_ms, to);
    const char *values [] = { from, to, zone };
    res = tl_db_exec (db, "chart_bounds", 3, values, &err);
    if (!res)
        return err;
    if (tl_db_value (res, 0, 0))
        lo = tl_db_parse_int64 (tl_db_value (res, 0, 0)) < lo ? tl_db_parse_int64 (tl_db_value (res, 0, 0)) : lo;
    if (tl_db_value (res, 0, 1))
        hi = tl_db_parse_int64 (tl_db_value (res, 0, 1)) > hi ? tl_db_parse_int64 (tl_db_value (res, 0, 1)) : hi;
    PQclear (res);
    lo = lo < TRK_CHART_MIN_TIME_MS ? TRK_CHART_MIN_TIME_MS : lo;
    hi = hi > TRK_CHART_MAX_TIME_MS ? TRK_CHART_MAX_TIME_MS : hi;
    if (lo < hi)
        trk_chart_set_range (chart, lo, hi);        //  else the chart spans its points
    return 0;
}

//  Adds the bar chart's bars: true and false, each choice in order, or the
//  five moods in their colours. Returns 0 or a code.
static int
s_bars_fill (tl_db_t *db, const tracker_t *tracker, int64_t from_ms, int64_t to_ms,
             trk_chart_t *chart)
{
    int rc = 0;
    if (tracker->type == TRK_BOOLEAN) {
        PGresult *res = s_exec_range (db, "stats_flags", tracker, from_ms, to_ms, NULL, 0, &rc);
        if (!res)
            return rc;
        rc = trk_chart_add_bar (chart, "true", atof (tl_db_value (res, 0, 1)), 0);
        if (rc == 0)
            rc = trk_chart_add_bar (chart, "false", atof (tl_db_value (res, 0, 2)), 0);
        PQclear (res);
        return rc;
    }
    s_counts_t counts;
    rc = s_counts_read (db, tracker, from_ms, to_ms, &counts);
    for (size_t i = 0; rc == 0 && i < counts.size && i < TRK_CHART_MAX_BARS; i++) {
        uint32_t rgb = tracker->type == TRK_MOOD ? trk_board_mood_rgb ((int) i + 1) : 0;
        rc = trk_chart_add_bar (chart, counts.items [i].name, (double) counts.items [i].count, rgb);
    }
    s_counts_clear (&counts);
    return rc;
}

int
tracker_chart_build (tl_db_t *db, const tracker_t *tracker, const char *zone,
                     int64_t from_ms, int64_t to_ms, trk_chart_t **chart_p)
{
    *chart_p = NULL;
    int rc = tracker_stats_prepare (db);
    if (rc)
        return rc;
    bool line = tracker->type == TRK_NUMERICAL || tracker->type == TRK_DURATION;
    trk_chart_t *chart = trk_chart_new (line ? TRK_CHART_LINE : TRK_CHART_BAR, tracker->name);
    if (!chart)
        return TL_ENOMEM;
    rc = trk_chart_set_unit (chart, tracker->unit [0] ? tracker->unit : NULL);
    trk_chart_set_duration (chart, tracker->type == TRK_DURATION);
    if (rc == 0)
        rc = line ? s_line_fill (db, tracker, zone, from_ms, to_ms, chart)
                  : s_bars_fill (db, tracker, from_ms, to_ms, chart);
    if (rc)
        trk_chart_destroy (&chart);
    *chart_p = chart;
    return rc;
}

//  ---------------------------------------------------------------------
//  Mood boards

//  A year of moods: moods [month - 1][day - 1], `count` of them each.
typedef struct {
    int moods [12][31][TRK_BOARD_MAX_MOODS_PER_DAY];
    int count [12][31];
} s_year_t;

//  Reads the moods of each local day of `year` in `zone`, the first
//  TRK_BOARD_MAX_MOODS_PER_DAY of a day in the order logged. Returns 0 or
//  a database code.
static int
s_year_read (tl_db_t *db, const tracker_t *tracker, const char *zone, int year, s_year_t *days)
{
    memset (days, 0, sizeof *days);
    char year_text [16], max [16];
    snprintf (year_text, sizeof year_text, "%d", year);
    snprintf (max, sizeof max, "%d", TRK_BOARD_MAX_MOODS_PER_DAY);
    const char *values [] = { tracker->id, tracker->owner, zone, year_text, max };
    int err = 0;
    PGresult *res = tl_db_exec (db, "board_moods", 5, values, &err);
    if (!res)
        return err;
    for (int row = 0; row < PQntuples (res); row++) {
        int month = atoi (tl_db_value (res, row, 0));
        int day = atoi (tl_db_value (res, row, 1));
        int mood = atoi (tl_db_value (res, row, 2));
        if (month < 1 || month > 12 || day < 1 || day > 31 || !trk_mood_name (mood))
            continue;                   //  a row that breaks the schema's rules
        int *count = &days->count [month - 1][day - 1];
        if (*count < TRK_BOARD_MAX_MOODS_PER_DAY)
            days->moods [month - 1][day - 1][(*count)++] = mood;
    }
    PQclear (res);
    return 0;
}

int
tracker_board_build (tl_db_t *db, const tracker_t *tracker, const char *zone,
                     int year, trk_board_t **board_p)
{
    *board_p = NULL;
    if (tracker->type != TRK_MOOD || year < TRK_BOARD_MIN_YEAR || year > TRK_BOARD_MAX_YEAR)
        return TL_EINVAL;
    int rc = tracker_stats_prepare (db);
    if (rc)
        return rc;
    s_year_t *days = (s_year_t *) malloc (sizeof *days);
    if (!days)
        return TL_ENOMEM;
    rc = s_year_read (db, tracker, zone, year, days);
    trk_board_t *board = rc ? NULL : trk_board_new (year, tracker->name);
    if (rc == 0 && !board)
        rc = TL_ENOMEM;
    for (int month = 1; rc == 0 && month <= 12; month++)
        for (int day = 1; rc == 0 && day <= 31; day++)
            if (days->count [month - 1][day - 1])
                rc = trk_board_set_day (board, month, day, days->moods [month - 1][day - 1],
                                        days->count [month - 1][day - 1]);
    free (days);
    if (rc)
        trk_board_destroy (&board);
    *board_p = board;
    return rc;
}

//  Returns the number of days of `month` (1..12) in `year`.
static int
s_month_days (int year, int month)
{
    static const int days [] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days [month - 1];
}

//  ---------------------------------------------------------------------
//  Handlers

//  Answers a failed build: the database's errors as tracker_db_error,
//  anything else (memory, drawing) 500.
static void
s_fail (tl_call_t *call, int rc, const char *what)
{
    if (rc == TL_ETIMEDOUT || rc == TL_EUNAVAIL || rc == TL_EDB || rc == TL_ERETRY)
        tl_call_db_error (call, rc);
    else {
        tl_log (TL_LOG_ERROR, tl_call_trace (call), "%s: %s", what, tl_strerror (rc));
        tl_call_error (call, 500, "internal", "the %s could not be made", what);
    }
}

//  Replies 200 with `size` bytes of `content_type` as one bin (the gateway
//  sends it as the body, with that type and an ETag).
static void
s_reply_bytes (tl_call_t *call, const char *content_type, const unsigned char *data, size_t size)
{
    tl_call_header (call, "Content-Type", content_type);
    msgpack_packer *pk = tl_call_reply (call, 200);
    msgpack_pack_bin (pk, size);
    msgpack_pack_bin_body (pk, data, size);
}

//  Reads the range, the caller's tracker and zone for a stats or chart
//  call. Returns false once it has answered (400, 404, 503, 504); else
//  the tracker is the caller's to clear.
static bool
s_begin (tl_call_t *call, tracker_t *tracker, char zone [TL_MAX_TIMEZONE_LEN + 1],
         int64_t *from_ms, int64_t *to_ms)
{
    memset (tracker, 0, sizeof *tracker);
    if (!tl_call_range (call, from_ms, to_ms)
    ||  !tracker_load (call, tl_call_param (call, "id"), false, tracker))
        return false;
    snprintf (zone, TL_MAX_TIMEZONE_LEN + 1, "%s", tracker_caller_zone (call));
    return true;
}

//  GET /trackers/{id}/stats?from=&to=
static void
s_stats_get (tl_call_t *call)
{
    tracker_t tracker;
    char zone [TL_MAX_TIMEZONE_LEN + 1];
    int64_t from_ms, to_ms;
    if (!s_begin (call, &tracker, zone, &from_ms, &to_ms))
        return;
    int rc = tracker_stats_pack (tl_call_db (call), &tracker, zone, from_ms, to_ms,
                                 tl_call_reply (call, 200));
    if (rc)
        s_fail (call, rc, "stats");
    tracker_clear (&tracker);
}

//  GET /trackers/{id}/chart.png and chart.svg?from=&to=
static void
s_chart (tl_call_t *call, bool svg)
{
    tracker_t tracker;
    char zone [TL_MAX_TIMEZONE_LEN + 1];
    int64_t from_ms, to_ms;
    if (!s_begin (call, &tracker, zone, &from_ms, &to_ms))
        return;
    trk_chart_t *chart = NULL;
    unsigned char *data = NULL;
    size_t size = 0;
    int rc = tracker_chart_build (tl_call_db (call), &tracker, zone, from_ms, to_ms, &chart);
    if (rc == 0)
        rc = svg ? trk_chart_render_svg (chart, &data, &size)
                 : trk_chart_render_png (chart, &data, &size);
    if (rc == 0)
        s_reply_bytes (call, svg ? "image/svg+xml" : "image/png", data, size);
    else
        s_fail (call, rc, "chart");
    free (data);
    trk_chart_destroy (&chart);
    tracker_clear (&tracker);
}

static void
s_chart_png (tl_call_t *call)
{
    s_chart (call, false);
}

static void
s_chart_svg (tl_call_t *call)
{
    s_chart (call, true);
}

//  Reads the caller's mood tracker, zone and ?year= (four digits within
//  TRK_BOARD_MIN_YEAR..MAX_YEAR; default the current year in the zone).
//  Returns false once it has answered (400, 404, 422, 503, 504); else the
//  tracker is the caller's to clear.
static bool
s_board_begin (tl_call_t *call, tracker_t *tracker, char zone [TL_MAX_TIMEZONE_LEN + 1],
               int *year)
{
    memset (tracker, 0, sizeof *tracker);
    const char *text = tl_call_param (call, "year");
    *year = 0;
    if (text && *text) {
        bool digits = strlen (text) == 4;
        for (int i = 0; digits && i < 4; i++)
            digits = text [i] >= '0' && text [i] <= '9';
        *year = digits ? atoi (text) : 0;
        if (*year < TRK_BOARD_MIN_YEAR || *year > TRK_BOARD_MAX_YEAR) {
            tl_call_field_error (call, 400, "invalid", "year", "must be a year such as 2026");
            return false;
        }
    }
    if (!tracker_load (call, tl_call_param (call, "id"), false, tracker))
        return false;
    if (tracker->type != TRK_MOOD) {
        tl_call_error (call, 422, "not_a_mood_tracker", "only a mood tracker has a board");
        tracker_clear (tracker);
        return false;
    }
    snprintf (zone, TL_MAX_TIMEZONE_LEN + 1, "%s", tracker_caller_zone (call));
    if (*year == 0) {
        int err = 0;
        const char *values [] = { zone };
        PGresult *res = tl_db_exec (tl_call_db (call), "board_year", 1, values, &err);
        if (res) {
            *year = atoi (tl_db_value (res, 0, 0) ? tl_db_value (res, 0, 0) : "0");
            err = TL_EDB;
        }
        PQclear (res);
        if (*year < TRK_BOARD_MIN_YEAR || *year > TRK_BOARD_MAX_YEAR) {
            tl_call_db_error (call, err);
            tracker_clear (tracker);
            return false;
        }
    }
    return true;
}

//  GET /trackers/{id}/board?year=: {year, days: [{date, moods}]}, every
//  day of the year.
static void
s_board_get (tl_call_t *call)
{
    tracker_t tracker;
    char zone [TL_MAX_TIMEZONE_LEN + 1];
    int year;
    if (!s_board_begin (call, &tracker, zone, &year))
        return;
    s_year_t *days = (s_year_t *) malloc (sizeof *days);
    int rc = days ? s_year_read (tl_call_db (call), &tracker, zone, year, days) : TL_ENOMEM;
    if (rc == 0) {
        int total = 0;
        for (int month = 1; month <= 12; month++)
            total += s_month_days (year, month);
        msgpack_packer *pk = tl_call_reply (call, 200);
        msgpack_pack_map (pk, 2);
        tl_mp_pack_str (pk, "year");
        msgpack_pack_int (pk, year);
        tl_mp_pack_str (pk, "days");
        msgpack_pack_array (pk, (size_t) total);
        for (int month = 1; month <= 12; month++)
            for (int day = 1; day <= s_month_days (year, month); day++) {
                char date [40];                 //  room for any int, as the compiler sees it
                snprintf (date, sizeof date, "%04d-%02d-%02d", year, month, day);
                int count = days->count [month - 1][day - 1];
                msgpack_pack_map (pk, 2);
                tl_mp_pack_kv (pk, "date", date);
                tl_mp_pack_str (pk, "moods");
                msgpack_pack_array (pk, (size_t) count);
                for (int i = 0; i < count; i++)
                    msgpack_pack_int (pk, days->moods [month - 1][day - 1][i]);
            }
    }
    else
        s_fail (call, rc, "board");
    free (days);
    tracker_clear (&tracker);
}

//  GET /trackers/{id}/board.png?year=
static void
s_board_png (tl_call_t *call)
{
    tracker_t tracker;
    char zone [TL_MAX_TIMEZONE_LEN + 1];
    int year;
    if (!s_board_begin (call, &tracker, zone, &year))
        return;
    trk_board_t *board = NULL;
    unsigned char *data = NULL;
    size_t size = 0;
    int rc = tracker_board_build (tl_call_db (call), &tracker, zone, year, &board);
    if (rc == 0)
        rc = trk_board_render_png (board, &data, &size);
    if (rc == 0)
        s_reply_bytes (call, "image/png", data, size);
    else
        s_fail (call, rc, "board");
    free (data);
    trk_board_destroy (&board);
    tracker_clear (&tracker);
}

//  Expensive requests take one of the caller's slots (tracker_expensive).
static void
s_stats_get_slotted (tl_call_t *call)
{
    tracker_expensive (call, s_stats_get);
}

static void
s_chart_png_slotted (tl_call_t *call)
{
    tracker_expensive (call, s_chart_png);
}

static void
s_chart_svg_slotted (tl_call_t *call)
{
    tracker_expensive (call, s_chart_svg);
}

static void
s_board_png_slotted (tl_call_t *call)
{
    tracker_expensive (call, s_board_png);
}

int
tracker_stats_register (tl_service_t *svc)
{
    int rc = tl_service_on (svc, "stats.get", s_stats_get_slotted);
    rc = rc ? rc : tl_service_on (svc, "charts.png", s_chart_png_slotted);
    rc = rc ? rc : tl_service_on (svc, "charts.svg", s_chart_svg_slotted);
    rc = rc ? rc : tl_service_on (svc, "board.get", s_board_get);
    rc = rc ? rc : tl_service_on (svc, "board.png", s_board_png_slotted);
    return rc;
}
