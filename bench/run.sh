#!/usr/bin/env bash
#  run.sh BUILD_DIR — `make bench`: Tally's gateway against an HTTP ceiling,
#  side by side in one run on this machine (see bench/README.md).
#
#    (a) nginx answering a fixed 200 "ok" (worker_processes 1, and auto);
#        for reference, nginx proxying to that nginx (one proxied hop)
#    (b) tally-gateway answering GET /healthz
#    (c) tally-gateway answering GET /api/v1/test/echo, a round trip through
#        the mesh to a tally-testsvc worker (TALLY_WORKERS=$BENCH_WORKERS, default 8)
#    (d) the mesh round trip alone (bench-mesh: a tl_client calling
#        testsvc echo.get through the gateway's backend) against a bare
#        ZeroMQ REQ/REP round trip of the same sizes (bench-zmq); also
#        mesh.ping, which the gateway answers itself (one leg, no worker)
#
#  Every HTTP case: wrk -t$BENCH_THREADS -c$BENCH_CONNECTIONS, a
#  $BENCH_WARMUP s warm-up then $BENCH_DURATION s measured, --latency. All
#  servers run for the whole script and the cases are measured in turn,
#  $BENCH_ROUNDS rounds of (a) (b) (c) — the reference rows (a') (a'') in the
#  first round only; each case reports its best round (the one least
#  disturbed by anything else on the machine) and the range over rounds.
#  Prints a markdown table and writes it to bench/results-latest.md.
#  Everything it starts (nginx, PostgreSQL, gateway, testsvc) is stopped on
#  exit. Only 127.0.0.1 is ever targeted.
#
#  Environment (defaults):
#    BENCH_DURATION=10 BENCH_WARMUP=2 BENCH_CONNECTIONS=50 BENCH_THREADS=1
#    BENCH_ROUNDS=2
#    BENCH_N=20000 BENCH_MESH_WARMUP=1000 (per round) BENCH_MESH_ROUNDS=4
#    BENCH_WORKERS=8
#    BENCH_KEEP=1      keep the temp folder (logs, wrk output) for a look
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)

DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
CONNS=${BENCH_CONNECTIONS:-50}
THREADS=${BENCH_THREADS:-1}
ROUNDS=${BENCH_ROUNDS:-2}
N=${BENCH_N:-20000}
MESH_WARMUP=${BENCH_MESH_WARMUP:-1000}
MESH_ROUNDS=${BENCH_MESH_ROUNDS:-4}
WORKERS=${BENCH_WORKERS:-8}

