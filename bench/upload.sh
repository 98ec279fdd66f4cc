#!/usr/bin/env bash
#  upload.sh BUILD_DIR — the upload service (issue #12), in one run on this
#  machine (see bench/README.md, "Uploads"):
#
#    (u1)  POST /api/v1/uploads of a 1 MiB JPEG (1600 × 1100 random
#          pixels), each a different image: sniffed, decoded whole, turned
#          upright, written again without metadata by libvips, stored in
#          the local folder; BENCH_UPLOAD_CONCURRENCY at a time
#    (u2)  the same with its four variants: the POST, then a GET of each
#          (made on first need: thumb, avatar, background, background_thumb)
#    (g)   GET /api/v1/uploads/{id} of one stored 1 MiB JPEG (gateway →
#          mesh → tally-upload → the file → back as one frame)
#    (n)   nginx serving the same file from disk (worker_processes 1)
#
#  (g) and (n): wrk -t1 -c$BENCH_CONNECTIONS, a 2 s warm-up, then 10 s.
#  Prints a markdown table and writes it to bench/results-upload-latest.md.
#  Everything runs from a temp folder on 127.0.0.1 and is stopped on exit.
#
#  Environment (defaults): BENCH_UPLOADS=60 BENCH_UPLOAD_CONCURRENCY=4
#  BENCH_DURATION=10 BENCH_WARMUP=2 BENCH_CONNECTIONS=16 BENCH_THREADS=1
#  BENCH_WORKERS=8 BENCH_KEEP=1 (keep the temp folder)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)

UPLOADS=${BENCH_UPLOADS:-60}
CONCURRENCY=${BENCH_UPLOAD_CONCURRENCY:-4}
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
CONNS=${BENCH_CONNECTIONS:-16}
THREADS=${BENCH_THREADS:-1}
WORKERS=${BENCH_WORKERS:-8}
PYTHON=/usr/bin/python3

say () { printf 'upload: %s\n' "$*" >&2; }
die () { printf 'upload: error: %s\n' "$*" >&2; exit 1; }

. "$root/bench/lib.sh"
bench_tools wrk nginx curl ss psql
"$PYTHON" -c 'import requests' 2>/dev/null || die "$PYTHON lacks requests"

gateway_bin="$build/gateway/tally-gateway"
auth_bin="$build/services/auth/tally-auth"
upload_bin="$build/services/upload/tally-upload"
bench_built "$gateway_bin" "$auth_bin" "$upload_bin"

bench_begin tally-bench-upload
trap cleanup EXIT
trap 'exit 130' INT TERM
say "machine: $ncpu CPU(s), $cpu_model; load average $load_before"

#  --- The images (before anything runs, so that making them costs nothing
#  measured): two sets, one per upload row, each image different ----------
say "making 2 × $UPLOADS JPEGs"
"$PYTHON" "$root/bench/upload_driver.py" make "$tmp/jpeg1" "$UPLOADS"
"$PYTHON" "$root/bench/upload_driver.py" make "$tmp/jpeg2" "$UPLOADS"

#  --- PostgreSQL, gateway, auth, upload ------------------------------------
declare -A URL PORT SVC_PID
bench_pg
bench_gateway "$gateway_bin"
bench_service auth "$auth_bin" TALLY_REQUIRE_VERIFICATION=false TALLY_PUBLIC_URL="$base"
mkdir -p "$tmp/data"
bench_service upload "$upload_bin" TALLY_DATA_DIR="$tmp/data" TALLY_UPLOAD_PER_HOUR=100000 \
    TALLY_UPLOAD_QUOTA_BYTES=$(( 1 << 40 ))
user="up$$"
password="correct horse battery"
for i in $(seq 100); do
    api POST /auth/register "{\"username\": \"$user\", \"email\": \"$user@example.com\", \"password\": \"$password\"}" \
        >/dev/null && break
    sleep 0.2
