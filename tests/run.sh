#!/usr/bin/env bash
#  run.sh BUILD_DIR — every test of Tally against real parts: a private
#  PostgreSQL cluster for this run, the per-class self-tests and the fuzz
#  corpora (ctest), the OpenAPI document against Redocly's recommended rules
#  (redocly.yaml), compose.yaml's validity, then the integration suite
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

echo "== proto/openapi.yaml (redocly lint, redocly.yaml)"
redocly="$root/.tools/node_modules/.bin/redocly"
if [ ! -x "$redocly" ]; then
    echo "the OpenAPI linter is missing: run deploy/bootstrap.sh test" >&2
    exit 1
fi
#  Errors fail the run (the linter's exit code), and so do warnings: the
#  document has none, and a new one is a fault of the declarations.
lint=$(cd "$root" && REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
           "$redocly" lint --config redocly.yaml proto/openapi.yaml 2>&1) || {
    echo "$lint"; echo "proto/openapi.yaml fails the lint" >&2; exit 1; }
echo "$lint"
if grep -q "You have [0-9]* warning" <<<"$lint"; then
    echo "proto/openapi.yaml has lint warnings" >&2
    exit 1
fi

if command -v docker-compose >/dev/null 2>&1; then
    echo "== compose.yaml"
    docker-compose -f "$root/compose.yaml" config -q
    echo "compose.yaml is valid"
fi

echo "== integration (pytest, real processes)"
cd "$root"
TALLY_BUILD_DIR="$build" DATABASE_URL="$url" \
    /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration "${@:2}"
