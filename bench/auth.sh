#!/usr/bin/env bash
#  auth.sh BUILD_DIR — the accounts service under load, beside its ceilings
#  measured in the same run on this machine (see bench/README.md,
#  "Accounts"):
#
#    (a)  logins/s: wrk POST /api/v1/auth/login (one verified user, right
#         password) through the gateway to tally-auth, whose hash bound is
#         TALLY_AUTH_MAX_HASHES=$(nproc)
#    (a') the ceiling: argon2id checks/s at the same (INTERACTIVE) limits,
#         on one thread and on $(nproc) threads (bench-argon2, no network,
#         no database)
#    (b)  an authenticated GET: wrk GET /api/v1/test/whoami with a bearer
#         token (the gateway asks auth session.check, then testsvc answers)
#    (b') the same GET without authentication (GET /api/v1/test/echo:
#         the gateway and testsvc alone), so that (b)/(b') is the price of
#         the token check
#    (c)  GET /api/v1/me (session.check, then auth me.get: both in auth)
#
#  BENCH_ROUNDS rounds of (a) (b) (b') (c) in turn, (a') before each round;
#  each row shows its best round and the range. Everything runs from a temp
#  folder on 127.0.0.1 with a private PostgreSQL, stopped on exit.
#
#  Environment (defaults): BENCH_DURATION=10 BENCH_WARMUP=2
#  BENCH_CONNECTIONS=50 (8 for logins) BENCH_THREADS=1 BENCH_ROUNDS=2
#  BENCH_WORKERS=8 BENCH_KEEP=1 (keep the temp folder)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)

DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
CONNS=${BENCH_CONNECTIONS:-50}
THREADS=${BENCH_THREADS:-1}
ROUNDS=${BENCH_ROUNDS:-2}
WORKERS=${BENCH_WORKERS:-8}
LOGIN_CONNS=8

say () { printf 'auth: %s\n' "$*" >&2; }
die () { printf 'auth: error: %s\n' "$*" >&2; exit 1; }

. "$root/bench/lib.sh"
bench_tools wrk curl ss

gateway_bin="$build/gateway/tally-gateway"
auth_bin="$build/services/auth/tally-auth"
testsvc_bin="$build/tests/testsvc/tally-testsvc"
argon2_bin="$build/bench/bench-argon2"
bench_built "$gateway_bin" "$auth_bin" "$testsvc_bin" "$argon2_bin"

bench_begin tally-bench-auth
trap cleanup EXIT
trap 'exit 130' INT TERM


#  --- PostgreSQL, gateway, auth, testsvc -------------------------------------
bench_pg
bench_gateway "$gateway_bin" TALLY_PROTO_EXTRA="$root/tests/proto/testsvc.json"
DATABASE_URL="$database_url" TALLY_MESH="$mesh" TALLY_WORKERS="$WORKERS" TALLY_INSTANCE=bench-auth \
TALLY_REQUIRE_VERIFICATION=false TALLY_AUTH_MAX_HASHES="$ncpu" TALLY_PROTO_EXTRA="$root/tests/proto/testsvc.json" \
    "$auth_bin" >"$tmp/auth.log" 2>&1 &
pids+=("$!"); auth_pid=$!
DATABASE_URL="$database_url" TALLY_MESH="$mesh" TALLY_WORKERS="$WORKERS" \
TALLY_INSTANCE=bench-testsvc TALLY_PROTO_EXTRA="$root/tests/proto/testsvc.json" "$testsvc_bin" >"$tmp/testsvc.log" 2>&1 &
pids+=("$!"); testsvc_pid=$!
wait_200 "$base/api/v1/test/echo" 30 || die "testsvc did not answer: $(tail -n 5 "$tmp/testsvc.log")"
check_all () {
    alive tally-gateway "$gateway_pid" "$tmp/gateway.log"
    alive tally-auth "$auth_pid" "$tmp/auth.log"
    alive tally-testsvc "$testsvc_pid" "$tmp/testsvc.log"
}

