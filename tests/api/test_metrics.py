"""Metrics: every app counts and times its requests by route template; inference counts its
requests, rows and predict calls per model and version. Read from the app's own registry (the
one its /metrics port serves); the app port serves no /metrics."""

import pytest
from prometheus_client import generate_latest

ROW = {"length": 1.4, "width": 0.5, "colour": "red"}


def value(client, name: str, **labels: str) -> float:
    found = client.app.state.metrics.get_sample_value(name, labels)
    return 0.0 if found is None else found


@pytest.mark.parametrize("n", [1, 7])
def test_after_n_predictions_the_models_counters_rose_by_n(served, n):
    for _ in range(n):
        assert served.post("/api/models/flowers/predict", json={"records": [ROW, ROW]}).status_code == 200
    labels = {"model": "flowers", "version": "1"}
    assert value(served, "daprml_inference_requests_total", **labels, outcome="success") == n
    assert value(served, "daprml_inference_rows_total", **labels) == 2 * n
    assert value(served, "daprml_inference_predict_duration_seconds_count", **labels, runtime="sklearn") >= 1
    assert value(served, "daprml_inference_loaded_models") == 1
    route = {"route": "/api/models/{name}/predict", "method": "POST"}
    assert value(served, "daprml_http_requests_total", **route, status="200") == n
    assert value(served, "daprml_http_request_duration_seconds_count", **route) == n


def test_a_refused_request_counts_as_refused_and_a_made_up_model_under_no_name(served):
    assert served.post("/api/models/flowers/predict", json={"records": [{"length": "long"}]}).status_code == 422
    assert value(served, "daprml_inference_requests_total", model="flowers", version="1", outcome="refused") == 1
    assert served.post("/api/models/made-up/predict", json={"records": [ROW]}).status_code == 404
    text = metrics_text(served)
    assert "made-up" not in text  # a client cannot make series by inventing names
    route = {"route": "/api/models/{name}/predict", "method": "POST", "status": "404"}
    assert value(served, "daprml_http_requests_total", **route) == 1


def test_a_path_no_route_matches_is_counted_as_unmatched_never_by_its_path(served):
    assert served.get("/no/such/path/x1").status_code == 404
    assert value(served, "daprml_http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert "x1" not in metrics_text(served)


def test_the_app_port_serves_no_metrics(served):
    assert served.get("/metrics").status_code == 404


def metrics_text(client) -> str:
    return generate_latest(client.app.state.metrics).decode()
