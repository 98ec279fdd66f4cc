#!/usr/bin/env bash
#  run.sh BUILD_DIR — `make bench`: Tally's gateway against an HTTP ceiling,
#  side by side in one run on this machine (see bench/README.md).
#
#    (a) nginx answering a fixed 200 "ok" (worker_processes 1, and auto)
#    (b) tally-gateway answering GET /healthz
#    (c) tally-gateway answering GET /api/v1/test/echo, a round trip through
#        the mesh to a tally-testsvc worker (TALLY_WORKERS=2)
#    (d) the mesh round trip alone (bench-mesh: a tl_client calling
#        testsvc echo.get through the gateway's backend) against a bare
#        ZeroMQ REQ/REP round trip of the same sizes (bench-zmq)
#
#  Every HTTP case: wrk -t$BENCH_THREADS -c$BENCH_CONNECTIONS, a
#  $BENCH_WARMUP s warm-up then $BENCH_DURATION s measured, --latency.
#  Prints a markdown table and writes it to bench/results-latest.md.
#  Everything it starts (nginx, PostgreSQL, gateway, testsvc) is stopped on
#  exit. Only 127.0.0.1 is ever targeted.
#
#  Environment (defaults):
#    BENCH_DURATION=10 BENCH_WARMUP=2 BENCH_CONNECTIONS=50 BENCH_THREADS=1
#    BENCH_N=20000 BENCH_MESH_WARMUP=2000 BENCH_WORKERS=2
#    BENCH_KEEP=1      keep the temp folder (logs, wrk output) for a look
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)

DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
CONNS=${BENCH_CONNECTIONS:-50}
THREADS=${BENCH_THREADS:-1}
N=${BENCH_N:-20000}
MESH_WARMUP=${BENCH_MESH_WARMUP:-2000}
WORKERS=${BENCH_WORKERS:-2}

say () { printf 'bench: %s\n' "$*" >&2; }
die () { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

for tool in wrk nginx curl ss; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (deploy/bootstrap.sh bench installs it)"
done
gateway_bin="$build/gateway/tally-gateway"
testsvc_bin="$build/tests/testsvc/tally-testsvc"
mesh_bin="$build/bench/bench-mesh"
zmq_bin="$build/bench/bench-zmq"
for bin in "$gateway_bin" "$testsvc_bin" "$mesh_bin" "$zmq_bin"; do
    [[ -x "$bin" ]] || die "$bin not built (cmake --build $build)"
done

#  Under /tmp: the PostgreSQL cluster runs as `postgres`, who must reach it.
tmp=$(mktemp -d /tmp/tally-bench.XXXXXX)
chmod 755 "$tmp"
pids=()
pg_started=0
cleanup () {
    local pid i
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    pids=()
    if [[ $pg_started == 1 ]]; then
        "$root/deploy/pg.sh" stop "$tmp/pg" >/dev/null 2>&1 || true
        pg_started=0
    fi
    if [[ "${BENCH_KEEP:-0}" == 1 ]]; then
        say "kept $tmp"
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

#  A TCP port on 127.0.0.1 that nothing listens on (and not given out yet).
used_ports=" "
free_port () {
    local port
    while true; do
        port=$(( 20000 + RANDOM % 40000 ))
        [[ "$used_ports" == *" $port "* ]] && continue
        if [[ -z "$(ss -Htan "( sport = :$port )" 2>/dev/null)" ]]; then
            used_ports+="$port "
            echo "$port"
            return
        fi
    done
}

#  stop_pid PID: TERM, wait up to 5 s, KILL; drops it from pids.
stop_pid () {
    local pid=$1 i keep=()
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for i in "${pids[@]}"; do [[ "$i" != "$pid" ]] && keep+=("$i"); done
    pids=("${keep[@]+"${keep[@]}"}")
}

#  wait_200 URL SECONDS: until URL answers 200.
wait_200 () {
    local url=$1 limit=$2 i code
    for i in $(seq $(( limit * 10 ))); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" || true)
        [[ "$code" == 200 ]] && return 0
        sleep 0.1
    done
    return 1
}

#  wrk latency value ("812.00us", "1.23ms", "1.01s") in milliseconds.
to_ms () {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /m$/) n *= 60000;
        else if (v ~ /s$/) n *= 1000
        printf "%.3f", n }'
}

