"""API keys and roles at the gateway: who may call what, and what the others are told."""

import pytest
from fastapi.testclient import TestClient

from services.common.ports import Reply
from services.gateway.app import create_app
from services.gateway.keys import Role
from services.gateway.ports import GatewayPorts
from services.gateway.settings import Settings
from tests.api.conftest import provisioned
from tests.fakes import FakeInvoker, FakeSecretStore, fake_ports

DATASETS = FakeInvoker({("ingestion", "api/datasets"): Reply(200, b'{"datasets": []}')})


class CountingSecrets(FakeSecretStore):
    def __init__(self, secrets):
        super().__init__(secrets)
        self.reads = 0

    async def get(self, name):
        self.reads += 1
        return await super().get(name)


@pytest.fixture
def keys():
    """A key per role, and a gateway that knows them."""
    keys, secrets = provisioned(**{role.value: [role] for role in Role})
    client = TestClient(create_app(ports=fake_ports(GatewayPorts, secrets=secrets, invoker=DATASETS)))
    yield keys, client
    client.close()


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_no_key_is_401_with_a_challenge_and_says_how_to_send_one(keys):
    _, client = keys
    reply = client.get("/api/datasets")
    assert reply.status_code == 401 and reply.headers["www-authenticate"] == 'Bearer realm="daprml"'
    assert "Authorization: Bearer" in reply.json()["detail"]


@pytest.mark.parametrize("key", ["nonsense", "dml_000000000000_" + "x" * 43, "Bearer"])
def test_a_malformed_or_unknown_key_is_401(keys, key):
    _, client = keys
    reply = client.get("/api/datasets", headers=bearer(key))
    assert reply.status_code == 401 and key not in reply.text


def test_a_known_key_with_a_wrong_secret_is_401(keys):
    plain, client = keys
    forged = plain["reader"][:-4] + "abcd"
    assert client.get("/api/datasets", headers=bearer(forged)).status_code == 401


def test_the_key_may_come_as_x_api_key(keys):
    plain, client = keys
    assert client.get("/api/datasets", headers={"x-api-key": plain["reader"]}).status_code == 200


@pytest.mark.parametrize(
    ("role", "method", "path", "needed"),
    [
        ("reader", "post", "/api/datasets", "ingest"),
        ("predict", "get", "/api/datasets", "reader"),
        ("ingest", "post", "/api/training/jobs", "train"),
        ("reader", "delete", "/api/training/jobs/iris-v1-ridge-0123456789ab", "train"),
        ("train", "put", "/api/models/iris/aliases/champion", "admin"),
        ("reader", "post", "/api/models/iris/predict", "predict"),
        ("reader", "post", "/v2/models/iris/infer", "predict"),
        ("train", "get", "/v2/models/iris", "reader or predict"),
        ("predict", "post", "/api/keys", "admin"),
        ("reader", "post", "/api/roundtrip", "admin"),
    ],
)
def test_a_role_that_does_not_allow_the_call_is_403_naming_the_role_needed(keys, role, method, path, needed):
    plain, client = keys
    reply = client.request(method, path, headers=bearer(plain[role]), json={})
    assert reply.status_code == 403, reply.text
    message = reply.json().get("detail") or reply.json()["error"]  # /v2 answers in the protocol's shape
    assert f"needs the {needed} role" in message


def test_health_and_the_api_docs_need_no_key(keys):
    _, client = keys
    for path in ("/healthz", "/docs", "/openapi.json"):
        assert client.get(path).status_code == 200, path


def test_every_api_and_v2_operation_requires_a_key():
    spec = create_app(ports=fake_ports(GatewayPorts)).openapi()
    unguarded = [
        (method, path)
        for path, operations in spec["paths"].items()
        if path.startswith(("/api", "/v2"))
        for method, operation in operations.items()
        if not operation.get("security")
    ]
    assert unguarded == []


