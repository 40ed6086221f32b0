from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.common import dapr_adapters
from services.common.app import Periodic, ServiceSpec, build_app
from services.common.clients import MonitorClient
from services.common.ports import SidecarProbe
from services.registry import rollouts_api
from services.registry.api import internal, public
from services.registry.evidence import MonitorEvidence
from services.registry.metrics import RegistryMetrics
from services.registry.ports import RegistryPorts  # also imported from here by tests/api/conftest.py
from services.registry.repository import ModelRepository
from services.registry.rollouts import Rollouts
from services.registry.service import RegistryService
from services.registry.settings import Settings


async def publish_pending(service: RegistryService, rollouts: Rollouts, probe: SidecarProbe) -> None:
    """Publishes the events of changes made while the pub/sub was unreachable (or before a
    restart), so that none goes unannounced; starts the workflow of a rollout whose start did
    not reach the engine."""
    if await probe.healthy():
        await service.flush_all()
        await rollouts.resume_all()


def create_app(settings: Settings | None = None, ports: RegistryPorts | None = None) -> FastAPI:
    """The app; tests hand in fake ports, production builds them over the sidecar."""
    settings = settings or Settings()
    ports = ports or dapr_adapters.sidecar_ports(RegistryPorts, settings)
    repo = ModelRepository(ports.state, ports.blobs, settings.update_attempts)
    registry = CollectorRegistry()
    service = RegistryService(repo, ports.publisher, settings, RegistryMetrics(registry))
    monitor = MonitorEvidence(MonitorClient(ports.invoker, settings.monitor_app_id))
    rollouts = Rollouts(service, ports.workflows, monitor, settings.rollout_poll_s)
    return build_app(
        ServiceSpec(
            title="daprml registry",
            settings=settings,
            ports=ports,
            services={RegistryService: service, Rollouts: rollouts},
            routers=[public, rollouts_api.router, internal],
            metrics=registry,
            background=[
                Periodic("outbox", settings.outbox_interval_s, lambda: publish_pending(service, rollouts, ports.probe)),
                # Running rollouts resume as soon as the engine has the workflow again.
                Periodic("workflow engine", 2.0, ports.workflows.start, until_done=True),
            ],
        )
    )
