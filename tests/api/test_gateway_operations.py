"""The operations endpoints: fixed PromQL over the stack's own app ids, bounded parameters, and a
backend that is missing or down answered with `available: false`, never an error. Prometheus
and the trace backend are fakes of the operations package's own ports (operations_fakes.py);
the Prometheus adapter is checked against httpx's MockTransport and a closed port (the trace
backend's: test_gateway_operations_traces.py)."""

import asyncio
import math
import re
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from scripts.proc import free_port
from services.gateway.app import create_app
from services.gateway.keys import Role
from services.gateway.operations.backends import BackendUnavailable, Series
from services.gateway.operations.http_backends import PrometheusHttp
from services.gateway.ports import GatewayPorts
from services.gateway.settings import Settings
from tests.api.conftest import provisioned
from tests.api.operations_fakes import APP_IDS, NOW, FakeJaeger, FakePrometheus, gateway
from tests.fakes import fake_ports


def app_id_patterns(query: str) -> list[str]:
    """The regexes of every app_id matcher in a query, as Prometheus reads the string literal."""
    literals = re.findall(r'app_id=~"((?:[^"\\]|\\.)*)"', query)
    return [re.sub(r"\\(.)", r"\1", literal) for literal in literals]


def per_app(values: dict[str, float]):
    """A series per app id, with a value at the last five grid times (and NaN at one)."""

    def series(times):
        return [
            Series({"app_id": a}, [(t, v) for t in times[-5:-1]] + [(times[-1], float("nan"))])
            for a, v in values.items()
        ]

    return series


def http_answer(query: str, times: list[float]) -> list[Series]:
    gateway_id, inference_id = APP_IDS["app_id"], APP_IDS["inference_app_id"]
    if "daprml_inference" in query:
        return []
    if query.startswith("histogram_quantile(0.5,"):
        return per_app({gateway_id: 0.004, inference_id: 0.002})(times)
    if query.startswith("histogram_quantile(0.99,"):
        return per_app({gateway_id: 0.09, inference_id: 0.02})(times)
    if query.startswith("("):  # the error share
        return per_app({gateway_id: 0.0, inference_id: 0.25})(times)
    return per_app({gateway_id: 2.0, inference_id: 1.5})(times)


def test_services_have_each_signal_as_series_on_the_grid_and_current_values():
    prometheus = FakePrometheus(http_answer)
    client, _, _ = gateway(prometheus)
    reply = client.get("/api/operations/services")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["available"] is True and body["window"] == "1h" and body["step_s"] == 60
    times = body["times"]
    assert len(times) == 61 and times[-1] == 1_800_000_000 and times[1] - times[0] == 60
    services = [s["service"] for s in body["services"]]
    assert services == ["gateway", "ingestion", "training", "registry", "inference", "monitor"]
    gateway_row, inference_row = body["services"][0], body["services"][services.index("inference")]
    assert gateway_row["app_id"] == "gateway-1a2b"
    # The last point is NaN (no traffic in its step): null, and the current value is the one before.
    assert gateway_row["series"]["rate"][-6:] == [None, 2.0, 2.0, 2.0, 2.0, None]
    assert gateway_row["current"] == {"rate": 2.0, "p50_s": 0.004, "p99_s": 0.09, "error_share": 0.0}
    assert inference_row["current"] == {"rate": 1.5, "p50_s": 0.002, "p99_s": 0.02, "error_share": 0.25}
    assert body["services"][1]["current"]["rate"] is None  # ingestion: nothing in Prometheus
    assert all(v is None for v in body["services"][1]["series"]["p99_s"])
    # One range query per signal, over the grid, each kept to this stack's apps (not their sidecars').
    assert len(prometheus.ranges) == 4
    assert {(start, end, step) for _, start, end, step in prometheus.ranges} == {(times[0], times[-1], 60)}
    for query, *_ in prometheus.ranges:
        assert 'kind="app"' in query and 'route!~"/healthz|/readyz"' in query and "[60s]" in query


def test_every_query_names_only_the_app_ids_of_the_gateways_settings():
    prometheus = FakePrometheus(http_answer)
    client, _, config = gateway(prometheus)
    for path in ("services", "models", "replicas"):
        assert (
            client.get(
                f"/api/operations/{path}?window=15m" if path != "replicas" else "/api/operations/replicas"
            ).status_code
            == 200
        )
    queries = [q for q, *_ in prometheus.ranges] + prometheus.instants
    assert len(queries) == 9
    known = set(config.app_ids().values())
    others = {"gateway", "inference-1a2b", "inference", "inference-ffff", "registry-1a2b", ".*", ""}
    for query in queries:
        patterns = app_id_patterns(query)
        assert len(patterns) >= 1, query
        for pattern in patterns:
            matched = {a for a in known | others if re.fullmatch(pattern, a)}
            assert matched and matched <= known, (query, matched)
    model_queries = [q for q, *_ in prometheus.ranges if "daprml_inference" in q]
    assert len(model_queries) == 4
    for query in model_queries:
        assert {a for p in app_id_patterns(query) for a in known | others if re.fullmatch(p, a)} == {
            APP_IDS["inference_app_id"]
        }


