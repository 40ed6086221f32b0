"""The gateway's app: its service objects, built once here, and its routers, one per feature."""

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry

from services.common import dapr_adapters
from services.common.app import ServiceSpec, build_app
from services.common.events import EventType
from services.gateway import openapi
from services.gateway.access import open_routes
from services.gateway.access.service import Gatekeeper
from services.gateway.console import api as console_api
from services.gateway.console.service import ConsoleFiles
from services.gateway.dead_letters import api as dead_letters_api
from services.gateway.dead_letters.service import DeadLetters
from services.gateway.forwarding import inference_api, ingestion_api, monitor_api, registry_api, training_api
from services.gateway.forwarding.breaker import Breakers
from services.gateway.forwarding.upstream import Inference, Ingestion, Monitor, Registry, Training
from services.gateway.keys import api as keys_api
from services.gateway.keys.service import KeyRing
from services.gateway.metrics import api as metrics_api
from services.gateway.operations import api as operations_api
from services.gateway.operations.http_backends import JaegerHttp, PrometheusHttp
from services.gateway.operations.service import Operations
from services.gateway.ports import GatewayPorts
from services.gateway.settings import Settings
from services.gateway.status import api as status_api
from services.gateway.status.instances import Instances
from services.gateway.status.service import Status
from services.gateway.telemetry import GatewayMetrics


async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
    """A path the route table does not allow is the client's mistake in the address (400),
    not in a body (422); the message says which part and why."""
    errors = exc.errors()
    status = 400 if any(e["loc"][0] == "path" for e in errors) else 422
    problems = "; ".join(f"{' '.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
    return JSONResponse({"detail": f"invalid request: {problems}"}, status_code=status)


def create_app(settings: Settings | None = None, ports: GatewayPorts | None = None) -> FastAPI:
    """The app; tests hand in fake ports, production builds them over the sidecar. Each service
    object is built once, here; routes receive the one they use through deps.py."""
    settings = settings or Settings()
    ports = ports or dapr_adapters.sidecar_ports(GatewayPorts, settings)
    keys = KeyRing(ports.secrets, ports.state, settings.api_keys_secret, settings.key_cache_s)
    instances = Instances(settings.forget_instances_after_s)
    dead_letters = DeadLetters(ports.state, ports.publisher, settings.dead_letters_kept, settings.topic_prefix)
    breakers = Breakers(settings.breaker_failures, settings.breaker_open_s)
    registry = CollectorRegistry()
    counted = GatewayMetrics(registry)  # not the metrics package: that one serves /api/metrics
    status = Status(ports.invoker, ports.secrets, settings, instances)
    # Prometheus and the trace backend: ops tools beside the stack, read over HTTP (None: not configured).
    timeout_s = settings.operations_timeout_s
    prometheus = PrometheusHttp(settings.prometheus_url, timeout_s) if settings.prometheus_url else None
    jaeger = JaegerHttp(settings.traces_url, timeout_s) if settings.traces_url else None
    services = [
        Gatekeeper(keys, settings.rate_limits, settings.rate_burst_s, metrics=counted),
        keys,
        dead_letters,
        instances,
        status,
        Operations(settings, prometheus, jaeger, status),
        ConsoleFiles(),
        breakers,
        *(
            kind.build(ports.invoker, settings, breakers, counted)
            for kind in (Ingestion, Training, Registry, Inference, Monitor)
        ),
    ]
    app = build_app(
        ServiceSpec(
            title="daprml gateway",
            settings=settings,
            ports=ports,
            routers=[
                status_api.router,
                keys_api.router,
                dead_letters_api.router,
                ingestion_api.router,
                training_api.router,
                registry_api.router,
                monitor_api.router,
                metrics_api.router,
                operations_api.router,
                *inference_api.routers,
                console_api.router,
            ],
            services={type(service): service for service in services},
            # The deployment's dead letters, kept for admins (GET /api/events/dead-letters).
            dead_letters=dead_letters.keep,
            # Every gateway replica hears every instance's heartbeat (GET /api/status).
            every_replica={EventType.INSTANCE_HEARTBEAT: instances.heard},
            metrics=registry,
        )
    )
    app.add_exception_handler(RequestValidationError, invalid_request)  # type: ignore[arg-type]
    app.openapi = openapi.truthful(app)  # type: ignore[method-assign]  # every status it can answer
    open_routes.close(app, settings, keys)  # what a caller without a key learns: ready or not, nothing more
    return app
