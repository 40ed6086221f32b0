"""Drift checks over the inference tables: rows drawn from the training distribution drift
nowhere; a shifted feature drifts alone, is recorded in the model's history and announced when
the policy says notify; each version is judged against its own card; one check of a model at a
time; the model's job runs a check, or mends itself when the policy changed under it."""

import asyncio
from datetime import timedelta

import pytest

from services.common.events import EventType
from services.common.ports import SidecarUnavailable
from services.monitor.domain.drift import NoReference
from services.monitor.domain.policy import MonitoringPolicy
from services.monitor.domain.reports import Trigger
from services.monitor.monitoring import CheckRunning, CheckTooLong, ModelNotFound, job_of
from tests.fakes import FakePublisher
from tests.unit.monitor.drifting import NOW, FakeRegistry, captured, card, draw, monitoring


def check(service, trigger=Trigger.API, actor="ops"):
    return asyncio.run(service.check("iris", trigger, actor))


def write(tables, rows) -> None:
    asyncio.run(tables.write(rows))


def test_rows_from_the_training_distribution_drift_nowhere_and_nothing_is_announced():
    registry = FakeRegistry()
    service, ports, tables = monitoring(registry)
    write(tables, captured(draw(300, seed=1)))
    result = check(service)
    (report,) = result.reports
    assert (result.champion, result.rows_read, report.version, report.rows) == (1, 300, 1, 300)
    assert report.drifted == [] and set(report.features) == {"x", "colour"}
    assert all(f.psi is not None and f.psi < 0.1 for f in report.features.values())
    assert result.actions == [] and ports.publisher.sent == [] and registry.notes == []
    view = asyncio.run(service.view("iris"))
    assert view.reports == [report] and [c.check_id for c in view.checks] == [result.check_id]


def test_a_shifted_feature_drifts_alone_and_is_announced_and_recorded():
    registry = FakeRegistry()
    service, ports, tables = monitoring(registry)
    asyncio.run(service.set_policy("iris", MonitoringPolicy(on_drift="notify"), "ops", ""))
    write(tables, captured(draw(300, seed=2, x_shift=4.0)))
    result = check(service, actor="ops lead")
    (report,) = result.reports
    assert report.drifted == ["x"] and report.features["x"].psi > 1
    ((event_type, event, subject),) = ports.publisher.sent
    assert (event_type, subject) == (EventType.MODEL_DRIFT_DETECTED, "iris")
    assert (event.model, event.version, event.check_id, event.rows) == ("iris", 1, result.check_id, 300)
    assert event.features["x"].drifted and not event.features["colour"].drifted
    assert ports.publisher.ids == [f"{result.check_id}-1"]  # stable: a resend is recognisable
    drift_note = registry.notes[-1]
    assert (drift_note.action, drift_note.actor) == ("monitoring.drift", "ops lead")
    assert drift_note.details["psi"].keys() == {"x"} and drift_note.details["check_id"] == result.check_id
    (action,) = result.actions
    assert (action.action, action.version) == ("notify", 1)
    assert asyncio.run(service.view("iris")).actions == [action]


def test_with_action_none_drift_is_recorded_but_not_announced():
    registry = FakeRegistry()
    service, ports, tables = monitoring(registry)
    asyncio.run(service.set_policy("iris", MonitoringPolicy(on_drift="none"), "ops", ""))
    write(tables, captured(draw(300, seed=2, x_shift=4.0)))
    result = check(service)
    assert result.reports[0].drifted == ["x"] and result.actions[0].action == "none"
    assert ports.publisher.sent == [] and registry.notes[-1].action == "monitoring.drift"


def test_each_version_is_judged_against_its_own_card():
    # Version 2 was trained on shifted data: its rows match its card, version 1's drift from theirs.
    registry = FakeRegistry(champion=2, cards={1: card(), 2: card(x_shift=4.0)})
    service, ports, tables = monitoring(registry)
    write(tables, captured(draw(300, seed=3, x_shift=4.0), version=2) + captured(draw(200, seed=4, x_shift=4.0)))
    result = check(service)
    assert [(r.version, r.rows, r.drifted) for r in result.reports] == [(2, 300, []), (1, 200, ["x"])]


def test_a_champion_without_captured_rows_gets_an_empty_report():
    service, _, _ = monitoring(FakeRegistry())
    (report,) = check(service).reports
    assert (report.version, report.rows, report.drifted) == (1, 0, [])
    assert all(f.psi is None for f in report.features.values())


def test_too_few_rows_call_no_drift():
    service, _, tables = monitoring(FakeRegistry())
    write(tables, captured(draw(30, seed=2, x_shift=4.0)))  # below min_rows (50)
    assert check(service).reports[0].drifted == []


def test_the_window_is_the_policys_newest_rows_of_its_hours():
    service, _, tables = monitoring(FakeRegistry())
    asyncio.run(service.set_policy("iris", MonitoringPolicy(window_rows=200, window_hours=1, min_rows=50), "ops", ""))
    write(tables, captured(draw(300, seed=5, x_shift=4.0), at=NOW - timedelta(hours=2)))  # outside the hour
    write(tables, captured(draw(100, seed=6, x_shift=4.0), at=NOW - timedelta(minutes=30)))
    write(tables, captured(draw(200, seed=7), at=NOW - timedelta(minutes=10)))  # the newest 200
    result = check(service)
    assert result.rows_read == 200 and result.reports[0].drifted == []


