"""The operations service over fakes of its own ports (backends.py): Prometheus and the trace
backend, and the gateway built around them; shared by the operations tests."""

import json

from fastapi.testclient import TestClient

from services.common.ports import Reply
from services.gateway.app import create_app
from services.gateway.keys import Role
from services.gateway.operations.backends import BackendUnavailable, Series, Span, TraceSummary
from services.gateway.operations.service import Operations
from services.gateway.ports import GatewayPorts
from services.gateway.settings import Settings
from services.gateway.status.service import Status
from tests.api.conftest import provisioned
from tests.fakes import FakeInvoker, fake_ports

# A stack's app ids, as an isolated stack names them; one with characters PromQL and regexes treat specially.
APP_IDS = {
    "app_id": "gateway-1a2b",
    "ingestion_app_id": "ingestion-1a2b",
    "training_app_id": "training-1a2b",
    "registry_app_id": "registry.1a2b",
    "inference_app_id": 'inference"|.*-1a2b',
    "monitor_app_id": "monitor-1a2b",
    "notifier_app_id": "notifier-1a2b",
}
NOW = 1_800_000_030.0  # the 1h grid ends at 1_800_000_000
READY = Reply(200, json.dumps({"ready": True, "runtime_version": "1.18.2"}).encode())


class FakePrometheus:
    """Answers each query with what `answer(query, times)` gives, and keeps every query."""

    def __init__(self, answer=None, down: str | None = None):
        self.answer = answer or (lambda query, times: [])
        self.down = down
        self.ranges: list[tuple[str, float, float, int]] = []
        self.instants: list[str] = []

    async def range(self, query: str, start: float, end: float, step_s: int) -> list[Series]:
        self.ranges.append((query, start, end, step_s))
        if self.down:
            raise BackendUnavailable(self.down)
        times = [start + i * step_s for i in range(int((end - start) // step_s) + 1)]
        return self.answer(query, times)

    async def instant(self, query: str) -> list[Series]:
        self.instants.append(query)
        if self.down:
            raise BackendUnavailable(self.down)
        return self.answer(query, [NOW])


class FakeJaeger:
    def __init__(
        self, traces: list[TraceSummary], down: str | None = None, stored: dict[str, list[Span]] | None = None
    ):
        self.traces, self.down, self.stored = traces, down, stored or {}
        self.searches: list[tuple[str, int, int, int, int | None]] = []
        self.operations: list[str | None] = []
        self.looked_up: list[str] = []

    async def get(self, trace_id):
        self.looked_up.append(trace_id)
        if self.down:
            raise BackendUnavailable(self.down)
        return self.stored.get(trace_id)

    async def find(self, service, start_us, end_us, limit, min_duration_ms, operation=None):
        self.searches.append((service, start_us, end_us, limit, min_duration_ms))
        self.operations.append(operation)
        if self.down:
            raise BackendUnavailable(self.down)
        wanted = [
            t
            for t in self.traces
            if (min_duration_ms is None or t.duration_us >= min_duration_ms * 1000)
            and (operation is None or t.operation == operation)
        ]
        return wanted[:limit]


def gateway(metrics=None, traces=None, **settings) -> tuple[TestClient, dict[str, str], Settings]:
    """The gateway with the operations service over the fakes; its keys by role."""
    keys, secrets = provisioned(admin=[Role.ADMIN], reader=[Role.READER], predict=[Role.PREDICT])
    config = Settings(**(APP_IDS | {"traces_url": "http://127.0.0.1:16686/"} | settings))
    readyz = FakeInvoker({(app_id, "readyz"): READY for app_id in config.app_ids().values()})
    app = create_app(settings=config, ports=fake_ports(GatewayPorts, secrets=secrets, invoker=readyz))
    services = app.state.services
    services[Operations] = Operations(config, metrics, traces, services[Status], clock=lambda: NOW)
    client = TestClient(app)
    client.headers["authorization"] = f"Bearer {keys['reader']}"
    return client, keys, config
