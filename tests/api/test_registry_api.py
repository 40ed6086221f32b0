"""The registry API over in-memory fakes: registering versions, reading them, their artifacts,
paging, and the events of what was committed."""

import asyncio
import hashlib
import time

import pytest
from fastapi.testclient import TestClient

from services.common.contracts.models import RegisterVersion
from services.common.events import EventType
from services.common.ports import SidecarUnavailable
from services.registry.app import RegistryPorts, create_app
from services.registry.service import RegistryService
from services.registry.settings import Settings
from tests.fakes import FakePublisher, FakeStateStore, SlowStateStore, fake_ports

ARTIFACT = b"the skops file of a model"


def registration(job="job-1", accuracy=0.9, artifact=ARTIFACT, task="classification", **metrics):
    return {
        "lineage": {
            "dataset": "iris",
            "dataset_version": 1,
            "schema_hash": "abc123",
            "estimator": "random_forest",
            "params": {"n_estimators": 100},
            "job_id": job,
        },
        "metrics": {"accuracy": accuracy, "f1_macro": accuracy - 0.05, **metrics},
        "artifact": {"key": f"models/iris/{job}.skops", "sha256": hashlib.sha256(artifact).hexdigest()},
        "card": {
            "task": task,
            "target": "species",
            "features": [{"name": "sepal", "type": "number"}, {"name": "petal", "type": "category"}],
            "classes": ["setosa", "versicolor"],
        },
    }


def register(client, name="iris", artifact=ARTIFACT, **kwargs):
    body = registration(artifact=artifact, **kwargs)
    client.ports.blobs.blobs[body["artifact"]["key"]] = artifact
    return client.post(f"/internal/models/{name}/versions", json=body)


def state_keys(client):
    return set(client.ports.state.items)


@pytest.fixture
def client(make_client):
    return make_client("registry")


# registering


def test_the_first_registration_is_version_1(client):
    reply = register(client)
    assert reply.status_code == 201
    assert reply.json() == {"model": "iris", "version": 1, "new": True}


def test_the_same_job_registering_again_gets_the_same_version(client):
    register(client)
    again = register(client)
    assert again.status_code == 200 and again.json() == {"model": "iris", "version": 1, "new": False}
    assert [v["version"] for v in client.get("/api/models/iris").json()["versions"]] == [1]


def test_different_jobs_get_the_next_numbers(client):
    assert [register(client, job=f"job-{i}").json()["version"] for i in range(3)] == [1, 2, 3]


def test_a_version_for_another_task_than_the_models_is_409(client):
    register(client)
    before = state_keys(client)
    reply = register(client, job="job-2", task="regression")
    assert reply.status_code == 409 and "another model name" in reply.json()["detail"]
    assert state_keys(client) == before  # the details stored for it are deleted again


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda b: b["artifact"].update(sha256="not-a-sha"), "sha256"),
        (lambda b: b["artifact"].update(key="../../etc/passwd"), "key"),
        (lambda b: b["artifact"].update(key="/abs/path"), "key"),
        (lambda b: b["lineage"].update(job_id=""), "job_id"),
        (lambda b: b["lineage"].update(dataset="Iris!"), "dataset"),
        (lambda b: b["lineage"].update(dataset_version=0), "dataset_version"),
        (lambda b: b.update(metrics={}), "metrics"),
        (lambda b: b["metrics"].update(accuracy="high"), "accuracy"),
        (lambda b: b["card"].update(task="clustering"), "task"),
        (lambda b: b["card"].update(features=[]), "features"),
        (lambda b: b.pop("card"), "card"),
    ],
)
def test_a_malformed_registration_is_422_and_writes_nothing(client, change, where):
    body = registration()
    change(body)
    reply = client.post("/internal/models/iris/versions", json=body)
    assert reply.status_code == 422 and where in reply.text
    assert state_keys(client) == set()


def test_an_infinite_metric_is_422_and_writes_nothing(client):
    body = registration()
    raw = RegisterVersion.model_validate(body).model_dump_json().replace("0.9,", "Infinity,", 1)
    reply = client.post("/internal/models/iris/versions", content=raw, headers={"content-type": "application/json"})
    assert reply.status_code == 422 and state_keys(client) == set()


def test_a_bad_model_name_is_refused_and_writes_nothing(client):
    reply = client.post("/internal/models/IRIS/versions", json=registration())
    assert reply.status_code == 422 and state_keys(client) == set()


