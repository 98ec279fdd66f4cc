#!/usr/bin/env bash
#  analytics.sh BUILD_DIR — API monitoring's storage under load, beside
#  PostgreSQL itself in the same run on this machine (see bench/README.md,
#  "Analytics"):
#
#    (1)  ingest: calls.ingest batches of 5,000 calls sent over the mesh
#         (as gateways ship them, BENCH_INGEST_STREAMS at once), stored with
#         their month partitions, endpoints and hourly aggregates, against
#         (1') psql \copy of the same rows into a table of the calls' shape
#         (same index, no aggregates)
#    (2)  each of the twelve statistics over a dashboard of 10 million calls
#         (BENCH_CALLS), through the gateway: over whole days (counts and
#         sums from the hourly aggregates), over an unaligned range (from
#         the calls), and in daily slices (three of them also with one
#         endpoint picked, with one disabled and with half of them
#         disabled); against (2') the bare SQL of a
#         median over the same calls in psql (the floor of any exact
#         percentile)
#
#  One run. Everything on 127.0.0.1 with a private PostgreSQL, stopped on
#  exit. Environment (defaults): BENCH_CALLS=10000000 BENCH_INGEST=200000
#  BENCH_INGEST_STREAMS=4 BENCH_REPEAT=5 BENCH_WORKERS=8 BENCH_KEEP=0
#  BENCH_DATA= (a folder: the cluster is kept there between runs and the
#  10 million calls seeded once; the built-in dashboard the ingest fills is
#  emptied before each run) BENCH_STATS=1 (0: the ingest rows alone, e.g.
#  with an older build whose schema the seed does not fit) BENCH_SPREAD=0
#  (1: the visitors rows again over a second dashboard of as many calls,
#  each its own (day, endpoint, address): the address aggregates' worst
#  case; seeding it takes about four minutes more)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)

CALLS=${BENCH_CALLS:-10000000}
INGEST=${BENCH_INGEST:-200000}
STREAMS=${BENCH_INGEST_STREAMS:-4}
REPEAT=${BENCH_REPEAT:-5}
WORKERS=${BENCH_WORKERS:-8}
DATA=${BENCH_DATA:-}
STATS=${BENCH_STATS:-1}
SPREAD=${BENCH_SPREAD:-0}

say () { printf 'analytics: %s\n' "$*" >&2; }
die () { printf 'analytics: error: %s\n' "$*" >&2; exit 1; }

. "$root/bench/lib.sh"
bench_tools curl ss psql /usr/bin/python3

gateway_bin="$build/gateway/tally-gateway"
auth_bin="$build/services/auth/tally-auth"
analytics_bin="$build/services/analytics/tally-analytics"
bench_built "$gateway_bin" "$auth_bin" "$analytics_bin"

bench_begin tally-bench-analytics
trap cleanup EXIT
trap 'exit 130' INT TERM

#  --- PostgreSQL, gateway, auth, analytics --------------------------------
if [[ -n $DATA ]]; then
    #  The cluster lives in $DATA/pg; cleanup stops it through the link and
    #  removes only the link
    mkdir -p "$DATA/pg"
    chmod 755 "$DATA" "$DATA/pg"
    ln -s "$(cd "$DATA/pg" && pwd)" "$tmp/pg"
fi
bench_pg
bench_gateway "$gateway_bin" TALLY_RECORD_CALLS=0
for svc in auth analytics; do
    bin_var="${svc}_bin"
    DATABASE_URL="$database_url" TALLY_MESH="$mesh" TALLY_WORKERS="$WORKERS" \
    TALLY_INSTANCE="bench-$svc" TALLY_REQUIRE_VERIFICATION=false TALLY_RUN_JOBS=0 \
        "${!bin_var}" >"$tmp/$svc.log" 2>&1 &
    pids+=("$!")
done
analytics_pid=${pids[-1]}

user="bench$$"
for i in $(seq 100); do
    api POST /auth/register "{\"username\": \"$user\", \"email\": \"$user@example.com\", \"password\": \"correct horse battery\"}" >/dev/null && break
    sleep 0.2
