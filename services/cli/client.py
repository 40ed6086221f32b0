"""A small httpx wrapper over the gateway's public API: where it is, the key, and every
failure turned into one readable line with an exit code (see services/cli/__init__.py)."""

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
KEY_FILE = Path(".data") / "admin-key"  # the local stack's development key, relative to the current directory

OK, REFUSED, USAGE, UNREACHABLE, AUTH = 0, 1, 2, 3, 4

# Tests put an httpx.MockTransport here; None is the network.
TRANSPORT: httpx.BaseTransport | None = None


class CliError(Exception):
    """What the user sees: one line on stderr, and the exit code."""

    def __init__(self, message: str, code: int = REFUSED):
        super().__init__(message)
        self.code = code


def q(segment: object) -> str:
    """A name, version or id as one path segment: nothing in it can change the path or query."""
    return quote(str(segment), safe="")


def resolve_key(key: str | None) -> str | None:
    """--key or DAPRML_API_KEY (typer reads both into `key`), else the local stack's key file."""
    if key:
        return key.strip()
    try:
        return KEY_FILE.read_text().strip() or None
    except OSError:
        return None


def one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _where(loc: Any) -> str:
    parts = [str(p) for p in loc or [] if p not in ("body", "query", "path")]
    return ".".join(parts)


def server_message(reply: httpx.Response) -> str:
    """The server's own words: its `detail` (a string, or FastAPI's list of problems), else
    its `error`, else the start of the body."""
    try:
        body = reply.json()
    except ValueError:
        return one_line(reply.text) or reply.reason_phrase or "no message"
    detail = body.get("detail", body.get("error")) if isinstance(body, dict) else None
    if isinstance(detail, str):
        return one_line(detail)
    if isinstance(detail, list):
        problems = []
        for item in detail[:3]:
            if isinstance(item, dict):
                where = _where(item.get("loc"))
                problems.append(f"{where}: {item.get('msg', item)}" if where else str(item.get("msg", item)))
            else:
                problems.append(str(item))
        more = f" (and {len(detail) - 3} more)" if len(detail) > 3 else ""
        return one_line("; ".join(problems) + more)
    if detail is not None:
        return one_line(json.dumps(detail))
    return one_line(reply.text)


def error_of(reply: httpx.Response) -> CliError:
    message = f"{server_message(reply)} (HTTP {reply.status_code})"
    if reply.status_code in (401, 403):
        hint = "check --key, DAPRML_API_KEY or .data/admin-key"
        return CliError(f"{message}; {hint}", AUTH)
    return CliError(message, REFUSED)


def _retry_after(reply: httpx.Response) -> float:
    try:
        return min(max(float(reply.headers.get("retry-after", "1")), 0.1), 10.0)
    except ValueError:
        return 1.0


@dataclass
class Gateway:
    url: str
    key: str | None = None
    timeout: float = 120.0

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        headers = {"user-agent": "daprml-cli"}
        if self.key:
            headers["authorization"] = f"Bearer {self.key}"
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=self.timeout, transport=TRANSPORT)

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, *, ok: tuple[int, ...] = (), **kwargs: Any) -> httpx.Response:
        """The reply if it is a success (or its status is in `ok`), else a CliError; a 429 or
        503 is retried a few times, after the wait the gateway asks for (at most 10 s)."""
        for attempt in range(4):
            try:
                reply = self.http.request(method, path, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                raise CliError(
                    f"cannot reach the gateway at {self.url} (is the stack up? make up)", UNREACHABLE
                ) from exc
            except httpx.TimeoutException as exc:
                raise CliError(
                    f"the gateway at {self.url} did not answer within {self.timeout:g} s", UNREACHABLE
                ) from exc
            except httpx.HTTPError as exc:
                raise CliError(
                    f"talking to the gateway at {self.url} failed: {one_line(str(exc))}", UNREACHABLE
                ) from exc
            # 429: refused before anything was done, so any request may go again; 503 (a service
            # restarting): only reads and PUTs, which are safe to repeat.
            again = reply.status_code == 429 or (reply.status_code == 503 and method in ("GET", "PUT"))
            if not again or attempt == 3:
                break
            time.sleep(_retry_after(reply))
        if reply.is_success or reply.status_code in ok:
            return reply
        raise error_of(reply)

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean).json()

    def post(self, path: str, body: Any = None) -> Any:
        reply = self.request("POST", path, json=body) if body is not None else self.request("POST", path)
        return reply.json()

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, json=body).json()


def connect(url: str | None, key: str | None) -> Gateway:
    return Gateway(url or os.environ.get("DAPRML_URL") or DEFAULT_URL, resolve_key(key))
