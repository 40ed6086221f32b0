import asyncio
import logging

from fastapi import FastAPI

from services.common.app import build_app
from services.common.dapr_adapters import dapr_ports
from services.common.ports import Ports
from services.common.roundtrip import add_sender
from services.ingestion.api import router
from services.ingestion.repository import DatasetRepository
from services.ingestion.service import IngestionService
from services.ingestion.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, ports: Ports | None = None) -> FastAPI:
    """The app; tests hand in fake ports, production builds them over the sidecar."""
    settings = settings or Settings()
    ports = ports or dapr_ports(settings)
    service = IngestionService(DatasetRepository(ports.state, ports.blobs), ports.publisher, settings)

    async def housekeeping() -> None:
        """Publishes the events of versions committed while the pub/sub was unreachable (or
        before a restart), so that no committed version goes unannounced; aborts uploads left
        open past their time, so that their parts do not linger."""
        while True:
            try:
                if await ports.probe.healthy():
                    await service.flush_all()
                    for upload_id in await service.expire_uploads():
                        log.info("upload %s expired: aborted and its parts deleted", upload_id)
            except Exception as exc:
                log.warning("housekeeping: %s", exc)
            await asyncio.sleep(settings.outbox_interval_s)

    app = build_app("daprml ingestion", settings, ports, [router], background=[housekeeping])
    app.state.ingestion = service
    add_sender(app)
    return app
