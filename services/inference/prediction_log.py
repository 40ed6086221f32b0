"""The prediction log: a sampled share of successful predictions, published as PredictionLogged
events (topic `predictions`) for monitoring.

Nothing of it is on the request path but record(), which draws, builds a small entry and
appends it to a bounded buffer; a full buffer drops the entry (counted) rather than wait. A
background task publishes the buffer in bulk every flush interval, or as soon as a bulk's worth
waits. A bulk the bus refuses is dropped and counted: monitoring data is not worth retrying
against a bus that is down, and the failure is logged once per run of failures, not per bulk.
"""

import asyncio
import logging
import math
import random
from collections import deque
from datetime import UTC, datetime
from typing import Any

import numpy as np
from pydantic import BaseModel

from services.common.events import EventType, PredictionLogged
from services.common.ports import EventPublisher
from services.inference.domain import columns
from services.inference.domain.columns import Columns

log = logging.getLogger(__name__)

PREVIEW_ROWS = 100
"""Rows of a request an entry keeps (with their predictions): events stay small however big the request."""
PUBLISH_TIMEOUT_S = 10.0
"""A bulk publish that takes longer has failed: a bus that does not answer must not stall the log."""


class PredictionLog:
    def __init__(
        self, publisher: EventPublisher, sample_rate: float, buffer_size: int, flush_interval_s: float, max_batch: int
    ):
        self.publisher, self.sample_rate = publisher, sample_rate
        self.buffer_size, self.flush_interval_s, self.max_batch = buffer_size, flush_interval_s, max_batch
        self._buffer: deque[PredictionLogged] = deque()
        self._due: asyncio.Event | None = None  # made by the flushing task, on its own loop
        self._failing = False
        self.sampled = self.published = self.dropped = self.failed = 0

    @property
    def counters(self) -> dict[str, int]:
        """sampled = buffered + published + dropped + failed, but for a bulk being published."""
        return {
            "sampled": self.sampled,
            "buffered": len(self._buffer),
            "published": self.published,
            "dropped": self.dropped,
            "failed": self.failed,
        }

    def record(
        self,
        model: str,
        version: int,
        request_id: str,
        rows: Columns,
        predictions: np.ndarray,
        latency_ms: float,
    ) -> None:
        """Keeps a sampled share of predictions for publishing. Never waits and never raises."""
        if self.sample_rate <= 0 or random.random() >= self.sample_rate:
            return
        self.sampled += 1
        if len(self._buffer) >= self.buffer_size:
            self.dropped += 1
            return
        try:
            entry = PredictionLogged(
                model=model,
                version=version,
                request_id=request_id,
                at=datetime.now(UTC),
                records=columns.count(rows),
                inputs=[{k: _plain(v) for k, v in row.items()} for row in columns.head(rows, PREVIEW_ROWS)],
                predictions=[_plain(v) for v in predictions[:PREVIEW_ROWS].tolist()],
                latency_ms=max(latency_ms, 0.0),
            )
        except Exception:
            # The prediction was served; only its log entry is lost.
            log.warning("a prediction of model %s could not be logged", model, exc_info=True)
            self.dropped += 1
            return
        self._buffer.append(entry)
        if len(self._buffer) >= self.max_batch and self._due is not None:
            self._due.set()

    async def flush(self) -> None:
        """Publishes what is buffered, a bulk at a time; after a failure the rest waits for the next flush."""
        while self._buffer:
            bulk: list[BaseModel] = [self._buffer.popleft() for _ in range(min(self.max_batch, len(self._buffer)))]
            try:
                await asyncio.wait_for(
                    self.publisher.publish_many(EventType.PREDICTION_LOGGED, bulk), PUBLISH_TIMEOUT_S
                )
            except Exception as exc:
                self.failed += len(bulk)
                if not self._failing:
                    self._failing = True
                    log.warning(
                        "the prediction log dropped %d entries it could not publish (%s); "
                        "further failures are counted, not logged, until a publish succeeds",
                        len(bulk),
                        str(exc) or type(exc).__name__,
                        exc_info=True,
                    )
                return
            self.published += len(bulk)
            if self._failing:
                self._failing = False
                log.info("the prediction log publishes again")

    async def run(self) -> None:
        """Flushes every flush interval, or sooner when a bulk's worth waits, until cancelled."""
        self._due = asyncio.Event()
        while True:
            if self._failing:
                await asyncio.sleep(self.flush_interval_s)  # the bus refused the last bulk: not sooner
            else:
                try:
                    await asyncio.wait_for(self._due.wait(), self.flush_interval_s)
                except TimeoutError:
                    pass
            self._due.clear()
            await self.flush()

    async def close(self) -> None:
        """A last flush at shutdown, bounded in time."""
        self._due = None
        try:
            await asyncio.wait_for(self.flush(), PUBLISH_TIMEOUT_S)
        except TimeoutError:
            log.warning("the prediction log dropped %d entries at shutdown", len(self._buffer))


def _plain(value: Any) -> Any:
    """A JSON-ready scalar: no NaN or infinity (JSON has none), numpy's as Python's."""
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    return str(value)
