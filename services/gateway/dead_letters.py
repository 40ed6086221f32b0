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
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from services.common import events
from services.common.errors import ClientError, Missing
from services.common.events import EventType, Topic
from services.common.ports import EventPublisher, StateStore
from services.common.state import Documents
from services.gateway.access import ADMIN
from services.gateway.deps import PortsDep, SettingsDep

INDEX = "dead-letters"
DEAD_LETTER_ID = r"^[0-9a-f]{16}$"
MAX_KEPT_BYTES = 256 * 1024  # a message bigger than this is kept cut short, and cannot be replayed
# Attributes Dapr adds when it publishes; a replay gets fresh ones.
_DAPR_ADDED = ("topic", "pubsubname", "traceid", "traceparent", "tracestate")


class CannotReplay(ClientError):
    status = 409


class DeadLetter(BaseModel):
    id: str = Field(description="this dead letter's id (the same event dead-lettered again keeps it)")
    event_id: str | None = Field(description="the CloudEvent's id, as the subscribers' logs name it")
    topic: str | None = Field(description="the topic it was published to")
    type: str | None
    source: str | None
    subject: str | None = None
    subscriber: str | None = Field(None, description="the app that gave up on it, when known (Dapr does not say)")
    reason: str | None = Field(
        None,
        description="why it was dead-lettered, when the gateway can tell (an invalid event); otherwise the "
        "subscriber's log has the error, under the event id",
    )
    received_at: datetime = Field(description="when it (last) reached the dead-letter topic")
    times: int = Field(1, description="how many times it reached the dead-letter topic")
    replayed_at: datetime | None = None
    replays: int = 0
    payload: Any = Field(description="the event's data (or the message's text when it was no CloudEvent)")


class Kept(DeadLetter):
    """What is stored: the dead letter and the CloudEvent itself, to publish again."""

    envelope: dict[str, Any] | None = None


class Index(BaseModel):
    ids: list[str] = Field(default_factory=list)  # newest first


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
    def __init__(self, state: StateStore, kept: int, topic_prefix: str):
        self.records = Documents(state, Kept)
        self.index = Documents(state, Index)
        self.kept, self.topic_prefix = kept, topic_prefix

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

    async def replay(self, dead_letter_id: str, publisher: EventPublisher) -> DeadLetter:
        record = await self._get(dead_letter_id)
        topic = self._topic(record)
        assert record.envelope is not None
        await publisher.republish(topic, record.envelope)
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


router = APIRouter(prefix="/api/events/dead-letters", tags=["events"])
DeadLetterId = Annotated[str, Path(pattern=DEAD_LETTER_ID, description="the id GET /api/events/dead-letters gives")]


def _dead_letters(ports: PortsDep, settings: SettingsDep) -> DeadLetters:
    return DeadLetters(ports.state, settings.dead_letters_kept, settings.topic_prefix)


@router.get("", response_model=list[DeadLetter], dependencies=[ADMIN])
async def list_dead_letters(ports: PortsDep, settings: SettingsDep) -> list[DeadLetter]:
    """The latest events a subscriber gave up on (dropped as invalid, or failed past its
    delivery retries), newest first."""
    return await _dead_letters(ports, settings).list()


@router.post("/{dead_letter_id}/replay", status_code=202, response_model=DeadLetter, dependencies=[ADMIN])
async def replay_dead_letter(dead_letter_id: DeadLetterId, ports: PortsDep, settings: SettingsDep) -> DeadLetter:
    """Publishes the event again, as it was, to the topic it came from (one of this deployment's);
    it stays listed, with replayed_at, and comes back if it fails again."""
    return await _dead_letters(ports, settings).replay(dead_letter_id, ports.publisher)


@router.delete("/{dead_letter_id}", response_model=DeadLetter, dependencies=[ADMIN])
async def discard_dead_letter(dead_letter_id: DeadLetterId, ports: PortsDep, settings: SettingsDep) -> DeadLetter:
    """Forgets a dead letter."""
    return await _dead_letters(ports, settings).discard(dead_letter_id)
