"""The operations endpoints, for readers and up: fixed questions, each parameter an enum or a
bounded number. A backend that is down makes `available: false` with the reason, never a 5xx."""

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request

from services.gateway.deps import READ, OperationsDep
from services.gateway.operations.models import (
    ModelsReport,
    ReplicasReport,
    Service,
    ServicesReport,
    TraceReport,
    TracesReport,
    Window,
)

router = APIRouter(prefix="/api/operations", tags=["operations"], dependencies=[READ])

WindowQuery = Annotated[Window, Query(description="how far back: 15m (15 s steps), 1h (60 s) or 6h (360 s)")]


@router.get("/services", response_model=ServicesReport)
async def services(operations: OperationsDep, window: WindowQuery = Window.HOUR_1) -> dict[str, Any]:
    """Each service's request rate, p50 and p99 latency and error rate (5xx share) over the
    window, as series and current values, from Prometheus (health probes left out)."""
    return await operations.services(window)


@router.get("/models", response_model=ModelsReport)
async def models(operations: OperationsDep, window: WindowQuery = Window.HOUR_1) -> dict[str, Any]:
    """Each model version's prediction rate, p50 and p99 latency and error rate (outcome
    failed) over the window, across the inference replicas, from Prometheus."""
    return await operations.models(window)


@router.get("/traces", response_model=TracesReport)
async def traces(
    request: Request,
    operations: OperationsDep,
    window: WindowQuery = Window.HOUR_1,
    limit: Annotated[int, Query(ge=1, le=50, description="how many traces")] = 10,
    service: Annotated[Service | None, Query(description="only requests that reached this service")] = None,
    operation: Annotated[
        str | None,
        Query(max_length=200, description="only requests to this gateway route, as 'POST /api/models/{name}/predict'"),
    ] = None,
) -> dict[str, Any]:
    """The slowest requests through the gateway in the window, from the trace backend, each with
    a link to it in the trace UI; with `service`, only those that reached that service; with
    `operation`, only those to that route (the slowest predictions, say, when a busy stack's
    uploads and status checks are all slower)."""
    if operation is not None and operation not in gateway_operations(request):
        raise HTTPException(
            400, f"{operation!r} is not one of the gateway's routes, as 'POST /api/models/{{name}}/predict'"
        )
    return await operations.slowest(window, limit, service, operation)


def gateway_operations(request: Request) -> set[str]:
    """The gateway's published routes as its trace spans name them ("METHOD /path/{param}"):
    the only operations a search may name, so nothing else from outside reaches the trace backend."""
    paths = request.app.openapi().get("paths", {})
    return {f"{method.upper()} {path}" for path, methods in paths.items() for method in methods}


@router.get("/traces/{trace_id}", response_model=TraceReport, responses={404: {"description": "no such trace"}})
async def trace(
    operations: OperationsDep,
    trace_id: Annotated[str, Path(pattern="^[0-9a-f]{32}$", description="the trace's id: 32 lowercase hex digits")],
) -> dict[str, Any]:
    """One trace's spans in start order, each with its service (app id), operation, offset and
    duration in milliseconds, depth and a few safe attributes: the console draws it as a
    waterfall. From the trace backend's query API; 404 when it does not have the trace."""
    return await operations.trace(trace_id)


@router.get("/replicas", response_model=ReplicasReport)
async def replicas(operations: OperationsDep) -> dict[str, Any]:
    """Each service's replicas, up or down by the heartbeats they send through their sidecars
    (as GET /api/status), and its app's and sidecar's metrics endpoints as Prometheus last
    scraped them."""
    return await operations.replicas()
