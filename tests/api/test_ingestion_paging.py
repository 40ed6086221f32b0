"""GET /api/datasets answers a page at a time, in order of name."""

import pytest


@pytest.fixture
def client(make_client):
    client = make_client("ingestion")
    for name in ("e", "b", "d", "a", "c"):
        spec = {"name": name, "task": "classification", "target": "y"}
        assert client.post("/api/datasets", json=spec).status_code == 201
    return client


def test_datasets_are_listed_a_page_at_a_time_in_order_of_name(client):
    page = client.get("/api/datasets?offset=1&limit=2").json()
    assert [d["name"] for d in page["datasets"]] == ["b", "c"]
    assert (page["total"], page["offset"], page["limit"]) == (5, 1, 2)
    assert [d["name"] for d in client.get("/api/datasets?offset=4&limit=2").json()["datasets"]] == ["e"]
    assert client.get("/api/datasets?offset=9").json()["datasets"] == []


def test_the_first_page_is_the_default_and_holds_up_to_100(client):
    page = client.get("/api/datasets").json()
    assert [d["name"] for d in page["datasets"]] == ["a", "b", "c", "d", "e"]
    assert (page["total"], page["offset"], page["limit"]) == (5, 0, 100)


def test_a_page_is_at_most_1000_datasets(client):
    assert client.get("/api/datasets?limit=1000").status_code == 200
    reply = client.get("/api/datasets?limit=1001")
    assert reply.status_code == 400 and "limit between 1 and 1000" in reply.json()["detail"]
    assert client.get("/api/datasets?offset=-1").status_code == 422
    assert client.get("/api/datasets?limit=0").status_code == 422
