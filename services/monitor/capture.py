"""Capture: the prediction log's events become rows of inference tables, at least once.

Each delivery is held until a part holding its rows is written, and only then acknowledged:
a monitor that dies holding rows in memory loses nothing, since the broker still has every
event it was not told was handled, and sends them again (to this replica when it is back, or
to another). Deliveries arriving together share one batch, written as one part per model and
day when it has `max_rows` rows or `max_events` deliveries, or when its first delivery has
waited `max_wait_s`. A batch that fails to be written fails each of its deliveries, which the
broker retries. The price is a held connection per delivery, and parts no bigger than what
the broker delivers at once (its concurrency) or within `max_wait_s`.

An event delivered twice (a retry after the part was written but before the acknowledgement
arrived, a replica that died) has the same prediction ids: a batch keeps each id once, and a
read keeps each once across parts (domain/pages.py).
"""

import asyncio
import logging
from dataclasses import dataclass, field

from services.common.contracts.monitoring import CapturedPrediction
from services.common.ports import SidecarUnavailable
from services.monitor.domain.rows import batch_key
from services.monitor.metrics import MonitorMetrics
from services.monitor.tables import InferenceTables

log = logging.getLogger(__name__)


class CaptureFull(SidecarUnavailable):
    """More rows are held than the monitor keeps in memory: the delivery is retried later."""


@dataclass(frozen=True)
class CaptureLimits:
    max_rows: int
    max_events: int
    max_wait_s: float
    max_held_rows: int


@dataclass(eq=False)
class _Batch:
    written: asyncio.Future[None]
    rows: dict[str, CapturedPrediction] = field(default_factory=dict)
    events: int = 0
    sealed: bool = False
    timer: asyncio.TimerHandle | None = None


class Capture:
    def __init__(self, tables: InferenceTables, limits: CaptureLimits, metrics: MonitorMetrics):
        self.tables, self.limits, self.metrics = tables, limits, metrics
        self._open: _Batch | None = None
        self._held = 0  # rows of every batch not written yet
        self._writing = asyncio.Lock()  # one batch written at a time: fewer index races
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def held(self) -> int:
        return self._held

    async def take(self, rows: list[CapturedPrediction]) -> None:
        """Returns once the rows are in written parts; raises when their batch could not be
        written (or no room is left to hold them), so that the event is delivered again."""
        if not rows:
            return
        if self._held + len(rows) > self.limits.max_held_rows:
            raise CaptureFull(f"the monitor holds {self._held} rows not written yet; this delivery comes again later")
        batch = self._open or self._start()
        before = len(batch.rows)
        for row in rows:
            batch.rows.setdefault(batch_key(row), row)
        added = len(batch.rows) - before
        self._held += added
        if added < len(rows):
            self.metrics.duplicates.labels("capture").inc(len(rows) - added)
        batch.events += 1
        if len(batch.rows) >= self.limits.max_rows or batch.events >= self.limits.max_events:
            self._seal(batch)
        # Shielded: a delivery given up on (the sidecar closed its connection) leaves its batch be.
        await asyncio.shield(batch.written)

    def _start(self) -> _Batch:
        loop = asyncio.get_running_loop()
        batch = _Batch(written=loop.create_future())
        # Read once, so that a batch nobody waits on any more logs no "exception never retrieved".
        batch.written.add_done_callback(lambda f: f.cancelled() or f.exception())
        batch.timer = loop.call_later(self.limits.max_wait_s, self._seal, batch)
        self._open = batch
        return batch

    def _seal(self, batch: _Batch) -> None:
        if self._open is batch:
            self._open = None
        if batch.sealed:
            return
        batch.sealed = True
        if batch.timer is not None:
            batch.timer.cancel()
        task = asyncio.get_running_loop().create_task(self._write(batch), name="capture-write")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, batch: _Batch) -> None:
        rows = list(batch.rows.values())
        try:
            async with self._writing:
                parts = await self.tables.write(rows)
        except Exception as exc:
            self.metrics.write_failures.inc()
            log.warning("%d captured rows could not be written (their events come again): %s", len(rows), exc)
            batch.written.set_exception(exc)
        else:
            self.metrics.rows.inc(len(rows))
            self.metrics.parts.inc(parts)
            batch.written.set_result(None)
        finally:
            self._held -= len(rows)
            if not batch.written.done():  # cancelled at shutdown: its deliveries fail, and come again
                batch.written.cancel()

    async def close(self) -> None:
        """At shutdown: writes what is gathering, and waits (bounded) for the writes under way."""
        if self._open is not None:
            self._seal(self._open)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self.limits.max_wait_s + 30)
