"""The ingestion API over in-memory fakes of our own ports."""

import asyncio
import csv as csvlib
import io
import json
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from services.ingestion.app import IngestionPorts, create_app
from services.ingestion.service import IngestionService
from services.ingestion.settings import Settings
from tests.fakes import SlowStateStore, fake_ports

CSV = {"content-type": "text/csv"}
IRIS = b"sepal,petal,species\n5.1,1.4,setosa\n7.0,4.7,versicolor\n6.3,6.0,virginica\n"


@pytest.fixture
def make(tmp_path):
    clients = []

    def make(**overrides):
        settings = Settings(outbox_interval_s=3600, **overrides)
        client = TestClient(create_app(settings, fake_ports(IngestionPorts)))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make):
    return make()


def ports(client):
    return client.app.state.ports


def stored_nothing(client) -> bool:
    return ports(client).state.items == {} and ports(client).blobs.blobs == {}


def upload(client, body=IRIS, name="iris", query="?target=species", headers=CSV):
    return client.post(f"/api/datasets/{name}/versions{query}", content=body, headers=headers)


# datasets


def test_create_a_dataset_with_a_schema_then_list_and_show_it(client):
    spec = {
        "name": "houses",
        "task": "regression",
        "target": "price",
        "columns": [{"name": "rooms", "type": "integer"}, {"name": "price", "type": "number"}],
    }
    reply = client.post("/api/datasets", json=spec)
    assert reply.status_code == 201 and reply.json()["schema"]["columns"][0]["name"] == "rooms"
    assert [d["name"] for d in client.get("/api/datasets").json()["datasets"]] == ["houses"]
    assert client.get("/api/datasets/houses").json()["versions"] == []


def test_creating_a_dataset_twice_is_409(client):
    spec = {"name": "d", "task": "classification", "target": "y"}
    assert client.post("/api/datasets", json=spec).status_code == 201
    reply = client.post("/api/datasets", json=spec)
    assert reply.status_code == 409 and "exists already" in reply.json()["detail"]


@pytest.mark.parametrize(
    "spec, status, message",
    [
        ({"name": "Bad Name", "task": "classification", "target": "y"}, 422, "name"),
        ({"name": "d", "task": "clustering", "target": "y"}, 422, "task"),
        (
            {"name": "d", "task": "classification", "target": "y", "columns": [{"name": "x", "type": "number"}]},
            400,
            "target 'y' is not one of the columns",
        ),
        (
            {"name": "d", "task": "classification", "target": "y", "columns": [{"name": "y", "type": "date"}]},
            422,
            "type",
        ),
    ],
)
def test_bad_dataset_specs_are_refused_and_store_nothing(client, spec, status, message):
    reply = client.post("/api/datasets", json=spec)
    assert reply.status_code == status and message in json.dumps(reply.json())
    assert stored_nothing(client)


def test_an_unknown_dataset_is_404_saying_how_to_create_it(client):
    reply = client.get("/api/datasets/nope")
    assert reply.status_code == 404 and "create it first" in reply.json()["detail"]


# one-shot uploads


def test_a_csv_upload_creates_the_dataset_infers_the_schema_and_profiles_it(client):
    reply = upload(client)
    assert reply.status_code == 201
    body = reply.json()
    assert body["version"] == 1 and body["row_count"] == 3 and body["unchanged"] is False
    assert {c["name"]: c["type"] for c in body["schema"]["columns"]} == {
        "sepal": "number",
        "petal": "number",
        "species": "category",
    }
    assert body["schema"]["task"] == "classification"
    assert body["profile"]["columns"]["sepal"]["min"] == 5.1
    assert body["profile"]["class_balance"] == {"setosa": 0.333333, "versicolor": 0.333333, "virginica": 0.333333}
    assert body["upload"]["rows_accepted"] == 3


def test_uploading_the_same_content_again_returns_the_latest_version(client):
    first = upload(client).json()
    again = upload(client, body=IRIS.replace(b"\n", b"\r\n"), query="")
    assert again.status_code == 200 and again.json()["unchanged"] is True
    assert again.json()["version"] == first["version"] == 1
    assert len(client.get("/api/datasets/iris").json()["versions"]) == 1


