"""sidecar_ports: the ports a service declares, each made over the service's own sidecar."""

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from services.common.dapr_adapters.blobs import DaprBlobStore
from services.common.dapr_adapters.invoke import DaprInvoker
from services.common.dapr_adapters.jobs import DaprJobs
from services.common.dapr_adapters.probe import DaprProbe
from services.common.dapr_adapters.pubsub import DaprPublisher
from services.common.dapr_adapters.secrets import DaprSecretStore
from services.common.dapr_adapters.sidecar import Sidecar
from services.common.dapr_adapters.state import DaprStateStore
from services.common.dapr_adapters.workflows import DaprWorkflows
from services.common.ports import (
    BlobStore,
    EventPublisher,
    Jobs,
    SecretStore,
    ServiceInvoker,
    SidecarPorts,
    SidecarProbe,
    StateStore,
    Workflows,
)
from services.common.settings import ServiceSettings

P = TypeVar("P", bound=SidecarPorts)


def sidecar_ports(kind: type[P], settings: ServiceSettings) -> P:
    """The ports a service declares (the fields of `kind`), each over the service's own
    sidecar, component names from its settings."""
    sidecar = Sidecar(settings)
    makers: dict[str, Callable[[], Any]] = {
        "probe": lambda: _probe(sidecar),
        "state": lambda: _state(sidecar, settings),
        "blobs": lambda: _blobs(sidecar, settings),
        "publisher": lambda: _publisher(sidecar, settings),
        "secrets": lambda: _secrets(sidecar, settings),
        "invoker": lambda: _invoker(sidecar),
        "workflows": lambda: _workflows(sidecar),
        "jobs": lambda: _jobs(sidecar, settings),
    }
    wanted = [f.name for f in dataclasses.fields(kind) if f.name != "close"]
    unknown = sorted(set(wanted) - makers.keys())
    if unknown:
        raise TypeError(f"{kind.__name__} declares ports the Dapr adapters do not provide: {unknown}")
    made = {name: makers[name]() for name in wanted}

    async def close() -> None:
        # Ports with connections of their own (the workflow engine's) close before the sidecar's.
        for port in made.values():
            if hasattr(port, "close"):
                await port.close()
        await sidecar.close()

    return kind(**made, close=close)


# Each returns the port's Protocol type, so that the type checker holds every adapter to it.
def _probe(sidecar: Sidecar) -> SidecarProbe:
    return DaprProbe(sidecar)


def _state(sidecar: Sidecar, settings: ServiceSettings) -> StateStore:
    return DaprStateStore(sidecar, settings.statestore)


def _blobs(sidecar: Sidecar, settings: ServiceSettings) -> BlobStore:
    return DaprBlobStore(sidecar, settings.blobstore)


def _publisher(sidecar: Sidecar, settings: ServiceSettings) -> EventPublisher:
    return DaprPublisher(
        sidecar,
        settings.pubsub,
        f"/daprml/{settings.app_id}",
        settings.topic_prefix,
        replica_pubsub=settings.replica_pubsub,
    )


def _secrets(sidecar: Sidecar, settings: ServiceSettings) -> SecretStore:
    return DaprSecretStore(sidecar, settings.secretstore)


def _invoker(sidecar: Sidecar) -> ServiceInvoker:
    return DaprInvoker(sidecar)


def _workflows(sidecar: Sidecar) -> Workflows:
    return DaprWorkflows(sidecar)


def _jobs(sidecar: Sidecar, settings: ServiceSettings) -> Jobs:
    return DaprJobs(sidecar, settings.topic_prefix)
