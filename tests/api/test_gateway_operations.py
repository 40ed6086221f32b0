"""The operations endpoints: fixed PromQL over the stack's own app ids, bounded parameters, and a
backend that is missing or down answered with `available: false`, never an error. Prometheus
and the trace backend are fakes of the operations package's own ports (backends.py); the HTTP
adapters are checked against httpx's MockTransport and a closed port."""

import asyncio
import json
import math
import re
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from scripts.proc import free_port
from services.common.ports import Reply
from services.gateway.app import create_app
from services.gateway.keys import Role
from services.gateway.operations.backends import BackendUnavailable, Series, Span, TraceSummary
from services.gateway.operations.http_backends import JaegerHttp, PrometheusHttp
from services.gateway.operations.service import Operations
from services.gateway.ports import GatewayPorts
from services.gateway.settings import Settings
from services.gateway.status.service import Status
from tests.api.conftest import provisioned
from tests.fakes import FakeInvoker, fake_ports

# A stack's app ids, as an isolated stack names them; one with characters PromQL and regexes treat specially.
APP_IDS = {
    "app_id": "gateway-1a2b",
    "ingestion_app_id": "ingestion-1a2b",
    "training_app_id": "training-1a2b",
    "registry_app_id": "registry.1a2b",
    "inference_app_id": 'inference"|.*-1a2b',
    "monitor_app_id": "monitor-1a2b",
    "notifier_app_id": "notifier-1a2b",
}
NOW = 1_800_000_030.0  # the 1h grid ends at 1_800_000_000
READY = Reply(200, json.dumps({"ready": True, "runtime_version": "1.18.2"}).encode())


