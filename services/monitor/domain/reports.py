"""What drift checks leave behind: each version's last report, a bounded list of recent checks
and of the actions they took, and what GET /api/models/{name}/monitoring answers.

Pure: pydantic models and the rules that keep their lists bounded.
"""

from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel, Field

from services.common.events import FeatureDrift
from services.monitor.domain.drift import DriftReport

RECENT: Final = 50
"""Checks, and actions, the model's monitoring document keeps (the newest)."""
DRIFTED_NAMED: Final = 50
"""Drifted features a check's summary names (its report names them all)."""
VERSIONS_CHECKED: Final = 10
"""Versions one check reports on at most: the champion, then those with the most rows in the window."""


class Trigger(StrEnum):
    SCHEDULE = "schedule"  # the model's Dapr Job fired
    API = "api"  # POST /api/models/{name}/monitoring/check


class VersionReport(BaseModel):
    """One version's drift in one check: its captured rows of the window against the reference
    distributions on its model card."""

    model: str
    version: int
    check_id: str
    at: datetime = Field(description="when the check ran")
    trigger: Trigger
    window_from: datetime = Field(description="the oldest row read (the window's start when there were none)")
    window_to: datetime
    rows: int = Field(ge=0, description="captured rows of this version in the window")
    threshold: float
    drifted: list[str] = Field(description="the drifted features, and 'output' when the predictions drifted")
    features: dict[str, FeatureDrift]
    output: FeatureDrift | None = None


class Skipped(BaseModel):
    """A version with rows in the window that a check could not report on, and why."""

    version: int
    reason: str


class ActionTaken(BaseModel):
    """What a check did about drift or a drop of live accuracy, or what became of a retrain it ordered."""

    at: datetime
    check_id: str
    version: int
    action: str = Field(
        description="none: recorded only (or told already); notify: the history told (and ModelDriftDetected "
        "published for drift); retrain: a retrain ordered; what became of it: retrained (a dataset version "
        "and its training job), retrain-skipped, retrain-failed"
    )
    reason: str


class CheckSummary(BaseModel):
    """One check, in the model's bounded list of recent checks."""

    check_id: str
    at: datetime
    trigger: Trigger
    actor: str
    versions: dict[str, int] = Field(description="rows read, by version")
    drifted: dict[str, list[str]] = Field(description="drifted features (the first 50), by version that drifted")
    skipped: list[Skipped] = Field(default_factory=list)


class CheckResult(BaseModel):
    """Answer of POST /api/models/{name}/monitoring/check."""

    model: str
    check_id: str
    at: datetime
    trigger: Trigger
    champion: int | None = Field(description="the champion when the check ran; None: the model has none")
    rows_read: int = Field(description="captured rows read from the window, all versions")
    reports: list[VersionReport]
    skipped: list[Skipped]
    actions: list[ActionTaken]

    @property
    def drifted(self) -> bool:
        return any(r.drifted for r in self.reports)


def version_report(
    report: DriftReport,
    model: str,
    version: int,
    check_id: str,
    at: datetime,
    trigger: Trigger,
    window: tuple[datetime, datetime],
    threshold: float,
) -> VersionReport:
    return VersionReport(
        model=model,
        version=version,
        check_id=check_id,
        at=at,
        trigger=trigger,
        window_from=window[0],
        window_to=window[1],
        rows=report.rows,
        threshold=threshold,
        drifted=report.drifted,
        features=report.features,
        output=report.output,
    )


def summary(result: CheckResult, actor: str) -> CheckSummary:
    return CheckSummary(
        check_id=result.check_id,
        at=result.at,
        trigger=result.trigger,
        actor=actor,
        versions={str(r.version): r.rows for r in result.reports},
        drifted={str(r.version): r.drifted[:DRIFTED_NAMED] for r in result.reports if r.drifted},
        skipped=result.skipped,
    )


def newest_first(items: list[Any], added: list[Any], kept: int = RECENT) -> list[Any]:
    """The list with `added` before it (newest first), cut to the newest `kept`."""
    return [*added, *items][:kept]
