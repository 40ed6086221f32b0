"""How one event delivery is answered to Dapr: SUCCESS, RETRY or DROP."""

import asyncio

from services.common import events
from services.common.dapr_adapters import deliver
from services.common.events import EventType, RoundtripPing
from services.common.ports import SidecarUnavailable

PING = events.encode(
    EventType.ROUNDTRIP_PING, "/test", RoundtripPing(run_id="r1", blob_key="roundtrip/r1.json"), event_id="e1"
)


def answer(envelope: bytes, handler) -> str:
    return asyncio.run(deliver(envelope, EventType.ROUNDTRIP_PING, handler))


def test_a_valid_event_reaches_the_handler_with_attributes_and_payload():
    seen = []

    async def handler(attributes, payload):
        seen.append((attributes["id"], payload.run_id))

    assert answer(PING, handler) == "SUCCESS" and seen == [("e1", "r1")]


def test_an_invalid_event_is_dropped_without_calling_the_handler():
    async def handler(attributes, payload):
        raise AssertionError("must not be called")

    for body in (
        b"not json",
        b'{"type": "io.daprml.roundtrip.ping.v1", "data": {}}',
        b'{"type": "io.other", "data": {"run_id": "r", "blob_key": "k"}}',
    ):
        assert answer(body, handler) == "DROP"


def test_a_sidecar_failure_asks_for_a_retry():
    async def handler(attributes, payload):
        raise SidecarUnavailable("redis is down")

    assert answer(PING, handler) == "RETRY"


def test_a_handler_that_finds_the_event_invalid_drops_it_with_the_reason_logged(caplog):
    async def handler(attributes, payload):
        raise events.InvalidEvent("run r1 names a blob of another run")

    assert answer(PING, handler) == "DROP"
    assert "e1" in caplog.text and "run r1 names a blob of another run" in caplog.text


def test_any_other_failure_is_retried_with_the_reason_logged(caplog):
    async def handler(attributes, payload):
        raise RuntimeError("the model file is corrupt")

    assert asyncio.run(deliver(PING, EventType.ROUNDTRIP_PING, handler, "training", "run1.roundtrip")) == "RETRY"
    line = next(r.getMessage() for r in caplog.records if "corrupt" in r.getMessage())
    assert "e1" in line and "training on run1.roundtrip" in line
