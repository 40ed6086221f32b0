"""Live metrics: each model's recent captured predictions joined with the actual values sent
back as feedback, measured per version over a sliding window and per UTC day.

The monitor holds, per model, the captured predictions (id, time, version, output,
probabilities: not the inputs) and the actuals of the last `retention_days`, at most `max_rows`
of each, read from the two tables' parts (tables.py). It reads only the parts it has not read
yet, newest first, so that keeping up costs an index read and the new parts: a part it read, or
passed over (older than the rows held once `max_rows` were read), is never read again. Past
`max_rows` the oldest rows are let go and reports say `truncated`. At most `max_models` models
are held; one more lets go of the least recently asked (it is read again when asked).

Feedback may come before its prediction is captured (capture lags the call by seconds): the
join is made when a report is, so an actual joins its prediction whichever lands first.
Reports are kept `cache_s` (`computed_at` says when one was made) unless feedback came since.
"""

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from services.common.contracts.monitoring import CapturedPrediction, LiveEvidence
from services.monitor import parquet
from services.monitor.domain.feedback import FeedbackRow
from services.monitor.domain.index import PartEntry
from services.monitor.domain.ledger import (
    PRIMARY,
    Held,
    LiveReport,
    LiveSettings,
    Prediction,
    Truth,
    held_predictions,
    held_truths,
    live_report,
    live_since,
)
from services.monitor.domain.rows import day_of, utc
from services.monitor.metrics import MonitorMetrics
from services.monitor.tables import PartTable, WrittenPart

log = logging.getLogger(__name__)

SKEW = timedelta(days=1)
"""Feedback is filed by the day it was received, which is never before its prediction's day but
by clock skew between the replicas: the feedback of the held predictions is read from a day
earlier than they are."""


@dataclass(frozen=True)
class LiveLimits:
    retention_days: int
    window_pairs: int
    window_hours: float
    max_rows: int
    max_models: int
    cache_s: float
    refresh_s: float

    def settings(self) -> LiveSettings:
        return LiveSettings(
            window_pairs=self.window_pairs,
            window_hours=self.window_hours,
            retention_days=self.retention_days,
            max_rows=self.max_rows,
        )


