"""Forwarding one public request to a named operation of an internal service, through Dapr.

The path that leaves the gateway is built from the operation's own segments and the route's
validated parameters, never from the client's path; only the query parameters the operation
declares and a few plain headers go along, and the caller's key name (ACTOR_HEADER), which the
services record as who asked (services/common/actor.py). Bodies stream through, bounded in size.
"""

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Self
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTask

from services.common.contracts.monitoring import ACTOR_HEADER
from services.common.errors import ClientError
from services.common.oip import ProtocolRoute
from services.common.ports import AnswerCutShort, ServiceInvoker, SidecarUnavailable, sidecar_error_code
from services.gateway import telemetry
from services.gateway.forwarding.breaker import Breaker, Breakers
from services.gateway.keys.domain import KeyRecord
from services.gateway.settings import Settings
from services.gateway.telemetry import GatewayMetrics

log = logging.getLogger(__name__)

# Request and reply headers worth passing on; hop-by-hop ones and anything else are not. Nor a
# client's traceparent: the call carries the gateway's own trace context (services.common.tracing).
# Nor a client's ACTOR_HEADER: the gateway sets its own (actor_headers). A route may pass on a
# header it validated itself (the predict routes' routing key): Upstream.forward's `headers`.
REQUEST_HEADERS = ("content-type", "content-length", "accept")
REPLY_HEADERS = ("content-type", "content-disposition", "retry-after", "x-sha256")
WITH_BODY = ("POST", "PUT", "PATCH")
ERROR_PEEK_BYTES = 64 * 1024


class BodyTooLarge(ClientError):
    status = 413


