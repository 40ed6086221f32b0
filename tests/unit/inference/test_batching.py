"""Adaptive batching (services/inference/batching.py). Concurrency is made with a predict
function that holds its first call until released: requests sent meanwhile queue behind it.
Nothing here depends on timing; the few waits with a timeout only keep a broken rule from hanging."""

import asyncio
import threading

import numpy as np
import pandas as pd
import pytest

from services.inference.batching import BatchingPredictor, DirectPredictor
from tests.unit.inference.models import flower_model

FOREVER = 3600.0  # a max_wait no test could sit out: a request that waits for it hangs the test


class Counting:
    """A predict function that records the rows of each call; with `hold`, its first call waits
    until released. Without `model`, predictions are 10 x and a negative x is a bad row."""

    def __init__(self, model=None, hold: bool = False):
        self.model, self.hold = model, hold
        self.calls: list[tuple[list, bool]] = []
        self.started, self.release = threading.Event(), threading.Event()

    def __call__(self, rows: dict[str, np.ndarray], probabilities: bool):
        self.calls.append((next(iter(rows.values())).tolist(), probabilities))
        if self.hold and len(self.calls) == 1:
            self.started.set()
            assert self.release.wait(30), "never released"
        if self.model is not None:
            frame = pd.DataFrame(rows)
            return self.model.predict(frame), self.model.predict_proba(frame) if probabilities else None
        x = rows["x"]
        if (x < 0).any():
            raise ValueError("a negative x")
        return x * 10, np.column_stack([x, -x]) if probabilities else None


def columns(**values: list) -> dict[str, np.ndarray]:
    """Rows as the decoders make them: one array per feature."""
    kind = {name: float if all(isinstance(x, float) for x in v) else object for name, v in values.items()}
    return {name: np.array(v, dtype=kind[name]) for name, v in values.items()}


def xs(*values) -> dict[str, np.ndarray]:
    return {"x": np.array([float(v) for v in values])}


async def held(predictor: BatchingPredictor, fake: Counting, first: dict[str, np.ndarray], *then):
    """Starts `first` and, while its predict is held, queues each of `then` (rows, probabilities);
    returns their tasks, `first`'s first."""
    tasks = [asyncio.create_task(predictor(first, False))]
    await asyncio.to_thread(fake.started.wait, 30)
    for rows, probabilities in then:
        tasks.append(asyncio.create_task(predictor(rows, probabilities)))
    while predictor.queued < len(then):
        await asyncio.sleep(0)
    return tasks


def test_requests_sent_during_a_predict_are_answered_by_one_call_each_with_its_own_rows():
    model = flower_model()
    fake = Counting(model, hold=True)
    flowers = [
        columns(**{"length": [1.4], "width": [0.5], "colour": ["red"]}),
        columns(**{"length": [6.1, 4.4], "width": [2.0, 1.4], "colour": ["blue", "white"]}),
        columns(**{"length": [5.0, 1.1, 4.0], "width": [1.7, 0.4, 1.2], "colour": ["white", "red", None]}),
    ]

    async def run():
        predictor = BatchingPredictor(fake, max_batch_size=256, max_wait_s=0)
        tasks = await held(predictor, fake, flowers[0], *((f, True) for f in flowers))
        fake.release.set()
        results = await asyncio.gather(*tasks)
        await predictor.close()
        return results

    first, *batched = asyncio.run(run())
    assert len(fake.calls) == 2  # the held one, then the three queued behind it together
    assert fake.calls[1][0] == [1.4, 6.1, 4.4, 5.0, 1.1, 4.0]
    assert first[0].tolist() == model.predict(pd.DataFrame(flowers[0])).tolist() and first[1] is None
    for rows, (predictions, probabilities) in zip(flowers, batched, strict=True):
        assert predictions.tolist() == model.predict(pd.DataFrame(rows)).tolist()
        assert np.allclose(probabilities, model.predict_proba(pd.DataFrame(rows)))


def test_a_lone_request_does_not_wait_for_others_to_join():
    fake = Counting()

    async def run():
        predictor = BatchingPredictor(fake, max_batch_size=256, max_wait_s=FOREVER)
        first = await asyncio.wait_for(predictor(xs(1, 2), False), 30)
        second = await asyncio.wait_for(predictor(xs(3), False), 30)  # idle again after the first
        await predictor.close()
        return first, second

    first, second = asyncio.run(run())
    assert first[0].tolist() == [10, 20] and second[0].tolist() == [30]
    assert [rows for rows, _ in fake.calls] == [[1, 2], [3]]


def test_a_batch_holds_at_most_max_batch_size_rows_and_a_bigger_request_runs_alone():
    fake = Counting(hold=True)

    async def run():
        predictor = BatchingPredictor(fake, max_batch_size=4, max_wait_s=0)
        queued = [xs(1, 2), xs(3, 4), xs(5, 6, 7), xs(8), xs(*range(10, 16)), xs(20)]
        tasks = await held(predictor, fake, xs(0), *((q, False) for q in queued))
        fake.release.set()
        results = await asyncio.gather(*tasks)
        await predictor.close()
        return queued, results

    queued, results = asyncio.run(run())
    assert [rows for rows, _ in fake.calls] == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [10, 11, 12, 13, 14, 15], [20]]
    for rows, (predictions, _) in zip(queued, results[1:], strict=True):
        assert predictions.tolist() == (rows["x"] * 10).tolist()


