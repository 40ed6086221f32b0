"""Training and the registry through the gateway, real sidecars, placement and scheduler:
a committed dataset version becomes a registered, promoted model by a durable workflow."""

import hashlib
import io
import uuid
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sklearn.datasets import load_iris

from services.common import events
from services.common.events import DatasetVersionCommitted, EventType
from services.training.domain.artifact import load
from tests.integration.conftest import poll

pytestmark = pytest.mark.integration
CSV = {"content-type": "text/csv"}
DONE = ("COMPLETED", "FAILED", "CANCELED")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def iris_csv() -> bytes:
    frame = load_iris(as_frame=True).frame
    frame["target"] = frame["target"].map(dict(enumerate(load_iris().target_names)))
    return frame.to_csv(index=False).encode()


def commit(gateway, name: str, data: bytes) -> None:
    reply = gateway.post(f"/api/datasets/{name}/versions?target=target&task=classification", content=data, headers=CSV)
    assert reply.status_code == 201, reply.text


def finished_job(gateway, dataset: str, timeout_s: float = 120, count: int = 1) -> list[dict]:
    """The dataset's jobs, once `count` of them exist and all have finished."""

    def done():
        reply = gateway.get("/api/training/jobs", params={"dataset": dataset})
        assert reply.status_code == 200, reply.text
        jobs = reply.json()["jobs"]
        return jobs if len(jobs) >= count and all(j["status"] in DONE for j in jobs) else None

    jobs = poll(done, timeout_s)
    assert jobs is not None, gateway.get("/api/training/jobs", params={"dataset": dataset}).json()
    return jobs


def test_a_committed_version_becomes_the_champion_with_a_verified_artifact(gateway):
    name = unique("iris")
    commit(gateway, name, iris_csv())
    (job,) = finished_job(gateway, name)
    assert (job["status"], job["stage"], job["progress"]) == ("COMPLETED", "done", 1.0), job
    model = gateway.get(f"/api/models/{name}").json()
    assert model["aliases"] == {"champion": 1}
    version = gateway.get(f"/api/models/{name}/versions/1").json()
    assert version["lineage"]["job_id"] == job["id"] and version["lineage"]["dataset_version"] == 1
    assert version["metrics"]["accuracy"] > 0.8
    artifact = gateway.get(f"/api/models/{name}/versions/1/artifact")
    assert artifact.status_code == 200
    assert hashlib.sha256(artifact.content).hexdigest() == version["artifact"]["sha256"]
    pipeline = load(artifact.content, version["artifact"]["sha256"])
    rows = pd.read_csv(io.BytesIO(iris_csv())).drop(columns="target")
    assert set(pipeline.predict(rows.iloc[:5])) <= {"setosa", "versicolor", "virginica"}


def test_the_same_commit_event_delivered_twice_trains_one_version(stack, gateway):
    name = unique("twice")
    commit(gateway, name, iris_csv())
    (job,) = finished_job(gateway, name)
    manifest = gateway.get(f"/api/datasets/{name}/versions/1").json()
    again = DatasetVersionCommitted(
        dataset=name, version=1, row_count=manifest["row_count"], schema_hash=manifest["schema_hash"]
    )
    topic = events.topic_of(EventType.DATASET_VERSION_COMMITTED, stack.topic_prefix)
    sidecar = f"http://127.0.0.1:{stack.app('ingestion').http_port}/v1.0/publish/pubsub/{topic}"
    body = events.encode(EventType.DATASET_VERSION_COMMITTED, "/test", again, event_id=f"again-{name}")
    headers = {"content-type": events.CLOUDEVENTS_JSON} | stack.sidecar_headers()
    assert httpx.post(sidecar, content=body, headers=headers).status_code == 204
    log = next((stack.workdir / ".dapr" / "logs").glob(f"{stack.app('training').app_id}_app_*.log"))
    assert poll(lambda: log.read_text().count(f"dataset {name} v1 committed") == 2), "the second delivery never came"
    jobs = finished_job(gateway, name)
    assert [j["id"] for j in jobs] == [job["id"]]
    assert [v["version"] for v in gateway.get(f"/api/models/{name}").json()["versions"]] == [1]


def test_a_worse_model_becomes_challenger_and_rollback_restores_the_champion(gateway):
    name = unique("ranks")
    commit(gateway, name, iris_csv())
    finished_job(gateway, name)
    # A logistic regression this strongly regularised predicts one class: clearly worse.
    weak = {"dataset": name, "estimator": "logistic_regression", "params": {"C": 1e-6}}
    submitted = gateway.post("/api/training/jobs", json=weak)
    assert submitted.status_code == 202, submitted.text
    jobs = finished_job(gateway, name, count=2)
    assert all(j["status"] == "COMPLETED" for j in jobs), jobs
    model = gateway.get(f"/api/models/{name}").json()
    assert model["aliases"] == {"champion": 1, "challenger": 2}
    assert gateway.put(f"/api/models/{name}/aliases/champion", json={"version": 2}).status_code == 200
    assert gateway.get(f"/api/models/{name}").json()["aliases"]["champion"] == 2
    rolled = gateway.post(f"/api/models/{name}/rollback")
    assert rolled.status_code == 200, rolled.text
    assert gateway.get(f"/api/models/{name}").json()["aliases"]["champion"] == 1


def test_a_dataset_too_small_to_evaluate_fails_its_job_at_once_with_the_reason(gateway):
    name = unique("tiny")
    commit(gateway, name, b"x,target\n1,a\n2,b\n3,a\n4,b\n5,a\n")
    (job,) = finished_job(gateway, name)
    assert job["status"] == "FAILED" and job["stage"] == "fitting"
    assert job["error"].startswith("5 rows with a target: at least 10 are needed"), job["error"]
    assert gateway.get(f"/api/models/{name}").status_code == 404


def test_a_promotion_is_announced_as_an_alias_change_to_subscribers(one_app_stack, gateway):
    # By its path: the app runs in a folder of its own, where `tests` is no package.
    listener = one_app_stack(["python", str(Path(__file__).with_name("listener.py"))], like="training")
    listener.start(timeout_s=60)
    name = unique("announced")
    commit(gateway, name, iris_csv())
    (job,) = finished_job(gateway, name)
    assert job["status"] == "COMPLETED", job
    url = f"http://127.0.0.1:{listener.apps[0].app_port}/received"

    def champion_change():
        return [e for e in httpx.get(url, headers=listener.app_headers()).json() if e["model"] == name]

    changes = poll(champion_change, 30)
    assert changes, "the listener never received the alias change"
    assert [(c["alias"], c["from"], c["to"], c["reason"]) for c in changes] == [("champion", None, 1, "promotion")]
