"""Every subscription the kit declares names the deployment's dead-letter topic; the service
that keeps dead letters subscribes to that topic raw, and only its sidecar may deliver."""

import base64
import json

from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from services.common import dapr_adapters, events
from services.common.events import EventType
from services.common.ports import SidecarUnavailable
from services.common.settings import ServiceSettings


async def ignore(attributes, payload):
    return None


def app_with(settings: ServiceSettings, dead_letters=None) -> TestClient:
    app = FastAPI()
    dapr_adapters.declare_subscriptions(
        app,
        settings,
        {EventType.ROUNDTRIP_PING: ignore},
        {EventType.MODEL_ALIAS_CHANGED: ignore},
        dead_letters,
    )
    return TestClient(app)


def test_the_dead_letter_topic_is_named_once_with_the_deployments_prefix():
    assert events.dead_letter_topic() == "dead-letters"
    assert events.dead_letter_topic("run1.") == "run1.dead-letters"
    assert events.json_schemas()["envelope"]["dead_letter_topic"] == events.DEAD_LETTERS


def test_an_event_every_replica_hears_goes_on_the_replica_component_under_a_topic_of_its_own():
    once_and_every = events.channels(EventType.MODEL_TRAFFIC_CHANGED, "run1.")
    assert once_and_every == [(False, "run1.model-traffic"), (True, "run1.model-traffic-replicas")]
    assert events.channels(EventType.INSTANCE_HEARTBEAT) == [(True, "instances-replicas")]
    assert events.channels(EventType.PREDICTION_LOGGED) == [(False, "predictions")]
    topics = events.all_topics()
    assert len(topics) == len(set(topics)) and "instances" not in topics and "dead-letters-replicas" in topics
    schema = events.json_schemas()["events"]
    assert schema[EventType.MODEL_ALIAS_CHANGED]["every_replica_topic"] == "model-aliases-replicas"
    assert "topic" not in schema[EventType.INSTANCE_HEARTBEAT]


def test_every_subscription_names_the_dead_letter_topic_and_the_keeper_reads_it_raw():
    kept: list[bytes] = []

    async def keep(message: bytes) -> None:
        kept.append(message)

    client = app_with(ServiceSettings(topic_prefix="run1."), keep)
    subscriptions = client.get("/dapr/subscribe").json()
    consumers = {s["topic"]: s for s in subscriptions if s["topic"] != "run1.dead-letters"}
    assert set(consumers) == {"run1.roundtrip", "run1.model-aliases-replicas"}
    assert consumers["run1.roundtrip"]["pubsubname"] == "pubsub"
    assert consumers["run1.roundtrip"]["deadLetterTopic"] == "run1.dead-letters"
    # Every replica hears alias moves under a topic `pubsub` never declares (RabbitMQ would refuse
    # one of two declarations of one exchange with other settings), dead letters likewise.
    every_replica = consumers["run1.model-aliases-replicas"]
    assert every_replica["pubsubname"] == "pubsub-replicas"
    assert every_replica["deadLetterTopic"] == "run1.dead-letters-replicas"
    assert every_replica["route"] == "/internal/events/replica/model-aliases"
    (keeper,) = [s for s in subscriptions if s["topic"] == "run1.dead-letters"]
    # No dead-letter topic of its own (it would loop), every message as raw bytes.
    assert "deadLetterTopic" not in keeper and keeper["metadata"] == {"rawPayload": "true"}
    assert keeper["pubsubname"] == "pubsub" and keeper["route"] == "/internal/events/dead-letters"
    assert "/internal/events/dead-letters" not in client.app.openapi()["paths"]

    original = b'{"id": "e1", "type": "io.other", "topic": "run1.roundtrip"}'
    wrapped = {"id": "w", "data_base64": base64.b64encode(original).decode(), "topic": "run1.dead-letters"}
    assert client.post("/internal/events/dead-letters", json=wrapped).json() == {"status": "SUCCESS"}
    assert kept == [original]
    assert client.post("/internal/events/dead-letters", content=b"not json").json() == {"status": "DROP"}


def test_a_dead_letter_not_kept_for_want_of_the_store_is_retried():
    async def down(message: bytes) -> None:
        raise SidecarUnavailable("state store down")

    client = app_with(ServiceSettings(), down)
    wrapped = {"data_base64": base64.b64encode(b"{}").decode()}
    assert client.post("/internal/events/dead-letters", json=wrapped).json() == {"status": "RETRY"}


def test_deliveries_need_the_app_token_even_where_the_app_does_not_ask_for_it():
    kept: list[bytes] = []

    async def keep(message: bytes) -> None:
        kept.append(message)

    settings = ServiceSettings(app_api_token=SecretStr("t0ken"), require_app_token=False)
    client = app_with(settings, keep)
    wrapped = {"data_base64": base64.b64encode(b"{}").decode()}
    forged = client.post("/internal/events/dead-letters", json=wrapped)
    assert forged.status_code == 401 and kept == []
    ping = events.encode(EventType.ROUNDTRIP_PING, "/t", events.RoundtripPing(run_id="r", blob_key="roundtrip/r.json"))
    assert client.post("/internal/events/roundtrip", content=ping).status_code == 401
    sent = client.post("/internal/events/dead-letters", json=wrapped, headers={"dapr-api-token": "t0ken"})
    assert sent.json() == {"status": "SUCCESS"} and kept == [b"{}"]
    assert json.loads(kept[0]) == {}
