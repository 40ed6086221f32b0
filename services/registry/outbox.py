"""Announcing what the registry committed, at least once.

Every change that registers a version, moves an alias or is recorded in the model's history
appends its event, whole and with a stable id, to the model record's outbox in the same
compare-and-swap as the change itself (and its history entry to the record's `unfiled`).
After the write, and every few seconds from a background job (also after a restart), pending
events are published and then removed, and unfiled history entries are written to their pages
(history.py). A crash in between publishes an event again under the same id, so a subscriber
can tell.

Ingestion's outbox keeps version numbers and builds each event from the version's manifest
when it publishes; this one keeps the events themselves, which are small.
"""

from services.common.events import ROUTES
from services.common.outbox import flush_each
from services.common.ports import EventPublisher
from services.registry import history
from services.registry.domain.model import ModelRecord
from services.registry.repository import ModelRepository


async def flush(repo: ModelRepository, publisher: EventPublisher, name: str) -> int:
    """Publishes the model's pending events in order and files its unfiled history entries;
    returns how many events were published."""
    record = await repo.model(name)
    if record is None:
        return 0
    try:
        return await _publish(repo, publisher, record)
    finally:
        # Also when the pub/sub is away: the history does not wait for it.
        await history.file(repo, name, record.unfiled)


async def _publish(repo: ModelRepository, publisher: EventPublisher, record: ModelRecord) -> int:
    if not record.outbox:
        return 0
    sent: set[str] = set()

    def drop_sent(current: ModelRecord | None) -> ModelRecord | None:
        # Changes made meanwhile may have added events of their own: they stay.
        if current is not None:
            current.outbox = [e for e in current.outbox if e.id not in sent]
        return current

    try:
        for event in record.outbox:
            payload = ROUTES[event.type][1].model_validate(event.payload)
            await publisher.publish(event.type, payload, subject=event.subject, event_id=event.id)
            sent.add(event.id)
    finally:
        # Even when one fails, those published before it are not sent again.
        if sent:
            await repo.update(record.name, drop_sent)
    return len(sent)


async def flush_all(repo: ModelRepository, publisher: EventPublisher) -> int:
    return await flush_each(await repo.names(), lambda name: flush(repo, publisher, name), "model")
