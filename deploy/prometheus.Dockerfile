# Prometheus for docker-compose.yml's observability profile: its configuration is mounted
# (deploy/prometheus.compose.yml), its samples kept in a volume at /prometheus.
# BASE: the official prom/prometheus image by default; scripts/containers passes its Debian base
# where no registry is reachable, and Debian's prometheus package (the same 2.42) is installed.
ARG BASE=prom/prometheus:v2.42.0
FROM ${BASE}
USER root
RUN command -v prometheus >/dev/null || { apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/lib/prometheus; } \
    && mkdir -p /prometheus && chown -R nobody /prometheus
USER nobody
WORKDIR /prometheus
# Ready: a query answers (Prometheus answers 503 until its write-ahead log is replayed).
HEALTHCHECK --interval=5s --timeout=4s --start-period=30s --retries=10 \
    CMD ["promtool", "query", "instant", "http://127.0.0.1:9090", "vector(1)"]
ENTRYPOINT ["prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
