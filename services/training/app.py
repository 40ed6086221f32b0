from dataclasses import dataclass
from functools import partial

from fastapi import FastAPI

from services.common import dapr_adapters, roundtrip
from services.common.app import ServiceSpec, build_app
from services.common.events import EventType
from services.common.ports import BlobStore, SidecarPorts, StateStore
from services.training import announcements
from services.training.settings import Settings


@dataclass(kw_only=True)
class TrainingPorts(SidecarPorts):
    state: StateStore
    blobs: BlobStore


def create_app(settings: Settings | None = None, ports: TrainingPorts | None = None) -> FastAPI:
    """The app; tests hand in fake ports, production builds them over the sidecar."""
    settings = settings or Settings()
    ports = ports or dapr_adapters.sidecar_ports(TrainingPorts, settings)
    return build_app(
        ServiceSpec(
            title="daprml training",
            settings=settings,
            ports=ports,
            routers=[roundtrip.receiver, announcements.router],
            subscriptions={
                EventType.ROUNDTRIP_PING: partial(
                    roundtrip.receive, app_id=settings.app_id, state=ports.state, blobs=ports.blobs
                ),
                EventType.DATASET_VERSION_COMMITTED: partial(announcements.record, state=ports.state),
            },
        )
    )
