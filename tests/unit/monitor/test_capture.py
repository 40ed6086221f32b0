import asyncio

import pytest

from services.common.ports import SidecarUnavailable
from services.monitor.capture import Capture, CaptureFull, CaptureLimits
from services.monitor.domain.pages import Cursor
from services.monitor.domain.rows import rows_of
from services.monitor.metrics import MonitorMetrics
from services.monitor.tables import InferenceTables
from tests.fakes import FakeStateStore
from tests.unit.monitor.events import logged
from tests.unit.monitor.test_tables import CountingBlobs


def capture(**limits) -> Capture:
    limits = {"max_rows": 1000, "max_events": 10, "max_wait_s": 5.0, "max_held_rows": 10_000} | limits
    metrics = MonitorMetrics()
    tables = InferenceTables(FakeStateStore(), CountingBlobs(), 1000, 200, metrics)
    return Capture(tables, CaptureLimits(**limits), metrics)


def rows(records: int = 2):
    return rows_of(logged(records=records))[0]


def value(counter, *labels) -> float:
    return (counter.labels(*labels) if labels else counter)._value.get()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_deliveries_arriving_together_wait_for_one_part_that_holds_them_all():
    c = capture(max_events=3)

    async def run():
        first = asyncio.create_task(c.take(rows(2)))
        second = asyncio.create_task(c.take(rows(2)))
        await settle()
        assert not first.done() and not c.tables.blobs.blobs  # held: nothing written yet
        await c.take(rows(1))  # the third seals the batch
        await asyncio.gather(first, second)

    asyncio.run(run())
    assert len(c.tables.blobs.blobs) == 1 and value(c.metrics.parts) == 1 and value(c.metrics.rows) == 5
    assert c.held == 0


def test_a_batch_is_written_when_its_first_delivery_has_waited_long_enough():
    c = capture(max_wait_s=0.05)

    async def run():
        taking = asyncio.create_task(c.take(rows(1)))
        await settle()
        assert not taking.done()
        await asyncio.wait_for(taking, 5)

    asyncio.run(run())
    assert value(c.metrics.rows) == 1


def test_a_batch_with_enough_rows_is_written_at_once():
    c = capture(max_rows=3)
    asyncio.run(asyncio.wait_for(c.take(rows(3)), 1))
    assert value(c.metrics.parts) == 1


def test_a_failed_write_fails_every_delivery_of_its_batch_and_the_next_batch_is_written():
    c = capture(max_events=2)
    c.tables.blobs.failing = True

    async def run():
        return await asyncio.gather(c.take(rows(1)), c.take(rows(1)), return_exceptions=True)

    failed = asyncio.run(run())
    assert [type(f) for f in failed] == [SidecarUnavailable, SidecarUnavailable]
    assert value(c.metrics.write_failures) == 1 and value(c.metrics.rows) == 0 and c.held == 0
    c.tables.blobs.failing = False
    again = rows(1)

    async def retry():
        await asyncio.gather(c.take(again), c.take(rows(1)))
        return await c.tables.page("iris", Cursor(), 10)

    assert again[0] in asyncio.run(retry()).predictions


def test_a_prediction_delivered_twice_into_one_batch_is_written_once():
    c = capture(max_events=2)
    call = rows(3)

    async def run():
        await asyncio.gather(c.take(call), c.take(call))
        return await c.tables.page("iris", Cursor(), 10)

    assert asyncio.run(run()).predictions == call
    assert value(c.metrics.duplicates, "capture") == 3 and value(c.metrics.rows) == 3


def test_beyond_the_rows_it_may_hold_a_delivery_is_refused_to_be_sent_again():
    c = capture(max_held_rows=3, max_wait_s=0.05)

    async def run():
        held = asyncio.create_task(c.take(rows(2)))
        await settle()
        with pytest.raises(CaptureFull):
            await c.take(rows(2))
        await held

    asyncio.run(run())
    assert issubclass(CaptureFull, SidecarUnavailable)  # the kit answers RETRY, logged without a traceback
    assert value(c.metrics.rows) == 2


def test_a_delivery_given_up_on_leaves_its_batch_to_be_written():
    c = capture(max_wait_s=0.05)

    async def run():
        taking = asyncio.create_task(c.take(rows(2)))
        await settle()
        taking.cancel()
        await c.close()

    asyncio.run(run())
    assert value(c.metrics.rows) == 2


def test_closing_writes_what_is_gathering():
    c = capture()

    async def run():
        taking = asyncio.create_task(c.take(rows(2)))
        await settle()
        await c.close()
        await taking

    asyncio.run(run())
    assert value(c.metrics.parts) == 1
