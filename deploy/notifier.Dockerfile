# The notifier (services/notifier, Node.js 20, no npm dependencies): its own image, as the
# Python services share deploy/Dockerfile. It reads the events' JSON schemas that the Python
# events module writes (services/common/events.schema.json), at the same relative path as in
# the repository.
#
# BASE is the image it runs on, NODE the image its node binary comes from: Debian slim and the
# official node image by default; scripts/containers passes its debootstrap base and an image
# holding this machine's node where no registry is reachable.
ARG BASE=debian:bookworm-slim
ARG NODE=node:20-bookworm-slim

FROM ${NODE} AS node

FROM ${BASE}
COPY --from=node /usr/local/bin/node /usr/local/bin/node
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /tmp --shell /usr/sbin/nologin daprml
WORKDIR /app
COPY services/common/events.schema.json services/common/
COPY services/notifier/ services/notifier/
ENV NODE_ENV=production HOME=/tmp
USER daprml
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.APP_PORT || 8005) + '/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# As dapr.yaml runs it (tests/unit/deploy/test_compose.py compares them). Its sidecar, in another
# container in compose, is DAPRML_DAPR_HOST (127.0.0.1 by default: a Kubernetes pod's).
CMD ["node", "services/notifier/server.js"]
