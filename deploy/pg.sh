#!/usr/bin/env bash
#  pg.sh — a private PostgreSQL cluster in a local folder, for `make run` and
#  `make test` when no database URL is given. Sockets only (no TCP unless
#  TALLY_PG_LISTEN_TCP=1), trust authentication for the role `tally`, one
#  database `tally`. Messages go to stderr; the libpq URL alone to stdout.
#
#  Usage:
#    deploy/pg.sh start DATADIR PORT   init if needed, start, print the URL
#    deploy/pg.sh stop  DATADIR        fast shutdown if running
#    deploy/pg.sh url   DATADIR PORT   print the URL only
#
#  Layout: DATADIR/pgdata (the cluster), DATADIR/socket (the unix socket),
#  DATADIR/postgres.log (the server log). Run as root, the server runs as the
#  `postgres` system user and DATADIR is handed to it.
set -euo pipefail

PG_USER=tally
PG_DB=tally
PG_OS_USER=postgres
PG_MAJOR_PREFERRED=15

say ()  { printf 'pg.sh: %s\n' "$*" >&2; }
die ()  { printf 'pg.sh: error: %s\n' "$*" >&2; exit 1; }

usage () {
    cat >&2 <<'EOF'
usage: deploy/pg.sh start DATADIR PORT
       deploy/pg.sh stop  DATADIR
       deploy/pg.sh url   DATADIR PORT
EOF
    exit 2
}

#  The directory holding initdb, pg_ctl, postgres and psql.
find_bindir () {
    local dir
    if [[ -x /usr/lib/postgresql/$PG_MAJOR_PREFERRED/bin/pg_ctl ]]; then
        echo "/usr/lib/postgresql/$PG_MAJOR_PREFERRED/bin"
        return
    fi
    if command -v pg_config >/dev/null 2>&1; then
        dir=$(pg_config --bindir 2>/dev/null || true)
        if [[ -n "$dir" && -x "$dir/pg_ctl" && -x "$dir/initdb" ]]; then
            echo "$dir"
            return
        fi
    fi
    dir=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    if [[ -n "$dir" && -x "$dir/pg_ctl" ]]; then
        echo "$dir"
        return
    fi
    die "no PostgreSQL server binaries found (install postgresql-$PG_MAJOR_PREFERRED)"
}

