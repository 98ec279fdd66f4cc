#!/usr/bin/env bash
#  bootstrap.sh — installs whatever Tally needs that this Debian machine
#  lacks, and nothing else. Idempotent: a second run installs nothing.
#  As root it runs apt-get itself (one `apt-get update` first); otherwise
#  it prints the exact command to run.
#    deploy/bootstrap.sh          build + run dependencies
#    deploy/bootstrap.sh test     also what `make test` needs, with the
#                                 OpenAPI linter (@redocly/cli, pinned) and
#                                 the S3-compatible test store (s3rver,
#                                 pinned) from npm into ./.tools
#    deploy/bootstrap.sh bench    also what `make bench` needs
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
redocly_version=1.34.20         #  runs on Debian 12's Node.js 18 and on 20
s3rver_version=3.7.1            #  the upload service's S3 tests (tests/integration/test_uploads_s3.py)

packages=(
    build-essential cmake pkg-config
    libzmq3-dev libczmq-dev libmsgpack-dev libpq-dev libmicrohttpd-dev
    libcurl4-openssl-dev libsodium-dev libjansson-dev libcairo2-dev libcsv-dev
    libvips-dev
    fonts-dejavu-core tzdata
    postgresql postgresql-contrib curl util-linux
)
case "${1:-}" in
    test)  packages+=(python3 python3-pytest python3-requests python3-zmq
                      python3-msgpack python3-aiosmtpd docker-compose
                      poppler-utils python3-numpy python3-flask python3-jwt)
           #  Node.js and npm for the linter: Debian's, unless the machine
           #  already has both (from another source).
           if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
               packages+=(nodejs npm)
           fi ;;
    #  The Flask peer of bench/peer.sh: Debian's Flask, gunicorn, psycopg2;
    #  bench/notify.py: pyzmq and msgpack; the pandas reference of
    #  bench/stores.sh: Debian's pandas and numpy
    bench) packages+=(wrk nginx-light python3 python3-flask gunicorn python3-psycopg2
                      python3-zmq python3-msgpack python3-pandas python3-numpy) ;;
esac

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        echo "Tally needs these Debian packages: ${missing[*]}" >&2
        echo "Run as root:  $cmd" >&2
        exit 1
    fi
    echo "bootstrap: installing ${missing[*]}" >&2
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

#  The OpenAPI linter that tests/run.sh runs, in the project's own folder
#  (.tools, not committed), at the pinned version.
if [ "${1:-}" = test ]; then
    installed=$(node -p "require('$root/.tools/node_modules/@redocly/cli/package.json').version" \
                2>/dev/null || true)
    if [ "$installed" != "$redocly_version" ]; then
        echo "bootstrap: installing @redocly/cli@$redocly_version into $root/.tools" >&2
        npm install --prefix "$root/.tools" --no-audit --no-fund --loglevel=error \
            "@redocly/cli@$redocly_version" >&2
    fi
    installed=$(node -p "require('$root/.tools/node_modules/s3rver/package.json').version" \
                2>/dev/null || true)
    if [ "$installed" != "$s3rver_version" ]; then
        echo "bootstrap: installing s3rver@$s3rver_version into $root/.tools" >&2
        npm install --prefix "$root/.tools" --no-audit --no-fund --loglevel=error \
            "s3rver@$s3rver_version" >&2
    fi
fi
