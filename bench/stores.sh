#!/usr/bin/env bash
#  stores.sh BUILD_DIR — store monitoring (issue #15) at the LoopAPI
#  take-home's size, beside its references, in one run on this machine:
#
#    (1) loading: POST /stores/data of the three CSVs (bench/stores/
#        generate.py: 4 500 stores, ~1.9 M polls over 8 days, ~35 000
#        hour rows; the status file in parts of at most 90 MB (a streamed
#        body is at most 100 MiB) against (1') psql \copy of the same
#        files into bare tables (no index, no checks): the floor of COPY
#    (2) a report: POST /stores/reports → GET until complete, best of
#        $BENCH_ROUNDS, with the analytics service's peak RSS during the
#        report (VmHWM after clear_refs) against (2') bench/stores/
#        pandas_report.py, the same rules with pandas (read, compute,
#        write: the take-home's way), its time and peak RSS; the two CSVs
#        are compared row by row
#
#  Prints a markdown table and writes it to bench/results-stores-latest.md.
#  Everything it starts (PostgreSQL, gateway, auth, analytics) runs from a
#  temp folder and is stopped on exit; only 127.0.0.1 is used, on ports in
#  BENCH_PORT_MIN..BENCH_PORT_MAX (default 20000..59999).
#
#  Environment (defaults): BENCH_ROUNDS=3 BENCH_WORKERS=4 BENCH_SEED=2023
#  BENCH_KEEP=1 keeps the temp folder.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
ROUNDS=${BENCH_ROUNDS:-3}
WORKERS=${BENCH_WORKERS:-4}
SEED=${BENCH_SEED:-2023}

