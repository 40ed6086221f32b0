"""The CLI against a fake gateway: an httpx MockTransport that answers from a table of routes
and records what it was sent. No server, no network."""

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from services.cli import client
from services.cli.main import app

Answer = httpx.Response | Callable[[httpx.Request], httpx.Response] | list[httpx.Response]


def reply(status: int = 200, body: Any = None, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body if body is not None else {}, headers=headers)


class FakeGateway:
    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Answer] = {}
        self.sent: list[httpx.Request] = []

    def on(self, method: str, path: str, answer: Answer) -> None:
        self.routes[(method, path)] = answer

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        answer = self.routes.get((request.method, request.url.path))
        if answer is None:
            return reply(404, {"detail": f"no route {request.method} {request.url.path} in the fake"})
        if isinstance(answer, list):  # answered in turn, the last one again and again
            return answer.pop(0) if len(answer) > 1 else answer[0]
        return answer(request) if callable(answer) else answer

    def bodies(self, method: str, path: str) -> list[Any]:
        return [json.loads(r.content) for r in self.sent if r.method == method and r.url.path == path]

    def paths(self, method: str) -> list[str]:
        return [r.url.path for r in self.sent if r.method == method]


@pytest.fixture
def fake(monkeypatch, tmp_path) -> FakeGateway:
    gateway = FakeGateway()
    monkeypatch.setattr(client, "TRANSPORT", httpx.MockTransport(gateway))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("DAPRML_URL", raising=False)
    monkeypatch.delenv("DAPRML_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)  # no .data/admin-key unless a test writes one
    return gateway


@pytest.fixture
def cli():
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None):
        return runner.invoke(app, list(args), env=env, prog_name="daprml")

    return run
