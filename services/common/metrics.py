"""Prometheus metrics of one service: every app counts its requests, by route template, method
and status, and times them; a service adds its own (inference: per model and version) to the
same registry. Served in Prometheus' text format at /metrics on a port of the app's own
(`metrics_port`), never on the app port: the gateway's app port is the public door, and the
others answer only their sidecar.

Names follow Prometheus' conventions, with the `daprml_` prefix: `_total` for counters,
`_seconds` for durations; docs/operations.md lists each and its KServe/MLServer counterpart.
"""

import time
from collections.abc import Awaitable, Callable, MutableMapping
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


def serve(registry: CollectorRegistry, host: str, port: int) -> None:
    """Serves the registry at http://host:port/metrics from a thread of its own (prometheus
    client's server: small, and apart from the app's event loop, so a busy app still answers)."""
    start_http_server(port, addr=host, registry=registry)
