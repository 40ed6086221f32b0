"""What the operations endpoints answer: traffic per service and per model as time series on
one grid, the slowest recent traces, and each replica with its sidecar."""

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from services.gateway.status.models import InstanceState


class Window(StrEnum):
    """How far back the series go; each has its own step (15 s, 60 s, 360 s: 61 points)."""

    MINUTES_15 = "15m"
    HOUR_1 = "1h"
    HOURS_6 = "6h"


class Service(StrEnum):
    """A service of the stack, by its name (the app id it runs as is the gateway's setting)."""

    GATEWAY = "gateway"
    INGESTION = "ingestion"
    TRAINING = "training"
    REGISTRY = "registry"
    INFERENCE = "inference"
    MONITOR = "monitor"
    NOTIFIER = "notifier"


class Signals(BaseModel):
    """Four numbers that say how a service or a model is doing: as series (one value per time of
    the report's grid, null where there was no traffic to measure) or as current values."""

    rate: list[float | None] = Field(description="requests a second")
    p50_s: list[float | None] = Field(description="median latency, seconds")
    p99_s: list[float | None] = Field(description="99th percentile latency, seconds")
    error_share: list[float | None] = Field(description="share of requests that failed on the server's side (0 to 1)")


class Current(BaseModel):
    """The latest values of the series (null: no traffic lately)."""

    rate: float | None = Field(description="requests a second")
    p50_s: float | None = Field(description="median latency, seconds")
    p99_s: float | None = Field(description="99th percentile latency, seconds")
    error_share: float | None = Field(description="share of requests that failed on the server's side (0 to 1)")


class Availability(BaseModel):
    available: bool = Field(description="the backend answered; when false, `reason` says why and the rest is empty")
    reason: str | None = Field(None, description="why there is nothing to show (not configured, not answering)")


class Grid(Availability):
    window: Window = Field(description="how far back the series go")
    step_s: int = Field(description="seconds between two points of a series")
    times: list[float] = Field(description="the grid: the time of each point of every series, Unix seconds")


class ServiceTraffic(BaseModel):
    service: str = Field(description="the service's name (gateway, inference, ...)")
    app_id: str = Field(description="its Dapr app id in this stack")
    current: Current
    series: Signals


class ServicesReport(Grid):
    """HTTP requests each service answered (health probes left out), errors being 5xx answers."""

    services: list[ServiceTraffic] = Field(
        description="every Python service of the stack (and the notifier when it reports), the gateway first"
    )


class ModelTraffic(BaseModel):
    model: str = Field(description="the model's name")
    version: str = Field(description="the version that answered")
    current: Current
    series: Signals


class ModelsReport(Grid):
    """Predict and infer requests per model version on the inference replicas, errors being
    outcome=failed (the server's fault; a refused request is the client's)."""

    models: list[ModelTraffic] = Field(description="each model version seen in the window, the busiest first")


class SlowTrace(BaseModel):
    trace_id: str = Field(description="the trace's id (hex)")
    operation: str = Field(description="the root span's operation: what the request was")
    started_at: datetime = Field(description="when the request arrived")
    duration_ms: float = Field(description="the whole trace, first span's start to last span's end")
    spans: int = Field(description="how many spans the trace has")
    services: list[str] = Field(description="the services (app ids) its spans come from")
    error: bool = Field(description="a span of it was marked as an error")
    link: str = Field(description="the trace in the trace UI")


class TracesReport(Availability):
    """The slowest requests through the gateway lately, from the trace backend."""

    window: Window = Field(description="how far back the traces were looked for")
    ui_url: str | None = Field(description="the trace UI, when configured")
    traces: list[SlowTrace] = Field(description="the slowest first")


class TraceSpan(BaseModel):
    span_id: str = Field(description="the span's id (hex)")
    parent_id: str | None = Field(description="the span it is part of (null: the trace's root, or a caller not traced)")
    depth: int = Field(description="how many of its ancestors are in the trace (0: a root)")
    service: str = Field(description="the app id of the app or sidecar (daprd) that recorded it")
    operation: str = Field(description="what it did: a route, a sidecar call, a step such as predict")
    start_ms: float = Field(description="when it started, milliseconds after the trace's first span")
    duration_ms: float = Field(description="how long it took, milliseconds")
    error: bool = Field(description="it was marked as failed")
    tags: dict[str, str | int | float | bool] = Field(
        description="a few safe attributes (HTTP method, route and status, model, version, runtime, rows, ...); "
        "never URLs, query strings or headers"
    )


class TraceReport(Availability):
    """One trace's spans, for the console's waterfall."""

    trace_id: str = Field(description="the trace's id (32 hex digits)")
    started_at: datetime | None = Field(description="when its first span started")
    duration_ms: float = Field(description="first span's start to last span's end, milliseconds")
    services: list[str] = Field(description="the app ids its spans come from, in the order they first appear")
    spans: list[TraceSpan] = Field(description="in start order (a parent before its children when they start together)")
    truncated: bool = Field(False, description="the trace had more spans than are shown (the first ones are)")


class Target(BaseModel):
    kind: str = Field(description="app (the service's own metrics) or daprd (its sidecar's)")
    instance: str = Field(description="host:metrics port that Prometheus scrapes")
    up: bool = Field(description="Prometheus' last scrape of it succeeded")


class ReplicaService(BaseModel):
    service: str
    app_id: str
    reachable: bool = Field(description="one of its instances answered /readyz through Dapr")
    runtime_version: str | None = Field(description="its sidecar's Dapr version")
    error: str | None
    instances: list[InstanceState] = Field(
        description="each instance heard from lately, by its heartbeats, which it sends through its own sidecar"
    )
    targets: list[Target] = Field(description="the app's and sidecar's metrics endpoints, as Prometheus last saw them")


class ReplicasReport(BaseModel):
    """Each service, its replicas and their sidecars: GET /api/status's view, and Prometheus' scrapes."""

    ok: bool = Field(description="every service reachable and every instance up (as GET /api/status says)")
    services: list[ReplicaService]
    metrics: Availability = Field(description="whether the scrape targets could be read from Prometheus")