def test_models_are_listed_per_version_the_busiest_first_with_failed_as_errors():
    def answer(query, times):
        if "daprml_inference" not in query:
            return []
        rows = {("iris", "1"): 0.5, ("iris", "2"): 3.0, ("houses", "4"): 1.0}
        if query.startswith("("):
            rows = {("iris", "1"): 0.0, ("iris", "2"): 0.1, ("houses", "4"): 0.0}
        elif query.startswith("histogram_quantile(0.99,"):
            rows = {k: 0.01 for k in rows}
        elif query.startswith("histogram_quantile(0.5,"):
            rows = {k: 0.001 for k in rows}
        return [Series({"model": m, "version": v}, [(times[-1], x)]) for (m, v), x in rows.items()]

    prometheus = FakePrometheus(answer)
    client, _, _ = gateway(prometheus)
    body = client.get("/api/operations/models", params={"window": "6h"}).json()
    assert body["available"] is True and body["step_s"] == 360 and len(body["times"]) == 61
    assert [(m["model"], m["version"], m["current"]["rate"]) for m in body["models"]] == [
        ("iris", "2", 3.0),
        ("houses", "4", 1.0),
        ("iris", "1", 0.5),
    ]
    assert body["models"][0]["current"] == {"rate": 3.0, "p50_s": 0.001, "p99_s": 0.01, "error_share": 0.1}
    errors = next(q for q, *_ in prometheus.ranges if q.startswith("("))
    assert 'outcome="failed"' in errors and "by (model, version)" in errors and "[360s]" in errors


HOSTILE = [
    "/api/operations/services?window=1d",
    '/api/operations/services?window=1h"}) or vector(1',
    "/api/operations/models?window=up",
    "/api/operations/traces?limit=0",
    "/api/operations/traces?limit=51",
    "/api/operations/traces?limit=10;drop",
    "/api/operations/traces?window=1h&limit=1e9",
]


@pytest.mark.parametrize("path", HOSTILE)
def test_a_parameter_outside_its_enum_or_bounds_is_422_and_nothing_is_asked(path):
    prometheus, jaeger = FakePrometheus(http_answer), FakeJaeger([])
    client, _, _ = gateway(prometheus, jaeger)
    reply = client.get(path)
    assert reply.status_code == 422, reply.text
    assert "invalid request" in reply.json()["detail"]
    assert prometheus.ranges == [] and prometheus.instants == [] and jaeger.searches == []


def test_a_query_parameter_never_reaches_a_query():
    prometheus = FakePrometheus(http_answer)
    client, _, _ = gateway(prometheus)
    assert client.get("/api/operations/services?window=15m&query=up&app_id=evil-stack").status_code == 200
    assert all("evil" not in q and "query" not in q for q, *_ in prometheus.ranges)


def test_readers_and_up_may_read_the_operations_and_others_may_not():
    client, keys, _ = gateway(FakePrometheus(http_answer), FakeJaeger([]))
    paths = ["services", "models", "traces", "replicas"]
    for key, status in ((keys["reader"], 200), (keys["admin"], 200), (keys["predict"], 403)):
        for path in paths:
            reply = client.get(f"/api/operations/{path}", headers={"authorization": f"Bearer {key}"})
            assert reply.status_code == status, (path, reply.text)
    client.headers.pop("authorization")
    assert client.get("/api/operations/services").status_code == 401


def test_without_prometheus_every_answer_says_so_and_is_not_an_error():
    client, _, _ = gateway(None, None, traces_url="")
    for path in ("services", "models"):
        body = client.get(f"/api/operations/{path}").json()
        assert body["available"] is False and "DAPRML_PROMETHEUS_URL" in body["reason"]
        assert "make up starts it" in body["reason"]
    traces = client.get("/api/operations/traces").json()
    assert traces["available"] is False and "DAPRML_TRACES_URL" in traces["reason"] and traces["ui_url"] is None
    replicas = client.get("/api/operations/replicas").json()
    assert replicas["metrics"]["available"] is False and replicas["ok"] is True
    assert [s["service"] for s in replicas["services"]][:2] == ["ingestion", "training"]
    assert all(s["targets"] == [] and s["reachable"] for s in replicas["services"])


def test_a_backend_that_is_down_is_reported_with_its_reason():
    down = "Prometheus is not answering at http://127.0.0.1:9090 (ConnectError): make up starts it"
    client, _, _ = gateway(FakePrometheus(down=down), FakeJaeger([], down="The trace backend is not answering"))
    services = client.get("/api/operations/services")
    assert services.status_code == 200 and services.json()["available"] is False
    assert services.json()["reason"] == down and services.json()["services"] == []
    assert client.get("/api/operations/models").json()["reason"] == down
    traces = client.get("/api/operations/traces").json()
    assert traces["available"] is False and "not answering" in traces["reason"]
    replicas = client.get("/api/operations/replicas").json()
    assert replicas["metrics"] == {"available": False, "reason": down} and len(replicas["services"]) == 7


