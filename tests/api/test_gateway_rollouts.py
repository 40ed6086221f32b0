"""The gateway's side of rollouts: six routes forwarded to the registry at exactly its paths
(services/common/contracts/rollouts.py), under the roles they need, with the rollout id and the
model name checked before anything is forwarded."""

import json

import pytest
from fastapi.testclient import TestClient

from services.common.contracts.monitoring import ACTOR_HEADER
from services.common.contracts.rollouts import StartRollout
from services.common.ports import Reply
from services.gateway.app import create_app as gateway_app
from services.gateway.keys import Role
from services.gateway.ports import GatewayPorts
from tests.api.conftest import provisioned
from tests.api.test_gateway_routes import raw_request
from tests.api.test_gateway_traffic import _resolved
from tests.fakes import FakeInvoker, fake_ports

KEYS = {"ops_lead": [Role.ADMIN], "viewer": [Role.READER], "trainer": [Role.TRAIN], "app": [Role.PREDICT]}
ID = "iris-2-0f3a9c"
PLAN = {
    "candidate": 2,
    "plan": [{"shadow": 20, "for": "10m"}, {"canary": 30, "for": 200}, {"approval": True}, {"promote": True}],
    "reason": "v2 fixes the drift",
}
# (method, public path, the registry's path) of each route; a query, when sent, goes along as it is.
ROUTES = [
    ("POST", "/api/models/iris/rollouts", "api/models/iris/rollouts"),
    ("GET", "/api/models/iris/rollouts", "api/models/iris/rollouts"),
    ("GET", f"/api/models/iris/rollouts/{ID}", f"api/models/iris/rollouts/{ID}"),
    ("POST", f"/api/models/iris/rollouts/{ID}/approve", f"api/models/iris/rollouts/{ID}/approve"),
    ("POST", f"/api/models/iris/rollouts/{ID}/reject", f"api/models/iris/rollouts/{ID}/reject"),
    ("POST", f"/api/models/iris/rollouts/{ID}/abort", f"api/models/iris/rollouts/{ID}/abort"),
]
CHANGES = [r for r in ROUTES if r[0] == "POST"]
READS = [r for r in ROUTES if r[0] == "GET"]


def gateway(invoker) -> tuple[TestClient, dict[str, dict[str, str]]]:
    keys, secrets = provisioned(**KEYS)
    client = TestClient(gateway_app(ports=fake_ports(GatewayPorts, secrets=secrets, invoker=invoker)))
    return client, {name: {"authorization": f"Bearer {key}"} for name, key in keys.items()}


def answering(*methods: str) -> FakeInvoker:
    return FakeInvoker({("registry", m): Reply(200, b'{"answered": "registry"}') for m in methods})


def _send(client: TestClient, method: str, path: str, headers: dict[str, str]):
    body = PLAN if path.endswith("/rollouts") and method == "POST" else None
    return client.request(method, path, headers=headers, json=body)


