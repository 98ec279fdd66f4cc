#!/usr/bin/env bash
#  tracker.sh BUILD_DIR — the tracker service under load, beside ceilings
#  measured in the same run on this machine (see bench/README.md,
#  "Trackers"):
#
#    (1)  authenticated GET /api/v1/trackers/{id}/logs?limit=50 and POST
#         /api/v1/trackers/{id}/logs through the gateway (wrk), against
#         (1') nginx serving the very same JSON bytes as a static file
#    (2)  GET /api/v1/trackers/{id}/stats over 100,000 logs (a year of
#         them), against (2') the same aggregates (count, min, max, mean,
#         median, per-local-day series) run straight in PostgreSQL by
#         pgbench
#    (3)  POST /api/v1/trackers/{id}/logs.csv with 100,000 rows (all or
#         nothing), against (3') psql COPY of the same rows into a table of
#         the same shape
#
#  BENCH_ROUNDS rounds in turn; each row shows its best round and the
#  range. Everything runs from a temp folder on 127.0.0.1 with a private
#  PostgreSQL, stopped on exit.
#
#  Environment (defaults): BENCH_DURATION=10 BENCH_WARMUP=2
#  BENCH_CONNECTIONS=50 BENCH_THREADS=1 BENCH_ROUNDS=2 BENCH_WORKERS=8
#  BENCH_STATS_CONNECTIONS=4 BENCH_KEEP=1 (keep the temp folder)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)

DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
CONNS=${BENCH_CONNECTIONS:-50}
THREADS=${BENCH_THREADS:-1}
ROUNDS=${BENCH_ROUNDS:-2}
WORKERS=${BENCH_WORKERS:-8}
STATS_CONNS=${BENCH_STATS_CONNECTIONS:-4}
ROWS=100000

say () { printf 'tracker: %s\n' "$*" >&2; }
die () { printf 'tracker: error: %s\n' "$*" >&2; exit 1; }

. "$root/bench/lib.sh"
bench_tools wrk nginx curl ss psql
bench_pgbench

gateway_bin="$build/gateway/tally-gateway"
auth_bin="$build/services/auth/tally-auth"
tracker_bin="$build/services/tracker/tally-tracker"
bench_built "$gateway_bin" "$auth_bin" "$tracker_bin"

bench_begin tally-bench-tracker
trap cleanup EXIT
trap 'exit 130' INT TERM


#  --- PostgreSQL, gateway, auth, tracker -----------------------------------
bench_pg
bench_gateway "$gateway_bin"
DATABASE_URL="$database_url" TALLY_MESH="$mesh" TALLY_WORKERS="$WORKERS" TALLY_INSTANCE=bench-auth \
TALLY_REQUIRE_VERIFICATION=false "$auth_bin" >"$tmp/auth.log" 2>&1 &
pids+=("$!"); auth_pid=$!
DATABASE_URL="$database_url" TALLY_MESH="$mesh" TALLY_WORKERS="$WORKERS" TALLY_INSTANCE=bench-tracker \
    "$tracker_bin" >"$tmp/tracker.log" 2>&1 &
pids+=("$!"); tracker_pid=$!
check_all () {
    alive tally-gateway "$gateway_pid" "$tmp/gateway.log"
    alive tally-auth "$auth_pid" "$tmp/auth.log"
    alive tally-tracker "$tracker_pid" "$tmp/tracker.log"
}

user="bench$$"
for i in $(seq 100); do
    api POST /auth/register "{\"username\": \"$user\", \"email\": \"$user@example.com\", \"password\": \"correct horse battery\"}" >/dev/null && break
    sleep 0.2
