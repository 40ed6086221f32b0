"""Inputs past what ingestion can read get a 4xx that says which limit they passed, and no
rows are stored: the same through a one-shot upload and through a part of a multi-part one."""

import json

import pytest

from services.ingestion.domain import views

CSV, JSON, NDJSON = "text/csv", "application/json", "application/x-ndjson"
DEEP = b"[" * 100_000 + b"]" * 100_000
LONG_NUMBER = b"1" * 5000


@pytest.fixture
def client(make_client):
    return make_client("ingestion")


def send(client, how: str, body: bytes, content_type: str):
    headers = {"content-type": content_type}
    if how == "upload":
        return client.post("/api/datasets/d/versions?target=y", content=body, headers=headers)
    upload_id = client.post("/api/datasets/d/uploads?target=y").json()["upload_id"]
    return client.put(f"/api/datasets/d/uploads/{upload_id}/parts/1", content=body, headers=headers)


def stored_no_rows(client) -> bool:
    return client.ports.blobs.blobs == {} and not any(k.startswith("part:") for k in client.ports.state.items)


@pytest.mark.parametrize("how", ["upload", "part"])
@pytest.mark.parametrize(
    "body, content_type, message",
    [
        (b"a" * 1_000_000 + b",y\n1,2\n", CSV, "column names may be at most 200 characters"),
        (b"a" * 201 + b",y\n1,2\n", CSV, "column(s) [1] of the header have names longer than 200 characters"),
        (json.dumps([{"a" * 201: 1, "y": "b"}]).encode(), JSON, "longer than 200 characters"),
        (DEEP, JSON, "nests lists or objects too deeply"),
        (b'{"x": 1, "y": ' + DEEP + b"}", NDJSON, "nests lists or objects too deeply"),
        (b'[{"x": ' + LONG_NUMBER + b', "y": "a"}]', JSON, "has 5000 digits; numbers may have at most 4300"),
        (
            b'{"x": 1, "y": "a"}\n{"x": -' + LONG_NUMBER + b', "y": "b"}',
            NDJSON,
            "line 2: a number in the JSON has 5000",
        ),
    ],
)
def test_bodies_past_what_can_be_read_are_400_saying_why_and_store_no_rows(client, how, body, content_type, message):
    reply = send(client, how, body, content_type)
    assert reply.status_code == 400, reply.text
    assert message in reply.json()["detail"]
    assert stored_no_rows(client)


def test_json_values_nested_a_few_levels_are_kept_as_text(client):
    reply = send(client, "upload", json.dumps([{"x": [[[1]]], "y": "a"}]).encode(), JSON)
    assert reply.status_code == 201
    assert client.get("/api/datasets/d/versions/1/rows").json()["rows"] == [{"x": "[[[1]]]", "y": "a"}]


def test_a_declared_schema_with_more_columns_than_allowed_is_refused_before_its_costlier_checks_naming_the_limit(
    client, monkeypatch
):
    def checked(**fields):
        raise AssertionError("a schema over the limit is refused before it is checked, which costs more")

    monkeypatch.setattr(views, "Schema", checked)
    columns = [{"name": f"c{i}", "type": "number"} for i in range(100_000)]
    reply = client.post(
        "/api/datasets", json={"name": "wide", "task": "regression", "target": "c0", "columns": columns}
    )
    assert reply.status_code == 400 and "declares 100000 columns; a dataset may have at most 500" in reply.text
    assert client.ports.state.items == {}


def test_a_declared_schema_at_the_column_limit_is_accepted(client):
    columns = [{"name": f"c{i}", "type": "number"} for i in range(500)]
    reply = client.post(
        "/api/datasets", json={"name": "wide", "task": "regression", "target": "c0", "columns": columns}
    )
    assert reply.status_code == 201 and len(reply.json()["schema"]["columns"]) == 500
