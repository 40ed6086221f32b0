"""The operations page's use cases: traffic per service and per model from Prometheus, the
slowest recent requests from the trace backend, and each replica with its sidecar (the status
service's view beside Prometheus' scrapes). A backend that is not configured or not answering
makes an answer with `available: false` and the reason, never an error. Knows nothing of HTTP
routes."""

import asyncio
import math
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from services.common.errors import Missing
from services.gateway.operations import queries
from services.gateway.operations.backends import BackendUnavailable, Metrics, Series, Traces, TraceSummary
from services.gateway.operations.models import Service, Window
from services.gateway.operations.waterfall import MAX_SPANS, waterfall
from services.gateway.settings import Settings
from services.gateway.status.service import Status

# window -> (seconds, step): 61 points each.
WINDOWS = {Window.MINUTES_15: (900, 15), Window.HOUR_1: (3600, 60), Window.HOURS_6: (21600, 360)}
MIN_RATE_S = 60  # a rate needs two scrapes in its range: a minute covers 12 of the local 5 s, 4 of a usual 15 s
SIGNALS = ("rate", "p50_s", "p99_s", "error_share")
PYTHON_SERVICES = ("gateway", "ingestion", "training", "registry", "inference", "monitor")
MAX_MODELS = 50  # model versions shown, the busiest
# Looked for among the traces that lasted at least this long first: the gateway's sidecar also
# delivers every replica's heartbeat, a short trace every few seconds, which a plain search of
# the latest traces would be full of.
SLOW_FIRST_MS = (100, 10, None)
SEARCHED = 100  # traces asked for per search
TRACE_ID = re.compile(r"^[0-9a-f]{1,32}$")
# The console's own requests (its files; this page's polling, every 15 s): not what the page is there to find.
CONSOLE = ("GET /api/operations/", "GET /console/", "GET /docs", "GET /openapi.json")
NOT_CONFIGURED = {
    "prometheus": "Prometheus is not configured (DAPRML_PROMETHEUS_URL): make up starts it and sets it "
    "unless DAPRML_OBSERVABILITY=off",
    "traces": "The trace backend is not configured (DAPRML_TRACES_URL): make up starts Jaeger and sets it "
    "unless DAPRML_OBSERVABILITY=off",
}


def _value(x: float) -> float | None:
    return None if math.isnan(x) or math.isinf(x) else x


def aligned(series: Series, times: list[float]) -> list[float | None]:
    """The series' values at each time of the grid (None where it has no point, or NaN)."""
    at = {round(t): v for t, v in series.points}
    return [_value(at[round(t)]) if round(t) in at else None for t in times]


def latest(values: list[float | None]) -> float | None:
    """The last value, or the one before when the last scrape is not in yet."""
    for value in reversed(values[-2:]):
        if value is not None:
            return value
    return None


def _group(
    signal_series: dict[str, list[Series]], key: Callable[[dict[str, str]], tuple[str, ...]], times: list[float]
) -> dict[tuple[str, ...], dict[str, list[float | None]]]:
    grouped: dict[tuple[str, ...], dict[str, list[float | None]]] = {}
    for signal, found in signal_series.items():
        for series in found:
            values = aligned(series, times)
            grouped.setdefault(key(series.labels), {s: [None] * len(times) for s in SIGNALS})[signal] = values
    return grouped


def _traffic(signals: dict[str, list[float | None]]) -> dict[str, Any]:
    return {"current": {s: latest(signals[s]) for s in SIGNALS}, "series": signals}


