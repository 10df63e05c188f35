#!/usr/bin/env bash
# Runs the whole test suite against a private Redis on a free loopback port.
# Usage: Scripts/test.sh [extra `swift test` arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/lib.sh

Scripts/setup.sh

workdir=$(mktemp -d -t sg-test.XXXXXX)
cleanup() {
  stop_redis
  rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(free_port)
start_redis "$workdir" "$port"
export SG_TEST_REDIS_URL="redis://127.0.0.1:$port"
echo "test: Redis at $SG_TEST_REDIS_URL" >&2

swift build --build-tests
status=0
swift test --skip-build "$@" || status=$?
exit $status
