#!/usr/bin/env bash
#  run.sh BUILD_DIR — every test of Tally against real parts: a private
#  PostgreSQL cluster for this run, the per-class self-tests and the fuzz
#  corpora (ctest), compose.yaml's validity, then the integration suite
#  (pytest), which starts real gateways and services over real sockets.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-build-asan}" && pwd)
#  Under /tmp: the cluster runs as the postgres user, who must be able to
#  reach its folder wherever the checkout lives.
data=$(mktemp -d /tmp/tally-test-pg.XXXXXX)
chmod 755 "$data"
port="${TALLY_TEST_PG_PORT:-55433}"

url=$("$root/deploy/pg.sh" start "$data" "$port")
trap '"$root/deploy/pg.sh" stop "$data"; rm -rf "$data"' EXIT

export TALLY_TEST_DATABASE_URL="$url"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=23:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=24"
export LSAN_OPTIONS="suppressions=$root/tests/lsan.supp:print_suppressions=0"

echo "== unit self-tests and fuzz corpora (ctest)"
(cd "$build" && ctest --output-on-failure -j 2)

if command -v docker-compose >/dev/null 2>&1; then
    echo "== compose.yaml"
    docker-compose -f "$root/compose.yaml" config -q
    echo "compose.yaml is valid"
fi

echo "== integration (pytest, real processes)"
cd "$root"
TALLY_BUILD_DIR="$build" DATABASE_URL="$url" \
    /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration "${@:2}"
