"""The prediction log: per-model sampling, whole calls up to a bound, buffers bounded by calls
and by records, bulk publishing off the request path, and what each event carries."""

import asyncio
import inspect
import logging

import numpy as np
import pytest

from services.common.contracts import ModelCard
from services.common.contracts.monitoring import new_call_id, prediction_ids
from services.common.events import EventType, PredictionLogged
from services.inference.dataplane import Outputs
from services.inference.domain import contract
from services.inference.metrics import InferenceMetrics
from services.inference.prediction_log import BULK_ROWS, PredictionLog
from tests.fakes import FakePublisher

CARD = ModelCard.model_validate(
    {
        "task": "classification",
        "target": "species",
        "features": [
            {"name": "length", "type": "number", "min": 1.0, "max": 7.0},
            {"name": "colour", "type": "category", "categories": ["blue", "red"]},
        ],
        "classes": ["setosa", "virginica"],
    }
)
ROWS = {"length": np.array([1.4, np.nan]), "colour": np.array(["red", None], dtype=object)}
PREDICTIONS = np.array(["setosa", "virginica"], dtype=object)
PROBABILITIES = np.array([[0.9, 0.1], [0.2, 0.8]])
EMPTY = {"sampled": 0, "buffered": 0, "published": 0, "dropped": 0, "failed": 0, "buffered_rows": 0}


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


def make(publisher, rate=1.0, buffer=100, flush_s=3600.0, batch=100, **options) -> PredictionLog:
    return PredictionLog(publisher, rate, buffer, flush_s, batch, **options)


def outputs(
    rows=ROWS, predictions=PREDICTIONS, probabilities=None, model="flowers", warnings=None, runtime="sklearn"
) -> Outputs:
    if warnings is None:
        warnings = contract.values(rows, CARD) if set(rows) == {"length", "colour"} else []
    classes = CARD.classes if probabilities is not None else None
    return Outputs(model, 1, predictions, probabilities, classes, CARD, rows, warnings, runtime, new_call_id())


def record(prediction_log: PredictionLog, times: int = 1, **made) -> list[Outputs]:
    calls = [outputs(**made) for _ in range(times)]
    for i, out in enumerate(calls):
        prediction_log.record(out, f"req-{i}", 2.5)
    return calls


def counter(metrics: InferenceMetrics, what: str, model: str, outcome: str) -> float:
    found = metrics.registry.get_sample_value(
        f"daprml_inference_captured_{what}_total", {"model": model, "outcome": outcome}
    )
    return found or 0.0


def published(publisher: FakePublisher) -> list[PredictionLogged]:
    return [entry for _, entry, _ in publisher.sent]  # type: ignore[misc]


def test_rate_zero_samples_nothing_and_rate_one_every_call():
    none, every = make(FakePublisher(), rate=0.0), make(FakePublisher(), rate=1.0)
    record(none, 50)
    record(every, 50)
    assert none.counters == {**EMPTY, "truncated_rows": 0} and not none.sampling
    assert every.counters["sampled"] == every.counters["buffered"] == 50
    assert every.counters["buffered_rows"] == 100


def test_a_models_own_share_overrides_the_default_both_ways():
    publisher = FakePublisher()
    prediction_log = make(publisher, rate=0.0, rates={"flowers": 1.0, "houses": 0.0})
    assert prediction_log.sampling
    record(prediction_log, 3, model="flowers")
    record(prediction_log, 3, model="houses")
    record(prediction_log, 3, model="other")  # the default's 0
    assert prediction_log.counters["sampled"] == 3
    everyone_but_houses = make(FakePublisher(), rate=1.0, rates={"houses": 0.0})
    record(everyone_but_houses, 2, model="houses")
    record(everyone_but_houses, 2, model="other")
    assert everyone_but_houses.counters["sampled"] == 2


def test_a_share_between_samples_about_that_share_of_calls():
    prediction_log = make(FakePublisher(), rate=0.0, rates={"flowers": 0.25}, buffer=10_000, buffer_rows=10**6)
    record(prediction_log, 4000)
    assert 800 < prediction_log.counters["sampled"] < 1200  # 1000 expected; 8 sd either side


