#!/usr/bin/env bash
#  notify.sh BUILD_DIR — notifications pushed to Server-Sent Event streams
#  (see bench/README.md, "Notifications"), beside a bare ZeroMQ PUB→SUB
#  hop measured in the same run:
#
#    (1)  a PUB→SUB hop over tcp loopback (pyzmq), one message at a time
#    (2)  notification.create over the mesh to its `event: notification`
#         on a stream of the gateway: p50/p99 over BENCH_COUNT, one at a time
#    (2') the same to a stream on each of two gateways (the later of the two)
#    (3)  the gateway's resident memory with no stream and with
#         BENCH_STREAMS idle streams
#
#  Two gateways, the notification service, and the test service as the
#  auth stand-in (tokens test-token-<user id>), so that sessions cost no
#  argon2. bench/notify.py measures; this script starts and stops, prints
#  a markdown table and writes it to bench/results-notify-latest.md.
#
#  Environment (defaults): BENCH_COUNT=1000 BENCH_STREAMS=10000
#  BENCH_WORKERS=8; BENCH_DATABASE_URL (an existing database instead of a
#  private cluster); BENCH_PORT_MIN=20000 BENCH_PORT_MAX=59999 (the ports
#  it may use); BENCH_KEEP=1 (keep the temp folder)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)

COUNT=${BENCH_COUNT:-1000}
STREAMS=${BENCH_STREAMS:-10000}
WORKERS=${BENCH_WORKERS:-8}

say () { printf 'notify: %s\n' "$*" >&2; }
die () { printf 'notify: error: %s\n' "$*" >&2; exit 1; }

. "$root/bench/lib.sh"
bench_tools curl ss
[[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c 'import zmq, msgpack' 2>/dev/null \
    || die "python3 with pyzmq and msgpack is missing (Debian: python3-zmq python3-msgpack)"

gateway_bin="$build/gateway/tally-gateway"
notification_bin="$build/services/notification/tally-notification"
testsvc_bin="$build/tests/testsvc/tally-testsvc"
bench_built "$gateway_bin" "$notification_bin" "$testsvc_bin"

bench_begin tally-bench-notify
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -n "${BENCH_DATABASE_URL:-}" ]]; then
    database_url=$BENCH_DATABASE_URL
else
    bench_pg
fi
ops_port=$(free_port)
ulimit -n "$(ulimit -Hn)"
bench_gateway "$gateway_bin" TALLY_OPS_ADDR="127.0.0.1:$ops_port" TALLY_LOG_LEVEL=warn
#  A second gateway: the fan-out to a user with a stream on each
http2_port=$(free_port)
mesh2="tcp://127.0.0.1:$(free_port)"
TALLY_HTTP_ADDR="127.0.0.1:$http2_port" TALLY_MESH_BIND="$mesh2" TALLY_ACCESS_LOG=0 \
TALLY_OPS_ADDR="127.0.0.1:$(free_port)" TALLY_GATEWAY_NAME=bench-gateway-2 TALLY_LOG_LEVEL=warn \
    "$gateway_bin" >"$tmp/gateway2.log" 2>&1 &
pids+=("$!"); gateway2_pid=$!
wait_200 "http://127.0.0.1:$http2_port/healthz" 10 || die "the second gateway did not start"
TALLY_MESH="$mesh,$mesh2" TALLY_INSTANCE=bench-auth TALLY_TEST_ROLE=auth \
TALLY_PROTO_EXTRA="$root/tests/proto/auth-standin.json" DATABASE_URL="$database_url" \
    "$testsvc_bin" >"$tmp/auth.log" 2>&1 &
pids+=("$!"); auth_pid=$!
DATABASE_URL="$database_url" TALLY_MESH="$mesh,$mesh2" TALLY_WORKERS="$WORKERS" \
TALLY_INSTANCE=bench-notification TALLY_LOG_LEVEL=warn \
    "$notification_bin" >"$tmp/notification.log" 2>&1 &
pids+=("$!"); notification_pid=$!
for i in $(seq 100); do
    ready=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ops_port/readyz" || true)
    [[ $ready == 200 ]] && break
    sleep 0.2
done
alive tally-notification "$notification_pid" "$tmp/notification.log"
alive tally-testsvc "$auth_pid" "$tmp/auth.log"

say "measuring: $COUNT pushes, $STREAMS idle streams"
/usr/bin/python3 "$root/bench/notify.py" --base "$base" --ops "http://127.0.0.1:$ops_port" \
    --base2 "http://127.0.0.1:$http2_port" --mesh "$mesh" --pid "$gateway_pid" --count "$COUNT" --streams "$STREAMS" \
    >"$tmp/result.json" || die "the measurement failed (logs in $tmp)"
alive tally-gateway "$gateway_pid" "$tmp/gateway.log"
alive tally-gateway "$gateway2_pid" "$tmp/gateway2.log"

tree=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo "?")
/usr/bin/python3 - "$tmp/result.json" "$tree" "$cpu_model" "$ncpu" "$load_before" \
    >"$tmp/report.md" <<'PY'
import json, sys, time
r = json.load(open(sys.argv[1]))
z, c, a, i = r["zmq_pub_sub"], r["create_to_event"], r["create_reply"], r["idle"]
f = r["fan_out"]
print(f"### Figures (run of {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, tree {sys.argv[2]}, "
      f"{sys.argv[4]} × {sys.argv[3]}, load before {sys.argv[5]})\n")
print("| path | n | p50 ms | p99 ms | mean ms | max ms |")
print("|---|---|---|---|---|---|")
for name, s in (("bare ZeroMQ PUB→SUB hop (pyzmq, loopback)", z),
                ("notification.create → `event: notification` on a stream", c),
                ("… of which the create's own round trip (reply)", a),
                ("notification.create → the event on a stream on each of 2 gateways (the later)", f)):
    print(f"| {name} | {s['n']} | {s['p50_ms']} | {s['p99_ms']} | {s['mean_ms']} | {s['max_ms']} |")
print(f"\n| gateway RSS | KiB |\n|---|---|\n| no stream | {i['rss_0_kib']} |\n"
      f"| {i['streams']} idle streams (opened in {i['open_s']} s) | {i['rss_n_kib']} |\n"
      f"| per stream | {i['per_stream_kib']} |\n"
      f"| … of which resident: heap (brk) / other anonymous mappings | {i['heap_kib']} / {i['anon_kib']} |")
if i["retried"]:
    print(f"\n({i['retried']} stream opens refused with a 503 and opened again a second later.)")
PY
cp "$tmp/report.md" "$root/bench/results-notify-latest.md"
cat "$tmp/report.md"