say () { printf 'bench: %s\n' "$*" >&2; }
die () { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

. "$root/bench/lib.sh"
bench_tools wrk nginx curl ss

gateway_bin="$build/gateway/tally-gateway"
testsvc_bin="$build/tests/testsvc/tally-testsvc"
mesh_bin="$build/bench/bench-mesh"
zmq_bin="$build/bench/bench-zmq"
bench_built "$gateway_bin" "$testsvc_bin" "$mesh_bin" "$zmq_bin"

bench_begin tally-bench
trap cleanup EXIT
trap 'exit 130' INT TERM

versions=$( { printf 'nginx %s, wrk %s, ' "$(nginx -v 2>&1 | sed 's,.*/,,')" "$(wrk -v 2>&1 | awk 'NR==1 {print $2}')"
              printf 'libmicrohttpd %s, libzmq %s' "$(pkg-config --modversion libmicrohttpd 2>/dev/null || echo '?')" \
                     "$(pkg-config --modversion libzmq 2>/dev/null || echo '?')"; } )
say "machine: $ncpu CPU(s), $cpu_model; load average $load_before"

#  --- (a) nginx: started now, measured below with the others ------------
declare -A URL PORT
bench_nginx nginx1 1
bench_nginx nginxauto auto
bench_nginx proxy 1 "127.0.0.1:${PORT[nginx1]}"

#  --- PostgreSQL, gateway, testsvc ------------------------------------------
bench_pg
bench_gateway "$gateway_bin" TALLY_PROTO_EXTRA="$root/tests/proto/testsvc.json"

DATABASE_URL="$database_url" TALLY_MESH="$mesh" TALLY_WORKERS="$WORKERS" \
TALLY_INSTANCE=bench-testsvc TALLY_PROTO_EXTRA="$root/tests/proto/testsvc.json" "$testsvc_bin" >"$tmp/testsvc.log" 2>&1 &
pids+=("$!")
wait_200 "http://127.0.0.1:$http_port/api/v1/test/echo" 30 \
    || die "testsvc did not answer through the gateway: $(tail -n 5 "$tmp/testsvc.log")"

#  --- (a), (b), (c), in turn, $ROUNDS rounds -------------------------------
testsvc_pid=${pids[-1]}
check_both () {
    alive tally-gateway "$gateway_pid" "$tmp/gateway.log"
    alive tally-testsvc "$testsvc_pid" "$tmp/testsvc.log"
}
URL[healthz]="http://127.0.0.1:$http_port/healthz"
URL[echo]="http://127.0.0.1:$http_port/api/v1/test/echo"
for round in $(seq "$ROUNDS"); do
    cases="nginx1 healthz echo"
    [[ $round == 1 ]] && cases="nginx1 nginxauto proxy healthz echo"
    for key in $cases; do
        run_wrk "$key" "${URL[$key]}" "$round"
    done
    check_both
done

#  --- (d) ------------------------------------------------------------------
#  In $MESH_ROUNDS rounds, each of the three round trips in turn (N / rounds
#  calls after its own warm-up), so that whatever else the machine does hits
#  all three alike; the percentiles are over the pooled N samples of each.
#  The bare run uses the byte sizes the mesh envelopes had.
field () { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
#  pooled FILE: "p50 p99 mean" in µs of the samples (ns) in FILE.
pooled () {
    sort -n "$1" | awk '{ v [NR] = $1; sum += $1 }
        END { printf "%.1f %.1f %.1f", v [int ((NR - 1) * 0.50) + 1] / 1000,
                                      v [int ((NR - 1) * 0.99) + 1] / 1000, sum / NR / 1000 }'
}
per_round=$(( (N + MESH_ROUNDS - 1) / MESH_ROUNDS ))
say "round trips: $MESH_ROUNDS rounds of $per_round calls each (after $MESH_WARMUP) for mesh echo.get, mesh.ping, bare REQ/REP"
: >"$tmp/mesh.ns"; : >"$tmp/ping.ns"; : >"$tmp/bare.ns"
for round in $(seq "$MESH_ROUNDS"); do
    mesh_line=$(BENCH_SAMPLES="$tmp/mesh.ns" "$mesh_bin" "$mesh" "$per_round" "$MESH_WARMUP") \
        || die "bench-mesh failed"
    ping_line=$(BENCH_SAMPLES="$tmp/ping.ns" "$mesh_bin" "$mesh" "$per_round" "$MESH_WARMUP" mesh ping) \
        || die "bench-mesh (mesh ping) failed"
    req_bytes=$(field req_bytes "$mesh_line")
    rep_bytes=$(field rep_bytes "$mesh_line")
    bare_line=$(BENCH_SAMPLES="$tmp/bare.ns" "$zmq_bin" "$per_round" "$MESH_WARMUP" "$req_bytes" "$rep_bytes") \
        || die "bench-zmq failed"
    say "round $round: $mesh_line"
    say "round $round: $ping_line"
    say "round $round: $bare_line"
    check_both
done
read -r mesh_p50 mesh_p99 mesh_mean <<<"$(pooled "$tmp/mesh.ns")"
read -r ping_p50 ping_p99 ping_mean <<<"$(pooled "$tmp/ping.ns")"
read -r bare_p50 bare_p99 bare_mean <<<"$(pooled "$tmp/bare.ns")"
n_mesh=$(wc -l <"$tmp/mesh.ns")
ping_bytes="$(field req_bytes "$ping_line")/$(field rep_bytes "$ping_line")"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

#  --- Report ---------------------------------------------------------------
r_b=$(ratio "${RPS[healthz]}" "${RPS[nginx1]}")
r_c=$(ratio "${RPS[echo]}" "${RPS[nginx1]}")
r_d50=$(ratio "$mesh_p50" "$bare_p50")
r_d99=$(ratio "$mesh_p99" "$bare_p99")
elapsed=$(( $(date +%s) - started ))

report="$tmp/report.md"
{
    echo "## Tally bench — $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "Machine: $ncpu CPU(s), $cpu_model, Linux $(uname -r); load average before $load_before, after $load_after."
    echo "Tree: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo ' (+ local changes)'), build $build; $versions."
    echo "HTTP: wrk -t$THREADS -c$CONNS -d${DURATION}s --latency after a ${WARMUP}s warm-up, same for every row; $ROUNDS rounds of (a) (b) (c) in turn, (a') and (a'') in the first round only; each row is its best round (p50/p99 from that run). wrk and the servers share the machine."
    echo
    echo "| case | req/s (best of $ROUNDS) | range over rounds | p50 ms | p99 ms | errors | vs (a) nginx, 1 worker |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    echo "| (a) nginx \`return 200\`, worker_processes 1 | ${RPS[nginx1]} | ${MINRPS[nginx1]}–${RPS[nginx1]} | ${P50[nginx1]} | ${P99[nginx1]} | ${ERR[nginx1]} | 1.00 |"
    echo "| (a') nginx \`return 200\`, worker_processes auto ($ncpu) | ${RPS[nginxauto]} | ${MINRPS[nginxauto]}–${RPS[nginxauto]} | ${P50[nginxauto]} | ${P99[nginxauto]} | ${ERR[nginxauto]} | $(ratio "${RPS[nginxauto]}" "${RPS[nginx1]}") |"
    echo "| (a'') nginx \`proxy_pass\` → (a), upstream keep-alive: one proxied hop, for reference | ${RPS[proxy]} | ${MINRPS[proxy]}–${RPS[proxy]} | ${P50[proxy]} | ${P99[proxy]} | ${ERR[proxy]} | $(ratio "${RPS[proxy]}" "${RPS[nginx1]}") |"
    echo "| (b) gateway GET /healthz | ${RPS[healthz]} | ${MINRPS[healthz]}–${RPS[healthz]} | ${P50[healthz]} | ${P99[healthz]} | ${ERR[healthz]} | $r_b |"
    echo "| (c) gateway GET /api/v1/test/echo (mesh → testsvc, $WORKERS workers) | ${RPS[echo]} | ${MINRPS[echo]}–${RPS[echo]} | ${P50[echo]} | ${P99[echo]} | ${ERR[echo]} | $r_c |"
    echo
    echo "| round trip, $n_mesh sequential calls each ($MESH_ROUNDS interleaved rounds) | p50 µs | p99 µs | mean µs | bytes out/back |"
    echo "|---|---:|---:|---:|---:|"
    echo "| (d) mesh: tl_client → gateway → testsvc echo.get → back | $mesh_p50 | $mesh_p99 | $mesh_mean | $req_bytes/$rep_bytes |"
    echo "| (d') bare ZeroMQ REQ/REP, tcp loopback, 2 processes | $bare_p50 | $bare_p99 | $bare_mean | $req_bytes/$rep_bytes |"
    echo "| ratio mesh / bare | $r_d50 | $r_d99 | $(ratio "$mesh_mean" "$bare_mean") | |"
    echo "| (d'') mesh.ping, answered by the gateway itself (one leg) | $ping_p50 | $ping_p99 | $ping_mean | $ping_bytes |"
    echo "| ratio mesh.ping / bare | $(ratio "$ping_p50" "$bare_p50") | $(ratio "$ping_p99" "$bare_p99") | $(ratio "$ping_mean" "$bare_mean") | |"
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
