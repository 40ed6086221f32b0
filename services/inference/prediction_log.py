"""The prediction log: a sampled share of successful prediction calls captured whole (up to a
bound per call) and published as PredictionLogged events (topic `predictions`), which the
monitor keeps as the model's inference table.

Nothing of it is on the request path but record(), which draws against the model's share and
keeps a reference to what the call answered (its first `max_rows` records, copied only when the
call had more) in a buffer bounded by calls and by records; a full buffer drops the call
(counted) rather than wait. A background task turns the buffer into events (in a thread: a bulk
of big calls takes milliseconds to convert) and publishes them in bulk every flush interval, or
as soon as a bulk's worth waits. A bulk the bus refuses is dropped and counted: monitoring data
is not worth retrying against a bus that is down, and the failure is logged once per run of
failures, not per bulk.
"""

import asyncio
import logging
import math
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from pydantic import BaseModel

from services.common.contracts import ModelCard
from services.common.contracts.monitoring import prediction_ids
from services.common.events import EventType, PredictionLogged
from services.common.ports import EventPublisher
from services.inference.dataplane import Outputs
from services.inference.domain import contract
from services.inference.domain.columns import Columns
from services.inference.metrics import InferenceMetrics

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 10.0
"""A bulk publish that takes longer has failed: a bus that does not answer must not stall the log."""
CLOSE_TIMEOUT_S = 2.0
"""The last flush at shutdown, at most: well within a container engine's stop grace (10 s),
since the sidecar it publishes through may be gone already (compose stops an app and its sidecar
together), and a publish to a sidecar whose container is gone waits with no deadline. What it
cannot publish in time is dropped, and the log says how many."""
BULK_ROWS = 10_000
"""Most records one bulk publish carries (a call with more goes alone): one message to the
sidecar stays a few MB, well under its body limit, and one conversion stays short."""


@dataclass(frozen=True, slots=True)
class _Sampled:
    """A sampled call as it was answered: what the flush makes its event of."""

    model: str
    version: int
    runtime: str
    request_id: str
    at: datetime
    latency_ms: float
    records: int  # in the call, all of them
    call_id: str
    rows: Columns  # the captured ones: the first `kept`
    predictions: np.ndarray
    probabilities: np.ndarray | None
    classes: list[Any] | None
    card: ModelCard | None  # when the answer warned: each record's warnings are found again from it
    shadow: bool = False

    @property
    def kept(self) -> int:
        return len(self.predictions)


class PredictionLog:
    def __init__(
        self,
        publisher: EventPublisher,
        sample_rate: float,
        buffer_size: int,
        flush_interval_s: float,
        max_batch: int,
        *,
        rates: Mapping[str, float] | None = None,
        max_rows: int = 1000,
        buffer_rows: int = 100_000,
        metrics: InferenceMetrics | None = None,
    ):
        """sample_rate: the share of calls captured for models `rates` does not name. A call's
        first `max_rows` records are captured (at most `buffer_rows`: the buffer must hold one)."""
        self.publisher, self.sample_rate, self.rates = publisher, sample_rate, dict(rates or {})
        self.buffer_size, self.flush_interval_s, self.max_batch = buffer_size, flush_interval_s, max_batch
        self.buffer_rows, self.max_rows = buffer_rows, min(max_rows, buffer_rows)
        self.metrics = metrics or InferenceMetrics()
        self._buffer: deque[_Sampled] = deque()
        self._rows = 0  # records of the calls buffered
        self._due: asyncio.Event | None = None  # made by the flushing task, on its own loop
        self._failing = self._broken = False
        self._in_flight = 0  # calls of the bulk being published
        self.sampled = self.published = self.dropped = self.failed = self.truncated_rows = 0

    @property
    def sampling(self) -> bool:
        """Whether any model's share captures anything (else no flushing task is needed)."""
        return self.sample_rate > 0 or any(rate > 0 for rate in self.rates.values())

    @property
    def counters(self) -> dict[str, int]:
        """sampled = buffered + published + dropped + failed (calls), but for a bulk being
        published; truncated_rows: records of sampled calls past the per-call bound."""
        return {
            "sampled": self.sampled,
            "buffered": len(self._buffer),
            "published": self.published,
            "dropped": self.dropped,
            "failed": self.failed,
            "buffered_rows": self._rows,
            "truncated_rows": self.truncated_rows,
        }

    def record(self, out: Outputs, request_id: str, latency_ms: float) -> None:
        """Keeps a call for publishing, when its model's share draws it. Copies at most the
        bound's records (none when the call is within it); never waits and never raises."""
        rate = self.rates.get(out.model, self.sample_rate)
        if rate <= 0 or (rate < 1 and random.random() >= rate):
            return
        self.sampled += 1
        records = 0
        try:
            records = len(out.predictions)
            kept = min(records, self.max_rows)
            if len(self._buffer) >= self.buffer_size or self._rows + kept > self.buffer_rows:
                self._dropped(out.model, records)
                return
            self._buffer.append(
                _Sampled(
                    model=out.model,
                    version=out.version,
                    runtime=out.runtime,
                    request_id=request_id,
                    at=datetime.now(UTC),
                    latency_ms=max(latency_ms, 0.0),
                    records=records,
                    call_id=out.call_id,
                    rows=_first(out.rows, kept, records),
                    predictions=_first_of(out.predictions, kept, records),
                    probabilities=None if out.probabilities is None else _first_of(out.probabilities, kept, records),
                    classes=out.classes,
                    card=out.card if out.warnings else None,
                    shadow=out.shadow,
                )
            )
        except Exception as exc:
            # The prediction was served; only its capture is lost.
            self._dropped(out.model, records, exc)
            return
        self._rows += kept
        if records > kept:
            self.truncated_rows += records - kept
            self.metrics.captured_rows.labels(out.model, "truncated").inc(records - kept)
        if (len(self._buffer) >= self.max_batch or self._rows >= BULK_ROWS) and self._due is not None:
            self._due.set()

    def _dropped(self, model: str, records: int, error: Exception | None = None) -> None:
        """A call not captured: the buffer was full, or (`error`) its entry could not be made."""
        self.dropped += 1
        self.metrics.captured_calls.labels(model, "dropped").inc()
        self.metrics.captured_rows.labels(model, "dropped").inc(records)
        if error is not None and not self._broken:
            self._broken = True  # one traceback per run of failures: at every call it would flood the log
            log.warning("a prediction call of model %s could not be captured", model, exc_info=error)

    def _take(self) -> list[_Sampled]:
        """The next bulk: at most max_batch calls and BULK_ROWS records, at least one call."""
        taken = [self._buffer.popleft()]
        rows = taken[0].kept
        while self._buffer and len(taken) < self.max_batch and rows + self._buffer[0].kept <= BULK_ROWS:
            taken.append(self._buffer.popleft())
            rows += taken[-1].kept
        self._rows -= rows
        return taken

    async def flush(self) -> None:
        """Publishes what is buffered, a bulk at a time; after a failure the rest waits for the next flush."""
        while self._buffer:
            taken = self._take()
            calls: list[_Sampled] = []
            bulk: list[BaseModel] = []
            for sampled, event in zip(taken, await asyncio.to_thread(_events, taken), strict=True):
                if isinstance(event, Exception):
                    self._dropped(sampled.model, sampled.records, event)
                else:
                    calls.append(sampled)
                    bulk.append(event)
            if not bulk:
                continue
            self._broken = False
            self._in_flight = len(bulk)
            try:
                await asyncio.wait_for(
                    self.publisher.publish_many(EventType.PREDICTION_LOGGED, bulk), PUBLISH_TIMEOUT_S
                )
            except Exception as exc:
                self._in_flight = 0
                self.failed += len(bulk)
                self._count(calls, "failed")
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
            self._in_flight = 0  # (a cancelled publish leaves it: what close() says it dropped)
            self.published += len(bulk)
            self._count(calls, "published")
            if self._failing:
                self._failing = False
                log.info("the prediction log publishes again")

    def _count(self, calls: list[_Sampled], outcome: str) -> None:
        for sampled in calls:
            self.metrics.captured_calls.labels(sampled.model, outcome).inc()
            self.metrics.captured_rows.labels(sampled.model, outcome).inc(sampled.records)

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

    async def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """A last flush at shutdown, bounded in time (CLOSE_TIMEOUT_S)."""
        self._due = None
        try:
            await asyncio.wait_for(self.flush(), timeout_s)
        except TimeoutError:
            log.warning(
                "the prediction log dropped %d entries at shutdown: not published within %.1f s",
                len(self._buffer) + self._in_flight,
                timeout_s,
            )


