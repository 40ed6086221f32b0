"""How long the monitor keeps a rollout's shadow agreement: reading it means reading captured
answers, but a step's first readings cover few of them and must not be held while more come."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from services.common.contracts.monitoring import LiveEvidence
from services.monitor import evidence
from services.monitor.evidence import EvidenceService, kept_for

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def test_an_answer_is_kept_a_tenth_of_the_time_it_covers_at_most_the_cache_setting():
    assert kept_for(10, T0, T0 + timedelta(seconds=20)) == 2.0
    assert kept_for(10, T0, T0 + timedelta(minutes=10)) == 10
    assert kept_for(10, T0, T0) == 0.0 and kept_for(10, T0 + timedelta(seconds=5), T0) == 0.0


class Nothing:
    """The serving counters and live metrics, which are read anew each time (not what is tested)."""

    async def totals(self, model):
        return []

    async def since(self, model, since):
        return LiveEvidence(task=None, primary=None, versions=[], truncated=False)


def test_a_young_steps_agreement_is_read_again_soon_an_old_steps_is_kept(monkeypatch: pytest.MonkeyPatch):
    computed: list[datetime] = []

    async def agreement(tables, model, since, now, max_rows, max_parts):
        computed.append(now)
        return []

    monkeypatch.setattr(evidence, "agreement", agreement)
    clock = [T0 + timedelta(seconds=20)]
    service = EvidenceService(Nothing(), None, Nothing(), 100, 10, cache_s=10, clock=lambda: clock[0])  # type: ignore[arg-type]

    async def read_at(seconds_after_t0: float, since: datetime = T0) -> None:
        clock[0] = T0 + timedelta(seconds=seconds_after_t0)
        await service.of("iris", since)

    for at in (20, 21, 22.5, 23):  # 20 s into the step: kept 2 s
        asyncio.run(read_at(at))
    assert [(c - T0).total_seconds() for c in computed] == [20, 22.5]
    computed.clear()
    for at in (600, 605, 609, 611):  # 10 minutes in: kept the full 10 s
        asyncio.run(read_at(at))
    assert [(c - T0).total_seconds() for c in computed] == [600, 611]
