"""Traces in the kit, seen through the SDK's own in-memory exporter: the calls an app makes to
its sidecar carry the current trace context (HTTP headers, gRPC metadata), log lines carry the
trace id, and a backend that does not answer is said once."""

import asyncio
import io
import logging
from collections.abc import Iterator

import httpx
import pytest
from dapr.ext.workflow import DaprWorkflowClient
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.common import tracing
from services.common.app import LOG_FORMAT
from services.common.dapr_adapters import DaprInvoker, Sidecar
from services.common.dapr_adapters.sidecar import SidecarCalls, with_trace
from services.common.dapr_adapters.workflows import EngineCalls, intercept_engine
from services.common.settings import ServiceSettings
from tests.recorders import recorded_spans, written_log

SETTINGS = ServiceSettings(sdk_timeout_s=7.0, call_timeout_s=90.0)
CLIENTS = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Spans made during the test, kept in memory (the SDK's own exporter)."""
    with recorded_spans() as exporter:
        yield exporter


def hex_trace(span) -> str:
    return format(span.get_span_context().trace_id, "032x")


def recording_sidecar() -> tuple[Sidecar, list[httpx.Request]]:
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={})

    sidecar = Sidecar(ServiceSettings(dapr_http_port=3599))
    hooks = sidecar.http.event_hooks  # the adapter's own, on a transport that records
    sidecar.http = httpx.AsyncClient(
        base_url=sidecar.http_url, transport=httpx.MockTransport(record), event_hooks=hooks
    )
    return sidecar, sent


async def _empty():
    return
    yield


def test_a_call_to_the_sidecar_carries_the_current_trace_and_never_a_callers(spans):
    sidecar, sent = recording_sidecar()

    async def calls() -> str:
        with tracing.span("work") as span:
            await DaprInvoker(sidecar).call("registry", "api/models")
            reply = await DaprInvoker(sidecar).forward(
                "inference", "api/models/x/predict", "POST", {"traceparent": CLIENTS, "tracestate": "a=b"}, _empty()
            )
            await reply.close()
            return hex_trace(span)

    trace_id = asyncio.run(calls())
    assert len(sent) == 2
    for request in sent:
        assert request.headers["traceparent"].split("-")[1] == trace_id
        assert "tracestate" not in request.headers
    assert CLIENTS.split("-")[1] != trace_id


def test_outside_a_trace_a_call_carries_no_trace_context(spans):
    sidecar, sent = recording_sidecar()
    reply = asyncio.run(
        DaprInvoker(sidecar).forward("inference", "api/models", "GET", {"traceparent": CLIENTS}, _empty())
    )
    asyncio.run(reply.close())
    assert "traceparent" not in sent[0].headers


class Details:
    """gRPC's call details, as an interceptor receives them."""

    def __init__(self, metadata):
        self.method, self.timeout, self.metadata = "/dapr.proto.runtime.v1.Dapr/PublishEvent", None, metadata
        self.credentials, self.wait_for_ready, self.compression = None, None, None


def test_the_sdks_grpc_calls_carry_the_current_trace_as_metadata(spans):
    seen = []

    async def continuation(details, request):
        seen.append(dict(details.metadata or ()))
        return "answer"

    async def call() -> str:
        with tracing.span("publish") as span:
            assert (
                await SidecarCalls(SETTINGS).intercept_unary_unary(continuation, Details([("x", "1")]), b"") == "answer"
            )
            return hex_trace(span)

    trace_id = asyncio.run(call())
    asyncio.run(SidecarCalls(SETTINGS).intercept_unary_unary(continuation, Details(None), b""))  # outside a trace
    assert seen[0]["x"] == "1" and seen[0]["traceparent"].split("-")[1] == trace_id
    assert seen[1] == {}


def test_every_sdk_call_to_the_sidecar_gets_a_deadline_a_blobs_the_longer_one():
    """Without one, a call to a sidecar that stopped answering waits as long as its socket lives."""
    seen: list[tuple[object, float | None]] = []

    async def continuation(details, request):
        seen.append((details.method, details.timeout))

    def details(method, timeout=None):
        found = Details(None)
        found.method, found.timeout = method, timeout
        return found

    async def calls() -> None:
        for method in (b"/dapr.proto.runtime.v1.Dapr/GetState", b"/dapr.proto.runtime.v1.Dapr/InvokeBinding"):
            await SidecarCalls(SETTINGS).intercept_unary_unary(continuation, details(method), b"")
        await SidecarCalls(SETTINGS).intercept_unary_unary(continuation, details(b"/x/PublishEvent", 0.5), b"")

    asyncio.run(calls())
    # The workflow client's calls (a plain gRPC channel: its method names are text).
    EngineCalls(SETTINGS).intercept_unary_unary(
        lambda d, _: seen.append((d.method, d.timeout)), details("/TaskHubSidecarService/GetInstance"), b""
    )
    assert [timeout for _, timeout in seen] == [7.0, 90.0, 0.5, 7.0]


