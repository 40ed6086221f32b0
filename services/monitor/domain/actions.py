"""What a drift check does about what it found, as its policy says: the actions it lists and what
they owe others (history entries, drift events, a retrain order), nothing sent yet. Pure.
"""

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from services.common.contracts.models import MAX_DETAILS_BYTES, Note, VersionInfo
from services.common.events import ModelDriftDetected
from services.monitor.domain.ledger import LiveReport
from services.monitor.domain.policy import ACCURACY, Action, MonitoringPolicy, accuracy_dropped
from services.monitor.domain.record import Owed, Told, repeated
from services.monitor.domain.reports import ActionTaken, VersionReport
from services.monitor.domain.retrain import RETRAIN, RETRAIN_SKIPPED, RetrainOrder

NOTIFYING: Final = (Action.NOTIFY, Action.RETRAIN)
Found = tuple[list[ActionTaken], list[Owed]]


def told_by(actor: str, app_id: str) -> str | None:
    """The history entry's actor: none for the monitor's own schedule (the registry then records
    the monitor's app id), else who asked."""
    return None if actor == app_id else actor


def drift_found(
    policy: MonitoringPolicy,
    reports: list[VersionReport],
    actor: str | None,
    truncated: bool,
    told: Mapping[str, Told],
) -> Found:
    """A history entry for each drifted version, and with notify (or retrain) its
    ModelDriftDetected; a drift told already (the same features, within RETELL) is an action
    only."""
    actions: list[ActionTaken] = []
    owed: list[Owed] = []
    for report in (r for r in reports if r.drifted):
        notify = policy.on_drift in NOTIFYING
        words = f"{len(report.drifted)} drifted over {report.rows} rows: {', '.join(report.drifted[:10])}"
        before = told.get(str(report.version))
        if before is not None and repeated(before, report.drifted, report.at):
            still = f"{words} (as told at {before.at:%Y-%m-%d %H:%M:%S} UTC: not told again within a day)"
            actions.append(
                ActionTaken(at=report.at, check_id=report.check_id, version=report.version, action="none", reason=still)
            )
            continue
        details = {
            "check_id": report.check_id,
            "version": report.version,
            "rows": report.rows,
            "threshold": report.threshold,
            "window_truncated": truncated,
            "action": policy.on_drift.value,
            "psi": {n: report.features[n].psi for n in report.drifted if n in report.features},
        }
        note = Note(
            action="monitoring.drift",
            reason=f"version {report.version}: {words}"[:2000],
            details=bounded(details),
            actor=actor,
        )
        owed.append(Owed(id=f"{report.check_id}-{report.version}-note", kind="note", note=note))
        if notify:
            event = ModelDriftDetected(
                model=report.model,
                version=report.version,
                check_id=report.check_id,
                window_from=report.window_from,
                window_to=report.window_to,
                rows=report.rows,
                threshold=report.threshold,
                features=report.features,
                output=report.output,
            )
            owed.append(Owed(id=f"{report.check_id}-{report.version}", kind="drift", drift=event))
        actions.append(
            ActionTaken(
                at=report.at,
                check_id=report.check_id,
                version=report.version,
                action="notify" if notify else "none",
                reason=words,
            )
        )
    return actions, owed


def accuracy_found(
    policy: MonitoringPolicy,
    live: LiveReport,
    infos: dict[int, VersionInfo],
    check_id: str,
    now: datetime,
    actor: str | None,
) -> Found:
    """The versions checked whose live accuracy fell below their holdout's by more than the
    policy allows: each an action, and a `monitoring.accuracy` history entry (no event: none
    is defined for it yet)."""
    actions: list[ActionTaken] = []
    owed: list[Owed] = []
    for version_live in live.versions:
        info = infos.get(version_live.version)
        measured = version_live.window.metrics.get(ACCURACY)
        if info is None or measured is None:
            continue
        why = accuracy_dropped(info.metrics.get(ACCURACY), measured.value, measured.count, policy)
        if why is None:
            continue
        version = version_live.version
        details = {
            "check_id": check_id,
            "version": version,
            "live": measured.value,
            "pairs": measured.count,
            "holdout": info.metrics.get(ACCURACY),
            "accuracy_drop": policy.accuracy_drop,
        }
        note = Note(action="monitoring.accuracy", reason=f"version {version}: {why}", details=details, actor=actor)
        owed.append(Owed(id=f"{check_id}-{version}-accuracy", kind="note", note=note))
        actions.append(ActionTaken(at=now, check_id=check_id, version=version, action="notify", reason=why))
    return actions, owed


def retrain_ordered(
    policy: MonitoringPolicy,
    model: str,
    champion: int | None,
    drifts: list[ActionTaken],
    drops: list[ActionTaken],
    last_ordered: datetime | None,
    check_id: str,
    now: datetime,
    actor: str | None,
) -> Found:
    """A retrain order when the policy says retrain for what happened to the champion (its drift,
    its accuracy drop), unless one was ordered within the cooldown. One order a check at most:
    the champion's lineage is what is trained again."""
    why = [f"drift ({a.reason})" for a in drifts if a.version == champion and policy.on_drift == Action.RETRAIN]
    why += [a.reason for a in drops if a.version == champion and policy.on_accuracy_drop == Action.RETRAIN]
    if champion is None or not why:
        return [], []
    reason = "; ".join(why)[:1500]
    if last_ordered is not None and now - last_ordered < timedelta(hours=policy.retrain_cooldown_hours):
        skipped = (
            f"{reason}: not retrained, a retrain was ordered at {last_ordered:%Y-%m-%d %H:%M:%S} UTC, within the "
            f"policy's retrain_cooldown_hours ({policy.retrain_cooldown_hours:g})"
        )
        return [ActionTaken(at=now, check_id=check_id, version=champion, action=RETRAIN_SKIPPED, reason=skipped)], []
    order = RetrainOrder(
        id=f"{check_id}-retrain",
        model=model,
        version=champion,
        check_id=check_id,
        until=now,
        min_rows=policy.retrain_min_rows,
        reason=reason,
        actor=actor,
    )
    ordered = ActionTaken(at=now, check_id=check_id, version=champion, action=RETRAIN, reason=f"ordered: {reason}")
    return [ordered], [Owed(id=order.id, kind="retrain", retrain=order)]


def bounded(details: dict[str, Any]) -> dict[str, Any]:
    """Details within the registry's limit: the biggest value cut to a note when too large."""
    while len(json.dumps(details, default=str)) > MAX_DETAILS_BYTES and details:
        biggest = max(details, key=lambda k: len(json.dumps(details[k], default=str)))
        details = {**details, biggest: "(too large for the history: GET .../monitoring has it)"}
        if len(json.dumps(details, default=str)) > MAX_DETAILS_BYTES:
            details.pop(biggest)
    return details
