"""A model's monitoring record stays bounded: the newest checks and actions, the newest versions
with reports, an outbox that lets its oldest items go (counted) when full; a check applied
twice (a retried write) is kept once."""

from datetime import timedelta

from services.common.contracts.models import Note
from services.monitor.domain.policy import MonitoringPolicy
from services.monitor.domain.record import (
    OUTBOX,
    RETELL,
    VERSIONS_KEPT,
    MonitoringRecord,
    Owed,
    owe,
    repeated,
    told_after,
    with_check,
    with_policy,
)
from services.monitor.domain.reports import RECENT, ActionTaken, CheckSummary, Trigger, VersionReport
from tests.unit.monitor.drifting import NOW


def note(i: int) -> Owed:
    return Owed(id=f"n{i}", kind="note", note=Note(action="monitoring.drift"))


def summary(i: int) -> CheckSummary:
    return CheckSummary(
        check_id=f"c{i}", at=NOW + timedelta(seconds=i), trigger=Trigger.API, actor="ops", versions={}, drifted={}
    )


def action(i: int) -> ActionTaken:
    return ActionTaken(at=NOW, check_id=f"c{i}", version=1, action="notify", reason="x")


def test_the_outbox_keeps_each_item_once_and_lets_the_oldest_go_when_full():
    record = MonitoringRecord(model="iris")
    owe(record, [note(i) for i in range(OUTBOX - 1)])
    owe(record, [note(0), note(OUTBOX - 1)])  # n0 again: once
    assert len(record.outbox) == OUTBOX and record.let_go == 0
    owe(record, [note(OUTBOX), note(OUTBOX + 1)])
    assert [o.id for o in record.outbox[:2]] == ["n2", "n3"] and record.outbox[-1].id == f"n{OUTBOX + 1}"
    assert record.let_go == 2


def report(version: int, drifted: list[str] | None = None, at=NOW) -> VersionReport:
    return VersionReport(
        model="iris",
        version=version,
        check_id=f"c{version}",
        at=at,
        trigger=Trigger.API,
        window_from=at,
        window_to=at,
        rows=100,
        threshold=0.2,
        drifted=drifted or [],
        features={},
    )


def test_checks_actions_and_versions_keep_the_newest():
    record = None
    for i in range(RECENT + 5):
        record = with_check(record, "iris", summary(i), [report(i + 1)], [action(i)], [])
    assert len(record.checks) == RECENT and record.checks[0].check_id == f"c{RECENT + 4}"
    assert len(record.actions) == RECENT and record.actions[-1].check_id == "c5"
    assert record.versions == list(range(RECENT + 5, RECENT + 5 - VERSIONS_KEPT, -1))


def test_a_check_applied_twice_is_kept_once():
    record = with_check(None, "iris", summary(1), [report(1)], [action(1)], [note(1)])
    again = with_check(record.model_copy(deep=True), "iris", summary(1), [report(1)], [action(1)], [note(2)])
    assert again == record


def test_a_drift_is_told_again_only_when_its_features_change_a_day_later_or_after_it_ended():
    told = told_after({}, [report(1, ["x"])])
    assert repeated(told["1"], ["x"], NOW + timedelta(hours=23))
    assert not repeated(told["1"], ["x", "colour"], NOW + timedelta(hours=1))
    assert not repeated(told["1"], ["x"], NOW + RETELL)
    assert told_after(told, [report(1, ["x"], at=NOW + timedelta(hours=1))]) == told  # repeated: still told at NOW
    assert told_after(told, [report(1)]) == {}  # drift ended: the next one is told at once


def test_the_same_policy_again_changes_nothing():
    record = with_policy(None, "iris", MonitoringPolicy(), NOW, "ops", [note(1)])
    assert record is not None and record.changed_by == "ops" and [o.id for o in record.outbox] == ["n1"]
    assert with_policy(record, "iris", MonitoringPolicy(), NOW, "other", [note(2)]) is None
    assert with_policy(None, "iris", None, NOW, "ops", [note(3)]) is None  # nothing to remove
