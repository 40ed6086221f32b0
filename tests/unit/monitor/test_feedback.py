"""Ground truth: feedback items are validated, kept once per prediction (the first wins) as
Parquet parts of the model's feedback table, and counted as matched, pending or duplicates."""

import asyncio
import io
from datetime import timedelta

import pyarrow.parquet as pq
import pytest
from pydantic import TypeAdapter, ValidationError

from services.common.contracts.monitoring import new_call_id, prediction_ids
from services.common.ports import SidecarUnavailable
from services.monitor.domain.feedback import FeedbackItem, first_of_each
from services.monitor.domain.rows import rows_of
from services.monitor.feedback import FeedbackService, TooManyItems, feedback_table, items_in_error
from services.monitor.live import LiveLimits, LiveTracker
from services.monitor.metrics import MonitorMetrics
from services.monitor.tables import InferenceTables
from tests.fakes import FakeBlobStore, FakeStateStore
from tests.unit.monitor.events import T0, logged

ITEMS = TypeAdapter(list[FeedbackItem])


class Clock:
    def __init__(self, now=T0):
        self.now = now

    def __call__(self):
        return self.now


class Monitor:
    """The monitor's tables, live tracker and feedback service over one pair of fake stores."""

    def __init__(self, state=None, blobs=None, clock=None, max_items=100, **limits):
        self.state, self.blobs = state or FakeStateStore(), blobs or FakeBlobStore()
        self.clock = clock or Clock()
        self.metrics = MonitorMetrics()
        self.tables = InferenceTables(self.state, self.blobs, 1000, 200, self.metrics)
        settings = dict(
            retention_days=7,
            window_pairs=1000,
            window_hours=24,
            max_rows=1000,
            max_models=5,
            cache_s=10,
            refresh_s=0,
        )
        self.live = LiveTracker(
            self.tables.table,
            feedback_table(self.state, self.blobs, 1000),
            LiveLimits(**(settings | limits)),
            self.metrics,
            self.clock,
        )
        self.feedback = FeedbackService(self.live.feedback, self.live, max_items, self.metrics, self.clock)

    def capture(self, event) -> list[str]:
        asyncio.run(self.tables.write(rows_of(event)[0]))
        return event.prediction_ids

    def send(self, pairs, model="iris", actor="ci"):
        items = [FeedbackItem(prediction_id=i, actual=a) for i, a in pairs]
        return asyncio.run(self.feedback.receive(model, items, actor))

    def counted(self, outcome: str) -> float:
        return self.metrics.feedback.labels(outcome)._value.get()


def item(actual, prediction_id=None) -> dict:
    return {"prediction_id": prediction_id or prediction_ids(new_call_id(), 1)[0], "actual": actual}


@pytest.mark.parametrize("actual", ["setosa", 3, 2.5, True, False, 0])
def test_an_actual_is_any_json_scalar_kept_as_sent(actual):
    (parsed,) = ITEMS.validate_python([item(actual)])
    assert parsed.actual == actual and type(parsed.actual) is type(actual)


@pytest.mark.parametrize(
    ("body", "where", "words"),
    [
        ([item("a"), item(None)], (1, "actual"), "not null"),
        ([item("a"), item("b"), item([1])], (2, "actual"), "not list"),
        ([item({"a": 1})], (0, "actual"), "not dict"),
        ([item("")], (0, "actual"), "1 to 1000 characters"),
        ([item("x" * 1001)], (0, "actual"), "1 to 1000 characters"),
        ([item("a", "abc-0")], (0, "prediction_id"), "pattern"),
        ([item("a") | {"actuals": 1}], (0, "actuals"), "Extra inputs"),
        ([{"prediction_id": prediction_ids(new_call_id(), 1)[0]}], (0, "actual"), "required"),
    ],
)
def test_a_bad_item_is_named_by_its_index_and_field(body, where, words):
    with pytest.raises(ValidationError) as refused:
        ITEMS.validate_python(body)
    (error,) = refused.value.errors()
    assert error["loc"] == where and words in error["msg"]
    assert items_in_error(refused.value) == 1


def test_a_non_finite_number_is_refused_from_json():
    with pytest.raises(ValidationError) as refused:
        ITEMS.validate_json(
            b'[{"prediction_id": "' + prediction_ids(new_call_id(), 1)[0].encode() + b'", "actual": NaN}]'
        )
    assert "finite" in refused.value.errors()[0]["msg"]


