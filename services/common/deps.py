"""The dependencies every service's routes may ask for, as `Annotated` aliases. The only module
(with each service's own deps.py) that reads the app's state: routes and use cases get their
settings and ports handed in.

Each is `async def` though it awaits nothing: FastAPI runs a plain `def` dependency in its
thread pool, a hand-over to a thread and back on every request for a dictionary lookup.
"""

from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request

from services.common.ports import BlobStore, EventPublisher, SidecarProbe, StateStore
from services.common.settings import ServiceSettings


async def settings_of(request: Request) -> Any:
    return request.app.state.settings


T = TypeVar("T")


def depends_on(kind: type[T]) -> Any:
    """The dependency that hands a route the service object of type `kind` from
    ServiceSpec.services, for an alias in a service's deps module:
    `LogDep = Annotated[PredictionLog, depends_on(PredictionLog)]`."""

    async def service(request: Request) -> T:
        services: dict[type, Any] = request.app.state.services
        if kind not in services:
            raise LookupError(f"the app's ServiceSpec.services holds no {kind.__name__}")
        found: T = services[kind]
        return found

    return Depends(service)


async def probe_of(request: Request) -> SidecarProbe:
    port: SidecarProbe = request.app.state.ports.probe
    return port


async def state_of(request: Request) -> StateStore:
    port: StateStore = request.app.state.ports.state
    return port


async def blobs_of(request: Request) -> BlobStore:
    port: BlobStore = request.app.state.ports.blobs
    return port


async def publisher_of(request: Request) -> EventPublisher:
    port: EventPublisher = request.app.state.ports.publisher
    return port


SettingsDep = Annotated[ServiceSettings, Depends(settings_of)]
ProbeDep = Annotated[SidecarProbe, Depends(probe_of)]
StateDep = Annotated[StateStore, Depends(state_of)]
BlobsDep = Annotated[BlobStore, Depends(blobs_of)]
PublisherDep = Annotated[EventPublisher, Depends(publisher_of)]
