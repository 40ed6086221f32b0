"""The inference app sends its serving stats: every request of either protocol counted under the
version that served it, the caller's refusals apart from the answers, in one ServingStats event
a background task publishes once the counters changed."""

import time

import pytest

from services.common.events import EventType, ServingStats
from tests.api.test_inference_prediction_log import ROWS, TENSORS
from tests.unit.inference.models import FLOWER_FEATURES, Registry, flower_model


@pytest.fixture
def inference(make_client, monkeypatch):
    monkeypatch.setenv("DAPRML_SERVING_STATS_S", "0.05")
    monkeypatch.setenv("DAPR_HTTP_PORT", "3599")  # part of the instance id
    registry = Registry()
    registry.add("flowers", 1, flower_model(), FLOWER_FEATURES, aliases=("champion",))
    registry.add("flowers", 2, flower_model(c=0.05), FLOWER_FEATURES)
    return make_client("inference", invoker=registry.invoker)


def latest(client, check, timeout_s: float = 10) -> ServingStats:
    """The newest serving-stats event, once one passes `check`."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = [p for t, p, _ in client.ports.publisher.sent if t == EventType.INFERENCE_SERVING_STATS]
        if found and check(found[-1]):
            return found[-1]  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"no serving stats passed the check: {found[-1:]}"
        time.sleep(0.05)


def test_requests_of_both_protocols_are_counted_per_version_and_sent(inference):
    with inference as client:
        for _ in range(3):
            assert client.post("/api/models/flowers/predict", json={"records": ROWS}).status_code == 200
        assert client.post("/v2/models/flowers/versions/2/infer", json={"inputs": TENSORS}).status_code == 200
        unknown = client.post("/api/models/flowers/predict", json={"records": [ROWS[0] | {"petals": 5}]})
        assert unknown.status_code == 422  # the caller's fault: refused, not failed
        missing = client.post("/api/models/nothing/predict", json={"records": ROWS})
        assert missing.status_code == 404  # no version to count it under

        def counted(event: ServingStats) -> bool:
            return sum(v.requests + v.refused for v in event.versions) == 5

        event = latest(client, counted)
    by_version = {(v.model, v.version): v for v in event.versions}
    assert set(by_version) == {("flowers", 1), ("flowers", 2)}
    one, two = by_version[("flowers", 1)], by_version[("flowers", 2)]
    assert (one.requests, one.refused, one.failures, one.latency_counts[-1]) == (3, 1, 0, 3)
    assert (two.requests, two.refused, two.failures, two.latency_counts[-1]) == (1, 0, 0, 1)
    assert event.instance.split(":")[1] == "3599" and event.started_at <= event.at  # the sidecar's port