def test_the_first_actual_for_a_prediction_is_kept_and_the_rest_are_duplicates():
    a, b, c = prediction_ids(new_call_id(), 3)
    items = ITEMS.validate_python([item("x", a), item("y", b), item("z", a), item("w", c), item("v", b)])
    kept, duplicates = first_of_each(items, known={c})
    assert [(i.prediction_id, i.actual) for i in kept] == [(a, "x"), (b, "y")] and duplicates == 3


def test_feedback_is_counted_as_matched_pending_or_duplicate_and_kept_as_a_parquet_part():
    monitor = Monitor()
    captured = monitor.capture(logged(records=3, at=T0 - timedelta(minutes=5)))
    later = prediction_ids(new_call_id(), 2)  # not captured yet
    answer = monitor.send([(captured[0], 0), (captured[1], 1), (later[0], 1), (captured[0], 1)])
    assert (answer.received, answer.accepted, answer.matched, answer.pending, answer.duplicates) == (4, 3, 2, 1, 1)
    assert answer.received_at == T0
    monitor.clock.now += timedelta(seconds=1)
    again = monitor.send([(captured[1], 0), (later[0], 0), (captured[2], 0)])  # two sent before
    assert (again.accepted, again.matched, again.pending, again.duplicates) == (1, 1, 0, 2)
    assert [monitor.counted(o) for o in ("matched", "pending", "duplicate", "invalid")] == [3, 1, 3, 0]
    parts = sorted(k for k in monitor.blobs.blobs if k.startswith("monitor/feedback/"))
    assert [k.rsplit("/", 1)[0] for k in parts] == ["monitor/feedback/iris/2025-01-31"] * 2
    # Part names do not sort in the order they were written: the first call's is the one of 3 rows.
    tables = [pq.read_table(io.BytesIO(monitor.blobs.blobs[k])) for k in parts]
    table = next(t for t in tables if t.num_rows == 3)
    assert sorted(t.num_rows for t in tables) == [1, 3]
    assert table.column("prediction_id").to_pylist() == [captured[0], captured[1], later[0]]
    assert table.column("actual").to_pylist() == ["0", "1", "1"]  # JSON text, as outputs are
    assert set(table.column("actor").to_pylist()) == {"ci"}


def test_a_call_of_only_duplicates_writes_nothing():
    monitor = Monitor()
    (one,) = monitor.capture(logged(records=1))
    monitor.send([(one, 0)])
    before = dict(monitor.blobs.blobs)
    answer = monitor.send([(one, 1), (one, 0)])
    assert (answer.accepted, answer.duplicates) == (0, 2) and monitor.blobs.blobs == before


def test_more_items_than_a_call_may_send_are_refused_whole_and_counted_invalid():
    monitor = Monitor(max_items=3)
    ids = prediction_ids(new_call_id(), 4)
    with pytest.raises(TooManyItems, match="at most 3"):
        monitor.send([(i, 1) for i in ids])
    assert monitor.blobs.blobs == {} and monitor.counted("invalid") == 4


def test_a_restarted_monitor_knows_the_feedback_sent_before_it_restarted():
    first = Monitor()
    ids = first.capture(logged(records=2))
    first.send([(ids[0], 0)])
    second = Monitor(first.state, first.blobs)  # new process, same stores
    answer = second.send([(ids[0], 1), (ids[1], 1)])
    assert (answer.duplicates, answer.matched) == (1, 1)
    report = asyncio.run(second.live.report("iris"))
    assert report.window.metrics["accuracy"].value == 1.0  # 0 kept for ids[0] (predicted 0), 1 for ids[1]


def test_a_failed_write_fails_the_call_and_the_items_count_as_new_when_sent_again():
    class Refusing(FakeBlobStore):
        down = False

        async def put(self, key, data):
            if self.down:
                raise SidecarUnavailable("the blob store is down")
            await super().put(key, data)

    blobs = Refusing()
    monitor = Monitor(blobs=blobs)
    ids = monitor.capture(logged(records=2))
    blobs.down = True
    with pytest.raises(SidecarUnavailable):
        monitor.send([(ids[0], 0)])
    blobs.down = False
    answer = monitor.send([(ids[0], 0)])
    assert (answer.accepted, answer.matched, answer.duplicates) == (1, 1, 0)