def test_a_flush_publishes_each_sampled_call_as_one_event_with_its_records_ids_in_bulks_of_max_batch():
    publisher = Bulks()
    prediction_log = make(publisher, batch=2)
    calls = record(prediction_log, 5, probabilities=PROBABILITIES)
    asyncio.run(prediction_log.flush())
    assert publisher.bulks == [2, 2, 1]
    assert [t for t, _, _ in publisher.sent] == [EventType.PREDICTION_LOGGED] * 5
    first = published(publisher)[0]
    assert isinstance(first, PredictionLogged)
    assert (first.model, first.version, first.runtime, first.request_id, first.records) == (
        "flowers",
        1,
        "sklearn",
        "req-0",
        2,
    )
    assert first.prediction_ids == calls[0].prediction_ids == prediction_ids(calls[0].call_id, 2)
    assert first.inputs == [{"length": 1.4, "colour": "red"}, {"length": None, "colour": None}]
    assert first.predictions == ["setosa", "virginica"] and first.latency_ms == 2.5
    assert first.classes == ["setosa", "virginica"] and first.probabilities == [[0.9, 0.1], [0.2, 0.8]]
    ids = [i for entry in published(publisher) for i in entry.prediction_ids]
    assert len(set(ids)) == 10  # every call its own ids
    assert prediction_log.counters == {**EMPTY, "sampled": 5, "published": 5, "truncated_rows": 0}
    assert counter(prediction_log.metrics, "calls", "flowers", "published") == 5
    assert counter(prediction_log.metrics, "rows", "flowers", "published") == 10


def test_without_probabilities_the_event_has_none_and_a_nan_one_is_sent_as_null():
    publisher = FakePublisher()
    prediction_log = make(publisher)
    record(prediction_log)  # a call that asked for none (an OIP request for `predict` only)
    record(prediction_log, probabilities=np.array([[np.nan, 1.0], [0.5, 0.5]]))
    asyncio.run(prediction_log.flush())
    without, nan = published(publisher)
    assert without.probabilities is None and without.classes is None
    assert nan.probabilities == [[None, 1.0], [0.5, 0.5]]


def test_each_record_carries_the_warnings_the_answer_counted_and_none_when_there_were_none():
    publisher = FakePublisher()
    prediction_log = make(publisher)
    rows = {"length": np.array([1.4, 99.0, np.nan]), "colour": np.array(["red", "green", "blue"], dtype=object)}
    record(prediction_log, rows=rows, predictions=np.array(["setosa"] * 3, dtype=object))
    fine = {"length": np.array([1.4]), "colour": np.array(["red"], dtype=object)}
    record(prediction_log, rows=fine, predictions=np.array(["setosa"], dtype=object))
    asyncio.run(prediction_log.flush())
    warned, clean = published(publisher)
    assert warned.warnings == [[], ["out_of_range:length", "unseen_category:colour"], ["missing:length"]]
    answered = {(w.kind.value, w.field): w.records for w in contract.values(rows, CARD)}
    per_record = [w for row in warned.warnings for w in row]
    assert {(k, f): per_record.count(f"{k}:{f}") for k, f in answered} == answered  # the same rule
    assert clean.warnings is None


def test_a_call_over_the_bound_is_captured_up_to_it_and_the_rest_counted_as_truncated():
    publisher = FakePublisher()
    prediction_log = make(publisher, max_rows=100)
    rows = {"length": np.arange(150, dtype=float), "colour": np.array(["red"] * 150, dtype=object)}
    [call] = record(prediction_log, rows=rows, predictions=np.arange(150) * 2, warnings=[])
    held = prediction_log._buffer[0]
    assert held.rows["length"].base is None and held.predictions.base is None  # copies: the call is not held
    assert prediction_log.counters["buffered_rows"] == 100 and prediction_log.counters["truncated_rows"] == 50
    asyncio.run(prediction_log.flush())
    [entry] = published(publisher)
    assert entry.records == 150 and len(entry.inputs) == len(entry.predictions) == 100
    assert entry.prediction_ids == call.prediction_ids[:100] and entry.predictions[:3] == [0, 2, 4]
    assert counter(prediction_log.metrics, "rows", "flowers", "truncated") == 50
    assert counter(prediction_log.metrics, "rows", "flowers", "published") == 150


