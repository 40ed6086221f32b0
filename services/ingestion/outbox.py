"""Announcing committed versions, at least once.

A commit appends its version number to the dataset record's outbox in the same
compare-and-swap that commits the version, so there is no version without a pending event.
After the commit, and every few seconds from a relay task (also after a restart), pending
events are published and then removed from the outbox. A crash between the two publishes
the event again: the event id is stable, so a subscriber can tell.
"""

from services.common.events import DatasetVersionCommitted, EventType
from services.common.outbox import flush_each
from services.common.ports import EventPublisher
from services.ingestion.domain import profile as profiles
from services.ingestion.domain.model import DatasetRecord
from services.ingestion.repository import DatasetRepository


async def flush(repo: DatasetRepository, publisher: EventPublisher, name: str) -> int:
    """Publishes the events of committed versions not yet announced; returns how many."""
    record = await repo.dataset(name)
    if record is None or not record.outbox:
        return 0
    sent = []
    for number in record.outbox:
        ref = record.version(number)
        if ref is None:  # nothing to announce (cannot happen: one write adds both)
            sent.append(number)
            continue
        manifest = await repo.manifest(name, ref)
        payload = DatasetVersionCommitted(
            dataset=name,
            version=number,
            row_count=manifest.row_count,
            schema_hash=manifest.schema_hash,
            profile=profiles.summary(manifest.profile),
        )
        await publisher.publish(
            EventType.DATASET_VERSION_COMMITTED,
            payload,
            subject=f"{name}/v{number}",
            event_id=f"{name}-v{number}-{ref.sha256[:12]}",
        )
        sent.append(number)

    def drop_sent(current: DatasetRecord | None) -> DatasetRecord | None:
        # A commit may have added its own entry meanwhile: it stays.
        if current is not None:
            current.outbox = [v for v in current.outbox if v not in sent]
        return current

    await repo.update_dataset(name, drop_sent)
    return len(sent)


async def flush_all(repo: DatasetRepository, publisher: EventPublisher) -> int:
    return await flush_each(await repo.names(), lambda name: flush(repo, publisher, name), "dataset")
