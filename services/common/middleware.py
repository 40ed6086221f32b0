"""What every service does to every request before its routes see it, as plain ASGI wrappers
(they leave streamed bodies alone):

- a request id: the caller's `X-Request-Id` when it is a sane one, else a new one; it is on the
  response, on every call this request makes to another service, and in every log line written
  while the request is handled (next to the W3C trace context Dapr propagates itself);
- the app token: a service behind its sidecar answers only requests that carry the token its
  sidecar was given (`dapr-api-token`), so nothing on the machine reaches it around Dapr.
  Health routes stay open: the sidecar's health probe and the stack's readiness check use them.
"""

import hmac
import json
import logging
import re
import uuid
from contextvars import ContextVar
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID = "x-request-id"
_SANE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
OPEN_PATHS = frozenset({"/healthz", "/readyz"})

request_id: ContextVar[str] = ContextVar("request_id", default="-")


class RequestIds:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given = _header(scope, REQUEST_ID.encode())
        rid = given if given and _SANE.match(given) else uuid.uuid4().hex
        token = request_id.set(rid)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((REQUEST_ID.encode(), rid.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)


class AppToken:
    def __init__(self, app: ASGIApp, token: str):
        self.app, self.token = app, token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        given = _header(scope, b"dapr-api-token", raw=True)
        if given is not None and hmac.compare_digest(given, self.token):
            return await self.app(scope, receive, send)
        body = json.dumps({"detail": "this service answers only its Dapr sidecar (no valid dapr-api-token)"})
        await send({"type": "http.response.start", "status": 401, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body.encode()})


def _header(scope: Scope, name: bytes, raw: bool = False) -> Any:
    for key, value in scope["headers"]:
        if key == name:
            return value if raw else value.decode("latin-1")
    return None


class WithRequestId(logging.Filter):
    """Puts the current request id on every log record (`%(request_id)s`; '-' outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True