class Operations:
    """Built once in app.py; a backend is None when its URL is not configured."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics | None,
        traces: Traces | None,
        status: Status,
        clock: Callable[[], float] = time.time,
    ):
        self.settings, self.metrics, self.traces, self.status, self.clock = settings, metrics, traces, status, clock

    def _grid(self, window: Window) -> dict[str, Any]:
        span_s, step_s = WINDOWS[window]
        end = math.floor(self.clock() / step_s) * step_s
        times = [float(end - span_s + i * step_s) for i in range(span_s // step_s + 1)]
        return {"window": window, "step_s": step_s, "times": times}

    async def _signals(self, templates: dict[str, str], grid: dict[str, Any]) -> dict[str, list[Series]]:
        assert self.metrics is not None
        times, step_s = grid["times"], grid["step_s"]
        answers = await asyncio.gather(
            *(self.metrics.range(q, times[0], times[-1], step_s) for q in templates.values())
        )
        return dict(zip(templates, answers, strict=True))

    async def services(self, window: Window) -> dict[str, Any]:
        """Rate, p50, p99 and error share of each Python service's HTTP requests over the window."""
        grid = self._grid(window)
        names = {app_id: name for name, app_id in self.settings.app_ids().items()}
        order = [self.settings.app_id, *(a for a in names if a != self.settings.app_id)]
        empty = {**grid, "services": []}
        if self.metrics is None:
            return {**empty, "available": False, "reason": NOT_CONFIGURED["prometheus"]}
        rate_s = max(grid["step_s"], MIN_RATE_S)
        try:
            found = await self._signals(queries.service_signals(list(names), rate_s), grid)
        except BackendUnavailable as exc:
            return {**empty, "available": False, "reason": str(exc)}
        grouped = _group(found, lambda labels: (labels.get("app_id", ""),), grid["times"])
        blank: dict[str, list[float | None]] = {s: [None] * len(grid["times"]) for s in SIGNALS}
        services = [
            {"service": names[a], "app_id": a, **_traffic(grouped.get((a,), blank))}
            for a in order
            if (a,) in grouped or names[a] in PYTHON_SERVICES  # the notifier only if it reports
        ]
        return {**grid, "available": True, "services": services}

    async def models(self, window: Window) -> dict[str, Any]:
        """Rate, p50, p99 and error share of each model version's predictions over the window."""
        grid = self._grid(window)
        empty = {**grid, "models": []}
        if self.metrics is None:
            return {**empty, "available": False, "reason": NOT_CONFIGURED["prometheus"]}
        rate_s = max(grid["step_s"], MIN_RATE_S)
        try:
            found = await self._signals(queries.model_signals(self.settings.inference_app_id, rate_s), grid)
        except BackendUnavailable as exc:
            return {**empty, "available": False, "reason": str(exc)}
        grouped = _group(found, lambda labels: (labels.get("model", ""), labels.get("version", "")), grid["times"])
        models = [{"model": m, "version": v, **_traffic(s)} for (m, v), s in grouped.items()]
        models.sort(key=lambda m: (-(m["current"]["rate"] or 0), m["model"], m["version"]))
        return {**grid, "available": True, "models": models[:MAX_MODELS]}

    async def slowest(
        self, window: Window, limit: int, service: Service | None = None, operation: str | None = None
    ) -> dict[str, Any]:
        """The slowest requests through the gateway in the window, each linked to the trace UI;
        with a service, only those that reached it (searched by its spans, so that slower
        requests elsewhere cannot crowd them out); with an operation (a gateway route), only
        requests to it (searched by the gateway's spans of that name, for the same reason)."""
        # Where a person's browser opens the trace UI: in containers, not where the gateway reads it.
        ui = (self.settings.traces_ui_url or self.settings.traces_url).rstrip("/") or None
        empty: dict[str, Any] = {"window": window, "ui_url": ui, "traces": []}
        if self.traces is None or not self.settings.traces_url:
            return {**empty, "available": False, "reason": NOT_CONFIGURED["traces"]}
        end_us = int(self.clock() * 1_000_000)
        start_us = end_us - WINDOWS[window][0] * 1_000_000
        gateway = self.settings.app_id
        wanted = self.settings.app_ids()[service] if service else None
        searched = gateway if operation or not wanted else wanted
        # Searched by the route, the service is checked here; searched by the service, it is there.
        reached = wanted if operation else None
        found: dict[str, TraceSummary] = {}
        deadline = time.monotonic() + self.settings.operations_timeout_s
        try:
            for min_ms in SLOW_FIRST_MS:
                if found and time.monotonic() > deadline:
                    break  # a slow backend: what the first searches found
                for trace in await self.traces.find(searched, start_us, end_us, SEARCHED, min_ms, operation):
                    # Requests that entered through the gateway: not the heartbeats it receives.
                    console = trace.operation == "GET /" or trace.operation.startswith(CONSOLE)
                    ours = trace.root_service == gateway and not console and (not reached or reached in trace.services)
                    if ours and TRACE_ID.match(trace.trace_id):
                        found[trace.trace_id] = trace
                if len(found) >= limit:
                    break
        except BackendUnavailable as exc:
            if not found:
                return {**empty, "available": False, "reason": str(exc)}
        slowest = sorted(found.values(), key=lambda t: -t.duration_us)[:limit]
        return {
            **empty,
            "available": True,
            "traces": [
                {
                    "trace_id": t.trace_id,
                    "operation": t.operation,
                    "started_at": datetime.fromtimestamp(t.started_us / 1_000_000, UTC),
                    "duration_ms": round(t.duration_us / 1000, 3),
                    "spans": t.spans,
                    "services": t.services,
                    "error": t.error,
                    "link": f"{ui}/trace/{quote(t.trace_id, safe='')}",
                }
                for t in slowest
            ],
        }

    async def trace(self, trace_id: str) -> dict[str, Any]:
        """One trace's spans as a waterfall (trace_id: 32 lowercase hex digits, the route checks)."""
        empty: dict[str, Any] = {
            "trace_id": trace_id,
            "started_at": None,
            "duration_ms": 0.0,
            "services": [],
            "spans": [],
        }
        if self.traces is None or not self.settings.traces_url:
            return {**empty, "available": False, "reason": NOT_CONFIGURED["traces"]}
        try:
            spans = await self.traces.get(trace_id)
        except BackendUnavailable as exc:
            return {**empty, "available": False, "reason": str(exc)}
        if not spans:
            raise Missing(
                f"no trace {trace_id} in the trace backend: it was not recorded, or the backend no longer keeps it"
            )
        rows = waterfall(spans)
        start = min(s.start_us for s in spans)
        end = max(s.start_us + s.duration_us for s in spans)
        return {
            **empty,
            "available": True,
            "started_at": datetime.fromtimestamp(start / 1_000_000, UTC),
            "duration_ms": round((end - start) / 1000, 3),
            "services": list(dict.fromkeys(r["service"] for r in rows)),
            "spans": rows[:MAX_SPANS],
            "truncated": len(rows) > MAX_SPANS,
        }

    async def replicas(self) -> dict[str, Any]:
        """Each service with its instances (heartbeats, GET /api/status) and its scrape targets."""
        report, targets = await asyncio.gather(self.status.report(), self._targets())
        scraped, metrics = targets
        for entry in report["services"]:
            entry["targets"] = scraped.get(entry["app_id"], [])
        return {**report, "metrics": metrics}

    async def _targets(self) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
        if self.metrics is None:
            return {}, {"available": False, "reason": NOT_CONFIGURED["prometheus"]}
        try:
            found = await self.metrics.instant(queries.targets(list(self.settings.app_ids().values())))
        except BackendUnavailable as exc:
            return {}, {"available": False, "reason": str(exc)}
        scraped: dict[str, list[dict[str, Any]]] = {}
        for series in found:
            labels = series.labels
            up = bool(series.points) and series.points[-1][1] == 1
            target = {"kind": labels.get("kind", "?"), "instance": labels.get("instance", "?"), "up": up}
            scraped.setdefault(labels.get("app_id", ""), []).append(target)
        for listed in scraped.values():
            listed.sort(key=lambda t: (t["kind"], t["instance"]))
        return scraped, {"available": True, "reason": None}
