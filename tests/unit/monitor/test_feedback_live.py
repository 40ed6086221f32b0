"""Live metrics: captured predictions joined with feedback, whichever lands first, per version,
over a sliding window and per day, from bounded and incremental reads, with cached reports and
gauges."""

import asyncio
import math
from datetime import timedelta

import pytest

from services.common.contracts import Task
from services.common.contracts.monitoring import new_call_id, prediction_ids
from services.common.ports import SidecarUnavailable
from services.monitor.domain.ledger import Prediction, held_predictions, task_of
from tests.fakes import FakeBlobStore
from tests.unit.monitor.events import T0, logged, seconds
from tests.unit.monitor.test_feedback import Monitor


class CountingBlobs(FakeBlobStore):
    def __init__(self):
        super().__init__()
        self.reads: list[str] = []

    async def get(self, key):
        self.reads.append(key)
        return await super().get(key)


def report(monitor: Monitor, model: str = "iris"):
    return asyncio.run(monitor.live.report(model))


def accuracy(metrics) -> tuple[float, int]:
    found = metrics.metrics["accuracy"]
    return found.value, found.count


def test_feedback_sent_before_its_prediction_was_captured_joins_it_once_captured():
    monitor = Monitor()
    event = logged(records=4, at=T0 - seconds(2))  # predicted 0, 1, 0, 1
    answer = monitor.send(zip(event.prediction_ids, [0, 0, 0, 1], strict=True))
    assert (answer.matched, answer.pending) == (0, 4)
    before = report(monitor)
    assert (before.pairs, before.pending, before.window.count) == (0, 4, 0)
    monitor.capture(event)
    monitor.clock.now += seconds(11)  # past the cache: the report is made again
    after = report(monitor)
    assert (after.pairs, after.pending) == (4, 0)
    assert accuracy(after.window) == (0.75, 4) and after.task == Task.CLASSIFICATION and after.primary == "accuracy"


def test_metrics_are_given_per_version_and_for_every_version_together():
    monitor = Monitor()
    one = monitor.capture(logged(records=4, version=1, at=T0 - seconds(60)))  # 0, 1, 0, 1
    two = monitor.capture(logged(records=2, version=2, at=T0 - seconds(30)))  # 0, 1
    monitor.send([*zip(one, [0, 1, 1, 1], strict=True), *zip(two, [1, 0], strict=True)])
    live = report(monitor)
    assert [v.version for v in live.versions] == [1, 2]
    assert accuracy(live.versions[0].window) == (0.75, 4)
    assert accuracy(live.versions[1].window) == (0.0, 2)
    assert accuracy(live.window) == (0.5, 6)


def test_the_sliding_window_takes_the_last_pairs_of_the_last_hours_and_days_take_every_pair():
    monitor = Monitor(window_pairs=3, window_hours=2)
    old = monitor.capture(logged(records=2, at=T0 - timedelta(hours=3)))  # right, right
    new = monitor.capture(logged(records=4, at=T0 - timedelta(minutes=1)))  # 0, 1, 0, 1
    monitor.send([*zip(reversed(new), [0, 0, 0, 0], strict=True), *zip(old, [0, 1], strict=True)])
    live = report(monitor)
    # The window: the 4 recent pairs (the old ones are 3 h old), the last 3 of them: 1 right of 3.
    # A call's records share their time: the last are the last in the call, whatever the order
    # their feedback came in (the first 3 would be 2 right of 3).
    assert accuracy(live.window) == (pytest.approx(1 / 3), 3)
    by_hours = report(Monitor(monitor.state, monitor.blobs, window_pairs=10, window_hours=2))
    assert accuracy(by_hours.window) == (0.5, 4)
    (day,) = live.daily  # T0 is noon: one UTC day holds all six
    assert day.day == T0.date() and accuracy(day) == (pytest.approx(4 / 6), 6)


