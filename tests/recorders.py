"""What a test records of the kit's side effects: the spans made (the OpenTelemetry SDK's own
in-memory exporter) and the lines a logger wrote through a handler like serve()'s."""

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.common import tracing
from services.common.middleware import WithRequestId


@contextmanager
def recorded_spans() -> Iterator[InMemorySpanExporter]:
    """Spans made inside the block, kept in memory; the provider before it is put back after."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    before = tracing._current.provider
    tracing.use(provider)
    try:
        yield exporter
    finally:
        tracing.use(before)


@contextmanager
def written_log(name: str, fmt: str) -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing through a handler with the kit's filter and this format; the text it
    wrote."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(WithRequestId())
    handler.setFormatter(logging.Formatter(fmt))
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    logger.propagate, level = False, logger.level
    logger.setLevel(logging.INFO)
    try:
        yield logger, out
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
