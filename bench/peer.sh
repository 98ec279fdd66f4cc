#!/usr/bin/env bash
#  peer.sh BUILD_DIR — Tally beside the seeds' stack (issue #10), in one run
#  on this machine (see bench/README.md, "Against the seeds' stack"):
#
#    (a)   nginx `return 200 "ok"`, worker_processes 1: the HTTP ceiling
#    (b')  Tally GET /api/v1/test/echo (gateway → mesh → testsvc)
#    (b)   Tally GET /api/v1/test/whoami with a bearer token (session.check
#          in tally-auth, then testsvc)
#    (1)   Tally GET /api/v1/trackers/{id}/logs?limit=50, bearer token
#    (1f)  the same GET from the Flask peer (bench/flask_peer/app.py:
#          Flask + psycopg2 under gunicorn, $BENCH_PEER_WORKERS sync workers)
#    (2)   Tally POST /api/v1/trackers/{id}/logs, bearer token
#    (2f)  the same POST to the Flask peer
#
#  Both stacks serve the same rows of the same PostgreSQL: one user, one
#  numerical tracker, 1000 logs, seeded through Tally's API (register,
#  login, create the tracker, import the logs as CSV). Before measuring,
#  bench/flask_peer/compare.py checks that both answer the same (the same
#  JSON for two pages, the same POST answer, the same refusals) and the
#  run stops if they do not. The logs a POST row adds are deleted after
#  it (then VACUUM ANALYZE), so that every GET row reads the seeded 1000
#  and the tracker never reaches its quota of 100 000 logs.
#
#  Every row: wrk -t1 -c64, a 2 s warm-up, then 10 s --latency;
#  BENCH_ROUNDS=2 rounds of all seven rows in turn; a row shows its best
#  round and the range. Prints a markdown table with the issue's four
#  ratios (met / missed) and writes it to bench/results-peer-latest.md.
#  Everything runs from a temp folder on 127.0.0.1 and is stopped on exit.
#
#  Environment (defaults): BENCH_DURATION=10 BENCH_WARMUP=2
#  BENCH_CONNECTIONS=64 BENCH_THREADS=1 BENCH_ROUNDS=2 BENCH_WORKERS=8
#  BENCH_PEER_WORKERS=5 BENCH_KEEP=1 (keep the temp folder)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)

DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
CONNS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-1}
ROUNDS=${BENCH_ROUNDS:-2}
WORKERS=${BENCH_WORKERS:-8}
PEER_WORKERS=${BENCH_PEER_WORKERS:-5}
LOGS=1000
#  Debian's Python, with Debian's Flask, gunicorn and psycopg2 (the python3
#  first on PATH may be another build, without them)
PYTHON=/usr/bin/python3

say () { printf 'peer: %s\n' "$*" >&2; }
die () { printf 'peer: error: %s\n' "$*" >&2; exit 1; }

. "$root/bench/lib.sh"
bench_tools wrk nginx curl ss psql
"$PYTHON" -c 'import flask, gunicorn, psycopg2' 2>/dev/null \
    || die "$PYTHON lacks flask, gunicorn or psycopg2 (deploy/bootstrap.sh bench installs python3-flask, gunicorn, python3-psycopg2)"

gateway_bin="$build/gateway/tally-gateway"
auth_bin="$build/services/auth/tally-auth"
tracker_bin="$build/services/tracker/tally-tracker"
testsvc_bin="$build/tests/testsvc/tally-testsvc"
bench_built "$gateway_bin" "$auth_bin" "$tracker_bin" "$testsvc_bin"

bench_begin tally-bench-peer
trap cleanup EXIT
trap 'exit 130' INT TERM

