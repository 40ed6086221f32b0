import json

from services.common.fakes import FakeInvoker
from services.common.ports import Reply

READY = Reply(200, json.dumps({"ready": True, "runtime_version": "1.18.2"}).encode())


def test_status_lists_all_five_services(make_client):
    ids = ["ingestion", "training", "registry", "inference", "gateway"]
    client = make_client("gateway", invoker=FakeInvoker({(i, "readyz"): READY for i in ids}))
    body = client.get("/api/status").json()
    assert body["ok"] is True
    assert [(s["service"], s["reachable"], s["runtime_version"]) for s in body["services"]] == \
        [(i, True, "1.18.2") for i in ids]


def test_status_is_not_ok_when_one_service_is_down(make_client):
    client = make_client("gateway", invoker=FakeInvoker({("ingestion", "readyz"): READY}))
    body = client.get("/api/status").json()
    assert body["ok"] is False
    assert sum(s["reachable"] for s in body["services"]) == 1


def test_unknown_path_is_404(make_client):
    assert make_client("gateway").get("/api/nope").status_code == 404
