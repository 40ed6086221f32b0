"""Training jobs over in-memory fakes of our ports: the workflow runs in-process (FakeWorkflows),
the other services answer from a table (FakeInvoker), fitting runs in a thread."""

import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sklearn.datasets import load_iris

from services.common import events, modelfiles, onnxfiles
from services.common.contracts import ModelCard
from services.common.events import DatasetVersionCommitted, EventType
from services.common.ports import BlobTooLarge, Reply
from services.training.app import create_app
from services.training.domain import compiled
from services.training.ports import TrainingPorts
from services.training.settings import Settings
from tests.fakes import FakeInvoker, FakeWorkflows, fake_ports

SCHEMA = {
    "task": "classification",
    "target": "species",
    "columns": [
        *({"name": n, "type": "number", "missing": "keep", "fill_value": None} for n in ("a", "b", "c", "d")),
        {"name": "species", "type": "category", "missing": "keep", "fill_value": None},
    ],
}


def iris_parquet() -> bytes:
    data = load_iris()
    table = pa.table(
        {
            **{n: data.data[:, i] for i, n in enumerate("abcd")},
            "species": [str(data.target_names[t]) for t in data.target],
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def stack_replies(registered: list[dict]) -> dict:
    manifest = Reply(
        200,
        json.dumps(
            {"dataset": "iris", "version": 1, "schema": SCHEMA, "schema_hash": "h1", "row_count": 150, "sha256": "s1"}
        ).encode(),
    )

    async def register(body: bytes) -> Reply:
        registered.append(json.loads(body))
        return Reply(201, json.dumps({"model": "iris", "version": len(registered), "new": True}).encode())

    async def promote(body: bytes) -> Reply:
        request = json.loads(body)
        return Reply(
            200,
            json.dumps(
                {
                    "model": "iris",
                    "version": 1,
                    "alias": "champion",
                    "policy": "auto",
                    "metric": "accuracy",
                    "candidate": request["candidate"]["accuracy"],
                    "champion": None,
                    "champion_version": None,
                    "decided_at": "2026-11-23T12:00:00Z",
                }
            ).encode(),
        )

    return {
        ("ingestion", "api/datasets/iris/versions/latest"): manifest,
        ("ingestion", "api/datasets/iris/versions/1"): manifest,
        ("ingestion", "api/datasets/iris/versions/1/data?format=parquet"): Reply(
            200, iris_parquet(), "application/x-parquet"
        ),
        ("registry", "internal/models/iris/versions"): register,
        ("registry", "internal/models/iris/versions/1/promotion"): promote,
    }


@pytest.fixture
def training():
    registered: list[dict] = []
    ports = fake_ports(TrainingPorts, invoker=FakeInvoker(stack_replies(registered)), workflows=FakeWorkflows())
    with TestClient(create_app(Settings(fit_workers=0), ports)) as client:
        client.ports, client.registered = ports, registered
        yield client


def test_a_job_trains_evaluates_registers_and_promotes_a_model(training):
    reply = training.post("/api/training/jobs", json={"dataset": "iris"})
    assert reply.status_code == 202, reply.text
    job = training.get(f"/api/training/jobs/{reply.json()['id']}").json()
    assert job["status"] == "COMPLETED", job
    assert (job["stage"], job["progress"]) == ("done", 1.0)
    assert job["estimator"] == "gradient_boosting" and job["version"] == 1 and job["model"] == "iris"
    assert job["result"]["version"] == 1 and job["result"]["promotion"]["alias"] == "champion"
    assert 0.8 <= job["result"]["metrics"]["accuracy"] <= 1.0
    (body,) = training.registered
    assert body["lineage"] == {
        "dataset": "iris",
        "dataset_version": 1,
        "schema_hash": "h1",
        "estimator": "gradient_boosting",
        "params": body["lineage"]["params"],
        "job_id": job["id"],
        "feedback_rows": 0,
    }
    stored = training.ports.blobs.blobs[body["artifact"]["key"]]
    import hashlib

    assert hashlib.sha256(stored).hexdigest() == body["artifact"]["sha256"]
    assert body["confusion_matrix"]["labels"] == ["setosa", "versicolor", "virginica"]
    card = json.loads(training.ports.blobs.blobs[body["artifact"]["key"].replace(".skops", ".card.json")])
    assert card["sha256"] == body["artifact"]["sha256"] and card["lineage"]["job_id"] == job["id"]
    assert [f["name"] for f in card["features"]] == ["a", "b", "c", "d"] and card["metrics"]["accuracy"] > 0.8
    assert [s["stage"] for s in training.ports.workflows.runs[job["id"]].statuses] == [
        "loading",
        "fitting",
        "evaluating",
        "registering",
        "promoting",
        "done",
    ]


def test_a_job_stores_its_checked_onnx_file_beside_the_skops_file_and_registers_both(training):
    job_id = training.post("/api/training/jobs", json={"dataset": "iris"}).json()["id"]
    assert training.get(f"/api/training/jobs/{job_id}").json()["status"] == "COMPLETED"
    (body,) = training.registered
    onnx = body["onnx"]
    assert onnx["artifact"]["key"] == f"models/iris/{job_id}.onnx" == body["artifact"]["key"].replace(".skops", ".onnx")
    assert onnx["check"]["passed"] and onnx["check"]["reason"] is None
    assert onnx["check"]["rows"] > 30 and 0 <= onnx["check"]["max_difference"] <= onnx["check"]["tolerance"]
    assert {"skl2onnx", "onnx", "onnxruntime", "opset ai.onnx"} <= set(onnx["versions"])
    assert body["card"]["missing_category"] == "__missing__"
    # The stored file is the registered one, and it predicts what the skops file does.
    stored = training.ports.blobs.blobs[onnx["artifact"]["key"]]
    card = ModelCard.model_validate(body["card"])
    session = onnxfiles.session(stored, onnx["artifact"]["sha256"])
    pipeline = modelfiles.load(training.ports.blobs.blobs[body["artifact"]["key"]], body["artifact"]["sha256"])
    rows = pd.read_parquet(io.BytesIO(iris_parquet()))[list("abcd")]
    _, probabilities = session.run(None, onnxfiles.feed({n: rows[n].to_numpy() for n in "abcd"}, card.features))
    assert np.abs(probabilities - pipeline.predict_proba(rows)).max() < 1e-4
    kept = json.loads(training.ports.blobs.blobs[f"models/iris/{job_id}.card.json"])
    assert kept["onnx"]["check"] == onnx["check"] and kept["compile_s"] > 0


def test_a_model_that_fails_the_onnx_check_is_registered_with_its_skops_file_and_the_reason(training, monkeypatch):
    monkeypatch.setattr(compiled, "PROBABILITY_TOLERANCE", 0.0)  # float32 never equals float64 exactly
    job_id = training.post("/api/training/jobs", json={"dataset": "iris"}).json()["id"]
    job = training.get(f"/api/training/jobs/{job_id}").json()
    assert job["status"] == "COMPLETED" and job["result"]["promotion"]["alias"] == "champion"
    (body,) = training.registered
    check = body["onnx"]["check"]
    assert body["onnx"]["artifact"] is None and not check["passed"]
    assert "differ from scikit-learn's by up to" in check["reason"] and "served by scikit-learn" in check["reason"]
    assert check["max_difference"] > 0 and check["tolerance"] == 0
    assert f"models/iris/{job_id}.onnx" not in training.ports.blobs.blobs
    assert body["artifact"]["key"] in training.ports.blobs.blobs


def test_an_onnx_file_the_blob_store_refuses_leaves_the_version_with_its_skops_file(training, monkeypatch):
    put = training.ports.blobs.put

    async def smaller_store(key: str, data: bytes) -> None:
        if key.endswith(".onnx"):
            raise BlobTooLarge(f"{key!r} is 0.1 MB; the blob store takes at most 0.0 MB in one piece")
        await put(key, data)

    monkeypatch.setattr(training.ports.blobs, "put", smaller_store)
    job_id = training.post("/api/training/jobs", json={"dataset": "iris"}).json()["id"]
    assert training.get(f"/api/training/jobs/{job_id}").json()["status"] == "COMPLETED"
    (body,) = training.registered
    assert body["onnx"]["artifact"] is None and not body["onnx"]["check"]["passed"]
    assert "the blob store takes at most" in body["onnx"]["check"]["reason"]


def test_the_same_request_again_is_the_same_job_and_trains_nothing_more(training):
    first = training.post("/api/training/jobs", json={"dataset": "iris", "version": 1}).json()
    again = training.post("/api/training/jobs", json={"dataset": "iris", "version": "latest"}).json()
    assert again["id"] == first["id"]
    assert training.ports.workflows.activity_calls.count("fit") == 1 and len(training.registered) == 1
    other = training.post("/api/training/jobs", json={"dataset": "iris", "estimator": "random_forest"}).json()
    assert other["id"] != first["id"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"dataset": "iris", "estimator": "deep_net"}, "deep_net"),
        ({"dataset": "iris", "estimator": "ridge"}, "ridge"),
        ({"dataset": "iris", "estimator": "random_forest", "params": {"n_estimators": "many"}}, "n_estimators"),
        ({"dataset": "iris", "estimator": "random_forest", "params": {"colour": 3}}, "colour"),
        ({"dataset": "nope"}, "nope"),
    ],
)
def test_a_job_that_cannot_run_is_refused_before_anything_is_scheduled(training, body, words):
    reply = training.post("/api/training/jobs", json=body)
    assert 400 <= reply.status_code < 500 and words in json.dumps(reply.json())
    assert training.ports.workflows.runs == {} and training.ports.state.items == {}


