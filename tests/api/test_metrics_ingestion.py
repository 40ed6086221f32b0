"""Ingestion's metrics over in-memory fakes: each counter moves by exactly what the requests
did (rows accepted, rejected and duplicate, bytes, parts, commits by outcome), and no label
names a dataset."""

import pytest
from fastapi.testclient import TestClient
from prometheus_client import generate_latest

from services.ingestion.app import IngestionPorts, create_app
from services.ingestion.settings import Settings
from tests.fakes import fake_ports

CSV = {"content-type": "text/csv"}
HEADER = b"sepal,petal,species\n"
GOOD = [b"5.1,1.4,setosa\n", b"7.0,4.7,versicolor\n", b"6.3,6.0,virginica\n", b"4.9,1.1,setosa\n"]
BAD = [b"abc,1.0,setosa\n", b"4.9,1.1,\n", b"x,y,setosa\n"]  # not a number, no target, neither


@pytest.fixture
def client():
    with TestClient(create_app(Settings(outbox_interval_s=3600), fake_ports(IngestionPorts))) as client:
        yield client


def value(client, name: str, **labels: str) -> float:
    found = client.app.state.metrics.get_sample_value(name, labels)
    return 0.0 if found is None else found


def rows(client) -> tuple[float, float, float]:
    return tuple(value(client, "daprml_ingestion_rows_total", outcome=o) for o in ("accepted", "rejected", "duplicate"))


def create(client) -> int:
    """Dataset f with the good rows (its schema inferred from them); the bytes it sent."""
    body = HEADER + b"".join(GOOD)
    assert client.post("/api/datasets/f/versions?target=species", content=body, headers=CSV).status_code == 201
    assert rows(client) == (4, 0, 0)
    return len(body)


def test_a_one_shot_upload_counts_its_rows_bytes_and_one_commit(client):
    sent = create(client)
    assert value(client, "daprml_ingestion_commits_total", outcome="committed") == 1
    body = HEADER + GOOD[0] + GOOD[0] + b"5.5,2.2,setosa\n" + b"".join(BAD)  # 2 new, 1 repeated, 3 rejected
    reply = client.post("/api/datasets/f/versions", content=body, headers=CSV)
    assert reply.status_code == 201, reply.text
    assert rows(client) == (4 + 2, 3, 1)
    assert value(client, "daprml_ingestion_received_bytes_total") == sent + len(body)
    assert value(client, "daprml_ingestion_commits_total", outcome="committed") == 2
    assert value(client, "daprml_ingestion_committed_rows_total") == 4 + 2
    # The same content again: a commit that adds nothing.
    assert client.post("/api/datasets/f/versions", content=body, headers=CSV).json()["unchanged"]
    assert value(client, "daprml_ingestion_commits_total", outcome="unchanged") == 1
    assert value(client, "daprml_ingestion_committed_rows_total") == 6
    assert rows(client) == (8, 6, 2)


def test_labels_never_name_a_dataset(client):
    body = HEADER + b"".join(GOOD)
    assert client.post("/api/datasets/flowers-x1/versions?target=species", content=body, headers=CSV).status_code == 201
    assert "flowers-x1" not in generate_latest(client.app.state.metrics).decode()


def test_a_body_whose_rows_are_all_rejected_counts_them_and_commits_nothing(client):
    sent = create(client)
    body = HEADER + b"".join(BAD)
    assert client.post("/api/datasets/f/versions", content=body, headers=CSV).status_code == 422
    assert rows(client) == (4, 3, 0)
    assert value(client, "daprml_ingestion_received_bytes_total") == sent + len(body)
    assert value(client, "daprml_ingestion_commits_total", outcome="committed") == 1


def test_parts_count_by_outcome_and_the_commit_once(client):
    sent = create(client)
    upload = client.post("/api/datasets/f/uploads").json()["upload_id"]
    parts = f"/api/datasets/f/uploads/{upload}/parts"
    first, second = HEADER + b"5.5,2.2,setosa\n", HEADER + b"5.6,2.3,setosa\n" + BAD[0]
    refused = HEADER + b"".join(BAD)
    assert client.put(f"{parts}/1", content=first, headers=CSV).status_code == 200
    assert client.put(f"{parts}/1", content=first, headers=CSV).json()["unchanged"]  # sent again
    assert client.put(f"{parts}/2", content=second, headers=CSV).status_code == 200
    assert client.put(f"{parts}/3", content=refused, headers=CSV).status_code == 422  # all its rows rejected
    parts_total = "daprml_ingestion_upload_parts_total"
    assert value(client, parts_total, outcome="stored") == 2
    assert value(client, parts_total, outcome="unchanged") == 1
    assert value(client, parts_total, outcome="refused") == 1
    assert rows(client) == (4 + 2, 1 + 3, 0)  # a part sent again is not counted again
    assert value(client, "daprml_ingestion_received_bytes_total") == sent + 2 * len(first) + len(second) + len(refused)
    commit = f"/api/datasets/f/uploads/{upload}/commit"
    assert client.post(commit).status_code in (200, 201)
    assert client.post(commit).status_code in (200, 201)  # committed already: the same answer
    assert value(client, "daprml_ingestion_commits_total", outcome="committed") == 2
    assert value(client, "daprml_ingestion_commits_total", outcome="repeated") == 1
    assert value(client, "daprml_ingestion_committed_rows_total") == 4 + 2


def test_a_refused_commit_counts_as_refused(client):
    create(client)
    upload = client.post("/api/datasets/f/uploads").json()["upload_id"]
    assert client.post(f"/api/datasets/f/uploads/{upload}/commit").status_code == 400  # no parts
    assert value(client, "daprml_ingestion_commits_total", outcome="refused") == 1
    assert value(client, "daprml_ingestion_commits_total", outcome="committed") == 1
