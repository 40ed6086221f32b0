"""Training over what ingestion really serves: a dataset uploaded to the ingestion app, its
manifest and rows handed to training as ingestion answered them. The contract between the two
(services/common/contracts: the manifest, the schema's words, the rows' types) is held by
running both ends, not by a copy of either."""

import csv
import io

from fastapi.testclient import TestClient
from sklearn.datasets import load_iris

from services.common.contracts import ColumnType, Manifest, Task
from services.common.ports import Reply
from services.training.app import create_app
from services.training.ports import TrainingPorts
from services.training.settings import Settings
from tests.api.test_training_api import stack_replies
from tests.fakes import FakeInvoker, FakeWorkflows, fake_ports

READS = ("api/datasets/iris/versions/latest", "api/datasets/iris/versions/1/data?format=parquet")


def iris_csv() -> bytes:
    """Iris with a column of every type training reads: numbers, an integer, a boolean, a category."""
    data, out = load_iris(), io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["a", "b", "c", "d", "rank", "odd", "size", "species"])
    for i, (row, target) in enumerate(zip(data.data, data.target, strict=True)):
        size = "big" if row[2] > 4 else "small"
        writer.writerow([*row, i % 40, "yes" if i % 2 else "no", size, data.target_names[target]])
    return out.getvalue().encode()


def test_a_job_trains_on_a_version_as_ingestion_serves_it(make_client):
    ingestion = make_client("ingestion")
    uploaded = ingestion.post(
        "/api/datasets/iris/versions?target=species", content=iris_csv(), headers={"content-type": "text/csv"}
    )
    assert uploaded.status_code == 201, uploaded.text
    served = {}
    for method in READS:
        reply = ingestion.get(f"/{method}")
        assert reply.status_code == 200, reply.text
        served[("ingestion", method)] = Reply(200, reply.content, reply.headers["content-type"])

    manifest = Manifest.model_validate_json(served[("ingestion", READS[0])].body)
    types = {c.name: c.type for c in manifest.schema_.columns}
    assert manifest.schema_.task == Task.CLASSIFICATION and manifest.row_count == 150
    assert (types["a"], types["rank"], types["odd"], types["size"]) == (
        ColumnType.NUMBER,
        ColumnType.INTEGER,
        ColumnType.BOOLEAN,
        ColumnType.CATEGORY,
    )

    registered: list[dict] = []
    replies = (
        stack_replies(registered)
        | served
        | {("ingestion", "api/datasets/iris/versions/1"): served[("ingestion", READS[0])]}
    )
    ports = fake_ports(TrainingPorts, invoker=FakeInvoker(replies), workflows=FakeWorkflows())
    with TestClient(create_app(Settings(fit_workers=0), ports)) as training:
        submitted = training.post("/api/training/jobs", json={"dataset": "iris"})
        assert submitted.status_code == 202, submitted.text
        job = training.get(f"/api/training/jobs/{submitted.json()['id']}").json()
    assert job["status"] == "COMPLETED", job
    (body,) = registered
    assert body["lineage"]["schema_hash"] == manifest.schema_hash
    assert [f["name"] for f in body["card"]["features"]] == ["a", "b", "c", "d", "rank", "odd", "size"]