def test_the_workflow_clients_calls_carry_the_current_trace(spans):
    seen = []
    with tracing.span("schedule") as span:
        EngineCalls(SETTINGS).intercept_unary_unary(
            lambda details, _: seen.append(dict(details.metadata)), Details([("traceparent", CLIENTS)]), b""
        )
    assert seen[0]["traceparent"].split("-")[1] == hex_trace(span)
    assert with_trace([("a", "b")]) == [("a", "b")]  # outside a trace: as given


def test_the_pinned_workflow_sdk_lets_its_client_carry_the_trace():
    """DaprWorkflowClient takes no interceptors: intercept_engine reaches into it. Fails when a new
    dapr-ext-workflow lays its client out otherwise (no connection is made here)."""
    client = DaprWorkflowClient(host="127.0.0.1", port="59999")
    try:
        assert intercept_engine(client, SETTINGS)
    finally:
        client.close()


@pytest.fixture
def written() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    with written_log("probe.tracing", LOG_FORMAT) as log:
        yield log


def test_a_log_line_carries_the_trace_id_next_to_the_request_id(spans, written):
    logger, out = written
    with tracing.span("work") as span:
        logger.info("inside")
    logger.info("outside")
    inside, outside = out.getvalue().splitlines()
    assert f"[- trace={hex_trace(span)}]: inside" in inside
    assert "[- trace=-]: outside" in outside


class Failing:
    """An exporter whose backend is away until `back` is set."""

    def __init__(self):
        self.back, self.calls = False, 0

    def export(self, spans):
        self.calls += 1
        if self.back:
            return SpanExportResult.SUCCESS
        raise ConnectionError("connection refused")

    def shutdown(self):
        pass

    def force_flush(self, timeout_millis=30000):
        return True


def test_a_backend_that_does_not_answer_is_said_once_and_its_return_once(caplog):
    inner = Failing()
    exporter = tracing._QuietExporter(inner, "http://127.0.0.1:4318")
    with caplog.at_level(logging.INFO, logger=tracing.__name__):
        results = [exporter.export([]) for _ in range(20)]
        inner.back = True
        results += [exporter.export([]) for _ in range(3)]
    assert results.count(SpanExportResult.FAILURE) == 20 and inner.calls == 23
    said = [r.getMessage() for r in caplog.records if r.name == tracing.__name__]
    assert len(said) == 2
    assert "could not be exported to http://127.0.0.1:4318" in said[0] and "again" in said[1]


def test_malformed_trace_context_starts_a_new_trace():
    for carrier in ({"traceparent": "00-zz-yy-01"}, {"traceparent": "00-" + "0" * 32 + "-" + "1" * 16 + "-01"}, {}):
        assert not tracing.extract(carrier)


def test_without_an_exporter_spans_carry_ids_and_the_parents_sampling_decision():
    tracer = tracing.IdsOnly().get_tracer("test")
    for flags in ("01", "00"):
        parent = tracing.extract({"traceparent": f"00-{CLIENTS.split('-')[1]}-b7ad6b7169203331-{flags}"})
        with tracer.start_as_current_span("work", context=parent) as span:
            assert tracing.trace_id() == CLIENTS.split("-")[1]
            assert tracing.traceparent().endswith(f"-{flags}")
            assert span.get_span_context().span_id != 0xB7AD6B7169203331
            assert not span.is_recording()
    first, second = tracer.start_span("root"), tracer.start_span("root")
    assert first.get_span_context().trace_id != second.get_span_context().trace_id
    assert first.get_span_context().trace_flags.sampled  # a new trace is sampled (parentbased_always_on)


def test_routine_calls_carry_an_unsampled_trace_so_no_sidecar_records_them(spans):
    sidecar, sent = recording_sidecar()

    async def beat() -> None:
        with tracing.unsampled():
            await DaprInvoker(sidecar).call("gateway", "healthz")

    asyncio.run(beat())
    assert sent[0].headers["traceparent"].endswith("-00")
    assert spans.get_finished_spans() == ()


@pytest.mark.parametrize(
    "header",
    [
        CLIENTS,
        CLIENTS[:-2] + "00",
        CLIENTS[:-2] + "03",
        CLIENTS.upper(),  # upper-case hex is not W3C's
        "00-" + "0" * 32 + "-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-" + "0" * 16 + "-01",
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-",
        "00_0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331_01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333g-01",
        "",
    ],
)
def test_a_request_header_reads_as_the_propagator_reads_it(header):
    def seen(context):
        found = trace.get_current_span(context).get_span_context()
        return (found.trace_id, found.span_id, found.trace_flags, found.is_valid) if found.is_valid else None

    scope = {"headers": [(b"traceparent", header.encode())]}
    assert seen(tracing._incoming(scope)) == seen(tracing.extract({"traceparent": header}))
