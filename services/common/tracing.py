"""Traces: each app joins the W3C trace its sidecar hands it, so that one request through the
gateway is one trace (gateway app -> gateway daprd -> inference daprd -> inference app), and
one dataset commit is one trace down to the training workflow's activities.

- `setup` makes the tracer provider, once per process. When OTEL_EXPORTER_OTLP_ENDPOINT or
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, it is the OpenTelemetry SDK's (service.name: the
  app id, service.instance.id: its host:port), exporting through a batch processor with a
  bounded queue and the OTLP/HTTP exporter with a short timeout: a backend that does not answer
  costs no request anything (export happens in the processor's thread) and writes one warning
  per outage, not one per batch. Otherwise spans carry ids and nothing else (IdsOnly: about a
  tenth of an SDK span's cost), so that log lines and answers still carry trace ids and the
  sidecars still see the sampling decision.
- `ServerSpans` (ASGI): a server span per request, named by its route template, continuing the
  `traceparent`/`tracestate` the request carries when the app trusts them (the public door
  trusts only its sidecar's), and answering the span's own `traceparent`.
- `headers`: the current context for an outgoing call to the sidecar, so that the sidecar's
  span is the app span's child.
- `span` and `start`: spans for the work that matters inside an app (predict, load, commit...).

Sampling: the sampler is the SDK's default, parent-based (OTEL_TRACES_SAMPLER changes it): a
request from a sidecar is recorded when the sidecar sampled it (its `samplingRate`); a trace
the gateway starts is sampled by the gateway's root sampler (always, unless
OTEL_TRACES_SAMPLER=parentbased_traceidratio with OTEL_TRACES_SAMPLER_ARG says otherwise).
"""

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, Decision, Sampler
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[..., Any]

ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
"""Either one set: spans are exported there (OTLP over HTTP/protobuf); neither: not exported."""
TIMEOUTS = ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
EXPORT_TIMEOUT_S = 2.0
"""One export's limit, retries included, unless the variables above say otherwise: the
exporter's thread gives up on a backend that does not answer soon, dropping that batch."""
MAX_QUEUE_SIZE = 2048
"""Spans waiting for export at most; past it new ones are dropped (memory stays bounded)."""
SCHEDULE_DELAY_MS = 1000
"""How often the processor exports what waits: a trace is in the backend about a second after."""
MAX_EXPORT_BATCH = 512

TRACEPARENT, TRACESTATE = "traceparent", "tracestate"
NO_TRACE = "-"
"""What a log line says for the trace id outside any trace."""

_propagator = TraceContextTextMapPropagator()
_NEW_ROOT = otel_context.Context()
"""An empty context: a span started in it begins a new trace."""


class _Tracing:
    """The process's provider and tracer (tests swap in their own with `use`)."""

    def __init__(self) -> None:
        self.provider: trace.TracerProvider | None = None
        self.processor: BatchSpanProcessor | None = None
        self.tracer: Tracer = trace.get_tracer(__name__)


_current = _Tracing()


def setup(app_id: str, port: int) -> trace.TracerProvider:
    """The process's tracer provider, made on the first call (later calls get the same one: an
    app is built once per process, tests build many). It is also the global provider, which
    the workflow SDK's activity spans use."""
    if _current.provider is not None:
        return _current.provider
    endpoint = next((os.environ[name] for name in ENDPOINTS if os.environ.get(name)), None)
    provider: trace.TracerProvider = IdsOnly()
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":  # the standard off switch
        provider, endpoint = trace.NoOpTracerProvider(), None
    elif endpoint is not None:
        resource = Resource.create({"service.name": app_id, "service.instance.id": f"{socket.gethostname()}:{port}"})
        provider = TracerProvider(resource=resource)
        _current.processor = BatchSpanProcessor(
            _QuietExporter(_otlp_exporter(), endpoint),
            max_queue_size=MAX_QUEUE_SIZE,
            schedule_delay_millis=SCHEDULE_DELAY_MS,
            max_export_batch_size=MAX_EXPORT_BATCH,
            export_timeout_millis=EXPORT_TIMEOUT_S * 1000,
        )
        provider.add_span_processor(_current.processor)
        # The exporter and the processor log every failed batch (and every retry): our
        # exporter says it once per outage instead.
        logging.getLogger("opentelemetry.exporter").setLevel(logging.CRITICAL)
        logging.getLogger("opentelemetry.sdk._shared_internal").setLevel(logging.ERROR)
        log.info("traces of %s go to %s", app_id, endpoint)
    trace.set_tracer_provider(provider)
    use(provider)
    return provider


def _otlp_exporter() -> SpanExporter:
    # Imported here: an app that exports nothing loads no exporter (nor requests).
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    given = any(os.environ.get(name) for name in TIMEOUTS)
    return OTLPSpanExporter(timeout=None if given else EXPORT_TIMEOUT_S)


