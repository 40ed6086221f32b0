import logging

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.common import dapr_adapters, roundtrip
from services.common.app import Periodic, ServiceSpec, build_app
from services.common.ports import SidecarProbe
from services.ingestion.api import internal, router
from services.ingestion.metrics import IngestionMetrics
from services.ingestion.ports import IngestionPorts  # also imported from here by tests/api/conftest.py
from services.ingestion.repository import DatasetRepository
from services.ingestion.service import IngestionService
from services.ingestion.settings import Settings

log = logging.getLogger(__name__)


async def housekeeping(service: IngestionService, probe: SidecarProbe) -> None:
    """Publishes the events of versions committed while the pub/sub was unreachable (or
    before a restart), so that no committed version goes unannounced; aborts uploads left
    open past their time, so that their parts do not linger."""
    if not await probe.healthy():
        return
    await service.flush_all()
    for upload_id in await service.expire_uploads():
        log.info("upload %s expired: aborted and its parts deleted", upload_id)


def create_app(settings: Settings | None = None, ports: IngestionPorts | None = None) -> FastAPI:
    """The app; tests hand in fake ports, production builds them over the sidecar."""
    settings = settings or Settings()
    ports = ports or dapr_adapters.sidecar_ports(IngestionPorts, settings)
    registry = CollectorRegistry()
    metrics = IngestionMetrics(registry)
    service = IngestionService(DatasetRepository(ports.state, ports.blobs), ports.publisher, settings, metrics)
    return build_app(
        ServiceSpec(
            title="daprml ingestion",
            settings=settings,
            ports=ports,
            services={IngestionService: service},
            routers=[router, internal, roundtrip.sender],
            metrics=registry,
            background=[
                Periodic("housekeeping", settings.outbox_interval_s, lambda: housekeeping(service, ports.probe))
            ],
        )
    )
