"""The service kit: a service is a settings class, its ports, a few routers, a map of event
handlers and its background jobs, declared in one ServiceSpec; build_app makes the FastAPI app.

Every service gets the same health routes, the same error mapping (client errors with their
status, unavailable infrastructure as 503 in words a user can act on, anything else as a 500
that names the service and keeps the details in its log) and the same lifespan.
"""

import asyncio
import logging
import math
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException

from services.common import dapr_adapters, metrics, tracing
from services.common.allow import CompleteAllow
from services.common.deps import ProbeDep, SettingsDep
from services.common.door import DoorSettings, HeaderLimit, server_options
from services.common.errors import ClientError
from services.common.events import EventHandler, EventType, InstanceHeartbeat
from services.common.metrics import EventMetrics, HttpMetrics
from services.common.middleware import OPEN_PATHS, AppToken, RequestIds, WithRequestId, carries_app_token
from services.common.oip import ProtocolRoute
from services.common.ports import ConcurrencyConflict, JobHandler, SidecarPorts, SidecarProbe, SidecarUnavailable
from services.common.settings import ServiceSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Periodic:
    """A job the service runs every `interval_s` seconds for its lifetime, first at start-up.
    A failing run is logged and the next one comes as planned. With `until_done`, the job runs
    only until it first succeeds (start-up work that needs the sidecar, which may come up
    after the app)."""

    name: str
    interval_s: float
    job: Callable[[], Awaitable[None]]
    until_done: bool = False

    async def run_forever(self) -> None:
        while True:
            try:
                await self.job()
                if self.until_done:
                    log.info("%s done", self.name)
                    return
            except (SidecarUnavailable, ConcurrencyConflict) as exc:  # expected while the sidecar starts: no traceback
                log.warning("%s failed, next try in %.0fs: %s", self.name, self.interval_s, exc)
            except Exception as exc:
                log.warning("%s failed, next try in %.0fs: %s", self.name, self.interval_s, exc, exc_info=True)
            await asyncio.sleep(self.interval_s)


@dataclass
class ServiceSpec:
    """Everything that makes one service, declared."""

    title: str
    settings: ServiceSettings
    ports: SidecarPorts
    routers: Sequence[APIRouter] = ()
    subscriptions: Mapping[EventType, EventHandler] = field(default_factory=dict)
    """Each event type this service consumes, and the use case that handles it. One replica
    of the service receives each event (a competing consumer). A handler that raises
    InvalidEvent drops the event, one that raises anything else has it retried; either way it
    ends in the dead-letter topic if it does not succeed (see dapr_adapters.deliver)."""
    every_replica: Mapping[EventType, EventHandler] = field(default_factory=dict)
    """Event types each replica must receive itself (to update what it holds in memory),
    through the pub/sub component `settings.replica_pubsub`."""
    dead_letters: Callable[[bytes], Awaitable[None]] | None = None
    """For the one service that keeps the deployment's dead letters (the gateway): receives each
    message of the dead-letter topic, where every subscription above sends what its handler
    drops or keeps failing past the delivery retries."""
    background: Sequence[Periodic] = ()
    jobs: Mapping[str, JobHandler] = field(default_factory=dict)
    """Dapr Jobs this service schedules (its `jobs` port), by kind: when the scheduler triggers
    the job `<kind>.<key>`, jobs[kind](key, data) handles it (the route POST /job/<name>, which
    the sidecar calls). Unlike `background`, a job lives in the scheduler: it outlives this
    process and fires on one replica, not on each."""
    metrics: CollectorRegistry | None = None
    """The registry of the service's own metrics, when it has some; the kit adds its HTTP ones."""
    services: Mapping[type, Any] = field(default_factory=dict)
    """The service objects (use cases) its routes call, each under its type, built once in app.py.
    A route receives one through an alias of its deps module:
    `JobsDep = Annotated[JobService, depends_on(JobService)]`."""
    closing: Sequence[Callable[[], Awaitable[None]]] = ()
    """What to close at shutdown besides the ports (a worker pool, say)."""
    liveness: Sequence[Callable[[], str | None]] = ()
    """Checks that the service can do its job, each None when it can or else why not (a broken
    worker pool, say). /healthz fails while any says why, and the supervisor restarts an app
    whose /healthz keeps failing. Never the sidecar: /readyz says whether that answers."""


