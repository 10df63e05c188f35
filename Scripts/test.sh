#!/usr/bin/env bash
# Runs the whole test suite against a private Redis on a free loopback port.
# Usage: Scripts/test.sh [extra `swift test` arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/lib.sh

Scripts/setup.sh

extra_cleanup() { stop_tls_redis; }
start_private_redis test
export SG_TEST_REDIS_URL="$url"
echo "test: Redis at $SG_TEST_REDIS_URL" >&2

# A second private Redis that speaks only TLS, with a throw-away CA; TLS tests fail without it.
make_test_certs "$workdir/tls"
tls_port=$(free_port)
start_tls_redis "$workdir/tls" "$tls_port" server
export SG_TEST_TLS_REDIS_URL="rediss://127.0.0.1:$tls_port"
export SG_TEST_TLS_DIR="$workdir/tls"
echo "test: TLS Redis at $SG_TEST_TLS_REDIS_URL (certificates in $SG_TEST_TLS_DIR)" >&2

swift build --build-tests
status=0
swift test --skip-build "$@" || status=$?
exit $status
