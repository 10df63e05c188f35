# Test infrastructure, not product: a stand-in for the official redis:7 image, for a machine that
# cannot reach a registry. Debian bookworm's redis-server (7.0), with an entrypoint that behaves as
# the official one does as far as Docker/docker-compose.yml relies on it.
FROM debian:bookworm-slim

RUN export DEBIAN_FRONTEND=noninteractive \
    && apt-get update \
    && apt-get install -y --no-install-recommends redis-server redis-tools \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir /data \
    && chown redis:redis /data

COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /data
WORKDIR /data
EXPOSE 6379
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