say () { printf 'bench: %s\n' "$*" >&2; }
die () { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

. "$root/bench/lib.sh"
bench_tools curl ss psql

gateway_bin="$build/gateway/tally-gateway"
auth_bin="$build/services/auth/tally-auth"
analytics_bin="$build/services/analytics/tally-analytics"
bench_built "$gateway_bin" "$auth_bin" "$analytics_bin"
python=/usr/bin/python3
"$python" -c "import pandas, numpy" 2>/dev/null || die "python3-pandas is missing"

bench_begin tally-bench-stores
trap cleanup EXIT
trap 'exit 130' INT TERM
now_ms () { date +%s%3N; }

say "generating the data set"
data="$tmp/data"
mkdir -p "$data"
"$python" "$root/bench/stores/generate.py" "$data" "$SEED"
polls=$(( $(wc -l <"$data/status.csv") - 1 ))
hour_rows=$(( $(wc -l <"$data/hours.csv") - 1 ))
zone_rows=$(( $(wc -l <"$data/timezones.csv") - 1 ))
bytes=$(cat "$data"/*.csv | wc -c)
tail -n +2 "$data/status.csv" | split -C 90000000 -d -a 3 - "$data/part_"

#  --- PostgreSQL, gateway, auth, analytics ---------------------------------
bench_pg
bench_gateway "$gateway_bin"
DATABASE_URL="$database_url" TALLY_MESH="$mesh" TALLY_WORKERS="$WORKERS" TALLY_INSTANCE=bench-auth \
TALLY_REQUIRE_VERIFICATION=false "$auth_bin" >"$tmp/auth.log" 2>&1 &
pids+=("$!")
DATABASE_URL="$database_url" TALLY_MESH="$mesh" TALLY_WORKERS="$WORKERS" \
TALLY_INSTANCE=bench-analytics "$analytics_bin" >"$tmp/analytics.log" 2>&1 &
pids+=("$!"); analytics_pid=$!
user="bench$$"
for i in $(seq 100); do
    api POST /auth/register "{\"username\": \"$user\", \"email\": \"$user@example.com\", \"password\": \"correct horse battery\"}" >/dev/null && break
    sleep 0.2
done
token=$(api POST /auth/login "{\"login\": \"$user\", \"password\": \"correct horse battery\"}" | json_field token)
[[ ${#token} == 43 ]] || die "no token"
for i in $(seq 100); do
    api POST /stores/reports "" >/dev/null && break          #  waits for analytics
    sleep 0.2
done

#  --- (1) loading -----------------------------------------------------------
load () {   #  load KIND FILE: POST it, dies unless 200
    local code
    code=$(curl -s -o "$tmp/load.out" -w '%{http_code}' -X POST -H "Authorization: Bearer $token" \
           -H "Content-Type: text/csv" --data-binary "@$2" "$base/api/v1/stores/data?kind=$1")
    [[ $code == 200 ]] || die "loading $2 answered $code: $(head -c 300 "$tmp/load.out")"
}
for part in "$data"/part_*; do
    { head -n 1 "$data/status.csv"; cat "$part"; } >"$part.csv"
done
say "loading through the API ($(ls "$data"/part_*.csv | wc -l) status parts)"
t0=$(now_ms)
for part in "$data"/part_*.csv; do load status "$part"; done
load hours "$data/hours.csv"
load timezones "$data/timezones.csv"
t1=$(now_ms)
load_ms=$(( t1 - t0 ))
loaded=$(psql "$database_url" -XAtc "SELECT count (*) FROM analytics.store_polls")
[[ $loaded == "$polls" ]] || die "$loaded polls loaded of $polls"

say "bare COPY of the same files"
psql "$database_url" -Xqc "CREATE TABLE public.s (store_id bigint, status text, ts text);
  CREATE TABLE public.h (store_id bigint, dow int, a text, b text);
  CREATE TABLE public.z (store_id bigint, zone text)"
t0=$(now_ms)
psql "$database_url" -Xqc "\\copy public.s FROM '$data/status.csv' WITH (FORMAT csv, HEADER true)"
psql "$database_url" -Xqc "\\copy public.h FROM '$data/hours.csv' WITH (FORMAT csv, HEADER true)"
psql "$database_url" -Xqc "\\copy public.z FROM '$data/timezones.csv' WITH (FORMAT csv, HEADER true)"
t1=$(now_ms)
copy_ms=$(( t1 - t0 ))
psql "$database_url" -Xqc "DROP TABLE public.s, public.h, public.z"
psql "$database_url" -Xqc "VACUUM ANALYZE"

#  --- (2) reports -------------------------------------------------------------
best_ms=0; worst_ms=0; peak_kib=0
for round in $(seq "$ROUNDS"); do
    echo 5 >"/proc/$analytics_pid/clear_refs" 2>/dev/null || true    #  resets VmHWM
    t0=$(now_ms)
    id=$(api POST /stores/reports "" | json_field report_id)
    while true; do
        state=$(api GET "/stores/reports/$id" | json_field status)
        [[ $state == running ]] || break
        sleep 0.01
    done
    t1=$(now_ms)
    [[ $state == complete ]] || die "report $id: $state: $(cat "$tmp/api.out")"
    ms=$(( t1 - t0 ))
    hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$analytics_pid/status")
    say "round $round: report in $ms ms, peak RSS $hwm KiB"
    (( best_ms == 0 || ms < best_ms )) && best_ms=$ms
    (( ms > worst_ms )) && worst_ms=$ms
    (( hwm > peak_kib )) && peak_kib=$hwm
done
curl -s -H "Authorization: Bearer $token" "$base/api/v1/stores/reports/$id/report.csv" >"$tmp/tally.csv"
stores=$(( $(wc -l <"$tmp/tally.csv") - 1 ))

say "the same report with pandas"
read -r pandas_s pandas_kib < <("$python" "$root/bench/stores/pandas_report.py" "$data" "$tmp/pandas.csv")
pandas_ms=$(awk -v s="$pandas_s" 'BEGIN { printf "%d", s * 1000 }')
same=$(comm -12 <(sort "$tmp/tally.csv") <(sort "$tmp/pandas.csv") | wc -l)
same=$(( same - 1 ))    #  the header

#  --- The table --------------------------------------------------------------------
out="$root/bench/results-stores-latest.md"
{
    echo "Store monitoring at the take-home's size, $(date -u +%Y-%m-%dT%H:%MZ), $ncpu × $cpu_model, load before $load_before"
    echo "Data: $polls polls, $hour_rows hour rows, $zone_rows zones, $(( bytes / 1048576 )) MiB of CSV (seed $SEED); $WORKERS handler threads"
    echo
    echo "| case | ms | vs reference | target |"
    echo "|---|---|---|---|"
    echo "| (1') psql \\copy of the three files into bare tables | $copy_ms | 1.00 | |"
    echo "| (1) POST /stores/data, the three files (status in parts of ≤ 90 MB, streamed) | $load_ms | $(ratio "$copy_ms" "$load_ms") of COPY's speed | ≥ 0.50: $(verdict "$(ratio "$copy_ms" "$load_ms")" ">=" 0.5) |"
    echo "| (2') pandas_report.py: read, compute, write (peak RSS $(( pandas_kib / 1024 )) MiB) | $pandas_ms | 1.00 | |"
    echo "| (2) report trigger → complete, best of $ROUNDS (worst $worst_ms ms; service peak RSS $(( peak_kib / 1024 )) MiB) | $best_ms | $(ratio "$pandas_ms" "$best_ms")× faster | < 1000 ms: $( (( best_ms < 1000 )) && echo met || echo missed) |"
    echo
    echo "The two reports: $stores stores, $same rows identical."
} | tee "$out"