def announce(client, version: int = 1):
    body = events.encode(
        EventType.DATASET_VERSION_COMMITTED,
        "/daprml/ingestion",
        DatasetVersionCommitted(dataset="iris", version=version, row_count=150, schema_hash="h1"),
    )
    return client.post(
        "/internal/events/dataset-versions", content=body, headers={"content-type": events.CLOUDEVENTS_JSON}
    ).json()


def test_a_committed_version_is_trained_once_however_often_it_is_announced(training):
    assert announce(training) == {"status": "SUCCESS"}
    assert announce(training) == {"status": "SUCCESS"}
    jobs = training.get("/api/training/jobs?dataset=iris").json()
    assert jobs["total"] == 1 and jobs["jobs"][0]["status"] == "COMPLETED"
    assert len(training.registered) == 1


def test_a_policy_can_turn_training_on_new_versions_off(training):
    assert training.put("/api/training/policies/iris", json={"auto_train": False}).status_code == 200
    assert announce(training) == {"status": "SUCCESS"}
    assert training.get("/api/training/jobs").json()["total"] == 0


def test_a_policy_with_parameters_the_estimator_refuses_is_422_and_not_stored(training):
    reply = training.put(
        "/api/training/policies/iris", json={"estimator": "random_forest", "params": {"max_depth": -3}}
    )
    assert reply.status_code == 422 and "max_depth" in json.dumps(reply.json())
    assert training.get("/api/training/policies/iris").json() == {"auto_train": True, "estimator": None, "params": {}}


