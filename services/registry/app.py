from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.common import dapr_adapters
from services.common.app import Periodic, ServiceSpec, build_app
from services.common.ports import SidecarProbe
from services.registry.api import internal, public
from services.registry.metrics import RegistryMetrics
from services.registry.ports import RegistryPorts  # also imported from here by tests/api/conftest.py
from services.registry.repository import ModelRepository
from services.registry.service import RegistryService
from services.registry.settings import Settings


async def publish_pending(service: RegistryService, probe: SidecarProbe) -> None:
    """Publishes the events of changes made while the pub/sub was unreachable (or before a
    restart), so that none goes unannounced."""
    if await probe.healthy():
        await service.flush_all()


def create_app(settings: Settings | None = None, ports: RegistryPorts | None = None) -> FastAPI:
    """The app; tests hand in fake ports, production builds them over the sidecar."""
    settings = settings or Settings()
    ports = ports or dapr_adapters.sidecar_ports(RegistryPorts, settings)
    repo = ModelRepository(ports.state, ports.blobs, settings.update_attempts)
    registry = CollectorRegistry()
    service = RegistryService(repo, ports.publisher, settings, RegistryMetrics(registry))
    return build_app(
        ServiceSpec(
            title="daprml registry",
            settings=settings,
            ports=ports,
            services={RegistryService: service},
            routers=[public, internal],
            metrics=registry,
            background=[Periodic("outbox", settings.outbox_interval_s, lambda: publish_pending(service, ports.probe))],
        )
    )
