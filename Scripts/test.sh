#!/usr/bin/env bash
# Runs the whole test suite against a private Redis on a free loopback port, then the deployment's
# checks: the static ones (Scripts/deploy-lint.sh) and the image and compose pool built and run for
# real (Scripts/docker-test.sh).
# Usage: Scripts/test.sh [extra `swift test` arguments]
# With arguments (a --filter, say) only `swift test` runs, and the image too with SG_DOCKER_TEST=1;
# SG_DOCKER_TEST=0 leaves the image out of a full run.
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/lib.sh
test_started=$(date +%s)

Scripts/setup.sh

extra_cleanup() { stop_tls_redis; }
start_private_redis test
export SG_TEST_REDIS_URL="$url"
echo "test: Redis at $SG_TEST_REDIS_URL" >&2

# The shipped alert rules: syntax, then their unit tests (Docker/prometheus/alerts.test.yml).
# Debian's prometheus package ships promtool; the server it also installs is not started.
if ! command -v promtool >/dev/null 2>&1; then
  echo "test: installing promtool (Debian's prometheus)" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
    || { DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq >/dev/null && \
         DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
fi

# A second private Redis that speaks only TLS, with a throw-away CA; TLS tests fail without it.
make_test_certs "$workdir/tls"
tls_port=$(free_port)
start_tls_redis "$workdir/tls" "$tls_port" server
export SG_TEST_TLS_REDIS_URL="rediss://127.0.0.1:$tls_port"
export SG_TEST_TLS_DIR="$workdir/tls"
echo "test: TLS Redis at $SG_TEST_TLS_REDIS_URL (certificates in $SG_TEST_TLS_DIR)" >&2

status=0
promtool check config Docker/prometheus/prometheus.yml >&2 || status=$?
(cd Docker/prometheus && promtool test rules alerts.test.yml) >&2 || status=$?
[ $status -eq 0 ] || echo "test: the alert rules failed their checks (above)" >&2

# Python libraries some tests use (Prometheus's text parser, OpenTelemetry's protobufs, redis-py for
# the producer snippet), in a venv of
# their own under .build (ignored by git), made once and reused.
venv=".build/test-venv"
requirements="prometheus-client==0.26.0 opentelemetry-proto==1.45.2 redis==8.1.0"
if [ "$(cat "$venv/requirements" 2>/dev/null)" != "$requirements" ]; then
  echo "test: preparing $venv ($requirements)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check $requirements
  echo "$requirements" >"$venv/requirements"
fi
export SG_TEST_PYTHON="$PWD/$venv/bin/python"

swift build --build-tests
swift test --skip-build "$@" || status=$?
# The staging recipe end to end (real processes, its own two Redis servers); skipped when only
# some tests were asked for.
if [ $# -eq 0 ]; then
  Scripts/staging-test.sh || status=$?
  # The Python producer snippet against the real worker: the partition function agrees across languages.
  Scripts/producer-test.sh "$SG_TEST_REDIS_URL" "$(swift build --show-bin-path)" || status=$?
fi

# The deployment's checks run on every full run: the static ones, then the image built from the
# unchanged Dockerfile and the compose pool run through its failure modes (Scripts/docker-test.sh,
# which says so in one line and skips where no container engine can run). SG_DOCKER_TEST=0 leaves
# the image out; SG_DOCKER_TEST=1 runs it beside a --filter too.
if [ $# -eq 0 ]; then
  Scripts/deploy-lint.sh || status=1
fi
if [ "${SG_DOCKER_TEST:-}" = 0 ]; then
  echo "test: the image and compose pool left out (SG_DOCKER_TEST=0)" >&2
elif [ $# -eq 0 ] || [ "${SG_DOCKER_TEST:-}" = 1 ]; then
  Scripts/docker-test.sh || status=1
fi
echo "test: finished in $(( $(date +%s) - test_started )) s, exit status $status" >&2
exit $status
