"""The prediction log on the inference app: sampled calls end as PredictionLogged events that
carry each record's prediction id (the one the caller got), its inputs, prediction, class
probabilities and warnings, with the call's model, version, runtime and request id."""

import numpy as np
import pandas as pd
import pytest

from services.common.events import EventType, PredictionLogged
from services.inference.settings import Settings
from tests.unit.inference.models import FLOWER_FEATURES, HOUSE_FEATURES, Registry, flower_model, house_model

ROWS = [{"length": 1.4, "width": 0.5, "colour": "red"}, {"length": 6.1, "width": 2.0, "colour": "blue"}]
TENSORS = [
    {"name": "length", "shape": [2], "datatype": "FP64", "data": [r["length"] for r in ROWS]},
    {"name": "width", "shape": [2], "datatype": "FP64", "data": [r["width"] for r in ROWS]},
    {"name": "colour", "shape": [2], "datatype": "BYTES", "data": [r["colour"] for r in ROWS]},
]


@pytest.fixture
def inference(make_client, monkeypatch):
    """Makes the inference app over 'flowers' (a classifier) and 'houses' (a regressor), with the
    environment given; by default every call is captured (the setting's default)."""
    for name in ("DAPRML_PREDICTION_LOG_RATE", "DAPRML_PREDICTION_LOG_RATES", "DAPRML_PREDICTION_LOG_MAX_ROWS"):
        monkeypatch.delenv(name, raising=False)

    def make(**env: str):
        for name, value in env.items():
            monkeypatch.setenv(f"DAPRML_{name.upper()}", value)
        registry = Registry()
        registry.add("flowers", 1, flower_model(), FLOWER_FEATURES, aliases=("champion",))
        registry.add("houses", 1, house_model(), HOUSE_FEATURES, aliases=("champion",))
        return make_client("inference", invoker=registry.invoker)

    return make


def logged(client) -> list[PredictionLogged]:
    assert {t for t, _, _ in client.ports.publisher.sent} <= {EventType.PREDICTION_LOGGED}
    return [entry for _, entry, _ in client.ports.publisher.sent]


def metric(client, name: str, **labels: str) -> float:
    return client.app.state.metrics.get_sample_value(name, labels) or 0.0


def test_a_json_call_ends_as_one_event_with_the_ids_the_caller_got_and_all_it_was_answered(inference):
    client = inference()
    with client:  # the app's lifespan: the log's flushing task, and its last flush at shutdown
        reply = client.post("/api/models/flowers/predict", json={"records": ROWS}, headers={"X-Request-Id": "abc-1"})
        assert reply.status_code == 200
        stats = client.get("/internal/stats").json()["prediction_log"]
    answer = reply.json()
    assert stats["sampled"] == 1 and stats["buffered"] + stats["published"] == 1
    [entry] = logged(client)
    assert (entry.model, entry.version, entry.runtime, entry.request_id, entry.records) == (
        "flowers",
        1,
        "sklearn",
        "abc-1",
        2,
    )
    assert entry.prediction_ids == answer["prediction_ids"] and len(set(entry.prediction_ids)) == 2
    assert entry.inputs == ROWS and entry.predictions == answer["predictions"] and entry.latency_ms >= 0
    assert entry.classes == list(answer["probabilities"][0])
    assert np.allclose(entry.probabilities, [list(p.values()) for p in answer["probabilities"]])
    assert entry.warnings is None
    assert metric(client, "daprml_inference_captured_calls_total", model="flowers", outcome="published") == 1
    assert metric(client, "daprml_inference_captured_rows_total", model="flowers", outcome="published") == 2


def test_an_oip_call_is_logged_under_the_requests_id_with_the_answers_ids_and_a_failed_one_is_not(inference):
    client = inference()
    with client:
        ok = client.post("/v2/models/flowers/versions/1/infer", json={"id": "req-9", "inputs": TENSORS})
        assert ok.status_code == 200
        assert client.post("/v2/models/flowers/infer", json={"inputs": TENSORS[:1]}).status_code == 400
        assert client.post("/api/models/nothing/predict", json={"records": ROWS}).status_code == 404
    [entry] = logged(client)
    assert entry.request_id == ok.json()["id"] == "req-9"
    assert entry.prediction_ids == ok.json()["parameters"]["prediction_ids"]
    assert entry.predictions == ok.json()["outputs"][0]["data"]