versions=$("$PYTHON" -c 'import sys, flask, gunicorn, psycopg2
print("Python %s, Flask %s, gunicorn %s, psycopg2 %s" % (sys.version.split()[0],
      flask.__version__, gunicorn.__version__, psycopg2.__version__.split()[0]))')
say "machine: $ncpu CPU(s), $cpu_model; load average $load_before"

#  --- (a) nginx ------------------------------------------------------------
declare -A URL PORT SVC_PID
bench_nginx nginx1 1

#  --- PostgreSQL, gateway, auth, tracker, testsvc (as auth.sh, tracker.sh) ---
extra="$root/tests/proto/testsvc.json"
bench_pg
bench_gateway "$gateway_bin" TALLY_PROTO_EXTRA="$extra"
bench_service auth "$auth_bin" TALLY_REQUIRE_VERIFICATION=false TALLY_AUTH_MAX_HASHES="$ncpu" \
    TALLY_PROTO_EXTRA="$extra"
bench_service tracker "$tracker_bin"
bench_service testsvc "$testsvc_bin" TALLY_PROTO_EXTRA="$extra"
wait_200 "$base/api/v1/test/echo" 30 || die "testsvc did not answer: $(tail -n 5 "$tmp/testsvc.log")"

#  --- The data, through Tally's API ---------------------------------------
#  One user (no verification mail: TALLY_REQUIRE_VERIFICATION=false, as
#  auth.sh and tracker.sh), its token, one numerical tracker, 1000 logs
#  imported as CSV: a minute to a few hours apart, values integer and
#  fractional, positive and negative, notes with quotes, commas, a
#  backslash and non-ASCII text, some logs sharing a timestamp (the
#  keyset's tie on id), some with milliseconds.
user="peer$$"
password="correct horse battery"
for i in $(seq 100); do
    api POST /auth/register "{\"username\": \"$user\", \"email\": \"$user@example.com\", \"password\": \"$password\"}" \
        >/dev/null && break
    sleep 0.2
done
token=$(api POST /auth/login "{\"login\": \"$user\", \"password\": \"$password\"}" | json_field token)
[[ ${#token} == 43 ]] || die "no token from login"
for i in $(seq 100); do
    tracker_json=$(api POST /trackers '{"name": "Water", "type": "numerical", "unit": "l"}') && break
    sleep 0.2
done
tracker_id=$(json_field id <<<"$tracker_json")
[[ -n $tracker_id ]] || die "no tracker"
start_s=$(( $(date +%s) - 3600 ))
"$PYTHON" - "$LOGS" "$start_s" >"$tmp/seed.csv" <<'EOF'
import csv, sys, time
n, t = int(sys.argv[1]), int(sys.argv[2])
out = csv.writer(sys.stdout, lineterminator="\n")
out.writerow(["timestamp", "value", "note"])
for i in range(n):
    if i % 97:                          # every 97th: the same time as the one before
        t -= 60 + (i * 7919) % 7200
    ms = ".%03d" % ((i * 37) % 1000) if i % 5 == 0 else ""
    value = str((i * 31) % 1000 - 200) if i % 3 == 0 else "%d.%02d" % (i % 50, (i * 13) % 100)
    note = ['glass %d, "sparkling"' % i, "café %d ✓ \\ back" % i, "", "plain %d" % i][i % 4]
    out.writerow([time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ms + "Z", value, note])
EOF
out=$(api POST "/trackers/$tracker_id/logs.csv" "@$tmp/seed.csv" text/csv) \
    || die "the import of the seed did not answer"
grep -q "\"imported\": *$LOGS" <<<"$out" || die "the import answered: $(head -c 300 <<<"$out")"
#  As autovacuum would soon: planner statistics that know of those rows
psql "$database_url" -Xqc "ANALYZE tracker.logs" || die "could not analyze"
seeded_until=$(psql "$database_url" -XAtc "SELECT max (created_at) FROM tracker.logs WHERE tracker_id = '$tracker_id'")
#  unseed: the logs added since the seed go (the POST rows' and compare.py's).
#  Requests wrk left in flight when it stopped may still be writing: it
#  tries again until the tracker holds the seed alone, then VACUUM ANALYZE.
unseed () {
    local n i
    for i in $(seq 10); do
        sleep 0.5
        psql "$database_url" -Xqc "DELETE FROM tracker.logs WHERE tracker_id = '$tracker_id' AND created_at > '$seeded_until'" \
            || die "could not remove the posted logs"
        n=$(psql "$database_url" -XAtc "SELECT count (*) FROM tracker.logs WHERE tracker_id = '$tracker_id'")
        [[ $n == "$LOGS" ]] && break
    done
    [[ $n == "$LOGS" ]] || die "the tracker holds $n logs, not $LOGS"
    psql "$database_url" -Xqc "VACUUM ANALYZE tracker.logs" || die "could not vacuum"
}

#  --- The Flask peer: gunicorn, sync workers, on the same database --------
peer_port=$(free_port)
peer="http://127.0.0.1:$peer_port"
( cd "$root/bench/flask_peer" \
  && exec env DATABASE_URL="$database_url" PYTHONPYCACHEPREFIX="$tmp/pycache" \
     "$PYTHON" -m gunicorn -w "$PEER_WORKERS" -b "127.0.0.1:$peer_port" --pid "$tmp/gunicorn.pid" \
     app:app ) >"$tmp/gunicorn.log" 2>&1 &
pids+=("$!"); gunicorn_pid=$!
wait_200 "$peer/healthz" 20 || die "gunicorn did not start: $(tail -n 5 "$tmp/gunicorn.log")"

check_all () {
    alive tally-gateway "$gateway_pid" "$tmp/gateway.log"
    local name
    for name in auth tracker testsvc; do alive "tally-$name" "${SVC_PID[$name]}" "$tmp/$name.log"; done
    alive gunicorn "$gunicorn_pid" "$tmp/gunicorn.log"
}

#  --- Do both answer the same? --------------------------------------------
if ! "$PYTHON" "$root/bench/flask_peer/compare.py" "$base" "$peer" "$tracker_id" "$token" \
        >"$tmp/compare.txt" 2>&1; then
    sed 's/^/peer: /' "$tmp/compare.txt" >&2
    die "Tally and the Flask peer do not answer the same: nothing measured"
fi
sed 's/^/peer: /' "$tmp/compare.txt" >&2
peer_connection=$(curl -s -o /dev/null -D - -H "Authorization: Bearer $token" \
                  "$peer/api/v1/trackers/$tracker_id/logs?limit=50" | tr -d '\r' \
                  | awk -F': ' 'tolower($1) == "connection" {print $2}')
unseed
page_bytes=$(curl -s -H "Authorization: Bearer $token" "$base/api/v1/trackers/$tracker_id/logs?limit=50" | wc -c)

#  --- Rounds ----------------------------------------------------------------
cat >"$tmp/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"value": 2.5, "note": "bench"}'
wrk.headers["Content-Type"] = "application/json"
EOF
auth_header="Authorization: Bearer $token"
logs_path="/api/v1/trackers/$tracker_id/logs"
for round in $(seq "$ROUNDS"); do
    run_wrk nginx "${URL[nginx1]}" "$round"
    run_wrk echo "$base/api/v1/test/echo" "$round"
    run_wrk whoami "$base/api/v1/test/whoami" "$round" -H "$auth_header"
    run_wrk get "$base$logs_path?limit=50" "$round" -H "$auth_header"
    run_wrk get_f "$peer$logs_path?limit=50" "$round" -H "$auth_header"
    run_wrk post "$base$logs_path" "$round" -H "$auth_header" -s "$tmp/post.lua"
    unseed
    run_wrk post_f "$peer$logs_path" "$round" -H "$auth_header" -s "$tmp/post.lua"
    unseed
    check_all
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$(( $(date +%s) - started ))

#  --- Report ---------------------------------------------------------------
r_get=$(ratio "${RPS[get]}" "${RPS[get_f]}")
r_post=$(ratio "${RPS[post]}" "${RPS[post_f]}")
r_echo=$(ratio "${RPS[echo]}" "${RPS[nginx]}")
r_auth=$(ratio "${RPS[whoami]}" "${RPS[echo]}")
#  A ratio stands only if neither of its rows had a non-2xx answer
checked () {    # checked VERDICT KEY...
    local v=$1 key bad=""
    shift
    for key in "$@"; do (( NON2XX[$key] == 0 )) || bad+=" $key"; done
    if [[ -n $bad ]]; then echo "**invalid** (non-2xx in:$bad)"; else echo "$v"; fi
}
row () {    # row KEY LABEL VS
    local key=$1
    echo "| $2 | ${RPS[$key]} | ${MINRPS[$key]}–${RPS[$key]} | ${P50[$key]} | ${P99[$key]} | ${NON2XX[$key]} | ${SOCKERR[$key]} | $3 |"
}
report="$tmp/report.md"
{
    echo "## Tally bench: against the seeds' stack (issue #10) — $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "Machine: $ncpu CPU(s), $cpu_model, Linux $(uname -r); load average before $load_before, after $load_after."
    echo "Tree: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo ' (+ local changes)'), build $build; gateway, tally-auth, tally-tracker, testsvc with $WORKERS handler threads."
    echo "Flask peer: gunicorn -w $PEER_WORKERS (sync workers, answers with Connection: ${peer_connection:-?}), $versions; one psycopg2 connection per worker."
    echo "Data: one user, one numerical tracker, $LOGS logs (seeded through Tally's API), the same rows for both; a page of 50 is $page_bytes bytes of JSON, the same from both (checked before measuring)."
    echo "wrk -t$THREADS -c$CONNS -d${DURATION}s --latency after a ${WARMUP}s warm-up, every row; $ROUNDS rounds of all rows in turn, best round shown; posted logs removed after each POST row."
    echo
    echo "| case | req/s (best of $ROUNDS) | range | p50 ms | p99 ms | non-2xx | socket errors | vs |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    row nginx "(a) nginx \`return 200\`, worker_processes 1" "1.00 of (a)"
    row echo "(b') Tally GET /test/echo (mesh → testsvc)" "$r_echo of (a)"
    row whoami "(b) Tally GET /test/whoami, bearer token" "$r_auth of (b')"
    row get "(1) Tally GET /trackers/{id}/logs?limit=50" "$r_get × (1f)"
    row get_f "(1f) Flask peer, the same GET" "1.00"
    row post "(2) Tally POST /trackers/{id}/logs" "$r_post × (2f)"
    row post_f "(2f) Flask peer, the same POST" "1.00"
    echo
    echo "| target (issue #10) | measured | verdict |"
    echo "|---|---:|---|"
    echo "| GET 50 logs: (1) ≥ 5 × (1f) | $r_get | $(checked "$(verdict "$r_get" ">=" 5)" get get_f) |"
    echo "| GET 50 logs: (1) p99 < 15 ms at $CONNS connections | ${P99[get]} ms | $(checked "$(awk -v v="${P99[get]}" 'BEGIN { print (v < 15) ? "**met**" : "**missed**" }')" get) |"
    echo "| POST a log: (2) ≥ 3 × (2f) | $r_post | $(checked "$(verdict "$r_post" ">=" 3)" post post_f) |"
    echo "| through the mesh: (b') ≥ 0.35 × (a) | $r_echo | $(checked "$(verdict "$r_echo" ">=" 0.35)" echo nginx) |"
    echo "| authenticated: (b) ≥ 0.8 × (b') | $r_auth | $(checked "$(verdict "$r_auth" ">=" 0.8)" whoami echo) |"
    echo
    echo "Run took ${elapsed}s."
} >"$report"
cat "$report"
cp "$report" "$root/bench/results-peer-latest.md"
