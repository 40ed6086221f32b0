"""The gateway forwards only named operations, built from validated parts of the path."""

import asyncio
import json

import pytest

from services.common.ports import Reply
from services.gateway.app import create_app
from services.gateway.keys import Role
from services.gateway.ports import GatewayPorts
from services.inference.app import InferencePorts
from services.inference.app import create_app as inference_app
from services.ingestion.app import create_app as ingestion_app
from services.monitor.app import MonitorPorts
from services.monitor.app import create_app as monitor_app
from tests.api.conftest import provisioned
from tests.fakes import FakeInvoker, fake_ports

SECRETS = "/v1.0/secrets/secretstore/gateway"


def raw_request(app, method: str, raw_path: bytes, body: bytes = b"", headers=()) -> tuple[int, bytes]:
    """Sends one request to the ASGI app the way uvicorn hands it over: `path` percent-decoded,
    `raw_path` as received. (An HTTP client would tidy '..' and '%2e' away before sending.)"""
    from urllib.parse import unquote_to_bytes

    path, _, query = raw_path.partition(b"?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote_to_bytes(path).decode("latin-1"),
        "raw_path": path,
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"gw"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
    }
    sent, answer = [{"type": "http.request", "body": body, "more_body": False}], {"status": 0, "body": b""}

    async def receive():
        return sent.pop(0) if sent else {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    asyncio.run(app(scope, receive, send))
    return answer["status"], answer["body"]


def gateway(**ports):
    """The gateway app over fakes, and the headers of an admin key it knows."""
    keys, secrets = provisioned(admin=[Role.ADMIN])
    app = create_app(ports=fake_ports(GatewayPorts, secrets=secrets, **ports))
    return app, [(b"authorization", f"Bearer {keys['admin']}".encode())]


def assert_refused_without_forwarding(method: str, path: bytes) -> None:
    """The gateway answers a 4xx with a message and sends nothing to any service."""
    invoker = FakeInvoker()
    app, admin = gateway(invoker=invoker)  # with a key that may do anything: refused for its path
    status, body = raw_request(app, method, path, headers=admin)
    assert status in (400, 404, 405), body
    assert "detail" in json.loads(body)
    assert invoker.calls == [] and invoker.forwarded == []


HOSTILE = [
    ("GET", b"/api/datasets/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e" + SECRETS.encode()),
    ("GET", b"/api/datasets/../../../../.." + SECRETS.encode()),
    ("GET", b"/api/datasets/iris/versions/1/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/v1.0/metadata"),
    ("POST", b"/api/datasets/%2e%2e%2f%2e%2e%2f%2e%2e%2fv1.0%2fshutdown"),
    ("POST", b"/api/datasets/iris%2f..%2f..%2f..%2fv1.0%2fpublish%2fpubsub%2fdataset-versions/versions"),
    ("DELETE", b"/api/datasets/iris/uploads/..%2f..%2f..%2fv1.0%2fbindings%2fblobstore"),
    ("GET", b"/api/datasets/iris%00"),
    ("GET", b"/api/datasets/iris/versions/latest/rows/../../../../internal/roundtrip/x"),
    ("GET", b"/api/datasets/IRIS"),
    ("GET", b"/api/datasets/iris/versions/-1"),
    ("GET", b"/api/datasets/iris/nothing-here"),
    ("PUT", b"/api/datasets/iris/uploads/" + b"a" * 32 + b"/parts/0"),
]


@pytest.mark.parametrize(("method", "path"), HOSTILE, ids=[p.decode()[:60] for _, p in HOSTILE])
def test_a_hostile_path_is_refused_and_nothing_is_forwarded(method, path):
    assert_refused_without_forwarding(method, path)


def test_a_nul_in_a_dataset_name_is_400_with_a_message():
    app, admin = gateway()
    status, body = raw_request(app, "GET", b"/api/datasets/ir%00is/versions/1", headers=admin)
    assert status == 400 and "name" in json.loads(body)["detail"]


def test_only_the_declared_query_parameters_are_forwarded_and_re_encoded():
    invoker = FakeInvoker(
        {("ingestion", "api/datasets/iris/versions?target=species&task=classification"): Reply(201, b"{}")}
    )
    app, admin = gateway(invoker=invoker)
    status, _ = raw_request(
        app,
        "POST",
        b"/api/datasets/iris/versions?target=species&task=classification&x=..%2F..%2Fv1.0%2Fshutdown",
        b"a,species\n1,x\n",
        headers=admin,
    )
    assert status == 201
    assert [c[1] for c in invoker.calls] == ["api/datasets/iris/versions?target=species&task=classification"]


def _operations(app, prefix: str) -> set[tuple[str, str]]:
    """(method, path template) of every route under the prefix, as the app's OpenAPI lists them.
    (Walking app.routes finds nothing: FastAPI nests included routers there.)"""
    paths = app.openapi()["paths"]
    return {(method.upper(), path) for path, ops in paths.items() if path.startswith(prefix) for method in ops}


def test_gateway_routes_name_exactly_the_operations_ingestion_serves():
    gateway = create_app(ports=fake_ports(GatewayPorts))
    from services.ingestion.app import IngestionPorts

    ingestion = ingestion_app(ports=fake_ports(IngestionPorts))
    assert len(_operations(ingestion, "/api/datasets")) == 12
    assert _operations(gateway, "/api/datasets") == _operations(ingestion, "/api/datasets")


def test_gateway_routes_name_exactly_the_operations_training_serves():
    from services.training.app import create_app as training_app
    from services.training.ports import TrainingPorts

    gateway = create_app(ports=fake_ports(GatewayPorts))
    training = training_app(ports=fake_ports(TrainingPorts))
    assert len(_operations(training, "/api/training")) == 7
    assert _operations(gateway, "/api/training") == _operations(training, "/api/training")


def test_gateway_routes_name_exactly_the_public_operations_the_registry_serves():
    from services.registry.app import RegistryPorts
    from services.registry.app import create_app as registry_app

    gateway = create_app(ports=fake_ports(GatewayPorts))
    registry = registry_app(ports=fake_ports(RegistryPorts))
    predict = _operations(inference_app(ports=fake_ports(InferencePorts)), "/api/models")
    assert predict == {("POST", "/api/models/{name}/predict")}  # inference's, beside the registry's
    captured = _operations(monitor_app(ports=fake_ports(MonitorPorts)), "/api/models")  # the monitor's
    assert _operations(gateway, "/api/models") == _operations(registry, "/api/models") | predict | captured
    assert _operations(registry, "/internal/models")  # registration and promotion, for training only
    assert _operations(gateway, "/internal") == set()


def test_gateway_routes_name_exactly_the_public_operations_the_monitor_serves():
    gateway = create_app(ports=fake_ports(GatewayPorts))
    monitor = _operations(monitor_app(ports=fake_ports(MonitorPorts)), "/api/models")
    assert {
        ("GET", "/api/models/{name}/predictions"),
        ("POST", "/api/models/{name}/feedback"),
        ("GET", "/api/models/{name}/monitoring/live"),
        ("GET", "/api/models/{name}/monitoring"),
        ("PUT", "/api/models/{name}/monitoring"),
        ("DELETE", "/api/models/{name}/monitoring"),
        ("POST", "/api/models/{name}/monitoring/check"),
    } <= monitor
    assert monitor <= _operations(gateway, "/api/models")
    # Its one internal route is the registry's (a rollout's evidence), never forwarded.
    assert _operations(monitor_app(ports=fake_ports(MonitorPorts)), "/internal") == {
        ("GET", "/internal/models/{name}/evidence")
    }


def test_a_read_of_predictions_reaches_the_monitor_with_its_query_re_encoded(make_client):
    page = Reply(200, b'{"model": "iris", "predictions": []}')
    method = "api/models/iris/predictions?since=2025-01-31T12%3A00%3A00%2B00%3A00&limit=5"
    client = make_client("gateway", invoker=FakeInvoker({("monitor", method): page}))
    reply = client.get("/api/models/iris/predictions?since=2025-01-31T12:00:00Z&limit=5&x=1")
    assert reply.status_code == 200 and reply.json()["predictions"] == []
    assert [c[1] for c in client.ports.invoker.calls] == [method]
    refused = client.get("/api/models/iris/predictions?since=yesterday")
    assert refused.status_code == 422 and "since" in refused.json()["detail"]
    assert client.get("/api/models/iris/predictions?since=0.5").status_code == 422  # a number is no time
    assert client.get("/api/models/iris/predictions?limit=1001").status_code == 422
    assert len(client.ports.invoker.calls) == 1


def test_gateway_routes_name_exactly_the_public_operations_inference_serves():
    gateway = create_app(ports=fake_ports(GatewayPorts))
    inference = inference_app(ports=fake_ports(InferencePorts))
    assert len(_operations(inference, "/v2")) == 9
    assert _operations(gateway, "/v2") == _operations(inference, "/v2")
    assert ("POST", "/api/models/{name}/predict") in _operations(gateway, "/api/models")


def test_oip_and_predict_requests_reach_inference_at_the_same_paths(make_client):
    answer = Reply(200, b'{"model_name": "iris"}')
    invoker = FakeInvoker(
        {
            ("inference", "v2/models/iris/versions/champion/infer"): answer,
            ("inference", "api/models/iris/predict"): answer,
            ("inference", "v2/health/ready"): answer,
        }
    )
    client = make_client("gateway", invoker=invoker)
    assert client.post("/v2/models/iris/versions/champion/infer", json={"inputs": []}).status_code == 200
    assert client.post("/api/models/iris/predict", json={"records": []}).status_code == 200
    assert client.get("/v2/health/ready").status_code == 200
    assert [(c[1], c[2]) for c in invoker.calls] == [
        ("v2/models/iris/versions/champion/infer", "POST"),
        ("api/models/iris/predict", "POST"),
        ("v2/health/ready", "GET"),
    ]
    assert client.get("/v2/models/IRIS..x/ready").status_code == 400 and len(invoker.calls) == 3


def test_a_body_over_the_limit_is_413_before_anything_is_forwarded(make_client):
    client = make_client("gateway")
    limit = client.app.state.settings.max_body_bytes
    reply = client.post("/api/datasets/iris/versions", content=b"x" * (limit + 1), headers={"content-type": "text/csv"})
    assert reply.status_code == 413 and "multi-part upload" in reply.json()["detail"]
    assert client.ports.invoker.forwarded == [] and client.ports.invoker.calls == []


def test_a_chunked_body_over_the_limit_is_413(make_client):
    client = make_client("gateway")
    limit = client.app.state.settings.max_body_bytes

    def chunks():
        for _ in range(limit // (1 << 20) + 2):
            yield b"x" * (1 << 20)

    reply = client.post("/api/datasets/iris/versions", content=chunks(), headers={"content-type": "text/csv"})
    assert reply.status_code == 413


def test_a_sidecar_error_for_a_down_app_becomes_a_503_that_says_so(make_client):
    down = Reply(
        500,
        b'{"errorCode":"ERR_DIRECT_INVOKE","message":"failed to invoke, id: ingestion, err: '
        b'dial tcp 127.0.0.1:8001: connect: connection refused"}',
    )
    client = make_client("gateway", invoker=FakeInvoker({("ingestion", "api/datasets/iris"): down}))
    reply = client.get("/api/datasets/iris")
    assert reply.status_code == 503 and reply.headers["retry-after"] == "5"
    assert "ingestion service is not answering" in reply.json()["detail"]
    assert "127.0.0.1" not in reply.text and "ERR_" not in reply.text


def test_an_apps_own_500_comes_back_unchanged(make_client):
    failed = Reply(500, b'{"detail": "ingestion failed to handle this request; its log has the details"}')
    client = make_client("gateway", invoker=FakeInvoker({("ingestion", "api/datasets/iris"): failed}))
    reply = client.get("/api/datasets/iris")
    assert reply.status_code == 500 and reply.json()["detail"].startswith("ingestion failed")


def test_a_job_is_canceled_through_training_with_delete(make_client):
    job = "iris-v1-ridge-0123456789ab-a2"
    canceled = Reply(200, json.dumps({"id": job, "status": "CANCELED"}).encode())
    client = make_client("gateway", invoker=FakeInvoker({("training", f"api/training/jobs/{job}"): canceled}))
    reply = client.delete(f"/api/training/jobs/{job}")
    assert (reply.status_code, reply.json()["status"]) == (200, "CANCELED")
    assert [(f[0], f[1], f[2]) for f in client.ports.invoker.forwarded] == [
        ("training", f"api/training/jobs/{job}", "DELETE")
    ]


def test_a_job_status_filter_training_does_not_know_is_422_at_the_gateway(make_client):
    listed = Reply(200, b'{"jobs": [], "total": 0, "offset": 0, "limit": 100}')
    client = make_client("gateway", invoker=FakeInvoker({("training", "api/training/jobs?status=canceled"): listed}))
    refused = client.get("/api/training/jobs?status=stuck")
    assert refused.status_code == 422 and "canceled" in refused.text
    assert client.ports.invoker.calls == []
    assert client.get("/api/training/jobs?status=canceled").status_code == 200


RULES = (
    "type",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "enum",
)


def _rules(schema: dict, components: dict) -> dict:
    """What a parameter's schema allows, whatever its default (the gateway leaves a missing
    query parameter out, the service fills in its default); an enum as the pattern it equals."""
    options = [o for o in schema.get("anyOf", [schema]) if o.get("type") != "null"]
    options = [components[o["$ref"].rsplit("/", 1)[1]] if "$ref" in o else o for o in options]
    rules = {k: v for option in options for k, v in option.items() if k in RULES}
    if "enum" in rules:
        rules["pattern"] = f"^({'|'.join(rules.pop('enum'))})$"
    return rules


def _parameters(app, path: str, method: str) -> dict[tuple[str, str], dict]:
    document = app.openapi()
    components = document.get("components", {}).get("schemas", {})
    return {
        (p["in"], p["name"]): _rules(p["schema"], components)
        for p in document["paths"][path][method].get("parameters", [])
        if p["in"] in ("path", "query")
    }


# The registry checks an alias's shape (services.common.contracts.ALIAS_NAME, the gateway's
# pattern) in its domain, to answer with words saying what an alias may be and that a number
# alone is not one: its route declares a length bound only.
CHECKED_BY_THE_REGISTRY = {
    ("get", "/api/models/{name}/versions/{version}"),
    ("get", "/api/models/{name}/versions/{version}/artifact"),
    ("get", "/api/models/{name}/versions/{version}/onnx"),
    ("put", "/api/models/{name}/aliases/{alias}"),
    ("delete", "/api/models/{name}/aliases/{alias}"),
}


def test_the_gateway_validates_each_parameter_as_the_service_behind_it_does():
    """What the gateway lets through, the service takes, and what the service refuses the
    gateway refuses first: the same pattern, bounds and type for every path and query parameter."""
    from services.ingestion.app import IngestionPorts
    from services.registry.app import RegistryPorts
    from services.registry.app import create_app as registry_app
    from services.training.app import TrainingPorts
    from services.training.app import create_app as training_app

    gateway = create_app(ports=fake_ports(GatewayPorts))
    services = [
        training_app(ports=fake_ports(TrainingPorts)),
        ingestion_app(ports=fake_ports(IngestionPorts)),
        registry_app(ports=fake_ports(RegistryPorts)),
        inference_app(ports=fake_ports(InferencePorts)),
        monitor_app(ports=fake_ports(MonitorPorts)),
    ]
    compared, differ = 0, []
    for path, operations in gateway.openapi()["paths"].items():
        for method in operations:
            owner = next((s for s in services if method in s.openapi()["paths"].get(path, {})), None)
            if owner is None:
                continue
            if (method, path) in CHECKED_BY_THE_REGISTRY:
                continue
            if _parameters(gateway, path, method) != _parameters(owner, path, method):
                differ.append((method, path, _parameters(gateway, path, method), _parameters(owner, path, method)))
            compared += 1
    assert differ == []
    assert compared >= 25