def test_an_oip_call_that_asks_for_predictions_only_is_logged_without_probabilities(inference):
    client = inference()
    with client:
        body = {"inputs": TENSORS, "outputs": [{"name": "predict"}]}
        assert client.post("/v2/models/flowers/infer", json=body).status_code == 200
    [entry] = logged(client)
    assert entry.probabilities is None and entry.classes is None and len(entry.predictions) == 2


def test_a_json_call_without_a_request_id_is_logged_under_the_one_its_answer_carries(inference):
    client = inference()
    with client:
        reply = client.post("/api/models/flowers/predict", json={"records": ROWS})
    [entry] = logged(client)
    assert entry.request_id == reply.headers["x-request-id"] and len(entry.request_id) == 32


def test_each_record_carries_its_own_warnings(inference):
    client = inference()
    with client:
        records = [ROWS[0], {"length": 5.0, "colour": "red"}]  # width missing in the second
        reply = client.post("/api/models/flowers/predict", json={"records": records})
    assert [(w["kind"], w["field"], w["records"]) for w in reply.json()["warnings"]] == [("missing", "width", 1)]
    [entry] = logged(client)
    assert entry.warnings == [[], ["missing:width"]]
    assert entry.inputs[1] == {"length": 5.0, "width": None, "colour": "red"}


def test_a_call_over_the_bound_is_captured_up_to_it_and_the_rest_is_counted(inference):
    client = inference(prediction_log_max_rows="3")
    records = [{"length": 1.0 + i, "width": 0.5, "colour": "red"} for i in range(5)]
    with client:
        reply = client.post("/api/models/flowers/predict", json={"records": records})
        stats = client.get("/internal/stats").json()["prediction_log"]
    [entry] = logged(client)
    assert entry.records == 5 and entry.inputs == records[:3]
    assert entry.prediction_ids == reply.json()["prediction_ids"][:3]
    assert entry.predictions == reply.json()["predictions"][:3]
    assert stats["truncated_rows"] == 2
    assert metric(client, "daprml_inference_captured_rows_total", model="flowers", outcome="truncated") == 2


@pytest.mark.parametrize(
    "env, captured",
    [
        ({}, {"flowers", "houses"}),  # the default: every call
        ({"prediction_log_rate": "0"}, set()),
        ({"prediction_log_rate": "0", "prediction_log_rates": '{"flowers": 1}'}, {"flowers"}),
        ({"prediction_log_rates": '{"houses": 0.0}'}, {"flowers"}),
    ],
)
def test_each_models_share_applies(inference, env, captured):
    client = inference(**env)
    houses = [{"rooms": 3, "area": 70.5}]
    with client:
        for _ in range(3):
            assert client.post("/api/models/flowers/predict", json={"records": ROWS}).status_code == 200
            assert client.post("/api/models/houses/predict", json={"records": houses}).status_code == 200
    models = [entry.model for entry in logged(client)]
    assert set(models) == captured and len(models) == 3 * len(captured)


def test_the_default_share_is_every_call():
    assert Settings.model_fields["prediction_log_rate"].default == 1.0


@pytest.mark.parametrize(
    "value, words",
    [
        ("{'iris': 0.1}", "not JSON"),
        ('{"Iris": 0.1}', "'Iris' is not a model name"),
        ('{"iris": 1.5}', "model 'iris': the share must be a number from 0 to 1, not 1.5"),
        ('{"iris": "all"}', "model 'iris': the share must be a number from 0 to 1"),
        ("[0.1]", "expected a JSON object"),
    ],
)
def test_a_bad_per_model_share_stops_the_service_at_start_saying_which(monkeypatch, value, words):
    monkeypatch.setenv("DAPRML_PREDICTION_LOG_RATES", value)
    with pytest.raises(SystemExit) as stopped:
        Settings.load()
    assert "DAPRML_PREDICTION_LOG_RATES" in str(stopped.value) and words in str(stopped.value)


def test_a_sampled_call_is_logged_whole_with_the_pipelines_own_predictions(inference):
    client = inference()
    records = [{"length": 1.0 + i / 10, "width": 0.3 + i / 30, "colour": "red"} for i in range(250)]
    with client:
        reply = client.post("/api/models/flowers/predict", json={"records": records})
    [entry] = logged(client)
    expected = flower_model().predict(pd.DataFrame(records)).tolist()
    assert entry.records == len(entry.inputs) == 250 and entry.predictions == expected == reply.json()["predictions"]
    assert entry.prediction_ids == reply.json()["prediction_ids"]