def test_a_queued_batch_waits_for_more_only_until_it_is_full():
    fake = Counting(hold=True)

    async def run():
        predictor = BatchingPredictor(fake, max_batch_size=3, max_wait_s=FOREVER)
        tasks = await held(predictor, fake, xs(0), (xs(1), False))
        fake.release.set()
        tasks.append(asyncio.create_task(predictor(xs(2, 3), False)))  # fills the batch: it goes
        results = await asyncio.wait_for(asyncio.gather(*tasks), 30)
        await predictor.close()
        return results

    results = asyncio.run(run())
    assert [rows for rows, _ in fake.calls] == [[0], [1, 2, 3]]
    assert [r[0].tolist() for r in results] == [[0], [10], [20, 30]]


def test_a_bad_request_fails_alone_and_the_others_in_its_batch_get_their_predictions():
    fake = Counting(hold=True)

    async def run():
        predictor = BatchingPredictor(fake, max_batch_size=256, max_wait_s=0)
        tasks = await held(predictor, fake, xs(0), (xs(1), False), (xs(2, -1), False), (xs(3), True))
        fake.release.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await predictor.close()
        return results

    _, good, bad, also_good = asyncio.run(run())
    assert isinstance(bad, ValueError) and "negative" in str(bad)
    assert good[0].tolist() == [10] and also_good[0].tolist() == [30]
    assert also_good[1].tolist() == [[3, -3]]
    # the held one, the batch that failed, then each of its requests alone
    assert [rows for rows, _ in fake.calls] == [[0], [1, 2, -1, 3], [1], [2, -1], [3]]


def test_a_bad_row_of_a_real_model_fails_only_its_own_request():
    model = flower_model()
    fake = Counting(model, hold=True)
    good = columns(**{"length": [1.4, 6.1], "width": [0.5, 2.0], "colour": ["red", "blue"]})
    bad = columns(**{"length": ["long"], "width": [0.5], "colour": ["red"]})

    async def run():
        predictor = BatchingPredictor(fake, max_batch_size=256, max_wait_s=0)
        tasks = await held(predictor, fake, good, (good, False), (bad, False), (good, True))
        fake.release.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await predictor.close()
        return results

    _, first, failed, second = asyncio.run(run())
    assert isinstance(failed, ValueError)
    assert first[0].tolist() == second[0].tolist() == model.predict(pd.DataFrame(good)).tolist()
    assert first[1] is None and np.allclose(second[1], model.predict_proba(pd.DataFrame(good)))


def test_probabilities_go_only_to_the_requests_that_asked():
    fake = Counting(hold=True)

    async def run():
        predictor = BatchingPredictor(fake, max_batch_size=256, max_wait_s=0)
        tasks = await held(predictor, fake, xs(0), (xs(1), True), (xs(2), False), (xs(3, 4), True))
        fake.release.set()
        results = await asyncio.gather(*tasks)
        await predictor.close()
        return results

    _, asked, not_asked, asked_too = asyncio.run(run())
    assert fake.calls[1] == ([1, 2, 3, 4], True)
    assert asked[1].tolist() == [[1, -1]] and not_asked[1] is None
    assert asked_too[1].tolist() == [[3, -3], [4, -4]]


def test_a_cancelled_request_leaves_the_others_answered():
    fake = Counting(hold=True)

    async def run():
        predictor = BatchingPredictor(fake, max_batch_size=256, max_wait_s=0)
        tasks = await held(predictor, fake, xs(0), (xs(1), False), (xs(2), False), (xs(3), False))
        tasks[0].cancel()  # its predict is running: its answer is thrown away
        tasks[2].cancel()  # queued: it never reaches the model
        fake.release.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        after = await asyncio.wait_for(predictor(xs(4), False), 30)
        await predictor.close()
        return results, after

    results, after = asyncio.run(run())
    assert isinstance(results[0], asyncio.CancelledError) and isinstance(results[2], asyncio.CancelledError)
    assert results[1][0].tolist() == [10] and results[3][0].tolist() == [30] and after[0].tolist() == [40]
    assert [rows for rows, _ in fake.calls] == [[0], [1, 3], [4]]


def test_close_answers_what_is_queued_stops_the_worker_and_later_requests_run_alone():
    fake = Counting(hold=True)

    async def run():
        predictor = BatchingPredictor(fake, max_batch_size=256, max_wait_s=FOREVER)
        tasks = await held(predictor, fake, xs(0), (xs(1), False))
        closing = asyncio.create_task(predictor.close())
        await asyncio.sleep(0)
        fake.release.set()
        await asyncio.wait_for(closing, 30)  # does not sit out max_wait for the queued one
        late = await predictor(xs(2), False)
        return [t.result() for t in tasks], late, predictor

    results, late, predictor = asyncio.run(run())
    assert [r[0].tolist() for r in results] == [[0], [10]] and late[0].tolist() == [20]
    assert predictor.queued == 0 and predictor._worker is None


def test_without_batching_each_request_is_its_own_predict_call():
    fake = Counting()

    async def run():
        predictor = DirectPredictor(fake)
        return await asyncio.gather(*(predictor(xs(i), False) for i in range(5)))

    results = asyncio.run(run())
    assert len(fake.calls) == 5 and sorted(r[0].tolist()[0] for r in results) == [0, 10, 20, 30, 40]


def test_limits_are_checked():
    with pytest.raises(ValueError):
        BatchingPredictor(Counting(), max_batch_size=0, max_wait_s=0)
