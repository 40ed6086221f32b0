"""A stop takes a second, not the engine's 10 s grace, even when the sidecar has gone first.

In containers compose stops an app and its sidecar together, and the sidecar usually ends
first; the app's calls to it at shutdown (the heartbeat's leaving announcement, the prediction
log's last flush) then wait on a host that no longer exists, with no deadline, where locally the
sidecar's port refuses at once. Measured in compose before the bounds: the app's lifespan stayed
in such a gRPC call until the engine killed it, 10 s after the stop. Here the sidecar's calls
never answer, and the lifespan must still end within its bounds (each test waits 5 s at most,
so that it fails rather than hangs)."""

import asyncio
import logging
import time

import httpx
import pytest
from fastapi import FastAPI

from services.common.app import LEAVE_TIMEOUT_S, ServiceSpec, build_app
from services.common.ports import SidecarPorts
from services.common.settings import ServiceSettings
from services.inference.app import create_app as inference_app
from services.inference.ports import InferencePorts
from services.inference.prediction_log import CLOSE_TIMEOUT_S, PredictionLog
from services.inference.settings import Settings
from tests.fakes import FakeProbe, FakePublisher, fake_ports
from tests.unit.inference.models import FLOWER_FEATURES, Registry, flower_model

ROWS = [{"length": 1.4, "width": 0.5, "colour": "red"}, {"length": 6.1, "width": 2.0, "colour": "blue"}]
TEST_BOUND_S = 5.0


class GoneProbe(FakeProbe):
    """A sidecar that answers until `gone`, then never again (its container removed)."""

    def __init__(self) -> None:
        super().__init__()
        self.gone = False

    async def announce(self, heartbeat) -> None:
        if self.gone:
            await asyncio.Event().wait()
        await super().announce(heartbeat)


class GonePublisher(FakePublisher):
    def __init__(self) -> None:
        super().__init__()
        self.gone, self.attempts = False, 0

    async def publish_many(self, event_type, payloads) -> None:
        if self.gone:
            self.attempts += 1
            await asyncio.Event().wait()
        await super().publish_many(event_type, payloads)


async def until(check, timeout_s: float = TEST_BOUND_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "not reached in time"
        await asyncio.sleep(0.01)


async def stop_seconds(app: FastAPI, while_running) -> float:
    """Runs the app's lifespan, `while_running` inside it, then times its shutdown."""
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    try:
        await while_running()
    finally:
        t0 = time.monotonic()
        await asyncio.wait_for(lifespan.__aexit__(None, None, None), TEST_BOUND_S)
    return time.monotonic() - t0


def probe_service(probe) -> ServiceSpec:
    """A service of the kit with nothing but its heartbeats, through `probe`."""
    return ServiceSpec(
        title="probe",
        settings=ServiceSettings(app_id="probe", heartbeat_s=0.05, require_app_token=False),
        ports=fake_ports(SidecarPorts, probe=probe),
    )


def test_a_service_whose_sidecar_is_gone_stops_within_the_leaving_bound(caplog):
    probe = GoneProbe()
    spec = probe_service(probe)

    async def running() -> None:
        await until(lambda: len(probe.heartbeats) >= 2)  # the heartbeats go through, then the sidecar goes
        probe.gone = True

    with caplog.at_level(logging.INFO, logger="services.common.app"):
        seconds = asyncio.run(stop_seconds(build_app(spec), running))
    assert LEAVE_TIMEOUT_S <= seconds < LEAVE_TIMEOUT_S + 0.5
    assert "could not announce leaving: the sidecar did not answer within 1.0 s" in caplog.text
    assert not any(b.leaving for b in probe.heartbeats)


def test_inference_with_predictions_to_log_stops_within_its_bounds_when_its_sidecar_is_gone(caplog):
    registry = Registry()
    registry.add("flowers", 1, flower_model(), FLOWER_FEATURES, aliases=("champion",))
    probe, publisher = GoneProbe(), GonePublisher()
    ports = fake_ports(InferencePorts, invoker=registry.invoker, probe=probe, publisher=publisher)
    # Every call captured, flushed only at shutdown (the flushing task waits a minute).
    settings = Settings(heartbeat_s=0.05, prediction_log_rate=1.0, prediction_log_flush_s=60, serving_stats_s=0)
    app = inference_app(settings, ports)

    async def running() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://inference") as client:
            for _ in range(3):
                reply = await client.post("/api/models/flowers/predict", json={"records": ROWS})
                assert reply.status_code == 200, reply.text
        assert app.state.services[PredictionLog].counters["buffered"] == 3
        await until(lambda: len(probe.heartbeats) >= 1)
        probe.gone = publisher.gone = True

    with caplog.at_level(logging.INFO):
        seconds = asyncio.run(stop_seconds(app, running))
    assert seconds < LEAVE_TIMEOUT_S + CLOSE_TIMEOUT_S + 0.5
    assert publisher.attempts == 1  # the last flush tried, and was given up
    assert "the prediction log dropped 3 entries at shutdown: not published within 2.0 s" in caplog.text


@pytest.mark.parametrize("answers", [True, False])
def test_a_sidecar_that_answers_or_refuses_costs_a_stop_nothing(answers):
    """As locally: a sidecar there, or one whose port refuses (FakeProbe down), ends it at once."""
    probe = FakeProbe()
    spec = probe_service(probe)

    async def running() -> None:
        await until(lambda: len(probe.heartbeats) >= 1)
        probe.is_healthy = answers

    seconds = asyncio.run(stop_seconds(build_app(spec), running))
    assert seconds < 0.5
    assert probe.heartbeats[-1].leaving is answers
