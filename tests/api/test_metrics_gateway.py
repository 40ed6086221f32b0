"""The gateway's metrics over in-memory fakes: refused callers by reason (never the key),
rate-limited calls, 503s by service and reason, breaker opens; and no /metrics on its port."""

from fastapi.testclient import TestClient
from prometheus_client import generate_latest

from services.common.ports import Reply, SidecarUnavailable
from services.gateway.app import create_app
from services.gateway.keys import Role
from services.gateway.ports import GatewayPorts
from services.gateway.settings import Settings
from tests.api.conftest import provisioned
from tests.fakes import FakeInvoker, fake_ports

DATASETS = Reply(200, b'{"datasets": []}')
DOWN = Reply(500, b'{"errorCode":"ERR_DIRECT_INVOKE","message":"failed to invoke, id: ingestion"}')


def value(client, name: str, **labels: str) -> float:
    found = client.app.state.metrics.get_sample_value(name, labels)
    return 0.0 if found is None else found


def gateway(invoker: FakeInvoker, settings: Settings | None = None) -> tuple[dict[str, str], TestClient]:
    keys, secrets = provisioned(reader=[Role.READER], admin=[Role.ADMIN])
    return keys, TestClient(create_app(settings, fake_ports(GatewayPorts, secrets=secrets, invoker=invoker)))


def test_refused_callers_count_by_reason_and_no_key_appears(make_client):
    keys, client = gateway(FakeInvoker({("ingestion", "api/datasets"): DATASETS}))
    unknown = keys["reader"][:-4] + "zzzz"  # well-formed, wrong secret
    calls = [
        ("/api/datasets", {}),
        ("/api/datasets", {"authorization": "Bearer not-a-key"}),
        ("/api/datasets", {"x-api-key": "also not one"}),
        ("/api/datasets", {"authorization": f"Bearer {unknown}"}),
        ("/api/keys", {"authorization": f"Bearer {keys['reader']}"}),  # admins only
        ("/api/datasets", {"authorization": f"Bearer {keys['reader']}"}),  # admitted
    ]
    with client:
        assert [client.get(path, headers=headers).status_code for path, headers in calls] == [401] * 4 + [403, 200]
    failures = "daprml_gateway_auth_failures_total"
    assert value(client, failures, reason="missing_key") == 1
    assert value(client, failures, reason="malformed_key") == 2
    assert value(client, failures, reason="unknown_key") == 1
    assert value(client, failures, reason="wrong_role") == 1
    text = generate_latest(client.app.state.metrics).decode()
    assert all(key[-12:] not in text for key in [*keys.values(), unknown])


def test_each_call_over_its_rate_is_counted():
    keys, client = gateway(
        FakeInvoker({("ingestion", "api/datasets"): DATASETS}),
        Settings(rate_limits={Role.READER: 1.0}, rate_burst_s=3.0),
    )
    with client:
        answers = [client.get("/api/datasets", headers={"x-api-key": keys["reader"]}).status_code for _ in range(5)]
    assert answers == [200, 200, 200, 429, 429]
    assert value(client, "daprml_gateway_rate_limited_total") == 2


def test_503s_count_by_service_and_reason_and_the_breaker_opens_once(make_client):
    async def sidecar_away(body: bytes) -> Reply:
        raise SidecarUnavailable("the gateway's sidecar does not answer", "the sidecar is away")

    invoker = FakeInvoker({("ingestion", "api/datasets/iris"): DOWN, ("registry", "api/models"): sidecar_away})
    client = make_client("gateway", invoker=invoker)
    assert [client.get("/api/datasets/iris").status_code for _ in range(8)] == [503] * 8
    assert client.get("/api/models").status_code == 503
    unavailable = "daprml_gateway_upstream_unavailable_total"
    assert value(client, unavailable, service="ingestion", reason="not_answering") == 5  # then the breaker opened
    assert value(client, unavailable, service="ingestion", reason="breaker_open") == 3
    assert value(client, unavailable, service="registry", reason="sidecar_unavailable") == 1
    assert value(client, "daprml_gateway_breaker_opens_total", service="ingestion") == 1
    assert value(client, "daprml_gateway_breaker_opens_total", service="registry") == 0


def test_the_public_port_serves_no_metrics_under_any_spelling(make_client):
    client = make_client("gateway")
    for path in ("/metrics", "/metrics/", "/api/metrics/../../metrics", "/api/../metrics", "/%6Detrics"):
        reply = client.get(path)
        assert reply.status_code in (401, 404), (path, reply.status_code)
        assert "# TYPE" not in reply.text and "daprml_http_requests" not in reply.text, path