def test_json_and_ndjson_uploads(client):
    records = [{"x": 1, "y": "a"}, {"x": 2.5, "y": "b"}]
    assert (
        upload(client, json.dumps(records).encode(), "j", "?target=y", {"content-type": "application/json"}).json()[
            "row_count"
        ]
        == 2
    )
    lines = b"\n".join(json.dumps(r).encode() for r in records)
    assert upload(client, lines, "n", "?target=y", {"content-type": "application/x-ndjson"}).json()["row_count"] == 2


def test_rejected_rows_are_listed_with_row_number_and_reason(client):
    upload(client)
    reply = upload(client, b"sepal,petal,species\n5.0,1.0,setosa\nabc,1.0,setosa\n4.9,1.1,\n", query="")
    assert reply.status_code == 201
    assert reply.json()["upload"]["rejected_rows"] == [
        {"row": 2, "reason": "column 'sepal': 'abc' is not a number"},
        {"row": 3, "reason": "the target 'species' is missing"},
    ]
    assert reply.json()["row_count"] == 1 and reply.json()["rows_rejected"] == 2


@pytest.mark.parametrize(
    "body, headers, status, message",
    [
        (b"", CSV, 400, "the body is empty"),
        (b"sepal,species\n\xff,a\n", CSV, 400, "not UTF-8"),
        (b'sepal,species\n1,"a\n', CSV, 400, "quote that is never closed"),
        (b"sepal,species\n1,a\n", {"content-type": "application/xml"}, 415, "not supported"),
        (b"sepal,species\n1,\n2,NA\n", CSV, 422, "all 2 rows were rejected"),
        (b"sepal,petal\n1,2\n", CSV, 400, "target 'species' is not a column"),
    ],
)
def test_bad_bodies_get_a_clear_4xx_and_store_nothing(client, body, headers, status, message):
    reply = upload(client, body, query="?target=species", headers=headers)
    assert reply.status_code == status, reply.json()
    assert message in reply.json()["detail"]
    assert stored_nothing(client)


def test_a_422_lists_the_rejected_rows(client):
    upload(client)
    reply = upload(client, b"sepal,petal,species\nx,1,a\n", query="")
    assert reply.status_code == 422
    assert reply.json()["rejected_rows"] == [{"row": 1, "reason": "column 'sepal': 'x' is not a number"}]


def test_an_oversize_body_is_413_pointing_at_multipart(make):
    client = make(max_part_bytes=64)
    reply = upload(client, IRIS * 3)
    assert reply.status_code == 413 and "send the file in parts" in reply.json()["detail"]
    assert stored_nothing(client)


def test_uploading_to_an_unknown_dataset_without_a_target_is_404(client):
    reply = upload(client, query="")
    assert reply.status_code == 404 and "upload with a target column" in reply.json()["detail"]
    assert stored_nothing(client)


def test_a_target_other_than_the_datasets_is_409(client):
    upload(client)
    assert upload(client, query="?target=petal").status_code == 409


# multi-part uploads


def start(client, name="iris", query="?target=species") -> str:
    reply = client.post(f"/api/datasets/{name}/uploads{query}")
    assert reply.status_code == 201
    return reply.json()["upload_id"]


def put(client, upload_id, number, body, name="iris"):
    return client.put(f"/api/datasets/{name}/uploads/{upload_id}/parts/{number}", content=body, headers=CSV)


def test_parts_in_any_order_commit_as_one_version_in_part_order(client):
    uid = start(client)
    assert put(client, uid, 2, b"sepal,petal,species\n7.0,4.7,versicolor\n").status_code == 200
    assert put(client, uid, 1, b"sepal,petal,species\n5.1,1.4,setosa\n").status_code == 200
    reply = client.post(f"/api/datasets/iris/uploads/{uid}/commit")
    assert reply.status_code == 201 and reply.json()["row_count"] == 2
    rows = client.get("/api/datasets/iris/versions/1/rows").json()["rows"]
    assert [r["species"] for r in rows] == ["setosa", "versicolor"]


def test_a_retried_part_is_not_stored_twice(client):
    uid = start(client)
    first = put(client, uid, 1, IRIS).json()
    blobs = dict(ports(client).blobs.blobs)
    retry = put(client, uid, 1, IRIS).json()
    assert first["unchanged"] is False and retry["unchanged"] is True
    assert ports(client).blobs.blobs == blobs


