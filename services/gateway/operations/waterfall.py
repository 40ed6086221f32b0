"""One trace as the console's waterfall draws it: its spans in start order, each with its depth
under its parent, its offset from the trace's start, whether it failed, and the few attributes
that are safe to show (a whitelist)."""

from typing import Any

from services.gateway.operations.backends import Span

MAX_SPANS = 1000  # shown of one trace: a waterfall longer than this is not read anyway
# The span attributes a trace view shows. A whitelist: spans may carry full URLs with their
# query strings (an API key in one), headers or peer addresses, which stay in the trace backend.
SAFE_TAGS = {
    "http.request.method": "http.method",
    "http.method": "http.method",
    "http.route": "http.route",
    "http.response.status_code": "http.status_code",
    "http.status_code": "http.status_code",
    "rpc.system": "rpc.system",
    "rpc.service": "rpc.service",
    "rpc.method": "rpc.method",
    "dapr.protocol": "dapr.protocol",
    "dapr.status_code": "dapr.status_code",
    "messaging.system": "messaging.system",
    "messaging.destination.name": "messaging.destination",
    "db.system": "db.system",
    "span.kind": "span.kind",
    "model": "model",
    "version": "version",
    "runtime": "runtime",
    "rows": "rows",
    "dataset": "dataset",
}
MAX_TAG_CHARS = 120


def failed(tags: dict[str, object]) -> bool:
    """A span marked as an error (OpenTelemetry's status, or the older `error` tag)."""
    return tags.get("error") in (True, "true") or tags.get("otel.status_code") == "ERROR"


def safe_tags(tags: dict[str, object]) -> dict[str, str | int | float | bool]:
    """The whitelisted attributes, renamed to one name each, strings cut short and never past a `?`."""
    kept: dict[str, str | int | float | bool] = {}
    for key, name in SAFE_TAGS.items():
        value = tags.get(key)
        if isinstance(value, str):
            kept.setdefault(name, value.split("?", 1)[0][:MAX_TAG_CHARS])
        elif isinstance(value, bool | int | float):
            kept.setdefault(name, value)
    return kept


def waterfall(spans: list[Span]) -> list[dict[str, Any]]:
    """The spans in start order, each with its depth (ancestors in the trace) and its offset from
    the first span's start; a span whose parent is not in the trace is a root."""
    by_id = {s.span_id: s for s in spans}
    depths: dict[str, int] = {}

    def depth(span: Span) -> int:
        # Up the parents to one whose depth is known (or a root), iteratively: a deep trace cannot
        # overflow the stack, and a loop (a broken trace) ends where it closes.
        path: list[str] = []
        current: Span | None = span
        while current is not None and current.span_id not in depths and current.span_id not in path:
            path.append(current.span_id)
            current = by_id.get(current.parent_id) if current.parent_id else None
        base = depths.get(current.span_id, -1) if current is not None else -1
        for offset, span_id in enumerate(reversed(path), start=1):
            depths[span_id] = base + offset
        return depths[span.span_id]

    start = min(s.start_us for s in spans)
    ordered = sorted(spans, key=lambda s: (s.start_us, depth(s), s.span_id))
    return [
        {
            "span_id": s.span_id,
            "parent_id": s.parent_id,
            "depth": depth(s),
            "service": s.service,
            "operation": s.operation.split("?", 1)[0][: MAX_TAG_CHARS * 2],  # a span named after a raw URL
            "start_ms": round((s.start_us - start) / 1000, 3),
            "duration_ms": round(s.duration_us / 1000, 3),
            "error": failed(s.tags),
            "tags": safe_tags(s.tags),
        }
        for s in ordered
    ]
