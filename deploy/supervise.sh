#!/usr/bin/env bash
#  supervise.sh LOG NAME CMD... — runs CMD (output appended to LOG), and
#  restarts it after a crash (a non-zero exit or a signal) with a back-off
#  that doubles up to 30 s and resets after a minute of good health. Exit 0
#  means the program was asked to stop: supervision ends. SIGTERM stops the
#  program (SIGTERM, so that it drains) and then this script.
set -u
log=$1; name=$2; shift 2
child=
nap=
#  (Never `kill 0`: that would signal the whole process group.)
trap 'kill -TERM $child $nap 2>/dev/null; [ -n "$child" ] && wait $child 2>/dev/null; exit 0' TERM INT
backoff=1
while true; do
    started=$(date +%s)
    "$@" >>"$log" 2>&1 &
    child=$!
    rc=0; wait $child || rc=$?
    [ "$rc" = 0 ] && exit 0
    if [ $(( $(date +%s) - started )) -ge 60 ]; then backoff=1; fi
    printf 'tally: %s exited (%s); restarting in %ss\n' "$name" "$rc" "$backoff" >&2
    sleep "$backoff" & nap=$!
    wait $nap || true
    backoff=$(( backoff * 2 > 30 ? 30 : backoff * 2 ))
done