check_port () {
    if ! [[ "$1" =~ ^[0-9]{1,5}$ ]] || (( 10#$1 < 1 || 10#$1 > 65535 )); then
        die "PORT must be a number from 1 to 65535, not '$1'"
    fi
}

#  Percent-encodes a path for a URI query value (keeps / and unreserved).
urlencode () {
    local s=$1 out='' c i
    local LC_ALL=C
    for (( i = 0; i < ${#s}; i++ )); do
        c=${s:i:1}
        case "$c" in
            [A-Za-z0-9/._~-]) out+=$c ;;
            *) out+=$(printf '%%%02X' "'$c") ;;
        esac
    done
    printf '%s' "$out"
}

print_url () {
    local socket=$1 port=$2
    printf 'postgresql://%s@/%s?host=%s&port=%s\n' \
        "$PG_USER" "$PG_DB" "$(urlencode "$socket")" "$port"
}

#  Runs a command as the server's owner: `postgres` when we are root,
#  ourselves otherwise.
as_owner () {
    if [[ $EUID -eq 0 ]]; then
        runuser -u "$PG_OS_USER" -- "$@"
    else
        "$@"
    fi
}

#  When root: every ancestor of DATADIR must be searchable by postgres.
check_traversable () {
    local dir=$1 p
    p=$(dirname "$dir")
    while :; do
        if ! runuser -u "$PG_OS_USER" -- test -x "$p"; then
            die "user $PG_OS_USER cannot enter $p (a parent of $dir); run 'chmod o+x $p' or choose a DATADIR outside it"
        fi
        [[ "$p" == / ]] && break
        p=$(dirname "$p")
    done
}

#  Locale for initdb: C.UTF-8 when the system has it, else C.
pick_locale () {
    if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then
        echo C.UTF-8
    else
        echo C
    fi
}

#  Rewrites the settings that follow the command line (port, sockets,
#  listening) into pgdata/tally.conf, which postgresql.conf includes.
write_conf () {
    local pgdata=$1 socket=$2 port=$3 listen=''
    if [[ "${TALLY_PG_LISTEN_TCP:-0}" == 1 ]]; then
        listen=127.0.0.1
    fi
    as_owner tee "$pgdata/tally.conf.new" >/dev/null <<EOF
# Written by deploy/pg.sh at every start; edit pg.sh, not this file.
listen_addresses = '$listen'
port = $port
unix_socket_directories = '$socket'
unix_socket_permissions = 0777
fsync = on
max_connections = 200
shared_buffers = 128MB
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
EOF
    as_owner mv -f "$pgdata/tally.conf.new" "$pgdata/tally.conf"
}

init_cluster () {
    local datadir=$1 pgdata=$2 bindir=$3 locale tmp
    locale=$(pick_locale)
    tmp="$datadir/pgdata.initdb"
    as_owner rm -rf "$tmp"
    say "initialising a new cluster in $pgdata (locale $locale)"
    if ! as_owner "$bindir/initdb" -D "$tmp" -U "$PG_USER" --auth=trust \
            -E UTF8 --locale="$locale" >"$datadir/initdb.log" 2>&1; then
        tail -n 20 "$datadir/initdb.log" >&2 || true
        as_owner rm -rf "$tmp"
        die "initdb failed (full log: $datadir/initdb.log)"
    fi
    printf "\ninclude_if_exists = 'tally.conf'\n" \
        | as_owner tee -a "$tmp/postgresql.conf" >/dev/null
    as_owner mv "$tmp" "$pgdata"
}

is_running () {
    as_owner "$1/pg_ctl" status -D "$2" >/dev/null 2>&1
}

#  The port of a running server, from line 4 of postmaster.pid.
running_port () {
    sed -n 4p "$1/postmaster.pid" 2>/dev/null || true
}

ensure_database () {
    local bindir=$1 socket=$2 port=$3 have
    have=$(as_owner "$bindir/psql" -X -q -h "$socket" -p "$port" -U "$PG_USER" \
             -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'") \
        || die "cannot query the server on $socket port $port"
    if [[ "$have" != 1 ]]; then
        say "creating database $PG_DB"
        as_owner "$bindir/createdb" -h "$socket" -p "$port" -U "$PG_USER" "$PG_DB" \
            || die "createdb $PG_DB failed"
    fi
}

cmd_start () {
    local datadir=$1 port=$2 bindir pgdata socket actual
    check_port "$port"
    port=$((10#$port))
    bindir=$(find_bindir)
    mkdir -p "$datadir" || die "cannot create $datadir"
    datadir=$(cd "$datadir" && pwd -P)
    pgdata="$datadir/pgdata"
    socket="$datadir/socket"
    #  Unix socket paths are limited to 107 bytes (sun_path).
    if (( ${#socket} + 20 > 107 )); then
        die "DATADIR path too long for a unix socket ($socket); choose a shorter one"
    fi
    if [[ $EUID -eq 0 ]]; then
        id "$PG_OS_USER" >/dev/null 2>&1 \
            || die "running as root needs the '$PG_OS_USER' system user"
        check_traversable "$datadir"
        chown "$PG_OS_USER:" "$datadir" || die "cannot chown $datadir to $PG_OS_USER"
    fi
    #  Two starts at once (make run beside make test) take turns.
    exec 9>>"$datadir/.pg.sh.lock"
    flock -w 120 9 || die "timed out waiting for another pg.sh on $datadir"

    if [[ -e "$pgdata" && ! -f "$pgdata/PG_VERSION" ]]; then
        die "$pgdata exists but is not a PostgreSQL cluster (no PG_VERSION); remove it"
    fi
    if [[ ! -d "$pgdata" ]]; then
        init_cluster "$datadir" "$pgdata" "$bindir"
    fi
    if [[ $EUID -eq 0 ]]; then
        chown -R "$PG_OS_USER:" "$pgdata"
    fi
    as_owner mkdir -p "$socket"
    as_owner chmod 0755 "$socket"

    if is_running "$bindir" "$pgdata"; then
        actual=$(running_port "$pgdata")
        if [[ -n "$actual" && "$actual" != "$port" ]]; then
            say "already running on port $actual (not $port); stop it to change the port"
            port=$actual
        else
            say "already running on port $port"
        fi
    else
        write_conf "$pgdata" "$socket" "$port"
        say "starting PostgreSQL on $socket port $port (log: $datadir/postgres.log)"
        as_owner touch "$datadir/postgres.log" 2>/dev/null || true
        #  9>&-: the server must not inherit (and hold) our lock.
        if ! as_owner "$bindir/pg_ctl" start -w -t 60 -D "$pgdata" \
                -l "$datadir/postgres.log" >/dev/null 9>&-; then
            tail -n 20 "$datadir/postgres.log" >&2 || true
            die "PostgreSQL did not start (full log: $datadir/postgres.log)"
        fi
    fi
    ensure_database "$bindir" "$socket" "$port"
    print_url "$socket" "$port"
}

cmd_stop () {
    local datadir=$1 bindir pgdata
    bindir=$(find_bindir)
    if [[ ! -d "$datadir" ]]; then
        say "no cluster in $datadir"
        return 0
    fi
    datadir=$(cd "$datadir" && pwd -P)
    pgdata="$datadir/pgdata"
    if [[ ! -f "$pgdata/PG_VERSION" ]]; then
        say "no cluster in $datadir"
        return 0
    fi
    if is_running "$bindir" "$pgdata"; then
        say "stopping PostgreSQL in $pgdata"
        as_owner "$bindir/pg_ctl" stop -w -t 60 -m fast -D "$pgdata" >/dev/null \
            || die "pg_ctl stop failed (log: $datadir/postgres.log)"
    else
        say "not running"
    fi
}

cmd_url () {
    local datadir=$1 port=$2
    check_port "$port"
    datadir=$(realpath -m -- "$datadir")
    print_url "$datadir/socket" "$((10#$port))"
}

main () {
    [[ $# -ge 1 ]] || usage
    case "$1" in
        start) [[ $# -eq 3 ]] || usage; cmd_start "$2" "$3" ;;
        stop)  [[ $# -eq 2 ]] || usage; cmd_stop "$2" ;;
        url)   [[ $# -eq 3 ]] || usage; cmd_url "$2" "$3" ;;
        *)     usage ;;
    esac
}

main "$@"