def test_a_champion_without_reference_distributions_is_a_409_when_asked_and_skipped_on_schedule():
    registry = FakeRegistry(cards={1: card(with_reference=False)})
    service, ports, tables = monitoring(registry)
    write(tables, captured(draw(100, seed=1)))
    with pytest.raises(NoReference, match="train a new version"):
        check(service)
    scheduled = check(service, Trigger.SCHEDULE, "monitor")
    assert scheduled.reports == [] and scheduled.skipped[0].version == 1
    assert "reference" in scheduled.skipped[0].reason


def test_a_version_the_registry_does_not_know_is_skipped():
    service, _, tables = monitoring(FakeRegistry())
    write(tables, captured(draw(100, seed=1), version=9))
    result = check(service)
    assert [r.version for r in result.reports] == [1]
    assert [(s.version, s.reason) for s in result.skipped] == [(9, "the registry has no such version")]


def test_an_unknown_model_is_not_checked():
    service, _, _ = monitoring(FakeRegistry(model="other"))
    with pytest.raises(ModelNotFound):
        check(service)


def test_one_check_of_a_model_runs_at_a_time():
    service, _, tables = monitoring(FakeRegistry())
    write(tables, captured(draw(100, seed=1)))

    async def both():
        return await asyncio.gather(
            service.check("iris", Trigger.SCHEDULE, "monitor"),
            service.check("iris", Trigger.API, "ops"),
            return_exceptions=True,
        )

    first, second = asyncio.run(both())
    assert first.rows_read == 100 and isinstance(second, CheckRunning)
    assert "is running" in str(second)
    assert check(service).rows_read == 100  # and afterwards, again


def test_a_check_has_a_deadline():
    registry = FakeRegistry()
    original = registry.call

    async def slow(*args, **kwargs):
        await asyncio.sleep(1)
        return await original(*args, **kwargs)

    registry.call = slow
    service, _, _ = monitoring(registry, timeout_s=0.05)
    with pytest.raises(CheckTooLong, match="longer than 0.05s"):
        check(service)
    registry.call = original
    assert check(service).champion == 1  # the model is not left locked


def test_a_drift_event_the_pub_sub_refused_is_sent_later():
    publisher = FakePublisher(down=True)
    service, _, tables = monitoring(FakeRegistry(), publisher=publisher)
    write(tables, captured(draw(300, seed=2, x_shift=4.0)))
    result = check(service)  # the check succeeds; the event is owed
    assert publisher.sent == [] and asyncio.run(service.view("iris")).owed == 1
    publisher.down = False
    asyncio.run(service.flush_all())
    assert [e.check_id for _, e, _ in publisher.sent] == [result.check_id]
    assert asyncio.run(service.view("iris")).owed == 0


def test_the_models_job_runs_a_check_named_by_the_monitor():
    registry = FakeRegistry()
    service, ports, tables = monitoring(registry)
    asyncio.run(service.set_policy("iris", MonitoringPolicy(schedule="@every 5s"), "ops", ""))
    write(tables, captured(draw(300, seed=2, x_shift=4.0)))
    asyncio.run(service.on_job("iris", {"model": "iris", "schedule": "@every 5s"}))
    (summary,) = asyncio.run(service.view("iris")).checks
    assert (summary.trigger, summary.actor, summary.drifted) == ("schedule", "monitor", {"1": ["x"]})
    assert registry.notes[-1].action == "monitoring.drift" and registry.notes[-1].actor is None  # the monitor's own


def test_a_job_the_policy_no_longer_wants_deletes_itself_and_a_stale_one_is_mended():
    service, ports, _ = monitoring(FakeRegistry())
    ports.jobs.jobs[job_of("iris")] = ("@every 5s", {})
    asyncio.run(service.on_job("iris", {}))  # no policy at all
    assert ports.jobs.jobs == {} and asyncio.run(service.view("iris")).checks == []
    asyncio.run(service.set_policy("iris", MonitoringPolicy(schedule="@every 1h"), "ops", ""))
    asyncio.run(service.on_job("iris", {"schedule": "@every 5s"}))  # fired by an older schedule
    assert ports.jobs.jobs[job_of("iris")][0] == "@every 1h"
    assert len(asyncio.run(service.view("iris")).checks) == 1


def test_a_scheduled_check_while_one_runs_is_skipped_not_failed():
    service, _, _ = monitoring(FakeRegistry())
    asyncio.run(service.set_policy("iris", MonitoringPolicy(schedule="@every 5s"), "ops", ""))
    service._running["iris"] = Trigger.API
    asyncio.run(service.on_job("iris", {"schedule": "@every 5s"}))  # returns: no retry wanted
    assert asyncio.run(service.view("iris")).checks == []


def test_a_check_the_registry_cannot_answer_fails_and_stores_nothing():
    registry = FakeRegistry()
    service, _, tables = monitoring(registry)
    write(tables, captured(draw(100, seed=1)))
    registry.down = True
    with pytest.raises(SidecarUnavailable):
        check(service)
    registry.down = False
    assert asyncio.run(service.view("iris")).checks == []


def test_the_same_drift_found_again_is_not_told_again_until_its_features_change():
    registry = FakeRegistry()
    service, ports, tables = monitoring(registry)
    write(tables, captured(draw(300, seed=2, x_shift=4.0)))
    first = check(service)
    told = len(registry.notes), len(ports.publisher.sent)
    again = check(service)
    assert (len(registry.notes), len(ports.publisher.sent)) == told
    (action,) = again.actions
    assert action.action == "none" and f"as told at {first.at:%Y-%m-%d %H:%M:%S}" in action.reason
    write(tables, captured(draw(300, seed=5, x_shift=4.0, colour_p=0.05), at=NOW - timedelta(minutes=1)))
    changed = check(service)
    assert changed.reports[0].drifted != first.reports[0].drifted and changed.actions[0].action == "notify"
    assert len(registry.notes) == told[0] + 1
