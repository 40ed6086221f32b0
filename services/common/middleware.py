"""What every service does to every request before its routes see it, as plain ASGI wrappers
(they leave streamed bodies alone):

- the body's length again, in BODY_LENGTH: daprd drops an answer's Content-Length on the way
  to the caller and, when the app dies in the middle of an answer, ends what it already began
  to send as if it were complete (a 200 with half a body, or none); the caller's side compares
  (dapr_adapters/invoke.py), so a cut answer is an error and not a short success;
- a request id: the caller's `X-Request-Id` when it is a sane one, else a new one; it is on the
  response, on every call this request makes to another service, and in every log line written
  while the request is handled, next to the id of the trace the request is part of
  (services.common.tracing);
- the app token: a service behind its sidecar answers only requests that carry the token its
  sidecar was given (`dapr-api-token`), so nothing on the machine reaches it around Dapr.
  Health routes stay open: the sidecar's health probe and the stack's readiness check use them.
  With `only`, it guards just those path prefixes: the gateway, which clients call with API
  keys, asks for it only on the routes its sidecar calls (/dapr/..., /internal/...);
- log lines without secrets: the filter on every service's log handler (WithRequestId) puts the
  request id and the trace id on each record and takes out what must not be written: the value
  of any query parameter whose name suggests a secret (uvicorn's access log and httpx's request
  lines write whole URLs) and anything shaped like an API key, wherever it is in the line or
  its traceback.
"""

import hmac
import json
import logging
import re
import uuid
from contextvars import ContextVar
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common import tracing

REQUEST_ID = "x-request-id"
BODY_LENGTH = "x-body-length"  # an answer's Content-Length, as the app sent it (see above)
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
                headers = message.setdefault("headers", [])
                length = next((value for key, value in headers if key == b"content-length"), None)
                headers.append((REQUEST_ID.encode(), rid.encode()))
                if length is not None:
                    headers.append((BODY_LENGTH.encode(), length))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)


class AppToken:
    def __init__(self, app: ASGIApp, token: str, only: tuple[str, ...] | None = None):
        """`only`: path prefixes the token is asked for on (None: every path but the health routes)."""
        self.app, self.token, self.only = app, token, only

    def _guarded(self, path: str) -> bool:
        if self.only is not None:
            return path.startswith(self.only)
        return path not in OPEN_PATHS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._guarded(scope["path"]) or carries_app_token(scope, self.token):
            return await self.app(scope, receive, send)
        body = json.dumps({"detail": "this service answers only its Dapr sidecar (no valid dapr-api-token)"})
        await send({"type": "http.response.start", "status": 401, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body.encode()})


def _header(scope: Scope, name: bytes, raw: bool = False) -> Any:
    for key, value in scope["headers"]:
        if key == name:
            return value if raw else value.decode("latin-1")
    return None


def carries_app_token(scope: Scope, token: str) -> bool:
    """Whether a request carries this app's token (compared in constant time)."""
    given = _header(scope, b"dapr-api-token", raw=True)
    return given is not None and hmac.compare_digest(given, token.encode())


# A query parameter whose name has one of these in it (api_key, access_token, X-Amz-Signature,
# password, ...) keeps its name in a log line, never its value.
_SECRET_NAME = r"[^=&\s\"';?]*(?:key|token|secret|passw|pwd|auth|credential|signature|session|cookie)[^=&\s\"';?]*"
_SECRET_PARAM = re.compile(rf"([?&;]{_SECRET_NAME}=)[^&\s\"';#]*", re.IGNORECASE)
# An API key (dml_<id>_<secret>), also one a little malformed: its id may stay, its secret not.
_KEY_LIKE = re.compile(r"(dml_[0-9A-Fa-f]{4,32}_)[A-Za-z0-9_-]{8,}")
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """The text without secret query parameter values or API key secrets."""
    return _KEY_LIKE.sub(rf"\1{REDACTED}", _SECRET_PARAM.sub(rf"\1{REDACTED}", text))


class WithRequestId(logging.Filter):
    """Puts the current request id (`%(request_id)s`) and trace id (`%(trace_id)s`, 32 hex
    digits) on every log record, '-' outside a request or a trace, and takes secrets out of it
    (see redact): it is on the one handler every service logs through
    (services.common.app.serve), so nothing else writes a line it has not seen."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = redact(request_id.get())  # a sane id may still be a key a client sent as one
        record.trace_id = tracing.trace_id()
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format: logging reports it as it writes
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            # Rendered here, as the formatter would, so that the traceback is redacted too.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