def test_an_issued_key_works_lists_without_its_secret_and_is_refused_once_revoked(keys):
    plain, client = keys
    admin = bearer(plain["admin"])
    issued = client.post("/api/keys", json={"name": "ci robot", "roles": ["reader"]}, headers=admin)
    assert issued.status_code == 201, issued.text
    key = issued.json()["key"]
    assert client.get("/api/datasets", headers=bearer(key)).status_code == 200
    listed = client.get("/api/keys", headers=admin)
    assert "ci robot" in listed.text and key not in listed.text and "hash" not in listed.text
    revoked = client.delete(f"/api/keys/{issued.json()['id']}", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert client.get("/api/datasets", headers=bearer(key)).status_code == 401


def test_a_provisioned_key_can_be_revoked_too(keys):
    plain, client = keys
    admin = bearer(plain["admin"])
    reader_id = plain["reader"].split("_")[1]
    assert client.delete(f"/api/keys/{reader_id}", headers=admin).status_code == 200
    assert client.get("/api/datasets", headers=bearer(plain["reader"])).status_code == 401


def test_a_key_cannot_revoke_itself(keys):
    plain, client = keys
    own = plain["admin"].split("_")[1]
    reply = client.delete(f"/api/keys/{own}", headers=bearer(plain["admin"]))
    assert reply.status_code == 400 and "itself" in reply.json()["detail"]


def test_keys_are_read_from_the_stores_once_per_cache_period_not_per_request():
    plain, secrets = provisioned(reader=[Role.READER])
    counting = CountingSecrets(secrets.secrets)
    with TestClient(create_app(ports=fake_ports(GatewayPorts, secrets=counting, invoker=DATASETS))) as client:
        for _ in range(5):
            assert client.get("/api/datasets", headers=bearer(plain["reader"])).status_code == 200
    assert counting.reads == 1


def test_over_its_rate_a_key_gets_429_with_retry_after():
    plain, secrets = provisioned(reader=[Role.READER])
    settings = Settings(rate_limits={Role.READER: 1.0}, rate_burst_s=3.0)
    app = create_app(settings, fake_ports(GatewayPorts, secrets=secrets, invoker=DATASETS))
    with TestClient(app) as client:
        answers = [client.get("/api/datasets", headers=bearer(plain["reader"])) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert int(answers[-1].headers["retry-after"]) >= 1 and "rate limit" in answers[-1].json()["detail"]


def test_a_key_issued_with_a_rate_of_its_own_is_held_to_it(keys):
    plain, client = keys
    issued = client.post(
        "/api/keys", json={"name": "slow robot", "roles": ["reader"], "rate": 0.5}, headers=bearer(plain["admin"])
    ).json()
    assert issued["rate"] == 0.5
    answers = [client.get("/api/datasets", headers=bearer(issued["key"])).status_code for _ in range(3)]
    assert answers == [200, 429, 429]  # a burst of max(1, 0.5 x 2 s) = 1 call


def test_keys_never_reach_the_log(keys, caplog):
    plain, client = keys
    admin = bearer(plain["admin"])
    issued = client.post("/api/keys", json={"name": "robot", "roles": ["reader"]}, headers=admin).json()["key"]
    client.get("/api/datasets", headers=bearer(issued))
    client.get("/api/datasets", headers=bearer(plain["reader"][:-1] + "Q"))
    for key in (*plain.values(), issued):
        assert key not in caplog.text and key.split("_", 2)[2] not in caplog.text


def test_the_last_admin_key_cannot_be_revoked_and_the_setup_key_only_once_another_admin_exists():
    """Two gateway replicas over the same stores: replica two still trusts the setup key from
    its cache after replica one revoked it, yet cannot use it to revoke the one admin left."""
    plain, secrets = provisioned(setup=[Role.ADMIN])
    setup, setup_id = bearer(plain["setup"]), plain["setup"].split("_")[1]
    ports = fake_ports(GatewayPorts, secrets=secrets, invoker=DATASETS)
    with TestClient(create_app(ports=ports)) as one, TestClient(create_app(ports=ports)) as two:
        assert two.get("/api/keys", headers=setup).status_code == 200
        issued = one.post("/api/keys", json={"name": "second admin", "roles": ["admin"]}, headers=setup).json()
        assert one.delete(f"/api/keys/{setup_id}", headers=bearer(issued["key"])).status_code == 200
        refused = two.delete(f"/api/keys/{issued['id']}", headers=setup)
        assert refused.status_code == 409, refused.text
        assert "would leave no admin key" in refused.json()["detail"] and "issue another" in refused.json()["detail"]
        assert one.get("/api/keys", headers=bearer(issued["key"])).status_code == 200