#  Two users: one logs in over and over (a user keeps their newest 100
#  sessions, so the GETs' token belongs to the other)
password="correct horse battery"
register () {
    local body="{\"username\": \"$1\", \"email\": \"$1@example.com\", \"password\": \"$password\"}" code
    for i in $(seq 100); do
        code=$(curl -s -o "$tmp/register.json" -w '%{http_code}' -H 'Content-Type: application/json' \
               --data "$body" "$base/api/v1/auth/register" || true)
        [[ $code == 201 ]] && return 0
        sleep 0.2
    done
    die "register answered $code: $(cat "$tmp/register.json")"
}
user="bench$$"
reader="reader$$"
register "$user"
register "$reader"
login_body="{\"login\": \"$user\", \"password\": \"$password\"}"
token=$(curl -s -H 'Content-Type: application/json' \
        --data "{\"login\": \"$reader\", \"password\": \"$password\"}" "$base/api/v1/auth/login" \
        | sed -n 's/.*"token": *"\([A-Za-z0-9_-]*\)".*/\1/p')
[[ ${#token} == 43 ]] || die "no token from login"
cat >"$tmp/login.lua" <<EOF
wrk.method = "POST"
wrk.body = '$login_body'
wrk.headers["Content-Type"] = "application/json"
EOF

#  --- Rounds ----------------------------------------------------------------
: >"$tmp/argon1"; : >"$tmp/argonN"
best () { sort -n "$1" | tail -n 1; }
for round in $(seq "$ROUNDS"); do
    one=$("$argon2_bin" "$DURATION" 1)
    all=$("$argon2_bin" "$DURATION" "$ncpu")
    say "round $round: $one"
    say "round $round: $all"
    sed -n 's/.*per_second=\([0-9.]*\).*/\1/p' <<<"$one" >>"$tmp/argon1"
    sed -n 's/.*per_second=\([0-9.]*\).*/\1/p' <<<"$all" >>"$tmp/argonN"
    CONNS_SAVED=$CONNS; CONNS=$LOGIN_CONNS
    run_wrk login "$base/api/v1/auth/login" "$round" -s "$tmp/login.lua"
    CONNS=$CONNS_SAVED
    run_wrk whoami "$base/api/v1/test/whoami" "$round" -H "Authorization: Bearer $token"
    run_wrk echo "$base/api/v1/test/echo" "$round"
    run_wrk me "$base/api/v1/me" "$round" -H "Authorization: Bearer $token"
    check_all
done
argon1=$(best "$tmp/argon1"); argonN=$(best "$tmp/argonN")
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$(( $(date +%s) - started ))

report="$tmp/report.md"
{
    echo "## Tally bench: accounts — $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "Machine: $ncpu CPU(s), $cpu_model; load average before $load_before, after $load_after."
    echo "Tree: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo ' (+ local changes)'), build $build. tally-auth and testsvc with $WORKERS handler threads; TALLY_AUTH_MAX_HASHES=$ncpu."
    echo "wrk -t$THREADS -d${DURATION}s --latency after ${WARMUP}s, -c$LOGIN_CONNS for logins and -c$CONNS otherwise; $ROUNDS rounds in turn, best round shown."
    echo
    echo "| case | per second (best of $ROUNDS) | range | p50 ms | p99 ms | errors | vs reference |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    echo "| (a') argon2id checks, 1 thread (INTERACTIVE: 2 passes, 64 MiB) | $argon1 | | | | | |"
    echo "| (a') argon2id checks, $ncpu threads: the login ceiling | $argonN | | | | | 1.00 |"
    echo "| (a) POST /auth/login through the gateway | ${RPS[login]} | ${MINRPS[login]}–${RPS[login]} | ${P50[login]} | ${P99[login]} | ${ERR[login]} | $(ratio "${RPS[login]}" "$argonN") of (a') |"
    echo "| (b') GET /test/echo, no authentication | ${RPS[echo]} | ${MINRPS[echo]}–${RPS[echo]} | ${P50[echo]} | ${P99[echo]} | ${ERR[echo]} | 1.00 |"
    echo "| (b) GET /test/whoami with a bearer token (session.check + testsvc) | ${RPS[whoami]} | ${MINRPS[whoami]}–${RPS[whoami]} | ${P50[whoami]} | ${P99[whoami]} | ${ERR[whoami]} | $(ratio "${RPS[whoami]}" "${RPS[echo]}") of (b') |"
    echo "| (c) GET /me (session.check + auth me.get) | ${RPS[me]} | ${MINRPS[me]}–${RPS[me]} | ${P50[me]} | ${P99[me]} | ${ERR[me]} | $(ratio "${RPS[me]}" "${RPS[echo]}") of (b') |"
    echo
    echo "Run took ${elapsed}s."
} >"$report"
cat "$report"
cp "$report" "$root/bench/results-auth-latest.md"