def use(provider: trace.TracerProvider | None) -> None:
    """Makes spans with this provider from now on (tests hand in one over an in-memory exporter;
    None: back to the global one)."""
    _current.provider = provider
    _current.tracer = (provider or trace.get_tracer_provider()).get_tracer("daprml")


def flush(timeout_s: float = 3.0) -> None:
    """Exports what waits, within the timeout: at an app's shutdown (its lifespan)."""
    if _current.processor is not None:
        _current.processor.force_flush(int(timeout_s * 1000))


def shutdown(timeout_s: float = 3.0) -> None:
    """Exports what waits and stops the exporter's thread, within the timeout (the process ends)."""
    processor, _current.processor = _current.processor, None
    if processor is not None:
        # Its own shutdown may wait on a backend that does not answer, batch after batch: given
        # the timeout here, the rest is dropped with the process.
        stopping = threading.Thread(target=processor.shutdown, name="traces shutdown", daemon=True)
        stopping.start()
        stopping.join(timeout_s)


class IdsOnly(trace.TracerProvider):
    """Spans that carry ids and the sampling decision and record nothing: what an app that
    exports no spans makes (a log line's trace id, the answer's traceparent, the context it
    passes on). A span with a parent takes the parent's decision; a new trace, the SDK
    sampler's (OTEL_TRACES_SAMPLER), so that the sidecars sample as they would behind an
    exporting app."""

    def __init__(self) -> None:
        self.tracer = _IdsOnlyTracer(TracerProvider(shutdown_on_exit=False).sampler)  # as OTEL_TRACES_SAMPLER says

    def get_tracer(self, *args: Any, **kwargs: Any) -> Tracer:
        return self.tracer


class _IdsOnlyTracer(Tracer):
    def __init__(self, sampler: Sampler):
        self.sampler, self.ids = sampler, RandomIdGenerator()

    def start_span(self, name: str, context: otel_context.Context | None = None, *args: Any, **kwargs: Any) -> Span:
        parent = trace.get_current_span(context).get_span_context()
        if parent.is_valid:  # the parent's decision, as a parent-based sampler takes it
            ids = SpanContext(
                parent.trace_id, self.ids.generate_span_id(), False, parent.trace_flags, parent.trace_state
            )
            return NonRecordingSpan(ids)
        trace_id = self.ids.generate_trace_id()
        sampled = self.sampler.should_sample(context, trace_id, name).decision == Decision.RECORD_AND_SAMPLE
        flags = trace.TraceFlags(trace.TraceFlags.SAMPLED if sampled else trace.TraceFlags.DEFAULT)
        return NonRecordingSpan(SpanContext(trace_id, self.ids.generate_span_id(), False, flags))

    @contextmanager  # the API's own decorator is private; a `with` cannot tell the two apart
    def start_as_current_span(  # type: ignore[override]
        self, name: str, context: otel_context.Context | None = None, *args: Any, **kwargs: Any
    ) -> Iterator[Span]:
        with trace.use_span(self.start_span(name, context), end_on_exit=True) as span:
            yield span


_PROBES = _IdsOnlyTracer(ALWAYS_OFF)
"""Ids, never sampled: a health probe's (see ServerSpans)."""
_UNDER_UNSAMPLED = _IdsOnlyTracer(ALWAYS_OFF)
"""Ids, following an unsampled parent (see _tracer_under)."""


class _QuietExporter(SpanExporter):
    """The OTLP exporter, saying once that export fails (and once that it works again) rather
    than once per batch: a missing backend must not fill the log."""

    def __init__(self, exporter: SpanExporter, endpoint: str):
        self.exporter, self.endpoint, self.failing = exporter, endpoint, False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        why = "the backend refused them or did not answer"
        try:
            result = self.exporter.export(spans)
        except Exception as exc:  # never into the processor's thread
            result, why = SpanExportResult.FAILURE, repr(exc)
        if result is SpanExportResult.FAILURE and not self.failing:
            self.failing = True
            log.warning(
                "traces: %d spans could not be exported to %s (%s); spans are dropped until it answers, "
                "and this is said once",
                len(spans),
                self.endpoint,
                why,
            )
        elif result is SpanExportResult.SUCCESS and self.failing:
            self.failing = False
            log.info("traces: exporting to %s again", self.endpoint)
        return result

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)


# the current trace


def span(name: str, attributes: Mapping[str, Any] | None = None) -> AbstractContextManager[Span]:
    """A span around a piece of work, the child of the current one and the current one while it
    lasts (an exception is recorded on it and re-raised). Attributes: plain names and values
    (model, version, rows...)."""
    return _tracer_under(trace.get_current_span()).start_as_current_span(name, attributes=attributes)


def unsampled() -> AbstractContextManager[Span]:
    """A new trace that nothing records, the sidecars included (they follow its flag): for
    routine calls (heartbeats) that would only crowd the trace store. Log lines still get ids."""
    return _PROBES.start_as_current_span("unsampled", context=_NEW_ROOT)


