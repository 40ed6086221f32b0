"""Shadow copies: a request for the champion copied to a shadow version off the request path,
its answer compared with the one the caller got and then dropped. The caller's latency and
answer do not change: a copy runs after the answer is made, as a task of its own, bounded in
number (past `max_pending` a copy is dropped, counted) and in time.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from services.inference.metrics import InferenceMetrics
from services.inference.serving_stats import ServingTally

log = logging.getLogger(__name__)


class Shadows:
    def __init__(
        self,
        metrics: InferenceMetrics,
        max_pending: int,
        timeout_s: float,
        capture: Callable[[Any, float], None] | None = None,
        serving: ServingTally | None = None,
    ):
        """`capture(answers, latency_ms)` hands a shadow's answers to the prediction log (set once
        it exists: app.py); `serving` counts each copy for the serving stats."""
        self.metrics, self.max_pending, self.timeout_s = metrics, max_pending, timeout_s
        self.capture, self.serving = capture, serving
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def copy(self, name: str, version: int, served: Any, classifier: bool, run: Callable[[], Awaitable[Any]]) -> None:
        """Runs `run` (the shadow's answers to the same rows: an object with `predictions`) in
        the background, compares them with `served` (the predictions the caller got) and hands
        them to `capture`."""
        label = str(version)
        if len(self._tasks) >= self.max_pending:
            self.metrics.shadow_requests.labels(name, label, "dropped").inc()
            return
        task = asyncio.create_task(self._one(name, label, served, classifier, run))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _one(
        self, name: str, label: str, served: Any, classifier: bool, run: Callable[[], Awaitable[Any]]
    ) -> None:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout_s):
                shadow = await run()
        except Exception as exc:  # a shadow's failure is its own: counted, never the caller's
            self.metrics.shadow_requests.labels(name, label, "failed").inc()
            if self.serving is not None:
                self.serving.shadow(name, int(label), failed=True)
            log.info("shadow copy of model %s version %s failed: %s", name, label, exc)
            return
        seconds = time.perf_counter() - started
        self.metrics.shadow_seconds.labels(name, label).observe(seconds)
        self.metrics.shadow_requests.labels(name, label, "done").inc()
        if self.serving is not None:
            self.serving.shadow(name, int(label), failed=False)
        ours, theirs = np.asarray(served), np.asarray(shadow.predictions)
        self.metrics.shadow_records.labels(name, label).inc(len(ours))
        if classifier:
            self.metrics.shadow_agreed.labels(name, label).inc(int(np.sum(ours.astype(str) == theirs.astype(str))))
        else:
            difference = np.abs(ours.astype(float) - theirs.astype(float))
            self.metrics.shadow_abs_error.labels(name, label).inc(float(np.nansum(difference)))
        if self.capture is not None:
            self.capture(shadow, seconds * 1000)

    async def close(self) -> None:
        """Cancels the copies still running (at shutdown)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
