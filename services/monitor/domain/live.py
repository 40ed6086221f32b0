"""Live metrics: how well a model version answers in production, from its captured predictions
joined with the actual values sent back as feedback.

Classifiers: accuracy, F1 (macro) and, over the predictions whose class probabilities were
captured, log loss. Regressors: RMSE and MAE. Each metric with the count of pairs it is based
on, named as training names the holdout's metrics, computed by the same scikit-learn functions
so that the two compare. Over a sliding window (the last N pairs, or those of the last T) and
per day (UTC, by when the prediction was made).

Pure and deterministic: the same pairs give the same numbers.
"""

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, log_loss, mean_absolute_error, mean_squared_error

from services.common.contracts import ColumnType, Task
from services.common.contracts.coercion import WrongType, is_missing, number
from services.common.contracts.monitoring import LiveMetric, LiveMetrics, label_key  # shared: the rollouts read them

_INTEGRAL = re.compile(r"-?[0-9]+\.0+")


@dataclass(frozen=True)
class Outcome:
    """One captured prediction joined with its actual value."""

    at: datetime
    """When the prediction was made (a naive time is read as UTC)."""
    predicted: Any
    actual: Any
    probabilities: Mapping[str, float] | None = None
    """Each class's probability, by the class as a string (as captured), when it was."""


def class_key(value: Any) -> str:
    """A class as predictions, actuals and probability keys are compared: label_key, and a
    string that is an integer written as a float ("1.0", as str() writes a float class) as the
    integer, so the float class 1.0 matches an actual sent as 1."""
    key = label_key(value)
    return key.split(".")[0] if _INTEGRAL.fullmatch(key) else key


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def window(
    outcomes: Iterable[Outcome], last: int | None = None, within: timedelta | None = None, now: datetime | None = None
) -> list[Outcome]:
    """The outcomes of a sliding window, in time order: those made from `within` before `now`
    (the latest outcome's time when not given) up to `now`, then the last `last` of those."""
    ordered = sorted(outcomes, key=lambda o: _utc(o.at))  # stable: equal times keep their order
    if within is not None and ordered:
        end = _utc(now or ordered[-1].at)
        ordered = [o for o in ordered if end - within <= _utc(o.at) <= end]
    if last is not None:
        ordered = ordered[-last:] if last > 0 else []
    return ordered


def daily(outcomes: Iterable[Outcome], task: Task) -> dict[date, LiveMetrics]:
    """The metrics of each UTC day's outcomes (by when the prediction was made), days in order."""
    days: dict[date, list[Outcome]] = {}
    for outcome in outcomes:
        days.setdefault(_utc(outcome.at).date(), []).append(outcome)
    return {day: metrics(days[day], task) for day in sorted(days)}


def metrics(outcomes: Sequence[Outcome], task: Task) -> LiveMetrics:
    """The live metrics of these outcomes."""
    times = [_utc(o.at) for o in outcomes]
    computed = _regression(outcomes) if task == Task.REGRESSION else _classification(outcomes)
    return LiveMetrics(
        count=len(outcomes), first=min(times, default=None), last=max(times, default=None), metrics=computed
    )


def _present(value: Any) -> bool:
    return not is_missing(value.item() if isinstance(value, np.generic) else value)


def _classification(outcomes: Sequence[Outcome]) -> dict[str, LiveMetric]:
    usable = [o for o in outcomes if _present(o.actual) and _present(o.predicted)]
    pairs = [(class_key(o.actual), class_key(o.predicted), o) for o in usable]
    if not pairs:
        return {}
    actual = [a for a, _, _ in pairs]
    predicted = [p for _, p, _ in pairs]
    # F1 over the classes the window holds (as actual or prediction): a class no pair holds has
    # no F1 to average, and counting it as 0 would lower the score for what did not happen.
    labels = sorted(set(actual) | set(predicted))
    result = {
        "accuracy": LiveMetric(value=float(accuracy_score(actual, predicted)), count=len(pairs)),
        "f1_macro": LiveMetric(
            value=float(f1_score(actual, predicted, average="macro", labels=labels, zero_division=0)),
            count=len(pairs),
        ),
    }
    loss = _log_loss([(a, o.probabilities) for a, _, o in pairs if o.probabilities])
    if loss is not None:
        result["log_loss"] = loss
    return result


def _log_loss(pairs: Sequence[tuple[str, Mapping[str, float]]]) -> LiveMetric | None:
    """Log loss over the pairs whose actual is one of the classes their probabilities give (a
    class the model does not have has no probability to score: training leaves log loss out for
    such rows too). Probabilities are clipped to [eps, 1 - eps] (scikit-learn's)."""
    rows = [(actual, {class_key(k): float(p) for k, p in probabilities.items()}) for actual, probabilities in pairs]
    rows = [(actual, probabilities) for actual, probabilities in rows if actual in probabilities]
    classes = sorted({c for _, probabilities in rows for c in probabilities})
    if not rows or len(classes) < 2:
        return None
    matrix = np.array([[probabilities.get(c, 0.0) for c in classes] for _, probabilities in rows], dtype=float)
    if not np.isfinite(matrix).all() or (matrix < 0).any() or (matrix > 1).any():
        return None  # not probabilities: nothing to score
    # Captured probabilities may be float32 (ONNX): normalized, as a model's own rows sum to 1.
    totals = matrix.sum(axis=1, keepdims=True)
    matrix = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    value = log_loss([actual for actual, _ in rows], matrix, labels=classes)
    return LiveMetric(value=float(value), count=len(rows))


def _number(value: Any) -> float:
    try:
        return number(value.item() if isinstance(value, np.generic) else value, ColumnType.NUMBER)
    except WrongType:
        return math.nan


def _regression(outcomes: Sequence[Outcome]) -> dict[str, LiveMetric]:
    pairs = [(_number(o.actual), _number(o.predicted)) for o in outcomes]
    pairs = [(a, p) for a, p in pairs if not (math.isnan(a) or math.isnan(p))]
    if not pairs:
        return {}
    actual, predicted = zip(*pairs, strict=True)
    return {
        "rmse": LiveMetric(value=float(np.sqrt(mean_squared_error(actual, predicted))), count=len(pairs)),
        "mae": LiveMetric(value=float(mean_absolute_error(actual, predicted)), count=len(pairs)),
    }
