"""A dead letter as admins see it, and as the gateway keeps it (with the event, to replay)."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

DEAD_LETTER_ID = r"^[0-9a-f]{16}$"


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
