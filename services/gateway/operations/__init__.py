"""The operations page's data: traffic per service and per model (Prometheus), the slowest recent
requests and one trace as a waterfall (the trace backend), and each replica with its sidecar,
through fixed gateway endpoints for readers (api.py). No query is passed through: service.py
builds each from the templates of queries.py."""
