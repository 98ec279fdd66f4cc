#!/usr/bin/env bash
#  events.sh BUILD_DIR — the event service under load, beside PostgreSQL
#  running the same statements in the same run (see bench/README.md,
#  "Events"):
#
#    (1)  POST /api/v1/events/{id}/orders, one free ticket each, all on ONE
#         ticket (every order waits for that ticket's row lock), through a
#         gateway to two event instances, against (1') pgbench running the
#         order's statements (the access check, the lock, the read under
#         it, the order, its line, the sale, the mail job, the answer's
#         read) on the same ticket
#    (2)  the same spread over 50 tickets of the event (orders of
#         different tickets run in parallel), against (2') pgbench likewise
#    (3)  GET /api/v1/events?limit=50, anonymous, with 10,000 published
#         events, against (3') pgbench of the page's statement
#
#  BENCH_ROUNDS rounds in turn; each row shows its best round and the range.
#  Everything runs from a temp folder on 127.0.0.1 with a private
#  PostgreSQL, stopped on exit. Jobs are not run (TALLY_RUN_JOBS=0): each
#  order's confirmation mail is queued, as in production, but not sent.
#
#  Environment (defaults): BENCH_DURATION=10 BENCH_WARMUP=2
#  BENCH_CONNECTIONS=50 BENCH_THREADS=1 BENCH_ROUNDS=2 BENCH_WORKERS=8
#  BENCH_KEEP=1 (keep the temp folder)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)

DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
CONNS=${BENCH_CONNECTIONS:-50}
THREADS=${BENCH_THREADS:-1}
ROUNDS=${BENCH_ROUNDS:-2}
WORKERS=${BENCH_WORKERS:-8}
EVENTS=10000
TICKETS=50

say () { printf 'events: %s\n' "$*" >&2; }
die () { printf 'events: error: %s\n' "$*" >&2; exit 1; }

. "$root/bench/lib.sh"
bench_tools wrk curl ss psql
bench_pgbench

gateway_bin="$build/gateway/tally-gateway"
auth_bin="$build/services/auth/tally-auth"
event_bin="$build/services/event/tally-event"
bench_built "$gateway_bin" "$auth_bin" "$event_bin"

bench_begin tally-bench-events
trap cleanup EXIT
trap 'exit 130' INT TERM

#  --- PostgreSQL, gateway, auth, two event instances ------------------------
bench_pg
bench_gateway "$gateway_bin"
declare -A SVC_PID
bench_service auth "$auth_bin" TALLY_REQUIRE_VERIFICATION=false
bench_service event1 "$event_bin" TALLY_RUN_JOBS=0
bench_service event2 "$event_bin" TALLY_RUN_JOBS=0
check_all () {
    alive tally-gateway "$gateway_pid" "$tmp/gateway.log"
    local name
    for name in auth event1 event2; do alive "tally-$name" "${SVC_PID[$name]}" "$tmp/$name.log"; done
}

