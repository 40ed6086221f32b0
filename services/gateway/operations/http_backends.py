"""The backends of backends.py over HTTP (httpx): Prometheus' HTTP API and Jaeger's query API.

Each call is bounded (the setting operations_timeout_s, for the whole call, not per read) and
every failure becomes BackendUnavailable with words for the page: a console that polls must
never see a 500 because Prometheus is down. A client per call: the page asks every 10-15 s,
and nothing is held open between (a client made outside the serving event loop would be
bound to another one in tests).
"""

import asyncio
import math
import ssl
from typing import Any

import httpx

from services.gateway.operations.backends import BackendUnavailable, Series, Span, TraceSummary

_TLS = ssl.create_default_context()  # once: making one per client costs milliseconds
MAX_BYTES = 16 * 1024 * 1024  # an answer bigger than this is not read


class _Http:
    name = "backend"
    hint = ""

    def __init__(self, url: str, timeout_s: float, transport: httpx.AsyncBaseTransport | None = None):
        self.url, self.timeout_s, self.transport = url.rstrip("/"), timeout_s, transport

    async def _json(self, method: str, path: str, missing_ok: bool = False, **kwargs: Any) -> Any:
        """The answer's JSON; None for a 404 when missing_ok (a thing the backend does not have)."""
        try:
            async with asyncio.timeout(self.timeout_s):
                async with httpx.AsyncClient(
                    base_url=self.url, timeout=self.timeout_s, verify=_TLS, transport=self.transport
                ) as http:
                    reply = await http.request(method, path, **kwargs)
        except TimeoutError:
            raise BackendUnavailable(f"{self.name} at {self.url} did not answer within {self.timeout_s:g} s") from None
        except httpx.HTTPError as exc:
            raise BackendUnavailable(
                f"{self.name} is not answering at {self.url} ({type(exc).__name__}){self.hint}"
            ) from None
        if len(reply.content) > MAX_BYTES:
            raise BackendUnavailable(f"{self.name}'s answer was over {MAX_BYTES} bytes")
        if missing_ok and reply.status_code == 404:
            return None
        try:
            body = reply.json()
        except ValueError:
            raise BackendUnavailable(f"{self.name} at {self.url} answered HTTP {reply.status_code}, not JSON") from None
        if reply.status_code != 200:
            detail = body.get("error") or body.get("errors") if isinstance(body, dict) else None
            raise BackendUnavailable(f"{self.name} answered HTTP {reply.status_code}: {str(detail)[:300]}")
        return body