def test_replicas_show_the_status_services_view_beside_prometheus_targets():
    def answer(query, times):
        assert query.startswith("up{")
        return [
            Series({"app_id": "gateway-1a2b", "kind": "daprd", "instance": "127.0.0.1:3570"}, [(NOW, 1.0)]),
            Series({"app_id": "gateway-1a2b", "kind": "app", "instance": "127.0.0.1:8100"}, [(NOW, 1.0)]),
            Series({"app_id": "training-1a2b", "kind": "app", "instance": "127.0.0.1:8102"}, [(NOW, 0.0)]),
        ]

    client, _, _ = gateway(FakePrometheus(answer))
    body = client.get("/api/operations/replicas").json()
    assert body["ok"] is True and body["metrics"]["available"] is True
    by = {s["service"]: s for s in body["services"]}
    assert [(t["kind"], t["up"]) for t in by["gateway"]["targets"]] == [("app", True), ("daprd", True)]
    assert by["training"]["targets"] == [{"kind": "app", "instance": "127.0.0.1:8102", "up": False}]
    assert by["inference"]["targets"] == [] and by["inference"]["reachable"] is True


def test_the_operations_routes_are_documented_with_their_models_for_readers():
    client, _, _ = gateway()
    paths = client.get("/openapi.json").json()["paths"]
    expected = {
        "/api/operations/services": "ServicesReport",
        "/api/operations/models": "ModelsReport",
        "/api/operations/traces": "TracesReport",
        "/api/operations/traces/{trace_id}": "TraceReport",
        "/api/operations/replicas": "ReplicasReport",
    }
    for path, model in expected.items():
        operation = paths[path]["get"]
        assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(model)
        assert operation["security"] and "operations" in operation["tags"]
    window = next(p for p in paths["/api/operations/services"]["get"]["parameters"] if p["name"] == "window")
    assert window["in"] == "query"


# The HTTP adapters.


def prometheus_reply(result_type: str, result: list) -> dict:
    return {"status": "success", "data": {"resultType": result_type, "result": result}}


def test_the_prometheus_adapter_posts_the_query_and_reads_matrices_and_vectors():
    sent = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append((request.url.path, dict(httpx.QueryParams(request.content.decode()))))
        if request.url.path == "/api/v1/query_range":
            matrix = [{"metric": {"app_id": "a"}, "values": [[100, "1.5"], [160, "NaN"], [220, "+Inf"]]}]
            return httpx.Response(200, json=prometheus_reply("matrix", matrix))
        return httpx.Response(200, json=prometheus_reply("vector", [{"metric": {"kind": "app"}, "value": [100, "1"]}]))

    prometheus = PrometheusHttp("http://prometheus.test/", 2.0, transport=httpx.MockTransport(handler))
    series = asyncio.run(prometheus.range('up{app_id=~"a"}', 100, 220, 60))
    assert series[0].labels == {"app_id": "a"} and series[0].points[0] == (100.0, 1.5)
    assert math.isnan(series[0].points[1][1]) and math.isinf(series[0].points[2][1])
    assert asyncio.run(prometheus.instant("up")) == [Series({"kind": "app"}, [(100.0, 1.0)])]
    assert sent[0] == ("/api/v1/query_range", {"query": 'up{app_id=~"a"}', "start": "100", "end": "220", "step": "60"})


def test_the_prometheus_adapter_turns_refusals_and_hangs_into_unavailable_within_its_timeout():
    refused = httpx.MockTransport(
        lambda request: httpx.Response(400, json={"status": "error", "error": "parse error at char 3"})
    )
    with pytest.raises(BackendUnavailable, match="HTTP 400: parse error"):
        asyncio.run(PrometheusHttp("http://p.test", 2.0, transport=refused).instant("up"))

    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return httpx.Response(200)

    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="did not answer within 0.3 s"):
        asyncio.run(PrometheusHttp("http://p.test", 0.3, transport=httpx.MockTransport(hang)).instant("up"))
    assert time.monotonic() - started < 2


def test_a_prometheus_url_nobody_listens_on_makes_a_200_that_says_it_is_not_answering():
    url = f"http://127.0.0.1:{free_port()}"
    keys, secrets = provisioned(reader=[Role.READER])
    app = create_app(settings=Settings(prometheus_url=url), ports=fake_ports(GatewayPorts, secrets=secrets))
    client = TestClient(app)
    started = time.monotonic()
    reply = client.get("/api/operations/services", headers={"authorization": f"Bearer {keys['reader']}"})
    assert time.monotonic() - started < 4
    assert reply.status_code == 200 and reply.json()["available"] is False
    assert f"Prometheus is not answering at {url}" in reply.json()["reason"]
    assert "make up starts it" in reply.json()["reason"]