def start(name: str, attributes: Mapping[str, Any] | None = None) -> Span:
    """A span the caller ends (`.end()`), the child of the current one but never current itself:
    for a step on the hot path that makes no calls of its own (a third cheaper than `span`)."""
    return _tracer_under(trace.get_current_span()).start_span(name, attributes=attributes)


def _tracer_under(parent: Span) -> Tracer:
    """The tracer for a child of `parent`: under a parent that was not sampled, the ids-only
    one (a parent-based sampler records nothing there either, and the SDK's unsampled spans
    cost more)."""
    context = parent.get_span_context()
    return _UNDER_UNSAMPLED if context.is_valid and not context.trace_flags.sampled else _current.tracer


def trace_id() -> str:
    """The current trace's id (32 hex digits), or '-' outside a trace."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else NO_TRACE


def traceparent(span_: Span | None = None) -> str | None:
    """The W3C traceparent of a span (the current one by default), None outside a trace."""
    context = (span_ or trace.get_current_span()).get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def headers() -> dict[str, str]:
    """The current context as W3C headers (traceparent, and tracestate when there is one); empty
    outside a trace."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier


def extract(carrier: Mapping[str, str]) -> otel_context.Context:
    """The context W3C headers carry (an empty one, so a new trace, when they carry none or a
    malformed one)."""
    return _propagator.extract(carrier, context=otel_context.Context())


# the server side


_HEX = frozenset(b"0123456789abcdef")


def _incoming(scope: Scope) -> otel_context.Context:
    """The context a request's headers carry, read by hand: the propagator's general reader
    cost about 10 us a request, on every request of every app. A version-00 `traceparent` of
    exactly 55 characters is read here; any other form goes to the propagator, which refuses
    or reads it by the rules."""
    parent = state = None
    for key, value in scope["headers"]:
        if key == b"traceparent":
            parent = value
        elif key == b"tracestate":
            state = value
    if parent is None:
        return _NEW_ROOT
    if (
        state is not None
        or len(parent) != 55
        or not parent.startswith(b"00-")
        or not _HEX.issuperset(parent.translate(None, b"-"))
    ):
        carrier = {TRACEPARENT: parent.decode("latin-1")}
        if state is not None:
            carrier[TRACESTATE] = state.decode("latin-1")
        return extract(carrier)
    trace_id, span_id = int(parent[3:35], 16), int(parent[36:52], 16)
    if parent[2:3] + parent[35:36] + parent[52:53] != b"---" or not trace_id or not span_id:
        return _NEW_ROOT
    remote = SpanContext(trace_id, span_id, True, trace.TraceFlags(int(parent[53:55], 16)))
    return trace.set_span_in_context(NonRecordingSpan(remote), _NEW_ROOT)


class ServerSpans:
    """ASGI middleware: one server span per HTTP request, named `<method> <route template>`
    (never the raw path), with the method, route and status as attributes; a 5xx marks it
    failed. It continues the request's `traceparent` when `trusts(scope)` says the caller may
    set it (None: always), else starts a new trace. The answer carries the span's own
    `traceparent` header, so a client can look its trace up.

    A request to one of the `unsampled` paths (the health probes, every few seconds from the
    supervisor and the sidecar) that starts a trace gets ids but is never recorded: probes
    would otherwise fill the trace store."""

    def __init__(
        self, app: ASGIApp, trusts: Callable[[Scope], bool] | None = None, unsampled: frozenset[str] = frozenset()
    ):
        self.app, self.trusts, self.unsampled = app, trusts, unsampled

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        parent = _incoming(scope) if self.trusts is None or self.trusts(scope) else _NEW_ROOT
        if parent is _NEW_ROOT:
            tracer = _PROBES if scope["path"] in self.unsampled else _current.tracer
        else:
            tracer = _tracer_under(trace.get_current_span(parent))
        span_ = tracer.start_span(method, context=parent, kind=SpanKind.SERVER)
        token = otel_context.attach(trace.set_span_in_context(span_, parent))
        header = (traceparent(span_) or "").encode()
        status = 500  # what an app that raised answers

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if header:
                    message.setdefault("headers", []).append((b"traceparent", header))
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except BaseException as exc:
            span_.record_exception(exc)
            raise
        finally:
            if span_.is_recording():  # the attributes of a span nothing records would cost for nothing
                attributes: dict[str, Any] = {"http.request.method": method, "http.response.status_code": status}
                route = getattr(scope.get("route"), "path", None)
                if route is not None:
                    span_.update_name(f"{method} {route}")
                    attributes["http.route"] = route
                span_.set_attributes(attributes)
                if status >= 500:
                    span_.set_status(Status(StatusCode.ERROR))
            span_.end()
            otel_context.detach(token)
