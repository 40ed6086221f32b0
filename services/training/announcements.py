"""Training listens for committed dataset versions: the trigger for (re)training on new data.

For now it records which versions were announced; training runs come with the training
feature. Delivery is at least once, so recording is idempotent.
"""

import json
import logging

from fastapi import APIRouter, FastAPI, Path

from services.common.dapr_adapters import subscribe
from services.common.events import DATASET_NAME, EventType, InvalidEvent, Topic, decode
from services.common.ports import ConcurrencyConflict, SidecarUnavailable, StateStore

log = logging.getLogger(__name__)


def key(dataset: str) -> str:
    return f"announced:{dataset}"


async def record(envelope: bytes, state: StateStore) -> str:
    try:
        _, event = decode(envelope, EventType.DATASET_VERSION_COMMITTED)
    except InvalidEvent as exc:
        log.warning("dropping an invalid dataset-version event: %s", exc)
        return "DROP"
    try:
        while True:
            found = await state.get(key(event.dataset))
            seen = json.loads(found.value) if found else {}
            if str(event.version) in seen:
                return "SUCCESS"  # a repeated delivery
            seen[str(event.version)] = event.model_dump(mode="json")
            try:
                if found:
                    await state.save(key(event.dataset), json.dumps(seen).encode(), etag=found.etag)
                else:
                    await state.create(key(event.dataset), json.dumps(seen).encode())
                return "SUCCESS"
            except ConcurrencyConflict:
                continue
    except SidecarUnavailable as exc:
        log.warning("dataset-version event will be retried: %s", exc)
        return "RETRY"


def add_announcements(app: FastAPI) -> None:
    settings, ports = app.state.settings, app.state.ports

    async def handle(envelope: bytes) -> str:
        return await record(envelope, ports.state)

    subscribe(app, settings.pubsub, Topic.DATASET_VERSIONS, "/internal/events/dataset-versions", handle)
    router = APIRouter(prefix="/internal/datasets", tags=["announcements"])

    @router.get("/{dataset}/announced")
    async def announced(dataset: str = Path(pattern=DATASET_NAME)) -> dict:
        """The versions of a dataset whose commit event reached training."""
        found = await ports.state.get(key(dataset))
        seen = json.loads(found.value) if found else {}
        return {"dataset": dataset, "versions": sorted(int(v) for v in seen), "events": seen}

    app.include_router(router)
