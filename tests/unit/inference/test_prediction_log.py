"""The prediction log: sampling, the bounded buffer, bulk publishing off the request path."""

import asyncio
import inspect
import logging

import numpy as np

from services.common.events import EventType, PredictionLogged
from services.inference.prediction_log import PREVIEW_ROWS, PredictionLog
from tests.fakes import FakePublisher

ROWS = {"length": np.array([1.4, np.nan]), "colour": np.array(["red", None], dtype=object)}
PREDICTIONS = np.array(["setosa", "virginica"], dtype=object)


class Bulks(FakePublisher):
    """Records the size of each bulk; with `hold`, each publish waits until released."""

    def __init__(self, hold: bool = False):
        super().__init__()
        self.bulks: list[int] = []
        self.hold, self.release = hold, asyncio.Event()

    async def publish_many(self, event_type, payloads):
        self.bulks.append(len(payloads))
        if self.hold:
            await self.release.wait()
        await super().publish_many(event_type, payloads)


def make(publisher, rate=1.0, buffer=100, flush_s=3600.0, batch=100) -> PredictionLog:
    return PredictionLog(publisher, rate, buffer, flush_s, batch)


def record(prediction_log: PredictionLog, times: int = 1, rows=ROWS, predictions=PREDICTIONS) -> None:
    for i in range(times):
        prediction_log.record("flowers", 1, f"req-{i}", rows, predictions, 2.5)


def test_rate_zero_samples_nothing_and_rate_one_everything():
    none, every = make(FakePublisher(), rate=0.0), make(FakePublisher(), rate=1.0)
    record(none, 50)
    record(every, 50)
    assert none.counters == {"sampled": 0, "buffered": 0, "published": 0, "dropped": 0, "failed": 0}
    assert every.counters["sampled"] == every.counters["buffered"] == 50


def test_a_flush_publishes_each_sampled_prediction_as_one_event_in_bulks_of_max_batch():
    publisher = Bulks()
    prediction_log = make(publisher, batch=2)
    record(prediction_log, 5)
    asyncio.run(prediction_log.flush())
    assert publisher.bulks == [2, 2, 1]
    assert [t for t, _, _ in publisher.sent] == [EventType.PREDICTION_LOGGED] * 5
    first = publisher.sent[0][1]
    assert isinstance(first, PredictionLogged)
    assert (first.model, first.version, first.request_id, first.records) == ("flowers", 1, "req-0", 2)
    assert first.inputs == [{"length": 1.4, "colour": "red"}, {"length": None, "colour": None}]
    assert first.predictions == ["setosa", "virginica"] and first.latency_ms == 2.5
    assert prediction_log.counters == {"sampled": 5, "buffered": 0, "published": 5, "dropped": 0, "failed": 0}


def test_a_big_request_is_logged_with_its_first_rows_only():
    publisher = FakePublisher()
    prediction_log = make(publisher)
    rows = {"x": np.arange(PREVIEW_ROWS + 50, dtype=float)}
    record(prediction_log, rows=rows, predictions=np.arange(PREVIEW_ROWS + 50) * 2)
    asyncio.run(prediction_log.flush())
    entry = publisher.sent[0][1]
    assert entry.records == PREVIEW_ROWS + 50 and len(entry.inputs) == len(entry.predictions) == PREVIEW_ROWS
    assert entry.predictions[:3] == [0, 2, 4]


def test_when_the_buffer_is_full_new_entries_are_dropped_and_counted():
    publisher = FakePublisher()
    prediction_log = make(publisher, buffer=3)
    record(prediction_log, 7)
    assert prediction_log.counters["dropped"] == 4 and prediction_log.counters["buffered"] == 3
    asyncio.run(prediction_log.flush())
    assert len(publisher.sent) == 3 and prediction_log.published == 3


def test_a_publisher_that_is_down_counts_failed_logs_once_and_raises_nothing(caplog):
    publisher = FakePublisher(down=True)
    prediction_log = make(publisher, batch=2)

    async def run():
        record(prediction_log, 3)
        await prediction_log.flush()  # the first bulk fails; the rest waits for the next flush
        await prediction_log.flush()
        publisher.down = False
        record(prediction_log, 1)
        await prediction_log.flush()

    with caplog.at_level(logging.INFO, logger="services.inference.prediction_log"):
        asyncio.run(run())
    assert prediction_log.counters == {"sampled": 4, "buffered": 0, "published": 1, "dropped": 0, "failed": 3}
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    assert "publishes again" in caplog.text


def test_record_never_awaits_even_while_a_publish_hangs():
    assert not inspect.iscoroutinefunction(PredictionLog.record)
    publisher = Bulks(hold=True)
    prediction_log = make(publisher, buffer=2, batch=2)

    async def run():
        runner = asyncio.create_task(prediction_log.run())
        await asyncio.sleep(0)
        record(prediction_log, 2)  # a bulk's worth: the flush starts at once, and hangs
        while not publisher.bulks:
            await asyncio.sleep(0)
        record(prediction_log, 5)  # answered at once: two buffered, three dropped
        counters = prediction_log.counters
        publisher.release.set()
        while prediction_log.published < 4:
            await asyncio.sleep(0)
        runner.cancel()
        return counters

    counters = asyncio.run(asyncio.wait_for(run(), 30))
    assert counters == {"sampled": 7, "buffered": 2, "published": 0, "dropped": 3, "failed": 0}
    assert prediction_log.published == 4 and len(publisher.sent) == 4


def test_close_flushes_what_is_left():
    publisher = FakePublisher()
    prediction_log = make(publisher)
    record(prediction_log, 2)
    asyncio.run(prediction_log.close())
    assert len(publisher.sent) == 2