def test_days_are_utc_days_of_when_the_prediction_was_made():
    monitor = Monitor()
    yesterday = monitor.capture(logged(records=2, at=T0 - timedelta(days=1)))
    today = monitor.capture(logged(records=2, at=T0 - seconds(5)))
    monitor.send([*zip(yesterday, [0, 0], strict=True), *zip(today, [0, 1], strict=True)])
    live = report(monitor)
    assert [(d.day.isoformat(), accuracy(d)) for d in live.daily] == [
        ("2025-01-30", (0.5, 2)),
        ("2025-01-31", (1.0, 2)),
    ]


def test_a_regressor_gets_rmse_and_mae_computed_by_hand():
    monitor = Monitor()
    event = logged(records=3, at=T0 - seconds(5)).model_copy(update={"predictions": [1.0, 2.5, 4.0]})
    ids = monitor.capture(event)
    monitor.send(zip(ids, [2, 2.5, 1.0], strict=True))
    live = report(monitor)
    assert live.task == Task.REGRESSION and live.primary == "rmse"
    assert live.window.metrics["rmse"].value == pytest.approx(math.sqrt((1 + 0 + 9) / 3))
    assert live.window.metrics["mae"].value == pytest.approx((1 + 0 + 3) / 3)
    assert live.window.metrics["mae"].count == 3


def test_log_loss_uses_the_captured_probabilities():
    monitor = Monitor()
    event = logged(records=2, at=T0 - seconds(5), classes=[0, 1], probabilities=[[0.8, 0.2], [0.4, 0.6]])
    ids = monitor.capture(event)
    monitor.send(zip(ids, [0, 0], strict=True))
    loss = report(monitor).window.metrics["log_loss"]
    assert loss.value == pytest.approx(-(math.log(0.8) + math.log(0.4)) / 2) and loss.count == 2


def test_a_report_is_kept_until_it_is_stale_or_feedback_comes():
    monitor = Monitor(cache_s=10)
    ids = monitor.capture(logged(records=2, at=T0 - seconds(5)))
    monitor.send([(ids[0], 0)])
    first = report(monitor)
    monitor.clock.now += seconds(5)
    assert report(monitor) is first  # 5 s old: kept, with the time it was made
    monitor.capture(logged(records=1, at=T0))  # captured meanwhile: not seen until stale
    assert report(monitor).held_predictions == 2
    monitor.send([(ids[1], 0)])  # feedback: made again at once
    second = report(monitor)
    assert second.computed_at == monitor.clock.now and second.pairs == 2 and second.held_predictions == 3


def test_each_part_is_read_once_whatever_the_number_of_reports():
    blobs = CountingBlobs()
    monitor = Monitor(blobs=blobs, cache_s=1)
    ids = monitor.capture(logged(records=2, at=T0 - seconds(5)))
    monitor.send([(ids[0], 0)])  # reads the captured part (the feedback part is held as written)
    assert len(blobs.reads) == 1
    for _ in range(3):
        monitor.clock.now += seconds(2)
        report(monitor)
    assert len(blobs.reads) == 1
    monitor.capture(logged(records=1, at=T0))
    monitor.clock.now += seconds(2)
    assert report(monitor).held_predictions == 3 and len(blobs.reads) == 2


def test_past_max_rows_the_oldest_parts_are_passed_over_and_the_report_says_truncated():
    blobs = CountingBlobs()
    monitor = Monitor(blobs=blobs, max_rows=5)
    calls = [monitor.capture(logged(records=4, at=T0 - timedelta(minutes=10 - i))) for i in range(3)]
    live = report(monitor)
    # Newest part first: 4 rows, then 4 more (8 >= 5, stop); the oldest part is never read.
    assert len(blobs.reads) == 2 and live.held_predictions == 5 and live.truncated
    assert live.held_since == T0 - timedelta(minutes=9)
    newest = monitor.send(zip(calls[2], [0, 1, 0, 1], strict=True))
    oldest = monitor.send(zip(calls[0], [0, 1, 0, 1], strict=True))
    assert (newest.matched, oldest.matched, oldest.pending) == (4, 0, 4)


def test_rows_older_than_the_retention_are_not_held():
    monitor = Monitor(retention_days=2)
    old = monitor.capture(logged(records=2, at=T0 - timedelta(days=3)))
    recent = monitor.capture(logged(records=2, at=T0 - timedelta(days=1)))
    answer = monitor.send([*zip(old, [0, 1], strict=True), *zip(recent, [0, 1], strict=True)])
    assert (answer.matched, answer.pending) == (2, 2)
    assert report(monitor).held_predictions == 2


