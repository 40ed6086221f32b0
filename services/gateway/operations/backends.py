"""The two backends the operations page reads, as ports: Prometheus (metrics) and the trace
backend (Jaeger's query API). They are operations tools beside the stack, not Dapr building
blocks, so the gateway reads them over HTTP itself (http_backends.py); tests hand in fakes."""

from dataclasses import dataclass, field
from typing import Protocol


class BackendUnavailable(Exception):
    """The backend did not answer, or not with what was asked; the message says so for people."""


@dataclass(frozen=True)
class Series:
    """One series of a query's answer: its labels, and (Unix seconds, value) points in time order."""

    labels: dict[str, str]
    points: list[tuple[float, float]]


@dataclass(frozen=True)
class TraceSummary:
    """One trace, as much of it as the page shows."""

    trace_id: str
    operation: str  # the root span's
    root_service: str
    started_us: int  # Unix microseconds
    duration_us: int
    spans: int
    services: list[str] = field(default_factory=list)
    error: bool = False


@dataclass(frozen=True)
class Span:
    """One span of a trace, as the trace backend stored it (tags unfiltered: the service keeps a few)."""

    span_id: str
    parent_id: str | None  # the span it is a child of (possibly not in the trace: an untraced caller's)
    service: str  # the process's service name: the app id, for the apps and their sidecars alike
    operation: str
    start_us: int  # Unix microseconds
    duration_us: int
    tags: dict[str, object] = field(default_factory=dict)


class Metrics(Protocol):
    async def range(self, query: str, start: float, end: float, step_s: int) -> list[Series]:
        """The query evaluated at start, start + step, ... end (PromQL, built by queries.py)."""
        ...

    async def instant(self, query: str) -> list[Series]:
        """The query evaluated now; each series has one point."""
        ...


class Traces(Protocol):
    async def find(
        self,
        service: str,
        start_us: int,
        end_us: int,
        limit: int,
        min_duration_ms: int | None,
        operation: str | None = None,
    ) -> list[TraceSummary]:
        """Up to `limit` traces with a span of `service` (named `operation`, when given) that
        started in the interval (and lasted at least min_duration_ms, when given)."""
        ...

    async def get(self, trace_id: str) -> list[Span] | None:
        """Every span of the trace (None: the backend has no such trace)."""
        ...
