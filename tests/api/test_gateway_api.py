import asyncio
import json
from datetime import UTC, datetime, timedelta

from services.common.events import InstanceHeartbeat
from services.common.ports import Reply
from services.gateway.status.instances import Instances
from tests.fakes import FakeInvoker

READY = Reply(200, json.dumps({"ready": True, "runtime_version": "1.18.2"}).encode())


def test_status_lists_every_service_of_the_stack(make_client):
    ids = ["ingestion", "training", "registry", "inference", "monitor", "notifier", "gateway"]
    client = make_client("gateway", invoker=FakeInvoker({(i, "readyz"): READY for i in ids}))
    body = client.get("/api/status").json()
    assert body["ok"] is True
    assert [(s["service"], s["reachable"], s["runtime_version"]) for s in body["services"]] == [
        (i, True, "1.18.2") for i in ids
    ]


def test_status_is_not_ok_when_one_service_is_down(make_client):
    client = make_client("gateway", invoker=FakeInvoker({("ingestion", "readyz"): READY}))
    body = client.get("/api/status").json()
    assert body["ok"] is False
    assert sum(s["reachable"] for s in body["services"]) == 1


def test_unknown_path_is_404(make_client):
    assert make_client("gateway").get("/api/nope").status_code == 404


def test_dataset_paths_are_forwarded_to_ingestion_with_body_query_and_status(make_client):
    created = Reply(201, b'{"version": 1}')
    invoker = FakeInvoker({("ingestion", "api/datasets/iris/versions?target=species"): created})
    client = make_client("gateway", invoker=invoker)
    reply = client.post(
        "/api/datasets/iris/versions?target=species",
        content=b"a,species\n1,x\n",
        headers={"content-type": "text/csv", "x-private": "not forwarded"},
    )
    assert reply.status_code == 201 and reply.json() == {"version": 1}
    ((app_id, method, verb, headers, body),) = invoker.forwarded
    assert (app_id, verb, body) == ("ingestion", "POST", b"a,species\n1,x\n")
    assert headers["content-type"] == "text/csv" and "x-private" not in headers


def test_ingestion_errors_come_back_unchanged(make_client):
    missing = Reply(404, b'{"detail": "dataset \'nope\' does not exist"}')
    invoker = FakeInvoker({("ingestion", "api/datasets/nope"): missing})
    reply = make_client("gateway", invoker=invoker).get("/api/datasets/nope")
    assert reply.status_code == 404 and "does not exist" in reply.json()["detail"]


def test_status_lists_each_instance_by_its_heartbeats_and_is_not_ok_when_one_is_down(make_client):
    ids = ["ingestion", "training", "registry", "inference", "monitor", "notifier", "gateway"]
    client = make_client("gateway", invoker=FakeInvoker({(i, "readyz"): READY for i in ids}))
    now = datetime.now(UTC)
    for instance, age_s in (("host:3514", 1), ("host:3599", 60)):
        at = now - timedelta(seconds=age_s)
        heartbeat = InstanceHeartbeat(app_id="inference", instance=instance, started_at=at, at=at, interval_s=5)
        asyncio.run(client.app.state.services[Instances].heard({}, heartbeat))
    body = client.get("/api/status").json()
    inference = next(s for s in body["services"] if s["service"] == "inference")
    assert [(i["instance"], i["up"]) for i in inference["instances"]] == [("host:3514", True), ("host:3599", False)]
    assert body["ok"] is False  # every service answers, but one replica is down
    assert next(s for s in body["services"] if s["service"] == "training")["instances"] == []


def test_a_405_names_every_method_the_path_takes(make_client):
    client = make_client("gateway")
    reply = client.options("/api/datasets")
    assert reply.status_code == 405 and reply.headers["allow"] == "GET, POST"
    assert client.request("TRACE", "/api/training/jobs/some-job").headers["allow"] == "DELETE, GET"


def test_the_openapi_document_names_every_status_an_operation_can_answer(make_client):
    paths = make_client("gateway").get("/openapi.json").json()["paths"]
    for path, operations in paths.items():
        if not path.startswith(("/api", "/v2")):
            continue
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            assert {"404", "408", "422", "431", "503"} <= statuses, (method, path)
            if operation.get("security"):
                assert {"401", "403", "429"} <= statuses, (method, path)
            if method in ("post", "put"):
                assert {"400", "409", "413", "415"} <= statuses, (method, path)
            error = operation["responses"]["422"]["content"]["application/json"]["schema"]
            assert error["required"] == (["error"] if path.startswith("/v2") else ["detail"]), (method, path)
    assert "/dapr/subscribe" not in paths and not any(p.startswith("/internal") for p in paths)


def test_the_metrics_directions_come_from_the_gateway_itself_for_a_key(make_client):
    """What the console reads to tell which version is best, instead of keeping its own list."""
    client = make_client("gateway")
    reply = client.get("/api/metrics")
    assert reply.status_code == 200 and reply.json() == {"lower_is_better": ["log_loss", "mae", "mse", "rmse"]}
    assert client.ports.invoker.calls == []  # nothing forwarded
    client.headers.pop("authorization")
    assert client.get("/api/metrics").status_code == 401