def test_when_the_buffer_is_full_of_calls_new_ones_are_dropped_and_counted():
    publisher = FakePublisher()
    prediction_log = make(publisher, buffer=3)
    record(prediction_log, 7)
    assert prediction_log.counters["dropped"] == 4 and prediction_log.counters["buffered"] == 3
    assert counter(prediction_log.metrics, "calls", "flowers", "dropped") == 4
    assert counter(prediction_log.metrics, "rows", "flowers", "dropped") == 8
    asyncio.run(prediction_log.flush())
    assert len(publisher.sent) == 3 and prediction_log.published == 3


def test_a_burst_of_big_calls_is_bounded_by_records_before_calls():
    prediction_log = make(FakePublisher(), buffer=1000, max_rows=1000, buffer_rows=2500)
    rows = {"length": np.ones(1000), "colour": np.array(["red"] * 1000, dtype=object)}
    record(prediction_log, 5, rows=rows, predictions=np.zeros(1000))
    assert prediction_log.counters["buffered"] == 2 and prediction_log.counters["buffered_rows"] == 2000
    assert prediction_log.counters["dropped"] == 3
    record(prediction_log, 1)  # a small call still fits
    assert prediction_log.counters["buffered"] == 3


def test_a_bulk_holds_at_most_bulk_rows_records():
    publisher = Bulks()
    prediction_log = make(publisher, max_rows=BULK_ROWS // 2, buffer_rows=10 * BULK_ROWS)
    n = BULK_ROWS // 2
    rows = {"length": np.ones(n), "colour": np.array(["red"] * n, dtype=object)}
    record(prediction_log, 5, rows=rows, predictions=np.zeros(n), warnings=[])
    asyncio.run(prediction_log.flush())
    assert publisher.bulks == [2, 2, 1]


def test_a_call_that_cannot_be_captured_is_dropped_and_counted_and_the_others_are_published(caplog):
    publisher = FakePublisher()
    prediction_log = make(publisher)
    broken = outputs()
    object.__setattr__(broken, "predictions", None)  # no len(): record() itself fails
    with caplog.at_level(logging.WARNING, logger="services.inference.prediction_log"):
        prediction_log.record(broken, "req-x", 1.0)
        record(prediction_log, model="Not A Name")  # buffered, but no valid event can be made of it
        record(prediction_log, 2)
        asyncio.run(prediction_log.flush())
    assert prediction_log.counters["dropped"] == 2 and prediction_log.counters["published"] == 2
    assert [entry.request_id for entry in published(publisher)] == ["req-0", "req-1"]
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1  # once per run of failures


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
    assert prediction_log.counters == {**EMPTY, "sampled": 4, "published": 1, "failed": 3, "truncated_rows": 0}
    assert counter(prediction_log.metrics, "calls", "flowers", "failed") == 3
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
            await asyncio.sleep(0.001)
        record(prediction_log, 5)  # answered at once: two buffered, three dropped
        counters = prediction_log.counters
        publisher.release.set()
        while prediction_log.published < 4:
            await asyncio.sleep(0.001)
        runner.cancel()
        return counters

    counters = asyncio.run(asyncio.wait_for(run(), 30))
    assert counters == {**EMPTY, "sampled": 7, "buffered": 2, "buffered_rows": 4, "dropped": 3, "truncated_rows": 0}
    assert prediction_log.published == 4 and len(publisher.sent) == 4


def test_close_flushes_what_is_left():
    publisher = FakePublisher()
    prediction_log = make(publisher)
    record(prediction_log, 2)
    asyncio.run(prediction_log.close())
    assert len(publisher.sent) == 2


@pytest.mark.parametrize("max_rows, buffer_rows, bound", [(1000, 100_000, 1000), (1000, 10, 10)])
def test_the_per_call_bound_never_exceeds_what_the_buffer_holds(max_rows, buffer_rows, bound):
    assert make(FakePublisher(), max_rows=max_rows, buffer_rows=buffer_rows).max_rows == bound