health = APIRouter(tags=["health"])


@health.get("/healthz")
async def healthz(request: Request, settings: SettingsDep) -> JSONResponse:
    """Live: the process answers (its event loop runs) and each of its liveness checks passes."""
    problems = [why for check in request.app.state.liveness if (why := check()) is not None]
    if problems:
        return JSONResponse({"live": False, "app_id": settings.app_id, "problems": problems}, status_code=503)
    return JSONResponse({"live": True, "app_id": settings.app_id})


async def _shows_details(request: Request, settings: ServiceSettings) -> bool:
    """Whether /readyz may tell this caller more than ready or not: a call with the app token
    (the sidecar's: the gateway's status asks every service through Dapr), or one the app's own
    `readiness_details` check admits (the gateway's: a valid API key). An app given no token and
    no check keeps nothing from anyone (as every route of it is open then)."""
    token = settings.app_api_token
    if token is not None and carries_app_token(request.scope, token.get_secret_value()):
        return True
    check = getattr(request.app.state, "readiness_details", None)
    if check is not None:
        return bool(await check(request))
    return token is None


@health.get("/readyz")
async def readyz(request: Request, settings: SettingsDep, probe: ProbeDep) -> JSONResponse:
    """Ready only when this service's sidecar answers /v1.0/healthz/outbound. Everyone learns
    ready or not (the stack's readiness check and probes read the status code); why not, the
    sidecar's version and its components only a caller allowed to (_shows_details)."""
    healthy = await probe.healthy()
    if not await _shows_details(request, settings):
        return JSONResponse({"ready": healthy}, status_code=200 if healthy else 503)
    if not healthy:
        return JSONResponse(
            status_code=503,
            content={
                "ready": False,
                "app_id": settings.app_id,
                "reason": f"sidecar on port {settings.dapr_http_port} does not answer /v1.0/healthz/outbound",
            },
        )
    info = await probe.info()
    return JSONResponse(
        {
            "ready": True,
            "app_id": settings.app_id,
            "runtime_version": info.runtime_version,
            "components": sorted(f"{c.get('name')} ({c.get('type')})" for c in info.components),
        }
    )


def _finite(value: Any) -> Any:
    """Infinity and NaN as text: Python's JSON reader takes them, JSON cannot carry them back."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _handlers(app_id: str) -> dict[type[Exception], Callable[[Request, Any], Awaitable[Response]]]:
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own 422, except that an echoed Infinity would fail to render (as a 500).
        return JSONResponse({"detail": _finite(jsonable_encoder(exc.errors()))}, status_code=422)

    async def client_error(_: Request, exc: ClientError) -> JSONResponse:
        return JSONResponse({"detail": str(exc), **exc.details}, status_code=exc.status, headers=exc.headers)

    async def conflict(request: Request, exc: ConcurrencyConflict) -> JSONResponse:
        log.info("%s %s: conflict: %s", request.method, request.url.path, exc)
        return JSONResponse(
            {"detail": "the data changed while this request was handled; send it again"}, status_code=409
        )

    async def unavailable(request: Request, exc: SidecarUnavailable) -> JSONResponse:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        return JSONResponse(
            {"detail": f"{exc.public}; try again in a few seconds"}, status_code=503, headers={"retry-after": "5"}
        )

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse(
            {"detail": f"{app_id} failed to handle this request; its log has the details"}, status_code=500
        )

    async def http_error(request: Request, exc: HTTPException) -> Response:
        # FastAPI raises some of its own (a body that does not parse) outside the route's handler,
        # where ProtocolRoute cannot turn them into the protocol's shape: done here instead.
        if isinstance(request.scope.get("route"), ProtocolRoute):
            return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)
        return await http_exception_handler(request, exc)

    return {
        HTTPException: http_error,
        RequestValidationError: invalid,
        ClientError: client_error,
        ConcurrencyConflict: conflict,
        SidecarUnavailable: unavailable,
        Exception: unexpected,
    }


LEAVE_TIMEOUT_S = 1.0
"""How long the announcement that an instance leaves may take, at shutdown. It goes through the
sidecar, which the same stop may have ended first: locally its port then refuses at once, but in
containers (compose stops an app and its sidecar together) a gRPC call to a sidecar whose
container is gone waits on a host that no longer exists, with no deadline. Unbounded, it held
the app past the engine's 10 s grace, to be killed."""