#  run_wrk KEY URL: warm-up, then the measured run; sets RPS[KEY],
#  P50[KEY], P99[KEY], ERR[KEY] (non-2xx responses plus socket errors).
declare -A RPS P50 P99 ERR
run_wrk () {
    local key=$1 url=$2 out="$tmp/wrk-$1.txt"
    wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" "$url" >"$tmp/wrk-$1-warmup.txt" 2>&1 || true
    wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "$url" >"$out" 2>&1 \
        || die "wrk failed on $url: $(cat "$out")"
    RPS[$key]=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")
    P50[$key]=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
    P99[$key]=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
    local non2xx errs
    non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
    errs=$(awk '/Socket errors:/ {gsub(/,/, ""); print $4 + $6 + $8 + $10}' "$out")
    ERR[$key]=$(( ${non2xx:-0} + ${errs:-0} ))
    say "$key: ${RPS[$key]} req/s, p50 ${P50[$key]} ms, p99 ${P99[$key]} ms, errors ${ERR[$key]}"
}

started=$(date +%s)
cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
ncpu=$(nproc)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
say "machine: $ncpu CPU(s), $cpu_model; load average $load_before"

#  --- (a) nginx ------------------------------------------------------------
nginx_run () {
    local key=$1 workers=$2 port dir="$tmp/nginx-$1"
    port=$(free_port)
    mkdir -p "$dir/logs"
    cat >"$dir/nginx.conf" <<EOF
worker_processes $workers;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    server {
        listen 127.0.0.1:$port;
        location / { return 200 "ok"; }
    }
}
EOF
    nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log" >"$dir/logs/stdout.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    wait_200 "http://127.0.0.1:$port/" 10 || die "nginx did not start: $(cat "$dir/logs/error.log")"
    run_wrk "$key" "http://127.0.0.1:$port/"
    stop_pid "$pid"
}
nginx_run nginx1 1
nginx_run nginxauto auto

#  --- PostgreSQL, gateway, testsvc ------------------------------------------
pg_port=$(free_port)
say "starting PostgreSQL"
database_url=$("$root/deploy/pg.sh" start "$tmp/pg" "$pg_port" 2>"$tmp/pg.log") \
    || die "PostgreSQL did not start: $(cat "$tmp/pg.log")"
pg_started=1

http_port=$(free_port)
mesh_port=$(free_port)
mesh="tcp://127.0.0.1:$mesh_port"
TALLY_HTTP_ADDR="127.0.0.1:$http_port" TALLY_MESH_BIND="$mesh" TALLY_ACCESS_LOG=0 \
TALLY_GATEWAY_NAME=bench-gateway TALLY_PROTO_EXTRA="$root/tests/proto/testsvc.json" \
    "$gateway_bin" >"$tmp/gateway.log" 2>&1 &
gateway_pid=$!
pids+=("$gateway_pid")
wait_200 "http://127.0.0.1:$http_port/healthz" 10 \
    || die "the gateway did not start: $(tail -n 5 "$tmp/gateway.log")"

DATABASE_URL="$database_url" TALLY_MESH="$mesh" TALLY_WORKERS="$WORKERS" \
TALLY_INSTANCE=bench-testsvc "$testsvc_bin" >"$tmp/testsvc.log" 2>&1 &
pids+=("$!")
wait_200 "http://127.0.0.1:$http_port/api/v1/test/echo" 30 \
    || die "testsvc did not answer through the gateway: $(tail -n 5 "$tmp/testsvc.log")"

#  --- (b), (c) --------------------------------------------------------------
run_wrk healthz "http://127.0.0.1:$http_port/healthz"
run_wrk echo "http://127.0.0.1:$http_port/api/v1/test/echo"

