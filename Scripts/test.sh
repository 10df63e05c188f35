#!/usr/bin/env bash
# Runs the whole test suite against a private Redis on a free loopback port.
# Usage: Scripts/test.sh [extra `swift test` arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/lib.sh

Scripts/setup.sh

start_private_redis test
export SG_TEST_REDIS_URL="$url"
echo "test: Redis at $SG_TEST_REDIS_URL" >&2

swift build --build-tests
status=0
swift test --skip-build "$@" || status=$?
# The staging recipe end to end (real processes, its own two Redis servers); skipped when only
# some tests were asked for.
if [ $# -eq 0 ]; then
  Scripts/staging-test.sh || status=$?
fi
exit $status