def racing_service():
    app = create_app(Settings(outbox_interval_s=3600), fake_ports(RegistryPorts, state=SlowStateStore()))
    return app.state.services[RegistryService]


def test_two_jobs_racing_get_versions_1_and_2():
    service = racing_service()

    async def race():
        a, b = (RegisterVersion.model_validate(registration(job=j)) for j in ("job-a", "job-b"))
        return await asyncio.gather(service.register("iris", a), service.register("iris", b))

    first, second = asyncio.run(race())
    assert sorted([first.version, second.version]) == [1, 2] and first.new and second.new
    record = asyncio.run(service.record("iris"))
    assert [v.version for v in record.versions] == [1, 2]


def test_the_same_job_racing_itself_makes_one_version():
    service = racing_service()

    async def race():
        request = RegisterVersion.model_validate(registration())
        return await asyncio.gather(service.register("iris", request), service.register("iris", request))

    first, second = asyncio.run(race())
    assert first.version == second.version == 1 and sorted([first.new, second.new]) == [False, True]
    assert len(asyncio.run(service.record("iris")).versions) == 1


def test_events_left_in_the_outbox_are_published_when_the_app_starts(make_client):
    publisher = FakePublisher(down=True)
    client = make_client("registry", publisher=publisher)
    register(client)
    publisher.down = False
    with TestClient(create_app(Settings(outbox_interval_s=3600), client.ports)):
        for _ in range(200):  # the background job's first run, at start-up
            if publisher.sent:
                break
            time.sleep(0.01)
    assert [t for t, _, _ in publisher.sent] == [EventType.MODEL_VERSION_REGISTERED]


class IndexDownOnce(FakeStateStore):
    def __init__(self):
        super().__init__()
        self.down = True

    async def create(self, key, value):
        if key == "models" and self.down:
            self.down = False
            raise SidecarUnavailable("the state store went away")
        await super().create(key, value)


def test_a_version_whose_model_was_not_listed_yet_is_listed_when_the_job_retries(make_client):
    client = make_client("registry", state=IndexDownOnce())
    assert register(client).status_code == 503  # the version is stored; the index is not
    assert client.get("/api/models").json()["total"] == 0
    assert register(client).json() == {"model": "iris", "version": 1, "new": False}
    assert [m["name"] for m in client.get("/api/models").json()["models"]] == ["iris"]


# reading


def test_a_version_shows_lineage_metrics_artifact_and_card(client):
    register(client)
    version = client.get("/api/models/iris/versions/1").json()
    assert version["lineage"] == registration()["lineage"] | {"feedback_rows": 0}
    assert version["metrics"]["accuracy"] == 0.9
    assert version["artifact"] == registration()["artifact"]
    assert version["card"]["features"][1] == {"name": "petal", "type": "category"}
    assert version["card"]["classes"] == ["setosa", "versicolor"]
    assert version["created_at"] and version["aliases"] == []


def test_a_version_can_be_named_by_its_alias(client):
    register(client)
    client.put("/api/models/iris/aliases/champion", json={"version": 1})
    assert client.get("/api/models/iris/versions/champion").json()["version"] == 1
    assert client.get("/api/models/iris/versions/champion").json()["aliases"] == ["champion"]


def test_latest_names_the_newest_version(client):
    register(client)
    register(client, job="job-2")
    assert client.get("/api/models/iris/versions/latest").json()["version"] == 2


def test_what_does_not_exist_is_404_saying_what_there_is(client):
    assert "does not exist" in client.get("/api/models/iris").json()["detail"]
    register(client)
    reply = client.get("/api/models/iris/versions/7")
    assert reply.status_code == 404 and "versions 1 to 1" in reply.json()["detail"]
    reply = client.get("/api/models/iris/versions/staging")
    assert reply.status_code == 404 and "no alias 'staging'" in reply.json()["detail"]


def test_the_model_lists_its_versions_in_short(client):
    register(client)
    register(client, job="job-2", accuracy=0.95)
    model = client.get("/api/models/iris").json()
    assert model["task"] == "classification" and model["policy"] == {
        "mode": "manual",
        "metric": None,
        "first_champion": True,
        "trained_on_feedback": "challenger",
        "rollout": None,
    }
    assert [(v["version"], v["job_id"], v["metrics"]["accuracy"]) for v in model["versions"]] == [
        (1, "job-1", 0.9),
        (2, "job-2", 0.95),
    ]


