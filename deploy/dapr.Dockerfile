# The Dapr runtime's programs, one image each (PROGRAM: daprd, placement, scheduler or sentry),
# on a base with a shell for the entry and health scripts (the official images have none).
#
# BASE is the image they run on (Debian slim by default); DAPR the image the program comes from:
# the official daprio/dapr, which holds all of them at /, by default; scripts/containers passes
# an image of the binaries scripts/install-dapr built on this machine where no registry is
# reachable (nothing is downloaded).
ARG BASE=debian:bookworm-slim
ARG DAPR=daprio/dapr:1.18.2

FROM ${DAPR} AS dapr

FROM ${BASE}
ARG PROGRAM=daprd
COPY --from=dapr /${PROGRAM} /usr/local/bin/${PROGRAM}
COPY deploy/images/dapr-entry.sh /usr/local/bin/dapr-entry
COPY deploy/images/dapr-health.sh /usr/local/bin/dapr-health
# Folders a named volume is mounted on start owned by the user (a new volume copies that):
# daprd's working folder (name resolution's database, the blobs), sentry's issuer and trust
# anchors, the scheduler's etcd.
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /tmp --shell /usr/sbin/nologin dapr \
    && mkdir -p /workspace/.data /var/lib/dapr/trust /var/lib/dapr/sentry /var/lib/dapr/scheduler \
    && chown -R dapr:dapr /workspace /var/lib/dapr
ENV DAPR_PROGRAM=${PROGRAM} HOME=/tmp
WORKDIR /workspace
USER dapr
HEALTHCHECK --interval=5s --timeout=4s --start-period=30s --retries=6 CMD ["dapr-health"]
ENTRYPOINT ["dapr-entry"]