def _number(value: Any) -> float:
    """Prometheus' sample value (a string: "1.5", "NaN", "+Inf")."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


class PrometheusHttp(_Http):
    name = "Prometheus"
    hint = ": make up starts it (unless DAPRML_OBSERVABILITY=off)"

    async def range(self, query: str, start: float, end: float, step_s: int) -> list[Series]:
        data = await self._query("/api/v1/query_range", {"query": query, "start": start, "end": end, "step": step_s})
        return [
            Series(dict(r.get("metric", {})), [(float(t), _number(v)) for t, v in r.get("values", [])])
            for r in data.get("result", [])
        ]

    async def instant(self, query: str) -> list[Series]:
        data = await self._query("/api/v1/query", {"query": query})
        found = []
        for r in data.get("result", []):
            t, v = r.get("value", [0, "NaN"])
            found.append(Series(dict(r.get("metric", {})), [(float(t), _number(v))]))
        return found

    async def _query(self, path: str, form: dict[str, Any]) -> dict[str, Any]:
        # POSTed as a form: a long query never meets a URL length limit.
        body = await self._json("POST", path, data={k: str(v) for k, v in form.items()})
        if not isinstance(body, dict) or body.get("status") != "success" or not isinstance(body.get("data"), dict):
            raise BackendUnavailable(f"Prometheus did not answer the query: {str(body)[:300]}")
        data: dict[str, Any] = body["data"]
        return data


def _error(span: dict[str, Any]) -> bool:
    tags = {t.get("key"): t.get("value") for t in span.get("tags", []) if isinstance(t, dict)}
    return tags.get("error") in (True, "true") or tags.get("otel.status_code") == "ERROR"


def summary(trace: dict[str, Any]) -> TraceSummary | None:
    """One trace of Jaeger's answer: its root (the span no other span of it is the parent of,
    the earliest if several), its extent and its services; None for one without spans."""
    spans = [s for s in trace.get("spans", []) if isinstance(s, dict)]
    if not spans:
        return None
    processes = trace.get("processes", {})
    ids = {s.get("spanID") for s in spans}

    def service(span: dict[str, Any]) -> str:
        return str(processes.get(span.get("processID"), {}).get("serviceName", "?"))

    def has_parent_here(span: dict[str, Any]) -> bool:
        return any(r.get("spanID") in ids for r in span.get("references", []) if r.get("refType") == "CHILD_OF")

    roots = [s for s in spans if not has_parent_here(s)] or spans
    root = min(roots, key=lambda s: int(s.get("startTime", 0)))
    start = min(int(s.get("startTime", 0)) for s in spans)
    end = max(int(s.get("startTime", 0)) + int(s.get("duration", 0)) for s in spans)
    return TraceSummary(
        trace_id=str(trace.get("traceID") or root.get("traceID", "")),
        operation=str(root.get("operationName", "")),
        root_service=service(root),
        started_us=start,
        duration_us=end - start,
        spans=len(spans),
        services=sorted({service(s) for s in spans}),
        error=any(_error(s) for s in spans),
    )


class JaegerHttp(_Http):
    name = "The trace backend"
    hint = ": make up starts Jaeger (unless DAPRML_OBSERVABILITY=off)"

    async def find(
        self,
        service: str,
        start_us: int,
        end_us: int,
        limit: int,
        min_duration_ms: int | None,
        operation: str | None = None,
    ) -> list[TraceSummary]:
        params: dict[str, Any] = {"service": service, "start": start_us, "end": end_us, "limit": limit}
        if min_duration_ms is not None:
            params["minDuration"] = f"{min_duration_ms}ms"
        if operation is not None:
            params["operation"] = operation
        body = await self._json("GET", "/api/traces", params=params)
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            # Jaeger answers a search that found nothing with data: null, or an error for a service it never saw.
            if isinstance(body, dict) and body.get("data") is None and not body.get("errors"):
                return []
            raise BackendUnavailable(f"the trace backend did not answer the search: {str(body)[:300]}")
        return [s for trace in body["data"] if isinstance(trace, dict) and (s := summary(trace)) is not None]

    async def get(self, trace_id: str) -> list[Span] | None:
        # trace_id is 32 hex digits (the route checks it): nothing in it can change the path.
        body = await self._json("GET", f"/api/traces/{trace_id}", missing_ok=True)
        if body is None:
            return None
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            if isinstance(body, dict) and body.get("data") is None and not body.get("errors"):
                return None
            raise BackendUnavailable(f"the trace backend did not answer the trace: {str(body)[:300]}")
        found = [t for t in body["data"] if isinstance(t, dict) and str(t.get("traceID", "")).lower() == trace_id]
        return [span for trace in found for span in spans(trace)] or None


def _micros(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def spans(trace: dict[str, Any]) -> list[Span]:
    """The spans of one trace of Jaeger's answer, each with its process's service name."""
    processes = trace.get("processes") or {}
    found = []
    for s in trace.get("spans", []):
        if not isinstance(s, dict):
            continue
        process = processes.get(s.get("processID"), {}) if isinstance(processes, dict) else {}
        refs = [r for r in s.get("references") or [] if isinstance(r, dict)]
        # Its parent: the CHILD_OF reference (Jaeger puts it first), or else the one it follows from.
        parent = next((r for r in refs if r.get("refType") == "CHILD_OF"), refs[0] if refs else None)
        tags = {t["key"]: t.get("value") for t in s.get("tags") or [] if isinstance(t, dict) and "key" in t}
        found.append(
            Span(
                span_id=str(s.get("spanID", "")),
                parent_id=str(parent["spanID"]) if parent and parent.get("spanID") else None,
                service=str(process.get("serviceName", "?")) if isinstance(process, dict) else "?",
                operation=str(s.get("operationName", "")),
                start_us=_micros(s.get("startTime")),
                duration_us=_micros(s.get("duration")),
                tags=tags,
            )
        )
    return found