def test_models_are_listed_by_name_a_page_at_a_time(client):
    for name in ("wine", "iris", "diabetes"):
        register(client, name=name)
    page = client.get("/api/models?offset=1&limit=1").json()
    assert page["total"] == 3 and [m["name"] for m in page["models"]] == ["iris"]
    assert page["models"][0]["latest_version"] == 1
    assert client.get("/api/models?limit=0").status_code == 422
    assert client.get("/api/models?limit=100000").status_code == 400


# artifacts


def test_the_artifact_is_served_when_its_sha256_matches(client):
    register(client)
    reply = client.get("/api/models/iris/versions/1/artifact")
    assert reply.status_code == 200 and reply.content == ARTIFACT
    assert 'filename="iris-v1.skops"' in reply.headers["content-disposition"]
    assert reply.headers["x-sha256"] == hashlib.sha256(ARTIFACT).hexdigest()


def test_a_tampered_artifact_is_a_500_that_says_so_and_is_not_served(client, caplog):
    register(client)
    client.ports.blobs.blobs["models/iris/job-1.skops"] = b"something else"
    reply = client.get("/api/models/iris/versions/1/artifact")
    assert reply.status_code == 500 and "not the file that was registered" in reply.json()["detail"]
    assert b"something else" not in reply.content
    assert "has sha256" in caplog.text


def test_a_missing_artifact_is_a_500_that_says_so(client, caplog):
    register(client)
    client.ports.blobs.blobs.clear()
    reply = client.get("/api/models/iris/versions/1/artifact")
    assert reply.status_code == 500 and "missing from the blob store" in reply.json()["detail"]
    assert "missing" in caplog.text


# compiled models (ONNX)

ONNX = b"the ONNX file of a model"


def compiled(onnx=ONNX, job="job-1", reason=None):
    """The `onnx` of a registration: its file when it passed the check, else the reason."""
    check = {"passed": True, "rows": 240, "max_difference": 2e-7, "tolerance": 1e-4, "ties": 1}
    if reason:
        return {"artifact": None, "check": {"passed": False, "reason": reason}, "versions": {"skl2onnx": "1.20.0"}}
    artifact = {"key": f"models/iris/{job}.onnx", "sha256": hashlib.sha256(onnx).hexdigest()}
    return {"artifact": artifact, "check": check, "versions": {"skl2onnx": "1.20.0", "opset ai.onnx": "17"}}


def register_compiled(client, onnx=ONNX, job="job-1", reason=None):
    body = registration(job=job) | {"onnx": compiled(onnx, job, reason)}
    body["card"]["missing_category"] = "__missing__"
    client.ports.blobs.blobs[body["artifact"]["key"]] = ARTIFACT
    if not reason:
        client.ports.blobs.blobs[body["onnx"]["artifact"]["key"]] = onnx
    return client.post("/internal/models/iris/versions", json=body)


def test_a_version_shows_its_onnx_file_and_check_and_serves_the_file(client):
    assert register_compiled(client).status_code == 201
    version = client.get("/api/models/iris/versions/1").json()
    expected = compiled()
    assert version["onnx"] == expected | {"check": expected["check"] | {"reason": None}}
    assert version["card"]["missing_category"] == "__missing__"
    reply = client.get("/api/models/iris/versions/champion/onnx")  # no champion yet
    assert reply.status_code == 404
    reply = client.get("/api/models/iris/versions/1/onnx")
    assert reply.status_code == 200 and reply.content == ONNX
    assert 'filename="iris-v1.onnx"' in reply.headers["content-disposition"]
    assert reply.headers["x-sha256"] == hashlib.sha256(ONNX).hexdigest()
    assert client.get("/api/models/iris/versions/1/artifact").content == ARTIFACT  # the skops file beside it


def test_a_version_without_an_onnx_file_is_404_saying_why(client):
    reason = "the pipeline could not be converted to ONNX (RuntimeError: no converter); served by scikit-learn"
    register_compiled(client, reason=reason)
    assert client.get("/api/models/iris/versions/1").json()["onnx"]["check"] == {
        "passed": False,
        "rows": 0,
        "max_difference": None,
        "tolerance": None,
        "ties": 0,
        "reason": reason,
    }
    reply = client.get("/api/models/iris/versions/1/onnx")
    assert reply.status_code == 404 and reason in reply.json()["detail"]
    assert "version 1 has no ONNX file" in reply.json()["detail"]
    register(client, job="job-2")  # as training registered before models were compiled
    assert client.get("/api/models/iris/versions/2").json()["onnx"] is None
    reply = client.get("/api/models/iris/versions/2/onnx")
    assert reply.status_code == 404 and "registered before models were compiled" in reply.json()["detail"]


