"""The monitor keeps the inference replicas' serving stats per model: the newest event of an
instance wins (a repeat or an older one changes nothing), instances are summed, a forgotten or
evicted instance stays in the sums, and a late event of one is not counted twice. The evidence
reads the sums and each version's live metrics since a time."""

import asyncio
from datetime import timedelta

from services.common.contracts.monitoring import LATENCY_BOUNDS_MS, VersionServing
from services.common.events import ServingStats
from services.common.state import Documents
from services.monitor.domain.serving import ServingDocument
from services.monitor.serving import ServingKeeper, serving_key
from tests.fakes import FakeStateStore
from tests.unit.monitor.events import T0, logged, seconds
from tests.unit.monitor.test_feedback import Monitor

BUCKETS = len(LATENCY_BOUNDS_MS) + 1


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now


def entry(version: int, requests: int, failures: int = 0, model: str = "iris") -> VersionServing:
    latency = [requests] * BUCKETS if requests else []  # all under the first bound
    return VersionServing(model=model, version=version, requests=requests, failures=failures, latency_counts=latency)


def stats(instance: str, at_s: float, *versions: VersionServing, bounds=LATENCY_BOUNDS_MS) -> ServingStats:
    return ServingStats(
        instance=instance,
        started_at=T0 - timedelta(hours=1),
        at=T0 + seconds(at_s),
        latency_bounds_ms=list(bounds),
        versions=list(versions),
    )


class Keeper:
    def __init__(self, forget_h: float = 24, max_instances: int = 64):
        self.state, self.clock = FakeStateStore(), Clock()
        self.keeper = ServingKeeper(Documents(self.state, ServingDocument), forget_h, max_instances, self.clock)
        self.writes = 0
        save = self.state.save

        async def counted(*args, **kw):  # the fake's create saves through it too
            self.writes += 1
            return await save(*args, **kw)

        self.state.save = counted  # type: ignore[method-assign]

    def hear(self, *events: ServingStats) -> None:
        for event in events:
            asyncio.run(self.keeper.on_serving_stats({}, event))

    def totals(self, model: str = "iris") -> dict[int, tuple[int, int, int]]:
        found = asyncio.run(self.keeper.totals(model))
        return {v.version: (v.requests, v.failures, v.latency_counts[-1] if v.latency_counts else 0) for v in found}


def test_two_instances_are_summed_per_version_and_models_kept_apart():
    kept = Keeper()
    kept.hear(
        stats("a", 0, entry(1, 10), entry(2, 3, failures=1)), stats("b", 0, entry(1, 5), entry(1, 7, model="wine"))
    )
    assert kept.totals() == {1: (15, 0, 15), 2: (3, 1, 3)}
    assert kept.totals("wine") == {1: (7, 0, 7)}
    assert kept.totals("nothing") == {}


def test_the_newest_event_of_an_instance_wins_and_a_repeat_or_an_older_one_writes_nothing():
    kept = Keeper()
    newer, older = stats("a", 10, entry(1, 20)), stats("a", 5, entry(1, 12))
    kept.hear(newer)
    writes = kept.writes
    kept.hear(newer, older)
    assert kept.totals() == {1: (20, 0, 20)} and kept.writes == writes


def test_unchanged_counters_are_not_written_again_until_an_hour_passed():
    kept = Keeper()
    kept.hear(stats("a", 0, entry(1, 4)), stats("a", 5, entry(1, 4)))
    assert kept.writes == 1
    kept.hear(stats("a", 3600, entry(1, 4)))
    assert kept.writes == 2
    document = asyncio.run(Documents(kept.state, ServingDocument).get(serving_key("iris")))
    assert document is not None and document.instances["a"].at == T0 + seconds(3600)


def test_a_version_an_event_left_out_keeps_what_an_earlier_event_said():
    kept = Keeper()
    kept.hear(stats("a", 0, entry(1, 4), entry(2, 2)), stats("a", 5, entry(1, 9)))
    assert kept.totals() == {1: (9, 0, 9), 2: (2, 0, 2)}


def test_a_forgotten_instance_stays_in_the_sums_and_its_late_events_are_not_counted_twice():
    kept = Keeper(forget_h=24)
    kept.hear(stats("old", 0, entry(1, 10)))
    kept.clock.now = T0 + timedelta(hours=25)
    kept.hear(stats("new", 25 * 3600, entry(1, 1)))  # the next write forgets "old"
    document = asyncio.run(Documents(kept.state, ServingDocument).get(serving_key("iris")))
    assert document is not None and set(document.instances) == {"new"} and "old" in document.retired_ids
    assert kept.totals() == {1: (11, 0, 11)}  # the sums did not go down
    kept.hear(stats("old", 25 * 3600, entry(1, 30)))
    assert kept.totals() == {1: (11, 0, 11)}


def test_past_the_bound_the_least_recently_heard_instance_is_folded_into_the_sums():
    kept = Keeper(max_instances=2)
    kept.hear(stats("a", 0, entry(1, 1)), stats("b", 1, entry(1, 2)), stats("c", 2, entry(1, 4)))
    document = asyncio.run(Documents(kept.state, ServingDocument).get(serving_key("iris")))
    assert document is not None and set(document.instances) == {"b", "c"} and set(document.retired_ids) == {"a"}
    assert kept.totals() == {1: (7, 0, 7)}


def test_latency_made_with_other_bounds_is_left_out_but_the_requests_count():
    kept = Keeper()
    other = VersionServing(model="iris", version=1, requests=3, latency_counts=[1, 3])
    kept.hear(stats("a", 0, entry(1, 2)), stats("b", 0, other, bounds=[7.0]))
    assert kept.totals() == {1: (5, 0, 2)}


def test_live_evidence_counts_only_the_pairs_of_predictions_made_since_the_time_asked():
    monitor = Monitor()
    early = monitor.capture(logged(records=4, version=1, at=T0 - seconds(600)))  # predicted 0, 1, 0, 1
    late = monitor.capture(logged(records=2, version=2, at=T0 - seconds(30)))  # 0, 1
    late_one = monitor.capture(logged(records=2, version=1, at=T0 - seconds(20)))  # 0, 1
    monitor.send([*zip(early, [0, 1, 0, 1], strict=True), *zip(late, [0, 0], strict=True)])
    monitor.send(zip(late_one, [1, 1], strict=True))
    live = asyncio.run(monitor.live.since("iris", T0 - seconds(60)))
    by_version = {v.version: v for v in live.versions}
    assert live.primary == "accuracy" and not live.truncated
    assert by_version[1].metrics["accuracy"].value == 0.5 and by_version[1].count == 2  # the 4 early pairs left out
    assert by_version[2].metrics["accuracy"].value == 0.5 and by_version[2].count == 2
    everything = asyncio.run(monitor.live.since("iris", T0 - seconds(3600)))
    assert {v.version: v.count for v in everything.versions} == {1: 6, 2: 2}
    assert asyncio.run(monitor.live.since("unknown", T0)).versions == []
    assert asyncio.run(monitor.live.since("iris", T0 - timedelta(days=30))).truncated  # past what is held
