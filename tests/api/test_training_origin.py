"""A dataset version a monitoring retrain made (its manifest has an origin) is not trained when
it is announced: the monitor submits its job. Submitted, it trains as any version, and its
lineage tells the registry how many of its rows were labeled through feedback."""

import json
import logging

import pytest
from fastapi.testclient import TestClient

from services.common.ports import Reply
from services.training.app import create_app
from services.training.ports import TrainingPorts
from services.training.settings import Settings
from tests.api.test_training_api import SCHEMA, announce, iris_parquet, stack_replies
from tests.fakes import FakeInvoker, FakeWorkflows, fake_ports

ORIGIN = {"kind": "retrain", "model": "iris", "retrain_id": "r-1", "base_version": 1, "feedback_rows": 40}


def retrained(version: int = 2) -> dict:
    """Replies for a version `version` of iris that a retrain made, beside version 1's."""
    manifest = {
        "dataset": "iris",
        "version": version,
        "schema": SCHEMA,
        "schema_hash": "h1",
        "row_count": 150,
        "sha256": "s2",
        "origin": ORIGIN,
    }
    return {
        ("ingestion", f"api/datasets/iris/versions/{version}"): Reply(200, json.dumps(manifest).encode()),
        ("ingestion", f"api/datasets/iris/versions/{version}/data?format=parquet"): Reply(
            200, iris_parquet(), "application/x-parquet"
        ),
    }


@pytest.fixture
def training():
    registered: list[dict] = []
    invoker = FakeInvoker(stack_replies(registered) | retrained())
    ports = fake_ports(TrainingPorts, invoker=invoker, workflows=FakeWorkflows())
    with TestClient(create_app(Settings(fit_workers=0), ports)) as client:
        client.ports, client.registered = ports, registered
        yield client


def test_a_version_a_retrain_made_is_not_trained_when_announced_and_says_why(training, caplog):
    with caplog.at_level(logging.INFO, logger="services.training.service"):
        assert announce(training, version=2) == {"status": "SUCCESS"}
    assert training.get("/api/training/jobs").json()["total"] == 0 and training.ports.workflows.runs == {}
    assert any("retrain r-1 of model iris" in r.getMessage() and "monitor" in r.getMessage() for r in caplog.records)
    assert announce(training, version=1) == {"status": "SUCCESS"}  # an upload's version trains as before
    assert training.get("/api/training/jobs").json()["total"] == 1


def test_a_submitted_retrain_version_trains_and_its_lineage_counts_the_feedback_rows(training):
    reply = training.post("/api/training/jobs", json={"dataset": "iris", "version": 2, "estimator": "random_forest"})
    assert reply.status_code == 202, reply.text
    job = training.get(f"/api/training/jobs/{reply.json()['id']}").json()
    assert job["status"] == "COMPLETED" and job["version"] == 2, job
    (body,) = training.registered
    assert body["lineage"]["feedback_rows"] == 40 and body["lineage"]["dataset_version"] == 2
    card = json.loads(training.ports.blobs.blobs[body["artifact"]["key"].replace(".skops", ".card.json")])
    assert card["lineage"]["feedback_rows"] == 40


def test_an_uploads_version_is_registered_with_no_feedback_rows(training):
    reply = training.post("/api/training/jobs", json={"dataset": "iris", "version": 1})
    assert training.get(f"/api/training/jobs/{reply.json()['id']}").json()["status"] == "COMPLETED"
    (body,) = training.registered
    assert body["lineage"]["feedback_rows"] == 0
