"""What the monitor holds of a model to measure it live, and the live report it gives.

A model's recent captured predictions and the actual values sent for them, each by prediction
id and bounded in rows, are joined by id when a report is made: an actual that came before its
prediction was captured (capture lags the call by seconds) joins it as soon as it is. The report
gives the live metrics (domain/live.py) of every version together and of each version, over a
sliding window and per UTC day. Pure.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from services.common.contracts import Task
from services.common.contracts.monitoring import LiveEvidence, LiveMetrics, LiveOfVersion
from services.monitor.domain.live import Outcome, daily, metrics, window
from services.monitor.domain.rows import key_of, utc

PRIMARY = {Task.CLASSIFICATION: "accuracy", Task.REGRESSION: "rmse"}
"""The metric a report leads with (and Prometheus gauges), by task."""


@dataclass(frozen=True, slots=True)
class Prediction:
    """A captured prediction, as live metrics need it (not its inputs)."""

    at: datetime
    version: int
    output: Any
    probabilities: dict[str, float] | None = None


@dataclass(frozen=True, slots=True)
class Truth:
    """An actual value sent back for a prediction."""

    actual: Any
    received_at: datetime


T = TypeVar("T")


class Held(Generic[T]):
    """Rows by prediction id, at most `limit`: past it, the oldest (by `time`) are let go. Of two
    rows with one id, the earlier is kept (the first actual sent wins; a prediction captured
    twice is the same row)."""

    def __init__(self, limit: int, time: Callable[[T], datetime]):
        self.limit, self.time = limit, time
        self.rows: dict[str, T] = {}
        self.let_go_until: datetime | None = None
        """The newest time of a row let go for the limit (not for age): rows before it may be missing."""

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, prediction_id: object) -> bool:
        return prediction_id in self.rows

    def add(self, prediction_id: str, row: T) -> None:
        held = self.rows.get(prediction_id)
        if held is None or utc(self.time(row)) < utc(self.time(held)):
            self.rows[prediction_id] = row

    def trim(self, horizon: datetime) -> None:
        """Lets go of the rows older than `horizon`, then of the oldest past the limit."""
        horizon = utc(horizon)
        self.rows = {k: r for k, r in self.rows.items() if utc(self.time(r)) >= horizon}
        if self.let_go_until is not None and self.let_go_until < horizon:
            self.let_go_until = None  # what was let go would have aged out by now
        excess = len(self.rows) - self.limit
        if excess > 0:
            ordered = sorted(self.rows.items(), key=lambda kv: utc(self.time(kv[1])))
            newest_gone = utc(self.time(ordered[excess - 1][1]))
            self.let_go_until = max(newest_gone, self.let_go_until or newest_gone)
            self.rows = dict(ordered[excess:])

    def oldest(self) -> datetime | None:
        return min((utc(self.time(r)) for r in self.rows.values()), default=None)


def held_predictions(limit: int) -> Held[Prediction]:
    return Held(limit, lambda p: p.at)


def held_truths(limit: int) -> Held[Truth]:
    return Held(limit, lambda t: t.received_at)


def task_of(predictions: Iterable[Prediction]) -> Task | None:
    """The task, read from what the model answered (the monitor does not ask the registry): a
    classifier answers classes (strings, integers, booleans) and, when asked for them, their
    probabilities; a regressor answers floats only. None before anything was captured. (A
    classifier whose classes are floats reads as a regressor when no call asked for
    probabilities: every classifier training fits gives them on the JSON predict API.)"""
    seen = False
    for prediction in predictions:
        if prediction.output is None:
            continue
        seen = True
        if prediction.probabilities or not isinstance(prediction.output, float):
            return Task.CLASSIFICATION
    return Task.REGRESSION if seen else None


class LiveDay(LiveMetrics):
    """The metrics of one UTC day's predictions (by when they were made)."""

    day: date


class VersionLive(BaseModel):
    version: int
    window: LiveMetrics
    daily: list[LiveDay]


class LiveSettings(BaseModel):
    """What the report covers (the monitor's settings)."""

    window_pairs: int = Field(ge=1)
    """The sliding window: at most the last this-many pairs ..."""
    window_hours: float = Field(gt=0)
    """... made within this many hours before `computed_at`."""
    retention_days: int = Field(ge=1)
    """Daily metrics (and late feedback) go back this many days."""
    max_rows: int = Field(ge=1)
    """Captured predictions (and actuals) held per model; past it the oldest are let go."""


