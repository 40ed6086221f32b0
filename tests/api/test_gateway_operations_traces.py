"""The operations service's traces: the slowest requests through the gateway, each trace's
spans, hostile trace ids and routes refused before the backend is asked; the Jaeger adapter
against httpx's MockTransport."""

import asyncio

import httpx
import pytest

from services.gateway.operations.backends import Span, TraceSummary
from services.gateway.operations.http_backends import JaegerHttp
from tests.api.operations_fakes import APP_IDS, NOW, FakeJaeger, FakePrometheus, gateway


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