done
token=$(api POST /auth/login "{\"login\": \"$user\", \"password\": \"$password\"}" | json_field token)
[[ ${#token} == 43 ]] || die "no token from login"
for i in $(seq 100); do
    api GET /me/uploads >/dev/null && break
    sleep 0.2
done

#  --- (u1), (u2) -------------------------------------------------------------
say "(u1) $UPLOADS uploads, $CONCURRENCY at a time"
u1=$("$PYTHON" "$root/bench/upload_driver.py" post "$base" "$token" "$tmp/jpeg1" "$CONCURRENCY" 0)
say "(u1) $u1"
say "(u2) $UPLOADS uploads with their variants, $CONCURRENCY at a time"
u2=$("$PYTHON" "$root/bench/upload_driver.py" post "$base" "$token" "$tmp/jpeg2" "$CONCURRENCY" 1)
say "(u2) $u2"
field () { "$PYTHON" -c "import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

#  --- (g), (n) ---------------------------------------------------------------
upload_id=$(field "$u1" first_id)
sha=$(psql "$database_url" -XAtc "SELECT sha256 FROM upload.uploads WHERE id = '$upload_id'")
stored="$tmp/data/uploads/${sha:0:2}/$sha"
[[ -f "$stored" ]] || die "the stored file $stored is not there"
bytes=$(stat -c %s "$stored")
mkdir -p "$tmp/www" "$tmp/nginx/logs"
cp "$stored" "$tmp/www/image.jpg"
chmod 644 "$tmp/www/image.jpg"         #  the store keeps its files 0600; nginx workers are nobody
nginx_port=$(free_port)
cat >"$tmp/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    sendfile on;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    types { image/jpeg jpg; }
    server {
        listen 127.0.0.1:$nginx_port;
        root $tmp/www;
        add_header Cache-Control "public, max-age=31536000, immutable";
    }
}
CONF
nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/logs/error.log" \
    >"$tmp/nginx/logs/stdout.log" 2>&1 &
pids+=("$!")
wait_200 "http://127.0.0.1:$nginx_port/image.jpg" 10 || die "nginx did not start"
cmp <(curl -s "$base/api/v1/uploads/$upload_id") "$tmp/www/image.jpg" \
    || die "Tally and nginx do not serve the same bytes"
run_wrk get "$base/api/v1/uploads/$upload_id" 1
run_wrk nginx "http://127.0.0.1:$nginx_port/image.jpg" 1
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
alive tally-gateway "$gateway_pid" "$tmp/gateway.log"
alive tally-upload "${SVC_PID[upload]}" "$tmp/upload.log"

report="$tmp/report.md"
mib () { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1048576 }'; }
{
    echo "## Tally bench: uploads (issue #12) — $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "Machine: $ncpu CPU(s), $cpu_model, Linux $(uname -r); load average before $load_before, after $load_after."
    echo "Tree: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo ' (+ local changes)'), build $build; gateway, tally-auth, tally-upload ($WORKERS handler threads, local folder store)."
    echo "Images: $UPLOADS different JPEGs per upload row, 1600 × 1100 random pixels, $(mib "$(field "$u1" bytes)") MiB each on average; $CONCURRENCY clients at a time (Python requests)."
    echo
    echo "| case | uploads | seconds | uploads/s | p50 ms | p99 ms | errors |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    echo "| (u1) POST /uploads, 1 MiB JPEG | $(field "$u1" uploads) | $(field "$u1" seconds) | $(field "$u1" per_second) | $(field "$u1" p50_ms) | $(field "$u1" p99_ms) | $(field "$u1" errors) |"
    echo "| (u2) the POST + GET of its 4 variants (made then) | $(field "$u2" uploads) | $(field "$u2" seconds) | $(field "$u2" per_second) | $(field "$u2" p50_ms) | $(field "$u2" p99_ms) | $(field "$u2" errors) |"
    echo
    echo "GET of one stored image ($(mib "$bytes") MiB), wrk -t$THREADS -c$CONNS -d${DURATION}s --latency after a ${WARMUP}s warm-up:"
    echo
    echo "| case | req/s | MiB/s | p50 ms | p99 ms | non-2xx | socket errors | vs (n) |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    echo "| (g) Tally GET /uploads/{id} | ${RPS[get]} | $(awk -v r="${RPS[get]}" -v b="$bytes" 'BEGIN { printf "%.0f", r * b / 1048576 }') | ${P50[get]} | ${P99[get]} | ${NON2XX[get]} | ${SOCKERR[get]} | $(ratio "${RPS[get]}" "${RPS[nginx]}") |"
    echo "| (n) nginx, the same file from disk, worker_processes 1 | ${RPS[nginx]} | $(awk -v r="${RPS[nginx]}" -v b="$bytes" 'BEGIN { printf "%.0f", r * b / 1048576 }') | ${P50[nginx]} | ${P99[nginx]} | ${NON2XX[nginx]} | ${SOCKERR[nginx]} | 1.00 |"
} >"$report"
cat "$report"
cp "$report" "$root/bench/results-upload-latest.md"