def _first(rows: Columns, kept: int, records: int) -> Columns:
    """The first `kept` rows, copied when there are more (a view would hold the whole call)."""
    return rows if kept == records else {name: values[:kept].copy() for name, values in rows.items()}


def _first_of(values: np.ndarray, kept: int, records: int) -> np.ndarray:
    return values if kept == records else np.asarray(values)[:kept].copy()


def _events(taken: list[_Sampled]) -> list[PredictionLogged | Exception]:
    """Each call's event, or why it cannot be made (the others are not held back by it)."""
    out: list[PredictionLogged | Exception] = []
    for sampled in taken:
        try:
            out.append(_event(sampled))
        except Exception as exc:
            out.append(exc)
    return out


def _event(sampled: _Sampled) -> PredictionLogged:
    kept = sampled.kept
    probabilities = classes = None
    if sampled.probabilities is not None and sampled.classes:
        classes = [_plain(c) for c in sampled.classes]
        probabilities = _plain_values(np.asarray(sampled.probabilities))
    warnings = None
    if sampled.card is not None:
        warnings = contract.record_warnings(sampled.rows, sampled.card, kept)
        if not any(warnings):
            warnings = None  # the answer's warnings were of fields the model ignored
    names = list(sampled.rows)
    values = [_plain_values(sampled.rows[name][:kept]) for name in names]
    return PredictionLogged(
        model=sampled.model,
        version=sampled.version,
        runtime=sampled.runtime,
        request_id=sampled.request_id,
        at=sampled.at,
        records=sampled.records,
        prediction_ids=prediction_ids(sampled.call_id, kept),
        inputs=[dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)],
        predictions=_plain_values(np.asarray(sampled.predictions)),
        classes=classes,
        probabilities=probabilities,
        warnings=warnings,
        latency_ms=sampled.latency_ms,
        shadow=sampled.shadow,
    )


def _plain_values(values: np.ndarray) -> list[Any]:
    """An array as JSON-ready lists (column at a time: value by value costs 5 times more)."""
    if values.dtype.kind == "f":
        finite = np.isfinite(values)
        if finite.all():
            return list(values.tolist())
        objects = values.astype(object)
        objects[~finite] = None  # JSON has no NaN or infinity
        return list(objects.tolist())
    if values.dtype.kind in "iub":
        return list(values.tolist())
    if values.ndim > 1:
        return [_plain_values(row) for row in values]
    return [_plain(v) for v in values.tolist()]


def _plain(value: Any) -> Any:
    """A JSON-ready scalar: no NaN or infinity (JSON has none), numpy's as Python's."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    return str(value)