done
token=$(api POST /auth/login "{\"login\": \"$user\", \"password\": \"correct horse battery\"}" | json_field token)
[[ ${#token} == 43 ]] || die "no token"
for i in $(seq 100); do
    tracker_json=$(api POST /trackers '{"name": "Water", "type": "numerical", "unit": "l"}') && break
    sleep 0.2
done
tracker_id=$(json_field id <<<"$tracker_json")
[[ -n $tracker_id ]] || die "no tracker"
for i in $(seq 50); do
    api POST "/trackers/$tracker_id/logs" "{\"value\": $i.5, \"note\": \"glass $i\"}" >/dev/null
done
logs_url="$base/api/v1/trackers/$tracker_id/logs?limit=50"
curl -s -H "Authorization: Bearer $token" "$logs_url" >"$tmp/logs.json"
[[ $(grep -o '"id"' "$tmp/logs.json" | wc -l) -ge 50 ]] || die "the logs page has fewer than 50 items"

#  (1') nginx serving the same bytes as a static file
nginx_dir="$tmp/nginx"; nginx_port=$(free_port)
mkdir -p "$nginx_dir/logs" "$nginx_dir/www"
cp "$tmp/logs.json" "$nginx_dir/www/logs.json"
cat >"$nginx_dir/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $nginx_dir/nginx.pid;
error_log $nginx_dir/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    types { application/json json; }
    client_body_temp_path $nginx_dir/body;
    proxy_temp_path $nginx_dir/proxy;
    fastcgi_temp_path $nginx_dir/fastcgi;
    uwsgi_temp_path $nginx_dir/uwsgi;
    scgi_temp_path $nginx_dir/scgi;
    server {
        listen 127.0.0.1:$nginx_port;
        root $nginx_dir/www;
        etag on;
    }
}
EOF
nginx -p "$nginx_dir" -c "$nginx_dir/nginx.conf" -e "$nginx_dir/logs/error.log" >/dev/null 2>&1 &
pids+=("$!")
wait_200 "http://127.0.0.1:$nginx_port/logs.json" 10 || die "nginx did not start"

cat >"$tmp/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"value": 2.5, "note": "bench"}'
wrk.headers["Content-Type"] = "application/json"
EOF

#  (2) a year of 100,000 logs in a second tracker, written straight into
#  the schema (the import is measured in (3))
stats_json=$(api POST /trackers '{"name": "Steps", "type": "numerical"}')
stats_id=$(json_field id <<<"$stats_json")
psql "$database_url" -Xqc "INSERT INTO tracker.logs (tracker_id, owner, at, num)
    SELECT '$stats_id', owner, now () - (i * interval '315 seconds'), (i * 7919) % 10007
    FROM tracker.trackers, generate_series (1, $ROWS) i WHERE id = '$stats_id'" \
    || die "could not seed the stats tracker"
#  As autovacuum would soon: planner statistics that know of those rows
psql "$database_url" -Xqc "ANALYZE tracker.logs" || die "could not analyze"
stats_url="$base/api/v1/trackers/$stats_id/stats"
cat >"$tmp/stats.sql" <<EOF
SELECT count (*), min (num), max (num), avg (num),
       percentile_cont (0.5) WITHIN GROUP (ORDER BY num)
FROM tracker.logs WHERE tracker_id = '$stats_id';
SELECT (at AT TIME ZONE 'UTC')::date, count (*), min (num), max (num), avg (num)
FROM tracker.logs WHERE tracker_id = '$stats_id' GROUP BY 1 ORDER BY 1;
EOF

#  (3) 100,000 rows of CSV, and a table of the same shape for COPY
awk -v n="$ROWS" 'BEGIN { print "timestamp,value,note";
    for (i = 0; i < n; i++) printf "2025-%02d-%02dT%02d:%02d:00Z,%d.%d,\"row %d, quoted\"\n",
        i % 12 + 1, i % 28 + 1, i % 24, i % 60, i % 1000, i % 10, i }' >"$tmp/import.csv"
psql "$database_url" -Xqc "CREATE TABLE public.copy_target (at timestamptz, num float8, note text)" \
    || die "could not create the COPY table"

#  --- Rounds ----------------------------------------------------------------
declare -A IMPORT_MS COPY_MS PGB_TPS PGB_MS
best_min () { local key=$1 value=$2 arr=$3; local -n a=$arr
    if [[ -z "${a[$key]:-}" ]] || (( value < a[$key] )); then a[$key]=$value; fi; }
for round in $(seq "$ROUNDS"); do
    run_wrk static "http://127.0.0.1:$nginx_port/logs.json" "$round"
    run_wrk logs_get "$logs_url" "$round" -H "Authorization: Bearer $token"
    run_wrk logs_post "$base/api/v1/trackers/$tracker_id/logs" "$round" \
        -H "Authorization: Bearer $token" -s "$tmp/post.lua"
    CONNS_SAVED=$CONNS; CONNS=$STATS_CONNS
    run_wrk stats "$stats_url" "$round" -H "Authorization: Bearer $token"
    CONNS=$CONNS_SAVED
    "$pgbench" -n -c "$STATS_CONNS" -j 1 -T "$DURATION" -M prepared -f "$tmp/stats.sql" \
        "$database_url" >"$tmp/pgbench-$round.txt" 2>&1 || die "pgbench failed: $(tail -n 3 "$tmp/pgbench-$round.txt")"
    tps=$(awk '/^tps = / {printf "%.0f", $3}' "$tmp/pgbench-$round.txt")
    lat=$(awk '/^latency average = / {printf "%.1f", $4}' "$tmp/pgbench-$round.txt")
    say "round $round pgbench stats: $tps/s, mean $lat ms"
    if [[ -z "${PGB_TPS[stats]:-}" ]] || (( tps > PGB_TPS[stats] )); then PGB_TPS[stats]=$tps; PGB_MS[stats]=$lat; fi
    #  (3) a fresh tracker each round; then COPY of the same rows
    imp_id=$(api POST /trackers '{"name": "Imported", "type": "numerical"}' | json_field id)
    t0=$(date +%s%N)
    out=$(api POST "/trackers/$imp_id/logs.csv" "@$tmp/import.csv" text/csv)
    t1=$(date +%s%N)
    grep -q "\"imported\": *$ROWS" <<<"$out" || die "the import answered: $(head -c 300 <<<"$out")"
    best_min import $(( (t1 - t0) / 1000000 )) IMPORT_MS
    psql "$database_url" -Xqc "TRUNCATE public.copy_target"
    t0=$(date +%s%N)
    tail -n +2 "$tmp/import.csv" | psql "$database_url" -Xqc "\\copy public.copy_target FROM STDIN WITH (FORMAT csv)"
    t1=$(date +%s%N)
    best_min copy $(( (t1 - t0) / 1000000 )) COPY_MS
    say "round $round import: $(( IMPORT_MS[import] )) ms best, COPY $(( COPY_MS[copy] )) ms best"
    check_all
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$(( $(date +%s) - started ))
bytes=$(wc -c <"$tmp/logs.json")

report="$tmp/report.md"
{
    echo "## Tally bench: trackers — $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "Machine: $ncpu CPU(s), $cpu_model; load average before $load_before, after $load_after."
    echo "Tree: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo ' (+ local changes)'), build $build; tally-tracker and tally-auth with $WORKERS handler threads."
    echo "wrk -t$THREADS -d${DURATION}s --latency after ${WARMUP}s, -c$CONNS (stats: -c$STATS_CONNS, pgbench -c$STATS_CONNS); $ROUNDS rounds in turn, best round shown."
    echo
    echo "| case | req/s (best of $ROUNDS) | range | p50 ms | p99 ms | errors | vs reference |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    echo "| (1') nginx: the same $bytes JSON bytes as a static file | ${RPS[static]} | ${MINRPS[static]}–${RPS[static]} | ${P50[static]} | ${P99[static]} | ${ERR[static]} | 1.00 |"
    echo "| (1) GET /trackers/{id}/logs?limit=50, bearer token | ${RPS[logs_get]} | ${MINRPS[logs_get]}–${RPS[logs_get]} | ${P50[logs_get]} | ${P99[logs_get]} | ${ERR[logs_get]} | $(ratio "${RPS[logs_get]}" "${RPS[static]}") |"
    echo "| (1) POST /trackers/{id}/logs, bearer token | ${RPS[logs_post]} | ${MINRPS[logs_post]}–${RPS[logs_post]} | ${P50[logs_post]} | ${P99[logs_post]} | ${ERR[logs_post]} | $(ratio "${RPS[logs_post]}" "${RPS[static]}") |"
    echo "| (2') pgbench: the stats' aggregates and daily series over $ROWS rows | ${PGB_TPS[stats]} | | mean ${PGB_MS[stats]} | | | 1.00 |"
    echo "| (2) GET /trackers/{id}/stats over $ROWS logs | ${RPS[stats]} | ${MINRPS[stats]}–${RPS[stats]} | ${P50[stats]} | ${P99[stats]} | ${ERR[stats]} | $(ratio "${RPS[stats]}" "${PGB_TPS[stats]}") |"
    echo
    echo "| case | best ms of $ROUNDS | rows/s | vs reference |"
    echo "|---|---:|---:|---:|"
    echo "| (3') psql \\copy of the same $ROWS rows | ${COPY_MS[copy]} | $(( ROWS * 1000 / (COPY_MS[copy] > 0 ? COPY_MS[copy] : 1) )) | 1.00 |"
    echo "| (3) POST /trackers/{id}/logs.csv, $ROWS rows, $(wc -c <"$tmp/import.csv") bytes | ${IMPORT_MS[import]} | $(( ROWS * 1000 / (IMPORT_MS[import] > 0 ? IMPORT_MS[import] : 1) )) | $(ratio "${COPY_MS[copy]}" "${IMPORT_MS[import]}") |"
    echo
    echo "Run took ${elapsed}s."
} >"$report"
cat "$report"
cp "$report" "$root/bench/results-tracker-latest.md"
