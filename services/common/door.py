"""The HTTP server's own limits at the public door (the gateway), below the app: what uvicorn
0.54 does not bound by itself.

uvicorn's default parser (httptools) has no header size limit: a 64 MiB header took 4 s to
read, growing with the square of its size, and stalled every other client meanwhile. Nor has
uvicorn a timeout for reading a request, or a cap on connections. So the door runs uvicorn's h11
protocol, which refuses a request head past `max_header_bytes` as soon as that much arrived,
with these additions:

- a header larger than `max_header_line_bytes` is refused (431) before the app sees it;
- a request head must arrive whole within `header_timeout_s` of its first byte (or of the
  connection), and a body must not pause longer than `body_idle_timeout_s` between chunks
  (while the app reads it): otherwise 408 and the connection is closed;
- past `max_connections` open connections, a new one gets 503 and is closed at once;
- an idle keep-alive connection is closed after `keep_alive_s` (uvicorn's own timer).
"""

import asyncio
from typing import Any

import h11
from pydantic import Field
from uvicorn.protocols.http.h11_impl import H11Protocol

from services.common.settings import ServiceSettings

TIMED_OUT = 408
TOO_LARGE = 431
UNAVAILABLE = 503
HEAD_LATE = "the request headers did not arrive in time"


class DoorSettings(ServiceSettings):
    """The settings of a service that faces clients: its server's limits."""

    max_header_bytes: int = Field(32 * 1024, ge=1024)
    """Largest request head (request line and every header together); past it: 431."""
    max_header_line_bytes: int = Field(8 * 1024, ge=256)
    """Largest single header (name and value); past it: 431."""
    header_timeout_s: float = Field(10.0, gt=0)
    """How long a request head may take to arrive, from its first byte; past it: 408."""
    body_idle_timeout_s: float = Field(30.0, gt=0)
    """Longest pause between two chunks of a request body while it is read; past it: 408."""
    keep_alive_s: float = Field(5.0, gt=0)
    """How long an idle keep-alive connection stays open."""
    max_connections: int = Field(1000, ge=1)
    """Connections open at once; a new one past this gets 503 and is closed."""


def _raw_response(status: int, reason: str, text: str) -> bytes:
    body = text.encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class DoorProtocol(H11Protocol):
    """uvicorn's h11 protocol with the door's timeouts, header limits and connection cap.
    The limits come from `config.door` (a DoorSettings), which services.common.app.serve sets."""

    def __init__(self, config: Any, *args: Any, **kwargs: Any):
        super().__init__(config, *args, **kwargs)
        self.limits: DoorSettings = config.door
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse(UNAVAILABLE, "Service Unavailable", "too many connections; try again in a few seconds")
            return
        self._arm(self.limits.header_timeout_s, HEAD_LATE)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._timer is None and self.conn.their_state is h11.IDLE:
            # The first byte of the next request on a kept-alive connection: its head is timed.
            self._arm(self.limits.header_timeout_s, HEAD_LATE)
        super().data_received(data)
        if self.transport.is_closing():
            return
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            self._arm(self.limits.body_idle_timeout_s, "the request body stopped arriving")
        elif state is not h11.IDLE:
            self._disarm()  # the request is read whole (or the connection is done)

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers every request h11 cannot parse with 400; h11 refuses a head past its
        # limit that way too (hinting 431, which uvicorn drops): that one gets its own answer.
        if self.conn.their_state is h11.ERROR and self._head_too_large():
            self._refuse(TOO_LARGE, "Request Header Fields Too Large", "the request headers are too large")
            return
        super().send_400_response(msg)

    def _head_too_large(self) -> bool:
        # h11 keeps the bytes it could not parse: a head this long was refused for its size.
        return len(self.conn.trailing_data[0]) > self.limits.max_header_bytes

    def _arm(self, seconds: float, why: str) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, self._timed_out, seconds, why)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self, seconds: float, why: str) -> None:
        self._timer = None
        if self.flow.read_paused:  # the app is slow to read, not the client to send
            self._arm(seconds, why)
            return
        if self.cycle is not None and self.cycle.response_started:
            self.transport.close()
            return
        self._refuse(TIMED_OUT, "Request Timeout", f"{why} ({seconds:g} s)")

    def _refuse(self, status: int, reason: str, text: str) -> None:
        self._disarm()
        if self.cycle is not None:
            # The app, if it is reading the body, sees the client gone and stops.
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self.transport.write(_raw_response(status, reason, text))
        self.transport.close()


class HeaderLimit:
    """ASGI middleware: a request with a header longer than `max_bytes` (name and value) gets
    431 before the app sees it. (The head as a whole is bounded by the protocol already.)"""

    def __init__(self, app: Any, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            longest = max((len(k) + len(v) for k, v in scope["headers"]), default=0)
            if longest > self.max_bytes:
                body = f"a request header is {longest} bytes long; at most {self.max_bytes} are taken".encode()
                headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")]
                await send({"type": "http.response.start", "status": TOO_LARGE, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def server_options(limits: DoorSettings) -> dict[str, Any]:
    """uvicorn.Config keyword arguments for a server with the door's limits (the caller wraps
    its app in HeaderLimit and sets `config.door = limits`)."""
    return {
        "http": DoorProtocol,
        "h11_max_incomplete_event_size": limits.max_header_bytes,
        "timeout_keep_alive": limits.keep_alive_s,
    }
