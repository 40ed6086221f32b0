"""Dead letters with real sidecars: a subscriber built with the service kit (flaky.py) behind
its own daprd, the session stack's gateway keeping what its subscriptions give up on.

The retrying subscriber runs with the project's delivery policy. The poison one runs with a
shorter copy of it (3 retries, 100 ms apart), swapped into its own components folder: the
project's policy takes about 2 minutes to give up (tests/unit/deploy/test_resiliency.py checks it is
bounded); what this test checks, that Dapr gives up after maxRetries and moves the event to the
dead-letter topic, does not depend on how long it waits."""

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml

from services.common import events
from services.common.events import EventType, PredictionLogged
from tests.integration.conftest import poll

FLAKY = str(Path(__file__).with_name("flaky.py"))
SHORT_RETRIES = {"policy": "constant", "duration": "100ms", "maxRetries": 3}


def prediction(request_id: str) -> PredictionLogged:
    return PredictionLogged(
        model="iris",
        version=1,
        request_id=request_id,
        at=datetime.now(UTC),
        records=1,
        inputs=[{"x": 1}],
        predictions=["a"],
        latency_ms=1.0,
    )


def publish(stack, solo, body: bytes) -> None:
    """Through the subscriber's own sidecar, as any publisher would."""
    topic = events.topic_of(EventType.PREDICTION_LOGGED, stack.topic_prefix)
    url = f"http://127.0.0.1:{solo.apps[0].http_port}/v1.0/publish/pubsub/{topic}"
    headers = {"content-type": events.CLOUDEVENTS_JSON} | solo.sidecar_headers()
    assert httpx.post(url, content=body, headers=headers, timeout=10).status_code == 204


def send(stack, solo, request_id: str) -> str:
    event_id = f"{request_id}-{uuid.uuid4().hex[:8]}"
    publish(stack, solo, events.encode(EventType.PREDICTION_LOGGED, "/test", prediction(request_id), event_id=event_id))
    return event_id


def deliveries(solo) -> dict:
    url = f"http://127.0.0.1:{solo.apps[0].app_port}/deliveries"
    return httpx.get(url, headers=solo.app_headers(), timeout=10).json()


def dead_letter(gateway, event_id: str, times: int = 1) -> dict | None:
    """The gateway's dead letter of an event, once it has arrived `times` times."""
    reply = gateway.get("/api/events/dead-letters")
    assert reply.status_code == 200, reply.text
    return next((d for d in reply.json() if d["event_id"] == event_id and d["times"] >= times), None)


def with_delivery_retries(solo, policy: dict) -> None:
    for folder in yaml.safe_load(solo.run_file.read_text())["common"]["resourcesPaths"]:
        path = Path(folder) / "resiliency.yaml"
        if path.exists():
            doc = yaml.safe_load(path.read_text())
            doc["spec"]["policies"]["retries"]["deliver"] = policy
            path.write_text(yaml.safe_dump(doc, sort_keys=False))
            return
    pytest.fail("the one-app stack has no resiliency.yaml")


def test_a_subscriber_that_fails_twice_processes_the_event_once_and_invalid_ones_are_dead_lettered(
    stack, one_app_stack, gateway
):
    solo = one_app_stack(["python", FLAKY], like="training")
    solo.start(timeout_s=60)
    event_id = send(stack, solo, "flaky-1")
    assert poll(lambda: event_id in deliveries(solo)["processed"], 30), deliveries(solo)
    seen = deliveries(solo)
    assert seen["attempts"][event_id] == 3 and seen["processed"].count(event_id) == 1
    assert dead_letter(gateway, event_id) is None

    # An invalid event (its payload misses every field) is dropped at once, into the dead letters.
    invalid = f"invalid-{uuid.uuid4().hex[:8]}"
    body = {"specversion": "1.0", "id": invalid, "source": "/test", "type": str(EventType.PREDICTION_LOGGED)}
    publish(stack, solo, json.dumps(body | {"data": {"model": "iris"}}).encode())
    found = poll(lambda: dead_letter(gateway, invalid), 30)
    assert found, "the dropped event never reached the gateway's dead letters"
    assert found["topic"] == events.topic_of(EventType.PREDICTION_LOGGED, stack.topic_prefix)
    assert found["type"] == str(EventType.PREDICTION_LOGGED) and found["source"] == "/test"
    assert "invalid io.daprml.inference.prediction.logged.v1 payload" in found["reason"]
    assert found["payload"] == {"model": "iris"}
    # The session stack's monitor subscribes to predictions too and drops it as well: two
    # arrivals before the replay, so that the replay's own cannot be mistaken for the monitor's.
    assert poll(lambda: dead_letter(gateway, invalid, times=2), 30), "the monitor did not drop it too"
    # Replayed, both subscribers drop it again: back in the dead letters, twice more.
    assert gateway.post(f"/api/events/dead-letters/{found['id']}/replay").status_code == 202
    assert poll(lambda: dead_letter(gateway, invalid, times=4), 30), "the replay never came back"
    assert gateway.delete(f"/api/events/dead-letters/{found['id']}").status_code == 200


def test_a_poison_event_ends_in_the_dead_letters_after_its_retries_and_replays(stack, one_app_stack, gateway):
    solo = one_app_stack(["python", FLAKY], like="training")
    with_delivery_retries(solo, SHORT_RETRIES)
    solo.start(timeout_s=60)
    poison = send(stack, solo, "poison-1")
    found = poll(lambda: dead_letter(gateway, poison), 30)
    assert found, f"the poison event never reached the dead letters: {deliveries(solo)}"
    tries = 1 + SHORT_RETRIES["maxRetries"]
    assert deliveries(solo)["attempts"][poison] == tries
    assert found["reason"] is None and found["payload"]["request_id"] == "poison-1"

    # No endless redelivery: once a later poison event has been dead-lettered too, the first
    # still had its tries and no more.
    later = send(stack, solo, "poison-2")
    assert poll(lambda: dead_letter(gateway, later), 30)
    assert deliveries(solo)["attempts"][poison] == tries

    replayed = gateway.post(f"/api/events/dead-letters/{found['id']}/replay")
    assert replayed.status_code == 202 and replayed.json()["replays"] == 1
    assert poll(lambda: dead_letter(gateway, poison, times=2), 30), "the replay never came back"
    assert deliveries(solo)["attempts"][poison] == 2 * tries
