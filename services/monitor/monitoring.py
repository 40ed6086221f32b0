"""Monitoring a model: its policy, drift checks (asked for, or fired by the model's Dapr Job),
their reports, and what they owe the registry (history entries) and pub/sub (drift events).

State, in the monitor's store:
- `monitoring:<model>`, the model's record (domain/record.py): policy, recent checks and actions,
  which versions have a report, the outbox;
- `monitoring-report:<model>:<version>`, the version's last drift report;
- `monitoring:models`, the names of the models with a record (for the outbox's background relay:
  a state store cannot list its keys).

One check of a model runs at a time in this process: a check asked for while one runs is
refused (409), a scheduled one is skipped (the next trigger comes). Two replicas of the monitor
do not share that: the scheduler fires each trigger on one replica, but a check asked for on the
other may run at the same time. Both then store their reports (the newer report of a version
wins) and each announces what it found, under its own check id.
"""

import asyncio
import logging
import re
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from pydantic import BaseModel, Field

from services.common.clients import Absent, RegistryClient
from services.common.contracts import MODEL_NAME
from services.common.contracts.models import Note, VersionInfo
from services.common.contracts.monitoring import CapturedPrediction
from services.common.errors import ClientError, Missing
from services.common.ports import EventPublisher, Jobs
from services.common.state import Documents
from services.monitor.domain import drift
from services.monitor.domain.actions import NOTIFYING, accuracy_found, bounded, drift_found, retrain_ordered, told_by
from services.monitor.domain.ledger import LiveReport
from services.monitor.domain.policy import DEFAULT, MonitoringPolicy, changes
from services.monitor.domain.record import MonitoringRecord, Owed, with_check, with_policy
from services.monitor.domain.reports import (
    VERSIONS_CHECKED,
    ActionTaken,
    CheckResult,
    Skipped,
    Trigger,
    VersionReport,
    summary,
    version_report,
)
from services.monitor.metrics import CHECK_DONE, CHECK_FAILED, CHECK_SKIPPED, MonitorMetrics
from services.monitor.relay import NAMES_KEY, Relay, record_key
from services.monitor.retrain import Retrainer
from services.monitor.shadows import Agreements
from services.monitor.tables import InferenceTables
from services.monitor.views import MonitoringView, PolicyState
from services.monitor.window import newest_rows

log = logging.getLogger(__name__)

JOB_KIND = "drift-check"
"""The kind of the models' Dapr Jobs: `drift-check.<model>` (ServiceSpec.jobs)."""


def report_key(model: str, version: int) -> str:
    return f"monitoring-report:{model}:{version}"


def job_of(model: str) -> str:
    return f"{JOB_KIND}.{model}"


class ModelNotFound(Missing):
    """The registry has no such model."""


class CheckRunning(ClientError):
    status = 409


class CheckTooLong(ClientError):
    status = 503


class Names(BaseModel):
    names: list[str] = Field(default_factory=list)


