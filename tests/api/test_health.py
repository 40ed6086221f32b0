import pytest
from fastapi.testclient import TestClient

from scripts.proc import wait_until
from services.common.app import ServiceSpec, build_app
from services.common.ports import SidecarPorts
from services.common.settings import ServiceSettings
from tests.fakes import FakeProbe, fake_ports

SERVICES = ["ingestion", "training", "registry", "inference", "gateway"]


@pytest.mark.parametrize("service", SERVICES)
def test_healthz_is_live_without_a_sidecar(make_client, service):
    client = make_client(service, probe=FakeProbe(healthy=False))
    reply = client.get("/healthz")
    assert reply.status_code == 200 and reply.json()["live"] is True


@pytest.mark.parametrize("service", SERVICES)
def test_readyz_reports_the_sidecar_version_when_it_answers(make_client, service):
    reply = make_client(service).get("/readyz")
    assert reply.status_code == 200
    assert reply.json()["ready"] is True and reply.json()["runtime_version"] == "1.18.2"
    assert reply.json()["app_id"] == service


@pytest.mark.parametrize("service", SERVICES)
def test_readyz_is_503_with_a_reason_when_the_sidecar_does_not_answer(make_client, service):
    reply = make_client(service, probe=FakeProbe(healthy=False)).get("/readyz")
    assert reply.status_code == 503
    assert reply.json()["ready"] is False and "healthz/outbound" in reply.json()["reason"]


def test_healthz_fails_with_the_reasons_while_a_liveness_check_says_the_service_cannot_work():
    problems: list[str] = []
    spec = ServiceSpec(
        title="probe",
        settings=ServiceSettings(app_id="probe", require_app_token=False),
        ports=fake_ports(SidecarPorts),
        liveness=[lambda: problems[0] if problems else None],
    )
    with TestClient(build_app(spec)) as client:
        assert client.get("/healthz").json() == {"live": True, "app_id": "probe"}
        problems.append("the fit worker pool cannot start processes")
        reply = client.get("/healthz")
        assert reply.status_code == 503
        assert reply.json() == {"live": False, "app_id": "probe", "problems": problems}


def test_a_service_announces_its_instance_while_it_runs_and_that_it_leaves_when_it_stops():
    probe = FakeProbe()
    spec = ServiceSpec(
        title="probe",
        settings=ServiceSettings(app_id="probe", dapr_http_port=3599, heartbeat_s=0.05, require_app_token=False),
        ports=fake_ports(SidecarPorts, probe=probe),
    )
    with TestClient(build_app(spec)):
        assert wait_until(lambda: len(probe.heartbeats) >= 3, 5)
    beats = probe.heartbeats
    assert {(b.app_id, b.instance.rsplit(":", 1)[1]) for b in beats} == {("probe", "3599")}
    assert [b.leaving for b in beats[-2:]] == [False, True]
    assert beats[0].at < beats[1].at and beats[0].started_at == beats[-1].started_at