#  login NAME: registers NAME and prints its bearer token.
login () {
    local i out
    for i in $(seq 100); do
        api POST /auth/register "{\"username\": \"$1\", \"email\": \"$1@example.com\", \"password\": \"correct horse battery\"}" >/dev/null && break
        sleep 0.2
    done
    out=$(api POST /auth/login "{\"login\": \"$1\", \"password\": \"correct horse battery\"}")
    json_field token <<<"$out"
}
token=$(login "organizer$$")
[[ ${#token} == 43 ]] || die "no organizer token"
buyer=$(login "buyer$$")
[[ ${#buyer} == 43 ]] || die "no buyer token"
buyer_id=$(token=$buyer api GET /me | json_field id)

for i in $(seq 100); do
    event_json=$(api POST /events '{"name": "Bench", "starts_at": "2099-06-01T09:00:00Z", "ends_at": "2099-06-03T18:00:00Z", "timezone": "Europe/Paris", "state": "published"}') && break
    sleep 0.2
done
event_id=$(json_field id <<<"$event_json")
[[ -n $event_id ]] || die "no event"
tickets=()
for i in $(seq "$TICKETS"); do
    t=$(api POST "/events/$event_id/tickets" "{\"name\": \"T$i\", \"type\": \"free\", \"quantity\": 1000000, \"max_order\": 10, \"sales_starts_at\": \"2020-01-01T00:00:00Z\", \"sales_ends_at\": \"2099-06-01T00:00:00Z\"}" | json_field id)
    [[ -n $t ]] || die "no ticket"
    tickets+=("$t")
done
orders_url="$base/api/v1/events/$event_id/orders"
token=$buyer api POST "/events/$event_id/orders" "{\"items\": [{\"ticket_id\": \"${tickets[0]}\", \"quantity\": 1}]}" \
    | grep -q '"status": *"completed"' || die "a free order was not completed"

cat >"$tmp/one.lua" <<EOF
wrk.method = "POST"
wrk.body = '{"items": [{"ticket_id": "${tickets[0]}", "quantity": 1}]}'
wrk.headers["Content-Type"] = "application/json"
EOF
{
    echo 'local bodies = {'
    for t in "${tickets[@]}"; do echo "  '{\"items\": [{\"ticket_id\": \"$t\", \"quantity\": 1}]}',"; done
    echo '}'
    echo 'wrk.method = "POST"'
    echo 'wrk.headers["Content-Type"] = "application/json"'
    echo 'request = function () return wrk.format(nil, nil, nil, bodies[math.random(#bodies)]) end'
} >"$tmp/many.lua"

#  (3) 10,000 published events, written straight into the schema
psql "$database_url" -Xqc "INSERT INTO event.events (name, starts_at, ends_at, timezone, state, creator)
    SELECT 'Event ' || i, timestamptz '2030-01-01' + i * interval '1 hour',
           timestamptz '2030-01-01' + i * interval '1 hour' + interval '3 hours', 'UTC', 'published', 'bench'
    FROM generate_series (1, $EVENTS) i" || die "could not seed the events"
psql "$database_url" -Xqc "ANALYZE event.events" >/dev/null
list_url="$base/api/v1/events?limit=50"
[[ $(curl -s "$list_url" | grep -o '"id"' | wc -l) == 50 ]] || die "the public list has not 50 items"

#  The same statements for pgbench: an order of one ticket ($2, an SQL
#  uuid) by the buyer, as s_create_tx runs them, then the answer's read
psql "$database_url" -Xqc "CREATE TABLE public.bench_tickets (n int PRIMARY KEY, id uuid)" || die "no table"
for i in "${!tickets[@]}"; do echo "$((i + 1)),${tickets[$i]}"; done \
    | psql "$database_url" -Xqc "\\copy public.bench_tickets FROM STDIN WITH (FORMAT csv)"
order_sql () {
    cat <<EOF
$1
BEGIN;
SELECT e.state = 'published', r.role, p.can_create, p.can_read, p.can_update, p.can_delete, pe.can_read,
       (extract (epoch FROM e.starts_at) * 1000)::bigint, (extract (epoch FROM e.ends_at) * 1000)::bigint
FROM event.events e LEFT JOIN event.roles r ON r.event_id = e.id AND r.user_id = '$buyer_id'
LEFT JOIN event.permissions p ON p.role = r.role AND p.service = 'tickets'
LEFT JOIN event.permissions pe ON pe.role = r.role AND pe.service = 'event' WHERE e.id = '$event_id';
SELECT id FROM event.tickets WHERE event_id = '$event_id' AND id = ANY (ARRAY[$2]) ORDER BY id FOR UPDATE;
SELECT t.id, t.type, t.price, t.min_price, t.max_price, coalesce (t.currency, ''), t.quantity, t.min_order, t.max_order,
  (extract (epoch FROM t.sales_starts_at) * 1000)::bigint, (extract (epoch FROM t.sales_ends_at) * 1000)::bigint, t.hidden,
  t.quantity - t.sold - (SELECT coalesce (sum (h.quantity), 0) FROM event.holds h WHERE h.ticket_id = t.id AND h.expires_at > clock_timestamp ()),
  clock_timestamp () >= t.sales_starts_at AND clock_timestamp () < t.sales_ends_at
FROM event.tickets t WHERE t.event_id = '$event_id' AND t.id = ANY (ARRAY[$2]);
INSERT INTO event.orders (event_id, buyer, status, total, currency) VALUES ('$event_id', '$buyer_id', 'completed', 0, NULL)
RETURNING id AS order_id \gset
INSERT INTO event.order_items (order_id, ticket_id, quantity, price) VALUES (:order_id::uuid, $2, 1, 0);
UPDATE event.tickets t SET sold = sold + i.quantity, updated_at = now () FROM event.order_items i
WHERE i.order_id = :order_id::uuid AND t.id = i.ticket_id;
WITH job AS (INSERT INTO event.jobs (kind, payload, run_at, max_attempts) VALUES ('bench.mail_order', '\x81', now (), 1) RETURNING id)
SELECT id, pg_notify ('bench', '') FROM job;
COMMIT;
SELECT o.id, o.status, o.total, (SELECT json_agg (json_build_object ('ticket_id', i.ticket_id, 'quantity', i.quantity))
  FROM event.order_items i WHERE i.order_id = o.id)::text FROM event.orders o WHERE o.id = :order_id::uuid;
EOF
}
order_sql "" "'${tickets[0]}'::uuid" >"$tmp/order-one.sql"
order_sql "\\set n random(1, $TICKETS)
SELECT id AS tk FROM public.bench_tickets WHERE n = :n \\gset" ":tk::uuid" >"$tmp/order-many.sql"
cat >"$tmp/list.sql" <<EOF
SELECT id, name, description, round (date_part ('epoch', starts_at) * 1000000)::int8,
       round (date_part ('epoch', ends_at) * 1000000)::int8, timezone, location, state,
       round (date_part ('epoch', created_at) * 1000000)::int8, round (date_part ('epoch', updated_at) * 1000000)::int8
FROM event.events WHERE state = 'published' AND starts_at >= '-infinity' AND starts_at <= 'infinity'
ORDER BY starts_at DESC, id DESC LIMIT 51;
EOF
#  Each script once, checked (pgbench -t1), before the rounds
for script in order-one order-many list; do
    "$pgbench" -n -c1 -t1 -M prepared -f "$tmp/$script.sql" "$database_url" >"$tmp/check-$script.txt" 2>&1 \
        || die "pgbench $script: $(tail -n 5 "$tmp/check-$script.txt")"
done

#  pgbench_run KEY SCRIPT: the best of the rounds in PGB_TPS[KEY], its
#  latencies in PGB_MS[KEY] (mean) and PGB_P99[KEY] (from the per-
#  transaction log).
declare -A PGB_TPS PGB_MS PGB_P99 PGB_FAIL
pgbench_run () {
    local key=$1 script=$2 round=$3 out="$tmp/pgbench-$1-$3.txt" logp="$tmp/pgb-$1-$3"
    rm -f "$logp".*
    "$pgbench" -n -c "$CONNS" -j 2 -T "$DURATION" -M prepared -f "$script" -l --log-prefix="$logp" \
        "$database_url" >"$out" 2>&1 || die "pgbench $key failed: $(tail -n 3 "$out")"
    local tps lat p99 failed
    tps=$(awk '/^tps = / {printf "%.0f", $3}' "$out")
    lat=$(awk '/^latency average = / {printf "%.2f", $4}' "$out")
    failed=$(awk '/^number of failed transactions:/ {print $5}' "$out")
    p99=$(cat "$logp".* | awk '{print $3}' | sort -n | awk '{a[NR] = $1} END {
        i = int(NR * 0.99); if (i < 1) i = 1; if (NR) printf "%.2f", a[i] / 1000 }')
    say "round $round pgbench $key: $tps/s, mean $lat ms, p99 $p99 ms, failed ${failed:-0}"
    PGB_FAIL[$key]=$(( ${PGB_FAIL[$key]:-0} + ${failed:-0} ))
    if [[ -z "${PGB_TPS[$key]:-}" ]] || (( tps > PGB_TPS[$key] )); then
        PGB_TPS[$key]=$tps; PGB_MS[$key]=$lat; PGB_P99[$key]=$p99
    fi
}

#  --- Rounds ----------------------------------------------------------------
for round in $(seq "$ROUNDS"); do
    run_wrk order_one "$orders_url" "$round" -H "Authorization: Bearer $buyer" -s "$tmp/one.lua"
    pgbench_run order_one "$tmp/order-one.sql" "$round"
    run_wrk order_many "$orders_url" "$round" -H "Authorization: Bearer $buyer" -s "$tmp/many.lua"
    pgbench_run order_many "$tmp/order-many.sql" "$round"
    run_wrk list "$list_url" "$round"
    pgbench_run list "$tmp/list.sql" "$round"
    check_all
done
#  Never oversold, whatever the contention: every ticket's sold is its
#  completed order lines
oversold=$(psql "$database_url" -XAtc "SELECT count (*) FROM event.tickets t WHERE t.sold <> (
    SELECT coalesce (sum (i.quantity), 0) FROM event.order_items i JOIN event.orders o ON o.id = i.order_id
    WHERE i.ticket_id = t.id AND o.status = 'completed') OR t.sold > t.quantity")
sold=$(psql "$database_url" -XAtc "SELECT sum (sold) FROM event.tickets WHERE event_id = '$event_id'")
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$(( $(date +%s) - started ))

report="$tmp/report.md"
{
    echo "## Tally bench: events — $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "Machine: $ncpu CPU(s), $cpu_model; load average before $load_before, after $load_after."
    echo "Tree: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo ' (+ local changes)'), build $build; one gateway, tally-auth and two tally-event instances with $WORKERS handler threads each."
    echo "wrk -t$THREADS -c$CONNS -d${DURATION}s --latency after ${WARMUP}s; pgbench -c$CONNS -j2 -M prepared -T$DURATION; $ROUNDS rounds in turn, best round shown."
    echo
    echo "| case | per s (best of $ROUNDS) | range | p50 ms | p99 ms | errors | Tally / pgbench |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    echo "| (1') pgbench: the order's statements, all on one ticket | ${PGB_TPS[order_one]} | | mean ${PGB_MS[order_one]} | ${PGB_P99[order_one]} | ${PGB_FAIL[order_one]} | |"
    echo "| (1) POST /events/{id}/orders, all on one ticket | ${RPS[order_one]} | ${MINRPS[order_one]}–${RPS[order_one]} | ${P50[order_one]} | ${P99[order_one]} | ${ERR[order_one]} | $(ratio "${RPS[order_one]}" "${PGB_TPS[order_one]}") |"
    echo "| (2') pgbench: the same over $TICKETS tickets | ${PGB_TPS[order_many]} | | mean ${PGB_MS[order_many]} | ${PGB_P99[order_many]} | ${PGB_FAIL[order_many]} | |"
    echo "| (2) POST /events/{id}/orders over $TICKETS tickets | ${RPS[order_many]} | ${MINRPS[order_many]}–${RPS[order_many]} | ${P50[order_many]} | ${P99[order_many]} | ${ERR[order_many]} | $(ratio "${RPS[order_many]}" "${PGB_TPS[order_many]}") |"
    echo "| (3') pgbench: the public page's statement, $EVENTS events | ${PGB_TPS[list]} | | mean ${PGB_MS[list]} | ${PGB_P99[list]} | ${PGB_FAIL[list]} | |"
    echo "| (3) GET /events?limit=50, anonymous, $EVENTS events | ${RPS[list]} | ${MINRPS[list]}–${RPS[list]} | ${P50[list]} | ${P99[list]} | ${ERR[list]} | $(ratio "${RPS[list]}" "${PGB_TPS[list]}") |"
    echo
    echo "Orders on one ticket against orders on $TICKETS: $(ratio "${RPS[order_one]}" "${RPS[order_many]}") (Tally), $(ratio "${PGB_TPS[order_one]}" "${PGB_TPS[order_many]}") (pgbench)."
    echo "After the run: $sold tickets sold; tickets whose sold count disagrees with their completed orders or passes their quantity: $oversold."
    echo
    echo "Run took ${elapsed}s."
} >"$report"
cat "$report"
cp "$report" "$root/bench/results-events-latest.md"