class Monitoring:
    def __init__(
        self,
        state_records: Documents[MonitoringRecord],
        state_reports: Documents[VersionReport],
        state_names: Documents[Names],
        tables: InferenceTables,
        registry: RegistryClient,
        jobs: Jobs,
        publisher: EventPublisher,
        metrics: MonitorMetrics,
        app_id: str,
        timeout_s: float,
        max_parts: int,
        live: Callable[[str], Awaitable[LiveReport]] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        retrainer: Retrainer | None = None,
        shadow_cache_s: float = 10.0,
    ):
        self.records, self.reports, self.names = state_records, state_reports, state_names
        self.tables, self.registry, self.jobs, self.publisher = tables, registry, jobs, publisher
        self.metrics, self.app_id, self.timeout_s, self.max_parts = metrics, app_id, timeout_s, max_parts
        self.live, self.clock = live, clock
        self._running: dict[str, Trigger] = {}
        self.relay = Relay(state_records, registry, publisher, metrics, retrainer, clock)
        self.agreements = Agreements(tables, max_parts, shadow_cache_s, clock)

    # the policy

    async def view(self, model: str) -> MonitoringView:
        """What GET .../monitoring answers: an empty view for a model never monitored."""
        record = await self.records.get(record_key(model)) or MonitoringRecord(model=model)
        found = await asyncio.gather(*(self.reports.get(report_key(model, v)) for v in record.versions))
        policy = record.policy or DEFAULT
        shadows = await self.agreements.of(model, policy.window_hours, policy.rows_cap)
        return MonitoringView(
            model=model,
            policy=record.policy,
            changed_at=record.changed_at,
            changed_by=record.changed_by,
            job=job_of(model) if record.policy and record.policy.scheduled else None,
            reports=[r for r in found if r is not None],
            checks=record.checks,
            actions=record.actions,
            owed=len(record.outbox),
            live=await self.live(model) if self.live is not None else None,
            shadows=shadows,
        )

    async def set_policy(self, model: str, policy: MonitoringPolicy | None, actor: str, reason: str) -> PolicyState:
        """Stores the policy (None: removes it) and makes the model's Dapr Job match it: scheduled
        (replaced) when it names a schedule, deleted otherwise. The job first: a schedule the
        scheduler refuses changes nothing. A change is recorded in the model's history (at least
        once, through the record's outbox); the same policy again records nothing, and sets the
        job again (mending a job a failure left behind)."""
        await self._model(model)
        await self._sync_job(model, policy)
        now = self.clock()
        note_id = f"{model}-policy-{now:%Y%m%dT%H%M%S%f}-{secrets.token_hex(4)}"
        changed = False

        def change(record: MonitoringRecord | None) -> MonitoringRecord | None:
            nonlocal changed
            before = record.policy if record else None
            note = Note(
                action="monitoring.policy",
                reason=reason or ("monitoring policy removed" if policy is None else "monitoring policy set"),
                details=bounded({"changes": changes(before, policy), "id": note_id}),
                actor=actor,
            )
            after = with_policy(record, model, policy, now, actor, [Owed(id=note_id, kind="note", note=note)])
            changed = after is not None  # the last attempt's, the one stored
            return after

        await self._named(model)
        stored = await self.records.update(record_key(model), change)
        if changed:
            await self.relay.flush_quietly(model)
        record = stored or MonitoringRecord(model=model)
        return PolicyState(
            model=model,
            policy=record.policy,
            changed=changed,
            changed_at=record.changed_at,
            changed_by=record.changed_by,
            job=job_of(model) if record.policy and record.policy.scheduled else None,
        )

    async def _sync_job(self, model: str, policy: MonitoringPolicy | None) -> None:
        if policy is not None and policy.schedule is not None:
            await self.jobs.schedule(job_of(model), policy.schedule, {"model": model, "schedule": policy.schedule})
        else:
            await self.jobs.delete(job_of(model))

    # checks

    async def on_job(self, key: str, data: dict[str, Any]) -> None:
        """The model's Dapr Job fired: a check, unless one of the model is running (skipped: the
        next trigger comes). A job the policy no longer wants is deleted, and one whose schedule
        is not the policy's (a failure between the two writes) is scheduled again."""
        if not _is_model(key):
            raise ModelNotFound(f"{key!r} is not a model name")
        record = await self.records.get(record_key(key))
        policy = record.policy if record else None
        if policy is None or policy.schedule is None:
            log.info("drift-check job of %s fired with no schedule in its policy: deleted", key)
            await self.jobs.delete(job_of(key))
            return
        if data.get("schedule") != policy.schedule:
            await self._sync_job(key, policy)
        try:
            await self.check(key, Trigger.SCHEDULE, self.app_id)
        except CheckRunning as exc:
            log.info("scheduled drift check skipped: %s", exc)

    async def check(self, model: str, trigger: Trigger, actor: str) -> CheckResult:
        """Checks the drift of the model's champion and of each version with rows in the window
        (VERSIONS_CHECKED at most), stores the reports, and acts as the policy says: drift found
        is recorded in the model's history, and announced (ModelDriftDetected) when the policy
        says notify. One check of a model at a time (CheckRunning); at most `timeout_s`."""
        running = self._running.get(model)
        if running is not None:
            self.metrics.checks.labels(trigger.value, CHECK_SKIPPED).inc()
            raise CheckRunning(
                f"a drift check of {model!r} ({running.value}) is running; its report will be in GET "
                f"/api/models/{model}/monitoring"
            )
        self._running[model] = trigger
        try:
            # The deadline bounds reading and computing; what a check found is then stored whole
            # (each write bounded by the sidecar's timeout), never cut in the middle. A drift
            # computation past the deadline ends in its thread, bounded by the window's rows.
            async with asyncio.timeout(self.timeout_s):
                result, owed = await self._check(model, trigger, actor)
            await self._store(result, owed, actor)
        except TimeoutError:
            self.metrics.checks.labels(trigger.value, CHECK_FAILED).inc()
            raise CheckTooLong(
                f"the drift check of {model!r} took longer than {self.timeout_s:g}s (DAPRML_CHECK_TIMEOUT_S): "
                "a policy with a smaller window_rows makes it quicker"
            ) from None
        except BaseException:
            self.metrics.checks.labels(trigger.value, CHECK_FAILED).inc()
            raise
        finally:
            del self._running[model]
        self.metrics.checks.labels(trigger.value, CHECK_DONE).inc()
        self.metrics.drifted.inc(sum(1 for r in result.reports if r.drifted))
        await self.relay.flush_quietly(model)
        return result

    async def _check(self, model: str, trigger: Trigger, actor: str) -> tuple[CheckResult, list[Owed]]:
        """What a check finds, and what it owes the registry and pub/sub; nothing stored yet."""
        record = await self.records.get(record_key(model))
        policy = record.policy if record and record.policy else DEFAULT
        champion = (await self._model(model)).get("champion")
        infos: dict[int, VersionInfo] = {}
        if champion is not None:
            infos[champion] = await self.registry.version(model, champion)
            if infos[champion].card.reference is None and trigger == Trigger.API:
                drift.check(infos[champion].card, [])  # raises NoReference: the 409 that says why
        now = self.clock()
        since = now - timedelta(hours=policy.window_hours) if policy.window_hours is not None else None
        window = await newest_rows(self.tables.table, model, since, now, policy.rows_cap, self.max_parts)
        by_version: dict[int, list[CapturedPrediction]] = {}
        for row in window.rows:
            by_version.setdefault(row.version, []).append(row)
        versions = _versions(champion, by_version)
        check_id = f"{model}-{now:%Y%m%dT%H%M%S%f}-{secrets.token_hex(4)}"
        bounds = (window.rows[0].at if window.rows else (since or now), now)
        reports, skipped = [], []
        for version in versions:
            rows = by_version.get(version, [])
            try:
                if version not in infos:
                    infos[version] = await self.registry.version(model, version)
                found = await asyncio.to_thread(
                    drift.check,
                    infos[version].card,
                    [r.inputs for r in rows],
                    [r.output for r in rows],
                    policy.drift_settings(),
                )
            except (Absent, drift.NoReference) as exc:
                skipped.append(Skipped(version=version, reason=_reason(exc)))
                continue
            reports.append(
                version_report(found, model, version, check_id, now, trigger, bounds, policy.drift_threshold)
            )
        skipped += [
            Skipped(version=v, reason=f"more than {VERSIONS_CHECKED} versions had rows in the window")
            for v in sorted(set(by_version) - set(versions))
        ]
        told = told_by(actor, self.app_id)
        drifts, owed = drift_found(policy, reports, told, window.truncated, record.told if record else {})
        drops: list[ActionTaken] = []
        if policy.on_accuracy_drop in NOTIFYING and self.live is not None:
            drops, dropped = accuracy_found(policy, await self.live(model), infos, check_id, now, told)
            owed += dropped
        last = record.retrain_ordered_at if record else None
        retrain, ordered = retrain_ordered(policy, model, champion, drifts, drops, last, check_id, now, told)
        actions, owed = drifts + drops + retrain, owed + ordered
        result = CheckResult(
            model=model,
            check_id=check_id,
            at=now,
            trigger=trigger,
            champion=champion,
            rows_read=len(window.rows),
            reports=reports,
            skipped=skipped,
            actions=actions,
        )
        return result, owed

    async def _store(self, result: CheckResult, owed: list[Owed], actor: str) -> None:
        """Each version's report, then the check in the model's record with what it owes (a
        report written before the record names it, as a part before its index)."""
        model = result.model
        for report in result.reports:
            await self.reports.update(report_key(model, report.version), partial(_newer, report=report))
        await self._named(model)
        let_go = 0

        def change(record: MonitoringRecord | None) -> MonitoringRecord:
            nonlocal let_go
            before = record.let_go if record else 0
            after = with_check(record, model, summary(result, actor), result.reports, result.actions, owed)
            let_go = after.let_go - before  # the last attempt's, the one stored
            return after

        await self.records.update(record_key(model), change)
        if let_go:
            log.warning("%s: %d owed history entries or events let go, its outbox being full", model, let_go)
            self.metrics.owed_dropped.inc(let_go)

    async def _model(self, model: str) -> dict[str, int]:
        """The model's aliases; ModelNotFound when the registry has no such model."""
        try:
            return (await self.registry.model(model)).aliases
        except Absent:
            raise ModelNotFound(f"there is no model named {model!r}") from None

    # the outbox (relay.py)

    async def flush(self, model: str) -> int:
        return await self.relay.flush(model)

    async def flush_all(self) -> None:
        """The background relay: sends what every model owes, and carries out retrain orders."""
        index = await self.names.get(NAMES_KEY)
        await self.relay.flush_all(index.names if index else [])

    async def _named(self, model: str) -> None:
        def add(index: Names | None) -> Names | None:
            index = index or Names()
            if model in index.names:
                return None
            index.names = sorted([*index.names, model])
            return index

        await self.names.update(NAMES_KEY, add)


def _is_model(name: str) -> bool:
    return re.fullmatch(MODEL_NAME.strip("^$"), name) is not None


def _versions(champion: int | None, by_version: dict[int, list[CapturedPrediction]]) -> list[int]:
    """The champion first, then the versions with the most rows in the window."""
    counts = Counter({v: len(rows) for v, rows in by_version.items()})
    ordered = [v for v, _ in sorted(counts.items(), key=lambda kv: (-kv[1], -kv[0])) if v != champion]
    if champion is None:
        return ordered[:VERSIONS_CHECKED]
    return [champion, *ordered[: VERSIONS_CHECKED - 1]]


def _newer(current: VersionReport | None, report: VersionReport) -> VersionReport | None:
    """The report, unless the one stored is newer (another replica's later check)."""
    return report if current is None or current.at <= report.at else None


def _reason(exc: Exception) -> str:
    if isinstance(exc, Absent):
        return "the registry has no such version"
    return str(exc)
