# Redis for the compose stack, its password read from a file (a compose secret) when it starts.
# BASE: the official redis image by default; scripts/containers passes its Debian base where no
# registry is reachable, and Debian's redis-server is installed on it.
ARG BASE=redis:7.4-bookworm
FROM ${BASE}
RUN command -v redis-server >/dev/null || { apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends redis-server >/dev/null \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin; } \
    && mkdir -p /data && chown redis:redis /data
COPY deploy/images/redis-start.sh /usr/local/bin/redis-start
ENV REDIS_PASSWORD_FILE=/run/secrets/redis-password
WORKDIR /data
USER redis
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=10 \
    CMD REDISCLI_AUTH="$(cat "$REDIS_PASSWORD_FILE")" redis-cli ping | grep -q PONG
ENTRYPOINT ["redis-start"]
CMD []
