"""The gateway keeps the deployment's dead letters (what its sidecar delivers from the
dead-letter topic), bounded, and lets an admin list, replay and discard them."""

import base64
import json

from fastapi.testclient import TestClient

from services.common import events
from services.common.events import EventType, ModelAliasChanged, Topic
from services.common.ports import SidecarUnavailable
from services.gateway.app import create_app
from services.gateway.keys import Role
from services.gateway.ports import GatewayPorts
from services.gateway.settings import Settings
from tests.api.conftest import provisioned
from tests.fakes import fake_ports

MOVED = ModelAliasChanged(model="iris", alias="champion", from_version=1, to_version=2, reason="promotion")


def published(event_id: str, topic: str = "model-aliases", **changes) -> bytes:
    """A CloudEvent as Dapr stores it once published (it adds topic, pubsubname, traceparent)."""
    envelope = json.loads(events.encode(EventType.MODEL_ALIAS_CHANGED, "/daprml/registry", MOVED, event_id=event_id))
    envelope |= {"topic": topic, "pubsubname": "pubsub", "traceparent": "00-1-2-01"} | changes
    return json.dumps(envelope).encode()


def dead_letter(client, message: bytes):
    """Delivers one message of the dead-letter topic as the gateway's sidecar does (raw payload)."""
    wrapped = {"id": "x", "topic": "dead-letters", "data_base64": base64.b64encode(message).decode()}
    return client.post("/internal/events/dead-letters", json=wrapped)


def test_a_dead_letter_is_listed_with_what_it_was_and_replayed_to_its_topic_as_it_was(make_client):
    client = make_client("gateway")
    assert dead_letter(client, published("e1")).json() == {"status": "SUCCESS"}
    (listed,) = client.get("/api/events/dead-letters").json()
    assert listed["event_id"] == "e1" and listed["topic"] == "model-aliases"
    assert listed["type"] == str(EventType.MODEL_ALIAS_CHANGED) and listed["source"] == "/daprml/registry"
    assert listed["payload"]["model"] == "iris" and listed["times"] == 1 and listed["received_at"]
    assert listed["reason"] is None and listed["subscriber"] is None and listed["replays"] == 0

    replayed = client.post(f"/api/events/dead-letters/{listed['id']}/replay")
    assert replayed.status_code == 202 and replayed.json()["replays"] == 1 and replayed.json()["replayed_at"]
    ((topic, envelope),) = client.ports.publisher.republished
    assert topic == Topic.MODEL_ALIASES
    assert envelope["id"] == "e1" and envelope["data"]["model"] == "iris"
    assert not {"topic", "pubsubname", "traceparent"} & envelope.keys()

    # The replay failed again: the same dead letter, once more.
    dead_letter(client, published("e1"))
    (again,) = client.get("/api/events/dead-letters").json()
    assert again["id"] == listed["id"] and again["times"] == 2 and again["replays"] == 1

    discarded = client.delete(f"/api/events/dead-letters/{listed['id']}")
    assert discarded.status_code == 200 and discarded.json()["event_id"] == "e1"
    assert client.get("/api/events/dead-letters").json() == []
    assert client.delete(f"/api/events/dead-letters/{listed['id']}").status_code == 404


def test_an_invalid_event_says_why_and_junk_is_kept_as_text(make_client):
    client = make_client("gateway")
    dead_letter(client, published("bad", data={"model": "iris"}))
    dead_letter(client, b"\xffnot json")
    junk, invalid = client.get("/api/events/dead-letters").json()
    assert "invalid io.daprml.model.alias.changed.v1 payload" in invalid["reason"]
    assert junk["reason"].startswith("not a CloudEvent") and "not json" in junk["payload"]
    assert client.post(f"/api/events/dead-letters/{junk['id']}/replay").status_code == 409


def gateway_with(**settings) -> TestClient:
    keys, secrets = provisioned(admin=[Role.ADMIN])
    ports = fake_ports(GatewayPorts, secrets=secrets)
    client = TestClient(create_app(Settings(**settings), ports), headers={"authorization": f"Bearer {keys['admin']}"})
    client.ports = ports
    return client


def test_only_the_latest_are_kept():
    client = gateway_with(dead_letters_kept=3)
    for i in range(5):
        dead_letter(client, published(f"e{i}"))
    assert [d["event_id"] for d in client.get("/api/events/dead-letters").json()] == ["e4", "e3", "e2"]
    records = [k for k in client.ports.state.items if k.startswith("dead-letter:")]
    assert len(records) == 3


def test_replay_goes_only_to_this_deployments_own_topics():
    client = gateway_with(topic_prefix="run1.")
    for event_id, topic in (
        ("other", "run2.model-aliases"),
        ("dlq", "run1.dead-letters"),
        ("ours", "run1.model-aliases"),
    ):
        dead_letter(client, published(event_id, topic=topic))
    listed = {d["event_id"]: d["id"] for d in client.get("/api/events/dead-letters").json()}
    for refused in ("other", "dlq"):
        reply = client.post(f"/api/events/dead-letters/{listed[refused]}/replay")
        assert reply.status_code == 409 and "cannot be replayed" in reply.json()["detail"]
    assert client.post(f"/api/events/dead-letters/{listed['ours']}/replay").status_code == 202
    assert [t for t, _ in client.ports.publisher.republished] == [Topic.MODEL_ALIASES]


def test_paths_are_validated_and_only_admins_may(make_client):
    client = make_client("gateway")
    for path in ("/api/events/dead-letters/..%2f..%2fv1.0/replay", "/api/events/dead-letters/ABC/replay"):
        assert client.post(path).status_code in (400, 404)
    assert client.delete("/api/events/dead-letters/" + "g" * 16).status_code == 400
    assert client.post("/api/events/dead-letters/" + "0" * 16 + "/replay").status_code == 404
    keys, secrets = provisioned(reader=[Role.READER])
    reader = make_client("gateway", secrets=secrets)
    reader.headers["authorization"] = f"Bearer {keys['reader']}"
    assert reader.get("/api/events/dead-letters").status_code == 403
    del reader.headers["authorization"]
    assert reader.get("/api/events/dead-letters").status_code == 401


def test_a_state_store_outage_has_the_dead_letter_delivered_again(make_client):
    client = make_client("gateway")

    async def down(key):
        raise SidecarUnavailable("redis is down")

    client.ports.state.get = down
    assert dead_letter(client, published("e1")).json() == {"status": "RETRY"}
