#  lib.sh — what the benchmark scripts share (sourced, not run, once the
#  script has defined say, die, $root and $build; run_wrk also reads
#  THREADS CONNS WARMUP DURATION).

#  cleanup: the EXIT trap. Stops the processes in $pids and those a driver
#  listed in $tmp/pids (TERM, then KILL after 5 s), the PostgreSQL cluster
#  in $tmp/pg when $pg_started is 1, and removes $tmp unless BENCH_KEEP=1.
cleanup () {
    local pid i all
    #  Ours, then whatever the driver started (it lists each child's pid)
    all=("${pids[@]}")
    if [[ -f "$tmp/pids" ]]; then
        while read -r pid; do all+=("$pid"); done <"$tmp/pids"
    fi
    for pid in "${all[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${all[@]}"; do
        for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    pids=()
    rm -f "$tmp/pids"
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

#  bench_tools TOOL...: dies unless every tool is on PATH.
bench_tools () {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 \
            || die "$tool is missing (deploy/bootstrap.sh bench installs it)"
    done
}

#  bench_built BINARY...: dies unless every program is built.
bench_built () {
    local bin
    for bin in "$@"; do
        [[ -x "$bin" ]] || die "$bin not built (cmake --build $build)"
    done
}

#  bench_pgbench: sets $pgbench (PATH, or PostgreSQL's own bin folder).
bench_pgbench () {
    pgbench=$(command -v pgbench || ls /usr/lib/postgresql/*/bin/pgbench 2>/dev/null \
              | sort -V | tail -n 1 || true)
    [[ -n "$pgbench" && -x "$pgbench" ]] || die "pgbench is missing (Debian: postgresql)"
}

#  bench_begin PREFIX: the run's temp folder $tmp (under /tmp, readable by
#  the `postgres` user who runs the cluster), empty $pids, and the
#  machine's figures for the report: $started, $ncpu, $cpu_model,
#  $load_before. Then the script sets `trap cleanup EXIT`.
bench_begin () {
    tmp=$(mktemp -d "/tmp/$1.XXXXXX")
    chmod 755 "$tmp"
    pids=()
    pg_started=0
    started=$(date +%s)
    ncpu=$(nproc)
    cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
    load_before=$(cut -d' ' -f1-3 /proc/loadavg)
}

#  bench_pg: a private PostgreSQL cluster in $tmp/pg; sets $database_url.
bench_pg () {
    say "starting PostgreSQL"
    database_url=$("$root/deploy/pg.sh" start "$tmp/pg" "$(free_port)" 2>"$tmp/pg.log") \
        || die "PostgreSQL did not start: $(cat "$tmp/pg.log")"
    pg_started=1
}

#  bench_gateway BINARY [VAR=VALUE...]: a gateway on free ports (more
#  environment in the arguments); sets $http_port, $mesh, $base and
#  $gateway_pid once /healthz answers.
bench_gateway () {
    local bin=$1
    shift
    http_port=$(free_port)
    mesh="tcp://127.0.0.1:$(free_port)"
    base="http://127.0.0.1:$http_port"
    env TALLY_HTTP_ADDR="127.0.0.1:$http_port" TALLY_MESH_BIND="$mesh" TALLY_ACCESS_LOG=0 \
        TALLY_OPS_ADDR="127.0.0.1:$(free_port)" \
        TALLY_GATEWAY_NAME=bench-gateway "$@" "$bin" >"$tmp/gateway.log" 2>&1 &
    gateway_pid=$!
    pids+=("$gateway_pid")
    wait_200 "$base/healthz" 10 || die "the gateway did not start: $(tail -n 5 "$tmp/gateway.log")"
}

#  A TCP port on 127.0.0.1 in BENCH_PORT_MIN..BENCH_PORT_MAX (default
#  20000..59999) that nothing listens on and that this run has not given
#  out yet. The ports given out are kept in $tmp/ports: $(free_port) runs
#  in a subshell, whose variables the next call would not see.
free_port () {
    local port min=${BENCH_PORT_MIN:-20000} max=${BENCH_PORT_MAX:-59999}
    [[ -n ${tmp:-} ]] || die "free_port before bench_begin"
    while true; do
        port=$(( min + RANDOM % (max - min + 1) ))
        grep -qx "$port" "$tmp/ports" 2>/dev/null && continue
        if [[ -z "$(ss -Htan "( sport = :$port )" 2>/dev/null)" ]]; then
            echo "$port" >>"$tmp/ports"
            echo "$port"
            return
        fi
    done
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

#  alive: dies when a process we started has gone (something outside
#  stopped it, or it crashed): its figures would be meaningless.
alive () {
    local name=$1 pid=$2 log=$3
    kill -0 "$pid" 2>/dev/null \
        || die "$name (pid $pid) is no longer running: $(tail -n 3 "$log")"
}

#  run_wrk KEY URL ROUND [WRK OPTIONS]: warm-up, then the measured run. Keeps, per KEY,
#  the round with the most requests/s: RPS[KEY], P50[KEY], P99[KEY] (ms),
#  ERR[KEY] (non-2xx answers plus socket errors, summed over rounds), of
#  which NON2XX[KEY] (wrk's "Non-2xx or 3xx responses") and SOCKERR[KEY],
#  and MINRPS[KEY] for the range.
declare -A RPS P50 P99 ERR NON2XX SOCKERR MINRPS
run_wrk () {
    local key=$1 url=$2 round=$3 out="$tmp/wrk-$1-$3.txt"
    shift 3                     #  the rest: more wrk options (-s, -H, -c)
    wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" "$@" "$url" >"$tmp/wrk-$key-$round-warmup.txt" 2>&1 || true
    wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "$@" "$url" >"$out" 2>&1 \
        || die "wrk failed on $url: $(cat "$out")"
    local rps p50 p99 non2xx errs
    rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")
    [[ -n "$rps" ]] || die "no figures from wrk on $url: $(cat "$out")"
    p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
    errs=$(awk '/Socket errors:/ {gsub(/,/, ""); print $4 + $6 + $8 + $10}' "$out")
    ERR[$key]=$(( ${ERR[$key]:-0} + ${non2xx:-0} + ${errs:-0} ))
    NON2XX[$key]=$(( ${NON2XX[$key]:-0} + ${non2xx:-0} ))
    SOCKERR[$key]=$(( ${SOCKERR[$key]:-0} + ${errs:-0} ))
    if [[ -z "${RPS[$key]:-}" ]] || (( rps > RPS[$key] )); then
        RPS[$key]=$rps; P50[$key]=$p50; P99[$key]=$p99
    fi
    if [[ -z "${MINRPS[$key]:-}" ]] || (( rps < MINRPS[$key] )); then
        MINRPS[$key]=$rps
    fi
    say "round $round $key: $rps req/s, p50 $p50 ms, p99 $p99 ms, errors $(( ${non2xx:-0} + ${errs:-0} ))"
}

#  ratio A B: A / B with two decimals.
ratio () { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

#  verdict VALUE OP LIMIT: **met** or **missed** (OP is >= or <=).
verdict () {
    awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
        ok = (op == ">=") ? (v >= l) : (v <= l); print ok ? "**met**" : "**missed**" }'
}

#  bench_nginx KEY WORKERS [UPSTREAM]: an nginx on a free port of 127.0.0.1
#  answering `return 200 "ok"` (or proxying to UPSTREAM, host:port, with
#  keep-alive), access log off, from $tmp/nginx-KEY; sets URL[KEY] and
#  PORT[KEY] (the caller declares both: declare -A URL PORT).
bench_nginx () {
    local key=$1 workers=$2 upstream=${3:-} port dir="$tmp/nginx-$1"
    local location='return 200 "ok";' upstream_block=''
    if [[ -n "$upstream" ]]; then
        location='proxy_pass http://upstream; proxy_http_version 1.1; proxy_set_header Connection "";'
        upstream_block="upstream upstream { server $upstream; keepalive 64; }"
    fi
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
    $upstream_block
    server {
        listen 127.0.0.1:$port;
        location / { $location }
    }
}
EOF
    nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log" >"$dir/logs/stdout.log" 2>&1 &
    pids+=("$!")
    wait_200 "http://127.0.0.1:$port/" 10 || die "nginx did not start: $(cat "$dir/logs/error.log")"
    URL[$key]="http://127.0.0.1:$port/"
    PORT[$key]=$port
}

#  bench_service NAME BINARY [VAR=VALUE...]: a Tally service on the
#  gateway's mesh ($mesh) and database ($database_url), with $WORKERS
#  handler threads and instance name bench-NAME, its output in
#  $tmp/NAME.log; sets SVC_PID[NAME] (declare -A SVC_PID first).
bench_service () {
    local name=$1 bin=$2
    shift 2
    env DATABASE_URL="$database_url" TALLY_MESH="$mesh" TALLY_WORKERS="$WORKERS" \
        TALLY_INSTANCE="bench-$name" "$@" "$bin" >"$tmp/$name.log" 2>&1 &
    pids+=("$!")
    SVC_PID[$name]=$!
}

#  api METHOD PATH [BODY] [CONTENT-TYPE]: the answer's body to a request
#  to $base/api/v1PATH with the bearer $token (if any); returns 1 while the
#  system is starting (no answer, 503), dies on any other status >= 300.
api () {
    local code
    code=$(curl -s -o "$tmp/api.out" -w '%{http_code}' -X "$1" -H "Authorization: Bearer ${token:-}" \
           -H "Content-Type: ${4:-application/json}" ${3:+--data-binary "$3"} "$base/api/v1$2" || true)
    [[ $code =~ ^2 ]] || { [[ $code == 000 || $code == 503 ]] && return 1; die "$1 $2 answered $code: $(head -c 300 "$tmp/api.out")"; }
    cat "$tmp/api.out"
}

#  json_field NAME: the first string field NAME of the JSON on stdin.
json_field () { sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" | head -n 1; }
