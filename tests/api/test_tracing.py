"""Each app's server span, seen through the SDK's in-memory exporter: a request from the sidecar
continues the sidecar's trace, the gateway's public door starts its own whatever the client
sends, the span is named by its route template, and every answer says its traceparent."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.gateway.app import create_app as gateway_app
from services.gateway.ports import GatewayPorts
from services.gateway.settings import Settings as GatewaySettings
from tests.fakes import fake_ports
from tests.recorders import recorded_spans

TRACE = "0af7651916cd43dd8448eb211c80319c"
SIDECARS = f"00-{TRACE}-b7ad6b7169203331-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    with recorded_spans() as exporter:
        yield exporter


def server_spans(exporter: InMemorySpanExporter) -> list:
    return [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER]


def answered_trace(response) -> str:
    version, trace_id, span_id, flags = response.headers["traceparent"].split("-")
    assert version == "00" and len(span_id) == 16 and len(flags) == 2
    return trace_id


def test_a_request_from_the_sidecar_continues_its_trace_in_a_span_named_by_the_route(make_client, spans):
    registry = make_client("registry")
    response = registry.get("/api/models/iris", headers={"traceparent": SIDECARS, "tracestate": "dapr=1"})
    assert answered_trace(response) == TRACE
    (span,) = server_spans(spans)
    assert span.name == "GET /api/models/{name}"  # the template, never /api/models/iris
    assert format(span.context.trace_id, "032x") == TRACE
    assert span.parent is not None and format(span.parent.span_id, "016x") == "b7ad6b7169203331"
    assert span.attributes["http.route"] == "/api/models/{name}"
    assert span.attributes["http.request.method"] == "GET"
    assert span.attributes["http.response.status_code"] == response.status_code
    assert response.headers["traceparent"].split("-")[2] == format(span.context.span_id, "016x")


def test_a_request_without_a_trace_starts_one_and_says_which(make_client, spans):
    registry = make_client("registry")
    first, second = registry.get("/api/models"), registry.get("/api/models")
    assert answered_trace(first) != answered_trace(second)
    assert [s.parent for s in server_spans(spans)] == [None, None]


def test_a_health_probe_starting_a_trace_has_ids_but_is_not_recorded(make_client, spans):
    registry = make_client("registry")
    probe = registry.get("/healthz")
    traced = registry.get("/healthz", headers={"traceparent": SIDECARS})
    assert probe.headers["traceparent"].endswith("-00") and answered_trace(probe) != TRACE
    assert answered_trace(traced) == TRACE
    assert [format(s.context.trace_id, "032x") for s in server_spans(spans)] == [TRACE]


def test_an_unmatched_path_is_named_by_its_method_only(make_client, spans):
    make_client("registry").get("/no/such/path/of/any/length")
    (span,) = server_spans(spans)
    assert span.name == "GET" and "http.route" not in span.attributes
    assert span.attributes["http.response.status_code"] == 404


def test_the_gateway_ignores_a_clients_trace_context(make_client, spans):
    gateway = make_client("gateway")
    response = gateway.get("/api/models", headers={"traceparent": SIDECARS})
    assert answered_trace(response) != TRACE
    (span,) = server_spans(spans)
    assert span.parent is None and span.name == "GET /api/models"


def test_the_gateway_continues_its_own_sidecars_trace_on_the_routes_it_calls(spans):
    settings = GatewaySettings(app_api_token="sidecar-token")
    gateway = TestClient(gateway_app(settings, fake_ports(GatewayPorts)))
    from_sidecar = gateway.get("/dapr/subscribe", headers={"traceparent": SIDECARS, "dapr-api-token": "sidecar-token"})
    forged = gateway.get("/dapr/subscribe", headers={"traceparent": SIDECARS, "dapr-api-token": "guess"})
    client = gateway.get("/api/models", headers={"traceparent": SIDECARS})
    assert from_sidecar.status_code == 200 and answered_trace(from_sidecar) == TRACE
    assert answered_trace(client) != TRACE
    assert forged.status_code == 401  # refused before it is traced (the token guard is outermost)


def test_a_failing_request_is_marked_failed_and_still_says_its_trace(make_client, spans):
    registry = make_client("registry", state=Broken())
    response = registry.get("/api/models/iris", headers={"traceparent": SIDECARS})
    assert response.status_code == 503 and answered_trace(response) == TRACE
    (span,) = server_spans(spans)
    assert span.status.is_ok is False and span.attributes["http.response.status_code"] == 503


class Broken:
    """A state store whose sidecar is away."""

    async def get(self, key):
        from services.common.ports import SidecarUnavailable

        raise SidecarUnavailable("state store down", "the state store is unavailable")

    save = create = delete = get


def test_a_request_the_sidecar_did_not_sample_is_not_recorded_and_passes_that_on(make_client, spans):
    registry = make_client("registry")
    response = registry.get("/api/models/iris", headers={"traceparent": SIDECARS[:-2] + "00"})
    assert answered_trace(response) == TRACE and response.headers["traceparent"].endswith("-00")
    assert spans.get_finished_spans() == ()
