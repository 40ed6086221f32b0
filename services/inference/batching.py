"""Adaptive batching around a model's predict function, as MLServer does it: a wrapper, so the
model knows nothing of it. Concurrent requests for one model are answered by one predict call
over their rows together, run in a thread off the event loop, and each gets its own slice back.

The rule, per model (one worker, one predict call at a time):

1. When the worker is idle (no predict running, nothing queued), an arriving request starts a
   predict at once, with whatever else is queued by then: at low load nothing waits.
2. While a predict runs, arriving requests queue.
3. When it ends, the next batch is the queued requests in arrival order, as many as fit in
   `max_batch_size` rows. It starts at once if it is full (that many rows, or the next queued
   request does not fit); otherwise it waits for more to join, but only until its oldest
   request has been queued `max_wait_s` seconds (measured from that request's arrival, so a
   request that already waited out a predict does not wait again).
4. A request of more than `max_batch_size` rows runs alone.

If the batch's predict raises (one request's bad row can fail the whole call), each of its
requests is predicted again alone, so only the one at fault gets the error. Class
probabilities are computed for the batch when any of its requests asks for them, and handed
only to those that did. A request whose caller went away (cancelled) is dropped from the
queue, or its result discarded; the others are not affected.

The rows of one model's requests are expected to have the same columns (the decoders make
them from the model's card), so putting them together changes nothing for any row.

A predict call of at most `inline_rows` rows runs on the event loop itself rather than in a
thread: a compiled model answers a few rows in tens of microseconds, less than the hand-over
to a thread and back costs (measured: bench/inference.py). Zero (scikit-learn's runtime, whose
calls take milliseconds) always uses a thread.
"""

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from services.inference.domain.columns import Columns, concat
from services.inference.domain.columns import count as rows_in
from services.inference.runtimes import Result

log = logging.getLogger(__name__)

PredictFn = Callable[[Columns, bool], Result]


@dataclass(frozen=True)
class Limits:
    max_batch_size: int  # rows in one predict call (a bigger request runs alone)
    max_wait_s: float  # how long a queued request may wait for others to join


class Runner(Protocol):
    """Runs a model's predict function for one request's rows."""

    async def __call__(self, rows: Columns, probabilities: bool) -> Result: ...

    async def close(self) -> None: ...


async def _call(predict: PredictFn, rows: Columns, probabilities: bool, inline_rows: int) -> Result:
    if rows_in(rows) <= inline_rows:
        return predict(rows, probabilities)
    return await asyncio.to_thread(predict, rows, probabilities)


class DirectPredictor:
    """No batching: each request's own predict call (in a thread, but for `inline_rows`)."""

    def __init__(self, predict: PredictFn, inline_rows: int = 0):
        self.predict, self.inline_rows = predict, inline_rows

    async def __call__(self, rows: Columns, probabilities: bool) -> Result:
        return await _call(self.predict, rows, probabilities, self.inline_rows)

    async def close(self) -> None:
        return None


