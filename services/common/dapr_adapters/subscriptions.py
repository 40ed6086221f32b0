"""Event deliveries: /dapr/subscribe for the sidecar, one delivery route per event type, and the
dead-letter topic for the service that keeps dead letters."""

import base64
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from dapr.ext.fastapi import DaprApp
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.common import events
from services.common.metrics import EventMetrics
from services.common.ports import ConcurrencyConflict, SidecarUnavailable
from services.common.settings import ServiceSettings

log = logging.getLogger(__name__)


async def deliver(
    envelope: bytes, event_type: events.EventType, handler: events.EventHandler, app_id: str = "", topic: str = ""
) -> str:
    """What Dapr should do with one delivery, every failure logged with its reason (Dapr moves
    the event to the dead-letter topic without it). SUCCESS; DROP for an event no retry can make
    valid (the envelope or payload is invalid, or the handler raised InvalidEvent): Dapr moves it
    to the dead-letter topic at once; RETRY when the handler failed otherwise (a sidecar or store
    down, a bug): the resiliency policy backs off and tries again, a bounded number of times,
    then Dapr moves it to the dead-letter topic."""
    where = f"{app_id or 'this app'} on {topic or events.topic_of(event_type)}"
    try:
        attributes, payload = events.decode(envelope, event_type)
    except events.InvalidEvent as exc:
        log.warning("dropping an invalid %s event (%s; dead-lettered): %s", event_type, where, exc)
        return "DROP"
    event_id = attributes.get("id")
    try:
        await handler(attributes, payload)
    except events.InvalidEvent as exc:
        log.warning("dropping %s event %s (%s; dead-lettered): %s", event_type, event_id, where, exc)
        return "DROP"
    except (SidecarUnavailable, ConcurrencyConflict) as exc:
        log.warning("%s event %s will be retried (%s): %s", event_type, event_id, where, exc)
        return "RETRY"
    except Exception as exc:
        log.error("%s event %s failed (%s), will be retried: %r", event_type, event_id, where, exc, exc_info=exc)
        return "RETRY"
    return "SUCCESS"


DeadLetterHandler = Callable[[bytes], Awaitable[None]]
"""Receives each message of the dead-letter topic as it was published (bytes: usually a
CloudEvent, but whatever reached the topic)."""

DEAD_LETTER_ROUTE = f"/internal/events/{events.DEAD_LETTERS}"


def declare_subscriptions(
    app: FastAPI,
    settings: ServiceSettings,
    subscriptions: Mapping[events.EventType, events.EventHandler],
    every_replica: Mapping[events.EventType, events.EventHandler] | None = None,
    dead_letters: DeadLetterHandler | None = None,
    metrics: EventMetrics | None = None,
) -> None:
    """Serves /dapr/subscribe for the app (the sidecar asks it at start) and one delivery
    route per event type, /internal/events/<topic>, which hands each event to its handler.
    Those of `every_replica` (events.EVERY_REPLICA) come through the replica pub/sub component
    instead, under their replica topics, on /internal/events/replica/<topic>. Every subscription
    names the deployment's dead-letter topic (events.dead_letter_topic), where Dapr moves what a
    handler drops or keeps failing; the replica ones events.REPLICA_DEAD_LETTERS. `dead_letters`, for the service that
    keeps them, subscribes to that topic itself (raw, so that nothing on it is unreadable).
    `metrics` counts each delivery's outcome, and each dead letter kept."""
    dapr_app = DaprApp(app)
    prefix = settings.topic_prefix
    dead_letter_topic = events.dead_letter_topic(prefix)
    for event_type, handler in subscriptions.items():
        topic = events.topic_of(event_type, prefix)
        dapr_app.subscribe(
            pubsub=settings.pubsub,
            topic=topic,
            route=f"/internal/events/{events.topic_of(event_type)}",
            dead_letter_topic=dead_letter_topic,
        )(_delivery(event_type, handler, settings, topic, metrics))
    for event_type, handler in (every_replica or {}).items():
        topic = events.replica_topic_of(event_type, prefix)
        dapr_app.subscribe(
            pubsub=settings.replica_pubsub,
            topic=topic,
            route=f"/internal/events/replica/{events.topic_of(event_type)}",
            dead_letter_topic=f"{prefix}{events.REPLICA_DEAD_LETTERS}",
        )(_delivery(event_type, handler, settings, topic, metrics))
    if dead_letters is not None:
        # No dead-letter topic for the dead-letter topic: what fails here is logged, and what
        # fails for want of the state store stays in the broker to be delivered again.
        dapr_app.subscribe(
            pubsub=settings.pubsub,
            topic=dead_letter_topic,
            metadata={"rawPayload": "true"},
            route=DEAD_LETTER_ROUTE,
        )(_dead_letter_delivery(dead_letters, settings, metrics))
    for api_route in app.routes:
        if str(getattr(api_route, "path", "")).startswith(("/internal/events/", "/dapr/")):
            api_route.include_in_schema = False  # type: ignore[attr-defined]  # the sidecar's, not an API


def _from_sidecar(request: Request, settings: ServiceSettings) -> bool:
    """Whether a delivery carries the app token, checked here too: the gateway's middleware does
    not ask for it (clients call it, with API keys), yet its deliveries must come from its sidecar."""
    token = settings.app_api_token
    if token is None:
        return True
    given = request.headers.get("dapr-api-token", "")
    return hmac.compare_digest(given.encode(), token.get_secret_value().encode())


def _refused() -> JSONResponse:
    return JSONResponse({"detail": "event deliveries come from this app's Dapr sidecar only"}, status_code=401)


def _delivery(
    event_type: events.EventType,
    handler: events.EventHandler,
    settings: ServiceSettings,
    topic: str,
    metrics: EventMetrics | None = None,
) -> Callable[[Request], Any]:
    label = topic.removeprefix(settings.topic_prefix)  # the fixed name, without the deployment's prefix

    async def receive(request: Request) -> Any:
        if not _from_sidecar(request, settings):
            return _refused()
        status = await deliver(await request.body(), event_type, handler, settings.app_id, topic)
        if metrics is not None:
            metrics.handled(label, status)
        return {"status": status}

    return receive


def _came_from(message: bytes) -> str | None:
    """The topic a dead letter names (Dapr keeps the original's in its CloudEvent), if it does."""
    try:
        topic = json.loads(message).get("topic")
    except (ValueError, AttributeError):
        return None
    return topic if isinstance(topic, str) else None


def _dead_letter_delivery(
    handler: DeadLetterHandler, settings: ServiceSettings, metrics: EventMetrics | None = None
) -> Callable[[Request], Any]:
    published = {topic for topic, _ in events.ROUTES.values()}

    async def receive(request: Request) -> Any:
        if not _from_sidecar(request, settings):
            return _refused()
        try:
            wrapper = json.loads(await request.body())
            message = base64.b64decode(wrapper["data_base64"], validate=True)
        except (ValueError, KeyError, TypeError) as exc:
            log.error("dropping a dead letter the sidecar did not wrap as a raw payload: %r", exc)
            return {"status": "DROP"}
        try:
            await handler(message)
        except (SidecarUnavailable, ConcurrencyConflict) as exc:
            log.warning("a dead letter could not be kept yet, will be retried: %s", exc)
            return {"status": "RETRY"}
        except Exception as exc:
            log.error("dropping a dead letter that could not be kept: %r (%.200r)", exc, message, exc_info=exc)
            return {"status": "DROP"}
        if metrics is not None:
            metrics.dead_letter(_came_from(message), published, settings.topic_prefix)
        return {"status": "SUCCESS"}

    return receive
