import asyncio
import io
import random

import pyarrow.parquet as pq
import pytest

from services.common.contracts.monitoring import CapturedPrediction, PredictionsPage
from services.common.ports import SidecarUnavailable
from services.monitor.domain.pages import Cursor
from services.monitor.domain.rows import row_key, rows_of
from services.monitor.metrics import MonitorMetrics
from services.monitor.tables import InferenceTables, index_key
from tests.fakes import FakeBlobStore, FakeStateStore
from tests.unit.monitor.events import T0, logged, seconds


class CountingBlobs(FakeBlobStore):
    def __init__(self, failing: bool = False) -> None:
        super().__init__()
        self.reads, self.failing = 0, failing

    async def get(self, key: str) -> bytes:
        self.reads += 1
        return await super().get(key)

    async def put(self, key: str, data: bytes) -> None:
        if self.failing:
            raise SidecarUnavailable("the blob store is down")
        await super().put(key, data)


def tables(segment_parts: int = 1000, page_max_parts: int = 200) -> InferenceTables:
    return InferenceTables(FakeStateStore(), CountingBlobs(), segment_parts, page_max_parts, MonitorMetrics())


def rows(records: int = 2, **fields) -> list[CapturedPrediction]:
    return rows_of(logged(records=records, **fields))[0]


def read_all(t: InferenceTables, model: str = "iris", limit: int = 3, **cursor) -> list[PredictionsPage]:
    """Every page from the cursor on, following next_since and next_after (bounded)."""
    pages, at = [], Cursor(**cursor)
    for _ in range(1000):
        page = asyncio.run(t.page(model, at, limit))
        pages.append(page)
        if page.next_since is None:
            return pages
        at = Cursor(page.next_since, page.next_after)
    raise AssertionError("paging never ended")


def ids(pages: list[PredictionsPage]) -> list[str]:
    return [r.prediction_id for page in pages for r in page.predictions]


def test_pages_follow_one_another_without_skipping_or_repeating_rows_that_share_a_time():
    t = tables()
    calls = [rows(5, at=T0), rows(4, at=T0), rows(3, at=T0 + seconds(1))]
    for call in reversed(calls):  # written in any order: read in time order
        asyncio.run(t.write(call))
    every = sorted([r for call in calls for r in call], key=row_key)
    pages = read_all(t, limit=3)
    assert ids(pages) == [r.prediction_id for r in every]
    assert [len(p.predictions) for p in pages] == [3, 3, 3, 3, 0]
    assert pages[0].next_after == every[2].prediction_id and pages[0].next_since == T0


def test_a_page_that_is_not_full_says_nothing_more_was_captured():
    t = tables()
    asyncio.run(t.write(rows(2)))
    page = asyncio.run(t.page("iris", Cursor(), 10))
    assert len(page.predictions) == 2 and page.next_since is None and page.next_after is None
    assert asyncio.run(t.page("nobody", Cursor(), 10)) == PredictionsPage(model="nobody", predictions=[])


def test_a_prediction_written_twice_is_read_once():
    t = tables()
    call = rows(3)
    asyncio.run(t.write(call))
    asyncio.run(t.write(call[1:]))  # an event delivered again, in a part of its own
    page = asyncio.run(t.page("iris", Cursor(), 10))
    assert [r.prediction_id for r in page.predictions] == [r.prediction_id for r in call]
    assert t.metrics.duplicates.labels("read")._value.get() == 2


def test_rows_are_parquet_parts_under_a_prefix_per_model_and_day():
    t = tables()
    batch = [*rows(2, at=T0), *rows(1, at=T0 + seconds(86_400)), *rows(1, model="wine")]
    assert asyncio.run(t.write(batch)) == 3
    keys = sorted(t.blobs.blobs)
    assert [k.rsplit("/", 1)[0] for k in keys] == [
        "monitor/predictions/iris/2025-01-31",
        "monitor/predictions/iris/2025-02-01",
        "monitor/predictions/wine/2025-01-31",
    ]
    assert all(k.endswith(".parquet") for k in keys)
    table = pq.read_table(io.BytesIO(t.blobs.blobs[keys[0]]))
    assert table.num_rows == 2 and {"prediction_id", "at", "version", "inputs", "output"} <= set(table.column_names)
    assert table.column("inputs").to_pylist() == ['{"x":0}', '{"x":1}']


def test_a_read_from_a_later_day_reads_none_of_the_days_before():
    t = tables()
    asyncio.run(t.write(rows(2, at=T0)))
    later = rows(2, at=T0 + seconds(86_400))
    asyncio.run(t.write(later))
    page = asyncio.run(t.page("iris", Cursor(T0 + seconds(86_400)), 10))
    assert page.predictions == later and t.blobs.reads == 1


def test_a_day_with_more_parts_than_a_segment_holds_lists_them_in_more_segments():
    t = tables(segment_parts=2)
    calls = [rows(1, at=T0 + seconds(i)) for i in range(5)]
    for call in calls:
        asyncio.run(t.write(call))
    index = asyncio.run(t.indexes.get(index_key("iris")))
    assert index is not None and index.days == {"2025-01-31": 3}
    assert ids(read_all(t, limit=10)) == [call[0].prediction_id for call in calls]


def test_a_part_the_blob_store_refused_is_not_indexed():
    t = tables()
    t.blobs.failing = True
    with pytest.raises(SidecarUnavailable):
        asyncio.run(t.write(rows(2)))
    assert asyncio.run(t.indexes.get(index_key("iris"))) is None


def test_a_part_gone_from_the_blob_store_is_passed_over():
    t = tables()
    asyncio.run(t.write(rows(1, at=T0)))
    kept = rows(1, at=T0 + seconds(1))
    asyncio.run(t.write(kept))
    del t.blobs.blobs[min(t.blobs.blobs)]
    assert asyncio.run(t.page("iris", Cursor(), 10)).predictions == kept


@pytest.mark.parametrize("seed", range(5))
def test_paging_overlapping_parts_in_any_page_size_gives_every_row_once_in_order(seed):
    """Parts overlap in time (late and redelivered events), and a page may stop after a few
    parts: following the pages still gives each row exactly once, in time order."""
    rng = random.Random(seed)
    t = tables(segment_parts=3, page_max_parts=rng.randint(1, 4))
    calls = [rows(rng.randint(1, 4), at=T0 + seconds(rng.choice([0, 1, 2, 86_400]))) for _ in range(12)]
    every = {r.prediction_id: r for call in calls for r in call}
    parts = [r for call in calls for r in call] + rng.sample(list(every.values()), 5)  # some written twice
    rng.shuffle(parts)
    while parts:
        size = rng.randint(1, 6)
        asyncio.run(t.write(parts[:size]))
        parts = parts[size:]
    expected = [r.prediction_id for r in sorted(every.values(), key=row_key)]
    assert ids(read_all(t, limit=rng.randint(1, 7))) == expected
    middle = sorted(every.values(), key=row_key)[len(expected) // 2]
    assert ids(read_all(t, limit=4, since=middle.at, after=middle.prediction_id)) == expected[len(expected) // 2 + 1 :]
