"""Event metrics of every service: deliveries by topic and outcome (through the kit's delivery
routes, as the sidecar calls them), dead letters by the topic they came from (the gateway),
and what the sidecar's publisher sent (DaprPublisher over a stand-in of the SDK's client)."""

import asyncio
from types import SimpleNamespace

from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest

from services.common import events
from services.common.dapr_adapters import DaprPublisher, count_published
from services.common.dapr_adapters.sidecar import DaprInternalError
from services.common.events import DatasetVersionCommitted, EventType, ModelAliasChanged, Topic
from services.common.metrics import EventMetrics
from services.training.app import create_app as create_training
from services.training.ports import TrainingPorts
from services.training.settings import Settings
from tests.api.test_gateway_dead_letters import dead_letter, published
from tests.api.test_training_api import announce, stack_replies
from tests.fakes import FakeInvoker, FakeWorkflows, fake_ports


def value(registry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def test_each_delivery_counts_once_under_its_topic_and_outcome(make_client):
    training = make_client("training")
    registry = training.app.state.metrics
    for _ in range(3):
        assert announce(training) == {"status": "SUCCESS"}
    invalid = training.post(
        "/internal/events/dataset-versions", content=b"{}", headers={"content-type": events.CLOUDEVENTS_JSON}
    )
    assert invalid.json() == {"status": "DROP"}
    delivered = "daprml_events_delivered_total"
    assert value(registry, delivered, topic="dataset-versions", outcome="success") == 3
    assert value(registry, delivered, topic="dataset-versions", outcome="dropped") == 1
    assert value(registry, delivered, topic="dataset-versions", outcome="retry") == 0


def test_a_handler_that_fails_counts_as_retry():
    # Training over a fake ingestion, its one place for a job taken: the next event is retried later.
    ports = fake_ports(
        TrainingPorts, invoker=FakeInvoker(stack_replies([])), workflows=FakeWorkflows(run_on_schedule=False)
    )
    with TestClient(create_training(Settings(fit_workers=0, max_pending_jobs=1), ports)) as training:
        assert (
            training.post("/api/training/jobs", json={"dataset": "iris", "estimator": "random_forest"}).status_code
            == 202
        )
        assert announce(training) == {"status": "RETRY"}
        assert announce(training) == {"status": "RETRY"}
        registry = training.app.state.metrics
    delivered = "daprml_events_delivered_total"
    assert value(registry, delivered, topic="dataset-versions", outcome="retry") == 2
    assert value(registry, delivered, topic="dataset-versions", outcome="success") == 0


def test_dead_letters_count_under_the_topic_they_came_from_or_unknown(make_client):
    gateway = make_client("gateway")
    registry = gateway.app.state.metrics
    for i in range(2):
        assert dead_letter(gateway, published(f"e{i}")).json() == {"status": "SUCCESS"}
    assert dead_letter(gateway, published("e9", topic="made-up-topic")).json() == {"status": "SUCCESS"}
    assert value(registry, "daprml_events_dead_lettered_total", topic="model-aliases") == 2
    assert value(registry, "daprml_events_dead_lettered_total", topic="unknown") == 1
    assert "made-up-topic" not in generate_latest(registry).decode()


# the sidecar's publisher


class Client:
    def __init__(self, fail: bool = False):
        self.fail, self.sent, self.on = fail, [], []

    async def publish_event(self, pubsub, topic, data, data_content_type=None):
        if self.fail:
            raise DaprInternalError("the broker is away")
        self.sent.append(topic)
        self.on.append((pubsub, topic))

    async def publish_events(self, pubsub, topic, data, data_content_type=None):
        failed = [SimpleNamespace(error="no")] if self.fail else []
        self.sent.extend([topic] * (len(data) - len(failed)))
        return SimpleNamespace(failed_entries=failed)


class Sidecar:
    def __init__(self, client: Client):
        self._client = client

    async def client(self) -> Client:
        return self._client


def committed(version: int) -> DatasetVersionCommitted:
    return DatasetVersionCommitted(dataset="iris", version=version, row_count=1, schema_hash="h")


def test_the_sidecars_publisher_counts_what_it_sent_by_topic_without_the_prefix():
    registry = CollectorRegistry()
    client = Client()
    publisher = DaprPublisher(Sidecar(client), "pubsub", "/daprml/ingestion", topic_prefix="run1.")
    count_published(SimpleNamespace(publisher=publisher), EventMetrics(registry))

    async def send() -> None:
        await publisher.publish(EventType.DATASET_VERSION_COMMITTED, committed(1))
        await publisher.publish_many(EventType.DATASET_VERSION_COMMITTED, [committed(2), committed(3)])
        await publisher.republish(Topic.MODEL_ALIASES, {"id": "e1", "type": str(EventType.MODEL_ALIAS_CHANGED)})

    asyncio.run(send())
    assert client.sent == ["run1.dataset-versions"] * 3 + ["run1.model-aliases"]
    assert value(registry, "daprml_events_published_total", topic="dataset-versions") == 3
    assert value(registry, "daprml_events_published_total", topic="model-aliases") == 1
    assert "run1" not in generate_latest(registry).decode()


def test_an_alias_move_goes_to_each_app_on_pubsub_and_to_every_replica_on_the_replica_component():
    client = Client()
    publisher = DaprPublisher(Sidecar(client), "pubsub", "/daprml/registry", "run1.", replica_pubsub="replicas")
    moved = ModelAliasChanged(model="iris", alias="champion", from_version=1, to_version=2, reason="api")
    asyncio.run(publisher.publish(EventType.MODEL_ALIAS_CHANGED, moved, event_id="e1"))
    assert client.on == [("pubsub", "run1.model-aliases"), ("replicas", "run1.model-aliases-replicas")]


def test_what_the_sidecar_refused_counts_as_a_publish_failure():
    registry = CollectorRegistry()
    publisher = DaprPublisher(Sidecar(Client(fail=True)), "pubsub", "/daprml/ingestion")
    count_published(SimpleNamespace(publisher=publisher), EventMetrics(registry))
    for call in (
        publisher.publish(EventType.DATASET_VERSION_COMMITTED, committed(1)),
        publisher.publish_many(EventType.DATASET_VERSION_COMMITTED, [committed(2), committed(3)]),
    ):
        try:
            asyncio.run(call)
        except Exception as exc:
            assert "the event bus is unavailable" in getattr(exc, "public", "")
    assert value(registry, "daprml_events_publish_failures_total", topic="dataset-versions") == 2
    assert value(registry, "daprml_events_published_total", topic="dataset-versions") == 1  # the bulk's other entry
