"""The EventPublisher port: structured CloudEvents (services.common.events) through the SDK's pub/sub API."""

import json
from typing import Any

from pydantic import BaseModel

from services.common import events
from services.common.dapr_adapters.sidecar import SDK_ERRORS, Sidecar, sdk_message
from services.common.metrics import EventMetrics
from services.common.ports import SidecarUnavailable

UNAVAILABLE = "the event bus is unavailable"


class DaprPublisher:
    """Publishes each event where events.channels says: on `pubsub`, and for the events every
    replica hears, on `replica_pubsub` under their replica topics too."""

    def __init__(
        self,
        sidecar: Sidecar,
        pubsub: str,
        source: str,
        topic_prefix: str = "",
        metrics: EventMetrics | None = None,
        replica_pubsub: str = "pubsub-replicas",
    ):
        self.sidecar, self.pubsub, self.source, self.topic_prefix = sidecar, pubsub, source, topic_prefix
        self.replica_pubsub = replica_pubsub
        self.metrics = metrics
        """Counts what is published; the kit sets it once the app's metrics registry exists (count_events)."""

    async def publish(
        self, event_type: events.EventType, payload: BaseModel, subject: str | None = None, event_id: str | None = None
    ) -> None:
        body = events.encode(event_type, self.source, payload, subject, event_id)
        # One id for every copy: a subscriber that hears both (none does today) can tell.
        for to_replicas, topic in events.channels(event_type):
            await self._send(topic, body, f"publishing {event_type}", to_replicas)

    async def publish_many(self, event_type: events.EventType, payloads: list[BaseModel]) -> None:
        if not payloads:
            return
        # Each entry a structured CloudEvent, as publish() sends: the sidecar passes it on as it is.
        bodies = [events.encode(event_type, self.source, payload) for payload in payloads]
        for to_replicas, topic in events.channels(event_type):
            await self._send_many(topic, bodies, event_type, self.replica_pubsub if to_replicas else self.pubsub)

    async def _send_many(self, topic: str, bodies: list[bytes], event_type: events.EventType, pubsub: str) -> None:
        client = await self.sidecar.client()
        try:
            reply = await client.publish_events(
                pubsub, f"{self.topic_prefix}{topic}", bodies, data_content_type=events.CLOUDEVENTS_JSON
            )
        except SDK_ERRORS as exc:
            self._count(topic, 0, len(bodies))
            raise SidecarUnavailable(
                f"bulk publishing {len(bodies)} {event_type} to {pubsub}: {sdk_message(exc)}", UNAVAILABLE
            ) from exc
        self._count(topic, len(bodies) - len(reply.failed_entries), len(reply.failed_entries))
        if reply.failed_entries:
            raise SidecarUnavailable(
                f"bulk publishing {event_type} to {pubsub}: {len(reply.failed_entries)} of {len(bodies)} "
                f"events failed, the first with: {reply.failed_entries[0].error}",
                UNAVAILABLE,
            )

    async def republish(self, topic: events.Topic, envelope: dict[str, Any]) -> None:
        body = json.dumps(envelope).encode()
        await self._send(str(topic), body, f"publishing event {envelope.get('id')} again")

    async def _send(self, topic: str, body: bytes, doing: str, to_replicas: bool = False) -> None:
        """One structured CloudEvent to a topic (named without the deployment's prefix), as it is."""
        client = await self.sidecar.client()
        full, pubsub = f"{self.topic_prefix}{topic}", self.replica_pubsub if to_replicas else self.pubsub
        try:
            await client.publish_event(pubsub, full, body, data_content_type=events.CLOUDEVENTS_JSON)
        except SDK_ERRORS as exc:
            self._count(topic, 0, 1)
            raise SidecarUnavailable(f"{doing} to {full} on {pubsub}: {sdk_message(exc)}", UNAVAILABLE) from exc
        self._count(topic, 1, 0)

    def _count(self, topic: str, sent: int, failed: int) -> None:
        if self.metrics is None:
            return
        if sent:
            self.metrics.sent(topic, sent)
        if failed:
            self.metrics.not_sent(topic, failed)


def count_published(ports: object, metrics: EventMetrics) -> None:
    """Has a service's publisher count what it publishes, when it is the sidecar's (the kit calls
    this once the app's registry exists; a test's fake publisher keeps its own record)."""
    publisher = getattr(ports, "publisher", None)
    if isinstance(publisher, DaprPublisher):
        publisher.metrics = metrics