def test_a_tampered_or_lost_onnx_file_is_a_500_that_says_so_and_is_not_served(client):
    register_compiled(client)
    client.ports.blobs.blobs["models/iris/job-1.onnx"] = b"something else"
    reply = client.get("/api/models/iris/versions/1/onnx")
    assert reply.status_code == 500 and "the ONNX file of model 'iris' version 1 is not the file" in reply.text
    assert b"something else" not in reply.content
    del client.ports.blobs.blobs["models/iris/job-1.onnx"]
    reply = client.get("/api/models/iris/versions/1/onnx")
    assert reply.status_code == 500 and "missing from the blob store" in reply.json()["detail"]


def test_a_job_registering_its_compiled_model_again_keeps_its_version_and_file(client):
    assert register_compiled(client).status_code == 201
    again = register_compiled(client, onnx=b"another conversion of the same job")
    assert again.status_code == 200 and again.json() == {"model": "iris", "version": 1, "new": False}
    assert client.get("/api/models/iris/versions/1").json()["onnx"]["artifact"]["sha256"] == (
        hashlib.sha256(ONNX).hexdigest()
    )


def test_a_malformed_onnx_record_is_422_and_writes_nothing(client):
    body = registration() | {"onnx": compiled()}
    body["onnx"]["artifact"]["key"] = "../../etc/passwd"
    reply = client.post("/internal/models/iris/versions", json=body)
    assert reply.status_code == 422 and "key" in reply.text and state_keys(client) == set()


# events


def test_a_registration_is_announced_once_with_a_stable_id(client):
    register(client)
    register(client)  # the same job again: no new version, no new event
    ((event_type, payload, subject),) = client.ports.publisher.sent
    assert event_type == EventType.MODEL_VERSION_REGISTERED and subject == "iris/v1"
    assert payload.model == "iris" and payload.version == 1 and payload.metrics["accuracy"] == 0.9
    assert client.ports.publisher.ids == [f"iris-v1-{hashlib.sha256(ARTIFACT).hexdigest()[:12]}"]
    assert client.ports.state.items["model:iris"].value.count(b'"outbox":[]') == 1


def test_events_of_changes_made_while_pubsub_is_down_are_published_later_with_the_same_ids(make_client):
    publisher = FakePublisher(down=True)
    client = make_client("registry", publisher=publisher)
    assert register(client).status_code == 201
    assert client.put("/api/models/iris/aliases/champion", json={"version": 1}).status_code == 200
    assert publisher.sent == []
    publisher.down = False
    service = client.app.state.services[RegistryService]
    assert asyncio.run(service.flush_all()) == 3
    assert [t for t, _, _ in publisher.sent] == [
        EventType.MODEL_VERSION_REGISTERED,
        EventType.MODEL_ALIAS_CHANGED,
        EventType.MODEL_HISTORY_RECORDED,
    ]
    assert publisher.ids[1:] == ["iris-alias-1", "iris-history-1"]
    assert asyncio.run(service.flush_all()) == 0


class FailsSecond(FakePublisher):
    async def publish(self, *args, **kwargs):
        if len(self.sent) == 1:
            self.sent.append(None)  # counts the attempt; it fails
            raise SidecarUnavailable("pubsub went away")
        await super().publish(*args, **kwargs)


def test_events_published_before_a_failure_are_not_published_again(make_client):
    publisher = FakePublisher(down=True)
    client = make_client("registry", publisher=publisher)
    register(client)
    client.put("/api/models/iris/aliases/champion", json={"version": 1})
    failing = FailsSecond()
    client.app.state.services[RegistryService].publisher = failing
    assert asyncio.run(client.app.state.services[RegistryService].flush_all()) == 0
    client.app.state.services[RegistryService].publisher = publisher
    publisher.down = False
    assert asyncio.run(client.app.state.services[RegistryService].flush_all()) == 2
    assert [t for t, _, _ in publisher.sent] == [EventType.MODEL_ALIAS_CHANGED, EventType.MODEL_HISTORY_RECORDED]