@dataclass(eq=False)
class ModelRows:
    """What is held of one model: its rows, the parts they came from, its last report."""

    predictions: Held[Prediction]
    truths: Held[Truth]
    read: set[tuple[str, str, str]] = field(default_factory=set)
    """(table, day, part name) of every part read or passed over."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held while the rows are read or changed."""
    reporting: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held while a report is made: callers asking at once share it."""
    refreshed_at: datetime | None = None
    changes: int = 0
    report: LiveReport | None = None
    report_changes: int = -1
    gauged: set[tuple[str, str]] = field(default_factory=set)
    """(version, metric) label values of the gauges set for this model."""

    def absorb(self, rows: list[FeedbackRow], written: list[WrittenPart]) -> None:
        """Feedback just written: held at once (and its part marked read, never read again)."""
        for row in rows:
            self.truths.add(row.prediction_id, Truth(row.actual, row.received_at))
        self.read.update((FEEDBACK, part.day, part.entry.name) for part in written)
        self.changes += 1

    @property
    def truncated(self) -> bool:
        return self.predictions.let_go_until is not None or self.truths.let_go_until is not None


FEEDBACK = "feedback"
PREDICTIONS = "predictions"


def _truths(data: bytes) -> list[tuple[str, Truth]]:
    return [(r.prediction_id, Truth(r.actual, r.received_at)) for r in parquet.decode_feedback(data)]


class LiveTracker:
    def __init__(
        self,
        predictions: PartTable[CapturedPrediction],
        feedback: PartTable[FeedbackRow],
        limits: LiveLimits,
        metrics: MonitorMetrics,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.predictions, self.feedback, self.limits = predictions, feedback, limits
        self.metrics, self.clock = metrics, clock
        self._models: OrderedDict[str, ModelRows] = OrderedDict()

    async def report(self, model: str) -> LiveReport:
        """The model's live report, made again when the last one is `cache_s` old or feedback
        came since. A model nothing was captured of nor sent for has an empty one (and is not held)."""
        held = self._models.get(model)
        if held is None:
            if not await self._has_rows(model):
                return live_report(model, {}, {}, self.clock(), self.limits.settings())
            held = self._models.get(model) or self._hold(model)  # held by another call meanwhile?
        self._models.move_to_end(model)
        async with held.reporting:
            now = self.clock()
            cached = held.report
            if cached is not None and self._fresh(held, cached, now):
                return cached
            async with held.lock:
                await self._refresh(model, held, now)
                predictions, truths = dict(held.predictions.rows), dict(held.truths.rows)
                changes, truncated = held.changes, held.truncated
            report = await asyncio.to_thread(  # up to max_rows pairs: CPU work, off the loop
                live_report, model, predictions, truths, now, self.limits.settings(), truncated
            )
            held.report, held.report_changes = report, changes
            if self._models.get(model) is held:  # not let go meanwhile: its gauges stay
                self._gauge(model, held, report)
            return report

    async def since(self, model: str, since: datetime) -> LiveEvidence:
        """Each version's live metrics over its pairs of predictions made from `since` on (a
        rollout step's evidence), from the rows held (read anew when `refresh_s` old). Truncated
        when rows since then were let go (the bound on rows, or retention)."""
        if model not in self._models and not await self._has_rows(model):
            return live_since({}, {}, since)
        async with self.rows_of(model) as held:
            predictions, truths = dict(held.predictions.rows), dict(held.truths.rows)
            let_go, now = held.predictions.let_go_until, self.clock()
        horizon = utc(now) - timedelta(days=self.limits.retention_days)
        truncated = (let_go is not None and utc(let_go) >= utc(since)) or utc(since) < horizon
        return await asyncio.to_thread(live_since, predictions, truths, since, truncated)  # CPU work, off the loop

    async def refresh_held(self) -> None:
        """The background job: the report of every model held, made again when it is stale
        (so that its gauges follow)."""
        for model in list(self._models):
            try:
                await self.report(model)
            except Exception as exc:  # one model's failure does not hold the others back
                log.warning("the live report of %s could not be made: %s", model, exc)

    @asynccontextmanager
    async def rows_of(self, model: str) -> AsyncIterator[ModelRows]:
        """The model's rows, locked, read anew when they were read more than `refresh_s` ago:
        for a feedback call to tell matched from pending, and to hold what it writes."""
        held = self._models.get(model) or self._hold(model)
        self._models.move_to_end(model)
        async with held.lock:
            now = self.clock()
            if held.refreshed_at is None or (now - held.refreshed_at).total_seconds() >= self.limits.refresh_s:
                await self._refresh(model, held, now)
            yield held

    def _fresh(self, held: ModelRows, report: LiveReport, now: datetime) -> bool:
        return held.report_changes == held.changes and (now - report.computed_at).total_seconds() < self.limits.cache_s

    async def _has_rows(self, model: str) -> bool:
        return bool(await self.predictions.days(model) or await self.feedback.days(model))

    def _hold(self, model: str) -> ModelRows:
        held = ModelRows(held_predictions(self.limits.max_rows), held_truths(self.limits.max_rows))
        self._models[model] = held
        while len(self._models) > self.limits.max_models:
            gone, rows = self._models.popitem(last=False)
            self._ungauge(gone, rows.gauged)
        return held

    async def _refresh(self, model: str, held: ModelRows, now: datetime) -> None:
        """Reads the parts of both tables not read yet, then lets go of what aged out."""
        horizon = utc(now) - timedelta(days=self.limits.retention_days)
        new = await self._read_new(
            model, held, self.predictions, PREDICTIONS, horizon, parquet.decode_for_live, held.predictions
        )
        new += await self._read_new(model, held, self.feedback, FEEDBACK, horizon - SKEW, _truths, held.truths)
        held.predictions.trim(horizon)
        held.truths.trim(horizon - SKEW)
        oldest_day = day_of(horizon - SKEW)
        held.read = {entry for entry in held.read if entry[1] >= oldest_day}
        held.refreshed_at = now
        if new:
            held.changes += 1

    async def _read_new(
        self,
        model: str,
        held: ModelRows,
        table: PartTable[Any],
        kind: str,
        horizon: datetime,
        decode: Callable[[bytes], list[tuple[str, Any]]],
        into: Held[Any],
    ) -> int:
        """Holds the rows of the table's parts not read yet, newest part first, until `max_rows`
        are read: the older ones are passed over (their rows would be let go at once). Returns
        how many rows were read. A part is marked read once its rows are held: a read that fails
        half way leaves the rest to the next refresh."""
        fresh: list[tuple[str, PartEntry]] = []
        for day, segments in await table.days(model, day_of(horizon)):
            fresh += [(day, p) for p in await table.parts(model, day, segments) if (kind, day, p.name) not in held.read]
        fresh.sort(key=lambda found: utc(found[1].last_at), reverse=True)
        taken = 0
        for day, part in fresh:
            if utc(part.last_at) >= horizon and taken < self.limits.max_rows:
                rows: list[tuple[str, Any]] = await table.read(model, day, part, decode)
                for prediction_id, row in rows:
                    into.add(prediction_id, row)
                taken += len(rows)
            elif utc(part.last_at) >= horizon:  # passed over for the bound: the report says truncated
                last = utc(part.last_at)
                into.let_go_until = max(last, into.let_go_until or last)
            held.read.add((kind, day, part.name))
        return taken

    def _gauge(self, model: str, held: ModelRows, report: LiveReport) -> None:
        now_gauged: set[tuple[str, str]] = set()
        metric = PRIMARY[report.task] if report.task else None
        for version in report.versions:
            label = str(version.version)
            self.metrics.live_pairs.labels(model, label).set(version.window.count)
            value = version.window.metrics.get(metric) if metric else None
            if metric and value is not None:
                self.metrics.live.labels(model, label, metric).set(value.value)
                now_gauged.add((label, metric))
            now_gauged.add((label, ""))
        self._ungauge(model, held.gauged - now_gauged)
        held.gauged = now_gauged

    def _ungauge(self, model: str, labels: set[tuple[str, str]]) -> None:
        for version, metric in labels:
            try:
                if metric:
                    self.metrics.live.remove(model, version, metric)
                else:
                    self.metrics.live_pairs.remove(model, version)
            except KeyError:
                pass
