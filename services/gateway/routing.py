"""Public paths the gateway hands to a service, through that service's Dapr app id."""

from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from services.gateway.deps import PortsDep, SettingsDep
from services.gateway.settings import Settings

# Request and reply headers worth passing on; hop-by-hop ones are not.
REQUEST_HEADERS = ("content-type", "content-length", "accept", "traceparent", "tracestate")
REPLY_HEADERS = ("content-type", "content-disposition")
METHODS = ["GET", "POST", "PUT", "DELETE"]

# path prefix -> which service answers it
ROUTES: dict[str, Callable[[Settings], str]] = {
    "/api/datasets": lambda s: s.ingestion_app_id,
}

router = APIRouter()


async def forward(request: Request, ports: PortsDep, settings: SettingsDep) -> StreamingResponse:
    """Streams the request to the service that owns the path and its answer back."""
    path = request.url.path
    app_id = next(target(settings) for prefix, target in ROUTES.items() if path.startswith(prefix))
    method = path.lstrip("/") + (f"?{request.url.query}" if request.url.query else "")
    headers = {k: v for k, v in request.headers.items() if k in REQUEST_HEADERS}
    reply = await ports.invoker.forward(app_id, method, request.method, headers, request.stream())
    return StreamingResponse(reply.body, status_code=reply.status,
                             headers={k: v for k, v in reply.headers.items() if k in REPLY_HEADERS},
                             background=BackgroundTask(reply.close))


for prefix in ROUTES:
    router.add_api_route(prefix, forward, methods=METHODS, include_in_schema=False)
    router.add_api_route(prefix + "/{rest:path}", forward, methods=METHODS, include_in_schema=False)