@pytest.mark.parametrize(("method", "path", "upstream"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_each_route_reaches_the_registry_at_its_own_path_with_the_key_named(method, path, upstream):
    invoker = answering(upstream)
    client, keys = gateway(invoker)
    with client:
        reply = _send(client, method, path, keys["ops_lead"] | {ACTOR_HEADER: "mallory", "x-other": "1"})
    assert reply.status_code == 200 and reply.json() == {"answered": "registry"}, reply.text
    ((app_id, forwarded, verb, sent, received),) = invoker.forwarded
    assert (app_id, forwarded, verb) == ("registry", upstream, method)
    assert sent[ACTOR_HEADER] == "ops_lead"  # the key's name, never the client's own header
    assert set(sent) <= {"content-type", "content-length", "accept", ACTOR_HEADER}
    starting = upstream.endswith("/rollouts") and verb == "POST"
    assert (json.loads(received) if starting else received) == (PLAN if starting else b"")


def test_the_plan_goes_to_the_registry_byte_for_byte_and_its_201_comes_back():
    created = Reply(201, json.dumps({"id": ID, "status": "running"}).encode())
    invoker = FakeInvoker({("registry", "api/models/iris/rollouts"): created})
    client, keys = gateway(invoker)
    body = b'{"candidate": 2, "plan": [{"canary": 30, "for": 200}, {"promote": true}]}'
    with client:
        headers = keys["ops_lead"] | {"content-type": "application/json"}
        reply = client.post("/api/models/iris/rollouts?reason=ignored", content=body, headers=headers)
    assert (reply.status_code, reply.json()["id"]) == (201, ID)
    ((_, forwarded, _, _, received),) = invoker.forwarded
    assert (forwarded, received) == ("api/models/iris/rollouts", body)  # the start's reason is in its body


@pytest.mark.parametrize("action", ["approve", "reject", "abort"])
def test_a_decisions_reason_goes_along_re_encoded_and_nothing_else_does(action):
    upstream = f"api/models/iris/rollouts/{ID}/{action}?reason=looks+good+%26+safe"
    invoker = answering(upstream)
    client, keys = gateway(invoker)
    with client:
        path = f"/api/models/iris/rollouts/{ID}/{action}"
        reply = client.post(path, params={"reason": "looks good & safe", "x": "..%2Fv1.0"}, headers=keys["ops_lead"])
    assert reply.status_code == 200, reply.text
    assert [f[1] for f in invoker.forwarded] == [upstream]


@pytest.mark.parametrize(("method", "path", "upstream"), CHANGES, ids=[p for _, p, _ in CHANGES])
@pytest.mark.parametrize("key", ["viewer", "trainer", "app"])
def test_only_an_admin_starts_approves_rejects_or_aborts(method, path, upstream, key):
    invoker = answering(upstream)
    client, keys = gateway(invoker)
    with client:
        refused = _send(client, method, path, keys[key])
        assert refused.status_code == 403 and "admin" in refused.json()["detail"], refused.text
        assert invoker.forwarded == []
        assert _send(client, method, path, keys["ops_lead"]).status_code == 200
    assert len(invoker.forwarded) == 1


@pytest.mark.parametrize(("method", "path", "upstream"), READS, ids=[p for _, p, _ in READS])
def test_reading_rollouts_takes_a_reader_key_not_a_predict_one(method, path, upstream):
    invoker = answering(upstream)
    client, keys = gateway(invoker)
    with client:
        assert client.get(path, headers=keys["viewer"]).status_code == 200
        assert client.get(path, headers=keys["app"]).status_code == 403
        assert client.get(path).status_code == 401
    assert len(invoker.forwarded) == 1


BAD_IDS = ["IRIS-2", "iris_2", "-iris", "iris.2", "a" * 101, "iris%202", "%C3%A9t%C3%A9", "iris%00"]


@pytest.mark.parametrize("rollout_id", BAD_IDS)
@pytest.mark.parametrize("suffix", ["", "/approve", "/reject", "/abort"])
def test_a_bad_rollout_id_is_refused_naming_it_before_anything_is_forwarded(rollout_id, suffix):
    """The gateway answers a path parameter out of its pattern with a 400 (its door's rule for
    every path: the path names nothing it serves), a query or body one with a 422."""
    invoker = FakeInvoker()
    client, keys = gateway(invoker)
    with client:
        method = "GET" if not suffix else "POST"
        reply = client.request(method, f"/api/models/iris/rollouts/{rollout_id}{suffix}", headers=keys["ops_lead"])
    assert reply.status_code == 400, reply.text
    assert "path rollout_id" in reply.json()["detail"] and "^[a-z0-9][a-z0-9-]{0,99}$" in reply.json()["detail"]
    assert invoker.calls == [] and invoker.forwarded == []


def test_the_longest_id_the_pattern_allows_is_forwarded():
    longest = "a" + "-" * 99
    invoker = answering(f"api/models/iris/rollouts/{longest}")
    client, keys = gateway(invoker)
    with client:
        assert client.get(f"/api/models/iris/rollouts/{longest}", headers=keys["viewer"]).status_code == 200


HOSTILE = [
    ("GET", b"/api/models/iris/rollouts/..%2f..%2f..%2fv1.0%2fmetadata"),
    ("POST", b"/api/models/iris/rollouts/%2e%2e/abort"),
    ("POST", b"/api/models/iris/rollouts/x/../../../../v1.0/shutdown"),
    ("GET", b"/api/models/IRIS/rollouts"),
    ("POST", b"/api/models/iris%2f..%2f..%2fv1.0/rollouts"),
    ("POST", b"/api/models/iris/rollouts/" + ID.encode() + b"/promote"),
    ("DELETE", b"/api/models/iris/rollouts/" + ID.encode()),
]


@pytest.mark.parametrize(("method", "path"), HOSTILE, ids=[p.decode()[:60] for _, p in HOSTILE])
def test_a_hostile_path_is_refused_and_nothing_is_forwarded(method, path):
    invoker = FakeInvoker()
    keys, secrets = provisioned(admin=[Role.ADMIN])
    app = gateway_app(ports=fake_ports(GatewayPorts, secrets=secrets, invoker=invoker))
    status, body = raw_request(app, method, path, headers=[(b"authorization", f"Bearer {keys['admin']}".encode())])
    assert 400 <= status < 500 and "detail" in json.loads(body), (status, body)
    assert invoker.calls == [] and invoker.forwarded == []


def test_a_reason_over_500_characters_is_refused_at_the_door():
    invoker = FakeInvoker()
    client, keys = gateway(invoker)
    with client:
        reply = client.post(f"/api/models/iris/rollouts/{ID}/abort?reason={'x' * 501}", headers=keys["ops_lead"])
    assert reply.status_code == 422 and "reason" in reply.text and invoker.forwarded == []


def test_a_plan_over_the_body_limit_is_413_before_anything_is_forwarded():
    invoker = FakeInvoker()
    client, keys = gateway(invoker)
    limit = client.app.state.settings.max_body_bytes
    with client:
        headers = keys["ops_lead"] | {"content-type": "application/json"}
        reply = client.post("/api/models/iris/rollouts", content=b" " * (limit + 1), headers=headers)
    assert reply.status_code == 413 and invoker.forwarded == [] and invoker.calls == []


def test_the_gateway_describes_the_start_body_as_the_contract_takes_it():
    document = gateway_app(ports=fake_ports(GatewayPorts)).openapi()
    body = document["paths"]["/api/models/{name}/rollouts"]["post"]["requestBody"]
    described = _resolved(body["content"]["application/json"]["schema"], document["components"]["schemas"])
    contract = StartRollout.model_json_schema()
    taken = _resolved({k: v for k, v in contract.items() if k != "$defs"}, contract["$defs"])
    assert body["required"] is True and described == taken
    step = described["properties"]["plan"]["items"]
    assert "for" in step["properties"] and "for_" not in step["properties"]  # the wire's name


def test_every_rollout_operation_is_documented_with_the_statuses_it_can_answer():
    paths = gateway_app(ports=fake_ports(GatewayPorts)).openapi()["paths"]
    operations = {(m.upper(), p) for p, ops in paths.items() if "/rollouts" in p for m in ops}
    assert operations == {
        ("POST", "/api/models/{name}/rollouts"),
        ("GET", "/api/models/{name}/rollouts"),
        ("GET", "/api/models/{name}/rollouts/{rollout_id}"),
        ("POST", "/api/models/{name}/rollouts/{rollout_id}/approve"),
        ("POST", "/api/models/{name}/rollouts/{rollout_id}/reject"),
        ("POST", "/api/models/{name}/rollouts/{rollout_id}/abort"),
    }
    start = paths["/api/models/{name}/rollouts"]["post"]["responses"]
    assert {"201", "403", "409", "413", "422"} <= set(start)
