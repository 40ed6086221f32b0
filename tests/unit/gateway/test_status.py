import asyncio
import json

from services.common.ports import Reply, SidecarUnavailable
from services.gateway.ports import GatewayPorts
from services.gateway.settings import Settings
from services.gateway.status.instances import Instances
from services.gateway.status.service import Status, service_status
from tests.fakes import FakeInvoker, FakeSecretStore, fake_ports

READY = Reply(200, json.dumps({"ready": True, "runtime_version": "1.18.2"}).encode())


def all_ready(settings: Settings) -> dict:
    return {(app_id, "readyz"): READY for app_id in settings.app_ids().values()}


def test_status_reports_each_service_and_its_sidecar_version():
    settings = Settings()
    status = asyncio.run(service_status(FakeInvoker(all_ready(settings)), settings.app_ids()))
    assert [s["service"] for s in status] == [
        "ingestion",
        "training",
        "registry",
        "inference",
        "monitor",
        "notifier",
        "gateway",
    ]
    assert all(s["reachable"] and s["runtime_version"] == "1.18.2" for s in status)


def test_status_names_why_a_service_is_not_reachable():
    async def unreachable(_body):
        raise SidecarUnavailable("connection refused")

    settings = Settings()
    replies = all_ready(settings)
    replies[("registry", "readyz")] = Reply(503, b'{"ready": false, "reason": "sidecar down"}')
    replies[("inference", "readyz")] = unreachable
    replies[("training", "readyz")] = Reply(500, b"<html>oops</html>")
    by_name = {s["service"]: s for s in asyncio.run(service_status(FakeInvoker(replies), settings.app_ids()))}
    assert by_name["registry"]["error"] == "sidecar down" and not by_name["registry"]["reachable"]
    assert "connection refused" in by_name["inference"]["error"]
    assert "HTTP 500" in by_name["training"]["error"]
    assert by_name["ingestion"]["reachable"]


def roundtrip(run_id: str, ports: GatewayPorts, settings: Settings) -> dict:
    status = Status(ports.invoker, ports.secrets, settings, Instances(settings.forget_instances_after_s))
    return asyncio.run(status.roundtrip(run_id))


def roundtrip_replies(settings: Settings, received: bool) -> dict:
    replies = all_ready(settings)
    steps = [{"name": "blob write", "ok": True, "detail": "x"}]
    replies[("ingestion", "internal/roundtrip/r1")] = Reply(200, json.dumps({"steps": steps}).encode())
    record = {
        "received_by": "training",
        "event_id": "e1",
        "event_source": "/daprml/ingestion",
        "blob_ok": True,
        "blob_detail": "read",
    }
    if received:
        replies[("training", "internal/roundtrip/r1")] = Reply(200, json.dumps(record).encode())
    return replies


def test_roundtrip_reports_every_step_and_cleans_up():
    settings = Settings(roundtrip_timeout_s=1)
    invoker = FakeInvoker(roundtrip_replies(settings, received=True))
    ports = fake_ports(GatewayPorts, invoker=invoker, secrets=FakeSecretStore({"gateway": {"admin-token": "t"}}))
    report = roundtrip("r1", ports, settings)
    assert report["ok"], report
    assert [s["name"] for s in report["steps"]] == ["invocation", "secret", "blob write", "subscription", "blob read"]
    assert ("ingestion", "internal/roundtrip/r1", "DELETE") in invoker.calls
    assert ("training", "internal/roundtrip/r1", "DELETE") in invoker.calls


def test_roundtrip_fails_when_the_ping_never_arrives_or_the_secret_is_missing():
    settings = Settings(roundtrip_timeout_s=0.3)
    ports = fake_ports(GatewayPorts, invoker=FakeInvoker(roundtrip_replies(settings, received=False)))
    report = roundtrip("r1", ports, settings)
    failed = {s["name"] for s in report["steps"] if not s["ok"]}
    assert not report["ok"] and failed == {"secret", "subscription"}
