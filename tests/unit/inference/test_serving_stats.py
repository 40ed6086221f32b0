"""Serving stats on inference: the data plane counts each request under its version (answered with
its latency, failed, refused), shadow copies apart; the counters go out cumulative, bounded,
when they changed, and a refused publish is tried again."""

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest

from services.common.contracts.monitoring import LATENCY_BOUNDS_MS
from services.common.events import EventType, ServingStats
from services.inference.dataplane import DataPlane
from services.inference.domain import records
from services.inference.domain.errors import BadRecord
from services.inference.metrics import InferenceMetrics
from services.inference.serving_stats import KEEPALIVE_S, ServingTally, instance_id
from services.inference.shadows import Shadows
from tests.fakes import FakePublisher
from tests.unit.inference.models import FLOWER_FEATURES, Registry, flower_model

ROWS = [{"length": 1.4, "width": 0.5, "colour": "red"}]
T0 = datetime(2025, 1, 31, 12, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now, self.mono = T0, 1000.0

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.mono += seconds


def tally(publisher: FakePublisher | None = None, clock: Clock | None = None, **kw) -> ServingTally:
    clock = clock or Clock()
    return ServingTally(publisher or FakePublisher(), 3504, clock=lambda: clock.now, monotonic=lambda: clock.mono, **kw)


def sent(publisher: FakePublisher) -> list[ServingStats]:
    assert {t for t, _, _ in publisher.sent} <= {EventType.INFERENCE_SERVING_STATS}
    return [p for _, p, _ in publisher.sent]  # type: ignore[misc]


def test_requests_are_counted_per_version_with_the_answered_ones_latency_in_cumulative_buckets():
    counts = tally()
    for seconds in (0.0005, 0.001, 0.004, 0.004, 45.0):  # 0.5 ms, 1 ms (on a bound), 4 ms twice, past 30 s
        counts.request("iris", 2, "answered", seconds)
    counts.request("iris", 2, "failed", 0.5)
    counts.request("iris", 2, "refused", 0.01)
    counts.request("iris", 1, "answered", 0.003)
    event = counts.event()
    v1, v2 = event.versions
    assert (v2.model, v2.version, v2.requests, v2.failures, v2.refused) == ("iris", 2, 5, 1, 1)
    assert event.latency_bounds_ms == list(LATENCY_BOUNDS_MS) and len(v2.latency_counts) == len(LATENCY_BOUNDS_MS) + 1
    assert v2.latency_counts[:4] == [2, 2, 4, 4]  # le 1, le 2, le 5, le 10
    assert v2.latency_counts[-2:] == [4, 5]  # le 30000, +Inf: every answered request
    assert (v1.version, v1.requests, v1.latency_counts[2], v1.failures) == (1, 1, 1, 0)


def test_a_version_that_only_failed_has_no_latency_and_the_event_checks_itself():
    counts = tally()
    counts.request("iris", 1, "failed", 0.2)
    (only,) = counts.event().versions
    assert only.failures == 1 and only.requests == 0 and only.latency_counts == []
    ServingStats.model_validate(counts.event().model_dump(mode="json"))  # what the monitor reads back


def test_the_instance_is_new_for_each_start_of_a_replica():
    first = instance_id("host", 3504, T0)
    assert first.startswith("host:3504:") and first != instance_id("host", 3504, T0 + timedelta(microseconds=1))
    later = Clock()
    later.advance(1)
    assert tally().instance != tally(clock=later).instance


def test_an_event_holds_at_most_the_bound_the_most_recently_served_and_says_how_many_were_left_out(caplog):
    counts = tally(max_versions=3)
    for version in range(1, 6):
        counts.request("iris", version, "answered", 0.01)
    counts.request("iris", 1, "answered", 0.01)  # served again: among the most recent now
    with caplog.at_level(logging.WARNING, "services.inference.serving_stats"):
        event = counts.event()
        counts.event()
    assert [v.version for v in event.versions] == [1, 4, 5] and event.left_out == 2
    assert len([r for r in caplog.records if "do not fit" in r.message]) == 1  # once, not at every event


def test_counters_are_sent_when_they_changed_again_after_the_keepalive_and_after_a_refused_publish():
    publisher, clock = FakePublisher(), Clock()
    counts = tally(publisher, clock)
    asyncio.run(counts.send())
    assert sent(publisher) == []  # nothing served yet
    counts.request("iris", 1, "answered", 0.01)
    asyncio.run(counts.send())
    clock.advance(5)
    asyncio.run(counts.send())
    assert [e.versions[0].requests for e in sent(publisher)] == [1]  # unchanged: not sent again
    counts.request("iris", 1, "answered", 0.01)
    publisher.down = True
    with pytest.raises(Exception, match="down"):
        asyncio.run(counts.send())
    publisher.down = False
    clock.advance(5)
    asyncio.run(counts.send())
    clock.advance(KEEPALIVE_S)
    asyncio.run(counts.send())
    events = sent(publisher)
    assert [e.versions[0].requests for e in events] == [1, 2, 2]
    assert events[0].instance == events[2].instance and events[0].at < events[1].at < events[2].at
    assert all(e.started_at == T0 for e in events)


@pytest.fixture
def registry() -> Registry:
    registry = Registry()
    registry.add("flowers", 1, flower_model(), FLOWER_FEATURES, aliases=("champion",))
    registry.add("flowers", 2, flower_model(c=0.05), FLOWER_FEATURES)
    return registry


def test_the_data_plane_counts_each_request_once_and_shadow_copies_apart(registry):
    registry.traffic("flowers", {"shadows": [{"version": 2, "percent": 100}]}, {"champion": 1})
    counts = tally()
    shadows = Shadows(InferenceMetrics(), max_pending=64, timeout_s=5, serving=counts)
    dp = DataPlane(registry.client, 4, shadows=shadows, serving=counts)

    def good(card):
        return records.columns(ROWS, card.features)

    def refused(card):
        raise BadRecord("the caller's fault")

    def broken(card):
        raise RuntimeError("the server's fault")

    async def scenario() -> None:
        for _ in range(3):
            await dp.infer("flowers", None, good)  # the champion, copied to the shadow
        await dp.infer("flowers", "2", good)  # the shadow's version named: a request of its own
        for decoder in (refused, broken):
            with pytest.raises(Exception, match="fault"):
                await dp.infer("flowers", "1", decoder)
        while shadows.pending:
            await asyncio.sleep(0.01)

    asyncio.run(scenario())
    by_version = {v.version: v for v in counts.event().versions}
    one, two = by_version[1], by_version[2]
    assert (one.requests, one.refused, one.failures, one.shadow_requests) == (3, 1, 1, 0)
    assert one.latency_counts[-1] == 3
    assert (two.requests, two.shadow_requests, two.shadow_failures, two.latency_counts[-1]) == (1, 3, 0, 1)


def test_a_shadow_that_cannot_answer_counts_as_a_shadow_failure(registry):
    registry.traffic("flowers", {"shadows": [{"version": 9, "percent": 100}]}, {"champion": 1})
    counts = tally()
    shadows = Shadows(InferenceMetrics(), max_pending=64, timeout_s=5, serving=counts)
    dp = DataPlane(registry.client, 4, shadows=shadows, serving=counts)

    async def scenario() -> None:
        await dp.infer("flowers", None, lambda card: records.columns(ROWS, card.features))
        while shadows.pending:
            await asyncio.sleep(0.01)

    asyncio.run(scenario())
    by_version = {v.version: v for v in counts.event().versions}
    assert by_version[9].shadow_failures == 1 and by_version[9].requests == 0 and by_version[1].requests == 1


def test_a_canary_that_cannot_load_counts_a_failure_for_each_request_it_was_given(registry):
    registry.traffic("flowers", {"canary": [{"version": 9, "percent": 99.9}]}, {"champion": 1})
    counts = tally()
    dp = DataPlane(registry.client, 4, serving=counts)
    dp.traffic.draw = lambda: 0.5  # every request drawn for the canary

    async def scenario() -> list[int]:
        return [
            (await dp.infer("flowers", None, lambda c: records.columns(ROWS, c.features))).version for _ in range(4)
        ]

    assert asyncio.run(scenario()) == [1, 1, 1, 1]  # the champion answered each
    by_version = {v.version: v for v in counts.event().versions}
    assert (by_version[9].failures, by_version[9].requests) == (4, 0) and by_version[1].requests == 4