def test_a_part_sent_again_with_other_content_replaces_the_old_one(client):
    uid = start(client)
    put(client, uid, 1, IRIS)
    put(client, uid, 1, b"sepal,petal,species\n1,1,a\n")
    assert len([k for k in ports(client).blobs.blobs if k.endswith(".parquet")]) == 1
    assert client.post(f"/api/datasets/iris/uploads/{uid}/commit").json()["row_count"] == 1


def test_rows_repeated_across_parts_are_dropped_at_commit(client):
    uid = start(client)
    put(client, uid, 1, IRIS)
    put(client, uid, 2, b"sepal,petal,species\n5.1,1.4,setosa\n1,1,new\n")
    body = client.post(f"/api/datasets/iris/uploads/{uid}/commit").json()
    assert body["row_count"] == 4 and body["duplicates_dropped"] == 1
    assert body["profile"]["rows"] == 4


def test_abort_removes_the_parts_and_the_upload_cannot_be_used_after(client):
    uid = start(client)
    put(client, uid, 1, IRIS)
    assert client.delete(f"/api/datasets/iris/uploads/{uid}").status_code == 204
    assert ports(client).blobs.blobs == {}
    assert put(client, uid, 2, IRIS).status_code == 409
    assert client.post(f"/api/datasets/iris/uploads/{uid}/commit").status_code == 409
    assert client.get("/api/datasets/iris").status_code == 404, "an aborted upload creates no dataset"


def test_commit_is_idempotent_and_parts_after_it_are_refused(client):
    uid = start(client)
    put(client, uid, 1, IRIS)
    first = client.post(f"/api/datasets/iris/uploads/{uid}/commit").json()
    again = client.post(f"/api/datasets/iris/uploads/{uid}/commit").json()
    assert first["version"] == again["version"] == 1
    assert put(client, uid, 2, IRIS).status_code == 409


def test_upload_mistakes(client):
    uid = start(client)
    assert client.post(f"/api/datasets/iris/uploads/{uid}/commit").status_code == 400
    assert put(client, uid, 0, IRIS).status_code == 422
    assert put(client, "0" * 32, 1, IRIS).status_code == 404
    assert client.put(f"/api/datasets/other/uploads/{uid}/parts/1", content=IRIS, headers=CSV).status_code == 404
    assert client.post("/api/datasets/nope/uploads").status_code == 404
    bad = put(client, uid, 1, b"sepal,petal,species\nx,y,\n")
    assert bad.status_code == 422 and bad.json()["rows_rejected"] == 1
    assert client.get(f"/api/datasets/iris/uploads/{uid}").json()["parts"] == []


# read side


def test_rows_are_paged(client):
    body = b"x,y\n" + b"".join(f"{i},c{i % 2}\n".encode() for i in range(25))
    upload(client, body, "d", "?target=y")
    page = client.get("/api/datasets/d/versions/latest/rows?offset=20&limit=10").json()
    assert page["total"] == 25 and [r["x"] for r in page["rows"]] == [20, 21, 22, 23, 24]
    assert client.get("/api/datasets/d/versions/1/rows?limit=5000").status_code == 400
    assert client.get("/api/datasets/d/versions/1/rows?offset=-1").status_code == 422


def test_download_as_csv_and_as_parquet(client):
    upload(client)
    csv = client.get("/api/datasets/iris/versions/1/data")
    assert csv.headers["content-type"].startswith("text/csv")
    assert list(csvlib.reader(io.StringIO(csv.text))) == [
        ["sepal", "petal", "species"],
        ["5.1", "1.4", "setosa"],
        ["7", "4.7", "versicolor"],
        ["6.3", "6", "virginica"],
    ]
    parquet = client.get("/api/datasets/iris/versions/1/data", headers={"accept": "application/vnd.apache.parquet"})
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.to_pylist()[0] == {"sepal": 5.1, "petal": 1.4, "species": "setosa"}
    assert client.get("/api/datasets/iris/versions/1/data?format=parquet").content[:4] == b"PAR1"


def test_versions_that_do_not_exist(client):
    upload(client)
    assert client.get("/api/datasets/iris/versions/7").status_code == 404
    assert client.get("/api/datasets/iris/versions/first").status_code == 422
    assert client.get("/api/datasets/iris/versions/latest").json()["version"] == 1


# events


