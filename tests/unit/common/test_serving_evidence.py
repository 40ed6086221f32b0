"""The rollouts' evidence words (services/common/contracts/monitoring.py): the latency quantile
between two readings of a cumulative histogram, what a version served between two readings of
the evidence, and the serving-stats event's own checks."""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.common.contracts.monitoring import (
    LATENCY_BOUNDS_MS,
    Evidence,
    LiveEvidence,
    ServingCounters,
    VersionServing,
    quantile_ms,
)
from services.common.events import ServingStats

BOUNDS = [10.0, 20.0, 50.0]
T0 = datetime(2025, 1, 31, 12, tzinfo=UTC)


def test_a_quantile_interpolates_within_its_bucket_as_prometheus_does():
    # 100 requests: 50 at most 10 ms, 40 in (10, 20], 10 in (20, 50], none beyond.
    now = [50, 90, 100, 100]
    assert quantile_ms(BOUNDS, [], now, 0.5) == pytest.approx(10.0)
    assert quantile_ms(BOUNDS, [], now, 0.25) == pytest.approx(5.0)  # from 0 in the first bucket
    assert quantile_ms(BOUNDS, [], now, 0.7) == pytest.approx(15.0)
    assert quantile_ms(BOUNDS, [], now, 0.99) == pytest.approx(20 + 30 * 0.9)


def test_a_quantile_between_two_readings_counts_only_the_requests_in_between():
    before = [50, 90, 100, 100]  # all fast
    now = [50, 90, 100, 200]  # then 100 more, every one past the highest bound
    assert quantile_ms(BOUNDS, before, now, 0.5) == 50.0  # +Inf bucket: the highest bound is all that is known
    assert quantile_ms(BOUNDS, before, before, 0.99) is None  # nothing in between
    assert quantile_ms(BOUNDS, [], [], 0.99) is None


def test_a_quantile_refuses_counts_that_do_not_fit_or_go_down():
    with pytest.raises(ValueError, match="need 4 counts"):
        quantile_ms(BOUNDS, [], [1, 2], 0.5)
    with pytest.raises(ValueError, match="went down"):
        quantile_ms(BOUNDS, [5, 5, 5, 5], [1, 2, 3, 4], 0.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        quantile_ms(BOUNDS, [], [1, 1, 1, 1], 99)


def cumulative(*per_bucket: int) -> list[int]:
    out, total = [], 0
    for n in per_bucket:
        total += n
        out.append(total)
    return out


def evidence(at: datetime, *serving: VersionServing) -> Evidence:
    return Evidence(
        model="iris",
        since=T0,
        at=at,
        latency_bounds_ms=list(LATENCY_BOUNDS_MS),
        serving=list(serving),
        shadows=[],
        live=LiveEvidence(task=None, primary=None, versions=[], truncated=False),
    )


def served(version: int, requests: int, failures: int, fast: int) -> VersionServing:
    """`fast` requests under 1 ms, the others between 500 ms and 1 s."""
    buckets = [fast] + [0] * 8 + [requests - fast] + [0] * 5
    return VersionServing(
        model="iris", version=version, requests=requests, failures=failures, latency_counts=cumulative(*buckets)
    )


def test_a_delta_is_what_a_version_served_between_two_readings_with_its_error_rate_and_p99():
    start = evidence(T0, served(1, 100, 0, 100), served(2, 10, 0, 10))
    now = evidence(T0 + timedelta(minutes=5), served(1, 300, 2, 298), served(2, 60, 10, 10))
    champion, candidate = now.delta(1, start), now.delta(2, start)
    assert (champion.requests, champion.failures) == (200, 2)
    assert champion.error_rate == pytest.approx(2 / 202)
    assert champion.latency_ms(0.99) == pytest.approx(1.0)  # 198 of 200 under 1 ms: p99 in the first bucket
    assert (candidate.requests, candidate.failures, candidate.error_rate) == (50, 10, pytest.approx(10 / 60))
    assert 500 < candidate.latency_ms(0.99) <= 1000  # all 50 new ones were slow
    assert now.delta(3, start).error_rate is None and now.delta(3, start).latency_ms(0.99) is None
    assert now.delta(1, None).requests == 300  # no earlier reading: since the counters began


def test_counters_sum_and_refuse_histograms_of_other_lengths():
    a = ServingCounters(requests=2, failures=1, latency_counts=[1, 2])
    b = ServingCounters(requests=3, shadow_requests=4, latency_counts=[0, 3])
    assert a.plus(b) == ServingCounters(requests=5, failures=1, shadow_requests=4, latency_counts=[1, 5])
    assert a.plus(ServingCounters(failures=1)).latency_counts == [1, 2]
    with pytest.raises(ValueError, match="cannot be summed"):
        a.plus(ServingCounters(requests=1, latency_counts=[1, 1, 1]))
    with pytest.raises(ValidationError, match="cumulative"):
        ServingCounters(requests=2, latency_counts=[2, 1])


def test_a_serving_stats_event_refuses_a_version_twice_a_time_before_its_start_and_odd_histograms():
    entry = {"model": "iris", "version": 1, "requests": 1, "latency_counts": [0, 1]}
    good = {"instance": "h:3500:x", "started_at": T0, "at": T0, "latency_bounds_ms": [5.0], "versions": [entry]}
    assert ServingStats.model_validate(good).versions[0].requests == 1
    with pytest.raises(ValidationError, match="twice"):
        ServingStats.model_validate(good | {"versions": [entry, entry]})
    with pytest.raises(ValidationError, match="before the instance started"):
        ServingStats.model_validate(good | {"at": T0 - timedelta(seconds=1)})
    with pytest.raises(ValidationError, match="one count per bound"):
        ServingStats.model_validate(good | {"latency_bounds_ms": [5.0, 10.0]})
    with pytest.raises(ValidationError):
        ServingStats.model_validate(good | {"versions": [entry | {"version": i} for i in range(1, 202)]})
