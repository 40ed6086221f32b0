"""An upload started through the internal route carries an origin (a monitoring retrain's): its
commit writes it into the version's manifest; the public routes take its parts and commit, and
the gateway does not forward the internal start."""

import pytest

from services.common.events import EventType
from tests.fakes import FakeInvoker

CSV = {"content-type": "text/csv"}
IRIS = b"sepal,petal,species\n5.1,1.4,setosa\n7.0,4.7,versicolor\n6.3,6.0,virginica\n"
MORE = b"sepal,petal,species\n5.1,1.4,setosa\n7.0,4.7,versicolor\n6.3,6.0,virginica\n5.9,5.1,virginica\n"
ORIGIN = {"kind": "retrain", "model": "iris-model", "retrain_id": "r-20260101-1", "base_version": 1, "feedback_rows": 1}


@pytest.fixture
def client(make_client):
    client = make_client("ingestion")
    assert client.post("/api/datasets/iris/versions?target=species", content=IRIS, headers=CSV).status_code == 201
    return client


def start(client, **body):
    return client.post("/internal/datasets/iris/uploads", json={"origin": ORIGIN, **body})


def upload(client, body: bytes):
    started = start(client)
    assert started.status_code == 201, started.text
    upload_id = started.json()["upload_id"]
    assert client.put(f"/api/datasets/iris/uploads/{upload_id}/parts/1", content=body, headers=CSV).status_code == 200
    return client.post(f"/api/datasets/iris/uploads/{upload_id}/commit")


def test_the_version_a_retrain_commits_keeps_its_origin_in_the_manifest(client):
    started = start(client, target="species", task="classification")
    assert started.status_code == 201
    assert started.json()["state"] == "open" and started.json()["dataset"] == "iris"
    committed = upload(client, MORE)
    assert committed.status_code == 201 and committed.json()["version"] == 2 and not committed.json()["unchanged"]
    assert client.get("/api/datasets/iris/versions/2").json()["origin"] == ORIGIN
    assert client.get("/api/datasets/iris/versions/1").json()["origin"] is None  # an upload's, as before
    announced = [p for t, p, _ in client.ports.publisher.sent if t == EventType.DATASET_VERSION_COMMITTED]
    assert [(p.dataset, p.version) for p in announced] == [("iris", 1), ("iris", 2)]


def test_a_retrain_identical_to_the_latest_version_is_unchanged_and_adds_nothing(client):
    committed = upload(client, IRIS)
    assert committed.status_code == 200 and committed.json()["unchanged"] and committed.json()["version"] == 1
    assert client.get("/api/datasets/iris/versions/latest").json()["origin"] is None
    assert client.get("/api/datasets/iris/versions/2").status_code == 404


def test_an_origin_naming_a_version_the_dataset_lacks_is_404_naming_it(client):
    refused = client.post("/internal/datasets/iris/uploads", json={"origin": {**ORIGIN, "base_version": 7}})
    assert refused.status_code == 404 and "no version 7" in refused.json()["detail"]
    absent = client.post("/internal/datasets/roses/uploads", json={"origin": ORIGIN, "target": "species"})
    assert absent.status_code == 404 and "'roses'" in absent.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"origin": {**ORIGIN, "retrain_id": "has a space"}},
        {"origin": {**ORIGIN, "feedback_rows": -1}},
        {"origin": {**ORIGIN, "base_version": 0}},
        {"origin": {**ORIGIN, "model": "Not A Name"}},
        {"origin": {**ORIGIN, "kind": "upload"}},
        {"origin": ORIGIN, "task": "clustering"},
    ],
)
def test_an_origin_that_is_not_one_is_422(client, body):
    assert client.post("/internal/datasets/iris/uploads", json=body).status_code == 422


def test_a_target_other_than_the_datasets_is_409_as_in_the_public_start(client):
    refused = start(client, target="petal")
    assert refused.status_code == 409 and "'species'" in refused.json()["detail"]


def test_the_gateway_does_not_forward_the_internal_start(make_client):
    invoker = FakeInvoker()
    gateway = make_client("gateway", invoker=invoker)
    answer = gateway.post("/internal/datasets/iris/uploads", json={"origin": ORIGIN})
    assert 400 <= answer.status_code < 500
    assert invoker.calls == [] and invoker.forwarded == []
