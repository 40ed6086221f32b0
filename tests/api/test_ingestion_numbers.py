"""Infinite numbers ("inf", "1e309") are no values a model can learn from: a numeric column
holding some stays numeric and each such value rejects its row, saying why."""

import json

import pytest

CSV = {"content-type": "text/csv"}
INFINITE = b"x,y\n1.5,a\ninf,b\n1e309,a\n2,b\n-Infinity,a\n"
REASONS = [
    {"row": 2, "reason": "column 'x': 'inf' is not a finite number"},
    {"row": 3, "reason": "column 'x': '1e309' is not a finite number"},
    {"row": 5, "reason": "column 'x': '-Infinity' is not a finite number"},
]


@pytest.fixture
def client(make_client):
    return make_client("ingestion")


def test_an_inferred_column_with_infinite_values_is_a_number_column_rejecting_those_rows(client):
    reply = client.post("/api/datasets/d/versions?target=y", content=INFINITE, headers=CSV)
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert {c["name"]: c["type"] for c in body["schema"]["columns"]}["x"] == "number"
    assert body["row_count"] == 2 and body["upload"]["rejected_rows"] == REASONS
    assert body["profile"]["columns"]["x"]["max"] == 2.0


def test_a_json_number_too_big_for_a_float_rejects_its_row(client):
    body = b'[{"x": 1.5, "y": "a"}, {"x": 1e309, "y": "b"}, {"x": 2, "y": "a"}]'
    reply = client.post("/api/datasets/d/versions?target=y", content=body, headers={"content-type": "application/json"})
    assert reply.status_code == 201, reply.text
    assert reply.json()["upload"]["rejected_rows"] == [{"row": 2, "reason": "column 'x': 'inf' is not a finite number"}]


def test_a_declared_number_column_rejects_infinite_values_the_same_way(client):
    spec = {
        "name": "d",
        "task": "classification",
        "target": "y",
        "columns": [{"name": "x", "type": "number"}, {"name": "y", "type": "category"}],
    }
    assert client.post("/api/datasets", json=spec).status_code == 201
    reply = client.post("/api/datasets/d/versions", content=INFINITE, headers=CSV)
    assert reply.status_code == 201, reply.text
    assert [r["row"] for r in reply.json()["upload"]["rejected_rows"]] == [2, 3, 5]
    assert all("is not a finite number" in r["reason"] for r in reply.json()["upload"]["rejected_rows"])
    everything = client.post("/api/datasets/d/versions", content=b"x,y\ninf,a\n", headers=CSV)
    assert everything.status_code == 422 and "'inf' is not a finite number" in everything.json()["detail"]


@pytest.mark.parametrize("fill_value", ["Infinity", '"abc"'])
def test_a_declared_number_column_refuses_a_fill_value_that_is_no_finite_number(client, fill_value):
    spec = (
        '{"name": "d", "task": "classification", "target": "y", "columns": [{"name": "x", "type": "number", '
        '"missing": "fill", "fill_value": FILL}, {"name": "y", "type": "category"}]}'
    ).replace("FILL", fill_value)
    reply = client.post("/api/datasets", content=spec, headers={"content-type": "application/json"})
    assert reply.status_code in (400, 422) and "fill_value" in json.dumps(reply.json())
    assert client.ports.state.items == {}
