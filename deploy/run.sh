#!/usr/bin/env bash
#  run.sh — `make run`: the whole of Tally on this machine. Starts a private
#  PostgreSQL under $TALLY_DATA_DIR (unless DATABASE_URL is given), every
#  service that exists, and the gateway; restarts a service that crashes,
#  with back-off; on Ctrl-C or SIGTERM stops everything, the database too.
#  A second run on the same data folder refuses.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${TALLY_BUILD_DIR:-$root/build}" && pwd)
data="${TALLY_DATA_DIR:-$root/var}"
mkdir -p "$data"
data=$(cd "$data" && pwd)
export TALLY_DATA_DIR="$data"
export TALLY_HTTP_ADDR="${TALLY_HTTP_ADDR:-127.0.0.1:8080}"
export TALLY_OPS_ADDR="${TALLY_OPS_ADDR:-127.0.0.1:9090}"
export TALLY_MESH_BIND="${TALLY_MESH_BIND:-tcp://127.0.0.1:5555}"
export TALLY_MESH="${TALLY_MESH:-$TALLY_MESH_BIND}"
export TALLY_PUBLIC_URL="${TALLY_PUBLIC_URL:-http://$TALLY_HTTP_ADDR}"
export TALLY_MAIL_FROM="${TALLY_MAIL_FROM:-Tally <tally@tally.localhost>}"
pg_port="${TALLY_PG_PORT:-55432}"

say () { printf 'tally: %s\n' "$*" >&2; }

exec 9>"$data/run.lock"
if ! flock -n 9; then
    say "another 'make run' is already using $data (stop it, or set TALLY_DATA_DIR)"
    exit 1
fi

own_db=0
if [ -z "${DATABASE_URL:-}" ]; then
    DATABASE_URL=$("$root/deploy/pg.sh" start "$data" "$pg_port" 9>&-)
    own_db=1
fi
export DATABASE_URL
mkdir -p "$data/logs" "$data/mail"

pids=()
stopped=0
stop_all () {
    [ "$stopped" = 1 ] && return
    stopped=1
    say "stopping"
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ "$own_db" = 1 ]; then "$root/deploy/pg.sh" stop "$data"; fi
    say "stopped"
}
#  A signal only ends the wait below; the stopping happens in the main
#  flow (bash runs traps between commands, and exit from a trap is fragile).
quit=0
sleeper=
trap 'quit=1; if [ -n "$sleeper" ]; then kill "$sleeper" 2>/dev/null || true; fi' INT TERM
trap 'stop_all' EXIT

#  supervise NAME CMD...: runs CMD under deploy/supervise.sh (restart with
#  back-off after a crash). Children never hold the run lock (fd 9).
supervise () {
    local name=$1; shift
    "$root/deploy/supervise.sh" "$data/logs/$name.log" "$name" "$@" 9>&- &
    pids+=($!)
}

#  The mesh runs with CURVE: each peer's key says who it is (a service, the
#  gateway, the operator). Keys are made once, in $data/keys; a service
#  added later gets its own on the next start.
keys="$data/keys"
services=()
for bin in "$build"/services/*/tally-*; do
    [ -x "$bin" ] || continue
    case "$bin" in *selftest*) continue ;; esac
    name=$(basename "$bin")
    services+=("${name#tally-}")
done
"$root/deploy/keys.sh" "$build/deploy/tallyctl" "$keys" "${services[@]}"

count=0
for bin in "$build"/services/*/tally-*; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin")
    case "$name" in *selftest*) continue ;; esac
    service=${name#tally-}
    supervise "$name" env TALLY_CURVE_CLIENT_CERT="$keys/${service}_secret" \
        TALLY_CURVE_SERVER_PUBLIC="$keys/gateway" "$bin"
    count=$((count + 1))
done
supervise tally-gateway env TALLY_CURVE_SERVER_CERT="$keys/gateway_secret" \
    TALLY_CURVE_ALLOW_DIR="$keys/allow" "$build/gateway/tally-gateway"

for _ in $(seq 1 100); do
    [ "$quit" = 1 ] && break
    if curl -fsS "http://$TALLY_HTTP_ADDR/healthz" >/dev/null 2>&1; then break; fi
    sleep 0.1
done
say "$count service(s) and the gateway are up; logs in $data/logs"
say "serving on http://$TALLY_HTTP_ADDR  (readiness: /readyz; metrics: http://$TALLY_OPS_ADDR/metrics; Ctrl-C stops)"
say "operator: TALLY_CURVE_CLIENT_CERT=$keys/operator_secret TALLY_CURVE_SERVER_PUBLIC=$keys/gateway $build/deploy/tallyctl status"
while [ "$quit" = 0 ]; do
    sleep 3600 9>&- &
    sleeper=$!
    wait $sleeper || true
done
stop_all
