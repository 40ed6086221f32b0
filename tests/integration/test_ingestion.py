"""Ingestion through the gateway and real sidecars: uploads, versions, events, races, restarts."""

import csv
import io
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pandas as pd
import pytest
from sklearn.datasets import load_iris

from tests.integration.conftest import poll

pytestmark = pytest.mark.integration
CSV = {"content-type": "text/csv"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def iris() -> pd.DataFrame:
    frame = load_iris(as_frame=True).frame
    frame["target"] = frame["target"].map(dict(enumerate(load_iris().target_names)))
    return frame


def csv_of(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def all_rows(gateway, name: str, version: int, page: int = 40) -> list[dict]:
    rows, offset = [], 0
    while True:
        body = gateway.get(
            f"/api/datasets/{name}/versions/{version}/rows", params={"offset": offset, "limit": page}
        ).json()
        rows += body["rows"]
        offset += page
        if offset >= body["total"]:
            return rows


def test_one_shot_csv_upload_reads_back_equal_rows_and_its_profile(gateway, iris):
    name = unique("iris")
    reply = gateway.post(f"/api/datasets/{name}/versions?target=target", content=csv_of(iris), headers=CSV)
    assert reply.status_code == 201, reply.text
    body = reply.json()
    expected = iris.drop_duplicates().to_dict("records")  # iris has one repeated row
    assert body["row_count"] == len(expected) == 149 and body["duplicates_dropped"] == 1
    assert all_rows(gateway, name, 1) == expected

    downloaded = list(csv.DictReader(io.StringIO(gateway.get(f"/api/datasets/{name}/versions/1/data").text)))
    assert len(downloaded) == 149 and float(downloaded[0]["sepal length (cm)"]) == expected[0]["sepal length (cm)"]

    profile = gateway.get(f"/api/datasets/{name}/versions/latest").json()["profile"]
    assert profile["columns"]["target"]["counts"] == {"setosa": 50, "versicolor": 50, "virginica": 49}
    assert profile["columns"]["petal width (cm)"]["min"] == 0.1


def test_multipart_upload_with_a_retried_part_commits_once(gateway, iris):
    name = unique("parts")
    upload = gateway.post(f"/api/datasets/{name}/uploads?target=target").json()["upload_id"]
    chunks = [iris.iloc[:60], iris.iloc[60:110], iris.iloc[110:]]
    url = f"/api/datasets/{name}/uploads/{upload}"
    for number in (3, 1, 2):
        assert gateway.put(f"{url}/parts/{number}", content=csv_of(chunks[number - 1]), headers=CSV).status_code == 200
    retried = gateway.put(f"{url}/parts/2", content=csv_of(chunks[1]), headers=CSV).json()
    assert retried["unchanged"] is True
    assert gateway.get(url).json()["parts"] == [1, 2, 3]
    committed = gateway.post(f"{url}/commit")
    assert committed.status_code == 201 and committed.json()["row_count"] == 149
    assert all_rows(gateway, name, 1) == iris.drop_duplicates().to_dict("records")


def test_the_commit_event_reaches_training_which_starts_a_job(gateway, iris):
    name = unique("events")
    reply = gateway.post(f"/api/datasets/{name}/versions?target=target", content=csv_of(iris), headers=CSV)
    assert reply.status_code == 201

    def job():
        jobs = gateway.get("/api/training/jobs", params={"dataset": name}).json()["jobs"]
        return jobs[0] if jobs else None

    found = poll(job)
    assert found is not None, "training never heard of the new version"
    assert (found["dataset"], found["version"]) == (name, 1)


def test_two_racing_commits_get_distinct_versions(gateway, iris):
    name = unique("race")
    gateway.post(f"/api/datasets/{name}/versions?target=target", content=csv_of(iris.iloc[:10]), headers=CSV)
    uploads = []
    for part in (iris.iloc[10:20], iris.iloc[20:30]):
        upload = gateway.post(f"/api/datasets/{name}/uploads").json()["upload_id"]
        gateway.put(f"/api/datasets/{name}/uploads/{upload}/parts/1", content=csv_of(part), headers=CSV)
        uploads.append(upload)
    with ThreadPoolExecutor(2) as pool:
        replies = list(pool.map(lambda u: gateway.post(f"/api/datasets/{name}/uploads/{u}/commit"), uploads))
    assert [r.status_code for r in replies] == [201, 201]
    assert sorted(r.json()["version"] for r in replies) == [2, 3]
    versions = gateway.get(f"/api/datasets/{name}").json()["versions"]
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert {v["upload_id"] for v in versions[1:]} == set(uploads)


@pytest.mark.parametrize(
    "body, headers, status",
    [
        (b"", CSV, 400),
        (b"a,target\n\xff,x\n", CSV, 400),
        (b"a,target\n1,x\n", {"content-type": "application/xml"}, 415),
        (b"a,target\n1,\n", CSV, 422),
    ],
)
def test_bad_uploads_through_the_gateway_are_refused_and_create_nothing(gateway, body, headers, status):
    name = unique("bad")
    reply = gateway.post(f"/api/datasets/{name}/versions?target=target", content=body, headers=headers)
    assert reply.status_code == status and reply.json()["detail"]
    assert gateway.get(f"/api/datasets/{name}").status_code == 404


def test_a_20_mb_part_passes_both_sidecars(gateway):
    rows = 900_000
    body = b"x,y,target\n" + b"".join(f"{i},{i * 0.123456789:.9f},{'ab'[i % 2]}\n".encode() for i in range(rows))
    assert len(body) > 20 * 1024 * 1024, "bigger than Dapr's default 4 MB limit by far"
    name = unique("big")
    reply = gateway.post(f"/api/datasets/{name}/versions?target=target", content=body, headers=CSV)
    assert reply.status_code == 201, reply.text
    assert reply.json()["row_count"] == rows


def test_an_upload_survives_a_restart_of_the_ingestion_service_between_parts(one_app_stack, iris):
    solo = one_app_stack(["python", "-m", "services.ingestion"])
    solo.start(timeout_s=60)
    api = f"http://127.0.0.1:{solo.apps[0].app_port}/api/datasets/restart"
    token = solo.app_headers()  # straight to the app, as its sidecar would call it
    upload = httpx.post(f"{api}/uploads?target=target", headers=token).json()["upload_id"]
    part = httpx.put(f"{api}/uploads/{upload}/parts/1", content=csv_of(iris.iloc[:75]), headers=CSV | token)
    assert part.status_code == 200

    solo.stop()
    solo.start(timeout_s=60)

    part = httpx.put(f"{api}/uploads/{upload}/parts/2", content=csv_of(iris.iloc[75:]), headers=CSV | token)
    assert part.status_code == 200
    committed = httpx.post(f"{api}/uploads/{upload}/commit", timeout=30, headers=token)
    assert committed.status_code == 201 and committed.json()["row_count"] == 149


def test_the_samples_load_through_the_gateway_and_again_change_nothing(stack):
    from scripts import samples

    first = {r["dataset"]: r for r in samples.load(stack.gateway_url, list(samples.SAMPLES), stack.admin_key)}
    assert {n: (r["row_count"], r["schema"]["task"]) for n, r in first.items()} == {
        "iris": (149, "classification"),
        "wine": (178, "classification"),
        "breast-cancer": (569, "classification"),
        "diabetes": (442, "regression"),
        "flowers": (145, "classification"),
    }
    flowers = first["flowers"]["upload"]
    assert flowers["rows_rejected"] == 6 and flowers["duplicates_dropped"] == 4
    assert first["flowers"]["profile"]["columns"]["sepal_width"]["missing"] == 12
    again = samples.load(stack.gateway_url, ["iris", "flowers"], stack.admin_key)
    assert [(r["version"], r["unchanged"]) for r in again] == [(1, True), (1, True)]
