"""The ServiceInvoker port: calls to other apps through the sidecar's HTTP API, which keeps the
callee's status code and content type intact, but not its Content-Length: an answer whose app
died while sending it ends early as if complete (daprd has passed on the status already). Our
apps repeat the length in BODY_LENGTH (services.common.middleware), and an answer that ends
short of it is AnswerCutShort here, not a short success."""

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import httpx

from services.common import middleware
from services.common.dapr_adapters.sidecar import Sidecar
from services.common.ports import AnswerCutShort, Reply, SidecarUnavailable, StreamedReply, sidecar_error_code

# App ids and the segments of a method path: what our own code builds, nothing a client could
# bend. httpx collapses '.' and '..' segments and the sidecar decodes %2F, so either would let
# a path leave /v1.0/invoke/<app>/method/ for the sidecar's own API.
_APP_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_QUERY = re.compile(r"^[A-Za-z0-9_.~%&=+-]*$")


class UnsafePath(ValueError):
    """A method path that is not plain segments: refused before anything is sent."""


def invoke_path(app_id: str, method: str) -> str:
    """/v1.0/invoke/<app>/method/<method>, after checking every part is a plain segment."""
    path, _, query = method.partition("?")
    if not _APP_ID.match(app_id):
        raise UnsafePath(f"refusing to invoke app id {app_id!r}")
    segments = path.split("/")
    if not all(_SEGMENT.match(seg) and seg.strip(".") for seg in segments) or not _QUERY.match(query):
        raise UnsafePath(f"refusing to invoke method {method!r} on {app_id}: only plain path segments")
    return f"/v1.0/invoke/{app_id}/method/{method}"


class DaprInvoker:
    def __init__(self, sidecar: Sidecar):
        self.sidecar = sidecar

    async def call(
        self, app_id: str, method: str, http_verb: str = "GET", body: bytes = b"", headers: dict[str, str] | None = None
    ) -> Reply:
        sidecar = self.sidecar

        async def once(may_retry: bool) -> Reply | None:
            reply = await sidecar.http.request(
                http_verb,
                invoke_path(app_id, method),
                content=body,
                headers=_with_request_id(headers),
                timeout=sidecar.settings.call_timeout_s,
            )
            declared = declared_length(reply.headers, http_verb)
            if declared is not None and len(reply.content) != declared:
                if may_retry:
                    return None
                raise cut_short(app_id, method, len(reply.content), declared)
            if may_retry and _unreached(reply.status_code, reply.content):
                return None
            return Reply(reply.status_code, reply.content, reply.headers.get("content-type", ""))

        return await _with_retries(
            http_verb, once, f"invoking {app_id}/{method} through {sidecar.http_url}", f"the {app_id} service"
        )

    async def forward(
        self, app_id: str, method: str, http_verb: str, headers: dict[str, str], body: AsyncIterator[bytes]
    ) -> StreamedReply:
        sidecar = self.sidecar

        async def once(may_retry: bool) -> StreamedReply | None:
            request = sidecar.http.build_request(
                http_verb,
                invoke_path(app_id, method),
                headers=_with_request_id(headers),
                content=body if http_verb in ("POST", "PUT", "PATCH") else None,
                timeout=sidecar.settings.call_timeout_s,
            )
            reply = await sidecar.http.send(request, stream=True)
            if not (may_retry and reply.status_code >= 500):
                declared = declared_length(reply.headers, http_verb)
                answer = _measured(reply.aiter_raw(), declared, app_id, method)
                return StreamedReply(reply.status_code, dict(reply.headers), answer, reply.aclose, declared)
            # Small enough to read whole: an idempotent request's error answer.
            content = await reply.aread()
            await reply.aclose()
            if _unreached(reply.status_code, content):
                return None
            return StreamedReply(reply.status_code, dict(reply.headers), _once(content), _nothing_to_close)

        return await _with_retries(
            http_verb, once, f"forwarding to {app_id}/{method} through {sidecar.http_url}", f"the {app_id} service"
        )


def declared_length(headers: httpx.Headers, http_verb: str) -> int | None:
    """The length the app said its answer has (BODY_LENGTH), when it said one (a HEAD's answer
    says the length of a body it does not send)."""
    value = headers.get(middleware.BODY_LENGTH, "")
    plain = http_verb != "HEAD" and "content-encoding" not in headers  # else .content is not what was sent
    return int(value) if value.isdigit() and plain else None


def cut_short(app_id: str, method: str, got: int, declared: int) -> AnswerCutShort:
    return AnswerCutShort(
        f"the answer of {app_id}/{method} ended after {got} of the {declared} bytes it declared",
        f"the {app_id} service's answer was cut short (it may be restarting)",
    )


async def _measured(body: AsyncIterator[bytes], declared: int | None, app_id: str, method: str) -> AsyncIterator[bytes]:
    """The body as it arrives; AnswerCutShort at its end when it was not as long as declared."""
    got = 0
    async for chunk in body:
        got += len(chunk)
        yield chunk
    if declared is not None and got != declared:
        raise cut_short(app_id, method, got, declared)


def _with_request_id(headers: dict[str, str] | None) -> dict[str, str]:
    """The call carries the id of the request it is made for (see middleware.py)."""
    rid = middleware.request_id.get()
    given = dict(headers or {})
    if rid != "-" and not any(k.lower() == middleware.REQUEST_ID for k in given):
        given[middleware.REQUEST_ID] = rid
    return given


# A GET or HEAD whose call did not reach the app (its sidecar, or the callee's, answered with an
# ERR_ code: the app restarting, a replica just gone) goes again after each of these waits; other
# requests are sent once (an upload or a commit is not safe to send twice). The resiliency policy
# retries calls to inference in the sidecar already; these cover the rest.
_RETRY_DELAYS_S = (0.1, 0.3)
_IDEMPOTENT = ("GET", "HEAD")


def _unreached(status: int, body: bytes) -> bool:
    return status >= 500 and sidecar_error_code(body) is not None


T = TypeVar("T")


async def _with_retries(http_verb: str, attempt: Callable[[bool], Awaitable[T | None]], doing: str, service: str) -> T:
    """Calls attempt(may_retry) until it returns an answer: it returns None for a call that did
    not reach the app, which goes again while the verb is idempotent and tries are left; a
    connection failure to the sidecar goes again the same way, and is SidecarUnavailable after."""
    for delay_s in (*_RETRY_DELAYS_S, None):
        may_retry = delay_s is not None and http_verb in _IDEMPOTENT
        try:
            answer = await attempt(may_retry)
        except httpx.HTTPError as exc:
            if not may_retry:
                raise SidecarUnavailable(f"{doing} failed: {exc}", f"{service} cannot be reached") from exc
            answer = None
        if answer is not None:
            return answer
        await asyncio.sleep(delay_s or 0)
    raise AssertionError("unreachable: the last attempt returns or raises")


async def _once(content: bytes) -> AsyncIterator[bytes]:
    yield content


async def _nothing_to_close() -> None:
    return None
