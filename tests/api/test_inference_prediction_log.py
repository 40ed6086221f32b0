"""The prediction log on the inference app: sampled predictions end as PredictionLogged events."""

import pandas as pd
import pytest

from services.common.events import EventType, PredictionLogged
from tests.unit.inference.models import FLOWER_FEATURES, Registry, flower_model

ROWS = [{"length": 1.4, "width": 0.5, "colour": "red"}, {"length": 6.1, "width": 2.0, "colour": "blue"}]


@pytest.fixture
def logged(make_client, monkeypatch):
    """The inference app with every prediction sampled; the model's predictions for ROWS."""
    monkeypatch.setenv("DAPRML_PREDICTION_LOG_RATE", "1.0")
    registry, model = Registry(), flower_model()
    registry.add("flowers", 1, model, FLOWER_FEATURES, aliases=("champion",))
    client = make_client("inference", invoker=registry.invoker)
    return client, model.predict(pd.DataFrame(ROWS)).tolist()


def test_a_json_prediction_ends_as_one_prediction_logged_event_under_its_request_id(logged):
    client, expected = logged
    with client:  # the app's lifespan: the log's flushing task, and its last flush at shutdown
        reply = client.post("/api/models/flowers/predict", json={"records": ROWS}, headers={"X-Request-Id": "abc-1"})
        assert reply.status_code == 200
        stats = client.get("/internal/stats").json()["prediction_log"]
    assert stats["sampled"] == 1 and stats["buffered"] + stats["published"] == 1
    [(event_type, entry, _)] = client.ports.publisher.sent
    assert event_type == EventType.PREDICTION_LOGGED and isinstance(entry, PredictionLogged)
    assert (entry.model, entry.version, entry.request_id, entry.records) == ("flowers", 1, "abc-1", 2)
    assert entry.predictions == expected == reply.json()["predictions"]
    assert entry.inputs == ROWS and entry.latency_ms >= 0


def test_an_oip_inference_is_logged_under_the_requests_id_and_a_failed_one_is_not(logged):
    client, expected = logged
    tensors = [
        {"name": "length", "shape": [2], "datatype": "FP64", "data": [r["length"] for r in ROWS]},
        {"name": "width", "shape": [2], "datatype": "FP64", "data": [r["width"] for r in ROWS]},
        {"name": "colour", "shape": [2], "datatype": "BYTES", "data": [r["colour"] for r in ROWS]},
    ]
    with client:
        assert client.post("/v2/models/flowers/infer", json={"id": "req-9", "inputs": tensors}).status_code == 200
        assert client.post("/v2/models/flowers/infer", json={"inputs": tensors[:1]}).status_code == 400
        assert client.post("/api/models/nothing/predict", json={"records": ROWS}).status_code == 404
    [(_, entry, _)] = client.ports.publisher.sent
    assert entry.request_id == "req-9" and entry.predictions == expected


def test_a_json_prediction_without_a_request_id_gets_one(logged):
    client, _ = logged
    with client:
        assert client.post("/api/models/flowers/predict", json={"records": ROWS}).status_code == 200
    [(_, entry, _)] = client.ports.publisher.sent
    assert len(entry.request_id) == 36  # a uuid