class LiveReport(BaseModel):
    """Answer of GET /api/models/{name}/monitoring/live: how well the model answers in
    production, from its captured predictions joined with the actual values sent as feedback.
    Each metric comes with the count of pairs it is based on."""

    model: str
    computed_at: datetime
    """When the report was made: it may be up to DAPRML_LIVE_CACHE_S old."""
    task: Task | None
    """Read from the captured predictions (None: nothing captured yet)."""
    primary: str | None
    """The metric to watch: accuracy (classifiers) or rmse (regressors)."""
    window: LiveMetrics
    """Every version together, over the sliding window."""
    daily: list[LiveDay]
    """Every version together, per UTC day, oldest first."""
    versions: list[VersionLive]
    """Each version that has pairs, by version."""
    pairs: int = Field(ge=0)
    """Captured predictions held that have an actual."""
    pending: int = Field(ge=0)
    """Actuals held whose prediction is not captured (yet)."""
    held_predictions: int = Field(ge=0)
    held_feedback: int = Field(ge=0)
    held_since: datetime | None
    """The oldest captured prediction held."""
    truncated: bool
    """Rows were let go for `max_rows`: older days' metrics miss some (or all) pairs."""
    settings: LiveSettings


def live_report(
    model: str,
    predictions: Mapping[str, Prediction],
    truths: Mapping[str, Truth],
    now: datetime,
    settings: LiveSettings,
    truncated: bool = False,
) -> LiveReport:
    """The report of the pairs these rows make (a prediction with its actual, by id)."""
    task = task_of(predictions.values())
    by_version: dict[int, list[Outcome]] = {}
    # In the tables' order (time, call, place in the call): a window's last pairs are the same
    # whatever order the feedback came in, though a call's predictions share their time.
    joined = sorted((key_of(i, p.at), i, p) for i, p in predictions.items() if i in truths)
    for _, prediction_id, prediction in joined:
        by_version.setdefault(prediction.version, []).append(
            Outcome(prediction.at, prediction.output, truths[prediction_id].actual, prediction.probabilities)
        )
    every = [o for outcomes in by_version.values() for o in outcomes]
    # A prediction stamped after `now` (the inference replica's clock a little ahead) still counts.
    end = max([utc(now), *(utc(o.at) for o in every)])
    within = timedelta(hours=settings.window_hours)
    metric_task = task or Task.CLASSIFICATION

    def windowed(outcomes: list[Outcome]) -> LiveMetrics:
        return metrics(window(outcomes, settings.window_pairs, within, end), metric_task)

    def days(outcomes: list[Outcome]) -> list[LiveDay]:
        return [LiveDay(day=d, **m.model_dump()) for d, m in daily(outcomes, metric_task).items()]

    return LiveReport(
        model=model,
        computed_at=utc(now),
        task=task,
        primary=PRIMARY[task] if task else None,
        window=windowed(every),
        daily=days(every),
        versions=[
            VersionLive(version=v, window=windowed(by_version[v]), daily=days(by_version[v]))
            for v in sorted(by_version)
        ],
        pairs=len(every),
        pending=sum(1 for prediction_id in truths if prediction_id not in predictions),
        held_predictions=len(predictions),
        held_feedback=len(truths),
        held_since=min((utc(p.at) for p in predictions.values()), default=None),
        truncated=truncated,
        settings=settings,
    )


def live_since(
    predictions: Mapping[str, Prediction], truths: Mapping[str, Truth], since: datetime, truncated: bool = False
) -> LiveEvidence:
    """Each version's live metrics over its predictions made from `since` on that have an
    actual (a rollout's step: the pairs since it began), whatever the sliding window."""
    start = utc(since)
    recent = {i: p for i, p in predictions.items() if utc(p.at) >= start}
    task = task_of(predictions.values())  # all held: a step's first answers may not tell yet
    by_version: dict[int, list[Outcome]] = {}
    for _, prediction_id, prediction in sorted((key_of(i, p.at), i, p) for i, p in recent.items() if i in truths):
        by_version.setdefault(prediction.version, []).append(
            Outcome(prediction.at, prediction.output, truths[prediction_id].actual, prediction.probabilities)
        )
    return LiveEvidence(
        task=task,
        primary=PRIMARY[task] if task else None,
        versions=[
            LiveOfVersion(version=v, **metrics(by_version[v], task or Task.CLASSIFICATION).model_dump())
            for v in sorted(by_version)
        ],
        truncated=truncated,
    )
