"""Training listens for committed dataset versions: the trigger for (re)training on new data.

For now it records which versions were announced; training runs come with the training
feature. Delivery is at least once, so recording is idempotent.
"""

import json

from fastapi import APIRouter, FastAPI, Path

from services.common.dapr_adapters import subscribe
from services.common.events import DATASET_NAME, DatasetVersionCommitted, EventType
from services.common.ports import ConcurrencyConflict, StateStore


def key(dataset: str) -> str:
    return f"announced:{dataset}"


async def record(event: DatasetVersionCommitted, state: StateStore) -> None:
    while True:
        found = await state.get(key(event.dataset))
        seen = json.loads(found.value) if found else {}
        if str(event.version) in seen:
            return  # a repeated delivery
        seen[str(event.version)] = event.model_dump(mode="json")
        try:
            if found:
                await state.save(key(event.dataset), json.dumps(seen).encode(), etag=found.etag)
            else:
                await state.create(key(event.dataset), json.dumps(seen).encode())
            return
        except ConcurrencyConflict:
            continue  # two deliveries at once: read again


def add_announcements(app: FastAPI) -> None:
    settings, ports = app.state.settings, app.state.ports

    async def handle(_attributes: dict, event: DatasetVersionCommitted) -> None:
        await record(event, ports.state)

    subscribe(app, settings.pubsub, EventType.DATASET_VERSION_COMMITTED, "/internal/events/dataset-versions", handle)
    router = APIRouter(prefix="/internal/datasets", tags=["announcements"])

    @router.get("/{dataset}/announced")
    async def announced(dataset: str = Path(pattern=DATASET_NAME)) -> dict:
        """The versions of a dataset whose commit event reached training."""
        found = await ports.state.get(key(dataset))
        seen = json.loads(found.value) if found else {}
        return {"dataset": dataset, "versions": sorted(int(v) for v in seen), "events": seen}

    app.include_router(router)
