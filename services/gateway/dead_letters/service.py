"""Dead letters: the events a subscriber gave up on, for admins to see, replay or discard.

Every subscription names the deployment's dead-letter topic; Dapr moves there what a handler
answers DROP for (invalid) or still fails after the resiliency policy's retries. The gateway,
the deployment's one public door and the holder of admin access, subscribes to that topic and
keeps the latest `dead_letters_kept` in its state store: one document per dead letter and an
index of their ids, newest first, updated by compare-and-swap (what falls off the end is deleted).

Dapr carries the event as it was published, not why it failed nor who failed it: the subscriber
logs the error with the event id. What the gateway records is what it can tell: the original
topic, type, source and id, when it arrived (and how many times), and, when the event does not
validate against its type's schema, why not (the reason a subscriber dropped it).
"""

import base64
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from services.common import events
from services.common.errors import ClientError, Missing
from services.common.events import EventType, Topic
from services.common.ports import EventPublisher, StateStore
from services.common.state import Documents
from services.gateway.dead_letters.models import DeadLetter, Index, Kept

INDEX = "dead-letters"
MAX_KEPT_BYTES = 256 * 1024  # a message bigger than this is kept cut short, and cannot be replayed
# Attributes Dapr adds when it publishes; a replay gets fresh ones.
_DAPR_ADDED = ("topic", "pubsubname", "traceid", "traceparent", "tracestate")


class CannotReplay(ClientError):
    status = 409


def _reason(envelope: dict[str, Any]) -> str | None:
    """Why a subscriber would have dropped it, when it does not validate; None when it does."""
    try:
        event_type = EventType(str(envelope.get("type")))
    except ValueError:
        return f"not an event type of this deployment: {envelope.get('type')!r}"
    try:
        events.decode(envelope, event_type)
    except events.InvalidEvent as exc:
        return str(exc)
    return None


def _read(message: bytes, now: datetime) -> Kept:
    try:
        envelope = json.loads(message)
    except (UnicodeDecodeError, json.JSONDecodeError):
        envelope = None
    if not isinstance(envelope, dict) or len(message) > MAX_KEPT_BYTES:
        text = message[:MAX_KEPT_BYTES].decode("utf-8", errors="replace")
        return Kept(
            id=hashlib.sha256(message).hexdigest()[:16],
            event_id=None,
            topic=None,
            type=None,
            source=None,
            reason="not a CloudEvent (JSON object) of at most 256 KB",
            received_at=now,
            payload=text,
        )
    data = envelope.get("data")
    if data is None and isinstance(envelope.get("data_base64"), str):
        data = base64.b64decode(envelope["data_base64"]).decode("utf-8", errors="replace")
    event_id, topic = envelope.get("id"), envelope.get("topic")
    identity = f"{topic}\0{event_id}".encode() if event_id else message
    return Kept(
        id=hashlib.sha256(identity).hexdigest()[:16],
        event_id=str(event_id) if event_id is not None else None,
        topic=str(topic) if topic is not None else None,
        type=_text(envelope.get("type")),
        source=_text(envelope.get("source")),
        subject=_text(envelope.get("subject")),
        reason=_reason(envelope),
        received_at=now,
        payload=data,
        envelope={k: v for k, v in envelope.items() if k not in _DAPR_ADDED},
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


class DeadLetters:
    def __init__(self, state: StateStore, publisher: EventPublisher, kept: int, topic_prefix: str):
        self.records = Documents(state, Kept)
        self.index = Documents(state, Index)
        self.publisher, self.kept, self.topic_prefix = publisher, kept, topic_prefix

    @staticmethod
    def key(dead_letter_id: str) -> str:
        return f"dead-letter:{dead_letter_id}"

    async def keep(self, message: bytes) -> None:
        """One message of the dead-letter topic (delivered at least once: a copy counts again)."""
        now = datetime.now(UTC)
        arrived = _read(message, now)

        def again(before: Kept | None) -> Kept:
            if before is None:
                return arrived
            return before.model_copy(update={"received_at": now, "times": before.times + 1})

        await self.records.update(self.key(arrived.id), again)
        evicted: list[str] = []

        def first(index: Index | None) -> Index:
            ids = [arrived.id] + [i for i in (index.ids if index else []) if i != arrived.id]
            evicted[:] = ids[self.kept :]
            return Index(ids=ids[: self.kept])

        await self.index.update(INDEX, first)
        for old in evicted:
            await self.records.delete(self.key(old))

    async def list(self) -> list[DeadLetter]:
        index = await self.index.get(INDEX)
        found = [await self.records.get(self.key(i)) for i in (index.ids if index else [])]
        return [DeadLetter.model_validate(k.model_dump(exclude={"envelope"})) for k in found if k is not None]

    async def _get(self, dead_letter_id: str) -> Kept:
        index = await self.index.get(INDEX)
        record = await self.records.get(self.key(dead_letter_id))
        if record is None or index is None or dead_letter_id not in index.ids:
            raise Missing(f"no dead letter {dead_letter_id!r} (the gateway keeps the latest {self.kept})")
        return record

    def _topic(self, record: Kept) -> Topic:
        """The deployment's own topic the event came from; never one a client names."""
        ours = {f"{self.topic_prefix}{t}": t for t in _published_topics()}
        if record.topic not in ours or record.envelope is None:
            raise CannotReplay(
                f"dead letter {record.id} came from {record.topic!r}, not one of this deployment's topics "
                f"({', '.join(sorted(ours))}): it cannot be replayed"
            )
        return ours[record.topic]

    async def replay(self, dead_letter_id: str) -> DeadLetter:
        record = await self._get(dead_letter_id)
        topic = self._topic(record)
        assert record.envelope is not None
        await self.publisher.republish(topic, record.envelope)
        now = datetime.now(UTC)

        def replayed(before: Kept | None) -> Kept | None:
            if before is None:
                return None
            return before.model_copy(update={"replayed_at": now, "replays": before.replays + 1})

        after = await self.records.update(self.key(dead_letter_id), replayed) or record
        return DeadLetter.model_validate(after.model_dump(exclude={"envelope"}))

    async def discard(self, dead_letter_id: str) -> DeadLetter:
        record = await self._get(dead_letter_id)

        def without(index: Index | None) -> Index | None:
            return Index(ids=[i for i in index.ids if i != dead_letter_id]) if index else None

        await self.index.update(INDEX, without)
        await self.records.delete(self.key(dead_letter_id))
        return DeadLetter.model_validate(record.model_dump(exclude={"envelope"}))


def _published_topics() -> set[Topic]:
    return {topic for topic, _ in events.ROUTES.values()}