def test_each_committed_version_is_announced_once_with_a_stable_id(client):
    upload(client)
    upload(client, query="")  # unchanged: no new version, no new event
    ((event_type, payload, subject),) = ports(client).publisher.sent
    assert payload.dataset == "iris" and payload.version == 1 and payload.row_count == 3
    assert payload.profile["rows"] == 3 and subject == "iris/v1"
    assert ports(client).publisher.ids[0].startswith("iris-v1-")
    assert client.get("/api/datasets/iris").json().get("outbox") is None


def test_a_version_committed_while_pubsub_is_down_is_announced_later(make):
    client = make()
    publisher = ports(client).publisher
    publisher.down = True
    assert upload(client).status_code == 201
    assert publisher.sent == []
    publisher.down = False
    assert asyncio.run(client.app.state.services[IngestionService].flush_all()) == 1
    assert [p.version for _, p, _ in publisher.sent] == [1]
    assert asyncio.run(client.app.state.services[IngestionService].flush_all()) == 0


def test_two_commits_racing_for_one_version_number_do_not_both_get_it():
    ports_ = fake_ports(IngestionPorts, state=SlowStateStore())
    app = create_app(Settings(outbox_interval_s=3600), ports_)
    service = app.state.services[IngestionService]

    async def race():
        await service.upload_once("iris", IRIS, "text/csv", target="species")
        a = await service.start_upload("iris")
        b = await service.start_upload("iris")
        await service.put_part(a.id, 1, b"sepal,petal,species\n1,1,a\n", "text/csv")
        await service.put_part(b.id, 1, b"sepal,petal,species\n2,2,b\n", "text/csv")
        return await asyncio.gather(service.commit(a.id), service.commit(b.id))

    first, second = asyncio.run(race())
    assert sorted([first.version, second.version]) == [2, 3]
    record = asyncio.run(service.dataset("iris"))
    assert [v.version for v in record.versions] == [1, 2, 3]
    assert len({v.manifest_key for v in record.versions}) == 3


def test_an_upload_left_open_past_its_time_is_aborted_and_its_parts_deleted(client):
    uid = start(client)
    put(client, uid, 1, IRIS)
    done = start(client)
    put(client, done, 1, IRIS)
    client.post(f"/api/datasets/iris/uploads/{done}/commit")
    service = client.app.state.services[IngestionService]
    assert asyncio.run(service.expire_uploads()) == [], "nothing is old yet"
    later = datetime.now(UTC) + timedelta(seconds=service.settings.upload_ttl_s + 1)
    assert asyncio.run(service.expire_uploads(later)) == [uid]
    assert put(client, uid, 2, IRIS).status_code == 409
    assert client.get(f"/api/datasets/iris/uploads/{uid}").json()["state"] == "aborted"
    assert all(uid not in key for key in ports(client).blobs.blobs)
    assert asyncio.run(client.app.state.services[IngestionService].repo.open_uploads()) == {}


def test_commit_leaves_only_the_files_the_version_uses(client):
    repeated = b"sepal,petal,species\n5.1,1.4,setosa\n1,1,new\n"  # its first row repeats part 1's
    uid = start(client)
    put(client, uid, 1, IRIS)
    put(client, uid, 2, repeated)
    assert client.post(f"/api/datasets/iris/uploads/{uid}/commit").status_code == 201
    used = {p["key"] for p in client.get("/api/datasets/iris/versions/1").json()["parts"]}
    assert any(k.endswith("-dedup") for k in used)

    def stored() -> tuple[set[str], set[str]]:
        blobs = {k.rsplit(".", 1)[0] for k in ports(client).blobs.blobs}
        records = {k.removeprefix("part:") for k in ports(client).state.items if k.startswith("part:")}
        return blobs, records

    assert stored() == (used, used)
    again = start(client, query="")
    put(client, again, 1, IRIS)
    put(client, again, 2, repeated)
    assert client.post(f"/api/datasets/iris/uploads/{again}/commit").json()["unchanged"] is True
    assert stored() == (used, used), "an unchanged upload leaves nothing of its own behind"


def test_an_oversize_part_is_413_and_stores_nothing(make):
    client = make(max_part_bytes=64)
    uid = start(client)
    reply = put(client, uid, 1, IRIS * 3)
    assert reply.status_code == 413 and "at most 64 bytes" in reply.json()["detail"]
    assert ports(client).blobs.blobs == {}
    assert client.get(f"/api/datasets/iris/uploads/{uid}").json()["parts"] == []