def test_a_model_nothing_was_captured_of_has_an_empty_report_and_is_not_held():
    monitor = Monitor(max_models=1)
    live = report(monitor, "nobody")
    assert (live.task, live.primary, live.pairs, live.window.count, live.versions, live.daily) == (
        None,
        None,
        0,
        0,
        [],
        [],
    )
    assert list(monitor.live._models) == []


def test_gauges_follow_the_primary_metric_per_version_and_go_with_a_model_let_go():
    monitor = Monitor(max_models=1)
    ids = monitor.capture(logged(records=4, at=T0 - seconds(5)))
    monitor.send(zip(ids, [0, 1, 1, 1], strict=True))
    report(monitor)
    registry = monitor.metrics.registry
    labels = {"model": "iris", "version": "1"}
    assert registry.get_sample_value("daprml_monitor_live_metric", labels | {"metric": "accuracy"}) == 0.75
    assert registry.get_sample_value("daprml_monitor_live_pairs", labels) == 4
    wine = monitor.capture(logged(records=1, model="wine", at=T0))
    monitor.send([(wine[0], 0)], model="wine")  # a second model: iris is let go
    assert registry.get_sample_value("daprml_monitor_live_metric", labels | {"metric": "accuracy"}) is None
    assert list(monitor.live._models) == ["wine"]
    assert report(monitor).pairs == 4  # read again when asked


def test_the_background_job_remakes_stale_reports_of_the_models_held():
    monitor = Monitor(cache_s=10)
    ids = monitor.capture(logged(records=2, at=T0 - seconds(5)))
    monitor.send([(ids[0], 0)])
    asyncio.run(monitor.live.refresh_held())
    first = report(monitor)
    monitor.clock.now += seconds(11)
    asyncio.run(monitor.live.refresh_held())
    assert monitor.live._models["iris"].report.computed_at == monitor.clock.now != first.computed_at


def test_the_task_is_read_from_what_the_model_answered():
    at = T0
    assert task_of([]) is None
    assert task_of([Prediction(at, 1, 1.5), Prediction(at, 1, None)]) == Task.REGRESSION
    assert task_of([Prediction(at, 1, 1.5), Prediction(at, 1, 2)]) == Task.CLASSIFICATION
    assert task_of([Prediction(at, 1, "setosa")]) == Task.CLASSIFICATION
    assert task_of([Prediction(at, 1, 1.0, {"1": 0.9, "0": 0.1})]) == Task.CLASSIFICATION


def test_held_rows_keep_the_earliest_and_let_the_oldest_go_past_the_limit():
    held = held_predictions(limit=2)
    ids = prediction_ids(new_call_id(), 3)
    for i, prediction_id in enumerate(ids):
        held.add(prediction_id, Prediction(T0 + seconds(i), 1, i))
    held.add(ids[2], Prediction(T0 + seconds(9), 1, "later copy"))
    held.trim(T0 - seconds(1))
    assert list(held.rows) == ids[1:] and held.rows[ids[2]].output == 2
    assert held.let_go_until == T0
    held.trim(T0 + seconds(1))  # what was let go would have aged out: no longer truncated
    assert held.let_go_until is None and list(held.rows) == ids[1:]


def test_a_read_that_fails_half_way_leaves_the_parts_not_read_for_the_next_one():
    class Failing(CountingBlobs):
        failing = True

        async def get(self, key):
            if self.failing and key == max(k for k in self.blobs if k.startswith("monitor/predictions/")):
                raise SidecarUnavailable("the blob store is down")
            return await super().get(key)

    blobs = Failing()
    monitor = Monitor(blobs=blobs)
    monitor.capture(logged(records=2, at=T0 - seconds(9)))
    monitor.capture(logged(records=3, at=T0 - seconds(5)))
    with pytest.raises(SidecarUnavailable):
        report(monitor)
    blobs.failing = False
    assert report(monitor).held_predictions == 5
