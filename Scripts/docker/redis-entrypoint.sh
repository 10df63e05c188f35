#!/bin/sh
# Stand-in for the official redis image's entrypoint (test infrastructure): flags alone run
# redis-server; redis-server started as root gets /data made the redis user's and runs as that user.
set -e

case "${1:-}" in
    -*|*.conf) set -- redis-server "$@" ;;
esac

if [ "$1" = "redis-server" ] && [ "$(id -u)" = "0" ]; then
    find . \! -user redis -exec chown redis '{}' +
    exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi

exec "$@"