class FakePrometheus:
    """Answers each query with what `answer(query, times)` gives, and keeps every query."""

    def __init__(self, answer=None, down: str | None = None):
        self.answer = answer or (lambda query, times: [])
        self.down = down
        self.ranges: list[tuple[str, float, float, int]] = []
        self.instants: list[str] = []

    async def range(self, query: str, start: float, end: float, step_s: int) -> list[Series]:
        self.ranges.append((query, start, end, step_s))
        if self.down:
            raise BackendUnavailable(self.down)
        times = [start + i * step_s for i in range(int((end - start) // step_s) + 1)]
        return self.answer(query, times)

    async def instant(self, query: str) -> list[Series]:
        self.instants.append(query)
        if self.down:
            raise BackendUnavailable(self.down)
        return self.answer(query, [NOW])


class FakeJaeger:
    def __init__(
        self, traces: list[TraceSummary], down: str | None = None, stored: dict[str, list[Span]] | None = None
    ):
        self.traces, self.down, self.stored = traces, down, stored or {}
        self.searches: list[tuple[str, int, int, int, int | None]] = []
        self.operations: list[str | None] = []
        self.looked_up: list[str] = []

    async def get(self, trace_id):
        self.looked_up.append(trace_id)
        if self.down:
            raise BackendUnavailable(self.down)
        return self.stored.get(trace_id)

    async def find(self, service, start_us, end_us, limit, min_duration_ms, operation=None):
        self.searches.append((service, start_us, end_us, limit, min_duration_ms))
        self.operations.append(operation)
        if self.down:
            raise BackendUnavailable(self.down)
        wanted = [
            t
            for t in self.traces
            if (min_duration_ms is None or t.duration_us >= min_duration_ms * 1000)
            and (operation is None or t.operation == operation)
        ]
        return wanted[:limit]


def gateway(metrics=None, traces=None, **settings) -> tuple[TestClient, dict[str, str], Settings]:
    """The gateway with the operations service over the fakes; its keys by role."""
    keys, secrets = provisioned(admin=[Role.ADMIN], reader=[Role.READER], predict=[Role.PREDICT])
    config = Settings(**(APP_IDS | {"traces_url": "http://127.0.0.1:16686/"} | settings))
    readyz = FakeInvoker({(app_id, "readyz"): READY for app_id in config.app_ids().values()})
    app = create_app(settings=config, ports=fake_ports(GatewayPorts, secrets=secrets, invoker=readyz))
    services = app.state.services
    services[Operations] = Operations(config, metrics, traces, services[Status], clock=lambda: NOW)
    client = TestClient(app)
    client.headers["authorization"] = f"Bearer {keys['reader']}"
    return client, keys, config


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


def trace(trace_id: str, ms: float, root: str = "gateway-1a2b", error: bool = False) -> TraceSummary:
    return TraceSummary(
        trace_id=trace_id,
        operation=f"POST /api/models/{{name}}/predict#{trace_id}",
        root_service=root,
        started_us=int((NOW - 60) * 1_000_000),
        duration_us=int(ms * 1000),
        spans=4,
        services=[root, "inference-1a2b"],
        error=error,
    )


def test_the_slowest_traces_through_the_gateway_come_first_with_links_to_the_trace_ui():
    traces = [
        trace("aa01", 12.5),
        trace("aa02", 250.0, error=True),
        trace("aa03", 1.2),
        trace("bb01", 900.0, root="inference-1a2b"),  # a heartbeat or a call that did not enter through the gateway
        trace("not-hex", 800.0),
        trace("aa04", 130.0),
        TraceSummary("aa05", "GET /api/operations/traces", "gateway-1a2b", 0, 400_000, 3),  # the page's own polling
        TraceSummary("aa06", "GET /console/{name:path}", "gateway-1a2b", 0, 300_000, 1),  # the console's files
    ]
    jaeger = FakeJaeger(traces)
    client, _, _ = gateway(FakePrometheus(), jaeger)
    body = client.get("/api/operations/traces", params={"window": "15m", "limit": 3}).json()
    assert body["available"] is True and body["ui_url"] == "http://127.0.0.1:16686"
    assert [(t["trace_id"], t["duration_ms"], t["error"]) for t in body["traces"]] == [
        ("aa02", 250.0, True),
        ("aa04", 130.0, False),
        ("aa01", 12.5, False),
    ]
    assert body["traces"][0]["link"] == "http://127.0.0.1:16686/trace/aa02"
    assert body["traces"][0]["services"] == ["gateway-1a2b", "inference-1a2b"] and body["traces"][0]["spans"] == 4
    # The slow ones first (the sidecar also delivers every replica's heartbeats, short traces), then faster.
    assert [s[4] for s in jaeger.searches] == [100, 10]
    service, start_us, end_us, _, _ = jaeger.searches[0]
    assert service == "gateway-1a2b" and end_us - start_us == 900 * 1_000_000 and end_us == int(NOW * 1_000_000)


def test_links_open_the_trace_ui_where_a_browser_reaches_it_when_that_is_not_where_the_gateway_reads():
    jaeger = FakeJaeger([trace("aa01", 40.0)])
    settings = {"traces_url": "http://jaeger:16686", "traces_ui_url": "http://127.0.0.1:26686/"}
    client, _, _ = gateway(FakePrometheus(), jaeger, **settings)
    body = client.get("/api/operations/traces").json()
    assert (
        body["ui_url"] == "http://127.0.0.1:26686" and body["traces"][0]["link"] == "http://127.0.0.1:26686/trace/aa01"
    )


def test_asked_for_one_service_the_search_is_by_its_spans_and_still_keeps_only_what_entered_the_gateway():
    traces = [trace("aa01", 40.0), trace("bb01", 900.0, root="inference-1a2b")]
    jaeger = FakeJaeger(traces)
    client, _, config = gateway(FakePrometheus(), jaeger)
    body = client.get("/api/operations/traces", params={"service": "inference"}).json()
    assert [t["trace_id"] for t in body["traces"]] == ["aa01"]
    assert {s[0] for s in jaeger.searches} == {config.inference_app_id}  # the app id, as it is (no query language)
    searches = len(jaeger.searches)
    unknown = client.get("/api/operations/traces", params={"service": "../api/traces"})
    assert unknown.status_code == 422 and len(jaeger.searches) == searches


def test_asked_for_one_route_the_search_is_by_the_gateways_spans_of_that_name_and_other_routes_are_refused():
    predict, upload = "POST /api/models/{name}/predict", "POST /api/datasets/{name}/versions"
    inference = APP_IDS["inference_app_id"]
    traces = [
        TraceSummary("aa01", predict, "gateway-1a2b", 0, 8_000, 4, ["gateway-1a2b", inference]),
        TraceSummary("aa02", upload, "gateway-1a2b", 0, 900_000, 40, ["gateway-1a2b", inference]),
        TraceSummary("aa03", predict, "gateway-1a2b", 0, 5_000, 2, ["gateway-1a2b"]),  # refused before inference
    ]
    jaeger = FakeJaeger(traces)
    client, _, config = gateway(FakePrometheus(), jaeger)
    reply = client.get("/api/operations/traces", params={"operation": predict})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert [t["trace_id"] for t in body["traces"]] == ["aa01", "aa03"]
    assert {s[0] for s in jaeger.searches} == {config.app_id} and set(jaeger.operations) == {predict}
    # With a service too: that route's requests that reached it (still searched by the route).
    body = client.get("/api/operations/traces", params={"operation": predict, "service": "inference"}).json()
    assert [t["trace_id"] for t in body["traces"]] == ["aa01"]
    assert {s[0] for s in jaeger.searches} == {config.app_id}
    searches = len(jaeger.searches)
    for hostile in ["GET /internal/anything", "POST /api/models/x/predict", "predict", "x" * 201, "POST /v2/../admin"]:
        reply = client.get("/api/operations/traces", params={"operation": hostile})
        assert reply.status_code in (400, 422), (hostile, reply.text)
        assert "detail" in reply.json()
    assert len(jaeger.searches) == searches


TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
T0 = 1_800_000_000_000_000  # Unix microseconds


def stored_trace() -> list[Span]:
    """A prediction through the gateway: its app (whose caller was not traced), its sidecar, the
    inference app and a step of it that started with it; listed out of order, as a backend may."""
    secret = "http://127.0.0.1:8000/api/models/iris/predict?api_key=s3cret-key"
    return [
        Span("d1", "c1", "inference-1a2b", "decode and check", T0 + 3_250, 500, {"model": "iris", "rows": 3}),
        Span(
            "c1",
            "b1",
            "inference-1a2b",
            "POST /api/models/{name}/predict",
            T0 + 3_250,
            4_000,
            {"model": "iris", "version": "2", "http.route": "/api/x?token=s3cret-key", "otel.status_code": "ERROR"},
        ),
        Span(
            "a1",
            "ffff000000000000",
            "gateway-1a2b",
            "POST /api/models/{name}/predict",
            T0,
            12_000,
            {
                "http.request.method": "POST",
                "http.route": "/api/models/{name}/predict",
                "http.response.status_code": 200,
                "url.full": secret,
                "http.request.header.authorization": "Bearer s3cret-key",
            },
        ),
        Span(
            "b1",
            "a1",
            "gateway-1a2b",
            "CallLocal/inference/api/models/iris/predict?api_key=s3cret-key",  # named after the raw URL
            T0 + 1_500,
            9_000,
            {"rpc.system": "grpc", "dapr.api": f"/v1.0/invoke/{secret}", "net.peer.name": "10.0.0.7"},
        ),
    ]


def test_a_trace_is_its_spans_in_start_order_with_parents_offsets_and_depths():
    jaeger = FakeJaeger([], stored={TRACE_ID: stored_trace()})
    client, _, _ = gateway(FakePrometheus(), jaeger)
    reply = client.get(f"/api/operations/traces/{TRACE_ID}")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["available"] is True and body["trace_id"] == TRACE_ID and jaeger.looked_up == [TRACE_ID]
    assert body["duration_ms"] == 12.0 and body["started_at"].startswith("2027-01-15T08:00:00")
    assert body["services"] == ["gateway-1a2b", "inference-1a2b"] and body["truncated"] is False
    rows = [
        (s["span_id"], s["parent_id"], s["depth"], s["service"], s["start_ms"], s["duration_ms"], s["error"])
        for s in body["spans"]
    ]
    assert rows == [
        ("a1", "ffff000000000000", 0, "gateway-1a2b", 0.0, 12.0, False),  # its parent is not in the trace: a root
        ("b1", "a1", 1, "gateway-1a2b", 1.5, 9.0, False),
        ("c1", "b1", 2, "inference-1a2b", 3.25, 4.0, True),
        ("d1", "c1", 3, "inference-1a2b", 3.25, 0.5, False),  # started with its parent: after it
    ]
    assert body["spans"][2]["operation"] == "POST /api/models/{name}/predict"


def test_a_trace_shows_only_whitelisted_tags_and_never_a_url_or_a_header():
    client, _, _ = gateway(FakePrometheus(), FakeJaeger([], stored={TRACE_ID: stored_trace()}))
    reply = client.get(f"/api/operations/traces/{TRACE_ID}")
    assert reply.status_code == 200, reply.text
    tags = {s["span_id"]: s["tags"] for s in reply.json()["spans"]}
    assert tags["a1"] == {"http.method": "POST", "http.route": "/api/models/{name}/predict", "http.status_code": 200}
    assert tags["b1"] == {"rpc.system": "grpc"}
    assert reply.json()["spans"][1]["operation"] == "CallLocal/inference/api/models/iris/predict"
    assert tags["c1"] == {"model": "iris", "version": "2", "http.route": "/api/x"}  # cut at the query string
    assert tags["d1"] == {"model": "iris", "rows": 3}
    assert "s3cret" not in reply.text and "url.full" not in reply.text and "10.0.0.7" not in reply.text


BAD_TRACE_IDS = [
    "abc",
    TRACE_ID.upper(),
    TRACE_ID[:-1],
    TRACE_ID + "0",
    TRACE_ID[:-1] + "g",
    TRACE_ID + "%3Fkey%3Dx",
    "%2e%2e" + "0" * 30,
]


@pytest.mark.parametrize("trace_id", BAD_TRACE_IDS)
def test_a_trace_id_that_is_not_32_lowercase_hex_digits_is_refused_and_nothing_is_asked(trace_id):
    jaeger = FakeJaeger([], stored={TRACE_ID: stored_trace()})
    client, _, _ = gateway(FakePrometheus(), jaeger)
    reply = client.get(f"/api/operations/traces/{trace_id}")
    # The gateway's rule for a path it does not allow (app.py's invalid_request): 400, not 422.
    assert reply.status_code == 400, reply.text
    assert "invalid request: path trace_id" in reply.json()["detail"]
    assert jaeger.looked_up == []


def test_a_trace_the_backend_does_not_have_is_404():
    client, _, _ = gateway(FakePrometheus(), FakeJaeger([], stored={TRACE_ID: stored_trace()}))
    other = "0" * 31 + "1"
    reply = client.get(f"/api/operations/traces/{other}")
    assert reply.status_code == 404, reply.text
    assert reply.json()["detail"].startswith(f"no trace {other} in the trace backend")


def test_a_trace_without_its_backend_is_a_200_that_says_why():
    client, _, _ = gateway(FakePrometheus(), FakeJaeger([], down="The trace backend is not answering at x"))
    reply = client.get(f"/api/operations/traces/{TRACE_ID}")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["available"] is False and body["reason"] == "The trace backend is not answering at x"
    assert body["spans"] == [] and body["trace_id"] == TRACE_ID
    client, _, _ = gateway(None, None, traces_url="")
    body = client.get(f"/api/operations/traces/{TRACE_ID}").json()
    assert body["available"] is False and "DAPRML_TRACES_URL" in body["reason"]


def test_only_readers_and_up_may_read_a_trace():
    client, keys, _ = gateway(FakePrometheus(), FakeJaeger([], stored={TRACE_ID: stored_trace()}))
    for key, status in ((keys["reader"], 200), (keys["admin"], 200), (keys["predict"], 403)):
        reply = client.get(f"/api/operations/traces/{TRACE_ID}", headers={"authorization": f"Bearer {key}"})
        assert reply.status_code == status, reply.text
    client.headers.pop("authorization")
    assert client.get(f"/api/operations/traces/{TRACE_ID}").status_code == 401


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


JAEGER_TRACE = {
    "traceID": "4bf92f3577b34da6a3ce929d0e0e4736",
    "spans": [
        {
            "traceID": "4bf92f3577b34da6a3ce929d0e0e4736",
            "spanID": "b1",
            "operationName": "CallLocal/inference/api/models/iris/predict",
            "references": [{"refType": "CHILD_OF", "traceID": "4bf92f3577b34da6a3ce929d0e0e4736", "spanID": "a1"}],
            "startTime": 1_800_000_000_002_000,
            "duration": 3_000,
            "tags": [{"key": "otel.status_code", "type": "string", "value": "ERROR"}],
            "processID": "p2",
        },
        {
            "traceID": "4bf92f3577b34da6a3ce929d0e0e4736",
            "spanID": "a1",
            "operationName": "POST /api/models/{name}/predict",
            "references": [{"refType": "CHILD_OF", "traceID": "4bf92f3577b34da6a3ce929d0e0e4736", "spanID": "zz"}],
            "startTime": 1_800_000_000_000_000,
            "duration": 6_500,
            "tags": [],
            "processID": "p1",
        },
    ],
    "processes": {"p1": {"serviceName": "gateway-1a2b"}, "p2": {"serviceName": "inference-1a2b"}},
}


def test_the_jaeger_adapter_searches_by_service_and_summarises_each_trace():
    sent = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(dict(request.url.params))
        return httpx.Response(200, json={"data": [JAEGER_TRACE], "total": 0, "limit": 0, "offset": 0, "errors": None})

    jaeger = JaegerHttp("http://jaeger.test", 2.0, transport=httpx.MockTransport(handler))
    (found,) = asyncio.run(jaeger.find("gateway-1a2b", 1, 2, 100, 10))
    assert sent == [{"service": "gateway-1a2b", "start": "1", "end": "2", "limit": "100", "minDuration": "10ms"}]
    # The root is the span whose parent is not in the trace (the caller's, untraced), the extent all spans'.
    assert (found.operation, found.root_service, found.duration_us, found.spans) == (
        "POST /api/models/{name}/predict",
        "gateway-1a2b",
        6_500,
        2,
    )
    assert found.services == ["gateway-1a2b", "inference-1a2b"] and found.error is True
    assert found.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    empty = httpx.MockTransport(lambda request: httpx.Response(200, json={"data": None, "errors": None}))
    assert asyncio.run(JaegerHttp("http://j.test", 2.0, transport=empty).find("x", 1, 2, 10, None)) == []


def test_the_jaeger_adapter_reads_one_trace_with_each_spans_service_and_parent():
    sent = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        if request.url.path.endswith(JAEGER_TRACE["traceID"]):
            return httpx.Response(200, json={"data": [JAEGER_TRACE], "errors": None})
        return httpx.Response(404, json={"data": None, "errors": [{"code": 404, "msg": "trace not found"}]})

    jaeger = JaegerHttp("http://jaeger.test/", 2.0, transport=httpx.MockTransport(handler))
    found = asyncio.run(jaeger.get(JAEGER_TRACE["traceID"]))
    assert sent == [f"/api/traces/{JAEGER_TRACE['traceID']}"]
    assert found is not None
    by_id = {s.span_id: s for s in found}
    assert (by_id["b1"].parent_id, by_id["b1"].service, by_id["b1"].start_us, by_id["b1"].duration_us) == (
        "a1",
        "inference-1a2b",
        1_800_000_000_002_000,
        3_000,
    )
    assert by_id["b1"].tags == {"otel.status_code": "ERROR"} and by_id["a1"].service == "gateway-1a2b"
    assert asyncio.run(jaeger.get("0" * 32)) is None  # Jaeger's 404: no such trace, not a backend down
