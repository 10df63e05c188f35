#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build and test: hiredis, OpenSSL (the client's TLS,
# and the tests' throw-away certificates), Redis server and tools.
# Idempotent and silent when everything is already present.
set -euo pipefail

need=()
for pkg in libhiredis-dev libssl-dev openssl redis-server redis-tools pkg-config; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done

if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >/dev/null
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! command -v swift >/dev/null 2>&1 && [ ! -x /opt/swift/usr/bin/swift ]; then
  echo "setup: no Swift toolchain found (expected 'swift' on PATH or /opt/swift); install Swift 6.x" >&2
  exit 1
fi