@dataclass(eq=False)
class _Request:
    rows: Columns
    probabilities: bool
    arrived: float
    future: asyncio.Future[Result] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class BatchingPredictor:
    """Batches concurrent requests into one predict call, by the rule in the module docstring."""

    def __init__(
        self,
        predict: PredictFn,
        max_batch_size: int,
        max_wait_s: float,
        inline_rows: int = 0,
        waited: Callable[[float], None] | None = None,
    ):
        """waited: told how long each request queued (seconds) when its batch's predict begins."""
        if max_batch_size < 1 or max_wait_s < 0:
            raise ValueError("max_batch_size must be at least 1 and max_wait_s at least 0")
        self.predict, self.max_batch_size, self.max_wait_s = predict, max_batch_size, max_wait_s
        self.inline_rows = inline_rows
        self.waited = waited
        self._queue: deque[_Request] = deque()
        self._arrival = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._running: list[_Request] = []  # the batch being predicted
        self._closed = False

    @property
    def queued(self) -> int:
        """Requests waiting for a batch (cancelled ones until they are dropped)."""
        return len(self._queue)

    async def __call__(self, rows: Columns, probabilities: bool) -> Result:
        if self._closed:
            # Unloaded while this request held the model: it is answered all the same.
            return await _call(self.predict, rows, probabilities, self.inline_rows)
        loop = asyncio.get_running_loop()
        request = _Request(rows, probabilities, loop.time())
        self._queue.append(request)
        if self._worker is None or self._worker.done():
            # A new worker gets a new event: an event belongs to the loop that first waits on it.
            self._arrival = asyncio.Event()
            self._worker = asyncio.create_task(self._work(), name="batching")
        self._arrival.set()
        # Cancelling this await cancels the future too, which the worker then skips.
        return await request.future

    async def close(self) -> None:
        """Answers what is queued without waiting for more, then stops the worker; later requests
        run alone."""
        self._closed = True
        self._arrival.set()
        worker, self._worker = self._worker, None
        if worker is not None and not worker.done():
            await asyncio.wait([worker])

    async def _work(self) -> None:
        try:
            idle = True
            while True:
                self._drop_cancelled()
                if not self._queue:
                    if self._closed:
                        return
                    self._arrival.clear()
                    await self._arrival.wait()
                    idle = True
                    continue
                if not idle:
                    await self._gather()
                self._running = self._take()
                if self._running:
                    await self._run(self._running)
                self._running = []
                idle = False
        finally:
            # Only when the worker itself is cancelled or broken: nobody may wait forever.
            for request in [*self._running, *self._queue]:
                if not request.future.done():
                    request.future.set_exception(RuntimeError("the batching worker stopped"))
            self._running = []
            self._queue.clear()

    def _drop_cancelled(self) -> None:
        while self._queue and self._queue[0].future.done():
            self._queue.popleft()

    def _plan(self) -> tuple[int, bool]:
        """How many queued requests the next batch takes, and whether it is full."""
        count, rows = 0, 0
        for request in self._queue:
            if request.future.done():
                count += 1
                continue
            size = rows_in(request.rows)
            if rows and rows + size > self.max_batch_size:
                return count, True
            count, rows = count + 1, rows + size
            if rows >= self.max_batch_size:
                return count, True
        return count, False

    async def _gather(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closed:
            self._drop_cancelled()
            if not self._queue or self._plan()[1]:
                return
            left = self._queue[0].arrived + self.max_wait_s - loop.time()
            if left <= 0:
                return
            self._arrival.clear()
            try:
                await asyncio.wait_for(self._arrival.wait(), left)
            except TimeoutError:
                return

    def _take(self) -> list[_Request]:
        count, _ = self._plan()
        taken = [self._queue.popleft() for _ in range(count)]
        return [r for r in taken if not r.future.done()]

    async def _run(self, batch: list[_Request]) -> None:
        if self.waited is not None:
            now = asyncio.get_running_loop().time()
            for request in batch:
                self.waited(now - request.arrived)
        if len(batch) == 1:
            await self._alone(batch[0])
            return
        wanted = any(r.probabilities for r in batch)
        try:
            rows = concat([r.rows for r in batch])
            if rows_in(rows) <= self.inline_rows:
                predictions, probabilities = self._predict_together(rows, wanted)
            else:
                predictions, probabilities = await asyncio.to_thread(self._predict_together, rows, wanted)
        except Exception as exc:
            log.info("a batch of %d requests failed (%s); predicting each alone", len(batch), exc, exc_info=True)
            for request in batch:
                await self._alone(request)
            return
        start = 0
        for request in batch:
            end = start + rows_in(request.rows)
            if not request.future.done():
                mine = probabilities[start:end] if probabilities is not None and request.probabilities else None
                request.future.set_result((predictions[start:end], mine))
            start = end

    def _predict_together(self, rows: Columns, probabilities: bool) -> Result:
        predictions, proba = self.predict(rows, probabilities)
        predictions, n = np.asarray(predictions), rows_in(rows)
        if len(predictions) != n or (proba is not None and len(proba) != n):
            raise ValueError(f"the model answered {len(predictions)} predictions for {n} rows")
        return predictions, proba

    async def _alone(self, request: _Request) -> None:
        if request.future.done():
            return
        try:
            result = await _call(self.predict, request.rows, request.probabilities, self.inline_rows)
        except Exception as exc:
            if not request.future.done():
                request.future.set_exception(exc)
            return
        if not request.future.done():
            request.future.set_result(result)