done
login=$(api POST /auth/login "{\"login\": \"$user\", \"password\": \"correct horse battery\"}")
token=$(json_field token <<<"$login")
user_id=$(sed -n 's/.*"user":{[^}]*"id":"\([^"]*\)".*/\1/p' <<<"$login" | head -n 1)
[[ ${#token} == 43 && -n $user_id ]] || die "no token or user id"
for i in $(seq 100); do api GET /dashboards >/dev/null && break; sleep 0.2; done

#  (2) a dashboard of $CALLS calls over 120 days from 2031-01-01 (20
#  endpoints, 5,000 client addresses), written straight into the schema,
#  with their hourly and daily aggregates and duration histograms, as the
#  ingest would leave them (kept from an earlier run with BENCH_DATA).
#  seed_dashboard ID IP: call i (0..$CALLS-1) goes to endpoint i % 20 from
#  the address the SQL expression IP of i makes; the dashboard is the
#  bench user's, taken over when BENCH_DATA holds it already
seed_dashboard () {
    local id=$1 ip=$2 seeded
    seeded=$(psql "$database_url" -XAtq -c "SELECT coalesce (sum (calls), 0) FROM analytics.endpoints WHERE dashboard_id = '$id'")
    if [[ $seeded == "$CALLS" ]]; then
        say "reusing the $CALLS calls of $id seeded in $DATA"
        psql "$database_url" -Xq -v ON_ERROR_STOP=1 \
             -c "UPDATE analytics.dashboards SET owner = '$user_id' WHERE id = '$id'" \
             || die "could not take over the seeded dashboard"
        return
    fi
    [[ $seeded == 0 ]] || die "$DATA holds a dashboard of $seeded calls, not $CALLS"
    say "seeding $CALLS calls into $id"
    psql "$database_url" -Xq -v ON_ERROR_STOP=1 <<SQL || die "could not seed the calls"
SET search_path = analytics;
INSERT INTO dashboards (id, owner, name, url, token, state, fetched_to, backfilled)
VALUES ('$id', '$user_id', 'bench', 'http://bench.test/dashboard',
        'bench-token', 'ok', '2031-05-01', true);
INSERT INTO endpoints (dashboard_id, name)
SELECT '$id', 'endpoint_' || e FROM generate_series (0, 19) e;
SELECT calls_partition (d::date) FROM generate_series ('2031-01-01'::date, '2031-04-01', '1 month') d;
INSERT INTO calls (dashboard_id, endpoint_id, at, duration_ms, ip, version)
SELECT '$id',
       (SELECT min (id) FROM endpoints WHERE dashboard_id = '$id') + i % 20,
       timestamptz '2031-01-01 00:00:00+00' + (i::float8 / $CALLS) * interval '120 days',
       round ((-ln (1 - random ()) * 50 + (i % 7))::numeric, 3)::float8,
       $ip, '1.0'
FROM generate_series (0, $CALLS - 1) i;
INSERT INTO calls_hourly (dashboard_id, endpoint_id, hour, visits, total_ms, min_ms, max_ms)
SELECT dashboard_id, endpoint_id, date_trunc ('hour', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
       count (*), sum (duration_ms), min (duration_ms), max (duration_ms)
FROM calls WHERE dashboard_id = '$id' GROUP BY 1, 2, 3;
INSERT INTO calls_daily_ip (dashboard_id, day, ip, visits)
SELECT dashboard_id, (at AT TIME ZONE 'UTC')::date, ip, count (*)
FROM calls WHERE dashboard_id = '$id' GROUP BY 1, 2, 3;
INSERT INTO calls_daily_endpoint_ip (dashboard_id, endpoint_id, day, ip, visits)
SELECT dashboard_id, endpoint_id, (at AT TIME ZONE 'UTC')::date, ip, count (*)
FROM calls WHERE dashboard_id = '$id' GROUP BY 1, 2, 3, 4;
INSERT INTO calls_daily_hist (dashboard_id, day, endpoint_id, bucket, visits)
SELECT dashboard_id, (at AT TIME ZONE 'UTC')::date, endpoint_id, monitor_bucket (duration_ms),
       count (*)
FROM calls WHERE dashboard_id = '$id' GROUP BY 1, 2, 3, 4;
UPDATE endpoints e SET calls = c.n
FROM (SELECT endpoint_id, count (*) n FROM calls WHERE dashboard_id = '$id' GROUP BY 1) c
WHERE e.id = c.endpoint_id;
VACUUM ANALYZE calls;
VACUUM ANALYZE calls_hourly;
VACUUM ANALYZE calls_daily_ip;
VACUUM ANALYZE calls_daily_hist;
VACUUM ANALYZE calls_daily_endpoint_ip;
SQL
}
dash=11111111-1111-4111-8111-111111111111
#  BENCH_SPREAD=1: a second dashboard where every call is its own (day,
#  endpoint, address): 20 calls in a row from one address, one to each
#  endpoint, the addresses cycling every 100 000 calls (more than a day's)
spread=22222222-2222-4222-8222-222222222222
t0=$(date +%s)
if [[ $STATS != 1 ]]; then
    say "no statistics (BENCH_STATS=$STATS)"
else
    #  each address calls one endpoint (5,000 is a multiple of 20)
    seed_dashboard "$dash" "'10.0.' || (i % 5000) / 250 || '.' || i % 250"
    [[ $SPREAD != 1 ]] \
        || seed_dashboard "$spread" "'10.0.' || ((i / 20) % 5000) / 250 || '.' || (i / 20) % 250"
fi
seeded_s=$(( $(date +%s) - t0 ))
say "seeded in ${seeded_s}s"

#  Milliseconds of one GET, or "504" past the statement's 25 s (fails the
#  run on any other non-200)
get_ms () {
    local out code
    out=$(curl -s -o "$tmp/stat.out" -w '%{http_code} %{time_total}' \
          -H "Authorization: Bearer $token" "$base/api/v1/dashboards/$dash/$1")
    code=${out%% *}
    if [[ $code == 504 ]]; then echo 504; return; fi
    [[ $code == 200 ]] || die "GET $1 answered $code: $(head -c 300 "$tmp/stat.out")"
    awk -v t="${out#* }" 'BEGIN { printf "%.1f", t * 1000 }'
}
#  Median and max of $REPEAT runs, after one warm-up ("504" when any timed out)
measure () {
    local i all=()
    get_ms "$1" >/dev/null
    for i in $(seq "$REPEAT"); do all+=("$(get_ms "$1")"); done
    if [[ " ${all[*]} " == *" 504 "* ]]; then printf '504 504'; return; fi
    printf '%s\n' "${all[@]}" | sort -n | awk '{ v[NR] = $1 } END { printf "%s %s", v[int((NR + 1) / 2)], v[NR] }'
}

STAT_NAMES="total_visits total_execution_time average_execution_time visits_per_ip unique_visitors
fastest_measured_execution_time fastest_quartile_execution_time median_execution_time
slowest_quartile_execution_time ninetieth_percentile_execution_time
ninety-ninth_percentile_execution_time slowest_measured_execution_time"
#  measure_three LABEL EXTRA STATS...: each statistic over the 120 days,
#  the unaligned range and in daily slices (query EXTRA appended), each a
#  row "| stat LABEL | ... |" of the report's table, in STAT_ROWS
STAT_ROWS=()
measure_three () {
    local label=$1 extra=$2 stat whole part sliced
    shift 2
    for stat in "$@"; do
        say "statistic $stat$label"
        whole=$(measure "statistics?statistic=$stat&start_date=2031-01-01&end_date=2031-05-01$extra")
        part=$(measure "statistics?statistic=$stat&start_date=2031-01-10T07:13:00Z&end_date=2031-03-20T16:41:00Z$extra")
        sliced=$(measure "statistics?statistic=$stat&start_date=2031-01-01&end_date=2031-05-01&timeslice=day&timeslice_is_static=true$extra")
        STAT_ROWS+=("| $stat$label | ${whole// / / } | ${part// / / } | ${sliced// / / } |")
    done
}
#  enable_endpoints true|false N...: endpoint_N... enabled or disabled
enable_endpoints () {
    local e list="" enabled=$1
    shift
    for e in "$@"; do list+="${list:+, }{\"name\": \"endpoint_$e\", \"enabled\": $enabled}"; done
    api PATCH "/dashboards/$dash" "{\"endpoints\": [$list]}" >/dev/null
}
#  measure_filtered SUFFIX STATS...: the statistics with one endpoint
#  picked, with one disabled, and with half of them disabled (the
#  addresses' worst case: as many counted calls as others, whichever way
#  they are read), SUFFIX ending each row's label
measure_filtered () {
    local suffix=$1
    shift
    measure_three ", endpoint=endpoint_3$suffix" "&endpoint=endpoint_3" "$@"
    enable_endpoints false 0
    measure_three ", endpoint_0 disabled$suffix" "" "$@"
    enable_endpoints false $(seq 0 9)
    measure_three ", endpoint_0..9 disabled$suffix" "" "$@"
    enable_endpoints true $(seq 0 9)
}
if [[ $STATS == 1 ]]; then
    measure_three "" "" $STAT_NAMES
    measure_filtered "" unique_visitors visits_per_ip median_execution_time
    #  The visitors rows again over the spread dashboard (BENCH_SPREAD=1)
    if [[ $SPREAD == 1 ]]; then
        main_dash=$dash
        dash=$spread
        spread_label=", spread (every call its own day, endpoint and address)"
        measure_three "$spread_label" "" unique_visitors visits_per_ip
        measure_filtered "$spread_label" unique_visitors visits_per_ip
        dash=$main_dash
    fi
fi
BOX="- -"
REF="- -"
[[ $STATS == 1 ]] && BOX=$(measure "boxplots?start_date=2031-01-01&end_date=2031-05-01")
#  (2') the bare median in psql, same calls, same work_mem
ref_ms=()
for i in $(seq $(( REPEAT + 1 ))); do
    [[ $STATS == 1 ]] || break
    out=$(psql "$database_url" -XqAt -c '\timing on' -c "SET work_mem = '64MB'; SELECT percentile_cont (0.5) WITHIN GROUP (ORDER BY duration_ms) FROM analytics.calls WHERE dashboard_id = '$dash' AND at >= '2031-01-01' AND at < '2031-05-01'" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')
    ref_ms+=("$out")
done
[[ $STATS == 1 ]] && REF=$(printf '%s\n' "${ref_ms[@]:1}" | sort -n | awk '{ v[NR] = $1 } END { printf "%.1f %.1f", v[int((NR + 1) / 2)], v[NR] }')

#  (1) ingest through the mesh, then (1') COPY of the same rows (into an
#  empty built-in dashboard and table, also when the cluster is kept)
psql "$database_url" -Xq -v ON_ERROR_STOP=1 \
     -c "DROP TABLE IF EXISTS public.copy_target" \
     -c "DELETE FROM analytics.calls WHERE dashboard_id = '00000000-0000-4000-8000-00000000a001'" \
     -c "DELETE FROM analytics.calls_hourly WHERE dashboard_id = '00000000-0000-4000-8000-00000000a001'" \
     -c "DELETE FROM analytics.calls_daily_ip WHERE dashboard_id = '00000000-0000-4000-8000-00000000a001'" \
     -c "DO \$\$ BEGIN IF to_regclass ('analytics.calls_daily_hist') IS NOT NULL THEN DELETE FROM analytics.calls_daily_hist WHERE dashboard_id = '00000000-0000-4000-8000-00000000a001'; END IF; END \$\$" \
     -c "DO \$\$ BEGIN IF to_regclass ('analytics.calls_daily_endpoint_ip') IS NOT NULL THEN DELETE FROM analytics.calls_daily_endpoint_ip WHERE dashboard_id = '00000000-0000-4000-8000-00000000a001'; END IF; END \$\$" \
     -c "DELETE FROM analytics.endpoints WHERE dashboard_id = '00000000-0000-4000-8000-00000000a001'" \
     -c "VACUUM ANALYZE analytics.calls" \
     || die "could not empty the built-in dashboard"
say "ingest: $INGEST calls in batches of 5000, $STREAMS streams"
PYTHONPATH="$root/tests/integration" /usr/bin/python3 - "$mesh" "$INGEST" "$STREAMS" "$tmp/ingest.csv" >"$tmp/ingest.out" <<'PY' || die "ingest failed: $(tail -n 5 "$tmp/ingest.out")"
import sys, threading, time
from mesh_client import MeshClient
mesh, total, streams, csv_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
base_us = int(time.time()) * 10**6 - 3600 * 10**6
batches = []
for b in range(total // 5000):
    batches.append([[f"GET /api/v1/bench/{(b * 5000 + i) % 20}", 200, ((b * 5000 + i) % 997) / 10,
                     f"10.1.{i % 200}.{b % 200}", base_us + b * 5000 + i] for i in range(5000)])
with open(csv_path, "w") as f:
    for batch in batches:
        for e, s, ms, ip, t in batch:
            f.write(f"11111111-1111-4111-8111-111111111111,{hash(e) % 20 + 1},"
                    f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(t // 10**6))}.{t % 10**6:06d}+00,"
                    f"{ms},{ip},0.1.0,\"\",{s}\n")
errors = []
def run(mine):
    client = MeshClient(mesh, peer="operator")
    for batch in mine:
        reply = client.call("analytics", "calls.ingest", body={"version": "0.1.0", "calls": batch},
                            timeout_ms=60000)
        if reply.get("status") != 200 or reply["body"]["stored"] != len(batch):
            errors.append(reply)
threads = [threading.Thread(target=run, args=(batches[i::streams],)) for i in range(streams)]
t0 = time.monotonic()
for t in threads: t.start()
for t in threads: t.join()
elapsed = time.monotonic() - t0
if errors:
    sys.exit(f"ingest errors: {errors[:2]}")
print(f"{elapsed * 1000:.0f}")
PY
INGEST_MS=$(tail -n 1 "$tmp/ingest.out")
psql "$database_url" -Xq -v ON_ERROR_STOP=1 -c "CREATE TABLE public.copy_target (LIKE analytics.calls)" \
     -c "CREATE INDEX ON public.copy_target (dashboard_id, at) INCLUDE (endpoint_id, duration_ms, ip)" \
     || die "could not create the COPY table"
t0=$(date +%s%N)
psql "$database_url" -Xqc "\\copy public.copy_target FROM '$tmp/ingest.csv' WITH (FORMAT csv)" \
    || die "COPY failed"
COPY_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
kill -0 "$analytics_pid" 2>/dev/null || die "tally-analytics died: $(tail -n 3 "$tmp/analytics.log")"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$(( $(date +%s) - started ))

report="$tmp/report.md"
{
    echo "## Tally bench: analytics (API monitoring) — $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "Machine: $ncpu CPU(s), $cpu_model; load average before $load_before, after $load_after."
    echo "Tree: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo ' (+ local changes)'), build $build; tally-analytics with $WORKERS handler threads."
    echo
    echo "| ingest | ms | calls/s | vs reference |"
    echo "|---|---:|---:|---:|"
    echo "| (1') psql \\copy of the same $INGEST rows (same index, no aggregates) | $COPY_MS | $(( INGEST * 1000 / (COPY_MS > 0 ? COPY_MS : 1) )) | 1.00 |"
    echo "| (1) calls.ingest over the mesh, $(( INGEST / 5000 )) batches of 5000, $STREAMS streams (partitions, endpoints, hourly aggregates) | $INGEST_MS | $(( INGEST * 1000 / (INGEST_MS > 0 ? INGEST_MS : 1) )) | $(awk -v a="$COPY_MS" -v b="$INGEST_MS" 'BEGIN { printf "%.2f", a / b }') |"
    echo
    echo "Statistics over $CALLS calls (120 days, 20 endpoints, 5000 addresses; seeded in ${seeded_s}s), GET through the gateway, median / max ms of $REPEAT after a warm-up:"
    echo
    echo "| statistic | 2031-01-01..05-01 (whole days) | unaligned 69 days | 120 daily slices |"
    echo "|---|---:|---:|---:|"
    [[ ${#STAT_ROWS[@]} == 0 ]] || printf '%s\n' "${STAT_ROWS[@]}"
    echo "| boxplots (20 endpoints) | ${BOX// / / } | | |"
    echo "| (2') psql: bare percentile_cont (0.5) over the same $CALLS calls | ${REF// / / } | | |"
    echo
    echo "Run took ${elapsed}s."
} >"$report"
cat "$report"
cp "$report" "$root/bench/results-analytics-latest.md"
