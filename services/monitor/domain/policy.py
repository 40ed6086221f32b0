"""A model's monitoring policy: which captured predictions a drift check reads (its window),
when drift is called, how often the check runs, and what drift or a drop of live accuracy does.

Pure: pydantic models and their rules.
"""

from enum import StrEnum
from typing import Final, Self

from pydantic import BaseModel, Field, StrictFloat, StrictInt, field_validator, model_validator

from services.monitor.domain import schedule as schedules
from services.monitor.domain.drift import DriftSettings

MAX_WINDOW_ROWS: Final = 100_000
"""The most rows one check reads: a window of more is cut to its newest rows."""
MAX_WINDOW_HOURS: Final = 24 * 90


class Action(StrEnum):
    NONE = "none"  # the report is kept, nothing else happens
    NOTIFY = "notify"  # ModelDriftDetected is published and the model's history records it
    RETRAIN = "retrain"  # notify, then retrain the champion on its training data plus the labeled captures


class MonitoringPolicy(BaseModel):
    """Body of PUT /api/models/{name}/monitoring, as stored. Every field has a default: `{}`
    is a policy (a check of the last 24 hours, at most 10,000 rows, notifying on drift, run by
    hand only)."""

    window_rows: StrictInt | None = Field(
        10_000, ge=1, le=MAX_WINDOW_ROWS, description="a check reads at most this many of the newest rows"
    )
    window_hours: StrictFloat | None = Field(
        24.0, gt=0, le=MAX_WINDOW_HOURS, description="a check reads the rows of this many hours up to now"
    )
    drift_threshold: StrictFloat = Field(
        0.2, gt=0, le=10, description="PSI above which a feature (or the output) drifted"
    )
    missing_rise: StrictFloat = Field(
        0.1, gt=0, le=1, description="a share of missing values this much above training's is drift too"
    )
    min_rows: StrictInt = Field(50, ge=1, le=MAX_WINDOW_ROWS, description="rows a version needs before drift is called")
    schedule: str | None = Field(
        None,
        max_length=schedules.MAX_LENGTH,
        description="when the check runs by itself, as Dapr's scheduler reads it: '@every 1h', '@daily', or cron "
        "with seconds ('0 0 6 * * *': 06:00 every day); null: only when asked (POST .../monitoring/check)",
    )
    on_drift: Action = Field(
        Action.NOTIFY,
        description="what a check that finds drift does: none, notify, or retrain (notify, and when the champion "
        "drifted, train its estimator again on its training data plus the captured predictions that have an actual)",
    )
    on_accuracy_drop: Action = Field(
        Action.NONE,
        description="what a check does when a version's live accuracy (from feedback) fell below its holdout "
        "accuracy by more than accuracy_drop: none, notify (a history entry), or retrain (as on_drift, when it is "
        "the champion's)",
    )
    accuracy_drop: StrictFloat = Field(
        0.05, gt=0, le=1, description="how far live accuracy may fall below the holdout's before it counts as a drop"
    )
    retrain_min_rows: StrictInt = Field(
        50,
        ge=1,
        le=MAX_WINDOW_ROWS,
        description="captured predictions with an actual a retrain needs; fewer: it is skipped (it would train on "
        "the old data alone)",
    )
    retrain_cooldown_hours: StrictFloat = Field(
        24.0,
        ge=0,
        le=MAX_WINDOW_HOURS,
        description="after a retrain is ordered, checks order none for this many hours (a model still drifting "
        "while its new version trains would otherwise be retrained by every check)",
    )

    model_config = {"extra": "forbid"}

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        why = schedules.problem(value)
        if why is not None:
            raise ValueError(why)
        return value

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.window_rows is None and self.window_hours is None:
            raise ValueError("a window needs window_rows, window_hours or both")
        if self.window_rows is not None and self.min_rows > self.window_rows:
            raise ValueError(f"min_rows ({self.min_rows}) cannot exceed window_rows ({self.window_rows})")
        return self

    @property
    def scheduled(self) -> bool:
        return self.schedule is not None

    @property
    def rows_cap(self) -> int:
        return self.window_rows if self.window_rows is not None else MAX_WINDOW_ROWS

    def drift_settings(self) -> DriftSettings:
        return DriftSettings(threshold=self.drift_threshold, missing_rise=self.missing_rise, min_rows=self.min_rows)


DEFAULT: Final = MonitoringPolicy()
"""What a check of a model without a policy uses."""

ACCURACY: Final = "accuracy"
"""The live metric an accuracy drop is read from (classifiers'; a regressor has none)."""


def accuracy_dropped(holdout: float | None, live: float, pairs: int, policy: MonitoringPolicy) -> str | None:
    """Why live accuracy counts as dropped (None: it does not): more than `accuracy_drop` below
    the holdout's, over at least `min_rows` pairs (fewer say too little)."""
    if holdout is None or pairs < policy.min_rows or holdout - live <= policy.accuracy_drop:
        return None
    return (
        f"live accuracy {live:.3f} over {pairs} pairs is {holdout - live:.3f} below the holdout's {holdout:.3f} "
        f"(more than {policy.accuracy_drop:g})"
    )


def changes(before: MonitoringPolicy | None, after: MonitoringPolicy | None) -> dict[str, dict[str, object]]:
    """What differs between two policies, field by field ({field: {"from": a, "to": b}}): the
    details of the history entry a change records. A policy set where there was none lists
    every field (from None)."""
    old = before.model_dump(mode="json") if before is not None else {}
    new = after.model_dump(mode="json") if after is not None else {}
    return {
        name: {"from": old.get(name), "to": new.get(name)}
        for name in sorted(old.keys() | new.keys())
        if old.get(name) != new.get(name)
    }
