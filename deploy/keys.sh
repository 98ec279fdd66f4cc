#!/usr/bin/env bash
#  keys.sh TALLYCTL DIR SERVICE... — the mesh's CURVE keys in DIR, made
#  once: `gateway` (the gateways' server key), `operator` (tallyctl's) and
#  one per SERVICE (service:<name>), each a pair NAME / NAME_secret, and
#  DIR/allow with the public certificates the gateways admit. A key that
#  exists is kept; a new service gets its own. Used by `make run` (run.sh)
#  and, for compose.yaml, as `deploy/keys.sh build/deploy/tallyctl deploy/keys
#  auth tracker event mailer analytics`.
set -euo pipefail
tallyctl=$1 dir=$2
shift 2
mkdir -p "$dir/allow"
chmod 700 "$dir"
make_key () {       # make_key NAME PEER [allow]
    if [ ! -f "$dir/$1_secret" ]; then
        "$tallyctl" keygen "$1" "$dir" --peer "$2" >/dev/null
    fi
    if [ "${3:-}" = allow ]; then cp "$dir/$1" "$dir/allow/$1"; fi
}
make_key gateway gateway
make_key operator operator allow
for service in "$@"; do
    make_key "$service" "service:$service" allow
done
