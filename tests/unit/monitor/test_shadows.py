"""Shadow versions' answers in the monitor: captured beside the answers the callers got (same
prediction ids, kept apart by version), read back by shadow version and never among the served
predictions, and joined with the served answers into each shadow's agreement."""

import asyncio
from datetime import timedelta

from services.common.contracts.monitoring import new_call_id
from services.monitor.capture import Capture, CaptureLimits
from services.monitor.domain.pages import Cursor
from services.monitor.domain.rows import rows_of
from services.monitor.metrics import MonitorMetrics
from services.monitor.shadows import Agreements, agreement
from services.monitor.tables import InferenceTables
from tests.fakes import FakeStateStore
from tests.unit.monitor.events import T0, logged
from tests.unit.monitor.test_tables import CountingBlobs


def tables() -> InferenceTables:
    return InferenceTables(FakeStateStore(), CountingBlobs(), 1000, 200, MonitorMetrics())


def call_and_shadows(records: int, shadows: dict[int, list[int]]):
    """One call served by version 1 (class i % 2 for record i) and each shadow version's answers
    to its copy (the classes given), as the prediction log publishes them."""
    call_id = new_call_id()
    served = logged(records=records, call_id=call_id)
    copies = [
        logged(records=records, call_id=call_id, version=v, at=T0 + timedelta(milliseconds=20), shadow=True)
        for v in shadows
    ]
    for copy, classes in zip(copies, shadows.values(), strict=True):
        copy.predictions = classes
    return served, copies


def test_a_batch_keeps_the_served_answers_and_each_shadow_s_though_they_share_prediction_ids():
    store = tables()
    capture = Capture(
        store, CaptureLimits(max_rows=1000, max_events=3, max_wait_s=5, max_held_rows=10_000), MonitorMetrics()
    )
    served, copies = call_and_shadows(4, {2: [0, 1, 0, 1], 3: [1, 1, 1, 1]})

    async def deliver() -> None:
        await asyncio.gather(*(capture.take(rows_of(event)[0]) for event in [served, *copies]))

    asyncio.run(deliver())
    page = asyncio.run(store.page("iris", Cursor(None, None), 100))
    assert [r.version for r in page.predictions] == [1, 1, 1, 1] and not any(r.shadow for r in page.predictions)
    for version in (2, 3):
        shadow = asyncio.run(store.page("iris", Cursor(None, None), 100, shadow=version)).predictions
        assert [r.prediction_id for r in shadow] == [r.prediction_id for r in page.predictions]
        assert all(r.shadow and r.version == version for r in shadow)


def test_a_shadow_s_agreement_is_the_share_of_its_answers_equal_to_those_served():
    store = tables()
    served, copies = call_and_shadows(4, {2: [0, 1, 0, 0], 3: [1, 0, 1, 0]})
    rows = [row for event in [served, *copies] for row in rows_of(event)[0]]
    asyncio.run(store.write(rows))
    reports = asyncio.run(agreement(store, "iris", None, T0 + timedelta(minutes=1), 1000, 100))
    assert [(r.version, r.answers, r.pairs, r.agreement) for r in reports] == [(2, 4, 4, 0.75), (3, 4, 4, 0.0)]
    assert reports[0].served_by == {"1": 4} and reports[0].mean_abs_difference == 0.25  # classes 0/1 are numbers too


def test_a_shadow_answer_whose_served_answer_is_not_captured_counts_but_does_not_pair():
    store = tables()
    served, copies = call_and_shadows(3, {2: [0, 1, 0]})
    asyncio.run(store.write(rows_of(copies[0])[0]))  # the served call was not captured (sampled out, say)
    (report,) = asyncio.run(agreement(store, "iris", None, T0 + timedelta(minutes=1), 1000, 100))
    assert (report.answers, report.pairs, report.agreement) == (3, 0, None)
    assert asyncio.run(agreement(store, "wine", None, T0 + timedelta(minutes=1), 1000, 100)) == []


def test_a_model_s_agreement_is_made_again_only_once_it_is_cache_s_old():
    store = tables()
    now = [T0 + timedelta(minutes=1)]
    agreements = Agreements(store, max_parts=100, cache_s=10, clock=lambda: now[0])
    served, copies = call_and_shadows(2, {2: [0, 1]})
    asyncio.run(store.write([row for event in [served, *copies] for row in rows_of(event)[0]]))
    assert [r.pairs for r in asyncio.run(agreements.of("iris", None, 1000))] == [2]
    more, more_copies = call_and_shadows(2, {2: [0, 0]})
    asyncio.run(store.write([row for event in [more, *more_copies] for row in rows_of(event)[0]]))
    now[0] += timedelta(seconds=5)
    assert [r.pairs for r in asyncio.run(agreements.of("iris", None, 1000))] == [2]  # the kept report
    now[0] += timedelta(seconds=6)
    (report,) = asyncio.run(agreements.of("iris", None, 1000))
    assert (report.pairs, report.agreement) == (4, 0.75)
