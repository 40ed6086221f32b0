# Jaeger v2 for docker-compose.yml's observability profile: OTLP in from the apps and their
# sidecars, traces in memory, the query API and UI on 16686; its configuration is mounted
# (deploy/compose/jaeger.yaml, the local stack's, on the container's interfaces).
#
# BASE is the image it runs on (Debian slim by default, with a shell for the health check);
# JAEGER the image the program comes from: the official jaegertracing/jaeger by default;
# scripts/containers passes an image of the binary scripts/install-dapr built on this machine
# where no registry is reachable (nothing is downloaded).
ARG BASE=debian:bookworm-slim
ARG JAEGER=jaegertracing/jaeger:2.12.0

FROM ${JAEGER} AS jaeger

FROM ${BASE}
COPY --from=jaeger /cmd/jaeger/jaeger-linux /usr/local/bin/jaeger
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /tmp --shell /usr/sbin/nologin jaeger
USER jaeger
# Healthy: its health extension answers (bash's /dev/tcp: the base has no HTTP client).
HEALTHCHECK --interval=5s --timeout=4s --start-period=30s --retries=10 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/13133 && printf 'GET /status HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q ' 200 ' <&3"]
ENTRYPOINT ["jaeger"]
CMD ["--config=file:/etc/jaeger/config.yaml"]
