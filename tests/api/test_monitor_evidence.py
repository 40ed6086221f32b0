"""The monitor hears the inference replicas' serving stats and answers a rollout's evidence at
GET /internal/models/{name}/evidence?since= (over in-memory ports): serving counters summed over
the replicas, each shadow's agreement and each version's live metrics since `since`; the
registry's typed client reads it."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from services.common import events
from services.common.clients import MonitorClient
from services.common.contracts.monitoring import LATENCY_BOUNDS_MS, Evidence, VersionServing
from services.common.dapr_adapters.invoke import invoke_path
from services.common.events import EventType, ServingStats
from services.common.ports import Reply
from services.monitor.app import create_app
from services.monitor.ports import MonitorPorts
from services.monitor.settings import Settings
from tests.fakes import fake_ports
from tests.unit.monitor.events import logged

BUCKETS = len(LATENCY_BOUNDS_MS) + 1


@pytest.fixture
def monitor():
    ports = fake_ports(MonitorPorts)
    with TestClient(create_app(Settings(capture_max_events=1, live_refresh_s=0), ports)) as client:
        client.ports = ports
        yield client


def deliver(client: TestClient, event_type: EventType, event) -> str:
    body = events.encode(event_type, "/daprml/inference", event)
    topic = events.topic_of(event_type)
    reply = client.post(f"/internal/events/{topic}", content=body, headers={"content-type": events.CLOUDEVENTS_JSON})
    return str(reply.json()["status"])


def stats(instance: str, at: datetime, *versions: tuple[int, int, int]) -> ServingStats:
    """(version, answered, failed) per version; every answered request under 1 ms."""
    return ServingStats(
        instance=instance,
        started_at=at - timedelta(minutes=5),
        at=at,
        latency_bounds_ms=list(LATENCY_BOUNDS_MS),
        versions=[
            VersionServing(model="iris", version=v, requests=n, failures=f, latency_counts=[n] * BUCKETS if n else [])
            for v, n, f in versions
        ],
    )


def evidence(client: TestClient, since: datetime) -> Evidence:
    reply = client.get("/internal/models/iris/evidence", params={"since": since.isoformat()})
    assert reply.status_code == 200, reply.text
    return Evidence.model_validate(reply.json())


def test_serving_counters_of_two_replicas_are_summed_and_a_repeated_or_older_event_changes_nothing(monitor):
    now = datetime.now(UTC)
    first, second = stats("a:3504:1", now, (1, 10, 0), (2, 4, 1)), stats("b:3514:1", now, (1, 6, 0))
    assert deliver(monitor, EventType.INFERENCE_SERVING_STATS, first) == "SUCCESS"
    assert deliver(monitor, EventType.INFERENCE_SERVING_STATS, second) == "SUCCESS"
    older = stats("a:3504:1", now - timedelta(seconds=5), (1, 8, 0))
    assert deliver(monitor, EventType.INFERENCE_SERVING_STATS, first) == "SUCCESS"  # delivered twice
    assert deliver(monitor, EventType.INFERENCE_SERVING_STATS, older) == "SUCCESS"  # came late
    read = evidence(monitor, now - timedelta(minutes=1))
    assert [(s.version, s.requests, s.failures, s.latency_counts[-1]) for s in read.serving] == [
        (1, 16, 0, 16),
        (2, 4, 1, 4),
    ]
    assert read.latency_bounds_ms == list(LATENCY_BOUNDS_MS) and read.model == "iris"
    later = stats("a:3504:1", now + timedelta(seconds=5), (1, 30, 0), (2, 4, 3))
    deliver(monitor, EventType.INFERENCE_SERVING_STATS, later)
    delta = evidence(monitor, now).delta(2, read)
    assert (delta.requests, delta.failures, delta.error_rate) == (0, 2, 1.0)
    # 14 more, all under 1 ms: p99 interpolated within the first bucket
    assert evidence(monitor, now).delta(1, read).latency_ms(0.99) == pytest.approx(0.99)


def test_a_malformed_serving_stats_event_is_dropped(monitor):
    body = events.encode(EventType.INFERENCE_SERVING_STATS, "/x", stats("a", datetime.now(UTC), (1, 1, 0)))
    broken = body.replace(b'"requests": 1,', b'"requests": -1,')
    assert broken != body
    reply = monitor.post(
        "/internal/events/serving-stats", content=broken, headers={"content-type": events.CLOUDEVENTS_JSON}
    )
    assert reply.json()["status"] == "DROP"


def test_shadows_and_live_metrics_are_over_what_was_captured_since_the_time_asked(monitor):
    now = datetime.now(UTC)
    old = logged(records=4, version=1, at=now - timedelta(hours=2))  # predicted 0, 1, 0, 1
    served = logged(records=4, version=1, at=now - timedelta(seconds=20))
    shadow = served.model_copy(update={"version": 2, "shadow": True, "predictions": [0, 1, 1, 1]})
    for event in (old, served, shadow):
        assert deliver(monitor, EventType.PREDICTION_LOGGED, event) == "SUCCESS"
    truths = [
        *zip(old.prediction_ids, [1, 1, 1, 1], strict=True),
        *zip(served.prediction_ids, [0, 1, 0, 0], strict=True),
    ]
    sent = monitor.post("/api/models/iris/feedback", json=[{"prediction_id": i, "actual": a} for i, a in truths])
    assert sent.status_code == 200, sent.text

    read = evidence(monitor, now - timedelta(minutes=1))
    shadow_read = read.shadow(2)
    assert shadow_read is not None and (shadow_read.answers, shadow_read.pairs, shadow_read.agreement) == (4, 4, 0.75)
    live = read.live_of(1)
    assert live is not None and live.count == 4 and live.metrics["accuracy"].value == 0.75  # the old pairs left out
    assert read.live.primary == "accuracy" and read.live_of(2) is None  # a shadow's answers are not the served ones
    assert evidence(monitor, now - timedelta(hours=3)).live_of(1).count == 8  # type: ignore[union-attr]
    assert evidence(monitor, now + timedelta(minutes=1)).shadows == []


@pytest.mark.parametrize("since", ["", "0.5", "yesterday", "2025-13-01T00:00:00Z"])
def test_a_since_that_is_not_an_iso_time_is_a_422(monitor, since):
    reply = monitor.get("/internal/models/iris/evidence", params={"since": since})
    assert reply.status_code == 422 and reply.json()["detail"][0]["loc"] == ["query", "since"]


def test_a_model_name_that_is_not_one_is_a_422(monitor):
    assert (
        monitor.get("/internal/models/Not%20One/evidence", params={"since": "2025-01-31T12:00:00Z"}).status_code == 422
    )


class AppInvoker:
    """Service invocation straight into a TestClient: the typed client's calls as the monitor gets them."""

    def __init__(self, client: TestClient):
        self.client, self.methods = client, []

    async def call(self, app_id, method, http_verb="GET", body=b"", headers=None):
        self.methods.append(method)
        reply = self.client.request(http_verb, f"/{method}", content=body, headers=headers)
        return Reply(reply.status_code, reply.content)


def test_the_registry_s_client_reads_the_evidence_with_its_since_encoded(monitor):
    now = datetime.now(UTC).replace(microsecond=0)
    deliver(monitor, EventType.INFERENCE_SERVING_STATS, stats("a", now, (3, 5, 0)))
    invoker = AppInvoker(monitor)
    read = asyncio.run(MonitorClient(invoker, "monitor").evidence("iris", now - timedelta(hours=1)))
    assert read.served(3).requests == 5 and read.served(4).requests == 0
    assert read.since == now - timedelta(hours=1)
    (method,) = invoker.methods
    # The zone's "+" encoded: left as it is, the monitor would read a space and refuse the time.
    assert method.startswith("internal/models/iris/evidence?since=") and method.endswith("%2B00%3A00")
    assert invoke_path("monitor", method).endswith(method)  # a query the sidecar adapter sends as it is
