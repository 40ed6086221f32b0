"""A model's monitoring record, one state document: its policy, the recent checks and actions,
which versions have a stored report, and what is still owed to others (its outbox).

Every change is a pure function of the record, applied by compare-and-swap
(services.common.state.Documents), so that applied again to a newer record it still gives the
right answer. A change that others must hear of (a policy change, a drift found) appends what
it owes, whole and with a stable id, to the outbox in the same write: the history entry for the
registry, the event for pub/sub. They are sent after the write, and again until sent
(services/monitor/monitoring.py), so that a change is never stored without them.
"""

from datetime import datetime, timedelta
from typing import Final, Literal

from pydantic import BaseModel, Field

from services.common.contracts.models import Note
from services.common.events import ModelDriftDetected
from services.monitor.domain.policy import MonitoringPolicy
from services.monitor.domain.reports import RECENT, ActionTaken, CheckSummary, VersionReport, newest_first
from services.monitor.domain.retrain import RetrainOrder

OUTBOX: Final = 200
"""Items a record owes at most: past it (the registry or the pub/sub away for long while checks
keep finding drift) the oldest are let go, and counted."""
VERSIONS_KEPT: Final = 20
"""Versions whose last report the record lists (the newest numbers); older reports stay stored
but are no longer shown."""


class Owed(BaseModel):
    """Something a change owes another service: a history entry (note), an event (drift), or a
    retrain (a new dataset version through ingestion and its training job)."""

    id: str = Field(min_length=1, max_length=200)
    kind: Literal["note", "drift", "retrain"]
    note: Note | None = None
    drift: ModelDriftDetected | None = None
    retrain: RetrainOrder | None = None


class Told(BaseModel):
    """A version's drift as last told (history entry, and event with notify)."""

    drifted: list[str]
    at: datetime


RETELL: Final = timedelta(hours=24)
"""A version drifting on the same features as when last told is told again only this long after:
a check every few minutes would otherwise fill the history and the subscribers with one drift."""


def repeated(told: Told | None, drifted: list[str], at: datetime) -> bool:
    """The drift is the one told already, within RETELL."""
    return told is not None and told.drifted == drifted and at - told.at < RETELL


def told_after(before: dict[str, Told], reports: list[VersionReport]) -> dict[str, Told]:
    """What is told of each version once a check's reports are: a drift not repeated is told now;
    a version no longer drifting is forgotten (its next drift is told at once)."""
    after = dict(before)
    for report in reports:
        key = str(report.version)
        if not report.drifted:
            after.pop(key, None)
        elif not repeated(before.get(key), report.drifted, report.at):
            after[key] = Told(drifted=report.drifted, at=report.at)
    return after


class MonitoringRecord(BaseModel):
    model: str
    policy: MonitoringPolicy | None = None
    changed_at: datetime | None = None
    changed_by: str | None = None
    versions: list[int] = Field(default_factory=list)
    """Versions with a stored report (monitoring-report:<model>:<version>), newest first."""
    checks: list[CheckSummary] = Field(default_factory=list)
    """The newest RECENT checks, newest first."""
    actions: list[ActionTaken] = Field(default_factory=list)
    """The newest RECENT actions taken, newest first."""
    outbox: list[Owed] = Field(default_factory=list)
    let_go: int = Field(0, ge=0)
    """Owed items let go unsent, ever: the outbox was full."""
    told: dict[str, Told] = Field(default_factory=dict)
    """By version: its drift as last told (see RETELL)."""
    retrain_ordered_at: datetime | None = None
    """When a check last ordered a retrain (the policy's cooldown counts from it)."""


def owe(record: MonitoringRecord, items: list[Owed]) -> None:
    """Appends the items to the outbox (each id once), letting the oldest go (counted in
    `let_go`) to keep it within OUTBOX."""
    have = {o.id for o in record.outbox}
    record.outbox += [i for i in items if i.id not in have]
    dropped = max(0, len(record.outbox) - OUTBOX)
    record.outbox, record.let_go = record.outbox[dropped:], record.let_go + dropped


def with_policy(
    record: MonitoringRecord | None,
    model: str,
    policy: MonitoringPolicy | None,
    at: datetime,
    actor: str,
    owed: list[Owed],
) -> MonitoringRecord | None:
    """The record with the policy set (None: removed) and its history entry owed; None when the
    policy is already the one stored (nothing changes, nothing is recorded)."""
    record = record or MonitoringRecord(model=model)
    if record.policy == policy:
        return None
    record.policy, record.changed_at, record.changed_by = policy, at, actor
    owe(record, owed)
    return record


def with_check(
    record: MonitoringRecord | None,
    model: str,
    summary: CheckSummary,
    reports: list[VersionReport],
    actions: list[ActionTaken],
    owed: list[Owed],
) -> MonitoringRecord:
    """The record with a check's summary, the versions it reported on (and their drift told), its
    actions and what it owes."""
    reported = [r.version for r in reports]
    record = record or MonitoringRecord(model=model)
    if any(c.check_id == summary.check_id for c in record.checks):
        return record  # applied already (a retried write)
    record.checks = newest_first(record.checks, [summary], RECENT)
    record.actions = newest_first(record.actions, actions, RECENT)
    record.versions = sorted(set(record.versions) | set(reported), reverse=True)[:VERSIONS_KEPT]
    record.told = told_after(record.told, reports)
    ordered = [o.retrain.until for o in owed if o.retrain is not None]
    if ordered:
        record.retrain_ordered_at = max(ordered)
    owe(record, owed)
    return record


def with_retrain_done(
    record: MonitoringRecord | None, order_id: str, action: ActionTaken, owed: list[Owed]
) -> MonitoringRecord | None:
    """The record without the retrain it owed, with what became of it (an action, and the history
    entry owed); None when the order is no longer owed (another relay finished it first)."""
    if record is None or not any(o.id == order_id for o in record.outbox):
        return None
    record.outbox = [o for o in record.outbox if o.id != order_id]
    record.actions = newest_first(record.actions, [action], RECENT)
    owe(record, owed)
    return record


def without_sent(record: MonitoringRecord | None, sent: set[str]) -> MonitoringRecord | None:
    """The record without the outbox items sent (those added meanwhile stay)."""
    if record is None:
        return None
    record.outbox = [o for o in record.outbox if o.id not in sent]
    return record
