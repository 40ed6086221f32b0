from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from services.common import dapr_adapters
from services.common.app import ServiceSpec, build_app
from services.common.events import EventType
from services.gateway import (
    api,
    console,
    datasets,
    dead_letters,
    inference,
    keys_api,
    models,
    open_routes,
    openapi,
    training,
)
from services.gateway.access import Gatekeeper
from services.gateway.breaker import Breakers
from services.gateway.instances import Instances
from services.gateway.keyring import KeyRing
from services.gateway.ports import GatewayPorts
from services.gateway.settings import Settings


async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
    """A path the route table does not allow is the client's mistake in the address (400),
    not in a body (422); the message says which part and why."""
    errors = exc.errors()
    status = 400 if any(e["loc"][0] == "path" for e in errors) else 422
    problems = "; ".join(f"{' '.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
    return JSONResponse({"detail": f"invalid request: {problems}"}, status_code=status)


def create_app(settings: Settings | None = None, ports: GatewayPorts | None = None) -> FastAPI:
    """The app; tests hand in fake ports, production builds them over the sidecar."""
    settings = settings or Settings()
    ports = ports or dapr_adapters.sidecar_ports(GatewayPorts, settings)
    keys = KeyRing(ports.secrets, ports.state, settings.api_keys_secret, settings.key_cache_s)
    instances = Instances(settings.forget_instances_after_s)
    app = build_app(
        ServiceSpec(
            title="daprml gateway",
            settings=settings,
            ports=ports,
            routers=[
                api.router,
                keys_api.router,
                dead_letters.router,
                datasets.router,
                training.router,
                models.router,
                *inference.routers,
                console.router,
            ],
            service=Gatekeeper(keys, settings.rate_limits, settings.rate_burst_s),
            # The deployment's dead letters, kept for admins (GET /api/events/dead-letters).
            dead_letters=dead_letters.DeadLetters(ports.state, settings.dead_letters_kept, settings.topic_prefix).keep,
            # Every gateway replica hears every instance's heartbeat (GET /api/status).
            every_replica={EventType.INSTANCE_HEARTBEAT: instances.heard},
        )
    )
    app.state.instances = instances
    app.state.breakers = Breakers(settings.breaker_failures, settings.breaker_open_s)
    app.add_exception_handler(RequestValidationError, invalid_request)  # type: ignore[arg-type]
    app.openapi = openapi.truthful(app)  # type: ignore[method-assign]  # every status it can answer
    open_routes.close(app, settings, keys)  # what a caller without a key learns: ready or not, nothing more
    return app
