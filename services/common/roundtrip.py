"""The round trip check: one service writes a blob, proves ETag concurrency on its state and
publishes a ping; another receives the ping, reads that blob and records what it found.

It exercises every Dapr building block daprml uses, through real sidecars, and tells a
platform team in one call whether a deployment's components are wired right.
"""

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path

from services.common.deps import BlobsDep, PublisherDep, SettingsDep, StateDep
from services.common.errors import Missing
from services.common.events import EventType, RoundtripPing, Topic
from services.common.ports import (
    BlobStore,
    ConcurrencyConflict,
    EventPublisher,
    NotFound,
    StateStore,
)

RunId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
PREFIX = "/internal/roundtrip"


def blob_key(run_id: str) -> str:
    return f"roundtrip/{run_id}.json"


def state_key(run_id: str) -> str:
    return f"roundtrip-{run_id}"


def step(name: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"name": name, "ok": ok, "detail": detail}


async def send(
    run_id: str, app_id: str, state: StateStore, blobs: BlobStore, publisher: EventPublisher
) -> list[dict[str, Any]]:
    """The sender's half: blob write, state with ETag, publish."""
    key = blob_key(run_id)
    await blobs.put(key, json.dumps({"run_id": run_id, "written_by": app_id}).encode())
    steps = [step("blob write", True, f"{app_id} wrote {key} through the blob binding")]

    steps.append(await _check_etags(state_key(run_id), state))
    await publisher.publish(EventType.ROUNDTRIP_PING, RoundtripPing(run_id=run_id, blob_key=key), subject=run_id)
    steps.append(step("publish", True, f"{app_id} published {EventType.ROUNDTRIP_PING} to topic {Topic.ROUNDTRIP}"))
    return steps


async def _check_etags(key: str, state: StateStore) -> dict[str, Any]:
    """Save, update with the current ETag, then a stale ETag must be refused; delete after."""
    await state.save(key, b'{"n": 1}')
    first = await state.get(key)
    if first is None:
        return step("state etag", False, f"{key} was saved but reads back as missing")
    await state.save(key, b'{"n": 2}', etag=first.etag)
    try:
        await state.save(key, b'{"n": 3}', etag=first.etag)
        refused = False
    except ConcurrencyConflict:
        refused = True
    current = await state.get(key)
    if current is not None:
        await state.delete(key, etag=current.etag)
    gone = await state.get(key) is None
    ok = refused and current is not None and current.value == b'{"n": 2}' and gone
    return step(
        "state etag",
        ok,
        f"save, update with ETag, stale ETag {'refused' if refused else 'ACCEPTED'}, "
        f"delete {'done' if gone else 'FAILED'}",
    )


async def receive(
    attributes: dict[str, Any], ping: RoundtripPing, *, app_id: str, state: StateStore, blobs: BlobStore
) -> None:
    """The receiver's half: reads the blob the ping names and records what it found."""
    try:
        blob = json.loads(await blobs.get(ping.blob_key))
        blob_ok = blob.get("run_id") == ping.run_id
        blob_detail = f"read {ping.blob_key} written by {blob.get('written_by')}"
    except NotFound:
        blob_ok, blob_detail = False, f"{ping.blob_key} not found"
    record = {
        "run_id": ping.run_id,
        "received_by": app_id,
        "received_at": datetime.now(UTC).isoformat(),
        "event_id": attributes.get("id"),
        "event_source": attributes.get("source"),
        "blob_ok": blob_ok,
        "blob_detail": blob_detail,
    }
    await state.save(state_key(ping.run_id), json.dumps(record).encode())


# The sending half (ingestion serves it): start a round trip, clean up its blob.
sender = APIRouter(prefix=PREFIX, tags=["round trip"])


@sender.post("/{run_id}")
async def start(
    run_id: RunId, settings: SettingsDep, state: StateDep, blobs: BlobsDep, publisher: PublisherDep
) -> dict[str, Any]:
    return {"steps": await send(run_id, settings.app_id, state, blobs, publisher)}


@sender.delete("/{run_id}", status_code=204)
async def clean(run_id: RunId, blobs: BlobsDep) -> None:
    await blobs.delete(blob_key(run_id))


# The receiving half (training serves it, and subscribes `receive` to the ping): what it recorded.
receiver = APIRouter(prefix=PREFIX, tags=["round trip"])


@receiver.get("/{run_id}")
async def received(run_id: RunId, state: StateDep) -> dict[str, Any]:
    found = await state.get(state_key(run_id))
    if found is None:
        raise Missing(f"no round trip ping {run_id!r} received yet")
    record: dict[str, Any] = json.loads(found.value)
    return record


@receiver.delete("/{run_id}", status_code=204)
async def forget(run_id: RunId, state: StateDep) -> None:
    await state.delete(state_key(run_id))
