"""Prometheus metrics of one service: every app counts its requests, by route template, method
and status, and times them; a service adds its own (inference: per model and version) to the
same registry. Served in Prometheus' text format at /metrics on a port of the app's own
(`metrics_port`), never on the app port: the gateway's app port is the public door, and the
others answer only their sidecar.

Names follow Prometheus' conventions, with the `daprml_` prefix: `_total` for counters,
`_seconds` for durations; docs/operations.md lists each and its KServe/MLServer counterpart.
"""

import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

UNMATCHED = "unmatched"
"""The route label of a request no route matched: the raw path is never a label (a client
could make one series per path it invents)."""
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Seconds, from a compiled prediction (under a millisecond) to a big upload's part."""


class HttpMetrics:
    """ASGI middleware: counts and times each HTTP request once it is answered (or fails)."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry):
        self.app = app
        self.requests = Counter(
            "daprml_http_requests",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "daprml_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by route template and method",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500  # what an app that raised answers

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            method = scope["method"]
            self.requests.labels(route, method, str(status)).inc()
            self.duration.labels(route, method).observe(time.perf_counter() - started)


UNKNOWN_TOPIC = "unknown"
"""The topic label of a dead letter that names no topic of this deployment's (a message on the
dead-letter topic is whatever reached it: its topic is not a label until it is one we know)."""


class EventMetrics:
    """Events of one app: published (by topic), delivered to its handlers (by topic and
    outcome: success, dropped, retry) and, for the app that keeps dead letters, dead-lettered.
    Topic labels are the deployment's fixed topic names, without its prefix."""

    def __init__(self, registry: CollectorRegistry):
        self.published = Counter(
            "daprml_events_published",
            "Events the sidecar accepted for publishing, by topic",
            ["topic"],
            registry=registry,
        )
        self.publish_failures = Counter(
            "daprml_events_publish_failures",
            "Events the sidecar did not accept (an outbox publishes them again later), by topic",
            ["topic"],
            registry=registry,
        )
        self.delivered = Counter(
            "daprml_events_delivered",
            "Event deliveries to this app's handlers by topic and outcome: success, dropped (invalid: "
            "dead-lettered at once), retry (failed: delivered again, then dead-lettered)",
            ["topic", "outcome"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            "daprml_events_dead_lettered",
            "Messages of the dead-letter topic received by the app that keeps them (the gateway), by the "
            "topic they came from",
            ["topic"],
            registry=registry,
        )

    def sent(self, topic: str, count: int = 1) -> None:
        self.published.labels(topic).inc(count)

    def not_sent(self, topic: str, count: int = 1) -> None:
        self.publish_failures.labels(topic).inc(count)

    def handled(self, topic: str, status: str) -> None:
        """status: what the delivery answered the sidecar (SUCCESS, DROP, RETRY)."""
        self.delivered.labels(topic, _OUTCOMES.get(status, status.lower())).inc()

    def dead_letter(self, topic: str | None, known: Iterable[str], prefix: str = "") -> None:
        """topic: as the dead letter names it (with the deployment's prefix), if it does."""
        ours = {f"{prefix}{t}": t for t in known}
        self.dead_lettered.labels(ours.get(topic or "", UNKNOWN_TOPIC)).inc()


_OUTCOMES = {"SUCCESS": "success", "DROP": "dropped", "RETRY": "retry"}


def serve(registry: CollectorRegistry, host: str, port: int) -> None:
    """Serves the registry at http://host:port/metrics from a thread of its own (prometheus
    client's server: small, and apart from the app's event loop, so a busy app still answers)."""
    start_http_server(port, addr=host, registry=registry)
