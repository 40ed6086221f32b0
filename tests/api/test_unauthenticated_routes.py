"""What the routes that need no key tell a caller without one: /readyz only ready or not, the
sidecar's routes (/dapr/...) nothing without the app token, a trailing slash no redirect."""

import pytest
from fastapi.testclient import TestClient

from services.common.app import ServiceSpec, build_app
from services.common.ports import SidecarPorts
from services.common.settings import ServiceSettings
from services.gateway.app import create_app
from services.gateway.keys import Role
from services.gateway.ports import GatewayPorts
from services.gateway.settings import Settings
from tests.api.conftest import provisioned
from tests.fakes import FakeProbe, fake_ports

TOKEN = "the-app-token"
SIDECAR = {"dapr-api-token": TOKEN}


@pytest.fixture
def gateway():
    """A gateway given the app token, as on the stack, with a reader key; its sidecar's health
    as the test sets it (client.probe)."""
    keys, secrets = provisioned(reader=[Role.READER])
    probe = FakeProbe()
    app = create_app(Settings(app_api_token=TOKEN), fake_ports(GatewayPorts, secrets=secrets, probe=probe))
    with TestClient(app) as client:
        client.key, client.probe = keys["reader"], probe
        yield client


def internal(probe: FakeProbe, token: str | None = TOKEN) -> TestClient:
    spec = ServiceSpec(
        title="probe",
        settings=ServiceSettings(app_id="probe", app_api_token=token, heartbeat_s=0),
        ports=fake_ports(SidecarPorts, probe=probe),
    )
    return TestClient(build_app(spec))


def test_an_internal_apps_readyz_says_only_ready_or_not_without_the_app_token():
    probe = FakeProbe()
    with internal(probe) as client:
        assert client.get("/readyz").json() == {"ready": True}
        assert client.get("/readyz", headers={"dapr-api-token": "guess"}).json() == {"ready": True}
        detailed = client.get("/readyz", headers=SIDECAR).json()
        assert detailed["runtime_version"] == "1.18.2" and detailed["components"] == ["state (state.fake)"]
        probe.is_healthy = False
        down = client.get("/readyz")
        assert down.status_code == 503 and down.json() == {"ready": False}
        assert "healthz/outbound" in client.get("/readyz", headers=SIDECAR).json()["reason"]


def test_an_app_given_no_token_keeps_nothing_back():
    with internal(FakeProbe(), token=None) as client:
        assert client.get("/readyz").json()["runtime_version"] == "1.18.2"


def test_the_gateways_readyz_tells_details_only_with_a_valid_key_or_the_app_token(gateway):
    anonymous = gateway.get("/readyz")
    assert anonymous.status_code == 200 and anonymous.json() == {"ready": True}
    for wrong in ("Bearer nonsense", "Bearer dml_0123456789ab_" + "x" * 43):
        assert gateway.get("/readyz", headers={"authorization": wrong}).json() == {"ready": True}
    for headers in ({"authorization": f"Bearer {gateway.key}"}, {"x-api-key": gateway.key}, SIDECAR):
        detailed = gateway.get("/readyz", headers=headers).json()
        assert detailed["app_id"] == "gateway" and detailed["components"] == ["state (state.fake)"], headers
    gateway.probe.is_healthy = False
    down = gateway.get("/readyz")
    assert down.status_code == 503 and down.json() == {"ready": False}


def test_the_gateways_sidecar_routes_answer_only_the_app_token(gateway):
    refused = gateway.get("/dapr/subscribe")
    assert refused.status_code == 401 and "dapr-api-token" in refused.json()["detail"]
    assert refused.headers["x-request-id"]  # checked inside the request ids
    assert gateway.get("/dapr/subscribe", headers={"authorization": f"Bearer {gateway.key}"}).status_code == 401
    assert gateway.post("/internal/events/dead-letters", content=b"{}").status_code == 401
    subscriptions = gateway.get("/dapr/subscribe", headers=SIDECAR)
    assert subscriptions.status_code == 200 and subscriptions.json()
    assert gateway.get("/healthz").status_code == 200  # the public routes still need no token


@pytest.mark.parametrize("path", ["/api/models/", "/api/datasets/", "/healthz/", "/console/vendor/"])
def test_a_trailing_slash_is_a_404_that_says_so_never_a_redirect_built_from_the_host_header(gateway, path):
    reply = gateway.get(path, headers={"host": "evil.example"}, follow_redirects=False)
    assert reply.status_code == 404 and "location" not in reply.headers
    assert "evil.example" not in reply.text
    if path.startswith("/api"):
        assert "do not end in '/'" in reply.json()["detail"]