class Upstream:
    """One internal service, as the gateway's routes reach it: built once, for every request.
    Each service has a type of its own (below), so that a route asks for the one it forwards to."""

    service: str  # its name in Settings.app_ids()

    def __init__(
        self,
        invoker: ServiceInvoker,
        app_id: str,
        max_body_bytes: int,
        breaker: Breaker,
        metrics: GatewayMetrics | None = None,
    ):
        self.invoker, self.app_id, self.max_body_bytes, self.breaker = invoker, app_id, max_body_bytes, breaker
        self.metrics = metrics or GatewayMetrics()

    @classmethod
    def build(
        cls, invoker: ServiceInvoker, settings: Settings, breakers: Breakers, metrics: GatewayMetrics | None = None
    ) -> Self:
        app_id = settings.app_ids()[cls.service]
        return cls(invoker, app_id, settings.max_body_bytes, breakers.of(app_id), metrics)

    async def forward(
        self,
        request: Request,
        *segments: str,
        query: Mapping[str, object] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Sends the request to `segments` joined as a path (each one already validated by the
        route), with the given query parameters and the headers the route validated and passes
        on (beside REQUEST_HEADERS), and streams the answer back."""
        params = {k: str(v) for k, v in (query or {}).items() if v is not None}
        method = "/".join(segments) + (f"?{urlencode(params)}" if params else "")
        plain = {k: v for k, v in request.headers.items() if k in REQUEST_HEADERS}
        headers = plain | dict(headers or {}) | actor_headers(request)
        verb = request.method
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            raise self._too_large(declared)  # before a byte goes on
        if not self.breaker.allows():
            self._unavailable(telemetry.BREAKER_OPEN)
            wait_s = max(1, round(self.breaker.retry_after_s()))
            return _unavailable(
                request, f"the {self.app_id} service is failing; calls to it are held back for {wait_s}s", wait_s
            )
        try:
            reply = await self.invoker.forward(
                self.app_id, method, verb, headers, self._body(request) if verb in WITH_BODY else _nothing()
            )
        except SidecarUnavailable:
            self._failed(telemetry.SIDECAR_DOWN)
            raise
        except BaseException:
            self.breaker.released()  # the client's doing (a body too large), not the service's
            raise
        body = reply.body
        # A small answer is read whole before the status goes out: one its app did not finish
        # (it died while answering; its sidecar had sent the status on) is then a 503 worth
        # retrying, not a 200 without its body. A longer one streams, with its length: cut
        # short, its transfer breaks (AnswerCutShort at its end) and the client can tell.
        whole = reply.length is not None and reply.length <= ERROR_PEEK_BYTES
        head = b""
        if whole or reply.status >= 500:
            try:
                head = await _read_up_to(body, ERROR_PEEK_BYTES)
            except AnswerCutShort as exc:
                await reply.close()
                self._failed(telemetry.CUT_SHORT)
                log.warning("%s %s: %s", verb, request.url.path, exc)
                return _unavailable(request, f"{exc.public}; try again in a few seconds", 5)
            body = _prepend(head, body)
        if reply.status >= 500:
            # A 5xx from the sidecar itself (its JSON names an ERR_ code) means the app is down,
            # restarting or not registered yet: say so, as a 503 worth retrying, and count it
            # against the service's breaker. The app's own 5xx pass as they are, with the bytes
            # read to tell put back in front.
            code = sidecar_error_code(head)
            if code is not None:
                await reply.close()
                self._failed(telemetry.NOT_ANSWERING)
                log.warning(
                    "%s %s: the sidecar could not reach %s (%s): %s",
                    verb,
                    request.url.path,
                    self.app_id,
                    code,
                    head[:500],
                )
                return _unavailable(
                    request,
                    f"the {self.app_id} service is not answering (it may be restarting); try again in a few seconds",
                    5,
                )
        # Whatever the service answered, it answered: a client's 4xx never counts against it.
        self.breaker.succeeded()
        headers = {k: v for k, v in reply.headers.items() if k in REPLY_HEADERS}
        if reply.length is not None:
            headers["content-length"] = str(reply.length)
            body = self._counted(body)
        return StreamingResponse(
            body, status_code=reply.status, headers=headers, background=BackgroundTask(reply.close)
        )

    async def _counted(self, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """A streamed answer, counted like a 503 when it is cut short (its status has gone out:
        the error that follows only breaks the transfer, which the client sees as such)."""
        try:
            async for chunk in body:
                yield chunk
        except AnswerCutShort:
            self._failed(telemetry.CUT_SHORT)
            raise

    def _failed(self, reason: str) -> None:
        """A call the service did not take: counted, and against its breaker."""
        self._unavailable(reason)
        opened = self.breaker.trips
        self.breaker.failed()
        if self.breaker.trips > opened:
            self.metrics.breaker_opens.labels(self.service).inc()

    def _unavailable(self, reason: str) -> None:
        self.metrics.unavailable.labels(self.service, reason).inc()

    async def _body(self, request: Request) -> AsyncIterator[bytes]:
        """The request body as it arrives, refused once it passes the limit (a chunked body
        declares no length)."""
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise self._too_large(f"more than {self.max_body_bytes}")
            yield chunk

    def _too_large(self, size: str) -> BodyTooLarge:
        return BodyTooLarge(
            f"the body is {size} bytes; the gateway takes at most {self.max_body_bytes} bytes "
            f"per request: send a big file in parts (a multi-part upload)"
        )


def actor_headers(request: Request) -> dict[str, str]:
    """Names the caller to the service: the name of the key the gatekeeper admitted
    (access/service.py keeps it on the request). A route that needs no key names nobody."""
    caller = getattr(request.state, "caller", None)
    return {ACTOR_HEADER: caller.name} if isinstance(caller, KeyRecord) else {}


class Ingestion(Upstream):
    service = "ingestion"


class Training(Upstream):
    service = "training"


class Registry(Upstream):
    service = "registry"


class Inference(Upstream):
    service = "inference"


class Monitor(Upstream):
    service = "monitor"


def _unavailable(request: Request, why: str, retry_after_s: int) -> JSONResponse:
    # In the error shape of the protocol the route speaks: {"error"} on the OIP routes.
    key = "error" if isinstance(request.scope.get("route"), ProtocolRoute) else "detail"
    return JSONResponse({key: why}, status_code=503, headers={"retry-after": str(retry_after_s)})


async def _read_up_to(body: AsyncIterator[bytes], limit: int) -> bytes:
    head = b""
    async for chunk in body:
        head += chunk
        if len(head) >= limit:
            break
    return head


async def _prepend(head: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if head:
        yield head
    async for chunk in rest:
        yield chunk


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield
