"""The gateway's side of a model's traffic table: the three routes forwarded to the registry
under the roles they need, and the routing key passed to inference on the predict routes only,
once it is one."""

import pytest
from fastapi.testclient import TestClient

from services.common.contracts.models import MAX_CANARIES, MAX_SHADOWS, ROUTING_KEY_HEADER
from services.common.contracts.monitoring import ACTOR_HEADER
from services.common.ports import Reply
from services.gateway.app import create_app as gateway_app
from services.gateway.keys import Role
from services.gateway.ports import GatewayPorts
from services.registry.app import RegistryPorts
from services.registry.app import create_app as registry_app
from services.registry.settings import Settings as RegistrySettings
from tests.api.conftest import provisioned
from tests.api.test_gateway_actor import TOKEN, ThroughSidecars
from tests.api.test_registry_api import register
from tests.fakes import FakeInvoker, fake_ports

TABLE = {"canary": [{"version": 2, "percent": 25}], "shadows": [{"version": 3, "percent": 10}]}
KEYS = {"ops_lead": [Role.ADMIN], "viewer": [Role.READER], "trainer": [Role.TRAIN], "app": [Role.PREDICT]}


def gateway(invoker) -> tuple[TestClient, dict[str, dict[str, str]]]:
    """The gateway over the invoker, and the headers of a key of each kind, by name."""
    keys, secrets = provisioned(**KEYS)
    client = TestClient(gateway_app(ports=fake_ports(GatewayPorts, secrets=secrets, invoker=invoker)))
    return client, {name: {"authorization": f"Bearer {key}"} for name, key in keys.items()}


# the traffic routes


def test_a_table_set_through_the_gateway_is_recorded_under_the_keys_name_and_read_back():
    ports = fake_ports(RegistryPorts)
    settings = RegistrySettings(app_api_token=TOKEN, gateway_app_id="gateway", outbox_interval_s=3600)
    with TestClient(registry_app(settings, ports), headers={"dapr-api-token": TOKEN}) as registry:
        registry.ports = ports
        for job in ("job-1", "job-2", "job-3"):
            register(registry, job=job)
        client, keys = gateway(ThroughSidecars(registry, "gateway"))
        with client:
            as_admin = keys["ops_lead"] | {ACTOR_HEADER: "mallory"}  # a client's own actor header is not passed on
            client.put("/api/models/iris/aliases/champion", json={"version": 1}, headers=as_admin)
            reply = client.put("/api/models/iris/traffic?reason=canary v2", json=TABLE, headers=as_admin)
            assert reply.status_code == 200, reply.text
            assert (reply.json()["changed_by"], reply.json()["champion_percent"]) == ("ops_lead", 75)
            model = client.get("/api/models/iris", headers=keys["viewer"]).json()
            shown = client.get("/api/models/iris/traffic", headers=keys["viewer"]).json()
            (entry,) = client.get("/api/models/iris/history?limit=1", headers=keys["viewer"]).json()["entries"]
            refused = client.put("/api/models/iris/traffic", json={"canary": [{"version": 1, "percent": 5}]},
                                 headers=keys["ops_lead"])  # fmt: skip
            cleared = client.delete("/api/models/iris/traffic?reason=done", headers=keys["ops_lead"])
    assert model["traffic"] == shown["traffic"] == reply.json()["traffic"]
    assert shown["traffic"]["canary"] == [{"version": 2, "percent": 25.0}]
    assert (entry["actor"], entry["action"], entry["reason"]) == ("ops_lead", "traffic.changed", "canary v2")
    assert refused.status_code == 422 and "champion" in refused.json()["detail"]  # the registry's words, as they are
    assert cleared.status_code == 200 and cleared.json()["traffic"] == {"canary": [], "shadows": []}


@pytest.mark.parametrize(
    ("method", "key", "status"),
    [
        ("GET", "viewer", 200),
        ("GET", "ops_lead", 200),
        ("PUT", "ops_lead", 200),
        ("DELETE", "ops_lead", 200),
        ("PUT", "viewer", 403),
        ("PUT", "trainer", 403),
        ("DELETE", "viewer", 403),
        ("GET", "app", 403),
    ],
)
def test_reading_the_table_takes_a_reader_and_changing_it_an_admin(method, key, status):
    invoker = FakeInvoker({("registry", "api/models/iris/traffic"): Reply(200, b"{}")})
    client, keys = gateway(invoker)
    with client:
        reply = client.request(
            method, "/api/models/iris/traffic", headers=keys[key], json=TABLE if method == "PUT" else None
        )
    assert reply.status_code == status, reply.text
    assert len(invoker.forwarded) == (1 if status == 200 else 0)


def test_the_table_goes_to_the_registry_as_sent_with_the_reason_and_nothing_else():
    invoker = FakeInvoker({("registry", "api/models/iris/traffic?reason=v2+on+a+quarter"): Reply(200, b"{}")})
    client, keys = gateway(invoker)
    with client:
        body = b'{"canary": [{"version": 2, "percent": 25}]}'
        headers = keys["ops_lead"] | {"content-type": "application/json", "x-other": "1", ROUTING_KEY_HEADER: "u1"}
        reply = client.put("/api/models/iris/traffic?reason=v2 on a quarter&x=1", content=body, headers=headers)
    assert reply.status_code == 200, reply.text
    ((app_id, method, verb, sent, received),) = invoker.forwarded
    assert (app_id, method, verb, received) == (
        "registry",
        "api/models/iris/traffic?reason=v2+on+a+quarter",
        "PUT",
        body,
    )
    assert set(sent) <= {"content-type", "content-length", "accept", ACTOR_HEADER}


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/models/IRIS/traffic"), ("PUT", "/api/models/iris/traffic?reason=" + "x" * 501)],
)
def test_a_bad_name_or_reason_is_refused_at_the_door(method, path):
    invoker = FakeInvoker()
    client, keys = gateway(invoker)
    with client:
        reply = client.request(method, path, headers=keys["ops_lead"], json=TABLE)
    assert reply.status_code in (400, 422) and invoker.forwarded == []


def _resolved(schema: dict, components: dict) -> dict:
    """A JSON schema with its $refs replaced by what they name, and without titles and descriptions."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            return _resolved(components[schema["$ref"].rsplit("/", 1)[1]], components)
        return {k: _resolved(v, components) for k, v in schema.items() if k not in ("title", "description", "default")}
    if isinstance(schema, list):
        return [_resolved(v, components) for v in schema]
    return schema


def test_the_gateway_describes_the_table_as_the_registry_takes_it():
    def body(app) -> dict:
        document = app.openapi()
        schema = document["paths"]["/api/models/{name}/traffic"]["put"]["requestBody"]["content"]["application/json"]
        return _resolved(schema["schema"], document.get("components", {}).get("schemas", {}))

    described = body(gateway_app(ports=fake_ports(GatewayPorts)))
    taken = body(registry_app(ports=fake_ports(RegistryPorts)))
    assert described == taken
    assert described["properties"]["canary"]["maxItems"] == MAX_CANARIES
    assert described["properties"]["shadows"]["maxItems"] == MAX_SHADOWS


# the routing key


PREDICT = ("/api/models/iris/predict", "api/models/iris/predict", {"records": [{"x": 1}]})
INFER = ("/v2/models/iris/infer", "v2/models/iris/infer", {"inputs": []})


def predicting() -> tuple[TestClient, dict[str, str], FakeInvoker]:
    answer = Reply(200, b'{"model_version": "2"}')
    invoker = FakeInvoker({("inference", PREDICT[1]): answer, ("inference", INFER[1]): answer,
                           ("inference", "v2/models/iris/versions/1/infer"): answer})  # fmt: skip
    client, keys = gateway(invoker)
    return client, keys["app"], invoker


@pytest.mark.parametrize(("path", "method", "body"), [PREDICT, INFER], ids=["predict", "oip"])
@pytest.mark.parametrize("key", ["user-42", "a" * 200, "~ !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}"])
def test_a_routing_key_goes_to_inference_on_the_predict_routes(path, method, body, key):
    client, headers, invoker = predicting()
    with client:
        reply = client.post(path, json=body, headers=headers | {ROUTING_KEY_HEADER: key, "x-other": "no"})
    assert reply.status_code == 200, reply.text
    ((_, forwarded, _, sent, _),) = invoker.forwarded
    assert forwarded == method and sent[ROUTING_KEY_HEADER] == key
    assert set(sent) == {"content-type", "content-length", "accept", ACTOR_HEADER, ROUTING_KEY_HEADER}


def test_without_a_routing_key_none_is_sent_and_a_version_route_takes_none():
    client, headers, invoker = predicting()
    with client:
        assert client.post(PREDICT[0], json=PREDICT[2], headers=headers).status_code == 200
        named = headers | {ROUTING_KEY_HEADER: "user-42"}
        assert client.post("/v2/models/iris/versions/1/infer", json={"inputs": []}, headers=named).status_code == 200
    assert [ROUTING_KEY_HEADER in sent for _, _, _, sent, _ in invoker.forwarded] == [False, False]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (b"a" * 201, "1 to 200 printable ASCII characters (it has 201 characters)"),
        ("caf\u00e9".encode("latin-1"), "some not ASCII"),
        (b"tab\there", "printable ASCII"),
        (b"\x7f", "printable ASCII"),
    ],
    ids=["too-long", "not-ascii", "control", "delete"],
)
@pytest.mark.parametrize(("path", "method", "body"), [PREDICT, INFER], ids=["predict", "oip"])
def test_a_bad_routing_key_is_a_422_naming_the_header_and_nothing_is_forwarded(path, method, body, value, says):
    client, headers, invoker = predicting()
    with client:
        reply = client.post(path, json=body, headers=[*headers.items(), (ROUTING_KEY_HEADER, value)])
    assert reply.status_code == 422, reply.text
    words = reply.json()["error" if path.startswith("/v2") else "detail"]  # each route's error shape
    assert ROUTING_KEY_HEADER in words and says in words
    assert invoker.forwarded == []


def test_a_routing_key_sent_twice_is_refused():
    client, headers, invoker = predicting()
    with client:
        twice = [*headers.items(), (ROUTING_KEY_HEADER, "a"), (ROUTING_KEY_HEADER, "b")]
        reply = client.post(PREDICT[0], json=PREDICT[2], headers=twice)
    assert reply.status_code == 422 and "sent 2 times" in reply.json()["detail"] and invoker.forwarded == []


def test_the_routing_key_is_in_the_public_document_of_both_predict_routes():
    document = gateway_app(ports=fake_ports(GatewayPorts)).openapi()
    for path in ("/api/models/{name}/predict", "/v2/models/{name}/infer"):
        (header,) = [p for p in document["paths"][path]["post"]["parameters"] if p["in"] == "header"]
        assert header["name"] == ROUTING_KEY_HEADER and header["required"] is False
        assert "sticky" in header["description"]
