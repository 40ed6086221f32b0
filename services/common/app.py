"""What every service's create_app shares: health routes, error mapping, lifespan, serving."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from services.common.errors import ClientError
from services.common.ports import ConcurrencyConflict, NotFound, SidecarProbe, SidecarUnavailable
from services.common.settings import ServiceSettings


def get_settings(request: Request) -> ServiceSettings:
    return request.app.state.settings


def get_ports(request: Request) -> Any:
    return request.app.state.ports


SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]

health = APIRouter(tags=["health"])


@health.get("/healthz")
async def healthz(settings: SettingsDep) -> dict[str, Any]:
    """Live: the process answers."""
    return {"live": True, "app_id": settings.app_id}


@health.get("/readyz")
async def readyz(settings: SettingsDep, request: Request, response: Response) -> dict[str, Any]:
    """Ready only when this service's sidecar answers /v1.0/healthz/outbound."""
    probe: SidecarProbe = request.app.state.ports.probe
    if not await probe.healthy():
        response.status_code = 503
        return {"ready": False, "app_id": settings.app_id,
                "reason": f"sidecar on port {settings.dapr_http_port} does not answer /v1.0/healthz/outbound"}
    info = await probe.info()
    return {
        "ready": True,
        "app_id": settings.app_id,
        "runtime_version": info.runtime_version,
        "components": sorted(f"{c.get('name')} ({c.get('type')})" for c in info.components),
    }


def _error(status: int):
    async def handle(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status)
    return handle


async def _client_error(_: Request, exc: ClientError) -> JSONResponse:
    return JSONResponse({"detail": str(exc), **exc.details}, status_code=exc.status)


def build_app(title: str, settings: ServiceSettings, ports: Any, routers: Iterable[APIRouter] = (),
              background: Iterable[Callable[[], Awaitable[None]]] = ()) -> FastAPI:
    """The FastAPI app of one service. `ports` carries the service's adapters (Dapr-backed in
    production, in-memory fakes in tests); its optional close() runs at shutdown. Each of
    `background` runs as a task for the app's lifetime."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(job()) for job in background]
        yield
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        close = getattr(ports, "close", None)
        if close is not None:
            await close()

    app = FastAPI(title=title, lifespan=lifespan)
    app.state.settings = settings
    app.state.ports = ports
    app.include_router(health)
    for router in routers:
        app.include_router(router)
    app.add_exception_handler(ClientError, _client_error)
    app.add_exception_handler(NotFound, _error(404))
    app.add_exception_handler(ConcurrencyConflict, _error(409))
    app.add_exception_handler(SidecarUnavailable, _error(503))
    return app


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")
