"""The gateway names the caller to the services (the key's name in x-daprml-actor), and never
passes on a client's own: the registry then records that name as who moved an alias."""

from collections.abc import AsyncIterator

import pytest
from fastapi.testclient import TestClient

from services.common.contracts.monitoring import ACTOR_HEADER
from services.common.ports import Reply, StreamedReply
from services.gateway.app import create_app as gateway_app
from services.gateway.keys import Role
from services.gateway.ports import GatewayPorts
from services.registry.app import RegistryPorts
from services.registry.app import create_app as registry_app
from services.registry.settings import Settings as RegistrySettings
from tests.api.conftest import provisioned
from tests.api.test_registry_api import register
from tests.fakes import FakeInvoker, fake_ports

TOKEN = "registry-app-token"


@pytest.mark.parametrize(
    ("path", "service", "operation"),
    [
        ("/api/models/iris", "registry", "api/models/iris"),
        ("/api/datasets/iris", "ingestion", "api/datasets/iris"),
        ("/api/training/jobs", "training", "api/training/jobs"),
    ],
)
def test_every_forwarded_call_names_the_keys_name_whatever_the_client_sent(path, service, operation):
    keys, secrets = provisioned(ops_lead=[Role.ADMIN])
    invoker = FakeInvoker({(service, operation): Reply(200, b"{}")})
    with TestClient(gateway_app(ports=fake_ports(GatewayPorts, secrets=secrets, invoker=invoker))) as client:
        headers = {"authorization": f"Bearer {keys['ops_lead']}", ACTOR_HEADER: "mallory"}
        assert client.get(path, headers=headers).status_code == 200
    ((_, _, _, sent, _),) = invoker.forwarded
    assert sent[ACTOR_HEADER] == "ops_lead"


def test_a_client_without_a_key_gets_nothing_forwarded_under_any_name():
    invoker = FakeInvoker()
    with TestClient(gateway_app(ports=fake_ports(GatewayPorts, invoker=invoker))) as client:
        reply = client.put("/api/models/iris/aliases/champion", json={"version": 1}, headers={ACTOR_HEADER: "admin"})
    assert reply.status_code == 401 and invoker.forwarded == []


class ThroughSidecars:
    """Service invocation from the gateway to a registry app, as the two sidecars do it: the
    registry's sidecar adds the caller's app id and its own token to what the gateway sent."""

    def __init__(self, registry: TestClient, gateway_app_id: str):
        self.registry, self.gateway_app_id = registry, gateway_app_id

    async def forward(
        self, app_id: str, method: str, http_verb: str, headers: dict[str, str], body: AsyncIterator[bytes]
    ) -> StreamedReply:
        content = b"".join([chunk async for chunk in body])
        added = {"dapr-caller-app-id": self.gateway_app_id, "dapr-api-token": TOKEN}
        reply = self.registry.request(http_verb, f"/{method}", headers=headers | added, content=content)

        async def stream() -> AsyncIterator[bytes]:
            yield reply.content

        async def close() -> None:
            return None

        return StreamedReply(reply.status_code, dict(reply.headers), stream(), close)

    async def call(self, *args, **kwargs) -> Reply:  # pragma: no cover - the gateway only forwards here
        raise AssertionError("not called")


def test_an_alias_moved_through_the_gateway_is_in_the_history_under_the_keys_name():
    ports = fake_ports(RegistryPorts)
    settings = RegistrySettings(app_api_token=TOKEN, gateway_app_id="gateway", outbox_interval_s=3600)
    with TestClient(registry_app(settings, ports), headers={"dapr-api-token": TOKEN}) as registry:
        registry.ports = ports
        register(registry)
        keys, secrets = provisioned(ops_lead=[Role.ADMIN], viewer=[Role.READER])
        invoker = ThroughSidecars(registry, "gateway")
        with TestClient(gateway_app(ports=fake_ports(GatewayPorts, secrets=secrets, invoker=invoker))) as gateway:
            admin = {"authorization": f"Bearer {keys['ops_lead']}", ACTOR_HEADER: "mallory"}
            moved = gateway.put("/api/models/iris/aliases/champion?reason=launch", json={"version": 1}, headers=admin)
            assert moved.status_code == 200, moved.text
            reader = {"authorization": f"Bearer {keys['viewer']}"}
            history = gateway.get("/api/models/iris/history?limit=5", headers=reader)
    assert history.status_code == 200, history.text
    (entry,) = history.json()["entries"]
    assert (entry["actor"], entry["action"], entry["reason"]) == ("ops_lead", "alias.moved", "launch")
