# The notifier (services/notifier, Node.js, no npm dependencies): its own image, as the Python
# services share deploy/Dockerfile. It reads the events' JSON schemas that the Python events
# module writes (services/common/events.schema.json), at the same relative path as in the repo.
#   docker build -f deploy/notifier.Dockerfile -t daprml-notifier .
FROM node:20-slim
ENV NODE_ENV=production
WORKDIR /app
COPY services/common/events.schema.json services/common/
COPY services/notifier/ services/notifier/
USER node
# As dapr.yaml runs it (tests/unit/deploy/test_compose.py compares them).
CMD ["node", "services/notifier/server.js"]