def test_the_estimators_are_listed_per_task_with_their_parameters(training):
    listed = training.get("/api/training/estimators").json()
    names = {task: [e["name"] for e in found] for task, found in listed.items()}
    assert names["classification"] == ["logistic_regression", "random_forest", "gradient_boosting", "linear_svm"]
    assert names["regression"] == ["ridge", "random_forest", "gradient_boosting"]


def test_an_unknown_job_is_404(training):
    assert training.get("/api/training/jobs/iris-v9-ridge-000000000000").status_code == 404


def test_a_champion_that_moved_while_the_job_ran_is_read_again_before_promotion(training):
    replies = training.ports.invoker.replies
    answer = replies[("registry", "internal/models/iris/versions/1/promotion")]
    asked: list[dict] = []

    async def moved_once(body: bytes) -> Reply:
        asked.append(json.loads(body))
        if len(asked) == 1:
            return Reply(409, b'{"detail": "the champion of model iris is no longer version 7"}')
        return await answer(body)

    replies[("registry", "internal/models/iris/versions/1/promotion")] = moved_once
    job_id = training.post("/api/training/jobs", json={"dataset": "iris"}).json()["id"]
    job = training.get(f"/api/training/jobs/{job_id}").json()
    assert job["status"] == "COMPLETED" and job["result"]["promotion"]["alias"] == "champion"
    assert len(asked) == 2 and training.ports.invoker.calls.count(("registry", "api/models/iris", "GET")) == 2


def test_jobs_are_listed_newest_first_a_page_at_a_time(training):
    first = training.post("/api/training/jobs", json={"dataset": "iris"}).json()["id"]
    second = training.post("/api/training/jobs", json={"dataset": "iris", "estimator": "random_forest"}).json()["id"]
    page = training.get("/api/training/jobs?limit=1").json()
    assert (page["total"], [j["id"] for j in page["jobs"]]) == (2, [second])
    assert [j["id"] for j in training.get("/api/training/jobs?offset=1&limit=1").json()["jobs"]] == [first]
    every = training.get("/api/training/jobs").json()["jobs"]
    completed = training.get("/api/training/jobs?status=completed").json()
    assert [j["id"] for j in completed["jobs"]] == [j["id"] for j in every if j["status"] == "COMPLETED"]
    assert first in [j["id"] for j in completed["jobs"]]
