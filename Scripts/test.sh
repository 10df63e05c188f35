#!/usr/bin/env bash
# Runs the whole test suite against a private Redis on a free loopback port, then the deployment's
# checks: the static ones (Scripts/deploy-lint.sh) and the image and compose pool built and run for
# real (Scripts/docker-test.sh).
# Usage: Scripts/test.sh [extra `swift test` arguments]
# With arguments (a --filter, say) only `swift test` runs; SG_DOCKER_TEST=1 runs the deployment's
# checks as well, SG_DOCKER_TEST=0 leaves them out of a full run.
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/lib.sh
test_started=$(date +%s)

Scripts/setup.sh

start_private_redis test
export SG_TEST_REDIS_URL="$url"
echo "test: Redis at $SG_TEST_REDIS_URL" >&2

swift build --build-tests
status=0
swift test --skip-build "$@" || status=$?

deployment=${SG_DOCKER_TEST:-}
if [ -z "$deployment" ]; then
  if [ $# -eq 0 ]; then deployment=1; else deployment=0; fi
fi
if [ "$deployment" = 1 ]; then
  Scripts/deploy-lint.sh || status=1
  Scripts/docker-test.sh || status=1
else
  echo "test: deployment checks left out (arguments given or SG_DOCKER_TEST=0)" >&2
fi
echo "test: finished in $(( $(date +%s) - test_started )) s, exit status $status" >&2
exit $status
