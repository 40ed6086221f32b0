"""DaprPublisher.publish_many over a stand-in for the SDK's client: what it hands the sidecar's
bulk publish, and how it reports entries the sidecar did not accept."""

import asyncio
import json
from types import SimpleNamespace

import pytest

from services.common.dapr_adapters import DaprPublisher
from services.common.events import CLOUDEVENTS_JSON, EventType, PredictionLogged
from services.common.ports import SidecarUnavailable


class Client:
    def __init__(self, failed: int = 0):
        self.failed, self.calls = failed, []

    async def publish_events(self, pubsub, topic, data, data_content_type=None):
        self.calls.append((pubsub, topic, data, data_content_type))
        failures = [SimpleNamespace(entry_id=str(i), error="broker said no") for i in range(self.failed)]
        return SimpleNamespace(failed_entries=failures)


class Sidecar:
    def __init__(self, client: Client):
        self._client = client

    async def client(self) -> Client:
        return self._client


def entry(i: int) -> PredictionLogged:
    return PredictionLogged(
        model="flowers",
        version=1,
        request_id=f"r{i}",
        at="2026-01-01T00:00:00Z",
        records=1,
        inputs=[{"length": 1.0}],
        predictions=["setosa"],
        latency_ms=1.0,
    )


def test_each_entry_is_a_structured_cloudevent_on_the_event_types_topic():
    client = Client()
    publisher = DaprPublisher(Sidecar(client), "pubsub", "/daprml/inference", topic_prefix="t1-")
    asyncio.run(publisher.publish_many(EventType.PREDICTION_LOGGED, [entry(1), entry(2)]))
    [(pubsub, topic, bodies, content_type)] = client.calls
    assert (pubsub, topic, content_type) == ("pubsub", "t1-predictions", CLOUDEVENTS_JSON)
    events = [json.loads(b) for b in bodies]
    assert [e["type"] for e in events] == [str(EventType.PREDICTION_LOGGED)] * 2
    assert [e["data"]["request_id"] for e in events] == ["r1", "r2"]
    assert events[0]["source"] == "/daprml/inference" and events[0]["id"] != events[1]["id"]


def test_entries_the_sidecar_refuses_raise_naming_how_many():
    publisher = DaprPublisher(Sidecar(Client(failed=2)), "pubsub", "/daprml/inference")
    with pytest.raises(SidecarUnavailable, match="2 of 3 events failed"):
        asyncio.run(publisher.publish_many(EventType.PREDICTION_LOGGED, [entry(i) for i in range(3)]))


def test_nothing_to_publish_calls_nothing():
    client = Client()
    asyncio.run(DaprPublisher(Sidecar(client), "pubsub", "/x").publish_many(EventType.PREDICTION_LOGGED, []))
    assert client.calls == []
