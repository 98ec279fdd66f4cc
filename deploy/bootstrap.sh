#!/usr/bin/env bash
#  bootstrap.sh — installs whatever Tally needs that this Debian machine
#  lacks, and nothing else. Idempotent: a second run installs nothing.
#  As root it runs apt-get itself (one `apt-get update` first); otherwise
#  it prints the exact command to run.
#    deploy/bootstrap.sh          build + run dependencies
#    deploy/bootstrap.sh test     also what `make test` needs
#    deploy/bootstrap.sh bench    also what `make bench` needs
set -euo pipefail

packages=(
    build-essential cmake pkg-config
    libzmq3-dev libczmq-dev libmsgpack-dev libpq-dev libmicrohttpd-dev
    libcurl4-openssl-dev libsodium-dev libjansson-dev libcairo2-dev libcsv-dev
    fonts-dejavu-core tzdata
    postgresql postgresql-contrib curl util-linux
)
case "${1:-}" in
    test)  packages+=(python3 python3-pytest python3-requests python3-zmq
                      python3-msgpack python3-aiosmtpd docker-compose
                      poppler-utils) ;;
    bench) packages+=(wrk nginx-light python3) ;;
esac

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "Tally needs these Debian packages: ${missing[*]}" >&2
    echo "Run as root:  $cmd" >&2
    exit 1
fi
echo "bootstrap: installing ${missing[*]}" >&2
apt-get update -q >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
