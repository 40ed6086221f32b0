import json

from services.common import events
from services.common.events import EventType, RoundtripPing


def test_training_declares_its_subscriptions_to_dapr(make_client):
    subs = make_client("training").get("/dapr/subscribe").json()
    assert subs == [
        {
            "pubsubname": "pubsub",
            "topic": "roundtrip",
            "route": "/internal/events/roundtrip",
            "metadata": {},
            "deadLetterTopic": "dead-letters",
        },
        {
            "pubsubname": "pubsub",
            "topic": "dataset-versions",
            "route": "/internal/events/dataset-versions",
            "metadata": {},
            "deadLetterTopic": "dead-letters",
        },
    ]


def test_ingestion_declares_no_subscription(make_client):
    assert make_client("ingestion").get("/dapr/subscribe").status_code == 404


def test_a_valid_ping_is_recorded_and_served(make_client):
    client = make_client("training")
    client.ports.blobs.blobs["roundtrip/r9.json"] = b'{"run_id": "r9", "written_by": "ingestion"}'
    body = events.encode(
        EventType.ROUNDTRIP_PING, "/daprml/ingestion", RoundtripPing(run_id="r9", blob_key="roundtrip/r9.json")
    )
    reply = client.post("/internal/events/roundtrip", content=body, headers={"content-type": events.CLOUDEVENTS_JSON})
    assert reply.json() == {"status": "SUCCESS"}
    assert client.get("/internal/roundtrip/r9").json()["blob_ok"] is True
    assert client.delete("/internal/roundtrip/r9").status_code == 204
    assert client.get("/internal/roundtrip/r9").status_code == 404


def test_a_malformed_event_is_dropped_not_retried_and_writes_nothing(make_client):
    client = make_client("training")
    for body in (b"not json at all", b"{}", json.dumps({"type": "io.daprml.roundtrip.ping.v1"}).encode()):
        reply = client.post("/internal/events/roundtrip", content=body)
        assert reply.status_code == 200 and reply.json() == {"status": "DROP"}
    assert client.ports.state.items == {}


def test_an_unknown_ping_is_404_with_a_message(make_client):
    reply = make_client("training").get("/internal/roundtrip/never")
    assert reply.status_code == 404 and "never" in reply.json()["detail"]


def test_ingestion_starts_a_roundtrip_and_cleans_its_blob(make_client):
    client = make_client("ingestion")
    steps = client.post("/internal/roundtrip/r1").json()["steps"]
    assert all(s["ok"] for s in steps)
    assert "roundtrip/r1.json" in client.ports.blobs.blobs
    assert client.delete("/internal/roundtrip/r1").status_code == 204
    assert client.ports.blobs.blobs == {}


def test_a_run_id_with_unsafe_characters_is_422_and_touches_nothing(make_client):
    client = make_client("ingestion")
    reply = client.post("/internal/roundtrip/bad..id!")
    assert reply.status_code == 422
    assert client.ports.blobs.blobs == {} and client.ports.publisher.sent == []
