"""Metrics: every app counts and times its requests by route template; inference counts its
requests, rows, predict calls, request time and batching queue time per model and version.
Read from the app's own registry (the one its /metrics port serves); the app port serves no
/metrics."""

import asyncio
import threading

import numpy as np
import pytest
from prometheus_client import generate_latest

from services.inference.batching import BatchingPredictor

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


@pytest.mark.parametrize("n", [1, 5])
def test_after_n_requests_the_request_duration_and_queue_time_counted_n(served, n):
    for _ in range(n):
        assert served.post("/api/models/houses/predict", json={"records": [HOUSE]}).status_code == 200
    assert served.post("/api/models/houses/predict", json={"records": [{"rooms": "many"}]}).status_code == 422
    labels = {"model": "houses", "version": "1"}
    # Every request for the version is timed, refused ones too; only those that reached a predict queued.
    assert value(served, "daprml_inference_request_duration_seconds_count", **labels) == n + 1
    assert value(served, "daprml_inference_request_duration_seconds_sum", **labels) > 0
    assert value(served, "daprml_inference_queue_duration_seconds_count", **labels) == n
    assert "daprml_inference_request_duration_seconds" in metrics_text(served)


def test_the_time_a_request_waited_behind_a_predict_is_its_queue_time():
    """Three requests arrive while a predict holds the model: each waited at least as long as
    that predict was held, and the first did not wait at all (the batcher was idle)."""
    release, started = threading.Event(), threading.Event()

    def predict(rows, probabilities):
        if not started.is_set():
            started.set()
            assert release.wait(30)
        return rows["x"] * 10, None

    waited: list[float] = []

    async def run() -> None:
        predictor = BatchingPredictor(predict, max_batch_size=256, max_wait_s=0, waited=waited.append)
        first = asyncio.create_task(predictor({"x": np.array([1.0])}, False))
        await asyncio.to_thread(started.wait, 30)
        later = [asyncio.create_task(predictor({"x": np.array([float(i)])}, False)) for i in range(3)]
        while predictor.queued < 3:
            await asyncio.sleep(0)
        await asyncio.sleep(HELD_S)
        release.set()
        await asyncio.gather(first, *later)
        await predictor.close()

    asyncio.run(run())
    assert len(waited) == 4
    assert waited[0] < HELD_S and all(w >= HELD_S for w in waited[1:])


HOUSE = {"rooms": 3, "area": 70.5}
HELD_S = 0.05