class Heartbeat:
    """Announces this instance through its sidecar every interval (so each gateway replica can
    list it, and tell when it or its sidecar stops), and that it leaves when it stops."""

    def __init__(self, settings: ServiceSettings, probe: SidecarProbe):
        self.probe = probe
        now = datetime.now(UTC)
        # Stable across restarts of one replica: its host and its sidecar's port.
        self.beat = InstanceHeartbeat(
            app_id=settings.app_id,
            instance=f"{socket.gethostname()}:{settings.dapr_http_port}",
            started_at=now,
            at=now,
            interval_s=settings.heartbeat_s or 1,
        )

    def periodic(self) -> Periodic:
        return Periodic("heartbeat", self.beat.interval_s, self._send)

    async def _send(self, leaving: bool = False) -> None:
        # Never sampled, by this app nor its sidecar (which follows the flag): a heartbeat's trace
        # every few seconds from every instance would crowd out the traces worth keeping.
        with tracing.unsampled():
            await self.probe.announce(self.beat.model_copy(update={"at": datetime.now(UTC), "leaving": leaving}))

    async def leave(self, timeout_s: float = LEAVE_TIMEOUT_S) -> None:
        """Best effort, within the timeout: its heartbeats stop anyway, and the gateways forget it."""
        try:
            await asyncio.wait_for(self._send(leaving=True), timeout_s)
        except SidecarUnavailable as exc:
            log.info("could not announce leaving: %s", exc)
        except TimeoutError:
            log.info("could not announce leaving: the sidecar did not answer within %.1f s", timeout_s)


NO_FASTAPI_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False, "auto_configure": False}
"""FastAPI's own telemetry, off (see build_app)."""


