"""The inference app hears of alias moves through the replica pub/sub component (every
replica receives each event) and swaps what it serves."""

from services.common import events
from services.common.events import EventType, ModelAliasChanged
from tests.unit.inference.models import FLOWER_FEATURES, Registry, flower_model

ROWS = [{"length": 1.4, "width": 0.5, "colour": "red"}]


def test_alias_and_traffic_changes_are_subscribed_through_the_replica_pubsub(make_client):
    client = make_client("inference", invoker=Registry().invoker)
    subscriptions = client.get("/dapr/subscribe").json()
    assert [(s["pubsubname"], s["topic"], s["route"], s["deadLetterTopic"]) for s in subscriptions] == [
        (
            "pubsub-replicas",
            "model-aliases-replicas",
            "/internal/events/replica/model-aliases",
            "dead-letters-replicas",
        ),
        (
            "pubsub-replicas",
            "model-traffic-replicas",
            "/internal/events/replica/model-traffic",
            "dead-letters-replicas",
        ),
    ]


def test_a_delivered_alias_change_swaps_the_champion_served(make_client):
    registry = Registry()
    registry.add("flowers", 1, flower_model(), FLOWER_FEATURES, aliases=("champion",))
    registry.add("flowers", 2, flower_model(c=0.05), FLOWER_FEATURES)
    client = make_client("inference", invoker=registry.invoker)
    assert client.post("/api/models/flowers/predict", json={"records": ROWS}).json()["version"] == 1
    registry.alias("flowers", "champion", 2)
    event = ModelAliasChanged(model="flowers", alias="champion", from_version=1, to_version=2, reason="promotion")
    body = events.encode(EventType.MODEL_ALIAS_CHANGED, "/registry", event)
    delivered = client.post(
        "/internal/events/replica/model-aliases", content=body, headers={"content-type": events.CLOUDEVENTS_JSON}
    )
    assert delivered.json() == {"status": "SUCCESS"}
    assert client.post("/api/models/flowers/predict", json={"records": ROWS}).json()["version"] == 2