#  --- (d) ------------------------------------------------------------------
say "mesh round trip: $N calls after $MESH_WARMUP"
mesh_line=$("$mesh_bin" "$mesh" "$N" "$MESH_WARMUP") || die "bench-mesh failed"
field () { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
req_bytes=$(field req_bytes "$mesh_line")
rep_bytes=$(field rep_bytes "$mesh_line")
say "bare ZeroMQ REQ/REP: $N round trips of $req_bytes/$rep_bytes bytes after $MESH_WARMUP"
bare_line=$("$zmq_bin" "$N" "$MESH_WARMUP" "$req_bytes" "$rep_bytes") || die "bench-zmq failed"
say "$mesh_line"
say "$bare_line"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

#  --- Report ---------------------------------------------------------------
ratio () { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
verdict () {   # verdict VALUE OP LIMIT
    awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
        ok = (op == ">=") ? (v >= l) : (v <= l); print ok ? "**met**" : "**missed**" }'
}
r_b=$(ratio "${RPS[healthz]}" "${RPS[nginx1]}")
r_c=$(ratio "${RPS[echo]}" "${RPS[nginx1]}")
mesh_p50=$(field p50_us "$mesh_line"); mesh_p99=$(field p99_us "$mesh_line")
bare_p50=$(field p50_us "$bare_line"); bare_p99=$(field p99_us "$bare_line")
mesh_mean=$(field mean_us "$mesh_line"); bare_mean=$(field mean_us "$bare_line")
r_d50=$(ratio "$mesh_p50" "$bare_p50")
r_d99=$(ratio "$mesh_p99" "$bare_p99")
elapsed=$(( $(date +%s) - started ))

report="$tmp/report.md"
{
    echo "## Tally bench — $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "Machine: $ncpu CPU(s), $cpu_model, $(uname -r); load average before $load_before, after $load_after."
    echo "HTTP: wrk -t$THREADS -c$CONNS -d${DURATION}s --latency after a ${WARMUP}s warm-up, same for every row; client and servers share the machine."
    echo
    echo "| case | req/s | p50 ms | p99 ms | errors | vs (a) nginx, 1 worker |"
    echo "|---|---:|---:|---:|---:|---:|"
    echo "| (a) nginx \`return 200\`, worker_processes 1 | ${RPS[nginx1]} | ${P50[nginx1]} | ${P99[nginx1]} | ${ERR[nginx1]} | 1.00 |"
    echo "| (a') nginx \`return 200\`, worker_processes auto ($ncpu) | ${RPS[nginxauto]} | ${P50[nginxauto]} | ${P99[nginxauto]} | ${ERR[nginxauto]} | $(ratio "${RPS[nginxauto]}" "${RPS[nginx1]}") |"
    echo "| (b) gateway GET /healthz | ${RPS[healthz]} | ${P50[healthz]} | ${P99[healthz]} | ${ERR[healthz]} | $r_b |"
    echo "| (c) gateway GET /api/v1/test/echo (mesh → testsvc, $WORKERS workers) | ${RPS[echo]} | ${P50[echo]} | ${P99[echo]} | ${ERR[echo]} | $r_c |"
    echo
    echo "| round trip, $N sequential calls | p50 µs | p99 µs | mean µs | bytes out/back |"
    echo "|---|---:|---:|---:|---:|"
    echo "| (d) mesh: tl_client → gateway → testsvc echo.get → back | $mesh_p50 | $mesh_p99 | $mesh_mean | $req_bytes/$rep_bytes |"
    echo "| (d') bare ZeroMQ REQ/REP, tcp loopback, 2 processes | $bare_p50 | $bare_p99 | $bare_mean | $req_bytes/$rep_bytes |"
    echo "| ratio mesh / bare | $r_d50 | $r_d99 | $(ratio "$mesh_mean" "$bare_mean") | |"
    echo
    echo "| target | measured | verdict |"
    echo "|---|---:|---|"
    echo "| (b)/(a) ≥ 0.90 | $r_b | $(verdict "$r_b" ">=" 0.90) |"
    echo "| (c)/(a) ≥ 0.50 | $r_c | $(verdict "$r_c" ">=" 0.50) |"
    echo "| mesh p50 ≤ 2× bare p50 | $r_d50 | $(verdict "$r_d50" "<=" 2) |"
    echo "| mesh p99 ≤ 2× bare p99 | $r_d99 | $(verdict "$r_d99" "<=" 2) |"
    echo
    echo "Run took ${elapsed}s."
} >"$report"
cat "$report"
cp "$report" "$root/bench/results-latest.md"