def build_app(spec: ServiceSpec) -> FastAPI:
    """The FastAPI app of one service. Its ports are Dapr-backed in production and in-memory
    fakes in tests; their close() runs at shutdown."""
    heartbeat = Heartbeat(spec.settings, spec.ports.probe) if spec.settings.heartbeat_s > 0 else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        background = [*spec.background, *([heartbeat.periodic()] if heartbeat else [])]
        tasks = [asyncio.create_task(job.run_forever(), name=job.name) for job in background]
        yield
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if heartbeat:
            await heartbeat.leave()
        for close in spec.closing:
            await close()
        await spec.ports.close()
        await asyncio.to_thread(tracing.flush)  # the spans of the last requests, within a few seconds

    # FastAPI's own telemetry (0.165: spans, metrics and logs through the global OpenTelemetry
    # providers, on as soon as one is set) is off: ServerSpans traces each request once, and
    # only the sidecar's trace context is trusted at the public door (FastAPI's trusts any
    # client's); HttpMetrics counts requests.
    app = FastAPI(title=spec.title, lifespan=lifespan, telemetry=NO_FASTAPI_TELEMETRY)
    app.state.settings, app.state.ports = spec.settings, spec.ports
    app.state.services = dict(spec.services)
    app.state.liveness = spec.liveness
    app.state.metrics = spec.metrics or CollectorRegistry()
    events_counted = EventMetrics(app.state.metrics)
    dapr_adapters.count_published(spec.ports, events_counted)
    app.include_router(health)
    for router in spec.routers:
        app.include_router(router)
    if spec.subscriptions or spec.every_replica or spec.dead_letters:
        dapr_adapters.declare_subscriptions(
            app, spec.settings, spec.subscriptions, spec.every_replica, spec.dead_letters, events_counted
        )
    if spec.jobs:
        dapr_adapters.declare_jobs(app, spec.settings, spec.jobs)
    for error, handler in _handlers(spec.settings.app_id).items():
        app.add_exception_handler(error, handler)
    token = spec.settings.app_api_token
    if spec.settings.require_app_token and token is not None:
        app.add_middleware(AppToken, token=token.get_secret_value())
    app.add_middleware(CompleteAllow)
    app.add_middleware(HttpMetrics, registry=app.state.metrics)  # outside: times refusals too
    tracing.setup(spec.settings.app_id, spec.settings.port)
    app.add_middleware(tracing.ServerSpans, trusts=_trusted_traces(spec.settings), unsampled=OPEN_PATHS)
    app.add_middleware(RequestIds)  # added last: outermost, so a refused request has an id too
    return app


def _trusted_traces(settings: ServiceSettings) -> Callable[[tracing.Scope], bool] | None:
    """Whose trace context an app continues. Behind the door, anyone's: only the sidecar reaches
    the app (the app token). At the public door (the gateway), only its sidecar's, which carries
    the app token (event deliveries, /internal/...): a client's traceparent is ignored and its
    request starts a trace of its own, so that no client can join or forge another's trace."""
    if not isinstance(settings, DoorSettings):
        return None
    token = settings.app_api_token
    if token is None:
        return lambda _scope: False
    secret = token.get_secret_value()
    return lambda scope: carries_app_token(scope, secret)


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s trace=%(trace_id)s]: %(message)s"
"""Every line: the request id and the trace id it concerns ('-' outside one; see WithRequestId)."""

SIDECAR_KEEP_ALIVE_S = 120
"""How long an app keeps an idle connection from its sidecar: longer than the sidecar does."""


def serve(create_app: Callable[[Any], FastAPI], settings_type: type[ServiceSettings]) -> None:
    """The process entry point of a service: settings from the environment, then the app."""
    handler = logging.StreamHandler()
    handler.addFilter(WithRequestId())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    settings = settings_type.load()
    app: Any = create_app(settings)
    registry = app.state.metrics
    # Behind the door only the sidecar connects, and it keeps idle connections for 90 s (Go's
    # default transport, which daprd's app channel clones). Were the app to close one first (uvicorn
    # closes after 5 s), a call sent on it as it closes gets "connection reset", and Go retries
    # only GET and HEAD: a PUT or POST then fails with ERR_DIRECT_INVOKE (seen once in CI).
    options: dict[str, Any] = {"timeout_keep_alive": SIDECAR_KEEP_ALIVE_S}
    if isinstance(settings, DoorSettings):  # the public door: the server bounds what clients send
        app, options = HeaderLimit(app, settings.max_header_line_bytes), server_options(settings)
    # uvicorn's own loggers go through the root handler, so they get the request id too.
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        log_config=None,
        access_log=settings.access_log,
        **options,
    )
    config.door = settings  # type: ignore[attr-defined]  # read by the door's protocol
    if settings.metrics_port is not None:
        if settings.metrics_port == settings.port:
            sys.exit(f"{settings.app_id}: DAPRML_METRICS_PORT must not be the app port {settings.port}")
        metrics.serve(registry, settings.host, settings.metrics_port)
    try:
        uvicorn.Server(config).run()
    finally:
        tracing.shutdown()  # what the lifespan's flush left, and the exporter's thread
